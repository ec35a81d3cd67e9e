//! What a shipper or a receiver is told: the server, the JetStream stream,
//! and the bounds on its waiting.

use std::time::Duration;

use crate::filter::Filter;

use super::error::ShipError;
use super::message::check_subject_prefix;
use super::server::check_url;

/// The subject prefix when none is given: subjects are `annals.<category>.<stream id>`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "annals";
/// Publishes awaiting their acknowledgement at most, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Largest window accepted (`ShipOptions::max_in_flight`).
pub const MAX_IN_FLIGHT_LIMIT: usize = 4096;
/// How long one request or acknowledgement is waited for, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may stay out of reach before giving up, by default.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// Pause between two looks at the store (or stream) when there is nothing new.
pub const IDLE_POLL: Duration = Duration::from_millis(10);
/// Shortest interval between two progress reports while shipping.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How to ship a store to a JetStream stream; see [`crate::ship::ship`].
///
/// ```
/// use annals::ship::ShipOptions;
/// let options = ShipOptions::new("nats://127.0.0.1:4222", "ORDERS")
///     .subject_prefix("shop.orders")
///     .filter(annals::Filter::default().stream_prefix("order-"))
///     .once(true);
/// assert!(options.check().is_ok());
/// assert!(ShipOptions::new("nats://127.0.0.1:4222", "ORDERS").subject_prefix("a b").check().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// The server, `nats://HOST:PORT` (several separated by commas).
    pub url: String,
    /// The JetStream stream's name. One store ships into one stream.
    pub stream: String,
    /// First token(s) of every subject (default [`DEFAULT_SUBJECT_PREFIX`]).
    pub subject_prefix: String,
    /// Where to start when the JetStream stream holds nothing of this store
    /// yet (default 0). Once it holds something, shipping resumes after its
    /// last message and this is ignored.
    pub from_position: u64,
    /// Which events to ship (default: all).
    pub filter: Filter,
    /// Publishes awaiting acknowledgement at most (default
    /// [`DEFAULT_MAX_IN_FLIGHT`]): the shipper reads the store no further
    /// ahead than this, whatever the server's pace.
    pub max_in_flight: usize,
    /// Longest wait for one request or acknowledgement.
    pub request_timeout: Duration,
    /// Give up when the server has been out of reach this long.
    pub give_up_after: Duration,
    /// Stop once everything committed when the shipper started is shipped,
    /// instead of following the store.
    pub once: bool,
    /// Create the JetStream stream (subjects `<prefix>.>`, file storage) if
    /// it does not exist, with this many replicas.
    pub create_stream_replicas: Option<usize>,
    /// Shortest interval between two progress reports while shipping.
    pub progress_interval: Duration,
}

impl ShipOptions {
    /// Options with the defaults for shipping to `stream` at `url`.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> ShipOptions {
        ShipOptions {
            url: url.into(),
            stream: stream.into(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.into(),
            from_position: 0,
            filter: Filter::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            once: false,
            create_stream_replicas: None,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
        }
    }

    /// Sets the subject prefix.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// Sets where to start in a stream that holds nothing of this store.
    pub fn from_position(mut self, position: u64) -> Self {
        self.from_position = position;
        self
    }

    /// Ships only events that pass `filter`.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the window of unacknowledged publishes.
    pub fn max_in_flight(mut self, window: usize) -> Self {
        self.max_in_flight = window;
        self
    }

    /// Sets the longest wait for one request or acknowledgement.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how long the server may stay out of reach.
    pub fn give_up_after(mut self, window: Duration) -> Self {
        self.give_up_after = window;
        self
    }

    /// Stops once caught up instead of following.
    pub fn once(mut self, once: bool) -> Self {
        self.once = once;
        self
    }

    /// Creates the JetStream stream if missing, with `replicas` copies.
    pub fn create_stream(mut self, replicas: usize) -> Self {
        self.create_stream_replicas = Some(replicas);
        self
    }

    /// Checks the options without contacting anything.
    ///
    /// # Errors
    /// [`ShipError::InvalidOptions`] or [`ShipError::Message`] saying which
    /// option is wrong.
    pub fn check(&self) -> Result<(), ShipError> {
        check_url(&self.url)?;
        check_stream_name(&self.stream)?;
        check_subject_prefix(&self.subject_prefix)?;
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT_LIMIT {
            return Err(ShipError::InvalidOptions(format!(
                "max in flight is {}; it must be between 1 and {MAX_IN_FLIGHT_LIMIT}",
                self.max_in_flight
            )));
        }
        check_timeout(self.request_timeout)?;
        if self.create_stream_replicas == Some(0) {
            return Err(ShipError::InvalidOptions(
                "a stream needs at least 1 replica".into(),
            ));
        }
        Ok(())
    }
}

/// How to rebuild a store from a JetStream stream; see [`crate::ship::receive`].
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// The server, `nats://HOST:PORT`.
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// Longest wait for one request.
    pub request_timeout: Duration,
    /// Give up when the server has been out of reach this long.
    pub give_up_after: Duration,
    /// Stop once the messages the stream held at the start are received,
    /// instead of following it.
    pub once: bool,
    /// Shortest interval between two progress reports.
    pub progress_interval: Duration,
}

impl ReceiveOptions {
    /// Options with the defaults for receiving from `stream` at `url`.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> ReceiveOptions {
        ReceiveOptions {
            url: url.into(),
            stream: stream.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            once: false,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
        }
    }

    /// Stops once caught up instead of following.
    pub fn once(mut self, once: bool) -> Self {
        self.once = once;
        self
    }

    /// Sets how long the server may stay out of reach.
    pub fn give_up_after(mut self, window: Duration) -> Self {
        self.give_up_after = window;
        self
    }

    /// Checks the options without contacting anything.
    ///
    /// # Errors
    /// [`ShipError::InvalidOptions`] saying which option is wrong.
    pub fn check(&self) -> Result<(), ShipError> {
        check_url(&self.url)?;
        check_stream_name(&self.stream)?;
        check_timeout(self.request_timeout)
    }
}

/// JetStream stream names may not hold white space, `.`, `*`, `>`, path
/// separators or control characters.
fn check_stream_name(name: &str) -> Result<(), ShipError> {
    let bad = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'));
    if name.is_empty() || bad.is_some() {
        return Err(ShipError::InvalidOptions(format!(
            "{name:?} is not a JetStream stream name: it must be non-empty, without white \
             space, '.', '*', '>', '/' or '\\'"
        )));
    }
    Ok(())
}

fn check_timeout(timeout: Duration) -> Result<(), ShipError> {
    if timeout.is_zero() {
        return Err(ShipError::InvalidOptions(
            "the request timeout must be longer than 0".into(),
        ));
    }
    Ok(())
}
