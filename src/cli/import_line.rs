//! The lines `annals import` reads: one JSON object per line, one event
//! (`{"stream", "type", "data", ...}`, which is also what `export` writes)
//! or a batch (`{"stream", "events": [...]}`). The format is in
//! `docs/cli.md`.

use annals::{EventData, ExpectedVersion};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::append::parse_event_id;
use super::args::parse_expected_version;
use super::event_json::{decode_base64, encode_data, encode_metadata};
use super::timestamp::parse_rfc3339_nanos;

/// One input line. Unknown keys are refused, so that a misspelt key is an
/// error rather than silently lost data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    stream: String,
    #[serde(default)]
    events: Option<Vec<ImportEvent>>,
    #[serde(default)]
    expected_version: Option<Value>,
    #[serde(default)]
    command_id: Option<String>,
    /// Written by `export`: the event's version, which makes the expected
    /// version `version - 1` unless `expected_version` says otherwise.
    #[serde(default)]
    version: Option<u64>,
    /// Written by `export`; positions are assigned by the store.
    #[serde(default)]
    #[allow(dead_code)]
    position: Option<u64>,
    /// The event of a one-event line; line-level metadata, correlation and
    /// causation ids are also the defaults of a batch's events.
    #[serde(flatten)]
    event: ImportEvent,
}

/// One event of a line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportEvent {
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    /// Written by `export`: the original timestamp (RFC 3339, UTC), kept as
    /// the event's timestamp. It must not be earlier than the previous
    /// event's; without it the store assigns the current time.
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
    #[serde(default)]
    data_base64: Option<String>,
    /// Absent: "msgpack". `null`: no content type recorded (data given as
    /// JSON is still stored as MessagePack).
    #[serde(default, deserialize_with = "present")]
    content_type: Option<Option<String>>,
    /// `null` is "no metadata" (and is not inherited from the line).
    #[serde(default, deserialize_with = "present")]
    metadata: Option<Value>,
    #[serde(default)]
    metadata_base64: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    causation_id: Option<String>,
    /// The data subject whose key seals the data in the store imported to.
    #[serde(default)]
    subject: Option<String>,
    /// Written by `export` for an erased event, which has no data to import.
    #[serde(default)]
    erased: Option<bool>,
}

/// Tells a key given as `null` (`Some(null)`) from an absent key (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// An append decoded from a line.
pub struct Append {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub command_id: Option<String>,
    pub events: Vec<EventData>,
}

pub fn parse_line(line: &str) -> Result<Append, String> {
    let line: ImportLine = serde_json::from_str(line.trim_end_matches(['\n', '\r']))
        .map_err(|e| format!("not a valid import line: {}", without_position(&e)))?;
    let expected = match &line.expected_version {
        None => match (line.version, &line.events) {
            (Some(0), _) => return Err("version 0 does not exist: versions start at 1".into()),
            (Some(version), None) => ExpectedVersion::Exact(version - 1),
            (Some(_), Some(_)) => {
                return Err("a line with events has no version (use expected_version)".into());
            }
            (None, _) => ExpectedVersion::Any,
        },
        Some(Value::String(text)) => parse_expected_version(text)?,
        Some(Value::Number(number)) => {
            ExpectedVersion::Exact(number.as_u64().ok_or_else(|| {
                format!("expected_version {number} is not a version (a whole number from 0)")
            })?)
        }
        Some(other) => {
            return Err(format!(
                "expected_version {other} must be \"any\", \"no-stream\", \"exists\" or a number"
            ));
        }
    };
    let events = match line.events {
        None => vec![event_data(&line.event, None)?],
        Some(events) => {
            let defaults = &line.event;
            if defaults.event_type.is_some()
                || defaults.data.is_some()
                || defaults.data_base64.is_some()
                || defaults.content_type.is_some()
                || defaults.id.is_some()
            {
                return Err(
                    "a line has either type and data (one event) or events (a batch), not both"
                        .into(),
                );
            }
            events
                .iter()
                .enumerate()
                .map(|(i, event)| {
                    event_data(event, Some(defaults)).map_err(|e| format!("event {i}: {e}"))
                })
                .collect::<Result<_, _>>()?
        }
    };
    Ok(Append {
        stream: line.stream,
        expected,
        command_id: line.command_id,
        events,
    })
}

/// serde_json's message without its "at line 1 column N" (the line is
/// always 1: one JSON text per line, and the caller names the input line),
/// with the column kept.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(message) => format!("{message} (at column {})", error.column()),
        None => message,
    }
}

/// The event to append for `event`, taking metadata, correlation and
/// causation ids it lacks from `defaults` (the line of a batch).
fn event_data(event: &ImportEvent, defaults: Option<&ImportEvent>) -> Result<EventData, String> {
    let event_type = event.event_type.as_deref().ok_or("missing key \"type\"")?;
    if event.erased == Some(true) {
        return Err(
            "the event was erased (\"erased\": true): its data is gone and cannot be imported"
                .into(),
        );
    }
    let mut data = match (&event.data_base64, &event.data, &event.content_type) {
        // The exact bytes win over their JSON form (see `event_json`).
        (Some(base64), _, content_type) => {
            let mut data = EventData::new(event_type, decode_base64("data_base64", base64)?);
            data.content_type = content_type.clone().flatten();
            data
        }
        (None, Some(value), None) => {
            EventData::from_serde(event_type, value).map_err(|e| e.to_string())?
        }
        (None, Some(value), Some(content_type)) => {
            let mut data = EventData::new(event_type, encode_data(content_type.as_deref(), value)?);
            data.content_type = content_type.clone();
            data
        }
        (None, None, _) => return Err("missing key \"data\" (or \"data_base64\")".into()),
    };
    let inherited = |own: Option<String>, pick: fn(&ImportEvent) -> &Option<String>| {
        own.or_else(|| defaults.and_then(|d| pick(d).clone()))
    };
    data.correlation_id = inherited(event.correlation_id.clone(), |e| &e.correlation_id);
    data.causation_id = inherited(event.causation_id.clone(), |e| &e.causation_id);
    data.metadata = metadata_bytes(event)?
        .or(defaults.map(metadata_bytes).transpose()?.flatten())
        .unwrap_or_default();
    if let Some(id) = &event.id {
        data.id = Some(parse_event_id(id).map_err(|f| f.message)?);
    }
    data.subject = event.subject.clone();
    if let Some(timestamp) = &event.timestamp {
        data.timestamp_ns = Some(parse_rfc3339_nanos(timestamp)?);
    }
    Ok(data)
}

/// The metadata bytes an event gives, if it gives any.
fn metadata_bytes(event: &ImportEvent) -> Result<Option<Vec<u8>>, String> {
    match (&event.metadata_base64, &event.metadata) {
        (Some(base64), _) => decode_base64("metadata_base64", base64).map(Some),
        (None, Some(value)) => Ok(Some(encode_metadata(value))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_lines_parse() {
        let append = parse_line(
            r#"{"stream":"a","type":"T","data":{"x":1},"metadata":{"m":true},"correlation_id":"c","expected_version":"no-stream"}"#,
        )
        .unwrap();
        assert_eq!(append.stream, "a");
        assert_eq!(append.expected, ExpectedVersion::NoStream);
        let event = &append.events[0];
        assert_eq!(event.event_type, "T");
        assert_eq!(event.content_type.as_deref(), Some("msgpack"));
        assert_eq!(event.metadata, br#"{"m":true}"#);
        assert_eq!(event.correlation_id.as_deref(), Some("c"));
    }

    #[test]
    fn batch_lines_inherit_line_level_ids_and_metadata() {
        let append = parse_line(
            r#"{"stream":"a","causation_id":"k","metadata":[1],"events":[{"type":"A","data":1},{"type":"B","data":null,"causation_id":"own","metadata":null}],"expected_version":3}"#,
        )
        .unwrap();
        assert_eq!(append.expected, ExpectedVersion::Exact(3));
        assert_eq!(append.events.len(), 2);
        assert_eq!(append.events[0].causation_id.as_deref(), Some("k"));
        assert_eq!(append.events[0].metadata, b"[1]");
        assert_eq!(append.events[1].causation_id.as_deref(), Some("own"));
        // `"metadata": null` is explicit "none".
        assert_eq!(append.events[1].metadata, b"");
        assert_eq!(append.events[1].data, vec![0xC0]);
    }

    #[test]
    fn exported_lines_expect_the_previous_version_and_keep_exact_bytes() {
        let append = parse_line(
            r#"{"stream":"a","version":4,"position":9,"type":"T","id":"0191b2a6-0000-7000-8000-000000000001","timestamp":"2024-01-01T00:00:00.000000000Z","correlation_id":null,"causation_id":null,"content_type":null,"metadata":null,"data":123,"data_base64":"eyJhIjoxfQ=="}"#,
        )
        .unwrap();
        assert_eq!(append.expected, ExpectedVersion::Exact(3));
        let event = &append.events[0];
        assert_eq!(event.data, br#"{"a":1}"#);
        assert_eq!(event.content_type, None);
        assert_eq!(
            event.id.unwrap().to_string(),
            "0191b2a6-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn bad_lines_say_why() {
        let error = |line: &str| parse_line(line).err().unwrap();
        assert!(error("{").contains("not a valid import line"));
        assert!(error(r#"{"stream":"a","type":"T","dta":1}"#).contains("unknown field"));
        assert!(error(r#"{"stream":"a","type":"T"}"#).contains("missing key \"data\""));
        assert!(error(r#"{"stream":"a","data":1}"#).contains("missing key \"type\""));
        assert!(error(r#"{"stream":"a","type":"T","data":1,"events":[]}"#).contains("not both"));
        assert!(error(r#"{"stream":"a","type":"T","data":1,"id":"x"}"#).contains("not a UUID"));
        assert!(
            error(r#"{"stream":"a","type":"T","data":1,"expected_version":-1}"#)
                .contains("not a version")
        );
    }
}
