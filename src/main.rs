//! `annals`: the command line of the annals event store.
//!
//! Every command is a thin layer over the library's `Store` API (except
//! `repair`, which works on the segment files with `annals::format`). The
//! commands, their JSON formats and exit codes are documented in
//! `docs/cli.md`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
