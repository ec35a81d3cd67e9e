//! Shipping events to NATS JetStream, exactly once across restarts, and
//! rebuilding a store from such a stream on another machine (cargo feature
//! `nats`).
//!
//! [`ship`] follows a store (typically opened with
//! [`Store::open_read_only`](crate::Store::open_read_only) beside its writer
//! in another process) and publishes each event, in log order, as one
//! message: its data as the body, everything else as headers, on the
//! subject `<prefix>.<category>.<stream id>`. Where to resume is read from
//! the JetStream stream's last message, never from a local file; every
//! publish carries a deduplication id (`<store id>:<position>`) and the
//! stream sequence it must follow, so that a restart, a replay or a second
//! shipper cannot store an event twice or out of order. [`receive`] appends
//! the messages of such a stream to another store, resuming from that
//! store's own length.
//!
//! `docs/shipping.md` describes the message layout, what exactly-once rests
//! on, and how to consume the stream elsewhere.
//!
//! ```no_run
//! use annals::ship::{ShipOptions, ship_blocking};
//! let store = annals::Store::open_read_only("./store")?;
//! let options = ShipOptions::new("nats://127.0.0.1:4222", "ORDERS").subject_prefix("shop");
//! ship_blocking(&store, &options, |progress| eprintln!("lag {}", progress.lag))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod message;
mod options;
mod progress;
mod receive;
mod resume;
mod retry;
mod server;
mod shipper;
mod store_id;

pub use error::{MessageError, ShipError};
pub use options::{
    DEFAULT_GIVE_UP_AFTER, DEFAULT_MAX_IN_FLIGHT, DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SUBJECT_PREFIX, IDLE_POLL, MAX_IN_FLIGHT_LIMIT,
    ReceiveOptions, ShipOptions,
};
pub use progress::{Phase, Progress, ReceiveProgress};
pub use receive::{RECEIVE_CHUNK, RECEIVE_CONCURRENCY, receive, receive_blocking};
pub use retry::{FIRST_BACKOFF, MAX_BACKOFF, MAX_STALLED_SESSIONS};
pub use shipper::{ship, ship_blocking};
pub use store_id::{store_id, store_id_of};

/// A single-threaded runtime for the blocking entry points: the shipper
/// never blocks for long (store reads are bounded pages of mapped memory),
/// so the client's background tasks run whenever it waits.
fn runtime() -> Result<tokio::runtime::Runtime, ShipError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            ShipError::InvalidOptions(format!("cannot start a tokio runtime: {error}"))
        })
}
