//! Logging, metrics and health endpoints shared by every role.
//!
//! Logging ([`init_logging`], in `logging`): text, or JSON lines with Vault Agent's (hclog's)
//! field names.
//!
//! Each role owns one [`Telemetry`]: a private Prometheus registry (so tests can run several
//! roles in one process), a [`Readiness`] board, and a small HTTP listener serving `/metrics`,
//! `/healthz` and `/readyz`. Roles register their own metrics in the registry; this module
//! holds only what all of them share (`pki_sidecar_build_info`, process metrics, the HTTP
//! request metrics of the app and the proxy). It must not know what a role does.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http_server;

mod logging;
#[cfg(target_os = "linux")]
mod process;

pub(crate) use logging::spawn_in_span;
pub use logging::{SpanExecutor, init_logging, role_span};

/// This binary's version, as reported by `--version` and `pki_sidecar_build_info`.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from (`build.rs`), or `unknown`.
pub const GIT_COMMIT: &str = env!("PKI_SIDECAR_GIT_COMMIT");

/// Named conditions that keep a role from being ready; `/readyz` lists those still pending.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    // Probed every few seconds at most; a mutex is simpler than anything lock-free here.
    pending: Arc<Mutex<BTreeMap<&'static str, String>>>,
}

impl Readiness {
    /// Marks `condition` as not met, with the reason `/readyz` shows.
    pub fn not_ready(&self, condition: &'static str, reason: impl Into<String>) {
        self.lock().insert(condition, reason.into());
    }

    /// Marks `condition` as met.
    pub fn ready(&self, condition: &'static str) {
        self.lock().remove(condition);
    }

    /// `Ok` when every condition is met, else the pending reasons, one per line.
    pub fn check(&self) -> Result<(), String> {
        let pending = self.lock();
        if pending.is_empty() {
            return Ok(());
        }
        Err(pending
            .iter()
            .map(|(condition, reason)| format!("{condition}: {reason}"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        lock(&self.pending)
    }
}

/// Request counters and latency for a role that serves HTTP (`app`, `proxy`).
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    role: &'static str,
}

impl HttpMetrics {
    /// Registers the HTTP metric families in `registry` for `role`.
    pub(crate) fn register(
        registry: &Registry,
        role: &'static str,
    ) -> prometheus::Result<HttpMetrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_http_requests_total",
                "HTTP requests served, by status code.",
            ),
            &["role", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "pki_sidecar_http_request_duration_seconds",
                "Time from request headers received to response headers sent.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
            &["role"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics {
            requests,
            duration,
            role,
        })
    }

    /// A counter for `code`, created at start so it is exported (as 0) before first use.
    pub(crate) fn counter(&self, code: StatusCode) -> prometheus::IntCounter {
        self.requests.with_label_values(&[self.role, code.as_str()])
    }

    /// The latency histogram of this role.
    pub(crate) fn histogram(&self) -> prometheus::Histogram {
        self.duration.with_label_values(&[self.role])
    }
}

/// The certificate gauges shared by the agent (what it issued) and the proxy (what it serves).
/// `cert` is a small stable name, the same in both roles for the same certificate (by default
/// the certificate file's base name); the serial and fingerprint live only in the `_info`
/// series, which is replaced, not added to, when the certificate changes.
#[derive(Clone)]
pub(crate) struct CertificateMetrics {
    role: &'static str,
    not_after: prometheus::GaugeVec,
    not_before: prometheus::GaugeVec,
    info: IntGaugeVec,
    info_labels: Arc<Mutex<BTreeMap<String, [String; 4]>>>,
    validity: Arc<Mutex<BTreeMap<String, Validity>>>,
}

/// When a certificate is valid; `None` until the role holds one.
type Validity = Option<(std::time::SystemTime, std::time::SystemTime)>;

impl CertificateMetrics {
    /// Registers the certificate gauges in `registry` for `role`.
    pub(crate) fn register(
        registry: &Registry,
        role: &'static str,
    ) -> prometheus::Result<CertificateMetrics> {
        let not_after = prometheus::GaugeVec::new(
            Opts::new(
                "pki_sidecar_tls_certificate_expiration_timestamp_seconds",
                "NotAfter of the certificate, in Unix seconds.",
            ),
            &["role", "cert"],
        )?;
        let not_before = prometheus::GaugeVec::new(
            Opts::new(
                "pki_sidecar_tls_certificate_not_before_timestamp_seconds",
                "NotBefore of the certificate, in Unix seconds.",
            ),
            &["role", "cert"],
        )?;
        let info = IntGaugeVec::new(
            Opts::new(
                "pki_sidecar_tls_certificate_info",
                "Always 1; labels identify the certificate.",
            ),
            &[
                "role",
                "cert",
                "serial_number",
                "subject_cn",
                "issuer_cn",
                "fingerprint_sha256",
            ],
        )?;
        let validity: Arc<Mutex<BTreeMap<String, Validity>>> = Arc::default();
        let ready = ReadyCollector {
            gauge: IntGaugeVec::new(
                Opts::new(
                    "pki_sidecar_tls_certificate_ready",
                    "1 while the certificate the role holds is within its validity, else 0.",
                ),
                &["role", "cert"],
            )?,
            role,
            validity: validity.clone(),
        };
        registry.register(Box::new(not_after.clone()))?;
        registry.register(Box::new(not_before.clone()))?;
        registry.register(Box::new(info.clone()))?;
        registry.register(Box::new(ready))?;
        Ok(CertificateMetrics {
            role,
            not_after,
            not_before,
            info,
            info_labels: Arc::default(),
            validity,
        })
    }

    /// Exports `cert` as not ready (0) before the role holds it, so an alert or a panel sees
    /// the certificate that is missing, not no series at all.
    pub(crate) fn expect(&self, cert: &str) {
        lock(&self.validity).entry(cert.to_string()).or_insert(None);
    }

    /// Publishes `certificate` under `cert`.
    pub(crate) fn set(&self, cert: &str, certificate: &crate::certs::CertInfo) {
        let role = self.role;
        self.not_after
            .with_label_values(&[role, cert])
            .set(crate::certs::unix_seconds(certificate.not_after));
        self.not_before
            .with_label_values(&[role, cert])
            .set(crate::certs::unix_seconds(certificate.not_before));
        lock(&self.validity).insert(
            cert.to_string(),
            Some((certificate.not_before, certificate.not_after)),
        );
        let labels = [
            certificate.serial.clone(),
            certificate.subject_cn.clone(),
            certificate.issuer_cn.clone(),
            certificate.fingerprint_sha256.clone(),
        ];
        let mut previous = lock(&self.info_labels);
        if let Some(old) = previous.insert(cert.to_string(), labels.clone())
            && old != labels
        {
            let _ = self
                .info
                .remove_label_values(&[role, cert, &old[0], &old[1], &old[2], &old[3]]);
        }
        self.info
            .with_label_values(&[role, cert, &labels[0], &labels[1], &labels[2], &labels[3]])
            .set(1);
    }
}

/// `pki_sidecar_tls_certificate_ready`, worked out at each scrape: a certificate that expires
/// between two renewals turns 0 without anyone setting it.
struct ReadyCollector {
    gauge: IntGaugeVec,
    role: &'static str,
    validity: Arc<Mutex<BTreeMap<String, Validity>>>,
}

impl prometheus::core::Collector for ReadyCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let now = std::time::SystemTime::now();
        for (cert, validity) in lock(&self.validity).iter() {
            let ready = validity
                .is_some_and(|(not_before, not_after)| not_before <= now && now < not_after);
            self.gauge
                .with_label_values(&[self.role, cert])
                .set(i64::from(ready));
        }
        self.gauge.collect()
    }
}

/// A mutex whose data stays consistent even if a holder panicked (every update is one step).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One role's registry, readiness board and metrics listener.
#[derive(Clone)]
pub struct Telemetry {
    /// Where the role registers its metrics.
    pub registry: Registry,
    /// What `/readyz` reports.
    pub readiness: Readiness,
}

impl Telemetry {
    /// A registry with `pki_sidecar_build_info` and process metrics, and an empty readiness
    /// board.
    pub fn new() -> prometheus::Result<Telemetry> {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "pki_sidecar_build_info",
                "Always 1; labels name the running build.",
            ),
            &["version", "commit"],
        )?;
        build_info.with_label_values(&[VERSION, GIT_COMMIT]).set(1);
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(process::ProcessCollector::new()?))?;
        Ok(Telemetry {
            registry,
            readiness: Readiness::default(),
        })
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(8 * 1024);
        let encoder = prometheus::TextEncoder::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %err, "cannot encode metrics");
        }
        buffer
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
    /// Serves this role's `/metrics`, `/healthz` and `/readyz` on `listener` in a task of its
    /// own until `shutdown`: the one way every role starts its telemetry (its `serve` calls
    /// this first).
    pub(crate) fn start(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(tracing::Instrument::in_current_span(
            self.clone().serve(listener, shutdown),
        ))
    }

    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        let telemetry = self;
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let response = telemetry.respond(request.method(), request.uri().path());
            async move { Ok::<_, Infallible>(response) }
        });
        // Probes and scrapes are short; a long drain would only delay the role's exit.
        http_server::serve(
            listener,
            service,
            shutdown,
            Duration::from_secs(1),
            "telemetry",
        )
        .await;
    }

    fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match path {
            "/metrics" => Response::builder()
                .header(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)
                .body(Full::new(Bytes::from(self.render())))
                .expect("static headers are valid"),
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.readiness.check() {
                Ok(()) => text(StatusCode::OK, "ready\n"),
                Err(reasons) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reasons}\n")),
            },
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz or /readyz\n",
            ),
        }
    }
}

/// A budget for a log line that a failing peer can cause once per request (an upstream that
/// refuses connections under load): at most `per_second` such lines a second, the ones held
/// back counted and told in the next line written, so that a failure is always logged and
/// never floods the log.
pub(crate) struct LogBudget {
    per_second: u32,
    /// The current second's start, the lines written in it, and the lines held back since the
    /// last one written.
    state: Mutex<Option<(std::time::Instant, u32, u64)>>,
}

impl LogBudget {
    pub(crate) const fn new(per_second: u32) -> LogBudget {
        LogBudget {
            per_second,
            state: Mutex::new(None),
        }
    }

    /// `Some(held back)` when a line may be written now, with how many were held back since
    /// the last one; `None` when this one is to be held back.
    pub(crate) fn take(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, written, held) = state.get_or_insert((now, 0, 0));
        if now.duration_since(*start) >= Duration::from_secs(1) {
            (*start, *written) = (now, 0);
        }
        if *written >= self.per_second {
            *held += 1;
            return None;
        }
        *written += 1;
        Some(std::mem::take(held))
    }
}

/// A short `text/plain` response.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(body.into()))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_budget_holds_back_lines_past_its_rate_and_tells_how_many() {
        let budget = LogBudget::new(2);
        assert_eq!(budget.take(), Some(0));
        assert_eq!(budget.take(), Some(0));
        assert_eq!(budget.take(), None);
        assert_eq!(budget.take(), None);
        // A second later: the next line says two were held back.
        if let Some((start, _, _)) = budget.state.lock().unwrap().as_mut() {
            *start -= Duration::from_secs(1);
        }
        assert_eq!(budget.take(), Some(2));
        assert_eq!(budget.take(), Some(0));
        assert_eq!(budget.take(), None);
    }

    #[test]
    fn readiness_lists_pending_conditions() {
        let readiness = Readiness::default();
        assert!(readiness.check().is_ok());
        readiness.not_ready("certificate", "no valid pair yet");
        readiness.not_ready("listener", "not bound");
        assert_eq!(
            readiness.check().unwrap_err(),
            "certificate: no valid pair yet\nlistener: not bound"
        );
        readiness.ready("listener");
        readiness.ready("certificate");
        assert!(readiness.check().is_ok());
    }

    #[test]
    fn ready_follows_the_validity_at_each_scrape() {
        use std::time::{Duration, SystemTime};
        let telemetry = Telemetry::new().unwrap();
        let metrics = CertificateMetrics::register(&telemetry.registry, "proxy").unwrap();
        let ready = |cert: &str| {
            let text = String::from_utf8(telemetry.render()).unwrap();
            let series =
                format!("pki_sidecar_tls_certificate_ready{{cert=\"{cert}\",role=\"proxy\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(series.as_str()))
                .map(str::to_string)
        };
        assert_eq!(
            ready("tls.crt"),
            None,
            "no series before the role expects one"
        );
        metrics.expect("tls.crt");
        assert_eq!(
            ready("tls.crt").as_deref(),
            Some("0"),
            "expected, not held yet"
        );
        let now = SystemTime::now();
        let mut info = crate::certs::CertInfo {
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(60),
            serial: "01".into(),
            subject_cn: "a".into(),
            issuer_cn: "ca".into(),
            fingerprint_sha256: "ab".into(),
            is_ca: false,
            names: Vec::new(),
        };
        metrics.set("tls.crt", &info);
        assert_eq!(ready("tls.crt").as_deref(), Some("1"));
        // Expired since: 0 at the next scrape, though nothing set it.
        info.not_after = now - Duration::from_secs(1);
        metrics.set("tls.crt", &info);
        assert_eq!(ready("tls.crt").as_deref(), Some("0"));
        // Not valid yet (a clock behind the CA's): 0 too.
        info.not_before = now + Duration::from_secs(30);
        info.not_after = now + Duration::from_secs(90);
        metrics.set("tls.crt", &info);
        assert_eq!(ready("tls.crt").as_deref(), Some("0"));
    }

    #[test]
    fn build_info_is_exported() {
        let telemetry = Telemetry::new().unwrap();
        let text = String::from_utf8(telemetry.render()).unwrap();
        assert!(
            text.contains(&format!(
                "pki_sidecar_build_info{{commit=\"{GIT_COMMIT}\",version=\"{VERSION}\"}} 1"
            )),
            "{text}"
        );
    }
}
