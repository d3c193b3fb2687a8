//! The template runner: renders every `template {}` block and keeps it current.
//!
//! Each template is a slot with what it has fetched and when each piece is due again. The loop
//! renders the slots that are due ([`super::render`]'s passes, fetching what a pass lacks
//! through the [`Backend`]), writes a complete render's files together ([`fsutil::StagedFiles`]:
//! `writeToFile` targets first — the key — then the destination, each only when its content or
//! mode changed), runs the template's command ([`super::command`]), and sleeps until the next
//! due time, a SIGHUP or shutdown. A `pkiCert` certificate is kept until its renewal point
//! ([`super::pki`]); at start the destination file serves as its cache. A failed fetch leaves
//! every file as it is and is retried with backoff, faster as the current certificate nears
//! its end.
//!
//! Time: monotonic deadlines are tokio's [`Instant`] (a paused test runtime drives them), and
//! certificate validity is judged by the wall [`Clock`] passed in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backend::Backend;
use super::command;
use super::functions::{Dependency, FileWrite};
use super::metrics::TemplateMetrics;
use super::pki::{self, issued_value};
use super::render::{Pass, Passes, parse, source_text};
use crate::certs::CertInfo;
use crate::config::{self, TemplateSource};
use crate::fsutil::{self, Ownership, StagedFiles};
use crate::schedule::{self, Backoff, Clock};
use crate::telemetry::Readiness;
use crate::template::{RenderOptions, Template, Value};
use crate::timefmt;

/// The readiness condition this module owns.
pub(crate) const READY_CONDITION: &str = "templates";

/// One template and what it has fetched so far.
struct Slot {
    index: usize,
    config: config::Template,
    template: Arc<Template>,
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

    /// How long the template's soonest-expiring certificate has left at `now`.
    fn time_left(&self, now: SystemTime) -> Option<Duration> {
        self.certificates
            .values()
            .map(|info| info.not_after.duration_since(now).unwrap_or_default())
            .min()
    }
}

/// Renders every template and keeps it current.
pub(crate) struct TemplateRunner {
    slots: Vec<Slot>,
    backend: Box<dyn Backend>,
    settings: config::TemplateConfig,
    clock: Clock,
    min_backoff: Duration,
    metrics: TemplateMetrics,
    readiness: Readiness,
}

impl TemplateRunner {
    /// A runner for `templates` (already parsed once at load, parsed again here), fetching
    /// from `backend`; failures back off between `min_backoff` and `max_backoff`; certificate
    /// validity is judged by `clock`.
    pub(crate) fn new(
        templates: &config::Templates,
        backend: Box<dyn Backend>,
        (min_backoff, max_backoff): (Duration, Duration),
        metrics: TemplateMetrics,
        readiness: Readiness,
        clock: Clock,
    ) -> anyhow::Result<TemplateRunner> {
        let mut slots = Vec::with_capacity(templates.templates.len());
        for (index, template) in templates.templates.iter().enumerate() {
            let text = source_text(template)?;
            let parsed =
                parse(template, &text).map_err(|err| anyhow!("template[{index}]: {err}"))?;
            slots.push(Slot {
                index,
                config: template.clone(),
                template: Arc::new(parsed),
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
            settings: templates.settings.clone(),
            clock,
            min_backoff,
            metrics,
            readiness,
        })
    }

    /// Renders until shutdown; with `once`, returns after every template rendered once.
    pub(crate) async fn run(
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
                let now = self.clock.now();
                let wait = match slot.time_left(now) {
                    Some(left) => schedule::renewal_retry_wait(delay, left, floor),
                    None => delay,
                };
                slot.retry_at = Some(Instant::now() + wait);
                tracing::warn!(
                    template = slot.index,
                    destination = %slot.config.destination.display(),
                    error = format!("{err:#}"),
                    retry_in_seconds = wait.as_secs_f64(),
                    certificate_time_left_seconds = slot.time_left(now).map(|d| d.as_secs()),
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
                    Ok(template) => slot.template = Arc::new(template),
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
        let slot = &self.slots[position];
        let options = RenderOptions {
            error_on_missing_key: slot.config.error_on_missing_key,
        };
        // The parsed template is shared, not borrowed from the slot, so a fetch can update the
        // slot between passes.
        let template = Arc::clone(&slot.template);
        let mut passes = Passes::new(&template, options, slot.label());
        loop {
            match passes.next(&self.slots[position].fetched)? {
                Pass::Complete { output, writes } => {
                    return self.write(position, output, writes).await;
                }
                Pass::Missing(missing) => {
                    for dependency in missing {
                        self.fetch(position, dependency).await?;
                    }
                }
            }
        }
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
                        not_after = %timefmt::rfc3339(info.not_after),
                        renews_at = %timefmt::rfc3339(renew_at),
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
                let renew_at = self.renewal_point(&info, Some(self.clock.now()));
                tracing::info!(
                    template = self.slots[position].index,
                    serial = %info.serial,
                    subject = %info.subject_cn,
                    not_after = %timefmt::rfc3339(info.not_after),
                    renews_at = %timefmt::rfc3339(renew_at),
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

    /// When to renew `info` (jitter drawn now).
    fn renewal_point(&self, info: &CertInfo, issued_at: Option<SystemTime>) -> SystemTime {
        pki::renewal_point(
            info,
            issued_at,
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
            .duration_since(self.clock.now())
            .unwrap_or_default();
        slot.fetched.insert(dependency.clone(), value);
        slot.refresh_at
            .insert(dependency.clone(), now + wait.max(self.min_backoff));
        slot.certificates.insert(dependency.clone(), info);
    }

    /// The certificate in the destination file, if it can be reused ([`pki::reusable`]).
    fn reusable(
        &self,
        position: usize,
        dependency: &Dependency,
    ) -> Result<Option<(Value, CertInfo)>, String> {
        let slot = &self.slots[position];
        pki::reusable(
            &slot.config.destination,
            &slot.template,
            &slot.fetched,
            dependency,
            self.settings.lease_renewal_threshold,
            self.clock.now(),
        )
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
                .any(|w| w.append || fsutil::needs_write(&w.path, w.contents.as_bytes(), w.perms))
                || fsutil::needs_write(
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
        fsutil::stage_if_changed(
            destination,
            output.into_bytes(),
            slot.config.perms,
            Ownership {
                uid: slot.config.user,
                gid: slot.config.group,
            },
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
                let ok = command::run(&command, timeout).await;
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
            .or_else(|| fsutil::existing_mode(&write.path))
            .unwrap_or_else(|| fsutil::default_mode(&contents));
        let file = fsutil::Staged::write(&write.path, &contents, mode, owner)?;
        staged.push(contents, file);
        return Ok(());
    }
    Ok(fsutil::stage_if_changed(
        &write.path,
        write.contents.as_bytes().to_vec(),
        write.perms,
        owner,
        staged,
    )?)
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

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
