//! The 128-byte footer at the end of a sealed segment file.
//!
//! ```text
//! offset size field
//!      0    8 magic            "ANNALEND"
//!      8    8 event_count      u64, events in the segment (at least 1)
//!     16    8 batch_count      u64, batches in the segment (at least 1)
//!     24    8 last_position    u64, position of the last event
//!     32    8 data_len         u64, bytes of frames after the header
//!     40    4 contents_crc     CRC-32 of salt (8 bytes LE) then the data bytes
//!     44    4 sealed           u32, 1
//!     48   32 chain_end        hash-chain value after the last batch
//!     80    8 sealed_unix_ns   u64, when the segment was sealed
//!     88   36 reserved         zero
//!    124    4 footer_crc       CRC-32 of bytes 0..124
//! ```
//!
//! An unsealed segment has zeroes here; the footer area is never used for
//! frames.

use super::{CHAIN_LEN, FOOTER_LEN, le_u32, le_u64};

/// Magic bytes that open a footer.
pub const FOOTER_MAGIC: [u8; 8] = *b"ANNALEND";

const CRC_AT: usize = 124;
const _: () = assert!(CRC_AT + 4 == FOOTER_LEN);

/// The decoded footer of a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFooter {
    /// Number of events in the segment.
    pub event_count: u64,
    /// Number of batches in the segment.
    pub batch_count: u64,
    /// Position of the last event in the segment.
    pub last_position: u64,
    /// Bytes of frames, counted from the end of the header.
    pub data_len: u64,
    /// CRC-32 of the salt followed by the data bytes.
    pub contents_crc: u32,
    /// Hash-chain value after the segment's last batch.
    pub chain_end: [u8; CHAIN_LEN],
    /// When the segment was sealed, in nanoseconds since the Unix epoch.
    pub sealed_unix_ns: u64,
}

/// What the footer area of a segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FooterState {
    /// All zero: the segment is not sealed.
    Unsealed,
    /// A valid footer: the segment is sealed.
    Sealed(SegmentFooter),
    /// Neither zero nor a valid footer: a torn or damaged footer.
    Invalid(&'static str),
}

impl SegmentFooter {
    /// Encodes the footer into its 128 bytes.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[0..8].copy_from_slice(&FOOTER_MAGIC);
        out[8..16].copy_from_slice(&self.event_count.to_le_bytes());
        out[16..24].copy_from_slice(&self.batch_count.to_le_bytes());
        out[24..32].copy_from_slice(&self.last_position.to_le_bytes());
        out[32..40].copy_from_slice(&self.data_len.to_le_bytes());
        out[40..44].copy_from_slice(&self.contents_crc.to_le_bytes());
        out[44..48].copy_from_slice(&1u32.to_le_bytes());
        out[48..48 + CHAIN_LEN].copy_from_slice(&self.chain_end);
        out[80..88].copy_from_slice(&self.sealed_unix_ns.to_le_bytes());
        let crc = crc32fast::hash(&out[..CRC_AT]);
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads the footer area (exactly the last [`FOOTER_LEN`] bytes of a segment).
    pub fn decode(bytes: &[u8]) -> FooterState {
        if bytes.len() != FOOTER_LEN {
            return FooterState::Invalid("footer area has the wrong length");
        }
        if bytes.iter().all(|&b| b == 0) {
            return FooterState::Unsealed;
        }
        if bytes[0..8] != FOOTER_MAGIC {
            return FooterState::Invalid("footer magic is not \"ANNALEND\"");
        }
        if crc32fast::hash(&bytes[..CRC_AT]) != le_u32(bytes, CRC_AT) {
            return FooterState::Invalid("footer checksum does not match");
        }
        if le_u32(bytes, 44) != 1 {
            return FooterState::Invalid("footer sealed flag is not 1");
        }
        let event_count = le_u64(bytes, 8);
        let batch_count = le_u64(bytes, 16);
        // Sync markers are batches of no events, so a segment may hold more
        // batches than events.
        if event_count == 0 || batch_count == 0 {
            return FooterState::Invalid("footer event or batch count is impossible");
        }
        let mut chain_end = [0u8; CHAIN_LEN];
        chain_end.copy_from_slice(&bytes[48..48 + CHAIN_LEN]);
        FooterState::Sealed(SegmentFooter {
            event_count,
            batch_count,
            last_position: le_u64(bytes, 24),
            data_len: le_u64(bytes, 32),
            contents_crc: le_u32(bytes, 40),
            chain_end,
            sealed_unix_ns: le_u64(bytes, 80),
        })
    }
}

/// CRC-32 of a segment's data bytes, seeded by its salt, as stored in the footer.
pub fn contents_crc(salt: u64, data: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(data);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentFooter {
        SegmentFooter {
            event_count: 10,
            batch_count: 3,
            last_position: 109,
            data_len: 4096,
            contents_crc: 0x1234_5678,
            chain_end: [9u8; CHAIN_LEN],
            sealed_unix_ns: 5,
        }
    }

    #[test]
    fn footer_round_trips() {
        let footer = sample();
        assert_eq!(
            SegmentFooter::decode(&footer.encode()),
            FooterState::Sealed(footer)
        );
    }

    #[test]
    fn more_batches_than_events_is_valid() {
        // One event per append, and a sync marker from each close.
        let footer = SegmentFooter {
            event_count: 2,
            batch_count: 4,
            ..sample()
        };
        assert_eq!(
            SegmentFooter::decode(&footer.encode()),
            FooterState::Sealed(footer)
        );
    }

    #[test]
    fn zeroes_mean_unsealed_and_flips_are_invalid() {
        assert_eq!(
            SegmentFooter::decode(&[0u8; FOOTER_LEN]),
            FooterState::Unsealed
        );
        let bytes = sample().encode();
        for bit in 0..FOOTER_LEN * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(SegmentFooter::decode(&flipped), FooterState::Invalid(_)),
                "bit {bit} flip accepted"
            );
        }
    }
}
