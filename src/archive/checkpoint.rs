//! The push's progress file, `annals.archive` in the store directory
//! (`docs/format.md`): which segments a push finished for which target
//! (segment and record uploaded), so that a rerun skips them without
//! reading them back.
//!
//! Derived data: the archive is the truth. A push lists the archive every
//! time, and skips a segment only when this file and the listing agree;
//! everything else is compared with the archive object by object. A
//! missing, damaged or foreign file (another target) is ignored (the push
//! says so) and rewritten.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::format::ARCHIVE_PROGRESS_FILE_NAME;
use crate::hooks::Hooks;
use crate::log::derived_file;

/// The `format` field of the file this build writes and reads.
const PROGRESS_FORMAT: &str = "annals-archive-progress/1";

/// The largest progress file read (checked first): far beyond what any
/// store's segments need (about 120 bytes each).
const MAX_PROGRESS_FILE_BYTES: u64 = 256 << 20;

/// The progress file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressFile {
    format: String,
    /// The archive's URL.
    target: String,
    /// Segment file name to its SHA-256 (lower-case hex), for each segment
    /// whose segment and record objects are in the archive.
    archived: BTreeMap<String, String>,
}

/// What a push knows of its progress to one target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Progress {
    /// Segment file name to SHA-256 (hex) of the segments archived.
    pub archived: BTreeMap<String, String>,
    /// Why the file was not used, if it was there but not used.
    pub ignored: Option<String>,
}

/// Reads the progress of pushes to `target` from the store `dir`.
pub(crate) fn read(dir: &Path, target: &str) -> Progress {
    let path = dir.join(ARCHIVE_PROGRESS_FILE_NAME);
    let ignored = |why: String| Progress {
        archived: BTreeMap::new(),
        ignored: Some(format!(
            "{} {why}: ignored; the archive was compared object by object",
            path.display()
        )),
    };
    let metadata = match std::fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(_) => return Progress::default(),
    };
    if !metadata.is_file() || metadata.len() > MAX_PROGRESS_FILE_BYTES {
        return ignored(format!(
            "is not a regular file of at most {MAX_PROGRESS_FILE_BYTES} bytes"
        ));
    }
    let file: ProgressFile = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(file) => file,
        Err(e) => return ignored(format!("is damaged ({e})")),
    };
    if file.format != PROGRESS_FORMAT {
        return ignored(format!("has format {:?}", file.format));
    }
    if file.target != target {
        // Another target's progress says nothing about this one.
        return Progress::default();
    }
    Progress {
        archived: file.archived,
        ignored: None,
    }
}

/// Writes the progress of pushes to `target` atomically and durably.
///
/// # Errors
/// [`crate::Error::Io`] / [`crate::Error::NoSpace`] when it cannot be written.
pub(crate) fn write(
    dir: &Path,
    target: &str,
    archived: &BTreeMap<String, String>,
    hooks: &Hooks,
) -> Result<()> {
    let file = ProgressFile {
        format: PROGRESS_FORMAT.to_string(),
        target: target.to_string(),
        archived: archived.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).expect("progress serializes");
    bytes.push(b'\n');
    derived_file::write_atomically(dir, ARCHIVE_PROGRESS_FILE_NAME, &bytes, hooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_per_target() {
        let dir = tempfile::tempdir().unwrap();
        let archived = BTreeMap::from([("1.seg".to_string(), "ab".repeat(32))]);
        write(dir.path(), "s3://b/p", &archived, &Hooks::default()).unwrap();
        let progress = read(dir.path(), "s3://b/p");
        assert_eq!(progress.archived, archived);
        assert_eq!(progress.ignored, None);
        assert!(read(dir.path(), "s3://b/other").archived.is_empty());
    }

    #[test]
    fn damaged_progress_is_ignored_and_said() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ARCHIVE_PROGRESS_FILE_NAME), b"{\"format\":").unwrap();
        let progress = read(dir.path(), "s3://b/p");
        assert!(progress.archived.is_empty());
        assert!(progress.ignored.unwrap().contains("damaged"));
    }
}
