//! Shared machinery of the crash, power-loss, corruption and fault tests: a
//! seeded random generator, self-describing events (each event's data says
//! which batch it belongs to, so a checker needs no record of what was
//! written), and checkers for the invariants every recovered store must hold.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use annals::format::footer::{FooterState, SegmentFooter};
use annals::format::header::SegmentHeader;
use annals::format::scan::{self, BatchRead};
use annals::format::{self, FOOTER_LEN, SEGMENT_HEADER_LEN};
use annals::{EventData, RecordedEvent, Store, Uuid};

/// SplitMix64: small, fast, and good enough to drive tests reproducibly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            *b = self.next_u64() as u8;
        }
    }

    /// An independent generator derived from this one.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// The SplitMix64 output function.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of a randomized test: `ANNALS_SEED` if set, otherwise drawn from
/// the clock. Printed, so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("ANNALS_SEED") {
        Ok(text) => text.parse().expect("ANNALS_SEED is a u64"),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            mix(now.as_nanos() as u64 ^ u64::from(std::process::id()))
        }
    };
    eprintln!("{test}: seed {seed} (replay with ANNALS_SEED={seed})");
    seed
}

/// A count scaled for the long (`#[ignore]`d) variants: `ANNALS_SCALE`
/// multiplies it (default 1).
pub fn scaled(count: u64) -> u64 {
    let scale: u64 = std::env::var("ANNALS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    count * scale.max(1)
}

/// A scratch directory on a RAM file system when there is one (these
/// directories are copies of simulated disks: real syncs add nothing).
pub fn ram_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Bytes before the filler in a self-describing event's data.
const DATA_HEADER_LEN: usize = 18;

/// Event `index` of `count` of batch `batch_id`: its data names the batch,
/// the index and the count, then a filler of `filler_len` bytes derived from
/// them, so any change to any byte is detected by [`decode_event`].
pub fn make_event(batch_id: u64, index: u32, count: u32, filler_len: usize) -> EventData {
    let mut data = Vec::with_capacity(DATA_HEADER_LEN + filler_len);
    data.extend_from_slice(b"AN");
    data.extend_from_slice(&batch_id.to_le_bytes());
    data.extend_from_slice(&index.to_le_bytes());
    data.extend_from_slice(&count.to_le_bytes());
    data.resize(DATA_HEADER_LEN + filler_len, 0);
    write_filler(batch_id, index, &mut data[DATA_HEADER_LEN..]);
    let id = Uuid::from_u64_pair(batch_id, mix(batch_id ^ u64::from(index)));
    let mut event = EventData::new(format!("T{count}"), data)
        .with_id(id)
        .with_correlation_id(format!("batch-{batch_id}"));
    if index % 2 == 1 {
        event = event.with_metadata(format!("meta-{batch_id}-{index}").into_bytes());
    }
    event
}

/// The filler of an event: eight bytes per hash, so that writing and
/// checking it stays cheap in debug builds.
fn write_filler(batch_id: u64, index: u32, out: &mut [u8]) {
    let seed = mix(batch_id.wrapping_mul(1_000_003) ^ (u64::from(index) << 40));
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        let word = mix(seed.wrapping_add(k as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

fn filler_matches(batch_id: u64, index: u32, filler: &[u8]) -> bool {
    let seed = mix(batch_id.wrapping_mul(1_000_003) ^ (u64::from(index) << 40));
    filler.chunks(8).enumerate().all(|(k, chunk)| {
        let word = mix(seed.wrapping_add(k as u64)).to_le_bytes();
        *chunk == word[..chunk.len()]
    })
}

/// A whole batch of self-describing events with random filler lengths.
pub fn make_batch(batch_id: u64, count: u32, max_filler: usize, rng: &mut Rng) -> Vec<EventData> {
    (0..count)
        .map(|i| {
            make_event(
                batch_id,
                i,
                count,
                rng.below(max_filler as u64 + 1) as usize,
            )
        })
        .collect()
}

/// What one self-describing event says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTag {
    pub batch_id: u64,
    pub index: u32,
    pub count: u32,
}

/// Decodes and checks a self-describing event: every byte and every field
/// must be what [`make_event`] wrote. Returns what the event says, or what is
/// wrong with it.
pub fn decode_event(event: &RecordedEvent) -> Result<EventTag, String> {
    let data = &event.data;
    if data.len() < DATA_HEADER_LEN || &data[..2] != b"AN" {
        return Err(format!(
            "event at position {} has foreign data",
            event.position
        ));
    }
    let batch_id = u64::from_le_bytes(data[2..10].try_into().unwrap());
    let index = u32::from_le_bytes(data[10..14].try_into().unwrap());
    let count = u32::from_le_bytes(data[14..18].try_into().unwrap());
    let expected_metadata = if index % 2 == 1 {
        format!("meta-{batch_id}-{index}").into_bytes()
    } else {
        Vec::new()
    };
    let matches = filler_matches(batch_id, index, &data[DATA_HEADER_LEN..])
        && event.event_type == format!("T{count}")
        && event.metadata == expected_metadata
        && event.correlation_id == Some(format!("batch-{batch_id}"))
        && event.causation_id.is_none()
        && event.id == Uuid::from_u64_pair(batch_id, mix(batch_id ^ u64::from(index)))
        && index < count;
    if !matches {
        return Err(format!(
            "event at position {} (batch {batch_id}, {index} of {count}) does not match what was written",
            event.position
        ));
    }
    Ok(EventTag {
        batch_id,
        index,
        count,
    })
}

/// One batch as found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenBatch {
    pub batch_id: u64,
    pub stream: String,
    pub first_version: u64,
    pub first_position: u64,
    pub count: u32,
}

/// Reads the whole log of `store` and checks every invariant a store holds
/// whatever happened to it before open:
/// - positions run 0, 1, 2, ... with no gap;
/// - every event is exactly what was written (self-describing data);
/// - every batch is whole: all its events, in order, consecutive, one stream
///   (no partial batch is visible), and no batch appears twice;
/// - each stream's versions run 1, 2, 3, ... and `read_stream` returns
///   exactly the stream's events of the log, forward and backward;
/// - timestamps never go backward;
/// - `read_all_backward` is `read_all` reversed.
///
/// Returns the batches in log order, or a description of the first violation.
pub fn check_log(store: &Store) -> Result<Vec<SeenBatch>, String> {
    let events = store
        .read_all(0, usize::MAX)
        .map_err(|e| format!("read_all failed: {e}"))?;
    let mut batches: Vec<SeenBatch> = Vec::new();
    let mut seen_ids = HashSet::new();
    let mut streams: BTreeMap<&str, Vec<&RecordedEvent>> = BTreeMap::new();
    let mut last_timestamp = 0;
    let mut open_batch: Option<(EventTag, u64)> = None; // (first tag, events seen)
    for (i, event) in events.iter().enumerate() {
        if event.position != i as u64 {
            return Err(format!(
                "event {i} of the log has position {}",
                event.position
            ));
        }
        if event.timestamp_ns < last_timestamp {
            return Err(format!(
                "timestamp goes backward at position {}",
                event.position
            ));
        }
        last_timestamp = event.timestamp_ns;
        let stream_events = streams.entry(&event.stream).or_default();
        if event.version != stream_events.len() as u64 + 1 {
            return Err(format!(
                "stream {:?} jumps from version {} to {} at position {}",
                event.stream,
                stream_events.len(),
                event.version,
                event.position
            ));
        }
        stream_events.push(event);
        let tag = decode_event(event)?;
        match open_batch {
            None => {
                if tag.index != 0 {
                    return Err(format!(
                        "position {} starts with event {} of batch {}: a partial batch is visible",
                        event.position, tag.index, tag.batch_id
                    ));
                }
                if !seen_ids.insert(tag.batch_id) {
                    return Err(format!(
                        "batch {} appears twice (again at position {})",
                        tag.batch_id, event.position
                    ));
                }
                batches.push(SeenBatch {
                    batch_id: tag.batch_id,
                    stream: event.stream.clone(),
                    first_version: event.version,
                    first_position: event.position,
                    count: tag.count,
                });
                open_batch = Some((tag, 1));
            }
            Some((first, seen)) => {
                let batch = batches.last().unwrap();
                if tag.batch_id != first.batch_id
                    || tag.index as u64 != seen
                    || tag.count != first.count
                    || event.stream != batch.stream
                {
                    return Err(format!(
                        "batch {} is cut short at position {} (by batch {} event {}): \
                         a partial batch is visible",
                        first.batch_id, event.position, tag.batch_id, tag.index
                    ));
                }
                open_batch = Some((first, seen + 1));
            }
        }
        if let Some((first, seen)) = open_batch
            && seen == u64::from(first.count)
        {
            open_batch = None;
        }
    }
    if let Some((first, seen)) = open_batch {
        return Err(format!(
            "the log ends inside batch {} ({seen} of {} events): a partial batch is visible",
            first.batch_id, first.count
        ));
    }
    if store.next_position() != events.len() as u64 {
        return Err(format!(
            "next_position is {} but the log holds {} events",
            store.next_position(),
            events.len()
        ));
    }
    for (stream, expected) in &streams {
        let read = store
            .read_stream(stream, 1, usize::MAX)
            .map_err(|e| format!("read_stream({stream:?}) failed: {e}"))?;
        if read.len() != expected.len() || read.iter().zip(expected).any(|(a, b)| a != *b) {
            return Err(format!(
                "read_stream({stream:?}) differs from the stream's events in read_all"
            ));
        }
        let backward = store
            .read_stream_backward(stream, u64::MAX, usize::MAX)
            .map_err(|e| format!("read_stream_backward({stream:?}) failed: {e}"))?;
        if !backward.iter().rev().eq(read.iter()) {
            return Err(format!(
                "read_stream_backward({stream:?}) is not read_stream reversed"
            ));
        }
        if store.stream_version(stream) != expected.len() as u64 {
            return Err(format!(
                "stream_version({stream:?}) is {} but the log holds {} of its events",
                store.stream_version(stream),
                expected.len()
            ));
        }
    }
    let backward = store
        .read_all_backward(u64::MAX, usize::MAX)
        .map_err(|e| format!("read_all_backward failed: {e}"))?;
    if !backward.iter().rev().eq(events.iter()) {
        return Err("read_all_backward is not read_all reversed".into());
    }
    Ok(batches)
}

/// Segment files of a store directory, in order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| format::parse_segment_file_name(n).is_some())
        })
        .collect();
    files.sort();
    files
}

/// Where the complete batches (sync markers included) of a segment's bytes
/// end, as the format's own scanner sees them.
pub fn batches_end(bytes: &[u8]) -> Option<usize> {
    let header = SegmentHeader::decode(bytes).ok()?;
    let data_end = bytes.len().checked_sub(FOOTER_LEN)?;
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) = scan::read_batch(
        bytes,
        header.salt,
        header.format_version,
        offset,
        data_end,
        &mut events,
    ) {
        offset = batch.end;
    }
    Some(offset)
}

/// Checks that recovery left no torn bytes behind: in the newest segment
/// file, every byte between the last complete batch and the footer is zero,
/// and the footer is either all zero or valid.
pub fn check_tail_zeroed(dir: &Path) -> Result<(), String> {
    let Some(newest) = segment_files(dir).pop() else {
        return Ok(());
    };
    let bytes = std::fs::read(&newest).map_err(|e| e.to_string())?;
    let end =
        batches_end(&bytes).ok_or_else(|| format!("{} has no valid header", newest.display()))?;
    let data_end = bytes.len() - FOOTER_LEN;
    if let Some(at) = bytes[end..data_end].iter().position(|&b| b != 0) {
        return Err(format!(
            "{}: non-zero byte at offset {} after the last complete batch (which ends at {end}): \
             the torn tail was not zeroed",
            newest.display(),
            end + at
        ));
    }
    if let FooterState::Invalid(why) = SegmentFooter::decode(&bytes[data_end..]) {
        return Err(format!("{}: footer left invalid: {why}", newest.display()));
    }
    Ok(())
}

/// Copies every file of `from` into `to` (a crash image of a live store:
/// what is in the page cache now).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            std::fs::write(to.join(entry.file_name()), bytes).unwrap();
        }
    }
}
