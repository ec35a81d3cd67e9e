//! The error type of every fallible annals operation.

use std::fmt;
use std::path::PathBuf;

use crate::event::ExpectedVersion;
use crate::log::finding::{Finding, FindingKind};

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each with what happened, where, and what to do.
///
/// Match on the variant to react programmatically (for example retry on
/// [`Error::WrongExpectedVersion`]); `Display` gives a message for people.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    Io {
        /// What annals was doing.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The disk is full: nothing was written, the store stays usable.
    NoSpace {
        /// The file that could not grow.
        path: PathBuf,
        /// How many bytes annals tried to allocate.
        bytes: u64,
    },
    /// Bytes on disk fail their checks somewhere other than a torn tail:
    /// the typed finding says what, in which file, at which offset.
    Corrupt(Box<Finding>),
    /// Another writer holds the store's lock (in this process or another).
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// The stream's version is not what the append expected.
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0: the stream does not exist).
        actual: u64,
    },
    /// An argument is larger than a configured or format limit.
    LimitExceeded {
        /// Which limit (the name of the `Limits` field or format constant).
        limit: &'static str,
        /// The value that was given.
        actual: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// An argument is invalid for a reason other than its size.
    InvalidArgument(String),
    /// An earlier sync failed; the store refuses writes until it is reopened.
    Poisoned {
        /// The failure that poisoned the store.
        cause: String,
    },
    /// The store was opened read-only.
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
    },
    /// Encoding or decoding event data with a codec failed.
    Codec {
        /// What the codec said.
        message: String,
    },
    /// The store was closed (or its last handle dropped): a subscription on
    /// it has ended.
    Closed {
        /// The store directory.
        dir: PathBuf,
    },
    /// A reader following a writer in another process fell behind a
    /// retirement: events it had not read yet were retired
    /// ([`crate::Store::retire_segments_before`]).
    Retired {
        /// The store directory.
        dir: PathBuf,
        /// The first position this reader had not read.
        from: u64,
        /// Where the log starts now.
        log_start: u64,
    },
    /// A Merkle tree root or proof needs the leaves of retired events that
    /// the retention manifest's frontier does not cover: only whole
    /// subtrees of the tree at the cut are kept ([`crate::Store::inclusion_proof`]).
    ProofNeedsRetiredEvents {
        /// The store directory.
        dir: PathBuf,
        /// The first position whose leaves are needed.
        start: u64,
        /// One past the last.
        end: u64,
        /// Where the log starts now.
        log_start: u64,
    },
    /// An archive directory given for a proof across the retired prefix
    /// ([`crate::ProofOptions::archive`]) does not hold the retired
    /// segments the retention manifest lists, as it lists them.
    ProofArchive {
        /// The archive directory.
        archive: PathBuf,
        /// The segment file concerned (its name), if one.
        file: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// The stream was deleted ([`crate::Store::delete_stream`]): it can be
    /// neither read nor appended to, ever again.
    StreamDeleted {
        /// The deleted stream.
        stream: String,
    },
    /// The stream's name is reserved for the store's own system streams
    /// (it starts with `$`, [`crate::system_streams`]): applications cannot
    /// append to it.
    ReservedStream {
        /// The stream named.
        stream: String,
    },
    /// The newest metadata event of the stream (in its metadata stream
    /// `$$<stream>`) is not metadata this build can read: the stream is
    /// neither read nor appended to, rather than risk showing what its
    /// metadata hides.
    InvalidStreamMetadata {
        /// The stream whose metadata it is.
        stream: String,
        /// The version of that event in the metadata stream.
        metadata_version: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// The key file (`annals.keys`) is damaged somewhere other than a torn
    /// last record.
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Offset of the damaged header or record.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// An application-supplied [`crate::SubjectKeys`] failed.
    KeyStore {
        /// What it said.
        message: String,
    },
    /// [`crate::Store::erase_subject`] of a subject that has no key: no
    /// event was ever appended with it. Nothing was written.
    UnknownSubject {
        /// The subject.
        subject: String,
    },
    /// The subject was erased: its data can no longer be written, and it
    /// cannot be erased again. Nothing was written.
    SubjectErased {
        /// The subject.
        subject: String,
        /// Position of the erasure event in `$erasures`.
        erased_at: u64,
    },
    /// The event's data was erased (its subject's key destroyed): what
    /// [`crate::RecordedEvent::decode`] says of an erased event.
    Erased {
        /// The event's subject.
        subject: String,
        /// The event's position (small, so that every `Result` stays small).
        position: u64,
    },
    /// The event's data is sealed with a subject's key that is neither
    /// present nor erased (a key file replaced or lost, or an
    /// application-supplied key store that lost it), or does not open with
    /// the key present.
    SealedData {
        /// The event's subject.
        subject: String,
        /// The event's position.
        position: u64,
        /// What went wrong.
        detail: &'static str,
    },
    /// An archive in object storage (`crate::archive`, feature
    /// `object-storage`) could not be reached, refused a request, or does
    /// not hold what was asked for (a missing bucket, wrong credentials, a
    /// bad target URL).
    Archive {
        /// The archive's URL (`s3://BUCKET/PREFIX`, `file:///DIR`).
        target: String,
        /// The object concerned (its name within the target), if any.
        object: Option<String>,
        /// What happened and what to do.
        detail: String,
    },
    /// An archive holds, under a name it would write or must read, an
    /// object that differs from the segment or record it must be (its
    /// SHA-256 or length): objects are never overwritten, so nothing was
    /// changed there.
    ArchiveMismatch {
        /// The archive's URL.
        target: String,
        /// The object's name within the target.
        object: String,
        /// How it differs.
        detail: String,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        let path = path.into();
        if is_no_space(&source) {
            // Say "disk full" rather than a generic I/O failure.
            return Error::NoSpace { path, bytes: 0 };
        }
        Error::Io {
            action,
            path,
            source,
        }
    }

    /// The corruption error for a finding.
    pub(crate) fn found(
        path: impl Into<PathBuf>,
        offset: u64,
        position: Option<u64>,
        kind: FindingKind,
    ) -> Error {
        Error::Corrupt(Box::new(Finding {
            kind,
            path: path.into(),
            offset,
            position,
        }))
    }

    /// True when the error means bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt(_))
    }

    /// The finding behind a corruption error.
    pub fn finding(&self) -> Option<&Finding> {
        match self {
            Error::Corrupt(finding) => Some(finding),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "I/O error while {action} {}: {source}", path.display())
            }
            Error::NoSpace { path, bytes } => {
                write!(f, "no space left on the device holding {}", path.display())?;
                if *bytes > 0 {
                    write!(f, " (needed {bytes} bytes)")?;
                }
                write!(f, "; nothing was written: free space and retry")
            }
            Error::Corrupt(finding) => {
                write!(f, "corruption in {finding}; the store was not changed ")?;
                match finding.kind {
                    FindingKind::InvalidSettings { .. } => write!(
                        f,
                        "(the settings file only records the segment size and limits the \
                         store was created with: delete it, and the next writer records its \
                         options)"
                    ),
                    FindingKind::InvalidSnapshot { .. } => write!(
                        f,
                        "(snapshots are caches: delete this snapshot file, and the state will be \
                         rebuilt from the events)"
                    ),
                    _ => write!(
                        f,
                        "(run `annals verify` to list every problem, `annals repair` to cut \
                         damaged data)"
                    ),
                }
            }
            Error::Locked { dir } => write!(
                f,
                "the store {} is locked by another writer (in this or another process); \
                 close it first, or open the store read-only",
                dir.display()
            ),
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => write!(
                f,
                "wrong expected version for stream {stream:?}: expected {expected}, \
                 but the stream is at version {actual}; read the stream and retry"
            ),
            Error::LimitExceeded { limit, actual, max } => {
                write!(
                    f,
                    "{limit} exceeded: {actual} is more than the maximum of {max}"
                )
            }
            Error::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            Error::Poisoned { cause } => write!(
                f,
                "the store refuses writes after a failed sync ({cause}); data acknowledged \
                 before the failure may not be durable: reopen the store to recover"
            ),
            Error::ReadOnly { dir } => {
                write!(
                    f,
                    "the store {} was opened read-only; open it with Store::open to write",
                    dir.display()
                )
            }
            Error::Codec { message } => write!(f, "event data codec error: {message}"),
            Error::Closed { dir } => write!(
                f,
                "the store {} was closed, which ended this subscription; open the store \
                 again and subscribe from the subscription's checkpoint to go on",
                dir.display()
            ),
            Error::Retired {
                dir,
                from,
                log_start,
            } => write!(
                f,
                "events {from}..{log_start} of the store {} were retired before this reader \
                 read them; open the store again to read on from position {log_start}, or read \
                 them from the archive they were retired into",
                dir.display()
            ),
            Error::ProofNeedsRetiredEvents {
                dir,
                start,
                end,
                log_start,
            } => write!(
                f,
                "the proof needs the hashes of events {start}..{end} of the store {}, which were \
                 retired (the log starts at position {log_start}) and whose subtree the \
                 retention manifest does not keep; prove a kept position or a tree size of at \
                 least {log_start}, or give the archive directory the segments were retired \
                 into (ProofOptions::archive, `annals prove ... --archive DIR`)",
                dir.display()
            ),
            Error::ProofArchive {
                archive,
                file,
                detail,
            } => {
                write!(f, "the archive {}", archive.display())?;
                if let Some(file) = file {
                    write!(f, " ({file})")?;
                }
                write!(
                    f,
                    " cannot serve the retired events for the proof: {detail}; give the \
                     directory the segments were retired into, with its files unchanged"
                )
            }
            Error::StreamDeleted { stream } => write!(
                f,
                "stream {stream:?} was deleted: it cannot be read, appended to or created \
                 again (deletion is permanent); use another stream name, and truncate \
                 (Store::truncate_stream) instead to hide a stream's past but keep using it"
            ),
            Error::ReservedStream { stream } => write!(
                f,
                "stream {stream:?} is reserved: names starting with '$' are the store's own \
                 system streams, written only through Store::truncate_stream and \
                 Store::delete_stream; choose a name that does not start with '$'"
            ),
            Error::InvalidStreamMetadata {
                stream,
                metadata_version,
                detail,
            } => write!(
                f,
                "stream {stream:?} cannot be used: its metadata (event {metadata_version} of \
                 stream \"{prefix}{stream}\") is unreadable ({detail}); it was not written \
                 by this build of annals. Stream reads and appends are refused rather than \
                 risk showing what it hides; the events are still in the log (read_all), \
                 and Store::delete_stream can still delete the stream",
                prefix = crate::system_streams::METADATA_STREAM_PREFIX
            ),
            Error::KeyFile {
                path,
                offset,
                detail,
            } => write!(
                f,
                "the key file {} is damaged at byte {offset}: {detail}; the store was not \
                 changed (restore the key file from where you keep it; without it the data \
                 of every subject's events cannot be read)",
                path.display()
            ),
            Error::KeyStore { message } => write!(f, "the subject key store failed: {message}"),
            Error::UnknownSubject { subject } => write!(
                f,
                "no event names subject {subject:?} (it has no key); nothing was erased"
            ),
            Error::SubjectErased { subject, erased_at } => write!(
                f,
                "subject {subject:?} was erased (erasure event at position {erased_at}); its \
                 data cannot be written or erased again"
            ),
            Error::Erased { subject, position } => write!(
                f,
                "the data of the event at position {position} was erased with subject \
                 {subject:?}"
            ),
            Error::SealedData {
                subject,
                position,
                detail,
            } => write!(
                f,
                "the data of the event at position {position}, sealed for subject \
                 {subject:?}, cannot be opened: {detail}"
            ),
            Error::Archive {
                target,
                object,
                detail,
            } => match object {
                Some(object) => write!(f, "archive {target}, object {object}: {detail}"),
                None => write!(f, "archive {target}: {detail}"),
            },
            Error::ArchiveMismatch {
                target,
                object,
                detail,
            } => write!(
                f,
                "archive {target} holds a different object {object}: {detail}; it was not \
                 overwritten (archived objects never are): find out who wrote it"
            ),
        }
    }
}

/// What to do about damaged bytes in `path`. `annals verify` and `annals
/// repair` handle segments only; a snapshot file is a cache.
/// Whether an I/O error means the disk (or the user's quota on it) is full:
/// ENOSPC or EDQUOT, or the same reported by kind alone. The one place that
/// decides what is [`Error::NoSpace`].
pub(crate) fn is_no_space(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
