//! The one scanner of segments. It reads every batch of a segment with
//! [`format::scan::read_batch`], checks that each continues the log before
//! it (positions, stream versions, timestamps), checks a sealed segment
//! against its footer, and judges what follows the last complete batch of
//! the newest segment (against the durable mark and every commit record's
//! `synced_offset`). What it finds goes, with its [`Verdict`], to a
//! [`Visitor`]: recovery builds the index, the follower waits, `verify`
//! lists problems and goes on, `repair` finds its cut point. None of them
//! checks a byte itself.

use crate::format::body::{self, CommitBody};
use crate::format::durable_mark::DurableMark;
use crate::format::footer::{self, SegmentFooter};
use crate::format::frame::{self, FLAG_END_OF_BATCH, FRAME_HEADER_LEN, FrameKind, FrameRead};
use crate::format::scan::{self as batches, BatchRead, BatchRef, EventRef, TailState};
use crate::format::{CHAIN_LEN, FRAME_ALIGN, SEGMENT_HEADER_LEN};

use super::finding::{DurableEvidence, Finding, FindingKind};
use super::segment::Segment;
use super::verdict::{SegmentRole, Verdict, verdict};

/// After damaged bytes, a scan that goes on (`verify`) resumes after the
/// next valid commit record. Commit records longer than this (only possible
/// with a command id of about this length) are not considered, which bounds
/// the work spent on candidate records in damaged bytes.
pub const MAX_RESYNC_COMMIT_BODY_BYTES: usize = 64 * 1024;

/// Whether a visitor wants the scan to go on after a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Stop the whole walk (an opener refusing the store).
    Stop,
    /// Go on, skipping what cannot be read (`verify`).
    Continue,
}

/// What the log before a batch ends with: what the next batch must continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Position the next batch must start at; `None` after unreadable bytes.
    pub next_position: Option<u64>,
    /// The stored hash-chain value the next batch extends; `None` after an
    /// unreadable segment.
    pub chain: Option<[u8; CHAIN_LEN]>,
    /// Timestamp of the last event, which the next may not precede.
    pub last_timestamp_ns: Option<u64>,
    /// Incremented at each discontinuity of positions (unreadable bytes,
    /// a missing or misplaced segment): a stream last seen in an earlier
    /// epoch may have events in the gap.
    pub epoch: u32,
    /// Incremented each time `chain` is taken from where reading resumed
    /// rather than from the batch before (after unreadable bytes or an
    /// unreadable segment): the chain cannot be followed across.
    pub chain_epoch: u32,
    /// Where the log starts when its first segments were retired: the
    /// versions its streams had at the cut, which the first kept events of
    /// each continue (asked after the visitor, who has not seen them).
    pub anchor: Option<std::sync::Arc<super::retention::Anchor>>,
}

impl Cursor {
    /// The state before the first batch of a log starting at `position`
    /// with the chain value `chain`.
    pub fn start(position: u64, chain: [u8; CHAIN_LEN]) -> Cursor {
        Cursor {
            next_position: Some(position),
            chain: Some(chain),
            last_timestamp_ns: None,
            epoch: 0,
            chain_epoch: 0,
            anchor: None,
        }
    }

    /// The state before the first kept batch of a log whose first segments
    /// were retired: the cut `anchor` records.
    pub fn anchored(anchor: std::sync::Arc<super::retention::Anchor>) -> Cursor {
        Cursor {
            last_timestamp_ns: Some(anchor.last_timestamp_ns),
            ..Cursor::start(anchor.position, anchor.chain)
        }
        .with_anchor(anchor)
    }

    fn with_anchor(mut self, anchor: std::sync::Arc<super::retention::Anchor>) -> Cursor {
        self.anchor = Some(anchor);
        self
    }

    /// The last version of `stream` before the cut, if the log was cut.
    fn version_at_cut(&self, stream: &str) -> Option<(u64, u32)> {
        let version = *self.anchor.as_ref()?.streams.get(stream)?;
        Some((version, 0))
    }

    /// The gap epoch of [`Cursor::alone`].
    pub const ALONE_EPOCH: u32 = 1;

    /// The state before the first batch of a segment read alone, starting
    /// at `position` with the chain value `chain`: the log before it is not
    /// read, so a stream not seen yet may continue from any version (the
    /// epoch is not 0).
    pub fn alone(position: u64, chain: [u8; CHAIN_LEN]) -> Cursor {
        Cursor {
            epoch: Cursor::ALONE_EPOCH,
            ..Cursor::start(position, chain)
        }
    }

    /// Positions do not continue: what follows cannot be checked against
    /// what came before.
    pub fn gap(&mut self) {
        self.next_position = None;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The chain resumes from a stored value not linked to the batch
    /// before (unreadable bytes were skipped).
    pub fn resume_chain(&mut self, chain: [u8; CHAIN_LEN]) {
        self.chain = Some(chain);
        self.chain_epoch = self.chain_epoch.wrapping_add(1);
    }
}

/// Per-segment totals, for the footer check. Kept across incremental scans
/// by a follower.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    pub events: u64,
    pub batches: u64,
    pub last_position: Option<u64>,
    /// Offset right after the last complete batch scanned.
    pub end: usize,
    /// CRC of the salt and every byte scanned, while no gap interrupted it.
    contents: crc32fast::Hasher,
    /// Bytes were skipped as unreadable: the counts are incomplete.
    pub gap: bool,
}

impl Tally {
    /// The totals of a segment whose first `end` bytes were read before
    /// (and vouched for by a checkpoint): `events` events in `batches`
    /// batches, the last at `last_position`, `contents_crc` the CRC-32 of
    /// the salt and the data bytes up to `end`.
    pub fn resume(
        end: usize,
        events: u64,
        batches: u64,
        last_position: Option<u64>,
        contents_crc: u32,
    ) -> Tally {
        // The salt's 8 bytes, then the data bytes.
        let hashed = 8 + (end - SEGMENT_HEADER_LEN) as u64;
        Tally {
            events,
            batches,
            last_position,
            end,
            contents: crc32fast::Hasher::new_with_initial_len(contents_crc, hashed),
            gap: false,
        }
    }

    pub fn new(salt: u64) -> Tally {
        let mut contents = crc32fast::Hasher::new();
        contents.update(&salt.to_le_bytes());
        Tally {
            events: 0,
            batches: 0,
            last_position: None,
            end: SEGMENT_HEADER_LEN,
            contents,
            gap: false,
        }
    }
}

/// One valid batch, as a visitor sees it.
pub(crate) struct BatchSeen<'a, 'b> {
    pub segment: &'a Segment,
    pub batch: &'b BatchRef<'a>,
    pub events: &'b [EventRef<'a>],
    /// The gap epoch the batch was read in.
    pub epoch: u32,
    /// The chain epoch ([`Cursor::chain_epoch`]) it was read in.
    pub chain_epoch: u32,
    /// The stored chain value the batch extends (the previous batch's, or
    /// after unreadable bytes, the one stored where reading resumed).
    pub previous_chain: Option<[u8; CHAIN_LEN]>,
}

/// What the users of the scanner do with what it reads.
pub(crate) trait Visitor {
    /// The last version of `stream` seen so far and the gap epoch it was
    /// seen in; `None` for a stream not seen yet.
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)>;

    /// The log's first segments were retired at the cut `anchor` records
    /// (said before any segment is announced). The walk starts there, or,
    /// `from_archive`, reads the retired segments from an archive first.
    fn anchored(
        &mut self,
        _anchor: &std::sync::Arc<super::retention::Anchor>,
        _from_archive: bool,
    ) {
    }

    /// A segment is about to be scanned (its header checked).
    fn segment(&mut self, ordinal: usize, segment: &std::sync::Arc<Segment>, role: SegmentRole);

    /// A complete, valid batch (reported as out of sequence first if it is).
    fn batch(&mut self, seen: &BatchSeen<'_, '_>);

    /// Something other than a valid batch, with what the decision table
    /// says about it. [`Verdict::Refuse`] findings stop the walk unless the
    /// visitor continues.
    fn finding(&mut self, finding: Finding, verdict: Verdict) -> Flow;
}

/// How a segment's scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// Every byte was judged; the scan may go on to the next segment.
    Done,
    /// A visitor stopped the walk.
    Stopped,
}

/// Reports a finding with its verdict for `role`.
pub(crate) fn report(
    visitor: &mut dyn Visitor,
    role: SegmentRole,
    segment_path: &std::path::Path,
    offset: usize,
    position: Option<u64>,
    kind: FindingKind,
) -> (Verdict, Flow) {
    let verdict = verdict(&kind, role);
    let finding = Finding {
        kind,
        path: segment_path.to_path_buf(),
        offset: offset as u64,
        position,
    };
    let flow = match verdict {
        Verdict::Refuse => visitor.finding(finding, verdict),
        // Not damage: whatever the visitor does with it, the scan goes on.
        Verdict::Discard | Verdict::Wait | Verdict::Remove | Verdict::Rebuild => {
            visitor.finding(finding, verdict);
            Flow::Continue
        }
    };
    (verdict, flow)
}

/// Scans `segment` from `tally.end` on: every batch, then, depending on the
/// role, the footer check (`footer`, for a sealed segment) or the judgement
/// of its tail (the newest). `durable_mark` is the header's mark, read
/// before the data (a follower must not see a mark newer than the data it
/// scans).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_segment(
    segment: &Segment,
    role: SegmentRole,
    footer: Option<&SegmentFooter>,
    durable_mark: Option<DurableMark>,
    cursor: &mut Cursor,
    tally: &mut Tally,
    visitor: &mut dyn Visitor,
) -> ScanEnd {
    let bytes = segment.bytes(segment.len());
    let salt = segment.header.salt;
    let data_end = segment.data_end();
    let path = segment.path.as_path();
    // Where the footer says the data ends, if the claim is possible.
    let sealed_end = footer
        .and_then(|f| usize::try_from(f.data_len).ok())
        .and_then(|len| len.checked_add(SEGMENT_HEADER_LEN))
        .filter(|&end| end <= data_end);
    let mut events = Vec::new();
    let mut offset = tally.end;
    loop {
        let read = batches::read_batch(
            bytes,
            salt,
            segment.header.format_version,
            offset,
            data_end,
            &mut events,
        );
        if let BatchRead::Batch(batch) = read {
            if !tally.gap {
                tally.contents.update(&bytes[batch.start..batch.end]);
            }
            if let Some(kind) = out_of_sequence(cursor, &batch, &events, visitor) {
                let position = events
                    .first()
                    .map_or(batch.commit.first_position, |e| e.event.position);
                let at = events.first().map_or(batch.commit_offset, |e| e.offset);
                if report(visitor, role, path, at, Some(position), kind).1 == Flow::Stop {
                    return ScanEnd::Stopped;
                }
            }
            visitor.batch(&BatchSeen {
                segment,
                batch: &batch,
                events: &events,
                epoch: cursor.epoch,
                chain_epoch: cursor.chain_epoch,
                previous_chain: cursor.chain,
            });
            advance(cursor, tally, &batch, &events);
            offset = batch.end;
            continue;
        }
        let invalid = match read {
            BatchRead::Invalid { at, error } => Some((at, error.to_string())),
            _ => None,
        };
        // `offset` is where the complete batches end.
        let damage = match role {
            SegmentRole::Newest | SegmentRole::Live => judge_tail(
                segment,
                offset,
                invalid,
                durable_mark,
                cursor,
                visitor,
                role,
            ),
            SegmentRole::Sealed | SegmentRole::Directory => match (invalid, sealed_end) {
                (_, Some(end)) if offset >= end => None,
                (None, Some(end)) => Some((
                    offset,
                    FindingKind::InvalidBatch {
                        detail: format!(
                            "zeroes where the footer says the data continues up to offset {end}"
                        ),
                    },
                )),
                (None, None) => None,
                (Some((at, error)), _) => Some((
                    at,
                    FindingKind::InvalidBatch {
                        detail: format!("{error} (in the batch starting at offset {offset})"),
                    },
                )),
            },
        };
        let Some((at, kind)) = damage else {
            break;
        };
        let position = cursor.next_position;
        if report(visitor, role, path, at, position, kind).1 == Flow::Stop {
            return ScanEnd::Stopped;
        }
        // Going on (`verify`): resume after the next valid commit record,
        // taking its position and chain value as the state after the gap.
        let limit = sealed_end.unwrap_or(data_end);
        cursor.gap();
        tally.gap = true;
        match next_commit_record(bytes, salt, offset + FRAME_ALIGN, limit) {
            Some((_, next, commit)) => {
                cursor.next_position = commit.first_position.checked_add(commit.event_count);
                cursor.resume_chain(commit.chain);
                offset = next;
            }
            None => break,
        }
    }
    if tally.gap {
        tally.end = tally.end.max(offset);
    }
    if let Some(footer) = footer
        && role == SegmentRole::Sealed
        && check_footer(segment, footer, cursor, tally, visitor) == Flow::Stop
    {
        return ScanEnd::Stopped;
    }
    ScanEnd::Done
}

/// Moves the cursor and the tally past a valid batch.
fn advance(cursor: &mut Cursor, tally: &mut Tally, batch: &BatchRef<'_>, events: &[EventRef<'_>]) {
    match events.last() {
        Some(last) => {
            cursor.next_position = last.event.position.checked_add(1);
            cursor.last_timestamp_ns = Some(last.event.timestamp_ns);
            tally.last_position = Some(last.event.position);
        }
        // A sync marker sits at the next position and leaves it there.
        None => cursor.next_position = Some(batch.commit.first_position),
    }
    cursor.chain = Some(batch.commit.chain);
    tally.events += events.len() as u64;
    tally.batches += 1;
    tally.end = batch.end;
}

/// The sequence rules: a batch continues the log before it. `None` when it does.
fn out_of_sequence(
    cursor: &Cursor,
    batch: &BatchRef<'_>,
    events: &[EventRef<'_>],
    visitor: &dyn Visitor,
) -> Option<FindingKind> {
    let Some(first) = events.first() else {
        // A sync marker: at the next position.
        let position = batch.commit.first_position;
        return match cursor.next_position {
            Some(expected) if position != expected => Some(FindingKind::OutOfSequence {
                detail: format!("sync marker at position {position}, expected {expected}"),
            }),
            _ => None,
        };
    };
    let event = &first.event;
    if let Some(expected) = cursor.next_position
        && event.position != expected
    {
        return Some(FindingKind::OutOfSequence {
            detail: format!(
                "event position {}, expected {expected} (batches were removed, duplicated or \
                 reordered)",
                event.position
            ),
        });
    }
    // Each stream's run continues that stream (read_batch checked that a
    // run is consecutive and that no stream has two).
    for run in batches::stream_runs(events) {
        let event = &run[0].event;
        if let Some(problem) = stream_continuation(cursor, visitor, event) {
            return Some(FindingKind::OutOfSequence {
                detail: format!("stream {:?} {problem}", event.stream),
            });
        }
    }
    let mut previous = cursor.last_timestamp_ns;
    for event in events {
        let timestamp = event.event.timestamp_ns;
        if let Some(before) = previous
            && timestamp < before
        {
            return Some(FindingKind::OutOfSequence {
                detail: format!(
                    "the event at position {} has timestamp {timestamp} ns, earlier than the \
                     previous event's {before} ns",
                    event.event.position
                ),
            });
        }
        previous = Some(timestamp);
    }
    None
}

/// Whether `event`, the first of its stream's run in a batch, continues
/// what the walk saw of that stream; `None` when it does, else what is
/// wrong.
fn stream_continuation(
    cursor: &Cursor,
    visitor: &dyn Visitor,
    event: &crate::format::body::EventBody<'_>,
) -> Option<String> {
    let version = event.version;
    let known = visitor
        .stream_version(event.stream)
        .or_else(|| cursor.version_at_cut(event.stream));
    match known {
        Some((previous, seen_in)) if seen_in == cursor.epoch => (Some(version)
            != previous.checked_add(1))
        .then(|| format!("jumps from version {previous} to {version}")),
        // Seen before a gap: events may be missing in between.
        Some((previous, _)) => {
            (version <= previous).then(|| format!("goes back from version {previous} to {version}"))
        }
        None => (cursor.epoch == 0 && version != 1)
            .then(|| format!("starts at version {version}, not 1")),
    }
}

/// Judges what follows the last complete batch (at `end`) of the newest
/// segment: nothing, a torn tail, or durable data that is gone. Returns the
/// damage to report as refused, reporting what is not damage itself.
fn judge_tail(
    segment: &Segment,
    end: usize,
    invalid: Option<(usize, String)>,
    durable_mark: Option<DurableMark>,
    cursor: &Cursor,
    visitor: &mut dyn Visitor,
    role: SegmentRole,
) -> Option<(usize, FindingKind)> {
    let bytes = segment.bytes(segment.len());
    let data_end = segment.data_end();
    let file_len = segment.len();
    let what = || match &invalid {
        Some((at, error)) => format!("{error} at offset {at}"),
        None if end >= data_end && segment.is_short() => {
            format!("nothing: the file ends at offset {file_len}")
        }
        None => "zeroes".to_string(),
    };
    let at = invalid.as_ref().map_or(end, |(at, _)| *at);
    // Every commit record after `end` is read: only damage to data that
    // was synced can leave a valid one claiming more than `end`.
    // Holes of the file (never written: they read as zeroes) are skipped,
    // so that a mostly empty segment is not read, nor paged in, whole.
    let tail = batches::classify_tail_in(
        bytes,
        segment.header.salt,
        end,
        data_end,
        segment.data_ranges(end, data_end),
    );
    if let TailState::DamagedSyncedData {
        commit_at,
        synced_offset,
    } = tail
    {
        return Some((
            at,
            FindingKind::DurableDataLost {
                durable_end: synced_offset,
                log_end: end as u64,
                evidence: DurableEvidence::CommitRecord {
                    offset: commit_at as u64,
                },
                detail: what(),
            },
        ));
    }
    if let Some(mark) = durable_mark {
        let durable_end = mark.durable_end as usize;
        if !mark
            .is_plausible(segment.header.segment_size_bytes as usize - crate::format::FOOTER_LEN)
        {
            return Some((
                0,
                FindingKind::InvalidHeader {
                    detail: format!(
                        "the durable mark claims offset {durable_end}, outside the data area"
                    ),
                },
            ));
        }
        if durable_end > end {
            return Some((
                at,
                FindingKind::DurableDataLost {
                    durable_end: durable_end as u64,
                    log_end: end as u64,
                    evidence: DurableEvidence::DurableMark,
                    detail: what(),
                },
            ));
        }
    }
    if let TailState::Torn { last_nonzero_end } = tail {
        let detail = match &invalid {
            Some((at, error)) => format!("{error} at offset {at}"),
            None => "not a complete batch".to_string(),
        };
        report(
            visitor,
            role,
            &segment.path,
            end,
            cursor.next_position,
            FindingKind::TornTail {
                bytes: (last_nonzero_end - end) as u64,
                detail,
            },
        );
    }
    if segment.is_short() {
        report(
            visitor,
            role,
            &segment.path,
            file_len,
            None,
            FindingKind::ShortFile {
                len: segment.file_len(),
                expected: segment.header.segment_size_bytes,
            },
        );
    }
    None
}

/// Checks a sealed segment's footer against what the scan found.
fn check_footer(
    segment: &Segment,
    footer: &SegmentFooter,
    cursor: &Cursor,
    tally: &Tally,
    visitor: &mut dyn Visitor,
) -> Flow {
    let data_end = segment.data_end();
    let bytes = segment.bytes(segment.len());
    let data_len = (tally.end - SEGMENT_HEADER_LEN) as u64;
    let mut mismatches = Vec::new();
    if !tally.gap {
        // After unreadable bytes the counts are unknown, not wrong.
        if footer.data_len != data_len {
            mismatches.push(format!(
                "data_len {} but the batches end after {data_len} bytes",
                footer.data_len
            ));
        }
        if footer.event_count != tally.events || footer.batch_count != tally.batches {
            mismatches.push(format!(
                "{} events in {} batches, but the segment holds {} in {}",
                footer.event_count, footer.batch_count, tally.events, tally.batches
            ));
        }
        if Some(footer.last_position) != tally.last_position {
            mismatches.push(format!(
                "last_position {} but the last event is at {}",
                footer.last_position,
                tally
                    .last_position
                    .map_or_else(|| "none".to_string(), |p| p.to_string())
            ));
        }
    }
    if let Some(chain) = cursor.chain
        && footer.chain_end != chain
    {
        mismatches.push("chain_end differs from the last batch's chain value".to_string());
    }
    let claimed_end = usize::try_from(footer.data_len)
        .ok()
        .and_then(|len| len.checked_add(SEGMENT_HEADER_LEN))
        .filter(|&end| end <= data_end);
    match claimed_end {
        Some(claimed_end) => {
            let contents_crc = if tally.gap || claimed_end != tally.end {
                footer::contents_crc(segment.header.salt, &bytes[SEGMENT_HEADER_LEN..claimed_end])
            } else {
                tally.contents.clone().finalize()
            };
            if contents_crc != footer.contents_crc {
                mismatches.push("contents_crc does not match the data".to_string());
            }
        }
        None => mismatches.push(format!(
            "data_len {} runs past the data area",
            footer.data_len
        )),
    }
    let footer_at = data_end;
    if !mismatches.is_empty() {
        let (_, flow) = report(
            visitor,
            SegmentRole::Sealed,
            &segment.path,
            footer_at,
            Some(footer.last_position),
            FindingKind::FooterMismatch {
                detail: mismatches.join("; "),
            },
        );
        if flow == Flow::Stop {
            return Flow::Stop;
        }
    }
    // Only zeroes follow the data of a sealed segment: with the checksums
    // above, every byte of a sealed segment is checked.
    let zeroes_from = tally
        .end
        .max(claimed_end.unwrap_or(tally.end))
        .min(data_end);
    if let Some(at) = bytes[zeroes_from..data_end].iter().position(|&b| b != 0) {
        let (_, flow) = report(
            visitor,
            SegmentRole::Sealed,
            &segment.path,
            zeroes_from + at,
            None,
            FindingKind::BytesAfterSealedData,
        );
        return flow;
    }
    Flow::Continue
}

/// The first valid commit record at an 8-aligned offset in `from..limit`:
/// its offset, the offset after it, and its body. Never panics.
pub(crate) fn next_commit_record(
    bytes: &[u8],
    salt: u64,
    from: usize,
    limit: usize,
) -> Option<(usize, usize, CommitBody<'_>)> {
    let limit = limit.min(bytes.len());
    let mut offset = from.next_multiple_of(FRAME_ALIGN);
    while offset + FRAME_HEADER_LEN <= limit {
        let word = frame::load_header_word(bytes, offset).to_le_bytes();
        let body_len = u32::from_le_bytes([word[0], word[1], word[2], word[3]]) as usize;
        if word[4] == FrameKind::Commit as u8
            && word[5] == FLAG_END_OF_BATCH
            && word[6] == 0
            && word[7] == 0
            && body_len <= MAX_RESYNC_COMMIT_BODY_BYTES
            && let FrameRead::Frame(frame) = frame::read_frame(bytes, salt, offset, limit)
            && let Ok(commit) = body::decode_commit(frame.body)
        {
            return Some((offset, frame.next_offset, commit));
        }
        offset += FRAME_ALIGN;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_search_never_panics_on_garbage() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..500 {
            let mut bytes = vec![0u8; 512];
            for b in bytes.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            // Make some words look like commit frame headers.
            for at in (0..512).step_by(64) {
                bytes[at + 4] = FrameKind::Commit as u8;
                bytes[at + 5] = FLAG_END_OF_BATCH;
                bytes[at + 6] = 0;
                bytes[at + 7] = 0;
            }
            let _ = next_commit_record(&bytes, 1, 0, bytes.len());
            let _ = next_commit_record(&bytes, 1, 500, 10_000);
        }
    }
}
