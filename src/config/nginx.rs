//! `proxy --nginx-config FILE`: the TLS server of an nginx configuration, read as the proxy's
//! settings, so a Pod that ran nginx in front of its app keeps its ConfigMap.
//!
//! nginx's syntax is read in full (directives, blocks, quoting, comments, `include` with a
//! `*` in the file name), then the one `server` that listens with `ssl` is mapped: `listen`,
//! `ssl_certificate`, `ssl_certificate_key`, client certificates, `location / { proxy_pass }`,
//! timeouts, `Strict-Transport-Security`, the access log, the real-IP trust list and the
//! forwarding headers nginx sets. A directive whose effect the proxy reproduces another way, or
//! that only tunes nginx itself (workers, buffers, ciphers), gets a warning saying so. One
//! that would change what a request or a response is — another `location`, `return`,
//! `add_header`, access control, a rewrite — is an error at its line, since serving without it
//! would not be the same server. Each setting keeps its directive's `FILE:LINE:COL`, so a value
//! the proxy refuses is reported there.

use std::path::{Path, PathBuf};

use figment::value::Value;

use super::error::{ConfigError, ConfigErrors, ConfigWarning};

/// One parsed directive.
#[derive(Debug, Clone)]
struct Directive {
    name: String,
    args: Vec<String>,
    /// `FILE:LINE:COL` of its name.
    at: String,
    block: Option<Vec<Directive>>,
}

/// The settings read from an nginx file: each with its directive's place, the proxy key and
/// the value; and the warnings about what is not carried over.
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    pub settings: Vec<(String, &'static [&'static str], Value)>,
    pub warnings: Vec<ConfigWarning>,
}

/// Nesting limit for `include`, against a file that includes itself.
const INCLUDE_DEPTH: usize = 16;

/// Reads `path` and maps its TLS server.
pub(crate) fn read(path: &Path) -> Result<Mapped, ConfigErrors> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let directives = parse_file(path, &base, 0).map_err(|e| ConfigErrors(vec![e]))?;
    let mut mapper = Mapper::default();
    mapper.top(&directives);
    mapper.finish(path)
}

fn parse_file(path: &Path, base: &Path, depth: usize) -> Result<Vec<Directive>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let tokens = tokenize(&path.display().to_string(), &text)?;
    let mut position = 0;
    let directives = parse_block(path, &tokens, &mut position, false)?;
    expand_includes(directives, base, depth)
}

/// A token and where it starts.
#[derive(Debug)]
struct Token {
    text: String,
    /// `;`, `{` or `}` outside quotes.
    special: bool,
    line: usize,
    column: usize,
}

fn tokenize(file: &str, text: &str) -> Result<Vec<Token>, ConfigError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (1, 0);
    let advance = |c: char, line: &mut usize, column: &mut usize| {
        if c == '\n' {
            *line += 1;
            *column = 0;
        } else {
            *column += 1;
        }
    };
    while let Some(c) = chars.next() {
        advance(c, &mut line, &mut column);
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                while let Some(&next) = chars.peek() {
                    if next == '\n' {
                        break;
                    }
                    chars.next();
                    advance(next, &mut line, &mut column);
                }
            }
            ';' | '{' | '}' => tokens.push(Token {
                text: c.to_string(),
                special: true,
                line,
                column,
            }),
            '"' | '\'' => {
                let (start_line, start_column) = (line, column);
                let mut word = String::new();
                let mut closed = false;
                while let Some(next) = chars.next() {
                    advance(next, &mut line, &mut column);
                    if next == '\\' {
                        if let Some(escaped) = chars.next() {
                            advance(escaped, &mut line, &mut column);
                            match escaped {
                                '"' | '\'' | '\\' => word.push(escaped),
                                'n' => word.push('\n'),
                                't' => word.push('\t'),
                                'r' => word.push('\r'),
                                other => {
                                    word.push('\\');
                                    word.push(other);
                                }
                            }
                        }
                    } else if next == c {
                        closed = true;
                        break;
                    } else {
                        word.push(next);
                    }
                }
                if !closed {
                    return Err(ConfigError::Syntax {
                        file: file.to_string(),
                        line: start_line,
                        column: start_column,
                        message: "unterminated quoted string".to_string(),
                    });
                }
                tokens.push(Token {
                    text: word,
                    special: false,
                    line: start_line,
                    column: start_column,
                });
            }
            _ => {
                let (start_line, start_column) = (line, column);
                let mut word = c.to_string();
                let mut in_braces = false;
                while let Some(&next) = chars.peek() {
                    // `${name}`: the braces belong to the variable.
                    if next == '{' && word.ends_with('$') {
                        in_braces = true;
                    } else if in_braces {
                        if next == '}' {
                            in_braces = false;
                        }
                    } else if next.is_whitespace() || matches!(next, ';' | '{' | '}') {
                        break;
                    }
                    chars.next();
                    advance(next, &mut line, &mut column);
                    if next == '\\'
                        && let Some(&escaped) = chars.peek()
                    {
                        chars.next();
                        advance(escaped, &mut line, &mut column);
                        word.push(escaped);
                        continue;
                    }
                    word.push(next);
                }
                tokens.push(Token {
                    text: word,
                    special: false,
                    line: start_line,
                    column: start_column,
                });
            }
        }
    }
    Ok(tokens)
}

fn parse_block(
    path: &Path,
    tokens: &[Token],
    position: &mut usize,
    nested: bool,
) -> Result<Vec<Directive>, ConfigError> {
    let file = path.display().to_string();
    let syntax = |token: &Token, message: String| ConfigError::Syntax {
        file: file.clone(),
        line: token.line,
        column: token.column,
        message,
    };
    let mut directives = Vec::new();
    while *position < tokens.len() {
        let first = &tokens[*position];
        if first.special {
            if first.text == "}" && nested {
                *position += 1;
                return Ok(directives);
            }
            return Err(syntax(first, format!("unexpected \"{}\"", first.text)));
        }
        *position += 1;
        let mut args = Vec::new();
        loop {
            let Some(token) = tokens.get(*position) else {
                return Err(syntax(
                    first,
                    format!("\"{}\" is not terminated by \";\" or a block", first.text),
                ));
            };
            *position += 1;
            if !token.special {
                args.push(token.text.clone());
                continue;
            }
            let block = match token.text.as_str() {
                ";" => None,
                "{" => Some(parse_block(path, tokens, position, true)?),
                _ => return Err(syntax(token, "unexpected \"}\"".to_string())),
            };
            directives.push(Directive {
                name: first.text.clone(),
                args,
                at: format!("{file}:{}:{}", first.line, first.column),
                block,
            });
            break;
        }
    }
    if nested {
        let last = tokens.last().expect("a nested block has its opening token");
        return Err(syntax(
            last,
            "unexpected end of file: a block is not closed".to_string(),
        ));
    }
    Ok(directives)
}

/// Replaces each `include PATTERN;` with the directives of the files it names (relative
/// to the main file's directory; `*` matches in the file name).
fn expand_includes(
    directives: Vec<Directive>,
    base: &Path,
    depth: usize,
) -> Result<Vec<Directive>, ConfigError> {
    let mut out = Vec::new();
    for mut directive in directives {
        if directive.name == "include" && directive.block.is_none() {
            let [pattern] = directive.args.as_slice() else {
                return Err(invalid(&directive, "takes one file name or pattern"));
            };
            if depth >= INCLUDE_DEPTH {
                return Err(invalid(&directive, "includes nested too deep (a loop?)"));
            }
            for file in include_files(base, pattern).map_err(|m| invalid(&directive, &m))? {
                out.extend(parse_file(&file, base, depth + 1)?);
            }
            continue;
        }
        if let Some(block) = directive.block.take() {
            directive.block = Some(expand_includes(block, base, depth)?);
        }
        out.push(directive);
    }
    Ok(out)
}

fn include_files(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        if !full.exists() {
            return Err(format!("{} does not exist", full.display()));
        }
        return Ok(vec![full]);
    }
    let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
    let (prefix, suffix) = name.split_once('*').unwrap_or((&name, ""));
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| {
                    n.len() >= prefix.len() + suffix.len()
                        && n.starts_with(prefix)
                        && n.ends_with(suffix)
                })
            })
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    Ok(files)
}

fn invalid(directive: &Directive, message: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: directive.at.clone(),
        path: directive.name.clone(),
        message: message.to_string(),
    }
}

/// nginx's time (`75s`, `1m`, `500ms`, a bare number of seconds) as this project's duration text.
fn time(text: &str) -> Option<String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => return Some(format!("{n}ms")),
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(format!("{seconds}s"))
}

/// nginx's size (`8k`, `1m`, bytes) in bytes.
fn size(text: &str) -> Option<u64> {
    crate::units::size(&crate::units::Scalar::Text(text.to_string())).ok()
}

/// Directives at the main and http levels that tune nginx itself.
const NGINX_ITSELF: &[&str] = &[
    "user",
    "worker_processes",
    "worker_rlimit_nofile",
    "worker_cpu_affinity",
    "worker_shutdown_timeout",
    "pid",
    "daemon",
    "master_process",
    "pcre_jit",
    "load_module",
    "env",
    "events",
    "error_log",
    "types",
    "default_type",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "types_hash_max_size",
    "types_hash_bucket_size",
    "server_names_hash_bucket_size",
    "server_names_hash_max_size",
    "variables_hash_max_size",
    "variables_hash_bucket_size",
    "log_format",
    "server_tokens",
    "resolver",
    "resolver_timeout",
    "open_file_cache",
    "open_file_cache_valid",
    "open_file_cache_min_uses",
    "open_file_cache_errors",
    "client_body_buffer_size",
    "client_header_buffer_size",
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
    "map_hash_bucket_size",
    "map_hash_max_size",
    "reset_timedout_connection",
    "lingering_close",
    "lingering_time",
    "lingering_timeout",
    "keepalive_requests",
    "keepalive_time",
    "send_timeout",
    "client_body_timeout",
    "charset",
    "index",
    "root",
    "server_name",
    "server_name_in_redirect",
    "port_in_redirect",
    "absolute_redirect",
    "http2_max_concurrent_streams",
    "http2_recv_buffer_size",
    "http2_chunk_size",
    "http2_body_preread_size",
    "http2_idle_timeout",
    "http2_max_requests",
    "http2_max_field_size",
    "http2_max_header_size",
    "ssl_ciphers",
    "ssl_prefer_server_ciphers",
    "ssl_ecdh_curve",
    "ssl_session_cache",
    "ssl_session_timeout",
    "ssl_session_ticket_key",
    "ssl_dhparam",
    "ssl_buffer_size",
    "ssl_stapling",
    "ssl_stapling_verify",
    "ssl_stapling_file",
    "ssl_stapling_responder",
    "ssl_verify_depth",
    "ssl_trusted_certificate",
    "ssl_early_data",
    "ssl_conf_command",
    "ssl_reject_handshake",
    "real_ip_header",
    "real_ip_recursive",
    "proxy_http_version",
    "proxy_send_timeout",
    "proxy_buffering",
    "proxy_buffers",
    "proxy_buffer_size",
    "proxy_busy_buffers_size",
    "proxy_max_temp_file_size",
    "proxy_temp_file_write_size",
    "proxy_request_buffering",
    "proxy_redirect",
    "proxy_next_upstream",
    "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout",
    "proxy_socket_keepalive",
    "proxy_ignore_client_abort",
    "proxy_intercept_errors",
    "proxy_cache_bypass",
    "proxy_no_cache",
    "gzip",
    "gzip_vary",
    "gzip_proxied",
    "gzip_comp_level",
    "gzip_buffers",
    "gzip_http_version",
    "gzip_min_length",
    "gzip_types",
    "gzip_disable",
    "error_page",
];

/// What an ignored directive's warning says.
fn why_ignored(name: &str) -> &'static str {
    match name {
        "server_name" => "every name is served: the proxy has one certificate",
        n if n.starts_with("gzip") => "responses are passed as the app sends them, uncompressed",
        "error_page" => "the app's error responses are passed as they are",
        "ssl_ciphers"
        | "ssl_prefer_server_ciphers"
        | "ssl_ecdh_curve"
        | "ssl_dhparam"
        | "ssl_conf_command" => {
            "rustls chooses: TLS 1.3 and 1.2 AEAD suites, X25519MLKEM768/X25519/P-256"
        }
        "ssl_trusted_certificate" | "ssl_verify_depth" => {
            "client certificates are verified against ssl_client_certificate alone"
        }
        "ssl_stapling" | "ssl_stapling_verify" | "ssl_stapling_file" | "ssl_stapling_responder" => {
            "no OCSP stapling"
        }
        "real_ip_header" | "real_ip_recursive" => {
            "the client address comes from X-Forwarded-For sent by set_real_ip_from peers"
        }
        "root" | "index" => "nothing is served from disk: location / goes to the app",
        n if n.starts_with("proxy_") => "the proxy's own buffering and retries apply",
        n if n.starts_with("ssl_") => "rustls manages TLS sessions itself",
        n if n.starts_with("http2_") => "the proxy's own HTTP/2 limits apply",
        _ => "it tunes nginx itself",
    }
}

/// Request headers nginx configs set that the proxy sets the same way (or passes as is).
fn header_is_equivalent(name: &str, value: &str) -> bool {
    match name.to_ascii_lowercase().as_str() {
        "host" => value == "$http_host",
        "x-forwarded-for" => value == "$remote_addr",
        "x-forwarded-proto" => matches!(value, "$scheme" | "https"),
        "x-forwarded-host" => matches!(value, "$host" | "$http_host"),
        "upgrade" => value == "$http_upgrade",
        "connection" => {
            value.eq_ignore_ascii_case("upgrade")
                || value == "$connection_upgrade"
                || value.is_empty()
        }
        _ => false,
    }
}

/// nginx's `client_max_body_size` when a file sets none.
const NGINX_BODY_SIZE: &str = "1m";

#[derive(Default)]
struct Mapper {
    settings: Vec<(String, &'static [&'static str], Value)>,
    warnings: Vec<ConfigWarning>,
    errors: Vec<ConfigError>,
    /// `http`-level directives the server inherits.
    inherited: Vec<Directive>,
    upstreams: Vec<Directive>,
    tls_servers: Vec<Directive>,
    /// `add_header` directives of the server (with the `http` level's) and of `location /`:
    /// nginx takes a level's only when the level below has none.
    headers: [Vec<Directive>; 2],
    /// `client_max_body_size` of the server (with the `http` level's) and of `location /`:
    /// the location's wins.
    body_size: [Option<Directive>; 2],
    /// `default_type` of the server (with the `http` level's): the type of a `return`'s text.
    default_type: Option<Directive>,
    /// `location` blocks that only `return`, as `proxy.fixed_responses` entries, and the first
    /// of them (where the setting is placed).
    fixed: figment::value::Dict,
    fixed_at: Option<Directive>,
    /// Where `error_page` sends errors: a location serving only that page is not needed.
    error_pages: Vec<String>,
}

impl Mapper {
    fn warn(&mut self, directive: &Directive, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            origin: directive.at.clone(),
            path: directive.name.clone(),
            message: message.into(),
        });
    }

    fn error(&mut self, directive: &Directive, message: impl Into<String>) {
        self.errors.push(invalid(directive, &message.into()));
    }

    fn set(&mut self, directive: &Directive, key: &'static [&'static str], value: Value) {
        self.settings.push((directive.at.clone(), key, value));
    }

    /// The main level, or an `http` block.
    fn top(&mut self, directives: &[Directive]) {
        for directive in directives {
            match directive.name.as_str() {
                "http" => self.top(directive.block.as_deref().unwrap_or_default()),
                "server" => self.server_candidate(directive),
                "upstream" => self.upstreams.push(directive.clone()),
                "stream" | "mail" => self.warn(
                    directive,
                    "not served: the proxy serves one HTTPS server (the `server` with `listen \
                     ... ssl`)",
                ),
                "map" | "geo" | "split_clients" | "limit_req_zone" | "limit_conn_zone"
                | "proxy_cache_path" => self.warn(
                    directive,
                    "ignored here; a directive of the server that uses it is reported there",
                ),
                _ => self.inherited.push(directive.clone()),
            }
        }
    }

    fn server_candidate(&mut self, server: &Directive) {
        let body = server.block.as_deref().unwrap_or_default();
        let tls = body.iter().any(|d| {
            (d.name == "listen" && d.args.iter().skip(1).any(|a| a == "ssl"))
                || (d.name == "ssl" && d.args.first().is_some_and(|a| a == "on"))
        });
        if tls {
            self.tls_servers.push(server.clone());
        } else {
            let ports: Vec<String> = body
                .iter()
                .filter(|d| d.name == "listen")
                .filter_map(|d| d.args.first().cloned())
                .collect();
            self.warn(
                server,
                format!(
                    "not served: a server without ssl (listen {}), such as a redirect to \
                     HTTPS; the proxy serves only the TLS server",
                    if ports.is_empty() {
                        "80".to_string()
                    } else {
                        ports.join(", ")
                    }
                ),
            );
        }
    }

    fn finish(mut self, path: &Path) -> Result<Mapped, ConfigErrors> {
        match self.tls_servers.len() {
            0 => self.errors.push(ConfigError::Invalid {
                origin: path.display().to_string(),
                path: "server".to_string(),
                message: "no server listens with ssl (`listen 443 ssl;`): nothing for the \
                          proxy to serve"
                    .to_string(),
            }),
            1 => {
                let server = self.tls_servers[0].clone();
                let inherited = std::mem::take(&mut self.inherited);
                let mut all = inherited;
                all.extend(server.block.clone().unwrap_or_default());
                self.server(&server, &all);
                self.add_headers();
            }
            _ => {
                let second = self.tls_servers[1].clone();
                self.error(
                    &second,
                    "a second server with ssl: the proxy serves one (one listener, one \
                     certificate); run one proxy per server",
                );
            }
        }
        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        // In the files' order: `FILE:LINE:COL`, compared by file, then line and column.
        self.warnings.sort_by_key(|w| {
            let mut parts = w.origin.rsplitn(3, ':');
            let column: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
            (parts.next().unwrap_or_default().to_string(), line, column)
        });
        Ok(Mapped {
            settings: self.settings,
            warnings: self.warnings,
        })
    }

    /// The TLS server: its directives after those of the levels above it (last one wins).
    fn server(&mut self, server: &Directive, directives: &[Directive]) {
        // What the locations need from their server, wherever it stands in the block.
        self.default_type = directives
            .iter()
            .rfind(|d| d.name == "default_type")
            .cloned();
        self.error_pages = directives
            .iter()
            .filter(|d| d.name == "error_page")
            .filter_map(|d| d.args.last().cloned())
            .collect();
        let mut listens = Vec::new();
        let mut client_ca: Option<(Directive, String)> = None;
        let mut verify: Option<(Directive, String)> = None;
        let mut proxied = false;
        let mut trusted: Vec<Value> = Vec::new();
        let mut trusted_at: Option<Directive> = None;
        let mut certificates = 0;
        let mut keys = 0;
        for d in directives {
            let arg = d.args.first().cloned().unwrap_or_default();
            match d.name.as_str() {
                "listen" => listens.push(d.clone()),
                "ssl" | "http2" => {
                    if d.name == "http2" && arg == "off" {
                        self.warn(d, "HTTP/2 is offered by ALPN all the same");
                    }
                }
                "ssl_certificate" => {
                    certificates += 1;
                    if certificates > 1 {
                        self.error(
                            d,
                            "a second certificate (RSA and ECDSA side by side): the proxy \
                             serves one pair",
                        );
                    } else if arg.contains('$') {
                        self.error(d, "a certificate chosen by a variable is not supported");
                    } else {
                        self.set(d, &["proxy", "cert_file"], Value::from(arg));
                    }
                }
                "ssl_certificate_key" => {
                    keys += 1;
                    if keys == 1 {
                        self.set(d, &["proxy", "key_file"], Value::from(arg));
                    }
                }
                "ssl_password_file" => self.error(
                    d,
                    "encrypted private keys are not supported: the agent writes the key in \
                     the clear, 0600",
                ),
                "ssl_client_certificate" => client_ca = Some((d.clone(), arg)),
                "ssl_verify_client" => verify = Some((d.clone(), arg)),
                "ssl_protocols" => {
                    let others: Vec<&String> = d
                        .args
                        .iter()
                        .filter(|p| !matches!(p.as_str(), "TLSv1.2" | "TLSv1.3"))
                        .collect();
                    let has = |version: &str| d.args.iter().any(|p| p == version);
                    if !others.is_empty() {
                        self.warn(
                            d,
                            "only TLS 1.2 and 1.3 are offered: older protocols are refused",
                        );
                    }
                    if has("TLSv1.3") && !has("TLSv1.2") {
                        self.set(d, &["proxy", "tls_min_version"], Value::from("tls13"));
                    } else if has("TLSv1.2") && !has("TLSv1.3") {
                        self.warn(d, "TLS 1.3 is offered too: the proxy offers 1.2 and 1.3");
                    }
                }
                "ssl_session_tickets" => match arg.as_str() {
                    "on" => self.set(d, &["proxy", "session_tickets"], Value::from(true)),
                    "off" => self.set(d, &["proxy", "session_tickets"], Value::from(false)),
                    _ => self.error(d, "expects on or off"),
                },
                "keepalive_timeout" => self.duration(d, &["proxy", "idle_timeout"]),
                "client_header_timeout" => self.duration(d, &["proxy", "header_read_timeout"]),
                "ssl_handshake_timeout" => self.duration(d, &["proxy", "tls_handshake_timeout"]),
                "large_client_header_buffers" => {
                    match (d.args.first().map(|n| n.parse::<u64>()), d.args.get(1)) {
                        (Some(Ok(count)), Some(each))
                            if size(each).and_then(|s| s.checked_mul(count)).is_some() =>
                        {
                            let total = size(each).and_then(|s| s.checked_mul(count)).unwrap_or(0);
                            self.set(
                                d,
                                &["proxy", "max_header_size"],
                                Value::from(total.to_string()),
                            );
                        }
                        _ => self.error(d, "expects a count and a size, such as `4 8k`"),
                    }
                }
                "access_log" | "add_header" => self.response_directive(d, false),
                "set_real_ip_from" => {
                    trusted.push(Value::from(arg));
                    trusted_at = Some(d.clone());
                }
                "location" => {
                    if self.location(d) {
                        proxied = true;
                    }
                }
                "include" => {}
                "client_max_body_size" => self.body_size[0] = Some(d.clone()),
                // Read before the loop: a location may come first.
                "default_type" => {}
                name if NGINX_ITSELF.contains(&name) => {
                    let why = why_ignored(name);
                    self.warn(d, format!("ignored: {why}"));
                }
                "proxy_connect_timeout"
                | "proxy_read_timeout"
                | "proxy_set_header"
                | "proxy_pass" => {
                    // Server level: applies to the location.
                    self.location_directive(d);
                }
                _ => self.error(
                    d,
                    "not supported: the proxy forwards every request to one upstream as it \
                     came, so a server relying on this directive would not be the same",
                ),
            }
        }
        self.listen(server, &listens);
        self.body_size(server);
        self.fixed_responses();
        match (client_ca, verify) {
            (Some((at, file)), Some((how, mode))) if mode == "on" || mode == "optional" => {
                self.set(&at, &["proxy", "client_ca_file"], Value::from(file));
                let auth = if mode == "on" { "require" } else { "optional" };
                self.set(&how, &["proxy", "client_auth"], Value::from(auth));
            }
            (_, Some((how, mode))) if mode == "optional_no_ca" => {
                self.error(
                    &how,
                    "optional_no_ca is not supported: client certificates are verified",
                );
            }
            (None, Some((how, mode))) if mode == "on" || mode == "optional" => {
                self.error(&how, "needs ssl_client_certificate, the CAs to verify with");
            }
            (Some((at, _)), _) => {
                self.warn(&at, "ignored: ssl_verify_client is not on");
            }
            _ => {}
        }
        if let Some(at) = trusted_at {
            self.set(&at, &["proxy", "trusted_proxies"], Value::from(trusted));
        }
        if !proxied {
            self.error(
                server,
                "no `location / { proxy_pass http://...; }`: the proxy needs the app's address",
            );
        }
    }

    /// `access_log` and `add_header`, at the server level or in `location /`.
    fn response_directive(&mut self, d: &Directive, in_location: bool) {
        let arg = d.args.first().cloned().unwrap_or_default();
        match d.name.as_str() {
            "access_log" => {
                if arg == "off" {
                    self.set(d, &["proxy", "access_log"], Value::from(false));
                } else {
                    self.set(d, &["proxy", "access_log"], Value::from(true));
                    self.warn(
                        d,
                        "the access log goes to the proxy's stderr, in its own format \
                         (see Logs in the README), not to a file",
                    );
                }
            }
            "add_header" => self.headers[usize::from(in_location)].push(d.clone()),
            _ => unreachable!("only access_log and add_header come here"),
        }
    }

    /// The `add_header`s in effect for `location /` (its own, else the server's), as
    /// `proxy.hsts` and `proxy.response_headers`. The proxy adds a header to every response
    /// that lacks it; nginx adds it (even beside the app's) to 2xx and 3xx responses only,
    /// unless `always`.
    fn add_headers(&mut self) {
        let [server, location] = std::mem::take(&mut self.headers);
        let effective = if location.is_empty() {
            server
        } else {
            location
        };
        let mut headers = figment::value::Dict::new();
        let mut first: Option<Directive> = None;
        for d in &effective {
            let (Some(name), Some(value)) = (d.args.first(), d.args.get(1)) else {
                self.error(d, "expects a header name and a value");
                continue;
            };
            let always = match d.args.get(2).map(String::as_str) {
                None => false,
                Some("always") => true,
                Some(other) => {
                    self.error(d, format!("{other:?}: only `always` may follow the value"));
                    continue;
                }
            };
            if value.contains('$') {
                self.error(
                    d,
                    "a value with a variable is not supported: the proxy adds fixed headers only",
                );
                continue;
            }
            if value.is_empty() {
                // nginx adds nothing for an empty value.
                continue;
            }
            if !always {
                self.warn(
                    d,
                    "added to every response that lacks it, errors included (nginx: to 2xx and \
                     3xx responses only, without `always`)",
                );
            }
            if name.eq_ignore_ascii_case("strict-transport-security") {
                self.set(d, &["proxy", "hsts"], Value::from(value.clone()));
            } else {
                headers.insert(name.clone(), Value::from(value.clone()));
                first.get_or_insert_with(|| d.clone());
            }
        }
        if let Some(d) = first {
            self.set(&d, &["proxy", "response_headers"], Value::from(headers));
        }
    }

    /// A `location = /path` or `location /prefix` that only answers with `return` (with
    /// `default_type`, `access_log`, `log_not_found` beside it) becomes a fixed response; one
    /// that only serves an `error_page` target is not needed (the pages are the app's). `false`:
    /// neither, the caller refuses it.
    fn answering_location(&mut self, d: &Directive) -> bool {
        let (exact, path) = match d.args.as_slice() {
            [eq, path] if eq == "=" => (true, path.clone()),
            [prefix, path] if prefix == "^~" => (false, path.clone()),
            [path] if path.starts_with('/') => (false, path.clone()),
            _ => return false,
        };
        let body = d.block.clone().unwrap_or_default();
        if self.error_pages.contains(&path)
            && body.iter().all(|inner| {
                matches!(
                    inner.name.as_str(),
                    "root" | "alias" | "internal" | "index" | "try_files" | "access_log"
                )
            })
        {
            self.warn(
                d,
                "not served: the error_page it serves is ignored (the app's and the proxy's \
                 own error responses are passed as they are)",
            );
            return true;
        }
        let mut returned: Option<&Directive> = None;
        let mut default_type = self.default_type.clone();
        for inner in &body {
            match inner.name.as_str() {
                "return" => returned = Some(inner),
                "default_type" => default_type = Some(inner.clone()),
                "access_log" | "log_not_found" => {}
                _ => return false,
            }
        }
        let Some(returned) = returned else {
            return false;
        };
        let (status, text) = match returned.args.as_slice() {
            [code] if code.parse::<u16>().is_ok() => (code.clone(), None),
            [code, text] if code.parse::<u16>().is_ok() => (code.clone(), Some(text.clone())),
            [url] if url.starts_with("http://") || url.starts_with("https://") => {
                ("302".to_string(), Some(url.clone()))
            }
            _ => {
                self.error(returned, "expects `return CODE [TEXT]` or `return URL`");
                return true;
            }
        };
        if text.as_deref().is_some_and(|t| t.contains('$')) {
            self.error(
                returned,
                "a variable is not supported: the proxy answers with fixed text only",
            );
            return true;
        }
        let code: u16 = status.parse().unwrap_or(0);
        let mut entry = figment::value::Dict::new();
        entry.insert("status".into(), Value::from(u64::from(code)));
        if matches!(code, 301 | 302 | 303 | 307 | 308) {
            if let Some(url) = &text {
                if url.starts_with('/') {
                    self.warn(
                        returned,
                        "a relative redirect is sent as it is (nginx makes it absolute with its \
                         scheme, host and port); clients follow both",
                    );
                }
                entry.insert("location".into(), Value::from(url.clone()));
            }
        } else if let Some(text) = text {
            entry.insert("body".into(), Value::from(text));
            let media = default_type
                .as_ref()
                .and_then(|t| t.args.first().cloned())
                .unwrap_or_else(|| "text/plain".to_string());
            entry.insert("content_type".into(), Value::from(media));
        }
        let key = if exact { format!("= {path}") } else { path };
        self.fixed.insert(key, Value::from(entry));
        self.fixed_at.get_or_insert_with(|| d.clone());
        true
    }

    /// The answering locations, as one `proxy.fixed_responses`; a `default_type` nothing uses
    /// is ignored, as before.
    fn fixed_responses(&mut self) {
        let fixed = std::mem::take(&mut self.fixed);
        match self.fixed_at.take() {
            Some(at) => self.set(&at, &["proxy", "fixed_responses"], Value::from(fixed)),
            None => {
                if let Some(d) = self.default_type.take() {
                    self.warn(&d, format!("ignored: {}", why_ignored("default_type")));
                }
            }
        }
    }

    /// `client_max_body_size`: the location's, else the server's (or the `http` level's), else
    /// nginx's default of 1m; `0` (no limit) too is passed on.
    fn body_size(&mut self, server: &Directive) {
        let [outer, location] = std::mem::take(&mut self.body_size);
        let key: &'static [&'static str] = &["proxy", "max_request_body"];
        match location.or(outer) {
            Some(d) => {
                let arg = d.args.first().cloned().unwrap_or_default();
                match size(&arg) {
                    Some(_) if d.args.len() == 1 => self.set(&d, key, Value::from(arg)),
                    _ => self.error(&d, "expects a size such as 1m, 512k or 0 (no limit)"),
                }
            }
            None => self.set(server, key, Value::from(NGINX_BODY_SIZE)),
        }
    }

    fn duration(&mut self, d: &Directive, key: &'static [&'static str]) {
        match d.args.first().and_then(|a| time(a)) {
            Some(value) => self.set(d, key, Value::from(value)),
            None => self.error(d, "expects a time such as 60s, 1m or 500ms"),
        }
    }

    fn listen(&mut self, server: &Directive, listens: &[Directive]) {
        let mut chosen: Option<(String, &Directive)> = None;
        for d in listens {
            let Some(address) = d.args.first() else {
                self.error(d, "expects an address or a port");
                continue;
            };
            if !d.args.iter().skip(1).any(|a| a == "ssl") {
                self.warn(d, "not served: a listener without ssl");
                continue;
            }
            for param in d.args.iter().skip(1) {
                match param.as_str() {
                    "ssl" | "http2" | "default_server" | "default" | "deferred" | "reuseport"
                    | "bind" => {}
                    p if p.starts_with("backlog=") => {
                        self.set(
                            d,
                            &["proxy", "listen_backlog"],
                            Value::from(p["backlog=".len()..].to_string()),
                        );
                    }
                    p if p.starts_with("ipv6only=")
                        || p.starts_with("so_keepalive=")
                        || p.starts_with("fastopen=")
                        || p.starts_with("rcvbuf=")
                        || p.starts_with("sndbuf=") =>
                    {
                        self.warn(d, format!("ignored: {p}"));
                    }
                    "proxy_protocol" => self.error(
                        d,
                        "the PROXY protocol is not supported: the peer address is the TCP one",
                    ),
                    "quic" => self.warn(d, "not served: HTTP/3 (QUIC)"),
                    other => self.error(d, format!("unknown listen parameter {other}")),
                }
            }
            if address.starts_with("unix:") {
                self.error(d, "a unix socket listener is not supported");
                continue;
            }
            let socket = if address.bytes().all(|b| b.is_ascii_digit()) {
                format!("0.0.0.0:{address}")
            } else if let Some(port) = address.strip_prefix("*:") {
                format!("0.0.0.0:{port}")
            } else if (address.starts_with('[') && !address.contains("]:"))
                || !address.contains(':')
            {
                // nginx's default port, whatever `ssl` says.
                format!("{address}:80")
            } else {
                address.clone()
            };
            chosen = match chosen {
                None => Some((socket, d)),
                Some((first, at)) => {
                    let port = |s: &str| s.rsplit(':').next().map(str::to_string);
                    let wildcard = |s: &str| s.starts_with("0.0.0.0:") || s.starts_with("[::]:");
                    if port(&first) == port(&socket) && wildcard(&first) && wildcard(&socket) {
                        // IPv4 and IPv6 on every address: one dual-stack socket.
                        Some((format!("[::]:{}", port(&socket).unwrap_or_default()), at))
                    } else {
                        self.error(
                            d,
                            format!(
                                "a second TLS listener ({socket}, after {first}): the proxy \
                                 listens on one address"
                            ),
                        );
                        Some((first, at))
                    }
                }
            };
        }
        match chosen {
            Some((socket, at)) => {
                let at = at.clone();
                self.set(&at, &["proxy", "listen"], Value::from(socket));
            }
            None => self.error(server, "no `listen ... ssl` the proxy can serve"),
        }
    }

    /// A `location`: only `/` (prefix), holding `proxy_pass`; `true` when it proxies.
    fn location(&mut self, d: &Directive) -> bool {
        let is_root = d.args.len() == 1 && d.args[0] == "/";
        if !is_root && self.answering_location(d) {
            return false;
        }
        if !is_root {
            self.error(
                d,
                format!(
                    "only `location /` is served (every request goes to one upstream): \
                     location {} would not be",
                    d.args.join(" ")
                ),
            );
            return false;
        }
        let body = d.block.clone().unwrap_or_default();
        let mut proxied = false;
        for inner in &body {
            if inner.name == "proxy_pass" {
                proxied = true;
            }
            self.location_directive(inner);
        }
        proxied
    }

    fn location_directive(&mut self, d: &Directive) {
        let arg = d.args.first().cloned().unwrap_or_default();
        match d.name.as_str() {
            "proxy_pass" => self.proxy_pass(d, &arg),
            "proxy_connect_timeout" => self.duration(d, &["proxy", "upstream_connect_timeout"]),
            "proxy_read_timeout" => self.duration(d, &["proxy", "upstream_response_timeout"]),
            "proxy_set_header" => {
                let value = d.args.get(1).map(String::as_str).unwrap_or_default();
                let lower = arg.to_ascii_lowercase();
                if lower == "x-real-ip" && value == "$remote_addr" {
                    self.set(d, &["proxy", "x_real_ip"], Value::from(true));
                } else if lower == "host" && value == "$host" {
                    self.warn(
                        d,
                        "Host is passed as the client sent it ($http_host): with the port, when \
                         the client gave one",
                    );
                } else if lower == "x-forwarded-for" && value == "$proxy_add_x_forwarded_for" {
                    self.warn(
                        d,
                        "a client's own X-Forwarded-For is replaced by its address, not appended \
                         to, unless it is a set_real_ip_from peer (proxy.trusted_proxies)",
                    );
                } else if !header_is_equivalent(&arg, value) {
                    self.error(
                        d,
                        format!(
                            "the proxy sets Host, X-Forwarded-For/-Proto/-Host, X-Real-IP and \
                             upgrade headers its own way and adds no other: {arg} {value} would \
                             be missing"
                        ),
                    );
                }
            }
            "add_header" | "access_log" => self.response_directive(d, true),
            "client_max_body_size" => self.body_size[1] = Some(d.clone()),
            name if NGINX_ITSELF.contains(&name) => {
                let why = why_ignored(name);
                self.warn(d, format!("ignored: {why}"));
            }
            _ => self.error(
                d,
                "not supported in location /: the proxy forwards every request as it came",
            ),
        }
    }

    fn proxy_pass(&mut self, d: &Directive, target: &str) {
        let Some(rest) = target.strip_prefix("http://") else {
            if target.starts_with("https://") {
                self.error(
                    d,
                    "an upstream over TLS is not supported: the app is on loopback",
                );
            } else {
                self.error(d, "expects http://HOST:PORT");
            }
            return;
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if !(path.is_empty() || path == "/") {
            self.error(
                d,
                format!("a URI in proxy_pass ({path}) rewrites paths: not supported"),
            );
            return;
        }
        if authority.contains('$') {
            self.error(d, "an upstream chosen by a variable is not supported");
            return;
        }
        // An `upstream NAME { server ADDR; }` block stands for its one server.
        let authority = match self
            .upstreams
            .iter()
            .find(|u| u.args.first().map(String::as_str) == Some(authority))
        {
            Some(upstream) => {
                let servers: Vec<&Directive> = upstream
                    .block
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .filter(|s| s.name == "server")
                    .collect();
                match servers.as_slice() {
                    [one] => one.args.first().cloned().unwrap_or_default(),
                    _ => {
                        self.error(
                            d,
                            format!(
                                "upstream {authority} has {} servers: the proxy forwards to one",
                                servers.len()
                            ),
                        );
                        return;
                    }
                }
            }
            None => authority.to_string(),
        };
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:80")
        };
        let authority = authority.replacen("localhost:", "127.0.0.1:", 1);
        self.set(
            d,
            &["proxy", "upstream"],
            Value::from(format!("http://{authority}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> Result<Mapped, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, text).unwrap();
        read(&path)
    }

    fn value(mapped: &Mapped, key: &str) -> Option<String> {
        mapped
            .settings
            .iter()
            .rev()
            .find(|(_, path, _)| path.join(".") == key)
            .map(|(_, _, v)| match v {
                Value::String(_, s) => s.clone(),
                Value::Bool(_, b) => b.to_string(),
                other => format!("{other:?}"),
            })
    }

    #[test]
    fn a_typical_sidecar_server_maps_to_the_proxy() {
        let mapped = map(r#"
# the seed's nginx, more or less
server {
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name web.example.com;
    ssl_certificate     /etc/nginx/ssl/tls.crt;
    ssl_certificate_key "/etc/nginx/ssl/tls.key";
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_timeout 65;
    add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
    location / {
        proxy_pass http://localhost:8080;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout 90s;
    }
}
server {
    listen 80;
    return 301 https://$host$request_uri;
}
"#)
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value(&mapped, "proxy.listen").as_deref(), Some("[::]:443"));
        assert_eq!(
            value(&mapped, "proxy.upstream").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            value(&mapped, "proxy.key_file").as_deref(),
            Some("/etc/nginx/ssl/tls.key")
        );
        assert_eq!(value(&mapped, "proxy.idle_timeout").as_deref(), Some("65s"));
        assert_eq!(
            value(&mapped, "proxy.upstream_response_timeout").as_deref(),
            Some("90s")
        );
        assert_eq!(
            value(&mapped, "proxy.hsts").as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(value(&mapped, "proxy.x_real_ip").as_deref(), Some("true"));
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        for (warning, expected) in warnings.iter().zip([
            ":6:5: server_name: warning: ignored",
            ":14:9: proxy_set_header: warning: Host is passed",
            ":16:9: proxy_set_header: warning: a client's own",
            ":21:1: server: warning: not served",
        ]) {
            assert!(warning.contains(expected), "{expected}: {warnings:#?}");
        }
    }

    #[test]
    fn what_would_change_a_response_is_an_error_at_its_line() {
        let err = map(
            "server {\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / {\n    proxy_pass http://127.0.0.1:80/app/;\n  }\n  location \
             ~ \\.php$ { return 200; }\n  add_header X-Frame-Options $x;\n  allow 10.0.0.0/8;\n  location \
             /go { return 302 https://$host/; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            ":6:5: proxy_pass: a URI in proxy_pass (/app/)",
            ":8:3: location: only `location /` is served",
            ":9:3: add_header: a value with a variable is not supported",
            ":10:3: allow: not supported",
            ":11:18: return: a variable is not supported",
        ] {
            assert!(err.contains(expected), "{expected} in:\n{err}");
        }
    }

    /// `add_header`: the headers of `location /` if it has any, else the server's (with the
    /// `http` level's), as nginx inherits them; HSTS to `proxy.hsts`, the others to
    /// `proxy.response_headers`; without `always` a warning (nginx adds them to 2xx/3xx only).
    #[test]
    fn ssl_protocols_tls13_alone_and_session_tickets_are_mapped() {
        let server = |protocols: &str| {
            format!(
                "server {{\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
                 a.key;\n  ssl_protocols {protocols};\n  location / {{\n    proxy_pass \
                 http://127.0.0.1:80;\n  }}\n}}\n"
            )
        };
        let min = |protocols: &str| {
            let mapped = map(&server(protocols)).unwrap_or_else(|e| panic!("{e}"));
            value(&mapped, "proxy.tls_min_version")
        };
        assert_eq!(min("TLSv1.3").as_deref(), Some("tls13"));
        assert_eq!(min("TLSv1.2 TLSv1.3"), None);
        assert_eq!(min("TLSv1.1 TLSv1.2 TLSv1.3"), None);
        assert_eq!(min("TLSv1.2"), None, "1.3 is offered too, with a warning");
        let tickets = |setting: &str| {
            let text = server("TLSv1.2 TLSv1.3").replace(
                "  location /",
                &format!("  ssl_session_tickets {setting};\n  location /"),
            );
            let mapped = map(&text).unwrap_or_else(|e| panic!("{e}"));
            assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
            value(&mapped, "proxy.session_tickets")
        };
        assert_eq!(tickets("off").as_deref(), Some("false"));
        assert_eq!(tickets("on").as_deref(), Some("true"));
    }

    #[test]
    fn client_max_body_size_is_the_locations_else_the_servers_else_nginxs_default() {
        let server = |http: &str, server: &str, location: &str| {
            format!(
                "http {{\n{http}  server {{\n    listen 8443 ssl;\n    ssl_certificate a.crt;\n    \
                 ssl_certificate_key a.key;\n    location / {{\n{location}      proxy_pass \
                 http://127.0.0.1:80;\n    }}\n{server}  }}\n}}\n"
            )
        };
        let body = |text: &str| {
            let mapped = map(text).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                mapped
                    .warnings
                    .iter()
                    .all(|w| !w.to_string().contains("client_max_body_size")),
                "mapped, not warned about"
            );
            value(&mapped, "proxy.max_request_body")
        };
        assert_eq!(body(&server("", "", "")).as_deref(), Some("1m"));
        let http = "  client_max_body_size 8m;\n";
        assert_eq!(body(&server(http, "", "")).as_deref(), Some("8m"));
        // The server's comes after the location here, and still loses to it.
        let own = "    client_max_body_size 0;\n";
        let inner = "      client_max_body_size 100k;\n";
        assert_eq!(body(&server(http, own, "")).as_deref(), Some("0"));
        assert_eq!(body(&server(http, own, inner)).as_deref(), Some("100k"));
        let bad = map(&server("", "", "      client_max_body_size lots;\n")).unwrap_err();
        assert!(
            bad.to_string()
                .contains(":7:7: client_max_body_size: expects a size"),
            "{bad}"
        );
    }

    #[test]
    fn add_header_follows_nginx_inheritance() {
        let server = |location: &str| {
            format!(
                "http {{\n  add_header X-From-Http 1;\n  server {{\n    listen 8443 ssl;\n    \
                 ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    add_header \
                 X-Frame-Options DENY always;\n    add_header Strict-Transport-Security \
                 \"max-age=60\" always;\n    location / {{\n      proxy_pass \
                 http://127.0.0.1:80;\n{location}    }}\n  }}\n}}\n"
            )
        };
        let mapped = map(&server("")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value(&mapped, "proxy.hsts").as_deref(), Some("max-age=60"));
        let headers = mapped
            .settings
            .iter()
            .find(|(_, key, _)| key.join(".") == "proxy.response_headers")
            .map(|(_, _, v)| v.clone())
            .expect("response headers");
        assert_eq!(
            headers
                .into_dict()
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, v.into_string().unwrap()))
                .collect::<Vec<_>>(),
            vec![
                ("X-Frame-Options".to_string(), "DENY".to_string()),
                ("X-From-Http".to_string(), "1".to_string()),
            ]
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(":2:3: add_header: warning: added to every response")),
            "{warnings:#?}"
        );
        // A location with headers of its own: only those.
        let mapped = map(&server("      add_header X-Only-Here yes always;\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.hsts"),
            None,
            "the server's HSTS is not inherited"
        );
        let headers = mapped
            .settings
            .iter()
            .find(|(_, key, _)| key.join(".") == "proxy.response_headers")
            .map(|(_, _, v)| v.clone())
            .expect("response headers");
        assert_eq!(headers.into_dict().unwrap().len(), 1);
    }

    #[test]
    fn includes_upstreams_and_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/app.conf"),
            "server {\n listen 443 ssl;\n ssl_certificate t.crt; ssl_certificate_key t.key;\n \
             ssl_client_certificate ca.pem;\n ssl_verify_client optional;\n set_real_ip_from \
             10.0.0.0/8;\n location / { proxy_pass http://app; }\n}\n",
        )
        .unwrap();
        let main = dir.path().join("nginx.conf");
        std::fs::write(
            &main,
            "worker_processes auto;\nevents { worker_connections 1024; }\nhttp {\n  upstream app \
             { server 127.0.0.1:3000; }\n  include conf.d/*.conf;\n}\n",
        )
        .unwrap();
        let mapped = read(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.upstream").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(
            value(&mapped, "proxy.client_ca_file").as_deref(),
            Some("ca.pem")
        );
        assert_eq!(
            value(&mapped, "proxy.client_auth").as_deref(),
            Some("optional")
        );
        assert_eq!(
            value(&mapped, "proxy.listen").as_deref(),
            Some("0.0.0.0:443")
        );
        assert!(value(&mapped, "proxy.trusted_proxies").is_some());
        // worker_processes and events: nginx's own tuning, each with a warning.
        assert_eq!(mapped.warnings.len(), 2, "{:?}", mapped.warnings);
    }

    /// Whatever the bytes, a result, never a panic (nginx files come from users).
    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "server{}; \n\"'#$\\/:[]listen443sslproxy_passhttp://1.2.3.4:5 \
                                    location include*keepalive_timeout 9999999999999999d \
                                    large_client_header_buffers 99999999999 9999999g é"
            .chars()
            .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..3000 {
            let len = rng.usize(0..120);
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            let _ = map(&text);
        }
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let err = map("server {\n  listen 443 ssl\n}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nginx.conf:3:1: unexpected \"}\""), "{err}");
        let err = map("server {\n  listen \"443 ssl;\n}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:10: unterminated quoted string"), "{err}");
    }
}
