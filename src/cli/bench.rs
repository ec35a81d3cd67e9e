//! `annals bench`: measures this machine, like pgbench or
//! kafka-producer-perf-test. Appends N events in batches, reads them back by
//! stream and in log order (checking that every one is there), reopens the
//! store (from the index checkpoint its close wrote, then once more
//! rebuilding the whole index from the log, as `Options::rebuild_index`
//! does), and prints rates, latencies and open times.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use serde::Serialize;

use super::args::BenchArgs;
use super::failure::Failure;
use super::output::{Output, progress_bar};

/// Events read per call in the read phases.
const PAGE_EVENTS: usize = 1024;

#[derive(Debug, Serialize)]
struct Report {
    directory: PathBuf,
    cores: usize,
    events: u64,
    payload_bytes: usize,
    streams: u64,
    batch_events: u64,
    durability: String,
    append: Rate,
    /// Latency of one append call (one batch), milliseconds.
    append_latency_p50_ms: f64,
    append_latency_p99_ms: f64,
    append_latency_max_ms: f64,
    read_by_stream: Rate,
    read_in_log_order: Rate,
    /// Opening the store again: loading the index checkpoint written at
    /// close, mapping the index files, walking only the log after it.
    reopen_seconds: f64,
    /// Index heap after that open (an estimate).
    index_heap_bytes: usize,
    index_bytes_per_event: f64,
    /// Opening it once more with `Options::rebuild_index`: reading every
    /// segment and rebuilding the whole index in memory.
    reopen_rebuild_seconds: f64,
    /// Index heap after the rebuilding open.
    rebuild_index_heap_bytes: usize,
    segment_files: u64,
    segment_file_bytes: u64,
}

/// A throughput measurement. MB are 10^6 bytes of event data (payload).
#[derive(Debug, Serialize)]
struct Rate {
    seconds: f64,
    events_per_second: f64,
    payload_mb_per_second: f64,
}

impl Rate {
    fn new(events: u64, payload_bytes: usize, elapsed: Duration) -> Rate {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Rate {
            seconds,
            events_per_second: events as f64 / seconds,
            payload_mb_per_second: events as f64 * payload_bytes as f64 / 1e6 / seconds,
        }
    }
}

pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    if args.events == 0 || args.batch == 0 || args.streams == 0 {
        return Err(Failure::other(
            "--events, --batch and --streams must be at least 1",
        ));
    }
    let temporary;
    let dir = match &args.dir {
        Some(dir) => {
            let is_empty = std::fs::read_dir(dir).map_or(true, |mut e| e.next().is_none());
            if !is_empty {
                return Err(Failure::other(format!(
                    "{} is not empty: bench needs an empty or missing directory",
                    dir.display()
                )));
            }
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("annals-bench-")
                .tempdir()
                .map_err(|e| Failure::other(format!("creating a temporary directory: {e}")))?;
            temporary.path().to_path_buf()
        }
    };
    if args.import {
        return super::bench_import::run(args, &dir);
    }
    let report = measure(args, &dir)?;
    let mut out = Output::stdout();
    if args.json {
        out.json_line(&report)?;
    } else {
        out.text(&render(&report))?;
    }
    out.flush()
    // `temporary`, if any, is removed here.
}

fn measure(args: &BenchArgs, dir: &Path) -> Result<Report, Failure> {
    let options = annals::Options::default()
        .durability(args.durability.into())
        .segment_size_bytes(args.segment_size_bytes);
    let payload: Vec<u8> = (0..args.payload_bytes)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
        .collect();
    let streams: Vec<String> = (0..args.streams).map(|i| format!("bench-{i}")).collect();
    let batches = args.events.div_ceil(args.batch);

    // A new store in an empty or missing directory (checked above).
    let store = Store::open(dir, options.clone())?;
    let bar = progress_bar(args.events, "appending");
    let mut latencies = Vec::with_capacity(batches as usize);
    let started = Instant::now();
    for batch in 0..batches {
        let count = args.batch.min(args.events - batch * args.batch);
        let events: Vec<EventData> = (0..count)
            .map(|_| EventData::new("BenchEvent", payload.clone()))
            .collect();
        let stream = &streams[(batch % args.streams) as usize];
        let call = Instant::now();
        store.append(stream, ExpectedVersion::Any, &events)?;
        latencies.push(call.elapsed());
        bar.inc(count);
    }
    store.flush()?;
    let append = Rate::new(args.events, args.payload_bytes, started.elapsed());
    bar.finish_and_clear();

    let bar = progress_bar(args.events, "reading streams");
    let started = Instant::now();
    let mut read = 0;
    for stream in &streams {
        let mut version = 1;
        loop {
            let page = store.read_stream(stream, version, PAGE_EVENTS)?;
            let Some(last) = page.last() else { break };
            version = last.version + 1;
            read += check_payloads(&page, &payload)?;
            bar.inc(page.len() as u64);
        }
    }
    let read_by_stream = Rate::new(read, args.payload_bytes, started.elapsed());
    check_count("reading by stream", read, args.events)?;
    bar.finish_and_clear();

    let bar = progress_bar(args.events, "reading the log");
    let started = Instant::now();
    let mut position = 0;
    loop {
        let page = store.read_all(position, PAGE_EVENTS)?;
        let Some(last) = page.last() else { break };
        if last.position != position + page.len() as u64 - 1 {
            return Err(Failure::other(format!(
                "reading the log from position {position} skipped positions"
            )));
        }
        position = last.position + 1;
        check_payloads(&page, &payload)?;
        bar.inc(page.len() as u64);
    }
    let read_in_log_order = Rate::new(position, args.payload_bytes, started.elapsed());
    check_count("reading the log", position, args.events)?;
    bar.finish_and_clear();
    store.close()?;

    let started = Instant::now();
    let store = Store::open(dir, options.clone())?;
    let reopen = started.elapsed();
    check_count("reopening", store.next_position(), args.events)?;
    let index_heap_bytes = store.index_heap_bytes();
    store.close()?;

    let started = Instant::now();
    let store = Store::open(dir, options.rebuild_index(true))?;
    let reopen_rebuild = started.elapsed();
    check_count("reopening (rebuild)", store.next_position(), args.events)?;
    let rebuild_index_heap_bytes = store.index_heap_bytes();
    store.close()?;

    let (segment_files, segment_file_bytes) = segment_files(dir);
    latencies.sort_unstable();
    Ok(Report {
        directory: dir.to_path_buf(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        events: args.events,
        payload_bytes: args.payload_bytes,
        streams: args.streams,
        batch_events: args.batch,
        durability: format!("{:?}", args.durability).to_lowercase(),
        append,
        append_latency_p50_ms: percentile_ms(&latencies, 0.50),
        append_latency_p99_ms: percentile_ms(&latencies, 0.99),
        append_latency_max_ms: percentile_ms(&latencies, 1.0),
        read_by_stream,
        read_in_log_order,
        reopen_seconds: reopen.as_secs_f64(),
        index_heap_bytes,
        index_bytes_per_event: index_heap_bytes as f64 / args.events as f64,
        reopen_rebuild_seconds: reopen_rebuild.as_secs_f64(),
        rebuild_index_heap_bytes,
        segment_files,
        segment_file_bytes,
    })
}

/// Checks that every event read carries the payload written; returns how many.
fn check_payloads(events: &[annals::RecordedEvent], payload: &[u8]) -> Result<u64, Failure> {
    match events.iter().find(|e| e.data != payload) {
        Some(event) => Err(Failure::other(format!(
            "event {} of stream {:?} reads back different data",
            event.version, event.stream
        ))),
        None => Ok(events.len() as u64),
    }
}

fn check_count(phase: &str, found: u64, written: u64) -> Result<(), Failure> {
    if found == written {
        Ok(())
    } else {
        Err(Failure::other(format!(
            "{phase} found {found} events, but {written} were appended"
        )))
    }
}

/// The `fraction` percentile (nearest rank) of sorted `latencies`, in milliseconds.
fn percentile_ms(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn segment_files(dir: &Path) -> (u64, u64) {
    let mut count = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if annals::is_segment_file_name(&entry.file_name().to_string_lossy()) {
            count += 1;
            bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    (count, bytes)
}

fn render(report: &Report) -> String {
    let rate = |r: &Rate| {
        format!(
            "{:>12.0} events/s {:>9.1} MB/s  ({:.2} s)",
            r.events_per_second, r.payload_mb_per_second, r.seconds
        )
    };
    format!(
        "annals bench: {} events of {} bytes, {} streams, {} events per append, durability {}\n\
         machine: {} cores; store in {}\n\
         \n\
         append:            {}\n\
         append latency:    p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (one append of {} events)\n\
         read by stream:    {}\n\
         read in log order: {}\n\
         reopen:            {:.3} s (load the index checkpoint, map the index files)\n\
         index:             {} bytes in memory, {:.1} bytes per event\n\
         reopen, rebuild:   {:.3} s (read every segment, rebuild the index in memory: {} bytes)\n\
         segments:          {} files, {} bytes\n\
         (MB = 10^6 bytes of event data)\n",
        report.events,
        report.payload_bytes,
        report.streams,
        report.batch_events,
        report.durability,
        report.cores,
        report.directory.display(),
        rate(&report.append),
        report.append_latency_p50_ms,
        report.append_latency_p99_ms,
        report.append_latency_max_ms,
        report.batch_events,
        rate(&report.read_by_stream),
        rate(&report.read_in_log_order),
        report.reopen_seconds,
        report.index_heap_bytes,
        report.index_bytes_per_event,
        report.reopen_rebuild_seconds,
        report.rebuild_index_heap_bytes,
        report.segment_files,
        report.segment_file_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile_ms(&sorted, 0.5), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&sorted, 1.0), 100.0);
        assert_eq!(percentile_ms(&[ms(7)], 0.99), 7.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
