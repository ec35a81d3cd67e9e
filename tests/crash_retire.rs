//! Crashes while retiring segments: a process killed before each step of a
//! retirement (with and without an archive), and a power loss after each
//! (every directory change not yet synced lost), leave the old store or
//! the retired one: it opens, reads every kept event, keeps every stream's
//! version, and verifies; a writer finishes what the crash left.

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use annals::hooks::{DerivedFileStep, Hooks, StorageHooks};
use annals::{Options, RetireOptions, Store, VerifyOptions, verify};

const CHILD_DIR_ENV: &str = "ANNALS_RETIRE_CRASH_DIR";
const CHILD_ARCHIVE_ENV: &str = "ANNALS_RETIRE_CRASH_ARCHIVE";
const CHILD_STEP_ENV: &str = "ANNALS_RETIRE_CRASH_STEP";
const CHILD_TEST_NAME: &str = "retire_crash_child_entry_point";
/// Where the retirement cuts (a position inside a sealed segment: the
/// segments wholly before it go).
const CUT: u64 = 150;
/// The exit code of a child that died at its step.
const DIED: i32 = 86;

/// The store every run starts from, and what it holds.
struct Template {
    _dir: tempfile::TempDir,
    path: PathBuf,
    versions: Vec<(String, u64)>,
    next_position: u64,
}

fn template() -> Template {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), common::small_segments()).unwrap();
    common::fill(&store, 60, 4, 5, 2000);
    let versions = (0..5)
        .map(|i| {
            let name = format!("s-{i}");
            let version = store.stream_version(&name);
            (name, version)
        })
        .collect();
    let next_position = store.next_position();
    store.close().unwrap();
    Template {
        path: dir.path().to_path_buf(),
        _dir: dir,
        versions,
        next_position,
    }
}

/// Counts the steps of a retirement (derived-file steps and removals) and
/// does something at each.
struct Steps<F: Fn(usize) -> io::Result<()> + Send + Sync> {
    /// Steps are counted once the retirement starts (not open's own).
    armed: AtomicBool,
    count: AtomicUsize,
    at: F,
}

impl<F: Fn(usize) -> io::Result<()> + Send + Sync> Steps<F> {
    fn step(&self) -> io::Result<()> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        (self.at)(n)
    }
}

impl<F: Fn(usize) -> io::Result<()> + Send + Sync> StorageHooks for Steps<F> {
    fn before_derived_file_step(&self, _path: &Path, _step: DerivedFileStep) -> io::Result<()> {
        self.step()
    }

    fn before_remove_file(&self, _path: &Path) -> io::Result<()> {
        self.step()
    }
}

fn options_with(hooks: Hooks) -> Options {
    let mut options = common::small_segments();
    options.hooks = hooks;
    options
}

fn retire_options(archive: Option<&Path>) -> RetireOptions {
    RetireOptions {
        reason: "crash test".to_string(),
        archive: archive.map(Path::to_path_buf),
    }
}

/// Opens `dir` and retires, calling `at` with the number of each step of
/// the retirement; returns how many there were.
fn retire_with(
    dir: &Path,
    archive: Option<&Path>,
    at: impl Fn(usize) -> io::Result<()> + Send + Sync + 'static,
) -> usize {
    let steps = Arc::new(Steps {
        armed: AtomicBool::new(false),
        count: AtomicUsize::new(0),
        at,
    });
    let store = Store::open(dir, options_with(Hooks::new(steps.clone()))).unwrap();
    steps.armed.store(true, Ordering::SeqCst);
    store
        .retire_segments_before(CUT, &retire_options(archive))
        .unwrap();
    steps.armed.store(false, Ordering::SeqCst);
    steps.count.load(Ordering::SeqCst)
}

/// The checks every store left by a crash must pass: it opens (read-only
/// and as a writer), holds the old log or the retired one, keeps every
/// version and event, and verifies (with the archive too, when retired
/// into one). Returns where the log starts.
fn check(dir: &Path, archive: Option<&Path>, template: &Template, context: &str) -> u64 {
    let reader = Store::open_read_only(dir)
        .unwrap_or_else(|e| panic!("{context}: read-only open failed: {e}"));
    let reader_start = reader.log_start_position();
    drop(reader);
    let store = Store::open(dir, common::small_segments())
        .unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
    let start = store.log_start_position();
    assert_eq!(start, reader_start, "{context}: reader and writer disagree");
    assert!(start == 0 || start <= CUT, "{context}: starts at {start}");
    assert_eq!(store.next_position(), template.next_position, "{context}");
    for (name, version) in &template.versions {
        assert_eq!(store.stream_version(name), *version, "{context}: {name}");
    }
    let all = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(
        all.len() as u64,
        template.next_position - start,
        "{context}"
    );
    assert_eq!(all.first().map(|e| e.position), Some(start), "{context}");
    // Nothing before the start is left behind by a writer.
    for file in common::segment_files(dir) {
        let base: u64 = file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".seg")
            .parse()
            .unwrap();
        assert!(base >= start, "{context}: {} left", file.display());
    }
    store.close().unwrap();
    let report = verify(dir, &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{context}: {report}");
    if let (Some(archive), true) = (archive, start > 0) {
        let report = verify(dir, &VerifyOptions::default().archive(archive)).unwrap();
        assert!(report.is_ok(), "{context}: with the archive: {report}");
    }
    start
}

/// In the child: retires, dying at the step asked for. In a normal test
/// run: does nothing.
#[test]
fn retire_crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let archive = std::env::var(CHILD_ARCHIVE_ENV).ok().map(PathBuf::from);
    let die_at: usize = std::env::var(CHILD_STEP_ENV).unwrap().parse().unwrap();
    retire_with(Path::new(&dir), archive.as_deref(), move |n| {
        if n == die_at {
            // Dies on the spot: no destructor, no close, as a kill would.
            std::process::exit(DIED);
        }
        Ok(())
    });
}

fn killed_at_every_step(with_archive: bool) {
    let template = template();
    // How many steps a whole retirement takes.
    let counting = tempfile::tempdir().unwrap();
    common::copy_dir(&template.path, counting.path());
    let counting_archive = tempfile::tempdir().unwrap();
    let steps = retire_with(
        counting.path(),
        with_archive.then_some(counting_archive.path()),
        |_| Ok(()),
    );
    assert!(steps >= 6, "{steps} steps");
    let mut starts = std::collections::BTreeSet::new();
    for die_at in 0..steps {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("store");
        let archive = work.path().join("archive");
        common::copy_dir(&template.path, &dir);
        std::fs::create_dir(&archive).unwrap();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                CHILD_TEST_NAME,
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, &dir)
            .env(CHILD_STEP_ENV, die_at.to_string());
        if with_archive {
            command.env(CHILD_ARCHIVE_ENV, &archive);
        }
        let status = command.output().unwrap().status;
        assert_eq!(status.code(), Some(DIED), "the child died at step {die_at}");
        let context = format!("killed before step {die_at} of {steps} (archive: {with_archive})");
        starts.insert(check(
            &dir,
            with_archive.then_some(&*archive),
            &template,
            &context,
        ));
    }
    // Both outcomes were seen: the crash points span the commit point.
    assert_eq!(starts.len(), 2, "{starts:?}");
}

#[test]
fn a_process_killed_at_any_step_of_a_retirement_leaves_the_old_or_the_new_store() {
    killed_at_every_step(false);
}

#[test]
fn a_process_killed_at_any_step_of_an_archiving_retirement_leaves_the_old_or_the_new_store() {
    killed_at_every_step(true);
}

#[test]
fn a_power_loss_after_any_step_of_a_retirement_leaves_the_old_or_the_new_store() {
    let template = template();
    for with_archive in [false, true] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("store");
        let archive = work.path().join("archive");
        common::copy_dir(&template.path, &dir);
        std::fs::create_dir(&archive).unwrap();
        // The durable state after each directory sync: what a power loss
        // right after it, before the next, leaves (every later rename or
        // removal lost; file contents were synced before their renames).
        let images = Arc::new(Mutex::new(vec![work.path().join("image-0")]));
        common::copy_dir(&dir, &work.path().join("image-0/store"));
        common::copy_dir(&archive, &work.path().join("image-0/archive"));
        let (store_dir, archive_dir, root) =
            (dir.clone(), archive.clone(), work.path().to_path_buf());
        let taken = images.clone();
        let snapshot = move |_: usize| -> io::Result<()> {
            let mut images = taken.lock().unwrap();
            let image = root.join(format!("image-{}", images.len()));
            common::copy_dir(&store_dir, &image.join("store"));
            common::copy_dir(&archive_dir, &image.join("archive"));
            images.push(image);
            Ok(())
        };
        let steps = Arc::new(DirSyncs(Box::new(snapshot)));
        let store = Store::open(&dir, options_with(Hooks::new(steps))).unwrap();
        store
            .retire_segments_before(CUT, &retire_options(with_archive.then_some(&*archive)))
            .unwrap();
        drop(store);
        let images = images.lock().unwrap().clone();
        assert!(images.len() >= 3, "{images:?}");
        let mut starts = std::collections::BTreeSet::new();
        for (i, image) in images.iter().enumerate() {
            let context = format!("power loss after directory sync {i} (archive: {with_archive})");
            let archive = image.join("archive");
            starts.insert(check(
                &image.join("store"),
                with_archive.then_some(&*archive),
                &template,
                &context,
            ));
        }
        assert_eq!(starts.len(), 2, "{starts:?}");
    }
}

/// Calls its function before each directory sync.
struct DirSyncs(Box<dyn Fn(usize) -> io::Result<()> + Send + Sync>);

impl StorageHooks for DirSyncs {
    fn before_derived_file_step(&self, _path: &Path, step: DerivedFileStep) -> io::Result<()> {
        if step == DerivedFileStep::SyncDirectory {
            (self.0)(0)?;
        }
        Ok(())
    }
}
