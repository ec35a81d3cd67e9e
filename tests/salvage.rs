//! Salvage: every event of a damaged store that can still be verified,
//! through the library (`annals::salvage`) and `annals export --salvage`.

mod common;
mod refusal;

use std::path::Path;

use annals::{Store, salvage};
use common::{batches, fill, flip_byte, segment_files, small_segments};

/// Held by each test for its whole run. A child spawned (forked) by one
/// test while another holds a store's writer lock inherits that lock until
/// it execs, so a reopen in that window fails with `Locked`: the tests of
/// this file, which spawn `annals`, run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A closed, healthy store of several 64 KiB segments: its event count and
/// head.
fn closed_store_of_several_segments(dir: &Path) -> (u64, annals::ExpectedHead) {
    let store = Store::open(dir, small_segments()).unwrap();
    fill(&store, 300, 3, 5, 100);
    let total = store.next_position();
    let head = annals::ExpectedHead::from(store.chain_head());
    store.close().unwrap();
    (total, head)
}

/// A closed store of several segments whose second (sealed) segment has one
/// damaged event in the middle; returns the damaged batch's positions and
/// the offset of the damaged event's frame.
fn damaged_store(dir: &Path) -> (u64, std::ops::Range<u64>, u64) {
    let store = Store::open(dir, small_segments()).unwrap();
    fill(&store, 300, 3, 5, 100);
    let total = store.next_position();
    store.close().unwrap();
    let sealed = &segment_files(dir)[1];
    let batch = &batches(sealed)[10];
    let first = Store::open_read_only(dir)
        .unwrap()
        .read_all(0, usize::MAX)
        .unwrap()
        .len() as u64;
    assert_eq!(first, total);
    flip_byte(sealed, batch.events[1].body_offset() + 5);
    // The batch's positions: the segment's base plus the batches before it.
    let base: u64 = sealed
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".seg")
        .parse()
        .unwrap();
    let before: u64 = batches(sealed)[..10]
        .iter()
        .map(|b| b.events.len() as u64)
        .sum();
    let start = base + before;
    (
        total,
        start..start + batch.events.len() as u64,
        batch.events[1].offset,
    )
}

#[test]
fn salvage_skips_only_the_damaged_batch_of_a_store_that_refuses_to_open() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (total, lost, frame) = damaged_store(dir.path());
    let sealed = &segment_files(dir.path())[1];
    assert!(
        Store::open_read_only_rebuilding_index(dir.path())
            .err()
            .is_some_and(|e| e.finding().is_some_and(|f| f.path == *sealed)),
        "a full-check open refuses it"
    );
    // A default open refuses it at open or when reading reaches the
    // damaged event.
    refusal::assert_refused_at_open_or_on_read(
        "read-only open",
        || Store::open_read_only(dir.path()),
        &[],
        sealed,
        Some(128..frame + 1),
    );
    let mut positions = Vec::new();
    let report = salvage(dir.path(), |event| {
        positions.push(event.position);
        Ok(())
    })
    .unwrap();
    let expected: Vec<u64> = (0..total).filter(|p| !lost.contains(p)).collect();
    assert_eq!(positions, expected);
    assert_eq!(report.events, expected.len() as u64);
    assert!(!report.skipped.is_empty());
    assert_eq!(report.skipped[0].path, segment_files(dir.path())[1]);
}

#[test]
fn export_salvage_writes_every_verifiable_event_and_exits_4() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (total, lost, _) = damaged_store(dir.path());
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
            .args(args)
            .output()
            .unwrap()
    };
    let plain = run(&["export", d]);
    assert_eq!(plain.status.code(), Some(4));
    assert!(plain.stdout.is_empty());
    let salvaged = run(&["export", d, "--salvage"]);
    assert_eq!(salvaged.status.code(), Some(4), "{salvaged:?}");
    let lines = String::from_utf8(salvaged.stdout).unwrap();
    assert_eq!(
        lines.lines().count() as u64,
        total - (lost.end - lost.start),
        "every event but the damaged batch's"
    );
    let stderr = String::from_utf8(salvaged.stderr).unwrap();
    let damaged_name = segment_files(dir.path())[1]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        stderr.contains("skipped:") && stderr.contains(&damaged_name),
        "{stderr}"
    );
    // A healthy store: the same lines as a plain export, exit 0.
    let healthy = tempfile::tempdir().unwrap();
    let store = Store::open(healthy.path(), small_segments()).unwrap();
    fill(&store, 50, 2, 3, 50);
    store.close().unwrap();
    let h = healthy.path().to_str().unwrap();
    let plain = run(&["export", h]);
    let salvaged = run(&["export", h, "--salvage"]);
    assert_eq!(salvaged.status.code(), Some(0), "{salvaged:?}");
    assert_eq!(salvaged.stdout, plain.stdout);
}

/// Damage to a sealed segment's footer (or its free space) loses no batch:
/// where the hash chain links across it, repair rebuilds the footer from
/// the batches and keeps every later segment, instead of cutting the log
/// back to before the damaged segment.
#[test]
fn repair_mends_a_damaged_footer_in_place_and_keeps_every_later_segment() {
    let _serial = one_at_a_time();
    for damage_in_free_space in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (total, head) = closed_store_of_several_segments(dir.path());
        let files = segment_files(dir.path());
        assert!(files.len() >= 3);
        let sealed = &files[1];
        let len = std::fs::metadata(sealed).unwrap().len();
        let offset = if damage_in_free_space {
            len - 128 - 16
        } else {
            len - 128 + 30
        };
        flip_byte(sealed, offset);
        let refused =
            |result: annals::Result<Store>| result.err().and_then(|e| e.finding().cloned());
        let full = refused(Store::open_read_only_rebuilding_index(dir.path()));
        assert!(
            full.as_ref().is_some_and(|f| f.path == *sealed),
            "a full-check open refuses it: {full:?}"
        );
        if damage_in_free_space {
            // No read reaches a checkpointed sealed segment's free space:
            // a default open and its reads do not see it.
            assert!(refusal::refusal(|| Store::open_read_only(dir.path()), &[]).is_none());
        } else {
            // A footer is checked against the checkpoint: refused at open.
            assert_eq!(
                refused(Store::open_read_only(dir.path())),
                full,
                "a default open refuses a damaged footer as a full check does"
            );
        }

        let repair = annals::Repair::lock(dir.path()).unwrap();
        let plan = repair.plan().unwrap();
        let cut = plan.cut.clone().expect("damage is planned for");
        assert!(cut.rewrite_footer.is_some(), "{plan:?}");
        assert!(cut.removed.is_empty() && cut.zero.is_none(), "{plan:?}");
        assert_eq!(plan.kept_events, total);
        repair
            .apply(&plan, &dir.path().join("repair-backup"))
            .unwrap();
        drop(repair);

        let report = annals::verify(
            dir.path(),
            &annals::VerifyOptions::default().expect_head(head),
        )
        .unwrap();
        assert!(report.is_ok(), "{report}");
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert_eq!(store.next_position(), total);
        assert_eq!(segment_files(dir.path()).len(), files.len());
        assert!(
            std::fs::metadata(sealed).unwrap().permissions().readonly(),
            "sealed again"
        );
    }
}

/// The same mend through `annals repair`, as an operator runs it.
#[test]
fn annals_repair_mends_a_damaged_footer_in_place() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (total, _) = closed_store_of_several_segments(dir.path());
    let files = segment_files(dir.path());
    let len = std::fs::metadata(&files[1]).unwrap().len();
    flip_byte(&files[1], len - 100);
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
            .args(args)
            .output()
            .unwrap()
    };
    let dry = run(&["repair", d]);
    assert_eq!(dry.status.code(), Some(4), "{dry:?}");
    let report = String::from_utf8(dry.stdout).unwrap();
    assert!(
        report.contains("mend:") && !report.contains("remove the whole file"),
        "{report}"
    );
    let done = run(&["repair", d, "--yes"]);
    assert!(done.status.success(), "{done:?}");
    let report = String::from_utf8(done.stdout).unwrap();
    assert!(
        report.contains(&format!("the store opens: {total} events")),
        "{report}"
    );
    assert_eq!(segment_files(dir.path()).len(), files.len());
}

/// Found by `corruption::every_reader_judges_damage_alike_long`: a sealed
/// segment cut inside its footer was mended by writing the new footer at
/// the end of the short file, not where its header says the footer is.
#[test]
fn repair_mends_a_sealed_segment_cut_inside_its_footer() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (total, _) = closed_store_of_several_segments(dir.path());
    let files = segment_files(dir.path());
    let len = std::fs::metadata(&files[0]).unwrap().len();
    common::overwrite(&files[0], 0, &common::read_at(&files[0], 0, 8));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(len - 55)
        .unwrap();
    let repair = annals::Repair::lock(dir.path()).unwrap();
    let plan = repair.plan().unwrap();
    assert!(
        plan.cut.as_ref().unwrap().rewrite_footer.is_some(),
        "{plan:?}"
    );
    repair
        .apply(&plan, &dir.path().join("repair-backup"))
        .unwrap();
    drop(repair);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), len);
    let report = annals::verify(dir.path(), &annals::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        Store::open(dir.path(), small_segments())
            .unwrap()
            .next_position(),
        total
    );
}

/// Repair on a directory that is not a store creates nothing there.
#[test]
fn repair_of_a_directory_that_is_not_a_store_creates_nothing() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a store").unwrap();
    let error = annals::Repair::lock(dir.path()).unwrap_err();
    assert!(error.to_string().contains("not an annals store"), "{error}");
    assert!(!dir.path().join(annals::LOCK_FILE_NAME).exists());
}
