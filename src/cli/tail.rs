//! `annals tail`: prints events as JSON lines (or `--pretty` lines) and
//! follows new ones appended by a writer in another process, until
//! interrupted, until the reader of stdout goes away (`annals tail DIR |
//! head -2` ends without waiting for another event), or until an event
//! reaches `--until`.

use std::os::fd::AsFd;
use std::time::Duration;

use super::args::TailArgs;
use super::failure::{Failure, from_stdout_error};
use super::log_view::{Judgement, LogView};
use super::output::Output;
use super::store_dir::open_read_only;

/// How long one wait for new events lasts before waiting again. The
/// subscription polls the files itself (up to `annals::FOLLOW_POLL_MAX`
/// apart); this bounds how long one call blocks, and so how late `tail`
/// notices that its reader has gone.
const WAIT: Duration = Duration::from_millis(200);

pub fn run(args: &TailArgs) -> Result<(), Failure> {
    let store = open_read_only(&args.dir)?;
    let filter = super::read::filter_of(&args.event_types, args.category.as_deref());
    let view = LogView::new(&args.view);
    let from = if args.from_end {
        store.next_position()
    } else {
        args.from.unwrap_or(0)
    };
    // No event is as recent as --since yet: follow from the end.
    let from = view
        .start_position(&store, from)?
        .unwrap_or_else(|| store.next_position());
    let mut subscription = store.subscribe_all(from, filter);
    let mut out = Output::stdout();
    loop {
        match subscription.next_timeout(WAIT)? {
            Some(event) => match view.judge(&event, false) {
                Judgement::Show => {
                    view.write(out.writer(), &event)
                        .map_err(from_stdout_error)?;
                    out.flush()?;
                }
                Judgement::Skip => {}
                Judgement::Stop => return out.flush(),
            },
            // Idle: writing nothing, it would never learn of a closed pipe.
            None if reader_gone() => return Err(Failure::stdout_closed()),
            None => {}
        }
    }
}

/// Whether stdout is a pipe or socket whose reader has gone: poll reports
/// an error (no reader left) or a hang-up on it.
fn reader_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::empty())];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(1))
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}
