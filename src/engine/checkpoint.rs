//! The index checkpoint (`index.checkpoint`): every stream's version and
//! the segments holding its events, as of the end of the segments it
//! covers (every sealed segment, and at close the active segment up to its
//! last batch). Written at each seal, on close and after a writable open
//! that rebuilt the index; loaded on open, which then reads only the log
//! after it. Derived data, bound to the exact segments it covers: anything
//! that does not match makes open rebuild the index from the log instead.

use std::borrow::Cow;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::format::SEGMENT_HEADER_LEN;
use crate::format::checkpoint::{self, CHECKPOINT_FILE_NAME, CheckpointFile, CheckpointStream};
use crate::format::footer;
use crate::format::index_file::{IndexBinding, IndexFile, index_file_name};
use crate::format::segment_list;
use crate::hooks::Hooks;
use crate::index::segment::Contents;
use crate::index::{Index, MemoryIndex, SegmentIndex, StreamEntry};
use crate::log::derived_file;
use crate::log::directory;
use crate::log::finding::{Finding, FindingKind};
use crate::log::retention;
use crate::log::scan::{Cursor, Tally};
use crate::log::segment::Segment;
use crate::log::verdict::SegmentRole;
use crate::log::walk::{LogWalk, durable_mark_problem};

use super::State;
use super::index_files::{self, Installed};
use super::recovery::Recovered;
use super::tree::TreeChain;
use super::writer::now_ns;

/// The checkpoint of `state` covering its segments up to `through`: sealed
/// ones, and with `prefix` (then `through` is the newest segment) the newest
/// up to its last batch, bound to `prefix`. `None` when a sealed segment
/// has no valid footer (it cannot be bound), or nothing would be covered.
pub(crate) fn encode(
    state: &State,
    through: Option<usize>,
    prefix: Option<IndexBinding>,
) -> Option<Vec<u8>> {
    let index = &state.index;
    let newest = index.segments.len().checked_sub(1)?;
    let Some(through) = through else {
        // Nothing to cover: the log is one active segment, read on open.
        return None;
    };
    assert!(through <= newest && (prefix.is_none() || through == newest));
    let sealed = if prefix.is_some() {
        through
    } else {
        through + 1
    };
    // Segments retired while the store is open keep their ordinals in
    // memory; the checkpoint numbers the kept ones from 0, as an open does.
    let first = index.retained_from();
    if through < first {
        // Every sealed segment was retired: nothing to cover.
        return None;
    }
    let first_u32 = u32::try_from(first).ok()?;
    let mut segments = Vec::with_capacity(through + 1 - first);
    for ordinal in first..sealed {
        segments.push(index_files::sealed_binding(
            &state.segments[ordinal],
            &index.segments[ordinal],
        )?);
    }
    segments.extend(prefix);
    let through_u32 = u32::try_from(through).ok()?;
    // Each stream as of the end of the covered segments: the events of
    // later segments (indexed in memory still) are not counted, nor listed;
    // a covered prefix of the newest segment is listed.
    let uncovered: Vec<&MemoryIndex> = index.segments[through + 1..]
        .iter()
        .filter_map(SegmentIndex::memory)
        .collect();
    let prefix_memory = prefix.and_then(|_| index.segments[newest].memory());
    let streams: Vec<(&str, u64, Cow<'_, [u8]>)> = index
        .streams()
        .filter_map(|(name, entry)| {
            let later: u64 = uncovered
                .iter()
                .filter_map(|memory| memory.streams.get(name))
                .map(|run| run.offsets.len() as u64)
                .sum();
            let version = entry.version - later;
            let in_prefix = prefix_memory.is_some_and(|memory| memory.streams.contains_key(name));
            let listed_beyond = entry.last_listed.is_some_and(|l| l > through_u32);
            let list = if first > 0
                || listed_beyond
                || (in_prefix && entry.last_listed != Some(through_u32))
            {
                let mut list = Vec::new();
                let mut last = None;
                let listed = segment_list::iter(&entry.segments).filter(|&o| o <= through_u32);
                let prefix = (in_prefix && entry.last_listed.is_none_or(|l| l < through_u32))
                    .then_some(through_u32);
                for ordinal in listed.chain(prefix) {
                    let ordinal = ordinal - first_u32;
                    if last != Some(ordinal) {
                        segment_list::push(&mut list, last, ordinal);
                        last = Some(ordinal);
                    }
                }
                Cow::Owned(list)
            } else {
                Cow::Borrowed(&entry.segments[..])
            };
            (version > 0).then_some((&**name, version, list))
        })
        .collect();
    let streams = streams
        .iter()
        .map(|(name, version, list)| CheckpointStream {
            name,
            version: *version,
            segment_list: list,
        });
    Some(checkpoint::encode(now_ns(), &segments, streams))
}

/// Writes `bytes` as the store's checkpoint.
pub(crate) fn write(dir: &Path, bytes: &[u8], hooks: &Hooks) -> Result<()> {
    derived_file::write_atomically(dir, CHECKPOINT_FILE_NAME, bytes, hooks)
}

/// The binding of the newest segment's published batches, for a prefix
/// index file written at close; `None` when it holds no event.
pub(crate) fn prefix_binding(segment: &Segment, index: &SegmentIndex) -> Option<IndexBinding> {
    if index.event_count == 0 {
        return None;
    }
    let data = &segment.bytes(index.end_offset)[SEGMENT_HEADER_LEN..];
    let crc = footer::contents_crc(segment.header.salt, data);
    Some(index.binding(segment.header.salt, crc, false))
}

/// What a checkpoint gave an open: the index of the covered segments and
/// the walk to continue after them.
pub(crate) struct Resumed {
    pub index: Index,
    pub walk: LogWalk,
    /// Index files found missing or unusable, and what was done.
    pub rebuilt: Vec<Recovered>,
    /// The Merkle tree at the end of the covered sealed segments.
    pub tree: TreeChain,
}

/// Loads the checkpoint of `dir`, checked against the segments it covers.
/// `Err` with the finding to report when there is none or it does not
/// match (then open rebuilds the index from the log); `Ok(None)` when a
/// store without sealed segments has none, which is not worth reporting.
///
/// # Errors
/// I/O errors other than a missing checkpoint are findings too: derived
/// data never fails an open.
pub(crate) fn load(
    dir: &Path,
    newest_role: SegmentRole,
    writer_hooks: Option<&Hooks>,
    hooks: &Hooks,
) -> std::result::Result<Option<Resumed>, Finding> {
    let path = dir.join(CHECKPOINT_FILE_NAME);
    let problem = |detail: String| Finding {
        kind: FindingKind::IndexCheckpoint { detail },
        path: path.clone(),
        offset: 0,
        position: None,
    };
    let mut listing = directory::list_segments(dir).map_err(|e| problem(e.to_string()))?;
    // After a retirement the log starts at its cut: a checkpoint written
    // before it may still cover the retired segments, which are skipped
    // (and the stream table's ordinals renumbered) rather than rebuilt.
    let anchor = retention::read_anchor(dir).map_err(|e| problem(e.to_string()))?;
    let start = anchor.as_ref().map_or(0, |a| a.position);
    listing.segments.retain(|(base, _)| *base >= start);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if listing.segments.len() > 1 {
                Err(problem("missing".to_string()))
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(problem(format!("cannot be read: {e}"))),
    };
    let file = CheckpointFile::parse(&bytes).map_err(|e| problem(format!("damaged: {e}")))?;
    let all_bindings = file.segments();
    let retired = all_bindings
        .iter()
        .take_while(|binding| binding.base_position < start)
        .count();
    let bindings = &all_bindings[retired..];
    if bindings.len() > listing.segments.len() {
        return Err(problem(format!(
            "covers {} segments, the store has {}",
            bindings.len(),
            listing.segments.len()
        )));
    }
    // Each covered segment: the same file, the same bytes.
    let mut segments = Vec::with_capacity(bindings.len());
    let mut chain = anchor
        .as_ref()
        .map_or(crate::format::chain::GENESIS, |a| a.chain);
    for (i, (binding, (base, seg_path))) in bindings.iter().zip(&listing.segments).enumerate() {
        if *base != binding.base_position {
            return Err(problem(format!(
                "covers a segment at position {}, the store's segment {i} starts at {base}",
                binding.base_position
            )));
        }
        let segment = Segment::open(seg_path, false, hooks)
            .map_err(|e| problem(format!("covers {}: {e}", seg_path.display())))?;
        check_segment(&segment, binding, i == 0 && anchor.is_none(), &chain)
            .map_err(|why| problem(format!("does not match {}: {why}", segment.path.display())))?;
        chain = binding.chain_end;
        segments.push(Arc::new(segment));
    }
    let Some(last) = bindings.last() else {
        // Nothing covered: nothing to load, nothing wrong.
        return Ok(None);
    };

    // The index of the covered segments.
    let mut index = Index::new(dir);
    let mut rebuilt = Vec::new();
    let mut tree = anchor
        .as_deref()
        .map_or_else(TreeChain::genesis, TreeChain::anchored);
    for (binding, segment) in bindings.iter().zip(&segments) {
        let mut segment_index = SegmentIndex::from_binding(binding);
        if binding.sealed {
            match index_files::map(
                dir,
                segment,
                binding,
                &tree,
                &index.late_findings,
                writer_hooks.cloned(),
            ) {
                Ok(mapped) => {
                    tree.followed(binding.base_position, mapped.tree());
                    segment_index.contents = Contents::File(Box::new(mapped));
                }
                Err(why) => {
                    // Rebuilt from its segment alone; the rest of the
                    // checkpoint still holds.
                    let memory = index_files::rebuild(segment).map_err(|e| {
                        problem(format!(
                            "its segment {} is damaged: {e}",
                            segment.path.display()
                        ))
                    })?;
                    segment_index.contents = Contents::Memory(Box::new(memory));
                    let installed = match writer_hooks {
                        Some(hooks) => index_files::write_and_map(
                            dir,
                            segment,
                            &segment_index,
                            binding,
                            &tree,
                            &index.late_findings,
                            hooks,
                            why,
                        ),
                        None => Installed::NotWritten(why, None),
                    };
                    let (mapped, recovered) = installed.into_parts(dir, binding.base_position);
                    tree.followed(
                        binding.base_position,
                        mapped.as_ref().and_then(|m| m.tree()),
                    );
                    if let Some(mapped) = mapped {
                        segment_index.contents = Contents::File(Box::new(mapped));
                    }
                    rebuilt.extend(recovered);
                }
            }
        } else {
            // The active segment at close: its index continues in memory.
            let index_path = dir.join(index_file_name(binding.base_position));
            let memory = read_prefix_index(&index_path, binding)
                .map_err(|why| problem(format!("{}: {why}", index_path.display())))?;
            segment_index.contents = Contents::Memory(Box::new(memory));
        }
        index.segments.push(segment_index);
    }
    if let Some(anchor) = &anchor {
        index.set_cut(anchor);
    }
    let count = u32::try_from(bindings.len()).map_err(|_| problem("too many segments".into()))?;
    let all_count =
        u32::try_from(all_bindings.len()).map_err(|_| problem("too many segments".into()))?;
    let retired = u32::try_from(retired).expect("fewer than all");
    // The newest segment is never listed in the stream table while it is
    // the active one (it is listed when the next one starts): a prefix
    // covered at close is taken off the lists again.
    let active = (!last.sealed).then_some(count - 1);
    // Sized once: the count is checked against the file's length by parse.
    index.reserve_streams(usize::try_from(file.stream_count()).unwrap_or(0));
    for stream in file.streams() {
        let (_, last_listed) = segment_list::validate(stream.segment_list, all_count)
            .map_err(|why| problem(format!("stream {:?}: {why}", stream.name)))?;
        let last_listed = last_listed.and_then(|last| last.checked_sub(retired));
        let entry = if retired > 0 || (last_listed.is_some() && last_listed == active) {
            // Ordinals of retired segments leave the list, the others move
            // down; the active segment's is taken off (see above).
            let mut segments = Vec::new();
            let mut listed = None;
            for ordinal in segment_list::iter(stream.segment_list)
                .filter_map(|o| o.checked_sub(retired))
                .filter(|&o| Some(o) != active)
            {
                segment_list::push(&mut segments, listed, ordinal);
                listed = Some(ordinal);
            }
            StreamEntry {
                version: stream.version,
                segments,
                last_listed: listed,
            }
        } else {
            StreamEntry {
                version: stream.version,
                segments: stream.segment_list.to_vec(),
                last_listed,
            }
        };
        index.insert_stream(stream.name, entry);
    }
    // The active segment's prefix index and the stream table were written
    // together; that they agree is checked, not assumed (the index's
    // invariants, asserted on every append, rest on it): each stream of the
    // prefix ends there, at the version the table records.
    if let Some(memory) = index.segments.last().and_then(SegmentIndex::memory) {
        for (name, run) in &memory.streams {
            let run_end = run
                .first_version
                .checked_add(run.offsets.len() as u64 - 1)
                .filter(|_| !run.offsets.is_empty());
            if run_end != Some(index.stream_version(name)) || run.first_version == 0 {
                return Err(problem(format!(
                    "stream {name:?} is at version {} but the active segment's index file \
                     ends it at {run_end:?}",
                    index.stream_version(name)
                )));
            }
        }
    }

    // The walk continues where the checkpoint ends.
    let end = last
        .base_position
        .checked_add(last.event_count)
        .ok_or_else(|| problem("positions overflow".to_string()))?;
    let mut cursor = Cursor::start(end, last.chain_end);
    cursor.last_timestamp_ns = bindings
        .iter()
        .rev()
        .find(|b| b.event_count > 0)
        .map(|b| b.last_timestamp_ns)
        .or(anchor.as_ref().map(|a| a.last_timestamp_ns));
    cursor.anchor = anchor;
    let tally = (!last.sealed).then(|| {
        Tally::resume(
            last.data_end as usize,
            last.event_count,
            last.batch_count,
            end.checked_sub(1),
            last.contents_crc,
        )
    });
    let walk = LogWalk::resume(dir, newest_role, hooks, segments, cursor, tally);
    Ok(Some(Resumed {
        index,
        walk,
        rebuilt,
        tree,
    }))
}

/// Checks a covered segment against its binding: header, footer (a sealed
/// one) or the checksum of the covered bytes (the active one at close).
fn check_segment(
    segment: &Segment,
    binding: &IndexBinding,
    first: bool,
    chain_before: &[u8; 32],
) -> std::result::Result<(), String> {
    let header = &segment.header;
    if header.salt != binding.salt {
        return Err("another file (its salt differs)".to_string());
    }
    if !first && header.chain_start != *chain_before {
        return Err("its chain does not continue the segment before".to_string());
    }
    let data_end = usize::try_from(binding.data_end).map_err(|_| "data end out of range")?;
    if data_end < SEGMENT_HEADER_LEN || data_end > segment.data_end() {
        return Err(format!("data end {data_end} out of range"));
    }
    // The header's durable mark, outside its checksum, as the walk checks
    // it (the whole mark is read: two 16-byte slots).
    let role = if binding.sealed {
        SegmentRole::Sealed
    } else {
        SegmentRole::Newest
    };
    if let Some((at, kind)) = durable_mark_problem(segment, role) {
        return Err(format!("{kind} at offset {at}"));
    }
    if binding.sealed {
        let footer = index_files::footer_of(segment).ok_or("it has no valid footer")?;
        let matches = footer.contents_crc == binding.contents_crc
            && footer.data_len + SEGMENT_HEADER_LEN as u64 == binding.data_end
            && footer.event_count == binding.event_count
            && footer.batch_count == binding.batch_count
            && Some(footer.last_position)
                == (binding.base_position + binding.event_count).checked_sub(1)
            && footer.chain_end == binding.chain_end;
        if !matches {
            return Err("its footer differs".to_string());
        }
    } else {
        let data = &segment.bytes(data_end)[SEGMENT_HEADER_LEN..];
        if footer::contents_crc(header.salt, data) != binding.contents_crc {
            return Err("the covered bytes changed".to_string());
        }
    }
    Ok(())
}

/// The contents of the prefix index file at `path`, checked in full
/// against `binding`.
fn read_prefix_index(
    path: &Path,
    binding: &IndexBinding,
) -> std::result::Result<MemoryIndex, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let file = IndexFile::parse(&bytes).map_err(|e| e.to_string())?;
    if file.binding() != *binding {
        return Err("describes other bytes than the checkpoint covers".to_string());
    }
    Ok(MemoryIndex::from_file(&file))
}
