//! When appended bytes become durable, observed through the storage hooks.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals::hooks::{Hooks, StorageHooks};
use annals::{Durability, EventData, ExpectedVersion, Options, Store};

/// Records the end of the furthest range reported durable, per file.
#[derive(Default)]
struct DurableEnds(Mutex<Vec<(std::path::PathBuf, u64)>>);

impl DurableEnds {
    fn end_of_newest(&self) -> u64 {
        let ends = self.0.lock().unwrap();
        let newest = ends.iter().map(|(p, _)| p.clone()).max();
        ends.iter()
            .filter(|(p, _)| Some(p) == newest.as_ref())
            .map(|(_, e)| *e)
            .max()
            .unwrap_or(0)
    }
}

impl StorageHooks for DurableEnds {
    fn after_sync(&self, path: &Path, offset: u64, len: u64) {
        self.0
            .lock()
            .unwrap()
            .push((path.to_path_buf(), offset + len));
    }
}

fn options(durability: Durability, ends: &Arc<DurableEnds>) -> Options {
    let options = Options::default()
        .segment_size_bytes(1 << 20)
        .durability(durability);
    Options {
        hooks: Hooks::new(ends.clone()),
        ..options
    }
}

#[test]
fn always_returns_only_after_the_batch_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let ends = Arc::new(DurableEnds::default());
    let store = Store::open(dir.path(), options(Durability::Always, &ends)).unwrap();
    let mut previous = ends.end_of_newest();
    for i in 0..20u64 {
        store
            .append(
                "s",
                ExpectedVersion::Exact(i),
                &[EventData::new("E", vec![1u8; 1000])],
            )
            .unwrap();
        let now = ends.end_of_newest();
        assert!(
            now >= previous + 1000,
            "append {i} returned before its bytes were synced"
        );
        previous = now;
    }
}

#[test]
fn periodic_syncs_in_the_background_and_close_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let ends = Arc::new(DurableEnds::default());
    let store = Store::open(
        dir.path(),
        options(Durability::Periodic { interval_ms: 5 }, &ends),
    )
    .unwrap();
    let before = ends.end_of_newest();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("E", vec![1u8; 5000])],
        )
        .unwrap();
    // Not synced by the append itself...
    assert!(ends.end_of_newest() < before + 5000);
    // ...but by the background thread soon after (bounded wait, no timing assertion).
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends.end_of_newest() < before + 5000 {
        assert!(Instant::now() < deadline, "the periodic sync never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    store.close().unwrap();
    // The lock is released at once: the background thread holds no store.
    Store::open(dir.path(), options(Durability::None, &ends)).unwrap();
}

#[test]
fn none_syncs_only_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let ends = Arc::new(DurableEnds::default());
    let store = Store::open(dir.path(), options(Durability::None, &ends)).unwrap();
    let before = ends.end_of_newest();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("E", vec![1u8; 5000])],
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        ends.end_of_newest() < before + 5000,
        "Durability::None synced an append"
    );
    store.flush().unwrap();
    assert!(ends.end_of_newest() >= before + 5000);
}

/// Refuses every allocation while `full` is set, and records every sync.
#[derive(Default)]
struct FullDisk {
    full: std::sync::atomic::AtomicBool,
    synced: Mutex<Vec<(std::path::PathBuf, u64, u64)>>,
}

impl StorageHooks for FullDisk {
    fn before_allocate(&self, _path: &Path, _bytes: u64) -> std::io::Result<()> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    fn after_sync(&self, path: &Path, offset: u64, len: u64) {
        self.synced
            .lock()
            .unwrap()
            .push((path.to_path_buf(), offset, len));
    }
}

/// A store whose newest segment is sealed (here: the roll sealed it, then
/// could not allocate the next one) is reopened, and the reopen syncs that
/// sealed segment whole before creating the next. Kept with the fix that
/// made `Segment::sync` use fdatasync: the sealed segment is mapped
/// read-only, where msync did nothing. This test only sees that the sync is
/// asked for and succeeds (the hooks are called around either system call);
/// `log::segment::tests::syncing_a_read_only_mapped_segment_writes_its_dirty_pages_back`
/// observes the page being written back.
#[test]
fn reopening_a_store_whose_newest_segment_is_sealed_syncs_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk::default());
    let options = Options {
        hooks: Hooks::new(disk.clone()),
        ..Options::default()
            .segment_size_bytes(64 * 1024)
            .durability(Durability::None)
    };
    let store = Store::open(dir.path(), options.clone()).unwrap();
    let event = [EventData::new("E", vec![1u8; 10_000])];
    for _ in 0..5 {
        store.append("s", ExpectedVersion::Any, &event).unwrap();
    }
    disk.full.store(true, std::sync::atomic::Ordering::SeqCst);
    let error = loop {
        if let Err(error) = store.append("s", ExpectedVersion::Any, &event) {
            break error;
        }
    };
    assert!(matches!(error, annals::Error::NoSpace { .. }), "{error}");
    let written = store.next_position();
    drop(store);
    let sealed = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max()
        .unwrap();
    assert!(std::fs::metadata(&sealed).unwrap().permissions().readonly());
    disk.full.store(false, std::sync::atomic::Ordering::SeqCst);
    disk.synced.lock().unwrap().clear();
    let store = Store::open(dir.path(), options).unwrap();
    assert!(
        disk.synced
            .lock()
            .unwrap()
            .contains(&(sealed.clone(), 0, 64 * 1024)),
        "the sealed newest segment was not synced whole on reopen"
    );
    assert_eq!(store.next_position(), written);
    store.append("s", ExpectedVersion::Any, &event).unwrap();
    store.close().unwrap();
}

/// Holds the periodic sync thread inside its sync for a while, and says when
/// it got there.
#[derive(Default)]
struct SlowPeriodicSync {
    entered: Mutex<bool>,
    wake: std::sync::Condvar,
}

impl StorageHooks for SlowPeriodicSync {
    fn before_sync(&self, _path: &Path, _offset: u64, _len: u64) -> std::io::Result<()> {
        if std::thread::current().name() == Some("annals-periodic-sync") {
            *self.entered.lock().unwrap() = true;
            self.wake.notify_all();
            // Long enough for the test to call `close` meanwhile.
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    }
}

/// Caught: the periodic sync thread dropped its stop-flag guard while it
/// synced, then took it again and waited a whole interval without looking
/// at the flag, so a `close` that came during a sync waited up to
/// `interval_ms`. A bounded wait for a hang, not a speed claim.
#[test]
fn close_during_a_periodic_sync_returns_without_waiting_an_interval() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Arc::new(SlowPeriodicSync::default());
    let options = Options {
        hooks: Hooks::new(hooks.clone()),
        ..Options::default()
            .segment_size_bytes(1 << 20)
            .durability(Durability::Periodic { interval_ms: 5000 })
    };
    let store = Store::open(dir.path(), options).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("E", vec![1; 100])],
        )
        .unwrap();
    // The first periodic sync starts after one interval.
    let entered = hooks.entered.lock().unwrap();
    let (entered, timeout) = hooks
        .wake
        .wait_timeout_while(entered, Duration::from_secs(60), |entered| !*entered)
        .unwrap();
    assert!(!timeout.timed_out(), "the periodic sync never ran");
    drop(entered);
    let start = Instant::now();
    store.close().unwrap();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "close took {took:?} with a 5 s sync interval"
    );
}

/// Every segment file of `dir` and its bytes, in name order.
fn segment_bytes(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Caught: closing a writable store appended a sync marker and synced it
/// even when nothing had been appended since it was opened (the marker only
/// checked that everything written was durable), so every open, read and
/// close of a store wrote to it and grew its segment.
#[test]
fn closing_a_store_that_appended_nothing_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ends = Arc::new(DurableEnds::default());
    let store = Store::open(dir.path(), options(Durability::Always, &ends)).unwrap();
    for i in 0..3u64 {
        store
            .append(
                "s",
                ExpectedVersion::Exact(i),
                &[EventData::new("E", vec![1; 100])],
            )
            .unwrap();
    }
    store.close().unwrap();
    let cleanly_closed = segment_bytes(dir.path());
    for durability in [
        Durability::Always,
        Durability::None,
        Durability::Periodic { interval_ms: 1 },
    ] {
        let store = Store::open(dir.path(), options(durability, &ends)).unwrap();
        assert_eq!(store.read_stream("s", 1, usize::MAX).unwrap().len(), 3);
        assert_eq!(store.read_all(0, usize::MAX).unwrap().len(), 3);
        let syncs_after_open = ends.0.lock().unwrap().len();
        store.close().unwrap();
        assert_eq!(
            ends.0.lock().unwrap().len(),
            syncs_after_open,
            "closing a store that appended nothing synced ({durability:?})"
        );
        assert!(
            segment_bytes(dir.path()) == cleanly_closed,
            "closing a store that appended nothing changed its segments ({durability:?})"
        );
    }
    // A store that appends again writes its marker again.
    let store = Store::open(dir.path(), options(Durability::Always, &ends)).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Exact(3),
            &[EventData::new("E", vec![1; 100])],
        )
        .unwrap();
    store.close().unwrap();
    assert_eq!(
        Store::open_read_only(dir.path())
            .unwrap()
            .stream_version("s"),
        4
    );
}
