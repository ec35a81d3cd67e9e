//! Event-model features across close and reopen, under concurrency, and
//! against brute force.

mod common;

use std::sync::{Arc, Barrier};

use annals::{EventData, ExpectedVersion, Filter, Options, RecordedEvent, Store, Uuid};

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(annals::Durability::None)
}

#[test]
fn command_ids_and_event_ids_are_remembered_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let first = store
        .append_idempotent(
            "pay-1",
            "invoice",
            ExpectedVersion::NoStream,
            &[EventData::new("Paid", vec![1])],
        )
        .unwrap();
    let id = Uuid::now_v7();
    let with_id = [EventData::new("Noted", vec![2]).with_id(id)];
    let second = store
        .append("invoice", ExpectedVersion::Exact(1), &with_id)
        .unwrap();
    common::fill(&store, 400, 2, 3, 80); // roll a few segments in between
    store.close().unwrap();

    let store = Store::open(dir.path(), options()).unwrap();
    let again = store
        .append_idempotent(
            "pay-1",
            "invoice",
            ExpectedVersion::NoStream,
            &[EventData::new("Paid", vec![1])],
        )
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(
        store
            .append("invoice", ExpectedVersion::Exact(1), &with_id)
            .unwrap(),
        second
    );
    assert_eq!(store.stream_version("invoice"), 2);
}

#[test]
fn two_threads_sending_one_command_write_once_and_get_one_result() {
    for round in 0..50 {
        let store = Arc::new(Store::in_memory(options()).unwrap());
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|thread| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let events = [EventData::new("Done", vec![thread])];
                    store
                        .append_idempotent(
                            &format!("cmd-{round}"),
                            "s",
                            ExpectedVersion::NoStream,
                            &events,
                        )
                        .unwrap()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results[0], results[1]);
        assert_eq!(store.stream_version("s"), 1, "written once");
    }
}

#[test]
fn snapshots_survive_reopen_and_an_interrupted_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append(
            "cart",
            ExpectedVersion::NoStream,
            &[EventData::new("A", vec![1]), EventData::new("A", vec![2])],
        )
        .unwrap();
    store
        .save_snapshot("cart", 1, b"state at 1", Some("text"))
        .unwrap();
    store.close().unwrap();

    // A save interrupted before its rename leaves a temporary file: the
    // previous snapshot is still the one read, and the writer cleans up.
    let snapshot_dir = dir.path().join(annals::SNAPSHOT_DIR_NAME);
    let files: Vec<_> = std::fs::read_dir(&snapshot_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let temp = files[0].with_extension("tmp");
    std::fs::write(&temp, b"half a snapshot").unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    let snapshot = reader.load_snapshot("cart").unwrap().unwrap();
    assert_eq!(
        (
            snapshot.version,
            snapshot.data.as_slice(),
            snapshot.content_type.as_deref()
        ),
        (1, &b"state at 1"[..], Some("text"))
    );
    let store = Store::open(dir.path(), options()).unwrap();
    assert!(!temp.exists(), "the writer removed the interrupted save");
    assert_eq!(store.load_snapshot("cart").unwrap().unwrap().version, 1);
    assert!(matches!(
        reader.save_snapshot("cart", 2, b"x", None),
        Err(annals::Error::ReadOnly { .. })
    ));
    store.save_snapshot("cart", 2, b"state at 2", None).unwrap();
    assert_eq!(
        reader.load_snapshot("cart").unwrap().unwrap().data,
        b"state at 2"
    );

    // A damaged snapshot file is reported with its path, not silently used.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&files[0], &bytes).unwrap();
    let error = store.load_snapshot("cart").unwrap_err();
    assert!(
        error.is_corruption() && error.to_string().contains(&files[0].display().to_string()),
        "{error}"
    );
}

/// Filters, correlation ids and time search agree with a brute-force scan of
/// a random log, before and after reopen.
#[test]
fn queries_match_brute_force_on_a_random_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let mut seed = 42u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let categories = ["order-", "user-", "orders-", "invoice-"];
    let types = ["Placed", "Paid", "Shipped", "Cancelled"];
    for _ in 0..1500 {
        let stream = format!("{}{}", categories[next() as usize % 4], next() % 20);
        let events: Vec<EventData> = (0..1 + next() % 4)
            .map(|_| {
                let mut event = EventData::new(
                    types[next() as usize % 4],
                    vec![0u8; (next() % 200) as usize],
                );
                if next() % 3 == 0 {
                    event = event.with_correlation_id(format!("req-{}", next() % 30));
                }
                event
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
    }
    let check = |store: &Store| {
        let all: Vec<RecordedEvent> = store.read_all(0, usize::MAX).unwrap();
        let filters = [
            Filter::default().event_type("Paid"),
            Filter::default().stream_prefix("order-"),
            Filter::default()
                .stream_prefix("orders-")
                .event_type("Shipped")
                .event_type("Cancelled"),
            Filter::default(),
        ];
        for filter in &filters {
            for from in [0u64, 7, 1000, 3000] {
                let expected: Vec<_> = all
                    .iter()
                    .filter(|e| e.position >= from && filter.matches(&e.stream, &e.event_type))
                    .take(500)
                    .cloned()
                    .collect();
                assert_eq!(
                    store.read_all_filtered(from, 500, filter).unwrap(),
                    expected,
                    "{filter:?} from {from}"
                );
            }
        }
        for request in 0..30 {
            let id = format!("req-{request}");
            let expected: Vec<_> = all
                .iter()
                .filter(|e| e.correlation_id.as_deref() == Some(id.as_str()))
                .cloned()
                .collect();
            assert_eq!(store.read_correlated(&id).unwrap(), expected);
        }
        for probe in (0..all.len()).step_by(97) {
            let timestamp = all[probe].timestamp_ns;
            let expected = all
                .iter()
                .position(|e| e.timestamp_ns >= timestamp)
                .map(|p| p as u64);
            assert_eq!(store.position_at_or_after(timestamp).unwrap(), expected);
            let after = timestamp + 1;
            let expected = all
                .iter()
                .position(|e| e.timestamp_ns >= after)
                .map(|p| p as u64);
            assert_eq!(store.position_at_or_after(after).unwrap(), expected);
        }
    };
    check(&store);
    store.close().unwrap();
    check(&Store::open(dir.path(), options()).unwrap());
}

/// Counts bytes reported durable through the fault-injection hooks.
#[derive(Default)]
struct SyncCounter(std::sync::Mutex<u64>);

impl annals::hooks::StorageHooks for SyncCounter {
    fn after_sync(&self, _path: &std::path::Path, offset: u64, len: u64) {
        let mut end = self.0.lock().unwrap();
        *end = (*end).max(offset + len);
    }
}

#[test]
fn saving_a_snapshot_makes_the_events_it_covers_durable_first() {
    let dir = tempfile::tempdir().unwrap();
    let counter = Arc::new(SyncCounter::default());
    let options = Options::default()
        .durability(annals::Durability::None)
        .segment_size_bytes(1 << 20);
    let options = Options {
        hooks: annals::hooks::Hooks::new(counter.clone()),
        ..options
    };
    let store = Store::open(dir.path(), options).unwrap();
    let synced_at_open = *counter.0.lock().unwrap();
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            &[EventData::new("E", vec![7u8; 5000])],
        )
        .unwrap();
    assert_eq!(
        *counter.0.lock().unwrap(),
        synced_at_open,
        "Durability::None does not sync appends"
    );
    store.save_snapshot("s", 1, b"state", None).unwrap();
    assert!(
        *counter.0.lock().unwrap() >= synced_at_open + 5000,
        "the event was synced before the snapshot"
    );
}

#[test]
fn a_snapshot_past_the_end_of_its_stream_is_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            &[EventData::new("E", vec![1])],
        )
        .unwrap();
    store.close().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), backup.path().join(entry.file_name())).unwrap();
    }
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Exact(1),
            &[EventData::new("E", vec![2])],
        )
        .unwrap();
    store.save_snapshot("s", 2, b"at 2", None).unwrap();
    store.close().unwrap();
    // The log is restored from the older copy; the snapshot directory is not.
    for entry in std::fs::read_dir(backup.path()).unwrap() {
        let entry = entry.unwrap();
        let target = dir.path().join(entry.file_name());
        let _ = std::fs::remove_file(&target);
        std::fs::copy(entry.path(), &target).unwrap();
    }
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.stream_version("s"), 1);
    assert!(store.load_snapshot("s").unwrap().is_none());
}
