//! Reading an archive: its segments for `verify` (each object read into
//! memory and judged by the same walk as a store's segments, never written
//! to disk), `pull` into a directory, and the check a retirement makes
//! that every segment it removes is in the archive, unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::retention::RetiredSegment;
use crate::format::{MAX_SEGMENT_SIZE_BYTES, parse_segment_file_name};
use crate::hooks::Hooks;
use crate::log::archived::{ArchiveProblem, ArchivedSegments, copy_differs};
use crate::log::segment::Segment;
use crate::log::{derived_file, directory};
use crate::verify::{Progress, VerifyOptions, VerifyReport};
use crate::{RetireOptions, Retirement, Store};

use super::layout::{self, ArchiveRecord, MAX_RECORD_BYTES, RECORDS_FOLDER, SEGMENTS_FOLDER};
use super::target::{ArchiveTarget, Connection};

/// The segments of an archive in object storage, for the walk.
struct ObjectArchive {
    connection: Connection,
    /// Segment objects by base position: name and size.
    segments: BTreeMap<u64, (String, u64)>,
    /// Record names listed.
    records: BTreeMap<String, u64>,
    problems: Mutex<Vec<ArchiveProblem>>,
}

impl ObjectArchive {
    fn open(target: &ArchiveTarget) -> Result<ObjectArchive> {
        let connection = Connection::open(target, None, false, &Hooks::default())?;
        let listed = connection.list(SEGMENTS_FOLDER)?;
        let records = connection.list(RECORDS_FOLDER)?;
        let mut problems = Vec::new();
        let mut segments = BTreeMap::new();
        for (name, size) in listed {
            match parse_segment_file_name(&name) {
                Some(base) => {
                    segments.insert(base, (name, size));
                }
                None => problems.push(ArchiveProblem {
                    path: object_label(target, &layout::segment_object(&name)),
                    message: "an object that is not named like a segment".to_string(),
                }),
            }
        }
        for name in records.keys() {
            let segment = name.strip_suffix(".json").unwrap_or(name);
            let known = parse_segment_file_name(segment)
                .is_some_and(|base| segments.get(&base).is_some_and(|(n, _)| n == segment));
            if !known {
                problems.push(ArchiveProblem {
                    path: object_label(target, &format!("{RECORDS_FOLDER}/{name}")),
                    message: "a record without its segment object".to_string(),
                });
            }
        }
        Ok(ObjectArchive {
            connection,
            segments,
            records,
            problems: Mutex::new(problems),
        })
    }

    fn bytes_total(&self) -> u64 {
        self.segments.values().map(|(_, size)| size).sum()
    }

    fn problem(&self, path: PathBuf, message: String) {
        self.problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ArchiveProblem { path, message });
    }

    /// The record of the segment `name`, if the archive holds a valid one.
    fn record(&self, name: &str) -> Result<Option<ArchiveRecord>> {
        if !self.records.contains_key(&layout::record_name(name)) {
            return Ok(None);
        }
        let object = layout::record_object(name);
        let Some(bytes) = self.connection.get(&object, MAX_RECORD_BYTES)? else {
            return Ok(None);
        };
        ArchiveRecord::decode(self.connection.target.url(), &object, &bytes).map(Some)
    }
}

/// How an archived object is named in findings and reports: its URL.
fn object_label(target: &ArchiveTarget, object: &str) -> PathBuf {
    PathBuf::from(format!("{}/{object}", target.url()))
}

impl ArchivedSegments for ObjectArchive {
    fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        Ok(self
            .segments
            .iter()
            .map(|(base, (name, _))| {
                let label = object_label(&self.connection.target, &layout::segment_object(name));
                (*base, label)
            })
            .collect())
    }

    fn open(&self, base_position: u64, path: &Path) -> Result<Segment> {
        let (name, _) = self.segments.get(&base_position).expect("opened as listed");
        let object = layout::segment_object(name);
        let bytes = self
            .connection
            .get(&object, MAX_SEGMENT_SIZE_BYTES)?
            .ok_or_else(|| {
                self.connection
                    .target
                    .error(Some(&object), "listed, then not found")
            })?;
        // The record says what the object must be; the walk then judges
        // its bytes as any segment's.
        match self.record(name) {
            Ok(Some(record)) => {
                let record_name = format!("its record {}", layout::record_object(name));
                if let Some(message) =
                    copy_differs(&bytes, record.file_len, &record.sha256, &record_name)
                {
                    self.problem(path.to_path_buf(), message);
                }
            }
            Ok(None) => self.problem(
                path.to_path_buf(),
                format!(
                    "no record {} (a push interrupted before writing it: push again)",
                    layout::record_object(name)
                ),
            ),
            Err(error) => self.problem(path.to_path_buf(), error.to_string()),
        }
        Segment::from_bytes(path, &bytes)
    }

    fn take_problems(&self) -> Vec<ArchiveProblem> {
        std::mem::take(&mut *self.problems.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Verifies the archive at `target` alone, from genesis, without writing
/// anything to disk: each segment object is read into memory and checked
/// as `verify` checks a store's segments (headers, every batch, footers,
/// the hash chain, the Merkle tree, `options`' expected head and signed
/// checkpoint), and against its record (SHA-256, length).
/// `options.archive` is not used.
///
/// # Errors
/// [`Error::Archive`] when the archive cannot be listed (an unknown bucket,
/// refused credentials); [`Error::InvalidArgument`] when it holds no segment.
pub fn verify_archive(
    target: &ArchiveTarget,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    let archive = ObjectArchive::open(target)?;
    let bytes_total = archive.bytes_total();
    crate::audit::verify::verify_archive_alone(
        Path::new(target.url()),
        Arc::new(archive),
        bytes_total,
        options,
        progress,
    )
}

/// Verifies the store in `dir`, whose first segments were retired, with
/// the retired segments read from the archive at `target`: the whole chain
/// from genesis, and the cut the retention manifest records against it.
///
/// # Errors
/// As [`crate::verify::verify`], and [`verify_archive`]'s.
pub fn verify_with_archive(
    dir: &Path,
    target: &ArchiveTarget,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    let archive = ObjectArchive::open(target)?;
    crate::audit::verify::verify_with_archive(dir, options, Some(Arc::new(archive)), progress)
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// Segment files written, oldest first.
    pub written: Vec<PathBuf>,
    /// Segment files that were there already, identical.
    pub already_there: Vec<PathBuf>,
}

/// Restores the segments archived at `target` into the directory `to`
/// (created if missing): each object checked against its record, written
/// atomically and durably, made read-only. `annals` then opens `to`
/// read-only (`verify`, `read`, `stats`). Files there already are kept
/// when identical.
///
/// # Errors
/// [`Error::Archive`] when the archive cannot be read or holds no
/// segment; [`Error::ArchiveMismatch`] when an object differs from its
/// record, or has none; [`Error::InvalidArgument`] when `to` holds a
/// different file under a segment's name; I/O errors of `to`.
pub fn pull(
    target: &ArchiveTarget,
    to: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PullReport> {
    let archive = ObjectArchive::open(target)?;
    if archive.segments.is_empty() {
        return Err(target.error(None, "it holds no archived segment: nothing to pull"));
    }
    std::fs::create_dir_all(to).map_err(|e| Error::io("creating directory", to, e))?;
    directory::check_store_dir(to)?;
    let mut report = PullReport {
        written: Vec::new(),
        already_there: Vec::new(),
    };
    let total = archive.segments.len() as u64;
    progress(0, total);
    for (done, (name, _)) in archive.segments.values().enumerate() {
        let object = layout::segment_object(name);
        let record = archive
            .record(name)?
            .ok_or_else(|| Error::ArchiveMismatch {
                target: target.url().to_string(),
                object: object.clone(),
                detail: format!(
                    "it has no record {} (a push was interrupted: push again)",
                    layout::record_object(name)
                ),
            })?;
        let bytes = read_checked(
            &archive.connection,
            &object,
            &record.sha256,
            record.file_len,
            "listed, then not found",
        )?;
        let path = to.join(name);
        if path.symlink_metadata().is_ok() {
            if super::sha256_hex(&std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?)
                != record.sha256
            {
                return Err(Error::InvalidArgument(format!(
                    "{} is there already and differs from the archived segment: pull into an \
                     empty directory",
                    path.display()
                )));
            }
            report.already_there.push(path);
        } else {
            derived_file::write_atomically(to, name, &bytes, &Hooks::default())?;
            crate::log::segment::make_read_only(&path)?;
            report.written.push(path);
        }
        progress(done as u64 + 1, total);
    }
    Ok(report)
}

/// Retires the sealed segments before `before_position` of `store`, as
/// [`Store::retire_segments_before`], only once each of them is in the
/// archive at `target` and unchanged: its object read back, its SHA-256
/// and length equal to the local file's (checked after the segments are
/// chosen, before anything is committed). The retention manifest records
/// the archive's URL.
///
/// # Errors
/// [`Error::Archive`] when a segment is not archived (nothing was
/// retired: push first) or the archive cannot be read;
/// [`Error::ArchiveMismatch`] when an archived segment differs; and
/// [`Store::retire_segments_before`]'s.
pub fn retire_archived(
    store: &Store,
    before_position: u64,
    options: &RetireOptions,
    target: &ArchiveTarget,
) -> Result<Retirement> {
    let connection = Connection::open(target, None, false, &Hooks::default())?;
    let check = |segments: &[RetiredSegment]| -> Result<()> {
        for segment in segments {
            read_checked(
                &connection,
                &layout::segment_object(&segment.file_name),
                &segment.sha256,
                segment.file_len,
                "the segment is not archived there: nothing was retired (run annals archive \
                 push first)",
            )?;
        }
        Ok(())
    };
    store.retire_segments_checked(before_position, options, Some(target.url()), &check)
}

/// The bytes of the segment object `object`, which must have `sha256`
/// (hex) and `file_len` bytes: read back from the archive, whatever any
/// local record says.
///
/// # Errors
/// [`Error::Archive`] saying `missing` when there is no such object, or
/// when it cannot be read; [`Error::ArchiveMismatch`] when it differs.
pub(crate) fn read_checked(
    connection: &Connection,
    object: &str,
    sha256: &str,
    file_len: u64,
    missing: &str,
) -> Result<Vec<u8>> {
    let bytes = connection
        .get(object, MAX_SEGMENT_SIZE_BYTES)?
        .ok_or_else(|| connection.target.error(Some(object), missing))?;
    let found = super::sha256_hex(&bytes);
    if found != sha256 || bytes.len() as u64 != file_len {
        return Err(Error::ArchiveMismatch {
            target: connection.target.url().to_string(),
            object: object.to_string(),
            detail: format!(
                "it has {} bytes with SHA-256 {found}, the segment {file_len} bytes with \
                 SHA-256 {sha256}",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}
