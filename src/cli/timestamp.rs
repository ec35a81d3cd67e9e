//! RFC 3339 timestamps in UTC with nanoseconds, for event JSON lines.
//! Written here rather than with a date crate: it is one conversion, from
//! days since the epoch to a civil date.

/// `timestamp_ns` (nanoseconds since the Unix epoch) as
/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339_nanos(timestamp_ns: u64) -> String {
    let seconds = timestamp_ns / 1_000_000_000;
    let nanos = timestamp_ns % 1_000_000_000;
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC, up to nine fraction
/// digits, as `rfc3339_nanos` writes) into nanoseconds since the Unix epoch.
pub fn parse_rfc3339_nanos(text: &str) -> Result<u64, String> {
    let invalid = || format!("timestamp {text:?} is not YYYY-MM-DDTHH:MM:SS[.fraction]Z (UTC)");
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.is_ascii() || bytes[bytes.len() - 1] != b'Z' {
        return Err(invalid());
    }
    let number = |from: usize, to: usize| -> Result<u64, String> {
        let digits = &text[from..to];
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, byte)| bytes[at] != byte) {
        return Err(invalid());
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let fraction = &text[19..text.len() - 1];
    let nanos = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        Some(digits) if (1..=9).contains(&digits.len()) => {
            number(20, 20 + digits.len())? * 10u64.pow(9 - digits.len() as u32)
        }
        _ => return Err(invalid()),
    };
    if year < 1970
        || !(1..=12).contains(&month)
        || day == 0
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(invalid());
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return Err(invalid()); // 2023-02-30 and the like
    }
    (days * 86_400 + hour * 3600 + minute * 60 + second)
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nanos))
        .ok_or_else(invalid)
}

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

/// Days from 1970-01-01 to a proleptic Gregorian date in 1970 or later
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 }; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `timestamp_ns` as `YYYYMMDDTHHMMSS.nnnnnnnnnZ`: sorts like time and is
/// safe in a file name.
pub fn compact_nanos(timestamp_ns: u64) -> String {
    rfc3339_nanos(timestamp_ns).replace(['-', ':'], "")
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The proleptic Gregorian date of day `days` after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 (a leap day in a year divisible by 400) 12:34:56.000000789
        assert_eq!(
            rfc3339_nanos(951_827_696_000_000_789),
            "2000-02-29T12:34:56.000000789Z"
        );
        // 2024-12-31T23:59:59.999999999Z
        assert_eq!(
            rfc3339_nanos(1_735_689_599_999_999_999),
            "2024-12-31T23:59:59.999999999Z"
        );
        assert_eq!(rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        assert_eq!(compact_nanos(0), "19700101T000000.000000000Z");
    }

    #[test]
    fn parsing_inverts_formatting() {
        for ns in [
            0,
            951_827_696_000_000_789,
            1_735_689_599_999_999_999,
            1_795_778_698_687_438_403,
        ] {
            assert_eq!(parse_rfc3339_nanos(&rfc3339_nanos(ns)), Ok(ns));
        }
        assert_eq!(
            parse_rfc3339_nanos("1970-01-01T00:00:01Z"),
            Ok(1_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_nanos("1970-01-01T00:00:00.5Z"),
            Ok(500_000_000)
        );
        for bad in [
            "",
            "1970-01-01 00:00:00Z",
            "1970-01-01T00:00:00+01:00",
            "2023-02-30T00:00:00Z",
            "1970-13-01T00:00:00Z",
            "1970-01-01T00:00:00.1234567890Z",
            "1970-01-01T00:00:00.Z",
            "1969-12-31T23:59:59Z",
            "19a0-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339_nanos(bad).is_err(), "{bad:?} accepted");
        }
    }

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

    #[test]
    fn every_day_follows_the_previous_one() {
        let mut previous = civil_from_days(0);
        for day in 1..200_000 {
            let date = civil_from_days(day);
            let (y, m, d) = previous;
            let next_in_month = (y, m, d + 1);
            let next_month = if m == 12 {
                (y + 1, 1, 1)
            } else {
                (y, m + 1, 1)
            };
            assert!(
                date == next_in_month || date == next_month,
                "{previous:?} -> {date:?}"
            );
            assert!(date.2 <= 31);
            previous = date;
        }
    }
}
