//! From raw values to [`Config`]: defaults, units, and the rules that span several keys.
//!
//! Every problem found is collected (not just the first) and named by the file or environment
//! variable that supplied the value, found through figment's per-value metadata.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::error::Kind;
use figment::value::Value;

use super::error::{ConfigError, ConfigErrors, ConfigWarning, render_path, unsupported};
use super::raw::{self, Scalar};
use super::{
    AccessRule, ApiListener, ApiProxy, App, AuthKind, AuthMethod, AutoAuth, AutoAuthToken,
    BasicAuth, Cidr, ClientAuth, ConcurrencyKey, ConcurrencyLimit, Condition, ConditionalAnswer,
    Config, CookieFlag, CookieRule, EnvTemplate, ErrorPage, ErrorPageStatus, ErrorPageTarget, Exec,
    Expires, FileSink, Files, FixedResponse, ForwardedHeaders, FreshConnections, Gzip, GzipProxied,
    LimitExcept, LogFormat, Logging, PathMatch, Proxy, RateLimit, RedirectRewrite,
    ReplacementPiece, RequestHeaderPart, RewriteFlag, RewriteRule, Route, ServerNames, Telemetry,
    Template, TemplateCommand, TemplateConfig, TemplateSource, TryFallback, UnknownHost,
    UpstreamTarget, UpstreamTls, VariableMap, Vault, Wait, default_cert_label,
};
use crate::template::Functions;
use crate::units;

/// The level names Vault Agent accepts for `log_level`, for suggestions.
const LOG_LEVELS: &[&str] = &[
    "trace", "debug", "notice", "info", "warn", "warning", "err", "error",
];

const DEFAULT_VAULT_ADDRESS: &str = "https://127.0.0.1:8200";
const DEFAULT_NUM_RETRIES: u32 = 12;
/// Vault's own client waits 60 s; a hung Vault is noticed sooner here, and the retries follow.
pub(crate) const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_SINK_MODE: u32 = 0o640;
const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// figment's errors, reworded: `FILE: path: message`.
pub(super) fn from_figment(error: figment::Error, fallback_origin: &str) -> Vec<ConfigError> {
    error
        .into_iter()
        .map(|error| {
            let origin = error
                .metadata
                .as_ref()
                .map_or_else(|| fallback_origin.to_string(), |m| m.name.to_string());
            let path = &error.path;
            let message = match &error.kind {
                // figment's path already ends with the offending key.
                Kind::UnknownField(key, expected) => {
                    format!(
                        "unknown key{} (expected one of: {})",
                        super::keys::did_you_mean(key, expected),
                        expected.join(", ")
                    )
                }
                Kind::InvalidType(actual, expected) => {
                    format!("expected {expected}, found {actual}")
                }
                Kind::MissingField(_) => "is required".to_string(),
                other => other.to_string(),
            };
            ConfigError::Invalid {
                origin,
                path: render_path(path),
                message,
            }
        })
        .collect()
}

/// Collects errors while resolving, each blamed on the origin of its value.
struct Resolver<'f> {
    figment: &'f Figment,
    /// The functions templates may call, for parsing them now.
    functions: &'f dyn Functions,
    merged: Option<Value>,
    fallback_origin: String,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl Resolver<'_> {
    /// The name of the file or variable that supplied the value at `path`, or of its nearest
    /// parent that exists (for a missing key, the block that lacks it).
    fn origin(&self, path: &[&str]) -> String {
        let Some(mut value) = self.merged.as_ref() else {
            return self.fallback_origin.clone();
        };
        let mut tag = value.tag();
        for part in path {
            let next = match (value, part.parse::<usize>()) {
                (Value::Array(_, items), Ok(index)) => items.get(index),
                (Value::Dict(_, dict), _) => dict.get(*part),
                _ => None,
            };
            match next {
                Some(next) => {
                    value = next;
                    tag = value.tag();
                }
                None => break,
            }
        }
        self.figment
            .get_metadata(tag)
            .map_or_else(|| self.fallback_origin.clone(), |m| m.name.to_string())
    }

    fn error(&mut self, path: &[&str], message: impl Into<String>) {
        let origin = self.origin(path);
        self.errors.push(ConfigError::Invalid {
            origin,
            path: render_path(path),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: &[&str], message: impl Into<String>) {
        let origin = self.origin(path);
        self.warnings.push(ConfigWarning {
            origin,
            path: render_path(path),
            message: message.into(),
        });
    }

    /// A Vault Agent key this program refuses on purpose, when it is set.
    fn refuse<T>(&mut self, path: &[&str], value: &Option<T>, why_and_instead: &str) {
        if value.is_some() {
            let key = path.last().copied().unwrap_or_default();
            self.error(path, unsupported(&format!("`{key}`"), why_and_instead));
        }
    }

    fn duration(&mut self, path: &[&str], value: Option<&Scalar>, default: Duration) -> Duration {
        match value.map(units::duration) {
            None => default,
            Some(Ok(duration)) => duration,
            Some(Err(message)) => {
                self.error(path, message);
                default
            }
        }
    }

    fn mode(&mut self, path: &[&str], value: Option<&Scalar>) -> Option<u32> {
        match value.map(units::mode) {
            None => None,
            Some(Ok(mode)) => Some(mode),
            Some(Err(message)) => {
                self.error(path, message);
                None
            }
        }
    }

    fn boolean(&mut self, path: &[&str], value: Option<&Scalar>, default: bool) -> bool {
        match value.map(units::scalar_boolean) {
            None => default,
            Some(Ok(b)) => b,
            Some(Err(message)) => {
                self.error(path, message);
                default
            }
        }
    }

    fn socket(&mut self, path: &[&str], value: Option<&str>, default: &str) -> SocketAddr {
        let text = value.unwrap_or(default);
        // Go's ":9101" means every interface.
        let expanded = if text.starts_with(':') {
            format!("0.0.0.0{text}")
        } else {
            text.into()
        };
        match expanded.parse() {
            Ok(address) => address,
            Err(_) => {
                self.error(
                    path,
                    format!(
                        "{text:?} is not an IP:port address (examples: 0.0.0.0:443, \
                         127.0.0.1:8080, [::]:443, :9101)"
                    ),
                );
                default
                    .parse()
                    .expect("defaults are valid socket addresses")
            }
        }
    }

    /// A whole number within `range` (`1024`, `"1024"`).
    fn count(
        &mut self,
        path: &[&str],
        value: Option<&Scalar>,
        default: usize,
        range: std::ops::RangeInclusive<usize>,
    ) -> usize {
        let Some(value) = value else {
            return default;
        };
        let parsed = match value {
            Scalar::Int(n) => usize::try_from(*n).ok(),
            Scalar::Text(t) => t.trim().parse::<usize>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if range.contains(&n) => n,
            _ => {
                self.error(
                    path,
                    format!(
                        "{value} is not a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    /// A user or group as a name or a numeric id, resolved now so a typo stops the load.
    fn owner(&mut self, path: &[&str], value: &Scalar, kind: Owner) -> Option<u32> {
        let text = match value {
            Scalar::Int(n) => n.to_string(),
            Scalar::Text(t) => t.trim().to_string(),
            other => {
                self.error(
                    path,
                    format!("expected a name or a numeric id, found {other}"),
                );
                return None;
            }
        };
        if let Ok(id) = text.parse::<u32>() {
            return Some(id);
        }
        let found = match kind {
            Owner::User => nix::unistd::User::from_name(&text).map(|u| u.map(|u| u.uid.as_raw())),
            Owner::Group => nix::unistd::Group::from_name(&text).map(|g| g.map(|g| g.gid.as_raw())),
        };
        let what = match kind {
            Owner::User => "user",
            Owner::Group => "group",
        };
        match found {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                self.error(
                    path,
                    format!("no {what} named {text:?} on this system; give a numeric id"),
                );
                None
            }
            Err(err) => {
                self.error(path, format!("cannot look up the {what} {text:?}: {err}"));
                None
            }
        }
    }

    fn non_empty_path(&mut self, path: &[&str], value: Option<&String>) -> Option<PathBuf> {
        match value {
            Some(text) if text.trim().is_empty() => {
                self.error(path, "must not be empty");
                None
            }
            Some(text) => Some(PathBuf::from(text)),
            None => None,
        }
    }
}

pub(super) fn resolve(
    raw: raw::RawConfig,
    figment: &Figment,
    functions: &dyn Functions,
    sources: Vec<PathBuf>,
    fallback_origin: &str,
) -> Result<Config, ConfigErrors> {
    let mut r = Resolver {
        figment,
        functions,
        merged: figment.find_value("").ok(),
        fallback_origin: fallback_origin.to_string(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };

    let own = raw.pki_sidecar.unwrap_or_default();
    let strict = own.strict.unwrap_or(false);
    let logging = resolve_logging(&mut r, raw.log_level, raw.log_format);
    let shutdown_grace = r.duration(
        &["shutdown_grace"],
        raw.shutdown_grace.as_ref(),
        DEFAULT_SHUTDOWN_GRACE,
    );
    let listen_backlog = backlog(
        &mut r,
        &["listen_backlog"],
        raw.listen_backlog.as_ref(),
        DEFAULT_LISTEN_BACKLOG,
    );
    let vault = resolve_vault(&mut r, raw.vault.unwrap_or_default());
    let auto_auth = raw.auto_auth.map(|a| resolve_auto_auth(&mut r, a));
    let template_config = resolve_template_config(&mut r, raw.template_config.unwrap_or_default());
    let templates: Vec<Template> = raw
        .template
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(index, t)| resolve_template(&mut r, index, t))
        .collect();

    let telemetry = raw.telemetry.unwrap_or_default();
    let cert_labels = resolve_cert_labels(&mut r, telemetry.cert_labels, &templates);
    // Vault Agent's two Prometheus settings ask for what the agent always does; their values
    // are still checked, as Vault Agent checks them.
    r.duration(
        &["telemetry", "prometheus_retention_time"],
        telemetry.prometheus_retention_time.as_ref(),
        Duration::ZERO,
    );
    r.boolean(
        &["telemetry", "disable_hostname"],
        telemetry.disable_hostname.as_ref(),
        false,
    );
    let vault_agent_prefixes = vault_agent_prefixes(telemetry.metrics_prefix.as_deref());
    let telemetry = Telemetry {
        metrics_listen_given: telemetry.metrics_listen.is_some(),
        metrics_listen: r.socket(
            &["telemetry", "metrics_listen"],
            telemetry.metrics_listen.as_deref(),
            "0.0.0.0:9101",
        ),
        cert_labels,
        listen_backlog,
        vault_agent_prefixes,
    };
    let proxy_configured = raw.proxy.is_some();
    let proxy = resolve_proxy(
        &mut r,
        raw.proxy.unwrap_or_default(),
        shutdown_grace,
        listen_backlog,
    );
    let app = raw.app.unwrap_or_default();
    let app = App {
        listen: r.socket(&["app", "listen"], app.listen.as_deref(), "127.0.0.1:80"),
        metrics_listen: r.socket(
            &["app", "metrics_listen"],
            app.metrics_listen.as_deref(),
            "0.0.0.0:9103",
        ),
        listen_backlog: backlog(
            &mut r,
            &["app", "listen_backlog"],
            app.listen_backlog.as_ref(),
            listen_backlog,
        ),
        shutdown_grace: r.duration(
            &["app", "shutdown_grace"],
            app.shutdown_grace.as_ref(),
            shutdown_grace,
        ),
    };
    let pid_file = r.non_empty_path(&["pid_file"], raw.pid_file.as_ref());
    // Vault Agent refuses a proxy told to use the auto-auth token when there is none.
    if auto_auth.is_none() {
        let asked = [
            (
                "api_proxy",
                raw.api_proxy
                    .as_ref()
                    .and_then(|a| a.use_auto_auth_token.as_ref()),
            ),
            (
                "cache",
                raw.cache
                    .as_ref()
                    .and_then(|c| c.use_auto_auth_token.as_ref()),
            ),
        ];
        for (block, value) in asked {
            let wants_token = value.is_some_and(|value| {
                matches!(value, Scalar::Text(t) if t.trim().eq_ignore_ascii_case("force"))
                    || units::scalar_boolean(value) == Ok(true)
            });
            if wants_token {
                r.error(
                    &[block, "use_auto_auth_token"],
                    "is set but there is no auto_auth block to get the token from (Vault Agent \
                     refuses this too): add auto_auth, or set use_auto_auth_token = false",
                );
            }
        }
    }
    // OpenBao refuses `env_template` beside an `api_proxy {}` block, not beside a listener.
    let api_proxy_block = raw.api_proxy.is_some();
    let api_proxy = resolve_api_proxy(
        &mut r,
        raw.listener.unwrap_or_default(),
        raw.cache,
        raw.api_proxy,
    );
    let env_given = raw.env_template.as_ref().is_some_and(|e| !e.is_empty());
    let env_templates: Vec<EnvTemplate> = raw
        .env_template
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, t)| resolve_env_template(&mut r, &name, t))
        .collect();
    let exec_given = raw.exec.is_some();
    let exec = raw.exec.and_then(|e| resolve_exec(&mut r, e));
    let mut fresh_connections = FreshConnections::default();
    for (key, value) in [
        ("disable_idle_connections", raw.disable_idle_connections),
        ("disable_keep_alives", raw.disable_keep_alives),
    ] {
        resolve_fresh_connections(&mut r, key, value, &mut fresh_connections);
    }
    let exit_after_auth = raw.exit_after_auth.unwrap_or(false);
    let revoke_on_shutdown = resolve_revoke(
        &mut r,
        own.revoke_token_on_shutdown,
        own.revoke_grace.as_ref(),
        shutdown_grace,
        auto_auth.as_ref(),
    );
    // Vault Agent's rules for its process supervisor mode, and this program's one more.
    if env_given && !exec_given {
        r.error(
            &["env_template"],
            "needs a top-level exec block, the program that gets these variables (Vault Agent \
             requires it too)",
        );
    }
    if exec_given && !env_given {
        r.error(
            &["exec"],
            "needs at least one env_template block: the variables it runs with (Vault Agent \
             requires one too)",
        );
    }
    if env_given && !templates.is_empty() {
        r.error(
            &["env_template"],
            "cannot be used with template blocks (Vault Agent refuses the mix too): run a \
             second agent for the files",
        );
    }
    if env_given && api_proxy_block {
        r.error(
            &["env_template"],
            "cannot be used with an api_proxy block (Vault Agent refuses the mix too)",
        );
    }
    if exec_given && exit_after_auth {
        r.error(
            &["exec"],
            unsupported(
                "`exec` with `exit_after_auth = true`",
                "an agent that exits after its first render cannot supervise a process; remove \
                 one of the two",
            ),
        );
    }

    if !r.errors.is_empty() {
        return Err(ConfigErrors(r.errors));
    }
    Ok(Config {
        sources,
        included: Vec::new(),
        warnings: std::mem::take(&mut r.warnings),
        strict,
        pid_file,
        exit_after_auth,
        logging,
        shutdown_grace,
        listen_backlog,
        vault,
        auto_auth,
        template_config,
        templates,
        telemetry,
        proxy,
        proxy_configured,
        app,
        api_proxy,
        env_templates,
        exec,
        revoke_on_shutdown,
        fresh_connections,
    })
}

/// `disable_idle_connections` / `disable_keep_alives`: a list of `auto-auth`, `templating`,
/// `proxy { gzip {} }`, with nginx's defaults.
fn resolve_gzip(r: &mut Resolver, raw: raw::RawGzip) -> Gzip {
    let at = |key: &'static str| -> [&'static str; 3] { ["proxy", "gzip", key] };
    let mut types = Vec::new();
    for media in raw.types.unwrap_or_default() {
        let media = media.trim().to_ascii_lowercase();
        let valid = media == "*"
            || media.split_once('/').is_some_and(|(kind, sub)| {
                !kind.is_empty()
                    && !sub.is_empty()
                    && media
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/!#$&-^_.+".contains(&b))
            });
        if valid {
            types.push(media);
        } else {
            r.error(
                &at("types"),
                format!("{media:?} is not a media type (text/css, *)"),
            );
        }
    }
    let mut proxied = Vec::new();
    for word in raw.proxied.unwrap_or_default() {
        proxied.push(match word.trim() {
            "off" => continue,
            "any" => GzipProxied::Any,
            "expired" => GzipProxied::Expired,
            "no-cache" => GzipProxied::NoCache,
            "no-store" => GzipProxied::NoStore,
            "private" => GzipProxied::Private,
            "no_last_modified" => GzipProxied::NoLastModified,
            "no_etag" => GzipProxied::NoEtag,
            "auth" => GzipProxied::Auth,
            other => {
                r.error(
                    &at("proxied"),
                    format!(
                        "{other:?} is not one of off, any, expired, no-cache, no-store, private, \
                         no_last_modified, no_etag, auth (nginx's gzip_proxied)"
                    ),
                );
                continue;
            }
        });
    }
    let http10 = match raw.http_version.as_deref().map(str::trim) {
        None | Some("1.1") => false,
        Some("1.0") => true,
        Some(other) => {
            r.error(
                &at("http_version"),
                format!("{other:?} is neither \"1.0\" nor \"1.1\""),
            );
            false
        }
    };
    Gzip {
        types,
        min_length: r.count(
            &at("min_length"),
            raw.min_length.as_ref(),
            20,
            0..=usize::MAX,
        ) as u64,
        level: r.count(&at("level"), raw.level.as_ref(), 1, 1..=9) as u32,
        vary: r.boolean(&at("vary"), raw.vary.as_ref(), false),
        proxied,
        http10,
    }
}

/// `proxy.server_names` and `proxy.unknown_host` (which needs the names).
fn resolve_server_names(
    r: &mut Resolver,
    names: Option<raw::StringOrList>,
    unknown: Option<&Scalar>,
    reject_unknown_sni: Option<&Scalar>,
) -> Option<ServerNames> {
    let reject_unknown_sni = r.boolean(&["proxy", "reject_unknown_sni"], reject_unknown_sni, false);
    const KEY: &[&str] = &["proxy", "server_names"];
    let code = |value: &Scalar| match value {
        Scalar::Int(code) => u16::try_from(*code).ok(),
        Scalar::Text(text) if text.trim().eq_ignore_ascii_case("close") => Some(444),
        Scalar::Text(text) => text.trim().parse::<u16>().ok(),
        _ => None,
    };
    let unknown = match unknown {
        None => UnknownHost::DEFAULT,
        Some(value) => match code(value) {
            Some(444) => UnknownHost::Close,
            Some(code @ 400..=599) => UnknownHost::Status(code),
            _ => {
                r.error(
                    &["proxy", "unknown_host"],
                    format!(
                        "{value} is neither \"close\" (or nginx's 444) nor a status from 400 to \
                         599"
                    ),
                );
                UnknownHost::DEFAULT
            }
        },
    };
    let names = match names {
        None => {
            if unknown != UnknownHost::DEFAULT {
                r.error(
                    &["proxy", "unknown_host"],
                    "needs server_names, the hosts served: without them every host is",
                );
            }
            if reject_unknown_sni {
                r.error(
                    &["proxy", "reject_unknown_sni"],
                    "needs server_names, the names a handshake may ask for",
                );
            }
            return None;
        }
        Some(raw::StringOrList::One(name)) => vec![name],
        Some(raw::StringOrList::Many(names)) => names,
    };
    if names.is_empty() {
        r.error(
            KEY,
            "an empty list: give the hosts served, or leave it out to serve every host",
        );
        return None;
    }
    let mut checked = Vec::with_capacity(names.len());
    for name in names {
        let name = if name.starts_with('~') {
            name
        } else {
            name.trim_end_matches('.').to_ascii_lowercase()
        };
        match super::check_server_name(&name) {
            Ok(()) => checked.push(name),
            Err(why) => r.error(KEY, why),
        }
    }
    Some(ServerNames {
        names: checked,
        unknown,
        reject_unknown_sni,
    })
}

/// `proxy.listen`: one address or a list of them (the same server on each); the first, and the
/// others.
fn resolve_proxy_listen(
    r: &mut Resolver,
    value: Option<raw::StringOrList>,
) -> (SocketAddr, Vec<SocketAddr>) {
    const KEY: &[&str] = &["proxy", "listen"];
    const DEFAULT: &str = "0.0.0.0:443";
    let written = match value {
        None => vec![DEFAULT.to_string()],
        Some(raw::StringOrList::One(text)) => vec![text],
        Some(raw::StringOrList::Many(items)) if items.is_empty() => {
            r.error(KEY, "an empty list: give at least one address");
            vec![DEFAULT.to_string()]
        }
        Some(raw::StringOrList::Many(items)) => items,
    };
    let mut addresses: Vec<SocketAddr> = Vec::with_capacity(written.len());
    for text in &written {
        let address = r.socket(KEY, Some(text), DEFAULT);
        if addresses.contains(&address) {
            r.error(KEY, format!("{address} is listed twice"));
            continue;
        }
        addresses.push(address);
    }
    let first = addresses.remove(0);
    (first, addresses)
}

/// `caching` and `proxying` (a string is split at commas, as Vault Agent splits its
/// environment variables); anything else is an error, as in Vault Agent.
fn resolve_fresh_connections(
    r: &mut Resolver,
    key: &'static str,
    value: Option<raw::StringOrList>,
    fresh: &mut FreshConnections,
) {
    let items = match value {
        None => return,
        Some(raw::StringOrList::One(text)) => text.split(',').map(str::to_string).collect(),
        Some(raw::StringOrList::Many(items)) => items,
    };
    for item in items {
        match item.trim().to_ascii_lowercase().as_str() {
            "auto-auth" => fresh.auto_auth = true,
            "templating" => fresh.templating = true,
            "caching" | "proxying" => fresh.api_proxy = true,
            "" => {}
            other => r.error(
                &[key],
                format!(
                    "unknown value {other:?}: auto-auth, templating, caching or proxying \
                     (Vault Agent refuses it too)"
                ),
            ),
        }
    }
}

/// `pki_sidecar { revoke_token_on_shutdown, revoke_grace }` (the Vault Agent Injector's
/// `agent-revoke-on-shutdown` and `agent-revoke-grace`): at a stop signal the agent waits the
/// grace (default 5 s, vault-k8s's), then revokes its token, and with it the leases it read.
fn resolve_revoke(
    r: &mut Resolver,
    enabled: Option<bool>,
    grace: Option<&Scalar>,
    shutdown_grace: Duration,
    auto_auth: Option<&AutoAuth>,
) -> Option<Duration> {
    let grace_value = r.duration(
        &["pki_sidecar", "revoke_grace"],
        grace,
        Duration::from_secs(5),
    );
    if enabled != Some(true) {
        if grace.is_some() {
            r.warn(
                &["pki_sidecar", "revoke_grace"],
                "ignored: revoke_token_on_shutdown is not true",
            );
        }
        return None;
    }
    if grace_value + Duration::from_secs(1) > shutdown_grace {
        r.error(
            &["pki_sidecar", "revoke_grace"],
            format!(
                "{} leaves less than 1s of shutdown_grace ({}) to revoke the token: make it \
                 shorter, or shutdown_grace longer",
                crate::timefmt::format_duration(grace_value),
                crate::timefmt::format_duration(shutdown_grace)
            ),
        );
    }
    if let Some(auto_auth) = auto_auth
        && matches!(auto_auth.method.kind, AuthKind::TokenFile { .. })
    {
        r.error(
            &["pki_sidecar", "revoke_token_on_shutdown"],
            "the token_file method's token is not the agent's to revoke: remove the key, or \
             log in with another method",
        );
    }
    Some(grace_value)
}

/// The first words of the Vault Agent counters (`PREFIX_agent_auth_success`...): `metrics_prefix`
/// as OpenBao Agent's Prometheus output writes it (checked with `bao agent`: `team.a-b` gives
/// `team_a_b_agent_auth_success`, `9x` gives `_x_agent_auth_success`: every character a metric
/// name cannot hold there becomes `_`), else, when it is absent or empty, both Vault Agent's
/// default (`vault`) and OpenBao Agent's (`bao`), so that alerts written for either keep working.
fn vault_agent_prefixes(metrics_prefix: Option<&str>) -> Vec<String> {
    match metrics_prefix {
        None | Some("") => vec!["vault".to_string(), "bao".to_string()],
        Some(given) => vec![
            given
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    let kept = c.is_ascii_alphabetic()
                        || c == '_'
                        || c == ':'
                        || (i > 0 && c.is_ascii_digit());
                    if kept { c } else { '_' }
                })
                .collect(),
        ],
    }
}

/// `listener "tcp" {}`, `api_proxy {}` and `cache {}`: Vault Agent's API proxy, without its
/// cache. What it does not implement is refused key by key.
fn resolve_api_proxy(
    r: &mut Resolver,
    listeners: Vec<raw::RawListener>,
    cache: Option<raw::RawCache>,
    api_proxy: Option<raw::RawApiProxy>,
) -> Option<ApiProxy> {
    let auto_auth = |r: &mut Resolver, block: &str, value: Option<&Scalar>| {
        let path = [block, "use_auto_auth_token"];
        match value {
            None => None,
            Some(Scalar::Text(text)) if text.trim().eq_ignore_ascii_case("force") => {
                Some(AutoAuthToken::Force)
            }
            Some(value) => match units::scalar_boolean(value) {
                Ok(true) => Some(AutoAuthToken::IfMissing),
                Ok(false) => Some(AutoAuthToken::Off),
                Err(_) => {
                    r.error(&path, format!("{value} is not true, false or \"force\""));
                    None
                }
            },
        }
    };
    let mut use_auto_auth_token = None;
    let cached = cache.is_some();
    if let Some(api_proxy) = api_proxy {
        use_auto_auth_token = auto_auth(r, "api_proxy", api_proxy.use_auto_auth_token.as_ref());
        for key in api_proxy.refused.keys() {
            if matches!(key.as_str(), "enforce_consistency" | "when_inconsistent") {
                // Read-after-write consistency across Vault Enterprise's performance standbys;
                // a single Vault, or OpenBao, has nothing to be inconsistent about.
                r.warn(
                    &["api_proxy", key],
                    "ignored: the agent tracks no Vault Enterprise consistency tokens; each \
                     request goes to the Vault at vault.address as it comes",
                );
                continue;
            }
            r.error(
                &["api_proxy", key],
                unsupported(
                    &format!("`{key}`"),
                    "the agent forwards each request to Vault as it comes (no namespace \
                     prefixing); remove the key",
                ),
            );
        }
    }
    if let Some(cache) = cache {
        let from_cache = auto_auth(r, "cache", cache.use_auto_auth_token.as_ref());
        if from_cache.is_some() && use_auto_auth_token.is_some() {
            r.error(
                &["cache", "use_auto_auth_token"],
                "is set in api_proxy {} too; keep the one in api_proxy {}",
            );
        }
        use_auto_auth_token = use_auto_auth_token.or(from_cache);
        if cache.persist.is_some() {
            r.warn(
                &["cache", "persist"],
                "ignored: no cache is persisted; each container of the Pod logs in itself",
            );
        }
        for key in cache.refused.keys() {
            r.error(
                &["cache", key],
                unsupported(
                    &format!("`{key}`"),
                    "the agent caches no Vault responses: requests through its listener are \
                     forwarded to Vault; remove the key",
                ),
            );
        }
        r.warn(
            &["cache"],
            if listeners.is_empty() {
                "ignored: no listener is configured, so nothing would use a cache (the agent's \
                 templates keep their secrets current without one)"
            } else {
                "Vault responses are not cached: each request to the listener reaches Vault \
                 (the agent's own templates keep their secrets current without it)"
            },
        );
    }
    let mut resolved = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| ["listener", index.as_str(), key];
        match listener.kind.as_deref() {
            Some("tcp") => {}
            Some(other) => {
                r.error(
                    &at("type"),
                    unsupported(
                        &format!("a {other:?} listener"),
                        "the agent listens on TCP only: use listener \"tcp\" on a loopback \
                         address",
                    ),
                );
                continue;
            }
            None => {
                r.error(&at("type"), "is required: write listener \"tcp\" { ... }");
                continue;
            }
        }
        let tls_disable = r.boolean(&at("tls_disable"), listener.tls_disable.as_ref(), false);
        if !tls_disable {
            r.error(
                &at("tls_disable"),
                unsupported(
                    "a TLS listener",
                    "the agent's listener speaks plain HTTP: set tls_disable = true and keep \
                     it on a loopback address",
                ),
            );
        }
        for key in listener.refused.keys() {
            r.error(
                &["listener", index.as_str(), key],
                unsupported(
                    &format!("the listener key `{key}`"),
                    "the agent's listener takes address, tls_disable, \
                     require_request_header and agent_api; remove the key",
                ),
            );
        }
        // Go's net.Listen takes a host name; `localhost` is what such files write.
        let address = listener.address.as_deref().map(|address| {
            address
                .strip_prefix("localhost:")
                .map_or_else(|| address.to_string(), |port| format!("127.0.0.1:{port}"))
        });
        resolved.push(ApiListener {
            address: r.socket(&at("address"), address.as_deref(), "127.0.0.1:8200"),
            require_request_header: r.boolean(
                &at("require_request_header"),
                listener.require_request_header.as_ref(),
                false,
            ),
            enable_quit: r.boolean(
                &["listener", index.as_str(), "agent_api", "enable_quit"],
                listener.agent_api.and_then(|a| a.enable_quit).as_ref(),
                false,
            ),
        });
    }
    if resolved.is_empty() {
        return None;
    }
    let use_auto_auth_token = use_auto_auth_token.unwrap_or(AutoAuthToken::Off);
    if use_auto_auth_token != AutoAuthToken::Off {
        for (index, listener) in resolved.iter().enumerate() {
            if !listener.address.ip().is_loopback() {
                let index = index.to_string();
                r.warn(
                    &["listener", index.as_str(), "address"],
                    format!(
                        "{} is reachable beyond this host, and requests to it act with the \
                         agent's token (use_auto_auth_token): listen on 127.0.0.1",
                        listener.address
                    ),
                );
            }
        }
    }
    Some(ApiProxy {
        listeners: resolved,
        use_auto_auth_token,
        cache: cached,
    })
}

fn resolve_logging(r: &mut Resolver, level: Option<String>, format: Option<String>) -> Logging {
    let level = level.and_then(|level| {
        // Vault's level names (its `ParseLogLevel`), mapped to tracing's.
        let name = level.trim().to_ascii_lowercase();
        match name.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" | "off" => Some(name),
            "" | "notice" => Some("info".to_string()),
            "err" => Some("error".to_string()),
            "warning" => Some("warn".to_string()),
            // A bare word is a level to Vault; to tracing it would be a target name, so a
            // misspelt level would silently log everything of a target that does not exist.
            word if word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                r.error(
                    &["log_level"],
                    format!(
                        "{level:?} is not a log level{} (trace, debug, info, warn, error; or a \
                         tracing filter such as pki_sidecar=debug)",
                        super::keys::did_you_mean(word, LOG_LEVELS)
                    ),
                );
                None
            }
            _ if tracing_subscriber::EnvFilter::try_new(level.trim()).is_ok() => {
                Some(level.trim().to_string())
            }
            _ => {
                r.error(
                    &["log_level"],
                    format!(
                        "{level:?} is neither a log level (trace, debug, info, warn, error) nor \
                         a tracing filter such as pki_sidecar=debug"
                    ),
                );
                None
            }
        }
    });
    let format = match format.as_deref().map(str::trim) {
        None => None,
        Some("standard" | "text") => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(other) => {
            r.error(
                &["log_format"],
                format!("{other:?} is not a log format (standard, json)"),
            );
            None
        }
    };
    Logging { level, format }
}

fn resolve_vault(r: &mut Resolver, raw: raw::RawVault) -> Vault {
    // An empty address is no address, as in Vault Agent: the default (or VAULT_ADDR).
    let address = raw
        .address
        .filter(|address| !address.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_VAULT_ADDRESS.to_string());
    let address = address.trim().trim_end_matches('/').to_string();
    match address.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some()
                && matches!(uri.path(), "" | "/") => {}
        _ => r.error(
            &["vault", "address"],
            format!(
                "{address:?} is not a Vault address such as https://vault.example:8200{}",
                if address.contains("${") {
                    " (Vault Agent expands no `${...}` either: set VAULT_ADDR in the environment, \
                     which overrides this key)"
                } else {
                    ""
                }
            ),
        ),
    }
    let num_retries = match raw.retry.and_then(|retry| retry.num_retries) {
        None => DEFAULT_NUM_RETRIES,
        Some(value) => {
            let parsed = match &value {
                Scalar::Int(n) => Some(*n),
                Scalar::Text(t) => t.trim().parse::<i64>().ok(),
                _ => None,
            };
            match parsed {
                Some(-1) => 0,
                Some(0) => DEFAULT_NUM_RETRIES,
                // Vault's own limit: any positive int (a huge count is "retry for ever").
                Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => n as u32,
                _ => {
                    r.error(
                        &["vault", "retry", "num_retries"],
                        format!(
                            "{value} is not a retry count (-1 disables, 0 means 12, up to 2147483647)"
                        ),
                    );
                    DEFAULT_NUM_RETRIES
                }
            }
        }
    };
    let vault = Vault {
        address,
        ca_cert: r.non_empty_path(&["vault", "ca_cert"], raw.ca_cert.as_ref()),
        ca_path: r.non_empty_path(&["vault", "ca_path"], raw.ca_path.as_ref()),
        client_cert: r.non_empty_path(&["vault", "client_cert"], raw.client_cert.as_ref()),
        client_key: r.non_empty_path(&["vault", "client_key"], raw.client_key.as_ref()),
        tls_skip_verify: r.boolean(
            &["vault", "tls_skip_verify"],
            raw.tls_skip_verify.as_ref(),
            false,
        ),
        tls_server_name: raw.tls_server_name.filter(|s| !s.is_empty()),
        namespace: raw.namespace.filter(|s| !s.is_empty()),
        num_retries,
        client_timeout: r.duration(
            &["vault", "client_timeout"],
            raw.client_timeout.as_ref(),
            DEFAULT_CLIENT_TIMEOUT,
        ),
    };
    if vault.client_timeout.is_zero() {
        r.error(
            &["vault", "client_timeout"],
            "0 would give every request to Vault no time at all; use a duration such as 30s"
                .to_string(),
        );
    }
    if vault.client_cert.is_some() != vault.client_key.is_some() {
        let missing = if vault.client_cert.is_some() {
            "client_key"
        } else {
            "client_cert"
        };
        r.error(
            &["vault", missing],
            "client_cert and client_key must be given together for mutual TLS",
        );
    }
    vault
}

fn resolve_auto_auth(r: &mut Resolver, raw: raw::RawAutoAuth) -> AutoAuth {
    let method = match raw.method {
        Some(method) => resolve_method(r, method),
        None => {
            r.error(
                &["auto_auth", "method"],
                "auto_auth needs a method block, e.g. method \"kubernetes\" { config = { role = \"...\" } }",
            );
            None
        }
    };
    let sinks = raw
        .sink
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(index, sink)| resolve_sink(r, index, sink))
        .collect();
    // A placeholder keeps the shape when the method was invalid; the errors fail the load.
    let method = method.unwrap_or(AuthMethod {
        kind: AuthKind::TokenFile {
            token_file_path: PathBuf::new(),
        },
        mount_path: String::new(),
        namespace: None,
        min_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        exit_on_err: false,
    });
    AutoAuth { method, sinks }
}

/// Reads a method's `config {}` keys, refusing any the method does not know.
struct MethodKeys<'a> {
    kind: &'a str,
    config: BTreeMap<String, Scalar>,
}

impl MethodKeys<'_> {
    fn text(&mut self, r: &mut Resolver, key: &str, required: bool) -> Option<String> {
        let path = ["auto_auth", "method", "config", key];
        match self.config.remove(key) {
            Some(Scalar::Text(text)) if !text.trim().is_empty() => Some(text),
            Some(Scalar::Text(_)) => {
                r.error(&path, "must not be empty");
                None
            }
            Some(other) => {
                r.error(&path, format!("expected a string, found {other}"));
                None
            }
            None if required => {
                r.error(&path, format!("is required by the {} method", self.kind));
                None
            }
            None => None,
        }
    }

    /// A boolean key, taken out; an error when it is not one.
    fn boolean(&mut self, r: &mut Resolver, key: &str) -> Option<bool> {
        let value = self.config.remove(key)?;
        units::scalar_boolean(&value)
            .map_err(|message| r.error(&["auto_auth", "method", "config", key], message))
            .ok()
    }

    /// A key Vault Agent's method reads and this program refuses on purpose, when it is set.
    fn refuse(&mut self, r: &mut Resolver, key: &str, why_and_instead: &str) {
        if self.config.remove(key).is_some() {
            r.error(
                &["auto_auth", "method", "config", key],
                unsupported(&format!("`{key}`"), why_and_instead),
            );
        }
    }

    /// Keys left over: the file's keys are pruned to those Vault Agent's method reads
    /// (`keys::prune_ignored`, warning for the others), so one left here is one this method
    /// has no use for.
    fn finish(self, r: &mut Resolver, known: &[&str]) {
        for key in self.config.keys() {
            r.error(
                &["auto_auth", "method", "config", key],
                format!(
                    "unknown key for the {} method (expected one of: {})",
                    self.kind,
                    known.join(", ")
                ),
            );
        }
    }
}

fn resolve_method(r: &mut Resolver, raw: raw::RawMethod) -> Option<AuthMethod> {
    r.refuse(
        &["auto_auth", "method", "wrap_ttl"],
        &raw.wrap_ttl,
        "the agent needs the token itself to renew certificates; remove wrap_ttl",
    );
    let Some(kind_name) = raw.kind else {
        r.error(
            &["auto_auth", "method", "type"],
            "is required: write method \"kubernetes\" { ... } or type = \"kubernetes\"",
        );
        return None;
    };
    let mut keys = MethodKeys {
        kind: &kind_name,
        config: raw.config.unwrap_or_default(),
    };
    let kind = match kind_name.as_str() {
        "kubernetes" => {
            let role = keys.text(r, "role", true);
            let token_path = keys
                .text(r, "token_path", false)
                .unwrap_or_else(|| DEFAULT_TOKEN_PATH.to_string());
            keys.finish(r, &["role", "token_path"]);
            role.map(|role| AuthKind::Kubernetes {
                role,
                token_path: token_path.into(),
            })
        }
        "approle" => {
            let role_id = keys.text(r, "role_id_file_path", true);
            let secret_id = keys.text(r, "secret_id_file_path", false);
            let wrapping_path = keys
                .text(r, "secret_id_response_wrapping_path", false)
                .map(|path| path.trim().trim_matches('/').to_string())
                .filter(|path| !path.is_empty());
            let remove = keys
                .boolean(r, "remove_secret_id_file_after_reading")
                .unwrap_or(true);
            keys.finish(
                r,
                &[
                    "role_id_file_path",
                    "secret_id_file_path",
                    "remove_secret_id_file_after_reading",
                    "secret_id_response_wrapping_path",
                ],
            );
            role_id.map(|role_id| AuthKind::AppRole {
                role_id_file_path: role_id.into(),
                secret_id_file_path: secret_id.map(Into::into),
                remove_secret_id_file_after_reading: remove,
                secret_id_response_wrapping_path: wrapping_path,
            })
        }
        "jwt" => {
            let path = keys.text(r, "path", true);
            let role = keys.text(r, "role", true);
            // Vault Agent removes the JWT file after reading it unless told not to; this
            // program never does, so `false` says what it does and `true` is refused.
            if keys.boolean(r, "remove_jwt_after_reading") == Some(true) {
                r.error(
                    &["auto_auth", "method", "config", "remove_jwt_after_reading"],
                    unsupported(
                        "`remove_jwt_after_reading = true`",
                        "pki-sidecar reads the JWT file at every login and never removes it; \
                         set it to false or remove the key",
                    ),
                );
            }
            // Only matters when the file is removed, which it never is here.
            keys.boolean(r, "remove_jwt_follows_symlinks");
            keys.refuse(
                r,
                "jwt_read_period",
                "pki-sidecar reads the JWT file at every login rather than watching it; remove \
                 the key",
            );
            keys.finish(r, &["path", "role"]);
            path.zip(role).map(|(path, role)| AuthKind::Jwt {
                path: path.into(),
                role,
            })
        }
        "cert" => {
            let name = keys.text(r, "name", false);
            let client_cert = keys.text(r, "client_cert", false);
            let client_key = keys.text(r, "client_key", false);
            let ca_cert = keys.text(r, "ca_cert", false);
            // Vault Agent reloads the files at each login when asked; they are read at every
            // login here, whatever it says.
            keys.boolean(r, "reload");
            // Vault Agent uses a client pair only whole and ignores half of one; so does this,
            // with a warning on the one given.
            let (client_cert, client_key) = match (client_cert, client_key) {
                (Some(cert), Some(key)) => (Some(cert), Some(key)),
                (Some(_), None) => {
                    r.warn(
                        &["auto_auth", "method", "config", "client_cert"],
                        "ignored without client_key (as Vault Agent ignores it): the login \
                         presents vault {}'s client certificate, if any; give both or neither",
                    );
                    (None, None)
                }
                (None, Some(_)) => {
                    r.warn(
                        &["auto_auth", "method", "config", "client_key"],
                        "ignored without client_cert (as Vault Agent ignores it): the login \
                         presents vault {}'s client certificate, if any; give both or neither",
                    );
                    (None, None)
                }
                (None, None) => (None, None),
            };
            keys.finish(
                r,
                &["name", "ca_cert", "client_cert", "client_key", "reload"],
            );
            Some(AuthKind::Cert {
                name,
                client_cert: client_cert.map(Into::into),
                client_key: client_key.map(Into::into),
                ca_cert: ca_cert.map(Into::into),
            })
        }
        "token_file" => {
            let token = keys.text(r, "token_file_path", true);
            keys.finish(r, &["token_file_path"]);
            token.map(|token| AuthKind::TokenFile {
                token_file_path: token.into(),
            })
        }
        other => {
            r.error(
                &["auto_auth", "method", "type"],
                unsupported(
                    &format!("the auth method {other:?}"),
                    "pki-sidecar logs in with kubernetes, approle, jwt, cert or token_file; use \
                     one of those",
                ),
            );
            None
        }
    };
    let default_mount = format!("auth/{kind_name}");
    let mount_path = match raw.mount_path {
        None => default_mount,
        Some(path) => {
            let trimmed = path.trim().trim_matches('/');
            if trimmed.is_empty() || trimmed == "auth" {
                r.error(
                    &["auto_auth", "method", "mount_path"],
                    format!("{path:?} is not a mount path such as \"{default_mount}\""),
                );
            }
            // Vault's form is `auth/NAME`; a bare `NAME` is accepted and normalised.
            if trimmed.starts_with("auth/") {
                trimmed.to_string()
            } else {
                format!("auth/{trimmed}")
            }
        }
    };
    let min_backoff = r.duration(
        &["auto_auth", "method", "min_backoff"],
        raw.min_backoff.as_ref(),
        Duration::from_secs(1),
    );
    let max_backoff = r.duration(
        &["auto_auth", "method", "max_backoff"],
        raw.max_backoff.as_ref(),
        Duration::from_secs(300),
    );
    if min_backoff.is_zero() {
        r.error(
            &["auto_auth", "method", "min_backoff"],
            "must be greater than 0s",
        );
    }
    if max_backoff < min_backoff {
        r.error(
            &["auto_auth", "method", "max_backoff"],
            format!(
                "{} is less than min_backoff ({})",
                crate::timefmt::format_duration(max_backoff),
                crate::timefmt::format_duration(min_backoff)
            ),
        );
    }
    kind.map(|kind| AuthMethod {
        kind,
        mount_path,
        namespace: raw.namespace.filter(|s| !s.is_empty()),
        min_backoff,
        max_backoff,
        exit_on_err: raw.exit_on_err.unwrap_or(false),
    })
}

fn resolve_sink(r: &mut Resolver, index: usize, raw: raw::RawSink) -> Option<FileSink> {
    let index_text = index.to_string();
    let at = |key: &'static str| -> Vec<String> {
        let mut path = vec![
            "auto_auth".to_string(),
            "sink".to_string(),
            index_text.clone(),
        ];
        if !key.is_empty() {
            path.extend(key.split('.').map(str::to_string));
        }
        path
    };
    match raw.kind.as_deref() {
        Some("file") => {}
        Some(other) => {
            r.error(
                &strs(&at("type")),
                unsupported(
                    &format!("the sink type {other:?}"),
                    "pki-sidecar writes the token to sink \"file\" only",
                ),
            );
            return None;
        }
        None => {
            r.error(
                &strs(&at("type")),
                "is required: write sink \"file\" { ... }",
            );
            return None;
        }
    }
    let wrap_ttl = match raw.wrap_ttl.as_ref().map(units::duration) {
        None => None,
        Some(Ok(ttl)) if ttl >= Duration::from_secs(1) => Some(ttl),
        Some(Ok(_)) => {
            r.error(&strs(&at("wrap_ttl")), "must be at least 1s");
            None
        }
        Some(Err(message)) => {
            r.error(&strs(&at("wrap_ttl")), message);
            None
        }
    };
    let encryption = "pki-sidecar does not encrypt the sink (no Diffie-Hellman response \
                      encryption); remove the key and protect the file with its mode, or run \
                      Vault Agent for an encrypted sink";
    r.refuse(&strs(&at("dh_type")), &raw.dh_type, encryption);
    r.refuse(&strs(&at("dh_path")), &raw.dh_path, encryption);
    let derive_key_path = at("derive_key");
    let derive_key = strs(&derive_key_path);
    if r.boolean(&derive_key, raw.derive_key.as_ref(), false) {
        r.refuse(&derive_key, &raw.derive_key, encryption);
    }
    r.refuse(&strs(&at("aad")), &raw.aad, encryption);
    r.refuse(&strs(&at("aad_env_var")), &raw.aad_env_var, encryption);
    let config = raw.config.unwrap_or_default();
    let Some(path) = r.non_empty_path(&strs(&at("config.path")), config.path.as_ref()) else {
        if config.path.is_none() {
            r.error(&strs(&at("config.path")), "is required");
        }
        return None;
    };
    let mode = r
        .mode(&strs(&at("config.mode")), config.mode.as_ref())
        .unwrap_or(DEFAULT_SINK_MODE);
    Some(FileSink {
        path,
        mode,
        wrap_ttl,
    })
}

fn resolve_template_config(r: &mut Resolver, raw: raw::RawTemplateConfig) -> TemplateConfig {
    // Vault Agent: 0 (or no key) is its default of 10; up to 65535 here, which no agent
    // needs and which keeps one agent from holding more sockets than a Vault can accept.
    let max_connections_per_host = match raw.max_connections_per_host {
        None => super::DEFAULT_MAX_CONNECTIONS_PER_HOST,
        Some(value) => {
            let parsed = match &value {
                Scalar::Int(n) => Some(*n),
                Scalar::Text(t) => t.trim().parse::<i64>().ok(),
                _ => None,
            };
            match parsed {
                Some(0) => super::DEFAULT_MAX_CONNECTIONS_PER_HOST,
                Some(n @ 1..=65535) => n as usize,
                _ => {
                    r.error(
                        &["template_config", "max_connections_per_host"],
                        format!(
                            "{value} is not a number of connections (1 to 65535; 0 means \
                             Vault Agent's default, 10)"
                        ),
                    );
                    super::DEFAULT_MAX_CONNECTIONS_PER_HOST
                }
            }
        }
    };
    let threshold = match raw.lease_renewal_threshold {
        None => 2.0 / 3.0,
        Some(value) => {
            let parsed = match &value {
                Scalar::Float(x) => Some(*x),
                Scalar::Int(n) => Some(*n as f64),
                Scalar::Text(t) => t.trim().parse::<f64>().ok(),
                Scalar::Bool(_) => None,
            };
            match parsed {
                Some(x) if x > 0.0 && x < 1.0 => x,
                _ => {
                    r.error(
                        &["template_config", "lease_renewal_threshold"],
                        format!(
                            "{value} is not a fraction of the lifetime between 0 and 1 \
                             (exclusive), e.g. 0.67"
                        ),
                    );
                    2.0 / 3.0
                }
            }
        }
    };
    TemplateConfig {
        exit_on_retry_failure: raw.exit_on_retry_failure.unwrap_or(false),
        static_secret_render_interval: r.duration(
            &["template_config", "static_secret_render_interval"],
            raw.static_secret_render_interval.as_ref(),
            Duration::from_secs(300),
        ),
        lease_renewal_threshold: threshold,
        max_connections_per_host,
    }
}

fn resolve_template(r: &mut Resolver, index: usize, raw: raw::RawTemplate) -> Option<Template> {
    let index_text = index.to_string();
    let path = |key: &'static str| -> [String; 3] {
        ["template".to_string(), index_text.clone(), key.to_string()]
    };
    let block = ["template", index_text.as_str()];

    let source = match (raw.source, raw.contents) {
        (Some(_), Some(_)) => {
            r.error(&block, "set either source or contents, not both");
            None
        }
        (Some(file), None) => r
            .non_empty_path(&strs(&path("source")), Some(&file))
            .map(TemplateSource::File),
        (None, Some(text)) => Some(TemplateSource::Contents(text)),
        (None, None) => {
            r.error(
                &block,
                "needs source (a template file) or contents (inline text)",
            );
            None
        }
    };
    let destination = match raw.destination {
        None => {
            r.error(
                &strs(&path("destination")),
                "is required: the file to render into",
            );
            None
        }
        Some(d) => r.non_empty_path(&strs(&path("destination")), Some(&d)),
    };
    let perms = r.mode(&strs(&path("perms")), raw.perms.as_ref());
    let left = raw.left_delimiter.unwrap_or_else(|| "{{".to_string());
    let right = raw.right_delimiter.unwrap_or_else(|| "}}".to_string());
    if left.is_empty() {
        r.error(&strs(&path("left_delimiter")), "must not be empty");
    }
    if right.is_empty() {
        r.error(&strs(&path("right_delimiter")), "must not be empty");
    }
    let refused_template_key = "pki-sidecar does not implement this consul-template option; \
                                remove it";
    r.refuse(
        &strs(&path("uid")),
        &raw.uid,
        "use `user` (a name or a numeric id)",
    );
    r.refuse(
        &strs(&path("gid")),
        &raw.gid,
        "use `group` (a name or a numeric id)",
    );
    r.refuse(
        &strs(&path("error_fatal")),
        &raw.error_fatal,
        refused_template_key,
    );
    r.refuse(
        &strs(&path("sandbox_path")),
        &raw.sandbox_path,
        refused_template_key,
    );
    r.refuse(
        &strs(&path("function_denylist")),
        &raw.function_denylist,
        "templates here can call only the functions listed in the README; remove it",
    );
    r.refuse(
        &strs(&path("function_blacklist")),
        &raw.function_blacklist,
        "templates here can call only the functions listed in the README; remove it",
    );
    let command = raw.command.map(split_at_commas).and_then(command_from);
    let command_timeout = r.duration(
        &strs(&path("command_timeout")),
        raw.command_timeout.as_ref(),
        Duration::from_secs(30),
    );
    // consul-template (Vault Agent 1.13+): `exec` wins over the older `command`, whose
    // `command_timeout` stands in for an `exec` without `timeout`.
    let (command, command_timeout) = match raw.exec {
        None => (command, command_timeout),
        Some(exec) => {
            let exec_command = exec.command.map(split_at_commas).and_then(command_from);
            if exec_command.is_none() {
                r.error(
                    &["template", &index_text, "exec", "command"],
                    "is required: the program and its arguments, e.g. [\"/bin/kill\", \"-HUP\", \"1\"]",
                );
            }
            if command.is_some() {
                r.warn(
                    &strs(&path("command")),
                    "ignored: exec is set too, and exec wins (as in Vault Agent)",
                );
            }
            let timeout = r.duration(
                &["template", &index_text, "exec", "timeout"],
                exec.timeout.as_ref(),
                command_timeout,
            );
            (exec_command, timeout)
        }
    };
    if command.is_some() && command_timeout.is_zero() {
        r.error(&strs(&path("command_timeout")), "must be greater than 0s");
    }
    let user = raw
        .user
        .as_ref()
        .and_then(|value| r.owner(&strs(&path("user")), value, Owner::User));
    let group = raw
        .group
        .as_ref()
        .and_then(|value| r.owner(&strs(&path("group")), value, Owner::Group));
    let wait = raw.wait.map(|wait| {
        let min = r.duration(
            &["template", &index_text, "wait", "min"],
            wait.min.as_ref(),
            Duration::ZERO,
        );
        // consul-template: max defaults to 4 × min.
        let max = r.duration(
            &["template", &index_text, "wait", "max"],
            wait.max.as_ref(),
            min * 4,
        );
        if max < min {
            r.error(
                &["template", &index_text, "wait", "max"],
                "is less than wait.min",
            );
        }
        Wait { min, max }
    });
    let template = Template {
        source: source?,
        destination: destination?,
        perms,
        create_dest_dirs: raw.create_dest_dirs.unwrap_or(true),
        error_on_missing_key: raw.error_on_missing_key.unwrap_or(false),
        left_delimiter: left,
        right_delimiter: right,
        command,
        command_timeout,
        user,
        group,
        wait,
        backup: r.boolean(&strs(&path("backup")), raw.backup.as_ref(), false),
    };
    check_template_text(
        r,
        &block,
        &template.source,
        (&template.left_delimiter, &template.right_delimiter),
    );
    Some(template)
}

/// Parses the template of `block` now, so a syntax error or an unknown function stops the
/// load, as Vault Agent refuses to start on one.
fn check_template_text(
    r: &mut Resolver,
    block: &[&str],
    source: &TemplateSource,
    (left, right): (&str, &str),
) {
    if left.is_empty() || right.is_empty() {
        return;
    }
    let at = |key: &'static str| -> Vec<&str> {
        let mut path = block.to_vec();
        path.push(key);
        path
    };
    let (key, text, place) = match source {
        TemplateSource::Contents(text) => ("contents", text.clone(), String::new()),
        TemplateSource::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => ("source", text, format!("{}:", path.display())),
            Err(err) => {
                r.error(
                    &at("source"),
                    format!("cannot read the template file {}: {err}", path.display()),
                );
                return;
            }
        },
    };
    if let Err(err) = crate::template::Template::parse(&text, left, right, r.functions) {
        r.error(&at(key), format!("{place}{err}"));
    }
}

/// One `env_template "NAME" { }`: a template like `template {}` whose output is an environment
/// variable of the `exec` child. The keys about a file are refused, as Vault Agent refuses them.
fn resolve_env_template(
    r: &mut Resolver,
    name: &str,
    raw: raw::RawTemplate,
) -> Option<EnvTemplate> {
    let block = ["env_template", name];
    let at = |key: &'static str| -> [&str; 3] { ["env_template", name, key] };
    if name.is_empty() || name.contains(['=', '\0']) {
        r.error(
            &block,
            "is not an environment variable name: it must be non-empty, without `=`",
        );
    }
    let not_allowed = "is not allowed in an env_template (Vault Agent refuses it too): its \
                       value goes to an environment variable of the exec command, not to a file";
    let file_keys = [
        ("destination", raw.destination.is_some()),
        ("perms", raw.perms.is_some()),
        ("create_dest_dirs", raw.create_dest_dirs.is_some()),
        ("command", raw.command.is_some()),
        ("command_timeout", raw.command_timeout.is_some()),
        ("exec", raw.exec.is_some()),
        ("user", raw.user.is_some()),
        ("group", raw.group.is_some()),
        ("uid", raw.uid.is_some()),
        ("gid", raw.gid.is_some()),
        ("wait", raw.wait.is_some()),
        ("backup", raw.backup.is_some()),
        ("sandbox_path", raw.sandbox_path.is_some()),
    ];
    for (key, given) in file_keys {
        if given {
            r.error(&at(key), not_allowed);
        }
    }
    r.refuse(
        &at("error_fatal"),
        &raw.error_fatal,
        "pki-sidecar does not implement this consul-template option; remove it",
    );
    let only_known = "templates here can call only the functions listed in the README; remove it";
    r.refuse(&at("function_denylist"), &raw.function_denylist, only_known);
    r.refuse(
        &at("function_blacklist"),
        &raw.function_blacklist,
        only_known,
    );
    let source = match (raw.source, raw.contents) {
        (Some(_), Some(_)) => {
            r.error(&block, "set either source or contents, not both");
            None
        }
        (Some(file), None) => r
            .non_empty_path(&at("source"), Some(&file))
            .map(TemplateSource::File),
        (None, Some(text)) => Some(TemplateSource::Contents(text)),
        (None, None) => {
            r.error(
                &block,
                "needs source (a template file) or contents (inline text)",
            );
            None
        }
    };
    let left = raw.left_delimiter.unwrap_or_else(|| "{{".to_string());
    let right = raw.right_delimiter.unwrap_or_else(|| "}}".to_string());
    if left.is_empty() {
        r.error(&at("left_delimiter"), "must not be empty");
    }
    if right.is_empty() {
        r.error(&at("right_delimiter"), "must not be empty");
    }
    let source = source?;
    check_template_text(r, &block, &source, (&left, &right));
    Some(EnvTemplate {
        name: name.to_string(),
        source,
        error_on_missing_key: raw.error_on_missing_key.unwrap_or(false),
        left_delimiter: left,
        right_delimiter: right,
    })
}

/// The top-level `exec {}`: the command as Vault Agent reads it (a string is split at commas,
/// then one element with a space runs under `sh -c`), `restart_on_secret_changes` `always`
/// (the default) or `never`, and `restart_stop_signal` a signal name (`SIGTERM` by default).
fn resolve_exec(r: &mut Resolver, raw: raw::RawSupervisedExec) -> Option<Exec> {
    let command = raw.command.map(split_at_commas).and_then(command_from);
    if command.is_none() {
        r.error(
            &["exec", "command"],
            "is required: the program the env_template variables go to, and its arguments, \
             e.g. [\"/app/server\", \"--port\", \"8080\"]",
        );
    }
    let restart_on_secret_changes = match raw.restart_on_secret_changes.as_deref() {
        None | Some("always") => true,
        Some("never") => false,
        Some(other) => {
            r.error(
                &["exec", "restart_on_secret_changes"],
                format!("{other:?} is not always or never"),
            );
            true
        }
    };
    let restart_stop_signal = match raw.restart_stop_signal.as_deref() {
        None => nix::sys::signal::Signal::SIGTERM as i32,
        Some(name) => match name
            .to_ascii_uppercase()
            .parse::<nix::sys::signal::Signal>()
        {
            Ok(signal) => signal as i32,
            Err(_) => {
                r.error(
                    &["exec", "restart_stop_signal"],
                    format!("{name:?} is not a signal name (SIGTERM, SIGINT, SIGQUIT, ...)"),
                );
                nix::sys::signal::Signal::SIGTERM as i32
            }
        },
    };
    Some(Exec {
        command: command?,
        restart_on_secret_changes,
        restart_stop_signal,
    })
}

/// `listen_backlog` when nothing sets it: the kernel's usual `net.core.somaxconn`, so a burst of
/// new connections waits in the accept queue instead of having its SYNs dropped (128, the
/// figure std and tokio listen with, and nginx's 511 both overflow under such a burst).
const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// A listen backlog from 1 to 65535; `listen(2)` caps it further at `net.core.somaxconn`.
fn backlog(r: &mut Resolver, path: &[&str], value: Option<&Scalar>, default: u32) -> u32 {
    let n = r.count(path, value, default as usize, 1..=65_535);
    u32::try_from(n).unwrap_or(default)
}

/// An upstream such as `http://127.0.0.1:80`: plain HTTP, no path.
fn upstream_uri(r: &mut Resolver, at: &[&str], text: &str) -> http::Uri {
    match text.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some()
                && matches!(uri.path(), "" | "/")
                && uri.query().is_none() =>
        {
            uri
        }
        _ => {
            r.error(
                at,
                format!(
                    "{text:?} is not an upstream such as http://127.0.0.1:80 (http or https, no path)"
                ),
            );
            http::Uri::from_static("http://127.0.0.1:80")
        }
    }
}

/// `prefix_rewrite` and `upstream_uri` (`base`: the proxy's or a route's keys) of a location
/// `path` that forwards: what the upstream is sent as a request's target.
fn upstream_target(
    r: &mut Resolver,
    base: &[&str],
    path: &PathMatch,
    prefix_rewrite: Option<String>,
    upstream_uri: Option<String>,
) -> UpstreamTarget {
    let at = |key: &'static str| base.iter().copied().chain([key]).collect::<Vec<&str>>();
    // A target must be an origin-form path: what `http::uri::PathAndQuery` takes, from `/`.
    let is_target =
        |text: &str| text.starts_with('/') && text.parse::<http::uri::PathAndQuery>().is_ok();
    match (prefix_rewrite, upstream_uri) {
        (None, None) => UpstreamTarget::AsSent,
        (Some(_), Some(_)) => {
            r.error(
                &at("upstream_uri"),
                "cannot be given with prefix_rewrite: one says what replaces the location's \
                 prefix, the other the whole target",
            );
            UpstreamTarget::AsSent
        }
        (Some(with), None) => {
            let matched = match path {
                PathMatch::Prefix(p) | PathMatch::PrefixNoRegex(p) | PathMatch::Exact(p) => p,
                PathMatch::Regex { .. } | PathMatch::Named(_) => {
                    r.error(
                        &at("prefix_rewrite"),
                        format!(
                            "location {path} has no prefix to replace (nginx refuses a URI in \
                             proxy_pass there too): give upstream_uri, the whole target"
                        ),
                    );
                    return UpstreamTarget::AsSent;
                }
            };
            if with.contains(['?', '#']) || !is_target(&with) {
                r.error(
                    &at("prefix_rewrite"),
                    format!("{with:?} is not a path such as \"/v1/\" (from /, no query)"),
                );
                return UpstreamTarget::AsSent;
            }
            UpstreamTarget::Prefix {
                matched: matched.clone(),
                with,
            }
        }
        (None, Some(uri)) => {
            let pieces = match RewriteRule::pieces(&uri) {
                Ok(pieces) => pieces,
                Err(variable) => {
                    r.error(
                        &at("upstream_uri"),
                        format!(
                            "{variable} is not a request variable the proxy replaces \
                             ($request_uri, $uri, $args, $is_args, $arg_NAME, $host...) nor a \
                             group of a regular expression location ($1..$9)"
                        ),
                    );
                    return UpstreamTarget::AsSent;
                }
            };
            let captures = pieces
                .iter()
                .any(|piece| matches!(piece, ReplacementPiece::Capture(_)));
            if captures && !matches!(path, PathMatch::Regex { .. }) {
                r.error(
                    &at("upstream_uri"),
                    format!(
                        "groups ($1..$9) are those of a regular expression location, and \
                         location {path} is not one"
                    ),
                );
                return UpstreamTarget::AsSent;
            }
            // Each variable stands for a word: the rest must make a target as written.
            let shape: String = pieces
                .iter()
                .map(|piece| match piece {
                    ReplacementPiece::Part(RequestHeaderPart::Text(text)) => text.as_str(),
                    _ => "x",
                })
                .collect();
            let leads_with_uri = matches!(
                pieces.first(),
                Some(ReplacementPiece::Part(
                    RequestHeaderPart::RequestUri | RequestHeaderPart::Uri
                ))
            );
            if !(is_target(&shape) || leads_with_uri && is_target(&format!("/{shape}"))) {
                r.error(
                    &at("upstream_uri"),
                    format!(
                        "{uri:?} is not a request target such as \"/v1/status\" or \
                         \"/app$request_uri\" (from /)"
                    ),
                );
                return UpstreamTarget::AsSent;
            }
            UpstreamTarget::Whole(uri)
        }
    }
}

/// `max_request_body`: nginx's spelling and meaning, `0` being no limit.
fn request_body_limit(r: &mut Resolver, at: &[&str], value: Option<&Scalar>) -> Option<u64> {
    match value.map(units::size) {
        None | Some(Ok(0)) => None,
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(message)) => {
            r.error(at, message);
            None
        }
    }
}

/// `request_buffering`: `true` (the default, [`REQUEST_BUFFER`]), `false`, or the most
/// bytes held (`"4m"`; `0` is `false`).
fn request_buffering(
    r: &mut Resolver,
    at: &[&str],
    value: Option<&Scalar>,
    default: Option<u64>,
) -> Option<u64> {
    let Some(value) = value else {
        return default;
    };
    // A number is a size (`0` is off); `true`, `"off"`... are Vault's booleans.
    if !matches!(value, Scalar::Int(_))
        && let Ok(on) = units::scalar_boolean(value)
    {
        return on.then_some(REQUEST_BUFFER);
    }
    match units::size(value) {
        Ok(0) => None,
        Ok(bytes) => Some(bytes),
        Err(_) => {
            r.error(
                at,
                format!("{value} is neither true, false nor a size (examples: 1m, 512k, 65536)"),
            );
            default
        }
    }
}

/// The most bytes of a request body without a length held before it is sent, by default.
pub(crate) const REQUEST_BUFFER: u64 = 1 << 20;

fn resolve_proxy(
    r: &mut Resolver,
    mut raw: raw::RawProxy,
    default_grace: Duration,
    default_backlog: u32,
) -> Proxy {
    // First: every other value may name them.
    let maps = resolve_maps(r, raw.maps.take());
    let _scope = super::MapScope::enter(maps.clone());
    let upstream = match raw.upstream {
        Some(text) => upstream_uri(r, &["proxy", "upstream"], &text),
        None => http::Uri::from_static("http://127.0.0.1:80"),
    };
    let cert_file = r
        .non_empty_path(&["proxy", "cert_file"], raw.cert_file.as_ref())
        .unwrap_or_else(|| PathBuf::from("/etc/nginx/ssl/tls.crt"));
    let key_file = r
        .non_empty_path(&["proxy", "key_file"], raw.key_file.as_ref())
        .unwrap_or_else(|| PathBuf::from("/etc/nginx/ssl/tls.key"));
    let cert_label = match raw.cert_label {
        Some(label) if label.trim().is_empty() => {
            r.error(&["proxy", "cert_label"], "must not be empty");
            default_cert_label(&cert_file)
        }
        Some(label) => label,
        None => default_cert_label(&cert_file),
    };
    let mut duration = |key: &'static str, value: Option<&Scalar>, default: u64| {
        let value = r.duration(&["proxy", key], value, Duration::from_secs(default));
        if value.is_zero() {
            r.error(&["proxy", key], "must be greater than 0s");
        }
        value
    };
    let reload_interval = duration("reload_interval", raw.reload_interval.as_ref(), 5);
    let tls_handshake_timeout = duration(
        "tls_handshake_timeout",
        raw.tls_handshake_timeout.as_ref(),
        10,
    );
    let header_read_timeout = duration("header_read_timeout", raw.header_read_timeout.as_ref(), 10);
    let body_read_timeout = duration("body_read_timeout", raw.body_read_timeout.as_ref(), 60);
    let send_timeout = duration("send_timeout", raw.send_timeout.as_ref(), 60);
    let idle_timeout = duration("idle_timeout", raw.idle_timeout.as_ref(), 75);
    let upstream_connect_timeout = duration(
        "upstream_connect_timeout",
        raw.upstream_connect_timeout.as_ref(),
        5,
    );
    let upstream_response_timeout = duration(
        "upstream_response_timeout",
        raw.upstream_response_timeout.as_ref(),
        60,
    );
    let keepalive_requests = r.count(
        &["proxy", "keepalive_requests"],
        raw.keepalive_requests.as_ref(),
        1000,
        1..=1_000_000_000,
    );
    let max_connections = r.count(
        &["proxy", "max_connections"],
        raw.max_connections.as_ref(),
        10_000,
        1..=1_000_000,
    );
    let max_header_size = r.count(
        &["proxy", "max_header_size"],
        raw.max_header_size.as_ref(),
        64 * 1024,
        8192..=16 * 1024 * 1024,
    );
    let forwarded_headers = match raw.forwarded_headers.as_deref().map(str::trim) {
        None | Some("x-forwarded") => ForwardedHeaders::XForwarded,
        Some("forwarded") => ForwardedHeaders::Forwarded,
        Some(other) => {
            r.error(
                &["proxy", "forwarded_headers"],
                format!("{other:?} is not one of \"x-forwarded\", \"forwarded\""),
            );
            ForwardedHeaders::XForwarded
        }
    };
    let mut trusted_proxies = Vec::new();
    for (index, text) in raw.trusted_proxies.iter().flatten().enumerate() {
        match Cidr::parse(text.trim()) {
            Ok(cidr) => trusted_proxies.push(cidr),
            Err(message) => r.error(&["proxy", "trusted_proxies", &index.to_string()], message),
        }
    }
    let hsts = raw.hsts.map(|value| value.trim().to_string());
    if let Some(value) = &hsts {
        if value.is_empty() {
            r.error(
                &["proxy", "hsts"],
                "is empty; leave it out to send no Strict-Transport-Security",
            );
        } else if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            r.error(
                &["proxy", "hsts"],
                "must be printable ASCII on one line (a header value such as \"max-age=31536000\")",
            );
        }
    }
    let (response_headers, response_headers_on_success) = resolve_added_headers(
        r,
        &["proxy"],
        raw.response_headers,
        raw.response_headers_on_success,
    );
    let request_headers =
        resolve_request_headers(r, &["proxy", "request_headers"], raw.request_headers);
    let fixed_responses = resolve_fixed_responses(r, raw.fixed_responses);
    let conditional_answers = resolve_conditional_answers(r, &["proxy"], raw.conditional_answers);
    let rewrites = resolve_rewrites(r, &["proxy"], raw.rewrites);
    let redirect_rewrite =
        resolve_redirect_rewrite(r, &["proxy", "redirect_rewrite"], raw.redirect_rewrite);
    let tls13_only = match raw.tls_min_version.as_deref().map(str::trim) {
        None | Some("tls12") => false,
        Some("tls13") => true,
        Some(old @ ("tls10" | "tls11")) => {
            r.error(
                &["proxy", "tls_min_version"],
                format!("{old:?}: TLS 1.0 and 1.1 are never offered; \"tls12\" is the least"),
            );
            false
        }
        Some(other) => {
            r.error(
                &["proxy", "tls_min_version"],
                format!("{other:?} is not one of \"tls12\", \"tls13\""),
            );
            false
        }
    };
    let max_request_body = request_body_limit(
        r,
        &["proxy", "max_request_body"],
        raw.max_request_body.as_ref(),
    );
    let request_buffering = request_buffering(
        r,
        &["proxy", "request_buffering"],
        raw.request_buffering.as_ref(),
        Some(REQUEST_BUFFER),
    );
    let x_real_ip = r.boolean(&["proxy", "x_real_ip"], raw.x_real_ip.as_ref(), false);
    let auth = RawAuth {
        realm: raw.basic_auth_realm,
        file: raw.basic_auth_file,
    };
    let basic_auth = resolve_basic_auth(r, &["proxy"], &auth, &RawAuth::default());
    let cookie_flags = resolve_cookie_flags(r, &["proxy", "cookie_flags"], raw.cookie_flags);
    let mut rate_limit_zones = BTreeMap::new();
    // Every zone named, its rate valid or not: a limit naming one is not an error of its own.
    let zone_names: Vec<String> = raw
        .rate_limit_zones
        .iter()
        .flat_map(|zones| zones.keys().cloned())
        .collect();
    for (name, zone) in raw.rate_limit_zones.unwrap_or_default() {
        let at = ["proxy", "rate_limit_zones", name.as_str(), "rate"];
        match zone.rate.as_deref().map(super::request_rate) {
            Some(Some(rate)) => {
                rate_limit_zones.insert(name, rate);
            }
            Some(None) => r.error(&at, "is not a rate such as \"10r/s\" or \"30r/m\""),
            None => r.error(
                &at,
                "is required: requests per second or minute, such as \"10r/s\"",
            ),
        }
    }
    let rate_limits =
        resolve_rate_limits(r, &["proxy", "rate_limits"], raw.rate_limits, &zone_names);
    let rate_limit_status = limit_status(
        r,
        &["proxy", "rate_limit_status"],
        raw.rate_limit_status.as_ref(),
        503,
    );
    let mut concurrency_limit_zones = BTreeMap::new();
    let concurrency_zone_names: Vec<String> = raw
        .concurrency_limit_zones
        .iter()
        .flat_map(|zones| zones.keys().cloned())
        .collect();
    for (name, key) in raw.concurrency_limit_zones.unwrap_or_default() {
        let key = match key.as_str() {
            "address" => ConcurrencyKey::Address,
            "server" => ConcurrencyKey::Server,
            _ => {
                r.error(
                    &["proxy", "concurrency_limit_zones", name.as_str()],
                    format!(
                        "{key:?} is not one of \"address\" (each client address), \"server\" \
                         (all clients together)"
                    ),
                );
                continue;
            }
        };
        concurrency_limit_zones.insert(name, key);
    }
    let concurrency_limits = resolve_concurrency_limits(
        r,
        &["proxy", "concurrency_limits"],
        raw.concurrency_limits,
        &concurrency_zone_names,
    );
    let concurrency_limit_status = limit_status(
        r,
        &["proxy", "concurrency_limit_status"],
        raw.concurrency_limit_status.as_ref(),
        503,
    );
    let hide_response_headers = resolve_hidden_headers(
        r,
        &["proxy", "hide_response_headers"],
        raw.hide_response_headers,
    );
    // The routes an error page may name (`@NAME`).
    let named: Vec<String> = raw
        .routes
        .iter()
        .flatten()
        .filter_map(|route| route.location.as_deref()?.trim().strip_prefix('@'))
        .map(str::to_string)
        .collect();
    let error_pages = resolve_error_pages(r, &["proxy", "error_pages"], raw.error_pages, &named);
    let intercept_errors = r.boolean(
        &["proxy", "intercept_errors"],
        raw.intercept_errors.as_ref(),
        false,
    );
    let accel_redirect = r.boolean(
        &["proxy", "accel_redirect"],
        raw.accel_redirect.as_ref(),
        false,
    );
    let auth_request = resolve_auth_request(r, &["proxy", "auth_request"], raw.auth_request, None);
    let upstream_tls = resolve_upstream_tls(
        r,
        &["proxy", "upstream_tls"],
        raw.upstream_tls,
        UpstreamTls::default(),
    );
    let raw_routes = raw.routes;
    let access_rules = resolve_access_rules(r, &["proxy", "access_rules"], raw.access_rules);
    let limit_except = raw
        .limit_except
        .and_then(|raw| resolve_limit_except(r, &["proxy", "limit_except"], raw));
    let gzip = raw.gzip.map(|gzip| resolve_gzip(r, gzip));
    let server_names = resolve_server_names(
        r,
        raw.server_names,
        raw.unknown_host.as_ref(),
        raw.reject_unknown_sni.as_ref(),
    );
    let file_types = resolve_file_types(r, raw.file_types);
    let expires = resolve_expires(r, &["proxy", "expires"], raw.expires.as_deref(), None);
    let client_ca_file =
        r.non_empty_path(&["proxy", "client_ca_file"], raw.client_ca_file.as_ref());
    let required = match raw.client_auth.as_deref().map(str::trim) {
        None | Some("require") => true,
        Some("optional") => false,
        Some(other) => {
            r.error(
                &["proxy", "client_auth"],
                format!("{other:?} is not one of \"require\", \"optional\""),
            );
            true
        }
    };
    if raw.client_auth.is_some() && client_ca_file.is_none() {
        r.error(
            &["proxy", "client_auth"],
            "needs client_ca_file, the CAs that sign client certificates",
        );
    }
    let (listen, also_listen) = resolve_proxy_listen(r, raw.listen);
    let upstream_target = upstream_target(
        r,
        &["proxy"],
        &PathMatch::Prefix("/".to_string()),
        raw.prefix_rewrite,
        raw.upstream_uri,
    );
    let mut proxy = Proxy {
        listen,
        also_listen,
        upstream,
        upstream_target,
        cert_file,
        key_file,
        cert_label,
        metrics_listen: r.socket(
            &["proxy", "metrics_listen"],
            raw.metrics_listen.as_deref(),
            "0.0.0.0:9102",
        ),
        listen_backlog: backlog(
            r,
            &["proxy", "listen_backlog"],
            raw.listen_backlog.as_ref(),
            default_backlog,
        ),
        shutdown_grace: r.duration(
            &["proxy", "shutdown_grace"],
            raw.shutdown_grace.as_ref(),
            default_grace,
        ),
        reload_interval,
        tls_handshake_timeout,
        tls13_only,
        session_tickets: r.boolean(
            &["proxy", "session_tickets"],
            raw.session_tickets.as_ref(),
            true,
        ),
        header_read_timeout,
        body_read_timeout,
        send_timeout,
        keepalive_requests,
        idle_timeout,
        upstream_connect_timeout,
        upstream_response_timeout,
        max_connections,
        max_header_size,
        max_request_body,
        request_buffering,
        forwarded_headers,
        append_forwarded_for: r.boolean(
            &["proxy", "append_forwarded_for"],
            raw.append_forwarded_for.as_ref(),
            false,
        ),
        trusted_proxies,
        hsts,
        response_headers,
        response_headers_on_success,
        request_headers,
        fixed_responses,
        conditional_answers,
        rewrites,
        routes: Vec::new(),
        redirect_rewrite,
        x_real_ip,
        basic_auth,
        cookie_flags,
        rate_limit_zones,
        rate_limits,
        rate_limit_status,
        concurrency_limit_zones,
        concurrency_limits,
        concurrency_limit_status,
        hide_response_headers,
        error_pages,
        intercept_errors,
        accel_redirect,
        auth_request,
        upstream_tls,
        maps,
        access_rules,
        limit_except,
        server_names,
        gzip,
        file_types,
        expires,
        // nginx's default: an app that reads `_` and `-` alike (CGI, WSGI) must not take a
        // client's `X_Forwarded_For` for the proxy's `X-Forwarded-For`.
        drop_underscore_headers: r.boolean(
            &["proxy", "drop_underscore_headers"],
            raw.drop_underscore_headers.as_ref(),
            true,
        ),
        absolute_redirects: r.boolean(
            &["proxy", "absolute_redirects"],
            raw.absolute_redirects.as_ref(),
            false,
        ),
        port_in_redirects: r.boolean(
            &["proxy", "port_in_redirects"],
            raw.port_in_redirects.as_ref(),
            true,
        ),
        access_log: r.boolean(&["proxy", "access_log"], raw.access_log.as_ref(), false),
        client_auth: client_ca_file.map(|ca_file| ClientAuth { ca_file, required }),
    };
    proxy.routes = resolve_routes(
        r,
        raw_routes,
        &named,
        &auth,
        &proxy.own_route(),
        &zone_names,
        &concurrency_zone_names,
    );
    proxy
}

/// Headers a response must not be given from the configuration: the proxy's own framing and
/// connection headers, and HSTS, which has its own key.
const NOT_RESPONSE_HEADERS: &[(&str, &str)] = &[
    ("strict-transport-security", "set it with proxy.hsts"),
    ("content-length", "the proxy frames each response itself"),
    ("transfer-encoding", "the proxy frames each response itself"),
    ("connection", "a connection header is the proxy's own"),
    ("keep-alive", "a connection header is the proxy's own"),
    ("upgrade", "a connection header is the proxy's own"),
    ("trailer", "a connection header is the proxy's own"),
];

/// One header of `proxy.{key}`: a name as HTTP allows it (any case), not one of `forbidden`
/// (which cannot be `{verb}` there, for the reason given), and its value trimmed, printable
/// ASCII on one line; None after an error.
fn checked_header(
    r: &mut Resolver,
    base: &[&str],
    verb: &str,
    (name, value): (String, String),
    forbidden: &[(&str, &str)],
) -> Option<(String, String)> {
    let at: Vec<&str> = base.iter().copied().chain([name.as_str()]).collect();
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        r.error(&at, format!("{name:?} is not an HTTP header name"));
        return None;
    }
    if let Some((_, why)) = forbidden
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
    {
        r.error(&at, format!("cannot be {verb} here: {why}"));
        return None;
    }
    let value = value.trim().to_string();
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        r.error(&at, "must be printable ASCII on one line");
        return None;
    }
    Some((name, value))
}

/// Headers by name, with their values.
type Headers = Vec<(String, String)>;

/// `response_headers` and `response_headers_on_success` of `base` (the proxy, a route): a
/// header is in one or the other.
fn resolve_added_headers(
    r: &mut Resolver,
    base: &[&str],
    always: Option<BTreeMap<String, String>>,
    on_success: Option<BTreeMap<String, String>>,
) -> (Headers, Headers) {
    let at = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
    let always = resolve_response_headers_at(r, &at("response_headers"), always);
    let on_success = resolve_response_headers_at(r, &at("response_headers_on_success"), on_success);
    for (name, _) in &on_success {
        if always.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            let at: Vec<&str> = at("response_headers_on_success")
                .into_iter()
                .chain([name.as_str()])
                .collect();
            r.error(
                &at,
                "is in response_headers too: a header is added to every response, or to \
                 successes only",
            );
        }
    }
    (always, on_success)
}

/// `response_headers = { NAME = "VALUE" }` at `at` (the proxy's, a route's, an answer's):
/// values may carry the request's variables.
fn resolve_response_headers_at(
    r: &mut Resolver,
    at: &[&str],
    raw: Option<BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for header in raw.unwrap_or_default() {
        let Some((name, value)) = checked_header(r, at, "added", header, NOT_RESPONSE_HEADERS)
        else {
            continue;
        };
        if let Err(variable) = super::request_header_parts(&value) {
            let at: Vec<&str> = at.iter().copied().chain([name.as_str()]).collect();
            r.error(
                &at,
                format!(
                    "{variable} is not a request variable the proxy replaces ($host, \
                     $http_NAME, $request_id, $request_uri...)"
                ),
            );
            continue;
        }
        headers.push((name, value));
    }
    headers
}

/// Request headers the configuration may not set: the proxy frames requests and sets the
/// forwarding headers itself.
const NOT_REQUEST_HEADERS: &[(&str, &str)] = &[
    ("content-length", "the proxy frames each request itself"),
    ("transfer-encoding", "the proxy frames each request itself"),
    ("connection", "a connection header is the proxy's own"),
    ("keep-alive", "a connection header is the proxy's own"),
    ("proxy-connection", "a connection header is the proxy's own"),
    ("upgrade", "a connection header is the proxy's own"),
    ("te", "a connection header is the proxy's own"),
    ("trailer", "a connection header is the proxy's own"),
    (
        "x-forwarded-for",
        "set by the proxy (proxy.forwarded_headers)",
    ),
    (
        "x-forwarded-proto",
        "set by the proxy (proxy.forwarded_headers)",
    ),
    ("forwarded", "set by the proxy (proxy.forwarded_headers)"),
    ("x-real-ip", "set with proxy.x_real_ip"),
];

/// `proxy.request_headers = { NAME = "VALUE" }`: as response headers, where `$host` and
/// `$remote_addr` stand for the request's; `""` removes the header.
fn resolve_request_headers(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for header in raw.unwrap_or_default() {
        let Some((name, value)) = checked_header(r, base, "set", header, NOT_REQUEST_HEADERS)
        else {
            continue;
        };
        if let Err(variable) = super::request_header_parts(&value) {
            let at: Vec<&str> = base.iter().copied().chain([name.as_str()]).collect();
            r.error(
                &at,
                format!(
                    "{variable}: only $host, $scheme, $https, $remote_addr, $remote_port, \
                     $server_port, \
                     $request_id, $request_uri, $uri, $args, $is_args, $request_method, \
                     $http_NAME, $arg_NAME, $cookie_NAME, $ssl_protocol, $ssl_server_name, \
                     $ssl_client_s_dn, \
                     $ssl_client_i_dn, $ssl_client_verify, $ssl_client_serial, \
                     $ssl_client_fingerprint and $ssl_client_escaped_cert are replaced in a \
                     value"
                ),
            );
            continue;
        }
        if name.eq_ignore_ascii_case("host") && value.is_empty() {
            let at: Vec<&str> = base.iter().copied().chain([name.as_str()]).collect();
            r.error(
                &at,
                "cannot be removed: the app is told a host (without this key, the one the \
                 client sent)",
            );
            continue;
        }
        headers.push((name, value));
    }
    headers
}

/// `proxy.redirect_rewrite = [{ from = "http://", to = "https://" }]`: both printable ASCII,
/// `from` not empty; `to` may be empty or a path (a relative URL).
fn resolve_redirect_rewrite(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawRedirectRewrite>>,
) -> Vec<RedirectRewrite> {
    let printable = |text: &str| text.bytes().all(|b| (b' '..=b'~').contains(&b));
    let mut rewrites = Vec::new();
    for (index, rewrite) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> {
            base.iter().copied().chain([index.as_str(), key]).collect()
        };
        let Some(from) = rewrite.from.filter(|f| !f.is_empty()) else {
            r.error(
                &at("from"),
                "is required: the start of the upstream's URLs to replace, such as \"http://\"",
            );
            continue;
        };
        let Some(to) = rewrite.to else {
            r.error(
                &at("to"),
                "is required: what replaces `from`, such as \"https://\"",
            );
            continue;
        };
        let mut valid = true;
        for (key, text) in [("from", &from), ("to", &to)] {
            if !printable(text) {
                r.error(&at(key), "must be printable ASCII on one line");
                valid = false;
            }
        }
        if valid {
            rewrites.push(RedirectRewrite { from, to });
        }
    }
    rewrites
}

/// `proxy.fixed_responses = { "/healthz" = { status = 200, body = "ok" } }`: keys are nginx
/// location specs (`/prefix` or `= /exact`), values what the proxy answers there.
fn resolve_fixed_responses(
    r: &mut Resolver,
    raw: Option<BTreeMap<String, raw::RawFixedResponse>>,
) -> Vec<FixedResponse> {
    let mut fixed = Vec::new();
    for (spec, response) in raw.unwrap_or_default() {
        let path_at = ["proxy", "fixed_responses", spec.as_str()];
        let path = match PathMatch::parse(&spec) {
            Ok(path) => path,
            Err(message) => {
                r.error(&path_at, message);
                continue;
            }
        };
        if matches!(path, PathMatch::Named(_)) {
            r.error(
                &path_at,
                "a named location is not supported here: give a path",
            );
            continue;
        }
        if matches!(path, PathMatch::Regex { .. }) {
            r.error(
                &path_at,
                "a regular expression is not supported here (the answers are not kept in the \
                 order written): give a path, \"= /path\" or \"^~ /prefix\", or a route with \
                 `answer`",
            );
            continue;
        }
        if path.is_everything() {
            r.error(
                &path_at,
                "would answer every request: `/` is what the proxy forwards to the upstream",
            );
            continue;
        }
        if let Some(answer) = resolve_answer(r, &path_at, path, response) {
            fixed.push(answer);
        }
    }
    fixed
}

/// `conditional_answers` under `base`: each `{ when, status, body, content_type, location }`,
/// `when` being nginx's `if` condition without its parentheses.
fn resolve_conditional_answers(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawConditionalAnswer>>,
) -> Vec<ConditionalAnswer> {
    let mut answers = Vec::new();
    for (index, entry) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at: Vec<&str> = base
            .iter()
            .copied()
            .chain(["conditional_answers", index.as_str()])
            .collect();
        let when_at: Vec<&str> = at.iter().copied().chain(["when"]).collect();
        let when = match entry.when.as_deref().map(Condition::parse) {
            None => {
                r.error(
                    &when_at,
                    "is required: the condition, as nginx's `if` writes it (\"$request_method = \
                     OPTIONS\", \"$http_user_agent ~* bot\")",
                );
                continue;
            }
            Some(Err(why)) => {
                r.error(&when_at, why);
                continue;
            }
            Some(Ok(when)) => when,
        };
        let response = raw::RawFixedResponse {
            status: entry.status,
            body: entry.body,
            content_type: entry.content_type,
            location: entry.location,
            headers: entry.headers,
            only_own_headers: entry.only_own_headers,
        };
        if let Some(answer) = resolve_answer(r, &at, PathMatch::Prefix("/".to_string()), response) {
            answers.push(ConditionalAnswer { when, answer });
        }
    }
    answers
}

/// `rewrites` under `base`: each `{ regex, replacement, flag }`, nginx's `rewrite`.
fn resolve_rewrites(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawRewrite>>,
) -> Vec<RewriteRule> {
    let mut rules = Vec::new();
    for (index, entry) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> {
            base.iter()
                .copied()
                .chain(["rewrites", index.as_str(), key])
                .collect()
        };
        let regex = match entry.regex {
            None => {
                r.error(
                    &at("regex"),
                    "is required: the regular expression the path is matched against",
                );
                continue;
            }
            Some(regex) => match super::regex_for(&regex, false) {
                Ok(_) => regex,
                Err(why) => {
                    r.error(&at("regex"), why);
                    continue;
                }
            },
        };
        let Some(replacement) = entry.replacement.filter(|text| !text.is_empty()) else {
            r.error(
                &at("replacement"),
                "is required: the new path (\"/$1\"), or a URL to redirect to",
            );
            continue;
        };
        let pieces = match RewriteRule::pieces(&replacement) {
            Ok(pieces) => pieces,
            Err(variable) => {
                r.error(
                    &at("replacement"),
                    format!(
                        "{variable} is neither a group ($1..$9) nor a request variable the proxy \
                         replaces ($uri, $args, $host, $request_uri...)"
                    ),
                );
                continue;
            }
        };
        let flag = match entry.flag.as_deref() {
            None => RewriteFlag::Next,
            Some("last") => RewriteFlag::Last,
            Some("break") => RewriteFlag::Break,
            Some("redirect") => RewriteFlag::Redirect,
            Some("permanent") => RewriteFlag::Permanent,
            Some(other) => {
                r.error(
                    &at("flag"),
                    format!(
                        "{other:?} is not one of \"last\", \"break\", \"redirect\", \"permanent\""
                    ),
                );
                continue;
            }
        };
        let rule = RewriteRule {
            regex,
            replacement,
            pieces,
            flag,
        };
        // A new path: from `/` (or a variable that holds one).
        if !rule.redirects() && !rule.replacement.starts_with(['/', '$']) {
            r.error(
                &at("replacement"),
                format!(
                    "{:?} is not a path from / (or a URL, to redirect to)",
                    rule.replacement
                ),
            );
            continue;
        }
        rules.push(rule);
    }
    rules
}

fn resolve_answer(
    r: &mut Resolver,
    base: &[&str],
    path: PathMatch,
    response: raw::RawFixedResponse,
) -> Option<FixedResponse> {
    let printable = |text: &str| text.bytes().all(|b| (b' '..=b'~').contains(&b));
    let at = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
    let status = match &response.status {
        None => {
            r.error(
                &at("status"),
                "is required (an HTTP status such as 200 or 301)",
            );
            return None;
        }
        Some(given) => match status_number(given).filter(|c| (200..=599).contains(c)) {
            Some(code) => code,
            None => {
                r.error(
                    &at("status"),
                    format!("{given} is not an HTTP status from 200 to 599"),
                );
                return None;
            }
        },
    };
    let location = response.location.map(|l| l.trim().to_string());
    let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
    let location_error = match &location {
        Some(url) if !redirect => Some(format!(
            "is for a redirect (301, 302, 303, 307, 308), not {status} ({url})"
        )),
        Some(url) if url.is_empty() || !printable(url) => {
            Some("must be a URL of printable ASCII".to_string())
        }
        Some(url) if url.contains('$') => match super::request_header_parts(url) {
            Ok(_) => None,
            Err(variable) => Some(format!(
                "{variable} is not a request variable the proxy replaces ($scheme, $host, \
                 $request_uri, $uri, $args, $is_args, $http_NAME, $arg_NAME...)"
            )),
        },
        None if redirect => Some(format!("is required with a {status} (where to)")),
        _ => None,
    };
    if let Some(message) = location_error {
        r.error(&at("location"), message);
        return None;
    }
    let content_type = response
        .content_type
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|| "text/plain".to_string());
    if content_type.is_empty() || http::HeaderValue::from_str(&content_type).is_err() {
        r.error(
            &at("content_type"),
            "is not a media type such as \"text/plain\"",
        );
        return None;
    }
    let headers = resolve_response_headers_at(r, &at("headers"), response.headers);
    let only_own_headers = r.boolean(
        &at("only_own_headers"),
        response.only_own_headers.as_ref(),
        false,
    );
    Some(FixedResponse {
        path,
        status,
        body: response.body.unwrap_or_default(),
        content_type,
        location,
        headers,
        only_own_headers,
    })
}

/// `proxy.routes = [{ location = "/api/", upstream = "http://127.0.0.1:8080" }]`: each
/// setting a route leaves out is the proxy's (`proxy`).
fn resolve_routes(
    r: &mut Resolver,
    raw: Option<Vec<raw::RawRoute>>,
    named: &[String],
    proxy_auth: &RawAuth,
    proxy: &Route,
    zones: &[String],
    concurrency_zones: &[String],
) -> Vec<Route> {
    let mut routes = Vec::new();
    let mut indexes = Vec::new();
    for (index, route) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let base = ["proxy", "routes", index.as_str()];
        let at = |key: &'static str| ["proxy", "routes", index.as_str(), key];
        let path = match route.location.as_deref().map(PathMatch::parse) {
            None => {
                r.error(
                    &at("location"),
                    "is required: the requests it takes, as an nginx location (\"/api/\", \
                     \"= /ping\", \"~ ^/ws\")",
                );
                continue;
            }
            Some(Err(message)) => {
                r.error(&at("location"), message);
                continue;
            }
            Some(Ok(path)) => path,
        };
        let mut duration = |key: &'static str, value: Option<&Scalar>, default: Duration| {
            let value = r.duration(&at(key), value, default);
            if value.is_zero() {
                r.error(&at(key), "must be greater than 0s");
            }
            value
        };
        let upstream_connect_timeout = duration(
            "upstream_connect_timeout",
            route.upstream_connect_timeout.as_ref(),
            proxy.upstream_connect_timeout,
        );
        let upstream_response_timeout = duration(
            "upstream_response_timeout",
            route.upstream_response_timeout.as_ref(),
            proxy.upstream_response_timeout,
        );
        let upstream_given = route.upstream.is_some();
        let upstream = match route.upstream {
            Some(text) => upstream_uri(r, &at("upstream"), &text),
            None => proxy.upstream.clone(),
        };
        let max_request_body = match route.max_request_body {
            Some(value) => request_body_limit(r, &at("max_request_body"), Some(&value)),
            None => proxy.max_request_body,
        };
        let request_buffering = request_buffering(
            r,
            &at("request_buffering"),
            route.request_buffering.as_ref(),
            proxy.request_buffering,
        );
        let request_headers = match route.request_headers {
            Some(headers) => {
                let base: Vec<&str> = base.iter().copied().chain(["request_headers"]).collect();
                resolve_request_headers(r, &base, Some(headers))
            }
            None => proxy.request_headers.clone(),
        };
        let redirect_rewrite = match route.redirect_rewrite {
            Some(rewrites) => {
                let base: Vec<&str> = base.iter().copied().chain(["redirect_rewrite"]).collect();
                resolve_redirect_rewrite(r, &base, Some(rewrites))
            }
            None => proxy.redirect_rewrite.clone(),
        };
        let x_real_ip = r.boolean(&at("x_real_ip"), route.x_real_ip.as_ref(), proxy.x_real_ip);
        let auth = RawAuth {
            realm: route.basic_auth_realm,
            file: route.basic_auth_file,
        };
        let basic_auth = resolve_basic_auth(r, &base, &auth, proxy_auth);
        let cookie_flags = match route.cookie_flags {
            Some(rules) => {
                let base: Vec<&str> = base.iter().copied().chain(["cookie_flags"]).collect();
                resolve_cookie_flags(r, &base, Some(rules))
            }
            None => proxy.cookie_flags.clone(),
        };
        let rate_limits = match route.rate_limits {
            Some(limits) => {
                let base: Vec<&str> = base.iter().copied().chain(["rate_limits"]).collect();
                resolve_rate_limits(r, &base, Some(limits), zones)
            }
            None => proxy.rate_limits.clone(),
        };
        let rate_limit_status = limit_status(
            r,
            &at("rate_limit_status"),
            route.rate_limit_status.as_ref(),
            proxy.rate_limit_status,
        );
        let concurrency_limits = match route.concurrency_limits {
            Some(limits) => {
                let base: Vec<&str> = base.iter().copied().chain(["concurrency_limits"]).collect();
                resolve_concurrency_limits(r, &base, Some(limits), concurrency_zones)
            }
            None => proxy.concurrency_limits.clone(),
        };
        let concurrency_limit_status = limit_status(
            r,
            &at("concurrency_limit_status"),
            route.concurrency_limit_status.as_ref(),
            proxy.concurrency_limit_status,
        );
        let hide_response_headers = match route.hide_response_headers {
            Some(names) => resolve_hidden_headers(r, &at("hide_response_headers"), Some(names)),
            None => proxy.hide_response_headers.clone(),
        };
        let error_pages = match route.error_pages {
            Some(pages) => {
                let base: Vec<&str> = base.iter().copied().chain(["error_pages"]).collect();
                resolve_error_pages(r, &base, Some(pages), named)
            }
            None => proxy.error_pages.clone(),
        };
        let intercept_errors = r.boolean(
            &at("intercept_errors"),
            route.intercept_errors.as_ref(),
            proxy.intercept_errors,
        );
        let accel_redirect = r.boolean(
            &at("accel_redirect"),
            route.accel_redirect.as_ref(),
            proxy.accel_redirect,
        );
        let internal = r.boolean(&at("internal"), route.internal.as_ref(), false);
        let (response_headers, response_headers_on_success) = resolve_added_headers(
            r,
            &["proxy", "routes", index.as_str()],
            route.response_headers,
            route.response_headers_on_success,
        );
        let auth_request = resolve_auth_request(
            r,
            &at("auth_request"),
            route.auth_request,
            proxy.auth_request.clone(),
        );
        let upstream_tls = {
            let base: Vec<&str> = base.iter().copied().chain(["upstream_tls"]).collect();
            resolve_upstream_tls(r, &base, route.upstream_tls, proxy.upstream_tls.clone())
        };
        let access_rules = match route.access_rules {
            Some(rules) => {
                let base: Vec<&str> = base.iter().copied().chain(["access_rules"]).collect();
                resolve_access_rules(r, &base, Some(rules))
            }
            None => proxy.access_rules.clone(),
        };
        let limit_except = match route.limit_except {
            Some(raw) => {
                let base: Vec<&str> = base.iter().copied().chain(["limit_except"]).collect();
                resolve_limit_except(r, &base, raw)
            }
            // A location's own, as in nginx: the proxy's is `location /`'s.
            None => None,
        };
        let files = resolve_files(
            r,
            &base,
            &path,
            upstream_given,
            RawFiles {
                root: route.root,
                alias: route.alias,
                index: route.index,
                default_type: route.default_type,
                try_files: route.try_files,
            },
        );
        let answer = match route.answer {
            Some(response) => {
                let base: Vec<&str> = base.iter().copied().chain(["answer"]).collect();
                if upstream_given || files.is_some() {
                    r.error(
                        &base,
                        "cannot be given with upstream, root or alias: a route answers, serves \
                         files or forwards",
                    );
                    continue;
                }
                match resolve_answer(r, &base, path.clone(), response) {
                    Some(answer) => Some(answer),
                    None => continue,
                }
            }
            None => None,
        };
        let stub_status = r.boolean(&at("stub_status"), route.stub_status.as_ref(), false);
        if stub_status && (upstream_given || files.is_some() || answer.is_some()) {
            r.error(
                &at("stub_status"),
                "cannot be given with upstream, root, alias or answer: a route answers its \
                 status page, answers, serves files or forwards",
            );
            continue;
        }
        let conditional_answers = resolve_conditional_answers(r, &base, route.conditional_answers);
        let rewrites = resolve_rewrites(r, &base, route.rewrites);
        let retargets = route.prefix_rewrite.is_some() || route.upstream_uri.is_some();
        if retargets && (files.is_some() || answer.is_some() || stub_status) {
            let key = if route.prefix_rewrite.is_some() {
                "prefix_rewrite"
            } else {
                "upstream_uri"
            };
            r.error(
                &at(key),
                "is for a route that forwards: this one serves files or answers",
            );
            continue;
        }
        let upstream_target =
            upstream_target(r, &base, &path, route.prefix_rewrite, route.upstream_uri);
        // `/` is the proxy's own, unless it serves files, answers, refuses everyone, or has
        // conditional answers or rewrites of its own (beside other routes: the proxy's would
        // hold for theirs too).
        if path.is_everything()
            && files.is_none()
            && answer.is_none()
            && !stub_status
            && conditional_answers.is_empty()
            && rewrites.is_empty()
            && !AccessRule::deny_everyone(&access_rules)
        {
            r.error(
                &at("location"),
                "would take every request: set the proxy's own upstream and settings for `/` (a \
                 route of `/` serves files, or has conditional_answers or rewrites of its own)",
            );
            continue;
        }
        if routes.iter().any(|other: &Route| other.path == path) {
            r.error(&at("location"), format!("{path} is given twice"));
            continue;
        }
        routes.push(Route {
            path,
            upstream,
            upstream_target,
            upstream_connect_timeout,
            upstream_response_timeout,
            max_request_body,
            request_buffering,
            request_headers,
            redirect_rewrite,
            x_real_ip,
            basic_auth,
            cookie_flags,
            rate_limits,
            rate_limit_status,
            concurrency_limits,
            concurrency_limit_status,
            hide_response_headers,
            error_pages,
            intercept_errors,
            accel_redirect,
            auth_request,
            upstream_tls,
            internal,
            stub_status,
            access_rules,
            limit_except,
            files,
            answer,
            conditional_answers,
            rewrites,
            expires: resolve_expires(r, &at("expires"), route.expires.as_deref(), proxy.expires),
            response_headers,
            response_headers_on_success,
        });
        indexes.push(index);
    }
    // Each `@NAME` a `try_files` falls back to is a route.
    for (route, index) in routes.iter().zip(&indexes) {
        if let Some(Files {
            try_files: Some((_, TryFallback::Named(name))),
            ..
        }) = &route.files
            && !routes
                .iter()
                .any(|other| other.path == PathMatch::Named(name.clone()))
        {
            r.error(
                &["proxy", "routes", index.as_str(), "try_files"],
                format!("@{name} is not one of the routes (location = \"@{name}\")"),
            );
        }
    }
    routes
}

/// `upstream_tls = { verify, ca_file, server_name, send_server_name, cert_file, key_file }`
/// at `base`, else `inherited` (a route's own replaces the proxy's whole).
fn resolve_upstream_tls(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<raw::RawUpstreamTls>,
    inherited: UpstreamTls,
) -> UpstreamTls {
    let Some(raw) = raw else {
        return inherited;
    };
    let at = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
    let defaults = UpstreamTls::default();
    let path = |text: Option<String>| text.map(|t| PathBuf::from(t.trim()));
    let server_name = raw.server_name.map(|name| name.trim().to_string());
    if let Some(name) = &server_name
        && rustls_pki_types::ServerName::try_from(name.as_str()).is_err()
    {
        r.error(
            &at("server_name"),
            format!("{name:?} is not a DNS name or an IP address"),
        );
    }
    let client_cert = match (path(raw.cert_file), path(raw.key_file)) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            r.error(&at("key_file"), "is required with cert_file");
            None
        }
        (None, Some(_)) => {
            r.error(&at("cert_file"), "is required with key_file");
            None
        }
    };
    UpstreamTls {
        verify: r.boolean(&at("verify"), raw.verify.as_ref(), defaults.verify),
        ca_file: path(raw.ca_file),
        server_name,
        send_server_name: r.boolean(
            &at("send_server_name"),
            raw.send_server_name.as_ref(),
            defaults.send_server_name,
        ),
        client_cert,
    }
}

/// An HTTP status written as a number or in a string, unchecked for range.
fn status_number(value: &Scalar) -> Option<u16> {
    match value {
        Scalar::Int(code) => u16::try_from(*code).ok(),
        Scalar::Text(code) => code.trim().parse().ok(),
        Scalar::Float(_) | Scalar::Bool(_) => None,
    }
}

/// `auth_request = "/oauth2/auth"` (or `"off"`) at `at`, else `inherited`.
fn resolve_auth_request(
    r: &mut Resolver,
    at: &[&str],
    raw: Option<String>,
    inherited: Option<String>,
) -> Option<String> {
    let Some(text) = raw.map(|text| text.trim().to_string()) else {
        return inherited;
    };
    if text == "off" {
        return None;
    }
    if !text.starts_with('/')
        || text.contains('$')
        || http::uri::PathAndQuery::try_from(text.as_str()).is_err()
    {
        r.error(
            at,
            format!("{text:?} is not a path (\"/oauth2/auth\") or off"),
        );
        return None;
    }
    Some(text)
}

/// `maps = [{ variable = "cors", source = "$http_origin", values = [{ match = "~...", value =
/// "$http_origin" }], default = "" }]`, each read with the maps before it in scope.
fn resolve_maps(
    r: &mut Resolver,
    raw: Option<Vec<raw::RawMap>>,
) -> Vec<std::sync::Arc<VariableMap>> {
    let mut maps: Vec<std::sync::Arc<VariableMap>> = Vec::new();
    for (index, raw) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> { vec!["proxy", "maps", index.as_str(), key] };
        let Some(name) = raw
            .variable
            .map(|name| name.trim().trim_start_matches('$').to_string())
        else {
            r.error(
                &at("variable"),
                "is required: the name of the variable it sets",
            );
            continue;
        };
        if maps.iter().any(|map| map.name == name) {
            r.error(&at("variable"), format!("${name} is given twice"));
            continue;
        }
        let Some(source) = raw.source else {
            r.error(
                &at("source"),
                "is required: the value the map looks up (\"$http_origin\")",
            );
            continue;
        };
        let mut entries = Vec::new();
        let mut complete = true;
        for (n, value) in raw.values.unwrap_or_default().into_iter().enumerate() {
            match (value.matched, value.value) {
                (Some(matched), Some(value)) => entries.push((matched, value)),
                _ => {
                    let n = n.to_string();
                    r.error(
                        &["proxy", "maps", index.as_str(), "values", n.as_str()],
                        "takes match and value",
                    );
                    complete = false;
                }
            }
        }
        if !complete {
            continue;
        }
        let _scope = super::MapScope::enter(maps.clone());
        match VariableMap::new(
            &name,
            &source,
            &entries,
            raw.default.as_deref().unwrap_or(""),
        ) {
            Ok(map) => maps.push(std::sync::Arc::new(map)),
            Err((key, why)) => r.error(&at(key), why),
        }
    }
    maps
}

/// `error_pages = [{ statuses = [502, 504], page = "/50x.html", status = 200 }]` at `base`.
fn resolve_error_pages(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawErrorPage>>,
    named: &[String],
) -> Vec<ErrorPage> {
    let mut pages = Vec::new();
    for (index, raw) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> {
            base.iter().copied().chain([index.as_str(), key]).collect()
        };
        let mut statuses = Vec::new();
        for value in raw.statuses.unwrap_or_default() {
            // nginx's range: what the proxy or an upstream may answer with that is not a
            // success.
            match status_number(&value).filter(|c| (300..=599).contains(c) && *c != 499) {
                Some(code) => statuses.push(code),
                None => r.error(
                    &at("statuses"),
                    format!("{value} is not an HTTP status from 300 to 599 (499 excepted)"),
                ),
            }
        }
        if statuses.is_empty() {
            r.error(
                &at("statuses"),
                "is required: the statuses the page is for ([500, 502, 503, 504])",
            );
            continue;
        }
        let Some(text) = raw.page.map(|page| page.trim().to_string()) else {
            r.error(
                &at("page"),
                "is required: a path (\"/50x.html\"), a named route (\"@fallback\") or a \
                 URL to redirect to",
            );
            continue;
        };
        let page = if text.contains('$') {
            r.error(
                &at("page"),
                format!("{text:?}: request variables are not supported in an error page"),
            );
            continue;
        } else if let Some(name) = text.strip_prefix('@') {
            if !named.iter().any(|route| route == name) {
                r.error(
                    &at("page"),
                    format!("{text} is not one of the routes (location = \"{text}\")"),
                );
                continue;
            }
            ErrorPageTarget::Named(name.to_string())
        } else if text.starts_with('/') {
            if http::uri::PathAndQuery::try_from(text.as_str()).is_err() {
                r.error(&at("page"), format!("{text:?} is not a path and query"));
                continue;
            }
            ErrorPageTarget::Uri(text)
        } else if (text.starts_with("http://") || text.starts_with("https://"))
            && http::HeaderValue::from_str(&text).is_ok()
            && text.parse::<http::Uri>().is_ok()
        {
            ErrorPageTarget::Redirect(text)
        } else {
            r.error(
                &at("page"),
                format!(
                    "{text:?} is not a path (\"/50x.html\"), a named route (\"@fallback\") or \
                     an http:// or https:// URL"
                ),
            );
            continue;
        };
        let status = match &raw.status {
            None => ErrorPageStatus::Kept,
            Some(Scalar::Text(text)) if text.trim() == "page" => ErrorPageStatus::OfPage,
            Some(value) => match status_number(value) {
                Some(code)
                    if matches!(page, ErrorPageTarget::Redirect(_))
                        && matches!(code, 301 | 302 | 303 | 307 | 308) =>
                {
                    ErrorPageStatus::Set(code)
                }
                Some(code)
                    if !matches!(page, ErrorPageTarget::Redirect(_))
                        && (200..=599).contains(&code) =>
                {
                    ErrorPageStatus::Set(code)
                }
                _ if matches!(page, ErrorPageTarget::Redirect(_)) => {
                    r.error(
                        &at("status"),
                        format!("{value} is not a redirect's status (301, 302, 303, 307, 308)"),
                    );
                    continue;
                }
                _ => {
                    r.error(
                        &at("status"),
                        format!(
                            "{value} is not an HTTP status from 200 to 599, or \"page\" (the \
                             page's own)"
                        ),
                    );
                    continue;
                }
            },
        };
        pages.push(ErrorPage {
            statuses,
            page,
            status,
        });
    }
    pages
}

/// A route's `root`, `alias`, `index` and `default_type`, as read.
struct RawFiles {
    root: Option<String>,
    alias: Option<String>,
    index: Option<Vec<String>>,
    default_type: Option<String>,
    try_files: Option<Vec<String>>,
}

/// The files a route at `base` serves (`root` or `alias`), `None` when it forwards.
fn resolve_files(
    r: &mut Resolver,
    base: &[&str],
    path: &PathMatch,
    upstream_given: bool,
    raw: RawFiles,
) -> Option<Files> {
    let at = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
    let (key, dir, alias) = match (raw.root, raw.alias) {
        (Some(_), Some(_)) => {
            r.error(&at("alias"), "cannot be given with root: one or the other");
            return None;
        }
        (Some(dir), None) => ("root", dir, false),
        (None, Some(dir)) => ("alias", dir, true),
        (None, None) => {
            for (key, given) in [
                ("index", raw.index.is_some()),
                ("default_type", raw.default_type.is_some()),
                ("try_files", raw.try_files.is_some()),
            ] {
                if given {
                    r.error(
                        &at(key),
                        "needs root or alias: the route forwards, it serves no files",
                    );
                }
            }
            return None;
        }
    };
    if !dir.starts_with('/') {
        r.error(&at(key), format!("{dir:?} must be an absolute path"));
        return None;
    }
    if upstream_given {
        r.error(
            &at(key),
            "cannot be given with upstream: a route serves files or forwards",
        );
        return None;
    }
    if alias && matches!(path, PathMatch::Regex { .. }) {
        r.error(
            &at(key),
            "alias needs a location with a path to replace, not a regular expression (use root)",
        );
        return None;
    }
    let index = raw.index.unwrap_or_else(|| vec!["index.html".to_string()]);
    for (position, name) in index.iter().enumerate() {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            let position = position.to_string();
            let at: Vec<&str> = at("index").into_iter().chain([position.as_str()]).collect();
            r.error(&at, format!("{name:?} is not a file name (no `/`)"));
        }
    }
    let default_type = raw
        .default_type
        .unwrap_or_else(|| "application/octet-stream".to_string());
    if http::HeaderValue::from_str(&default_type).is_err() || default_type.trim().is_empty() {
        r.error(
            &at("default_type"),
            format!("{default_type:?} is not a media type"),
        );
    }
    let try_files = raw
        .try_files
        .and_then(|entries| resolve_try_files(r, &at("try_files"), entries));
    Some(Files {
        dir: PathBuf::from(dir),
        alias,
        index,
        default_type,
        try_files,
    })
}

/// `try_files = ["$uri", "$uri/", "=404"]`: paths with `$uri`, then `=CODE`, a path (with
/// `$uri`, `$args`, `$is_args`) or `@NAME`.
fn resolve_try_files(
    r: &mut Resolver,
    at: &[&str],
    mut entries: Vec<String>,
) -> Option<(Vec<String>, TryFallback)> {
    let Some(last) = entries.pop().filter(|_| !entries.is_empty()) else {
        r.error(
            at,
            "needs the paths to try and what to do when none is there, such as [\"$uri\", \
             \"$uri/\", \"=404\"]",
        );
        return None;
    };
    let mut valid = true;
    for entry in &entries {
        let rest = entry.replace("$uri", "");
        if !entry.starts_with('/') && !entry.starts_with("$uri") || rest.contains('$') {
            r.error(
                at,
                format!(
                    "{entry:?}: a path to try starts with / or $uri, and $uri is its only variable"
                ),
            );
            valid = false;
        }
    }
    let fallback = if let Some(code) = last.strip_prefix('=') {
        match code.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => TryFallback::Status(code),
            _ => {
                r.error(at, format!("{last:?}: a status is =100 to =599"));
                return None;
            }
        }
    } else if let Some(name) = last.strip_prefix('@') {
        TryFallback::Named(name.to_string())
    } else {
        let rest = ["$uri", "$args", "$query_string", "$is_args"]
            .iter()
            .fold(last.clone(), |text, variable| text.replace(variable, ""));
        if !last.starts_with('/') || rest.contains('$') {
            r.error(
                at,
                format!(
                    "{last:?}: the last entry is =CODE, @NAME, or a path (variables $uri, $args, \
                     $is_args)"
                ),
            );
            return None;
        }
        TryFallback::Uri(last)
    };
    valid.then_some((entries, fallback))
}

/// `file_types = { html = "text/html" }`: extensions in lower case, each with a media type.
fn resolve_file_types(
    r: &mut Resolver,
    raw: Option<BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(raw) = raw else {
        return super::FILE_TYPES
            .iter()
            .map(|(extension, media)| (extension.to_string(), media.to_string()))
            .collect();
    };
    let mut types = BTreeMap::new();
    for (extension, media) in raw {
        if http::HeaderValue::from_str(&media).is_err() || media.trim().is_empty() {
            r.error(
                &["proxy", "file_types", extension.as_str()],
                format!("{media:?} is not a media type"),
            );
            continue;
        }
        types.insert(extension.to_ascii_lowercase(), media);
    }
    types
}

/// `rate_limits = [{ zone = "api", burst = 20, nodelay = true }]` at `base`, each naming one of
/// `zones`.
fn resolve_rate_limits(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawRateLimit>>,
    zones: &[String],
) -> Vec<RateLimit> {
    let mut limits = Vec::new();
    for (index, limit) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> {
            base.iter().copied().chain([index.as_str(), key]).collect()
        };
        let Some(zone) = zone_named(r, &at("zone"), limit.zone, zones, "rate_limit_zones") else {
            continue;
        };
        let burst = r.count(&at("burst"), limit.burst.as_ref(), 0, 0..=1_000_000) as u64;
        let nodelay = r.boolean(&at("nodelay"), limit.nodelay.as_ref(), false);
        let delay = r.count(&at("delay"), limit.delay.as_ref(), 0, 0..=1_000_000) as u64;
        if nodelay && limit.delay.is_some() {
            r.error(
                &at("delay"),
                "cannot be given with nodelay (nodelay is delay = burst)",
            );
            continue;
        }
        limits.push(RateLimit {
            zone,
            burst,
            delay: if nodelay { burst } else { delay.min(burst) },
        });
    }
    limits
}

/// `hide_response_headers = ["X-Powered-By"]` at `at`: header names, lowercased.
fn resolve_hidden_headers(r: &mut Resolver, at: &[&str], raw: Option<Vec<String>>) -> Vec<String> {
    let mut names = Vec::new();
    for (index, name) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at: Vec<&str> = at.iter().copied().chain([index.as_str()]).collect();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            r.error(&at, format!("{name:?} is not an HTTP header name"));
            continue;
        }
        names.push(name.to_ascii_lowercase());
    }
    names
}

/// A limit's `zone` at `at`: one of `zones`, the names of `proxy.{key}`; `None` when not (said).
fn zone_named(
    r: &mut Resolver,
    at: &[&str],
    zone: Option<String>,
    zones: &[String],
    key: &str,
) -> Option<String> {
    match zone {
        Some(zone) if zones.contains(&zone) => Some(zone),
        Some(zone) => {
            r.error(
                at,
                format!("{zone:?} is not one of proxy.{key} ({})", zones.join(", ")),
            );
            None
        }
        None => {
            r.error(at, format!("is required: a zone of proxy.{key}"));
            None
        }
    }
}

/// `concurrency_limits = [{ zone = "addr", max = 10 }]` at `base`, each naming one of `zones`.
fn resolve_concurrency_limits(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawConcurrencyLimit>>,
    zones: &[String],
) -> Vec<ConcurrencyLimit> {
    let mut limits = Vec::new();
    for (index, limit) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> {
            base.iter().copied().chain([index.as_str(), key]).collect()
        };
        let Some(zone) = zone_named(r, &at("zone"), limit.zone, zones, "concurrency_limit_zones")
        else {
            continue;
        };
        if limit.max.is_none() {
            r.error(&at("max"), "is required: the requests in flight at most");
            continue;
        }
        let max = r.count(&at("max"), limit.max.as_ref(), 1, 1..=65_535);
        limits.push(ConcurrencyLimit {
            zone,
            max: u32::try_from(max).unwrap_or(1),
        });
    }
    limits
}

/// The status of a request a rate or concurrency limit refuses: 400 to 599, nginx's range.
fn limit_status(r: &mut Resolver, at: &[&str], value: Option<&Scalar>, default: u16) -> u16 {
    let status = r.count(at, value, usize::from(default), 400..=599);
    u16::try_from(status).unwrap_or(default)
}

/// `expires = "30d"` at `at`, else `inherited`.
fn resolve_expires(
    r: &mut Resolver,
    at: &[&str],
    text: Option<&str>,
    inherited: Option<Expires>,
) -> Option<Expires> {
    match text.map(Expires::parse) {
        None => inherited,
        Some(Ok(expires)) => expires,
        Some(Err(why)) => {
            r.error(at, why);
            None
        }
    }
}

/// `limit_except = { methods = ["GET"], access_rules = ["deny all"] }` at `base`.
fn resolve_limit_except(
    r: &mut Resolver,
    base: &[&str],
    raw: raw::RawLimitExcept,
) -> Option<LimitExcept> {
    let at = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
    let methods = raw.methods.unwrap_or_default();
    if methods.is_empty() {
        r.error(
            &at("methods"),
            "is required: the methods let through (\"GET\" brings \"HEAD\")",
        );
        return None;
    }
    let mut upper = Vec::new();
    for method in methods {
        let name = method.to_ascii_uppercase();
        if name.is_empty() || http::Method::from_bytes(name.as_bytes()).is_err() {
            r.error(&at("methods"), format!("{method:?} is not an HTTP method"));
            return None;
        }
        upper.push(name);
    }
    if raw.access_rules.is_none() {
        r.error(
            &at("access_rules"),
            "is required: the rules other methods pass (\"deny all\")",
        );
        return None;
    }
    let access_rules = resolve_access_rules(r, &at("access_rules"), raw.access_rules);
    Some(LimitExcept {
        methods: upper,
        access_rules,
    })
}

/// `access_rules = ["allow 10.0.0.0/8", "deny all"]` at `base`.
fn resolve_access_rules(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<String>>,
) -> Vec<AccessRule> {
    let mut rules = Vec::new();
    for (index, text) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at: Vec<&str> = base.iter().copied().chain([index.as_str()]).collect();
        match AccessRule::parse(&text) {
            Ok(rule) => rules.push(rule),
            Err(why) => r.error(&at, why),
        }
    }
    rules
}

/// `cookie_flags = [{ cookie = "session", flags = ["secure", "samesite=lax"] }]` at `base`.
fn resolve_cookie_flags(
    r: &mut Resolver,
    base: &[&str],
    raw: Option<Vec<raw::RawCookieRule>>,
) -> Vec<CookieRule> {
    let mut rules = Vec::new();
    for (index, rule) in raw.unwrap_or_default().into_iter().enumerate() {
        let index = index.to_string();
        let at = |key: &'static str| -> Vec<&str> {
            base.iter().copied().chain([index.as_str(), key]).collect()
        };
        let cookie = match rule.cookie.map(|c| c.trim().to_string()) {
            Some(cookie) if !cookie.is_empty() => cookie,
            _ => {
                r.error(
                    &at("cookie"),
                    "is required: a cookie's name, or ~REGEX (`~` alone: every cookie)",
                );
                continue;
            }
        };
        if let Some(pattern) = cookie.strip_prefix('~').filter(|p| !p.is_empty())
            && let Err(why) = super::regex_for(pattern, false)
        {
            r.error(&at("cookie"), format!("{pattern}: {why}"));
            continue;
        }
        let mut flags = Vec::new();
        let mut valid = true;
        for text in rule.flags.unwrap_or_default() {
            match CookieFlag::parse(text.trim()) {
                Some(flag) => flags.push(flag),
                None => {
                    r.error(
                        &at("flags"),
                        format!(
                            "{text:?} is not one of secure, nosecure, httponly, nohttponly, \
                             samesite=strict, samesite=lax, samesite=none, nosamesite"
                        ),
                    );
                    valid = false;
                }
            }
        }
        if valid && flags.is_empty() {
            r.error(
                &at("flags"),
                "is required: at least one flag, such as \"secure\"",
            );
            continue;
        }
        if valid {
            rules.push(CookieRule { cookie, flags });
        }
    }
    rules
}

/// `basic_auth_realm` and `basic_auth_file` as written at one level.
#[derive(Default)]
struct RawAuth {
    realm: Option<String>,
    file: Option<String>,
}

/// Basic authentication at the level `base` (`proxy`, or a route that inherits each key it
/// leaves out from `outer`), as nginx's `auth_basic` and `auth_basic_user_file`: a realm of
/// `off` asks for nothing, and a file without a realm asks for nothing either.
fn resolve_basic_auth(
    r: &mut Resolver,
    base: &[&str],
    own: &RawAuth,
    outer: &RawAuth,
) -> Option<BasicAuth> {
    let at = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
    let (realm, realm_at) = match (&own.realm, &outer.realm) {
        (Some(realm), _) => (realm.trim(), at("basic_auth_realm")),
        (None, Some(realm)) => (realm.trim(), vec!["proxy", "basic_auth_realm"]),
        (None, None) => return None,
    };
    if realm == "off" {
        return None;
    }
    // Sent as written in `WWW-Authenticate` (UTF-8 as nginx sends it): no control character.
    if realm.is_empty() || realm.chars().any(char::is_control) {
        r.error(
            &realm_at,
            "must be printable text, not empty (\"off\" asks for no credentials)",
        );
        return None;
    }
    let file = match (&own.file, &outer.file) {
        (Some(file), _) => r.non_empty_path(&at("basic_auth_file"), Some(file)),
        (None, Some(file)) => r.non_empty_path(&["proxy", "basic_auth_file"], Some(file)),
        (None, None) => {
            r.error(
                &realm_at,
                "needs basic_auth_file, the htpasswd file of the users it lets in",
            );
            return None;
        }
    }?;
    Some(BasicAuth {
        realm: realm.to_string(),
        user_file: file,
    })
}

/// `telemetry { cert_labels = { "/path/tls.crt" = "web" } }`. A path no template can write
/// (not a destination, and not named in any template's text) is warned about: it would never
/// label anything.
fn resolve_cert_labels(
    r: &mut Resolver,
    raw: Option<BTreeMap<String, String>>,
    templates: &[Template],
) -> BTreeMap<PathBuf, String> {
    let mut labels = BTreeMap::new();
    let texts: Vec<String> = templates
        .iter()
        .filter_map(|template| match &template.source {
            TemplateSource::Contents(text) => Some(text.clone()),
            // Unreadable here is reported by the template checks, not this one.
            TemplateSource::File(path) => std::fs::read_to_string(path).ok(),
        })
        .collect();
    for (path, label) in raw.unwrap_or_default() {
        let key = ["telemetry", "cert_labels", path.as_str()];
        if path.is_empty() || label.trim().is_empty() {
            r.error(&key, "needs a file path and a non-empty label");
            continue;
        }
        let written = templates
            .iter()
            .any(|template| template.destination == Path::new(&path))
            || texts.iter().any(|text| text.contains(path.as_str()));
        if !written {
            r.warn(
                &key,
                "no template writes this file (not a destination, not named in a template): \
                 the label is never used",
            );
        }
        labels.insert(PathBuf::from(path), label);
    }
    labels
}

/// A command given as one string, as Vault Agent decodes it into a list: split at its commas
/// (`"/usr/bin/touch,/tmp/x"` is the program and its argument, run without a shell, checked
/// with `bao agent`); a string without one stays a string.
fn split_at_commas(raw: raw::StringOrList) -> raw::StringOrList {
    match raw {
        raw::StringOrList::One(line) if line.contains(',') => {
            raw::StringOrList::Many(line.split(',').map(str::to_string).collect())
        }
        other => other,
    }
}

/// A template's `command` or `exec.command` as consul-template runs it: one string (or a list
/// of one) with spaces goes to `sh -c`; a single word or a longer list is an argument vector,
/// run without a shell. Empty means none.
fn command_from(raw: raw::StringOrList) -> Option<TemplateCommand> {
    let argv = match raw {
        raw::StringOrList::One(line) => vec![line],
        raw::StringOrList::Many(argv) => argv,
    };
    match argv.as_slice() {
        [] => None,
        [first, ..] if first.trim().is_empty() => None,
        [line] if line.split_whitespace().count() > 1 => Some(TemplateCommand::Shell(line.clone())),
        [word] => Some(TemplateCommand::Argv(vec![word.trim().to_string()])),
        _ => Some(TemplateCommand::Argv(argv)),
    }
}

/// Which database [`Resolver::owner`] looks a name up in.
#[derive(Clone, Copy)]
enum Owner {
    User,
    Group,
}

/// A path built from owned parts, borrowed as the `&[&str]` the resolver takes.
fn strs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::vault_agent_prefixes;

    /// `metrics_prefix` gives the Vault Agent counters' first word as OpenBao Agent's output
    /// shows it (each checked with `bao agent`); none, or an empty one, gives both defaults.
    #[test]
    fn metrics_prefix_names_vault_agents_counters_as_openbao_agent_names_them() {
        assert_eq!(vault_agent_prefixes(None), ["vault", "bao"]);
        assert_eq!(vault_agent_prefixes(Some("")), ["vault", "bao"]);
        assert_eq!(vault_agent_prefixes(Some("team.a-b")), ["team_a_b"]);
        assert_eq!(vault_agent_prefixes(Some("9x")), ["_x"]);
        assert_eq!(vault_agent_prefixes(Some("my app/v2:x")), ["my_app_v2:x"]);
    }
}

#[cfg(test)]
mod command_tests {
    use super::{command_from, split_at_commas};
    use crate::config::TemplateCommand;
    use crate::config::raw::StringOrList;

    /// A command string is read as Vault Agent reads it (checked with `bao agent`): split at
    /// its commas into a program and its arguments, run without a shell; without a comma, a
    /// line with spaces goes to `sh -c`.
    #[test]
    fn a_command_string_is_split_at_commas_as_vault_agent_reads_it() {
        let read = |line: &str| command_from(split_at_commas(StringOrList::One(line.into())));
        assert_eq!(
            read("/usr/bin/touch,/tmp/x"),
            Some(TemplateCommand::Argv(vec![
                "/usr/bin/touch".into(),
                "/tmp/x".into()
            ]))
        );
        assert_eq!(
            read("kill -HUP $(pidof nginx)"),
            Some(TemplateCommand::Shell("kill -HUP $(pidof nginx)".into()))
        );
        let list = StringOrList::Many(vec!["printf".into(), "a,b".into()]);
        assert_eq!(
            command_from(split_at_commas(list)),
            Some(TemplateCommand::Argv(vec!["printf".into(), "a,b".into()])),
            "a list is taken as it is"
        );
    }
}
