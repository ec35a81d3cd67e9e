//! What the index knows of one segment: its extent, and where its events
//! are by stream, command id, correlation id and position. The newest
//! segment's contents are built in memory as batches arrive; a sealed
//! segment's are read from its index file when it has one.

use std::collections::HashMap;

use crate::format::index_file::{SPARSE_STRIDE, stable_hash};
use crate::format::{CHAIN_LEN, SEGMENT_HEADER_LEN};

use super::{CommandRecord, Location, Run};

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
#[derive(Debug, Default)]
pub(crate) struct MemoryIndex {
    pub streams: HashMap<Box<str>, StreamRun>,
    pub commands: HashMap<Box<str>, CommandRecord>,
    /// By [`stable_hash`] of the id (the id itself is in the log): readers
    /// drop the events of another id that shares the hash.
    pub correlations: HashMap<u64, Vec<OffsetRun>>,
    /// Offset of event `i * SPARSE_STRIDE` of the segment at index `i`.
    pub sparse_offsets: Vec<u32>,
    /// Its timestamp.
    pub sparse_timestamps: Vec<u64>,
}

impl MemoryIndex {
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
}

/// A view of a segment's index contents, for lookups.
#[derive(Clone, Copy)]
pub(crate) enum ContentsView<'a> {
    Memory(&'a MemoryIndex),
}

/// A stream's events in one segment, as a view.
#[derive(Clone, Copy)]
pub(crate) enum StreamEvents<'a> {
    Memory(&'a StreamRun),
}

impl StreamEvents<'_> {
    pub fn first_version(&self) -> u64 {
        match self {
            StreamEvents::Memory(run) => run.first_version,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            StreamEvents::Memory(run) => run.offsets.len() as u64,
        }
    }

    /// The frame offset of the `i`th event (of version `first_version + i`).
    pub fn offset(&self, i: u64) -> Option<u32> {
        match self {
            StreamEvents::Memory(run) => usize::try_from(i)
                .ok()
                .and_then(|i| run.offsets.get(i))
                .copied(),
        }
    }
}

impl<'a> ContentsView<'a> {
    /// The events of `stream` in the segment, if it has any.
    pub fn stream(self, stream: &str) -> Option<StreamEvents<'a>> {
        match self {
            ContentsView::Memory(memory) => memory.streams.get(stream).map(StreamEvents::Memory),
        }
    }

    /// What the batch with `command_id` in this segment wrote.
    pub fn command(self, command_id: &str) -> Option<CommandRecord> {
        match self {
            ContentsView::Memory(memory) => memory.commands.get(command_id).cloned(),
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
        }
    }

    /// The offset of event `i * SPARSE_STRIDE` of the segment.
    pub fn sparse_offset(self, i: u64) -> Option<u32> {
        let i = usize::try_from(i).ok()?;
        match self {
            ContentsView::Memory(memory) => memory.sparse_offsets.get(i).copied(),
        }
    }

    /// The timestamp of event `i * SPARSE_STRIDE` of the segment.
    pub fn sparse_timestamp(self, i: u64) -> Option<u64> {
        let i = usize::try_from(i).ok()?;
        match self {
            ContentsView::Memory(memory) => memory.sparse_timestamps.get(i).copied(),
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

    /// Position right after the segment's last event.
    pub fn end_position(&self) -> u64 {
        self.base_position + self.event_count
    }

    /// The contents, for lookups.
    pub fn view(&self) -> ContentsView<'_> {
        match &self.contents {
            Contents::Memory(memory) => ContentsView::Memory(memory),
        }
    }

    /// The contents being built: only the newest segment's are.
    fn memory_mut(&mut self) -> &mut MemoryIndex {
        match &mut self.contents {
            Contents::Memory(memory) => memory,
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
    pub fn correlated_runs(&self, ordinal: usize, hash: u64, out: &mut Vec<Run>) {
        self.view().correlated(hash, |run| {
            out.push(Run {
                first: Location::new(ordinal, run.offset as usize),
                count: run.count,
            });
        });
    }

    pub fn heap_bytes(&self) -> usize {
        size_of::<SegmentIndex>()
            + match &self.contents {
                Contents::Memory(memory) => size_of::<MemoryIndex>() + memory.heap_bytes(),
            }
    }

    pub fn shrink_to_fit(&mut self) {
        match &mut self.contents {
            Contents::Memory(memory) => memory.shrink_to_fit(),
        }
    }
}
