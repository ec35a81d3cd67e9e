//! `annals bench --import`: measures `annals import` end to end, as an
//! operator runs it: this binary, as a child process, imports the same file
//! of one-event JSON lines under each durability, the modes taking turns for
//! several rounds, its acknowledgements going to /dev/null. It prints the
//! median time of each mode and its ratio to `none` (the page cache alone,
//! one sync at the end): the cost of durable acknowledgements.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::args::BenchArgs;
use super::failure::Failure;
use super::output::{Output, per_second};

/// The modes measured, in the order they take turns.
const MODES: [&str; 3] = ["always", "periodic", "none"];

#[derive(Debug, Serialize)]
struct ImportReport {
    lines: u64,
    payload_bytes: usize,
    streams: u64,
    rounds: u64,
    input_bytes: u64,
    cores: usize,
    /// `/proc/loadavg` before the first and after the last run.
    load_before: String,
    load_after: String,
    modes: Vec<ModeReport>,
}

#[derive(Debug, Serialize)]
struct ModeReport {
    durability: &'static str,
    /// Wall time of each round, seconds (child process start to exit).
    seconds: Vec<f64>,
    median_seconds: f64,
    lines_per_second: f64,
    /// Median time over the median time of `none`.
    ratio_to_none: f64,
}

pub fn run(args: &BenchArgs, dir: &Path) -> Result<(), Failure> {
    if args.rounds == 0 {
        return Err(Failure::other("--rounds must be at least 1"));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::other(format!("creating {}: {e}", dir.display())))?;
    let input = dir.join("lines.jsonl");
    let input_bytes = write_lines(&input, args)?;
    let load_before = load_average();
    let mut seconds = vec![Vec::new(); MODES.len()];
    for round in 0..args.rounds {
        for (mode, durability) in MODES.iter().enumerate() {
            let store = dir.join(format!("{durability}-{round}"));
            seconds[mode].push(import_once(&input, &store, durability, args)?);
            // A million events take about 250 MB: keep one store at a time.
            std::fs::remove_dir_all(&store)
                .map_err(|e| Failure::other(format!("removing {}: {e}", store.display())))?;
        }
    }
    let load_after = load_average();
    let medians: Vec<f64> = seconds.iter().map(|s| median(s)).collect();
    let none = medians[MODES.len() - 1];
    let modes = MODES
        .iter()
        .zip(seconds)
        .zip(&medians)
        .map(|((durability, seconds), &median)| ModeReport {
            durability,
            seconds,
            median_seconds: median,
            lines_per_second: args.events as f64 / median,
            ratio_to_none: median / none,
        })
        .collect();
    let report = ImportReport {
        lines: args.events,
        payload_bytes: args.payload_bytes,
        streams: args.streams,
        rounds: args.rounds,
        input_bytes,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before,
        load_after,
        modes,
    };
    let mut out = Output::stdout();
    if args.json {
        out.json_line(&report)?;
    } else {
        out.text(&render(&report))?;
    }
    out.flush()
}

/// Writes the input: one event per line, round robin over the streams,
/// `{"i": N, "pad": "xx…"}` as data with `payload_bytes` of padding.
fn write_lines(path: &Path, args: &BenchArgs) -> Result<u64, Failure> {
    let describe = |e: std::io::Error| Failure::other(format!("writing {}: {e}", path.display()));
    let mut out = BufWriter::new(File::create(path).map_err(describe)?);
    let pad = "x".repeat(args.payload_bytes);
    for i in 0..args.events {
        writeln!(
            out,
            r#"{{"stream":"bench-{}","type":"BenchEvent","data":{{"i":{i},"pad":"{pad}"}}}}"#,
            i % args.streams
        )
        .map_err(describe)?;
    }
    out.into_inner()
        .map_err(|e| describe(e.into_error()))?
        .metadata()
        .map(|m| m.len())
        .map_err(describe)
}

/// Runs `annals import STORE --durability MODE < INPUT > /dev/null` once;
/// returns its wall time in seconds.
fn import_once(
    input: &Path,
    store: &Path,
    durability: &str,
    args: &BenchArgs,
) -> Result<f64, Failure> {
    let program = std::env::current_exe()
        .map_err(|e| Failure::other(format!("finding this program: {e}")))?;
    let stdin = File::open(input)
        .map_err(|e| Failure::other(format!("opening {}: {e}", input.display())))?;
    let started = Instant::now();
    let output = Command::new(program)
        .arg("import")
        .arg(store)
        .args(["--durability", durability])
        .args(["--segment-size-bytes", &args.segment_size_bytes.to_string()])
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Failure::other(format!("running annals import: {e}")))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(Failure::other(format!(
            "annals import --durability {durability} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    Ok(elapsed.max(Duration::from_nanos(1)).as_secs_f64())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The load average (`/proc/loadavg`'s first three fields), or `unknown`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn render(report: &ImportReport) -> String {
    let mut text = format!(
        "annals bench --import: {} lines ({} MB), one event each with {} bytes of padding, \
         {} streams; {} rounds, the modes in turns\n\
         machine: {} cores; load average {} before, {} after\n\n",
        report.lines,
        report.input_bytes / 1_000_000,
        report.payload_bytes,
        report.streams,
        report.rounds,
        report.cores,
        report.load_before,
        report.load_after,
    );
    for mode in &report.modes {
        let rounds: Vec<String> = mode.seconds.iter().map(|s| format!("{s:.2}")).collect();
        text += &format!(
            "{:<9} {:>7.2} s median ({} s)  {:>9} lines/s  {:.2}x none\n",
            format!("{}:", mode.durability),
            mode.median_seconds,
            rounds.join(", "),
            per_second(report.lines as f64, mode.median_seconds),
            mode.ratio_to_none,
        );
    }
    text
}
