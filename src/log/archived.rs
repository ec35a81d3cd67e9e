//! Where the segments of a log may be kept besides its store directory:
//! an archive. A walk from genesis ([`super::walk::LogWalk::with_archive`])
//! reads the segments retired from the store from one; `verify` of an
//! archive alone reads them all from it. What holds them (a local
//! directory here, object storage in [`crate::archive`]) only lists and
//! hands over bytes: every check is the walk's, the same as for segments
//! in the store.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::hooks::Hooks;

use super::directory;
use super::segment::Segment;

/// A problem an archive found about one of its segments beyond the
/// segment's own bytes (for example a copy that differs from what the
/// archive's own records say): reported by `verify` with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchiveProblem {
    /// The archived segment (its name in the archive).
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// The segments an archive holds.
pub(crate) trait ArchivedSegments: Send + Sync {
    /// The segments it holds, as their base position (from their name) and
    /// a path naming them in findings, in position order.
    ///
    /// # Errors
    /// When the archive cannot be listed.
    fn list(&self) -> Result<Vec<(u64, PathBuf)>>;

    /// One segment listed by [`ArchivedSegments::list`], read-only.
    ///
    /// # Errors
    /// As [`Segment::open`]: a finding for bytes that are not a segment,
    /// [`crate::Error::Io`] (or another error) when it cannot be read.
    fn open(&self, base_position: u64, path: &Path) -> Result<Segment>;

    /// Problems found so far beyond the segments' own bytes (each once).
    fn take_problems(&self) -> Vec<ArchiveProblem> {
        Vec::new()
    }
}

/// An archive directory: segment files under their store names, as
/// `retire --archive DIR` leaves them.
pub(crate) struct DirectoryArchive {
    dir: PathBuf,
    hooks: Hooks,
}

impl DirectoryArchive {
    /// The archive directory `dir`.
    pub fn new(dir: &Path, hooks: &Hooks) -> DirectoryArchive {
        DirectoryArchive {
            dir: dir.to_path_buf(),
            hooks: hooks.clone(),
        }
    }
}

impl ArchivedSegments for DirectoryArchive {
    fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        Ok(directory::list_segments(&self.dir)?.segments)
    }

    fn open(&self, _base_position: u64, path: &Path) -> Result<Segment> {
        Segment::open(path, false, &self.hooks)
    }
}
