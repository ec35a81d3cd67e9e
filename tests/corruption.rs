//! Corruption: random bit flips and byte overwrites in segment headers,
//! records, footers and the zeroed tail; zeroed ranges; truncated and
//! extended segment files; missing segments; stray temporary files.
//!
//! Every damaged store either opens, having discarded at most a torn tail of
//! the newest segment, and then returns exactly what was written, or is
//! refused with `Error::Corrupt` whose message names the damaged file and a
//! byte offset at or before the damage, leaving the segment files unchanged.
//! Never a panic, never wrong data. Where the format can tell damage from a
//! torn write (a later commit record or sync marker vouches for the damaged
//! bytes, or the damage is in a sealed segment or a header), it must refuse.
//!
//! The checks above hold for the opens that read every byte
//! (`Options::rebuild_index`, `Store::open_read_only_rebuilding_index`). The
//! default opens trust the index checkpoint for the records of sealed
//! segments (they check headers, chain links and footers): damage to a
//! sealed segment's event records is refused at open or when a read reaches
//! it, naming the damaged frame; damage only to bytes no read reaches there
//! (commit records, free space) leaves every event readable exactly as
//! written. Any other damage they judge exactly as the full-check opens.
//!
//! Every damaged store is also judged by all readers of the log (writable
//! and read-only opens, full-check and default, `verify`, `repair`), which
//! must agree, and a repaired store must be healthy for all of them.
//!
//! `cargo test --test corruption` tries about 1,200 damaged stores (640 random, 320 exhaustive bit flips, 180 judged by all readers);
//! `cargo test --test corruption -- --ignored` about 26,000.

mod crashkit;
mod refusal;

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use annals::format::{FOOTER_LEN, SEGMENT_HEADER_LEN};
use annals::hooks::{Hooks, StorageHooks};
use annals::{Durability, Error, ExpectedVersion, Options, RecordedEvent, Store};
use crashkit::Rng;
use refusal::Refusal;

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::Always)
}

/// `options()` for a writer that reads and checks every byte on open.
fn full_check() -> Options {
    options().rebuild_index(true)
}

/// How the base store was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseKind {
    /// Copied while open, as a crash leaves it: no sync marker, so the last
    /// batch is vouched for by nothing after it.
    Crashed,
    /// Closed cleanly: a sync marker vouches for every batch.
    Closed,
    /// The disk filled up during a roll: the newest segment is sealed and
    /// has no successor.
    SealedNewest,
}

/// A hook that fails every allocation while `full` is set.
#[derive(Default)]
struct FullDisk {
    full: AtomicBool,
}

impl StorageHooks for FullDisk {
    fn before_allocate(&self, _path: &Path, _bytes: u64) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }
}

/// A store to damage, and what it holds.
struct Base {
    kind: BaseKind,
    dir: tempfile::TempDir,
    events: Vec<RecordedEvent>,
    /// The batches of the newest segment: start, end, events.
    newest_batches: Vec<BatchSpan>,
    /// The newest segment's durable mark: every byte below it was synced.
    newest_durable_end: usize,
    /// Segment file names in order, with the offset where their batches end.
    segments: Vec<(String, usize)>,
    /// Per segment, the bytes of each frame (padding included): a read of
    /// the whole log checks each.
    frames: Vec<Vec<Range<usize>>>,
    /// How many segments, from the first, the index checkpoint covers as
    /// sealed: a default open does not read their records.
    checkpointed_sealed: usize,
}

impl Base {
    fn build(kind: BaseKind, rng: &mut Rng) -> Base {
        let dir = crashkit::ram_dir();
        let live = dir.path().join("live");
        let disk = Arc::new(FullDisk::default());
        let mut opts = options();
        opts.hooks = Hooks::new(disk.clone());
        let store = Store::open(&live, opts).unwrap();
        let batches = rng.range(150, 250);
        for id in 0..batches {
            let stream = format!("s-{}", rng.below(6));
            let count = rng.range(1, 5) as u32;
            let events = crashkit::make_batch(id, count, 1_200, rng);
            store
                .append(&stream, ExpectedVersion::Any, &events)
                .unwrap();
        }
        let image = dir.path().join("base");
        match kind {
            BaseKind::Crashed => crashkit::copy_dir(&live, &image),
            BaseKind::Closed => {
                store.flush().unwrap();
            }
            BaseKind::SealedNewest => {
                disk.full.store(true, Ordering::SeqCst);
                let mut id = batches;
                loop {
                    let events = crashkit::make_batch(id, 3, 1_200, rng);
                    match store.append("s-full", ExpectedVersion::Any, &events) {
                        Ok(_) => id += 1,
                        Err(Error::NoSpace { .. }) => break,
                        Err(other) => panic!("expected NoSpace, got {other}"),
                    }
                }
            }
        }
        drop(store);
        if kind != BaseKind::Crashed {
            crashkit::copy_dir(&live, &image);
        }
        std::fs::remove_dir_all(&live).unwrap();
        let store = Store::open_read_only(&image).unwrap();
        crashkit::check_log(&store).unwrap();
        let events = store.read_all(0, usize::MAX).unwrap();
        drop(store);
        let segments = crashkit::segment_files(&image)
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).unwrap();
                (
                    path.file_name().unwrap().to_str().unwrap().to_string(),
                    crashkit::batches_end(&bytes).unwrap(),
                )
            })
            .collect::<Vec<_>>();
        assert!(segments.len() >= 4, "the base store spans several segments");
        let newest = std::fs::read(image.join(&segments.last().unwrap().0)).unwrap();
        let sealed = newest[newest.len() - FOOTER_LEN..].iter().any(|&b| b != 0);
        assert_eq!(sealed, kind == BaseKind::SealedNewest);
        Base {
            kind,
            dir,
            events,
            newest_batches: batches_of(&image.join(&segments.last().unwrap().0)),
            newest_durable_end: durable_end_of(&image.join(&segments.last().unwrap().0)),
            frames: segments
                .iter()
                .map(|(name, end)| frames_of(&image.join(name), *end))
                .collect(),
            checkpointed_sealed: checkpointed_sealed(&image),
            segments,
        }
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("base")
    }

    /// Events in every segment before the newest.
    fn events_before_newest(&self) -> usize {
        let newest_base: u64 = self.segments.last().unwrap().0[..20].parse().unwrap();
        newest_base as usize
    }
}

/// Where in a segment file a byte-level mutation lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Header,
    /// The frames of complete batches (sync markers included).
    Records,
    /// The zeroes between the last batch and the footer.
    Tail,
    Footer,
}

// `region` is only read through `Debug`, in failure messages.
#[allow(dead_code)]
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip these bits: (offset, bit mask).
    FlipBits {
        segment: usize,
        region: Region,
        flips: Vec<(usize, u8)>,
    },
    /// Overwrite bytes at an offset with random bytes.
    Overwrite {
        segment: usize,
        region: Region,
        offset: usize,
        bytes: Vec<u8>,
    },
    /// Zero an aligned 4 KiB page of records (a lost page).
    ZeroPage { segment: usize, offset: usize },
    /// Cut the file to this length.
    Truncate { segment: usize, len: usize },
    /// Add bytes at the end of the file.
    Extend { segment: usize, extra: usize },
    /// Remove the segment file.
    Delete { segment: usize },
    /// A stray temporary file of a segment creation that never finished.
    StrayTemp { base_position: u64, bytes: Vec<u8> },
}

impl Mutation {
    fn segment(&self) -> Option<usize> {
        match *self {
            Mutation::FlipBits { segment, .. }
            | Mutation::Overwrite { segment, .. }
            | Mutation::ZeroPage { segment, .. }
            | Mutation::Truncate { segment, .. }
            | Mutation::Extend { segment, .. }
            | Mutation::Delete { segment } => Some(segment),
            Mutation::StrayTemp { .. } => None,
        }
    }

    /// The lowest damaged offset, for byte-level damage.
    fn first_damaged_offset(&self) -> Option<usize> {
        match self {
            // Flips of the same bits cancel: only bytes left changed count
            // (caught by seed 13660854517830631246, mutation 4028 of the
            // long run: a byte flipped twice was taken for the first damage).
            Mutation::FlipBits { flips, .. } => {
                let mut net = std::collections::BTreeMap::<usize, u8>::new();
                for &(offset, mask) in flips {
                    *net.entry(offset).or_default() ^= mask;
                }
                net.into_iter()
                    .find(|&(_, mask)| mask != 0)
                    .map(|(offset, _)| offset)
            }
            Mutation::Overwrite { offset, .. } | Mutation::ZeroPage { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

fn region_range(base: &Base, segment: usize, region: Region, file_len: usize) -> (usize, usize) {
    let data_end = file_len - FOOTER_LEN;
    let records_end = base.segments[segment].1;
    match region {
        Region::Header => (0, SEGMENT_HEADER_LEN),
        Region::Records => (SEGMENT_HEADER_LEN, records_end),
        Region::Tail => (records_end, data_end),
        Region::Footer => (data_end, file_len),
    }
}

fn random_mutation(base: &Base, rng: &mut Rng) -> Mutation {
    let count = base.segments.len();
    // The newest and the oldest segments are the interesting ones.
    let segment = match rng.below(4) {
        0 => 0,
        1 | 2 => count - 1,
        _ => rng.below(count as u64) as usize,
    };
    let file_len = 64 * 1024;
    let mut region = match rng.below(10) {
        0 | 1 => Region::Header,
        2..=6 => Region::Records,
        7 | 8 => Region::Tail,
        _ => Region::Footer,
    };
    let (mut from, mut to) = region_range(base, segment, region, file_len);
    if from >= to {
        region = Region::Records;
        (from, to) = region_range(base, segment, region, file_len);
    }
    let at = |rng: &mut Rng| rng.range(from as u64, to as u64 - 1) as usize;
    match rng.below(20) {
        0..=8 => {
            let flips = (0..rng.range(1, 3))
                .map(|_| (at(rng), 1u8 << rng.below(8)))
                .collect();
            Mutation::FlipBits {
                segment,
                region,
                flips,
            }
        }
        9..=12 => {
            let offset = at(rng);
            let len = rng.range(1, 64).min((to - offset) as u64) as usize;
            let mut bytes = vec![0u8; len];
            rng.fill(&mut bytes);
            Mutation::Overwrite {
                segment,
                region,
                offset,
                bytes,
            }
        }
        13 => {
            let records_end = base.segments[segment].1;
            let page = rng.below(records_end as u64 / 4096 + 1) as usize * 4096;
            Mutation::ZeroPage {
                segment,
                offset: page.max(SEGMENT_HEADER_LEN),
            }
        }
        14 | 15 => {
            let len = match rng.below(4) {
                0 => 0,
                1 => rng.below(SEGMENT_HEADER_LEN as u64) as usize,
                _ => rng.range(SEGMENT_HEADER_LEN as u64, file_len as u64 - 1) as usize,
            };
            Mutation::Truncate { segment, len }
        }
        16 => Mutation::Extend {
            segment,
            extra: rng.range(1, 8192) as usize,
        },
        17 => Mutation::Delete { segment },
        _ => {
            let base_position = match rng.below(3) {
                0 => base.events.len() as u64,
                1 => rng.below(base.events.len() as u64),
                _ => rng.next_u64() % 10_u64.pow(19),
            };
            let mut bytes = vec![0u8; rng.below(70_000) as usize];
            if rng.chance(300) {
                let (name, _) = &base.segments[rng.below(count as u64) as usize];
                bytes = std::fs::read(base.image().join(name)).unwrap();
            }
            let garbage = bytes.len().min(64);
            rng.fill(&mut bytes[..garbage]);
            Mutation::StrayTemp {
                base_position,
                bytes,
            }
        }
    }
}

fn apply(base: &Base, mutation: &Mutation, dir: &Path) {
    let path = |segment: usize| dir.join(&base.segments[segment].0);
    let edit = |segment: usize, change: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = std::fs::read(path(segment)).unwrap();
        change(&mut bytes);
        std::fs::write(path(segment), bytes).unwrap();
    };
    match mutation {
        Mutation::FlipBits { segment, flips, .. } => edit(*segment, &|b| {
            for &(offset, mask) in flips {
                b[offset] ^= mask;
            }
        }),
        Mutation::Overwrite {
            segment,
            offset,
            bytes,
            ..
        } => edit(*segment, &|b| {
            b[*offset..*offset + bytes.len()].copy_from_slice(bytes)
        }),
        Mutation::ZeroPage { segment, offset } => edit(*segment, &|b| {
            let end = (offset + 4096).min(b.len() - FOOTER_LEN);
            b[*offset..end].fill(0)
        }),
        Mutation::Truncate { segment, len } => edit(*segment, &|b| b.truncate(*len)),
        Mutation::Extend { segment, extra } => {
            edit(*segment, &|b| b.extend(std::iter::repeat_n(0xA5, *extra)))
        }
        Mutation::Delete { segment } => std::fs::remove_file(path(*segment)).unwrap(),
        Mutation::StrayTemp {
            base_position,
            bytes,
        } => std::fs::write(
            dir.join(format!(
                "{}.tmp",
                annals::format::segment_file_name(*base_position)
            )),
            bytes,
        )
        .unwrap(),
    }
}

/// Header offsets of the two durable mark slots (`docs/format.md`).
const MARK_SLOTS: [usize; 2] = [80, 96];

/// What the outcome of opening a damaged store must be.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Refused with `Error::Corrupt`.
    Refused,
    /// Opens with exactly this many events (a torn tail discarded).
    Exactly(usize),
    /// Opens with at least this many events, or is refused.
    AtLeastOrRefused(usize),
}

/// The expected outcome of byte-level damage at `changed` offsets (sorted)
/// of one segment file.
fn expect_damage(base: &Base, segment: usize, changed: &[usize]) -> Expect {
    let all = base.events.len();
    let Some(&first) = changed.first() else {
        return Expect::Exactly(all);
    };
    let file_len = 64 * 1024;
    let records_end = base.segments[segment].1;
    let data_end = file_len - FOOTER_LEN;
    let in_records = |o: &&usize| (SEGMENT_HEADER_LEN..records_end).contains(*o);
    let newest = segment + 1 == base.segments.len();
    let sealed = !newest || base.kind == BaseKind::SealedNewest;
    if first < SEGMENT_HEADER_LEN {
        // A crash can tear one slot of the newest segment's durable mark
        // (the other holds the previous mark): discarded. Anything else in
        // a header is refused.
        let header: Vec<usize> = changed
            .iter()
            .copied()
            .filter(|&o| o < SEGMENT_HEADER_LEN)
            .collect();
        let slot = |o: usize| MARK_SLOTS.iter().position(|&s| (s..s + 16).contains(&o));
        let one_slot = slot(header[0])
            .is_some_and(|first_slot| header.iter().all(|&o| slot(o) == Some(first_slot)));
        if !(newest && !sealed && one_slot) {
            return Expect::Refused;
        }
        let rest: Vec<usize> = changed[header.len()..].to_vec();
        return expect_damage(base, segment, &rest);
    }
    if newest && sealed && changed.iter().all(|&o| o >= data_end) {
        // The footer of a sealed newest segment reads as a torn footer (the
        // writer crashed while sealing): zeroed, the segment stays active.
        return Expect::Exactly(all);
    }
    if sealed {
        // Every byte of a sealed segment is checked: frames by their
        // checksums, the data by the footer, the rest must be zero.
        return Expect::Refused;
    }
    // The newest, unsealed segment: a torn footer is zeroed, garbage after
    // the last batch discarded. Damaged records are a torn tail unless an
    // intact commit record (or sync marker) of a later batch vouches for
    // them: each claims that everything before its batch was synced.
    let Some(&first_record) = changed.iter().find(in_records) else {
        return Expect::Exactly(all);
    };
    let batches = &base.newest_batches;
    let damaged = batches
        .iter()
        .position(|b| (b.start..b.end).contains(&first_record))
        .unwrap();
    // So does the header's durable mark (format version 2).
    let vouched = batches[damaged + 1..]
        .iter()
        .any(|b| !changed.iter().any(|o| (b.commit_offset..b.end).contains(o)))
        || base.newest_durable_end > batches[damaged].start;
    if vouched {
        Expect::Refused
    } else {
        let lost: usize = batches[damaged..].iter().map(|b| b.events).sum();
        Expect::Exactly(all - lost)
    }
}

fn expectation(base: &Base, mutation: &Mutation, image: &Path) -> Expect {
    let newest = base.segments.len() - 1;
    let older = |segment: usize| segment < newest;
    match mutation {
        Mutation::FlipBits { segment, .. }
        | Mutation::Overwrite { segment, .. }
        | Mutation::ZeroPage { segment, .. } => {
            let name = &base.segments[*segment].0;
            let original = std::fs::read(base.image().join(name)).unwrap();
            let damaged = std::fs::read(image.join(name)).unwrap();
            let changed: Vec<usize> = (0..original.len())
                .filter(|&i| original[i] != damaged[i])
                .collect();
            expect_damage(base, *segment, &changed)
        }
        Mutation::Truncate { segment, .. } | Mutation::Extend { segment, .. }
            if older(*segment) =>
        {
            Expect::Refused
        }
        // A newest segment cut short is extended back (a careless copy);
        // the cut part reads as a torn tail.
        Mutation::Truncate { len, .. } if *len >= SEGMENT_HEADER_LEN => {
            Expect::AtLeastOrRefused(base.events_before_newest())
        }
        Mutation::Truncate { .. } | Mutation::Extend { .. } => Expect::Refused,
        Mutation::Delete { segment } if older(*segment) => Expect::Refused,
        // Nothing tells a deleted newest segment from one never created.
        Mutation::Delete { .. } => Expect::Exactly(base.events_before_newest()),
        Mutation::StrayTemp { .. } => Expect::Exactly(base.events.len()),
    }
}

/// Where a batch (or sync marker) lies in a segment file.
#[derive(Debug, Clone, Copy)]
struct BatchSpan {
    start: usize,
    commit_offset: usize,
    end: usize,
    events: usize,
}

/// The durable end a segment's header mark claims (0 without a mark).
fn durable_end_of(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let header = annals::format::header::SegmentHeader::decode(&bytes).unwrap();
    annals::format::durable_mark::DurableMark::current(&bytes, header.salt)
        .map_or(0, |mark| mark.durable_end as usize)
}

/// The batches (sync markers included) of a segment file.
fn batches_of(path: &Path) -> Vec<BatchSpan> {
    let bytes = std::fs::read(path).unwrap();
    let header = annals::format::header::SegmentHeader::decode(&bytes).unwrap();
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    let mut batches = Vec::new();
    while let annals::format::scan::BatchRead::Batch(batch) = annals::format::scan::read_batch(
        &bytes,
        header.salt,
        header.format_version,
        offset,
        bytes.len() - FOOTER_LEN,
        &mut events,
    ) {
        batches.push(BatchSpan {
            start: batch.start,
            commit_offset: batch.commit_offset,
            end: batch.end,
            events: events.len(),
        });
        offset = batch.end;
    }
    batches
}

/// How many segments the index checkpoint of `dir` covers as sealed.
fn checkpointed_sealed(dir: &Path) -> usize {
    use annals::format::checkpoint::{CHECKPOINT_FILE_NAME, CheckpointFile};
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE_NAME)).unwrap();
    let file = CheckpointFile::parse(&bytes).unwrap();
    file.segments().iter().take_while(|b| b.sealed).count()
}

/// The frames (padding included) of a segment file's batches, which end at
/// `records_end`.
fn frames_of(path: &Path, records_end: usize) -> Vec<Range<usize>> {
    use annals::format::frame::{FrameRead, read_frame};
    let bytes = std::fs::read(path).unwrap();
    let header = annals::format::header::SegmentHeader::decode(&bytes).unwrap();
    let mut frames = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while offset < records_end {
        let FrameRead::Frame(frame) = read_frame(&bytes, header.salt, offset, records_end) else {
            panic!("{}: no valid frame at {offset}", path.display());
        };
        frames.push(frame.offset..frame.next_offset);
        offset = frame.next_offset;
    }
    frames
}

/// How the default opens, which trust the index checkpoint for the records
/// of sealed segments, meet a mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DefaultOpen {
    /// As the full-check opens: the damage is where a default open looks.
    AsFullCheck,
    /// Damage to the records of a sealed segment the checkpoint covers:
    /// refused at open, or by the read of the whole log when it reaches the
    /// frame at `frame` (the first damaged one).
    RefusedByRead { segment: usize, frame: usize },
    /// Damage only to the free space of a sealed segment the checkpoint
    /// covers (after its last batch, before its footer), which no read
    /// reaches: every event reads back exactly as written; only the
    /// full-check opens, `verify` and `repair` see it.
    Unread,
}

fn default_open(base: &Base, mutation: &Mutation, image: &Path) -> DefaultOpen {
    let segment = match mutation {
        Mutation::FlipBits { segment, .. }
        | Mutation::Overwrite { segment, .. }
        | Mutation::ZeroPage { segment, .. } => *segment,
        _ => return DefaultOpen::AsFullCheck,
    };
    if segment >= base.checkpointed_sealed {
        return DefaultOpen::AsFullCheck;
    }
    let name = &base.segments[segment].0;
    let original = std::fs::read(base.image().join(name)).unwrap();
    let damaged = std::fs::read(image.join(name)).unwrap();
    let changed: Vec<usize> = (0..original.len())
        .filter(|&i| original[i] != damaged[i])
        .collect();
    let data = SEGMENT_HEADER_LEN..original.len() - FOOTER_LEN;
    if changed.is_empty() || !changed.iter().all(|o| data.contains(o)) {
        return DefaultOpen::AsFullCheck;
    }
    match base.frames[segment]
        .iter()
        .find(|frame| changed.iter().any(|o| frame.contains(o)))
    {
        Some(frame) => DefaultOpen::RefusedByRead {
            segment,
            frame: frame.start,
        },
        None => DefaultOpen::Unread,
    }
}

/// Checks the default opens (writable on a copy, read-only on `image`)
/// against `default`; where they judge as the full-check opens, against
/// the full-check open of the same kind (a writable one on another copy).
fn check_default_opens(
    base: &Base,
    default: &DefaultOpen,
    image: &Path,
    scratch: &Path,
    context: &str,
) {
    let copy = |name: &str| {
        let copy = scratch.join(name);
        let _ = std::fs::remove_dir_all(&copy);
        crashkit::copy_dir(image, &copy);
        copy
    };
    let (writable, full_writable) = (copy("default-writable"), copy("full-writable"));
    type Open<'a> = Box<dyn Fn() -> annals::Result<Store> + 'a>;
    let openers: [(&str, &Path, Open<'_>, Open<'_>); 2] = [
        (
            "read-only open",
            image,
            Box::new(|| Store::open_read_only(image)),
            Box::new(|| Store::open_read_only_rebuilding_index(image)),
        ),
        (
            "writable open",
            &writable,
            Box::new(|| Store::open(&writable, options())),
            Box::new(|| Store::open(&full_writable, full_check())),
        ),
    ];
    for (what, dir, open, full) in openers {
        match default {
            DefaultOpen::AsFullCheck => match (open(), full()) {
                (Err(error), Err(full)) => assert_eq!(
                    error.finding(),
                    full.finding()
                        .map(|f| annals::Finding {
                            path: dir.join(f.path.strip_prefix(&full_writable).unwrap_or(&f.path)),
                            ..f.clone()
                        })
                        .as_ref(),
                    "{context}: the default {what} refuses unlike a full check: {error}"
                ),
                (Ok(store), Ok(full)) => assert!(
                    store.read_all(0, usize::MAX).ok() == full.read_all(0, usize::MAX).ok(),
                    "{context}: the default {what} reads other events than a full check"
                ),
                (store, full) => panic!(
                    "{context}: the default {what} ({:?}) and a full check ({:?}) disagree",
                    store.err(),
                    full.err()
                ),
            },
            DefaultOpen::RefusedByRead { segment, frame } => {
                let file = dir.join(&base.segments[*segment].0);
                let refusal = refusal::assert_refused_at_open_or_on_read(
                    &format!("{context}: default {what}"),
                    open,
                    &[],
                    &file,
                    Some(SEGMENT_HEADER_LEN as u64..*frame as u64 + 8 + 1),
                );
                if let Refusal::OnRead(error) = &refusal {
                    assert_eq!(
                        error.finding().unwrap().offset,
                        *frame as u64,
                        "{context}: the default {what} names another frame than the first damaged: {error}"
                    );
                }
            }
            DefaultOpen::Unread => {
                let store = open().unwrap_or_else(|e| {
                    panic!("{context}: the default {what} refused bytes it does not read: {e}")
                });
                crashkit::check_log(&store).unwrap_or_else(|e| panic!("{context}: {what}: {e}"));
                assert!(
                    store.read_all(0, usize::MAX).unwrap() == base.events,
                    "{context}: the default {what} does not read back every event"
                );
            }
        }
    }
    std::fs::remove_dir_all(&writable).unwrap();
    std::fs::remove_dir_all(&full_writable).unwrap();
}

fn segment_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    crashkit::segment_files(dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Checks a store opened on a damaged image: exactly a prefix of what was
/// written, of at least `at_least` events.
fn check_prefix(store: &Store, base: &Base, at_least: usize, context: &str) -> usize {
    crashkit::check_log(store).unwrap_or_else(|e| panic!("{context}: {e}"));
    let events = store.read_all(0, usize::MAX).unwrap();
    assert!(
        events.len() <= base.events.len() && events[..] == base.events[..events.len()],
        "{context}: the store returns events that were not written"
    );
    assert!(
        events.len() >= at_least,
        "{context}: only {} of {} events left, expected at least {at_least}",
        events.len(),
        base.events.len()
    );
    events.len()
}

/// Checks the full-check opens against `expectation` and the default opens
/// against `default_open`; returns both.
fn check_mutation(
    base: &Base,
    mutation: &Mutation,
    scratch: &Path,
    context: &str,
) -> (Expect, DefaultOpen) {
    let image = scratch.join("image");
    crashkit::copy_dir(&base.image(), &image);
    apply(base, mutation, &image);
    let expect = expectation(base, mutation, &image);
    let default = default_open(base, mutation, &image);
    let context = format!(
        "{context}: {:?} base, {mutation:?}, expected {expect:?}, default opens {default:?}",
        base.kind
    );
    let context = &context[..context.len().min(600)];

    // A reader never panics and never returns wrong data.
    for reader in [
        Store::open_read_only(&image),
        Store::open_read_only_rebuilding_index(&image),
    ]
    .into_iter()
    .flatten()
    {
        let events = reader.read_all(0, usize::MAX).unwrap_or_default();
        assert!(
            events.len() <= base.events.len() && events[..] == base.events[..events.len()],
            "{context}: a reader returns events that were not written"
        );
    }
    check_default_opens(base, &default, &image, scratch, context);

    let before = segment_bytes(&image);
    // Whether the newest segment ends in nothing but zeroes after its last
    // complete batch: then lost records look exactly like a clean end (as
    // if never written), and nothing can report them.
    let looks_clean = before.values().next_back().is_some_and(|bytes| {
        crashkit::batches_end(bytes).is_some_and(|end| {
            bytes.len() >= 64 * 1024 && bytes[end..64 * 1024 - FOOTER_LEN].iter().all(|&b| b == 0)
        })
    });
    match Store::open(&image, full_check()) {
        Err(error) => {
            assert!(
                !matches!(expect, Expect::Exactly(_)),
                "{context}: refused with: {error}"
            );
            let Error::Corrupt(finding) = &error else {
                panic!("{context}: refused with an error that is not Corrupt: {error}");
            };
            let (path, offset) = (&finding.path, finding.offset);
            let message = error.to_string();
            let named = path.file_name().unwrap().to_str().unwrap();
            assert!(
                message.contains(&path.display().to_string())
                    && message.contains(&format!("offset {offset}")),
                "{context}: the message does not name the file and offset: {message}"
            );
            if let Some(segment) = mutation.segment() {
                let damaged = &base.segments[segment].0;
                let next = base.segments.get(segment + 1).map(|s| &s.0);
                let ok = named == damaged
                    || (matches!(mutation, Mutation::Delete { .. })
                        && Some(&named.to_string()) == next);
                assert!(
                    ok,
                    "{context}: the error names {named}, not the damaged {damaged}: {message}"
                );
            }
            // Zeroes read as an early end of the records: a sealed segment's
            // footer then disagrees, and the error points at the footer.
            let at_footer = matches!(mutation, Mutation::ZeroPage { .. })
                && offset as usize == 64 * 1024 - FOOTER_LEN;
            if let Mutation::Delete { .. } = mutation {
                assert!(
                    message.contains("missing"),
                    "{context}: a deleted segment is not reported as missing: {message}"
                );
            }
            if let Some(first) = mutation.first_damaged_offset()
                && !at_footer
            {
                assert!(
                    offset as usize <= first + 8,
                    "{context}: the error points at offset {offset}, after the damage at {first}: {message}"
                );
            }
            assert_eq!(
                segment_bytes(&image),
                before,
                "{context}: open refused ({message}) but changed the segment files"
            );
        }
        Ok(store) => {
            let at_least = match expect {
                Expect::Refused => panic!("{context}: the damaged store opened"),
                Expect::Exactly(n) | Expect::AtLeastOrRefused(n) => n,
            };
            let held = check_prefix(&store, base, at_least, context);
            if let Expect::Exactly(n) = expect {
                assert_eq!(held, n, "{context}: more events than expected survived");
            }
            crashkit::check_tail_zeroed(&image).unwrap_or_else(|e| panic!("{context}: {e}"));
            let report = store.recovery_report().clone();
            if held < base.events.len()
                && !looks_clean
                && !matches!(mutation, Mutation::Delete { .. })
            {
                assert!(
                    !report.is_empty(),
                    "{context}: events were dropped without a recovery report: {report:?}"
                );
            }
            if matches!(mutation, Mutation::StrayTemp { .. }) {
                assert_eq!(
                    report
                        .of_kind(|kind| *kind == annals::FindingKind::TemporaryFile)
                        .count(),
                    1,
                    "{context}"
                );
            }
            // The recovered store takes appends and reopens with them.
            store
                .append(
                    "after",
                    ExpectedVersion::Any,
                    &[annals::EventData::new("After", b"after".to_vec())],
                )
                .unwrap_or_else(|e| panic!("{context}: append after recovery: {e}"));
            store.close().unwrap();
            let store = Store::open(&image, options())
                .unwrap_or_else(|e| panic!("{context}: reopen after recovery: {e}"));
            assert_eq!(store.next_position(), held as u64 + 1, "{context}");
            let stray = std::fs::read_dir(&image)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_str()
                        .unwrap()
                        .ends_with(".tmp")
                })
                .count();
            assert_eq!(stray, 0, "{context}: a temporary file was left behind");
        }
    }
    std::fs::remove_dir_all(&image).unwrap();
    (expect, default)
}

fn damage_runs(name: &str, kind: BaseKind, mutations: u64) {
    let seed = crashkit::seed(name);
    let mut rng = Rng::new(seed);
    let base = Base::build(kind, &mut rng);
    let scratch = crashkit::ram_dir();
    for i in 0..mutations {
        let mutation = random_mutation(&base, &mut rng);
        check_mutation(
            &base,
            &mutation,
            scratch.path(),
            &format!("seed {seed}, mutation {i}"),
        );
    }
}

#[test]
fn damage_to_a_crashed_store_is_refused_or_discarded_as_a_torn_tail() {
    damage_runs(
        "corruption_crashed",
        BaseKind::Crashed,
        crashkit::scaled(220),
    );
}

#[test]
fn damage_to_a_cleanly_closed_store_is_refused_or_harmless() {
    damage_runs("corruption_closed", BaseKind::Closed, crashkit::scaled(220));
}

#[test]
fn damage_to_a_store_whose_newest_segment_is_sealed() {
    damage_runs(
        "corruption_sealed_newest",
        BaseKind::SealedNewest,
        crashkit::scaled(200),
    );
}

#[test]
#[ignore = "long: about 20,000 damaged stores"]
fn damage_long() {
    damage_runs(
        "corruption_crashed_long",
        BaseKind::Crashed,
        crashkit::scaled(7_000),
    );
    damage_runs(
        "corruption_closed_long",
        BaseKind::Closed,
        crashkit::scaled(7_000),
    );
    damage_runs(
        "corruption_sealed_newest_long",
        BaseKind::SealedNewest,
        crashkit::scaled(6_000),
    );
}

/// The verdicts of every reader of a damaged store, as one line to compare.
/// A full-check open refuses at open; a default open refuses at open or
/// when reading the whole log reaches the damage.
#[derive(Debug, PartialEq, Eq)]
struct Verdicts {
    writable_open_refuses: bool,
    read_only_open_refuses: bool,
    default_writable_open_refuses: bool,
    default_read_only_open_refuses: bool,
    verify_reports_corruption: bool,
    repair_plans_a_cut: bool,
}

impl Verdicts {
    /// All readers agree; except that damage no read reaches
    /// ([`DefaultOpen::Unread`]) is refused by the full-check opens and
    /// reported by `verify` and `repair`, and not by the default opens
    /// (every event reads back exactly, `check_mutation` checks that).
    fn agree(&self, unread: bool) -> bool {
        let full = [
            self.writable_open_refuses,
            self.read_only_open_refuses,
            self.verify_reports_corruption,
            self.repair_plans_a_cut,
        ];
        let default = [
            self.default_writable_open_refuses,
            self.default_read_only_open_refuses,
        ];
        if unread {
            full.iter().all(|&v| v) && default.iter().all(|&v| !v)
        } else {
            full.iter().chain(&default).all(|&v| v == full[0])
        }
    }
}

/// Whether an open refused: corruption is a refusal, success is not, and
/// any other error is a failure of the test.
fn refused(result: Result<Store, Error>, what: &str, context: &str) -> bool {
    match result {
        Ok(_) => false,
        Err(error) if error.is_corruption() => true,
        Err(error) => {
            panic!("{context}: {what} failed with an error that is not corruption: {error}")
        }
    }
}

/// Whether a default open refused, at open or on reading the whole log.
fn refused_at_open_or_on_read(
    open: impl FnOnce() -> annals::Result<Store>,
    what: &str,
    context: &str,
) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        refusal::refusal(open, &[]).is_some()
    }))
    .unwrap_or_else(|_| panic!("{context}: {what} failed (see above)"))
}

/// What every reader says of the store in `image` (left unchanged).
fn verdicts(image: &Path, scratch: &Path, context: &str) -> Verdicts {
    let read_only_open_refuses = refused(
        Store::open_read_only_rebuilding_index(image),
        "read-only open",
        context,
    );
    let default_read_only_open_refuses =
        refused_at_open_or_on_read(|| Store::open_read_only(image), "read-only open", context);
    let verify_reports_corruption = match annals::verify(image, &annals::VerifyOptions::default()) {
        Ok(report) => report.corruption_count > 0,
        // A directory left with no segment at all (the only one deleted)
        // holds no log to judge; every opener sees an empty store.
        Err(Error::InvalidArgument(_)) => false,
        Err(error) => panic!("{context}: verify failed: {error}"),
    };
    let repair_plans_a_cut = annals::Repair::lock(image)
        .and_then(|repair| repair.plan())
        .unwrap_or_else(|e| panic!("{context}: repair could not plan: {e}"))
        .cut
        .is_some();
    // The writer changes what it opens (a torn tail is zeroed): a copy.
    let copy = scratch.join("writable");
    let _ = std::fs::remove_dir_all(&copy);
    crashkit::copy_dir(image, &copy);
    let writable_open_refuses = refused(Store::open(&copy, full_check()), "writable open", context);
    let _ = std::fs::remove_dir_all(&copy);
    crashkit::copy_dir(image, &copy);
    let default_writable_open_refuses =
        refused_at_open_or_on_read(|| Store::open(&copy, options()), "writable open", context);
    Verdicts {
        writable_open_refuses,
        read_only_open_refuses,
        default_writable_open_refuses,
        default_read_only_open_refuses,
        verify_reports_corruption,
        repair_plans_a_cut,
    }
}

/// The agreement property: for a damaged store, the full-check writable
/// open refuses exactly when the full-check read-only open refuses, the
/// default opens refuse (at open or on reading the log), `verify` reports
/// corruption and `repair` plans a cut (only damage no read reaches escapes
/// the default opens); after the repair is applied, all of them say the
/// store is healthy.
fn check_agreement(base: &Base, mutation: &Mutation, scratch: &Path, context: &str) -> bool {
    let image = scratch.join("image");
    let _ = std::fs::remove_dir_all(&image);
    crashkit::copy_dir(&base.image(), &image);
    apply(base, mutation, &image);
    let context = format!("{context}: {:?} base, {mutation:?}", base.kind);
    let context = &context[..context.len().min(600)];
    let unread = default_open(base, mutation, &image) == DefaultOpen::Unread;
    let before = verdicts(&image, scratch, context);
    assert!(
        before.agree(unread),
        "{context}: the readers disagree (damage no read reaches: {unread}): {before:?}"
    );
    if !before.repair_plans_a_cut {
        return false;
    }
    let repair = annals::Repair::lock(&image).unwrap();
    let plan = repair.plan().unwrap();
    repair.apply(&plan, &image.join("repair-backup")).unwrap();
    drop(repair);
    let after = verdicts(&image, scratch, context);
    let healthy = Verdicts {
        writable_open_refuses: false,
        read_only_open_refuses: false,
        default_writable_open_refuses: false,
        default_read_only_open_refuses: false,
        verify_reports_corruption: false,
        repair_plans_a_cut: false,
    };
    assert_eq!(
        after, healthy,
        "{context}: not healthy after the repair of {plan:?}"
    );
    true
}

fn agreement_runs(name: &str, kind: BaseKind, mutations: u64) {
    let seed = crashkit::seed(name);
    let mut rng = Rng::new(seed);
    let base = Base::build(kind, &mut rng);
    let scratch = crashkit::ram_dir();
    let mut cuts = 0;
    for i in 0..mutations {
        let mutation = random_mutation(&base, &mut rng);
        let context = format!("seed {seed}, mutation {i}");
        cuts += usize::from(check_agreement(&base, &mutation, scratch.path(), &context));
    }
    // The property must have been tried on damage, not only on harmless changes.
    assert!(
        cuts * 4 >= mutations as usize,
        "only {cuts} of {mutations} mutations needed a repair"
    );
}

/// Writable and read-only opens (full-check, and default with a full read),
/// `verify` and `repair` judge every damaged store alike, and a repaired
/// store is healthy for all of them.
#[test]
fn every_reader_judges_damage_alike_and_repair_heals_it() {
    agreement_runs("agreement_crashed", BaseKind::Crashed, crashkit::scaled(60));
    agreement_runs("agreement_closed", BaseKind::Closed, crashkit::scaled(60));
    agreement_runs(
        "agreement_sealed_newest",
        BaseKind::SealedNewest,
        crashkit::scaled(60),
    );
}

#[test]
#[ignore = "long: about 6,000 damaged stores judged by six readers"]
fn every_reader_judges_damage_alike_long() {
    agreement_runs(
        "agreement_crashed_long",
        BaseKind::Crashed,
        crashkit::scaled(2_000),
    );
    agreement_runs(
        "agreement_closed_long",
        BaseKind::Closed,
        crashkit::scaled(2_000),
    );
    agreement_runs(
        "agreement_sealed_newest_long",
        BaseKind::SealedNewest,
        crashkit::scaled(2_000),
    );
}

/// Every single-bit flip in the first frames of the oldest segment, and in
/// each header and footer byte, is refused (exhaustive, not random): by
/// the full-check opens at open; by the default opens at open for headers
/// and footers, at open or on read for records.
#[test]
fn every_bit_flip_in_headers_footers_and_a_sealed_record_is_refused() {
    let mut rng = Rng::new(42);
    let base = Base::build(BaseKind::Closed, &mut rng);
    let scratch = crashkit::ram_dir();
    let mut checked = 0;
    for (region, from, to) in [
        (Region::Header, 0, SEGMENT_HEADER_LEN),
        (Region::Records, SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN + 64),
        (Region::Footer, 64 * 1024 - FOOTER_LEN, 64 * 1024),
    ] {
        for offset in from..to {
            let bit = (offset % 8) as u8;
            let mutation = Mutation::FlipBits {
                segment: 0,
                region,
                flips: vec![(offset, 1 << bit)],
            };
            let (expect, default) = check_mutation(&base, &mutation, scratch.path(), "exhaustive");
            if region == Region::Records {
                // The default opens refuse it on reading the damaged event.
                assert!(
                    matches!(default, DefaultOpen::RefusedByRead { segment: 0, .. }),
                    "{mutation:?}: {default:?}"
                );
            } else {
                assert_eq!(default, DefaultOpen::AsFullCheck, "{mutation:?}");
            }
            let torn_mark = region == Region::Header
                && base.segments.len() == 1
                && base.kind != BaseKind::SealedNewest
                && (MARK_SLOTS[0]..MARK_SLOTS[1] + 16).contains(&offset);
            if torn_mark {
                // One slot of the newest segment's durable mark: what a
                // crash can leave, discarded (the other slot holds).
                assert_eq!(expect, Expect::Exactly(base.events.len()), "{mutation:?}");
            } else {
                assert_eq!(expect, Expect::Refused, "{mutation:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 128 + 64 + 128);
}
