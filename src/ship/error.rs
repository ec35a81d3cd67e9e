//! What can stop a shipper or a receiver, each error saying what happened,
//! where (server, JetStream stream, sequence, annals position) and what to do.

use std::fmt;
use std::time::Duration;

/// A message header that is missing or does not parse, or a subject prefix
/// that is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// A header that every shipped message carries is missing.
    MissingHeader(&'static str),
    /// A header does not parse.
    BadHeader {
        /// The header's name.
        header: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The subject prefix cannot begin a NATS subject.
    InvalidSubjectPrefix {
        /// The prefix given.
        prefix: String,
        /// What is wrong with it.
        why: String,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::MissingHeader(name) => write!(f, "the message has no {name} header"),
            MessageError::BadHeader { header, value, why } => {
                write!(f, "header {header} is {value:?}: {why}")
            }
            MessageError::InvalidSubjectPrefix { prefix, why } => write!(
                f,
                "invalid subject prefix {prefix:?}: {why}; use tokens of letters, digits, '-' \
                 and '_' separated by '.', such as \"annals.orders\""
            ),
        }
    }
}

impl std::error::Error for MessageError {}

/// Why shipping to (or receiving from) NATS JetStream stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShipError {
    /// The options are not usable (an empty stream name, a URL that is not
    /// `nats://HOST:PORT`, a window of 0, …).
    InvalidOptions(String),
    /// The subject prefix is not valid.
    Message(MessageError),
    /// Reading (or, for a receiver, writing) the annals store failed.
    Store(crate::Error),
    /// No NATS server answered for longer than the shipper's
    /// `give_up_after` (every attempt failed in between).
    ServerUnavailable {
        /// The server URL.
        url: String,
        /// How long it kept trying.
        waited: Duration,
        /// How many attempts failed.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// The server has no JetStream stream of that name (or JetStream is off).
    StreamNotFound {
        /// The server URL.
        url: String,
        /// The JetStream stream's name.
        stream: String,
        /// What the server said.
        detail: String,
    },
    /// A subject is not bound to the JetStream stream: no stream took the
    /// message, or another one did.
    SubjectNotInStream {
        /// The subject published to.
        subject: String,
        /// The JetStream stream that should hold it.
        stream: String,
        /// What the server said.
        detail: String,
    },
    /// The JetStream stream holds messages that this shipper did not write
    /// (not from annals, or from another store), so it cannot tell where to
    /// resume, or (for a receiver) a copy cannot be rebuilt from it.
    ForeignStream {
        /// The JetStream stream's name.
        stream: String,
        /// The sequence of the message concerned.
        sequence: u64,
        /// What was found.
        why: String,
    },
    /// Events to ship were retired from the store before they were shipped
    /// (`Store::retire_segments_before`): the stream would miss them.
    Retired {
        /// The first position still to ship.
        from: u64,
        /// Where the store's log starts now.
        log_start: u64,
    },
    /// An event is larger than the server accepts (its `max_payload`).
    EventTooLarge {
        /// The event's position.
        position: u64,
        /// What the client said (sizes included).
        detail: String,
    },
    /// The event names a data subject (its data is sealed with that
    /// subject's key): shipping its plain data would put a copy beyond the
    /// reach of [`crate::Store::erase_subject`], so the shipper stops
    /// before it (`docs/shipping.md`). Filter such streams out of shipping.
    EventHasSubject {
        /// The event's position.
        position: u64,
        /// Its stream.
        stream: String,
        /// Its subject.
        subject: String,
    },
    /// The server answers but shipping makes no progress: session after
    /// session ended (for example with the stream changing under the
    /// shipper) before a single event was acknowledged.
    Stalled {
        /// The JetStream stream's name.
        stream: String,
        /// Sessions in a row that shipped nothing.
        sessions: u32,
        /// Why the last one ended.
        last_error: String,
    },
    /// JetStream refused a request for another reason (permissions, limits…).
    JetStream {
        /// What the shipper was doing.
        action: String,
        /// The JetStream stream's name.
        stream: String,
        /// What the server or client said.
        detail: String,
    },
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShipError::InvalidOptions(message) => write!(f, "{message}"),
            ShipError::Message(error) => write!(f, "{error}"),
            ShipError::Store(error) => write!(f, "{error}"),
            ShipError::ServerUnavailable {
                url,
                waited,
                attempts,
                last_error,
            } => write!(
                f,
                "no NATS server at {url} for {:.1} s ({attempts} attempts), giving up; last \
                 error: {last_error}. Check that nats-server runs there with JetStream (-js), \
                 or wait longer (--give-up-after)",
                waited.as_secs_f64()
            ),
            ShipError::StreamNotFound {
                url,
                stream,
                detail,
            } => write!(
                f,
                "the NATS server at {url} has no JetStream stream {stream:?} ({detail}); create \
                 it (for example with --create-stream) or check the name, and that the server \
                 runs with JetStream (-js)"
            ),
            ShipError::SubjectNotInStream {
                subject,
                stream,
                detail,
            } => write!(
                f,
                "subject {subject:?} is not stored by JetStream stream {stream:?} ({detail}); the \
                 stream's subjects must include \"<subject prefix>.>\""
            ),
            ShipError::ForeignStream {
                stream,
                sequence,
                why,
            } => write!(
                f,
                "JetStream stream {stream:?}, message {sequence}: {why}; ship each store into a \
                 stream of its own"
            ),
            ShipError::Retired { from, log_start } => write!(
                f,
                "events {from}..{log_start} were retired from the store before they were \
                 shipped; ship from position {log_start} on purpose (`ShipOptions::from_position`, `annals ship --from`) if \
                 the stream may miss them, or restore them from the archive"
            ),
            ShipError::EventTooLarge { position, detail } => write!(
                f,
                "the event at position {position} is larger than the NATS server accepts \
                 ({detail}); raise the server's max_payload"
            ),
            ShipError::EventHasSubject {
                position,
                stream,
                subject,
            } => write!(
                f,
                "the event at position {position} (stream {stream:?}) names data subject \
                 {subject:?}: its data is erasable and is never shipped, as a copy in NATS \
                 could not be erased; leave such streams out with the filter"
            ),
            ShipError::Stalled {
                stream,
                sessions,
                last_error,
            } => write!(
                f,
                "shipping to JetStream stream {stream:?} made no progress in {sessions} attempts \
                 in a row although the server answered; last error: {last_error}. Is another \
                 program publishing into the stream?"
            ),
            ShipError::JetStream {
                action,
                stream,
                detail,
            } => write!(f, "{action} (JetStream stream {stream:?}) failed: {detail}"),
        }
    }
}

impl std::error::Error for ShipError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShipError::Store(error) => Some(error),
            ShipError::Message(error) => Some(error),
            _ => None,
        }
    }
}

impl From<crate::Error> for ShipError {
    fn from(error: crate::Error) -> ShipError {
        ShipError::Store(error)
    }
}

impl From<MessageError> for ShipError {
    fn from(error: MessageError) -> ShipError {
        ShipError::Message(error)
    }
}
