//! annals as a log for the [`tracing`](https://docs.rs/tracing) ecosystem
//! (feature `tracing`): a [`tracing_subscriber::Layer`] that writes each
//! event into a store through a bounded queue and a background writer
//! thread, so that the logging thread never waits for the disk.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let dir = tempfile::tempdir()?;
//! let store = annals::Store::open(dir.path(), annals::Options::default())?;
//! let layer = annals::tracing::layer(store);
//! let guard = layer.guard(); // flushes and syncs when dropped
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(target: "app", user = "ada", attempts = 3, "logged in");
//! });
//! drop(guard);
//!
//! let store = annals::Store::open_read_only(dir.path())?;
//! let event = &store.read_all(0, 10)?[0];
//! assert_eq!((event.stream.as_str(), event.event_type.as_str()), ("app", "INFO"));
//! let fields: serde_json::Value = event.decode()?;
//! assert_eq!(fields, serde_json::json!({"message": "logged in", "user": "ada", "attempts": 3}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What an event becomes
//! - **stream**: the event's target (its module path, unless given), or
//!   what [`Builder::stream`] chooses: a field such as `tenant` (looked up
//!   in the event, then in its spans), or one fixed stream. A name the store
//!   would refuse (empty, starting with `$`, too long) becomes
//!   [`FALLBACK_STREAM`].
//! - **type**: the level (`"INFO"`), followed by the event's name when it
//!   was given one (`"INFO login"`). With [`Builder::spans`], a span's
//!   opening and closing are events too: `"INFO span.open request"` and
//!   `"INFO span.close request"` (whose data is `elapsed_ns`).
//! - **data**: the fields as one MessagePack map (content type `msgpack`),
//!   each with its own type: `i64`/`u64` (and 128-bit values that fit) as
//!   integers, `f64`, `bool`, `&str`, bytes as binary, and everything else
//!   (`Debug` values, errors, the message) as text. Fields recorded on a span
//!   later (`Span::record`) are not written.
//! - **timestamp**: the time the writer thread appended it (the store's
//!   clock, which keeps timestamps non-decreasing for the time index); at
//!   most one drain later than the logging call.
//! - **correlation id**: the id of the root span of the event's span tree;
//!   **causation id**: the id of the span the event happened in. Both are
//!   UUID v7 text given to each span when it opens (tracing's own span ids
//!   are reused once a span closes). Events outside any span have neither.
//!
//! # The queue
//! The calling thread encodes the fields and hands the event to a queue of
//! [`Builder::queue_capacity`] events. When it is full it waits, or drops
//! and counts the event ([`Builder::when_full`]). A writer thread drains
//! the queue and appends each drain as one batch
//! ([`Store::append_multi`](crate::Store::append_multi) when it holds
//! several streams). [`AnnalsLayer::stats`] counts what was written,
//! dropped and refused. The store's durability setting decides when the
//! events reach the disk; a [`FlushGuard`] (or [`AnnalsLayer::flush`])
//! appends everything queued and syncs, so a clean shutdown loses nothing.

mod fields;
mod layer;
mod queue;

use std::borrow::Cow;
use std::sync::Arc;

pub use layer::AnnalsLayer;
use layer::{StreamChoice, is_valid_stream};
pub use queue::{
    FlushError, MAX_DRAIN_BYTES, MAX_DRAIN_EVENTS, MAX_DRAIN_STREAMS, Stats, WhenFull,
};
use queue::{StreamName, Writer};

use crate::store::Store;

/// The stream of events whose stream name the store would refuse.
pub const FALLBACK_STREAM: &str = "log";

/// Queue capacity by default, in events (each about 120 bytes plus its
/// fields' bytes while queued).
pub const DEFAULT_QUEUE_CAPACITY: usize = 32 * 1024;

/// A layer with the default options (see [`Builder`]): each event goes to
/// the stream named by its target, and a full queue blocks.
///
/// Keep a [`FlushGuard`] from [`AnnalsLayer::guard`] until shutdown: a
/// subscriber installed as the global default is never dropped, so only
/// the guard's drop flushes it.
pub fn layer(store: impl Into<Arc<Store>>) -> AnnalsLayer {
    Builder::default().build(store)
}

/// The options of a layer, starting from the defaults.
pub fn builder() -> Builder {
    Builder::default()
}

/// Which stream an event goes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamKey {
    /// The event's target (by default its module path). The default.
    #[default]
    Target,
    /// The value of this field (for example `"tenant"`), in the event or,
    /// when it has none, in its nearest span that has it; the target when
    /// none does.
    Field(&'static str),
    /// One stream for every event.
    Fixed(Cow<'static, str>),
}

/// The options of a layer.
///
/// ```
/// use annals::tracing::{StreamKey, WhenFull};
/// let store = annals::Store::in_memory(annals::Options::default())?;
/// let layer = annals::tracing::builder()
///     .stream(StreamKey::Field("tenant"))
///     .spans(true)
///     .queue_capacity(4096)
///     .when_full(WhenFull::Drop)
///     .build(store);
/// assert_eq!(layer.stats().dropped, 0);
/// # Ok::<(), annals::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    stream: StreamKey,
    spans: bool,
    queue_capacity: usize,
    when_full: WhenFull,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            stream: StreamKey::Target,
            spans: false,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            when_full: WhenFull::Block,
        }
    }
}

impl Builder {
    /// Which stream each event goes to (default: its target).
    pub fn stream(mut self, key: StreamKey) -> Builder {
        self.stream = key;
        self
    }

    /// Also write an event when a span opens and when it closes (default:
    /// off).
    pub fn spans(mut self, spans: bool) -> Builder {
        self.spans = spans;
        self
    }

    /// How many events the queue holds (default
    /// [`DEFAULT_QUEUE_CAPACITY`]; at least 1).
    pub fn queue_capacity(mut self, events: usize) -> Builder {
        self.queue_capacity = events.max(1);
        self
    }

    /// What a logging call does when the queue is full (default: wait).
    pub fn when_full(mut self, when_full: WhenFull) -> Builder {
        self.when_full = when_full;
        self
    }

    /// The layer, writing into `store`; starts its writer thread. The
    /// thread stops, after appending what is queued and syncing, when the
    /// layer (with its subscriber) and every guard are dropped.
    pub fn build(self, store: impl Into<Arc<Store>>) -> AnnalsLayer {
        let store = store.into();
        let max_stream_id_bytes = store.options().limits.max_stream_id_bytes;
        let stream = match self.stream {
            StreamKey::Target => StreamChoice::Target,
            StreamKey::Field(name) => StreamChoice::Field(name),
            StreamKey::Fixed(name) => StreamChoice::Fixed(match name {
                _ if !is_valid_stream(&name, max_stream_id_bytes) => {
                    StreamName::Static(FALLBACK_STREAM)
                }
                Cow::Borrowed(name) => StreamName::Static(name),
                Cow::Owned(name) => StreamName::Shared(Arc::from(name)),
            }),
        };
        AnnalsLayer {
            writer: Arc::new(Writer::start(store, self.queue_capacity, self.when_full)),
            stream,
            spans: self.spans,
            max_stream_id_bytes,
        }
    }
}

/// Flushes the layer's writer when dropped: everything logged before the
/// drop is appended and synced when the drop returns (a failure is printed
/// to stderr, as there is nowhere else to report it). Get one from
/// [`AnnalsLayer::guard`]; it also keeps the writer thread alive.
#[must_use = "dropping the guard flushes at once; keep it until shutdown"]
pub struct FlushGuard {
    writer: Arc<Writer>,
}

impl FlushGuard {
    /// The writer's counters.
    pub fn stats(&self) -> Stats {
        self.writer.stats()
    }

    /// Appends everything queued before this call and syncs the store.
    ///
    /// # Errors
    /// See [`FlushError`].
    pub fn flush(&self) -> Result<(), FlushError> {
        self.writer.flush()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        if let Err(error) = self.writer.flush() {
            eprintln!("{error}");
        }
    }
}
