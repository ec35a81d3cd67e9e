//! The 128-byte segment header at offset 0 of every segment file.
//!
//! ```text
//! offset size field
//!      0    8 magic            "ANNALSEG"
//!      8    2 format_version   u16 (1, 2 or 3)
//!     10    2 header_len       u16 (128)
//!     12    4 flags            u32, reserved, 0
//!     16    8 base_position    u64, position of the segment's first event
//!     24    8 salt             u64, random; seeds every frame checksum
//!     32    8 created_unix_ns  u64, creation time
//!     40    8 segment_size     u64, bytes of the whole file
//!     48   32 chain_start      hash-chain value before the first batch
//!     80   32 durable mark     version 2: two slots (see `durable_mark`); version 1: zero
//!    112   12 reserved         zero
//!    124    4 header_crc       CRC-32 (IEEE) of bytes 0..124, the durable mark read as zero
//! ```
//!
//! The durable mark is the one part of a header that changes after the
//! segment is created, so the checksum leaves it out (it has checksums of
//! its own). A version-1 header has zeroes there, so one rule checks both.

use super::durable_mark::DURABLE_MARK_RANGE;
use super::{
    CHAIN_LEN, FORMAT_VERSION, MAX_SEGMENT_SIZE_BYTES, MIN_SEGMENT_SIZE_BYTES, SEGMENT_HEADER_LEN,
    SEGMENT_SIZE_ALIGN, le_u16, le_u32, le_u64,
};

/// Magic bytes that open every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ANNALSEG";

const CRC_AT: usize = 124;
const _: () = assert!(CRC_AT + 4 == SEGMENT_HEADER_LEN);
const _: () = assert!(48 + CHAIN_LEN <= CRC_AT);

/// The decoded segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version the segment was written with.
    pub format_version: u16,
    /// Global position of the first event in the segment.
    pub base_position: u64,
    /// Random per-segment value mixed into every frame checksum.
    pub salt: u64,
    /// When the segment was created, in nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Size of the whole segment file in bytes.
    pub segment_size_bytes: u64,
    /// The hash-chain value before the first batch of this segment.
    pub chain_start: [u8; CHAIN_LEN],
}

/// Why a header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    Truncated,
    /// The magic bytes are wrong: not a segment file.
    BadMagic,
    /// The header checksum does not match its bytes.
    BadChecksum,
    /// A version this build cannot read.
    UnsupportedVersion(u16),
    /// A field holds an impossible value.
    BadField(&'static str),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Truncated => write!(f, "segment header is truncated"),
            HeaderError::BadMagic => write!(f, "segment header magic is not \"ANNALSEG\""),
            HeaderError::BadChecksum => write!(f, "segment header checksum does not match"),
            HeaderError::UnsupportedVersion(v) => write!(
                f,
                "segment format version {v} is newer than this build reads (up to {FORMAT_VERSION})"
            ),
            HeaderError::BadField(field) => write!(f, "segment header field {field} is invalid"),
        }
    }
}

impl SegmentHeader {
    /// Encodes the header into its 128 bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..10].copy_from_slice(&self.format_version.to_le_bytes());
        out[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        // 12..16 flags: reserved, zero.
        out[16..24].copy_from_slice(&self.base_position.to_le_bytes());
        out[24..32].copy_from_slice(&self.salt.to_le_bytes());
        out[32..40].copy_from_slice(&self.created_unix_ns.to_le_bytes());
        out[40..48].copy_from_slice(&self.segment_size_bytes.to_le_bytes());
        out[48..48 + CHAIN_LEN].copy_from_slice(&self.chain_start);
        let crc = header_crc(&out);
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and validates a header from the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if bytes.len() < SEGMENT_HEADER_LEN {
            return Err(HeaderError::Truncated);
        }
        let bytes = &bytes[..SEGMENT_HEADER_LEN];
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if header_crc(bytes) != le_u32(bytes, CRC_AT) {
            return Err(HeaderError::BadChecksum);
        }
        let format_version = le_u16(bytes, 8);
        if format_version == 0 || format_version > FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(format_version));
        }
        if format_version == 1 && bytes[DURABLE_MARK_RANGE].iter().any(|&b| b != 0) {
            // Version 1 had no durable mark: these bytes were reserved.
            return Err(HeaderError::BadField("reserved"));
        }
        if bytes[DURABLE_MARK_RANGE.end..CRC_AT]
            .iter()
            .any(|&b| b != 0)
        {
            return Err(HeaderError::BadField("reserved"));
        }
        if le_u16(bytes, 10) as usize != SEGMENT_HEADER_LEN {
            return Err(HeaderError::BadField("header_len"));
        }
        if le_u32(bytes, 12) != 0 {
            return Err(HeaderError::BadField("flags"));
        }
        let segment_size_bytes = le_u64(bytes, 40);
        if !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&segment_size_bytes)
            || !segment_size_bytes.is_multiple_of(SEGMENT_SIZE_ALIGN)
        {
            return Err(HeaderError::BadField("segment_size"));
        }
        let mut chain_start = [0u8; CHAIN_LEN];
        chain_start.copy_from_slice(&bytes[48..48 + CHAIN_LEN]);
        Ok(SegmentHeader {
            format_version,
            base_position: le_u64(bytes, 16),
            salt: le_u64(bytes, 24),
            created_unix_ns: le_u64(bytes, 32),
            segment_size_bytes,
            chain_start,
        })
    }
}

/// CRC-32 of bytes 0..124 with the durable mark read as zero.
fn header_crc(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..DURABLE_MARK_RANGE.start]);
    hasher.update(&[0u8; DURABLE_MARK_RANGE.end - DURABLE_MARK_RANGE.start]);
    hasher.update(&bytes[DURABLE_MARK_RANGE.end..CRC_AT]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentHeader {
        SegmentHeader {
            format_version: FORMAT_VERSION,
            base_position: 42,
            salt: 0xDEAD_BEEF_0123_4567,
            created_unix_ns: 1_700_000_000_000_000_000,
            segment_size_bytes: 1 << 20,
            chain_start: [7u8; CHAIN_LEN],
        }
    }

    #[test]
    fn header_round_trips() {
        let header = sample();
        assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let bytes = sample().encode();
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            if DURABLE_MARK_RANGE.contains(&(bit / 8)) {
                // The durable mark has checksums of its own (durable_mark.rs).
                continue;
            }
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SegmentHeader::decode(&flipped).is_err(),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn a_version_1_header_must_have_no_durable_mark() {
        let mut header = sample();
        header.format_version = 1;
        let mut bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        bytes[DURABLE_MARK_RANGE.start] = 1;
        assert_eq!(
            SegmentHeader::decode(&bytes),
            Err(HeaderError::BadField("reserved"))
        );
    }

    #[test]
    fn a_segment_size_must_be_a_multiple_of_4096() {
        let mut header = sample();
        header.segment_size_bytes = (1 << 20) + 8;
        assert_eq!(
            SegmentHeader::decode(&header.encode()),
            Err(HeaderError::BadField("segment_size"))
        );
    }

    #[test]
    fn truncated_and_foreign_headers_are_rejected() {
        let bytes = sample().encode();
        assert_eq!(
            SegmentHeader::decode(&bytes[..100]),
            Err(HeaderError::Truncated)
        );
        assert_eq!(
            SegmentHeader::decode(&[0u8; 128]),
            Err(HeaderError::BadMagic)
        );
    }
}
