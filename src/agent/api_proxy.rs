//! Vault Agent's API proxy, without its cache: a request to a `listener "tcp"` is passed to
//! Vault as it came, with the agent's token when `use_auto_auth_token` says so, and Vault's
//! answer is passed back. An application that talked to Vault Agent's listener keeps working
//! unchanged.
//!
//! Nothing is cached: every request reaches Vault (Vault Agent's cache would answer a repeated
//! lease request from memory). The token is read from the keeper's watch channel at each
//! request, so a renewed or new token is used at once; it is never logged.
//!
//! Like Vault Agent's listener, it also answers `/agent/v1/quit` (when `agent_api` enables it)
//! and `/agent/v1/metrics` (the agent's metrics, for a scrape config written for Vault Agent).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::watch;

use super::metrics::{ProxyOutcome, VaultAgentCounters};
use crate::config::AutoAuthToken;
use crate::telemetry::Telemetry;
use crate::vault::{Token, VaultClient};

/// Vault Agent's quit endpoint (`agent_api { enable_quit = true }`): a Job's app ends the
/// sidecar with `POST` to it.
const QUIT_PATH: &str = "/agent/v1/quit";

/// The answer to a request to [`QUIT_PATH`], as Vault Agent gives it: 404 when the listener
/// does not enable it, 405 for another method than POST, else 200 and the agent stops as at
/// SIGTERM (exit status 0).
fn quit(
    method: &http::Method,
    enabled: bool,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Response<Full<Bytes>> {
    let status = if !enabled {
        StatusCode::NOT_FOUND
    } else if method != http::Method::POST {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        tracing::info!("quit requested on {QUIT_PATH}: stopping");
        shutdown.cancel();
        StatusCode::OK
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Vault Agent's metrics endpoint on its listeners.
const METRICS_PATH: &str = "/agent/v1/metrics";

/// The answer to a request to [`METRICS_PATH`], with Vault Agent's statuses: 405 for another
/// method than GET, the Prometheus text for `?format=prometheus`, 400 for any other format.
/// Vault Agent's default (no format) is a JSON dump of its in-memory sink, whose counters are
/// sums over 10 s intervals; the agent's counters are totals since start, so rather than a
/// JSON that looks the same and means something else, that request gets a 400 that says which
/// URL to scrape.
fn metrics(
    method: &http::Method,
    query: Option<&str>,
    telemetry: &Telemetry,
) -> Response<Full<Bytes>> {
    if method != http::Method::GET {
        // Vault Agent's body for it: an empty error list.
        let mut response = vault_error(StatusCode::METHOD_NOT_ALLOWED, "");
        *response.body_mut() = Full::new(Bytes::from_static(b"{\"errors\":[]}"));
        return response;
    }
    let format = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("format="))
        .next_back()
        .unwrap_or("");
    if format != "prometheus" {
        let message = if format.is_empty() {
            format!(
                "pki-sidecar serves its metrics in the Prometheus text format only: \
                 GET {METRICS_PATH}?format=prometheus"
            )
        } else {
            format!("metric response format {format:?} unknown")
        };
        return vault_error(StatusCode::BAD_REQUEST, &message);
    }
    let mut response = Response::new(Full::new(Bytes::from(telemetry.render())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus::TEXT_FORMAT),
    );
    response
}

/// The largest request body passed on: Vault's own default `max_request_size`.
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;

/// Headers that belong to one connection, not to the request: never passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// What every listener's requests go through.
pub(crate) struct Forwarder {
    client: VaultClient,
    tokens: watch::Receiver<Option<Arc<Token>>>,
    use_auto_auth_token: AutoAuthToken,
    /// The agent's metrics, for [`METRICS_PATH`].
    telemetry: Telemetry,
    /// Requests passed to Vault, by outcome (Vault Agent's `agent.proxy.success`,
    /// `.client_error`, `.error`).
    requests: prometheus::IntCounterVec,
    /// The same requests under Vault Agent's names and its way of counting them.
    vault_agent: VaultAgentCounters,
}

impl Forwarder {
    pub(crate) fn new(
        client: VaultClient,
        tokens: watch::Receiver<Option<Arc<Token>>>,
        use_auto_auth_token: AutoAuthToken,
        telemetry: Telemetry,
        vault_agent: VaultAgentCounters,
    ) -> prometheus::Result<Forwarder> {
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "pki_sidecar_agent_api_proxy_requests_total",
                "Requests to the agent's listeners passed to Vault, by outcome: success (Vault \
                 answered below 400), client_error (a 4xx, from Vault or the listener), error \
                 (a 5xx, or Vault unreachable).",
            ),
            &["outcome"],
        )?;
        telemetry.registry.register(Box::new(requests.clone()))?;
        for outcome in ["success", "client_error", "error"] {
            requests.with_label_values(&[outcome]);
        }
        Ok(Forwarder {
            client,
            tokens,
            use_auto_auth_token,
            telemetry,
            requests,
            vault_agent,
        })
    }

    /// Counts `response` by its outcome, and returns it.
    fn counted(&self, response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
        let outcome = match response.status().as_u16() {
            0..400 => "success",
            400..500 => "client_error",
            _ => "error",
        };
        self.requests.with_label_values(&[outcome]).inc();
        response
    }

    /// Answers one request of a listener, whose `require_request_header` and
    /// `agent_api.enable_quit` are given; a quit cancels `shutdown`. As in OpenBao Agent, the
    /// request header guards the quit endpoint too.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        require_request_header: bool,
        enable_quit: bool,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        if require_request_header
            && parts
                .headers
                .get("X-Vault-Request")
                .is_none_or(|value| value != "true")
        {
            let refused = vault_error(
                StatusCode::PRECONDITION_FAILED,
                "missing 'X-Vault-Request' header",
            );
            // The agent's own endpoints are not requests to Vault: not counted.
            return if [QUIT_PATH, METRICS_PATH].contains(&parts.uri.path()) {
                refused
            } else {
                self.counted(refused)
            };
        }
        if parts.uri.path() == QUIT_PATH {
            return quit(&parts.method, enable_quit, shutdown);
        }
        if parts.uri.path() == METRICS_PATH {
            return metrics(&parts.method, parts.uri.query(), &self.telemetry);
        }
        let (response, outcome) = self.forward(parts, body).await;
        if let Some(outcome) = outcome {
            self.vault_agent.proxied(outcome);
        }
        self.counted(response)
    }

    /// Passes one request to Vault with the agent's token as `use_auto_auth_token` says; the
    /// outcome as Vault Agent counts it, `None` for a request the listener answered itself.
    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Incoming,
    ) -> (Response<Full<Bytes>>, Option<ProxyOutcome>) {
        let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                let refused = vault_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the request body could not be read: {err}"),
                );
                return (refused, None);
            }
        };
        let mut headers = without_hop_by_hop(&parts.headers);
        let has_token = headers
            .get("X-Vault-Token")
            .is_some_and(|value| !value.is_empty());
        let add_token = match self.use_auto_auth_token {
            AutoAuthToken::Off => false,
            AutoAuthToken::IfMissing => !has_token,
            AutoAuthToken::Force => true,
        };
        if add_token {
            let token = self.tokens.borrow().clone();
            let Some(token) = token else {
                let refused = vault_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the agent has no Vault token yet (use_auto_auth_token): it is still \
                     logging in",
                );
                return (refused, None);
            };
            match HeaderValue::from_str(token.secret.expose()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    headers.insert("X-Vault-Token", value);
                }
                Err(_) => {
                    let refused = vault_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the agent's token cannot be sent in a header",
                    );
                    return (refused, None);
                }
            }
        }
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        match self
            .client
            .forward(parts.method, path_and_query, headers, body)
            .await
        {
            Ok((status, headers, body)) => {
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                *response.headers_mut() = without_hop_by_hop(&headers);
                let outcome = if status.as_u16() < 400 {
                    ProxyOutcome::Success
                } else {
                    ProxyOutcome::VaultError
                };
                (response, Some(outcome))
            }
            Err(err) => {
                tracing::warn!(error = %err, "the API proxy cannot reach Vault");
                // Vault Agent's status and words for it (a client's error handling may read
                // the status: hvac raises InternalServerError for it).
                let failed = vault_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("failed to get the response: {err}"),
                );
                (failed, Some(ProxyOutcome::Unreachable))
            }
        }
    }
}

fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    for name in HOP_BY_HOP {
        kept.remove(*name);
    }
    kept
}

/// An error in Vault's own shape, `{"errors":["..."]}`, which Vault clients read.
fn vault_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errors": [message] }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
