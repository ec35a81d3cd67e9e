//! The per-segment index file, `<20-digit base position>.idx`: derived data
//! that answers stream reads, command-id lookups, correlation-id queries and
//! position/time searches for one segment without scanning it. It is read
//! through a memory map and bound to the exact segment bytes it describes
//! ([`IndexBinding`]); a file that is missing, damaged or bound to other
//! bytes is rebuilt from the segment, never trusted over it.
//!
//! ```text
//! offset size field
//!      0    8 magic              "ANNALIDX"
//!      8    4 version            u32 (2)
//!     12    4 header_len         u32 (320)
//!     16    8 file_len           u64, bytes of the whole file
//!     24   96 binding            see below
//!    120  160 section table      10 entries of {offset u64, len u64}, in file order:
//!                                streams, commands, bloom, correlations,
//!                                sparse offsets, sparse timestamps, offsets, strings,
//!                                tree, tiles
//!    280   32 reserved           zero
//!    312    4 body_crc           CRC-32 of bytes 320..file_len
//!    316    4 header_crc         CRC-32 of bytes 0..316
//!
//! binding (96 bytes, also used by the checkpoint)
//!      0    8 base_position      u64
//!      8    8 salt               u64
//!     16    8 data_end           u64, segment offset right after the last batch described
//!     24    4 contents_crc       u32, CRC-32 of salt || segment bytes 128..data_end
//!     28    4 flags              u32, bit 0: sealed; other bits zero
//!     32    8 event_count        u64
//!     40    8 batch_count        u64
//!     48   32 chain_end          hash-chain value after the last batch described
//!     80    8 first_timestamp_ns u64
//!     88    8 last_timestamp_ns  u64
//! ```
//!
//! Sections follow the header in table order, each starting at the next
//! multiple of 8 after the previous one (the bloom filter at the next
//! multiple of 64), zero padding between; the file ends at the end of the
//! last section, rounded up to 8. `docs/format.md` describes each section.
//!
//! Version 1 (a 256-byte header with 8 sections, no tree) is not read:
//! index files are derived data, so a version-1 file is rebuilt from its
//! segment like any other file that does not match (a writer's open writes
//! it anew; a reader keeps the index in memory).

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use super::tree_record::{TreeRecord, tile_range};
use super::{
    CHAIN_LEN, FOOTER_LEN, FRAME_ALIGN, MAX_SEGMENT_SIZE_BYTES, SEGMENT_HEADER_LEN, le_u32, le_u64,
};
use crate::proof::merkle::{HASH_LEN, Hash};

/// Magic bytes that open an index file.
pub const INDEX_FILE_MAGIC: [u8; 8] = *b"ANNALIDX";

/// The index file version this build writes and reads.
pub const INDEX_FILE_VERSION: u32 = 2;

/// One event in this many of a segment has its offset and timestamp recorded.
pub const SPARSE_STRIDE: u64 = 16;

/// Bytes of the fixed header of an index file.
pub const INDEX_HEADER_LEN: usize = 320;

/// Bytes of an encoded [`IndexBinding`].
pub const BINDING_LEN: usize = 96;

/// Bytes of one entry of the stream table.
pub const STREAM_ENTRY_LEN: usize = 32;

/// Bytes of one entry of the command table.
pub const COMMAND_ENTRY_LEN: usize = 48;

/// Bytes of one entry of the correlation table.
pub const CORRELATION_ENTRY_LEN: usize = 16;

/// Bytes of one block of the command Bloom filter: one cache line.
pub const BLOOM_BLOCK_LEN: usize = 64;

/// Commands per Bloom block (16 bits per command).
pub const BLOOM_COMMANDS_PER_BLOCK: usize = 32;

/// Bits probed (and set) per command, all in one block.
pub const BLOOM_PROBES: u32 = 4;

const BINDING_AT: usize = 24;
const SECTIONS_AT: usize = BINDING_AT + BINDING_LEN;
const SECTION_COUNT: usize = 10;
const SECTION_ENTRY_LEN: usize = 16;
/// Zero bytes between the section table and the checksums, for sections
/// to come (two more entries).
const RESERVED_AT: usize = SECTIONS_AT + SECTION_COUNT * SECTION_ENTRY_LEN;
const RESERVED_LEN: usize = 32;
const BODY_CRC_AT: usize = RESERVED_AT + RESERVED_LEN;
const HEADER_CRC_AT: usize = BODY_CRC_AT + 4;
const _: () = assert!(HEADER_CRC_AT + 4 == INDEX_HEADER_LEN);
const _: () = assert!(INDEX_HEADER_LEN.is_multiple_of(BLOOM_BLOCK_LEN));
const _: () = assert!(BLOOM_COMMANDS_PER_BLOCK * 16 == BLOOM_BLOCK_LEN * 8);

// Section numbers, in file order.
const STREAMS: usize = 0;
const COMMANDS: usize = 1;
const BLOOM: usize = 2;
const CORRELATIONS: usize = 3;
const SPARSE_OFFSETS: usize = 4;
const SPARSE_TIMESTAMPS: usize = 5;
const OFFSETS: usize = 6;
const STRINGS: usize = 7;
const TREE: usize = 8;
const TILES: usize = 9;

/// Alignment of each section's start.
const SECTION_ALIGN: [usize; SECTION_COUNT] = [8, 8, BLOOM_BLOCK_LEN, 8, 8, 8, 8, 8, 8, 8];

/// Size of one element of each section: its length is a multiple of it.
const SECTION_ELEMENT_LEN: [usize; SECTION_COUNT] = [
    STREAM_ENTRY_LEN,
    COMMAND_ENTRY_LEN,
    BLOOM_BLOCK_LEN,
    CORRELATION_ENTRY_LEN,
    4,
    8,
    4,
    1,
    1,
    HASH_LEN,
];

/// The sections' names, in file order (for messages and tools).
pub const SECTION_NAMES: [&str; SECTION_COUNT] = [
    "stream table",
    "command table",
    "bloom filter",
    "correlation table",
    "sparse offsets",
    "sparse timestamps",
    "offsets",
    "strings",
    "tree",
    "tiles",
];

/// The file name of the index of the segment whose first event has
/// `base_position`: twenty zero-padded digits, then `.idx`.
pub fn index_file_name(base_position: u64) -> String {
    super::position_file_name(base_position, "idx")
}

/// The base position in an index file name, or `None` when the name is not
/// exactly twenty digits followed by `.idx`.
pub fn parse_index_file_name(name: &str) -> Option<u64> {
    super::parse_position_file_name(name, "idx")
}

/// The hash the index file sorts and finds names, command ids and
/// correlation ids by. Fixed forever (it is on disk): FNV-1a 64 over the
/// bytes, then the 64-bit finalizer of MurmurHash3 (`fmix64`), so that the
/// high bits (which pick a Bloom block) depend on every input bit.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    hash
}

/// The exact segment bytes an index file (or a checkpoint entry) describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexBinding {
    /// Position of the segment's first event (its file name).
    pub base_position: u64,
    /// The segment's salt, from its header.
    pub salt: u64,
    /// Segment offset right after the last batch described.
    pub data_end: u64,
    /// `footer::contents_crc(salt, &segment[SEGMENT_HEADER_LEN..data_end])`.
    pub contents_crc: u32,
    /// Events described.
    pub event_count: u64,
    /// Batches described, sync markers (commit records of no events) included.
    pub batch_count: u64,
    /// Hash-chain value after the last batch described.
    pub chain_end: [u8; CHAIN_LEN],
    /// Timestamp of the first event described (0 when there is none).
    pub first_timestamp_ns: u64,
    /// Timestamp of the last event described (0 when there is none).
    pub last_timestamp_ns: u64,
    /// `true`: the whole of a sealed segment; `false`: a prefix of the
    /// active one.
    pub sealed: bool,
}

impl IndexBinding {
    /// Encodes the binding into its 96 bytes.
    pub fn encode(&self) -> [u8; BINDING_LEN] {
        let mut out = [0u8; BINDING_LEN];
        out[0..8].copy_from_slice(&self.base_position.to_le_bytes());
        out[8..16].copy_from_slice(&self.salt.to_le_bytes());
        out[16..24].copy_from_slice(&self.data_end.to_le_bytes());
        out[24..28].copy_from_slice(&self.contents_crc.to_le_bytes());
        out[28..32].copy_from_slice(&u32::from(self.sealed).to_le_bytes());
        out[32..40].copy_from_slice(&self.event_count.to_le_bytes());
        out[40..48].copy_from_slice(&self.batch_count.to_le_bytes());
        out[48..48 + CHAIN_LEN].copy_from_slice(&self.chain_end);
        out[80..88].copy_from_slice(&self.first_timestamp_ns.to_le_bytes());
        out[88..96].copy_from_slice(&self.last_timestamp_ns.to_le_bytes());
        out
    }

    /// Decodes a binding (exactly [`BINDING_LEN`] bytes) and checks that
    /// its fields are possible. `at` is where it sits in its file, for errors.
    ///
    /// # Errors
    /// When `bytes` has the wrong length, the flags hold anything but the
    /// sealed bit, `data_end` lies outside the data area of the largest
    /// segment, or the positions overflow.
    pub fn decode(bytes: &[u8], at: u64) -> Result<IndexBinding, IndexFileError> {
        if bytes.len() != BINDING_LEN {
            return Err(IndexFileError::new(at, "binding has the wrong length"));
        }
        let flags = le_u32(bytes, 28);
        if flags > 1 {
            return Err(IndexFileError::new(at + 28, "binding flags are not 0 or 1"));
        }
        let binding = IndexBinding {
            base_position: le_u64(bytes, 0),
            salt: le_u64(bytes, 8),
            data_end: le_u64(bytes, 16),
            contents_crc: le_u32(bytes, 24),
            event_count: le_u64(bytes, 32),
            batch_count: le_u64(bytes, 40),
            chain_end: bytes[48..48 + CHAIN_LEN].try_into().unwrap_or_default(),
            first_timestamp_ns: le_u64(bytes, 80),
            last_timestamp_ns: le_u64(bytes, 88),
            sealed: flags == 1,
        };
        if binding.data_end < SEGMENT_HEADER_LEN as u64
            || binding.data_end > MAX_SEGMENT_SIZE_BYTES - FOOTER_LEN as u64
        {
            return Err(IndexFileError::new(
                at + 16,
                format!(
                    "binding data_end {} is outside any segment's data area",
                    binding.data_end
                ),
            ));
        }
        if binding
            .base_position
            .checked_add(binding.event_count)
            .is_none()
        {
            return Err(IndexFileError::new(
                at + 32,
                "binding base_position + event_count overflows",
            ));
        }
        Ok(binding)
    }
}

/// Everything an index file holds, as [`encode`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexContents<'a> {
    /// The segment bytes described.
    pub binding: IndexBinding,
    /// One entry per stream with events in the segment, in any order.
    pub streams: Vec<StreamEntry<'a>>,
    /// Frame offset of relative event `i * SPARSE_STRIDE`, for each `i`.
    pub sparse_offsets: &'a [u32],
    /// The timestamp of the same events.
    pub sparse_timestamps: &'a [u64],
    /// The commands (appends with a command id) of the segment, in any order.
    pub commands: Vec<CommandEntry<'a>>,
    /// Runs of events carrying a correlation id, in log order.
    pub correlations: Vec<CorrelationRun>,
    /// The Merkle tree at the segment's start and at the end described, if
    /// known ([`TreeRecord`]).
    pub tree: Option<&'a TreeRecord>,
    /// The roots of the tiles wholly inside the segment ([`tile_range`]),
    /// in order; empty when not recorded (always without `tree`).
    pub tiles: &'a [Hash],
}

/// A stream's events in one segment: consecutive versions from
/// `first_version`, at ascending frame offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEntry<'a> {
    /// The stream id.
    pub name: &'a str,
    /// Version of the stream's first event in the segment (at least 1).
    pub first_version: u64,
    /// Frame offset of each of its events in the segment, ascending (at
    /// least one).
    pub offsets: &'a [u32],
}

/// What one append with a command id wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandEntry<'a> {
    /// The command id.
    pub command_id: &'a str,
    /// The stream appended to.
    pub stream: &'a str,
    /// Version of the append's first event.
    pub first_version: u64,
    /// Position of the append's first event.
    pub first_position: u64,
    /// Events the append wrote.
    pub event_count: u64,
}

/// `count` consecutive event frames from `offset` whose correlation ids
/// have `hash` ([`stable_hash`] of the id's bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationRun {
    /// [`stable_hash`] of the correlation id.
    pub hash: u64,
    /// Frame offset of the run's first event.
    pub offset: u32,
    /// Events in the run (at least 1).
    pub count: u32,
}

/// Why an index or checkpoint file was refused: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFileError {
    /// Byte offset in the file of the first bad field.
    pub offset: u64,
    /// What is wrong there.
    pub detail: String,
}

impl IndexFileError {
    pub(crate) fn new(offset: u64, detail: impl Into<String>) -> IndexFileError {
        IndexFileError {
            offset,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for IndexFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.detail, self.offset)
    }
}

impl std::error::Error for IndexFileError {}

/// A little-endian `u32` array in a file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct U32s<'a>(&'a [u8]);

/// A little-endian `u64` array in a file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct U64s<'a>(&'a [u8]);

macro_rules! le_array {
    ($name:ident, $int:ty, $width:expr) => {
        // Parts of this view only tests and tools use (feature `internals`).
        #[cfg_attr(not(feature = "internals"), allow(dead_code))]
        impl<'a> $name<'a> {
            /// A view of `bytes`, whose length must be a multiple of the
            /// element size (a shorter last element is ignored).
            pub fn new(bytes: &'a [u8]) -> $name<'a> {
                $name(&bytes[..bytes.len() - bytes.len() % $width])
            }

            /// Number of elements.
            pub fn len(&self) -> usize {
                self.0.len() / $width
            }

            /// Whether there are no elements.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Element `i`, or `None` past the end.
            pub fn get(&self, i: usize) -> Option<$int> {
                let start = i.checked_mul($width)?;
                let word = self.0.get(start..start.checked_add($width)?)?;
                Some(<$int>::from_le_bytes(word.try_into().ok()?))
            }

            /// The elements in order.
            pub fn iter(&self) -> impl DoubleEndedIterator<Item = $int> + ExactSizeIterator + 'a {
                self.0
                    .chunks_exact($width)
                    .map(|word| <$int>::from_le_bytes(word.try_into().unwrap_or_default()))
            }

            /// The elements in `range`.
            ///
            /// # Panics
            /// When `range` is decreasing or ends past [`Self::len`], like
            /// slice indexing.
            pub fn slice(&self, range: Range<usize>) -> $name<'a> {
                assert!(
                    range.start <= range.end && range.end <= self.len(),
                    "range {range:?} out of bounds for {} elements",
                    self.len()
                );
                $name(&self.0[range.start * $width..range.end * $width])
            }

            /// The index of the first element for which `pred` is false,
            /// assuming it is true for a prefix and false after (as
            /// [`slice::partition_point`]).
            pub fn partition_point(&self, mut pred: impl FnMut($int) -> bool) -> usize {
                partition_point(self.len(), |i| pred(self.get(i).unwrap_or_default()))
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }
    };
}

le_array!(U32s, u32, 4);
le_array!(U64s, u64, 8);

/// The first index in `0..len` for which `pred` is false (`pred` true for a
/// prefix, false after).
fn partition_point(len: usize, mut pred: impl FnMut(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        if pred(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

/// A stream's events in one segment.
#[derive(Debug, Clone, Copy)]
pub struct StreamEvents<'a> {
    /// Version of the first of them.
    pub first_version: u64,
    /// Their frame offsets, ascending: version `first_version + i` is at
    /// `offsets.get(i)`.
    pub offsets: U32s<'a>,
}

/// Number of Bloom blocks for `commands` commands.
fn bloom_block_count(commands: usize) -> usize {
    commands.div_ceil(BLOOM_COMMANDS_PER_BLOCK)
}

/// The block a command hash falls in, and the bit mask of each probe:
/// block `(hash * blocks) >> 64`, bits `(hash >> 9i) & 511` for `i` in 0..4.
fn bloom_probes(hash: u64, blocks: usize) -> (usize, [u16; BLOOM_PROBES as usize]) {
    let block = ((u128::from(hash) * blocks as u128) >> 64) as usize;
    let bits = std::array::from_fn(|i| ((hash >> (9 * i)) & 511) as u16);
    (block, bits)
}

/// Encodes an index file. Deterministic: the same contents (the streams,
/// commands and correlation runs as sets) always give the same bytes.
///
/// # Panics
/// When the contents break a rule [`IndexFile::parse`] checks: a stream
/// twice, a stream with no events or offsets not ascending, versions from 0,
/// event counts that disagree with the binding, offsets outside
/// `SEGMENT_HEADER_LEN..data_end` or unaligned, sparse arrays of the wrong
/// length, a correlation run of no events, or more than `u32::MAX` bytes of
/// strings. These are bugs of the caller, which derives them from the log.
pub fn encode(contents: &IndexContents<'_>) -> Vec<u8> {
    let binding = &contents.binding;
    let mut streams: Vec<(u64, StreamEntry<'_>)> = contents
        .streams
        .iter()
        .map(|s| (stable_hash(s.name.as_bytes()), *s))
        .collect();
    streams.sort_unstable_by(|a, b| (a.0, a.1.name).cmp(&(b.0, b.1.name)));
    let mut commands: Vec<(u64, CommandEntry<'_>)> = contents
        .commands
        .iter()
        .map(|c| (stable_hash(c.command_id.as_bytes()), *c))
        .collect();
    commands.sort_unstable_by(|a, b| command_order(a, b));
    let mut correlations = contents.correlations.clone();
    correlations.sort_unstable_by_key(|r| (r.hash, r.offset, r.count));

    let total_events: usize = streams.iter().map(|(_, s)| s.offsets.len()).sum();
    assert_eq!(
        total_events as u64, binding.event_count,
        "the streams' events do not add up to the binding's event_count"
    );
    let mut strings = Strings::default();
    let mut offsets: Vec<u8> = Vec::with_capacity(total_events * 4);
    let mut stream_table = Vec::with_capacity(streams.len() * STREAM_ENTRY_LEN);
    for pair in streams.windows(2) {
        assert!(
            pair[0].1.name != pair[1].1.name,
            "stream {:?} appears twice in an index",
            pair[0].1.name
        );
    }
    for (hash, stream) in &streams {
        assert!(
            !stream.offsets.is_empty() && stream.first_version >= 1,
            "stream {:?} has no events or starts at version 0",
            stream.name
        );
        assert!(
            stream
                .first_version
                .checked_add(stream.offsets.len() as u64)
                .is_some(),
            "stream {:?} versions overflow",
            stream.name
        );
        check_offsets(stream.offsets, binding.data_end, stream.name);
        let (name_offset, name_len) = strings.intern(stream.name);
        let start = to_u32(offsets.len() / 4, "events");
        stream_table.extend_from_slice(&hash.to_le_bytes());
        stream_table.extend_from_slice(&stream.first_version.to_le_bytes());
        stream_table.extend_from_slice(&name_offset.to_le_bytes());
        stream_table.extend_from_slice(&name_len.to_le_bytes());
        stream_table.extend_from_slice(&start.to_le_bytes());
        stream_table.extend_from_slice(&to_u32(stream.offsets.len(), "events").to_le_bytes());
        for offset in stream.offsets {
            offsets.extend_from_slice(&offset.to_le_bytes());
        }
    }

    let mut command_table = Vec::with_capacity(commands.len() * COMMAND_ENTRY_LEN);
    let blocks = bloom_block_count(commands.len());
    let mut bloom = vec![0u8; blocks * BLOOM_BLOCK_LEN];
    for (hash, command) in &commands {
        let (id_offset, id_len) = strings.intern(command.command_id);
        let (stream_offset, stream_len) = strings.intern(command.stream);
        command_table.extend_from_slice(&hash.to_le_bytes());
        command_table.extend_from_slice(&command.first_version.to_le_bytes());
        command_table.extend_from_slice(&command.first_position.to_le_bytes());
        command_table.extend_from_slice(&command.event_count.to_le_bytes());
        for field in [id_offset, id_len, stream_offset, stream_len] {
            command_table.extend_from_slice(&field.to_le_bytes());
        }
        let (block, bits) = bloom_probes(*hash, blocks);
        for bit in bits {
            bloom[block * BLOOM_BLOCK_LEN + usize::from(bit / 8)] |= 1 << (bit % 8);
        }
    }

    let mut correlation_table = Vec::with_capacity(correlations.len() * CORRELATION_ENTRY_LEN);
    for run in &correlations {
        assert!(run.count >= 1, "a correlation run has no events");
        check_offsets(&[run.offset], binding.data_end, "correlation run");
        correlation_table.extend_from_slice(&run.hash.to_le_bytes());
        correlation_table.extend_from_slice(&run.offset.to_le_bytes());
        correlation_table.extend_from_slice(&run.count.to_le_bytes());
    }

    let sparse_count = binding.event_count.div_ceil(SPARSE_STRIDE);
    assert!(
        contents.sparse_offsets.len() as u64 == sparse_count
            && contents.sparse_timestamps.len() as u64 == sparse_count,
        "sparse arrays must hold ceil(event_count / SPARSE_STRIDE) = {sparse_count} entries"
    );
    check_offsets(contents.sparse_offsets, binding.data_end, "sparse offsets");
    let sparse_offsets: Vec<u8> = contents
        .sparse_offsets
        .iter()
        .flat_map(|o| o.to_le_bytes())
        .collect();
    let sparse_timestamps: Vec<u8> = contents
        .sparse_timestamps
        .iter()
        .flat_map(|t| t.to_le_bytes())
        .collect();
    let strings = strings.bytes;
    to_u32(strings.len(), "bytes of strings");
    let tree = contents.tree.map(TreeRecord::encode).unwrap_or_default();
    if let Some(record) = contents.tree {
        assert!(
            record.start.size() == binding.base_position
                && record.end.size() == binding.base_position + binding.event_count,
            "the tree record does not span the binding's positions"
        );
    }
    assert!(
        contents.tiles.is_empty()
            || (contents.tree.is_some() && contents.tiles.len() as u64 == tile_count(binding)),
        "tiles recorded without a tree, or not one per tile of the segment"
    );
    let tiles: Vec<u8> = contents.tiles.concat();

    let sections: [&[u8]; SECTION_COUNT] = [
        &stream_table,
        &command_table,
        &bloom,
        &correlation_table,
        &sparse_offsets,
        &sparse_timestamps,
        &offsets,
        &strings,
        &tree,
        &tiles,
    ];
    let mut out = vec![0u8; INDEX_HEADER_LEN];
    for (i, section) in sections.iter().enumerate() {
        out.resize(out.len().next_multiple_of(SECTION_ALIGN[i]), 0);
        let entry = SECTIONS_AT + i * SECTION_ENTRY_LEN;
        let offset = out.len() as u64;
        out[entry..entry + 8].copy_from_slice(&offset.to_le_bytes());
        out[entry + 8..entry + 16].copy_from_slice(&(section.len() as u64).to_le_bytes());
        out.extend_from_slice(section);
    }
    out.resize(out.len().next_multiple_of(8), 0);
    out[0..8].copy_from_slice(&INDEX_FILE_MAGIC);
    out[8..12].copy_from_slice(&INDEX_FILE_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(INDEX_HEADER_LEN as u32).to_le_bytes());
    let file_len = out.len() as u64;
    out[16..24].copy_from_slice(&file_len.to_le_bytes());
    out[BINDING_AT..BINDING_AT + BINDING_LEN].copy_from_slice(&binding.encode());
    let body_crc = crc32fast::hash(&out[INDEX_HEADER_LEN..]);
    out[BODY_CRC_AT..BODY_CRC_AT + 4].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&out[..HEADER_CRC_AT]);
    out[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&header_crc.to_le_bytes());
    debug_assert_eq!(IndexFile::parse(&out).err(), None);
    out
}

/// The total order of command entries: (hash, id), then the other fields,
/// so that even duplicate ids encode deterministically.
fn command_order(a: &(u64, CommandEntry<'_>), b: &(u64, CommandEntry<'_>)) -> Ordering {
    fn key<'k>(entry: &(u64, CommandEntry<'k>)) -> (u64, &'k str, &'k str, u64, u64, u64) {
        let (hash, c) = *entry;
        (
            hash,
            c.command_id,
            c.stream,
            c.first_version,
            c.first_position,
            c.event_count,
        )
    }
    key(a).cmp(&key(b))
}

fn to_u32(n: usize, what: &str) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("an index file holds at most u32::MAX {what}"))
}

/// Asserts that frame offsets ascend strictly, are aligned, and lie in
/// `SEGMENT_HEADER_LEN..data_end`.
fn check_offsets(offsets: &[u32], data_end: u64, what: &str) {
    let mut previous: Option<u32> = None;
    for &offset in offsets {
        assert!(
            frame_offset_is_possible(offset, data_end) && previous.is_none_or(|p| p < offset),
            "{what}: frame offset {offset} is out of order, unaligned or outside the data described"
        );
        previous = Some(offset);
    }
}

fn frame_offset_is_possible(offset: u32, data_end: u64) -> bool {
    offset as usize >= SEGMENT_HEADER_LEN
        && u64::from(offset) < data_end
        && (offset as usize).is_multiple_of(FRAME_ALIGN)
}

/// The strings area being built: each distinct string once, in first-use order.
#[derive(Default)]
struct Strings<'a> {
    bytes: Vec<u8>,
    seen: std::collections::HashMap<&'a str, (u32, u32)>,
}

impl<'a> Strings<'a> {
    fn intern(&mut self, s: &'a str) -> (u32, u32) {
        if let Some(&place) = self.seen.get(s) {
            return place;
        }
        let place = (
            to_u32(self.bytes.len(), "bytes of strings"),
            to_u32(s.len(), "bytes of strings"),
        );
        self.bytes.extend_from_slice(s.as_bytes());
        self.seen.insert(s, place);
        place
    }
}

/// The checked header of an index file.
struct Header {
    binding: IndexBinding,
    sections: [Range<usize>; SECTION_COUNT],
}

/// Checks the header of an index file in O(1): magic, version, lengths,
/// header checksum, and a section table that fits `bytes.len()`.
fn read_header(bytes: &[u8]) -> Result<Header, IndexFileError> {
    if bytes.len() < INDEX_HEADER_LEN {
        return Err(IndexFileError::new(
            bytes.len() as u64,
            format!(
                "index file is {} bytes, shorter than its header",
                bytes.len()
            ),
        ));
    }
    if bytes[0..8] != INDEX_FILE_MAGIC {
        return Err(IndexFileError::new(
            0,
            "index file magic is not \"ANNALIDX\"",
        ));
    }
    if crc32fast::hash(&bytes[..HEADER_CRC_AT]) != le_u32(bytes, HEADER_CRC_AT) {
        return Err(IndexFileError::new(
            HEADER_CRC_AT as u64,
            "index file header checksum does not match",
        ));
    }
    let version = le_u32(bytes, 8);
    if version != INDEX_FILE_VERSION {
        return Err(IndexFileError::new(
            8,
            format!("index file version {version} is not {INDEX_FILE_VERSION}"),
        ));
    }
    if le_u32(bytes, 12) != INDEX_HEADER_LEN as u32 {
        return Err(IndexFileError::new(
            12,
            format!("index file header_len is not {INDEX_HEADER_LEN}"),
        ));
    }
    if bytes[RESERVED_AT..RESERVED_AT + RESERVED_LEN]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(IndexFileError::new(
            RESERVED_AT as u64,
            "index file reserved header bytes are not zero",
        ));
    }
    let file_len = le_u64(bytes, 16);
    if file_len != bytes.len() as u64 {
        return Err(IndexFileError::new(
            16,
            format!(
                "index file says it is {file_len} bytes but is {}",
                bytes.len()
            ),
        ));
    }
    let binding = IndexBinding::decode(
        &bytes[BINDING_AT..BINDING_AT + BINDING_LEN],
        BINDING_AT as u64,
    )?;
    let mut sections: [Range<usize>; SECTION_COUNT] = Default::default();
    let mut end = INDEX_HEADER_LEN;
    for (i, section) in sections.iter_mut().enumerate() {
        let entry = SECTIONS_AT + i * SECTION_ENTRY_LEN;
        let offset = le_u64(bytes, entry);
        let len = le_u64(bytes, entry + 8);
        let expected = end.next_multiple_of(SECTION_ALIGN[i]) as u64;
        let name = SECTION_NAMES[i];
        if offset != expected {
            return Err(IndexFileError::new(
                entry as u64,
                format!("index file {name} starts at {offset}, not {expected}"),
            ));
        }
        if offset > file_len
            || len > file_len - offset
            || !len.is_multiple_of(SECTION_ELEMENT_LEN[i] as u64)
        {
            return Err(IndexFileError::new(
                entry as u64 + 8,
                format!("index file {name} length {len} is impossible"),
            ));
        }
        // Both fit in `bytes.len()`, so in usize.
        *section = offset as usize..(offset + len) as usize;
        end = section.end;
    }
    if file_len != end.next_multiple_of(8) as u64 {
        return Err(IndexFileError::new(
            16,
            "index file does not end right after its last section",
        ));
    }
    Ok(Header { binding, sections })
}

/// Reads the tree section of an index file without checking the rest of
/// its body: the header as [`read_binding`] does, then the section with its
/// own checksum and against the binding's extent. `None` when the file
/// records no tree. O(the section), at most a few KiB.
///
/// # Errors
/// What is wrong with the header or the section, and where.
pub fn read_tree(bytes: &[u8]) -> Result<(IndexBinding, Option<TreeRecord>), IndexFileError> {
    let header = read_header(bytes)?;
    let binding = header.binding;
    let section = header.sections[TREE].clone();
    let tree = decode_tree(&bytes[section.clone()], &binding, section.start)?;
    Ok((binding, tree))
}

/// The number of tiles wholly inside the positions `binding` describes.
fn tile_count(binding: &IndexBinding) -> u64 {
    let range = tile_range(
        binding.base_position,
        binding.base_position + binding.event_count,
    );
    range.end - range.start
}

/// The tree section at file offset `at`, checked against `binding`.
fn decode_tree(
    bytes: &[u8],
    binding: &IndexBinding,
    at: usize,
) -> Result<Option<TreeRecord>, IndexFileError> {
    // The binding's positions do not overflow (IndexBinding::decode).
    let end_position = binding.base_position + binding.event_count;
    TreeRecord::decode(bytes, binding.base_position, end_position)
        .map_err(|e| IndexFileError::new((at + e.offset) as u64, e.to_string()))
}

/// Reads the binding of an index file in O(1): checks the magic, version,
/// header checksum and that the section table fits `bytes.len()`, but not
/// the sections. To bind a file to a segment on open without reading it all.
///
/// # Errors
/// What is wrong with the header, and where.
// Opens read the tree section too (read_tree); tools and tests use this.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn read_binding(bytes: &[u8]) -> Result<IndexBinding, IndexFileError> {
    read_header(bytes).map(|header| header.binding)
}

/// A checked index file: every accessor answers from the bytes without
/// copying them, and none can panic, whatever the bytes were.
#[derive(Debug, Clone, Copy)]
pub struct IndexFile<'a> {
    binding: IndexBinding,
    streams: &'a [u8],
    commands: &'a [u8],
    bloom: &'a [u8],
    correlations: &'a [u8],
    sparse_offsets: U32s<'a>,
    sparse_timestamps: U64s<'a>,
    offsets: U32s<'a>,
    strings: &'a [u8],
    /// The tree section, checked by parse ([`IndexFile::tree`]).
    tree: &'a [u8],
    /// The tiles section: empty, or one hash per tile.
    tiles: &'a [u8],
}

/// One decoded stream table entry (offsets as stored).
struct StreamRecord {
    hash: u64,
    first_version: u64,
    name: Range<usize>,
    start: usize,
    count: usize,
}

fn stream_record(entry: &[u8]) -> StreamRecord {
    let name_offset = le_u32(entry, 16) as usize;
    let start = le_u32(entry, 24) as usize;
    StreamRecord {
        hash: le_u64(entry, 0),
        first_version: le_u64(entry, 8),
        name: name_offset..name_offset + le_u32(entry, 20) as usize,
        start,
        count: le_u32(entry, 28) as usize,
    }
}

/// One decoded command table entry (strings as stored).
struct CommandRecord {
    hash: u64,
    first_version: u64,
    first_position: u64,
    event_count: u64,
    id: Range<usize>,
    stream: Range<usize>,
}

fn command_record(entry: &[u8]) -> CommandRecord {
    let id_offset = le_u32(entry, 32) as usize;
    let stream_offset = le_u32(entry, 40) as usize;
    CommandRecord {
        hash: le_u64(entry, 0),
        first_version: le_u64(entry, 8),
        first_position: le_u64(entry, 16),
        event_count: le_u64(entry, 24),
        id: id_offset..id_offset + le_u32(entry, 36) as usize,
        stream: stream_offset..stream_offset + le_u32(entry, 44) as usize,
    }
}

impl<'a> IndexFile<'a> {
    /// Checks a whole index file: the header, the CRC-32 of the body, and
    /// every structural rule (sections in place; stream table sorted by
    /// (hash, name) without duplicates, each hash that of its name, each
    /// stream's offsets in bounds, ascending, aligned and below `data_end`,
    /// the counts adding up to `event_count`; names and ids valid UTF-8 in
    /// bounds; commands sorted, each in the Bloom filter; correlation runs
    /// sorted and in bounds; sparse arrays of `ceil(event_count / 16)`
    /// ascending offsets). After `Ok`, no accessor can panic.
    ///
    /// # Errors
    /// The first rule the bytes break, and where.
    pub fn parse(bytes: &'a [u8]) -> Result<IndexFile<'a>, IndexFileError> {
        let header = read_header(bytes)?;
        let body_crc = crc32fast::hash(&bytes[INDEX_HEADER_LEN..]);
        if body_crc != le_u32(bytes, BODY_CRC_AT) {
            return Err(IndexFileError::new(
                BODY_CRC_AT as u64,
                "index file checksum does not match its contents",
            ));
        }
        let section = |i: usize| &bytes[header.sections[i].clone()];
        let file = IndexFile {
            binding: header.binding,
            streams: section(STREAMS),
            commands: section(COMMANDS),
            bloom: section(BLOOM),
            correlations: section(CORRELATIONS),
            sparse_offsets: U32s(section(SPARSE_OFFSETS)),
            sparse_timestamps: U64s(section(SPARSE_TIMESTAMPS)),
            offsets: U32s(section(OFFSETS)),
            strings: section(STRINGS),
            tree: section(TREE),
            tiles: section(TILES),
        };
        file.check(&header.sections)?;
        decode_tree(file.tree, &file.binding, header.sections[TREE].start)?;
        let tiles = file.tiles.len() as u64 / HASH_LEN as u64;
        if tiles != 0 && (file.tree.is_empty() || tiles != tile_count(&file.binding)) {
            return Err(IndexFileError::new(
                header.sections[TILES].start as u64,
                format!(
                    "index file has {tiles} tiles; a segment of its positions has {} (and \
                     records them only with its tree)",
                    tile_count(&file.binding)
                ),
            ));
        }
        Ok(file)
    }

    /// The structural rules of [`IndexFile::parse`], on sections in place.
    fn check(&self, sections: &[Range<usize>; SECTION_COUNT]) -> Result<(), IndexFileError> {
        let data_end = self.binding.data_end;
        let event_count = self.binding.event_count;
        let at = |section: usize, byte: usize| (sections[section].start + byte) as u64;
        if self.offsets.len() as u64 != event_count {
            return Err(IndexFileError::new(
                at(OFFSETS, 0),
                format!(
                    "index file has {} event offsets for {event_count} events",
                    self.offsets.len()
                ),
            ));
        }
        let mut previous: Option<(u64, &[u8])> = None;
        let mut next_start = 0usize;
        for (i, entry) in self.streams.chunks_exact(STREAM_ENTRY_LEN).enumerate() {
            let error = |detail: &str| {
                Err(IndexFileError::new(
                    at(STREAMS, i * STREAM_ENTRY_LEN),
                    format!("index file stream entry {i}: {detail}"),
                ))
            };
            let record = stream_record(entry);
            let Some(name) = self.string(record.name.clone()) else {
                return error("name is out of bounds or not UTF-8");
            };
            if record.hash != stable_hash(name.as_bytes()) {
                return error("hash is not the hash of the name");
            }
            let key = (record.hash, name.as_bytes());
            if previous.is_some_and(|p| p >= key) {
                return error("stream table is not sorted by (hash, name) or repeats a stream");
            }
            previous = Some(key);
            if record.count == 0 || record.first_version == 0 {
                return error("no events, or versions from 0");
            }
            if record
                .first_version
                .checked_add(record.count as u64)
                .is_none()
            {
                return error("versions overflow");
            }
            if record.start != next_start || record.count > self.offsets.len() - next_start {
                return error("offsets are not the next ones of the offsets array");
            }
            next_start += record.count;
            let offsets = self.offsets.slice(record.start..next_start);
            if !offsets_are_possible(offsets, data_end) {
                return error("frame offsets are not ascending, aligned and below data_end");
            }
        }
        if next_start != self.offsets.len() {
            return Err(IndexFileError::new(
                at(STREAMS, 0),
                "index file streams do not cover every event offset",
            ));
        }

        let command_count = self.commands.len() / COMMAND_ENTRY_LEN;
        if self.bloom.len() != bloom_block_count(command_count) * BLOOM_BLOCK_LEN {
            return Err(IndexFileError::new(
                at(BLOOM, 0),
                format!("index file bloom filter has the wrong size for {command_count} commands"),
            ));
        }
        let mut previous: Option<(u64, &[u8])> = None;
        for (i, entry) in self.commands.chunks_exact(COMMAND_ENTRY_LEN).enumerate() {
            let error = |detail: &str| {
                Err(IndexFileError::new(
                    at(COMMANDS, i * COMMAND_ENTRY_LEN),
                    format!("index file command entry {i}: {detail}"),
                ))
            };
            let record = command_record(entry);
            let (Some(id), Some(_)) = (
                self.string(record.id.clone()),
                self.string(record.stream.clone()),
            ) else {
                return error("command id or stream is out of bounds or not UTF-8");
            };
            if record.hash != stable_hash(id.as_bytes()) {
                return error("hash is not the hash of the command id");
            }
            let key = (record.hash, id.as_bytes());
            if previous.is_some_and(|p| p > key) {
                return error("command table is not sorted by (hash, id)");
            }
            previous = Some(key);
            if !self.bloom_may_contain(record.hash) {
                return error("command is missing from the bloom filter");
            }
        }

        let mut previous: Option<(u64, u32)> = None;
        for (i, entry) in self
            .correlations
            .chunks_exact(CORRELATION_ENTRY_LEN)
            .enumerate()
        {
            let key = (le_u64(entry, 0), le_u32(entry, 8));
            if previous.is_some_and(|p| p >= key)
                || le_u32(entry, 12) == 0
                || !frame_offset_is_possible(key.1, data_end)
            {
                return Err(IndexFileError::new(
                    at(CORRELATIONS, i * CORRELATION_ENTRY_LEN),
                    format!(
                        "index file correlation run {i} is out of order, empty or out of bounds"
                    ),
                ));
            }
            previous = Some(key);
        }

        let sparse_count = event_count.div_ceil(SPARSE_STRIDE);
        if self.sparse_offsets.len() as u64 != sparse_count
            || self.sparse_timestamps.len() as u64 != sparse_count
        {
            return Err(IndexFileError::new(
                at(SPARSE_OFFSETS, 0),
                format!("index file sparse arrays do not hold {sparse_count} entries each"),
            ));
        }
        if !offsets_are_possible(self.sparse_offsets, data_end) {
            return Err(IndexFileError::new(
                at(SPARSE_OFFSETS, 0),
                "index file sparse offsets are not ascending, aligned and below data_end",
            ));
        }
        Ok(())
    }

    /// The string at `range` of the strings area, if in bounds and UTF-8.
    fn string(&self, range: Range<usize>) -> Option<&'a str> {
        std::str::from_utf8(self.strings.get(range)?).ok()
    }

    /// A string that parse checked (never fails after `Ok`; `""` otherwise).
    fn checked_string(&self, range: Range<usize>) -> &'a str {
        self.string(range).unwrap_or_default()
    }

    fn bloom_may_contain(&self, hash: u64) -> bool {
        let blocks = self.bloom.len() / BLOOM_BLOCK_LEN;
        if blocks == 0 {
            return false;
        }
        let (block, bits) = bloom_probes(hash, blocks);
        let Some(block) = self
            .bloom
            .get(block * BLOOM_BLOCK_LEN..(block + 1) * BLOOM_BLOCK_LEN)
        else {
            return false;
        };
        bits.iter()
            .all(|&bit| block[usize::from(bit / 8)] & (1 << (bit % 8)) != 0)
    }

    /// The segment bytes this file describes.
    pub fn binding(&self) -> IndexBinding {
        self.binding
    }

    /// The roots of the tiles wholly inside the segment, if recorded: the
    /// index of the first ([`tile_range`]) and the hashes, in order.
    pub fn tiles(&self) -> (u64, &'a [u8]) {
        let range = tile_range(
            self.binding.base_position,
            self.binding.base_position + self.binding.event_count,
        );
        (range.start, self.tiles)
    }

    /// The Merkle tree at the segment's start and at the end described, if
    /// the file records it. Decoded anew at each call (a few KiB at most).
    // Opens read the section with read_tree; tools and tests use this.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn tree(&self) -> Option<TreeRecord> {
        // Parse checked the section: decoding it again cannot fail.
        decode_tree(self.tree, &self.binding, 0).ok().flatten()
    }

    /// Number of streams with events in the segment.
    pub fn stream_count(&self) -> usize {
        self.streams.len() / STREAM_ENTRY_LEN
    }

    fn stream_entry(&self, i: usize) -> StreamRecord {
        stream_record(&self.streams[i * STREAM_ENTRY_LEN..(i + 1) * STREAM_ENTRY_LEN])
    }

    fn stream_events(&self, record: &StreamRecord) -> StreamEvents<'a> {
        StreamEvents {
            first_version: record.first_version,
            offsets: self
                .offsets
                .slice(record.start..record.start + record.count),
        }
    }

    /// The events of stream `name` in the segment, if it has any. A binary
    /// search of the stream table by (hash, name).
    pub fn stream(&self, name: &str) -> Option<StreamEvents<'a>> {
        let key = (stable_hash(name.as_bytes()), name.as_bytes());
        let i = partition_point(self.stream_count(), |i| {
            let record = self.stream_entry(i);
            (record.hash, &self.strings[record.name]) < key
        });
        if i == self.stream_count() {
            return None;
        }
        let record = self.stream_entry(i);
        (record.hash == key.0 && &self.strings[record.name.clone()] == key.1)
            .then(|| self.stream_events(&record))
    }

    /// Every stream of the segment with its events, in table order (by
    /// hash, then name).
    pub fn streams(&self) -> impl Iterator<Item = (&'a str, StreamEvents<'a>)> + use<'a> {
        let file = *self;
        (0..file.stream_count()).map(move |i| {
            let record = file.stream_entry(i);
            (
                file.checked_string(record.name.clone()),
                file.stream_events(&record),
            )
        })
    }

    fn command_entry(&self, i: usize) -> CommandRecord {
        command_record(&self.commands[i * COMMAND_ENTRY_LEN..(i + 1) * COMMAND_ENTRY_LEN])
    }

    /// Number of commands in the segment.
    pub fn command_count(&self) -> usize {
        self.commands.len() / COMMAND_ENTRY_LEN
    }

    /// What the append with `command_id` in this segment wrote, if any (the
    /// first in the table's order should the id appear twice). A miss
    /// usually touches one cache line of the Bloom filter.
    pub fn command(&self, command_id: &str) -> Option<CommandEntry<'a>> {
        let hash = stable_hash(command_id.as_bytes());
        if !self.bloom_may_contain(hash) {
            return None;
        }
        let key = (hash, command_id.as_bytes());
        let count = self.command_count();
        let i = partition_point(count, |i| {
            let record = self.command_entry(i);
            (record.hash, &self.strings[record.id]) < key
        });
        if i == count {
            return None;
        }
        let record = self.command_entry(i);
        (record.hash == hash && &self.strings[record.id.clone()] == key.1).then(|| CommandEntry {
            command_id: self.checked_string(record.id),
            stream: self.checked_string(record.stream),
            first_version: record.first_version,
            first_position: record.first_position,
            event_count: record.event_count,
        })
    }

    /// Every command of the segment, in table order.
    pub fn commands(&self) -> impl Iterator<Item = CommandEntry<'a>> + use<'a> {
        let file = *self;
        (0..file.command_count()).map(move |i| {
            let record = file.command_entry(i);
            CommandEntry {
                command_id: file.checked_string(record.id),
                stream: file.checked_string(record.stream),
                first_version: record.first_version,
                first_position: record.first_position,
                event_count: record.event_count,
            }
        })
    }

    /// The runs of events whose correlation id has `hash`, as (frame
    /// offset, event count), offset ascending. Ids with the same hash share
    /// runs: the reader checks each event's id.
    pub fn correlated(&self, hash: u64) -> impl Iterator<Item = (u32, u32)> + use<'a> {
        let table = self.correlations;
        let count = table.len() / CORRELATION_ENTRY_LEN;
        let entry = move |i: usize| {
            let at = i * CORRELATION_ENTRY_LEN;
            (
                le_u64(table, at),
                le_u32(table, at + 8),
                le_u32(table, at + 12),
            )
        };
        let first = partition_point(count, |i| entry(i).0 < hash);
        (first..count)
            .map(entry)
            .take_while(move |run| run.0 == hash)
            .map(|(_, offset, count)| (offset, count))
    }

    /// Every correlation run, in table order (by hash, then offset).
    pub fn correlation_runs(&self) -> impl Iterator<Item = CorrelationRun> + use<'a> {
        self.correlations
            .chunks_exact(CORRELATION_ENTRY_LEN)
            .map(|entry| CorrelationRun {
                hash: le_u64(entry, 0),
                offset: le_u32(entry, 8),
                count: le_u32(entry, 12),
            })
    }

    /// Frame offset of relative event `i * SPARSE_STRIDE`, for each `i`.
    pub fn sparse_offsets(&self) -> U32s<'a> {
        self.sparse_offsets
    }

    /// Timestamp of relative event `i * SPARSE_STRIDE`, for each `i`.
    pub fn sparse_timestamps(&self) -> U64s<'a> {
        self.sparse_timestamps
    }
}

/// Whether frame offsets ascend strictly, are aligned and lie in
/// `SEGMENT_HEADER_LEN..data_end`.
fn offsets_are_possible(offsets: U32s<'_>, data_end: u64) -> bool {
    let mut previous: Option<u32> = None;
    offsets.iter().all(|offset| {
        let ok = frame_offset_is_possible(offset, data_end) && previous.is_none_or(|p| p < offset);
        previous = Some(offset);
        ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Owned contents, from which [`IndexContents`] borrows.
    #[derive(Debug, Clone)]
    struct Owned {
        binding: IndexBinding,
        streams: Vec<(String, u64, Vec<u32>)>,
        sparse_offsets: Vec<u32>,
        sparse_timestamps: Vec<u64>,
        commands: Vec<(String, String, u64, u64, u64)>,
        correlations: Vec<CorrelationRun>,
        tree: Option<TreeRecord>,
        tiles: Vec<Hash>,
    }

    /// The tree of `size` made-up leaves.
    fn frontier(size: u64) -> crate::proof::merkle::Frontier {
        let mut frontier = crate::proof::merkle::Frontier::new();
        for i in 0..size {
            frontier
                .push(crate::proof::merkle::leaf_hash(&i.to_le_bytes()))
                .unwrap();
        }
        frontier
    }

    impl Owned {
        fn contents(&self) -> IndexContents<'_> {
            IndexContents {
                binding: self.binding,
                streams: self
                    .streams
                    .iter()
                    .map(|(name, first_version, offsets)| StreamEntry {
                        name,
                        first_version: *first_version,
                        offsets,
                    })
                    .collect(),
                sparse_offsets: &self.sparse_offsets,
                sparse_timestamps: &self.sparse_timestamps,
                commands: self
                    .commands
                    .iter()
                    .map(|(id, stream, v, p, n)| CommandEntry {
                        command_id: id,
                        stream,
                        first_version: *v,
                        first_position: *p,
                        event_count: *n,
                    })
                    .collect(),
                correlations: self.correlations.clone(),
                tree: self.tree.as_ref(),
                tiles: &self.tiles,
            }
        }
    }

    /// Builds consistent contents: event `i` (of `events`, each a stream
    /// number and a correlation number) is at offset 128 + 24 i.
    fn build(
        events: &[(usize, Option<u8>)],
        stream_names: &[String],
        first_versions: &[u64],
        commands: &BTreeMap<String, (usize, u64, u64, u64)>,
        sealed: bool,
    ) -> Owned {
        let offset = |i: usize| (SEGMENT_HEADER_LEN + 24 * i) as u32;
        let mut per_stream: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for (i, (stream, _)) in events.iter().enumerate() {
            per_stream
                .entry(stream % stream_names.len())
                .or_default()
                .push(offset(i));
        }
        let streams = per_stream
            .into_iter()
            .map(|(s, offsets)| (stream_names[s].clone(), first_versions[s], offsets))
            .collect();
        let mut correlations: Vec<CorrelationRun> = Vec::new();
        for (i, (_, correlation)) in events.iter().enumerate() {
            let Some(c) = correlation else { continue };
            let hash = stable_hash(&[*c]);
            match correlations.last_mut() {
                Some(run) if run.hash == hash && run.offset + 24 * run.count == offset(i) => {
                    run.count += 1
                }
                _ => correlations.push(CorrelationRun {
                    hash,
                    offset: offset(i),
                    count: 1,
                }),
            }
        }
        let sparse: Vec<usize> = (0..events.len()).step_by(SPARSE_STRIDE as usize).collect();
        Owned {
            binding: IndexBinding {
                base_position: 1000,
                salt: 0xDEAD_BEEF,
                data_end: u64::from(offset(events.len())),
                contents_crc: 77,
                event_count: events.len() as u64,
                batch_count: events.len() as u64 + 2,
                chain_end: [5; CHAIN_LEN],
                first_timestamp_ns: 10,
                last_timestamp_ns: 10 + events.len() as u64,
                sealed,
            },
            streams,
            sparse_offsets: sparse.iter().map(|&i| offset(i)).collect(),
            sparse_timestamps: sparse.iter().map(|&i| 10 + i as u64).collect(),
            commands: commands
                .iter()
                .map(|(id, (s, v, p, n))| {
                    (
                        id.clone(),
                        stream_names[s % stream_names.len()].clone(),
                        *v,
                        *p,
                        *n,
                    )
                })
                .collect(),
            correlations,
            tree: Some(TreeRecord::new(
                frontier(1000),
                frontier(1000 + events.len() as u64),
            )),
            // Made-up roots: the file does not check them against leaves.
            tiles: tile_range(1000, 1000 + events.len() as u64)
                .map(|j| crate::proof::merkle::leaf_hash(&j.to_le_bytes()))
                .collect(),
        }
    }

    fn sample() -> Owned {
        let names: Vec<String> = ["account-1", "account-2", "Ünïcode-stream", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let events: Vec<(usize, Option<u8>)> = (0..40)
            .map(|i| (i * 7 % 4, (i % 3 != 0).then_some((i / 5) as u8)))
            .collect();
        let commands = (0..5)
            .map(|i| {
                (
                    format!("command-{i}"),
                    (i, 1 + i as u64, 1000 + i as u64, 1),
                )
            })
            .collect();
        build(&events, &names, &[1, 5, 100, 2], &commands, true)
    }

    /// Every lookup of `file` answers as `owned` says.
    fn assert_answers(file: &IndexFile<'_>, owned: &Owned) {
        assert_eq!(file.binding(), owned.binding);
        assert_eq!(file.tree(), owned.tree);
        assert_eq!(file.tiles().1, owned.tiles.concat());
        assert_eq!(file.stream_count(), owned.streams.len());
        for (name, first_version, offsets) in &owned.streams {
            let events = file.stream(name).expect("stream present");
            assert_eq!(events.first_version, *first_version);
            assert_eq!(events.offsets.iter().collect::<Vec<_>>(), *offsets);
        }
        let listed: BTreeSet<(String, u64, Vec<u32>)> = file
            .streams()
            .map(|(name, e)| {
                (
                    name.to_string(),
                    e.first_version,
                    e.offsets.iter().collect(),
                )
            })
            .collect();
        assert_eq!(listed, owned.streams.iter().cloned().collect());
        assert!(file.stream("no such stream").is_none());
        for (id, stream, v, p, n) in &owned.commands {
            let entry = file.command(id).expect("command present");
            assert_eq!(
                (
                    entry.command_id,
                    entry.stream,
                    entry.first_version,
                    entry.first_position,
                    entry.event_count
                ),
                (id.as_str(), stream.as_str(), *v, *p, *n)
            );
        }
        assert_eq!(file.command_count(), owned.commands.len());
        for missing in ["no such command", "command-", ""] {
            if !owned.commands.iter().any(|c| c.0 == missing) {
                assert!(file.command(missing).is_none());
            }
        }
        let hashes: BTreeSet<u64> = owned.correlations.iter().map(|r| r.hash).collect();
        for hash in hashes.iter().copied().chain([0, u64::MAX, 12345]) {
            let mut expected: Vec<(u32, u32)> = owned
                .correlations
                .iter()
                .filter(|r| r.hash == hash)
                .map(|r| (r.offset, r.count))
                .collect();
            expected.sort_unstable();
            assert_eq!(file.correlated(hash).collect::<Vec<_>>(), expected);
        }
        assert_eq!(file.correlation_runs().count(), owned.correlations.len());
        assert_eq!(
            file.sparse_offsets().iter().collect::<Vec<_>>(),
            owned.sparse_offsets
        );
        assert_eq!(
            file.sparse_timestamps().iter().collect::<Vec<_>>(),
            owned.sparse_timestamps
        );
    }

    /// Calls every accessor (for files that parsed after damage).
    fn touch_everything(file: &IndexFile<'_>) {
        let _ = file.binding();
        for (name, events) in file.streams() {
            let found = file.stream(name).expect("a listed stream is found");
            assert_eq!(found.first_version, events.first_version);
            let _ = events.offsets.iter().rev().count();
        }
        for command in file.commands() {
            let _ = file.command(command.command_id);
        }
        for run in file.correlation_runs() {
            assert!(
                file.correlated(run.hash)
                    .any(|r| r == (run.offset, run.count))
            );
        }
        let _ = file.sparse_offsets().partition_point(|o| o < 1000);
        let _ = file.sparse_timestamps().partition_point(|t| t < 30);
        let _ = file.stream("x");
        let _ = file.command("x");
    }

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(index_file_name(42), "00000000000000000042.idx");
        assert_eq!(parse_index_file_name("00000000000000000042.idx"), Some(42));
        assert_eq!(
            parse_index_file_name(&index_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_index_file_name("00000000000000000042.seg"), None);
        assert_eq!(parse_index_file_name("0000000000000000042.idx"), None);
        assert_eq!(parse_index_file_name("00000000000000000042.idx.tmp"), None);
        assert_eq!(parse_index_file_name("+0000000000000000042.idx"), None);
    }

    #[test]
    fn stable_hash_is_pinned() {
        // On disk forever: these values must never change.
        assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(b"account-1"), 0x4ea9_6e94_7d43_b847);
        assert_ne!(stable_hash(b"a"), stable_hash(b"b"));
    }

    #[test]
    fn sample_round_trips() {
        let owned = sample();
        let bytes = encode(&owned.contents());
        assert_eq!(bytes.len() % 8, 0);
        let file = IndexFile::parse(&bytes).unwrap();
        assert_answers(&file, &owned);
        assert_eq!(read_binding(&bytes), Ok(owned.binding));
    }

    #[test]
    fn tiles_round_trip_and_must_be_one_per_tile_with_a_tree() {
        let names = vec!["s".to_string()];
        let events: Vec<(usize, Option<u8>)> = vec![(0, None); 600];
        let owned = build(&events, &names, &[1], &BTreeMap::new(), true);
        // Positions 1000..1600 hold the tiles of 1024..1280 and 1280..1536.
        assert_eq!(owned.tiles.len(), 2);
        let bytes = encode(&owned.contents());
        let file = IndexFile::parse(&bytes).unwrap();
        assert_answers(&file, &owned);
        assert_eq!(file.tiles().0, 4);
        // Without tiles: valid too (a rewrite after damage keeps none).
        let mut none = owned.clone();
        none.tiles.clear();
        let bytes = encode(&none.contents());
        assert_eq!(IndexFile::parse(&bytes).unwrap().tiles().1.len(), 0);
        // One tile too few, its length fixed up: refused.
        let mut bytes = encode(&owned.contents());
        let entry = SECTIONS_AT + TILES * SECTION_ENTRY_LEN;
        let len = le_u64(&bytes, entry + 8);
        bytes[entry + 8..entry + 16].copy_from_slice(&(len - 32).to_le_bytes());
        let file_len = bytes.len() - 32;
        bytes.truncate(file_len);
        bytes[16..24].copy_from_slice(&(file_len as u64).to_le_bytes());
        reseal(&mut bytes);
        let error = IndexFile::parse(&bytes).unwrap_err();
        assert!(error.detail.contains("tiles"), "{error}");
    }

    #[test]
    fn an_empty_prefix_round_trips() {
        let owned = build(&[], &["s".to_string()], &[1], &BTreeMap::new(), false);
        let bytes = encode(&owned.contents());
        let file = IndexFile::parse(&bytes).unwrap();
        assert_answers(&file, &owned);
        assert!(file.command("anything").is_none());
        assert_eq!(file.correlated(1).count(), 0);
    }

    #[test]
    fn a_two_event_stream_costs_little() {
        // Each stream costs its 32-byte entry, 4 bytes per event and its
        // name once (plus alignment padding between sections).
        let sections_len = |bytes: &[u8]| -> u64 {
            (0..SECTION_COUNT)
                .map(|i| le_u64(bytes, SECTIONS_AT + i * SECTION_ENTRY_LEN + 8))
                .sum()
        };
        let mut owned = sample();
        // The tree and tiles sections are the same size whatever the
        // streams (they depend on the positions only): left out here.
        owned.tree = None;
        owned.tiles.clear();
        let base = sections_len(&encode(&owned.contents()));
        let last = owned.binding.data_end as u32;
        owned
            .streams
            .push(("new-stream".to_string(), 1, vec![last, last + 24]));
        owned.binding.event_count += 2;
        owned.binding.data_end += 48;
        assert_eq!(owned.binding.event_count.div_ceil(SPARSE_STRIDE), 3);
        let grown = sections_len(&encode(&owned.contents()));
        assert_eq!(grown - base, 32 + 2 * 4 + 10);
    }

    #[test]
    fn every_bit_flip_and_truncation_is_rejected() {
        let bytes = encode(&sample().contents());
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                IndexFile::parse(&flipped).is_err(),
                "bit {bit} flip accepted"
            );
        }
        for len in 0..bytes.len() {
            assert!(
                IndexFile::parse(&bytes[..len]).is_err(),
                "cut at {len} accepted"
            );
            assert!(
                read_binding(&bytes[..len]).is_err(),
                "cut at {len} accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 8]);
        assert!(IndexFile::parse(&longer).is_err());
    }

    #[test]
    fn a_section_starting_past_the_end_is_refused() {
        // Regression: a file ending right after a section whose length is
        // not a multiple of 8 (sparse offsets, 4 bytes), so the next section
        // would start past the end, once made the length check underflow.
        let mut bytes = vec![0u8; INDEX_HEADER_LEN + 4];
        bytes[..8].copy_from_slice(&INDEX_FILE_MAGIC);
        bytes[8..12].copy_from_slice(&INDEX_FILE_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(INDEX_HEADER_LEN as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&((INDEX_HEADER_LEN + 4) as u64).to_le_bytes());
        bytes[BINDING_AT..BINDING_AT + BINDING_LEN].copy_from_slice(&sample().binding.encode());
        for i in 0..SECTION_COUNT {
            let entry = SECTIONS_AT + i * SECTION_ENTRY_LEN;
            let (offset, len) = match i {
                SPARSE_OFFSETS => (INDEX_HEADER_LEN, 4),
                i if i > SPARSE_OFFSETS => (INDEX_HEADER_LEN + 8, 0),
                _ => (INDEX_HEADER_LEN, 0),
            };
            bytes[entry..entry + 8].copy_from_slice(&(offset as u64).to_le_bytes());
            bytes[entry + 8..entry + 16].copy_from_slice(&(len as u64).to_le_bytes());
        }
        reseal(&mut bytes);
        let error = read_binding(&bytes).unwrap_err();
        assert!(error.detail.contains("sparse timestamps length"), "{error}");
    }

    #[test]
    fn read_binding_checks_only_the_header() {
        let mut bytes = encode(&sample().contents());
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(read_binding(&bytes), Ok(sample().binding));
        let error = IndexFile::parse(&bytes).unwrap_err();
        assert_eq!(error.offset, BODY_CRC_AT as u64);
        assert!(error.to_string().contains("checksum"), "{error}");
    }

    /// Rewrites both checksums after a change, so that the structural rules
    /// (not the checksums) must catch it.
    fn reseal(bytes: &mut [u8]) {
        if bytes.len() < INDEX_HEADER_LEN {
            return;
        }
        let body_crc = crc32fast::hash(&bytes[INDEX_HEADER_LEN..]);
        bytes[BODY_CRC_AT..BODY_CRC_AT + 4].copy_from_slice(&body_crc.to_le_bytes());
        let header_crc = crc32fast::hash(&bytes[..HEADER_CRC_AT]);
        bytes[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&header_crc.to_le_bytes());
    }

    #[test]
    fn structural_rules_catch_what_checksums_cannot() {
        let owned = sample();
        let bytes = encode(&owned.contents());
        let file = IndexFile::parse(&bytes).unwrap();
        let streams_at = INDEX_HEADER_LEN;
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        // A stream's hash that is not its name's.
        let mut b = bytes.clone();
        b[streams_at] ^= 1;
        cases.push(("hash", b));
        // Two streams swapped: the table is not sorted.
        let mut b = bytes.clone();
        let (first, second) =
            b[streams_at..streams_at + 2 * STREAM_ENTRY_LEN].split_at_mut(STREAM_ENTRY_LEN);
        first.swap_with_slice(second);
        cases.push(("stream entry 0", b));
        // A name running past the strings area.
        let mut b = bytes.clone();
        b[streams_at + 20..streams_at + 24].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(("out of bounds", b));
        // An event offset beyond data_end.
        let offsets_at = le_u64(&bytes, SECTIONS_AT + OFFSETS * SECTION_ENTRY_LEN) as usize;
        let mut b = bytes.clone();
        b[offsets_at..offsets_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(("below data_end", b));
        // More events claimed than offsets stored.
        let mut b = bytes.clone();
        b[BINDING_AT + 32] += 1;
        cases.push(("event offsets", b));
        // A Bloom filter with a command's bits cleared.
        let bloom_at = le_u64(&bytes, SECTIONS_AT + BLOOM * SECTION_ENTRY_LEN) as usize;
        let mut b = bytes.clone();
        b[bloom_at..bloom_at + BLOOM_BLOCK_LEN].fill(0);
        cases.push(("bloom", b));
        for (expected, mut damaged) in cases {
            reseal(&mut damaged);
            let error = IndexFile::parse(&damaged).unwrap_err();
            assert!(error.detail.contains(expected), "{expected}: {error}");
        }
        // A hand-built miss still finds nothing.
        assert!(file.command("command-5").is_none());
    }

    fn contents_strategy() -> impl Strategy<Value = Owned> {
        let names = proptest::collection::vec("[a-c]{0,3}|[é€😀]{1,2}", 1..6);
        let events = proptest::collection::vec((0usize..8, proptest::option::of(0u8..4)), 0..80);
        let versions = proptest::collection::vec(1u64..1_000_000, 8);
        let commands = proptest::collection::btree_map(
            "[a-z0-9-]{0,12}",
            (0usize..8, 1u64..100, 0u64..1000, 0u64..10),
            0..70,
        );
        (names, events, versions, commands, any::<bool>()).prop_map(
            |(names, events, versions, commands, sealed)| {
                let mut names: Vec<String> = names;
                names.sort();
                names.dedup();
                build(&events, &names, &versions, &commands, sealed)
            },
        )
    }

    proptest! {
        #[test]
        fn round_trip_answers_every_lookup(owned in contents_strategy()) {
            let bytes = encode(&owned.contents());
            let file = IndexFile::parse(&bytes).unwrap();
            assert_answers(&file, &owned);
            touch_everything(&file);
        }

        #[test]
        fn encoding_ignores_input_order(owned in contents_strategy(), seed in any::<u64>()) {
            let bytes = encode(&owned.contents());
            let mut contents = owned.contents();
            for list in [&mut contents.streams as &mut dyn Shuffle, &mut contents.commands, &mut contents.correlations] {
                list.shuffle(seed);
            }
            prop_assert_eq!(encode(&contents), bytes);
        }

        #[test]
        fn damage_never_panics(owned in contents_strategy(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let bytes = encode(&owned.contents());
            let at = at % bytes.len();
            let mut flipped = bytes.clone();
            flipped[at] ^= byte | 1;
            prop_assert!(IndexFile::parse(&flipped).is_err());
            prop_assert!(IndexFile::parse(&bytes[..cut % bytes.len()]).is_err());
            // With the checksums rewritten, the structural rules must stop
            // anything an accessor could trip on.
            reseal(&mut flipped);
            if let Ok(file) = IndexFile::parse(&flipped) {
                touch_everything(&file);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), header in any::<bool>()) {
            if header && bytes.len() >= INDEX_HEADER_LEN {
                bytes[..8].copy_from_slice(&INDEX_FILE_MAGIC);
                bytes[8..12].copy_from_slice(&INDEX_FILE_VERSION.to_le_bytes());
                bytes[12..16].copy_from_slice(&(INDEX_HEADER_LEN as u32).to_le_bytes());
                let len = bytes.len() as u64;
                bytes[16..24].copy_from_slice(&len.to_le_bytes());
                reseal(&mut bytes);
            }
            let _ = read_binding(&bytes);
            if let Ok(file) = IndexFile::parse(&bytes) {
                touch_everything(&file);
            }
        }
    }

    trait Shuffle {
        fn shuffle(&mut self, seed: u64);
    }

    impl<T> Shuffle for Vec<T> {
        /// Fisher-Yates, driven by hashes of a counter started at `seed`.
        fn shuffle(&mut self, mut seed: u64) {
            for i in (1..self.len()).rev() {
                seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let j = (stable_hash(&seed.to_le_bytes()) % (i as u64 + 1)) as usize;
                self.swap(i, j);
            }
        }
    }
}
