//! Proofs through the store (issue 19): the Merkle tree over the log, its
//! root, inclusion and consistency proofs, receipts and signed checkpoints.
//! The tree is derived from the segments ([`crate::engine::tree`]): leaf
//! `i` is [`leaf_hash`](crate::proof::leaf_hash) of the event at position
//! `i`'s frame as stored. The tree's frontier at the end of each sealed
//! segment is recorded in its index file and kept in memory after open,
//! with the roots of its aligned runs of 256 events, so a root or a proof
//! reads fewer than 256 events of each sealed segment it needs, and the
//! active segment's (see `docs/proofs.md`, "The tree of a store").
//! What an auditor does with the results needs no store: [`crate::proof`].

use crate::error::{Error, Result};
use crate::proof::merkle::{self, Hash, ProveError, SubtreeSource};
use crate::proof::{Checkpoint, ConsistencyProof, InclusionProof, note};

use std::path::PathBuf;

use super::Store;
use crate::engine::tree::LogTree;
use crate::{AppendResult, EventData, ExpectedVersion};

/// What a client keeps after an append to prove later that its event is in
/// the log: the event's position and leaf hash. Ask
/// [`Store::inclusion_proof`] for that position in a signed checkpoint's
/// tree size and check that the proof's `leaf_hash` is this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The event's global position: its leaf index.
    pub position: u64,
    /// [`merkle::leaf_hash`] of the event's frame as stored.
    pub leaf_hash: Hash,
}

/// Where a proof may read what the store no longer holds: the leaves of
/// retired events.
///
/// Without an archive, a root or a proof needs of the retired prefix only
/// whole subtrees of the tree at the cut, which the retention manifest
/// keeps: the root of any size at or after the cut, inclusion proofs of
/// kept positions and consistency proofs from a size at or after the cut.
/// The rest (an inclusion proof of a retired position, a consistency proof
/// from a checkpoint older than the cut, a root of a size inside the
/// retired prefix) reads the retired segments from the archive they were
/// retired into, and fails with [`Error::ProofNeedsRetiredEvents`] without it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProofOptions {
    /// The local directory the retired segments were archived into
    /// ([`crate::RetireOptions::archive`]): segment files named as in the
    /// store, each matching what the retention manifest lists.
    pub archive: Option<PathBuf>,
}

impl ProofOptions {
    /// Reads the retired segments from `archive` when a proof needs them.
    pub fn archive(mut self, archive: impl Into<PathBuf>) -> Self {
        self.archive = Some(archive.into());
        self
    }
}

impl Store {
    /// The tree over the log, reading retired leaves from the archive
    /// `options` names, if any.
    fn tree_with(&self, options: &ProofOptions) -> Result<LogTree<'_>> {
        match &options.archive {
            Some(archive) => self.engine.tree_with_archive(archive),
            None => Ok(self.engine.tree()),
        }
    }

    /// The number of events in the log (its next position: retired events
    /// count) and the Merkle tree root over them, now. Reads the active
    /// segment's events; the tree at the end of each sealed segment is
    /// recorded in its index file (a store whose index files predate it
    /// reads each sealed segment once, the first time).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store};
    /// let store = Store::in_memory(Default::default())?;
    /// assert_eq!(store.tree_size_and_root()?, (0, annals::proof::merkle::empty_root()));
    /// store.append("s", ExpectedVersion::Any, &[EventData::new("E", b"x".to_vec())])?;
    /// let (size, root) = store.tree_size_and_root()?;
    /// assert_eq!(size, 1);
    /// assert_eq!(root, store.receipt(0)?.leaf_hash);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] when a frame no longer reads;
    /// [`Error::ProofNeedsRetiredEvents`] when a retirement did not record
    /// the tree at its cut (a manifest of an earlier build).
    pub fn tree_size_and_root(&self) -> Result<(u64, Hash)> {
        let tree = self.engine.tree();
        let size = tree.size();
        Ok((size, merkle::root(size, &tree)?))
    }

    /// The Merkle tree root over the first `size` events.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a size past the log's end;
    /// [`Error::ProofNeedsRetiredEvents`] for a size inside the retired
    /// prefix that is not a boundary of the subtrees kept at the cut; as
    /// [`Store::tree_size_and_root`].
    pub fn tree_root(&self, size: u64) -> Result<Hash> {
        self.tree_root_with(size, &ProofOptions::default())
    }

    /// [`Store::tree_root`], reading retired leaves from the archive
    /// `options` names when the size is inside the retired prefix.
    ///
    /// # Errors
    /// As [`Store::tree_root`]; [`Error::ProofArchive`] when the archive
    /// does not hold the retired segments as the retention manifest lists
    /// them.
    pub fn tree_root_with(&self, size: u64, options: &ProofOptions) -> Result<Hash> {
        let tree = self.tree_with(options)?;
        check_size(size, tree.size(), "tree size")?;
        merkle::root(size, &tree)
    }

    /// The inclusion proof of the event at `position` in the tree of the
    /// first `tree_size` events (a signed checkpoint's size).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store};
    /// let store = Store::in_memory(Default::default())?;
    /// for i in 0..5u8 {
    ///     store.append("s", ExpectedVersion::Any, &[EventData::new("E", vec![i])])?;
    /// }
    /// let receipt = store.receipt(3)?;
    /// let (size, root) = store.tree_size_and_root()?;
    /// let proof = store.inclusion_proof(3, size)?;
    /// assert_eq!(proof.leaf_hash, receipt.leaf_hash);
    /// proof.verify(&root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `position < tree_size <=` the
    /// log's size; [`Error::ProofNeedsRetiredEvents`] for a retired
    /// position; as [`Store::tree_size_and_root`].
    pub fn inclusion_proof(&self, position: u64, tree_size: u64) -> Result<InclusionProof> {
        self.inclusion_proof_with(position, tree_size, &ProofOptions::default())
    }

    /// [`Store::inclusion_proof`], reading retired leaves from the archive
    /// `options` names: the proof of a retired position, or of a kept one
    /// in a tree size inside the retired prefix.
    ///
    /// # Errors
    /// As [`Store::inclusion_proof`]; [`Error::ProofArchive`] when the
    /// archive does not hold the retired segments as the retention
    /// manifest lists them.
    pub fn inclusion_proof_with(
        &self,
        position: u64,
        tree_size: u64,
        options: &ProofOptions,
    ) -> Result<InclusionProof> {
        let tree = self.tree_with(options)?;
        check_size(tree_size, tree.size(), "tree size")?;
        if position >= tree_size {
            return Err(Error::InvalidArgument(format!(
                "no inclusion proof of position {position} in a tree of {tree_size} events \
                 (positions 0..{tree_size})"
            )));
        }
        let leaf_hash = tree.leaf_hash(position)?;
        let hashes = merkle::inclusion_proof(position, tree_size, &tree).map_err(prove_error)?;
        Ok(InclusionProof {
            leaf_index: position,
            tree_size,
            leaf_hash,
            hashes,
        })
    }

    /// The consistency proof that the tree of the first `new_size` events
    /// extends the tree of the first `old_size` (two signed checkpoints'
    /// sizes).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store};
    /// let store = Store::in_memory(Default::default())?;
    /// for i in 0..7u8 {
    ///     store.append("s", ExpectedVersion::Any, &[EventData::new("E", vec![i])])?;
    /// }
    /// let (old_root, new_root) = (store.tree_root(3)?, store.tree_root(7)?);
    /// store.consistency_proof(3, 7)?.verify(&old_root, &new_root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `old_size <= new_size <=` the
    /// log's size; [`Error::ProofNeedsRetiredEvents`] when the proof needs
    /// retired leaves (an old size inside the retired prefix); as
    /// [`Store::tree_size_and_root`].
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof> {
        self.consistency_proof_with(old_size, new_size, &ProofOptions::default())
    }

    /// [`Store::consistency_proof`], reading retired leaves from the
    /// archive `options` names: the proof from a checkpoint older than the
    /// retention cut.
    ///
    /// # Errors
    /// As [`Store::consistency_proof`]; [`Error::ProofArchive`] when the
    /// archive does not hold the retired segments as the retention
    /// manifest lists them.
    pub fn consistency_proof_with(
        &self,
        old_size: u64,
        new_size: u64,
        options: &ProofOptions,
    ) -> Result<ConsistencyProof> {
        let tree = self.tree_with(options)?;
        check_size(new_size, tree.size(), "new tree size")?;
        if old_size > new_size {
            return Err(Error::InvalidArgument(format!(
                "no consistency proof from tree size {old_size} to the smaller {new_size}"
            )));
        }
        let hashes = merkle::consistency_proof(old_size, new_size, &tree).map_err(prove_error)?;
        Ok(ConsistencyProof {
            old_size,
            new_size,
            hashes,
        })
    }

    /// Appends `events` to `stream` as [`Store::append`] does, and returns
    /// with the result a [`Receipt`] for each event appended, to keep and
    /// prove later with [`Store::inclusion_proof`]. The receipts are computed
    /// from the frames as written, in one pass over the batch after the
    /// append (one SHA-256 of each event's stored bytes): [`Store::append`]
    /// itself hashes nothing.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store, proof::note};
    /// let store = Store::in_memory(Default::default())?;
    /// let (result, receipts) = store.append_with_receipts(
    ///     "account-1",
    ///     ExpectedVersion::NoStream,
    ///     &[EventData::new("Opened", b"{}".to_vec()), EventData::new("Deposited", b"{}".to_vec())],
    /// )?;
    /// assert_eq!(receipts[1].position, result.last_position);
    /// // Later: a signed checkpoint, and the proof that the event is in it.
    /// let (signer, verifier) = note::generate_key("example.com/log")?;
    /// let checkpoint = note::open(&store.signed_checkpoint("example.com/log", &signer)?, &verifier)?;
    /// let proof = store.inclusion_proof(receipts[1].position, checkpoint.size)?;
    /// assert_eq!(proof.leaf_hash, receipts[1].leaf_hash);
    /// proof.verify(&checkpoint.root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::append`] (then nothing was appended); after the append,
    /// as [`Store::receipt`] (the events were appended: their receipts can
    /// be asked for again by position).
    pub fn append_with_receipts(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<(AppendResult, Vec<Receipt>)> {
        let result = self.append(stream, expected, events)?;
        let receipts = self.receipts(result.first_position, result.last_position + 1)?;
        Ok((result, receipts))
    }

    /// The receipts of the events at positions `start..end`, read in one
    /// pass.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `start < end <=` the log's size;
    /// [`Error::ProofNeedsRetiredEvents`] for retired positions;
    /// [`Error::Corrupt`] when a frame no longer reads.
    pub fn receipts(&self, start: u64, end: u64) -> Result<Vec<Receipt>> {
        if start >= end {
            return Err(Error::InvalidArgument(format!(
                "no receipts for the empty range of positions {start}..{end}"
            )));
        }
        let leaves = self.engine.tree().leaf_hashes(start, end)?;
        Ok((start..end)
            .zip(leaves)
            .map(|(position, leaf_hash)| Receipt {
                position,
                leaf_hash,
            })
            .collect())
    }

    /// The receipt of the event at `position`: its leaf hash, to keep and
    /// prove later.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a position past the log's end;
    /// [`Error::ProofNeedsRetiredEvents`] for a retired one;
    /// [`Error::Corrupt`] when its frame no longer reads.
    pub fn receipt(&self, position: u64) -> Result<Receipt> {
        let tree = self.engine.tree();
        let size = tree.size();
        if position >= size {
            return Err(Error::InvalidArgument(format!(
                "no event at position {position}: the log has {size} events"
            )));
        }
        Ok(Receipt {
            position,
            leaf_hash: tree.leaf_hash(position)?,
        })
    }

    /// The current tree as a signed checkpoint: a C2SP signed note of
    /// `origin`, the tree size and root, signed with `signer_key` (its text,
    /// `PRIVATE+KEY+…`, from [`note::generate_key`]).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store, proof::note};
    /// let store = Store::in_memory(Default::default())?;
    /// store.append("s", ExpectedVersion::Any, &[EventData::new("E", b"x".to_vec())])?;
    /// let (signer, verifier) = note::generate_key("example.com/log")?;
    /// let signed = store.signed_checkpoint("example.com/log", &signer)?;
    /// let checkpoint = note::open(&signed, &verifier)?;
    /// assert_eq!((checkpoint.size, checkpoint.root), store.tree_size_and_root()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed key or origin; as
    /// [`Store::tree_size_and_root`].
    pub fn signed_checkpoint(&self, origin: &str, signer_key: &str) -> Result<String> {
        // Check the key before reading the log for the root.
        note::SignerKey::parse(signer_key)
            .map_err(|e| Error::InvalidArgument(format!("the signer key: {e}")))?;
        let (size, root) = self.tree_size_and_root()?;
        let checkpoint = Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        };
        note::sign(&checkpoint, signer_key)
            .map_err(|e| Error::InvalidArgument(format!("signing the checkpoint: {e}")))
    }
}

/// Refuses a tree size past the log's `current` size.
fn check_size(size: u64, current: u64, what: &str) -> Result<()> {
    if size > current {
        return Err(Error::InvalidArgument(format!(
            "{what} {size} is past the end of the log, which has {current} events"
        )));
    }
    Ok(())
}

/// A proof's failure as the store's error: the sizes are checked before,
/// so it is the log's.
fn prove_error(error: ProveError<Error>) -> Error {
    match error {
        ProveError::Source(error) => error,
        other => Error::InvalidArgument(other.to_string()),
    }
}
