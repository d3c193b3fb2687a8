//! The Go text/template engine: parse any text, then render it as the agent does — `nil` dot,
//! the agent's `RenderFunctions`, a first pass with nothing fetched, a second with every
//! Vault call it reached answered by the golden KV response. Must never panic.
//!
//! Each input is parsed with `{{ }}` and with `[[ ]]` (the delimiters fixture), and rendered
//! with and without `error_on_missing_key`, so the seed corpus is the fixtures as they are.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pki_sidecar::agent::functions::{Dependency, RenderFunctions};
use pki_sidecar::template::{Functions, RenderOptions, Template, Value};

/// What a Vault call returns in the second pass: the golden KV v2 read response.
fn vault_response() -> &'static Value {
    static RESPONSE: OnceLock<Value> = OnceLock::new();
    RESPONSE.get_or_init(|| {
        let data: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/templates/golden-secret.json"
        ))
        .expect("golden-secret.json is JSON");
        Value::from_json(&serde_json::json!({
            "Data": {"data": data, "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            "LeaseID": "",
            "LeaseDuration": 0,
            "Renewable": false,
        }))
    })
}

/// The agent's functions, except `file`: a fuzzed path such as /dev/zero would read forever,
/// and templates are trusted input in the agent.
struct Sandboxed<'a>(RenderFunctions<'a>);

impl Functions for Sandboxed<'_> {
    fn has(&self, name: &str) -> bool {
        self.0.has(name)
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        if name == "file" {
            return Err("file: not read while fuzzing".to_owned());
        }
        self.0.call(name, args)
    }
}

fn render(
    template: &Template,
    fetched: &BTreeMap<Dependency, Value>,
    options: RenderOptions,
) -> Vec<Dependency> {
    let mut functions = Sandboxed(RenderFunctions::new(fetched));
    match template.render(&Value::Nil, &mut functions, options) {
        Ok(_) => functions.0.missing.into_iter().collect(),
        Err(error) => {
            let _ = error.to_string();
            Vec::new()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let empty = BTreeMap::new();
    for (left, right) in [("{{", "}}"), ("[[", "]]")] {
        let template =
            match Template::parse(text, left, right, &Sandboxed(RenderFunctions::new(&empty))) {
                Ok(template) => template,
                Err(error) => {
                    let _ = error.to_string();
                    continue;
                }
            };
        for error_on_missing_key in [false, true] {
            let options = RenderOptions {
                error_on_missing_key,
            };
            let missing = render(&template, &empty, options);
            if !missing.is_empty() {
                let fetched: BTreeMap<Dependency, Value> = missing
                    .into_iter()
                    .map(|dependency| (dependency, vault_response().clone()))
                    .collect();
                render(&template, &fetched, options);
            }
        }
    }
});
