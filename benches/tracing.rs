//! `annals::tracing` against tracing-appender (issue 17), in one run:
//!
//! - **annals**: `annals::tracing::layer` into a store with
//!   `Durability::Periodic { interval_ms: 100 }`, a full queue blocking;
//! - **tracing-appender**: tracing-subscriber's fmt layer writing JSON lines
//!   (`.json()`) through tracing-appender's non-blocking writer
//!   (`lossy(false)`: a full queue blocks too) to a file
//!   (`rolling::never`), as its documentation sets it up. It never syncs.
//!
//! Both log the same event: `info!(user = "ada", request = i,
//! elapsed_ms = 1.5, ok = true, "request done")`.
//!
//! Measured:
//! 1. the calling thread's cost per event (p50, p99): one thread logs
//!    bursts of [`BURST`] events, each call timed alone; a burst is smaller
//!    than either queue, so it measures the handing over, not the disk.
//!    Between bursts both writers get [`SETTLE`] to drain.
//! 2. events per second from 1 and from 4 threads, sustained: the time from
//!    the first call until every event is written (annals: also synced, by
//!    the flush guard; tracing-appender: its worker guard's drop).
//! 3. bytes on disk per event after the 4-thread run: annals' log bytes
//!    (complete batches, `verify`'s `data_bytes`; segments are
//!    preallocated, so the files are larger), the JSON file's size.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ANNALS_BENCH_EVENTS` | 1000000 | events of each throughput run |
//! | `ANNALS_BENCH_BURSTS` | 20 | bursts of the calling-thread measurement |
//! | `ANNALS_BENCH_DIR` | the system temp dir | where the logs are written |
//!
//! Run: `cargo bench --bench tracing --features tracing`. Timings are never
//! asserted anywhere.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use annals::{Durability, Options, Store, VerifyOptions};
use common::{env_number, machine};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// Events per burst of the calling-thread measurement: well under both
/// queues (annals 32,768, tracing-appender 128,000).
const BURST: usize = 10_000;
/// Pause after each burst, for the writers to drain their queues.
const SETTLE: Duration = Duration::from_millis(200);
/// annals' periodic sync interval.
const SYNC_INTERVAL_MS: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    Annals,
    Appender,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Annals => "annals",
            Contender::Appender => "tracing-appender (JSON lines)",
        }
    }
}

/// A subscriber writing into `dir`, and what finishes it: drains the queue
/// and (annals) syncs, when dropped.
struct Logger {
    dispatch: Dispatch,
    finish: Box<dyn FnOnce() + Send>,
}

fn logger(contender: Contender, dir: &Path) -> Logger {
    match contender {
        Contender::Annals => {
            let options = Options::default().durability(Durability::Periodic {
                interval_ms: SYNC_INTERVAL_MS,
            });
            let store = Store::open(dir, options).expect("opening the bench store");
            let layer = annals::tracing::layer(store);
            let guard = layer.guard();
            let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
            Logger {
                dispatch,
                finish: Box::new(move || {
                    guard.flush().expect("flushing the bench store");
                    let stats = guard.stats();
                    assert_eq!((stats.dropped, stats.failed), (0, 0), "{stats:?}");
                }),
            }
        }
        Contender::Appender => {
            let file = tracing_appender::rolling::never(dir, "log.json");
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(file);
            let layer = tracing_subscriber::fmt::layer().json().with_writer(writer);
            let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
            Logger {
                dispatch,
                finish: Box::new(move || drop(guard)),
            }
        }
    }
}

#[inline(always)]
fn log_one(request: u64) {
    tracing::info!(
        target: "bench",
        user = "ada",
        request,
        elapsed_ms = 1.5f64,
        ok = true,
        "request done"
    );
}

/// Nanoseconds of each call, over `bursts` bursts (after one unmeasured).
fn calling_thread_costs(contender: Contender, root: &Path, bursts: usize) -> Vec<u64> {
    let dir = root.join(format!("{contender:?}-latency"));
    let Logger { dispatch, finish } = logger(contender, &dir);
    let mut costs = Vec::with_capacity(bursts * BURST);
    tracing::dispatcher::with_default(&dispatch, || {
        for burst in 0..=bursts {
            for i in 0..BURST {
                let start = Instant::now();
                log_one(i as u64);
                let cost = start.elapsed();
                if burst > 0 {
                    costs.push(u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX));
                }
            }
            std::thread::sleep(SETTLE);
        }
    });
    finish();
    drop(dispatch);
    costs.sort_unstable();
    costs
}

fn percentile(sorted: &[u64], per_cent: usize) -> u64 {
    sorted[(sorted.len() * per_cent / 100).min(sorted.len() - 1)]
}

/// Events per second from `threads` threads logging `events` in all,
/// until written (and synced, for annals); and the directory written.
fn throughput(
    contender: Contender,
    root: &Path,
    threads: usize,
    events: usize,
) -> (f64, std::path::PathBuf) {
    let dir = root.join(format!("{contender:?}-{threads}-threads"));
    let Logger { dispatch, finish } = logger(contender, &dir);
    let each = events / threads;
    let barrier = Barrier::new(threads + 1);
    let mut start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (dispatch, barrier) = (&dispatch, &barrier);
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    barrier.wait();
                    for i in 0..each {
                        log_one(i as u64);
                    }
                });
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    finish();
    let seconds = start.elapsed().as_secs_f64();
    drop(dispatch);
    ((each * threads) as f64 / seconds, dir)
}

fn bytes_per_event(contender: Contender, dir: &Path, events: usize) -> f64 {
    let bytes = match contender {
        Contender::Annals => {
            let report = annals::verify(dir, &VerifyOptions::default()).expect("verifying");
            assert_eq!(report.corruption_count, 0);
            assert_eq!(
                report.summary.events, events as u64,
                "every event is in the log"
            );
            report.summary.data_bytes
        }
        Contender::Appender => {
            let file = dir.join("log.json");
            let lines = std::fs::read_to_string(&file).expect("reading the JSON lines");
            assert_eq!(lines.lines().count(), events, "every event is in the file");
            std::fs::metadata(&file).expect("the JSON file").len()
        }
    };
    bytes as f64 / events as f64
}

fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "uptime unavailable".into())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("tracing: run with `cargo bench --bench tracing --features tracing`");
        return;
    }
    let events = env_number("ANNALS_BENCH_EVENTS", 1_000_000);
    let bursts = env_number("ANNALS_BENCH_BURSTS", 20).max(1);
    let base = std::env::var_os("ANNALS_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let root = tempfile::Builder::new()
        .prefix("annals-bench-tracing-")
        .tempdir_in(base)
        .expect("creating the bench directory");
    println!("machine: {}", machine());
    println!("load before: {}", uptime());

    let contenders = [Contender::Annals, Contender::Appender];
    let mut rows = Vec::new();
    for contender in contenders {
        eprintln!("{}: calling-thread cost", contender.name());
        let costs = calling_thread_costs(contender, root.path(), bursts);
        let (p50, p99) = (percentile(&costs, 50), percentile(&costs, 99));
        eprintln!("{}: 1 thread", contender.name());
        let (one, _) = throughput(contender, root.path(), 1, events);
        eprintln!("{}: 4 threads", contender.name());
        let (four, dir) = throughput(contender, root.path(), 4, events);
        let bytes = bytes_per_event(contender, &dir, events / 4 * 4);
        rows.push((contender, p50, p99, one, four, bytes));
    }
    println!("load after: {}", uptime());
    println!();
    println!(
        "| contender | calling thread p50 | p99 | events/s, 1 thread | events/s, 4 threads | bytes on disk per event |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (contender, p50, p99, one, four, bytes) in &rows {
        println!(
            "| {} | {p50} ns | {p99} ns | {:.0} | {:.0} | {bytes:.0} |",
            contender.name(),
            one,
            four
        );
    }
    let (_, a50, a99, a1, a4, ab) = rows[0];
    let (_, t50, t99, t1, t4, tb) = rows[1];
    println!();
    println!("annals ÷ tracing-appender, same run:");
    println!(
        "- calling-thread cost: p50 {:.2}×, p99 {:.2}× (target ≤ 1.5×)",
        a50 as f64 / t50 as f64,
        a99 as f64 / t99 as f64
    );
    println!(
        "- events/s: 1 thread {:.2}×, 4 threads {:.2}× (annals 4 threads: {:.2} M/s; target ≥ 1 M/s)",
        a1 / t1,
        a4 / t4,
        a4 / 1e6
    );
    println!("- bytes on disk per event: {:.2}×", ab / tb);
}
