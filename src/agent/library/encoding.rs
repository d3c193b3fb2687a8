//! Encodings and hashes: base64 and base32, JSON and TOML as Go writes them, and digests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use super::{Args, Outcome, string, text};
use crate::template::Value;

/// consul-template's encoding functions.
pub(super) fn consul(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "base64Encode" => one(args, |s| text(STANDARD.encode(s))),
        "base64URLEncode" => one(args, |s| text(URL_SAFE.encode(s))),
        "base64Decode" => one(args, |s| {
            let bytes =
                decode_base64(&STANDARD, s).map_err(|err| format!("base64Decode: {err}"))?;
            text(super::strings::utf8("base64Decode", bytes)?)
        }),
        "base64URLDecode" => one(args, |s| {
            let bytes =
                decode_base64(&URL_SAFE, s).map_err(|err| format!("base64URLDecode: {err}"))?;
            text(super::strings::utf8("base64URLDecode", bytes)?)
        }),
        "parseJSON" => one(args, |s| {
            if s.is_empty() {
                return Ok(Value::Map(BTreeMap::new()));
            }
            parse_json(s)
        }),
        "parseYAML" => one(args, |s| {
            if s.is_empty() {
                return Ok(Value::Map(BTreeMap::new()));
            }
            super::yaml::parse(s)
        }),
        "toJSON" => any(args, |v| text(go_json(v, "", true))),
        "toJSONPretty" => any(args, |v| text(go_json(v, "  ", true))),
        "toUnescapedJSON" => any(args, |v| text(go_json(v, "", false))),
        "toUnescapedJSONPretty" => any(args, |v| text(go_json(v, "  ", false))),
        "toYAML" => any(args, |v| text(super::yaml::emit(v).trim().to_owned())),
        "toTOML" => any(args, |v| {
            toml(v).map(|s| Value::String(s.trim().to_owned()))
        }),
        "sha256Hex" => one(args, |s| {
            text(hex(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                s.as_bytes(),
            )
            .as_ref()))
        }),
        "md5sum" => one(args, |s| {
            use md5::Digest as _;
            text(hex(&md5::Md5::digest(s.as_bytes())))
        }),
        "hmacSHA256Hex" => (|| {
            let a = args.exactly(2)?;
            let (message, key) = (string(&a[0])?, string(&a[1])?);
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
            text(hex(aws_lc_rs::hmac::sign(&key, message.as_bytes()).as_ref()))
        })(),
        _ => return None,
    })
}

/// Sprig's encoding functions.
pub(super) fn sprig(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "b64enc" => one(args, |s| text(STANDARD.encode(s))),
        "b64dec" => one(args, |s| match decode_base64(&STANDARD, s) {
            Ok(bytes) => text(super::strings::utf8("sprig_b64dec", bytes)?),
            // Sprig returns the error's text as the result.
            Err(err) => text(err),
        }),
        "b32enc" => one(args, |s| text(base32_encode(s.as_bytes()))),
        "b32dec" => one(args, |s| {
            text(match base32_decode(s) {
                Ok(bytes) => super::strings::utf8("sprig_b32dec", bytes)?,
                Err(err) => err,
            })
        }),
        "sha1sum" => one(args, |s| {
            text(hex(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                s.as_bytes(),
            )
            .as_ref()))
        }),
        "sha256sum" => one(args, |s| {
            text(hex(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                s.as_bytes(),
            )
            .as_ref()))
        }),
        "adler32sum" => one(args, |s| text(adler32(s.as_bytes()).to_string())),
        "fromJson" => one(args, |s| Ok(parse_json(s).unwrap_or(Value::Nil))),
        "mustFromJson" => one(args, parse_json),
        "toJson" | "mustToJson" => any(args, |v| text(go_json(v, "", true))),
        "toPrettyJson" | "mustToPrettyJson" => any(args, |v| text(go_json(v, "  ", true))),
        "toRawJson" | "mustToRawJson" => any(args, |v| text(go_json(v, "", false))),
        _ => return None,
    })
}

fn one(args: &Args, f: impl FnOnce(&str) -> Outcome) -> Outcome {
    f(string(&args.exactly(1)?[0])?)
}

fn any(args: &Args, f: impl FnOnce(&Value) -> Outcome) -> Outcome {
    f(&args.exactly(1)?[0])
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Go's base64 decoding: strict padding; the error names the first bad byte's offset.
fn decode_base64(engine: &base64::engine::GeneralPurpose, s: &str) -> Result<Vec<u8>, String> {
    // Go skips \r and \n anywhere in the input.
    let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    match engine.decode(cleaned.as_bytes()) {
        Ok(bytes) => Ok(bytes),
        Err(err) => {
            let offset = match err {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                base64::DecodeError::InvalidLength(len) => len / 4 * 4,
                base64::DecodeError::InvalidPadding => cleaned.find('=').unwrap_or(cleaned.len()),
            };
            Err(format!("illegal base64 data at input byte {offset}"))
        }
    }
}

/// Standard base32 with padding (RFC 4648), as Go's `base32.StdEncoding`.
fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        let symbols = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < symbols {
                out.push(ALPHABET[((bits >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>, String> {
    let cleaned: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    let corrupt = |at: usize| format!("illegal base32 data at input byte {at}");
    if !cleaned.len().is_multiple_of(8) {
        return Err(corrupt(cleaned.len() / 8 * 8));
    }
    let mut out = Vec::new();
    for (n, block) in cleaned.chunks(8).enumerate() {
        let data_len = block.iter().position(|b| *b == b'=').unwrap_or(8);
        if block[data_len..].iter().any(|b| *b != b'=')
            || (data_len < 8 && n + 1 != cleaned.len() / 8)
            || !matches!(data_len, 2 | 4 | 5 | 7 | 8)
        {
            return Err(corrupt(n * 8 + data_len));
        }
        let mut bits = 0u64;
        for (i, b) in block[..data_len].iter().enumerate() {
            let value = match b {
                b'A'..=b'Z' => b - b'A',
                b'2'..=b'7' => b - b'2' + 26,
                _ => return Err(corrupt(n * 8 + i)),
            };
            bits = bits << 5 | u64::from(value);
        }
        bits <<= 5 * (8 - data_len);
        let bytes = data_len * 5 / 8;
        for i in 0..bytes {
            out.push((bits >> (32 - i * 8)) as u8);
        }
    }
    Ok(out)
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in bytes {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    b << 16 | a
}

/// Decodes JSON as Go's `json.Unmarshal` into `interface{}` does (every number a float64).
pub(super) fn parse_json(s: &str) -> Outcome {
    let json: serde_json::Value = serde_json::from_str(s).map_err(|err| json_error(s, &err))?;
    Ok(floats(&json))
}

fn floats(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::Array(items) => Value::List(items.iter().map(floats).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.iter().map(|(k, v)| (k.clone(), floats(v))).collect())
        }
        other => Value::from_json(other),
    }
}

/// Go's wording for the common JSON syntax errors.
fn json_error(s: &str, err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Eof => "unexpected end of JSON input".to_owned(),
        _ => {
            // The offending character, as Go names it.
            let offset = s
                .lines()
                .take(err.line().saturating_sub(1))
                .map(|l| l.len() + 1)
                .sum::<usize>()
                + err.column().saturating_sub(1);
            match s
                .get(offset.min(s.len())..)
                .and_then(|rest| rest.chars().next())
            {
                Some(c) => format!(
                    "invalid character {} looking for beginning of value",
                    go_char_quote(c)
                ),
                None => "unexpected end of JSON input".to_owned(),
            }
        }
    }
}

fn go_char_quote(c: char) -> String {
    match c {
        '\'' => "'\\''".to_owned(),
        '"' => "'\"'".to_owned(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

/// JSON as Go's `encoding/json` writes it: map keys sorted, floats without a needless `.0`,
/// `<`, `>`, `&` escaped when `escape_html`, `indent` per level when not empty.
pub(super) fn go_json(value: &Value, indent: &str, escape_html: bool) -> String {
    let mut out = String::new();
    write_json(&mut out, value, indent, 0, escape_html);
    out
}

fn write_json(out: &mut String, value: &Value, indent: &str, depth: usize, html: bool) {
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&crate::template::go_json_float(*f)),
        // encoding/json writes a json.Number as it is.
        Value::JsonNumber(n) => out.push_str(n),
        Value::String(s) => json_string(out, s, html),
        Value::List(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_json(out, item, indent, depth + 1, html);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Map(map) => {
            let entries = map.iter().map(|(k, v)| (k.as_str(), v));
            write_object(out, entries, indent, depth, html);
        }
        // Go marshals a struct's fields in declaration order, under their names.
        Value::Struct(s) => {
            let entries = s.fields.iter().map(|(k, v)| (*k, v));
            write_object(out, entries, indent, depth, html);
        }
        Value::TypedNil(_) => out.push_str("null"),
    }
}

fn write_object<'a>(
    out: &mut String,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a Value)>,
    indent: &str,
    depth: usize,
    html: bool,
) {
    if entries.len() == 0 {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (n, (key, item)) in entries.enumerate() {
        if n > 0 {
            out.push(',');
        }
        newline(out, indent, depth + 1);
        json_string(out, key, html);
        out.push(':');
        if !indent.is_empty() {
            out.push(' ');
        }
        write_json(out, item, indent, depth + 1, html);
    }
    newline(out, indent, depth);
    out.push('}');
}

/// Pretty JSON's line break and indentation (nothing when compact).
fn newline(out: &mut String, indent: &str, depth: usize) {
    if !indent.is_empty() {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// TOML as BurntSushi/toml's encoder writes a `map[string]interface{}`: plain keys first,
/// then tables (`[a]`, subtables indented two spaces more) and arrays of tables.
fn toml(value: &Value) -> Result<String, String> {
    let Value::Map(map) = value else {
        // Any other value is written alone, as a TOML value.
        let mut out = String::new();
        toml_value(&mut out, value)?;
        return Ok(out);
    };
    let mut out = String::new();
    toml_table(&mut out, map, &mut Vec::new())?;
    Ok(out)
}

fn is_table(value: &Value) -> bool {
    matches!(value, Value::Map(_))
}

fn is_table_array(value: &Value) -> bool {
    matches!(value, Value::List(items) if !items.is_empty() && items.iter().all(is_table))
}

fn toml_table(
    out: &mut String,
    map: &BTreeMap<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    let indent = "  ".repeat(path.len());
    for (key, value) in map {
        if is_table(value) || is_table_array(value) || *value == Value::Nil {
            continue;
        }
        let _ = write!(out, "{indent}{} = ", toml_key(key));
        toml_value(out, value)?;
        out.push('\n');
    }
    for (key, value) in map {
        match value {
            Value::Map(sub) => {
                path.push(key.clone());
                let name: Vec<String> = path.iter().map(|k| toml_key(k)).collect();
                let header_indent = "  ".repeat(path.len() - 1);
                // A blank line before top-level tables only.
                let blank = if path.len() == 1 { "\n" } else { "" };
                let _ = writeln!(out, "{blank}{header_indent}[{}]", name.join("."));
                toml_table(out, sub, path)?;
                path.pop();
            }
            Value::List(items) if is_table_array(value) => {
                path.push(key.clone());
                let name: Vec<String> = path.iter().map(|k| toml_key(k)).collect();
                let header_indent = "  ".repeat(path.len() - 1);
                for item in items {
                    let Value::Map(sub) = item else { continue };
                    let _ = write!(out, "\n{header_indent}[[{}]]\n", name.join("."));
                    toml_table(out, sub, path)?;
                }
                path.pop();
            }
            _ => {}
        }
    }
    Ok(())
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        toml_string(key)
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_value(out: &mut String, value: &Value) -> Result<(), String> {
    match value {
        Value::Nil => return Err("toTOML: toml: cannot encode a nil value".to_owned()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&toml_float(*f)),
        // BurntSushi's encoder writes a json.Number as the int64 it parses as, else as the
        // float64.
        Value::JsonNumber(n) => match (n.parse::<i64>(), n.parse::<f64>()) {
            (Ok(i), _) => {
                let _ = write!(out, "{i}");
            }
            (_, Ok(f)) => out.push_str(&toml_float(f)),
            _ => out.push_str(n),
        },
        Value::String(s) => out.push_str(&toml_string(s)),
        Value::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                toml_value(out, item)?;
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (n, (key, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{} = ", toml_key(key));
                toml_value(out, item)?;
            }
            out.push('}');
        }
        Value::Struct(s) => {
            return Err(format!(
                "toTOML: toml: cannot encode a {} inside a table",
                s.type_name
            ));
        }
        Value::TypedNil(_) => return Err("toTOML: toml: cannot encode a nil value".to_owned()),
    }
    Ok(())
}

/// BurntSushi's float: `nan`, `inf`, else `strconv.FormatFloat(f, 'f', -1, 64)` (the shortest
/// digits, never an exponent: `10485760.0`, `0.00001`) with `.0` when it has no point.
fn toml_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `Display` of an `f64` is Go's `'f'` with precision -1: the shortest digits that
    // read back as `f`, written out in full.
    let s = f.to_string();
    if s.contains('.') { s } else { format!("{s}.0") }
}
