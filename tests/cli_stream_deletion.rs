//! `annals truncate` and `annals delete-stream` end to end (issue 14, item
//! 3): JSON output, exit codes, bad input refused with nothing written, and
//! `annals read` of a deleted stream. The library behaviour is in
//! `tests/stream_deletion.rs`.

mod common;
#[path = "common/run.rs"]
mod run;

use annals::{EventData, ExpectedVersion, Options, Store};
use run::{expect, path};
use serde_json::json;

/// A store with `cart` at version 4 and `other` at 1; returns its next position.
fn a_store(dir: &std::path::Path) -> u64 {
    let store = Store::open(dir, Options::default()).unwrap();
    let events: Vec<EventData> = (1..=4u8).map(|i| EventData::new("E", vec![i])).collect();
    store
        .append("cart", ExpectedVersion::NoStream, &events)
        .unwrap();
    store
        .append("other", ExpectedVersion::NoStream, &events[..1])
        .unwrap();
    let next = store.next_position();
    store.close().unwrap();
    next
}

fn next_position(dir: &std::path::Path) -> u64 {
    Store::open_read_only(dir).unwrap().next_position()
}

fn read_versions(dir: &std::path::Path, stream: &str) -> Vec<u64> {
    expect(0, &["read", path(dir), "--stream", stream])
        .lines()
        .iter()
        .map(|line| line["version"].as_u64().unwrap())
        .collect()
}

#[test]
fn truncate_prints_what_it_did_and_reads_start_there() {
    let dir = tempfile::tempdir().unwrap();
    let next = a_store(dir.path());
    let run = expect(0, &["truncate", path(dir.path()), "cart", "--before", "3"]);
    assert_eq!(
        run.lines(),
        [json!({
            "stream": "cart", "truncate_before": 3, "version": 4,
            "metadata_stream": "$$cart", "metadata_version": 1, "position": next
        })]
    );
    assert_eq!(read_versions(dir.path(), "cart"), [3, 4]);
    // The log keeps every event, and the metadata event.
    let all = expect(0, &["read", path(dir.path())]).lines();
    assert_eq!(all.len() as u64, next + 1);
    assert_eq!(all.last().unwrap()["stream"], "$$cart");
    assert_eq!(all.last().unwrap()["type"], "$metadata");
}

#[test]
fn bad_truncations_fail_with_exit_1_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let next = a_store(dir.path());
    expect(0, &["truncate", path(dir.path()), "cart", "--before", "3"]);
    let next = next + 1;
    for (args, needle) in [
        (["nothing", "--before", "1"], "does not exist"),
        (["cart", "--before", "6"], "from 1 to 5"),
        (["cart", "--before", "2"], "never undone"),
        (["$$cart", "--before", "1"], "reserved"),
    ] {
        let mut all = vec!["truncate", path(dir.path())];
        all.extend(args);
        let run = expect(1, &all);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
        assert_eq!(next_position(dir.path()), next, "{args:?} wrote nothing");
    }
    // Not a number, or no --before: a usage error.
    expect(2, &["truncate", path(dir.path()), "cart", "--before", "x"]);
    expect(2, &["truncate", path(dir.path()), "cart"]);
    assert_eq!(next_position(dir.path()), next);
    // No store there: nothing is created.
    let empty = tempfile::tempdir().unwrap();
    let run = expect(
        1,
        &["truncate", path(empty.path()), "cart", "--before", "1"],
    );
    assert!(run.stderr.contains("not an annals store"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[test]
fn delete_stream_checks_the_expected_version_and_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let next = a_store(dir.path());
    // A conflict: exit 3, nothing written.
    let run = expect(
        3,
        &[
            "delete-stream",
            path(dir.path()),
            "cart",
            "--expected-version",
            "3",
        ],
    );
    assert!(run.stderr.contains("at version 4"), "{}", run.stderr);
    expect(
        3,
        &[
            "delete-stream",
            path(dir.path()),
            "cart",
            "--expected-version",
            "no-stream",
        ],
    );
    let run = expect(1, &["delete-stream", path(dir.path()), "nothing"]);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    expect(
        2,
        &[
            "delete-stream",
            path(dir.path()),
            "cart",
            "--expected-version",
            "-1",
        ],
    );
    assert_eq!(next_position(dir.path()), next);

    let run = expect(
        0,
        &[
            "delete-stream",
            path(dir.path()),
            "cart",
            "--expected-version",
            "4",
        ],
    );
    assert_eq!(
        run.lines(),
        [json!({
            "stream": "cart", "deleted": true, "version": 4,
            "metadata_stream": "$$cart", "metadata_version": 1, "position": next
        })]
    );
    let next = next + 1;
    // Reading, appending, truncating and deleting again: exit 6.
    for args in [
        vec!["read", path(dir.path()), "--stream", "cart"],
        vec!["read", path(dir.path()), "--stream", "cart", "--backward"],
        vec![
            "append",
            path(dir.path()),
            "--stream",
            "cart",
            "--type",
            "E",
            "--data",
            "1",
        ],
        vec!["truncate", path(dir.path()), "cart", "--before", "4"],
        vec!["delete-stream", path(dir.path()), "cart"],
    ] {
        let run = expect(6, &args);
        assert!(
            run.stderr.contains("\"cart\" was deleted"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(
        next_position(dir.path()),
        next,
        "nothing written after the tombstone"
    );
    assert_eq!(read_versions(dir.path(), "other"), [1]);
}

#[test]
fn the_command_line_refuses_appends_to_system_streams() {
    let dir = tempfile::tempdir().unwrap();
    let next = a_store(dir.path());
    let run = expect(
        1,
        &[
            "append",
            path(dir.path()),
            "--stream",
            "$$cart",
            "--type",
            "$metadata",
            "--data",
            "{}",
        ],
    );
    assert!(run.stderr.contains("reserved"), "{}", run.stderr);
    assert_eq!(next_position(dir.path()), next);
}
