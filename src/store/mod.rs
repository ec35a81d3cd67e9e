//! The public store: opening, appending, reading, syncing, closing.

mod durability;
mod query;
mod read;
pub(crate) mod recovery;
mod snapshots;
mod subscription;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::index::Index;
use crate::options::{Durability as DurabilityMode, Options};
use crate::segment::Segment;
use crate::snapshot::SnapshotStore;

use durability::{Durability, LogPoint, PeriodicSyncer};
pub use recovery::RecoveryReport;
use subscription::CommitSignal;
pub use subscription::{FOLLOW_POLL_MAX, SUBSCRIPTION_READ_AHEAD, Subscription};
use writer::{AppendRequest, Writer};

/// Name of the lock file a writer holds in the store directory.
pub const LOCK_FILE_NAME: &str = "annals.lock";

/// An open store: a directory of segment files and its in-memory index.
///
/// `Store` is `Send + Sync`: share it between threads with an `Arc` (or by
/// reference). Appends are serialized by one writer lock; reads run in
/// parallel with each other and with appends.
///
/// ```
/// use annals::{EventData, ExpectedVersion, Options, Store};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), Options::default())?;
/// let written = store.append("order-1", ExpectedVersion::NoStream, &[EventData::new("Placed", b"{}".to_vec())])?;
/// assert_eq!((written.first_version, written.first_position), (1, 0));
/// let events = store.read_stream("order-1", 1, 100)?;
/// assert_eq!(events[0].event_type, "Placed");
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store {
    shared: Arc<Shared>,
    periodic: Option<PeriodicSyncer>,
    /// Set once `close` ran, so that the drop that follows does nothing.
    closed: bool,
}

/// The state shared by a store's handles and background threads.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: Options,
    /// Segments live in anonymous memory ([`Store::in_memory`]).
    in_memory: bool,
    state: RwLock<State>,
    writer: Option<Mutex<Writer>>,
    pub durability: Durability,
    pub snapshots: SnapshotStore,
    pub commits: CommitSignal,
    report: RecoveryReport,
    /// Held for the store's lifetime: the writer lock.
    _lock_file: Option<File>,
}

/// The index and the segments it points into, changed together.
pub(crate) struct State {
    pub index: Index,
    pub segments: Vec<Arc<Segment>>,
}

impl Store {
    /// Opens the store in `dir` for reading and writing, creating the
    /// directory and the first segment if needed, and recovering from a
    /// crash: a torn tail is discarded, anything else damaged is refused.
    ///
    /// # Errors
    /// - [`Error::Locked`] if another writer holds the store.
    /// - [`Error::Corrupt`] naming the file and offset of damaged data.
    /// - [`Error::InvalidArgument`] for invalid options.
    /// - [`Error::NoSpace`] / [`Error::Io`] if the first segment cannot be created.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating store directory", &dir, e))?;
        let lock_file = lock(&dir)?;
        let loaded = recovery::load(&dir, true, &options.hooks)?;
        let mut index = loaded.index;
        let mut segments = loaded.segments;
        if segments.is_empty() || loaded.newest_sealed {
            if let Some(sealed) = segments.last() {
                // A writer that crashed while sealing may have left this
                // footer in the page cache only: make it durable before the
                // next segment, which depends on it, exists.
                sealed
                    .sync(0, sealed.len())
                    .map_err(|e| Error::io("syncing sealed segment", &sealed.path, e))?;
            }
            let next = index.next_position();
            let header = writer::new_header(&options, next, &index.chain_head)?;
            segments.push(Arc::new(Segment::create(&dir, &header, &options.hooks)?));
            index.segments.push(crate::index::SegmentIndex::new(next));
        }
        let ordinal = segments.len() - 1;
        let active = Arc::clone(&segments[ordinal]);
        let end = index.segments[ordinal].end_offset;
        // Whatever a crashed process left in the page cache becomes durable
        // now, so that `synced_offset` claims made from here on are true.
        active
            .sync(0, end)
            .map_err(|e| Error::io("syncing recovered segment", &active.path, e))?;
        let writer = Writer::new(active, ordinal, false, end, index.last_timestamp_ns);
        let snapshots = SnapshotStore::open(&dir, true)?;
        let shared = Arc::new(Shared {
            dir,
            in_memory: false,
            state: RwLock::new(State { index, segments }),
            writer: Some(Mutex::new(writer)),
            durability: Durability::new((ordinal, end)),
            snapshots,
            commits: CommitSignal::default(),
            report: loaded.report,
            _lock_file: Some(lock_file),
            options,
        });
        let periodic = shared
            .options
            .periodic_interval()
            .map(|interval| PeriodicSyncer::start(Arc::downgrade(&shared), interval));
        Ok(Store {
            shared,
            periodic,
            closed: false,
        })
    }

    /// A store with the same behaviour as a file store (the same format,
    /// code paths, errors, versions and positions) whose segments live in
    /// anonymous memory: for unit tests of code that uses annals. Nothing
    /// survives the store being dropped.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("s", ExpectedVersion::NoStream, &[EventData::new("E", vec![1])])?;
    /// assert_eq!(store.stream_version("s"), 1);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for invalid options.
    pub fn in_memory(options: Options) -> Result<Store> {
        options.validate()?;
        let header = writer::new_header(&options, 0, &crate::format::chain::GENESIS)?;
        let segment = Arc::new(Segment::create_in_memory(&header)?);
        let mut index = Index::new();
        index.segments.push(crate::index::SegmentIndex::new(0));
        let start = crate::format::SEGMENT_HEADER_LEN;
        let writer = Writer::new(Arc::clone(&segment), 0, false, start, 0);
        let shared = Arc::new(Shared {
            dir: PathBuf::from("(memory)"),
            in_memory: true,
            state: RwLock::new(State {
                index,
                segments: vec![segment],
            }),
            writer: Some(Mutex::new(writer)),
            durability: Durability::new((0, start)),
            snapshots: SnapshotStore::Memory(Default::default()),
            commits: CommitSignal::default(),
            report: RecoveryReport::default(),
            _lock_file: None,
            options,
        });
        Ok(Store {
            shared,
            periodic: None,
            closed: false,
        })
    }

    /// Opens the store in `dir` read-only, without the writer lock: usable
    /// while another process writes. Call [`Store::refresh`] to see batches
    /// committed since. A torn or in-progress tail is not an error here; it
    /// is simply not visible.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read, [`Error::Corrupt`] for
    /// damaged data before the newest segment's tail.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::io(
                "opening store directory",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        let loaded = recovery::load(&dir, false, &Default::default())?;
        let snapshots = SnapshotStore::open(&dir, false)?;
        let shared = Arc::new(Shared {
            dir,
            options: Options::default(),
            in_memory: false,
            state: RwLock::new(State {
                index: loaded.index,
                segments: loaded.segments,
            }),
            writer: None,
            durability: Durability::new((0, 0)),
            snapshots,
            commits: CommitSignal::default(),
            report: loaded.report,
            _lock_file: None,
        });
        Ok(Store {
            shared,
            periodic: None,
            closed: false,
        })
    }

    /// Picks up batches another process committed since this read-only store
    /// was opened or last refreshed, across segment rolls. Returns how many
    /// new events became visible. On a writable store it returns 0.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a newly sealed segment fails its checks.
    pub fn refresh(&self) -> Result<u64> {
        if !self.shared.is_read_only() {
            return Ok(0);
        }
        let mut state = self.shared.write_state();
        let before = state.index.next_position();
        let State { index, segments } = &mut *state;
        recovery::follow(&self.shared.dir, index, segments)?;
        Ok(state.index.next_position() - before)
    }

    /// Appends `events` to `stream` as one atomic batch, if the stream's
    /// version matches `expected`.
    ///
    /// After a crash either every event of the batch is in the log or none
    /// is. Under [`DurabilityMode::Always`] it returns only once the batch is
    /// durable.
    ///
    /// # Errors
    /// - [`Error::WrongExpectedVersion`] with the expected and actual version.
    /// - [`Error::LimitExceeded`] / [`Error::InvalidArgument`] for oversized or
    ///   empty input (nothing is written).
    /// - [`Error::Poisoned`] after a failed sync; [`Error::ReadOnly`].
    /// - [`Error::NoSpace`] when a new segment cannot be allocated.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult> {
        self.append_request(&AppendRequest {
            stream,
            expected,
            events,
            command_id: None,
        })
    }

    /// Like [`Store::append`], but idempotent on `command_id`: if an append
    /// with the same command id is already in the log (even from before a
    /// reopen), nothing is written and its original result is returned,
    /// whatever `expected` says now.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), Options::default())?;
    /// let events = [EventData::new("Paid", b"1".to_vec())];
    /// let first = store.append_idempotent("cmd-42", "invoice-9", ExpectedVersion::NoStream, &events)?;
    /// let again = store.append_idempotent("cmd-42", "invoice-9", ExpectedVersion::NoStream, &events)?;
    /// assert_eq!(first, again);
    /// assert_eq!(store.stream_version("invoice-9"), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn append_idempotent(
        &self,
        command_id: &str,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult> {
        self.append_request(&AppendRequest {
            stream,
            expected,
            events,
            command_id: Some(command_id),
        })
    }

    fn append_request(&self, request: &AppendRequest<'_>) -> Result<AppendResult> {
        let shared = &*self.shared;
        let Some(writer) = &shared.writer else {
            return Err(Error::ReadOnly {
                dir: shared.dir.clone(),
            });
        };
        validate(&shared.options, request)?;
        let appended = {
            let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
            writer.append(shared, request)?
        };
        if let (Some(end), DurabilityMode::Always) = (appended.end, shared.options.durability) {
            shared.durability.sync_through(shared, end)?;
        }
        Ok(appended.result)
    }

    /// Makes everything appended so far durable, whatever the durability mode.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if the sync (or an earlier one) failed.
    pub fn flush(&self) -> Result<()> {
        if self.shared.is_read_only() {
            return Ok(());
        }
        self.shared.sync_all_written()
    }

    /// Flushes and closes the store, releasing the writer lock.
    ///
    /// # Errors
    /// As [`Store::flush`]; the store is closed either way.
    pub fn close(mut self) -> Result<()> {
        self.shut_down()
    }

    /// Stops the periodic syncer, syncs everything and writes a sync marker.
    fn shut_down(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        if let Some(mut periodic) = self.periodic.take() {
            periodic.stop();
        }
        let shared = &*self.shared;
        let Some(writer) = &shared.writer else {
            return Ok(());
        };
        shared.sync_all_written()?;
        writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_sync_marker(shared)
    }

    /// The current version of `stream`: its number of events, 0 if it does not exist.
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.shared.read_state().index.stream_version(stream)
    }

    /// The position the next appended event will get (the number of events in the log).
    pub fn next_position(&self) -> u64 {
        self.shared.read_state().index.next_position()
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.shared.read_state().index.stream_count()
    }

    /// The hash-chain value after the last batch, and the position of that
    /// batch's last event (`None` for an empty store).
    pub fn chain_head(&self) -> ([u8; 32], Option<u64>) {
        let state = self.shared.read_state();
        (
            state.index.chain_head,
            state.index.next_position().checked_sub(1),
        )
    }

    /// What open did to recover from a crash (a discarded torn tail, removed
    /// temporary files).
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.shared.report
    }

    /// The options the store was opened with (for a read-only store, the
    /// defaults: its limits apply to nothing it writes).
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.shared.is_read_only()
    }

    /// Bytes of heap memory the in-memory index uses (an estimate).
    pub fn index_heap_bytes(&self) -> usize {
        self.shared.read_state().index.heap_bytes()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: `close` reports failures; a drop cannot.
        let _ = self.shut_down();
    }
}

impl Shared {
    /// A store without a writer was opened read-only.
    pub(crate) fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the next segment, on disk or in memory.
    pub(crate) fn create_segment(
        &self,
        header: &crate::format::header::SegmentHeader,
    ) -> Result<Segment> {
        if self.in_memory {
            Segment::create_in_memory(header)
        } else {
            Segment::create(&self.dir, header, &self.options.hooks)
        }
    }

    /// The log point right after the last published batch.
    fn written_end(&self) -> LogPoint {
        let state = self.read_state();
        let ordinal = state.segments.len() - 1;
        (ordinal, state.index.segments[ordinal].end_offset)
    }

    /// Syncs everything written since `durable_before`; returns the new durable point.
    pub(crate) fn sync_written_data(&self, durable_before: LogPoint) -> Result<LogPoint> {
        let (segment, point) = {
            let state = self.read_state();
            let ordinal = state.segments.len() - 1;
            (
                Arc::clone(&state.segments[ordinal]),
                (ordinal, state.index.segments[ordinal].end_offset),
            )
        };
        let from = if durable_before.0 == point.0 {
            durable_before.1
        } else {
            0
        };
        segment
            .sync(from, point.1.saturating_sub(from))
            .map_err(|e| Error::io("syncing segment", &segment.path, e))?;
        Ok(point)
    }

    /// Syncs everything written so far (used by flush and the periodic thread).
    pub(crate) fn sync_all_written(&self) -> Result<()> {
        let target = self.written_end();
        self.durability.sync_through(self, target)
    }
}

/// Takes the writer lock of `dir`.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("opening lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking", &path, e)),
    }
}

/// Checks an append's sizes against the limits before anything is locked.
fn validate(options: &Options, request: &AppendRequest<'_>) -> Result<()> {
    let limits = &options.limits;
    let too_long = |limit: &'static str, actual: usize, max: usize| {
        (actual > max).then_some(Error::LimitExceeded {
            limit,
            actual: actual as u64,
            max: max as u64,
        })
    };
    if request.stream.is_empty() {
        return Err(Error::InvalidArgument("the stream id is empty".into()));
    }
    if let Some(error) = too_long(
        "Limits::max_stream_id_bytes",
        request.stream.len(),
        limits.max_stream_id_bytes,
    ) {
        return Err(error);
    }
    if request.events.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "an append to stream {:?} needs at least one event",
            request.stream
        )));
    }
    if let Some(error) = too_long(
        "Limits::max_batch_events",
        request.events.len(),
        limits.max_batch_events,
    ) {
        return Err(error);
    }
    if let Some(command_id) = request.command_id {
        if command_id.is_empty() {
            return Err(Error::InvalidArgument("the command id is empty".into()));
        }
        if let Some(error) = too_long(
            "command id length (Limits::max_stream_id_bytes)",
            command_id.len(),
            limits.max_stream_id_bytes,
        ) {
            return Err(error);
        }
    }
    for (i, event) in request.events.iter().enumerate() {
        if event.event_type.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "event {i} of the batch has an empty event type"
            )));
        }
        if let Some(error) = too_long(
            "Limits::max_event_type_bytes",
            event.event_type.len(),
            limits.max_event_type_bytes,
        ) {
            return Err(error);
        }
        let payload = event.data.len() + event.metadata.len();
        if let Some(error) = too_long(
            "Limits::max_event_bytes (data and metadata)",
            payload,
            limits.max_event_bytes,
        ) {
            return Err(error);
        }
    }
    Ok(())
}
