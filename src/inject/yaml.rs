//! Kubernetes YAML as kubectl reads it: YAML 1.1 scalars (go-yaml v2: `0644` is octal 420,
//! `yes`/`on`/`off` are booleans, `1_000` is 1000), anchors, aliases and `<<` merge keys; and
//! YAML written so that kubectl reads back exactly the values given (every string that could
//! read as something else is quoted).
//!
//! A stream is cut into documents at `---` lines so that a document the injection leaves alone
//! is written back byte for byte, comments included.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

/// One document of a stream: the separator line that opened it (empty for the first, when
/// the stream does not start with one) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub separator: String,
    pub body: String,
    /// 1-based line of the body's first line in the stream.
    pub first_line: usize,
}

/// Whether `line` is a document separator (`---` alone or followed by a space).
fn separator_rest(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---")?;
    let trimmed = rest.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() || trimmed.starts_with([' ', '\t']) {
        Some(rest)
    } else {
        None
    }
}

/// Cuts `text` into documents.
pub(crate) fn split(text: &str) -> Vec<Chunk> {
    let mut chunks = vec![Chunk {
        separator: String::new(),
        body: String::new(),
        first_line: 1,
    }];
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if let Some(rest) = separator_rest(line) {
            let content = rest.trim_start_matches([' ', '\t']);
            let inline = !content.trim().is_empty() && !content.trim_start().starts_with('#');
            let (separator, body) = if inline {
                // `--- {a: 1}`: the content belongs to the document.
                ("---\n".to_string(), content.to_string())
            } else {
                (line.to_string(), String::new())
            };
            // Directives (`%YAML 1.1`) belong to the document their `---` opens.
            let mut separator = separator;
            if chunks.last().is_some_and(|last| {
                let mut lines = last.body.lines().map(str::trim).filter(|l| !l.is_empty());
                lines.clone().any(|l| l.starts_with('%'))
                    && lines.all(|l| l.starts_with('%') || l.starts_with('#'))
            }) {
                let last = chunks.pop().expect("checked above");
                separator = format!("{}{}{separator}", last.separator, last.body);
            }
            chunks.push(Chunk {
                separator,
                body,
                first_line: index + if inline { 1 } else { 2 },
            });
        } else if let Some(last) = chunks.last_mut() {
            last.body.push_str(line);
        }
    }
    chunks
}

/// Reads one document with YAML 1.1 rules; `None` when it holds nothing (only comments).
pub(crate) fn load(text: &str) -> Result<Option<Value>, String> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        anchors: Vec::new(),
    };
    let mut document = None;
    loop {
        let (event, mark) = loader.next()?;
        match event {
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            other => {
                if document.is_some() {
                    return Err(format!(
                        "line {}: more than one document where one was expected",
                        mark.line()
                    ));
                }
                document = Some(loader.node(other)?);
            }
        }
    }
    Ok(document)
}

struct Loader<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: Vec<(usize, Value)>,
}

impl Loader<'_> {
    fn next(&mut self) -> Result<(Event, yaml_rust2::scanner::Marker), String> {
        self.parser.next_token().map_err(|err| err.to_string())
    }

    fn remember(&mut self, anchor: usize, value: &Value) {
        if anchor != 0 {
            self.anchors.push((anchor, value.clone()));
        }
    }

    fn node(&mut self, event: Event) -> Result<Value, String> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_ref())?;
                self.remember(anchor, &value);
                Ok(value)
            }
            Event::Alias(anchor) => self
                .anchors
                .iter()
                .rev()
                .find(|(id, _)| *id == anchor)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| "an alias to an unknown anchor".to_string()),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, _) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(event)?);
                }
                let value = Value::Array(items);
                self.remember(anchor, &value);
                Ok(value)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                let mut merged: Vec<Map<String, Value>> = Vec::new();
                loop {
                    let (event, mark) = self.next()?;
                    if event == Event::MappingEnd {
                        break;
                    }
                    let merge_key = matches!(
                        &event,
                        Event::Scalar(text, TScalarStyle::Plain, _, None) if text == "<<"
                    );
                    let key = self.node(event)?;
                    let (value_event, _) = self.next()?;
                    let value = self.node(value_event)?;
                    if merge_key {
                        match value {
                            Value::Object(m) => merged.push(m),
                            Value::Array(items) => {
                                for item in items {
                                    match item {
                                        Value::Object(m) => merged.push(m),
                                        _ => {
                                            return Err(format!(
                                                "line {}: `<<` merges mappings only",
                                                mark.line()
                                            ));
                                        }
                                    }
                                }
                            }
                            _ => {
                                return Err(format!(
                                    "line {}: `<<` merges mappings only",
                                    mark.line()
                                ));
                            }
                        }
                        continue;
                    }
                    let key = key_text(&key).ok_or_else(|| {
                        format!("line {}: a mapping key must be a scalar", mark.line())
                    })?;
                    if map.contains_key(&key) {
                        return Err(format!(
                            "line {}: mapping key {key:?} already defined",
                            mark.line()
                        ));
                    }
                    map.insert(key, value);
                }
                for source in merged {
                    for (key, value) in source {
                        map.entry(key).or_insert(value);
                    }
                }
                let value = Value::Object(map);
                self.remember(anchor, &value);
                Ok(value)
            }
            other => Err(format!("unexpected YAML event {other:?}")),
        }
    }
}

/// A key as the string Kubernetes' YAML-to-JSON conversion makes of it.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

/// A scalar with YAML 1.1 resolution for plain ones.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag
        && (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:")
    {
        return match tag.suffix.as_str() {
            "str" | "binary" | "timestamp" => Ok(Value::String(text.to_string())),
            "null" => Ok(Value::Null),
            "bool" => resolve_plain(text)
                .filter(Value::is_boolean)
                .ok_or_else(|| format!("{text:?} is not a !!bool")),
            "int" => resolve_plain(text)
                .filter(|v| v.is_i64() || v.is_u64())
                .ok_or_else(|| format!("{text:?} is not an !!int")),
            "float" => resolve_plain(text)
                .and_then(|v| v.as_f64())
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("{text:?} is not a !!float")),
            other => Err(format!("unsupported tag !!{other}")),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    Ok(resolve_plain(text).unwrap_or_else(|| Value::String(text.to_string())))
}

/// What go-yaml v2 reads a plain scalar as, when not a string.
pub(crate) fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            // Not representable in JSON; Kubernetes refuses it anyway.
            return Some(Value::String(text.to_string()));
        }
        _ => {}
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(int) = parse_go_int(&plain) {
        return Some(int);
    }
    if is_go_yaml_float(&plain)
        && let Some(n) = plain.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Some(Value::Number(n));
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)` (and `ParseUint` for larger positives).
fn parse_go_int(s: &str) -> Option<Value> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let (radix, body) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude)
            .ok()
            .map(|m| -m)
            .or((magnitude == 1u64 << 63).then_some(i64::MIN))?;
        Some(Value::Number(value.into()))
    } else {
        Some(Value::Number(magnitude.into()))
    }
}

/// go-yaml v2's float pattern: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_go_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    };
    mantissa_ok && exponent_ok
}

/// Writes `value` as a block YAML document (ending in a newline).
pub(crate) fn emit(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => emit_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => emit_list(&mut out, items, 0),
        other => {
            out.push_str(&scalar_text(other));
            out.push('\n');
        }
    }
    out
}

/// Keys in a readable order: the usual Kubernetes leaders first, then by name.
fn ordered(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    const FIRST: &[&str] = &["apiVersion", "kind", "metadata", "name"];
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(key, _)| {
        (
            FIRST.iter().position(|f| f == key).unwrap_or(FIRST.len()),
            (*key).clone(),
        )
    });
    entries
}

fn emit_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (key, value) in ordered(map) {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string_text(key));
        out.push(':');
        emit_child(out, value, indent);
    }
}

fn emit_child(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            emit_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            emit_list(out, items, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar_text(other));
            out.push('\n');
        }
    }
}

fn emit_list(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        let mut nested = String::new();
        match item {
            Value::Object(map) if !map.is_empty() => emit_map(&mut nested, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => emit_list(&mut nested, inner, indent + 2),
            other => {
                nested.push_str(&" ".repeat(indent + 2));
                nested.push_str(&scalar_text(other));
                nested.push('\n');
            }
        }
        // The first line's indentation becomes the dash.
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        out.push_str(&nested[indent + 2..]);
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let text = n.to_string();
            if !n.is_f64() {
                return text;
            }
            // A float both YAML 1.1 readers take for one (PyYAML wants a dot, and a sign in
            // the exponent): `1.0`, `1.0e+20`, `1.5e-7`.
            let (mantissa, exponent) = match text.split_once(['e', 'E']) {
                Some((m, e)) => (m.to_string(), Some(e.to_string())),
                None => (text.clone(), None),
            };
            let mantissa = if mantissa.contains('.') {
                mantissa
            } else {
                format!("{mantissa}.0")
            };
            match exponent {
                None => mantissa,
                Some(e) if e.starts_with(['-', '+']) => format!("{mantissa}e{e}"),
                Some(e) => format!("{mantissa}e+{e}"),
            }
        }
        Value::String(s) => string_text(s),
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
    }
}

/// A string plain when nothing can misread it (YAML 1.1 or 1.2), else double-quoted.
fn string_text(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && resolve_plain(s).is_none();
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{emit, load, split};

    #[test]
    fn plain_scalars_read_as_kubectl_reads_them() {
        let value = load(
            "mode: 0644\nhex: 0x1F\nunder: 1_000\nyes: yes\noff: Off\nquoted: \"0644\"\n\
             single: 'yes'\nnull1: ~\nfloat: 1.5\nneg: -12\nstr: hello\nempty:\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            value,
            json!({
                "mode": 420, "hex": 31, "under": 1000, "true": true, "false": false,
                "quoted": "0644", "single": "yes", "null1": null, "float": 1.5, "neg": -12,
                "str": "hello", "empty": null,
            })
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let value = load("base: &b {a: 1, b: 2}\nref: *b\nmerged:\n  <<: *b\n  b: 3\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            value,
            json!({"base": {"a": 1, "b": 2}, "ref": {"a": 1, "b": 2}, "merged": {"a": 1, "b": 3}})
        );
    }

    #[test]
    fn emitted_yaml_reads_back_the_same() {
        let value = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "annotations": {"a": "yes", "b": "0644", "c": "on", "d": "", "e": "1.5", "f": "line\nbreak", "g": "null"}},
            "spec": {"containers": [{"name": "c", "args": ["a", "b: c", "- d", "#e"], "ports": [{"containerPort": 80}]}], "list": [[1, 2], []], "obj": {}, "n": null, "t": true, "fl": 2.0},
        });
        let text = emit(&value);
        assert_eq!(load(&text).unwrap().unwrap(), value, "{text}");
    }

    #[test]
    fn streams_split_at_separator_lines() {
        let chunks = split("a: 1\n---\n# c\nb: 2\n--- \nc: 3\n---x: no\n");
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].body, "a: 1\n");
        assert_eq!(chunks[1].separator, "---\n");
        assert_eq!(chunks[1].body, "# c\nb: 2\n");
        assert_eq!(chunks[2].body, "c: 3\n---x: no\n");
        assert_eq!(chunks[2].first_line, 6);
        let directive = split("%YAML 1.1\n---\nb: 2\n");
        assert_eq!(directive.len(), 1);
        assert_eq!(directive[0].separator, "%YAML 1.1\n---\n");
        assert_eq!(directive[0].body, "b: 2\n");
    }

    mod roundtrip {
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        use super::super::{emit, load};

        /// Strings that stress quoting: YAML 1.1 keywords, numbers in every base, indicators,
        /// whitespace at the ends, line breaks, non-ASCII.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("yes".to_string()),
                Just("Off".to_string()),
                Just("~".to_string()),
                Just("0644".to_string()),
                Just("0x1F".to_string()),
                Just("1_000".to_string()),
                Just("1e3".to_string()),
                Just(".inf".to_string()),
                Just("<<".to_string()),
                Just("".to_string()),
                "[a-z0-9 :#'\"\\-?*&!|>%@`{}\\[\\],.\n\té]{0,12}",
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| Value::Number(n.into())),
                (-1.0e6f64..1.0e6).prop_map(|f| serde_json::json!(f)),
                prop_oneof![Just(1e-7f64), Just(1e20f64), Just(-2.5e-9f64)]
                    .prop_map(|f| serde_json::json!(f)),
                text().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((text(), inner), 0..4).prop_map(|entries| Value::Object(
                        entries.into_iter().collect::<Map<_, _>>()
                    )),
                ]
            })
        }

        proptest! {
            #[test]
            fn what_is_written_reads_back_the_same(value in value()) {
                let text = emit(&value);
                prop_assert_eq!(load(&text).unwrap().unwrap_or(Value::Null), value, "{}", text);
            }
        }
    }
}
