//! What `verify` checks of the Merkle tree recorded in index files
//! (issue 19): each sealed segment's index file must record the tree that
//! `verify` computes from the leaves at the segment's start and at its end.
//! An index file is derived data: a mismatch is a finding of kind
//! [`FindingKind::IndexFile`], whose verdict (the one decision table) is
//! `Rebuild`, as when an open finds it: a warning here, a file written
//! anew by the next writer's open.
//!
//! An open checks the start of each record against the end of the one
//! before ([`crate::engine::tree::TreeChain`], the same rule and message
//! here); only `verify`, which reads every leaf, can check the end.

use std::path::Path;

use crate::format::chain::to_hex;
use crate::format::footer::{FooterState, SegmentFooter};
use crate::format::index_file::{IndexFile, index_file_name, read_tree};
use crate::log::finding::{Finding, FindingKind};
use crate::log::segment::Segment;
use crate::proof::merkle::{Frontier, Hash};

/// The finding about the tree section and tiles of the index file of
/// `segment` (in `dir`), given the tree `verify` computed at the segment's
/// start and end (`None`: not computed, nothing to compare) and the roots
/// of its tiles (computed with the end). `None` when there is nothing to
/// report: the segment is not sealed, its index file is absent (an open
/// writes it; not a finding of the log), or the file records the tree
/// computed.
pub(crate) fn check(
    dir: &Path,
    segment: &Segment,
    start: Option<&Frontier>,
    end: Option<&Frontier>,
    tiles: &[Hash],
) -> Option<Finding> {
    let sealed = segment
        .footer_bytes()
        .map(SegmentFooter::decode)
        .is_some_and(|footer| matches!(footer, FooterState::Sealed(_)));
    if !sealed {
        return None;
    }
    let base_position = segment.header.base_position;
    let path = dir.join(index_file_name(base_position));
    let bytes = std::fs::read(&path).ok()?;
    let finding = |detail: String| Finding {
        kind: FindingKind::IndexFile { detail },
        path: path.clone(),
        offset: 0,
        position: Some(base_position),
    };
    let (binding, record) = match read_tree(&bytes) {
        Ok(read) => read,
        Err(error) => return Some(finding(error.to_string())),
    };
    if binding.base_position != base_position || binding.salt != segment.header.salt {
        // Another segment's file: an open rebuilds it (and says so); its
        // tree says nothing of this segment's.
        return Some(finding(
            "stale: it describes another segment (base position or salt)".to_string(),
        ));
    }
    let chain = crate::engine::tree::TreeChain::starting_at(start.cloned());
    if let Some(problem) = chain.mismatch(record.as_ref()) {
        return Some(finding(problem));
    }
    let (Some(record), Some(end)) = (record, end) else {
        return None;
    };
    if record.end != *end {
        return Some(finding(format!(
            "its Merkle tree at the segment's end ({} leaves, root {}) differs from the tree \
             of the segment's events ({} leaves, root {})",
            record.end.size(),
            to_hex(&record.end.root()),
            end.size(),
            to_hex(&end.root())
        )));
    }
    // The tiles are read from the whole file, checked as its first use
    // would check it (a file failing that is rebuilt on first use).
    let file = match IndexFile::parse(&bytes) {
        Ok(file) => file,
        Err(error) => return Some(finding(error.to_string())),
    };
    let (_, recorded) = file.tiles();
    if !recorded.is_empty() && recorded != tiles.concat() {
        return Some(finding(
            "its tiles (the roots of the runs of 256 events it records) differ from those of \
             the segment's events"
                .to_string(),
        ));
    }
    None
}
