//! Opening a store's log: the walk of [`crate::log::walk`] judges every
//! byte; this module builds the index from the batches it hands over and
//! carries out its verdicts. A writer refuses on [`Verdict::Refuse`],
//! discards what a crash left ([`Verdict::Discard`]: zeroed and synced) and
//! removes stray temporary files; a reader refuses likewise, stops before
//! what a writer would discard, and changes nothing. A follower keeps the
//! walk and refreshes it.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_LEN;
use crate::format::scan::{EventRef, stream_runs};
use crate::hooks::Hooks;
use crate::index::segment::Contents;
use crate::index::{CommandRecord, Index};

use super::checkpoint;
use super::index_files;
use super::tree::TreeChain;
use crate::log::directory;
use crate::log::finding::{Finding, FindingKind};
use crate::log::retention;
use crate::log::scan::{BatchSeen, Flow, Visitor};
use crate::log::segment::{self, Segment};
use crate::log::verdict::{SegmentRole, Verdict};
use crate::log::walk::{LogWalk, WalkEnd};

/// What opening a store found that a crash leaves behind, and what was
/// done about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Each thing found, in log order.
    pub items: Vec<Recovered>,
}

/// One thing open found and what it did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// What was found, and where.
    pub finding: Finding,
    /// What was done.
    pub action: RecoveryAction,
}

/// What open did about something a crash left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryAction {
    /// A writer zeroed the bytes and synced them: a torn tail or torn footer.
    Discarded,
    /// A writer extended a newest segment file that was cut short back to
    /// its full size (with zeroes, above its durable end).
    Restored,
    /// A writer removed a stray temporary file.
    Removed,
    /// A writer made the newest segment writable again: read-only on disk
    /// (as sealed segments are) but without a footer.
    MadeWritable,
    /// A reader left it as it is and reads only the log before it; a
    /// writer's open will discard or remove it.
    NotShown,
    /// Derived data (an index file, the index checkpoint) was rebuilt from
    /// the log, and a writer wrote it anew.
    Rebuilt,
    /// Derived data was rebuilt from the log in memory only (by a reader,
    /// or because writing it failed); a writer's open writes it.
    RebuiltInMemory,
}

impl RecoveryAction {
    /// A short description, for people.
    pub fn describe(self) -> &'static str {
        match self {
            RecoveryAction::Discarded => "discarded (zeroed and synced)",
            RecoveryAction::Restored => "file extended back to full size",
            RecoveryAction::Removed => "removed",
            RecoveryAction::MadeWritable => "made writable again: it is the active segment",
            RecoveryAction::NotShown => {
                "not shown, left as it is (a writer's open discards or removes it)"
            }
            RecoveryAction::Rebuilt => "rebuilt from the log and written anew",
            RecoveryAction::RebuiltInMemory => {
                "rebuilt from the log in memory (a writer's open writes it anew)"
            }
        }
    }
}

impl Recovered {
    /// How many bytes the finding covers (discarded, restored or left out).
    pub fn bytes(&self) -> u64 {
        match &self.finding.kind {
            FindingKind::TornTail { bytes, .. } => *bytes,
            FindingKind::TornFooter { .. } => crate::format::FOOTER_LEN as u64,
            FindingKind::ShortFile { len, expected } => expected.saturating_sub(*len),
            _ => 0,
        }
    }
}

impl RecoveryReport {
    /// Whether open found nothing to recover.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The torn tail found (and, by a writer, discarded), if any.
    pub fn torn_tail(&self) -> Option<&Recovered> {
        self.items
            .iter()
            .find(|item| matches!(item.finding.kind, FindingKind::TornTail { .. }))
    }

    /// The items of one kind of finding.
    pub fn of_kind<'a>(
        &'a self,
        matches: impl Fn(&FindingKind) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Recovered> + 'a {
        self.items
            .iter()
            .filter(move |item| matches(&item.finding.kind))
    }
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.finding, self.action.describe())?;
        if self.bytes() > 0 {
            write!(f, " ({} bytes)", self.bytes())?;
        }
        Ok(())
    }
}

/// The result of opening the segments of a store.
pub(crate) struct Loaded {
    pub index: Index,
    pub segments: Vec<Arc<Segment>>,
    /// Whether the newest segment has a valid footer.
    pub newest_sealed: bool,
    pub report: RecoveryReport,
    /// The walk, for a reader to follow the log from where it stopped.
    pub walk: LogWalk,
    /// Whether the checkpoint loaded covers the whole log: a writer need
    /// not write one now.
    pub checkpoint_current: bool,
    /// The Merkle tree at the end of sealed segments, by base position, as
    /// their index files record it: what the engine's frontier cache
    /// starts with.
    pub tree_frontiers: Vec<(u64, crate::proof::merkle::Frontier)>,
}

/// Builds the index from the batches of a walk, and collects its findings.
struct IndexBuilder<'a, 'f> {
    index: &'a mut Index,
    /// The first refused finding: the open fails with it.
    refused: Option<Finding>,
    /// What a crash left behind.
    leftovers: Vec<Finding>,
    /// Where index files of sealed segments are found or written.
    files: IndexFileSink<'f>,
    /// The segment being indexed.
    current: Option<Arc<Segment>>,
}

/// Where an open finds and (a writer) writes index files, and what it did.
pub(crate) struct IndexFileSink<'a> {
    pub dir: &'a Path,
    /// A writer's hooks: it writes missing index files. `None` for a reader.
    pub writer_hooks: Option<&'a Hooks>,
    /// Whether index files found are used; `false` when the index is
    /// rebuilt from the log on request: a writer writes them all anew, a
    /// reader keeps the index in memory.
    pub trust_files: bool,
    /// Index files found missing or unusable, and what was done.
    pub rebuilt: Vec<Recovered>,
    /// The Merkle tree at the end of the segments installed so far.
    pub tree: TreeChain,
}

impl IndexFileSink<'_> {
    /// Maps the index file of the sealed segment `ordinal` of `index`
    /// (finding it, or a writer writing it), so that its contents leave the heap.
    pub fn install(&mut self, index: &mut Index, ordinal: usize, segment: &Arc<Segment>) {
        if index.segments[ordinal].memory().is_none() {
            // Mapped already (covered by the checkpoint).
            return;
        }
        index.list_segment(ordinal);
        let base_position = segment.header.base_position;
        let installed = if self.trust_files {
            index_files::install(
                self.dir,
                segment,
                &index.segments[ordinal],
                &self.tree,
                &index.late_findings,
                self.writer_hooks,
            )
        } else {
            match self.writer_hooks {
                Some(hooks) => index_files::rewrite(
                    self.dir,
                    segment,
                    &index.segments[ordinal],
                    &self.tree,
                    &index.late_findings,
                    hooks,
                ),
                // Asked to rebuild: nothing to report.
                None => {
                    self.tree.followed(base_position, None);
                    return;
                }
            }
        };
        let (mapped, recovered) = installed.into_parts(self.dir, base_position);
        self.tree
            .followed(base_position, mapped.as_ref().and_then(|m| m.tree()));
        if let Some(mapped) = mapped {
            index.segments[ordinal].contents = Contents::File(Box::new(mapped));
        }
        // Asked to rebuild, a writer writes every file anew: not a finding.
        if self.trust_files {
            self.rebuilt.extend(recovered);
        }
    }
}

impl Visitor for IndexBuilder<'_, '_> {
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)> {
        // The index never holds a gap: a refused finding ends its walk.
        match self.index.stream_version(stream) {
            0 => None,
            version => Some((version, 0)),
        }
    }

    fn anchored(&mut self, anchor: &Arc<crate::log::retention::Anchor>, from_archive: bool) {
        assert!(!from_archive, "an open never reads an archive");
        self.index.anchored(anchor);
        self.files.tree = TreeChain::anchored(anchor);
    }

    fn segment(&mut self, _ordinal: usize, segment: &Arc<Segment>, _role: SegmentRole) {
        self.index
            .start_segment(segment.header.base_position, segment.header.chain_start);
        // The segment before is sealed (the walk checked its footer before
        // going on): its contents can leave the heap.
        if let Some(previous) = self.current.replace(Arc::clone(segment)) {
            let ordinal = self.index.segments.len() - 2;
            self.files.install(self.index, ordinal, &previous);
        }
    }

    fn batch(&mut self, seen: &BatchSeen<'_, '_>) {
        let batch = seen.batch;
        let Some(first) = seen.events.first() else {
            // A sync marker: no events, but it ends a batch.
            self.index.end_batch(batch.end, batch.commit.chain, None);
            return;
        };
        debug_assert_eq!(first.event.position, self.index.next_position());
        // The scanner checked that the batch continues the log and that
        // each stream's run is consecutive versions and positions.
        for run in stream_runs(seen.events) {
            let first = &run[0].event;
            self.index.add_batch(
                first.stream,
                first.version,
                first.position,
                index_entries(run),
            );
        }
        self.index
            .end_batch(batch.end, batch.commit.chain, command_of(seen));
    }

    fn finding(&mut self, finding: Finding, verdict: Verdict) -> Flow {
        match verdict {
            Verdict::Refuse => {
                self.refused.get_or_insert(finding);
                Flow::Stop
            }
            Verdict::Discard | Verdict::Remove | Verdict::Rebuild => {
                self.leftovers.push(finding);
                Flow::Continue
            }
            Verdict::Wait => Flow::Continue,
        }
    }
}

/// What the index records of each event of a batch: its frame offset,
/// correlation id and timestamp.
pub(crate) fn index_entries<'a>(
    run: &[EventRef<'a>],
) -> impl Iterator<Item = (u32, Option<&'a str>, u64)> {
    run.iter().map(|e| {
        (
            u32::try_from(e.offset).expect("segment offsets fit u32"),
            e.event.correlation_id,
            e.event.timestamp_ns,
        )
    })
}

/// The command record of a batch with a command id. For a batch of several
/// streams it names the first event's stream and version and counts every
/// event of the batch (what the index files record, `docs/format.md`).
pub(crate) fn command_of<'a>(seen: &BatchSeen<'a, '_>) -> Option<(&'a str, CommandRecord)> {
    let first = &seen.events.first()?.event;
    let id = seen.batch.commit.command_id?;
    Some((
        id,
        CommandRecord {
            stream: first.stream.into(),
            first_version: first.version,
            first_position: first.position,
            event_count: seen.batch.commit.event_count,
        },
    ))
}

/// Opens every segment of `dir`. A writer (`writable`) also discards what a
/// crash left; a reader only stops before it.
///
/// # Errors
/// [`Error::Corrupt`] with the first finding the decision table refuses;
/// [`Error::Io`] / [`Error::NoSpace`] when files cannot be read or repaired.
pub(crate) fn load(
    dir: &Path,
    writable: bool,
    rebuild_index: bool,
    hooks: &Hooks,
) -> Result<Loaded> {
    let trust = !rebuild_index;
    // A reader beside a live writer may list the directory, or read the
    // retention manifest, while the writer retires segments: the files it
    // listed are gone, or the manifest it read is older than the listing.
    // A retirement changes the manifest before it removes anything, so an
    // open that failed while the manifest changed is tried again.
    let mut attempts = 0;
    loop {
        let manifest_before = retention::fingerprint(dir);
        let loaded = load_once(dir, writable, trust, trust, None, hooks);
        attempts += 1;
        match loaded {
            Err(_)
                if !writable
                    && attempts < MAX_OPEN_ATTEMPTS
                    && retention::fingerprint(dir) != manifest_before => {}
            loaded => return loaded,
        }
    }
}

/// How many times a reader tries to open a store that a writer keeps
/// retiring segments of (each retirement changes the manifest once).
const MAX_OPEN_ATTEMPTS: usize = 20;

/// [`load`], from the checkpoint if `use_checkpoint`, using index files
/// found if `trust_files`. When the log
/// after a checkpoint is refused, the checkpoint is not trusted for that
/// verdict either: the whole log is walked again, which refuses the same
/// damage, or finds the log whole and reports the checkpoint
/// (`after_checkpoint`, the finding it led to).
fn load_once(
    dir: &Path,
    writable: bool,
    use_checkpoint: bool,
    trust_files: bool,
    after_checkpoint: Option<Finding>,
    hooks: &Hooks,
) -> Result<Loaded> {
    // A reader beside a live writer treats the newest segment as live: a
    // batch or footer being written is not a torn write.
    let newest_role = if !writable && directory::writer_is_live(dir) {
        SegmentRole::Live
    } else {
        SegmentRole::Newest
    };
    let writer_hooks = writable.then_some(hooks);
    let mut checkpoint_problem = after_checkpoint.map(|refused| Finding {
        kind: FindingKind::IndexCheckpoint {
            detail: format!("the log after it does not continue it ({refused})"),
        },
        path: dir.join(crate::format::checkpoint::CHECKPOINT_FILE_NAME),
        offset: 0,
        position: None,
    });
    let resumed = if !use_checkpoint {
        None
    } else {
        match checkpoint::load(dir, newest_role, writer_hooks, hooks) {
            Ok(resumed) => resumed,
            Err(finding) => {
                checkpoint_problem = Some(finding);
                None
            }
        }
    };
    let from_checkpoint = resumed.is_some();
    let covered_end = resumed.as_ref().map(|r| r.index.next_position());
    let (mut walk, mut index, rebuilt, tree) = match resumed {
        Some(resumed) => (resumed.walk, resumed.index, resumed.rebuilt, resumed.tree),
        None => (
            LogWalk::new(dir, newest_role, hooks),
            Index::new(dir),
            Vec::new(),
            TreeChain::genesis(),
        ),
    };
    let mut builder = IndexBuilder {
        index: &mut index,
        refused: None,
        leftovers: Vec::new(),
        files: IndexFileSink {
            dir,
            writer_hooks,
            trust_files,
            rebuilt,
            tree,
        },
        current: walk.segments.last().cloned(),
    };
    let end = if from_checkpoint {
        walk.walk_rest(&mut builder)?
    } else {
        walk.walk_all(&mut builder)?
    };
    let IndexBuilder {
        refused,
        leftovers,
        mut files,
        ..
    } = builder;
    if let Some(finding) = refused {
        if from_checkpoint {
            return load_once(dir, writable, false, trust_files, Some(finding), hooks);
        }
        return Err(Error::Corrupt(Box::new(finding)));
    }
    debug_assert_eq!(end, WalkEnd::Done);
    if walk.newest_sealed()
        && let Some(newest) = walk.segments.last()
    {
        files.install(&mut index, walk.segments.len() - 1, newest);
    }
    let mut report = if writable {
        discard_leftovers(&mut walk, leftovers, hooks)?
    } else {
        RecoveryReport {
            items: leftovers
                .into_iter()
                .map(|finding| Recovered {
                    finding,
                    action: RecoveryAction::NotShown,
                })
                .collect(),
        }
    };
    if let Some(finding) = checkpoint_problem {
        let action = if writable {
            RecoveryAction::Rebuilt
        } else {
            RecoveryAction::RebuiltInMemory
        };
        report.items.insert(0, Recovered { finding, action });
    }
    // A writer writes a checkpoint unless the one it loaded covers the
    // whole log as it is now.
    let checkpoint_current = files.rebuilt.is_empty() && covered_end == Some(index.next_position());
    report.items.extend(files.rebuilt);
    index.shrink_to_fit();
    Ok(Loaded {
        checkpoint_current,
        tree_frontiers: files.tree.learned,
        index,
        segments: walk.segments.clone(),
        newest_sealed: walk.newest_sealed(),
        report,
        walk,
    })
}

/// Carries out a writer's verdicts: removes stray temporary files, then
/// makes the newest segment writable again, whole and with nothing after
/// its last complete batch.
fn discard_leftovers(
    walk: &mut LogWalk,
    leftovers: Vec<Finding>,
    hooks: &Hooks,
) -> Result<RecoveryReport> {
    let mut items = Vec::with_capacity(leftovers.len());
    for finding in &leftovers {
        if finding.kind == FindingKind::TemporaryFile {
            // Its rename never happened: nothing in it was acknowledged.
            match fs::remove_file(&finding.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::io(
                        "removing stray temporary segment",
                        &finding.path,
                        e,
                    ));
                }
            }
            items.push(Recovered {
                finding: finding.clone(),
                action: RecoveryAction::Removed,
            });
        }
        if let FindingKind::RetiredSegment { recorded: true, .. } = finding.kind {
            // The manifest retiring it is durable: finish the retirement.
            let index_file = crate::format::parse_segment_file_name(
                &finding
                    .path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy(),
            )
            .map(|base| {
                walk.dir()
                    .join(crate::format::index_file::index_file_name(base))
            });
            for path in index_file.iter().chain([&finding.path]) {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("removing retired segment", path, e)),
                }
            }
            directory::sync_dir(walk.dir())?;
            items.push(Recovered {
                finding: finding.clone(),
                action: RecoveryAction::Removed,
            });
        }
    }
    if walk.newest_sealed() {
        return Ok(RecoveryReport { items });
    }
    let Some(newest) = walk.segments.last().cloned() else {
        return Ok(RecoveryReport { items });
    };
    if is_read_only_on_disk(&newest.path)? {
        // Sealed once (only sealed segments are read-only), its footer since
        // lost: its data was checked, and the durable mark written when it
        // was sealed vouches for all of it. The writer continues it.
        segment::make_writable(&newest.path)?;
        items.push(Recovered {
            finding: Finding {
                kind: FindingKind::ReadOnlyUnsealed,
                path: newest.path.clone(),
                offset: newest.data_end() as u64,
                position: None,
            },
            action: RecoveryAction::MadeWritable,
        });
    }
    for finding in &leftovers {
        if let FindingKind::ShortFile { .. } = finding.kind {
            segment::restore_size(&newest.path, newest.header.segment_size_bytes)?;
            items.push(Recovered {
                finding: finding.clone(),
                action: RecoveryAction::Restored,
            });
        }
    }
    // The walk mapped it read-only; the writer needs it writable, whole.
    let writable = Arc::new(Segment::open(&newest.path, true, hooks)?);
    for finding in leftovers {
        let range = match &finding.kind {
            FindingKind::TornFooter { .. } => writable.data_end()..writable.len(),
            FindingKind::TornTail { bytes, .. } => {
                let from = finding.offset as usize;
                from..from + *bytes as usize
            }
            // Extending the file kept the bytes of its last, partial word
            // (the walk mapped whole words only) and of a partial footer
            // (a short file has none to judge): zero them. What lies past
            // the old end is zero already.
            FindingKind::ShortFile { len, .. } => {
                let footer_at = writable.len() - crate::format::FOOTER_LEN;
                let from = (finding.offset as usize).min(footer_at);
                let to = usize::try_from(*len)
                    .map_or(writable.len(), |len| len.next_multiple_of(8))
                    .min(writable.len());
                if from >= to {
                    continue;
                }
                writable.zero_and_sync(from, to)?;
                continue;
            }
            FindingKind::TornDurableMark => {
                writable.clear_durable_mark_slot(finding.offset as usize)?;
                items.push(Recovered {
                    finding,
                    action: RecoveryAction::Discarded,
                });
                continue;
            }
            _ => continue,
        };
        // Never durable, never acknowledged as durable: discard it so that
        // new batches start right after the last complete one.
        assert!(range.start >= SEGMENT_HEADER_LEN && range.end <= writable.len());
        writable.zero_and_sync(range.start, range.end)?;
        items.push(Recovered {
            finding,
            action: RecoveryAction::Discarded,
        });
    }
    *walk.segments.last_mut().expect("not empty") = writable;
    Ok(RecoveryReport { items })
}

/// A reader following a writer in another process: the walk, continued by
/// each refresh, and the index files it still looks for.
pub(crate) struct Follower {
    walk: LogWalk,
    /// Segments sealed while following whose index file was not there yet
    /// (the writer writes it moments after sealing): looked for again at
    /// each refresh, so that a long-running follower's heap stays bounded.
    pending_index_files: Vec<usize>,
    /// The retention manifest as last followed ([`retention::fingerprint`]).
    manifest: Option<(u64, u64, Option<std::time::SystemTime>)>,
}

impl Follower {
    pub fn new(walk: LogWalk) -> Follower {
        Follower {
            walk,
            pending_index_files: Vec::new(),
            manifest: None,
        }
    }

    /// Follows a retirement the writer made since the last call: the
    /// retired segments leave the index and their mappings are released
    /// (so that their disk space is freed), as in the writer's own store.
    ///
    /// # Errors
    /// [`Error::Retired`] when events this reader had not read yet were
    /// retired; the manifest's errors.
    fn follow_retirement(
        &mut self,
        index: &mut Index,
        segments: &mut [Arc<Segment>],
    ) -> Result<()> {
        let dir = self.walk.dir().to_path_buf();
        let now = retention::fingerprint(&dir);
        if now.is_none() || now == self.manifest {
            return Ok(());
        }
        let Some(anchor) = retention::read_anchor(&dir)? else {
            return Ok(());
        };
        if anchor.position > index.start_position() {
            let Some(keep_from) = index
                .segments
                .iter()
                .position(|segment| segment.base_position == anchor.position)
            else {
                if index.next_position() >= anchor.position {
                    // Retired up to where this reader has read: nothing
                    // missed; followed once the next segment is.
                    return Ok(());
                }
                return Err(Error::Retired {
                    dir,
                    from: index.next_position(),
                    log_start: anchor.position,
                });
            };
            index.set_cut(&anchor);
            index.retire_before(keep_from);
            for (segment, walked) in segments[..keep_from]
                .iter_mut()
                .zip(&mut self.walk.segments[..keep_from])
            {
                if segment.file_len() > 0 {
                    let slot = Arc::new(segment.retired()?);
                    *segment = Arc::clone(&slot);
                    *walked = slot;
                }
            }
        }
        self.manifest = now;
        Ok(())
    }

    /// Picks up what a writer in another process committed since the last
    /// call: new batches in the newest known segment, then, once that
    /// segment is sealed, the segments after it. A batch being written is
    /// simply not visible yet. A segment sealed meanwhile leaves the heap
    /// once the writer has written its index file.
    ///
    /// Returns the Merkle tree at the end of the segments whose index files
    /// it installed, as the files record it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] with the first refused finding.
    pub fn follow(
        &mut self,
        index: &mut Index,
        segments: &mut Vec<Arc<Segment>>,
    ) -> Result<Vec<(u64, crate::proof::merkle::Frontier)>> {
        self.follow_retirement(index, segments)?;
        let dir = self.walk.dir().to_path_buf();
        let known = segments.len();
        let mut builder = IndexBuilder {
            index,
            refused: None,
            leftovers: Vec::new(),
            files: IndexFileSink {
                dir: &dir,
                writer_hooks: None,
                trust_files: true,
                rebuilt: Vec::new(),
                // A reader does not know the tree where it goes on: it
                // takes what index files record (the rule of TreeChain).
                tree: TreeChain::starting_at(None),
            },
            current: segments.last().cloned(),
        };
        self.walk.refresh(&mut builder)?;
        if let Some(finding) = builder.refused {
            return Err(Error::Corrupt(Box::new(finding)));
        }
        let IndexBuilder {
            index, mut files, ..
        } = builder;
        segments.extend(self.walk.segments[segments.len()..].iter().cloned());
        // Segments sealed by this refresh, still on the heap.
        let sealed_now = known.saturating_sub(1)..segments.len().saturating_sub(1);
        self.pending_index_files.extend(sealed_now);
        self.pending_index_files.retain(|&ordinal| {
            if index.segments[ordinal].memory().is_some() {
                files.install(index, ordinal, &segments[ordinal]);
            }
            index.segments[ordinal].memory().is_some()
        });
        Ok(files.tree.learned)
    }
}

fn is_read_only_on_disk(path: &Path) -> Result<bool> {
    let metadata = fs::metadata(path).map_err(|e| Error::io("reading permissions of", path, e))?;
    Ok(metadata.permissions().readonly())
}
