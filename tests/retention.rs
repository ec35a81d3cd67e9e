//! Retention: retiring whole sealed segments from the front of the log,
//! with or without an archive; reads, appends, idempotency, the index
//! checkpoint and verify across it; bad input changes nothing.

mod common;

use std::path::Path;

use annals::{
    Error, EventData, ExpectedHead, ExpectedVersion, FindingKind, RecoveryAction, RetireOptions,
    Store, VerifyOptions, verify,
};
use common::small_segments;

/// A store with `batches` batches of 4 events (2 KiB each) over 5 streams,
/// round robin: several sealed segments of 64 KiB.
fn filled(dir: &Path, batches: u64) -> Store {
    let store = Store::open(dir, small_segments()).unwrap();
    common::fill(&store, batches, 4, 5, 2000);
    store
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| annals::is_segment_file_name(n))
        .collect();
    names.sort();
    names
}

/// Verify finds nothing wrong with the store in `dir`.
#[track_caller]
fn assert_verifies(dir: &Path) {
    let report = verify(dir, &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report}");
}

/// Options that move the retired segments to `archive`.
fn into_archive(archive: &Path) -> RetireOptions {
    RetireOptions {
        reason: "test".to_string(),
        archive: Some(archive.to_path_buf()),
    }
}

fn reason(text: &str) -> RetireOptions {
    RetireOptions {
        reason: text.to_string(),
        archive: None,
    }
}

#[test]
fn retiring_removes_whole_sealed_segments_and_keeps_positions_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let before = segment_files(dir.path());
    assert!(before.len() >= 4, "{before:?}");
    let versions: Vec<u64> = (0..5)
        .map(|i| store.stream_version(&format!("s-{i}")))
        .collect();
    let next = store.next_position();

    let plan = store.retirement_plan(100).unwrap();
    assert!(!plan.done);
    assert_eq!(segment_files(dir.path()), before, "a plan changes nothing");
    let done = store.retire_segments_before(100, &reason("test")).unwrap();
    assert!(done.done);
    assert_eq!(done.segments, plan.segments);
    assert!(!done.segments.is_empty());
    assert!(done.first_retained_position <= 100);
    assert_eq!(
        segment_files(dir.path()).len(),
        before.len() - done.segments.len()
    );
    for file in &done.segments {
        assert!(!file.path.exists(), "{} still there", file.path.display());
    }

    // The same store, and the store reopened, agree.
    let check = |store: &Store| {
        assert_eq!(store.log_start_position(), done.first_retained_position);
        assert_eq!(store.next_position(), next);
        for (i, &version) in versions.iter().enumerate() {
            assert_eq!(store.stream_version(&format!("s-{i}")), version);
        }
        let all = store.read_all(0, usize::MAX).unwrap();
        assert_eq!(all[0].position, done.first_retained_position);
        assert_eq!(all.len() as u64, next - done.first_retained_position);
        // A stream read from version 1 starts at its first kept event.
        let stream = store.read_stream("s-0", 1, usize::MAX).unwrap();
        assert!(stream[0].version > 1);
        assert_eq!(stream.last().unwrap().version, versions[0]);
        assert!(stream[0].position >= done.first_retained_position);
    };
    check(&store);
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(
        store.recovery_report().is_empty(),
        "{:?}",
        store.recovery_report()
    );
    check(&store);
    let reader = Store::open_read_only(dir.path()).unwrap();
    check(&reader);
    drop(reader);

    // Appends continue each stream's versions.
    let result = store
        .append(
            "s-0",
            ExpectedVersion::Exact(versions[0]),
            &[EventData::new("After", vec![1])],
        )
        .unwrap();
    assert_eq!(result.first_version, versions[0] + 1);
    assert_eq!(result.first_position, next);
    store.close().unwrap();
    assert_verifies(dir.path());
}

#[test]
fn a_stream_with_every_event_retired_keeps_its_version_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    store
        .append(
            "old",
            ExpectedVersion::NoStream,
            &[EventData::new("E", vec![1; 100])],
        )
        .unwrap();
    common::fill(&store, 40, 4, 2, 2000);
    let cut = store.next_position();
    common::fill(&store, 40, 4, 2, 2000);
    let done = store.retire_segments_before(cut, &reason("")).unwrap();
    assert!(done.first_retained_position > 0);
    store.close().unwrap();
    for reopen in [false, true] {
        let store = if reopen {
            Store::open(dir.path(), small_segments()).unwrap()
        } else {
            Store::open_read_only(dir.path()).unwrap()
        };
        assert_eq!(store.stream_version("old"), 1);
        assert!(store.read_stream("old", 1, 10).unwrap().is_empty());
        if reopen {
            let error = store
                .append(
                    "old",
                    ExpectedVersion::NoStream,
                    &[EventData::new("E", vec![])],
                )
                .unwrap_err();
            assert!(
                matches!(error, Error::WrongExpectedVersion { actual: 1, .. }),
                "{error}"
            );
        }
    }
    // Without the index checkpoint, the versions come from the manifest.
    std::fs::remove_file(dir.path().join("index.checkpoint")).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.stream_version("old"), 1);
    store
        .append(
            "old",
            ExpectedVersion::Exact(1),
            &[EventData::new("E", vec![])],
        )
        .unwrap();
    store.close().unwrap();
    assert_verifies(dir.path());
}

#[test]
fn command_ids_in_kept_segments_still_deduplicate_after_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 40);
    let cut = store.next_position();
    let first = store
        .append_idempotent(
            "command-1",
            "cmd",
            ExpectedVersion::Any,
            &[EventData::new("C", vec![])],
        )
        .unwrap();
    common::fill(&store, 40, 4, 5, 2000);
    store.retire_segments_before(cut, &reason("")).unwrap();
    let again = store
        .append_idempotent(
            "command-1",
            "cmd",
            ExpectedVersion::Any,
            &[EventData::new("C", vec![])],
        )
        .unwrap();
    assert_eq!(again, first);
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let again = store
        .append_idempotent(
            "command-1",
            "cmd",
            ExpectedVersion::Any,
            &[EventData::new("C", vec![])],
        )
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(store.stream_version("cmd"), 1);
}

#[test]
fn the_index_checkpoint_is_used_after_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 80);
    store.retire_segments_before(150, &reason("")).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let checkpoint_findings: Vec<_> = store
        .recovery_report()
        .of_kind(|k| matches!(k, FindingKind::IndexCheckpoint { .. }))
        .collect();
    assert!(checkpoint_findings.is_empty(), "{checkpoint_findings:?}");
}

#[test]
fn verify_checks_the_chain_from_the_cut_and_expect_head_still_matches() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let head = ExpectedHead::from(store.chain_head());
    store.retire_segments_before(120, &reason("")).unwrap();
    let head_after = ExpectedHead::from(store.chain_head());
    assert_eq!(head, head_after, "the chain head does not change");
    drop(store);
    let report = verify(dir.path(), &VerifyOptions::default().expect_head(head)).unwrap();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn retiring_into_the_active_segment_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 30);
    let files = segment_files(dir.path());
    let error = store
        .retire_segments_before(store.next_position(), &reason(""))
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    assert!(error.to_string().contains("active segment"), "{error}");
    assert_eq!(segment_files(dir.path()), files);
    assert!(!dir.path().join("annals.retention").exists());
    assert_eq!(store.log_start_position(), 0);
}

#[test]
fn a_wrong_archive_directory_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let files = segment_files(dir.path());
    for archive in [dir.path().join("missing"), dir.path().to_path_buf()] {
        let options = RetireOptions {
            reason: String::new(),
            archive: Some(archive),
        };
        let error = store.retire_segments_before(100, &options).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    }
    assert_eq!(segment_files(dir.path()), files);
    assert!(!dir.path().join("annals.retention").exists());
}

#[test]
fn a_retirement_cut_short_after_its_manifest_is_finished_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let files = segment_files(dir.path());
    store.retire_segments_before(100, &reason("")).unwrap();
    store.close().unwrap();
    // As if the process died before removing the files: put one back.
    let kept = segment_files(dir.path());
    let gone = &files[0];
    assert!(!kept.contains(gone));
    std::fs::write(dir.path().join(gone), vec![0u8; 64 * 1024]).unwrap();
    // A reader ignores it, and says so; verify warns; a writer removes it.
    let reader = Store::open_read_only(dir.path()).unwrap();
    let item = reader
        .recovery_report()
        .of_kind(|k| matches!(k, FindingKind::RetiredSegment { recorded: true, .. }))
        .next()
        .cloned()
        .expect("reported");
    assert_eq!(item.action, RecoveryAction::NotShown);
    drop(reader);
    let report = verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok() && report.warning_count == 1, "{report}");
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(
        store
            .recovery_report()
            .of_kind(|k| matches!(k, FindingKind::RetiredSegment { .. }))
            .all(|item| item.action == RecoveryAction::Removed)
    );
    assert!(!dir.path().join(gone).exists());
}

#[test]
fn a_segment_before_the_cut_that_the_manifest_does_not_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    store.retire_segments_before(100, &reason("")).unwrap();
    store.close().unwrap();
    std::fs::write(dir.path().join("00000000000000000001.seg"), vec![0u8; 4096]).unwrap();
    for result in [
        Store::open_read_only(dir.path()).map(drop),
        Store::open(dir.path(), small_segments()).map(drop),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Corrupt(f) if matches!(f.kind, FindingKind::RetiredSegment { recorded: false, .. })),
            "{error}"
        );
    }
    let report = verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(!report.is_ok(), "{report}");
}

#[test]
fn a_damaged_manifest_is_refused_by_every_opener() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    store.retire_segments_before(100, &reason("")).unwrap();
    store.close().unwrap();
    let path = dir.path().join("annals.retention");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    for result in [
        Store::open_read_only(dir.path()).map(drop),
        Store::open(dir.path(), small_segments()).map(drop),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Corrupt(f) if matches!(f.kind, FindingKind::RetentionManifest { .. })),
            "{error}"
        );
        assert!(error.to_string().contains("annals.retention"), "{error}");
    }
}

#[test]
fn retiring_twice_keeps_both_records_and_the_archive_holds_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 90);
    let options = into_archive(archive.path());
    let first = store.retire_segments_before(80, &options).unwrap();
    let second = store.retire_segments_before(200, &options).unwrap();
    assert!(second.first_retained_position > first.first_retained_position);
    let archived = segment_files(archive.path());
    assert_eq!(archived.len(), first.segments.len() + second.segments.len());
    for file in first.segments.iter().chain(&second.segments) {
        let name = file.path.file_name().unwrap();
        assert!(archive.path().join(name).exists());
    }
    store.close().unwrap();
    assert_verifies(dir.path());
}

#[test]
fn verify_with_the_archive_checks_the_whole_chain_from_genesis_and_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let options = into_archive(archive.path());
    let done = store.retire_segments_before(120, &options).unwrap();
    let head = ExpectedHead::from(store.chain_head());
    store.close().unwrap();

    let with_archive = VerifyOptions::default()
        .archive(archive.path())
        .expect_head(head);
    let report = verify(dir.path(), &with_archive).unwrap();
    assert!(report.is_ok(), "{report}");
    let retired = report.retired.as_ref().unwrap();
    assert!(retired.archive_checked);
    assert_eq!(
        retired.first_retained_position,
        done.first_retained_position
    );
    assert_eq!(report.summary.first_position, Some(0));
    let alone = verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(alone.is_ok(), "{alone}");
    assert!(!alone.retired.as_ref().unwrap().archive_checked);
    assert!(alone.to_string().contains("retired"), "{alone}");

    // A changed byte in an archived segment breaks the chain.
    let first = archive
        .path()
        .join(done.segments[0].path.file_name().unwrap());
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    let report = verify(dir.path(), &with_archive).unwrap();
    assert!(!report.is_ok(), "{report}");
    bytes[200] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    assert!(verify(dir.path(), &with_archive).unwrap().is_ok());

    // A manifest whose recorded stream versions disagree with the archived
    // history is caught.
    let path = dir.path().join("annals.retention");
    let mut manifest =
        annals::format::retention::RetentionManifest::decode(&std::fs::read(&path).unwrap())
            .unwrap();
    manifest.streams_at_cut[0].1 += 1;
    std::fs::write(&path, manifest.encode()).unwrap();
    let report = verify(dir.path(), &with_archive).unwrap();
    assert!(!report.is_ok(), "{report}");
    assert!(report.to_string().contains("streams differ"), "{report}");
}

#[test]
fn verify_with_an_archive_of_a_store_never_cut_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    filled(dir.path(), 10).close().unwrap();
    let error = verify(
        dir.path(),
        &VerifyOptions::default().archive(archive.path()),
    )
    .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
}

#[test]
fn readers_opening_while_a_writer_retires_never_see_a_damaged_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 200);
    let next = store.next_position();
    let path = dir.path().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut opens = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || opens == 0 {
                    let reader = Store::open_read_only(&path)
                        .unwrap_or_else(|e| panic!("a reader failed while retiring: {e}"));
                    assert_eq!(
                        reader.next_position(),
                        next,
                        "start {} report {:?}",
                        reader.log_start_position(),
                        reader.recovery_report()
                    );
                    let all = reader.read_all(0, usize::MAX).unwrap();
                    assert_eq!(all.len() as u64, next - reader.log_start_position());
                    opens += 1;
                }
                opens
            })
        })
        .collect();
    let mut before = 0;
    while store.retire_segments_before(before, &reason("")).is_ok() && before < next {
        before += 16;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert!(store.log_start_position() > 0);
}

#[test]
fn truncation_and_deletion_outlive_the_segments_that_recorded_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    common::fill(&store, 20, 4, 2, 2000);
    let truncated = store.stream_version("s-0");
    store.truncate_stream("s-0", truncated).unwrap();
    let tombstone = store
        .delete_stream("s-1", ExpectedVersion::Exact(store.stream_version("s-1")))
        .unwrap();
    // Enough after them that their segments can go (s-0 only: s-1 is gone).
    common::fill(&store, 60, 4, 1, 2000);
    let cut = store.active_segment_position();
    store.retire_segments_before(cut, &reason("")).unwrap();
    assert!(
        store.log_start_position() > tombstone.last_position,
        "the events recording them are retired"
    );
    let check = |store: &Store, context: &str| {
        let read = store.read_stream("s-0", 1, usize::MAX).unwrap();
        assert!(
            read.first().is_some_and(|e| e.version >= truncated),
            "{context}: {:?}",
            read.first().map(|e| e.version)
        );
        let error = store.read_stream("s-1", 1, 10).unwrap_err();
        assert!(
            matches!(error, Error::StreamDeleted { .. }),
            "{context}: {error}"
        );
    };
    check(&store, "the store that retired");
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    check(&store, "reopened from the checkpoint");
    let error = store
        .append("s-1", ExpectedVersion::Any, &[EventData::new("E", vec![])])
        .unwrap_err();
    assert!(matches!(error, Error::StreamDeleted { .. }), "{error}");
    store.close().unwrap();
    check(&Store::open_read_only(dir.path()).unwrap(), "read-only");
    std::fs::remove_file(dir.path().join("index.checkpoint")).unwrap();
    check(
        &Store::open_read_only(dir.path()).unwrap(),
        "read-only, no checkpoint",
    );
    check(
        &Store::open(dir.path(), small_segments()).unwrap(),
        "reopened without the checkpoint",
    );
}

#[test]
fn an_expected_head_in_the_retired_prefix_needs_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 20);
    let old_head = ExpectedHead::from(store.chain_head());
    common::fill(&store, 60, 4, 5, 2000);
    let options = into_archive(archive.path());
    let cut = store.active_segment_position();
    let done = store.retire_segments_before(cut, &options).unwrap();
    assert!(done.first_retained_position > old_head.position.unwrap());
    store.close().unwrap();
    let alone = verify(dir.path(), &VerifyOptions::default().expect_head(old_head)).unwrap();
    assert!(!alone.is_ok(), "{alone}");
    assert!(alone.to_string().contains("retired prefix"), "{alone}");
    let whole = verify(
        dir.path(),
        &VerifyOptions::default()
            .expect_head(old_head)
            .archive(archive.path()),
    )
    .unwrap();
    assert!(whole.is_ok(), "{whole}");
}

#[test]
fn a_follower_lets_go_of_retired_segments_and_says_when_it_fell_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let follower = Store::open_read_only(dir.path()).unwrap();
    let done = store.retire_segments_before(100, &reason("")).unwrap();
    common::fill(&store, 10, 4, 5, 2000);
    follower.refresh().unwrap();
    assert_eq!(follower.log_start_position(), done.first_retained_position);
    assert_eq!(follower.next_position(), store.next_position());
    let all = follower.read_all(0, usize::MAX).unwrap();
    assert_eq!(all[0].position, done.first_retained_position);
    // The retired files' mappings are released: nothing in this process
    // maps them any more.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for file in &done.segments {
        let path = file.path.canonicalize().unwrap_or_else(|_| {
            dir.path()
                .canonicalize()
                .unwrap()
                .join(file.path.file_name().unwrap())
        });
        let path = path.to_str().unwrap();
        assert!(!maps.contains(path), "{path} is still mapped");
    }

    // A follower that had not read the events retired cannot go on.
    let behind = Store::open_read_only(dir.path()).unwrap();
    common::fill(&store, 60, 4, 5, 2000);
    let cut = store.active_segment_position();
    store.retire_segments_before(cut, &reason("")).unwrap();
    let error = behind.refresh().unwrap_err();
    assert!(matches!(error, Error::Retired { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("retired before this reader read them"),
        "{error}"
    );
}

#[test]
fn an_erasure_outlives_the_segment_recording_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    store
        .append(
            "customer-1",
            ExpectedVersion::Any,
            &[EventData::new("Registered", vec![7; 100]).with_subject("subject-1")],
        )
        .unwrap();
    let erasure = store.erase_subject("subject-1", "asked to").unwrap();
    common::fill(&store, 60, 4, 5, 2000);
    let cut = store.active_segment_position();
    store.retire_segments_before(cut, &reason("")).unwrap();
    assert!(store.log_start_position() > erasure.last_position);
    let check = |store: &Store, context: &str| {
        assert_eq!(
            store.erasure_of("subject-1"),
            Some(erasure.first_position),
            "{context}"
        );
    };
    check(&store, "the store that retired");
    store.close().unwrap();
    check(&Store::open_read_only(dir.path()).unwrap(), "read-only");
    let store = Store::open(dir.path(), small_segments()).unwrap();
    check(&store, "reopened");
    // The subject cannot come back.
    let error = store
        .append(
            "customer-1",
            ExpectedVersion::Any,
            &[EventData::new("Registered", vec![1]).with_subject("subject-1")],
        )
        .unwrap_err();
    assert!(matches!(error, Error::SubjectErased { .. }), "{error}");
    let error = store.erase_subject("subject-1", "again").unwrap_err();
    assert!(matches!(error, Error::SubjectErased { .. }), "{error}");
    store.close().unwrap();
    std::fs::remove_file(dir.path().join("index.checkpoint")).unwrap();
    check(
        &Store::open(dir.path(), small_segments()).unwrap(),
        "reopened without the checkpoint",
    );
}

#[test]
fn verify_with_a_directory_archive_compares_each_copy_with_the_manifests_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 60);
    let done = store
        .retire_segments_before(120, &into_archive(archive.path()))
        .unwrap();
    store.close().unwrap();
    let with_archive = VerifyOptions::default().archive(archive.path());
    assert!(verify(dir.path(), &with_archive).unwrap().is_ok());

    // A byte changed in the slack between a copy's data and its footer: no
    // batch, checksum or chain covers it, only the SHA-256 the manifest
    // recorded of the file at retirement.
    let name = done.segments[0].path.file_name().unwrap().to_owned();
    let copy = archive.path().join(&name);
    let slack = 128 + common::footer_data_len(&copy) + 10;
    assert!(slack < std::fs::metadata(&copy).unwrap().len() - 128);
    common::flip_byte(&copy, slack);
    let report = verify(dir.path(), &with_archive).unwrap();
    assert!(!report.is_ok(), "{report}");
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == annals::verify::ProblemKind::Archive)
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(problem.path, copy, "{report}");
    assert!(problem.message.contains("SHA-256"), "{report}");
    assert!(problem.message.contains("retention manifest"), "{report}");
    common::flip_byte(&copy, slack);
    assert!(verify(dir.path(), &with_archive).unwrap().is_ok());
}
