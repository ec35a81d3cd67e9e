//! Signed checkpoints: the C2SP signed-note format
//! (<https://c2sp.org/signed-note>) carrying a tlog checkpoint
//! (<https://c2sp.org/tlog-checkpoint>), with Ed25519 keys in the text form
//! of Go's `golang.org/x/mod/sumdb/note`, so that notes and keys made here
//! open with the Go tools and the other way round.
//!
//! A note is a body, a blank line and signature lines:
//!
//! ```text
//! example.com/log                    origin
//! 15                                 tree size, decimal
//! 1f8o0BvOqKY6gjd1X8Eq7AO7YdX4IIrvaLvNYpmnb8c=   root hash, standard base64
//!                                    (optional extension lines, then) a blank line
//! — example.com/log Az3grlvh...==    "— " key name, base64(key hash || signature)
//! ```
//!
//! The key hash is the first 4 bytes of SHA-256(key name || "\n" || 0x01 ||
//! public key), 0x01 naming Ed25519; the signature covers the body's bytes.
//!
//! ```
//! use annals::proof::note::{self, Checkpoint};
//!
//! let (signer, verifier) = note::generate_key("example.com/log")?;
//! let checkpoint = Checkpoint {
//!     origin: "example.com/log".into(),
//!     size: 3,
//!     root: [7; 32],
//!     extensions: Vec::new(),
//! };
//! let signed = note::sign(&checkpoint, &signer)?;
//! assert_eq!(note::open(&signed, &verifier)?, checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The longest note [`open`] accepts, in bytes. A checkpoint with a few
/// signatures is well under 1 KiB; the limit bounds the work an untrusted
/// note can cause.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// The most signature lines a note may have (Go's `note.Open` limit).
pub const MAX_SIGNATURES: usize = 100;

/// The most lines a checkpoint body may have: origin, size, root and up to
/// 253 extension lines.
pub const MAX_BODY_LINES: usize = 256;

/// The longest key name, in bytes.
pub const MAX_KEY_NAME_BYTES: usize = 256;

/// The algorithm byte of Ed25519 keys in key hashes and key texts.
const ALGORITHM_ED25519: u8 = 0x01;

/// What starts every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Bytes of a signature line's decoded payload: key hash and Ed25519
/// signature.
const SIGNATURE_PAYLOAD_LEN: usize = 4 + 64;

/// Why a key, note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// A key name is empty, too long, or has whitespace, a control
    /// character or a '+'.
    InvalidKeyName,
    /// A verifier key text is not `<name>+<8 hex digits>+<base64 key>`.
    MalformedVerifierKey(&'static str),
    /// A signer key text is not `PRIVATE+KEY+<name>+<8 hex>+<base64 seed>`.
    /// (The message never repeats the text: it is a secret.)
    MalformedSignerKey(&'static str),
    /// The key hash in a key text does not match its name and key.
    KeyHashMismatch,
    /// A key is not an Ed25519 key (algorithm byte 0x01).
    UnknownAlgorithm(u8),
    /// The note is longer than [`MAX_NOTE_BYTES`].
    TooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The note has a control character other than a newline.
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
    },
    /// The note has no blank line followed by signature lines.
    NoSignatures,
    /// A signature line is not `— <name> <base64>`.
    MalformedSignatureLine {
        /// 1-based number of the line within the note.
        line: usize,
    },
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    TooManySignatures,
    /// A signature by the expected key (name and key hash) does not verify:
    /// the body or signature was changed.
    InvalidSignature {
        /// The key's name.
        key_name: String,
    },
    /// No signature line is by the expected key (other keys' signatures are
    /// ignored).
    NotSignedByKey {
        /// The key's name.
        key_name: String,
    },
    /// The checkpoint body is not origin, size, root hash and extension
    /// lines.
    MalformedCheckpoint {
        /// 1-based line within the body.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    Random(String),
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::InvalidKeyName => write!(
                f,
                "invalid key name: it must be 1 to {MAX_KEY_NAME_BYTES} bytes with no whitespace, control character or '+'"
            ),
            NoteError::MalformedVerifierKey(why) => write!(
                f,
                "malformed verifier key ({why}): expected <name>+<8 hex digits>+<base64 key>"
            ),
            NoteError::MalformedSignerKey(why) => write!(
                f,
                "malformed signer key ({why}): expected PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>"
            ),
            NoteError::KeyHashMismatch => write!(
                f,
                "the key hash in the key text does not match its name and key: the key text was altered"
            ),
            NoteError::UnknownAlgorithm(a) => write!(
                f,
                "key algorithm {a:#04x} is not supported (only 0x01, Ed25519)"
            ),
            NoteError::TooLarge { len } => write!(
                f,
                "the note has {len} bytes; at most {MAX_NOTE_BYTES} are accepted"
            ),
            NoteError::ControlCharacter { offset } => write!(
                f,
                "the note has a control character at byte {offset}: a note is text with newlines only"
            ),
            NoteError::NoSignatures => write!(
                f,
                "the note has no signature block: it must end with a blank line and signature lines"
            ),
            NoteError::MalformedSignatureLine { line } => write!(
                f,
                "line {line} of the note is not a signature line (\u{2014} <key name> <base64 signature>)"
            ),
            NoteError::TooManySignatures => {
                write!(f, "the note has more than {MAX_SIGNATURES} signatures")
            }
            NoteError::InvalidSignature { key_name } => write!(
                f,
                "the signature by key {key_name} does not verify: the note was altered or forged"
            ),
            NoteError::NotSignedByKey { key_name } => write!(
                f,
                "the note has no signature by key {key_name} (check that it is the right key and the right note)"
            ),
            NoteError::MalformedCheckpoint { line, reason } => {
                write!(f, "line {line} of the checkpoint: {reason}")
            }
            NoteError::Random(e) => write!(f, "the system random number generator failed: {e}"),
        }
    }
}

impl std::error::Error for NoteError {}

impl NoteError {
    /// Whether the note is well formed but not signed by the key given (a
    /// signature by it that does not verify, or none by it): the note does
    /// not vouch for its checkpoint, as opposed to input that is not a note
    /// or key at all. Callers report the first as a failed check, the
    /// second as bad input.
    pub fn is_signature_failure(&self) -> bool {
        matches!(
            self,
            NoteError::InvalidSignature { .. } | NoteError::NotSignedByKey { .. }
        )
    }
}

/// A tlog checkpoint: the log's origin, its tree size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, by convention a schema-less URL
    /// (`example.com/log`): one line, not empty.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The tree's root hash (RFC 6962 MTH).
    pub root: Hash,
    /// Further lines after the root, each not empty (the format lets a log
    /// add such lines; annals writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The body text: origin, size and base64 root, each on a line, then the
    /// extension lines.
    ///
    /// # Errors
    /// [`NoteError::MalformedCheckpoint`] when the origin or an extension is
    /// empty, has a control character, or there are too many extensions.
    pub fn encode_body(&self) -> Result<String, NoteError> {
        check_line(&self.origin, 1)?;
        if self.extensions.len() > MAX_BODY_LINES - 3 {
            return Err(NoteError::MalformedCheckpoint {
                line: MAX_BODY_LINES + 1,
                reason: "too many extension lines",
            });
        }
        for (i, extension) in self.extensions.iter().enumerate() {
            check_line(extension, 4 + i)?;
        }
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for extension in &self.extensions {
            body.push_str(extension);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a body as [`encode_body`](Self::encode_body) writes it,
    /// strictly: every line ends with a newline, the size is canonical
    /// decimal (no sign, no leading zero), the root canonical base64 of 32
    /// bytes.
    ///
    /// # Errors
    /// [`NoteError::MalformedCheckpoint`] naming the line and what is wrong.
    pub fn parse_body(body: &str) -> Result<Self, NoteError> {
        let malformed = |line, reason| NoteError::MalformedCheckpoint { line, reason };
        let Some(body) = body.strip_suffix('\n') else {
            return Err(malformed(1, "the body does not end with a newline"));
        };
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_line(origin, 1)?;
        let size_text = lines
            .next()
            .ok_or(malformed(2, "the tree size is missing"))?;
        let size = parse_decimal(size_text).ok_or(malformed(
            2,
            "the tree size is not a decimal number below 2^64",
        ))?;
        let root_text = lines
            .next()
            .ok_or(malformed(3, "the root hash is missing"))?;
        let root = BASE64
            .decode(root_text)
            .ok()
            .and_then(|bytes| <Hash>::try_from(bytes.as_slice()).ok())
            .ok_or(malformed(3, "the root hash is not base64 of 32 bytes"))?;
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            let number = 4 + i;
            if number > MAX_BODY_LINES {
                return Err(malformed(number, "too many lines"));
            }
            check_line(line, number)?;
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// A checkpoint line: not empty, no control character (so no newline).
fn check_line(line: &str, number: usize) -> Result<(), NoteError> {
    if line.is_empty() {
        return Err(NoteError::MalformedCheckpoint {
            line: number,
            reason: "the line is empty",
        });
    }
    if line.chars().any(char::is_control) {
        return Err(NoteError::MalformedCheckpoint {
            line: number,
            reason: "the line has a control character",
        });
    }
    Ok(())
}

/// Canonical decimal: digits only, no leading zero unless it is "0".
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Whether `name` can name a key: not empty, not too long, no whitespace,
/// no control character, no '+' (the key texts' separator).
fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEY_NAME_BYTES
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// The key hash: the first 4 bytes (big-endian) of SHA-256(name || "\n" ||
/// 0x01 || public key).
fn key_hash(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALGORITHM_ED25519]);
    hasher.update(public_key);
    let digest: [u8; 32] = hasher.finalize().into();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Exactly 8 hex digits (`u32::from_str_radix` alone would take a sign).
fn parse_key_hash(text: &str) -> Option<u32> {
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(text, 16).ok()
    } else {
        None
    }
}

/// An Ed25519 public key with its name: checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_hash: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses `<name>+<8 hex digits key hash>+<base64(0x01 || public key)>`.
    ///
    /// # Errors
    /// [`NoteError::MalformedVerifierKey`], [`NoteError::InvalidKeyName`],
    /// [`NoteError::UnknownAlgorithm`] or [`NoteError::KeyHashMismatch`].
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash_text), Some(key_text)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedVerifierKey(
                "it does not have three parts",
            ));
        };
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key_hash = parse_key_hash(hash_text).ok_or(NoteError::MalformedVerifierKey(
            "the key hash is not 8 hex digits",
        ))?;
        let key_bytes = BASE64
            .decode(key_text)
            .map_err(|_| NoteError::MalformedVerifierKey("the key is not base64"))?;
        let (&algorithm, public_key) = key_bytes
            .split_first()
            .ok_or(NoteError::MalformedVerifierKey("the key is empty"))?;
        if algorithm != ALGORITHM_ED25519 {
            return Err(NoteError::UnknownAlgorithm(algorithm));
        }
        let public_key = <[u8; 32]>::try_from(public_key)
            .map_err(|_| NoteError::MalformedVerifierKey("an Ed25519 public key has 32 bytes"))?;
        if key_hash != self::key_hash(name, &public_key) {
            return Err(NoteError::KeyHashMismatch);
        }
        let key = VerifyingKey::from_bytes(&public_key)
            .map_err(|_| NoteError::MalformedVerifierKey("not a valid Ed25519 public key"))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key_hash,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash that signature lines by this key carry.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// The text form that [`parse`](Self::parse) reads.
    pub fn to_text(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALGORITHM_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_hash, BASE64.encode(key))
    }
}

/// An Ed25519 private key with its name: signs notes. Its `Debug` shows the
/// name and key hash only; the key is wiped from memory when dropped.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_hash: u32,
    key: SigningKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_hash", &format_args!("{:08x}", self.key_hash))
            .finish_non_exhaustive()
    }
}

impl SignerKey {
    /// Parses `PRIVATE+KEY+<name>+<8 hex digits key hash>+<base64(0x01 ||
    /// 32-byte seed)>`.
    ///
    /// # Errors
    /// [`NoteError::MalformedSignerKey`], [`NoteError::InvalidKeyName`],
    /// [`NoteError::UnknownAlgorithm`] or [`NoteError::KeyHashMismatch`].
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(hash_text), Some(key_text)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(NoteError::MalformedSignerKey(
                "it does not start with PRIVATE+KEY+ or has too few parts",
            ));
        };
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key_hash = parse_key_hash(hash_text).ok_or(NoteError::MalformedSignerKey(
            "the key hash is not 8 hex digits",
        ))?;
        let key_bytes = BASE64
            .decode(key_text)
            .map_err(|_| NoteError::MalformedSignerKey("the key is not base64"))?;
        let (&algorithm, seed) = key_bytes
            .split_first()
            .ok_or(NoteError::MalformedSignerKey("the key is empty"))?;
        if algorithm != ALGORITHM_ED25519 {
            return Err(NoteError::UnknownAlgorithm(algorithm));
        }
        let seed = <&[u8; 32]>::try_from(seed)
            .map_err(|_| NoteError::MalformedSignerKey("an Ed25519 seed has 32 bytes"))?;
        let key = SigningKey::from_bytes(seed);
        if key_hash != self::key_hash(name, key.verifying_key().as_bytes()) {
            return Err(NoteError::KeyHashMismatch);
        }
        Ok(SignerKey {
            name: name.to_owned(),
            key_hash,
            key,
        })
    }

    /// A new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`]; [`NoteError::Random`] if the random
    /// number generator fails.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NoteError::Random(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        Ok(SignerKey {
            name: name.to_owned(),
            key_hash: key_hash(name, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching public key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_hash: self.key_hash,
            key: self.key.verifying_key(),
        }
    }

    /// The text form that [`parse`](Self::parse) reads. It is the secret:
    /// store it as such.
    pub fn to_text(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALGORITHM_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_hash,
            BASE64.encode(key)
        )
    }
}

/// A new Ed25519 key pair named `name`, as texts: `(signer, verifier)`.
///
/// # Errors
/// [`NoteError::InvalidKeyName`]; [`NoteError::Random`] if the random
/// number generator fails.
pub fn generate_key(name: &str) -> Result<(String, String), NoteError> {
    let signer = SignerKey::generate(name)?;
    Ok((signer.to_text(), signer.verifier().to_text()))
}

/// Checks that a note's text is text: not too long, no control character
/// but newlines.
fn check_note_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge { len: text.len() });
    }
    match text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\n')
    {
        Some((offset, _)) => Err(NoteError::ControlCharacter { offset }),
        None => Ok(()),
    }
}

/// Signs `body` (text ending with a newline) with `key`: the whole note,
/// the body followed by a blank line and one signature line.
///
/// # Errors
/// [`NoteError::TooLarge`], [`NoteError::ControlCharacter`], or
/// [`NoteError::MalformedCheckpoint`] if the body does not end with a
/// newline or has a blank line (which would read as the signature block).
pub fn sign_note(body: &str, key: &SignerKey) -> Result<String, NoteError> {
    check_note_text(body)?;
    if !body.ends_with('\n') {
        return Err(NoteError::MalformedCheckpoint {
            line: body.split('\n').count(),
            reason: "the body does not end with a newline",
        });
    }
    if body.starts_with('\n') || body.contains("\n\n") {
        return Err(NoteError::MalformedCheckpoint {
            line: 1,
            reason: "the body has an empty line",
        });
    }
    let signature = key.key.sign(body.as_bytes());
    let mut payload = Vec::with_capacity(SIGNATURE_PAYLOAD_LEN);
    payload.extend_from_slice(&key.key_hash.to_be_bytes());
    payload.extend_from_slice(&signature.to_bytes());
    Ok(format!(
        "{body}\n{SIGNATURE_PREFIX}{} {}\n",
        key.name,
        BASE64.encode(payload)
    ))
}

/// Opens a note: checks that it has a valid signature by `key` and returns
/// its body. Signatures by other keys (another name or key hash) are
/// ignored; a signature that claims to be by `key` and does not verify
/// refuses the note.
///
/// # Errors
/// [`NoteError::TooLarge`], [`NoteError::ControlCharacter`],
/// [`NoteError::NoSignatures`], [`NoteError::MalformedSignatureLine`],
/// [`NoteError::TooManySignatures`], [`NoteError::InvalidSignature`] or
/// [`NoteError::NotSignedByKey`].
pub fn open_note<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    check_note_text(note)?;
    // The signature block follows the last blank line; signature lines
    // cannot contain one, so an earlier blank line belongs to the body.
    let split = note.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
    let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::NoSignatures);
    }
    let first_signature_line = body.matches('\n').count() + 2;
    let mut verified = false;
    for (i, line) in signatures[..signatures.len() - 1].split('\n').enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let malformed = NoteError::MalformedSignatureLine {
            line: first_signature_line + i,
        };
        let (name, payload_text) = line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .ok_or_else(|| malformed.clone())?;
        let payload = BASE64.decode(payload_text).map_err(|_| malformed.clone())?;
        if !is_valid_key_name(name) || payload.len() < 5 {
            return Err(malformed);
        }
        let claimed_hash = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        if name != key.name || claimed_hash != key.key_hash || verified {
            // Another key's signature (a witness's cosignature, say), or a
            // repeat of one already verified.
            continue;
        }
        let invalid = || NoteError::InvalidSignature {
            key_name: key.name.clone(),
        };
        let signature = <[u8; 64]>::try_from(&payload[4..]).map_err(|_| invalid())?;
        key.key
            .verify_strict(body.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| invalid())?;
        verified = true;
    }
    if verified {
        Ok(body)
    } else {
        Err(NoteError::NotSignedByKey {
            key_name: key.name.clone(),
        })
    }
}

/// Signs a checkpoint with the key in `signer_key` (its text form): the
/// whole note.
///
/// # Errors
/// A malformed key ([`SignerKey::parse`]) or checkpoint
/// ([`Checkpoint::encode_body`]), or a note over [`MAX_NOTE_BYTES`].
pub fn sign(checkpoint: &Checkpoint, signer_key: &str) -> Result<String, NoteError> {
    let key = SignerKey::parse(signer_key)?;
    sign_note(&checkpoint.encode_body()?, &key)
}

/// Opens a signed checkpoint: checks the signature by the key in
/// `verifier_key` (its text form), then parses the body.
///
/// # Errors
/// A malformed key ([`VerifierKey::parse`]), a note that does not open
/// ([`open_note`]), or a malformed body ([`Checkpoint::parse_body`]).
pub fn open(note: &str, verifier_key: &str) -> Result<Checkpoint, NoteError> {
    let key = VerifierKey::parse(verifier_key)?;
    Checkpoint::parse_body(open_note(note, &key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/annals".into(),
            size: 1234,
            root: crate::proof::merkle::leaf_hash(b"root"),
            extensions: Vec::new(),
        }
    }

    #[test]
    fn round_trip() {
        let (signer, verifier) = generate_key("example.com/annals").unwrap();
        let note = sign(&checkpoint(), &signer).unwrap();
        assert_eq!(open(&note, &verifier).unwrap(), checkpoint());
        let body = checkpoint().encode_body().unwrap();
        assert!(note.starts_with(&format!("{body}\n\u{2014} example.com/annals ")));
        assert_eq!(note.lines().count(), 5);

        let mut with_extensions = checkpoint();
        with_extensions.extensions = vec!["extension one".into(), "two".into()];
        let note = sign(&with_extensions, &signer).unwrap();
        assert_eq!(open(&note, &verifier).unwrap(), with_extensions);

        let mut empty = checkpoint();
        empty.size = 0;
        empty.root = crate::proof::merkle::empty_root();
        assert_eq!(
            open(&sign(&empty, &signer).unwrap(), &verifier).unwrap(),
            empty
        );
    }

    #[test]
    fn key_texts_round_trip() {
        let (signer_text, verifier_text) = generate_key("log").unwrap();
        let signer = SignerKey::parse(&signer_text).unwrap();
        assert_eq!(signer.to_text(), signer_text);
        assert_eq!(signer.verifier().to_text(), verifier_text);
        let verifier = VerifierKey::parse(&verifier_text).unwrap();
        assert_eq!(verifier.to_text(), verifier_text);
        assert_eq!(verifier, signer.verifier());
        assert_eq!(verifier.name(), "log");
        assert!(signer_text.starts_with("PRIVATE+KEY+log+"));
        // The secret is everything after "PRIVATE+KEY+<name>+<hash>+"; its
        // base64 may itself hold '+', so split at the first four only.
        let secret = signer_text.splitn(5, '+').nth(4).unwrap();
        assert!(secret.len() >= 44, "{secret}");
        assert!(!format!("{signer:?}").contains(secret));
        // Two keys of the same name differ.
        let (_, other) = generate_key("log").unwrap();
        assert_ne!(other, verifier_text);
    }

    /// Interoperability: the example of Go's golang.org/x/mod/sumdb/note
    /// package documentation. Ed25519 signing is deterministic, so signing
    /// its text with its key must give its note byte for byte, and its
    /// verifier key must open it.
    #[test]
    fn go_sumdb_note_example() {
        let signer =
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let verifier = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let note = format!(
            "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        let signer = SignerKey::parse(signer).unwrap();
        assert_eq!(signer.verifier().to_text(), verifier);
        assert_eq!(sign_note(text, &signer).unwrap(), note);
        let verifier = VerifierKey::parse(verifier).unwrap();
        assert_eq!(open_note(&note, &verifier).unwrap(), text);
    }

    #[test]
    fn known_key_hash() {
        // The key hash is computed as Go's note package does: check it
        // against the definition on a fixed key (all-zero seed).
        let key = SigningKey::from_bytes(&[0u8; 32]);
        let public = key.verifying_key().to_bytes();
        let mut input = b"name\n\x01".to_vec();
        input.extend_from_slice(&public);
        let digest = Sha256::digest(&input);
        assert_eq!(
            key_hash("name", &public),
            u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
        );
    }

    #[test]
    fn bad_key_texts_are_refused() {
        let (signer, verifier) = generate_key("log").unwrap();
        // Base64 may hold '+': split at the name's and the hash's only.
        let verifier_parts: Vec<&str> = verifier.splitn(3, '+').collect();
        let bad_verifiers = [
            String::new(),
            "log".into(),
            "log+12345678".into(),
            format!("+{}+{}", verifier_parts[1], verifier_parts[2]),
            format!("lo g+{}+{}", verifier_parts[1], verifier_parts[2]),
            format!("log2+{}+{}", verifier_parts[1], verifier_parts[2]),
            format!("log+{}+{}", "+1234567", verifier_parts[2]),
            format!("log+{}+{}", "0000000g", verifier_parts[2]),
            format!("log+{}0+{}", verifier_parts[1], verifier_parts[2]),
            format!("log+{}+{}", verifier_parts[1], &verifier_parts[2][1..]),
            format!("log+{}+{}=", verifier_parts[1], verifier_parts[2]),
            format!("log+{}+{}", verifier_parts[1], BASE64.encode([2u8; 33])),
            format!("log+{}+{}", verifier_parts[1], BASE64.encode([1u8; 32])),
            format!("log+{}+", verifier_parts[1]),
            signer.clone(),
        ];
        for bad in &bad_verifiers {
            assert!(VerifierKey::parse(bad).is_err(), "{bad:?}");
        }
        let signer_parts: Vec<&str> = signer.splitn(5, '+').collect();
        let (hash, seed) = (signer_parts[3], signer_parts[4]);
        let bad_signers = [
            String::new(),
            verifier.clone(),
            format!("PRIVATE+KEY+log+{hash}"),
            format!("PRIVATE+KEYS+log+{hash}+{seed}"),
            format!("private+KEY+log+{hash}+{seed}"),
            format!("PRIVATE+KEY+other+{hash}+{seed}"),
            format!("PRIVATE+KEY+log+00000000+{seed}"),
            format!("PRIVATE+KEY+log+{hash}+{}", BASE64.encode([1u8; 32])),
            format!("PRIVATE+KEY+log+{hash}+{}", BASE64.encode([3u8; 33])),
        ];
        for bad in &bad_signers {
            let error = SignerKey::parse(bad).unwrap_err();
            // The secret never appears in an error message.
            assert!(!error.to_string().contains(seed));
        }
        assert_eq!(generate_key("a+b"), Err(NoteError::InvalidKeyName));
        assert_eq!(generate_key(""), Err(NoteError::InvalidKeyName));
        assert_eq!(generate_key("a\tb"), Err(NoteError::InvalidKeyName));
    }

    #[test]
    fn tampering_is_refused() {
        let (signer, verifier) = generate_key("example.com/annals").unwrap();
        let note = sign(&checkpoint(), &signer).unwrap();
        let body_len = checkpoint().encode_body().unwrap().len();
        // Every changed byte of the body or the signature line (keeping the
        // text valid UTF-8) is refused.
        let bytes = note.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'0', b'\n', b' ', b'+'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[i] = replacement;
                let Ok(changed) = String::from_utf8(changed) else {
                    continue;
                };
                assert!(
                    open(&changed, &verifier).is_err(),
                    "byte {i} (body: {}) changed to {replacement:?} still opens",
                    i < body_len
                );
            }
        }
        // A wrong key, and a key of the same name but another public key.
        let (_, stranger) = generate_key("stranger").unwrap();
        assert!(matches!(
            open(&note, &stranger),
            Err(NoteError::NotSignedByKey { .. })
        ));
        let (_, impostor) = generate_key("example.com/annals").unwrap();
        assert!(matches!(
            open(&note, &impostor),
            Err(NoteError::NotSignedByKey { .. })
        ));
    }

    #[test]
    fn a_forged_signature_by_the_right_key_is_refused() {
        let (signer, verifier) = generate_key("log").unwrap();
        let note = sign(&checkpoint(), &signer).unwrap();
        let key = VerifierKey::parse(&verifier).unwrap();
        let body = checkpoint().encode_body().unwrap();
        let mut payload = key.key_hash().to_be_bytes().to_vec();
        payload.extend_from_slice(&[9u8; 64]);
        let forged = format!("{body}\n\u{2014} log {}\n", BASE64.encode(&payload));
        assert!(matches!(
            open(&forged, &verifier),
            Err(NoteError::InvalidSignature { .. })
        ));
        // A short payload with the right key hash is a bad signature too.
        let short = format!("{body}\n\u{2014} log {}\n", BASE64.encode(&payload[..10]));
        assert!(matches!(
            open(&short, &verifier),
            Err(NoteError::InvalidSignature { .. })
        ));
        // The same forged line after the valid one is skipped unverified:
        // as Go's note.Open, only the first signature by a key counts.
        let both = format!("{note}\u{2014} log {}\n", BASE64.encode(&payload));
        assert!(
            open(&both, &verifier).is_ok(),
            "a repeat by a verified key is skipped, as in Go"
        );
    }

    #[test]
    fn other_signatures_are_ignored() {
        let (signer, verifier) = generate_key("log").unwrap();
        let (witness, witness_verifier) = generate_key("witness").unwrap();
        let body = checkpoint().encode_body().unwrap();
        let by_log = sign_note(&body, &SignerKey::parse(&signer).unwrap()).unwrap();
        let by_witness = sign_note(&body, &SignerKey::parse(&witness).unwrap()).unwrap();
        let witness_line = &by_witness[body.len() + 1..];
        let log_line = &by_log[body.len() + 1..];
        // Two signatures, one by the expected key: opens either way round.
        for note in [
            format!("{body}\n{witness_line}{log_line}"),
            format!("{body}\n{log_line}{witness_line}"),
        ] {
            assert_eq!(open(&note, &verifier).unwrap(), checkpoint());
            assert_eq!(open(&note, &witness_verifier).unwrap(), checkpoint());
        }
        // A garbage signature by an unknown key is ignored too.
        let garbage = format!("{body}\n{log_line}\u{2014} nobody AAAAAAAA\n");
        assert_eq!(open(&garbage, &verifier).unwrap(), checkpoint());
        // Only the witness signed: refused for the log's key.
        assert!(matches!(
            open(&by_witness, &verifier),
            Err(NoteError::NotSignedByKey { .. })
        ));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let (signer, verifier) = generate_key("log").unwrap();
        let note = sign(&checkpoint(), &signer).unwrap();
        let body = checkpoint().encode_body().unwrap();
        let cases = [
            String::new(),
            body.clone(),
            format!("{body}\n"),
            note.trim_end().to_owned(),
            format!("{note}\n"),
            format!("{note}garbage\n"),
            note.replace('\u{2014}', "-"),
            note.replacen("\n", "\r\n", 1),
            format!("{note}\u{2014} log\n"),
            "x".repeat(MAX_NOTE_BYTES + 1),
            format!(
                "{body}\n{}",
                "\u{2014} other AAAAAAAA\n".repeat(MAX_SIGNATURES + 1)
            ),
        ];
        for case in &cases {
            assert!(open(case, &verifier).is_err(), "{case:?}");
        }
        // Every prefix of a valid note: an error, never a panic.
        for (i, _) in note.char_indices() {
            assert!(open(&note[..i], &verifier).is_err());
        }
    }

    #[test]
    fn checkpoint_bodies_are_parsed_strictly() {
        let good = checkpoint().encode_body().unwrap();
        assert_eq!(Checkpoint::parse_body(&good).unwrap(), checkpoint());
        let root = BASE64.encode(checkpoint().root);
        let bad = [
            String::new(),
            "\n".into(),
            good.trim_end().to_owned(),
            format!("\n1234\n{root}\n"),
            "example.com/annals\n1234\n".into(),
            format!("example.com/annals\n01234\n{root}\n"),
            format!("example.com/annals\n+1234\n{root}\n"),
            format!("example.com/annals\n-1\n{root}\n"),
            format!("example.com/annals\n18446744073709551616\n{root}\n"),
            format!("example.com/annals\n 1234\n{root}\n"),
            format!("example.com/annals\n1234\n{}\n", &root[1..]),
            format!("example.com/annals\n1234\n{}\n", BASE64.encode([0u8; 31])),
            format!("example.com/annals\n1234\n{root}\n\n"),
            format!("example.com/annals\n1234\n{root}\next\n\n"),
            format!("exam\tple.com\n1234\n{root}\n"),
            format!(
                "example.com/annals\n1234\n{root}\n{}",
                "x\n".repeat(MAX_BODY_LINES)
            ),
        ];
        for case in &bad {
            assert!(Checkpoint::parse_body(case).is_err(), "{case:?}");
        }
        assert_eq!(
            Checkpoint::parse_body(&format!("o\n18446744073709551615\n{root}\n"))
                .unwrap()
                .size,
            u64::MAX
        );
        let mut bad_origin = checkpoint();
        bad_origin.origin = "two\nlines".into();
        assert!(bad_origin.encode_body().is_err());
        bad_origin.origin = String::new();
        assert!(bad_origin.encode_body().is_err());
        let mut bad_extension = checkpoint();
        bad_extension.extensions = vec![String::new()];
        assert!(bad_extension.encode_body().is_err());
    }
}
