//! Events as JSON: the lines `read`, `tail` and `export` print, and the
//! payload rules `append` and `import` use to turn JSON back into bytes.
//!
//! Data is shown as JSON when its bytes decode (MessagePack when the content
//! type is "msgpack" or absent, JSON when it is "json"). When the decoded
//! JSON would not encode back to exactly the stored bytes (or does not
//! decode at all), the bytes are also (or only) given as `data_base64`, and
//! `import` uses those: so an exported event is imported byte for byte.
//! Metadata follows the same rule with JSON text as its encoding.

use annals::RecordedEvent;
use annals::codec::{Codec, Json, MessagePack};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::Value;

use super::timestamp::rfc3339_nanos;

/// One event as printed by `read`, `tail` and `export`. The field order is
/// the key order of the line.
#[derive(Debug, Serialize)]
pub struct EventLine<'a> {
    pub stream: &'a str,
    pub version: u64,
    pub position: u64,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub id: String,
    pub timestamp: String,
    pub correlation_id: Option<&'a str>,
    pub causation_id: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The metadata as JSON; `null` when there is none (or it is not JSON).
    pub metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// The data subject, for an event that names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// `true` for an erased event, which then has neither `data` nor
    /// `data_base64`; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
}

impl<'a> EventLine<'a> {
    pub fn new(event: &'a RecordedEvent) -> EventLine<'a> {
        let content_type = event.content_type.as_deref();
        let (data, data_base64) = if event.erased {
            (None, None)
        } else {
            shown(
                &event.data,
                |bytes| decode_data(content_type, bytes),
                |value| encode_data(content_type, value).ok(),
            )
        };
        let (metadata, metadata_base64) = shown(&event.metadata, decode_metadata, |value| {
            Some(encode_metadata(value))
        });
        EventLine {
            stream: &event.stream,
            version: event.version,
            position: event.position,
            event_type: &event.event_type,
            id: event.id.hyphenated().to_string(),
            timestamp: rfc3339_nanos(event.timestamp_ns),
            correlation_id: event.correlation_id.as_deref(),
            causation_id: event.causation_id.as_deref(),
            content_type,
            metadata: metadata.unwrap_or(Value::Null),
            metadata_base64,
            data,
            data_base64,
            subject: event.subject.as_deref(),
            erased: event.erased,
        }
    }
}

/// Writes `event` as one JSON line (with its newline) to `out`.
pub fn write_event_line<W: std::io::Write + ?Sized>(
    out: &mut W,
    event: &RecordedEvent,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &EventLine::new(event))?;
    out.write_all(b"\n")
}

/// The JSON form of `bytes` and, when that form would not reproduce them
/// exactly, the bytes in base64.
fn shown(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Option<Value>,
    encode: impl Fn(&Value) -> Option<Vec<u8>>,
) -> (Option<Value>, Option<String>) {
    match decode(bytes) {
        Some(value) if encode(&value).as_deref() == Some(bytes) => (Some(value), None),
        decoded => (decoded, Some(BASE64.encode(bytes))),
    }
}

/// Decodes event data to JSON by its content type; `None` when the bytes are
/// not a complete encoding of a JSON-like value.
pub fn decode_data(content_type: Option<&str>, bytes: &[u8]) -> Option<Value> {
    match content_type {
        None | Some(MessagePack::CONTENT_TYPE) => decode_msgpack_exactly(bytes),
        Some(Json::CONTENT_TYPE) => serde_json::from_slice(bytes).ok(),
        Some(_) => None,
    }
}

/// Encodes a JSON value as event data of `content_type`, as `import` and
/// `append` store it.
pub fn encode_data(content_type: Option<&str>, value: &Value) -> Result<Vec<u8>, String> {
    match content_type {
        None | Some(MessagePack::CONTENT_TYPE) => MessagePack::encode(value),
        Some(Json::CONTENT_TYPE) => Json::encode(value),
        Some(other) => {
            return Err(format!(
                "data of content type {other:?} cannot be given as JSON; give it as data_base64"
            ));
        }
    }
    .map_err(|e| e.to_string())
}

/// Metadata is stored as compact JSON text; empty metadata reads as `null`.
pub fn encode_metadata(value: &Value) -> Vec<u8> {
    match value {
        Value::Null => Vec::new(),
        value => serde_json::to_vec(value).expect("a JSON value always serializes"),
    }
}

fn decode_metadata(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return Some(Value::Null);
    }
    serde_json::from_slice(bytes).ok()
}

/// Decodes one MessagePack value that spans all of `bytes`. (rmp-serde's
/// `from_slice` ignores trailing bytes, which would show the JSON text
/// `{"a":1}` as the number 123.)
fn decode_msgpack_exactly(bytes: &[u8]) -> Option<Value> {
    let mut cursor = std::io::Cursor::new(bytes);
    let value = {
        let mut deserializer = rmp_serde::Deserializer::new(&mut cursor);
        serde::Deserialize::deserialize(&mut deserializer).ok()?
    };
    (cursor.position() == bytes.len() as u64).then_some(value)
}

/// Decodes base64 text given for `field`.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text)
        .map_err(|e| format!("{field} is not valid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals::Uuid;
    use serde_json::json;

    fn recorded(content_type: Option<&str>, data: Vec<u8>, metadata: Vec<u8>) -> RecordedEvent {
        RecordedEvent {
            stream: "s".into(),
            version: 1,
            position: 0,
            id: Uuid::nil(),
            event_type: "T".into(),
            timestamp_ns: 0,
            correlation_id: None,
            causation_id: None,
            content_type: content_type.map(str::to_string),
            metadata,
            data,
            subject: None,
            erased: false,
        }
    }

    #[test]
    fn msgpack_data_shows_as_json_only() {
        let value = json!({"a": [1, -2, 3.5, "x", null, true]});
        let bytes = encode_data(Some("msgpack"), &value).unwrap();
        let event = recorded(Some("msgpack"), bytes, b"{\"k\":1}".to_vec());
        let line = EventLine::new(&event);
        assert_eq!(line.data, Some(value));
        assert_eq!(line.data_base64, None);
        assert_eq!(line.metadata, json!({"k": 1}));
        assert_eq!(line.metadata_base64, None);
    }

    #[test]
    fn bytes_that_would_not_round_trip_are_also_given_in_base64() {
        // JSON text is not MessagePack: trailing bytes after the fixint `{`.
        let event = recorded(None, b"{\"a\":1}".to_vec(), b"not json".to_vec());
        let line = EventLine::new(&event);
        assert_eq!(line.data, None);
        assert_eq!(line.data_base64.as_deref(), Some("eyJhIjoxfQ=="));
        assert_eq!(line.metadata, Value::Null);
        assert!(line.metadata_base64.is_some());
        // A 32-bit float decodes, but re-encodes as 64-bit: keep the bytes too.
        let event = recorded(None, vec![0xCA, 0x3F, 0xC0, 0, 0], Vec::new());
        let line = EventLine::new(&event);
        assert_eq!(line.data, Some(json!(1.5)));
        assert!(line.data_base64.is_some());
        // Binary MessagePack has no JSON form.
        let event = recorded(None, vec![0xC4, 1, 7], Vec::new());
        assert_eq!(EventLine::new(&event).data, None);
        // Unknown content types are bytes.
        let event = recorded(Some("text/plain"), b"hi".to_vec(), Vec::new());
        let line = EventLine::new(&event);
        assert_eq!(
            (line.data, line.data_base64.as_deref()),
            (None, Some("aGk="))
        );
    }

    #[test]
    fn json_content_type_is_decoded_as_json() {
        let event = recorded(Some("json"), b"{\"n\":2}".to_vec(), Vec::new());
        let line = EventLine::new(&event);
        assert_eq!(line.data, Some(json!({"n": 2})));
        assert_eq!(line.data_base64, None);
        let spaced = recorded(Some("json"), b"{ \"n\": 2 }".to_vec(), Vec::new());
        assert!(EventLine::new(&spaced).data_base64.is_some());
    }
}
