//! `annals export`: every event as JSON lines, in log order, in the format
//! `import` reads back (see `event_json` for how data keeps its exact bytes).
//!
//! `--output FILE` is written atomically: to a temporary file in the same
//! directory, synced, renamed to `FILE` (never over an existing file), and
//! the directory synced. An export that fails or is killed leaves nothing
//! under `FILE`, at most a hidden `.FILE.XXXXXX.partial` beside it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::args::ExportArgs;
use super::event_json::write_event_line;
use super::failure::{EXIT_CORRUPTION, Failure, from_stdout_error};
use super::output::{Output, progress_bar};
use super::store_dir::{check_store_to_read, open_read_only};

/// Events read from the store per call.
const PAGE_EVENTS: usize = 1024;

pub fn run(args: &ExportArgs) -> Result<(), Failure> {
    if args.salvage {
        return salvage(args);
    }
    let store = open_read_only(&args.dir)?;
    // Events a writer appends while the export runs are left out: the export
    // is the log as it was when it started.
    let end = store.next_position();
    let bar = progress_bar(end, "exporting");
    let write_all = |out: &mut dyn Write| -> Result<(), ExportError> {
        let mut position = 0;
        while position < end {
            let page = store.read_all(position, PAGE_EVENTS.min((end - position) as usize))?;
            let Some(last) = page.last() else { break };
            position = last.position + 1;
            for event in &page {
                write_event_line(out, event).map_err(ExportError::Write)?;
            }
            bar.inc(page.len() as u64);
        }
        out.flush().map_err(ExportError::Write)
    };
    let outcome = match &args.output {
        None => {
            let mut out = Output::stdout();
            write_all(out.writer()).map_err(|e| e.into_failure(from_stdout_error))
        }
        Some(path) => write_atomically(path, write_all),
    };
    bar.finish_and_clear();
    outcome
}

/// `export --salvage`: every event of every complete, valid batch, also of a
/// store that refuses to open (`annals::salvage`); each damaged range that
/// was skipped is reported on stderr, and the exit code is 4 when there was
/// any.
fn salvage(args: &ExportArgs) -> Result<(), Failure> {
    check_store_to_read(&args.dir)?;
    let mut report = None;
    let mut write_all = |out: &mut dyn Write| -> Result<(), ExportError> {
        let mut write_error = None;
        let salvaged = annals::salvage(&args.dir, |event| {
            write_event_line(out, &event).map_err(|e| {
                let message = e.to_string();
                write_error = Some(e);
                annals::Error::InvalidArgument(message)
            })
        });
        if let Some(error) = write_error {
            return Err(ExportError::Write(error));
        }
        report = Some(salvaged?);
        out.flush().map_err(ExportError::Write)
    };
    match &args.output {
        None => {
            let mut out = Output::stdout();
            write_all(out.writer()).map_err(|e| e.into_failure(from_stdout_error))?;
        }
        Some(path) => write_atomically(path, &mut write_all)?,
    }
    let report = report.expect("the salvage ran");
    for finding in &report.notes {
        say(&format!("note: {finding}; not damage, not exported"));
    }
    for finding in &report.skipped {
        say(&format!("skipped: {finding}"));
    }
    say(&format!(
        "salvaged {} events in {} batches; {} damaged ranges skipped",
        report.events,
        report.batches,
        report.skipped.len()
    ));
    if report.skipped.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_CORRUPTION,
            message: format!(
                "{} damaged ranges were skipped (listed above): the export holds every event \
                 that could be verified",
                report.skipped.len()
            ),
        })
    }
}

/// A line on stderr.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "annals: {line}");
}

/// Writes `FILE` through a temporary file beside it, so that `FILE` appears
/// whole and durable, or not at all.
fn write_atomically(
    path: &Path,
    write_all: impl FnOnce(&mut dyn Write) -> Result<(), ExportError>,
) -> Result<(), Failure> {
    let shown = path.display();
    let exists = || {
        Failure::other(format!(
            "{shown}: exists; export never overwrites a file (remove it or choose another name)"
        ))
    };
    // Refuse before the work; the rename below refuses again (race-free).
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let name = path
        .file_name()
        .ok_or_else(|| Failure::other(format!("{shown}: --output must name a file")))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let describe =
        |action: &str, e: std::io::Error| Failure::other(format!("{action} {shown}: {e}"));
    // Readable as a file created with `File::create` would be (the umask
    // applies), not only by its owner as tempfile's default.
    let temporary = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| describe("creating a temporary file beside", e))?;
    // An error removes the temporary file (dropped); a killed process leaves
    // it, hidden, under its temporary name.
    let mut out = BufWriter::with_capacity(1 << 20, temporary.as_file());
    write_all(&mut out).map_err(|e| e.into_failure(|e| describe("writing", e)))?;
    out.into_inner()
        .map_err(|e| describe("writing", e.into_error()))?
        .sync_all()
        .map_err(|e| describe("syncing", e))?;
    temporary.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            exists()
        } else {
            describe("renaming the temporary file to", e.error)
        }
    })?;
    // The rename is durable once the directory is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| describe("syncing the directory of", e))
}

enum ExportError {
    Store(annals::Error),
    Write(std::io::Error),
}

impl From<annals::Error> for ExportError {
    fn from(error: annals::Error) -> Self {
        ExportError::Store(error)
    }
}

impl ExportError {
    fn into_failure(self, write_failure: impl FnOnce(std::io::Error) -> Failure) -> Failure {
        match self {
            ExportError::Store(error) => error.into(),
            ExportError::Write(error) => write_failure(error),
        }
    }
}
