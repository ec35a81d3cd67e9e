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
