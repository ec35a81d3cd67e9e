//! Repair: cutting a damaged log back to its longest prefix that every
//! opener accepts, as an explicit action that says exactly what it cuts.
//!
//! The plan comes from the same walk, checks and decision table as every
//! open: the first finding the table refuses is the cut point. The log is
//! kept up to the end of the last complete batch before it; everything
//! after goes:
//!
//! - damage in a segment's header, or a segment that does not follow the
//!   one before (a missing, misnamed or replaced segment): that segment file
//!   and every later one are removed;
//! - damage inside a segment's data or footer: the segment is zeroed from
//!   the end of its last good batch to its end (footer included), its
//!   durable mark cleared, and it is made writable again: it becomes the
//!   newest segment, which the next writer continues; every later segment
//!   file is removed;
//! - snapshots of a stream at a version past what the cut keeps are removed
//!   (they describe events that are gone);
//! - but damage to a sealed segment's footer, free space or durable mark
//!   that loses no batch, where the chain recomputed over its batches holds
//!   and the next segment links to them, is mended in place
//!   ([`RewriteFooter`]): nothing is cut, every later segment is kept.
//!
//! Nothing is deleted: every file removed or changed is first copied into a
//! backup directory the caller names. Files are moved newest first, so a
//! crash during [`Repair::apply`] leaves a shorter log, never one with a
//! gap; running the repair again finishes it. What a writer's open fixes by
//! itself (a torn tail, a torn footer, stray temporary files) is not damage:
//! the plan only lists it in [`RepairPlan::notes`].
//!
//! ```
//! use annals::{EventData, ExpectedVersion, Options, Repair, Store};
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::default())?;
//! store.append("s", ExpectedVersion::NoStream, &[EventData::new("E", vec![1])])?;
//! store.close()?;
//! let repair = Repair::lock(dir.path())?; // no writer may run meanwhile
//! let plan = repair.plan()?;
//! assert!(plan.cut.is_none(), "nothing to cut in a healthy store");
//! assert_eq!(plan.kept_events, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::body;
use crate::format::chain;
use crate::format::durable_mark::DURABLE_MARK_RANGE;
use crate::format::footer::{self, SegmentFooter};
use crate::format::frame::{self, FrameKind, FrameRead};
use crate::format::header::SegmentHeader;
use crate::format::scan::stream_ends;
use crate::format::snapshot::{MAX_SNAPSHOT_BODY_LEN, SNAPSHOT_HEADER_LEN, decode_snapshot};
use crate::format::{self as codec, CHAIN_LEN, FOOTER_LEN, FRAME_ALIGN, SEGMENT_HEADER_LEN};
use crate::log::directory::{self, DirListing};
use crate::log::finding::{Finding, FindingKind};
use crate::log::scan::{BatchSeen, Flow, Visitor};
use crate::log::segment::{self, Segment};
use crate::log::verdict::{SegmentRole, Verdict};
use crate::log::walk::LogWalk;
use crate::snapshot::SNAPSHOT_DIR_NAME;

/// A store locked for repair: no writer can open it until this is dropped.
#[derive(Debug)]
pub struct Repair {
    dir: PathBuf,
    _lock: crate::log::directory::WriterLock,
}

/// What a repair would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPlan {
    /// The store directory.
    pub dir: PathBuf,
    /// The first damage, where the cut is; `None` when there is none.
    pub damage: Option<Finding>,
    /// What the cut does; `None` when there is nothing to cut.
    pub cut: Option<Cut>,
    /// Where the log keeps events up to: positions
    /// `first_position..kept_events` (the name is older than retention).
    pub kept_events: u64,
    /// Position of the log's first event: 0, or where the retention
    /// manifest says once segments were retired.
    pub first_position: u64,
    /// Segment files the log keeps, whole or in part.
    pub kept_segments: usize,
    /// The segment size of the newest kept segment, for the writer that
    /// continues the log after the cut.
    pub kept_segment_size_bytes: Option<u64>,
    /// Snapshots that describe events the cut removes.
    pub stale_snapshots: Vec<StaleSnapshot>,
    /// Events that still decode in what the cut removes.
    pub lost: LostEvents,
    /// What a writer's open repairs by itself (not damage).
    pub notes: Vec<Finding>,
}

/// What the repair does to the files: a cut, or a footer rebuilt in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Damage to a sealed segment's footer, free space or durable mark,
    /// with every batch intact and the chain linking across: the footer is
    /// rebuilt from the batches and nothing is cut (then `zero` is `None`
    /// and `removed` empty).
    pub rewrite_footer: Option<RewriteFooter>,
    /// The damaged segment, zeroed from an offset on; `None` when whole
    /// files are removed from the damaged one on.
    pub zero: Option<ZeroFrom>,
    /// Segment files removed (moved into the backup), oldest first, with
    /// their lengths.
    pub removed: Vec<(PathBuf, u64)>,
}

/// A sealed segment's footer rebuilt from its batches: the bytes after its
/// data zeroed, its durable mark cleared, the footer written from what the
/// batches show, and the file synced and made read-only again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteFooter {
    /// The segment file.
    pub path: PathBuf,
    /// Its salt (for the contents checksum).
    pub salt: u64,
    /// Where its batches end.
    pub data_end: u64,
    /// Events in it.
    pub event_count: u64,
    /// Batches in it, sync markers included.
    pub batch_count: u64,
    /// Position of its last event.
    pub last_position: u64,
    /// The stored chain value after its last batch.
    pub chain_end: [u8; CHAIN_LEN],
}

/// A segment zeroed from `offset` to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroFrom {
    /// The segment file.
    pub path: PathBuf,
    /// Where the zeroes start: the end of its last batch kept.
    pub offset: u64,
    /// The file's length: where they end.
    pub len: u64,
}

/// A snapshot at a version the cut does not keep.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaleSnapshot {
    /// The snapshot file.
    pub path: PathBuf,
    /// Its stream.
    pub stream: String,
    /// Its version.
    pub version: u64,
    /// The version the stream keeps.
    pub kept_version: u64,
}

/// Events that still decode in the bytes a cut removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LostEvents {
    /// How many.
    pub events: u64,
    /// The lowest position among them.
    pub first_position: Option<u64>,
    /// The highest position among them.
    pub last_position: Option<u64>,
    /// Per stream: the version it keeps and the highest version lost.
    pub streams: BTreeMap<String, (u64, u64)>,
    /// Segment files whose header is unreadable: their events are not counted.
    pub uncounted_files: Vec<PathBuf>,
}

impl Repair {
    /// Takes the store's writer lock, so that no writer changes the files
    /// while the repair looks at them and cuts.
    ///
    /// # Errors
    /// [`Error::Locked`] when a writer holds the store; [`Error::Io`] when
    /// `dir` is not a readable directory; [`Error::InvalidArgument`] when
    /// it holds neither a segment file nor the lock file (it is not a
    /// store: repair creates nothing there).
    pub fn lock(dir: impl AsRef<Path>) -> Result<Repair> {
        let dir = dir.as_ref();
        directory::check_store_dir(dir)?;
        let listing = directory::list_segments(dir)?;
        if listing.segments.is_empty() && !dir.join(directory::LOCK_FILE_NAME).exists() {
            return Err(Error::InvalidArgument(format!(
                "{} holds no segment file and no {}: it is not an annals store",
                dir.display(),
                directory::LOCK_FILE_NAME
            )));
        }
        Ok(Repair {
            dir: dir.to_path_buf(),
            _lock: directory::lock(dir)?,
        })
    }

    /// Walks the log as every open does and plans the cut at the first
    /// damage. Changes nothing.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory or a file cannot be read.
    pub fn plan(&self) -> Result<RepairPlan> {
        let dir = &self.dir;
        let mut finder = CutFinder::default();
        let mut walk = LogWalk::new(dir, SegmentRole::Newest, &Default::default());
        walk.walk_all(&mut finder)?;
        let kept_events = walk.cursor.next_position.unwrap_or(0);
        let first_position = walk.cursor.anchor.as_ref().map_or(0, |a| a.position);
        let CutFinder {
            versions,
            last_end,
            damage,
            notes,
            segment_sizes,
            segment,
        } = finder;
        let Some(damage) = damage else {
            return Ok(RepairPlan {
                dir: dir.clone(),
                damage: None,
                cut: None,
                kept_events,
                first_position,
                kept_segments: walk.segments.len(),
                kept_segment_size_bytes: segment_sizes.last().copied(),
                stale_snapshots: Vec::new(),
                lost: LostEvents::default(),
                notes,
            });
        };
        let DirListing { segments, .. } = directory::list_segments(dir)?;
        let files: Vec<PathBuf> = segments.into_iter().map(|(_, path)| path).collect();
        // The damaged file, and whether part of it is kept.
        let damaged = files
            .iter()
            .position(|path| *path == damage.path)
            .unwrap_or(files.len());
        let next = files.get(damaged + 1).map(PathBuf::as_path);
        if let Some(rewrite) = in_place(&damage, segment.as_ref(), last_end, next) {
            return Ok(RepairPlan {
                dir: dir.clone(),
                damage: Some(damage),
                cut: Some(Cut {
                    rewrite_footer: Some(rewrite),
                    zero: None,
                    removed: Vec::new(),
                }),
                kept_events: walk_end_of_log(dir)?,
                first_position,
                kept_segments: files.len(),
                kept_segment_size_bytes: segment_sizes.last().copied(),
                stale_snapshots: Vec::new(),
                lost: LostEvents::default(),
                notes,
            });
        }
        let zero = match cut_within(&damage.kind) {
            true if damaged < files.len() => {
                let path = files[damaged].clone();
                let len = fs::symlink_metadata(&path)
                    .map_err(|e| Error::io("reading the size of", &path, e))?
                    .len();
                Some(ZeroFrom {
                    offset: last_end.unwrap_or(SEGMENT_HEADER_LEN) as u64,
                    path,
                    len,
                })
            }
            _ => None,
        };
        let first_removed = damaged + usize::from(zero.is_some());
        let mut removed = Vec::new();
        for path in files.iter().skip(first_removed) {
            let len = fs::symlink_metadata(path).map_or(0, |m| m.len());
            removed.push((path.clone(), len));
        }
        let lost = count_lost(zero.as_ref(), &removed, &versions);
        let kept_segment_size_bytes = match &zero {
            Some(_) => segment_sizes.get(damaged).copied(),
            None => damaged
                .checked_sub(1)
                .and_then(|i| segment_sizes.get(i).copied()),
        };
        Ok(RepairPlan {
            dir: dir.clone(),
            stale_snapshots: stale_snapshots(dir, &versions)?,
            kept_events,
            first_position,
            kept_segments: first_removed,
            kept_segment_size_bytes,
            lost,
            notes,
            cut: Some(Cut {
                rewrite_footer: None,
                zero,
                removed,
            }),
            damage: Some(damage),
        })
    }

    /// Carries out `plan` (which must come from [`Repair::plan`] on this
    /// locked store): copies every file it removes or changes into
    /// `backup`, a new directory, then cuts. Returns once every change is
    /// durable.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `plan` is for another store or
    /// `backup` exists; [`Error::Io`] / [`Error::NoSpace`] when a file
    /// cannot be copied, moved or changed (a rerun of the repair finishes
    /// the job).
    pub fn apply(&self, plan: &RepairPlan, backup: &Path) -> Result<()> {
        if plan.dir != self.dir {
            return Err(Error::InvalidArgument(format!(
                "the repair plan is for {}, not {}",
                plan.dir.display(),
                self.dir.display()
            )));
        }
        let Some(cut) = &plan.cut else {
            return Ok(());
        };
        fs::create_dir(backup).map_err(|e| Error::io("creating repair backup", backup, e))?;
        if let Some(zero) = &cut.zero {
            let copy = backup.join(file_name(&zero.path));
            fs::copy(&zero.path, &copy).map_err(|e| Error::io("backing up", &copy, e))?;
            sync_file(&copy)?;
        }
        directory::sync_dir(backup)?;
        // Newest first: a crash in between leaves a shorter log, never a gap.
        for (path, _) in cut.removed.iter().rev() {
            let target = backup.join(file_name(path));
            fs::rename(path, &target).map_err(|e| Error::io("moving to backup", &target, e))?;
            directory::sync_dir(backup)?;
            directory::sync_dir(&self.dir)?;
        }
        if !plan.stale_snapshots.is_empty() {
            let snapshot_backup = backup.join(SNAPSHOT_DIR_NAME);
            fs::create_dir(&snapshot_backup)
                .map_err(|e| Error::io("creating repair backup", &snapshot_backup, e))?;
            for stale in &plan.stale_snapshots {
                let target = snapshot_backup.join(file_name(&stale.path));
                fs::rename(&stale.path, &target)
                    .map_err(|e| Error::io("moving to backup", &target, e))?;
            }
            directory::sync_dir(&snapshot_backup)?;
            directory::sync_dir(&self.dir.join(SNAPSHOT_DIR_NAME))?;
        }
        if let Some(zero) = &cut.zero {
            zero_from(zero)?;
        }
        if let Some(rewrite) = &cut.rewrite_footer {
            let copy = backup.join(file_name(&rewrite.path));
            fs::copy(&rewrite.path, &copy).map_err(|e| Error::io("backing up", &copy, e))?;
            sync_file(&copy)?;
            directory::sync_dir(backup)?;
            rewrite_footer(rewrite)?;
        }
        directory::sync_dir(&self.dir)
    }
}

/// Whether damage of this kind lies inside a segment whose header is
/// intact, so that the segment is kept up to its last good batch.
fn cut_within(kind: &FindingKind) -> bool {
    use FindingKind as K;
    !matches!(
        kind,
        K::NotARegularFile
            | K::Unreadable { .. }
            | K::InvalidHeader { .. }
            | K::WrongFileSize { .. }
            | K::Misnamed { .. }
            | K::MissingSegment { .. }
            | K::OverlappingSegment { .. }
            | K::ChainLinkBroken
    )
}

/// Finds the first refused finding, remembering where the last good batch
/// of its segment ended and every stream's version before it.
#[derive(Default)]
struct CutFinder {
    versions: HashMap<String, u64>,
    /// End of the last batch of the segment being walked.
    last_end: Option<usize>,
    /// The segment being walked, as its batches show it: for a footer
    /// rebuilt in place.
    segment: Option<SegmentSeen>,
    damage: Option<Finding>,
    notes: Vec<Finding>,
    /// Segment size of each segment walked.
    segment_sizes: Vec<u64>,
}

impl Visitor for CutFinder {
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)> {
        self.versions.get(stream).map(|&version| (version, 0))
    }

    fn segment(&mut self, _ordinal: usize, segment: &Arc<Segment>, role: SegmentRole) {
        self.last_end = None;
        self.segment_sizes.push(segment.header.segment_size_bytes);
        self.segment = Some(SegmentSeen {
            sealed: role == SegmentRole::Sealed,
            path: segment.path.clone(),
            salt: segment.header.salt,
            chain: segment.header.chain_start,
            chain_holds: true,
            events: 0,
            batches: 0,
            last_position: None,
            next_position: segment.header.base_position,
        });
    }

    fn batch(&mut self, seen: &BatchSeen<'_, '_>) {
        for last in stream_ends(seen.events) {
            self.versions.insert(last.stream.to_string(), last.version);
        }
        self.last_end = Some(seen.batch.end);
        if let Some(segment) = &mut self.segment {
            let batch = seen.batch;
            // The chain recomputed over the segment's batches from its
            // header: a footer rebuilt from them must not vouch for a batch
            // the chain does not.
            let recomputed =
                chain::next_chain(&segment.chain, batch.event_frames, batch.commit_tail);
            segment.chain_holds &= recomputed == batch.commit.chain;
            segment.chain = batch.commit.chain;
            segment.events += seen.events.len() as u64;
            segment.batches += 1;
            match seen.events.last() {
                Some(last) => {
                    segment.last_position = Some(last.event.position);
                    segment.next_position = last.event.position.saturating_add(1);
                }
                None => segment.next_position = batch.commit.first_position,
            }
        }
    }

    fn finding(&mut self, finding: Finding, verdict: Verdict) -> Flow {
        match verdict {
            Verdict::Refuse => {
                self.damage = Some(finding);
                Flow::Stop
            }
            Verdict::Discard | Verdict::Remove | Verdict::Rebuild => {
                self.notes.push(finding);
                Flow::Continue
            }
            Verdict::Wait => Flow::Continue,
        }
    }
}

/// A segment as its batches show it, while the walk is in it.
#[derive(Debug, Clone)]
struct SegmentSeen {
    /// Sealed (a valid footer, or another segment follows it): only such a
    /// segment gets a footer; the newest unsealed one stays active.
    sealed: bool,
    path: PathBuf,
    salt: u64,
    /// The stored chain value after the last batch (the header's
    /// `chain_start` before any).
    chain: [u8; CHAIN_LEN],
    /// Whether every batch's stored chain value is the one recomputed.
    chain_holds: bool,
    events: u64,
    batches: u64,
    last_position: Option<u64>,
    /// The position after the segment's last batch.
    next_position: u64,
}

/// Damage to a sealed segment's footer, free space or durable mark, with
/// every batch intact, is mended in place when the chain links across: the
/// footer rebuilt from the batches, the free space and the mark cleared,
/// and every later segment kept.
fn in_place(
    damage: &Finding,
    seen: Option<&SegmentSeen>,
    last_end: Option<usize>,
    next: Option<&Path>,
) -> Option<RewriteFooter> {
    use FindingKind as K;
    let seen = seen?;
    let fixable = matches!(
        damage.kind,
        K::MissingFooter { .. }
            | K::FooterMismatch { .. }
            | K::BytesAfterSealedData
            | K::DamagedDurableMark
    );
    if !fixable || !seen.sealed || seen.path != damage.path || !seen.chain_holds || seen.events == 0
    {
        return None;
    }
    // The segment after it must continue exactly where the batches end.
    if let Some(next) = next {
        let bytes = map_regular_file(next).ok()?;
        let header = SegmentHeader::decode(&bytes).ok()?;
        if header.base_position != seen.next_position || header.chain_start != seen.chain {
            return None;
        }
    }
    Some(RewriteFooter {
        path: seen.path.clone(),
        salt: seen.salt,
        data_end: last_end.unwrap_or(SEGMENT_HEADER_LEN) as u64,
        event_count: seen.events,
        batch_count: seen.batches,
        last_position: seen.last_position?,
        chain_end: seen.chain,
    })
}

/// Counts the events that still decode in what the cut removes.
fn count_lost(
    zero: Option<&ZeroFrom>,
    removed: &[(PathBuf, u64)],
    kept_versions: &HashMap<String, u64>,
) -> LostEvents {
    let mut lost = LostEvents::default();
    let parts = zero
        .map(|z| (z.path.clone(), z.offset as usize))
        .into_iter()
        .chain(
            removed
                .iter()
                .map(|(path, _)| (path.clone(), SEGMENT_HEADER_LEN)),
        );
    for (path, from) in parts {
        // Map the file as it is, whatever its state: it is being cut.
        let Ok(bytes) = map_regular_file(&path) else {
            lost.uncounted_files.push(path);
            continue;
        };
        let Ok(header) = SegmentHeader::decode(&bytes) else {
            lost.uncounted_files.push(path);
            continue;
        };
        let data_end = (codec::data_end(header.segment_size_bytes) as usize)
            .min(bytes.len() / FRAME_ALIGN * FRAME_ALIGN);
        count_readable_events(&bytes, &header, from, data_end, &mut lost);
    }
    for (stream, (kept, _)) in lost.streams.iter_mut() {
        *kept = kept_versions.get(stream).copied().unwrap_or(0);
    }
    lost
}

/// Maps a segment file read-only, only if it is a regular file (never
/// waits on a FIFO). The repair holds the writer lock: no annals writer
/// changes the file while it is mapped.
fn map_regular_file(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let file = File::open(path)?;
    // SAFETY: a read-only mapping; the store's writer lock is held, so no
    // annals process writes or truncates the file meanwhile.
    unsafe { memmap2::Mmap::map(&file) }
}

/// Reads a small file (a snapshot) only if it is a regular file no larger
/// than `max_len`.
fn read_regular_file(path: &Path, max_len: u64) -> std::io::Result<Vec<u8>> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.file_type().is_file() || metadata.len() > max_len {
        return Err(std::io::Error::other(
            "not a regular file of a snapshot's size",
        ));
    }
    fs::read(path)
}

/// Steps through `from..data_end` frame by frame, resynchronizing after bad
/// bytes at the next 8-byte offset, and counts the valid event frames.
fn count_readable_events(
    bytes: &[u8],
    header: &SegmentHeader,
    from: usize,
    data_end: usize,
    lost: &mut LostEvents,
) {
    let (salt, format_version) = (header.salt, header.format_version);
    let mut offset = from.next_multiple_of(FRAME_ALIGN);
    while offset + FRAME_ALIGN <= data_end {
        match frame::read_frame(bytes, salt, offset, data_end) {
            FrameRead::Frame(frame) => {
                if frame.kind == FrameKind::Event
                    && let Ok(event) = body::decode_event(frame.body, format_version)
                {
                    lost.events += 1;
                    let position = event.position;
                    lost.first_position =
                        Some(lost.first_position.map_or(position, |p| p.min(position)));
                    lost.last_position =
                        Some(lost.last_position.map_or(position, |p| p.max(position)));
                    let (_, highest) = lost
                        .streams
                        .entry(event.stream.to_string())
                        .or_insert((0, event.version));
                    *highest = (*highest).max(event.version);
                }
                offset = frame.next_offset;
            }
            FrameRead::Empty | FrameRead::Invalid(_) => offset += FRAME_ALIGN,
        }
    }
}

/// Snapshot files of streams at a version past what the cut keeps. A
/// snapshot that does not decode is the store's to report; repair only
/// removes valid snapshots that the cut makes wrong.
fn stale_snapshots(dir: &Path, kept_versions: &HashMap<String, u64>) -> Result<Vec<StaleSnapshot>> {
    let snapshot_dir = dir.join(SNAPSHOT_DIR_NAME);
    let Ok(entries) = fs::read_dir(&snapshot_dir) else {
        return Ok(Vec::new());
    };
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "snap") {
            continue;
        }
        let max_len = (SNAPSHOT_HEADER_LEN as u64).saturating_add(MAX_SNAPSHOT_BODY_LEN);
        let Ok(bytes) = read_regular_file(&path, max_len) else {
            continue;
        };
        if let Ok(record) = decode_snapshot(&bytes) {
            let kept_version = kept_versions.get(record.stream).copied().unwrap_or(0);
            if record.version > kept_version {
                stale.push(StaleSnapshot {
                    path,
                    stream: record.stream.to_string(),
                    version: record.version,
                    kept_version,
                });
            }
        }
    }
    stale.sort();
    Ok(stale)
}

fn file_name(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", path, e))
}

/// The number of events in the whole log, when every segment is kept: the
/// next position after the newest segment's batches, as a reader sees it.
fn walk_end_of_log(dir: &Path) -> Result<u64> {
    // The footer being rebuilt is refused by an open; count the events with
    // the walk, which goes on after it.
    let mut counter = CountEvents::default();
    LogWalk::new(dir, SegmentRole::Newest, &Default::default()).walk_all(&mut counter)?;
    Ok(counter.next_position)
}

/// Counts the log's events through a walk that goes on after findings.
#[derive(Default)]
struct CountEvents {
    versions: HashMap<String, (u64, u32)>,
    next_position: u64,
}

impl Visitor for CountEvents {
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)> {
        self.versions.get(stream).copied()
    }

    fn segment(&mut self, _ordinal: usize, _segment: &Arc<Segment>, _role: SegmentRole) {}

    fn batch(&mut self, seen: &BatchSeen<'_, '_>) {
        for last in stream_ends(seen.events) {
            self.versions
                .insert(last.stream.to_string(), (last.version, seen.epoch));
        }
        if let Some(last) = seen.events.last() {
            self.next_position = last.event.position.saturating_add(1);
        }
    }

    fn finding(&mut self, _finding: Finding, _verdict: Verdict) -> Flow {
        Flow::Continue
    }
}

/// Rebuilds a sealed segment's footer from its batches: zeroes what follows
/// the data, clears the durable mark (a footer vouches for the data), writes
/// the footer, syncs, and makes the file read-only again.
fn rewrite_footer(rewrite: &RewriteFooter) -> Result<()> {
    let path = &rewrite.path;
    segment::make_writable(path)?;
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))?;
    // The size the header states: a file cut inside its footer is put
    // back to it (the walk checked the header).
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| Error::io("reading the header of", path, e))?;
    let len = SegmentHeader::decode(&header)
        .map_err(|e| {
            Error::found(
                path,
                0,
                None,
                FindingKind::InvalidHeader {
                    detail: e.to_string(),
                },
            )
        })?
        .segment_size_bytes;
    file.set_len(len)
        .map_err(|e| Error::io("restoring the size of", path, e))?;
    let footer_at = len.saturating_sub(FOOTER_LEN as u64);
    let data_end = rewrite.data_end.min(footer_at);
    let mut data = vec![0u8; (data_end as usize).saturating_sub(SEGMENT_HEADER_LEN)];
    file.read_exact_at(&mut data, SEGMENT_HEADER_LEN as u64)
        .map_err(|e| Error::io("reading", path, e))?;
    let footer = SegmentFooter {
        event_count: rewrite.event_count,
        batch_count: rewrite.batch_count,
        last_position: rewrite.last_position,
        data_len: data.len() as u64,
        contents_crc: footer::contents_crc(rewrite.salt, &data),
        chain_end: rewrite.chain_end,
        sealed_unix_ns: crate::engine::writer::now_ns(),
    };
    let zeroes = vec![0u8; (footer_at - data_end) as usize];
    file.write_all_at(&zeroes, data_end)
        .and_then(|()| file.write_all_at(&footer.encode(), footer_at))
        .and_then(|()| {
            file.write_all_at(
                &[0u8; DURABLE_MARK_RANGE.end - DURABLE_MARK_RANGE.start],
                DURABLE_MARK_RANGE.start as u64,
            )
        })
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("rewriting the footer of", path, e))?;
    segment::make_read_only(path)
}

/// Makes a (perhaps sealed, read-only) segment writable, zeroes it from
/// the cut to its end and clears its durable mark (it claimed bytes that
/// are gone), then syncs it.
fn zero_from(zero: &ZeroFrom) -> Result<()> {
    let path = &zero.path;
    segment::make_writable(path)?;
    let file = File::options()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))?;
    let zeroes = vec![0u8; 1 << 20];
    let mut at = zero.offset;
    while at < zero.len {
        let n = zeroes.len().min((zero.len - at) as usize);
        file.write_all_at(&zeroes[..n], at)
            .map_err(|e| Error::io("zeroing", path, e))?;
        at += n as u64;
    }
    let mark = DURABLE_MARK_RANGE;
    if zero.len >= mark.end as u64 {
        file.write_all_at(
            &[0u8; DURABLE_MARK_RANGE.end - DURABLE_MARK_RANGE.start],
            mark.start as u64,
        )
        .map_err(|e| Error::io("clearing the durable mark of", path, e))?;
    }
    file.sync_all().map_err(|e| Error::io("syncing", path, e))
}
