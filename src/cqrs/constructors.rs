//! One-call constructors of a `CqrsFramework` on annals, named and shaped
//! like postgres-es's `postgres_cqrs`, `postgres_snapshot_cqrs` and
//! `postgres_aggregate_cqrs`, with a [`Store`] in place of a connection pool.

use std::sync::Arc;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, CqrsFramework, Query};

use crate::store::Store;

use super::AnnalsEventRepository;

/// A `CqrsFramework` whose event store is an annals store.
pub type AnnalsCqrs<A> = CqrsFramework<A, PersistedEventStore<AnnalsEventRepository, A>>;

/// A framework whose aggregates are rebuilt from all their events on every
/// command (cqrs-es's event store): the one store kind that cqrs-es 0.5.0
/// serves correctly for every aggregate (see `docs/cqrs-es.md`).
///
/// `store` is a [`Store`] or an `Arc<Store>` shared with other code.
pub fn annals_cqrs<A: Aggregate>(
    store: impl Into<Arc<Store>>,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> AnnalsCqrs<A> {
    let repository = AnnalsEventRepository::new(store);
    CqrsFramework::new(
        PersistedEventStore::new_event_store(repository),
        queries,
        services,
    )
}

/// A framework that loads aggregates from a snapshot plus the events after
/// it, taking a snapshot every `snapshot_size` events (cqrs-es's snapshot
/// store).
///
/// With cqrs-es 0.5.0 a snapshot holds the new events applied twice; use it
/// only for aggregates whose `apply` is idempotent (see `docs/cqrs-es.md`).
pub fn annals_snapshot_cqrs<A: Aggregate>(
    store: impl Into<Arc<Store>>,
    queries: Vec<Box<dyn Query<A>>>,
    snapshot_size: usize,
    services: A::Services,
) -> AnnalsCqrs<A> {
    let repository = AnnalsEventRepository::new(store);
    CqrsFramework::new(
        PersistedEventStore::new_snapshot_store(repository, snapshot_size),
        queries,
        services,
    )
}

/// A framework that loads aggregates from their latest snapshot alone,
/// saving one with every command (cqrs-es's aggregate store).
///
/// With cqrs-es 0.5.0 a snapshot holds the new events applied twice; use it
/// only for aggregates whose `apply` is idempotent (see `docs/cqrs-es.md`).
pub fn annals_aggregate_cqrs<A: Aggregate>(
    store: impl Into<Arc<Store>>,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> AnnalsCqrs<A> {
    let repository = AnnalsEventRepository::new(store);
    CqrsFramework::new(
        PersistedEventStore::new_aggregate_store(repository),
        queries,
        services,
    )
}
