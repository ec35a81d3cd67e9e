//! `annals ship`: follows a store and publishes its events to a NATS
//! JetStream stream, exactly once across restarts (`annals::ship`). Progress
//! goes to stderr (a live line on a terminal, changes of phase otherwise),
//! or to stdout as JSON lines with `--json`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use annals::ship::{Phase, Progress, ShipError, ShipOptions, ship_blocking};

use super::args::{NatsWaitOptions, ShipArgs};
use super::failure::Failure;
use super::output::Output;
use super::store_dir::open_read_only;

pub fn run(args: &ShipArgs) -> Result<(), Failure> {
    let mut options = ShipOptions::new(&args.to, &args.stream)
        .subject_prefix(&args.subject_prefix)
        .from_position(args.from.unwrap_or(0))
        .filter(super::read::filter_of(
            &args.event_types,
            args.category.as_deref(),
        ))
        .max_in_flight(args.max_in_flight)
        .give_up_after(Duration::from_secs_f64(args.wait.give_up_after))
        .once(args.once);
    if args.create_stream {
        options = options.create_stream(args.replicas);
    }
    // Check the options before opening the store, so that a typo is
    // reported as such whatever state the store is in.
    options.check().map_err(failure)?;
    let store = open_read_only(&args.dir)?;
    let mut printer = Printer::new(&args.wait);
    let outcome = ship_blocking(&store, &options, |progress| {
        printer.print(progress, &describe(progress), is_live(&progress.phase));
    });
    printer.end_line();
    outcome.map_err(failure)?;
    printer.failed.map_or(Ok(()), Err)
}

/// A shipping failure as a command failure: store errors keep their exit
/// code (4 for corruption), everything else is 1.
pub fn failure(error: ShipError) -> Failure {
    match error {
        ShipError::Store(error) => Failure::from(error),
        other => Failure::other(other.to_string()),
    }
}

/// Whether a phase is reported as a live line (on a terminal only) rather
/// than as a line of its own.
pub fn is_live(phase: &Phase) -> bool {
    matches!(phase, Phase::Running | Phase::CaughtUp)
}

/// One line saying where the shipper stands.
fn describe(progress: &Progress) -> String {
    let at = format!(
        "shipped {} this run, through position {}, writer at {}, lag {}",
        progress.shipped, progress.shipped_through, progress.writer_position, progress.lag
    );
    match &progress.phase {
        Phase::WaitingForEvents => "waiting for the store's first event".into(),
        Phase::Resumed => match progress.last_shipped_position {
            Some(position) => format!(
                "resuming after position {position} (JetStream message {}); writer at {}, lag {}",
                progress.stream_sequence, progress.writer_position, progress.lag
            ),
            None => format!(
                "starting at position {} (the JetStream stream holds nothing of this store); \
                 writer at {}, lag {}",
                progress.shipped_through, progress.writer_position, progress.lag
            ),
        },
        Phase::Running => at,
        Phase::CaughtUp => format!("caught up: {at}; following"),
        Phase::Retrying {
            attempt,
            pause_ms,
            reason,
        } => format!("attempt {attempt} failed: {reason}; retrying in {pause_ms} ms"),
        Phase::Done => format!("done: {at}"),
    }
}

/// Prints reports: JSON lines on stdout, or text on stderr (a line
/// rewritten in place on a terminal).
pub struct Printer {
    json: Option<Output>,
    terminal: bool,
    /// A live line is on the terminal, to be ended before other output.
    open_line: bool,
    /// Writing JSON to stdout failed: stop with this once shipping returns.
    pub failed: Option<Failure>,
}

impl Printer {
    pub fn new(wait: &NatsWaitOptions) -> Printer {
        Printer {
            json: wait.json.then(Output::stdout),
            terminal: std::io::stderr().is_terminal(),
            open_line: false,
            failed: None,
        }
    }

    /// Prints one report (`text` is its human form; a `live` one is shown
    /// on a terminal only, as a line rewritten in place).
    pub fn print<P: serde::Serialize>(&mut self, progress: &P, text: &str, live: bool) {
        if let Some(out) = &mut self.json {
            if self.failed.is_none()
                && let Err(error) = out.json_line(progress).and_then(|()| out.flush())
            {
                self.failed = Some(error);
            }
            return;
        }
        let mut stderr = std::io::stderr().lock();
        // A closed stderr must not stop shipping (nor panic).
        if live {
            if self.terminal {
                let _ = write!(stderr, "\r\x1b[Kannals: {text}");
                self.open_line = true;
            }
            return;
        }
        if self.open_line {
            let _ = writeln!(stderr);
            self.open_line = false;
        }
        let _ = writeln!(stderr, "annals: {text}");
    }

    /// Ends a live line left on the terminal.
    pub fn end_line(&mut self) {
        if self.open_line {
            let _ = writeln!(std::io::stderr());
            self.open_line = false;
        }
    }
}
