//! The Merkle tree over the log (issue 19, `docs/proofs.md`), derived from
//! the segments: leaf `i` is
//! [`leaf_hash`](crate::proof::merkle::leaf_hash) of the event at position
//! `i`'s frame exactly as stored (its 12-byte header, body and zero padding,
//! from its offset to the next frame's), so a proof checks against what is
//! on disk.
//!
//! Cost: a range inside one segment is streamed, O(end - start) frame
//! reads and hashes in one pass and O(log n) memory. A range across
//! segments is answered from [`FrontierCache`], the tree's frontier at the
//! end of each sealed segment, when it is a run of that frontier's perfect
//! subtrees, and otherwise split as MTH splits it. The cache starts with
//! what the index files record ([`TreeChain`], `docs/format.md`, "The tree
//! section"), and a seal adds its segment's. Inside a sealed segment, the
//! roots of its aligned runs of 256 leaves ("tiles", recorded in its index
//! file) answer whole runs of them; only runs of at most 256 leaves are
//! read. So a root or a proof costs O(log n) cached hashes, at most s/256
//! tile roots per sealed segment of s events, fewer than 256 leaves of each
//! sealed segment it needs, and the active segment's leaves when it is
//! about the current tree. Only a store whose index files do not record the
//! tree (an older build's, before its first writable open) reads every
//! sealed segment once to fill the cache.
//!
//! Positions below the log's start were retired: their leaves are gone
//! from the store. The retention manifest keeps the [`Frontier`] of the
//! tree at the cut (its perfect subtree roots), which answers any range
//! made of those subtrees: the root, the inclusion proof of a kept
//! position, and a consistency proof from a size at or after the cut all
//! need nothing else. Anything finer reads the archived segments when an
//! archive is given ([`Engine::tree_with_archive`]), and is
//! [`Error::ProofNeedsRetiredEvents`] otherwise.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::tree_record::{TILE_HEIGHT, TILE_LEAVES, TreeRecord};
use crate::proof::merkle::{self, Frontier, Hash, SubtreeSource};

use super::Engine;
use super::read_events::{LogStart, log_start, published_segments, visit_event_frames};
use crate::index::segment::ContentsView;
use crate::log::segment::Segment;

/// The tree's frontier at the end of each sealed segment, by the segment's
/// base position: what lets a root or a proof skip the leaves of whole
/// segments. A sealed segment never changes, so neither does its frontier:
/// each is learned from the segment's index file on open, added when the
/// segment is sealed, or else computed once, when a root or proof first
/// needs it, from the one before it; it is checked against the segment's
/// end position when used.
///
/// Memory: at most one frontier per kept sealed segment (those of retired
/// or archived segments are dropped when the next one is computed, unless
/// the proof computing it reads an archive), each a size and
/// one 32-byte hash per set bit of it: at most 64 hashes (2 KiB), about
/// 10 to 20 for logs of thousands to millions of events.
#[derive(Debug, Default)]
pub(crate) struct FrontierCache {
    frontiers: Mutex<HashMap<u64, Frontier>>,
}

/// What one [`LogTree::subtree_hash`] call sees of the log, taken under
/// the state's lock once: the retired prefix and the kept segments.
struct LogView {
    log_start_position: u64,
    /// The state's ordinal of the first kept segment.
    first_ordinal: usize,
    /// The tree of the retired prefix, as the retention manifest records it.
    frontier_at_cut: Option<Frontier>,
    /// Every kept segment (the first starts at the cut), oldest first; all
    /// but the last are sealed. Read from an archive, the archived segments
    /// come first, and the log starts at the first of them.
    segments: Vec<SegmentSpan>,
    /// How many of `segments` were read from an archive (no index).
    archived: usize,
}

#[derive(Clone)]
struct SegmentSpan {
    segment: Arc<Segment>,
    /// The end of its published batches.
    end_offset: usize,
    base_position: u64,
    end_position: u64,
}

/// The segments `ordinals` of `state`, shared so that they are read after
/// the state's lock is released.
fn spans(state: &super::State, ordinals: std::ops::Range<usize>) -> Vec<SegmentSpan> {
    published_segments(state, ordinals.start)
        .into_iter()
        .zip(&state.index.segments[ordinals])
        .map(|((segment, end_offset), index)| SegmentSpan {
            segment,
            end_offset,
            base_position: index.base_position,
            end_position: index.end_position(),
        })
        .collect()
}

impl LogView {
    /// The sealed segments: every kept one but the newest (the writer
    /// rolls to a new segment only after sealing the one before).
    fn sealed(&self) -> &[SegmentSpan] {
        &self.segments[..self.segments.len().saturating_sub(1)]
    }

    /// The ordinal of the segment holding `position`, if kept.
    fn segment_of(&self, position: u64) -> Option<usize> {
        let ordinal = self
            .segments
            .partition_point(|span| span.base_position <= position)
            .checked_sub(1)?;
        (position < self.segments[ordinal].end_position).then_some(ordinal)
    }
}

/// The tree over an engine's log, as [`SubtreeSource`]. Each call takes
/// the state's lock only to find its segments: the frames are read after
/// it is released (published bytes never change), so a long proof does not
/// hold up appends.
pub(crate) struct LogTree<'e> {
    engine: &'e Engine,
    /// The segments of the retired prefix, read from an archive.
    archived: Vec<SegmentSpan>,
    /// The tiles of the sealed segment read last (by its base position):
    /// a proof asks for several ranges of the same segment.
    tiles: RefCell<Option<(u64, Option<Arc<Tiles>>)>>,
}

/// The tiles an index file records: the roots of the aligned runs of
/// [`TILE_LEAVES`] leaves inside its segment, from tile `first` on.
struct Tiles {
    first: u64,
    hashes: Vec<Hash>,
}

impl Engine {
    /// The Merkle tree over the log.
    pub(crate) fn tree(&self) -> LogTree<'_> {
        LogTree {
            engine: self,
            archived: Vec::new(),
            tiles: RefCell::default(),
        }
    }

    /// The Merkle tree over the log, with the leaves of its retired prefix
    /// read from `archive` ([`tree_archive`](super::tree_archive)) where
    /// the frontier kept at the cut does not answer. Without a retired
    /// prefix, the archive is not read.
    ///
    /// # Errors
    /// As [`super::tree_archive::archived_segments`].
    pub(crate) fn tree_with_archive(&self, archive: &std::path::Path) -> Result<LogTree<'_>> {
        // Copied out of the lock (the manifest is small): the archive's
        // files are opened after it is released.
        let anchor = self
            .read_state()
            .index
            .anchor()
            .map(|a| (a.position, a.manifest.clone()));
        let Some((cut, manifest)) = anchor else {
            return Ok(self.tree());
        };
        let archived = super::tree_archive::archived_segments(archive, cut, &manifest)?
            .into_iter()
            .map(|a| SegmentSpan {
                segment: a.segment,
                end_offset: a.end_offset,
                base_position: a.base_position,
                end_position: a.end_position,
            })
            .collect();
        Ok(LogTree {
            engine: self,
            archived,
            tiles: RefCell::default(),
        })
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
        let spans = spans(&self.read_state(), ordinals);
        let expected_start = spans.first().map_or(previous.size(), |s| s.base_position);
        if previous.size() != expected_start {
            return Err(Error::InvalidArgument(format!(
                "the tree recorded at the last cut has {} leaves, but the segments to retire \
                 start at position {expected_start}: nothing was retired",
                previous.size()
            )));
        }
        let mut frontier = previous;
        for span in &spans {
            frontier = segment_frontier(frontier, span)?;
        }
        Ok(frontier)
    }
}

impl LogTree<'_> {
    /// The number of leaves now (the next position).
    pub fn size(&self) -> u64 {
        self.engine.read_state().index.next_position()
    }

    fn view(&self) -> LogView {
        let state = self.engine.read_state();
        // Retired segments keep their slots (and ordinals) in the state,
        // without their bytes: only the kept ones are read.
        let first_ordinal = state.index.retained_from();
        let kept = spans(&state, first_ordinal..state.index.segments.len());
        let frontier_at_cut = state
            .index
            .anchor()
            .and_then(|anchor| anchor.frontier.clone());
        match self.archived.first() {
            // The archive reaches the cut (checked when it was read): the
            // log starts at its first segment, where the tree is known only
            // at genesis.
            Some(first) => LogView {
                log_start_position: first.base_position,
                first_ordinal,
                frontier_at_cut: (first.base_position == 0).then(Frontier::new),
                archived: self.archived.len(),
                segments: self.archived.iter().cloned().chain(kept).collect(),
            },
            None => LogView {
                log_start_position: state.index.start_position(),
                first_ordinal,
                frontier_at_cut,
                archived: 0,
                segments: kept,
            },
        }
    }

    /// The MTH of kept positions `start..end` (`start < end`), streamed from
    /// the segments in one pass.
    fn kept_subtree_hash(&self, start: u64, end: u64) -> Result<Hash> {
        let mut frontier = Frontier::new();
        self.visit_kept_leaves(start, end, |leaf| {
            // At most `end - start` < 2^64 pushes: the frontier cannot be full.
            let _ = frontier.push(leaf);
        })?;
        Ok(frontier.root())
    }

    /// The leaf hashes of kept positions `start..end` (`start < end`), read
    /// in one pass: what receipts of a batch need.
    ///
    /// # Errors
    /// As [`SubtreeSource::subtree_hash`].
    pub(crate) fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>> {
        let mut leaves = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        self.visit_kept_leaves(start, end, |leaf| leaves.push(leaf))?;
        Ok(leaves)
    }

    /// Calls `f` with the leaf hash of each kept position `start..end`
    /// (`start < end`), in order, streamed from the segments.
    fn visit_kept_leaves(&self, start: u64, end: u64, mut f: impl FnMut(Hash)) -> Result<()> {
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
        let wanted = end - start;
        let mut seen = 0u64;
        let frames = segments.iter().map(|(segment, end)| (&**segment, *end));
        visit_event_frames(frames, &first, |_, _, stored| {
            f(merkle::leaf_hash(stored));
            seen += 1;
            Ok(if seen == wanted {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        if seen != wanted {
            // The index counted these events, so the segments hold them.
            return Err(Error::InvalidArgument(format!(
                "the log ended after {seen} of the {wanted} events {start}..{end}"
            )));
        }
        Ok(())
    }

    /// The MTH of `start..end` (`start < end`): from the frontier of the
    /// retired prefix for the part below the cut (only whole subtrees of it
    /// are known), from the cached frontiers of sealed segments where the
    /// range is a run of their subtrees, from the segments' frames for the
    /// rest.
    fn range_hash(&self, start: u64, end: u64, view: &LogView) -> Result<Hash> {
        let cut = view.log_start_position;
        if end <= cut {
            return view
                .frontier_at_cut
                .as_ref()
                .and_then(|frontier| run_hash(frontier, start, end))
                .ok_or_else(|| self.needs_retired(start, end, cut));
        }
        if start >= cut {
            // One segment's leaves are read at once, unless the frontier
            // at the end of a sealed segment (cached already: a single
            // leaf, a receipt, never waits for the cache to fill) answers.
            let (first, last) = (view.segment_of(start), view.segment_of(end - 1));
            if first.is_none() || first == last {
                if let Some(hash) = self.cached_run_hash(start, end, view, false)? {
                    return Ok(hash);
                }
                if let Some(archived) = first.filter(|&ordinal| ordinal < view.archived) {
                    return archived_subtree_hash(&view.segments[archived], start, end);
                }
                if let Some(sealed) = first.filter(|&ordinal| ordinal < view.sealed().len()) {
                    let state_ordinal = view.first_ordinal + (sealed - view.archived);
                    let base = view.segments[sealed].base_position;
                    if let Some(tiles) = self.tiles_of(state_ordinal, base) {
                        return self.tiled_hash(start, end, &tiles);
                    }
                }
                return self.kept_subtree_hash(start, end);
            }
            if let Some(hash) = self.cached_run_hash(start, end, view, true)? {
                return Ok(hash);
            }
        }
        // Split as MTH does: the part below the cut falls into the
        // frontier's subtrees, and each part across segments is cached or
        // split again, until the parts lie inside single segments.
        let middle = start + merkle::split_point(end - start);
        let left = self.range_hash(start, middle, view)?;
        let right = self.range_hash(middle, end, view)?;
        Ok(merkle::node_hash(&left, &right))
    }

    /// The tiles the index file of the sealed segment `ordinal` (of the
    /// state, starting at `base_position`) records, if any; copied out
    /// under the state's lock (at most one hash per 256 events).
    fn tiles_of(&self, ordinal: usize, base_position: u64) -> Option<Arc<Tiles>> {
        if let Some((base, tiles)) = &*self.tiles.borrow()
            && *base == base_position
        {
            return tiles.clone();
        }
        let tiles = {
            let state = self.engine.read_state();
            let index = state.index.segments.get(ordinal)?;
            if index.base_position != base_position {
                return None;
            }
            match index.view() {
                Ok(ContentsView::File(file)) => {
                    let (first, bytes) = file.tiles();
                    let (hashes, _) = bytes.as_chunks::<{ merkle::HASH_LEN }>();
                    (!hashes.is_empty()).then(|| {
                        Arc::new(Tiles {
                            first,
                            hashes: hashes.to_vec(),
                        })
                    })
                }
                // In memory (no file), or a file that failed its check:
                // the leaves are read.
                _ => None,
            }
        };
        *self.tiles.borrow_mut() = Some((base_position, tiles.clone()));
        tiles
    }

    /// The MTH of `start..end` (`start < end`, inside one sealed segment)
    /// from its tiles where the range is a run of them, from its leaves for
    /// ranges of at most [`TILE_LEAVES`]: split as MTH splits it.
    fn tiled_hash(&self, start: u64, end: u64, tiles: &Tiles) -> Result<Hash> {
        let len = end - start;
        if len >= TILE_LEAVES && len.is_power_of_two() && start.is_multiple_of(len) {
            let (first, last) = (start / TILE_LEAVES, end / TILE_LEAVES);
            let recorded = tiles.first..tiles.first + tiles.hashes.len() as u64;
            if recorded.start <= first && last <= recorded.end {
                let from = usize::try_from(first - tiles.first).unwrap_or(usize::MAX);
                let to = usize::try_from(last - tiles.first).unwrap_or(usize::MAX);
                return Ok(perfect_root(&tiles.hashes[from..to]));
            }
        }
        if len <= TILE_LEAVES {
            return self.kept_subtree_hash(start, end);
        }
        let middle = start + merkle::split_point(len);
        let left = self.tiled_hash(start, middle, tiles)?;
        let right = self.tiled_hash(middle, end, tiles)?;
        Ok(merkle::node_hash(&left, &right))
    }

    /// The MTH of `start..end` when it is a run of perfect subtrees of the
    /// frontier at the end of the first sealed segment ending at or after
    /// `end` (the only one that can hold it: a later frontier has merged
    /// the subtrees of this size); `None` when it is not, or when that
    /// frontier cannot be computed (a retired prefix without a recorded
    /// tree) or, unless `compute`, is not cached.
    fn cached_run_hash(
        &self,
        start: u64,
        end: u64,
        view: &LogView,
        compute: bool,
    ) -> Result<Option<Hash>> {
        let sealed = view.sealed();
        let ordinal = sealed.partition_point(|span| span.end_position < end);
        if ordinal == sealed.len() {
            return Ok(None);
        }
        let frontier = if compute {
            self.sealed_frontier(ordinal, view)?
        } else {
            self.cached_frontier(&sealed[ordinal])
        };
        Ok(frontier.and_then(|frontier| run_hash(&frontier, start, end)))
    }

    /// The frontier at the end of a sealed segment, if cached.
    fn cached_frontier(&self, span: &SegmentSpan) -> Option<Frontier> {
        let cache = self
            .engine
            .tree_frontiers
            .frontiers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cached_in(&cache, span)
    }

    /// The frontier at the end of sealed segment `ordinal` of `view`, from
    /// the cache, or computed from the nearest cached one before it (or the
    /// tree at the cut, or the empty tree at genesis) and cached with those
    /// in between. `None` when the kept log starts at a cut whose tree the
    /// manifest does not record.
    fn sealed_frontier(&self, ordinal: usize, view: &LogView) -> Result<Option<Frontier>> {
        let sealed = view.sealed();
        let mut cache = self
            .engine
            .tree_frontiers
            .frontiers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let cached = cached_in;
        if let Some(frontier) = cached(&cache, &sealed[ordinal]) {
            return Ok(Some(frontier));
        }
        let mut next = ordinal;
        let mut frontier = loop {
            if next == 0 {
                let start = sealed[0].base_position;
                match (&view.frontier_at_cut, start) {
                    (_, 0) => break Frontier::new(),
                    (Some(at_cut), _) if at_cut.size() == start => break at_cut.clone(),
                    _ => return Ok(None),
                }
            }
            next -= 1;
            if let Some(frontier) = cached(&cache, &sealed[next]) {
                next += 1;
                break frontier;
            }
        };
        // The segments retired since were cached for nothing now: drop them
        // (the bound is one frontier per kept sealed segment).
        cache.retain(|base, _| *base >= view.log_start_position);
        for span in &sealed[next..=ordinal] {
            frontier = segment_frontier(frontier, span)?;
            cache.insert(span.base_position, frontier.clone());
        }
        Ok(Some(frontier))
    }

    /// The tree at the start and at the end of the sealed segment
    /// `ordinal` (of the state) and its tiles, the end computed from its
    /// leaves (one pass) and cached; `None` when the segment is not a kept
    /// sealed one, or the tree at its start is not known. A seal's work.
    ///
    /// # Errors
    /// As [`frontier_after`].
    pub(crate) fn sealed_record(&self, ordinal: usize) -> Result<Option<(TreeRecord, Vec<Hash>)>> {
        let view = self.view();
        let Some(kept) = ordinal.checked_sub(view.first_ordinal) else {
            return Ok(None);
        };
        let Some(span) = view.sealed().get(kept) else {
            return Ok(None);
        };
        let start = match kept.checked_sub(1) {
            Some(previous) => self.sealed_frontier(previous, &view)?,
            None if span.base_position == 0 => Some(Frontier::new()),
            None => view
                .frontier_at_cut
                .clone()
                .filter(|frontier| frontier.size() == span.base_position),
        };
        let Some(start) = start else {
            return Ok(None);
        };
        let mut tiles = Vec::new();
        let end = frontier_after(
            start.clone(),
            &span.segment,
            span.end_offset,
            span.base_position,
            span.end_position,
            Some(&mut tiles),
        )?;
        self.engine
            .tree_frontiers
            .seed(vec![(span.base_position, end.clone())]);
        Ok(Some((TreeRecord::new(start, end), tiles)))
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

/// The MTH of positions `start..end` (`start < end`) of the archived
/// segment `span`: its frames read from its start (it has no index).
///
/// # Errors
/// [`Error::Corrupt`] when a frame does not read.
fn archived_subtree_hash(span: &SegmentSpan, start: u64, end: u64) -> Result<Hash> {
    let mut frontier = Frontier::new();
    let wanted = end - start;
    visit_event_frames(
        [(&*span.segment, span.end_offset)],
        &LogStart::skipping(0, start - span.base_position),
        |_, _, stored| {
            // At most `wanted` pushes: the frontier cannot be full.
            let _ = frontier.push(merkle::leaf_hash(stored));
            Ok(if frontier.size() == wanted {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    if frontier.size() != wanted {
        return Err(Error::InvalidArgument(format!(
            "the archived segment {} holds fewer events than its footer counts",
            span.segment.path.display()
        )));
    }
    Ok(frontier.root())
}

/// The frontier `cache` holds for the sealed segment `span`. A frontier is
/// used only for the segment it was computed for, as it is now: same base
/// position, same end.
fn cached_in(cache: &HashMap<u64, Frontier>, span: &SegmentSpan) -> Option<Frontier> {
    cache
        .get(&span.base_position)
        .filter(|frontier| frontier.size() == span.end_position)
        .cloned()
}

/// `previous` (the tree up to the segment's first position) extended with
/// every leaf of the segment.
///
/// # Errors
/// As [`frontier_after`].
fn segment_frontier(previous: Frontier, span: &SegmentSpan) -> Result<Frontier> {
    frontier_after(
        previous,
        &span.segment,
        span.end_offset,
        span.base_position,
        span.end_position,
        None,
    )
}

/// `previous` (the tree of the positions before `segment`, which starts at
/// `base_position`) extended with every leaf of the segment up to
/// `end_offset`, where position `end_position` would start: one pass over
/// its frames, one SHA-256 of each event's stored bytes.
///
/// # Errors
/// [`Error::Corrupt`] when a frame no longer reads;
/// [`Error::InvalidArgument`] when `previous` does not end at the segment's
/// start, or the segment does not hold the events its index counts.
pub(crate) fn frontier_after(
    previous: Frontier,
    segment: &Segment,
    end_offset: usize,
    base_position: u64,
    end_position: u64,
    mut tiles: Option<&mut Vec<Hash>>,
) -> Result<Frontier> {
    let mut frontier = previous;
    if frontier.size() != base_position {
        return Err(Error::InvalidArgument(format!(
            "the tree before the segment {} (position {base_position}) has {} leaves",
            segment.path.display(),
            frontier.size()
        )));
    }
    let mut full = false;
    visit_event_frames(
        [(segment, end_offset)],
        &LogStart::segment_start(0),
        |_, _, stored| {
            // A node of TILE_HEIGHT formed by this push covers the last
            // TILE_LEAVES leaves: a tile when they are all this segment's.
            let tile_inside = frontier.size() + 1 >= base_position + TILE_LEAVES;
            full = frontier
                .push_reporting(merkle::leaf_hash(stored), |height, hash| {
                    if height == TILE_HEIGHT
                        && tile_inside
                        && let Some(tiles) = tiles.as_deref_mut()
                    {
                        tiles.push(*hash);
                    }
                })
                .is_err();
            Ok(if full {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    if full || frontier.size() != end_position {
        return Err(Error::InvalidArgument(format!(
            "the segment {} (position {base_position}) holds {} events, but its index counts {}",
            segment.path.display(),
            frontier.size().saturating_sub(base_position),
            end_position - base_position
        )));
    }
    Ok(frontier)
}

/// The tree at the end of each sealed segment, followed segment by segment
/// in log order as an open (or a seal) installs their index files: what
/// the tree sections of index files are checked against and written with,
/// and what seeds the [`FrontierCache`] after open.
///
/// The rule for an index file's tree section: it is used when its start
/// frontier is the tree known at the segment's start; a file recording
/// another start, or none while the start is known, does not match its
/// segment (a finding of kind `IndexFile`, rebuilt like any stale index
/// file). When the start is not known (a reader that did not compute the
/// segment before, whose index file was unusable), the section is taken as
/// it is: derived data, bound to its segment by the header, and checked
/// against the leaves by `verify`.
#[derive(Debug, Clone)]
pub(crate) struct TreeChain {
    /// The tree at the end of the segments followed so far, when known.
    running: Option<Frontier>,
    /// The tree at the end of each sealed segment followed, by base position.
    pub learned: Vec<(u64, Frontier)>,
    /// The next segment's record and tiles, computed already (a seal).
    computed: Option<(TreeRecord, Vec<Hash>)>,
}

impl TreeChain {
    /// The chain of a log that starts at genesis.
    pub fn genesis() -> TreeChain {
        TreeChain {
            running: Some(Frontier::new()),
            learned: Vec::new(),
            computed: None,
        }
    }

    /// The chain of a log that starts at a retirement's cut: the tree the
    /// manifest records there, if it does.
    pub fn anchored(anchor: &crate::log::retention::Anchor) -> TreeChain {
        TreeChain {
            running: anchor
                .frontier
                .clone()
                .filter(|frontier| frontier.size() == anchor.position),
            learned: Vec::new(),
            computed: None,
        }
    }

    /// The chain from a segment whose start is `start` (`None`: not known).
    pub fn starting_at(start: Option<Frontier>) -> TreeChain {
        TreeChain {
            running: start,
            learned: Vec::new(),
            computed: None,
        }
    }

    /// The chain of one segment whose record and tiles are computed
    /// already (a seal); `None`: the tree at its start is not known.
    pub fn computed(record: Option<(TreeRecord, Vec<Hash>)>) -> TreeChain {
        TreeChain {
            running: record.as_ref().map(|(r, _)| r.start.clone()),
            learned: Vec::new(),
            computed: record,
        }
    }

    /// Why an index file whose tree section is `found` does not match the
    /// next segment; `None` when it does.
    pub fn mismatch(&self, found: Option<&TreeRecord>) -> Option<String> {
        let expected = self.running.as_ref()?;
        match found {
            None => Some("stale: it records no Merkle tree".to_string()),
            Some(record) if record.start != *expected => Some(
                "stale: its Merkle tree at the segment's start differs from the tree at the end                  of the segment before"
                    .to_string(),
            ),
            Some(_) => None,
        }
    }

    /// The tree section and tiles to write for the next segment, computed
    /// from its leaves (one pass over its frames); `None` when its start is
    /// not known.
    ///
    /// # Errors
    /// As [`frontier_after`].
    pub fn record_for(
        &self,
        segment: &Segment,
        index: &crate::index::SegmentIndex,
    ) -> Result<Option<(TreeRecord, Vec<Hash>)>> {
        let Some(start) = &self.running else {
            return Ok(None);
        };
        if let Some(computed) = self.computed.as_ref().filter(|(r, _)| r.start == *start) {
            return Ok(Some(computed.clone()));
        }
        let mut tiles = Vec::new();
        let end = frontier_after(
            start.clone(),
            segment,
            index.end_offset,
            index.base_position,
            index.end_position(),
            Some(&mut tiles),
        )?;
        Ok(Some((TreeRecord::new(start.clone(), end), tiles)))
    }

    /// Follows the segment starting at `base_position`, whose index file
    /// (when one is used) records `record`.
    pub fn followed(&mut self, base_position: u64, record: Option<&TreeRecord>) {
        self.running = match record {
            Some(record) if self.running.as_ref().is_none_or(|r| *r == record.start) => {
                Some(record.end.clone())
            }
            _ => None,
        };
        if let Some(end) = &self.running {
            self.learned.push((base_position, end.clone()));
        }
    }
}

impl FrontierCache {
    /// Seeds the cache with the tree at the end of sealed segments, by
    /// base position (what an open learned from index files).
    pub(crate) fn seed(&self, learned: Vec<(u64, Frontier)>) {
        let mut cache = self.frontiers.lock().unwrap_or_else(|p| p.into_inner());
        cache.extend(learned);
    }
}

/// The root of a perfect tree whose leaves (a power of two many, at
/// least one) are the subtree roots `roots`, in order.
fn perfect_root(roots: &[Hash]) -> Hash {
    assert!(
        roots.len().is_power_of_two(),
        "a perfect subtree has a power of two of tiles"
    );
    let mut level = roots.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| merkle::node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

/// The MTH of `start..end` from a frontier: known when `start` and `end`
/// are boundaries of its perfect subtrees (a run of whole subtrees),
/// unknown inside one.
fn run_hash(frontier: &Frontier, start: u64, end: u64) -> Option<Hash> {
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
        self.range_hash(start, end, &self.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_ranges_are_whole_runs_of_its_subtrees() {
        let leaves: Vec<Hash> = (0u8..13).map(|i| merkle::leaf_hash(&[i])).collect();
        let frontier = Frontier::from_source(13, leaves.as_slice()).unwrap();
        // 13 = 8 + 4 + 1.
        for (start, end) in [(0, 8), (8, 12), (12, 13), (0, 12), (8, 13), (0, 13)] {
            assert_eq!(
                run_hash(&frontier, start, end),
                Some(leaves.as_slice().subtree_hash(start, end).unwrap()),
                "{start}..{end}"
            );
        }
        for (start, end) in [(0, 4), (4, 8), (9, 10), (8, 10), (1, 13), (0, 11)] {
            assert_eq!(run_hash(&frontier, start, end), None, "{start}..{end}");
        }
    }
}
