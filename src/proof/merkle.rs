//! Merkle tree hashing, proofs and their verification, as RFC 6962 and
//! RFC 9162 (Certificate Transparency) define them, with SHA-256.
//!
//! The tree over `n` leaves `D[0:n]` is the Merkle Tree Hash (MTH):
//!
//! ```text
//! MTH({})       = SHA-256()                       the empty tree
//! MTH({d(0)})   = SHA-256(0x00 || d(0))           a leaf
//! MTH(D[0:n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
//!                 where k is the largest power of two smaller than n
//! ```
//!
//! The 0x00 / 0x01 prefixes keep a leaf from ever passing for an inner node
//! (a second-preimage defence). Nothing here does I/O: the leaves come from a
//! [`SubtreeSource`], which a store implements over its log (answering whole
//! segments from cached subtree roots), and tests over a slice.
//!
//! ```
//! use annals::proof::merkle::{self, leaf_hash};
//!
//! let leaves: Vec<_> = [&b"a"[..], b"b", b"c"].iter().map(|d| leaf_hash(d)).collect();
//! let root = merkle::root(3, leaves.as_slice())?;
//! let proof = merkle::inclusion_proof(1, 3, leaves.as_slice())?;
//! merkle::verify_inclusion(&leaves[1], 1, 3, &proof, &root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an inner node hash or a root.
pub type Hash = [u8; HASH_LEN];

/// Bytes of a [`Hash`].
pub const HASH_LEN: usize = 32;

/// The most hashes an inclusion proof can have: one per level of a tree of
/// at most 2^64 leaves.
pub const MAX_INCLUSION_PROOF_HASHES: usize = 64;

/// The most hashes a consistency proof can have: one per level, and the
/// old tree's own subtree root.
pub const MAX_CONSISTENCY_PROOF_HASHES: usize = 65;

/// The hash of a leaf: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(bytes);
    hasher.finalize().into()
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256()` of no bytes.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (for `n >= 2`): where
/// MTH splits a range of `n` leaves.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Where the leaf hashes of a tree come from.
///
/// A store implements [`leaf_hash`](Self::leaf_hash) over its log and may
/// override [`subtree_hash`](Self::subtree_hash) to answer whole ranges
/// from cached roots (for example the root of each sealed segment, or the
/// [`Frontier`] subtree roots of a retired prefix) instead of rehashing
/// every leaf. The functions of this module call `subtree_hash` only with
/// `start < end <= size` of the tree they were asked about, and mostly on
/// ranges that are perfect subtrees (aligned, a power of two long), plus the
/// right edge of the tree.
pub trait SubtreeSource {
    /// Why a hash could not be had (a missing leaf, an I/O error).
    type Error;

    /// The leaf hash of leaf `index`.
    ///
    /// # Errors
    /// Whatever the source fails with; an in-memory source when `index` is
    /// past its leaves.
    fn leaf_hash(&self, index: u64) -> Result<Hash, Self::Error>;

    /// The MTH of the leaves `start..end`.
    ///
    /// The default computes it from the leaves in O(end - start) time and
    /// O(log(end - start)) memory. An empty or reversed range has the empty
    /// tree's root.
    ///
    /// # Errors
    /// Whatever [`leaf_hash`](Self::leaf_hash) fails with.
    fn subtree_hash(&self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        let mut frontier = Frontier::new();
        for index in start..end {
            // A range of u64 indexes has fewer than 2^64 leaves, so the
            // frontier cannot be full.
            if frontier.push(self.leaf_hash(index)?).is_err() {
                break;
            }
        }
        Ok(frontier.root())
    }
}

/// Leaf hashes held in memory: leaf `i` is `self[i]`.
impl SubtreeSource for [Hash] {
    type Error = LeafOutOfRange;

    fn leaf_hash(&self, index: u64) -> Result<Hash, LeafOutOfRange> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(LeafOutOfRange {
                index,
                leaf_count: self.len() as u64,
            })
    }
}

/// Leaf hashes held in memory: leaf `i` is `self[i]`.
impl SubtreeSource for Vec<Hash> {
    type Error = LeafOutOfRange;

    fn leaf_hash(&self, index: u64) -> Result<Hash, LeafOutOfRange> {
        self.as_slice().leaf_hash(index)
    }
}

/// An in-memory source was asked for a leaf it does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafOutOfRange {
    /// The leaf asked for.
    pub index: u64,
    /// How many leaves the source has.
    pub leaf_count: u64,
}

impl fmt::Display for LeafOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leaf {} asked for, but the source has only {} leaves",
            self.index, self.leaf_count
        )
    }
}

impl std::error::Error for LeafOutOfRange {}

/// Why a proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProveError<E> {
    /// An inclusion proof was asked for a leaf outside the tree.
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    SizesOutOfOrder {
        /// The older tree's size.
        old_size: u64,
        /// The newer tree's size.
        new_size: u64,
    },
    /// The source failed.
    Source(E),
}

impl<E: fmt::Display> fmt::Display for ProveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProveError::IndexOutOfRange { index, size } => write!(
                f,
                "no inclusion proof for leaf {index}: the tree has {size} leaves (0..{size})"
            ),
            ProveError::SizesOutOfOrder { old_size, new_size } => write!(
                f,
                "no consistency proof from size {old_size} to the smaller size {new_size}"
            ),
            ProveError::Source(e) => write!(f, "reading the tree failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ProveError<E> {}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    IndexOutOfRange {
        /// The leaf index the proof claims.
        index: u64,
        /// The tree size the proof claims.
        size: u64,
    },
    /// The old tree is larger than the new one.
    SizesOutOfOrder {
        /// The older tree's size.
        old_size: u64,
        /// The newer tree's size.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for its index and sizes.
    WrongLength {
        /// How many hashes a proof for these sizes has.
        expected: usize,
        /// How many it has.
        actual: usize,
    },
    /// The hashes lead to another root than the one given: the leaf is not
    /// in that tree at that index, or the proof or root is not genuine.
    RootMismatch,
    /// A consistency proof does not lead to the old tree's root: the old
    /// tree is not a prefix of the new one, or the proof is not genuine.
    OldRootMismatch,
    /// A consistency proof does not lead to the new tree's root: the new
    /// tree does not extend the old one, or the proof is not genuine.
    NewRootMismatch,
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is outside a tree of {size} leaves")
            }
            ProofError::SizesOutOfOrder { old_size, new_size } => write!(
                f,
                "old tree size {old_size} is larger than new tree size {new_size}"
            ),
            ProofError::WrongLength { expected, actual } => write!(
                f,
                "the proof has {actual} hashes; one for these sizes has {expected}"
            ),
            ProofError::RootMismatch => write!(
                f,
                "the proof does not lead to the given root: the leaf is not in that tree at that index"
            ),
            ProofError::OldRootMismatch => write!(
                f,
                "the consistency proof does not lead to the old root: the old tree is not a prefix of the new one"
            ),
            ProofError::NewRootMismatch => write!(
                f,
                "the consistency proof does not lead to the new root: the new tree does not extend the old one"
            ),
        }
    }
}

impl std::error::Error for ProofError {}

/// The root (MTH) of the first `size` leaves of `source`.
///
/// # Errors
/// Whatever the source fails with.
pub fn root<S: SubtreeSource + ?Sized>(size: u64, source: &S) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    source.subtree_hash(0, size)
}

/// The inclusion proof of leaf `index` in the tree of the first `size`
/// leaves: RFC 9162 section 2.1.3.1, `PATH(index, D[0:size])`, ordered from
/// the leaf's sibling up to the root's child.
///
/// # Errors
/// [`ProveError::IndexOutOfRange`] unless `index < size`;
/// [`ProveError::Source`] when the source fails.
pub fn inclusion_proof<S: SubtreeSource + ?Sized>(
    index: u64,
    size: u64,
    source: &S,
) -> Result<Vec<Hash>, ProveError<S::Error>> {
    if index >= size {
        return Err(ProveError::IndexOutOfRange { index, size });
    }
    // PATH recurses from the root down; each level appends the sibling
    // subtree after the deeper part of the path. Walk down, collect the
    // siblings, and reverse them so the deepest comes first.
    let mut path = Vec::new();
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split_point(end - start);
        let middle = start + k;
        if index < middle {
            path.push(
                source
                    .subtree_hash(middle, end)
                    .map_err(ProveError::Source)?,
            );
            end = middle;
        } else {
            path.push(
                source
                    .subtree_hash(start, middle)
                    .map_err(ProveError::Source)?,
            );
            start = middle;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof from the tree of the first `old_size` leaves to
/// the tree of the first `new_size`: RFC 9162 section 2.1.4.1,
/// PROOF(old_size, D[0:new_size]) = SUBPROOF(old_size, D[0:new_size], true).
/// Empty when `old_size` is 0 or equal to `new_size` (every tree extends the
/// empty one and itself).
///
/// # Errors
/// [`ProveError::SizesOutOfOrder`] if `old_size > new_size`;
/// [`ProveError::Source`] when the source fails.
pub fn consistency_proof<S: SubtreeSource + ?Sized>(
    old_size: u64,
    new_size: u64,
    source: &S,
) -> Result<Vec<Hash>, ProveError<S::Error>> {
    if old_size > new_size {
        return Err(ProveError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:end], b), unrolled: each level appends its sibling
    // after the deeper part, so collect the siblings and reverse them.
    let mut siblings = Vec::new();
    let (mut m, mut start, mut end, mut whole_old_tree) = (old_size, 0u64, new_size, true);
    let first = loop {
        if m == end - start {
            // SUBPROOF(m, D[m], true) = {}: the verifier has the old root.
            // SUBPROOF(m, D[m], false) = {MTH(D[m])}.
            break if whole_old_tree {
                None
            } else {
                Some(
                    source
                        .subtree_hash(start, end)
                        .map_err(ProveError::Source)?,
                )
            };
        }
        let k = split_point(end - start);
        if m <= k {
            siblings.push(
                source
                    .subtree_hash(start + k, end)
                    .map_err(ProveError::Source)?,
            );
            end = start + k;
        } else {
            siblings.push(
                source
                    .subtree_hash(start, start + k)
                    .map_err(ProveError::Source)?,
            );
            m -= k;
            start += k;
            whole_old_tree = false;
        }
    };
    let mut proof = Vec::with_capacity(siblings.len() + 1);
    proof.extend(first);
    proof.extend(siblings.into_iter().rev());
    Ok(proof)
}

/// The number of hashes in the inclusion proof of `index` in a tree of
/// `size` leaves (requires `index < size`): the levels below the point where
/// the leaf's path leaves the left edge ("inner"), plus one per perfect
/// subtree to the left of it on the way up ("border").
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index.checked_shr(inner).unwrap_or(0)).count_ones();
    (inner + border) as usize
}

/// Checks that `proof` shows leaf `leaf_hash` at `index` in the tree of
/// `size` leaves whose root is `root`: RFC 9162 section 2.1.3.2.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] unless `index < size`;
/// [`ProofError::WrongLength`] if the proof has too few or too many hashes;
/// [`ProofError::RootMismatch`] if it leads to another root.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The iterative algorithm would also reject a proof of the wrong
    // length, but only as a root mismatch; say what is wrong instead.
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            actual: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                // fn_ == sn, fn_ even: the right edge has no sibling on these
                // levels; climb until fn_ is a right child or the root.
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 || r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The number of hashes in the consistency proof from `old_size` to
/// `new_size` (requires `0 < old_size < new_size`): the inclusion proof of
/// the old tree's last leaf, less the levels inside the old tree's last
/// perfect subtree, plus that subtree's root unless it is the whole old tree.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let shift = old_size.trailing_zeros() as usize;
    let path = inclusion_proof_len(old_size - 1, new_size);
    let start = usize::from(!old_size.is_power_of_two());
    // The last perfect subtree of the old tree is a left subtree in the new
    // one (old_size < new_size), so its levels are all "inner" levels.
    start + path.saturating_sub(shift)
}

/// Checks that `proof` shows the tree of `new_size` leaves with root
/// `new_root` extends the tree of `old_size` leaves with root `old_root`:
/// RFC 9162 section 2.1.4.2. Equal sizes need an empty proof and equal
/// roots; an old size of 0 needs an empty proof and the empty tree's root.
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`] if `old_size > new_size`;
/// [`ProofError::WrongLength`] if the proof has too few or too many hashes;
/// [`ProofError::OldRootMismatch`] / [`ProofError::NewRootMismatch`] if it
/// does not lead to the roots given.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    let wrong_length = |expected| ProofError::WrongLength {
        expected,
        actual: proof.len(),
    };
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(wrong_length(0));
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(ProofError::OldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::NewRootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(wrong_length(expected));
    }
    // Step 2: when the old tree is a perfect subtree of the new one, the
    // proof leaves out its root, which the verifier has.
    let (seed, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(wrong_length(expected)),
        }
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // Step 4: skip the levels inside the old tree's last perfect subtree.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if sn == 0 {
            return Err(wrong_length(expected));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sn != 0 || sr != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// The left edge of a tree, kept as it grows: the roots of its perfect
/// subtrees, one per set bit of its size, largest (leftmost) first.
///
/// This is all a writer needs to know of the past to compute the root after
/// each append (O(log n) memory, amortized O(1) hashes per leaf), and all a
/// proof needs of a retired prefix whose leaves are gone.
///
/// ```
/// use annals::proof::merkle::{self, Frontier, leaf_hash};
///
/// let leaves: Vec<_> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
/// let mut frontier = Frontier::new();
/// for leaf in &leaves {
///     frontier.push(*leaf)?;
/// }
/// assert_eq!(frontier.root(), merkle::root(5, leaves.as_slice())?);
/// // 5 = 4 + 1: two perfect subtrees.
/// let ranges: Vec<_> = frontier.subtree_roots().iter().map(|s| (s.start, s.end)).collect();
/// assert_eq!(ranges, [(0, 4), (4, 5)]);
/// assert_eq!(Frontier::decode(&frontier.encode())?, frontier);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One root per set bit of `size`, from the most significant bit down.
    roots: Vec<Hash>,
}

/// A perfect subtree of a [`Frontier`]: the leaves `start..end` (a power of
/// two many, `start` a multiple of that) and their root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subtree {
    /// The first leaf.
    pub start: u64,
    /// One past the last leaf.
    pub end: u64,
    /// The MTH of those leaves.
    pub hash: Hash,
}

/// Why a [`Frontier`] cannot grow or cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrontierError {
    /// The tree already has 2^64 - 1 leaves.
    Full,
    /// The encoding is shorter than its fixed 8-byte size field.
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// The encoding's length does not fit the size it states: a frontier of
    /// that size has one hash per set bit.
    WrongLength {
        /// The size the encoding states.
        size: u64,
        /// Bytes an encoding of that size has.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

impl fmt::Display for FrontierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrontierError::Full => write!(f, "the tree is full: it has 2^64 - 1 leaves"),
            FrontierError::Truncated { len } => write!(
                f,
                "a frontier encoding has at least 8 bytes (its size); got {len}"
            ),
            FrontierError::WrongLength {
                size,
                expected,
                actual,
            } => write!(
                f,
                "a frontier of size {size} is encoded in {expected} bytes; got {actual}"
            ),
        }
    }
}

impl std::error::Error for FrontierError {}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier of the first `size` leaves of `source` (one subtree
    /// hash per set bit of `size`, so a source with cached subtree roots
    /// answers it without reading leaves).
    ///
    /// # Errors
    /// Whatever the source fails with.
    pub fn from_source<S: SubtreeSource + ?Sized>(size: u64, source: &S) -> Result<Self, S::Error> {
        let mut roots = Vec::with_capacity(size.count_ones() as usize);
        for (start, end) in subtree_ranges(size) {
            roots.push(source.subtree_hash(start, end)?);
        }
        Ok(Frontier { size, roots })
    }

    /// Adds a leaf (its [`leaf_hash`]) at the right edge.
    ///
    /// # Errors
    /// [`FrontierError::Full`] when the tree has 2^64 - 1 leaves.
    pub fn push(&mut self, leaf_hash: Hash) -> Result<(), FrontierError> {
        self.push_reporting(leaf_hash, |_, _| {})
    }

    /// [`push`](Self::push), calling `node(height, hash)` for each inner
    /// node the push forms, lowest first: the root of the perfect subtree of
    /// the last `2^height` leaves. What a store records as subtree roots
    /// ("tiles") without hashing again.
    ///
    /// # Errors
    /// [`FrontierError::Full`] when the tree has 2^64 - 1 leaves.
    pub fn push_reporting(
        &mut self,
        leaf_hash: Hash,
        mut node: impl FnMut(u32, &Hash),
    ) -> Result<(), FrontierError> {
        let new_size = self.size.checked_add(1).ok_or(FrontierError::Full)?;
        // Adding 1 carries through the low set bits of the size: each carry
        // merges the two equal perfect subtrees at that level.
        let mut hash = leaf_hash;
        let carries = self.size.trailing_ones();
        for height in 1..=carries {
            // The invariant (one root per set bit) guarantees a root here.
            let Some(left) = self.roots.pop() else { break };
            hash = node_hash(&left, &hash);
            node(height, &hash);
        }
        self.roots.push(hash);
        self.size = new_size;
        Ok(())
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root (the empty tree's root when it has no leaves).
    pub fn root(&self) -> Hash {
        let mut roots = self.roots.iter().rev();
        let Some(last) = roots.next() else {
            return empty_root();
        };
        // MTH splits at the largest power of two: the leftmost perfect
        // subtree is the left child of the root, the rest its right child.
        roots.fold(*last, |right, left| node_hash(left, &right))
    }

    /// The perfect subtrees of the left edge, leftmost first, with their
    /// leaf ranges.
    pub fn subtree_roots(&self) -> Vec<Subtree> {
        subtree_ranges(self.size)
            .zip(&self.roots)
            .map(|((start, end), hash)| Subtree {
                start,
                end,
                hash: *hash,
            })
            .collect()
    }

    /// The encoding: the size as 8 little-endian bytes, then each subtree
    /// root (32 bytes), leftmost first.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + HASH_LEN * self.roots.len());
        bytes.extend_from_slice(&self.size.to_le_bytes());
        for root in &self.roots {
            bytes.extend_from_slice(root);
        }
        bytes
    }

    /// Decodes what [`encode`](Self::encode) wrote.
    ///
    /// # Errors
    /// [`FrontierError::Truncated`] or [`FrontierError::WrongLength`] when
    /// the length does not match the size.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrontierError> {
        let Some((size_bytes, hashes)) = bytes.split_first_chunk::<8>() else {
            return Err(FrontierError::Truncated { len: bytes.len() });
        };
        let size = u64::from_le_bytes(*size_bytes);
        // At most 64 hashes, so this cannot overflow.
        let expected = 8 + HASH_LEN * size.count_ones() as usize;
        if bytes.len() != expected {
            return Err(FrontierError::WrongLength {
                size,
                expected,
                actual: bytes.len(),
            });
        }
        let (roots, rest) = hashes.as_chunks::<HASH_LEN>();
        debug_assert!(rest.is_empty());
        Ok(Frontier {
            size,
            roots: roots.to_vec(),
        })
    }
}

/// The leaf ranges of the perfect subtrees of a tree of `size` leaves,
/// leftmost (largest) first: one per set bit of `size`.
fn subtree_ranges(size: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut start = 0u64;
    (0..64u32).rev().filter_map(move |bit| {
        let width = 1u64 << bit;
        (size & width != 0).then(|| {
            let range = (start, start + width);
            start += width;
            range
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MTH written straight from RFC 6962 section 2.1, recursively over the
    /// leaf data: the reference the optimized code is checked against.
    fn naive_mth(data: &[Vec<u8>]) -> Hash {
        match data.len() {
            0 => Sha256::digest(b"").into(),
            1 => {
                let mut h = Sha256::new();
                h.update([0u8]);
                h.update(&data[0]);
                h.finalize().into()
            }
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(naive_mth(&data[..k]));
                h.update(naive_mth(&data[k..]));
                h.finalize().into()
            }
        }
    }

    /// PATH(m, D[n]) of RFC 9162 section 2.1.3.1, recursively.
    fn naive_path(m: usize, data: &[Vec<u8>]) -> Vec<Hash> {
        let n = data.len();
        if n <= 1 {
            return Vec::new();
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m < k {
            let mut p = naive_path(m, &data[..k]);
            p.push(naive_mth(&data[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &data[k..]);
            p.push(naive_mth(&data[..k]));
            p
        }
    }

    /// SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1, recursively.
    fn naive_subproof(m: usize, data: &[Vec<u8>], whole: bool) -> Vec<Hash> {
        let n = data.len();
        if m == n {
            return if whole {
                Vec::new()
            } else {
                vec![naive_mth(data)]
            };
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m <= k {
            let mut p = naive_subproof(m, &data[..k], whole);
            p.push(naive_mth(&data[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &data[k..], false);
            p.push(naive_mth(&data[..k]));
            p
        }
    }

    /// The 8 leaves of the RFC 6962 test data used by certificate-transparency
    /// and Trillian.
    fn rfc6962_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    /// `n` distinct leaf data: the RFC 6962 leaves, then counters.
    fn data(n: usize) -> Vec<Vec<u8>> {
        let mut d = rfc6962_leaves();
        d.truncate(n);
        d.extend((d.len()..n).map(|i| (i as u64).to_le_bytes().to_vec()));
        d
    }

    fn hashes(data: &[Vec<u8>]) -> Vec<Hash> {
        data.iter().map(|d| leaf_hash(d)).collect()
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(empty_root(), naive_mth(&[]));
        assert_eq!(root(0, &[][..]).unwrap(), empty_root());
        assert_eq!(Frontier::new().root(), empty_root());
    }

    #[test]
    fn rfc6962_vectors_match_the_naive_definition() {
        let data = rfc6962_leaves();
        let leaves = hashes(&data);
        for size in 1..=8 {
            let expected = naive_mth(&data[..size]);
            assert_eq!(
                root(size as u64, leaves.as_slice()).unwrap(),
                expected,
                "size {size}"
            );
            for index in 0..size {
                assert_eq!(
                    inclusion_proof(index as u64, size as u64, leaves.as_slice()).unwrap(),
                    naive_path(index, &data[..size]),
                    "path {index} of {size}"
                );
            }
            for old in 1..size {
                assert_eq!(
                    consistency_proof(old as u64, size as u64, leaves.as_slice()).unwrap(),
                    naive_subproof(old, &data[..size], true),
                    "consistency {old} to {size}"
                );
            }
        }
        // A leaf hash and a node hash of the same bytes differ (domain
        // separation), and the empty leaf is not the empty tree.
        assert_ne!(leaf_hash(b""), empty_root());
    }

    #[test]
    fn proofs_match_the_naive_definition_up_to_64() {
        let data = data(64);
        let leaves = hashes(&data);
        for size in 1..=64usize {
            for index in 0..size {
                assert_eq!(
                    inclusion_proof(index as u64, size as u64, leaves.as_slice()).unwrap(),
                    naive_path(index, &data[..size])
                );
            }
            for old in 1..size {
                assert_eq!(
                    consistency_proof(old as u64, size as u64, leaves.as_slice()).unwrap(),
                    naive_subproof(old, &data[..size], true)
                );
            }
        }
    }

    fn flip(hash: &Hash) -> Hash {
        let mut h = *hash;
        h[7] ^= 0x20;
        h
    }

    /// Every way to get an inclusion check wrong fails.
    fn check_inclusion_all_ways(leaves: &[Hash], index: u64, size: u64) {
        let root = root(size, leaves).unwrap();
        let proof = inclusion_proof(index, size, leaves).unwrap();
        let leaf = leaves[index as usize];
        assert_eq!(proof.len(), inclusion_proof_len(index, size));
        verify_inclusion(&leaf, index, size, &proof, &root).unwrap();

        assert!(verify_inclusion(&flip(&leaf), index, size, &proof, &root).is_err());
        assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root)).is_err());
        for wrong_index in [index.wrapping_sub(1), index + 1, index ^ 2, size, u64::MAX] {
            if wrong_index != index {
                assert!(verify_inclusion(&leaf, wrong_index, size, &proof, &root).is_err());
            }
        }
        // A wrong size fails unless the proof has the same shape at that
        // size (index 0 of 3 and of 4 leaves, say): the root binds the size,
        // which is why a checkpoint signs both.
        for wrong_size in [size - 1, size + 1, size * 2, 0, u64::MAX] {
            if wrong_size != size
                && (index >= wrong_size || inclusion_proof_len(index, wrong_size) != proof.len())
            {
                assert!(verify_inclusion(&leaf, index, wrong_size, &proof, &root).is_err());
            }
        }
        for i in 0..proof.len() {
            let mut tampered = proof.clone();
            tampered[i] = flip(&tampered[i]);
            assert_eq!(
                verify_inclusion(&leaf, index, size, &tampered, &root),
                Err(ProofError::RootMismatch)
            );
        }
        if !proof.is_empty() {
            assert!(matches!(
                verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root),
                Err(ProofError::WrongLength { .. })
            ));
        }
        let mut extended = proof.clone();
        extended.push(root);
        assert!(matches!(
            verify_inclusion(&leaf, index, size, &extended, &root),
            Err(ProofError::WrongLength { .. })
        ));
    }

    #[test]
    fn inclusion_every_index_every_size_up_to_64() {
        let leaves = hashes(&data(65));
        for size in 1..=64u64 {
            for index in 0..size {
                check_inclusion_all_ways(&leaves, index, size);
            }
        }
    }

    /// Every way to get a consistency check wrong fails.
    fn check_consistency_all_ways(leaves: &[Hash], old: u64, new: u64) {
        let old_root = root(old, leaves).unwrap();
        let new_root = root(new, leaves).unwrap();
        let proof = consistency_proof(old, new, leaves).unwrap();
        verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();

        assert!(verify_consistency(old, new, &flip(&old_root), &new_root, &proof).is_err());
        // Every tree extends the empty tree, whatever its root.
        assert_eq!(
            verify_consistency(old, new, &old_root, &flip(&new_root), &proof).is_err(),
            old > 0
        );
        assert!(verify_consistency(new, old, &new_root, &old_root, &proof).is_err() || old == new);
        // As for inclusion, a wrong size fails unless the proof has the same
        // shape at that size.
        let same_shape = |o: u64, n: u64| {
            0 < o && o < n && consistency_proof_len(o, n) == proof.len()
                || (o == 0 || o == n) && proof.is_empty()
        };
        for wrong_old in [old.wrapping_sub(1), old + 1] {
            if wrong_old != old && wrong_old <= new && !same_shape(wrong_old, new) {
                assert!(verify_consistency(wrong_old, new, &old_root, &new_root, &proof).is_err());
            }
        }
        for wrong_new in [new - 1, new + 1, new * 2] {
            if wrong_new != new && wrong_new >= old && !same_shape(old, wrong_new) {
                assert!(verify_consistency(old, wrong_new, &old_root, &new_root, &proof).is_err());
            }
        }
        for i in 0..proof.len() {
            let mut tampered = proof.clone();
            tampered[i] = flip(&tampered[i]);
            assert!(verify_consistency(old, new, &old_root, &new_root, &tampered).is_err());
        }
        if !proof.is_empty() {
            assert!(matches!(
                verify_consistency(old, new, &old_root, &new_root, &proof[..proof.len() - 1]),
                Err(ProofError::WrongLength { .. })
            ));
        }
        let mut extended = proof.clone();
        extended.push(new_root);
        assert!(matches!(
            verify_consistency(old, new, &old_root, &new_root, &extended),
            Err(ProofError::WrongLength { .. })
        ));
        // A rewritten history: the same sizes, another leaf in the old part.
        if old > 0 {
            let mut rewritten = leaves[..new as usize].to_vec();
            rewritten[(old - 1) as usize] = flip(&rewritten[(old - 1) as usize]);
            let rewritten_root = root(new, rewritten.as_slice()).unwrap();
            let forged = consistency_proof(old, new, rewritten.as_slice()).unwrap();
            assert!(verify_consistency(old, new, &old_root, &rewritten_root, &forged).is_err());
        }
    }

    #[test]
    fn consistency_every_pair_up_to_64() {
        let leaves = hashes(&data(129));
        for new in 1..=64u64 {
            for old in 0..=new {
                check_consistency_all_ways(&leaves, old, new);
            }
        }
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let leaves = hashes(&data(4));
        assert_eq!(
            inclusion_proof(4, 4, leaves.as_slice()),
            Err(ProveError::IndexOutOfRange { index: 4, size: 4 })
        );
        assert_eq!(
            inclusion_proof(0, 0, leaves.as_slice()),
            Err(ProveError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            consistency_proof(3, 2, leaves.as_slice()),
            Err(ProveError::SizesOutOfOrder {
                old_size: 3,
                new_size: 2
            })
        );
        assert_eq!(
            inclusion_proof(0, 5, leaves.as_slice()),
            Err(ProveError::Source(LeafOutOfRange {
                index: 4,
                leaf_count: 4
            }))
        );
        let root = empty_root();
        assert_eq!(
            verify_inclusion(&root, 0, 0, &[], &root),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_consistency(5, 4, &root, &root, &[]),
            Err(ProofError::SizesOutOfOrder {
                old_size: 5,
                new_size: 4
            })
        );
        assert_eq!(
            verify_consistency(0, 4, &flip(&root), &root, &[]),
            Err(ProofError::OldRootMismatch)
        );
        // Extremes never panic.
        let many = vec![root; 200];
        for (index, size) in [(u64::MAX - 1, u64::MAX), (0, u64::MAX), (1 << 63, u64::MAX)] {
            for len in [0, 1, 63, 64, 65, 200] {
                assert!(verify_inclusion(&root, index, size, &many[..len], &root).is_err());
            }
        }
        for (old, new) in [
            (1, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            (3, 1 << 63),
        ] {
            for len in [0, 1, 63, 64, 65, 66, 200] {
                assert!(verify_consistency(old, new, &root, &root, &many[..len]).is_err());
            }
        }
    }

    #[test]
    fn frontier_root_matches_root_at_every_size() {
        let leaves = hashes(&data(300));
        let mut frontier = Frontier::new();
        for size in 0..=300u64 {
            assert_eq!(frontier.size(), size);
            assert_eq!(
                frontier.root(),
                root(size, leaves.as_slice()).unwrap(),
                "size {size}"
            );
            assert_eq!(
                Frontier::from_source(size, leaves.as_slice()).unwrap(),
                frontier
            );
            let subtrees = frontier.subtree_roots();
            assert_eq!(subtrees.len(), size.count_ones() as usize);
            let mut start = 0;
            for subtree in &subtrees {
                assert_eq!(subtree.start, start);
                let width = subtree.end - subtree.start;
                assert!(width.is_power_of_two() && subtree.start % width == 0);
                assert_eq!(
                    subtree.hash,
                    leaves
                        .as_slice()
                        .subtree_hash(subtree.start, subtree.end)
                        .unwrap()
                );
                start = subtree.end;
            }
            assert_eq!(start, size);
            assert_eq!(Frontier::decode(&frontier.encode()).unwrap(), frontier);
            if let Some(leaf) = leaves.get(size as usize) {
                frontier.push(*leaf).unwrap();
            }
        }
    }

    #[test]
    fn frontier_is_full_at_u64_max() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(7u8, 64 * HASH_LEN));
        let mut frontier = Frontier::decode(&bytes).unwrap();
        assert_eq!(frontier.push(empty_root()), Err(FrontierError::Full));
        assert_eq!(frontier.encode(), bytes);
    }

    #[test]
    fn frontier_decode_of_damaged_encodings_never_panics() {
        let leaves = hashes(&data(23));
        let mut frontier = Frontier::new();
        for leaf in &leaves {
            frontier.push(*leaf).unwrap();
        }
        let encoded = frontier.encode();
        for len in 0..encoded.len() {
            assert!(
                Frontier::decode(&encoded[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(Frontier::decode(&longer).is_err());
        for byte in 0..encoded.len() {
            for bit in 0..8 {
                let mut flipped = encoded.clone();
                flipped[byte] ^= 1 << bit;
                // A flipped size bit changes the expected length (or, for a
                // popcount-preserving change, decodes another frontier); a
                // flipped hash bit decodes to another frontier. Never a panic.
                if let Ok(decoded) = Frontier::decode(&flipped) {
                    assert_ne!(decoded, frontier);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn random_large_trees(size in 1u64..3000, index_seed: u64, old_seed: u64) {
            let leaves = hashes(&data(size as usize));
            let root = root(size, leaves.as_slice()).unwrap();
            let mut frontier = Frontier::new();
            for leaf in &leaves {
                frontier.push(*leaf).unwrap();
            }
            prop_assert_eq!(frontier.root(), root);

            let index = index_seed % size;
            let proof = inclusion_proof(index, size, leaves.as_slice()).unwrap();
            prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root).is_ok());
            prop_assert!(verify_inclusion(&flip(&leaves[index as usize]), index, size, &proof, &root).is_err());

            let old = old_seed % (size + 1);
            let old_root = super::root(old, leaves.as_slice()).unwrap();
            let proof = consistency_proof(old, size, leaves.as_slice()).unwrap();
            prop_assert!(verify_consistency(old, size, &old_root, &root, &proof).is_ok());
            // Every tree extends the empty one: from size 0 any new root is
            // consistent (see `verify_consistency`), so only a non-empty old
            // tree pins the new root.
            if old > 0 {
                prop_assert!(verify_consistency(old, size, &old_root, &flip(&root), &proof).is_err());
            }
            if !proof.is_empty() {
                let mut tampered = proof.clone();
                tampered[0] = flip(&tampered[0]);
                prop_assert!(verify_consistency(old, size, &old_root, &root, &tampered).is_err());
            }
        }

        #[test]
        fn verifiers_never_panic(
            index: u64, size: u64, old: u64, new: u64,
            len in 0usize..140, seed: u8,
        ) {
            let proof: Vec<Hash> = (0..len).map(|i| [seed.wrapping_add(i as u8); 32]).collect();
            let h = [seed; 32];
            let _ = verify_inclusion(&h, index, size, &proof, &h);
            let _ = verify_consistency(old, new, &h, &h, &proof);
            let _ = verify_consistency(old.min(new), old.max(new), &h, &h, &proof);
            let _ = verify_inclusion(&h, index % size.max(1), size, &proof, &h);
        }

        #[test]
        fn frontier_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Frontier::decode(&bytes);
        }
    }
}
