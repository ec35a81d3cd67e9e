//! The cost of the Merkle tree over the log (issue 19), as ratios measured
//! in one run.
//!
//! - **The writer's cost**: a seal hashes the sealed segment's events (on
//!   the indexer thread, off the append path) to record the tree at its
//!   end in its index file. Batched append throughput, closing included
//!   (so the background hashing is counted), with and without that
//!   (`StorageHooks::record_tree_at_seal`), taking turns.
//! - **Root after open**: the first `Store::tree_size_and_root` after a
//!   read-only open, on the store whose index files record the tree (the
//!   frontier cache starts full: only the active segment's leaves are read)
//!   and on the same log whose index files do not (as before: every sealed
//!   segment is read once to fill the cache).
//! - **warm roots and proofs**: the next calls, `tree_root(size)` of random
//!   sizes, an inclusion proof of a random position and a consistency
//!   proof from a random size, both to the current size; and the first
//!   inclusion proof after open (cold).
//! - **verify** with and without a signed checkpoint (`annals::verify`,
//!   `VerifyOptions::checkpoint`), taking turns. `verify` computes the tree
//!   in its one pass either way (for the summary's root, and to check the
//!   index files' trees), so the difference is the checkpoint's signature
//!   check.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ANNALS_TREE_EVENTS` | 1000000 | events in the store |
//! | `ANNALS_TREE_PAYLOAD` | 100 | payload bytes per event |
//! | `ANNALS_TREE_SEGMENT_BYTES` | 67108864,8388608 | segment sizes, comma-separated: one store each |
//! | `ANNALS_TREE_REPEAT` | 5 | rounds of each build, cold measurement and verify (median) |
//! | `ANNALS_TREE_SAMPLE` | 200 | warm roots and proofs per kind (median) |
//! | `ANNALS_BENCH_DIR` | the system temp dir | where the stores are created (and removed) |
//!
//! Run: `cargo bench --bench tree`. Timings are never asserted anywhere.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use annals::hooks::{Hooks, StorageHooks};
use annals::{Durability, EventData, ExpectedVersion, Options, Store, VerifyOptions};
use common::{env_number, load_average, median, number, payload};

const ORIGIN: &str = "bench.example/annals";
const STREAMS: usize = 1000;
const BATCH: usize = 10;

struct Config {
    events: usize,
    payload: usize,
    segment_sizes: Vec<u64>,
    repeat: usize,
    sample: usize,
    dir: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let segment_sizes = std::env::var("ANNALS_TREE_SEGMENT_BYTES")
            .unwrap_or_else(|_| "67108864,8388608".into())
            .split(',')
            .map(|text| number("ANNALS_TREE_SEGMENT_BYTES", text) as u64)
            .collect();
        Config {
            events: env_number("ANNALS_TREE_EVENTS", 1_000_000).max(BATCH),
            payload: env_number("ANNALS_TREE_PAYLOAD", 100),
            segment_sizes,
            repeat: env_number("ANNALS_TREE_REPEAT", 5).max(1),
            sample: env_number("ANNALS_TREE_SAMPLE", 200).max(1),
            dir: std::env::var_os("ANNALS_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        }
    }

    /// The command that reproduces this run.
    fn command(&self) -> String {
        let sizes: Vec<String> = self.segment_sizes.iter().map(u64::to_string).collect();
        format!(
            "ANNALS_TREE_EVENTS={} ANNALS_TREE_PAYLOAD={} ANNALS_TREE_SEGMENT_BYTES={} \
             ANNALS_TREE_REPEAT={} ANNALS_TREE_SAMPLE={} cargo bench --bench tree",
            self.events,
            self.payload,
            sizes.join(","),
            self.repeat,
            self.sample
        )
    }
}

/// A small xorshift generator: the same positions in every run.
struct Positions(u64);

impl Positions {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn seconds(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_secs_f64()
}

fn show(seconds: f64) -> String {
    let duration = Duration::from_secs_f64(seconds);
    if seconds >= 1.0 {
        format!("{:.2} s", duration.as_secs_f64())
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{:.1} µs", seconds * 1e6)
    }
}

/// Hooks that turn off recording the tree at each seal.
struct NoTreeAtSeal;

impl StorageHooks for NoTreeAtSeal {
    fn record_tree_at_seal(&self) -> bool {
        false
    }
}

/// Builds the store: `events` events in batches of 10, round robin over
/// 1000 streams, no syncs, the tree recorded at each seal or not. Returns
/// the append rate, events per second, closing included (a close waits
/// for the index files of sealed segments, and so for their hashing).
fn build(dir: &Path, config: &Config, segment_bytes: u64, record_tree: bool) -> f64 {
    let mut options = Options::default()
        .segment_size_bytes(segment_bytes)
        .durability(Durability::None);
    if !record_tree {
        options.hooks = Hooks::new(Arc::new(NoTreeAtSeal));
    }
    let store = Store::open(dir, options).expect("creating the bench store");
    let data = payload(config.payload);
    let batches = config.events / BATCH;
    let took = seconds(|| {
        for batch in 0..batches {
            let stream = format!("stream-{}", batch % STREAMS);
            let events: Vec<EventData> = (0..BATCH)
                .map(|_| EventData::new("TreeBench", data.clone()))
                .collect();
            store
                .append(&stream, ExpectedVersion::Any, &events)
                .expect("append");
        }
        store.flush().expect("flush");
        store.close().expect("close");
    });
    (batches * BATCH) as f64 / took
}

fn open(dir: &Path) -> Store {
    Store::open_read_only(dir).expect("opening the bench store read-only")
}

fn run(config: &Config, segment_bytes: u64) {
    let dir = config
        .dir
        .join(format!("annals-tree-bench-{}", std::process::id()));
    let treeless = config
        .dir
        .join(format!("annals-tree-bench-{}-treeless", std::process::id()));
    eprintln!(
        "building {} events, segments of {segment_bytes} bytes, with and without the tree, {} rounds…",
        config.events, config.repeat
    );
    let mut rate_with = Vec::new();
    let mut rate_without = Vec::new();
    for _ in 0..config.repeat {
        for (record_tree, rates, dir) in [
            (true, &mut rate_with, &dir),
            (false, &mut rate_without, &treeless),
        ] {
            let _ = std::fs::remove_dir_all(dir);
            rates.push(build(dir, config, segment_bytes, record_tree));
        }
    }
    let rate_with = median(rate_with);
    let rate_without = median(rate_without);
    // The same log, its index files without the tree, opened afresh for
    // each round: the root reads every sealed segment, as before.
    let mut cold_root_treeless = Vec::new();
    for _ in 0..config.repeat {
        let store = open(&treeless);
        cold_root_treeless.push(seconds(|| {
            black_box(store.tree_size_and_root().expect("root"));
        }));
    }
    let _ = std::fs::remove_dir_all(&treeless);
    let segments = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| annals::is_segment_file_name(&e.file_name().to_string_lossy()))
                .count()
        })
        .unwrap_or(0);
    let (signer, verifier) = annals::proof::note::generate_key(ORIGIN).expect("keygen");
    let (size, note) = {
        let store = open(&dir);
        let size = store.tree_size_and_root().expect("root").0;
        (
            size,
            store.signed_checkpoint(ORIGIN, &signer).expect("sign"),
        )
    };
    let mut positions = Positions(0x9E37_79B9_7F4A_7C15);

    eprintln!("cold and warm roots and proofs…");
    let mut cold_root = Vec::new();
    let mut cold_inclusion = Vec::new();
    for _ in 0..config.repeat {
        let store = open(&dir);
        cold_root.push(seconds(|| {
            black_box(store.tree_size_and_root().expect("root"));
        }));
        let store = open(&dir);
        let position = positions.below(size);
        cold_inclusion.push(seconds(|| {
            black_box(store.inclusion_proof(position, size).expect("proof"));
        }));
    }
    let store = open(&dir);
    store.tree_size_and_root().expect("root");
    let sample =
        |f: &mut dyn FnMut()| median((0..config.sample).map(|_| seconds(&mut *f)).collect());
    let warm_root = sample(&mut || {
        black_box(store.tree_size_and_root().expect("root"));
    });
    let warm_sized_root = sample(&mut || {
        let tree_size = 1 + positions.below(size);
        black_box(store.tree_root(tree_size).expect("root"));
    });
    let inclusion = sample(&mut || {
        let position = positions.below(size);
        black_box(store.inclusion_proof(position, size).expect("proof"));
    });
    let consistency = sample(&mut || {
        let old = 1 + positions.below(size);
        black_box(store.consistency_proof(old, size).expect("proof"));
    });
    drop(store);

    eprintln!("verify with and without the checkpoint…");
    let plain = VerifyOptions::default();
    let with_checkpoint = VerifyOptions::default().checkpoint(note, verifier);
    let mut verify_plain = Vec::new();
    let mut verify_checkpoint = Vec::new();
    for _ in 0..config.repeat {
        for (options, times) in [
            (&plain, &mut verify_plain),
            (&with_checkpoint, &mut verify_checkpoint),
        ] {
            times.push(seconds(|| {
                let report = annals::verify(&dir, options).expect("verify");
                assert!(report.is_ok(), "{report}");
            }));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let cold_root = median(cold_root);
    let cold_root_treeless = median(cold_root_treeless);
    let cold_inclusion = median(cold_inclusion);
    let verify_plain = median(verify_plain);
    let verify_checkpoint = median(verify_checkpoint);
    println!();
    println!(
        "### {size} events of {} payload bytes, segments of {segment_bytes} bytes ({segments} segment files)",
        config.payload
    );
    println!();
    println!("| measurement | median | ratio (same run) |");
    println!("| --- | --- | --- |");
    println!(
        "| batched appends, tree recorded at each seal (the default) | {:.2} M events/s | **{:.3}× the rate without** |",
        rate_with / 1e6,
        rate_with / rate_without
    );
    println!(
        "| batched appends, no tree recorded | {:.2} M events/s | 1 |",
        rate_without / 1e6
    );
    println!(
        "| `tree_size_and_root`, first call after open, index files without the tree (before) | {} | 1 |",
        show(cold_root_treeless)
    );
    println!(
        "| `tree_size_and_root`, first call after open, index files with the tree | {} | **{:.1}× faster than before** |",
        show(cold_root),
        cold_root_treeless / cold_root
    );
    println!(
        "| `tree_size_and_root`, warm | {} | {:.1}× faster than the first call |",
        show(warm_root),
        cold_root / warm_root
    );
    println!(
        "| `tree_root(random size)`, warm | {} | {:.4}× the first root after open |",
        show(warm_sized_root),
        warm_sized_root / cold_root
    );
    println!(
        "| inclusion proof of a random position, cold (first call after open) | {} | {:.2}× the first root after open |",
        show(cold_inclusion),
        cold_inclusion / cold_root
    );
    println!(
        "| inclusion proof of a random position, warm | {} | {:.2}× the first root after open |",
        show(inclusion),
        inclusion / cold_root
    );
    println!(
        "| consistency proof from a random size, warm | {} | {:.2}× the first root after open |",
        show(consistency),
        consistency / cold_root
    );
    println!(
        "| `verify` (tree computed in its pass) | {} | 1 |",
        show(verify_plain)
    );
    println!(
        "| `verify` with a signed checkpoint | {} | **{:.3}× verify without** |",
        show(verify_checkpoint),
        verify_checkpoint / verify_plain
    );
    println!(
        "| the tree pass alone (first root, index files without the tree) against `verify` | | {:.2}× verify |",
        cold_root_treeless / verify_plain
    );
}

fn main() {
    let config = Config::from_env();
    println!("command: `{}`", config.command());
    println!(
        "cores: {}, load average at the start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    for &segment_bytes in &config.segment_sizes {
        run(&config, segment_bytes);
    }
    println!();
    println!("load average at the end: {}", load_average());
}
