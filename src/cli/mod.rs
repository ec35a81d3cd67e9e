//! The `annals` command line: argument parsing, one module per command, and
//! the one place where failures become exit codes.

mod append;
#[cfg(feature = "object-storage")]
mod archive;
mod args;
mod bench;
mod bench_import;
mod erase;
mod event_json;
mod export;
mod failure;
mod import;
mod import_line;
mod log_view;
mod output;
mod pretty;
mod proofs;
mod read;
#[cfg(feature = "nats")]
mod receive;
mod repair;
mod retire;
#[cfg(feature = "nats")]
mod ship;
mod stats;
mod store_dir;
mod stream_lifecycle;
mod tail;
mod timestamp;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use failure::{EXIT_OK, EXIT_USAGE, Failure};

/// Parses the command line, runs the command, and turns its outcome into an
/// exit code (see `failure` for the codes).
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are "errors" that print to stdout and succeed.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            });
        }
    };
    store_dir::set_rebuild_index(cli.rebuild_index);
    let outcome = match cli.command {
        Command::Append(args) => append::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Read(args) => read::run(&args),
        Command::Tail(args) => tail::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Repair(args) => repair::run(&args),
        Command::Retire(args) => retire::run(&args),
        Command::Truncate(args) => stream_lifecycle::truncate(&args),
        Command::DeleteStream(args) => stream_lifecycle::delete(&args),
        Command::Erase(args) => erase::run(&args),
        Command::Keygen(args) => proofs::keygen(&args),
        Command::Checkpoint(args) => proofs::checkpoint(&args),
        Command::Prove(args) => proofs::prove(&args),
        Command::CheckProof(args) => proofs::check_proof(&args),
        #[cfg(feature = "nats")]
        Command::Ship(args) => ship::run(&args),
        #[cfg(feature = "nats")]
        Command::Receive(args) => receive::run(&args),
        #[cfg(feature = "object-storage")]
        Command::Archive(command) => archive::run(&command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, message }) => {
            if !message.is_empty() {
                eprintln!("annals: {message}");
            }
            ExitCode::from(code)
        }
    }
}
