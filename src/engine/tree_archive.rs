//! The retired prefix of the Merkle tree, read back from the archive
//! directory a retirement copied its segments into (`RetireOptions::archive`):
//! what a root, an inclusion proof of a retired position or a consistency
//! proof from a checkpoint older than the cut needs when the frontier the
//! retention manifest keeps at the cut does not answer.
//!
//! Each archived segment is bound to the manifest in O(1): its footer must
//! be valid and state the event count and contents checksum the manifest
//! lists for that file, and the segments must follow each other up to the
//! cut. Their frames are checked (checksum, salt) as they are hashed. The
//! manifest's SHA-256 of each file is not recomputed (a proof reads at most
//! a few segments' leaves, the SHA-256 would read them all): a changed file
//! that still passes these checks gives proofs that do not verify against
//! a checkpoint signed before the change, which is what an auditor checks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_LEN;
use crate::format::retention::RetentionManifest;
use crate::log::directory;
use crate::log::segment::Segment;

use super::index_files::footer_of;

/// One archived segment, checked against the retention manifest.
pub(crate) struct ArchivedSegment {
    pub segment: Arc<Segment>,
    /// The end of its data (from its footer).
    pub end_offset: usize,
    pub base_position: u64,
    pub end_position: u64,
}

/// The archived segments of the retired prefix `0..cut` found in
/// `archive` (which `manifest` describes), oldest first, from the earliest one there on: contiguous
/// up to the cut, each matching the manifest. Segments of `archive` at or
/// after the cut are ignored (an archive may be shared by later cuts).
///
/// # Errors
/// [`Error::ProofArchive`] when the directory cannot be read, a file does
/// not match the manifest, or the segments do not reach the cut without a
/// gap; [`Error::Io`] when a segment file cannot be opened.
pub(crate) fn archived_segments(
    archive: &Path,
    cut: u64,
    manifest: &RetentionManifest,
) -> Result<Vec<ArchivedSegment>> {
    let refuse = |file: Option<&Path>, detail: String| Error::ProofArchive {
        archive: archive.to_path_buf(),
        file: file
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
        detail,
    };
    directory::check_store_dir(archive).map_err(|e| refuse(None, e.to_string()))?;
    let mut listed: Vec<(u64, std::path::PathBuf)> = directory::list_segments(archive)
        .map_err(|e| refuse(None, e.to_string()))?
        .segments
        .into_iter()
        .filter(|(base, _)| *base < cut)
        .collect();
    listed.sort_by_key(|(base, _)| *base);
    if listed.is_empty() {
        return Err(refuse(
            None,
            format!("it holds no segment of the retired positions 0..{}", cut),
        ));
    }
    // What the manifest lists of each retired segment: events, checksum.
    let recorded: HashMap<u64, (u64, u32)> = manifest
        .records
        .iter()
        .flat_map(|record| &record.segments)
        .map(|s| (s.base_position, (s.event_count, s.contents_crc)))
        .collect();
    let mut segments = Vec::with_capacity(listed.len());
    for (base, path) in listed {
        let segment = Segment::open(&path, false, &Default::default())?;
        let Some(footer) = footer_of(&segment) else {
            return Err(refuse(Some(&path), "it has no valid footer".to_string()));
        };
        let Some(&(event_count, contents_crc)) = recorded.get(&base) else {
            return Err(refuse(
                Some(&path),
                "the retention manifest does not list it".to_string(),
            ));
        };
        if footer.event_count != event_count
            || footer.contents_crc != contents_crc
            || segment.header.base_position != base
        {
            return Err(refuse(
                Some(&path),
                "its footer does not state the events and contents checksum the retention \
                 manifest lists for it"
                    .to_string(),
            ));
        }
        let end_offset = usize::try_from(footer.data_len)
            .ok()
            .and_then(|len| len.checked_add(SEGMENT_HEADER_LEN))
            .filter(|&end| end <= segment.len())
            .ok_or_else(|| refuse(Some(&path), "its footer's data length is impossible".into()))?;
        let end_position = base
            .checked_add(event_count)
            .ok_or_else(|| refuse(Some(&path), "its positions overflow".into()))?;
        if let Some(previous) = segments.last().map(|s: &ArchivedSegment| s.end_position)
            && previous != base
        {
            return Err(refuse(
                Some(&path),
                format!(
                    "it starts at position {base}, but the segment before it ends at {previous}"
                ),
            ));
        }
        segments.push(ArchivedSegment {
            segment: Arc::new(segment),
            end_offset,
            base_position: base,
            end_position,
        });
    }
    let end = segments.last().map_or(0, |s| s.end_position);
    if end != cut {
        return Err(refuse(
            None,
            format!(
                "its segments end at position {end}, but the store's log starts at {}",
                cut
            ),
        ));
    }
    Ok(segments)
}
