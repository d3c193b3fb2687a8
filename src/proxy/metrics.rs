//! The proxy's metrics. Handles for the hot path (handshake results, request codes) are
//! resolved once here so that serving a request costs atomic increments, not label lookups.
//! [`ReloadMetrics`] is what the certificate [`Reloader`](super::store::Reloader) reports to;
//! any role serving a hot-reloaded certificate (the proxy, the admission webhook) registers its
//! own under its role's name.

use http::StatusCode;
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use super::store::ReloadError;
use crate::certs::CertInfo;
use crate::telemetry::{CertificateMetrics, HttpMetrics};

/// Status codes whose counters are resolved up front.
const COMMON_CODES: &[u16] = &[
    200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 413, 429, 500, 501, 502, 503,
    504,
];

/// Counters, gauges and histograms of the proxy role.
#[derive(Clone)]
pub(crate) struct ProxyMetrics {
    /// The served certificate and its reloads.
    pub reload: ReloadMetrics,
    /// Completed handshakes.
    pub handshake_ok: IntCounter,
    /// Handshakes that failed (including no certificate yet).
    pub handshake_failed: IntCounter,
    /// Handshakes cut by the timeout.
    pub handshake_timeout: IntCounter,
    /// Handshake durations.
    pub handshake_duration: Histogram,
    /// Open client connections.
    pub connections_active: IntGauge,
    /// Connections closed at once because `max_connections` was reached.
    pub connections_refused: IntCounter,
    /// HTTP/1.1 connections parked: waiting for a request without hyper's connection.
    pub connections_parked: IntGauge,
    http: HttpMetrics,
    codes: Vec<(u16, IntCounter)>,
    /// Request durations.
    pub request_duration: Histogram,
    upstream_errors: IntCounterVec,
    /// Requests refused, or cut, for what the client sent.
    pub client_errors: ClientErrors,
}

/// `pki_sidecar_proxy_client_errors_total`, one counter per kind.
#[derive(Clone)]
pub(crate) struct ClientErrors {
    /// No, several, invalid or conflicting Host / `:authority` (400).
    pub host: IntCounter,
    /// A transfer coding other than `chunked` (501).
    pub transfer_encoding: IntCounter,
    /// `CONNECT` (405).
    pub method: IntCounter,
    /// The request body failed: malformed chunked framing, a client gone mid-upload (400 or
    /// a reset stream).
    pub body: IntCounter,
    /// The request body is longer than `proxy.max_request_body` (413).
    pub body_too_large: IntCounter,
    /// No credentials, or credentials `basic_auth_file` does not accept (401).
    pub unauthorized: IntCounter,
    /// Beyond a `rate_limits` burst (`rate_limit_status`, 503 by default).
    pub rate_limited: IntCounter,
    /// From an address `access_rules` deny (403).
    pub forbidden: IntCounter,
    /// For a host `server_names` does not hold (`unknown_host`).
    pub unknown_host: IntCounter,
    /// `upstream_uri` or a rewrite made no request target of what the request carries (400).
    pub target: IntCounter,
    /// Beyond a `concurrency_limits` limit (`concurrency_limit_status`, 503 by default).
    pub concurrency_limited: IntCounter,
    /// A connection closed because the client took none of its response's bytes for
    /// `proxy.send_timeout` (nginx's `send_timeout`).
    pub send_timeout: IntCounter,
}

impl ClientErrors {
    /// The `kind` label values.
    pub(crate) const KINDS: [&'static str; 12] = [
        "host",
        "transfer_encoding",
        "method",
        "body",
        "body_too_large",
        "unauthorized",
        "rate_limited",
        "forbidden",
        "unknown_host",
        "target",
        "concurrency_limited",
        "send_timeout",
    ];
}

impl ProxyMetrics {
    /// Registers the proxy's metrics in `registry`, every labelled series at 0.
    pub(crate) fn register(registry: &Registry, cert: &str) -> prometheus::Result<ProxyMetrics> {
        let reload = ReloadMetrics::register(registry, "proxy", cert)?;
        let handshakes = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_proxy_tls_handshakes_total",
                "TLS handshakes, by result.",
            ),
            &["result"],
        )?;
        let handshake_duration = Histogram::with_opts(
            HistogramOpts::new(
                "pki_sidecar_proxy_tls_handshake_duration_seconds",
                "Time from TCP accept to a completed TLS handshake.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
        )?;
        let connections_active = IntGauge::with_opts(Opts::new(
            "pki_sidecar_proxy_connections_active",
            "Client connections open now.",
        ))?;
        let connections_parked = IntGauge::with_opts(Opts::new(
            "pki_sidecar_proxy_connections_parked",
            "HTTP/1.1 client connections waiting for a request with no HTTP buffers (parked).",
        ))?;
        let connections_refused = IntCounter::with_opts(Opts::new(
            "pki_sidecar_proxy_connections_refused_total",
            "Client connections closed at once because max_connections was reached.",
        ))?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_proxy_upstream_errors_total",
                "Requests the upstream did not answer, by kind (connect, timeout, other), and \
                 responses it cut off mid-body (body).",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(handshakes.clone()))?;
        registry.register(Box::new(handshake_duration.clone()))?;
        registry.register(Box::new(connections_active.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(connections_parked.clone()))?;
        let client_errors = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_proxy_client_errors_total",
                "Requests refused or cut for what the client sent, by kind (host, \
                 transfer_encoding, method, body).",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(client_errors.clone()))?;
        for kind in ["connect", "timeout", "other", "body"] {
            upstream_errors.with_label_values(&[kind]);
        }
        let http = HttpMetrics::register(registry, "proxy")?;
        let codes = COMMON_CODES
            .iter()
            .filter_map(|code| StatusCode::from_u16(*code).ok())
            .map(|code| (code.as_u16(), http.counter(code)))
            .collect();
        Ok(ProxyMetrics {
            reload,
            handshake_ok: handshakes.with_label_values(&["success"]),
            handshake_failed: handshakes.with_label_values(&["failure"]),
            handshake_timeout: handshakes.with_label_values(&["timeout"]),
            handshake_duration,
            connections_active,
            connections_refused,
            connections_parked,
            request_duration: http.histogram(),
            http,
            codes,
            upstream_errors,
            client_errors: ClientErrors {
                host: client_errors.with_label_values(&[ClientErrors::KINDS[0]]),
                transfer_encoding: client_errors.with_label_values(&[ClientErrors::KINDS[1]]),
                method: client_errors.with_label_values(&[ClientErrors::KINDS[2]]),
                body: client_errors.with_label_values(&[ClientErrors::KINDS[3]]),
                body_too_large: client_errors.with_label_values(&[ClientErrors::KINDS[4]]),
                unauthorized: client_errors.with_label_values(&[ClientErrors::KINDS[5]]),
                rate_limited: client_errors.with_label_values(&[ClientErrors::KINDS[6]]),
                forbidden: client_errors.with_label_values(&[ClientErrors::KINDS[7]]),
                unknown_host: client_errors.with_label_values(&[ClientErrors::KINDS[8]]),
                target: client_errors.with_label_values(&[ClientErrors::KINDS[9]]),
                concurrency_limited: client_errors.with_label_values(&[ClientErrors::KINDS[10]]),
                send_timeout: client_errors.with_label_values(&[ClientErrors::KINDS[11]]),
            },
        })
    }

    /// Counts a response with `code`.
    pub(crate) fn response(&self, code: StatusCode) {
        let code = code.as_u16();
        match self.codes.iter().find(|(c, _)| *c == code) {
            Some((_, counter)) => counter.inc(),
            None => {
                if let Ok(status) = StatusCode::from_u16(code) {
                    self.http.counter(status).inc();
                }
            }
        }
    }

    /// Counts a request the upstream did not answer.
    pub(crate) fn upstream_error(&self, kind: &str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }

    /// `upstream_errors_total{kind="body"}`: responses the upstream cut off mid-body.
    pub(crate) fn upstream_body_cut(&self) -> IntCounter {
        self.upstream_errors.with_label_values(&["body"])
    }
}

/// The served certificate's gauges (`pki_sidecar_tls_certificate_*{role, cert}`) and
/// the reload counters (`pki_sidecar_ROLE_certificate_reloads_total`,
/// `pki_sidecar_ROLE_certificate_last_reload_success_timestamp_seconds`) of one role.
#[derive(Clone)]
pub(crate) struct ReloadMetrics {
    certificates: CertificateMetrics,
    cert: String,
    success: IntCounter,
    reloads: IntCounterVec,
    last_reload: Gauge,
}

impl ReloadMetrics {
    /// Registers the reload metrics of `role` in `registry`, every reason at 0, for the
    /// certificate labelled `cert` (not ready until the first load).
    pub(crate) fn register(
        registry: &Registry,
        role: &'static str,
        cert: &str,
    ) -> prometheus::Result<ReloadMetrics> {
        let reloads = IntCounterVec::new(
            Opts::new(
                format!("pki_sidecar_{role}_certificate_reloads_total"),
                "Attempts to load the certificate files, by result and reason.",
            ),
            &["result", "reason"],
        )?;
        let last_reload = Gauge::with_opts(Opts::new(
            format!("pki_sidecar_{role}_certificate_last_reload_success_timestamp_seconds"),
            "When a new certificate was last loaded, in Unix seconds.",
        ))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(last_reload.clone()))?;
        for reason in ReloadError::REASONS {
            reloads.with_label_values(&["failure", reason]);
        }
        let certificates = CertificateMetrics::register(registry, role)?;
        certificates.expect(cert);
        Ok(ReloadMetrics {
            certificates,
            cert: cert.to_string(),
            success: reloads.with_label_values(&["success", "new_certificate"]),
            reloads,
            last_reload,
        })
    }

    /// A new certificate is being served.
    pub(crate) fn reload_success(&self, info: &CertInfo) {
        self.success.inc();
        self.last_reload
            .set(crate::certs::unix_seconds(std::time::SystemTime::now()));
        self.certificates.set(&self.cert, info);
    }

    /// A load attempt failed for `reason`.
    pub(crate) fn reload_failure(&self, reason: &str) {
        self.reloads.with_label_values(&["failure", reason]).inc();
    }
}

/// The proxy's configuration reloads (SIGHUP, or a change to its files):
/// `pki_sidecar_proxy_config_reloads_total{result}`,
/// `pki_sidecar_proxy_config_last_reload_successful`,
/// `pki_sidecar_proxy_config_last_reload_success_timestamp_seconds` and
/// `pki_sidecar_proxy_config_restart_required`.
#[derive(Clone)]
pub(crate) struct ConfigReloadMetrics {
    success: IntCounter,
    failure: IntCounter,
    last_successful: IntGauge,
    last_success: Gauge,
    restart_required: IntGauge,
}

impl ConfigReloadMetrics {
    /// Registers them in `registry`: the running configuration counts as a successful load.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<ConfigReloadMetrics> {
        let reloads = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_proxy_config_reloads_total",
                "Attempts to load the proxy's configuration again, by result.",
            ),
            &["result"],
        )?;
        let last_successful = IntGauge::with_opts(Opts::new(
            "pki_sidecar_proxy_config_last_reload_successful",
            "1 when the last attempt to load the configuration succeeded, 0 when the running \
             configuration is older than the files.",
        ))?;
        let last_success = Gauge::with_opts(Opts::new(
            "pki_sidecar_proxy_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded, in Unix seconds (the start counts).",
        ))?;
        let restart_required = IntGauge::with_opts(Opts::new(
            "pki_sidecar_proxy_config_restart_required",
            "1 when the loaded configuration changes settings that take effect only at the \
             next start (listeners, TLS, timeouts of connections).",
        ))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(last_successful.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(restart_required.clone()))?;
        last_successful.set(1);
        last_success.set(crate::certs::unix_seconds(std::time::SystemTime::now()));
        Ok(ConfigReloadMetrics {
            success: reloads.with_label_values(&["success"]),
            failure: reloads.with_label_values(&["failure"]),
            last_successful,
            last_success,
            restart_required,
        })
    }

    /// The files loaded: `restart` says whether settings wait for the next start.
    pub(crate) fn loaded(&self, restart: bool) {
        self.success.inc();
        self.last_successful.set(1);
        self.last_success
            .set(crate::certs::unix_seconds(std::time::SystemTime::now()));
        self.restart_required.set(i64::from(restart));
    }

    /// The files could not be loaded; the running configuration stays.
    pub(crate) fn failed(&self) {
        self.failure.inc();
        self.last_successful.set(0);
    }
}
