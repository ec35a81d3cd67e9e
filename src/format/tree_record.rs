//! The tree section of an index file (issue 19): the Merkle tree over the
//! log ([`crate::proof::merkle`]) at the start and at the end of the
//! segment the file describes, so that an open knows the tree at the end of
//! every sealed segment without reading its events, and a root or a proof
//! reads at most one segment's leaves per range it cannot answer from
//! these frontiers.
//!
//! ```text
//! offset size field
//!      0    4 crc         u32, CRC-32 of bytes 8..len
//!      4    4 zero
//!      8    8 start_size  u64, leaves before the segment (its base position)
//!     16    8 end_size    u64, leaves up to the segment's end (base + events)
//!     24   32 end_root    the tree root at end_size
//!     56  32·a start      the frontier at start_size: one subtree root per set
//!                         bit of start_size (a of them), largest subtree first
//!      …  32·b end        the frontier at end_size (b = set bits of end_size)
//! ```
//!
//! The section is empty when the tree at the segment's start is not known
//! (the log starts at a retirement's cut whose manifest, written by an
//! earlier build, does not record the tree there). The section has a
//! checksum of its own so that an open can read it without checking the
//! whole file: the header binds the file to its segment, this checksum the
//! tree to the header's extent, and the start frontier the file to the one
//! before it (an open follows that chain from genesis or the cut).

use std::fmt;

use crate::proof::merkle::{Frontier, HASH_LEN, Hash};

use super::{le_u32, le_u64};

/// Bytes of the tree section before the frontiers' hashes.
pub const TREE_RECORD_FIXED_LEN: usize = 56;

/// The height of the subtrees an index file records in its tiles section:
/// each aligned run of `2^TILE_HEIGHT` leaves inside the segment has its
/// root there, so that a proof reads fewer than `TILE_LEAVES` leaves per
/// subtree it needs from a sealed segment.
pub const TILE_HEIGHT: u32 = 8;

/// Leaves under one tile: `2^TILE_HEIGHT`.
pub const TILE_LEAVES: u64 = 1 << TILE_HEIGHT;

/// The tiles of a segment holding positions `base_position..end_position`:
/// tile `j` covers leaves `j * TILE_LEAVES..(j + 1) * TILE_LEAVES`, and a
/// segment records those wholly inside it, in order.
pub fn tile_range(base_position: u64, end_position: u64) -> std::ops::Range<u64> {
    let first = base_position.div_ceil(TILE_LEAVES);
    let end = end_position / TILE_LEAVES;
    first..end.max(first)
}

/// The tree at a segment's start and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRecord {
    /// The frontier of the tree of the positions before the segment.
    pub start: Frontier,
    /// The frontier of the tree up to the segment's end.
    pub end: Frontier,
}

/// Why a tree section was refused: the byte offset within the section, and
/// what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRecordError {
    /// Offset of the first bad field, from the section's start.
    pub offset: usize,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for TreeRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tree section: {}", self.detail)
    }
}

impl TreeRecord {
    /// The record of a segment: `start` extended with its events gives `end`.
    ///
    /// # Panics
    /// When `end` is smaller than `start` (a bug of the caller).
    pub fn new(start: Frontier, end: Frontier) -> TreeRecord {
        assert!(
            start.size() <= end.size(),
            "a segment's tree ends before it starts"
        );
        TreeRecord { start, end }
    }

    /// The encoded section.
    pub fn encode(&self) -> Vec<u8> {
        let hashes = |frontier: &Frontier| -> Vec<u8> {
            // Frontier::encode is the size then the hashes.
            frontier.encode()[8..].to_vec()
        };
        let mut out = vec![0u8; TREE_RECORD_FIXED_LEN];
        out[8..16].copy_from_slice(&self.start.size().to_le_bytes());
        out[16..24].copy_from_slice(&self.end.size().to_le_bytes());
        out[24..56].copy_from_slice(&self.end.root());
        out.extend_from_slice(&hashes(&self.start));
        out.extend_from_slice(&hashes(&self.end));
        let crc = crc32fast::hash(&out[8..]);
        out[0..4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a section (`None` for an empty one) and checks it against
    /// the extent of the segment it describes: `start_size` must be
    /// `base_position` and `end_size` `end_position`. Never panics.
    ///
    /// # Errors
    /// The first rule the bytes break.
    pub fn decode(
        bytes: &[u8],
        base_position: u64,
        end_position: u64,
    ) -> Result<Option<TreeRecord>, TreeRecordError> {
        let error = |offset: usize, detail: String| Err(TreeRecordError { offset, detail });
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() < TREE_RECORD_FIXED_LEN {
            return error(0, format!("{} bytes, shorter than its fields", bytes.len()));
        }
        if crc32fast::hash(&bytes[8..]) != le_u32(bytes, 0) {
            return error(0, "checksum does not match".to_string());
        }
        if le_u32(bytes, 4) != 0 {
            return error(4, "reserved bytes are not zero".to_string());
        }
        let (start_size, end_size) = (le_u64(bytes, 8), le_u64(bytes, 16));
        if start_size != base_position || end_size != end_position {
            return error(
                8,
                format!(
                    "records the tree from {start_size} to {end_size} leaves, the segment \
                     holds positions {base_position}..{end_position}"
                ),
            );
        }
        // At most 64 hashes each: no overflow.
        let start_len = HASH_LEN * start_size.count_ones() as usize;
        let end_len = HASH_LEN * end_size.count_ones() as usize;
        if bytes.len() != TREE_RECORD_FIXED_LEN + start_len + end_len {
            return error(
                0,
                format!(
                    "{} bytes; frontiers of {start_size} and {end_size} leaves take {}",
                    bytes.len(),
                    TREE_RECORD_FIXED_LEN + start_len + end_len
                ),
            );
        }
        let frontier = |size: u64, hashes: &[u8]| {
            let mut encoded = size.to_le_bytes().to_vec();
            encoded.extend_from_slice(hashes);
            Frontier::decode(&encoded)
        };
        let hashes = &bytes[TREE_RECORD_FIXED_LEN..];
        let (Ok(start), Ok(end)) = (
            frontier(start_size, &hashes[..start_len]),
            frontier(end_size, &hashes[start_len..]),
        ) else {
            return error(TREE_RECORD_FIXED_LEN, "frontiers do not decode".to_string());
        };
        let root: Hash = bytes[24..56].try_into().unwrap_or_default();
        if end.root() != root {
            return error(
                24,
                "end_root is not the root of the end frontier".to_string(),
            );
        }
        Ok(Some(TreeRecord { start, end }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::merkle::leaf_hash;

    fn frontier(size: u64) -> Frontier {
        let mut frontier = Frontier::new();
        for i in 0..size {
            frontier.push(leaf_hash(&i.to_le_bytes())).unwrap();
        }
        frontier
    }

    #[test]
    fn round_trips_and_checks_the_extent() {
        for (start, end) in [(0, 0), (0, 1), (5, 13), (16, 16), (7, 64)] {
            let record = TreeRecord::new(frontier(start), frontier(end));
            let bytes = record.encode();
            assert_eq!(
                TreeRecord::decode(&bytes, start, end),
                Ok(Some(record.clone()))
            );
            assert!(TreeRecord::decode(&bytes, start + 1, end).is_err());
            assert!(TreeRecord::decode(&bytes, start, end + 1).is_err());
        }
        assert_eq!(TreeRecord::decode(&[], 3, 9), Ok(None));
    }

    #[test]
    fn every_bit_flip_and_truncation_is_refused() {
        let bytes = TreeRecord::new(frontier(5), frontier(13)).encode();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(TreeRecord::decode(&flipped, 5, 13).is_err(), "bit {bit}");
        }
        for len in 1..bytes.len() {
            assert!(TreeRecord::decode(&bytes[..len], 5, 13).is_err(), "{len}");
        }
    }

    #[test]
    fn a_wrong_root_with_a_good_checksum_is_refused() {
        let mut bytes = TreeRecord::new(frontier(5), frontier(13)).encode();
        bytes[30] ^= 1;
        let crc = crc32fast::hash(&bytes[8..]);
        bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        let error = TreeRecord::decode(&bytes, 5, 13).unwrap_err();
        assert!(error.detail.contains("end_root"), "{error}");
    }
}
