//! `pki-sidecar validate`: a one-screen summary of what each role will do with a config, and
//! the checks only a look at the disk and the templates' dry runs can make.
//!
//! It works on an already-checked [`Config`]; it never opens a listener or calls Vault.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{AuthKind, Config, ConfigWarning, Role, TemplateCommand, TemplateSource};
use crate::timefmt::format_duration;

/// Warnings about a config that loads: two templates writing one file, proxy files no
/// template writes, key files a restart would empty, CA files that do not exist.
pub fn checks(config: &Config) -> Vec<ConfigWarning> {
    let origin = config.sources.last().map_or_else(
        || "(no config file)".to_string(),
        |p| p.display().to_string(),
    );
    let mut warnings = Vec::new();
    let mut warn = |path: String, message: String| {
        warnings.push(ConfigWarning {
            origin: origin.clone(),
            path,
            message,
        });
    };
    // Which template writes which file, from the destinations and the dry runs.
    let mut writers: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let mut writes_a_key = false;
    for (index, template) in config.templates.iter().enumerate() {
        let at = format!("template[{index}]");
        writers
            .entry(template.destination.clone())
            .or_default()
            .push(format!("{at}.destination"));
        match crate::agent::render::dry_run(template) {
            Ok(dry) => {
                writes_a_key |= !dry.key_files.is_empty();
                for path in dry.written {
                    writers
                        .entry(path)
                        .or_default()
                        .push(format!("{at} writeToFile"));
                }
                for path in dry.emptied_on_reuse {
                    warn(
                        at.clone(),
                        format!(
                            "writes the private key to {} even when .Data.Key is empty: at a \
                             restart the certificate is reused from the destination and the key \
                             file would be emptied; guard the write with {{{{ if .Data.Key }}}}",
                            path.display()
                        ),
                    );
                }
            }
            Err(err) => warn(at, format!("a dry render failed: {err:#}")),
        }
    }
    for (path, by) in &writers {
        if by.len() > 1 {
            warn(
                by[0].split(' ').next().unwrap_or_default().to_string(),
                format!(
                    "{} is written by more than one template ({}); the last write wins",
                    path.display(),
                    by.join(", ")
                ),
            );
        }
    }
    // The proxy's files matter when there is a proxy block, or when the templates issue a
    // certificate (the seed's layout, the proxy on its default paths).
    if !config.templates.is_empty() && (config.proxy_configured || writes_a_key) {
        let proxy = &config.proxy;
        for (key, file) in [
            ("cert_file", &proxy.cert_file),
            ("key_file", &proxy.key_file),
        ] {
            if !writers.contains_key(file) {
                warn(
                    format!("proxy.{key}"),
                    format!(
                        "no template writes {} (neither a destination nor a writeToFile): the \
                         proxy would serve a file nothing renews",
                        file.display()
                    ),
                );
            }
        }
    }
    // The seed's Pod: the proxy is the app's only client. An app listening beyond loopback
    // answers plain HTTP on the Pod IP, next to the proxy's TLS.
    if config.proxy_configured && !config.app.listen.ip().is_loopback() {
        warn(
            "app.listen".to_string(),
            format!(
                "{} is reachable from outside the Pod: plain HTTP to the Pod IP bypasses the \
                 proxy's TLS; listen on 127.0.0.1:{} (the default), as the proxy is the app's \
                 only client, and probe the app on app.metrics_listen",
                config.app.listen,
                config.app.listen.port()
            ),
        );
    }
    let mut must_exist = |path: &str, file: Option<&Path>, what: &str| {
        if let Some(file) = file
            && !file.exists()
        {
            warn(
                path.to_string(),
                format!("{what} {} does not exist (yet)", file.display()),
            );
        }
    };
    let vault = &config.vault;
    must_exist("vault.ca_cert", vault.ca_cert.as_deref(), "the CA file");
    must_exist(
        "vault.ca_path",
        vault.ca_path.as_deref(),
        "the CA directory",
    );
    must_exist(
        "vault.client_cert",
        vault.client_cert.as_deref(),
        "the client certificate",
    );
    must_exist(
        "vault.client_key",
        vault.client_key.as_deref(),
        "the client key",
    );
    must_exist(
        "proxy.client_ca_file",
        config
            .proxy
            .client_auth
            .as_ref()
            .map(|c| c.ca_file.as_path()),
        "the client CA file",
    );
    warnings
}

/// The summary for `roles`, as printed by `validate`.
pub fn summary(config: &Config, roles: &[Role]) -> String {
    let mut out = String::new();
    let files: Vec<String> = config
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let _ = writeln!(
        out,
        "{}: valid",
        if files.is_empty() {
            "(defaults)".to_string()
        } else {
            files.join(", ")
        }
    );
    for role in roles {
        match role {
            Role::Agent => agent(&mut out, config),
            Role::Proxy => proxy(&mut out, config),
            Role::App => app(&mut out, config),
        }
    }
    out
}

fn agent(out: &mut String, config: &Config) {
    let _ = writeln!(out, "agent:");
    let Some(auto_auth) = &config.auto_auth else {
        let _ = writeln!(
            out,
            "  not configured (no auto_auth block): `agent` would refuse to start"
        );
        return;
    };
    let vault = &config.vault;
    let mut tls = Vec::new();
    if let Some(ca) = &vault.ca_cert {
        tls.push(format!("CA {}", ca.display()));
    }
    if let Some(ca) = &vault.ca_path {
        tls.push(format!("CA dir {}", ca.display()));
    }
    if let Some(cert) = &vault.client_cert {
        tls.push(format!("client cert {}", cert.display()));
    }
    if vault.tls_skip_verify {
        tls.push("TLS VERIFICATION DISABLED".to_string());
    }
    if let Some(name) = &vault.tls_server_name {
        tls.push(format!("server name {name}"));
    }
    if let Some(namespace) = &vault.namespace {
        tls.push(format!("namespace {namespace}"));
    }
    let _ = writeln!(
        out,
        "  vault     {}{}{}",
        vault.address,
        if tls.is_empty() { "" } else { ", " },
        tls.join(", ")
    );
    let method = &auto_auth.method;
    let detail = match &method.kind {
        AuthKind::Kubernetes { role, token_path } => {
            format!("role {role}, token {}", token_path.display())
        }
        AuthKind::AppRole {
            role_id_file_path, ..
        } => format!("role_id from {}", role_id_file_path.display()),
        AuthKind::Jwt { path, role } => format!("role {role}, JWT from {}", path.display()),
        AuthKind::TokenFile { token_file_path } => {
            format!("token from {}", token_file_path.display())
        }
        AuthKind::Cert {
            name, client_cert, ..
        } => format!(
            "role {}, client certificate {}",
            name.as_deref().unwrap_or("(any)"),
            client_cert.as_ref().map_or_else(
                || "of vault {} (client_cert)".to_string(),
                |path| path.display().to_string()
            )
        ),
    };
    let _ = writeln!(
        out,
        "  login     {} at {}: {detail}; retry {}..{}{}",
        method.kind.name(),
        method.mount_path,
        format_duration(method.min_backoff),
        format_duration(method.max_backoff),
        if method.exit_on_err {
            ", exit on error"
        } else {
            ""
        }
    );
    for sink in &auto_auth.sinks {
        let _ = writeln!(
            out,
            "  token     -> {} (mode {:04o})",
            sink.path.display(),
            sink.mode
        );
    }
    for (index, template) in config.templates.iter().enumerate() {
        let source = match &template.source {
            TemplateSource::Contents(text) => format!("inline ({} bytes)", text.len()),
            TemplateSource::File(path) => path.display().to_string(),
        };
        let mut perms = template
            .perms
            .map_or(String::new(), |p| format!(" (perms {p:04o})"));
        if template.user.is_some() || template.group.is_some() {
            let id = |id: Option<u32>| id.map_or("-".to_string(), |id| id.to_string());
            perms.push_str(&format!(
                " (owner {}:{})",
                id(template.user),
                id(template.group)
            ));
        }
        let _ = writeln!(
            out,
            "  template[{index}] {source} -> {}{perms}",
            template.destination.display()
        );
        if let Some(command) = &template.command {
            let text = match command {
                TemplateCommand::Shell(line) => line.clone(),
                TemplateCommand::Argv(argv) => argv.join(" "),
            };
            let how = match crate::agent::builtin::parse(command) {
                Ok(_) => "run by the agent itself, no shell; ",
                Err(_) => "",
            };
            let _ = writeln!(
                out,
                "            then run: {text} ({how}timeout {})",
                format_duration(template.command_timeout)
            );
        }
    }
    for env in &config.env_templates {
        let source = match &env.source {
            TemplateSource::Contents(text) => format!("inline ({} bytes)", text.len()),
            TemplateSource::File(path) => path.display().to_string(),
        };
        let _ = writeln!(out, "  env       {source} -> ${}", env.name);
    }
    if let Some(exec) = &config.exec {
        let text = match &exec.command {
            TemplateCommand::Shell(line) => format!("sh -c {line:?}"),
            TemplateCommand::Argv(argv) => argv.join(" "),
        };
        let signal = nix::sys::signal::Signal::try_from(exec.restart_stop_signal)
            .map_or_else(|_| exec.restart_stop_signal.to_string(), |s| s.to_string());
        let _ = writeln!(
            out,
            "  exec      {text} ({}; stopped with {signal})",
            if exec.restart_on_secret_changes {
                "restarted when a variable changes"
            } else {
                "never restarted"
            }
        );
    }
    let _ = writeln!(
        out,
        "  renew     at {:.0}% of each certificate's lifetime",
        config.template_config.lease_renewal_threshold * 100.0
    );
    if config.exit_after_auth {
        let _ = writeln!(out, "  exit      after the first login (exit_after_auth)");
    }
    if let Some(grace) = config.revoke_on_shutdown {
        let _ = writeln!(
            out,
            "  revoke    the token {} after a stop signal (revoke_token_on_shutdown)",
            format_duration(grace)
        );
    }
    if let Some(pid) = &config.pid_file {
        let _ = writeln!(out, "  pid file  {}", pid.display());
    }
    if let Some(api_proxy) = &config.api_proxy {
        let token = match api_proxy.use_auto_auth_token {
            crate::config::AutoAuthToken::Off => "the client's own token",
            crate::config::AutoAuthToken::IfMissing => "the agent's token if the request has none",
            crate::config::AutoAuthToken::Force => "always the agent's token (force)",
        };
        for listener in &api_proxy.listeners {
            let header = if listener.require_request_header {
                ", X-Vault-Request required"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  api proxy http://{} -> {}, {token}{header}, no cache",
                listener.address, config.vault.address
            );
        }
    }
    let _ = writeln!(
        out,
        "  metrics   http://{}/metrics",
        config.telemetry.metrics_listen
    );
}

fn proxy(out: &mut String, config: &Config) {
    let proxy = &config.proxy;
    let _ = writeln!(out, "proxy:");
    // A route of `/` (files, an answer) takes what no other route takes: no request reaches
    // `upstream` then.
    let to = match proxy.routes.iter().find(|route| route.path.is_everything()) {
        Some(_) => "the route of / below".to_string(),
        None => upstream_text(&proxy.upstream, &proxy.upstream_target),
    };
    let _ = write!(out, "  listen    https://{}", proxy.listen);
    for also in &proxy.also_listen {
        let _ = write!(out, ", https://{also}");
    }
    let _ = writeln!(out, " -> {to}");
    let _ = writeln!(
        out,
        "  cert      {} + key {}",
        proxy.cert_file.display(),
        proxy.key_file.display()
    );
    let _ = writeln!(out, "  metrics   http://{}/metrics", proxy.metrics_listen);
    if !proxy.session_tickets {
        let _ = writeln!(
            out,
            "  sessions  no stateless tickets (session_tickets = false): the session cache only"
        );
    }
    if proxy.tls13_only {
        let _ = writeln!(out, "  tls       1.3 only (tls_min_version = \"tls13\")");
    }
    for fixed in &proxy.fixed_responses {
        let what = match (&fixed.location, fixed.body.len()) {
            (Some(url), _) => format!(" {url}"),
            (None, 0) => String::new(),
            (None, length) => format!(" ({length} bytes of {})", fixed.content_type),
        };
        let _ = writeln!(
            out,
            "  answers   {} -> {}{what}, not forwarded",
            fixed.path, fixed.status
        );
    }
    for conditional in &proxy.conditional_answers {
        let _ = writeln!(
            out,
            "  answers   {} if {} (conditional_answers), before any location",
            conditional.answer.status, conditional.when.text
        );
    }
    for rule in &proxy.rewrites {
        let _ = writeln!(
            out,
            "  rewrite   {} (rewrites), before any location",
            rewrite_text(rule)
        );
    }
    for rule in &proxy.cookie_flags {
        let _ = writeln!(
            out,
            "  cookies   {} gets {} (cookie_flags)",
            rule.cookie,
            cookie_flags(&rule.flags)
        );
    }
    for limit in &proxy.rate_limits {
        let rate = proxy
            .rate_limit_zones
            .get(&limit.zone)
            .copied()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  limits    {} a second per client address, {} more at once{} (zone {}), then {} \
             (rate_limits)",
            rate as f64 / 1000.0,
            limit.burst,
            if limit.delay < limit.burst {
                format!(", {} of them without waiting", limit.delay)
            } else {
                String::new()
            },
            limit.zone,
            proxy.rate_limit_status
        );
    }
    if let Some(except) = &proxy.limit_except {
        let _ = writeln!(
            out,
            "  methods   other than {} pass {} (limit_except)",
            except.methods.join(" "),
            access_rules(&except.access_rules)
        );
    }
    if !proxy.hide_response_headers.is_empty() {
        let _ = writeln!(
            out,
            "  hidden    {} of the app's responses (hide_response_headers)",
            proxy.hide_response_headers.join(" ")
        );
    }
    for map in &proxy.maps {
        let _ = writeln!(out, "  map       {} (maps)", map.summary());
    }
    for page in &proxy.error_pages {
        let _ = writeln!(out, "  errors    {} (error_pages)", error_page_text(page));
    }
    if proxy.upstream.scheme_str() == Some("https") {
        let _ = writeln!(
            out,
            "  upstream  TLS: {} (upstream_tls)",
            upstream_tls_text(&proxy.upstream_tls)
        );
    }
    if let Some(path) = &proxy.auth_request {
        let _ = writeln!(
            out,
            "  auth      each request asks {path} first: 2xx lets it in, 401 and 403 refuse it (auth_request)"
        );
    }
    if proxy.intercept_errors {
        let _ = writeln!(
            out,
            "  errors    the app's own of 300 and above go through error_pages (intercept_errors)"
        );
    }
    for limit in &proxy.concurrency_limits {
        let per = match proxy.concurrency_limit_zones.get(&limit.zone) {
            Some(crate::config::ConcurrencyKey::Server) => "for all clients together",
            _ => "per client address",
        };
        let _ = writeln!(
            out,
            "  limits    {} requests in flight {per} (zone {}), then {} (concurrency_limits)",
            limit.max, limit.zone, proxy.concurrency_limit_status
        );
    }
    if let Some(expires) = proxy.expires {
        let _ = writeln!(
            out,
            "  caching   {} on 2xx and 3xx responses (expires)",
            expires_text(expires)
        );
    }
    if let Some(gzip) = &proxy.gzip {
        let mut types = vec!["text/html".to_string()];
        types.extend(gzip.types.iter().filter(|t| *t != "text/html").cloned());
        let _ = writeln!(
            out,
            "  gzip      {} from {} bytes, level {}{}{}{} (gzip)",
            types.join(" "),
            gzip.min_length,
            gzip.level,
            if gzip.vary { ", Vary" } else { "" },
            if gzip.proxied.is_empty() {
                ", not through other proxies (Via)"
            } else {
                ""
            },
            if gzip.http10 { ", HTTP/1.0 too" } else { "" },
        );
    }
    if let Some(names) = &proxy.server_names {
        let others = match names.unknown {
            crate::config::UnknownHost::Close => "closed without a response".to_string(),
            crate::config::UnknownHost::Status(code) => format!("answered {code}"),
        };
        let _ = writeln!(
            out,
            "  hosts     {}; requests for others {others} (server_names, unknown_host){}",
            names.names.join(" "),
            if names.reject_unknown_sni {
                "; handshakes for others refused (reject_unknown_sni)"
            } else {
                ""
            }
        );
    }
    if !proxy.access_rules.is_empty() {
        let _ = writeln!(
            out,
            "  clients   {} (access_rules)",
            access_rules(&proxy.access_rules)
        );
    }
    if let Some(auth) = &proxy.basic_auth {
        let _ = writeln!(
            out,
            "  auth      credentials of realm {:?} from {} (basic_auth_realm, basic_auth_file)",
            auth.realm,
            auth.user_file.display()
        );
    }
    for route in &proxy.routes {
        let mut differs = Vec::new();
        for conditional in &route.conditional_answers {
            differs.push(format!(
                "{} if {}",
                conditional.answer.status, conditional.when.text
            ));
        }
        for rule in &route.rewrites {
            differs.push(format!("rewrite {}", rewrite_text(rule)));
        }
        if route.upstream_response_timeout != proxy.upstream_response_timeout {
            differs.push(format!(
                "response timeout {}",
                crate::timefmt::format_duration(route.upstream_response_timeout)
            ));
        }
        if route.upstream_connect_timeout != proxy.upstream_connect_timeout {
            differs.push(format!(
                "connect timeout {}",
                crate::timefmt::format_duration(route.upstream_connect_timeout)
            ));
        }
        if route.max_request_body != proxy.max_request_body {
            differs.push(match route.max_request_body {
                Some(bytes) => format!("bodies up to {bytes} bytes"),
                None => "bodies of any size".to_string(),
            });
        }
        if route.request_buffering != proxy.request_buffering {
            differs.push(match route.request_buffering {
                Some(bytes) => format!("bodies without a length held up to {bytes} bytes"),
                None => "bodies streamed as they come".to_string(),
            });
        }
        if route.request_headers != proxy.request_headers {
            differs.push("its own request_headers".to_string());
        }
        if route.redirect_rewrite != proxy.redirect_rewrite {
            differs.push("its own redirect_rewrite".to_string());
        }
        if route.cookie_flags != proxy.cookie_flags {
            differs.push("its own cookie_flags".to_string());
        }
        if (&route.rate_limits, route.rate_limit_status)
            != (&proxy.rate_limits, proxy.rate_limit_status)
        {
            differs.push("its own rate_limits".to_string());
        }
        if (&route.concurrency_limits, route.concurrency_limit_status)
            != (&proxy.concurrency_limits, proxy.concurrency_limit_status)
        {
            differs.push("its own concurrency_limits".to_string());
        }
        if let Some(except) = &route.limit_except {
            differs.push(format!(
                "methods other than {} pass {}",
                except.methods.join(" "),
                access_rules(&except.access_rules)
            ));
        }
        if route.hide_response_headers != proxy.hide_response_headers {
            differs.push("its own hide_response_headers".to_string());
        }
        if route.error_pages != proxy.error_pages {
            differs.push("its own error_pages".to_string());
        }
        if route.intercept_errors != proxy.intercept_errors {
            differs.push(if route.intercept_errors {
                "the app's errors through error_pages".to_string()
            } else {
                "the app's errors as they are".to_string()
            });
        }
        if route.internal {
            differs.push("internal requests only".to_string());
        }
        if route.upstream.scheme_str() == Some("https") && route.upstream_tls != proxy.upstream_tls
        {
            differs.push(format!("TLS: {}", upstream_tls_text(&route.upstream_tls)));
        }
        if route.auth_request != proxy.auth_request {
            differs.push(match &route.auth_request {
                Some(path) => format!("asks {path} first (auth_request)"),
                None => "no auth_request".to_string(),
            });
        }
        if route.expires != proxy.expires {
            differs.push(match route.expires {
                Some(expires) => expires_text(expires),
                None => "no Expires".to_string(),
            });
        }
        let names = |headers: &[(String, String)]| {
            headers
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !route.response_headers.is_empty() {
            differs.push(format!("its own {}", names(&route.response_headers)));
        }
        if !route.response_headers_on_success.is_empty() {
            differs.push(format!(
                "its own {} on 2xx and 3xx",
                names(&route.response_headers_on_success)
            ));
        }
        if route.access_rules != proxy.access_rules {
            differs.push(if route.access_rules.is_empty() {
                "every address".to_string()
            } else {
                access_rules(&route.access_rules)
            });
        }
        if route.basic_auth != proxy.basic_auth {
            differs.push(match &route.basic_auth {
                Some(auth) => format!(
                    "credentials of realm {:?} from {}",
                    auth.realm,
                    auth.user_file.display()
                ),
                None => "no credentials asked".to_string(),
            });
        }
        let to = match (&route.files, &route.answer) {
            (_, Some(answer)) => format!(
                "answers {}{}, not forwarded",
                answer.status,
                answer
                    .location
                    .as_deref()
                    .map(|url| format!(" {url}"))
                    .unwrap_or_default()
            ),
            (Some(files), None) => format!(
                "files of {} ({}; index {}; else {}{})",
                files.dir.display(),
                if files.alias { "alias" } else { "root" },
                files.index.join(" "),
                files.default_type,
                match &files.try_files {
                    None => String::new(),
                    Some((tried, fallback)) => format!(
                        "; try_files {}, else {}",
                        tried.join(" "),
                        match fallback {
                            crate::config::TryFallback::Status(code) => format!("={code}"),
                            crate::config::TryFallback::Uri(uri) => uri.clone(),
                            crate::config::TryFallback::Named(name) => format!("@{name}"),
                        }
                    ),
                }
            ),
            (None, None) if crate::config::AccessRule::deny_everyone(&route.access_rules) => {
                "403, forwards nothing".to_string()
            }
            (None, None) if route.stub_status => {
                "nginx's stub_status page of the proxy's counters, not forwarded".to_string()
            }
            (None, None) => upstream_text(&route.upstream, &route.upstream_target),
        };
        let _ = writeln!(
            out,
            "  route     {} -> {to}{}{}",
            route.path,
            if differs.is_empty() { "" } else { ", " },
            differs.join(", ")
        );
    }
    if proxy.absolute_redirects {
        let _ = writeln!(
            out,
            "  redirects to a path made absolute: https://HOST{}/PATH (absolute_redirects)",
            if proxy.port_in_redirects {
                "[:PORT unless 443]"
            } else {
                ""
            }
        );
    }
    if proxy.append_forwarded_for {
        let _ = writeln!(
            out,
            "  request   any client's forwarding list kept, the peer appended (append_forwarded_for)"
        );
    }
    if proxy.drop_underscore_headers {
        let _ = writeln!(
            out,
            "  request   headers named with an underscore dropped (drop_underscore_headers)"
        );
    }
    for (name, value) in &proxy.request_headers {
        let _ = if value.is_empty() {
            writeln!(out, "  request   {name} removed (request_headers)")
        } else {
            writeln!(out, "  request   {name}: {value} (request_headers)")
        };
    }
    for rewrite in &proxy.redirect_rewrite {
        let _ = writeln!(
            out,
            "  redirects {} -> {} in Location and Refresh (redirect_rewrite)",
            rewrite.from, rewrite.to
        );
    }
    if let Some(bytes) = proxy.max_request_body {
        let size = match bytes {
            b if b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
            b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
            b if b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
            b => format!("{b} bytes"),
        };
        let _ = writeln!(
            out,
            "  bodies    at most {size} (413 beyond: max_request_body)"
        );
    }
    let _ = writeln!(
        out,
        "  access    {}",
        if proxy.access_log {
            "a log line per request (access_log)"
        } else {
            "off (access_log = false)"
        }
    );
    let _ = writeln!(
        out,
        "  drain     {} after SIGTERM",
        format_duration(proxy.shutdown_grace)
    );
}

fn app(out: &mut String, config: &Config) {
    let app = &config.app;
    let _ = writeln!(out, "app:");
    let _ = writeln!(out, "  listen    http://{} (hello world)", app.listen);
    let _ = writeln!(out, "  metrics   http://{}/metrics", app.metrics_listen);
    let _ = writeln!(
        out,
        "  drain     {} after SIGTERM",
        format_duration(app.shutdown_grace)
    );
}

/// `cookie_flags`' flags as nginx writes them.
/// What `expires` sets: `Expires in 30d (max-age=2592000)`.
fn expires_text(expires: crate::config::Expires) -> String {
    use crate::config::Expires;
    match expires {
        Expires::Epoch => "Expires in 1970 (no-cache)".to_string(),
        Expires::Max => "Expires in 2037 (max-age=315360000)".to_string(),
        Expires::After(seconds) if seconds < 0 => {
            format!("Expires {}s ago (no-cache)", seconds.unsigned_abs())
        }
        Expires::After(seconds) => format!(
            "Expires in {} (max-age={seconds})",
            crate::timefmt::format_duration(std::time::Duration::from_secs(seconds.unsigned_abs()))
        ),
    }
}

/// A rewrite rule: what it matches, what it makes, and what then.
fn rewrite_text(rule: &crate::config::RewriteRule) -> String {
    use crate::config::RewriteFlag;
    let then = match rule.flag {
        RewriteFlag::Next => "the next rules, then the location looked up again",
        RewriteFlag::Last => "the location looked up again",
        RewriteFlag::Break => "in this location",
        RewriteFlag::Redirect => "redirected 302",
        RewriteFlag::Permanent => "redirected 301",
    };
    let then = if rule.redirects() && !matches!(rule.flag, RewriteFlag::Permanent) {
        "redirected 302"
    } else {
        then
    };
    format!("{} -> {}, {then}", rule.regex, rule.replacement)
}

/// Where requests go, and what replaces their target (`prefix_rewrite`, `upstream_uri`).
fn upstream_text(upstream: &http::Uri, target: &crate::config::UpstreamTarget) -> String {
    let authority = upstream.authority().map_or("127.0.0.1:80", |a| a.as_str());
    match target {
        crate::config::UpstreamTarget::AsSent => upstream.to_string(),
        crate::config::UpstreamTarget::Prefix { matched, with } => {
            format!("http://{authority}{with} (for {matched}: prefix_rewrite)")
        }
        crate::config::UpstreamTarget::Whole(uri) => {
            format!("http://{authority}{uri} (the whole target: upstream_uri)")
        }
    }
}

/// `allow 10.0.0.0/8, deny all`: the rules up to the first for every address, else with
/// what happens to the rest.
fn access_rules(rules: &[crate::config::AccessRule]) -> String {
    let mut said: Vec<String> = Vec::new();
    for rule in rules {
        said.push(rule.to_string());
        if rule.from.is_none() {
            return said.join(", ");
        }
    }
    said.push("allow the rest".to_string());
    said.join(", ")
}

fn cookie_flags(flags: &[crate::config::CookieFlag]) -> String {
    use crate::config::CookieFlag;
    flags
        .iter()
        .map(|flag| match flag {
            CookieFlag::Secure => "secure".to_string(),
            CookieFlag::NoSecure => "nosecure".to_string(),
            CookieFlag::HttpOnly => "httponly".to_string(),
            CookieFlag::NoHttpOnly => "nohttponly".to_string(),
            CookieFlag::SameSite(value) => format!("samesite={}", value.to_string().to_lowercase()),
            CookieFlag::NoSameSite => "nosamesite".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One of `error_pages`, as `validate` prints it.
fn error_page_text(page: &crate::config::ErrorPage) -> String {
    use crate::config::{ErrorPageStatus, ErrorPageTarget};
    let statuses: Vec<String> = page.statuses.iter().map(u16::to_string).collect();
    let statuses = statuses.join(" ");
    match (&page.page, page.status) {
        (ErrorPageTarget::Redirect(url), status) => {
            let code = match status {
                ErrorPageStatus::Set(code) => code,
                _ => 302,
            };
            format!("{statuses} -> redirect {code} to {url}")
        }
        (ErrorPageTarget::Uri(path), status) => {
            format!("{statuses} -> the page {path}{}", status_text(status))
        }
        (ErrorPageTarget::Named(name), status) => {
            format!("{statuses} -> the route @{name}{}", status_text(status))
        }
    }
}

fn status_text(status: crate::config::ErrorPageStatus) -> String {
    match status {
        crate::config::ErrorPageStatus::Kept => ", with the error's status".to_string(),
        crate::config::ErrorPageStatus::OfPage => ", with the page's status".to_string(),
        crate::config::ErrorPageStatus::Set(code) => format!(", with status {code}"),
    }
}

/// `upstream_tls`, as `validate` prints it.
fn upstream_tls_text(tls: &crate::config::UpstreamTls) -> String {
    let mut parts = vec![match (&tls.verify, &tls.ca_file) {
        (false, _) => "the certificate not verified".to_string(),
        (true, Some(ca)) => format!("verified against {}", ca.display()),
        (true, None) => "verified against the system's CAs".to_string(),
    }];
    if let Some(name) = &tls.server_name {
        parts.push(format!("as {name}"));
    }
    parts.push(
        if tls.send_server_name {
            "SNI sent"
        } else {
            "no SNI"
        }
        .to_string(),
    );
    if let Some((cert, _)) = &tls.client_cert {
        parts.push(format!("client certificate {}", cert.display()));
    }
    parts.join(", ")
}
