//! Where the log starts: at position 0 with the genesis chain value, or,
//! once its first segments were retired, where the retention manifest
//! (`annals.retention`, [`crate::format::retention`]) says. Every walk of
//! the log starts from [`read_anchor`]'s answer, so every opener, `verify`
//! and `repair` agree on it.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::CHAIN_LEN;
use crate::format::retention::{
    MAX_RETENTION_FILE_BYTES, RETENTION_FILE_NAME, RetentionManifest, RetiredSegment,
};

use super::finding::{Finding, FindingKind};

/// The state of the log at the newest cut, as the manifest records it:
/// what the first kept batch must continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Position of the first kept event.
    pub position: u64,
    /// The chain value the first kept segment starts from.
    pub chain: [u8; CHAIN_LEN],
    /// Timestamp of the last retired event.
    pub last_timestamp_ns: u64,
    /// Each stream's version at the cut (streams with retired events only).
    pub streams: crate::index::IdMap<u64>,
    /// The data of each metadata stream's newest `$metadata` event before
    /// the cut, by metadata stream name.
    pub metadata: crate::index::IdMap<Vec<u8>>,
    /// Each subject erased before the cut, with its erasure event's position.
    pub erasures: Vec<(String, u64)>,
    /// The Merkle tree of the positions before the cut, as its frontier:
    /// what the root and proofs of kept positions need of the retired
    /// leaves. `None` when the manifest does not record it.
    pub frontier: Option<crate::proof::merkle::Frontier>,
    /// The manifest, for reports and for checking retired files (its
    /// `streams_at_cut`, `metadata_at_cut` and `erasures_at_cut` moved to
    /// the fields above).
    pub manifest: RetentionManifest,
}

impl Anchor {
    /// The retired segment recorded under `file_name`, if any.
    pub fn retired_segment(&self, file_name: &str) -> Option<&RetiredSegment> {
        self.manifest
            .records
            .iter()
            .flat_map(|record| &record.segments)
            .find(|segment| segment.file_name == file_name)
    }
}

/// Reads the retention manifest of `dir`: `None` when the store was never
/// cut (the log starts at 0).
///
/// # Errors
/// [`Error::Corrupt`] ([`FindingKind::RetentionManifest`]) when the file is
/// there but damaged, too large, or not a file: without it the start of the
/// log is unknown, so every opener refuses; [`Error::Io`] when it cannot be read.
pub(crate) fn read_anchor(dir: &Path) -> Result<Option<Arc<Anchor>>> {
    let path = dir.join(RETENTION_FILE_NAME);
    let refuse = |detail: String| {
        Error::Corrupt(Box::new(Finding {
            kind: FindingKind::RetentionManifest { detail },
            path: path.clone(),
            offset: 0,
            position: None,
        }))
    };
    let metadata = match fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading retention manifest", &path, e)),
    };
    if !metadata.is_file() {
        return Err(refuse("it is not a regular file".to_string()));
    }
    if metadata.len() > MAX_RETENTION_FILE_BYTES {
        return Err(refuse(format!(
            "it is {} bytes, more than the {MAX_RETENTION_FILE_BYTES} a manifest may have",
            metadata.len()
        )));
    }
    let bytes = fs::read(&path).map_err(|e| Error::io("reading retention manifest", &path, e))?;
    let mut manifest = RetentionManifest::decode(&bytes).map_err(|e| refuse(e.0))?;
    let streams = std::mem::take(&mut manifest.streams_at_cut)
        .into_iter()
        .map(|(name, version)| (name.into_boxed_str(), version))
        .collect();
    let metadata = std::mem::take(&mut manifest.metadata_at_cut)
        .into_iter()
        .map(|(name, data)| (name.into_boxed_str(), data.0))
        .collect();
    let erasures = std::mem::take(&mut manifest.erasures_at_cut);
    let newest = manifest.newest();
    Ok(Some(Arc::new(Anchor {
        metadata,
        erasures,
        frontier: manifest.frontier_at_cut(),
        position: newest.first_retained_position,
        chain: manifest.chain_at_cut(),
        last_timestamp_ns: newest.last_timestamp_ns,
        streams,
        manifest,
    })))
}

/// What identifies the manifest file now (inode, length, modification
/// time), without reading it: it changes with every retirement, which
/// replaces the file. `None` when there is none.
pub(crate) fn fingerprint(dir: &Path) -> Option<(u64, u64, Option<std::time::SystemTime>)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(dir.join(RETENTION_FILE_NAME)).ok()?;
    Some((metadata.ino(), metadata.len(), metadata.modified().ok()))
}
