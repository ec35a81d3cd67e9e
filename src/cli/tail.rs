//! `annals tail`: prints events as JSON lines and follows new ones appended
//! by a writer in another process, until interrupted (or until stdout closes).

use std::time::Duration;

use super::args::TailArgs;
use super::event_json::write_event_line;
use super::failure::{Failure, from_stdout_error};
use super::output::Output;
use super::store_dir::open_read_only;

/// How long one wait for new events lasts before waiting again. The
/// subscription polls the files itself (up to `annals::FOLLOW_POLL_MAX`
/// apart); this only bounds how long one call blocks.
const WAIT: Duration = Duration::from_millis(500);

pub fn run(args: &TailArgs) -> Result<(), Failure> {
    let store = open_read_only(&args.dir)?;
    let filter = super::read::filter_of(&args.event_types, args.category.as_deref());
    let from = if args.from_end {
        store.next_position()
    } else {
        args.from.unwrap_or(0)
    };
    let mut subscription = store.subscribe_all(from, filter);
    let mut out = Output::stdout();
    loop {
        if let Some(event) = subscription.next_timeout(WAIT)? {
            write_event_line(out.writer(), &event).map_err(from_stdout_error)?;
            out.flush()?;
        }
    }
}
