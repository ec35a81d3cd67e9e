//! Where the segments of a log may be kept besides its store directory:
//! an archive. A walk from genesis ([`super::walk::LogWalk::with_archive`])
//! reads the segments retired from the store from one; `verify` of an
//! archive alone reads them all from it. What holds them (a local
//! directory here, object storage in [`crate::archive`]) only lists and
//! hands over bytes: every check is the walk's, the same as for segments
//! in the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Result;
use crate::format::retention::RetiredSegment;
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

/// SHA-256 of `bytes`, lower-case hex: how segments are identified in an
/// archive and in the retention manifest.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::format::chain::to_hex(&sha2::Sha256::digest(bytes).into())
}

/// The one rule for an archived copy of a segment: it has exactly the
/// bytes that were archived, as `record` (what recorded them: the
/// archive's record object, the retention manifest) says, by length and
/// SHA-256. What is wrong, or `None`.
pub(crate) fn copy_differs(
    bytes: &[u8],
    recorded_len: u64,
    recorded_sha256: &str,
    record: &str,
) -> Option<String> {
    let sha256 = sha256_hex(bytes);
    (sha256 != recorded_sha256 || bytes.len() as u64 != recorded_len).then(|| {
        format!(
            "{} bytes with SHA-256 {sha256}; {record} says {recorded_len} bytes with SHA-256 \
             {recorded_sha256}: the copy was changed after it was archived",
            bytes.len()
        )
    })
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
/// `retire --archive DIR` leaves them. Each copy opened is compared with
/// what the retention manifest recorded of it ([`copy_differs`]).
pub(crate) struct DirectoryArchive {
    dir: PathBuf,
    hooks: Hooks,
    /// What the retention manifest recorded of each retired segment, by
    /// file name.
    recorded: BTreeMap<String, RetiredSegment>,
    problems: Mutex<Vec<ArchiveProblem>>,
}

impl DirectoryArchive {
    /// The archive directory `dir` of a store whose retention manifest
    /// recorded `retired` (a copy not among them is judged by its bytes
    /// alone).
    pub fn new(dir: &Path, hooks: &Hooks, retired: &[RetiredSegment]) -> DirectoryArchive {
        DirectoryArchive {
            dir: dir.to_path_buf(),
            hooks: hooks.clone(),
            recorded: retired
                .iter()
                .map(|segment| (segment.file_name.clone(), segment.clone()))
                .collect(),
            problems: Mutex::new(Vec::new()),
        }
    }
}

impl ArchivedSegments for DirectoryArchive {
    fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        Ok(directory::list_segments(&self.dir)?.segments)
    }

    fn open(&self, _base_position: u64, path: &Path) -> Result<Segment> {
        let segment = Segment::open(path, false, &self.hooks)?;
        let recorded = path
            .file_name()
            .and_then(|name| self.recorded.get(&*name.to_string_lossy()));
        if let Some(recorded) = recorded {
            let bytes = segment.bytes(segment.file_len() as usize);
            if let Some(message) = copy_differs(
                bytes,
                recorded.file_len,
                &recorded.sha256,
                "the retention manifest",
            ) {
                self.problems
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(ArchiveProblem {
                        path: path.to_path_buf(),
                        message,
                    });
            }
        }
        Ok(segment)
    }

    fn take_problems(&self) -> Vec<ArchiveProblem> {
        std::mem::take(&mut *self.problems.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
