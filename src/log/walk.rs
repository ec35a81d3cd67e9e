//! The one walk over a store directory: segments in log order, each header
//! checked against its name and the segment before, each segment scanned by
//! [`super::scan::scan_segment`] in its role. Writable open, read-only open,
//! the follower, `verify` and `repair` all walk with it.
//!
//! Race-free beside a live writer: a writer seals a segment (data, then
//! footer) before it creates the next one (temporary name, rename), so the
//! walk reads a segment's footer before its data, and takes a segment that
//! seems to be followed by none, or by a later one, as the newest only
//! after looking again. A listing (`readdir`) is not atomic: a segment the
//! listing missed, or one created after it, is found by its name, which the
//! position where the log before it ends gives.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_LEN;
use crate::format::chain::GENESIS;
use crate::format::durable_mark::{DURABLE_MARK_SLOTS, DurableMark, MarkSlot};
use crate::format::footer::{FooterState, SegmentFooter};
use crate::format::{self};
use crate::hooks::Hooks;

use super::archived::ArchivedSegments;
use super::directory::{self, DirListing};
use super::finding::FindingKind;
use super::retention;
use super::scan::{Cursor, Flow, ScanEnd, Tally, Visitor, report, scan_segment};
use super::segment::Segment;
use super::verdict::SegmentRole;

/// A walk of the log, kept by a follower between refreshes.
pub(crate) struct LogWalk {
    dir: PathBuf,
    /// Role given to the newest segment while it is unsealed.
    newest_role: SegmentRole,
    /// Passed to every segment opened (fault injection in tests).
    hooks: Hooks,
    /// The segments walked so far, oldest first.
    pub segments: Vec<Arc<Segment>>,
    /// Whether the newest walked segment was sealed (its footer checked).
    newest_sealed: bool,
    /// What the next batch must continue.
    pub cursor: Cursor,
    /// Totals of the newest segment, so far.
    tally: Option<Tally>,
    /// Where the segments retired from the store are kept: a walk from
    /// scratch reads those before the cut from there, from genesis.
    archive: Option<Arc<dyn ArchivedSegments>>,
    /// Segments before this position are read from `archive`.
    archived_before: u64,
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkEnd {
    /// Every segment was judged.
    Done,
    /// A visitor stopped the walk at a refused finding.
    Stopped,
}

impl LogWalk {
    /// A walk of the store in `dir` that has not started. `newest_role` is
    /// [`SegmentRole::Newest`] for a store at rest, [`SegmentRole::Live`]
    /// for one a writer in another process may be appending to.
    pub fn new(dir: &Path, newest_role: SegmentRole, hooks: &Hooks) -> LogWalk {
        LogWalk {
            dir: dir.to_path_buf(),
            newest_role,
            hooks: hooks.clone(),
            segments: Vec::new(),
            newest_sealed: false,
            cursor: Cursor::start(0, GENESIS),
            tally: None,
            archive: None,
            archived_before: 0,
        }
    }

    /// The same walk, reading the segments retired from the store from
    /// `archive` (`verify --archive`): the whole history from genesis.
    pub fn with_archive(mut self, archive: Arc<dyn ArchivedSegments>) -> LogWalk {
        self.archive = Some(archive);
        self
    }

    /// Walks every segment of the archive alone (none of the directory),
    /// in log order, from genesis. An archive holds sealed segments only:
    /// each is judged as a sealed segment, the last one too.
    ///
    /// # Errors
    /// When the archive cannot be listed.
    #[cfg_attr(not(feature = "object-storage"), allow(dead_code))]
    pub fn walk_archive(&mut self, visitor: &mut dyn Visitor) -> Result<WalkEnd> {
        let archive = Arc::clone(
            self.archive
                .as_ref()
                .expect("walk_archive needs a walk with an archive"),
        );
        self.archived_before = u64::MAX;
        for (base, path) in archive.list()? {
            if self.walk_segment(base, &path, false, visitor)? == WalkEnd::Stopped {
                return Ok(WalkEnd::Stopped);
            }
        }
        Ok(WalkEnd::Done)
    }

    /// The store directory walked.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the newest segment walked is sealed.
    pub fn newest_sealed(&self) -> bool {
        self.newest_sealed
    }

    /// Walks every segment of the directory, in log order.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn walk_all(&mut self, visitor: &mut dyn Visitor) -> Result<WalkEnd> {
        self.walk_listing(0, visitor)
    }

    /// A walk that continues from a checkpoint: `segments` (oldest first)
    /// were covered by it, all sealed but perhaps the last, which was
    /// covered up to `last_tally.end` (`Some` when it is to be continued);
    /// `cursor` is where the covered log ends. [`LogWalk::walk_rest`] goes on.
    pub fn resume(
        dir: &Path,
        newest_role: SegmentRole,
        hooks: &Hooks,
        segments: Vec<Arc<Segment>>,
        cursor: Cursor,
        last_tally: Option<Tally>,
    ) -> LogWalk {
        LogWalk {
            dir: dir.to_path_buf(),
            newest_role,
            hooks: hooks.clone(),
            newest_sealed: last_tally.is_none(),
            segments,
            cursor,
            tally: last_tally,
            archive: None,
            archived_before: 0,
        }
    }

    /// Walks what follows the covered segments of a [`LogWalk::resume`]:
    /// the rest of the last one if it was covered in part, then every
    /// segment after them, exactly as [`LogWalk::walk_all`] would. The
    /// caller checked that the listing starts with the covered segments.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn walk_rest(&mut self, visitor: &mut dyn Visitor) -> Result<WalkEnd> {
        self.walk_listing(self.segments.len(), visitor)
    }

    /// Walks the listed segments after the first `covered`, continuing the
    /// last covered one first if it was covered in part.
    fn walk_listing(&mut self, covered: usize, visitor: &mut dyn Visitor) -> Result<WalkEnd> {
        let DirListing {
            segments,
            temp_files,
        } = directory::list_segments(&self.dir)?;
        // Beside a live writer, a temporary file is a segment being created.
        let directory_role = match self.newest_role {
            SegmentRole::Live => SegmentRole::Live,
            _ => SegmentRole::Directory,
        };
        for temp in temp_files {
            report(
                visitor,
                directory_role,
                &temp,
                0,
                None,
                FindingKind::TemporaryFile,
            );
        }
        let mut segments = segments;
        if covered == 0 && self.segments.is_empty() {
            match self.start(segments, directory_role, visitor)? {
                Some(kept) => segments = kept,
                None => return Ok(WalkEnd::Stopped),
            }
        } else if let Some(anchor) = self.cursor.anchor.clone() {
            // A resumed walk (a checkpoint's, a follower's) started at the
            // cut already: what lies before it is judged, not walked.
            let (before, kept) = split_at_cut(segments, &anchor);
            if report_before_cut(&before, &anchor, directory_role, visitor) == Flow::Stop {
                return Ok(WalkEnd::Stopped);
            }
            segments = kept;
        }
        // What follows the covered segments, by position rather than by
        // count: a retirement since they were listed may have removed some.
        let covered_up_to = self.segments[..covered]
            .last()
            .map(|segment| segment.header.base_position);
        let mut queue: VecDeque<(u64, PathBuf)> = segments
            .into_iter()
            .filter(|(base, _)| covered_up_to.is_none_or(|last| *base > last))
            .collect();
        if !self.newest_sealed
            && let Some(segment) = self.segments.last().cloned()
        {
            let newest = queue.is_empty();
            let tally = self
                .tally
                .take()
                .expect("a segment covered in part has a tally");
            if self.scan_walked(segment, newest, tally, false, visitor) == WalkEnd::Stopped {
                return Ok(WalkEnd::Stopped);
            }
            if queue.is_empty()
                && self.newest_sealed
                && let Some(next) = self.next_by_name()
            {
                queue.push_back(next);
            }
        }
        while let Some((base, path)) = queue.pop_front() {
            let (base, path) = self.missed_by_listing(base, path, &mut queue);
            let newest = queue.is_empty();
            if self.walk_segment(base, &path, newest, visitor)? == WalkEnd::Stopped {
                return Ok(WalkEnd::Stopped);
            }
            if queue.is_empty()
                && self.newest_sealed
                && let Some(next) = self.next_by_name()
            {
                // Created after the listing (a live writer rolled).
                queue.push_back(next);
            }
        }
        Ok(WalkEnd::Done)
    }

    /// Where a walk from scratch starts: at position 0 and the genesis
    /// chain value, or at the cut the retention manifest records (then the
    /// visitor hears of it first). Returns the listed segments from the
    /// start on (`None` when the visitor stopped the walk); those before it
    /// are reported as retired segments.
    ///
    /// # Errors
    /// The manifest's: [`Error::Corrupt`] when it is damaged.
    fn start(
        &mut self,
        segments: Vec<(u64, PathBuf)>,
        directory_role: SegmentRole,
        visitor: &mut dyn Visitor,
    ) -> Result<Option<Vec<(u64, PathBuf)>>> {
        let Some(anchor) = retention::read_anchor(&self.dir)? else {
            return Ok(Some(segments));
        };
        let from_archive = self.archive.is_some();
        visitor.anchored(&anchor, from_archive);
        if !from_archive {
            self.cursor = Cursor::anchored(Arc::clone(&anchor));
        }
        let (before, mut kept) = split_at_cut(segments, &anchor);
        if report_before_cut(&before, &anchor, directory_role, visitor) == Flow::Stop {
            return Ok(None);
        }
        if let Some(archive) = &self.archive {
            // From genesis: the archived segments before the cut first.
            let archived = archive.list()?;
            self.archived_before = anchor.position;
            let (mut history, _) = split_at_cut(archived, &anchor);
            history.append(&mut kept);
            kept = history;
        }
        Ok(Some(kept))
    }

    /// Picks up what a live writer appended since the last call: new
    /// batches of the newest segment, then the segments after it once it is
    /// sealed.
    ///
    /// # Errors
    /// [`Error::Io`] when a new segment file cannot be read.
    pub fn refresh(&mut self, visitor: &mut dyn Visitor) -> Result<WalkEnd> {
        loop {
            if self.segments.is_empty() {
                // Nothing walked yet: a store whose first segment is still
                // being created.
                return self.walk_all(visitor);
            }
            if !self.newest_sealed {
                let segment = Arc::clone(self.segments.last().expect("not empty"));
                let (footer, role) = self.footer_and_role(&segment, true);
                let mut tally = self.tally.take().expect("an unsealed newest has a tally");
                let end = scan_segment(
                    &segment,
                    role,
                    footer.as_ref(),
                    segment.durable_mark(),
                    &mut self.cursor,
                    &mut tally,
                    visitor,
                );
                self.tally = Some(tally);
                if end == ScanEnd::Stopped {
                    return Ok(WalkEnd::Stopped);
                }
                if role != SegmentRole::Sealed {
                    return Ok(WalkEnd::Done);
                }
                self.newest_sealed = true;
            }
            let Some((base, path)) = self.next_by_name() else {
                return Ok(WalkEnd::Done);
            };
            if self.walk_segment(base, &path, true, visitor)? == WalkEnd::Stopped {
                return Ok(WalkEnd::Stopped);
            }
        }
    }

    /// The name the next segment would have, if that file exists.
    fn next_by_name(&self) -> Option<(u64, PathBuf)> {
        let base = self.cursor.next_position?;
        let path = self.dir.join(format::segment_file_name(base));
        // `symlink_metadata`: anything with the name counts, even a FIFO,
        // which opening then refuses.
        path.symlink_metadata().is_ok().then_some((base, path))
    }

    /// When the listing skips the segment the log continues with, but that
    /// file exists (created while the directory was being read), walks it
    /// first.
    fn missed_by_listing(
        &self,
        base: u64,
        path: PathBuf,
        queue: &mut VecDeque<(u64, PathBuf)>,
    ) -> (u64, PathBuf) {
        if !self.segments.is_empty()
            && self.cursor.next_position.is_some_and(|next| next < base)
            && let Some(missed) = self.next_by_name()
        {
            queue.push_front((base, path));
            return missed;
        }
        (base, path)
    }

    /// The footer as read now (before the data, so that a footer seen
    /// sealed vouches for all data), and the role that gives the segment.
    fn footer_and_role(
        &self,
        segment: &Segment,
        newest: bool,
    ) -> (Option<SegmentFooter>, SegmentRole) {
        let state = read_footer(segment);
        match state {
            FooterState::Sealed(footer) => (Some(footer), SegmentRole::Sealed),
            _ if newest => (None, self.newest_role),
            _ => (None, SegmentRole::Sealed),
        }
    }

    /// Opens, checks and scans one segment.
    fn walk_segment(
        &mut self,
        base: u64,
        path: &Path,
        newest: bool,
        visitor: &mut dyn Visitor,
    ) -> Result<WalkEnd> {
        let opened = match &self.archive {
            Some(archive) if base < self.archived_before => archive.open(base, path),
            _ => Segment::open(path, false, &self.hooks),
        };
        let segment = match opened {
            Ok(segment) => Arc::new(segment),
            Err(error) => {
                let (offset, kind) = match error {
                    Error::Corrupt(finding) => (finding.offset as usize, finding.kind),
                    other => (
                        0,
                        FindingKind::Unreadable {
                            error: other.to_string(),
                        },
                    ),
                };
                let position = self.cursor.next_position;
                if report(visitor, SegmentRole::Sealed, path, offset, position, kind).1
                    == Flow::Stop
                {
                    return Ok(WalkEnd::Stopped);
                }
                // Going on: nothing links across an unreadable segment; the
                // next header's chain_start is taken as it is.
                self.cursor.gap();
                self.cursor.chain = None;
                self.newest_sealed = true;
                return Ok(WalkEnd::Done);
            }
        };
        if self.check_header(&segment, base, visitor) == Flow::Stop {
            return Ok(WalkEnd::Stopped);
        }
        let tally = Tally::new(segment.header.salt);
        Ok(self.scan_walked(segment, newest, tally, true, visitor))
    }

    /// Scans `segment` (its header checked) from `tally.end` on, in the
    /// role it has now, and the checks after its batches: its footer and
    /// durable mark. A new segment (`announce`) is handed to the visitor
    /// and added to the walk's segments first.
    fn scan_walked(
        &mut self,
        segment: Arc<Segment>,
        newest: bool,
        mut tally: Tally,
        announce: bool,
        visitor: &mut dyn Visitor,
    ) -> WalkEnd {
        // A segment followed by another was sealed before the next was
        // created, so before the listing or the look-up that found the next.
        let (footer, role) = self.footer_and_role(&segment, newest);
        if role != SegmentRole::Sealed
            && let FooterState::Invalid(why) = read_footer(&segment)
        {
            let flow = report(
                visitor,
                role,
                &segment.path,
                segment.data_end(),
                None,
                FindingKind::TornFooter {
                    detail: why.to_string(),
                },
            )
            .1;
            if flow == Flow::Stop {
                return WalkEnd::Stopped;
            }
        }
        if announce {
            visitor.segment(self.segments.len(), &segment, role);
        }
        // The mark before the data: a mark never claims more than the data
        // published before it.
        let mark = segment.durable_mark();
        let mut end = scan_segment(
            &segment,
            role,
            footer.as_ref(),
            mark,
            &mut self.cursor,
            &mut tally,
            visitor,
        );
        // Checked after the batches, so that a visitor knows where the
        // last good batch of the segment ends.
        if end == ScanEnd::Done && footer.is_none() && role == SegmentRole::Sealed {
            let detail = match read_footer(&segment) {
                FooterState::Invalid(why) => why.to_string(),
                _ => "the footer area is zero".to_string(),
            };
            let flow = report(
                visitor,
                SegmentRole::Sealed,
                &segment.path,
                segment.data_end(),
                None,
                FindingKind::MissingFooter { detail },
            )
            .1;
            if flow == Flow::Stop {
                end = ScanEnd::Stopped;
            }
        }
        if end == ScanEnd::Done && check_durable_mark(&segment, role, visitor) == Flow::Stop {
            end = ScanEnd::Stopped;
        }
        if announce {
            self.segments.push(segment);
        }
        self.newest_sealed = role == SegmentRole::Sealed;
        self.tally = Some(tally);
        match end {
            ScanEnd::Done => WalkEnd::Done,
            ScanEnd::Stopped => WalkEnd::Stopped,
        }
    }

    /// Checks a segment's header against its file name and the log before
    /// it; carries on from the header's claims where they differ.
    fn check_header(&mut self, segment: &Segment, base: u64, visitor: &mut dyn Visitor) -> Flow {
        let header = &segment.header;
        let found = header.base_position;
        let path = &segment.path;
        let mut findings = Vec::new();
        if found != base {
            findings.push((
                16,
                FindingKind::Misnamed {
                    name_position: base,
                    header_position: found,
                },
            ));
        }
        match self.cursor.next_position {
            Some(expected) if expected < found => findings.push((
                16,
                FindingKind::MissingSegment {
                    expected_position: expected,
                    found_position: found,
                },
            )),
            Some(expected) if expected > found => findings.push((
                16,
                FindingKind::OverlappingSegment {
                    expected_position: expected,
                    found_position: found,
                },
            )),
            _ => {}
        }
        if self
            .cursor
            .chain
            .is_some_and(|chain| chain != header.chain_start)
        {
            findings.push((48, FindingKind::ChainLinkBroken));
        }
        for (offset, kind) in findings {
            if report(
                visitor,
                SegmentRole::Sealed,
                path,
                offset,
                Some(found),
                kind,
            )
            .1 == Flow::Stop
            {
                return Flow::Stop;
            }
        }
        if self.cursor.next_position != Some(found) {
            self.cursor.gap();
            self.cursor.next_position = Some(found);
        }
        if self.cursor.chain.is_none() {
            // Nothing to link to (after an unreadable segment): carry on
            // from the header's claim.
            self.cursor.resume_chain(header.chain_start);
        }
        Flow::Continue
    }
}

/// Segment files with their base positions, in position order.
type Listed = Vec<(u64, PathBuf)>;

/// The listed segments before the cut `anchor` records, and the others.
fn split_at_cut(segments: Listed, anchor: &retention::Anchor) -> (Listed, Listed) {
    segments
        .into_iter()
        .partition(|(base, _)| *base < anchor.position)
}

/// Reports each segment file before the cut: the leftover of a retirement
/// the manifest records (its name and length), or a file nothing accounts for.
fn report_before_cut(
    before: &[(u64, PathBuf)],
    anchor: &retention::Anchor,
    role: SegmentRole,
    visitor: &mut dyn Visitor,
) -> Flow {
    for (_, path) in before {
        let Ok(metadata) = path.symlink_metadata() else {
            // Gone since the listing: a retirement is removing it now.
            continue;
        };
        let recorded = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| anchor.retired_segment(name))
            .is_some_and(|retired| metadata.is_file() && metadata.len() == retired.file_len);
        let kind = FindingKind::RetiredSegment {
            recorded,
            log_start: anchor.position,
        };
        if report(visitor, role, path, 0, None, kind).1 == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// Checks the slots of a segment's durable mark: a crash can tear only the
/// slot being written, and never in a sealed segment (sealing syncs all).
fn check_durable_mark(segment: &Segment, role: SegmentRole, visitor: &mut dyn Visitor) -> Flow {
    match durable_mark_problem(segment, role) {
        None => Flow::Continue,
        Some((at, kind)) => report(visitor, role, &segment.path, at, None, kind).1,
    }
}

/// What is wrong with the slots of a segment's durable mark in `role`, and
/// where; `None` when nothing is.
pub(crate) fn durable_mark_problem(
    segment: &Segment,
    role: SegmentRole,
) -> Option<(usize, FindingKind)> {
    let slots = DurableMark::slots(segment.bytes(SEGMENT_HEADER_LEN), segment.header.salt);
    let invalid = slots.iter().filter(|s| **s == MarkSlot::Invalid).count();
    if invalid == 0 {
        return None;
    }
    let at = DURABLE_MARK_SLOTS[slots
        .iter()
        .position(|s| *s == MarkSlot::Invalid)
        .unwrap_or(0)];
    let kind = if invalid == 1 && role != SegmentRole::Sealed {
        FindingKind::TornDurableMark
    } else {
        FindingKind::DamagedDurableMark
    };
    Some((at, kind))
}

/// The footer state of a segment, with acquire ordering: a footer seen
/// sealed means every data byte before it is visible and final.
fn read_footer(segment: &Segment) -> FooterState {
    let state = match segment.footer_bytes() {
        Some(bytes) => SegmentFooter::decode(bytes),
        None => FooterState::Unsealed,
    };
    fence(Ordering::Acquire);
    state
}
