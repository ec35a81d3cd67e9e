//! Constructors of a `CqrsFramework` on annals, named and shaped like
//! postgres-es's `postgres_cqrs`, `postgres_snapshot_cqrs` and
//! `postgres_aggregate_cqrs`, with an [`AnnalsEventRepository`] (or a
//! [`Store`]) in place of a connection pool; and [`open_cqrs`], which opens
//! the store and builds the framework in one async call.
//!
//! Each checks `A::TYPE` before building anything: a type that cannot name
//! annals streams is an error here, not at the first command.

use std::future::Future;
use std::path::Path;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, CqrsFramework, Query};

use crate::error::Error;
use crate::options::Options;

#[cfg(doc)]
use crate::store::Store;

use super::AnnalsEventRepository;
use super::mapping::stream_prefix;
use super::positions::WithPositions;

/// A `CqrsFramework` whose event store is an annals store.
pub type AnnalsCqrs<A> = CqrsFramework<A, PersistedEventStore<AnnalsEventRepository, A>>;

/// Opens the store in `dir` on tokio's blocking pool and returns a
/// framework on it whose aggregates are rebuilt from their events (as
/// [`annals_cqrs`]): the one call that replaces a connection pool and
/// `postgres_cqrs`.
///
/// `A::TYPE` is checked first: a type that cannot name annals streams is
/// refused before the store is opened (or its directory created). To share
/// the store with a `QueryReplay`, a view or another framework, open an
/// [`AnnalsEventRepository`] instead and pass clones of it to
/// [`annals_cqrs`].
///
/// ```
/// use annals::cqrs::open_cqrs;
/// use annals::Options;
/// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Account { balance: i64 }
/// # #[derive(Debug)] struct Refused;
/// # impl std::fmt::Display for Refused { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("refused") } }
/// # impl std::error::Error for Refused {}
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] struct Deposited(i64);
/// # impl cqrs_es::DomainEvent for Deposited {
/// #     fn event_type(&self) -> String { "Deposited".into() }
/// #     fn event_version(&self) -> String { "1.0".into() }
/// # }
/// # impl cqrs_es::Aggregate for Account {
/// #     const TYPE: &'static str = "account";
/// #     type Command = i64; type Event = Deposited; type Error = Refused; type Services = ();
/// #     async fn handle(&mut self, amount: i64, _: &(), sink: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Refused> {
/// #         sink.write(Deposited(amount), self).await;
/// #         Ok(())
/// #     }
/// #     fn apply(&mut self, event: Deposited) { self.balance += event.0 }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// // was: postgres_es::postgres_cqrs(default_postgress_pool(url).await, queries, services)
/// let cqrs = open_cqrs::<Account>(dir.path(), Options::default(), vec![], ()).await?;
/// cqrs.execute("ada", 100).await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for an aggregate type that cannot name annals
/// streams (see [`super::stream_id`]) or when not awaited inside a tokio
/// runtime; otherwise as [`Store::open`] ([`Error::Locked`] if the store is
/// already open).
pub fn open_cqrs<A: Aggregate + 'static>(
    dir: impl AsRef<Path>,
    options: Options,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> impl Future<Output = Result<AnnalsCqrs<A>, Error>> + Send {
    let dir = dir.as_ref().to_path_buf();
    async move {
        stream_prefix(A::TYPE)?;
        let repository = AnnalsEventRepository::open(dir, options).await?;
        annals_cqrs(repository, queries, services)
    }
}

/// A framework whose aggregates are rebuilt from all their events on every
/// command (cqrs-es's event store): the one store kind that cqrs-es 0.5.0
/// serves correctly for every aggregate (see `docs/cqrs-es.md`).
///
/// `repository` is an [`AnnalsEventRepository`] (cloned to share it), a
/// [`Store`] or an `Arc<Store>`. The queries are given each event's global
/// position in its metadata (see [`WithPositions`]).
///
/// # Errors
/// [`Error::InvalidArgument`] if `A::TYPE` cannot name annals streams (it
/// is empty or contains `-`; see [`super::stream_id`]).
pub fn annals_cqrs<A: Aggregate + 'static>(
    repository: impl Into<AnnalsEventRepository>,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> Result<AnnalsCqrs<A>, Error> {
    stream_prefix(A::TYPE)?;
    let repository = repository.into();
    let queries = with_positions(&repository, queries);
    Ok(CqrsFramework::new(
        PersistedEventStore::new_event_store(repository),
        queries,
        services,
    ))
}

/// A framework that loads aggregates from a snapshot plus the events after
/// it, taking a snapshot every `snapshot_size` events (cqrs-es's snapshot
/// store).
///
/// With cqrs-es 0.5.0 a snapshot holds the new events applied twice; use it
/// only for aggregates whose `apply` is idempotent (see `docs/cqrs-es.md`).
///
/// # Errors
/// As [`annals_cqrs`].
pub fn annals_snapshot_cqrs<A: Aggregate + 'static>(
    repository: impl Into<AnnalsEventRepository>,
    queries: Vec<Box<dyn Query<A>>>,
    snapshot_size: usize,
    services: A::Services,
) -> Result<AnnalsCqrs<A>, Error> {
    stream_prefix(A::TYPE)?;
    let repository = repository.into();
    let queries = with_positions(&repository, queries);
    Ok(CqrsFramework::new(
        PersistedEventStore::new_snapshot_store(repository, snapshot_size),
        queries,
        services,
    ))
}

/// A framework that loads aggregates from their latest snapshot alone,
/// saving one with every command (cqrs-es's aggregate store).
///
/// With cqrs-es 0.5.0 a snapshot holds the new events applied twice; use it
/// only for aggregates whose `apply` is idempotent (see `docs/cqrs-es.md`).
///
/// # Errors
/// As [`annals_cqrs`].
pub fn annals_aggregate_cqrs<A: Aggregate + 'static>(
    repository: impl Into<AnnalsEventRepository>,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> Result<AnnalsCqrs<A>, Error> {
    stream_prefix(A::TYPE)?;
    let repository = repository.into();
    let queries = with_positions(&repository, queries);
    Ok(CqrsFramework::new(
        PersistedEventStore::new_aggregate_store(repository),
        queries,
        services,
    ))
}

/// The queries a constructor hands to cqrs-es: `queries` behind one
/// [`WithPositions`], so that they are given each event's position.
fn with_positions<A: Aggregate + 'static>(
    repository: &AnnalsEventRepository,
    queries: Vec<Box<dyn Query<A>>>,
) -> Vec<Box<dyn Query<A>>> {
    if queries.is_empty() {
        return queries;
    }
    vec![Box::new(WithPositions::new(repository, queries))]
}
