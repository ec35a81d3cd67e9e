//! Catch-up subscriptions in one process, and a follower in another process.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{Durability, EventData, ExpectedVersion, Filter, Options, RecordedEvent, Store};

const WAIT: Duration = Duration::from_secs(60);

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None)
}

/// Collects `count` events from a subscription, failing after `WAIT`.
fn take(subscription: &mut annals::Subscription, count: usize) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {} of {count} events",
            out.len()
        );
        if let Some(event) = subscription.next_timeout(left).unwrap() {
            out.push(event);
        }
    }
    out
}

/// A writer thread appends random batches while subscribers that started at
/// the beginning, the middle and the end each see exactly the expected
/// sequence, with no gap and no duplicate at the switch from history to live.
#[test]
fn subscribers_from_start_middle_and_end_see_exactly_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), options()).unwrap());
    let history = common::fill(&store, 200, 3, 5, 40).len() as u64;
    let mut seed = 7u64;
    let batches: Vec<(String, usize)> = (0..300)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (format!("live-{}", seed % 4), 1 + (seed >> 60) as usize)
        })
        .collect();
    let live: u64 = batches.iter().map(|b| b.1 as u64).sum();
    let total = history + live;

    let mut from_start = store.subscribe_all(0, Filter::default());
    let mut from_middle = store.subscribe_all(history / 2, Filter::default());
    let mut from_end = store.subscribe_all(history, Filter::default());
    let mut one_stream = store.subscribe_stream("live-1", 1, Filter::default());
    let writer = {
        let store = Arc::clone(&store);
        let batches = batches.clone();
        std::thread::spawn(move || {
            for (stream, size) in batches {
                let events: Vec<EventData> = (0..size)
                    .map(|i| EventData::new("L", vec![i as u8]))
                    .collect();
                store
                    .append(&stream, ExpectedVersion::Any, &events)
                    .unwrap();
            }
        })
    };
    let start = take(&mut from_start, total as usize);
    let middle = take(&mut from_middle, (total - history / 2) as usize);
    let end = take(&mut from_end, live as usize);
    let expected_stream = batches
        .iter()
        .filter(|b| b.0 == "live-1")
        .map(|b| b.1)
        .sum::<usize>();
    let stream = take(&mut one_stream, expected_stream);
    writer.join().unwrap();

    let log = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(start, log);
    assert_eq!(middle, log[(history / 2) as usize..].to_vec());
    assert_eq!(end, log[history as usize..].to_vec());
    let live_1: Vec<_> = log
        .iter()
        .filter(|e| e.stream == "live-1")
        .cloned()
        .collect();
    assert_eq!(stream, live_1);
    for subscription in [
        &mut from_start,
        &mut from_middle,
        &mut from_end,
        &mut one_stream,
    ] {
        assert!(
            subscription
                .next_timeout(Duration::from_millis(10))
                .unwrap()
                .is_none(),
            "no duplicates"
        );
    }
}

/// A subscriber that stalls while the writer keeps appending catches up
/// afterwards, and the writer was never held back by it.
#[test]
fn a_stalled_subscriber_catches_up() {
    let store = Store::in_memory(options()).unwrap();
    let mut subscription = store.subscribe_all(0, Filter::default().stream_prefix("keep-"));
    common::fill(&store, 10, 2, 2, 10);
    store
        .append(
            "keep-1",
            ExpectedVersion::Any,
            &[EventData::new("K", vec![1])],
        )
        .unwrap();
    assert_eq!(take(&mut subscription, 1)[0].stream, "keep-1");
    // Stall: many times the read-ahead is appended while nobody reads.
    for i in 0..(annals::SUBSCRIPTION_READ_AHEAD * 5) {
        let stream = if i % 2 == 0 { "keep-2" } else { "drop-2" };
        store
            .append(
                stream,
                ExpectedVersion::Any,
                &[EventData::new("K", vec![(i % 256) as u8])],
            )
            .unwrap();
    }
    let caught_up = take(&mut subscription, annals::SUBSCRIPTION_READ_AHEAD * 5 / 2);
    assert!(caught_up.iter().all(|e| e.stream == "keep-2"));
    assert!(
        caught_up
            .windows(2)
            .all(|w| w[0].position + 2 == w[1].position)
    );
    assert!(
        subscription
            .next_timeout(Duration::from_millis(10))
            .unwrap()
            .is_none()
    );
}

/// Entry point of the writer child process of the follower test: appends
/// `ANNALS_CHILD_BATCHES` batches to the store in `ANNALS_CHILD_DIR`, each
/// event's data naming its stream and version, then exits.
#[test]
#[ignore = "entry point of a child process, run by a_follower_in_another_process_sees_exactly_the_writers_log"]
fn child_writer_process() {
    let Ok(dir) = std::env::var("ANNALS_CHILD_DIR") else {
        return;
    };
    let batches: u64 = std::env::var("ANNALS_CHILD_BATCHES")
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(&dir, options()).unwrap();
    for batch in 0..batches {
        let stream = format!("s-{}", batch % 3);
        let version = store.stream_version(&stream);
        let events: Vec<EventData> = (1..=3)
            .map(|i| {
                EventData::new("W", format!("{stream}@{}", version + i).into_bytes())
                    .with_metadata(vec![b'm'; 100])
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Exact(version), &events)
            .unwrap();
        if batch % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    store.close().unwrap();
}

fn run_writer_process(dir: &std::path::Path, batches: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer_process", "--ignored", "--quiet"])
        .env("ANNALS_CHILD_DIR", dir)
        .env("ANNALS_CHILD_BATCHES", batches.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A read-only store in this process follows a writer in another process
/// across many segment rolls and a writer restart, and ends with exactly the
/// writer's log: every event, in order, each batch whole.
#[test]
fn a_follower_in_another_process_sees_exactly_the_writers_log() {
    let dir = tempfile::tempdir().unwrap();
    let follower = Store::open_read_only(dir.path()).unwrap();
    let mut subscription = follower.subscribe_all(0, Filter::default());
    let mut writer = run_writer_process(dir.path(), 600);
    let first = take(&mut subscription, 600 * 3);
    assert!(writer.wait().unwrap().success());
    // The writer restarts and appends more; the follower keeps going.
    let mut writer = run_writer_process(dir.path(), 300);
    let second = take(&mut subscription, 300 * 3);
    assert!(writer.wait().unwrap().success());

    let seen: Vec<RecordedEvent> = first.into_iter().chain(second).collect();
    let reopened = Store::open_read_only(dir.path())
        .unwrap()
        .read_all(0, usize::MAX)
        .unwrap();
    assert_eq!(seen, reopened, "the follower saw exactly the writer's log");
    assert!(
        common::segment_files(dir.path()).len() > 4,
        "the test crossed segment rolls"
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for event in &seen {
        let version = versions.entry(&event.stream).or_default();
        *version += 1;
        assert_eq!(event.version, *version);
        assert_eq!(
            event.data,
            format!("{}@{}", event.stream, event.version).into_bytes()
        );
    }
    assert!(
        subscription
            .next_timeout(Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
}

/// Caught: a `Subscription` holds the store's engine, and the engine held
/// the writer lock file, so after `close` (or dropping the store) a live
/// subscription kept the lock and a reopen failed with `Locked`.
#[test]
fn a_live_subscription_does_not_keep_the_writer_lock_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    let _closed_with = store.subscribe_all(0, Filter::default());
    store.close().unwrap();
    let store = Store::open(dir.path(), options())
        .unwrap_or_else(|e| panic!("reopen after close with a live subscription: {e}"));
    let _dropped_with = store.subscribe_stream("s", 1, Filter::default());
    drop(store);
    let store = Store::open(dir.path(), options())
        .unwrap_or_else(|e| panic!("reopen after drop with a live subscription: {e}"));
    assert_eq!(store.stream_version("s"), 1);
}

/// Runs `f` on another thread and returns its result, or `None` if it has
/// not returned after `WAIT` (the thread is then left behind).
fn within_wait<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver.recv_timeout(WAIT).ok()
}

/// Caught: a subscription on a closed store waited for commits that could
/// never come: its iterator never ended and `next_timeout` waited out its
/// whole timeout. Now it ends at once when its store is closed or dropped.
#[test]
fn a_subscription_ends_when_its_store_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let iterated = store.subscribe_all(0, Filter::default());
    let mut polled = store.subscribe_stream("s", 1, Filter::default());
    let consumer = std::thread::spawn(move || iterated.map(Result::unwrap).count());
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    assert_eq!(take(&mut polled, 1).len(), 1);
    let reader = Store::open_read_only(dir.path()).unwrap();
    let follower = reader.subscribe_all(0, Filter::default());
    let following = std::thread::spawn(move || follower.map(Result::unwrap).count());
    let store_dir = store.dir().to_path_buf();
    store.close().unwrap();
    drop(reader);
    let ended = within_wait(move || (consumer.join().unwrap(), following.join().unwrap()));
    assert!(
        ended.is_some(),
        "a subscription's iterator did not end after its store was closed"
    );
    let waited = within_wait(move || polled.next_timeout(Duration::from_secs(3600)));
    match waited {
        Some(Err(annals::Error::Closed { dir })) => assert_eq!(dir, store_dir),
        other => panic!("next_timeout on a closed store gave {other:?}"),
    }
}
