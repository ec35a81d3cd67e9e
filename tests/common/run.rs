//! Running the built `annals` binary from a test, shared by the command-line
//! test files (only those that need the binary include it: the `cli`
//! feature builds it).
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one run of `annals` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout as JSON lines.
    pub fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Runs `annals` with `args` and nothing on stdin.
pub fn annals(args: &[&str]) -> Run {
    annals_with_input(args, "")
}

/// Runs `annals` with `args`, writing `input` to its stdin.
pub fn annals_with_input(args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the annals binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        // The command may exit before reading everything (a failing line).
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: output.status.code().expect("annals exits, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `annals` and asserts it exits with `code`.
#[track_caller]
pub fn expect(code: i32, args: &[&str]) -> Run {
    expect_with_input(code, args, "")
}

/// Runs `annals` with `input` on stdin and asserts it exits with `code`.
#[track_caller]
pub fn expect_with_input(code: i32, args: &[&str], input: &str) -> Run {
    let run = annals_with_input(args, input);
    assert_eq!(
        run.code, code,
        "annals {args:?}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

/// A path as the `&str` an argument list takes.
pub fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}
