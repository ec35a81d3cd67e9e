//! Opening a store's segments: scanning every batch, checking every checksum,
//! rebuilding the index, and deciding what to do with whatever follows the
//! last complete batch. `docs/design.md` has the decision table this code
//! implements; each arm below names its row.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::footer::{self, FooterState, SegmentFooter};
use crate::format::scan::{self, BatchRead, TailState};
use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::hooks::Hooks;
use crate::index::{CommandRecord, Index, Location, SegmentIndex};
use crate::log::directory::{DirListing, list_segments};
use crate::log::segment::Segment;

/// What open found and did about a torn tail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The segment whose tail was discarded, if any.
    pub torn_segment: Option<PathBuf>,
    /// Offset where the discarded bytes began.
    pub torn_offset: u64,
    /// How many bytes (up to the last non-zero word) were zeroed.
    pub torn_bytes: u64,
    /// Whether a torn (unsynced, half-written) footer was cleared.
    pub torn_footer: bool,
    /// Stray temporary segment files removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// The newest segment's length, if it was shorter than its header says
    /// (it was extended back to full size; the cut became a torn tail).
    pub short_segment_len: Option<u64>,
}

/// The result of opening the segments of a store.
pub(crate) struct Loaded {
    pub index: Index,
    pub segments: Vec<Arc<Segment>>,
    /// Whether the newest segment has a valid footer.
    pub newest_sealed: bool,
    pub report: RecoveryReport,
}

/// How a scan of one segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// Nothing written after the last batch (as far as the scan looked).
    Empty,
    /// Something that is not a complete batch starts at this offset.
    Invalid { at: usize },
}

/// Opens every segment of `dir`. A writer (`writable`) also repairs a torn
/// tail and removes stray temporary files; a reader only stops before them.
pub(crate) fn load(dir: &Path, writable: bool, hooks: &Hooks) -> Result<Loaded> {
    let DirListing {
        segments: files,
        temp_files: temps,
    } = list_segments(dir)?;
    let mut report = RecoveryReport {
        torn_segment: None,
        torn_offset: 0,
        torn_bytes: 0,
        torn_footer: false,
        removed_temp_files: Vec::new(),
        short_segment_len: None,
    };
    if writable {
        // A temporary file is a segment whose creation never finished: it was
        // never renamed, so nothing in it was ever acknowledged.
        for temp in temps {
            fs::remove_file(&temp)
                .map_err(|e| Error::io("removing stray temporary segment", &temp, e))?;
            report.removed_temp_files.push(temp);
        }
    }
    let mut index = Index::new();
    let mut segments = Vec::with_capacity(files.len());
    let mut newest_sealed = false;
    let count = files.len();
    for (ordinal, (base, path)) in files.into_iter().enumerate() {
        let newest = ordinal + 1 == count;
        // A sealed segment is read-only on disk: open it read-only even when
        // it is the newest (the writer crashed between sealing it and
        // creating the next), whatever the process's privileges.
        let open_writable = writable && newest && !is_read_only_on_disk(&path)?;
        let segment = Arc::new(Segment::open(&path, open_writable, hooks)?);
        if segment.restored_from_len.is_some() {
            report.short_segment_len = segment.restored_from_len;
        }
        check_header_links(&segment, base, &index)?;
        index.segments.push(SegmentIndex::new(base));
        let mut contents = crc32fast::Hasher::new();
        contents.update(&segment.header.salt.to_le_bytes());
        let end = scan_batches(&mut index, &segment, ordinal, Some(&mut contents))?;
        let contents_crc = Some(contents.finalize());
        let footer = SegmentFooter::decode(segment.footer_bytes());
        if !newest {
            // Row "older segment": it must be complete and sealed.
            if let ScanEnd::Invalid { at } = end {
                return Err(describe_invalid(&segment, at));
            }
            let FooterState::Sealed(footer) = footer else {
                return Err(Error::corrupt(
                    &path,
                    segment.data_end() as u64,
                    "segment is followed by another but has no valid footer",
                ));
            };
            check_sealed(&segment, &footer, &index, contents_crc)?;
        } else {
            match footer {
                FooterState::Sealed(footer) => {
                    // Row "newest, sealed": the writer crashed after sealing,
                    // before the next segment existed; it is complete.
                    if let ScanEnd::Invalid { at } = end {
                        return Err(describe_invalid(&segment, at));
                    }
                    check_sealed(&segment, &footer, &index, contents_crc)?;
                    newest_sealed = true;
                }
                FooterState::Invalid(_) | FooterState::Unsealed
                    if writable && !segment.is_writable() =>
                {
                    return Err(Error::corrupt(
                        &path,
                        segment.data_end() as u64,
                        "the newest segment is read-only on disk, as sealed segments are, but has no valid footer",
                    ));
                }
                FooterState::Invalid(_) if writable => {
                    // Row "newest, torn footer": sealing never completed (a
                    // footer is synced before anything depends on it).
                    let data_end = segment.data_end();
                    segment.zero_and_sync(data_end, segment.len())?;
                    report.torn_footer = true;
                }
                FooterState::Invalid(_) | FooterState::Unsealed => {}
            }
            if !newest_sealed && writable {
                repair_tail(&segment, index.segments[ordinal].end_offset, &mut report)?;
            }
        }
        segments.push(segment);
    }
    index.shrink_to_fit();
    Ok(Loaded {
        index,
        segments,
        newest_sealed,
        report,
    })
}

/// Picks up what a writer in another process committed since the last call:
/// new batches in the newest known segment, then, once that segment is
/// sealed, the segments after it. An unfinished or torn tail is simply not
/// visible yet.
pub(crate) fn follow(
    dir: &Path,
    index: &mut Index,
    segments: &mut Vec<Arc<Segment>>,
) -> Result<()> {
    loop {
        if segments.is_empty() {
            let path = dir.join(format::segment_file_name(0));
            if !path.exists() {
                return Ok(());
            }
            open_next(index, segments, 0, &path)?;
        }
        let ordinal = segments.len() - 1;
        let segment = Arc::clone(&segments[ordinal]);
        scan_batches(index, &segment, ordinal, None)?;
        let FooterState::Sealed(footer) = SegmentFooter::decode(segment.footer_bytes()) else {
            return Ok(());
        };
        if footer.data_len != (index.segments[ordinal].end_offset - SEGMENT_HEADER_LEN) as u64 {
            // Sealed, but this reader stopped earlier: something it could not
            // read lies inside a sealed segment.
            let at = index.segments[ordinal].end_offset;
            return Err(describe_invalid(&segment, at));
        }
        // This reader scanned the segment over several refreshes: check
        // the footer's CRC in one pass here.
        check_sealed(&segment, &footer, index, None)?;
        let next = index.next_position();
        let path = dir.join(format::segment_file_name(next));
        if !path.exists() {
            return Ok(());
        }
        open_next(index, segments, next, &path)?;
    }
}

fn open_next(
    index: &mut Index,
    segments: &mut Vec<Arc<Segment>>,
    base: u64,
    path: &Path,
) -> Result<()> {
    let segment = Arc::new(Segment::open(path, false, &Hooks::default())?);
    check_header_links(&segment, base, index)?;
    index.segments.push(SegmentIndex::new(base));
    segments.push(segment);
    Ok(())
}

fn is_read_only_on_disk(path: &Path) -> Result<bool> {
    let metadata = fs::metadata(path).map_err(|e| Error::io("reading permissions of", path, e))?;
    Ok(metadata.permissions().readonly())
}

/// Checks a segment's header against its file name and the segment before it.
fn check_header_links(segment: &Segment, base_from_name: u64, index: &Index) -> Result<()> {
    let header = &segment.header;
    if header.base_position != base_from_name {
        return Err(Error::corrupt(
            &segment.path,
            16,
            format!(
                "header base_position {} differs from the file name",
                header.base_position
            ),
        ));
    }
    let expected_base = index.next_position();
    if header.base_position != expected_base {
        return Err(Error::corrupt(
            &segment.path,
            16,
            format!(
                "segment starts at position {} but the log before it ends at position {expected_base}: \
                 a segment is missing",
                header.base_position
            ),
        ));
    }
    if header.chain_start != index.chain_head {
        return Err(Error::corrupt(
            &segment.path,
            48,
            "header chain_start differs from the hash-chain value at the end of the previous segment: \
             segments were replaced or reordered",
        ));
    }
    Ok(())
}

/// Scans complete batches from the segment's current end offset (the last
/// index entry), adding them to the index. Returns how the scan ended.
/// With `contents`, every scanned batch's bytes are also fed to it while they
/// are hot, so that a sealed segment's footer CRC needs no second pass.
///
/// # Errors
/// [`Error::Corrupt`] when a valid batch disagrees with the index (a
/// position or version out of sequence): checksums cannot explain that.
pub(crate) fn scan_batches(
    index: &mut Index,
    segment: &Segment,
    ordinal: usize,
    mut contents: Option<&mut crc32fast::Hasher>,
) -> Result<ScanEnd> {
    let bytes = segment.bytes(segment.len());
    let salt = segment.header.salt;
    let data_end = segment.data_end();
    let mut events = Vec::new();
    let mut offset = index.segments[ordinal].end_offset;
    loop {
        match scan::read_batch(bytes, salt, offset, data_end, &mut events) {
            BatchRead::Empty => return Ok(ScanEnd::Empty),
            BatchRead::Invalid { at, .. } => return Ok(ScanEnd::Invalid { at }),
            BatchRead::Batch(batch) if events.is_empty() => {
                if let Some(contents) = contents.as_deref_mut() {
                    contents.update(&bytes[batch.start..batch.end]);
                }
                if batch.commit.first_position != index.next_position() {
                    return Err(Error::corrupt(
                        &segment.path,
                        batch.commit_offset as u64,
                        format!(
                            "sync marker at position {} out of sequence: expected {}",
                            batch.commit.first_position,
                            index.next_position()
                        ),
                    ));
                }
                index.end_batch(batch.end, 0, batch.commit.chain, None);
                offset = batch.end;
            }
            BatchRead::Batch(batch) => {
                if let Some(contents) = contents.as_deref_mut() {
                    contents.update(&bytes[batch.start..batch.end]);
                }
                let first = &events[0].event;
                let stream_version = index.stream_version(first.stream);
                if first.position != index.next_position() {
                    return Err(Error::corrupt(
                        &segment.path,
                        events[0].offset as u64,
                        format!(
                            "event position {} out of sequence: expected {}",
                            first.position,
                            index.next_position()
                        ),
                    ));
                }
                if first.version != stream_version + 1 {
                    return Err(Error::corrupt(
                        &segment.path,
                        events[0].offset as u64,
                        format!(
                            "stream {:?} jumps from version {stream_version} to {}",
                            first.stream, first.version
                        ),
                    ));
                }
                let timestamp = events.last().map_or(0, |e| e.event.timestamp_ns);
                // `read_batch` checked that the events are consecutive
                // versions and positions of one stream.
                index.add_batch(
                    first.stream,
                    first.version,
                    first.position,
                    events
                        .iter()
                        .map(|e| (Location::new(ordinal, e.offset), e.event.correlation_id)),
                );
                let command = batch.commit.command_id.map(|id| {
                    (
                        id,
                        CommandRecord {
                            stream: first.stream.into(),
                            first_version: first.version,
                            first_position: first.position,
                            event_count: batch.commit.event_count,
                        },
                    )
                });
                index.end_batch(batch.end, timestamp, batch.commit.chain, command);
                offset = batch.end;
            }
        }
    }
}

/// Checks a sealed segment's footer against what the scan found.
/// `contents_crc` is the CRC of the salt and the data, if the scan computed
/// it; otherwise it is computed here.
fn check_sealed(
    segment: &Segment,
    footer: &SegmentFooter,
    index: &Index,
    contents_crc: Option<u32>,
) -> Result<()> {
    let stats = index.segments.last().expect("the segment was just indexed");
    let footer_at = segment.data_end() as u64;
    let data_len = (stats.end_offset - SEGMENT_HEADER_LEN) as u64;
    let mismatch = if footer.data_len != data_len {
        Some(format!(
            "footer data_len {} but the batches end after {data_len} bytes",
            footer.data_len
        ))
    } else if footer.event_count != stats.event_count || footer.batch_count != stats.batch_count {
        Some(format!(
            "footer counts {} events in {} batches but the segment holds {} in {}",
            footer.event_count, footer.batch_count, stats.event_count, stats.batch_count
        ))
    } else if footer.last_position + 1 != stats.end_position() {
        Some(format!(
            "footer last_position {} but the last event is at {}",
            footer.last_position,
            stats.end_position().wrapping_sub(1)
        ))
    } else if footer.chain_end != index.chain_head {
        Some("footer chain_end differs from the last batch's chain value".to_string())
    } else {
        None
    };
    if let Some(problem) = mismatch {
        return Err(Error::corrupt(&segment.path, footer_at, problem));
    }
    let contents_crc = contents_crc.unwrap_or_else(|| {
        let data = &segment.bytes(stats.end_offset)[SEGMENT_HEADER_LEN..];
        footer::contents_crc(segment.header.salt, data)
    });
    if contents_crc != footer.contents_crc {
        return Err(Error::corrupt(
            &segment.path,
            footer_at,
            "footer contents_crc does not match the data",
        ));
    }
    // Only zeroes follow the data of a sealed segment: with the checksums
    // above, every byte of a sealed segment is checked.
    let free = &segment.bytes(segment.data_end())[stats.end_offset..];
    if let Some(at) = free.iter().position(|&b| b != 0) {
        return Err(Error::corrupt(
            &segment.path,
            (stats.end_offset + at) as u64,
            "non-zero bytes after the end of the sealed data: the sealed segment was changed",
        ));
    }
    Ok(())
}

/// The corruption error for an invalid batch at `at` of a segment where no
/// torn tail is possible.
fn describe_invalid(segment: &Segment, at: usize) -> Error {
    let bytes = segment.bytes(segment.len());
    let mut events = Vec::new();
    let reason = match scan::read_batch(
        bytes,
        segment.header.salt,
        at,
        segment.data_end(),
        &mut events,
    ) {
        BatchRead::Invalid { error, .. } => error.to_string(),
        _ => "invalid batch".to_string(),
    };
    Error::corrupt(&segment.path, at as u64, reason)
}

/// Decides what follows the last complete batch of the newest segment: a
/// clean end, a torn tail (zeroed), or damage to synced data (refused).
fn repair_tail(segment: &Segment, from: usize, report: &mut RecoveryReport) -> Result<()> {
    let bytes = segment.bytes(segment.len());
    match scan::classify_tail(bytes, segment.header.salt, from, segment.data_end()) {
        // Row "newest, clean end".
        TailState::Clean => Ok(()),
        // Row "newest, torn tail": never durable, never fully acknowledged
        // as durable; discard it so that new batches start at `from`.
        TailState::Torn { last_nonzero_end } => {
            segment.zero_and_sync(from, last_nonzero_end)?;
            report.torn_segment = Some(segment.path.clone());
            report.torn_offset = from as u64;
            report.torn_bytes = (last_nonzero_end - from) as u64;
            Ok(())
        }
        // Row "newest, bad data before a commit that proves it was synced".
        TailState::DamagedSyncedData {
            commit_at,
            synced_offset,
        } => Err(Error::corrupt(
            &segment.path,
            from as u64,
            format!(
                "the data here is damaged, yet the commit record at offset {commit_at} shows that \
                 every byte below offset {synced_offset} had been synced: this is not a torn write"
            ),
        )),
    }
}
