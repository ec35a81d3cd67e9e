//! The store settings file, `annals.settings`: the segment size and limits a
//! store was created with (or last explicitly changed to), so that every
//! later writer uses them unless its options change them.
//!
//! ```text
//! offset size field
//!      0    8 magic                 "ANNALSET"
//!      8    2 version               u16 (1)
//!     10    6 reserved              zero
//!     16    8 segment_size_bytes    u64
//!     24    8 max_stream_id_bytes   u64
//!     32    8 max_event_type_bytes  u64
//!     40    8 max_event_bytes       u64
//!     48    8 max_batch_events      u64
//!     56    8 max_snapshot_bytes    u64
//!     64   12 reserved              zero
//!     76    4 crc                   CRC-32 (IEEE) of bytes 0..76
//! ```
//!
//! Only the encoding is checked here; whether the values are allowed is
//! `Options::validate`'s to say.

use super::{le_u16, le_u32, le_u64};

/// Magic bytes that open the settings file.
pub const SETTINGS_MAGIC: [u8; 8] = *b"ANNALSET";

/// Bytes of the settings file.
pub const SETTINGS_LEN: usize = 80;

/// The settings file's version.
pub const SETTINGS_VERSION: u16 = 1;

const CRC_AT: usize = 76;
const _: () = assert!(CRC_AT + 4 == SETTINGS_LEN);

/// The recorded settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// Size of new segment files.
    pub segment_size_bytes: u64,
    /// `Limits::max_stream_id_bytes`.
    pub max_stream_id_bytes: u64,
    /// `Limits::max_event_type_bytes`.
    pub max_event_type_bytes: u64,
    /// `Limits::max_event_bytes`.
    pub max_event_bytes: u64,
    /// `Limits::max_batch_events`.
    pub max_batch_events: u64,
    /// `Limits::max_snapshot_bytes`.
    pub max_snapshot_bytes: u64,
}

/// Why a settings file did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsError {
    /// Not exactly [`SETTINGS_LEN`] bytes.
    WrongLength(usize),
    /// The magic bytes are wrong.
    BadMagic,
    /// The checksum does not match.
    BadChecksum,
    /// A version this build cannot read.
    UnsupportedVersion(u16),
    /// Reserved bytes are not zero.
    ReservedNotZero,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsError::WrongLength(n) => {
                write!(f, "the file is {n} bytes, not {SETTINGS_LEN}")
            }
            SettingsError::BadMagic => write!(f, "the magic is not \"ANNALSET\""),
            SettingsError::BadChecksum => write!(f, "the checksum does not match"),
            SettingsError::UnsupportedVersion(v) => write!(
                f,
                "settings version {v} is newer than this build reads (up to {SETTINGS_VERSION})"
            ),
            SettingsError::ReservedNotZero => write!(f, "reserved bytes are not zero"),
        }
    }
}

impl StoreSettings {
    /// Encodes the file.
    pub fn encode(&self) -> [u8; SETTINGS_LEN] {
        let mut out = [0u8; SETTINGS_LEN];
        out[0..8].copy_from_slice(&SETTINGS_MAGIC);
        out[8..10].copy_from_slice(&SETTINGS_VERSION.to_le_bytes());
        let fields = [
            self.segment_size_bytes,
            self.max_stream_id_bytes,
            self.max_event_type_bytes,
            self.max_event_bytes,
            self.max_batch_events,
            self.max_snapshot_bytes,
        ];
        for (i, value) in fields.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&value.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[..CRC_AT]);
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the file. Never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<StoreSettings, SettingsError> {
        if bytes.len() != SETTINGS_LEN {
            return Err(SettingsError::WrongLength(bytes.len()));
        }
        if bytes[0..8] != SETTINGS_MAGIC {
            return Err(SettingsError::BadMagic);
        }
        if crc32fast::hash(&bytes[..CRC_AT]) != le_u32(bytes, CRC_AT) {
            return Err(SettingsError::BadChecksum);
        }
        let version = le_u16(bytes, 8);
        if version == 0 || version > SETTINGS_VERSION {
            return Err(SettingsError::UnsupportedVersion(version));
        }
        if bytes[10..16]
            .iter()
            .chain(&bytes[64..CRC_AT])
            .any(|&b| b != 0)
        {
            return Err(SettingsError::ReservedNotZero);
        }
        Ok(StoreSettings {
            segment_size_bytes: le_u64(bytes, 16),
            max_stream_id_bytes: le_u64(bytes, 24),
            max_event_type_bytes: le_u64(bytes, 32),
            max_event_bytes: le_u64(bytes, 40),
            max_batch_events: le_u64(bytes, 48),
            max_snapshot_bytes: le_u64(bytes, 56),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoreSettings {
        StoreSettings {
            segment_size_bytes: 64 * 1024,
            max_stream_id_bytes: 100,
            max_event_type_bytes: 50,
            max_event_bytes: 4096,
            max_batch_events: 10,
            max_snapshot_bytes: 1 << 20,
        }
    }

    #[test]
    fn settings_round_trip_and_every_bit_flip_is_rejected() {
        let bytes = sample().encode();
        assert_eq!(StoreSettings::decode(&bytes), Ok(sample()));
        for bit in 0..SETTINGS_LEN * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(StoreSettings::decode(&flipped).is_err(), "bit {bit}");
        }
        assert_eq!(
            StoreSettings::decode(&bytes[..40]),
            Err(SettingsError::WrongLength(40))
        );
    }
}
