//! The engine: the state that the writer, durability, recovery and the
//! follower share, and the three ways to bring it up (a writer's open, a
//! read-only open, an in-memory store). The public [`crate::Store`] is a thin
//! facade over an [`Engine`].

pub(crate) mod checkpoint;
pub(crate) mod commit_signal;
pub(crate) mod durability;
pub(crate) mod erasure;
pub(crate) mod index_files;
pub(crate) mod indexer;
pub(crate) mod prefault;
pub(crate) mod read_events;
pub(crate) mod recovery;
pub(crate) mod retire;
pub(crate) mod settings;
pub(crate) mod stream_metadata;
pub(crate) mod tree;
pub(crate) mod tree_archive;
pub(crate) mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::format::checkpoint::CHECKPOINT_FILE_NAME;
use crate::format::header::SegmentHeader;
use crate::format::index_file::index_file_name;
use crate::index::Index;
use crate::keys::{FileKeys, MemoryKeys, SharedKeys, SubjectKeys};
use crate::log::directory;
use crate::log::finding::{Finding, FindingKind};
use crate::log::segment::Segment;
use crate::options::Options;
use crate::snapshot::SnapshotStore;

use commit_signal::CommitSignal;
use durability::{Durability, LogPoint};

use recovery::RecoveryReport;
use tree::TreeChain;
use writer::Writer;

/// The state shared by a store's handles and background threads.
pub(crate) struct Engine {
    pub dir: PathBuf,
    pub options: Options,
    /// Segments live in anonymous memory ([`crate::Store::in_memory`]).
    in_memory: bool,
    state: RwLock<State>,
    pub writer: Option<Mutex<Writer>>,
    pub durability: Durability,
    pub snapshots: SnapshotStore,
    /// The subjects' keys and which subjects `$erasures` lists.
    pub subjects: erasure::Subjects,
    pub commits: CommitSignal,
    /// Sealed segments whose index files are still to be written.
    pub index_queue: Arc<indexer::IndexQueue>,
    pub report: RecoveryReport,
    /// A reader's walk of the log, continued by each refresh.
    follower: Option<Mutex<recovery::Follower>>,
    /// The writer lock, held until the store is closed. Not until the
    /// engine is dropped: a subscription keeps the engine alive beyond the
    /// store, and must not keep the lock.
    lock_file: Mutex<Option<directory::WriterLock>>,
    /// Held by a retirement of segments: one at a time.
    retire_lock: Mutex<()>,
    /// The tree's frontier at the end of each sealed segment: learned from
    /// index files on open, added at each seal (`tree.rs`).
    tree_frontiers: tree::FrontierCache,
}

/// The index and the segments it points into, changed together.
pub(crate) struct State {
    pub index: Index,
    pub segments: Vec<Arc<Segment>>,
}

impl Engine {
    /// Opens (creating if needed) the store in `dir` as its one writer:
    /// takes the lock, recovers the segments, and makes sure an active
    /// segment exists and everything in it is durable.
    pub fn open_writable(dir: &Path, options: Options) -> Result<Engine> {
        options.validate()?;
        let dir = dir.to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating store directory", &dir, e))?;
        let lock_file = directory::lock(&dir)?;
        let recorded = settings::read(&dir)?;
        let loaded = recovery::load(&dir, true, options.rebuild_index, &options.hooks)?;
        let tree_frontiers = tree::FrontierCache::default();
        tree_frontiers.seed(loaded.tree_frontiers);
        // The segment size and limits the store keeps, unless these options
        // change them; recorded before anything depends on them.
        let newest_size = loaded.segments.last().map(|s| s.header.segment_size_bytes);
        let (options, changed) = settings::resolve(options, recorded.as_ref(), newest_size);
        options.validate()?;
        if changed {
            settings::write(&dir, &settings::of(&options))?;
        }
        let mut index = loaded.index;
        let mut segments = loaded.segments;
        if segments.is_empty() || loaded.newest_sealed {
            if let Some(sealed) = segments.last() {
                // A writer that crashed while sealing may have left this
                // footer in the page cache only: make it durable before the
                // next segment, which depends on it, exists.
                sealed
                    .sync(0, sealed.len())
                    .map_err(|e| Error::io("syncing sealed segment", &sealed.path, e))?;
            }
            let next = index.next_position();
            let header = writer::new_header(&options, next, &index.chain_head())?;
            segments.push(Arc::new(Segment::create(&dir, &header, &options.hooks)?));
            index.start_segment(next, index.chain_head());
        }
        let ordinal = segments.len() - 1;
        let active = Arc::clone(&segments[ordinal]);
        let end = index.segments[ordinal].end_offset;
        // Whatever a crashed process left in the page cache becomes durable
        // now, so that `synced_offset` claims made from here on are true;
        // then the durable mark says so outside the data area.
        active
            .sync(0, end)
            .map_err(|e| Error::io("syncing recovered segment", &active.path, e))?;
        active.write_durable_mark(end);
        active
            .sync(0, crate::format::SEGMENT_HEADER_LEN)
            .map_err(|e| Error::io("syncing the durable mark of", &active.path, e))?;
        let mut writer = Writer::new(active, ordinal, false, end, index.last_timestamp_ns());
        if options.durability != crate::options::Durability::Always {
            writer.start_prefaulting();
        }
        let snapshots = SnapshotStore::open(&dir, true)?;
        let mut state = State { index, segments };
        stream_metadata::learn(&mut state);
        let keys: Arc<dyn SubjectKeys> = match &options.subject_keys {
            Some(SharedKeys(keys)) => Arc::clone(keys),
            None => Arc::new(FileKeys::open(&dir, true, options.hooks.clone())?),
        };
        let engine = Engine {
            dir,
            in_memory: false,
            state: RwLock::new(state),
            writer: Some(Mutex::new(writer)),
            durability: Durability::new((ordinal, end)),
            snapshots,
            subjects: erasure::Subjects::new(keys),
            commits: CommitSignal::default(),
            index_queue: Arc::default(),
            report: loaded.report,
            follower: None,
            lock_file: Mutex::new(Some(lock_file)),
            retire_lock: Mutex::new(()),
            tree_frontiers,
            options,
        };
        // An erasure interrupted after its event and before its key was
        // destroyed is finished here.
        engine.subjects.read_erasures(&engine.read_state())?;
        engine.subjects.finish_erasures()?;
        if !loaded.checkpoint_current {
            // So that the next open need not read what this one did, even
            // if this process writes nothing and is never closed: the
            // active segment's batches were synced above.
            engine.write_checkpoint(None, true);
        }
        Ok(engine)
    }

    /// Opens the store in `dir` without the writer lock, changing nothing.
    pub fn open_read_only(dir: &Path, rebuild_index: bool) -> Result<Engine> {
        directory::check_store_dir(dir)?;
        let dir = dir.to_path_buf();
        // Read for `Store::options` and to judge the file as a writer would.
        let options = match settings::read(&dir)? {
            Some(recorded) => settings::apply(&Options::default(), &recorded),
            None => Options::default(),
        };
        let loaded = recovery::load(&dir, false, rebuild_index, &Default::default())?;
        let tree_frontiers = tree::FrontierCache::default();
        tree_frontiers.seed(loaded.tree_frontiers);
        let snapshots = SnapshotStore::open(&dir, false)?;
        let mut state = State {
            index: loaded.index,
            segments: loaded.segments,
        };
        stream_metadata::learn(&mut state);
        let keys = Arc::new(FileKeys::open(&dir, false, Default::default())?);
        let engine = Engine {
            dir,
            options,
            in_memory: false,
            state: RwLock::new(state),
            writer: None,
            durability: Durability::new((0, 0)),
            snapshots,
            subjects: erasure::Subjects::new(keys),
            commits: CommitSignal::default(),
            index_queue: Arc::default(),
            report: loaded.report,
            follower: Some(Mutex::new(recovery::Follower::new(loaded.walk))),
            lock_file: Mutex::new(None),
            retire_lock: Mutex::new(()),
            tree_frontiers,
        };
        engine.subjects.read_erasures(&engine.read_state())?;
        Ok(engine)
    }

    /// Whether the segments live in anonymous memory.
    pub fn is_in_memory(&self) -> bool {
        self.in_memory
    }

    /// A store whose one segment lives in anonymous memory.
    pub fn in_memory(options: Options) -> Result<Engine> {
        options.validate()?;
        let header = writer::new_header(&options, 0, &crate::format::chain::GENESIS)?;
        let segment = Arc::new(Segment::create_in_memory(&header)?);
        let mut index = Index::new(Path::new("(memory)"));
        index.start_segment(0, crate::format::chain::GENESIS);
        let start = crate::format::SEGMENT_HEADER_LEN;
        let writer = Writer::new(Arc::clone(&segment), 0, false, start, 0);
        Ok(Engine {
            dir: PathBuf::from("(memory)"),
            in_memory: true,
            state: RwLock::new(State {
                index,
                segments: vec![segment],
            }),
            writer: Some(Mutex::new(writer)),
            durability: Durability::new((0, start)),
            snapshots: SnapshotStore::Memory(Default::default()),
            subjects: erasure::Subjects::new(match &options.subject_keys {
                Some(SharedKeys(keys)) => Arc::clone(keys),
                None => Arc::new(MemoryKeys::default()),
            }),
            commits: CommitSignal::default(),
            index_queue: Arc::default(),
            report: RecoveryReport::default(),
            follower: None,
            lock_file: Mutex::new(None),
            retire_lock: Mutex::new(()),
            tree_frontiers: tree::FrontierCache::default(),
            options,
        })
    }

    /// A reader: picks up what a writer in another process committed since
    /// the last call. Returns how many new events became visible.
    pub fn follow(&self) -> Result<u64> {
        let Some(follower) = &self.follower else {
            return Ok(0);
        };
        let mut follower = follower.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.write_state();
        let before = state.index.next_position();
        let State { index, segments } = &mut *state;
        let followed = follower.follow(index, segments);
        // What was followed before a failure is in the index: so is its
        // metadata.
        stream_metadata::learn(&mut state);
        self.tree_frontiers.seed(followed?);
        // Erasures written since: this reader treats their subjects as
        // erased from now on, whatever keys it still holds.
        self.subjects.read_erasures(&state)?;
        Ok(state.index.next_position() - before)
    }

    /// Marks the store closed: releases the writer lock, and ends
    /// subscriptions (which may keep the engine alive longer). The caller
    /// has stopped writing for good.
    pub(crate) fn close(&self) {
        self.commits.close();
        drop(
            self.lock_file
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
    }

    /// Whether [`Engine::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.commits.is_closed()
    }

    /// A store without a writer was opened read-only.
    pub(crate) fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the index file of the sealed segment `ordinal` and maps it,
    /// so that its contents leave the heap. Derived data: a failure is
    /// reported ([`crate::Store::index_rebuilds`]), not returned, and the
    /// contents stay in memory.
    pub(crate) fn install_index_file(&self, ordinal: usize, segment: &Arc<Segment>) {
        if self.in_memory {
            return;
        }
        // The tree at the segment's start (cached when the segment before
        // was sealed, or learned from its index file on open) and end: its
        // leaves are hashed here, off the append path and before the lock.
        let tree = if !self.options.hooks.record_tree_at_seal() {
            TreeChain::starting_at(None)
        } else {
            match self.tree().sealed_record(ordinal) {
                Ok(record) => TreeChain::computed(record),
                // Its frames were read when it was written or opened: this
                // is damage since, which the index file cannot record.
                Err(_) => TreeChain::starting_at(None),
            }
        };
        // Encoded under the read lock: the segment's contents no longer
        // change, and readers go on meanwhile.
        let installed = {
            let state = self.read_state();
            index_files::install(
                &self.dir,
                segment,
                &state.index.segments[ordinal],
                &tree,
                &state.index.late_findings,
                Some(&self.options.hooks),
            )
        };
        match installed.into_parts(&self.dir, segment.header.base_position) {
            (Some(mapped), _) => {
                self.write_state().index.segments[ordinal].contents =
                    crate::index::segment::Contents::File(Box::new(mapped));
            }
            // Written only now is the normal case; not written is reported.
            (None, Some(mut recovered)) => {
                if let FindingKind::IndexFile { detail } = &mut recovered.finding.kind {
                    detail.push_str("; kept in memory");
                }
                self.report_late(recovered.finding);
            }
            (None, None) => {}
        }
    }

    /// Writes the index file of the sealed segment `ordinal`, then a
    /// checkpoint covering the segments up to it (the indexer thread's job,
    /// or the roll's when no thread runs).
    pub(crate) fn index_sealed_segment(&self, ordinal: usize, segment: &Arc<Segment>) {
        self.install_index_file(ordinal, segment);
        self.write_checkpoint(Some(ordinal), false);
    }

    /// Writes the index checkpoint covering the segments up to `through`
    /// (`None`: up to the newest sealed one), and with `with_prefix` (at
    /// close and open) the active segment up to its last batch too, whose
    /// index file is written first. Derived data: a failure is reported
    /// ([`crate::Store::index_rebuilds`]), not returned; the next open then
    /// reads more of the log.
    pub(crate) fn write_checkpoint(&self, through: Option<usize>, with_prefix: bool) {
        if self.in_memory {
            return;
        }
        let (prefix, checkpoint) = {
            let state = self.read_state();
            let newest = state.segments.len() - 1;
            let active = &state.index.segments[newest];
            let prefix = if with_prefix {
                checkpoint::prefix_binding(&state.segments[newest], active).and_then(|binding| {
                    active
                        .memory()
                        // The active segment's prefix records no tree: it
                        // is read back only to continue its index.
                        .map(|memory| (binding, memory.encode(binding, None, &[])))
                })
            } else {
                None
            };
            let through = match (&prefix, through) {
                (Some(_), _) => Some(newest),
                (None, Some(through)) => Some(through),
                (None, None) => newest.checked_sub(1),
            };
            let checkpoint = checkpoint::encode(&state, through, prefix.as_ref().map(|(b, _)| *b));
            (prefix, checkpoint)
        };
        let hooks = &self.options.hooks;
        let written = match (prefix, checkpoint) {
            (_, None) => Ok(()),
            (Some((binding, bytes)), Some(checkpoint)) => {
                crate::log::derived_file::write_atomically(
                    &self.dir,
                    &index_file_name(binding.base_position),
                    &bytes,
                    hooks,
                )
                .and_then(|()| checkpoint::write(&self.dir, &checkpoint, hooks))
            }
            (None, Some(checkpoint)) => checkpoint::write(&self.dir, &checkpoint, hooks),
        };
        if let Err(error) = written {
            self.report_late(Finding {
                kind: FindingKind::IndexCheckpoint {
                    detail: format!("could not be written: {error}"),
                },
                path: self.dir.join(CHECKPOINT_FILE_NAME),
                offset: 0,
                position: None,
            });
        }
    }

    /// Records a problem with derived data found after open, for
    /// [`crate::Store::index_rebuilds`].
    fn report_late(&self, finding: Finding) {
        self.read_state()
            .index
            .late_findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(finding);
    }

    /// Creates the next segment, on disk or in memory.
    pub(crate) fn create_segment(&self, header: &SegmentHeader) -> Result<Segment> {
        if self.in_memory {
            Segment::create_in_memory(header)
        } else {
            Segment::create(&self.dir, header, &self.options.hooks)
        }
    }

    /// The log point right after the last published batch.
    fn written_end(&self) -> LogPoint {
        let state = self.read_state();
        let ordinal = state.segments.len() - 1;
        (ordinal, state.index.segments[ordinal].end_offset)
    }

    /// Syncs everything written since `durable_before`; returns the new durable point.
    pub(crate) fn sync_written_data(&self, durable_before: LogPoint) -> Result<LogPoint> {
        let (segment, point) = {
            let state = self.read_state();
            let ordinal = state.segments.len() - 1;
            (
                Arc::clone(&state.segments[ordinal]),
                (ordinal, state.index.segments[ordinal].end_offset),
            )
        };
        let from = if durable_before.0 == point.0 {
            durable_before.1
        } else {
            0
        };
        // The header's durable mark, written after the last sync, goes to
        // disk with this one; the new mark goes with the next.
        segment
            .sync_data_and_mark(from, point.1)
            .map_err(|e| Error::io("syncing segment", &segment.path, e))?;
        segment.write_durable_mark(point.1);
        Ok(point)
    }

    /// Syncs everything written so far (used by flush and the periodic thread).
    pub(crate) fn sync_all_written(&self) -> Result<()> {
        let target = self.written_end();
        self.durability.sync_through(self, target)
    }
}
