//! The bodies of the cargo-fuzz targets in `fuzz/`, here so that `cargo test` replays every
//! input the fuzzers ever crashed on (`fuzz/regressions/TARGET/`) and every seed through exactly
//! the code the fuzzers run. Not an API: each function takes raw bytes and panics on a bug.
//!
//! It must not do network I/O. The only files it reads are those the config loader itself
//! reads (a template `source` that a fuzzed config names); the template target refuses `file`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::agent::functions::{Dependency, RenderFunctions};
use crate::certs::{self, CertInfo};
use crate::config::{self, Role};
use crate::template::{Functions, RenderOptions, Template, Value};
use crate::tls::pem;

/// The destination the fuzzed templates render for.
const DESTINATION: &str = "/fuzz/destination";

/// The HCL config loader: `config::load_str` (`config::load` minus the read and the
/// environment), then `check_role` and `validate::summary`, or every error printed.
pub fn config(data: &[u8]) {
    // `load` reads with read_to_string: text that is not UTF-8 never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let roles = [Role::Agent, Role::Proxy, Role::App];
    match config::load_str("fuzz.hcl", text, &crate::agent::functions::KnownFunctions) {
        Ok(config) => {
            if let Err(errors) = config.agent() {
                let _ = errors.to_string();
            }
            let _ = crate::validate::summary(&config, &roles);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an Err without any error");
            let _ = errors.to_string();
        }
    }
}

/// What a Vault call returns in the second render pass: the golden KV v2 read response, plus
/// a `certificate` as pkiCert's answer has.
fn vault_response() -> &'static Value {
    static RESPONSE: OnceLock<Value> = OnceLock::new();
    RESPONSE.get_or_init(|| {
        let data: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/templates/golden-secret.json"
        ))
        .unwrap_or_default();
        Value::from_json(&serde_json::json!({
            "Data": {
                "data": data,
                "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            },
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

    fn executes_template(&self, name: &str) -> bool {
        self.0.executes_template(name)
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        if name == "file" {
            return Err("file: not read while fuzzing".to_owned());
        }
        self.0.call(name, args)
    }
}

/// Renders as the agent does (`nil` dot); returns the Vault data the render reached.
fn render_pass(
    template: &Template,
    fetched: &BTreeMap<Dependency, Value>,
    options: RenderOptions,
) -> Vec<Dependency> {
    let mut functions = Sandboxed(RenderFunctions::new(fetched, Path::new(DESTINATION)));
    match template.render(&Value::Nil, &mut functions, options) {
        Ok(_) => functions.0.missing.into_iter().collect(),
        Err(error) => {
            let _ = error.to_string();
            Vec::new()
        }
    }
}

/// The template engine: parse with `{{ }}` and `[[ ]]`, render with and without
/// `error_on_missing_key`, first with nothing fetched, then with every Vault call answered.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let empty = BTreeMap::new();
    for (left, right) in [("{{", "}}"), ("[[", "]]")] {
        let parsed = Template::parse(
            text,
            left,
            right,
            &Sandboxed(RenderFunctions::new(&empty, Path::new(DESTINATION))),
        );
        let template = match parsed {
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
            let missing = render_pass(&template, &empty, options);
            if !missing.is_empty() {
                let fetched: BTreeMap<Dependency, Value> = missing
                    .into_iter()
                    .map(|dependency| (dependency, vault_response().clone()))
                    .collect();
                render_pass(&template, &fetched, options);
            }
        }
    }
}

/// Certificates and keys: PEM blocks (any parsed block re-encodes to itself), `CertInfo`,
/// `key_matches`, and the proxy's pair validation. Input: the certificate file's text, then
/// optionally a NUL byte and the key file's text; without a NUL the same text is both.
pub fn certs(data: &[u8]) {
    let (cert_bytes, key_bytes) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    // The files are read with read_to_string: text that is not UTF-8 stops there.
    let (Ok(cert_text), Ok(key_text)) = (
        std::str::from_utf8(cert_bytes),
        std::str::from_utf8(key_bytes),
    ) else {
        return;
    };
    let mut certificates = Vec::new();
    let mut keys = Vec::new();
    for text in [cert_text, key_text] {
        let Ok(blocks) = pem::blocks(text.as_bytes()) else {
            continue;
        };
        for block in blocks {
            let again = pem::blocks(block.to_pem().as_bytes());
            assert_eq!(
                again.as_deref(),
                Ok(std::slice::from_ref(&block)),
                "PEM round trip"
            );
            if block.is_certificate() {
                if let Ok(info) = CertInfo::parse(&block.der) {
                    let _ = (info.lifetime(), certs::unix_seconds(info.not_after));
                }
                certificates.push(block.der.clone());
            } else if let Some(key) = block.private_key() {
                keys.push(key);
            }
        }
    }
    for certificate in certificates.iter().take(2) {
        for key in keys.iter().take(2) {
            let _ = certs::key_matches(certificate, key.clone_key());
        }
    }
    // 2027-01-15, inside the seed certificates' validity; and the epoch, before all of them.
    let (cert_file, key_file) = (Path::new("tls.crt"), Path::new("tls.key"));
    for now in [
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        SystemTime::UNIX_EPOCH,
    ] {
        match crate::proxy::store::pair_from_pem(cert_text, key_text, cert_file, key_file, now) {
            Ok(pair) => assert!(pair.info.not_before <= now && now < pair.info.not_after),
            Err(error) => {
                let _ = (error.reason(), error.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every file in `dirs` (relative to the repository), sorted.
    fn inputs(dirs: &[&str]) -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<PathBuf> = dirs
            .iter()
            .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
            .flatten()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        files
    }

    use super::*;

    fn replay(target: fn(&[u8]), dirs: &[&str]) {
        let files = inputs(dirs);
        assert!(!files.is_empty(), "no inputs in {dirs:?}");
        for file in files {
            eprintln!("{}", file.display());
            target(&std::fs::read(&file).unwrap());
        }
    }

    #[test]
    fn config_regressions_and_seeds() {
        replay(
            config,
            &[
                "fuzz/regressions/config",
                "tests/fixtures/config/valid",
                "tests/fixtures/config/invalid",
            ],
        );
    }

    #[test]
    fn template_regressions_and_seeds() {
        replay(
            template,
            &["fuzz/regressions/template", "tests/fixtures/templates"],
        );
    }

    #[test]
    fn certs_regressions_and_seeds() {
        replay(certs, &["fuzz/regressions/certs", "fuzz/seeds/certs"]);
    }
}
