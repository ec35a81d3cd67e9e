//! `annals`: the command line of the annals event store.
//!
//! Every command is a thin layer over the library's public API (`Store`,
//! `annals::verify`, `annals::Repair`, …): presentation, confirmation and
//! exit codes only. The commands, their JSON formats and exit codes are
//! documented in `docs/cli.md`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
