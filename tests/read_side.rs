//! End-to-end regression tests for the read side and for what open does
//! with damage: every opener (the writer, `read`, `export`, `stats`, `tail`,
//! `verify`, `repair`) must agree on what is corruption, must say what it
//! repaired, must never fail beside a healthy writer, and must never hang.
//! Each test drives the built `annals` binary as a user would, with a time
//! bound on every run so that a hang fails the test instead of blocking it.

mod common;
mod refusal;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use annals::{Durability, EventData, ExpectedVersion, Options, Store};
use common::*;
use serde_json::Value;

/// How long a command may take when it must exit promptly (a refusal, a
/// `tail` that must not wait on a damaged store, a file that must not be
/// opened as a segment).
const PROMPT: Duration = Duration::from_secs(10);

/// Bound on any other run: far above what it needs, only so that a hang
/// fails the test instead of blocking it.
const LIMIT: Duration = Duration::from_secs(120);

/// A finished (or killed) run of the binary.
struct Run {
    args: Vec<String>,
    /// The exit code; `None` when it was still running at the deadline and
    /// was killed (or died of a signal).
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// One line for a failure message.
    fn describe(&self) -> String {
        let code = match (self.code, self.timed_out) {
            (_, true) => "still running at the deadline, killed".to_string(),
            (Some(code), false) => format!("exit {code}"),
            (None, false) => "killed by a signal".to_string(),
        };
        let stdout_lines = self.stdout.lines().count();
        format!(
            "annals {}: {code}; stdout {stdout_lines} lines{}; stderr: {:?}",
            self.args.join(" "),
            match self.stdout.lines().next() {
                Some(first) => format!(" (first: {})", truncate(first, 200)),
                None => String::new(),
            },
            truncate(self.stderr.trim_end(), 400)
        )
    }

    /// stdout and stderr together (`verify` and `repair` report on stdout).
    fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A running `annals` process whose stdout and stderr are collected.
struct Running {
    args: Vec<String>,
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the annals binary runs");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            args: args.iter().map(|a| a.to_string()).collect(),
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until the process exits or `deadline` passes (then kills it).
    fn finish(mut self, deadline: Instant) -> Run {
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Run {
            args: self.args,
            code: if timed_out { None } else { status.code() },
            timed_out,
            stdout: String::from_utf8_lossy(&self.stdout.join().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.join().unwrap()).into_owned(),
        }
    }
}

/// Runs `annals` with `args`, killing it after `limit`.
fn annals(limit: Duration, args: &[&str]) -> Run {
    Running::start(args).finish(Instant::now() + limit)
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn name_of(file: &Path) -> String {
    file.file_name().unwrap().to_str().unwrap().to_string()
}

/// Panics with every collected problem, one per paragraph.
#[track_caller]
fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Checks that `run` exited with `code` and that `text` (its stderr, or its
/// whole output) contains each of `needles` (case-insensitively).
fn check(problems: &mut Vec<String>, run: &Run, code: i32, needles: &[&str], whole_output: bool) {
    let text = if whole_output {
        run.output()
    } else {
        run.stderr.clone()
    };
    let lower = text.to_lowercase();
    let missing: Vec<&str> = needles
        .iter()
        .copied()
        .filter(|n| !lower.contains(&n.to_lowercase()))
        .collect();
    if run.code != Some(code) || !missing.is_empty() {
        problems.push(format!(
            "expected exit {code}{}; got {}",
            if needles.is_empty() {
                String::new()
            } else {
                format!(
                    " with {} naming {needles:?}",
                    if whole_output { "output" } else { "stderr" }
                )
            },
            run.describe()
        ));
    }
}

/// A store in `dir` written with `Durability::Always` (so that each batch's
/// commit record vouches, through `synced_offset`, for every batch before
/// it), small segments, `batches` batches of 3 events of `size` bytes;
/// closed cleanly (a sync marker ends the newest segment).
fn synced_store(dir: &Path, batches: u64, size: usize) {
    let store = Store::open(
        dir,
        Options::default()
            .segment_size_bytes(64 * 1024)
            .durability(Durability::Always),
    )
    .unwrap();
    fill(&store, batches, 3, 4, size);
    store.close().unwrap();
}

/// The newest segment file of a store.
fn newest_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().expect("the store has a segment")
}

fn append_args(dir: &Path) -> Vec<&str> {
    vec![
        "append",
        path(dir),
        "--stream",
        "s-x",
        "--type",
        "T",
        "--data",
        "1",
    ]
}

/// Read-only commands serve a silent prefix: "Flip one byte of an event in
/// the newest segment whose batch a later commit proves was synced:
/// `annals append` refuses with exit 4, but `annals read`, `annals export`,
/// `annals stats` and `annals tail` print events before the damage and
/// exit 0" (`tail` prints a prefix and waits). Every opener must refuse
/// with exit 4, naming the segment file and the offset.
#[test]
fn read_only_commands_refuse_a_store_a_writer_refuses() {
    let mut problems = Vec::new();
    // The first batch (nothing before it to print) and a middle one (a
    // prefix of 9 events before it).
    for damaged_batch in [0usize, 3] {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let d = path(dir);
        synced_store(dir, 8, 50);
        assert_eq!(segment_files(dir).len(), 1);
        let segment = newest_segment(dir);
        let batches = batches(&segment);
        let target = &batches[damaged_batch];
        assert!(
            batches[damaged_batch + 1..]
                .iter()
                .any(|later| later.synced_offset >= target.end),
            "a later commit vouches for batch {damaged_batch}: {batches:?}"
        );
        let event = target.events[0];
        flip_byte(
            &segment,
            event.body_offset() + u64::from(event.body_len) / 2,
        );
        let name = name_of(&segment);
        let file_and_offset = [name.as_str(), "offset"];
        let what = format!("damaged event in batch {damaged_batch}");

        let mut runs = Vec::new();
        for args in [
            vec!["read", d],
            vec!["export", d],
            vec!["stats", d],
            vec!["stats", d, "--json"],
            vec!["tail", d],
        ] {
            let run = annals(PROMPT, &args);
            let mut found = Vec::new();
            check(&mut found, &run, 4, &file_and_offset, false);
            runs.extend(found.into_iter().map(|p| format!("{what}: {p}")));
        }
        // verify reports on stdout.
        let run = annals(PROMPT, &["verify", d]);
        let mut found = Vec::new();
        check(&mut found, &run, 4, &[name.as_str()], true);
        runs.extend(found.into_iter().map(|p| format!("{what}: {p}")));
        // The writer last (it is expected to refuse and change nothing).
        let run = annals(PROMPT, &append_args(dir));
        let mut found = Vec::new();
        check(&mut found, &run, 4, &file_and_offset, false);
        runs.extend(found.into_iter().map(|p| format!("{what}: {p}")));
        problems.extend(runs);
    }
    assert_no_problems(&problems);
}

/// Cuts the newest segment of a cleanly closed, synced store at `cut`, by
/// zeroing (`zero`) or truncating the file; returns the segment's path.
fn cut_newest(dir: &Path, cut: u64, zero: bool) -> PathBuf {
    let segment = newest_segment(dir);
    if zero {
        let data_end = frames(&segment).last().unwrap().end();
        overwrite(&segment, cut, &vec![0u8; (data_end - cut) as usize]);
    } else {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len(cut).unwrap();
    }
    segment
}

/// Runs the openers of a store whose synced data was cut and checks that
/// each refuses: read-only ones first, then repair's dry run, then a
/// writer (which, today, writes over the cut).
fn expect_every_opener_refuses(dir: &Path, segment: &Path, what: &str, problems: &mut Vec<String>) {
    let d = path(dir);
    let name = name_of(segment);
    let mut found = Vec::new();
    for args in [vec!["read", d], vec!["stats", d]] {
        let run = annals(PROMPT, &args);
        check(&mut found, &run, 4, &[&name, "offset"], false);
    }
    let run = annals(PROMPT, &["verify", d]);
    check(&mut found, &run, 4, &[&name], true);
    let run = annals(PROMPT, &["repair", d]);
    check(&mut found, &run, 4, &[&name], true);
    if run.stdout.contains("no damage found") {
        found.push(format!(
            "repair's dry run says \"no damage found\": {}",
            run.describe()
        ));
    }
    let run = annals(PROMPT, &append_args(dir));
    check(&mut found, &run, 4, &[&name, "offset"], false);
    problems.extend(found.into_iter().map(|p| format!("{what}: {p}")));
}

/// Durable events vanish without a report (a): "After a clean close, zero
/// the bytes at the end of the newest segment's data so that they cover the
/// sync marker and the last 3 batches: `annals append` opens, discards
/// silently, exit 0." Those batches were synced (the marker and later
/// commits said so): every opener must refuse with exit 4 naming the file,
/// and repair's dry run must report the damage.
#[test]
fn zeroed_synced_batches_are_refused_not_silently_dropped() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    synced_store(dir, 8, 50);
    let segment = newest_segment(dir);
    let batches = batches(&segment);
    let marker = batches.last().unwrap();
    assert!(
        marker.events.is_empty(),
        "a clean close ends with a sync marker"
    );
    assert!(
        marker.synced_offset >= marker.start,
        "the marker vouches for every batch before it: {marker:?}"
    );
    // The last three event batches and the marker.
    let cut = batches[batches.len() - 4].start;
    cut_newest(dir, cut, true);
    let mut problems = Vec::new();
    expect_every_opener_refuses(
        dir,
        &segment,
        &format!("zeroed from offset {cut} (3 batches and the marker)"),
        &mut problems,
    );
    assert_no_problems(&problems);
}

/// Durable events vanish without a report (b): "Same with `truncate -s` of
/// the newest segment to cut it below its last batches: `annals append`
/// exits 4, not 0." Cut just after the first batch, and at the first 4096
/// boundary after it.
#[test]
fn truncated_synced_batches_are_refused_not_silently_dropped() {
    let mut problems = Vec::new();
    for round_to_page in [false, true] {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        // 12 batches of about 1.6 KiB: several 4 KiB pages.
        synced_store(dir, 12, 500);
        let segment = newest_segment(dir);
        let batches = batches(&segment);
        let first_end = batches[0].end;
        let cut = if round_to_page {
            first_end.next_multiple_of(4096)
        } else {
            first_end
        };
        assert!(
            cut < batches[batches.len() - 2].start,
            "the cut removes synced batches: {cut} {batches:?}"
        );
        cut_newest(dir, cut, false);
        expect_every_opener_refuses(
            dir,
            &segment,
            &format!("truncated to {cut} bytes"),
            &mut problems,
        );
    }
    assert_no_problems(&problems);
}

/// A copy of a store as a process crash leaves it: batches appended with
/// `Durability::None` (no commit vouches for any of them), copied while the
/// writer still runs (no sync marker). Returns the newest segment and its
/// batches.
fn crashed_store(dir: &Path) -> (PathBuf, Vec<BatchAt>) {
    let live = tempfile::tempdir().unwrap();
    let store = Store::open(live.path(), small_segments()).unwrap();
    fill(&store, 6, 3, 2, 40);
    copy_store(live.path(), dir);
    drop(store);
    let segment = newest_segment(dir);
    let batches = batches(&segment);
    assert_eq!(batches.len(), 6, "no sync marker: {batches:?}");
    assert!(
        batches.iter().all(|b| b.synced_offset == 128),
        "nothing was synced, no commit vouches for any batch: {batches:?}"
    );
    (segment, batches)
}

/// Bytes of garbage written after the last batch to make a torn tail.
const GARBAGE: [u8; 24] = [0xAB; 24];

/// Durable events vanish without a report (c), the control case that must
/// keep passing: "a torn tail of data that was never synced is still
/// discarded quietly: `annals append` succeeds (exit 0)". Two tails: garbage
/// after the last batch, and a last batch whose first header word was never
/// stored (a crash during its copy).
#[test]
fn an_unsynced_torn_tail_is_still_discarded() {
    let mut problems = Vec::new();
    for half_written in [false, true] {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let d = path(dir);
        let (segment, batches) = crashed_store(dir);
        let kept = if half_written {
            // The last batch without its first header word: the log ends
            // before it, its other bytes are a torn tail.
            overwrite(&segment, batches[5].start, &[0u8; 8]);
            15
        } else {
            overwrite(&segment, batches[5].end, &GARBAGE);
            18
        };
        let what = if half_written {
            "last batch half written"
        } else {
            "garbage after the last batch"
        };
        let mut found = Vec::new();
        for args in [vec!["read", d], vec!["stats", d], vec!["verify", d]] {
            let run = annals(PROMPT, &args);
            check(&mut found, &run, 0, &[], false);
            if args[0] == "read" && run.stdout.lines().count() != kept {
                found.push(format!("read shows {kept} events? {}", run.describe()));
            }
        }
        let run = annals(PROMPT, &append_args(dir));
        check(&mut found, &run, 0, &[], false);
        let run = annals(PROMPT, &["read", d]);
        check(&mut found, &run, 0, &[], false);
        if run.stdout.lines().count() != kept + 1 {
            found.push(format!(
                "after the append, read shows {} events, not {}: {}",
                run.stdout.lines().count(),
                kept + 1,
                run.describe()
            ));
        }
        problems.extend(found.into_iter().map(|p| format!("{what}: {p}")));
    }
    assert_no_problems(&problems);
}

/// The `recovery` array of `annals stats --json`, or why there is none.
fn recovery_of(run: &Run) -> Result<Vec<Value>, String> {
    if run.code != Some(0) {
        return Err(run.describe());
    }
    let stats: Value = serde_json::from_str(run.stdout.trim()).map_err(|e| {
        format!(
            "stats --json is not one JSON object ({e}): {}",
            run.describe()
        )
    })?;
    match stats.get("recovery") {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(other) => Err(format!("\"recovery\" is not an array: {other}")),
        None => Err(format!("no \"recovery\" field: {}", run.stdout.trim())),
    }
}

/// What open repaired is never shown: after a crash left a torn tail,
/// `annals append` (which discards it) must say so on stderr — the file,
/// the offset and the bytes discarded — and `annals stats --json` (which
/// only stops before it) must list it in a `"recovery"` array of items with
/// `file`, `offset`, `bytes`, `what` and `action`; once discarded,
/// `"recovery": []`.
#[test]
fn open_reports_what_it_repaired() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let d = path(dir);
    let (segment, batches) = crashed_store(dir);
    let torn_at = batches.last().unwrap().end;
    overwrite(&segment, torn_at, &GARBAGE);
    let name = name_of(&segment);
    let mut problems = Vec::new();

    let stats = annals(PROMPT, &["stats", d, "--json"]);
    match recovery_of(&stats) {
        Err(why) => problems.push(format!("before the writer: {why}")),
        Ok(items) if items.is_empty() => problems.push(format!(
            "before the writer: \"recovery\" is empty, but a torn tail of {} bytes lies at \
             offset {torn_at} of {name}",
            GARBAGE.len()
        )),
        Ok(items) => {
            // Besides the torn tail, only the index checkpoint (derived
            // data, rebuilt in memory) may be listed: a crashed store's
            // checkpoint does not cover its active segment.
            let (tail, others): (Vec<&Value>, Vec<&Value>) = items
                .iter()
                .partition(|item| item["file"].as_str().is_some_and(|f| f.contains(&name)));
            if let Some(other) = others.iter().find(|item| {
                !item["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("index.checkpoint"))
            }) {
                problems.push(format!(
                    "before the writer: an item neither of {name} nor of the index checkpoint: {other}"
                ));
            }
            let item = tail.first().copied().unwrap_or(&Value::Null);
            let file_named = item["file"].as_str().is_some_and(|f| f.contains(&name));
            if tail.len() != 1
                || !file_named
                || item["offset"].as_u64() != Some(torn_at)
                || item["bytes"].as_u64() != Some(GARBAGE.len() as u64)
                || !item["what"].is_string()
                || !item["action"].is_string()
            {
                problems.push(format!(
                    "before the writer: expected an item with file {name}, offset {torn_at}, \
                     bytes {}, what and action; got {item}",
                    GARBAGE.len()
                ));
            }
        }
    }

    let run = annals(PROMPT, &append_args(dir));
    check(
        &mut problems,
        &run,
        0,
        &[&name, "discard", &torn_at.to_string()],
        false,
    );
    // The tail is gone, and so is the report.
    let stats = annals(PROMPT, &["stats", d, "--json"]);
    match recovery_of(&stats) {
        Err(why) => problems.push(format!("after the writer: {why}")),
        Ok(items) if !items.is_empty() => problems.push(format!(
            "after the writer discarded the tail, \"recovery\" still lists {items:?}"
        )),
        Ok(_) => {}
    }
    assert_no_problems(&problems);
}

/// A follower (`annals tail`) whose stdout lines and exit are collected.
struct Follower {
    child: Child,
    positions: Arc<Mutex<Vec<u64>>>,
    bad_lines: Arc<Mutex<Vec<String>>>,
    stderr: JoinHandle<Vec<u8>>,
    reader: JoinHandle<()>,
}

impl Follower {
    fn start(dir: &Path) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .args(["tail", path(dir)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        let positions = Arc::new(Mutex::new(Vec::new()));
        let bad_lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let positions = Arc::clone(&positions);
            let bad_lines = Arc::clone(&bad_lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|v| v["position"].as_u64())
                    {
                        Some(position) => positions.lock().unwrap().push(position),
                        None => bad_lines.lock().unwrap().push(line),
                    }
                }
            })
        };
        Follower {
            child,
            positions,
            bad_lines,
            stderr,
            reader,
        }
    }

    fn printed(&self) -> usize {
        self.positions.lock().unwrap().len()
    }

    /// Kills it if it still runs; returns its problems.
    fn stop(mut self, number: usize, events: u64) -> Vec<String> {
        let mut problems = Vec::new();
        let exited = self.child.try_wait().unwrap();
        if exited.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.reader.join().unwrap();
        let printed = self.positions.lock().unwrap().len();
        let stderr = String::from_utf8_lossy(&self.stderr.join().unwrap()).into_owned();
        if let Some(status) = exited {
            problems.push(format!(
                "tail {number} exited on its own ({status}) after {printed} events; stderr: {:?}",
                stderr.trim_end()
            ));
        }
        let positions = self.positions.lock().unwrap();
        if let Some(at) = (0..positions.len()).find(|&i| positions[i] != i as u64) {
            problems.push(format!(
                "tail {number}: line {at} has position {} (events must come 0, 1, 2, …)",
                positions[at]
            ));
        } else if positions.len() as u64 != events {
            problems.push(format!(
                "tail {number} printed {} events, not {events}; stderr: {:?}",
                positions.len(),
                stderr.trim_end()
            ));
        }
        let bad = self.bad_lines.lock().unwrap();
        if !bad.is_empty() {
            problems.push(format!(
                "tail {number}: {} lines without a position, first: {}",
                bad.len(),
                bad[0]
            ));
        }
        problems
    }
}

/// Checks one `annals read DIR` run beside the writer: exit 0, and the
/// events are positions 0, 1, 2, … (a prefix of the log).
fn check_concurrent_read(run: &Run, problems: &mut Vec<String>) {
    if run.code != Some(0) {
        problems.push(run.describe());
        return;
    }
    for (i, line) in run.stdout.lines().enumerate() {
        let position = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v["position"].as_u64());
        if position != Some(i as u64) {
            problems.push(format!(
                "read beside the writer: line {i} is {}",
                truncate(line, 200)
            ));
            return;
        }
    }
}

/// One round: a writer in this process (64 KiB segments, no syncs) appends
/// `events` events of `data_size` bytes in batches of 1 to 3 as fast as it
/// can, while 4 `annals tail` followers run, two loops run `annals stats`
/// and one runs `annals read`. Once the writer has closed, the followers
/// get time to catch up, then are killed. Returns every problem seen: a
/// stats or read run that failed, a read that is not a prefix of the log,
/// a follower that exited by itself or did not print exactly positions 0
/// to `events - 1` in order.
fn followers_beside_a_writer(events: u64, data_size: usize) -> Vec<String> {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let store = Store::open(&dir, small_segments()).unwrap();
    store
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[EventData::new("Tick", "first")],
        )
        .unwrap();
    let mut followers: Vec<Follower> = (0..4).map(|_| Follower::start(&dir)).collect();
    // Write only once every follower follows (has printed the first event),
    // so that they all read while the segments roll.
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline
        && followers
            .iter_mut()
            .any(|f| f.printed() == 0 && f.child.try_wait().unwrap().is_none())
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let writing = Arc::new(AtomicBool::new(true));
    // Two loops, one of `annals stats`, one of `annals read`: at least one
    // run each, then as long as the writer writes.
    let loop_of = |command: &'static str| {
        let writing = Arc::clone(&writing);
        let dir = dir.clone();
        std::thread::spawn(move || {
            let mut problems = Vec::new();
            let mut runs = 0;
            while runs == 0 || writing.load(Ordering::Relaxed) {
                let run = annals(LIMIT, &[command, path(&dir)]);
                if command == "read" {
                    check_concurrent_read(&run, &mut problems);
                } else if run.code != Some(0) {
                    problems.push(run.describe());
                }
                runs += 1;
            }
            (problems, runs)
        })
    };
    let loops = [loop_of("stats"), loop_of("stats"), loop_of("read")];
    let started = Instant::now();
    let mut position = 1;
    let mut batch = 1u64;
    while position < events {
        let count = (1 + batch % 3).min(events - position);
        let stream = format!("s-{}", batch % 7);
        let data: Vec<EventData> = (0..count)
            .map(|i| {
                let mut data = format!("{batch}/{i}/").into_bytes();
                data.resize(data_size.max(data.len()), b'.');
                EventData::new("Tick", data)
            })
            .collect();
        store.append(&stream, ExpectedVersion::Any, &data).unwrap();
        position += count;
        batch += 1;
    }
    store.close().unwrap();
    let write_time = started.elapsed();
    writing.store(false, Ordering::Relaxed);
    let segments = segment_files(&dir).len();

    // Let the followers catch up (or fail), then stop them.
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline
        && followers
            .iter_mut()
            .any(|f| (f.printed() as u64) < events && f.child.try_wait().unwrap().is_none())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut problems = Vec::new();
    for (number, follower) in followers.into_iter().enumerate() {
        problems.extend(follower.stop(number, events));
    }
    let mut runs = Vec::new();
    for one_loop in loops {
        let (loop_problems, loop_runs) = one_loop.join().unwrap();
        problems.extend(loop_problems);
        runs.push(loop_runs);
    }
    eprintln!(
        "followers_beside_a_writer: {events} events in {segments} segments written in \
         {write_time:?}; {} stats and {} read runs; {} problem(s)",
        runs[0] + runs[1],
        runs[2],
        problems.len()
    );
    problems
}

/// Rounds of [`followers_beside_a_writer`]; returns every problem, marked
/// with its round, and prints how many rounds failed.
fn rounds_of_followers(test: &str, rounds: u64, events: u64, data_size: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let mut failed_rounds = 0;
    for round in 0..rounds {
        let found = followers_beside_a_writer(events, data_size);
        failed_rounds += u64::from(!found.is_empty());
        problems.extend(found.into_iter().map(|p| format!("round {round}: {p}")));
    }
    eprintln!("{test}: {failed_rounds} of {rounds} rounds failed");
    problems
}

/// Followers fail beside a healthy writer: "`annals tail` exits 4 with
/// 'invalid batch' when the writer seals a segment between the follower's
/// scan and its footer read; `annals stats` exits 1 when a `.seg.tmp` is
/// renamed between listing and reading it; `annals read` once failed with
/// 'a segment is missing' when a segment appeared during the listing."
/// A healthy store must never look corrupt, or unreadable, to a reader.
///
/// The races are timing-dependent, so this only catches them often: two
/// rounds of 20,000 events with 1,000 bytes of data each (about 60 events
/// per 64 KiB segment, so the writer rolls to a new segment some 30 times
/// a second: 8-byte events roll ten times less often and hardly ever hit
/// the races in a debug build). About 20 s on 2 cores.
#[test]
fn followers_never_fail_beside_a_healthy_writer() {
    assert_no_problems(&rounds_of_followers(
        "followers_never_fail_beside_a_healthy_writer",
        2,
        20_000,
        1000,
    ));
}

/// The same, longer: `ANNALS_FOLLOWER_ROUNDS` rounds (default 10) of
/// `ANNALS_FOLLOWER_EVENTS` events (default 50,000) of
/// `ANNALS_FOLLOWER_DATA_BYTES` bytes of data (default 1,000).
#[test]
#[ignore = "long (minutes): run with --ignored"]
fn followers_never_fail_beside_a_healthy_writer_long() {
    let setting = |name: &str, default: u64| -> u64 {
        std::env::var(name).map_or(default, |v| v.parse().expect(name))
    };
    assert_no_problems(&rounds_of_followers(
        "followers_never_fail_beside_a_healthy_writer_long",
        setting("ANNALS_FOLLOWER_ROUNDS", 10),
        setting("ANNALS_FOLLOWER_EVENTS", 50_000),
        setting("ANNALS_FOLLOWER_DATA_BYTES", 1000) as usize,
    ));
}

/// The same race as [`followers_never_fail_beside_a_healthy_writer`]'s
/// `tail` failure ("exits 4 with 'invalid batch' when the writer seals a
/// segment between the follower's scan and its footer read"), through the
/// library: `annals tail` follows with the same function as
/// `Store::refresh` does. Two read-only stores refresh in a tight loop while
/// a writer appends 10,000 events of 1,000 bytes (about 170 segment rolls);
/// no refresh may fail. It catches the race far more often than the
/// command-line test: the readers spend most of their time between a scan
/// and a footer read.
#[test]
fn refresh_never_reports_corruption_beside_a_healthy_writer() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let store = Store::open(&dir, small_segments()).unwrap();
    store
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[EventData::new("Tick", "first")],
        )
        .unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let dir = dir.clone();
            let writing = Arc::clone(&writing);
            std::thread::spawn(move || {
                let reader = Store::open_read_only(&dir).unwrap();
                let mut refreshes = 0u64;
                while writing.load(Ordering::Relaxed) {
                    refreshes += 1;
                    if let Err(error) = reader.refresh() {
                        return Err(format!(
                            "refresh {refreshes} failed at position {}: {error}",
                            reader.next_position()
                        ));
                    }
                }
                // Everything the writer committed, once it has closed.
                reader.refresh().map_err(|e| format!("last refresh: {e}"))?;
                Ok(reader.next_position())
            })
        })
        .collect();
    let mut position = 1;
    let mut batch = 1u64;
    while position < 10_000 {
        let count = 1 + batch % 3;
        let events: Vec<EventData> = (0..count)
            .map(|i| {
                let mut data = format!("{batch}/{i}/").into_bytes();
                data.resize(1000, b'.');
                EventData::new("Tick", data)
            })
            .collect();
        store
            .append(&format!("s-{}", batch % 7), ExpectedVersion::Any, &events)
            .unwrap();
        position += count;
        batch += 1;
    }
    store.close().unwrap();
    writing.store(false, Ordering::Relaxed);
    let mut problems = Vec::new();
    for (number, reader) in readers.into_iter().enumerate() {
        match reader.join().unwrap() {
            Ok(seen) if seen == position => {}
            Ok(seen) => problems.push(format!(
                "reader {number} sees {seen} events, not {position}"
            )),
            Err(why) => problems.push(format!("reader {number}: {why}")),
        }
    }
    assert_no_problems(&problems);
}

/// A segment name that is not a regular file: "a FIFO named
/// `00000000000000000000.seg` makes `read`, `verify`, `stats`, `export` and
/// `tail` hang forever." Each must exit promptly with a non-zero code,
/// naming the file and saying it is not a regular file.
#[test]
fn a_segment_name_that_is_not_a_regular_file_is_refused_promptly() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let d = path(dir);
    let fifo = dir.join(annals::format::segment_file_name(0));
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success(), "mkfifo {}", fifo.display());
    let name = name_of(&fifo);
    // All at once, so that the hangs overlap.
    let deadline = Instant::now() + PROMPT;
    let running: Vec<Running> = [
        vec!["read", d],
        vec!["verify", d],
        vec!["stats", d],
        vec!["export", d],
        vec!["tail", d],
    ]
    .iter()
    .map(|args| Running::start(args))
    .collect();
    let mut problems = Vec::new();
    for run in running {
        let run = run.finish(deadline);
        let lower = run.output().to_lowercase();
        if run.code.is_none_or(|code| code == 0)
            || !lower.contains(&name)
            || !lower.contains("not a regular file")
        {
            problems.push(format!(
                "expected a prompt non-zero exit naming {name} and \"not a regular file\"; got {}",
                run.describe()
            ));
        }
    }
    assert_no_problems(&problems);
}

/// `verify --json`'s head as `HEX@POSITION`.
fn head_of(dir: &Path) -> String {
    let run = annals(LIMIT, &["verify", path(dir), "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    format!(
        "{}@{}",
        report["head"].as_str().unwrap(),
        report["head_position"]
    )
}

/// Copies the files of a store directory (as a copy or a crash would
/// leave them: taken while a writer runs, before close writes its marker).
fn copy_store(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `verify --expect-head` reports a truncated log with a wrong sentence.
/// Two logs that end before the expected head, with nothing in them
/// changed:
/// - a copy of the store made before the writer closed: all 45 events,
///   but not the sync marker that the head (recorded after the close, at
///   position 44) covers. Today: "rewritten history: after position 44 the
///   chain recomputed from genesis is …, but the expected head is …@44: the
///   log was changed at or before position 44" — nothing was changed, the
///   copy is shorter: it must say "truncated", never "rewritten";
/// - the store cut back by `repair --yes` to position 32, head at 44: must
///   say "truncated" and where the log ends (32).
///
/// Both exit 4, and a head recorded earlier still matches (exit 0).
#[test]
fn verify_expect_head_says_a_shorter_log_is_truncated() {
    let options = || {
        Options::default()
            .segment_size_bytes(64 * 1024)
            .durability(Durability::Always)
    };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let d = path(dir);
    synced_store(dir, 10, 50);
    let early = head_of(dir);
    assert!(early.ends_with("@29"), "{early}");
    let copy = tempfile::tempdir().unwrap();
    let store = Store::open(dir, options()).unwrap();
    fill(&store, 5, 3, 4, 50);
    copy_store(dir, copy.path());
    store.close().unwrap();
    let late = head_of(dir);
    assert!(late.ends_with("@44"), "{late}");
    assert_eq!(segment_files(dir).len(), 1);
    let mut problems = Vec::new();

    // The copy: every event up to 44, unchanged, without the final marker.
    let copied = annals(LIMIT, &["verify", path(copy.path())]);
    check(&mut problems, &copied, 0, &["positions 0..=44", "OK"], true);
    for json in [false, true] {
        let mut args = vec!["verify", path(copy.path()), "--expect-head", &late];
        if json {
            args.push("--json");
        }
        let run = annals(LIMIT, &args);
        check(&mut problems, &run, 4, &["truncated"], true);
        if run.output().contains("rewritten") {
            problems.push(format!(
                "a copy holding every event up to position 44 unchanged, without the sync \
                 marker after it, is reported as rewritten history: {}\nstdout:\n{}",
                run.describe(),
                run.stdout
            ));
        }
    }

    // The store cut back: damage the 12th batch (positions 33..=35), which
    // later commits vouch for; repair cuts the log back to position 32.
    let segment = newest_segment(dir);
    let event_batches: Vec<BatchAt> = batches(&segment)
        .into_iter()
        .filter(|b| !b.events.is_empty())
        .collect();
    let event = event_batches[11].events[0];
    flip_byte(
        &segment,
        event.body_offset() + u64::from(event.body_len) / 2,
    );
    let repair = annals(LIMIT, &["repair", d, "--yes"]);
    assert_eq!(repair.code, Some(0), "{}", repair.describe());
    assert!(
        repair.stdout.contains("the store opens: 33 events"),
        "{}",
        repair.stdout
    );
    // The early head is still in the log.
    let run = annals(LIMIT, &["verify", d, "--expect-head", &early]);
    check(&mut problems, &run, 0, &["matched", "OK"], true);
    // The late one is not: the log ends at position 32.
    for json in [false, true] {
        let mut args = vec!["verify", d, "--expect-head", &late];
        if json {
            args.push("--json");
        }
        let run = annals(LIMIT, &args);
        check(&mut problems, &run, 4, &["truncated", "32"], true);
        if run.output().contains("rewritten") {
            problems.push(format!(
                "a log cut back to position 32 is reported as rewritten history: {}",
                run.describe()
            ));
        }
    }
    assert_no_problems(&problems);
}

/// `repair` said "no damage found" on a sealed segment with stray bytes in
/// its free space, which a full-check open refuses. Repair's dry run must
/// report the damage and exit 4, as `verify` does.
#[test]
fn repair_reports_stray_bytes_in_a_sealed_segments_free_space() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let d = path(dir);
    let store = Store::open(dir, small_segments()).unwrap();
    // Batches of about 2.2 KiB: a sealed segment ends with free space.
    fill(&store, 60, 3, 4, 700);
    store.close().unwrap();
    let files = segment_files(dir);
    assert!(files.len() >= 2, "{files:?}");
    let sealed = &files[0];
    let data_end = 128 + footer_data_len(sealed);
    let footer_at = std::fs::metadata(sealed).unwrap().len() - 128;
    assert!(
        footer_at - data_end >= 32,
        "free space in the sealed segment: {data_end}..{footer_at}"
    );
    let stray_at = (data_end + (footer_at - data_end) / 2) / 8 * 8;
    overwrite(sealed, stray_at, &[0x5A; 8]);
    let name = name_of(sealed);

    let mut problems = Vec::new();
    let run = annals(PROMPT, &["verify", d]);
    check(&mut problems, &run, 4, &[&name], true);
    let run = annals(PROMPT, &["repair", d]);
    check(&mut problems, &run, 4, &[&name], true);
    if run.stdout.contains("no damage found") {
        problems.push(format!(
            "repair's dry run says \"no damage found\" on stray bytes at offset {stray_at} of \
             sealed {name}: {}",
            run.describe()
        ));
    }
    // The opens that read every byte refuse it, naming the file and the
    // stray bytes' offset. A default open does not read a checkpointed
    // sealed segment's free space, nor does any read: every event is there.
    for (what, result) in [
        (
            "writable open",
            Store::open(dir, small_segments().rebuild_index(true)).map(drop),
        ),
        (
            "read-only open",
            Store::open_read_only_rebuilding_index(dir).map(drop),
        ),
    ] {
        match result {
            Err(error)
                if error
                    .finding()
                    .is_some_and(|f| f.path == *sealed && f.offset == stray_at) => {}
            other => problems.push(format!(
                "a full-check {what} does not refuse the stray bytes at offset {stray_at} of \
                 {name}: {:?}",
                other.err()
            )),
        }
    }
    for (what, refusal) in [
        (
            "writable open",
            refusal::refusal(|| Store::open(dir, small_segments()), &[]),
        ),
        (
            "read-only open",
            refusal::refusal(|| Store::open_read_only(dir), &[]),
        ),
    ] {
        if let Some(refusal) = refusal {
            problems.push(format!(
                "a default {what} refuses bytes no read reaches: {}",
                refusal.error()
            ));
        }
    }
    assert_eq!(
        Store::open_read_only(dir).unwrap().next_position(),
        180,
        "every event is there"
    );
    let run = annals(PROMPT, &["verify", d]);
    check(&mut problems, &run, 4, &[&name], true);
    assert_no_problems(&problems);
}
