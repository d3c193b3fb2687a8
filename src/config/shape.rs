//! One shape for every way Vault Agent lets a block be written.
//!
//! HCL1, which Vault reads its files with, accepts the same block in several forms: `vault { }`,
//! `vault = { }`, `"vault" = { }`, and in JSON `"vault": { }` or `"vault": [{ }]` (a list of one
//! object, which is how HCL1 itself prints blocks as JSON and how some generators write them).
//! Labelled blocks may be `method "kubernetes" { }`, `method { type = "kubernetes" }` or in JSON
//! `"method": {"kubernetes": { }}`. This module rewrites whatever the HCL or JSON reader
//! produced into one form — single blocks as objects, repeatable blocks (`template`, `sink`) as
//! lists, typed blocks with a `type` key — so `config::raw` sees one shape. It moves values,
//! never judges them; a block given twice where one is allowed is the only error it reports.

use figment::value::{Dict, Value};

use super::error::{ConfigError, render_path};
use super::keys::fields;
use super::raw;

/// Blocks of which a file may have only one, with the blocks nested in them.
const SINGLE_TOP_LEVEL: &[&str] = &[
    "vault",
    "auto_auth",
    "template_config",
    "telemetry",
    "proxy",
    "app",
    "pki_sidecar",
    "cache",
    "api_proxy",
    "exec",
];

/// Rewrites one file's data into the one shape `config::raw` reads.
pub(crate) fn normalize(origin: &str, mut data: Dict) -> Result<Dict, ConfigError> {
    let mut shaper = Shaper { origin };
    for key in SINGLE_TOP_LEVEL {
        shaper.single(&mut data, key, &[])?;
    }
    if let Some(Value::Dict(_, vault)) = data.get_mut("vault") {
        shaper.single(vault, "retry", &["vault"])?;
    }
    if let Some(Value::Dict(_, auto_auth)) = data.get_mut("auto_auth") {
        shaper.single(auto_auth, "method", &["auto_auth"])?;
        if let Some(Value::Dict(_, method)) = auto_auth.get_mut("method") {
            shaper.typed(method, fields::<raw::RawMethod>());
            shaper.single(method, "config", &["auto_auth", "method"])?;
        }
        shaper.list(auto_auth, "sink");
        if let Some(Value::Array(_, sinks)) = auto_auth.get_mut("sink") {
            for (index, sink) in sinks.iter_mut().enumerate() {
                if let Value::Dict(_, sink) = sink {
                    shaper.typed(sink, fields::<raw::RawSink>());
                    let index = index.to_string();
                    shaper.single(sink, "config", &["auto_auth", "sink", &index])?;
                }
            }
        }
    }
    shaper.list(&mut data, "listener");
    if let Some(Value::Array(_, listeners)) = data.get_mut("listener") {
        for (index, listener) in listeners.iter_mut().enumerate() {
            if let Value::Dict(_, listener) = listener {
                shaper.typed(
                    listener,
                    &[
                        "type",
                        "address",
                        "tls_disable",
                        "require_request_header",
                        "agent_api",
                    ],
                );
                shaper.single(listener, "agent_api", &["listener", &index.to_string()])?;
            }
        }
    }
    shaper.named(&mut data, "env_template")?;
    shaper.list(&mut data, "template");
    if let Some(Value::Array(_, templates)) = data.get_mut("template") {
        for template in templates.iter_mut() {
            if let Value::Dict(_, template) = template {
                // Vault Agent keeps the last of several `wait` or `exec` blocks.
                shaper.last(template, "wait");
                shaper.last(template, "exec");
            }
        }
    }
    Ok(data)
}

struct Shaper<'a> {
    origin: &'a str,
}

impl Shaper<'_> {
    /// `[{ ... }]` → `{ ... }`; two or more objects where one block is allowed is an error.
    fn single(&mut self, dict: &mut Dict, key: &str, parent: &[&str]) -> Result<(), ConfigError> {
        let Some(Value::Array(_, items)) = dict.get(key) else {
            return Ok(());
        };
        if !items.iter().all(|item| matches!(item, Value::Dict(..))) || items.is_empty() {
            return Ok(());
        }
        if items.len() > 1 {
            let mut path = parent.to_vec();
            path.push(key);
            return Err(ConfigError::Invalid {
                origin: self.origin.to_string(),
                path: render_path(&path),
                message: format!(
                    "block `{key}` is given {} times; Vault Agent reads one",
                    items.len()
                ),
            });
        }
        if let Some(Value::Array(_, mut items)) = dict.remove(key)
            && let Some(only) = items.pop()
        {
            dict.insert(key.to_string(), only);
        }
        Ok(())
    }

    /// `[{...}, {...}]` → the last object.
    fn last(&mut self, dict: &mut Dict, key: &str) {
        let Some(Value::Array(_, items)) = dict.get(key) else {
            return;
        };
        if items.is_empty() || !items.iter().all(|item| matches!(item, Value::Dict(..))) {
            return;
        }
        if let Some(Value::Array(_, mut items)) = dict.remove(key)
            && let Some(last) = items.pop()
        {
            dict.insert(key.to_string(), last);
        }
    }

    /// Named blocks (`env_template`): JSON's `[{"A": {...}}, {"B": {...}}]` → `{"A": {...},
    /// "B": {...}}`, and a name's `[{...}]` → `{...}`; a name given twice is an error.
    fn named(&mut self, dict: &mut Dict, key: &str) -> Result<(), ConfigError> {
        if let Some(Value::Array(_, items)) = dict.get(key)
            && items.iter().all(|item| matches!(item, Value::Dict(..)))
            && let Some(Value::Array(_, items)) = dict.remove(key)
        {
            let mut merged = Dict::new();
            for item in items {
                let Value::Dict(_, entries) = item else {
                    unreachable!("checked above")
                };
                for (name, body) in entries {
                    if merged.contains_key(&name) {
                        return Err(ConfigError::Invalid {
                            origin: self.origin.to_string(),
                            path: render_path(&[key, name.as_str()]),
                            message: format!("{key} \"{name}\" is given more than once"),
                        });
                    }
                    merged.insert(name, body);
                }
            }
            dict.insert(key.to_string(), Value::from(merged));
        }
        if let Some(Value::Dict(_, entries)) = dict.get_mut(key) {
            let names: Vec<String> = entries.keys().cloned().collect();
            for name in names {
                self.single(entries, &name, &[key])?;
            }
        }
        Ok(())
    }

    /// One object → a list of one; a list stays.
    fn list(&mut self, dict: &mut Dict, key: &str) {
        if matches!(dict.get(key), Some(Value::Dict(..)))
            && let Some(value) = dict.remove(key)
        {
            dict.insert(key.to_string(), Value::from(vec![value]));
        }
    }

    /// `{"kubernetes": { ... }}` (a labelled block in HCL1's JSON) → `{type = "kubernetes", ...}`.
    fn typed(&mut self, dict: &mut Dict, known: &[&str]) {
        if dict.len() != 1 || dict.contains_key("type") {
            return;
        }
        let Some((label, Value::Dict(..))) = dict.iter().next() else {
            return;
        };
        if known.contains(&label.as_str()) {
            return;
        }
        let label = label.clone();
        if let Some(Value::Dict(_, mut inner)) = dict.remove(&label) {
            // A list of one block inside the label (`"kubernetes": [{...}]`) has been handled
            // by the caller's `single`; here the label's value is the block itself.
            inner
                .entry("type".to_string())
                .or_insert_with(|| Value::from(label));
            *dict = inner;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(json: &str) -> Dict {
        let value: Value = serde_json::from_str(json).unwrap();
        match value {
            Value::Dict(_, d) => d,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn every_spelling_of_a_block_gives_one_shape() {
        let a = normalize(
            "t",
            dict(r#"{"auto_auth": [{"method": [{"type": "kubernetes", "config": [{"role": "r"}]}], "sink": {"type": "file"}}], "template": {"destination": "d"}}"#),
        )
        .unwrap();
        let b = normalize(
            "t",
            dict(r#"{"auto_auth": {"method": {"kubernetes": {"config": {"role": "r"}}}, "sink": [{"file": {}}]}, "template": [{"destination": "d"}]}"#),
        )
        .unwrap();
        let text = |d: &Dict| serde_json::to_string(d).unwrap();
        assert_eq!(text(&a).replace("{}", ""), text(&b).replace("{}", ""));
        assert!(text(&a).contains(r#""type":"kubernetes""#), "{}", text(&a));
    }

    #[test]
    fn a_single_block_twice_is_an_error() {
        let err = normalize("t", dict(r#"{"vault": [{}, {}]}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t: vault: block `vault` is given 2 times; Vault Agent reads one"
        );
    }
}
