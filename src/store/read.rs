//! The read paths: a stream by version (through the index, never a scan) and
//! the whole log by position.

use std::ops::ControlFlow;

use crate::engine::read_events::{
    event_frame_at, log_start, published_segments, visit_log, visit_segments, with_event_at,
};
use crate::error::{Error, Result};
use crate::event::{EventView, RecordedEvent};
use crate::format::body::EventBody;
use crate::format::index_file::SPARSE_STRIDE;

use super::Store;

impl Store {
    /// Reads up to `max_count` events of `stream`, from version `from_version`
    /// (1 is the first event) forward. A missing stream reads as empty. A
    /// truncated stream ([`Store::truncate_stream`]) reads from its
    /// truncation point on, whatever `from_version` is below it.
    ///
    /// # Errors
    /// - [`Error::StreamDeleted`](crate::Error::StreamDeleted) if the stream was deleted.
    /// - [`Error::InvalidStreamMetadata`](crate::Error::InvalidStreamMetadata)
    ///   if its metadata is unreadable.
    /// - [`Error::Corrupt`](crate::Error::Corrupt) if an indexed record no longer decodes.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.engine.read_state();
        let first = state.index.first_readable_version(stream)?;
        let from_version = from_version.max(first);
        let to = from_version.saturating_add(u64::try_from(max_count).unwrap_or(u64::MAX));
        let locations = state.index.stream_locations(stream, from_version, to)?;
        // Sized once (collecting `Result`s would grow it by doubling).
        let mut out = Vec::with_capacity(locations.len());
        for location in locations {
            out.push(with_event_at(&state, location, |body| {
                self.recorded(body)
            })??);
        }
        Ok(out)
    }

    /// Reads up to `max_count` events of `stream`, from version `from_version`
    /// backward (newest first). `u64::MAX` starts at the newest event. A
    /// truncated stream's read stops at its truncation point.
    ///
    /// # Errors
    /// As [`Store::read_stream`].
    pub fn read_stream_backward(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.engine.read_state();
        let first = state.index.first_readable_version(stream)?;
        let to = from_version
            .min(state.index.stream_version(stream))
            .saturating_add(1);
        let from = to
            .saturating_sub(u64::try_from(max_count).unwrap_or(u64::MAX))
            .max(first);
        state
            .index
            .stream_locations(stream, from, to)?
            .into_iter()
            .rev()
            .map(|location| with_event_at(&state, location, |body| self.recorded(body))?)
            .collect()
    }

    /// Reads up to `max_count` events of the whole log in order, from global
    /// position `from_position` (0 is the first event). Every event in the
    /// log: those of truncated and deleted streams, and the metadata events
    /// recording that (in system streams, [`crate::system_streams`]), stay
    /// here until retention retires their segments, as in KurrentDB's
    /// `$all` until a scavenge.
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) if a record no longer decodes.
    pub fn read_all(&self, from_position: u64, max_count: usize) -> Result<Vec<RecordedEvent>> {
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let state = self.engine.read_state();
        // Sized once for the page (at most what the log holds from there):
        // growing a large page by doubling copied every event read so far
        // again and again (pages of 100,000 read at about half the rate of
        // pages of 100, docs/benchmarks.md).
        let available = state
            .index
            .next_position()
            .saturating_sub(from_position.max(state.index.start_position()));
        let mut out = Vec::with_capacity(
            usize::try_from(available).map_or(max_count, |available| available.min(max_count)),
        );
        let mut failed = None;
        visit_log(&state, from_position, |event| {
            match self.recorded(event) {
                Ok(event) => out.push(event),
                Err(error) => return stop(&mut failed, error),
            }
            if out.len() == max_count {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        failed.map_or(Ok(out), Err)
    }

    /// Reads up to `max_count` events of the whole log backward (newest
    /// first), from position `from_position` down. `u64::MAX` starts at the
    /// newest event.
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) if a record no longer decodes.
    pub fn read_all_backward(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.engine.read_state();
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
            let block_start = base + (position - base) / SPARSE_STRIDE * SPARSE_STRIDE;
            block.clear();
            let mut failed = None;
            visit_log(&state, block_start, |event| {
                if event.position > position {
                    return ControlFlow::Break(());
                }
                match self.recorded(event) {
                    Ok(event) => block.push(event),
                    Err(error) => return stop(&mut failed, error),
                }
                ControlFlow::Continue(())
            })?;
            if let Some(error) = failed {
                return Err(error);
            }
            out.extend(block.drain(..).rev().take(max_count - out.len()));
            match block_start.checked_sub(1) {
                Some(previous) => position = previous,
                None => break,
            }
        }
        Ok(out)
    }

    /// The owned event of `body`, its data opened (or erased): the one
    /// place readers turn bodies into [`RecordedEvent`]s.
    pub(crate) fn recorded(&self, body: &EventBody<'_>) -> Result<RecordedEvent> {
        let payload = self.engine.subjects.payload(body)?;
        Ok(RecordedEvent::from_body(body, &payload))
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
    /// [`Error::Corrupt`](crate::Error::Corrupt) if a record no longer decodes.
    pub fn scan_all(
        &self,
        from_position: u64,
        mut f: impl FnMut(&EventView<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let (start, segments) = {
            let state = self.engine.read_state();
            let Some(start) = log_start(&state, from_position)? else {
                return Ok(());
            };
            let segments = published_segments(&state, start.ordinal);
            (start, segments)
        };
        // The lock is released: `f` may use the store.
        let mut failed = None;
        visit_segments(
            segments.iter().map(|(s, end)| (&**s, *end)),
            &start,
            |body| match self.engine.subjects.payload(body) {
                Ok(payload) => f(&EventView::new(body, &payload)),
                Err(error) => stop(&mut failed, error),
            },
        )?;
        failed.map_or(Ok(()), Err)
    }

    /// Calls `f` with a borrowed view of each event of `stream` from version
    /// `from_version` on (a truncated stream: from its truncation point
    /// on), through the index, until `f` returns `Break`; see
    /// [`Store::scan_all`].
    ///
    /// # Errors
    /// As [`Store::read_stream`].
    pub fn scan_stream(
        &self,
        stream: &str,
        from_version: u64,
        mut f: impl FnMut(&EventView<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let (locations, segments) = {
            let state = self.engine.read_state();
            let first = state.index.first_readable_version(stream)?;
            let locations =
                state
                    .index
                    .stream_locations(stream, from_version.max(first), u64::MAX)?;
            let segments = published_segments(&state, 0);
            (locations, segments)
        };
        for location in locations {
            let (segment, end) = &segments[location.segment()];
            let (body, _) = event_frame_at(segment, *end, location.offset())?;
            let payload = self.engine.subjects.payload(&body)?;
            if f(&EventView::new(&body, &payload)).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Keeps `error` for after a visit and stops it (visitors' callbacks return
/// a `ControlFlow`, not a `Result`).
pub(crate) fn stop(failed: &mut Option<Error>, error: Error) -> ControlFlow<()> {
    *failed = Some(error);
    ControlFlow::Break(())
}
