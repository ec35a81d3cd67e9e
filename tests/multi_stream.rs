//! Atomic appends to several streams (`Store::append_multi`, format
//! version 4): one batch, all or nothing, each stream's expected version and
//! conditions on streams not written; idempotent on a command id; read back
//! the same by every opener, verify and repair; refused as damage where the
//! format does not allow it.

mod common;

use std::path::Path;

use annals::format::batch::{encode_commit_frame, encode_event_frame};
use annals::format::body::{CommitBody, EventBody};
use annals::format::header::SegmentHeader;
use annals::format::scan::{BatchRead, EventRef, read_batch};
use annals::format::{FOOTER_LEN, FORMAT_VERSION, MULTI_STREAM_FORMAT_VERSION, SEGMENT_HEADER_LEN};
use annals::{
    Error, EventData, ExpectedVersion, FindingKind, MultiStreamAppend, Options, Store,
    VerifyOptions, verify,
};
use common::{all_events, segment_files, small_segments};

fn events(prefix: &str, count: usize) -> Vec<EventData> {
    (0..count)
        .map(|i| EventData::new(format!("{prefix}{i}"), format!("{prefix}/{i}").into_bytes()))
        .collect()
}

/// Both kinds of store the library offers.
fn stores(dir: &Path) -> Vec<(&'static str, Store)> {
    vec![
        ("file", Store::open(dir, small_segments()).unwrap()),
        ("memory", Store::in_memory(small_segments()).unwrap()),
    ]
}

#[test]
fn one_batch_writes_every_stream_at_consecutive_positions() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(dir.path()) {
        store
            .append("stock-7", ExpectedVersion::NoStream, &events("s", 2))
            .unwrap();
        let order = events("o", 3);
        let stock = events("t", 1);
        let audit = events("a", 2);
        let written = store
            .append_multi(
                &MultiStreamAppend::new()
                    .write("order-1", ExpectedVersion::NoStream, &order)
                    .write("stock-7", ExpectedVersion::Exact(2), &stock)
                    .write("audit", ExpectedVersion::Any, &audit),
            )
            .unwrap();
        let streams: Vec<_> = written
            .streams
            .iter()
            .map(|s| {
                (
                    s.stream.as_str(),
                    s.result.first_version,
                    s.result.last_version,
                )
            })
            .collect();
        assert_eq!(
            streams,
            [("order-1", 1, 3), ("stock-7", 3, 3), ("audit", 1, 2)],
            "{kind}"
        );
        assert_eq!(
            (written.first_position(), written.last_position()),
            (2, 7),
            "{kind}"
        );
        assert_eq!(written.get("stock-7").unwrap().first_position, 5, "{kind}");
        assert_eq!(store.stream_version("stock-7"), 3, "{kind}");
        let log: Vec<_> = store
            .read_all(0, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.position, e.stream, e.version))
            .collect();
        assert_eq!(
            log,
            [
                (0, "stock-7".into(), 1),
                (1, "stock-7".into(), 2),
                (2, "order-1".into(), 1),
                (3, "order-1".into(), 2),
                (4, "order-1".into(), 3),
                (5, "stock-7".into(), 3),
                (6, "audit".into(), 1),
                (7, "audit".into(), 2),
            ],
            "{kind}"
        );
        let stock: Vec<_> = store
            .read_stream("stock-7", 1, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(stock, ["s0", "s1", "t0"], "{kind}");
    }
}

#[test]
fn a_conflict_on_any_stream_or_condition_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(dir.path()) {
        store
            .append("b", ExpectedVersion::NoStream, &events("b", 1))
            .unwrap();
        let one = events("x", 1);
        let error = store
            .append_multi(
                &MultiStreamAppend::new()
                    .write("a", ExpectedVersion::NoStream, &one)
                    .write("b", ExpectedVersion::Exact(5), &one),
            )
            .unwrap_err();
        match error {
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => {
                assert_eq!(
                    (stream.as_str(), expected, actual),
                    ("b", ExpectedVersion::Exact(5), 1),
                    "{kind}"
                );
            }
            other => panic!("{kind}: {other}"),
        }
        // A condition on a stream not written.
        let error = store
            .append_multi(
                &MultiStreamAppend::new()
                    .write("a", ExpectedVersion::NoStream, &one)
                    .require("c", ExpectedVersion::StreamExists),
            )
            .unwrap_err();
        assert!(
            matches!(&error, Error::WrongExpectedVersion { stream, actual: 0, .. } if stream == "c"),
            "{kind}: {error}"
        );
        assert_eq!(store.next_position(), 1, "{kind}");
        assert_eq!(store.stream_version("a"), 0, "{kind}");
        // Once the condition holds, the append goes through.
        let written = store
            .append_multi(
                &MultiStreamAppend::new()
                    .write("a", ExpectedVersion::NoStream, &one)
                    .require("b", ExpectedVersion::Exact(1)),
            )
            .unwrap();
        assert_eq!(written.streams.len(), 1, "{kind}");
        assert_eq!(written.first_position(), 1, "{kind}");
    }
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, store) in stores(dir.path()) {
        let one = events("x", 1);
        let none: Vec<EventData> = Vec::new();
        let cases = [
            ("nothing written", MultiStreamAppend::new()),
            (
                "only conditions",
                MultiStreamAppend::new().require("a", ExpectedVersion::Any),
            ),
            (
                "a write with no events",
                MultiStreamAppend::new()
                    .write("a", ExpectedVersion::Any, &one)
                    .write("b", ExpectedVersion::Any, &none),
            ),
            (
                "a stream written twice",
                MultiStreamAppend::new()
                    .write("a", ExpectedVersion::Any, &one)
                    .write("a", ExpectedVersion::Any, &one),
            ),
            (
                "a stream written and checked",
                MultiStreamAppend::new()
                    .write("a", ExpectedVersion::Any, &one)
                    .require("a", ExpectedVersion::Any),
            ),
            (
                "an empty stream id",
                MultiStreamAppend::new()
                    .write("a", ExpectedVersion::Any, &one)
                    .write("", ExpectedVersion::Any, &one),
            ),
        ];
        for (what, request) in cases {
            let error = store.append_multi(&request).unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument(_)),
                "{kind}, {what}: {error}"
            );
        }
        let error = store
            .append_multi(
                &MultiStreamAppend::new()
                    .write("a", ExpectedVersion::Any, &one)
                    .write("$system", ExpectedVersion::Any, &one),
            )
            .unwrap_err();
        assert!(
            matches!(&error, Error::ReservedStream { stream } if stream == "$system"),
            "{kind}: {error}"
        );
        let names: Vec<String> = (0..1_001).map(|i| format!("s-{i}")).collect();
        let mut request = MultiStreamAppend::new();
        for name in &names {
            request = request.write(name, ExpectedVersion::Any, &one);
        }
        let error = store.append_multi(&request).unwrap_err();
        assert!(
            matches!(
                error,
                Error::LimitExceeded {
                    actual: 1_001,
                    max: 1_000,
                    ..
                }
            ),
            "{kind}: {error}"
        );
        assert_eq!(store.next_position(), 0, "{kind}");
    }
}

#[test]
fn the_most_streams_a_batch_may_write_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let one = events("x", 1);
    let names: Vec<String> = (0..1_000).map(|i| format!("s-{i}")).collect();
    let mut request = MultiStreamAppend::new();
    for name in &names {
        request = request.write(name, ExpectedVersion::NoStream, &one);
    }
    let written = store.append_multi(&request).unwrap();
    assert_eq!(written.last_position(), 999);
    store.close().unwrap();
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.stream_version("s-999"), 1);
    assert_eq!(store.next_position(), 1_000);
}

#[test]
fn a_command_id_makes_it_idempotent_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let order = events("o", 2);
    let stock = events("t", 3);
    let request = MultiStreamAppend::new()
        .write("order-1", ExpectedVersion::NoStream, &order)
        .write("stock-7", ExpectedVersion::NoStream, &stock)
        .command_id("place-1");
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let first = store.append_multi(&request).unwrap();
    // A repeat writes nothing and returns the first result, whatever the
    // expected versions say now.
    assert_eq!(store.append_multi(&request).unwrap(), first);
    assert_eq!(store.next_position(), 5);
    store.close().unwrap();

    // From the checkpoint and index files, and from the log alone.
    for rebuild in [false, true] {
        if rebuild {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .extension()
                    .is_some_and(|e| e == "idx" || e == "checkpoint")
                {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert_eq!(
            store.append_multi(&request).unwrap(),
            first,
            "rebuild {rebuild}"
        );
        // The same command id for other streams is a mistake, not a repeat.
        let other = MultiStreamAppend::new()
            .write("order-1", ExpectedVersion::Any, &order)
            .write("stock-8", ExpectedVersion::Any, &stock)
            .command_id("place-1");
        let error = store.append_multi(&other).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidArgument(m) if m.contains("place-1") && m.contains("stock-8")),
            "{error}"
        );
        // One result cannot stand for several streams.
        let error = store
            .append_idempotent("place-1", "order-1", ExpectedVersion::Any, &order)
            .unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
        assert_eq!(store.next_position(), 5);
        store.close().unwrap();
    }
}

#[test]
fn every_opener_verify_and_repair_agree_on_a_log_of_multi_stream_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    // Enough to roll several 64 KiB segments, mixing one-stream and
    // several-stream batches.
    for round in 0..300u64 {
        let a = vec![common::event("a", round, 0, 200)];
        let b = vec![
            common::event("b", round, 0, 200),
            common::event("b", round, 1, 200),
        ];
        if round % 3 == 0 {
            store.append("a", ExpectedVersion::Any, &a).unwrap();
        } else {
            let c = format!("c-{}", round % 7);
            let c_events = vec![common::event(&c, round, 0, 100)];
            store
                .append_multi(
                    &MultiStreamAppend::new()
                        .write("a", ExpectedVersion::Exact(store.stream_version("a")), &a)
                        .write("b", ExpectedVersion::Any, &b)
                        .write(&c, ExpectedVersion::Any, &c_events),
                )
                .unwrap();
        }
    }
    let written = all_events(&store);
    let versions: Vec<_> = ["a", "b", "c-1"]
        .iter()
        .map(|s| store.stream_version(s))
        .collect();
    store.close().unwrap();
    assert!(segment_files(dir.path()).len() >= 3, "several segments");

    let report = verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok() && report.problems.is_empty(), "{report}");
    assert_eq!(report.summary.events, written.len() as u64);
    assert_eq!(report.summary.batches, 300);
    let repair = annals::Repair::lock(dir.path()).unwrap();
    let plan = repair.plan().unwrap();
    assert!(plan.damage.is_none() && plan.cut.is_none(), "{plan:?}");
    drop(repair);
    for (what, store) in [
        ("read-only", Store::open_read_only(dir.path()).unwrap()),
        (
            "read-only rebuilding",
            Store::open_read_only_rebuilding_index(dir.path()).unwrap(),
        ),
        (
            "writable",
            Store::open(dir.path(), small_segments()).unwrap(),
        ),
    ] {
        assert_eq!(all_events(&store), written, "{what}");
        let got: Vec<_> = ["a", "b", "c-1"]
            .iter()
            .map(|s| store.stream_version(s))
            .collect();
        assert_eq!(got, versions, "{what}");
        let b = store.read_stream("b", 1, usize::MAX).unwrap();
        assert_eq!(b.len() as u64, versions[1], "{what}");
    }
}

#[test]
fn a_store_of_an_older_version_rolls_to_a_v4_segment_first() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3-store"),
        dir.path(),
    );
    let options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(annals::Durability::None);
    let store = Store::open(dir.path(), options.clone()).unwrap();
    let before = segment_files(dir.path());
    // One stream: goes on in the v3 segment.
    store
        .append("account-1", ExpectedVersion::Any, &events("p", 1))
        .unwrap();
    assert_eq!(segment_files(dir.path()), before);
    let one = events("m", 1);
    let written = store
        .append_multi(
            &MultiStreamAppend::new()
                .write("account-1", ExpectedVersion::Any, &one)
                .write("account-2", ExpectedVersion::Any, &one),
        )
        .unwrap();
    let after = segment_files(dir.path());
    assert_eq!(after.len(), before.len() + 1, "a new segment");
    let header = SegmentHeader::decode(&std::fs::read(after.last().unwrap()).unwrap()).unwrap();
    assert_eq!(header.format_version, MULTI_STREAM_FORMAT_VERSION);
    assert_eq!(header.base_position, written.first_position());
    store.close().unwrap();
    let report = verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report}");
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(
        store.read_all(written.first_position(), 10).unwrap().len(),
        2
    );
}

/// Rewrites the batches of the newest segment of `dir` (a closed store, so
/// its checkpoint and index files are removed: they describe the old
/// bytes) with `change` applied to every event body, recomputing frame
/// checksums and the chain; `format_version`, if given, replaces the
/// header's. Only changes that keep each frame's length are allowed.
fn rewrite_newest_segment(
    dir: &Path,
    format_version: Option<u16>,
    mut change: impl FnMut(&mut EventBody<'_>),
) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "idx" || e == "checkpoint")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let path = segment_files(dir).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mut header = SegmentHeader::decode(&bytes).unwrap();
    let old_version = header.format_version;
    let data_end = bytes.len() - FOOTER_LEN;
    let mut out = Vec::new();
    let mut chain = header.chain_start;
    let mut offset = SEGMENT_HEADER_LEN;
    let mut read: Vec<EventRef<'_>> = Vec::new();
    loop {
        let batch = match read_batch(
            &bytes,
            header.salt,
            old_version,
            offset,
            data_end,
            &mut read,
        ) {
            BatchRead::Batch(batch) => batch,
            BatchRead::Empty => break,
            BatchRead::Invalid { at, error } => panic!("{error} at {at}"),
        };
        let start = out.len();
        for event in &read {
            let mut body = event.event;
            change(&mut body);
            encode_event_frame(
                &mut out,
                header.salt,
                format_version.unwrap_or(old_version),
                &body,
            );
        }
        let commit = CommitBody { ..batch.commit };
        chain = encode_commit_frame(&mut out, header.salt, start, &chain, &commit);
        assert_eq!(out.len(), batch.end - SEGMENT_HEADER_LEN, "same lengths");
        offset = batch.end;
    }
    drop(read);
    bytes[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + out.len()].copy_from_slice(&out);
    if let Some(version) = format_version {
        header.format_version = version;
        bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    }
    std::fs::write(&path, bytes).unwrap();
}

/// A store of one segment: a one-stream batch, then one batch writing
/// "a", "b" and "c" (one event each); closed.
fn store_with_a_multi_stream_batch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    store
        .append("a", ExpectedVersion::NoStream, &events("x", 1))
        .unwrap();
    let one = events("y", 1);
    store
        .append_multi(
            &MultiStreamAppend::new()
                .write("a", ExpectedVersion::Exact(1), &one)
                .write("b", ExpectedVersion::NoStream, &one)
                .write("c", ExpectedVersion::NoStream, &one),
        )
        .unwrap();
    store.close().unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    dir
}

/// Every opener and verify refuse `dir` with the same finding, whose
/// text contains `detail`.
fn every_reader_refuses(dir: &Path, detail: &str) {
    let writable = Store::open(dir, small_segments()).err().unwrap();
    let read_only = Store::open_read_only(dir).err().unwrap();
    for error in [&writable, &read_only] {
        let finding = error.finding().unwrap_or_else(|| panic!("{error}"));
        assert!(finding.to_string().contains(detail), "{finding}");
        assert_eq!(finding.position, Some(1), "{finding}");
    }
    assert_eq!(
        writable.finding().unwrap().kind,
        read_only.finding().unwrap().kind
    );
    let report = verify(dir, &VerifyOptions::default()).unwrap();
    assert!(!report.is_ok(), "{report}");
    assert!(report.to_string().contains(detail), "{report}");
}

#[test]
fn control_the_rewrite_alone_changes_nothing() {
    let dir = store_with_a_multi_stream_batch();
    rewrite_newest_segment(dir.path(), None, |_| {});
    let report = verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok() && report.corruption_count == 0, "{report}");
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.next_position(), 4);
}

#[test]
fn a_batch_of_several_streams_in_a_segment_before_v4_is_damage() {
    const { assert!(FORMAT_VERSION >= MULTI_STREAM_FORMAT_VERSION) };
    let dir = store_with_a_multi_stream_batch();
    rewrite_newest_segment(dir.path(), Some(3), |_| {});
    every_reader_refuses(
        dir.path(),
        "events of one batch belong to different streams",
    );
}

#[test]
fn a_stream_with_two_runs_in_one_batch_is_damage() {
    let dir = store_with_a_multi_stream_batch();
    // "c" becomes a second run of "a": a1, [a2, b1, a3].
    rewrite_newest_segment(dir.path(), None, |event| {
        if event.stream == "c" {
            event.stream = "a";
            event.version = 3;
        }
    });
    every_reader_refuses(dir.path(), "a stream has two runs of events in the batch");
}

#[test]
fn a_later_run_that_does_not_continue_its_stream_is_out_of_sequence() {
    let dir = store_with_a_multi_stream_batch();
    rewrite_newest_segment(dir.path(), None, |event| {
        if event.stream == "b" {
            event.version = 5;
        }
    });
    every_reader_refuses(dir.path(), "stream \"b\" starts at version 5, not 1");
}

#[test]
fn a_first_run_that_does_not_continue_its_stream_is_out_of_sequence() {
    let dir = store_with_a_multi_stream_batch();
    rewrite_newest_segment(dir.path(), None, |event| {
        if event.stream == "a" && event.position == 1 {
            event.version = 3;
        }
    });
    every_reader_refuses(dir.path(), "stream \"a\" jumps from version 1 to 3");
}

#[test]
fn control_finding_kinds_are_what_the_format_names() {
    // The refusals above are batch and sequence findings, not something
    // else that happens to contain the text.
    let dir = store_with_a_multi_stream_batch();
    rewrite_newest_segment(dir.path(), Some(3), |_| {});
    let error = Store::open_read_only(dir.path()).err().unwrap();
    // In the newest segment an invalid batch before a synced commit
    // record is lost durable data, with the batch's problem as detail.
    assert!(
        matches!(&error.finding().unwrap().kind, FindingKind::DurableDataLost { detail, .. }
            if detail.contains("invalid batch") || detail.contains("inconsistent")),
        "{error}"
    );
    let dir = store_with_a_multi_stream_batch();
    rewrite_newest_segment(dir.path(), None, |event| {
        if event.stream == "b" {
            event.version = 5;
        }
    });
    let error = Store::open_read_only(dir.path()).err().unwrap();
    assert!(
        matches!(
            error.finding().unwrap().kind,
            FindingKind::OutOfSequence { .. }
        ),
        "{error}"
    );
}

const CRASH_CHILD_DIR_ENV: &str = "ANNALS_MULTI_STREAM_CRASH_DIR";

/// The streams and event counts of batch `b` of the crash test: two
/// streams that differ from batch to batch, one to four events each.
fn crash_batch(b: u64) -> [(String, usize); 2] {
    [
        (format!("a-{}", b % 3), 1 + (b % 3) as usize),
        (format!("b-{}", b % 5), 1 + (b % 4) as usize),
    ]
}

fn crash_event(b: u64, write: usize, index: usize) -> EventData {
    let mut data = format!("batch {b} write {write} event {index};").into_bytes();
    data.resize(300, b'.');
    EventData::new("Moved", data)
}

/// In the child: appends batches of two streams until it is killed. In a
/// normal test run: does nothing.
#[test]
fn multi_stream_crash_child_entry_point() {
    let Ok(dir) = std::env::var(CRASH_CHILD_DIR_ENV) else {
        return;
    };
    let store = Store::open(&dir, small_segments()).unwrap();
    for b in 0.. {
        let writes = crash_batch(b);
        let events: Vec<Vec<EventData>> = writes
            .iter()
            .enumerate()
            .map(|(w, (_, count))| (0..*count).map(|i| crash_event(b, w, i)).collect())
            .collect();
        let mut request = MultiStreamAppend::new();
        for ((stream, _), events) in writes.iter().zip(&events) {
            request = request.write(stream, ExpectedVersion::Any, events);
        }
        store.append_multi(&request).unwrap();
    }
}

/// A process killed at a random moment while appending batches of two
/// streams leaves whole batches only: every batch in the log has all of
/// its events in both streams, in order, and the batches are a prefix of
/// what was appended.
#[test]
fn a_killed_writer_leaves_whole_multi_stream_batches_only() {
    let mut rng = 0x5EED_u64;
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "multi_stream_crash_child_entry_point",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_DIR_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Until it has rolled to a second segment (or a few seconds), then
        // a random moment later.
        let started = std::time::Instant::now();
        while segment_files(dir.path()).len() < 2 && started.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(std::time::Duration::from_micros((rng >> 33) % 20_000));
        child.kill().unwrap();
        child.wait().unwrap();

        let report = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(report.is_ok(), "round {round}: {report}");
        let store = Store::open(dir.path(), small_segments()).unwrap();
        let log = all_events(&store);
        assert!(!log.is_empty(), "round {round}: the child appended");
        let mut at = 0;
        let mut b = 0;
        while at < log.len() {
            for (w, (stream, count)) in crash_batch(b).iter().enumerate() {
                for i in 0..*count {
                    let event = log.get(at).unwrap_or_else(|| {
                        panic!("round {round}: batch {b} is cut after {at} events")
                    });
                    let want = crash_event(b, w, i);
                    assert_eq!(
                        (&event.stream, &event.data),
                        (stream, &want.data),
                        "round {round}: position {at}"
                    );
                    at += 1;
                }
            }
            b += 1;
        }
        // Every stream's versions count its events.
        for b in 0..b.min(15) {
            for (stream, _) in crash_batch(b) {
                let events = store.read_stream(&stream, 1, usize::MAX).unwrap();
                let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
                assert_eq!(versions, (1..=events.len() as u64).collect::<Vec<_>>());
                assert_eq!(store.stream_version(&stream), events.len() as u64);
            }
        }
        // The store goes on.
        store
            .append_multi(
                &MultiStreamAppend::new()
                    .write("a-0", ExpectedVersion::StreamExists, &events("z", 1))
                    .write("after", ExpectedVersion::NoStream, &events("z", 1)),
            )
            .unwrap();
    }
}
