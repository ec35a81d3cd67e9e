//! The record frame: a fixed 12-byte little-endian header and a body.
//!
//! ```text
//! offset size field
//!      0    4 body_len  u32, bytes of the body
//!      4    1 kind      u8: 0 nothing written here, 1 event, 2 commit; others invalid
//!      5    1 flags     u8: bit 0 END_OF_BATCH (set on commit frames only); others 0
//!      6    2 reserved  u16, 0
//!      8    4 crc       CRC-32 (IEEE) of salt (8 bytes LE), bytes 0..8, then the body
//!     12    n body      MessagePack, see `body`
//!   12+n    p padding   zeroes up to the next multiple of 8
//! ```
//!
//! Bytes 0..8 form the *header word*. The writer stores every other byte of
//! a batch first and the header word of the batch's first frame last, so a
//! reader that sees a non-zero header word sees the whole frame (see
//! [`load_header_word`]). Kind 0 is reserved: a zeroed, preallocated tail reads
//! as "nothing written here".

use super::{FRAME_ALIGN, align_up, le_u32};

/// Bytes of the fixed frame header.
pub const FRAME_HEADER_LEN: usize = 12;

/// Flag bit: this frame ends its batch.
pub const FLAG_END_OF_BATCH: u8 = 0b0000_0001;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// One event.
    Event = 1,
    /// The commit record that closes a batch.
    Commit = 2,
}

/// A frame that passed every check, borrowed from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What the frame holds.
    pub kind: FrameKind,
    /// The body bytes (MessagePack).
    pub body: &'a [u8],
    /// Offset of the frame within the segment.
    pub offset: usize,
    /// Offset right after the frame and its padding.
    pub next_offset: usize,
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The offset is not a multiple of 8 or the header does not fit.
    Misplaced,
    /// The kind byte is not 1 or 2.
    UnknownKind(u8),
    /// Unknown flag bits, or END_OF_BATCH on an event / missing on a commit.
    BadFlags(u8),
    /// The reserved header bytes are not zero.
    ReservedNotZero,
    /// The body would run past the end of the data area.
    LengthOutOfBounds(u32),
    /// The checksum does not match (torn write, stale bytes, or damage).
    BadChecksum,
    /// Padding after the body is not zero.
    PaddingNotZero,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Misplaced => write!(f, "frame header does not fit at this offset"),
            FrameError::UnknownKind(k) => write!(f, "frame kind {k} is not a known kind"),
            FrameError::BadFlags(fl) => write!(f, "frame flags {fl:#04x} are invalid for its kind"),
            FrameError::ReservedNotZero => write!(f, "frame reserved bytes are not zero"),
            FrameError::LengthOutOfBounds(n) => {
                write!(
                    f,
                    "frame body length {n} runs past the end of the data area"
                )
            }
            FrameError::BadChecksum => write!(f, "frame checksum does not match"),
            FrameError::PaddingNotZero => write!(f, "frame padding is not zero"),
        }
    }
}

/// The result of looking at one frame position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRead<'a> {
    /// A valid frame.
    Frame(Frame<'a>),
    /// The header word is zero: nothing has been written here (yet). Also
    /// the answer at the end of the data area, and where fewer bytes than a
    /// frame header are left before it and they are zero.
    Empty,
    /// Something is written here, but it is not a valid frame.
    Invalid(FrameError),
}

/// Bytes a frame with a body of `body_len` takes, padding included.
// Used only by the codec's tests and its users outside the crate (feature
// `internals`).
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub const fn frame_len(body_len: usize) -> usize {
    align_up(FRAME_HEADER_LEN + body_len)
}

/// Loads the 8-byte header word at `offset` with acquire ordering when the
/// address is aligned (as it always is in a mapped segment), so that a
/// reader in another thread or process that sees a non-zero word also sees
/// every byte the writer stored before publishing it. Unaligned buffers
/// (tests, fuzzing) fall back to a plain read.
pub fn load_header_word(bytes: &[u8], offset: usize) -> u64 {
    let word = &bytes[offset..offset + 8];
    let ptr = word.as_ptr();
    if (ptr as usize).is_multiple_of(std::mem::align_of::<std::sync::atomic::AtomicU64>()) {
        // SAFETY: the pointer is in bounds for 8 bytes (the slice above) and
        // aligned for AtomicU64. Only a load is performed.
        let atomic = unsafe { &*(ptr as *const std::sync::atomic::AtomicU64) };
        u64::from_le(atomic.load(std::sync::atomic::Ordering::Acquire))
    } else {
        super::le_u64(word, 0)
    }
}

/// Reads and validates the frame at `offset`, which must lie before `data_end`
/// (the start of the footer area). Never panics, whatever the bytes.
pub fn read_frame(bytes: &[u8], salt: u64, offset: usize, data_end: usize) -> FrameRead<'_> {
    let data_end = data_end.min(bytes.len());
    if !offset.is_multiple_of(FRAME_ALIGN) || offset > data_end {
        return FrameRead::Invalid(FrameError::Misplaced);
    }
    if data_end - offset < FRAME_HEADER_LEN {
        // No frame fits here, so the writer never starts one: when batches
        // filled the data area to (nearly) its last byte, this is its end.
        return if bytes[offset..data_end].iter().all(|&b| b == 0) {
            FrameRead::Empty
        } else {
            FrameRead::Invalid(FrameError::Misplaced)
        };
    }
    let word = load_header_word(bytes, offset);
    if word == 0 {
        return FrameRead::Empty;
    }
    let header = word.to_le_bytes();
    let body_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let kind = match header[4] {
        1 => FrameKind::Event,
        2 => FrameKind::Commit,
        other => return FrameRead::Invalid(FrameError::UnknownKind(other)),
    };
    let flags = header[5];
    let flags_ok = match kind {
        FrameKind::Event => flags == 0,
        FrameKind::Commit => flags == FLAG_END_OF_BATCH,
    };
    if !flags_ok {
        return FrameRead::Invalid(FrameError::BadFlags(flags));
    }
    if header[6] != 0 || header[7] != 0 {
        return FrameRead::Invalid(FrameError::ReservedNotZero);
    }
    let body_start = offset + FRAME_HEADER_LEN;
    let body_end = body_start as u64 + u64::from(body_len);
    let next_offset = align_up(body_end as usize);
    if body_end > data_end as u64 || next_offset > data_end {
        return FrameRead::Invalid(FrameError::LengthOutOfBounds(body_len));
    }
    let body = &bytes[body_start..body_end as usize];
    if frame_crc(salt, &header, body) != le_u32(bytes, offset + 8) {
        return FrameRead::Invalid(FrameError::BadChecksum);
    }
    if bytes[body_end as usize..next_offset]
        .iter()
        .any(|&b| b != 0)
    {
        return FrameRead::Invalid(FrameError::PaddingNotZero);
    }
    FrameRead::Frame(Frame {
        kind,
        body,
        offset,
        next_offset,
    })
}

/// The frame checksum: CRC-32 of the salt, the header word, then the body.
pub fn frame_crc(salt: u64, header_word: &[u8; 8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(header_word);
    hasher.update(body);
    hasher.finalize()
}

/// Appends one frame to `out`: header, the body that `write_body` writes, and
/// padding. `out.len()` must be a multiple of 8 on entry and is on return.
/// Returns the offset of the frame within `out`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    salt: u64,
    kind: FrameKind,
    write_body: impl FnOnce(&mut Vec<u8>),
) -> usize {
    assert!(
        out.len().is_multiple_of(FRAME_ALIGN),
        "frames start 8-byte aligned"
    );
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    write_body(out);
    let body_len = out.len() - start - FRAME_HEADER_LEN;
    let body_len = u32::try_from(body_len).expect(
        "a frame body fits a u32: an event's fields are checked against Limits::max_event_bytes \
         (at most Limits::MAX_EVENT_BYTES, 2 GiB) before encoding, and the rest of a body is \
         a few dozen bytes",
    );
    let flags = match kind {
        FrameKind::Event => 0,
        FrameKind::Commit => FLAG_END_OF_BATCH,
    };
    let mut header = [0u8; 8];
    header[0..4].copy_from_slice(&body_len.to_le_bytes());
    header[4] = kind as u8;
    header[5] = flags;
    let crc = frame_crc(salt, &header, &out[start + FRAME_HEADER_LEN..]);
    out[start..start + 8].copy_from_slice(&header);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    out.resize(align_up(out.len()), 0);
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: u64 = 0x0123_4567_89AB_CDEF;

    fn one_frame(kind: FrameKind, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, SALT, kind, |o| o.extend_from_slice(body));
        out.resize(out.len() + 64, 0);
        out
    }

    #[test]
    fn frame_round_trips() {
        let bytes = one_frame(FrameKind::Event, b"hello");
        match read_frame(&bytes, SALT, 0, bytes.len()) {
            FrameRead::Frame(frame) => {
                assert_eq!(frame.kind, FrameKind::Event);
                assert_eq!(frame.body, b"hello");
                assert_eq!(frame.next_offset, 24);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn zero_word_is_empty() {
        assert_eq!(read_frame(&[0u8; 64], SALT, 0, 64), FrameRead::Empty);
    }

    #[test]
    fn the_end_of_a_full_data_area_is_empty() {
        let bytes = [0u8; 64];
        assert_eq!(read_frame(&bytes, SALT, 64, 64), FrameRead::Empty);
        assert_eq!(read_frame(&bytes, SALT, 56, 64), FrameRead::Empty);
        let mut dirty = bytes;
        dirty[60] = 1;
        assert_eq!(
            read_frame(&dirty, SALT, 56, 64),
            FrameRead::Invalid(FrameError::Misplaced)
        );
        assert_eq!(
            read_frame(&bytes, SALT, 72, 64),
            FrameRead::Invalid(FrameError::Misplaced)
        );
    }

    #[test]
    fn wrong_salt_is_a_bad_checksum() {
        let bytes = one_frame(FrameKind::Commit, b"x");
        assert_eq!(
            read_frame(&bytes, SALT ^ 1, 0, bytes.len()),
            FrameRead::Invalid(FrameError::BadChecksum)
        );
    }

    #[test]
    fn every_bit_flip_in_header_and_body_is_rejected() {
        let bytes = one_frame(FrameKind::Event, b"some body bytes");
        let end = frame_len(15);
        for bit in 0..end * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(
                    read_frame(&flipped, SALT, 0, flipped.len()),
                    FrameRead::Frame(_)
                ),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn reserved_kind_and_bad_flags_are_rejected() {
        let mut bytes = one_frame(FrameKind::Event, b"b");
        bytes[4] = 3;
        assert_eq!(
            read_frame(&bytes, SALT, 0, bytes.len()),
            FrameRead::Invalid(FrameError::UnknownKind(3))
        );
        let mut bytes = one_frame(FrameKind::Event, b"b");
        bytes[5] = FLAG_END_OF_BATCH;
        assert_eq!(
            read_frame(&bytes, SALT, 0, bytes.len()),
            FrameRead::Invalid(FrameError::BadFlags(FLAG_END_OF_BATCH))
        );
    }

    #[test]
    fn truncated_and_oversized_lengths_are_rejected() {
        let bytes = one_frame(FrameKind::Event, &[1u8; 100]);
        // The data area ends in the middle of the body.
        assert!(matches!(
            read_frame(&bytes, SALT, 0, 50),
            FrameRead::Invalid(FrameError::LengthOutOfBounds(100))
        ));
        let mut huge = bytes.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_frame(&huge, SALT, 0, huge.len()),
            FrameRead::Invalid(FrameError::LengthOutOfBounds(_))
        ));
        assert_eq!(
            read_frame(&bytes, SALT, 4, bytes.len()),
            FrameRead::Invalid(FrameError::Misplaced)
        );
        assert_eq!(
            read_frame(&bytes, SALT, 0, 8),
            FrameRead::Invalid(FrameError::Misplaced)
        );
    }

    /// Regression: a segment whose batches fill its data area to the last
    /// byte could not be reopened ("frame header does not fit at this offset").
    #[test]
    fn the_exact_end_of_the_data_area_is_empty() {
        let bytes = one_frame(FrameKind::Event, b"b");
        let end = frame_len(1);
        assert_eq!(read_frame(&bytes, SALT, end, end), FrameRead::Empty);
        assert_eq!(read_frame(&bytes, SALT, end, end + 8), FrameRead::Empty);
        let mut dirty = bytes.clone();
        dirty[end + 1] = 1;
        assert_eq!(
            read_frame(&dirty, SALT, end, end + 8),
            FrameRead::Invalid(FrameError::Misplaced)
        );
    }
}
