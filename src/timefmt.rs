//! Times and durations as this program prints them: RFC 3339 in UTC, and compact `1h30m`.
//! Pure formatting; nothing here reads the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (times before 1970 print as the epoch).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    rfc3339_seconds(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339_seconds(unix_seconds: u64) -> String {
    let days = unix_seconds / 86400;
    let rest = unix_seconds % 86400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for every date after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `1h30m0s`-style text for summaries: the largest units, no zero parts.
pub(crate) fn format_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let millis = duration.subsec_millis();
    if total == 0 {
        return if millis > 0 {
            format!("{millis}ms")
        } else {
            "0s".to_string()
        };
    }
    let (days, hours, minutes, seconds) = (
        total / 86400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let mut out = String::new();
    for (amount, unit) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
        if amount > 0 {
            out.push_str(&format!("{amount}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_798_761_599), "2026-12-31T23:59:59Z");
    }
    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
