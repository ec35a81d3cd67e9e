//! The durable mark: how far a segment's data was known to be durable,
//! recorded in the segment header (format version 2), outside the data area.
//!
//! The data area alone cannot tell a torn write from damage to synced data
//! when the damage covers every commit record that would vouch for it (bytes
//! zeroed over the last batches, or a file cut short). The mark can: the
//! writer stores it only *after* a sync of the data below it returned, so a
//! mark on disk never claims more than was durable, and the next sync (or the
//! kernel's write-back) carries it to disk.
//!
//! Two 16-byte slots in the header hold the mark; the writer alternates
//! between them, so a torn write of one slot leaves the other, older value.
//!
//! ```text
//! slot (16 bytes), slot 0 at header offset 80, slot 1 at 96
//! offset size field
//!      0    4 sequence     u32, incremented by each new mark; the higher valid one wins
//!      4    4 durable_end  u32, offset in the segment file: every byte below it was synced
//!      8    4 reserved     0
//!     12    4 crc          CRC-32 of salt (8 bytes, LE) || bytes 0..12 of the slot
//! ```
//!
//! A slot of all zeroes is empty. A header whose slots are both empty or
//! invalid claims nothing (as every version-1 header does).

use super::{FRAME_ALIGN, SEGMENT_HEADER_LEN, le_u32};

/// Bytes of one slot.
pub const DURABLE_MARK_SLOT_LEN: usize = 16;

/// Offsets of the two slots within the segment header.
pub const DURABLE_MARK_SLOTS: [usize; 2] = [80, 96];

/// The header bytes the slots occupy; the header checksum reads them as zero.
pub const DURABLE_MARK_RANGE: std::ops::Range<usize> = 80..112;

const _: () = assert!(DURABLE_MARK_SLOTS[0] == DURABLE_MARK_RANGE.start);
const _: () = assert!(DURABLE_MARK_SLOTS[1] + DURABLE_MARK_SLOT_LEN == DURABLE_MARK_RANGE.end);
const _: () = assert!(DURABLE_MARK_RANGE.end <= 124);

/// A decoded mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    /// Orders marks: the valid slot with the higher sequence is current.
    pub sequence: u32,
    /// Every byte of the segment below this offset had been synced.
    pub durable_end: u32,
}

impl DurableMark {
    /// Encodes the slot for a segment with `salt`.
    pub fn encode(&self, salt: u64) -> [u8; DURABLE_MARK_SLOT_LEN] {
        let mut out = [0u8; DURABLE_MARK_SLOT_LEN];
        out[0..4].copy_from_slice(&self.sequence.to_le_bytes());
        out[4..8].copy_from_slice(&self.durable_end.to_le_bytes());
        let crc = slot_crc(salt, &out);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes one slot; `None` when it is empty or does not validate.
    pub fn decode_slot(slot: &[u8], salt: u64) -> Option<DurableMark> {
        if slot.len() != DURABLE_MARK_SLOT_LEN || slot.iter().all(|&b| b == 0) {
            return None;
        }
        if le_u32(slot, 8) != 0 || slot_crc(salt, slot) != le_u32(slot, 12) {
            return None;
        }
        Some(DurableMark {
            sequence: le_u32(slot, 0),
            durable_end: le_u32(slot, 4),
        })
    }

    /// What each slot of a header holds.
    pub fn slots(header: &[u8], salt: u64) -> [MarkSlot; 2] {
        DURABLE_MARK_SLOTS.map(|at| {
            let Some(slot) = header.get(at..at + DURABLE_MARK_SLOT_LEN) else {
                return MarkSlot::Empty;
            };
            if slot.iter().all(|&b| b == 0) {
                MarkSlot::Empty
            } else {
                Self::decode_slot(slot, salt).map_or(MarkSlot::Invalid, MarkSlot::Valid)
            }
        })
    }

    /// The current mark of a header (its first [`SEGMENT_HEADER_LEN`]
    /// bytes): the valid slot with the higher sequence, if any.
    pub fn current(header: &[u8], salt: u64) -> Option<DurableMark> {
        if header.len() < SEGMENT_HEADER_LEN {
            return None;
        }
        DURABLE_MARK_SLOTS
            .iter()
            .filter_map(|&at| Self::decode_slot(&header[at..at + DURABLE_MARK_SLOT_LEN], salt))
            .max_by_key(|mark| mark.sequence)
    }

    /// Which slot a mark with `sequence` is written to.
    pub fn slot_offset(sequence: u32) -> usize {
        DURABLE_MARK_SLOTS[(sequence % 2) as usize]
    }

    /// Whether the claimed end is possible for a segment whose data area
    /// ends at `data_end`: aligned, within the data area.
    pub fn is_plausible(&self, data_end: usize) -> bool {
        let end = self.durable_end as usize;
        end >= SEGMENT_HEADER_LEN && end <= data_end && end.is_multiple_of(FRAME_ALIGN)
    }
}

/// What one slot of the durable mark holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkSlot {
    /// All zeroes: never written.
    Empty,
    /// A valid mark.
    Valid(DurableMark),
    /// Written, but it does not validate: torn or damaged.
    Invalid,
}

fn slot_crc(salt: u64, slot: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(&slot[..12]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_higher_valid_slot_wins_and_a_torn_slot_is_ignored() {
        let salt = 7;
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        assert_eq!(DurableMark::current(&header, salt), None);
        for (sequence, end) in [(1u32, 256u32), (2, 512)] {
            let mark = DurableMark {
                sequence,
                durable_end: end,
            };
            let at = DurableMark::slot_offset(sequence);
            header[at..at + DURABLE_MARK_SLOT_LEN].copy_from_slice(&mark.encode(salt));
        }
        assert_eq!(
            DurableMark::current(&header, salt).map(|m| m.durable_end),
            Some(512)
        );
        // Tear the newer slot: the older value is current again.
        let newer = DurableMark::slot_offset(2);
        header[newer + 5] ^= 0xFF;
        assert_eq!(
            DurableMark::current(&header, salt).map(|m| m.durable_end),
            Some(256)
        );
        // Another segment's salt validates nothing.
        assert_eq!(DurableMark::current(&header, salt + 1), None);
    }

    #[test]
    fn every_bit_flip_of_a_slot_is_rejected() {
        let slot = DurableMark {
            sequence: 3,
            durable_end: 4096,
        }
        .encode(9);
        for bit in 0..DURABLE_MARK_SLOT_LEN * 8 {
            let mut flipped = slot;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(DurableMark::decode_slot(&flipped, 9), None, "bit {bit}");
        }
    }
}
