//! [`AnnalsEventRepository`]: cqrs-es's `PersistedEventRepository` on an
//! annals [`Store`].

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;

use crate::codec::{Codec, Json};
use crate::error::Error;
use crate::event::{EventData, ExpectedVersion};
use crate::options::Options;
use crate::store::Store;

use super::blocking::{run_blocking, run_on_store};
use super::mapping::{self, persistence_error, stream_id};
use super::replay::{ReplayCursor, ReplaySource};

/// Events buffered between the reader and the consumer of a
/// [`ReplayStream`] unless [`AnnalsEventRepository::with_streaming_channel_size`]
/// says otherwise (the same default as postgres-es).
pub const DEFAULT_STREAMING_CHANNEL_SIZE: usize = 200;

/// An annals [`Store`] as the event and snapshot repository of cqrs-es's
/// `PersistedEventStore`.
///
/// Every store call runs on tokio's blocking thread pool
/// (`tokio::task::spawn_blocking`), so the repository must be used inside a
/// tokio runtime, as cqrs-es itself is.
///
/// A store directory can be open for writing once at a time (a second
/// [`Store::open`] of it fails with [`Error::Locked`]). Open it once and
/// clone the repository wherever another handle is needed (a
/// `QueryReplay`, a second framework, a projection): clones share the
/// store, and it is closed when the last of them is dropped.
///
/// ```no_run
/// use annals::cqrs::{AnnalsEventRepository, annals_cqrs};
/// use annals::Options;
/// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Account;
/// # #[derive(Debug)] struct Never;
/// # impl std::fmt::Display for Never { fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) } }
/// # impl std::error::Error for Never {}
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] struct Opened;
/// # impl cqrs_es::DomainEvent for Opened {
/// #     fn event_type(&self) -> String { "Opened".into() }
/// #     fn event_version(&self) -> String { "1.0".into() }
/// # }
/// # impl cqrs_es::Aggregate for Account {
/// #     const TYPE: &'static str = "account";
/// #     type Command = (); type Event = Opened; type Error = Never; type Services = ();
/// #     async fn handle(&mut self, _: (), _: &(), _: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> { Ok(()) }
/// #     fn apply(&mut self, _: Opened) {}
/// # }
/// # async fn run() -> Result<(), annals::Error> {
/// let repository = AnnalsEventRepository::open("data/events", Options::default()).await?;
/// let cqrs = annals_cqrs::<Account>(repository.clone(), vec![], ())?;
/// // `repository` is still usable, for example for a QueryReplay.
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AnnalsEventRepository {
    store: Arc<Store>,
    stream_channel_size: usize,
    skipped_snapshot_saves: Arc<AtomicU64>,
}

impl AnnalsEventRepository {
    /// Opens the store in `dir` for writing ([`Store::open`]) on tokio's
    /// blocking pool, so that the runtime's worker threads never wait for
    /// the directory scan and recovery, and returns a repository on it.
    ///
    /// # Errors
    /// As [`Store::open`] ([`Error::Locked`] if the store is already open,
    /// in this process or another: clone the repository that has it
    /// instead); [`Error::InvalidArgument`] when not awaited inside a tokio
    /// runtime.
    pub fn open(
        dir: impl AsRef<Path>,
        options: Options,
    ) -> impl Future<Output = Result<AnnalsEventRepository, Error>> + Send + 'static {
        let dir = dir.as_ref().to_path_buf();
        async move {
            let store = run_blocking("opening the store", &dir.clone(), move || {
                Store::open(&dir, options)
            })
            .await?;
            Ok(AnnalsEventRepository::new(store))
        }
    }

    /// A repository on `store` (a [`Store`] or an `Arc<Store>` shared with
    /// other code, for example projections reading the log).
    pub fn new(store: impl Into<Arc<Store>>) -> Self {
        AnnalsEventRepository {
            store: store.into(),
            stream_channel_size: DEFAULT_STREAMING_CHANNEL_SIZE,
            skipped_snapshot_saves: Arc::default(),
        }
    }

    /// Buffers up to `events` events (at least 1) between the store and the
    /// consumer of `stream_events` and `stream_all_events`.
    pub fn with_streaming_channel_size(mut self, events: usize) -> Self {
        self.stream_channel_size = events.max(1);
        self
    }

    /// Events buffered between the store and a replay's consumer.
    pub(super) fn streaming_channel_size(&self) -> usize {
        self.stream_channel_size
    }

    /// The store this repository writes to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// How many snapshot saves were skipped because they failed after their
    /// events had been committed (see [`PersistedEventRepository::persist`]
    /// below): each leaves that aggregate's snapshot at an older sequence.
    pub fn skipped_snapshot_saves(&self) -> u64 {
        self.skipped_snapshot_saves.load(Ordering::Relaxed)
    }

    /// Runs `read_or_write` with the store on tokio's blocking pool (or
    /// directly, for a store in memory: [`run_on_store`]).
    async fn blocking<T, F>(&self, read_or_write: F) -> Result<T, PersistenceError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    {
        run_on_store("using the store", &self.store, read_or_write)
            .await
            .map_err(persistence_error)
    }

    /// The events of one aggregate from sequence `from_sequence` on.
    async fn read_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        from_sequence: u64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let stream = stream_id(aggregate_type, aggregate_id).map_err(persistence_error)?;
        self.blocking(move |store| {
            store
                .read_stream(&stream, from_sequence, usize::MAX)?
                .iter()
                .map(mapping::serialized_event)
                .collect()
        })
        .await
    }
}

/// A repository on a store of its own.
impl From<Store> for AnnalsEventRepository {
    fn from(store: Store) -> Self {
        AnnalsEventRepository::new(store)
    }
}

/// A repository on a shared store.
impl From<Arc<Store>> for AnnalsEventRepository {
    fn from(store: Arc<Store>) -> Self {
        AnnalsEventRepository::new(store)
    }
}

impl PersistedEventRepository for AnnalsEventRepository {
    /// Every event of the aggregate's stream, in sequence order.
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.read_events(A::TYPE, aggregate_id, 1).await
    }

    /// The events after sequence `last_sequence`.
    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let from = u64::try_from(last_sequence)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.read_events(A::TYPE, aggregate_id, from).await
    }

    /// The aggregate's newest snapshot. Its `current_sequence` is the annals
    /// snapshot version. (`Store::load_snapshot` already leaves out a
    /// snapshot past the end of its stream.)
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let stream = stream_id(A::TYPE, aggregate_id).map_err(persistence_error)?;
        let aggregate_id = aggregate_id.to_string();
        self.blocking(move |store| {
            let Some(snapshot) = store.load_snapshot(&stream)? else {
                return Ok(None);
            };
            mapping::serialized_snapshot(&aggregate_id, &snapshot).map(Some)
        })
        .await
    }

    /// Appends `events` to the aggregate's stream as one atomic batch, if
    /// the stream is at `events[0].sequence - 1`; otherwise writes nothing
    /// and returns `OptimisticLockError`. Then, if `snapshot_update` is
    /// given, syncs the log and saves the snapshot at the last event's
    /// sequence, so that a snapshot never covers events that are not durable.
    ///
    /// The append is the commit point: a snapshot save that fails after it
    /// is not reported as a failure of the command (a retry would apply the
    /// command twice). It is counted in
    /// [`AnnalsEventRepository::skipped_snapshot_saves`], and the snapshot
    /// stays at its previous sequence.
    ///
    /// Refused with nothing written: events of several aggregates or of
    /// another aggregate type, sequences that are not consecutive from 1 or
    /// more, and a snapshot with no events.
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(batch) = Batch::prepare(A::TYPE, events, snapshot_update)? else {
            return Ok(());
        };
        let skipped = Arc::clone(&self.skipped_snapshot_saves);
        self.blocking(move |store| batch.write(store, &skipped))
            .await
    }

    /// The aggregate's events, in sequence order, up to its version when the
    /// call is made, each with its global position in its metadata.
    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let stream = stream_id(A::TYPE, aggregate_id).map_err(persistence_error)?;
        self.replay(ReplayCursor::new(ReplaySource::Stream(stream), &self.store))
    }

    /// Every event of every aggregate of type `A`, in log order (the order
    /// they were committed in), up to the end of the log when the call is
    /// made, each with its global position in its metadata (see
    /// [`super::POSITION_METADATA_KEY`]).
    /// [`AnnalsEventRepository::stream_all_events_from`] starts at a position.
    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.stream_all_events_from::<A>(0).await
    }
}

/// A validated, encoded `persist` call.
struct Batch {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<EventData>,
    /// The snapshot's version (the last event's sequence) and data.
    snapshot: Option<(u64, Vec<u8>)>,
}

impl Batch {
    /// Checks and encodes a `persist` call; `None` when there is nothing to
    /// write.
    fn prepare(
        aggregate_type: &str,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<Option<Batch>, PersistenceError> {
        let invalid = |message: String| persistence_error(Error::InvalidArgument(message));
        let Some(first) = events.first() else {
            return match snapshot_update {
                None => Ok(None),
                Some((aggregate_id, ..)) => Err(invalid(format!(
                    "a snapshot of {aggregate_type} {aggregate_id:?} with no events: \
                     annals stores a snapshot at the sequence of the last event persisted with it"
                ))),
            };
        };
        let aggregate_id = &first.aggregate_id;
        let stream = stream_id(aggregate_type, aggregate_id).map_err(persistence_error)?;
        let first_sequence = u64::try_from(first.sequence).unwrap_or(u64::MAX);
        if first_sequence == 0 {
            return Err(invalid(format!(
                "event sequence 0 for {aggregate_type} {aggregate_id:?}: sequences start at 1"
            )));
        }
        let mut encoded = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            if event.aggregate_type != aggregate_type || &event.aggregate_id != aggregate_id {
                return Err(invalid(format!(
                    "one persist call holds events of {aggregate_type} {aggregate_id:?} and of \
                     {} {:?}: a batch belongs to one aggregate",
                    event.aggregate_type, event.aggregate_id
                )));
            }
            if let Some(previous) = index.checked_sub(1).map(|i| events[i].sequence)
                && previous.checked_add(1) != Some(event.sequence)
            {
                return Err(invalid(format!(
                    "event sequence {} follows {previous} for {aggregate_type} {aggregate_id:?}: \
                     sequences in a batch are consecutive",
                    event.sequence
                )));
            }
            encoded.push(mapping::event_data(event).map_err(persistence_error)?);
        }
        let last_sequence = events.last().map_or(first_sequence, |last| {
            u64::try_from(last.sequence).unwrap_or(u64::MAX)
        });
        let snapshot = match snapshot_update {
            None => None,
            Some((snapshot_id, _, _)) if &snapshot_id != aggregate_id => {
                return Err(invalid(format!(
                    "a snapshot of {aggregate_type} {snapshot_id:?} persisted with events of \
                     {aggregate_id:?}"
                )));
            }
            Some((_, aggregate, current_snapshot)) => Some((
                last_sequence,
                mapping::snapshot_data(current_snapshot, aggregate).map_err(persistence_error)?,
            )),
        };
        Ok(Some(Batch {
            stream,
            expected: ExpectedVersion::Exact(first_sequence - 1),
            events: encoded,
            snapshot,
        }))
    }

    /// Appends the events, then saves the snapshot (see `persist`).
    fn write(self, store: &Store, skipped_snapshot_saves: &AtomicU64) -> Result<(), Error> {
        store.append(&self.stream, self.expected, &self.events)?;
        if let Some((version, data)) = self.snapshot {
            // Committed: from here on a failure costs only the snapshot.
            // save_snapshot makes the events durable before the snapshot.
            let saved = store.save_snapshot(&self.stream, version, &data, Some(Json::CONTENT_TYPE));
            if saved.is_err() {
                skipped_snapshot_saves.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
