//! The data of an event with a subject, as stored: sealed with the subject's
//! key (crypto-shredding: destroying the key makes every such event's data
//! unreadable, while the stored bytes, and so the hash chain over them, stay
//! as they were).
//!
//! ```text
//! nonce (24 bytes, random) || XChaCha20-Poly1305 ciphertext || tag (16 bytes)
//! ```
//!
//! The associated data binds the ciphertext to its event, so that sealed
//! data copied into another event (another id, stream or subject) fails to
//! open instead of passing as that event's data:
//!
//! ```text
//! "annals sealed event data v1" || id (16 bytes)
//!   || len(stream) u32 LE || stream || len(subject) u32 LE || subject
//! ```
//!
//! Pure functions: the caller draws the nonce (the writer, from the
//! operating system's random source). XChaCha20's 192-bit nonce makes
//! random nonces safe for any number of events under one key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// Bytes of a subject's key.
pub const KEY_LEN: usize = 32;

/// Bytes of the random nonce in front of the ciphertext.
pub const NONCE_LEN: usize = 24;

/// Bytes of the Poly1305 authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;

/// Bytes sealing adds to the data: the nonce and the tag.
pub const SEALED_OVERHEAD_BYTES: usize = NONCE_LEN + TAG_LEN;

/// Separates this use of a key from any other (and names the layout's
/// version, should it ever change).
const DOMAIN: &[u8] = b"annals sealed event data v1";

/// What sealed data is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedFor<'a> {
    /// The event's id.
    pub id: [u8; 16],
    /// The event's stream.
    pub stream: &'a str,
    /// The data subject whose key seals it.
    pub subject: &'a str,
}

impl SealedFor<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad =
            Vec::with_capacity(DOMAIN.len() + 16 + 8 + self.stream.len() + self.subject.len());
        aad.extend_from_slice(DOMAIN);
        aad.extend_from_slice(&self.id);
        for part in [self.stream, self.subject] {
            // Event fields are far below 4 GiB (Limits::MAX_EVENT_BYTES).
            aad.extend_from_slice(&(part.len() as u32).to_le_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Why sealed data did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a nonce and a tag.
    TooShort,
    /// The tag does not match: another key, another event, or changed bytes.
    NotAuthentic,
}

impl OpenError {
    /// What went wrong, for people.
    pub fn as_str(self) -> &'static str {
        match self {
            OpenError::TooShort => "sealed data is shorter than its nonce and tag (40 bytes)",
            OpenError::NotAuthentic => {
                "sealed data does not authenticate with the subject's key (another key, or \
                 data of another event)"
            }
        }
    }
}

const _: () = assert!(SEALED_OVERHEAD_BYTES == 40);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seals `plaintext` for `sealed_for` with `key` and `nonce`; appends
/// `nonce || ciphertext || tag` to `out`.
pub fn seal(
    out: &mut Vec<u8>,
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    sealed_for: &SealedFor<'_>,
    plaintext: &[u8],
) {
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let aad = sealed_for.associated_data();
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("XChaCha20-Poly1305 seals any message below 256 GiB; events are far smaller");
    out.reserve(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ciphertext);
}

/// Opens data sealed by [`seal`]. Never panics, whatever the bytes.
///
/// # Errors
/// [`OpenError`] when `sealed` is too short or does not authenticate.
pub fn open(
    key: &[u8; KEY_LEN],
    sealed_for: &SealedFor<'_>,
    sealed: &[u8],
) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < SEALED_OVERHEAD_BYTES {
        return Err(OpenError::TooShort);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let aad = sealed_for.associated_data();
    cipher
        .decrypt(
            &XNonce::from(nonce_bytes),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| OpenError::NotAuthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOR: SealedFor<'static> = SealedFor {
        id: [7; 16],
        stream: "customer-1",
        subject: "subject-1",
    };

    fn sealed(plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(&mut out, &[1; KEY_LEN], &[2; NONCE_LEN], &FOR, plaintext);
        out
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        for len in [0usize, 1, 64, 1000] {
            let plaintext = vec![0xA5u8; len];
            let out = sealed(&plaintext);
            assert_eq!(out.len(), len + SEALED_OVERHEAD_BYTES);
            assert_eq!(&out[..NONCE_LEN], &[2; NONCE_LEN]);
            if len > 0 {
                assert!(
                    !out.windows(len.min(8))
                        .any(|w| w == &plaintext[..len.min(8)])
                );
            }
            assert_eq!(open(&[1; KEY_LEN], &FOR, &out), Ok(plaintext));
        }
    }

    #[test]
    fn another_key_event_or_byte_does_not_open() {
        let out = sealed(b"personal data");
        assert_eq!(
            open(&[9; KEY_LEN], &FOR, &out),
            Err(OpenError::NotAuthentic)
        );
        for other in [
            SealedFor { id: [8; 16], ..FOR },
            SealedFor {
                stream: "customer-2",
                ..FOR
            },
            SealedFor {
                subject: "subject-2",
                ..FOR
            },
        ] {
            assert_eq!(
                open(&[1; KEY_LEN], &other, &out),
                Err(OpenError::NotAuthentic)
            );
        }
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(&[1; KEY_LEN], &FOR, &bad),
                Err(OpenError::NotAuthentic)
            );
        }
        for cut in 0..SEALED_OVERHEAD_BYTES {
            assert_eq!(
                open(&[1; KEY_LEN], &FOR, &out[..cut]),
                Err(OpenError::TooShort)
            );
        }
    }
}
