//! `annals ship` and `annals receive` against a real nats-server with
//! JetStream (see `nats_server` for where it comes from): events shipped
//! while a writer appends, exactly once and in order across SIGKILLs of the
//! shipper, two shippers at once and a server restart; a category filter;
//! clear errors for bad input; a store rebuilt by `receive`.

mod common;
mod nats_server;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use annals::ship::message::{HEADER_MESSAGE_ID, HEADER_STORE_ID, event_of};
use annals::ship::{Phase, ShipOptions, ship_blocking};
use annals::{Durability, EventData, ExpectedVersion, Filter, Options, RecordedEvent, Store};
use nats_server::{Server, Stored, all_messages, create_stream, free_port, wait_for_sequence};

/// Longest wait for shipping to reach the end: a bound so that a broken
/// shipper fails the test instead of hanging it, not a timing assertion.
const CATCH_UP: Duration = Duration::from_secs(90);

/// A name for this test's JetStream stream and subject prefix, unique on a
/// shared server.
fn unique(test: &str) -> (String, String) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tag = format!("{test}_{}_{nanos}", std::process::id());
    (format!("S_{tag}"), format!("p_{tag}"))
}

/// A seed from `ANNALS_SEED`, or the clock; printed so a failure can be replayed.
fn seed() -> u64 {
    let seed = std::env::var("ANNALS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("ANNALS_SEED={seed}");
    seed
}

/// xorshift64*: enough randomness for kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn annals() -> Command {
    Command::new(env!("CARGO_BIN_EXE_annals"))
}

fn ship_args(dir: &Path, url: &str, stream: &str, prefix: &str) -> Vec<String> {
    vec![
        "ship".into(),
        dir.display().to_string(),
        "--to".into(),
        url.into(),
        "--stream".into(),
        stream.into(),
        "--subject-prefix".into(),
        prefix.into(),
    ]
}

/// Starts `annals` with `args`, output captured.
fn spawn(args: &[String]) -> Child {
    annals()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the annals binary runs")
}

/// Runs `annals` with `args` to the end (bounded by the command's own
/// `--give-up-after` and `--once`).
fn run(args: &[String]) -> Output {
    annals()
        .args(args)
        .output()
        .expect("the annals binary runs")
}

/// Kills a child with SIGKILL and returns what it wrote on stderr.
fn kill(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    stderr
}

fn event(stream: &str, n: u64) -> EventData {
    EventData::new("Happened", format!("{stream}:{n}").into_bytes())
        .with_correlation_id(format!("c-{n}"))
        .with_metadata(format!("{{\"n\": {n}}}").into_bytes())
}

/// Appends `count` events in batches of 1 to 4 over `streams` streams.
fn append_events(store: &Store, count: u64, streams: &[&str], rng: &mut Rng) {
    let mut appended = 0;
    while appended < count {
        let stream = streams[rng.below(streams.len() as u64) as usize];
        let batch: Vec<EventData> = (0..(1 + rng.below(4)).min(count - appended))
            .map(|i| event(stream, appended + i))
            .collect();
        store.append(stream, ExpectedVersion::Any, &batch).unwrap();
        appended += batch.len() as u64;
    }
}

/// Checks that the JetStream stream holds `expected`, one message per
/// event, in order, from sequence 1, each with the layout of
/// `docs/shipping.md`.
#[track_caller]
fn assert_shipped_exactly(messages: &[Stored], expected: &[RecordedEvent], prefix: &str) {
    let positions: Vec<u64> = messages
        .iter()
        .map(|m| m.header("Annals-Position").unwrap().parse().unwrap())
        .collect();
    let wanted: Vec<u64> = expected.iter().map(|e| e.position).collect();
    assert_eq!(positions, wanted, "positions in the JetStream stream");
    let store_id = messages.first().and_then(|m| m.header(HEADER_STORE_ID));
    for (message, event) in messages.iter().zip(expected) {
        let shipped = event_of(|name| message.header(name), &message.payload).unwrap();
        assert_eq!(&shipped, event, "message {}", message.sequence);
        assert_eq!(message.header(HEADER_STORE_ID), store_id);
        assert_eq!(
            message.header(HEADER_MESSAGE_ID).unwrap(),
            format!("{}:{}", store_id.unwrap(), event.position)
        );
        let category = event.stream.split('-').next().unwrap();
        assert_eq!(
            message.subject,
            format!("{prefix}.{category}.{}", event.stream)
        );
    }
}

/// A writer appending in a thread of this process until stopped, while
/// shippers run in other processes.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(store: Arc<Store>, streams: &'static [&'static str], total: u64, seed: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            let mut appended = 0;
            while appended < total && !flag.load(Ordering::Relaxed) {
                append_events(&store, 10, streams, &mut rng);
                appended += 10;
                std::thread::sleep(Duration::from_millis(rng.below(4)));
            }
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) {
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const STREAMS: &[&str] = &["order-1", "order-2", "account-1", "account-2", "invoice-9"];

fn open_writer(dir: &Path) -> Arc<Store> {
    let options = common::small_segments().durability(Durability::None);
    Arc::new(Store::open(dir, options).unwrap())
}

#[test]
fn ships_every_event_in_order_while_a_writer_appends_in_another_process() {
    let Some(server) = Server::shared_or_own("ships_while_appending") else {
        return;
    };
    let (name, prefix) = unique("live");
    create_stream(&server.url, &name, &[&format!("{prefix}.>")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    store
        .append("order-1", ExpectedVersion::Any, &[event("order-1", 0)])
        .unwrap();
    let mut args = ship_args(dir.path(), &server.url, &name, &prefix);
    args.push("--json".into());
    let mut shipper = spawn(&args);
    // Drain the JSON progress lines so the shipper never blocks on them.
    let stdout = shipper.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        *sink.lock().unwrap() = text;
    });

    let writer = Writer::start(Arc::clone(&store), STREAMS, 2_000, seed());
    writer.finish();
    let total = store.next_position();
    wait_for_sequence(&server.url, &name, total, CATCH_UP);
    // Give a wrongly extra message a moment to show up before checking.
    std::thread::sleep(Duration::from_millis(200));
    kill(shipper);
    reader.join().unwrap();

    let expected = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(expected.len() as u64, total);
    assert_shipped_exactly(&all_messages(&server.url, &name), &expected, &prefix);
    let progress: Vec<serde_json::Value> = lines
        .lock()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(progress[0]["phase"], "resumed");
    let last = progress.last().unwrap();
    for key in ["shipped", "shipped_through", "writer_position", "lag"] {
        assert!(last[key].is_u64(), "{key} in {last}");
    }
}

#[test]
fn sigkilled_shippers_restarted_and_run_side_by_side_ship_each_event_once_in_order() {
    let Some(server) = Server::shared_or_own("sigkill") else {
        return;
    };
    let (name, prefix) = unique("kill");
    create_stream(&server.url, &name, &[&format!("{prefix}.>")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    let seed = seed();
    let mut rng = Rng(seed | 1);
    let writer = Writer::start(Arc::clone(&store), STREAMS, 3_000, seed.rotate_left(7));
    let base = ship_args(dir.path(), &server.url, &name, &prefix);
    for round in 0..12 {
        let mut args = base.clone();
        args.extend(["--max-in-flight".into(), (1 + rng.below(300)).to_string()]);
        let first = spawn(&args);
        // Every third round, a second shipper races the first.
        let second = (round % 3 == 2).then(|| spawn(&args));
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        kill(first);
        if let Some(second) = second {
            std::thread::sleep(Duration::from_millis(rng.below(100)));
            kill(second);
        }
    }
    writer.finish();
    let mut args = base.clone();
    args.push("--once".into());
    let finish = run(&args);
    assert!(
        finish.status.success(),
        "{}",
        String::from_utf8_lossy(&finish.stderr)
    );

    let expected = store.read_all(0, usize::MAX).unwrap();
    assert_shipped_exactly(&all_messages(&server.url, &name), &expected, &prefix);
}

#[test]
fn a_server_restart_is_ridden_out_and_a_server_gone_for_too_long_is_a_clear_error() {
    let Some(mut server) = Server::own("server_restart") else {
        return;
    };
    let (name, prefix) = unique("restart");
    create_stream(&server.url, &name, &[&format!("{prefix}.>")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    let mut rng = Rng(seed() | 1);
    append_events(&store, 300, STREAMS, &mut rng);
    let mut args = ship_args(dir.path(), &server.url, &name, &prefix);
    args.extend(["--give-up-after".into(), "3".into()]);
    let mut shipper = spawn(&args);
    wait_for_sequence(&server.url, &name, 300, CATCH_UP);

    server.stop();
    append_events(&store, 300, STREAMS, &mut rng);
    std::thread::sleep(Duration::from_millis(500));
    server.start();
    wait_for_sequence(&server.url, &name, 600, CATCH_UP);
    let expected = store.read_all(0, usize::MAX).unwrap();
    assert_shipped_exactly(&all_messages(&server.url, &name), &expected, &prefix);

    // Gone for longer than --give-up-after, while the shipper is idle: it
    // notices, stops and says why.
    server.stop();
    let deadline = Instant::now() + CATCH_UP;
    let status = loop {
        if let Some(status) = shipper.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the shipper did not give up");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    shipper
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("retrying in"), "{stderr}");
    assert!(
        stderr.contains(&format!("no NATS server at {}", server.url)),
        "{stderr}"
    );
    assert!(stderr.contains("giving up"), "{stderr}");
}

#[test]
fn a_category_filter_ships_that_category_with_its_positions_and_resumes_after_it() {
    let Some(server) = Server::shared_or_own("category") else {
        return;
    };
    let (name, prefix) = unique("category");
    create_stream(&server.url, &name, &[&format!("{prefix}.>")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    let mut rng = Rng(seed() | 1);
    append_events(&store, 400, STREAMS, &mut rng);
    let orders = |store: &Store| -> Vec<RecordedEvent> {
        store
            .read_all_filtered(0, usize::MAX, &Filter::default().stream_prefix("order-"))
            .unwrap()
    };

    // Through the library, on a read-only store beside the writer.
    let reader = Store::open_read_only(dir.path()).unwrap();
    let options = ShipOptions::new(&server.url, &name)
        .subject_prefix(&prefix)
        .filter(Filter::default().stream_prefix("order-"))
        .once(true);
    let mut reports = Vec::new();
    let done = ship_blocking(&reader, &options, |p| reports.push(p.clone())).unwrap();
    assert_eq!(done.phase, Phase::Done);
    assert_eq!(done.shipped, orders(&store).len() as u64);
    assert_eq!((done.shipped_through, done.lag), (400, 0));
    assert_eq!(reports.first().unwrap().phase, Phase::Resumed);
    assert_shipped_exactly(&all_messages(&server.url, &name), &orders(&store), &prefix);

    // More events; the command line resumes after the last order shipped.
    append_events(&store, 200, STREAMS, &mut rng);
    let mut args = ship_args(dir.path(), &server.url, &name, &prefix);
    args.extend(["--category".into(), "order-".into(), "--once".into()]);
    args.push("--json".into());
    let output = run(&args);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["phase"], "done");
    assert_eq!(last["lag"], 0);
    assert_eq!(last["writer_position"], 600);
    assert_shipped_exactly(&all_messages(&server.url, &name), &orders(&store), &prefix);
}

/// Runs `annals` with `args` and returns its exit code and stderr.
fn failing(args: &[String]) -> (i32, String) {
    let output = run(args);
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn bad_input_gets_a_clear_error() {
    let Some(server) = Server::shared_or_own("bad_input") else {
        return;
    };
    let (name, prefix) = unique("bad");
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    store
        .append("order-1", ExpectedVersion::Any, &[event("order-1", 0)])
        .unwrap();
    let base = ship_args(dir.path(), &server.url, &name, &prefix);
    let with = |extra: &[&str]| {
        let mut args = base.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--once".into());
        args
    };

    // No server.
    let nobody = format!("nats://127.0.0.1:{}", free_port());
    let mut args = ship_args(dir.path(), &nobody, &name, &prefix);
    args.extend(["--give-up-after".into(), "0.5".into()]);
    let (code, stderr) = failing(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("no NATS server at {nobody}")),
        "{stderr}"
    );

    // No such JetStream stream.
    let (code, stderr) = failing(&with(&[]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("has no JetStream stream \"{name}\"")),
        "{stderr}"
    );

    // Invalid subject prefixes and URLs, refused before anything is contacted.
    for bad in ["a b", "a.*", "a.>", "a..b", ""] {
        let mut args = base.clone();
        let at = args.iter().position(|a| a == &prefix).unwrap();
        args[at] = bad.into();
        let (code, stderr) = failing(&args);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("invalid subject prefix"),
            "{bad:?}: {stderr}"
        );
    }
    let mut args = ship_args(dir.path(), "http://127.0.0.1:1", &name, &prefix);
    args.push("--once".into());
    let (code, stderr) = failing(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not a NATS server URL"), "{stderr}");

    // A stream whose subjects do not include the prefix.
    create_stream(&server.url, &name, &[&format!("other_{prefix}.>")]);
    let (code, stderr) = failing(&with(&[]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("subject \"{prefix}.order.order-1\" is not stored")),
        "{stderr}"
    );

    // A stream that another store shipped into.
    let (other_name, other_prefix) = unique("other");
    let mut args = ship_args(dir.path(), &server.url, &other_name, &other_prefix);
    args.extend(["--once".into(), "--create-stream".into()]);
    assert!(run(&args).status.success());
    let second = tempfile::tempdir().unwrap();
    let other = open_writer(second.path());
    other
        .append("order-1", ExpectedVersion::Any, &[event("order-1", 0)])
        .unwrap();
    let mut args = ship_args(second.path(), &server.url, &other_name, &other_prefix);
    args.push("--once".into());
    let (code, stderr) = failing(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("was shipped from another store"),
        "{stderr}"
    );

    // A store with the same first event (so the same id) that lacks events
    // already shipped: an import of the first line of the export.
    store
        .append("order-1", ExpectedVersion::Any, &[event("order-1", 1)])
        .unwrap();
    let mut args = ship_args(dir.path(), &server.url, &other_name, &other_prefix);
    args.push("--once".into());
    assert!(run(&args).status.success());
    let export = annals()
        .args(["export", &dir.path().display().to_string()])
        .output()
        .unwrap();
    let first_line = String::from_utf8(export.stdout).unwrap();
    let first_line = first_line.lines().next().unwrap().to_string();
    let shorter = tempfile::tempdir().unwrap();
    let shorter_dir = shorter.path().join("store");
    let mut import = annals()
        .args(["import", &shorter_dir.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(import.stdin.take().unwrap(), "{first_line}").unwrap();
    assert!(import.wait().unwrap().success());
    let mut args = ship_args(&shorter_dir, &server.url, &other_name, &other_prefix);
    args.push("--once".into());
    let (code, stderr) = failing(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the store lost events after they were shipped"),
        "{stderr}"
    );
}

#[test]
fn receive_rebuilds_the_store_exactly_even_when_killed_midway() {
    let Some(server) = Server::shared_or_own("receive") else {
        return;
    };
    let (name, prefix) = unique("receive");
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    let mut rng = Rng(seed() | 1);
    append_events(&store, 3_000, STREAMS, &mut rng);
    let mut args = ship_args(dir.path(), &server.url, &name, &prefix);
    args.extend(["--once".into(), "--create-stream".into()]);
    assert!(run(&args).status.success());

    let copy = tempfile::tempdir().unwrap();
    let copy_dir = copy.path().join("copy");
    let receive_args = |once: bool| {
        let mut args: Vec<String> = vec![
            "receive".into(),
            copy_dir.display().to_string(),
            "--from".into(),
            server.url.clone(),
            "--stream".into(),
            name.clone(),
        ];
        if once {
            args.push("--once".into());
        }
        args
    };
    for _ in 0..3 {
        let receiver = spawn(&receive_args(false));
        std::thread::sleep(Duration::from_millis(50 + rng.below(300)));
        kill(receiver);
    }
    let done = run(&receive_args(true));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // Byte-identical exports: every stream, version, position, id, type,
    // timestamp, correlation id, metadata and data.
    store.flush().unwrap();
    let export = |dir: &Path| {
        let output = annals()
            .args(["export", &dir.display().to_string()])
            .output()
            .unwrap();
        assert!(output.status.success());
        output.stdout
    };
    let (original, received) = (export(dir.path()), export(&copy_dir));
    assert_eq!(original.len(), received.len());
    assert!(original == received, "the exports differ");

    // A store that was not received from this stream is refused.
    let stranger = tempfile::tempdir().unwrap();
    let other = Store::open(stranger.path(), Options::default()).unwrap();
    other
        .append("x-1", ExpectedVersion::Any, &[event("x-1", 0)])
        .unwrap();
    other.close().unwrap();
    let mut args = receive_args(true);
    args[1] = stranger.path().display().to_string();
    let (code, stderr) = failing(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the store was not received from this stream"),
        "{stderr}"
    );
}

#[test]
fn shipping_goes_on_across_a_retirement_and_never_skips_retired_events() {
    let Some(server) = Server::shared_or_own("retired") else {
        return;
    };
    let (name, prefix) = unique("retired");
    create_stream(&server.url, &name, &[&format!("{prefix}.>")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open_writer(dir.path());
    let mut rng = Rng(seed() | 1);
    append_events(&store, 3000, STREAMS, &mut rng);
    let options = ShipOptions::new(&server.url, &name)
        .subject_prefix(&prefix)
        .once(true);
    let reader = Store::open_read_only(dir.path()).unwrap();
    ship_blocking(&reader, &options, |_| {}).unwrap();
    drop(reader);
    let mut shipped = store.read_all(0, usize::MAX).unwrap();

    // The first segments go; shipping resumes as the same store (its id
    // comes from its first event, which the retention manifest keeps).
    let cut = store
        .retire_segments_before(2000, &annals::RetireOptions::default())
        .unwrap();
    assert!(cut.first_retained_position > 0);
    append_events(&store, 200, STREAMS, &mut rng);
    let reader = Store::open_read_only(dir.path()).unwrap();
    let done = ship_blocking(&reader, &options, |_| {}).unwrap();
    assert_eq!(done.phase, Phase::Done);
    shipped.extend(store.read_all(3000, usize::MAX).unwrap());
    assert_shipped_exactly(&all_messages(&server.url, &name), &shipped, &prefix);

    // A stream that never got the retired events cannot start from 0.
    let (fresh, fresh_prefix) = unique("retired_fresh");
    create_stream(&server.url, &fresh, &[&format!("{fresh_prefix}.>")]);
    let options = ShipOptions::new(&server.url, &fresh)
        .subject_prefix(&fresh_prefix)
        .once(true);
    let error = ship_blocking(&reader, &options, |_| {}).unwrap_err();
    assert!(
        matches!(error, annals::ship::ShipError::Retired { from: 0, .. }),
        "{error}"
    );
    assert!(all_messages(&server.url, &fresh).is_empty());
}
