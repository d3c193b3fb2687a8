//! Rendering one template: its text, the pass loop, and the dry run.
//!
//! A template renders in passes: a pass that reaches Vault data it does not have yet
//! (`pkiCert`, `secret`) lists it, the caller fetches it, and the template renders again, until
//! a pass completes ([`Passes`], the one place that bounds the loop). Only a complete pass has
//! output and `writeToFile` writes; nothing here touches the disk or the network.
//!
//! Which files receive a certificate's private key is found the same way everywhere — the
//! agent's reuse check, `doctor`, `validate` — by rendering with a [`KeyMarker`] in place of
//! the key and looking for it in the writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use super::functions::{Dependency, FileWrite, KnownFunctions, RenderFunctions};
use super::pki;
use crate::config::{self, TemplateSource};
use crate::template::{RenderOptions, Template, TemplateError, Value};

/// A render that still lacks data after this many passes is an error (a template whose Vault
/// calls depend on each other more deeply than that is not one a user writes).
const MAX_PASSES: usize = 8;

/// Parses a template's text with the agent's functions; unknown functions are errors.
pub fn parse(template: &config::Template, text: &str) -> Result<Template, TemplateError> {
    Template::parse(
        text,
        &template.left_delimiter,
        &template.right_delimiter,
        &KnownFunctions,
    )
}

/// The text of a template: its `contents`, or its `source` file read now.
pub(crate) fn source_text(template: &config::Template) -> anyhow::Result<String> {
    match &template.source {
        TemplateSource::Contents(text) => Ok(text.clone()),
        TemplateSource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the template source {}", path.display())),
    }
}

/// What one pass gave.
pub(crate) enum Pass {
    /// The render completed: the destination's text and the `writeToFile` calls, in order.
    Complete {
        /// The destination file's contents.
        output: String,
        /// The `writeToFile` calls, in render order.
        writes: Vec<FileWrite>,
    },
    /// The render reached Vault data it does not have: fetch these, then render again.
    Missing(Vec<Dependency>),
}

/// The passes of one render, at most [`MAX_PASSES`].
pub(crate) struct Passes<'t> {
    template: &'t Template,
    options: RenderOptions,
    label: String,
    destination: PathBuf,
    done: usize,
    /// Every Vault call any pass so far reached.
    pub(crate) used: BTreeSet<Dependency>,
}

impl<'t> Passes<'t> {
    /// The passes of `template`, which writes `destination`; `label` names it in errors.
    pub(crate) fn new(
        template: &'t Template,
        options: RenderOptions,
        label: String,
        destination: &Path,
    ) -> Self {
        Passes {
            template,
            options,
            label,
            destination: destination.to_path_buf(),
            done: 0,
            used: BTreeSet::new(),
        }
    }

    /// Renders once more with `fetched`.
    pub(crate) fn next(&mut self, fetched: &BTreeMap<Dependency, Value>) -> anyhow::Result<Pass> {
        if self.done == MAX_PASSES {
            bail!(
                "{}: still reaching new Vault calls after {MAX_PASSES} passes",
                self.label
            );
        }
        self.done += 1;
        let mut functions = RenderFunctions::new(fetched, &self.destination);
        let rendered = self
            .template
            .render(&Value::Nil, &mut functions, self.options);
        self.used.append(&mut functions.used);
        // A pass that reached Vault calls not fetched yet saw nil for them, so an error it hit
        // may be theirs (`(secret "x").Data.y` is a nil-field error until the secret is
        // there): fetch them and render again, as consul-template does, before judging.
        let output = match rendered {
            Err(_) if !functions.missing.is_empty() => {
                return Ok(Pass::Missing(functions.missing.into_iter().collect()));
            }
            rendered => rendered.map_err(|err| anyhow!("{}: {err}", self.label))?,
        };
        if functions.missing.is_empty() {
            Ok(Pass::Complete {
                output,
                writes: functions.writes,
            })
        } else {
            Ok(Pass::Missing(functions.missing.into_iter().collect()))
        }
    }
}

/// A random string put where a private key would be, to find which files a render writes the
/// key to without holding a key.
pub(crate) struct KeyMarker(String);

impl KeyMarker {
    /// A new marker, unlikely to appear in any template's own text.
    pub(crate) fn new() -> KeyMarker {
        KeyMarker(format!("pki-sidecar-key-marker-{:016x}", fastrand::u64(..)))
    }

    /// A `pkiCert` value with the marker as its key.
    pub(crate) fn pki_value(&self, cert: &str, ca: &str, chain: &[String]) -> Value {
        pki::pki_value(cert, &self.0, ca, chain)
    }

    /// The files among `writes` that would receive the key.
    pub(crate) fn key_files(&self, writes: &[FileWrite]) -> Vec<PathBuf> {
        writes
            .iter()
            .filter(|write| write.contents.contains(&self.0))
            .map(|write| write.path.clone())
            .collect()
    }
}

/// What a template would ask of Vault and where it would put a private key, found without
/// calling Vault: a dry render that answers every Vault call with placeholder data.
#[derive(Debug, Default)]
pub(crate) struct DryRun {
    /// The Vault calls the template makes, in the order first reached.
    pub vault_calls: Vec<Dependency>,
    /// Files a `writeToFile` would fill with a `pkiCert`'s private key.
    pub key_files: Vec<PathBuf>,
    /// Every file a `writeToFile` would write, key or not.
    pub written: Vec<PathBuf>,
    /// Key files the template would still write when the certificate is reused at a restart
    /// (`.Data.Key` is then empty): without a guard such as `{{ if .Data.Key }}` they would be
    /// emptied.
    pub emptied_on_reuse: Vec<PathBuf>,
}

/// Renders `template` with placeholders in place of Vault's answers (the key a [`KeyMarker`])
/// and reports what it asked for. Writes nothing.
pub(crate) fn dry_run(template: &config::Template) -> anyhow::Result<DryRun> {
    let text = source_text(template)?;
    let parsed = parse(template, &text)
        .with_context(|| format!("template {}", template.destination.display()))?;
    let marker = KeyMarker::new();
    let label = template.destination.display().to_string();
    let (vault_calls, writes) =
        placeholder_render(&parsed, &label, &template.destination, Some(&marker))?;
    let key_files = marker.key_files(&writes);
    // A restart that reuses the certificate: the same render with an empty key.
    let (_, reuse_writes) = placeholder_render(&parsed, &label, &template.destination, None)?;
    let emptied_on_reuse = reuse_writes
        .iter()
        .filter(|write| key_files.contains(&write.path))
        .map(|write| write.path.clone())
        .collect();
    Ok(DryRun {
        vault_calls,
        key_files,
        written: writes.iter().map(|write| write.path.clone()).collect(),
        emptied_on_reuse,
    })
}

/// One complete render with placeholder answers: the key is `marker`'s, or empty (`None`).
fn placeholder_render(
    parsed: &Template,
    label: &str,
    destination: &Path,
    marker: Option<&KeyMarker>,
) -> anyhow::Result<(Vec<Dependency>, Vec<FileWrite>)> {
    let mut fetched: BTreeMap<Dependency, Value> = BTreeMap::new();
    let mut calls = Vec::new();
    let mut passes = Passes::new(
        parsed,
        RenderOptions::default(),
        label.to_string(),
        destination,
    );
    loop {
        match passes.next(&fetched)? {
            Pass::Complete { writes, .. } => return Ok((calls, writes)),
            Pass::Missing(missing) => {
                for dependency in missing {
                    let value = match (&dependency, marker) {
                        (Dependency::PkiCert { .. }, Some(marker)) => {
                            marker.pki_value("placeholder", "", &[])
                        }
                        (Dependency::PkiCert { .. }, None) => {
                            pki::pki_value("placeholder", "", "", &[])
                        }
                        // Nil, as consul-template's first pass sees a secret not fetched
                        // yet: `with secret` bodies, which would need its fields, are skipped.
                        (Dependency::Secret { .. }, _) => Value::Nil,
                        (Dependency::List { .. }, _) => Value::List(Vec::new()),
                    };
                    calls.push(dependency.clone());
                    fetched.insert(dependency, value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_finds_the_seed_templates_pki_path_and_key_file_without_writing() {
        let seed = include_str!("../../etc/agent.hcl");
        let config =
            config::load_str("agent.hcl", seed, &KnownFunctions).unwrap_or_else(|e| panic!("{e}"));
        let dry = dry_run(&config.templates[0]).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(dry.vault_calls.len(), 1, "{:?}", dry.vault_calls);
        assert!(matches!(
            &dry.vault_calls[0],
            Dependency::PkiCert { path, .. } if path == "pki_intermediate/issue/home"
        ));
        assert_eq!(dry.key_files, vec![PathBuf::from("/etc/nginx/ssl/tls.key")]);
    }

    #[test]
    fn a_pass_failing_on_a_secret_not_fetched_yet_asks_for_it_then_renders() {
        let text = r#"{{ (secret "kv/x").Data.y }} {{ $s := secret "kv/x" }}{{ $s.Data.y }}"#;
        let template = Template::parse(text, "{{", "}}", &KnownFunctions).unwrap();
        let mut passes = Passes::new(
            &template,
            RenderOptions::default(),
            "t".to_owned(),
            Path::new("/t"),
        );
        let secret = Dependency::Secret {
            path: "kv/x".to_owned(),
            args: Vec::new(),
        };
        let mut fetched = BTreeMap::new();
        match passes.next(&fetched) {
            Ok(Pass::Missing(missing)) => assert_eq!(missing, vec![secret.clone()]),
            Ok(Pass::Complete { output, .. }) => panic!("rendered {output:?} without the secret"),
            Err(e) => panic!("{e:#}"),
        }
        let data: BTreeMap<String, Value> = [("y".to_owned(), Value::from("v"))].into();
        let response: BTreeMap<String, Value> = [("Data".to_owned(), Value::Map(data))].into();
        fetched.insert(secret, Value::Map(response));
        match passes.next(&fetched) {
            Ok(Pass::Complete { output, .. }) => assert_eq!(output, "v v"),
            Ok(Pass::Missing(missing)) => panic!("still missing {missing:?}"),
            Err(e) => panic!("{e:#}"),
        }
        // With everything fetched, the same error is the template's own.
        let broken = Template::parse(
            "{{ (secret \"kv/x\").Nope.y }}",
            "{{",
            "}}",
            &KnownFunctions,
        )
        .unwrap();
        let mut passes = Passes::new(
            &broken,
            RenderOptions::default(),
            "t".to_owned(),
            Path::new("/t"),
        );
        let err = passes.next(&fetched).err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("nil pointer evaluating interface {}.y")),
            "{err:?}"
        );
    }
}
