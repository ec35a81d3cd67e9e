//! Proofs for auditors: a Merkle tree over the log (RFC 6962 / RFC 9162),
//! signed checkpoints (C2SP signed notes), inclusion and consistency proofs.
//!
//! Nothing here needs a store. [`merkle`] hashes and proves over any
//! [`SubtreeSource`]; [`note`] makes keys, signs and opens checkpoints; this
//! module gives proofs a JSON shape and checks them against signed
//! checkpoints, offline: an auditor needs only the proof, the checkpoint(s)
//! and the log's public key.
//!
//! ```
//! use annals::proof::{self, InclusionProof, merkle, note};
//!
//! // What a log does: hash its events, sign a checkpoint, prove one event.
//! let events = [&b"opened"[..], b"deposited", b"withdrawn"];
//! let leaves: Vec<_> = events.iter().map(|e| merkle::leaf_hash(e)).collect();
//! let (signer, verifier) = note::generate_key("example.com/log")?;
//! let checkpoint = note::Checkpoint {
//!     origin: "example.com/log".into(),
//!     size: 3,
//!     root: merkle::root(3, leaves.as_slice())?,
//!     extensions: Vec::new(),
//! };
//! let signed = note::sign(&checkpoint, &signer)?;
//! let proof = InclusionProof {
//!     leaf_index: 1,
//!     tree_size: 3,
//!     leaf_hash: leaves[1],
//!     hashes: merkle::inclusion_proof(1, 3, leaves.as_slice())?,
//! };
//! let json = serde_json::to_string(&proof)?;
//!
//! // What an auditor does, with the event, the JSON, the note and the key.
//! let checked = proof::check_inclusion(&json, &signed, &verifier)?;
//! assert_eq!(checked.proof.leaf_hash, merkle::leaf_hash(b"deposited"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod merkle;
pub mod note;

pub use merkle::{
    Frontier, FrontierError, Hash, ProofError, ProveError, Subtree, SubtreeSource, leaf_hash,
    node_hash,
};
pub use note::{Checkpoint, NoteError, SignerKey, VerifierKey};

/// The longest proof JSON the `check_*` functions accept, in bytes: a
/// proof has at most 65 hashes of 66 characters each; the limit bounds what
/// an untrusted file can make the parser allocate.
pub const MAX_PROOF_JSON_BYTES: usize = 16 * 1024;

/// An inclusion proof: leaf `leaf_index`, whose hash is `leaf_hash`, is in
/// the tree of `tree_size` leaves. Hashes are lowercase hex in JSON:
///
/// ```json
/// { "leaf_index": 1, "tree_size": 3, "leaf_hash": "…", "hashes": ["…", "…"] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The leaf's index (an event's position in the tree).
    pub leaf_index: u64,
    /// The size of the tree the proof is for.
    pub tree_size: u64,
    /// The leaf's hash ([`merkle::leaf_hash`] of the event's bytes).
    #[serde(with = "hex_hash")]
    pub leaf_hash: Hash,
    /// The audit path, from the leaf's sibling up.
    #[serde(with = "hex_hashes")]
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the proof against the root of a tree of `tree_size` leaves.
    ///
    /// # Errors
    /// The [`ProofError`] of [`merkle::verify_inclusion`].
    pub fn verify(&self, root: &Hash) -> Result<(), ProofError> {
        merkle::verify_inclusion(
            &self.leaf_hash,
            self.leaf_index,
            self.tree_size,
            &self.hashes,
            root,
        )
    }
}

/// A consistency proof: the tree of `new_size` leaves extends the tree of
/// `old_size` leaves. Hashes are lowercase hex in JSON:
///
/// ```json
/// { "old_size": 3, "new_size": 7, "hashes": ["…", "…"] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// The newer tree's size.
    pub new_size: u64,
    /// The proof's hashes, as RFC 9162 orders them.
    #[serde(with = "hex_hashes")]
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks the proof against the two trees' roots.
    ///
    /// # Errors
    /// The [`ProofError`] of [`merkle::verify_consistency`].
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        merkle::verify_consistency(
            self.old_size,
            self.new_size,
            old_root,
            new_root,
            &self.hashes,
        )
    }
}

/// Why a proof does not check against its signed checkpoint(s).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    /// The proof is not the expected JSON (or is over
    /// [`MAX_PROOF_JSON_BYTES`]).
    Json(String),
    /// A checkpoint does not open with the key (bad signature, wrong key,
    /// malformed note or key).
    Checkpoint {
        /// Which checkpoint: "checkpoint", "old checkpoint" or "new checkpoint".
        which: &'static str,
        /// Why.
        error: NoteError,
    },
    /// The proof is for another tree size than the checkpoint signs.
    SizeMismatch {
        /// Which checkpoint.
        which: &'static str,
        /// The size in the proof.
        proof_size: u64,
        /// The size in the checkpoint.
        checkpoint_size: u64,
    },
    /// The two checkpoints are of different logs.
    OriginMismatch {
        /// The old checkpoint's origin.
        old: String,
        /// The new checkpoint's origin.
        new: String,
    },
    /// The proof does not verify against the signed root(s).
    Proof(ProofError),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Json(e) => write!(f, "the proof is not valid proof JSON: {e}"),
            CheckError::Checkpoint { which, error } => {
                write!(f, "the {which} does not open: {error}")
            }
            CheckError::SizeMismatch {
                which,
                proof_size,
                checkpoint_size,
            } => write!(
                f,
                "the proof is for a tree of {proof_size} leaves, the {which} signs {checkpoint_size}: get a proof for the checkpoint's size"
            ),
            CheckError::OriginMismatch { old, new } => write!(
                f,
                "the checkpoints are of different logs: {old:?} and {new:?}"
            ),
            CheckError::Proof(e) => write!(f, "the proof does not verify: {e}"),
        }
    }
}

impl std::error::Error for CheckError {}

/// An inclusion proof that checked against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInclusion {
    /// The checkpoint, opened with the key.
    pub checkpoint: Checkpoint,
    /// The proof. Its `leaf_hash` is what is proven to be in the log: compare
    /// it with [`leaf_hash`] of the event you hold.
    pub proof: InclusionProof,
}

fn parse_proof<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, CheckError> {
    if json.len() > MAX_PROOF_JSON_BYTES {
        return Err(CheckError::Json(format!(
            "{} bytes; at most {MAX_PROOF_JSON_BYTES} are accepted",
            json.len()
        )));
    }
    serde_json::from_str(json).map_err(|e| CheckError::Json(e.to_string()))
}

/// Checks an inclusion proof (its JSON) against a signed checkpoint (the
/// note's text) and the log's public key (its text form), without a store.
///
/// # Errors
/// [`CheckError::Json`], [`CheckError::Checkpoint`],
/// [`CheckError::SizeMismatch`] or [`CheckError::Proof`].
pub fn check_inclusion(
    proof_json: &str,
    checkpoint_note: &str,
    verifier_key: &str,
) -> Result<CheckedInclusion, CheckError> {
    let proof: InclusionProof = parse_proof(proof_json)?;
    let checkpoint =
        note::open(checkpoint_note, verifier_key).map_err(|error| CheckError::Checkpoint {
            which: "checkpoint",
            error,
        })?;
    if proof.tree_size != checkpoint.size {
        return Err(CheckError::SizeMismatch {
            which: "checkpoint",
            proof_size: proof.tree_size,
            checkpoint_size: checkpoint.size,
        });
    }
    proof.verify(&checkpoint.root).map_err(CheckError::Proof)?;
    Ok(CheckedInclusion { checkpoint, proof })
}

/// Checks a consistency proof (its JSON) between two signed checkpoints of
/// one log, both signed by the key given (its text form), without a store:
/// the new checkpoint's tree extends the old one's. Returns the two
/// checkpoints, old then new.
///
/// # Errors
/// [`CheckError::Json`], [`CheckError::Checkpoint`],
/// [`CheckError::OriginMismatch`], [`CheckError::SizeMismatch`] or
/// [`CheckError::Proof`].
pub fn check_consistency(
    proof_json: &str,
    old_checkpoint_note: &str,
    new_checkpoint_note: &str,
    verifier_key: &str,
) -> Result<(Checkpoint, Checkpoint), CheckError> {
    let proof: ConsistencyProof = parse_proof(proof_json)?;
    let open = |note_text, which| {
        note::open(note_text, verifier_key).map_err(|error| CheckError::Checkpoint { which, error })
    };
    let old = open(old_checkpoint_note, "old checkpoint")?;
    let new = open(new_checkpoint_note, "new checkpoint")?;
    if old.origin != new.origin {
        return Err(CheckError::OriginMismatch {
            old: old.origin,
            new: new.origin,
        });
    }
    for (which, proof_size, checkpoint) in [
        ("old checkpoint", proof.old_size, &old),
        ("new checkpoint", proof.new_size, &new),
    ] {
        if proof_size != checkpoint.size {
            return Err(CheckError::SizeMismatch {
                which,
                proof_size,
                checkpoint_size: checkpoint.size,
            });
        }
    }
    proof
        .verify(&old.root, &new.root)
        .map_err(CheckError::Proof)?;
    Ok((old, new))
}

/// Lowercase hex of a hash.
fn to_hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * hash.len());
    for byte in hash {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A hash from exactly 64 hex digits (either case).
fn from_hex(text: &str) -> Option<Hash> {
    fn digit(c: u8) -> Option<u8> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = text.as_bytes();
    if bytes.len() != 2 * merkle::HASH_LEN {
        return None;
    }
    let mut hash = [0u8; merkle::HASH_LEN];
    for (out, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(hash)
}

/// Serde for one hash as a hex string.
mod hex_hash {
    use super::{Hash, from_hex, to_hex};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        from_hex(&text).ok_or_else(|| D::Error::custom("a hash is 64 hex digits"))
    }
}

/// Serde for a list of hashes as hex strings, at most
/// [`merkle::MAX_CONSISTENCY_PROOF_HASHES`] of them.
mod hex_hashes {
    use super::{Hash, from_hex, merkle, to_hex};
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(hashes: &[Hash], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(hashes.len()))?;
        for hash in hashes {
            seq.serialize_element(&to_hex(hash))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Hash>, D::Error> {
        struct Hashes;
        impl<'de> Visitor<'de> for Hashes {
            type Value = Vec<Hash>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a list of at most {} hashes of 64 hex digits",
                    merkle::MAX_CONSISTENCY_PROOF_HASHES
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Hash>, A::Error> {
                let mut hashes = Vec::new();
                while let Some(text) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    if hashes.len() == merkle::MAX_CONSISTENCY_PROOF_HASHES {
                        return Err(A::Error::invalid_length(hashes.len() + 1, &self));
                    }
                    hashes.push(
                        from_hex(&text)
                            .ok_or_else(|| A::Error::custom("a hash is 64 hex digits"))?,
                    );
                }
                Ok(hashes)
            }
        }
        deserializer.deserialize_seq(Hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Log {
        leaves: Vec<Hash>,
        signer: String,
        verifier: String,
    }

    impl Log {
        fn new(events: usize) -> Log {
            let (signer, verifier) = note::generate_key("example.com/log").unwrap();
            let leaves = (0..events)
                .map(|i| leaf_hash(format!("event {i}").as_bytes()))
                .collect();
            Log {
                leaves,
                signer,
                verifier,
            }
        }

        fn checkpoint(&self, size: u64) -> String {
            let checkpoint = Checkpoint {
                origin: "example.com/log".into(),
                size,
                root: merkle::root(size, self.leaves.as_slice()).unwrap(),
                extensions: Vec::new(),
            };
            note::sign(&checkpoint, &self.signer).unwrap()
        }

        fn inclusion(&self, index: u64, size: u64) -> InclusionProof {
            InclusionProof {
                leaf_index: index,
                tree_size: size,
                leaf_hash: self.leaves[index as usize],
                hashes: merkle::inclusion_proof(index, size, self.leaves.as_slice()).unwrap(),
            }
        }

        fn consistency(&self, old: u64, new: u64) -> ConsistencyProof {
            ConsistencyProof {
                old_size: old,
                new_size: new,
                hashes: merkle::consistency_proof(old, new, self.leaves.as_slice()).unwrap(),
            }
        }
    }

    #[test]
    fn json_shapes() {
        let log = Log::new(5);
        let proof = log.inclusion(2, 5);
        let json: serde_json::Value = serde_json::to_value(&proof).unwrap();
        assert_eq!(json["leaf_index"], 2);
        assert_eq!(json["tree_size"], 5);
        assert_eq!(json["leaf_hash"], to_hex(&log.leaves[2]));
        assert_eq!(json["hashes"].as_array().unwrap().len(), proof.hashes.len());
        assert_eq!(
            serde_json::from_value::<InclusionProof>(json).unwrap(),
            proof
        );
        let proof = log.consistency(3, 5);
        let json: serde_json::Value = serde_json::to_value(&proof).unwrap();
        assert_eq!(json["old_size"], 3);
        assert_eq!(json["new_size"], 5);
        assert_eq!(
            serde_json::from_value::<ConsistencyProof>(json).unwrap(),
            proof
        );
        // Uppercase hex is read too; hex round trips.
        let hash = log.leaves[0];
        assert_eq!(from_hex(&to_hex(&hash).to_uppercase()), Some(hash));
        for bad in [
            "",
            "0",
            &"g".repeat(64),
            &"0".repeat(63),
            &"0".repeat(66),
            "+0",
        ] {
            assert_eq!(from_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn inclusion_checks_against_a_signed_checkpoint() {
        let log = Log::new(20);
        let note = log.checkpoint(13);
        for index in 0..13 {
            let json = serde_json::to_string(&log.inclusion(index, 13)).unwrap();
            let checked = check_inclusion(&json, &note, &log.verifier).unwrap();
            assert_eq!(checked.checkpoint.size, 13);
            assert_eq!(checked.proof.leaf_hash, log.leaves[index as usize]);
        }
        // A forged event.
        let mut forged = log.inclusion(4, 13);
        forged.leaf_hash = leaf_hash(b"forged");
        let json = serde_json::to_string(&forged).unwrap();
        assert!(matches!(
            check_inclusion(&json, &note, &log.verifier),
            Err(CheckError::Proof(ProofError::RootMismatch))
        ));
        // A proof for another size than the checkpoint's.
        let json = serde_json::to_string(&log.inclusion(4, 14)).unwrap();
        assert!(matches!(
            check_inclusion(&json, &note, &log.verifier),
            Err(CheckError::SizeMismatch { .. })
        ));
        // Another key.
        let (_, other) = note::generate_key("example.com/log").unwrap();
        let json = serde_json::to_string(&log.inclusion(4, 13)).unwrap();
        assert!(matches!(
            check_inclusion(&json, &note, &other),
            Err(CheckError::Checkpoint { .. })
        ));
        // Bad JSON.
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"leaf_index":0,"tree_size":1,"leaf_hash":"00","hashes":[]}"#,
            &json.replace("\"hashes\"", "\"extra\":1,\"hashes\""),
            &" ".repeat(MAX_PROOF_JSON_BYTES + 1),
        ] {
            assert!(matches!(
                check_inclusion(bad, &note, &log.verifier),
                Err(CheckError::Json(_))
            ));
        }
        let too_many = format!(
            r#"{{"leaf_index":0,"tree_size":1,"leaf_hash":"{0}","hashes":[{1}]}}"#,
            to_hex(&log.leaves[0]),
            vec![format!("\"{}\"", to_hex(&log.leaves[0])); 66].join(",")
        );
        assert!(matches!(
            check_inclusion(&too_many, &note, &log.verifier),
            Err(CheckError::Json(_))
        ));
    }

    #[test]
    fn consistency_checks_between_signed_checkpoints() {
        let log = Log::new(40);
        let (old_note, new_note) = (log.checkpoint(11), log.checkpoint(37));
        let json = serde_json::to_string(&log.consistency(11, 37)).unwrap();
        let (old, new) = check_consistency(&json, &old_note, &new_note, &log.verifier).unwrap();
        assert_eq!((old.size, new.size), (11, 37));
        // Swapped checkpoints.
        assert!(check_consistency(&json, &new_note, &old_note, &log.verifier).is_err());
        // A rewritten history, signed by the same key: the old checkpoint
        // does not extend into it.
        let mut rewritten = Log::new(40);
        rewritten.signer = log.signer.clone();
        rewritten.leaves[5] = leaf_hash(b"rewritten");
        let rewritten_note = rewritten.checkpoint(37);
        let forged = serde_json::to_string(&rewritten.consistency(11, 37)).unwrap();
        assert!(matches!(
            check_consistency(&forged, &old_note, &rewritten_note, &log.verifier),
            Err(CheckError::Proof(_))
        ));
        // A removed event: the tree of 36 leaves without leaf 20.
        let mut removed = Log::new(40);
        removed.signer = log.signer.clone();
        removed.leaves.remove(20);
        let removed_note = removed.checkpoint(36);
        // The first 11 events are untouched, so that history still extends
        // the checkpoint of 11 ...
        let forged = serde_json::to_string(&removed.consistency(11, 36)).unwrap();
        assert!(check_consistency(&forged, &old_note, &removed_note, &log.verifier).is_ok());
        // ... but not one that had event 20.
        let old_with_20 = log.checkpoint(25);
        let forged = serde_json::to_string(&removed.consistency(25, 36)).unwrap();
        assert!(matches!(
            check_consistency(&forged, &old_with_20, &removed_note, &log.verifier),
            Err(CheckError::Proof(_))
        ));
        // Sizes that do not match the checkpoints.
        let json = serde_json::to_string(&log.consistency(11, 36)).unwrap();
        assert!(matches!(
            check_consistency(&json, &old_note, &new_note, &log.verifier),
            Err(CheckError::SizeMismatch { .. })
        ));
        // Checkpoints of another log.
        let checkpoint = Checkpoint {
            origin: "example.com/other".into(),
            size: 37,
            root: merkle::root(37, log.leaves.as_slice()).unwrap(),
            extensions: Vec::new(),
        };
        let other_note = note::sign(&checkpoint, &log.signer).unwrap();
        let json = serde_json::to_string(&log.consistency(11, 37)).unwrap();
        assert!(matches!(
            check_consistency(&json, &old_note, &other_note, &log.verifier),
            Err(CheckError::OriginMismatch { .. })
        ));
    }
}
