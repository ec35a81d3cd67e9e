//! Reading events out of the mapped segments: by index location, by run, or
//! sequentially from a position. Every read re-checks the frame checksum.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::body::{self, EventBody};
use crate::format::frame::{self, FrameKind, FrameRead};
use crate::format::index_file::SPARSE_STRIDE;
use crate::index::{Location, Run};
use crate::log::finding::FindingKind;
use crate::log::segment::Segment;

use super::State;

/// Decodes the event frame at `offset` of `segment`, whose published
/// batches end at `end`; returns the event and the offset after its frame.
///
/// # Errors
/// [`Error::Corrupt`] when the frame is not a valid event: the index only
/// points at events checked on open or written since, so the file changed.
pub(crate) fn event_frame_at(
    segment: &Segment,
    end: usize,
    offset: usize,
) -> Result<(EventBody<'_>, usize)> {
    let bytes = segment.bytes(end);
    let problem = match frame::read_frame(bytes, segment.header.salt, offset, end) {
        FrameRead::Frame(frame) if frame.kind == FrameKind::Event => {
            match body::decode_event(frame.body, segment.header.format_version) {
                Ok(event) => return Ok((event, frame.next_offset)),
                Err(error) => error.to_string(),
            }
        }
        FrameRead::Frame(_) => "the index points at a commit record, not an event".to_string(),
        FrameRead::Empty => "the index points at an empty frame".to_string(),
        FrameRead::Invalid(error) => error.to_string(),
    };
    Err(changed_after_open(segment, offset, problem))
}

/// The error for a record that no longer decodes where the index or the
/// scan on open left it valid.
fn changed_after_open(segment: &Segment, offset: usize, detail: String) -> Error {
    Error::found(
        &segment.path,
        offset as u64,
        None,
        FindingKind::ChangedAfterOpen { detail },
    )
}

/// Decodes the event at `location` and hands it to `f`.
pub(crate) fn with_event_at<T>(
    state: &State,
    location: Location,
    f: impl FnOnce(&EventBody<'_>) -> T,
) -> Result<T> {
    let ordinal = location.segment();
    let end = state.index.segments[ordinal].end_offset;
    let (event, _) = event_frame_at(&state.segments[ordinal], end, location.offset())?;
    Ok(f(&event))
}

/// Calls `f` with each event of `run`: consecutive event frames of one batch.
pub(crate) fn visit_run(state: &State, run: &Run, mut f: impl FnMut(&EventBody<'_>)) -> Result<()> {
    let ordinal = run.first.segment();
    let segment = &state.segments[ordinal];
    let end = state.index.segments[ordinal].end_offset;
    let mut offset = run.first.offset();
    for _ in 0..run.count {
        let (event, next) = event_frame_at(segment, end, offset)?;
        f(&event);
        offset = next;
    }
    Ok(())
}

/// Where reading the log from a position starts: the segment, a frame
/// offset recorded in the sparse position index, and how many events to
/// step over from there.
pub(crate) struct LogStart {
    pub ordinal: usize,
    offset: usize,
    skip: u64,
}

impl LogStart {
    /// The start of segment `ordinal`'s data: its first event, if any.
    pub fn segment_start(ordinal: usize) -> LogStart {
        LogStart {
            ordinal,
            offset: crate::format::SEGMENT_HEADER_LEN,
            skip: 0,
        }
    }

    /// The start of segment `ordinal`'s data, stepping over its first
    /// `skip` events (a segment without an index: one read from an archive).
    pub fn skipping(ordinal: usize, skip: u64) -> LogStart {
        LogStart {
            skip,
            ..LogStart::segment_start(ordinal)
        }
    }
}

/// Where reading from `from_position` starts; `None` when no event is there.
///
/// # Errors
/// [`Error::Corrupt`] when the segment's index file and the segment are damaged.
pub(crate) fn log_start(state: &State, from_position: u64) -> Result<Option<LogStart>> {
    // Positions before the first kept event were retired: reading starts
    // at the first kept one (as a Kafka consumer's earliest offset).
    let from_position = from_position.max(state.index.start_position());
    let Some(ordinal) = state.index.segment_of_position(from_position) else {
        return Ok(None);
    };
    let first = &state.index.segments[ordinal];
    let relative = from_position - first.base_position;
    let offset = first
        .view()?
        .sparse_offset(relative / SPARSE_STRIDE)
        .expect("every stride of a segment's events has a sparse offset");
    Ok(Some(LogStart {
        ordinal,
        offset: offset as usize,
        skip: relative % SPARSE_STRIDE,
    }))
}

/// The segments from `ordinal` on, shared (so they stay mapped without the
/// store's lock), each with the end of its published batches. Published bytes
/// never change, so they can be read after the lock is released.
pub(crate) fn published_segments(state: &State, ordinal: usize) -> Vec<(Arc<Segment>, usize)> {
    state.segments[ordinal..]
        .iter()
        .zip(&state.index.segments[ordinal..])
        .map(|(segment, index)| (Arc::clone(segment), index.end_offset))
        .collect()
}

/// Calls `f` with every event of `segments` (each with the end of its
/// published batches), starting in the first at `start`, until it breaks.
pub(crate) fn visit_segments<'s>(
    segments: impl IntoIterator<Item = (&'s Segment, usize)>,
    start: &LogStart,
    mut f: impl FnMut(&EventBody<'_>) -> ControlFlow<()>,
) -> Result<()> {
    visit_event_frames(segments, start, |segment, frame, _| {
        let event = body::decode_event(frame.body, segment.header.format_version)
            .map_err(|e| changed_after_open(segment, frame.offset, e.to_string()))?;
        Ok(f(&event))
    })
}

/// Calls `f` with every event frame of `segments` (each with the end of its
/// published batches), starting in the first at `start`, until it breaks:
/// the segment, the checked frame, and the frame's bytes as stored (its
/// header, body and padding: from its offset to the next frame's), which
/// are what the Merkle tree hashes. Commit records are stepped over.
pub(crate) fn visit_event_frames<'s>(
    segments: impl IntoIterator<Item = (&'s Segment, usize)>,
    start: &LogStart,
    mut f: impl FnMut(&'s Segment, &frame::Frame<'s>, &'s [u8]) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut offset = start.offset;
    let mut skip = start.skip;
    for (segment, end) in segments {
        let bytes = segment.bytes(end);
        while offset < end {
            let frame = match frame::read_frame(bytes, segment.header.salt, offset, end) {
                FrameRead::Frame(frame) => frame,
                FrameRead::Empty => {
                    return Err(changed_after_open(
                        segment,
                        offset,
                        "an empty frame inside the indexed log".to_string(),
                    ));
                }
                FrameRead::Invalid(error) => {
                    return Err(changed_after_open(segment, offset, error.to_string()));
                }
            };
            if frame.kind == FrameKind::Event {
                if skip > 0 {
                    skip -= 1;
                } else {
                    // read_frame checked `offset < next_offset <= end`.
                    let stored = &bytes[frame.offset..frame.next_offset];
                    if f(segment, &frame, stored)?.is_break() {
                        return Ok(());
                    }
                }
            }
            offset = frame.next_offset;
        }
        offset = crate::format::SEGMENT_HEADER_LEN;
    }
    Ok(())
}

/// Calls `f` with every event of the log from `from_position` on, in order,
/// until it breaks or the log ends, while the caller holds the state. Finds
/// the start through the sparse position index, then reads frames
/// sequentially.
pub(crate) fn visit_log(
    state: &State,
    from_position: u64,
    f: impl FnMut(&EventBody<'_>) -> ControlFlow<()>,
) -> Result<()> {
    let Some(start) = log_start(state, from_position)? else {
        return Ok(());
    };
    let segments = state.segments[start.ordinal..]
        .iter()
        .zip(&state.index.segments[start.ordinal..])
        .map(|(segment, index)| (&**segment, index.end_offset));
    visit_segments(segments, &start, f)
}
