//! `--pretty`: one human line per event, as a developer reads logs:
//!
//! ```text
//! 2026-11-30T12:00:00.123Z  INFO app::http  request done  status=200 path=/pay
//! ```
//!
//! time (UTC, milliseconds), level (from the event type, for events
//! `annals::tracing` wrote; other events show their type instead of a
//! message), stream, the `message` field, then the other fields of the
//! data as `key=value`. Text from the store is shown with its control
//! characters escaped, so that a log line cannot move the cursor or change
//! the terminal's colours.

use std::io::Write;

use annals::RecordedEvent;
use serde_json::Value;

use super::args::LogLevel;
use super::log_view::{Colours, level_of, shown_data, value_text};
use super::timestamp::rfc3339_nanos;

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const CYAN: &str = "\x1b[36m";

fn level_colour(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "\x1b[35m", // magenta
        LogLevel::Debug => "\x1b[34m", // blue
        LogLevel::Info => "\x1b[32m",  // green
        LogLevel::Warn => "\x1b[33m",  // yellow
        LogLevel::Error => "\x1b[31m", // red
    }
}

/// Writes `event` as one pretty line (with its newline).
pub fn write_pretty_line(
    out: &mut impl Write,
    event: &RecordedEvent,
    colours: Colours,
) -> std::io::Result<()> {
    let paint = |style: &'static str| if colours == Colours::On { style } else { "" };
    let reset = paint(RESET);
    let time = rfc3339_nanos(event.timestamp_ns);
    // YYYY-MM-DDTHH:MM:SS.mmm + Z: milliseconds are enough to read.
    let time = format!("{}Z", &time[..23]);
    write!(out, "{}{time}{reset} ", paint(DIM))?;
    let level = level_of(&event.event_type);
    let (level_text, rest_of_type) = match level {
        Some(level) => {
            let rest = event.event_type[level.name().len()..].trim_start();
            (level.name(), rest)
        }
        None => ("", event.event_type.as_str()),
    };
    let level_paint = level.map_or("", |level| paint(level_colour(level)));
    write!(out, "{level_paint}{level_text:>5}{reset} ")?;
    write!(out, "{}{}{reset} ", paint(CYAN), escaped(&event.stream))?;
    let data = shown_data(event);
    let mut fields = match data {
        Some(Value::Object(map)) => map,
        Some(other) => {
            // Data that is not a map of fields: the type, then the value.
            write!(out, "{}{}{reset} ", paint(BOLD), escaped(rest_of_type))?;
            writeln!(out, "{}", escaped(&other.to_string()))?;
            return Ok(());
        }
        None if event.erased => {
            writeln!(
                out,
                "{}{}{reset} (erased)",
                paint(BOLD),
                escaped(rest_of_type)
            )?;
            return Ok(());
        }
        None => {
            let what = format!("({} bytes)", event.data.len());
            writeln!(
                out,
                "{}{}{reset} {what}",
                paint(BOLD),
                escaped(rest_of_type)
            )?;
            return Ok(());
        }
    };
    let message = fields.remove("message").map(|m| value_text(&m));
    let headline = match (rest_of_type, message) {
        ("", Some(message)) => message,
        (kind, Some(message)) => format!("{kind}: {message}"),
        (kind, None) => kind.to_string(),
    };
    write!(out, "{}{}{reset}", paint(BOLD), escaped(&headline))?;
    for (key, value) in &fields {
        write!(
            out,
            " {}{}={reset}{}",
            paint(DIM),
            escaped(key),
            quoted(&value_text(value))
        )?;
    }
    writeln!(out)
}

/// `text` with control characters (and only those) escaped.
fn escaped(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A field value, in JSON quotes when it is empty or holds spaces, quotes,
/// `=` or control characters, so that `key=value` pairs stay apart.
fn quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if plain {
        text.to_string()
    } else {
        Value::String(text.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals::Uuid;

    fn event(event_type: &str, data: &Value) -> RecordedEvent {
        RecordedEvent {
            stream: "app::http".into(),
            version: 1,
            position: 0,
            id: Uuid::nil(),
            event_type: event_type.into(),
            timestamp_ns: 1_795_780_800_123_456_789,
            correlation_id: None,
            causation_id: None,
            content_type: Some("msgpack".into()),
            metadata: Vec::new(),
            data: rmp_serde::to_vec(data).unwrap(),
            subject: None,
            erased: false,
        }
    }

    fn line(event: &RecordedEvent, colours: Colours) -> String {
        let mut out = Vec::new();
        write_pretty_line(&mut out, event, colours).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_log_event_is_one_plain_line() {
        let data = serde_json::json!({"message": "request done", "status": 200, "path": "/pay x"});
        assert_eq!(
            line(&event("INFO", &data), Colours::Off),
            "2026-11-27T12:00:00.123Z  INFO app::http request done path=\"/pay x\" status=200\n"
        );
        let data = serde_json::json!({"path": "/pay"});
        assert_eq!(
            line(&event("WARN span.open request", &data), Colours::Off),
            "2026-11-27T12:00:00.123Z  WARN app::http span.open request path=/pay\n"
        );
    }

    #[test]
    fn colours_only_when_asked_and_control_characters_are_escaped() {
        let data = serde_json::json!({"message": "evil \u{1b}[2J text"});
        let plain = line(&event("ERROR", &data), Colours::Off);
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        assert!(plain.contains("evil \\u{1b}[2J text"), "{plain:?}");
        let coloured = line(&event("ERROR", &data), Colours::On);
        assert!(coloured.contains("\x1b[31mERROR\x1b[0m"), "{coloured:?}");
        assert!(!coloured.contains("\u{1b}[2J"), "{coloured:?}");
    }

    #[test]
    fn other_events_show_their_type_and_data() {
        let data = serde_json::json!([1, 2]);
        assert_eq!(
            line(&event("OrderPlaced", &data), Colours::Off),
            "2026-11-27T12:00:00.123Z       app::http OrderPlaced [1,2]\n"
        );
    }
}
