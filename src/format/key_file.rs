//! The key file (`annals.keys`): the data subjects' keys of a store, as pure
//! functions over bytes. `docs/format.md` ("Key file") states the layout.
//!
//! ```text
//! header (16 bytes): magic "ANNALKEY", version u16 (1), reserved u16 (0),
//!                    crc u32 = CRC-32 of bytes 0..12
//! records, back to back, each 40 + n bytes:
//!   subject_len u16 (n: 1..=MAX_SUBJECT_BYTES), reserved u16 (0),
//!   key (32 bytes), subject (n bytes of UTF-8),
//!   crc u32 = CRC-32 of the record's bytes before it
//! ```
//!
//! New keys are appended (then synced); a destroyed key is removed by
//! writing the whole file anew without it. So a crash can tear only the
//! last record, whose key no `get_or_create` ever returned: [`decode`]
//! drops a last record that fails its checks and reports it as a
//! [`TornTail`]. A failing record with more bytes after it than one record
//! could hold is damage, an error.

use super::{le_u16, le_u32};
use crate::format::sealed_data::KEY_LEN;

/// The key file's name in the store directory.
pub const KEY_FILE_NAME: &str = "annals.keys";

/// Magic bytes at offset 0.
pub const KEY_FILE_MAGIC: [u8; 8] = *b"ANNALKEY";

/// The key file version this build writes and reads.
pub const KEY_FILE_VERSION: u16 = 1;

/// Bytes of the header.
pub const KEY_FILE_HEADER_LEN: usize = 16;

/// The longest subject, in bytes of UTF-8. A subject is stored in every
/// event body that names it and in the key file; appends with a longer one
/// are refused.
pub const MAX_SUBJECT_BYTES: usize = 1024;

/// Bytes of a record besides its subject: length, reserved, key, checksum.
pub const KEY_RECORD_OVERHEAD_BYTES: usize = 4 + KEY_LEN + 4;

const _: () = assert!(MAX_SUBJECT_BYTES <= u16::MAX as usize);

/// A valid key file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFile {
    /// Every subject's key, in file order (each subject once).
    pub keys: Vec<(String, [u8; KEY_LEN])>,
    /// Bytes of the header and the valid records: where the next record goes.
    pub valid_len: usize,
    /// A last record that failed its checks (a torn append), if any.
    pub torn: Option<TornTail>,
}

/// A last record that failed its checks, ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Its offset in the file.
    pub offset: usize,
    /// What was wrong with it.
    pub problem: &'static str,
}

/// Why a key file does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileError {
    /// Offset of the offending header or record.
    pub offset: usize,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.problem)
    }
}

/// The header of an empty key file.
pub fn encode_header() -> [u8; KEY_FILE_HEADER_LEN] {
    let mut out = [0u8; KEY_FILE_HEADER_LEN];
    out[0..8].copy_from_slice(&KEY_FILE_MAGIC);
    out[8..10].copy_from_slice(&KEY_FILE_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&out[0..12]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Appends the record of `subject`'s key to `out`.
///
/// # Panics
/// If `subject` is empty or longer than [`MAX_SUBJECT_BYTES`]: callers
/// validate subjects before they get this far.
pub fn encode_record(out: &mut Vec<u8>, subject: &str, key: &[u8; KEY_LEN]) {
    assert!(
        !subject.is_empty() && subject.len() <= MAX_SUBJECT_BYTES,
        "subjects are validated before their keys are stored"
    );
    let start = out.len();
    out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(key);
    out.extend_from_slice(subject.as_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A whole key file holding `keys`.
pub fn encode<'a>(keys: impl IntoIterator<Item = (&'a str, &'a [u8; KEY_LEN])>) -> Vec<u8> {
    let mut out = encode_header().to_vec();
    for (subject, key) in keys {
        encode_record(&mut out, subject, key);
    }
    out
}

/// Decodes a key file. Never panics, whatever the bytes.
///
/// # Errors
/// [`KeyFileError`] for a bad header, a damaged record that is not the
/// last, or a subject stored twice.
pub fn decode(bytes: &[u8]) -> Result<KeyFile, KeyFileError> {
    let fail = |offset: usize, problem: String| Err(KeyFileError { offset, problem });
    if bytes.len() < KEY_FILE_HEADER_LEN {
        return fail(
            0,
            format!("the file is {} bytes, shorter than its header", bytes.len()),
        );
    }
    if bytes[0..8] != KEY_FILE_MAGIC {
        return fail(0, "the magic is not ANNALKEY".into());
    }
    if le_u32(bytes, 12) != crc32fast::hash(&bytes[0..12]) {
        return fail(0, "the header checksum does not match".into());
    }
    let version = le_u16(bytes, 8);
    if version != KEY_FILE_VERSION {
        return fail(
            0,
            format!("version {version} is not one this build reads ({KEY_FILE_VERSION})"),
        );
    }
    if le_u16(bytes, 10) != 0 {
        return fail(10, "reserved header bytes are not zero".into());
    }
    let mut file = KeyFile {
        keys: Vec::new(),
        valid_len: KEY_FILE_HEADER_LEN,
        torn: None,
    };
    let mut seen = std::collections::HashSet::new();
    let mut offset = KEY_FILE_HEADER_LEN;
    while offset < bytes.len() {
        let remaining = bytes.len() - offset;
        match record_at(&bytes[offset..]) {
            Ok((subject, key, len)) => {
                if !seen.insert(subject) {
                    return fail(offset, format!("subject {subject:?} is stored twice"));
                }
                file.keys.push((subject.to_string(), key));
                offset += len;
                file.valid_len = offset;
            }
            Err((claimed_len, problem)) => {
                // A torn append leaves one incomplete or garbled record at
                // the end; damage with more records after it is not that.
                let could_be_last = match claimed_len {
                    Some(len) => len >= remaining,
                    None => remaining < KEY_RECORD_OVERHEAD_BYTES + MAX_SUBJECT_BYTES,
                };
                if !could_be_last {
                    return fail(
                        offset,
                        format!("damaged key record ({problem}) with more records after it"),
                    );
                }
                file.torn = Some(TornTail { offset, problem });
                break;
            }
        }
    }
    Ok(file)
}

/// The record at the start of `bytes`: its subject, key and length; or
/// its claimed length (when the length field is readable and valid) and
/// what is wrong.
/// A record that failed its checks: its claimed length, if readable, and why.
type RecordProblem = (Option<usize>, &'static str);

fn record_at(bytes: &[u8]) -> Result<(&str, [u8; KEY_LEN], usize), RecordProblem> {
    if bytes.len() < 4 {
        return Err((None, "shorter than a record's length field"));
    }
    let subject_len = usize::from(le_u16(bytes, 0));
    if subject_len == 0 || subject_len > MAX_SUBJECT_BYTES {
        return Err((None, "the subject length is 0 or above MAX_SUBJECT_BYTES"));
    }
    let len = KEY_RECORD_OVERHEAD_BYTES + subject_len;
    if bytes.len() < len {
        return Err((Some(len), "the record runs past the end of the file"));
    }
    let crc_at = len - 4;
    if le_u32(bytes, crc_at) != crc32fast::hash(&bytes[..crc_at]) {
        return Err((Some(len), "the record checksum does not match"));
    }
    if le_u16(bytes, 2) != 0 {
        return Err((Some(len), "reserved record bytes are not zero"));
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&bytes[4..4 + KEY_LEN]);
    let subject = std::str::from_utf8(&bytes[4 + KEY_LEN..crc_at])
        .map_err(|_| (Some(len), "the subject is not UTF-8"))?;
    Ok((subject, key, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode([("alice", &[1u8; KEY_LEN]), ("bob", &[2u8; KEY_LEN])])
    }

    #[test]
    fn round_trips() {
        let bytes = sample();
        let file = decode(&bytes).unwrap();
        assert_eq!(
            file.keys,
            [
                ("alice".to_string(), [1u8; KEY_LEN]),
                ("bob".to_string(), [2u8; KEY_LEN])
            ]
        );
        assert_eq!(file.valid_len, bytes.len());
        assert_eq!(file.torn, None);
        assert_eq!(decode(&encode_header()).unwrap().keys, []);
    }

    /// Every cut inside the last record is a torn tail that keeps the
    /// records before it; a cut inside the header is an error.
    #[test]
    fn a_cut_last_record_is_a_torn_tail() {
        let bytes = sample();
        let second = KEY_FILE_HEADER_LEN + KEY_RECORD_OVERHEAD_BYTES + 5;
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut]) {
                Ok(file) => {
                    assert!(cut >= KEY_FILE_HEADER_LEN, "cut {cut}");
                    let whole = if cut >= second { 1 } else { 0 };
                    assert_eq!(file.keys.len(), whole, "cut {cut}");
                    assert_eq!(
                        file.torn.is_some(),
                        cut != KEY_FILE_HEADER_LEN && cut != second
                    );
                }
                Err(error) => assert!(cut < KEY_FILE_HEADER_LEN, "cut {cut}: {error}"),
            }
        }
    }

    /// A flipped bit anywhere is caught: in the header or a record before
    /// the last, an error; in the last record, that record is dropped, or
    /// refused when its flipped length makes it look followed by more bytes
    /// (byte 61, bit 0: "bob" read as 2 bytes). Never a changed key.
    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = sample();
        let second = KEY_FILE_HEADER_LEN + KEY_RECORD_OVERHEAD_BYTES + 5;
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                match decode(&bad) {
                    Ok(file) => {
                        assert!(i >= KEY_FILE_HEADER_LEN, "byte {i} bit {bit}");
                        assert!(file.torn.is_some(), "byte {i} bit {bit}");
                        assert!(file.keys.len() < 2, "byte {i} bit {bit}");
                        assert!(file.keys.iter().all(|(_, key)| key == &[1u8; KEY_LEN]));
                    }
                    Err(_) => assert!(
                        i < second || (i == second && bit < 2),
                        "byte {i} bit {bit}: last record refused"
                    ),
                }
            }
        }
    }

    #[test]
    fn a_subject_stored_twice_is_refused() {
        let bytes = encode([("alice", &[1u8; KEY_LEN]), ("alice", &[2u8; KEY_LEN])]);
        assert!(decode(&bytes).unwrap_err().problem.contains("twice"));
    }
}
