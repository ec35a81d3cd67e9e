//! `annals::tracing`: what a tracing event becomes in the store (fields with
//! their own types, stream, type, span ids as correlation and causation
//! ids), the queue's full behaviour (block or drop and count), the flush
//! guard, refusals counted and reported, and a child process logging
//! through the layer killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use annals::hooks::{Hooks, StorageHooks};
use annals::tracing::{FALLBACK_STREAM, FlushError, StreamKey, WhenFull};
use annals::{Durability, Limits, Options, RecordedEvent, Store, VerifyOptions};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;

/// Runs `log` with a subscriber of `layer` as this thread's default, then
/// drops the subscriber (the layer's last owner when no guard is kept: the
/// writer appends what is queued, syncs and stops).
fn log_with(layer: annals::tracing::AnnalsLayer, log: impl FnOnce()) {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log);
}

fn all_logged(dir: &Path) -> Vec<RecordedEvent> {
    Store::open_read_only(dir)
        .unwrap()
        .read_all(0, 100_000)
        .unwrap()
}

fn fields(event: &RecordedEvent) -> Value {
    assert_eq!(event.content_type.as_deref(), Some("msgpack"));
    event.decode().unwrap()
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug only
struct Point {
    x: i32,
    y: i32,
}

#[test]
fn fields_of_every_type_round_trip_with_their_own_types() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let error = std::io::Error::other("disk on fire");
    log_with(annals::tracing::layer(store), || {
        tracing::info!(
            negative = -5i64,
            big = u64::MAX,
            ratio = 0.25f64,
            ok = true,
            name = "ada",
            point = ?Point { x: 1, y: -2 },
            shown = %"display text",
            wide = -7i128,
            huge = u128::MAX,
            error = &error as &(dyn std::error::Error + 'static),
            "hello {}", "world"
        );
        tracing::warn!(name: "login", bytes = &b"\x01\x02\x03"[..], "named");
    });
    let events = all_logged(dir.path());
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first.stream, "tracing_layer", "the target by default");
    assert_eq!(first.event_type, "INFO");
    assert_eq!(first.correlation_id, None);
    let value = fields(first);
    assert_eq!(
        value,
        json!({
            "message": "hello world",
            "negative": -5,
            "big": u64::MAX,
            "ratio": 0.25,
            "ok": true,
            "name": "ada",
            "point": "Point { x: 1, y: -2 }",
            "shown": "display text",
            "wide": -7,
            "huge": u128::MAX.to_string(),
            "error": "disk on fire",
        })
    );
    // Their own types, not text: JSON would compare 0.25 and "0.25" unequal
    // already, but integers must also stay integers, floats floats.
    assert!(value["negative"].is_i64() && value["big"].is_u64() && value["ratio"].is_f64());
    // Each value in its smallest encoding, as rmp-serde writes it: the map
    // of a message and a small integer, byte for byte.
    let dir2 = tempfile::tempdir().unwrap();
    log_with(
        annals::tracing::layer(Store::open(dir2.path(), Options::default()).unwrap()),
        || tracing::info!(n = 3u64, "m"),
    );
    let data = &all_logged(dir2.path())[0].data;
    assert_eq!(
        data,
        &[
            0x82, 0xA7, b'm', b'e', b's', b's', b'a', b'g', b'e', 0xA1, b'm', 0xA1, b'n', 3
        ]
    );

    let second = &events[1];
    assert_eq!(
        second.event_type, "WARN login",
        "a named event keeps its name"
    );
    // Bytes are MessagePack binary (which JSON cannot show): bin8, length 3.
    assert!(
        second.data.windows(5).any(|w| w == [0xC4, 3, 1, 2, 3]),
        "{:?}",
        second.data
    );
}

#[test]
fn span_ids_become_correlation_and_causation_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let layer = annals::tracing::builder().spans(true).build(store);
    log_with(layer, || {
        let request = tracing::info_span!("request", path = "/pay");
        let _request = request.enter();
        tracing::info!("in request");
        {
            let step = tracing::debug_span!("step", n = 1u64);
            let _step = step.enter();
            tracing::info!("in step");
        }
        drop(_request);
        drop(request);
        tracing::info_span!("other").in_scope(|| tracing::info!("in other"));
        tracing::info!("outside");
    });
    let events = all_logged(dir.path());
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "INFO span.open request",
            "INFO",
            "DEBUG span.open step",
            "INFO",
            "DEBUG span.close step",
            "INFO span.close request",
            "INFO span.open other",
            "INFO",
            "INFO span.close other",
            "INFO",
        ]
    );
    let id = |i: usize| events[i].causation_id.clone().unwrap();
    let trace = |i: usize| events[i].correlation_id.clone().unwrap();
    let request = id(0);
    let step = id(2);
    assert_ne!(request, step);
    assert!(annals::Uuid::parse_str(&request).is_ok(), "{request}");
    // The span's own id is the root's correlation id.
    assert_eq!(trace(0), request);
    // An event in the request: caused by the request, in its trace.
    assert_eq!((id(1), trace(1)), (request.clone(), request.clone()));
    // An event in the step: caused by the step, still in the request's trace.
    assert_eq!((id(3), trace(3)), (step.clone(), request.clone()));
    assert_eq!((id(4), trace(4)), (step.clone(), request.clone()));
    assert_eq!(id(5), request);
    // Another root span: another trace, even if tracing reuses the span id.
    let other = id(6);
    assert_ne!(other, request);
    assert_eq!((id(7), trace(7)), (other.clone(), other.clone()));
    // Outside any span: no ids.
    assert_eq!(
        (&events[9].correlation_id, &events[9].causation_id),
        (&None, &None)
    );
    // A span's fields are its opening's data; its closing says how long it lasted.
    assert_eq!(fields(&events[0]), json!({"path": "/pay"}));
    assert!(fields(&events[5])["elapsed_ns"].is_u64());
}

#[test]
fn a_field_chooses_the_stream_in_the_event_or_its_spans() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let layer = annals::tracing::builder()
        .stream(StreamKey::Field("tenant"))
        .build(store);
    log_with(layer, || {
        tracing::info!(tenant = "acme", "own field");
        tracing::info_span!("request", tenant = "globex").in_scope(|| {
            tracing::info!("from the span");
            tracing::info_span!("inner").in_scope(|| tracing::info!("from an ancestor"));
            tracing::info!(tenant = 42u64, "the event's own wins");
        });
        tracing::info!("no tenant: the target");
        tracing::info!(tenant = "$system", "a system stream name is refused");
        tracing::info!(tenant = "", "so is an empty one");
        tracing::info!(target: "$sys", "and a target the store would refuse");
    });
    let streams: Vec<String> = all_logged(dir.path())
        .into_iter()
        .map(|e| e.stream)
        .collect();
    assert_eq!(
        streams,
        [
            "acme",
            "globex",
            "globex",
            "42",
            "tracing_layer",
            FALLBACK_STREAM,
            FALLBACK_STREAM,
            FALLBACK_STREAM
        ]
    );
}

#[test]
fn a_fixed_stream_takes_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let layer = annals::tracing::builder()
        .stream(StreamKey::Fixed(format!("svc-{}", 1).into()))
        .build(store);
    log_with(layer, || {
        tracing::info!("a");
        tracing::error!(target: "elsewhere", "b");
    });
    let events = all_logged(dir.path());
    assert!(events.iter().all(|e| e.stream == "svc-1"), "{events:?}");
    assert_eq!(events[1].event_type, "ERROR");
}

/// Storage hooks whose syncs wait at a gate while it is closed: a flush
/// then holds the writer thread, so that the queue fills.
#[derive(Default)]
struct SyncGate {
    closed: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicBool,
}

impl SyncGate {
    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }
    fn wait_until_held(&self) {
        while !self.waiting.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl StorageHooks for SyncGate {
    fn before_sync(&self, _: &Path, _: u64, _: u64) -> std::io::Result<()> {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            self.waiting.store(true, Ordering::SeqCst);
            closed = self.opened.wait(closed).unwrap();
        }
        self.waiting.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// A layer over a store whose syncs `gate` can hold, with a queue of 4.
fn gated_layer(
    dir: &Path,
    gate: &Arc<SyncGate>,
    when_full: WhenFull,
) -> annals::tracing::AnnalsLayer {
    let options = Options {
        hooks: Hooks::new(Arc::clone(gate) as Arc<dyn StorageHooks>),
        ..Options::default().durability(Durability::None)
    };
    let store = Store::open(dir, options).unwrap();
    annals::tracing::builder()
        .queue_capacity(4)
        .when_full(when_full)
        .build(store)
}

/// A writer held with one event (n = 0) written: a subscriber over
/// [`gated_layer`], a guard, and the thread whose flush the closed gate
/// holds (the writer thread waits in that flush's sync), so that the queue
/// of 4 fills.
struct HeldWriter {
    guard: annals::tracing::FlushGuard,
    dispatch: tracing::Dispatch,
    flusher: std::thread::JoinHandle<Result<(), FlushError>>,
}

fn held_writer(dir: &Path, gate: &Arc<SyncGate>, when_full: WhenFull) -> HeldWriter {
    let layer = gated_layer(dir, gate, when_full);
    let guard = layer.guard();
    let flushing = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!(n = 0u64, "before"));
    gate.close();
    let flusher = std::thread::spawn(move || flushing.flush());
    gate.wait_until_held();
    HeldWriter {
        guard,
        dispatch,
        flusher,
    }
}

/// The `n` field of every event in the store at `dir`.
fn logged_numbers(dir: &Path) -> Vec<u64> {
    all_logged(dir)
        .iter()
        .map(|e| fields(e)["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_full_queue_drops_and_counts_under_drop() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(SyncGate::default());
    let HeldWriter {
        guard,
        dispatch,
        flusher,
    } = held_writer(dir.path(), &gate, WhenFull::Drop);
    tracing::dispatcher::with_default(&dispatch, || {
        for n in 1..=10u64 {
            tracing::info!(n, "while held");
        }
    });
    // The queue holds 4; the other 6 were dropped at once, without waiting.
    assert_eq!(guard.stats().dropped, 6);
    gate.open();
    flusher.join().unwrap().unwrap();
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dropped, stats.failed), (5, 6, 0));
    assert_eq!(
        logged_numbers(dir.path()),
        [0, 1, 2, 3, 4],
        "the first four queued are kept, in order"
    );
}

#[test]
fn a_full_queue_blocks_under_block_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(SyncGate::default());
    let HeldWriter {
        guard,
        dispatch,
        flusher,
    } = held_writer(dir.path(), &gate, WhenFull::Block);
    let logged = Arc::new(AtomicUsize::new(0));
    let logger = {
        let (dispatch, logged) = (dispatch.clone(), Arc::clone(&logged));
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                for n in 1..=10u64 {
                    tracing::info!(n, "while held");
                    logged.fetch_add(1, Ordering::SeqCst);
                }
            });
        })
    };
    while logged.load(Ordering::SeqCst) < 4 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The fifth call waits for room as long as the writer is held.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(logged.load(Ordering::SeqCst), 4);
    gate.open();
    logger.join().unwrap();
    flusher.join().unwrap().unwrap();
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dropped), (11, 0));
    assert_eq!(logged_numbers(dir.path()), (0..=10).collect::<Vec<u64>>());
}

/// Counts the bytes made durable, to see that the guard's drop syncs.
#[derive(Default)]
struct SyncCount(AtomicUsize);

impl StorageHooks for SyncCount {
    fn after_sync(&self, _: &Path, _: u64, _: u64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_flush_guard_appends_and_syncs_everything_logged_before_its_drop() {
    const THREADS: u64 = 4;
    const EACH: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let syncs = Arc::new(SyncCount::default());
    // No background sync: only the guard can make these events durable.
    let options = Options {
        hooks: Hooks::new(Arc::clone(&syncs) as Arc<dyn StorageHooks>),
        ..Options::default().durability(Durability::None)
    };
    let layer = annals::tracing::layer(Store::open(dir.path(), options).unwrap());
    let guard = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let dispatch = &dispatch;
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    for n in 0..EACH {
                        tracing::info!(thread, n, "work");
                    }
                });
            });
        }
    });
    let syncs_before = syncs.0.load(Ordering::SeqCst);
    drop(guard);
    assert!(
        syncs.0.load(Ordering::SeqCst) > syncs_before,
        "the guard's drop synced"
    );
    // The subscriber (and its layer and writer) is still alive: the guard
    // alone wrote everything.
    let events = all_logged(dir.path());
    assert_eq!(events.len() as u64, THREADS * EACH);
    for thread in 0..THREADS {
        let numbers: Vec<u64> = events
            .iter()
            .map(fields)
            .filter(|f| f["thread"] == thread)
            .map(|f| f["n"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..EACH).collect::<Vec<u64>>(), "thread {thread}");
    }
    drop(dispatch);
}

#[test]
fn events_the_store_refuses_are_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_event_bytes: 1024,
        ..Limits::default()
    };
    let store = Store::open(dir.path(), Options::default().limits(limits)).unwrap();
    let layer = annals::tracing::layer(store);
    let guard = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(text = "x".repeat(2000).as_str(), "too big");
    });
    let error = guard.flush().unwrap_err();
    assert!(
        matches!(&error, FlushError::Store { message } if message.contains("max_event_bytes")),
        "{error}"
    );
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("small"));
    guard
        .flush()
        .expect("a later flush with no failure succeeds");
    let stats = guard.stats();
    assert_eq!((stats.written, stats.failed), (1, 1));
    assert!(stats.last_error.unwrap().contains("tracing_layer"));
    assert_eq!(all_logged(dir.path()).len(), 1);
}

const CHILD_ENV: &str = "ANNALS_TRACING_CHILD";
const CHILD_TEST_NAME: &str = "child_logs_until_killed";
/// The child's periodic sync interval.
const CHILD_SYNC_INTERVAL_MS: u64 = 20;

/// In the child: logs numbered events through the layer into a store with
/// `Durability::Periodic` until killed, and now and then flushes and
/// prints the last number the flush covered. In a normal run: nothing.
#[test]
fn child_logs_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let options = Options::default()
        .segment_size_bytes(256 * 1024) // rolls often
        .durability(Durability::Periodic {
            interval_ms: CHILD_SYNC_INTERVAL_MS,
        });
    let store = Store::open(&dir, options).unwrap();
    let layer = annals::tracing::builder().spans(true).build(store);
    let guard = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        println!("READY");
        for n in 0u64.. {
            let span = tracing::info_span!("request", n);
            let _entered = span.enter();
            tracing::info!(n, payload = "some text to fill segments", "step");
            if n % 500 == 499 {
                guard.flush().unwrap();
                println!("FLUSHED {n}");
            }
        }
    });
}

#[test]
fn a_child_killed_with_sigkill_leaves_a_store_that_opens_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                CHILD_TEST_NAME,
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut flushed = None;
        // Kill after a few flushes (later each round): mid-append, mid-roll.
        let mut flushes_left = 3 + round * 2;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("FLUSHED ") {
                flushed = Some(n.parse::<u64>().unwrap());
                flushes_left -= 1;
                if flushes_left == 0 {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(
            CHILD_SYNC_INTERVAL_MS * (round as u64 + 1),
        ));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let flushed = flushed.expect("the child flushed before it was killed");

        let report = annals::verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert_eq!(report.corruption_count, 0, "round {round}: {report:?}");
        // A writer opens it (recovery), then every flushed event is there,
        // in order, once, with no gap.
        drop(Store::open(dir.path(), Options::default()).unwrap());
        let numbers: Vec<u64> = all_logged(dir.path())
            .iter()
            .filter(|e| e.event_type == "INFO")
            .map(|e| fields(e)["n"].as_u64().unwrap())
            .collect();
        // Each round starts again at 0: take this round's run.
        let start = numbers.iter().rposition(|&n| n == 0).unwrap();
        let run = &numbers[start..];
        assert!(
            run.len() as u64 > flushed,
            "round {round}: {} ≤ {flushed}",
            run.len()
        );
        assert_eq!(
            run,
            (0..run.len() as u64).collect::<Vec<u64>>(),
            "round {round}"
        );
    }
}

/// Regression: a drain was limited by its events' data bytes alone, so a
/// drain of many small events with span ids (each record several times its
/// data) made a batch larger than a segment, which the store refused:
/// 1,464 events lost at once (found by the SIGKILL child with 256 KiB
/// segments). A drain is now limited by an estimate of whole records.
#[test]
fn regression_a_drain_of_small_events_fits_a_small_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size_bytes(64 * 1024);
    let layer = annals::tracing::layer(Store::open(dir.path(), options).unwrap());
    let guard = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info_span!("request").in_scope(|| {
            for n in 0..20_000u64 {
                tracing::info!(n, "x");
            }
        });
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.failed),
        (20_000, 0),
        "{:?}",
        stats.last_error
    );
}
