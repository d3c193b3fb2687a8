//! Units as Vault and consul-template spell them: durations, file modes, booleans, and the
//! [`Scalar`] a config value arrives as before it is read as one of them.
//!
//! Pure functions from a spelling to a value, each returning a message meant to follow
//! `FILE: block.key: `. They know nothing about where a value came from, so the config, the
//! template functions, the development CA and `dev`'s flags all read units the same way.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A value that may be spelled as a string, a number or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// An integer (octal literals are already converted by the HCL reader).
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A quoted string.
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Durations as Vault reads them: Go's `1h30m`, `250ms`, `1.5h`, plus `d` for days, and bare
/// seconds (`3600` or `"3600"`).
pub(crate) fn duration(value: &Scalar) -> Result<Duration, String> {
    const HINT: &str = "(examples: 90s, 5m, 1h30m, 3600)";
    let parsed = match value {
        Scalar::Int(seconds) if *seconds >= 0 => Ok(Duration::from_secs(*seconds as u64)),
        Scalar::Int(seconds) => Err(format!("{seconds} is negative; a duration must be >= 0")),
        Scalar::Float(_) | Scalar::Bool(_) => Err(format!("{value} is not a duration {HINT}")),
        Scalar::Text(text) => {
            parse_duration_text(text).ok_or_else(|| format!("{value} is not a duration {HINT}"))
        }
    }?;
    if parsed > MAX_DURATION {
        return Err(format!("{value} is longer than ten years"));
    }
    Ok(parsed)
}

/// The longest duration a config may hold: far beyond any TTL or timeout this program uses,
/// and short enough that `Instant::now() + duration` (a retry, a render interval, an idle
/// deadline) cannot overflow and panic at run time.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86400);

fn parse_duration_text(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Only an overflow fails here: saturate, and let MAX_DURATION refuse it.
        return Some(Duration::from_secs(text.parse::<u64>().unwrap_or(u64::MAX)));
    }
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_nanos += number * nanos_per_unit;
    }
    // The cast saturates: anything too long for a u64 of nanoseconds is then refused by the
    // MAX_DURATION check, with the right message.
    Some(Duration::from_nanos(total_nanos.round() as u64))
}

/// File modes: an integer (an octal literal such as `0644` arrives as 420) or an octal string
/// (`"0644"`, `"644"`, as Go's `strconv.ParseUint(s, 8, 32)` in Vault).
pub(crate) fn mode(value: &Scalar) -> Result<u32, String> {
    const HINT: &str = "write an octal mode such as 0640 or \"0640\"";
    let parsed = match value {
        Scalar::Int(number) => u32::try_from(*number).ok(),
        Scalar::Text(text) => {
            let digits = text.trim();
            let digits = digits.strip_prefix("0o").unwrap_or(digits);
            if !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                u32::from_str_radix(digits, 8).ok()
            } else {
                None
            }
        }
        Scalar::Float(_) | Scalar::Bool(_) => None,
    };
    match parsed {
        Some(mode) if mode <= 0o777 => Ok(mode),
        Some(mode) => Err(format!(
            "{value} (0{mode:o}) sets bits beyond rwx (setuid, setgid or sticky); {HINT}"
        )),
        None => Err(format!("{value} is not an octal file mode; {HINT}")),
    }
}

/// Whether a mode written as a decimal integer (`mode = 384`, JSON's `"mode": 420`) means what
/// Vault Agent makes of it, which takes the integer as it is (384 is 0600): it is then a
/// sensible mode (no bits beyond rwx, the group's a subset of the owner's, the others' of the
/// group's) and its digits read as octal are not one (`640` meant 0640, never 0o1200).
pub(crate) fn decimal_mode_as_meant(value: u64) -> bool {
    let sensible = |mode: u64| {
        let (owner, group, other) = ((mode >> 6) & 7, (mode >> 3) & 7, mode & 7);
        mode <= 0o777 && owner != 0 && group & !owner == 0 && other & !group == 0
    };
    let as_octal = u64::from_str_radix(&value.to_string(), 8).ok();
    sensible(value) && !as_octal.is_some_and(sensible)
}

/// Sizes in bytes as nginx spells them (`client_max_body_size`): a count of bytes, or one
/// followed by `k`, `m` or `g` (either case; 1024, 1024², 1024³). An integer is bytes.
pub(crate) fn size(value: &Scalar) -> Result<u64, String> {
    const HINT: &str = "(examples: 1m, 512k, 1048576)";
    let parsed = match value {
        Scalar::Int(bytes) => u64::try_from(*bytes).ok(),
        Scalar::Text(text) => {
            let text = text.trim();
            let (digits, unit) = match text.char_indices().last() {
                Some((at, 'k' | 'K')) => (&text[..at], 1 << 10),
                Some((at, 'm' | 'M')) => (&text[..at], 1 << 20),
                Some((at, 'g' | 'G')) => (&text[..at], 1 << 30),
                _ => (text, 1),
            };
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit))
            } else {
                None
            }
        }
        Scalar::Float(_) | Scalar::Bool(_) => None,
    };
    parsed.ok_or_else(|| format!("{value} is not a size {HINT}"))
}

/// Booleans as Go's `strconv.ParseBool` reads them (Vault's environment variables).
pub(crate) fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A boolean that may also be written as a string (`tls_skip_verify = "true"`).
pub(crate) fn scalar_boolean(value: &Scalar) -> Result<bool, String> {
    match value {
        Scalar::Bool(b) => Ok(*b),
        Scalar::Text(text) => boolean(text).ok_or_else(|| format!("{value} is not true or false")),
        Scalar::Int(0) => Ok(false),
        Scalar::Int(1) => Ok(true),
        _ => Err(format!("{value} is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Scalar {
        Scalar::Text(s.to_string())
    }

    #[test]
    fn sizes_as_nginx_spells_them() {
        for (spelling, bytes) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512k", 512 << 10),
            ("512K", 512 << 10),
            ("1m", 1 << 20),
            (" 20M ", 20 << 20),
            ("2g", 2 << 30),
        ] {
            assert_eq!(size(&text(spelling)), Ok(bytes), "{spelling}");
        }
        assert_eq!(size(&Scalar::Int(4096)), Ok(4096));
        for bad in ["", "m", "1.5m", "-1", "1t", "1 m", "99999999999999999999g"] {
            assert!(size(&text(bad)).is_err(), "{bad:?}");
        }
        assert!(size(&Scalar::Int(-1)).is_err());
        assert!(size(&Scalar::Bool(true)).is_err());
    }

    #[test]
    fn durations_in_every_vault_spelling() {
        assert_eq!(duration(&text("24h")), Ok(Duration::from_secs(86400)));
        assert_eq!(duration(&text("1h30m")), Ok(Duration::from_secs(5400)));
        assert_eq!(duration(&text("3600")), Ok(Duration::from_secs(3600)));
        assert_eq!(duration(&Scalar::Int(3600)), Ok(Duration::from_secs(3600)));
        assert_eq!(duration(&text("250ms")), Ok(Duration::from_millis(250)));
        assert_eq!(duration(&text("1.5h")), Ok(Duration::from_secs(5400)));
        assert_eq!(duration(&text("2d")), Ok(Duration::from_secs(172800)));
        assert_eq!(duration(&text("0")), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        assert_eq!(
            duration(&text("5 minutes")).unwrap_err(),
            "\"5 minutes\" is not a duration (examples: 90s, 5m, 1h30m, 3600)"
        );
        assert!(duration(&text("")).is_err());
        assert!(duration(&text("h")).is_err());
        assert!(duration(&text("10x")).is_err());
        assert!(duration(&Scalar::Int(-1)).is_err());
    }

    #[test]
    fn durations_longer_than_ten_years_are_refused_in_every_spelling() {
        // Integers used to pass unbounded, and `Instant::now() + interval` then panicked in
        // the agent (static_secret_render_interval) or the proxy (idle_timeout).
        let ten_years = 10 * 365 * 86400;
        assert_eq!(duration(&Scalar::Int(ten_years)), Ok(MAX_DURATION));
        for too_long in [
            Scalar::Int(ten_years + 1),
            Scalar::Int(i64::MAX),
            text("18446744073709551615"),
            text("99999999999999999999999"),
            text("87601h"),
            text(&"9".repeat(400)),
            text(&format!("{}h", "9".repeat(400))),
        ] {
            assert_eq!(
                duration(&too_long).unwrap_err(),
                format!("{too_long} is longer than ten years")
            );
        }
    }

    #[test]
    fn decimal_modes_are_taken_when_they_can_only_mean_what_vault_agent_applies() {
        // 0600, 0644, 0640, 0660, 0700, 0755, 0400 written in decimal.
        for taken in [384, 420, 416, 432, 448, 493, 256] {
            assert!(decimal_mode_as_meant(taken), "{taken}");
        }
        // Octal digits written without the 0 (644 would be 0o1204), an ambiguous 400 or 511,
        // and numbers that are no usual mode.
        for refused in [644, 600, 640, 755, 400, 511, 999, 0, 1000] {
            assert!(!decimal_mode_as_meant(refused), "{refused}");
        }
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(mode(&Scalar::Int(0o644)), Ok(0o644));
        assert_eq!(mode(&text("0644")), Ok(0o644));
        assert_eq!(mode(&text("600")), Ok(0o600));
        assert!(mode(&text("rw-r--r--")).is_err());
        assert!(mode(&text("0999")).is_err());
        assert!(mode(&Scalar::Int(0o4755)).unwrap_err().contains("setuid"));
    }

    #[test]
    fn go_booleans() {
        assert_eq!(boolean("1"), Some(true));
        assert_eq!(boolean("False"), Some(false));
        assert_eq!(boolean("yes"), None);
    }
}
