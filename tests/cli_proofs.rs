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
    let run = expect(
        0,
        &[
            "checkpoint",
            path(&store_dir),
            "--key",
            path(&key),
            "--origin",
            ORIGIN,
            "--out",
            path(&old_cp),
        ],
    );
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
    let run = expect(
        0,
        &[
            "prove",
            "consistency",
            path(&store_dir),
            "--from",
            path(&old_cp),
            "--to",
            path(&new_cp),
        ],
    );
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
    expect(
        0,
        &[
            "checkpoint",
            path(&other_store),
            "--key",
            path(&key),
            "--origin",
            ORIGIN,
            "--out",
            path(&other_cp),
        ],
    );
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
