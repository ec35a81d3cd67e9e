//! The index: every stream's current version and the segments holding its
//! events (the stream table), and per segment where its events are by
//! stream, command id, correlation id and position ([`segment`]).
//!
//! Heap memory: per stream, its name, its version and a list of the sealed
//! segments holding its events (about a byte per segment, see
//! [`crate::format::segment_list`]); per segment a fixed record; and the
//! newest segment's contents (a 4-byte offset per event, a few bytes per
//! command and correlation run). A sealed segment's contents stay on the
//! heap only until its index file is written or found.

pub(crate) mod segment;

use std::collections::HashMap;

use crate::format::index_file::stable_hash;
use crate::format::segment_list;
use crate::format::stream_metadata::StreamMetadata;
use crate::format::{CHAIN_LEN, chain};
use crate::system_streams::{METADATA_STREAM_PREFIX, stream_of_metadata_stream};

pub(crate) use segment::{LateFindings, MappedIndex, MemoryIndex, SegmentIndex};

use crate::error::{Error, Result};

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

/// What an earlier append with a command id wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandRecord {
    pub stream: Box<str>,
    pub first_version: u64,
    pub first_position: u64,
    pub event_count: u64,
}

/// A stream's entry in the stream table.
#[derive(Debug, Default)]
pub(crate) struct StreamEntry {
    /// The stream's current version: its number of events.
    pub version: u64,
    /// Ordinals of the segments before the newest that hold its events,
    /// ascending, in the [`segment_list`] encoding.
    pub segments: Vec<u8>,
    /// The last ordinal in `segments`.
    pub last_listed: Option<u32>,
}

impl StreamEntry {
    /// The segments holding the stream's events: the listed ones, then the
    /// newest (`newest`) if it is not listed (it may not hold any).
    fn segments(&self, newest: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let unlisted = newest.filter(|&n| self.last_listed.is_none_or(|l| (l as usize) < n));
        segment_list::iter(&self.segments)
            .map(|o| o as usize)
            .chain(unlisted)
    }
}

/// Maps keyed by stream ids and command ids: foldhash, seeded randomly
/// per map (so collisions cannot be planned), several times faster than
/// SipHash on short ids; loading the stream table is most of an open.
pub(crate) type IdMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// What the newest `$metadata` event of a stream's metadata stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataState {
    /// It decoded.
    Known(StreamMetadata),
    /// It could not be decoded or read: the stream is neither read nor
    /// appended to (failing closed: a deletion must never be undone by a
    /// bad byte), with this detail ([`Error::InvalidStreamMetadata`]).
    Invalid {
        /// The version of the metadata event in the metadata stream.
        metadata_version: u64,
        /// Why it is unusable.
        detail: String,
    },
}

impl MetadataState {
    /// The metadata of `stream` as it rules reads and appends: the one
    /// place that says a deleted stream and unusable metadata are errors.
    ///
    /// # Errors
    /// [`Error::StreamDeleted`] for a deleted stream;
    /// [`Error::InvalidStreamMetadata`] when the metadata is unusable.
    pub fn live(&self, stream: &str) -> Result<StreamMetadata> {
        match self {
            MetadataState::Known(metadata) if metadata.deleted => Err(Error::StreamDeleted {
                stream: stream.to_string(),
            }),
            MetadataState::Known(metadata) => Ok(*metadata),
            MetadataState::Invalid {
                metadata_version,
                detail,
            } => Err(Error::InvalidStreamMetadata {
                stream: stream.to_string(),
                metadata_version: *metadata_version,
                detail: detail.clone(),
            }),
        }
    }
}

/// The whole index.
#[derive(Debug)]
pub(crate) struct Index {
    streams: IdMap<StreamEntry>,
    /// Truncation and deletion, per stream that has metadata (keyed by the
    /// stream's name, not its metadata stream's): usually empty, so that
    /// checking it costs an append nothing but `is_empty`.
    metadata: IdMap<MetadataState>,
    /// Metadata streams that got events since the engine last learned
    /// their metadata (`engine::stream_metadata::learn`): set by every
    /// path that adds streams (append, open's walk, the checkpoint's
    /// stream table, a follower's refresh), so none needs its own rule.
    metadata_changed: IdMap<()>,
    pub segments: Vec<SegmentIndex>,
    /// Index files found damaged on first use (and rebuilt).
    pub late_findings: LateFindings,
    /// The store's index checkpoint, named by errors about it.
    checkpoint_path: std::path::PathBuf,
    /// Ordinal of the first segment kept: those before were retired while
    /// the store was open (their slots stay, empty, so that ordinals held
    /// by the writer and durability do not move).
    retained_from: usize,
    /// The cut the retention manifest records, once the log was cut
    /// (segments retired, now or before this open): a stream's events
    /// before its first kept one are gone, and what the retired events
    /// leave behind (versions, metadata, erasures, the last timestamp) is
    /// the anchor's.
    anchor: Option<std::sync::Arc<crate::log::retention::Anchor>>,
}

impl Index {
    /// An empty index of the store in `dir`: no segments, the chain at its
    /// genesis value.
    pub fn new(dir: &std::path::Path) -> Index {
        Index {
            checkpoint_path: dir.join(crate::format::checkpoint::CHECKPOINT_FILE_NAME),
            streams: IdMap::default(),
            metadata: IdMap::default(),
            metadata_changed: IdMap::default(),
            segments: Vec::new(),
            late_findings: LateFindings::default(),
            retained_from: 0,
            anchor: None,
        }
    }

    /// Starts the index of a log that begins at a cut: each stream with
    /// retired events at its version there, with no segments listed.
    pub fn anchored(&mut self, anchor: &std::sync::Arc<crate::log::retention::Anchor>) {
        assert!(self.segments.is_empty(), "the cut comes before any segment");
        self.set_cut(anchor);
        self.streams.reserve(anchor.streams.len());
        for (name, &version) in &anchor.streams {
            self.note_if_metadata_stream(name);
            self.streams.insert(
                name.clone(),
                StreamEntry {
                    version,
                    ..StreamEntry::default()
                },
            );
        }
    }

    /// Marks the log as cut where `anchor` says (an open from scratch or
    /// from a checkpoint after a retirement; a retirement made or followed
    /// now, before [`Index::retire_before`]).
    pub fn set_cut(&mut self, anchor: &std::sync::Arc<crate::log::retention::Anchor>) {
        self.anchor = Some(std::sync::Arc::clone(anchor));
    }

    /// The cut the retention manifest records, if the log was cut.
    pub fn anchor(&self) -> Option<&crate::log::retention::Anchor> {
        self.anchor.as_deref()
    }

    /// The data of `metadata_stream`'s newest `$metadata` event before the
    /// cut, as the retention manifest records it: where the metadata is
    /// when that event was retired.
    pub fn metadata_at_cut(&self, metadata_stream: &str) -> Option<&[u8]> {
        self.anchor()?
            .metadata
            .get(metadata_stream)
            .map(Vec::as_slice)
    }

    /// Forgets the segments before ordinal `keep_from` (retired now): their
    /// contents leave the heap, the stream table stops listing them, and
    /// reads start at `keep_from`. The segments stay as empty slots.
    pub fn retire_before(&mut self, keep_from: usize) {
        assert!(self.anchor.is_some(), "the cut is set first");
        assert!(
            keep_from >= self.retained_from && keep_from < self.segments.len(),
            "only sealed segments after those retired before can be retired"
        );
        if keep_from == self.retained_from {
            return;
        }
        let first_kept = u32::try_from(keep_from).expect("segment ordinals fit u32");
        for entry in self.streams.values_mut() {
            if entry.last_listed.is_none()
                || segment_list::iter(&entry.segments).next() >= Some(first_kept)
            {
                continue;
            }
            let mut kept = Vec::new();
            let mut last = None;
            for ordinal in segment_list::iter(&entry.segments).filter(|&o| o >= first_kept) {
                segment_list::push(&mut kept, last, ordinal);
                last = Some(ordinal);
            }
            entry.segments = kept;
            entry.last_listed = last;
        }
        for segment in &mut self.segments[self.retained_from..keep_from] {
            segment.contents = segment::Contents::Memory(Box::default());
        }
        self.retained_from = keep_from;
    }

    /// Timestamp of the last retired event (0 if none).
    pub fn cut_timestamp_ns(&self) -> u64 {
        self.anchor().map_or(0, |anchor| anchor.last_timestamp_ns)
    }

    /// Each stream's version before the segment `ordinal`, sorted by name:
    /// streams with no event before it left out.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when an index file and its segment are damaged.
    pub fn versions_before(&self, ordinal: usize) -> Result<Vec<(String, u64)>> {
        let mut later: HashMap<&str, u64> = HashMap::new();
        for segment in &self.segments[ordinal..] {
            let view = segment.view()?;
            let mut names = Vec::new();
            view.for_each_stream(|name| names.push(name.to_string()));
            for name in names {
                let count = view.stream(&name).map_or(0, |events| events.len());
                if let Some((key, _)) = self.streams.get_key_value(name.as_str()) {
                    *later.entry(key).or_default() += count;
                }
            }
        }
        let mut versions: Vec<(String, u64)> = self
            .streams
            .iter()
            .filter_map(|(name, entry)| {
                let version = entry.version - later.get(&**name).copied().unwrap_or(0);
                (version > 0).then(|| (name.to_string(), version))
            })
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Ordinal of the first segment kept (0 unless segments were retired
    /// while the store was open).
    pub fn retained_from(&self) -> usize {
        self.retained_from
    }

    /// Position of the first event kept: where reading the log starts.
    pub fn start_position(&self) -> u64 {
        self.segments
            .get(self.retained_from)
            .map_or(0, |segment| segment.base_position)
    }

    /// Current version of `stream` (0 when it does not exist).
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |entry| entry.version)
    }

    /// Every stream with its entry, in no particular order.
    pub fn streams(&self) -> impl Iterator<Item = (&Box<str>, &StreamEntry)> {
        self.streams.iter()
    }

    /// Makes room for `additional` more streams (before loading them).
    pub fn reserve_streams(&mut self, additional: usize) {
        self.streams.reserve(additional);
    }

    /// Adds a stream loaded from a checkpoint.
    pub fn insert_stream(&mut self, name: &str, entry: StreamEntry) {
        self.note_if_metadata_stream(name);
        self.streams.insert(name.into(), entry);
    }

    /// Remembers that `stream`, if it is a metadata stream, has new events
    /// whose metadata the engine must learn. A byte comparison for every
    /// other stream.
    fn note_if_metadata_stream(&mut self, stream: &str) {
        if stream.starts_with(METADATA_STREAM_PREFIX) {
            self.metadata_changed.insert(stream.into(), ());
        }
    }

    /// Whether a metadata stream got events since the last
    /// [`Index::take_changed_metadata_streams`].
    pub fn has_changed_metadata_streams(&self) -> bool {
        !self.metadata_changed.is_empty()
    }

    /// The metadata streams that got events since the last call.
    pub fn take_changed_metadata_streams(&mut self) -> Vec<Box<str>> {
        self.metadata_changed
            .drain()
            .map(|(name, ())| name)
            .collect()
    }

    /// Records what `metadata_stream`'s newest metadata event says
    /// (`None`: it has none).
    pub fn set_metadata(&mut self, metadata_stream: &str, state: Option<MetadataState>) {
        let Some(stream) = stream_of_metadata_stream(metadata_stream) else {
            return;
        };
        match state {
            Some(state) => {
                self.metadata.insert(stream.into(), state);
            }
            None => {
                self.metadata.remove(stream);
            }
        }
    }

    /// The metadata of `stream`, if it has any.
    pub fn metadata(&self, stream: &str) -> Option<&MetadataState> {
        if self.metadata.is_empty() {
            return None;
        }
        self.metadata.get(stream)
    }

    /// The metadata of `stream` as it rules reads and appends: `Ok(None)`
    /// without any.
    ///
    /// # Errors
    /// As [`MetadataState::live`].
    pub fn live_metadata(&self, stream: &str) -> Result<Option<StreamMetadata>> {
        self.metadata(stream)
            .map(|state| state.live(stream))
            .transpose()
    }

    /// The first version a read of `stream` returns: 1, or where it was
    /// truncated. The one rule every stream read (forward, backward,
    /// scans, subscriptions) applies.
    ///
    /// # Errors
    /// As [`Index::live_metadata`].
    pub fn first_readable_version(&self, stream: &str) -> Result<u64> {
        Ok(self
            .live_metadata(stream)?
            .map_or(1, |metadata| metadata.first_readable_version()))
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Hash-chain value after the last batch (the genesis value for an
    /// empty store): the newest segment's.
    pub fn chain_head(&self) -> [u8; CHAIN_LEN] {
        self.segments
            .last()
            .map_or(chain::GENESIS, |segment| segment.chain_end)
    }

    /// Timestamp of the newest event (0 for an empty store): timestamps
    /// never decrease, so the newest segment with events has it.
    pub fn last_timestamp_ns(&self) -> u64 {
        self.segments
            .iter()
            .rev()
            .find(|segment| segment.event_count > 0)
            .map_or(self.cut_timestamp_ns(), |segment| segment.last_timestamp_ns)
    }

    /// Position the next appended event will get.
    pub fn next_position(&self) -> u64 {
        self.segments.last().map_or(0, SegmentIndex::end_position)
    }

    /// Starts the next segment at `base_position`, its chain at
    /// `chain_start`: the streams of the segment before it, complete now,
    /// are listed in the stream table. (Its contents are still in memory
    /// then: its index file, if any, is mapped after; a segment mapped from
    /// the start was listed by the checkpoint.)
    pub fn start_segment(&mut self, base_position: u64, chain_start: [u8; CHAIN_LEN]) {
        if let Some(previous) = self.segments.len().checked_sub(1) {
            self.list_segment(previous);
        }
        self.segments
            .push(SegmentIndex::new(base_position, chain_start));
    }

    /// Lists the streams of segment `ordinal`, complete now and indexed in
    /// memory, in the stream table; done before its contents move to an
    /// index file. Listing a segment twice changes nothing.
    pub fn list_segment(&mut self, ordinal: usize) {
        let Some(memory) = self.segments[ordinal].memory() else {
            return;
        };
        let ordinal = u32::try_from(ordinal).expect("segment ordinals fit u32");
        let streams = &mut self.streams;
        segment::ContentsView::Memory(memory).for_each_stream(|name| {
            let entry = streams
                .get_mut(name)
                .expect("a stream of a segment is in the stream table");
            if entry.last_listed.is_none_or(|last| last < ordinal) {
                segment_list::push(&mut entry.segments, entry.last_listed, ordinal);
                entry.last_listed = Some(ordinal);
            }
        });
    }

    /// Records the events of one batch in the newest segment: consecutive
    /// events of `stream`, the first at `first_version` and
    /// `first_position`, each given as its frame offset, correlation id and
    /// timestamp. The caller has checked that `first_position` is the next
    /// position and `first_version` the stream's next version.
    ///
    /// The stream is looked up once per batch, not once per event: on open
    /// that hashing was a tenth of the index rebuild.
    pub fn add_batch<'a>(
        &mut self,
        stream: &str,
        first_version: u64,
        first_position: u64,
        events: impl IntoIterator<Item = (u32, Option<&'a str>, u64)>,
    ) {
        self.note_if_metadata_stream(stream);
        let segment = self.segments.last_mut().expect("a segment exists");
        assert_eq!(
            first_position,
            segment.end_position(),
            "positions are consecutive"
        );
        let entry = match self.streams.get_mut(stream) {
            Some(entry) => entry,
            None => self.streams.entry(stream.into()).or_default(),
        };
        assert_eq!(entry.version + 1, first_version, "versions are consecutive");
        entry.version += segment.add_events(stream, first_version, events);
    }

    /// Records the end of a batch in the newest segment.
    pub fn end_batch(
        &mut self,
        end_offset: usize,
        chain: [u8; CHAIN_LEN],
        command: Option<(&str, CommandRecord)>,
    ) {
        let segment = self.segments.last_mut().expect("a segment exists");
        segment.end_batch(end_offset, chain, command);
    }

    /// What the append with `command_id` wrote, if any: newest segment first.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when an index file and its segment are damaged.
    pub fn command(&self, command_id: &str) -> Result<Option<CommandRecord>> {
        for segment in self.segments[self.retained_from..].iter().rev() {
            if let Some(record) = segment.view()?.command(command_id) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Locations of `stream`'s events with versions in `from..to`
    /// (versions start at 1), in version order. Versions past the stream's
    /// end are left out.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when an index file and its segment are
    /// damaged, or the index files disagree with the stream table.
    pub fn stream_locations(&self, stream: &str, from: u64, to: u64) -> Result<Vec<Location>> {
        let Some(entry) = self.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let mut from = from.max(1);
        let to = to.min(entry.version + 1);
        if from >= to {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0).min(1 << 16));
        let newest = self.segments.len().checked_sub(1);
        let ordinals: Vec<usize> = entry.segments(newest).collect();
        // Once the log was cut, a stream's events before its first kept one
        // are gone: reads start there.
        if self.anchor.is_some() {
            let first_kept = match ordinals.first() {
                Some(&ordinal) => self.segments[ordinal]
                    .view()?
                    .stream(stream)
                    .map_or(to, |events| events.first_version()),
                None => to,
            };
            if first_kept >= to {
                return Ok(Vec::new());
            }
            from = from.max(first_kept);
        }
        // The stream's runs ascend by version along its segments: a binary
        // search finds the first that reaches `from`, so that reading a page
        // of a long stream does not look at every segment before it.
        let mut failed = None;
        let start = ordinals.partition_point(|&ordinal| match self.segments[ordinal].view() {
            Ok(view) => view
                .stream(stream)
                .is_some_and(|events| events.first_version() + events.len() <= from),
            Err(error) => {
                failed.get_or_insert(error);
                false
            }
        });
        if let Some(error) = failed {
            return Err(error);
        }
        for &ordinal in &ordinals[start..] {
            let Some(events) = self.segments[ordinal].view()?.stream(stream) else {
                continue;
            };
            let first = events.first_version();
            let end = first.saturating_add(events.len());
            if end <= from {
                continue;
            }
            if first >= to {
                break;
            }
            for version in from.max(first)..to.min(end) {
                let offset = events
                    .offset(version - first)
                    .expect("the version lies in the segment's run");
                out.push(Location::new(ordinal, offset as usize));
            }
        }
        if out.len() as u64 != to - from {
            return Err(crate::error::Error::found(
                &self.checkpoint_path,
                0,
                None,
                crate::log::finding::FindingKind::IndexCheckpoint {
                    detail: format!(
                        "stream {stream:?} has version {} but the index files hold only {} of \
                         its versions {from}..{to}; open with Options::rebuild_index to rebuild \
                         the index from the log",
                        entry.version,
                        out.len()
                    ),
                },
            ));
        }
        Ok(out)
    }

    /// Runs of the events carrying `correlation_id`, in log order, which may
    /// hold a few events carrying another id with the same 64-bit hash: the
    /// caller checks each event's id.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when an index file and its segment are damaged.
    pub fn correlated(&self, correlation_id: &str) -> Result<Vec<Run>> {
        let hash = stable_hash(correlation_id.as_bytes());
        let mut out = Vec::new();
        for (ordinal, segment) in self.segments.iter().enumerate().skip(self.retained_from) {
            segment.correlated_runs(ordinal, hash, &mut out)?;
        }
        Ok(out)
    }

    /// The segment holding `position`, as its ordinal, if any.
    pub fn segment_of_position(&self, position: u64) -> Option<usize> {
        let kept = &self.segments[self.retained_from..];
        let ordinal = self.retained_from
            + kept
                .partition_point(|s| s.base_position <= position)
                .checked_sub(1)?;
        (position < self.segments[ordinal].end_position()).then_some(ordinal)
    }

    /// Releases spare capacity after a rebuild.
    pub fn shrink_to_fit(&mut self) {
        for entry in self.streams.values_mut() {
            entry.segments.shrink_to_fit();
        }
        self.streams.shrink_to_fit();
        for segment in &mut self.segments {
            segment.shrink_to_fit();
        }
        self.segments.shrink_to_fit();
    }

    /// Bytes of heap memory the index holds (an estimate from capacities).
    pub fn heap_bytes(&self) -> usize {
        let streams: usize = self
            .streams
            .iter()
            .map(|(name, entry)| name.len() + entry.segments.capacity())
            .sum::<usize>()
            + self.streams.capacity() * (size_of::<(Box<str>, StreamEntry)>() + 1)
            + self.metadata.keys().map(|name| name.len()).sum::<usize>()
            + self.metadata.capacity() * (size_of::<(Box<str>, MetadataState)>() + 1);
        let segments: usize = self.segments.iter().map(SegmentIndex::heap_bytes).sum();
        streams + segments
    }
}
