//! `annals receive`: rebuilds a store from a JetStream stream that `annals
//! ship` filled (`annals::ship::receive`), resuming from the store's own
//! length. Appends are made durable after each chunk of messages and at
//! the end; whatever a crash loses is received again on the next run.

use std::time::Duration;

use annals::ship::{Phase, ReceiveOptions, ReceiveProgress, receive_blocking};
use annals::{Durability, Options};

use super::args::ReceiveArgs;
use super::failure::Failure;
use super::ship::{Printer, failure, is_live};
use super::store_dir::{Creation, open_writable};

pub fn run(args: &ReceiveArgs) -> Result<(), Failure> {
    let options = ReceiveOptions::new(&args.from, &args.stream)
        .give_up_after(Duration::from_secs_f64(args.wait.give_up_after))
        .once(args.once);
    options.check().map_err(failure)?;
    // The stream is the source of truth and the store says where to resume,
    // so syncing once per chunk (`receive` flushes) loses nothing for good.
    let store = open_writable(
        &args.dir,
        Options::default().durability(Durability::None),
        Creation {
            create_parents: false,
        },
    )?;
    let mut printer = Printer::new(&args.wait);
    let outcome = receive_blocking(&store, &options, |progress| {
        printer.print(progress, &describe(progress), is_live(&progress.phase));
    });
    printer.end_line();
    let closed = store.close();
    outcome.map_err(failure)?;
    closed?;
    printer.failed.map_or(Ok(()), Err)
}

fn describe(progress: &ReceiveProgress) -> String {
    let at = format!(
        "received {} this run, store at position {}, stream at message {}, lag {}",
        progress.received, progress.store_position, progress.stream_sequence, progress.lag
    );
    match &progress.phase {
        Phase::Retrying {
            attempt,
            pause_ms,
            reason,
        } => format!("attempt {attempt} failed: {reason}; retrying in {pause_ms} ms"),
        Phase::CaughtUp => format!("caught up: {at}; following"),
        Phase::Done => format!("done: {at}"),
        _ => at,
    }
}
