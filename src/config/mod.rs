//! Configuration: load Vault-Agent-style HCL files and the environment into one checked value.
//!
//! Layers, lowest first: built-in defaults, each `--config` file in order (later files win;
//! lists such as `template` are appended, as Vault Agent does with several `-config` files),
//! each `--config-env` variable's JSON agent file in order (as the Vault Agent Injector passes
//! `VAULT_CONFIG`; errors point into the variable's text by line), then `VAULT_*` / `BAO_*`
//! environment variables (a `BAO_*` twin wins), then command-line flags
//! ([`FlagOverride`]: `proxy --listen`, `--cert`...). figment does the layering;
//! [`hcl::HclFile`] reads each file (`json` the `.json` ones), `shape` brings every spelling of
//! a block to one form, `keys` drops (with a warning) the keys Vault Agent would ignore;
//! [`resolve`] turns the raw values into plain typed structs with every default applied, so
//! nothing downstream handles an `Option` that has a default.
//!
//! Loading is inert: it reads files and the environment and nothing else — no port is bound and
//! Vault is not called — so `pki-sidecar validate` can run anywhere.

pub(crate) mod error;
pub(crate) mod hcl;
mod json;
pub(crate) mod keys;
mod nginx;
pub(crate) mod raw;
mod resolve;
mod shape;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

pub use error::{ConfigError, ConfigErrors, ConfigWarning, EXIT_CONFIG};

use crate::template::Functions;

/// Which role a config is checked or run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The Vault Agent replacement.
    Agent,
    /// The TLS-terminating proxy.
    Proxy,
    /// The hello-world web server.
    App,
}

/// The whole configuration, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The files it was read from, in order.
    pub sources: Vec<PathBuf>,
    /// The files an nginx file's `include` read (the proxy reloads when they change too).
    pub included: Vec<PathBuf>,
    /// What loads but is probably a mistake (keys Vault Agent ignores, two templates writing
    /// one file); printed at start, errors under `--strict` or `pki_sidecar { strict = true }`.
    pub warnings: Vec<ConfigWarning>,
    /// `pki_sidecar { strict = true }`: warnings fail the load.
    pub strict: bool,
    /// `pid_file`: written at start, removed on clean exit.
    pub pid_file: Option<PathBuf>,
    /// `exit_after_auth`: log in once, write the sinks, exit.
    pub exit_after_auth: bool,
    /// `log_level` / `log_format` from the file (flags and `RUST_LOG` take precedence).
    pub logging: Logging,
    /// `shutdown_grace`: how long in-flight work may take after SIGTERM (default 10 s).
    pub shutdown_grace: Duration,
    /// `listen_backlog`: the accept queue of every listener (default 4096, capped by the kernel's
    /// `net.core.somaxconn`); `proxy`/`app` may override.
    pub listen_backlog: u32,
    /// `vault {}` merged with the environment.
    pub vault: Vault,
    /// `auto_auth {}`, if present.
    pub auto_auth: Option<AutoAuth>,
    /// `template_config {}`.
    pub template_config: TemplateConfig,
    /// Every `template {}`, in file order.
    pub templates: Vec<Template>,
    /// `telemetry {}`: the agent's own metrics listener.
    pub telemetry: Telemetry,
    /// `proxy {}` (its defaults when the files have none).
    pub proxy: Proxy,
    /// Whether any file had a `proxy {}` block (`doctor` then expects the listener to answer).
    pub proxy_configured: bool,
    /// `app {}`.
    pub app: App,
    /// `listener "tcp" {}` with `api_proxy {}` / `cache {}`: the local Vault API the agent
    /// serves, if any listener is configured.
    pub api_proxy: Option<ApiProxy>,
    /// Every `env_template`, by name.
    pub env_templates: Vec<EnvTemplate>,
    /// The top-level `exec {}`.
    pub exec: Option<Exec>,
    /// `pki_sidecar { revoke_token_on_shutdown = true }`: revoke the token this long after a
    /// stop signal (`revoke_grace`).
    pub revoke_on_shutdown: Option<Duration>,
    /// `disable_idle_connections` / `disable_keep_alives`: which parts close each connection
    /// to Vault after its request.
    pub fresh_connections: FreshConnections,
}

/// The parts of the agent whose connections to Vault are not reused (Vault Agent's
/// `disable_idle_connections` and `disable_keep_alives`, either of which closes a connection
/// after its request here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreshConnections {
    /// `auto-auth`: logins, token renewals and lookups.
    pub auto_auth: bool,
    /// `templating`: the templates' requests.
    pub templating: bool,
    /// `caching` / `proxying`: the API proxy's requests.
    pub api_proxy: bool,
}

/// Vault Agent's API proxy: requests to a local listener are forwarded to Vault, with the
/// agent's token when the client sends none (`use_auto_auth_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiProxy {
    /// Every `listener "tcp" {}`, in file order.
    pub listeners: Vec<ApiListener>,
    /// `use_auto_auth_token` (of `api_proxy {}`, or of `cache {}` where older files set it).
    pub use_auto_auth_token: AutoAuthToken,
    /// Whether the file has a `cache {}` block: nothing is cached, but Vault Agent's cache
    /// counters are then exported (every forwarded request a miss).
    pub cache: bool,
}

/// One `listener "tcp" {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiListener {
    /// `address` (default `127.0.0.1:8200`, Vault Agent's).
    pub address: SocketAddr,
    /// `require_request_header`: refuse (412) a request without `X-Vault-Request: true`.
    pub require_request_header: bool,
    /// `agent_api { enable_quit }`: `POST /agent/v1/quit` stops the agent.
    pub enable_quit: bool,
}

/// `use_auto_auth_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoAuthToken {
    /// `false` (the default): requests go to Vault with the client's own token, if any.
    Off,
    /// `true`: the agent's token when the request carries none.
    IfMissing,
    /// `"force"`: the agent's token, replacing any the request carries.
    Force,
}

/// Logging settings from the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Logging {
    /// A tracing filter directive such as `info` or `pki_sidecar=debug`.
    pub level: Option<String>,
    /// Text or JSON lines.
    pub format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (Vault's `standard`).
    #[value(alias = "standard")]
    Text,
    /// One JSON object per line.
    Json,
}

/// How the agent reaches Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vault {
    /// `http(s)://host:port`, no trailing slash.
    pub address: String,
    /// PEM bundle of CAs that sign Vault's certificate.
    pub ca_cert: Option<PathBuf>,
    /// Directory of PEM CA files.
    pub ca_path: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client key for mutual TLS.
    pub client_key: Option<PathBuf>,
    /// Skip verification of Vault's certificate (logged loudly).
    pub tls_skip_verify: bool,
    /// SNI name and name to verify, when it differs from the address's host.
    pub tls_server_name: Option<String>,
    /// Vault Enterprise / OpenBao namespace.
    pub namespace: Option<String>,
    /// How many times a failing request is retried (Vault's default is 12; -1 in the file
    /// disables retries and gives 0 here).
    pub num_retries: u32,
    /// How long one request to Vault may take, connection included (`VAULT_CLIENT_TIMEOUT`).
    pub client_timeout: Duration,
}

/// `auto_auth {}`.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoAuth {
    /// The login method.
    pub method: AuthMethod,
    /// Where the token is written.
    pub sinks: Vec<FileSink>,
}

/// `auto_auth { method {} }`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthMethod {
    /// The method and its own settings.
    pub kind: AuthKind,
    /// Mount path in Vault's form, `auth/kubernetes`.
    pub mount_path: String,
    /// Namespace to log in to, if not the client's.
    pub namespace: Option<String>,
    /// First wait after a failure.
    pub min_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Exit instead of retrying when login fails.
    pub exit_on_err: bool,
}

impl AuthMethod {
    /// The mount name as vaultrs wants it: `kubernetes` for `auth/kubernetes`.
    pub fn mount(&self) -> &str {
        self.mount_path
            .strip_prefix("auth/")
            .unwrap_or(&self.mount_path)
    }
}

/// The supported login methods and their `config {}` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    /// Kubernetes ServiceAccount login.
    Kubernetes {
        /// Vault role.
        role: String,
        /// The projected ServiceAccount token, re-read at every login.
        token_path: PathBuf,
    },
    /// AppRole login.
    AppRole {
        /// File holding the role ID.
        role_id_file_path: PathBuf,
        /// File holding the secret ID, if the role needs one.
        secret_id_file_path: Option<PathBuf>,
        /// Delete the secret ID file once read (Vault's default: true).
        remove_secret_id_file_after_reading: bool,
        /// `secret_id_response_wrapping_path`: the file holds a response-wrapping token,
        /// which must have been created at this path; the secret ID is unwrapped from it.
        secret_id_response_wrapping_path: Option<String>,
    },
    /// JWT/OIDC login with a JWT read from a file.
    Jwt {
        /// File holding the JWT.
        path: PathBuf,
        /// Vault role.
        role: String,
    },
    /// A token read from a file; no login.
    TokenFile {
        /// File holding the token.
        token_file_path: PathBuf,
    },
    /// TLS certificate login: the client certificate presented to Vault is the credential.
    Cert {
        /// The certificate role to log in against (`name`); Vault tries them all without it.
        name: Option<String>,
        /// The client certificate and key for the login (`client_cert`, `client_key`), read
        /// afresh at every login; without them, `vault {}`'s.
        client_cert: Option<PathBuf>,
        /// See `client_cert`.
        client_key: Option<PathBuf>,
        /// The CA that verifies Vault for the login (`ca_cert`); without it, `vault {}`'s.
        ca_cert: Option<PathBuf>,
    },
}

impl AuthKind {
    /// The method's name in Vault (`type`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            AuthKind::Kubernetes { .. } => "kubernetes",
            AuthKind::AppRole { .. } => "approle",
            AuthKind::Jwt { .. } => "jwt",
            AuthKind::TokenFile { .. } => "token_file",
            AuthKind::Cert { .. } => "cert",
        }
    }
}

/// `sink "file" { config { path, mode } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSink {
    /// Where the token is written.
    pub path: PathBuf,
    /// File mode (default 0640).
    pub mode: u32,
    /// `wrap_ttl`: the file holds a response-wrapping token for the agent's token, valid this
    /// long, rather than the token itself (the JSON of Vault's `wrap_info`, as Vault Agent
    /// writes it).
    pub wrap_ttl: Option<Duration>,
}

/// `template_config {}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateConfig {
    /// Exit when a template cannot be rendered after all retries.
    pub exit_on_retry_failure: bool,
    /// How often templates with only static secrets are re-rendered.
    pub static_secret_render_interval: Duration,
    /// Fraction of a certificate's lifetime after which it is renewed (default 2/3).
    pub lease_renewal_threshold: f64,
    /// Requests the agent has in flight to Vault at once, each on a connection of its own
    /// (Vault Agent: connections per host, 10 by default).
    pub max_connections_per_host: usize,
}

/// Vault Agent's `template_config.max_connections_per_host` default.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize = 10;

/// One `template {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Inline text or a file.
    pub source: TemplateSource,
    /// The rendered file.
    pub destination: PathBuf,
    /// Mode of the rendered file; `None` keeps an existing file's mode, else 0600 when it holds
    /// a private key and 0644 (Vault's default) otherwise.
    pub perms: Option<u32>,
    /// Create missing parent directories.
    pub create_dest_dirs: bool,
    /// Fail when a template reads a missing key.
    pub error_on_missing_key: bool,
    /// Opening delimiter, `{{` by default.
    pub left_delimiter: String,
    /// Closing delimiter, `}}` by default.
    pub right_delimiter: String,
    /// Run after the file changes.
    pub command: Option<TemplateCommand>,
    /// Limit for `command` (`exec { timeout }` when given).
    pub command_timeout: Duration,
    /// `user`: owner of the destination (a numeric id, names resolved at load).
    pub user: Option<u32>,
    /// `group`: group of the destination.
    pub group: Option<u32>,
    /// Quiescence timers before rendering.
    pub wait: Option<Wait>,
    /// `backup`: the destination's previous contents are kept in `DESTINATION.bak` when it
    /// changes (consul-template's backup).
    pub backup: bool,
}

/// One `env_template "NAME" { }`: a template rendered into an environment variable of the
/// `exec` child rather than a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvTemplate {
    /// The variable's name (the block's label).
    pub name: String,
    /// Inline text or a file.
    pub source: TemplateSource,
    /// Fail when the template reads a missing key.
    pub error_on_missing_key: bool,
    /// Opening delimiter, `{{` by default.
    pub left_delimiter: String,
    /// Closing delimiter, `}}` by default.
    pub right_delimiter: String,
}

impl EnvTemplate {
    /// The same text as a `template` without a file: how it is parsed and rendered.
    pub(crate) fn as_template(&self) -> Template {
        Template {
            source: self.source.clone(),
            destination: PathBuf::new(),
            perms: None,
            create_dest_dirs: false,
            error_on_missing_key: self.error_on_missing_key,
            left_delimiter: self.left_delimiter.clone(),
            right_delimiter: self.right_delimiter.clone(),
            command: None,
            command_timeout: Duration::ZERO,
            user: None,
            group: None,
            wait: None,
            backup: false,
        }
    }
}

/// The top-level `exec {}`: the child process the agent runs with the `env_template`
/// variables (Vault Agent's process supervisor mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// The program and its arguments; one string with a space runs under `sh -c`.
    pub command: TemplateCommand,
    /// Restart the child when a variable's value changes (`always`), or leave it (`never`).
    pub restart_on_secret_changes: bool,
    /// The signal that stops the child for a restart or at shutdown (`SIGTERM` by default).
    pub restart_stop_signal: i32,
}

/// Where a template's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// `contents = "..."`.
    Contents(String),
    /// `source = "/path"`.
    File(PathBuf),
}

/// `command`: a shell line or an argument vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateCommand {
    /// One string, run by `/bin/sh -c` as consul-template does.
    Shell(String),
    /// Program and arguments, run directly.
    Argv(Vec<String>),
}

/// `wait { min, max }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Wait at least this long after a change.
    pub min: Duration,
    /// Never wait longer than this.
    pub max: Duration,
}

/// `telemetry {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// The agent's `/metrics`, `/healthz`, `/readyz` listener.
    pub metrics_listen: SocketAddr,
    /// Whether a file set `metrics_listen` (else it is the default, which may be taken).
    pub metrics_listen_given: bool,
    /// `cert_labels`: the `cert` label of the certificate written to a file, when it should
    /// not be the file's base name (the default, which the proxy uses too).
    pub cert_labels: BTreeMap<PathBuf, String>,
    /// Its listen backlog: the top-level `listen_backlog`.
    pub listen_backlog: u32,
    /// The first word of the Vault Agent counters the agent exports beside its own
    /// (`vault_agent_auth_success`...): `metrics_prefix` made a metric name as Vault's
    /// Prometheus sink makes it, else both `vault` (Vault Agent's) and `bao` (OpenBao Agent's).
    pub vault_agent_prefixes: Vec<String>,
}

/// `proxy {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The TLS listener (the first of `listen`'s addresses).
    pub listen: SocketAddr,
    /// `listen`'s other addresses: the same server on each (nginx's several `listen ... ssl`).
    pub also_listen: Vec<SocketAddr>,
    /// Where requests go, `http://host:port`.
    pub upstream: http::Uri,
    /// `prefix_rewrite` or `upstream_uri`: what the upstream is sent as a request's target.
    pub upstream_target: UpstreamTarget,
    /// The certificate chain the agent writes.
    pub cert_file: PathBuf,
    /// The private key the agent writes.
    pub key_file: PathBuf,
    /// `cert_label`: the served certificate's `cert` label; by default `cert_file`'s base name,
    /// as the agent labels the certificate it writes there.
    pub cert_label: String,
    /// The proxy's metrics listener.
    pub metrics_listen: SocketAddr,
    /// The listen backlog of both listeners (connections the kernel has accepted and the proxy
    /// not yet taken).
    pub listen_backlog: u32,
    /// Drain time after SIGTERM.
    pub shutdown_grace: Duration,
    /// How often the certificate files are checked when no file event arrives.
    pub reload_interval: Duration,
    /// Longest TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// `tls_min_version = "tls13"` (Vault's spelling): TLS 1.3 only; else TLS 1.2 and 1.3.
    pub tls13_only: bool,
    /// Stateless session tickets (nginx's `ssl_session_tickets`); without them sessions resume
    /// from the proxy's own session cache only.
    pub session_tickets: bool,
    /// Longest wait for a request's headers (slowloris).
    pub header_read_timeout: Duration,
    /// Longest pause in a request body coming from the client (nginx's `client_body_timeout`):
    /// then 408.
    pub body_read_timeout: Duration,
    /// Longest a response's bytes may wait with none taken by the client (nginx's
    /// `send_timeout`): then the connection is closed.
    pub send_timeout: Duration,
    /// The most requests one client connection serves (nginx's `keepalive_requests`): then
    /// it closes, and the client opens another.
    pub keepalive_requests: usize,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// Longest TCP connect to the upstream.
    pub upstream_connect_timeout: Duration,
    /// Longest wait for the upstream's response headers.
    pub upstream_response_timeout: Duration,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// Largest request header block, in bytes.
    pub max_header_size: usize,
    /// Largest request body, in bytes (nginx's `client_max_body_size`): a larger one gets 413
    /// and never reaches the upstream in full. `None`: no limit.
    pub max_request_body: Option<u64>,
    /// nginx's `proxy_request_buffering on`: a request body without a length (chunked, or an
    /// HTTP/2 stream without `content-length`) is read first, up to this many bytes, and sent
    /// with a `Content-Length`; a longer one goes on chunked. `None`: streamed as it comes.
    pub request_buffering: Option<u64>,
    /// Which forwarding headers the upstream gets.
    pub forwarded_headers: ForwardedHeaders,
    /// Every peer's `X-Forwarded-For` (or `Forwarded`) list is appended to, not only
    /// `trusted_proxies`' (nginx's `$proxy_add_x_forwarded_for`).
    pub append_forwarded_for: bool,
    /// Peers whose forwarding headers are appended to; everyone else's are replaced.
    pub trusted_proxies: Vec<Cidr>,
    /// The `Strict-Transport-Security` value added to responses that lack one, when set.
    pub hsts: Option<String>,
    /// Headers added to responses that lack them (nginx's `add_header ... always`), by name.
    pub response_headers: Vec<(String, String)>,
    /// The same, added only to responses of [`SUCCESS_STATUSES`] (nginx's `add_header`).
    pub response_headers_on_success: Vec<(String, String)>,
    /// Headers set on each request to the upstream, replacing the client's (nginx's
    /// `proxy_set_header`), by name; an empty value removes the header.
    pub request_headers: Vec<(String, String)>,
    /// Paths the proxy answers itself, never forwarded (nginx's `location ... { return ...; }`).
    pub fixed_responses: Vec<FixedResponse>,
    /// Answers given to requests that match a condition, before a location is chosen (nginx's
    /// `if (...) { return ...; }` in a server).
    pub conditional_answers: Vec<ConditionalAnswer>,
    /// `rewrites`, in order.
    pub rewrites: Vec<RewriteRule>,
    /// Locations forwarded with settings of their own, in the order written.
    pub routes: Vec<Route>,
    /// Prefixes of the upstream's `Location` and `Refresh` URLs rewritten (nginx's
    /// `proxy_redirect`), the first that matches applying; empty: passed as they are.
    pub redirect_rewrite: Vec<RedirectRewrite>,
    /// `X-Real-IP` set to the client's address (nginx's `proxy_set_header X-Real-IP
    /// $remote_addr`), a client's own replaced.
    pub x_real_ip: bool,
    /// Requests need credentials of this realm and file, when set.
    pub basic_auth: Option<BasicAuth>,
    /// Flags set on the upstream's cookies (nginx's `proxy_cookie_flags`), the first rule
    /// that matches a cookie applying.
    pub cookie_flags: Vec<CookieRule>,
    /// Request rates per client address (nginx's `limit_req_zone`), by zone name, in
    /// thousandths of a request per second.
    pub rate_limit_zones: BTreeMap<String, u64>,
    /// The zones a request is counted in (nginx's `limit_req`).
    pub rate_limits: Vec<RateLimit>,
    /// The status of a refused request (nginx's `limit_req_status`, 503 by default).
    pub rate_limit_status: u16,
    /// Headers of the upstream's responses not passed on (nginx's `proxy_hide_header`).
    pub hide_response_headers: Vec<String>,
    /// `error_pages` (nginx's `error_page`), the first that names a status applying.
    pub error_pages: Vec<ErrorPage>,
    /// `maps` (nginx's `map`): variables whose value is chosen by another's, in the order
    /// written.
    pub maps: Vec<std::sync::Arc<VariableMap>>,
    /// The upstream's responses of 300 and above go through `error_pages` too (nginx's
    /// `proxy_intercept_errors on`).
    pub intercept_errors: bool,
    /// An upstream response's `X-Accel-Redirect: /path` sends the request on to that path (or
    /// `@name` route) internally, as nginx does unless `proxy_ignore_headers X-Accel-Redirect`.
    pub accel_redirect: bool,
    /// A path asked first, for each request (nginx's `auth_request`): a 2xx answer lets the
    /// request in, 401 and 403 refuse it, anything else is a 500.
    pub auth_request: Option<String>,
    /// `upstream_tls`, for an `https://` upstream.
    pub upstream_tls: UpstreamTls,
    /// What each zone counts requests in flight per (nginx's `limit_conn_zone`), by name.
    pub concurrency_limit_zones: BTreeMap<String, ConcurrencyKey>,
    /// The zones a request is counted in while it is served (nginx's `limit_conn`).
    pub concurrency_limits: Vec<ConcurrencyLimit>,
    /// The status of a request refused for them (nginx's `limit_conn_status`, 503).
    pub concurrency_limit_status: u16,
    /// Which client addresses are let in (nginx's `allow` and `deny`): the first rule that
    /// matches decides; none: in.
    pub access_rules: Vec<AccessRule>,
    /// `limit_except`: the methods let through on `access_rules` alone; the others pass its
    /// own rules instead (nginx's `limit_except METHOD... { allow/deny }`); a route's own, never
    /// the proxy's.
    pub limit_except: Option<LimitExcept>,
    /// `server_names` and `unknown_host` (nginx's `server_name` with a default server that
    /// refuses other names); `None`: every host is served.
    pub server_names: Option<ServerNames>,
    /// `gzip {}`: responses compressed for clients that take gzip (nginx's `gzip on`).
    pub gzip: Option<Gzip>,
    /// The media type of a file a route serves, by its extension in lower case (nginx's
    /// `types`).
    pub file_types: BTreeMap<String, String>,
    /// `Expires` and `Cache-Control` set on responses (nginx's `expires`), when set.
    pub expires: Option<Expires>,
    /// Request headers whose name has an underscore are dropped, never forwarded (nginx's
    /// default `ignore_invalid_headers on` with `underscores_in_headers off`).
    pub drop_underscore_headers: bool,
    /// A redirect the proxy makes (an answer's, a rewrite's, a directory's, one
    /// `redirect_rewrite` rewrote) to a path gets the scheme, host and port in front (nginx's
    /// `absolute_redirect`, on there).
    pub absolute_redirects: bool,
    /// The port goes in unless it is 443 (nginx's `port_in_redirect`).
    pub port_in_redirects: bool,
    /// One log line per request (target `pki_sidecar::access`).
    pub access_log: bool,
    /// Client certificate verification, when configured.
    pub client_auth: Option<ClientAuth>,
}

impl Proxy {
    /// The proxy's own settings as the route of `/`: what a route inherits, and how a request
    /// no location takes is forwarded.
    pub(crate) fn own_route(&self) -> Route {
        Route {
            path: PathMatch::Prefix("/".to_string()),
            upstream: self.upstream.clone(),
            upstream_target: self.upstream_target.clone(),
            upstream_connect_timeout: self.upstream_connect_timeout,
            upstream_response_timeout: self.upstream_response_timeout,
            max_request_body: self.max_request_body,
            request_buffering: self.request_buffering,
            request_headers: self.request_headers.clone(),
            redirect_rewrite: self.redirect_rewrite.clone(),
            x_real_ip: self.x_real_ip,
            basic_auth: self.basic_auth.clone(),
            cookie_flags: self.cookie_flags.clone(),
            rate_limits: self.rate_limits.clone(),
            rate_limit_status: self.rate_limit_status,
            concurrency_limits: self.concurrency_limits.clone(),
            concurrency_limit_status: self.concurrency_limit_status,
            hide_response_headers: self.hide_response_headers.clone(),
            error_pages: self.error_pages.clone(),
            intercept_errors: self.intercept_errors,
            accel_redirect: self.accel_redirect,
            auth_request: self.auth_request.clone(),
            upstream_tls: self.upstream_tls.clone(),
            internal: false,
            stub_status: false,
            access_rules: self.access_rules.clone(),
            limit_except: self.limit_except.clone(),
            files: None,
            answer: None,
            conditional_answers: Vec::new(),
            rewrites: Vec::new(),
            expires: self.expires,
            response_headers: Vec::new(),
            response_headers_on_success: Vec::new(),
        }
    }
}

/// `forwarded_headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeaders {
    /// `X-Forwarded-For`, `-Proto`, `-Host` (nginx's and most apps' convention).
    XForwarded,
    /// RFC 7239 `Forwarded: for=...;proto=https;host=...`.
    Forwarded,
}

/// An address block such as `10.0.0.0/8` or `fd00::/8` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The first address, with the bits past the prefix cleared.
    network: IpAddr,
    /// How many leading bits are fixed.
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/PREFIX` or `ADDRESS`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not a CIDR block such as 10.0.0.0/8 or fd00::/8"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(digits) => match digits.parse::<u8>() {
                Ok(prefix) if prefix <= bits && !digits.starts_with('+') => prefix,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {bits}")),
            },
        };
        Ok(Cidr {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
    /// dual-stack listener reports) matches IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ip` with every bit after the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// Which request paths a fixed response or a route applies to, written as nginx writes a
/// `location`: `"= /ping"` (that path only), `"/api/"` (every path that starts with it),
/// `"^~ /static/"` (a prefix that, when it is the longest match, is taken without trying the
/// regular expressions), `"~ \\.php$"` and `"~* \\.(png|jpg)$"` (a regular expression, the second
/// ignoring case). The proxy picks among them as nginx does: an exact match; else the longest
/// prefix if it is `^~`; else the first regular expression that matches, in the order written;
/// else the longest prefix; else `proxy.upstream` with the proxy's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    /// `^~`.
    PrefixNoRegex(String),
    Regex {
        /// As written, in PCRE's syntax: look-around and back-references included (what
        /// cannot be run is refused when the configuration is read).
        pattern: String,
        /// `~*`.
        ignore_case: bool,
    },
    /// `@NAME`: reached only from a `try_files` fallback, never by a path.
    Named(String),
}

impl PathMatch {
    /// Reads a location spec; the error says what was expected.
    pub(crate) fn parse(spec: &str) -> Result<PathMatch, String> {
        let spec = spec.trim();
        if let Some(name) = spec.strip_prefix('@') {
            if name.is_empty() || !name.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
                return Err(format!("{spec:?} is not a named location such as \"@app\""));
            }
            return Ok(PathMatch::Named(name.to_string()));
        }
        let (modifier, rest) = match spec.split_once(char::is_whitespace) {
            Some((m @ ("=" | "^~" | "~" | "~*"), rest)) => (m, rest.trim()),
            _ => ("", spec),
        };
        if let Some(ignore_case) = match modifier {
            "~" => Some(false),
            "~*" => Some(true),
            _ => None,
        } {
            regex_for(rest, ignore_case).map_err(|why| format!("{rest}: {why}"))?;
            return Ok(PathMatch::Regex {
                pattern: rest.to_string(),
                ignore_case,
            });
        }
        let printable = rest.bytes().all(|b| (b'!'..=b'~').contains(&b));
        if !rest.starts_with('/') || !printable {
            return Err(
                "is not an nginx location: \"/api/\" (that prefix), \"= /ping\" (that path \
                 only), \"^~ /static/\" (a prefix tried before regular expressions), \"~ REGEX\" \
                 or \"~* REGEX\" (ignoring case)"
                    .to_string(),
            );
        }
        Ok(match modifier {
            "=" => PathMatch::Exact(rest.to_string()),
            "^~" => PathMatch::PrefixNoRegex(rest.to_string()),
            _ => PathMatch::Prefix(rest.to_string()),
        })
    }

    /// `/` as a prefix: every request, which is what `proxy.upstream` is for.
    pub(crate) fn is_everything(&self) -> bool {
        matches!(self, PathMatch::Prefix(p) | PathMatch::PrefixNoRegex(p) if p == "/")
    }
}

impl std::fmt::Display for PathMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathMatch::Exact(path) => write!(f, "= {path}"),
            PathMatch::Prefix(path) => f.write_str(path),
            PathMatch::PrefixNoRegex(path) => write!(f, "^~ {path}"),
            PathMatch::Regex {
                pattern,
                ignore_case,
            } => write!(f, "{} {pattern}", if *ignore_case { "~*" } else { "~" }),
            PathMatch::Named(name) => write!(f, "@{name}"),
        }
    }
}

/// The compiled form of a `~`/`~*` location or a `~` cookie name: PCRE's syntax, as nginx's,
/// look-around and back-references included; what cannot be run is refused here, when the
/// configuration is read.
pub(crate) fn regex_for(pattern: &str, ignore_case: bool) -> Result<fancy_regex::Regex, String> {
    if pattern.is_empty() {
        return Err("an empty regular expression".to_string());
    }
    fancy_regex::RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .delegate_size_limit(1 << 20)
        // A path that makes an expression backtrack this much does not match it.
        .backtrack_limit(100_000)
        .build()
        .map_err(|err| {
            use fancy_regex::{CompileError, Error};
            let why = match err {
                Error::CompileError(inner)
                    if matches!(
                        *inner,
                        CompileError::LookBehindNotConst
                            | CompileError::VariableLookBehindRequiresFeature
                    ) =>
                {
                    "a look-behind must have a fixed length, as in PCRE".to_string()
                }
                other => other.to_string(),
            };
            format!(
                "not a regular expression the proxy can run: {why} (the syntax is PCRE's, as \
                 nginx's, without its verbs and recursion)"
            )
        })
}

/// One of `proxy.routes`: requests whose path matches, forwarded with settings of their own
/// (nginx's other `location` blocks with `proxy_pass`); each setting left out is the proxy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: PathMatch,
    /// `http://host:port`, as `proxy.upstream`.
    pub upstream: http::Uri,
    /// `prefix_rewrite` or `upstream_uri`: the route's own, never the proxy's.
    pub upstream_target: UpstreamTarget,
    pub upstream_connect_timeout: Duration,
    pub upstream_response_timeout: Duration,
    pub max_request_body: Option<u64>,
    pub request_buffering: Option<u64>,
    /// Replace the proxy's `request_headers` whole when given, as nginx's `proxy_set_header`
    /// in a location replaces the server's.
    pub request_headers: Vec<(String, String)>,
    pub redirect_rewrite: Vec<RedirectRewrite>,
    pub x_real_ip: bool,
    pub basic_auth: Option<BasicAuth>,
    pub cookie_flags: Vec<CookieRule>,
    pub rate_limits: Vec<RateLimit>,
    pub rate_limit_status: u16,
    pub concurrency_limits: Vec<ConcurrencyLimit>,
    pub concurrency_limit_status: u16,
    pub hide_response_headers: Vec<String>,
    /// `error_pages`: the route's own, or the proxy's when it has none (nginx's inheritance).
    pub error_pages: Vec<ErrorPage>,
    pub intercept_errors: bool,
    /// `accel_redirect`: the route's own, else the proxy's.
    pub accel_redirect: bool,
    /// `auth_request`: the route's own, else the proxy's (`"off"`: none).
    pub auth_request: Option<String>,
    /// `upstream_tls`: the route's own, else the proxy's.
    pub upstream_tls: UpstreamTls,
    /// Only reachable by a rewrite, a `try_files` fallback or an error page: a client's
    /// request for it gets 404 (nginx's `internal`).
    pub internal: bool,
    /// Answers nginx's `stub_status` page from the proxy's counters, never forwarded.
    pub stub_status: bool,
    pub access_rules: Vec<AccessRule>,
    /// `limit_except`: the methods let through on `access_rules` alone; the others pass its
    /// own rules instead (nginx's `limit_except METHOD... { allow/deny }`); a route's own, never
    /// the proxy's.
    pub limit_except: Option<LimitExcept>,
    /// Serves files from a directory instead of forwarding, when set (nginx's `root` and
    /// `alias`).
    pub files: Option<Files>,
    /// Answers every request itself instead, when set (nginx's `return` in a location a
    /// `fixed_responses` key cannot name: a regular expression, `/`).
    pub answer: Option<FixedResponse>,
    /// Answers given to the route's requests that match a condition (nginx's `if` in a
    /// location), before anything else the route does.
    pub conditional_answers: Vec<ConditionalAnswer>,
    /// `rewrites`, in order.
    pub rewrites: Vec<RewriteRule>,
    pub expires: Option<Expires>,
    /// Headers added to the route's responses that lack them, before the proxy's own
    /// `response_headers` (the route's value wins for a name in both).
    pub response_headers: Vec<(String, String)>,
    /// The same, added only to responses of [`SUCCESS_STATUSES`].
    pub response_headers_on_success: Vec<(String, String)>,
}

/// The statuses nginx's `add_header` (without `always`) and `expires` add headers to:
/// `response_headers_on_success` are added to these only.
pub const SUCCESS_STATUSES: [u16; 10] = [200, 201, 204, 206, 301, 302, 303, 304, 307, 308];

/// What the upstream is sent as a request's target (nginx's `proxy_pass` with a URI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UpstreamTarget {
    /// The client's, as it came.
    #[default]
    AsSent,
    /// `prefix_rewrite`: the part of the path the location matched (`matched`: a prefix
    /// location's prefix, an exact location's path) replaced by `with`; the rest of the path
    /// and the query as they came.
    Prefix { matched: String, with: String },
    /// `upstream_uri`: the whole target (the client's query only where `$args` says), formed
    /// from the request's variables for each request (nginx's `proxy_pass` with a variable and
    /// a URI).
    Whole(String),
}

/// `expires` (nginx's): the `Expires` and `Cache-Control` of 200, 201, 204, 206, 301, 302,
/// 303, 304, 307 and 308 responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    /// `epoch`: `Expires: Thu, 01 Jan 1970 00:00:01 GMT`, `Cache-Control: no-cache`.
    Epoch,
    /// `max`: `Expires: Thu, 31 Dec 2037 23:55:55 GMT`, `Cache-Control: max-age=315360000`.
    Max,
    /// `30d`, `-1`: that long after the response (negative: `no-cache`).
    After(i64),
}

impl Expires {
    /// nginx's spelling: `off` (`None`), `epoch`, `max`, or a time (`30d`, `12h`, `1y`,
    /// `-1`, `1h30m`); `modified` and `@` times are refused.
    pub(crate) fn parse(text: &str) -> Result<Option<Expires>, String> {
        let text = text.trim();
        match text {
            "off" => return Ok(None),
            "epoch" => return Ok(Some(Expires::Epoch)),
            "max" => return Ok(Some(Expires::Max)),
            _ => {}
        }
        let refused = || {
            format!(
                "{text:?} is not off, epoch, max or a time such as 30d, 12h or -1 (modified and \
                 @ times are not supported)"
            )
        };
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut seconds: i64 = 0;
        let mut digits = String::new();
        for c in rest.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit: i64 = match c {
                'y' => 365 * 86_400,
                'M' => 30 * 86_400,
                'w' => 7 * 86_400,
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return Err(refused()),
            };
            let n: i64 = digits.parse().map_err(|_| refused())?;
            seconds = n
                .checked_mul(unit)
                .and_then(|part| seconds.checked_add(part))
                .ok_or_else(refused)?;
            digits.clear();
        }
        if !digits.is_empty() {
            let n: i64 = digits.parse().map_err(|_| refused())?;
            seconds = seconds.checked_add(n).ok_or_else(refused)?;
        } else if rest.is_empty() || rest.ends_with(|c: char| c.is_ascii_digit()) {
            return Err(refused());
        }
        Ok(Some(Expires::After(if negative {
            -seconds
        } else {
            seconds
        })))
    }
}

/// A route's files: `root` or `alias`, with `index` and `default_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The directory (or, for an exact location's `alias`, the file).
    pub dir: PathBuf,
    /// `alias`: the location's own path is replaced by `dir`; `root`: the whole path is
    /// appended to it.
    pub alias: bool,
    /// Files tried, in order, for a path that ends in `/`.
    pub index: Vec<String>,
    /// The media type of a file whose extension `file_types` does not name.
    pub default_type: String,
    /// `try_files`: the paths tried in order (`$uri` is the request's path; one ending in `/`
    /// must be a directory, any other a file), then what is done when none is there.
    pub try_files: Option<(Vec<String>, TryFallback)>,
}

/// The last entry of `try_files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryFallback {
    /// `=404`: that status.
    Status(u16),
    /// `/index.html`, `/app?$args`: the request goes on as that path, to whichever location
    /// takes it (nginx's internal redirect).
    Uri(String),
    /// `@app`: the route of that named location.
    Named(String),
}

/// Media types by extension for the files routes serve, when `proxy.file_types` is not given:
/// the common types of the web, as nginx's `mime.types` gives them.
pub const FILE_TYPES: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("htm", "text/html"),
    ("shtml", "text/html"),
    ("css", "text/css"),
    ("xml", "text/xml"),
    ("txt", "text/plain"),
    ("js", "application/javascript"),
    ("mjs", "application/javascript"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("rss", "application/rss+xml"),
    ("atom", "application/atom+xml"),
    ("gif", "image/gif"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("svg", "image/svg+xml"),
    ("svgz", "image/svg+xml"),
    ("ico", "image/x-icon"),
    ("bmp", "image/x-ms-bmp"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("eot", "application/vnd.ms-fontobject"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("m4a", "audio/x-m4a"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mov", "video/quicktime"),
    ("csv", "text/csv"),
    ("md", "text/markdown"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("pem", "application/x-x509-ca-cert"),
    ("crt", "application/x-x509-ca-cert"),
    ("der", "application/x-x509-ca-cert"),
];

/// `proxy.gzip`: nginx's `gzip` directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gzip {
    /// Media types compressed (`gzip_types`; `text/html` always; `*`: any), in lower case.
    pub types: Vec<String>,
    /// `gzip_min_length`: a response announced shorter is sent as it is.
    pub min_length: u64,
    /// `gzip_comp_level`, 1–9.
    pub level: u32,
    /// `gzip_vary`: `Vary: Accept-Encoding` on responses that could be compressed.
    pub vary: bool,
    /// `gzip_proxied`: when a response to a request with `Via` is compressed (empty: never).
    pub proxied: Vec<GzipProxied>,
    /// `gzip_http_version 1.0`: HTTP/1.0 requests too.
    pub http10: bool,
}

/// One of `gzip.proxied`, nginx's `gzip_proxied` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipProxied {
    Any,
    /// The response has `Expires`.
    Expired,
    /// Its `Cache-Control` says `no-cache`.
    NoCache,
    /// ... `no-store`.
    NoStore,
    /// ... `private`.
    Private,
    /// It has no `Last-Modified`.
    NoLastModified,
    /// It has no `ETag`.
    NoEtag,
    /// The request has `Authorization`.
    Auth,
}

/// `proxy.server_names` and `proxy.unknown_host`: the hosts served, and what a request for
/// any other gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    /// As nginx writes them, in lower case: `app.example.com`, `*.example.com` (any name
    /// below), `www.example.*` (any name after), `.example.com` (the name and any below),
    /// `~REGEX` (matched against the host in lower case).
    pub names: Vec<String>,
    pub unknown: UnknownHost,
    /// `reject_unknown_sni`: a TLS handshake without a server name, or with one not in
    /// `names`, is refused with the `unrecognized_name` alert (nginx's `ssl_reject_handshake`
    /// in the default server).
    pub reject_unknown_sni: bool,
}

/// What a request for a host `server_names` does not hold gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownHost {
    /// The connection is closed without a response (nginx's `return 444`); an HTTP/2 stream
    /// is reset.
    Close,
    /// This status (400–599).
    Status(u16),
}

impl UnknownHost {
    /// 421 Misdirected Request (RFC 9110 §15.5.20): this server does not answer for that host.
    pub const DEFAULT: UnknownHost = UnknownHost::Status(421);
}

/// Checks one name of `server_names` as nginx's `server_name` takes it; the error says why not.
pub(crate) fn check_server_name(name: &str) -> Result<(), String> {
    if let Some(pattern) = name.strip_prefix('~') {
        return regex_for(pattern, false).map(drop);
    }
    if name
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'/' || b.is_ascii_control())
    {
        return Err(format!("{name:?} is not a host name"));
    }
    let stars = name.matches('*').count();
    let wildcard_ok = stars == 0
        || (stars == 1
            && ((name.starts_with("*.") && name.len() > 2)
                || (name.ends_with(".*") && name.len() > 2)));
    if !wildcard_ok {
        return Err(format!(
            "{name:?}: a `*` stands only for the first or last part of a name                  (`*.example.com`, `www.example.*`), as in nginx"
        ));
    }
    Ok(())
}

/// One of `access_rules` (nginx's `allow` and `deny`), written `"allow 10.0.0.0/8"`,
/// `"deny 192.168.1.7"`, `"deny all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRule {
    pub allow: bool,
    /// `None`: every address (`all`).
    pub from: Option<Cidr>,
}

impl AccessRule {
    /// Reads `allow ADDRESS[/PREFIX]`, `deny ...`, `allow all`, `deny all`.
    pub(crate) fn parse(text: &str) -> Result<AccessRule, String> {
        let mut words = text.split_whitespace();
        let (Some(verb), Some(what), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{text:?} is not an access rule such as \"allow 10.0.0.0/8\", \
                 \"deny 192.168.1.7\" or \"deny all\""
            ));
        };
        let allow = match verb {
            "allow" => true,
            "deny" => false,
            _ => return Err(format!("{text:?}: a rule starts with allow or deny")),
        };
        let from = match what {
            "all" => None,
            block => Some(Cidr::parse(block)?),
        };
        Ok(AccessRule { allow, from })
    }

    /// Whether `rules` let `ip` in, as nginx's access module decides: the first rule whose
    /// block holds `ip` (an IPv4-mapped IPv6 address matching IPv4 blocks); in when none does.
    pub(crate) fn allows(rules: &[AccessRule], ip: IpAddr) -> bool {
        rules
            .iter()
            .find(|rule| rule.from.is_none_or(|block| block.contains(ip)))
            .is_none_or(|rule| rule.allow)
    }
}

impl AccessRule {
    /// Whether `rules` refuse every address: a `deny all` with no `allow` before it.
    pub(crate) fn deny_everyone(rules: &[AccessRule]) -> bool {
        rules
            .iter()
            .find(|rule| rule.allow || rule.from.is_none())
            .is_some_and(|rule| !rule.allow)
    }
}

impl fmt::Display for AccessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allow { "allow" } else { "deny" };
        match &self.from {
            // One address as it was written, without its `/32` or `/128`.
            Some(block) if block.prefix == if block.network.is_ipv4() { 32 } else { 128 } => {
                write!(f, "{verb} {}", block.network)
            }
            Some(block) => write!(f, "{verb} {block}"),
            None => write!(f, "{verb} all"),
        }
    }
}

/// One of `cookie_flags` (nginx's `proxy_cookie_flags`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieRule {
    /// The cookie's name, or `~REGEX` (`~` alone: every cookie).
    pub cookie: String,
    pub flags: Vec<CookieFlag>,
}

/// A flag of `cookie_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieFlag {
    Secure,
    NoSecure,
    HttpOnly,
    NoHttpOnly,
    SameSite(SameSite),
    NoSameSite,
}

/// `SameSite`'s values, written as nginx writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl std::fmt::Display for SameSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        })
    }
}

impl CookieFlag {
    /// nginx's spelling, in any case: `secure`, `nosecure`, `httponly`, `nohttponly`,
    /// `samesite=strict|lax|none`, `nosamesite`.
    pub(crate) fn parse(text: &str) -> Option<CookieFlag> {
        Some(match text.to_ascii_lowercase().as_str() {
            "secure" => CookieFlag::Secure,
            "nosecure" => CookieFlag::NoSecure,
            "httponly" => CookieFlag::HttpOnly,
            "nohttponly" => CookieFlag::NoHttpOnly,
            "samesite=strict" => CookieFlag::SameSite(SameSite::Strict),
            "samesite=lax" => CookieFlag::SameSite(SameSite::Lax),
            "samesite=none" => CookieFlag::SameSite(SameSite::None),
            "nosamesite" => CookieFlag::NoSameSite,
            _ => return None,
        })
    }
}

/// `basic_auth_realm` and `basic_auth_file`: HTTP Basic authentication (nginx's `auth_basic`
/// and `auth_basic_user_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// Sent in `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
    /// The htpasswd file.
    pub user_file: PathBuf,
}

/// `5r/s`, `30r/m` as thousandths of a request per second; `None` for anything else.
pub(crate) fn request_rate(text: &str) -> Option<u64> {
    let (count, unit) = text.trim().split_once("r/")?;
    let count: u64 = count.parse().ok().filter(|&c| c > 0)?;
    match unit {
        "s" => count.checked_mul(1000),
        "m" => count.checked_mul(1000).map(|c| (c / 60).max(1)),
        _ => None,
    }
}

/// One of `rate_limits` (nginx's `limit_req`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// A zone of `proxy.rate_limit_zones`.
    pub zone: String,
    /// Requests beyond the rate before refusals.
    pub burst: u64,
    /// Of those, how many go through at once (`nodelay`: all, `burst`).
    pub delay: u64,
}

/// `limit_except` (nginx's): requests of a method not in `methods` (`GET` bringing `HEAD`)
/// pass `access_rules` instead of the location's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExcept {
    pub methods: Vec<String>,
    pub access_rules: Vec<AccessRule>,
}

/// What a `concurrency_limit_zones` zone counts requests in flight per (nginx's
/// `limit_conn_zone` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyKey {
    /// `"address"`: each client address (`$binary_remote_addr`).
    Address,
    /// `"server"`: all of them together (`$server_name`).
    Server,
}

/// One of `concurrency_limits` (nginx's `limit_conn ZONE N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    /// A zone of `proxy.concurrency_limit_zones`.
    pub zone: String,
    /// Requests in flight at most, per the zone's key.
    pub max: u32,
}

/// One of `rewrites` (nginx's `rewrite REGEX REPLACEMENT [FLAG]`): a path that `regex` finds
/// something in is replaced by `replacement`, or redirected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteRule {
    /// As written (PCRE's syntax, as a `~` location's).
    pub regex: String,
    /// As written, for messages.
    pub replacement: String,
    /// `replacement` in pieces: text, the request's variables, `$1`..`$9`.
    pub(crate) pieces: Vec<ReplacementPiece>,
    pub flag: RewriteFlag,
}

/// A piece of a rewrite's replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplacementPiece {
    /// Text, or a request variable, as `request_headers` takes them.
    Part(RequestHeaderPart),
    /// `$1`..`$9`: what the regular expression's group of that number matched.
    Capture(usize),
}

impl RewriteRule {
    /// `replacement` in pieces; the error names a variable that is neither a request variable
    /// nor a capture.
    pub(crate) fn pieces(replacement: &str) -> Result<Vec<ReplacementPiece>, String> {
        let mut pieces = Vec::new();
        for piece in variable_pieces(replacement)? {
            match piece {
                // `$12` is the first group, then `2`, as nginx reads it.
                VariablePiece::Variable(name) if name.starts_with(|c: char| c.is_ascii_digit()) => {
                    let (digit, rest) = name.split_at(1);
                    pieces.push(ReplacementPiece::Capture(digit.parse().unwrap_or(0)));
                    if !rest.is_empty() {
                        pieces.push(ReplacementPiece::Part(RequestHeaderPart::Text(
                            rest.to_string(),
                        )));
                    }
                }
                VariablePiece::Text(text) => pieces.push(ReplacementPiece::Part(
                    RequestHeaderPart::Text(text.to_string()),
                )),
                VariablePiece::Variable(name) => {
                    let parts = request_header_parts(&format!("${{{name}}}"))?;
                    pieces.extend(parts.into_iter().map(ReplacementPiece::Part));
                }
            }
        }
        Ok(pieces)
    }

    /// A redirect rather than a new path: the flag says so, or the replacement is a URL.
    pub fn redirects(&self) -> bool {
        matches!(self.flag, RewriteFlag::Redirect | RewriteFlag::Permanent)
            || ["http://", "https://", "$scheme"]
                .iter()
                .any(|start| self.replacement.starts_with(start))
    }
}

/// What a rewrite does once it replaced the path (nginx's flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteFlag {
    /// None: the next rewrites are tried, then the location is looked up again.
    Next,
    /// `last`: the location is looked up again for the new path.
    Last,
    /// `break`: the request stays in its location, with the new path.
    Break,
    /// `redirect`: 302 to the replacement.
    Redirect,
    /// `permanent`: 301 to the replacement.
    Permanent,
}

/// One of `conditional_answers`: `answer` (its path unused) when `when` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalAnswer {
    pub when: Condition,
    pub answer: FixedResponse,
}

/// nginx's `if` condition on a request: a variable, and a test of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// As written, for messages.
    pub text: String,
    pub(crate) variable: RequestHeaderPart,
    pub test: ConditionTest,
}

/// How a [`Condition`] tests its variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionTest {
    /// `$var`: neither empty nor `0`.
    Set,
    /// `$var = text`.
    Equals(String),
    /// `$var != text`.
    Differs(String),
    /// `~`, `~*` (case ignored), `!~`, `!~*` (`negated`): a PCRE-style regular expression.
    Matches {
        pattern: String,
        ignore_case: bool,
        negated: bool,
    },
}

impl Condition {
    /// Reads `$var`, `$var = text`, `$var != text`, `$var ~ regex`, `~*`, `!~`, `!~*`.
    pub(crate) fn parse(text: &str) -> Result<Condition, String> {
        let text_owned = text.to_string();
        let trimmed = text.trim_start();
        let (name, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let variable = match request_header_parts(name).as_deref() {
            Ok([part]) if !matches!(part, RequestHeaderPart::Text(_)) => part.clone(),
            _ => {
                return Err(format!(
                    "{text:?}: a condition starts with one of the request's variables ($host, \
                     $request_method, $http_NAME, $uri...), as nginx's `if`"
                ));
            }
        };
        let rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(Condition {
                text: text_owned,
                variable,
                test: ConditionTest::Set,
            });
        }
        let (operator, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let value = value.trim().to_string();
        let regex = |ignore_case: bool, negated: bool| -> Result<ConditionTest, String> {
            regex_for(&value, ignore_case)?;
            Ok(ConditionTest::Matches {
                pattern: value.clone(),
                ignore_case,
                negated,
            })
        };
        let test = match operator {
            "=" => ConditionTest::Equals(value.clone()),
            "!=" => ConditionTest::Differs(value.clone()),
            "~" => regex(false, false)?,
            "~*" => regex(true, false)?,
            "!~" => regex(false, true)?,
            "!~*" => regex(true, true)?,
            other => {
                return Err(format!(
                    "{text:?}: {other:?} is not one of =, !=, ~, ~*, !~, !~* (file tests such as \
                     -f are not supported)"
                ));
            }
        };
        Ok(Condition {
            text: text_owned,
            variable,
            test,
        })
    }
}

/// `upstream_tls`: how the proxy speaks TLS to an `https://` upstream (nginx's `proxy_ssl_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The upstream's certificate is verified (nginx's `proxy_ssl_verify`, off by default
    /// there; on here unless said).
    pub verify: bool,
    /// The CAs that sign it (nginx's `proxy_ssl_trusted_certificate`); none: the system's.
    pub ca_file: Option<PathBuf>,
    /// The name it is verified for, and sent (nginx's `proxy_ssl_name`); none: the upstream's
    /// host.
    pub server_name: Option<String>,
    /// The name is sent in the handshake (SNI; nginx's `proxy_ssl_server_name`, off by
    /// default there; on here unless said).
    pub send_server_name: bool,
    /// A client certificate and its key (nginx's `proxy_ssl_certificate` and
    /// `proxy_ssl_certificate_key`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl Default for UpstreamTls {
    fn default() -> UpstreamTls {
        UpstreamTls {
            verify: true,
            ca_file: None,
            server_name: None,
            send_server_name: true,
            client_cert: None,
        }
    }
}

/// One of `error_pages` (nginx's `error_page`): what replaces a response of one of
/// `statuses` that the proxy makes itself (a refusal, a failed upstream, a file not found, an
/// answer without text), or the upstream's with `intercept_errors`. Once per request: an error
/// while the page is served is sent as it is (nginx's `recursive_error_pages off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    pub statuses: Vec<u16>,
    pub page: ErrorPageTarget,
    pub status: ErrorPageStatus,
}

/// Where an [`ErrorPage`] sends the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPageTarget {
    /// `/50x.html`: looked up as a new request for that path (and query), `GET` unless it was
    /// `HEAD`, without the request's body.
    Uri(String),
    /// `@name`: the named route, with the request's method.
    Named(String),
    /// `https://...`: a redirect there (302 unless `status` says 301, 303, 307 or 308).
    Redirect(String),
}

/// The status an [`ErrorPage`]'s response is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPageStatus {
    /// The error's own (nginx's `error_page 502 /50x.html`).
    Kept,
    /// The page's response's (nginx's `error_page 404 = /fallback`; `status = "page"`).
    OfPage,
    /// This one (nginx's `error_page 404 =200 /empty.gif`).
    Set(u16),
}

/// One of `proxy.fixed_responses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    /// The request paths it answers.
    pub path: PathMatch,
    pub status: u16,
    pub body: String,
    /// `Content-Type` of the body (none without a body).
    pub content_type: String,
    /// `Location`, for a redirect.
    pub location: Option<String>,
    /// `headers`: added to the answer (nginx's `add_header` beside `return`), values with the
    /// request's variables replaced.
    pub headers: Vec<(String, String)>,
    /// `only_own_headers`: the proxy's and the route's `response_headers` and the `hsts` are
    /// not added to it (nginx's `add_header` in the answer's block replaces the levels'
    /// above).
    pub only_own_headers: bool,
}

/// A piece of a `proxy.request_headers` value: text, or one of the two per-request variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestHeaderPart {
    Text(String),
    /// nginx's `$host`: the request's host, lowercased, without its port.
    Host,
    /// nginx's `$remote_addr`: the client's address (the TCP peer).
    RemoteAddr,
    /// nginx's `$server_port`: the port of the listener the client reached.
    ServerPort,
    /// nginx's `$remote_port`: the client's port.
    RemotePort,
    /// nginx's `$request_id`: 32 random hexadecimal digits, one value per request.
    RequestId,
    /// nginx's `$request_uri`: the path and query as the client sent them.
    RequestUri,
    /// nginx's `$uri`: the path, percent-decoded and with `.`, `..` and `//` resolved.
    Uri,
    /// nginx's `$args` (also `$query_string`): the query, without its `?`.
    Args,
    /// nginx's `$is_args`: `?` when there is a query, else nothing.
    IsArgs,
    /// nginx's `$request_method`.
    RequestMethod,
    /// nginx's `$ssl_protocol`: `TLSv1.2` or `TLSv1.3`.
    SslProtocol,
    /// nginx's `$ssl_server_name`: the server name the client asked for (SNI), else nothing.
    SslServerName,
    /// nginx's `$http_NAME`: the client's header NAME (`_` for `-`; several lines joined with
    /// `, `, cookies with `; `), else nothing.
    Http(String),
    /// nginx's `$scheme`: `https`, always.
    Scheme,
    /// nginx's `$https`: `on`, always.
    Https,
    /// nginx's `$arg_NAME`: the query argument NAME (name case ignored) as sent, else nothing.
    Arg(String),
    /// nginx's `$cookie_NAME`: the value of the cookie NAME (name case ignored), else nothing.
    Cookie(String),
    /// nginx's `$ssl_client_*`: the client certificate of a mutual-TLS connection.
    Client(ClientVariable),
    /// A variable of `proxy.maps` (nginx's `map`): its value chosen by another's.
    Map(std::sync::Arc<VariableMap>),
    /// `$auth_http_NAME`: the header NAME of the request's `auth_request` answer (nginx's
    /// `$upstream_http_NAME` in `auth_request_set`), else nothing. Of several, all joined with
    /// `, `, but `Set-Cookie`: its first (a joined one is no cookie; nginx's too).
    AuthHttp(String),
    /// `$auth_set_cookie_NAME`: the value of the cookie NAME (name case ignored) that the
    /// request's `auth_request` answer sets with a `Set-Cookie` (nginx's `$upstream_cookie_NAME`
    /// in `auth_request_set`), else nothing.
    AuthSetCookie(String),
}

/// One of `proxy.maps` (nginx's `map $source $name { ... }`): the value of `$name` for a request
/// is that of the first entry whose `match` the value of `source` has: an exact value (case
/// ignored, as nginx compares them), else the first regular expression that matches (`~`, `~*`
/// for case ignored; its groups are `$1`..`$9` in the value), else `default`. Values may hold
/// the request's variables, and maps written before this one.
pub struct VariableMap {
    pub name: String,
    pub(crate) source: Vec<RequestHeaderPart>,
    /// Exact values, lowercased, with what they give.
    pub(crate) exact: Vec<(String, Vec<ReplacementPiece>)>,
    /// Regular expressions as written, whether case is ignored, and what they give.
    pub(crate) patterns: Vec<(String, bool, Vec<ReplacementPiece>)>,
    pub(crate) default: Vec<ReplacementPiece>,
    compiled: Vec<fancy_regex::Regex>,
}

impl fmt::Debug for VariableMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A map is named where it is used; its entries are printed once, by `validate`.
        write!(f, "${}", self.name)
    }
}

impl PartialEq for VariableMap {
    fn eq(&self, other: &VariableMap) -> bool {
        (
            &self.name,
            &self.source,
            &self.exact,
            &self.patterns,
            &self.default,
        ) == (
            &other.name,
            &other.source,
            &other.exact,
            &other.patterns,
            &other.default,
        )
    }
}

impl Eq for VariableMap {}

impl VariableMap {
    /// `$name` chosen by `source` among `entries` (`match`, value), else `default`; the error
    /// says what is wrong with which part.
    pub(crate) fn new(
        name: &str,
        source: &str,
        entries: &[(String, String)],
        default: &str,
    ) -> Result<VariableMap, (&'static str, String)> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err((
                "variable",
                format!("{name:?} is not a variable's name (letters, digits and _)"),
            ));
        }
        if request_header_parts(&format!("${{{name}}}")).is_ok() {
            return Err(("variable", format!("${name} is already a variable")));
        }
        let unknown = |variable: String| {
            format!("{variable} is not a request variable, nor a map written before this one")
        };
        let source = request_header_parts(source.trim()).map_err(|v| ("source", unknown(v)))?;
        if source.is_empty() {
            return Err((
                "source",
                "is required (a variable such as $http_origin)".to_string(),
            ));
        }
        let value = |text: &str, key: &'static str| {
            RewriteRule::pieces(text).map_err(|v| (key, format!("{text:?}: {}", unknown(v))))
        };
        let mut map = VariableMap {
            name: name.to_string(),
            source,
            exact: Vec::new(),
            patterns: Vec::new(),
            default: value(default, "default")?,
            compiled: Vec::new(),
        };
        for (matched, given) in entries {
            let pieces = value(given, "values")?;
            let (pattern, ignore_case) = if let Some(pattern) = matched.strip_prefix("~*") {
                (pattern, true)
            } else if let Some(pattern) = matched.strip_prefix('~') {
                (pattern, false)
            } else {
                // `\~` is a value that starts with `~`.
                let exact = matched.strip_prefix('\\').unwrap_or(matched);
                let captures = pieces
                    .iter()
                    .any(|piece| matches!(piece, ReplacementPiece::Capture(_)));
                if captures {
                    return Err((
                        "values",
                        format!(
                            "{given:?}: $1..$9 are the groups of a regular expression, and \
                             {matched:?} is not one"
                        ),
                    ));
                }
                map.exact.push((exact.to_lowercase(), pieces));
                continue;
            };
            let regex = regex_for(pattern, ignore_case)
                .map_err(|why| ("values", format!("{matched:?}: {why}")))?;
            map.compiled.push(regex);
            map.patterns
                .push((pattern.to_string(), ignore_case, pieces));
        }
        Ok(map)
    }

    /// A map known by its name only, for reading values that name it before it is read itself
    /// (an nginx file's `map` blocks).
    pub(crate) fn named(name: &str) -> VariableMap {
        VariableMap {
            name: name.to_string(),
            source: Vec::new(),
            exact: Vec::new(),
            patterns: Vec::new(),
            default: Vec::new(),
            compiled: Vec::new(),
        }
    }

    /// What a request whose source has the value `source` gets: the pieces, with the groups
    /// of the regular expression that chose them.
    pub(crate) fn lookup<'s>(
        &self,
        source: &'s str,
    ) -> (&[ReplacementPiece], Option<fancy_regex::Captures<'s, str>>) {
        if !self.exact.is_empty() {
            let lowered = source.to_lowercase();
            if let Some((_, pieces)) = self.exact.iter().find(|(value, _)| *value == lowered) {
                return (pieces, None);
            }
        }
        for (regex, (_, _, pieces)) in self.compiled.iter().zip(&self.patterns) {
            // An error is a value past the backtracking limit: it does not match.
            if let Ok(Some(groups)) = regex.captures(source) {
                return (pieces, Some(groups));
            }
        }
        (&self.default, None)
    }

    /// One line for `validate`: `$name` from its source, its values, its default.
    pub(crate) fn summary(&self) -> String {
        let count = self.exact.len() + self.patterns.len();
        let default = pieces_text(&self.default);
        format!(
            "${} from {}: {count} value{}, else {default:?}",
            self.name,
            self.source.iter().map(part_text).collect::<String>(),
            if count == 1 { "" } else { "s" },
        )
    }

    /// Every variable its source and values name (for what a connection must keep).
    pub(crate) fn parts(&self) -> impl Iterator<Item = &RequestHeaderPart> {
        let pieces = self
            .exact
            .iter()
            .map(|(_, pieces)| pieces)
            .chain(self.patterns.iter().map(|(_, _, pieces)| pieces))
            .chain(std::iter::once(&self.default))
            .flatten()
            .filter_map(|piece| match piece {
                ReplacementPiece::Part(part) => Some(part),
                ReplacementPiece::Capture(_) => None,
            });
        self.source.iter().chain(pieces)
    }
}

/// `part` as written.
fn part_text(part: &RequestHeaderPart) -> String {
    match part {
        RequestHeaderPart::Text(text) => text.clone(),
        other => format!("${}", part_name(other)),
    }
}

/// A variable's name, without its `$`.
fn part_name(part: &RequestHeaderPart) -> String {
    match part {
        RequestHeaderPart::Text(text) => text.clone(),
        RequestHeaderPart::Host => "host".into(),
        RequestHeaderPart::RemoteAddr => "remote_addr".into(),
        RequestHeaderPart::ServerPort => "server_port".into(),
        RequestHeaderPart::RemotePort => "remote_port".into(),
        RequestHeaderPart::RequestId => "request_id".into(),
        RequestHeaderPart::RequestUri => "request_uri".into(),
        RequestHeaderPart::Uri => "uri".into(),
        RequestHeaderPart::Args => "args".into(),
        RequestHeaderPart::IsArgs => "is_args".into(),
        RequestHeaderPart::RequestMethod => "request_method".into(),
        RequestHeaderPart::SslProtocol => "ssl_protocol".into(),
        RequestHeaderPart::SslServerName => "ssl_server_name".into(),
        RequestHeaderPart::Http(name) => format!("http_{}", name.replace('-', "_")),
        RequestHeaderPart::Scheme => "scheme".into(),
        RequestHeaderPart::Https => "https".into(),
        RequestHeaderPart::Arg(name) => format!("arg_{name}"),
        RequestHeaderPart::Cookie(name) => format!("cookie_{name}"),
        RequestHeaderPart::Client(variable) => variable.name().into(),
        RequestHeaderPart::Map(map) => map.name.clone(),
        RequestHeaderPart::AuthHttp(name) => format!("auth_http_{}", name.replace('-', "_")),
        RequestHeaderPart::AuthSetCookie(name) => format!("auth_set_cookie_{name}"),
    }
}

/// Pieces as written.
fn pieces_text(pieces: &[ReplacementPiece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            ReplacementPiece::Part(part) => part_text(part),
            ReplacementPiece::Capture(n) => format!("${n}"),
        })
        .collect()
}

thread_local! {
    /// The maps a value being read may name ([`MapScope`]).
    static MAPS_IN_SCOPE: std::cell::RefCell<Vec<std::sync::Arc<VariableMap>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// While it lives, [`request_header_parts`] reads the names of `maps` as theirs: the proxy's
/// settings are read with the maps of `proxy.maps` in scope.
pub(crate) struct MapScope {
    previous: Vec<std::sync::Arc<VariableMap>>,
}

impl MapScope {
    pub(crate) fn enter(maps: Vec<std::sync::Arc<VariableMap>>) -> MapScope {
        let previous =
            MAPS_IN_SCOPE.with(|scope| std::mem::replace(&mut *scope.borrow_mut(), maps));
        MapScope { previous }
    }
}

impl Drop for MapScope {
    fn drop(&mut self) {
        let previous = std::mem::take(&mut self.previous);
        MAPS_IN_SCOPE.with(|scope| *scope.borrow_mut() = previous);
    }
}

/// The map of that name in scope.
fn map_in_scope(name: &str) -> Option<std::sync::Arc<VariableMap>> {
    MAPS_IN_SCOPE.with(|scope| scope.borrow().iter().find(|map| map.name == name).cloned())
}

/// The `$ssl_client_*` variables a request header may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientVariable {
    /// `$ssl_client_s_dn`.
    Subject,
    /// `$ssl_client_i_dn`.
    Issuer,
    /// `$ssl_client_verify`.
    Verify,
    /// `$ssl_client_serial`.
    Serial,
    /// `$ssl_client_fingerprint`.
    Fingerprint,
    /// `$ssl_client_escaped_cert`.
    EscapedCert,
}

impl ClientVariable {
    /// Each variable and its name (without its `$`).
    const NAMES: [(ClientVariable, &'static str); 6] = [
        (ClientVariable::Subject, "ssl_client_s_dn"),
        (ClientVariable::Issuer, "ssl_client_i_dn"),
        (ClientVariable::Verify, "ssl_client_verify"),
        (ClientVariable::Serial, "ssl_client_serial"),
        (ClientVariable::Fingerprint, "ssl_client_fingerprint"),
        (ClientVariable::EscapedCert, "ssl_client_escaped_cert"),
    ];

    /// The variable named `name` (without its `$`).
    pub(crate) fn named(name: &str) -> Option<ClientVariable> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(variable, _)| *variable)
    }

    /// Its name, without its `$`.
    pub(crate) fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(variable, _)| *variable == self)
            .map_or("", |(_, name)| name)
    }
}

/// A piece of a value written with nginx's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VariablePiece<'a> {
    /// Text as written.
    Text(&'a str),
    /// The name of `$name` or `${name}`.
    Variable(&'a str),
}

/// `value` split into text and nginx variables (`$name`, `${name}`); the error is an unclosed
/// `${...`.
pub(crate) fn variable_pieces(value: &str) -> Result<Vec<VariablePiece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            pieces.push(VariablePiece::Text(&rest[..at]));
        }
        let after = &rest[at + 1..];
        let (name, used) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => return Err(format!("${after}")),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        pieces.push(VariablePiece::Variable(name));
        rest = &after[used..];
    }
    if !rest.is_empty() {
        pieces.push(VariablePiece::Text(rest));
    }
    Ok(pieces)
}

/// A `proxy.request_headers` value in pieces; the error names a variable that is not one of
/// [`RequestHeaderPart`]'s (each also written `${name}`).
pub(crate) fn request_header_parts(value: &str) -> Result<Vec<RequestHeaderPart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    for piece in variable_pieces(value)? {
        let part = match piece {
            VariablePiece::Text(written) => {
                text.push_str(written);
                continue;
            }
            VariablePiece::Variable("host") => RequestHeaderPart::Host,
            VariablePiece::Variable("remote_addr") => RequestHeaderPart::RemoteAddr,
            VariablePiece::Variable("server_port") => RequestHeaderPart::ServerPort,
            VariablePiece::Variable("remote_port") => RequestHeaderPart::RemotePort,
            VariablePiece::Variable("request_id") => RequestHeaderPart::RequestId,
            VariablePiece::Variable("request_uri") => RequestHeaderPart::RequestUri,
            VariablePiece::Variable("uri" | "document_uri") => RequestHeaderPart::Uri,
            VariablePiece::Variable("args" | "query_string") => RequestHeaderPart::Args,
            VariablePiece::Variable("is_args") => RequestHeaderPart::IsArgs,
            VariablePiece::Variable("request_method") => RequestHeaderPart::RequestMethod,
            VariablePiece::Variable("ssl_protocol") => RequestHeaderPart::SslProtocol,
            VariablePiece::Variable("scheme") => RequestHeaderPart::Scheme,
            VariablePiece::Variable("https") => RequestHeaderPart::Https,
            VariablePiece::Variable("ssl_server_name") => RequestHeaderPart::SslServerName,
            VariablePiece::Variable(name)
                if (name.starts_with("arg_") || name.starts_with("cookie_"))
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !name.ends_with('_') =>
            {
                match name.split_once('_') {
                    Some(("arg", arg)) => RequestHeaderPart::Arg(arg.to_string()),
                    Some((_, cookie)) => RequestHeaderPart::Cookie(cookie.to_string()),
                    None => return Err(format!("${name}")),
                }
            }
            VariablePiece::Variable(name)
                if name.starts_with("auth_set_cookie_")
                    && name.len() > "auth_set_cookie_".len()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                RequestHeaderPart::AuthSetCookie(name["auth_set_cookie_".len()..].to_string())
            }
            VariablePiece::Variable(name)
                if name.starts_with("auth_http_")
                    && name.len() > "auth_http_".len()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                RequestHeaderPart::AuthHttp(
                    name["auth_http_".len()..]
                        .replace('_', "-")
                        .to_ascii_lowercase(),
                )
            }
            VariablePiece::Variable(name)
                if name.starts_with("http_")
                    && name.len() > "http_".len()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                RequestHeaderPart::Http(
                    name["http_".len()..].replace('_', "-").to_ascii_lowercase(),
                )
            }
            VariablePiece::Variable(name) => match ClientVariable::named(name) {
                Some(variable) => RequestHeaderPart::Client(variable),
                None => match map_in_scope(name) {
                    Some(map) => RequestHeaderPart::Map(map),
                    None => return Err(format!("${name}")),
                },
            },
        };
        if !text.is_empty() {
            parts.push(RequestHeaderPart::Text(std::mem::take(&mut text)));
        }
        parts.push(part);
    }
    if !text.is_empty() {
        parts.push(RequestHeaderPart::Text(text));
    }
    Ok(parts)
}

/// One of `proxy.redirect_rewrite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRewrite {
    /// The start of a URL to replace (compared byte for byte, case included, as nginx does).
    pub from: String,
    /// What replaces it.
    pub to: String,
}

/// `client_ca_file` and `client_auth`: mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// CAs that sign client certificates (reloaded like the server certificate).
    pub ca_file: PathBuf,
    /// Whether a client without a certificate is refused.
    pub required: bool,
}

/// `app {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The plain-HTTP listener.
    pub listen: SocketAddr,
    /// The app's metrics listener.
    pub metrics_listen: SocketAddr,
    /// The listen backlog of both listeners.
    pub listen_backlog: u32,
    /// Drain time after SIGTERM.
    pub shutdown_grace: Duration,
}

/// Environment variables Vault and OpenBao read, and the key each one sets.
pub(crate) const ENV_OVERRIDES: &[(&str, &[&str])] = &[
    ("ADDR", &["vault", "address"]),
    ("CACERT", &["vault", "ca_cert"]),
    ("CAPATH", &["vault", "ca_path"]),
    ("CLIENT_CERT", &["vault", "client_cert"]),
    ("CLIENT_KEY", &["vault", "client_key"]),
    ("SKIP_VERIFY", &["vault", "tls_skip_verify"]),
    ("TLS_SERVER_NAME", &["vault", "tls_server_name"]),
    ("NAMESPACE", &["vault", "namespace"]),
    ("MAX_RETRIES", &["vault", "retry", "num_retries"]),
    ("CLIENT_TIMEOUT", &["vault", "client_timeout"]),
    (
        "AGENT_DISABLE_IDLE_CONNECTIONS",
        &["disable_idle_connections"],
    ),
    ("AGENT_DISABLE_KEEP_ALIVES", &["disable_keep_alives"]),
    // Vault Agent's -log-level and -log-format flags default to these.
    ("LOG_LEVEL", &["log_level"]),
    ("LOG_FORMAT", &["log_format"]),
];

/// One value placed at its config key over the files: an environment variable's, or a
/// command-line flag's. Errors about it name `origin`.
#[derive(Debug, Clone)]
struct Override {
    /// `environment variable NAME`, the flag as typed (`--listen`), or an nginx directive's
    /// `FILE:LINE:COL`.
    origin: String,
    path: &'static [&'static str],
    value: Value,
}

/// A setting given by a command-line flag (`proxy --listen ADDR`): the last layer, over the
/// files and the environment. A bad value is reported as `--listen: proxy.listen: ...`, and
/// exits 78 like a bad file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagOverride {
    /// The flag as the user types it, `--listen`.
    pub flag: &'static str,
    /// The config key it sets, `["proxy", "listen"]`.
    pub path: &'static [&'static str],
    /// The flag's value, as text (checked by the same rules as the file's).
    pub value: String,
}

impl Provider for Override {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut value = self.value.clone();
        for key in self.path.iter().skip(1).rev() {
            let mut dict = Dict::new();
            dict.insert((*key).to_string(), value);
            value = Value::from(dict);
        }
        let mut top = Dict::new();
        top.insert(self.path[0].to_string(), value);
        Ok(Profile::Default.collect(top))
    }
}

/// The overrides present in `env`, `BAO_*` winning over `VAULT_*`; empty values count as unset.
fn env_overrides(env: &dyn Fn(&str) -> Option<String>) -> Vec<Override> {
    let mut overrides = Vec::new();
    for (suffix, path) in ENV_OVERRIDES {
        for prefix in ["BAO_", "VAULT_"] {
            let variable = format!("{prefix}{suffix}");
            if let Some(value) = env(&variable).filter(|v| !v.is_empty()) {
                overrides.push(Override {
                    origin: env_origin(&variable),
                    path,
                    value: Value::from(value),
                });
                break;
            }
        }
    }
    overrides
}

/// Loads `paths` in order with the process environment. Every template is parsed with
/// `functions` known (the agent's function registry): a syntax error or an unknown function
/// is a config error, as Vault Agent refuses to start on one.
pub fn load(paths: &[PathBuf], functions: &dyn Functions) -> Result<Config, ConfigErrors> {
    load_with_env(paths, &|name| std::env::var(name).ok(), functions)
}

/// Loads `paths` in order with the environment given by `env` (tests pass a map).
pub fn load_with_env(
    paths: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
    functions: &dyn Functions,
) -> Result<Config, ConfigErrors> {
    load_sources(paths, &[], env, functions)
}

/// Loads `paths` in order, then the JSON agent file held by each environment variable of
/// `env_configs` in order (`--config-env NAME`, as the Vault Agent Injector's `VAULT_CONFIG`),
/// with the environment given by `env`.
pub fn load_sources(
    paths: &[PathBuf],
    env_configs: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    functions: &dyn Functions,
) -> Result<Config, ConfigErrors> {
    load_sources_with_flags(paths, env_configs, &[], env, functions)
}

/// [`load_sources`], then `flags` over everything else (a role's command-line settings).
pub fn load_sources_with_flags(
    paths: &[PathBuf],
    env_configs: &[String],
    flags: &[FlagOverride],
    env: &dyn Fn(&str) -> Option<String>,
    functions: &dyn Functions,
) -> Result<Config, ConfigErrors> {
    load_layers(paths, env_configs, Vec::new(), flags, env, functions)
}

/// The files, the environment-variable agent files, then the environment's overrides,
/// `settings` (the nginx file's) and `flags`, each layer over the ones before.
fn load_layers(
    paths: &[PathBuf],
    env_configs: &[String],
    settings: Vec<Override>,
    flags: &[FlagOverride],
    env: &dyn Fn(&str) -> Option<String>,
    functions: &dyn Functions,
) -> Result<Config, ConfigErrors> {
    let mut files = read_files(paths)?;
    for name in env_configs {
        files.push(read_env_config(name, env)?);
    }
    let mut overrides = env_overrides(env);
    overrides.extend(settings);
    overrides.extend(flags.iter().map(|flag| Override {
        origin: flag.flag.to_string(),
        path: flag.path,
        value: Value::from(flag.value.clone()),
    }));
    build(files, overrides, functions)
}

/// [`load_sources_with_flags`] with the TLS server of the nginx configuration `nginx` read
/// as the proxy's settings (`proxy --nginx-config`), over the files and the environment and
/// under the flags; what it does not carry over is in the warnings.
pub fn load_for_proxy(
    paths: &[PathBuf],
    env_configs: &[String],
    nginx: &Path,
    flags: &[FlagOverride],
    env: &dyn Fn(&str) -> Option<String>,
    functions: &dyn Functions,
) -> Result<Config, ConfigErrors> {
    let mapped = nginx::read(nginx)?;
    let settings = mapped
        .settings
        .into_iter()
        .map(|(origin, path, value)| Override {
            origin,
            path,
            value,
        })
        .collect();
    let mut config = load_layers(paths, env_configs, settings, flags, env, functions)?;
    config.sources.push(nginx.to_path_buf());
    config.included = mapped.included;
    let mut warnings = mapped.warnings;
    warnings.append(&mut config.warnings);
    config.warnings = warnings;
    Ok(config)
}

/// The origin an agent file read from environment variable `name` is reported under.
pub fn env_origin(name: &str) -> String {
    format!("environment variable {name}")
}

/// Reads the agent file held by environment variable `name`: JSON, or base64 of JSON (as
/// the Vault Agent Injector writes `VAULT_CONFIG`). Errors name the variable and, for JSON,
/// the line in the decoded text.
fn read_env_config(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<hcl::HclFile, ConfigError> {
    let origin = env_origin(name);
    let Some(text) = env(name).filter(|text| !text.trim().is_empty()) else {
        return Err(ConfigError::Invalid {
            origin,
            path: "(value)".to_string(),
            message: format!(
                "not set or empty; --config-env {name} needs the JSON agent file in it"
            ),
        });
    };
    let text = decode_env_config(&text);
    json::parse(Path::new(&origin), &text)
}

/// The JSON text of an environment variable's value: as is when it looks like JSON, else
/// decoded from base64 when that gives UTF-8 (else as is, for the JSON parser to refuse).
fn decode_env_config(text: &str) -> String {
    use base64::Engine as _;
    if text.trim_start().starts_with('{') {
        return text.to_string();
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded {
        Some(json) if json.trim_start().starts_with('{') => json,
        _ => text.to_string(),
    }
}

/// The files `path` names: itself, or, for a directory (as Vault Agent's `-config` accepts),
/// its `*.hcl` and `*.json` files — not its subdirectories, not editors' temporary files
/// (`name~`, `.#name`, `#name#`) — in name order (Vault Agent takes them in directory order,
/// which no one can rely on).
fn config_files(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let io_error = |source| ConfigError::Io {
        file: path.display().to_string(),
        source,
    };
    if !std::fs::metadata(path).map_err(io_error)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let temporary = name.ends_with('~')
            || name.starts_with(".#")
            || (name.starts_with('#') && name.ends_with('#'));
        let loadable = name.ends_with(".hcl") || name.ends_with(".json");
        if loadable && !temporary && !entry.path().is_dir() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the files of `paths` (each a file or a directory, [`config_files`]) in order, stopping
/// at the first error: JSON when a file's name ends in `.json` (as Vault Agent decides), else
/// HCL, all the HCL files parsed on one thread ([`hcl::HclFile::parse_in_background`]). An
/// error is the first one in file order, as if each file were read and parsed in turn.
fn read_files(paths: &[PathBuf]) -> Result<Vec<hcl::HclFile>, ConfigError> {
    // Listed and read up to the first failure, which is reported after the files before it.
    let mut failure = None;
    let mut texts = Vec::new();
    'paths: for path in paths {
        let listed = match config_files(path) {
            Ok(listed) => listed,
            Err(error) => {
                failure = Some(error);
                break;
            }
        };
        for file in listed {
            match std::fs::read_to_string(&file) {
                Ok(text) => texts.push((file, text)),
                Err(source) => {
                    failure = Some(ConfigError::Io {
                        file: file.display().to_string(),
                        source,
                    });
                    break 'paths;
                }
            }
        }
    }
    let is_json = |path: &Path| {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    };
    let mut order = Vec::with_capacity(texts.len());
    let mut hcl_texts = Vec::new();
    for (path, text) in texts {
        if is_json(&path) {
            order.push((path, Some(text)));
        } else {
            hcl_texts.push((path.clone(), text));
            order.push((path, None));
        }
    }
    let first_hcl = hcl_texts
        .first()
        .map(|(path, _)| path.display().to_string());
    let parsing =
        hcl::HclFile::parse_in_background(hcl_texts, hcl::PARSE_DEADLINE).map_err(|source| {
            ConfigError::Io {
                file: first_hcl.unwrap_or_default(),
                source,
            }
        })?;
    let mut files = Vec::with_capacity(order.len());
    for (path, json_text) in order {
        files.push(match json_text {
            Some(text) => json::parse(&path, &text)?,
            None => parsing.next(&path)?,
        });
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(files),
    }
}

/// Loads HCL given as text, as if read from `name` (for tests and fuzzing).
pub fn load_str(name: &str, text: &str, functions: &dyn Functions) -> Result<Config, ConfigErrors> {
    let file = hcl::HclFile::parse(Path::new(name), text)?;
    build(vec![file], Vec::new(), functions)
}

/// The unknown keys and wrong types of one file. serde stops at the first problem of a
/// struct or list, so each top-level block, and each `template`, is typed on its own: the
/// problems of different blocks are all reported in one run.
fn type_errors(file: &hcl::HclFile, origin: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut check = |data: Dict, rename: Option<(usize, &str)>| {
        let part = hcl::HclFile::from_parts(file.path(), data, Default::default());
        if let Err(error) = Figment::from(part).extract::<raw::RawConfig>() {
            for mut error in resolve::from_figment(error, origin) {
                // The template was typed alone, as `template[0]`: give it its own index.
                if let (Some((index, key)), ConfigError::Invalid { path, .. }) =
                    (rename, &mut error)
                {
                    let alone = format!("{key}[0]");
                    if let Some(rest) = path.strip_prefix(&alone) {
                        *path = format!("{key}[{index}]{rest}");
                    }
                }
                errors.push(error);
            }
        }
    };
    for (key, value) in file.data() {
        match value {
            Value::Array(_, items) if key == "template" => {
                for (index, item) in items.iter().enumerate() {
                    let mut data = Dict::new();
                    data.insert(key.clone(), Value::from(vec![item.clone()]));
                    check(data, Some((index, key.as_str())));
                }
            }
            _ => {
                let mut data = Dict::new();
                data.insert(key.clone(), value.clone());
                check(data, None);
            }
        }
    }
    errors
}

/// Vault Agent's blocks that a later file replaces whole (`Config.Merge`: a later `vault {}`
/// is the whole of `vault`, not a few keys over the earlier one's).
const REPLACED_BY_A_LATER_FILE: &[&str] = &[
    "vault",
    "auto_auth",
    "template_config",
    "exec",
    "cache",
    "api_proxy",
];

/// Several files merged as Vault Agent merges them (`Config.Merge` in OpenBao's
/// `command/agent/config`): each block of [`REPLACED_BY_A_LATER_FILE`] a later file gives
/// replaces the earlier files' whole; `exit_after_auth` holds when any file sets it (a later
/// `false` does not undo it); `template`, `env_template` and `listener` blocks add up and other
/// single values of a later file win, as the merge below does for every other key (this
/// project's `proxy {}`, `app {}` and `pki_sidecar {}` included, and `telemetry {}`, whose
/// keys here are all this project's: Vault's are refused).
fn merge_as_vault_agent(files: &mut [hcl::HclFile]) {
    for later in 1..files.len() {
        let replaced: Vec<&str> = REPLACED_BY_A_LATER_FILE
            .iter()
            .copied()
            .filter(|key| files[later].data().contains_key(*key))
            .collect();
        for earlier in &mut files[..later] {
            for key in &replaced {
                earlier.data_mut().remove(*key);
            }
        }
    }
    let sets_exit = |file: &hcl::HclFile| {
        file.data().get("exit_after_auth").is_some_and(|value| {
            value.to_bool() == Some(true)
                || value
                    .as_str()
                    .is_some_and(|text| text.trim().eq_ignore_ascii_case("true"))
        })
    };
    if files.len() > 1 && files.iter().any(sets_exit) {
        for file in files.iter_mut() {
            if !sets_exit(file) {
                file.data_mut().remove("exit_after_auth");
            }
        }
    }
}

fn build(
    mut files: Vec<hcl::HclFile>,
    overrides: Vec<Override>,
    functions: &dyn Functions,
) -> Result<Config, ConfigErrors> {
    // Each file alone first: an unknown key or a wrong type is then blamed on the right file.
    // Every problem is reported together.
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut typing = Vec::new();
    for file in &mut files {
        warnings.extend(file.take_warnings());
        let origin = error::origin_name(file.path());
        let places = file.clone();
        let (ignored, refused) =
            keys::prune_ignored(&origin, &|path| places.place_near(path), file.data_mut());
        warnings.extend(ignored);
        errors.extend(refused);
        typing.extend(type_errors(file, &origin));
    }
    let places = Places {
        files: files.clone(),
    };
    if !typing.is_empty() {
        // Each file was typed alone: its lists are indexed as it writes them.
        errors.extend(typing.into_iter().map(|e| places.error(e, false)));
        return Err(ConfigErrors(errors));
    }
    let sources: Vec<PathBuf> = files.iter().map(|f| f.path().to_path_buf()).collect();
    let last_file = sources
        .last()
        .map_or_else(|| "(no config file)".to_string(), |p| error::origin_name(p));
    merge_as_vault_agent(&mut files);
    let mut figment = Figment::new();
    for file in files {
        figment = figment.admerge(file);
    }
    for layer in overrides {
        figment = figment.merge(layer);
    }
    let raw: raw::RawConfig = match figment.extract() {
        Ok(raw) => raw,
        Err(e) => {
            errors.extend(
                resolve::from_figment(e, &last_file)
                    .into_iter()
                    .map(|e| places.error(e, true)),
            );
            return Err(ConfigErrors(errors));
        }
    };
    match resolve::resolve(raw, &figment, functions, sources, &last_file) {
        Ok(mut config) if errors.is_empty() => {
            warnings.extend(config.warnings.drain(..).map(|w| places.warning(w)));
            config.warnings = warnings;
            if config.strict
                && let Some(strict) = config.strict_errors()
            {
                return Err(strict);
            }
            Ok(config)
        }
        Ok(_) => Err(ConfigErrors(errors)),
        Err(ConfigErrors(more)) => {
            errors.extend(more.into_iter().map(|e| places.error(e, true)));
            Err(ConfigErrors(errors))
        }
    }
}

/// Where an error or a warning about a key points: `FILE:LINE:COL` in place of `FILE` when the
/// file says where the key, or its nearest parent, is written (values from the environment or
/// a flag keep their origin as is).
struct Places {
    files: Vec<hcl::HclFile>,
}

impl Places {
    /// `merged`: the path indexes the lists that files add up (`template`, `auto_auth.sink`)
    /// as resolution sees them, all files together: `template[2]` is the second file's first
    /// template when the first file has two. Otherwise the path is the file's own.
    fn locate(&self, origin: &str, path: &str, merged: bool) -> Option<String> {
        let index = self
            .files
            .iter()
            .position(|file| error::origin_name(file.path()) == origin)?;
        let local = if merged {
            self.local_path(index, path)
        } else {
            path.to_string()
        };
        let (line, column) = self.files[index].place_near(&local)?;
        Some(format!("{origin}:{line}:{column}"))
    }

    /// `path`'s first list index made the file's own, by taking away the items the files
    /// before it added to that list.
    fn local_path(&self, index: usize, path: &str) -> String {
        let Some(open) = path.find('[') else {
            return path.to_string();
        };
        let Some(close) = path[open..].find(']').map(|at| open + at) else {
            return path.to_string();
        };
        let Ok(item) = path[open + 1..close].parse::<usize>() else {
            return path.to_string();
        };
        let list = &path[..open];
        let before: usize = self.files[..index]
            .iter()
            .map(|file| list_len(file.data(), list))
            .sum();
        format!(
            "{list}[{}]{}",
            item.saturating_sub(before),
            &path[close + 1..]
        )
    }

    fn error(&self, error: ConfigError, merged: bool) -> ConfigError {
        match error {
            ConfigError::Invalid {
                origin,
                path,
                message,
            } => ConfigError::Invalid {
                origin: self.locate(&origin, &path, merged).unwrap_or(origin),
                path,
                message,
            },
            other => other,
        }
    }

    /// `FILE:LINE:COL` of `path` as resolution sees it (lists of all files together): a list
    /// item in the file that added it, another key in the last file that sets it.
    fn locate_merged(&self, path: &str) -> Option<String> {
        let at = |file: &hcl::HclFile, (line, column): (usize, usize)| {
            format!("{}:{line}:{column}", error::origin_name(file.path()))
        };
        if let Some(open) = path.find('[')
            && let Some(close) = path[open..].find(']').map(|at| open + at)
            && let Ok(item) = path[open + 1..close].parse::<usize>()
        {
            let list = &path[..open];
            let mut remaining = item;
            for file in &self.files {
                let len = list_len(file.data(), list);
                if remaining < len {
                    let local = format!("{list}[{remaining}]{}", &path[close + 1..]);
                    return file.place_near(&local).map(|place| at(file, place));
                }
                remaining -= len;
            }
            return None;
        }
        self.files
            .iter()
            .rev()
            .find(|file| file_has(hcl::HclFile::data(file), path))
            .and_then(|file| file.place_near(path).map(|place| at(file, place)))
    }

    fn warning(&self, warning: ConfigWarning) -> ConfigWarning {
        ConfigWarning {
            origin: self
                .locate(&warning.origin, &warning.path, true)
                .unwrap_or(warning.origin),
            ..warning
        }
    }
}

/// Whether one file's data sets the key at dotted `path` (no list indexes).
fn file_has(data: &Dict, path: &str) -> bool {
    let mut parts = path.split('.');
    let Some(mut value) = parts.next().and_then(|first| data.get(first)) else {
        return false;
    };
    for part in parts {
        match value {
            Value::Dict(_, dict) => match dict.get(part) {
                Some(next) => value = next,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// `validate`'s own warnings (found after loading: a CA file that does not exist, two
/// templates writing one file...) given the `FILE:LINE:COL` of their key in the `paths` as
/// loaded; a warning whose key no file writes keeps its origin.
pub fn locate_warnings(paths: &[PathBuf], warnings: Vec<ConfigWarning>) -> Vec<ConfigWarning> {
    let Ok(files) = read_files(paths) else {
        return warnings;
    };
    let places = Places { files };
    warnings
        .into_iter()
        .map(|warning| match places.locate_merged(&warning.path) {
            Some(origin) => ConfigWarning { origin, ..warning },
            None => warning,
        })
        .collect()
}

/// How many items the list at `path` (`template`, `auto_auth.sink`) of one file's data holds.
fn list_len(data: &Dict, path: &str) -> usize {
    let mut parts = path.split('.');
    let Some(mut value) = parts.next().and_then(|first| data.get(first)) else {
        return 0;
    };
    for part in parts {
        match value {
            Value::Dict(_, dict) => match dict.get(part) {
                Some(next) => value = next,
                None => return 0,
            },
            _ => return 0,
        }
    }
    match value {
        Value::Array(_, items) => items.len(),
        _ => 0,
    }
}

impl Config {
    /// The warnings as errors, when there are any (`validate --strict`, `strict = true`).
    pub fn strict_errors(&self) -> Option<ConfigErrors> {
        if self.warnings.is_empty() {
            return None;
        }
        Some(ConfigErrors(
            self.warnings
                .iter()
                .cloned()
                .map(ConfigWarning::into_error)
                .collect(),
        ))
    }

    /// The agent role's config: `auto_auth` is required there (its error names the last
    /// file), everything else is taken as resolved.
    pub fn agent(&self) -> Result<AgentConfig, ConfigErrors> {
        let Some(auto_auth) = self.auto_auth.clone() else {
            let origin = self
                .sources
                .last()
                .map_or_else(|| "(no config file)".to_string(), |p| error::origin_name(p));
            return Err(ConfigError::Invalid {
                origin,
                path: "auto_auth".to_string(),
                message: "the agent role needs an auto_auth block with a method to log in \
                          to Vault"
                    .to_string(),
            }
            .into());
        };
        Ok(AgentConfig {
            vault: self.vault.clone(),
            auto_auth,
            templates: self.templates(),
            telemetry: self.telemetry.clone(),
            pid_file: self.pid_file.clone(),
            exit_after_auth: self.exit_after_auth,
            shutdown_grace: self.shutdown_grace,
            api_proxy: self.api_proxy.clone(),
            exec: self.exec.clone(),
            revoke_on_shutdown: self.revoke_on_shutdown,
            fresh_connections: self.fresh_connections,
        })
    }

    /// The template blocks and their shared settings.
    pub fn templates(&self) -> Templates {
        Templates {
            settings: self.template_config.clone(),
            templates: self.templates.clone(),
            env: self.env_templates.clone(),
            cert_labels: self.telemetry.cert_labels.clone(),
            retries: self.vault.num_retries,
        }
    }
}

/// What the agent role runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// How to reach Vault.
    pub vault: Vault,
    /// How to log in, and where the token goes.
    pub auto_auth: AutoAuth,
    /// The templates to render and keep current.
    pub templates: Templates,
    /// The metrics listener.
    pub telemetry: Telemetry,
    /// `pid_file`.
    pub pid_file: Option<PathBuf>,
    /// `exit_after_auth`: log in once, render every template once, exit.
    pub exit_after_auth: bool,
    /// `shutdown_grace`: the longest the agent takes to stop after SIGTERM, whatever it is
    /// blocked on.
    pub shutdown_grace: Duration,
    /// The local Vault API listeners, if any.
    pub api_proxy: Option<ApiProxy>,
    /// The child process the agent supervises (`exec {}` with `env_template`), if any.
    pub exec: Option<Exec>,
    /// Revoke the token this long after a stop signal, if set.
    pub revoke_on_shutdown: Option<Duration>,
    /// The parts whose connections to Vault are not reused.
    pub fresh_connections: FreshConnections,
}

/// The `template {}` blocks and `template_config {}`: what the template runner needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    /// `template_config {}`.
    pub settings: TemplateConfig,
    /// Every `template {}`, in file order.
    pub templates: Vec<Template>,
    /// Every `env_template`, by name (exclusive with `templates`).
    pub env: Vec<EnvTemplate>,
    /// `telemetry { cert_labels }`: the `cert` label of a certificate file, when it is not the
    /// file's base name.
    pub cert_labels: BTreeMap<PathBuf, String>,
    /// `vault.retry.num_retries`: with `exit_on_retry_failure`, how many times a template that
    /// fails is tried again before the agent exits, as Vault Agent retries it.
    pub retries: u32,
}

/// The `cert` label of the certificate in `path` when the config names none: the file's base
/// name (`tls.crt`), the same in the agent that writes the file and the proxy that serves it, so
/// their series join on it.
pub fn default_cert_label(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::{Cidr, ConfigError, PathMatch, read_files};

    /// A map picks an exact value (case ignored), else the first regular expression that
    /// matches (its groups in the value), else its default; a map may read another written
    /// before it, never one after it.
    #[test]
    fn maps_pick_values_as_nginx_does() {
        let entries = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(m, v)| (m.to_string(), v.to_string()))
                .collect()
        };
        let map = super::VariableMap::new(
            "cors",
            "$http_origin",
            &entries(&[
                (
                    "~^https://([a-z]+)\\.example\\.org$",
                    "https://$1.example.org",
                ),
                ("https://App.example.com", "exact"),
                ("~*^HTTPS://", "any https"),
                ("\\~tilde", "tilde"),
            ]),
            "none",
        )
        .unwrap();
        let text = |source: &str| {
            let (pieces, groups) = map.lookup(source);
            pieces
                .iter()
                .map(|piece| match piece {
                    super::ReplacementPiece::Part(super::RequestHeaderPart::Text(text)) => {
                        text.clone()
                    }
                    super::ReplacementPiece::Capture(n) => groups
                        .as_ref()
                        .and_then(|g| g.get(*n))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                    other => format!("{other:?}"),
                })
                .collect::<String>()
        };
        assert_eq!(
            text("https://app.EXAMPLE.com"),
            "exact",
            "exact first, case ignored"
        );
        assert_eq!(text("https://shop.example.org"), "https://shop.example.org");
        assert_eq!(
            text("https://elsewhere.net"),
            "any https",
            "in the order written"
        );
        assert_eq!(text("~tilde"), "tilde");
        assert_eq!(text("http://plain"), "none");
        assert_eq!(
            map.source,
            [super::RequestHeaderPart::Http("origin".into())]
        );
        // `$cors` is a variable only while the map is in scope.
        assert!(super::request_header_parts("$cors").is_err());
        let scope = super::MapScope::enter(vec![std::sync::Arc::new(map)]);
        let later = super::VariableMap::new("allowed", "$cors", &[], "").unwrap();
        assert!(
            matches!(later.source.as_slice(), [super::RequestHeaderPart::Map(m)] if m.name == "cors")
        );
        drop(scope);
        assert!(super::request_header_parts("$cors").is_err());
        let err = super::VariableMap::new("x", "$uri", &entries(&[("/a", "$1")]), "").unwrap_err();
        assert_eq!(err.0, "values");
        let err = super::VariableMap::new("host", "$uri", &[], "").unwrap_err();
        assert_eq!(err, ("variable", "$host is already a variable".to_string()));
    }

    #[test]
    fn access_rules_decide_by_the_first_that_matches_as_nginx_does() {
        use super::AccessRule;
        let rules: Vec<AccessRule> = [
            "deny 10.1.2.3",
            "allow 10.0.0.0/8",
            "allow fd00::/8",
            "deny all",
        ]
        .iter()
        .map(|rule| AccessRule::parse(rule).unwrap())
        .collect();
        let allows = |ip: &str| AccessRule::allows(&rules, ip.parse().unwrap());
        assert!(!allows("10.1.2.3"));
        assert!(allows("10.1.2.4"));
        assert!(allows("::ffff:10.9.9.9"));
        assert!(allows("fd00::1"));
        assert!(!allows("192.168.1.1"));
        assert!(!allows("::1"));
        // No rule, or none that matches: in.
        assert!(AccessRule::allows(&[], "192.168.1.1".parse().unwrap()));
        assert!(AccessRule::allows(
            &rules[..3],
            "192.168.1.1".parse().unwrap()
        ));
        assert_eq!(rules[1].to_string(), "allow 10.0.0.0/8");
        assert_eq!(rules[3].to_string(), "deny all");
        assert_eq!(rules[0].to_string(), "deny 10.1.2.3");
        for bad in [
            "allow",
            "permit 10.0.0.0/8",
            "deny 10.0.0.0/33",
            "allow all now",
            "deny unix:",
        ] {
            assert!(AccessRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expires_is_read_as_nginx_reads_it() {
        use super::Expires;
        let parsed = |text: &str| Expires::parse(text);
        assert_eq!(parsed("off"), Ok(None));
        assert_eq!(parsed("epoch"), Ok(Some(Expires::Epoch)));
        assert_eq!(parsed("max"), Ok(Some(Expires::Max)));
        assert_eq!(parsed("30d"), Ok(Some(Expires::After(30 * 86_400))));
        assert_eq!(parsed("1h30m"), Ok(Some(Expires::After(5_400))));
        assert_eq!(parsed("1y"), Ok(Some(Expires::After(365 * 86_400))));
        assert_eq!(parsed("-1"), Ok(Some(Expires::After(-1))));
        assert_eq!(parsed("600"), Ok(Some(Expires::After(600))));
        for bad in ["", "-", "d", "30x", "modified 1h", "@15h30m", "1h 30m"] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_rates_are_read_as_nginx_reads_them() {
        assert_eq!(super::request_rate("5r/s"), Some(5000));
        assert_eq!(super::request_rate("30r/m"), Some(500));
        assert_eq!(super::request_rate("1r/m"), Some(16));
        for bad in ["5", "0r/s", "5r/h", "r/s", "-1r/s"] {
            assert_eq!(super::request_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn locations_are_read_as_nginx_writes_them() {
        let parsed = |spec: &str| PathMatch::parse(spec).map(|p| p.to_string());
        assert_eq!(parsed("/api/"), Ok("/api/".to_string()));
        assert_eq!(parsed("=  /ping"), Ok("= /ping".to_string()));
        assert_eq!(parsed("^~ /static/"), Ok("^~ /static/".to_string()));
        assert_eq!(
            parsed("~* \\.(png|jpg)$"),
            Ok("~* \\.(png|jpg)$".to_string())
        );
        assert!(PathMatch::parse("/").unwrap().is_everything());
        assert!(!PathMatch::parse("= /").unwrap().is_everything());
        for bad in ["api", "= ping", "/a b", "~ ", "~ (unclosed"] {
            assert!(PathMatch::parse(bad).is_err(), "{bad}");
        }
        // PCRE's look-ahead and back-references, common in nginx files, are read.
        assert!(PathMatch::parse("~ /\\.(?!well-known)").is_ok());
        assert!(PathMatch::parse("~ ^/(a|b)/\\1$").is_ok());
    }

    /// The files of a load are read, then parsed on one thread; the error reported is still the
    /// first in file order, whatever its kind.
    #[test]
    fn files_are_read_in_order_and_the_first_error_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("a.json"), r#"{"pid_file": "/a"}"#).unwrap();
        std::fs::write(path("b.hcl"), "pid_file = \"/b\"\n").unwrap();
        std::fs::write(path("broken.hcl"), "vault {\n").unwrap();
        let files = read_files(&[path("b.hcl"), path("a.json")]).unwrap();
        let pids: Vec<_> = files
            .iter()
            .map(|file| {
                let data = figment::Provider::data(file).unwrap();
                let dict = data.into_values().next().unwrap();
                dict.get("pid_file")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(pids, [Some("/b".to_owned()), Some("/a".to_owned())]);
        let before_missing = read_files(&[path("broken.hcl"), path("missing.hcl")]).unwrap_err();
        assert!(
            matches!(&before_missing, ConfigError::Syntax { .. }),
            "{before_missing}"
        );
        let missing =
            read_files(&[path("b.hcl"), path("missing.hcl"), path("broken.hcl")]).unwrap_err();
        assert!(
            matches!(&missing, ConfigError::Io { file, .. } if file.ends_with("missing.hcl")),
            "{missing}"
        );
    }

    fn contains(cidr: &str, ip: &str) -> bool {
        Cidr::parse(cidr).unwrap().contains(ip.parse().unwrap())
    }

    #[test]
    fn cidr_blocks_match_their_addresses_only() {
        assert!(contains("10.0.0.0/8", "10.255.1.2"));
        assert!(!contains("10.0.0.0/8", "11.0.0.1"));
        assert!(contains("10.1.2.3/8", "10.9.9.9"), "host bits are ignored");
        assert!(contains("192.0.2.7", "192.0.2.7"));
        assert!(!contains("192.0.2.7", "192.0.2.8"));
        assert!(contains("0.0.0.0/0", "203.0.113.1"));
        assert!(
            !contains("0.0.0.0/0", "::1"),
            "an IPv4 block holds no IPv6 address"
        );
        assert!(contains("::/0", "2001:db8::1"));
        assert!(contains("fd00::/8", "fd12:3456::1"));
        assert!(!contains("fd00::/8", "fe80::1"));
        assert!(contains("::1/128", "::1"));
        assert!(
            contains("10.0.0.0/8", "::ffff:10.0.0.1"),
            "an IPv4-mapped peer matches IPv4 blocks"
        );
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn malformed_cidr_blocks_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "a.example/8",
            "10.0.0.0/8/8",
            "10.0.0.0 /8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }
}
