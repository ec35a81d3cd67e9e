//! Verifying a store without changing it: every checksum, every batch, the
//! sequence of positions and stream versions, every footer and header link,
//! and the SHA-256 hash chain recomputed over every batch. For audits of
//! compliance archives (`docs/compliance.md`) and for checking a store that a
//! writer is appending to right now.
//!
//! ```
//! use annals::{EventData, ExpectedHead, ExpectedVersion, Options, Store, VerifyOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::default())?;
//! store.append("order-1", ExpectedVersion::NoStream, &[EventData::new("Placed", b"{}".to_vec())])?;
//! // Keep the head digest somewhere the store's owner cannot rewrite.
//! let head = ExpectedHead::from(store.chain_head());
//! store.close()?;
//!
//! let report = annals::verify(dir.path(), &VerifyOptions::default().expect_head(head))?;
//! assert!(report.is_ok(), "{report}");
//! assert_eq!(report.summary.events, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is checked
//! Segments are read one at a time, in position order, through a read-only
//! mapping; nothing is written, locked or repaired. For each segment: its
//! header (checksum, version, size, base position against the file name and
//! the segment before, `chain_start` against the previous footer's
//! `chain_end`); every batch (`format::scan::read_batch`: frame checksums,
//! record decoding, internal consistency); positions contiguous across
//! batches and segments; stream versions continuing from the stream's last
//! version; event timestamps never going backward; the hash chain value of
//! every batch, recomputed and compared with the stored one; the footer of a
//! sealed segment (counts, last position, data length, contents checksum,
//! `chain_end`) and that only zeroes follow the sealed data. With an
//! [`ExpectedHead`], that the chain recomputed from genesis reaches the
//! expected digest.
//!
//! The same pass computes the Merkle tree over the events (RFC 9162, leaf
//! `i` the frame of the event at position `i` as stored, `docs/proofs.md`):
//! its size and root end up in the [`Summary`], and with a signed
//! checkpoint ([`VerifyOptions::checkpoint`]) the root of the tree at the
//! checkpoint's size must be the one it signs ([`TreeCheck`]). The tree
//! starts at genesis, or, when the store was retired and no archive is
//! given, from the frontier the retention manifest records at the cut.
//!
//! # Memory
//! Constant in the size of the log, except for one map from stream id to the
//! stream's last version, needed to check version continuity: about the
//! stream id's length plus 40 bytes per stream. Events are never collected,
//! and command ids and event ids are not checked for uniqueness (that would
//! take memory per event).
//!
//! # A writer appending at the same time
//! The directory is listed once, at the start: segments created later are
//! not verified. The newest segment is verified up to where its published
//! batches ended when it was read. Bytes after that which are not a complete
//! batch are reported as a torn tail (a warning), unless a complete batch
//! appeared there meanwhile (a writer is appending), which is not reported.
//!
//! # Problems
//! Every problem is reported with its file, byte offset and, where known,
//! global position; verification carries on after it where that makes sense
//! (after damaged bytes inside a segment it resumes after the next valid
//! commit record). A torn tail of the newest segment is a
//! [`Severity::Warning`]: it is what a crash leaves, and open discards it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::CHAIN_LEN;
use crate::format::chain::{self, GENESIS};
use crate::format::footer::{FooterState, SegmentFooter};
use crate::format::scan::{BatchRef, EventRef, stream_ends};
use crate::format::tree_record::{TILE_HEIGHT, TILE_LEAVES};
use crate::log::archived::{ArchivedSegments, DirectoryArchive};
use crate::log::directory::{self, DirListing};
use crate::log::finding::{Finding, FindingKind};
use crate::log::scan::{BatchSeen, Flow, Visitor};
use crate::log::segment::Segment;
use crate::log::verdict::{SegmentRole, Verdict};
use crate::log::walk::LogWalk;
use crate::proof::merkle::{self, Frontier, Hash};
use crate::proof::note;

pub use crate::log::scan::MAX_RESYNC_COMMIT_BODY_BYTES;

/// At most this many problems are listed in a report; the rest are only
/// counted (in [`VerifyReport::problems_not_listed`]), so that a badly
/// damaged log cannot make the report grow without bound.
pub const MAX_LISTED_PROBLEMS: usize = 1_000;

/// Within a segment, the progress callback is called at the first batch
/// boundary at least this many bytes past the previous call; it is also
/// called after every segment.
pub const PROGRESS_INTERVAL_BYTES: u64 = 4 << 20;

/// A head digest kept outside the store: the hash-chain value after the batch
/// that ends at `position` (or, without a position, after some batch).
///
/// Written and parsed as `HEX` or `HEX@POSITION`, where `HEX` is the 64
/// lower- or upper-case hexadecimal digits of the digest.
///
/// ```
/// use annals::ExpectedHead;
/// let text = format!("{}@41", "ab".repeat(32));
/// let head: ExpectedHead = text.parse()?;
/// assert_eq!(head.position, Some(41));
/// assert_eq!(head.to_string(), text);
/// # Ok::<(), annals::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedHead {
    /// The expected hash-chain value.
    pub digest: [u8; CHAIN_LEN],
    /// Position of the last event of the batch after which the chain had
    /// this value; `None` when unknown (any batch may match), or for the head
    /// of an empty log (the genesis value).
    pub position: Option<u64>,
}

impl ExpectedHead {
    /// The digest as 64 lower-case hexadecimal digits.
    pub fn digest_hex(&self) -> String {
        chain::to_hex(&self.digest)
    }
}

impl From<([u8; CHAIN_LEN], Option<u64>)> for ExpectedHead {
    /// From what [`crate::Store::chain_head`] returns.
    fn from((digest, position): ([u8; CHAIN_LEN], Option<u64>)) -> Self {
        ExpectedHead { digest, position }
    }
}

impl FromStr for ExpectedHead {
    type Err = Error;

    /// Parses `HEX` or `HEX@POSITION`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the digest is not 64 hexadecimal
    /// digits or the position is not a decimal `u64`.
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let (hex, position) = match text.split_once('@') {
            Some((hex, position)) => (hex, Some(position)),
            None => (text, None),
        };
        let digest = chain::from_hex(&hex.to_ascii_lowercase()).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "expected head {text:?}: the digest must be 64 hexadecimal digits \
                 (the format is HEX or HEX@POSITION)"
            ))
        })?;
        let position = match position {
            None => None,
            Some(position) => Some(position.parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "expected head {text:?}: the position after '@' must be a decimal number"
                ))
            })?),
        };
        Ok(ExpectedHead { digest, position })
    }
}

impl fmt::Display for ExpectedHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.digest_hex())?;
        if let Some(position) = self.position {
            write!(f, "@{position}")?;
        }
        Ok(())
    }
}

/// How to verify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// A head digest kept elsewhere that the log must still reach, unchanged.
    pub expected_head: Option<ExpectedHead>,
    /// A directory holding the segments retired from the store (moved
    /// there by a retirement with an archive): the whole chain is then
    /// checked from genesis, and the cut the retention manifest records
    /// against it.
    pub archive: Option<PathBuf>,
    /// A signed checkpoint the log must still match (see [`TreeCheck`]).
    pub checkpoint: Option<SignedCheckpoint>,
}

/// A signed checkpoint to check the log against: the note's text and the
/// text of the verifier key it must be signed by (`docs/proofs.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The C2SP signed note.
    pub note: String,
    /// The verifier key (`<name>+<hash>+<base64>`).
    pub verifier_key: String,
}

impl VerifyOptions {
    /// Also reads the segments retired from the store from `archive`, so
    /// that the whole history is checked from genesis.
    pub fn archive(mut self, archive: impl Into<PathBuf>) -> Self {
        self.archive = Some(archive.into());
        self
    }

    /// Also checks the log against a signed checkpoint (a C2SP signed note,
    /// `annals checkpoint`) and the text of the verifier key that signed it:
    /// the tree over the log's first `size` events must have the root the
    /// checkpoint signs (see [`TreeCheck`]).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store, VerifyOptions};
    /// use annals::verify::TreeCheck;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), Options::default())?;
    /// store.append("s", ExpectedVersion::Any, &[EventData::new("E", b"x".to_vec())])?;
    /// let (signer, verifier) = annals::proof::note::generate_key("example.com/log")?;
    /// let signed = store.signed_checkpoint("example.com/log", &signer)?;
    /// store.close()?;
    ///
    /// let report = annals::verify(dir.path(), &VerifyOptions::default().checkpoint(signed, verifier))?;
    /// assert_eq!(report.tree_check, Some(TreeCheck::Matched { size: 1 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint(mut self, note: impl Into<String>, verifier_key: impl Into<String>) -> Self {
        self.checkpoint = Some(SignedCheckpoint {
            note: note.into(),
            verifier_key: verifier_key.into(),
        });
        self
    }

    /// Also checks that the log still contains, unchanged, everything up to
    /// `head` (see [`HeadCheck`]).
    pub fn expect_head(mut self, head: ExpectedHead) -> Self {
        self.expected_head = Some(head);
        self
    }
}

/// How far verification has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of segment files verified so far.
    pub bytes_done: u64,
    /// Bytes of all segment files listed at the start.
    pub bytes_total: u64,
}

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Expected after a crash (a torn tail, a torn footer, a leftover
    /// temporary file); open repairs it. Not corruption.
    Warning,
    /// Damaged, changed, missing or inconsistent data.
    Corruption,
}

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A segment file could not be opened or read.
    Unreadable,
    /// A segment header fails its checks, or disagrees with the file.
    Header,
    /// Segments are missing, overlap, or are named for another position.
    Layout,
    /// A segment header's `chain_start` differs from the chain value at the
    /// end of the segment before it.
    ChainLink,
    /// Bytes that are not valid records: a bad checksum, an undecodable or
    /// inconsistent batch.
    Record,
    /// Valid batches out of sequence: positions, stream versions, timestamps.
    Sequence,
    /// The hash-chain value recomputed over a batch differs from the stored one.
    ChainBroken,
    /// A footer is missing, invalid, or disagrees with the segment's data.
    Footer,
    /// Non-zero bytes after the data of a sealed segment.
    TrailingBytes,
    /// Written bytes after the last complete batch of the newest segment.
    TornTail,
    /// A file in the store directory that should not be there.
    StrayFile,
    /// The log does not reach the expected head unchanged.
    ExpectedHead,
    /// The store settings file (`annals.settings`) fails its checks.
    Settings,
    /// The log does not match the signed checkpoint, or the checkpoint is
    /// not signed by the key (see [`TreeCheck`]).
    Checkpoint,
    /// An archived segment differs from what the archive records of it
    /// (its SHA-256 or length), or a record has no segment.
    Archive,
    /// An index file (derived data) does not match its segment: its Merkle
    /// tree differs from the one computed over the events, or it cannot be
    /// read. The next writer's open writes it anew.
    IndexFile,
}

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How serious it is.
    pub severity: Severity,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The segment file (or, for problems of the whole log, the directory).
    pub path: PathBuf,
    /// Byte offset within that file.
    pub offset: u64,
    /// Global position of the event or batch concerned, when known.
    pub position: Option<u64>,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Corruption => "corruption",
        };
        write!(
            f,
            "{severity}: {} at byte offset {}",
            self.path.display(),
            self.offset
        )?;
        if let Some(position) = self.position {
            write!(f, " (position {position})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The first batch whose recomputed hash-chain value differs from the
/// stored one: where the log stops being the one that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The segment file holding the batch.
    pub path: PathBuf,
    /// Offset of the batch's first frame in that file.
    pub offset: u64,
    /// Offset of the batch's commit record, which holds the stored value at
    /// `commit_offset + 15`.
    pub commit_offset: u64,
    /// Position of the batch's first event.
    pub first_position: u64,
    /// Position of the batch's last event.
    pub last_position: u64,
    /// The value stored in the commit record.
    pub stored: [u8; CHAIN_LEN],
    /// The value recomputed from the previous value and the batch's bytes.
    pub computed: [u8; CHAIN_LEN],
}

/// The outcome of checking an [`ExpectedHead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadCheck {
    /// The chain recomputed from genesis has the expected value after the
    /// batch ending at `position` (`None`: the empty log, the genesis value).
    Matched {
        /// Position of the last event of that batch.
        position: Option<u64>,
    },
    /// The log reaches the expected position, but the chain value there
    /// differs (or no batch ends there); or, without a position, no batch
    /// has the expected value: history was rewritten.
    RewrittenHistory {
        /// The expected position, if one was given.
        position: Option<u64>,
        /// The recomputed chain value after the batch ending at the position,
        /// when a batch ends there.
        found: Option<[u8; CHAIN_LEN]>,
    },
    /// The log ends before the expected position: it was truncated.
    Truncated {
        /// The expected position.
        position: u64,
        /// Position of the last event in the log, `None` when it is empty.
        log_end: Option<u64>,
    },
    /// Damage or missing segments before the expected position keep the
    /// chain from being recomputed from genesis up to it; the other problems
    /// say why.
    Unverifiable,
}

impl fmt::Display for HeadCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadCheck::Matched { position: None } => write!(f, "matched (the empty log)"),
            HeadCheck::Matched {
                position: Some(position),
            } => write!(f, "matched after position {position}"),
            HeadCheck::RewrittenHistory {
                position: Some(position),
                ..
            } => write!(f, "rewritten history at or before position {position}"),
            HeadCheck::RewrittenHistory { position: None, .. } => {
                write!(
                    f,
                    "no batch has the expected value: rewritten history or truncated log"
                )
            }
            HeadCheck::Truncated { position, .. } => {
                write!(f, "log truncated before position {position}")
            }
            HeadCheck::Unverifiable => write!(
                f,
                "cannot be checked: the chain cannot be recomputed from genesis up to it"
            ),
        }
    }
}

/// The outcome of checking a signed checkpoint
/// ([`VerifyOptions::checkpoint`]). Only [`TreeCheck::Matched`] passes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeCheck {
    /// The tree over the log's first `size` events has the signed root.
    Matched {
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The tree over the log's first `size` events has another root than
    /// the signed one: an event at or before position `size - 1` was
    /// changed, removed, added or moved since the checkpoint was signed,
    /// or this is not the log that was signed.
    Mismatch {
        /// The checkpoint's tree size.
        size: u64,
        /// The root the checkpoint signs.
        signed: Hash,
        /// The root computed from the log.
        found: Hash,
    },
    /// The log has fewer events than the checkpoint signs: it was
    /// truncated since.
    LogTooShort {
        /// The checkpoint's tree size.
        size: u64,
        /// The events in the log (retired ones count).
        log_size: u64,
    },
    /// The tree at the checkpoint's size cannot be computed: its leaves
    /// were retired and no archive was given, the retention manifest does
    /// not record the tree at the cut (an earlier build's), or damage before
    /// it keeps the events from being read in order. The problems say which.
    Unverifiable {
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The note is well formed but not signed by the key given (a bad
    /// signature, or none by that key): it vouches for nothing.
    NotSigned {
        /// Why.
        error: note::NoteError,
    },
}

impl fmt::Display for TreeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeCheck::Matched { size } => {
                write!(
                    f,
                    "matched: the tree of the first {size} events has the signed root"
                )
            }
            TreeCheck::Mismatch {
                size,
                signed,
                found,
            } => write!(
                f,
                "mismatch: the tree of the first {size} events has root {}, the checkpoint signs {}",
                chain::to_hex(found),
                chain::to_hex(signed)
            ),
            TreeCheck::LogTooShort { size, log_size } => write!(
                f,
                "log too short: the checkpoint signs {size} events, the log has {log_size}"
            ),
            TreeCheck::Unverifiable { size } => write!(
                f,
                "cannot be checked: the tree of the first {size} events cannot be computed"
            ),
            TreeCheck::NotSigned { error } => {
                write!(f, "not signed by the key: {error}")
            }
        }
    }
}

/// The Merkle tree over a verified log: its size (the next position,
/// retired events count) and root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// The number of events in the tree.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

impl TreeHead {
    /// The root as 64 lower-case hexadecimal digits.
    pub fn root_hex(&self) -> String {
        chain::to_hex(&self.root)
    }
}

/// Totals of what was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Segment files verified.
    pub segments: u64,
    /// Of which sealed (with a valid footer).
    pub sealed_segments: u64,
    /// Complete batches of events read (appends).
    pub batches: u64,
    /// Sync markers read (commit records without events, written on close).
    pub sync_markers: u64,
    /// Events in them.
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// Bytes of the segment files (headers, data, free space, footers).
    pub bytes: u64,
    /// Bytes of complete batches (frames).
    pub data_bytes: u64,
    /// Position of the first event read.
    pub first_position: Option<u64>,
    /// Position of the last event read.
    pub last_position: Option<u64>,
    /// Timestamp of the first event read (ns since the Unix epoch).
    pub first_timestamp_ns: Option<u64>,
    /// Timestamp of the last event read (ns since the Unix epoch).
    pub last_timestamp_ns: Option<u64>,
    /// The hash-chain value recomputed after the last batch (genesis, 32
    /// zero bytes, for an empty log). Keep it (with `head_position`) outside
    /// the store as the anchor for later audits; it is only meaningful when
    /// the report [`is_ok`](VerifyReport::is_ok).
    pub head: [u8; CHAIN_LEN],
    /// Position of the last event of the last batch.
    pub head_position: Option<u64>,
    /// The Merkle tree over every event of the log, for comparison with
    /// any signed checkpoint of its size. `None` when it cannot be computed:
    /// damage keeps events from being read in order, or retired events
    /// without an archive and without the tree recorded at the cut.
    pub tree: Option<TreeHead>,
}

impl Summary {
    /// The head digest as 64 lower-case hexadecimal digits.
    pub fn head_hex(&self) -> String {
        chain::to_hex(&self.head)
    }

    /// The head as an [`ExpectedHead`] for a later audit (`HEX@POSITION`).
    pub fn expected_head(&self) -> ExpectedHead {
        ExpectedHead {
            digest: self.head,
            position: self.head_position,
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The store directory.
    pub dir: PathBuf,
    /// Totals.
    pub summary: Summary,
    /// Problems in the order found (at most [`MAX_LISTED_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems found but not listed, beyond [`MAX_LISTED_PROBLEMS`].
    pub problems_not_listed: u64,
    /// Problems of severity [`Severity::Corruption`], listed or not.
    pub corruption_count: u64,
    /// Problems of severity [`Severity::Warning`], listed or not.
    pub warning_count: u64,
    /// The first batch where the recomputed hash chain differs from the
    /// stored one, if any.
    pub first_chain_break: Option<ChainBreak>,
    /// The outcome of the expected-head check, when one was asked for.
    pub head_check: Option<HeadCheck>,
    /// The outcome of the signed-checkpoint check, when one was asked for.
    pub tree_check: Option<TreeCheck>,
    /// The prefix of the log retired from the store, if any.
    pub retired: Option<RetiredPrefix>,
}

/// The prefix of the log retired from a store, as its retention manifest
/// (`annals.retention`) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredPrefix {
    /// Position of the first event the store keeps.
    pub first_retained_position: u64,
    /// The chain value recorded at the cut: the store's log is checked
    /// from it (unless `archive_checked`).
    pub chain_at_cut: [u8; CHAIN_LEN],
    /// How many retirements the manifest records.
    pub retirements: usize,
    /// Whether the retired segments were read from an archive, and the
    /// chain checked from genesis through them.
    pub archive_checked: bool,
}

impl RetiredPrefix {
    /// The chain value at the cut as 64 lower-case hexadecimal digits.
    pub fn chain_at_cut_hex(&self) -> String {
        chain::to_hex(&self.chain_at_cut)
    }
}

impl VerifyReport {
    /// True when no corruption was found (warnings allowed) and, when an
    /// expected head or a signed checkpoint was given, it matched.
    pub fn is_ok(&self) -> bool {
        self.corruption_count == 0
            && self
                .head_check
                .as_ref()
                .is_none_or(|check| matches!(check, HeadCheck::Matched { .. }))
            && self
                .tree_check
                .as_ref()
                .is_none_or(|check| matches!(check, TreeCheck::Matched { .. }))
    }

    /// The listed problems of one severity.
    pub fn problems_of(&self, severity: Severity) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.severity == severity)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "{}: {} ({} sealed), {} and {}, {}, {}, {} bytes",
            self.dir.display(),
            count(s.segments, "segment"),
            s.sealed_segments,
            count(s.batches, "batch"),
            count(s.sync_markers, "sync marker"),
            count(s.events, "event"),
            count(s.streams, "stream"),
            s.bytes
        )?;
        if let (Some(first), Some(last)) = (s.first_position, s.last_position) {
            writeln!(f, "positions {first}..={last}")?;
        }
        if let (Some(first), Some(last)) = (s.first_timestamp_ns, s.last_timestamp_ns) {
            writeln!(f, "timestamps {first}..={last} ns since the Unix epoch")?;
        }
        match s.head_position {
            Some(position) => writeln!(f, "head {}@{position}", s.head_hex())?,
            None => writeln!(f, "head {} (empty log)", s.head_hex())?,
        }
        match &s.tree {
            Some(tree) => writeln!(f, "tree {} events, root {}", tree.size, tree.root_hex())?,
            None => writeln!(f, "tree cannot be computed")?,
        }
        if let Some(retired) = &self.retired {
            let start = retired.first_retained_position;
            if retired.archive_checked {
                writeln!(
                    f,
                    "positions 0..{start} retired ({}), read from the archive: the chain is \
                     checked from genesis",
                    count(retired.retirements as u64, "retirement")
                )?;
            } else {
                writeln!(
                    f,
                    "positions 0..{start} retired ({}): the chain is checked from the value \
                     the retention manifest records at the cut, {}",
                    count(retired.retirements as u64, "retirement"),
                    retired.chain_at_cut_hex()
                )?;
            }
        }
        if let Some(check) = &self.head_check {
            writeln!(f, "expected head: {check}")?;
        }
        if let Some(check) = &self.tree_check {
            writeln!(f, "checkpoint: {check}")?;
        }
        for problem in &self.problems {
            writeln!(f, "{problem}")?;
        }
        if self.problems_not_listed > 0 {
            writeln!(f, "... and {} more problems", self.problems_not_listed)?;
        }
        write!(
            f,
            "{}: {} corruption, {} warnings",
            if self.is_ok() { "OK" } else { "FAILED" },
            self.corruption_count,
            self.warning_count
        )
    }
}

/// Verifies the store in `dir` without changing it; see the module docs for
/// what is checked.
///
/// Problems in the data are not errors: they are listed in the report, whose
/// [`VerifyReport::is_ok`] says whether the store passed.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed;
/// [`Error::InvalidArgument`] when it holds no segment file (it is not a
/// store: a store always has at least its first segment).
pub fn verify(dir: impl AsRef<Path>, options: &VerifyOptions) -> Result<VerifyReport> {
    verify_with_progress(dir, options, &mut |_| {})
}

/// [`verify`], calling `progress` as it goes: at the start, about every
/// [`PROGRESS_INTERVAL_BYTES`] within a segment, and after every segment
/// (the last call has `bytes_done == bytes_total`).
///
/// # Errors
/// As [`verify`].
pub fn verify_with_progress(
    dir: impl AsRef<Path>,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    let archive = match &options.archive {
        Some(archive) => {
            directory::check_store_dir(archive)?;
            // What the manifest recorded of each retired segment, to
            // compare the copies with; a damaged manifest is the walk's
            // finding, not an error here.
            let retired: Vec<_> = crate::log::retention::read_anchor(dir.as_ref())
                .ok()
                .flatten()
                .map(|anchor| {
                    let records = &anchor.manifest.records;
                    records.iter().flat_map(|r| r.segments.clone()).collect()
                })
                .unwrap_or_default();
            let archive: Arc<dyn ArchivedSegments> = Arc::new(DirectoryArchive::new(
                archive,
                &Default::default(),
                &retired,
            ));
            Some(archive)
        }
        None => None,
    };
    verify_with_archive(dir.as_ref(), options, archive, progress)
}

/// [`verify_with_progress`] of a store whose retired segments are read
/// from `archive` (when given; `options.archive` is then not looked at).
///
/// # Errors
/// As [`verify`]; [`Error::InvalidArgument`] when an archive is given for
/// a store that retired nothing.
pub(crate) fn verify_with_archive(
    dir: &Path,
    options: &VerifyOptions,
    archive: Option<Arc<dyn ArchivedSegments>>,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    directory::check_store_dir(dir)?;
    let DirListing { segments, .. } = directory::list_segments(dir)?;
    if segments.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} holds no segment file (named like 00000000000000000000.seg): it is not an annals store",
            dir.display()
        )));
    }
    let bytes_total = segments
        .iter()
        .map(|(_, path)| std::fs::symlink_metadata(path).map_or(0, |m| m.len()))
        .sum();
    let checkpoint = open_checkpoint(options)?;
    let mut verifier = Verifier::new(
        dir,
        options.expected_head,
        checkpoint,
        bytes_total,
        progress,
    );
    // The settings file is judged as every opener judges it.
    if let Err(Error::Corrupt(finding)) = crate::engine::settings::read(dir) {
        verifier.finding(*finding, Verdict::Refuse);
    }
    // The same walk, checks and decision table as every open; beside a live
    // writer, a batch being written is not reported.
    let newest_role = if directory::writer_is_live(dir) {
        SegmentRole::Live
    } else {
        SegmentRole::Newest
    };
    let mut walk = LogWalk::new(dir, newest_role, &Default::default());
    if let Some(archive) = &archive {
        walk = walk.with_archive(Arc::clone(archive));
    }
    walk.walk_all(&mut verifier)?;
    if archive.is_some() && verifier.report.retired.is_none() {
        return Err(Error::InvalidArgument(format!(
            "{} has no retired segments (no retention manifest): an archive is not needed",
            dir.display()
        )));
    }
    if let Some(archive) = &archive {
        verifier.archive_problems(archive.as_ref());
    }
    Ok(verifier.finish())
}

/// Verifies the segments of an archive alone, named `label` in the report:
/// from genesis, each a sealed segment, with the same walk and checks as a
/// store's (see the module docs), plus whatever the archive found about
/// its copies ([`ProblemKind::Archive`]).
///
/// # Errors
/// [`Error::InvalidArgument`] when the archive holds no segment, or for a
/// checkpoint or key that is not one; the archive's error when it cannot
/// be listed.
#[cfg_attr(not(feature = "object-storage"), allow(dead_code))]
pub(crate) fn verify_archive_alone(
    label: &Path,
    archive: Arc<dyn ArchivedSegments>,
    bytes_total: u64,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    let checkpoint = open_checkpoint(options)?;
    let mut verifier = Verifier::new(
        label,
        options.expected_head,
        checkpoint,
        bytes_total,
        progress,
    );
    let mut walk = LogWalk::new(label, SegmentRole::Sealed, &Default::default())
        .with_archive(Arc::clone(&archive));
    walk.walk_archive(&mut verifier)?;
    if verifier.report.summary.segments == 0 {
        return Err(Error::InvalidArgument(format!(
            "{} holds no archived segment: nothing to verify",
            label.display()
        )));
    }
    verifier.archive_problems(archive.as_ref());
    Ok(verifier.finish())
}

/// Opens the signed checkpoint of `options`, before the log is read:
/// input that is not a note or key is the caller's error; a note not
/// signed by the key is a failed check, reported with the rest.
fn open_checkpoint(
    options: &VerifyOptions,
) -> Result<Option<std::result::Result<note::Checkpoint, note::NoteError>>> {
    match &options.checkpoint {
        None => Ok(None),
        Some(signed) => match note::open(&signed.note, &signed.verifier_key) {
            Ok(checkpoint) => Ok(Some(Ok(checkpoint))),
            Err(error) if error.is_signature_failure() => Ok(Some(Err(error))),
            Err(error) => Err(Error::InvalidArgument(format!(
                "the signed checkpoint to verify against: {error}"
            ))),
        },
    }
}

/// The running state of one verification: a visitor of the log's walk.
struct Verifier<'p> {
    report: VerifyReport,
    progress: &'p mut dyn FnMut(Progress),
    bytes_total: u64,
    bytes_before_segment: u64,
    /// Length of the segment being verified.
    segment_len: u64,
    last_progress: u64,
    /// The chain recomputed over every verified batch.
    computed: [u8; CHAIN_LEN],
    /// Whether `computed` runs without interruption from genesis.
    computed_from_genesis: bool,
    /// The stored chain value the next batch extends.
    stored: [u8; CHAIN_LEN],
    /// Per stream: its last version, and the gap epoch it was last seen in.
    streams: HashMap<Box<str>, (u64, u32)>,
    /// The gap epoch of the last batch seen.
    epoch: u32,
    /// The chain epoch of the last batch seen.
    chain_epoch: u32,
    expected_head: Option<ExpectedHead>,
    /// The recomputed chain value after the last batch ending exactly at
    /// the expected head's position, when it differed from the expected
    /// digest. Not final yet: sync markers after that batch end at the same
    /// position, and the head recorded after a close is the marker's value.
    head_mismatch: Option<[u8; 32]>,
    /// Whether the expected head is the chain value of the sync marker a
    /// close would have appended right after that batch.
    head_is_missing_marker: bool,
    /// Read from an archive: the cut the manifest records, checked when the
    /// walk reaches it.
    cut_to_check: Option<std::sync::Arc<crate::log::retention::Anchor>>,
    /// The chain value the log starts from: genesis, or the one recorded
    /// at the cut.
    start_chain: [u8; CHAIN_LEN],
    /// The Merkle tree over the events read so far (from genesis, or from
    /// the frontier recorded at the cut). `None` once it cannot be
    /// computed; `tree_lost` says why.
    tree: Option<Frontier>,
    tree_lost: Option<String>,
    /// The signed checkpoint to check the tree against, opened.
    checkpoint: Option<note::Checkpoint>,
    /// The segment being read and the tree at its start, to check its
    /// index file's tree once its end is reached (`index_tree`).
    segment_tree_start: Option<(std::sync::Arc<Segment>, Option<Frontier>)>,
    /// The segment's base position, and the roots of its tiles computed so far.
    segment_base: u64,
    segment_tiles: Vec<merkle::Hash>,
}

impl Visitor for Verifier<'_> {
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)> {
        self.streams.get(stream).copied()
    }

    fn anchored(
        &mut self,
        anchor: &std::sync::Arc<crate::log::retention::Anchor>,
        from_archive: bool,
    ) {
        self.report.retired = Some(RetiredPrefix {
            first_retained_position: anchor.position,
            chain_at_cut: anchor.chain,
            retirements: anchor.manifest.records.len(),
            archive_checked: from_archive,
        });
        if from_archive {
            self.cut_to_check = Some(std::sync::Arc::clone(anchor));
        } else {
            // The tree, too, continues from what the manifest recorded.
            match &anchor.frontier {
                Some(frontier) if frontier.size() == anchor.position => {
                    self.tree = Some(frontier.clone());
                }
                _ => self.lose_tree(format!(
                    "the retention manifest does not record the tree of the {} retired events \
                     (a retirement by an earlier build): verify with the archive the segments \
                     were retired into (--archive)",
                    anchor.position
                )),
            }
            if let Some(checkpoint) = &self.checkpoint
                && checkpoint.size < anchor.position
                && self.report.tree_check.is_none()
            {
                let size = checkpoint.size;
                self.tree_unverifiable(
                    size,
                    format!(
                        "the signed checkpoint of {size} events cannot be checked: its tree \
                         ends in the retired prefix (the store keeps positions {} on): verify \
                         with the archive the segments were retired into (--archive)",
                        anchor.position
                    ),
                );
            }
            let dir = self.report.dir.clone();
            self.check_tree(&dir, 0);
            // The manifest vouches for the chain value at the cut; the log
            // after it is recomputed from there.
            self.start_chain = anchor.chain;
            self.computed = anchor.chain;
            self.stored = anchor.chain;
            if let Some(head) = self.expected_head
                && head
                    .position
                    .is_some_and(|position| position < anchor.position)
            {
                // Its batches are gone from the store: only the archive can
                // show the chain reaching it.
                self.expected_head = None;
                self.report.head_check = Some(HeadCheck::Unverifiable);
                let dir = self.report.dir.clone();
                self.problem(
                    Severity::Corruption,
                    ProblemKind::ExpectedHead,
                    &dir,
                    0,
                    head.position,
                    format!(
                        "the expected head {head} is in the retired prefix (the store keeps \
                         positions {} on): verify with the archive the segments were retired \
                         into (--archive) to check it",
                        anchor.position
                    ),
                );
            }
        }
    }

    fn segment(&mut self, _ordinal: usize, segment: &std::sync::Arc<Segment>, _role: SegmentRole) {
        self.check_index_tree();
        self.segment_tree_start = Some((std::sync::Arc::clone(segment), self.tree.clone()));
        self.segment_base = segment.header.base_position;
        self.segment_tiles.clear();
        if let Some(cut) = self
            .cut_to_check
            .take_if(|cut| cut.position <= segment.header.base_position)
        {
            self.check_cut(&cut, segment);
        }
        if self.report.summary.segments > 0 {
            self.bytes_before_segment += self.segment_len;
        }
        self.segment_len = segment.len() as u64;
        self.report_progress(0);
        self.report.summary.segments += 1;
        self.report.summary.bytes += segment.len() as u64;
        if matches!(
            segment.footer_bytes().map(SegmentFooter::decode),
            Some(FooterState::Sealed(_))
        ) {
            self.report.summary.sealed_segments += 1;
        }
    }

    fn batch(&mut self, seen: &BatchSeen<'_, '_>) {
        self.epoch = seen.epoch;
        if seen.chain_epoch != self.chain_epoch {
            // Bytes before this batch could not be read: the recomputed
            // chain carries on from the value the log stored there.
            self.chain_epoch = seen.chain_epoch;
            self.lose_tree(format!(
                "bytes before the batch at offset {} of {} could not be read, so the events \
                 are not all read in order",
                seen.batch.start,
                seen.segment.path.display()
            ));
            self.computed_from_genesis = false;
            if let Some(previous) = seen.previous_chain {
                self.computed = previous;
                self.stored = previous;
            }
        } else if let Some(previous) = seen.previous_chain
            && self.report.summary.batches == 0
            && previous != self.start_chain
        {
            // The first batch read does not start from genesis.
            self.computed_from_genesis = false;
            self.computed = previous;
            self.stored = previous;
        }
        self.report_progress(seen.batch.end as u64);
        self.batch(seen.batch, seen.events, &seen.segment.path);
        self.tree_batch(seen.batch, seen.events, &seen.segment.path);
    }

    fn finding(&mut self, finding: Finding, verdict: Verdict) -> Flow {
        let severity = match verdict {
            Verdict::Refuse => Severity::Corruption,
            Verdict::Discard | Verdict::Remove | Verdict::Rebuild => Severity::Warning,
            // A batch or footer being written by a live writer.
            Verdict::Wait => return Flow::Continue,
        };
        let kind = problem_kind(&finding.kind);
        let advice = match verdict {
            Verdict::Discard => "; open as a writer discards it",
            Verdict::Remove => "; open as a writer removes it",
            Verdict::Rebuild => "; open rebuilds it from the log",
            _ => "",
        };
        let message = format!("{}{advice}", finding.kind);
        self.problem(
            severity,
            kind,
            &finding.path,
            finding.offset,
            finding.position,
            message,
        );
        Flow::Continue
    }
}

/// The chain value of the sync marker that closing a store appends right
/// after a batch whose last event is at `last_position`, ending at `end`
/// in its segment, whose chain value is `previous` (`Writer::write_sync_marker`:
/// it vouches for everything before it, at the next position).
fn close_marker_chain(
    previous: &[u8; CHAIN_LEN],
    last_position: u64,
    end: usize,
) -> [u8; CHAIN_LEN] {
    let Some(next_position) = last_position.checked_add(1) else {
        return [0; CHAIN_LEN];
    };
    let mut body = Vec::new();
    crate::format::body::encode_commit(
        &mut body,
        &crate::format::body::CommitBody {
            chain: [0; CHAIN_LEN],
            first_position: next_position,
            event_count: 0,
            synced_offset: end as u64,
            command_id: None,
        },
    );
    chain::next_chain(
        previous,
        &[],
        &body[crate::format::body::COMMIT_CHAIN_PREFIX_LEN..],
    )
}

/// `n` things, in the singular for one: "1 segment", "2 segments".
fn count(n: u64, thing: &str) -> String {
    match (n, thing.ends_with("ch")) {
        (1, _) => format!("1 {thing}"),
        (_, true) => format!("{n} {thing}es"),
        (_, false) => format!("{n} {thing}s"),
    }
}

/// The kind of problem a finding is.
fn problem_kind(kind: &FindingKind) -> ProblemKind {
    use FindingKind as K;
    match kind {
        K::NotARegularFile | K::Unreadable { .. } => ProblemKind::Unreadable,
        K::InvalidHeader { .. }
        | K::WrongFileSize { .. }
        | K::ReadOnlyUnsealed
        | K::DamagedDurableMark
        | K::TornDurableMark => ProblemKind::Header,
        K::Misnamed { .. } | K::MissingSegment { .. } | K::OverlappingSegment { .. } => {
            ProblemKind::Layout
        }
        K::ChainLinkBroken => ProblemKind::ChainLink,
        K::OutOfSequence { .. } => ProblemKind::Sequence,
        K::MissingFooter { .. } | K::FooterMismatch { .. } | K::TornFooter { .. } => {
            ProblemKind::Footer
        }
        K::BytesAfterSealedData => ProblemKind::TrailingBytes,
        K::TornTail { .. } | K::ShortFile { .. } => ProblemKind::TornTail,
        K::TemporaryFile => ProblemKind::StrayFile,
        K::InvalidSettings { .. } => ProblemKind::Settings,
        K::IndexFile { .. } => ProblemKind::IndexFile,
        _ => ProblemKind::Record,
    }
}

impl<'p> Verifier<'p> {
    fn new(
        dir: &Path,
        expected_head: Option<ExpectedHead>,
        checkpoint: Option<std::result::Result<note::Checkpoint, note::NoteError>>,
        bytes_total: u64,
        progress: &'p mut dyn FnMut(Progress),
    ) -> Verifier<'p> {
        let (checkpoint, tree_check) = match checkpoint {
            None => (None, None),
            Some(Ok(checkpoint)) => (Some(checkpoint), None),
            Some(Err(error)) => (None, Some(TreeCheck::NotSigned { error })),
        };
        let mut verifier = Verifier {
            report: VerifyReport {
                dir: dir.to_path_buf(),
                summary: Summary {
                    segments: 0,
                    sealed_segments: 0,
                    batches: 0,
                    sync_markers: 0,
                    events: 0,
                    streams: 0,
                    bytes: 0,
                    data_bytes: 0,
                    first_position: None,
                    last_position: None,
                    first_timestamp_ns: None,
                    last_timestamp_ns: None,
                    head: GENESIS,
                    head_position: None,
                    tree: None,
                },
                problems: Vec::new(),
                problems_not_listed: 0,
                corruption_count: 0,
                warning_count: 0,
                first_chain_break: None,
                head_check: None,
                tree_check,
                retired: None,
            },
            progress,
            bytes_total,
            bytes_before_segment: 0,
            segment_len: 0,
            last_progress: 0,
            computed: GENESIS,
            computed_from_genesis: true,
            stored: GENESIS,
            streams: HashMap::new(),
            epoch: 0,
            chain_epoch: 0,
            expected_head,
            head_mismatch: None,
            head_is_missing_marker: false,
            cut_to_check: None,
            start_chain: GENESIS,
            tree: Some(Frontier::new()),
            tree_lost: None,
            checkpoint,
            segment_tree_start: None,
            segment_base: 0,
            segment_tiles: Vec::new(),
        };
        // A checkpoint of the empty tree is decided before any event.
        verifier.check_tree(dir, 0);
        if let Some(head) = expected_head
            && head.position.is_none()
            && head.digest == GENESIS
        {
            // The head of an empty log: every log starts there.
            verifier.report.head_check = Some(HeadCheck::Matched { position: None });
        }
        (verifier.progress)(Progress {
            bytes_done: 0,
            bytes_total,
        });
        verifier
    }

    /// Pushes the leaf of each of a batch's events into the tree: the hash
    /// of its frame as stored, from its offset to the next frame's (the
    /// next event's, or the commit record's).
    /// Reports what the archive found about its copies, as corruption.
    fn archive_problems(&mut self, archive: &dyn ArchivedSegments) {
        for problem in archive.take_problems() {
            self.problem(
                Severity::Corruption,
                ProblemKind::Archive,
                &problem.path,
                0,
                None,
                problem.message,
            );
        }
    }

    fn tree_batch(&mut self, batch: &BatchRef<'_>, events: &[EventRef<'_>], path: &Path) {
        for (index, event) in events.iter().enumerate() {
            let Some(tree) = &mut self.tree else {
                return;
            };
            let end = events
                .get(index + 1)
                .map_or(batch.commit_offset, |next| next.offset);
            // The scanner vouches for these offsets; checked all the same,
            // since they come from disk.
            let frame = event
                .offset
                .checked_sub(batch.start)
                .zip(end.checked_sub(batch.start))
                .and_then(|(from, to)| batch.event_frames.get(from..to));
            let position = event.event.position;
            // The roots of the tiles of this segment, as its index file
            // should record them (`index_tree`).
            let tiles = &mut self.segment_tiles;
            let tile_inside = position + 1 >= self.segment_base + TILE_LEAVES;
            let pushed = match frame {
                Some(frame) if position == tree.size() => tree
                    .push_reporting(merkle::leaf_hash(frame), |height, hash| {
                        if height == TILE_HEIGHT && tile_inside {
                            tiles.push(*hash);
                        }
                    })
                    .is_ok(),
                _ => false,
            };
            if !pushed {
                let expected = tree.size();
                self.lose_tree(format!(
                    "the event at offset {} of {} has position {position}, where the tree \
                     expected position {expected}",
                    event.offset,
                    path.display()
                ));
                return;
            }
            self.check_tree(path, batch.start as u64);
        }
    }

    /// The tree can no longer be computed from here on, for the reason given.
    fn lose_tree(&mut self, why: String) {
        if self.tree.take().is_some() {
            self.tree_lost = Some(why);
        }
    }

    /// Decides the checkpoint check when the tree has just reached the
    /// checkpoint's size (at `path`, `offset`, for the report).
    fn check_tree(&mut self, path: &Path, offset: u64) {
        if self.report.tree_check.is_some() {
            return;
        }
        let (Some(checkpoint), Some(tree)) = (&self.checkpoint, &self.tree) else {
            return;
        };
        if tree.size() != checkpoint.size {
            return;
        }
        let (size, signed, found) = (checkpoint.size, checkpoint.root, tree.root());
        if found == signed {
            self.report.tree_check = Some(TreeCheck::Matched { size });
            return;
        }
        let origin = checkpoint.origin.clone();
        self.corrupt(
            path,
            ProblemKind::Checkpoint,
            offset,
            size.checked_sub(1),
            format!(
                "the log is not the one signed: the tree of its first {size} events has root {}, \
                 but the checkpoint of {origin:?} signs {}: an event at or before position {} \
                 was changed, removed, added or moved since it was signed",
                chain::to_hex(&found),
                chain::to_hex(&signed),
                size.saturating_sub(1)
            ),
        );
        self.report.tree_check = Some(TreeCheck::Mismatch {
            size,
            signed,
            found,
        });
    }

    fn tree_unverifiable(&mut self, size: u64, message: String) {
        let dir = self.report.dir.clone();
        self.corrupt(&dir, ProblemKind::Checkpoint, 0, None, message);
        self.report.tree_check = Some(TreeCheck::Unverifiable { size });
    }

    fn report_progress(&mut self, offset_in_segment: u64) {
        let done = (self.bytes_before_segment + offset_in_segment).min(self.bytes_total);
        if offset_in_segment == 0 || done >= self.last_progress + PROGRESS_INTERVAL_BYTES {
            self.last_progress = done;
            (self.progress)(Progress {
                bytes_done: done,
                bytes_total: self.bytes_total,
            });
        }
    }

    fn problem(
        &mut self,
        severity: Severity,
        kind: ProblemKind,
        path: &Path,
        offset: u64,
        position: Option<u64>,
        message: String,
    ) {
        match severity {
            Severity::Warning => self.report.warning_count += 1,
            Severity::Corruption => self.report.corruption_count += 1,
        }
        if self.report.problems.len() < MAX_LISTED_PROBLEMS {
            self.report.problems.push(Problem {
                severity,
                kind,
                path: path.to_path_buf(),
                offset,
                position,
                message,
            });
        } else {
            self.report.problems_not_listed += 1;
        }
    }

    fn corrupt(
        &mut self,
        path: &Path,
        kind: ProblemKind,
        offset: u64,
        position: Option<u64>,
        message: String,
    ) {
        self.problem(Severity::Corruption, kind, path, offset, position, message);
    }

    /// Recomputes the chain over a batch the walk checked, and counts it.
    /// The walk's scanner has already checked its sequence (positions,
    /// versions, timestamps) and reported what does not follow.
    fn batch(&mut self, batch: &BatchRef<'_>, events: &[EventRef<'_>], path: &Path) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            self.sync_marker(batch, path);
            return;
        };
        let (first_event, last_event) = (&first.event, &last.event);
        let first_position = first_event.position;
        let last_position = last_event.position;
        for last in stream_ends(events) {
            self.streams
                .insert(last.stream.into(), (last.version, self.epoch));
        }
        self.chain(batch, first_position, last_position, path);
        let summary = &mut self.report.summary;
        summary.batches += 1;
        summary.events += events.len() as u64;
        summary.data_bytes += (batch.end - batch.start) as u64;
        summary.first_position.get_or_insert(first_position);
        summary.last_position = Some(last_position);
        summary
            .first_timestamp_ns
            .get_or_insert(first_event.timestamp_ns);
        summary.last_timestamp_ns = Some(last_event.timestamp_ns);
        summary.head = self.computed;
        summary.head_position = Some(last_position);
    }

    /// A sync marker (a commit record with no events, written on close): it
    /// sits at the next position and extends the hash chain like any batch.
    fn sync_marker(&mut self, batch: &BatchRef<'_>, path: &Path) {
        let position = batch.commit.first_position;
        match position.checked_sub(1) {
            Some(last_position) => self.chain(batch, position, last_position, path),
            None => {
                // A marker before the first event: check its chain value only.
                let computed =
                    chain::next_chain(&self.computed, batch.event_frames, batch.commit_tail);
                if computed != batch.commit.chain && self.report.first_chain_break.is_none() {
                    self.corrupt(
                        path,
                        ProblemKind::ChainBroken,
                        batch.start as u64,
                        None,
                        "hash chain breaks at the sync marker before the first event".to_string(),
                    );
                }
                self.computed = computed;
                self.stored = batch.commit.chain;
                if let Some(head) = self.expected_head
                    && head.position.is_none()
                    && head.digest == computed
                    && self.computed_from_genesis
                {
                    self.report
                        .head_check
                        .get_or_insert(HeadCheck::Matched { position: None });
                }
            }
        }
        let summary = &mut self.report.summary;
        summary.sync_markers += 1;
        summary.data_bytes += (batch.end - batch.start) as u64;
        summary.head = self.computed;
    }

    /// Recomputes the batch's chain value and compares it with the stored
    /// one and with the expected head.
    fn chain(
        &mut self,
        batch: &BatchRef<'_>,
        first_position: u64,
        last_position: u64,
        path: &Path,
    ) {
        let stored = batch.commit.chain;
        let computed = chain::next_chain(&self.computed, batch.event_frames, batch.commit_tail);
        let first_break = self.report.first_chain_break.is_none();
        // After the first break the recomputed chain no longer meets the
        // stored one; each batch is then checked against the stored value
        // before it, to find every other place that was changed.
        let against_stored = if first_break || self.computed == self.stored {
            computed
        } else {
            chain::next_chain(&self.stored, batch.event_frames, batch.commit_tail)
        };
        if against_stored != stored {
            let message = format!(
                "hash chain {}: the commit record at offset {} stores {}, but the chain recomputed \
                 over this batch (positions {first_position}..={last_position}) from {} gives {}: \
                 this batch was changed, or does not follow the batch that preceded it when it was \
                 written{}",
                if first_break {
                    "breaks here"
                } else {
                    "breaks again"
                },
                batch.commit_offset,
                chain::to_hex(&stored),
                if first_break {
                    "genesis"
                } else {
                    "the value stored before it"
                },
                chain::to_hex(&against_stored),
                if first_break {
                    " (that batch was changed, removed or moved)"
                } else {
                    ""
                }
            );
            self.corrupt(
                path,
                ProblemKind::ChainBroken,
                batch.start as u64,
                Some(first_position),
                message,
            );
            if first_break {
                self.report.first_chain_break = Some(ChainBreak {
                    path: path.to_path_buf(),
                    offset: batch.start as u64,
                    commit_offset: batch.commit_offset as u64,
                    first_position,
                    last_position,
                    stored,
                    computed,
                });
            }
        }
        self.computed = computed;
        self.stored = stored;
        self.check_expected_head(batch, last_position, path);
    }

    /// Read from an archive, the log reached the cut the retention
    /// manifest records (at `segment`, the first kept one): the manifest
    /// must agree with the history read, position, chain value and every
    /// stream's version.
    fn check_cut(&mut self, cut: &crate::log::retention::Anchor, segment: &Segment) {
        let mut disagreements = Vec::new();
        if segment.header.base_position != cut.position {
            disagreements.push(format!(
                "the log continues at position {} after the archive, not at the cut, {}",
                segment.header.base_position, cut.position
            ));
        }
        if self.stored != cut.chain {
            disagreements.push(format!(
                "the chain value there is {}, the manifest records {}",
                chain::to_hex(&self.stored),
                chain::to_hex(&cut.chain)
            ));
        }
        if let (Some(recorded), Some(read)) = (&cut.frontier, &self.tree)
            && recorded != read
        {
            disagreements.push(format!(
                "the tree of the archived events has root {} over {} events, the manifest \
                 records root {} over {}",
                chain::to_hex(&read.root()),
                read.size(),
                chain::to_hex(&recorded.root()),
                recorded.size()
            ));
        }
        let mut streams: Vec<_> = self
            .streams
            .iter()
            .filter(|(name, (version, _))| cut.streams.get(&**name) != Some(version))
            .map(|(name, (version, _))| (name.clone(), Some(*version)))
            .collect();
        streams.extend(
            cut.streams
                .keys()
                .filter(|name| !self.streams.contains_key(&**name))
                .map(|name| (name.clone(), None)),
        );
        streams.sort();
        if let Some((name, read)) = streams.first() {
            disagreements.push(format!(
                "{} streams differ, first {name:?}: version {} in the archive, {} in the manifest",
                streams.len(),
                read.map_or("none".to_string(), |v| v.to_string()),
                cut.streams
                    .get(&**name)
                    .map_or("none".to_string(), |v| v.to_string())
            ));
        }
        if !disagreements.is_empty() {
            let message = format!(
                "the retention manifest's cut does not match the archived history: {}",
                disagreements.join("; ")
            );
            self.corrupt(
                &segment.path,
                ProblemKind::Sequence,
                0,
                Some(cut.position),
                message,
            );
        }
    }

    fn check_expected_head(&mut self, batch: &BatchRef<'_>, last_position: u64, path: &Path) {
        let Some(head) = self.expected_head else {
            return;
        };
        if self.report.head_check.is_some() {
            return;
        }
        match head.position {
            Some(position)
                if last_position == position
                    && self.computed_from_genesis
                    && self.computed != head.digest =>
            {
                // Maybe a sync marker at this same position matches, or
                // the head is that of the marker a close appended here, and
                // the marker is gone (the log was cut right after it).
                self.head_mismatch = Some(self.computed);
                self.head_is_missing_marker =
                    close_marker_chain(&self.computed, position, batch.end) == head.digest;
            }
            None => {
                if self.computed_from_genesis && self.computed == head.digest {
                    self.report.head_check = Some(HeadCheck::Matched {
                        position: Some(last_position),
                    });
                }
            }
            Some(position) if last_position >= position => {
                let check = if !self.computed_from_genesis {
                    HeadCheck::Unverifiable
                } else if last_position == position && self.computed == head.digest {
                    HeadCheck::Matched {
                        position: Some(position),
                    }
                } else if let Some(found) = self.head_mismatch {
                    HeadCheck::RewrittenHistory {
                        position: Some(position),
                        found: Some(found),
                    }
                } else {
                    HeadCheck::RewrittenHistory {
                        position: Some(position),
                        found: None,
                    }
                };
                let message = match &check {
                    HeadCheck::Matched { .. } => None,
                    HeadCheck::Unverifiable => Some(format!(
                        "the expected head at position {position} cannot be checked: unreadable data \
                         or missing segments before it keep the chain from being recomputed from genesis"
                    )),
                    HeadCheck::RewrittenHistory {
                        found: Some(found), ..
                    } => Some(format!(
                        "rewritten history: after position {position} the chain recomputed from genesis \
                         is {}, but the expected head is {}: the log was changed at or before position \
                         {position}",
                        chain::to_hex(found),
                        head.digest_hex()
                    )),
                    _ => Some(format!(
                        "rewritten history: no batch ends at the expected head's position {position} \
                         (the batch at offset {} ends at position {last_position}): the log was changed \
                         at or before position {position}",
                        batch.start
                    )),
                };
                if let Some(message) = message {
                    self.corrupt(
                        path,
                        ProblemKind::ExpectedHead,
                        batch.start as u64,
                        Some(position),
                        message,
                    );
                }
                self.report.head_check = Some(check);
            }
            Some(_) => {}
        }
    }

    /// Checks the index file of the segment just read against the tree
    /// computed over its events (`index_tree`).
    fn check_index_tree(&mut self) {
        let Some((segment, start)) = self.segment_tree_start.take() else {
            return;
        };
        let Some(dir) = segment.path.parent() else {
            return;
        };
        if let Some(finding) = super::index_tree::check(
            dir,
            &segment,
            start.as_ref(),
            self.tree.as_ref(),
            &self.segment_tiles,
        ) {
            let verdict = crate::log::verdict::verdict(&finding.kind, SegmentRole::Sealed);
            self.finding(finding, verdict);
        }
    }

    fn finish(mut self) -> VerifyReport {
        self.check_index_tree();
        self.report.summary.streams = self.streams.len() as u64;
        self.report.summary.tree = self.tree.as_ref().map(|tree| TreeHead {
            size: tree.size(),
            root: tree.root(),
        });
        if let Some(checkpoint) = &self.checkpoint
            && self.report.tree_check.is_none()
        {
            let size = checkpoint.size;
            match (&self.tree, &self.tree_lost) {
                (Some(tree), _) => {
                    // Every match or mismatch was decided when the tree
                    // reached the checkpoint's size: it never did.
                    let log_size = tree.size();
                    let dir = self.report.dir.clone();
                    self.corrupt(
                        &dir,
                        ProblemKind::Checkpoint,
                        0,
                        Some(size),
                        format!(
                            "log truncated: the signed checkpoint is of {size} events, but the \
                             log has {log_size}: events signed before are gone"
                        ),
                    );
                    self.report.tree_check = Some(TreeCheck::LogTooShort { size, log_size });
                }
                (None, lost) => {
                    let why = lost.clone().unwrap_or_default();
                    self.tree_unverifiable(
                        size,
                        format!(
                            "the signed checkpoint of {size} events cannot be checked: the tree \
                             cannot be computed: {why}"
                        ),
                    );
                }
            }
        }
        if let Some(head) = self.expected_head
            && self.report.head_check.is_none()
        {
            let log_end = self.report.summary.last_position;
            let dir = self.report.dir.clone();
            let (check, message) = match (head.position, self.head_mismatch) {
                (Some(position), Some(_)) if self.head_is_missing_marker => (
                    HeadCheck::Truncated { position, log_end },
                    format!(
                        "log truncated right after position {position}: every event up to it is \
                         unchanged, but the expected head {head} is the chain value of the sync \
                         marker that closing the store appended after them, and that marker is gone"
                    ),
                ),
                (Some(position), Some(found)) => (
                    HeadCheck::RewrittenHistory {
                        position: Some(position),
                        found: Some(found),
                    },
                    format!(
                        "rewritten history: after position {position} the chain recomputed from genesis \
                         is {}, but the expected head is {head}: the log was changed at or before \
                         position {position}",
                        chain::to_hex(&found)
                    ),
                ),
                (position, _) => match position {
                    Some(position) => (
                        HeadCheck::Truncated { position, log_end },
                        format!(
                            "log truncated before position {position}: the log ends {}, but the \
                             expected head {head} is the chain value after position {position}{}",
                            log_end.map_or_else(
                                || "before its first event".to_string(),
                                |end| format!("at position {end}")
                            ),
                            match log_end {
                                Some(end) if end + 1 < position => {
                                    format!(" (positions {} to {position} are missing)", end + 1)
                                }
                                Some(end) if end + 1 == position => {
                                    format!(" (position {position} is missing)")
                                }
                                Some(_) => String::new(),
                                None => format!(" (positions 0 to {position} are missing)"),
                            }
                        ),
                    ),
                    None if self.computed_from_genesis => (
                        HeadCheck::RewrittenHistory {
                            position: None,
                            found: None,
                        },
                        format!(
                            "rewritten history or truncated log: no batch's chain value, recomputed from \
                         genesis, equals the expected head {head}"
                        ),
                    ),
                    None => (
                        HeadCheck::Unverifiable,
                        format!(
                            "the expected head {head} cannot be checked: unreadable data or missing \
                         segments keep the chain from being recomputed from genesis"
                        ),
                    ),
                },
            };
            self.problem(
                Severity::Corruption,
                ProblemKind::ExpectedHead,
                &dir,
                0,
                head.position,
                message,
            );
            self.report.head_check = Some(check);
        }
        (self.progress)(Progress {
            bytes_done: self.bytes_total,
            bytes_total: self.bytes_total,
        });
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_head_parses_and_prints() {
        let hex = "0123456789abcdef".repeat(4);
        let head: ExpectedHead = hex.parse().unwrap();
        assert_eq!(head.position, None);
        assert_eq!(head.to_string(), hex);
        let head: ExpectedHead = format!("{}@7", hex.to_uppercase()).parse().unwrap();
        assert_eq!(head.position, Some(7));
        assert_eq!(head.to_string(), format!("{hex}@7"));
        for bad in [
            "",
            "@1",
            "00",
            &format!("{hex}@"),
            &format!("{hex}@-1"),
            &format!("{hex}@x"),
            &format!("{hex}0"),
            &"zz".repeat(32),
            &"é".repeat(32),
        ] {
            assert!(bad.parse::<ExpectedHead>().is_err(), "{bad:?} accepted");
        }
    }
}
