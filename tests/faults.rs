//! Faults: a full disk (through the `before_allocate` hook, and a real 1 MiB
//! tmpfs when the test runs as root and may mount one), failed syncs (the
//! `before_sync` hook), and a second writer (in this process and in a child
//! process, which is this test binary re-executed with `ANNALS_FAULTS_CHILD`).
//!
//! A full disk is `Error::NoSpace`: nothing is written, reads go on, and
//! appends work again once space is free. A failed sync poisons the store:
//! that append and every later write fail with `Error::Poisoned` and write
//! nothing, reads go on, and a reopen recovers. A second writer gets
//! `Error::Locked`.

mod crashkit;

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use annals::hooks::{Hooks, StorageHooks};
use annals::{Durability, Error, EventData, ExpectedVersion, Options, Store};
use crashkit::Rng;

/// Spawning a process while another test closes and reopens a store can make
/// the reopen fail with `Locked`: between fork and exec the child shares the
/// parent's open file descriptions, and with them the flock of a lock file
/// the parent just closed. Tests that spawn processes hold this exclusively,
/// the others shared.
static SPAWNS: RwLock<()> = RwLock::new(());

fn no_spawns() -> RwLockReadGuard<'static, ()> {
    SPAWNS.read().unwrap_or_else(|p| p.into_inner())
}

fn spawning() -> RwLockWriteGuard<'static, ()> {
    SPAWNS.write().unwrap_or_else(|p| p.into_inner())
}

const ENOSPC: i32 = 28;
const EIO: i32 = 5;
const EPERM: i32 = 1;

/// A disk that can be made full, and whose syncs can be made to fail.
#[derive(Default)]
struct FaultyDisk {
    full: AtomicBool,
    /// Syncs fail once this many more have succeeded (`u64::MAX`: never).
    syncs_before_failure: AtomicU64,
    allocations_refused: AtomicUsize,
    syncs_failed: AtomicUsize,
    /// Making a sealed segment read-only fails while this is set.
    refuse_read_only: AtomicBool,
    read_only_refused: AtomicUsize,
}

impl FaultyDisk {
    fn new() -> Arc<FaultyDisk> {
        let disk = FaultyDisk::default();
        disk.syncs_before_failure.store(u64::MAX, Ordering::SeqCst);
        Arc::new(disk)
    }

    fn fail_syncs(&self, after: u64) {
        self.syncs_before_failure.store(after, Ordering::SeqCst);
    }
}

impl StorageHooks for FaultyDisk {
    fn before_allocate(&self, _path: &Path, _bytes: u64) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            self.allocations_refused.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        Ok(())
    }

    fn before_sync(&self, _path: &Path, _offset: u64, _len: u64) -> io::Result<()> {
        let left = self.syncs_before_failure.load(Ordering::SeqCst);
        if left == 0 {
            self.syncs_failed.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(EIO));
        }
        if left != u64::MAX {
            self.syncs_before_failure.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn before_make_read_only(&self, _path: &Path) -> io::Result<()> {
        if self.refuse_read_only.load(Ordering::SeqCst) {
            self.read_only_refused.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(EPERM));
        }
        Ok(())
    }
}

fn options(durability: Durability, disk: &Arc<FaultyDisk>) -> Options {
    let mut options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(durability);
    options.hooks = Hooks::new(disk.clone());
    options
}

/// Appends batches of self-describing events, remembering the acknowledged ones.
struct Appender {
    rng: Rng,
    next_id: u64,
    acked: BTreeSet<u64>,
}

impl Appender {
    fn new(seed: u64) -> Appender {
        Appender {
            rng: Rng::new(seed),
            next_id: 0,
            acked: BTreeSet::new(),
        }
    }

    fn append(&mut self, store: &Store) -> annals::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let count = self.rng.range(1, 4) as u32;
        let events = crashkit::make_batch(id, count, 1_500, &mut self.rng);
        let stream = format!("s-{}", self.rng.below(4));
        store.append(&stream, ExpectedVersion::Any, &events)?;
        self.acked.insert(id);
        Ok(())
    }

    /// Checks the log and that every acknowledged batch is in it; returns
    /// the ids of the batches it holds.
    fn check(&self, store: &Store) -> BTreeSet<u64> {
        let seen: BTreeSet<u64> = crashkit::check_log(store)
            .unwrap()
            .iter()
            .map(|b| b.batch_id)
            .collect();
        let missing: Vec<_> = self.acked.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "acknowledged batches missing: {missing:?}"
        );
        seen
    }
}

/// Temporary files of segments being created. (An index file or the
/// checkpoint may be being written by the store's indexer thread at any
/// moment, under `….tmp` names: caught racing with this check.)
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".seg.tmp"))
        .collect()
}

fn assert_no_space(result: annals::Result<()>, what: &str) {
    match result {
        Err(Error::NoSpace { .. }) => {}
        Err(other) => panic!("{what}: expected NoSpace, got {other}"),
        Ok(()) => panic!("{what}: expected NoSpace, the append succeeded"),
    }
}

fn assert_poisoned(result: annals::Result<()>, what: &str) {
    match result {
        Err(error @ Error::Poisoned { .. }) => {
            assert!(
                error.to_string().contains("failed sync"),
                "{what}: the message does not say why: {error}"
            );
        }
        Err(other) => panic!("{what}: expected Poisoned, got {other}"),
        Ok(()) => panic!("{what}: expected Poisoned, it succeeded"),
    }
}

/// Appends until a roll hits the full disk; returns the NoSpace result.
fn append_until_full(store: &Store, appender: &mut Appender, disk: &FaultyDisk) -> Error {
    for _ in 0..10_000 {
        if let Err(error) = appender.append(store) {
            return error;
        }
        // Make the disk full once the store has rolled at least once.
        if crashkit::segment_files(store.dir()).len() > 1 {
            disk.full.store(true, Ordering::SeqCst);
        }
    }
    panic!("the disk never filled up");
}

#[test]
fn a_full_disk_during_a_roll_is_no_space_and_the_store_stays_usable() {
    let _spawns = no_spawns();
    for durability in [Durability::Always, Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let store = Store::open(dir.path(), options(durability, &disk)).unwrap();
        let mut appender = Appender::new(1);
        let error = append_until_full(&store, &mut appender, &disk);
        assert!(
            matches!(error, Error::NoSpace { .. }),
            "{durability:?}: a roll on a full disk gave {error}"
        );
        assert!(error.to_string().contains("no space left"), "{error}");
        assert!(disk.allocations_refused.load(Ordering::SeqCst) >= 1);
        assert!(
            temp_files(dir.path()).is_empty(),
            "a temporary file was left"
        );
        // Nothing was written; everything acknowledged reads back.
        let before = store.next_position();
        appender.check(&store);
        // While the disk stays full, every append fails and writes nothing.
        for _ in 0..5 {
            assert_no_space(appender.append(&store), "append on a full disk");
            assert_eq!(store.next_position(), before);
        }
        store.flush().unwrap();
        let reader = Store::open_read_only(dir.path()).unwrap();
        appender.check(&reader);
        drop(reader);
        // Space is free again: appends work, and everything survives a reopen.
        disk.full.store(false, Ordering::SeqCst);
        for _ in 0..20 {
            appender.append(&store).unwrap();
        }
        appender.check(&store);
        store.close().unwrap();
        let store = Store::open(dir.path(), options(durability, &disk)).unwrap();
        appender.check(&store);
    }
}

#[test]
fn reopening_while_the_disk_is_full() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let mut appender = Appender::new(2);
    let error = append_until_full(&store, &mut appender, &disk);
    assert!(matches!(error, Error::NoSpace { .. }), "{error}");
    store.close().unwrap();
    // The newest segment is sealed: a writer must create the next one, and
    // cannot. It says so; a reader still reads everything.
    match Store::open(dir.path(), options(Durability::Always, &disk)) {
        Err(Error::NoSpace { .. }) => {}
        Err(other) => panic!("expected NoSpace, got {other}"),
        Ok(_) => panic!("a segment was created on a full disk"),
    }
    assert!(
        temp_files(dir.path()).is_empty(),
        "a temporary file was left"
    );
    appender.check(&Store::open_read_only(dir.path()).unwrap());
    disk.full.store(false, Ordering::SeqCst);
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    appender.check(&store);
    appender.append(&store).unwrap();
    appender.check(&store);
}

#[test]
fn creating_a_store_on_a_full_disk_is_no_space() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    disk.full.store(true, Ordering::SeqCst);
    match Store::open(dir.path(), options(Durability::Always, &disk)) {
        Err(Error::NoSpace { .. }) => {}
        Err(other) => panic!("expected NoSpace, got {other}"),
        Ok(_) => panic!("a segment was created on a full disk"),
    }
    assert!(crashkit::segment_files(dir.path()).is_empty());
    assert!(temp_files(dir.path()).is_empty());
    disk.full.store(false, Ordering::SeqCst);
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let mut appender = Appender::new(3);
    appender.append(&store).unwrap();
    appender.check(&store);
}

/// A disk that says it is full by an error kind alone, without an errno (as
/// a layer between annals and the disk may): `StorageFull`, or
/// `QuotaExceeded` (the user's quota, EDQUOT).
struct FullByKind(io::ErrorKind);

impl StorageHooks for FullByKind {
    fn before_allocate(&self, _path: &Path, _bytes: u64) -> io::Result<()> {
        Err(self.0.into())
    }
}

/// Caught: a full disk was recognised by the raw errno 28 (ENOSPC) only, so
/// an error of kind `StorageFull` without an errno was a generic `Io` error.
#[test]
fn a_full_disk_is_recognised_by_its_error_kind() {
    let _spawns = no_spawns();
    // QuotaExceeded was a generic `Io` error too (EDQUOT).
    for kind in [io::ErrorKind::StorageFull, io::ErrorKind::QuotaExceeded] {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::default().segment_size_bytes(64 * 1024);
        options.hooks = Hooks::new(Arc::new(FullByKind(kind)));
        match Store::open(dir.path(), options) {
            Err(Error::NoSpace { bytes, .. }) => assert_eq!(bytes, 64 * 1024),
            Err(other) => panic!("a full disk ({kind:?}) gave {other:?}"),
            Ok(_) => panic!("a store was created on a full disk ({kind:?})"),
        }
        assert!(
            temp_files(dir.path()).is_empty(),
            "a temporary file was left"
        );
    }
}

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // Only root may mount; anyone else (or a sandbox) fails here and skips.
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A real full file system: fallocate fails with ENOSPC and the store says
/// NoSpace (never SIGBUS from writing through a mapping into a sparse file).
#[test]
fn a_real_full_tmpfs_is_no_space_and_the_store_recovers_when_space_is_freed() {
    let _spawns = spawning();
    let Some(fs) = Tmpfs::mount("1m") else {
        eprintln!("skipped: not root, or mounting a tmpfs is not permitted here");
        return;
    };
    let dir = fs.dir.path().join("store");
    let ballast = fs.dir.path().join("ballast");
    // Leave room for a whole number of segments plus part of one, so that
    // the disk fills up inside a segment: with a sparse (not really
    // allocated) segment that is a write through the mapping, and SIGBUS.
    std::fs::write(&ballast, vec![1u8; 212 * 1024]).unwrap();
    let options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::Always);
    let store = Store::open(&dir, options.clone()).unwrap();
    let mut appender = Appender::new(4);
    let error = loop {
        if let Err(error) = appender.append(&store) {
            break error;
        }
        assert!(appender.next_id < 100_000, "1 MiB never filled up");
    };
    assert!(
        matches!(error, Error::NoSpace { .. }),
        "a full tmpfs gave {error}"
    );
    assert!(crashkit::segment_files(&dir).len() > 3);
    appender.check(&store);
    assert_no_space(appender.append(&store), "still full");
    assert!(temp_files(&dir).is_empty(), "a temporary file was left");
    std::fs::remove_file(&ballast).unwrap();
    for _ in 0..10 {
        appender.append(&store).unwrap();
    }
    store.close().unwrap();
    let store = Store::open(&dir, options).unwrap();
    appender.check(&store);
    drop(store);
    drop(fs);
}

#[test]
fn a_failed_sync_poisons_the_store_until_it_is_reopened() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let mut appender = Appender::new(5);
    for _ in 0..30 {
        appender.append(&store).unwrap();
    }
    disk.fail_syncs(0);
    // The append whose sync fails is not acknowledged.
    let failed_id = appender.next_id;
    assert_poisoned(appender.append(&store), "the append whose sync failed");
    assert!(disk.syncs_failed.load(Ordering::SeqCst) >= 1);
    // The disk works again, but the store stays poisoned: retrying a failed
    // sync is unsafe. Later appends write nothing.
    disk.fail_syncs(u64::MAX);
    let before = store.next_position();
    for _ in 0..5 {
        assert_poisoned(appender.append(&store), "an append after the failed sync");
        assert_eq!(store.next_position(), before, "a poisoned store wrote");
    }
    assert!(matches!(store.flush(), Err(Error::Poisoned { .. })));
    // Reads still work.
    let seen = appender.check(&store);
    assert!(store.read_stream("s-0", 1, usize::MAX).is_ok());
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(appender.check(&reader), seen);
    drop(reader);
    assert!(matches!(store.close(), Err(Error::Poisoned { .. })));
    // A reopen recovers: the acknowledged batches are there, the failed one
    // is whole or absent, and appends work.
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let seen = appender.check(&store);
    assert!(
        seen.iter()
            .all(|id| appender.acked.contains(id) || *id == failed_id),
        "a batch that was never appended is in the store"
    );
    appender.append(&store).unwrap();
    store.close().unwrap();
}

#[test]
fn a_failed_flush_poisons_a_store_without_per_append_syncs() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::None, &disk)).unwrap();
    let mut appender = Appender::new(6);
    for _ in 0..10 {
        appender.append(&store).unwrap();
    }
    disk.fail_syncs(0);
    assert!(matches!(store.flush(), Err(Error::Poisoned { .. })));
    disk.fail_syncs(u64::MAX);
    let before = store.next_position();
    for _ in 0..5 {
        // Under Durability::None an append does not sync: only the poison
        // check stops it from writing.
        assert_poisoned(appender.append(&store), "an append after a failed flush");
        assert_eq!(store.next_position(), before, "a poisoned store wrote");
    }
    appender.check(&store);
    drop(store);
    let store = Store::open(dir.path(), options(Durability::None, &disk)).unwrap();
    appender.check(&store);
    appender.append(&store).unwrap();
}

#[test]
fn a_failed_sync_while_sealing_poisons_the_store() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::None, &disk)).unwrap();
    let mut appender = Appender::new(7);
    // Under Durability::None the only syncs are those of a roll.
    disk.fail_syncs(0);
    let error = loop {
        if let Err(error) = appender.append(&store) {
            break error;
        }
        assert!(appender.next_id < 10_000, "never rolled");
    };
    assert_eq!(disk.syncs_failed.load(Ordering::SeqCst), 1);
    // The append that rolled reports the failed sync itself.
    assert!(
        matches!(error, Error::Io { .. } | Error::Poisoned { .. }),
        "{error}"
    );
    disk.fail_syncs(u64::MAX);
    let before = store.next_position();
    for _ in 0..3 {
        assert_poisoned(appender.append(&store), "an append after a failed seal");
        assert_eq!(store.next_position(), before);
    }
    appender.check(&store);
    drop(store);
    let store = Store::open(dir.path(), options(Durability::None, &disk)).unwrap();
    appender.check(&store);
    for _ in 0..5 {
        appender.append(&store).unwrap();
    }
    appender.check(&store);
}

/// Caught: any error of `Segment::seal` poisoned the store, including a
/// failure to make the sealed file read-only, which comes after the footer
/// is durable, when no sync has failed. The append that rolled now gets
/// that error (nothing of it is written), the store is not poisoned, and
/// later appends go on in the next segment.
#[test]
fn a_failed_chmod_while_sealing_does_not_poison_the_store() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::None, &disk)).unwrap();
    let mut appender = Appender::new(8);
    disk.refuse_read_only.store(true, Ordering::SeqCst);
    let segments_before = crashkit::segment_files(dir.path()).len();
    let before = store.next_position();
    let error = loop {
        let before_this = store.next_position();
        if let Err(error) = appender.append(&store) {
            assert_eq!(store.next_position(), before_this, "a failed append wrote");
            break error;
        }
        assert!(appender.next_id < 10_000, "never rolled");
    };
    assert!(before < store.next_position());
    assert_eq!(disk.read_only_refused.load(Ordering::SeqCst), 1);
    assert_eq!(disk.syncs_failed.load(Ordering::SeqCst), 0);
    assert!(
        matches!(&error, Error::Io { action, .. } if action.contains("read-only")),
        "{error}"
    );
    disk.refuse_read_only.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        appender
            .append(&store)
            .expect("an append after a failed chmod");
    }
    let files = crashkit::segment_files(dir.path());
    assert_eq!(files.len(), segments_before + 1);
    // The sealed segment stayed writable on disk; it is sealed all the same.
    assert!(
        !std::fs::metadata(&files[0])
            .unwrap()
            .permissions()
            .readonly()
    );
    store.flush().unwrap();
    appender.check(&store);
    store.close().unwrap();
    let store = Store::open(dir.path(), options(Durability::None, &disk)).unwrap();
    appender.check(&store);
    appender.append(&store).unwrap();
    store.close().unwrap();
}

/// Appenders waiting on a group commit whose sync fails all get Poisoned,
/// and every append after that too.
#[test]
fn a_failed_group_commit_poisons_every_waiting_appender() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    disk.fail_syncs(40);
    let acked: Vec<BTreeSet<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|thread| {
                let store = &store;
                scope.spawn(move || {
                    let mut appender = Appender::new(100 + thread);
                    appender.next_id = thread << 32;
                    loop {
                        match appender.append(store) {
                            Ok(()) => {}
                            // A roll whose seal sync fails reports the sync's
                            // own error; everything after is Poisoned.
                            Err(Error::Poisoned { .. } | Error::Io { .. }) => break,
                            Err(other) => panic!("thread {thread}: {other}"),
                        }
                        assert!(appender.next_id < (thread << 32) + 10_000);
                    }
                    assert_poisoned(appender.append(store), "after the failure");
                    appender.acked
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    disk.fail_syncs(u64::MAX);
    drop(store);
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let seen: BTreeSet<u64> = crashkit::check_log(&store)
        .unwrap()
        .iter()
        .map(|b| b.batch_id)
        .collect();
    for (thread, acked) in acked.iter().enumerate() {
        let missing: Vec<_> = acked.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "thread {thread}: acknowledged batches lost: {missing:?}"
        );
    }
}

#[test]
fn a_second_writer_in_this_process_is_locked_out() {
    let _spawns = no_spawns();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let mut appender = Appender::new(8);
    appender.append(&store).unwrap();
    match Store::open(dir.path(), options(Durability::Always, &disk)) {
        Err(error @ Error::Locked { .. }) => {
            assert!(
                error
                    .to_string()
                    .contains(&dir.path().display().to_string()),
                "the message does not name the directory: {error}"
            );
        }
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("two writers opened one store"),
    }
    // Readers need no lock.
    appender.check(&Store::open_read_only(dir.path()).unwrap());
    store.close().unwrap();
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    appender.check(&store);
}

const CHILD_ENV: &str = "ANNALS_FAULTS_CHILD";

/// In the child: `try-open:DIR` tries to open a writer and says what
/// happened; `hold:DIR` opens a writer, appends, and holds the lock until
/// killed. In a normal test run: does nothing.
#[test]
fn child_entry_point() {
    let Ok(command) = std::env::var(CHILD_ENV) else {
        return;
    };
    // libtest has printed "test child_entry_point ... " without a newline.
    println!();
    let (mode, dir) = command.split_once(':').unwrap();
    let options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::Always);
    match (mode, Store::open(dir, options)) {
        ("try-open", Err(Error::Locked { .. })) => println!("LOCKED"),
        ("try-open", Ok(_)) => println!("OPENED"),
        ("hold", Ok(store)) => {
            store
                .append(
                    "child",
                    ExpectedVersion::NoStream,
                    &[EventData::new("Held", b"x".to_vec())],
                )
                .unwrap();
            println!("HOLDING");
            loop {
                std::thread::park();
            }
        }
        (_, Err(other)) => println!("ERROR {other}"),
        (other, _) => panic!("unknown child mode {other}"),
    }
}

fn child(mode: &str, dir: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

fn child_says(mut child: std::process::Child, word: &str) -> std::process::Child {
    let stdout = child.stdout.as_mut().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).unwrap();
        assert!(read > 0, "the child ended without saying {word}");
        if line.trim() == word {
            return child;
        }
        assert!(
            !line.starts_with("ERROR")
                && !line.starts_with("LOCKED")
                && !line.starts_with("OPENED"),
            "the child said {line:?}, not {word}"
        );
    }
}

#[test]
fn a_writer_in_another_process_is_locked_out_both_ways() {
    let _spawns = spawning();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    // This process holds the lock: the child cannot open a writer.
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    let mut try_open = child_says(child("try-open", dir.path()).spawn().unwrap(), "LOCKED");
    assert!(try_open.wait().unwrap().success());
    store.close().unwrap();

    // The child holds the lock: this process cannot, until the child dies.
    let mut holder = child_says(child("hold", dir.path()).spawn().unwrap(), "HOLDING");
    match Store::open(dir.path(), options(Durability::Always, &disk)) {
        Err(Error::Locked { .. }) => {}
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("two writers in two processes opened one store"),
    }
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.stream_version("child"), 1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The kernel released the dead child's lock.
    let store = Store::open(dir.path(), options(Durability::Always, &disk)).unwrap();
    assert_eq!(store.stream_version("child"), 1);
}
