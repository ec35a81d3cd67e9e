//! Erasure by crypto-shredding: events that name a subject have their data
//! sealed with the subject's key; `erase_subject` records the erasure in
//! `$erasures`, then destroys the key; after it the subject's events read
//! back erased (typed), every other event is intact, and the hash chain
//! still verifies. Also: the key file's damage rules, a crash at every step
//! of erasing (a child process killed with SIGKILL, and a power loss after
//! every sync: what was not synced is lost), and a pre-v3 store
//! rolling to a v3 segment for its first event with a subject.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use annals::format::header::SegmentHeader;
use annals::hooks::{DerivedFileStep, Hooks, StorageHooks};
use annals::system_streams::{ERASURES_STREAM, SUBJECT_ERASED_EVENT_TYPE};
use annals::{
    Durability, Error, EventData, ExpectedVersion, MemoryKeys, Options, RecordedEvent, Store,
    VerifyOptions, verify,
};

const KEY_FILE: &str = "annals.keys";

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::Always)
}

/// Alice's and Bob's data, and an event without a subject, in two streams.
fn personal_events() -> Vec<(&'static str, EventData)> {
    vec![
        (
            "customer-a",
            EventData::new("Registered", b"alice@example.com".to_vec())
                .with_subject("subject-alice"),
        ),
        (
            "customer-b",
            EventData::new("Registered", b"bob@example.com".to_vec()).with_subject("subject-bob"),
        ),
        (
            "customer-a",
            EventData::new("Visited", b"plain data".to_vec()),
        ),
        (
            "customer-a",
            EventData::new("AddressChanged", b"10 Main St, Springfield".to_vec())
                .with_subject("subject-alice"),
        ),
    ]
}

fn append_personal_events(store: &Store) {
    for (stream, event) in personal_events() {
        store
            .append(stream, ExpectedVersion::Any, &[event])
            .unwrap();
    }
}

/// Checks every event against `personal_events`: Alice's erased or not as
/// `alice_erased` says, everything else intact.
fn check_events(store: &Store, alice_erased: bool) {
    let all: Vec<RecordedEvent> = store
        .read_all(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.stream != ERASURES_STREAM)
        .collect();
    let expected = personal_events();
    assert_eq!(all.len(), expected.len());
    for (read, (stream, written)) in all.iter().zip(&expected) {
        assert_eq!(read.stream, *stream);
        assert_eq!(read.subject, written.subject);
        let erased = alice_erased && written.subject.as_deref() == Some("subject-alice");
        assert_eq!(read.erased, erased, "{read:?}");
        if erased {
            assert!(read.data.is_empty());
            match read.decode_with::<annals::codec::Json, serde_json::Value>() {
                Err(Error::Erased {
                    subject, position, ..
                }) => {
                    assert_eq!(subject, "subject-alice");
                    assert_eq!(position, read.position);
                }
                other => panic!("an erased event decoded as {other:?}"),
            }
        } else {
            assert_eq!(read.data, written.data, "{read:?}");
        }
    }
    // The borrowed scans give the same: opened data or the erased state,
    // never the sealed bytes.
    let mut scanned = 0;
    store
        .scan_all(0, |view| {
            if view.stream != ERASURES_STREAM {
                let read = &all[scanned];
                assert_eq!(view.to_recorded(), *read);
                scanned += 1;
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(scanned, all.len());
    store
        .scan_stream("customer-a", 1, |view| {
            assert_eq!(view.erased, alice_erased && view.subject.is_some());
            ControlFlow::Continue(())
        })
        .unwrap();
}

fn verifies(dir: &Path) -> annals::VerifyReport {
    let report = verify(dir, &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report}");
    report
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn segments_contain(dir: &Path, needle: &[u8]) -> bool {
    fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        path.extension().is_some_and(|e| e == "seg") && contains(&fs::read(&path).unwrap(), needle)
    })
}

#[test]
fn sealed_events_round_trip_in_memory_in_a_file_after_reopen_and_read_only() {
    let memory = Store::in_memory(options()).unwrap();
    append_personal_events(&memory);
    check_events(&memory, false);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    append_personal_events(&store);
    check_events(&store, false);
    store.close().unwrap();
    // The segments hold the sealed data, never the plain text; the subject
    // is stored as given (a pseudonymous id).
    assert!(!segments_contain(dir.path(), b"alice@example.com"));
    assert!(!segments_contain(dir.path(), b"10 Main St"));
    assert!(segments_contain(dir.path(), b"plain data"));
    assert!(segments_contain(dir.path(), b"subject-alice"));
    assert!(fs::read(dir.path().join(KEY_FILE)).unwrap().len() > 16);

    check_events(&Store::open(dir.path(), options()).unwrap(), false);
    check_events(&Store::open_read_only(dir.path()).unwrap(), false);
    check_events(
        &Store::open_read_only_rebuilding_index(dir.path()).unwrap(),
        false,
    );
    verifies(dir.path());
}

#[test]
fn a_store_without_subjects_has_no_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    store.close().unwrap();
    assert!(!dir.path().join(KEY_FILE).exists());
}

#[test]
fn an_erased_subject_reads_back_erased_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    append_personal_events(&store);
    let before = verifies(dir.path());
    let alice_key = {
        // The key is in the key file before the erasure.
        let bytes = fs::read(dir.path().join(KEY_FILE)).unwrap();
        let at = bytes
            .windows(b"subject-alice".len())
            .position(|w| w == b"subject-alice")
            .unwrap();
        bytes[at - 32..at].to_vec()
    };

    let erased = store
        .erase_subject("subject-alice", "request 2026-114")
        .unwrap();
    assert_eq!(
        store.erasure_of("subject-alice"),
        Some(erased.first_position)
    );
    assert_eq!(
        store.erased_subjects(),
        [("subject-alice".to_string(), erased.first_position)]
    );
    check_events(&store, true);

    // The erasure is an event of its own, covered by the chain.
    let record = &store.read_stream(ERASURES_STREAM, 1, 10).unwrap()[..];
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].event_type, SUBJECT_ERASED_EVENT_TYPE);
    let data: serde_json::Value = record[0].decode().unwrap();
    assert_eq!(
        data,
        serde_json::json!({"subject": "subject-alice", "reason": "request 2026-114"})
    );

    // The key is gone from the key file's bytes, Bob's is still there.
    let keys = fs::read(dir.path().join(KEY_FILE)).unwrap();
    assert!(!contains(&keys, b"subject-alice"));
    assert!(!contains(&keys, &alice_key));
    assert!(contains(&keys, b"subject-bob"));

    // Appending for an erased subject, or erasing it again, is refused.
    let again = EventData::new("Returned", b"x".to_vec()).with_subject("subject-alice");
    assert!(matches!(
        store.append("customer-a", ExpectedVersion::Any, &[again]),
        Err(Error::SubjectErased { .. })
    ));
    assert!(matches!(
        store.erase_subject("subject-alice", ""),
        Err(Error::SubjectErased { erased_at, .. }) if erased_at == erased.first_position
    ));

    // The chain verifies over every byte, old ones unchanged.
    let after = verifies(dir.path());
    assert_eq!(after.summary.events, before.summary.events + 1);
    store.close().unwrap();

    // Every later opener agrees.
    check_events(&Store::open_read_only(dir.path()).unwrap(), true);
    check_events(&Store::open(dir.path(), options()).unwrap(), true);
    check_events(
        &Store::open_read_only_rebuilding_index(dir.path()).unwrap(),
        true,
    );
}

#[test]
fn a_reader_beside_the_writer_sees_the_erasure_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    append_personal_events(&store);
    let reader = Store::open_read_only(dir.path()).unwrap();
    check_events(&reader, false);
    store.erase_subject("subject-alice", "").unwrap();
    // The reader still holds Alice's key in memory: `$erasures` decides.
    reader.refresh().unwrap();
    check_events(&reader, true);
}

#[test]
fn erasing_an_unknown_subject_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    append_personal_events(&store);
    let position = store.next_position();
    let keys = fs::read(dir.path().join(KEY_FILE)).unwrap();
    match store.erase_subject("subject-carol", "") {
        Err(Error::UnknownSubject { subject }) => assert_eq!(subject, "subject-carol"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.erase_subject("", ""),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(store.next_position(), position);
    assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), keys);
    assert!(store.erased_subjects().is_empty());
    check_events(&store, false);
}

#[test]
fn an_application_supplied_key_store_keeps_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeys::default());
    let store = Store::open(dir.path(), options().subject_keys(keys.clone())).unwrap();
    append_personal_events(&store);
    check_events(&store, false);
    assert!(!dir.path().join(KEY_FILE).exists());
    assert!(
        annals::SubjectKeys::get(&*keys, "subject-alice")
            .unwrap()
            .is_some()
    );
    store.erase_subject("subject-alice", "").unwrap();
    assert!(
        annals::SubjectKeys::get(&*keys, "subject-alice")
            .unwrap()
            .is_none()
    );
    check_events(&store, true);
}

/// Builds a store with Alice's key first and Bob's last in the key file.
fn store_with_two_keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    append_personal_events(&store);
    store.close().unwrap();
    dir
}

#[test]
fn a_torn_last_key_record_is_dropped_and_other_damage_is_refused() {
    // Cut into Bob's record (the last): dropped, a writer cuts it off; Bob's
    // events then fail with a typed error, Alice's read.
    let dir = store_with_two_keys();
    let path = dir.path().join(KEY_FILE);
    let whole = fs::read(&path).unwrap();
    for cut in [1, 5, 20, 40] {
        fs::write(&path, &whole[..whole.len() - cut]).unwrap();
        let reader = Store::open_read_only(dir.path()).unwrap();
        let bob = reader.read_stream("customer-b", 1, 1);
        assert!(
            matches!(&bob, Err(Error::SealedData { subject, position: 1, .. }) if subject == "subject-bob"),
            "{bob:?}"
        );
        assert_eq!(
            reader.read_stream("customer-a", 1, 1).unwrap()[0].data,
            b"alice@example.com"
        );
    }
    let store = Store::open(dir.path(), options()).unwrap();
    let cut_len = fs::read(&path).unwrap().len();
    assert!(cut_len < whole.len() - 40, "the writer cut the torn record");
    // New keys follow the valid records.
    store
        .append(
            "customer-c",
            ExpectedVersion::Any,
            &[EventData::new("Registered", b"carol".to_vec()).with_subject("subject-carol")],
        )
        .unwrap();
    drop(store);
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader.read_stream("customer-c", 1, 1).unwrap()[0].data,
        b"carol"
    );

    // Damage before the last record, or to the header: every opener
    // refuses, naming the file and offset; nothing panics.
    let dir = store_with_two_keys();
    let path = dir.path().join(KEY_FILE);
    let whole = fs::read(&path).unwrap();
    for (at, offset) in [(20usize, 16u64), (3, 0)] {
        let mut bad = whole.clone();
        bad[at] ^= 0x40;
        fs::write(&path, &bad).unwrap();
        for result in [
            Store::open_read_only(dir.path()).map(drop),
            Store::open(dir.path(), options()).map(drop),
        ] {
            match result {
                Err(Error::KeyFile {
                    path: named,
                    offset: found,
                    ..
                }) => {
                    assert_eq!(named, path);
                    assert_eq!(found, offset);
                }
                other => panic!("damage at byte {at}: {other:?}"),
            }
        }
    }
    // Every cut and every flipped byte: an error or a dropped last record,
    // never a panic.
    for cut in 0..whole.len() {
        fs::write(&path, &whole[..cut]).unwrap();
        if let Ok(store) = Store::open_read_only(dir.path()) {
            let _ = store.read_all(0, usize::MAX);
        }
    }
    for at in 0..whole.len() {
        let mut bad = whole.clone();
        bad[at] ^= 0xFF;
        fs::write(&path, &bad).unwrap();
        if let Ok(store) = Store::open_read_only(dir.path()) {
            let _ = store.read_all(0, usize::MAX);
        }
    }
}

#[test]
fn a_v2_store_rolls_to_a_v3_segment_for_its_first_event_with_a_subject() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2-store");
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        let target = dir.path().join(path.file_name().unwrap());
        fs::copy(&path, &target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let versions = |dir: &Path| -> Vec<u16> {
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                SegmentHeader::decode(&fs::read(p).unwrap())
                    .unwrap()
                    .format_version
            })
            .collect()
    };
    assert_eq!(versions(dir.path()), [2, 2, 2]);
    let store = Store::open(dir.path(), options()).unwrap();
    // A plain event continues the version-2 segment.
    store
        .append(
            "plain",
            ExpectedVersion::Any,
            &[EventData::new("E", b"p".to_vec())],
        )
        .unwrap();
    assert_eq!(versions(dir.path()), [2, 2, 2]);
    // An event with a subject needs a segment of version 3 or later: the
    // new one is of the newest version.
    let written = store
        .append(
            "customer-z",
            ExpectedVersion::Any,
            &[EventData::new("Registered", b"zoe".to_vec()).with_subject("subject-zoe")],
        )
        .unwrap();
    assert_eq!(
        versions(dir.path()),
        [2, 2, 2, annals::format::FORMAT_VERSION]
    );
    store.close().unwrap();
    verifies(dir.path());
    let reader = Store::open_read_only(dir.path()).unwrap();
    let zoe = &reader.read_stream("customer-z", 1, 1).unwrap()[0];
    assert_eq!(
        (zoe.position, &zoe.data[..]),
        (written.first_position, &b"zoe"[..])
    );
    assert_eq!(reader.read_stream("plain", 1, 1).unwrap()[0].data, b"p");
    let store = Store::open(dir.path(), options()).unwrap();
    store.erase_subject("subject-zoe", "").unwrap();
    assert!(store.read_stream("customer-z", 1, 1).unwrap()[0].erased);
    store.close().unwrap();
    verifies(dir.path());
}

#[cfg(feature = "cli")]
#[test]
fn annals_erase_prints_json_and_read_shows_the_erased_event() {
    let dir = store_with_two_keys();
    let annals = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_annals"))
            .args(args)
            .output()
            .unwrap()
    };
    let path = dir.path().to_str().unwrap();
    let out = annals(&[
        "erase",
        path,
        "--subject",
        "subject-alice",
        "--reason",
        "asked",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["subject"], "subject-alice");
    assert_eq!(line["stream"], ERASURES_STREAM);
    assert_eq!(line["position"], 4);
    // Unknown and already erased subjects: exit 7, nothing written.
    for subject in ["subject-carol", "subject-alice"] {
        let out = annals(&["erase", path, "--subject", subject]);
        assert_eq!(
            out.status.code(),
            Some(7),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = annals(&["read", path, "--stream", "customer-a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["subject"], "subject-alice");
    assert_eq!(lines[0]["erased"], true);
    assert!(lines[0].get("data").is_none() && lines[0].get("data_base64").is_none());
    assert!(lines[1].get("erased").is_none() && lines[1].get("subject").is_none());
    let out = annals(&["verify", path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// A crash at every step of erasing.

const CHILD_ENV: &str = "ANNALS_ERASE_CHILD";
const CHILD_TEST_NAME: &str = "erase_crash_child_entry_point";

/// Counts each storage step of an erasure (segment syncs, the key file's
/// rewrite), prints it, and waits there long enough for the parent's kill.
struct Steps {
    armed: AtomicBool,
    seen: AtomicU64,
}

impl Steps {
    fn step(&self, what: String) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        let mut out = std::io::stdout().lock();
        writeln!(out, "STEP {n} {what}").unwrap();
        out.flush().unwrap();
        drop(out);
        // The parent kills at the step it wants; otherwise go on.
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
    }
}

impl StorageHooks for Steps {
    fn before_sync(&self, path: &Path, _offset: u64, _len: u64) -> std::io::Result<()> {
        self.step(format!("before-sync {}", path.display()));
        Ok(())
    }

    fn after_sync(&self, path: &Path, _offset: u64, _len: u64) {
        self.step(format!("after-sync {}", path.display()));
    }

    fn before_derived_file_step(&self, path: &Path, step: DerivedFileStep) -> std::io::Result<()> {
        self.step(format!("{step:?} {}", path.display()));
        Ok(())
    }
}

/// In the child: erases Alice, stopping at each step until the parent
/// says go on (or kills it). In a normal test run: does nothing.
#[test]
fn erase_crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let steps = Arc::new(Steps {
        armed: AtomicBool::new(false),
        seen: AtomicU64::new(0),
    });
    let mut options = options();
    options.hooks = Hooks::new(steps.clone());
    let store = Store::open(&dir, options).unwrap();
    steps.armed.store(true, Ordering::SeqCst);
    store.erase_subject("subject-alice", "crash test").unwrap();
    steps.armed.store(false, Ordering::SeqCst);
    println!("ERASED");
    std::mem::forget(store);
    std::process::exit(0);
}

/// Runs the child on a fresh store, killing it (SIGKILL) when it reaches
/// step `kill_at`; returns whether it was killed (false: the erasure
/// finished before that step).
fn erase_in_child(dir: &Path, kill_at: u64) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST_NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.ends_with("ERASED") {
            break;
        }
        // The test harness may have printed the test's name on the line.
        let Some((_, rest)) = line.split_once("STEP ") else {
            continue;
        };
        let n: u64 = rest.split(' ').next().unwrap().parse().unwrap();
        if n == kill_at {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        writeln!(stdin, "go").unwrap();
    }
    assert!(child.wait().unwrap().success());
    false
}

#[test]
fn a_crash_at_every_step_of_erasing_leaves_the_subject_present_or_erased() {
    let mut outcomes = Vec::new();
    for kill_at in 0.. {
        assert!(kill_at < 50, "the erasure never finished");
        let dir = store_with_two_keys();
        let killed = erase_in_child(dir.path(), kill_at);
        // Every opener agrees on the state the crash left, and a writable
        // open finishes an interrupted erasure.
        let reader = Store::open_read_only(dir.path()).unwrap();
        let erased = reader.erasure_of("subject-alice").is_some();
        check_events(&reader, erased);
        verifies(dir.path());
        let store = Store::open(dir.path(), options()).unwrap();
        assert_eq!(store.erasure_of("subject-alice").is_some(), erased);
        check_events(&store, erased);
        let keys = fs::read(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(!contains(&keys, b"subject-alice"), erased, "step {kill_at}");
        assert!(contains(&keys, b"subject-bob"));
        if !erased {
            // Nothing was erased: it can be done now.
            store.erase_subject("subject-alice", "again").unwrap();
            check_events(&store, true);
        }
        store.close().unwrap();
        verifies(dir.path());
        outcomes.push(erased);
        if !killed {
            break;
        }
    }
    // The first step is the sync of the erasure event, already written to
    // the mapped segment: a process crash keeps it (the page cache
    // survives), so from there on the erasure stands, and the writable open
    // destroyed the key wherever the kill left it. Steps: the event's
    // sync, then the key file's write, sync, rename and directory sync.
    assert!(outcomes.len() >= 5, "{outcomes:?}");
    assert!(outcomes.iter().all(|&erased| erased), "{outcomes:?}");
}

/// Keeps a copy of the store as a power loss would leave it after each
/// sync of the erasure: the segment's sync (the erasure event durable, the
/// key file as before) and each directory sync (a rename of the key file
/// durable). File contents are synced before their renames, so the copy
/// taken right there is what survives.
struct PowerLossImages {
    dir: PathBuf,
    images: PathBuf,
    taken: std::sync::Mutex<Vec<PathBuf>>,
    armed: AtomicBool,
}

impl PowerLossImages {
    fn take(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let mut taken = self.taken.lock().unwrap();
        let image = self.images.join(format!("image-{}", taken.len()));
        common::copy_dir(&self.dir, &image);
        taken.push(image);
    }
}

impl StorageHooks for PowerLossImages {
    fn after_sync(&self, _path: &Path, _offset: u64, _len: u64) {
        self.take();
    }

    fn before_derived_file_step(&self, _path: &Path, step: DerivedFileStep) -> std::io::Result<()> {
        if step == DerivedFileStep::SyncDirectory {
            self.take();
        }
        Ok(())
    }
}

#[test]
fn a_power_loss_after_every_sync_of_erasing_leaves_the_subject_present_or_erased() {
    let dir = store_with_two_keys();
    let images = tempfile::tempdir().unwrap();
    // Before anything of the erasure is durable: it is lost.
    let before = images.path().join("before");
    common::copy_dir(dir.path(), &before);
    let hooks = Arc::new(PowerLossImages {
        dir: dir.path().to_path_buf(),
        images: images.path().to_path_buf(),
        taken: std::sync::Mutex::new(Vec::new()),
        armed: AtomicBool::new(false),
    });
    let mut with_hooks = options();
    with_hooks.hooks = Hooks::new(hooks.clone());
    let store = Store::open(dir.path(), with_hooks).unwrap();
    hooks.armed.store(true, Ordering::SeqCst);
    store
        .erase_subject("subject-alice", "power loss test")
        .unwrap();
    hooks.armed.store(false, Ordering::SeqCst);
    drop(store);
    let mut all = vec![before];
    all.extend(hooks.taken.lock().unwrap().iter().cloned());
    assert!(all.len() >= 3, "{all:?}");
    let mut outcomes = Vec::new();
    for (i, image) in all.iter().enumerate() {
        let reader = Store::open_read_only(image)
            .unwrap_or_else(|e| panic!("image {i}: read-only open failed: {e}"));
        let erased = reader.erasure_of("subject-alice").is_some();
        check_events(&reader, erased);
        drop(reader);
        verifies(image);
        let store =
            Store::open(image, options()).unwrap_or_else(|e| panic!("image {i}: open failed: {e}"));
        assert_eq!(
            store.erasure_of("subject-alice").is_some(),
            erased,
            "image {i}"
        );
        check_events(&store, erased);
        store.close().unwrap();
        // A writable open destroyed the key of an erasure the loss cut
        // short; an erasure lost with the power left the key.
        let keys = fs::read(image.join(KEY_FILE)).unwrap();
        assert_eq!(!contains(&keys, b"subject-alice"), erased, "image {i}");
        assert!(contains(&keys, b"subject-bob"), "image {i}");
        verifies(image);
        outcomes.push(erased);
    }
    // Both outcomes were seen: the images span the erasure event's sync.
    assert!(
        outcomes.contains(&false) && outcomes.contains(&true),
        "{outcomes:?}"
    );
}

#[test]
fn a_stray_temporary_key_file_is_a_temporary_file_every_opener_judges_alike() {
    let dir = store_with_two_keys();
    let stray = dir.path().join(format!("{KEY_FILE}.tmp"));
    fs::write(&stray, b"half a key file").unwrap();
    let is_stray = |kind: &annals::FindingKind| *kind == annals::FindingKind::TemporaryFile;
    let reader = Store::open_read_only(dir.path()).unwrap();
    let noted: Vec<_> = reader
        .recovery_report()
        .of_kind(is_stray)
        .cloned()
        .collect();
    assert_eq!(noted.len(), 1, "{:?}", reader.recovery_report());
    assert_eq!(noted[0].finding.path, stray);
    assert_eq!(noted[0].action, annals::RecoveryAction::NotShown);
    drop(reader);
    let store = Store::open(dir.path(), options()).unwrap();
    let removed: Vec<_> = store.recovery_report().of_kind(is_stray).cloned().collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].action, annals::RecoveryAction::Removed);
    assert!(!stray.exists());
    check_events(&store, false);
}
