//! Histories of any length (issue 13): opening, index memory and stream reads
//! of a store whose events lie in sealed segments, with the index checkpoint
//! and mapped index files against a full rebuild of the in-memory index, side
//! by side in one run.
//!
//! For each size N it builds one store (N events of `ANNALS_HISTORY_PAYLOAD`
//! bytes, appended in batches round-robin over the streams, as `annals bench`
//! does; `Durability::None`; closed cleanly, so the checkpoint covers every
//! event), then measures:
//!
//! - **open**: a writable open by the index checkpoint (`Options::default()`)
//!   against `Options::default().rebuild_index(true)`, and a read-only open
//!   (`Store::open_read_only`) against `Store::open_read_only_rebuilding_index`.
//!   Each open runs in a fresh child process (so its memory figures are its
//!   own), the kinds taking turns, `ANNALS_HISTORY_REPEAT` rounds; the
//!   median is reported. A writable rebuild rewrites the index files and
//!   the checkpoint (since 83b445c one covering the active segment too), so
//!   it runs on a copy of the store (sealed segments hard-linked) and the
//!   original keeps the checkpoint of its clean close, the same for every
//!   round; a default writable open of that copy after the rebuild is
//!   reported too (it loads the checkpoint the rebuild wrote).
//! - **index memory** after each kind of open: `Store::index_heap_bytes` per
//!   event and per stream, the child's anonymous RSS growth over the open, and
//!   its peak RSS (VmHWM; file pages of mapped segments count in it).
//! - **whole-stream reads**: `read_stream(s, 1, usize::MAX)` and `scan_stream`
//!   of `ANNALS_HISTORY_SAMPLE` random streams, on a read-only store opened by
//!   the checkpoint (mapped index files) and on one that rebuilt the index in
//!   memory (the index before issue 13), taking turns; the first pass is
//!   reported apart (it includes the first-use check of each index file).
//! - **appends**: the rate at which the store was built (appends and flush,
//!   not the close); kept beside the store, so a reused store reports the
//!   rate of the run that built it, and says so.
//!
//! The store for each set of parameters is kept under `ANNALS_BENCH_DIR` and
//! reused by later runs (delete it to build it again).
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ANNALS_HISTORY_EVENTS` | 1000000,10000000 | comma-separated store sizes, events |
//! | `ANNALS_HISTORY_STREAMS` | 100000 | streams (of events / streams events each) |
//! | `ANNALS_HISTORY_BATCH` | 10 | events per append |
//! | `ANNALS_HISTORY_PAYLOAD` | 100 | payload bytes per event |
//! | `ANNALS_HISTORY_SEGMENT_BYTES` | 67108864 (annals' default) | segment size |
//! | `ANNALS_HISTORY_REPEAT` | 3 | rounds of each open and read measurement (median) |
//! | `ANNALS_HISTORY_SAMPLE` | 10000 | streams read per read round |
//! | `ANNALS_BENCH_DIR` | the system temp dir | where the stores are kept |
//!
//! Run: `cargo bench --bench history`. Timings are never asserted anywhere;
//! the targets are printed beside the figures for the reader.

mod common;

use common::{env_number, load_average, machine, median, number, payload};
use std::fs;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use annals::{Durability, EventData, ExpectedVersion, Options, Store};

/// Environment variable that makes this binary run one open measurement
/// (`KIND:DIR`) in a fresh process and print `key=value` lines.
const CHILD_VAR: &str = "ANNALS_HISTORY_CHILD";

const EVENT_TYPE: &str = "HistoryEvent";

struct Config {
    sizes: Vec<usize>,
    streams: usize,
    batch: usize,
    payload: usize,
    segment_bytes: u64,
    repeat: usize,
    sample: usize,
    dir: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let var = env_number;
        let sizes = std::env::var("ANNALS_HISTORY_EVENTS")
            .map(|text| {
                text.split(',')
                    .map(|n| number("ANNALS_HISTORY_EVENTS", n))
                    .collect()
            })
            .unwrap_or_else(|_| vec![1_000_000, 10_000_000]);
        let config = Config {
            sizes,
            streams: var("ANNALS_HISTORY_STREAMS", 100_000),
            batch: var("ANNALS_HISTORY_BATCH", 10),
            payload: var("ANNALS_HISTORY_PAYLOAD", 100),
            segment_bytes: var("ANNALS_HISTORY_SEGMENT_BYTES", 64 << 20) as u64,
            repeat: var("ANNALS_HISTORY_REPEAT", 3).max(1),
            sample: var("ANNALS_HISTORY_SAMPLE", 10_000).max(1),
            dir: std::env::var_os("ANNALS_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        };
        assert!(config.sizes.iter().all(|&n| n > 0));
        assert!(config.streams > 0 && config.batch > 0);
        config
    }

    /// The store of `events` events, named by every parameter it was built with.
    fn store_dir(&self, events: usize) -> PathBuf {
        self.dir.join(format!(
            "annals-history-{events}e-{}s-{}b-{}p-{}seg",
            self.streams, self.batch, self.payload, self.segment_bytes
        ))
    }
}

fn stream_name(i: usize) -> String {
    format!("history-{i:07}")
}

fn log(message: impl AsRef<str>) {
    eprintln!("[history] {}", message.as_ref());
}

// ---------------------------------------------------------------------------
// Building (or finding) the store.

struct Built {
    dir: PathBuf,
    events: usize,
    append_seconds: f64,
    close_seconds: f64,
    /// Whether this run built it (or found it built by an earlier run).
    this_run: bool,
    segment_files: usize,
    store_bytes: u64,
}

fn build(config: &Config, events: usize) -> Built {
    let dir = config.store_dir(events);
    let marker = dir.with_extension("built");
    let found = fs::read_to_string(&marker).ok().and_then(|text| {
        let get = |key: &str| -> Option<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some((get("append_seconds")?, get("close_seconds")?))
    });
    let (append_seconds, close_seconds, this_run) = match found {
        Some((append, close)) if dir.is_dir() => {
            log(format!(
                "reusing {} (built by an earlier run)",
                dir.display()
            ));
            (append, close, false)
        }
        _ => {
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_file(&marker);
            log(format!("building {} ({events} events)", dir.display()));
            let data = payload(config.payload);
            let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
            let options = Options::default()
                .durability(Durability::None)
                .segment_size_bytes(config.segment_bytes);
            let store = Store::open(&dir, options).expect("creating the store");
            let started = Instant::now();
            let mut written = 0;
            let mut b = 0;
            while written < events {
                let count = config.batch.min(events - written);
                let batch: Vec<EventData> = (0..count)
                    .map(|_| EventData::new(EVENT_TYPE, data.clone()))
                    .collect();
                store
                    .append(&streams[b % config.streams], ExpectedVersion::Any, &batch)
                    .expect("append");
                written += count;
                b += 1;
            }
            store.flush().expect("flush");
            let append = started.elapsed().as_secs_f64();
            let started = Instant::now();
            store.close().expect("close");
            let close = started.elapsed().as_secs_f64();
            fs::write(
                &marker,
                format!("append_seconds={append}\nclose_seconds={close}\nevents={events}\n"),
            )
            .expect("writing the marker");
            log(format!(
                "   appended in {append:.2} s ({:.2} M events/s), closed in {close:.3} s",
                events as f64 / append / 1e6
            ));
            (append, close, true)
        }
    };
    let (mut segment_files, mut store_bytes) = (0, 0);
    for entry in fs::read_dir(&dir).expect("listing the store").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let len = entry.metadata().map_or(0, |m| m.len());
        store_bytes += len;
        if annals::is_segment_file_name(&name) {
            segment_files += 1;
        }
    }
    Built {
        dir,
        events,
        append_seconds,
        close_seconds,
        this_run,
        segment_files,
        store_bytes,
    }
}

// ---------------------------------------------------------------------------
// One open, in a child process.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Writable,
    WritableRebuild,
    ReadOnly,
    ReadOnlyRebuild,
    /// A default writable open of the copy a writable rebuild opened.
    WritableAfterRebuild,
}

/// In the order of a round. The writable rebuild and the open after it run
/// on a copy of the store (see [`copy_store`]).
const KINDS: [Kind; 5] = [
    Kind::Writable,
    Kind::WritableRebuild,
    Kind::WritableAfterRebuild,
    Kind::ReadOnly,
    Kind::ReadOnlyRebuild,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Writable => "writable",
            Kind::WritableRebuild => "writable-rebuild",
            Kind::ReadOnly => "read-only",
            Kind::ReadOnlyRebuild => "read-only-rebuild",
            Kind::WritableAfterRebuild => "writable-after-rebuild",
        }
    }

    fn from_name(name: &str) -> Kind {
        KINDS
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or_else(|| panic!("no open kind {name:?}"))
    }

    fn open(self, dir: &Path) -> Store {
        let options = Options::default().durability(Durability::None);
        match self {
            Kind::Writable | Kind::WritableAfterRebuild => Store::open(dir, options),
            Kind::WritableRebuild => Store::open(dir, options.rebuild_index(true)),
            Kind::ReadOnly => Store::open_read_only(dir),
            Kind::ReadOnlyRebuild => Store::open_read_only_rebuilding_index(dir),
        }
        .expect("open")
    }
}

/// A `kB` field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of every thread of this process, from schedstat (nanoseconds):
/// unlike wall time, it does not grow while other tenants hold the CPU.
fn process_cpu_seconds() -> f64 {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

fn child_open(spec: &str) {
    let (kind, dir) = spec.split_once(':').expect("KIND:DIR");
    let kind = Kind::from_name(kind);
    let anon_before = status_bytes("RssAnon");
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let store = kind.open(Path::new(dir));
    let open_seconds = started.elapsed().as_secs_f64();
    let open_cpu_seconds = process_cpu_seconds() - cpu_before;
    let anon_after = status_bytes("RssAnon");
    println!("open_seconds={open_seconds}");
    println!("open_cpu_seconds={open_cpu_seconds}");
    println!("events={}", store.next_position());
    println!("streams={}", store.stream_count());
    println!("index_heap_bytes={}", store.index_heap_bytes());
    println!(
        "rss_anon_delta_bytes={}",
        anon_after as i64 - anon_before as i64
    );
    println!("vm_hwm_bytes={}", status_bytes("VmHWM"));
    let report = store.recovery_report();
    println!("recovered={}", report.items.len());
    for item in &report.items {
        eprintln!("[history] {} open found: {item:?}", kind.name());
    }
    println!("index_rebuilds={}", store.index_rebuilds().len());
    let started = Instant::now();
    store.close().expect("close");
    println!("close_seconds={}", started.elapsed().as_secs_f64());
}

#[derive(Default, Clone)]
struct Open {
    seconds: Vec<f64>,
    cpu_seconds: Vec<f64>,
    close_seconds: Vec<f64>,
    events: f64,
    streams: f64,
    index_heap_bytes: f64,
    rss_anon_delta_bytes: f64,
    vm_hwm_bytes: f64,
    recovered: f64,
    index_rebuilds: f64,
}

fn measure_open(kind: Kind, dir: &Path) -> Open {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_VAR, format!("{}:{}", kind.name(), dir.display()))
        .output()
        .expect("running the open measurement");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{} open failed", kind.name());
    let text = String::from_utf8_lossy(&output.stdout);
    let get = |key: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("open measurement did not report {key}: {text}"))
    };
    Open {
        seconds: vec![get("open_seconds")],
        cpu_seconds: vec![get("open_cpu_seconds")],
        close_seconds: vec![get("close_seconds")],
        events: get("events"),
        streams: get("streams"),
        index_heap_bytes: get("index_heap_bytes"),
        rss_anon_delta_bytes: get("rss_anon_delta_bytes"),
        vm_hwm_bytes: get("vm_hwm_bytes"),
        recovered: get("recovered"),
        index_rebuilds: get("index_rebuilds"),
    }
}

/// A copy of the store at `dir` for the writable rebuild, whose open
/// rewrites the index files and the checkpoint: the original keeps the
/// checkpoint of its clean close. Sealed segments (read-only files, never written
/// again) are hard links; the rest is copied.
fn copy_store(dir: &Path) -> PathBuf {
    let copy = dir.with_extension("rebuild-copy");
    let _ = fs::remove_dir_all(&copy);
    fs::create_dir_all(&copy).expect("creating the copy");
    for entry in fs::read_dir(dir).expect("listing the store").flatten() {
        let name = entry.file_name();
        let read_only = entry.metadata().is_ok_and(|m| m.permissions().readonly());
        let (from, to) = (entry.path(), copy.join(&name));
        if read_only && annals::is_segment_file_name(&name.to_string_lossy()) {
            fs::hard_link(&from, &to).expect("linking a sealed segment");
        } else {
            fs::copy(&from, &to).expect("copying a store file");
        }
    }
    copy
}

/// Every kind of open, taking turns, `repeat` rounds. Memory figures are
/// the last round's (they do not vary between rounds).
fn opens(config: &Config, built: &Built) -> [Open; 5] {
    let mut all: [Open; 5] = Default::default();
    let copy = copy_store(&built.dir);
    for round in 0..config.repeat {
        let mut line = Vec::new();
        for (i, kind) in KINDS.into_iter().enumerate() {
            let dir = match kind {
                Kind::WritableRebuild | Kind::WritableAfterRebuild => &copy,
                _ => &built.dir,
            };
            let one = measure_open(kind, dir);
            assert_eq!(one.events as usize, built.events, "{} open", kind.name());
            line.push(format!(
                "{} {:.4} s (cpu {:.4} s, close {:.3} s, heap {:.0} B, recovered {}, index rebuilds {})",
                kind.name(),
                one.seconds[0],
                one.cpu_seconds[0],
                one.close_seconds[0],
                one.index_heap_bytes,
                one.recovered,
                one.index_rebuilds
            ));
            let mut merged = one.clone();
            merged.seconds = [all[i].seconds.clone(), one.seconds].concat();
            merged.cpu_seconds = [all[i].cpu_seconds.clone(), one.cpu_seconds].concat();
            merged.close_seconds = [all[i].close_seconds.clone(), one.close_seconds].concat();
            merged.recovered += all[i].recovered;
            merged.index_rebuilds += all[i].index_rebuilds;
            all[i] = merged;
        }
        log(format!(
            "   open round {round}:\n     {}",
            line.join("\n     ")
        ));
    }
    let _ = fs::remove_dir_all(&copy);
    all
}

// ---------------------------------------------------------------------------
// Whole-stream reads.

struct Reads {
    /// Events per second: [mapped, in memory] × [read_stream, scan_stream].
    read_stream: [f64; 2],
    scan_stream: [f64; 2],
    first_read_stream: [f64; 2],
    events_per_pass: usize,
}

fn sample_streams(config: &Config) -> Vec<String> {
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    (0..config.sample)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            stream_name((seed % config.streams as u64) as usize)
        })
        .collect()
}

fn read_pass(store: &Store, streams: &[String]) -> (f64, usize) {
    let started = Instant::now();
    let mut events = 0;
    for stream in streams {
        let read = store
            .read_stream(stream, 1, usize::MAX)
            .expect("read_stream");
        events += read.len();
        black_box(read);
    }
    (started.elapsed().as_secs_f64(), events)
}

fn scan_pass(store: &Store, streams: &[String]) -> (f64, usize) {
    let started = Instant::now();
    let mut events = 0;
    for stream in streams {
        store
            .scan_stream(stream, 1, |event| {
                black_box(event.data);
                events += 1;
                ControlFlow::Continue(())
            })
            .expect("scan_stream");
    }
    (started.elapsed().as_secs_f64(), events)
}

fn reads(config: &Config, built: &Built) -> Reads {
    let streams = sample_streams(config);
    let mapped = Store::open_read_only(&built.dir).expect("read-only open");
    let heap = Store::open_read_only_rebuilding_index(&built.dir).expect("rebuilding open");
    let stores = [&mapped, &heap];
    // The first pass of each: the mapped store checks each index file on
    // its first use.
    let mut first = [0.0; 2];
    let mut events_per_pass = 0;
    for (i, store) in stores.iter().enumerate() {
        let (seconds, events) = read_pass(store, &streams);
        first[i] = events as f64 / seconds;
        events_per_pass = events;
    }
    let mut read_rates: [Vec<f64>; 2] = Default::default();
    let mut scan_rates: [Vec<f64>; 2] = Default::default();
    for round in 0..config.repeat {
        for (i, store) in stores.iter().enumerate() {
            let (seconds, events) = read_pass(store, &streams);
            assert_eq!(events, events_per_pass);
            read_rates[i].push(events as f64 / seconds);
            let (seconds, events) = scan_pass(store, &streams);
            assert_eq!(events, events_per_pass);
            scan_rates[i].push(events as f64 / seconds);
        }
        log(format!(
            "   read round {round}: read_stream mapped {:.2} M/s, in memory {:.2} M/s; scan_stream mapped {:.2} M/s, in memory {:.2} M/s",
            read_rates[0][round] / 1e6,
            read_rates[1][round] / 1e6,
            scan_rates[0][round] / 1e6,
            scan_rates[1][round] / 1e6
        ));
    }
    let [r0, r1] = read_rates;
    let [s0, s1] = scan_rates;
    Reads {
        read_stream: [median(r0), median(r1)],
        scan_stream: [median(s0), median(s1)],
        first_read_stream: first,
        events_per_pass,
    }
}

// ---------------------------------------------------------------------------
// Report.

struct Measured {
    built: Built,
    opens: [Open; 5],
    reads: Reads,
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn print_table(config: &Config, all: &[Measured]) {
    println!();
    println!(
        "| workload | events | checkpoint / mapped index | rebuild / in-memory index | same-run ratio | target |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |workload: &str, events: usize, a: String, b: String, ratio: String, target: &str| {
        println!("| {workload} | {events} | {a} | {b} | {ratio} | {target} |");
    };
    for m in all {
        let n = m.built.events;
        let [w, wr, war, r, rr] = &m.opens;
        let per_stream = n as f64 / w.streams;
        row(
            &format!(
                "build: append (batches of {}, durability none), events/s",
                config.batch
            ),
            n,
            format!(
                "{} /s ({:.2} s; close {}){}",
                si(n as f64 / m.built.append_seconds),
                m.built.append_seconds,
                seconds(m.built.close_seconds),
                if m.built.this_run {
                    ""
                } else {
                    ", from an earlier run"
                }
            ),
            "—".into(),
            format!(
                "{} segments, {:.0} MB on disk",
                m.built.segment_files,
                m.built.store_bytes as f64 / 1e6
            ),
            "unchanged (see the A/B `annals bench` runs)",
        );
        for (name, a, b) in [("writable", w, wr), ("read-only", r, rr)] {
            let (ta, tb) = (median(a.seconds.clone()), median(b.seconds.clone()));
            row(
                &format!("open, {name} (median of {})", a.seconds.len()),
                n,
                format!(
                    "{} (cpu {})",
                    seconds(ta),
                    seconds(median(a.cpu_seconds.clone()))
                ),
                format!(
                    "{} (cpu {})",
                    seconds(tb),
                    seconds(median(b.cpu_seconds.clone()))
                ),
                format!("rebuild / checkpoint = {:.0}×", tb / ta),
                "≥ 100× (10M)",
            );
        }
        row(
            &format!(
                "open, writable, of the copy after its writable rebuild (the checkpoint that rebuild wrote; median of {})",
                war.seconds.len()
            ),
            n,
            format!(
                "{} (cpu {})",
                seconds(median(war.seconds.clone())),
                seconds(median(war.cpu_seconds.clone()))
            ),
            "—".into(),
            format!(
                "rebuild / this = {:.0}×",
                median(wr.seconds.clone()) / median(war.seconds.clone())
            ),
            "",
        );
        row(
            "close after the writable open (nothing appended: writes nothing)",
            n,
            seconds(median(w.close_seconds.clone())),
            seconds(median(wr.close_seconds.clone())),
            String::new(),
            "",
        );
        for (name, a, b) in [("writable", w, wr), ("read-only", r, rr)] {
            row(
                &format!("index heap after a {name} open, bytes/event (bytes/stream)"),
                n,
                format!(
                    "{:.2} ({:.0})",
                    a.index_heap_bytes / n as f64,
                    a.index_heap_bytes / a.streams
                ),
                format!(
                    "{:.2} ({:.0})",
                    b.index_heap_bytes / n as f64,
                    b.index_heap_bytes / b.streams
                ),
                format!(
                    "checkpoint / rebuild = {:.3}",
                    a.index_heap_bytes / b.index_heap_bytes
                ),
                if name == "read-only" {
                    "≤ 0.2 of today's (streams of 100)"
                } else {
                    ""
                },
            );
        }
        row(
            "read-only open: anonymous RSS growth, bytes/event; peak RSS (VmHWM)",
            n,
            format!(
                "{:.2}; {:.0} MB",
                r.rss_anon_delta_bytes / n as f64,
                r.vm_hwm_bytes / 1e6
            ),
            format!(
                "{:.2}; {:.0} MB",
                rr.rss_anon_delta_bytes / n as f64,
                rr.vm_hwm_bytes / 1e6
            ),
            String::new(),
            "",
        );
        let reads = &m.reads;
        let sample = format!(
            "{} random streams of ~{per_stream:.0}, {} events per pass",
            config.sample, reads.events_per_pass
        );
        for (name, rates, target) in [
            (
                "`read_stream(s, 1, usize::MAX)`",
                reads.read_stream,
                "≥ 0.5×",
            ),
            ("`scan_stream`", reads.scan_stream, "≥ 0.5×"),
            (
                "first pass of `read_stream` (checks each index file on first use)",
                reads.first_read_stream,
                "",
            ),
        ] {
            row(
                &format!("{name}, read-only store, {sample}, events/s"),
                n,
                format!("{} /s", si(rates[0])),
                format!("{} /s", si(rates[1])),
                format!("mapped / in-memory = {:.2}×", rates[0] / rates[1]),
                target,
            );
        }
    }
    // Growth from the smallest to the largest size.
    if let (Some(small), Some(large)) = (all.first(), all.last())
        && all.len() > 1
    {
        let (ns, nl) = (small.built.events, large.built.events);
        for (i, name) in [(0, "writable"), (3, "read-only")] {
            let growth = |k: usize| {
                median(large.opens[k].seconds.clone()) / median(small.opens[k].seconds.clone())
            };
            println!(
                "| growth of open time, {name}, {ns} → {nl} events | {}× events | {:.2}× | {:.2}× | | checkpoint ≤ 2× |",
                nl / ns,
                growth(i),
                growth(i + 1)
            );
        }
        let marginal = |k: usize| {
            (large.opens[k].index_heap_bytes - small.opens[k].index_heap_bytes) / (nl - ns) as f64
        };
        println!(
            "| index heap growth per added sealed event, read-only, {ns} → {nl} | | {:.3} B | {:.3} B | | checkpoint ≤ 1 B/event |",
            marginal(3),
            marginal(4)
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        child_open(&spec);
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!("history: run with `cargo bench --bench history`");
        return;
    }
    let config = Config::from_env();
    fs::create_dir_all(&config.dir).expect("creating the bench dir");
    let started = Instant::now();
    log(format!(
        "machine: {}; load average {}",
        machine(),
        load_average()
    ));
    let mut all = Vec::new();
    for &events in &config.sizes {
        let built = build(&config, events);
        log(format!("{events} events: opens"));
        let opens = opens(&config, &built);
        log(format!("{events} events: whole-stream reads"));
        let reads = reads(&config, &built);
        all.push(Measured {
            built,
            opens,
            reads,
        });
    }
    println!("machine: {}", machine());
    println!(
        "load average at the start: see stderr; at the end: {}",
        load_average()
    );
    println!(
        "{} streams, batches of {}, {}-byte payloads, {}-byte segments, durability none; \
         opens run in child processes, page cache warm",
        config.streams, config.batch, config.payload, config.segment_bytes
    );
    print_table(&config, &all);
    log(format!(
        "total time {:.0} s",
        started.elapsed().as_secs_f64()
    ));
}
