//! The template runner: renders every `template {}` block and keeps it current.
//!
//! Each template is a slot with what it has fetched and when each piece is due again. The loop
//! renders the slots that are due ([`super::render`]'s passes, fetching what a pass lacks
//! through the [`Backend`]), writes a complete render's files together ([`fsutil::StagedFiles`]:
//! `writeToFile` targets first — the key — then the destination, each only when its content or
//! mode changed), runs the template's command ([`super::command`]), and sleeps until the next
//! due time, a SIGHUP or shutdown. A `pkiCert` certificate is kept until its renewal point
//! ([`super::pki`]); at start the destination file serves as its cache. A `secret` answer with
//! a renewable lease is kept while `sys/leases/renew` extends it, and read again only when
//! Vault stops granting the full duration. A failed fetch leaves
//! every file as it is and is retried with backoff, faster as the current certificate nears
//! its end; so does a failed write (counted apart), except with `exit_after_auth`, where it
//! ends the agent. File work runs on the blocking pool, never on the event loop, so a stuck
//! volume cannot keep the agent from hearing SIGTERM.
//!
//! Time: monotonic deadlines are tokio's [`Instant`] (a paused test runtime drives them), and
//! certificate validity is judged by the wall [`Clock`] passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backend::Backend;
use super::command;
use super::functions::{Dependency, FileWrite};
use super::kv;
use super::metrics::TemplateMetrics;
use super::pki::{self, issued_value};
use super::render::{Pass, Passes, parse, source_text};
use super::response::secret_value;
use crate::certs::CertInfo;
use crate::config::{self, TemplateCommand, TemplateSource};
use crate::fsutil::{self, Ownership, StagedFiles};
use crate::schedule::{self, Backoff, Clock};
use crate::telemetry::Readiness;
use crate::template::{RenderOptions, Template, Value};
use crate::timefmt;
use crate::tls::pem;
use tracing::Instrument;

/// The readiness condition this module owns.
pub(crate) const READY_CONDITION: &str = "templates";

/// The longest wait between retries of a template with no valid certificate at stake (a secret
/// not written yet, a certificate that expired): consul-template's `max_backoff` for Vault,
/// one minute, so that a secret written a few minutes after the Pod started is picked up as
/// soon as OpenBao Agent picks it up (the auth method's `max_backoff`, 5 min by default, would
/// have waited up to five). A smaller `max_backoff` still bounds it.
const RETRY_WITHOUT_CERTIFICATE_MAX: Duration = Duration::from_secs(60);

/// A template's backoff for retries without a valid certificate at stake: from `min_backoff`,
/// doubling, to `max_backoff` or [`RETRY_WITHOUT_CERTIFICATE_MAX`], whichever is shorter.
fn retry_backoff(min_backoff: Duration, max_backoff: Duration) -> Backoff {
    Backoff::new(min_backoff, max_backoff.min(RETRY_WITHOUT_CERTIFICATE_MAX))
}

/// With `exit_on_retry_failure`: the wait before a failed template's first retry, doubling
/// after each (consul-template's retry function), up to [`EXIT_RETRY_MAX`].
const EXIT_RETRY_FIRST: Duration = Duration::from_millis(250);
const EXIT_RETRY_MAX: Duration = Duration::from_secs(60);

/// What the agent has fetched, shared by every template: one entry per dependency key, so
/// identical calls in different templates are one request and one answer.
#[derive(Default)]
struct Store {
    values: BTreeMap<Dependency, Value>,
    /// When each fetched dependency must be fetched again (monotonic, so a due check and the
    /// sleep that precedes it agree).
    refresh_at: BTreeMap<Dependency, Instant>,
    /// The certificate behind a dependency (a `pkiCert`, or a `secret` write that issued one)
    /// and when it renews. Kept when the dependency is due, until a new one replaces it.
    certificates: BTreeMap<Dependency, (CertInfo, SystemTime)>,
    /// The renewable lease behind a `secret` answer (database credentials...): when it is due,
    /// the lease is renewed and the answer kept, as consul-template does, rather than read
    /// again (which would mint new credentials).
    leases: BTreeMap<Dependency, Lease>,
}

/// A renewable lease of a `secret` answer.
struct Lease {
    id: String,
    /// What each renewal asks for: the lease's first duration, as Vault's lifetime watcher asks.
    increment: Duration,
    /// Vault granted less than asked (the lease's max TTL is near): no more renewals; the
    /// answer is read again when next due.
    last: bool,
}

/// The `env_template` variables of a complete render, by name: what the `exec` child runs with.
pub(crate) type EnvVars = BTreeMap<String, String>;

/// One template and what it last used.
struct Slot {
    index: usize,
    /// An `env_template`'s variable name: its output goes there, not to a file (its `config`
    /// has an empty destination, which is also what its `pkiCert` calls are keyed by, so that
    /// the certificate and key variables of one call come from one issue, as in Vault Agent).
    env: Option<String>,
    config: config::Template,
    template: Arc<Template>,
    /// The dependencies its last render reached.
    uses: BTreeSet<Dependency>,
    reuse_checked: bool,
    /// Rendered since start or the last SIGHUP.
    rendered: bool,
    /// Complete renders since start.
    successful_renders: u64,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// Failures since its last complete render.
    failures: u32,
    /// The span its lines are logged in: `template{destination=...}` (at the error level, so
    /// every enabled line of the template is inside it).
    span: tracing::Span,
}

impl Slot {
    fn label(&self) -> String {
        match &self.env {
            Some(name) => format!("env_template[{name}]"),
            None => format!(
                "template[{}] ({})",
                self.index,
                self.config.destination.display()
            ),
        }
    }

    /// The soonest moment this slot needs work.
    fn next_due(&self, store: &Store) -> Option<Instant> {
        self.uses
            .iter()
            .filter_map(|d| store.refresh_at.get(d))
            .copied()
            .chain(self.retry_at)
            .min()
    }

    /// Whether the slot needs rendering at `now`: not rendered yet (and no retry pending), an
    /// answer it used is due for renewal, or its retry time came. (An answer it used that is missing after a failed
    /// fetch waits for the retry time, so the backoff holds whatever other templates do.)
    fn is_due(&self, now: Instant, store: &Store) -> bool {
        (!self.rendered && self.retry_at.is_none())
            || self.next_due(store).is_some_and(|due| due <= now)
    }

    /// How long the template's soonest-expiring certificate has left at `now`.
    fn time_left(&self, now: SystemTime, store: &Store) -> Option<Duration> {
        self.uses
            .iter()
            .filter_map(|d| store.certificates.get(d))
            .map(|(info, _)| info.not_after.duration_since(now).unwrap_or_default())
            .min()
    }
}

/// Why a group of templates was not written.
struct Failure {
    /// The template that failed.
    position: usize,
    /// What went wrong.
    error: String,
    /// Its files could not be written (rather than rendered or fetched).
    writing: bool,
    /// Vault's data could not be fetched (rather than the template failing on it): what
    /// `exit_on_retry_failure` retries before it ends the agent.
    fetching: bool,
}

/// A slot's complete render, not yet written.
struct Rendered {
    output: String,
    writes: Vec<FileWrite>,
}

/// Renders every template and keeps it current.
pub(crate) struct TemplateRunner {
    slots: Vec<Slot>,
    store: Store,
    mounts: kv::Mounts,
    backend: Box<dyn Backend>,
    settings: config::TemplateConfig,
    /// `vault.retry.num_retries`: the retries of a failing template before
    /// `exit_on_retry_failure` ends the agent.
    retries: u32,
    clock: Clock,
    min_backoff: Duration,
    max_backoff: Duration,
    metrics: TemplateMetrics,
    readiness: Readiness,
    /// `exit_after_auth`: every template once; a failed write ends the agent.
    once: bool,
    /// The `env_template` values last rendered, and where a complete set goes.
    env_values: EnvVars,
    env_tx: Option<watch::Sender<Option<Arc<EnvVars>>>>,
    /// What a template's command finds in its environment besides the agent's: the Vault
    /// connection (`VAULT_ADDR`...), as consul-template gives it.
    command_env: Vec<(String, String)>,
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
        let mut slots = Vec::with_capacity(templates.templates.len() + templates.env.len());
        let env_templates = templates
            .env
            .iter()
            .map(|env| (Some(env.name.clone()), env.as_template()));
        let all = templates
            .templates
            .iter()
            .map(|template| (None, template.clone()))
            .chain(env_templates);
        for (index, (env, template)) in all.enumerate() {
            let text = source_text(&template)?;
            let parsed = parse(&template, &text).map_err(|err| match &env {
                Some(name) => anyhow!("env_template[{name}]: {err}"),
                None => anyhow!("template[{index}]: {err}"),
            })?;
            let span = match &env {
                Some(name) => {
                    tracing::error_span!(target: "pki_sidecar", "env_template", name = %name)
                }
                None => tracing::error_span!(
                    target: "pki_sidecar",
                    "template",
                    destination = %template.destination.display()
                ),
            };
            slots.push(Slot {
                index,
                // No file to take a certificate from at start.
                reuse_checked: env.is_some(),
                env,
                config: template,
                template: Arc::new(parsed),
                uses: BTreeSet::new(),
                rendered: false,
                successful_renders: 0,
                backoff: retry_backoff(min_backoff, max_backoff),
                retry_at: None,
                failures: 0,
                span,
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
            store: Store::default(),
            mounts: kv::Mounts::default(),
            backend,
            settings: templates.settings.clone(),
            retries: templates.retries,
            clock,
            min_backoff,
            max_backoff,
            metrics,
            readiness,
            once: false,
            env_values: EnvVars::new(),
            env_tx: None,
            command_env: Vec::new(),
        })
    }

    /// Sets what template commands find in their environment besides the agent's.
    pub(crate) fn set_command_env(&mut self, env: Vec<(String, String)>) {
        self.command_env = env;
    }

    /// Sends each complete, changed set of `env_template` values to `tx` (the supervisor of
    /// the `exec` child).
    pub(crate) fn set_env_sink(&mut self, tx: watch::Sender<Option<Arc<EnvVars>>>) {
        self.env_tx = Some(tx);
    }

    /// Renders until shutdown; with `once`, returns after every template rendered once.
    pub(crate) async fn run(
        mut self,
        shutdown: &CancellationToken,
        mut reloads: watch::Receiver<u64>,
        once: bool,
    ) -> anyhow::Result<()> {
        self.once = once;
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
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                result = self.round() => result,
            };
            result?;
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
            let wake = self
                .slots
                .iter()
                .filter_map(|slot| slot.next_due(&self.store))
                .min();
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

    /// Renders every due template, then writes them in groups: templates that used one
    /// answer are written together (all or none), so a certificate and its key split across
    /// templates always come from the same response.
    async fn round(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut due: Vec<usize> = (0..self.slots.len())
            .filter(|&position| self.slots[position].is_due(now, &self.store))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        // A template sharing an answer with a due one renders with it (from the same data,
        // so unchanged files are not rewritten): templates that share answers are written
        // together, whichever of them was due.
        let mut shared: BTreeSet<Dependency> = due
            .iter()
            .flat_map(|&position| self.slots[position].uses.iter().cloned())
            .collect();
        loop {
            let joining: Vec<usize> = (0..self.slots.len())
                .filter(|position| !due.contains(position))
                .filter(|&position| !self.slots[position].uses.is_disjoint(&shared))
                .collect();
            if joining.is_empty() {
                break;
            }
            for position in joining {
                shared.extend(self.slots[position].uses.iter().cloned());
                due.push(position);
            }
        }
        due.sort_unstable();
        // Answers past their refresh time are dropped first, so that every template using
        // one sees the same new answer.
        let stale: Vec<Dependency> = self
            .store
            .refresh_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(d, _)| d.clone())
            .collect();
        for dependency in stale {
            if self.renew_lease(&dependency).await {
                continue;
            }
            tracing::info!(%dependency, "due for renewal");
            self.store.values.remove(&dependency);
            self.store.refresh_at.remove(&dependency);
            self.store.leases.remove(&dependency);
        }
        let mut results: BTreeMap<usize, anyhow::Result<Rendered>> = BTreeMap::new();
        for &position in &due {
            let span = self.slots[position].span.clone();
            let (result, used) = self.render(position).instrument(span).await;
            self.slots[position].uses = used;
            results.insert(position, result);
        }
        // The commands of the templates whose files changed, run once the round's files are
        // all written.
        let mut commands: Vec<(usize, TemplateCommand, Duration)> = Vec::new();
        for group in groups(&due, |position| &self.slots[position].uses) {
            let mut renders = Vec::with_capacity(group.len());
            let mut failure = None;
            for &position in &group {
                match results.remove(&position) {
                    Some(Ok(rendered)) => renders.push((position, rendered)),
                    Some(Err(err)) => {
                        let fetching = err.chain().any(|cause| {
                            cause.downcast_ref::<crate::vault::VaultError>().is_some()
                        });
                        failure.get_or_insert((position, format!("{err:#}"), fetching));
                    }
                    None => unreachable!("every due slot was rendered once"),
                }
            }
            let outcome = match failure {
                Some((position, error, fetching)) => Err(Failure {
                    position,
                    error,
                    writing: false,
                    fetching,
                }),
                None => {
                    let written = self.write_group(renders).await;
                    for _ in &group {
                        self.metrics.write(written.is_ok());
                    }
                    written
                        .map(|ran| commands.extend(ran))
                        .map_err(|err| Failure {
                            position: group[0],
                            error: format!("{err:#}"),
                            writing: true,
                            fetching: false,
                        })
                }
            };
            self.after_group(&group, outcome)?;
        }
        self.run_commands(commands).await
    }

    /// Runs the commands of a round's changed templates, each distinct one once (the injector's
    /// certificate and key templates share their `command`: one reload, as in OpenBao Agent),
    /// in the templates' order. With `exit_on_retry_failure` a failing command ends the agent,
    /// as in Vault Agent (its files stay written).
    async fn run_commands(
        &mut self,
        commands: Vec<(usize, TemplateCommand, Duration)>,
    ) -> anyhow::Result<()> {
        let mut ran: Vec<TemplateCommand> = Vec::with_capacity(commands.len());
        for (position, command, timeout) in commands {
            if ran.contains(&command) {
                continue;
            }
            let slot = &self.slots[position];
            let (span, index, label) = (slot.span.clone(), slot.index, slot.label());
            let ok = command::run(&command, timeout, &self.command_env)
                .instrument(span.clone())
                .await;
            self.metrics.command(ok);
            ran.push(command);
            if ok {
                continue;
            }
            if self.settings.exit_on_retry_failure {
                return Err(anyhow!(
                    "{label}: its command failed (its output is above) and \
                     template_config.exit_on_retry_failure is set; the files stay written. Fix \
                     the command, or unset exit_on_retry_failure to log such failures and go on"
                ));
            }
            span.in_scope(|| {
                tracing::warn!(
                    template = index,
                    "the template's command failed; the files stay written"
                )
            });
        }
        Ok(())
    }

    /// Records a group's outcome and plans the retry of a failure (for every template of the
    /// group: they must write together).
    fn after_group(&mut self, group: &[usize], outcome: Result<(), Failure>) -> anyhow::Result<()> {
        let floor = self.min_backoff;
        match outcome {
            Ok(()) => {
                for &position in group {
                    self.metrics.render(true);
                    let slot = &mut self.slots[position];
                    slot.backoff.reset();
                    slot.retry_at = None;
                    slot.failures = 0;
                }
                Ok(())
            }
            Err(Failure {
                position: failed,
                error,
                writing,
                fetching,
            }) => {
                let failed_label = self.slots[failed].label();
                if writing && self.once {
                    for _ in group {
                        self.metrics.render(false);
                    }
                    return Err(anyhow!(
                        "{failed_label}: cannot write its files, and exit_after_auth is set: \
                         {error}"
                    ));
                }
                if self.settings.exit_on_retry_failure && !fetching {
                    // The template itself fails on the data it has: as in Vault Agent, no
                    // retry makes it render.
                    return Err(anyhow!(
                        "{failed_label} failed and template_config.exit_on_retry_failure is \
                         set: {error}"
                    ));
                }
                if self.settings.exit_on_retry_failure {
                    // Tried again `vault.retry.num_retries` times first, 250 ms apart and
                    // doubling, as Vault Agent's template engine retries (a secret written a
                    // moment after the agent starts is then rendered, not fatal).
                    let slot = &mut self.slots[failed];
                    slot.failures += 1;
                    if slot.failures > self.retries {
                        return Err(anyhow!(
                            "{failed_label} failed {} times and \
                             template_config.exit_on_retry_failure is set: {error}",
                            slot.failures
                        ));
                    }
                    let wait = EXIT_RETRY_FIRST
                        .saturating_mul(1 << (slot.failures - 1).min(8))
                        .min(EXIT_RETRY_MAX);
                    for &position in group {
                        self.metrics.render(false);
                        self.slots[position].retry_at = Some(Instant::now() + wait);
                    }
                    let slot = &self.slots[failed];
                    let _in_template = slot.span.enter();
                    tracing::warn!(
                        template = slot.index,
                        error,
                        attempt = slot.failures,
                        of = self.retries,
                        retry_in_seconds = crate::timefmt::log_seconds(wait),
                        "rendering failed; trying again before exit_on_retry_failure ends the agent"
                    );
                    return Ok(());
                }
                let now = self.clock.now();
                for &position in group {
                    self.metrics.render(false);
                    let time_left = self.slots[position].time_left(now, &self.store);
                    let slot = &mut self.slots[position];
                    let wait = schedule::render_retry_wait(
                        &mut slot.backoff,
                        time_left,
                        (floor, self.max_backoff),
                        fastrand::f64(),
                    );
                    slot.retry_at = Some(Instant::now() + wait);
                    let _in_template = slot.span.enter();
                    if position == failed {
                        tracing::warn!(
                            template = slot.index,
                            error,
                            retry_in_seconds = crate::timefmt::log_seconds(wait),
                            certificate_time_left_seconds = time_left.map(|d| d.as_secs()),
                            "rendering failed; the files on disk are kept"
                        );
                    } else {
                        tracing::warn!(
                            template = slot.index,
                            shares_data_with = %failed_label,
                            retry_in_seconds = crate::timefmt::log_seconds(wait),
                            "not written: a template using the same Vault answer failed; the \
                             files on disk are kept"
                        );
                    }
                }
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

    /// Renders slot `position` to completion, fetching what it lacks; returns the render and
    /// every dependency it reached (also when it failed).
    async fn render(
        &mut self,
        position: usize,
    ) -> (anyhow::Result<Rendered>, BTreeSet<Dependency>) {
        let slot = &self.slots[position];
        let options = RenderOptions {
            error_on_missing_key: slot.config.error_on_missing_key,
        };
        // The parsed template is shared, not borrowed from the slot, so a fetch can update the
        // runner between passes.
        let template = Arc::clone(&slot.template);
        let destination = slot.config.destination.clone();
        let mut passes = Passes::new(&template, options, slot.label(), &destination);
        loop {
            match passes.next(&self.store.values) {
                Ok(Pass::Complete { output, writes }) => {
                    return (Ok(Rendered { output, writes }), passes.used);
                }
                Ok(Pass::Missing(missing)) => {
                    for dependency in missing {
                        if let Err(err) = self.fetch(position, dependency).await {
                            return (Err(err), passes.used);
                        }
                    }
                }
                Err(err) => return (Err(err), passes.used),
            }
        }
    }

    /// Gets one dependency: from the destination file at start when still good, else Vault.
    async fn fetch(&mut self, position: usize, dependency: Dependency) -> anyhow::Result<()> {
        if matches!(dependency, Dependency::PkiCert { .. }) && !self.slots[position].reuse_checked {
            self.slots[position].reuse_checked = true;
            match self.reusable(position, &dependency).await {
                Ok(Some((value, info))) => {
                    let renew_at = self.renewal_point(&info, None);
                    let slot = &self.slots[position];
                    tracing::info!(
                        template = slot.index,
                        serial = %info.serial,
                        not_after = %timefmt::rfc3339(info.not_after),
                        renews_at = %timefmt::rfc3339(renew_at),
                        "reusing the certificate on disk"
                    );
                    self.publish_certificate(&dependency, value, info, renew_at);
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
            Dependency::PkiCert { path, args, .. } => {
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
                self.publish_certificate(&dependency, value, info, renew_at);
            }
            Dependency::Secret { path, args } => {
                let response = self.secret_request(&dependency, path, args).await?;
                self.publish_secret(position, &dependency, &response);
            }
            Dependency::List { path } => {
                let list_path = match self.mounts.resolve(self.backend.as_ref(), path).await {
                    Ok(mount) if mount.kv2 => kv::metadata_path(path, &mount),
                    Ok(_) | Err(kv::Unknown::NoEndpoint) => path.clone(),
                    Err(kv::Unknown::Failed(reason)) => {
                        tracing::debug!(%dependency, reason, "mount lookup failed; assuming KV v1");
                        path.clone()
                    }
                };
                let response = self
                    .backend
                    .request(
                        "secret",
                        http::Method::GET,
                        &format!("{list_path}?list=true"),
                        None,
                    )
                    .await
                    .with_context(|| format!("{dependency}"))?;
                let mut keys: Vec<String> = match response.pointer("/data/keys") {
                    None | Some(serde_json::Value::Null) => Vec::new(),
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .map(|item| {
                            item.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| anyhow!("{dependency}: non-string in list"))
                        })
                        .collect::<anyhow::Result<_>>()?,
                    Some(_) => bail!(
                        "{dependency}: unexpected response from LIST {list_path}: data.keys is \
                         not a list of names"
                    ),
                };
                keys.sort();
                let value = Value::List(keys.into_iter().map(Value::String).collect());
                let refresh = self.settings.static_secret_render_interval;
                self.store.values.insert(dependency.clone(), value);
                self.store
                    .refresh_at
                    .insert(dependency, Instant::now() + refresh);
            }
        }
        Ok(())
    }

    /// A `secret` read or write, on the KV v2 path where the mount is KV v2.
    async fn secret_request(
        &mut self,
        dependency: &Dependency,
        path: &str,
        args: &[(String, String)],
    ) -> anyhow::Result<serde_json::Value> {
        let (raw, query) = match path.split_once('?') {
            Some((raw, query)) => (raw, Some(query)),
            None => (path, None),
        };
        let mount = match self.mounts.resolve(self.backend.as_ref(), raw).await {
            Ok(mount) => Some(mount),
            Err(kv::Unknown::NoEndpoint) => None,
            Err(kv::Unknown::Failed(reason)) => {
                // consul-template: a read warns and assumes KV v1; a write says nothing.
                if args.is_empty() {
                    tracing::warn!(%dependency, reason, "mount lookup failed; assuming KV v1");
                } else {
                    tracing::debug!(%dependency, reason, "mount lookup failed; assuming KV v1");
                }
                None
            }
        };
        let kv2 = mount.filter(|m| m.kv2);
        let target = match &kv2 {
            Some(mount) => kv::data_path(raw, mount),
            None => raw.to_string(),
        };
        let (method, target, body) = if args.is_empty() {
            let target = match query {
                Some(query) => format!("{target}?{query}"),
                None => target,
            };
            (http::Method::GET, target, None)
        } else {
            let fields = pairs_to_json(args);
            let body = if kv2.is_some() {
                serde_json::json!({ "data": fields })
            } else {
                fields
            };
            (http::Method::PUT, target, Some(body))
        };
        let response = self
            .backend
            .request("secret", method, &target, body)
            .await
            .with_context(|| format!("{dependency}"))?;
        if kv2.is_some() && (response.is_null() || kv::deleted(&response)) {
            bail!(
                "no secret exists at {target} (the KV v2 secret is missing or its version \
                 deleted: check the template's path, e.g. `bao kv get {raw}`)"
            );
        }
        Ok(response)
    }

    /// Stores a `secret` answer and plans its refresh: a certificate without a lease renews
    /// like a `pkiCert` (as consul-template does for a `pki/issue` write); a lease at 2/3 of
    /// it; anything else after `static_secret_render_interval`.
    fn publish_secret(
        &mut self,
        position: usize,
        dependency: &Dependency,
        response: &serde_json::Value,
    ) {
        let value = secret_value(response);
        let lease_id = response
            .get("lease_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let certificate = response
            .pointer("/data/certificate")
            .and_then(serde_json::Value::as_str)
            .filter(|_| lease_id.is_empty())
            .and_then(|text| pem::certificates(text.as_bytes()).ok())
            .and_then(|chain| chain.into_iter().next())
            .and_then(|der| CertInfo::parse(&der).ok());
        if let Some(info) = certificate {
            self.metrics.issue(true);
            let renew_at = self.renewal_point(&info, Some(self.clock.now()));
            tracing::info!(
                template = self.slots[position].index,
                %dependency,
                serial = %info.serial,
                subject = %info.subject_cn,
                not_after = %timefmt::rfc3339(info.not_after),
                renews_at = %timefmt::rfc3339(renew_at),
                "issued a certificate"
            );
            self.publish_certificate(dependency, value, info, renew_at);
            return;
        }
        // As consul-template: an answer carrying a token (`auth`) lives as long as the token.
        let lease = response
            .pointer("/auth/lease_duration")
            .and_then(serde_json::Value::as_u64)
            .filter(|seconds| *seconds > 0)
            .or_else(|| {
                response
                    .get("lease_duration")
                    .and_then(serde_json::Value::as_u64)
            })
            .unwrap_or(0);
        let refresh = if lease > 0 {
            schedule::token_renewal_delay(crate::vault::lease(lease), fastrand::f64())
        } else {
            self.settings.static_secret_render_interval
        };
        let renewable = response
            .get("renewable")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if renewable && !lease_id.is_empty() && response.get("auth").is_none_or(|a| a.is_null()) {
            self.store.leases.insert(
                dependency.clone(),
                Lease {
                    id: lease_id.to_string(),
                    increment: crate::vault::lease(lease),
                    last: false,
                },
            );
        } else {
            self.store.leases.remove(dependency);
        }
        self.store.values.insert(dependency.clone(), value);
        self.store
            .refresh_at
            .insert(dependency.clone(), Instant::now() + refresh);
    }

    /// Renews the lease behind a due `secret` answer, if it has one that can still be renewed
    /// (`sys/leases/renew`): `true` when the answer stays, its next renewal planned at 2/3 of
    /// what Vault granted. When Vault grants less than asked (the max TTL is near), that
    /// renewal is the last: the answer is read again at 2/3 of the rest, before it ends. A
    /// failed renewal (the lease revoked or expired) means a fresh read now.
    async fn renew_lease(&mut self, dependency: &Dependency) -> bool {
        let Some(lease) = self.store.leases.get(dependency) else {
            return false;
        };
        if lease.last {
            return false;
        }
        let body = serde_json::json!({
            "lease_id": lease.id,
            "increment": lease.increment.as_secs(),
        });
        let increment = lease.increment;
        let renewed = self
            .backend
            .request(
                "lease_renew",
                http::Method::PUT,
                "sys/leases/renew",
                Some(body),
            )
            .await;
        let granted = match renewed {
            Ok(response) => response
                .get("lease_duration")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            Err(err) => {
                tracing::warn!(
                    %dependency,
                    error = format!("{err:#}"),
                    "cannot renew the lease; reading the secret again"
                );
                return false;
            }
        };
        if granted == 0 {
            return false;
        }
        let granted = crate::vault::lease(granted);
        let last = granted < increment;
        let next = schedule::token_renewal_delay(granted, fastrand::f64());
        if let Some(lease) = self.store.leases.get_mut(dependency) {
            lease.last = last;
        }
        self.store
            .refresh_at
            .insert(dependency.clone(), Instant::now() + next);
        tracing::info!(
            %dependency,
            granted_seconds = granted.as_secs(),
            next_seconds = crate::timefmt::log_seconds(next),
            "lease renewed{}",
            if last {
                "; its max TTL is near: the secret is read again next time"
            } else {
                ""
            }
        );
        true
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
        dependency: &Dependency,
        value: Value,
        info: CertInfo,
        renew_at: SystemTime,
    ) {
        // Never sooner than min_backoff from now, whatever the certificate says: no tight loop
        // even for a certificate that arrives already due (a clock far off, say).
        let now = Instant::now();
        let wait = renew_at
            .duration_since(self.clock.now())
            .unwrap_or_default();
        self.store.values.insert(dependency.clone(), value);
        self.store
            .refresh_at
            .insert(dependency.clone(), now + wait.max(self.min_backoff));
        self.store
            .certificates
            .insert(dependency.clone(), (info, renew_at));
    }

    /// The certificate in the destination file, if it can be reused ([`pki::reusable`]); the
    /// files are read off the runtime's thread.
    async fn reusable(
        &self,
        position: usize,
        dependency: &Dependency,
    ) -> Result<Option<(Value, CertInfo)>, String> {
        let slot = &self.slots[position];
        let destination = slot.config.destination.clone();
        let template = Arc::clone(&slot.template);
        let fetched = self.store.values.clone();
        let dependency = dependency.clone();
        let threshold = self.settings.lease_renewal_threshold;
        let now = self.clock.now();
        off_thread(move || {
            pki::reusable(
                &destination,
                &template,
                &fetched,
                &dependency,
                threshold,
                now,
            )
        })
        .await
        .map_err(|err| format!("{err:#}"))?
    }

    /// Writes a group's complete renders together: every file is staged before any is
    /// renamed, files holding a private key are renamed first, then the others; each
    /// template whose files changed runs its command.
    async fn write_group(
        &mut self,
        renders: Vec<(usize, Rendered)>,
    ) -> anyhow::Result<Vec<(usize, TemplateCommand, Duration)>> {
        // `wait { min }`: a change after the first render is held back this long, as
        // consul-template's quiescence timer does (here nothing can arrive meanwhile, so
        // `max` never binds).
        let holds: Vec<Option<(Duration, PathBuf, Option<u32>)>> = renders
            .iter()
            .map(|(position, _)| {
                let slot = &self.slots[*position];
                let wait = slot.config.wait.filter(|w| !w.min.is_zero())?;
                (slot.successful_renders > 0)
                    .then(|| (wait.min, slot.config.destination.clone(), slot.config.perms))
            })
            .collect();
        let (renders, hold) = if holds.iter().any(Option::is_some) {
            // Looking at the files is file work: off the runtime's thread, like the writes.
            off_thread(move || {
                let hold = renders
                    .iter()
                    .zip(&holds)
                    .filter_map(|((_, rendered), hold)| {
                        let (min, destination, perms) = hold.as_ref()?;
                        let will_change = rendered.writes.iter().any(|w| {
                            w.append || fsutil::needs_write(&w.path, w.contents.as_bytes(), w.perms)
                        }) || fsutil::needs_write(
                            destination,
                            rendered.output.as_bytes(),
                            *perms,
                        );
                        will_change.then_some(*min)
                    })
                    .max();
                (renders, hold)
            })
            .await?
        } else {
            (renders, None)
        };
        if let Some(hold) = hold {
            tracing::debug!(
                wait_seconds = crate::timefmt::log_seconds(hold),
                "waiting before writing the change (wait.min)"
            );
            tokio::time::sleep(hold).await;
        }
        // Every file is written in full before any replaces its destination, so a write that
        // fails (a full disk) leaves the old key with the old certificate rather than a new
        // key with an old certificate.
        let mut files: Vec<(usize, Planned)> = Vec::new();
        let mut env_outputs: Vec<(usize, String)> = Vec::new();
        for (position, rendered) in renders {
            let slot = &self.slots[position];
            let Rendered { output, writes } = rendered;
            for write in writes {
                files.push((position, Planned::Write(write)));
            }
            if slot.env.is_some() {
                env_outputs.push((position, output));
                continue;
            }
            files.push((
                position,
                Planned::Destination {
                    output,
                    path: slot.config.destination.clone(),
                    perms: slot.config.perms,
                    owner: Ownership {
                        uid: slot.config.user,
                        gid: slot.config.group,
                    },
                    create_dirs: slot.config.create_dest_dirs,
                    backup: slot.config.backup,
                },
            ));
        }
        // Key files first: a reader that sees the new certificate finds the new key already.
        let key_paths: BTreeSet<PathBuf> = files
            .iter()
            .filter(|(_, planned)| planned.holds_key())
            .map(|(_, planned)| planned.path().to_path_buf())
            .collect();
        files.sort_by_key(|(_, planned)| !key_paths.contains(planned.path()));
        // The files each template's certificate lands in (its leaf first in the file), for the
        // metrics: by the file, not the template, so the agent's `cert` label is the one the
        // proxy that serves that file uses.
        let certificate_files: Vec<(usize, PathBuf, String)> = files
            .iter()
            .filter_map(|(position, planned)| {
                let fingerprint = planned.leaf_fingerprint()?;
                Some((*position, planned.path().to_path_buf(), fingerprint))
            })
            .collect();
        // The disk may hang (a stuck network volume): the work runs off the runtime's thread,
        // so a stop signal is still heard and ends the agent within its grace.
        let changed = off_thread(move || write_files(&files)).await??;
        self.take_env_outputs(env_outputs);
        let mut commands = Vec::new();
        for (position, count) in changed {
            if self.slots[position].env.is_some() {
                continue;
            }
            let slot = &mut self.slots[position];
            slot.successful_renders += 1;
            slot.rendered = true;
            for (_, file, fingerprint) in certificate_files
                .iter()
                .filter(|(written, _, _)| *written == position)
            {
                let issued = slot
                    .uses
                    .iter()
                    .filter_map(|dependency| self.store.certificates.get(dependency))
                    .find(|(info, _)| info.fingerprint_sha256 == *fingerprint);
                if let Some((info, renew_at)) = issued {
                    self.metrics.certificate(file, info, *renew_at);
                }
            }
            let span = slot.span.clone();
            if count == 0 {
                span.in_scope(|| {
                    tracing::debug!(template = slot.index, "rendered; nothing changed on disk")
                });
                continue;
            }
            span.in_scope(|| tracing::info!(template = slot.index, files = count, "rendered"));
            if let Some(command) = slot.config.command.clone() {
                commands.push((position, command, slot.config.command_timeout));
            }
        }
        Ok(commands)
    }
}

impl TemplateRunner {
    /// Records the `env_template` values of a written group; once every one has a value, a set
    /// that differs from the last one sent goes to the supervisor.
    fn take_env_outputs(&mut self, outputs: Vec<(usize, String)>) {
        if outputs.is_empty() {
            return;
        }
        let mut changed = false;
        for (position, output) in outputs {
            let fingerprint = leaf_fingerprint(output.as_bytes());
            let slot = &mut self.slots[position];
            slot.successful_renders += 1;
            slot.rendered = true;
            let Some(name) = slot.env.clone() else {
                continue;
            };
            if let Some(fingerprint) = fingerprint {
                let issued = slot
                    .uses
                    .iter()
                    .filter_map(|dependency| self.store.certificates.get(dependency))
                    .find(|(info, _)| info.fingerprint_sha256 == fingerprint);
                if let Some((info, renew_at)) = issued {
                    self.metrics.certificate(Path::new(&name), info, *renew_at);
                }
            }
            let span = slot.span.clone();
            if self.env_values.get(&name) == Some(&output) {
                span.in_scope(|| tracing::debug!("rendered; the value did not change"));
            } else {
                span.in_scope(|| tracing::info!("rendered a new value"));
                self.env_values.insert(name, output);
                changed = true;
            }
        }
        let all = self.slots.iter().filter(|s| s.env.is_some()).count();
        if changed
            && self.env_values.len() == all
            && let Some(tx) = &self.env_tx
        {
            tx.send_replace(Some(Arc::new(self.env_values.clone())));
        }
    }
}

/// Runs file work on the blocking pool and waits for it. Dropping the wait (shutdown) leaves
/// the work to finish or to die with the process.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| anyhow!("the file work stopped: {err}"))
}

/// Stages every file of `files` (in order), then renames them all; how many files of each
/// template changed (every template present, with 0 when none did).
fn write_files(files: &[(usize, Planned)]) -> anyhow::Result<BTreeMap<usize, usize>> {
    let mut staged = StagedFiles::default();
    for (_, planned) in files {
        match planned {
            Planned::Write(write) => stage_write(write, &mut staged)
                .with_context(|| format!("writeToFile {}", write.path.display()))?,
            Planned::Destination {
                output,
                path,
                perms,
                owner,
                create_dirs,
                backup,
            } => {
                if *create_dirs
                    && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("cannot create the directory {}", parent.display())
                    })?;
                }
                fsutil::stage_if_changed(
                    path,
                    output.clone().into_bytes(),
                    *perms,
                    *owner,
                    &mut staged,
                )
                .with_context(|| format!("cannot write {}", path.display()))?;
                if *backup && staged.pending(path).is_some() {
                    back_up(path)?;
                }
            }
        }
    }
    let mut changed: BTreeMap<usize, usize> = BTreeMap::new();
    for (position, planned) in files {
        let counted = changed.entry(*position).or_default();
        if staged.pending(planned.path()).is_some() {
            *counted += 1;
        }
    }
    staged.commit()?;
    Ok(changed)
}

/// One file of a render.
enum Planned {
    /// A `writeToFile`.
    Write(FileWrite),
    /// The template's destination, with its rendered text.
    Destination {
        output: String,
        path: PathBuf,
        perms: Option<u32>,
        owner: Ownership,
        create_dirs: bool,
        backup: bool,
    },
}

impl Planned {
    fn path(&self) -> &Path {
        match self {
            Planned::Write(write) => &write.path,
            Planned::Destination { path, .. } => path,
        }
    }

    fn text(&self) -> &[u8] {
        match self {
            Planned::Write(write) => write.contents.as_bytes(),
            Planned::Destination { output, .. } => output.as_bytes(),
        }
    }

    fn holds_key(&self) -> bool {
        fsutil::holds_private_key(self.text())
    }

    /// The SHA-256 of the file's first certificate, if it starts a chain (a leaf, or a CA
    /// bundle: the caller keeps only the fingerprints it issued).
    fn leaf_fingerprint(&self) -> Option<String> {
        leaf_fingerprint(self.text())
    }
}

/// The SHA-256 of the first certificate of `text`, if it holds one.
fn leaf_fingerprint(text: &[u8]) -> Option<String> {
    if !text
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return None;
    }
    let first = crate::tls::pem::certificates(text)
        .ok()?
        .into_iter()
        .next()?;
    Some(
        crate::certs::CertInfo::parse(&first)
            .ok()?
            .fingerprint_sha256,
    )
}

impl Drop for Planned {
    fn drop(&mut self) {
        // Usually a private key somewhere in it: wiped, not just freed.
        if let Planned::Destination { output, .. } = self {
            zeroize::Zeroize::zeroize(output);
        }
    }
}

/// The due templates in groups that must be written together: two templates are in one
/// group when they used a common dependency (transitively). Groups come in slot order.
fn groups<'a>(due: &[usize], uses: impl Fn(usize) -> &'a BTreeSet<Dependency>) -> Vec<Vec<usize>> {
    let mut groups: Vec<(BTreeSet<Dependency>, Vec<usize>)> = Vec::new();
    for &position in due {
        let mine = uses(position);
        let mut merged = (mine.clone(), vec![position]);
        let mut kept = Vec::with_capacity(groups.len());
        for group in groups {
            if group.0.is_disjoint(mine) {
                kept.push(group);
            } else {
                merged.0.extend(group.0);
                merged.1.extend(group.1);
            }
        }
        kept.push(merged);
        groups = kept;
    }
    let mut result: Vec<Vec<usize>> = groups
        .into_iter()
        .map(|(_, mut members)| {
            members.sort_unstable();
            members
        })
        .collect();
    result.sort();
    result
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
    let parent = write.path.parent().filter(|p| !p.as_os_str().is_empty());
    if write.append {
        // As consul-template: an append opens the file, creating it but not its directory.
        if let Some(parent) = parent.filter(|p| !p.is_dir()) {
            anyhow::bail!(
                "cannot append to {}: no directory {} (an append creates no directory, as in \
                 Vault Agent; an earlier writeToFile without append creates it)",
                write.path.display(),
                parent.display()
            );
        }
        // Appending to what an earlier write of this render staged, else to the file.
        // Only a regular file is appended to; anything else there is replaced.
        let mut contents = match staged.pending(&write.path) {
            Some(pending) => pending.to_vec(),
            None => fsutil::read_regular(&write.path, fsutil::READ_LIMIT)
                .with_context(|| format!("cannot append to {}", write.path.display()))?
                .unwrap_or_default(),
        };
        contents.extend_from_slice(write.contents.as_bytes());
        let mode = write
            .perms
            .or_else(|| fsutil::existing_mode(&write.path))
            .unwrap_or_else(|| fsutil::default_mode(&contents));
        let file = fsutil::Staged::write(&write.path, &contents, mode, owner)?;
        staged.push(contents, file);
        return Ok(());
    }
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    Ok(fsutil::stage_if_changed(
        &write.path,
        write.contents.as_bytes().to_vec(),
        write.perms,
        owner,
        staged,
    )?)
}

/// consul-template's `backup`: before `path` is replaced, its contents go to `PATH.bak`, with
/// its mode (replaced atomically; an earlier backup is overwritten). Nothing to keep when
/// `path` is not a regular file yet.
fn back_up(path: &Path) -> anyhow::Result<()> {
    let Some(mut previous) = fsutil::read_regular(path, fsutil::READ_LIMIT)
        .with_context(|| format!("cannot read {} to back it up", path.display()))?
    else {
        return Ok(());
    };
    let mut backup = path.as_os_str().to_owned();
    backup.push(".bak");
    let backup = PathBuf::from(backup);
    let mode = fsutil::existing_mode(path).unwrap_or(0o600);
    let written = fsutil::write_atomic(&backup, &previous, mode, Ownership::default());
    // It may be a key.
    zeroize::Zeroize::zeroize(&mut previous);
    written.with_context(|| format!("cannot write the backup {}", backup.display()))
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

    fn read(path: &str) -> Dependency {
        Dependency::secret(path.to_string(), Vec::new())
    }

    /// A secret not written yet is retried at least once a minute however long it takes, as
    /// OpenBao Agent retries it, whatever the auth method's `max_backoff` (5 min by default); a
    /// shorter one still bounds it.
    #[test]
    fn retries_without_a_certificate_wait_at_most_a_minute() {
        let mut default = retry_backoff(Duration::from_secs(1), Duration::from_secs(300));
        let longest = (0..30).map(|_| default.next_delay()).max().unwrap();
        assert!(longest <= Duration::from_secs(60), "{longest:?}");
        assert!(longest >= Duration::from_secs(1));
        let mut short = retry_backoff(Duration::from_secs(1), Duration::from_secs(10));
        assert!((0..30).all(|_| short.next_delay() <= Duration::from_secs(10)));
    }

    #[test]
    fn templates_sharing_an_answer_are_grouped_transitively() {
        let uses: Vec<BTreeSet<Dependency>> = vec![
            [read("a")].into(),
            [read("b")].into(),
            [read("c"), read("a")].into(),
            [read("d")].into(),
            [read("b"), read("c")].into(),
            BTreeSet::new(),
        ];
        let grouped = groups(&[0, 1, 2, 3, 4, 5], |p| &uses[p]);
        assert_eq!(grouped, vec![vec![0, 1, 2, 4], vec![3], vec![5]]);
        // Only due templates are grouped.
        assert_eq!(groups(&[0, 3], |p| &uses[p]), vec![vec![0], vec![3]]);
    }

    #[test]
    fn secret_keys_ignore_argument_order_and_keep_the_last_repeat() {
        let args = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let one = Dependency::secret(
            "pki/issue/r".into(),
            args(&[("common_name", "a"), ("ttl", "1h")]),
        );
        let other = Dependency::secret(
            "pki/issue/r".into(),
            args(&[("ttl", "2h"), ("common_name", "a"), ("ttl", "1h")]),
        );
        assert_eq!(one, other);
        let pki = |destination: &str, ttl: &str| Dependency::PkiCert {
            path: "pki/issue/r".into(),
            destination: destination.into(),
            args: args(&[("ttl", ttl)]),
        };
        assert_eq!(
            pki("/a", "1h"),
            pki("/a", "2h"),
            "pkiCert: path and destination"
        );
        assert_ne!(pki("/a", "1h"), pki("/b", "1h"));
        assert_ne!(read("pki/issue/r"), one, "a read is not a write");
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

    /// consul-template opens an append with O_CREATE but makes no directory; a write without
    /// append makes its directories, and an append after it in the same render finds them.
    #[test]
    fn an_append_creates_no_directory_but_a_write_before_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, append: bool| FileWrite {
            path: dir.path().join(name),
            contents: "x".to_owned(),
            owner: None,
            group: None,
            perms: None,
            append,
        };
        let mut staged = StagedFiles::default();
        let error = stage_write(&write("new/a.txt", true), &mut staged).unwrap_err();
        assert!(format!("{error:#}").contains("no directory"), "{error:#}");
        assert!(!dir.path().join("new").exists());
        stage_write(&write("new/a.txt", false), &mut staged).unwrap();
        stage_write(&write("new/b.txt", true), &mut staged).unwrap();
        assert!(staged.commit().unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new/b.txt")).unwrap(),
            "x"
        );
    }
}
