//! Retention through the store: retiring whole sealed segments from the
//! front of the log ([`crate::engine::retire`] has the steps and the crash
//! analysis).

use crate::engine::retire::{RetireOptions, Retirement};
use crate::error::Result;

use super::Store;

impl Store {
    /// Retires every sealed segment all of whose events lie before
    /// `before_position`: records the cut in the retention manifest
    /// (`annals.retention`), then removes the segments (moved to
    /// `options.archive` first, if given: copied, synced and checked there).
    /// Positions never change; the log then starts at
    /// [`Retirement::first_retained_position`], streams keep their
    /// versions, and reads start at the first kept event. Command ids of
    /// retired batches are forgotten (idempotency holds over the kept log).
    /// Returns what was retired (nothing, when no whole sealed segment lies
    /// before the position).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, RetireOptions, Store};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), Options::default().segment_size_bytes(64 * 1024))?;
    /// for _ in 0..100 {
    ///     store.append("log", ExpectedVersion::Any, &[EventData::new("Line", vec![0; 2000])])?;
    /// }
    /// let plan = store.retirement_plan(50)?;
    /// let done = store.retire_segments_before(50, &RetireOptions::default())?;
    /// assert_eq!(done.segments, plan.segments);
    /// assert!(done.first_retained_position <= 50);
    /// assert_eq!(store.log_start_position(), done.first_retained_position);
    /// assert_eq!(store.stream_version("log"), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::ReadOnly`] for a read-only store;
    /// [`crate::Error::InvalidArgument`] for a position inside the active
    /// segment, an in-memory store, or an unusable archive directory (then
    /// nothing was retired); [`crate::Error::LimitExceeded`] for a reason
    /// longer than 4096 bytes;
    /// I/O errors. After an error the store is as before, or retired in
    /// full: it opens either way.
    pub fn retire_segments_before(
        &self,
        before_position: u64,
        options: &RetireOptions,
    ) -> Result<Retirement> {
        self.engine.retire(before_position, options)
    }

    /// [`Store::retire_segments_before`], calling `check` with the segments
    /// to retire before anything is committed (see
    /// [`crate::engine::Engine::retire_checked`]).
    #[cfg_attr(not(feature = "object-storage"), allow(dead_code))]
    pub(crate) fn retire_segments_checked(
        &self,
        before_position: u64,
        options: &RetireOptions,
        archived_in: Option<&str>,
        check: &dyn Fn(&[crate::format::retention::RetiredSegment]) -> Result<()>,
    ) -> Result<Retirement> {
        self.engine
            .retire_checked(before_position, options, archived_in, check)
    }

    /// What [`Store::retire_segments_before`] would retire, changing nothing.
    ///
    /// # Errors
    /// As [`Store::retire_segments_before`].
    pub fn retirement_plan(&self, before_position: u64) -> Result<Retirement> {
        self.engine.plan_retirement(before_position, None)
    }

    /// Position of the first event of the active segment: every segment
    /// before it is sealed, and can be retired.
    pub fn active_segment_position(&self) -> u64 {
        let state = self.engine.read_state();
        state
            .index
            .segments
            .last()
            .map_or(0, |segment| segment.base_position)
    }

    /// Position of the first event the store keeps: 0 unless segments
    /// were retired.
    pub fn log_start_position(&self) -> u64 {
        self.engine.read_state().index.start_position()
    }

    /// The id, timestamp and stream of the store's first event (position
    /// 0), even once it was retired (the retention manifest keeps them):
    /// what names the store. `None` while it holds no event.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the first event or the manifest no
    /// longer decodes.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn first_event_identity(&self) -> Result<Option<(crate::Uuid, u64, String)>> {
        if self.log_start_position() == 0 {
            return Ok(self
                .read_all(0, 1)?
                .into_iter()
                .next()
                .map(|event| (event.id, event.timestamp_ns, event.stream)));
        }
        let anchor = crate::log::retention::read_anchor(self.dir())?;
        Ok(anchor.map(|anchor| {
            let first = &anchor.manifest.first_event;
            let id = <[u8; 16]>::try_from(first.id.0.as_slice()).expect("checked when decoded");
            (
                crate::Uuid::from_bytes(id),
                first.timestamp_ns,
                first.stream.clone(),
            )
        }))
    }
}
