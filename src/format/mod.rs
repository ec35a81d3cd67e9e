//! The on-disk format, as pure functions over byte slices: no file, no
//! mapping, no clock. Everything here can be tested and fuzzed alone, and
//! `docs/format.md` describes exactly what these functions read and write.
//!
//! Layout of a segment file (all integers little-endian, fixed width):
//!
//! ```text
//! [segment header: 128 bytes][frame][frame]...[zeroes...][footer: 128 bytes]
//! ```
//!
//! The data area runs from [`SEGMENT_HEADER_LEN`] to
//! `segment_size - FOOTER_LEN`. Frames start at multiples of 8 bytes. The
//! footer is written once, when the segment is sealed.

pub mod batch;
pub mod body;
pub mod chain;
pub mod checkpoint;
pub mod durable_mark;
pub mod footer;
pub mod frame;
pub mod header;
pub mod index_file;
pub mod key_file;
pub mod retention;
pub mod scan;
pub mod sealed_data;
pub mod segment_list;
pub mod settings;
pub mod snapshot;
pub mod stream_metadata;
pub mod tree_record;

/// The format version new segments are written with, and the newest this
/// build reads. Version 2 added the durable mark to the segment header
/// (`durable_mark`); version 3 added the subject to event bodies
/// ([`SUBJECT_FORMAT_VERSION`]); version 4 lets one batch write several
/// streams ([`MULTI_STREAM_FORMAT_VERSION`]). Versions 1 to 3 are still read.
pub const FORMAT_VERSION: u16 = 4;

/// The first format version whose event bodies hold a subject (12 elements
/// instead of 11; [`body::event_array_len`]). An event with a subject is
/// only ever written to a segment of this version or later, so a build that
/// predates it refuses such a segment by its header version instead of
/// misreading its bodies as damage.
pub const SUBJECT_FORMAT_VERSION: u16 = 3;

/// The first format version in which one batch may hold events of several
/// streams (an atomic append to several streams): one run of consecutive
/// versions per stream, no stream twice ([`scan::read_batch`]). A batch of
/// several streams is only ever written to a segment of this version or
/// later, so a build that predates it refuses the segment by its header
/// version instead of refusing the batch as damage; and in an older
/// segment such a batch is damage.
pub const MULTI_STREAM_FORMAT_VERSION: u16 = 4;

/// Bytes of the fixed segment header at offset 0 of every segment.
pub const SEGMENT_HEADER_LEN: usize = 128;

/// Bytes of the footer at the very end of every segment file.
pub const FOOTER_LEN: usize = 128;

/// Frames start at offsets that are multiples of this, so that the first
/// word of a frame can be published with one aligned atomic store.
pub const FRAME_ALIGN: usize = 8;

/// Length of the hash-chain value (SHA-256).
pub const CHAIN_LEN: usize = 32;

/// The smallest segment file annals creates or accepts.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 64 * 1024;

/// The largest segment file: frame offsets inside a segment fit in a `u32`.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1 << 31;

/// Segment sizes are multiples of this: whole pages, as they are
/// preallocated and mapped (`docs/format.md` states it; headers check it).
pub const SEGMENT_SIZE_ALIGN: u64 = 4096;

const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(FOOTER_LEN.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(MIN_SEGMENT_SIZE_BYTES as usize > SEGMENT_HEADER_LEN + FOOTER_LEN);

/// Bytes of the data area of a segment of `segment_size_bytes`.
pub fn data_capacity(segment_size_bytes: u64) -> u64 {
    segment_size_bytes - (SEGMENT_HEADER_LEN + FOOTER_LEN) as u64
}

/// Offset at which the data area of a segment of `segment_size_bytes` ends
/// (and its footer begins).
pub fn data_end(segment_size_bytes: u64) -> u64 {
    segment_size_bytes - FOOTER_LEN as u64
}

/// Rounds `n` up to the next multiple of [`FRAME_ALIGN`].
pub const fn align_up(n: usize) -> usize {
    (n + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// Reads a little-endian `u16` at `at`. The caller has checked the bounds.
pub(crate) fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Reads a little-endian `u32` at `at`. The caller has checked the bounds.
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Reads a little-endian `u64` at `at`. The caller has checked the bounds.
pub(crate) fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Name of the archive push's progress file in the store directory
/// (`annals.archive`, `docs/archiving.md`): derived data, written by
/// `annals archive push` (feature `object-storage`); named here so that
/// every build recognizes its temporary file.
pub const ARCHIVE_PROGRESS_FILE_NAME: &str = "annals.archive";

/// The file name of the segment whose first event has `base_position`:
/// twenty zero-padded decimal digits, so that names sort like positions.
pub fn segment_file_name(base_position: u64) -> String {
    position_file_name(base_position, "seg")
}

/// The base position encoded in a segment file name, or `None` when the name
/// is not exactly twenty digits followed by `.seg`.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_position_file_name(name, "seg")
}

/// A file named by a position (a segment, its index file): twenty
/// zero-padded decimal digits, so that names sort like positions, then
/// `.` and `extension`.
pub(crate) fn position_file_name(position: u64, extension: &str) -> String {
    format!("{position:020}.{extension}")
}

/// The position in a name made by [`position_file_name`] with `extension`,
/// or `None` when the name is not exactly that.
pub(crate) fn parse_position_file_name(name: &str, extension: &str) -> Option<u64> {
    let digits = name.strip_suffix(extension)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort() {
        let names: Vec<String> = [0u64, 9, 10, 1_000_000, u64::MAX]
            .iter()
            .map(|&p| segment_file_name(p))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, p) in names.iter().zip([0u64, 9, 10, 1_000_000, u64::MAX]) {
            assert_eq!(parse_segment_file_name(name), Some(p));
        }
        assert_eq!(parse_segment_file_name("0.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000a.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000000.seg.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
    }

    #[test]
    fn align_up_rounds_to_frame_alignment() {
        assert_eq!(align_up(0), 0);
        assert_eq!(align_up(1), 8);
        assert_eq!(align_up(8), 8);
        assert_eq!(align_up(13), 16);
    }
}
