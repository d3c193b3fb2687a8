//! The Vault client: vaultrs's endpoint definitions sent over our own HTTP transport.
//!
//! vaultrs describes each call (path, method, body, the `X-Vault-Token` and
//! `X-Vault-Namespace` headers through its middleware). The transport is a reqwest client with
//! the rustls config from [`crate::tls`], because this module needs what vaultrs's executor hides:
//! response headers (`Retry-After`), per-attempt retries, timing per operation, and errors that
//! say which address and which CA file failed. Calls vaultrs has no endpoint for (a `pkiCert`
//! with arbitrary arguments) go through [`VaultClient::raw`] on the same transport.
//!
//! Retries inside one call: connection errors, timeouts, 5xx and 429 are retried up to
//! `vault.retry.num_retries` times with a growing, fully jittered backoff (or the server's
//! `Retry-After`); any other 4xx is returned at once. Long outages are the caller's business:
//! it backs off between calls with the auth method's `min_backoff`..`max_backoff`.
//!
//! Secrets: response tokens are deserialized straight into [`Secret`]; request bodies and
//! headers are never logged; errors carry Vault's error text, which does not echo credentials.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use rustify::endpoint::Endpoint;
use serde::Deserialize;
use vaultrs::api::EndpointMiddleware;

use crate::config;
use crate::schedule;
use crate::secret::Secret;
pub(crate) use crate::tls::Trust;

/// The longest a TCP/TLS connection to Vault may take to open (within the request timeout,
/// `vault.client_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between retries inside one call: full jitter between `RETRY_MIN` and a ceiling that
/// doubles from it up to `RETRY_MAX` ([`schedule::backoff_delay`]). The cap stays short: a call
/// gives up (and the failure reaches the metrics and the caller's backoff) within seconds; a
/// longer cap would spread a fleet's return after an outage further, at that price.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// The longest `Retry-After` honoured; a longer one is cut to this.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);
/// How long one call keeps retrying while Vault is down (no answer, or 502/503/504: stopped,
/// sealed, restarting, no leader). A restart or a leader election is ridden inside the call;
/// a longer outage is handed to the caller's own backoff, which spreads a fleet's returns over
/// time (a renewal's over its certificate's time left) where a few-second retry cap would bring
/// every agent back within seconds of Vault's return.
const DOWN_WINDOW: Duration = Duration::from_secs(5);

/// Why a call to Vault failed. Callers branch on [`VaultError::is_forbidden`] (log in again)
/// and [`VaultError::is_retryable`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum VaultError {
    /// No HTTP answer: connection refused, reset, DNS.
    #[error("cannot reach Vault at {address}: {detail}")]
    Unreachable {
        /// Vault's address.
        address: String,
        /// The transport's words.
        detail: String,
    },
    /// No answer within `vault.client_timeout`.
    #[error("Vault at {address} did not answer within {}s (vault.client_timeout, VAULT_CLIENT_TIMEOUT)", timeout.as_secs_f64())]
    Timeout {
        /// Vault's address.
        address: String,
        /// The limit that was reached.
        timeout: Duration,
    },
    /// The server's certificate did not verify.
    #[error("cannot verify the TLS certificate of Vault at {address} with {trust}: {detail}")]
    Certificate {
        /// Vault's address.
        address: String,
        /// What was trusted.
        trust: Trust,
        /// rustls's words.
        detail: String,
    },
    /// Vault answered with an error status.
    #[error("Vault answered {status} to {operation}: {message}")]
    Api {
        /// What was being done (`login`, `renew_self`, ...).
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// Vault's `errors`, joined.
        message: String,
        /// `Retry-After`, when Vault sent one.
        retry_after: Option<Duration>,
    },
    /// A 2xx answer that is not what the call expects.
    #[error("unexpected answer from Vault to {operation}: {detail}")]
    Protocol {
        /// What was being done.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl VaultError {
    /// Worth trying the same request again later.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            VaultError::Unreachable { .. } | VaultError::Timeout { .. } => true,
            VaultError::Api { status, .. } => *status == 429 || *status >= 500,
            VaultError::Certificate { .. } | VaultError::Protocol { .. } => false,
        }
    }

    /// Vault is not serving at all: no answer, or the gateway's or Vault's own 502/503/504
    /// (sealed, standby without an active node, restarting).
    pub(crate) fn is_vault_down(&self) -> bool {
        match self {
            VaultError::Unreachable { .. } | VaultError::Timeout { .. } => true,
            VaultError::Api { status, .. } => matches!(status, 502..=504),
            VaultError::Certificate { .. } | VaultError::Protocol { .. } => false,
        }
    }

    /// Vault refused the token or credentials (403): log in again rather than retry.
    pub(crate) fn is_forbidden(&self) -> bool {
        matches!(self, VaultError::Api { status: 403, .. })
    }

    /// The HTTP status, when Vault answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            VaultError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Every `kind` label value, for exporting an operation's error counters at 0 before its
    /// first failure (a counter born at 1 shows no increase to `rate()`).
    /// (`protocol` is not one: an answer is judged after the exchange, which succeeded.)
    pub(crate) const KINDS: [&'static str; 6] = [
        "unreachable",
        "timeout",
        "certificate",
        "status_4xx",
        "status_5xx",
        "status_other",
    ];

    /// The `kind` label of `pki_sidecar_vault_request_errors_total`: `unreachable`,
    /// `timeout`, `certificate`, `status_4xx`, `status_5xx` (any other status is `status_other`),
    /// or `protocol`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            VaultError::Unreachable { .. } => "unreachable",
            VaultError::Timeout { .. } => "timeout",
            VaultError::Certificate { .. } => "certificate",
            VaultError::Api { status, .. } => match status {
                400..=499 => "status_4xx",
                500..=599 => "status_5xx",
                _ => "status_other",
            },
            VaultError::Protocol { .. } => "protocol",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            VaultError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A token as Vault handed it out.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The token itself.
    pub secret: Secret,
    /// Its TTL when received; zero means it never expires.
    pub ttl: Duration,
    /// Whether `renew-self` can extend it.
    pub renewable: bool,
    /// Its accessor (not secret: it cannot be used to authenticate).
    pub accessor: String,
    /// Policies attached.
    pub policies: Vec<String>,
    /// When it was received (monotonic).
    pub received_at: Instant,
    /// When it expires (wall clock), for metrics.
    pub expires_at: Option<std::time::SystemTime>,
}

impl Token {
    /// When the TTL runs out, or `None` for a token without expiry.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (!self.ttl.is_zero()).then(|| self.received_at + self.ttl)
    }
}

/// `request_duration_seconds` by operation, and the failed exchanges by operation and kind.
#[derive(Clone)]
pub(crate) struct VaultMetrics {
    duration: HistogramVec,
    errors: IntCounterVec,
}

impl VaultMetrics {
    /// Registers the Vault request histogram in `registry`.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<VaultMetrics> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "pki_sidecar_vault_request_duration_seconds",
                "Time per HTTP exchange with Vault, by operation, including failed ones.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["operation"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "pki_sidecar_vault_request_errors_total",
                "HTTP exchanges with Vault that failed, retried ones included, by operation and \
                 kind (unreachable, timeout, certificate, status_4xx, status_5xx, status_other).",
            ),
            &["operation", "kind"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(VaultMetrics { duration, errors })
    }
}

/// Talks to one Vault server.
/// A lease or TTL Vault sent, in seconds, as a duration the agent can add to a clock: capped at
/// ten years (the longest duration a config accepts), so that a huge value from a buggy or
/// hostile server cannot overflow an `Instant`.
pub(crate) fn lease(seconds: u64) -> Duration {
    Duration::from_secs(seconds).min(crate::units::MAX_DURATION)
}

/// What the agent calls itself in its requests to Vault.
pub(crate) const USER_AGENT: &str = concat!("pki-sidecar/", env!("CARGO_PKG_VERSION"));

#[derive(Clone)]
pub(crate) struct VaultClient {
    http: reqwest::Client,
    address: String,
    namespace: Option<String>,
    retries: u32,
    /// How long a call retries while Vault is down ([`DOWN_WINDOW`]); `None`: all `retries`.
    down_window: Option<Duration>,
    timeout: Duration,
    trust: Trust,
    metrics: VaultMetrics,
    /// The settings it was built from, for a login over other TLS ([`VaultClient::with_login_tls`]).
    settings: config::Vault,
    /// Requests in flight at once, shared by the clones ([`VaultClient::limit_in_flight`]).
    in_flight: Option<std::sync::Arc<tokio::sync::Semaphore>>,
}

impl VaultClient {
    /// A client for `vault`; reads the CA and client certificate files now.
    pub(crate) fn new(vault: &config::Vault, metrics: VaultMetrics) -> anyhow::Result<VaultClient> {
        VaultClient::build(vault, metrics, true)
    }

    /// The same client, but closing each connection after its request instead of keeping it
    /// for the next (Vault Agent's `disable_idle_connections` / `disable_keep_alives`, for a
    /// load balancer that must see new connections); its own pool, the rest shared.
    pub(crate) fn without_connection_reuse(&self) -> anyhow::Result<VaultClient> {
        let mut fresh = VaultClient::build(&self.settings, self.metrics.clone(), false)?;
        fresh.retries = self.retries;
        fresh.down_window = self.down_window;
        fresh.in_flight = self.in_flight.clone();
        Ok(fresh)
    }

    fn build(
        vault: &config::Vault,
        metrics: VaultMetrics,
        reuse_connections: bool,
    ) -> anyhow::Result<VaultClient> {
        let settings = crate::tls::ClientSettings {
            ca_cert: vault.ca_cert.clone(),
            ca_path: vault.ca_path.clone(),
            client_cert: vault.client_cert.clone().zip(vault.client_key.clone()),
            tls_skip_verify: vault.tls_skip_verify,
            tls_server_name: vault.tls_server_name.clone(),
            // Plain HTTP needs TLS only after a redirect to https://: the system's store is
            // read then, not at start (it is most of the agent's start-up otherwise).
            system_roots_on_first_use: vault
                .address
                .get(..7)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://")),
        };
        let (tls, trust) = crate::tls::client_config(&settings)?;
        if vault.tls_skip_verify {
            tracing::warn!(
                address = %vault.address,
                "TLS VERIFICATION OF VAULT IS DISABLED (tls_skip_verify / VAULT_SKIP_VERIFY): \
                 anyone on the network path can impersonate Vault and read the tokens and keys \
                 sent to it"
            );
        }
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // Vault's audit log can then tell this agent's requests from other clients'.
            .user_agent(USER_AGENT)
            .timeout(vault.client_timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(vault.client_timeout))
            .pool_idle_timeout(Duration::from_secs(60));
        if !reuse_connections {
            http = http.pool_max_idle_per_host(0);
        }
        let http = http
            .build()
            .context("cannot build the HTTP client for Vault")?;
        Ok(VaultClient {
            http,
            address: vault.address.clone(),
            namespace: vault.namespace.clone(),
            retries: vault.num_retries,
            down_window: Some(DOWN_WINDOW),
            timeout: vault.client_timeout,
            trust,
            metrics,
            settings: vault.clone(),
            in_flight: None,
        })
    }

    /// This client's calls use all of `vault.retry.num_retries` while Vault is down, for a
    /// caller with no backoff of its own to hand the outage to (`exit_on_retry_failure`).
    pub(crate) fn retrying_while_down(mut self) -> VaultClient {
        self.down_window = None;
        self
    }

    /// Vault's address.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Logs in with a Kubernetes ServiceAccount JWT.
    pub(crate) async fn login_kubernetes(
        &self,
        mount: &str,
        role: &str,
        jwt: &Secret,
        namespace: Option<&str>,
    ) -> Result<Token, VaultError> {
        let endpoint = vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest {
            mount: mount.to_string(),
            role: role.to_string(),
            jwt: jwt.expose().to_string(),
        };
        self.login("login", endpoint, namespace).await
    }

    /// Logs in with an AppRole role ID and (optional) secret ID.
    pub(crate) async fn login_approle(
        &self,
        mount: &str,
        role_id: &str,
        secret_id: &Secret,
        namespace: Option<&str>,
    ) -> Result<Token, VaultError> {
        let endpoint = vaultrs::api::auth::approle::requests::LoginWithApproleRequest {
            mount: mount.to_string(),
            role_id: role_id.to_string(),
            secret_id: secret_id.expose().to_string(),
        };
        self.login("login", endpoint, namespace).await
    }

    /// A client like this one whose TLS presents `client` (certificate and key files, read
    /// now) and, with `ca_cert`, verifies Vault with that CA: the `cert` method's login.
    pub(crate) fn with_login_tls(
        &self,
        client: Option<(std::path::PathBuf, std::path::PathBuf)>,
        ca_cert: Option<std::path::PathBuf>,
    ) -> anyhow::Result<VaultClient> {
        let mut settings = self.settings.clone();
        if let Some((cert, key)) = client {
            settings.client_cert = Some(cert);
            settings.client_key = Some(key);
        }
        if let Some(ca) = ca_cert {
            settings.ca_cert = Some(ca);
            settings.ca_path = None;
        }
        let mut login = VaultClient::new(&settings, self.metrics.clone())?;
        login.retries = self.retries;
        login.down_window = self.down_window;
        login.in_flight = self.in_flight.clone();
        Ok(login)
    }

    /// Logs in with the TLS client certificate this client presents (`auth/{mount}/login`),
    /// against the certificate role `name` when given.
    pub(crate) async fn login_cert(
        &self,
        mount: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Token, VaultError> {
        let operation = "login";
        let url = format!("{}/v1/auth/{mount}/login", self.address);
        let mut headers = HeaderMap::new();
        self.auth_headers(&mut headers, None, namespace)?;
        let body = match name {
            Some(name) => serde_json::json!({ "name": name }),
            None => serde_json::json!({}),
        };
        let bytes = self
            .send(
                operation,
                &http::Method::POST,
                &url,
                &headers,
                body.to_string().as_bytes(),
            )
            .await?;
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|err| VaultError::Protocol {
                operation,
                detail: format!("not JSON: {err}"),
            })?;
        token_from_auth(operation, envelope.auth)
    }

    /// Logs in with a JWT.
    pub(crate) async fn login_jwt(
        &self,
        mount: &str,
        role: &str,
        jwt: &Secret,
        namespace: Option<&str>,
    ) -> Result<Token, VaultError> {
        let endpoint = vaultrs::api::auth::oidc::requests::JWTLoginRequest {
            mount: mount.to_string(),
            jwt: jwt.expose().to_string(),
            role: Some(role.to_string()),
        };
        self.login("login", endpoint, namespace).await
    }

    /// Extends `token` by `increment` (its original TTL); Vault caps it at the max TTL.
    pub(crate) async fn renew_self(
        &self,
        token: &Token,
        increment: Duration,
    ) -> Result<Token, VaultError> {
        let endpoint = vaultrs::api::token::requests::RenewTokenSelfRequest {
            increment: Some(format!("{}s", increment.as_secs().max(1))),
        };
        let middleware = self.middleware(Some(&token.secret), None);
        let envelope = self.execute("renew_self", endpoint, &middleware).await?;
        token_from_auth("renew_self", envelope.auth)
    }

    /// What Vault knows of `secret` (for a token read from a file): TTL, renewability.
    pub(crate) async fn lookup_self(&self, secret: &Secret) -> Result<Token, VaultError> {
        let endpoint = vaultrs::api::token::requests::LookupTokenSelfRequest {};
        let middleware = self.middleware(Some(secret), None);
        let envelope = self.execute("lookup_self", endpoint, &middleware).await?;
        let data = envelope.data.ok_or_else(|| VaultError::Protocol {
            operation: "lookup_self",
            detail: "no data in the answer".into(),
        })?;
        let lookup: LookupData =
            serde_json::from_value(data).map_err(|err| VaultError::Protocol {
                operation: "lookup_self",
                detail: err.to_string(),
            })?;
        let received_at = Instant::now();
        let ttl = lease(lookup.ttl);
        Ok(Token {
            secret: secret.clone(),
            ttl,
            renewable: lookup.renewable,
            accessor: lookup.accessor.unwrap_or_default(),
            policies: lookup.policies.unwrap_or_default(),
            received_at,
            expires_at: (!ttl.is_zero()).then(|| std::time::SystemTime::now() + ttl),
        })
    }

    /// A request vaultrs has no endpoint for: `method` on `/v1/{path}` with a JSON body; returns
    /// the response's JSON.
    pub(crate) async fn raw(
        &self,
        operation: &'static str,
        method: http::Method,
        path: &str,
        token: &Secret,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, VaultError> {
        let url = format!("{}/v1/{}", self.address, path.trim_start_matches('/'));
        let mut headers = HeaderMap::new();
        self.auth_headers(&mut headers, Some(token), None)?;
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let bytes = self.send(operation, &method, &url, &headers, &body).await?;
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|err| VaultError::Protocol {
            operation,
            detail: format!("not JSON: {err}"),
        })
    }

    /// `sys/wrapping/wrap` of `token` itself for `ttl`, as Vault Agent does for a sink with
    /// `wrap_ttl`: what goes in the sink is the response's `wrap_info` as JSON, its fields in
    /// the order of Go's `api.SecretWrapInfo` (`token`, `accessor`, `ttl`, `creation_time`,
    /// `creation_path`, `wrapped_accessor`); `sys/wrapping/unwrap` with its `token` gives
    /// `{"token": ...}` back, once.
    pub(crate) async fn wrap_token(
        &self,
        token: &Secret,
        ttl: Duration,
    ) -> Result<Secret, VaultError> {
        /// Go's `api.SecretWrapInfo`, fields in its order.
        #[derive(Deserialize, serde::Serialize)]
        struct WrapInfo {
            token: String,
            accessor: String,
            ttl: u64,
            creation_time: String,
            creation_path: String,
            #[serde(default)]
            wrapped_accessor: String,
        }
        #[derive(Deserialize)]
        struct Wrapped {
            wrap_info: Option<WrapInfo>,
        }
        let operation = "wrap";
        let url = format!("{}/v1/sys/wrapping/wrap", self.address);
        let mut headers = HeaderMap::new();
        self.auth_headers(&mut headers, Some(token), None)?;
        headers.insert(
            "X-Vault-Wrap-TTL",
            http::HeaderValue::from(ttl.as_secs().max(1)),
        );
        let body = Secret::new(serde_json::json!({ "token": token.expose() }).to_string());
        let bytes = self
            .send(
                operation,
                &http::Method::POST,
                &url,
                &headers,
                body.expose().as_bytes(),
            )
            .await?;
        let protocol = |detail: String| VaultError::Protocol { operation, detail };
        let wrapped: Wrapped =
            serde_json::from_slice(&bytes).map_err(|err| protocol(format!("not JSON: {err}")))?;
        let info = wrapped
            .wrap_info
            .ok_or_else(|| protocol("the response has no wrap_info".to_string()))?;
        // A line, as Vault Agent's sink writes it (Go's JSON encoder ends it with a newline).
        serde_json::to_string(&info)
            .map(|json| Secret::new(json + "\n"))
            .map_err(|err| protocol(err.to_string()))
    }

    /// One request passed through to Vault as it came (the agent's API proxy): `path_and_query`
    /// under the address, `headers` as given plus the namespace when they carry none, one
    /// attempt, the client's timeout. Vault's answer comes back whatever its status; an error
    /// is only a failure to reach Vault.
    pub(crate) async fn forward(
        &self,
        method: http::Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), VaultError> {
        if let Some(namespace) = &self.namespace
            && !headers.contains_key("X-Vault-Namespace")
            && let Ok(value) = http::HeaderValue::from_str(namespace)
        {
            headers.insert("X-Vault-Namespace", value);
        }
        let url = format!("{}{path_and_query}", self.address);
        let response = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        Ok((status, headers, body))
    }

    /// What the client trusts for Vault's certificate, in words.
    pub(crate) fn trust(&self) -> &Trust {
        &self.trust
    }

    /// `GET sys/health` without a token: whether Vault answers, over the same TLS as every other
    /// call. A standby answers 200 too (`standbyok`); sealed or uninitialized is an error.
    pub(crate) async fn health(&self) -> Result<serde_json::Value, VaultError> {
        let url = format!(
            "{}/v1/sys/health?standbyok=true&perfstandbyok=true",
            self.address
        );
        let mut headers = HeaderMap::new();
        self.auth_headers(&mut headers, None, None)?;
        let bytes = self
            .send("health", &http::Method::GET, &url, &headers, &[])
            .await?;
        serde_json::from_slice(&bytes).map_err(|err| VaultError::Protocol {
            operation: "health",
            detail: format!("not JSON: {err}"),
        })
    }

    async fn login<E: Endpoint>(
        &self,
        operation: &'static str,
        endpoint: E,
        namespace: Option<&str>,
    ) -> Result<Token, VaultError> {
        let middleware = self.middleware(None, namespace);
        let envelope = self.execute(operation, endpoint, &middleware).await?;
        token_from_auth(operation, envelope.auth)
    }

    fn middleware(&self, token: Option<&Secret>, namespace: Option<&str>) -> EndpointMiddleware {
        EndpointMiddleware {
            token: token.map(|t| t.expose().to_string()).unwrap_or_default(),
            version: "v1".to_string(),
            wrap: None,
            namespace: namespace
                .map(str::to_string)
                .or_else(|| self.namespace.clone()),
        }
    }

    fn auth_headers(
        &self,
        headers: &mut HeaderMap,
        token: Option<&Secret>,
        namespace: Option<&str>,
    ) -> Result<(), VaultError> {
        if let Some(token) = token {
            let mut value =
                http::HeaderValue::from_str(token.expose()).map_err(|_| VaultError::Protocol {
                    operation: "request",
                    detail: "the token contains characters not allowed in an HTTP header".into(),
                })?;
            value.set_sensitive(true);
            headers.insert("X-Vault-Token", value);
        }
        if let Some(namespace) = namespace
            .map(str::to_string)
            .or_else(|| self.namespace.clone())
            && let Ok(value) = http::HeaderValue::from_str(&namespace)
        {
            headers.insert("X-Vault-Namespace", value);
        }
        headers.insert("X-Vault-Request", http::HeaderValue::from_static("true"));
        Ok(())
    }

    /// Builds the request with vaultrs, sends it with retries, parses Vault's envelope.
    async fn execute<E: Endpoint>(
        &self,
        operation: &'static str,
        endpoint: E,
        middleware: &EndpointMiddleware,
    ) -> Result<Envelope, VaultError> {
        // vaultrs's middleware puts a token in a header with `unwrap`; refuse bad ones first.
        if http::HeaderValue::from_str(&middleware.token).is_err() {
            return Err(VaultError::Protocol {
                operation,
                detail: "the token contains characters not allowed in an HTTP header".into(),
            });
        }
        let request = endpoint
            .with_middleware(middleware)
            .request(&self.address)
            .map_err(|err| VaultError::Protocol {
                operation,
                detail: format!("cannot build the request: {err}"),
            })?;
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        if let Some(token) = headers.get_mut("X-Vault-Token") {
            token.set_sensitive(true);
        }
        let url = parts.uri.to_string();
        let bytes = self
            .send(operation, &parts.method, &url, &headers, &body)
            .await?;
        if bytes.is_empty() {
            return Ok(Envelope::default());
        }
        serde_json::from_slice(&bytes).map_err(|err| VaultError::Protocol {
            operation,
            detail: format!("not a Vault response: {err}"),
        })
    }

    /// At most `requests` requests in flight to Vault at once, from this client and its
    /// clones: `template_config.max_connections_per_host`. Each request holds a connection of
    /// its own (HTTP/1.1), so this caps the connections the agent opens to Vault; a request
    /// beyond it waits for one to finish. Retries wait outside the limit.
    pub(crate) fn limit_in_flight(mut self, requests: usize) -> VaultClient {
        self.in_flight = Some(std::sync::Arc::new(tokio::sync::Semaphore::new(requests)));
        self
    }

    /// One call: up to `1 + retries` attempts.
    async fn send(
        &self,
        operation: &'static str,
        method: &http::Method,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Bytes, VaultError> {
        let histogram = self.metrics.duration.with_label_values(&[operation]);
        // Calls to Vault are a few an hour: a lookup per kind costs nothing here.
        for kind in VaultError::KINDS {
            self.metrics.errors.with_label_values(&[operation, kind]);
        }
        let mut attempt = 0;
        let call_started = Instant::now();
        loop {
            // The semaphore is never closed: acquiring fails only then.
            let permit = match &self.in_flight {
                Some(limit) => limit.acquire().await.ok(),
                None => None,
            };
            let started = Instant::now();
            let result = self
                .http
                .request(method.clone(), url)
                .headers(headers.clone())
                .body(body.to_vec())
                .send()
                .await;
            let outcome = match result {
                Ok(response) => self.read_response(operation, response).await,
                Err(err) => Err(self.transport_error(&err)),
            };
            drop(permit);
            histogram.observe(started.elapsed().as_secs_f64());
            if let Err(err) = &outcome {
                self.metrics
                    .errors
                    .with_label_values(&[operation, err.kind()])
                    .inc();
            }
            match outcome {
                Ok(bytes) => return Ok(bytes),
                Err(err) if err.is_retryable() && attempt < self.retries => {
                    let wait = err.retry_after().map_or_else(
                        || schedule::backoff_delay(attempt, RETRY_MIN, RETRY_MAX, fastrand::f64()),
                        |after| after.min(RETRY_AFTER_CAP),
                    );
                    if let Some(window) = self.down_window.filter(|_| err.is_vault_down())
                        && call_started.elapsed() + wait > window
                    {
                        tracing::warn!(
                            vault = %self.address,
                            operation,
                            error = %err,
                            attempt = attempt + 1,
                            failing_for_seconds =
                                crate::timefmt::log_seconds(call_started.elapsed()),
                            "Vault is down; this call stops retrying and leaves the next \
                             attempt to its caller's backoff"
                        );
                        return Err(err);
                    }
                    // At once and at every retry: an unreachable Vault is never silent
                    // while the call works through its retries.
                    tracing::warn!(
                        vault = %self.address,
                        operation,
                        error = %err,
                        attempt = attempt + 1,
                        attempts = self.retries + 1,
                        retry_in_seconds = crate::timefmt::log_seconds(wait),
                        next_attempt_at = crate::timefmt::log_time_after(
                            std::time::SystemTime::now(),
                            wait
                        ),
                        "Vault request failed; retrying"
                    );
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn read_response(
        &self,
        operation: &'static str,
        response: reqwest::Response,
    ) -> Result<Bytes, VaultError> {
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(VaultError::Api {
            operation,
            status: status.as_u16(),
            message: error_message(status, &bytes),
            retry_after,
        })
    }

    fn transport_error(&self, err: &reqwest::Error) -> VaultError {
        if err.is_timeout() {
            return VaultError::Timeout {
                address: self.address.clone(),
                timeout: self.timeout,
            };
        }
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = find_rustls_error(err) {
            return VaultError::Certificate {
                address: self.address.clone(),
                trust: self.trust.clone(),
                detail: tls.to_string(),
            };
        }
        VaultError::Unreachable {
            address: self.address.clone(),
            detail: error_chain(err),
        }
    }
}

/// The rustls error behind a transport error. The TLS connector wraps it in `io::Error`s
/// (nested), whose `source()` skips the wrapped error, so those are opened with `get_ref`.
fn find_rustls_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// `a: b: c` from an error and its sources, without repeats (reqwest nests the same words).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        let text = current.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

/// Vault's `{"errors": [...]}`, or the start of the body, or the status text.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<Errors>(body)
        && !parsed.errors.is_empty()
    {
        return parsed.errors.join("; ").replace('\n', " ");
    }
    // Not Vault's own answer: a load balancer's or proxy's page, such as haproxy's 503 when no
    // Vault node is active. One line for the log, tags dropped from an HTML page.
    let text = String::from_utf8_lossy(body);
    let text = if text.trim_start().starts_with('<') {
        strip_tags(&text)
    } else {
        text.into_owned()
    };
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.chars().take(200).collect()
    }
}

/// `html` without its tags, each replaced by a space (`<h1>503</h1>No server` is `503 No
/// server`); entities stay as they are.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// `Retry-After` as seconds (the HTTP-date form is rare from Vault and is ignored).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Vault's response envelope, as far as this program reads it.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    data: Option<serde_json::Value>,
    auth: Option<AuthBlock>,
}

/// `auth` in a login or renew answer.
#[derive(Debug, Deserialize)]
struct AuthBlock {
    client_token: Secret,
    #[serde(default)]
    accessor: String,
    #[serde(default)]
    policies: Option<Vec<String>>,
    lease_duration: u64,
    renewable: bool,
}

/// `data` in a lookup-self answer.
#[derive(Debug, Deserialize)]
struct LookupData {
    ttl: u64,
    #[serde(default)]
    renewable: bool,
    accessor: Option<String>,
    policies: Option<Vec<String>>,
}

fn token_from_auth(operation: &'static str, auth: Option<AuthBlock>) -> Result<Token, VaultError> {
    let auth = auth.ok_or_else(|| VaultError::Protocol {
        operation,
        detail: "no auth block in the answer".into(),
    })?;
    if auth.client_token.is_empty() {
        return Err(VaultError::Protocol {
            operation,
            detail: "an empty client token".into(),
        });
    }
    let ttl = lease(auth.lease_duration);
    Ok(Token {
        secret: auth.client_token,
        ttl,
        renewable: auth.renewable,
        accessor: auth.accessor,
        policies: auth.policies.unwrap_or_default(),
        received_at: Instant::now(),
        expires_at: (!ttl.is_zero()).then(|| std::time::SystemTime::now() + ttl),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_for_the_caller() {
        let api = |status| VaultError::Api {
            operation: "login",
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(api(500).is_retryable());
        assert!(api(503).is_retryable());
        assert!(api(429).is_retryable());
        assert!(!api(400).is_retryable());
        assert!(!api(403).is_retryable());
        assert!(api(403).is_forbidden());
        assert!(
            VaultError::Timeout {
                address: "a".into(),
                timeout: Duration::from_secs(30),
            }
            .is_retryable()
        );
    }

    #[test]
    fn vault_error_bodies_become_messages() {
        let body = br#"{"errors":["permission denied","invalid role"]}"#;
        assert_eq!(
            error_message(StatusCode::FORBIDDEN, body),
            "permission denied; invalid role"
        );
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"upstream down"),
            "upstream down"
        );
    }

    #[test]
    fn a_load_balancers_page_becomes_one_line() {
        // haproxy 2.6's answer when no server is up (an OpenBao cluster with no active node,
        // sealed or electing), byte for byte.
        let haproxy = b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available \
            to handle this request.\n</body></html>\n";
        assert_eq!(
            error_message(StatusCode::SERVICE_UNAVAILABLE, haproxy),
            "503 Service Unavailable No server is available to handle this request."
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"line one\r\nline\ttwo\x1b[31m\n"),
            "line one line two [31m"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"<html><body></body></html>"),
            "Bad Gateway"
        );
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("7"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn auth_blocks_keep_the_token_secret() {
        let json = r#"{"auth":{"client_token":"s.abc","accessor":"acc","policies":["pki"],
                      "lease_duration":60,"renewable":true}}"#;
        let envelope: Envelope = serde_json::from_str(json).unwrap();
        let token = token_from_auth("login", envelope.auth).unwrap();
        assert_eq!(token.secret.expose(), "s.abc");
        assert!(!format!("{token:?}").contains("s.abc"));
        assert_eq!(token.ttl, Duration::from_secs(60));
    }

    /// A scripted HTTP server: answers each connection's request with the next canned
    /// response (status, extra header, body), and records when each request came.
    /// Status, one extra header, body.
    type Canned = (u16, Option<(&'static str, &'static str)>, &'static str);

    async fn scripted_server(
        responses: Vec<Canned>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            for (status, header, body) in responses {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buffer = vec![0; 8192];
                let _ = stream.read(&mut buffer).await.unwrap();
                record.lock().unwrap().push(Instant::now());
                let extra = header.map_or(String::new(), |(n, v)| format!("{n}: {v}\r\n"));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (address, seen)
    }

    fn client_for(address: &str, retries: u32) -> VaultClient {
        client_in(address, retries, &Registry::new())
    }

    /// A client whose metrics are registered in `registry`.
    fn client_in(address: &str, retries: u32, registry: &Registry) -> VaultClient {
        let config = config::Vault {
            address: address.to_string(),
            ca_cert: None,
            ca_path: None,
            client_cert: None,
            client_key: None,
            tls_skip_verify: false,
            tls_server_name: None,
            namespace: Some("team-a".into()),
            num_retries: retries,
            client_timeout: Duration::from_secs(30),
        };
        VaultClient::new(&config, VaultMetrics::register(registry).unwrap()).unwrap()
    }

    /// The value of `pki_sidecar_vault_request_errors_total{operation, kind}` in `registry`
    /// (0 while the series does not exist).
    fn errors_counted(registry: &Registry, operation: &str, kind: &str) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == "pki_sidecar_vault_request_errors_total")
            .flat_map(|family| family.get_metric())
            .filter(|metric| {
                let labels: Vec<(&str, &str)> = metric
                    .get_label()
                    .iter()
                    .map(|label| (label.name(), label.value()))
                    .collect();
                labels.contains(&("operation", operation)) && labels.contains(&("kind", kind))
            })
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }

    const LOGIN_OK: &str = r#"{"auth":{"client_token":"s.ok","accessor":"a","policies":["pki"],"lease_duration":30,"renewable":true}}"#;

    #[test]
    fn leases_are_capped_so_clocks_cannot_overflow() {
        assert_eq!(lease(3600), Duration::from_secs(3600));
        let huge = lease(u64::MAX);
        assert_eq!(huge, crate::units::MAX_DURATION);
        let _ = Instant::now() + huge;
        let json = r#"{"auth":{"client_token":"s.abc","accessor":"a","policies":[],
                      "lease_duration":18446744073709551615,"renewable":true}}"#;
        let envelope: Envelope = serde_json::from_str(json).unwrap();
        let token = token_from_auth("login", envelope.auth).unwrap();
        assert!(token.deadline().is_some());
    }

    #[tokio::test]
    async fn requests_name_pki_sidecar_and_its_version_as_user_agent() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0; 8192];
            let read = stream.read(&mut buffer).await.unwrap();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{LOGIN_OK}",
                LOGIN_OK.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buffer[..read]).to_lowercase()
        });
        let client = client_for(&address, 0);
        let jwt = Secret::new("eyJ.x.y".into());
        client
            .login_kubernetes("kubernetes", "authkube", &jwt, None)
            .await
            .unwrap();
        let request = server.await.unwrap();
        let expected = format!("user-agent: pki-sidecar/{}\r\n", env!("CARGO_PKG_VERSION"));
        assert!(request.contains(&expected), "{request}");
    }

    #[tokio::test]
    async fn server_errors_and_429_are_retried_honouring_retry_after() {
        let (address, seen) = scripted_server(vec![
            (503, None, r#"{"errors":["sealed"]}"#),
            (
                429,
                Some(("Retry-After", "1")),
                r#"{"errors":["rate limited"]}"#,
            ),
            (200, None, LOGIN_OK),
        ])
        .await;
        let client = client_for(&address, 3);
        let jwt = Secret::new("eyJ.x.y".into());
        let token = client
            .login_kubernetes("kubernetes", "authkube", &jwt, None)
            .await
            .unwrap();
        assert_eq!(token.secret.expose(), "s.ok");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(
            seen[2] - seen[1] >= Duration::from_secs(1),
            "Retry-After: 1 was honoured"
        );
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        for status in [400, 403, 404] {
            let (address, seen) = scripted_server(vec![
                (status, None, r#"{"errors":["permission denied"]}"#),
                (200, None, LOGIN_OK),
            ])
            .await;
            let client = client_for(&address, 3);
            let err = client
                .login_kubernetes("kubernetes", "authkube", &Secret::new("j".into()), None)
                .await
                .unwrap_err();
            assert_eq!(err.status(), Some(status));
            assert_eq!(
                err.to_string(),
                format!("Vault answered {status} to login: permission denied")
            );
            assert_eq!(seen.lock().unwrap().len(), 1, "{status} is not retried");
        }
    }

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A server answering every login after `hold`, and the most requests it had at once.
    async fn slow_server(hold: Duration) -> (String, std::sync::Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let active = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = most.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let (active, most) = (active.clone(), most.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0; 8192];
                    let _ = stream.read(&mut buffer).await.unwrap();
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(hold).await;
                    active.fetch_sub(1, Ordering::SeqCst);
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{LOGIN_OK}",
                        LOGIN_OK.len()
                    );
                    stream.write_all(reply.as_bytes()).await.unwrap();
                });
            }
        });
        (address, seen)
    }

    /// `template_config.max_connections_per_host`: the agent's client never has more requests
    /// (so connections) in flight to Vault than the limit; the others wait and succeed.
    #[tokio::test]
    async fn requests_in_flight_stay_within_the_limit() {
        async fn six_logins(client: &VaultClient) {
            let mut logins = tokio::task::JoinSet::new();
            for _ in 0..6 {
                let client = client.clone();
                logins.spawn(async move {
                    let token = Secret::new("j".into());
                    client
                        .login_kubernetes("kubernetes", "r", &token, None)
                        .await
                        .map(|_| ())
                });
            }
            while let Some(result) = logins.join_next().await {
                result.unwrap().unwrap();
            }
        }
        let (address, most) = slow_server(Duration::from_millis(200)).await;
        six_logins(&client_for(&address, 0).limit_in_flight(2)).await;
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "never more than the limit at once"
        );
        // Without the limit the same six are all in flight together: the test can see it.
        let (address, most) = slow_server(Duration::from_millis(200)).await;
        six_logins(&client_for(&address, 0)).await;
        assert!(most.load(Ordering::SeqCst) > 2, "{most:?}");
    }

    #[tokio::test]
    async fn retries_stop_at_num_retries() {
        let (address, seen) = scripted_server(vec![
            (500, None, "{}"),
            (502, None, "{}"),
            (500, None, "{}"),
            (200, None, LOGIN_OK),
        ])
        .await;
        let client = client_for(&address, 1);
        let err = client
            .login_kubernetes("kubernetes", "authkube", &Secret::new("j".into()), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(502));
        assert_eq!(seen.lock().unwrap().len(), 2, "one try and one retry");
    }

    #[tokio::test]
    async fn failed_exchanges_are_counted_by_operation_and_kind_retries_included() {
        let registry = Registry::new();
        let (address, _) = scripted_server(vec![
            (503, None, r#"{"errors":["sealed"]}"#),
            (500, None, "{}"),
            (403, None, r#"{"errors":["permission denied"]}"#),
        ])
        .await;
        let client = client_in(&address, 3, &registry);
        let err = client
            .login_kubernetes("kubernetes", "authkube", &Secret::new("j".into()), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403));
        assert_eq!(errors_counted(&registry, "login", "status_5xx"), 2);
        assert_eq!(errors_counted(&registry, "login", "status_4xx"), 1);

        let registry = Registry::new();
        let client = client_in(&closed_port_address(), 0, &registry);
        client.health().await.unwrap_err();
        assert_eq!(errors_counted(&registry, "health", "unreachable"), 1);
        assert_eq!(errors_counted(&registry, "login", "unreachable"), 0);
        // An operation's series exist at 0 from its first call, so that its first failure is
        // an increase `rate()` sees.
        let exported = registry
            .gather()
            .iter()
            .filter(|family| family.name() == "pki_sidecar_vault_request_errors_total")
            .map(|family| family.get_metric().len())
            .sum::<usize>();
        assert_eq!(exported, VaultError::KINDS.len());
    }

    /// A closed loopback port: connections to it are refused.
    fn closed_port_address() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}")
    }

    #[test]
    fn down_means_no_answer_or_a_gateway_or_sealed_status() {
        let api = |status| VaultError::Api {
            operation: "issue",
            status,
            message: String::new(),
            retry_after: None,
        };
        for status in [502, 503, 504] {
            assert!(api(status).is_vault_down(), "{status}");
        }
        for status in [400, 403, 429, 500] {
            assert!(!api(status).is_vault_down(), "{status}");
        }
        let unreachable = VaultError::Unreachable {
            address: "a".into(),
            detail: "Connection refused".into(),
        };
        assert!(unreachable.is_vault_down());
    }

    #[tokio::test]
    async fn a_call_hands_a_down_vault_to_its_caller_after_the_window() {
        let registry = Registry::new();
        let mut client = client_in(&closed_port_address(), 12, &registry);
        client.down_window = Some(Duration::from_millis(700));
        let started = Instant::now();
        let err = client.health().await.unwrap_err();
        assert!(err.is_vault_down());
        let attempts = errors_counted(&registry, "health", "unreachable");
        // The waits are at least 250 ms: 0, ≥ 0.25, ≥ 0.5 s; never the 13 that 12 retries allow.
        assert!((2..=3).contains(&attempts), "{attempts} attempts");
        // Within the window and the one attempt that found it spent (margin for a busy machine).
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        // Without a window (`exit_on_retry_failure`: no backoff to hand over to), all retries.
        let registry = Registry::new();
        let client = client_in(&closed_port_address(), 3, &registry).retrying_while_down();
        client.health().await.unwrap_err();
        assert_eq!(errors_counted(&registry, "health", "unreachable"), 4);
    }

    #[tokio::test]
    async fn the_window_applies_to_a_down_vault_only() {
        // 500s are answers from a Vault that serves: every retry is used.
        let (address, seen) = scripted_server(vec![
            (500, None, "{}"),
            (500, None, "{}"),
            (200, None, LOGIN_OK),
        ])
        .await;
        let mut client = client_for(&address, 3);
        client.down_window = Some(Duration::ZERO);
        client
            .login_kubernetes("kubernetes", "authkube", &Secret::new("j".into()), None)
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        // A sealed Vault's 503 is handed over at once with a zero window.
        let (address, seen) = scripted_server(vec![
            (503, None, r#"{"errors":["Vault is sealed"]}"#),
            (200, None, LOGIN_OK),
        ])
        .await;
        let mut client = client_for(&address, 3);
        client.down_window = Some(Duration::ZERO);
        let err = client
            .login_kubernetes("kubernetes", "authkube", &Secret::new("j".into()), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_vault_is_named() {
        let address = closed_port_address();
        let client = client_for(&address, 0);
        let err = client
            .login_kubernetes("kubernetes", "authkube", &Secret::new("j".into()), None)
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach Vault at {address}: ")),
            "{err}"
        );
    }
}
