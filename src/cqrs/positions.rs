//! Positions for the events cqrs-es dispatches live. cqrs-es builds the
//! envelopes it hands to queries after a command itself, from the events
//! it just committed, so they carry no position; [`WithPositions`] looks
//! the positions up in the store's index and adds them before passing the
//! events on.

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::{Aggregate, EventEnvelope, Query};

use crate::error::Error;
use crate::store::Store;

use super::AnnalsEventRepository;
use super::blocking::run_on_store;
use super::envelope::POSITION_METADATA_KEY;
use super::mapping::stream_id;

/// Queries that are given each event's global position, as replays give it
/// (see [`super::event_position`]): a `cqrs_es::Query` that adds the
/// position of each committed event to its metadata, under
/// [`POSITION_METADATA_KEY`], then dispatches the events to each query in
/// turn.
///
/// The constructors of this module ([`super::annals_cqrs`] and the others)
/// wrap the queries they are given in one; use it when building a
/// `CqrsFramework` by hand (for example with upcasters):
///
/// ```
/// use annals::cqrs::{AnnalsEventRepository, WithPositions};
/// use annals::{Options, Store};
/// use cqrs_es::persist::PersistedEventStore;
/// use cqrs_es::{CqrsFramework, Query};
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
/// # fn main() -> Result<(), annals::Error> {
/// # let queries: Vec<Box<dyn Query<Account>>> = vec![];
/// let repository = AnnalsEventRepository::new(Store::in_memory(Options::default())?);
/// let positioned = WithPositions::new(&repository, queries);
/// let cqrs = CqrsFramework::new(
///     PersistedEventStore::<_, Account>::new_event_store(repository).with_upcasters(vec![]),
///     vec![Box::new(positioned)],
///     (),
/// );
/// # Ok(())
/// # }
/// ```
///
/// Looking the positions up costs one read of the stream's index per
/// command, on the blocking pool, and a copy of the events. If it fails
/// (the store was closed meanwhile, or its bytes no longer decode), the
/// events are dispatched without positions.
pub struct WithPositions<A: Aggregate> {
    store: Arc<Store>,
    queries: Vec<Box<dyn Query<A>>>,
}

impl<A: Aggregate> WithPositions<A> {
    /// `queries`, given the positions of the events of `repository`'s store.
    pub fn new(repository: &AnnalsEventRepository, queries: Vec<Box<dyn Query<A>>>) -> Self {
        WithPositions {
            store: Arc::clone(repository.store()),
            queries,
        }
    }

    /// `events` of `aggregate_id` with their positions, if they can be found.
    async fn positioned(
        &self,
        aggregate_id: &str,
        events: &[EventEnvelope<A>],
    ) -> Option<Vec<EventEnvelope<A>>> {
        let first = u64::try_from(events.first()?.sequence).ok()?;
        let count = events.len();
        let stream = stream_id(A::TYPE, aggregate_id).ok()?;
        let positions = run_on_store("reading event positions in", &self.store, move |store| {
            let mut positions = Vec::with_capacity(count);
            store.scan_stream(&stream, first, |event| {
                positions.push((event.version, event.position));
                if positions.len() == count {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            Ok::<_, Error>(positions)
        })
        .await
        .ok()?;
        if positions.len() != count {
            return None;
        }
        let mut positioned = events.to_vec();
        for (event, (version, position)) in positioned.iter_mut().zip(positions) {
            if u64::try_from(event.sequence).ok()? != version {
                return None;
            }
            event
                .metadata
                .insert(POSITION_METADATA_KEY.to_string(), position.to_string());
        }
        Some(positioned)
    }
}

#[async_trait]
impl<A: Aggregate> Query<A> for WithPositions<A> {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<A>]) {
        if self.queries.is_empty() {
            return;
        }
        let positioned = self.positioned(aggregate_id, events).await;
        let events = positioned.as_deref().unwrap_or(events);
        for query in &self.queries {
            query.dispatch(aggregate_id, events).await;
        }
    }
}
