//! `annals erase`: erases a data subject (crypto-shredding; see
//! `annals::Store::erase_subject` and `docs/compliance.md`, "Erasure").

use serde::Serialize;

use super::args::EraseArgs;
use super::failure::Failure;
use super::output::Output;
use super::store_dir::{check_store_to_read, open_writable};

/// What `erase` prints.
#[derive(Debug, Serialize)]
struct Erased<'a> {
    subject: &'a str,
    /// The stream the erasure event went to (`$erasures`).
    stream: &'a str,
    /// Its version in that stream and its global position.
    version: u64,
    position: u64,
}

pub fn run(args: &EraseArgs) -> Result<(), Failure> {
    // Never creates a store: there is nothing to erase in a new one.
    check_store_to_read(&args.dir)?;
    let store = open_writable(&args.dir, args.writer.options(), args.writer.creation())?;
    let result = store.erase_subject(&args.subject, &args.reason)?;
    store.close()?;
    let mut out = Output::stdout();
    out.json_line(&Erased {
        subject: &args.subject,
        stream: annals::system_streams::ERASURES_STREAM,
        version: result.first_version,
        position: result.first_position,
    })?;
    out.flush()
}
