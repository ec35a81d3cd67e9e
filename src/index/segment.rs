//! What the index knows of one segment: its extent, and where its events
//! are by stream, command id, correlation id and position. The newest
//! segment's contents are built in memory as batches arrive; a sealed
//! segment's are read from its index file when it has one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::format::index_file::{
    self, CommandEntry, CorrelationRun, IndexBinding, IndexContents, IndexFile, SPARSE_STRIDE,
    StreamEntry, stable_hash,
};
use crate::format::tree_record::TreeRecord;
use crate::format::{CHAIN_LEN, SEGMENT_HEADER_LEN};
use crate::log::finding::{Finding, FindingKind};
use crate::log::segment::Segment;

use super::{CommandRecord, IdMap, Location, Run};

/// Rebuilds a segment's index contents from its bytes (every batch read
/// and checked again).
pub(crate) type RebuildFn = fn(&Segment) -> Result<MemoryIndex>;

/// Problems with index files found after open (on first use), for the
/// store to report.
pub(crate) type LateFindings = Arc<Mutex<Vec<Finding>>>;

/// A stream's events in one segment: consecutive versions from
/// `first_version`, with their frame offsets in version order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamRun {
    pub first_version: u64,
    pub offsets: Vec<u32>,
}

/// `count` consecutive event frames of one batch from `offset`, carrying
/// correlation ids with the same hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetRun {
    pub offset: u32,
    pub count: u32,
}

/// The contents of one segment's index, in memory.
/// Correlation runs by the [`stable_hash`] of the id.
pub(crate) type CorrelationMap = HashMap<u64, Vec<OffsetRun>, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
pub(crate) struct MemoryIndex {
    pub streams: IdMap<StreamRun>,
    pub commands: IdMap<CommandRecord>,
    /// By [`stable_hash`] of the id (the id itself is in the log): readers
    /// drop the events of another id that shares the hash.
    /// Keyed by a hash already (so a cheap hasher would do), but that hash
    /// is stable and public, so a randomly seeded one keeps ids made to
    /// collide from degrading the map; foldhash, as [`IdMap`], costs a
    /// fraction of the default SipHash per event.
    pub correlations: CorrelationMap,
    /// Offset of event `i * SPARSE_STRIDE` of the segment at index `i`.
    pub sparse_offsets: Vec<u32>,
    /// Its timestamp.
    pub sparse_timestamps: Vec<u64>,
}

impl MemoryIndex {
    /// The index file describing these contents, bound to `binding`, with
    /// the Merkle tree at the segment's start and end and its tiles if known.
    pub fn encode(
        &self,
        binding: IndexBinding,
        tree: Option<&TreeRecord>,
        tiles: &[crate::proof::merkle::Hash],
    ) -> Vec<u8> {
        let streams = self
            .streams
            .iter()
            .map(|(name, run)| StreamEntry {
                name,
                first_version: run.first_version,
                offsets: &run.offsets,
            })
            .collect();
        let commands = self
            .commands
            .iter()
            .map(|(id, record)| CommandEntry {
                command_id: id,
                stream: &record.stream,
                first_version: record.first_version,
                first_position: record.first_position,
                event_count: record.event_count,
            })
            .collect();
        let mut correlations: Vec<CorrelationRun> = self
            .correlations
            .iter()
            .flat_map(|(&hash, runs)| {
                runs.iter().map(move |run| CorrelationRun {
                    hash,
                    offset: run.offset,
                    count: run.count,
                })
            })
            .collect();
        correlations.sort_unstable_by_key(|run| run.offset);
        index_file::encode(&IndexContents {
            binding,
            streams,
            sparse_offsets: &self.sparse_offsets,
            sparse_timestamps: &self.sparse_timestamps,
            commands,
            correlations,
            tree,
            tiles,
        })
    }

    /// The contents of an index file, in memory (to continue a segment
    /// whose prefix it describes).
    pub fn from_file(file: &IndexFile<'_>) -> MemoryIndex {
        let mut correlations = CorrelationMap::default();
        let mut runs: Vec<CorrelationRun> = file.correlation_runs().collect();
        runs.sort_unstable_by_key(|run| run.offset);
        for run in runs {
            correlations.entry(run.hash).or_default().push(OffsetRun {
                offset: run.offset,
                count: run.count,
            });
        }
        MemoryIndex {
            streams: file
                .streams()
                .map(|(name, events)| {
                    (
                        name.into(),
                        StreamRun {
                            first_version: events.first_version,
                            offsets: events.offsets.iter().collect(),
                        },
                    )
                })
                .collect(),
            commands: file
                .commands()
                .map(|entry| {
                    (
                        entry.command_id.into(),
                        CommandRecord {
                            stream: entry.stream.into(),
                            first_version: entry.first_version,
                            first_position: entry.first_position,
                            event_count: entry.event_count,
                        },
                    )
                })
                .collect(),
            correlations,
            sparse_offsets: file.sparse_offsets().iter().collect(),
            sparse_timestamps: file.sparse_timestamps().iter().collect(),
        }
    }

    fn heap_bytes(&self) -> usize {
        let streams: usize = self
            .streams
            .iter()
            .map(|(name, run)| name.len() + run.offsets.capacity() * 4)
            .sum::<usize>()
            + self.streams.capacity() * (size_of::<(Box<str>, StreamRun)>() + 1);
        let commands: usize = self
            .commands
            .iter()
            .map(|(id, record)| id.len() + record.stream.len())
            .sum::<usize>()
            + self.commands.capacity() * (size_of::<(Box<str>, CommandRecord)>() + 1);
        let correlations: usize = self
            .correlations
            .values()
            .map(|runs| runs.capacity() * size_of::<OffsetRun>())
            .sum::<usize>()
            + self.correlations.capacity() * (size_of::<(u64, Vec<OffsetRun>)>() + 1);
        streams
            + commands
            + correlations
            + self.sparse_offsets.capacity() * 4
            + self.sparse_timestamps.capacity() * 8
    }

    fn shrink_to_fit(&mut self) {
        for run in self.streams.values_mut() {
            run.offsets.shrink_to_fit();
        }
        self.streams.shrink_to_fit();
        self.commands.shrink_to_fit();
        for runs in self.correlations.values_mut() {
            runs.shrink_to_fit();
        }
        self.correlations.shrink_to_fit();
        self.sparse_offsets.shrink_to_fit();
        self.sparse_timestamps.shrink_to_fit();
    }
}

/// Where a segment's index contents are.
#[derive(Debug)]
pub(crate) enum Contents {
    /// Built in memory: the newest segment, or a sealed one without a
    /// usable index file (an in-memory store, a reader).
    Memory(Box<MemoryIndex>),
    /// In the segment's index file, mapped.
    File(Box<MappedIndex>),
}

/// A sealed segment's index file, mapped. Its header was checked against
/// the segment when it was mapped; the whole file is checked on first use,
/// and if that fails its contents are rebuilt from the segment.
pub(crate) struct MappedIndex {
    // Declared before `map`, so dropped before it: it borrows the mapping.
    checked: OnceLock<Checked>,
    map: memmap2::Mmap,
    path: PathBuf,
    segment: Arc<Segment>,
    binding: IndexBinding,
    /// The file's tree section, read (and checked against the segment
    /// before) when it was mapped: written again if the file is rewritten.
    tree: Option<TreeRecord>,
    rebuild: RebuildFn,
    late: LateFindings,
    /// A writer's: where to write the file anew when it was damaged.
    rewrite: Option<crate::hooks::Hooks>,
}

/// The outcome of the first full check of a mapped index file.
enum Checked {
    File(Box<IndexFile<'static>>),
    Rebuilt(Box<MemoryIndex>),
    Failed(Box<Finding>),
}

impl std::fmt::Debug for MappedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedIndex")
            .field("path", &self.path)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

impl MappedIndex {
    /// A mapped index file whose header binds it to `segment`
    /// (`binding`), and whose tree section is `tree`, checked by the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        map: memmap2::Mmap,
        path: PathBuf,
        segment: Arc<Segment>,
        binding: IndexBinding,
        tree: Option<TreeRecord>,
        rebuild: RebuildFn,
        late: LateFindings,
        rewrite: Option<crate::hooks::Hooks>,
    ) -> MappedIndex {
        MappedIndex {
            checked: OnceLock::new(),
            map,
            path,
            segment,
            binding,
            tree,
            rebuild,
            late,
            rewrite,
        }
    }

    /// The Merkle tree at the segment's start and end, as the file records
    /// it (read when it was mapped).
    pub fn tree(&self) -> Option<&TreeRecord> {
        self.tree.as_ref()
    }

    fn view(&self) -> Result<ContentsView<'_>> {
        let checked = self.checked.get_or_init(|| self.check());
        match checked {
            Checked::File(file) => Ok(ContentsView::File(file)),
            Checked::Rebuilt(memory) => Ok(ContentsView::Memory(memory)),
            Checked::Failed(finding) => Err(Error::Corrupt(finding.clone())),
        }
    }

    fn check(&self) -> Checked {
        // SAFETY: the mapping lives as long as `self`, and the view made
        // from it lives in `self.checked`, dropped before `self.map`. The
        // file is never written in place (a new file replaces it by
        // rename, which leaves this mapping as it is).
        let bytes: &'static [u8] =
            unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) };
        let problem = match IndexFile::parse(bytes) {
            Ok(file) if file.binding() == self.binding => return Checked::File(Box::new(file)),
            Ok(_) => "its header changed after it was mapped".to_string(),
            Err(error) => error.to_string(),
        };
        let rebuilt = match (self.rebuild)(&self.segment) {
            Ok(memory) => memory,
            Err(Error::Corrupt(finding)) => return Checked::Failed(finding),
            Err(other) => {
                return Checked::Failed(Box::new(Finding {
                    kind: FindingKind::ChangedAfterOpen {
                        detail: other.to_string(),
                    },
                    path: self.segment.path.clone(),
                    offset: 0,
                    position: Some(self.binding.base_position),
                }));
            }
        };
        let mut detail = format!("{problem}; rebuilt from its segment");
        if let Some(hooks) = &self.rewrite {
            let written = self
                .path
                .parent()
                .zip(self.path.file_name())
                .map(|(dir, name)| {
                    crate::log::derived_file::write_atomically(
                        dir,
                        &name.to_string_lossy(),
                        // The tiles are not kept: a proof reads the leaves instead.
                        &rebuilt.encode(self.binding, self.tree.as_ref(), &[]),
                        hooks,
                    )
                });
            match written {
                Some(Ok(())) => detail.push_str(" and written anew"),
                Some(Err(error)) => detail.push_str(&format!(" (writing it anew failed: {error})")),
                None => {}
            }
        }
        self.late
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Finding {
                kind: FindingKind::IndexFile { detail },
                path: self.path.clone(),
                offset: 0,
                position: Some(self.binding.base_position),
            });
        Checked::Rebuilt(Box::new(rebuilt))
    }
}

/// A view of a segment's index contents, for lookups.
#[derive(Clone, Copy)]
pub(crate) enum ContentsView<'a> {
    Memory(&'a MemoryIndex),
    File(&'a IndexFile<'a>),
}

/// A stream's events in one segment, as a view.
#[derive(Clone, Copy)]
pub(crate) enum StreamEvents<'a> {
    Memory(&'a StreamRun),
    File(index_file::StreamEvents<'a>),
}

impl StreamEvents<'_> {
    pub fn first_version(&self) -> u64 {
        match self {
            StreamEvents::Memory(run) => run.first_version,
            StreamEvents::File(events) => events.first_version,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            StreamEvents::Memory(run) => run.offsets.len() as u64,
            StreamEvents::File(events) => events.offsets.len() as u64,
        }
    }

    /// The frame offset of the `i`th event (of version `first_version + i`).
    pub fn offset(&self, i: u64) -> Option<u32> {
        let i = usize::try_from(i).ok()?;
        match self {
            StreamEvents::Memory(run) => run.offsets.get(i).copied(),
            StreamEvents::File(events) => events.offsets.get(i),
        }
    }
}

impl<'a> ContentsView<'a> {
    /// The events of `stream` in the segment, if it has any.
    pub fn stream(self, stream: &str) -> Option<StreamEvents<'a>> {
        match self {
            ContentsView::Memory(memory) => memory.streams.get(stream).map(StreamEvents::Memory),
            ContentsView::File(file) => file.stream(stream).map(StreamEvents::File),
        }
    }

    /// What the batch with `command_id` in this segment wrote.
    pub fn command(self, command_id: &str) -> Option<CommandRecord> {
        match self {
            ContentsView::Memory(memory) => memory.commands.get(command_id).cloned(),
            ContentsView::File(file) => file.command(command_id).map(|entry| CommandRecord {
                stream: entry.stream.into(),
                first_version: entry.first_version,
                first_position: entry.first_position,
                event_count: entry.event_count,
            }),
        }
    }

    /// Calls `f` with each run of events whose correlation id hashes to
    /// `hash`, in log order.
    pub fn correlated(self, hash: u64, mut f: impl FnMut(OffsetRun)) {
        match self {
            ContentsView::Memory(memory) => {
                for run in memory.correlations.get(&hash).into_iter().flatten() {
                    f(*run);
                }
            }
            ContentsView::File(file) => {
                for (offset, count) in file.correlated(hash) {
                    f(OffsetRun { offset, count });
                }
            }
        }
    }

    /// The offset of event `i * SPARSE_STRIDE` of the segment.
    pub fn sparse_offset(self, i: u64) -> Option<u32> {
        let i = usize::try_from(i).ok()?;
        match self {
            ContentsView::Memory(memory) => memory.sparse_offsets.get(i).copied(),
            ContentsView::File(file) => file.sparse_offsets().get(i),
        }
    }

    /// The timestamp of event `i * SPARSE_STRIDE` of the segment.
    pub fn sparse_timestamp(self, i: u64) -> Option<u64> {
        let i = usize::try_from(i).ok()?;
        match self {
            ContentsView::Memory(memory) => memory.sparse_timestamps.get(i).copied(),
            ContentsView::File(file) => file.sparse_timestamps().get(i),
        }
    }

    /// Names of the streams with events in the segment.
    pub fn for_each_stream(self, mut f: impl FnMut(&str)) {
        match self {
            ContentsView::Memory(memory) => {
                for name in memory.streams.keys() {
                    f(name);
                }
            }
            ContentsView::File(file) => {
                for (name, _) in file.streams() {
                    f(name);
                }
            }
        }
    }
}

/// Per-segment facts and index contents.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    /// Position of the segment's first event.
    pub base_position: u64,
    /// Events in the segment so far.
    pub event_count: u64,
    /// Batches (sync markers included) in the segment so far.
    pub batch_count: u64,
    /// Offset right after the last complete batch.
    pub end_offset: usize,
    /// Timestamp of the first event (0 while there is none).
    pub first_timestamp_ns: u64,
    /// Timestamp of the newest event (0 while there is none).
    pub last_timestamp_ns: u64,
    /// Hash-chain value after the last batch (the header's `chain_start`
    /// while there is none).
    pub chain_end: [u8; CHAIN_LEN],
    pub contents: Contents,
}

impl SegmentIndex {
    /// An empty segment starting at `base_position`, its chain starting at
    /// `chain_start`.
    pub fn new(base_position: u64, chain_start: [u8; CHAIN_LEN]) -> SegmentIndex {
        SegmentIndex {
            base_position,
            event_count: 0,
            batch_count: 0,
            end_offset: SEGMENT_HEADER_LEN,
            first_timestamp_ns: 0,
            last_timestamp_ns: 0,
            chain_end: chain_start,
            contents: Contents::Memory(Box::default()),
        }
    }

    /// A segment as an index file binding describes it; its contents are
    /// the caller's to set.
    pub fn from_binding(binding: &IndexBinding) -> SegmentIndex {
        SegmentIndex {
            base_position: binding.base_position,
            event_count: binding.event_count,
            batch_count: binding.batch_count,
            end_offset: usize::try_from(binding.data_end).unwrap_or(usize::MAX),
            first_timestamp_ns: binding.first_timestamp_ns,
            last_timestamp_ns: binding.last_timestamp_ns,
            chain_end: binding.chain_end,
            contents: Contents::Memory(Box::default()),
        }
    }

    /// Position right after the segment's last event.
    pub fn end_position(&self) -> u64 {
        self.base_position + self.event_count
    }

    /// The contents, for lookups.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the index file is damaged and so is the
    /// segment it was to be rebuilt from.
    pub fn view(&self) -> Result<ContentsView<'_>> {
        match &self.contents {
            Contents::Memory(memory) => Ok(ContentsView::Memory(memory)),
            Contents::File(mapped) => mapped.view(),
        }
    }

    /// The contents, if they are in memory.
    pub fn into_memory(self) -> Option<MemoryIndex> {
        match self.contents {
            Contents::Memory(memory) => Some(*memory),
            Contents::File(_) => None,
        }
    }

    /// The contents in memory, if they are there.
    pub fn memory(&self) -> Option<&MemoryIndex> {
        match &self.contents {
            Contents::Memory(memory) => Some(memory),
            Contents::File(_) => None,
        }
    }

    /// The contents being built: only the newest segment's are.
    fn memory_mut(&mut self) -> &mut MemoryIndex {
        match &mut self.contents {
            Contents::Memory(memory) => memory,
            Contents::File(_) => panic!("only a segment indexed in memory takes batches"),
        }
    }

    /// What an index file of this segment as it is now is bound to.
    pub fn binding(&self, salt: u64, contents_crc: u32, sealed: bool) -> IndexBinding {
        IndexBinding {
            base_position: self.base_position,
            salt,
            data_end: self.end_offset as u64,
            contents_crc,
            event_count: self.event_count,
            batch_count: self.batch_count,
            chain_end: self.chain_end,
            first_timestamp_ns: self.first_timestamp_ns,
            last_timestamp_ns: self.last_timestamp_ns,
            sealed,
        }
    }

    /// Records one batch's events of `stream` (versions from
    /// `first_version`), each as its frame offset, correlation id and
    /// timestamp.
    pub fn add_events<'e>(
        &mut self,
        stream: &str,
        first_version: u64,
        events: impl IntoIterator<Item = (u32, Option<&'e str>, u64)>,
    ) -> u64 {
        let mut event_count = self.event_count;
        let first_timestamp = &mut self.first_timestamp_ns;
        let last_timestamp = &mut self.last_timestamp_ns;
        let memory = match &mut self.contents {
            Contents::Memory(memory) => memory,
            Contents::File(_) => panic!("only a segment indexed in memory takes batches"),
        };
        let run = match memory.streams.get_mut(stream) {
            Some(run) => run,
            None => memory.streams.entry(stream.into()).or_insert(StreamRun {
                first_version,
                offsets: Vec::new(),
            }),
        };
        assert_eq!(
            run.first_version + run.offsets.len() as u64,
            first_version,
            "a stream's versions in a segment are consecutive"
        );
        let mut added = 0;
        // Consecutive events of the batch with the same correlation id form one run.
        let mut previous_key = None;
        for (offset, correlation_id, timestamp_ns) in events {
            if event_count == 0 {
                *first_timestamp = timestamp_ns;
            }
            *last_timestamp = timestamp_ns;
            if event_count.is_multiple_of(SPARSE_STRIDE) {
                memory.sparse_offsets.push(offset);
                memory.sparse_timestamps.push(timestamp_ns);
            }
            event_count += 1;
            added += 1;
            run.offsets.push(offset);
            match correlation_id {
                Some(id) => {
                    let key = stable_hash(id.as_bytes());
                    let runs = memory.correlations.entry(key).or_default();
                    match runs.last_mut() {
                        Some(last) if previous_key == Some(key) => last.count += 1,
                        _ => runs.push(OffsetRun { offset, count: 1 }),
                    }
                    previous_key = Some(key);
                }
                None => previous_key = None,
            }
        }
        self.event_count = event_count;
        added
    }

    /// Records the end of a batch.
    pub fn end_batch(
        &mut self,
        end_offset: usize,
        chain: [u8; CHAIN_LEN],
        command: Option<(&str, CommandRecord)>,
    ) {
        self.batch_count += 1;
        self.end_offset = end_offset;
        self.chain_end = chain;
        if let Some((id, record)) = command {
            self.memory_mut().commands.insert(id.into(), record);
        }
    }

    /// The events of one correlation hash as runs of global locations.
    pub fn correlated_runs(&self, ordinal: usize, hash: u64, out: &mut Vec<Run>) -> Result<()> {
        self.view()?.correlated(hash, |run| {
            out.push(Run {
                first: Location::new(ordinal, run.offset as usize),
                count: run.count,
            });
        });
        Ok(())
    }

    pub fn heap_bytes(&self) -> usize {
        size_of::<SegmentIndex>()
            + match &self.contents {
                Contents::Memory(memory) => size_of::<MemoryIndex>() + memory.heap_bytes(),
                Contents::File(mapped) => {
                    size_of::<MappedIndex>()
                        + match mapped.checked.get() {
                            Some(Checked::Rebuilt(memory)) => memory.heap_bytes(),
                            _ => 0,
                        }
                }
            }
    }

    pub fn shrink_to_fit(&mut self) {
        if let Contents::Memory(memory) = &mut self.contents {
            memory.shrink_to_fit();
        }
    }
}
