//! annals: an embedded event store: an append-only, segmented file log with
//! an in-memory stream index.
//!
//! Events are appended to streams as atomic batches with an optimistic
//! concurrency check (the expected version), and read back by stream and
//! version or by global position. Every record is checksummed, every batch
//! extends a SHA-256 hash chain, and a crash loses nothing that was
//! acknowledged as durable.
//!
//! Use it for event-sourced applications, high-throughput local logs tailed
//! by another process, and verifiable archive files. Do not use it when
//! several machines must write to one store (it is a local, single-writer
//! log) or when you need ad-hoc queries over event contents (use a database).
//!
//! ```
//! use annals::{EventData, ExpectedVersion, Options, Store};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! enum Account { Opened { owner: String }, Deposited { amount: u64 } }
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::default())?;
//! store.append("account-1", ExpectedVersion::NoStream, &[
//!     EventData::from_serde("Opened", &Account::Opened { owner: "ada".into() })?,
//!     EventData::from_serde("Deposited", &Account::Deposited { amount: 10 })?,
//! ])?;
//! let events = store.read_stream("account-1", 1, 10)?;
//! assert_eq!(events[1].decode::<Account>()?, Account::Deposited { amount: 10 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The on-disk format is in `docs/format.md`; the design, recovery rules and
//! durability guarantees in `docs/design.md`.
//!
//! # Features
//! - `cli` (default): the `annals` command-line binary.
//! - `cqrs-es`: [cqrs-es](https://docs.rs/cqrs-es) adapter (`annals::cqrs`).
//! - `nats`: ship events to NATS JetStream exactly once, and rebuild a store
//!   from such a stream (`annals::ship`; adds async-nats and tokio).
//! - `tracing`: a `tracing_subscriber::Layer` that logs into a store
//!   through a non-blocking writer (`annals::tracing`).
//! - `internals`: the on-disk codec (`annals::format`) and fault-injection
//!   hooks (`annals::hooks`, `Options::hooks`), for this crate's own tests,
//!   benches and fuzzing; not a stable API. Without it they are private.

#![deny(missing_docs)]

// Layers, from the top: the public store facade (`store`), audits
// (`audit`: verify), the engine (writer, durability, recovery, follower),
// the index, the log on disk (`log`: segment files, directory, scanner), and
// the pure on-disk codec (`format`). Each calls only layers below it.
#[cfg(feature = "object-storage")]
pub mod archive;
mod audit;
pub mod codec;
#[cfg(feature = "cqrs-es")]
pub mod cqrs;
mod engine;
mod error;
mod event;
mod filter;
// The on-disk codec and the fault-injection hooks are public only with the
// feature `internals` (this crate's tests, benches and fuzz targets): they
// are not a stable API.
#[cfg(feature = "internals")]
pub mod format;
#[cfg(not(feature = "internals"))]
mod format;
#[cfg(feature = "internals")]
pub mod hooks;
#[cfg(not(feature = "internals"))]
mod hooks;
mod index;
pub mod keys;
mod log;
mod options;
pub mod proof;
#[cfg(feature = "nats")]
pub mod ship;
mod snapshot;
mod store;
pub mod system_streams;
pub mod timestamp;
#[cfg(feature = "tracing")]
pub mod tracing;

pub use audit::repair::{
    Cut, LostEvents, Repair, RepairPlan, RewriteFooter, StaleSnapshot, ZeroFrom,
};
pub use audit::salvage::{SalvageReport, salvage};
pub use audit::verify;
pub use engine::recovery::{Recovered, RecoveryAction, RecoveryReport};
pub use engine::retire::{RetireOptions, RetiredFile, Retirement};
pub use error::{Error, Result};
pub use event::{
    AppendResult, EventData, EventDataRef, EventView, ExpectedVersion, RecordedEvent,
    StreamCondition, Uuid,
};
pub use filter::Filter;
pub use keys::{FileKeys, MemoryKeys, SubjectKey, SubjectKeys};
pub use log::directory::{LOCK_FILE_NAME, is_segment_file_name};
pub use log::finding::{DurableEvidence, Finding, FindingKind};
pub use log::verdict::{SegmentRole, Verdict};
pub use options::{Durability, Limits, Options};
pub use snapshot::{SNAPSHOT_DIR_NAME, Snapshot};
pub use store::{
    Direction, FOLLOW_POLL_MAX, MultiAppendResult, MultiStreamAppend, ProofOptions,
    READ_PAGE_EVENTS, Read, ReadRequest, Receipt, SUBSCRIPTION_READ_AHEAD, StartAt, Store,
    StreamAppendResult, Subscription,
};
pub use verify::{ExpectedHead, VerifyOptions, VerifyReport, verify};

/// The README's examples, compiled and run as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
