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
    let data = json_argument("--data", &args.data)?;
    let mut event = EventData::from_serde(args.event_type.as_str(), &data)?;
    if let Some(metadata) = &args.metadata {
        event.metadata = encode_metadata(&json_argument("--metadata", metadata)?);
    }
    if let Some(id) = &args.id {
        event.id = Some(parse_event_id(id)?);
    }
    event.correlation_id = args.correlation_id.clone();
    event.causation_id = args.causation_id.clone();
    event.subject = args.subject.clone();

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

/// The JSON value of an option: the text itself, or `@FILE` read from a
/// file (`@-`: stdin). JSON text never starts with `@`.
fn json_argument(option: &str, text: &str) -> Result<Value, Failure> {
    let Some(file) = text.strip_prefix('@') else {
        return serde_json::from_str(text)
            .map_err(|e| Failure::other(format!("{option} is not valid JSON: {e}")));
    };
    let (contents, shown) = if file == "-" {
        let mut contents = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut contents)
            .map_err(|e| Failure::other(format!("{option}: reading stdin: {e}")))?;
        (contents, "stdin")
    } else {
        let contents = std::fs::read_to_string(file)
            .map_err(|e| Failure::other(format!("{option}: reading {file}: {e}")))?;
        (contents, file)
    };
    serde_json::from_str(&contents)
        .map_err(|e| Failure::other(format!("{option}: {shown} is not valid JSON: {e}")))
}

/// Parses an event id given as a UUID.
pub fn parse_event_id(text: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(text).map_err(|e| Failure::other(format!("{text:?} is not a UUID: {e}")))
}
