//! How `read` and `tail` show events: JSON lines or `--pretty` lines, and
//! the log filters (`--level`, `--field`, `--since`, `--until`) that apply
//! after the library's type and stream-prefix filter.
//!
//! Time filters rely on an invariant of the log: timestamps never decrease
//! along it (the store refuses a given timestamp earlier than the previous
//! event's). So `--since` is a start position found with the timestamp
//! index (`Store::position_at_or_after`), and the first event at or after
//! `--until` ends a forward read.

use std::io::{IsTerminal, Write};

use annals::{RecordedEvent, Store};
use serde_json::Value;

use super::args::{LogLevel, LogViewArgs};
use super::event_json::{decode_data, write_event_line};
use super::failure::Failure;
use super::pretty::write_pretty_line;

/// What to do with one event, in read order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Show,
    Skip,
    /// This event and every later one (in this direction) are out of the
    /// time range.
    Stop,
}

pub struct LogView {
    pretty: Option<Colours>,
    level: Option<LogLevel>,
    fields: Vec<(String, String)>,
    since: Option<u64>,
    until: Option<u64>,
}

/// Whether pretty lines are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colours {
    On,
    Off,
}

impl LogView {
    pub fn new(args: &LogViewArgs) -> LogView {
        // https://no-color.org: a NO_COLOR that is set and not empty turns
        // colour off; colour is only for a terminal.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colours = if std::io::stdout().is_terminal() && !no_color {
            Colours::On
        } else {
            Colours::Off
        };
        LogView {
            pretty: args.pretty.then_some(colours),
            level: args.level,
            fields: args.fields.clone(),
            since: args.since,
            until: args.until,
        }
    }

    /// The first position of a forward read of the log: `from`, moved up
    /// to the first event at or after `--since`; `None` when no event is
    /// that recent.
    pub fn start_position(&self, store: &Store, from: u64) -> Result<Option<u64>, Failure> {
        Ok(match self.since {
            None => Some(from),
            Some(since) => store.position_at_or_after(since)?.map(|p| p.max(from)),
        })
    }

    /// Whether to show `event`, read forward (or backward).
    pub fn judge(&self, event: &RecordedEvent, backward: bool) -> Judgement {
        let before_since = self.since.is_some_and(|since| event.timestamp_ns < since);
        let after_until = self.until.is_some_and(|until| event.timestamp_ns >= until);
        if (before_since && backward) || (after_until && !backward) {
            return Judgement::Stop;
        }
        if before_since || after_until || !self.level_matches(event) || !self.fields_match(event) {
            return Judgement::Skip;
        }
        Judgement::Show
    }

    fn level_matches(&self, event: &RecordedEvent) -> bool {
        self.level
            .is_none_or(|min| level_of(&event.event_type).is_some_and(|level| level >= min))
    }

    fn fields_match(&self, event: &RecordedEvent) -> bool {
        if self.fields.is_empty() {
            return true;
        }
        let Some(Value::Object(data)) = shown_data(event) else {
            return false;
        };
        self.fields.iter().all(|(key, wanted)| {
            data.get(key)
                .is_some_and(|value| value_text(value) == *wanted)
        })
    }

    /// Writes `event` as a JSON line or a pretty line.
    pub fn write(&self, out: &mut impl Write, event: &RecordedEvent) -> std::io::Result<()> {
        match self.pretty {
            None => write_event_line(out, event),
            Some(colours) => write_pretty_line(out, event, colours),
        }
    }
}

/// The level an event type starts with (`"WARN"`, `"INFO login"`), as
/// `annals::tracing` writes it; `None` for other events.
pub fn level_of(event_type: &str) -> Option<LogLevel> {
    let first_word = event_type.split(' ').next()?;
    LogLevel::ALL
        .into_iter()
        .find(|level| level.name() == first_word)
}

/// The event's data as JSON, if it decodes (and was not erased).
pub fn shown_data(event: &RecordedEvent) -> Option<Value> {
    if event.erased {
        return None;
    }
    decode_data(event.content_type.as_deref(), &event.data)
}

/// A field value as `--field` compares it and a pretty line shows it:
/// text as is, anything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
