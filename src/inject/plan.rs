//! What a Pod's annotations ask for, read into one [`Plan`] whichever vocabulary they use:
//! this project's `pki-sidecar.io/` or the Vault Agent Injector's `vault.hashicorp.com/`.
//!
//! Every annotation of either prefix is accounted for: read, or refused by name. An unknown
//! name under either prefix is refused too (a typo would otherwise do nothing).

use std::collections::BTreeMap;

use super::InjectError;
use super::command;

/// This project's prefix.
pub(crate) const OWN: &str = "pki-sidecar.io/";
/// The Vault Agent Injector's prefix.
pub(crate) const VAULT: &str = "vault.hashicorp.com/";

/// The status annotations, written on injection.
pub(crate) const OWN_STATUS: &str = "pki-sidecar.io/status";
pub(crate) const VAULT_STATUS: &str = "vault.hashicorp.com/agent-inject-status";

/// Which vocabulary asked for the injection: names of containers, volumes and paths follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vocabulary {
    Own,
    Vault,
}

/// CPU, memory and ephemeral storage requests and limits (Kubernetes quantities).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub requests: BTreeMap<&'static str, String>,
    pub limits: BTreeMap<&'static str, String>,
}

/// One template of the agent file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateSpec {
    /// The annotation the template's text came from (named in errors).
    pub annotation: String,
    pub contents: String,
    /// `agent-inject-template-file-NAME`: a template file in the agent container, rendered
    /// in place of `contents`.
    pub source: Option<String>,
    pub destination: String,
    pub perms: Option<String>,
    pub command: Option<Vec<String>>,
    pub left_delimiter: Option<String>,
    pub right_delimiter: Option<String>,
    pub error_on_missing_key: bool,
}

/// The TLS proxy container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyPlan {
    pub port: u16,
    pub upstream_port: u16,
    pub metrics_port: u16,
    /// ConfigMap name and key of the client CA bundle (mTLS).
    pub client_ca: Option<(String, String)>,
    pub client_auth: Option<String>,
    pub resources: Resources,
    /// The files the agent writes and the proxy serves.
    pub cert_file: String,
    pub key_file: String,
}

/// Everything the injection adds, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub vocabulary: Vocabulary,
    /// The annotation that turned injection on (named in errors about the whole file).
    pub trigger: String,
    pub image: String,
    pub vault: BTreeMap<&'static str, serde_json::Value>,
    pub role: String,
    pub auth_path: String,
    pub auth: BTreeMap<&'static str, serde_json::Value>,
    pub templates: Vec<TemplateSpec>,
    pub template_config: BTreeMap<&'static str, serde_json::Value>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub pre_populate: bool,
    pub pre_populate_only: bool,
    pub init_first: bool,
    pub run_as_user: i64,
    pub run_as_group: i64,
    /// `agent-run-as-same-user`: `run_as_user` becomes the first app container's user when the
    /// Pod is injected ([`super::pod::resolve`]).
    pub run_as_same_user: bool,
    /// `agent-set-security-context: false`: the injected containers get no user and group
    /// (the platform assigns them, as OpenShift does); the rest of the hardening stays.
    pub set_ids: bool,
    /// `agent-share-process-namespace`: the Pod's `shareProcessNamespace`.
    pub share_process_namespace: Option<bool>,
    /// `agent-service-account-token-volume-name`: the Pod's volume holding the token the agent
    /// logs in with; its mount is found when the Pod is injected.
    pub token_volume: Option<TokenVolume>,
    /// The kubernetes login's `config` beyond the role (`auth-config-*`, the token path).
    pub auth_config: BTreeMap<String, String>,
    /// `agent-telemetry-*`: the agent file's `telemetry` keys (dashes made underscores), each
    /// value read as JSON when it is JSON, as vault-k8s reads it.
    pub telemetry: BTreeMap<String, serde_json::Value>,
    /// `agent-extra-secret`: a Secret mounted in the agent containers at `/vault/custom`.
    pub extra_secret: Option<String>,
    /// `agent-copy-volume-mounts`: the container whose mounts the agent containers get too;
    /// the mounts themselves are read when the Pod is injected.
    pub copy_volume_mounts: Option<String>,
    pub copied_mounts: Vec<serde_json::Value>,
    /// `agent-json-patch`, `agent-init-json-patch`: RFC 6902 patches of the sidecar and the
    /// init container, applied last.
    pub json_patches: (Option<String>, Option<String>),
    /// `proxy-address`: the agent containers' `HTTPS_PROXY`.
    pub proxy_address: Option<String>,
    /// `agent-disable-idle-connections` / `agent-disable-keep-alives`: the agent file's keys of
    /// those names, each a list of parts.
    pub connection_options: BTreeMap<&'static str, Vec<String>>,
    pub agent_resources: Resources,
    pub agent_metrics_port: u16,
    /// Whether an annotation chose `agent_metrics_port` (else a clash with a port the Pod
    /// declares moves it to a free one).
    pub agent_metrics_port_given: bool,
    /// `hostNetwork: true`: the agent's metrics listen on a loopback port the kernel picks,
    /// with no declared port (a host port each Pod on the node would claim) and no probes, as
    /// vault-k8s's agent, which listens on nothing.
    pub agent_metrics_local: bool,
    pub proxy: Option<ProxyPlan>,
    /// `agent-cache-enable`: the sidecar's local Vault API, its port on 127.0.0.1 and its
    /// `use_auto_auth_token` (`true` or `"force"`).
    pub api_proxy: Option<(u16, serde_json::Value)>,
    /// `agent-enable-quit`: the sidecar's listener (on this port) serves `/agent/v1/quit`.
    pub quit_port: Option<u16>,
    /// `agent-inject-token`: the token is also written to `token` in the shared volume.
    pub inject_token: bool,
    /// `agent-revoke-on-shutdown` with `agent-revoke-grace` (seconds): the sidecar revokes its
    /// token that long after its stop signal.
    pub revoke_grace: Option<u64>,
    /// The shared volume: name and where it is mounted.
    pub secrets_volume: String,
    pub secrets_path: String,
    /// `secret-volume-path-NAME`: one more in-memory volume per other directory (name, path),
    /// mounted where the shared one is.
    pub custom_volumes: Vec<(String, String)>,
    /// The app containers that get the shared volume (`None`: all).
    pub containers: Option<Vec<String>>,
    /// Whether the Pod's own init containers get the shared volume too (vault-k8s does).
    pub mount_in_init_containers: bool,
    /// A whole agent file from a ConfigMap: its name.
    pub config_map: Option<String>,
    /// A Secret with Vault's CA (and client certificate), mounted at `tls_secret_path`.
    pub tls_secret: Option<String>,
    pub tls_secret_path: String,
    pub names: Names,
}

/// `proxy-address`: an HTTP proxy's URL (or `HOST:PORT`), as `HTTPS_PROXY` takes it.
fn proxy_address(annotation: &str, value: &str) -> Result<String, InjectError> {
    let value = value.trim();
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(value);
    if rest.is_empty() || rest.contains("://") || rest.contains(char::is_whitespace) {
        return Err(error(
            annotation,
            format!("{value:?} is not an HTTP proxy address such as http://proxy.corp:3128"),
        ));
    }
    Ok(value.to_string())
}

/// A comma-separated list of the agent's parts, as vault-k8s splits it.
fn connection_parts(annotation: &str, value: &str) -> Result<Vec<String>, InjectError> {
    let mut parts = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !matches!(part, "auto-auth" | "templating" | "caching" | "proxying") {
            return Err(error(
                annotation,
                format!("{part:?} is not one of auto-auth, templating, caching, proxying"),
            ));
        }
        parts.push(part.to_string());
    }
    Ok(parts)
}

/// The ServiceAccount token volume the agent logs in with, and where its containers mount it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenVolume {
    pub name: String,
    /// Known once the Pod is read: an app container's mount of it, else vault-k8s's default.
    pub mount_path: String,
}

/// vault-k8s's volume name and path for `agent-extra-secret`.
pub(crate) const EXTRA_SECRET_VOLUME: &str = "extra-secrets";
pub(crate) const EXTRA_SECRET_PATH: &str = "/vault/custom";

/// Where vault-k8s mounts a named token volume no app container mounts.
pub(crate) const TOKEN_VOLUME_DEFAULT_MOUNT: &str =
    "/var/run/secrets/vault.hashicorp.com/serviceaccount";

/// Container, volume and path names of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    pub agent: &'static str,
    pub init: &'static str,
    pub proxy: &'static str,
    pub home_sidecar: &'static str,
    pub home_init: &'static str,
    pub home_path: &'static str,
    pub config_volume: &'static str,
    pub config_path: &'static str,
    pub tls_volume: &'static str,
    pub client_ca_volume: &'static str,
    pub client_ca_path: &'static str,
    pub status: &'static str,
}

pub(crate) const OWN_NAMES: Names = Names {
    agent: "pki-sidecar-agent",
    init: "pki-sidecar-init",
    proxy: "pki-sidecar-proxy",
    home_sidecar: "pki-sidecar-home",
    home_init: "pki-sidecar-home",
    home_path: "/home/pki-sidecar",
    config_volume: "pki-sidecar-config",
    config_path: "/etc/pki-sidecar/config",
    tls_volume: "pki-sidecar-vault-tls",
    client_ca_volume: "pki-sidecar-client-ca",
    client_ca_path: "/etc/pki-sidecar/client-ca",
    status: OWN_STATUS,
};

pub(crate) const VAULT_NAMES: Names = Names {
    agent: "vault-agent",
    init: "vault-agent-init",
    proxy: "pki-sidecar-proxy",
    home_sidecar: "home-sidecar",
    home_init: "home-init",
    home_path: "/home/vault",
    config_volume: "vault-config",
    config_path: "/vault/configs",
    tls_volume: "vault-tls-secrets",
    client_ca_volume: "pki-sidecar-client-ca",
    client_ca_path: "/etc/pki-sidecar/client-ca",
    status: VAULT_STATUS,
};

/// Defaults of this project's vocabulary.
pub(crate) const DEFAULT_CERT_DIR: &str = "/etc/pki-sidecar/tls";
pub(crate) const DEFAULT_AGENT_METRICS_PORT: u16 = 9101;
pub(crate) const DEFAULT_PROXY_PORT: u16 = 8443;
pub(crate) const DEFAULT_UPSTREAM_PORT: u16 = 8080;
pub(crate) const DEFAULT_PROXY_METRICS_PORT: u16 = 9102;
pub(crate) const DEFAULT_USER: i64 = 65532;
/// vault-k8s's defaults.
pub(crate) const VAULT_DEFAULT_USER: i64 = 100;
pub(crate) const VAULT_DEFAULT_GROUP: i64 = 1000;
pub(crate) const VAULT_SECRETS_VOLUME: &str = "vault-secrets";
pub(crate) const VAULT_SECRETS_PATH: &str = "/vault/secrets";
pub(crate) const VAULT_TLS_PATH: &str = "/vault/tls";

/// This project's annotations (after the prefix), each read by [`own_plan`].
pub(crate) const OWN_KEYS: &[&str] = &[
    "inject",
    "status",
    "proxy",
    "role",
    "auth-path",
    "vault-address",
    "vault-namespace",
    "vault-tls-secret",
    "vault-ca-cert",
    "pki-path",
    "common-name",
    "alt-names",
    "ip-sans",
    "uri-sans",
    "ttl",
    "cert-dir",
    "cert-file",
    "key-file",
    "ca-file",
    "cert-perms",
    "key-perms",
    "proxy-port",
    "proxy-upstream-port",
    "proxy-client-auth",
    "proxy-client-ca",
    "agent-metrics-port",
    "proxy-metrics-port",
    "agent-requests-cpu",
    "agent-requests-memory",
    "agent-limits-cpu",
    "agent-limits-memory",
    "proxy-requests-cpu",
    "proxy-requests-memory",
    "proxy-limits-cpu",
    "proxy-limits-memory",
    "run-as-user",
    "run-as-group",
    "containers",
    "agent-config",
];

/// vault-k8s annotations read here (after the prefix); a `-` at the end takes a secret name.
pub(crate) const VAULT_SUPPORTED: &[&str] = &[
    "agent-inject",
    "agent-inject-status",
    "role",
    "auth-path",
    "auth-type",
    "agent-inject-secret-",
    "agent-inject-template-",
    "agent-inject-file-",
    "agent-inject-perms-",
    "agent-inject-command-",
    "agent-template-left-delim-",
    "agent-template-right-delim-",
    "error-on-missing-key-",
    "preserve-secret-case",
    "preserve-secret-case-",
    "agent-inject-default-template",
    "agent-inject-containers",
    "agent-pre-populate",
    "agent-pre-populate-only",
    "agent-init-first",
    "agent-run-as-user",
    "agent-run-as-group",
    "agent-image",
    "agent-configmap",
    "agent-limits-cpu",
    "agent-limits-mem",
    "agent-limits-ephemeral",
    "agent-requests-cpu",
    "agent-requests-mem",
    "agent-requests-ephemeral",
    "service",
    "namespace",
    "tls-secret",
    "ca-cert",
    "ca-key",
    "client-cert",
    "client-key",
    "tls-server-name",
    "tls-skip-verify",
    "client-max-retries",
    "client-timeout",
    "log-level",
    "log-format",
    "auth-min-backoff",
    "auth-max-backoff",
    "agent-auto-auth-exit-on-err",
    "secret-volume-path",
    "template-config-exit-on-retry-failure",
    "template-static-secret-render-interval",
    "template-lease-renewal-threshold",
    "template-max-connections-per-host",
    "agent-cache-enable",
    "agent-cache-use-auto-auth-token",
    "agent-cache-listener-port",
    "agent-inject-token",
    "agent-revoke-on-shutdown",
    "agent-revoke-grace",
    "agent-run-as-same-user",
    "agent-set-security-context",
    "agent-share-process-namespace",
    "agent-service-account-token-volume-name",
    "auth-config-",
    "agent-enable-quit",
    "agent-inject-template-file-",
    "agent-extra-secret",
    "agent-copy-volume-mounts",
    "proxy-address",
    "agent-disable-idle-connections",
    "agent-disable-keep-alives",
    "secret-volume-path-",
    "agent-json-patch",
    "agent-init-json-patch",
    "agent-telemetry-",
    "go-max-procs",
    "agent-cache-exit-on-err",
    "agent-request-namespace",
];

/// The annotations of a Pod.
pub(crate) type Annotations = BTreeMap<String, String>;

/// Vault's address from `annotation`'s `value`, else the injector's default; `None` only when a
/// ConfigMap supplies the whole agent file (which then says where Vault is).
fn vault_address(
    annotation: &str,
    value: Option<&str>,
    settings: &super::Settings,
    from_config_map: bool,
) -> Result<Option<String>, InjectError> {
    match value
        .map(|v| v.trim().to_string())
        .or_else(|| settings.vault_address.clone())
    {
        Some(address) if address.starts_with("http://") || address.starts_with("https://") => {
            Ok(Some(address))
        }
        Some(address) => Err(error(
            annotation,
            format!("{address:?} is not an http(s) URL such as https://vault.vault:8200"),
        )),
        None if from_config_map => Ok(None),
        None => Err(error(
            annotation,
            "no Vault address: set this annotation, or start the injector with \
             --vault-address (PKI_SIDECAR_INJECT_VAULT_ADDR)",
        )),
    }
}

/// The injected containers' user and group: each (annotation, value, default); never root.
fn user_and_group(
    user: (&str, Option<&str>, i64),
    group: (&str, Option<&str>, i64),
) -> Result<(i64, i64), InjectError> {
    let read = |(annotation, value, default): (&str, Option<&str>, i64)| match value {
        Some(v) => id(annotation, v),
        None => Ok(default),
    };
    let run_as_user = read(user)?;
    let run_as_group = read(group)?;
    if run_as_user == 0 {
        return Err(error(user.0, "the injected containers never run as root"));
    }
    Ok((run_as_user, run_as_group))
}

fn error(annotation: &str, message: impl Into<String>) -> InjectError {
    InjectError {
        annotation: annotation.to_string(),
        message: message.into(),
    }
}

/// Go's `strconv.ParseBool`, as vault-k8s reads its booleans.
pub(crate) fn parse_bool(annotation: &str, value: &str) -> Result<bool, InjectError> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(error(
            annotation,
            format!("{other:?} is not a boolean (true or false)"),
        )),
    }
}

/// Refuses any unknown name under either prefix.
pub(crate) fn check_names(annotations: &Annotations) -> Result<(), InjectError> {
    for name in annotations.keys() {
        if let Some(key) = name.strip_prefix(OWN) {
            if !OWN_KEYS.contains(&key) {
                return Err(error(
                    name,
                    format!(
                        "unknown pki-sidecar.io annotation (a typo?); known: {}",
                        OWN_KEYS.join(", ")
                    ),
                ));
            }
        } else if let Some(key) = name.strip_prefix(VAULT)
            && vault_supported(key).is_none()
        {
            return Err(error(
                name,
                "not an annotation of the Vault Agent Injector (a typo?); see the README's \
                     table of the vault.hashicorp.com annotations",
            ));
        }
    }
    Ok(())
}

/// The supported entry `key` matches: exact, or a per-secret prefix with a non-empty name.
fn vault_supported(key: &str) -> Option<&'static str> {
    VAULT_SUPPORTED.iter().copied().find(|entry| {
        if entry.ends_with('-') {
            key.strip_prefix(entry).is_some_and(|name| !name.is_empty())
        } else {
            key == *entry
        }
    })
}

/// The `vault.hashicorp.com/PREFIXNAME` annotations with their parameter, `NAME` with dashes
/// made underscores (as vault-k8s reads `auth-config-*` and `agent-telemetry-*`), and value.
fn vault_parameters<'a>(
    annotations: &'a Annotations,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a str, String, &'a String)> {
    annotations.iter().filter_map(move |(annotation, value)| {
        let param = annotation.strip_prefix(VAULT)?.strip_prefix(prefix)?;
        Some((annotation.as_str(), param.replace('-', "_"), value))
    })
}

/// The refusal of an annotation that would change the agent file when `agent-configmap`
/// supplies that file; `instead` says what to put in it.
fn unchanged_by_config_map(annotation: &str, instead: &str) -> InjectError {
    error(
        annotation,
        format!(
            "the agent file comes from vault.hashicorp.com/agent-configmap, which this \
             annotation does not change: {instead}"
        ),
    )
}

/// A TCP port.
fn port(annotation: &str, value: &str) -> Result<u16, InjectError> {
    match value.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(error(
            annotation,
            format!("{value:?} is not a port (1 to 65535)"),
        )),
    }
}

/// A user or group id.
fn id(annotation: &str, value: &str) -> Result<i64, InjectError> {
    match value.trim().parse::<i64>() {
        Ok(id) if (0..=i64::from(u32::MAX)).contains(&id) => Ok(id),
        _ => Err(error(
            annotation,
            format!("{value:?} is not a numeric user or group id"),
        )),
    }
}

/// A file mode such as `0644`.
fn perms(annotation: &str, value: &str) -> Result<String, InjectError> {
    let text = value.trim();
    let digits = text.strip_prefix('0').unwrap_or(text);
    if (3..=4).contains(&text.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        Ok(if text.len() == 3 {
            format!("0{text}")
        } else {
            text.to_string()
        })
    } else {
        Err(error(
            annotation,
            format!("{value:?} is not an octal file mode such as 0644 or 0640"),
        ))
    }
}

/// A Kubernetes quantity such as `250m`, `64Mi`, `1`.
fn quantity(annotation: &str, value: &str) -> Result<String, InjectError> {
    let text = value.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let number_ok = !number.is_empty()
        && number != "."
        && number.matches('.').count() <= 1
        && number.bytes().any(|b| b.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    );
    if number_ok && suffix_ok {
        Ok(text.to_string())
    } else {
        Err(error(
            annotation,
            format!("{value:?} is not a Kubernetes quantity such as 250m, 64Mi or 1"),
        ))
    }
}

/// A duration as Vault Agent takes it (`30s`, `5m`, `1h`, or seconds).
fn duration(annotation: &str, value: &str) -> Result<String, InjectError> {
    let text = value.trim();
    if crate::units::duration(&crate::units::Scalar::Text(text.to_string())).is_ok() {
        Ok(text.to_string())
    } else {
        Err(error(
            annotation,
            format!("{value:?} is not a duration such as 30s, 5m or 1h"),
        ))
    }
}

/// A comma-separated list, trimmed, without empty items.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Go template string literal.
fn go_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A name usable as a Kubernetes object name (ConfigMap, Secret).
fn object_name(annotation: &str, value: &str) -> Result<String, InjectError> {
    let text = value.trim();
    let ok = !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(text.to_string())
    } else {
        Err(error(
            annotation,
            format!(
                "{value:?} is not a Kubernetes object name (lowercase letters, digits, `-`, `.`)"
            ),
        ))
    }
}

/// An absolute path without `..`.
fn abs_path(annotation: &str, value: &str) -> Result<String, InjectError> {
    let text = value.trim().trim_end_matches('/');
    if text.starts_with('/') && !text.split('/').any(|part| part == "..") && text.len() > 1 {
        Ok(text.to_string())
    } else {
        Err(error(
            annotation,
            format!("{value:?} is not an absolute path (without `..`)"),
        ))
    }
}

/// A file name relative to a directory: no `..`, not absolute.
fn relative_file(annotation: &str, value: &str) -> Result<String, InjectError> {
    let text = value.trim().trim_start_matches('/');
    if !text.is_empty()
        && !text.ends_with('/')
        && !text.split('/').any(|part| part == ".." || part.is_empty())
    {
        Ok(text.to_string())
    } else {
        Err(error(
            annotation,
            format!("{value:?} is not a file name inside the shared directory"),
        ))
    }
}

/// What this project's annotations ask for.
pub(crate) fn own_plan(
    settings: &super::Settings,
    annotations: &Annotations,
) -> Result<Plan, InjectError> {
    let get = |key: &str| annotations.get(&format!("{OWN}{key}")).map(String::as_str);
    let name = |key: &str| format!("{OWN}{key}");
    let required = |key: &str, what: &str| {
        get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                error(
                    &name(key),
                    format!("required with pki-sidecar.io/inject: {what}"),
                )
            })
    };
    let trigger = name("inject");
    let config_map = get("agent-config")
        .map(|v| object_name(&name("agent-config"), v))
        .transpose()?;
    let mut vault = BTreeMap::new();
    if let Some(address) = vault_address(
        &name("vault-address"),
        get("vault-address"),
        settings,
        config_map.is_some(),
    )? {
        vault.insert("address", serde_json::Value::String(address));
    }
    if let Some(namespace) = get("vault-namespace") {
        vault.insert("namespace", namespace.trim().into());
    }
    let tls_secret = get("vault-tls-secret")
        .map(|v| object_name(&name("vault-tls-secret"), v))
        .transpose()?;
    let tls_secret_path = "/etc/pki-sidecar/vault-tls".to_string();
    if let Some(ca) = get("vault-ca-cert") {
        let ca = ca.trim();
        if ca.starts_with('/') {
            vault.insert("ca_cert", ca.into());
        } else if tls_secret.is_some() {
            let file = relative_file(&name("vault-ca-cert"), ca)?;
            vault.insert("ca_cert", format!("{tls_secret_path}/{file}").into());
        } else {
            return Err(error(
                &name("vault-ca-cert"),
                "a relative file name needs pki-sidecar.io/vault-tls-secret (the Secret it is \
                 read from); or give an absolute path",
            ));
        }
    }
    let cert_dir = match get("cert-dir") {
        Some(dir) => abs_path(&name("cert-dir"), dir)?,
        None => DEFAULT_CERT_DIR.to_string(),
    };
    let file = |key: &str, default: &str| -> Result<String, InjectError> {
        let file = match get(key) {
            Some(value) => relative_file(&name(key), value)?,
            None => default.to_string(),
        };
        Ok(format!("{cert_dir}/{file}"))
    };
    let cert_file = file("cert-file", "tls.crt")?;
    let key_file = file("key-file", "tls.key")?;
    let ca_file = get("ca-file")
        .map(|v| relative_file(&name("ca-file"), v).map(|f| format!("{cert_dir}/{f}")))
        .transpose()?;
    let cert_perms = match get("cert-perms") {
        Some(v) => perms(&name("cert-perms"), v)?,
        None => "0644".to_string(),
    };
    let key_perms = match get("key-perms") {
        Some(v) => perms(&name("key-perms"), v)?,
        None => "0600".to_string(),
    };
    let mut templates = Vec::new();
    let mut role = String::new();
    if config_map.is_none() {
        role = required("role", "the Vault Kubernetes-auth role")?;
        let pki_path = required("pki-path", "the PKI issue path, such as pki/issue/web")?;
        if pki_path.contains(char::is_whitespace) || pki_path.starts_with('/') {
            return Err(error(
                &name("pki-path"),
                format!("{pki_path:?} is not a Vault path such as pki/issue/web"),
            ));
        }
        let common_name = required("common-name", "the certificate's common name")?;
        let mut args = vec![go_string(&format!("common_name={common_name}"))];
        for (key, field) in [
            ("alt-names", "alt_names"),
            ("ip-sans", "ip_sans"),
            ("uri-sans", "uri_sans"),
        ] {
            if let Some(value) = get(key) {
                let items = list(value);
                if items.is_empty() {
                    return Err(error(&name(key), "empty list"));
                }
                if items.iter().any(|i| i.contains(char::is_whitespace)) {
                    return Err(error(
                        &name(key),
                        "a comma-separated list without spaces inside names",
                    ));
                }
                if key == "ip-sans" {
                    for item in &items {
                        if item.parse::<std::net::IpAddr>().is_err() {
                            return Err(error(
                                &name(key),
                                format!("{item:?} is not an IP address"),
                            ));
                        }
                    }
                }
                args.push(go_string(&format!("{field}={}", items.join(","))));
            }
        }
        if let Some(ttl) = get("ttl") {
            args.push(go_string(&format!("ttl={}", duration(&name("ttl"), ttl)?)));
        }
        // The guarded writes render to nothing, so the certificate file reads the same
        // whether the certificate was just issued (a key) or reused from the file (none):
        // the sidecar takes over the init container's pair without rewriting anything.
        let mut contents = format!(
            "{{{{- with pkiCert {} {} -}}}}\n{{{{ .Data.Cert }}}}\n{{{{ .Data.CA }}}}\n\
             {{{{ if .Data.Key }}}}{{{{ .Data.Key | writeToFile {} \"\" \"\" {} }}}}{{{{ end }}}}",
            go_string(&pki_path),
            args.join(" "),
            go_string(&key_file),
            go_string(&key_perms),
        );
        if let Some(ca_file) = &ca_file {
            contents.push_str(&format!(
                "{{{{ if .Data.CA }}}}{{{{ .Data.CA | writeToFile {} \"\" \"\" {} }}}}{{{{ end }}}}",
                go_string(ca_file),
                go_string(&cert_perms),
            ));
        }
        contents.push_str("\n{{- end }}");
        templates.push(TemplateSpec {
            annotation: name("pki-path"),
            contents,
            source: None,
            destination: cert_file.clone(),
            perms: Some(cert_perms),
            command: None,
            left_delimiter: None,
            right_delimiter: None,
            error_on_missing_key: false,
        });
    } else {
        for key in [
            "role",
            "pki-path",
            "common-name",
            "alt-names",
            "ip-sans",
            "uri-sans",
            "ttl",
            "ca-file",
            "cert-perms",
            "key-perms",
        ] {
            if get(key).is_some() {
                return Err(error(
                    &name(key),
                    "pki-sidecar.io/agent-config supplies the whole agent file: set this in \
                     that file instead",
                ));
            }
        }
    }
    let auth_path = get("auth-path")
        .map(|p| p.trim().trim_matches('/').to_string())
        .unwrap_or_else(|| "auth/kubernetes".to_string());
    let resources = |prefix: &str| -> Result<Resources, InjectError> {
        let mut resources = Resources::default();
        for (kind, field, map) in [
            ("requests", "cpu", 0),
            ("requests", "memory", 0),
            ("limits", "cpu", 1),
            ("limits", "memory", 1),
        ] {
            let key = format!("{prefix}-{kind}-{field}");
            if let Some(value) = get(&key) {
                let value = quantity(&name(&key), value)?;
                let field: &'static str = if field == "cpu" { "cpu" } else { "memory" };
                if map == 0 {
                    resources.requests.insert(field, value);
                } else {
                    resources.limits.insert(field, value);
                }
            }
        }
        Ok(resources)
    };
    let mut agent_resources = default_resources("10m", "16Mi", None, "64Mi");
    agent_resources.merge(resources("agent")?);
    let agent_metrics_port = match get("agent-metrics-port") {
        Some(v) => port(&name("agent-metrics-port"), v)?,
        None => DEFAULT_AGENT_METRICS_PORT,
    };
    let proxy_on = match get("proxy") {
        Some(v) => parse_bool(&name("proxy"), v)?,
        None => false,
    };
    let proxy = if proxy_on {
        let mut proxy_resources = default_resources("50m", "16Mi", None, "128Mi");
        proxy_resources.merge(resources("proxy")?);
        let client_ca = get("proxy-client-ca")
            .map(|v| {
                let (map, key) = v.trim().split_once('/').unwrap_or((v.trim(), "ca.crt"));
                let map = object_name(&name("proxy-client-ca"), map)?;
                let key = relative_file(&name("proxy-client-ca"), key)?;
                Ok::<_, InjectError>((map, key))
            })
            .transpose()?;
        let client_auth = match get("proxy-client-auth").map(str::trim) {
            None => None,
            Some(mode @ ("require" | "optional")) if client_ca.is_some() => Some(mode.to_string()),
            Some("require" | "optional") => {
                return Err(error(
                    &name("proxy-client-auth"),
                    "needs pki-sidecar.io/proxy-client-ca (the ConfigMap with the client CA)",
                ));
            }
            Some(other) => {
                return Err(error(
                    &name("proxy-client-auth"),
                    format!("{other:?} is not one of require, optional"),
                ));
            }
        };
        let plan = ProxyPlan {
            port: match get("proxy-port") {
                Some(v) => port(&name("proxy-port"), v)?,
                None => DEFAULT_PROXY_PORT,
            },
            upstream_port: match get("proxy-upstream-port") {
                Some(v) => port(&name("proxy-upstream-port"), v)?,
                None => DEFAULT_UPSTREAM_PORT,
            },
            metrics_port: match get("proxy-metrics-port") {
                Some(v) => port(&name("proxy-metrics-port"), v)?,
                None => DEFAULT_PROXY_METRICS_PORT,
            },
            client_ca,
            client_auth,
            resources: proxy_resources,
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        };
        let ports = [
            ("proxy-port", plan.port),
            ("proxy-upstream-port", plan.upstream_port),
            ("proxy-metrics-port", plan.metrics_port),
            ("agent-metrics-port", agent_metrics_port),
        ];
        for (i, (key, p)) in ports.iter().enumerate() {
            if let Some((other, _)) = ports[..i].iter().find(|(_, q)| q == p) {
                // Blame the one written in the Pod (both may be defaults only if the
                // defaults clash, which they do not).
                let (blamed, partner) = if get(key).is_some() {
                    (*key, *other)
                } else {
                    (*other, *key)
                };
                return Err(error(
                    &name(blamed),
                    format!("port {p} is also pki-sidecar.io/{partner}'s: each needs its own port"),
                ));
            }
        }
        Some(plan)
    } else {
        for key in [
            "proxy-port",
            "proxy-upstream-port",
            "proxy-metrics-port",
            "proxy-client-ca",
            "proxy-client-auth",
            "proxy-requests-cpu",
            "proxy-requests-memory",
            "proxy-limits-cpu",
            "proxy-limits-memory",
        ] {
            if get(key).is_some() {
                return Err(error(
                    &name(key),
                    "the proxy is off: set pki-sidecar.io/proxy: \"true\" or remove this",
                ));
            }
        }
        None
    };
    let (run_as_user, run_as_group) = user_and_group(
        (&name("run-as-user"), get("run-as-user"), DEFAULT_USER),
        (&name("run-as-group"), get("run-as-group"), DEFAULT_USER),
    )?;
    Ok(Plan {
        vocabulary: Vocabulary::Own,
        trigger,
        image: settings.image.clone(),
        vault,
        role,
        auth_path,
        auth: BTreeMap::new(),
        templates,
        template_config: BTreeMap::new(),
        log_level: None,
        log_format: None,
        api_proxy: None,
        quit_port: None,
        inject_token: false,
        revoke_grace: None,
        pre_populate: true,
        pre_populate_only: false,
        init_first: true,
        run_as_user,
        run_as_group,
        run_as_same_user: false,
        set_ids: true,
        share_process_namespace: None,
        token_volume: None,
        auth_config: BTreeMap::new(),
        telemetry: BTreeMap::new(),
        extra_secret: None,
        copy_volume_mounts: None,
        copied_mounts: Vec::new(),
        json_patches: (None, None),
        proxy_address: None,
        connection_options: BTreeMap::new(),
        agent_resources,
        agent_metrics_port,
        agent_metrics_port_given: get("agent-metrics-port").is_some(),
        agent_metrics_local: false,
        proxy,
        secrets_volume: "pki-sidecar-tls".to_string(),
        secrets_path: cert_dir,
        custom_volumes: Vec::new(),
        containers: get("containers").map(list),
        mount_in_init_containers: false,
        config_map,
        tls_secret,
        tls_secret_path,
        names: OWN_NAMES,
    })
}

fn default_resources(
    requests_cpu: &str,
    requests_memory: &str,
    limits_cpu: Option<&str>,
    limits_memory: &str,
) -> Resources {
    let mut resources = Resources::default();
    resources.requests.insert("cpu", requests_cpu.to_string());
    resources
        .requests
        .insert("memory", requests_memory.to_string());
    if let Some(cpu) = limits_cpu {
        resources.limits.insert("cpu", cpu.to_string());
    }
    resources.limits.insert("memory", limits_memory.to_string());
    resources
}

impl Resources {
    fn merge(&mut self, other: Resources) {
        self.requests.extend(other.requests);
        self.limits.extend(other.limits);
    }
}

/// The NAMEs of a Pod's `agent-inject-secret-NAME` and `agent-inject-template-NAME`
/// annotations (the first prefix that matches names the secret: `agent-inject-template-file-x`
/// is secret `x`, not `file-x`, vault-k8s's order), sorted.
/// An annotation whose value is blank names no secret, as vault-k8s skips it (a Helm chart's
/// unset value renders as `""`).
fn vault_secret_names(annotations: &Annotations) -> Vec<String> {
    let mut raw_names: Vec<String> = Vec::new();
    for (annotation, value) in annotations {
        if value.trim().is_empty() {
            continue;
        }
        for prefix in [
            "agent-inject-secret-",
            "agent-inject-template-file-",
            "agent-inject-template-",
        ] {
            if let Some(raw) = annotation.strip_prefix(&format!("{VAULT}{prefix}")) {
                if !raw.is_empty() && !raw_names.iter().any(|r| r == raw) {
                    raw_names.push(raw.to_string());
                }
                break;
            }
        }
    }
    raw_names.sort();
    raw_names
}

/// The Vault Agent Injector's per-secret annotations that name no secret (a leftover
/// `agent-inject-command-NAME` after its secret was removed): vault-k8s reads them per secret,
/// so it never sees these, and neither does this injector. One message each, for a warning.
pub(crate) fn unused_per_secret(annotations: &Annotations) -> Vec<String> {
    let names = vault_secret_names(annotations);
    let mut unused = Vec::new();
    for (annotation, value) in annotations {
        for prefix in [
            "agent-inject-secret-",
            "agent-inject-template-file-",
            "agent-inject-template-",
        ] {
            if let Some(raw) = annotation.strip_prefix(&format!("{VAULT}{prefix}"))
                && value.trim().is_empty()
                && !names.iter().any(|r| r == raw)
            {
                unused.push(format!(
                    "annotation {annotation}: empty, so ignored, as the Vault Agent Injector \
                     ignores it: no file is written for {raw:?}"
                ));
            }
        }
    }
    for annotation in annotations.keys() {
        for prefix in [
            "agent-inject-file-",
            "agent-inject-perms-",
            "agent-inject-command-",
            "agent-template-left-delim-",
            "agent-template-right-delim-",
            "error-on-missing-key-",
            "preserve-secret-case-",
            "secret-volume-path-",
        ] {
            if let Some(raw) = annotation.strip_prefix(&format!("{VAULT}{prefix}"))
                && !names.iter().any(|r| r == raw)
            {
                unused.push(format!(
                    "annotation {annotation}: ignored, as the Vault Agent Injector ignores it: \
                     no {VAULT}agent-inject-secret-{raw} or agent-inject-template-{raw} for it \
                     to apply to"
                ));
            }
        }
    }
    unused
}

/// Programs that scripts written for the Vault Agent Injector run after a render (its image
/// has a shell and BusyBox) and that pki-sidecar's image, which holds one binary, lacks.
const PROGRAMS_NOT_IN_THE_IMAGE: &[&str] = &[
    "chmod", "chown", "chgrp", "touch", "cp", "mv", "rm", "mkdir", "ln", "cat", "echo", "sh",
    "bash", "ash", "sleep", "curl", "wget", "sed", "awk", "grep", "tee", "true", "false", "test",
];

/// The `agent-inject-command-NAME`s that run a program the image does not have: each fails
/// after every render. One message each, for a warning (`chmod` of the file: the mode is
/// `agent-inject-perms-NAME`'s job).
pub(crate) fn commands_the_image_lacks(annotations: &Annotations) -> Vec<String> {
    let names = vault_secret_names(annotations);
    let mut warnings = Vec::new();
    for raw in &names {
        let annotation = format!("{VAULT}agent-inject-command-{raw}");
        let Some(words) = annotations
            .get(&annotation)
            .and_then(|command| command::split(command).ok())
        else {
            continue;
        };
        // A signal command the agent runs itself is one word, the line as written.
        if words.len() == 1 && words[0].contains(' ') {
            continue;
        }
        let program = words[0].rsplit('/').next().unwrap_or_default();
        if PROGRAMS_NOT_IN_THE_IMAGE.contains(&program) {
            let advice = if program == "chmod" {
                format!(": give the file's mode with {VAULT}agent-inject-perms-{raw} instead")
            } else {
                String::new()
            };
            warnings.push(format!(
                "annotation {annotation}: runs `{program}` in the agent's container, whose image \
                 (pki-sidecar's, one binary) has no such program: it will fail after every \
                 render{advice}"
            ));
        }
    }
    warnings
}

/// What the Vault Agent Injector's annotations ask for, with its defaults.
pub(crate) fn vault_plan(
    settings: &super::Settings,
    annotations: &Annotations,
) -> Result<Plan, InjectError> {
    let name = |key: &str| format!("{VAULT}{key}");
    let get = |key: &str| annotations.get(&name(key)).map(String::as_str);
    let flag = |key: &str, default: bool| -> Result<bool, InjectError> {
        match get(key) {
            Some(v) => parse_bool(&name(key), v),
            None => Ok(default),
        }
    };
    // A pki-sidecar.io annotation beside vault-k8s's would be half-read: one vocabulary a Pod.
    for annotation in annotations.keys() {
        if annotation.starts_with(OWN) && annotation != OWN_STATUS {
            return Err(error(
                annotation,
                "this Pod uses the Vault Agent Injector's annotations \
                 (vault.hashicorp.com/agent-inject): use one vocabulary per Pod",
            ));
        }
    }
    if let Some(kind) = get("auth-type")
        && kind.trim() != "kubernetes"
    {
        return Err(error(
            &name("auth-type"),
            format!("{kind:?}: only the kubernetes login is injected"),
        ));
    }
    // vault-k8s's cache: the sidecar serves Vault's API on 127.0.0.1 (the agent's API proxy,
    // without the cache itself); the init container, which exits, serves none.
    let listener_port = match get("agent-cache-listener-port") {
        None => 8200,
        Some(v) => v
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                error(
                    &name("agent-cache-listener-port"),
                    format!("{v:?} is not a port"),
                )
            })?,
    };
    let api_proxy = if flag("agent-cache-enable", false)? {
        let use_auto_auth_token = match get("agent-cache-use-auto-auth-token").map(str::trim) {
            None => serde_json::Value::Bool(true),
            Some(v) if v.eq_ignore_ascii_case("force") => "force".into(),
            Some(v) => parse_bool(&name("agent-cache-use-auto-auth-token"), v)?.into(),
        };
        Some((listener_port, use_auto_auth_token))
    } else {
        None
    };
    let config_map = get("agent-configmap")
        .map(|v| object_name(&name("agent-configmap"), v))
        .transpose()?;
    // vault-k8s puts `agent_api { enable_quit = true }` on the cache listener, adding one when
    // the cache is off; a ConfigMap's file is not changed.
    let quit_port = if flag("agent-enable-quit", false)? {
        if config_map.is_some() {
            return Err(unchanged_by_config_map(
                &name("agent-enable-quit"),
                "add agent_api { enable_quit = true } to a listener \"tcp\" of that file",
            ));
        }
        Some(listener_port)
    } else {
        None
    };
    // vault-k8s adds a second sink, `token` in the shared volume, to the file it writes; with
    // a ConfigMap's file it writes none, and the annotation would do nothing.
    let inject_token = flag("agent-inject-token", false)?;
    // vault-k8s runs `vault token revoke -self` after `sleep GRACE` in a preStop hook; here the
    // sidecar agent does it itself after its stop signal.
    let revoke_grace = if flag("agent-revoke-on-shutdown", false)? {
        let grace = match get("agent-revoke-grace") {
            None => 5,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|g| *g <= 3600)
                .ok_or_else(|| {
                    error(
                        &name("agent-revoke-grace"),
                        format!("{v:?} is not a number of seconds (0 to 3600)"),
                    )
                })?,
        };
        if config_map.is_some() {
            return Err(error(
                &name("agent-revoke-on-shutdown"),
                "the agent file comes from vault.hashicorp.com/agent-configmap: set \
                 pki_sidecar { revoke_token_on_shutdown = true } in that file instead",
            ));
        }
        Some(grace)
    } else {
        if get("agent-revoke-grace").is_some() {
            return Err(error(
                &name("agent-revoke-grace"),
                "it does nothing without vault.hashicorp.com/agent-revoke-on-shutdown: \"true\" \
                 (the injector-wide -revoke-on-shutdown is not read here): add that annotation \
                 or remove this one",
            ));
        }
        None
    };
    if inject_token && config_map.is_some() {
        return Err(unchanged_by_config_map(
            &name("agent-inject-token"),
            "add a sink \"file\" writing the token to the shared volume to that file",
        ));
    }
    let mut vault = BTreeMap::new();
    if let Some(address) = vault_address(
        &name("service"),
        get("service"),
        settings,
        config_map.is_some(),
    )? {
        vault.insert("address", address.into());
    }
    if let Some(namespace) = get("namespace") {
        vault.insert("namespace", namespace.trim().into());
    }
    let tls_secret = get("tls-secret")
        .map(|v| object_name(&name("tls-secret"), v))
        .transpose()?;
    for (key, field) in [
        ("ca-cert", "ca_cert"),
        ("ca-key", "ca_path"),
        ("client-cert", "client_cert"),
        ("client-key", "client_key"),
    ] {
        if let Some(path) = get(key) {
            let path = path.trim();
            if !path.starts_with('/') {
                return Err(error(
                    &name(key),
                    format!(
                        "{path:?} is not an absolute path (the Secret of vault.hashicorp.com/tls-secret is mounted at /vault/tls)"
                    ),
                ));
            }
            vault.insert(field, path.into());
        }
    }
    if let Some(server) = get("tls-server-name") {
        vault.insert("tls_server_name", server.trim().into());
    }
    if flag("tls-skip-verify", false)? {
        vault.insert("tls_skip_verify", true.into());
    }
    if let Some(retries) = get("client-max-retries") {
        let n: i64 = retries.trim().parse().map_err(|_| {
            error(
                &name("client-max-retries"),
                format!("{retries:?} is not a number"),
            )
        })?;
        vault.insert("retry", serde_json::json!({ "num_retries": n }));
    }
    if let Some(timeout) = get("client-timeout") {
        vault.insert(
            "client_timeout",
            duration(&name("client-timeout"), timeout)?.into(),
        );
    }
    let mut auth = BTreeMap::new();
    for (key, field) in [
        ("auth-min-backoff", "min_backoff"),
        ("auth-max-backoff", "max_backoff"),
    ] {
        if let Some(value) = get(key) {
            auth.insert(field, duration(&name(key), value)?.into());
        }
    }
    if let Some(v) = get("agent-auto-auth-exit-on-err") {
        auth.insert(
            "exit_on_err",
            parse_bool(&name("agent-auto-auth-exit-on-err"), v)?.into(),
        );
    }
    let mut template_config = BTreeMap::new();
    template_config.insert(
        "exit_on_retry_failure",
        flag("template-config-exit-on-retry-failure", true)?.into(),
    );
    if let Some(v) = get("template-static-secret-render-interval") {
        template_config.insert(
            "static_secret_render_interval",
            duration(&name("template-static-secret-render-interval"), v)?.into(),
        );
    }
    if let Some(v) = get("template-lease-renewal-threshold") {
        let threshold: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|t| *t > 0.0 && *t < 1.0)
            .ok_or_else(|| {
                error(
                    &name("template-lease-renewal-threshold"),
                    format!("{v:?} is not a fraction between 0 and 1"),
                )
            })?;
        template_config.insert("lease_renewal_threshold", threshold.into());
    }
    if let Some(v) = get("template-max-connections-per-host") {
        let connections: u32 = v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| {
                error(
                    &name("template-max-connections-per-host"),
                    format!("{v:?} is not a number of connections (0 to 65535; 0: 10)"),
                )
            })?;
        template_config.insert("max_connections_per_host", connections.into());
    }
    let log_level = get("log-level").map(|v| v.trim().to_string());
    let log_format = match get("log-format").map(str::trim) {
        None => None,
        Some(f @ ("standard" | "json")) => Some(f.to_string()),
        Some(other) => {
            return Err(error(
                &name("log-format"),
                format!("{other:?} is not one of standard, json"),
            ));
        }
    };
    let secrets_path = match get("secret-volume-path") {
        Some(path) => abs_path(&name("secret-volume-path"), path)?,
        None => VAULT_SECRETS_PATH.to_string(),
    };
    let default_template =
        match get("agent-inject-default-template").map(|v| v.trim().to_ascii_lowercase()) {
            None => "map".to_string(),
            Some(t) if t == "map" || t == "json" => t,
            Some(other) => {
                return Err(error(
                    &name("agent-inject-default-template"),
                    format!("{other:?} is not one of map, json"),
                ));
            }
        };
    let preserve_all = flag("preserve-secret-case", false)?;
    // The secrets: every NAME of agent-inject-secret-NAME or agent-inject-template-NAME. A
    // per-secret annotation for no secret is left alone, as vault-k8s leaves it
    // ([`unused_per_secret`] says so).
    let raw_names = vault_secret_names(annotations);
    let mut templates = Vec::new();
    let mut destinations: BTreeMap<String, String> = BTreeMap::new();
    let mut custom_volumes: Vec<(String, String)> = Vec::new();
    for raw in &raw_names {
        let per = |prefix: &str| get(&format!("{prefix}{raw}"));
        let preserve = match per("preserve-secret-case-") {
            Some(v) => parse_bool(&name(&format!("preserve-secret-case-{raw}")), v)?,
            None => preserve_all,
        };
        let secret_name = if preserve {
            raw.clone()
        } else {
            raw.to_lowercase()
        };
        let secret_annotation = name(&format!("agent-inject-secret-{raw}"));
        let template_annotation = name(&format!("agent-inject-template-{raw}"));
        let path = per("agent-inject-secret-")
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let template_file = per("agent-inject-template-file-")
            .map(str::trim)
            .filter(|f| !f.is_empty());
        let mut source = None;
        let (contents, annotation) = match per("agent-inject-template-")
            .filter(|t| !t.trim().is_empty())
        {
            Some(template) => (template.to_string(), template_annotation),
            // A file in the agent container (mounted with agent-copy-volume-mounts,
            // agent-extra-secret or agent-configmap's volume), when no text is given.
            None if template_file.is_some() => {
                let annotation = name(&format!("agent-inject-template-file-{raw}"));
                source = Some(abs_path(&annotation, template_file.unwrap_or_default())?);
                (String::new(), annotation)
            }
            None => {
                let Some(path) = path else {
                    return Err(error(
                        &secret_annotation,
                        "empty: give the secret's path in Vault, such as secret/data/web",
                    ));
                };
                let contents = if default_template == "json" {
                    format!(
                        "{{{{ with secret {} }}}}{{{{ .Data | toJSON }}}}\n{{{{ end }}}}",
                        go_string(path)
                    )
                } else {
                    format!(
                        "{{{{ with secret {} }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}",
                        go_string(path)
                    )
                };
                (contents, secret_annotation)
            }
        };
        // A blank file name or mode is vault-k8s's default, as an unset Helm value renders.
        let file = match per("agent-inject-file-").filter(|f| !f.trim().is_empty()) {
            Some(f) => relative_file(&name(&format!("agent-inject-file-{raw}")), f)?,
            None => secret_name.clone(),
        };
        // `secret-volume-path-NAME`: this secret's directory, a volume of its own (vault-k8s's
        // `vault-secrets-custom-N`, one per directory).
        let directory = match per("secret-volume-path-") {
            Some(path) => {
                let path = abs_path(&name(&format!("secret-volume-path-{raw}")), path)?;
                if path != secrets_path && !custom_volumes.iter().any(|(_, p)| *p == path) {
                    let volume = format!("{VAULT_SECRETS_VOLUME}-custom-{}", custom_volumes.len());
                    custom_volumes.push((volume, path.clone()));
                }
                path
            }
            None => secrets_path.clone(),
        };
        let destination = format!("{directory}/{file}");
        if let Some(other) = destinations.insert(destination.clone(), raw.clone()) {
            return Err(error(
                &annotation,
                format!(
                    "writes {destination}, as the secret {other:?} does: give one of them vault.hashicorp.com/agent-inject-file-NAME"
                ),
            ));
        }
        let perms = per("agent-inject-perms-")
            .filter(|v| !v.trim().is_empty())
            .map(|v| perms(&name(&format!("agent-inject-perms-{raw}")), v))
            .transpose()?;
        let command = per("agent-inject-command-")
            .filter(|c| !c.trim().is_empty())
            .map(|c| {
                command::split(c)
                    .map_err(|m| error(&name(&format!("agent-inject-command-{raw}")), m))
            })
            .transpose()?;
        let error_on_missing_key = match per("error-on-missing-key-") {
            Some(v) => parse_bool(&name(&format!("error-on-missing-key-{raw}")), v)?,
            None => false,
        };
        templates.push(TemplateSpec {
            annotation,
            contents,
            source,
            destination,
            perms,
            command,
            left_delimiter: per("agent-template-left-delim-").map(str::to_string),
            right_delimiter: per("agent-template-right-delim-").map(str::to_string),
            error_on_missing_key,
        });
    }
    // `auth-config-NAME` (dashes for underscores) is the login's `config`, as vault-k8s
    // writes it; the kubernetes login reads `role` and `token_path`.
    let mut auth_config = BTreeMap::new();
    for (annotation, param, value) in vault_parameters(annotations, "auth-config-") {
        if !matches!(param.as_str(), "role" | "token_path") {
            return Err(error(
                annotation,
                format!(
                    "the kubernetes login has no {param:?} setting (it reads role and \
                     token_path: auth-config-role, auth-config-token-path)"
                ),
            ));
        }
        if config_map.is_some() {
            return Err(unchanged_by_config_map(
                annotation,
                "set it in that file's auto_auth method",
            ));
        }
        auth_config.insert(param, value.trim().to_string());
    }
    let role_from_config = auth_config.remove("role").filter(|r| !r.is_empty());
    // `agent-telemetry-NAME` is the agent file's `telemetry.NAME` (dashes for underscores):
    // the agent's loader meets Vault Agent's Prometheus settings and warns for the ones that
    // change nothing; a metrics sink is refused here, by its annotation.
    let mut telemetry = BTreeMap::new();
    for (annotation, param, value) in vault_parameters(annotations, "agent-telemetry-") {
        if crate::config::keys::is_telemetry_sink(&param) {
            return Err(error(
                annotation,
                format!(
                    "not supported by pki-sidecar: {param} is one of Vault Agent's metrics \
                     sinks, and the agent pushes no metrics; Prometheus scrapes them from the \
                     agent's metrics port (the Pod's prometheus.io annotations say which): \
                     remove it"
                ),
            ));
        }
        if config_map.is_some() {
            return Err(unchanged_by_config_map(
                annotation,
                "set it in that file's telemetry block",
            ));
        }
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
        telemetry.insert(param, value);
    }
    // `go-max-procs` caps the Go agent's threads; this agent runs its work on one thread
    // whatever it says, so any positive count is met. It is still checked.
    if let Some(procs) = get("go-max-procs")
        && !procs.trim().parse::<u32>().is_ok_and(|n| n > 0)
    {
        return Err(error(
            &name("go-max-procs"),
            format!("{procs:?} is not a positive number of threads"),
        ));
    }
    // `agent-cache-exit-on-err`: exit when the persistent cache cannot be restored. The agent
    // restores no cache (the sidecar logs in and renders anew), so there is nothing to fail;
    // the value is still checked.
    flag("agent-cache-exit-on-err", false)?;
    let role = match get("role")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or(role_from_config)
    {
        Some(role) => role,
        None if config_map.is_some() => String::new(),
        None => {
            return Err(error(
                &name("role"),
                "required: the Vault Kubernetes-auth role the agent logs in with",
            ));
        }
    };
    let auth_path = get("auth-path")
        .map(|p| p.trim().trim_matches('/').to_string())
        .unwrap_or_else(|| "auth/kubernetes".to_string());
    let mut agent_resources = default_resources("250m", "64Mi", Some("500m"), "128Mi");
    for (key, field, limit) in [
        ("agent-requests-cpu", "cpu", false),
        ("agent-requests-mem", "memory", false),
        ("agent-requests-ephemeral", "ephemeral-storage", false),
        ("agent-limits-cpu", "cpu", true),
        ("agent-limits-mem", "memory", true),
        ("agent-limits-ephemeral", "ephemeral-storage", true),
    ] {
        if let Some(value) = get(key) {
            let map = if limit {
                &mut agent_resources.limits
            } else {
                &mut agent_resources.requests
            };
            // vault-k8s leaves a resource out when its annotation is empty.
            if value.trim().is_empty() {
                map.remove(field);
            } else {
                map.insert(field, quantity(&name(key), value)?);
            }
        }
    }
    let (run_as_user, run_as_group) = user_and_group(
        (
            &name("agent-run-as-user"),
            get("agent-run-as-user"),
            VAULT_DEFAULT_USER,
        ),
        (
            &name("agent-run-as-group"),
            get("agent-run-as-group"),
            VAULT_DEFAULT_GROUP,
        ),
    )?;
    let run_as_same_user = flag("agent-run-as-same-user", false)?;
    let set_ids = flag("agent-set-security-context", true)?;
    if !set_ids {
        for key in [
            "agent-run-as-user",
            "agent-run-as-group",
            "agent-run-as-same-user",
        ] {
            if get(key).is_some() && (key != "agent-run-as-same-user" || run_as_same_user) {
                return Err(error(
                    &name(key),
                    "vault.hashicorp.com/agent-set-security-context is \"false\": the injected \
                     containers get no user or group, and this would be ignored; remove one of \
                     the two",
                ));
            }
        }
    }
    let share_process_namespace = get("agent-share-process-namespace")
        .map(|v| parse_bool(&name("agent-share-process-namespace"), v))
        .transpose()?;
    let token_volume = get("agent-service-account-token-volume-name")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| TokenVolume {
            name: v.to_string(),
            mount_path: String::new(),
        });
    let pre_populate_only = flag("agent-pre-populate-only", false)?;
    let pre_populate = flag("agent-pre-populate", true)?;
    if pre_populate_only && !pre_populate {
        return Err(error(
            &name("agent-pre-populate-only"),
            "conflicts with vault.hashicorp.com/agent-pre-populate: \"false\": nothing would be injected",
        ));
    }
    let image = get("agent-image").map_or_else(|| settings.image.clone(), |i| i.trim().to_string());
    if image.is_empty() {
        return Err(error(&name("agent-image"), "empty image"));
    }
    Ok(Plan {
        vocabulary: Vocabulary::Vault,
        trigger: name("agent-inject"),
        image,
        vault,
        role,
        auth_path,
        auth,
        templates,
        template_config,
        log_level,
        log_format,
        api_proxy,
        quit_port,
        inject_token,
        revoke_grace,
        pre_populate,
        pre_populate_only,
        init_first: flag("agent-init-first", false)?,
        run_as_user,
        run_as_group,
        run_as_same_user,
        set_ids,
        share_process_namespace,
        token_volume,
        auth_config,
        telemetry,
        extra_secret: get("agent-extra-secret")
            .map(|v| object_name(&name("agent-extra-secret"), v))
            .transpose()?,
        copy_volume_mounts: get("agent-copy-volume-mounts")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        copied_mounts: Vec::new(),
        json_patches: (
            get("agent-json-patch").map(str::to_string),
            get("agent-init-json-patch").map(str::to_string),
        ),
        proxy_address: get("proxy-address")
            .map(|v| proxy_address(&name("proxy-address"), v))
            .transpose()?,
        connection_options: {
            let mut options = BTreeMap::new();
            for (annotation, key) in [
                ("agent-disable-idle-connections", "disable_idle_connections"),
                ("agent-disable-keep-alives", "disable_keep_alives"),
            ] {
                if let Some(value) = get(annotation) {
                    let parts = connection_parts(&name(annotation), value)?;
                    if !parts.is_empty() {
                        options.insert(key, parts);
                    }
                }
            }
            options
        },
        agent_resources,
        agent_metrics_port: DEFAULT_AGENT_METRICS_PORT,
        agent_metrics_port_given: false,
        agent_metrics_local: false,
        proxy: None,
        secrets_volume: VAULT_SECRETS_VOLUME.to_string(),
        secrets_path,
        custom_volumes,
        containers: get("agent-inject-containers").map(list),
        mount_in_init_containers: true,
        config_map,
        tls_secret,
        tls_secret_path: VAULT_TLS_PATH.to_string(),
        names: VAULT_NAMES,
    })
}
