//! Proofs over a store (issue 19): the tree's leaves are the event frames
//! on disk, inclusion and consistency proofs verify with the library's
//! verifiers and against signed checkpoints, tampering makes them fail,
//! and retirement keeps the root and the proofs of kept positions.

mod common;

use std::path::Path;

use annals::proof::{self, ConsistencyProof, InclusionProof, merkle, note};
use annals::verify::{ProblemKind, TreeCheck};
use annals::{Error, ExpectedVersion, RetireOptions, Store, VerifyOptions};
use common::small_segments;

const ORIGIN: &str = "example.com/annals-test";

/// The leaf hashes of a store computed straight from its segment files:
/// `leaf_hash` of each event frame's bytes (header, body, padding).
fn leaves_on_disk(dir: &Path) -> Vec<merkle::Hash> {
    let mut leaves = Vec::new();
    for path in common::segment_files(dir) {
        let bytes = std::fs::read(&path).unwrap();
        for frame in common::frames(&path) {
            if frame.kind == 1 {
                leaves.push(merkle::leaf_hash(
                    &bytes[frame.offset as usize..frame.end() as usize],
                ));
            }
        }
    }
    leaves
}

fn filled(dir: &Path, batches: u64) -> Store {
    let store = Store::open(dir, small_segments()).unwrap();
    common::fill(&store, batches, 4, 3, 2000);
    store
}

#[test]
fn the_leaves_are_the_frames_on_disk_and_every_position_proves() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 30);
    assert!(
        common::segment_files(dir.path()).len() >= 3,
        "a few sealed segments"
    );
    let leaves = leaves_on_disk(dir.path());
    let (size, root) = store.tree_size_and_root().unwrap();
    assert_eq!(size, 120);
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(root, merkle::root(size, leaves.as_slice()).unwrap());
    for position in 0..size {
        assert_eq!(
            store.receipt(position).unwrap().leaf_hash,
            leaves[position as usize]
        );
    }
    for tree_size in [size, 77, 64, 1] {
        let root = store.tree_root(tree_size).unwrap();
        assert_eq!(root, merkle::root(tree_size, leaves.as_slice()).unwrap());
        for position in 0..tree_size {
            let proof = store.inclusion_proof(position, tree_size).unwrap();
            proof.verify(&root).unwrap();
            assert_eq!(
                proof.hashes,
                merkle::inclusion_proof(position, tree_size, leaves.as_slice()).unwrap()
            );
            // Not a proof of any other position.
            let moved = InclusionProof {
                leaf_index: (position + 1) % tree_size,
                ..proof
            };
            if tree_size > 1 {
                assert!(moved.verify(&root).is_err(), "{position} in {tree_size}");
            }
        }
    }
    // Out of range.
    for result in [
        store.inclusion_proof(size, size).map(|_| ()),
        store.inclusion_proof(0, size + 1).map(|_| ()),
        store.consistency_proof(5, size + 1).map(|_| ()),
        store.consistency_proof(6, 5).map(|_| ()),
        store.tree_root(size + 1).map(|_| ()),
        store.receipt(size).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
    }
}

#[test]
fn random_positions_of_a_larger_store() {
    let store = Store::in_memory(small_segments()).unwrap();
    common::fill(&store, 500, 5, 7, 40);
    let (size, root) = store.tree_size_and_root().unwrap();
    assert_eq!(size, 2500);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..16 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let position = (seed >> 11) % size;
        let proof = store.inclusion_proof(position, size).unwrap();
        assert_eq!(proof.leaf_hash, store.receipt(position).unwrap().leaf_hash);
        proof.verify(&root).unwrap();
        let mut wrong = proof.clone();
        wrong.leaf_hash[0] ^= 1;
        assert!(wrong.verify(&root).is_err());
    }
}

#[test]
fn consistency_between_checkpoints_at_several_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    let mut notes = vec![store.signed_checkpoint(ORIGIN, &signer).unwrap()];
    for round in 0..5 {
        common::fill(&store, 3 + round * 4, 3, 2, 1500);
        notes.push(store.signed_checkpoint(ORIGIN, &signer).unwrap());
    }
    let sizes: Vec<u64> = notes
        .iter()
        .map(|n| note::open(n, &verifier).unwrap().size)
        .collect();
    assert_eq!(sizes[0], 0);
    for (i, old) in notes.iter().enumerate() {
        for (j, new) in notes.iter().enumerate().skip(i) {
            let proof = store.consistency_proof(sizes[i], sizes[j]).unwrap();
            let json = serde_json::to_string(&proof).unwrap();
            proof::check_consistency(&json, old, new, &verifier)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", sizes[i], sizes[j]));
            if i < j && i > 0 {
                // Swapped, they do not check.
                assert!(proof::check_consistency(&json, new, old, &verifier).is_err());
            }
        }
        // Each checkpoint's root is still the tree's root at its size.
        let checkpoint = note::open(old, &verifier).unwrap();
        assert_eq!(store.tree_root(checkpoint.size).unwrap(), checkpoint.root);
    }
}

/// Signs a checkpoint of a tree given by its leaves.
fn sign_leaves(leaves: &[merkle::Hash], signer: &str) -> String {
    let checkpoint = note::Checkpoint {
        origin: ORIGIN.into(),
        size: leaves.len() as u64,
        root: merkle::root(leaves.len() as u64, leaves).unwrap(),
        extensions: Vec::new(),
    };
    note::sign(&checkpoint, signer).unwrap()
}

fn consistency_json(leaves: &[merkle::Hash], old_size: u64) -> String {
    let new_size = leaves.len() as u64;
    serde_json::to_string(&ConsistencyProof {
        old_size,
        new_size,
        hashes: merkle::consistency_proof(old_size, new_size, leaves).unwrap(),
    })
    .unwrap()
}

#[test]
fn a_forged_removed_reordered_or_rewritten_history_fails_against_the_old_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 20);
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    let old_note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let old_size = store.tree_size_and_root().unwrap().0;
    common::fill(&store, 5, 4, 3, 2000);
    let leaves = leaves_on_disk(dir.path());
    let size = leaves.len() as u64;

    // The genuine history checks.
    let new_note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let json = serde_json::to_string(&store.consistency_proof(old_size, size).unwrap()).unwrap();
    proof::check_consistency(&json, &old_note, &new_note, &verifier).unwrap();
    let json = serde_json::to_string(&store.inclusion_proof(33, old_size).unwrap()).unwrap();
    proof::check_inclusion(&json, &old_note, &verifier).unwrap();

    // A forged event: its frame as stored with one body byte changed.
    let path = &common::segment_files(dir.path())[0];
    let frame = common::frames(path)
        .into_iter()
        .find(|f| f.kind == 1)
        .unwrap();
    let mut forged = common::read_at(path, frame.offset, frame.len as usize);
    forged[20] ^= 0x20;
    let mut proof = store.inclusion_proof(0, old_size).unwrap();
    proof.leaf_hash = merkle::leaf_hash(&forged);
    let json = serde_json::to_string(&proof).unwrap();
    assert!(matches!(
        proof::check_inclusion(&json, &old_note, &verifier),
        Err(proof::CheckError::Proof(_))
    ));

    // A removed event, signed by the same key: the new tree does not
    // extend the old one.
    let mut removed = leaves.clone();
    removed.remove(40);
    let removed_note = sign_leaves(&removed, &signer);
    assert!(matches!(
        proof::check_consistency(
            &consistency_json(&removed, old_size),
            &old_note,
            &removed_note,
            &verifier
        ),
        Err(proof::CheckError::Proof(_))
    ));

    // A reordered pair: neither consistency nor the old inclusion proofs hold.
    let mut reordered = leaves.clone();
    reordered.swap(10, 11);
    let reordered_note = sign_leaves(&reordered, &signer);
    assert!(matches!(
        proof::check_consistency(
            &consistency_json(&reordered, old_size),
            &old_note,
            &reordered_note,
            &verifier
        ),
        Err(proof::CheckError::Proof(_))
    ));
    let reordered_inclusion = InclusionProof {
        leaf_index: 10,
        tree_size: size,
        leaf_hash: leaves[10],
        hashes: merkle::inclusion_proof(10, size, reordered.as_slice()).unwrap(),
    };
    let json = serde_json::to_string(&reordered_inclusion).unwrap();
    assert!(proof::check_inclusion(&json, &reordered_note, &verifier).is_err());

    // A rewritten history: a copy of the store as it was at 40 events,
    // then other events, signed by the same key. It extends the checkpoint
    // of 40 events, not the old one of more.
    drop(store);
    let early = tempfile::tempdir().unwrap();
    {
        let store = filled(early.path(), 10);
        let rewritten = tempfile::tempdir().unwrap();
        let at_40 = store.signed_checkpoint(ORIGIN, &signer).unwrap();
        drop(store);
        common::copy_dir(early.path(), rewritten.path());
        let store = Store::open(rewritten.path(), small_segments()).unwrap();
        common::fill(&store, 30, 4, 3, 1999);
        let rewritten_note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
        let size = store.tree_size_and_root().unwrap().0;
        let json = serde_json::to_string(&store.consistency_proof(40, size).unwrap()).unwrap();
        proof::check_consistency(&json, &at_40, &rewritten_note, &verifier).unwrap();
        // Against the original store's old checkpoint (a different history
        // from its 40th event on... and from its first: its own events).
        let json =
            serde_json::to_string(&store.consistency_proof(old_size, size).unwrap()).unwrap();
        assert!(matches!(
            proof::check_consistency(&json, &old_note, &rewritten_note, &verifier),
            Err(proof::CheckError::Proof(_))
        ));
    }
}

#[test]
fn retirement_keeps_the_root_and_the_proofs_of_kept_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 40);
    let leaves = leaves_on_disk(dir.path());
    let (size, root) = store.tree_size_and_root().unwrap();
    let roots: Vec<_> = (0..=size).map(|s| store.tree_root(s).unwrap()).collect();

    let first = store
        .retire_segments_before(50, &RetireOptions::default())
        .unwrap();
    let cut = first.first_retained_position;
    assert!(cut > 0 && cut <= 50, "{cut}");
    let second = store
        .retire_segments_before(100, &RetireOptions::default())
        .unwrap();
    let cut = second.first_retained_position;
    assert!(
        cut > first.first_retained_position,
        "a second cut extends the first's frontier"
    );
    assert_eq!(store.log_start_position(), cut);

    let check = |store: &Store| {
        assert_eq!(store.tree_size_and_root().unwrap(), (size, root));
        for position in cut..size {
            let proof = store.inclusion_proof(position, size).unwrap();
            assert_eq!(proof.leaf_hash, leaves[position as usize]);
            proof.verify(&root).unwrap();
        }
        for old_size in [cut, cut + 1, size - 1] {
            store
                .consistency_proof(old_size, size)
                .unwrap()
                .verify(&roots[old_size as usize], &root)
                .unwrap();
        }
        // A retired position, and a consistency proof from inside the
        // retired prefix, need the archive.
        for result in [
            store.inclusion_proof(0, size).map(|_| ()),
            store.inclusion_proof(cut - 2, size).map(|_| ()),
            store.receipt(1).map(|_| ()),
            store.consistency_proof(3, size).map(|_| ()),
        ] {
            let error = result.unwrap_err();
            assert!(
                matches!(error, Error::ProofNeedsRetiredEvents { log_start, .. } if log_start == cut),
                "{error}"
            );
            assert!(error.to_string().contains("retired"), "{error}");
        }
    };
    check(&store);
    drop(store);
    // As every later opener reads it from the manifest.
    check(&Store::open(dir.path(), small_segments()).unwrap());
    check(&Store::open_read_only(dir.path()).unwrap());
    // Appends after the cut go on extending the same tree.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    store
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[common::event("s-0", 99, 0, 10)],
        )
        .unwrap();
    let (new_size, new_root) = store.tree_size_and_root().unwrap();
    store
        .consistency_proof(size, new_size)
        .unwrap()
        .verify(&root, &new_root)
        .unwrap();
}

/// Verifies the store in `dir` against a signed checkpoint.
fn verify_against(
    dir: &Path,
    note: &str,
    verifier: &str,
    archive: Option<&Path>,
) -> annals::VerifyReport {
    let mut options = VerifyOptions::default().checkpoint(note, verifier);
    if let Some(archive) = archive {
        options = options.archive(archive);
    }
    annals::verify(dir, &options).unwrap()
}

#[test]
fn verify_checks_the_log_against_a_signed_checkpoint() {
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    // A shared prefix of 40 events, then two histories that diverge.
    let prefix = tempfile::tempdir().unwrap();
    filled(prefix.path(), 10).close().unwrap();
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    common::copy_dir(prefix.path(), ours.path());
    common::copy_dir(prefix.path(), theirs.path());
    let store = Store::open(ours.path(), small_segments()).unwrap();
    let at_40 = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    common::fill(&store, 5, 4, 3, 2000);
    let at_60 = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    common::fill(&store, 5, 4, 3, 2000);
    let (size, root) = store.tree_size_and_root().unwrap();
    store.close().unwrap();
    let store = Store::open(theirs.path(), small_segments()).unwrap();
    common::fill(&store, 10, 4, 3, 1999);
    let theirs_at_80 = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    store.close().unwrap();

    // The signed history passes, at every checkpoint; the summary states
    // the tree of the whole log, for any checkpoint of its size.
    for (note, signed_size) in [(&at_40, 40), (&at_60, 60)] {
        let report = verify_against(ours.path(), note, &verifier, None);
        assert!(report.is_ok(), "{report}");
        assert_eq!(
            report.tree_check,
            Some(TreeCheck::Matched { size: signed_size })
        );
        let tree = report.summary.tree.unwrap();
        assert_eq!((tree.size, tree.root), (size, root));
        assert!(
            report.to_string().contains("checkpoint: matched"),
            "{report}"
        );
    }
    // The other history shares the first 40 events only: the checkpoint of
    // 40 holds for it, the one of 60 (past the divergence) does not.
    let report = verify_against(theirs.path(), &at_40, &verifier, None);
    assert!(report.is_ok(), "{report}");
    let report = verify_against(theirs.path(), &at_60, &verifier, None);
    assert!(!report.is_ok());
    assert!(
        matches!(report.tree_check, Some(TreeCheck::Mismatch { size: 60, found, .. })
            if found == Store::open_read_only(theirs.path()).unwrap().tree_root(60).unwrap()),
        "{report}"
    );
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Checkpoint)
        .unwrap();
    assert_eq!(problem.position, Some(59));
    assert!(problem.message.contains("not the one signed"), "{problem}");
    // A checkpoint signed over a different history altogether.
    let report = verify_against(ours.path(), &theirs_at_80, &verifier, None);
    assert!(
        matches!(
            report.tree_check,
            Some(TreeCheck::Mismatch { size: 80, .. })
        ),
        "{report}"
    );
    // A log with fewer events than signed: truncated.
    let report = verify_against(prefix.path(), &at_60, &verifier, None);
    assert_eq!(
        report.tree_check,
        Some(TreeCheck::LogTooShort {
            size: 60,
            log_size: 40
        })
    );
    assert!(!report.is_ok());

    // Another key, or a note changed after signing: not signed, fails.
    let (_, other_verifier) = note::generate_key(ORIGIN).unwrap();
    let report = verify_against(ours.path(), &at_60, &other_verifier, None);
    assert!(
        matches!(&report.tree_check, Some(TreeCheck::NotSigned { error }) if error.is_signature_failure()),
        "{report}"
    );
    assert!(!report.is_ok());
    let changed = at_60.replacen("\n60\n", "\n59\n", 1);
    let report = verify_against(ours.path(), &changed, &verifier, None);
    assert!(
        matches!(report.tree_check, Some(TreeCheck::NotSigned { .. })),
        "{report}"
    );
    // Not a note, not a key: the caller's error, before the log is read.
    for (note, key) in [
        ("not a note", verifier.as_str()),
        (at_60.as_str(), "not a key"),
    ] {
        let result = annals::verify(ours.path(), &VerifyOptions::default().checkpoint(note, key));
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
    }
}

#[test]
fn verify_checks_a_signed_checkpoint_after_retirement_with_and_without_the_archive() {
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 10);
    let at_40 = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    common::fill(&store, 30, 4, 3, 2000);
    let at_160 = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let (size, root) = store.tree_size_and_root().unwrap();
    let retired = store
        .retire_segments_before(
            100,
            &RetireOptions {
                archive: Some(archive.path().to_path_buf()),
                ..RetireOptions::default()
            },
        )
        .unwrap();
    let cut = retired.first_retained_position;
    assert!(cut > 40, "the old checkpoint's events are retired: {cut}");
    store.close().unwrap();

    // Without the archive the tree continues from the frontier the
    // manifest records at the cut: the newer checkpoint checks, the older
    // one (inside the retired prefix) cannot be.
    let report = verify_against(dir.path(), &at_160, &verifier, None);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.tree_check, Some(TreeCheck::Matched { size: 160 }));
    let tree = report.summary.tree.unwrap();
    assert_eq!((tree.size, tree.root), (size, root));
    let report = verify_against(dir.path(), &at_40, &verifier, None);
    assert_eq!(
        report.tree_check,
        Some(TreeCheck::Unverifiable { size: 40 })
    );
    assert!(!report.is_ok());
    assert!(report.to_string().contains("--archive"), "{report}");

    // With the archive the tree is computed from genesis: both check, and
    // the frontier recorded at the cut agrees with the archived events.
    for (note, signed_size) in [(&at_40, 40), (&at_160, 160)] {
        let report = verify_against(dir.path(), note, &verifier, Some(archive.path()));
        assert!(report.is_ok(), "{report}");
        assert!(report.retired.as_ref().unwrap().archive_checked);
        assert_eq!(
            report.tree_check,
            Some(TreeCheck::Matched { size: signed_size })
        );
        assert_eq!(report.summary.tree.unwrap().root, root);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// The cached frontiers of sealed segments never change an answer:
    /// roots and proofs equal those computed from the frames on disk, in
    /// whatever order the cache fills (a cold store, a warm one, after a
    /// retirement, reopened).
    #[test]
    fn cached_roots_and_proofs_equal_those_of_the_frames_on_disk(
        batches in proptest::collection::vec((1u64..6, 10usize..4000), 20..70),
        queries in proptest::collection::vec((0u64..u64::MAX, 0u64..u64::MAX), 6),
        retire_seed in 0u64..u64::MAX,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), small_segments()).unwrap();
        for (batch, (count, size)) in batches.iter().enumerate() {
            let events: Vec<_> = (0..*count)
                .map(|i| common::event("s", batch as u64, i, *size))
                .collect();
            store.append("s", ExpectedVersion::Any, &events).unwrap();
        }
        let leaves = leaves_on_disk(dir.path());
        let size = leaves.len() as u64;
        let check = |store: &Store, from: u64| {
            for &(a, b) in &queries {
                let tree_size = from + a % (size - from + 1);
                let expected = merkle::root(tree_size, leaves.as_slice()).unwrap();
                assert_eq!(store.tree_root(tree_size).unwrap(), expected, "root of {tree_size}");
                if tree_size > from {
                    let position = from + b % (tree_size - from);
                    let proof = store.inclusion_proof(position, tree_size).unwrap();
                    assert_eq!(
                        proof.hashes,
                        merkle::inclusion_proof(position, tree_size, leaves.as_slice()).unwrap(),
                        "inclusion of {position} in {tree_size}"
                    );
                    let old = from + b % (tree_size - from + 1);
                    let proof = store.consistency_proof(old, tree_size).unwrap();
                    assert_eq!(
                        proof.hashes,
                        merkle::consistency_proof(old, tree_size, leaves.as_slice()).unwrap(),
                        "consistency {old} to {tree_size}"
                    );
                }
            }
            assert_eq!(
                store.tree_size_and_root().unwrap(),
                (size, merkle::root(size, leaves.as_slice()).unwrap())
            );
        };
        check(&store, 0);
        check(&store, 0);
        drop(store);
        let store = Store::open_read_only(dir.path()).unwrap();
        check(&store, 0);
        drop(store);
        let store = Store::open(dir.path(), small_segments()).unwrap();
        if let Ok(retired) =
            store.retire_segments_before(retire_seed % size, &RetireOptions::default())
        {
            check(&store, retired.first_retained_position);
        }
    }
}

#[test]
fn verify_cannot_check_a_checkpoint_past_damage_and_says_why() {
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 30);
    let note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    store.close().unwrap();
    // One byte of an event's body in the first (sealed) segment: that
    // batch no longer reads, so the events after it cannot be placed in
    // the tree.
    let path = &common::segment_files(dir.path())[0];
    let frame = common::frames(path)
        .into_iter()
        .filter(|f| f.kind == 1)
        .nth(5)
        .unwrap();
    common::flip_byte(path, frame.offset + 20);
    let report = verify_against(dir.path(), &note, &verifier, None);
    assert!(!report.is_ok());
    assert_eq!(report.summary.tree, None, "{report}");
    assert_eq!(
        report.tree_check,
        Some(TreeCheck::Unverifiable { size: 120 }),
        "{report}"
    );
    assert!(
        report.to_string().contains("tree cannot be computed"),
        "{report}"
    );
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Checkpoint)
        .unwrap();
    assert!(problem.message.contains("could not be read"), "{problem}");
}

/// Flips one byte of the body of the first event of `path` (a sealed
/// segment): any read of that event's frame fails its checksum.
fn damage_first_event(path: &Path) {
    damage_event(path, 0);
}

/// Makes both checksums of an index file (`docs/format.md`: the body's at
/// 312, the header's at 316) right again after a change.
fn reseal_index_file(bytes: &mut [u8]) {
    let body_crc = crc32fast::hash(&bytes[320..]);
    bytes[312..316].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&bytes[..316]);
    bytes[316..320].copy_from_slice(&header_crc.to_le_bytes());
}

/// Verifies the store in `dir`: the report, and each problem's kind and file.
fn verify_problems(dir: &Path) -> (annals::VerifyReport, Vec<(ProblemKind, std::path::PathBuf)>) {
    let report = annals::verify::verify(dir, &VerifyOptions::default()).unwrap();
    let found = report
        .problems
        .iter()
        .map(|p| (p.kind, p.path.clone()))
        .collect();
    (report, found)
}

/// Regression (issue 19): the tree at the end of each sealed segment was
/// kept in memory only, so the first root after an open read every sealed
/// segment again. Now the index files record it: a root after reopening
/// reads no sealed segment's events. Shown by damaging an event of the
/// first sealed segment after close: an open from the index checkpoint
/// does not read it, and neither may the root (reading it fails its
/// checksum).
#[test]
fn a_root_after_reopen_reads_no_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 40);
    let segments = common::segment_files(dir.path());
    assert!(segments.len() >= 4, "a few sealed segments");
    let (size, root) = store.tree_size_and_root().unwrap();
    drop(store);
    damage_first_event(&segments[0]);

    for read_only in [true, false] {
        let store = if read_only {
            Store::open_read_only(dir.path()).unwrap()
        } else {
            Store::open(dir.path(), small_segments()).unwrap()
        };
        assert_eq!(
            store.tree_size_and_root().unwrap(),
            (size, root),
            "read-only: {read_only}"
        );
        // A proof that needs the damaged leaf's segment reads it, and says so.
        assert!(
            matches!(store.inclusion_proof(0, size), Err(Error::Corrupt(_))),
            "read-only: {read_only}: the damage is there to be found"
        );
        // A proof of a position in the active segment needs only the
        // recorded frontiers and the active segment.
        let last = store.inclusion_proof(size - 1, size).unwrap();
        last.verify(&root).unwrap();
        drop(store);
    }
}

/// Rewrites the tree section of the index file at `path` with the last
/// hash of its end frontier changed, every checksum made right again: a
/// record that only a recomputation from the leaves can find wrong.
/// Returns the forged end root.
fn forge_index_tree_end(path: &Path) -> merkle::Hash {
    let mut bytes = std::fs::read(path).unwrap();
    let word = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    // The ninth entry of the section table at 120: the tree section.
    let (at, len) = (word(&bytes, 248) as usize, word(&bytes, 256) as usize);
    assert!(len > 56, "the file records a tree");
    let section = &mut bytes[at..at + len];
    let (start_size, end_size) = (word(section, 8), word(section, 16));
    let end_hashes = 56 + 32 * start_size.count_ones() as usize;
    section[len - 1] ^= 1;
    let mut encoded = end_size.to_le_bytes().to_vec();
    encoded.extend_from_slice(&section[end_hashes..]);
    let root = merkle::Frontier::decode(&encoded).unwrap().root();
    section[24..56].copy_from_slice(&root);
    let crc = crc32fast::hash(&section[8..]);
    section[0..4].copy_from_slice(&crc.to_le_bytes());
    reseal_index_file(&mut bytes);
    std::fs::write(path, bytes).unwrap();
    root
}

#[test]
fn verify_checks_each_index_file_tree_against_the_events() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 40));
    let index_files: Vec<_> = common::segment_files(dir.path())
        .iter()
        .map(|segment| segment.with_extension("idx"))
        .filter(|idx| idx.exists())
        .collect();
    assert!(index_files.len() >= 3, "{index_files:?}");
    let report = annals::verify::verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(report.problems.is_empty(), "{report}");

    forge_index_tree_end(&index_files[1]);
    let (report, found) = verify_problems(dir.path());
    // The forged file, named; and the next one, whose tree no longer
    // starts where the forged one ends, is not blamed: its start is the
    // tree computed from the events.
    assert_eq!(
        found,
        [(ProblemKind::IndexFile, index_files[1].clone())],
        "{report}"
    );
    assert_eq!(report.corruption_count, 0, "derived data: a warning");
    assert!(
        report.problems[0].message.contains("differs from the tree"),
        "{report}"
    );

    // An open follows the recorded chain: the next file does not continue
    // the forged one, and is reported like any stale index file.
    let reader = Store::open_read_only(dir.path()).unwrap();
    let reported: Vec<_> = reader
        .recovery_report()
        .items
        .iter()
        .map(|item| item.finding.path.clone())
        .collect();
    assert_eq!(reported, [index_files[2].clone()]);
    drop(reader);

    // Rebuilding the index rewrites every file from the log: clean again.
    drop(Store::open(dir.path(), small_segments().rebuild_index(true)).unwrap());
    let report = annals::verify::verify(dir.path(), &VerifyOptions::default()).unwrap();
    assert!(report.problems.is_empty(), "{report}");
}

/// Issue 19: an append returns receipts; a client keeps them and later,
/// holding only a signed checkpoint and the public key, checks that its
/// events are in the log, after the store was reopened and its segments
/// sealed. A receipt for another event, or a checkpoint before the event,
/// does not check.
#[test]
fn append_receipts_prove_inclusion_against_a_later_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    let early_note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let mut kept = Vec::new();
    for round in 0..60u64 {
        let events: Vec<annals::EventData> = (0..1 + round % 4)
            .map(|i| annals::EventData::new("Deposited", vec![(round + i) as u8; 1500]))
            .collect();
        let (result, receipts) = store
            .append_with_receipts(
                &format!("account-{}", round % 3),
                ExpectedVersion::Any,
                &events,
            )
            .unwrap();
        assert_eq!(receipts.len(), events.len());
        assert_eq!(receipts[0].position, result.first_position);
        for receipt in &receipts {
            assert_eq!(*receipt, store.receipt(receipt.position).unwrap());
        }
        kept.extend(receipts);
    }
    drop(store);
    assert!(common::segment_files(dir.path()).len() >= 3);
    let leaves = leaves_on_disk(dir.path());
    for receipt in &kept {
        assert_eq!(receipt.leaf_hash, leaves[receipt.position as usize]);
    }

    let store = Store::open_read_only(dir.path()).unwrap();
    let note_text = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let size = note::open(&note_text, &verifier).unwrap().size;
    for receipt in &kept {
        let proof = store.inclusion_proof(receipt.position, size).unwrap();
        let json = serde_json::to_string(&proof).unwrap();
        let checked = proof::check_inclusion(&json, &note_text, &verifier).unwrap();
        assert_eq!(checked.proof.leaf_hash, receipt.leaf_hash);
    }
    // The receipt of one event is not the leaf of another.
    let proof = store.inclusion_proof(kept[5].position, size).unwrap();
    let forged = InclusionProof {
        leaf_hash: kept[6].leaf_hash,
        ..proof
    };
    let json = serde_json::to_string(&forged).unwrap();
    assert!(proof::check_inclusion(&json, &note_text, &verifier).is_err());
    // A checkpoint signed before the events cannot include them.
    assert!(store.inclusion_proof(kept[0].position, 0).is_err());
    assert_eq!(note::open(&early_note, &verifier).unwrap().size, 0);
    // Receipts of a range in one pass; bad ranges are refused.
    assert_eq!(store.receipts(3, 9).unwrap(), kept[3..9].to_vec());
    assert!(matches!(
        store.receipts(9, 9),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.receipts(0, size + 1),
        Err(Error::InvalidArgument(_))
    ));
}

/// Issue 19: proofs across a retired prefix. Without the archive, an
/// inclusion proof of a retired position, a consistency proof from a
/// checkpoint older than the cut and a root inside the retired prefix fail
/// with a clear error; with the archive the segments were retired into,
/// each is the proof over the whole history and checks against the signed
/// checkpoints, after two retirements into the same archive, through every
/// opener. An archive that does not match the manifest is refused.
#[test]
fn proofs_across_a_retired_prefix_read_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let (signer, verifier) = note::generate_key(ORIGIN).unwrap();
    let store = filled(dir.path(), 20);
    // An odd size: not the boundary of a subtree the cut's frontier keeps.
    store
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[common::event("s-0", 0, 9, 10)],
        )
        .unwrap();
    let old_note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let old_size = note::open(&old_note, &verifier).unwrap().size;
    common::fill(&store, 20, 4, 3, 2000);
    let leaves = leaves_on_disk(dir.path());
    let new_note = store.signed_checkpoint(ORIGIN, &signer).unwrap();
    let size = note::open(&new_note, &verifier).unwrap().size;
    let options = RetireOptions {
        archive: Some(archive.path().to_path_buf()),
        ..RetireOptions::default()
    };
    store.retire_segments_before(40, &options).unwrap();
    let cut = store
        .retire_segments_before(100, &options)
        .unwrap()
        .first_retained_position;
    assert!(
        cut > old_size,
        "the old checkpoint is inside the retired prefix"
    );
    let with_archive = annals::ProofOptions::default().archive(archive.path());

    let check = |store: &Store| {
        // Without the archive: the clear error.
        for result in [
            store.inclusion_proof(2, size).map(|_| ()),
            store.consistency_proof(old_size, size).map(|_| ()),
            store.tree_root(old_size).map(|_| ()),
        ] {
            let error = result.unwrap_err();
            assert!(
                matches!(error, Error::ProofNeedsRetiredEvents { log_start, .. } if log_start == cut),
                "{error}"
            );
            assert!(error.to_string().contains("--archive"), "{error}");
        }
        // With it: every retired position, in the old and the new tree.
        for position in (0..cut).step_by(7).chain([cut - 1]) {
            for (note_text, tree_size) in [(&new_note, size), (&old_note, old_size)] {
                if position >= tree_size {
                    continue;
                }
                let proof = store
                    .inclusion_proof_with(position, tree_size, &with_archive)
                    .unwrap();
                assert_eq!(proof.leaf_hash, leaves[position as usize]);
                let json = serde_json::to_string(&proof).unwrap();
                proof::check_inclusion(&json, note_text, &verifier).unwrap();
            }
        }
        // A kept position in the old tree (its size is inside the prefix).
        assert!(old_size > 0);
        let proof = store
            .consistency_proof_with(old_size, size, &with_archive)
            .unwrap();
        let json = serde_json::to_string(&proof).unwrap();
        proof::check_consistency(&json, &old_note, &new_note, &verifier).unwrap();
        assert_eq!(
            proof.hashes,
            merkle::consistency_proof(old_size, size, leaves.as_slice()).unwrap()
        );
        assert_eq!(
            store.tree_root_with(old_size, &with_archive).unwrap(),
            note::open(&old_note, &verifier).unwrap().root
        );
        // The archive is not needed where the store answers alone.
        assert_eq!(
            store
                .inclusion_proof_with(size - 1, size, &with_archive)
                .unwrap(),
            store.inclusion_proof(size - 1, size).unwrap()
        );
    };
    check(&store);
    drop(store);
    check(&Store::open_read_only(dir.path()).unwrap());
    let store = Store::open(dir.path(), small_segments()).unwrap();
    check(&store);

    // An archive missing a segment, or holding another file under its
    // name, is refused, naming what is wrong.
    let archived = common::segment_files(archive.path());
    assert!(archived.len() >= 2);
    let moved = archive.path().join("moved");
    std::fs::rename(&archived[1], &moved).unwrap();
    let error = store
        .inclusion_proof_with(0, size, &with_archive)
        .unwrap_err();
    assert!(matches!(error, Error::ProofArchive { .. }), "{error}");
    std::fs::rename(&moved, &archived[1]).unwrap();
    let mut other = std::fs::read(&archived[0]).unwrap();
    other.truncate(other.len() - 1);
    std::fs::write(&archived[0], &other).unwrap();
    let error = store
        .inclusion_proof_with(0, size, &with_archive)
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::ProofArchive { .. } | Error::Corrupt(_) | Error::Io { .. }
        ),
        "{error}"
    );
    let error = store
        .inclusion_proof_with(
            0,
            size,
            &annals::ProofOptions::default().archive(dir.path().join("nowhere")),
        )
        .unwrap_err();
    assert!(matches!(error, Error::ProofArchive { .. }), "{error}");
}

/// Stores written before index files recorded the tree (the checked-in
/// fixtures of formats v1 and v3 have no index files; older builds wrote
/// version-1 index files, rebuilt the same way): a read-only open computes
/// the tree from the segments when first asked; the first writable open
/// writes index files that record it, so that later opens read no sealed
/// segment for a root.
#[test]
fn old_stores_gain_the_tree_on_their_first_writable_open() {
    for fixture in ["v1-store", "v3-store"] {
        let dir = tempfile::tempdir().unwrap();
        common::copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(fixture),
            dir.path(),
        );
        let segments = common::segment_files(dir.path());
        assert!(segments.len() >= 3, "{fixture}");
        let leaves = leaves_on_disk(dir.path());
        let expected = (
            leaves.len() as u64,
            merkle::root(leaves.len() as u64, leaves.as_slice()).unwrap(),
        );
        // A reader computes it from the segments (and writes nothing).
        let reader = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(reader.tree_size_and_root().unwrap(), expected, "{fixture}");
        drop(reader);
        assert!(
            !segments[0].with_extension("idx").exists(),
            "{fixture}: a reader wrote an index file"
        );
        // A writer records it; then the first segment's events are not read.
        drop(Store::open(dir.path(), small_segments()).unwrap());
        let report = annals::verify::verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(report.problems.is_empty(), "{fixture}: {report}");
        damage_first_event(&segments[0]);
        let reader = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(reader.tree_size_and_root().unwrap(), expected, "{fixture}");
    }
}

/// Every position of every small tree, through a store whose segments
/// hold 7 events each (so the subtrees cross segments at every level), and
/// every consistency pair among them: each proof is the one computed from
/// the leaves on disk, and checks against the roots.
#[test]
fn every_position_and_every_pair_of_small_trees_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    common::fill(&store, 40, 1, 3, 8000);
    drop(store);
    assert!(common::segment_files(dir.path()).len() >= 5);
    let leaves = leaves_on_disk(dir.path());
    let store = Store::open_read_only(dir.path()).unwrap();
    let roots: Vec<_> = (0..=40u64)
        .map(|size| merkle::root(size, leaves.as_slice()).unwrap())
        .collect();
    for size in 1..=40u64 {
        assert_eq!(store.tree_root(size).unwrap(), roots[size as usize]);
        for position in 0..size {
            let proof = store.inclusion_proof(position, size).unwrap();
            assert_eq!(
                proof.hashes,
                merkle::inclusion_proof(position, size, leaves.as_slice()).unwrap(),
                "{position} in {size}"
            );
            proof.verify(&roots[size as usize]).unwrap();
        }
        for old in 0..=size {
            let proof = store.consistency_proof(old, size).unwrap();
            assert_eq!(
                proof.hashes,
                merkle::consistency_proof(old, size, leaves.as_slice()).unwrap(),
                "{old} to {size}"
            );
            proof
                .verify(&roots[old as usize], &roots[size as usize])
                .unwrap();
        }
    }
}

/// Random positions and sizes of a larger store on disk, after reopening
/// (the frontiers come from the index files): the proofs are the ones
/// computed from the leaves on disk.
#[test]
fn random_positions_of_a_larger_store_on_disk_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    common::fill(&store, 500, 5, 7, 200);
    drop(store);
    let leaves = leaves_on_disk(dir.path());
    let size = leaves.len() as u64;
    assert_eq!(size, 2500);
    assert!(common::segment_files(dir.path()).len() >= 10);
    let store = Store::open_read_only(dir.path()).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for _ in 0..24 {
        let tree_size = 1 + next(size);
        let position = next(tree_size);
        let old = next(tree_size + 1);
        assert_eq!(
            store.inclusion_proof(position, tree_size).unwrap().hashes,
            merkle::inclusion_proof(position, tree_size, leaves.as_slice()).unwrap(),
            "{position} in {tree_size}"
        );
        assert_eq!(
            store.consistency_proof(old, tree_size).unwrap().hashes,
            merkle::consistency_proof(old, tree_size, leaves.as_slice()).unwrap(),
            "{old} to {tree_size}"
        );
        assert_eq!(
            store.tree_root(tree_size).unwrap(),
            merkle::root(tree_size, leaves.as_slice()).unwrap()
        );
    }
}

/// Flips one body byte of the `index`-th event frame of the segment at
/// `path`.
fn damage_event(path: &Path, index: usize) {
    let frame = common::frames(path)
        .into_iter()
        .filter(|f| f.kind == 1)
        .nth(index)
        .unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[(frame.offset + 20) as usize] ^= 0x20;
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(path, permissions).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Proofs inside a sealed segment use its index file's tiles (the roots of
/// each aligned run of 256 events): an inclusion or consistency proof of a
/// position reads only the events of its own tile, not the segment. Shown
/// by damaging an event of another tile of the same segment after close:
/// the proofs that do not need that event's leaf still come out right
/// (equal to those computed from the leaves before the damage); without
/// tiles they would read it and fail.
#[test]
fn proofs_inside_a_sealed_segment_read_only_their_tile() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments().segment_size_bytes(1 << 20);
    let store = Store::open(dir.path(), options).unwrap();
    common::fill(&store, 2000, 10, 5, 40);
    drop(store);
    let segments = common::segment_files(dir.path());
    assert!(segments.len() >= 2);
    let leaves = leaves_on_disk(dir.path());
    let size = leaves.len() as u64;
    let in_first = common::frames(&segments[0])
        .iter()
        .filter(|f| f.kind == 1)
        .count() as u64;
    assert!(in_first > 8 * 256, "{in_first} events in the first segment");
    let (position, damaged) = (300u64, 5 * 256 + 17);
    let inclusion = merkle::inclusion_proof(position, size, leaves.as_slice()).unwrap();
    let consistency = merkle::consistency_proof(position + 1, size, leaves.as_slice()).unwrap();
    damage_event(&segments[0], damaged);

    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(
        store.inclusion_proof(position, size).unwrap().hashes,
        inclusion
    );
    assert_eq!(
        store.consistency_proof(position + 1, size).unwrap().hashes,
        consistency
    );
    // The damage is there: a proof that needs that leaf reads it.
    assert!(matches!(
        store.inclusion_proof(damaged as u64, size),
        Err(Error::Corrupt(_))
    ));
    drop(store);

    // A forged tile with every checksum right (the event's damage undone,
    // the same byte flipped back): verify names the file.
    damage_event(&segments[0], damaged);
    let index_file = segments[0].with_extension("idx");
    let mut bytes = std::fs::read(&index_file).unwrap();
    let word = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    // The tenth entry of the section table at 120: the tiles.
    let (at, len) = (word(&bytes, 264) as usize, word(&bytes, 272) as usize);
    assert!(len >= 8 * 32, "{len} bytes of tiles");
    bytes[at + 40] ^= 1;
    reseal_index_file(&mut bytes);
    std::fs::write(&index_file, bytes).unwrap();
    let (report, found) = verify_problems(dir.path());
    assert_eq!(found, [(ProblemKind::IndexFile, index_file)], "{report}");
    assert!(report.problems[0].message.contains("tiles"), "{report}");
}
