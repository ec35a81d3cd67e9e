//! Migrating from postgres-es: [`import_postgres_es_events`] appends the
//! rows of a postgres-es `events` table, exported as JSON lines, to an
//! annals store, in the layout this adapter reads.

use std::fmt;
use std::io::BufRead;

use cqrs_es::persist::SerializedEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::event::{EventData, ExpectedVersion};
use crate::store::Store;

use super::mapping::{self, stream_id};

/// One row of postgres-es's `events` table, as one JSON line: its seven
/// columns, no others (a misspelt key is an error, not lost data).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRow {
    aggregate_type: String,
    aggregate_id: String,
    sequence: u64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

/// What [`import_postgres_es_events`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresEsImport {
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Events appended to the store.
    pub events_appended: u64,
    /// Events skipped because the store holds them already, identical (an
    /// earlier, interrupted run of the same import).
    pub events_already_present: u64,
    /// Atomic appends made (consecutive rows of one aggregate are one
    /// append, up to `Limits::max_batch_events`).
    pub appends: u64,
}

/// Why [`import_postgres_es_events`] stopped: the line and the error.
/// Everything before the line was imported (see `imported`); rerunning the
/// same import skips it and goes on.
#[derive(Debug)]
#[non_exhaustive]
pub struct PostgresEsImportError {
    /// The line, from 1, that could not be imported (for an append that
    /// failed, its first line).
    pub line: u64,
    /// What was imported before it.
    pub imported: PostgresEsImport,
    /// What went wrong.
    pub error: Error,
}

impl fmt::Display for PostgresEsImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgres-es import, line {}: {}; the {} events before it were imported \
             (running the same import again skips them)",
            self.line,
            self.error,
            self.imported.events_appended + self.imported.events_already_present
        )
    }
}

impl std::error::Error for PostgresEsImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Appends the rows of a postgres-es `events` table to `store`, so that
/// this adapter reads them as postgres-es did: each row becomes the event
/// of stream `"{aggregate_type}-{aggregate_id}"` at version `sequence`
/// (see [`super::stream_id`]).
///
/// `input` holds one row per line, a JSON object with the table's columns
/// (`payload` and `metadata` as JSON values, not strings):
///
/// ```text
/// {"aggregate_type":"account","aggregate_id":"ada","sequence":1,"event_type":"Opened","event_version":"1.0","payload":{"Opened":{"owner":"Ada"}},"metadata":{"user":"ada"}}
/// ```
///
/// which `psql` writes with
///
/// ```text
/// psql "$DATABASE_URL" -At -c "SELECT to_jsonb(e) FROM (SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata FROM events ORDER BY aggregate_type, aggregate_id, sequence) e" > events.jsonl
/// ```
///
/// - The rows of each aggregate must come in sequence order, from 1 (or
///   from where the store's stream is); aggregates may interleave. The
///   store's log order (the order of `stream_all_events`) is the order of
///   the lines: postgres-es records no time or global order.
/// - Consecutive rows of one aggregate are one atomic append (up to
///   `Limits::max_batch_events`, and a quarter of `Options::segment_size_bytes`
///   of data), with the expected version `sequence - 1`.
/// - A row the store holds already, identical, is skipped, so an
///   interrupted import can be run again; a different event at that
///   sequence is an error.
/// - postgres-es's `snapshots` table is not imported: snapshots are caches,
///   rebuilt from the events by the snapshot stores.
/// - Blank lines are skipped. Timestamps are the import's (postgres-es has
///   none).
///
/// ```
/// use annals::cqrs::import_postgres_es_events;
/// use annals::{Options, Store};
/// let store = Store::in_memory(Options::default())?;
/// let export = r#"{"aggregate_type":"account","aggregate_id":"ada","sequence":1,"event_type":"Opened","event_version":"1.0","payload":{"Opened":{"owner":"Ada"}},"metadata":{}}
/// {"aggregate_type":"account","aggregate_id":"ada","sequence":2,"event_type":"Deposited","event_version":"1.0","payload":{"Deposited":{"amount":5}},"metadata":{}}
/// "#;
/// let imported = import_postgres_es_events(&store, export.as_bytes())?;
/// assert_eq!((imported.events_appended, imported.appends), (2, 1));
/// assert_eq!(store.stream_version("account-ada"), 2);
/// // Again: nothing new.
/// let again = import_postgres_es_events(&store, export.as_bytes())?;
/// assert_eq!((again.events_appended, again.events_already_present), (0, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`PostgresEsImportError`] naming the line, holding:
/// [`Error::InvalidArgument`] for a line that is not such a row, an
/// aggregate type that cannot name annals streams (it contains `-`: rename
/// it, in the export and in `Aggregate::TYPE`), sequence 0, or a row the
/// store holds differently; [`Error::WrongExpectedVersion`] for a gap in an
/// aggregate's sequences or rows out of order; [`Error::Io`] reading
/// `input`; otherwise the store's errors ([`Error::LimitExceeded`] for an
/// event too large, …).
pub fn import_postgres_es_events(
    store: &Store,
    input: impl BufRead,
) -> Result<PostgresEsImport, PostgresEsImportError> {
    let mut import = Import {
        store,
        done: PostgresEsImport::default(),
        pending: None,
    };
    for (index, line) in input.lines().enumerate() {
        let number = index as u64 + 1;
        import.done.lines = number;
        let line = line.map_err(|e| Error::io("reading the postgres-es export", "(input)", e));
        let row = line.and_then(|line| parse_row(&line));
        let outcome = match row {
            Ok(Some(row)) => import.add(number, row),
            Ok(None) => Ok(()),
            Err(error) => Err((number, error)),
        };
        if let Err((line, error)) = outcome {
            // What was read before the failing line goes in first; if that
            // fails, its error is the one reported.
            return Err(match import.flush() {
                Ok(()) => import.failed(line, error),
                Err((line, error)) => import.failed(line, error),
            });
        }
    }
    match import.flush() {
        Ok(()) => Ok(import.done),
        Err((line, error)) => Err(import.failed(line, error)),
    }
}

/// The row on a line; `None` for a blank line.
fn parse_row(line: &str) -> Result<Option<EventRow>, Error> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let row: EventRow = serde_json::from_str(line).map_err(|e| {
        Error::InvalidArgument(format!(
            "not a row of the postgres-es events table ({{\"aggregate_type\", \"aggregate_id\", \
             \"sequence\", \"event_type\", \"event_version\", \"payload\", \"metadata\"}}): {e}"
        ))
    })?;
    if row.sequence == 0 {
        return Err(Error::InvalidArgument(format!(
            "{} {:?} has an event at sequence 0: cqrs-es sequences start at 1",
            row.aggregate_type, row.aggregate_id
        )));
    }
    Ok(Some(row))
}

/// An import in progress.
struct Import<'a> {
    store: &'a Store,
    done: PostgresEsImport,
    /// Rows of one aggregate, consecutive, not yet appended.
    pending: Option<Pending>,
}

/// Consecutive rows of one aggregate waiting to be appended.
struct Pending {
    stream: String,
    first_line: u64,
    first_sequence: u64,
    events: Vec<EventData>,
    /// The size of the events' data and metadata.
    bytes: u64,
}

impl Import<'_> {
    /// Adds a row: skipped if the store has it, else appended with the rows
    /// of its aggregate around it.
    fn add(&mut self, line: u64, row: EventRow) -> Result<(), (u64, Error)> {
        let stream = stream_id(&row.aggregate_type, &row.aggregate_id).map_err(|e| (line, e))?;
        let sequence = row.sequence;
        let event = SerializedEvent {
            aggregate_id: row.aggregate_id,
            sequence: usize::try_from(sequence).map_err(|_| {
                let error = Error::InvalidArgument(format!("sequence {sequence} is too large"));
                (line, error)
            })?,
            aggregate_type: row.aggregate_type,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            metadata: row.metadata,
        };
        let data = mapping::event_data(&event).map_err(|e| (line, e))?;
        let bytes = (data.data.len() + data.metadata.len()) as u64;
        let options = self.store.options();
        let continues = self.pending.as_ref().is_some_and(|pending| {
            pending.stream == stream
                && pending.first_sequence + pending.events.len() as u64 == sequence
                && pending.events.len() < options.limits.max_batch_events
                // A batch must fit in one segment: keep well below that.
                && pending.bytes + bytes <= options.segment_size_bytes / 4
        });
        if !continues {
            self.flush()?;
            if sequence <= self.store.stream_version(&stream) {
                return self.check_present(line, &stream, &event);
            }
        }
        match &mut self.pending {
            Some(pending) if continues => {
                pending.events.push(data);
                pending.bytes += bytes;
            }
            _ => {
                self.pending = Some(Pending {
                    stream,
                    first_line: line,
                    first_sequence: sequence,
                    events: vec![data],
                    bytes,
                });
            }
        }
        Ok(())
    }

    /// Checks that the store holds `event` at its sequence, as it is.
    fn check_present(
        &mut self,
        line: u64,
        stream: &str,
        event: &SerializedEvent,
    ) -> Result<(), (u64, Error)> {
        let stored = self
            .store
            .read_stream(stream, event.sequence as u64, 1)
            .map_err(|e| (line, e))?;
        let same = stored
            .first()
            .and_then(|stored| mapping::serialized_event(stored).ok())
            .is_some_and(|stored| &stored == event);
        if !same {
            return Err((
                line,
                Error::InvalidArgument(format!(
                    "stream {stream:?} holds a different event at version {}: the store has \
                     other events for {} {:?} than this export",
                    event.sequence, event.aggregate_type, event.aggregate_id
                )),
            ));
        }
        self.done.events_already_present += 1;
        Ok(())
    }

    /// Appends the pending rows, if any.
    fn flush(&mut self) -> Result<(), (u64, Error)> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let expected = ExpectedVersion::Exact(pending.first_sequence - 1);
        self.store
            .append(&pending.stream, expected, &pending.events)
            .map_err(|e| (pending.first_line, e))?;
        self.done.events_appended += pending.events.len() as u64;
        self.done.appends += 1;
        Ok(())
    }

    fn failed(&self, line: u64, error: Error) -> PostgresEsImportError {
        PostgresEsImportError {
            line,
            imported: self.done,
            error,
        }
    }
}
