//! The layout of an archive (`docs/archiving.md`): under the target's
//! prefix, each sealed segment as `segments/<segment file name>`, and
//! beside it its record, `records/<segment file name>.json`, which says
//! what the segment object must be (its length, SHA-256, chain values),
//! so that an archive can be checked alone. Both are written once, with
//! create-only puts, the record after its segment.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The folder of segment objects, under the target's prefix.
pub(crate) const SEGMENTS_FOLDER: &str = "segments";

/// The folder of record objects, under the target's prefix.
pub(crate) const RECORDS_FOLDER: &str = "records";

/// Suffix of a record object's name after the segment's file name.
const RECORD_SUFFIX: &str = ".json";

/// The `format` field of every record this build writes and reads.
pub const RECORD_FORMAT: &str = "annals-archive-record/1";

/// The largest record object a reader accepts (checked before reading it).
pub(crate) const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// The object name of a segment, relative to the prefix.
pub(crate) fn segment_object(file_name: &str) -> String {
    format!("{SEGMENTS_FOLDER}/{file_name}")
}

/// The object name of a segment's record, relative to the prefix.
pub(crate) fn record_object(file_name: &str) -> String {
    format!("{RECORDS_FOLDER}/{}", record_name(file_name))
}

/// A record's name within [`RECORDS_FOLDER`].
pub(crate) fn record_name(file_name: &str) -> String {
    format!("{file_name}{RECORD_SUFFIX}")
}

/// What an archive records of one segment it holds: written as JSON
/// (`records/<name>.json`) after the segment object, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRecord {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// The segment's file name (`<base position>.seg`), also its object's name.
    pub file_name: String,
    /// Position of its first event.
    pub base_position: u64,
    /// Events it holds.
    pub event_count: u64,
    /// Bytes of the segment object (the whole segment file).
    pub file_len: u64,
    /// Its footer's checksum of the contents.
    pub contents_crc: u32,
    /// The hash-chain value it starts from (its header's), lower-case hex.
    pub chain_start: String,
    /// The hash-chain value after its last batch (its footer's), lower-case hex.
    pub chain_end: String,
    /// SHA-256 of the segment object, lower-case hex.
    pub sha256: String,
}

impl ArchiveRecord {
    /// The record as stored: JSON, one line.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a record serializes");
        bytes.push(b'\n');
        bytes
    }

    /// A record read from the archive object `object` of `target`.
    ///
    /// # Errors
    /// [`Error::ArchiveMismatch`] when it is not a record of this format.
    pub(crate) fn decode(target: &str, object: &str, bytes: &[u8]) -> Result<ArchiveRecord> {
        let refuse = |detail: String| Error::ArchiveMismatch {
            target: target.to_string(),
            object: object.to_string(),
            detail,
        };
        let record: ArchiveRecord = serde_json::from_slice(bytes)
            .map_err(|e| refuse(format!("it is not an archive record: {e}")))?;
        if record.format != RECORD_FORMAT {
            return Err(refuse(format!(
                "its format is {:?}, not {RECORD_FORMAT:?}",
                record.format
            )));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ArchiveRecord {
        ArchiveRecord {
            format: RECORD_FORMAT.to_string(),
            file_name: "00000000000000000000.seg".into(),
            base_position: 0,
            event_count: 3,
            file_len: 4096,
            contents_crc: 7,
            chain_start: "00".repeat(32),
            chain_end: "ab".repeat(32),
            sha256: "cd".repeat(32),
        }
    }

    #[test]
    fn records_round_trip() {
        let record = record();
        let decoded = ArchiveRecord::decode("t", "o", &record.encode()).unwrap();
        assert_eq!(decoded, record);
    }

    #[test]
    fn other_bytes_are_refused_as_a_mismatch() {
        for bytes in [
            &b"not json"[..],
            br#"{"format":"x"}"#,
            &record().encode()[..20],
        ] {
            let error = ArchiveRecord::decode("t", "o", bytes).unwrap_err();
            assert!(matches!(error, Error::ArchiveMismatch { .. }), "{error}");
        }
        let mut other = record();
        other.format = "annals-archive-record/9".into();
        let error = ArchiveRecord::decode("t", "o", &other.encode()).unwrap_err();
        assert!(
            error.to_string().contains("annals-archive-record/9"),
            "{error}"
        );
    }

    #[test]
    fn names_are_under_their_folders() {
        assert_eq!(segment_object("1.seg"), "segments/1.seg");
        assert_eq!(record_object("1.seg"), "records/1.seg.json");
    }
}
