//! YAML: `parseYAML` through serde_yaml_ng (libyaml), and `toYAML` written the way go-yaml v2's `Marshal`
//! writes decoded JSON (block style, keys in go-yaml's natural order, sequences under a key
//! not indented, strings quoted only when a plain scalar would read back as something else).

use serde_yaml_ng::Value as Yaml;

use super::Outcome;
use crate::template::Value;

/// Parses one YAML document.
pub(super) fn parse(s: &str) -> Outcome {
    let yaml: Yaml = serde_yaml_ng::from_str(s).map_err(|err| go_error(&err))?;
    Ok(convert(&yaml))
}

/// go-yaml v2's wording: `yaml: line N: PROBLEM`, N being libyaml's 0-based line of the
/// problem (1-based for scanner errors), left out when 0.
fn go_error(err: &serde_yaml_ng::Error) -> String {
    let text = err.to_string();
    let (problem, context) = match text.split_once(" at line ") {
        Some((problem, rest)) => (problem.to_owned(), rest.to_owned()),
        None => return format!("yaml: {text}"),
    };
    let Some(location) = err.location() else {
        return format!("yaml: {problem}");
    };
    let scanner = context.contains("while scanning");
    let line = if scanner {
        location.line()
    } else {
        location.line().saturating_sub(1)
    };
    if line == 0 {
        format!("yaml: {problem}")
    } else {
        format!("yaml: line {line}: {problem}")
    }
}

fn convert(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Nil,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::List(items.iter().map(convert).collect()),
        Yaml::Mapping(map) => {
            Value::Map(map.iter().map(|(k, v)| (key_text(k), convert(v))).collect())
        }
        Yaml::Tagged(tagged) => convert(&tagged.value),
    }
}

/// A mapping key as the text Go prints for it.
fn key_text(key: &Yaml) -> String {
    match key {
        Yaml::String(s) => s.clone(),
        Yaml::Null => "<nil>".to_owned(),
        other => crate::template::go_sprint(&[convert(other)]),
    }
}

/// go-yaml v2's `Marshal` of a value.
pub(super) fn emit(value: &Value) -> String {
    let mut out = String::new();
    match value {
        value if !entries(value).is_empty() => emit_map(&mut out, &entries(value), 0),
        Value::List(items) if !items.is_empty() => emit_list(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other, 2, Some(0)));
            out.push('\n');
        }
    }
    out
}

/// A map's entries in go-yaml's order (keys in natural order), or a struct's fields in
/// declaration order under go-yaml's default names (lowercased). Empty for anything else.
fn entries(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Map(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| natural_order(a, b));
            keys.into_iter().map(|k| (k.clone(), &map[k])).collect()
        }
        Value::Struct(s) => s
            .fields
            .iter()
            .map(|(name, value)| (name.to_lowercase(), value))
            .collect(),
        _ => Vec::new(),
    }
}

fn emit_map(out: &mut String, entries_: &[(String, &Value)], indent: usize) {
    for (key, value) in entries_ {
        out.push_str(&" ".repeat(indent));
        // Keys are simple keys: never folded.
        out.push_str(&scalar(&Value::String(key.clone()), indent, None));
        out.push(':');
        match value {
            sub if !entries(sub).is_empty() => {
                out.push('\n');
                emit_map(out, &entries(sub), indent + 2);
            }
            Value::List(items) if !items.is_empty() => {
                out.push('\n');
                emit_list(out, items, indent);
            }
            other => {
                out.push(' ');
                let column = column(out);
                out.push_str(&scalar(other, indent + 2, Some(column)));
                out.push('\n');
            }
        }
    }
}

fn emit_list(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            sub if !entries(sub).is_empty() => {
                out.push(' ');
                let mut inner = String::new();
                emit_map(&mut inner, &entries(sub), indent + 2);
                out.push_str(inner.trim_start_matches(' '));
            }
            Value::List(sub) if !sub.is_empty() => {
                out.push(' ');
                let mut inner = String::new();
                emit_list(&mut inner, sub, indent + 2);
                out.push_str(inner.trim_start_matches(' '));
            }
            other => {
                out.push(' ');
                let column = column(out);
                out.push_str(&scalar(other, indent + 2, Some(column)));
                out.push('\n');
            }
        }
    }
}

/// The column the next character of `out` goes to.
fn column(out: &str) -> usize {
    out.rsplit('\n')
        .next()
        .map_or(0, |line| line.chars().count())
}

/// libyaml's `best_width`: plain and single-quoted scalars break at a space past it.
const BEST_WIDTH: usize = 80;

/// One scalar, with `indent` the column continuation and block lines start at, and `column`
/// where it starts (`None` for a key, which is never folded).
fn scalar(value: &Value, indent: usize, column: Option<usize>) -> String {
    match value {
        Value::Nil => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float(*f),
        // go-yaml v2 writes a json.Number as the int or float it parses as, else as a string.
        Value::JsonNumber(n) => match (n.parse::<i64>(), n.parse::<f64>()) {
            (Ok(i), _) => i.to_string(),
            (_, Ok(f)) => float(f),
            _ => string(n, indent, column),
        },
        Value::String(s) => string(s, indent, column),
        Value::List(_) => "[]".to_owned(),
        Value::Map(_) | Value::Struct(_) => "{}".to_owned(),
        Value::TypedNil(t) => match t.printed() {
            "[]" => "[]",
            "map[]" => "{}",
            _ => "null",
        }
        .to_owned(),
    }
}

fn float(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.to_owned()
    } else {
        // strconv.FormatFloat(f, 'g', -1, 64).
        crate::template::go_sprint(&[Value::Float(f)])
    }
}

fn string(s: &str, indent: usize, column: Option<usize>) -> String {
    if s.contains('\n') {
        return literal(s, indent);
    }
    if resolves_to_other_type(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return fold(s, indent, column, 0);
    }
    if s.chars().all(|c| c == ' ' || !c.is_control()) {
        return format!(
            "'{}'",
            fold(&s.replace('\'', "''"), indent, column.map(|c| c + 1), 1)
        );
    }
    double_quoted(s)
}

/// libyaml's line breaking of plain and single-quoted scalars: a single space (not the
/// first or last character) past [`BEST_WIDTH`] becomes a line break and `indent` spaces.
/// `margin` is 1 inside quotes (the quotes themselves are not candidates).
fn fold(s: &str, indent: usize, column: Option<usize>, margin: usize) -> String {
    let Some(mut column) = column else {
        return s.to_owned();
    };
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut after_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1).is_none_or(|n| *n == ' ');
            let inside = margin == 0 || (i != 0 && i + 1 != chars.len());
            if !after_space && column > BEST_WIDTH && !next_is_space && inside {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
            } else {
                out.push(' ');
                column += 1;
            }
            after_space = true;
        } else {
            out.push(c);
            column += 1;
            after_space = false;
        }
    }
    out
}

/// A `|` block: `|-` without a final newline, `|+` with several.
fn literal(s: &str, indent: usize) -> String {
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let indicator = if s.starts_with([' ', '\n']) { "2" } else { "" };
    let pad = " ".repeat(indent.max(2));
    let body = s.strip_suffix('\n').unwrap_or(s);
    let mut out = format!("|{indicator}{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether go-yaml v2 reads `s`, unquoted, as something other than a string (YAML 1.1: null,
/// booleans such as `yes` and `off`, numbers including `0x1F`, `1_000`, `0b1`, `.inf`,
/// base-60 `1:20`).
fn resolves_to_other_type(s: &str) -> bool {
    const OTHER: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if OTHER.contains(&s) || is_timestamp(s) {
        return true;
    }
    let plain = s.replace('_', "");
    let unsigned = plain.trim_start_matches(['+', '-']);
    if unsigned.is_empty() {
        return false;
    }
    if unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if let Some(hex) = unsigned.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if let Some(bin) = unsigned.strip_prefix("0b") {
        return !bin.is_empty() && bin.bytes().all(|b| b == b'0' || b == b'1');
    }
    // Base 60 (`190:20:30`), which go-yaml v2 quotes.
    let mut parts = unsigned.split(':');
    if unsigned.contains(':')
        && parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts.all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    // A float: digits with one `.` and an optional exponent.
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = mantissa.matches('.').count() <= 1
        && mantissa.bytes().any(|b| b.is_ascii_digit())
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.trim_start_matches(['+', '-']);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

/// go-yaml v2's `parseTimestamp`: `YYYY-M-D`, optionally followed by `T` (or `t`) and
/// `h:m:s[.digits]` with `Z` or `±hh:mm`, or by a space and `h:m:s[.fraction]` without a
/// zone (Go's `time.Parse` of its four layouts, ranges checked). Such a string resolves to a
/// timestamp, so the emitter quotes it.
fn is_timestamp(s: &str) -> bool {
    /// 1 or 2 digits (Go's layouts `1`, `2`, `15`, `4`, `5`), within `max`.
    fn number(part: &str, max: u32) -> Option<u32> {
        let ok = (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| part.parse().ok())
            .flatten()
            .filter(|n| *n <= max)
    }
    let Some((year, rest)) = s.split_at_checked(4) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('-') else {
        return false;
    };
    if !year.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (date, time, zoned) = match rest.find(['T', 't', ' ']) {
        Some(at) => (
            &rest[..at],
            Some(&rest[at + 1..]),
            rest.as_bytes()[at] != b' ',
        ),
        None => (rest, None, false),
    };
    let Some((month, day)) = date.split_once('-') else {
        return false;
    };
    let (Some(month), Some(day), Ok(year)) =
        (number(month, 12), number(day, 31), year.parse::<u32>())
    else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if month == 0 || day == 0 || day > days {
        return false;
    }
    let Some(time) = time else {
        return true;
    };
    let (clock, zone) = if zoned {
        match time.strip_suffix('Z') {
            Some(clock) => (clock, true),
            None if time.len() > 6 => {
                let (clock, zone) = time.split_at(time.len() - 6);
                let b = zone.as_bytes();
                let ok = matches!(b[0], b'+' | b'-')
                    && b[3] == b':'
                    && [b[1], b[2], b[4], b[5]].iter().all(u8::is_ascii_digit);
                (clock, ok)
            }
            None => return false,
        }
    } else {
        (time, true)
    };
    let (clock, fraction) = match clock.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (clock, None),
    };
    let mut parts = clock.split(':');
    let clock_ok = [23, 59, 59]
        .iter()
        .all(|max| parts.next().and_then(|p| number(p, *max)).is_some())
        && parts.next().is_none();
    let fraction_ok =
        fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    zone && clock_ok && fraction_ok
}

/// libyaml's analysis of whether a scalar may be written plain in block context.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    if first == ' ' || last == ' ' {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if matches!(
        first,
        '#' | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    if matches!(first, '-' | '?' | ':') && chars.get(1).is_none_or(|c| *c == ' ') {
        return false;
    }
    for (i, c) in chars.iter().enumerate() {
        let next = chars.get(i + 1);
        if *c == ':' && next.is_none_or(|n| *n == ' ') {
            return false;
        }
        if *c == '#' && i > 0 && chars[i - 1] == ' ' {
            return false;
        }
        if c.is_control() || *c == '\u{feff}' || (!c.is_ascii() && !is_printable(*c)) {
            return false;
        }
    }
    true
}

fn is_printable(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// go-yaml v2's key order: letters by code point, runs of digits by value, a letter after
/// a non-letter.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}
