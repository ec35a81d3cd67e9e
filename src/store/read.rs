//! The read paths: a stream by version (through the index, never a scan) and
//! the whole log by position.

use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::body::{self, EventBody};
use crate::format::frame::{self, FrameKind, FrameRead};
use crate::index::{Location, POSITION_INDEX_STRIDE, Run};

use super::{State, Store};

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
        let locations = state.index.stream_locations(stream);
        let start = usize::try_from(from_version.max(1) - 1)
            .unwrap_or(usize::MAX)
            .min(locations.len());
        locations[start..]
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
}

/// Decodes the event at `location` and hands it to `f`.
pub(crate) fn with_event_at<T>(
    state: &State,
    location: Location,
    f: impl FnOnce(&EventBody<'_>) -> T,
) -> Result<T> {
    let ordinal = location.segment();
    let segment = &state.segments[ordinal];
    let end = state.index.segments[ordinal].end_offset;
    let bytes = segment.bytes(end);
    let offset = location.offset();
    let problem = match frame::read_frame(bytes, segment.header.salt, offset, end) {
        FrameRead::Frame(frame) if frame.kind == FrameKind::Event => {
            match body::decode_event(frame.body) {
                Ok(event) => return Ok(f(&event)),
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

/// Calls `f` with each event of `run`: consecutive event frames of one batch.
pub(crate) fn visit_run(state: &State, run: &Run, mut f: impl FnMut(&EventBody<'_>)) -> Result<()> {
    let ordinal = run.first.segment();
    let segment = &state.segments[ordinal];
    let end = state.index.segments[ordinal].end_offset;
    let bytes = segment.bytes(end);
    let mut offset = run.first.offset();
    for _ in 0..run.count {
        let problem = match frame::read_frame(bytes, segment.header.salt, offset, end) {
            FrameRead::Frame(frame) if frame.kind == FrameKind::Event => {
                match body::decode_event(frame.body) {
                    Ok(event) => {
                        f(&event);
                        offset = frame.next_offset;
                        continue;
                    }
                    Err(error) => error.to_string(),
                }
            }
            FrameRead::Frame(_) => "the index points at a commit record, not an event".to_string(),
            FrameRead::Empty => "the index points at an empty frame".to_string(),
            FrameRead::Invalid(error) => error.to_string(),
        };
        return Err(Error::corrupt(
            &segment.path,
            offset as u64,
            format!("{problem} (the record changed after open)"),
        ));
    }
    Ok(())
}

/// Calls `f` with every event of the log from `from_position` on, in order,
/// until it breaks or the log ends. Finds the start through the sparse
/// position index, then reads frames sequentially.
pub(crate) fn visit_log(
    state: &State,
    from_position: u64,
    mut f: impl FnMut(&EventBody<'_>) -> ControlFlow<()>,
) -> Result<()> {
    let Some(mut ordinal) = state.index.segment_of_position(from_position) else {
        return Ok(());
    };
    let first = &state.index.segments[ordinal];
    let relative = from_position - first.base_position;
    let mut offset = first.sparse_offsets[(relative / POSITION_INDEX_STRIDE) as usize] as usize;
    let mut skip = relative % POSITION_INDEX_STRIDE;
    loop {
        let segment = &state.segments[ordinal];
        let end = state.index.segments[ordinal].end_offset;
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
        ordinal += 1;
        if ordinal >= state.segments.len() {
            return Ok(());
        }
        offset = crate::format::SEGMENT_HEADER_LEN;
    }
}
