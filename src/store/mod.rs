//! The public store: opening, appending, reading, syncing, closing.

mod multi_append;
mod proofs;
mod query;
mod read;
mod read_iter;
mod retention;
mod snapshots;
mod stream_lifecycle;
mod subscription;

use std::path::Path;
use std::sync::Arc;

use crate::engine::Engine;
use crate::engine::writer::{AppendRequest, StreamWrite, event_fields_bytes};
use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, EventDataRef, ExpectedVersion};
use crate::format::scan::MAX_STREAMS_PER_BATCH;
use crate::options::{Durability as DurabilityMode, Options};
use crate::system_streams::is_system_stream;

use crate::engine::durability::PeriodicSyncer;
use crate::engine::indexer::Indexer;
use crate::engine::recovery::RecoveryReport;
pub use multi_append::{MultiAppendResult, MultiStreamAppend, StreamAppendResult};
pub use proofs::{ProofOptions, Receipt};
pub use read_iter::{Direction, READ_PAGE_EVENTS, Read, ReadRequest, StartAt};
pub use subscription::{FOLLOW_POLL_MAX, SUBSCRIPTION_READ_AHEAD, Subscription};

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
    engine: Arc<Engine>,
    periodic: Option<PeriodicSyncer>,
    /// Writes sealed segments' index files off the append path.
    indexer: Option<Indexer>,
    /// Set once `close` ran, so that the drop that follows does nothing.
    closed: bool,
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
        let engine = Arc::new(Engine::open_writable(dir.as_ref(), options)?);
        let periodic = engine
            .options
            .periodic_interval()
            .map(|interval| PeriodicSyncer::start(Arc::downgrade(&engine), interval));
        let indexer = Some(Indexer::start(
            Arc::downgrade(&engine),
            Arc::clone(&engine.index_queue),
        ));
        Ok(Store {
            engine,
            periodic,
            indexer,
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
        Ok(Store::from_engine(Engine::in_memory(options)?))
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
        Ok(Store::from_engine(Engine::open_read_only(
            dir.as_ref(),
            false,
        )?))
    }

    /// Opens the store in `dir` read-only, as [`Store::open_read_only`],
    /// but reading and checking every segment and rebuilding the whole
    /// index in memory, ignoring the index checkpoint and index files (as
    /// [`Options::rebuild_index`] does for a writer).
    ///
    /// # Errors
    /// As [`Store::open_read_only`].
    pub fn open_read_only_rebuilding_index(dir: impl AsRef<Path>) -> Result<Store> {
        Ok(Store::from_engine(Engine::open_read_only(
            dir.as_ref(),
            true,
        )?))
    }

    fn from_engine(engine: Engine) -> Store {
        Store {
            engine: Arc::new(engine),
            periodic: None,
            indexer: None,
            closed: false,
        }
    }

    /// Picks up batches another process committed since this read-only store
    /// was opened or last refreshed, across segment rolls. Returns how many
    /// new events became visible. On a writable store it returns 0.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a newly sealed segment fails its checks.
    pub fn refresh(&self) -> Result<u64> {
        self.engine.follow()
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
    /// - [`Error::StreamDeleted`] if the stream was deleted
    ///   ([`Store::delete_stream`]): it can never be appended to again.
    /// - [`Error::ReservedStream`] if the stream's name starts with `$`
    ///   (the store's own system streams, [`crate::system_streams`]).
    /// - [`Error::LimitExceeded`] / [`Error::InvalidArgument`] for oversized or
    ///   empty input (nothing is written).
    /// - [`Error::Poisoned`] after a failed sync; [`Error::ReadOnly`].
    /// - [`Error::NoSpace`] when a new segment cannot be allocated.
    /// - [`Error::Io`] when a full segment was sealed but could not be made
    ///   read-only: nothing of this batch was written and the store is not
    ///   poisoned; retry.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult> {
        let events: Vec<EventDataRef<'_>> = events.iter().map(EventData::as_ref).collect();
        self.append_ref(stream, expected, &events)
    }

    /// [`Store::append`] of borrowed events: nothing of them is copied
    /// before it is encoded into the log (see [`EventDataRef`]).
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn append_ref(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventDataRef<'_>],
    ) -> Result<AppendResult> {
        let write = StreamWrite {
            stream,
            expected,
            events,
        };
        self.append_request(&AppendRequest::one(&write, None))
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
        let events: Vec<EventDataRef<'_>> = events.iter().map(EventData::as_ref).collect();
        self.append_ref_idempotent(command_id, stream, expected, &events)
    }

    /// [`Store::append_idempotent`] of borrowed events (see [`EventDataRef`]).
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn append_ref_idempotent(
        &self,
        command_id: &str,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventDataRef<'_>],
    ) -> Result<AppendResult> {
        let write = StreamWrite {
            stream,
            expected,
            events,
        };
        self.append_request(&AppendRequest::one(&write, Some(command_id)))
    }

    fn append_request(&self, request: &AppendRequest<'_>) -> Result<AppendResult> {
        let mut results = self.append_to_streams(request)?;
        Ok(results.swap_remove(0))
    }

    /// Appends `request` as one batch, refusing system streams; one result
    /// per stream written, in the order of its writes.
    fn append_to_streams(&self, request: &AppendRequest<'_>) -> Result<Vec<AppendResult>> {
        // Only the public calls refuse system streams: the store writes
        // them itself through the engine (truncation, deletion), and a
        // replica copies them (`append_replicated`).
        if let Some(write) = request
            .writes
            .iter()
            .find(|write| is_system_stream(write.stream))
        {
            return Err(Error::ReservedStream {
                stream: write.stream.to_string(),
            });
        }
        self.append_any_stream(request)
    }

    /// [`Store::append`] that also takes system streams: for a copy of
    /// another store's log (`ship::receive`), whose metadata events must
    /// arrive as they were, so that the copy truncates and deletes the
    /// same streams (its index learns them as an open would).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn append_replicated(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult> {
        let events: Vec<EventDataRef<'_>> = events.iter().map(EventData::as_ref).collect();
        let write = StreamWrite {
            stream,
            expected,
            events: &events,
        };
        let mut results = self.append_any_stream(&AppendRequest::one(&write, None))?;
        Ok(results.swap_remove(0))
    }

    fn append_any_stream(&self, request: &AppendRequest<'_>) -> Result<Vec<AppendResult>> {
        let engine = &*self.engine;
        let Some(writer) = &engine.writer else {
            return Err(Error::ReadOnly {
                dir: engine.dir.clone(),
            });
        };
        let fields_bytes = validate(&engine.options, request)?;
        let appended = {
            let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
            writer.append(engine, request, fields_bytes)?
        };
        if let (Some(end), DurabilityMode::Always) = (appended.end, engine.options.durability) {
            engine.durability.sync_through(engine, end)?;
        }
        Ok(appended.results)
    }

    /// Makes everything appended so far durable, whatever the durability mode.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if the sync (or an earlier one) failed.
    pub fn flush(&self) -> Result<()> {
        if self.engine.is_read_only() {
            return Ok(());
        }
        self.engine.sync_all_written()
    }

    /// Flushes and closes the store, releasing the writer lock. Its
    /// subscriptions end (see [`Subscription`]).
    ///
    /// # Errors
    /// As [`Store::flush`]; the store is closed either way.
    pub fn close(mut self) -> Result<()> {
        self.shut_down()
    }

    /// Stops the periodic syncer, syncs everything, writes a sync marker,
    /// then closes the engine (releasing the lock, ending subscriptions)
    /// whether or not that worked.
    fn shut_down(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        if let Some(mut periodic) = self.periodic.take() {
            periodic.stop();
        }
        let engine = &*self.engine;
        let result = match &engine.writer {
            None => Ok(()),
            Some(writer) => engine.sync_all_written().and_then(|()| {
                writer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .close(engine)
            }),
        };
        // The writer's close waited for the index files of every sealed
        // segment; the thread has nothing left to do.
        if let Some(mut indexer) = self.indexer.take() {
            indexer.stop();
        }
        engine.close();
        result
    }

    /// Erases `subject` (crypto-shredding): records the erasure as an event
    /// of type [`crate::system_streams::SUBJECT_ERASED_EVENT_TYPE`] in the
    /// stream [`crate::system_streams::ERASURES_STREAM`] (MessagePack
    /// `{subject, reason}`), makes it durable whatever the durability mode,
    /// then destroys the subject's key. From then on, every event that named
    /// the subject reads back with [`RecordedEvent::erased`](crate::RecordedEvent::erased)
    /// set and empty data, in this store and in every later or read-only
    /// opener; appends naming it are refused. The stored bytes do not change, so
    /// [`crate::verify`] still passes over the whole chain. What this does
    /// and does not guarantee is in `docs/compliance.md`, "Erasure".
    ///
    /// Returns where the erasure event was written.
    ///
    /// # Errors
    /// - [`Error::UnknownSubject`] when no event named the subject (it has
    ///   no key): nothing is written.
    /// - [`Error::SubjectErased`] when it was erased already: nothing is written.
    /// - [`Error::InvalidArgument`] / [`Error::LimitExceeded`] for an empty or
    ///   too long subject, or a reason that does not fit an event.
    /// - [`Error::ReadOnly`], [`Error::Poisoned`], and the I/O errors of the
    ///   append, its sync and the key file. If the key could not be destroyed
    ///   after the event was written, the subject already reads as erased and
    ///   the next writable open destroys the key.
    pub fn erase_subject(&self, subject: &str, reason: &str) -> Result<AppendResult> {
        self.engine.erase_subject(subject, reason)
    }

    /// The position of `subject`'s erasure event, if it was erased.
    pub fn erasure_of(&self, subject: &str) -> Option<u64> {
        self.engine.subjects.erased_at(subject)
    }

    /// Every erased subject, with the position of its erasure event, in log order.
    pub fn erased_subjects(&self) -> Vec<(String, u64)> {
        self.engine.subjects.erased_subjects()
    }

    /// The current version of `stream`: its number of events, 0 if it does
    /// not exist. Truncation does not change it, and a deleted stream keeps
    /// the version it had (so an expected-version check against it still
    /// reads true; the append is refused as [`Error::StreamDeleted`]).
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.engine.read_state().index.stream_version(stream)
    }

    /// The position the next appended event will get (the number of events in the log).
    pub fn next_position(&self) -> u64 {
        self.engine.read_state().index.next_position()
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.engine.read_state().index.stream_count()
    }

    /// The hash-chain value after the last batch, and the position of that
    /// batch's last event (`None` for an empty store).
    pub fn chain_head(&self) -> ([u8; 32], Option<u64>) {
        let state = self.engine.read_state();
        (
            state.index.chain_head(),
            state.index.next_position().checked_sub(1),
        )
    }

    /// What open found that a crash leaves behind and did about it (a
    /// writer discards it; a reader only stops before it) (a discarded torn tail, removed
    /// temporary files).
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.engine.report
    }

    /// Index files found wrong after open: damaged ones, found on first
    /// use (open checks only their headers, so that it need not read every
    /// index byte) and rebuilt from their segments, and ones that could
    /// not be written when a segment was sealed. Derived data: the log is
    /// fine, reads go on from the rebuilt index. Empty when nothing.
    pub fn index_rebuilds(&self) -> Vec<crate::Finding> {
        // Index files of segments sealed so far are written by now.
        self.engine.index_queue.wait_idle();
        self.engine
            .read_state()
            .index
            .late_findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The options the store runs with: the caller's, with every setting the
    /// caller left at its default taken from the store's recorded settings
    /// (the segment size and limits chosen when it was created or last
    /// changed; `docs/format.md`, "Store settings"). For a read-only store,
    /// the recorded settings over the defaults: its limits apply to nothing
    /// it writes.
    ///
    /// ```
    /// use annals::{Options, Store};
    /// let dir = tempfile::tempdir()?;
    /// Store::open(dir.path(), Options::default().segment_size_bytes(64 * 1024))?.close()?;
    /// // A later writer that does not choose keeps what the store was created with.
    /// let store = Store::open(dir.path(), Options::default())?;
    /// assert_eq!(store.options().segment_size_bytes, 64 * 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options(&self) -> &Options {
        &self.engine.options
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.engine.dir
    }

    /// Whether the store lives in memory ([`Store::in_memory`]): no files,
    /// no syncs.
    pub fn is_in_memory(&self) -> bool {
        self.engine.is_in_memory()
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.engine.is_read_only()
    }

    /// Bytes of heap memory the in-memory index uses (an estimate).
    pub fn index_heap_bytes(&self) -> usize {
        self.engine.read_state().index.heap_bytes()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: `close` reports failures; a drop cannot.
        let _ = self.shut_down();
    }
}

/// Checks an append's sizes against the limits before anything is locked.
/// Returns the bytes of the batch's fields (every event's, and the command
/// id): a lower bound of its encoded size, for the writer.
fn validate(options: &Options, request: &AppendRequest<'_>) -> Result<u64> {
    let limits = &options.limits;
    let too_long = |limit: &'static str, actual: usize, max: usize| {
        (actual > max).then_some(Error::LimitExceeded {
            limit,
            actual: actual as u64,
            max: max as u64,
        })
    };
    if request.writes.is_empty() {
        return Err(Error::InvalidArgument(
            "an append needs at least one stream to write".into(),
        ));
    }
    if let Some(error) = too_long(
        "streams of one append (MAX_STREAMS_PER_BATCH), written or checked",
        request.writes.len() + request.conditions.len(),
        MAX_STREAMS_PER_BATCH,
    ) {
        return Err(error);
    }
    let named = request
        .writes
        .iter()
        .map(|write| write.stream)
        .chain(request.conditions.iter().map(|condition| condition.stream));
    for stream in named.clone() {
        if stream.is_empty() {
            return Err(Error::InvalidArgument("the stream id is empty".into()));
        }
        if let Some(error) = too_long(
            "Limits::max_stream_id_bytes",
            stream.len(),
            limits.max_stream_id_bytes,
        ) {
            return Err(error);
        }
    }
    if request.writes.len() + request.conditions.len() > 1 {
        let mut streams: Vec<&str> = named.collect();
        streams.sort_unstable();
        if let Some(pair) = streams.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(Error::InvalidArgument(format!(
                "stream {:?} is named twice in one append (each stream is written or \
                 checked once)",
                pair[0]
            )));
        }
    }
    if let Some(write) = request.writes.iter().find(|write| write.events.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "an append to stream {:?} needs at least one event",
            write.stream
        )));
    }
    if let Some(error) = too_long(
        "Limits::max_batch_events",
        request.event_count(),
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
    let mut batch_fields_bytes = request.command_id.map_or(0, |id| id.len() as u64);
    for (i, (stream, event)) in request.events().enumerate() {
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
        if let Some(subject) = event.subject {
            crate::keys::validate_subject(subject)?;
        }
        // All of the event's fields, not only data and metadata: the
        // encoder relies on every field being within this limit (at most
        // `Limits::MAX_EVENT_BYTES`, far below a u32 length).
        let fields_bytes = event_fields_bytes(stream, event);
        if fields_bytes > limits.max_event_bytes as u64 {
            return Err(Error::LimitExceeded {
                limit: "Limits::max_event_bytes (stream id, type, ids, content type, metadata and data)",
                actual: fields_bytes,
                max: limits.max_event_bytes as u64,
            });
        }
        batch_fields_bytes = batch_fields_bytes.saturating_add(fields_bytes);
    }
    Ok(batch_fields_bytes)
}
