//! Talking to the NATS server: connecting, finding (or creating) the
//! JetStream stream, reading one of its messages, and sorting the client's
//! errors into "retry" and "give up".

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::jetstream::{self, Context};

use super::error::ShipError;
use super::retry::Interruption;

/// Reconnections the client attempts by itself within one session before
/// the session ends and the shipper's own bounded retry takes over.
const CLIENT_RECONNECTS: usize = 3;

/// Checks that `url` names a NATS server (`nats://HOST:PORT`, or a list of
/// them separated by commas).
///
/// # Errors
/// [`ShipError::InvalidOptions`] naming the URL.
pub fn check_url(url: &str) -> Result<(), ShipError> {
    let invalid = |why: String| {
        Err(ShipError::InvalidOptions(format!(
            "{url:?} is not a NATS server URL ({why}); use nats://HOST:PORT"
        )))
    };
    if url.trim().is_empty() {
        return invalid("it is empty".into());
    }
    for part in url.split(',') {
        if let Err(error) = part.trim().parse::<async_nats::ServerAddr>() {
            return invalid(error.to_string());
        }
    }
    Ok(())
}

/// Connects to the server and opens a JetStream context whose requests and
/// publish acknowledgements wait at most `timeout`.
pub async fn connect(url: &str, timeout: Duration) -> Result<Context, Interruption> {
    let client = async_nats::ConnectOptions::new()
        .name("annals")
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .max_reconnects(CLIENT_RECONNECTS)
        .connect(url)
        .await
        .map_err(|error| Interruption::Retry {
            reason: format!("connecting to {url}: {error}"),
            contact: false,
        })?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client))
}

/// The JetStream stream `name`, with its current state.
pub async fn find_stream(
    context: &Context,
    url: &str,
    name: &str,
) -> Result<stream::Stream, Interruption> {
    match context.get_stream(name).await {
        Ok(stream) => Ok(stream),
        Err(error) => match error.kind() {
            GetStreamErrorKind::JetStream(js) if js.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                Err(Interruption::Fatal(ShipError::StreamNotFound {
                    url: url.to_string(),
                    stream: name.to_string(),
                    detail: js.to_string(),
                }))
            }
            GetStreamErrorKind::JetStream(js)
                if js.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED
                    || js.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT =>
            {
                Err(Interruption::Fatal(ShipError::StreamNotFound {
                    url: url.to_string(),
                    stream: name.to_string(),
                    detail: js.to_string(),
                }))
            }
            GetStreamErrorKind::EmptyName | GetStreamErrorKind::InvalidStreamName => {
                Err(Interruption::Fatal(ShipError::InvalidOptions(format!(
                    "{name:?} is not a valid JetStream stream name ({error})"
                ))))
            }
            _ => Err(Interruption::Retry {
                reason: format!("looking up JetStream stream {name:?} at {url}: {error}"),
                contact: false,
            }),
        },
    }
}

/// Creates the JetStream stream `name` holding `<prefix>.>` (file storage,
/// `replicas` copies, the server's default deduplication window) unless it
/// exists.
pub async fn create_stream_if_missing(
    context: &Context,
    name: &str,
    prefix: &str,
    replicas: usize,
) -> Result<(), Interruption> {
    let config = stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    match context.get_or_create_stream(config).await {
        Ok(_) => Ok(()),
        Err(error) => Err(Interruption::Fatal(ShipError::JetStream {
            action: format!("creating the stream with subjects \"{prefix}.>\""),
            stream: name.to_string(),
            detail: error.to_string(),
        })),
    }
}

/// The message at `sequence`, or `None` when the stream has none there.
pub async fn message_at(
    stream: &stream::Stream,
    name: &str,
    sequence: u64,
) -> Result<Option<StreamMessage>, Interruption> {
    match stream.get_raw_message(sequence).await {
        Ok(message) => Ok(Some(message)),
        Err(error) => match error.kind() {
            LastRawMessageErrorKind::NoMessageFound => Ok(None),
            LastRawMessageErrorKind::JetStream(js)
                if js.error_code() == ErrorCode::NO_MESSAGE_FOUND =>
            {
                Ok(None)
            }
            _ => Err(Interruption::Retry {
                reason: format!("reading message {sequence} of JetStream stream {name:?}: {error}"),
                contact: true,
            }),
        },
    }
}

/// Looks up header `name` of a stored message as text.
pub fn header<'a>(message: &'a StreamMessage, name: &str) -> Option<&'a str> {
    message.headers.get(name).map(|value| value.as_str())
}
