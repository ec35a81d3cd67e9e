//! `annals keygen`, `checkpoint`, `prove` and `check-proof` end to end: an
//! auditor's round trip, a tampered proof (exit 4), bad input (exit 1).

mod common;
#[path = "common/run.rs"]
mod run;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use annals::Store;
use run::{expect, path};

const ORIGIN: &str = "example.com/log";

fn fill(dir: &Path, batches: u64) {
    let store = Store::open(dir, common::small_segments()).unwrap();
    common::fill(&store, batches, 4, 3, 2000);
    store.close().unwrap();
}

/// `annals checkpoint STORE --key KEY --origin ORIGIN --out OUT`, which must succeed.
fn sign_checkpoint(store: &Path, key: &Path, out: &Path) -> run::Run {
    expect(
        0,
        &[
            "checkpoint",
            path(store),
            "--key",
            path(key),
            "--origin",
            ORIGIN,
            "--out",
            path(out),
        ],
    )
}

/// `annals prove consistency STORE --from OLD --to NEW`.
fn consistency_args<'a>(store: &'a Path, old: &'a Path, new: &'a Path) -> [&'a str; 7] {
    [
        "prove",
        "consistency",
        path(store),
        "--from",
        path(old),
        "--to",
        path(new),
    ]
}

/// `annals retire STORE --before-position POSITION --archive ARCHIVE
/// --yes` into a new directory `archive`, which must succeed.
fn retire_into(store: &Path, position: &str, archive: &Path) {
    std::fs::create_dir(archive).unwrap();
    expect(
        0,
        &[
            "retire",
            path(store),
            "--before-position",
            position,
            "--archive",
            path(archive),
            "--yes",
        ],
    );
}

#[test]
fn keygen_checkpoint_prove_and_check_proof() {
    let work = tempfile::tempdir().unwrap();
    let store_dir = work.path().join("store");
    let key = work.path().join("log.key");
    let file = |name: &str| work.path().join(name);

    // keygen: a secret key only its owner reads, a public one, no overwrite.
    let run = expect(0, &["keygen", "--name", ORIGIN, "--out", path(&key)]);
    let pub_key = file("log.key.pub");
    let verifier = std::fs::read_to_string(&pub_key).unwrap();
    assert_eq!(run.lines()[0]["verifier_key"], verifier.trim());
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let run = expect(1, &["keygen", "--name", ORIGIN, "--out", path(&key)]);
    assert!(run.stderr.contains("never overwrites"), "{}", run.stderr);

    // An old checkpoint, more events, a new one (printed).
    fill(&store_dir, 10);
    let old_cp = file("old.cp");
    let run = sign_checkpoint(&store_dir, &key, &old_cp);
    assert_eq!(run.lines()[0]["tree_size"], 40);
    fill(&store_dir, 5);
    let run = expect(
        0,
        &[
            "checkpoint",
            path(&store_dir),
            "--key",
            path(&key),
            "--origin",
            ORIGIN,
        ],
    );
    assert!(
        run.stdout.starts_with("example.com/log\n60\n"),
        "{}",
        run.stdout
    );
    let new_cp = file("new.cp");
    std::fs::write(&new_cp, &run.stdout).unwrap();

    // Inclusion in the old checkpoint's tree, checked offline.
    let run = expect(
        0,
        &[
            "prove",
            "inclusion",
            path(&store_dir),
            "--position",
            "7",
            "--checkpoint",
            path(&old_cp),
        ],
    );
    let proof = run.lines()[0].clone();
    assert_eq!(proof["tree_size"], 40);
    let proof_file = file("inclusion.json");
    std::fs::write(&proof_file, run.stdout.as_bytes()).unwrap();
    let check = |proof: &Path, checkpoint: &Path, old: Option<&Path>, key: &Path, code: i32| {
        let mut args = vec![
            "check-proof",
            "--proof",
            path(proof),
            "--checkpoint",
            path(checkpoint),
            "--key",
            path(key),
        ];
        if let Some(old) = old {
            args.extend(["--old-checkpoint", path(old)]);
        }
        expect(code, &args)
    };
    let run = check(&proof_file, &old_cp, None, &pub_key, 0);
    let checked = &run.lines()[0];
    assert_eq!(checked["holds"], true);
    assert_eq!(checked["leaf_index"], 7);
    assert_eq!(checked["leaf_hash"], proof["leaf_hash"]);
    // Against the new checkpoint it is a proof for another size: exit 4.
    check(&proof_file, &new_cp, None, &pub_key, 4);

    // Without --checkpoint: the current tree.
    let run = expect(
        0,
        &["prove", "inclusion", path(&store_dir), "--position", "59"],
    );
    assert_eq!(run.lines()[0]["tree_size"], 60);

    // Consistency from the old checkpoint to the new one.
    let run = expect(0, &consistency_args(&store_dir, &old_cp, &new_cp));
    let consistency = file("consistency.json");
    std::fs::write(&consistency, run.stdout.as_bytes()).unwrap();
    let run = check(&consistency, &new_cp, Some(&old_cp), &pub_key, 0);
    assert_eq!(run.lines()[0]["old_tree_size"], 40);
    // Swapped checkpoints do not hold.
    check(&consistency, &old_cp, Some(&new_cp), &pub_key, 4);

    // A tampered proof: one hash changed.
    let mut tampered = proof.clone();
    let first = tampered["hashes"][0].as_str().unwrap().to_string();
    let flipped = if first.starts_with('0') { "1" } else { "0" };
    tampered["hashes"][0] = format!("{flipped}{}", &first[1..]).into();
    let tampered_file = file("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string()).unwrap();
    let run = check(&tampered_file, &old_cp, None, &pub_key, 4);
    assert!(run.stderr.contains("does not hold"), "{}", run.stderr);
    // Another log's key: the checkpoint is not signed by it.
    let other_key = file("other.key");
    expect(0, &["keygen", "--name", ORIGIN, "--out", path(&other_key)]);
    check(&proof_file, &old_cp, None, &file("other.key.pub"), 4);
    // Not a proof at all, a missing file: bad input.
    let garbage = file("garbage.json");
    std::fs::write(&garbage, "{\"leaf_index\": 1}").unwrap();
    check(&garbage, &old_cp, None, &pub_key, 1);
    check(&file("missing.json"), &old_cp, None, &pub_key, 1);

    // A checkpoint of another store: prove refuses it (exit 4), the log
    // is not the one signed.
    let other_store = work.path().join("other");
    fill(&other_store, 10);
    let other_cp = file("other.cp");
    sign_checkpoint(&other_store, &key, &other_cp);
    let run = expect(
        4,
        &[
            "prove",
            "inclusion",
            path(&store_dir),
            "--position",
            "1",
            "--checkpoint",
            path(&other_cp),
        ],
    );
    assert!(
        run.stderr.contains("not the one that was signed"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_against_a_signed_checkpoint() {
    let work = tempfile::tempdir().unwrap();
    let store_dir = work.path().join("store");
    let file = |name: &str| work.path().join(name);
    let key = file("log.key");
    expect(0, &["keygen", "--name", ORIGIN, "--out", path(&key)]);
    let pub_key = file("log.key.pub");
    fill(&store_dir, 30);
    let checkpoint = file("at-120.cp");
    let signed = sign_checkpoint(&store_dir, &key, &checkpoint);
    let verify = |code: i32, extra: &[&str]| {
        let mut args = vec!["verify", path(&store_dir)];
        args.extend_from_slice(extra);
        expect(code, &args)
    };
    let with = |checkpoint: &Path, key: &Path| {
        vec![
            "--checkpoint".to_string(),
            path(checkpoint).to_string(),
            "--key".to_string(),
            path(key).to_string(),
        ]
    };
    let args = with(&checkpoint, &pub_key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // It matches; the summary states the tree of the whole log.
    let run = verify(0, &[&args[..], &["--json"]].concat());
    let report = &run.lines()[0];
    assert_eq!(report["ok"], true);
    assert_eq!(report["checkpoint"]["matched"], true);
    assert_eq!(report["tree_size"], 120);
    assert_eq!(report["tree_root"], signed.lines()[0]["root"]);
    let run = verify(0, &args);
    assert!(run.stdout.contains("checkpoint: matched"), "{}", run.stdout);
    assert!(
        run.stdout.contains("tree 120 events, root "),
        "{}",
        run.stdout
    );
    // Without a checkpoint the tree is still in the summary.
    let run = verify(0, &["--json"]);
    assert_eq!(run.lines()[0]["tree_root"], signed.lines()[0]["root"]);
    assert_eq!(run.lines()[0]["checkpoint"], serde_json::Value::Null);

    // Another key: exit 4.
    let other_key = file("other.key");
    expect(0, &["keygen", "--name", ORIGIN, "--out", path(&other_key)]);
    let other = with(&checkpoint, &file("other.key.pub"));
    let run = verify(4, &other.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        run.stdout.contains("not signed by the key"),
        "{}",
        run.stdout
    );
    // A checkpoint of another history, signed by the same key: exit 4.
    let other_store = work.path().join("other");
    fill(&other_store, 30);
    let other_cp = file("other.cp");
    sign_checkpoint(&other_store, &key, &other_cp);
    let other = with(&other_cp, &pub_key);
    let run = verify(4, &other.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        run.stdout.contains("checkpoint: mismatch"),
        "{}",
        run.stdout
    );
    // Not a note, not a key, no key at all: bad input.
    let garbage = file("garbage.cp");
    std::fs::write(&garbage, "not a note\n").unwrap();
    let bad = with(&garbage, &pub_key);
    verify(1, &bad.iter().map(String::as_str).collect::<Vec<_>>());
    let bad = with(&checkpoint, &garbage);
    verify(1, &bad.iter().map(String::as_str).collect::<Vec<_>>());
    verify(2, &["--checkpoint", path(&checkpoint)]);

    // After a retirement into an archive: with and without --archive.
    let archive = file("archive");
    retire_into(&store_dir, "60", &archive);
    verify(0, &args);
    verify(0, &[&args[..], &["--archive", path(&archive)]].concat());
}

/// `prove inclusion|consistency --archive DIR`: proofs that need retired
/// events read them from the archive the segments were retired into;
/// without it, the command fails (exit 1) saying to give the archive.
#[test]
fn prove_across_a_retired_prefix_with_the_archive() {
    let work = tempfile::tempdir().unwrap();
    let file = |name: &str| work.path().join(name);
    let store_dir = file("store");
    let key = file("log.key");
    expect(0, &["keygen", "--name", ORIGIN, "--out", path(&key)]);
    let pub_key = file("log.key.pub");
    fill(&store_dir, 10);
    // An odd size: not a boundary of the subtrees kept at the cut.
    let store = Store::open(&store_dir, common::small_segments()).unwrap();
    common::fill(&store, 1, 1, 1, 10);
    store.close().unwrap();
    let old_cp = file("old.cp");
    sign_checkpoint(&store_dir, &key, &old_cp);
    fill(&store_dir, 20);
    let new_cp = file("new.cp");
    sign_checkpoint(&store_dir, &key, &new_cp);
    let archive = file("archive");
    retire_into(&store_dir, "80", &archive);

    let inclusion = [
        "prove",
        "inclusion",
        path(&store_dir),
        "--position",
        "3",
        "--checkpoint",
        path(&old_cp),
    ];
    let consistency = consistency_args(&store_dir, &old_cp, &new_cp);
    for args in [&inclusion[..], &consistency[..]] {
        let run = expect(1, args);
        assert!(run.stderr.contains("--archive"), "{}", run.stderr);
    }
    for (args, old) in [(&inclusion[..], None), (&consistency[..], Some(&old_cp))] {
        let run = expect(0, &[args, &["--archive", path(&archive)]].concat());
        let proof_file = file("proof.json");
        std::fs::write(&proof_file, run.stdout.as_bytes()).unwrap();
        let checkpoint = if old.is_some() { &new_cp } else { &old_cp };
        let mut check = vec![
            "check-proof",
            "--proof",
            path(&proof_file),
            "--checkpoint",
            path(checkpoint),
            "--key",
            path(&pub_key),
        ];
        if let Some(old) = old {
            check.extend(["--old-checkpoint", path(old)]);
        }
        let run = expect(0, &check);
        assert_eq!(run.lines()[0]["holds"], true);
    }
}
