//! Sprig's defaults, conversions, type tests, regexes, environment, paths, time and ids.

use super::collections::sprig_empty;
use super::math::{to_float64, to_int64};
use super::strings::{compile, strval};
use super::{Args, Outcome, boolean, int, kind_name, string, text};
use crate::template::Value;

/// The Sprig functions of this family.
pub(super) fn call(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "hello" => (|| {
            args.exactly(0)?;
            text("Hello!")
        })(),
        "default" => (|| {
            let a = args.at_least(1)?;
            match a.get(1) {
                Some(given) if !sprig_empty(given) => Ok(given.clone()),
                _ => Ok(a[0].clone()),
            }
        })(),
        "empty" => (|| Ok(Value::Bool(sprig_empty(&args.exactly(1)?[0]))))(),
        "coalesce" => Ok(args
            .all()
            .iter()
            .find(|v| !sprig_empty(v))
            .cloned()
            .unwrap_or_default()),
        "all" => Ok(Value::Bool(args.all().iter().all(|v| !sprig_empty(v)))),
        "any" => Ok(Value::Bool(args.all().iter().any(|v| !sprig_empty(v)))),
        "ternary" => (|| {
            let a = args.exactly(3)?;
            Ok(if boolean(&a[2])? {
                a[0].clone()
            } else {
                a[1].clone()
            })
        })(),
        "typeOf" => (|| text(args.exactly(1)?[0].type_name()))(),
        "typeIs" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Bool(string(&a[0])? == a[1].type_name()))
        })(),
        "typeIsLike" => (|| {
            let a = args.exactly(2)?;
            let (target, t) = (string(&a[0])?, a[1].type_name());
            Ok(Value::Bool(target == t || format!("*{target}") == t))
        })(),
        "kindOf" => (|| text(kind_name(&args.exactly(1)?[0])))(),
        "kindIs" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Bool(string(&a[0])? == kind_name(&a[1])))
        })(),
        "deepEqual" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Bool(a[0] == a[1]))
        })(),
        "deepCopy" | "mustDeepCopy" => (|| Ok(args.exactly(1)?[0].clone()))(),
        "fail" => (|| Err(string(&args.exactly(1)?[0])?.to_owned()))(),
        "toString" => (|| text(strval(&args.exactly(1)?[0])))(),
        "atoi" => (|| {
            let s = string(&args.exactly(1)?[0])?;
            Ok(Value::Int(parse_atoi(s).unwrap_or(0)))
        })(),
        "int64" | "int" => (|| Ok(Value::Int(to_int64(&args.exactly(1)?[0]))))(),
        "float64" => (|| Ok(Value::Float(to_float64(&args.exactly(1)?[0]))))(),
        "env" => (|| {
            let variable = string(&args.exactly(1)?[0])?;
            text(std::env::var(variable).unwrap_or_default())
        })(),
        "expandenv" => (|| text(expand_env(string(&args.exactly(1)?[0])?)))(),
        "base" | "osBase" => (|| text(path_base(string(&args.exactly(1)?[0])?)))(),
        "dir" | "osDir" => (|| text(path_dir(string(&args.exactly(1)?[0])?)))(),
        "clean" | "osClean" => (|| text(path_clean(string(&args.exactly(1)?[0])?)))(),
        "ext" | "osExt" => (|| text(path_ext(string(&args.exactly(1)?[0])?)))(),
        "isAbs" | "osIsAbs" => {
            (|| Ok(Value::Bool(string(&args.exactly(1)?[0])?.starts_with('/'))))()
        }
        "now" => (|| {
            args.exactly(0)?;
            text(super::gotime::format(
                &super::gotime::now(),
                super::gotime::GO_STRING,
            ))
        })(),
        "date" => (|| {
            let a = args.exactly(2)?;
            let layout = string(&a[0])?;
            text(super::gotime::format(&instant(&a[1]), layout))
        })(),
        "htmlDate" => (|| {
            let a = args.exactly(1)?;
            text(super::gotime::format(&instant(&a[0]), "2006-01-02"))
        })(),
        "htmlDateInZone" => (|| {
            let a = args.exactly(2)?;
            utc_only(name, string(&a[1])?)?;
            text(super::gotime::format(&instant(&a[0]), "2006-01-02"))
        })(),
        "dateModify" | "date_modify" | "mustDateModify" | "must_date_modify" => (|| {
            let a = args.exactly(2)?;
            let change = string(&a[0])?;
            let time = match &a[1] {
                Value::String(s) => super::gotime::parse_go_string(s),
                _ => None,
            }
            .ok_or_else(|| super::wrong_type("time.Time", &a[1]))?;
            let nanos = match super::gotime::parse_duration(change) {
                Ok(nanos) => nanos,
                Err(err) if name.starts_with("must") => return Err(err),
                // Sprig's dateModify returns the time unchanged.
                Err(_) => 0,
            };
            text(super::gotime::format(
                &time.add_nanos(nanos),
                super::gotime::GO_STRING,
            ))
        })(),
        "dateInZone" | "date_in_zone" => (|| {
            let a = args.exactly(3)?;
            let (layout, zone) = (string(&a[0])?, string(&a[2])?);
            utc_only(name, zone)?;
            text(super::gotime::format(&instant(&a[1]), layout))
        })(),
        "unixEpoch" => (|| {
            let a = args.exactly(1)?;
            match &a[0] {
                Value::String(s) => match super::gotime::parse_go_string(s) {
                    Some(t) => text(t.seconds.to_string()),
                    None => Err(super::wrong_type("time.Time", &a[0])),
                },
                other => Err(super::wrong_type("time.Time", other)),
            }
        })(),
        "toDate" | "mustToDate" => (|| {
            let a = args.exactly(2)?;
            let (layout, value) = (string(&a[0])?, string(&a[1])?);
            let time = match super::gotime::parse(layout, value) {
                Ok(time) => time,
                Err(err) if name == "mustToDate" => return Err(err),
                // Sprig's toDate gives Go's zero time.
                Err(_) => super::gotime::Instant {
                    seconds: ZERO_TIME,
                    nanos: 0,
                },
            };
            text(super::gotime::format(&time, super::gotime::GO_STRING))
        })(),
        "duration" => (|| {
            // Sprig reads a string or an int64; a template's integers are Go ints.
            let seconds = match &args.exactly(1)?[0] {
                Value::String(s) => parse_atoi(s).unwrap_or(0),
                _ => 0,
            };
            text(super::gotime::duration_string(
                seconds.wrapping_mul(1_000_000_000),
            ))
        })(),
        "durationRound" => (|| {
            let nanos = match &args.exactly(1)?[0] {
                Value::String(s) => match super::gotime::parse_go_string(s) {
                    Some(t) => super::gotime::since(&t),
                    None => super::gotime::parse_duration(s).unwrap_or(0),
                },
                _ => 0,
            };
            text(round_duration_coarsely(nanos))
        })(),
        "ago" => (|| {
            let since = match &args.exactly(1)?[0] {
                Value::Int(seconds) => super::gotime::since(&super::gotime::Instant {
                    seconds: *seconds,
                    nanos: 0,
                }),
                Value::String(s) => {
                    super::gotime::parse_go_string(s).map_or(0, |t| super::gotime::since(&t))
                }
                _ => 0,
            };
            text(super::gotime::duration_string(
                super::gotime::round_duration(since, 1_000_000_000),
            ))
        })(),
        "uuidv4" => (|| {
            args.exactly(0)?;
            let mut bytes = [0u8; 16];
            fill_random(&mut bytes)?;
            bytes[6] = bytes[6] & 0x0f | 0x40;
            bytes[8] = bytes[8] & 0x3f | 0x80;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            text(format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            ))
        })(),
        "randAlphaNum" | "randAlpha" | "randAscii" | "randNumeric" => (|| {
            let count = int(&args.exactly(1)?[0])?;
            let charset: Vec<u8> = match name {
                "randAlphaNum" => (b'0'..=b'9')
                    .chain(b'A'..=b'Z')
                    .chain(b'a'..=b'z')
                    .collect(),
                "randAlpha" => (b'A'..=b'Z').chain(b'a'..=b'z').collect(),
                "randNumeric" => (b'0'..=b'9').collect(),
                _ => (32..=126).collect(),
            };
            // goutils returns an error for a negative count, which Sprig drops.
            let count = usize::try_from(count).unwrap_or(0);
            if count > MAX_RANDOM {
                return Err(format!(
                    "{name}: {count} characters is more than pki-sidecar allows"
                ));
            }
            let mut out = String::with_capacity(count);
            for _ in 0..count {
                out.push(charset[random_below(charset.len() as u64)? as usize] as char);
            }
            text(out)
        })(),
        "randInt" => (|| {
            let a = args.exactly(2)?;
            let (min, max) = (int(&a[0])?, int(&a[1])?);
            let span = max
                .checked_sub(min)
                .filter(|span| *span > 0)
                .ok_or_else(|| "invalid argument to Intn".to_owned())?;
            Ok(Value::Int(min + random_below(span as u64)? as i64))
        })(),
        "randBytes" => (|| {
            use base64::Engine as _;
            let count = int(&args.exactly(1)?[0])?;
            let count =
                usize::try_from(count).map_err(|_| "randBytes: negative count".to_owned())?;
            if count > MAX_RANDOM {
                return Err(format!(
                    "randBytes: {count} bytes is more than pki-sidecar allows"
                ));
            }
            let mut bytes = vec![0u8; count];
            fill_random(&mut bytes)?;
            text(base64::engine::general_purpose::STANDARD.encode(bytes))
        })(),
        "shuffle" => (|| {
            let mut chars: Vec<char> = string(&args.exactly(1)?[0])?.chars().collect();
            for i in (1..chars.len()).rev() {
                let j = random_below(i as u64 + 1)? as usize;
                chars.swap(i, j);
            }
            text(chars.into_iter().collect::<String>())
        })(),
        "toDecimal" => (|| {
            let digits = crate::template::go_sprint(std::slice::from_ref(&args.exactly(1)?[0]));
            Ok(Value::Int(parse_octal(&digits).unwrap_or(0)))
        })(),
        "regexMatch" | "mustRegexMatch" => (|| {
            let a = args.exactly(2)?;
            let (pattern, s) = (string(&a[0])?, string(&a[1])?);
            match compile(pattern) {
                Ok(re) => Ok(Value::Bool(re.is_match(s))),
                Err(err) if name == "mustRegexMatch" => Err(err),
                Err(_) => Ok(Value::Bool(false)),
            }
        })(),
        "regexFindAll" | "mustRegexFindAll" => (|| {
            let a = args.exactly(3)?;
            let (re, s, n) = (compile(string(&a[0])?)?, string(&a[1])?, int(&a[2])?);
            let limit = if n < 0 { usize::MAX } else { n as usize };
            Ok(Value::List(
                re.find_iter(s)
                    .take(limit)
                    .map(|m| Value::String(m.as_str().to_owned()))
                    .collect(),
            ))
        })(),
        "regexFind" | "mustRegexFind" => (|| {
            let a = args.exactly(2)?;
            let (re, s) = (compile(string(&a[0])?)?, string(&a[1])?);
            text(re.find(s).map_or("", |m| m.as_str()))
        })(),
        "regexReplaceAll" | "mustRegexReplaceAll" => (|| {
            let a = args.exactly(3)?;
            let (re, s, replacement) = (compile(string(&a[0])?)?, string(&a[1])?, string(&a[2])?);
            text(re.replace_all(s, replacement).into_owned())
        })(),
        "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => (|| {
            let a = args.exactly(3)?;
            let (re, s, replacement) = (compile(string(&a[0])?)?, string(&a[1])?, string(&a[2])?);
            text(re.replace_all(s, regex::NoExpand(replacement)).into_owned())
        })(),
        "regexSplit" | "mustRegexSplit" => (|| {
            let a = args.exactly(3)?;
            let (re, s, n) = (compile(string(&a[0])?)?, string(&a[1])?, int(&a[2])?);
            let parts: Vec<&str> = match n {
                0 => Vec::new(),
                n if n < 0 => {
                    if s.is_empty() {
                        vec![""]
                    } else {
                        re.split(s).collect()
                    }
                }
                n => re.splitn(s, n as usize).collect(),
            };
            Ok(super::strings::strings_value(parts))
        })(),
        "regexQuoteMeta" => (|| text(regex::escape(string(&args.exactly(1)?[0])?)))(),
        _ => return None,
    })
}

/// Sprig's `durationRound`: the largest whole unit (`y` = 365 days, `mo` = 30 days, `d`,
/// `h`, `m`, `s`) the magnitude exceeds, sign dropped.
fn round_duration_coarsely(nanos: i64) -> String {
    const SECOND: u64 = 1_000_000_000;
    const UNITS: [(u64, &str); 6] = [
        (SECOND * 3600 * 24 * 365, "y"),
        (SECOND * 3600 * 24 * 30, "mo"),
        (SECOND * 3600 * 24, "d"),
        (SECOND * 3600, "h"),
        (SECOND * 60, "m"),
        (SECOND, "s"),
    ];
    let u = nanos.unsigned_abs();
    UNITS.iter().find(|(unit, _)| u > *unit).map_or_else(
        || "0s".to_owned(),
        |(unit, suffix)| format!("{}{suffix}", u / unit),
    )
}

/// Go's zero `time.Time` (0001-01-01 00:00:00 UTC) in Unix seconds.
const ZERO_TIME: i64 = -62_135_596_800;

/// Refuses a time zone other than UTC (Go would load it from the system's zone database).
fn utc_only(name: &str, zone: &str) -> Result<(), String> {
    if matches!(zone, "UTC" | "" | "Etc/UTC") {
        Ok(())
    } else {
        Err(format!(
            "{name}: time zone {zone:?} is not supported by pki-sidecar (only UTC)"
        ))
    }
}

/// The most characters or bytes the random functions produce.
const MAX_RANDOM: usize = 1 << 20;

fn fill_random(bytes: &mut [u8]) -> Result<(), String> {
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), bytes)
        .map_err(|_| "no randomness available from the system".to_owned())
}

/// A uniform random number below `bound` (> 0).
fn random_below(bound: u64) -> Result<u64, String> {
    let zone = u64::MAX - u64::MAX % bound;
    loop {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes)?;
        let n = u64::from_le_bytes(bytes);
        if n < zone {
            return Ok(n % bound);
        }
    }
}

/// Go's `strconv.ParseInt(s, 8, 64)`.
fn parse_octal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    i64::from_str_radix(s, 8).ok()
}

/// Sprig's `date` argument: an int is Unix seconds, anything else (including `now`'s
/// output) is now, as in Sprig.
fn instant(value: &Value) -> super::gotime::Instant {
    match value {
        Value::Int(seconds) => super::gotime::Instant {
            seconds: *seconds,
            nanos: 0,
        },
        Value::String(s) => super::gotime::parse_go_string(s).unwrap_or_else(super::gotime::now),
        _ => super::gotime::now(),
    }
}

/// Go's `strconv.Atoi`.
fn parse_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `strconv.ParseFloat(s, 64)` for the common spellings (decimal, exponent, `inf`,
/// `nan`, `_` separators not accepted).
pub(super) fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.replace("infinity", "inf").parse().ok();
    }
    if unsigned.is_empty()
        || !unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// Go's `os.ExpandEnv`: `$NAME` and `${NAME}`, unset variables empty.
fn expand_env(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            out.push_str(&s[start..i]);
            let rest = &s[i + 1..];
            let (name, width) = shell_name(rest);
            if name.is_empty() && width > 0 {
                // Bad syntax: dropped, as Go does.
            } else if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(&std::env::var(name).unwrap_or_default());
            }
            i += 1 + width;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[start..]);
    out
}

fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return ("", 2);
                }
                return (&s[1..i], i + 1);
            }
        }
        return ("", 1);
    }
    if is_special(b[0]) {
        return (&s[..1], 1);
    }
    let len = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (&s[..len], len)
}

fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit()
}

/// Go's `path.Clean`.
pub(super) fn path_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn path_base(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

fn path_dir(path: &str) -> String {
    let dir = match path.rfind('/') {
        Some(at) => &path[..=at],
        None => "",
    };
    path_clean(dir)
}

fn path_ext(path: &str) -> String {
    for (i, c) in path.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return path[i..].to_owned();
        }
    }
    String::new()
}
