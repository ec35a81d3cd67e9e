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

/// Longest wait for a line from `annals tail`: a bound so that a broken
/// tail fails the test instead of hanging it, not a timing assertion.
pub const TAIL_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `annals tail ARGS` running, its stdout lines sent to a channel; killed
/// when dropped.
pub struct Tail {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Tail {
    pub fn start(args: &[&str]) -> Tail {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("tail")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Tail { child, lines }
    }

    /// The next line (waiting up to [`TAIL_WAIT`]).
    #[track_caller]
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(TAIL_WAIT)
            .expect("tail printed the next event")
    }

    /// The next line, as JSON.
    #[track_caller]
    pub fn next(&self) -> Value {
        let line = self.next_line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// A line printed within `wait`, if any.
    pub fn line_within(&self, wait: std::time::Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pseudo-terminal: the controller, to read what is drawn, and the
/// terminal, to give a child as its stdout or stderr.
pub fn pseudo_terminal() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let controller =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    (std::fs::File::from(controller), terminal)
}

/// Reads what is drawn on the terminal of `controller`, in a thread, until
/// every holder of the terminal has closed it (reading then ends with EIO):
/// give the terminal to the child and drop every other copy of it.
pub fn read_screen(mut controller: std::fs::File) -> std::thread::JoinHandle<String> {
    use std::io::Read;
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = controller.read(&mut buffer) {
            bytes.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
