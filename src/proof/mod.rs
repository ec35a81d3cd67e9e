//! Proofs for auditors: a Merkle tree over the log (RFC 6962 / RFC 9162),
//! signed checkpoints (C2SP signed notes), inclusion and consistency proofs.
//!
//! Nothing here needs a store: [`merkle`] hashes and proves over any
//! [`SubtreeSource`], and [`note`] signs and opens checkpoints.
pub mod merkle;

pub use merkle::{
    Frontier, FrontierError, Hash, ProofError, ProveError, Subtree, SubtreeSource, leaf_hash,
    node_hash,
};
