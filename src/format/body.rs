//! Frame bodies: MessagePack arrays with a fixed field order.
//!
//! An event body is an array of 12 elements in a segment of format version 3
//! (11, without `subject`, in versions 1 and 2; [`event_array_len`] is the
//! one rule, and every decode site passes the segment header's version):
//!
//! ```text
//! [stream: str, version: uint, position: uint, id: bin(16), event_type: str,
//!  timestamp_ns: uint, correlation_id: str|nil, causation_id: str|nil,
//!  content_type: str|nil, metadata: bin, data: bin, subject: str|nil]
//! ```
//!
//! When `subject` is a string, `data` is sealed with that subject's key
//! (`super::sealed_data`): what the body holds is the ciphertext.
//!
//! A commit body is an array of 5 elements, whose first element is always
//! encoded as `bin 8` of 32 bytes, so the body starts with the bytes
//! `95 C4 20` and the chain value sits at body bytes 3..35:
//!
//! ```text
//! [chain: bin(32), first_position: uint, event_count: uint,
//!  synced_offset: uint, command_id: str|nil]
//! ```
//!
//! Encoding writes the shortest MessagePack form of each value; decoding
//! accepts any valid form of the expected type and rejects everything else,
//! including trailing bytes. Decoding never allocates and never panics.

use super::{CHAIN_LEN, SUBJECT_FORMAT_VERSION};

/// Bytes before the hashed part of a commit body: the array marker and the
/// `bin 8` header and value of the chain.
pub const COMMIT_CHAIN_PREFIX_LEN: usize = 3 + CHAIN_LEN;

/// Fields of an event record, borrowed from the frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBody<'a> {
    /// Stream the event belongs to.
    pub stream: &'a str,
    /// Version of the event in its stream (1-based).
    pub version: u64,
    /// Global position of the event (0-based).
    pub position: u64,
    /// Event id.
    pub id: [u8; 16],
    /// Event type name.
    pub event_type: &'a str,
    /// Server-side timestamp, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Correlation id, if any.
    pub correlation_id: Option<&'a str>,
    /// Causation id, if any.
    pub causation_id: Option<&'a str>,
    /// How `data` is encoded (for example "msgpack" or "json"), if recorded.
    pub content_type: Option<&'a str>,
    /// Free-form metadata bytes.
    pub metadata: &'a [u8],
    /// Event payload bytes: as stored, so sealed (encrypted) when
    /// `subject` is set.
    pub data: &'a [u8],
    /// The data subject whose key seals `data`, if any (format version 3;
    /// always `None` in older segments).
    pub subject: Option<&'a str>,
}

/// Fields of a commit record, borrowed from the frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitBody<'a> {
    /// Hash-chain value after this batch.
    pub chain: [u8; CHAIN_LEN],
    /// Position of the batch's first event.
    pub first_position: u64,
    /// Number of events in the batch (at least 1).
    pub event_count: u64,
    /// Offset in this segment below which every byte was durable when the
    /// batch was written. Recovery uses it to tell a torn tail from damage.
    pub synced_offset: u64,
    /// Command id for idempotent appends, if any.
    pub command_id: Option<&'a str>,
}

/// Why a body did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyError {
    /// The field being read.
    pub field: &'static str,
    /// What was wrong with it.
    pub problem: &'static str,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record field {}: {}", self.field, self.problem)
    }
}

/// Elements of an event body in a segment of `format_version`: 12 from
/// [`SUBJECT_FORMAT_VERSION`] on (the subject), 11 before. The one rule for
/// both the encoder and the decoder.
pub const fn event_array_len(format_version: u16) -> u8 {
    if format_version >= SUBJECT_FORMAT_VERSION {
        12
    } else {
        11
    }
}

/// Appends the MessagePack encoding of an event body to `out`, in the layout
/// of a segment of `format_version`.
///
/// # Panics
/// If `event` has a subject and `format_version` has no place for it: the
/// writer rolls to a new segment before such an event (a caller's bug).
pub fn encode_event(out: &mut Vec<u8>, event: &EventBody<'_>, format_version: u16) {
    let len = event_array_len(format_version);
    assert!(
        len == 12 || event.subject.is_none(),
        "an event with a subject is never written to a segment of format version {format_version}"
    );
    out.push(0x90 | len); // fixarray
    write_str(out, event.stream);
    write_uint(out, event.version);
    write_uint(out, event.position);
    write_bin(out, &event.id);
    write_str(out, event.event_type);
    write_uint(out, event.timestamp_ns);
    write_optional_str(out, event.correlation_id);
    write_optional_str(out, event.causation_id);
    write_optional_str(out, event.content_type);
    write_bin(out, event.metadata);
    write_bin(out, event.data);
    if len == 12 {
        write_optional_str(out, event.subject);
    }
}

/// Appends the MessagePack encoding of a commit body to `out`.
pub fn encode_commit(out: &mut Vec<u8>, commit: &CommitBody<'_>) {
    out.push(0x95); // fixarray, 5 elements
    out.push(0xC4); // bin 8
    out.push(CHAIN_LEN as u8);
    out.extend_from_slice(&commit.chain);
    write_uint(out, commit.first_position);
    write_uint(out, commit.event_count);
    write_uint(out, commit.synced_offset);
    write_optional_str(out, commit.command_id);
}

/// Decodes an event body of a segment of `format_version`. Never panics.
pub fn decode_event(body: &[u8], format_version: u16) -> Result<EventBody<'_>, BodyError> {
    let len = event_array_len(format_version);
    let mut cursor = Cursor { bytes: body, at: 0 };
    cursor.array_len("event", len)?;
    let stream = cursor.str("stream")?;
    let version = cursor.uint("version")?;
    let position = cursor.uint("position")?;
    let id_bytes = cursor.bin("id")?;
    let id: [u8; 16] = id_bytes.try_into().map_err(|_| BodyError {
        field: "id",
        problem: "is not 16 bytes",
    })?;
    let event_type = cursor.str("event_type")?;
    let timestamp_ns = cursor.uint("timestamp_ns")?;
    let correlation_id = cursor.optional_str("correlation_id")?;
    let causation_id = cursor.optional_str("causation_id")?;
    let content_type = cursor.optional_str("content_type")?;
    let metadata = cursor.bin("metadata")?;
    let data = cursor.bin("data")?;
    let subject = if len == 12 {
        cursor.optional_str("subject")?
    } else {
        None
    };
    cursor.finish("event")?;
    Ok(EventBody {
        stream,
        version,
        position,
        id,
        event_type,
        timestamp_ns,
        correlation_id,
        causation_id,
        content_type,
        metadata,
        data,
        subject,
    })
}

/// Decodes a commit body. Never panics.
pub fn decode_commit(body: &[u8]) -> Result<CommitBody<'_>, BodyError> {
    if body.len() < COMMIT_CHAIN_PREFIX_LEN || body[0..3] != [0x95, 0xC4, CHAIN_LEN as u8] {
        return Err(BodyError {
            field: "commit",
            problem: "does not start with 95 C4 20",
        });
    }
    let mut chain = [0u8; CHAIN_LEN];
    chain.copy_from_slice(&body[3..COMMIT_CHAIN_PREFIX_LEN]);
    let mut cursor = Cursor {
        bytes: body,
        at: COMMIT_CHAIN_PREFIX_LEN,
    };
    let first_position = cursor.uint("first_position")?;
    let event_count = cursor.uint("event_count")?;
    let synced_offset = cursor.uint("synced_offset")?;
    let command_id = cursor.optional_str("command_id")?;
    cursor.finish("commit")?;
    Ok(CommitBody {
        chain,
        first_position,
        event_count,
        synced_offset,
        command_id,
    })
}

pub(super) fn write_uint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else if value <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xCC, value as u8]);
    } else if value <= u64::from(u16::MAX) {
        out.push(0xCD);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= u64::from(u32::MAX) {
        out.push(0xCE);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(0xCF);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn write_len(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, markers: [u8; 3]) {
    match fix {
        Some((base, max)) if len <= max => out.push(base | len as u8),
        _ if len <= usize::from(u8::MAX) => out.extend_from_slice(&[markers[0], len as u8]),
        _ if len <= usize::from(u16::MAX) => {
            out.push(markers[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            let len = u32::try_from(len).expect(
                "a length fits a u32: before encoding, event fields are checked against \
                 Limits::max_event_bytes (at most Limits::MAX_EVENT_BYTES < u32::MAX) and \
                 snapshots against MAX_SNAPSHOT_BODY_LEN",
            );
            out.push(markers[2]);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

pub(super) fn write_str(out: &mut Vec<u8>, value: &str) {
    write_len(out, value.len(), Some((0xA0, 31)), [0xD9, 0xDA, 0xDB]);
    out.extend_from_slice(value.as_bytes());
}

pub(super) fn write_bin(out: &mut Vec<u8>, value: &[u8]) {
    write_len(out, value.len(), None, [0xC4, 0xC5, 0xC6]);
    out.extend_from_slice(value);
}

pub(super) fn write_optional_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => write_str(out, value),
        None => out.push(0xC0),
    }
}

/// A bounds-checked reader over a body.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, at: 0 }
    }

    fn fail<T>(field: &'static str, problem: &'static str) -> Result<T, BodyError> {
        Err(BodyError { field, problem })
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], BodyError> {
        match self.at.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let out = &self.bytes[self.at..end];
                self.at = end;
                Ok(out)
            }
            _ => Self::fail(field, "runs past the end of the body"),
        }
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, BodyError> {
        Ok(self.take(field, 1)?[0])
    }

    fn be(&mut self, field: &'static str, n: usize) -> Result<u64, BodyError> {
        Ok(self
            .take(field, n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    pub(super) fn array_len(&mut self, field: &'static str, expected: u8) -> Result<(), BodyError> {
        if self.byte(field)? != 0x90 | expected {
            return Self::fail(field, "is not an array of the expected length");
        }
        Ok(())
    }

    pub(super) fn uint(&mut self, field: &'static str) -> Result<u64, BodyError> {
        match self.byte(field)? {
            b @ 0x00..=0x7F => Ok(u64::from(b)),
            0xCC => self.be(field, 1),
            0xCD => self.be(field, 2),
            0xCE => self.be(field, 4),
            0xCF => self.be(field, 8),
            _ => Self::fail(field, "is not an unsigned integer"),
        }
    }

    fn str_len(&mut self, marker: u8, field: &'static str) -> Result<usize, BodyError> {
        let len = match marker {
            0xA0..=0xBF => u64::from(marker & 0x1F),
            0xD9 => self.be(field, 1)?,
            0xDA => self.be(field, 2)?,
            0xDB => self.be(field, 4)?,
            _ => return Self::fail(field, "is not a string"),
        };
        Ok(len as usize)
    }

    fn str_after(&mut self, marker: u8, field: &'static str) -> Result<&'a str, BodyError> {
        let len = self.str_len(marker, field)?;
        std::str::from_utf8(self.take(field, len)?)
            .or_else(|_| Self::fail(field, "is not valid UTF-8"))
    }

    pub(super) fn str(&mut self, field: &'static str) -> Result<&'a str, BodyError> {
        let marker = self.byte(field)?;
        self.str_after(marker, field)
    }

    pub(super) fn optional_str(
        &mut self,
        field: &'static str,
    ) -> Result<Option<&'a str>, BodyError> {
        match self.byte(field)? {
            0xC0 => Ok(None),
            marker => self.str_after(marker, field).map(Some),
        }
    }

    pub(super) fn bin(&mut self, field: &'static str) -> Result<&'a [u8], BodyError> {
        let len = match self.byte(field)? {
            0xC4 => self.be(field, 1)?,
            0xC5 => self.be(field, 2)?,
            0xC6 => self.be(field, 4)?,
            _ => return Self::fail(field, "is not binary"),
        };
        self.take(field, len as usize)
    }

    pub(super) fn finish(&self, field: &'static str) -> Result<(), BodyError> {
        if self.at != self.bytes.len() {
            return Self::fail(field, "has trailing bytes");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FORMAT_VERSION;

    fn sample_event<'a>(data: &'a [u8], stream: &'a str) -> EventBody<'a> {
        EventBody {
            stream,
            version: 300,
            position: u64::MAX - 1,
            id: [3u8; 16],
            event_type: "OrderPlaced",
            timestamp_ns: 1_700_000_000_123_456_789,
            correlation_id: Some("corr"),
            causation_id: None,
            content_type: Some("msgpack"),
            metadata: b"",
            data,
            subject: Some("customer-7"),
        }
    }

    #[test]
    fn event_round_trips_with_every_length_form() {
        let long_stream = "s".repeat(70_000);
        for len in [0usize, 1, 31, 32, 255, 256, 65_535, 65_536] {
            let data = vec![0xABu8; len];
            for stream in ["order-1", &long_stream[..len.min(70_000)]] {
                let event = sample_event(&data, stream);
                let mut out = Vec::new();
                encode_event(&mut out, &event, FORMAT_VERSION);
                assert_eq!(decode_event(&out, FORMAT_VERSION), Ok(event));
            }
        }
    }

    #[test]
    fn uints_round_trip_at_every_boundary() {
        for value in [
            0u64,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let commit = CommitBody {
                chain: [1u8; CHAIN_LEN],
                first_position: value,
                event_count: 1,
                synced_offset: value,
                command_id: Some("cmd"),
            };
            let mut out = Vec::new();
            encode_commit(&mut out, &commit);
            assert_eq!(decode_commit(&out), Ok(commit));
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let data = [5u8; 40];
        let mut out = Vec::new();
        encode_event(&mut out, &sample_event(&data, "s"), FORMAT_VERSION);
        for cut in 0..out.len() {
            assert!(
                decode_event(&out[..cut], FORMAT_VERSION).is_err(),
                "cut at {cut} accepted"
            );
        }
        let mut trailing = out.clone();
        trailing.push(0);
        assert!(decode_event(&trailing, FORMAT_VERSION).is_err());
    }

    #[test]
    fn invalid_utf8_and_wrong_types_are_rejected() {
        let data = [5u8; 4];
        let mut out = Vec::new();
        encode_event(&mut out, &sample_event(&data, "ab"), FORMAT_VERSION);
        let mut bad = out.clone();
        bad[2] = 0xFF; // first byte of the stream name
        assert_eq!(
            decode_event(&bad, FORMAT_VERSION).unwrap_err().field,
            "stream"
        );
        let mut bad = out.clone();
        bad[1] = 0xC0; // stream is nil
        assert_eq!(
            decode_event(&bad, FORMAT_VERSION).unwrap_err().field,
            "stream"
        );
    }

    /// The body layout follows the segment's version: a version-2 body has
    /// 11 elements and no subject, and a body of one layout never decodes
    /// as the other (an older build refuses a version-3 segment by its
    /// header before it reads a body).
    #[test]
    fn the_layout_follows_the_segment_version() {
        let data = [1u8; 3];
        let mut plain = sample_event(&data, "s");
        plain.subject = None;
        let mut v2 = Vec::new();
        encode_event(&mut v2, &plain, 2);
        assert_eq!(v2[0], 0x9B);
        assert_eq!(decode_event(&v2, 2), Ok(plain));
        assert_eq!(decode_event(&v2, 3).unwrap_err().field, "event");
        let mut v3 = Vec::new();
        encode_event(&mut v3, &plain, 3);
        assert_eq!(v3[0], 0x9C);
        assert_eq!(*v3.last().unwrap(), 0xC0, "no subject is nil");
        assert_eq!(decode_event(&v3, 3), Ok(plain));
        assert_eq!(decode_event(&v3, 1).unwrap_err().field, "event");
    }

    #[test]
    #[should_panic(expected = "never written to a segment of format version 2")]
    fn a_subject_cannot_be_encoded_in_an_older_layout() {
        let data = [1u8; 3];
        encode_event(&mut Vec::new(), &sample_event(&data, "s"), 2);
    }
}
