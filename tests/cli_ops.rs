//! End-to-end tests of the command line as an operator's tool (issue 16):
//! paths and their messages, atomic export files, bulk imports that sync
//! per group and resume exactly once, `tail` in a pipe, help texts and
//! small usability fixes. Each runs the built binary as a subprocess.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::segment_files;
use serde_json::{Value, json};

/// Bound on a run that must end promptly: only so that a hang fails the
/// test instead of blocking it, not a timing assertion.
const PROMPT: Duration = Duration::from_secs(30);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn annals_with_input(args: &[&str], input: &str) -> Run {
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

#[track_caller]
fn expect(code: i32, args: &[&str]) -> Run {
    expect_with_input(code, args, "")
}

#[track_caller]
fn expect_with_input(code: i32, args: &[&str], input: &str) -> Run {
    let run = annals_with_input(args, input);
    assert_eq!(
        run.code, code,
        "annals {args:?}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// `annals: {message}\n`: the whole of stderr for a failure.
#[track_caller]
fn assert_stderr(run: &Run, message: &str) {
    assert_eq!(run.stderr, format!("annals: {message}\n"));
}

/// Raw import lines (no version, no id): what an application's own log
/// would give. `count` events over five streams.
fn raw_lines(range: std::ops::Range<u64>) -> String {
    range
        .map(|i| {
            json!({"stream": format!("s-{}", i % 5), "type": "Numbered",
                   "data": {"i": i, "pad": "x".repeat(100)}})
            .to_string()
                + "\n"
        })
        .collect()
}

/// Every file and directory name under `dir` (not recursive), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const APPEND: [&str; 6] = ["--stream", "s", "--type", "T", "--data", "1"];

fn append_args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["append", dir];
    args.extend(APPEND);
    args.extend(extra);
    args
}

/// A missing directory, a regular file and a directory that holds no store
/// each get their own message and exit 1 from every read-like command, and
/// none of them becomes a store. (Before: `read` and `stats` on a directory
/// without a store printed an empty store and exited 0.)
#[test]
fn read_like_commands_tell_a_missing_directory_a_file_and_a_non_store_apart() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("stroe");
    let file = temp.path().join("notes.txt");
    std::fs::write(&file, b"hello").unwrap();
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = temp.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"meow").unwrap();

    let cases = [
        (
            missing.clone(),
            format!("{}: no such directory", missing.display()),
        ),
        (
            file.clone(),
            format!("{}: a file, not a store directory", file.display()),
        ),
        (
            empty.clone(),
            format!(
                "{}: not an annals store: the directory is empty",
                empty.display()
            ),
        ),
        (
            other.clone(),
            format!(
                "{}: not an annals store: the directory holds no segment file \
                 (like 00000000000000000000.seg) and no annals.lock",
                other.display()
            ),
        ),
    ];
    for (dir, message) in &cases {
        let d = path(dir);
        let commands: [&[&str]; 7] = [
            &["read", d],
            &["read", d, "--stream", "s"],
            &["stats", d],
            &["stats", d, "--json"],
            &["export", d],
            &["verify", d],
            &["tail", d],
        ];
        for args in commands {
            let run = expect(1, args);
            assert_stderr(&run, message);
            assert_eq!(run.stdout, "", "{args:?}");
        }
    }
    assert!(!missing.exists(), "no store was created");
    assert_eq!(names_in(&empty), Vec::<String>::new());
    assert_eq!(names_in(&other), ["cat.jpg"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");

    // A store whose directory holds only the lock file (its writer never
    // appended, or crashed before its first segment) is a store.
    let locked_only = temp.path().join("locked-only");
    std::fs::create_dir(&locked_only).unwrap();
    std::fs::write(locked_only.join("annals.lock"), b"").unwrap();
    let stats = expect(0, &["stats", path(&locked_only), "--json"]);
    assert_eq!(stats.lines()[0]["events"], 0);
}

/// Writers create a store only in an empty directory or a missing one whose
/// parent exists; `--create` also creates missing parents. (Before: any
/// missing path was created with all its parents, so a mistyped path became
/// a new 64 MiB store.) Creating a store is said on stderr.
#[test]
fn writers_create_a_store_only_where_asked() {
    let temp = tempfile::tempdir().unwrap();
    let typo = temp.path().join("stroes").join("orders");
    let t = path(&typo);
    let run = expect(1, &append_args(t, &[]));
    assert_stderr(
        &run,
        &format!(
            "{t}: no such directory, nor its parent {}: check the path, \
             or pass --create to create them",
            temp.path().join("stroes").display()
        ),
    );
    assert!(!temp.path().join("stroes").exists());
    let run = expect_with_input(1, &["import", t], &raw_lines(0..1));
    assert!(run.stderr.contains("pass --create"), "{}", run.stderr);
    assert!(!temp.path().join("stroes").exists());

    // With --create: made, parents included, and said.
    let run = expect(0, &append_args(t, &["--create"]));
    assert_stderr(&run, &format!("created a new store in {t}"));
    assert_eq!(segment_files(&typo).len(), 1);
    // Opening it again creates nothing and says nothing.
    let run = expect(0, &append_args(t, &[]));
    assert_eq!(run.stderr, "");

    // A missing directory whose parent exists, and an empty directory.
    let new = temp.path().join("new");
    let run = expect(0, &append_args(path(&new), &[]));
    assert_stderr(&run, &format!("created a new store in {}", new.display()));
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = expect_with_input(0, &["import", path(&empty)], &raw_lines(0..2));
    assert_stderr(&run, &format!("created a new store in {}", empty.display()));
    assert_eq!(run.lines().len(), 2);

    // A regular file is named as such.
    let file = temp.path().join("notes.txt");
    std::fs::write(&file, b"hello").unwrap();
    let run = expect(1, &append_args(path(&file), &[]));
    assert_stderr(
        &run,
        &format!("{}: a file, not a store directory", file.display()),
    );
    let run = expect(1, &append_args(path(&file), &["--create"]));
    assert_stderr(
        &run,
        &format!("{}: a file, not a store directory", file.display()),
    );
}

/// A store in `dir` holding `count` raw events, imported without syncs.
fn raw_store(dir: &Path, count: u64) {
    expect_with_input(
        0,
        &["import", path(dir), "--durability", "none"],
        &raw_lines(0..count),
    );
}

/// `export --output` interrupted half-way (here by the file size limit,
/// whose signal kills the process as a `kill -9` would) leaves nothing under
/// the final name, and the next export completes. (Before: a torn file
/// stayed under the final name, and the next export refused it because it
/// existed.)
#[test]
fn an_interrupted_export_leaves_nothing_under_the_final_name() {
    let temp = tempfile::tempdir().unwrap();
    let store = temp.path().join("store");
    raw_store(&store, 3000);
    let out_dir = temp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let output = out_dir.join("backup.jsonl");
    // `ulimit -f 64`: no file of the process may grow past 64 KiB; the
    // export needs about 600 KB.
    let status = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -f 64 && exec "$0" export "$1" --output "$2""#)
        .arg(env!("CARGO_BIN_EXE_annals"))
        .arg(&store)
        .arg(&output)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the export was interrupted");
    assert!(!output.exists(), "a torn export under the final name");
    // What it leaves is a hidden temporary file, named after the output.
    for name in names_in(&out_dir) {
        assert!(
            name.starts_with(".backup.jsonl.") && name.ends_with(".partial"),
            "{name}"
        );
    }

    let run = expect(0, &["export", path(&store), "--output", path(&output)]);
    assert_eq!(run.stdout, "");
    let whole = expect(0, &["export", path(&store)]).stdout;
    assert_eq!(std::fs::read_to_string(&output).unwrap(), whole);
    assert_eq!(whole.lines().count(), 3000);
    // It never overwrites, and says so.
    let run = expect(1, &["export", path(&store), "--output", path(&output)]);
    assert_stderr(
        &run,
        &format!(
            "{}: exists; export never overwrites a file (remove it or choose another name)",
            output.display()
        ),
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), whole);
}
