//! What a scan of the log finds that is not a complete, valid batch in its
//! place: typed, with the file, byte offset and (where known) position.
//!
//! A finding says only *what* is there. Whether it is corruption, a torn
//! write to discard, or a batch still being written depends on where it is;
//! [`crate::log::verdict`] decides that, once, for every reader of the log.

use std::fmt;
use std::path::PathBuf;

/// One thing a scan of the log found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// The file concerned (a segment file, or the store directory).
    pub path: PathBuf,
    /// Byte offset within that file.
    pub offset: u64,
    /// Global position of the event or batch concerned, when known.
    pub position: Option<u64>,
}

/// What was found. Each kind's message says what it means; `Display` on
/// [`Finding`] adds where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// A file named like a segment is not a regular file (a FIFO, a
    /// directory, a device): it is never opened for reading.
    NotARegularFile,
    /// The file could not be opened or read.
    Unreadable {
        /// The operating system's message.
        error: String,
    },
    /// The segment header fails its checks (magic, checksum, version, fields).
    InvalidHeader {
        /// Which check failed.
        detail: String,
    },
    /// The file is longer than its header says, or shorter and not the
    /// newest segment.
    WrongFileSize {
        /// The file's length.
        len: u64,
        /// The size its header states.
        expected: u64,
    },
    /// The header's base position differs from the one in the file name.
    Misnamed {
        /// The position in the file name.
        name_position: u64,
        /// The position in the header.
        header_position: u64,
    },
    /// Positions are missing between two segments (a segment was removed).
    MissingSegment {
        /// Where the log before this segment ends.
        expected_position: u64,
        /// Where this segment starts.
        found_position: u64,
    },
    /// Two segments cover the same positions.
    OverlappingSegment {
        /// Where the log before this segment ends.
        expected_position: u64,
        /// Where this segment starts.
        found_position: u64,
    },
    /// The header's `chain_start` differs from the chain value at the end of
    /// the segment before: segments were replaced or reordered.
    ChainLinkBroken,
    /// Bytes where a complete, valid batch must be are not one: a bad
    /// checksum, an undecodable or inconsistent record, zeroes inside data.
    InvalidBatch {
        /// Which check failed.
        detail: String,
    },
    /// A valid batch out of sequence: a position, stream version or
    /// timestamp that does not continue the log before it.
    OutOfSequence {
        /// What does not follow.
        detail: String,
    },
    /// A segment that another follows has no valid footer.
    MissingFooter {
        /// Why the footer area is not a valid footer.
        detail: String,
    },
    /// A valid footer disagrees with the data it seals.
    FooterMismatch {
        /// Every disagreement.
        detail: String,
    },
    /// Non-zero bytes between the end of a sealed segment's data and its footer.
    BytesAfterSealedData,
    /// Written bytes after the last complete batch of the newest segment
    /// that nothing shows were ever synced: a write cut short by a crash, or
    /// a batch being written right now.
    TornTail {
        /// How many bytes, up to the last non-zero 8-byte word.
        bytes: u64,
        /// What the first of them is, if not a frame.
        detail: String,
    },
    /// The newest segment's footer area is neither zero nor a valid footer:
    /// sealing never completed (a footer is synced before anything depends on it).
    TornFooter {
        /// Why it is not a valid footer.
        detail: String,
    },
    /// One slot of the newest segment's durable mark does not validate
    /// while the other does (or is empty): a mark update torn by a crash.
    /// The other slot holds the previous mark.
    TornDurableMark,
    /// The durable mark in a segment header does not validate where no
    /// crash can have torn it (a sealed segment, or both slots).
    DamagedDurableMark,
    /// The newest segment file is shorter than its header says, but every
    /// byte known to be durable is still there.
    ShortFile {
        /// The file's length.
        len: u64,
        /// The size its header states.
        expected: u64,
    },
    /// Data that was durable is damaged, zeroed or cut off: acknowledged
    /// batches would be lost.
    DurableDataLost {
        /// How far the durable data reached (a byte offset in the file).
        durable_end: u64,
        /// Where the complete batches end now.
        log_end: u64,
        /// What proves the data had been durable.
        evidence: DurableEvidence,
        /// What is there instead.
        detail: String,
    },
    /// The newest segment is read-only on disk, as only sealed segments
    /// are, but has no valid footer (it was lost). Found by a writer only,
    /// which makes the file writable again to continue it.
    ReadOnlyUnsealed,
    /// A temporary file of a segment creation that never finished (or is
    /// under way): never part of the log.
    TemporaryFile,
    /// A snapshot file fails its checks. Snapshots are caches, outside the
    /// log: deleting the file loses nothing but time.
    InvalidSnapshot {
        /// Which check failed.
        detail: String,
    },
    /// The store settings file (`annals.settings`) fails its checks.
    InvalidSettings {
        /// Which check failed.
        detail: String,
    },
    /// A record the index points at no longer decodes: the file changed
    /// after it was checked.
    ChangedAfterOpen {
        /// Which check failed.
        detail: String,
    },
    /// A segment's index file (`.idx`) is missing, unreadable, damaged, or
    /// describes other bytes than its segment's. Derived data: rebuilt from
    /// the segment, never trusted over it.
    IndexFile {
        /// What is wrong with it.
        detail: String,
    },
    /// The index checkpoint (`index.checkpoint`) is unreadable, damaged, or
    /// does not match the segments. Derived data: open rebuilds the index
    /// from the log instead.
    IndexCheckpoint {
        /// What is wrong with it.
        detail: String,
    },
    /// The retention manifest (`annals.retention`) is damaged, unreadable
    /// or not a file. It is the only record of where a store whose first
    /// segments were retired starts: refused like damaged log data.
    RetentionManifest {
        /// What is wrong with it.
        detail: String,
    },
    /// A segment file before the position the log starts at (the retention
    /// manifest's cut). `recorded`: the manifest lists it (name and length)
    /// as retired, so it is the leftover of a retirement a crash
    /// interrupted, which a writer's open removes; otherwise it is a file
    /// nothing accounts for, and refused.
    RetiredSegment {
        /// Whether the manifest records it as retired.
        recorded: bool,
        /// Where the log starts.
        log_start: u64,
    },
}

/// What shows that data had been durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurableEvidence {
    /// A valid commit record further on whose `synced_offset` lies beyond
    /// the damage.
    CommitRecord {
        /// The commit record's offset.
        offset: u64,
    },
    /// The segment header's durable mark.
    DurableMark,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingKind::NotARegularFile => write!(
                f,
                "not a regular file (a FIFO, directory or device named like a segment); \
                 it was not opened"
            ),
            FindingKind::Unreadable { error } => write!(f, "cannot be read: {error}"),
            FindingKind::InvalidHeader { detail } => write!(f, "invalid segment header: {detail}"),
            FindingKind::WrongFileSize { len, expected } => {
                write!(f, "the file is {len} bytes but its header says {expected}")
            }
            FindingKind::Misnamed {
                name_position,
                header_position,
            } => write!(
                f,
                "the header's base position {header_position} differs from the file name's \
                 {name_position}: the file was renamed or replaced"
            ),
            FindingKind::MissingSegment {
                expected_position,
                found_position,
            } => write!(
                f,
                "the segment starts at position {found_position} but the log before it ends \
                 before position {expected_position}: positions {expected_position} to {} are \
                 missing (a segment was removed or moved)",
                found_position - 1
            ),
            FindingKind::OverlappingSegment {
                expected_position,
                found_position,
            } => write!(
                f,
                "the segment starts at position {found_position} but the log before it already \
                 reaches position {expected_position}: segments overlap"
            ),
            FindingKind::ChainLinkBroken => write!(
                f,
                "the header's chain_start differs from the hash-chain value at the end of the \
                 segment before: segments were replaced, removed or reordered"
            ),
            FindingKind::InvalidBatch { detail } => write!(f, "invalid batch: {detail}"),
            FindingKind::OutOfSequence { detail } => write!(f, "out of sequence: {detail}"),
            FindingKind::MissingFooter { detail } => write!(
                f,
                "another segment follows this one, but it has no valid footer ({detail})"
            ),
            FindingKind::FooterMismatch { detail } => {
                write!(f, "the footer disagrees with the data: {detail}")
            }
            FindingKind::BytesAfterSealedData => write!(
                f,
                "non-zero bytes after the end of the sealed data: the sealed segment was changed"
            ),
            FindingKind::TornTail { bytes, detail } => write!(
                f,
                "torn tail: {bytes} written bytes after the last complete batch that were never \
                 known to be durable ({detail})"
            ),
            FindingKind::TornFooter { detail } => write!(
                f,
                "torn footer of the newest segment ({detail}): sealing never completed"
            ),
            FindingKind::TornDurableMark => write!(
                f,
                "one slot of the durable mark in the header does not validate while the other \
                 does: an update of the mark torn by a crash"
            ),
            FindingKind::DamagedDurableMark => write!(
                f,
                "the durable mark in the header does not validate, and no crash can have torn it"
            ),
            FindingKind::ShortFile { len, expected } => write!(
                f,
                "the newest segment file is {len} bytes, shorter than the {expected} its header \
                 says, but every byte known to be durable is there"
            ),
            FindingKind::DurableDataLost {
                durable_end,
                log_end,
                evidence,
                detail,
            } => {
                write!(
                    f,
                    "durable data lost: the complete batches end at offset {log_end}, but "
                )?;
                match evidence {
                    DurableEvidence::CommitRecord { offset } => write!(
                        f,
                        "the commit record at offset {offset} shows that every byte below offset \
                         {durable_end} had been synced"
                    )?,
                    DurableEvidence::DurableMark => write!(
                        f,
                        "the segment header's durable mark shows that every byte below offset \
                         {durable_end} had been synced"
                    )?,
                }
                write!(
                    f,
                    "; offsets {log_end}..{durable_end} hold {detail}: this is damage, not a torn write"
                )
            }
            FindingKind::ReadOnlyUnsealed => write!(
                f,
                "the newest segment is read-only on disk, as only sealed segments are, but has no \
                 valid footer: its footer was lost; its data was checked and is kept"
            ),
            FindingKind::InvalidSnapshot { detail } => write!(f, "invalid snapshot file: {detail}"),
            FindingKind::InvalidSettings { detail } => {
                write!(f, "invalid store settings file: {detail}")
            }
            FindingKind::IndexFile { detail } => write!(f, "index file: {detail}"),
            FindingKind::IndexCheckpoint { detail } => write!(f, "index checkpoint: {detail}"),
            FindingKind::ChangedAfterOpen { detail } => write!(
                f,
                "{detail}: the record changed after the store checked it on open"
            ),
            FindingKind::RetentionManifest { detail } => write!(
                f,
                "the retention manifest is unusable ({detail}): where the log starts after \
                 retired segments is unknown"
            ),
            FindingKind::RetiredSegment {
                recorded: true,
                log_start,
            } => write!(
                f,
                "a segment before the log's start at position {log_start}, recorded as retired \
                 by the retention manifest: left by a retirement that did not finish"
            ),
            FindingKind::RetiredSegment {
                recorded: false,
                log_start,
            } => write!(
                f,
                "a segment before the log's start at position {log_start} that the retention \
                 manifest does not record as retired"
            ),
            FindingKind::TemporaryFile => write!(
                f,
                "a temporary segment file: a segment being created, or left by a creation that \
                 never finished; it holds nothing acknowledged"
            ),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte offset {}", self.path.display(), self.offset)?;
        if let Some(position) = self.position {
            write!(f, " (position {position})")?;
        }
        write!(f, ": {}", self.kind)
    }
}
