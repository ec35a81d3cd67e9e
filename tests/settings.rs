//! Settings kept with the store (`annals.settings`): the segment size and
//! limits chosen at creation are used by every later writer unless its
//! options change them, and a changed setting is kept for the next writer.

mod common;

use std::path::Path;

use annals::{Durability, Error, EventData, ExpectedVersion, FindingKind, Limits, Options, Store};
use common::segment_files;

/// Held by each test for its whole run: one of them spawns `annals`, and a
/// child forked while another test holds a writer lock inherits that lock
/// until it execs (a reopen in that window fails with `Locked`).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn len_of_newest_segment(dir: &Path) -> u64 {
    let newest = segment_files(dir).pop().unwrap();
    std::fs::metadata(newest).unwrap().len()
}

/// Appends until the store rolls to a new segment at least once.
fn roll(store: &Store) {
    let before = store.next_position();
    for i in 0..400u64 {
        store
            .append(
                "s",
                ExpectedVersion::Any,
                &[EventData::new("E", vec![i as u8; 1000])],
            )
            .unwrap();
    }
    assert!(store.next_position() > before);
}

#[test]
fn a_writer_that_does_not_choose_keeps_the_segment_size_and_limits_of_the_store() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_event_bytes: 2_000,
        ..Limits::default()
    };
    let created = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None)
        .limits(limits);
    Store::open(dir.path(), created).unwrap().close().unwrap();

    let store = Store::open(dir.path(), Options::default().durability(Durability::None)).unwrap();
    assert_eq!(store.options().segment_size_bytes, 64 * 1024);
    assert_eq!(store.options().limits.max_event_bytes, 2_000);
    roll(&store);
    assert!(segment_files(dir.path()).len() >= 2);
    assert_eq!(len_of_newest_segment(dir.path()), 64 * 1024);
    let too_big = store.append(
        "s",
        ExpectedVersion::Any,
        &[EventData::new("E", vec![0; 5_000])],
    );
    assert!(
        matches!(too_big, Err(Error::LimitExceeded { .. })),
        "{too_big:?}"
    );
    store.close().unwrap();
    // Readers report the recorded settings too.
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.options().segment_size_bytes, 64 * 1024);
}

#[test]
fn a_changed_setting_is_kept_for_later_writers() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let small = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None);
    Store::open(dir.path(), small).unwrap().close().unwrap();
    let bigger = Options::default()
        .segment_size_bytes(128 * 1024)
        .durability(Durability::None);
    let store = Store::open(dir.path(), bigger).unwrap();
    roll(&store);
    store.close().unwrap();
    assert_eq!(len_of_newest_segment(dir.path()), 128 * 1024);
    let store = Store::open(dir.path(), Options::default().durability(Durability::None)).unwrap();
    assert_eq!(store.options().segment_size_bytes, 128 * 1024);
}

#[test]
fn a_store_from_before_settings_files_keeps_the_size_of_its_segments() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let small = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None);
    Store::open(dir.path(), small).unwrap().close().unwrap();
    std::fs::remove_file(dir.path().join("annals.settings")).unwrap();
    let store = Store::open(dir.path(), Options::default().durability(Durability::None)).unwrap();
    assert_eq!(store.options().segment_size_bytes, 64 * 1024);
    roll(&store);
    assert_eq!(len_of_newest_segment(dir.path()), 64 * 1024);
}

#[test]
fn a_damaged_settings_file_is_refused_alike_by_every_reader() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), Options::default().segment_size_bytes(64 * 1024))
        .unwrap()
        .close()
        .unwrap();
    let path = dir.path().join("annals.settings");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    for (what, result) in [
        (
            "writable open",
            Store::open(dir.path(), Options::default()).map(drop),
        ),
        (
            "read-only open",
            Store::open_read_only(dir.path()).map(drop),
        ),
    ] {
        let error = result.expect_err(what);
        let finding = error.finding().unwrap_or_else(|| panic!("{what}: {error}"));
        assert_eq!(finding.path, path, "{what}");
        assert!(
            matches!(finding.kind, FindingKind::InvalidSettings { .. }),
            "{what}: {error}"
        );
        assert!(error.to_string().contains("delete it"), "{error}");
    }
    let report = annals::verify(dir.path(), &annals::VerifyOptions::default()).unwrap();
    assert!(!report.is_ok(), "{report}");
    // Deleting it is the remedy: the next writer records its options.
    std::fs::remove_file(&path).unwrap();
    Store::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
    assert!(path.exists());
}

/// The example: an `import` (or `append`) without
/// `--segment-size-bytes` into a store made with 64 KiB segments created a
/// 64 MiB segment.
#[cfg(feature = "cli")]
#[test]
fn the_command_line_keeps_the_segment_size_of_the_store() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
    };
    let small = ["--segment-size-bytes", "65536"];
    let one = ["append", d, "--stream", "s", "--type", "T", "--data", "1"];
    run(&[&one[..], &small[..]].concat());
    // Later appends without the flag fill the first segment and roll.
    let big = format!("\"{}\"", "y".repeat(30_000));
    for _ in 0..4 {
        run(&["append", d, "--stream", "s", "--type", "T", "--data", &big]);
    }
    assert!(segment_files(dir.path()).len() >= 2, "the appends rolled");
    for segment in segment_files(dir.path()) {
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            64 * 1024,
            "{segment:?}"
        );
    }
}
