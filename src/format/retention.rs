//! The retention manifest, `annals.retention`: what was retired from the
//! front of the log, when and why, and the state of the log at the cut, so
//! that the log after it can be checked on its own (its chain from the
//! recorded value, its stream versions from the recorded ones) and the
//! retired segments, wherever they are kept, can be checked against it.
//!
//! Unlike index files and the checkpoint it is not derived data: once the
//! first segments are gone, it is the only record of where the log starts.
//! A damaged manifest is refused like damaged log data.
//!
//! ```text
//! offset size field
//!      0    8 magic      "ANNALRET"
//!      8    2 version    u16 (1)
//!     10    2 reserved   0
//!     12    4 body_len   u32
//!     16    n body       MessagePack (below)
//!   16+n    4 crc        CRC-32 (IEEE) of bytes 0..16+n
//! ```
//!
//! The body is a MessagePack array of 6: `[records, streams_at_cut,
//! metadata_at_cut, first_event, erasures_at_cut, frontier_at_cut]`.
//! `records` is an array of retirements, oldest first, each an array of 8:
//!
//! ```text
//! [first_retained_position: uint, chain_at_cut: str (64 hex digits),
//!  last_timestamp_ns: uint, retired_at_ns: uint, reason: str,
//!  archive: str|nil, segments: [[file_name: str, base_position: uint,
//!  event_count: uint, file_len: uint, contents_crc: uint,
//!  chain_end: str (64 hex), sha256: str (64 hex)], ...]]
//! ```
//!
//! `streams_at_cut` is an array of `[name: str, version: uint]`, sorted by
//! name (bytewise), one per stream with at least one event before the
//! newest record's `first_retained_position`: its version there.
//! `metadata_at_cut` is an array of `[metadata_stream: str, data: bin]`,
//! sorted by name: for each metadata stream (`$$<stream>`) whose newest
//! `$metadata` event before the cut may be retired, that event's data, so
//! that a stream's truncation or deletion outlives the segment recording it.
//! `first_event` is `[id: bin(16), timestamp_ns: uint, stream: str]`, the
//! store's event at position 0 (what names the store, for example to a
//! shipper), recorded by the first retirement and kept by the later ones.
//! `erasures_at_cut` is an array of `[subject: str, position: uint]`, sorted
//! by subject: every subject erased by an event before the newest cut, and
//! where, so that an erasure outlives the segment recording it.
//! `frontier_at_cut` is a `bin`: the [`Frontier`] encoding (`docs/proofs.md`)
//! of the Merkle tree of the leaves `0..first_retained_position` of the
//! newest record (its size is that position), so that the root and the
//! proofs of kept positions outlive the retired leaves
//! ([`crate::engine::tree`]). A manifest written before it existed has 5
//! elements; it reads as an empty `bin`: not recorded, and then no proof
//! reaches below the cut.

use serde::{Deserialize, Serialize};

use super::{CHAIN_LEN, chain, le_u16, le_u32};
use crate::proof::merkle::Frontier;

/// Name of the manifest in the store directory.
pub const RETENTION_FILE_NAME: &str = "annals.retention";

/// Magic bytes that open the manifest.
pub const RETENTION_MAGIC: [u8; 8] = *b"ANNALRET";

/// The manifest version this build writes and reads.
pub const RETENTION_VERSION: u16 = 1;

/// Bytes before the body.
const HEADER_LEN: usize = 16;

/// The largest manifest a reader accepts (checked before it is read into
/// memory): room for tens of millions of streams.
pub const MAX_RETENTION_FILE_BYTES: u64 = 1 << 30;

/// The longest reason a retirement may record.
pub const MAX_RETENTION_REASON_BYTES: usize = 4096;

/// One segment file retired from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSegment {
    /// Its file name (`<base position>.seg`).
    pub file_name: String,
    /// Position of its first event.
    pub base_position: u64,
    /// Events it holds.
    pub event_count: u64,
    /// Bytes of the file.
    pub file_len: u64,
    /// Its footer's checksum of the contents.
    pub contents_crc: u32,
    /// The chain value after its last batch, lower-case hex.
    pub chain_end: String,
    /// SHA-256 of the whole file, lower-case hex: an archived copy must
    /// have exactly these bytes.
    pub sha256: String,
}

/// One retirement: the segments removed by one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetirementRecord {
    /// Position of the first event kept: the log starts here after it.
    pub first_retained_position: u64,
    /// The chain value at the cut (the first kept segment's `chain_start`),
    /// lower-case hex.
    pub chain_at_cut: String,
    /// Timestamp of the last retired event: later events may not precede it.
    pub last_timestamp_ns: u64,
    /// When the retirement was made, nanoseconds since the Unix epoch.
    pub retired_at_ns: u64,
    /// Why, in the operator's words.
    pub reason: String,
    /// The directory the segments were moved to, if they were archived.
    pub archive: Option<String>,
    /// The segments removed, oldest first.
    pub segments: Vec<RetiredSegment>,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionManifest {
    /// Every retirement, oldest first.
    pub records: Vec<RetirementRecord>,
    /// Each stream's version at the newest cut, sorted by name.
    pub streams_at_cut: Vec<(String, u64)>,
    /// The data of each metadata stream's newest `$metadata` event before
    /// the newest cut, sorted by the metadata stream's name.
    pub metadata_at_cut: Vec<(String, ByteBuf)>,
    /// The store's first event (position 0), retired.
    pub first_event: FirstEvent,
    /// Each subject erased before the newest cut, with the position of its
    /// erasure event, sorted by subject.
    pub erasures_at_cut: Vec<(String, u64)>,
    /// [`Frontier::encode`] of the Merkle tree of the positions before the
    /// newest cut; empty when not recorded (a manifest of an earlier
    /// build, which has no sixth element).
    #[serde(default)]
    pub frontier_at_cut: ByteBuf,
}

/// What identifies the store's first event once it is retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstEvent {
    /// Its event id (16 bytes).
    pub id: ByteBuf,
    /// Its timestamp, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Its stream.
    pub stream: String,
}

/// Bytes, encoded as MessagePack `bin` (not an array of numbers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ByteBuf, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// Why a manifest did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionError(pub String);

impl std::fmt::Display for RetentionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RetentionManifest {
    /// The newest retirement: where the log starts now.
    pub fn newest(&self) -> &RetirementRecord {
        self.records.last().expect("a manifest holds a record")
    }

    /// The chain value at the newest cut.
    pub fn chain_at_cut(&self) -> [u8; CHAIN_LEN] {
        chain::from_hex(&self.newest().chain_at_cut).expect("checked when decoded")
    }

    /// The Merkle tree's frontier at the newest cut; `None` when the
    /// manifest does not record it.
    pub fn frontier_at_cut(&self) -> Option<Frontier> {
        if self.frontier_at_cut.0.is_empty() {
            return None;
        }
        Some(Frontier::decode(&self.frontier_at_cut.0).expect("checked when decoded"))
    }

    /// The manifest's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = rmp_serde::to_vec(self).expect("a manifest always serializes");
        let body_len = u32::try_from(body.len()).expect("a manifest body fits u32");
        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
        out.extend_from_slice(&RETENTION_MAGIC);
        out.extend_from_slice(&RETENTION_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&body_len.to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a manifest. Never panics.
    ///
    /// # Errors
    /// What is wrong, for any bytes that are not a valid manifest.
    pub fn decode(bytes: &[u8]) -> Result<RetentionManifest, RetentionError> {
        let fail = |what: &str| Err(RetentionError(what.to_string()));
        if bytes.len() < HEADER_LEN + 4 {
            return fail("shorter than its header");
        }
        if bytes[..8] != RETENTION_MAGIC {
            return fail("its magic is not \"ANNALRET\"");
        }
        let version = le_u16(bytes, 8);
        if version != RETENTION_VERSION {
            return Err(RetentionError(format!(
                "version {version} is not one this build reads ({RETENTION_VERSION})"
            )));
        }
        if le_u16(bytes, 10) != 0 {
            return fail("its reserved bytes are not zero");
        }
        let body_len = le_u32(bytes, 12) as usize;
        if HEADER_LEN
            .checked_add(body_len)
            .and_then(|n| n.checked_add(4))
            != Some(bytes.len())
        {
            return Err(RetentionError(format!(
                "its body length {body_len} does not match the file's {} bytes",
                bytes.len()
            )));
        }
        let crc_at = HEADER_LEN + body_len;
        if crc32fast::hash(&bytes[..crc_at]) != le_u32(bytes, crc_at) {
            return fail("its checksum does not match");
        }
        let manifest: RetentionManifest = rmp_serde::from_slice(&bytes[HEADER_LEN..crc_at])
            .map_err(|e| RetentionError(format!("its body does not decode: {e}")))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The rules every manifest keeps.
    fn check(&self) -> Result<(), RetentionError> {
        let fail = |what: String| Err(RetentionError(what));
        if self.records.is_empty() {
            return fail("it records no retirement".to_string());
        }
        let mut previous_start = 0;
        for (i, record) in self.records.iter().enumerate() {
            if record.first_retained_position <= previous_start {
                return fail(format!(
                    "record {i} starts the log at {}, not after the record before ({previous_start})",
                    record.first_retained_position
                ));
            }
            if chain::from_hex(&record.chain_at_cut).is_none() {
                return fail(format!("record {i}: chain_at_cut is not 64 hex digits"));
            }
            if record.reason.len() > MAX_RETENTION_REASON_BYTES {
                return fail(format!("record {i}: its reason is too long"));
            }
            let mut next = previous_start;
            for segment in &record.segments {
                if segment.base_position < next
                    || chain::from_hex(&segment.chain_end).is_none()
                    || chain::from_hex(&segment.sha256).is_none()
                {
                    return fail(format!(
                        "record {i}: segment {:?} is out of order or malformed",
                        segment.file_name
                    ));
                }
                next = segment.base_position.saturating_add(segment.event_count);
            }
            if next > record.first_retained_position {
                return fail(format!(
                    "record {i}: its segments reach past the position it keeps ({})",
                    record.first_retained_position
                ));
            }
            previous_start = record.first_retained_position;
        }
        for pair in self.streams_at_cut.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return fail(format!(
                    "its streams are not sorted and unique at {:?}",
                    pair[1].0
                ));
            }
        }
        for pair in self.metadata_at_cut.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return fail(format!(
                    "its metadata streams are not sorted and unique at {:?}",
                    pair[1].0
                ));
            }
        }
        for pair in self.erasures_at_cut.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return fail(format!(
                    "its erased subjects are not sorted and unique at {:?}",
                    pair[1].0
                ));
            }
        }
        if self.first_event.id.0.len() != 16 {
            return fail("its first event's id is not 16 bytes".to_string());
        }
        if !self.frontier_at_cut.0.is_empty() {
            let cut = self.newest().first_retained_position;
            match Frontier::decode(&self.frontier_at_cut.0) {
                Ok(frontier) if frontier.size() == cut => {}
                Ok(frontier) => {
                    return fail(format!(
                        "its Merkle frontier has {} leaves, not the {cut} before the cut",
                        frontier.size()
                    ));
                }
                Err(e) => return fail(format!("its Merkle frontier does not decode: {e}")),
            }
        }
        if let Some((name, _)) = self.streams_at_cut.iter().find(|(_, v)| *v == 0) {
            return fail(format!("stream {name:?} is recorded at version 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> RetentionManifest {
        RetentionManifest {
            records: vec![RetirementRecord {
                first_retained_position: 10,
                chain_at_cut: chain::to_hex(&[7; 32]),
                last_timestamp_ns: 5,
                retired_at_ns: 6,
                reason: "seven years".into(),
                archive: None,
                segments: vec![RetiredSegment {
                    file_name: "00000000000000000000.seg".into(),
                    base_position: 0,
                    event_count: 10,
                    file_len: 65536,
                    contents_crc: 1,
                    chain_end: chain::to_hex(&[7; 32]),
                    sha256: chain::to_hex(&[8; 32]),
                }],
            }],
            streams_at_cut: vec![("$$a".into(), 1), ("a".into(), 3), ("b".into(), 7)],
            metadata_at_cut: vec![("$$a".into(), ByteBuf(vec![1, 2, 3]))],
            first_event: FirstEvent {
                id: ByteBuf(vec![9; 16]),
                timestamp_ns: 4,
                stream: "a".into(),
            },
            erasures_at_cut: vec![("alice".into(), 2), ("bob".into(), 1)],
            frontier_at_cut: ByteBuf(frontier(10).encode()),
        }
    }

    fn frontier(size: u8) -> Frontier {
        let mut frontier = Frontier::new();
        for i in 0..size {
            frontier
                .push(crate::proof::merkle::leaf_hash(&[i]))
                .unwrap();
        }
        frontier
    }

    #[test]
    fn round_trips() {
        let m = manifest();
        assert_eq!(RetentionManifest::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused_without_panicking() {
        let bytes = manifest().encode();
        for i in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[i / 8] ^= 1 << (i % 8);
            assert!(RetentionManifest::decode(&damaged).is_err(), "bit {i}");
        }
        for len in 0..bytes.len() {
            assert!(
                RetentionManifest::decode(&bytes[..len]).is_err(),
                "len {len}"
            );
        }
    }

    #[test]
    fn refuses_records_that_do_not_move_the_start_forward() {
        let mut m = manifest();
        let mut second = m.records[0].clone();
        second.segments.clear();
        m.records.push(second);
        let error = RetentionManifest::decode(&m.encode()).unwrap_err();
        assert!(error.0.contains("not after the record before"), "{error}");
    }

    #[test]
    fn the_frontier_is_checked_against_the_cut_and_may_be_missing() {
        let m = manifest();
        assert_eq!(m.frontier_at_cut(), Some(frontier(10)));
        // Of another size than the cut's position.
        let mut wrong = m.clone();
        wrong.frontier_at_cut = ByteBuf(frontier(9).encode());
        let error = RetentionManifest::decode(&wrong.encode()).unwrap_err();
        assert!(error.0.contains("9 leaves"), "{error}");
        // Not a frontier encoding.
        wrong.frontier_at_cut = ByteBuf(vec![1, 2, 3]);
        assert!(RetentionManifest::decode(&wrong.encode()).is_err());
        // A manifest of 5 elements (written before the frontier was
        // recorded) still reads, without one.
        let mut old = m.clone();
        old.frontier_at_cut = ByteBuf(Vec::new());
        let mut bytes = old.encode();
        let body_len = le_u32(&bytes, 12) as usize;
        let mut body = bytes[HEADER_LEN..HEADER_LEN + body_len].to_vec();
        // A fixarray of 6 whose last element is an empty bin 8.
        assert_eq!(body[0], 0x96);
        assert!(body.ends_with(&[0xc4, 0x00]));
        body.truncate(body.len() - 2);
        body[0] = 0x95;
        bytes.truncate(0);
        bytes.extend_from_slice(&RETENTION_MAGIC);
        bytes.extend_from_slice(&RETENTION_VERSION.to_le_bytes());
        bytes.extend_from_slice(&0u16.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let decoded = RetentionManifest::decode(&bytes).unwrap();
        assert_eq!(decoded, old);
        assert_eq!(decoded.frontier_at_cut(), None);
    }

    #[test]
    fn refuses_unsorted_streams() {
        let mut m = manifest();
        m.streams_at_cut.reverse();
        assert!(RetentionManifest::decode(&m.encode()).is_err());
    }
}
