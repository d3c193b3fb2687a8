//! The configuration as written: every key optional, unknown keys refused.
//!
//! The field lists are also the known keys `config::keys` checks against: at the levels where
//! Vault Agent ignores unknown keys they are removed (with a warning) before these structs see
//! the data, so `deny_unknown_fields` only ever fires where Vault Agent refuses them too. Keys
//! Vault Agent knows but this program refuses are fields of type `IgnoredAny`, refused by name
//! in `config::resolve`.
//!
//! These structs mirror Vault Agent's HCL file plus this project's `proxy {}` and `app {}`
//! blocks. They only say which keys exist and roughly what type each holds; defaults, units and
//! cross-key rules are applied in `config::resolve`, so that each problem can be reported with
//! its file and path. Durations and modes stay [`Scalar`]s here because Vault accepts several
//! spellings of each (`"24h"`, `3600`, `0644`, `"0644"`).

use std::collections::BTreeMap;

use serde::Deserialize;

pub(crate) use crate::units::Scalar;

/// A string, or a list of strings (`command`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum StringOrList {
    /// One string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub pid_file: Option<String>,
    pub exit_after_auth: Option<bool>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub shutdown_grace: Option<Scalar>,
    pub listen_backlog: Option<Scalar>,
    pub vault: Option<RawVault>,
    pub auto_auth: Option<RawAutoAuth>,
    pub template_config: Option<RawTemplateConfig>,
    pub template: Option<Vec<RawTemplate>>,
    pub telemetry: Option<RawTelemetry>,
    pub proxy: Option<RawProxy>,
    pub app: Option<RawApp>,
    pub pki_sidecar: Option<RawPkiSidecar>,
    pub listener: Option<Vec<RawListener>>,
    pub disable_idle_connections: Option<StringOrList>,
    pub disable_keep_alives: Option<StringOrList>,
    pub cache: Option<RawCache>,
    pub api_proxy: Option<RawApiProxy>,
    /// `env_template "NAME" { ... }`, by variable name (the HCL reader and `config::shape`
    /// bring every spelling to this map).
    pub env_template: Option<BTreeMap<String, RawTemplate>>,
    /// The top-level `exec {}`: the child process the `env_template` variables go to.
    pub exec: Option<RawSupervisedExec>,
}

/// The top-level `exec {}` (Vault Agent's process supervisor mode).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSupervisedExec {
    pub command: Option<StringOrList>,
    pub restart_on_secret_changes: Option<String>,
    pub restart_stop_signal: Option<String>,
}

/// `listener "tcp" {}`: a local Vault API listener (Vault Agent's API proxy).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawListener {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub address: Option<String>,
    pub tls_disable: Option<Scalar>,
    pub require_request_header: Option<Scalar>,
    pub agent_api: Option<RawAgentApi>,
    /// Every other key Vault Agent's listener has (TLS, `role`, socket modes...):
    /// each refused by name.
    #[serde(flatten)]
    pub refused: BTreeMap<String, serde::de::IgnoredAny>,
}

/// `listener { agent_api {} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgentApi {
    pub enable_quit: Option<Scalar>,
}

/// `cache {}`: here only where the API proxy's `use_auto_auth_token` used to be set.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawCache {
    pub use_auto_auth_token: Option<Scalar>,
    pub persist: Option<serde::de::IgnoredAny>,
    /// Every other key of Vault Agent's cache (static secret caching, consistency...): each
    /// refused by name.
    #[serde(flatten)]
    pub refused: BTreeMap<String, serde::de::IgnoredAny>,
}

/// `api_proxy {}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawApiProxy {
    pub use_auto_auth_token: Option<Scalar>,
    /// `enforce_consistency`, `when_inconsistent`, `prepend_configured_namespace`: each refused
    /// by name.
    #[serde(flatten)]
    pub refused: BTreeMap<String, serde::de::IgnoredAny>,
}

/// `pki_sidecar {}`: settings of this program's own that Vault Agent ignores with the block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPkiSidecar {
    pub strict: Option<bool>,
    pub revoke_token_on_shutdown: Option<bool>,
    pub revoke_grace: Option<Scalar>,
}

/// `vault {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVault {
    pub address: Option<String>,
    pub ca_cert: Option<String>,
    pub ca_path: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub tls_skip_verify: Option<Scalar>,
    pub tls_server_name: Option<String>,
    pub namespace: Option<String>,
    pub retry: Option<RawRetry>,
    pub client_timeout: Option<Scalar>,
}

/// `vault { retry {} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub num_retries: Option<Scalar>,
}

/// `auto_auth {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAutoAuth {
    pub method: Option<RawMethod>,
    pub sink: Option<Vec<RawSink>>,
}

/// `auto_auth { method "TYPE" {} }`; `config` is checked per type in `resolve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMethod {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub mount_path: Option<String>,
    pub namespace: Option<String>,
    pub min_backoff: Option<Scalar>,
    pub max_backoff: Option<Scalar>,
    pub exit_on_err: Option<bool>,
    pub config: Option<BTreeMap<String, Scalar>>,
    // Vault Agent keys recognised so they can be refused by name.
    pub wrap_ttl: Option<serde::de::IgnoredAny>,
}

/// `auto_auth { sink "file" {} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub config: Option<RawSinkConfig>,
    // Vault Agent keys recognised so they can be refused by name.
    pub wrap_ttl: Option<Scalar>,
    pub dh_type: Option<serde::de::IgnoredAny>,
    pub dh_path: Option<serde::de::IgnoredAny>,
    /// Refused when true; `false`, Vault Agent's default, changes nothing.
    pub derive_key: Option<Scalar>,
    pub aad: Option<serde::de::IgnoredAny>,
    pub aad_env_var: Option<serde::de::IgnoredAny>,
}

/// `sink { config {} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSinkConfig {
    pub path: Option<String>,
    pub mode: Option<Scalar>,
}

/// `proxy { gzip {} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGzip {
    pub types: Option<Vec<String>>,
    pub min_length: Option<Scalar>,
    pub level: Option<Scalar>,
    pub vary: Option<Scalar>,
    pub proxied: Option<Vec<String>>,
    pub http_version: Option<String>,
}

/// `template_config {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplateConfig {
    pub exit_on_retry_failure: Option<bool>,
    pub static_secret_render_interval: Option<Scalar>,
    pub lease_renewal_threshold: Option<Scalar>,
    pub max_connections_per_host: Option<Scalar>,
}

/// One `template {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub source: Option<String>,
    pub contents: Option<String>,
    pub destination: Option<String>,
    pub perms: Option<Scalar>,
    pub create_dest_dirs: Option<bool>,
    pub error_on_missing_key: Option<bool>,
    pub left_delimiter: Option<String>,
    pub right_delimiter: Option<String>,
    pub command: Option<StringOrList>,
    pub command_timeout: Option<Scalar>,
    pub exec: Option<RawExec>,
    pub user: Option<Scalar>,
    pub group: Option<Scalar>,
    pub wait: Option<RawWait>,
    // consul-template keys Vault Agent accepts, recognised so they can be refused by name.
    pub uid: Option<serde::de::IgnoredAny>,
    pub gid: Option<serde::de::IgnoredAny>,
    pub backup: Option<Scalar>,
    pub error_fatal: Option<serde::de::IgnoredAny>,
    pub sandbox_path: Option<serde::de::IgnoredAny>,
    pub function_denylist: Option<serde::de::IgnoredAny>,
    pub function_blacklist: Option<serde::de::IgnoredAny>,
}

/// `template { exec { command = [...], timeout = "30s" } }` (Vault Agent 1.13 and later).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExec {
    pub command: Option<StringOrList>,
    pub timeout: Option<Scalar>,
}

/// `template { wait {} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWait {
    pub min: Option<Scalar>,
    pub max: Option<Scalar>,
}

/// `telemetry {}`: the agent's metrics listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    pub metrics_listen: Option<String>,
    pub cert_labels: Option<BTreeMap<String, String>>,
    /// Vault Agent's switch for its Prometheus output: checked, and met (the metrics are
    /// always Prometheus, always current).
    pub prometheus_retention_time: Option<Scalar>,
    /// Vault Agent's host-name prefix on gauge names: checked, and met (no metric name carries
    /// the host name, as OpenBao Agent's Prometheus output shows whatever it says).
    pub disable_hostname: Option<Scalar>,
    /// Vault Agent's service name, the first word of its metric names (`vault_agent_...`):
    /// names the Vault Agent counters the agent also exports.
    pub metrics_prefix: Option<String>,
}

/// One of `conditional_answers`: an answer given when a request matches `when` (nginx's
/// `if (...) { return ...; }`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConditionalAnswer {
    pub when: Option<String>,
    pub status: Option<Scalar>,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub only_own_headers: Option<Scalar>,
}

/// One of `rewrites`: nginx's `rewrite REGEX REPLACEMENT [FLAG]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRewrite {
    pub regex: Option<String>,
    pub replacement: Option<String>,
    pub flag: Option<String>,
}

/// One of `proxy.fixed_responses`: what the proxy answers itself (nginx's `return`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFixedResponse {
    pub status: Option<Scalar>,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub only_own_headers: Option<Scalar>,
}

/// One of `proxy.redirect_rewrite`: a prefix of `Location` and `Refresh` URLs the upstream
/// sends, and what replaces it (nginx's `proxy_redirect FROM TO`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedirectRewrite {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One of `proxy.cookie_flags`: a cookie (its name, or `~REGEX`) and the flags set on it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCookieRule {
    pub cookie: Option<String>,
    pub flags: Option<Vec<String>>,
}

/// One of `proxy.rate_limit_zones`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateZone {
    pub rate: Option<String>,
}

/// `limit_except`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimitExcept {
    pub methods: Option<Vec<String>>,
    pub access_rules: Option<Vec<String>>,
}

/// `upstream_tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    pub verify: Option<Scalar>,
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
    pub send_server_name: Option<Scalar>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

/// One of `maps`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMap {
    pub variable: Option<String>,
    pub source: Option<String>,
    pub default: Option<String>,
    pub values: Option<Vec<RawMapValue>>,
}

/// One of a map's `values`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapValue {
    #[serde(rename = "match")]
    pub matched: Option<String>,
    pub value: Option<String>,
}

/// One of `error_pages`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawErrorPage {
    pub statuses: Option<Vec<Scalar>>,
    pub page: Option<String>,
    pub status: Option<Scalar>,
}

/// One of `concurrency_limits`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConcurrencyLimit {
    pub zone: Option<String>,
    pub max: Option<Scalar>,
}

/// One of `rate_limits`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub zone: Option<String>,
    pub burst: Option<Scalar>,
    pub delay: Option<Scalar>,
    pub nodelay: Option<Scalar>,
}

/// One of `proxy.routes`: a location forwarded with settings of its own (nginx's other
/// `location` blocks that `proxy_pass`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub location: Option<String>,
    pub upstream: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub upstream_uri: Option<String>,
    pub upstream_connect_timeout: Option<Scalar>,
    pub upstream_response_timeout: Option<Scalar>,
    pub max_request_body: Option<Scalar>,
    pub request_buffering: Option<Scalar>,
    pub request_headers: Option<BTreeMap<String, String>>,
    pub redirect_rewrite: Option<Vec<RawRedirectRewrite>>,
    pub x_real_ip: Option<Scalar>,
    pub basic_auth_realm: Option<String>,
    pub basic_auth_file: Option<String>,
    pub cookie_flags: Option<Vec<RawCookieRule>>,
    pub rate_limits: Option<Vec<RawRateLimit>>,
    pub rate_limit_status: Option<Scalar>,
    pub concurrency_limits: Option<Vec<RawConcurrencyLimit>>,
    pub concurrency_limit_status: Option<Scalar>,
    pub hide_response_headers: Option<Vec<String>>,
    pub error_pages: Option<Vec<RawErrorPage>>,
    pub intercept_errors: Option<Scalar>,
    pub accel_redirect: Option<Scalar>,
    pub auth_request: Option<String>,
    pub upstream_tls: Option<RawUpstreamTls>,
    pub internal: Option<Scalar>,
    pub stub_status: Option<Scalar>,
    pub access_rules: Option<Vec<String>>,
    pub limit_except: Option<RawLimitExcept>,
    pub root: Option<String>,
    pub alias: Option<String>,
    pub index: Option<Vec<String>>,
    pub default_type: Option<String>,
    pub try_files: Option<Vec<String>>,
    pub answer: Option<RawFixedResponse>,
    pub conditional_answers: Option<Vec<RawConditionalAnswer>>,
    pub rewrites: Option<Vec<RawRewrite>>,
    pub expires: Option<String>,
    pub response_headers: Option<BTreeMap<String, String>>,
    pub response_headers_on_success: Option<BTreeMap<String, String>>,
}

/// `proxy {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    pub listen: Option<StringOrList>,
    pub upstream: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub upstream_uri: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cert_label: Option<String>,
    pub metrics_listen: Option<String>,
    pub listen_backlog: Option<Scalar>,
    pub shutdown_grace: Option<Scalar>,
    pub reload_interval: Option<Scalar>,
    pub tls_handshake_timeout: Option<Scalar>,
    pub tls_min_version: Option<String>,
    pub session_tickets: Option<Scalar>,
    pub header_read_timeout: Option<Scalar>,
    pub body_read_timeout: Option<Scalar>,
    pub send_timeout: Option<Scalar>,
    pub keepalive_requests: Option<Scalar>,
    pub idle_timeout: Option<Scalar>,
    pub upstream_connect_timeout: Option<Scalar>,
    pub upstream_response_timeout: Option<Scalar>,
    pub max_connections: Option<Scalar>,
    pub max_header_size: Option<Scalar>,
    pub max_request_body: Option<Scalar>,
    pub request_buffering: Option<Scalar>,
    pub forwarded_headers: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub hsts: Option<String>,
    pub response_headers: Option<BTreeMap<String, String>>,
    pub response_headers_on_success: Option<BTreeMap<String, String>>,
    pub fixed_responses: Option<BTreeMap<String, RawFixedResponse>>,
    pub conditional_answers: Option<Vec<RawConditionalAnswer>>,
    pub rewrites: Option<Vec<RawRewrite>>,
    pub routes: Option<Vec<RawRoute>>,
    pub redirect_rewrite: Option<Vec<RawRedirectRewrite>>,
    pub request_headers: Option<BTreeMap<String, String>>,
    pub x_real_ip: Option<Scalar>,
    pub basic_auth_realm: Option<String>,
    pub basic_auth_file: Option<String>,
    pub cookie_flags: Option<Vec<RawCookieRule>>,
    pub rate_limit_zones: Option<BTreeMap<String, RawRateZone>>,
    pub concurrency_limit_zones: Option<BTreeMap<String, String>>,
    pub rate_limits: Option<Vec<RawRateLimit>>,
    pub rate_limit_status: Option<Scalar>,
    pub concurrency_limits: Option<Vec<RawConcurrencyLimit>>,
    pub concurrency_limit_status: Option<Scalar>,
    pub hide_response_headers: Option<Vec<String>>,
    pub error_pages: Option<Vec<RawErrorPage>>,
    pub intercept_errors: Option<Scalar>,
    pub accel_redirect: Option<Scalar>,
    pub auth_request: Option<String>,
    pub upstream_tls: Option<RawUpstreamTls>,
    pub maps: Option<Vec<RawMap>>,
    pub access_rules: Option<Vec<String>>,
    pub limit_except: Option<RawLimitExcept>,
    pub server_names: Option<StringOrList>,
    pub unknown_host: Option<Scalar>,
    pub reject_unknown_sni: Option<Scalar>,
    pub gzip: Option<RawGzip>,
    pub file_types: Option<BTreeMap<String, String>>,
    pub expires: Option<String>,
    pub drop_underscore_headers: Option<Scalar>,
    pub absolute_redirects: Option<Scalar>,
    pub append_forwarded_for: Option<Scalar>,
    pub port_in_redirects: Option<Scalar>,
    pub access_log: Option<Scalar>,
    pub client_ca_file: Option<String>,
    pub client_auth: Option<String>,
}

/// `app {}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub listen_backlog: Option<Scalar>,
    pub shutdown_grace: Option<Scalar>,
}
