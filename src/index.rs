//! The in-memory index, rebuilt from the log on open: where each stream's
//! events live, and where each global position lives.
//!
//! Memory per event: one 8-byte [`Location`] in its stream's vector, plus a
//! 4-byte offset for every [`POSITION_INDEX_STRIDE`]th event of a segment.
//! Per stream: its name and a vector header.

use std::collections::HashMap;

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
    correlations: HashMap<Box<str>, Vec<Location>>,
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
            if let Some(id) = correlation_id {
                match self.correlations.get_mut(id) {
                    Some(locations) => locations.push(location),
                    None => {
                        self.correlations.insert(id.into(), vec![location]);
                    }
                }
            }
        }
    }

    /// Locations of the events carrying `correlation_id`, in log order.
    pub fn correlated(&self, correlation_id: &str) -> &[Location] {
        self.correlations
            .get(correlation_id)
            .map_or(&[], |l| l.as_slice())
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
        for locations in self.correlations.values_mut() {
            locations.shrink_to_fit();
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
            .iter()
            .map(|(id, locations)| {
                id.len() + locations.capacity() * std::mem::size_of::<Location>()
            })
            .sum::<usize>()
            + self.correlations.capacity() * per_entry;
        let segments: usize = self
            .segments
            .iter()
            .map(|s| s.sparse_offsets.capacity() * 4)
            .sum::<usize>()
            + self.segments.capacity() * std::mem::size_of::<SegmentIndex>();
        streams + commands + correlations + segments
    }
}
