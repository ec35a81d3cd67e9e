//! `annals retire` and `annals verify --archive` end to end: the dry run
//! changes nothing, `--yes` retires, JSON output, bad input and exit codes.

mod common;
#[path = "common/run.rs"]
mod run;

use annals::Store;
use run::{expect, path};

fn filled(dir: &std::path::Path) -> u64 {
    let store = Store::open(dir, common::small_segments()).unwrap();
    common::fill(&store, 60, 4, 5, 2000);
    let next = store.next_position();
    store.close().unwrap();
    next
}

#[test]
fn retire_is_a_dry_run_without_yes_and_retires_with_it() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let before = common::segment_files(dir.path());

    let plan = expect(
        0,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            "120",
            "--json",
        ],
    );
    let plan = &plan.lines()[0];
    assert_eq!(plan["done"], false);
    let planned = plan["segments"].as_array().unwrap().len();
    assert!(planned > 0, "{plan}");
    assert_eq!(
        common::segment_files(dir.path()),
        before,
        "a dry run changes nothing"
    );
    let text = expect(0, &["retire", path(dir.path()), "--before-position", "120"]);
    assert!(
        text.stdout.contains("dry run: nothing was changed"),
        "{}",
        text.stdout
    );

    let archive = tempfile::tempdir().unwrap();
    let done = expect(
        0,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            "120",
            "--archive",
            path(archive.path()),
            "--reason",
            "retention policy",
            "--yes",
            "--json",
        ],
    );
    let done = &done.lines()[0];
    assert_eq!(done["done"], true);
    assert_eq!(done["segments"], plan["segments"]);
    assert_eq!(
        common::segment_files(dir.path()).len(),
        before.len() - planned
    );
    assert_eq!(common::segment_files(archive.path()).len(), planned);

    let alone = expect(0, &["verify", path(dir.path()), "--json"]);
    let alone = &alone.lines()[0];
    assert_eq!(alone["retired"]["archive_checked"], false);
    assert_eq!(
        alone["retired"]["first_retained_position"],
        done["first_retained_position"]
    );
    let whole = expect(
        0,
        &[
            "verify",
            path(dir.path()),
            "--archive",
            path(archive.path()),
            "--json",
        ],
    );
    let whole = &whole.lines()[0];
    assert_eq!(whole["retired"]["archive_checked"], true);
    assert_eq!(whole["first_position"], 0);
    let text = expect(0, &["verify", path(dir.path())]);
    assert!(
        text.stdout.contains("retired (1 retirement)"),
        "{}",
        text.stdout
    );
}

#[test]
fn retire_before_a_time_keeps_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let next = filled(dir.path());
    let done = expect(
        0,
        &[
            "retire",
            path(dir.path()),
            "--before",
            "2500-01-01T00:00:00Z",
            "--yes",
            "--json",
        ],
    );
    let done = &done.lines()[0];
    assert_eq!(done["done"], true);
    let start = done["first_retained_position"].as_u64().unwrap();
    assert!(start > 0 && start < next, "{done}");
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.log_start_position(), start);
    assert_eq!(store.next_position(), next);
}

#[test]
fn bad_retire_arguments_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let next = filled(dir.path());
    let files = common::segment_files(dir.path());
    let next_text = next.to_string();
    // Inside the active segment.
    let run = expect(
        1,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            &next_text,
            "--yes",
        ],
    );
    assert!(run.stderr.contains("active segment"), "{}", run.stderr);
    // Neither --before nor --before-position; a malformed time.
    expect(2, &["retire", path(dir.path()), "--yes"]);
    expect(
        2,
        &["retire", path(dir.path()), "--before", "yesterday", "--yes"],
    );
    // An archive that does not exist.
    let run = expect(
        1,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            "100",
            "--archive",
            path(&dir.path().join("nowhere")),
            "--yes",
        ],
    );
    assert!(run.stderr.contains("archive directory"), "{}", run.stderr);
    // Not a store.
    let empty = tempfile::tempdir().unwrap();
    expect(
        1,
        &[
            "retire",
            path(empty.path()),
            "--before-position",
            "1",
            "--yes",
        ],
    );
    assert_eq!(common::segment_files(dir.path()), files);
    assert!(!dir.path().join("annals.retention").exists());
}

#[test]
fn stats_and_repair_of_a_retired_store_count_the_kept_events() {
    let dir = tempfile::tempdir().unwrap();
    let next = filled(dir.path());
    let done = expect(
        0,
        &[
            "retire",
            path(dir.path()),
            "--before-position",
            "120",
            "--yes",
            "--json",
        ],
    );
    let start = done.lines()[0]["first_retained_position"].as_u64().unwrap();
    let stats = expect(0, &["stats", path(dir.path()), "--json"]);
    let stats = &stats.lines()[0];
    assert_eq!(stats["events"].as_u64(), Some(next - start));
    assert_eq!(stats["first_position"].as_u64(), Some(start));
    assert_eq!(stats["next_position"].as_u64(), Some(next));
    let text = expect(0, &["stats", path(dir.path())]);
    assert!(
        text.stdout.contains(&format!(
            "positions:          {start}..{next} (positions 0..{start} retired)"
        )),
        "{}",
        text.stdout
    );

    // Damage in the last sealed segment: repair keeps what lies between the
    // cut and the damage, and says so in kept positions.
    let last_sealed = common::segment_files(dir.path())
        .into_iter()
        .rev()
        .nth(1)
        .unwrap();
    let mut bytes = std::fs::read(&last_sealed).unwrap();
    bytes[3000] ^= 0xff;
    std::fs::write(&last_sealed, bytes).unwrap();
    let plan = expect(4, &["repair", path(dir.path())]);
    assert!(
        plan.stdout.contains(&format!("(positions {start} to ")),
        "{}",
        plan.stdout
    );
    let cut = expect(0, &["repair", path(dir.path()), "--yes"]);
    assert!(cut.stdout.contains("the store opens:"), "{}", cut.stdout);
    expect(0, &["verify", path(dir.path())]);
}
