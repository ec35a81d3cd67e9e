//! The in-memory index, rebuilt from the log on open: where each stream's
//! events live, and where each global position lives.
//!
//! Memory per event: one 8-byte [`Location`] in its stream's vector, plus a
//! 4-byte offset for every [`POSITION_INDEX_STRIDE`]th event of a segment.
//! Per stream: its name and a vector header.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// One in this many events of a segment has its offset recorded in
/// [`SegmentIndex::sparse_offsets`]; reading from a position steps over at
/// most `POSITION_INDEX_STRIDE - 1` frames after the recorded one.
pub(crate) const POSITION_INDEX_STRIDE: u64 = 16;

/// Where an event's frame is: segment ordinal (high 32 bits) and byte offset
/// within the segment (low 32 bits). Offsets fit because segments are at most
/// 2 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location(u64);

impl Location {
    pub fn new(segment: usize, offset: usize) -> Location {
        assert!(segment <= u32::MAX as usize && offset <= u32::MAX as usize);
        Location(((segment as u64) << 32) | offset as u64)
    }

    pub fn segment(self) -> usize {
        (self.0 >> 32) as usize
    }

    pub fn offset(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }
}

/// Consecutive events of one batch: the location of the first and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub first: Location,
    pub count: u32,
}

/// Where the events of one correlation id are, as runs. Most ids belong to
/// one command, so one batch: that single run is kept inline, without a
/// heap allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CorrelationRuns {
    One(Run),
    Many(Vec<Run>),
}

impl CorrelationRuns {
    /// Adds the event at `location`: to the last run if it directly follows
    /// it in the same batch (`continues_run`), else as a new run.
    fn push(&mut self, location: Location, continues_run: bool) {
        let new = Run {
            first: location,
            count: 1,
        };
        match self {
            CorrelationRuns::One(run) if continues_run => run.count += 1,
            CorrelationRuns::One(run) => *self = CorrelationRuns::Many(vec![*run, new]),
            CorrelationRuns::Many(runs) => match runs.last_mut() {
                Some(run) if continues_run => run.count += 1,
                _ => runs.push(new),
            },
        }
    }

    /// The runs, in log order.
    pub fn runs(&self) -> &[Run] {
        match self {
            CorrelationRuns::One(run) => std::slice::from_ref(run),
            CorrelationRuns::Many(runs) => runs,
        }
    }
}

/// Per-segment facts the read paths need.
#[derive(Debug, Clone)]
pub(crate) struct SegmentIndex {
    /// Position of the segment's first event.
    pub base_position: u64,
    /// Events in the segment so far.
    pub event_count: u64,
    /// Batches in the segment so far.
    pub batch_count: u64,
    /// Offset right after the last complete batch.
    pub end_offset: usize,
    /// Offset of event `base_position + i * POSITION_INDEX_STRIDE` at index `i`.
    pub sparse_offsets: Vec<u32>,
}

impl SegmentIndex {
    pub fn new(base_position: u64) -> SegmentIndex {
        SegmentIndex {
            base_position,
            event_count: 0,
            batch_count: 0,
            end_offset: crate::format::SEGMENT_HEADER_LEN,
            sparse_offsets: Vec::new(),
        }
    }

    /// Position right after the segment's last event.
    pub fn end_position(&self) -> u64 {
        self.base_position + self.event_count
    }
}

/// What an earlier append with a command id wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandRecord {
    pub stream: Box<str>,
    pub first_version: u64,
    pub first_position: u64,
    pub event_count: u64,
}

/// The whole index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    streams: HashMap<Box<str>, Vec<Location>>,
    commands: HashMap<Box<str>, CommandRecord>,
    /// Correlation id (by its 64-bit hash: the id itself is in the log) to
    /// the locations of its events. Readers drop the events of another id
    /// that shares the hash.
    correlations: HashMap<u64, CorrelationRuns>,
    /// Hashes correlation ids; random per index, so collisions cannot be
    /// planned.
    correlation_hasher: std::hash::RandomState,
    pub segments: Vec<SegmentIndex>,
    /// Timestamp of the newest event (0 for an empty store).
    pub last_timestamp_ns: u64,
    /// Hash-chain value after the last batch.
    pub chain_head: [u8; crate::format::CHAIN_LEN],
}

impl Index {
    /// An empty index: no segments, the chain at its genesis value.
    pub fn new() -> Index {
        Index {
            chain_head: crate::format::chain::GENESIS,
            ..Index::default()
        }
    }

    /// Current version of `stream` (0 when it does not exist).
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |l| l.len() as u64)
    }

    /// Locations of `stream`'s events, version 1 first.
    pub fn stream_locations(&self, stream: &str) -> &[Location] {
        self.streams.get(stream).map_or(&[], |l| l.as_slice())
    }

    /// Locations of `stream`'s events from version `from_version` on
    /// (versions start at 1; 0 reads as 1; past the end is empty).
    pub fn stream_locations_from(&self, stream: &str, from_version: u64) -> &[Location] {
        let locations = self.stream_locations(stream);
        let start = usize::try_from(from_version.max(1) - 1)
            .unwrap_or(usize::MAX)
            .min(locations.len());
        &locations[start..]
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Position the next appended event will get.
    pub fn next_position(&self) -> u64 {
        self.segments.last().map_or(0, SegmentIndex::end_position)
    }

    /// What the append with `command_id` wrote, if any.
    pub fn command(&self, command_id: &str) -> Option<&CommandRecord> {
        self.commands.get(command_id)
    }

    /// Records the events of one batch: consecutive events of `stream`, the
    /// first at `first_version` and `first_position`, each given as its
    /// location and correlation id. The caller has checked that
    /// `first_position` is the next position and `first_version` the
    /// stream's next version.
    ///
    /// The stream is looked up once per batch, not once per event: on open
    /// that hashing was a tenth of the index rebuild.
    pub fn add_batch<'a>(
        &mut self,
        stream: &str,
        first_version: u64,
        first_position: u64,
        events: impl IntoIterator<Item = (Location, Option<&'a str>)>,
    ) {
        let newest = self
            .segments
            .len()
            .checked_sub(1)
            .expect("a segment exists");
        let segment = &mut self.segments[newest];
        assert_eq!(
            first_position,
            segment.end_position(),
            "positions are consecutive"
        );
        let stream_locations = match self.streams.get_mut(stream) {
            Some(stream_locations) => stream_locations,
            None => self.streams.entry(stream.into()).or_default(),
        };
        assert_eq!(
            stream_locations.len() as u64 + 1,
            first_version,
            "versions are consecutive"
        );
        // Consecutive events of this batch with the same correlation id form
        // one run.
        let mut previous_key = None;
        for (location, correlation_id) in events {
            assert_eq!(
                location.segment(),
                newest,
                "events go to the newest segment"
            );
            let position = segment.end_position();
            if (position - segment.base_position).is_multiple_of(POSITION_INDEX_STRIDE) {
                segment.sparse_offsets.push(location.offset() as u32);
            }
            segment.event_count += 1;
            stream_locations.push(location);
            match correlation_id {
                Some(id) => {
                    let key = self.correlation_hasher.hash_one(id);
                    let continues_run = previous_key == Some(key);
                    match self.correlations.get_mut(&key) {
                        Some(runs) => runs.push(location, continues_run),
                        None => {
                            self.correlations.insert(
                                key,
                                CorrelationRuns::One(Run {
                                    first: location,
                                    count: 1,
                                }),
                            );
                        }
                    }
                    previous_key = Some(key);
                }
                None => previous_key = None,
            }
        }
    }

    /// Runs of the events carrying `correlation_id`, in log order, which may
    /// hold a few events carrying another id with the same 64-bit hash: the
    /// caller checks each event's id.
    pub fn correlated(&self, correlation_id: &str) -> &[Run] {
        let key = self.correlation_hasher.hash_one(correlation_id);
        self.correlations
            .get(&key)
            .map_or(&[], CorrelationRuns::runs)
    }

    /// Records the end of a batch.
    pub fn end_batch(
        &mut self,
        end_offset: usize,
        timestamp_ns: u64,
        chain: [u8; 32],
        command: Option<(&str, CommandRecord)>,
    ) {
        let segment = self.segments.last_mut().expect("a segment exists");
        segment.batch_count += 1;
        segment.end_offset = end_offset;
        self.last_timestamp_ns = self.last_timestamp_ns.max(timestamp_ns);
        self.chain_head = chain;
        if let Some((id, record)) = command {
            self.commands.insert(id.into(), record);
        }
    }

    /// The segment holding `position`, as (ordinal, index), if any.
    pub fn segment_of_position(&self, position: u64) -> Option<usize> {
        let ordinal = self
            .segments
            .partition_point(|s| s.base_position <= position)
            .checked_sub(1)?;
        (position < self.segments[ordinal].end_position()).then_some(ordinal)
    }

    /// Releases spare capacity after a rebuild.
    pub fn shrink_to_fit(&mut self) {
        for locations in self.streams.values_mut() {
            locations.shrink_to_fit();
        }
        self.streams.shrink_to_fit();
        self.commands.shrink_to_fit();
        for runs in self.correlations.values_mut() {
            if let CorrelationRuns::Many(runs) = runs {
                runs.shrink_to_fit();
            }
        }
        self.correlations.shrink_to_fit();
    }

    /// Bytes of heap memory the index holds (an estimate from capacities).
    pub fn heap_bytes(&self) -> usize {
        let per_entry = std::mem::size_of::<(Box<str>, Vec<Location>)>() + 1;
        let streams: usize = self
            .streams
            .iter()
            .map(|(name, locations)| {
                name.len() + locations.capacity() * std::mem::size_of::<Location>()
            })
            .sum::<usize>()
            + self.streams.capacity() * per_entry;
        let commands: usize = self
            .commands
            .iter()
            .map(|(id, record)| id.len() + record.stream.len())
            .sum::<usize>()
            + self.commands.capacity() * (std::mem::size_of::<(Box<str>, CommandRecord)>() + 1);
        let correlations: usize = self
            .correlations
            .values()
            .map(|runs| match runs {
                CorrelationRuns::One(_) => 0,
                CorrelationRuns::Many(runs) => runs.capacity() * std::mem::size_of::<Run>(),
            })
            .sum::<usize>()
            + self.correlations.capacity() * (std::mem::size_of::<(u64, CorrelationRuns)>() + 1);
        let segments: usize = self
            .segments
            .iter()
            .map(|s| s.sparse_offsets.capacity() * 4)
            .sum::<usize>()
            + self.segments.capacity() * std::mem::size_of::<SegmentIndex>();
        streams + commands + correlations + segments
    }
}
