//! The store directory: which files are segments, the writer lock, and
//! making directory entries durable.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format;

use super::segment::TEMP_SUFFIX;

/// Name of the lock file a writer holds in the store directory.
pub const LOCK_FILE_NAME: &str = "annals.lock";

/// Whether `name` (a file name, without a directory) is the name of a
/// segment file: twenty decimal digits, the zero-padded position of its
/// first event, then `.seg`. Temporary files of a segment being created
/// (`….seg.tmp`) are not segment files.
///
/// For tools that look at a store directory: to tell a store from other
/// files, or to count and size its segments.
///
/// ```
/// assert!(annals::is_segment_file_name("00000000000000000000.seg"));
/// assert!(annals::is_segment_file_name("00000000000000001024.seg"));
/// assert!(!annals::is_segment_file_name("00000000000000001024.seg.tmp"));
/// assert!(!annals::is_segment_file_name("1024.seg"));
/// assert!(!annals::is_segment_file_name("annals.lock"));
/// ```
pub fn is_segment_file_name(name: &str) -> bool {
    format::parse_segment_file_name(name).is_some()
}

/// The files of a store directory that matter to annals.
pub(crate) struct DirListing {
    /// Segment files with their base positions, in position order.
    pub segments: Vec<(u64, PathBuf)>,
    /// Temporary files of segment creations, and of derived files (index
    /// files, the checkpoint) being written, that never finished.
    pub temp_files: Vec<PathBuf>,
}

/// Lists segment files (by base position) and stray temporary files.
pub(crate) fn list_segments(dir: &Path) -> Result<DirListing> {
    let mut segments = Vec::new();
    let mut temps = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("listing store directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("listing store directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = format::parse_segment_file_name(name) {
            segments.push((base, entry.path()));
        } else if name
            .strip_suffix(TEMP_SUFFIX)
            .is_some_and(|n| format::parse_segment_file_name(n).is_some())
            || super::derived_file::is_derived_temp_name(name)
        {
            temps.push(entry.path());
        }
    }
    segments.sort();
    Ok(DirListing {
        segments,
        temp_files: temps,
    })
}

/// Checks that `dir` is a directory, with an error that says what it is
/// instead.
///
/// # Errors
/// [`Error::Io`] (not found) for a missing path; [`Error::InvalidArgument`]
/// for a path that is not a directory.
pub(crate) fn check_store_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(Error::InvalidArgument(format!(
            "{} is a file, not a store directory",
            dir.display()
        ))),
        Err(e) => Err(Error::io("opening store directory", dir, e)),
    }
}

/// Whether a writer holds the store's lock right now. A reader never
/// creates the lock file (the store may be on read-only media).
pub(crate) fn writer_is_live(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE_NAME)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

/// The writer lock of a store, held until dropped.
///
/// Dropping it unlocks explicitly before closing the file: a process this
/// one starts holds a copy of every open descriptor until it executes its
/// program, and a lock merely closed here would stay held through that
/// copy, so that a store closed and opened again at that moment would look
/// locked by another writer. An explicit unlock releases the lock whatever
/// copies of the descriptor exist.
#[derive(Debug)]
pub(crate) struct WriterLock(File);

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Best effort: closing the file releases it too, once no copy is left.
        let _ = self.0.unlock();
    }
}

/// Takes the writer lock of `dir`.
pub(crate) fn lock(dir: &Path) -> Result<WriterLock> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("opening lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(WriterLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking", &path, e)),
    }
}

/// Makes a directory's entries (new or renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}
