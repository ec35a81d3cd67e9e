//! End-to-end tests of the command line as an operator's tool (issue 16):
//! paths and their messages, atomic export files, bulk imports that sync
//! per group and resume exactly once, `tail` in a pipe, help texts and
//! small usability fixes. Each runs the built binary as a subprocess.

mod common;
#[path = "common/run.rs"]
mod run;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::segment_files;
use run::{Run, expect, expect_with_input, path};
use serde_json::{Value, json};

/// Bound on a run that must end promptly: only so that a hang fails the
/// test instead of blocking it, not a timing assertion.
const PROMPT: Duration = Duration::from_secs(30);

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
    assert!(
        run.stderr.starts_with(&format!(
            "annals: created a new store in {}\n",
            empty.display()
        )),
        "{}",
        run.stderr
    );
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

/// The summary `import` prints on stderr: (lines, appended, already there,
/// syncs when it syncs per group).
fn import_summary(stderr: &str) -> (u64, u64, u64, Option<u64>) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("annals: imported "))
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"));
    let number_before = |word: &str| -> u64 {
        let before = &line[..line.find(word).unwrap_or_else(|| panic!("{word}: {line}"))];
        before
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {word}: {line}"))
    };
    let syncs = line.contains(" sync").then(|| number_before(" sync"));
    (
        number_before(" line"),
        number_before(" appended"),
        number_before(" already in the store"),
        syncs,
    )
}

/// Runs `annals import` with stdin read from `input` (a regular file).
fn import_from_file(args: &[&str], input: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("import")
        .args(args)
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap();
    Run {
        code: output.status.code().expect("annals exits"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Under the default durability, lines share syncs (one per group) but are
/// still appended and acknowledged one by one, in order, each after the
/// sync that covers it; a failing line stops the import with every line
/// before it acknowledged. (Before: one sync per line: 4,000 lines took
/// 4,000 syncs.)
#[test]
fn import_syncs_per_group_and_acknowledges_every_line() {
    let temp = tempfile::tempdir().unwrap();
    let store = temp.path().join("store");
    let input = temp.path().join("input.jsonl");
    std::fs::write(&input, raw_lines(0..4000)).unwrap();
    let run = import_from_file(&[path(&store), "--sync-every-lines", "1000"], &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let acks = run.lines();
    assert_eq!(acks.len(), 4000);
    for (i, ack) in acks.iter().enumerate() {
        let i = i as u64;
        assert_eq!(
            *ack,
            json!({"line": i + 1, "stream": format!("s-{}", i % 5), "first_version": i / 5 + 1,
                   "last_version": i / 5 + 1, "position": i, "last_position": i})
        );
    }
    let (lines, appended, already_there, syncs) = import_summary(&run.stderr);
    assert_eq!((lines, appended, already_there), (4000, 4000, 0));
    // About one sync per 1,000 lines; more only if a group waited 100 ms.
    let syncs = syncs.expect("the summary counts syncs under `always`");
    assert!((4..=40).contains(&syncs), "{}", run.stderr);

    // A bad line in the middle of a group: the lines before it are
    // acknowledged (after their sync), the line is named once, the rest
    // never runs.
    let mut lines = raw_lines(4000..4010);
    lines.push_str("{\"stream\":\"s-0\",\"type\":\"T\",\"data\":1,\"colour\":2}\n");
    lines.push_str(&raw_lines(4010..4020));
    let run = expect_with_input(1, &["import", path(&store)], &lines);
    assert_eq!(run.lines().len(), 10);
    assert_eq!(run.lines()[9]["line"], 10);
    assert!(
        run.stderr
            .contains("annals: line 11: not a valid import line: unknown field `colour`"),
        "{}",
        run.stderr
    );
    let (lines, appended, _, _) = import_summary(&run.stderr);
    assert_eq!((lines, appended), (10, 10));
    let stats = expect(0, &["stats", path(&store), "--json"]);
    assert_eq!(stats.lines()[0]["events"], 4010);
}

/// A producer that writes one line and waits for its acknowledgement gets
/// it after one sync, not when a group fills up or times out.
#[test]
fn import_acknowledges_a_waiting_producer_at_once() {
    let temp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["import", path(temp.path()), "--sync-every-ms", "600000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (send, acks) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    for i in 0..5u64 {
        stdin.write_all(raw_lines(i..i + 1).as_bytes()).unwrap();
        stdin.flush().unwrap();
        let ack = acks
            .recv_timeout(PROMPT)
            .expect("the line is acknowledged without waiting for more input");
        let ack: Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(ack["line"], i + 1);
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// `--import-id` makes an import of raw lines (no version, no id)
/// resumable exactly once: killed while lines were committed but not yet
/// acknowledged, the same input imported again with the same id appends
/// each missing line once and none twice. (Before: rerunning duplicated
/// every line already imported.)
#[test]
fn an_interrupted_raw_import_resumes_exactly_once_with_an_import_id() {
    let temp = tempfile::tempdir().unwrap();
    let store = temp.path().join("store");
    let input = raw_lines(0..3000);
    let import = ["import", path(&store), "--import-id", "load-1"];
    // Nobody reads the acknowledgements: once the pipe (64 KiB, about 700
    // acknowledgements) is full, the importer cannot acknowledge more, and
    // lines it appended stay unacknowledged.
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(import)
        .arg("--durability")
        .arg("none")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let input = input.clone();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    };
    let started = Instant::now();
    let committed = loop {
        assert!(started.elapsed() < PROMPT, "the import appended nothing");
        if let Ok(store) = annals::Store::open_read_only(&store) {
            let events = store.next_position();
            if events >= 1000 {
                break events;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    writer.join().unwrap();
    let mut acknowledged = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut acknowledged)
        .unwrap();
    let acknowledged = acknowledged.lines().count() as u64;
    assert!(
        acknowledged < committed,
        "{acknowledged} acknowledged, {committed} committed"
    );

    let run = expect_with_input(0, &import, &input);
    assert_eq!(run.lines().len(), 3000);
    let (lines, appended, already_there, _) = import_summary(&run.stderr);
    assert_eq!(lines, 3000);
    assert!(already_there >= committed, "{}", run.stderr);
    assert_eq!(appended + already_there, 3000);
    // Every line once, in input order.
    let events = expect(0, &["read", path(&store)]).lines();
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["i"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..3000).collect::<Vec<_>>());
    // The acknowledgements of a rerun are the original results.
    assert_eq!(run.lines()[0]["position"], 0);
    assert_eq!(run.lines()[2999]["position"], 2999);

    // Again: everything is already there.
    let run = expect_with_input(0, &import, &input);
    let (lines, appended, already_there, _) = import_summary(&run.stderr);
    assert_eq!((lines, appended, already_there), (3000, 0, 3000));
    assert_eq!(expect(0, &["read", path(&store)]).lines().len(), 3000);
}

/// Runs `annals` with stderr on a pseudo-terminal, so that it draws its
/// progress bars; `feed` writes its stdin. Returns the exit code, stdout,
/// and everything drawn on the terminal.
fn on_a_terminal(
    args: &[&str],
    feed: impl FnOnce(std::process::ChildStdin),
) -> (i32, String, String) {
    let (controller, terminal) = run::pseudo_terminal();
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(terminal)
        .spawn()
        .unwrap();
    // The child holds the terminal now; reading ends (with EIO) when it exits.
    let drawn = run::read_screen(controller);
    let stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        BufReader::new(stdout).read_to_string(&mut text).unwrap();
        text
    });
    feed(child.stdin.take().unwrap());
    let code = child.wait().unwrap().code().expect("annals exits");
    (code, printed.join().unwrap(), drawn.join().unwrap())
}

/// The rates a progress bar showed (`… 12,345/s`, `… 12,345 lines/s`).
fn rates_in(screen: &str) -> Vec<String> {
    screen
        .match_indices("/s")
        .map(|(at, _)| {
            let before = &screen[..at];
            let start = before
                .rfind(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.' || c == ' '))
                .map_or(0, |i| i + 1);
            before[start..].trim().to_string()
        })
        .collect()
}

/// On a terminal, `import` shows acknowledged lines and lines per second
/// (before: no progress at all), and rates are whole numbers (before:
/// `export` showed rates like `51234.5678/s`).
#[test]
fn progress_bars_show_lines_per_second_in_whole_numbers() {
    let temp = tempfile::tempdir().unwrap();
    let store = temp.path().join("store");
    let (code, stdout, screen) = on_a_terminal(&["import", path(&store)], |mut stdin| {
        for round in 0..4 {
            stdin
                .write_all(raw_lines(round * 500..(round + 1) * 500).as_bytes())
                .unwrap();
            stdin.flush().unwrap();
            // Long enough for a few redraws (at most 20 a second).
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    assert_eq!(code, 0, "{screen}");
    assert_eq!(stdout.lines().count(), 2000);
    assert!(screen.contains("lines/s"), "{screen:?}");
    assert!(screen.contains(" lines ("), "{screen:?}");
    let rates = rates_in(&screen);
    assert!(!rates.is_empty(), "{screen:?}");
    for rate in &rates {
        assert!(
            !rate.contains('.'),
            "a rate with decimals: {rate:?} in {screen:?}"
        );
    }

    raw_store(&temp.path().join("big"), 30_000);
    let big = temp.path().join("big");
    let (code, stdout, screen) = on_a_terminal(&["export", path(&big)], |_| {});
    assert_eq!(code, 0, "{screen}");
    assert_eq!(stdout.lines().count(), 30_000);
    for rate in rates_in(&screen) {
        assert!(
            !rate.contains('.'),
            "a rate with decimals: {rate:?} in {screen:?}"
        );
    }
}

/// Waits for `child` to exit, at most `limit`; kills it past that.
/// Returns its exit status, or `None` if it had to be killed.
fn wait_at_most(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `annals tail DIR | head -2` ends once `head` has its lines and exits,
/// even when no new event comes. (Before: tail noticed the closed pipe only
/// when it wrote the next event, and waited for it forever.)
#[test]
fn tail_ends_when_its_reader_goes_away_without_waiting_for_an_event() {
    let temp = tempfile::tempdir().unwrap();
    raw_store(temp.path(), 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["tail", path(temp.path())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("{\"stream\""), "{line}");
    }
    drop(stdout);
    let status = wait_at_most(&mut child, PROMPT).expect("tail exits once its reader is gone");
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(stderr, "");
}

/// The description clap prints after `flag` in `annals COMMAND -h`.
/// (On the flag's line, or on the next one when the help is long.)
fn help_of(help: &str, flag: &str) -> String {
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(flag));
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("{flag} is not in {help}"));
    let after_flag = line.trim_start()[flag.len()..].trim_start();
    // Skip the value name (`<CORRELATION_ID>`).
    let description = match after_flag.strip_prefix('<') {
        Some(rest) => rest.split_once('>').map_or("", |(_, d)| d),
        None => after_flag,
    };
    match (description.trim(), lines.next()) {
        ("", Some(next)) if !next.trim_start().starts_with('-') => next.trim().to_string(),
        (description, _) => description.to_string(),
    }
}

/// Every option of `append` says what it is, and `import --help` describes
/// the line format and the durability modes. (Before: `--correlation-id`
/// and `--causation-id` had empty help; `import --help` had neither.)
#[test]
fn help_describes_every_option_and_the_import_format() {
    let help = expect(0, &["append", "-h"]).stdout;
    for flag in [
        "--correlation-id",
        "--causation-id",
        "--data",
        "--metadata",
        "--create",
    ] {
        assert!(
            !help_of(&help, flag).is_empty(),
            "{flag} has no help: {help}"
        );
    }
    let import = expect(0, &["import", "--help"]).stdout;
    for needle in [
        r#"{"stream":"order-1","type":"Placed","data":{"total":12}}"#,
        "expected_version",
        "data_base64",
        r#"{"line":1,"#,
        "Durability for bulk loads",
        "--import-id",
    ] {
        assert!(import.contains(needle), "{needle}: {import}");
    }
}

/// `--data -5` is a negative number, not an unknown option (before: exit 2
/// with clap's tip to write `-- -5`, which does not work either), and
/// `--data @FILE` / `--metadata @FILE` read JSON from a file (`@-`: stdin).
#[test]
fn append_takes_negative_numbers_and_json_from_files() {
    let temp = tempfile::tempdir().unwrap();
    let store = temp.path().join("store");
    let d = path(&store);
    let append = |data: &str, extra: &[&str], input: &str| {
        let mut args = vec!["append", d, "--stream", "s", "--type", "T", "--data", data];
        args.extend(extra);
        expect_with_input(0, &args, input)
    };
    append("-5", &["--metadata", "-1.5"], "");
    let file = temp.path().join("order.json");
    std::fs::write(&file, "{\"total\": 12,\n \"lines\": [1, 2]}\n").unwrap();
    let at_file = format!("@{}", file.display());
    append(&at_file, &["--metadata", &at_file], "");
    append("@-", &[], "[\"from stdin\"]");
    let events = expect(0, &["read", d]).lines();
    let data: Vec<&Value> = events.iter().map(|e| &e["data"]).collect();
    assert_eq!(
        data,
        [
            &json!(-5),
            &json!({"total": 12, "lines": [1, 2]}),
            &json!(["from stdin"])
        ]
    );
    assert_eq!(events[0]["metadata"], json!(-1.5));
    assert_eq!(events[1]["metadata"], json!({"total": 12, "lines": [1, 2]}));

    let missing = temp.path().join("nope.json");
    let run = expect(
        1,
        &[
            "append",
            d,
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            &format!("@{}", missing.display()),
        ],
    );
    assert!(
        run.stderr
            .starts_with(&format!("annals: --data: reading {}: ", missing.display())),
        "{}",
        run.stderr
    );
    let bad = temp.path().join("bad.json");
    std::fs::write(&bad, "{oops").unwrap();
    let run = expect(
        1,
        &[
            "append",
            d,
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            &format!("@{}", bad.display()),
        ],
    );
    assert!(
        run.stderr.starts_with(&format!(
            "annals: --data: {} is not valid JSON: ",
            bad.display()
        )),
        "{}",
        run.stderr
    );
}

/// An import error names the line once, and the column of a JSON error.
/// (Before: `line 2: not a valid import line: EOF while parsing an object
/// at line 1 column 14`: two line numbers, the second one always 1.)
#[test]
fn import_errors_name_the_line_once() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let first = raw_lines(0..1);
    let run = expect_with_input(1, &["import", d], &format!("{first}{{\"stream\":\"c\"\n"));
    let error = |run: &Run| -> String {
        let found = run.stderr.lines().find(|l| l.starts_with("annals: line "));
        found
            .unwrap_or_else(|| panic!("{}", run.stderr))
            .to_string()
    };
    assert_eq!(
        error(&run),
        "annals: line 2: not a valid import line: EOF while parsing an object (at column 13)"
    );
    let run = expect_with_input(
        1,
        &["import", d],
        &format!("{first}\n{{\"stream\":\"c\",\"type\":\"T\",\"data\":1,\"colour\":2}}\n"),
    );
    assert_eq!(
        error(&run),
        "annals: line 3: not a valid import line: unknown field `colour` (at column 45)"
    );
}

/// What docs/cli.md ("Event ids") says a repeated `--id` does: event ids are
/// not unique keys; only an append at an exact expected version whose ids
/// match the events already there is a repeat.
#[test]
fn a_repeated_event_id_does_what_the_docs_say() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let id = "0191b2a6-1234-7000-8000-00000000abcd";
    let append = |code: i32, expected: &str| {
        let args = [
            "append",
            d,
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            "1",
            "--id",
            id,
            "--expected-version",
            expected,
        ];
        let run = expect(code, &args);
        run.lines()
            .first()
            .map(|r| r["first_version"].as_u64().unwrap())
    };
    assert_eq!(append(0, "no-stream"), Some(1));
    // `any`: a new event with the same id, each time.
    assert_eq!(append(0, "any"), Some(2));
    assert_eq!(append(0, "any"), Some(3));
    // The stream's current version: matches, so a new event again.
    assert_eq!(append(0, "3"), Some(4));
    // The first append's expected version: a repeat, its original result.
    assert_eq!(append(0, "no-stream"), Some(1));
    assert_eq!(append(0, "2"), Some(3));
    // Beyond the stream's end: a conflict; so is another id at a version.
    assert_eq!(append(3, "7"), None);
    expect(
        3,
        &[
            "append",
            d,
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            "1",
            "--id",
            "0191b2a6-1234-7000-8000-00000000abce",
            "--expected-version",
            "no-stream",
        ],
    );
    let events = expect(0, &["read", d]).lines();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e["id"] == id));
}

/// `verify` prints timestamps as RFC 3339 and counts in the singular when
/// there is one. (Before: `1 segments`, and timestamps as nanoseconds since
/// the epoch.)
#[test]
fn verify_prints_dates_and_singulars() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    raw_store(temp.path(), 1);
    let text = expect(0, &["verify", d]).stdout;
    let mut lines = text.lines();
    let summary = lines.next().unwrap();
    assert!(
        summary.starts_with(&format!("{d}: 1 segment (0 sealed), ")),
        "{text}"
    );
    assert!(summary.contains(", 1 event, 1 stream, "), "{text}");
    assert_eq!(lines.next(), Some("positions 0..=0"), "{text}");
    let timestamps = lines.next().unwrap();
    let (first, last) = timestamps
        .strip_prefix("timestamps ")
        .and_then(|t| t.split_once(" to "))
        .unwrap_or_else(|| panic!("{text}"));
    for timestamp in [first, last] {
        assert_eq!(timestamp.len(), 30, "{text}");
        assert!(
            timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{text}"
        );
    }
    assert!(!text.contains(" ns "), "{text}");
    assert_eq!(text.lines().last(), Some("OK: 0 corruption, 0 warnings"));

    let json = &expect(0, &["verify", d, "--json"]).lines()[0];
    assert_eq!(json["first_timestamp"].as_str(), Some(first));
    assert_eq!(json["last_timestamp"].as_str(), Some(last));
    assert!(json["first_timestamp_ns"].as_u64().is_some());
}

/// `annals bench --import` measures the import of the same lines under each
/// durability, the modes in turns, and says how each compares to `none`.
#[test]
fn bench_measures_import_under_each_durability() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("bench");
    let run = expect(
        0,
        &[
            "bench",
            path(&dir),
            "--import",
            "--events",
            "300",
            "--rounds",
            "2",
            "--streams",
            "7",
            "--json",
        ],
    );
    let report = &run.lines()[0];
    assert_eq!(report["lines"], 300);
    assert_eq!(report["rounds"], 2);
    let modes: Vec<&str> = report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["durability"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["always", "periodic", "none"]);
    for mode in report["modes"].as_array().unwrap() {
        assert_eq!(mode["seconds"].as_array().unwrap().len(), 2);
        assert!(mode["ratio_to_none"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(report["modes"][2]["ratio_to_none"], 1.0);
    // Only the input is kept: each store is removed after its run.
    assert_eq!(names_in(&dir), ["lines.jsonl"]);
    let text = expect(0, &["bench", "--import", "--events", "50", "--rounds", "1"]).stdout;
    assert!(text.contains("x none"), "{text}");
    assert!(text.contains("load average"), "{text}");
    expect(1, &["bench", "--import", "--rounds", "0"]);
}
