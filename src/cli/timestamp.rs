//! RFC 3339 timestamps: the library's ([`annals::timestamp`]), the one
//! place for the conversion; and the command line's times or ages.

pub use annals::timestamp::{compact_nanos, now_ns, parse_rfc3339_nanos, rfc3339_nanos};

/// Parses `--since`/`--until`: an RFC 3339 time in UTC (as
/// [`parse_rfc3339_nanos`] reads it) or an age before `now_ns`: a whole
/// number with a unit, `s`, `m`, `h` or `d` (`10m`). An age reaching before
/// 1970 is the epoch.
pub fn parse_time_or_age(text: &str, now_ns: u64) -> Result<u64, String> {
    const UNITS: [(char, u64); 4] = [
        ('s', 1_000_000_000),
        ('m', 60_000_000_000),
        ('h', 3_600_000_000_000),
        ('d', 86_400_000_000_000),
    ];
    let age = UNITS.iter().find_map(|&(unit, ns)| {
        let digits = text.strip_suffix(unit)?;
        let count: u64 = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())??;
        Some(count.saturating_mul(ns))
    });
    match age {
        Some(age_ns) => Ok(now_ns.saturating_sub(age_ns)),
        None => parse_rfc3339_nanos(text).map_err(|_| {
            format!(
                "{text:?} is neither a time (2026-11-30T12:00:00Z) nor an age (30s, 10m, 2h, 1d)"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages_parse() {
        let now = 1_000_000 * 1_000_000_000;
        assert_eq!(parse_time_or_age("10m", now), Ok(now - 600 * 1_000_000_000));
        assert_eq!(parse_time_or_age("30s", now), Ok(now - 30 * 1_000_000_000));
        assert_eq!(parse_time_or_age("2h", now), Ok(now - 7200 * 1_000_000_000));
        assert_eq!(
            parse_time_or_age("1d", now),
            Ok(now - 86_400 * 1_000_000_000)
        );
        assert_eq!(parse_time_or_age("99999d", now), Ok(0));
        assert_eq!(
            parse_time_or_age("1970-01-01T00:00:01Z", now),
            Ok(1_000_000_000)
        );
        for bad in ["", "m", "10", "-1m", "1.5h", "10 m", "10M", "yesterday"] {
            assert!(parse_time_or_age(bad, now).is_err(), "{bad:?} accepted");
        }
    }
}
