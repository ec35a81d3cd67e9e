//! Archiving to object storage through the library, against a real S3 API
//! server (moto, started by .ci/run) and file:// targets: push and rerun,
//! interruptions at every request, tampering caught by verify, object
//! lock, pull, and retirement that requires the archive.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use annals::archive::{self, ArchiveTarget, ObjectLock, PushOptions};
use annals::hooks::{DerivedFileStep, Hooks, StorageHooks};
use annals::verify::ProblemKind;
use annals::{Error, RetireOptions, Store, VerifyOptions};

fn sealed_count(dir: &Path) -> usize {
    common::segment_files(dir).len() - 1
}

/// A bucket of its own on the S3 server, or `None` to skip.
fn s3_target(what: &str, object_lock: bool) -> Option<(String, String, ArchiveTarget)> {
    let endpoint = s3::endpoint()?;
    s3::set_env(&endpoint);
    let bucket = s3::unique_bucket(what);
    s3::create_bucket(&endpoint, &bucket, object_lock);
    let target = format!("s3://{bucket}/stores/one").parse().unwrap();
    Some((endpoint, bucket, target))
}

fn push(dir: &Path, target: &ArchiveTarget) -> archive::PushReport {
    archive::push(dir, target, &PushOptions::default(), &mut |_| {}).unwrap()
}

#[test]
fn push_uploads_every_sealed_segment_once_and_a_rerun_nothing() {
    let Some((endpoint, bucket, target)) = s3_target("push", false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    let first = push(dir.path(), &target);
    assert_eq!(first.uploaded.len(), sealed_count(dir.path()));
    assert!(first.already_archived.is_empty());
    let second = push(dir.path(), &target);
    assert!(second.uploaded.is_empty(), "{second:?}");
    assert_eq!(second.already_archived, first.uploaded);
    let keys = s3::keys(&endpoint, &bucket, "stores/one/");
    assert_eq!(keys.len(), 2 * sealed_count(dir.path()), "{keys:?}");
    let report = archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.summary.sealed_segments as usize,
        sealed_count(dir.path())
    );
}

#[test]
fn file_targets_work_too() {
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    let archive_dir = tempfile::tempdir().unwrap();
    let target: ArchiveTarget = format!("file://{}/nested", archive_dir.path().display())
        .parse()
        .unwrap();
    assert_eq!(
        push(dir.path(), &target).uploaded.len(),
        sealed_count(dir.path())
    );
    assert!(push(dir.path(), &target).uploaded.is_empty());
    let report = archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{report}");
}

/// Fails the `fail_at`-th put or progress-file write of a push (counted
/// from 0), as a process killed just before it would.
struct FailAt {
    count: AtomicUsize,
    fail_at: usize,
}

impl FailAt {
    fn step(&self) -> io::Result<()> {
        if self.count.fetch_add(1, Ordering::SeqCst) == self.fail_at {
            return Err(io::Error::other("interrupted here by the test"));
        }
        Ok(())
    }
}

impl StorageHooks for FailAt {
    fn before_archive_put(&self, _object: &str) -> io::Result<()> {
        self.step()
    }
    fn before_derived_file_step(&self, _path: &Path, _step: DerivedFileStep) -> io::Result<()> {
        self.step()
    }
}

#[test]
fn a_push_interrupted_at_every_step_then_rerun_holds_every_segment_once() {
    let Some((endpoint, bucket, _)) = s3_target("interrupt", false) else {
        return;
    };
    let template = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(template.path());
    let sealed = sealed_count(template.path());
    let mut fail_at = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        common::copy_dir(template.path(), dir.path());
        let target: ArchiveTarget = format!("s3://{bucket}/run-{fail_at}").parse().unwrap();
        let hooks = Arc::new(FailAt {
            count: AtomicUsize::new(0),
            fail_at,
        });
        let options = PushOptions::default().hooks(Hooks::new(hooks));
        let interrupted = archive::push(dir.path(), &target, &options, &mut |_| {});
        if interrupted.is_ok() {
            // Past the last step: every step was interrupted once.
            assert!(fail_at > 3 * sealed, "only {fail_at} steps");
            break;
        }
        let rerun = push(dir.path(), &target);
        assert_eq!(
            rerun.uploaded.len() + rerun.already_archived.len(),
            sealed,
            "step {fail_at}: {rerun:?}"
        );
        let keys = s3::keys(&endpoint, &bucket, &format!("run-{fail_at}/"));
        assert_eq!(keys.len(), 2 * sealed, "step {fail_at}: {keys:?}");
        let report =
            archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {}).unwrap();
        assert!(report.is_ok(), "step {fail_at}: {report}");
        assert!(push(dir.path(), &target).uploaded.is_empty());
        fail_at += 1;
    }
}

#[test]
fn a_tampered_segment_object_is_caught_by_verify_with_its_name() {
    let Some((endpoint, bucket, target)) = s3_target("tamper", false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    push(dir.path(), &target);
    let name = "00000000000000000000.seg";
    let mut bytes = std::fs::read(dir.path().join(name)).unwrap();
    bytes[5000] ^= 0x40;
    let key = format!("/{bucket}/stores/one/segments/{name}");
    assert_eq!(s3::request(&endpoint, "PUT", &key, &[], &bytes).status, 200);

    let report = archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(!report.is_ok(), "{report}");
    let text = report.to_string();
    let archive_problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Archive)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        archive_problem
            .path
            .to_string_lossy()
            .ends_with(&format!("segments/{name}")),
        "{text}"
    );
    assert!(archive_problem.message.contains("SHA-256"), "{text}");
    // The same walk as a store's: the damaged bytes themselves, located.
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind != ProblemKind::Archive
                && p.path.to_string_lossy().contains(name)
                && p.offset > 0
                && p.offset <= 5000),
        "{text}"
    );
    // A push refuses to go on over a different object under its name.
    std::fs::remove_file(dir.path().join(annals::format::ARCHIVE_PROGRESS_FILE_NAME)).unwrap();
    let error =
        archive::push(dir.path(), &target, &PushOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(error, Error::ArchiveMismatch { .. }), "{error}");
    assert!(error.to_string().contains(name), "{error}");
}

#[test]
fn object_lock_retention_is_set_and_a_delete_is_refused() {
    let Some((endpoint, bucket, target)) = s3_target("lock", true) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    // 2031-01-01T00:00:00Z
    let lock = ObjectLock {
        retain_until_ns: 1_924_992_000 * 1_000_000_000,
    };
    let options = PushOptions::default().lock(lock);
    archive::push(dir.path(), &target, &options, &mut |_| {}).unwrap();
    let key = format!("/{bucket}/stores/one/segments/00000000000000000000.seg");
    let head = s3::request(&endpoint, "HEAD", &key, &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert_eq!(
        head.header("x-amz-object-lock-retain-until-date"),
        Some("2031-01-01T00:00:00Z")
    );
    let version = head.header("x-amz-version-id").unwrap().to_string();
    let delete = s3::request(
        &endpoint,
        "DELETE",
        &format!("{key}?versionId={version}"),
        &[],
        b"",
    );
    assert_eq!(
        delete.status,
        403,
        "{}",
        String::from_utf8_lossy(&delete.body)
    );
    assert!(
        archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {})
            .unwrap()
            .is_ok()
    );
}

#[test]
fn pull_restores_a_directory_that_opens_read_only_and_verifies() {
    let Some((_, _, target)) = s3_target("pull", false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sealed_end = common::filled_with_sealed_segments(dir.path());
    push(dir.path(), &target);
    let restored = tempfile::tempdir().unwrap();
    let to = restored.path().join("restored");
    let pulled = archive::pull(&target, &to, &mut |_, _| {}).unwrap();
    assert_eq!(pulled.written.len(), sealed_count(dir.path()));
    let report = annals::verify(&to, &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report}");
    let store = Store::open_read_only(&to).unwrap();
    assert_eq!(store.next_position(), sealed_end);
    let original = Store::open_read_only(dir.path()).unwrap();
    let all = common::all_events(&original);
    assert_eq!(common::all_events(&store), all[..sealed_end as usize]);
}

#[test]
fn retirement_requiring_the_archive_refuses_a_missing_or_different_segment() {
    let Some((endpoint, bucket, target)) = s3_target("retire", false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sealed_end = common::filled_with_sealed_segments(dir.path());
    let files = common::segment_files(dir.path());
    let store = Store::open(dir.path(), common::small_segments()).unwrap();
    let options = RetireOptions {
        reason: "kept in the archive".into(),
        archive: None,
    };
    // Nothing archived yet: refused, nothing removed.
    let error = archive::retire_archived(&store, sealed_end, &options, &target).unwrap_err();
    assert!(matches!(error, Error::Archive { .. }), "{error}");
    assert!(error.to_string().contains("not archived"), "{error}");
    store.close().unwrap();
    assert_eq!(common::segment_files(dir.path()), files);

    push(dir.path(), &target);
    // A different object under the first segment's name: refused.
    let name = "00000000000000000000.seg";
    let mut bytes = std::fs::read(dir.path().join(name)).unwrap();
    bytes[100] ^= 1;
    let key = format!("/{bucket}/stores/one/segments/{name}");
    assert_eq!(s3::request(&endpoint, "PUT", &key, &[], &bytes).status, 200);
    let store = Store::open(dir.path(), common::small_segments()).unwrap();
    let error = archive::retire_archived(&store, sealed_end, &options, &target).unwrap_err();
    assert!(matches!(error, Error::ArchiveMismatch { .. }), "{error}");
    assert_eq!(common::segment_files(dir.path()), files);
    store.close().unwrap();

    // Restored: retired, and the whole chain verifies from the archive.
    let original = std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(
        s3::request(&endpoint, "PUT", &key, &[], &original).status,
        200
    );
    let store = Store::open(dir.path(), common::small_segments()).unwrap();
    let done = archive::retire_archived(&store, sealed_end, &options, &target).unwrap();
    assert_eq!(done.segments.len(), files.len() - 1);
    store.close().unwrap();
    let report =
        archive::verify_with_archive(dir.path(), &target, &VerifyOptions::default(), &mut |_| {})
            .unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.retired.unwrap().archive_checked);
    assert_eq!(report.summary.first_position, Some(0));
}

#[test]
fn an_unknown_bucket_is_a_clear_error() {
    let Some(endpoint) = s3::endpoint() else {
        return;
    };
    s3::set_env(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    let target: ArchiveTarget = "s3://annals-no-such-bucket/x".parse().unwrap();
    let error =
        archive::push(dir.path(), &target, &PushOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(error, Error::Archive { .. }), "{error}");
    assert!(
        error.to_string().contains("s3://annals-no-such-bucket/x"),
        "{error}"
    );
}

#[test]
fn a_damaged_progress_file_is_ignored_and_the_archive_compared() {
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    let archive_dir = tempfile::tempdir().unwrap();
    let target: ArchiveTarget = format!("file://{}", archive_dir.path().display())
        .parse()
        .unwrap();
    push(dir.path(), &target);
    let progress = dir.path().join(annals::format::ARCHIVE_PROGRESS_FILE_NAME);
    std::fs::write(&progress, b"{ damaged").unwrap();
    let rerun = push(dir.path(), &target);
    assert!(rerun.uploaded.is_empty());
    assert_eq!(rerun.already_archived.len(), sealed_count(dir.path()));
    assert!(rerun.progress_ignored.unwrap().contains("damaged"));
    // A store that has it still verifies and opens.
    assert!(
        annals::verify(dir.path(), &VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn bad_urls_and_stores_without_sealed_segments_are_refused() {
    for url in [
        "s3://",
        "s3://A_B/x",
        "http://x/y",
        "file://relative",
        "s3://bucket/a//b",
    ] {
        let error = url.parse::<ArchiveTarget>().unwrap_err();
        assert!(matches!(error, Error::Archive { .. }), "{url}: {error}");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), common::small_segments()).unwrap();
    common::fill(&store, 1, 1, 1, 10);
    store.close().unwrap();
    let archive_dir = tempfile::tempdir().unwrap();
    let target: ArchiveTarget = format!("file://{}", archive_dir.path().display())
        .parse()
        .unwrap();
    let error =
        archive::push(dir.path(), &target, &PushOptions::default(), &mut |_| {}).unwrap_err();
    assert!(error.to_string().contains("no sealed segment"), "{error}");
}
