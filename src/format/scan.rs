//! Reading whole batches out of a segment's bytes, and classifying what
//! follows the last good batch. Pure functions over a byte slice, shared by
//! open (recovery), the read paths, followers in other processes and verify.

use super::body::{self, BodyError, COMMIT_CHAIN_PREFIX_LEN, CommitBody, EventBody};
use super::frame::{self, FrameError, FrameKind, FrameRead};
use super::{FRAME_ALIGN, MULTI_STREAM_FORMAT_VERSION, SEGMENT_HEADER_LEN};

/// The most events one batch may hold, whatever the configured limit. Bounds
/// the memory a scanner spends on one batch read from disk.
pub const MAX_EVENTS_PER_BATCH: usize = 100_000;

/// The most streams one batch may write (from format version
/// [`MULTI_STREAM_FORMAT_VERSION`]). Bounds the work of checking that no
/// stream has two runs in a batch read from disk, and what one atomic
/// append may lock up.
pub const MAX_STREAMS_PER_BATCH: usize = 1_000;

/// One event of a batch, borrowed from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Offset of the event's frame within the segment.
    pub offset: usize,
    /// The decoded event.
    pub event: EventBody<'a>,
}

/// A complete, valid batch. A batch of no events (a commit record alone) is a
/// *sync marker*: the writer appends one when it closes, after syncing, so
/// that its `synced_offset` vouches for everything before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRef<'a> {
    /// Offset of the batch's first frame.
    pub start: usize,
    /// Offset of the commit frame.
    pub commit_offset: usize,
    /// Offset right after the commit frame: where the next batch starts.
    pub end: usize,
    /// The decoded commit record.
    pub commit: CommitBody<'a>,
    /// The bytes the hash chain covers after the previous chain value: event
    /// frames, then the commit body after its chain value.
    pub event_frames: &'a [u8],
    /// The hashed part of the commit body.
    pub commit_tail: &'a [u8],
}

/// Why the bytes at a batch position are not a complete valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchError {
    /// A frame failed its checks.
    Frame(FrameError),
    /// A frame body did not decode.
    Body(BodyError),
    /// The batch stops (zero header word) before its commit record.
    Incomplete,
    /// The frames are valid but disagree with each other.
    Inconsistent(&'static str),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Frame(e) => e.fmt(f),
            BatchError::Body(e) => e.fmt(f),
            BatchError::Incomplete => write!(f, "batch ends before its commit record"),
            BatchError::Inconsistent(why) => write!(f, "batch is inconsistent: {why}"),
        }
    }
}

/// The result of reading at a batch position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchRead<'a> {
    /// A complete valid batch; its events were pushed to the caller's vector.
    Batch(BatchRef<'a>),
    /// Nothing written at this position.
    Empty,
    /// Something is written but it is not a complete valid batch. `at` is
    /// the offset of the offending frame.
    Invalid {
        /// Offset of the frame where the problem was found.
        at: usize,
        /// What is wrong.
        error: BatchError,
    },
}

/// Reads the batch starting at `start` of a segment of `format_version`
/// (its event bodies' layout). On success the batch's events are
/// appended to `events` (cleared first). Never panics, whatever the bytes.
pub fn read_batch<'a>(
    bytes: &'a [u8],
    salt: u64,
    format_version: u16,
    start: usize,
    data_end: usize,
    events: &mut Vec<EventRef<'a>>,
) -> BatchRead<'a> {
    events.clear();
    // The first event of each stream's run once there are two or more
    // (from version 4 a batch may write several streams), to check that no
    // stream has two runs. Empty, and so not allocated, for a batch of one
    // stream.
    let mut run_starts: Vec<usize> = Vec::new();
    let mut offset = start;
    loop {
        let frame = match frame::read_frame(bytes, salt, offset, data_end) {
            FrameRead::Frame(frame) => frame,
            FrameRead::Empty if offset == start => return BatchRead::Empty,
            FrameRead::Empty => return invalid(offset, BatchError::Incomplete),
            FrameRead::Invalid(error) => return invalid(offset, BatchError::Frame(error)),
        };
        match frame.kind {
            FrameKind::Event => {
                if events.len() >= MAX_EVENTS_PER_BATCH {
                    return invalid(
                        offset,
                        BatchError::Inconsistent("more events than a batch may hold"),
                    );
                }
                let event = match body::decode_event(frame.body, format_version) {
                    Ok(event) => event,
                    Err(error) => return invalid(offset, BatchError::Body(error)),
                };
                let problem = match events.last() {
                    None => None,
                    Some(previous)
                        if Some(event.position) != previous.event.position.checked_add(1) =>
                    {
                        Some("event positions within the batch are not consecutive")
                    }
                    Some(previous) if event.stream == previous.event.stream => {
                        (Some(event.version) != previous.event.version.checked_add(1))
                            .then_some("event versions within the batch are not consecutive")
                    }
                    Some(_) if format_version < MULTI_STREAM_FORMAT_VERSION => {
                        Some("events of one batch belong to different streams")
                    }
                    Some(_) if run_starts.len().max(1) >= MAX_STREAMS_PER_BATCH => {
                        Some("the batch writes more streams than a batch may")
                    }
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    return invalid(offset, BatchError::Inconsistent(problem));
                }
                if let Some(previous) = events.last()
                    && previous.event.stream != event.stream
                {
                    if run_starts.is_empty() {
                        run_starts.push(0);
                    }
                    run_starts.push(events.len());
                }
                events.push(EventRef { offset, event });
                offset = frame.next_offset;
            }
            FrameKind::Commit => {
                let commit = match body::decode_commit(frame.body) {
                    Ok(commit) => commit,
                    Err(error) => return invalid(offset, BatchError::Body(error)),
                };
                let problem = if commit.synced_offset < SEGMENT_HEADER_LEN as u64
                    || commit.synced_offset > start as u64
                    || !commit.synced_offset.is_multiple_of(FRAME_ALIGN as u64)
                {
                    Some("commit synced_offset is outside the data before the batch")
                } else if commit.event_count != events.len() as u64 {
                    Some("commit event_count differs from the events in the batch")
                } else if stream_has_two_runs(events, &mut run_starts) {
                    Some("a stream has two runs of events in the batch")
                } else {
                    match events.first() {
                        // A commit alone is a sync marker (written on close).
                        None => None,
                        Some(first) if first.event.position != commit.first_position => {
                            Some("commit first_position differs from the first event's position")
                        }
                        Some(_) => None,
                    }
                };
                if let Some(problem) = problem {
                    return invalid(offset, BatchError::Inconsistent(problem));
                }
                return BatchRead::Batch(BatchRef {
                    start,
                    commit_offset: offset,
                    end: frame.next_offset,
                    commit,
                    event_frames: &bytes[start..offset],
                    commit_tail: &frame.body[COMMIT_CHAIN_PREFIX_LEN..],
                });
            }
        }
    }
}

/// Whether two of the runs starting at `run_starts` (indexes into
/// `events`) belong to the same stream. Sorts `run_starts` by stream:
/// O(r log r) for r runs, at most [`MAX_STREAMS_PER_BATCH`].
fn stream_has_two_runs(events: &[EventRef<'_>], run_starts: &mut [usize]) -> bool {
    if run_starts.len() < 2 {
        return false;
    }
    run_starts.sort_unstable_by_key(|&i| events[i].event.stream);
    run_starts
        .windows(2)
        .any(|pair| events[pair[0]].event.stream == events[pair[1]].event.stream)
}

/// The events of a valid batch split into its streams' runs, in log order:
/// one run in a batch of one stream; from format version
/// [`MULTI_STREAM_FORMAT_VERSION`], one per stream written ([`read_batch`]
/// checked that each run is consecutive versions and that no stream has
/// two). The one place that says how a batch's events group by stream.
pub fn stream_runs<'e, 'a>(events: &'e [EventRef<'a>]) -> impl Iterator<Item = &'e [EventRef<'a>]> {
    events.chunk_by(|a, b| a.event.stream == b.event.stream)
}

/// The last event of each stream's run in a valid batch ([`stream_runs`]):
/// each stream's version after the batch.
pub fn stream_ends<'e, 'a>(events: &'e [EventRef<'a>]) -> impl Iterator<Item = &'e EventBody<'a>> {
    stream_runs(events).map(|run| &run[run.len() - 1].event)
}

fn invalid<'a>(at: usize, error: BatchError) -> BatchRead<'a> {
    BatchRead::Invalid { at, error }
}

/// What lies after the last good batch of the newest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailState {
    /// Only zeroes: a clean end.
    Clean,
    /// Written bytes that were never durable: a torn tail, safe to discard.
    /// `last_nonzero_end` is where the written bytes end (for zeroing).
    Torn {
        /// Offset right after the last non-zero 8-byte word.
        last_nonzero_end: usize,
    },
    /// A valid commit record later in the segment claims that bytes past the
    /// bad spot were durable: the damage is in synced data, not a torn write.
    DamagedSyncedData {
        /// Offset of the commit record whose claim proves it.
        commit_at: usize,
        /// The durable offset it claims.
        synced_offset: u64,
    },
}

/// Classifies the bytes from `from` (where the last good batch ended) to
/// `data_end`. Looks at every 8-byte aligned offset for a valid commit frame
/// whose `synced_offset` lies past `from`: only damage to data that had been
/// synced can produce one, since a sync covers a prefix of the segment.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn classify_tail(bytes: &[u8], salt: u64, from: usize, data_end: usize) -> TailState {
    classify_tail_in(bytes, salt, from, data_end, std::iter::once(from..data_end))
}

/// [`classify_tail`], looking only at the words in `ranges` (ascending,
/// within `from..data_end`): the caller knows every other byte is zero
/// (a file system's holes), so no frame starts there.
pub fn classify_tail_in(
    bytes: &[u8],
    salt: u64,
    from: usize,
    data_end: usize,
    ranges: impl IntoIterator<Item = std::ops::Range<usize>>,
) -> TailState {
    let data_end = data_end.min(bytes.len());
    let mut last_nonzero_end = None;
    for range in ranges {
        // Frames start at multiples of FRAME_ALIGN from the header.
        let mut offset = range.start.max(from).next_multiple_of(FRAME_ALIGN);
        let end = range.end.min(data_end);
        while offset + FRAME_ALIGN <= end {
            let word = frame::load_header_word(bytes, offset);
            if word != 0 {
                last_nonzero_end = Some(offset + FRAME_ALIGN);
                if (word >> 32) as u8 == FrameKind::Commit as u8
                    && let FrameRead::Frame(frame) =
                        frame::read_frame(bytes, salt, offset, data_end)
                    && let Ok(commit) = body::decode_commit(frame.body)
                    && commit.synced_offset > from as u64
                {
                    return TailState::DamagedSyncedData {
                        commit_at: offset,
                        synced_offset: commit.synced_offset,
                    };
                }
            }
            offset += FRAME_ALIGN;
        }
    }
    match last_nonzero_end {
        None => TailState::Clean,
        Some(last_nonzero_end) => TailState::Torn { last_nonzero_end },
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::{encode_commit_frame, encode_event_frame};
    use super::super::{CHAIN_LEN, FORMAT_VERSION, chain};
    use super::*;

    const SALT: u64 = 99;

    /// An event of `stream` with nothing but its place and `data`.
    fn test_event<'a>(
        stream: &'a str,
        version: u64,
        position: u64,
        data: &'a [u8],
    ) -> EventBody<'a> {
        EventBody {
            stream,
            version,
            position,
            id: [0; 16],
            event_type: "t",
            timestamp_ns: 1,
            correlation_id: None,
            causation_id: None,
            content_type: None,
            metadata: b"",
            data,
            subject: None,
        }
    }

    /// A segment-like buffer: a zero header area, then `batches` batches of
    /// `per_batch` events, then `extra` zero bytes.
    fn build(batches: u64, per_batch: u64, synced: impl Fn(usize) -> u64, extra: usize) -> Vec<u8> {
        let mut out = vec![0u8; SEGMENT_HEADER_LEN];
        let mut position = 0;
        let mut version = 0;
        let mut previous = chain::GENESIS;
        for _ in 0..batches {
            let start = out.len();
            for _ in 0..per_batch {
                version += 1;
                let event = test_event("s", version, position, b"payload");
                position += 1;
                encode_event_frame(&mut out, SALT, FORMAT_VERSION, &event);
            }
            let commit = CommitBody {
                chain: [0; CHAIN_LEN],
                first_position: position - per_batch,
                event_count: per_batch,
                synced_offset: synced(start),
                command_id: None,
            };
            previous = encode_commit_frame(&mut out, SALT, start, &previous, &commit);
        }
        out.resize(out.len() + extra, 0);
        out
    }

    /// A segment-like buffer holding one batch whose events belong to
    /// `streams` (one event each, version 1), in that order.
    fn one_batch_of(streams: &[String]) -> Vec<u8> {
        let mut out = vec![0u8; SEGMENT_HEADER_LEN];
        for (position, stream) in streams.iter().enumerate() {
            let event = test_event(stream, 1, position as u64, b"");
            encode_event_frame(&mut out, SALT, FORMAT_VERSION, &event);
        }
        let commit = CommitBody {
            chain: [0; CHAIN_LEN],
            first_position: 0,
            event_count: streams.len() as u64,
            synced_offset: SEGMENT_HEADER_LEN as u64,
            command_id: None,
        };
        encode_commit_frame(&mut out, SALT, SEGMENT_HEADER_LEN, &chain::GENESIS, &commit);
        out
    }

    /// The first batch of `bytes`, read as a segment of `format_version`;
    /// its events go to `events`.
    fn read_first_into<'a>(
        bytes: &'a [u8],
        format_version: u16,
        events: &mut Vec<EventRef<'a>>,
    ) -> BatchRead<'a> {
        read_batch(
            bytes,
            SALT,
            format_version,
            SEGMENT_HEADER_LEN,
            bytes.len(),
            events,
        )
    }

    fn read_first(bytes: &[u8], format_version: u16) -> BatchRead<'_> {
        read_first_into(bytes, format_version, &mut Vec::new())
    }

    #[test]
    fn a_batch_writes_at_most_max_streams_per_batch_streams() {
        let names = |count: usize| (0..count).map(|i| format!("s-{i}")).collect::<Vec<_>>();
        let most = one_batch_of(&names(MAX_STREAMS_PER_BATCH));
        assert!(matches!(
            read_first(&most, FORMAT_VERSION),
            BatchRead::Batch(_)
        ));
        let more = one_batch_of(&names(MAX_STREAMS_PER_BATCH + 1));
        assert!(matches!(
            read_first(&more, FORMAT_VERSION),
            BatchRead::Invalid {
                error: BatchError::Inconsistent("the batch writes more streams than a batch may"),
                ..
            }
        ));
    }

    #[test]
    fn several_streams_in_one_batch_need_version_4_and_one_run_each() {
        let streams = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let two = one_batch_of(&streams(&["a", "b"]));
        assert!(matches!(
            read_first(&two, MULTI_STREAM_FORMAT_VERSION),
            BatchRead::Batch(_)
        ));
        assert!(matches!(
            read_first(&two, MULTI_STREAM_FORMAT_VERSION - 1),
            BatchRead::Invalid {
                error: BatchError::Inconsistent("events of one batch belong to different streams"),
                ..
            }
        ));
        // "a" again, after "b": a second run of it (and version 1 twice).
        let twice = one_batch_of(&streams(&["a", "b", "c", "a"]));
        assert!(matches!(
            read_first(&twice, FORMAT_VERSION),
            BatchRead::Invalid {
                error: BatchError::Inconsistent("a stream has two runs of events in the batch"),
                ..
            }
        ));
        let mut events = Vec::new();
        let BatchRead::Batch(_) = read_first_into(&two, FORMAT_VERSION, &mut events) else {
            panic!("valid");
        };
        let runs: Vec<Vec<&str>> = stream_runs(&events)
            .map(|run| run.iter().map(|e| e.event.stream).collect())
            .collect();
        assert_eq!(runs, [["a"], ["b"]]);
        let ends: Vec<(&str, u64)> = stream_ends(&events)
            .map(|e| (e.stream, e.version))
            .collect();
        assert_eq!(ends, [("a", 1), ("b", 1)]);
    }

    fn read_all(bytes: &[u8]) -> (usize, BatchRead<'_>) {
        let mut events = Vec::new();
        let mut offset = SEGMENT_HEADER_LEN;
        let mut count = 0;
        loop {
            match read_batch(
                bytes,
                SALT,
                FORMAT_VERSION,
                offset,
                bytes.len(),
                &mut events,
            ) {
                BatchRead::Batch(batch) => {
                    count += 1;
                    offset = batch.end;
                }
                other => return (count, other),
            }
        }
    }

    #[test]
    fn reads_every_batch_then_empty() {
        let bytes = build(5, 3, |_| SEGMENT_HEADER_LEN as u64, 256);
        assert_eq!(read_all(&bytes), (5, BatchRead::Empty));
    }

    #[test]
    fn a_batch_cut_in_half_is_incomplete() {
        let mut bytes = build(2, 4, |_| SEGMENT_HEADER_LEN as u64, 512);
        let len = bytes.len();
        let mut events = Vec::new();
        let second_start = match read_batch(
            &bytes,
            SALT,
            FORMAT_VERSION,
            SEGMENT_HEADER_LEN,
            len,
            &mut events,
        ) {
            BatchRead::Batch(batch) => batch.end,
            other => panic!("{other:?}"),
        };
        let third_frame =
            match read_batch(&bytes, SALT, FORMAT_VERSION, second_start, len, &mut events) {
                BatchRead::Batch(_) => events[2].offset,
                other => panic!("{other:?}"),
            };
        // Zero everything from the third event frame of the second batch on:
        // its first two frames stay valid, its commit is gone.
        bytes[third_frame..].fill(0);
        let (count, rest) = read_all(&bytes);
        assert_eq!(count, 1);
        assert_eq!(
            rest,
            BatchRead::Invalid {
                at: third_frame,
                error: BatchError::Incomplete
            }
        );
    }

    #[test]
    fn torn_tail_is_torn_and_synced_damage_is_found() {
        // Every batch claims everything before it was synced.
        let bytes = build(4, 2, |start| start as u64, 128);
        let mut events = Vec::new();
        let first_end = match read_batch(
            &bytes,
            SALT,
            FORMAT_VERSION,
            SEGMENT_HEADER_LEN,
            bytes.len(),
            &mut events,
        ) {
            BatchRead::Batch(b) => b.end,
            other => panic!("{other:?}"),
        };
        // Damage the second batch: later commits claim it was durable.
        let mut damaged = bytes.clone();
        damaged[first_end + 20] ^= 0xFF;
        assert!(matches!(
            classify_tail(&damaged, SALT, first_end, damaged.len()),
            TailState::DamagedSyncedData { .. }
        ));
        // With claims that nothing past the header was synced, the same damage is a torn tail.
        let unsynced = build(4, 2, |_| SEGMENT_HEADER_LEN as u64, 128);
        let mut torn = unsynced.clone();
        torn[first_end + 20] ^= 0xFF;
        let written_end = unsynced.len() - 128;
        assert_eq!(
            classify_tail(&torn, SALT, first_end, torn.len()),
            TailState::Torn {
                last_nonzero_end: written_end
            }
        );
        assert_eq!(
            classify_tail(&unsynced, SALT, written_end, unsynced.len()),
            TailState::Clean
        );
    }

    #[test]
    fn arbitrary_garbage_never_panics() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..2_000 {
            let mut events = Vec::new();
            let mut bytes = vec![0u8; SEGMENT_HEADER_LEN + 256];
            for b in bytes[SEGMENT_HEADER_LEN..].iter_mut() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (seed >> 56) as u8;
            }
            let _ = read_batch(
                &bytes,
                SALT,
                FORMAT_VERSION,
                SEGMENT_HEADER_LEN,
                bytes.len(),
                &mut events,
            );
            let _ = classify_tail(&bytes, SALT, SEGMENT_HEADER_LEN, bytes.len());
        }
    }
}
