//! The Merkle tree over the log (issue 19, `docs/proofs.md`), computed from
//! the segments rather than stored in them: leaf `i` is
//! [`leaf_hash`](crate::proof::merkle::leaf_hash) of the event at position
//! `i`'s frame exactly as stored (its 12-byte header, body and zero padding,
//! from its offset to the next frame's), so a proof checks against what is
//! on disk.
//!
//! Cost: nothing is cached, so [`LogTree::subtree_hash`] streams the frames
//! of its range, O(end - start) frame reads and hashes in one pass and
//! O(log n) memory. The root reads the whole kept log, and a proof reads
//! about as much (its siblings cover the tree). Caching the roots of sealed
//! segments' subtrees would make proofs O(log n) reads: future work.
//!
//! Positions below the log's start were retired: their leaves are gone.
//! The retention manifest keeps the [`Frontier`] of the tree at the cut
//! (its perfect subtree roots), which answers any range made of those
//! subtrees: the root, the inclusion proof of a kept position, and a
//! consistency proof from a size at or after the cut all need nothing else.
//! Anything finer is [`Error::ProofNeedsRetiredEvents`].

use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::proof::merkle::{self, Frontier, Hash, SubtreeSource};

use super::Engine;
use super::read_events::{log_start, published_segments, visit_event_frames};

/// The tree over an engine's log, as [`SubtreeSource`]. Each call takes
/// the state's lock only to find its segments: the frames are read after
/// it is released (published bytes never change), so a long proof does not
/// hold up appends.
pub(crate) struct LogTree<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// The Merkle tree over the log.
    pub(crate) fn tree(&self) -> LogTree<'_> {
        LogTree { engine: self }
    }
}

impl Engine {
    /// `previous` (the frontier of the tree of the positions before segment
    /// `ordinals.start`) extended with the leaves of the segments
    /// `ordinals`: what a retirement of those segments records, read while
    /// they are still here.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when a frame no longer reads;
    /// [`Error::InvalidArgument`] when `previous` does not end where the
    /// segments start.
    pub(crate) fn frontier_through(
        &self,
        previous: Frontier,
        ordinals: std::ops::Range<usize>,
    ) -> Result<Frontier> {
        let (segments, expected_start, expected_end) = {
            let state = self.read_state();
            let segments: Vec<_> = published_segments(&state, ordinals.start)
                .into_iter()
                .take(ordinals.len())
                .collect();
            let stats = &state.index.segments[ordinals.clone()];
            let start = stats.first().map_or(previous.size(), |s| s.base_position);
            let end = stats.last().map_or(previous.size(), |s| s.end_position());
            (segments, start, end)
        };
        if previous.size() != expected_start {
            return Err(Error::InvalidArgument(format!(
                "the tree recorded at the last cut has {} leaves, but the segments to retire \
                 start at position {expected_start}: nothing was retired",
                previous.size()
            )));
        }
        let mut frontier = previous;
        let mut full = false;
        for (segment, end) in &segments {
            visit_event_frames(
                [(&**segment, *end)],
                &super::read_events::LogStart::segment_start(0),
                |_, _, stored| {
                    full = frontier.push(merkle::leaf_hash(stored)).is_err();
                    Ok(if full {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    })
                },
            )?;
        }
        if full || frontier.size() != expected_end {
            return Err(Error::InvalidArgument(format!(
                "the segments to retire hold {} events up to position {expected_end}, but {} \
                 were read: nothing was retired",
                expected_end - expected_start,
                frontier.size() - expected_start
            )));
        }
        Ok(frontier)
    }
}

impl LogTree<'_> {
    /// The number of leaves now (the next position).
    pub fn size(&self) -> u64 {
        self.engine.read_state().index.next_position()
    }

    /// The MTH of kept positions `start..end` (`start < end`), streamed from
    /// the segments in one pass.
    fn kept_subtree_hash(&self, start: u64, end: u64) -> Result<Hash> {
        let (first, segments) = {
            let state = self.engine.read_state();
            let log_start_position = state.index.start_position();
            let next = state.index.next_position();
            if start < log_start_position {
                // Retired since the caller looked: the retired rule applies.
                return Err(self.needs_retired(start, end, log_start_position));
            }
            if end > next {
                return Err(Error::InvalidArgument(format!(
                    "positions {start}..{end} asked of a tree of {next} leaves"
                )));
            }
            let Some(first) = log_start(&state, start)? else {
                return Err(Error::InvalidArgument(format!(
                    "position {start} asked of a tree of {next} leaves"
                )));
            };
            let segments = published_segments(&state, first.ordinal);
            (first, segments)
        };
        let mut frontier = Frontier::new();
        let wanted = end - start;
        let frames = segments.iter().map(|(segment, end)| (&**segment, *end));
        visit_event_frames(frames, &first, |_, _, stored| {
            // At most `wanted` < 2^64 pushes: the frontier cannot be full.
            let _ = frontier.push(merkle::leaf_hash(stored));
            Ok(if frontier.size() == wanted {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        if frontier.size() != wanted {
            // The index counted these events, so the segments hold them.
            return Err(Error::InvalidArgument(format!(
                "the log ended after {} of the {wanted} events {start}..{end}",
                frontier.size()
            )));
        }
        Ok(frontier.root())
    }

    /// The MTH of `start..end` where `start` is below the cut at
    /// `log_start_position`: from the frontier of the retired prefix for the
    /// part below the cut (only whole subtrees of it are known), from the
    /// segments for the rest.
    fn hash_across_cut(
        &self,
        start: u64,
        end: u64,
        log_start_position: u64,
        frontier: Option<&Frontier>,
    ) -> Result<Hash> {
        if start >= log_start_position {
            return self.kept_subtree_hash(start, end);
        }
        if end <= log_start_position {
            return frontier
                .and_then(|frontier| retired_range_hash(frontier, start, end))
                .ok_or_else(|| self.needs_retired(start, end, log_start_position));
        }
        // The range straddles the cut: split it as MTH does, so that the
        // part below the cut falls into the frontier's subtrees.
        let middle = start + merkle::split_point(end - start);
        let left = self.hash_across_cut(start, middle, log_start_position, frontier)?;
        let right = self.hash_across_cut(middle, end, log_start_position, frontier)?;
        Ok(merkle::node_hash(&left, &right))
    }

    fn needs_retired(&self, start: u64, end: u64, log_start_position: u64) -> Error {
        Error::ProofNeedsRetiredEvents {
            dir: self.engine.dir.clone(),
            start,
            end,
            log_start: log_start_position,
        }
    }
}

/// The MTH of `start..end` (below the cut) from the frontier of the
/// retired prefix: known when `start` and `end` are boundaries of its
/// perfect subtrees (a run of whole subtrees), unknown inside one.
fn retired_range_hash(frontier: &Frontier, start: u64, end: u64) -> Option<Hash> {
    let subtrees = frontier.subtree_roots();
    let first = subtrees.iter().position(|s| s.start == start)?;
    let last = first + subtrees[first..].iter().position(|s| s.end == end)?;
    // Consecutive perfect subtrees of decreasing size: MTH splits off the
    // largest first, so fold from the right (as `Frontier::root` does).
    let mut runs = subtrees[first..=last].iter().rev();
    let rightmost = runs.next()?.hash;
    Some(runs.fold(rightmost, |right, left| {
        merkle::node_hash(&left.hash, &right)
    }))
}

impl SubtreeSource for LogTree<'_> {
    type Error = Error;

    /// The leaf hash of position `index`: one frame read (after stepping
    /// over at most a sparse-index stride of frames).
    fn leaf_hash(&self, index: u64) -> Result<Hash> {
        self.subtree_hash(index, index.saturating_add(1))
    }

    fn subtree_hash(&self, start: u64, end: u64) -> Result<Hash> {
        if start >= end {
            return Ok(merkle::empty_root());
        }
        let (log_start_position, frontier) = {
            let state = self.engine.read_state();
            let frontier = state
                .index
                .anchor()
                .and_then(|anchor| anchor.frontier.clone());
            (state.index.start_position(), frontier)
        };
        self.hash_across_cut(start, end, log_start_position, frontier.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_ranges_are_whole_runs_of_frontier_subtrees() {
        let leaves: Vec<Hash> = (0u8..13).map(|i| merkle::leaf_hash(&[i])).collect();
        let frontier = Frontier::from_source(13, leaves.as_slice()).unwrap();
        // 13 = 8 + 4 + 1.
        for (start, end) in [(0, 8), (8, 12), (12, 13), (0, 12), (8, 13), (0, 13)] {
            assert_eq!(
                retired_range_hash(&frontier, start, end),
                Some(leaves.as_slice().subtree_hash(start, end).unwrap()),
                "{start}..{end}"
            );
        }
        for (start, end) in [(0, 4), (4, 8), (9, 10), (8, 10), (1, 13), (0, 11)] {
            assert_eq!(
                retired_range_hash(&frontier, start, end),
                None,
                "{start}..{end}"
            );
        }
    }
}
