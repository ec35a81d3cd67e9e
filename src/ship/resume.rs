//! Where to resume: learned from the JetStream stream itself, never from a
//! local file. The stream's last message carries the store id and the
//! position of the last event shipped; its sequence is what the next
//! publish must expect as the stream's last.

use async_nats::jetstream::stream;

use super::error::ShipError;
use super::message::{HEADER_MESSAGE_ID, origin_of};
use super::retry::Interruption;
use super::server::{header, message_at};

/// What the JetStream stream says about what was shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The stream's last sequence (0 for a new stream): the next publish
    /// expects it (`Nats-Expected-Last-Sequence`).
    pub last_sequence: u64,
    /// The position of the last event shipped, `None` when the stream holds
    /// no message.
    pub last_position: Option<u64>,
}

/// Reads the stream's last message and checks that this store wrote it.
///
/// # Errors
/// [`ShipError::ForeignStream`] when the last message was not shipped by
/// annals or was shipped from another store.
pub async fn resume_point(
    stream: &mut stream::Stream,
    name: &str,
    store_id: &str,
) -> Result<ResumePoint, Interruption> {
    let state = stream
        .info()
        .await
        .map_err(|error| Interruption::Retry {
            reason: format!("reading the state of JetStream stream {name:?}: {error}"),
            contact: false,
        })?
        .state
        .clone();
    if state.messages == 0 {
        // New, or purged: nothing shipped is left to resume after.
        return Ok(ResumePoint {
            last_sequence: state.last_sequence,
            last_position: None,
        });
    }
    let sequence = state.last_sequence;
    let foreign = |why: String| {
        Interruption::Fatal(ShipError::ForeignStream {
            stream: name.to_string(),
            sequence,
            why,
        })
    };
    let Some(message) = message_at(stream, name, sequence).await? else {
        return Err(foreign(
            "the stream's last message is gone (deleted), so where shipping stopped is unknown"
                .into(),
        ));
    };
    let origin = origin_of(|h| header(&message, h)).map_err(|error| {
        foreign(format!(
            "the last message (subject {:?}) was not shipped by annals: {error}",
            message.subject.as_str()
        ))
    })?;
    if origin.store_id != store_id {
        return Err(foreign(format!(
            "the last message was shipped from another store (id {}; this store's id is {store_id})",
            origin.store_id
        )));
    }
    let expected_id = super::message::message_id(store_id, origin.position);
    if header(&message, HEADER_MESSAGE_ID) != Some(expected_id.as_str()) {
        return Err(foreign(format!(
            "the last message's {HEADER_MESSAGE_ID} is {:?}, not {expected_id:?}",
            header(&message, HEADER_MESSAGE_ID)
        )));
    }
    Ok(ResumePoint {
        last_sequence: sequence,
        last_position: Some(origin.position),
    })
}
