//! Go's time layouts (`Mon Jan 2 15:04:05 MST 2006`) for `timestamp` and Sprig's `date`, in
//! UTC.

/// A UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Instant {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Instant {
    /// This instant moved by `nanos` nanoseconds (saturating).
    pub(super) fn add_nanos(self, nanos: i64) -> Instant {
        let total =
            i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos) + i128::from(nanos);
        let seconds = total.div_euclid(1_000_000_000);
        Instant {
            seconds: i64::try_from(seconds).unwrap_or(if seconds < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
            nanos: total.rem_euclid(1_000_000_000) as u32,
        }
    }
}

/// Go's `time.ParseDuration`: `[-+]` then one or more `<number><unit>` (`ns us µs ms s m h`),
/// in nanoseconds; errors worded as Go's.
pub(super) fn parse_duration(text: &str) -> Result<i64, String> {
    let quoted = crate::template::go_quote(text);
    let invalid = || format!("time: invalid duration {quoted}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &rest[..digits];
        rest = &rest[digits..];
        let mut fraction = "";
        if let Some(after) = rest.strip_prefix('.') {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &after[..n];
            rest = &after[n..];
            if whole.is_empty() && fraction.is_empty() {
                return Err(invalid());
            }
        } else if whole.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "" => return Err(format!("time: missing unit in duration {quoted}")),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {quoted}",
                    crate::template::go_quote(other)
                ));
            }
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            let digits = &fraction[..fraction.len().min(30)];
            let numerator: u128 = digits.parse().map_err(|_| invalid())?;
            value += numerator * scale / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > 1u128 << 63 {
            return Err(invalid());
        }
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

/// Go's `time.RFC3339`.
pub(super) const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// `time.Time.String()`'s layout.
pub(super) const GO_STRING: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

/// The wall clock now.
pub(super) fn now() -> Instant {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Instant {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos(),
    }
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats `t` (UTC, zone name "UTC") with a Go layout.
pub(super) fn format(t: &Instant, layout: &str) -> String {
    let days = t.seconds.div_euclid(86_400);
    let secs = t.seconds.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let (hour, minute, second) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let weekday = (days + 4).rem_euclid(7) as usize;
    let yday = days - days_from_civil(year, 1, 1) + 1;
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        let (chunk, len) = next_chunk(rest);
        match chunk {
            Chunk::Literal => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            Chunk::LongYear => out.push_str(&format!("{year:04}")),
            Chunk::Year => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Chunk::LongMonth => out.push_str(month_name),
            Chunk::Month => out.push_str(&month_name[..3]),
            Chunk::NumMonth => out.push_str(&month.to_string()),
            Chunk::ZeroMonth => out.push_str(&format!("{month:02}")),
            Chunk::LongWeekDay => out.push_str(DAYS[weekday]),
            Chunk::WeekDay => out.push_str(&DAYS[weekday][..3]),
            Chunk::Day => out.push_str(&day.to_string()),
            Chunk::UnderDay => out.push_str(&format!("{day:>2}")),
            Chunk::ZeroDay => out.push_str(&format!("{day:02}")),
            Chunk::UnderYearDay => out.push_str(&format!("{yday:>3}")),
            Chunk::ZeroYearDay => out.push_str(&format!("{yday:03}")),
            Chunk::Hour => out.push_str(&format!("{hour:02}")),
            Chunk::Hour12 => {
                out.push_str(&(if hour % 12 == 0 { 12 } else { hour % 12 }).to_string())
            }
            Chunk::ZeroHour12 => {
                out.push_str(&format!(
                    "{:02}",
                    if hour % 12 == 0 { 12 } else { hour % 12 }
                ));
            }
            Chunk::Minute => out.push_str(&minute.to_string()),
            Chunk::ZeroMinute => out.push_str(&format!("{minute:02}")),
            Chunk::Second => out.push_str(&second.to_string()),
            Chunk::ZeroSecond => out.push_str(&format!("{second:02}")),
            Chunk::PM => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
            Chunk::Pm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
            Chunk::Zone => out.push_str("UTC"),
            Chunk::IsoZ => out.push('Z'),
            Chunk::NumZone {
                colon,
                seconds,
                hours_only,
            } => {
                out.push_str(if hours_only {
                    "+00"
                } else if colon {
                    if seconds { "+00:00:00" } else { "+00:00" }
                } else if seconds {
                    "+000000"
                } else {
                    "+0000"
                });
            }
            Chunk::Fraction { digits, trim } => {
                let frac = format!("{:09}", t.nanos);
                let mut frac = frac[..digits].to_owned();
                if trim {
                    while frac.ends_with('0') {
                        frac.pop();
                    }
                    if !frac.is_empty() {
                        out.push('.');
                        out.push_str(&frac);
                    }
                } else {
                    out.push(layout_separator(rest));
                    out.push_str(&frac);
                }
            }
        }
        rest = &rest[len..];
    }
    out
}

fn layout_separator(rest: &str) -> char {
    rest.chars().next().unwrap_or('.')
}

enum Chunk {
    Literal,
    LongYear,
    Year,
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    PM,
    Pm,
    Zone,
    IsoZ,
    NumZone {
        colon: bool,
        seconds: bool,
        hours_only: bool,
    },
    Fraction {
        digits: usize,
        trim: bool,
    },
}

/// The layout element at the start of `s` and its length in bytes (Go's `nextStdChunk`).
fn next_chunk(s: &str) -> (Chunk, usize) {
    let b = s.as_bytes();
    let starts = |p: &str| s.starts_with(p);
    match b[0] {
        b'J' if starts("January") => (Chunk::LongMonth, 7),
        b'J' if starts("Jan") => (Chunk::Month, 3),
        b'M' if starts("Monday") => (Chunk::LongWeekDay, 6),
        b'M' if starts("Mon") => (Chunk::WeekDay, 3),
        b'M' if starts("MST") => (Chunk::Zone, 3),
        b'0' if b.len() > 1 && (b'1'..=b'6').contains(&b[1]) => (
            match b[1] {
                b'1' => Chunk::ZeroMonth,
                b'2' => Chunk::ZeroDay,
                b'3' => Chunk::ZeroHour12,
                b'4' => Chunk::ZeroMinute,
                b'5' => Chunk::ZeroSecond,
                _ => Chunk::Year,
            },
            2,
        ),
        b'0' if starts("002") => (Chunk::ZeroYearDay, 3),
        b'1' if starts("15") => (Chunk::Hour, 2),
        b'1' => (Chunk::NumMonth, 1),
        b'2' if starts("2006") => (Chunk::LongYear, 4),
        b'2' => (Chunk::Day, 1),
        b'_' if starts("_2006") => (Chunk::Literal, 1),
        b'_' if starts("__2") => (Chunk::UnderYearDay, 3),
        b'_' if starts("_2") => (Chunk::UnderDay, 2),
        b'3' => (Chunk::Hour12, 1),
        b'4' => (Chunk::Minute, 1),
        b'5' => (Chunk::Second, 1),
        b'P' if starts("PM") => (Chunk::PM, 2),
        b'p' if starts("pm") => (Chunk::Pm, 2),
        b'-' if starts("-07:00:00") => (
            Chunk::NumZone {
                colon: true,
                seconds: true,
                hours_only: false,
            },
            9,
        ),
        b'-' if starts("-0700") && !starts("-07000") => (
            Chunk::NumZone {
                colon: false,
                seconds: false,
                hours_only: false,
            },
            5,
        ),
        b'-' if starts("-070000") => (
            Chunk::NumZone {
                colon: false,
                seconds: true,
                hours_only: false,
            },
            7,
        ),
        b'-' if starts("-07:00") => (
            Chunk::NumZone {
                colon: true,
                seconds: false,
                hours_only: false,
            },
            6,
        ),
        b'-' if starts("-07") => (
            Chunk::NumZone {
                colon: false,
                seconds: false,
                hours_only: true,
            },
            3,
        ),
        b'Z' if starts("Z07:00:00")
            || starts("Z070000")
            || starts("Z07:00")
            || starts("Z0700")
            || starts("Z07") =>
        {
            let len = ["Z07:00:00", "Z070000", "Z07:00", "Z0700", "Z07"]
                .iter()
                .find(|p| starts(p))
                .map_or(3, |p| p.len());
            (Chunk::IsoZ, len)
        }
        b'.' | b',' if b.len() > 1 && (b[1] == b'0' || b[1] == b'9') => {
            let digit = b[1];
            let run = b[1..].iter().take_while(|c| **c == digit).count();
            // Go: a fraction only when not followed by another digit.
            if b.get(1 + run).is_some_and(u8::is_ascii_digit) {
                (Chunk::Literal, 1)
            } else {
                (
                    Chunk::Fraction {
                        digits: run.min(9),
                        trim: digit == b'9',
                    },
                    1 + run,
                )
            }
        }
        _ => (Chunk::Literal, 1),
    }
}

/// Parses `time.Time.String()`'s output for UTC (what `sprig_now` prints) back to an instant.
pub(super) fn parse_go_string(s: &str) -> Option<Instant> {
    let (date, rest) = s.split_once(' ')?;
    let (clock, zone) = rest.split_once(' ')?;
    if zone != "+0000 UTC" {
        return None;
    }
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (c.next()??, c.next()??, c.next()??);
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").get(..9)?.parse().ok()?
    };
    let days = days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(day).ok()?);
    Some(Instant {
        seconds: days * 86_400 + h * 3600 + min * 60 + sec,
        nanos,
    })
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    // `whole.fraction` of `v` with `places` decimals, trailing zeros dropped.
    let split = |v: u64, places: u32| {
        let scale = 10u64.pow(places);
        let fraction = format!("{:0width$}", v % scale, width = places as usize);
        let fraction = fraction.trim_end_matches('0');
        let fraction = if fraction.is_empty() {
            String::new()
        } else {
            format!(".{fraction}")
        };
        (v / scale, fraction)
    };
    if u < 1_000_000_000 {
        let (places, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (whole, fraction) = split(u, places);
        return format!("{sign}{whole}{fraction}{unit}");
    }
    let (seconds, fraction) = split(u, 9);
    let mut out = format!("{}{fraction}s", seconds % 60);
    let minutes = seconds / 60;
    if minutes > 0 {
        out = format!("{}m{out}", minutes % 60);
        let hours = minutes / 60;
        if hours > 0 {
            out = format!("{hours}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// Go's `time.Since(t)` in nanoseconds (saturating, as Go's `Time.Sub`).
pub(super) fn since(t: &Instant) -> i64 {
    let now = now();
    let nanos = (i128::from(now.seconds) - i128::from(t.seconds)) * 1_000_000_000
        + i128::from(now.nanos)
        - i128::from(t.nanos);
    nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Go's `Duration.Round(m)`: halves away from zero, saturating.
pub(super) fn round_duration(d: i64, m: i64) -> i64 {
    let (d, m) = (i128::from(d), i128::from(m));
    let r = d % m;
    let rounded = if d < 0 {
        let r = -r;
        if r + r < m { d + r } else { d - m + r }
    } else if r + r < m {
        d - r
    } else {
        d + m - r
    };
    rounded.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Go's `time.Parse(layout, value)` for UTC: the layout elements of [`format`], Go's errors
/// (`parsing time "V" as "L": cannot parse "R" as "E"`, `parsing time "V": month out of
/// range`). A numeric zone offset is applied (the instant is kept in UTC); a zone name other
/// than `UTC` is refused.
pub(super) fn parse(layout: &str, value: &str) -> Result<Instant, String> {
    let q = crate::template::go_quote;
    let cannot = |rest: &str, element: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            q(value),
            q(layout),
            q(rest),
            q(element)
        )
    };
    let range = |what: &str| format!("parsing time {}: {what} out of range", q(value));
    let (mut year, mut month, mut day) = (0i64, -1i64, -1i64);
    let (mut hour, mut minute, mut second, mut nanos) = (0i64, 0i64, 0i64, 0i64);
    let (mut pm, mut am, mut offset) = (false, false, 0i64);
    let mut yday = -1i64;
    let mut rest_layout = layout;
    let mut v = value;
    while !rest_layout.is_empty() {
        // The literal text before the next element.
        let mut literal_len = 0;
        let mut chunk = None;
        while literal_len < rest_layout.len() {
            let (c, len) = next_chunk(&rest_layout[literal_len..]);
            if matches!(c, Chunk::Literal) {
                literal_len += rest_layout[literal_len..]
                    .chars()
                    .next()
                    .map_or(1, char::len_utf8);
            } else {
                chunk = Some((c, len));
                break;
            }
        }
        let prefix = &rest_layout[..literal_len];
        v = skip_literal(v, prefix).ok_or_else(|| cannot(v, prefix))?;
        let Some((chunk, len)) = chunk else { break };
        let element = &rest_layout[literal_len..literal_len + len];
        rest_layout = &rest_layout[literal_len + len..];
        let before = v;
        let bad = || cannot(before, element);
        match chunk {
            Chunk::Literal => {}
            Chunk::Year => {
                let n = fixed_digits(v, 2).ok_or_else(bad)?;
                year = if n >= 69 { 1900 + n } else { 2000 + n };
                v = &v[2..];
            }
            Chunk::LongYear => {
                year = fixed_digits(v, 4).ok_or_else(bad)?;
                v = &v[4..];
            }
            Chunk::Month | Chunk::LongMonth => {
                let (i, n) = lookup(v, &MONTHS, matches!(chunk, Chunk::Month)).ok_or_else(bad)?;
                month = i as i64 + 1;
                v = &v[n..];
            }
            Chunk::WeekDay | Chunk::LongWeekDay => {
                let (_, n) = lookup(v, &DAYS, matches!(chunk, Chunk::WeekDay)).ok_or_else(bad)?;
                v = &v[n..];
            }
            Chunk::NumMonth | Chunk::ZeroMonth => {
                let (n, used) = getnum(v, matches!(chunk, Chunk::ZeroMonth)).ok_or_else(bad)?;
                if !(1..=12).contains(&n) {
                    return Err(range("month"));
                }
                month = n;
                v = &v[used..];
            }
            Chunk::Day | Chunk::UnderDay | Chunk::ZeroDay => {
                if matches!(chunk, Chunk::UnderDay) && v.starts_with(' ') {
                    v = &v[1..];
                }
                let (n, used) = getnum(v, matches!(chunk, Chunk::ZeroDay)).ok_or_else(bad)?;
                day = n;
                v = &v[used..];
            }
            Chunk::UnderYearDay | Chunk::ZeroYearDay => {
                let mut i = 0;
                if matches!(chunk, Chunk::UnderYearDay) {
                    i = v.bytes().take(2).take_while(|b| *b == b' ').count();
                }
                let digits = v[i..]
                    .bytes()
                    .take(3)
                    .take_while(u8::is_ascii_digit)
                    .count();
                if digits == 0 || (matches!(chunk, Chunk::ZeroYearDay) && digits < 3) {
                    return Err(bad());
                }
                yday = v[i..i + digits].parse().map_err(|_| bad())?;
                v = &v[i + digits..];
            }
            Chunk::Hour | Chunk::Hour12 | Chunk::ZeroHour12 => {
                let (n, used) = getnum(v, matches!(chunk, Chunk::ZeroHour12)).ok_or_else(bad)?;
                let max = if matches!(chunk, Chunk::Hour) { 23 } else { 12 };
                if n > max {
                    return Err(range("hour"));
                }
                hour = n;
                v = &v[used..];
            }
            Chunk::Minute | Chunk::ZeroMinute => {
                let (n, used) = getnum(v, matches!(chunk, Chunk::ZeroMinute)).ok_or_else(bad)?;
                if n > 59 {
                    return Err(range("minute"));
                }
                minute = n;
                v = &v[used..];
            }
            Chunk::Second | Chunk::ZeroSecond => {
                let (n, used) = getnum(v, matches!(chunk, Chunk::ZeroSecond)).ok_or_else(bad)?;
                if n > 59 {
                    return Err(range("second"));
                }
                second = n;
                v = &v[used..];
                // A fraction the layout does not spell is read anyway.
                let b = v.as_bytes();
                let layout_fraction = !rest_layout.is_empty()
                    && matches!(next_chunk(rest_layout).0, Chunk::Fraction { .. });
                if b.len() >= 2
                    && matches!(b[0], b'.' | b',')
                    && b[1].is_ascii_digit()
                    && !layout_fraction
                {
                    let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nanos = fraction_nanos(&v[1..n]);
                    v = &v[n..];
                }
            }
            Chunk::PM | Chunk::Pm => {
                let (p, a) = if matches!(chunk, Chunk::PM) {
                    ("PM", "AM")
                } else {
                    ("pm", "am")
                };
                match v.get(..2) {
                    Some(s) if s == p => pm = true,
                    Some(s) if s == a => am = true,
                    _ => return Err(bad()),
                }
                v = &v[2..];
            }
            Chunk::IsoZ | Chunk::NumZone { .. } => {
                if matches!(chunk, Chunk::IsoZ) && v.starts_with('Z') {
                    v = &v[1..];
                } else {
                    let (seconds, used) = parse_offset(v, element).ok_or_else(bad)?;
                    offset = seconds;
                    v = &v[used..];
                }
            }
            Chunk::Zone => {
                if v.starts_with("UTC") {
                    v = &v[3..];
                } else {
                    let name: String = v.chars().take_while(char::is_ascii_uppercase).collect();
                    return Err(format!(
                        "time zone {} is not supported by pki-sidecar (only UTC)",
                        q(&name)
                    ));
                }
            }
            Chunk::Fraction { digits, trim } => {
                let b = v.as_bytes();
                if trim {
                    if b.len() >= 2 && matches!(b[0], b'.' | b',') && b[1].is_ascii_digit() {
                        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        nanos = fraction_nanos(&v[1..n]);
                        v = &v[n..];
                    }
                } else {
                    if b.len() < 1 + digits
                        || !matches!(b[0], b'.' | b',')
                        || !b[1..=digits].iter().all(u8::is_ascii_digit)
                    {
                        return Err(bad());
                    }
                    nanos = fraction_nanos(&v[1..=digits]);
                    v = &v[1 + digits..];
                }
            }
        }
    }
    if !v.is_empty() {
        return Err(format!("parsing time {}: extra text: {}", q(value), q(v)));
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if yday >= 0 && month < 0 && day < 0 {
        let mut left = yday;
        for m in 1..=12 {
            let days = days_in(m, leap);
            if left <= days {
                (month, day) = (m, left);
                break;
            }
            left -= days;
        }
        if month < 0 || yday < 1 {
            return Err(range("day-of-year"));
        }
    }
    let month = if month < 0 { 1 } else { month };
    let day = if day < 0 { 1 } else { day };
    if day < 1 || day > days_in(month, leap) {
        return Err(range("day"));
    }
    let days = days_from_civil(year, month as u32, day as u32);
    Ok(Instant {
        seconds: days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos: nanos as u32,
    })
}

fn days_in(month: i64, leap: bool) -> i64 {
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `skip`: the layout's literal text at the start of `value` (a space matches any run).
fn skip_literal<'v>(mut value: &'v str, mut prefix: &str) -> Option<&'v str> {
    while let Some(p) = prefix.chars().next() {
        if p == ' ' {
            if !value.is_empty() && !value.starts_with(' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        if !value.starts_with(p) {
            return None;
        }
        prefix = &prefix[p.len_utf8()..];
        value = &value[p.len_utf8()..];
    }
    Some(value)
}

/// Exactly `n` leading digits.
fn fixed_digits(v: &str, n: usize) -> Option<i64> {
    let digits = v.get(..n)?;
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())?
}

/// Go's `getnum`: one or two digits (two when `fixed`).
fn getnum(v: &str, fixed: bool) -> Option<(i64, usize)> {
    let b = v.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    if !b.get(1).is_some_and(u8::is_ascii_digit) {
        return (!fixed).then(|| (i64::from(b[0] - b'0'), 1));
    }
    Some((i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'), 2))
}

/// A month or day name, case-insensitively (`short`: its first three letters).
fn lookup(v: &str, names: &[&str], short: bool) -> Option<(usize, usize)> {
    names.iter().enumerate().find_map(|(i, name)| {
        let name = if short { &name[..3] } else { name };
        v.get(..name.len())
            .filter(|s| s.eq_ignore_ascii_case(name))
            .map(|_| (i, name.len()))
    })
}

/// Nanoseconds from the digits after the decimal point (beyond nine ignored).
fn fraction_nanos(digits: &str) -> i64 {
    let nine: String = digits
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    nine.parse().unwrap_or(0)
}

/// A numeric zone offset as the layout element spells it: seconds east of UTC, bytes used.
fn parse_offset(v: &str, element: &str) -> Option<(i64, usize)> {
    let spelling = element.trim_start_matches('Z').trim_start_matches('-');
    // "07", "0700", "07:00", "070000", "07:00:00".
    let len = 1 + spelling.len();
    let b = v.as_bytes().get(..len)?;
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut numbers = Vec::new();
    let mut i = 1;
    for part in spelling.split(':') {
        for pair in part.as_bytes().chunks(2) {
            let digits = b.get(i..i + pair.len())?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            numbers.push(i64::from(digits[0] - b'0') * 10 + i64::from(digits[1] - b'0'));
            i += 2;
        }
        if i < len {
            if b[i] != b':' {
                return None;
            }
            i += 1;
        }
    }
    let (h, m, s) = (
        numbers[0],
        numbers.get(1).copied().unwrap_or(0),
        numbers.get(2).copied().unwrap_or(0),
    );
    if h > 24 || m > 60 || s > 60 {
        return None;
    }
    Some((sign * (h * 3600 + m * 60 + s), len))
}
