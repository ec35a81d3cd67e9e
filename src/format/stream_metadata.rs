//! The data of a stream's metadata event (`$metadata` in `$$<stream>`):
//! how the stream was truncated or whether it was deleted.
//!
//! Each metadata event holds the *whole* metadata, so the newest one alone
//! says the stream's state. Its data is a MessagePack map with exactly
//! these keys (`docs/format.md`, "Stream metadata"):
//!
//! ```text
//! { "truncate_before": uint, "deleted": bool }
//! ```
//!
//! (rmp-serde also reads the array form `[truncate_before, deleted]`,
//! which annals never writes.) Decoding is strict: a missing key, a key this build does not know, a
//! wrong type or trailing bytes make the metadata invalid. A later build
//! might add a key that hides more of a stream (a maximum age, say); an
//! older build that skipped it would show events it should not, so it
//! refuses instead (the stream reads as `Error::InvalidStreamMetadata`).

use serde::{Deserialize, Serialize};

/// A stream's metadata: what reads and appends of the stream obey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMetadata {
    /// Reads of the stream start at this version: events before it are
    /// truncated (hidden from stream reads, still in the log). 0 or 1:
    /// nothing is truncated.
    pub truncate_before: u64,
    /// The stream is deleted for good: reads and appends are refused.
    pub deleted: bool,
}

impl StreamMetadata {
    /// The first version a stream read returns (versions start at 1).
    pub fn first_readable_version(&self) -> u64 {
        self.truncate_before.max(1)
    }
}

/// Encodes `metadata` as the data of a metadata event: a MessagePack map
/// keyed by field name.
pub fn encode(metadata: &StreamMetadata) -> Vec<u8> {
    // Serializing two fixed fields into a Vec cannot fail.
    rmp_serde::to_vec_named(metadata).expect("a stream metadata map always encodes")
}

/// Decodes the data of a metadata event. Never panics; the error says what
/// is wrong, for [`crate::Error::InvalidStreamMetadata`].
///
/// # Errors
/// A description of why `data` is not a metadata map this build knows.
pub fn decode(data: &[u8]) -> Result<StreamMetadata, String> {
    // The data is an event already in memory, within the event size
    // limit: decoding allocates at most a key's length of it.
    let mut reader = data;
    let metadata: StreamMetadata = rmp_serde::from_read(&mut reader)
        .map_err(|error| format!("not a stream metadata map: {error}"))?;
    if !reader.is_empty() {
        return Err(format!(
            "{} bytes after the stream metadata map",
            reader.len()
        ));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_the_bytes_are_a_named_map() {
        let metadata = StreamMetadata {
            truncate_before: 5,
            deleted: true,
        };
        let bytes = encode(&metadata);
        // fixmap of 2; fixstr "truncate_before", 5; fixstr "deleted", true.
        let mut expected = vec![0x82, 0xAF];
        expected.extend_from_slice(b"truncate_before");
        expected.push(0x05);
        expected.push(0xA7);
        expected.extend_from_slice(b"deleted");
        expected.push(0xC3);
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes), Ok(metadata));
    }

    #[test]
    fn anything_else_is_refused_without_panicking() {
        let good = encode(&StreamMetadata::default());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        // An unknown key (a later build's) is refused, not skipped.
        let unknown = rmp_serde::to_vec_named(&serde_json::json!({
            "truncate_before": 1, "deleted": false, "max_age_s": 10
        }))
        .unwrap();
        assert!(decode(&unknown).is_err());
        // A missing key, a wrong type.
        let missing = rmp_serde::to_vec_named(&serde_json::json!({ "deleted": false })).unwrap();
        assert!(decode(&missing).is_err());
        let wrong = rmp_serde::to_vec_named(&serde_json::json!({
            "truncate_before": "1", "deleted": false
        }))
        .unwrap();
        assert!(decode(&wrong).is_err());
        for byte in 0..=255u8 {
            let _ = decode(&[byte]);
            let _ = decode(&[0x82, byte, byte]);
        }
    }
}
