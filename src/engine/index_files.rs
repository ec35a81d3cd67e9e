//! Index files of sealed segments: written when a segment is sealed,
//! found (or written) on open, mapped instead of kept on the heap, and
//! rebuilt from their segment when missing, stale or damaged. The rules:
//!
//! - a file is used only if its header binds it to the exact bytes of its
//!   segment ([`IndexBinding`]: base position, salt, data end, contents
//!   checksum, counts, chain value; the footer vouches for the segment's);
//! - the whole file is checked on first use ([`MappedIndex`]), not on open,
//!   so that open does not read every index byte;
//! - anything else is rebuilt from the segment by the one scanner, and
//!   reported.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::footer::{FooterState, SegmentFooter};
use crate::format::index_file::{IndexBinding, index_file_name, read_tree};
use crate::format::scan::stream_runs;
use crate::format::tree_record::TreeRecord;
use crate::hooks::Hooks;
use crate::index::{LateFindings, MappedIndex, MemoryIndex, SegmentIndex};
use crate::log::derived_file;
use crate::log::finding::{Finding, FindingKind};
use crate::log::scan::{BatchSeen, Cursor, Flow, Tally, Visitor, scan_segment};
use crate::log::segment::Segment;
use crate::log::verdict::{SegmentRole, Verdict};

use super::recovery::{Recovered, RecoveryAction, command_of, index_entries};
use super::tree::TreeChain;

/// The footer of `segment`, if it is sealed.
pub(crate) fn footer_of(segment: &Segment) -> Option<SegmentFooter> {
    match SegmentFooter::decode(segment.footer_bytes()?) {
        FooterState::Sealed(footer) => Some(footer),
        _ => None,
    }
}

/// What the index file of a sealed `segment`, indexed as `index`, must be
/// bound to; `None` when the segment has no valid footer.
pub(crate) fn sealed_binding(segment: &Segment, index: &SegmentIndex) -> Option<IndexBinding> {
    let footer = footer_of(segment)?;
    Some(index.binding(segment.header.salt, footer.contents_crc, true))
}

/// Maps the index file of `segment` in `dir` if its header binds it to
/// `expected` and its tree section continues `tree` (the rule of
/// [`TreeChain`]); otherwise says what is wrong with it.
pub(crate) fn map(
    dir: &Path,
    segment: &Arc<Segment>,
    expected: &IndexBinding,
    tree: &TreeChain,
    late: &LateFindings,
    rewrite: Option<Hooks>,
) -> std::result::Result<MappedIndex, String> {
    let path = dir.join(index_file_name(expected.base_position));
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".to_string()),
        Err(e) => return Err(format!("cannot be opened: {e}")),
    };
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    if !regular {
        return Err("not a regular file".to_string());
    }
    // SAFETY: index files are never written in place: a new one replaces
    // an old one by rename, which leaves this mapping as it is. (Cutting
    // the file short from outside would fault a read, as for segments.)
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("cannot be mapped: {e}"))?;
    let (found, record) = read_tree(&map).map_err(|e| e.to_string())?;
    if found != *expected {
        return Err(describe_mismatch(&found, expected));
    }
    if let Some(problem) = tree.mismatch(record.as_ref()) {
        return Err(problem);
    }
    Ok(MappedIndex::new(
        map,
        path,
        Arc::clone(segment),
        found,
        record,
        rebuild,
        Arc::clone(late),
        rewrite,
    ))
}

/// Which field of a binding differs, for the report.
fn describe_mismatch(found: &IndexBinding, expected: &IndexBinding) -> String {
    let field = if found.base_position != expected.base_position {
        "base position"
    } else if found.salt != expected.salt {
        "salt (it belongs to another file of that name)"
    } else if found.data_end != expected.data_end || found.event_count != expected.event_count {
        "extent (it describes a shorter or longer log)"
    } else if found.contents_crc != expected.contents_crc {
        "contents checksum"
    } else if found.chain_end != expected.chain_end {
        "chain value"
    } else {
        "counts or timestamps"
    };
    format!("stale: its {field} differs from the segment's")
}

/// Writes the index file of a sealed segment, bound to `binding`, with the
/// tree section and tiles `tree`.
///
/// # Errors
/// As [`derived_file::write_atomically`].
pub(crate) fn write(
    dir: &Path,
    memory: &MemoryIndex,
    binding: &IndexBinding,
    tree: Option<&(TreeRecord, Vec<crate::proof::merkle::Hash>)>,
    hooks: &Hooks,
) -> Result<()> {
    let bytes = match tree {
        Some((record, tiles)) => memory.encode(*binding, Some(record), tiles),
        None => memory.encode(*binding, None, &[]),
    };
    derived_file::write_atomically(dir, &index_file_name(binding.base_position), &bytes, hooks)
}

/// What making a sealed segment's index file available did.
pub(crate) enum Installed {
    /// A valid file was there, and is now mapped.
    Found(MappedIndex),
    /// The file was missing or unusable (why), was written anew, and is mapped.
    Written(String, MappedIndex),
    /// The file was missing or unusable (why) and is not written (a
    /// reader; or writing failed, with the error): the contents stay in memory.
    NotWritten(String, Option<Error>),
}

impl Installed {
    /// The mapped file, if there is one now, and, when the file found was
    /// missing or unusable, the finding and what was done about it, for the
    /// report. `base_position` names the segment, `dir` the store.
    pub fn into_parts(
        self,
        dir: &Path,
        base_position: u64,
    ) -> (Option<MappedIndex>, Option<Recovered>) {
        let (mapped, detail, action) = match self {
            Installed::Found(mapped) => return (Some(mapped), None),
            Installed::Written(problem, mapped) => (Some(mapped), problem, RecoveryAction::Rebuilt),
            Installed::NotWritten(problem, None) => {
                (None, problem, RecoveryAction::RebuiltInMemory)
            }
            Installed::NotWritten(problem, Some(error)) => (
                None,
                format!("{problem}; writing it failed: {error}"),
                RecoveryAction::RebuiltInMemory,
            ),
        };
        let recovered = Recovered {
            finding: Finding {
                kind: FindingKind::IndexFile { detail },
                path: dir.join(index_file_name(base_position)),
                offset: 0,
                position: Some(base_position),
            },
            action,
        };
        (mapped, Some(recovered))
    }
}

/// Finds the index file of the sealed `segment` (indexed in memory as
/// `index`, the tree at its start as `tree` knows it), or, for a writer
/// (`hooks` given), writes it.
pub(crate) fn install(
    dir: &Path,
    segment: &Arc<Segment>,
    index: &SegmentIndex,
    tree: &TreeChain,
    late: &LateFindings,
    writer_hooks: Option<&Hooks>,
) -> Installed {
    let Some(binding) = sealed_binding(segment, index) else {
        return Installed::NotWritten("its segment has no valid footer".to_string(), None);
    };
    let problem = match map(dir, segment, &binding, tree, late, writer_hooks.cloned()) {
        Ok(mapped) => return Installed::Found(mapped),
        Err(problem) => problem,
    };
    let Some(hooks) = writer_hooks else {
        return Installed::NotWritten(problem, None);
    };
    write_and_map(dir, segment, index, &binding, tree, late, hooks, problem)
}

/// Writes the index file of the sealed `segment` anew, whatever is there
/// (the index is being rebuilt on request), and maps it.
pub(crate) fn rewrite(
    dir: &Path,
    segment: &Arc<Segment>,
    index: &SegmentIndex,
    tree: &TreeChain,
    late: &LateFindings,
    hooks: &Hooks,
) -> Installed {
    match sealed_binding(segment, index) {
        Some(binding) => write_and_map(
            dir,
            segment,
            index,
            &binding,
            tree,
            late,
            hooks,
            String::new(),
        ),
        None => Installed::NotWritten("its segment has no valid footer".to_string(), None),
    }
}

/// Writes the index file of the sealed `segment` from its contents in
/// memory, with its tree section computed from its leaves when `tree`
/// knows the tree at its start, and maps it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_and_map(
    dir: &Path,
    segment: &Arc<Segment>,
    index: &SegmentIndex,
    binding: &IndexBinding,
    tree: &TreeChain,
    late: &LateFindings,
    hooks: &Hooks,
    problem: String,
) -> Installed {
    let Some(memory) = index.memory() else {
        return Installed::NotWritten(problem, None);
    };
    let record = match tree.record_for(segment, index) {
        Ok(record) => record,
        Err(error) => return Installed::NotWritten(problem, Some(error)),
    };
    if let Err(error) = write(dir, memory, binding, record.as_ref(), hooks) {
        return Installed::NotWritten(problem, Some(error));
    }
    match map(dir, segment, binding, tree, late, Some(hooks.clone())) {
        Ok(mapped) => Installed::Written(problem, mapped),
        Err(again) => Installed::NotWritten(
            problem,
            Some(Error::InvalidArgument(format!(
                "the index file just written cannot be used: {again}"
            ))),
        ),
    }
}

/// Rebuilds the index contents of one sealed segment from its bytes, read
/// alone (the log before it unread): every batch is checked again, and the
/// segment against its footer.
///
/// # Errors
/// [`Error::Corrupt`] with the first damage found.
pub(crate) fn rebuild(segment: &Segment) -> Result<MemoryIndex> {
    let header = &segment.header;
    let footer = footer_of(segment);
    let mut builder = SegmentBuilder {
        index: SegmentIndex::new(header.base_position, header.chain_start),
        refused: None,
    };
    let mut cursor = Cursor::alone(header.base_position, header.chain_start);
    let mut tally = Tally::new(header.salt);
    scan_segment(
        segment,
        SegmentRole::Sealed,
        footer.as_ref(),
        segment.durable_mark(),
        &mut cursor,
        &mut tally,
        &mut builder,
    );
    if let Some(finding) = builder.refused {
        return Err(Error::Corrupt(Box::new(finding)));
    }
    if footer.is_none() {
        return Err(Error::found(
            &segment.path,
            segment.data_end() as u64,
            None,
            crate::log::finding::FindingKind::MissingFooter {
                detail: "the segment was sealed when its index was written".to_string(),
            },
        ));
    }
    let mut index = builder.index;
    index.shrink_to_fit();
    Ok(index
        .into_memory()
        .expect("a segment being built is indexed in memory"))
}

/// Builds one segment's index from a scan of that segment alone.
struct SegmentBuilder {
    index: SegmentIndex,
    refused: Option<Finding>,
}

impl Visitor for SegmentBuilder {
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)> {
        // Streams first seen in this segment may start at any version
        // (the cursor is `Cursor::alone`); within it they are consecutive.
        let run = self.index.memory()?.streams.get(stream)?;
        Some((
            run.first_version + run.offsets.len() as u64 - 1,
            Cursor::ALONE_EPOCH,
        ))
    }

    fn segment(&mut self, _ordinal: usize, _segment: &Arc<Segment>, _role: SegmentRole) {}

    fn batch(&mut self, seen: &BatchSeen<'_, '_>) {
        let batch = seen.batch;
        for run in stream_runs(seen.events) {
            let first = &run[0].event;
            self.index
                .add_events(first.stream, first.version, index_entries(run));
        }
        self.index
            .end_batch(batch.end, batch.commit.chain, command_of(seen));
    }

    fn finding(&mut self, finding: Finding, verdict: Verdict) -> Flow {
        if verdict == Verdict::Refuse {
            self.refused.get_or_insert(finding);
            return Flow::Stop;
        }
        Flow::Continue
    }
}
