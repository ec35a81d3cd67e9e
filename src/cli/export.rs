//! `annals export`: every event as JSON lines, in log order, in the format
//! `import` reads back (see `event_json` for how data keeps its exact bytes).

use std::fs::File;
use std::io::{BufWriter, Write};

use super::args::ExportArgs;
use super::event_json::write_event_line;
use super::failure::{Failure, from_stdout_error};
use super::output::{Output, progress_bar};
use super::store_dir::open_read_only;

/// Events read from the store per call.
const PAGE_EVENTS: usize = 1024;

pub fn run(args: &ExportArgs) -> Result<(), Failure> {
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
        Some(path) => {
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| Failure::other(format!("creating {}: {e}", path.display())))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let describe =
                |e: std::io::Error| Failure::other(format!("writing {}: {e}", path.display()));
            write_all(&mut out).map_err(|e| e.into_failure(describe))?;
            let file = out.into_inner().map_err(|e| describe(e.into_error()))?;
            file.sync_all().map_err(describe)
        }
    };
    bar.finish_and_clear();
    outcome
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
