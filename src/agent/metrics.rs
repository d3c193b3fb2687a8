//! The agent's own metrics, registered beside the shared ones in the role's registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry};

use crate::telemetry::CertificateMetrics;

/// Counters and gauges of the agent role.
#[derive(Clone)]
pub(crate) struct AgentMetrics {
    auth: IntCounterVec,
    /// Vault Agent's names for the same events.
    pub vault_agent: VaultAgentCounters,
    renewals: IntCounterVec,
    sink_writes: IntCounterVec,
    /// When the current Vault token expires (Unix seconds; 0 before the first token or for a
    /// token that never expires).
    pub token_expiration: Gauge,
}

impl AgentMetrics {
    /// Registers the agent's metrics in `registry`; `method` pre-creates its series at 0.
    pub(crate) fn register(
        registry: &Registry,
        method: &str,
        vault_agent: VaultAgentCounters,
    ) -> prometheus::Result<AgentMetrics> {
        let auth = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_auth_total",
                "Logins to Vault, by method and result.",
            ),
            &["method", "result"],
        )?;
        let renewals = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_token_renewals_total",
                "Vault token renewals (renew-self), by result.",
            ),
            &["result"],
        )?;
        let sink_writes = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_sink_writes_total",
                "Token sink file writes, by result.",
            ),
            &["result"],
        )?;
        let token_expiration = Gauge::with_opts(Opts::new(
            "pki_sidecar_agent_token_expiration_timestamp_seconds",
            "When the agent's current Vault token expires, in Unix seconds.",
        ))?;
        registry.register(Box::new(auth.clone()))?;
        registry.register(Box::new(renewals.clone()))?;
        registry.register(Box::new(sink_writes.clone()))?;
        registry.register(Box::new(token_expiration.clone()))?;
        for result in ["success", "failure"] {
            auth.with_label_values(&[method, result]);
            renewals.with_label_values(&[result]);
            sink_writes.with_label_values(&[result]);
        }
        Ok(AgentMetrics {
            auth,
            vault_agent,
            renewals,
            sink_writes,
            token_expiration,
        })
    }

    /// Counts one login.
    pub(crate) fn auth(&self, method: &str, success: bool) {
        self.auth
            .with_label_values(&[method, result(success)])
            .inc();
        self.vault_agent.auth(success);
    }

    /// Counts one renew-self.
    pub(crate) fn renewal(&self, success: bool) {
        self.renewals.with_label_values(&[result(success)]).inc();
        self.vault_agent.auth(success);
    }

    /// Counts one sink write.
    pub(crate) fn sink_write(&self, success: bool) {
        self.sink_writes.with_label_values(&[result(success)]).inc();
    }
}

/// Vault Agent's own counters, under the names its Prometheus output gives them
/// (`vault_agent_auth_success`, ...; one set per prefix, `telemetry.metrics_prefix`), so that
/// the alerts and dashboards written for Vault Agent (or OpenBao Agent, `bao_agent_...`) keep
/// working. They count what Vault Agent counts: `auth_success` each login and token renewal,
/// `auth_failure` each failed one; `proxy_success` each listener request Vault answered below
/// 400, `proxy_client_error` each it answered with an error status, `proxy_error` each that
/// could not reach it; with `cache {}`, `cache_miss` each proxied success (nothing is cached,
/// `cache_hit` stays 0). Unlike Vault Agent's, every series exists from the start at 0, and
/// none expires after `prometheus_retention_time`.
#[derive(Clone)]
pub(crate) struct VaultAgentCounters {
    auth_success: Counted,
    auth_failure: Counted,
    proxy_success: Counted,
    proxy_client_error: Counted,
    proxy_error: Counted,
    /// `cache_miss`, with `cache {}` (`cache_hit` is registered beside it and stays 0).
    cache_miss: Option<Counted>,
}

/// One of Vault Agent's counters under each of its prefixes.
#[derive(Clone)]
struct Counted(Vec<IntCounter>);

impl Counted {
    fn inc(&self) {
        for counter in &self.0 {
            counter.inc();
        }
    }
}

/// How a listener's request to Vault ended, as Vault Agent counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyOutcome {
    /// Vault answered below 400.
    Success,
    /// Vault answered 400 or above (a 5xx included, as in Vault Agent).
    VaultError,
    /// Vault could not be reached.
    Unreachable,
}

impl VaultAgentCounters {
    /// Registers the counters under each of `prefixes` (the cache's two when `cache`).
    pub(crate) fn register(
        registry: &Registry,
        prefixes: &[String],
        cache: bool,
    ) -> prometheus::Result<VaultAgentCounters> {
        let counted = |name: &str, help: &str| -> prometheus::Result<Counted> {
            let mut counters = Vec::with_capacity(prefixes.len());
            for prefix in prefixes {
                let full = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}_{name}")
                };
                let counter = IntCounter::with_opts(Opts::new(
                    full,
                    format!("{help} (Vault Agent's name for it)"),
                ))?;
                registry.register(Box::new(counter.clone()))?;
                counters.push(counter);
            }
            Ok(Counted(counters))
        };
        Ok(VaultAgentCounters {
            auth_success: counted(
                "agent_auth_success",
                "Logins and token renewals that succeeded",
            )?,
            auth_failure: counted(
                "agent_auth_failure",
                "Logins and token renewals that failed",
            )?,
            proxy_success: counted(
                "agent_proxy_success",
                "Listener requests Vault answered below 400",
            )?,
            proxy_client_error: counted(
                "agent_proxy_client_error",
                "Listener requests Vault answered with an error status",
            )?,
            proxy_error: counted(
                "agent_proxy_error",
                "Listener requests that could not reach Vault",
            )?,
            cache_miss: if cache {
                counted(
                    "agent_cache_hit",
                    "Listener requests answered from the cache: none",
                )?;
                Some(counted(
                    "agent_cache_miss",
                    "Listener requests Vault answered (nothing is cached)",
                )?)
            } else {
                None
            },
        })
    }

    fn auth(&self, success: bool) {
        if success {
            self.auth_success.inc();
        } else {
            self.auth_failure.inc();
        }
    }

    /// Counts one request of a listener that was passed to Vault.
    pub(crate) fn proxied(&self, outcome: ProxyOutcome) {
        match outcome {
            ProxyOutcome::Success => {
                self.proxy_success.inc();
                if let Some(miss) = &self.cache_miss {
                    miss.inc();
                }
            }
            ProxyOutcome::VaultError => self.proxy_client_error.inc(),
            ProxyOutcome::Unreachable => self.proxy_error.inc(),
        }
    }
}

fn result(success: bool) -> &'static str {
    if success { "success" } else { "failure" }
}

/// Counters of the template renderer, and the certificate gauges of the agent role.
#[derive(Clone)]
pub(crate) struct TemplateMetrics {
    renders: IntCounterVec,
    writes: IntCounterVec,
    issues: IntCounterVec,
    commands: IntCounterVec,
    renewal: prometheus::GaugeVec,
    certificates: CertificateMetrics,
    labels: Arc<Mutex<CertLabels>>,
}

/// Which `cert` label each certificate file gets: the configured one, else its base name, else
/// (when another file already has that base name) its whole path, so two certificates never
/// share one series.
#[derive(Default)]
struct CertLabels {
    configured: BTreeMap<PathBuf, String>,
    given: BTreeMap<PathBuf, String>,
}

impl CertLabels {
    fn label(&mut self, path: &Path) -> String {
        if let Some(label) = self.given.get(path) {
            return label.clone();
        }
        let label = match self.configured.get(path) {
            Some(label) => label.clone(),
            None => {
                let base = crate::config::default_cert_label(path);
                if self.given.values().any(|taken| *taken == base) {
                    let whole = path.display().to_string();
                    tracing::warn!(
                        file = %whole,
                        label = %base,
                        "two certificate files share a base name: this one is labelled \
                         cert=\"{whole}\"; name them with telemetry {{ cert_labels }}"
                    );
                    whole
                } else {
                    base
                }
            }
        };
        self.given.insert(path.to_path_buf(), label.clone());
        label
    }
}

impl TemplateMetrics {
    /// Registers the renderer's metrics in `registry`; `cert_labels` names certificate files
    /// whose label is not their base name.
    pub(crate) fn register(
        registry: &Registry,
        cert_labels: &BTreeMap<PathBuf, String>,
    ) -> prometheus::Result<TemplateMetrics> {
        let renders = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_template_renders_total",
                "Complete template renders, by result.",
            ),
            &["result"],
        )?;
        let writes = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_template_writes_total",
                "Attempts to write a complete render's files (destination and writeToFile), by \
                 result.",
            ),
            &["result"],
        )?;
        let issues = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_issue_total",
                "Certificates requested from Vault (pkiCert), by result.",
            ),
            &["result"],
        )?;
        let commands = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_agent_template_commands_total",
                "Template commands run after a change, by result.",
            ),
            &["result"],
        )?;
        let renewal = prometheus::GaugeVec::new(
            Opts::new(
                "pki_sidecar_agent_certificate_renewal_timestamp_seconds",
                "When the agent plans to renew each certificate, in Unix seconds.",
            ),
            &["cert"],
        )?;
        for family in [&renders, &writes, &issues, &commands] {
            registry.register(Box::new(family.clone()))?;
            for result in ["success", "failure"] {
                family.with_label_values(&[result]);
            }
        }
        registry.register(Box::new(renewal.clone()))?;
        Ok(TemplateMetrics {
            renders,
            writes,
            issues,
            commands,
            renewal,
            certificates: CertificateMetrics::register(registry, "agent")?,
            labels: Arc::new(Mutex::new(CertLabels {
                configured: cert_labels.clone(),
                given: BTreeMap::new(),
            })),
        })
    }

    /// Counts one render.
    pub(crate) fn render(&self, success: bool) {
        self.renders.with_label_values(&[result(success)]).inc();
    }

    /// Counts one attempt to write a render's files.
    pub(crate) fn write(&self, success: bool) {
        self.writes.with_label_values(&[result(success)]).inc();
    }

    /// Counts one issue request.
    pub(crate) fn issue(&self, success: bool) {
        self.issues.with_label_values(&[result(success)]).inc();
    }

    /// Counts one command run.
    pub(crate) fn command(&self, success: bool) {
        self.commands.with_label_values(&[result(success)]).inc();
    }

    /// Publishes the certificate just written to `file` and its renewal point.
    pub(crate) fn certificate(
        &self,
        file: &Path,
        info: &crate::certs::CertInfo,
        renew_at: std::time::SystemTime,
    ) {
        let cert = self
            .labels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .label(file);
        let cert = cert.as_str();
        self.certificates.set(cert, info);
        self.renewal
            .with_label_values(&[cert])
            .set(crate::certs::unix_seconds(renew_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_configured_names_else_base_names_else_whole_paths() {
        let mut labels = CertLabels {
            configured: BTreeMap::from([(PathBuf::from("/a/web.pem"), "web".to_string())]),
            given: BTreeMap::new(),
        };
        assert_eq!(labels.label(Path::new("/a/web.pem")), "web");
        assert_eq!(labels.label(Path::new("/a/tls.crt")), "tls.crt");
        // Same base name, another file: its whole path, never a shared series.
        assert_eq!(labels.label(Path::new("/b/tls.crt")), "/b/tls.crt");
        // Stable across renewals.
        assert_eq!(labels.label(Path::new("/a/tls.crt")), "tls.crt");
        assert_eq!(labels.label(Path::new("/b/tls.crt")), "/b/tls.crt");
    }
}
