//! Open from the index checkpoint (issue 13): what a default open reads and
//! what it does not, what stays on the heap, and a checkpoint that cannot be
//! written. The damage tests of index files and checkpoints themselves are
//! in `tests/index_files.rs`.

mod crashkit;

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;

use annals::format::checkpoint::CHECKPOINT_FILE_NAME;
use annals::format::{FOOTER_LEN, SEGMENT_HEADER_LEN};
use annals::hooks::{DerivedFileStep, Hooks, StorageHooks};
use annals::{Durability, EventData, ExpectedVersion, FindingKind, Options, RecoveryAction, Store};

const SEGMENT: u64 = 64 * 1024;

fn options() -> Options {
    Options::default()
        .segment_size_bytes(SEGMENT)
        .durability(Durability::None)
}

/// Appends `batches` batches of 4 events with 200-byte payloads, spread
/// over `streams` streams, each batch with a command id.
fn fill(store: &Store, from_batch: u64, batches: u64, streams: u64) {
    for b in from_batch..from_batch + batches {
        let stream = format!("s-{}", b % streams);
        let events: Vec<EventData> = (0..4)
            .map(|i| {
                EventData::new("E", vec![(b % 251) as u8; 200])
                    .with_correlation_id(format!("req-{}", b / 3 + i % 2))
            })
            .collect();
        store
            .append_idempotent(&format!("cmd-{b}"), &stream, ExpectedVersion::Any, &events)
            .unwrap();
    }
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    crashkit::segment_files(dir)
}

/// Caught by design: a default open after a clean close must not read the
/// sealed segments' data (that is what makes it O(tail)); it refuses damage
/// there when a read reaches it, while an open that rebuilds the index
/// refuses at open. A flipped byte in the first record of the oldest
/// segment shows which reads what.
#[test]
fn a_default_open_does_not_read_sealed_data_and_a_read_refuses_damage_there() {
    let work = crashkit::ram_dir();
    let dir = work.path();
    let store = Store::open(dir, options()).unwrap();
    fill(&store, 0, 200, 7);
    store.close().unwrap();
    assert!(segments(dir).len() >= 4, "the store has several segments");
    assert!(dir.join(CHECKPOINT_FILE_NAME).exists());

    let oldest = segments(dir)[0].clone();
    let mut bytes = std::fs::read(&oldest).unwrap();
    let at = SEGMENT_HEADER_LEN + 40;
    bytes[at] ^= 0x10;
    // The segment is read-only on disk, as every sealed one.
    let mut permissions = std::fs::metadata(&oldest).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&oldest, permissions).unwrap();
    std::fs::write(&oldest, &bytes).unwrap();

    for store in [
        Store::open(dir, options()).unwrap(),
        Store::open_read_only(dir).unwrap(),
    ] {
        assert!(
            store.recovery_report().is_empty(),
            "{:?}",
            store.recovery_report()
        );
        let error = store.read_all(0, usize::MAX).unwrap_err();
        let finding = error.finding().expect("a corruption error");
        assert_eq!(finding.path, oldest, "{error}");
        assert!(
            finding.offset as usize <= at,
            "the damaged record starts at or before byte {at}: {error}"
        );
        // Events in other segments read as before.
        let last = store.next_position() - 1;
        assert_eq!(store.read_all(last, 1).unwrap()[0].position, last);
        store.close().unwrap();
    }
    let error = Store::open(dir, options().rebuild_index(true))
        .err()
        .expect("an open that reads every byte refuses");
    assert_eq!(error.finding().unwrap().path, oldest, "{error}");
    assert!(Store::open_read_only_rebuilding_index(dir).is_err());
    let report = annals::verify(dir, &annals::VerifyOptions::default()).unwrap();
    assert!(!report.is_ok(), "verify reads every byte");
}

/// The index heap of a default open after a clean close grows with the
/// streams, the segments and the active segment, not with the sealed
/// events: twice the history over the same streams costs at most a byte per
/// added event (about one per segment a stream appears in) plus a fixed
/// record per added segment ([`PER_SEGMENT_BYTES`]), while an index rebuilt
/// in memory costs several bytes per event.
#[test]
fn index_heap_does_not_grow_with_sealed_history() {
    let work = crashkit::ram_dir();
    let dir = work.path();
    let store = Store::open(dir, options()).unwrap();
    fill(&store, 0, 400, 20);
    store.close().unwrap();
    let heap = |dir: &Path| {
        let store = Store::open_read_only(dir).unwrap();
        assert!(store.recovery_report().is_empty());
        (
            store.next_position(),
            segments(dir).len(),
            store.index_heap_bytes(),
        )
    };
    let (events_before, segments_before, heap_before) = heap(dir);

    let store = Store::open(dir, options()).unwrap();
    fill(&store, 400, 400, 20);
    store.close().unwrap();
    let (events_after, segments_after, heap_after) = heap(dir);
    let added = (events_after - events_before) as usize;
    let added_segments = segments_after - segments_before;
    assert!(
        heap_after <= heap_before + added + added_segments * PER_SEGMENT_BYTES,
        "{heap_before} bytes for {events_before} events in {segments_before} segments, \
         {heap_after} for {events_after} in {segments_after}"
    );
    let in_memory = Store::open_read_only_rebuilding_index(dir)
        .unwrap()
        .index_heap_bytes();
    assert!(
        in_memory >= heap_after + 3 * added,
        "an index rebuilt in memory ({in_memory} bytes) holds every event's offset; \
         the mapped one holds {heap_after}"
    );
}

/// The heap a sealed segment with a mapped index file costs, whatever it
/// holds: its extent, and the mapping's record.
const PER_SEGMENT_BYTES: usize = 512;

/// Fails every step `step` of writing the checkpoint.
struct FailCheckpoint {
    step: DerivedFileStep,
    writing_checkpoint: Mutex<bool>,
}

impl StorageHooks for FailCheckpoint {
    fn before_derived_file_step(&self, path: &Path, step: DerivedFileStep) -> std::io::Result<()> {
        let mut writing = self.writing_checkpoint.lock().unwrap();
        if step != DerivedFileStep::SyncDirectory {
            *writing = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(CHECKPOINT_FILE_NAME));
        }
        if *writing && step == self.step {
            return Err(std::io::Error::other("injected failure"));
        }
        Ok(())
    }
}

/// A checkpoint that cannot be written (at each step, every time) costs
/// nothing but open time: appends succeed, `index_rebuilds` says so, and the
/// next open walks the log (reporting the checkpoint missing or stale) and
/// answers exactly as before; the open after that loads a good checkpoint.
#[test]
fn a_checkpoint_that_cannot_be_written_loses_nothing() {
    for step in [
        DerivedFileStep::Write,
        DerivedFileStep::Sync,
        DerivedFileStep::Rename,
        DerivedFileStep::SyncDirectory,
    ] {
        let work = crashkit::ram_dir();
        let dir = work.path();
        // A good checkpoint first, so that the failures leave a stale one.
        let store = Store::open(dir, options()).unwrap();
        fill(&store, 0, 60, 5);
        store.close().unwrap();
        let mut failing = options();
        failing.hooks = Hooks::new(Arc::new(FailCheckpoint {
            step,
            writing_checkpoint: Mutex::new(false),
        }));
        let store = Store::open(dir, failing).unwrap();
        fill(&store, 60, 200, 5);
        let late = store.index_rebuilds();
        if step != DerivedFileStep::SyncDirectory {
            assert!(
                late.iter()
                    .any(|f| matches!(&f.kind, FindingKind::IndexCheckpoint { .. })),
                "{step:?}: {late:?}"
            );
        }
        let want = store.read_all(0, usize::MAX).unwrap();
        let versions: Vec<u64> = (0..5)
            .map(|s| store.stream_version(&format!("s-{s}")))
            .collect();
        store.close().unwrap();
        assert!(
            !std::fs::read_dir(dir).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")),
            "{step:?}: a temporary file was left"
        );

        let store = Store::open(dir, options()).unwrap();
        if step != DerivedFileStep::SyncDirectory {
            let checkpoint_items: Vec<_> = store
                .recovery_report()
                .items
                .iter()
                .filter(|i| matches!(&i.finding.kind, FindingKind::IndexCheckpoint { .. }))
                .collect();
            assert_eq!(
                checkpoint_items.len(),
                1,
                "{step:?}: {:?}",
                store.recovery_report()
            );
            assert_eq!(checkpoint_items[0].action, RecoveryAction::Rebuilt);
        }
        assert_eq!(store.read_all(0, usize::MAX).unwrap(), want, "{step:?}");
        for (s, version) in versions.iter().enumerate() {
            assert_eq!(store.stream_version(&format!("s-{s}")), *version);
        }
        // Every command id is still known, whichever segment holds it.
        for b in [0u64, 59, 60, 259] {
            let again = store
                .append_idempotent(
                    &format!("cmd-{b}"),
                    "elsewhere",
                    ExpectedVersion::NoStream,
                    &[EventData::new("E", vec![])],
                )
                .unwrap();
            assert_eq!(again.first_position, b * 4, "{step:?}: cmd-{b}");
        }
        store.close().unwrap();
        let store = Store::open(dir, options()).unwrap();
        assert!(
            store.recovery_report().is_empty(),
            "{step:?}: {:?}",
            store.recovery_report()
        );
        assert_eq!(store.read_all(0, usize::MAX).unwrap(), want);
    }
}

/// The footer area stays the footer: a checkpoint open refuses to cover a
/// segment whose footer changed (it falls back to the full walk, which
/// refuses the damage), rather than trusting the checkpoint.
#[test]
fn a_changed_footer_is_not_covered_by_the_checkpoint() {
    let work = crashkit::ram_dir();
    let dir = work.path();
    let store = Store::open(dir, options()).unwrap();
    fill(&store, 0, 120, 3);
    store.close().unwrap();
    let oldest = segments(dir)[0].clone();
    let mut bytes = std::fs::read(&oldest).unwrap();
    let footer_at = bytes.len() - FOOTER_LEN;
    bytes[footer_at + 8] ^= 1; // event_count
    let mut permissions = std::fs::metadata(&oldest).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&oldest, permissions).unwrap();
    std::fs::write(&oldest, &bytes).unwrap();
    let error = Store::open(dir, options()).err().expect("refused");
    assert_eq!(error.finding().unwrap().path, oldest, "{error}");
    assert!(Store::open_read_only(dir).is_err());
}

/// The position right after the last event the store's checkpoint covers.
fn covered_end(dir: &Path) -> u64 {
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE_NAME)).unwrap();
    let file = annals::format::checkpoint::CheckpointFile::parse(&bytes).unwrap();
    let last = *file.segments().last().expect("covers a segment");
    last.base_position + last.event_count
}

/// Caught by the history benchmark: an open that rebuilt the index wrote a
/// checkpoint of the sealed segments only, and a close with nothing
/// appended wrote none, so every later open walked the whole active segment
/// again. A writer's open that did not load a checkpoint covering the whole
/// log now writes one that does (the active segment's batches are synced by
/// then), whatever happens next.
#[test]
fn an_open_that_rebuilt_the_index_leaves_a_checkpoint_of_the_whole_log() {
    let work = crashkit::ram_dir();
    let dir = work.path();
    let store = Store::open(dir, options()).unwrap();
    fill(&store, 0, 90, 4);
    let end = store.next_position();
    drop(store);
    std::fs::remove_file(dir.join(CHECKPOINT_FILE_NAME)).unwrap();

    let store = Store::open(dir, options().rebuild_index(true)).unwrap();
    assert_eq!(covered_end(dir), end, "written at open");
    store.close().unwrap();
    assert_eq!(covered_end(dir), end, "after a close with nothing appended");
    let store = Store::open(dir, options()).unwrap();
    assert!(
        store.recovery_report().is_empty(),
        "{:?}",
        store.recovery_report()
    );
    assert_eq!(store.next_position(), end);
}

/// Delays every step of writing a derived file.
struct SlowIndexFiles;

impl StorageHooks for SlowIndexFiles {
    fn before_derived_file_step(
        &self,
        _path: &Path,
        _step: DerivedFileStep,
    ) -> std::io::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(3));
        Ok(())
    }
}

/// A reader following a writer maps the index files the writer writes for
/// the segments it seals, even when a refresh sees a segment sealed before
/// its index file exists (the writer's indexer thread writes it moments
/// later): a long-running follower's heap stays bounded like a fresh
/// open's, not an index rebuilt in memory.
#[test]
fn a_follower_maps_the_index_files_of_segments_sealed_while_it_follows() {
    let work = crashkit::ram_dir();
    let dir = work.path();
    // The writer's index files come late, so that refreshes see segments
    // sealed before their index files exist.
    let mut slow = options();
    slow.hooks = Hooks::new(Arc::new(SlowIndexFiles));
    let writer = Store::open(dir, slow).unwrap();
    fill(&writer, 0, 10, 4);
    let follower = Store::open_read_only(dir).unwrap();
    for round in 0..20 {
        fill(&writer, 10 + round * 20, 20, 4);
        follower.refresh().unwrap();
    }
    writer.close().unwrap();
    // Every index file is written by now; a refresh or two picks them up.
    follower.refresh().unwrap();
    follower.refresh().unwrap();
    assert_eq!(follower.next_position(), 410 * 4);
    let fresh = Store::open_read_only(dir).unwrap();
    let in_memory = Store::open_read_only_rebuilding_index(dir).unwrap();
    assert!(
        follower.index_heap_bytes() <= fresh.index_heap_bytes() + 1024,
        "follower {} bytes, fresh open {}, in memory {}",
        follower.index_heap_bytes(),
        fresh.index_heap_bytes(),
        in_memory.index_heap_bytes()
    );
    assert_eq!(
        follower.read_all(0, usize::MAX).unwrap(),
        fresh.read_all(0, usize::MAX).unwrap()
    );
}

/// A checkpoint that passes its checks but does not agree with the log
/// after it (here a stream's version, forged with a valid checksum) must
/// not make open refuse a healthy log: a refusal of the log after a
/// checkpoint is checked by walking the whole log, which here finds it
/// whole, and the checkpoint is reported and replaced.
#[test]
fn a_checkpoint_the_log_after_it_does_not_continue_is_not_trusted_for_a_refusal() {
    use annals::format::checkpoint::{self, CheckpointFile, CheckpointStream};
    let work = crashkit::ram_dir();
    let dir = work.path();
    let store = Store::open(dir, options()).unwrap();
    store
        .append(
            "old",
            ExpectedVersion::NoStream,
            &[EventData::new("E", vec![1])],
        )
        .unwrap();
    fill(&store, 0, 120, 5);
    store.close().unwrap();
    let saved: Vec<(std::ffi::OsString, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name == CHECKPOINT_FILE_NAME || name.ends_with(".idx")
        })
        .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
        .collect();
    // The log goes on: "old" gets its second event.
    let store = Store::open(dir, options()).unwrap();
    store
        .append(
            "old",
            ExpectedVersion::Exact(1),
            &[EventData::new("E", vec![2])],
        )
        .unwrap();
    let want = store.read_all(0, usize::MAX).unwrap();
    store.close().unwrap();
    // The derived files as they were before it, but the checkpoint says
    // "old" is at version 2 already.
    for (name, bytes) in &saved {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE_NAME)).unwrap();
    let file = CheckpointFile::parse(&bytes).unwrap();
    let streams: Vec<CheckpointStream<'_>> = file
        .streams()
        .map(|s| {
            let version = if s.name == "old" {
                s.version + 1
            } else {
                s.version
            };
            CheckpointStream { version, ..s }
        })
        .collect();
    let forged = checkpoint::encode(
        file.written_unix_ns(),
        &file.segments(),
        streams.into_iter(),
    );
    std::fs::write(dir.join(CHECKPOINT_FILE_NAME), forged).unwrap();

    let reader = Store::open_read_only(dir).unwrap();
    let items = &reader.recovery_report().items;
    assert!(
        items.iter().any(
            |i| matches!(&i.finding.kind, FindingKind::IndexCheckpoint { .. })
                && i.action == RecoveryAction::RebuiltInMemory
        ),
        "{items:?}"
    );
    assert_eq!(reader.read_all(0, usize::MAX).unwrap(), want);
    assert_eq!(reader.stream_version("old"), 2);
    let writer = Store::open(dir, options()).unwrap();
    assert_eq!(writer.stream_version("old"), 2);
    assert!(
        writer
            .recovery_report()
            .items
            .iter()
            .any(|i| i.action == RecoveryAction::Rebuilt)
    );
    writer.close().unwrap();
    let again = Store::open(dir, options()).unwrap();
    assert!(
        again.recovery_report().is_empty(),
        "{:?}",
        again.recovery_report()
    );
}

/// A stream table that leaves out a segment holding a stream's events (a
/// checkpoint forged with a valid checksum) is found when the stream is
/// read: an error naming the store's checkpoint file and the stream, never
/// a short answer.
#[test]
fn a_stream_table_missing_a_segment_is_an_error_naming_the_checkpoint() {
    use annals::format::checkpoint::{self, CheckpointFile, CheckpointStream};
    let work = crashkit::ram_dir();
    let dir = work.path();
    let store = Store::open(dir, options()).unwrap();
    fill(&store, 0, 120, 3);
    store.close().unwrap();
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE_NAME)).unwrap();
    let file = CheckpointFile::parse(&bytes).unwrap();
    // "s-0" without its first segment: ordinal 0 is the list's first byte.
    let streams: Vec<CheckpointStream<'_>> = file
        .streams()
        .map(|s| {
            if s.name == "s-0" {
                assert_eq!(s.segment_list[0], 0, "s-0 starts in the first segment");
                CheckpointStream {
                    segment_list: &s.segment_list[1..],
                    ..s
                }
            } else {
                s
            }
        })
        .collect();
    let forged = checkpoint::encode(
        file.written_unix_ns(),
        &file.segments(),
        streams.into_iter(),
    );
    std::fs::write(dir.join(CHECKPOINT_FILE_NAME), forged).unwrap();

    let store = Store::open_read_only(dir).unwrap();
    let error = store.read_stream("s-0", 1, usize::MAX).unwrap_err();
    let finding = error.finding().expect("a finding");
    assert_eq!(finding.path, dir.join(CHECKPOINT_FILE_NAME), "{error}");
    assert!(error.to_string().contains("\"s-0\""), "{error}");
    // The log itself is whole: a rebuild answers.
    let rebuilt = Store::open_read_only_rebuilding_index(dir).unwrap();
    assert_eq!(
        rebuilt.read_stream("s-0", 1, usize::MAX).unwrap().len(),
        160
    );
}
