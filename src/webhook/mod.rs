//! `pki-sidecar webhook`: a mutating admission webhook serving `admission.k8s.io/v1`
//! AdmissionReview for Pod CREATE, answering with the JSONPatch of [`crate::inject`]'s transform.
//!
//! - [`review`]: one review in, its answer out, a pure function (no I/O);
//! - [`patch`]: the RFC 6902 diff from the Pod as sent to the Pod as transformed;
//! - `metrics`: requests by result, latency, the serving certificate (as the proxy's);
//! - this module: the HTTPS server on `POST /mutate`, TLS 1.2/1.3 with the certificate from
//!   files followed by the proxy's [`Reloader`] (handshakes are refused until the first valid
//!   pair, and `/readyz` says so), and the drain at shutdown.
//!
//! It must not call the Kubernetes API: everything it needs is in the review, which is why the
//! Deployment in `deploy/injector/` mounts no ServiceAccount token.

pub(crate) mod metrics;
pub mod patch;
pub mod review;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::http_server;
use crate::inject::Settings;
use crate::lifecycle::Lifecycle;
use crate::proxy::store::{self, CertResolver, CertStore, Reloader};
use crate::telemetry::Telemetry;
use metrics::WebhookMetrics;

/// The path the API server posts reviews to (the Vault Agent Injector's).
pub const PATH: &str = "/mutate";

/// The webhook's resolved settings: plain values, every default applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The HTTPS listener.
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics_listen: SocketAddr,
    /// The serving certificate chain (PEM), followed for changes.
    pub cert_file: PathBuf,
    /// Its key (PEM).
    pub key_file: PathBuf,
    /// How often the files are checked when no file event came.
    pub reload_interval: Duration,
    /// The largest request body read; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// The transform's settings.
    pub settings: Settings,
}

/// Runs the webhook until shutdown: binds both listeners, builds it, serves; `Ok` is a clean
/// exit.
pub async fn run(config: Config, lifecycle: Lifecycle) -> anyhow::Result<()> {
    run_in_span(config, lifecycle)
        .instrument(crate::telemetry::role_span("webhook"))
        .await
}

async fn run_in_span(config: Config, lifecycle: Lifecycle) -> anyhow::Result<()> {
    let listener = http_server::bind(config.listen, "webhook.listen", 1024).await?;
    let metrics_listener =
        http_server::bind(config.metrics_listen, "webhook.metrics_listen", 128).await?;
    let telemetry = Telemetry::new().context("cannot register the webhook's metrics")?;
    tracing::info!(
        listen = %config.listen,
        cert = %config.cert_file.display(),
        key = %config.key_file.display(),
        metrics = %config.metrics_listen,
        image = %config.settings.image,
        "webhook starting"
    );
    Webhook::build(config, telemetry)?
        .serve(listener, metrics_listener, lifecycle)
        .await;
    tracing::info!("webhook stopped");
    Ok(())
}

/// A configured webhook, ready to serve bound listeners (tests bind port 0).
pub struct Webhook {
    config: Config,
    store: Arc<CertStore>,
    tls: Arc<ServerConfig>,
    metrics: WebhookMetrics,
    telemetry: Telemetry,
}

impl Webhook {
    /// Registers the metrics, builds the TLS config; reads no certificate and binds nothing.
    pub fn build(config: Config, telemetry: Telemetry) -> anyhow::Result<Webhook> {
        let metrics = WebhookMetrics::register(
            &telemetry.registry,
            &crate::config::default_cert_label(&config.cert_file),
        )?;
        let store = Arc::new(CertStore::default());
        let mut tls = ServerConfig::builder_with_provider(crate::tls::server_provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("the crypto provider supports neither TLS 1.2 nor 1.3")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(CertResolver(store.clone())));
        // The API server speaks HTTP/2 when offered, HTTP/1.1 otherwise.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        telemetry
            .readiness
            .not_ready(store::READY_CONDITION, "no certificate loaded yet");
        Ok(Webhook {
            config,
            store,
            tls: Arc::new(tls),
            metrics,
            telemetry,
        })
    }

    /// Serves reviews on `listener` and telemetry on `metrics_listener` until the lifecycle's
    /// shutdown, then drains in-flight requests within the grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics_listener: TcpListener,
        lifecycle: Lifecycle,
    ) {
        let shutdown = lifecycle.shutdown.clone();
        let metrics_task = self.telemetry.start(metrics_listener, shutdown.clone());
        let reloader = Reloader {
            cert_file: self.config.cert_file.clone(),
            key_file: self.config.key_file.clone(),
            store: self.store.clone(),
            metrics: self.metrics.reload.clone(),
            readiness: self.telemetry.readiness.clone(),
            poll_interval: self.config.reload_interval,
        };
        let reload_task = tokio::spawn(
            reloader
                .run(shutdown.clone(), lifecycle.reloads())
                .in_current_span(),
        );
        let handler = Arc::new(Handler {
            settings: self.config.settings.clone(),
            metrics: self.metrics.clone(),
            max_body_bytes: self.config.max_body_bytes,
        });
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(request).await) }
        });
        let serving = http_server::serve_tls(
            listener,
            self.tls.clone(),
            self.config.handshake_timeout,
            service,
            shutdown.clone(),
            self.config.shutdown_grace,
            "webhook",
        );
        tokio::select! {
            () = serving => {}
            () = lifecycle.abort.cancelled() => {
                tracing::warn!("second stop signal: not waiting for in-flight reviews");
            }
        }
        let _ = reload_task.await;
        let _ = metrics_task.await;
    }
}

/// What every request shares: read-only, so the request path takes no lock.
struct Handler {
    settings: Settings,
    metrics: WebhookMetrics,
    max_body_bytes: usize,
}

impl Handler {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let response = self.respond(request).await;
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        response
    }

    async fn respond(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != PATH {
            return self.invalid(
                StatusCode::NOT_FOUND,
                "not found: reviews go to POST /mutate",
            );
        }
        if request.method() != Method::POST {
            let mut response = self.invalid(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: POST an AdmissionReview",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
            return response;
        }
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return self.invalid(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported media type: the AdmissionReview must be sent as application/json",
            );
        }
        let too_large = || {
            format!(
                "the request body exceeds {} bytes (--max-body-bytes)",
                self.max_body_bytes
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body_bytes as u64) {
            return self.invalid(StatusCode::PAYLOAD_TOO_LARGE, &too_large());
        }
        let body = match Limited::new(request.into_body(), self.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return self.invalid(StatusCode::PAYLOAD_TOO_LARGE, &too_large());
            }
            Err(err) => {
                return self.invalid(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the request body: {err}"),
                );
            }
        };
        match review::answer(&self.settings, &body) {
            Ok(answer) => {
                self.metrics.answered(answer.verdict);
                match answer.verdict {
                    review::Verdict::Refused => tracing::info!(
                        pod = %answer.pod,
                        result = answer.verdict.label(),
                        "refused a Pod: its annotations are invalid"
                    ),
                    review::Verdict::Transformed(_) => tracing::info!(
                        pod = %answer.pod,
                        result = answer.verdict.label(),
                        "answered a Pod CREATE"
                    ),
                    review::Verdict::Ignored => {
                        tracing::debug!("allowed a request that is not a Pod CREATE")
                    }
                }
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(answer.body)))
                    .expect("static headers are valid")
            }
            Err(err) => self.invalid(StatusCode::BAD_REQUEST, &err.to_string()),
        }
    }

    /// A request refused before any review was answered: counted as `invalid`, logged at debug
    /// (a client can send any number of them), answered in plain text.
    fn invalid(&self, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
        self.metrics.invalid.inc();
        tracing::debug!(
            status = status.as_u16(),
            error = message,
            "invalid webhook request"
        );
        crate::telemetry::text(status, format!("{message}\n"))
    }
}

/// Whether a Content-Type is JSON (`application/json`, with or without parameters).
fn is_json(content_type: Option<&http::HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let value = |text: &'static str| http::HeaderValue::from_static(text);
        assert!(is_json(Some(&value("application/json"))));
        assert!(is_json(Some(&value("Application/JSON; charset=utf-8"))));
        assert!(!is_json(Some(&value("application/yaml"))));
        assert!(!is_json(Some(&value("text/plain"))));
        assert!(!is_json(None));
    }
}
