//! Power loss: a [`StorageHooks`] backend keeps a *durable image* of every
//! segment file, updated by `after_sync` with the bytes just synced. At random
//! crash points (between appends, right before a sync, right before a new
//! segment is allocated) it captures the written files (the page cache) and
//! the durable images. A crash image is then built from a capture: for each
//! segment file whose creation was reported durable, its durable image plus a
//! random subset of the 4 KiB pages written since the last sync, some of them
//! torn (only a prefix of the page reached the disk); files whose creation
//! was never reported durable are dropped, stray temporary files sometimes
//! kept.
//!
//! Every crash image must open (no corruption: no synced page was damaged),
//! show every batch acknowledged under `Durability::Always` (or flushed under
//! `Durability::None`) intact, no partial batch, nothing that was never
//! written, and a zeroed tail. Runs go through several generations: the next
//! generation continues from one crash image, so recovery itself is crashed
//! and recovered again.
//!
//! `cargo test --test crash_power_loss` takes about 2,500 crash points
//! (3,000 crash images); `cargo test --test crash_power_loss -- --ignored`
//! ten times as many.

mod crashkit;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use annals::format::scan::{self, BatchRead};
use annals::format::{FOOTER_LEN, SEGMENT_HEADER_LEN};
use annals::hooks::{Hooks, StorageHooks};
use annals::{Durability, EventData, ExpectedVersion, Options, Store, Uuid};
use crashkit::{Rng, SeenBatch};

const PAGE: usize = 4096;

/// The label of a crash point right before a footer is synced (sealing).
const FOOTER_SYNC: &str = "before the sync of a footer (seal)";

/// What a crash image may and must hold, as sets of batch ids.
#[derive(Debug, Clone, Default)]
struct Bounds {
    /// Acknowledged as durable: must survive.
    durable: BTreeSet<u64>,
    /// Appends that returned: their bytes are all in the page cache.
    completed: BTreeSet<u64>,
    /// Appends that started: nothing else may appear.
    started: BTreeSet<u64>,
}

impl Bounds {
    /// Bounds where the batches `ids` are on disk and nothing is in flight.
    fn settled(ids: impl IntoIterator<Item = u64>) -> Bounds {
        let ids: BTreeSet<u64> = ids.into_iter().collect();
        Bounds {
            durable: ids.clone(),
            completed: ids.clone(),
            started: ids,
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} durable, {} completed, {} started",
            self.durable.len(),
            self.completed.len(),
            self.started.len()
        )
    }
}

/// The files of a store directory at one crash point.
struct Capture {
    label: &'static str,
    bounds: Bounds,
    /// Every segment file as written (the page cache).
    written: BTreeMap<String, Vec<u8>>,
    /// The durable image of every segment file whose creation was reported durable.
    durable: BTreeMap<String, Vec<u8>>,
    /// Temporary files of segment creations in progress.
    temp_files: Vec<(String, Vec<u8>)>,
}

struct DiskState {
    durable: BTreeMap<String, Vec<u8>>,
    rng: Rng,
    bounds: Bounds,
    /// Chance (per mille) of capturing at each sync and allocation.
    capture_per_mille: u64,
    captures: Vec<Capture>,
}

/// The simulated disk: observes every sync of the store in `dir`.
struct SimulatedDisk {
    dir: PathBuf,
    state: Mutex<DiskState>,
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_string()
}

impl SimulatedDisk {
    /// A disk on which every file now in `dir` is durable as it is, or only
    /// `durable` (after a process crash: the files hold what the page cache
    /// held, the disk only what was synced).
    fn new(
        dir: &Path,
        durable: Option<BTreeMap<String, Vec<u8>>>,
        rng: Rng,
        bounds: Bounds,
        capture_per_mille: u64,
    ) -> Arc<SimulatedDisk> {
        let durable = durable.unwrap_or_else(|| {
            crashkit::segment_files(dir)
                .into_iter()
                .map(|path| (file_name(&path), std::fs::read(&path).unwrap()))
                .collect()
        });
        Arc::new(SimulatedDisk {
            dir: dir.to_path_buf(),
            state: Mutex::new(DiskState {
                durable,
                rng,
                bounds,
                capture_per_mille,
                captures: Vec::new(),
            }),
        })
    }

    fn update_bounds(&self, update: impl FnOnce(&mut Bounds)) {
        update(&mut self.state.lock().unwrap().bounds);
    }

    fn bounds(&self) -> Bounds {
        self.state.lock().unwrap().bounds.clone()
    }

    fn capture(&self, label: &'static str) {
        let mut state = self.state.lock().unwrap();
        Self::capture_locked(&self.dir, &mut state, label);
    }

    fn maybe_capture(&self, label: &'static str) {
        let mut state = self.state.lock().unwrap();
        let per_mille = state.capture_per_mille;
        if state.rng.chance(per_mille) {
            Self::capture_locked(&self.dir, &mut state, label);
        }
    }

    fn capture_locked(dir: &Path, state: &mut DiskState, label: &'static str) {
        // The bounds first: an append recorded as completed has all its
        // bytes in the page cache before the files are read below.
        let bounds = state.bounds.clone();
        let mut written = BTreeMap::new();
        let mut temp_files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = file_name(&path);
            if name.ends_with(".seg") {
                written.insert(name, std::fs::read(&path).unwrap());
            } else if name.ends_with(".seg.tmp") {
                temp_files.push((name, std::fs::read(&path).unwrap_or_default()));
            }
        }
        let capture = Capture {
            label,
            bounds,
            written,
            durable: state.durable.clone(),
            temp_files,
        };
        state.captures.push(capture);
    }

    fn take_captures(&self) -> Vec<Capture> {
        std::mem::take(&mut self.state.lock().unwrap().captures)
    }
}

impl StorageHooks for SimulatedDisk {
    fn before_allocate(&self, _path: &Path, _bytes: u64) -> io::Result<()> {
        self.maybe_capture("before allocating a segment");
        Ok(())
    }

    fn before_sync(&self, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
        self.maybe_capture(if offset == 0 && len == file_len {
            "before the sync of a whole segment"
        } else if offset + len == file_len && len == FOOTER_LEN as u64 {
            FOOTER_SYNC
        } else {
            "before a sync"
        });
        Ok(())
    }

    fn after_sync(&self, path: &Path, offset: u64, len: u64) {
        let file = std::fs::File::open(path).unwrap();
        let size = file.metadata().unwrap().len() as usize;
        let mut synced = vec![0u8; len as usize];
        file.read_exact_at(&mut synced, offset).unwrap();
        let mut state = self.state.lock().unwrap();
        let image = state
            .durable
            .entry(file_name(path))
            .or_insert_with(|| vec![0u8; size]);
        image[offset as usize..(offset + len) as usize].copy_from_slice(&synced);
    }
}

/// How the pages written since the last sync fare in a crash image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageFate {
    /// Each page independently: lost, persisted, or torn.
    Random,
    /// None of them reached the disk.
    AllLost,
    /// All of them did (as in a process crash).
    AllPersisted,
    /// Only the page with this index did.
    Only(usize),
}

/// Builds a crash image of `capture` in `to`.
fn materialize(capture: &Capture, fate: PageFate, rng: &mut Rng, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (name, durable) in &capture.durable {
        let written = &capture.written[name];
        assert_eq!(written.len(), durable.len(), "{name} changed size");
        let mut image = durable.clone();
        for start in (0..image.len()).step_by(PAGE) {
            let end = (start + PAGE).min(image.len());
            if written[start..end] == durable[start..end] {
                continue;
            }
            let keep = match fate {
                PageFate::AllLost => 0,
                PageFate::AllPersisted => end - start,
                PageFate::Only(page) if page == start / PAGE => end - start,
                PageFate::Only(_) => 0,
                PageFate::Random => match rng.below(10) {
                    0..=3 => 0,
                    4..=7 => end - start,
                    // Torn: only a prefix of the page reached the disk.
                    _ => rng.range(1, (end - start - 1) as u64) as usize,
                },
            };
            image[start..start + keep].copy_from_slice(&written[start..start + keep]);
        }
        std::fs::write(to.join(name), image).unwrap();
    }
    for (name, bytes) in &capture.temp_files {
        if rng.chance(500) {
            std::fs::write(to.join(name), bytes).unwrap();
        }
    }
}

fn options(durability: Durability) -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(durability)
}

/// A batch the run appended, as the append reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Appended {
    batch_id: u64,
    stream: String,
    first_version: u64,
    first_position: u64,
    count: u32,
}

impl Appended {
    fn matches(&self, seen: &SeenBatch) -> bool {
        (
            self.batch_id,
            &self.stream,
            self.first_version,
            self.first_position,
            self.count,
        ) == (
            seen.batch_id,
            &seen.stream,
            seen.first_version,
            seen.first_position,
            seen.count,
        )
    }
}

/// Checks an opened crash image against what the run appended and the
/// bounds at the crash point; returns the batches it holds.
fn check_image(
    store: &Store,
    appended: &BTreeMap<u64, Appended>,
    bounds: &Bounds,
    fate: PageFate,
    context: &str,
) -> Vec<SeenBatch> {
    let seen = crashkit::check_log(store).unwrap_or_else(|e| panic!("{context}: {e}"));
    let seen_ids: BTreeSet<u64> = seen.iter().map(|b| b.batch_id).collect();
    if let Some(lost) = bounds.durable.difference(&seen_ids).next() {
        panic!(
            "{context}: batch {lost} was acknowledged as durable but is gone ({:?})",
            appended.get(lost)
        );
    }
    if fate == PageFate::AllPersisted
        && let Some(lost) = bounds.completed.difference(&seen_ids).next()
    {
        panic!(
            "{context}: batch {lost} completed and every written page reached the disk, \
             yet it is gone"
        );
    }
    for batch in &seen {
        assert!(
            bounds.started.contains(&batch.batch_id),
            "{context}: batch {} is visible but its append had not started",
            batch.batch_id
        );
        let record = &appended[&batch.batch_id];
        assert!(
            record.matches(batch),
            "{context}: the image holds {batch:?} but the append reported {record:?}"
        );
    }
    seen
}

struct RunStats {
    crash_points: usize,
    images: usize,
    lost_unsynced: usize,
}

/// The shared state of a generation's appender threads.
struct Generation<'a> {
    store: &'a Store,
    disk: &'a SimulatedDisk,
    durability: Durability,
    next_id: &'a AtomicU64,
    appended: &'a Mutex<BTreeMap<u64, Appended>>,
    context: &'a str,
}

impl Generation<'_> {
    /// One appender thread: `appends` batches to its own streams (exact
    /// expected versions) and sometimes to a stream all threads share.
    fn appender(&self, thread: usize, appends: u64, rng: &mut Rng) {
        let mut versions: BTreeMap<String, u64> = BTreeMap::new();
        for _ in 0..appends {
            let shared = rng.chance(200);
            let stream = if shared {
                "shared".to_string()
            } else {
                format!("t{thread}-{}", rng.below(3))
            };
            let expected = if shared {
                ExpectedVersion::Any
            } else {
                ExpectedVersion::Exact(
                    *versions
                        .entry(stream.clone())
                        .or_insert_with(|| self.store.stream_version(&stream)),
                )
            };
            let id = self.next_id.fetch_add(1, Ordering::SeqCst);
            let count = rng.range(1, 6) as u32;
            let events = crashkit::make_batch(id, count, 1_500, rng);
            self.disk.update_bounds(|b| {
                b.started.insert(id);
            });
            let result = self
                .store
                .append(&stream, expected, &events)
                .unwrap_or_else(|e| panic!("{}: append failed: {e}", self.context));
            if !shared {
                versions.insert(stream.clone(), result.last_version);
            }
            self.appended.lock().unwrap().insert(
                id,
                Appended {
                    batch_id: id,
                    stream,
                    first_version: result.first_version,
                    first_position: result.first_position,
                    count,
                },
            );
            let always = self.durability == Durability::Always;
            self.disk.update_bounds(|b| {
                b.completed.insert(id);
                if always {
                    b.durable.insert(id);
                }
            });
            if !always && rng.chance(80) {
                // Everything completed before the flush starts is durable
                // once it returns.
                let completed = self.disk.bounds().completed;
                self.store.flush().unwrap();
                self.disk
                    .update_bounds(|b| b.durable.extend(completed.iter().copied()));
            }
            if rng.chance(300) {
                self.disk.capture("between appends");
            }
        }
    }
}

/// One run: a fresh store, several generations of appends by `threads`
/// threads, each generation ending in a crash image that the next one
/// recovers and continues.
fn power_loss_run(
    seed: u64,
    durability: Durability,
    threads: usize,
    generations: usize,
    stats: &mut RunStats,
) {
    let mut rng = Rng::new(seed);
    let root = crashkit::ram_dir();
    let mut dir = root.path().join("gen-0");
    std::fs::create_dir_all(&dir).unwrap();
    let mut appended: BTreeMap<u64, Appended> = BTreeMap::new();
    let next_id = AtomicU64::new(0);
    // What the directory to open next may and must hold.
    let mut bounds = Bounds::default();
    let mut fate = PageFate::AllLost;
    // Set when the next generation continues after a process crash rather
    // than a power loss: the disk's durable images at the crash.
    let mut durable_images: Option<BTreeMap<String, Vec<u8>>> = None;
    for generation in 0..generations {
        let context =
            format!("seed {seed}, {durability:?}, {threads} threads, generation {generation}");
        // What the crash image holds, as a reader sees it before recovery.
        let visible = {
            let reader = Store::open_read_only(&dir)
                .unwrap_or_else(|e| panic!("{context}: read-only open of the crash image: {e}"));
            check_image(&reader, &appended, &bounds, fate, &context)
        };
        appended.retain(|id, _| visible.iter().any(|b| b.batch_id == *id));
        // Everything on the disk now is durable, the recovered batches
        // included; after a process crash only what was synced is, until
        // recovery syncs the rest.
        let recovered = Bounds::settled(visible.iter().map(|b| b.batch_id));
        let mut at_open = recovered.clone();
        if durable_images.is_some() {
            at_open.durable.retain(|id| bounds.durable.contains(id));
        }
        let disk = SimulatedDisk::new(&dir, durable_images.take(), rng.fork(), at_open, 450);
        let mut hooked = options(durability);
        hooked.hooks = Hooks::new(disk.clone());
        let store = Store::open(&dir, hooked)
            .unwrap_or_else(|e| panic!("{context}: opening the crash image failed: {e}"));
        assert_eq!(
            check_image(&store, &appended, &recovered, PageFate::AllLost, &context),
            visible,
            "{context}: the writer sees other batches than the reader"
        );
        crashkit::check_tail_zeroed(&dir).unwrap_or_else(|e| panic!("{context}: {e}"));
        // Open returned: what it recovered is durable now.
        disk.update_bounds(|b| *b = recovered.clone());

        let shared_appended = Mutex::new(std::mem::take(&mut appended));
        let generation_state = Generation {
            store: &store,
            disk: &disk,
            durability,
            next_id: &next_id,
            appended: &shared_appended,
            context: &context,
        };
        let appends = rng.range(20, 70) / threads as u64 + 1;
        let mut thread_rngs: Vec<Rng> = (0..threads).map(|_| rng.fork()).collect();
        std::thread::scope(|scope| {
            for (thread, thread_rng) in thread_rngs.iter_mut().enumerate() {
                let generation_state = &generation_state;
                scope.spawn(move || generation_state.appender(thread, appends, thread_rng));
            }
        });
        appended = shared_appended.into_inner().unwrap();
        // A crash point at the very end, then a clean close (whose syncs are
        // crash points too).
        disk.capture("after the last append");
        store.close().unwrap();

        let captures = disk.take_captures();
        stats.crash_points += captures.len();
        let continue_from = rng.below(captures.len() as u64) as usize;
        // A third of the generations continue after a process crash: every
        // written page is in the files, but the disk holds only what was
        // synced, and a later power loss may still lose the rest.
        let continue_after_process_crash = rng.chance(333);
        for (i, capture) in captures.iter().enumerate() {
            // One crash image of each crash point, sometimes a second with
            // other pages lost (the one continued counts as one).
            let attempts = if i == continue_from || rng.chance(250) {
                2
            } else {
                1
            };
            for attempt in 0..attempts {
                let continued = i == continue_from && attempt == 0;
                let image_fate = match rng.below(8) {
                    _ if continued && continue_after_process_crash => PageFate::AllPersisted,
                    0 => PageFate::AllLost,
                    1 => PageFate::AllPersisted,
                    _ => PageFate::Random,
                };
                let image = root
                    .path()
                    .join(format!("gen-{generation}-image-{i}-{attempt}"));
                materialize(capture, image_fate, &mut rng, &image);
                let context = format!(
                    "{context}, crash image {i}.{attempt} taken {} ({image_fate:?} pages), bounds: {}",
                    capture.label,
                    capture.bounds.summary()
                );
                if continued {
                    // Recovered and continued by the next generation.
                    dir = image;
                    bounds = capture.bounds.clone();
                    fate = image_fate;
                    if continue_after_process_crash {
                        durable_images = Some(capture.durable.clone());
                    }
                    stats.images += 1;
                    continue;
                }
                let store = Store::open(&image, options(durability))
                    .unwrap_or_else(|e| panic!("{context}: the crash image does not open: {e}"));
                let held = check_image(&store, &appended, &capture.bounds, image_fate, &context);
                stats.lost_unsynced += capture.bounds.started.len() - held.len();
                crashkit::check_tail_zeroed(&image).unwrap_or_else(|e| panic!("{context}: {e}"));
                if rng.chance(150) {
                    // The recovered store takes appends and reopens cleanly.
                    store
                        .append(
                            "after-recovery",
                            ExpectedVersion::Any,
                            &crashkit::make_batch(u64::MAX - 1, 2, 100, &mut rng),
                        )
                        .unwrap_or_else(|e| panic!("{context}: append after recovery: {e}"));
                    store.close().unwrap();
                    let store = Store::open(&image, options(durability)).unwrap();
                    crashkit::check_log(&store).unwrap_or_else(|e| panic!("{context}: {e}"));
                } else {
                    drop(store);
                }
                std::fs::remove_dir_all(&image).unwrap();
                stats.images += 1;
            }
        }
    }
}

fn power_loss_runs(name: &str, durability: Durability, threads: usize, runs: u64) {
    let seed = crashkit::seed(name);
    let mut rng = Rng::new(seed);
    let mut stats = RunStats {
        crash_points: 0,
        images: 0,
        lost_unsynced: 0,
    };
    for _ in 0..runs {
        power_loss_run(rng.next_u64(), durability, threads, 3, &mut stats);
    }
    eprintln!(
        "{name}: {} crash points, {} crash images checked, {} unsynced batches lost in them",
        stats.crash_points, stats.images, stats.lost_unsynced
    );
}

#[test]
fn power_loss_keeps_every_acknowledged_batch_under_always() {
    power_loss_runs(
        "power_loss_always",
        Durability::Always,
        1,
        crashkit::scaled(8),
    );
}

#[test]
fn power_loss_keeps_every_acknowledged_batch_under_always_with_group_commit() {
    power_loss_runs(
        "power_loss_always_threads",
        Durability::Always,
        3,
        crashkit::scaled(8),
    );
}

#[test]
fn power_loss_keeps_every_flushed_batch_under_none() {
    power_loss_runs("power_loss_none", Durability::None, 2, crashkit::scaled(8));
}

#[test]
#[ignore = "long: about 25,000 crash points"]
fn power_loss_long() {
    power_loss_runs(
        "power_loss_always_long",
        Durability::Always,
        1,
        crashkit::scaled(80),
    );
    power_loss_runs(
        "power_loss_always_threads_long",
        Durability::Always,
        3,
        crashkit::scaled(80),
    );
    power_loss_runs(
        "power_loss_none_long",
        Durability::None,
        2,
        crashkit::scaled(80),
    );
}

/// Offsets where each complete batch of a segment file starts and ends.
fn batch_ranges(path: &Path) -> Vec<(usize, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let header = annals::format::header::SegmentHeader::decode(&bytes).unwrap();
    let mut events = Vec::new();
    let mut ranges = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) = scan::read_batch(
        &bytes,
        header.salt,
        header.format_version,
        offset,
        bytes.len() - FOOTER_LEN,
        &mut events,
    ) {
        ranges.push((batch.start, batch.end));
        offset = batch.end;
    }
    ranges
}

/// A power loss kept a later batch but lost an earlier one: recovery
/// discards both. If the discarded bytes were left on disk, appending the
/// lost batch again (same size) would line the stale later batch up behind it
/// and a later open would resurrect it: a batch that recovery reported as
/// discarded, that nobody appended since.
#[test]
fn a_discarded_tail_never_comes_back() {
    let dir = crashkit::ram_dir();
    let live = dir.path().join("live");
    let store = Store::open(&live, options(Durability::None)).unwrap();
    let big = |id: u64| {
        vec![EventData::new("Big", vec![id as u8; 5_000]).with_id(Uuid::from_u64_pair(7, id))]
    };
    for id in 0..3 {
        store.append("a", ExpectedVersion::Any, &big(id)).unwrap();
    }
    // B3 and B4 both vouch only for what is synced now (the end of B2), and
    // have the same size as the B3 appended again below.
    store.flush().unwrap();
    store.append("a", ExpectedVersion::Any, &big(3)).unwrap();
    store
        .append("b", ExpectedVersion::NoStream, &big(4))
        .unwrap();
    // The power loss: B3 never reached the disk, B4 did.
    let crashed = dir.path().join("crashed");
    crashkit::copy_dir(&live, &crashed);
    drop(store);
    let segment = crashkit::segment_files(&crashed).pop().unwrap();
    let ranges = batch_ranges(&segment);
    assert_eq!(ranges.len(), 5);
    let (b3_start, b3_end) = ranges[3];
    let bytes = std::fs::read(&segment).unwrap();
    let mut lost = bytes.clone();
    lost[b3_start..b3_end].fill(0);
    std::fs::write(&segment, &lost).unwrap();

    let store = Store::open(&crashed, options(Durability::None)).unwrap();
    assert_eq!(store.next_position(), 3, "B3 and B4 are discarded");
    assert_eq!(
        store
            .recovery_report()
            .torn_tail()
            .map(|t| t.finding.offset),
        Some(b3_start as u64),
        "the torn tail starts at B3"
    );
    // The application appends B3 again: same events, same size.
    store.append("a", ExpectedVersion::Any, &big(3)).unwrap();
    assert_eq!(batch_ranges(&segment)[3], (b3_start, b3_end));
    // A process crash now (no close), and another open.
    let again = dir.path().join("again");
    crashkit::copy_dir(&crashed, &again);
    drop(store);
    let store = Store::open(&again, options(Durability::None)).unwrap();
    let events = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(
        events.len(),
        4,
        "the discarded batch B4 came back: {:?}",
        events.last().map(|e| (&e.stream, e.version))
    );
    assert_eq!(store.stream_version("b"), 0);
}

/// Appends `batches` batches of two 1,500-byte events under
/// `Durability::None` to a store in `root/live` on a simulated disk that
/// captures at every sync (64 KiB segments: the run rolls). Nothing is
/// flushed, so only what a roll syncs is durable. Returns the disk, what was
/// appended, and the random source for what follows.
fn rolling_run_without_syncs(
    root: &Path,
    batches: u64,
    seed: u64,
) -> (Arc<SimulatedDisk>, BTreeMap<u64, Appended>, Rng) {
    let dir = root.join("live");
    std::fs::create_dir_all(&dir).unwrap();
    let disk = SimulatedDisk::new(&dir, None, Rng::new(seed), Bounds::default(), 1000);
    let mut hooked = options(Durability::None);
    hooked.hooks = Hooks::new(disk.clone());
    let store = Store::open(&dir, hooked).unwrap();
    let mut rng = Rng::new(seed + 1);
    let mut appended = BTreeMap::new();
    for id in 0..batches {
        let events = crashkit::make_batch(id, 2, 1_500, &mut rng);
        let result = store.append("s", ExpectedVersion::Any, &events).unwrap();
        appended.insert(
            id,
            Appended {
                batch_id: id,
                stream: "s".into(),
                first_version: result.first_version,
                first_position: result.first_position,
                count: 2,
            },
        );
        disk.update_bounds(|b| {
            b.started.insert(id);
            b.completed.insert(id);
        });
    }
    assert!(crashkit::segment_files(&dir).len() > 1, "the run rolled");
    drop(store);
    (disk, appended, rng)
}

/// Found by `power_loss_keeps_every_flushed_batch_under_none`: sealing wrote
/// the footer, then synced data and footer with one sync. A power loss in
/// that sync could keep the footer page and lose data pages before it: the
/// newest segment looked sealed, its contents failed their checks, and the
/// store refused to open. Here every page written since the last sync is
/// persisted alone, at every sync of a run that rolls segments.
#[test]
fn a_power_loss_while_sealing_never_leaves_a_footer_over_lost_data() {
    let root = crashkit::ram_dir();
    let (disk, appended, mut rng) = rolling_run_without_syncs(root.path(), 40, 1);
    let mut images = 0;
    for (i, capture) in disk.take_captures().iter().enumerate() {
        let pages = capture
            .written
            .values()
            .next()
            .map_or(0, |f| f.len() / PAGE);
        for page in 0..pages {
            let image = root.path().join(format!("image-{i}-{page}"));
            materialize(capture, PageFate::Only(page), &mut rng, &image);
            let context = format!("crash {} with only page {page} persisted", capture.label);
            let store = Store::open(&image, options(Durability::None))
                .unwrap_or_else(|e| panic!("{context}: the crash image does not open: {e}"));
            check_image(
                &store,
                &appended,
                &capture.bounds,
                PageFate::Only(page),
                &context,
            );
            drop(store);
            std::fs::remove_dir_all(&image).unwrap();
            images += 1;
        }
    }
    assert!(images > 0);
}

/// Found by `power_loss_long` (three appenders, a generation continued after
/// a process crash): a process crashed after writing a footer and before
/// syncing it. The next open found a valid footer in the page cache, took
/// the segment for sealed and durably created the next one, but never
/// synced that footer: a power loss then left an older segment without a
/// footer, and the store refused to open.
#[test]
fn a_footer_found_after_a_process_crash_is_synced_before_the_next_segment() {
    let root = crashkit::ram_dir();
    let dir = root.path().join("live");
    std::fs::create_dir_all(&dir).unwrap();
    let disk = SimulatedDisk::new(&dir, None, Rng::new(3), Bounds::default(), 1000);
    let mut hooked = options(Durability::None);
    hooked.hooks = Hooks::new(disk.clone());
    let store = Store::open(&dir, hooked).unwrap();
    let mut rng = Rng::new(4);
    for id in 0..120 {
        let events = crashkit::make_batch(id, 2, 1_500, &mut rng);
        store.append("s", ExpectedVersion::Any, &events).unwrap();
    }
    drop(store);
    let captures = disk.take_captures();
    let footer_syncs: Vec<&Capture> = captures.iter().filter(|c| c.label == FOOTER_SYNC).collect();
    let labels: Vec<&str> = captures.iter().map(|c| c.label).collect();
    assert!(
        !footer_syncs.is_empty(),
        "the run sealed a segment: {labels:?}"
    );
    for (i, capture) in footer_syncs.into_iter().enumerate() {
        // The process crash: the page cache (footer included) is in the
        // files, the disk holds only what was synced.
        let crashed = root.path().join(format!("crashed-{i}"));
        materialize(capture, PageFate::AllPersisted, &mut rng, &crashed);
        let disk = SimulatedDisk::new(
            &crashed,
            Some(capture.durable.clone()),
            Rng::new(5),
            Bounds::default(),
            0,
        );
        let mut hooked = options(Durability::None);
        hooked.hooks = Hooks::new(disk.clone());
        let store = Store::open(&crashed, hooked).unwrap();
        // The power loss, right after recovery: only what is durable stays.
        disk.capture("after recovery");
        let after = disk.take_captures().pop().unwrap();
        drop(store);
        let image = root.path().join(format!("power-loss-{i}"));
        materialize(&after, PageFate::AllLost, &mut rng, &image);
        let store = Store::open(&image, options(Durability::None)).unwrap_or_else(|e| {
            panic!("a power loss after recovering a sealed segment: the store does not open: {e}")
        });
        crashkit::check_log(&store).unwrap();
    }
}

/// Found by `power_loss_long` (three appenders, Always): sealing wrote the
/// segment's final durable mark and its footer and synced them together. A
/// power loss in that sync could keep the footer page and tear the header
/// page: a sealed segment with a torn mark slot, which no crash is supposed
/// to leave, and the store refused to open. The mark is now synced before
/// the footer is written. Here, at every footer sync of a run that rolls,
/// the footer page is persisted and the header page torn in the middle of
/// each mark slot.
#[test]
fn a_power_loss_while_sealing_never_leaves_a_footer_over_a_torn_durable_mark() {
    let root = crashkit::ram_dir();
    // Without syncs between appends, the seal is what moves the mark.
    let (disk, appended, _) = rolling_run_without_syncs(root.path(), 60, 3);
    let mut images = 0;
    for (i, capture) in disk
        .take_captures()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.label == FOOTER_SYNC)
    {
        for tear_at in [88, 104] {
            let image = root.path().join(format!("image-{i}-{tear_at}"));
            std::fs::create_dir_all(&image).unwrap();
            for (name, durable) in &capture.durable {
                let written = &capture.written[name];
                let mut bytes = durable.clone();
                let footer_page = bytes.len() - PAGE;
                bytes[footer_page..].copy_from_slice(&written[footer_page..]);
                bytes[..tear_at].copy_from_slice(&written[..tear_at]);
                std::fs::write(image.join(name), bytes).unwrap();
            }
            let context = format!("crash {i} at a footer sync, header torn at byte {tear_at}");
            let store = Store::open(&image, options(Durability::None))
                .unwrap_or_else(|e| panic!("{context}: the crash image does not open: {e}"));
            check_image(
                &store,
                &appended,
                &capture.bounds,
                PageFate::Random,
                &context,
            );
            images += 1;
        }
    }
    assert!(images > 0, "no footer sync was captured");
}
