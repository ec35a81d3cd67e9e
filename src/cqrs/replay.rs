//! Replays: the events of one aggregate or of one aggregate type, read in
//! pages on the blocking pool up to where the log ended when the replay
//! started, each handed out with its global position. They feed cqrs-es's
//! `ReplayStream` (and so `QueryReplay`), and
//! [`AnnalsEventRepository::replay_from`], a replay that resumes from a
//! position.

use std::sync::Arc;

use cqrs_es::persist::{EventUpcaster, PersistenceError, ReplayFeed, ReplayStream};
use cqrs_es::{Aggregate, EventEnvelope, Query};

use crate::error::Error;
use crate::event::RecordedEvent;
use crate::filter::Filter;
use crate::store::Store;

use super::AnnalsEventRepository;
use super::blocking::run_blocking;
use super::envelope::{event_envelope, serialized_with_position};
use super::mapping::{persistence_error, stream_prefix};

/// Events a replay reads from the store in one blocking call.
const REPLAY_PAGE_EVENTS: usize = 256;

impl AnnalsEventRepository {
    /// Every event of every aggregate of type `A` from global position
    /// `from_position` on, in log order, up to the end of the log when the
    /// call is made, as cqrs-es's `stream_all_events` hands them out (each
    /// with its position in its metadata; see
    /// [`super::POSITION_METADATA_KEY`]). `stream_all_events` is this from 0.
    ///
    /// # Errors
    /// [`PersistenceError::UnknownError`] holding [`Error::InvalidArgument`]
    /// for an aggregate type that cannot name annals streams, or outside a
    /// tokio runtime. Errors reading the log are pushed to the stream.
    pub async fn stream_all_events_from<A: Aggregate>(
        &self,
        from_position: u64,
    ) -> Result<ReplayStream, PersistenceError> {
        let prefix = stream_prefix(A::TYPE).map_err(persistence_error)?;
        let filter = Filter::default().stream_prefix(prefix);
        self.replay(ReplayCursor::starting_at(
            ReplaySource::Log(filter),
            from_position,
            self.store(),
        ))
    }

    /// Dispatches to `query` every event of aggregate type `A` from global
    /// position `from_position` up to the end of the log when the call is
    /// made, in log order, each with its position in its metadata (see
    /// [`super::event_position`]); returns the position to resume from next
    /// time: the end of the log when the call was made (or `from_position`
    /// if that is later).
    ///
    /// Consecutive events of one aggregate go to `query` in one `dispatch`
    /// call, as the events of one command do. `upcasters` are applied as
    /// cqrs-es's `QueryReplay::with_upcasters` applies them.
    ///
    /// Delivery is at least once: events committed while the replay runs,
    /// which the framework dispatches live, and events replayed again after
    /// a crash before the returned position was stored, can reach `query`
    /// twice. A view that stores the position of the last event it applied
    /// ignores them (see [`super::event_position`]).
    ///
    /// ```
    /// use annals::cqrs::{AnnalsEventRepository, annals_cqrs};
    /// use annals::{Options, Store};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Account;
    /// # #[derive(Debug)] struct Never;
    /// # impl std::fmt::Display for Never { fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) } }
    /// # impl std::error::Error for Never {}
    /// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] struct Deposited(i64);
    /// # impl cqrs_es::DomainEvent for Deposited {
    /// #     fn event_type(&self) -> String { "Deposited".into() }
    /// #     fn event_version(&self) -> String { "1.0".into() }
    /// # }
    /// # impl cqrs_es::Aggregate for Account {
    /// #     const TYPE: &'static str = "account";
    /// #     type Command = i64; type Event = Deposited; type Error = Never; type Services = ();
    /// #     async fn handle(&mut self, cents: i64, _: &(), sink: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> {
    /// #         sink.write(Deposited(cents), self).await;
    /// #         Ok(())
    /// #     }
    /// #     fn apply(&mut self, _: Deposited) {}
    /// # }
    /// # #[derive(Default)] struct Total(Mutex<i64>);
    /// # #[async_trait::async_trait]
    /// # impl cqrs_es::Query<Account> for Total {
    /// #     async fn dispatch(&self, _: &str, events: &[cqrs_es::EventEnvelope<Account>]) {
    /// #         *self.0.lock().unwrap() += events.iter().map(|e| e.payload.0).sum::<i64>();
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let repository = AnnalsEventRepository::new(Store::in_memory(Options::default())?);
    /// let cqrs = annals_cqrs::<Account>(repository.clone(), vec![], ())?;
    /// cqrs.execute("ada", 100).await?;
    /// let total = Total::default();
    /// let checkpoint = repository.replay_from(&total, 0, &[]).await?;
    /// assert_eq!((*total.0.lock().unwrap(), checkpoint), (100, 1));
    ///
    /// cqrs.execute("ada", 5).await?;
    /// // Resumes where the last replay ended: only the new event.
    /// let checkpoint = repository.replay_from(&total, checkpoint, &[]).await?;
    /// assert_eq!((*total.0.lock().unwrap(), checkpoint), (105, 2));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an aggregate type that cannot name
    /// annals streams, or outside a tokio runtime. [`Error::Codec`] naming
    /// the position of the first event of the type that does not decode (no
    /// upcaster for it, or not a cqrs-es event): the events before it were
    /// dispatched, none after it. Fix the upcasters and replay again, or
    /// resume after it to skip it. [`Error::Corrupt`] if the log cannot be
    /// read.
    pub async fn replay_from<A, Q>(
        &self,
        query: &Q,
        from_position: u64,
        upcasters: &[Box<dyn EventUpcaster>],
    ) -> Result<u64, Error>
    where
        A: Aggregate,
        Q: Query<A> + ?Sized,
    {
        let filter = Filter::default().stream_prefix(stream_prefix(A::TYPE)?);
        let mut cursor =
            ReplayCursor::starting_at(ReplaySource::Log(filter), from_position, self.store());
        let resume_from = cursor.end.max(from_position);
        loop {
            let store = Arc::clone(self.store());
            let (returned, page) =
                run_blocking("replaying the log of", self.store().dir(), move || {
                    let page = cursor.next_page(&store);
                    Ok((cursor, page))
                })
                .await?;
            cursor = returned;
            let events = page?;
            if events.is_empty() {
                return Ok(resume_from);
            }
            let mut group: Vec<EventEnvelope<A>> = Vec::new();
            for event in &events {
                let envelope = match event_envelope::<A>(event, upcasters) {
                    Ok(envelope) => envelope,
                    Err(error) => {
                        dispatch(query, &mut group).await;
                        return Err(error);
                    }
                };
                if group
                    .last()
                    .is_some_and(|last| last.aggregate_id != envelope.aggregate_id)
                {
                    dispatch(query, &mut group).await;
                }
                group.push(envelope);
            }
            dispatch(query, &mut group).await;
        }
    }

    /// Starts a task that feeds the events `cursor` reads to a new stream.
    pub(super) fn replay(&self, cursor: ReplayCursor) -> Result<ReplayStream, PersistenceError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            persistence_error(Error::InvalidArgument(
                "a cqrs-es replay on annals must be started inside a tokio runtime".into(),
            ))
        })?;
        let (feed, stream) = ReplayStream::new(self.streaming_channel_size());
        runtime.spawn(feed_replay(Arc::clone(self.store()), cursor, feed));
        Ok(stream)
    }
}

/// Hands `group` (events of one aggregate, in order) to `query` and empties it.
async fn dispatch<A: Aggregate, Q: Query<A> + ?Sized>(
    query: &Q,
    group: &mut Vec<EventEnvelope<A>>,
) {
    if let Some(first) = group.first() {
        let aggregate_id = first.aggregate_id.clone();
        query.dispatch(&aggregate_id, group).await;
        group.clear();
    }
}

/// What a replay reads.
pub(super) enum ReplaySource {
    /// One stream, by version.
    Stream(String),
    /// The events of the log that pass the filter, by position.
    Log(Filter),
}

/// Where a replay is: the next version or position to read, and where it
/// ends, fixed when the replay is asked for so that events committed during
/// the replay are not part of it.
pub(super) struct ReplayCursor {
    source: ReplaySource,
    next: u64,
    /// The last version to read (stream) or the first position not to read
    /// (log).
    end: u64,
}

impl ReplayCursor {
    /// A replay of `source` from version 1 or position 0 up to where it
    /// ends now.
    pub(super) fn new(source: ReplaySource, store: &Store) -> ReplayCursor {
        ReplayCursor::starting_at(source, 0, store)
    }

    /// A replay of `source` from `from` (a stream version, at least 1; a
    /// log position) up to where it ends now. Reading a stream version or
    /// the next position takes only the index's read lock, held by a writer
    /// just long enough to publish a batch: cheap enough to do on an async
    /// worker thread.
    fn starting_at(source: ReplaySource, from: u64, store: &Store) -> ReplayCursor {
        let (next, end) = match &source {
            ReplaySource::Stream(stream) => (from.max(1), store.stream_version(stream)),
            ReplaySource::Log(_) => (from, store.next_position()),
        };
        ReplayCursor { source, next, end }
    }

    /// Reads the next page of events; an empty page is the end.
    fn next_page(&mut self, store: &Store) -> Result<Vec<RecordedEvent>, Error> {
        match &self.source {
            ReplaySource::Stream(stream) => {
                let last = self.end;
                if self.next > last {
                    return Ok(Vec::new());
                }
                let remaining = usize::try_from(last - self.next + 1).unwrap_or(usize::MAX);
                let events =
                    store.read_stream(stream, self.next, remaining.min(REPLAY_PAGE_EVENTS))?;
                self.next = match events.last() {
                    Some(event) => event.version + 1,
                    None => last + 1,
                };
                Ok(events)
            }
            ReplaySource::Log(filter) => {
                let end = self.end;
                if self.next >= end {
                    return Ok(Vec::new());
                }
                let mut events = store.read_all_filtered(self.next, REPLAY_PAGE_EVENTS, filter)?;
                let full_page = events.len() == REPLAY_PAGE_EVENTS;
                events.retain(|event| event.position < end);
                // A short page means the read reached the end of the log,
                // which is at or past `end`.
                self.next = match events.last() {
                    Some(event) if full_page && events.len() == REPLAY_PAGE_EVENTS => {
                        event.position + 1
                    }
                    _ => end,
                };
                Ok(events)
            }
        }
    }
}

/// Reads pages on the blocking pool and pushes their events, each with its
/// position in its metadata, to `feed` until the end, a read error (pushed,
/// then the replay stops) or the consumer dropping its stream. An event that
/// is not a cqrs-es event is pushed as a deserialization error and the
/// replay goes on.
async fn feed_replay(store: Arc<Store>, mut cursor: ReplayCursor, mut feed: ReplayFeed) {
    loop {
        let store = Arc::clone(&store);
        let page = tokio::task::spawn_blocking(move || {
            let page = cursor.next_page(&store);
            (cursor, page)
        })
        .await;
        let events = match page {
            Ok((returned, Ok(events))) => {
                cursor = returned;
                events
            }
            Ok((_, Err(error))) => {
                let _ = feed.push(Err(persistence_error(error))).await;
                return;
            }
            Err(failed) => {
                let _ = feed
                    .push(Err(PersistenceError::UnknownError(Box::new(failed))))
                    .await;
                return;
            }
        };
        if events.is_empty() {
            return;
        }
        for event in &events {
            let event = serialized_with_position(event).map_err(persistence_error);
            if feed.push(event).await.is_err() {
                return;
            }
        }
    }
}
