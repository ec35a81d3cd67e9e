//! Pushes to an archive killed part way: a child process (this test binary
//! run again) pushes and dies on the spot before each step of the push
//! (every put of a segment, every put of its record, every step of writing
//! the progress file), and `annals archive push` is killed with SIGKILL
//! mid-push; then the push is run again. Every sealed segment must end up
//! in the archive exactly once with its record, nothing missing and
//! nothing more, the archive must verify, and a further push upload
//! nothing. Against the S3 API server of .ci/run (moto) and file://.

mod common;
#[path = "common/run.rs"]
mod run;
#[path = "common/s3.rs"]
mod s3;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals::archive::{self, ArchiveTarget, PushOptions};
use annals::hooks::{DerivedFileStep, Hooks, StorageHooks};
use annals::{Store, VerifyOptions};

const CHILD_DIR_ENV: &str = "ANNALS_ARCHIVE_CRASH_DIR";
const CHILD_URL_ENV: &str = "ANNALS_ARCHIVE_CRASH_URL";
const CHILD_STEP_ENV: &str = "ANNALS_ARCHIVE_CRASH_STEP";
const CHILD_TEST_NAME: &str = "archive_crash_child_entry_point";
/// The exit code of a child that died at its step.
const DIED: i32 = 86;
/// The exit code of a child whose push finished without reaching its step.
const NOT_REACHED: i32 = 87;
/// How long the command-line push may take to upload its first object.
const FIRST_UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the tests archive to.
#[derive(Clone)]
enum Where {
    /// A bucket on the S3 server at `endpoint`.
    S3 { endpoint: String, bucket: String },
    /// A directory.
    Directory(PathBuf),
}

impl Where {
    /// A bucket of its own on the S3 server, or `None` to skip.
    fn s3(what: &str) -> Option<Where> {
        let endpoint = s3::endpoint()?;
        s3::set_env(&endpoint);
        let bucket = s3::unique_bucket(what);
        s3::create_bucket(&endpoint, &bucket, false);
        Some(Where::S3 { endpoint, bucket })
    }

    /// The URL of the archive `name` here.
    fn url(&self, name: &str) -> String {
        match self {
            Where::S3 { bucket, .. } => format!("s3://{bucket}/{name}"),
            Where::Directory(dir) => format!("file://{}/{name}", dir.display()),
        }
    }

    /// The environment a process pushing here needs.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Where::S3 { endpoint, .. } => s3::env(endpoint),
            Where::Directory(_) => Vec::new(),
        }
    }

    /// Every object of the archive `name`, by its name under the prefix.
    fn objects(&self, name: &str) -> BTreeSet<String> {
        match self {
            Where::S3 { endpoint, bucket } => {
                let prefix = format!("{name}/");
                s3::keys(endpoint, bucket, &prefix)
                    .into_iter()
                    .map(|key| key.strip_prefix(&prefix).unwrap().to_string())
                    .collect()
            }
            Where::Directory(dir) => {
                let root = dir.join(name);
                let mut found = BTreeSet::new();
                let mut pending = vec![root.clone()];
                while let Some(folder) = pending.pop() {
                    let Ok(entries) = std::fs::read_dir(&folder) else {
                        continue;
                    };
                    for entry in entries {
                        let path = entry.unwrap().path();
                        if path.is_dir() {
                            pending.push(path);
                        } else {
                            let relative = path.strip_prefix(&root).unwrap();
                            found.insert(relative.to_string_lossy().into_owned());
                        }
                    }
                }
                found
            }
        }
    }
}

/// The sealed segments of the store in `dir` (all segment files but the
/// newest), by file name.
fn sealed_names(dir: &Path) -> Vec<String> {
    let files = common::segment_files(dir);
    files[..files.len() - 1]
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_string())
        .collect()
}

/// The objects a complete archive of `sealed` holds: each segment and its
/// record, and nothing else.
fn complete_archive(sealed: &[String]) -> BTreeSet<String> {
    sealed
        .iter()
        .flat_map(|name| [format!("segments/{name}"), format!("records/{name}.json")])
        .collect()
}

/// Checks that the archive `name` holds every sealed segment of the store
/// in `dir` exactly once with its record and nothing more, that it
/// verifies from genesis, that a push now uploads nothing, and that the
/// store still verifies.
///
/// With `staging_allowed`, a directory archive may also hold object_store's
/// staging files (`NAME#DIGITS`) of puts killed half way: they are not
/// objects (object_store lists and reads past them), and nothing removes
/// them, since another push may be writing one.
fn check_complete(dir: &Path, place: &Where, name: &str, staging_allowed: bool, context: &str) {
    let sealed = sealed_names(dir);
    let (staging, objects): (BTreeSet<String>, BTreeSet<String>) =
        place.objects(name).into_iter().partition(|object| {
            staging_allowed
                && object
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    assert!(staging.len() <= 1, "{context}: {staging:?}");
    assert_eq!(
        objects,
        complete_archive(&sealed),
        "{context}: the archive's objects"
    );
    let target: ArchiveTarget = place.url(name).parse().unwrap();
    let report = archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(report.is_ok(), "{context}: {report}");
    assert_eq!(
        report.summary.sealed_segments as usize,
        sealed.len(),
        "{context}"
    );
    let again = archive::push(dir, &target, &PushOptions::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{context}: a further push: {e}"));
    assert!(again.uploaded.is_empty(), "{context}: {again:?}");
    let names: Vec<&str> = again
        .already_archived
        .iter()
        .map(|s| s.file_name.as_str())
        .collect();
    assert_eq!(names, sealed, "{context}");
    assert!(again.progress_ignored.is_none(), "{context}: {again:?}");
    let store = annals::verify(dir, &VerifyOptions::default()).unwrap();
    assert!(store.is_ok(), "{context}: the store: {store}");
}

/// Calls its function before each step of a push, with the step's number
/// (from 0), and records what each step was.
struct Steps<F: Fn(usize) + Send + Sync> {
    count: AtomicUsize,
    seen: Mutex<Vec<String>>,
    at: F,
}

impl<F: Fn(usize) + Send + Sync> Steps<F> {
    fn step(&self, what: String) -> io::Result<()> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(what);
        (self.at)(n);
        Ok(())
    }
}

impl<F: Fn(usize) + Send + Sync> StorageHooks for Steps<F> {
    fn before_archive_put(&self, object: &str) -> io::Result<()> {
        self.step(format!("put {object}"))
    }

    fn before_derived_file_step(&self, _path: &Path, step: DerivedFileStep) -> io::Result<()> {
        self.step(format!("progress file: {step:?}"))
    }
}

/// Pushes the store in `dir` to `url`, calling `at` before each step;
/// returns what the steps were.
fn push_with(dir: &Path, url: &str, at: impl Fn(usize) + Send + Sync + 'static) -> Vec<String> {
    let steps = Arc::new(Steps {
        count: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
        at,
    });
    let target: ArchiveTarget = url.parse().unwrap();
    let options = PushOptions::default().hooks(Hooks::new(steps.clone()));
    archive::push(dir, &target, &options, &mut |_| {}).unwrap();
    steps.seen.lock().unwrap().clone()
}

/// In the child: pushes, dying at the step asked for. In a normal test
/// run: does nothing.
#[test]
fn archive_crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let url = std::env::var(CHILD_URL_ENV).unwrap();
    let die_at: usize = std::env::var(CHILD_STEP_ENV).unwrap().parse().unwrap();
    push_with(Path::new(&dir), &url, move |n| {
        if n == die_at {
            // Dies on the spot: no destructor, no close, as a kill would.
            std::process::exit(DIED);
        }
    });
    std::process::exit(NOT_REACHED);
}

fn killed_before_every_step(place: &Where) {
    let template = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(template.path());
    let sealed = sealed_names(template.path());
    assert!(sealed.len() >= 3, "{sealed:?}");

    // What a whole push does, step by step: for each segment, its put,
    // its record's put, and the four steps of rewriting the progress file.
    let counting = tempfile::tempdir().unwrap();
    common::copy_dir(template.path(), counting.path());
    let steps = push_with(counting.path(), &place.url("counting"), |_| {});
    let expected: Vec<String> = sealed
        .iter()
        .flat_map(|name| {
            [
                format!("put segments/{name}"),
                format!("put records/{name}.json"),
                "progress file: Write".to_string(),
                "progress file: Sync".to_string(),
                "progress file: Rename".to_string(),
                "progress file: SyncDirectory".to_string(),
            ]
        })
        .collect();
    assert_eq!(steps, expected);

    for die_at in 0..steps.len() {
        let context = format!("killed before step {die_at} ({})", steps[die_at]);
        let work = tempfile::tempdir().unwrap();
        common::copy_dir(template.path(), work.path());
        let name = format!("run-{die_at}");
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                CHILD_TEST_NAME,
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, work.path())
            .env(CHILD_URL_ENV, place.url(&name))
            .env(CHILD_STEP_ENV, die_at.to_string())
            .envs(place.env())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(DIED),
            "{context}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The child got exactly that far: the objects put before it died.
        let put_before: BTreeSet<String> = steps[..die_at]
            .iter()
            .filter_map(|step| step.strip_prefix("put "))
            .map(str::to_string)
            .collect();
        assert_eq!(place.objects(&name), put_before, "{context}");

        let target: ArchiveTarget = place.url(&name).parse().unwrap();
        let rerun = archive::push(work.path(), &target, &PushOptions::default(), &mut |_| {})
            .unwrap_or_else(|e| panic!("{context}: the rerun: {e}"));
        let mut names: Vec<&str> = rerun
            .uploaded
            .iter()
            .chain(&rerun.already_archived)
            .map(|s| s.file_name.as_str())
            .collect();
        names.sort();
        assert_eq!(names, sealed, "{context}: {rerun:?}");
        // Uploaded by the rerun: every segment whose record the child had
        // not put.
        let uploaded: Vec<&str> = rerun
            .uploaded
            .iter()
            .map(|s| s.file_name.as_str())
            .collect();
        let unfinished: Vec<&str> = sealed
            .iter()
            .filter(|n| !put_before.contains(&format!("records/{n}.json")))
            .map(String::as_str)
            .collect();
        assert_eq!(uploaded, unfinished, "{context}");
        check_complete(work.path(), place, &name, false, &context);
    }
}

#[test]
fn a_push_killed_before_any_step_then_rerun_archives_every_segment_once_on_s3() {
    let Some(place) = Where::s3("crash") else {
        return;
    };
    killed_before_every_step(&place);
}

#[test]
fn a_push_killed_before_any_step_then_rerun_archives_every_segment_once_in_a_directory() {
    let archives = tempfile::tempdir().unwrap();
    killed_before_every_step(&Where::Directory(archives.path().to_path_buf()));
}

/// Runs `annals` with `args` and the environment of `place`.
fn annals(place: &Where, args: &[&str]) -> run::Run {
    let output = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(args)
        .envs(place.env())
        .output()
        .unwrap();
    run::Run {
        code: output.status.code().expect("annals exits, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `annals archive push` of a store of many segments, killed with SIGKILL
/// as soon as its first object is in the archive, then run again.
fn killed_command_line_push(place: &Where) {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path(), common::small_segments()).unwrap();
    common::fill(&store, 800, 4, 5, 2000);
    store.close().unwrap();
    let sealed = sealed_names(work.path());
    assert!(sealed.len() >= 50, "{} sealed segments", sealed.len());
    let dir = run::path(work.path());
    let url = place.url("killed");

    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["archive", "push", dir, "--to", &url])
        .envs(place.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while place.objects("killed").is_empty() {
        assert!(
            started.elapsed() < FIRST_UPLOAD_TIMEOUT,
            "nothing uploaded in {FIRST_UPLOAD_TIMEOUT:?}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push ended before its first upload was seen"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push finished before it could be killed"
    );
    // Child::kill is SIGKILL, to this child's pid.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal: {status:?}");
    let left = place.objects("killed");
    assert!(
        !left.is_empty() && left.len() < 2 * sealed.len(),
        "killed mid-push: {} of {} objects",
        left.len(),
        2 * sealed.len()
    );

    let rerun = annals(place, &["archive", "push", dir, "--to", &url, "--json"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let report: serde_json::Value = serde_json::from_str(rerun.stdout.trim()).unwrap();
    let count = |field: &str| report[field].as_array().unwrap().len();
    assert_eq!(
        count("uploaded") + count("already_archived"),
        sealed.len(),
        "{report}"
    );
    assert!(count("uploaded") > 0, "{report}");
    let verified = annals(place, &["verify", &url]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    check_complete(work.path(), place, "killed", true, "after SIGKILL");
}

#[test]
fn annals_archive_push_killed_mid_push_then_rerun_completes_the_archive_on_s3() {
    let Some(place) = Where::s3("crash-cli") else {
        return;
    };
    killed_command_line_push(&place);
}

#[test]
fn annals_archive_push_killed_mid_push_then_rerun_completes_the_archive_in_a_directory() {
    let archives = tempfile::tempdir().unwrap();
    killed_command_line_push(&Where::Directory(archives.path().to_path_buf()));
}
