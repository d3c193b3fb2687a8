//! Times and durations as this program prints them: RFC 3339 in UTC, and compact `1h30m`.
//! Pure formatting; nothing here reads the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (times before 1970 print as the epoch).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    rfc3339_seconds(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// `time` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, microseconds always six digits: the layout of
/// hclog's JSON `@timestamp` (Go's `2006-01-02T15:04:05.000000Z07:00`), in UTC.
pub(crate) fn rfc3339_micros(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{}.{:06}Z",
        utc_date_time(since_epoch.as_secs()),
        since_epoch.subsec_micros()
    )
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339_seconds(unix_seconds: u64) -> String {
    format!("{}Z", utc_date_time(unix_seconds))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS` in UTC, without the zone.
fn utc_date_time(unix_seconds: u64) -> String {
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Parses RFC 3339 (`2024-01-02T03:04:05Z`, fractional seconds and `±HH:MM` offsets
/// accepted), as Vault writes times; `None` for anything else or a time before 1970.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &fraction[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Days-from-civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let mp = (month + 9) % 12;
    let day_of_year = (153 * mp + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
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

/// A duration in seconds for a log field, rounded to hundredths (`1.61`, not
/// `1.6100772540000001`): log readers want the order of magnitude, not the nanoseconds.
pub(crate) fn log_seconds(duration: Duration) -> f64 {
    round_hundredths(duration.as_secs_f64())
}

/// A duration in milliseconds for a log field, rounded to hundredths of a millisecond
/// (`0.42`): request timings are well under a second.
pub(crate) fn log_millis(duration: Duration) -> f64 {
    round_hundredths(duration.as_secs_f64() * 1000.0)
}

/// `value` rounded to two decimals; `f64`'s shortest printing then shows at most two.
fn round_hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The wall-clock time `after` from now, for a "next attempt at" log field:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds are enough to tell retries apart).
pub(crate) fn log_time_after(now: SystemTime, after: Duration) -> String {
    let at = now.checked_add(after).unwrap_or(now);
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{}.{:03}Z",
        utc_date_time(since_epoch.as_secs()),
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_durations_are_rounded_to_hundredths() {
        assert_eq!(log_seconds(Duration::from_nanos(1_610_077_254)), 1.61);
        assert_eq!(
            log_seconds(Duration::from_millis(1_615)).to_string(),
            "1.62"
        );
        assert_eq!(log_seconds(Duration::ZERO), 0.0);
        assert_eq!(log_seconds(Duration::from_secs(300)).to_string(), "300");
        assert_eq!(
            log_millis(Duration::from_nanos(421_937)).to_string(),
            "0.42"
        );
        assert_eq!(
            log_millis(Duration::from_micros(1_500_250)).to_string(),
            "1500.25"
        );
    }

    #[test]
    fn next_attempt_times_are_utc_with_milliseconds() {
        let now = UNIX_EPOCH + Duration::new(1_764_678_937, 188_000_000);
        assert_eq!(
            log_time_after(now, Duration::from_millis(1_610)),
            "2025-12-02T12:35:38.798Z"
        );
    }

    #[test]
    fn rfc3339_parses_what_it_prints_and_what_vault_writes() {
        for seconds in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(
                parse_rfc3339(&rfc3339_seconds(seconds)),
                Some(UNIX_EPOCH + Duration::from_secs(seconds))
            );
        }
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.5+02:00"),
            Some(UNIX_EPOCH + Duration::new(1_714_557_600, 500_000_000))
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T00:00:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_798_761_599), "2026-12-31T23:59:59Z");
    }
    #[test]
    fn rfc3339_micros_keep_six_digits() {
        let at = |secs, nanos| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(rfc3339_micros(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(at(1_798_761_599, 999_999_999)),
            "2026-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            rfc3339_micros(at(951_782_400, 1_500)),
            "2000-02-29T00:00:00.000001Z"
        );
    }
    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
