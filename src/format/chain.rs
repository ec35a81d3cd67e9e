//! The hash chain that makes the log tamper-evident.
//!
//! Each batch extends the chain:
//!
//! ```text
//! chain(batch) = BLAKE3-256( chain(previous batch)
//!                         || every byte of the batch's event frames, padding included
//!                         || the batch's commit body from byte 35 on )
//! ```
//!
//! The commit body's bytes 3..35 hold the result. The chain runs across
//! segments: a segment header's `chain_start` is the previous segment's
//! footer `chain_end`, and the very first value is [`GENESIS`]. BLAKE3 was
//! chosen over SHA-256 because it is several times faster in software (the
//! writer hashes every byte it appends) while being a 256-bit cryptographic
//! hash with a public specification and reference implementations in many
//! languages.

use super::CHAIN_LEN;

/// The chain value before the first batch of a store: 32 zero bytes.
pub const GENESIS: [u8; CHAIN_LEN] = [0u8; CHAIN_LEN];

/// The chain value after a batch, given the value before it, the bytes of its
/// event frames and the hashed part of its commit body.
pub fn next_chain(
    previous: &[u8; CHAIN_LEN],
    event_frames: &[u8],
    commit_tail: &[u8],
) -> [u8; CHAIN_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(previous);
    hasher.update(event_frames);
    hasher.update(commit_tail);
    *hasher.finalize().as_bytes()
}

/// Lower-case hexadecimal of a chain value.
pub fn to_hex(value: &[u8; CHAIN_LEN]) -> String {
    value.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hexadecimal digits into a chain value.
pub fn from_hex(text: &str) -> Option<[u8; CHAIN_LEN]> {
    if text.len() != CHAIN_LEN * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; CHAIN_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_every_input() {
        let a = next_chain(&GENESIS, b"frames", b"tail");
        assert_ne!(a, next_chain(&[1u8; 32], b"frames", b"tail"));
        assert_ne!(a, next_chain(&GENESIS, b"frameS", b"tail"));
        assert_ne!(a, next_chain(&GENESIS, b"frames", b"tai1"));
        assert_eq!(from_hex(&to_hex(&a)), Some(a));
        assert_eq!(from_hex("zz"), None);
    }
}
