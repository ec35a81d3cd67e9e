//! The index checkpoint, `index.checkpoint`: every stream's version and the
//! sealed segments holding its events, as of a run of covered segments, so
//! that open reads the checkpoint and the segments after it instead of the
//! whole log. Derived data: a checkpoint that does not parse, or whose
//! segments do not match the log (their bindings), is ignored and rebuilt.
//!
//! ```text
//! offset size field
//!      0    8 magic             "ANNALCKP"
//!      8    4 version           u32 (1)
//!     12    4 reserved          zero
//!     16    8 written_unix_ns   u64, when the checkpoint was written
//!     24    8 segment_count     u64
//!     32    8 stream_count      u64
//!     40  96n segments          segment_count bindings (`index_file::IndexBinding`), in position order
//!      …      streams           stream_count records, back to back:
//!                                 name_len u32, version u64, list_len u32,
//!                                 name (name_len bytes, UTF-8), list (list_len bytes, `segment_list`)
//!  len-4    4 crc               CRC-32 of bytes 0..len-4
//! ```
//!
//! A stream's list holds ordinals into `segments` (0 is the first covered
//! segment). Stream records are in the writer's order; a reader must not
//! assume any.

use super::index_file::{BINDING_LEN, IndexBinding, IndexFileError};
use super::segment_list;
use super::{le_u32, le_u64};

/// Name of the checkpoint file in the store directory.
pub const CHECKPOINT_FILE_NAME: &str = "index.checkpoint";

/// Magic bytes that open a checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"ANNALCKP";

/// The checkpoint version this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Bytes of the fixed header.
pub const CHECKPOINT_HEADER_LEN: usize = 40;

/// Bytes of the fixed part of a stream record (before its name and list).
pub const STREAM_RECORD_HEADER_LEN: usize = 16;

const CRC_LEN: usize = 4;

/// One stream as the checkpoint records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStream<'a> {
    /// The stream id.
    pub name: &'a str,
    /// The stream's version (its event count) at the end of the covered
    /// segments; at least 1.
    pub version: u64,
    /// The covered segments holding its events: a `segment_list` of
    /// ordinals into the checkpoint's segments.
    pub segment_list: &'a [u8],
}

/// Encodes a checkpoint of `segments` (in position order, contiguous, all
/// sealed but perhaps the last) and `streams`.
///
/// # Panics
/// When the segments are not contiguous or an earlier one is not sealed, a
/// stream has version 0, or a name or list is longer than `u32::MAX` bytes:
/// bugs of the caller, which derives them from the log.
pub fn encode<'a>(
    written_unix_ns: u64,
    segments: &[IndexBinding],
    streams: impl Iterator<Item = CheckpointStream<'a>>,
) -> Vec<u8> {
    if let Err(error) = check_segments(segments.iter().copied()) {
        panic!("checkpoint segments are inconsistent: {error}");
    }
    let mut out = Vec::with_capacity(CHECKPOINT_HEADER_LEN + segments.len() * BINDING_LEN);
    out.extend_from_slice(&CHECKPOINT_MAGIC);
    out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&written_unix_ns.to_le_bytes());
    out.extend_from_slice(&(segments.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // stream_count, set below
    for segment in segments {
        out.extend_from_slice(&segment.encode());
    }
    let mut stream_count = 0u64;
    for stream in streams {
        assert!(
            stream.version >= 1,
            "stream {:?} has version 0",
            stream.name
        );
        if let Err(why) = segment_list::validate(stream.segment_list, segments.len() as u32) {
            panic!(
                "stream {:?} has an invalid segment list {:?} for {} segments: {why}",
                stream.name,
                stream.segment_list,
                segments.len()
            );
        }
        let name_len = u32::try_from(stream.name.len()).expect("stream name fits u32");
        let list_len = u32::try_from(stream.segment_list.len()).expect("segment list fits u32");
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&stream.version.to_le_bytes());
        out.extend_from_slice(&list_len.to_le_bytes());
        out.extend_from_slice(stream.name.as_bytes());
        out.extend_from_slice(stream.segment_list);
        stream_count += 1;
    }
    out[32..40].copy_from_slice(&stream_count.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks that segments are in position order and contiguous, and that all
/// but the last are sealed. Errors name the segment's index.
fn check_segments(segments: impl Iterator<Item = IndexBinding>) -> Result<(), String> {
    let mut previous: Option<IndexBinding> = None;
    for (i, segment) in segments.enumerate() {
        if let Some(previous) = previous {
            if !previous.sealed {
                return Err(format!(
                    "segment {} is not sealed but is not the last",
                    i - 1
                ));
            }
            if previous.base_position.checked_add(previous.event_count)
                != Some(segment.base_position)
            {
                return Err(format!(
                    "segment {i} starts at position {}, not where segment {} ends",
                    segment.base_position,
                    i - 1
                ));
            }
        }
        previous = Some(segment);
    }
    Ok(())
}

/// The fixed part of a stream record at `at`, if it fits `bytes`.
fn record_header(bytes: &[u8], at: usize) -> Option<(usize, u64, usize)> {
    let header = bytes.get(at..at.checked_add(STREAM_RECORD_HEADER_LEN)?)?;
    Some((
        le_u32(header, 0) as usize,
        le_u64(header, 4),
        le_u32(header, 12) as usize,
    ))
}

/// The stream record at `at` of `records`, and where the next one starts.
/// `None` when it does not fit or its name is not UTF-8.
fn read_record(records: &[u8], at: usize) -> Option<(CheckpointStream<'_>, usize)> {
    let (name_len, version, list_len) = record_header(records, at)?;
    let name_at = at + STREAM_RECORD_HEADER_LEN;
    let list_at = name_at.checked_add(name_len)?;
    let end = list_at.checked_add(list_len)?;
    let name = std::str::from_utf8(records.get(name_at..list_at)?).ok()?;
    let segment_list = records.get(list_at..end)?;
    Some((
        CheckpointStream {
            name,
            version,
            segment_list,
        },
        end,
    ))
}

/// A checked checkpoint; streams are read from the bytes as they are
/// iterated, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointFile<'a> {
    // Read by tests and tools (feature `internals`), not by open.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    written_unix_ns: u64,
    segments: &'a [u8],
    stream_count: u64,
    records: &'a [u8],
}

impl<'a> CheckpointFile<'a> {
    /// Checks a whole checkpoint: magic, version, the CRC-32 of the file,
    /// counts against the length (before anything is allocated), every
    /// segment binding possible and the segments in position order,
    /// contiguous, all sealed but perhaps the last; every stream record in
    /// bounds, its name UTF-8, its version at least 1, its segment list
    /// valid with ordinals below the segment count; the records ending
    /// exactly at the checksum. One pass over the streams, no allocation.
    ///
    /// # Errors
    /// The first rule the bytes break, and where.
    pub fn parse(bytes: &'a [u8]) -> Result<CheckpointFile<'a>, IndexFileError> {
        if bytes.len() < CHECKPOINT_HEADER_LEN + CRC_LEN {
            return Err(IndexFileError::new(
                bytes.len() as u64,
                format!(
                    "checkpoint is {} bytes, shorter than its header",
                    bytes.len()
                ),
            ));
        }
        if bytes[0..8] != CHECKPOINT_MAGIC {
            return Err(IndexFileError::new(
                0,
                "checkpoint magic is not \"ANNALCKP\"",
            ));
        }
        let crc_at = bytes.len() - CRC_LEN;
        if crc32fast::hash(&bytes[..crc_at]) != le_u32(bytes, crc_at) {
            return Err(IndexFileError::new(
                crc_at as u64,
                "checkpoint checksum does not match",
            ));
        }
        let version = le_u32(bytes, 8);
        if version != CHECKPOINT_VERSION {
            return Err(IndexFileError::new(
                8,
                format!("checkpoint version {version} is not {CHECKPOINT_VERSION}"),
            ));
        }
        if le_u32(bytes, 12) != 0 {
            return Err(IndexFileError::new(
                12,
                "checkpoint reserved bytes are not zero",
            ));
        }
        let segment_count = le_u64(bytes, 24);
        let stream_count = le_u64(bytes, 32);
        let room = (crc_at - CHECKPOINT_HEADER_LEN) as u64;
        if segment_count > room / BINDING_LEN as u64 || segment_count > u64::from(u32::MAX) {
            return Err(IndexFileError::new(
                24,
                format!("checkpoint segment_count {segment_count} does not fit the file"),
            ));
        }
        let segments_end = CHECKPOINT_HEADER_LEN + segment_count as usize * BINDING_LEN;
        let segments = &bytes[CHECKPOINT_HEADER_LEN..segments_end];
        let records = &bytes[segments_end..crc_at];
        if stream_count > (records.len() / STREAM_RECORD_HEADER_LEN) as u64 {
            return Err(IndexFileError::new(
                32,
                format!("checkpoint stream_count {stream_count} does not fit the file"),
            ));
        }
        let file = CheckpointFile {
            written_unix_ns: le_u64(bytes, 16),
            segments,
            stream_count,
            records,
        };
        let mut decoded = Ok(());
        let bindings = (0..segment_count as usize).map_while(|i| {
            let at = CHECKPOINT_HEADER_LEN + i * BINDING_LEN;
            match IndexBinding::decode(&bytes[at..at + BINDING_LEN], at as u64) {
                Ok(binding) => Some(binding),
                Err(error) => {
                    decoded = Err(error);
                    None
                }
            }
        });
        let order = check_segments(bindings);
        decoded?;
        order.map_err(|detail| {
            IndexFileError::new(CHECKPOINT_HEADER_LEN as u64, format!("checkpoint {detail}"))
        })?;

        let mut at = 0usize;
        for i in 0..stream_count {
            let offset = (segments_end + at) as u64;
            let Some((stream, next)) = read_record(records, at) else {
                return Err(IndexFileError::new(
                    offset,
                    format!(
                        "checkpoint stream record {i} is out of bounds or its name is not UTF-8"
                    ),
                ));
            };
            if stream.version == 0 {
                return Err(IndexFileError::new(
                    offset + 4,
                    format!("checkpoint stream {:?} has version 0", stream.name),
                ));
            }
            if let Err(detail) = segment_list::validate(stream.segment_list, segment_count as u32) {
                return Err(IndexFileError::new(
                    offset + (STREAM_RECORD_HEADER_LEN + stream.name.len()) as u64,
                    format!("checkpoint stream {:?}: {detail}", stream.name),
                ));
            }
            at = next;
        }
        if at != records.len() {
            return Err(IndexFileError::new(
                (segments_end + at) as u64,
                "checkpoint has bytes after its last stream record",
            ));
        }
        Ok(file)
    }

    /// When the checkpoint was written, in nanoseconds since the Unix epoch.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn written_unix_ns(&self) -> u64 {
        self.written_unix_ns
    }

    /// Number of covered segments.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn segment_count(&self) -> usize {
        self.segments.len() / BINDING_LEN
    }

    /// The covered segments, in position order.
    pub fn segments(&self) -> Vec<IndexBinding> {
        self.segments
            .chunks_exact(BINDING_LEN)
            .filter_map(|binding| IndexBinding::decode(binding, 0).ok())
            .collect()
    }

    /// Number of streams recorded.
    pub fn stream_count(&self) -> u64 {
        self.stream_count
    }

    /// Every stream recorded, in file order, read as it goes.
    pub fn streams(&self) -> impl Iterator<Item = CheckpointStream<'a>> + use<'a> {
        let records = self.records;
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let (stream, next) = read_record(records, at)?;
            at = next;
            Some(stream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::CHAIN_LEN;
    use proptest::prelude::*;

    /// A stream record as the tests hold it: name, version, segment list.
    type OwnedStream = (String, u64, Vec<u8>);

    fn segments(counts: &[u64], last_sealed: bool) -> Vec<IndexBinding> {
        let mut base = 0;
        let n = counts.len();
        counts
            .iter()
            .enumerate()
            .map(|(i, &event_count)| {
                let binding = IndexBinding {
                    base_position: base,
                    salt: i as u64 * 31,
                    data_end: 4096,
                    contents_crc: i as u32,
                    event_count,
                    batch_count: event_count,
                    chain_end: [i as u8; CHAIN_LEN],
                    first_timestamp_ns: base,
                    last_timestamp_ns: base + event_count,
                    sealed: i + 1 < n || last_sealed,
                };
                base += event_count;
                binding
            })
            .collect()
    }

    fn list(ordinals: &[u32]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut last = None;
        for &o in ordinals {
            segment_list::push(&mut bytes, last, o);
            last = Some(o);
        }
        bytes
    }

    fn sample() -> (Vec<IndexBinding>, Vec<OwnedStream>) {
        let segments = segments(&[10, 20, 5], false);
        let streams = vec![
            ("account-1".to_string(), 12, list(&[0, 2])),
            ("Ünïcode".to_string(), 1, list(&[1])),
            (String::new(), 3, list(&[0, 1, 2])),
        ];
        (segments, streams)
    }

    fn encode_owned(written: u64, segments: &[IndexBinding], streams: &[OwnedStream]) -> Vec<u8> {
        encode(
            written,
            segments,
            streams
                .iter()
                .map(|(name, version, list)| CheckpointStream {
                    name,
                    version: *version,
                    segment_list: list,
                }),
        )
    }

    fn assert_answers(
        file: &CheckpointFile<'_>,
        segments: &[IndexBinding],
        streams: &[OwnedStream],
    ) {
        assert_eq!(file.segments(), segments);
        assert_eq!(file.segment_count(), segments.len());
        assert_eq!(file.stream_count(), streams.len() as u64);
        let read: Vec<OwnedStream> = file
            .streams()
            .map(|s| (s.name.to_string(), s.version, s.segment_list.to_vec()))
            .collect();
        assert_eq!(read, streams);
    }

    #[test]
    fn sample_round_trips() {
        let (segments, streams) = sample();
        let bytes = encode_owned(77, &segments, &streams);
        let file = CheckpointFile::parse(&bytes).unwrap();
        assert_eq!(file.written_unix_ns(), 77);
        assert_answers(&file, &segments, &streams);
        let empty = encode_owned(1, &[], &[]);
        let file = CheckpointFile::parse(&empty).unwrap();
        assert_answers(&file, &[], &[]);
    }

    #[test]
    fn every_bit_flip_and_truncation_is_rejected() {
        let (segments, streams) = sample();
        let bytes = encode_owned(77, &segments, &streams);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                CheckpointFile::parse(&flipped).is_err(),
                "bit {bit} flip accepted"
            );
        }
        for len in 0..bytes.len() {
            assert!(
                CheckpointFile::parse(&bytes[..len]).is_err(),
                "cut at {len} accepted"
            );
        }
    }

    /// Rewrites the checksum after a change.
    fn reseal(bytes: &mut Vec<u8>) {
        if bytes.len() >= CRC_LEN {
            bytes.truncate(bytes.len() - CRC_LEN);
        }
        let crc = crc32fast::hash(bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn structural_rules_catch_what_the_checksum_cannot() {
        let (segs, streams) = sample();
        let cases: [(&str, OwnedStream); 3] = [
            ("beyond", ("s".into(), 1, vec![3])),
            ("repeats", ("s".into(), 1, vec![1, 0])),
            ("ends inside", ("s".into(), 1, vec![0x80])),
        ];
        for (expected, (name, version, list)) in cases {
            // Encode without the encoder's own checks: build valid, then patch.
            let mut bytes = encode_owned(1, &segs, &[("s".into(), 1, vec![0])]);
            let list_at = bytes.len() - CRC_LEN - 1;
            bytes.truncate(list_at - STREAM_RECORD_HEADER_LEN - 1);
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&version.to_le_bytes());
            bytes.extend_from_slice(&(list.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(&list);
            bytes.extend_from_slice(&[0; CRC_LEN]);
            reseal(&mut bytes);
            let error = CheckpointFile::parse(&bytes).unwrap_err();
            assert!(error.detail.contains(expected), "{expected}: {error}");
        }
        // A gap between segments; an unsealed segment before the last.
        let bytes = encode_owned(1, &segs, &streams);
        let second = CHECKPOINT_HEADER_LEN + BINDING_LEN;
        let mut gap = bytes.clone();
        gap[second] += 1;
        reseal(&mut gap);
        assert!(
            CheckpointFile::parse(&gap)
                .unwrap_err()
                .detail
                .contains("not where")
        );
        let mut unsealed = bytes.clone();
        unsealed[CHECKPOINT_HEADER_LEN + 28] = 0;
        reseal(&mut unsealed);
        assert!(
            CheckpointFile::parse(&unsealed)
                .unwrap_err()
                .detail
                .contains("not sealed")
        );
        // Counts larger than the file could hold are refused before any allocation.
        let mut huge = bytes.clone();
        huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut huge);
        assert!(
            CheckpointFile::parse(&huge)
                .unwrap_err()
                .detail
                .contains("segment_count")
        );
        let mut huge = bytes.clone();
        huge[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        reseal(&mut huge);
        assert!(
            CheckpointFile::parse(&huge)
                .unwrap_err()
                .detail
                .contains("stream_count")
        );
    }

    #[test]
    #[should_panic(expected = "not where")]
    fn encode_refuses_a_gap() {
        let mut segments = segments(&[1, 1], true);
        segments[1].base_position = 5;
        encode_owned(0, &segments, &[]);
    }

    fn checkpoint_strategy() -> impl Strategy<Value = (Vec<IndexBinding>, Vec<OwnedStream>)> {
        (
            proptest::collection::vec(1u64..1000, 0..6),
            any::<bool>(),
            proptest::collection::vec(
                (
                    "[a-z]{0,6}|[é😀]{1,3}",
                    1u64..u64::MAX,
                    proptest::collection::btree_set(0u32..6, 0..6),
                ),
                0..20,
            ),
        )
            .prop_map(|(counts, last_sealed, streams)| {
                let segments = segments(&counts, last_sealed);
                let streams = streams
                    .into_iter()
                    .map(|(name, version, ordinals)| {
                        let ordinals: Vec<u32> = ordinals
                            .into_iter()
                            .filter(|&o| (o as usize) < counts.len())
                            .collect();
                        (name, version, list(&ordinals))
                    })
                    .collect();
                (segments, streams)
            })
    }

    proptest! {
        #[test]
        fn round_trip((segments, streams) in checkpoint_strategy(), written in any::<u64>()) {
            let bytes = encode_owned(written, &segments, &streams);
            let file = CheckpointFile::parse(&bytes).unwrap();
            prop_assert_eq!(file.written_unix_ns(), written);
            assert_answers(&file, &segments, &streams);
        }

        #[test]
        fn damage_never_panics((segments, streams) in checkpoint_strategy(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let bytes = encode_owned(1, &segments, &streams);
            let mut flipped = bytes.clone();
            flipped[at % bytes.len()] ^= byte | 1;
            prop_assert!(CheckpointFile::parse(&flipped).is_err());
            prop_assert!(CheckpointFile::parse(&bytes[..cut % bytes.len()]).is_err());
            reseal(&mut flipped);
            if let Ok(file) = CheckpointFile::parse(&flipped) {
                let _ = file.segments();
                let below = file.segment_count() as u32;
                let mut count = 0;
                for stream in file.streams() {
                    prop_assert!(segment_list::iter(stream.segment_list).all(|o| o < below));
                    count += 1;
                }
                prop_assert_eq!(count, file.stream_count());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), magic in any::<bool>()) {
            if magic && bytes.len() >= CHECKPOINT_HEADER_LEN + CRC_LEN {
                bytes[..8].copy_from_slice(&CHECKPOINT_MAGIC);
                bytes[8..16].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
                reseal(&mut bytes);
            }
            if let Ok(file) = CheckpointFile::parse(&bytes) {
                let _ = file.segments();
                prop_assert_eq!(file.streams().count() as u64, file.stream_count());
            }
        }
    }
}
