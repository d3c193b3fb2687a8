//! Rendering `template {}` blocks and keeping their certificates fresh.
//!
//! Each template renders in passes: a pass that reaches Vault data it does not have yet
//! (`pkiCert`, `secret`) lists it, the data is fetched, and the template renders again, until a
//! pass completes. Only a complete render touches the disk: `writeToFile` targets first (the
//! key), then the destination (the certificate), each atomically and only when its content or
//! mode changed; then the template's `command` runs.
//!
//! A `pkiCert` certificate is kept until its renewal point (`lease_renewal_threshold` of its
//! lifetime, with jitter); then it alone is fetched again. At start the destination file serves
//! as the cache, as in Vault Agent: a certificate there that is not yet due is reused, provided
//! every key file the template writes holds the matching key — so a restart neither re-issues
//! nor leaves a mismatched pair. A failed fetch leaves every file as it is and is retried with
//! backoff, faster as the current certificate nears its end.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow, bail};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backend::Backend;
use super::functions::{Dependency, FileWrite, KnownFunctions, RenderFunctions};
use super::metrics::TemplateMetrics;
use crate::certs::{self, CertInfo};
use crate::config::{self, TemplateCommand, TemplateSource};
use crate::fsutil::{self, Ownership};
use crate::schedule::{self, Backoff};
use crate::telemetry::Readiness;
use crate::template::{RenderOptions, Template, Value};

/// The readiness condition this module owns.
pub const READY_CONDITION: &str = "templates";
/// A render that still lacks data after this many passes is an error (a template whose Vault
/// calls depend on each other more deeply than that is not one a user writes).
const MAX_PASSES: usize = 8;

/// Parses a template's text at config load time; unknown functions are errors there.
pub fn parse(
    template: &config::Template,
    text: &str,
) -> Result<Template, crate::template::TemplateError> {
    Template::parse(
        text,
        &template.left_delimiter,
        &template.right_delimiter,
        &KnownFunctions,
    )
}

/// The text of a template: its `contents`, or its `source` file read now.
pub fn source_text(template: &config::Template) -> anyhow::Result<String> {
    match &template.source {
        TemplateSource::Contents(text) => Ok(text.clone()),
        TemplateSource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the template source {}", path.display())),
    }
}

/// What a template would ask of Vault and where it would put a private key, found without
/// calling Vault: a dry render that answers every Vault call with placeholder data.
#[derive(Debug, Default)]
pub struct DryRun {
    /// The Vault calls the template makes, in the order first reached.
    pub vault_calls: Vec<Dependency>,
    /// Files a `writeToFile` would fill with a `pkiCert`'s private key.
    pub key_files: Vec<PathBuf>,
}

/// Renders `template` with placeholders in place of Vault's answers (as [`TemplateRunner`]'s
/// reuse check does with a marker key) and reports what it asked for. Writes nothing.
pub fn dry_run(template: &config::Template) -> anyhow::Result<DryRun> {
    let text = source_text(template)?;
    let parsed = parse(template, &text)
        .with_context(|| format!("template {}", template.destination.display()))?;
    let marker = format!("pki-sidecar-key-marker-{:016x}", fastrand::u64(..));
    let placeholder_info = CertInfo {
        not_before: SystemTime::UNIX_EPOCH,
        not_after: SystemTime::UNIX_EPOCH,
        serial: String::new(),
        subject_cn: String::new(),
        issuer_cn: String::new(),
        fingerprint_sha256: String::new(),
        is_ca: false,
        names: Vec::new(),
    };
    let mut fetched: BTreeMap<Dependency, Value> = BTreeMap::new();
    let mut found = DryRun::default();
    for _ in 0..MAX_PASSES {
        let mut functions = RenderFunctions::new(&fetched);
        parsed
            .render(&Value::Nil, &mut functions, RenderOptions::default())
            .map_err(|err| anyhow!("{}: {err}", template.destination.display()))?;
        if functions.missing.is_empty() {
            found.key_files = functions
                .writes
                .iter()
                .filter(|write| write.contents.contains(&marker))
                .map(|write| write.path.clone())
                .collect();
            return Ok(found);
        }
        for dependency in functions.missing {
            let value = match &dependency {
                Dependency::PkiCert { .. } => {
                    pki_value("placeholder", &marker, "", &[], &placeholder_info)
                }
                Dependency::Secret { .. } => Value::Map(BTreeMap::new()),
            };
            found.vault_calls.push(dependency.clone());
            fetched.insert(dependency, value);
        }
    }
    bail!(
        "{}: still reaching new Vault calls after {MAX_PASSES} passes",
        template.destination.display()
    )
}

/// One template and what it has fetched so far.
struct Slot {
    index: usize,
    config: config::Template,
    template: Template,
    fetched: BTreeMap<Dependency, Value>,
    /// When each fetched dependency must be fetched again (monotonic, so a due check and the
    /// sleep that precedes it agree).
    refresh_at: BTreeMap<Dependency, Instant>,
    /// The certificate behind each `pkiCert` dependency.
    certificates: BTreeMap<Dependency, CertInfo>,
    reuse_checked: bool,
    /// Rendered since start or the last SIGHUP.
    rendered: bool,
    /// Complete renders since start.
    successful_renders: u64,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Slot {
    fn label(&self) -> String {
        format!(
            "template[{}] ({})",
            self.index,
            self.config.destination.display()
        )
    }

    /// The soonest moment this slot needs work.
    fn next_due(&self) -> Option<Instant> {
        self.refresh_at.values().copied().chain(self.retry_at).min()
    }

    fn is_due(&self, now: Instant) -> bool {
        !self.rendered || self.next_due().is_some_and(|due| due <= now)
    }

    /// How long the template's soonest-expiring certificate has left.
    fn time_left(&self) -> Option<Duration> {
        let now = SystemTime::now();
        self.certificates
            .values()
            .map(|info| info.not_after.duration_since(now).unwrap_or_default())
            .min()
    }
}

/// Renders every template and keeps it current.
pub struct TemplateRunner {
    slots: Vec<Slot>,
    backend: Backend,
    settings: config::TemplateConfig,
    min_backoff: Duration,
    metrics: TemplateMetrics,
    readiness: Readiness,
}

impl TemplateRunner {
    /// A runner for `templates` (already parsed once at load, parsed again here), fetching
    /// from `backend`; failures back off between `min_backoff` and `max_backoff`.
    pub fn new(
        config: &config::Config,
        backend: Backend,
        (min_backoff, max_backoff): (Duration, Duration),
        metrics: TemplateMetrics,
        readiness: Readiness,
    ) -> anyhow::Result<TemplateRunner> {
        let mut slots = Vec::with_capacity(config.templates.len());
        for (index, template) in config.templates.iter().enumerate() {
            let text = source_text(template)?;
            let parsed =
                parse(template, &text).map_err(|err| anyhow!("template[{index}]: {err}"))?;
            slots.push(Slot {
                index,
                config: template.clone(),
                template: parsed,
                fetched: BTreeMap::new(),
                refresh_at: BTreeMap::new(),
                certificates: BTreeMap::new(),
                reuse_checked: false,
                rendered: false,
                successful_renders: 0,
                backoff: Backoff::new(min_backoff, max_backoff),
                retry_at: None,
            });
        }
        if !slots.is_empty() {
            readiness.not_ready(
                READY_CONDITION,
                format!("0 of {} templates rendered", slots.len()),
            );
        }
        Ok(TemplateRunner {
            slots,
            backend,
            settings: config.template_config.clone(),
            min_backoff,
            metrics,
            readiness,
        })
    }

    /// Renders until shutdown; with `once`, returns after every template rendered once.
    pub async fn run(
        mut self,
        shutdown: &CancellationToken,
        mut reloads: watch::Receiver<u64>,
        once: bool,
    ) -> anyhow::Result<()> {
        if self.slots.is_empty() {
            if !once {
                shutdown.cancelled().await;
            }
            return Ok(());
        }
        // Nothing can be fetched before the first token.
        if !self.backend.ready(shutdown).await {
            return Ok(());
        }
        loop {
            let now = Instant::now();
            for position in 0..self.slots.len() {
                if !self.slots[position].is_due(now) {
                    continue;
                }
                let result = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    result = self.render(position) => result,
                };
                self.after_render(position, result)?;
            }
            let rendered = self.slots.iter().filter(|s| s.rendered).count();
            if rendered == self.slots.len() {
                self.readiness.ready(READY_CONDITION);
                if once && self.slots.iter().all(|s| s.retry_at.is_none()) {
                    return Ok(());
                }
            } else {
                self.readiness.not_ready(
                    READY_CONDITION,
                    format!("{rendered} of {} templates rendered", self.slots.len()),
                );
            }
            let wake = self.slots.iter().filter_map(Slot::next_due).min();
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = sleep_until(wake) => {}
                changed = reloads.changed() => {
                    if changed.is_ok() {
                        self.reload_sources();
                    }
                }
            }
        }
    }

    /// Records a render's outcome and plans the retry of a failure.
    fn after_render(&mut self, position: usize, result: anyhow::Result<()>) -> anyhow::Result<()> {
        let exit_on_failure = self.settings.exit_on_retry_failure;
        let floor = self.min_backoff;
        let slot = &mut self.slots[position];
        match result {
            Ok(()) => {
                self.metrics.render(true);
                slot.backoff.reset();
                slot.retry_at = None;
                Ok(())
            }
            Err(err) => {
                self.metrics.render(false);
                if exit_on_failure {
                    return Err(err.context(format!(
                        "{} failed and template_config.exit_on_retry_failure is set",
                        slot.label()
                    )));
                }
                let delay = slot.backoff.next_delay();
                let wait = match slot.time_left() {
                    Some(left) => schedule::renewal_retry_wait(delay, left, floor),
                    None => delay,
                };
                slot.retry_at = Some(Instant::now() + wait);
                tracing::warn!(
                    template = slot.index,
                    destination = %slot.config.destination.display(),
                    error = format!("{err:#}"),
                    retry_in_seconds = wait.as_secs_f64(),
                    certificate_time_left_seconds = slot.time_left().map(|d| d.as_secs()),
                    "rendering failed; the files on disk are kept"
                );
                Ok(())
            }
        }
    }

    /// SIGHUP: re-reads `source` files (a bad one keeps its old text) and re-renders all.
    fn reload_sources(&mut self) {
        for slot in &mut self.slots {
            if let TemplateSource::File(path) = &slot.config.source {
                match source_text(&slot.config).and_then(|text| {
                    parse(&slot.config, &text).map_err(|err| anyhow!("{}: {err}", path.display()))
                }) {
                    Ok(template) => slot.template = template,
                    Err(err) => tracing::error!(
                        template = slot.index,
                        error = format!("{err:#}"),
                        "SIGHUP: keeping the previous template text"
                    ),
                }
            }
            slot.rendered = false;
        }
        tracing::info!("SIGHUP: re-rendering every template");
    }

    /// Renders slot `position` to completion and writes its files.
    async fn render(&mut self, position: usize) -> anyhow::Result<()> {
        let now = Instant::now();
        {
            let slot = &mut self.slots[position];
            let stale: Vec<Dependency> = slot
                .refresh_at
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(d, _)| d.clone())
                .collect();
            for dependency in stale {
                tracing::info!(template = slot.index, %dependency, "due for renewal");
                slot.fetched.remove(&dependency);
                slot.refresh_at.remove(&dependency);
            }
        }
        for _ in 0..MAX_PASSES {
            let slot = &self.slots[position];
            let mut functions = RenderFunctions::new(&slot.fetched);
            let options = RenderOptions {
                error_on_missing_key: slot.config.error_on_missing_key,
            };
            let output = slot
                .template
                .render(&Value::Nil, &mut functions, options)
                .map_err(|err| anyhow!("{}: {err}", slot.label()))?;
            if functions.missing.is_empty() {
                let writes = functions.writes;
                return self.write(position, output, writes).await;
            }
            let missing: Vec<Dependency> = functions.missing.into_iter().collect();
            for dependency in missing {
                self.fetch(position, dependency).await?;
            }
        }
        bail!(
            "{}: still missing Vault data after {MAX_PASSES} passes",
            self.slots[position].label()
        )
    }

    /// Gets one dependency: from the destination file at start when still good, else Vault.
    async fn fetch(&mut self, position: usize, dependency: Dependency) -> anyhow::Result<()> {
        if matches!(dependency, Dependency::PkiCert { .. }) && !self.slots[position].reuse_checked {
            self.slots[position].reuse_checked = true;
            match self.reusable(position, &dependency) {
                Ok(Some((value, info))) => {
                    let renew_at = self.renewal_point(&info, None);
                    let slot = &self.slots[position];
                    tracing::info!(
                        template = slot.index,
                        destination = %slot.config.destination.display(),
                        serial = %info.serial,
                        not_after = %crate::timefmt::rfc3339(info.not_after),
                        renews_at = %crate::timefmt::rfc3339(renew_at),
                        "reusing the certificate on disk"
                    );
                    self.publish_certificate(position, &dependency, value, info, renew_at);
                    return Ok(());
                }
                Ok(None) => {}
                Err(reason) => tracing::info!(
                    template = self.slots[position].index,
                    reason = %reason,
                    "not reusing the certificate on disk; issuing a new one"
                ),
            }
        }
        match &dependency {
            Dependency::PkiCert { path, args } => {
                let body = pairs_to_json(args);
                let result = self
                    .backend
                    .request("issue", http::Method::POST, path, Some(body))
                    .await;
                let response = match result {
                    Ok(response) => response,
                    Err(err) => {
                        self.metrics.issue(false);
                        return Err(err.context(format!("{dependency}")));
                    }
                };
                let (value, info) = match issued_value(&response) {
                    Ok(issued) => issued,
                    Err(err) => {
                        self.metrics.issue(false);
                        return Err(anyhow!("{dependency}: {err}"));
                    }
                };
                self.metrics.issue(true);
                let renew_at = self.renewal_point(&info, Some(SystemTime::now()));
                tracing::info!(
                    template = self.slots[position].index,
                    serial = %info.serial,
                    subject = %info.subject_cn,
                    not_after = %crate::timefmt::rfc3339(info.not_after),
                    renews_at = %crate::timefmt::rfc3339(renew_at),
                    "issued a certificate"
                );
                self.publish_certificate(position, &dependency, value, info, renew_at);
            }
            Dependency::Secret { path, args } => {
                let (method, body) = if args.is_empty() {
                    (http::Method::GET, None)
                } else {
                    (http::Method::PUT, Some(pairs_to_json(args)))
                };
                let response = self
                    .backend
                    .request("secret", method, path, body)
                    .await
                    .with_context(|| format!("{dependency}"))?;
                let lease = response
                    .get("lease_duration")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let refresh = if lease > 0 {
                    schedule::token_renewal_delay(crate::vault::lease(lease), fastrand::f64())
                } else {
                    self.settings.static_secret_render_interval
                };
                let slot = &mut self.slots[position];
                slot.fetched
                    .insert(dependency.clone(), secret_value(&response));
                slot.refresh_at.insert(dependency, Instant::now() + refresh);
            }
        }
        Ok(())
    }

    /// When to renew `info`. Vault backdates NotBefore (30 s by default), so for a certificate
    /// just issued the lifetime is counted from `issued_at`: otherwise a short-lived one would
    /// be due the moment it arrives.
    fn renewal_point(&self, info: &CertInfo, issued_at: Option<SystemTime>) -> SystemTime {
        let start = issued_at.map_or(info.not_before, |at| at.max(info.not_before));
        schedule::certificate_renewal_at(
            start,
            info.not_after,
            self.settings.lease_renewal_threshold,
            fastrand::f64(),
        )
    }

    fn publish_certificate(
        &mut self,
        position: usize,
        dependency: &Dependency,
        value: Value,
        info: CertInfo,
        renew_at: SystemTime,
    ) {
        let slot = &mut self.slots[position];
        let name = slot.config.destination.display().to_string();
        self.metrics.certificate(&name, &info, renew_at);
        // Never sooner than min_backoff from now, whatever the certificate says: no tight loop
        // even for a certificate that arrives already due (a clock far off, say).
        let now = Instant::now();
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        slot.fetched.insert(dependency.clone(), value);
        slot.refresh_at
            .insert(dependency.clone(), now + wait.max(self.min_backoff));
        slot.certificates.insert(dependency.clone(), info);
    }

    /// The certificate in the destination file, if it can be reused: not yet due for renewal,
    /// and every key file the template writes holds its key. `Err` says why not.
    fn reusable(
        &self,
        position: usize,
        dependency: &Dependency,
    ) -> Result<Option<(Value, CertInfo)>, String> {
        let slot = &self.slots[position];
        let destination = &slot.config.destination;
        let text = match std::fs::read_to_string(destination) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("cannot read {}: {err}", destination.display())),
        };
        let found =
            certificates_in(&text).map_err(|err| format!("{}: {err}", destination.display()))?;
        let Some((leaf, info)) = found.leaf else {
            return Err(format!("no certificate in {}", destination.display()));
        };
        let renew_at = schedule::certificate_renewal_at(
            info.not_before,
            info.not_after,
            self.settings.lease_renewal_threshold,
            0.5,
        );
        if SystemTime::now() >= renew_at {
            return Err(format!(
                "the certificate in {} is due for renewal",
                destination.display()
            ));
        }
        // Which files would receive the key? Render once with a marker in its place.
        let marker = format!("pki-sidecar-key-marker-{:016x}", fastrand::u64(..));
        let mut trial = slot.fetched.clone();
        trial.insert(
            dependency.clone(),
            pki_value(&leaf, &marker, &found.ca, &found.chain, &info),
        );
        let mut functions = RenderFunctions::new(&trial);
        slot.template
            .render(&Value::Nil, &mut functions, RenderOptions::default())
            .map_err(|err| format!("trial render: {err}"))?;
        let key_files: Vec<PathBuf> = functions
            .writes
            .iter()
            .filter(|w| w.contents.contains(&marker))
            .map(|w| w.path.clone())
            .collect();
        let leaf_der = certs::pem_blocks(&leaf)
            .ok()
            .and_then(|b| b.into_iter().next())
            .map(|b| b.der);
        let leaf_der = leaf_der.ok_or("the certificate does not decode")?;
        for path in &key_files {
            let key_text = std::fs::read_to_string(path)
                .map_err(|err| format!("the key file {} cannot be read: {err}", path.display()))?;
            check_key(&leaf_der, &key_text).map_err(|err| format!("{}: {err}", path.display()))?;
        }
        if let Some(key) = &found.key {
            check_key(&leaf_der, key).map_err(|err| format!("{}: {err}", destination.display()))?;
        }
        let key = found.key.clone().unwrap_or_default();
        Ok(Some((
            pki_value(&leaf, &key, &found.ca, &found.chain, &info),
            info,
        )))
    }

    /// Writes a complete render: key files, then the destination; runs the command on change.
    async fn write(
        &mut self,
        position: usize,
        output: String,
        writes: Vec<FileWrite>,
    ) -> anyhow::Result<()> {
        let slot = &self.slots[position];
        // `wait { min }`: a change after the first render is held back this long, as
        // consul-template's quiescence timer does (here nothing can arrive meanwhile, so
        // `max` never binds).
        if let Some(wait) = slot.config.wait.filter(|w| !w.min.is_zero()) {
            let will_change = writes
                .iter()
                .any(|w| w.append || needs_write(&w.path, w.contents.as_bytes(), w.perms))
                || needs_write(
                    &slot.config.destination,
                    output.as_bytes(),
                    slot.config.perms,
                );
            if slot.successful_renders > 0 && will_change {
                tracing::debug!(
                    template = slot.index,
                    wait_seconds = wait.min.as_secs_f64(),
                    "waiting before writing the change (wait.min)"
                );
                tokio::time::sleep(wait.min).await;
            }
        }
        let slot = &mut self.slots[position];
        slot.successful_renders += 1;
        // Every file is written in full before any replaces its destination, so a write that
        // fails (a full disk) leaves the old key with the old certificate rather than a new
        // key with an old certificate. Renames then go in order: key files first.
        let mut staged = StagedFiles::default();
        for write in &writes {
            stage_write(write, &mut staged)
                .with_context(|| format!("writeToFile {}", write.path.display()))?;
        }
        let destination = &slot.config.destination;
        if slot.config.create_dest_dirs {
            if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create the directory {}", parent.display()))?;
            }
        }
        stage_if_changed(
            destination,
            output.into_bytes(),
            slot.config.perms,
            Ownership::default(),
            &mut staged,
        )
        .with_context(|| format!("cannot write {}", destination.display()))?;
        let changed = staged.commit()?;
        slot.rendered = true;
        if changed {
            tracing::info!(
                template = slot.index,
                destination = %destination.display(),
                files = writes.len() + 1,
                "rendered"
            );
            if let Some(command) = slot.config.command.clone() {
                let timeout = slot.config.command_timeout;
                let index = slot.index;
                let ok = run_command(&command, timeout).await;
                self.metrics.command(ok);
                if !ok {
                    tracing::warn!(
                        template = index,
                        "the template's command failed; the files stay written"
                    );
                }
            }
        } else {
            tracing::debug!(template = slot.index, "rendered; nothing changed on disk");
        }
        Ok(())
    }
}

/// What a PEM file holds: the leaf (non-CA) certificate, the CA, any chain, any key.
struct Found {
    leaf: Option<(String, CertInfo)>,
    ca: String,
    chain: Vec<String>,
    key: Option<String>,
}

fn certificates_in(text: &str) -> Result<Found, String> {
    let mut found = Found {
        leaf: None,
        ca: String::new(),
        chain: Vec::new(),
        key: None,
    };
    for block in certs::pem_blocks(text)? {
        if block.is_private_key() {
            found.key.get_or_insert_with(|| block.to_pem());
            continue;
        }
        if block.label != "CERTIFICATE" {
            continue;
        }
        let info = CertInfo::parse(&block.der)?;
        if info.is_ca {
            // As consul-template: the last CA certificate seen is `.CA`.
            found.ca = block.to_pem();
            found.chain.push(block.to_pem());
        } else if found.leaf.is_none() {
            found.leaf = Some((block.to_pem(), info));
        }
    }
    Ok(found)
}

fn check_key(leaf_der: &[u8], key_text: &str) -> Result<(), String> {
    let block = certs::pem_blocks(key_text)?
        .into_iter()
        .find(certs::PemBlock::is_private_key)
        .ok_or("no private key")?;
    let key = block
        .private_key()
        .ok_or("an unsupported private key format")?;
    if certs::key_matches(leaf_der, key)? {
        Ok(())
    } else {
        Err("the key does not match the certificate".to_string())
    }
}

/// The value `pkiCert` gives a template: `.Data.Cert` etc., and the same fields at the top
/// (consul-template's `PemEncoded` answers both).
pub fn pki_value(cert: &str, key: &str, ca: &str, chain: &[String], info: &CertInfo) -> Value {
    let mut fields = BTreeMap::new();
    fields.insert("Cert".to_string(), Value::String(cert.to_string()));
    fields.insert("Key".to_string(), Value::String(key.to_string()));
    fields.insert("CA".to_string(), Value::String(ca.to_string()));
    fields.insert("CAChain".to_string(), Value::String(chain.concat()));
    fields.insert("Serial".to_string(), Value::String(info.serial.clone()));
    fields.insert(
        "Expiration".to_string(),
        Value::Int(certs::unix_seconds(info.not_after) as i64),
    );
    let mut value = fields.clone();
    value.insert("Data".to_string(), Value::Map(fields));
    Value::Map(value)
}

/// Vault's answer to `pki/issue`, as the template sees it.
fn issued_value(response: &serde_json::Value) -> Result<(Value, CertInfo), String> {
    let data = response.get("data").ok_or("no data in the answer")?;
    let text = |key: &str| {
        data.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    let certificate = certs::pem_blocks(text("certificate"))?
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .ok_or("no certificate in the answer")?;
    let info = CertInfo::parse(&certificate.der)?;
    let reencode = |pem: &str| -> Result<String, String> {
        Ok(certs::pem_blocks(pem)?
            .iter()
            .map(certs::PemBlock::to_pem)
            .collect())
    };
    let key = reencode(text("private_key"))?;
    let ca = reencode(text("issuing_ca"))?;
    let chain: Vec<String> = match data.get("ca_chain").and_then(serde_json::Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(reencode)
            .collect::<Result<_, _>>()?,
        None => vec![ca.clone()],
    };
    if key.is_empty() {
        return Err("no private key in the answer".to_string());
    }
    Ok((
        pki_value(&certificate.to_pem(), &key, &ca, &chain, &info),
        info,
    ))
}

/// `secret`'s value: Vault's answer with consul-template's field names.
fn secret_value(response: &serde_json::Value) -> Value {
    let mut map = BTreeMap::new();
    let get = |key: &str| {
        response
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    map.insert("Data".to_string(), Value::from_json(&get("data")));
    map.insert("LeaseID".to_string(), Value::from_json(&get("lease_id")));
    map.insert(
        "LeaseDuration".to_string(),
        Value::from_json(&get("lease_duration")),
    );
    map.insert("Renewable".to_string(), Value::from_json(&get("renewable")));
    map.insert("Warnings".to_string(), Value::from_json(&get("warnings")));
    Value::Map(map)
}

fn pairs_to_json(pairs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// Files of one render written beside their destinations, in the order they are to replace
/// them.
#[derive(Default)]
struct StagedFiles {
    files: Vec<(Vec<u8>, fsutil::Staged)>,
}

impl StagedFiles {
    /// What `path` will hold once committed, if a file for it is staged.
    fn pending(&self, path: &Path) -> Option<&[u8]> {
        self.files
            .iter()
            .rev()
            .find(|(_, staged)| staged.path() == path)
            .map(|(contents, _)| contents.as_slice())
    }

    /// Adds a staged file; an earlier one for the same path is dropped (and its temporary
    /// removed), as its rename would be overwritten anyway.
    fn push(&mut self, contents: Vec<u8>, staged: fsutil::Staged) {
        self.files
            .retain(|(_, earlier)| earlier.path() != staged.path());
        self.files.push((contents, staged));
    }

    /// Renames every staged file over its destination, in order; `true` when any was.
    fn commit(self) -> anyhow::Result<bool> {
        let changed = !self.files.is_empty();
        for (_, staged) in self.files {
            let path = staged.path().to_path_buf();
            staged
                .commit()
                .with_context(|| format!("cannot replace {}", path.display()))?;
        }
        Ok(changed)
    }
}

/// Stages one `writeToFile` unless the file already holds what it would write.
fn stage_write(write: &FileWrite, staged: &mut StagedFiles) -> anyhow::Result<()> {
    let owner = Ownership {
        uid: write.owner.as_deref().map(resolve_user).transpose()?,
        gid: write.group.as_deref().map(resolve_group).transpose()?,
    };
    if let Some(parent) = write.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    if write.append {
        // Appending to what an earlier write of this render staged, else to the file.
        let mut contents = staged.pending(&write.path).map_or_else(
            || std::fs::read(&write.path).unwrap_or_default(),
            <[u8]>::to_vec,
        );
        contents.extend_from_slice(write.contents.as_bytes());
        let mode = write
            .perms
            .or_else(|| existing_mode(&write.path))
            .unwrap_or_else(|| default_mode(&contents));
        let file = fsutil::Staged::write(&write.path, &contents, mode, owner)?;
        staged.push(contents, file);
        return Ok(());
    }
    Ok(stage_if_changed(
        &write.path,
        write.contents.as_bytes().to_vec(),
        write.perms,
        owner,
        staged,
    )?)
}

/// Stages `contents` for `path` unless it already has these contents and mode.
fn stage_if_changed(
    path: &Path,
    contents: Vec<u8>,
    perms: Option<u32>,
    owner: Ownership,
    staged: &mut StagedFiles,
) -> std::io::Result<()> {
    if owner == Ownership::default()
        && staged.pending(path).is_none()
        && !needs_write(path, &contents, perms)
    {
        return Ok(());
    }
    let mode = perms
        .or_else(|| existing_mode(path))
        .unwrap_or_else(|| default_mode(&contents));
    let file = fsutil::Staged::write(path, &contents, mode, owner)?;
    staged.push(contents, file);
    Ok(())
}

/// The mode of a new file whose template gives none: 0600 when it holds a private key, else
/// 0644 as in Vault Agent.
fn default_mode(contents: &[u8]) -> u32 {
    let holds_key = contents
        .windows(b"PRIVATE KEY-----".len())
        .any(|window| window == b"PRIVATE KEY-----");
    if holds_key { 0o600 } else { 0o644 }
}

/// Whether `path` lacks these contents or this mode.
fn needs_write(path: &Path, contents: &[u8], perms: Option<u32>) -> bool {
    let current_mode = existing_mode(path);
    let mode = perms
        .or(current_mode)
        .unwrap_or_else(|| default_mode(contents));
    current_mode != Some(mode) || std::fs::read(path).map_or(true, |existing| existing != contents)
}

fn existing_mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn resolve_user(name: &str) -> anyhow::Result<u32> {
    if let Ok(uid) = name.parse() {
        return Ok(uid);
    }
    nix::unistd::User::from_name(name)
        .with_context(|| format!("cannot look up the user {name:?}"))?
        .map(|user| user.uid.as_raw())
        .ok_or_else(|| anyhow!("no user named {name:?}"))
}

fn resolve_group(name: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    nix::unistd::Group::from_name(name)
        .with_context(|| format!("cannot look up the group {name:?}"))?
        .map(|group| group.gid.as_raw())
        .ok_or_else(|| anyhow!("no group named {name:?}"))
}

/// Runs a template's command with its timeout; `true` when it exited 0 in time.
async fn run_command(command: &TemplateCommand, timeout: Duration) -> bool {
    let (program, args): (&str, Vec<&str>) = match command {
        TemplateCommand::Shell(line) => ("/bin/sh", vec!["-c", line.as_str()]),
        TemplateCommand::Argv(argv) => match argv.split_first() {
            Some((program, rest)) => (program.as_str(), rest.iter().map(String::as_str).collect()),
            None => return true,
        },
    };
    let child = tokio::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(output)) if output.status.success() => {
            tracing::info!(command = program, "template command succeeded");
            true
        }
        Ok(Ok(output)) => {
            tracing::warn!(
                command = program,
                status = %output.status,
                stderr = %String::from_utf8_lossy(&output.stderr).trim(),
                "template command failed"
            );
            false
        }
        Ok(Err(err)) => {
            tracing::warn!(command = program, error = %err, "cannot run the template command");
            false
        }
        Err(_) => {
            tracing::warn!(
                command = program,
                timeout_seconds = timeout.as_secs(),
                "template command timed out; killed"
            );
            false
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Stages and commits one file, as a render does for each of its files.
    fn replace_if_changed(
        path: &Path,
        contents: &[u8],
        perms: Option<u32>,
        owner: Ownership,
    ) -> anyhow::Result<bool> {
        let mut staged = StagedFiles::default();
        stage_if_changed(path, contents.to_vec(), perms, owner, &mut staged)?;
        staged.commit()
    }

    #[test]
    fn a_failed_write_replaces_no_file_of_the_render() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("tls.key");
        std::fs::write(&key, "old key").unwrap();
        let mut staged = StagedFiles::default();
        stage_if_changed(
            &key,
            b"new key".to_vec(),
            None,
            Ownership::default(),
            &mut staged,
        )
        .unwrap();
        // The certificate cannot be written (as on a full disk): the key stays the old one.
        let crt = dir.path().join("missing").join("tls.crt");
        assert!(
            stage_if_changed(
                &crt,
                b"new".to_vec(),
                None,
                Ownership::default(),
                &mut staged
            )
            .is_err()
        );
        drop(staged);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "old key");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn appends_in_one_render_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "a").unwrap();
        let mut staged = StagedFiles::default();
        for text in ["b", "c"] {
            let write = FileWrite {
                path: log.clone(),
                contents: text.to_owned(),
                owner: None,
                group: None,
                perms: None,
                append: true,
            };
            stage_write(&write, &mut staged).unwrap();
        }
        assert!(staged.commit().unwrap());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "abc");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn files_holding_a_key_default_to_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("tls.key");
        let pem = b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(replace_if_changed(&key, pem, None, Ownership::default()).unwrap());
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let crt = dir.path().join("tls.crt");
        assert!(
            replace_if_changed(
                &crt,
                b"-----BEGIN CERTIFICATE-----\n",
                None,
                Ownership::default()
            )
            .unwrap()
        );
        assert_eq!(
            std::fs::metadata(&crt).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Unchanged contents and mode: nothing written.
        assert!(
            !replace_if_changed(
                &crt,
                b"-----BEGIN CERTIFICATE-----\n",
                None,
                Ownership::default()
            )
            .unwrap()
        );
        // An explicit mode wins, and a mode change alone is a change.
        assert!(replace_if_changed(&key, pem, Some(0o644), Ownership::default()).unwrap());
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_dry_run_finds_the_seed_templates_pki_path_and_key_file_without_writing() {
        let seed = include_str!("../../etc/agent.hcl");
        let config = config::load_str("agent.hcl", seed).unwrap_or_else(|e| panic!("{e}"));
        let dry = dry_run(&config.templates[0]).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(dry.vault_calls.len(), 1, "{:?}", dry.vault_calls);
        assert!(matches!(
            &dry.vault_calls[0],
            Dependency::PkiCert { path, .. } if path == "pki_intermediate/issue/home"
        ));
        assert_eq!(dry.key_files, vec![PathBuf::from("/etc/nginx/ssl/tls.key")]);
    }
}
