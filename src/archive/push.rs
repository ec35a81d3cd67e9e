//! `archive push`: uploads every sealed segment of a store not yet in the
//! archive, oldest first, each with create-only puts (the segment object,
//! then its record), recording progress in the store after each.
//!
//! Exactly once by construction: object names follow from the segment
//! (its file name), a create-only put never replaces an object, and an
//! object found under a name is compared with what would be put (SHA-256
//! of the segment; the record's fields), so a rerun after an interruption
//! at any point finishes what is missing and duplicates nothing.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_LEN;
use crate::format::chain;
use crate::format::footer::{self, FooterState, SegmentFooter};
use crate::hooks::Hooks;
use crate::log::directory;
use crate::log::finding::FindingKind;
use crate::log::retention;
use crate::log::segment::Segment;

use super::checkpoint;
use super::layout::{
    self, ArchiveRecord, MAX_RECORD_BYTES, RECORD_FORMAT, RECORDS_FOLDER, SEGMENTS_FOLDER,
};
use super::target::{ArchiveTarget, Connection, ObjectLock, Put};

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Object lock retention for the objects uploaded (S3 only).
    pub lock: Option<ObjectLock>,
    hooks: Hooks,
}

impl PushOptions {
    /// Sets the object lock retention of the objects uploaded.
    pub fn lock(mut self, lock: ObjectLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Fault injection: `hooks` hear of every put before it is sent.
    #[cfg(feature = "internals")]
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }
}

/// One segment of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedSegment {
    /// Its file name, also its object name under `segments/`.
    pub file_name: String,
    /// Position of its first event.
    pub base_position: u64,
    /// Events it holds.
    pub event_count: u64,
    /// Bytes of the segment.
    pub bytes: u64,
    /// SHA-256 of the segment, lower-case hex.
    pub sha256: String,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The archive's URL.
    pub target: String,
    /// Segments uploaded by this push (or finished: an earlier push had
    /// uploaded the segment but not its record), oldest first.
    pub uploaded: Vec<PushedSegment>,
    /// Segments the archive held already, unchanged, oldest first.
    pub already_archived: Vec<PushedSegment>,
    /// Why the progress file was not used, if it was there but not used.
    pub progress_ignored: Option<String>,
}

/// How far a push has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushProgress {
    /// Segments handled so far.
    pub segments_done: u64,
    /// Sealed segments to handle.
    pub segments_total: u64,
    /// Bytes of those handled so far.
    pub bytes_done: u64,
    /// Bytes of all of them.
    pub bytes_total: u64,
}

/// A sealed segment of the store, as found.
struct Sealed {
    path: std::path::PathBuf,
    file_name: String,
    header_chain_start: [u8; 32],
    salt: u64,
    footer: SegmentFooter,
    base_position: u64,
    file_len: u64,
}

/// Uploads every sealed segment of the store in `dir` that `target` does
/// not hold yet (see the module docs).
///
/// # Errors
/// [`Error::InvalidArgument`] when the store has no sealed segment (the
/// active one is archived once it is sealed); [`Error::Corrupt`] when a
/// segment's bytes disagree with its footer (nothing of it is uploaded:
/// run `verify`); [`Error::Archive`] when the archive cannot be used;
/// [`Error::ArchiveMismatch`] when it holds a different object under a
/// name the push writes; [`Error::Io`] for the store's files. What was
/// pushed before the error stays pushed, and a rerun goes on.
pub fn push(
    dir: &Path,
    target: &ArchiveTarget,
    options: &PushOptions,
    progress: &mut dyn FnMut(PushProgress),
) -> Result<PushReport> {
    directory::check_store_dir(dir)?;
    let sealed = sealed_segments(dir)?;
    if sealed.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} has no sealed segment to archive (only the active segment, which is archived \
             once it is sealed)",
            dir.display()
        )));
    }
    let connection = Connection::open(target, options.lock.as_ref(), true, &options.hooks)?;
    let listed_segments = connection.list(SEGMENTS_FOLDER)?;
    let listed_records = connection.list(RECORDS_FOLDER)?;
    let mut done = checkpoint::read(dir, target.url());
    let mut report = PushReport {
        target: target.url().to_string(),
        uploaded: Vec::new(),
        already_archived: Vec::new(),
        progress_ignored: done.ignored.take(),
    };
    let mut at = PushProgress {
        segments_done: 0,
        segments_total: sealed.len() as u64,
        bytes_done: 0,
        bytes_total: sealed.iter().map(|s| s.file_len).sum(),
    };
    progress(at);
    for segment in &sealed {
        let bytes = std::fs::read(&segment.path)
            .map_err(|e| Error::io("reading segment file", &segment.path, e))?;
        check_contents(segment, &bytes)?;
        let sha256 = super::sha256_hex(&bytes);
        let record = ArchiveRecord {
            format: RECORD_FORMAT.to_string(),
            file_name: segment.file_name.clone(),
            base_position: segment.base_position,
            event_count: segment.footer.event_count,
            file_len: bytes.len() as u64,
            contents_crc: segment.footer.contents_crc,
            chain_start: chain::to_hex(&segment.header_chain_start),
            chain_end: chain::to_hex(&segment.footer.chain_end),
            sha256: sha256.clone(),
        };
        let pushed = PushedSegment {
            file_name: segment.file_name.clone(),
            base_position: segment.base_position,
            event_count: segment.footer.event_count,
            bytes: bytes.len() as u64,
            sha256: sha256.clone(),
        };
        let listed = listed_segments.get(&segment.file_name) == Some(&(bytes.len() as u64))
            && listed_records.contains_key(&layout::record_name(&segment.file_name));
        if listed && done.archived.get(&segment.file_name) == Some(&sha256) {
            report.already_archived.push(pushed);
        } else {
            let segment_object = layout::segment_object(&segment.file_name);
            let mut created = false;
            if connection.put_create(&segment_object, bytes)? == Put::Created {
                created = true;
            } else {
                compare_segment(&connection, &segment_object, &record)?;
            }
            let record_object = layout::record_object(&segment.file_name);
            if connection.put_create(&record_object, record.encode())? == Put::Created {
                created = true;
            } else {
                compare_record(&connection, &record_object, &record)?;
            }
            if created {
                report.uploaded.push(pushed);
            } else {
                report.already_archived.push(pushed);
            }
            done.archived.insert(segment.file_name.clone(), sha256);
            checkpoint::write(dir, target.url(), &done.archived, &options.hooks)?;
        }
        at.segments_done += 1;
        at.bytes_done += segment.file_len;
        progress(at);
    }
    Ok(report)
}

/// The sealed segments of the store, oldest first: those the log holds
/// (from the retention manifest's cut on), up to the first that is not
/// sealed.
fn sealed_segments(dir: &Path) -> Result<Vec<Sealed>> {
    let start = retention::read_anchor(dir)?.map_or(0, |anchor| anchor.position);
    let listing = directory::list_segments(dir)?;
    let mut sealed = Vec::new();
    for (base, path) in listing.segments {
        if base < start {
            continue;
        }
        let segment = Segment::open(&path, false, &Hooks::default())?;
        let Some(FooterState::Sealed(footer)) = segment.footer_bytes().map(SegmentFooter::decode)
        else {
            break;
        };
        sealed.push(Sealed {
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
            header_chain_start: segment.header.chain_start,
            salt: segment.header.salt,
            footer,
            base_position: base,
            file_len: segment.file_len(),
        });
    }
    Ok(sealed)
}

/// Refuses to upload bytes that disagree with the footer they carry (the
/// footer's checksum of the contents), or a file that changed length.
fn check_contents(segment: &Sealed, bytes: &[u8]) -> Result<()> {
    let data_end = SEGMENT_HEADER_LEN as u64 + segment.footer.data_len;
    let problem = if bytes.len() as u64 != segment.file_len {
        Some(format!(
            "it is {} bytes now, {} when opened",
            bytes.len(),
            segment.file_len
        ))
    } else if data_end > bytes.len() as u64 {
        Some(format!(
            "its footer claims {} bytes of data, more than the file holds",
            segment.footer.data_len
        ))
    } else if footer::contents_crc(segment.salt, &bytes[SEGMENT_HEADER_LEN..data_end as usize])
        != segment.footer.contents_crc
    {
        Some("its data does not match the footer's checksum of the contents".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(detail) => Err(Error::found(
            &segment.path,
            0,
            Some(segment.base_position),
            FindingKind::FooterMismatch {
                detail: format!("{detail}; nothing of it was archived: run annals verify"),
            },
        )),
    }
}

/// Checks that the segment object found in the archive is the one that
/// would have been put (its SHA-256 and length, read back).
fn compare_segment(connection: &Connection, object: &str, record: &ArchiveRecord) -> Result<()> {
    super::remote::read_checked(
        connection,
        object,
        &record.sha256,
        record.file_len,
        "it was there, and is gone",
    )
    .map(drop)
}

/// Checks that the record object found in the archive says what `record` says.
fn compare_record(connection: &Connection, object: &str, record: &ArchiveRecord) -> Result<()> {
    let bytes = connection.get(object, MAX_RECORD_BYTES)?.ok_or_else(|| {
        connection
            .target
            .error(Some(object), "it was there, and is gone")
    })?;
    let found = ArchiveRecord::decode(connection.target.url(), object, &bytes)?;
    if found != *record {
        return Err(Error::ArchiveMismatch {
            target: connection.target.url().to_string(),
            object: object.to_string(),
            detail: format!("it records {found:?}, the segment is {record:?}"),
        });
    }
    Ok(())
}
