//! The message layout: one annals event as one JetStream message (subject,
//! headers, body) and back. Pure functions, no I/O, so that the layout can
//! be tested alone; `docs/shipping.md` describes it for consumers written in
//! other languages.
//!
//! Header values are text without line breaks; annals strings (stream ids,
//! types, ids, metadata) may hold any bytes. So every value that comes from
//! the event is *percent-encoded*: each byte outside printable ASCII
//! (`!` to `~`) and each `%` becomes `%XX`. Ordinary ids such as
//! `order-17` or `OrderPlaced` are unchanged.

use crate::event::{RecordedEvent, Uuid};

use super::error::MessageError;

/// `Nats-Msg-Id`: `<store id>:<position>`, JetStream's deduplication key.
pub const HEADER_MESSAGE_ID: &str = "Nats-Msg-Id";
/// The shipping store's id (32 lower-case hex digits, see `store_id`).
pub const HEADER_STORE_ID: &str = "Annals-Store-Id";
/// The event's global position in the shipping store, decimal.
pub const HEADER_POSITION: &str = "Annals-Position";
/// The stream id, percent-encoded.
pub const HEADER_STREAM: &str = "Annals-Stream";
/// The event's version in its stream (from 1), decimal.
pub const HEADER_VERSION: &str = "Annals-Version";
/// The event type, percent-encoded.
pub const HEADER_TYPE: &str = "Annals-Type";
/// The event id, a hyphenated UUID.
pub const HEADER_EVENT_ID: &str = "Annals-Event-Id";
/// The event's timestamp, nanoseconds since the Unix epoch, decimal.
pub const HEADER_TIMESTAMP: &str = "Annals-Timestamp-Ns";
/// The correlation id, percent-encoded; absent when none.
pub const HEADER_CORRELATION_ID: &str = "Annals-Correlation-Id";
/// The causation id, percent-encoded; absent when none.
pub const HEADER_CAUSATION_ID: &str = "Annals-Causation-Id";
/// The content type of the body, percent-encoded; absent when none.
pub const HEADER_CONTENT_TYPE: &str = "Annals-Content-Type";
/// The metadata bytes, percent-encoded; absent when empty.
pub const HEADER_METADATA: &str = "Annals-Metadata";

/// Longest subject prefix accepted, in bytes. With the longest stream id
/// (`Limits::MAX_STREAM_ID_BYTES`, 3 bytes when encoded for each byte,
/// twice) a subject stays below the server's default control line limit
/// (4096 bytes), which bounds a publish's subject.
pub const MAX_SUBJECT_PREFIX_BYTES: usize = 255;

/// The subject of an event: `<prefix>.<category>.<stream id>`, where the
/// category is the stream id up to its first `-` (all of it when it has
/// none, or when it starts with `-`), each token encoded by
/// [`subject_token`]. So `orders.>` matches
/// everything shipped with the prefix `orders`, `orders.account.>` one
/// category, and `orders.*.account-7` one stream.
pub fn subject_of(prefix: &str, stream: &str) -> String {
    let category = match stream.split_once('-') {
        Some((category, _)) if !category.is_empty() => category,
        _ => stream,
    };
    format!(
        "{prefix}.{}.{}",
        subject_token(category),
        subject_token(stream)
    )
}

/// Encodes `text` as one subject token: ASCII letters, digits, `-` and `_`
/// stay, every other byte becomes `%XX` (so a token never holds `.`, `*`,
/// `>` or white space, which subjects reserve).
pub fn subject_token(text: &str) -> String {
    encode(text.as_bytes(), |b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
    })
}

/// Checks a subject prefix: one or more `.`-separated tokens, none empty,
/// none holding white space, `*` or `>`, at most
/// [`MAX_SUBJECT_PREFIX_BYTES`] bytes.
///
/// # Errors
/// [`MessageError::InvalidSubjectPrefix`] saying what is wrong.
pub fn check_subject_prefix(prefix: &str) -> Result<(), MessageError> {
    let invalid = |why: &str| {
        Err(MessageError::InvalidSubjectPrefix {
            prefix: prefix.to_string(),
            why: why.to_string(),
        })
    };
    if prefix.is_empty() {
        return invalid("it is empty");
    }
    if prefix.len() > MAX_SUBJECT_PREFIX_BYTES {
        return invalid(&format!(
            "it is {} bytes long, at most {MAX_SUBJECT_PREFIX_BYTES} are allowed",
            prefix.len()
        ));
    }
    if prefix.split('.').any(str::is_empty) {
        return invalid("it has an empty token (a leading, trailing or doubled '.')");
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '*' || *c == '>')
    {
        return invalid(&format!(
            "it contains {c:?}: subjects reserve white space, '*' and '>'"
        ));
    }
    Ok(())
}

/// Percent-encodes bytes for a header value: printable ASCII but `%` stays.
pub fn header_value(bytes: &[u8]) -> String {
    encode(bytes, |b| (b'!'..=b'~').contains(&b) && b != b'%')
}

fn encode(bytes: &[u8], keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses the percent-encoding of a header value or subject token.
///
/// # Errors
/// [`MessageError::BadHeader`] for a `%` not followed by two hex digits.
pub fn decode_value(header: &'static str, text: &str) -> Result<Vec<u8>, MessageError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else {
                return Err(MessageError::BadHeader {
                    header,
                    value: text.to_string(),
                    why: format!("'%' at byte {i} is not followed by two hex digits"),
                });
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The deduplication id of the event at `position` of store `store_id`.
pub fn message_id(store_id: &str, position: u64) -> String {
    format!("{store_id}:{position}")
}

/// The headers of an event's message, in a fixed order, the absent
/// optional ones left out. The body is the event's data, as it is stored.
pub fn headers_of(store_id: &str, event: &RecordedEvent) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (HEADER_MESSAGE_ID, message_id(store_id, event.position)),
        (HEADER_STORE_ID, store_id.to_string()),
        (HEADER_POSITION, event.position.to_string()),
        (HEADER_STREAM, header_value(event.stream.as_bytes())),
        (HEADER_VERSION, event.version.to_string()),
        (HEADER_TYPE, header_value(event.event_type.as_bytes())),
        (HEADER_EVENT_ID, event.id.hyphenated().to_string()),
        (HEADER_TIMESTAMP, event.timestamp_ns.to_string()),
    ];
    let optional = [
        (HEADER_CORRELATION_ID, event.correlation_id.as_deref()),
        (HEADER_CAUSATION_ID, event.causation_id.as_deref()),
        (HEADER_CONTENT_TYPE, event.content_type.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            headers.push((name, header_value(value.as_bytes())));
        }
    }
    if !event.metadata.is_empty() {
        headers.push((HEADER_METADATA, header_value(&event.metadata)));
    }
    headers
}

/// Where a shipped message came from: its store and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The shipping store's id.
    pub store_id: String,
    /// The event's position in that store.
    pub position: u64,
}

/// Reads the origin headers of a message; `get` looks a header up by name.
///
/// # Errors
/// [`MessageError::MissingHeader`] / [`MessageError::BadHeader`]: the
/// message was not written by `annals ship`.
pub fn origin_of<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Origin, MessageError> {
    let store_id = required(&get, HEADER_STORE_ID)?.to_string();
    let position = number(&get, HEADER_POSITION)?;
    Ok(Origin { store_id, position })
}

/// An event rebuilt from a message: everything [`headers_of`] wrote, and
/// the body as data.
///
/// # Errors
/// [`MessageError`] naming the header that is missing or does not parse.
pub fn event_of<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> Result<RecordedEvent, MessageError> {
    let text = |name: &'static str| -> Result<Option<String>, MessageError> {
        get(name)
            .map(|value| {
                String::from_utf8(decode_value(name, value)?).map_err(|_| MessageError::BadHeader {
                    header: name,
                    value: value.to_string(),
                    why: "it does not decode to UTF-8 text".into(),
                })
            })
            .transpose()
    };
    let stream = text(HEADER_STREAM)?.ok_or(MessageError::MissingHeader(HEADER_STREAM))?;
    let event_type = text(HEADER_TYPE)?.ok_or(MessageError::MissingHeader(HEADER_TYPE))?;
    let id_text = required(&get, HEADER_EVENT_ID)?;
    let id = Uuid::parse_str(id_text).map_err(|e| MessageError::BadHeader {
        header: HEADER_EVENT_ID,
        value: id_text.to_string(),
        why: e.to_string(),
    })?;
    let metadata = get(HEADER_METADATA)
        .map(|value| decode_value(HEADER_METADATA, value))
        .transpose()?
        .unwrap_or_default();
    Ok(RecordedEvent {
        stream,
        version: number(&get, HEADER_VERSION)?,
        position: number(&get, HEADER_POSITION)?,
        id,
        event_type,
        timestamp_ns: number(&get, HEADER_TIMESTAMP)?,
        correlation_id: text(HEADER_CORRELATION_ID)?,
        causation_id: text(HEADER_CAUSATION_ID)?,
        content_type: text(HEADER_CONTENT_TYPE)?,
        metadata,
        data: body.to_vec(),
        // The shipper never ships an event with a subject.
        subject: None,
        erased: false,
    })
}

fn required<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    name: &'static str,
) -> Result<&'a str, MessageError> {
    get(name).ok_or(MessageError::MissingHeader(name))
}

fn number<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    name: &'static str,
) -> Result<u64, MessageError> {
    let text = required(get, name)?;
    text.parse().map_err(|_| MessageError::BadHeader {
        header: name,
        value: text.to_string(),
        why: "it is not a decimal number".into(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn event() -> RecordedEvent {
        RecordedEvent {
            stream: "order-7".into(),
            version: 3,
            position: 41,
            id: Uuid::from_u128(0x0191_b2a6_1234_7000_8000_0000_0000_abcd),
            event_type: "Placed".into(),
            timestamp_ns: 1_700_000_000_123_456_789,
            correlation_id: Some("req 1\r\n%".into()),
            causation_id: None,
            content_type: Some("msgpack".into()),
            metadata: b"{\"user\": \"\xc3\xa9\"}".to_vec(),
            data: vec![0x81, 0xa1, b'a', 0x01],
            subject: None,
            erased: false,
        }
    }

    fn round_trip(event: &RecordedEvent) -> RecordedEvent {
        let headers: HashMap<&str, String> = headers_of("ab12", event).into_iter().collect();
        event_of(|name| headers.get(name).map(String::as_str), &event.data).unwrap()
    }

    #[test]
    fn an_event_survives_its_message() {
        let original = event();
        assert_eq!(round_trip(&original), original);
        let mut odd = event();
        odd.stream = "strange stream.*>\u{e9}%".into();
        odd.event_type = " spaced ".into();
        odd.correlation_id = None;
        odd.content_type = None;
        odd.metadata.clear();
        assert_eq!(round_trip(&odd), odd);
    }

    #[test]
    fn header_values_are_printable_ascii_without_percent_signs_of_their_own() {
        let headers = headers_of("ab12", &event());
        for (name, value) in &headers {
            assert!(
                value.bytes().all(|b| (b'!'..=b'~').contains(&b)),
                "{name}: {value:?}"
            );
        }
        let get = |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        assert_eq!(get(HEADER_MESSAGE_ID).unwrap(), "ab12:41");
        assert_eq!(get(HEADER_STREAM).unwrap(), "order-7");
        assert_eq!(get(HEADER_CORRELATION_ID).unwrap(), "req%201%0D%0A%25");
        assert_eq!(get(HEADER_CAUSATION_ID), None);
    }

    #[test]
    fn subjects_put_the_category_before_the_stream() {
        assert_eq!(subject_of("p", "order-7"), "p.order.order-7");
        assert_eq!(subject_of("a.b", "account"), "a.b.account.account");
        assert_eq!(
            subject_of("p", "x.y *>-1"),
            "p.x%2Ey%20%2A%3E.x%2Ey%20%2A%3E-1"
        );
        assert_eq!(subject_of("p", "-lead"), "p.-lead.-lead");
    }

    #[test]
    fn subject_prefixes_are_checked() {
        assert!(check_subject_prefix("annals").is_ok());
        assert!(check_subject_prefix("a.b-c_d").is_ok());
        for bad in ["", "a b", "a.*", "a.>", ".a", "a.", "a..b", "a\tb"] {
            let error = check_subject_prefix(bad).unwrap_err();
            assert!(error.to_string().contains("subject prefix"), "{error}");
        }
        assert!(check_subject_prefix(&"a".repeat(MAX_SUBJECT_PREFIX_BYTES + 1)).is_err());
    }

    #[test]
    fn broken_headers_are_named() {
        let missing = event_of(|_| None, b"").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the message has no Annals-Stream header"
        );
        let headers: HashMap<&str, String> = headers_of("ab12", &event()).into_iter().collect();
        for (name, value) in [
            (HEADER_VERSION, "x"),
            (HEADER_STREAM, "%4"),
            (HEADER_EVENT_ID, "nope"),
        ] {
            let mut broken = headers.clone();
            broken.insert(name, value.into());
            let error = event_of(|n| broken.get(n).map(String::as_str), b"").unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
