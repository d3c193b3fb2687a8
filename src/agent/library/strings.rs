//! Text functions: consul-template's and Sprig's.

use super::{Args, Outcome, int, sprint, string, string_list, text};
use crate::template::Value;

/// consul-template's text functions.
pub(super) fn consul(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "file" => file(args),
        "env" => one_string(args, |s| std::env::var(s).unwrap_or_default()),
        "mustEnv" => (|| {
            let variable = string(&args.exactly(1)?[0])?;
            match std::env::var(variable) {
                Ok(value) if !value.is_empty() => text(value),
                _ => Err(format!("required environment variable {variable} is empty")),
            }
        })(),
        "envOrDefault" => (|| {
            let a = args.exactly(2)?;
            let (variable, default) = (string(&a[0])?, string(&a[1])?);
            text(std::env::var(variable).unwrap_or_else(|_| default.to_owned()))
        })(),
        "indent" => (|| {
            let a = args.exactly(2)?;
            let (spaces, s) = (int(&a[0])?, string(&a[1])?);
            if spaces < 0 {
                return Err("indent value must be a positive integer".to_owned());
            }
            bounded("indent", spaces, s)?;
            text(indent_lines(spaces as usize, s))
        })(),
        "join" => (|| {
            let a = args.exactly(2)?;
            let separator = string(&a[0])?;
            text(string_list(&a[1])?.join(separator))
        })(),
        "trim" => two_strings(args, |cutset, s| go_trim(s, cutset).to_owned()),
        "trimPrefix" => two_strings(args, |prefix, s| {
            s.strip_prefix(prefix).unwrap_or(s).to_owned()
        }),
        "trimSuffix" => two_strings(args, |suffix, s| {
            s.strip_suffix(suffix).unwrap_or(s).to_owned()
        }),
        "trimSpace" => one_string(args, |s| go_trim_space(s).to_owned()),
        "replaceAll" => (|| {
            let a = args.exactly(3)?;
            let (from, to, s) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
            text(go_replace(s, from, to))
        })(),
        "regexReplaceAll" => (|| {
            let a = args.exactly(3)?;
            let (re, replacement, s) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
            let re = compile(re)?;
            text(re.replace_all(s, replacement).into_owned())
        })(),
        "regexMatch" => (|| {
            let a = args.exactly(2)?;
            let re = compile(string(&a[0])?)?;
            Ok(Value::Bool(re.is_match(string(&a[1])?)))
        })(),
        "split" => (|| {
            let a = args.exactly(2)?;
            let (separator, s) = (string(&a[0])?, go_trim_space(string(&a[1])?));
            if s.is_empty() {
                return Ok(Value::List(Vec::new()));
            }
            Ok(strings_value(go_split(s, separator)))
        })(),
        "splitToMap" => (|| {
            let a = args.exactly(3)?;
            let (outer, inner) = (string(&a[0])?, string(&a[1])?);
            let s = go_trim_space(string(&a[2])?);
            let mut map = std::collections::BTreeMap::new();
            if !s.is_empty() {
                for item in go_split(s, outer) {
                    if let Some((k, v)) = item.split_once(inner) {
                        map.insert(k.to_owned(), Value::String(v.to_owned()));
                    }
                }
            }
            Ok(Value::Map(map))
        })(),
        "parseBool" => (|| {
            let s = string(&args.exactly(1)?[0])?;
            match s {
                "" => Ok(Value::Bool(false)),
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err(strconv_error("parseBool", "ParseBool", s, false)),
            }
        })(),
        "parseInt" => (|| {
            let s = string(&args.exactly(1)?[0])?;
            if s.is_empty() {
                return Ok(Value::Int(0));
            }
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            let syntax_ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            match s.parse::<i64>() {
                Ok(n) if syntax_ok => Ok(Value::Int(n)),
                _ => Err(strconv_error("parseInt", "ParseInt", s, syntax_ok)),
            }
        })(),
        "parseUint" => (|| {
            let s = string(&args.exactly(1)?[0])?;
            if s.is_empty() {
                return Ok(Value::Int(0));
            }
            let syntax_ok = s.bytes().all(|b| b.is_ascii_digit());
            match s.parse::<u64>() {
                // Above i64::MAX Go still has the number (uint64); here it does not fit.
                Ok(n) if syntax_ok => i64::try_from(n).map(Value::Int).map_err(|_| {
                    format!("parseUint: {s} does not fit a signed 64-bit integer in pki-sidecar")
                }),
                _ => Err(strconv_error("parseUint", "ParseUint", s, syntax_ok)),
            }
        })(),
        "parseFloat" => (|| {
            let s = string(&args.exactly(1)?[0])?;
            if s.is_empty() {
                return Ok(Value::Float(0.0));
            }
            match super::sprig::parse_go_float(s) {
                Some(f) if f.is_finite() || !s.bytes().any(|b| b.is_ascii_digit()) => {
                    Ok(Value::Float(f))
                }
                Some(_) => Err(strconv_error("parseFloat", "ParseFloat", s, true)),
                None => Err(strconv_error("parseFloat", "ParseFloat", s, false)),
            }
        })(),
        "toLower" => one_string(args, go_lower),
        "toUpper" => one_string(args, go_upper),
        "toTitle" => one_string(args, title_words),
        "timestamp" => (|| {
            let a = args.all();
            let now = super::gotime::now();
            match a {
                [] => text(super::gotime::format(&now, super::gotime::RFC3339)),
                [layout] => {
                    let layout = string(layout)?;
                    if layout == "unix" {
                        text(now.seconds.to_string())
                    } else {
                        text(super::gotime::format(&now, layout))
                    }
                }
                _ => Err(format!(
                    "timestamp: wrong number of arguments, expected 0 or 1, but got {}",
                    a.len()
                )),
            }
        })(),
        _ => return None,
    })
}

/// consul-template's wrapping of a `strconv` error.
fn strconv_error(name: &str, function: &str, s: &str, range: bool) -> String {
    format!(
        "{name}: strconv.{function}: parsing {}: {}",
        crate::template::go_quote(s),
        if range {
            "value out of range"
        } else {
            "invalid syntax"
        }
    )
}

/// `file PATH`: the file's contents; an empty path gives "".
fn file(args: &Args) -> Outcome {
    let path = string(&args.exactly(1)?[0])?;
    if path.is_empty() {
        return text("");
    }
    // consul-template's wording: `file(PATH): stat PATH: no such file or directory`.
    if let Err(err) = std::fs::metadata(path) {
        return Err(format!("file({path}): stat {path}: {}", go_errno(&err)));
    }
    match std::fs::read(path) {
        Ok(bytes) => text(utf8("file", bytes)?),
        Err(err) => Err(format!("file({path}): read {path}: {}", go_errno(&err))),
    }
}

/// An OS error as Go's `syscall.Errno` prints it ("no such file or directory").
fn go_errno(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Sprig's text functions.
pub(super) fn sprig(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "abbrev" => (|| {
            let a = args.exactly(2)?;
            let (width, s) = (int(&a[0])?, string(&a[1])?);
            text(abbreviate(s, 0, width)?)
        })(),
        "abbrevboth" => (|| {
            let a = args.exactly(3)?;
            let (left, right, s) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
            if right < 4 || left > 0 && right < 7 {
                return text(s);
            }
            text(abbreviate(s, left, right)?)
        })(),
        "trunc" => (|| {
            let a = args.exactly(2)?;
            let (count, s) = (int(&a[0])?, string(&a[1])?);
            let len = s.len() as i64;
            let cut = if count < 0 && len + count > 0 {
                &s.as_bytes()[(len + count) as usize..]
            } else if count >= 0 && len > count {
                &s.as_bytes()[..count as usize]
            } else {
                s.as_bytes()
            };
            text(utf8("sprig_trunc", cut.to_vec())?)
        })(),
        "trim" => one_string(args, |s| go_trim_space(s).to_owned()),
        "upper" => one_string(args, go_upper),
        "lower" => one_string(args, go_lower),
        "title" => one_string(args, strings_title),
        // goutils' Uncapitalize: the first letter of each white-space-separated word.
        "untitle" => one_string(args, |s| {
            let mut out = String::with_capacity(s.len());
            let mut after_space = true;
            for c in s.chars() {
                if after_space && !c.is_whitespace() {
                    out.extend(c.to_lowercase());
                } else {
                    out.push(c);
                }
                after_space = c.is_whitespace();
            }
            out
        }),
        "substr" => (|| {
            let a = args.exactly(3)?;
            let (start, end, s) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
            let bytes = s.as_bytes();
            let len = bytes.len() as i64;
            let slice_error = |lo: i64, hi: i64| {
                Err(format!(
                    "runtime error: slice bounds out of range [{lo}:{hi}]"
                ))
            };
            let cut = if start < 0 {
                if end < 0 || end > len {
                    return slice_error(0, end);
                }
                &bytes[..end as usize]
            } else if end < 0 || end > len {
                if start > len {
                    return slice_error(start, len);
                }
                &bytes[start as usize..]
            } else {
                if start > end {
                    return slice_error(start, end);
                }
                &bytes[start as usize..end as usize]
            };
            text(utf8("sprig_substr", cut.to_vec())?)
        })(),
        "repeat" => (|| {
            let a = args.exactly(2)?;
            let (count, s) = (int(&a[0])?, string(&a[1])?);
            if count < 0 {
                return Err("strings: negative Repeat count".to_owned());
            }
            let total = (count as usize).checked_mul(s.len());
            match total {
                Some(total) if total <= MAX_OUTPUT => text(s.repeat(count as usize)),
                _ => Err("strings: Repeat output length overflow".to_owned()),
            }
        })(),
        "trimall" | "trimAll" => two_strings(args, |cutset, s| go_trim(s, cutset).to_owned()),
        "trimSuffix" => two_strings(args, |suffix, s| {
            s.strip_suffix(suffix).unwrap_or(s).to_owned()
        }),
        "trimPrefix" => two_strings(args, |prefix, s| {
            s.strip_prefix(prefix).unwrap_or(s).to_owned()
        }),
        "nospace" => one_string(args, |s| s.chars().filter(|c| !c.is_whitespace()).collect()),
        "initials" => one_string(args, |s| {
            let mut out = String::new();
            let mut after_space = true;
            for c in s.chars() {
                if c.is_whitespace() {
                    after_space = true;
                } else if after_space {
                    out.push(c);
                    after_space = false;
                }
            }
            out
        }),
        "swapcase" => one_string(args, swap_case),
        "snakecase" => one_string(args, |s| words_to_lower(s, '_')),
        "kebabcase" => one_string(args, |s| words_to_lower(s, '-')),
        "camelcase" => one_string(args, camel_case),
        "contains" => two_strings_bool(args, |needle, s| s.contains(needle)),
        "hasPrefix" => two_strings_bool(args, |prefix, s| s.starts_with(prefix)),
        "hasSuffix" => two_strings_bool(args, |suffix, s| s.ends_with(suffix)),
        "quote" => text(
            args.all()
                .iter()
                .filter(|v| **v != Value::Nil)
                .map(|v| crate::template::go_quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => text(
            args.all()
                .iter()
                .filter(|v| **v != Value::Nil)
                .map(|v| format!("'{}'", sprint(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "cat" => {
            let kept: Vec<Value> = args
                .all()
                .iter()
                .filter(|v| **v != Value::Nil)
                .cloned()
                .collect();
            let format = vec!["%v"; kept.len()].join(" ");
            text(crate::template::go_sprintf(&format, &kept))
        }
        "indent" => (|| {
            let a = args.exactly(2)?;
            let (spaces, s) = (int(&a[0])?, string(&a[1])?);
            bounded("sprig_indent", spaces, s)?;
            text(sprig_indent(spaces, s))
        })(),
        "nindent" => (|| {
            let a = args.exactly(2)?;
            let (spaces, s) = (int(&a[0])?, string(&a[1])?);
            bounded("sprig_nindent", spaces, s)?;
            text(format!("\n{}", sprig_indent(spaces, s)))
        })(),
        "replace" => (|| {
            let a = args.exactly(3)?;
            let (from, to, s) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
            text(go_replace(s, from, to))
        })(),
        "plural" => (|| {
            let a = args.exactly(3)?;
            let (one, many, count) = (string(&a[0])?, string(&a[1])?, int(&a[2])?);
            text(if count == 1 { one } else { many })
        })(),
        "wrap" => (|| {
            let a = args.exactly(2)?;
            let (width, s) = (int(&a[0])?, string(&a[1])?);
            text(wrap(s, width, "\n", false)?)
        })(),
        "wrapWith" => (|| {
            let a = args.exactly(3)?;
            let (width, separator, s) = (int(&a[0])?, string(&a[1])?, string(&a[2])?);
            text(wrap(s, width, separator, true)?)
        })(),
        "split" => (|| {
            let a = args.exactly(2)?;
            let (separator, s) = (string(&a[0])?, string(&a[1])?);
            Ok(numbered(go_split(s, separator)))
        })(),
        "splitn" => (|| {
            let a = args.exactly(3)?;
            let (separator, n, s) = (string(&a[0])?, int(&a[1])?, string(&a[2])?);
            Ok(numbered(go_splitn(s, separator, n)))
        })(),
        "splitList" => (|| {
            let a = args.exactly(2)?;
            let (separator, s) = (string(&a[0])?, string(&a[1])?);
            Ok(strings_value(go_split(s, separator)))
        })(),
        "join" => (|| {
            let a = args.exactly(2)?;
            let separator = string(&a[0])?;
            text(to_strings(&a[1]).join(separator))
        })(),
        "sortAlpha" => (|| {
            let a = args.exactly(1)?;
            let mut items = match &a[0] {
                Value::List(_) => to_strings(&a[0]),
                other => vec![strval(other)],
            };
            items.sort();
            Ok(Value::List(items.into_iter().map(Value::String).collect()))
        })(),
        "toStrings" => (|| {
            let a = args.exactly(1)?;
            Ok(Value::List(
                to_strings(&a[0]).into_iter().map(Value::String).collect(),
            ))
        })(),
        "seq" => (|| {
            let params = args.all().iter().map(int).collect::<Result<Vec<_>, _>>()?;
            text(seq(&params))
        })(),
        _ => return None,
    })
}

/// Bytes a function cut or decoded, as text: Go would carry bytes that are not UTF-8 along,
/// but template values here are text, so this is an error rather than a silent replacement.
pub(super) fn utf8(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| {
        format!("{name}: the result is not UTF-8 text (a multi-byte character cut, or binary data), which pki-sidecar templates cannot hold")
    })
}

/// The longest string a function may build (a template must not exhaust memory).
const MAX_OUTPUT: usize = 64 << 20;

/// Refuses an indentation whose output would pass [`MAX_OUTPUT`].
fn bounded(name: &str, spaces: i64, s: &str) -> Result<(), String> {
    let lines = s.bytes().filter(|b| *b == b'\n').count() + 1;
    let total = usize::try_from(spaces.max(0))
        .ok()
        .and_then(|spaces| spaces.checked_mul(lines))
        .and_then(|pad| pad.checked_add(s.len()));
    match total {
        Some(total) if total <= MAX_OUTPUT => Ok(()),
        _ => Err(format!(
            "{name}: the result would be larger than pki-sidecar allows ({MAX_OUTPUT} bytes)"
        )),
    }
}

fn one_string(args: &Args, f: impl FnOnce(&str) -> String) -> Outcome {
    let s = string(&args.exactly(1)?[0])?;
    text(f(s))
}

fn two_strings(args: &Args, f: impl FnOnce(&str, &str) -> String) -> Outcome {
    let a = args.exactly(2)?;
    text(f(string(&a[0])?, string(&a[1])?))
}

fn two_strings_bool(args: &Args, f: impl FnOnce(&str, &str) -> bool) -> Outcome {
    let a = args.exactly(2)?;
    Ok(Value::Bool(f(string(&a[0])?, string(&a[1])?)))
}

pub(super) fn strings_value(items: Vec<&str>) -> Value {
    Value::List(
        items
            .into_iter()
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    )
}

/// Sprig's `split` result: `{_0: .., _1: ..}`.
fn numbered(items: Vec<&str>) -> Value {
    Value::Map(
        items
            .into_iter()
            .enumerate()
            .map(|(n, s)| (format!("_{n}"), Value::String(s.to_owned())))
            .collect(),
    )
}

/// Sprig's `strval`: strings as they are, everything else as `%v`.
pub(super) fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => sprint(other),
    }
}

/// Sprig's `strslice`: a list's non-nil items as strings; nil is empty; another value one item.
pub(super) fn to_strings(value: &Value) -> Vec<String> {
    match value {
        Value::List(items) => items
            .iter()
            .filter(|v| **v != Value::Nil)
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// Go's `strings.Split`: an empty separator splits after each character.
pub(super) fn go_split<'a>(s: &'a str, separator: &str) -> Vec<&'a str> {
    if separator.is_empty() {
        return s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
    }
    s.split(separator).collect()
}

/// Go's `strings.SplitN`.
fn go_splitn<'a>(s: &'a str, separator: &str, n: i64) -> Vec<&'a str> {
    if n == 0 {
        return Vec::new();
    }
    if n < 0 {
        return go_split(s, separator);
    }
    if separator.is_empty() {
        let mut parts: Vec<&str> = Vec::new();
        let mut rest = s;
        while !rest.is_empty() && (parts.len() as i64) < n - 1 {
            let len = rest.chars().next().map_or(0, char::len_utf8);
            parts.push(&rest[..len]);
            rest = &rest[len..];
        }
        if !rest.is_empty() {
            parts.push(rest);
        }
        return parts;
    }
    s.splitn(n as usize, separator).collect()
}

/// Go's `strings.Replace(s, from, to, -1)`: an empty `from` inserts `to` around each character.
pub(super) fn go_replace(s: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        let mut out = String::from(to);
        for c in s.chars() {
            out.push(c);
            out.push_str(to);
        }
        return out;
    }
    s.replace(from, to)
}

/// Go's `strings.TrimSpace` (Unicode white space).
pub(super) fn go_trim_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace())
}

/// Go's `strings.Trim`: every leading and trailing character in `cutset`.
fn go_trim<'a>(s: &'a str, cutset: &str) -> &'a str {
    s.trim_matches(|c: char| cutset.contains(c))
}

/// Go's `strings.ToUpper`: per-character mappings only (no "ß" to "SS").
fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToLower`: per-character mappings only.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

/// consul-template's `toTitle` (`cases.Title(language.Und, cases.NoLower)`): in each word, the
/// first letter is upper-cased (title case) and the rest left alone. Words are runs of letters,
/// digits, `_`, and `'`/`.`/`:` between letters (Unicode word boundaries, simplified).
fn title_words(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut cased = false;
    for (i, &c) in chars.iter().enumerate() {
        let word_char = c.is_alphanumeric() || c == '_';
        let joiner = matches!(c, '\'' | '.' | ':' | '\u{2019}')
            && in_word
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if !(word_char || joiner) {
            cased = false;
        }
        if word_char && !cased && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            cased = true;
        } else {
            out.push(c);
        }
        in_word = word_char || joiner;
    }
    out
}

/// Go's deprecated `strings.Title`: a letter after a separator is title-cased. Separators are
/// ASCII characters other than letters, digits and `_`, and Unicode white space.
fn strings_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous = ' ';
    for c in s.chars() {
        let separator = if c.is_ascii() || previous.is_ascii() {
            !(previous.is_ascii_alphanumeric() || previous == '_')
        } else {
            previous.is_whitespace() || !(previous.is_alphanumeric())
        };
        if separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// goutils' `SwapCase`: upper to lower, title and lower to upper after white space.
fn swap_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut whitespace = true;
    for c in s.chars() {
        if c.is_uppercase() {
            out.extend(c.to_lowercase());
            whitespace = false;
        } else if c.is_lowercase() {
            if whitespace {
                out.extend(c.to_uppercase());
                whitespace = false;
            } else {
                out.extend(c.to_uppercase());
            }
        } else {
            whitespace = c.is_whitespace();
            out.push(c);
        }
    }
    out
}

/// consul-template's `indent`: `spaces` spaces before every non-empty line.
fn indent_lines(spaces: usize, s: &str) -> String {
    let prefix = " ".repeat(spaces);
    let mut out = String::with_capacity(s.len());
    let mut at_line_start = true;
    for c in s.chars() {
        if at_line_start && c != '\n' {
            out.push_str(&prefix);
        }
        out.push(c);
        at_line_start = c == '\n';
    }
    out
}

/// Sprig's `indent`: the pad before the text and after every newline.
fn sprig_indent(spaces: i64, s: &str) -> String {
    let pad = " ".repeat(spaces.max(0) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// goutils' `Abbreviate`/`AbbreviateFull` (byte offsets, as Go's).
fn abbreviate(s: &str, offset: i64, max_width: i64) -> Result<String, String> {
    utf8(
        "sprig_abbrev",
        abbreviate_bytes(s.as_bytes(), offset, max_width),
    )
}

fn abbreviate_bytes(bytes: &[u8], offset: i64, max_width: i64) -> Vec<u8> {
    const MARKER: &[u8] = b"...";
    let len = bytes.len() as i64;
    if max_width < 4 || len <= max_width {
        return bytes.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    if offset <= 4 {
        return [&bytes[..(max_width - 3) as usize], MARKER].concat();
    }
    if max_width < 7 {
        return bytes.to_vec();
    }
    if offset + max_width - 3 < len {
        let rest = abbreviate_bytes(&bytes[offset as usize..], 0, max_width - 3);
        return [MARKER, &rest].concat();
    }
    [MARKER, &bytes[(len - (max_width - 3)) as usize..]].concat()
}

/// goutils' `WrapCustom`: break lines longer than `width` at spaces (or anywhere with
/// `long_words`), joining with `newline`.
fn wrap(s: &str, width: i64, newline: &str, long_words: bool) -> Result<String, String> {
    let width = width.max(1) as usize;
    let bytes = s.as_bytes();
    let len = bytes.len();
    let mut offset = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(len + 32);
    while len - offset > width {
        if bytes[offset] == b' ' {
            offset += 1;
            continue;
        }
        let window = &bytes[offset..=offset + width];
        let space = window.iter().rposition(|b| *b == b' ');
        if let Some(space) = space.filter(|p| *p > 0) {
            out.extend_from_slice(&bytes[offset..offset + space]);
            out.extend_from_slice(newline.as_bytes());
            offset += space + 1;
        } else if long_words {
            out.extend_from_slice(&bytes[offset..offset + width]);
            out.extend_from_slice(newline.as_bytes());
            offset += width;
        } else {
            match bytes[offset + width..].iter().position(|b| *b == b' ') {
                Some(p) => {
                    let end = offset + width + p;
                    out.extend_from_slice(&bytes[offset..end]);
                    out.extend_from_slice(newline.as_bytes());
                    offset = end + 1;
                }
                None => {
                    out.extend_from_slice(&bytes[offset..]);
                    offset = len;
                }
            }
        }
    }
    out.extend_from_slice(&bytes[offset..]);
    utf8("sprig_wrap", out)
}

/// Sprig's `seq`.
fn seq(params: &[i64]) -> String {
    let (start, end, step) = match *params {
        [] => return String::new(),
        [end] => {
            let inc = if end < 1 { -1 } else { 1 };
            (1, end.saturating_add(inc), inc)
        }
        [start, end] => {
            let inc = if end < start { -1 } else { 1 };
            (start, end.saturating_add(inc), inc)
        }
        [start, step, end] => {
            let mut inc = 1;
            if end < start {
                inc = -1;
                if step > 0 {
                    return String::new();
                }
            }
            (start, end.saturating_add(inc), step)
        }
        _ => return String::new(),
    };
    let items: Vec<String> = super::math::until_step(start, end, step)
        .iter()
        .map(i64::to_string)
        .collect();
    items.join(" ")
}

/// A regex in Go's RE2 syntax, compiled (see COMPATIBILITY.md for the differences). The
/// common syntax errors are worded as Go's `regexp` words them.
pub(super) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| go_regex_error(pattern, &err))
}

fn go_regex_error(pattern: &str, err: &regex::Error) -> String {
    use regex_syntax::ast::ErrorKind;
    let parsed = regex_syntax::ast::parse::Parser::new().parse(pattern);
    let Err(syntax) = parsed else {
        return format!("error parsing regexp: {err}");
    };
    let from = |offset: usize| pattern.get(offset..).unwrap_or(pattern);
    let span = syntax.span();
    let (code, expr) = match syntax.kind() {
        ErrorKind::GroupUnclosed => ("missing closing )", pattern),
        ErrorKind::GroupUnopened => ("unexpected )", pattern),
        ErrorKind::ClassUnclosed => ("missing closing ]", from(span.start.offset)),
        ErrorKind::RepetitionMissing => (
            "missing argument to repetition operator",
            from(span.start.offset)
                .get(..1)
                .filter(|_| span.start.offset == span.end.offset)
                .or_else(|| pattern.get(span.start.offset..span.end.offset))
                .unwrap_or(pattern),
        ),
        ErrorKind::EscapeUnrecognized | ErrorKind::EscapeUnexpectedEof => (
            "invalid escape sequence",
            pattern
                .get(span.start.offset..span.end.offset)
                .unwrap_or(pattern),
        ),
        _ => {
            let message = syntax.to_string();
            let last = message
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            return format!("error parsing regexp: {last}: `{pattern}`");
        }
    };
    format!("error parsing regexp: {code}: `{expr}`")
}

/// xstrings v1.4.0's word kinds (the version OpenBao Agent 2.7.2 links).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' connector: `-`, `_` or white space.
fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// xstrings' `isAlphabet`: a letter, but not a CJK ideograph.
fn is_alphabet(c: char) -> bool {
    c.is_alphabetic()
        && !matches!(c, '\u{4E00}'..='\u{9FCC}' | '\u{3400}'..='\u{4D85}' | '\u{20000}'..='\u{2B81D}')
}

/// Go's `unicode.IsPunct` (category P): ASCII exactly, and the common Unicode punctuation
/// blocks (General Punctuation, CJK punctuation).
fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation()
            && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
    }
    matches!(c,
        '\u{A1}' | '\u{A7}' | '\u{AB}' | '\u{B6}' | '\u{B7}' | '\u{BB}' | '\u{BF}'
        | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{2043}' | '\u{2045}'..='\u{2051}'
        | '\u{2053}'..='\u{205E}' | '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}'
        | '\u{3014}'..='\u{301F}' | '\u{FF01}'..='\u{FF03}' | '\u{FF05}'..='\u{FF0A}'
        | '\u{FF0C}'..='\u{FF0F}' | '\u{FF1A}' | '\u{FF1B}' | '\u{FF1F}' | '\u{FF20}')
}

/// Go's `unicode.ToLower` / `ToUpper` (one rune to one rune).
fn lower_rune(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn upper_rune(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// xstrings' `nextWord`: the kind of the word at the start of `s`, the word, and the rest.
fn next_word(s: &str) -> (Word, &str, &str) {
    let Some(first) = s.chars().next() else {
        return (Word::Invalid, "", "");
    };
    let mut offset = first.len_utf8();
    // Extends the word while `keep` holds; returns the first rune not kept.
    let extend = |offset: &mut usize, keep: &dyn Fn(char) -> bool| -> Option<char> {
        for c in s[*offset..].chars() {
            if !keep(c) {
                return Some(c);
            }
            *offset += c.len_utf8();
        }
        None
    };
    let lower_letter = |c: char| is_alphabet(c) && !c.is_uppercase();
    let kind = if is_connector(first) {
        extend(&mut offset, &is_connector);
        Word::Connector
    } else if is_punct(first) {
        extend(&mut offset, &is_punct);
        Word::Punct
    } else if first.is_uppercase() {
        if let Some(second) = s[offset..].chars().next() {
            if second.is_uppercase() {
                let mut prev = second.len_utf8();
                offset += prev;
                let mut stop = None;
                for c in s[offset..].chars() {
                    if !c.is_uppercase() {
                        stop = Some(c);
                        break;
                    }
                    prev = c.len_utf8();
                    offset += prev;
                }
                // "HTTPStatus": the last capital starts the next word.
                if stop.is_some_and(is_alphabet) {
                    offset -= prev;
                }
            } else if is_alphabet(second) {
                offset += second.len_utf8();
                extend(&mut offset, &lower_letter);
            }
        }
        Word::Upper
    } else if is_alphabet(first) {
        extend(&mut offset, &lower_letter);
        Word::Alphabet
    } else if first.is_numeric() {
        extend(&mut offset, &char::is_numeric);
        Word::Number
    } else {
        extend(&mut offset, &|c: char| {
            !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c))
        });
        Word::Other
    };
    (kind, &s[..offset], &s[offset..])
}

/// xstrings' `toLower`: capitals and connectors of a word rewritten.
fn push_lower(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::Upper && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            out.push(connector);
        } else if c.is_uppercase() {
            out.push(lower_rune(c));
        } else {
            out.push(c);
        }
    }
}

/// xstrings' `ToSnakeCase` (`_`) and `ToKebabCase` (`-`).
pub(super) fn words_to_lower(s: &str, connector: char) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let (mut kind, mut word, mut rest) = next_word(s);
    while !rest.is_empty() {
        if kind != Word::Connector {
            push_lower(&mut out, kind, word, connector);
        }
        let (prev, last) = (kind, word);
        (kind, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while matches!(kind, Word::Alphabet | Word::Number) {
                    push_lower(&mut out, kind, word, connector);
                    (kind, word, rest) = next_word(rest);
                }
                if !matches!(kind, Word::Invalid | Word::Punct | Word::Connector) {
                    out.push(connector);
                }
            }
            Word::Connector => push_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ => {
                if kind != Word::Number {
                    if !matches!(kind, Word::Connector | Word::Punct) {
                        out.push(connector);
                    }
                    continue;
                }
                if rest.is_empty() {
                    continue;
                }
                let number = word;
                (kind, word, rest) = next_word(rest);
                // "Bld4Floor": the number belongs to the word before.
                if kind != Word::Alphabet {
                    push_lower(&mut out, Word::Number, number, connector);
                    if !matches!(kind, Word::Connector | Word::Punct) {
                        out.push(connector);
                    }
                    continue;
                }
                // "HTTP2xx": the number starts the next word.
                out.push(connector);
                push_lower(&mut out, Word::Number, number, connector);
                while matches!(kind, Word::Alphabet | Word::Number) {
                    push_lower(&mut out, kind, word, connector);
                    (kind, word, rest) = next_word(rest);
                }
                if !matches!(kind, Word::Invalid | Word::Connector | Word::Punct) {
                    out.push(connector);
                }
            }
        }
    }
    push_lower(&mut out, kind, word, connector);
    out
}

/// xstrings' `ToCamelCase`: connectors dropped and the next rune capitalised; a leading
/// connector run, and all but the last of a connector run, kept.
pub(super) fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut current = None;
    for c in chars.by_ref() {
        if !is_connector(c) {
            current = Some(upper_rune(c));
            break;
        }
        out.push(c);
    }
    let Some(mut r0) = current else {
        // Only connectors: xstrings writes the last one twice.
        if let Some(last) = s.chars().last() {
            out.push(last);
        }
        return out;
    };
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            r0 = upper_rune(r0);
        } else {
            out.push(r1);
        }
    }
    out.push(r0);
    out
}
