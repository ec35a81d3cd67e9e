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
