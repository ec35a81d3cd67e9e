//! The upstream fix for cqrs-es 0.5.0's double application of new events in
//! snapshots (`docs/cqrs-es-0.5.0-snapshot-double-apply.patch`), shown on
//! the cqrs-es sources this build uses: the patch's regression test fails
//! on them as published, and the whole patch makes cqrs-es's test suite pass.
//!
//! Ignored by default: it builds cqrs-es twice in a temporary directory (a
//! few minutes on 2 cores) and needs cqrs-es's dev-dependencies (chrono,
//! uuid) in the cargo cache or from crates.io.
//!
//! ```text
//! cargo test --all-features --test cqrs_upstream_patch -- --ignored
//! ```
#![cfg(feature = "cqrs-es")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PATCH: &str = "docs/cqrs-es-0.5.0-snapshot-double-apply.patch";
const REGRESSION_TEST: &str = "snapshots_hold_each_new_event_applied_once";

/// The directory of the cqrs-es sources this crate builds with.
fn cqrs_es_sources() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--all-features"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cqrs-es")
        .expect("cqrs-es in the dependency graph");
    assert_eq!(
        package["version"], "0.5.0",
        "the patch is for cqrs-es 0.5.0"
    );
    let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
    manifest.parent().unwrap().to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `git apply` of the parts of the patch selected by `selection`, in `dir`.
fn apply(dir: &Path, selection: &str) {
    let patch = Path::new(env!("CARGO_MANIFEST_DIR")).join(PATCH);
    let status = Command::new("git")
        .arg("apply")
        .arg(selection)
        .arg(&patch)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git apply {selection} {PATCH}");
}

fn cargo_test(dir: &Path, target: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .arg("test")
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
#[ignore = "builds cqrs-es twice (minutes); run with --ignored"]
fn the_upstream_patch_fixes_the_double_apply() {
    let work = tempfile::tempdir().unwrap();
    let sources = work.path().join("cqrs-es");
    let target = work.path().join("target");
    copy_dir(&cqrs_es_sources(), &sources);

    // The regression test alone, on cqrs-es as published: it fails, and
    // shows the event applied twice.
    apply(&sources, "--include=tests/*");
    let unfixed = cargo_test(&sources, &target, &["--test", "lib", REGRESSION_TEST]);
    let stdout = String::from_utf8_lossy(&unfixed.stdout);
    assert!(
        !unfixed.status.success(),
        "passed without the fix:\n{stdout}"
    );
    assert!(
        stdout.contains(r#"right: ["first", "first"]"#),
        "another failure:\n{stdout}\n{}",
        String::from_utf8_lossy(&unfixed.stderr)
    );

    // With the fix: cqrs-es's whole test suite passes, the new test with it.
    apply(&sources, "--exclude=tests/*");
    let fixed = cargo_test(&sources, &target, &[]);
    let stdout = String::from_utf8_lossy(&fixed.stdout);
    assert!(
        fixed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&fixed.stderr)
    );
    assert!(
        stdout.contains(&format!("test {REGRESSION_TEST} ... ok")),
        "{stdout}"
    );
}
