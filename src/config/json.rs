//! The JSON provider: a `--config` file ending in `.json` is read as JSON, as Vault Agent reads
//! it (HCL1 parses JSON too; the Vault Agent Injector writes its agent config that way).
//!
//! JSON lets a block be an object or a list of objects, and a labelled block be
//! `{"kubernetes": {...}}`; `config::shape` brings these to the one form the HCL reader gives,
//! so every later check is shared. Syntax errors carry serde_json's line and column; refused
//! stanzas are reported at the line of their key, once per block. This module must not know
//! what keys mean beyond that.

use std::path::Path;

use figment::value::{Dict, Value};

use super::error::ConfigError;
use super::hcl::HclFile;

/// Keys whose numbers are file modes: JSON has no octal literal, so a number there is refused
/// rather than read as the decimal HCL1 would take it for.
const MODE_KEYS: &[&str] = &["perms", "mode"];

/// `line:column` of keys by path.
pub(crate) type KeyPlaces = std::collections::BTreeMap<String, (usize, usize)>;

/// `line:column` of each key of (syntactically valid) JSON `text`, by its path as
/// `error::render_path` writes it (`vault.address`, `template[1].perms`): where an error about
/// a value points.
pub(crate) fn key_places(text: &str) -> KeyPlaces {
    enum Frame {
        Object {
            key: Option<String>,
            expecting_key: bool,
        },
        Array {
            index: usize,
        },
    }
    fn path(stack: &[Frame]) -> String {
        let mut out = String::new();
        for frame in stack {
            match frame {
                Frame::Object { key: Some(key), .. } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Frame::Object { key: None, .. } => {}
                Frame::Array { index } => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
    let mut places = std::collections::BTreeMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let (mut line, mut column) = (1, 0);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        column += 1;
        match c {
            '\n' => {
                line += 1;
                column = 0;
            }
            '{' => stack.push(Frame::Object {
                key: None,
                expecting_key: true,
            }),
            '[' => stack.push(Frame::Array { index: 0 }),
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Object { expecting_key, .. }) => *expecting_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            '"' => {
                let (start_line, start_column) = (line, column);
                let mut string = String::new();
                let mut escaped = false;
                for c in chars.by_ref() {
                    column += 1;
                    if escaped {
                        escaped = false;
                        string.push(c);
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    } else {
                        string.push(c);
                    }
                }
                if let Some(Frame::Object { key, expecting_key }) = stack.last_mut()
                    && *expecting_key
                {
                    *key = Some(string);
                    *expecting_key = false;
                    places.insert(path(&stack), (start_line, start_column));
                }
            }
            _ => {}
        }
    }
    places
}

/// Converts JSON `text` that was read from `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<HclFile, ConfigError> {
    let file = path.display().to_string();
    let syntax = |err: serde_json::Error| ConfigError::Syntax {
        file: file.clone(),
        line: err.line(),
        column: err.column(),
        message: json_message(&err),
    };
    // A key given twice in one object would silently lose one of the two values.
    serde_json::from_str::<NoDuplicateKeys>(text).map_err(syntax)?;
    let value: Value = serde_json::from_str(text).map_err(syntax)?;
    let Value::Dict(_, data) = value else {
        return Err(ConfigError::Syntax {
            file,
            line: 1,
            column: 1,
            message: "a Vault Agent JSON config is one object, `{ ... }`".to_string(),
        });
    };
    check_modes(&file, &data, &mut Vec::new())?;
    let data = super::shape::normalize(&file, data)?;
    Ok(HclFile::from_parts(path, data, key_places(text)))
}

/// Any JSON value, refused when an object has a key twice (serde_json keeps the last).
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<NoDuplicateKeys, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<NoDuplicateKeys, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key `{key}` is set more than once in this object"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

/// serde_json's message without its own " at line L column C" (the prefix has them).
fn json_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn check_modes(file: &str, dict: &Dict, path: &mut Vec<String>) -> Result<(), ConfigError> {
    for (key, value) in dict {
        path.push(key.clone());
        match value {
            // A JSON number is decimal: 420 is 0644 as Vault Agent reads it, taken as such when
            // it is a usual mode (`units::decimal_mode_as_meant`).
            Value::Num(_, number)
                if MODE_KEYS.contains(&key.as_str())
                    && !number
                        .to_u128()
                        .and_then(|n| u64::try_from(n).ok())
                        .is_some_and(crate::units::decimal_mode_as_meant) =>
            {
                return Err(ConfigError::Invalid {
                    origin: file.to_string(),
                    path: super::error::render_path(path),
                    message: "a file mode in JSON is a string of octal digits, such as \
                              \"0644\", or the mode's decimal value (420 for 0644); a number \
                              such as 644 would be applied as 0o1204"
                        .to_string(),
                });
            }
            Value::Dict(_, inner) => check_modes(file, inner, path)?,
            Value::Array(_, items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Dict(_, inner) = item {
                        path.push(index.to_string());
                        check_modes(file, inner, path)?;
                        path.pop();
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse(
            Path::new("a.json"),
            "{\n  \"vault\": {\n    \"address\" \"x\"\n  }\n}\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("a.json:3:"), "{err}");
    }

    #[test]
    fn a_key_given_twice_is_refused_where_it_is() {
        let err = parse(
            Path::new("a.json"),
            "{\n \"template\": {\"destination\": \"a\"},\n \"template\": {}\n}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("a.json:3:11: key `template` is set more than once"),
            "{err}"
        );
    }

    #[test]
    fn a_numeric_mode_is_refused() {
        let err = parse(Path::new("a.json"), r#"{"template": [{"perms": 644}]}"#).unwrap_err();
        assert!(err.to_string().contains("template[0].perms"), "{err}");
        // 0644 in decimal, as Vault Agent applies it.
        parse(Path::new("a.json"), r#"{"template": [{"perms": 420}]}"#).unwrap();
    }
}
