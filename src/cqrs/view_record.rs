//! The view file format, with no I/O: one record per file, holding a view
//! id, its optimistic version and its JSON payload, checksummed.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "ANNALSVW"
//!      8     4  format version, u32 little-endian (1)
//!     12     4  CRC-32 (crc32fast) of every byte from offset 16 to the end
//!     16     8  version, u64 little-endian: a view's optimistic version,
//!               or the checkpoint's position
//!     24     4  id length in bytes, u32 little-endian
//!     28     4  payload length in bytes, u32 little-endian
//!     32     -  id (UTF-8), then payload (JSON)
//! ```
//!
//! A file is written whole to a temporary name, synced, and renamed into
//! place (then the directory synced), so a crash leaves the old record or
//! the new one; the checksum catches anything else (bit rot, a file
//! truncated or overwritten by other software).

/// The first bytes of every view file.
pub(crate) const VIEW_MAGIC: [u8; 8] = *b"ANNALSVW";
/// The format version this code writes and reads.
pub(crate) const VIEW_FORMAT_VERSION: u32 = 1;
/// The length of the fixed header, before the id and the payload.
pub(crate) const VIEW_HEADER_LEN: usize = 32;
/// The longest view id a record holds, in bytes.
pub const MAX_VIEW_ID_BYTES: usize = 64 * 1024;
/// The largest serialized view (its JSON) a record holds, in bytes.
pub const MAX_VIEW_BYTES: usize = 64 * 1024 * 1024;

const _: () = assert!(VIEW_HEADER_LEN == 8 + 4 + 4 + 8 + 4 + 4);
// Both lengths fit their u32 fields.
const _: () = assert!(MAX_VIEW_ID_BYTES <= u32::MAX as usize);
const _: () = assert!(MAX_VIEW_BYTES <= u32::MAX as usize);

/// The largest file a record can be: what a reader may read, at most.
pub(crate) const MAX_VIEW_FILE_BYTES: u64 =
    (VIEW_HEADER_LEN + MAX_VIEW_ID_BYTES + MAX_VIEW_BYTES) as u64;

/// A decoded record, borrowing from the file's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ViewRecord<'a> {
    pub id: &'a str,
    pub version: u64,
    pub payload: &'a [u8],
}

/// Why a record cannot be encoded: a field over its limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// The name of the limit.
    pub limit: &'static str,
    pub actual: usize,
    pub max: usize,
}

/// Encodes a record.
///
/// # Errors
/// [`TooLarge`] if the id or the payload is over its limit.
pub(crate) fn encode_view_record(record: &ViewRecord<'_>) -> Result<Vec<u8>, TooLarge> {
    let too_large = |limit, actual, max| TooLarge { limit, actual, max };
    if record.id.len() > MAX_VIEW_ID_BYTES {
        return Err(too_large(
            "annals::cqrs::MAX_VIEW_ID_BYTES",
            record.id.len(),
            MAX_VIEW_ID_BYTES,
        ));
    }
    if record.payload.len() > MAX_VIEW_BYTES {
        return Err(too_large(
            "annals::cqrs::MAX_VIEW_BYTES",
            record.payload.len(),
            MAX_VIEW_BYTES,
        ));
    }
    let mut bytes = Vec::with_capacity(VIEW_HEADER_LEN + record.id.len() + record.payload.len());
    bytes.extend_from_slice(&VIEW_MAGIC);
    bytes.extend_from_slice(&VIEW_FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]); // the checksum, below
    bytes.extend_from_slice(&record.version.to_le_bytes());
    // Checked above: both fit in u32.
    bytes.extend_from_slice(&(record.id.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(record.payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(record.id.as_bytes());
    bytes.extend_from_slice(record.payload);
    let checksum = crc32fast::hash(&bytes[16..]);
    bytes[12..16].copy_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(decode_view_record(&bytes).as_ref(), Ok(record));
    Ok(bytes)
}

/// Decodes a record; never panics, whatever the bytes.
///
/// # Errors
/// A message saying which check failed.
pub(crate) fn decode_view_record(bytes: &[u8]) -> Result<ViewRecord<'_>, String> {
    let Some(header) = bytes.get(..VIEW_HEADER_LEN) else {
        return Err(format!(
            "{} bytes, shorter than the {VIEW_HEADER_LEN}-byte header",
            bytes.len()
        ));
    };
    let u32_at = |offset: usize| {
        let mut field = [0; 4];
        field.copy_from_slice(&header[offset..offset + 4]);
        u32::from_le_bytes(field)
    };
    if header[..8] != VIEW_MAGIC {
        return Err("not an annals view file (wrong magic bytes)".into());
    }
    let format_version = u32_at(8);
    if format_version != VIEW_FORMAT_VERSION {
        return Err(format!(
            "format version {format_version}, but this build reads version {VIEW_FORMAT_VERSION}"
        ));
    }
    let checksum = u32_at(12);
    let actual = crc32fast::hash(&bytes[16..]);
    if checksum != actual {
        return Err(format!(
            "checksum mismatch (recorded {checksum:#010x}, computed {actual:#010x})"
        ));
    }
    let mut version = [0; 8];
    version.copy_from_slice(&header[16..24]);
    let version = u64::from_le_bytes(version);
    let id_len = u32_at(24) as usize;
    let payload_len = u32_at(28) as usize;
    let expected_len = (VIEW_HEADER_LEN as u64) + id_len as u64 + payload_len as u64;
    if bytes.len() as u64 != expected_len {
        return Err(format!(
            "{} bytes, but its header says {expected_len}",
            bytes.len()
        ));
    }
    let id_end = VIEW_HEADER_LEN + id_len;
    let id = std::str::from_utf8(&bytes[VIEW_HEADER_LEN..id_end])
        .map_err(|_| "the view id is not UTF-8".to_string())?;
    Ok(ViewRecord {
        id,
        version,
        payload: &bytes[id_end..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode_view_record(&ViewRecord {
            id: "ada-7",
            version: 3,
            payload: br#"{"cents":12}"#,
        })
        .unwrap()
    }

    #[test]
    fn a_record_round_trips() {
        let bytes = sample();
        assert_eq!(bytes.len(), VIEW_HEADER_LEN + 5 + 12);
        assert_eq!(
            decode_view_record(&bytes).unwrap(),
            ViewRecord {
                id: "ada-7",
                version: 3,
                payload: br#"{"cents":12}"#,
            }
        );
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let bytes = sample();
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_view_record(&damaged).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(decode_view_record(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_view_record(&longer).is_err());
    }

    #[test]
    fn oversized_fields_are_refused_before_encoding() {
        let id = "x".repeat(MAX_VIEW_ID_BYTES + 1);
        let error = encode_view_record(&ViewRecord {
            id: &id,
            version: 1,
            payload: b"{}",
        })
        .unwrap_err();
        assert_eq!(error.limit, "annals::cqrs::MAX_VIEW_ID_BYTES");
    }
}
