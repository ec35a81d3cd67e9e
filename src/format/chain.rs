//! The hash chain that makes the log tamper-evident.
//!
//! Each batch extends the chain:
//!
//! ```text
//! chain(batch) = SHA-256( chain(previous batch)
//!                      || every byte of the batch's event frames, padding included
//!                      || the batch's commit body from byte 35 on )
//! ```
//!
//! The commit body's bytes 3..35 hold the result. The chain runs across
//! segments: a segment header's `chain_start` is the previous segment's
//! footer `chain_end`, and the very first value is [`GENESIS`].
//!
//! Why SHA-256 rather than BLAKE3: the writer hashes every batch, and batches
//! are small (a few hundred bytes to a few KiB). At those sizes SHA-256 with
//! the CPU's SHA instructions (x86 SHA-NI, ARMv8 crypto extensions) ran two
//! to three times faster than BLAKE3 on the 2-core development machine (1.50
//! against 0.64 GB/s on 3.4 KiB inputs, 1.30 against 0.52 on 300 bytes;
//! BLAKE3 only pulls ahead on inputs of tens of KiB), measured with
//! `cargo run --release --example hash_speed`. And an auditor checking an archive in ten years finds SHA-256 in
//! every language's standard library and in `sha256sum`/`openssl`.

use sha2::Digest;

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
    let mut hasher = sha2::Sha256::new();
    hasher.update(previous);
    hasher.update(event_frames);
    hasher.update(commit_tail);
    hasher.finalize().into()
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

    /// The chain is plain SHA-256 of the concatenation, so any SHA-256
    /// implementation recomputes it: the value for 32 zero bytes followed by
    /// "abc" is fixed here (computed independently with
    /// `printf '%064d' 0 | xxd -r -p | cat - <(printf abc) | sha256sum`).
    #[test]
    fn the_chain_is_sha256_of_the_concatenation() {
        let value = next_chain(&GENESIS, b"ab", b"c");
        assert_eq!(
            to_hex(&value),
            "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370"
        );
    }
}
