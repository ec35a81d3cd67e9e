//! Long-term readability of a store that forgot on purpose: checked in under
//! `tests/fixtures/v3-retired-store/` (its kept segments, its retention
//! manifest `annals.retention` and its key file `annals.keys`) with the
//! segments it retired in `tests/fixtures/v3-retired-archive/`, and what a
//! reader must find recorded in `tests/fixtures/v3-retired-store.expect`
//! (JSON: where the log starts, each stream's version, each kept event, the
//! head digest, a checkpoint signed by the key in that file).
//!
//! The store has a truncated stream, a deleted one, and an erased subject,
//! whose metadata events and erasure event were all retired: every later
//! build must still apply them, from the manifest alone.
//!
//! Never regenerate it to make a test pass: a failure means a build can no
//! longer read what an earlier one wrote. To write it on purpose:
//!
//! ```text
//! ANNALS_REGENERATE_RETIRED_FIXTURE=1 cargo test --test fixture_retired -- --ignored regenerate
//! ```

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use annals::{
    Durability, Error, EventData, ExpectedHead, ExpectedVersion, Options, RetireOptions, Store,
    VerifyOptions, verify,
};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn store_dir() -> PathBuf {
    fixtures().join("v3-retired-store")
}

fn archive_dir() -> PathBuf {
    fixtures().join("v3-retired-archive")
}

fn expectations() -> Value {
    let text = fs::read_to_string(fixtures().join("v3-retired-store.expect")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A copy of the fixture store, for tests that write (and for read-only
/// opens: git does not keep the sealed segments read-only).
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&store_dir(), dir.path());
    dir
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Each kept event as the expectation file lists it.
fn event_json(event: &annals::RecordedEvent) -> Value {
    json!({
        "position": event.position,
        "stream": event.stream,
        "version": event.version,
        "type": event.event_type,
        "subject": event.subject,
        "erased": event.erased,
        "data_sha256": (!event.erased).then(|| sha256_hex(&event.data)),
    })
}

/// What the expectation file records of a store.
fn observed(store: &Store) -> Value {
    let mut streams = serde_json::Map::new();
    for stream in [
        "account-1",
        "account-2",
        "order-17",
        "customer-7",
        "customer-8",
    ] {
        streams.insert(stream.into(), json!(store.stream_version(stream)));
    }
    let events: Vec<Value> = store
        .read_all(0, usize::MAX)
        .unwrap()
        .iter()
        .map(event_json)
        .collect();
    json!({
        "log_start": store.log_start_position(),
        "next_position": store.next_position(),
        "streams": streams,
        "events": events,
        "head": ExpectedHead::from(store.chain_head()).to_string(),
        "erased_subjects": store.erased_subjects().into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
    })
}

/// The stream rules the retired metadata and erasure events set.
fn assert_rules(store: &Store) {
    // Truncated before version 3 of account-2.
    let account_2 = store.read_stream("account-2", 1, usize::MAX).unwrap();
    assert!(
        account_2.first().is_none_or(|e| e.version >= 3),
        "{account_2:?}"
    );
    // order-17 was deleted.
    let error = store.read_stream("order-17", 1, 10).unwrap_err();
    assert!(matches!(error, Error::StreamDeleted { .. }), "{error}");
    // subject-erased-7 was erased.
    assert!(store.erasure_of("subject-erased-7").is_some());
}

#[test]
fn the_retired_fixture_reads_back_as_recorded() {
    let expected = expectations();
    let dir = copy();
    let store = Store::open_read_only(dir.path()).unwrap();
    let seen = observed(&store);
    for key in [
        "log_start",
        "next_position",
        "streams",
        "events",
        "head",
        "erased_subjects",
    ] {
        assert_eq!(seen[key], expected[key], "{key}");
    }
    assert!(seen["log_start"].as_u64().unwrap() > 0);
    assert_rules(&store);
}

#[test]
fn the_retired_fixture_verifies_alone_and_with_its_archive() {
    let expected = expectations();
    let head: ExpectedHead = expected["head"].as_str().unwrap().parse().unwrap();
    let dir = copy();
    let alone = verify(dir.path(), &VerifyOptions::default().expect_head(head)).unwrap();
    assert!(alone.is_ok(), "{alone}");
    assert!(!alone.retired.as_ref().unwrap().archive_checked);
    let whole = verify(
        dir.path(),
        &VerifyOptions::default()
            .expect_head(head)
            .archive(archive_dir()),
    )
    .unwrap();
    assert!(whole.is_ok(), "{whole}");
    assert_eq!(whole.summary.first_position, Some(0));
}

#[test]
fn the_retired_fixture_proves_a_kept_event_against_its_signed_checkpoint() {
    let expected = expectations();
    let note = expected["checkpoint"].as_str().unwrap();
    let key = expected["verifier_key"].as_str().unwrap();
    let dir = copy();
    let store = Store::open_read_only(dir.path()).unwrap();
    let checkpoint = annals::proof::note::open(note, key).unwrap();
    let (size, root) = store.tree_size_and_root().unwrap();
    assert_eq!((size, root), (checkpoint.size, checkpoint.root));
    let position = store.log_start_position() + 3;
    let proof = store.inclusion_proof(position, size).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    annals::proof::check_inclusion(&json, note, key).unwrap();
}

#[test]
fn the_retired_fixture_opens_for_writing_and_goes_on() {
    let expected = expectations();
    let dir = copy();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_rules(&store);
    let version = expected["streams"]["account-1"].as_u64().unwrap();
    let appended = store
        .append(
            "account-1",
            ExpectedVersion::Exact(version),
            &[EventData::new("Deposited", b"after".to_vec())],
        )
        .unwrap();
    assert_eq!(appended.first_version, version + 1);
    assert_eq!(
        appended.first_position,
        expected["next_position"].as_u64().unwrap()
    );
    // An erased subject never comes back; a deleted stream stays deleted.
    let error = store
        .append(
            "customer-7",
            ExpectedVersion::Any,
            &[EventData::new("Registered", b"x".to_vec()).with_subject("subject-erased-7")],
        )
        .unwrap_err();
    assert!(matches!(error, Error::SubjectErased { .. }), "{error}");
    let error = store
        .append(
            "order-17",
            ExpectedVersion::Any,
            &[EventData::new("E", vec![])],
        )
        .unwrap_err();
    assert!(matches!(error, Error::StreamDeleted { .. }), "{error}");
    store.close().unwrap();
    assert!(
        verify(dir.path(), &VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

/// Writes the fixture. Run only on purpose (see the module docs).
#[test]
#[ignore = "rewrites tests/fixtures/v3-retired-*; set ANNALS_REGENERATE_RETIRED_FIXTURE=1"]
fn regenerate() {
    if std::env::var("ANNALS_REGENERATE_RETIRED_FIXTURE").as_deref() != Ok("1") {
        eprintln!("set ANNALS_REGENERATE_RETIRED_FIXTURE=1 to rewrite the retired fixture");
        return;
    }
    let (dir, archive) = (store_dir(), archive_dir());
    for path in [&dir, &archive] {
        if path.exists() {
            fs::remove_dir_all(path).unwrap();
        }
        fs::create_dir_all(path).unwrap();
    }
    let options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::Always);
    let store = Store::open(&dir, options).unwrap();
    let event = |kind: &str, n: u64| {
        EventData::new(kind, format!("{kind} {n} {}", "·".repeat(400)).into_bytes())
    };
    let append = |stream: &str, events: Vec<EventData>| {
        store.append(stream, ExpectedVersion::Any, &events).unwrap();
    };
    for round in 0..6 {
        append("account-1", vec![event("Deposited", round)]);
        append(
            "account-2",
            vec![event("Deposited", round), event("Withdrawn", round)],
        );
        append("order-17", vec![event("ItemAdded", round)]);
        append(
            "customer-7",
            vec![event("Visited", round).with_subject("subject-erased-7")],
        );
        append(
            "customer-8",
            vec![event("Visited", round).with_subject("subject-kept-8")],
        );
    }
    store.truncate_stream("account-2", 3).unwrap();
    store
        .delete_stream("order-17", ExpectedVersion::Exact(6))
        .unwrap();
    store
        .erase_subject("subject-erased-7", "fixture: right to erasure")
        .unwrap();
    // Enough after them that the segments recording them can go.
    for round in 6..100 {
        append("account-1", vec![event("Deposited", round)]);
        append("account-2", vec![event("Withdrawn", round)]);
        append(
            "customer-8",
            vec![event("Visited", round).with_subject("subject-kept-8")],
        );
    }
    let cut = store.active_segment_position() - 1;
    let retired = store
        .retire_segments_before(
            cut,
            &RetireOptions {
                reason: "fixture: retention period over".into(),
                archive: Some(archive.clone()),
            },
        )
        .unwrap();
    assert!(retired.segments.len() >= 2, "{retired:?}");
    let (signer, verifier) = annals::proof::note::generate_key("annals-fixture").unwrap();
    let checkpoint = store
        .signed_checkpoint("annals.test/fixture/v3-retired", &signer)
        .unwrap();
    store.close().unwrap();
    // As a reader finds it after the close (its sync marker included).
    let mut expected = observed(&Store::open_read_only(&dir).unwrap());
    expected["checkpoint"] = json!(checkpoint);
    expected["verifier_key"] = json!(verifier);
    fs::remove_file(dir.join(annals::LOCK_FILE_NAME)).unwrap();
    // The log, the manifest and the keys are the fixture; derived files
    // and settings are not (every opener copes without them).
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".seg") || name == "annals.retention" || name == "annals.keys") {
            fs::remove_file(&path).unwrap();
        }
    }
    fs::write(
        fixtures().join("v3-retired-store.expect"),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
}
