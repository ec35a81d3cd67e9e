//! `annals append`: one event, from command-line arguments.

use annals::{AppendResult, EventData, Uuid};
use serde::Serialize;
use serde_json::Value;

use super::args::AppendArgs;
use super::event_json::encode_metadata;
use super::failure::Failure;
use super::output::Output;
use super::store_dir::open_writable;

/// What `append` prints (and, with a line number, what `import` acknowledges).
#[derive(Debug, Serialize)]
pub struct Appended<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub stream: &'a str,
    pub first_version: u64,
    pub last_version: u64,
    /// Global position of the first event appended.
    pub position: u64,
    pub last_position: u64,
}

impl<'a> Appended<'a> {
    pub fn new(line: Option<u64>, stream: &'a str, result: &AppendResult) -> Appended<'a> {
        Appended {
            line,
            stream,
            first_version: result.first_version,
            last_version: result.last_version,
            position: result.first_position,
            last_position: result.last_position,
        }
    }
}

pub fn run(args: &AppendArgs) -> Result<(), Failure> {
    let data: Value = serde_json::from_str(&args.data)
        .map_err(|e| Failure::other(format!("--data is not valid JSON: {e}")))?;
    let mut event = EventData::from_serde(args.event_type.as_str(), &data)?;
    if let Some(metadata) = &args.metadata {
        let metadata: Value = serde_json::from_str(metadata)
            .map_err(|e| Failure::other(format!("--metadata is not valid JSON: {e}")))?;
        event.metadata = encode_metadata(&metadata);
    }
    if let Some(id) = &args.id {
        event.id = Some(parse_event_id(id)?);
    }
    event.correlation_id = args.correlation_id.clone();
    event.causation_id = args.causation_id.clone();

    let store = open_writable(&args.dir, args.writer.options(), args.writer.creation())?;
    let events = [event];
    let result = match &args.command_id {
        Some(command_id) => {
            store.append_idempotent(command_id, &args.stream, args.expected_version, &events)
        }
        None => store.append(&args.stream, args.expected_version, &events),
    }?;
    store.close()?;
    let mut out = Output::stdout();
    out.json_line(&Appended::new(None, &args.stream, &result))?;
    out.flush()
}

/// Parses an event id given as a UUID.
pub fn parse_event_id(text: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(text).map_err(|e| Failure::other(format!("{text:?} is not a UUID: {e}")))
}
