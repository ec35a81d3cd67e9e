//! `annals truncate` and `annals delete-stream`: a stream's metadata event,
//! written through `Store::truncate_stream` / `Store::delete_stream`.

use annals::system_streams::metadata_stream_of;
use annals::{AppendResult, Options};
use serde::Serialize;

use super::args::{DeleteStreamArgs, TruncateArgs};
use super::failure::Failure;
use super::output::Output;
use super::store_dir::open_existing_writable;

/// What `truncate` and `delete-stream` print: the stream's state now, and
/// where the metadata event that records it went.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    stream: &'a str,
    /// Stream reads start here (`truncate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate_before: Option<u64>,
    /// Always true for `delete-stream`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    /// The stream's version, unchanged by either.
    version: u64,
    metadata_stream: String,
    /// The metadata event's version in `metadata_stream`.
    metadata_version: u64,
    /// The metadata event's global position.
    position: u64,
}

pub fn truncate(args: &TruncateArgs) -> Result<(), Failure> {
    let options = Options::default().durability(args.durability.into());
    let store = open_existing_writable(&args.dir, options)?;
    let written = store.truncate_stream(&args.stream, args.before)?;
    finish(store, &args.stream, Some(args.before), false, &written)
}

pub fn delete(args: &DeleteStreamArgs) -> Result<(), Failure> {
    let options = Options::default().durability(args.durability.into());
    let store = open_existing_writable(&args.dir, options)?;
    let written = store.delete_stream(&args.stream, args.expected_version)?;
    finish(store, &args.stream, None, true, &written)
}

fn finish(
    store: annals::Store,
    stream: &str,
    truncate_before: Option<u64>,
    deleted: bool,
    written: &AppendResult,
) -> Result<(), Failure> {
    let version = store.stream_version(stream);
    store.close()?;
    let mut out = Output::stdout();
    out.json_line(&Changed {
        stream,
        truncate_before,
        deleted,
        version,
        metadata_stream: metadata_stream_of(stream),
        metadata_version: written.last_version,
        position: written.last_position,
    })?;
    out.flush()
}
