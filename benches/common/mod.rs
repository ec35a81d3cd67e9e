//! What the bench binaries share: the payload they write, how they read
//! sizes from the environment, and the median of rounds. Each binary uses
//! a part of it.
#![allow(dead_code)]

/// A deterministic, incompressible payload.
pub fn payload(len: usize) -> Vec<u8> {
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// `text`, the value of the environment variable `name`, as a number
/// (`_` allowed as a separator); a bad value stops the run, naming it.
pub fn number(name: &str, text: &str) -> usize {
    text.trim()
        .replace('_', "")
        .parse()
        .unwrap_or_else(|_| panic!("{name}={text:?} is not a number"))
}

/// The environment variable `name` as a number, `default` when unset.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |text| number(name, &text))
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The machine, for the figures' header: CPU model, cores, memory.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    format!("{cpu}, {cores} cores, {memory_gib:.0} GiB RAM")
}

/// The load averages over 1, 5 and 15 minutes (`/proc/loadavg`), for the
/// figures' header: these machines are shared.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
