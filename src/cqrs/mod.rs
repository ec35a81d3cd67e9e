//! annals as the event store of [cqrs-es](https://docs.rs/cqrs-es) 0.5
//! (feature `cqrs-es`).
//!
//! [`AnnalsEventRepository`] implements cqrs-es's `PersistedEventRepository`,
//! the trait postgres-es, mysql-es and dynamo-es implement. [`open_cqrs`]
//! opens the store (off the runtime's worker threads) and builds the
//! framework in one call:
//!
//! ```no_run
//! use annals::cqrs::{AnnalsCqrs, open_cqrs};
//! use annals::Options;
//! use cqrs_es::{Aggregate, Query};
//!
//! async fn framework<A: Aggregate + 'static>(
//!     queries: Vec<Box<dyn Query<A>>>,
//!     services: A::Services,
//! ) -> Result<AnnalsCqrs<A>, annals::Error> {
//!     // was: postgres_es::postgres_cqrs(pool, queries, services)
//!     open_cqrs("data/events", Options::default(), queries, services).await
//! }
//! ```
//!
//! To share the store (a `QueryReplay`, views, several aggregates), open an
//! [`AnnalsEventRepository`] once and pass clones of it to [`annals_cqrs`],
//! [`annals_snapshot_cqrs`] or [`annals_aggregate_cqrs`].
//!
//! Calls on a store of files run on tokio's blocking pool
//! (`spawn_blocking`), never on the runtime's worker threads; calls on a
//! store in memory, which do no I/O, run where they are awaited.
//!
//! # Mapping
//!
//! | cqrs-es | annals |
//! |---|---|
//! | aggregate type + aggregate id | stream `"{aggregate_type}-{aggregate_id}"` ([`stream_id`]); the type must not contain `-` |
//! | event `sequence` | the event's version in that stream (both start at 1) |
//! | `event_type` | the event type |
//! | `payload` | the data, as JSON (content type `"json"`) |
//! | `event_version`, `metadata` | the metadata: the JSON object `{"event_version": …, "metadata": …}` |
//! | a `persist` call's events | one atomic append, expected version `first sequence - 1`; a conflict is `OptimisticLockError`, so cqrs-es returns `AggregateConflict` |
//! | snapshot `current_sequence` | the annals snapshot's version: the sequence of the last event persisted with it |
//! | snapshot `aggregate`, `current_snapshot` | the snapshot's data, the JSON object `{"current_snapshot": …, "aggregate": …}` |
//! | all events of an aggregate type | the events of streams starting with `"{aggregate_type}-"`, in log order |
//! | (no cqrs-es field) | each event's global position, in the metadata of every envelope annals hands to a query, under [`POSITION_METADATA_KEY`] ([`event_position`]) |
//!
//! # The read side
//!
//! Queries are given each event's global position: in envelopes the
//! framework dispatches ([`WithPositions`]), replays
//! ([`AnnalsEventRepository::replay_from`] resumes from a position) and
//! envelopes decoded from annals' own reads ([`event_envelope`]).
//! [`AnnalsViewRepository`] keeps a `GenericQuery`'s views on small files
//! of their own, with optimistic versions and a checkpoint, as postgres-es's
//! `PostgresViewRepository` keeps them in a table.
//!
//! # Migrating from postgres-es
//!
//! [`import_postgres_es_events`] appends an export of postgres-es's
//! `events` table (JSON lines) to a store.
//!
//! # Which cqrs-es store kinds to use
//!
//! With cqrs-es 0.5.0, use the event store ([`annals_cqrs`]). Its snapshot
//! and aggregate stores save aggregates to which the new events were applied
//! twice (once by `EventSink::write`, once more by `PersistedEventStore::commit`):
//! they are correct only for aggregates whose `apply` is idempotent.
//! `docs/cqrs-es.md` has the details, the semantics of every trait method,
//! and where this adapter differs from postgres-es.

mod blocking;
mod constructors;
mod envelope;
mod import;
mod mapping;
mod positions;
mod replay;
mod repository;
mod view_record;
mod views;

pub use constructors::{
    AnnalsCqrs, annals_aggregate_cqrs, annals_cqrs, annals_snapshot_cqrs, open_cqrs,
};
pub use envelope::{POSITION_METADATA_KEY, event_envelope, event_position, serialized_event};
pub use import::{PostgresEsImport, PostgresEsImportError, import_postgres_es_events};
pub use mapping::{STREAM_ID_SEPARATOR, stream_id, stream_prefix};
pub use positions::WithPositions;
pub use repository::{AnnalsEventRepository, DEFAULT_STREAMING_CHANNEL_SIZE};
pub use view_record::{MAX_VIEW_BYTES, MAX_VIEW_ID_BYTES};
pub use views::{AnnalsViewRepository, VIEW_LOCK_FILE_NAME};
