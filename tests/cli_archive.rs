//! `annals archive push`, `archive pull`, `verify URL`, `verify DIR
//! --archive URL` and `retire --require-archived URL` end to end against
//! the S3 API server of .ci/run (moto): output, exit codes, bad input.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::Path;
use std::process::Command;

use annals::Store;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `annals` with the S3 environment of `endpoint` (less `without`).
fn annals(endpoint: &str, without: &[&str], args: &[&str]) -> Run {
    let env = s3::env(endpoint)
        .into_iter()
        .map(|(name, value)| (name, (!without.contains(&name)).then_some(value)))
        .collect::<Vec<_>>();
    annals_with_env(&env, args)
}

/// Runs `annals` with each variable of `env` set to its value, or removed.
fn annals_with_env(env: &[(&str, Option<String>)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_annals"));
    command.args(args);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn expect(code: i32, endpoint: &str, args: &[&str]) -> Run {
    let run = annals(endpoint, &[], args);
    assert_eq!(
        run.code, code,
        "annals {args:?}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn push_verify_pull_and_retire_through_the_command_line() {
    let Some(endpoint) = s3::endpoint() else {
        return;
    };
    let e = endpoint.as_str();
    let bucket = s3::unique_bucket("cli");
    s3::create_bucket(e, &bucket, true);
    let url = format!("s3://{bucket}/p");
    let dir = tempfile::tempdir().unwrap();
    let sealed_end = common::filled_with_sealed_segments(dir.path());
    let sealed = common::segment_files(dir.path()).len() - 1;

    let run = expect(
        0,
        e,
        &[
            "archive",
            "push",
            path(dir.path()),
            "--to",
            &url,
            "--retain-years",
            "7",
            "--json",
        ],
    );
    let pushed: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        pushed["uploaded"].as_array().unwrap().len(),
        sealed,
        "{pushed}"
    );
    let run = expect(0, e, &["archive", "push", path(dir.path()), "--to", &url]);
    assert!(
        run.stdout
            .contains(&format!("0 segments uploaded, {sealed} already archived")),
        "{}",
        run.stdout
    );

    let run = expect(0, e, &["verify", &url]);
    assert!(run.stdout.contains("OK"), "{}", run.stdout);
    let run = expect(0, e, &["verify", &url, "--json"]);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["last_position"], sealed_end - 1);
    // The head the archive reaches is what the store had there.
    let head = format!("{}@{}", report["head"].as_str().unwrap(), sealed_end - 1);
    expect(0, e, &["verify", &url, "--expect-head", &head]);
    let wrong = format!("{}@{}", "00".repeat(32), sealed_end - 1);
    expect(4, e, &["verify", &url, "--expect-head", &wrong]);

    let restored = tempfile::tempdir().unwrap();
    expect(
        0,
        e,
        &["archive", "pull", &url, "--to", path(restored.path())],
    );
    expect(0, e, &["verify", path(restored.path())]);
    let run = expect(0, e, &["stats", path(restored.path()), "--json"]);
    assert!(
        run.stdout.contains(&format!("{sealed_end}")),
        "{}",
        run.stdout
    );

    let position = sealed_end.to_string();
    let run = expect(
        0,
        e,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            &position,
            "--require-archived",
            &url,
            "--yes",
        ],
    );
    assert!(run.stdout.contains("retired"), "{}", run.stdout);
    let run = expect(0, e, &["verify", path(dir.path()), "--archive", &url]);
    assert!(
        run.stdout.contains("read from the archive"),
        "{}",
        run.stdout
    );
}

#[test]
fn retire_requiring_an_archive_without_the_segments_is_refused() {
    let Some(endpoint) = s3::endpoint() else {
        return;
    };
    let e = endpoint.as_str();
    let bucket = s3::unique_bucket("cli-retire");
    s3::create_bucket(e, &bucket, false);
    let dir = tempfile::tempdir().unwrap();
    let sealed_end = common::filled_with_sealed_segments(dir.path());
    let files = common::segment_files(dir.path());
    let run = expect(
        1,
        e,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            &sealed_end.to_string(),
            "--require-archived",
            &format!("s3://{bucket}/p"),
            "--yes",
        ],
    );
    assert!(run.stderr.contains("not archived"), "{}", run.stderr);
    assert_eq!(common::segment_files(dir.path()), files);
}

#[test]
fn a_tampered_archive_fails_verify_with_exit_code_4() {
    let Some(endpoint) = s3::endpoint() else {
        return;
    };
    let e = endpoint.as_str();
    let bucket = s3::unique_bucket("cli-tamper");
    s3::create_bucket(e, &bucket, false);
    let url = format!("s3://{bucket}/p");
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    expect(0, e, &["archive", "push", path(dir.path()), "--to", &url]);
    let name = common::segment_files(dir.path())[1]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut bytes = std::fs::read(dir.path().join(&name)).unwrap();
    bytes[3000] ^= 0xff;
    let key = format!("/{bucket}/p/segments/{name}");
    assert_eq!(s3::request(e, "PUT", &key, &[], &bytes).status, 200);
    let run = expect(4, e, &["verify", &url]);
    assert!(
        run.stdout.contains(&format!("{url}/segments/{name}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let Some(endpoint) = s3::endpoint() else {
        return;
    };
    let e = endpoint.as_str();
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    let d = path(dir.path());
    // A bad URL.
    let run = expect(1, e, &["archive", "push", d, "--to", "ftp://x/y"]);
    assert!(run.stderr.contains("not an archive URL"), "{}", run.stderr);
    // An unknown bucket.
    let run = expect(
        1,
        e,
        &[
            "archive",
            "push",
            d,
            "--to",
            "s3://annals-no-such-bucket-cli/p",
        ],
    );
    assert!(
        run.stderr.contains("s3://annals-no-such-bucket-cli/p"),
        "{}",
        run.stderr
    );
    let run = expect(1, e, &["verify", "s3://annals-no-such-bucket-cli/p"]);
    assert!(
        run.stderr.contains("annals-no-such-bucket-cli"),
        "{}",
        run.stderr
    );
    // No credentials.
    let bucket = s3::unique_bucket("cli-bad");
    s3::create_bucket(e, &bucket, false);
    let run = annals(
        e,
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        &["archive", "push", d, "--to", &format!("s3://{bucket}/p")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no credentials"), "{}", run.stderr);
    // A store with no sealed segment.
    let empty = tempfile::tempdir().unwrap();
    let store = Store::open(empty.path(), common::small_segments()).unwrap();
    common::fill(&store, 1, 1, 1, 10);
    store.close().unwrap();
    let run = expect(
        1,
        e,
        &[
            "archive",
            "push",
            path(empty.path()),
            "--to",
            &format!("s3://{bucket}/p"),
        ],
    );
    assert!(run.stderr.contains("no sealed segment"), "{}", run.stderr);
    // An empty archive.
    let run = expect(1, e, &["verify", &format!("s3://{bucket}/nothing")]);
    assert!(run.stderr.contains("no archived segment"), "{}", run.stderr);
    // Retention in the past, and object lock on a directory.
    expect(
        2,
        e,
        &[
            "archive",
            "push",
            d,
            "--to",
            &format!("s3://{bucket}/p"),
            "--retain-until",
            "2001-01-01T00:00:00Z",
        ],
    );
    let archive_dir = tempfile::tempdir().unwrap();
    let run = expect(
        1,
        e,
        &[
            "archive",
            "push",
            d,
            "--to",
            &format!("file://{}", path(archive_dir.path())),
            "--retain-years",
            "1",
        ],
    );
    assert!(run.stderr.contains("object lock"), "{}", run.stderr);
}

#[test]
fn credentials_the_server_does_not_know_are_refused_with_exit_code_1() {
    // A server of its own that checks signatures (the shared one accepts
    // any credentials): it knows no access key at all, so the made-up
    // ones below are refused before the bucket is even looked up.
    let Some(server) = s3::CheckingServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::filled_with_sealed_segments(dir.path());
    let restore = tempfile::tempdir().unwrap();
    let url = "s3://annals-credentials/p";
    let env: Vec<(&str, Option<String>)> = s3::env(&server.endpoint)
        .into_iter()
        .map(|(name, value)| match name {
            "AWS_ACCESS_KEY_ID" => (name, Some("AKIAMADEUPFORTHETEST".to_string())),
            "AWS_SECRET_ACCESS_KEY" => (name, Some("not-the-secret".to_string())),
            _ => (name, Some(value)),
        })
        .collect();
    for args in [
        vec!["archive", "push", path(dir.path()), "--to", url],
        vec!["verify", url],
        vec!["archive", "pull", url, "--to", path(restore.path())],
    ] {
        let run = annals_with_env(&env, &args);
        assert_eq!(run.code, 1, "annals {args:?}: {}", run.stderr);
        for said in [
            url,
            "refused",
            "the server does not accept the credentials",
            "InvalidAccessKeyId",
            "AWS_ACCESS_KEY_ID",
        ] {
            assert!(run.stderr.contains(said), "annals {args:?}: {}", run.stderr);
        }
        assert!(run.stdout.is_empty(), "annals {args:?}: {}", run.stdout);
    }
    // Nothing was written to the store by the refused push.
    assert!(
        !dir.path()
            .join(annals::format::ARCHIVE_PROGRESS_FILE_NAME)
            .exists()
    );
}
