//! The read paths: a stream by version (through the index, never a scan) and
//! the whole log by position.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::{EventView, RecordedEvent};
use crate::format::body::{self, EventBody};
use crate::format::frame::{self, FrameKind, FrameRead};
use crate::index::{Location, POSITION_INDEX_STRIDE, Run};

use super::{State, Store};
use crate::segment::Segment;

impl Store {
    /// Reads up to `max_count` events of `stream`, from version `from_version`
    /// (1 is the first event) forward. A missing stream reads as empty.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if an indexed record no longer decodes.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.shared.read_state();
        state
            .index
            .stream_locations_from(stream, from_version)
            .iter()
            .take(max_count)
            .map(|&location| with_event_at(&state, location, RecordedEvent::from_body))
            .collect()
    }

    /// Reads up to `max_count` events of `stream`, from version `from_version`
    /// backward (newest first). `u64::MAX` starts at the newest event.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if an indexed record no longer decodes.
    pub fn read_stream_backward(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.shared.read_state();
        let locations = state.index.stream_locations(stream);
        let end = usize::try_from(from_version)
            .unwrap_or(usize::MAX)
            .min(locations.len());
        locations[..end]
            .iter()
            .rev()
            .take(max_count)
            .map(|&location| with_event_at(&state, location, RecordedEvent::from_body))
            .collect()
    }

    /// Reads up to `max_count` events of the whole log in order, from global
    /// position `from_position` (0 is the first event).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a record no longer decodes.
    pub fn read_all(&self, from_position: u64, max_count: usize) -> Result<Vec<RecordedEvent>> {
        let mut out = Vec::new();
        if max_count == 0 {
            return Ok(out);
        }
        let state = self.shared.read_state();
        visit_log(&state, from_position, |event| {
            out.push(RecordedEvent::from_body(event));
            if out.len() == max_count {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(out)
    }

    /// Reads up to `max_count` events of the whole log backward (newest
    /// first), from position `from_position` down. `u64::MAX` starts at the
    /// newest event.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a record no longer decodes.
    pub fn read_all_backward(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.shared.read_state();
        let mut out = Vec::new();
        let Some(newest) = state.index.next_position().checked_sub(1) else {
            return Ok(out);
        };
        let mut position = from_position.min(newest);
        let mut block = Vec::new();
        while out.len() < max_count {
            // Read the stride-aligned block holding `position` forward, then
            // hand it out in reverse.
            let Some(ordinal) = state.index.segment_of_position(position) else {
                break;
            };
            let base = state.index.segments[ordinal].base_position;
            let block_start =
                base + (position - base) / POSITION_INDEX_STRIDE * POSITION_INDEX_STRIDE;
            block.clear();
            visit_log(&state, block_start, |event| {
                if event.position > position {
                    return ControlFlow::Break(());
                }
                block.push(RecordedEvent::from_body(event));
                ControlFlow::Continue(())
            })?;
            out.extend(block.drain(..).rev().take(max_count - out.len()));
            match block_start.checked_sub(1) {
                Some(previous) => position = previous,
                None => break,
            }
        }
        Ok(out)
    }

    /// Calls `f` with a borrowed view of every event of the log from
    /// `from_position` on, in order, until `f` returns `Break` or the log (as
    /// it was when the call began) ends. Nothing is copied or allocated per
    /// event: the views point into the mapped segments, so this is the way
    /// to fold many events (projections, exports, checks). The store's lock
    /// is not held while `f` runs: `f` may use the store, even append
    /// (events appended meanwhile are not visited).
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("a", ExpectedVersion::Any, &[EventData::new("E", vec![1]), EventData::new("E", vec![2])])?;
    /// let mut sum = 0u64;
    /// store.scan_all(0, |event| {
    ///     sum += u64::from(event.data[0]);
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(sum, 3);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a record no longer decodes.
    pub fn scan_all(
        &self,
        from_position: u64,
        f: impl FnMut(&EventView<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let (start, segments) = {
            let state = self.shared.read_state();
            let Some(start) = log_start(&state, from_position) else {
                return Ok(());
            };
            let segments = published_segments(&state, start.ordinal);
            (start, segments)
        };
        // The lock is released: `f` may use the store.
        visit_segments(segments.iter().map(|(s, end)| (&**s, *end)), &start, f)
    }

    /// Calls `f` with a borrowed view of each event of `stream` from version
    /// `from_version` on, through the index, until `f` returns `Break`; see
    /// [`Store::scan_all`].
    ///
    /// # Errors
    /// [`Error::Corrupt`] if an indexed record no longer decodes.
    pub fn scan_stream(
        &self,
        stream: &str,
        from_version: u64,
        mut f: impl FnMut(&EventView<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let (locations, segments) = {
            let state = self.shared.read_state();
            let locations = state
                .index
                .stream_locations_from(stream, from_version)
                .to_vec();
            let segments = published_segments(&state, 0);
            (locations, segments)
        };
        for location in locations {
            let (segment, end) = &segments[location.segment()];
            let (event, _) = event_frame_at(segment, *end, location.offset())?;
            if f(&event).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Decodes the event frame at `offset` of `segment`, whose published
/// batches end at `end`; returns the event and the offset after its frame.
///
/// # Errors
/// [`Error::Corrupt`] when the frame is not a valid event: the index only
/// points at events checked on open or written since, so the file changed.
fn event_frame_at(segment: &Segment, end: usize, offset: usize) -> Result<(EventBody<'_>, usize)> {
    let bytes = segment.bytes(end);
    let problem = match frame::read_frame(bytes, segment.header.salt, offset, end) {
        FrameRead::Frame(frame) if frame.kind == FrameKind::Event => {
            match body::decode_event(frame.body) {
                Ok(event) => return Ok((event, frame.next_offset)),
                Err(error) => error.to_string(),
            }
        }
        FrameRead::Frame(_) => "the index points at a commit record, not an event".to_string(),
        FrameRead::Empty => "the index points at an empty frame".to_string(),
        FrameRead::Invalid(error) => error.to_string(),
    };
    Err(Error::corrupt(
        &segment.path,
        offset as u64,
        format!("{problem} (the record changed after open)"),
    ))
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
    ordinal: usize,
    offset: usize,
    skip: u64,
}

/// Where reading from `from_position` starts; `None` when no event is there.
fn log_start(state: &State, from_position: u64) -> Option<LogStart> {
    let ordinal = state.index.segment_of_position(from_position)?;
    let first = &state.index.segments[ordinal];
    let relative = from_position - first.base_position;
    Some(LogStart {
        ordinal,
        offset: first.sparse_offsets[(relative / POSITION_INDEX_STRIDE) as usize] as usize,
        skip: relative % POSITION_INDEX_STRIDE,
    })
}

/// The segments from `ordinal` on, shared (so they stay mapped without the
/// store's lock), each with the end of its published batches. Published bytes
/// never change, so they can be read after the lock is released.
fn published_segments(state: &State, ordinal: usize) -> Vec<(Arc<Segment>, usize)> {
    state.segments[ordinal..]
        .iter()
        .zip(&state.index.segments[ordinal..])
        .map(|(segment, index)| (Arc::clone(segment), index.end_offset))
        .collect()
}

/// Calls `f` with every event of `segments` (each with the end of its
/// published batches), starting in the first at `start`, until it breaks.
fn visit_segments<'s>(
    segments: impl IntoIterator<Item = (&'s Segment, usize)>,
    start: &LogStart,
    mut f: impl FnMut(&EventBody<'_>) -> ControlFlow<()>,
) -> Result<()> {
    let mut offset = start.offset;
    let mut skip = start.skip;
    for (segment, end) in segments {
        let bytes = segment.bytes(end);
        while offset < end {
            let frame = match frame::read_frame(bytes, segment.header.salt, offset, end) {
                FrameRead::Frame(frame) => frame,
                FrameRead::Empty => {
                    return Err(Error::corrupt(
                        &segment.path,
                        offset as u64,
                        "an empty frame inside the indexed log",
                    ));
                }
                FrameRead::Invalid(error) => {
                    return Err(Error::corrupt(
                        &segment.path,
                        offset as u64,
                        format!("{error} (the record changed after open)"),
                    ));
                }
            };
            if frame.kind == FrameKind::Event {
                if skip > 0 {
                    skip -= 1;
                } else {
                    let event = body::decode_event(frame.body)
                        .map_err(|e| Error::corrupt(&segment.path, offset as u64, e.to_string()))?;
                    if f(&event).is_break() {
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
    let Some(start) = log_start(state, from_position) else {
        return Ok(());
    };
    let segments = state.segments[start.ordinal..]
        .iter()
        .zip(&state.index.segments[start.ordinal..])
        .map(|(segment, index)| (&**segment, index.end_offset));
    visit_segments(segments, &start, f)
}
