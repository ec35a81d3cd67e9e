//! Queries beyond plain reads: filtered reads of the log, events by
//! correlation id, and the position of a point in time.

use std::ops::ControlFlow;

use crate::error::Result;
use crate::event::RecordedEvent;
use crate::filter::Filter;
use crate::format::index_file::SPARSE_STRIDE;

use super::Store;
use crate::engine::read_events::{visit_log, visit_run};

impl Store {
    /// Reads up to `max_count` events matching `filter`, in log order, from
    /// position `from_position`. The data of events that do not match is
    /// neither copied nor decoded.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Filter, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("order-1", ExpectedVersion::Any, &[EventData::new("Placed", vec![]), EventData::new("Shipped", vec![])])?;
    /// store.append("user-1", ExpectedVersion::Any, &[EventData::new("Shipped", vec![])])?;
    /// let shipped = store.read_all_filtered(0, 100, &Filter::default().event_type("Shipped").stream_prefix("order-"))?;
    /// assert_eq!(shipped.len(), 1);
    /// assert_eq!(shipped[0].position, 1);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if a record no longer decodes.
    pub fn read_all_filtered(
        &self,
        from_position: u64,
        max_count: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>> {
        let mut out = Vec::new();
        if max_count == 0 {
            return Ok(out);
        }
        let state = self.engine.read_state();
        let mut failed = None;
        visit_log(&state, from_position, |event| {
            if filter.matches(event.stream, event.event_type) {
                match self.recorded(event) {
                    Ok(event) => out.push(event),
                    Err(error) => return super::read::stop(&mut failed, error),
                }
                if out.len() == max_count {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        failed.map_or(Ok(out), Err)
    }

    /// Every event carrying `correlation_id`, in log order, answered from an
    /// index (no scan of the log).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("order-1", ExpectedVersion::Any, &[EventData::new("Placed", vec![]).with_correlation_id("req-9")])?;
    /// store.append("mail-1", ExpectedVersion::Any, &[EventData::new("Sent", vec![]).with_correlation_id("req-9")])?;
    /// let request = store.read_correlated("req-9")?;
    /// assert_eq!(request.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>(), ["order-1", "mail-1"]);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if a record no longer decodes.
    pub fn read_correlated(&self, correlation_id: &str) -> Result<Vec<RecordedEvent>> {
        let state = self.engine.read_state();
        let mut out = Vec::new();
        let mut failed = None;
        for run in state.index.correlated(correlation_id)? {
            visit_run(&state, &run, |body| {
                // The index is keyed by a hash of the id: skip another id's events.
                if body.correlation_id == Some(correlation_id) && failed.is_none() {
                    match self.recorded(body) {
                        Ok(event) => out.push(event),
                        Err(error) => failed = Some(error),
                    }
                }
            })?;
        }
        failed.map_or(Ok(out), Err)
    }

    /// The position of the first event whose timestamp is at or after
    /// `timestamp_ns` (nanoseconds since the Unix epoch), or `None` if every
    /// event is older. Timestamps never decrease along the log, so this is a
    /// binary search over the segments' last timestamps, then over the
    /// timestamps the segment's index keeps for every 16th event, then a
    /// read of at most 16 records: not a scan.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("a", ExpectedVersion::Any, &[EventData::new("E", vec![])])?;
    /// let noon = store.read_all(0, 1)?[0].timestamp_ns + 1;
    /// store.append("a", ExpectedVersion::Any, &[EventData::new("E", vec![]).with_timestamp_ns(noon)])?;
    /// assert_eq!(store.position_at_or_after(noon)?, Some(1));
    /// assert_eq!(store.position_at_or_after(noon + 1)?, None);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if a record no longer decodes.
    pub fn position_at_or_after(&self, timestamp_ns: u64) -> Result<Option<u64>> {
        let state = self.engine.read_state();
        // Only the newest segment can be empty, so "holds no event at or
        // after the time" is true for a prefix of the segments.
        let segments = &state.index.segments;
        let ordinal =
            segments.partition_point(|s| s.event_count == 0 || s.last_timestamp_ns < timestamp_ns);
        let Some(segment) = segments.get(ordinal) else {
            return Ok(None);
        };
        // The first recorded stride whose first event is not older; the
        // answer lies in the stride before it, or is its first event.
        let view = segment.view()?;
        let strides = segment.event_count.div_ceil(SPARSE_STRIDE);
        let (mut low, mut high) = (0u64, strides);
        while low < high {
            let middle = low + (high - low) / 2;
            let timestamp = view
                .sparse_timestamp(middle)
                .expect("every stride of a segment's events has a sparse timestamp");
            if timestamp < timestamp_ns {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let start = segment.base_position + low.saturating_sub(1) * SPARSE_STRIDE;
        let mut found = None;
        visit_log(&state, start, |event| {
            if event.timestamp_ns >= timestamp_ns {
                found = Some(event.position);
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(found)
    }
}
