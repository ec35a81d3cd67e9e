//! End-to-end tests of the `annals` command line: each runs the built
//! binary as a subprocess and checks its output and exit code.

mod common;
#[path = "common/run.rs"]
mod run;

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::segment_files;
use run::{Tail, expect, expect_with_input, path};
use serde_json::{Value, json};

/// Segment size for stores that should have several (sealed) segments.
const SMALL_SEGMENT: &str = "65536";

/// Import lines for `count` events spread over five streams, each with ~200
/// bytes of data: with 64 KiB segments, 600 events fill three sealed segments.
fn numbered_events(count: u64) -> String {
    (0..count)
        .map(|i| {
            json!({"stream": format!("s-{}", i % 5), "type": "Numbered",
                   "data": {"i": i, "pad": "x".repeat(200)}})
            .to_string()
                + "\n"
        })
        .collect()
}

/// A store in `dir` with `count` numbered events in 64 KiB segments.
fn numbered_store(dir: &Path, count: u64) {
    expect_with_input(
        0,
        &[
            "import",
            path(dir),
            "--durability",
            "none",
            "--segment-size-bytes",
            SMALL_SEGMENT,
        ],
        &numbered_events(count),
    );
}

/// Flips every bit of the byte in the middle of a sealed segment's data;
/// returns the offset.
fn damage_middle_of(segment: &Path) -> u64 {
    let file_len = std::fs::metadata(segment).unwrap().len();
    let mut data_len = [0u8; 8];
    std::fs::File::open(segment)
        .unwrap()
        .read_exact_at(&mut data_len, file_len - 128 + 32)
        .unwrap();
    let data_len = u64::from_le_bytes(data_len);
    assert!(data_len > 1000, "the segment is sealed and full");
    let offset = 128 + data_len / 2;
    std::fs::set_permissions(segment, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[!byte[0]], offset).unwrap();
    std::fs::set_permissions(segment, std::fs::Permissions::from_mode(0o444)).unwrap();
    offset
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot_of(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

/// Lines of an export without their timestamps (checked for format).
fn without_timestamps(export: &str) -> Vec<Value> {
    export
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            let timestamp = value.as_object_mut().unwrap().remove("timestamp").unwrap();
            // RFC 3339, UTC, nanoseconds.
            let timestamp = timestamp.as_str().unwrap();
            assert_eq!(timestamp.len(), 30, "{timestamp}");
            assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
            value
        })
        .collect()
}

#[test]
fn append_creates_the_store_and_checks_expected_versions() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("new-store");
    let d = path(&dir);
    let first = expect(
        0,
        &[
            "append",
            d,
            "--stream",
            "order-1",
            "--type",
            "Placed",
            "--data",
            r#"{"total": 12.5, "lines": [1, 2]}"#,
            "--expected-version",
            "no-stream",
            "--correlation-id",
            "req-1",
            "--causation-id",
            "cmd-1",
            "--metadata",
            r#"{"user": "ada"}"#,
            "--id",
            "0191b2a6-1234-7000-8000-00000000abcd",
        ],
    );
    assert_eq!(
        first.lines(),
        [
            json!({"stream": "order-1", "first_version": 1, "last_version": 1,
                "position": 0, "last_position": 0})
        ]
    );
    expect(
        0,
        &[
            "append",
            d,
            "--stream",
            "order-1",
            "--type",
            "Paid",
            "--data",
            "12.5",
            "--expected-version",
            "1",
        ],
    );
    expect(
        0,
        &[
            "append",
            d,
            "--stream",
            "order-1",
            "--type",
            "Noted",
            "--data",
            "null",
            "--expected-version",
            "exists",
        ],
    );

    // A conflict: exit 3, and stderr says what was expected and what is.
    let conflict = expect(
        3,
        &[
            "append",
            d,
            "--stream",
            "order-1",
            "--type",
            "Placed",
            "--data",
            "{}",
            "--expected-version",
            "no-stream",
        ],
    );
    assert!(
        conflict.stderr.contains("expected no stream"),
        "{}",
        conflict.stderr
    );
    assert!(
        conflict.stderr.contains("at version 3"),
        "{}",
        conflict.stderr
    );
    expect(
        3,
        &[
            "append",
            d,
            "--stream",
            "order-2",
            "--type",
            "X",
            "--data",
            "1",
            "--expected-version",
            "exists",
        ],
    );

    // Idempotent on the command id: the second append writes nothing.
    let args = [
        "append",
        d,
        "--stream",
        "order-1",
        "--type",
        "Shipped",
        "--data",
        "1",
        "--command-id",
        "ship-1",
    ];
    let once = expect(0, &args);
    let twice = expect(0, &args);
    assert_eq!(once.stdout, twice.stdout);
    assert_eq!(once.lines()[0]["last_version"], 4);

    let events = expect(0, &["read", d, "--stream", "order-1"]).lines();
    assert_eq!(events.len(), 4);
    let placed = &events[0];
    assert_eq!(placed["type"], "Placed");
    assert_eq!(placed["data"], json!({"total": 12.5, "lines": [1, 2]}));
    assert_eq!(placed["metadata"], json!({"user": "ada"}));
    assert_eq!(placed["correlation_id"], "req-1");
    assert_eq!(placed["causation_id"], "cmd-1");
    assert_eq!(placed["id"], "0191b2a6-1234-7000-8000-00000000abcd");
    assert_eq!(placed["content_type"], "msgpack");
    assert_eq!(events[2]["data"], Value::Null);
    assert_eq!(events[2]["metadata"], Value::Null);
}

#[test]
fn usage_errors_exit_2() {
    expect(2, &[]);
    expect(2, &["no-such-command"]);
    expect(2, &["append", "/tmp/x", "--stream", "s"]);
    expect(2, &["read", "/tmp/x", "--limit", "many"]);
    expect(
        2,
        &[
            "append",
            "/tmp/x",
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            "1",
            "--expected-version",
            "-3",
        ],
    );
    expect(2, &["tail", "/tmp/x", "--from", "3", "--from-end"]);
    let help = expect(0, &["--help"]);
    assert!(help.stdout.contains("repair"));
}

#[test]
fn other_errors_exit_1_with_a_message() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let bad_json = expect(
        1,
        &[
            "append", d, "--stream", "s", "--type", "T", "--data", "{oops",
        ],
    );
    assert!(
        bad_json.stderr.contains("--data is not valid JSON"),
        "{}",
        bad_json.stderr
    );
    let bad_metadata = expect(
        1,
        &[
            "append",
            d,
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            "1",
            "--metadata",
            "{",
        ],
    );
    assert!(
        bad_metadata.stderr.contains("--metadata"),
        "{}",
        bad_metadata.stderr
    );
    let bad_id = expect(
        1,
        &[
            "append",
            d,
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            "1",
            "--id",
            "not-a-uuid",
        ],
    );
    assert!(bad_id.stderr.contains("not a UUID"), "{}", bad_id.stderr);

    // A directory holding other files is not made into a store.
    let other = temp.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"meow").unwrap();
    let refused = expect(
        1,
        &[
            "append",
            path(&other),
            "--stream",
            "s",
            "--type",
            "T",
            "--data",
            "1",
        ],
    );
    assert!(
        refused.stderr.contains("holds no annals store"),
        "{}",
        refused.stderr
    );
    assert!(segment_files(&other).is_empty());

    let missing = temp.path().join("missing");
    let read = expect(1, &["read", path(&missing)]);
    assert!(read.stderr.contains("missing"), "{}", read.stderr);
    expect(1, &["stats", path(&missing)]);
    expect(1, &["export", path(&missing)]);
    expect(1, &["repair", path(&missing)]);
    expect(1, &["bench", d]); // not empty: the store made above is there
}

#[test]
fn import_acknowledges_each_line_and_stops_at_the_first_failure() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let input = [
        r#"{"stream":"a","type":"Created","data":{"n":1},"expected_version":"no-stream"}"#,
        r#"{"stream":"a","events":[{"type":"X","data":1},{"type":"Y","data":2}],"correlation_id":"c"}"#,
        "",
        r#"{"stream":"b","type":"Z","data":"z","command_id":"once"}"#,
        r#"{"stream":"b","type":"Z","data":"z","command_id":"once"}"#,
        r#"{"stream":"a","type":"Late","data":0,"expected_version":1}"#,
        r#"{"stream":"a","type":"Never","data":0}"#,
    ]
    .join("\n");
    let run = expect_with_input(3, &["import", d], &input);
    assert_eq!(
        run.lines(),
        [
            json!({"line": 1, "stream": "a", "first_version": 1, "last_version": 1, "position": 0, "last_position": 0}),
            json!({"line": 2, "stream": "a", "first_version": 2, "last_version": 3, "position": 1, "last_position": 2}),
            json!({"line": 4, "stream": "b", "first_version": 1, "last_version": 1, "position": 3, "last_position": 3}),
            json!({"line": 5, "stream": "b", "first_version": 1, "last_version": 1, "position": 3, "last_position": 3}),
        ]
    );
    assert!(run.stderr.contains("line 6"), "{}", run.stderr);
    assert!(run.stderr.contains("expected version 1"), "{}", run.stderr);
    // Lines before the failure stay committed; the line after it never ran.
    let events = expect(0, &["read", d]).lines();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Created", "X", "Y", "Z"]);
    assert_eq!(events[1]["correlation_id"], "c");

    let bad = expect_with_input(
        1,
        &["import", d],
        "{\"stream\":\"c\",\"type\":\"T\",\"data\":1}\n{\"stream\":\"c\",\"type\":\"T\",\"data\":1,\"colour\":2}\n",
    );
    assert_eq!(bad.lines().len(), 1);
    assert!(bad.stderr.contains("line 2"), "{}", bad.stderr);
    assert!(bad.stderr.contains("unknown field"), "{}", bad.stderr);
    let truncated = expect_with_input(1, &["import", d], "{\"stream\":\"c\"\n");
    assert!(truncated.stderr.contains("line 1"), "{}", truncated.stderr);
}

#[test]
fn read_by_stream_or_log_forward_backward_and_filtered() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let input: String = [
        ("order-1", "Placed"),
        ("order-2", "Placed"),
        ("user-1", "Registered"),
        ("order-1", "Shipped"),
        ("order-2", "Cancelled"),
        ("order-1", "Delivered"),
    ]
    .iter()
    .map(|(stream, event_type)| {
        json!({"stream": stream, "type": event_type, "data": null}).to_string() + "\n"
    })
    .collect();
    expect_with_input(0, &["import", d, "--durability", "none"], &input);
    let summary = |args: &[&str]| -> Vec<String> {
        expect(0, args)
            .lines()
            .iter()
            .map(|e| {
                format!(
                    "{}:{}:{}:{}",
                    e["position"],
                    e["stream"].as_str().unwrap(),
                    e["version"],
                    e["type"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        summary(&["read", d, "--stream", "order-1"]),
        [
            "0:order-1:1:Placed",
            "3:order-1:2:Shipped",
            "5:order-1:3:Delivered"
        ]
    );
    assert_eq!(
        summary(&["read", d, "--stream", "order-1", "--from", "2"]),
        ["3:order-1:2:Shipped", "5:order-1:3:Delivered"]
    );
    assert_eq!(
        summary(&[
            "read",
            d,
            "--stream",
            "order-1",
            "--backward",
            "--limit",
            "2"
        ]),
        ["5:order-1:3:Delivered", "3:order-1:2:Shipped"]
    );
    assert_eq!(
        summary(&[
            "read",
            d,
            "--stream",
            "order-1",
            "--backward",
            "--from",
            "1"
        ]),
        ["0:order-1:1:Placed"]
    );
    assert_eq!(
        summary(&[
            "read", d, "--stream", "order-1", "--type", "Shipped", "--type", "Placed"
        ]),
        ["0:order-1:1:Placed", "3:order-1:2:Shipped"]
    );
    assert!(summary(&["read", d, "--stream", "nope"]).is_empty());
    assert!(summary(&["read", d, "--stream", "order-1", "--category", "user-"]).is_empty());
    assert_eq!(summary(&["read", d]).len(), 6);
    assert_eq!(
        summary(&["read", d, "--from", "4", "--limit", "1"]),
        ["4:order-2:2:Cancelled"]
    );
    assert_eq!(
        summary(&["read", d, "--category", "order-", "--type", "Placed"]),
        ["0:order-1:1:Placed", "1:order-2:1:Placed"]
    );
    assert_eq!(
        summary(&["read", d, "--backward", "--category", "order-2"]),
        ["4:order-2:2:Cancelled", "1:order-2:1:Placed"]
    );
    assert_eq!(
        summary(&["read", d, "--backward", "--from", "2", "--limit", "2"]),
        ["2:user-1:1:Registered", "1:order-2:1:Placed"]
    );
    assert!(summary(&["read", d, "--limit", "0"]).is_empty());
}

#[test]
fn export_then_import_reproduces_every_event() {
    let temp = tempfile::tempdir().unwrap();
    let original = temp.path().join("original");
    let copy = temp.path().join("copy");
    let o = path(&original);
    // Varied events, then enough to span segments and read pages.
    let varied = [
        json!({"stream": "a", "type": "Json", "data": {"nested": {"list": [1, -2, 3.25, "s", null, true]}},
               "metadata": {"who": "ada", "n": [1]}, "correlation_id": "corr", "causation_id": "cause",
               "id": "0191b2a6-0000-7000-8000-000000000001"}),
        json!({"stream": "a", "type": "Bytes", "data_base64": "AAECAwT/", "content_type": "application/octet-stream",
               "metadata_base64": "bm90IGpzb24="}),
        json!({"stream": "b", "type": "JsonText", "data": {"k": "v"}, "content_type": "json"}),
        json!({"stream": "b", "type": "SpacedJson", "data_base64": "eyAiayI6ICJ2IiB9", "content_type": "json"}),
        json!({"stream": "b", "type": "Raw", "data_base64": "eyJhIjoxfQ==", "content_type": null}),
        json!({"stream": "c", "events": [{"type": "One", "data": 1}, {"type": "Two", "data": [2]}],
               "causation_id": "batch"}),
        json!({"stream": "unicode-ß", "type": "Ünï", "data": "日本"}),
    ]
    .iter()
    .map(|line| line.to_string() + "\n")
    .collect::<String>()
        + &numbered_events(1500);
    expect_with_input(
        0,
        &[
            "import",
            o,
            "--durability",
            "none",
            "--segment-size-bytes",
            SMALL_SEGMENT,
        ],
        &varied,
    );
    assert!(segment_files(&original).len() > 3);

    let export_file = temp.path().join("export.jsonl");
    expect(0, &["export", o, "--output", path(&export_file)]);
    let exported = std::fs::read_to_string(&export_file).unwrap();
    assert_eq!(
        exported,
        expect(0, &["export", o]).stdout,
        "--output and stdout agree"
    );
    assert_eq!(exported.lines().count(), 8 + 1500);
    // --output never overwrites.
    expect(1, &["export", o, "--output", path(&export_file)]);

    let acks = expect_with_input(
        0,
        &["import", path(&copy), "--durability", "none"],
        &exported,
    );
    assert_eq!(acks.lines().len(), 8 + 1500);
    let reexported = expect(0, &["export", path(&copy)]).stdout;
    // Identical, original timestamps included (import keeps them).
    assert_eq!(exported, reexported);
    assert_eq!(
        without_timestamps(&exported),
        without_timestamps(&reexported)
    );

    // The exact bytes came back, not just their JSON form.
    let lines = without_timestamps(&reexported);
    assert_eq!(lines[0]["id"], "0191b2a6-0000-7000-8000-000000000001");
    assert_eq!(lines[0]["metadata"], json!({"who": "ada", "n": [1]}));
    assert_eq!(lines[1]["data_base64"], "AAECAwT/");
    assert_eq!(lines[1]["metadata_base64"], "bm90IGpzb24=");
    assert_eq!(lines[2]["data"], json!({"k": "v"}));
    assert_eq!(lines[3]["data"], json!({"k": "v"}));
    assert_eq!(lines[3]["data_base64"], "eyAiayI6ICJ2IiB9");
    assert_eq!(lines[4]["content_type"], Value::Null);
    assert_eq!(lines[4]["data_base64"], "eyJhIjoxfQ==");
    assert_eq!(lines[6]["causation_id"], "batch");

    // Importing the export again into the same store writes nothing: the
    // ids and versions it carries are there (idempotent appends), so an
    // interrupted import can simply be run again.
    let again = expect_with_input(0, &["import", path(&copy)], &exported);
    assert_eq!(again.stdout, acks.stdout);
    assert_eq!(expect(0, &["export", path(&copy)]).stdout, reexported);
    // The same versions with other ids are a conflict.
    let other_ids = exported.replace(
        "\"id\":\"0191b2a6-0000-7000-8000-000000000001\"",
        "\"id\":\"0191b2a6-0000-7000-8000-000000000002\"",
    );
    let conflict = expect_with_input(3, &["import", path(&copy)], &other_ids);
    assert!(conflict.stderr.contains("line 1"), "{}", conflict.stderr);
}

#[test]
fn stats_counts_events_streams_and_segments() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    // An empty directory is not a store; a store without events is.
    expect(1, &["stats", d, "--json"]);
    expect_with_input(0, &["import", d, "--segment-size-bytes", SMALL_SEGMENT], "");
    let empty = expect(0, &["stats", d, "--json"]).lines();
    assert_eq!(empty[0]["events"], 0);
    assert_eq!(empty[0]["first_timestamp"], Value::Null);
    numbered_store(temp.path(), 600);
    let stats = &expect(0, &["stats", d, "--json"]).lines()[0];
    assert_eq!(stats["events"], 600);
    assert_eq!(stats["streams"], 5);
    let segments = segment_files(temp.path()).len() as u64;
    assert!(segments >= 3);
    assert_eq!(stats["segments"], segments);
    assert_eq!(stats["segment_file_bytes"], segments * 65536);
    assert!(stats["bytes_on_disk"].as_u64().unwrap() > 0);
    assert!(
        stats["first_timestamp"].as_str().unwrap() <= stats["last_timestamp"].as_str().unwrap()
    );
    let text = expect(0, &["stats", d]).stdout;
    assert!(text.contains("events:             600"), "{text}");
}

/// What open found that a crash leaves behind is shown on stderr, one line
/// per item: a reader (`read`, `export`, `stats`) leaves a stray temporary
/// segment file in place and notes it; a writer (`append`) removes it and
/// says so. stdout stays clean JSON lines, and `stats` lists the item too.
#[test]
fn open_shows_what_it_recovered_on_stderr() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let append = ["append", d, "--stream", "s", "--type", "T", "--data", "1"];
    expect(0, &append);
    let stray = temp.path().join("00000000000000000001.seg.tmp");
    std::fs::write(&stray, [0u8; 4096]).unwrap();
    let name = "00000000000000000001.seg.tmp";

    let readers: [&[&str]; 3] = [&["read", d], &["export", d], &["stats", d, "--json"]];
    for args in readers {
        let run = expect(0, args);
        let notes: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(notes.len(), 1, "{args:?}: {}", run.stderr);
        assert!(
            notes[0].starts_with("annals: note: ") && notes[0].contains(name),
            "{args:?}: {}",
            run.stderr
        );
        assert!(notes[0].contains("not shown"), "{args:?}: {}", run.stderr);
        assert_eq!(run.lines().len(), 1, "{args:?}: {}", run.stdout);
        assert!(stray.exists(), "{args:?} removed the temporary file");
    }
    let stats = &expect(0, &["stats", d, "--json"]).lines()[0];
    let items = stats["recovery"].as_array().expect("a recovery array");
    assert_eq!(items.len(), 1, "{stats}");
    assert!(
        items[0]["file"].as_str().unwrap().ends_with(name),
        "{stats}"
    );
    assert_eq!(items[0]["offset"], 0);
    assert_eq!(items[0]["bytes"], 0);
    assert!(items[0]["what"].as_str().unwrap().contains("temporary"));
    assert!(
        items[0]["action"]
            .as_str()
            .unwrap()
            .starts_with("not shown")
    );
    assert!(items[0].get("position").is_none(), "{stats}");
    let text = expect(0, &["stats", d]).stdout;
    assert!(text.contains(name), "{text}");

    let run = expect(0, &append);
    assert_eq!(run.lines().len(), 1, "{}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].starts_with("annals: recovered: ")
            && lines[0].contains(name)
            && lines[0].ends_with("removed"),
        "{}",
        run.stderr
    );
    assert!(!stray.exists());

    // Nothing left to recover: nothing said.
    let run = expect(0, &["read", d]);
    assert_eq!(run.stderr, "");
    assert_eq!(run.lines().len(), 2);
    let stats = &expect(0, &["stats", d, "--json"]).lines()[0];
    assert_eq!(stats["recovery"], json!([]));
    let text = expect(0, &["stats", d]).stdout;
    assert!(text.contains("recovery:           none"), "{text}");
}

/// A flipped byte in a sealed segment's records: every command that reads
/// the records exits 4 naming the file and an offset at or before the
/// damage, printing nothing; `verify` (which reads every byte) reports it.
/// Opening alone does not read sealed records (the index checkpoint vouches
/// for their segment's header and footer), so commands that only open the
/// store succeed, and do not hide the damage from later reads.
#[test]
fn a_flipped_byte_in_a_sealed_segment_is_refused_with_exit_4() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    numbered_store(temp.path(), 600);
    let sealed = &segment_files(temp.path())[0];
    let damaged = damage_middle_of(sealed);
    let name = sealed.file_name().unwrap().to_str().unwrap();
    let names_the_damage = |args: &[&str], text: &str| {
        assert!(text.contains(name), "{args:?}: {text}");
        let offset: u64 = text
            .split("at byte offset ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: no byte offset in {text}"));
        assert!(
            (128..=damaged).contains(&offset),
            "{args:?}: offset {offset}, the damage is at {damaged}: {text}"
        );
    };
    let readers: [&[&str]; 3] = [&["read", d], &["export", d], &["tail", d]];
    for args in readers {
        let run = expect(4, args);
        names_the_damage(args, &run.stderr);
        assert!(run.stdout.is_empty(), "{args:?} printed {}", run.stdout);
    }
    let verify = expect(4, &["verify", d]);
    names_the_damage(&["verify", d], &verify.stdout);
    assert!(verify.stdout.contains("FAILED"), "{}", verify.stdout);

    // Commands that only open the store do not read the sealed records.
    expect(0, &["stats", d]);
    expect(
        0,
        &["append", d, "--stream", "s", "--type", "T", "--data", "1"],
    );
    expect_with_input(
        0,
        &["import", d],
        "{\"stream\":\"s\",\"type\":\"T\",\"data\":2}\n",
    );
    // Writing after the damage neither hides nor heals it.
    let run = expect(4, &["read", d]);
    names_the_damage(&["read", d], &run.stderr);
    assert!(run.stdout.is_empty(), "read printed {}", run.stdout);
    expect(4, &["verify", d]);
}

#[test]
fn a_locked_store_refuses_writers_with_exit_5_but_not_readers() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    numbered_store(temp.path(), 10);
    let writer = annals::Store::open(temp.path(), annals::Options::default()).unwrap();
    let append = expect(
        5,
        &["append", d, "--stream", "s", "--type", "T", "--data", "1"],
    );
    assert!(append.stderr.contains("locked"), "{}", append.stderr);
    expect_with_input(
        5,
        &["import", d],
        "{\"stream\":\"s\",\"type\":\"T\",\"data\":1}\n",
    );
    expect(5, &["repair", d]);
    assert_eq!(expect(0, &["read", d]).lines().len(), 10);
    expect(0, &["stats", d]);
    expect(0, &["export", d]);
    writer.close().unwrap();
    expect(
        0,
        &["append", d, "--stream", "s", "--type", "T", "--data", "1"],
    );
}

#[test]
fn tail_follows_events_appended_by_another_process() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let append = |stream: &str, event_type: &str, data: &str| {
        expect(
            0,
            &[
                "append",
                d,
                "--stream",
                stream,
                "--type",
                event_type,
                "--data",
                data,
                "--segment-size-bytes",
                SMALL_SEGMENT,
            ],
        );
    };
    append("a", "T", "1");
    append("b", "U", "\"old\"");
    let everything = Tail::start(&[d]);
    let filtered = Tail::start(&[d, "--from", "1", "--type", "U"]);
    assert_eq!(everything.next()["data"], 1);
    assert_eq!(everything.next()["data"], "old");
    assert_eq!(filtered.next()["data"], "old");
    append("a", "T", "2");
    assert_eq!(everything.next()["data"], 2);
    append("b", "U", "3");
    let fourth = everything.next();
    assert_eq!(
        (fourth["stream"].as_str(), fourth["position"].as_u64()),
        (Some("b"), Some(3))
    );
    assert_eq!(filtered.next()["data"], 3);

    // --from-end: only what is appended after it started. When it started
    // is unknown here, so append until it prints something.
    let from_end = Tail::start(&[d, "--from-end"]);
    let mut appended = 0;
    let first_new = (0..60)
        .find_map(|i| {
            append("c", "V", &i.to_string());
            appended += 1;
            from_end.line_within(Duration::from_secs(1))
        })
        .map(|line| serde_json::from_str::<Value>(&line).unwrap())
        .expect("tail --from-end printed a new event");
    assert_eq!(first_new["stream"], "c", "{first_new}");
    assert!(first_new["position"].as_u64().unwrap() >= 4);
    drop(from_end);
    for i in 0..appended {
        assert_eq!(everything.next()["data"], i);
    }

    // Across segment rolls, appended by a bulk import in another process.
    expect_with_input(
        0,
        &[
            "import",
            d,
            "--durability",
            "none",
            "--segment-size-bytes",
            SMALL_SEGMENT,
        ],
        &numbered_events(400),
    );
    for i in 0..400 {
        assert_eq!(everything.next()["data"]["i"], i);
    }
    assert!(segment_files(temp.path()).len() > 1);
}

#[test]
fn repair_says_what_it_would_cut_then_cuts_with_a_backup() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    numbered_store(temp.path(), 600);
    let segments = segment_files(temp.path());
    assert!(segments.len() >= 3);
    let clean = expect(0, &["repair", d]);
    assert!(clean.stdout.contains("no damage found"), "{}", clean.stdout);
    // A snapshot past the cut (stream s-0 at its last version) and one before it.
    let store = annals::Store::open(temp.path(), annals::Options::default()).unwrap();
    assert!(store.save_snapshot("s-0", 120, b"late", None).unwrap());
    assert!(store.save_snapshot("s-1", 1, b"early", None).unwrap());
    store.close().unwrap();

    let damaged_offset = damage_middle_of(&segments[1]);
    let before = snapshot_of(temp.path());
    let dry = expect(4, &["repair", d]);
    assert_eq!(
        snapshot_of(temp.path()),
        before,
        "a dry run changes nothing"
    );
    let report = &dry.stdout;
    let damaged_name = segments[1].file_name().unwrap().to_str().unwrap();
    assert!(
        report.contains(&format!("damage: {}", segments[1].display())),
        "{report}"
    );
    assert!(report.contains("at byte offset"), "{report}");
    // The damage is reported at or before the flipped byte (at its frame).
    let reported: u64 = report
        .split("at byte offset ")
        .nth(1)
        .and_then(|rest| rest.split([':', ' ']).next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        reported <= damaged_offset && damaged_offset - reported < 1024,
        "{report}"
    );
    assert!(
        report.contains(&format!("{damaged_name}: zero bytes")),
        "{report}"
    );
    for later in &segments[2..] {
        let name = later.file_name().unwrap().to_str().unwrap();
        assert!(
            report.contains(&format!("{name}: remove the whole file")),
            "{report}"
        );
    }
    assert!(!report.contains(&format!(
        "{}:",
        segments[0].file_name().unwrap().to_str().unwrap()
    )));
    let kept: u64 = report
        .split("keep: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(kept > 0 && kept < 600, "{report}");
    assert!(report.contains("events cut: "), "{report}");
    assert!(
        report.contains("remove the snapshot of stream \"s-0\" at version 120"),
        "{report}"
    );
    assert!(!report.contains("snapshot of stream \"s-1\""), "{report}");

    let cut = expect(0, &["repair", d, "--yes"]);
    assert!(
        cut.stdout
            .contains(&format!("the store opens: {kept} events")),
        "{}",
        cut.stdout
    );
    // Every removed or changed file is in the backup, as it was.
    let backup: Vec<PathBuf> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("repair-backup-")
        })
        .collect();
    assert_eq!(backup.len(), 1);
    for segment in &segments[1..] {
        let saved = backup[0].join(segment.file_name().unwrap());
        let original = before.iter().find(|(p, _)| p == segment).unwrap();
        assert_eq!(
            std::fs::read(&saved).unwrap(),
            original.1,
            "{}",
            saved.display()
        );
    }
    assert_eq!(segment_files(temp.path()), segments[..2]);
    let saved_snapshots = std::fs::read_dir(backup[0].join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(saved_snapshots, 1);
    let store = annals::Store::open_read_only(temp.path()).unwrap();
    assert_eq!(store.load_snapshot("s-0").unwrap(), None);
    assert_eq!(store.load_snapshot("s-1").unwrap().unwrap().data, b"early");
    drop(store);

    // The store opens and reads again, and takes new appends.
    assert_eq!(expect(0, &["read", d]).lines().len() as u64, kept);
    expect(
        0,
        &["append", d, "--stream", "s-0", "--type", "T", "--data", "1"],
    );
    assert!(expect(0, &["repair", d]).stdout.contains("no damage found"));
}

#[test]
fn repair_of_a_damaged_header_removes_that_segment_and_later_ones() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    numbered_store(temp.path(), 600);
    let segments = segment_files(temp.path());
    std::fs::set_permissions(&segments[1], std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segments[1])
        .unwrap()
        .write_all_at(b"X", 3)
        .unwrap();
    expect(4, &["read", d]);
    let report = expect(4, &["repair", d]).stdout;
    let name = segments[1].file_name().unwrap().to_str().unwrap();
    assert!(
        report.contains(&format!("{name}: remove the whole file")),
        "{report}"
    );
    expect(0, &["repair", d, "--yes"]);
    assert_eq!(
        segment_files(temp.path()).len(),
        2,
        "segment 0 and a new one"
    );
    let first_base: u64 = name[..20].parse().unwrap();
    assert_eq!(expect(0, &["read", d]).lines().len() as u64, first_base);
}

#[test]
fn bench_measures_a_tiny_run() {
    let temp = tempfile::tempdir().unwrap();
    let run = expect(
        0,
        &[
            "bench",
            "--events",
            "700",
            "--batch",
            "9",
            "--streams",
            "4",
            "--payload-bytes",
            "50",
            "--durability",
            "none",
            "--segment-size-bytes",
            SMALL_SEGMENT,
        ],
    );
    for needle in [
        "append:",
        "events/s",
        "MB/s",
        "p50",
        "p99",
        "read by stream:",
        "read in log order:",
        "reopen:",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
    // With a directory: the store stays there, complete.
    let dir = temp.path().join("bench");
    let json = expect(
        0,
        &[
            "bench",
            path(&dir),
            "--events",
            "300",
            "--batch",
            "10",
            "--streams",
            "3",
            "--durability",
            "always",
            "--json",
        ],
    );
    let report = &json.lines()[0];
    assert_eq!(report["events"], 300);
    assert!(report["append"]["events_per_second"].as_f64().unwrap() > 0.0);
    assert!(
        report["append_latency_p99_ms"].as_f64().unwrap()
            >= report["append_latency_p50_ms"].as_f64().unwrap()
    );
    let stats = &expect(0, &["stats", path(&dir), "--json"]).lines()[0];
    assert_eq!(
        (stats["events"].as_u64(), stats["streams"].as_u64()),
        (Some(300), Some(3))
    );
    expect(1, &["bench", "--events", "0"]);
}

#[test]
fn verify_checks_the_store_and_an_expected_head() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    numbered_store(temp.path(), 600);
    let run = expect(0, &["verify", d, "--json"]);
    let report = &run.lines()[0];
    assert_eq!(report["ok"], true);
    assert_eq!(report["events"], 600);
    assert!(report["segments"].as_u64().unwrap() >= 3);
    let head = format!(
        "{}@{}",
        report["head"].as_str().unwrap(),
        report["head_position"]
    );
    let text = expect(0, &["verify", d, "--expect-head", &head]);
    assert!(
        text.stdout.contains("matched") && text.stdout.contains("OK"),
        "{}",
        text.stdout
    );

    // More events later: the old head still matches.
    expect(
        0,
        &[
            "append", d, "--stream", "s-9", "--type", "Later", "--data", "1",
        ],
    );
    expect(0, &["verify", d, "--expect-head", &head]);
    // A head that was never this log's is rewritten history: exit 4.
    let forged = format!("{}@599", "ab".repeat(32));
    let run = expect(4, &["verify", d, "--expect-head", &forged]);
    assert!(run.stdout.contains("rewritten history"), "{}", run.stdout);
    expect(2, &["verify", d, "--expect-head", "not-hex"]);

    // A flipped byte in a sealed segment: exit 4, naming file and offset.
    let sealed = &segment_files(temp.path())[1];
    damage_middle_of(sealed);
    let before = snapshot_of(temp.path());
    let run = expect(4, &["verify", d]);
    assert!(
        run.stdout
            .contains(sealed.file_name().unwrap().to_str().unwrap()),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    assert_eq!(snapshot_of(temp.path()), before, "verify changed nothing");
}
