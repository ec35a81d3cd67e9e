//! Codecs: how typed values become event data and snapshot bytes.
//!
//! MessagePack ([`MessagePack`]) is the default; [`Json`] is the second
//! built-in one. Each records its name as the event's content type, so a
//! reader knows how to decode: [`crate::RecordedEvent::decode`] picks the
//! codec from it. Implement [`Codec`] to plug in another encoding and decode
//! it with [`crate::RecordedEvent::decode_with`].
//!
//! ```
//! use annals::codec::Json;
//! use annals::{EventData, ExpectedVersion, Store, Options};
//! let store = Store::in_memory(Options::default())?;
//! let event = EventData::encode_with::<Json, _>("Renamed", &serde_json::json!({"name": "ada"}))?;
//! store.append("user-1", ExpectedVersion::Any, &[event])?;
//! let read = &store.read_stream("user-1", 1, 1)?[0];
//! assert_eq!(read.content_type.as_deref(), Some("json"));
//! assert_eq!(read.decode::<serde_json::Value>()?["name"], "ada");
//! # Ok::<(), annals::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// An encoding of serde values.
pub trait Codec {
    /// The content type recorded with each event or snapshot encoded by it.
    const CONTENT_TYPE: &'static str;

    /// Encodes `value`.
    ///
    /// # Errors
    /// [`Error::Codec`] when the value cannot be encoded.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>>;

    /// Decodes bytes this codec produced.
    ///
    /// # Errors
    /// [`Error::Codec`] when the bytes are not a valid encoding of `T`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T>;
}

/// MessagePack through rmp-serde, with field names (so that fields can be
/// added and reordered over a stream's life). Content type `"msgpack"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

/// JSON through serde_json. Content type `"json"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for MessagePack {
    const CONTENT_TYPE: &'static str = "msgpack";

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
        rmp_serde::to_vec_named(value).map_err(|e| Error::Codec {
            message: format!("MessagePack encoding: {e}"),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::Codec {
            message: format!("MessagePack decoding: {e}"),
        })
    }
}

impl Codec for Json {
    const CONTENT_TYPE: &'static str = "json";

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::Codec {
            message: format!("JSON encoding: {e}"),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::Codec {
            message: format!("JSON decoding: {e}"),
        })
    }
}

/// Puts `what` (for example "event 3 of stream \"a\"") before the message
/// of a codec error, so that it says which data failed to decode.
pub(crate) fn locate(error: Error, what: impl FnOnce() -> String) -> Error {
    match error {
        Error::Codec { message } => Error::Codec {
            message: format!("{}: {message}", what()),
        },
        other => other,
    }
}

/// Decodes with the built-in codec named by `content_type` (MessagePack when
/// none is recorded).
pub(crate) fn decode_by_content_type<T: DeserializeOwned>(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<T> {
    match content_type {
        None | Some(MessagePack::CONTENT_TYPE) => MessagePack::decode(bytes),
        Some(Json::CONTENT_TYPE) => Json::decode(bytes),
        Some(other) => Err(Error::Codec {
            message: format!(
                "no built-in codec for content type {other:?}; decode it with decode_with::<YourCodec, _>()"
            ),
        }),
    }
}
