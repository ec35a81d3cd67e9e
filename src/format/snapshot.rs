//! The snapshot file: one per stream, in the store's `snapshots/` directory.
//!
//! ```text
//! offset size field
//!      0    8 magic        "ANNALSNP"
//!      8    2 version      u16 (1)
//!     10    2 reserved     0
//!     12    4 body_len     u32
//!     16    4 crc          CRC-32 (IEEE) of bytes 0..16, then the body
//!     20    n body         MessagePack array of 5:
//!                          [stream: str, version: uint, content_type: str|nil,
//!                           created_unix_ns: uint, data: bin]
//! ```
//!
//! The file is exactly `20 + body_len` bytes.

use super::body::{BodyError, Cursor, write_bin, write_optional_str, write_str, write_uint};
use super::{le_u16, le_u32};

/// Magic bytes that open a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ANNALSNP";

/// Bytes before the body.
pub const SNAPSHOT_HEADER_LEN: usize = 20;

/// The longest body a snapshot file can have: `body_len` is a u32.
pub const MAX_SNAPSHOT_BODY_LEN: u64 = u32::MAX as u64;

/// Most bytes of a body besides its stream id, content type and data: the
/// array header (1), three length prefixes (up to 5 each, or a 1-byte nil
/// content type) and two uints (up to 9 each).
pub const SNAPSHOT_BODY_OVERHEAD_BYTES: u64 = 1 + 3 * 5 + 2 * 9;

/// A snapshot too large for its file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotTooLarge {
    /// An upper bound of the body length the snapshot would need.
    pub body_len_bound: u64,
}

/// An upper bound of the body length of `record`'s file (exact but for
/// the widths of the length prefixes and integers).
pub fn snapshot_body_len_bound(record: &SnapshotRecord<'_>) -> u64 {
    let variable = [
        record.stream.len(),
        record.content_type.map_or(0, str::len),
        record.data.len(),
    ];
    variable
        .iter()
        .fold(SNAPSHOT_BODY_OVERHEAD_BYTES, |sum, &len| {
            sum.saturating_add(len as u64)
        })
}

/// The fields of a snapshot file, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRecord<'a> {
    /// The stream the snapshot summarizes.
    pub stream: &'a str,
    /// The stream version the snapshot reflects.
    pub version: u64,
    /// How `data` is encoded, if recorded.
    pub content_type: Option<&'a str>,
    /// When the snapshot was written, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// The snapshot payload.
    pub data: &'a [u8],
}

/// Encodes a snapshot file.
///
/// # Errors
/// [`SnapshotTooLarge`] when its body might not fit [`MAX_SNAPSHOT_BODY_LEN`]
/// (checked before anything is encoded).
pub fn encode_snapshot(record: &SnapshotRecord<'_>) -> Result<Vec<u8>, SnapshotTooLarge> {
    let body_len_bound = snapshot_body_len_bound(record);
    if body_len_bound > MAX_SNAPSHOT_BODY_LEN {
        return Err(SnapshotTooLarge { body_len_bound });
    }
    let mut out = vec![0u8; SNAPSHOT_HEADER_LEN];
    out.push(0x95);
    write_str(&mut out, record.stream);
    write_uint(&mut out, record.version);
    write_optional_str(&mut out, record.content_type);
    write_uint(&mut out, record.created_unix_ns);
    write_bin(&mut out, record.data);
    let body_len = u32::try_from(out.len() - SNAPSHOT_HEADER_LEN)
        .expect("the body is at most its length bound, checked against MAX_SNAPSHOT_BODY_LEN");
    out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    out[8..10].copy_from_slice(&1u16.to_le_bytes());
    out[12..16].copy_from_slice(&body_len.to_le_bytes());
    let crc = snapshot_crc(&out[..16], &out[SNAPSHOT_HEADER_LEN..]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn snapshot_crc(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

/// Decodes and checks a snapshot file. Never panics.
pub fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotRecord<'_>, BodyError> {
    let fail = |problem| {
        Err(BodyError {
            field: "snapshot",
            problem,
        })
    };
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return fail("is shorter than its header");
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return fail("magic is not \"ANNALSNP\"");
    }
    if le_u16(bytes, 8) != 1 || le_u16(bytes, 10) != 0 {
        return fail("has an unknown version or non-zero reserved bytes");
    }
    if le_u32(bytes, 12) as usize != bytes.len() - SNAPSHOT_HEADER_LEN {
        return fail("length does not match the file size");
    }
    if snapshot_crc(&bytes[..16], &bytes[SNAPSHOT_HEADER_LEN..]) != le_u32(bytes, 16) {
        return fail("checksum does not match");
    }
    let mut cursor = Cursor::new(&bytes[SNAPSHOT_HEADER_LEN..]);
    cursor.array_len("snapshot", 5)?;
    let record = SnapshotRecord {
        stream: cursor.str("stream")?,
        version: cursor.uint("version")?,
        content_type: cursor.optional_str("content_type")?,
        created_unix_ns: cursor.uint("created_unix_ns")?,
        data: cursor.bin("data")?,
    };
    cursor.finish("snapshot")?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_rejects_damage() {
        let record = SnapshotRecord {
            stream: "order-1",
            version: 42,
            content_type: Some("msgpack"),
            created_unix_ns: 7,
            data: b"state",
        };
        let bytes = encode_snapshot(&record).unwrap();
        assert_eq!(decode_snapshot(&bytes), Ok(record));
        assert!(
            bytes.len() as u64 <= SNAPSHOT_HEADER_LEN as u64 + snapshot_body_len_bound(&record)
        );
        for cut in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..cut]).is_err());
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_snapshot(&flipped).is_err(), "bit {bit}");
        }
    }
}
