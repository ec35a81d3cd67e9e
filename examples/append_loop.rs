//! A loop of borrowed appends and nothing else, for profiling the append
//! path (issue 15): the workload of `benches/compare.rs` workload 7
//! (1,000 streams round robin, exact expected versions, 256-byte payloads,
//! a correlation id per append, `Durability::None`) without the other
//! contenders, so that a profiler sees only annals.
//!
//! ```sh
//! cargo build --release --example append_loop
//! perf record -e cpu-clock -g target/release/examples/append_loop 10 1000000
//! perf report --no-children --sort comm,dso,sym
//! ```
//!
//! Arguments: events per append (default 10), events in all (default
//! 1,000,000). Prints the rate and the appending thread's CPU time per
//! event; `docs/benchmarks.md` ("Where an append's time goes") has a
//! profile taken with it.

use std::time::Instant;

use annals::{Durability, EventDataRef, ExpectedVersion, Options, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().map_or(Ok(10), |a| a.parse())?;
    let events: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    if batch == 0 || events < batch {
        return Err(
            "usage: append_loop [EVENTS_PER_APPEND] [EVENTS], EVENTS >= EVENTS_PER_APPEND > 0"
                .into(),
        );
    }
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), Options::default().durability(Durability::None))?;
    let data = vec![7u8; 256];
    let streams: Vec<String> = (0..1_000).map(|i| format!("stream-{i}")).collect();
    let mut versions = vec![0u64; streams.len()];
    let started = Instant::now();
    let cpu_started = thread_cpu_ns();
    for b in 0..events / batch {
        let s = b % streams.len();
        let correlation = format!("corr-{b}");
        let batch_events: Vec<EventDataRef<'_>> = (0..batch)
            .map(|_| EventDataRef::new("ItemAdded", &data).with_correlation_id(&correlation))
            .collect();
        versions[s] = store
            .append_ref(
                &streams[s],
                ExpectedVersion::Exact(versions[s]),
                &batch_events,
            )?
            .last_version;
    }
    let seconds = started.elapsed().as_secs_f64();
    let appended = (events / batch * batch) as f64;
    // The appending thread's own CPU time: what the other threads (the
    // page prefaulter, the indexer) take off it shows here, whatever the
    // load of the machine.
    let cpu_ns = thread_cpu_ns()
        .zip(cpu_started)
        .map(|(end, start)| (end - start) as f64);
    println!(
        "{:.0} events/s, appending thread {} ns of CPU per event ({} per append)",
        appended / seconds,
        cpu_ns.map_or("?".to_string(), |ns| format!("{:.0}", ns / appended)),
        batch
    );
    store.close()?;
    Ok(())
}

/// CPU time of the calling thread in nanoseconds (Linux's schedstat).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
