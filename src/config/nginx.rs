//! `proxy --nginx-config FILE`: the TLS server of an nginx configuration, read as the proxy's
//! settings, so a Pod that ran nginx in front of its app keeps its ConfigMap.
//!
//! nginx's syntax is read in full (directives, blocks, quoting, comments, `include` with a
//! `*` in the file name), then the one `server` that listens with `ssl` is mapped: `listen`,
//! `ssl_certificate`, `ssl_certificate_key`, client certificates, `location / { proxy_pass }`,
//! the other locations that `proxy_pass` (as `proxy.routes`) or `return`, timeouts, `add_header`, the access log (nginx's default of one line per request included),
//! the real-IP trust list, `proxy_set_header`, `proxy_redirect` (its implicit `default`
//! included) and nginx's default of dropping request headers named with an underscore. Words
//! are read as `ngx_conf_read_token` reads them, backslashes included. A directive whose
//! effect the proxy reproduces another way, or that only tunes nginx itself (workers, buffers,
//! ciphers), gets a warning saying so. One that would change what a request or a response is
//! — a location that serves files, `return` with a variable, access control, a rewrite — is an error at
//! its line, since serving without it would not be the same server. Each setting keeps its directive's `FILE:LINE:COL`, so a value
//! the proxy refuses is reported there.

use std::path::{Path, PathBuf};

use figment::value::Value;

use super::PathMatch;
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
    /// The files `include` read, in the order read.
    pub included: Vec<PathBuf>,
}

/// The variables `proxy_set_header` may use, for errors.
const VARIABLES: &str = "$scheme, $https, $server_name, $server_port, $host, $remote_addr, \
                         $remote_port, $request_id, $request_uri, $uri, $args, $is_args, \
                         $request_method, $http_NAME, $arg_NAME, $cookie_NAME, $ssl_protocol, \
                         $ssl_server_name and \
                         $ssl_client_s_dn, _i_dn, _verify, _serial, _fingerprint, _escaped_cert";

/// The directives named `name` of the nearest level that has any: `own`, else `outer`.
fn nearest(own: &[Directive], outer: &[Directive], name: &str) -> Vec<Directive> {
    let named = |level: &[Directive]| -> Vec<Directive> {
        level.iter().filter(|d| d.name == name).cloned().collect()
    };
    let mine = named(own);
    if mine.is_empty() { named(outer) } else { mine }
}

/// The header names of `proxy_hide_header` directives.
fn hidden_names(level: &[Directive]) -> Vec<String> {
    level
        .iter()
        .filter_map(|d| d.args.first().cloned())
        .collect()
}

/// The NAME of a zone directive's `zone=NAME:SIZE`.
fn zone_name(d: &Directive) -> Option<String> {
    d.args
        .iter()
        .find_map(|a| a.strip_prefix("zone="))
        .and_then(|zone| zone.split(':').next())
        .map(str::to_string)
}

/// What a `limit_conn_zone` key counts per, as `concurrency_limit_zones` names it: `None` for
/// a key the proxy does not count by.
fn conn_key(key: &str) -> Option<&'static str> {
    match key {
        "$binary_remote_addr" | "$remote_addr" => Some("address"),
        "$server_name" => Some("server"),
        _ => None,
    }
}

/// An `if` written after a `rewrite` of its block.
const IF_AFTER_REWRITE: &str = "an `if` after a `rewrite`: the proxy tries a block's `if`s \
                                before its `rewrite`s (move it above them)";

/// Nesting limit for `include`, against a file that includes itself.
const INCLUDE_DEPTH: usize = 16;

/// Reads `path` and maps its TLS server.
pub(crate) fn read(path: &Path) -> Result<Mapped, ConfigErrors> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut included = Vec::new();
    let directives =
        parse_file(path, &base, 0, &mut included).map_err(|e| ConfigErrors(vec![e]))?;
    let mut mapper = Mapper::default();
    mapper.top(&directives);
    let mut mapped = mapper.finish(path)?;
    mapped.included = included;
    Ok(mapped)
}

/// Parses `path`, its includes expanded (each file they read added to `included`).
fn parse_file(
    path: &Path,
    base: &Path,
    depth: usize,
    included: &mut Vec<PathBuf>,
) -> Result<Vec<Directive>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let tokens = tokenize(&path.display().to_string(), &text)?;
    let mut position = 0;
    let directives = parse_block(path, &tokens, &mut position, false)?;
    expand_includes(directives, base, depth, included)
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

/// Splits `text` into tokens as nginx's `ngx_conf_read_token` does: a word ends at whitespace,
/// `;` or `{` (a `}` inside a word is part of it, and `{` right after `$` opens `${name}`); a
/// word starting with `"` or `'` runs to the matching quote, which must be followed by
/// whitespace, `;`, `{` or `)`; a backslash makes the next character part of the word, and
/// is then read with [`unescape`]; `#` at the start of a word begins a comment.
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
    let syntax = |line: usize, column: usize, message: String| ConfigError::Syntax {
        file: file.to_string(),
        line,
        column,
        message,
    };
    while let Some(c) = chars.next() {
        advance(c, &mut line, &mut column);
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
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
                let mut raw = String::new();
                let mut closed = false;
                while let Some(next) = chars.next() {
                    advance(next, &mut line, &mut column);
                    if next == '\\' {
                        raw.push(next);
                        if let Some(escaped) = chars.next() {
                            advance(escaped, &mut line, &mut column);
                            raw.push(escaped);
                        }
                    } else if next == c {
                        closed = true;
                        break;
                    } else {
                        raw.push(next);
                    }
                }
                if !closed {
                    return Err(syntax(
                        start_line,
                        start_column,
                        "unterminated quoted string".to_string(),
                    ));
                }
                // nginx wants a separator after the closing quote (`)` for `if (...)`).
                if let Some(&next) = chars.peek()
                    && !matches!(next, ' ' | '\t' | '\r' | '\n' | ';' | '{' | ')')
                {
                    return Err(syntax(line, column + 1, format!("unexpected \"{next}\"")));
                }
                tokens.push(Token {
                    text: unescape(&raw),
                    special: false,
                    line: start_line,
                    column: start_column,
                });
            }
            _ => {
                let (start_line, start_column) = (line, column);
                let mut raw = c.to_string();
                let mut escaped = c == '\\';
                let mut variable = c == '$';
                while let Some(&next) = chars.peek() {
                    if escaped {
                        escaped = false;
                    } else if next == '{' && variable {
                        // `${name}`: the brace belongs to the variable.
                    } else if matches!(next, ' ' | '\t' | '\r' | '\n' | ';' | '{') {
                        break;
                    } else {
                        escaped = next == '\\';
                        variable = next == '$';
                    }
                    chars.next();
                    advance(next, &mut line, &mut column);
                    raw.push(next);
                }
                tokens.push(Token {
                    text: unescape(&raw),
                    special: false,
                    line: start_line,
                    column: start_column,
                });
            }
        }
    }
    Ok(tokens)
}

/// A word's escapes, read as nginx reads them, quoted or not: `\"`, `\'` and `\\` stand for
/// the character, `\t`, `\r` and `\n` for the control character, and any other backslash is
/// kept with what follows it (`a\.b` stays `a\.b`, as a regular expression needs).
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&next @ ('"' | '\'' | '\\')) => {
                    chars.next();
                    out.push(next);
                    continue;
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                    continue;
                }
                Some('r') => {
                    chars.next();
                    out.push('\r');
                    continue;
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
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
    included: &mut Vec<PathBuf>,
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
                out.extend(parse_file(&file, base, depth + 1, included)?);
                included.push(file);
            }
            continue;
        }
        if let Some(block) = directive.block.take() {
            directive.block = Some(expand_includes(block, base, depth, included)?);
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
    "keepalive_time",
    "charset",
    "index",
    "root",
    "server_name",
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
    "proxy_headers_hash_max_size",
    "proxy_headers_hash_bucket_size",
    "aio",
    "aio_write",
    "directio",
    "directio_alignment",
    "output_buffers",
    "postpone_output",
    "read_ahead",
    "sendfile_max_chunk",
    "proxy_max_temp_file_size",
    "proxy_temp_file_write_size",
    "proxy_next_upstream",
    "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout",
    "proxy_socket_keepalive",
    "proxy_cache_bypass",
    "proxy_no_cache",
    "proxy_pass_header",
    "gzip_buffers",
    "gzip_disable",
    "recursive_error_pages",
    "log_not_found",
    "limit_req_log_level",
    "limit_conn_log_level",
    "rewrite_log",
];

/// Whether `proxy_ignore_headers` directives of one level name `X-Accel-Redirect`.
fn ignores_accel_redirect(level: &[Directive]) -> bool {
    level.iter().any(|d| {
        d.args
            .iter()
            .any(|name| name.eq_ignore_ascii_case("X-Accel-Redirect"))
    })
}

/// What an ignored directive's warning says.
fn why_ignored(name: &str) -> &'static str {
    match name {
        "server_name" => "every name is served: the proxy has one certificate",
        "gzip_disable" => "every client that accepts gzip gets it",
        "gzip_buffers" => "it tunes nginx itself",
        "recursive_error_pages" => {
            "an error page is tried once per request (nginx's default, off): an error while it \
             is served is sent as it is"
        }
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
        "log_not_found" | "limit_req_log_level" | "limit_conn_log_level" | "rewrite_log" => {
            "it only sets what nginx writes to its error log"
        }
        "proxy_http_version" => {
            "the proxy speaks HTTP/1.1 to the app, with keep-alive, whatever the version (nginx's \
             default is 1.0)"
        }
        "proxy_pass_header" => {
            "the proxy passes every header the app sends but hop-by-hop ones (nginx hides \
             Server, Date, X-Pad and X-Accel-* unless told)"
        }
        "proxy_cache_bypass" | "proxy_no_cache" => {
            "nothing is cached (proxy_cache is not supported), so there is nothing to bypass"
        }
        "proxy_buffering" => {
            "the proxy streams each response as the app sends it, as nginx does with off \
             (server-sent events and long polls flow at once), buffering none on disk"
        }
        "proxy_send_timeout" => {
            "no timeout of its own for writing to the app: upstream_response_timeout \
             (proxy_read_timeout) bounds the wait for the app's response, from the request on"
        }
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => {
            "one upstream server: there is no next one to try, for nginx either"
        }
        "proxy_socket_keepalive" => "it only sets TCP keep-alive probes to the app",
        n if n.starts_with("proxy_") => {
            "the proxy streams responses through small buffers of its own, none on disk"
        }
        n if n.starts_with("ssl_") => "rustls manages TLS sessions itself",
        n if n.starts_with("http2_") => "the proxy's own HTTP/2 limits apply",
        _ => "it tunes nginx itself",
    }
}

/// Why a request header cannot be set by `proxy_set_header` here: the proxy frames requests
/// and sets the forwarding headers itself (see `proxy.request_headers`).
fn own_request_header(lower: &str) -> Option<&'static str> {
    match lower {
        "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade" | "te"
        | "trailer" | "proxy-connection" => {
            Some("the proxy frames each request and its connection itself")
        }
        "x-forwarded-for" | "x-forwarded-proto" | "forwarded" => Some(
            "the proxy sets X-Forwarded-For/-Proto (or Forwarded) itself: the client's address \
             and https",
        ),
        "x-real-ip" => Some("X-Real-IP is the client's address (proxy.x_real_ip) or passed as is"),
        _ => None,
    }
}

/// nginx's `$proxy_host` for a `proxy_pass` URL as written: its host, with its port unless it
/// is the scheme's own (80, 443); `None` with a variable in it.
fn proxy_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('$') {
        return None;
    }
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    Some(
        authority
            .strip_suffix(default_port)
            .unwrap_or(authority)
            .to_string(),
    )
}

/// Request headers nginx configs set that the proxy sets the same way (or passes as is).
fn header_is_equivalent(name: &str, value: &str) -> bool {
    match name.to_ascii_lowercase().as_str() {
        "host" => value == "$http_host",
        "x-forwarded-for" => value == "$remote_addr",
        "x-forwarded-proto" => matches!(value, "$scheme" | "https"),
        // The proxy's own is the Host as sent, port included: nginx's `$http_host`. `$host`
        // (no port) is set as a request header, as any other value.
        "x-forwarded-host" => value == "$http_host",
        "upgrade" => value == "$http_upgrade",
        "connection" => {
            value.eq_ignore_ascii_case("upgrade")
                || value == "$connection_upgrade"
                || value.is_empty()
        }
        _ => false,
    }
}

/// Whether `text` names the variable `name` (`$name` or `${name}`).
fn names_variable(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let braced = format!("${{{name}}}");
    let bare = format!("${name}");
    text.contains(&braced)
        || text.match_indices(&bare).any(|(at, _)| {
            !text[at + bare.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The `ssl on` in effect among `directives` (a server's after its `http` level's): the last
/// `ssl`, when it says `on`.
fn ssl_on<'a>(directives: impl Iterator<Item = &'a Directive>) -> Option<&'a Directive> {
    directives
        .filter(|d| d.name == "ssl")
        .last()
        .filter(|d| d.args.first().is_some_and(|a| a == "on"))
}

/// What a server that only refuses does: `return CODE` (4xx or 444), `ssl_reject_handshake on`,
/// or both.
#[derive(Debug, Clone)]
struct Refusal {
    /// Where it is (the server block).
    server: Directive,
    status: Option<u16>,
    reject_handshake: bool,
}

impl PartialEq for Refusal {
    fn eq(&self, other: &Refusal) -> bool {
        self.status == other.status && self.reject_handshake == other.reject_handshake
    }
}

/// What `server` does, when all it does is refuse: its directives are only `listen`,
/// `server_name`, `ssl_*`, logs and a `return` of a 4xx status or 444 (in the server or in a
/// `location /` of its own), or `ssl_reject_handshake on`.
fn refusal_of(server: &Directive) -> Option<Refusal> {
    let mut refusal = Refusal {
        server: server.clone(),
        status: None,
        reject_handshake: false,
    };
    let status = |d: &Directive| match d.args.as_slice() {
        [code] => code.parse::<u16>().ok().filter(|c| (400..=599).contains(c)),
        _ => None,
    };
    for d in server.block.as_deref().unwrap_or_default() {
        match d.name.as_str() {
            "listen" | "server_name" | "access_log" | "error_log" | "log_not_found" | "ssl"
            | "http2" => {}
            "ssl_reject_handshake" => {
                refusal.reject_handshake = d.args.first().is_some_and(|a| a == "on");
            }
            name if name.starts_with("ssl_") => {}
            "return" => refusal.status = Some(status(d)?),
            "location" if d.args.len() == 1 && d.args[0] == "/" => {
                for inner in d.block.as_deref().unwrap_or_default() {
                    match inner.name.as_str() {
                        "return" => refusal.status = Some(status(inner)?),
                        "access_log" | "log_not_found" => {}
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    (refusal.status.is_some() || refusal.reject_handshake).then_some(refusal)
}

/// A `listen` address as a socket address: nginx's defaults filled in (`443` is
/// `0.0.0.0:443`, a host without a port is on 80).
fn socket_of(address: &str) -> String {
    if address.bytes().all(|b| b.is_ascii_digit()) {
        format!("0.0.0.0:{address}")
    } else if let Some(port) = address.strip_prefix("*:") {
        format!("0.0.0.0:{port}")
    } else if (address.starts_with('[') && !address.contains("]:")) || !address.contains(':') {
        // nginx's default port, whatever `ssl` says.
        format!("{address}:80")
    } else {
        address.to_string()
    }
}

/// `value` with each nginx variable (`$name`, `${name}`) replaced by what `known` gives for its
/// name; the error is the first variable `known` has nothing for.
fn substitute(value: &str, known: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    for piece in super::variable_pieces(value)? {
        match piece {
            super::VariablePiece::Text(text) => out.push_str(text),
            super::VariablePiece::Variable(name) => {
                out.push_str(&known(name).ok_or_else(|| format!("${name}"))?);
            }
        }
    }
    Ok(out)
}

/// Whether an `if`'s condition is `$scheme = http` or `$scheme != https` (quoted or not, with
/// its parentheses in separate words or not): false whenever the scheme is https.
fn scheme_is_never(args: &[String]) -> bool {
    let mut words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(first) = words.first_mut() {
        *first = first.strip_prefix('(').unwrap_or(first);
    }
    if let Some(last) = words.last_mut() {
        *last = last.strip_suffix(')').unwrap_or(last);
    }
    words.retain(|w| !w.is_empty());
    matches!(
        words.as_slice(),
        ["$scheme", "=", "http"] | ["$scheme", "!=", "https"]
    )
}

/// The words of an `if`'s condition, without nginx's parentheses (alone or against the first
/// and last words).
fn condition_words(d: &Directive) -> Vec<String> {
    let mut args = d.args.clone();
    match args.first().map(String::as_str) {
        Some("(") => {
            args.remove(0);
        }
        Some(first) if first.starts_with('(') => args[0] = first[1..].to_string(),
        _ => {}
    }
    match args.last().map(String::as_str) {
        Some(")") => {
            args.pop();
        }
        Some(last) if last.ends_with(')') => {
            let at = args.len() - 1;
            args[at] = last[..last.len() - 1].to_string();
        }
        _ => {}
    }
    args
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
    /// The `server` blocks, sorted into TLS ones and others once the `http` level is read
    /// (its `ssl on` makes every server TLS).
    servers: Vec<Directive>,
    tls_servers: Vec<Directive>,
    /// `add_header` directives of the server (with the `http` level's) and of `location /`:
    /// nginx takes a level's only when the level below has none.
    headers: [Vec<Directive>; 2],
    /// `access_log` directives of the `http` level, the server and `location /`.
    access_logs: [Vec<Directive>; 3],
    /// `client_max_body_size` of the server (with the `http` level's) and of `location /`:
    /// the location's wins.
    body_size: [Option<Directive>; 2],
    /// `default_type` of the server (with the `http` level's): the type of a `return`'s text.
    default_type: Option<Directive>,
    /// `location` blocks that only `return`, as `proxy.fixed_responses` entries, and the first
    /// of them (where the setting is placed).
    fixed: figment::value::Dict,
    fixed_at: Option<Directive>,
    /// `error_page` of the `http` level, the server and `location /`: nginx takes a level's
    /// only when the level below has none.
    error_pages: [Vec<Directive>; 3],
    /// `proxy_intercept_errors` of the `http` level, the server and `location /`: the last
    /// of the nearest level.
    intercept_errors: [Option<Directive>; 3],
    /// `proxy_ignore_headers` of the `http` level, the server and `location /`: the nearest
    /// level that has any.
    ignore_headers: [Vec<Directive>; 3],
    /// The server block: where `proxy.accel_redirect` comes from when no level ignores it.
    server_at: Option<Directive>,
    /// `auth_request` of the `http` level, the server and `location /`, the same way.
    auth_request: [Option<Directive>; 3],
    /// The paths an `auth_request` asks (their locations need no request body).
    auth_paths: Vec<String>,
    /// The variables only `auth_request_set` sets (without `$`): empty until nginx's access
    /// phase, so in any `if` of a location a request reaches by its path.
    auth_variables: Vec<String>,
    /// The location being read is reached only internally (named, or `internal`): `if`s
    /// there may see `auth_request_set`'s variables set.
    internal_location: bool,
    /// Every listen of the TLS server is TLS (else those without `ssl` are not served).
    tls_only: bool,
    /// Each `proxy_set_header X-Forwarded-For` of the server and its locations, and whether it
    /// appends to the client's list (`$proxy_add_x_forwarded_for`).
    forwarded_for: Vec<(Directive, bool)>,
    /// The server's `absolute_redirect`, `port_in_redirect` and `server_name_in_redirect`
    /// (or the `http` level's), a location's own must be the same.
    redirect_settings: Vec<Directive>,
    /// `proxy_ssl_*` directives: ignored by nginx with an `http://` upstream, which
    /// `upstream_is_http` says `proxy_pass` gave.
    proxy_ssl: Vec<Directive>,
    upstream_is_http: bool,
    /// A `proxy_pass` gave an `https://` upstream.
    upstream_is_https: bool,
    /// `proxy_ssl_*` of `location /` (the server's are in `proxy_ssl`).
    proxy_ssl_root: Vec<Directive>,
    /// The `proxy_pass` of `location /` and its URL as written, for `proxy_redirect default`.
    proxy_pass: Option<(Directive, String)>,
    /// `proxy_redirect` directives of the server (with the `http` level's) and of `location /`.
    redirects: [Vec<Directive>; 2],
    /// `proxy_set_header` directives of the server (with the `http` level's) and of
    /// `location /`: nginx takes a level's only when the level below has none.
    set_headers: [Vec<Directive>; 2],
    /// `proxy_connect_timeout` and `proxy_read_timeout` of the server (with the `http` level's)
    /// and of `location /`: the location's win, wherever they stand.
    upstream_timeouts: [Vec<Directive>; 2],
    /// `proxy_request_buffering` and `proxy_http_version` of the server (with the `http`
    /// level's) and of `location /`.
    request_buffering: [Vec<Directive>; 2],
    /// `client_body_timeout` of the server (with the `http` level's) and of `location /`: the
    /// location's wins, wherever they stand.
    body_timeout: [Option<Directive>; 2],
    /// `send_timeout`, as `body_timeout`.
    send_timeout: [Option<Directive>; 2],
    /// `keepalive_requests`, as `body_timeout`.
    keepalive_requests: [Option<Directive>; 2],
    /// The port of the listener served: nginx's `$server_port`.
    listen_port: Option<String>,
    /// The server's first `server_name`: nginx's `$server_name`.
    server_name: String,
    /// `gzip*` directives of the `http` level and the server, in order (the last of a name
    /// wins).
    gzip: Vec<Directive>,
    /// The server's `if (...) { return ...; }` blocks, as `proxy.conditional_answers`.
    conditional: Vec<Value>,
    /// `location /`'s `if` blocks: the proxy's own when no other location takes requests.
    root_ifs: Vec<Directive>,
    /// The server's `rewrite`s, as `proxy.rewrites`.
    rewrites: Vec<Value>,
    /// `location /`'s `rewrite`s: the proxy's own when no other location takes requests.
    root_rewrites: Vec<Directive>,
    /// `set_real_ip_from` is given: nginx's `$remote_addr` is then the address a trusted peer
    /// forwards, not the peer's.
    real_ip_from: bool,
    /// The `proxy_pass` mapped and its URL as written, variables included.
    proxy_pass_url: Option<(Directive, String)>,
    /// Locations other than `/` that `proxy_pass`: `proxy.routes`, read once the server's own
    /// directives (which they inherit) are all known.
    routes: Vec<Directive>,
    /// `auth_basic` and `auth_basic_user_file` of the server (with the `http` level's) and of
    /// `location /`.
    auth: [Vec<Directive>; 2],
    /// `proxy_cookie_flags` of the server (with the `http` level's) and of `location /`.
    cookie_flags: [Vec<Directive>; 2],
    /// `limit_req_zone` directives of the `http` level.
    zones: Vec<Directive>,
    /// `map` blocks of the `http` level.
    maps: Vec<Directive>,
    /// The maps written to `proxy.maps` so far, as read.
    read_maps: Vec<std::sync::Arc<super::VariableMap>>,
    /// Maps whose one value was put in a header in their place ([`Mapper::unless_upstream_sent`]).
    inlined_maps: Vec<String>,
    /// `limit_req` and `limit_req_status` of the server (with the `http` level's) and of
    /// `location /`.
    rate_limits: [Vec<Directive>; 2],
    /// `proxy_hide_header` of the server (with the `http` level's) and of `location /`.
    hide: [Vec<Directive>; 2],
    /// `limit_conn_zone` directives of the `http` level.
    conn_zones: Vec<Directive>,
    /// `limit_conn`, `limit_conn_status` and `limit_conn_dry_run` of the server (with the
    /// `http` level's) and of `location /`.
    conn_limits: [Vec<Directive>; 2],
    /// `allow` and `deny` of the `http` level, the server and `location /`: nginx takes the
    /// nearest level that has any.
    access: [Vec<Directive>; 3],
    /// `root`, `index` and `charset` of the server (else the `http` level's), which a location
    /// serving files inherits.
    root: Option<Directive>,
    index: Option<Directive>,
    charset: Option<Directive>,
    /// `types` blocks of the `http` level and of the server: nginx takes the server's when it
    /// has any.
    types: [Vec<Directive>; 2],
    /// The first location that serves files: `root`, `index` and `types` are used.
    serves_files: Option<Directive>,
    /// `location /` serves files (or refuses everyone), or has its own `if`s or `rewrite`s
    /// beside other locations: a route of `/`, not the proxy's upstream.
    root_routed: bool,
    /// `location /` has `if`s or `rewrite`s of its own, and other locations take requests: it
    /// is a route, so that they hold for its requests only.
    root_as_route: bool,
    /// A route answers or serves files: the server's `default_type` is used.
    default_type_used: bool,
    /// `expires` of the server (else the `http` level's) and of `location /`.
    expires: [Option<Directive>; 2],
    /// The server's `set $NAME VALUE` of a constant: `proxy_pass` may name them.
    constants: Vec<(String, String)>,
}

impl Mapper {
    /// Once per directive and message: a server's directive read again for each location
    /// that inherits it is warned about once.
    /// `proxy_ignore_headers`: only `X-Accel-Redirect` changes what the proxy does (it follows
    /// it unless ignored); the others are said to change nothing.
    fn ignored_headers(&mut self, d: &Directive) {
        let others: Vec<&str> = d
            .args
            .iter()
            .map(String::as_str)
            .filter(|name| !name.eq_ignore_ascii_case("X-Accel-Redirect"))
            .collect();
        if !others.is_empty() {
            let message = format!(
                "{} ignored: nothing is cached, and the proxy acts on no X-Accel-* header but \
                 X-Accel-Redirect",
                others.join(", ")
            );
            self.warn(d, message);
        }
    }

    fn warn(&mut self, directive: &Directive, message: impl Into<String>) {
        let warning = ConfigWarning {
            origin: directive.at.clone(),
            path: directive.name.clone(),
            message: message.into(),
        };
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
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
                "server" => self.servers.push(directive.clone()),
                "upstream" => self.upstreams.push(directive.clone()),
                "stream" | "mail" => self.warn(
                    directive,
                    "not served: the proxy serves one HTTPS server (the `server` with `listen \
                     ... ssl`)",
                ),
                "limit_req_zone" => self.zones.push(directive.clone()),
                "limit_conn_zone" => self.conn_zones.push(directive.clone()),
                "map" => self.maps.push(directive.clone()),
                "geo" | "split_clients" | "proxy_cache_path" => self.warn(
                    directive,
                    "ignored here; a directive of the server that uses it is reported there",
                ),
                _ => self.inherited.push(directive.clone()),
            }
        }
    }

    fn server_candidate(&mut self, server: &Directive) {
        let body = server.block.as_deref().unwrap_or_default();
        let tls = body
            .iter()
            .any(|d| d.name == "listen" && d.args.iter().skip(1).any(|a| a == "ssl"))
            || ssl_on(self.inherited.iter().chain(body)).is_some();
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
        // `auth_request_set` variables are maps too, before the file's own.
        let servers = self.servers.clone();
        let mut sets: Vec<Directive> = Vec::new();
        for set in self.auth_request_sets(&servers) {
            // One variable for the whole file: the same setting in several locations is one
            // map.
            match sets.iter().find(|m| m.args.get(1) == set.args.get(1)) {
                Some(earlier) if earlier.args.first() != set.args.first() => {
                    let message = format!(
                        "{} is set otherwise at {}: the proxy's variables are the same in every \
                         location",
                        set.args[1], earlier.at
                    );
                    self.error(&set, message);
                }
                Some(_) => {}
                None => {
                    self.auth_variables.push(set.args[1][1..].to_string());
                    sets.push(set);
                }
            }
        }
        self.maps.splice(0..0, sets);
        // The maps' variables are the request's for every directive read below.
        let names = self
            .maps
            .iter()
            .filter_map(|d| d.args.get(1)?.strip_prefix('$'))
            .map(|name| std::sync::Arc::new(super::VariableMap::named(name)))
            .collect();
        let scope = super::MapScope::enter(names);
        for server in std::mem::take(&mut self.servers) {
            self.server_candidate(&server);
        }
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
                self.serve(&server);
            }
            _ => {
                if let Some((app, refusal)) = self.named_server() {
                    self.serve(&app);
                    self.server_names(&app, refusal);
                } else {
                    let second = self.tls_servers[1].clone();
                    self.error(
                        &second,
                        "a second server with ssl: the proxy serves one (one listener, one \
                         certificate), or one named server behind a default server that only \
                         refuses (`return 444`, `ssl_reject_handshake on`); run one proxy per \
                         server",
                    );
                }
            }
        }
        drop(scope);
        self.variable_maps();
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
            included: Vec::new(),
        })
    }

    /// `proxy.maps` from the `map` blocks whose variable a setting uses (or a map used does),
    /// each after the maps it uses; the others are warned about.
    fn variable_maps(&mut self) {
        let maps = std::mem::take(&mut self.maps);
        let name_of = |d: &Directive| {
            d.args
                .get(1)
                .and_then(|name| name.strip_prefix('$'))
                .unwrap_or_default()
                .to_string()
        };
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(_, _, value)| serde_json::to_string(value).unwrap_or_default())
            .collect();
        // A map's own text: its source and values, for the maps it uses.
        let text_of = |d: &Directive| {
            let mut text = d.args.first().cloned().unwrap_or_default();
            for entry in d.block.as_deref().unwrap_or_default() {
                text.push(' ');
                text.push_str(&entry.args.join(" "));
            }
            text
        };
        let mut used: Vec<bool> = maps
            .iter()
            .map(|d| {
                settings
                    .iter()
                    .any(|text| names_variable(text, &name_of(d)))
            })
            .collect();
        loop {
            let mut more = false;
            for (i, d) in maps.iter().enumerate() {
                if !used[i]
                    && maps.iter().zip(&used).any(|(other, in_use)| {
                        *in_use && names_variable(&text_of(other), &name_of(d))
                    })
                {
                    used[i] = true;
                    more = true;
                }
            }
            if !more {
                break;
            }
        }
        // Each after the maps it uses.
        let mut order: Vec<usize> = Vec::new();
        while order.len() < used.iter().filter(|u| **u).count() {
            let next = (0..maps.len()).find(|&i| {
                used[i]
                    && !order.contains(&i)
                    && (0..maps.len()).all(|j| {
                        j == i
                            || !used[j]
                            || order.contains(&j)
                            || !names_variable(&text_of(&maps[i]), &name_of(&maps[j]))
                    })
            });
            match next {
                Some(i) => order.push(i),
                None => {
                    for i in (0..maps.len()).filter(|i| used[*i] && !order.contains(i)) {
                        self.error(&maps[i], "maps that use each other in a cycle");
                    }
                    break;
                }
            }
        }
        for (d, in_use) in maps.iter().zip(&used) {
            if !in_use && !self.inlined_maps.contains(&name_of(d)) {
                self.warn(
                    d,
                    format!(
                        "ignored: no directive the proxy serves uses ${}",
                        name_of(d)
                    ),
                );
            }
        }
        let mut entries = Vec::new();
        for i in &order {
            if let Some(entry) = self.variable_map(&maps[*i]) {
                entries.push(Value::from(entry));
            }
        }
        if let Some(first) = order.first() {
            let first = maps[*first].clone();
            self.set(&first, &["proxy", "maps"], Value::from(entries));
        }
    }

    /// One `map SOURCE $NAME { ... }` as a `proxy.maps` entry; `None` when refused (said).
    fn variable_map(&mut self, d: &Directive) -> Option<figment::value::Dict> {
        let [source, name] = d.args.as_slice() else {
            self.error(d, "takes a source and a $variable, then a block");
            return None;
        };
        let Some(name) = name.strip_prefix('$') else {
            self.error(d, format!("{name:?} is not a $variable"));
            return None;
        };
        let mut default = String::new();
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut ok = true;
        for entry in d.block.as_deref().unwrap_or_default() {
            match (entry.name.as_str(), entry.args.as_slice()) {
                ("volatile", []) => {
                    self.warn(entry, "ignored: the proxy keeps no value between requests")
                }
                ("hostnames", []) => {
                    self.error(
                        entry,
                        "not supported: host name wildcards (*.example.com) in a map",
                    );
                    ok = false;
                }
                ("include", _) => {
                    self.error(
                        entry,
                        "not supported in a map: write its values in the block",
                    );
                    ok = false;
                }
                ("default", [value]) => default = value.clone(),
                (matched, [value]) => entries.push((matched.to_string(), value.clone())),
                _ => {
                    self.error(entry, "a map's entry is a value and what it gives");
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        // Read as the proxy reads it (with the maps before it), so that an error is at the
        // map's line.
        let scope = super::MapScope::enter(self.read_maps.clone());
        let read = super::VariableMap::new(name, source, &entries, &default);
        drop(scope);
        match read {
            Ok(map) => self.read_maps.push(std::sync::Arc::new(map)),
            Err((_, why)) => {
                self.error(d, why);
                return None;
            }
        }
        let mut entry = figment::value::Dict::new();
        entry.insert("variable".into(), Value::from(name.to_string()));
        entry.insert("source".into(), Value::from(source.clone()));
        entry.insert("default".into(), Value::from(default));
        let values: Vec<Value> = entries
            .into_iter()
            .map(|(matched, value)| {
                let mut pair = figment::value::Dict::new();
                pair.insert("match".into(), Value::from(matched));
                pair.insert("value".into(), Value::from(value));
                Value::from(pair)
            })
            .collect();
        entry.insert("values".into(), Value::from(values));
        Some(entry)
    }

    /// `proxy.gzip` from the server's (else `http`'s) `gzip on` and its settings.
    fn gzip(&mut self) {
        let given = std::mem::take(&mut self.gzip);
        let last = |name: &str| given.iter().rev().find(|d| d.name == name).cloned();
        let Some(on) = last("gzip") else {
            return;
        };
        match on.args.as_slice() {
            [flag] if flag == "on" => {}
            [flag] if flag == "off" => return,
            _ => {
                self.error(&on, "expects on or off");
                return;
            }
        }
        let mut gzip = figment::value::Dict::new();
        if let Some(d) = last("gzip_types") {
            let types: Vec<Value> = d.args.iter().cloned().map(Value::from).collect();
            gzip.insert("types".into(), Value::from(types));
        }
        for (name, key) in [
            ("gzip_min_length", "min_length"),
            ("gzip_comp_level", "level"),
        ] {
            if let Some(d) = last(name) {
                match d.args.as_slice() {
                    [n] => {
                        let value = if name == "gzip_min_length" {
                            size(n).map(|n| n.to_string())
                        } else {
                            Some(n.clone())
                        };
                        match value {
                            Some(v) => {
                                gzip.insert(key.into(), Value::from(v));
                            }
                            None => self.error(&d, format!("{n} is not a size")),
                        }
                    }
                    _ => self.error(&d, "expects one value"),
                }
            }
        }
        if let Some(d) = last("gzip_vary") {
            gzip.insert(
                "vary".into(),
                Value::from(d.args.first().is_some_and(|a| a == "on")),
            );
        }
        if let Some(d) = last("gzip_proxied") {
            let words: Vec<Value> = d.args.iter().cloned().map(Value::from).collect();
            gzip.insert("proxied".into(), Value::from(words));
        }
        if let Some(d) = last("gzip_http_version")
            && let Some(version) = d.args.first()
        {
            gzip.insert("http_version".into(), Value::from(version.clone()));
        }
        self.set(&on, &["proxy", "gzip"], Value::from(gzip));
    }

    /// A `gzip*` directive in a location: the server's settings apply everywhere.
    fn location_gzip(&mut self, d: &Directive) {
        if d.name == "gzip_buffers" || d.name == "gzip_disable" {
            let why = why_ignored(&d.name);
            self.warn(d, format!("ignored: {why}"));
            return;
        }
        self.warn(
            d,
            "ignored in a location: the server's gzip settings apply to every location",
        );
    }

    /// Maps `server` with the `http` level's directives it inherits.
    fn serve(&mut self, server: &Directive) {
        let mut all = std::mem::take(&mut self.inherited);
        all.extend(server.block.clone().unwrap_or_default());
        self.server(server, &all);
        self.add_headers();
    }

    /// The TLS listens of `server` (every listen under `ssl on`): each one's port and whether
    /// it is marked `default_server`.
    fn tls_ports(&self, server: &Directive) -> Vec<(String, bool)> {
        let body = server.block.as_deref().unwrap_or_default();
        let all_tls = ssl_on(self.inherited.iter().chain(body)).is_some();
        body.iter()
            .filter(|d| d.name == "listen")
            .filter(|d| all_tls || d.args.iter().skip(1).any(|a| a == "ssl"))
            .filter_map(|d| {
                let socket = socket_of(d.args.first()?);
                let port = socket.rsplit(':').next()?.to_string();
                let default = d
                    .args
                    .iter()
                    .skip(1)
                    .any(|a| a == "default_server" || a == "default");
                Some((port, default))
            })
            .collect()
    }

    /// Two or more TLS servers, of which one serves and the others only refuse, one of them
    /// being the default server of each port the serving one listens on (nginx's "default
    /// server that drops unknown hosts"): that server and what its default does.
    fn named_server(&self) -> Option<(Directive, Refusal)> {
        let mut serving = self
            .tls_servers
            .iter()
            .filter(|server| refusal_of(server).is_none());
        let app = serving.next()?.clone();
        if serving.next().is_some() {
            return None;
        }
        let mut chosen: Option<Refusal> = None;
        for (port, _) in self.tls_ports(&app) {
            let on_port: Vec<(&Directive, bool)> = self
                .tls_servers
                .iter()
                .filter_map(|server| {
                    let ports = self.tls_ports(server);
                    let listens = ports.iter().find(|(p, _)| *p == port)?;
                    Some((server, listens.1))
                })
                .collect();
            // nginx's default server of a port: the one marked so, else the first.
            let default = on_port
                .iter()
                .find(|(_, marked)| *marked)
                .or(on_port.first())
                .map(|(server, _)| *server)?;
            if default.at == app.at {
                return None;
            }
            let refusal = refusal_of(default)?;
            match &chosen {
                Some(earlier) if *earlier != refusal => return None,
                _ => chosen = Some(refusal),
            }
        }
        Some((app, chosen?))
    }

    /// `server_names` from `app`'s `server_name`, and what the default server does with the
    /// other hosts.
    fn server_names(&mut self, app: &Directive, refusal: Refusal) {
        let body = app.block.as_deref().unwrap_or_default();
        let named: Vec<&Directive> = body.iter().filter(|d| d.name == "server_name").collect();
        let names: Vec<String> = named
            .iter()
            .flat_map(|d| d.args.iter())
            // `""` names a request without a Host, which the proxy refuses (400) first.
            .filter(|name| !name.is_empty())
            .cloned()
            .collect();
        // The warning a lone server's `server_name` gets does not hold here.
        self.warnings
            .retain(|w| !named.iter().any(|d| d.at == w.origin));
        let Some(first) = named.first().copied() else {
            self.error(
                app,
                "no server_name: behind a default server, nginx sends this server no request",
            );
            return;
        };
        for name in &names {
            if let Err(why) = super::check_server_name(name) {
                self.error(first, why);
            }
        }
        self.set(
            first,
            &["proxy", "server_names"],
            Value::from(names.into_iter().map(Value::from).collect::<Vec<_>>()),
        );
        let unknown = match refusal.status {
            Some(444) => Value::from("close"),
            Some(code) => Value::from(u64::from(code)),
            None => {
                self.warn(
                    &refusal.server,
                    "a request whose Host is none of server_name's (on a connection whose SNI \
                     is one) gets 421, where nginx would serve it from this server's root",
                );
                Value::from(421u64)
            }
        };
        self.set(&refusal.server, &["proxy", "unknown_host"], unknown);
        if refusal.reject_handshake {
            self.set(
                &refusal.server,
                &["proxy", "reject_unknown_sni"],
                Value::from(true),
            );
        }
        let certificate = |server: &Directive| {
            server
                .block
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|d| d.name == "ssl_certificate")
                .and_then(|d| d.args.first().cloned())
        };
        let app_ports: Vec<String> = self.tls_ports(app).into_iter().map(|(p, _)| p).collect();
        for server in &self.tls_servers.clone() {
            if server.at == app.at {
                continue;
            }
            for (port, _) in self.tls_ports(server) {
                if !app_ports.contains(&port) {
                    self.warn(
                        server,
                        format!(
                            "not served: its port {port}, where it only refuses (the proxy \
                             listens on the named server's ports)"
                        ),
                    );
                }
            }
            let theirs = certificate(server);
            if !refusal.reject_handshake && theirs.is_some() && theirs != certificate(app) {
                self.warn(
                    server,
                    "its certificate is not served: the proxy answers every handshake with the \
                     named server's, then refuses the request",
                );
            }
        }
    }

    /// The TLS server: its directives after those of the levels above it (last one wins).
    fn server(&mut self, server: &Directive, directives: &[Directive]) {
        self.server_name = server
            .block
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|d| d.name == "server_name")
            .and_then(|d| d.args.first().cloned())
            .unwrap_or_default();
        // What the locations need from their server, wherever it stands in the block.
        self.default_type = directives
            .iter()
            .rfind(|d| d.name == "default_type")
            .cloned();
        self.constants = self.constants_of(server.block.as_deref().unwrap_or_default());
        self.redirects(server, directives);
        self.server_at = Some(Directive {
            block: None,
            ..server.clone()
        });
        self.root_as_route = self.root_needs_a_route(server.block.as_deref().unwrap_or_default());
        let ssl_on = ssl_on(directives.iter()).cloned();
        self.tls_only = ssl_on.is_some()
            || directives
                .iter()
                .filter(|d| d.name == "listen")
                .all(|d| d.args.iter().skip(1).any(|a| a == "ssl"));
        let mut listens = Vec::new();
        let mut client_ca: Option<(Directive, String)> = None;
        let mut verify: Option<(Directive, String)> = None;
        let mut proxied = false;
        let mut trusted: Vec<Value> = Vec::new();
        let mut trusted_at: Option<Directive> = None;
        let mut certificates = 0;
        let mut keys = 0;
        // A directive of the server's own block, not one of the `http` level's.
        let server_block = server.block.as_deref().unwrap_or_default();
        let own = |d: &Directive| server_block.iter().any(|s| s.at == d.at);
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
                "client_body_timeout" => self.body_timeout[0] = Some(d.clone()),
                "send_timeout" => self.send_timeout[0] = Some(d.clone()),
                "keepalive_requests" => self.keepalive_requests[0] = Some(d.clone()),
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
                // The server's own, else the `http` level's: nginx takes the nearest level that
                // has any.
                "access_log" => self.access_logs[usize::from(own(d))].push(d.clone()),
                "add_header" => self.response_directive(d, false),
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
                "proxy_redirect" => self.redirects[0].push(d.clone()),
                "ignore_invalid_headers" | "underscores_in_headers" => {}
                // Read before the loop: a location may come first.
                "default_type" => {}
                // Used by the locations that serve files; warned about when none does.
                "root" => self.root = Some(d.clone()),
                "index" => self.index = Some(d.clone()),
                "types" => self.types[usize::from(own(d))].push(d.clone()),
                "expires" => self.expires[0] = Some(d.clone()),
                "charset" => {
                    self.charset = Some(d.clone());
                    self.warn(d, format!("ignored: {}", why_ignored("charset")));
                }
                "gzip" | "gzip_types" | "gzip_min_length" | "gzip_comp_level" | "gzip_vary"
                | "gzip_proxied" | "gzip_http_version" => self.gzip.push(d.clone()),
                // Read before the loop ([`Mapper::redirects`]).
                "absolute_redirect" | "port_in_redirect" | "server_name_in_redirect" => {}
                "proxy_request_buffering" | "proxy_http_version" => {
                    let d = self.buffering_directive(d);
                    self.request_buffering[0].push(d);
                }
                // nginx's wait for requests in flight once asked to stop.
                "worker_shutdown_timeout" => self.duration(d, &["proxy", "shutdown_grace"]),
                name if NGINX_ITSELF.contains(&name) => {
                    let why = why_ignored(name);
                    self.warn(d, format!("ignored: {why}"));
                }
                "proxy_set_header" => self.set_headers[0].push(d.clone()),
                "auth_basic" | "auth_basic_user_file" => self.auth[0].push(d.clone()),
                "proxy_cookie_flags" => self.cookie_flags[0].push(d.clone()),
                "limit_req" | "limit_req_status" | "limit_req_dry_run" | "limit_req_log_level" => {
                    self.rate_limits[0].push(d.clone());
                }
                "limit_conn" | "limit_conn_status" | "limit_conn_dry_run" => {
                    self.conn_limits[0].push(d.clone());
                }
                "proxy_hide_header" => self.hide[0].push(d.clone()),
                "error_page" => self.error_pages[usize::from(own(d))].push(d.clone()),
                "proxy_intercept_errors" => {
                    self.intercept_errors[usize::from(own(d))] = Some(d.clone());
                }
                "proxy_ignore_headers" => {
                    self.ignored_headers(d);
                    self.ignore_headers[usize::from(own(d))].push(d.clone());
                }
                "auth_request" => self.auth_request[usize::from(own(d))] = Some(d.clone()),
                // Read with the maps ([`Mapper::finish`]).
                "auth_request_set" => {}
                "allow" | "deny" => self.access[usize::from(own(d))].push(d.clone()),
                "satisfy" => self.satisfy(d),
                "proxy_connect_timeout" | "proxy_read_timeout" => {
                    self.upstream_timeouts[0].push(d.clone());
                }
                "proxy_pass" => {
                    // Server level: applies to the location.
                    self.location_directive(d);
                }
                // Read before the loop: `proxy_pass` uses them.
                "set" if own(d) => {}
                _ if self.without_effect(d) => {}
                "if" if own(d) => {
                    if !self.rewrites.is_empty() {
                        self.error(d, IF_AFTER_REWRITE);
                    } else if let Some(entry) = self.if_answer(d) {
                        self.conditional.push(Value::from(entry));
                    }
                }
                "rewrite" if own(d) => {
                    if let Some(rule) = self.rewrite_rule(d) {
                        self.rewrites.push(Value::from(rule));
                    }
                }
                _ => self.error(
                    d,
                    "not supported: the proxy forwards every request to one upstream as it \
                     came, so a server relying on this directive would not be the same",
                ),
            }
        }
        // `location /`'s own `if`s come after the server's, as nginx runs the location's
        // rewrite phase after the server's: the same as the proxy's own when no other location
        // can take a request.
        // (Beside other locations, `location /` with `if`s or `rewrite`s of its own is a route:
        // [`Mapper::root_needs_a_route`].)
        let root_ifs = std::mem::take(&mut self.root_ifs);
        for d in &root_ifs {
            if let Some(entry) = self.if_answer(d) {
                self.conditional.push(Value::from(entry));
            }
        }
        // `location /`'s `rewrite`s, after the server's, the same way.
        let root_rewrites = std::mem::take(&mut self.root_rewrites);
        for d in &root_rewrites {
            if let Some(rule) = self.rewrite_rule(d) {
                self.rewrites.push(Value::from(rule));
            }
        }
        if let (Some(first), false) = (root_ifs.first(), self.rewrites.is_empty()) {
            self.error(first, IF_AFTER_REWRITE);
        }
        let first_rewrite = server_block
            .iter()
            .find(|d| d.name == "rewrite")
            .or(root_rewrites.first())
            .cloned();
        if let Some(first) = first_rewrite {
            let rewrites = std::mem::take(&mut self.rewrites);
            if !rewrites.is_empty() {
                self.set(&first, &["proxy", "rewrites"], Value::from(rewrites));
            }
        }
        let first_if = server_block
            .iter()
            .find(|d| d.name == "if")
            .or(root_ifs.first())
            .cloned();
        if let Some(first) = first_if {
            let conditional = std::mem::take(&mut self.conditional);
            if !conditional.is_empty() {
                self.set(
                    &first,
                    &["proxy", "conditional_answers"],
                    Value::from(conditional),
                );
            }
        }
        self.real_ip_from = trusted_at.is_some();
        if !proxied && !self.root_routed {
            // nginx serves the server's root where no location takes a request.
            self.warn(
                server,
                "no location /: requests no location takes are served from the server's root, \
                 as nginx serves them",
            );
            self.routes.push(Directive {
                name: "location".to_string(),
                args: vec!["/".to_string()],
                at: server.at.clone(),
                block: Some(Vec::new()),
            });
            self.root_routed = true;
        }
        self.invalid_headers(server, directives);
        self.listen(server, &listens, ssl_on.as_ref());
        self.proxy_ssl();
        self.routes();
        self.file_types();
        self.basic_auth();
        self.proxy_cookie_flags();
        self.limit_req();
        self.limit_conn();
        let [outer, location] = std::mem::take(&mut self.hide);
        let level = if location.is_empty() { outer } else { location };
        if let Some(first) = level.first() {
            self.set(
                first,
                &["proxy", "hide_response_headers"],
                Value::from(hidden_names(&level)),
            );
        }
        self.error_pages();
        self.access_rules();
        let expires = self.expires[1].clone().or_else(|| self.expires[0].clone());
        if let Some(d) = &expires
            && let Some(value) = self.expires_value(expires.clone())
        {
            self.set(d, &["proxy", "expires"], Value::from(value));
        }
        self.gzip();
        self.proxy_redirect();
        self.proxy_set_headers();
        self.forwarded_for();
        self.body_size(server);
        self.access_log(server);
        self.upstream_timeouts();
        let [outer, location] = std::mem::take(&mut self.body_timeout);
        if let Some(d) = location.or(outer) {
            self.duration(&d, &["proxy", "body_read_timeout"]);
        }
        let [outer, location] = std::mem::take(&mut self.send_timeout);
        if let Some(d) = location.or(outer) {
            self.duration(&d, &["proxy", "send_timeout"]);
        }
        let [outer, location] = std::mem::take(&mut self.keepalive_requests);
        if let Some(d) = location.or(outer) {
            match d.args.as_slice() {
                [count] if count.parse::<u64>().is_ok_and(|n| n > 0) => {
                    self.set(
                        &d,
                        &["proxy", "keepalive_requests"],
                        Value::from(count.clone()),
                    );
                }
                _ => self.error(&d, "expects a number of requests, such as `1000`"),
            }
        }
        let [outer, location] = std::mem::take(&mut self.request_buffering);
        if let (Some(false), Some(at)) = (
            self.buffered(&[&location, &outer]),
            location
                .iter()
                .chain(&outer)
                .find(|d| d.name == "proxy_request_buffering"),
        ) {
            self.set(at, &["proxy", "request_buffering"], Value::from(false));
        }
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
    }

    /// `access_log` and `add_header`, at the server level or in `location /`.
    fn response_directive(&mut self, d: &Directive, in_location: bool) {
        match d.name.as_str() {
            "access_log" => self.access_logs[if in_location { 2 } else { 1 }].push(d.clone()),
            "add_header" => self.headers[usize::from(in_location)].push(d.clone()),
            _ => unreachable!("only access_log and add_header come here"),
        }
    }

    /// The `add_header`s in effect for `location /` (its own, else the server's), as
    /// `proxy.hsts`, `proxy.response_headers` (with `always`) and
    /// `proxy.response_headers_on_success` (without: nginx's 2xx and 3xx statuses). The proxy
    /// adds a header to a response that lacks it; nginx adds it even beside the app's.
    fn add_headers(&mut self) {
        let [server, location] = std::mem::take(&mut self.headers);
        let effective = if location.is_empty() {
            server
        } else {
            location
        };
        // With `always`, and without.
        let mut headers = [figment::value::Dict::new(), figment::value::Dict::new()];
        let mut first: [Option<Directive>; 2] = [None, None];
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
            let Some(value) = self.header_value(d, name, value) else {
                continue;
            };
            if value.is_empty() {
                // nginx adds nothing for an empty value.
                continue;
            }
            if name.eq_ignore_ascii_case("strict-transport-security") {
                if !always {
                    self.warn(
                        d,
                        "added to every response that lacks one, errors included (nginx: to 2xx \
                         and 3xx responses only, without `always`)",
                    );
                }
                self.set(d, &["proxy", "hsts"], Value::from(value));
                continue;
            }
            if let Some(own) = self.split_added_header(d, &mut headers, name, value, always) {
                first[own].get_or_insert_with(|| d.clone());
            }
        }
        for ((headers, first), key) in headers.into_iter().zip(first).zip([
            &["proxy", "response_headers"][..],
            &["proxy", "response_headers_on_success"][..],
        ]) {
            if let Some(d) = first {
                self.set(&d, key, Value::from(headers));
            }
        }
    }

    /// A `location = /path` or `location /prefix` that only answers with `return` (with
    /// `default_type`, `access_log`, `log_not_found` beside it) becomes a fixed response.
    /// `false`: it does more, the caller makes it a route.
    fn answering_location(&mut self, d: &Directive) -> bool {
        let (exact, path) = match d.args.as_slice() {
            [eq, path] if eq == "=" => (true, path.clone()),
            [prefix, path] if prefix == "^~" => (false, path.clone()),
            [path] if path.starts_with('/') => (false, path.clone()),
            _ => return false,
        };
        match self.answer_of(d) {
            None => false,
            // Said.
            Some(None) => true,
            Some(Some(entry)) => {
                let key = if exact { format!("= {path}") } else { path };
                self.fixed.insert(key, Value::from(entry));
                self.fixed_at.get_or_insert_with(|| d.clone());
                true
            }
        }
    }

    /// What a location that only answers with `return` (with `default_type`, `access_log`,
    /// `log_not_found`, and `allow`/`deny` that come too late to matter) answers, as a fixed
    /// response; `Some(None)` when refused (said), `None` when it does more than answer.
    fn answer_of(&mut self, d: &Directive) -> Option<Option<figment::value::Dict>> {
        let body = d.block.clone().unwrap_or_default();
        let mut returned: Option<&Directive> = None;
        let mut default_type = self.default_type.clone();
        let mut unchecked = Vec::new();
        let mut add_headers = Vec::new();
        for inner in &body {
            match inner.name.as_str() {
                "return" => returned = Some(inner),
                "add_header" => add_headers.push(inner.clone()),
                "default_type" => default_type = Some(inner.clone()),
                "access_log" | "log_not_found" => {}
                // nginx's `return` (its rewrite phase) answers before addresses are checked.
                "allow" | "deny" | "satisfy" => unchecked.push(inner.clone()),
                _ => return None,
            }
        }
        let returned = returned?;
        let (status, text) = match returned.args.as_slice() {
            [code] if code.parse::<u16>().is_ok() => (code.clone(), None),
            [code, text] if code.parse::<u16>().is_ok() => (code.clone(), Some(text.clone())),
            [url]
                if url.starts_with("http://")
                    || url.starts_with("https://")
                    || url.starts_with("$scheme") =>
            {
                ("302".to_string(), Some(url.clone()))
            }
            _ => {
                self.error(returned, "expects `return CODE [TEXT]` or `return URL`");
                return Some(None);
            }
        };
        let code: u16 = status.parse().unwrap_or(0);
        let redirect = matches!(code, 301 | 302 | 303 | 307 | 308);
        let text = match text {
            // A redirect's URL may carry the request's variables, replaced for each request.
            Some(url) if redirect && url.contains('$') => match self.with_request_variables(&url) {
                Ok(url) => Some(url),
                Err(variable) => {
                    self.error(
                        returned,
                        format!("{variable} is not supported in a redirect (only {VARIABLES})"),
                    );
                    return Some(None);
                }
            },
            Some(text) if text.contains('$') => {
                self.error(
                    returned,
                    "a variable is not supported in a text: the proxy answers with fixed text \
                     (a redirect's URL may have variables)",
                );
                return Some(None);
            }
            other => other,
        };
        let mut entry = figment::value::Dict::new();
        entry.insert("status".into(), Value::from(u64::from(code)));
        if redirect {
            if let Some(url) = &text {
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
        for d in unchecked {
            self.warn(
                &d,
                "ignored: `return` answers before nginx checks addresses, so every client gets \
                 its answer",
            );
        }
        if !add_headers.is_empty() {
            let Some(headers) = self.answer_headers(&add_headers, code) else {
                return Some(None);
            };
            if !headers.is_empty() {
                entry.insert("headers".into(), Value::from(headers));
            }
            // The block's own add_header replace those of the levels above, whatever the
            // status.
            entry.insert("only_own_headers".into(), Value::from(true));
        }
        Some(Some(entry))
    }

    /// `value` as the proxy replaces it for each request: `$server_name` put in, the request's
    /// variables kept (braced, as text may follow); the error is the first other variable.
    fn with_request_variables(&self, value: &str) -> Result<String, String> {
        substitute(value, |variable| match variable {
            "server_name" => Some(self.server_name.clone()),
            other if super::request_header_parts(&format!("${{{other}}}")).is_ok() => {
                Some(format!("${{{other}}}"))
            }
            _ => None,
        })
    }

    /// An `add_header` value (`d`, header `name`) as `response_headers` takes it: `$server_name`
    /// put in, the request's variables kept (braced), any other variable an error (said: `None`);
    /// an HSTS is the proxy's one fixed value.
    fn header_value(&mut self, d: &Directive, name: &str, value: &str) -> Option<String> {
        if !value.contains('$') {
            return Some(value.to_string());
        }
        if let Some(fixed) = self.unless_upstream_sent(name, value) {
            return Some(fixed);
        }
        if name.eq_ignore_ascii_case("strict-transport-security") {
            self.error(
                d,
                "a variable in HSTS is not supported: the proxy sends one fixed HSTS",
            );
            return None;
        }
        match self.with_request_variables(value) {
            Ok(value) => Some(value),
            Err(variable) => {
                self.error(
                    d,
                    format!("{variable} is not supported in add_header (only {VARIABLES})"),
                );
                None
            }
        }
    }

    /// The idiom that adds a header only when the app did not send it (the Docker registry's
    /// `map $upstream_http_NAME $var { '' VALUE; }` with `add_header NAME $var`): `VALUE`,
    /// which `response_headers` add to a response without the header, as nginx does then.
    fn unless_upstream_sent(&mut self, name: &str, value: &str) -> Option<String> {
        let variable = value.strip_prefix('$')?;
        let upstream = format!(
            "$upstream_http_{}",
            name.to_ascii_lowercase().replace('-', "_")
        );
        let map = self
            .maps
            .iter()
            .find(|m| m.args.len() == 2 && m.args[0] == upstream && m.args[1] == value)?;
        let mut given = None;
        for entry in map.block.as_deref().unwrap_or_default() {
            match (entry.name.as_str(), entry.args.as_slice()) {
                ("", [v]) if given.is_none() && !v.contains('$') => given = Some(v.clone()),
                ("default", [v]) if v.is_empty() => {}
                _ => return None,
            }
        }
        let given = given?;
        self.inlined_maps.push(variable.to_string());
        Some(given)
    }

    /// The `add_header`s beside a `return` of status `code`, as the answer's `headers`: each
    /// sent with the statuses nginx adds headers to, or with `always`; `None` when one is
    /// refused (said).
    fn answer_headers(
        &mut self,
        add_headers: &[Directive],
        code: u16,
    ) -> Option<figment::value::Dict> {
        let mut headers = figment::value::Dict::new();
        let sent = matches!(
            code,
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        );
        for d in add_headers {
            let (name, value, always) = match d.args.as_slice() {
                [name, value] => (name, value, false),
                [name, value, always] if always == "always" => (name, value, true),
                _ => {
                    self.error(d, "expects a name, a value and `always` or nothing");
                    return None;
                }
            };
            if !(sent || always) {
                continue;
            }
            if name.eq_ignore_ascii_case("content-length") {
                self.warn(d, "ignored: the proxy frames each response itself");
                continue;
            }
            let value = self.header_value(d, name, value)?;
            if headers.contains_key(name) {
                self.warn(d, "a second value for the same header: the last is sent");
            }
            headers.insert(name.clone(), Value::from(value));
        }
        Some(headers)
    }

    /// `if (CONDITION) { return ...; }` as a `conditional_answers` entry; `None` (an error
    /// given) for any other `if`.
    fn if_answer(&mut self, d: &Directive) -> Option<figment::value::Dict> {
        let when = match condition_words(d).as_slice() {
            [variable] if variable.starts_with('$') => variable.clone(),
            [variable, operator, value] if variable.starts_with('$') => {
                format!("{variable} {operator} {value}")
            }
            _ => {
                self.error(
                    d,
                    "only a condition on a request variable is supported ($var, $var = text, \
                     $var ~ regex...), not a file test",
                );
                return None;
            }
        };
        if let Err(why) = super::Condition::parse(&when) {
            self.error(d, why);
            return None;
        }
        let body = d.block.as_deref().unwrap_or_default();
        if !body.iter().any(|inner| inner.name == "return")
            || body
                .iter()
                .any(|inner| !matches!(inner.name.as_str(), "return" | "access_log" | "add_header"))
        {
            self.error(
                d,
                "only `if (...) { return ...; }` is supported: the proxy answers when the \
                 condition holds, and forwards the request as it came otherwise",
            );
            return None;
        }
        let mut entry = self.answer_of(d)??;
        entry.insert("when".into(), Value::from(when));
        Some(entry)
    }

    /// The answering locations, as one `proxy.fixed_responses`; a `default_type` nothing uses
    /// is ignored, as before.
    fn fixed_responses(&mut self) {
        let fixed = std::mem::take(&mut self.fixed);
        match self.fixed_at.take() {
            Some(at) => self.set(&at, &["proxy", "fixed_responses"], Value::from(fixed)),
            // Nor a route that answers or serves files.
            None if self.default_type_used => {}
            None => {
                if let Some(d) = self.default_type.take() {
                    self.warn(&d, format!("ignored: {}", why_ignored("default_type")));
                }
            }
        }
    }

    /// `proxy_connect_timeout` and `proxy_read_timeout`: each `location /`'s, else the server's
    /// (or the `http` level's), as nginx inherits a directive its level does not set.
    fn upstream_timeouts(&mut self) {
        let [outer, location] = std::mem::take(&mut self.upstream_timeouts);
        for (name, key) in [
            (
                "proxy_connect_timeout",
                &["proxy", "upstream_connect_timeout"],
            ),
            (
                "proxy_read_timeout",
                &["proxy", "upstream_response_timeout"],
            ),
        ] {
            let last = |level: &[Directive]| level.iter().rfind(|d| d.name == name).cloned();
            if let Some(d) = last(&location).or_else(|| last(&outer)) {
                self.duration(&d, key);
            }
        }
    }

    /// `access_log`: `location /`'s, else the server's, else the `http` level's, as nginx takes
    /// the nearest level that has any; at that level `off` wins over files. With none at all,
    /// nginx logs every request (its `combined` format to its `access.log`), so the proxy's
    /// access log is on too.
    fn access_log(&mut self, server: &Directive) {
        let [http, own, location] = std::mem::take(&mut self.access_logs);
        let key: &'static [&'static str] = &["proxy", "access_log"];
        let level = [location, own, http]
            .into_iter()
            .find(|level| !level.is_empty());
        let Some(level) = level else {
            self.set(server, key, Value::from(true));
            self.warn(
                server,
                "no access_log, so nginx would log every request (its combined format, to its \
                 access.log): the proxy's access log is on, one line per request to stderr in \
                 its own format (see Logs in the README); `access_log off;` turns it off",
            );
            return;
        };
        if let Some(off) = level
            .iter()
            .find(|d| d.args.first().is_some_and(|a| a == "off"))
        {
            self.set(off, key, Value::from(false));
            return;
        }
        for d in &level {
            self.set(d, key, Value::from(true));
            self.warn(
                d,
                "the access log goes to the proxy's stderr, in its own format (see Logs in the \
                 README), not to a file",
            );
        }
    }

    /// `proxy_http_version` is still warned about (the proxy speaks HTTP/1.1 to the app);
    /// both are kept for [`Mapper::buffered`].
    fn buffering_directive(&mut self, d: &Directive) -> Directive {
        if d.name == "proxy_http_version" {
            let why = why_ignored(&d.name);
            self.warn(d, format!("ignored: {why}"));
        }
        d.clone()
    }

    /// Whether nginx reads a request body whole before it sends it, from the
    /// `proxy_request_buffering` and `proxy_http_version` of `levels` (nearest first; each
    /// directive the last of the nearest level that has it): unless `proxy_request_buffering
    /// off`, and even then for a chunked body unless `proxy_http_version 1.1`, as nginx can
    /// send a body of unknown length to the app only chunked. `None` after an error.
    fn buffered(&mut self, levels: &[&[Directive]]) -> Option<bool> {
        let nearest = |name: &str| {
            levels
                .iter()
                .find_map(|level| level.iter().rfind(|d| d.name == name))
                .cloned()
        };
        let Some(d) = nearest("proxy_request_buffering") else {
            return Some(true);
        };
        match d.args.as_slice() {
            [on] if on == "on" => Some(true),
            [off] if off == "off" => {
                let version = nearest("proxy_http_version");
                if version.is_some_and(|v| v.args == ["1.1"]) {
                    Some(false)
                } else {
                    self.warn(
                        &d,
                        "a body without a length is read whole first all the same (as nginx \
                         does without proxy_http_version 1.1: it cannot send one chunked)",
                    );
                    Some(true)
                }
            }
            _ => {
                self.error(&d, "expects on or off");
                None
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

    /// The `listen`s of the TLS server: those with `ssl`, or all of them under `ssl on`.
    fn listen(&mut self, server: &Directive, listens: &[Directive], ssl_on: Option<&Directive>) {
        if let Some(d) = ssl_on {
            self.warn(
                d,
                "every listen of the server is TLS, as `listen ... ssl` (`ssl on` is deprecated \
                 in nginx and gone from 1.25.1)",
            );
        }
        // Each address once, with the first `listen` that named it.
        let mut chosen: Vec<(String, &Directive)> = Vec::new();
        for d in listens {
            let Some(address) = d.args.first() else {
                self.error(d, "expects an address or a port");
                continue;
            };
            if ssl_on.is_none() && !d.args.iter().skip(1).any(|a| a == "ssl") {
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
            let socket = socket_of(address);
            let port = |s: &str| s.rsplit(':').next().map(str::to_string);
            let wildcard = |s: &str| s.starts_with("0.0.0.0:") || s.starts_with("[::]:");
            if let Some(same) = chosen.iter_mut().find(|(first, _)| {
                port(first) == port(&socket) && wildcard(first) && wildcard(&socket)
            }) {
                // IPv4 and IPv6 on every address: one dual-stack socket.
                same.0 = format!("[::]:{}", port(&socket).unwrap_or_default());
            } else if chosen.iter().any(|(first, _)| *first == socket) {
                self.warn(d, format!("{socket} is listened on already"));
            } else {
                chosen.push((socket, d));
            }
        }
        // nginx binds a wildcard address once and serves its port's other addresses on it;
        // a socket of their own would not bind beside it.
        let covered = |socket: &str, by: &str| {
            let (host, port) = socket.rsplit_once(':').unwrap_or_default();
            by != socket
                && (by == format!("[::]:{port}")
                    || (by == format!("0.0.0.0:{port}") && !host.starts_with('[')))
        };
        let wildcards: Vec<String> = chosen.iter().map(|(socket, _)| socket.clone()).collect();
        chosen.retain(|(socket, _)| !wildcards.iter().any(|by| covered(socket, by)));
        let Some((_, at)) = chosen.first() else {
            self.error(server, "no `listen ... ssl` the proxy can serve");
            return;
        };
        let at = (*at).clone();
        let ports: Vec<&str> = chosen
            .iter()
            .filter_map(|(socket, _)| socket.rsplit(':').next())
            .collect();
        // `$server_port` is a constant when every listener has the same port.
        self.listen_port = ports
            .iter()
            .all(|p| *p == ports[0])
            .then(|| ports[0].to_string());
        let value = match chosen.as_slice() {
            [(socket, _)] => Value::from(socket.clone()),
            several => Value::from(
                several
                    .iter()
                    .map(|(socket, _)| Value::from(socket.clone()))
                    .collect::<Vec<_>>(),
            ),
        };
        self.set(&at, &["proxy", "listen"], value);
    }

    /// Whether `location /` in `server_block` must be a route: it has an `if` nginx enters or a
    /// `rewrite`, and another location takes requests (a `location /` alone is the proxy's
    /// own, its `if`s and `rewrite`s the proxy's).
    fn root_needs_a_route(&self, server_block: &[Directive]) -> bool {
        let locations = || server_block.iter().filter(|d| d.name == "location");
        let is_root = |d: &Directive| d.args.len() == 1 && d.args[0] == "/";
        locations().any(|d| !is_root(d))
            && locations().filter(|d| is_root(d)).any(|root| {
                root.block
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|inner| {
                        inner.name == "rewrite"
                            || (inner.name == "if"
                                && !scheme_is_never(&inner.args)
                                && self.tested_unset(inner).is_none_or(|(_, holds)| holds))
                    })
            })
    }

    /// A `location`: only `/` (prefix), holding `proxy_pass`; `true` when it proxies.
    fn location(&mut self, d: &Directive) -> bool {
        let is_root = d.args.len() == 1 && d.args[0] == "/";
        let body = d.block.as_deref().unwrap_or_default();
        if is_root && (self.root_as_route || !body.iter().any(|inner| inner.name == "proxy_pass")) {
            // Files (or a refusal), or its own `if`s and `rewrite`s beside other locations:
            // a route for every request no other location takes.
            self.routes.push(d.clone());
            self.root_routed = true;
            return false;
        }
        if !is_root && self.answering_location(d) {
            return false;
        }
        if !is_root {
            // Forwarded, refused, or serving files.
            self.routes.push(d.clone());
            return false;
        }
        let body = d.block.clone().unwrap_or_default();
        let server = self.with_location_constants(d);
        let mut proxied = false;
        for inner in &body {
            if inner.name == "proxy_pass" {
                proxied = true;
            }
            self.location_directive(inner);
        }
        self.constants = server;
        proxied
    }

    fn location_directive(&mut self, d: &Directive) {
        let arg = d.args.first().cloned().unwrap_or_default();
        match d.name.as_str() {
            "proxy_pass" => self.proxy_pass(d, &arg),
            "proxy_connect_timeout" | "proxy_read_timeout" => {
                self.upstream_timeouts[1].push(d.clone());
            }
            "proxy_request_buffering" | "proxy_http_version" => {
                let d = self.buffering_directive(d);
                self.request_buffering[1].push(d);
            }
            "client_body_timeout" => self.body_timeout[1] = Some(d.clone()),
            "send_timeout" => self.send_timeout[1] = Some(d.clone()),
            "keepalive_requests" => self.keepalive_requests[1] = Some(d.clone()),
            "proxy_set_header" => self.set_headers[1].push(d.clone()),
            "auth_basic" | "auth_basic_user_file" => self.auth[1].push(d.clone()),
            "proxy_cookie_flags" => self.cookie_flags[1].push(d.clone()),
            "limit_req" | "limit_req_status" | "limit_req_dry_run" | "limit_req_log_level" => {
                self.rate_limits[1].push(d.clone());
            }
            "limit_conn" | "limit_conn_status" | "limit_conn_dry_run" => {
                self.conn_limits[1].push(d.clone());
            }
            "proxy_hide_header" => self.hide[1].push(d.clone()),
            "error_page" => self.error_pages[2].push(d.clone()),
            "proxy_intercept_errors" => self.intercept_errors[2] = Some(d.clone()),
            "proxy_ignore_headers" => {
                self.ignored_headers(d);
                self.ignore_headers[2].push(d.clone());
            }
            "auth_request" => self.auth_request[2] = Some(d.clone()),
            "auth_request_set" => {}
            name if name.starts_with("proxy_ssl") && d.name != "proxy_pass" => {
                self.proxy_ssl_root.push(d.clone());
            }
            "limit_except" => {
                if let Some(except) = self.limit_except(d) {
                    self.set(d, &["proxy", "limit_except"], Value::from(except));
                }
            }
            "allow" | "deny" => self.access[2].push(d.clone()),
            "satisfy" => self.satisfy(d),
            "expires" => self.expires[1] = Some(d.clone()),
            "add_header" | "access_log" => self.response_directive(d, true),
            "client_max_body_size" => self.body_size[1] = Some(d.clone()),
            "proxy_redirect" => self.redirects[1].push(d.clone()),
            name if name.starts_with("gzip") => self.location_gzip(d),
            "absolute_redirect" | "port_in_redirect" | "server_name_in_redirect" => {
                self.location_redirect_setting(d);
            }
            // Read before the loop ([`Mapper::with_location_constants`]).
            "set" => {}
            name if NGINX_ITSELF.contains(&name) => {
                let why = why_ignored(name);
                self.warn(d, format!("ignored: {why}"));
            }
            _ if self.without_effect(d) => {}
            "if" if !self.root_rewrites.is_empty() => self.error(d, IF_AFTER_REWRITE),
            "if" => self.root_ifs.push(d.clone()),
            "rewrite" => self.root_rewrites.push(d.clone()),
            _ => self.error(
                d,
                "not supported in location /: the proxy forwards every request as it came",
            ),
        }
    }

    /// Directives of the server or `location /` that make no difference here, each warned
    /// about; `false` for anything else (the caller refuses it). `chunked_transfer_encoding on`
    /// (nginx's default); `proxy_ssl_*` (kept for [`Mapper::proxy_ssl`]); an `if` on
    /// `$scheme` that can only be true over plain HTTP, in a server that has none; an `if`
    /// nginx tests before its variable is set ([`Mapper::tested_unset`]);
    /// `ignore_invalid_headers off`.
    fn without_effect(&mut self, d: &Directive) -> bool {
        if d.name == "if"
            && let Some((variable, holds)) = self.tested_unset(d)
        {
            let why = format!(
                "{variable} is set only by auth_request_set, in nginx's access phase, and nginx \
                 tests an `if` before it (in its rewrite phase), on an empty value"
            );
            if holds {
                self.error(
                    d,
                    format!(
                        "not supported: nginx enters this block on every request: {why}; move \
                         what it holds out of the `if`"
                    ),
                );
            } else {
                self.warn(
                    d,
                    format!("ignored with its block: nginx never enters it: {why}"),
                );
            }
            return true;
        }
        let arg = d.args.first().map(String::as_str).unwrap_or_default();
        match d.name.as_str() {
            "proxy_ignore_client_abort" if arg == "off" && d.args.len() == 1 => {
                self.warn(
                    d,
                    "ignored: off is nginx's default: a request whose client goes away is \
                     abandoned, its connection to the app closed",
                );
                true
            }
            "proxy_ignore_client_abort" => {
                self.error(
                    d,
                    "only off is supported: with on nginx lets the app finish a request whose \
                     client went away, where the proxy closes its connection",
                );
                true
            }
            "chunked_transfer_encoding" if arg == "on" && d.args.len() == 1 => {
                self.warn(
                    d,
                    "ignored: on is nginx's default; the proxy too sends a response of unknown \
                     length chunked to an HTTP/1.1 client",
                );
                true
            }
            name if name.starts_with("proxy_ssl_") || name == "proxy_ssl" => {
                self.proxy_ssl.push(d.clone());
                true
            }
            "if" if scheme_is_never(&d.args) => {
                self.warn(
                    d,
                    if self.tls_only {
                        "ignored with its block: never true, as every listen of this server is \
                         TLS ($scheme is always https)"
                    } else {
                        "ignored with its block: true only on the listen without ssl, which is \
                         not served; on the TLS listener $scheme is always https"
                    },
                );
                true
            }
            _ => false,
        }
    }

    /// For an `if` whose condition tests a variable that only `auth_request_set` sets (or an
    /// `$upstream_` one), outside a location reached internally: the variable, and whether the
    /// condition holds on the empty value nginx tests (its rewrite phase comes before the access
    /// phase, where `auth_request` runs; an internal redirect after it, such as an error page's,
    /// would see them set).
    fn tested_unset(&self, d: &Directive) -> Option<(String, bool)> {
        if self.internal_location {
            return None;
        }
        let words = condition_words(d);
        let name = words.first()?.strip_prefix('$')?;
        let name = name
            .strip_prefix('{')
            .and_then(|n| n.strip_suffix('}'))
            .unwrap_or(name);
        if !name.starts_with("upstream_") && !self.auth_variables.iter().any(|v| v == name) {
            return None;
        }
        let holds = match words.as_slice() {
            [_] => false,
            // A compared text may hold variables; a regular expression holds none.
            [_, operator, value] => match operator.as_str() {
                "=" if !value.contains('$') => value.is_empty(),
                "!=" if !value.contains('$') => !value.is_empty(),
                "~" | "~*" | "!~" | "!~*" => {
                    let regex = super::regex_for(value, operator.ends_with('*')).ok()?;
                    regex.is_match("").ok()? != operator.starts_with('!')
                }
                _ => return None,
            },
            _ => return None,
        };
        Some((format!("${name}"), holds))
    }

    /// `proxy_ssl_*`: with the `http://` upstream `proxy_pass` gave, nginx never uses them; else
    /// (no upstream, or one refused) they are refused too.
    fn proxy_ssl(&mut self) {
        let server = self.proxy_ssl.clone();
        let root = std::mem::take(&mut self.proxy_ssl_root);
        let https = self
            .proxy_pass_url
            .as_ref()
            .is_some_and(|(_, url)| url.starts_with("https://"));
        if let (true, Some((pass, _))) = (https, self.proxy_pass_url.clone()) {
            if let Some(tls) = self.upstream_tls(&pass, &root, &server) {
                self.set(&pass, &["proxy", "upstream_tls"], Value::from(tls));
            }
            return;
        }
        let unused = if self.upstream_is_https {
            // The server's serve the routes that use them.
            root
        } else {
            server.into_iter().chain(root).collect()
        };
        for d in unused {
            self.warn(
                &d,
                "ignored: the upstream is http://, and nginx uses proxy_ssl_* only with an \
                 https:// one",
            );
        }
    }

    /// `proxy_ssl_*` for an `https://` upstream as `upstream_tls`: each the location's own,
    /// else the server's (or `http`'s), nginx's defaults (no verification, no SNI) without
    /// any; `None` when one is refused (said).
    fn upstream_tls(
        &mut self,
        pass: &Directive,
        own: &[Directive],
        outer: &[Directive],
    ) -> Option<figment::value::Dict> {
        let last = |name: &str| {
            own.iter()
                .rfind(|d| d.name == name)
                .or_else(|| outer.iter().rfind(|d| d.name == name))
                .cloned()
        };
        let mut tls = figment::value::Dict::new();
        let mut ok = true;
        let mut flag = |this: &mut Self, name: &str, key: &str| match last(name) {
            None => {
                tls.insert(key.into(), Value::from(false));
                None
            }
            Some(d) => match d.args.as_slice() {
                [on] if on == "on" => {
                    tls.insert(key.into(), Value::from(true));
                    Some(d)
                }
                [off] if off == "off" => {
                    tls.insert(key.into(), Value::from(false));
                    Some(d)
                }
                _ => {
                    this.error(&d, "takes on or off");
                    ok = false;
                    None
                }
            },
        };
        let verify = flag(self, "proxy_ssl_verify", "verify");
        flag(self, "proxy_ssl_server_name", "send_server_name");
        if tls.get("verify").is_none_or(|v| v.to_bool() != Some(true)) {
            let at = verify.unwrap_or_else(|| pass.clone());
            self.warn(
                &at,
                "the app's certificate is not verified (nginx's default, proxy_ssl_verify off); \
                 proxy_ssl_verify on with proxy_ssl_trusted_certificate verifies it",
            );
        }
        for (name, key) in [
            ("proxy_ssl_trusted_certificate", "ca_file"),
            ("proxy_ssl_name", "server_name"),
            ("proxy_ssl_certificate", "cert_file"),
            ("proxy_ssl_certificate_key", "key_file"),
        ] {
            if let Some(d) = last(name) {
                match d.args.as_slice() {
                    [value] if !value.contains('$') => {
                        tls.insert(key.into(), Value::from(value.clone()));
                    }
                    _ => {
                        self.error(&d, "takes one value (a variable is not supported)");
                        ok = false;
                    }
                }
            }
        }
        for d in own.iter().chain(outer) {
            match d.name.as_str() {
                "proxy_ssl_verify"
                | "proxy_ssl_server_name"
                | "proxy_ssl_trusted_certificate"
                | "proxy_ssl_name"
                | "proxy_ssl_certificate"
                | "proxy_ssl_certificate_key" => {}
                "proxy_ssl_protocols" | "proxy_ssl_ciphers" | "proxy_ssl_conf_command" => {
                    self.warn(d, "ignored: rustls chooses (TLS 1.3 and 1.2, AEAD suites)");
                }
                "proxy_ssl_session_reuse" | "proxy_ssl_verify_depth" => {
                    self.warn(d, "ignored: it tunes nginx itself");
                }
                _ => {
                    self.error(d, "not supported for an https:// upstream");
                    ok = false;
                }
            }
        }
        ok.then_some(tls)
    }

    /// `proxy_set_header`: `location /`'s, else the server's (or the `http` level's), as nginx
    /// inherits them. The forwarding headers the proxy sets its own way are mapped or warned
    /// about; any other with a fixed value, or one of the variables that are constant on the
    /// one TLS listener (`$scheme` https, `$https` on, `$server_port`), goes to
    /// `proxy.request_headers` (an empty value removes the header, as nginx does). Without a
    /// `Host`, nginx sends the `proxy_pass` host (`$proxy_host`): written out.
    fn proxy_set_headers(&mut self) {
        let [outer, location] = std::mem::take(&mut self.set_headers);
        let level = if location.is_empty() { outer } else { location };
        let url = self.proxy_pass_url.clone();
        let (first, headers, real_ip) = self.request_headers(&level, url.as_ref());
        if let Some(d) = real_ip {
            self.set(&d, &["proxy", "x_real_ip"], Value::from(true));
        }
        if let Some(d) = first {
            self.set(&d, &["proxy", "request_headers"], Value::from(headers));
        }
    }

    /// The `proxy_set_header`s of one level as `request_headers` (see
    /// [`Mapper::proxy_set_headers`]), the first of them, and the `X-Real-IP $remote_addr`
    /// that stands for `x_real_ip` if there is one.
    fn request_headers(
        &mut self,
        level: &[Directive],
        proxy_pass_url: Option<&(Directive, String)>,
    ) -> (Option<Directive>, figment::value::Dict, Option<Directive>) {
        let mut real_ip_at = None;
        let mut headers = figment::value::Dict::new();
        let mut first: Option<Directive> = None;
        let mut host = false;
        for d in level {
            let [name, value] = d.args.as_slice() else {
                self.error(d, "expects a header name and a value");
                continue;
            };
            let value = value.as_str();
            let lower = name.to_ascii_lowercase();
            host |= lower == "host";
            let real_ip = "from a set_real_ip_from peer, nginx's $remote_addr is the client \
                           address that peer forwards; the proxy's is always the peer's (the TCP \
                           address)";
            if lower == "x-real-ip" && value == "$remote_addr" {
                real_ip_at = Some(d.clone());
                if self.real_ip_from {
                    self.warn(d, real_ip);
                }
                continue;
            }
            // nginx's `$proxy_host`: the proxy_pass host as written (its port unless the
            // scheme's own).
            let proxied;
            let value = if names_variable(value, "proxy_host") {
                match proxy_pass_url.and_then(|(_, url)| proxy_host(url)) {
                    Some(host) => {
                        proxied = value
                            .replace("${proxy_host}", &host)
                            .replace("$proxy_host", &host);
                        proxied.as_str()
                    }
                    None => {
                        self.error(
                            d,
                            "$proxy_host stands for a proxy_pass host written without a variable",
                        );
                        continue;
                    }
                }
            } else {
                value
            };
            if lower == "host" && value.is_empty() {
                self.error(
                    d,
                    "an empty Host is not supported: the app is told a host ($proxy_host by \
                     default, as nginx)",
                );
                continue;
            }
            if lower == "x-forwarded-for"
                && matches!(value, "$proxy_add_x_forwarded_for" | "$remote_addr")
            {
                self.forwarded_for
                    .push((d.clone(), value == "$proxy_add_x_forwarded_for"));
                continue;
            }
            if header_is_equivalent(name, value) {
                continue;
            }
            if let Some(why) = own_request_header(&lower) {
                self.error(d, format!("{name} {value:?} is not supported: {why}"));
                continue;
            }
            let port = self.listen_port.clone();
            let server_name = self.server_name.clone();
            let fixed = match substitute(value, |variable| match variable {
                "scheme" => Some("https".to_string()),
                "https" => Some("on".to_string()),
                // Per request when the listeners' ports differ.
                "server_port" => Some(port.clone().unwrap_or("${server_port}".to_string())),
                "server_name" => Some(server_name.clone()),
                // Replaced by the proxy for each request (braced: text may follow).
                other if super::request_header_parts(&format!("${{{other}}}")).is_ok() => {
                    Some(format!("${{{variable}}}"))
                }
                _ => None,
            }) {
                Ok(fixed) => fixed,
                Err(variable) => {
                    self.error(
                        d,
                        format!("{name} {value}: {variable} is not supported (only {VARIABLES})"),
                    );
                    continue;
                }
            };
            if headers.contains_key(name.as_str())
                || headers.keys().any(|k| k.eq_ignore_ascii_case(name))
            {
                self.error(d, format!("{name} is set twice: nginx would send both"));
                continue;
            }
            if self.real_ip_from && fixed.contains("${remote_addr}") {
                self.warn(d, real_ip);
            }
            headers.insert(name.clone(), Value::from(fixed));
            first.get_or_insert_with(|| d.clone());
        }
        // nginx's default `proxy_set_header Host $proxy_host`.
        if !host && let Some((at, url)) = proxy_pass_url {
            match proxy_host(url) {
                Some(authority) => {
                    headers.insert("Host".to_string(), Value::from(authority));
                    first.get_or_insert_with(|| at.clone());
                }
                None => self.warn(
                    at,
                    "no proxy_set_header Host: nginx sends the host of this proxy_pass, which \
                     has a variable; the proxy passes the Host the client sent",
                ),
            }
        }
        (first, headers, real_ip_at)
    }

    /// `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` (the client's list, this
    /// hop's address after it) as `proxy.append_forwarded_for`; the proxy does it the same way
    /// in every location, so a location that sets `$remote_addr` beside it is warned about.
    fn forwarded_for(&mut self) {
        let set = std::mem::take(&mut self.forwarded_for);
        let Some((first, _)) = set.iter().find(|(_, append)| *append) else {
            return;
        };
        self.set(first, &["proxy", "append_forwarded_for"], Value::from(true));
        for (d, _) in set.iter().filter(|(_, append)| !append) {
            self.warn(
                d,
                "a client's own X-Forwarded-For is appended to here too: the proxy does it in \
                 every location, as $proxy_add_x_forwarded_for elsewhere in this server asks",
            );
        }
    }

    /// `absolute_redirect` (nginx's default on), `port_in_redirect` (on) and
    /// `server_name_in_redirect` (off) of the server (or the `http` level), as
    /// `proxy.absolute_redirects` and `proxy.port_in_redirects`; nginx makes a redirect to a path
    /// absolute with the host the client named, the proxy too; the server's name instead
    /// (`server_name_in_redirect on`) is refused.
    fn redirects(&mut self, server: &Directive, directives: &[Directive]) {
        let mut settings: Vec<Directive> = Vec::new();
        for name in [
            "absolute_redirect",
            "port_in_redirect",
            "server_name_in_redirect",
        ] {
            if let Some(d) = directives.iter().rfind(|d| d.name == name) {
                settings.push(d.clone());
            }
        }
        let mut absolute = (server.clone(), true);
        let mut port = None;
        for d in &settings {
            let on = match d.args.as_slice() {
                [on] if on == "on" => true,
                [off] if off == "off" => false,
                _ => {
                    self.error(d, "expects on or off");
                    continue;
                }
            };
            match d.name.as_str() {
                "absolute_redirect" => absolute = (d.clone(), on),
                "port_in_redirect" => port = Some((d.clone(), on)),
                _ if on => self.error(
                    d,
                    "not supported: the proxy names the host the client asked for in a \
                     redirect it makes absolute, not the server's name",
                ),
                _ => {}
            }
        }
        self.set(
            &absolute.0,
            &["proxy", "absolute_redirects"],
            Value::from(absolute.1),
        );
        if let Some((d, on)) = port {
            self.set(&d, &["proxy", "port_in_redirects"], Value::from(on));
        }
        self.redirect_settings = settings;
    }

    /// A location's own `absolute_redirect`, `port_in_redirect` or `server_name_in_redirect`:
    /// the same as the server's is fine (`true`); another is refused (said).
    fn location_redirect_setting(&mut self, d: &Directive) -> bool {
        let default = if d.name == "server_name_in_redirect" {
            "off"
        } else {
            "on"
        };
        let server = self
            .redirect_settings
            .iter()
            .find(|s| s.name == d.name)
            .and_then(|s| s.args.first())
            .map_or(default, String::as_str);
        if d.args.len() == 1 && d.args[0] == server {
            return true;
        }
        self.error(
            d,
            format!(
                "a location's own is not supported: the proxy makes every redirect the same way \
                 (the server's is {server}; give it to the server)"
            ),
        );
        false
    }

    /// `ignore_invalid_headers` (nginx's default on) and `underscores_in_headers` (default off):
    /// with both defaults nginx drops request headers whose name has an underscore, which
    /// `proxy.drop_underscore_headers` does. A name that is not an HTTP token at all (a space,
    /// `@`...) gets 400 from the proxy, where nginx drops it (on) or forwards it (off): said
    /// with off, the rare case where nginx would forward what the proxy refuses.
    fn invalid_headers(&mut self, server: &Directive, directives: &[Directive]) {
        let last = |name: &str| directives.iter().rfind(|d| d.name == name).cloned();
        let mut drop = true;
        let mut at = server.clone();
        for (name, drops_when_on) in [
            ("ignore_invalid_headers", true),
            ("underscores_in_headers", false),
        ] {
            let Some(d) = last(name) else {
                continue;
            };
            match d.args.as_slice() {
                [on] if on == "on" || on == "off" => {
                    if (on == "on") != drops_when_on {
                        drop = false;
                    }
                    at = d.clone();
                }
                _ => self.error(&d, "expects on or off"),
            }
        }
        if let Some(d) = last("ignore_invalid_headers").filter(|d| d.args == ["off"]) {
            self.warn(
                &d,
                "header names with underscores are forwarded, as nginx does with off; a name \
                 that is not an HTTP token (RFC 9110: a space, `@`, `/`...) is answered 400 by \
                 the proxy, where nginx forwards it",
            );
        }
        self.set(
            &at,
            &["proxy", "drop_underscore_headers"],
            Value::from(drop),
        );
    }

    /// `proxy_redirect`: `location /`'s, else the server's (or the `http` level's), as
    /// `proxy.redirect_rewrite`; none is nginx's `default`. `default` stands for the
    /// `proxy_pass` URL (as written, with a `/`) rewritten to `/`; `off` for no rewriting;
    /// `$scheme` is `https` on the one TLS listener. A Location rewritten to a path is made
    /// absolute with `absolute_redirects`, as nginx makes it.
    fn proxy_redirect(&mut self) {
        let [outer, location] = std::mem::take(&mut self.redirects);
        let level = if location.is_empty() { outer } else { location };
        let default = self.proxy_pass.clone().map(|(at, url)| {
            let from = if url.ends_with('/') {
                url
            } else {
                format!("{url}/")
            };
            (at, from, "/".to_string())
        });
        if let Some((at, rules)) = self.redirect_rules(&level, default) {
            self.set(&at, &["proxy", "redirect_rewrite"], Value::from(rules));
        }
    }

    /// The `proxy_redirect`s of one level as `redirect_rewrite` rules, with the directive to
    /// place them at; `default` is what nginx's `default` stands for (where, from, to), none
    /// with a variable in `proxy_pass`. `None`: nothing is rewritten.
    fn redirect_rules(
        &mut self,
        level: &[Directive],
        default: Option<(Directive, String, String)>,
    ) -> Option<(Directive, Vec<Value>)> {
        let rule = |from: &str, to: &str| {
            let mut entry = figment::value::Dict::new();
            entry.insert("from".into(), Value::from(from.to_string()));
            entry.insert("to".into(), Value::from(to.to_string()));
            Value::from(entry)
        };
        if level.is_empty() {
            // nginx's default is `proxy_redirect default` (none with a variable in proxy_pass).
            return default.map(|(at, from, to)| (at, vec![rule(&from, &to)]));
        }
        if let Some(off) = level
            .iter()
            .find(|d| d.args.len() == 1 && d.args[0] == "off")
        {
            self.warn(
                off,
                "ignored: off rewrites nothing: Location and Refresh are passed as the app \
                 sends them",
            );
            return None;
        }
        let mut rules = Vec::new();
        for d in level {
            match d.args.as_slice() {
                [one] if one == "default" => match &default {
                    Some((_, from, to)) => rules.push(rule(from, to)),
                    None if self.upstream_is_http || self.upstream_is_https => self.error(
                        d,
                        "default cannot stand for a proxy_pass with a variable (nginx refuses \
                         it too)",
                    ),
                    None => {}
                },
                [from, _] if from.starts_with('~') => self.error(
                    d,
                    "a regular expression in proxy_redirect is not supported: give the prefix",
                ),
                [from, to] => {
                    let (from, to) = (
                        from.replace("$scheme", "https"),
                        to.replace("$scheme", "https"),
                    );
                    if from.contains('$') || to.contains('$') {
                        self.error(
                            d,
                            "a variable in proxy_redirect is not supported ($scheme only: \
                             https)",
                        );
                        continue;
                    }
                    rules.push(rule(&from, &to));
                }
                _ => self.error(d, "expects off, default, or the prefix and its replacement"),
            }
        }
        match (level.first(), rules.is_empty()) {
            (Some(first), false) => Some((first.clone(), rules)),
            _ => None,
        }
    }

    fn proxy_pass(&mut self, d: &Directive, target: &str) {
        let Some(upstream) = self.upstream(d, target) else {
            return;
        };
        match self.target_of(d, &upstream, Some("/")) {
            Ok(Some(("prefix_rewrite", value))) => {
                self.set(d, &["proxy", "prefix_rewrite"], Value::from(value));
            }
            Ok(Some((_, value))) => self.set(d, &["proxy", "upstream_uri"], Value::from(value)),
            Ok(None) => {}
            Err(()) => return,
        }
        // nginx's `proxy_redirect default` needs the URL as written, and none with a variable.
        self.proxy_pass = (!upstream.variables).then(|| (d.clone(), target.to_string()));
        self.proxy_pass_url = Some((d.clone(), upstream.written.clone()));
        self.set(d, &["proxy", "upstream"], Value::from(upstream.url));
    }

    /// What a `proxy_pass` URI in a location of path `location` (`None`: a regular expression
    /// or named location) makes of the request's target, as nginx: `prefix_rewrite`, the
    /// location's part replaced; `upstream_uri`, the whole target (with a variable in the URL);
    /// `None` for the target as sent; `Err` with the error said.
    fn target_of(
        &mut self,
        d: &Directive,
        upstream: &ProxyPass,
        location: Option<&str>,
    ) -> Result<Option<(&'static str, String)>, ()> {
        let path = upstream.path.as_str();
        if path.is_empty() {
            return Ok(None);
        }
        if upstream.variables {
            return match super::RewriteRule::pieces(path) {
                Ok(pieces)
                    if location.is_some()
                        && pieces
                            .iter()
                            .any(|piece| matches!(piece, super::ReplacementPiece::Capture(_))) =>
                {
                    self.error(
                        d,
                        "$1..$9 are the groups of a regular expression location, and this is \
                         not one",
                    );
                    Err(())
                }
                Ok(_) => Ok(Some(("upstream_uri", path.to_string()))),
                Err(variable) => {
                    self.error(
                        d,
                        format!("{variable} is not supported in a URI (only {VARIABLES})"),
                    );
                    Err(())
                }
            };
        }
        match location {
            Some(location) if location == path => Ok(None),
            Some(_) => Ok(Some(("prefix_rewrite", path.to_string()))),
            None => {
                self.error(
                    d,
                    "a URI in proxy_pass, in a regular expression or named location: nginx \
                     refuses it too (leave it out, or name it with a variable)",
                );
                Err(())
            }
        }
    }

    /// `limit_except METHOD... { allow ...; deny ...; }` as a `limit_except` setting; `None`
    /// when refused (said).
    fn limit_except(&mut self, d: &Directive) -> Option<figment::value::Dict> {
        if d.args.is_empty()
            || d.args
                .iter()
                .any(|m| http::Method::from_bytes(m.as_bytes()).is_err())
        {
            self.error(d, "expects the methods let through, such as `GET POST`");
            return None;
        }
        let body = d.block.as_deref().unwrap_or_default();
        let mut rules = Vec::new();
        for inner in body {
            match inner.name.as_str() {
                "allow" | "deny" => rules.push(inner.clone()),
                _ => {
                    self.error(
                        inner,
                        "only allow and deny are supported in limit_except: the proxy checks \
                         addresses for the other methods",
                    );
                    return None;
                }
            }
        }
        let rules = self.access_in_effect(&rules)?;
        let mut except = figment::value::Dict::new();
        except.insert("methods".into(), Value::from(d.args.clone()));
        except.insert("access_rules".into(), Value::from(rules));
        Some(except)
    }

    /// A `rewrite REGEX REPLACEMENT [FLAG]` as a `rewrites` entry; `None` with the error said.
    fn rewrite_rule(&mut self, d: &Directive) -> Option<figment::value::Dict> {
        let (regex, replacement, flag) = match d.args.as_slice() {
            [regex, replacement] => (regex, replacement, None),
            [regex, replacement, flag] => (regex, replacement, Some(flag)),
            _ => {
                self.error(d, "expects a regular expression, a replacement and a flag");
                return None;
            }
        };
        if let Err(why) = super::regex_for(regex, false) {
            self.error(d, format!("{regex}: {why}"));
            return None;
        }
        if let Err(variable) = super::RewriteRule::pieces(replacement) {
            self.error(
                d,
                format!(
                    "{variable} is not supported in a replacement (only $1..$9 and {VARIABLES})"
                ),
            );
            return None;
        }
        let mut rule = figment::value::Dict::new();
        rule.insert("regex".into(), Value::from(regex.clone()));
        rule.insert("replacement".into(), Value::from(replacement.clone()));
        if let Some(flag) = flag {
            if !matches!(flag.as_str(), "last" | "break" | "redirect" | "permanent") {
                self.error(
                    d,
                    format!("{flag}: expects last, break, redirect or permanent"),
                );
                return None;
            }
            rule.insert("flag".into(), Value::from(flag.clone()));
        }
        Some(rule)
    }

    /// The server's own `set $NAME VALUE;` of constants (no variable in the value); any other
    /// `set` is an error.
    fn constants_of(&mut self, block: &[Directive]) -> Vec<(String, String)> {
        let mut constants = Vec::new();
        for d in block.iter().filter(|d| d.name == "set") {
            let name = d.args.first().and_then(|n| n.strip_prefix('$'));
            match (name, d.args.get(1), d.args.len()) {
                (Some(name), Some(value), 2)
                    if !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !value.contains('$') =>
                {
                    constants.retain(|(n, _): &(String, String)| n != name);
                    constants.push((name.to_string(), value.clone()));
                }
                _ => self.error(
                    d,
                    "only a constant is supported (`set $app 127.0.0.1:8080;`, for proxy_pass \
                     to name): the proxy keeps no variables of its own",
                ),
            }
        }
        constants
    }

    /// Adds the `set` constants of the location `d` to the server's (a location's own wins, as
    /// its rewrite phase comes after the server's); the server's, to be put back.
    fn with_location_constants(&mut self, d: &Directive) -> Vec<(String, String)> {
        let own = self.constants_of(d.block.as_deref().unwrap_or_default());
        let server = self.constants.clone();
        for (name, value) in own {
            self.constants.retain(|(n, _)| *n != name);
            self.constants.push((name, value));
        }
        server
    }

    /// `target` with the `set` constants (the server's, the location's) put in; whether any
    /// was.
    fn with_constants(&self, target: &str) -> (String, bool) {
        let Ok(pieces) = super::variable_pieces(target) else {
            return (target.to_string(), false);
        };
        if !pieces.iter().any(|piece| {
            matches!(piece, super::VariablePiece::Variable(name)
                if self.constants.iter().any(|(n, _)| n == name))
        }) {
            return (target.to_string(), false);
        }
        let mut out = String::new();
        let mut any = false;
        for piece in pieces {
            match piece {
                super::VariablePiece::Text(text) => out.push_str(text),
                super::VariablePiece::Variable(name) => {
                    match self.constants.iter().find(|(n, _)| n == name) {
                        Some((_, value)) => {
                            out.push_str(value);
                            any = true;
                        }
                        None => out.push_str(&format!("${{{name}}}")),
                    }
                }
            }
        }
        (out, any)
    }

    /// The upstream a `proxy_pass` names (an `upstream` block's one server, `localhost` as
    /// 127.0.0.1), or `None` with the error said.
    fn upstream(&mut self, d: &Directive, target: &str) -> Option<ProxyPass> {
        let (target, constants) = self.with_constants(target);
        let (scheme, rest) = if let Some(rest) = target.strip_prefix("http://") {
            ("http", rest)
        } else if let Some(rest) = target.strip_prefix("https://") {
            ("https", rest)
        } else {
            self.error(d, "expects http://HOST:PORT or https://HOST:PORT");
            return None;
        };
        // `$request_uri` right after the address: the request's URI as the client sent it,
        // which is what the proxy forwards (and nginx, without a URI).
        let (rest, variables) = match rest
            .strip_suffix("$request_uri")
            .or_else(|| rest.strip_suffix("${request_uri}"))
        {
            Some(authority) if !authority.contains(['/', '$']) => (authority, true),
            _ => (rest, constants || rest.contains('$')),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.contains('$') {
            self.error(d, "an upstream chosen by a variable is not supported");
            return None;
        }
        // An `upstream NAME { server ADDR; }` block stands for its one server.
        let address = match self
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
                        return None;
                    }
                }
            }
            None => authority.to_string(),
        };
        let address = if address.contains(':') {
            address
        } else if scheme == "https" {
            format!("{address}:443")
        } else {
            format!("{address}:80")
        };
        let address = address.replacen("localhost:", "127.0.0.1:", 1);
        if scheme == "https" {
            self.upstream_is_https = true;
        } else {
            self.upstream_is_http = true;
        }
        Some(ProxyPass {
            url: format!("{scheme}://{address}"),
            written: format!("{scheme}://{authority}"),
            path: path.to_string(),
            variables,
        })
    }

    /// The server's `error_page`s: its own, else the `http` level's.
    fn server_error_pages(&self) -> Vec<Directive> {
        if self.error_pages[1].is_empty() {
            self.error_pages[0].clone()
        } else {
            self.error_pages[1].clone()
        }
    }

    /// `proxy.error_pages` and `proxy.intercept_errors`: `location /`'s, else the server's,
    /// else the `http` level's.
    fn error_pages(&mut self) {
        let level = if self.error_pages[2].is_empty() {
            self.server_error_pages()
        } else {
            self.error_pages[2].clone()
        };
        if let Some(first) = level.first()
            && let Some(pages) = self.error_page_entries(&level)
        {
            self.set(first, &["proxy", "error_pages"], Value::from(pages));
        }
        let [http, server, root] = self.intercept_errors.clone();
        if let Some(d) = root.or(server).or(http)
            && let Some(on) = self.intercept_value(Some(&d))
        {
            self.set(&d, &["proxy", "intercept_errors"], Value::from(on));
        }
        // nginx follows `X-Accel-Redirect` unless told not to (the proxy, without an nginx
        // file, only when told to).
        let [http, server, root] = self.ignore_headers.clone();
        let level = [root, server, http].into_iter().find(|l| !l.is_empty());
        if let Some(at) = level
            .as_ref()
            .and_then(|level| level.first())
            .or(self.server_at.as_ref())
            .cloned()
        {
            let follow = !level.is_some_and(|level| ignores_accel_redirect(&level));
            self.set(&at, &["proxy", "accel_redirect"], Value::from(follow));
        }
        let [http, server, root] = self.auth_request.clone();
        if let Some(d) = root.or(server).or(http)
            && let Some(path) = self.auth_path(&d)
        {
            self.set(&d, &["proxy", "auth_request"], Value::from(path));
        }
    }

    /// `auth_request URI | off`; `None` when refused (said).
    fn auth_path(&mut self, d: &Directive) -> Option<String> {
        match d.args.as_slice() {
            [path] if path == "off" || (path.starts_with('/') && !path.contains('$')) => {
                Some(path.clone())
            }
            _ => {
                self.error(d, "takes a path (a variable is not supported) or off");
                None
            }
        }
    }

    /// `auth_request_set $NAME VALUE` anywhere in `directives`, as maps that give `VALUE`
    /// whatever their source (`$upstream_http_NAME`, the auth request's answer's header, is
    /// the proxy's `$auth_http_NAME`); any other `$upstream_` variable is an error.
    fn auth_request_sets(&mut self, directives: &[Directive]) -> Vec<Directive> {
        let mut maps = Vec::new();
        for d in directives {
            if d.name == "auth_request"
                && let Some(path) = d.args.first()
                && path != "off"
            {
                self.auth_paths.push(path.clone());
            }
            if d.name == "auth_request_set" {
                match d.args.as_slice() {
                    [name, value] if name.starts_with('$') => {
                        let value = value
                            .replace("$upstream_http_", "$auth_http_")
                            .replace("${upstream_http_", "${auth_http_")
                            .replace("$upstream_cookie_", "$auth_set_cookie_")
                            .replace("${upstream_cookie_", "${auth_set_cookie_");
                        if value.contains("$upstream_") || value.contains("${upstream_") {
                            self.error(
                                d,
                                "only $upstream_http_NAME (a header of the auth request's answer) \
                                 and $upstream_cookie_NAME (a cookie it sets) are supported of \
                                 the $upstream_ variables",
                            );
                            continue;
                        }
                        maps.push(Directive {
                            name: "auth_request_set".to_string(),
                            args: vec![value.clone(), name.clone()],
                            at: d.at.clone(),
                            block: Some(vec![Directive {
                                name: "default".to_string(),
                                args: vec![value],
                                at: d.at.clone(),
                                block: None,
                            }]),
                        });
                    }
                    _ => self.error(d, "takes a $variable and a value"),
                }
            }
            if let Some(block) = &d.block {
                maps.extend(self.auth_request_sets(block));
            }
        }
        maps
    }

    /// `proxy_intercept_errors on|off` (`None`: off); `None` when refused (said).
    fn intercept_value(&mut self, d: Option<&Directive>) -> Option<bool> {
        let Some(d) = d else {
            return Some(false);
        };
        match d.args.as_slice() {
            [on] if on == "on" => Some(true),
            [off] if off == "off" => Some(false),
            _ => {
                self.error(d, "takes on or off");
                None
            }
        }
    }

    /// `error_page CODE... [=[RESPONSE]] URI` directives as `error_pages` entries; `None` when
    /// one is refused (said).
    fn error_page_entries(&mut self, level: &[Directive]) -> Option<Vec<Value>> {
        let mut entries = Vec::new();
        let mut ok = true;
        for d in level {
            match self.error_page_entry(d) {
                Ok(entry) => entries.push(Value::from(entry)),
                Err(why) => {
                    self.error(d, why);
                    ok = false;
                }
            }
        }
        ok.then_some(entries)
    }

    fn error_page_entry(&self, d: &Directive) -> Result<figment::value::Dict, String> {
        let Some((uri, rest)) = d.args.split_last() else {
            return Err("takes status codes and a URI".to_string());
        };
        let (codes, answer) = match rest.split_last() {
            Some((last, codes)) if last.starts_with('=') => (codes, Some(&last[1..])),
            _ => (rest, None),
        };
        if codes.is_empty() {
            return Err("takes status codes and a URI".to_string());
        }
        let mut statuses = Vec::new();
        for code in codes {
            match code.parse::<u16>() {
                Ok(status) if (300..=599).contains(&status) && status != 499 => {
                    statuses.push(Value::from(u64::from(status)));
                }
                _ => {
                    return Err(format!(
                        "{code:?} is not a status from 300 to 599 (499 excepted)"
                    ));
                }
            }
        }
        if uri.contains('$') {
            return Err(format!(
                "{uri:?}: a variable in an error page's URI is not supported"
            ));
        }
        let redirect = uri.starts_with("http://") || uri.starts_with("https://");
        if !redirect && !uri.starts_with('/') && !uri.starts_with('@') {
            return Err(format!(
                "{uri:?} is not a path, a named location or an http:// or https:// URL"
            ));
        }
        let mut entry = figment::value::Dict::new();
        entry.insert("statuses".into(), Value::from(statuses));
        entry.insert("page".into(), Value::from(uri.clone()));
        match answer {
            None => {}
            // `=`: the page's own status.
            Some("") if !redirect => {
                entry.insert("status".into(), Value::from("page"));
            }
            Some("") => {}
            Some(code) => {
                let status = code
                    .parse::<u16>()
                    .ok()
                    .filter(|status| (200..=599).contains(status))
                    .ok_or_else(|| format!("={code} is not a status from 200 to 599"))?;
                // nginx redirects with 302 unless the status is another redirect's.
                if !redirect || matches!(status, 301 | 303 | 307 | 308) {
                    entry.insert("status".into(), Value::from(u64::from(status)));
                }
            }
        }
        Ok(entry)
    }

    /// The locations other than `/` that `proxy_pass`, as `proxy.routes` (placed at the first).
    /// Each inherits what its location does not set from the server (and `http`), never from
    /// `location /`, as nginx does; so every setting is written out for each route.
    fn routes(&mut self) {
        let locations = std::mem::take(&mut self.routes);
        let mut routes = Vec::new();
        for d in &locations {
            if let Some(route) = self.route(d) {
                routes.push(Value::from(route));
            }
        }
        self.internal_location = false;
        if let (Some(first), false) = (locations.first(), routes.is_empty()) {
            self.set(first, &["proxy", "routes"], Value::from(routes));
        }
    }

    /// One location that `proxy_pass`es, as a `proxy.routes` entry; `None` with its errors said.
    /// Its own `set` constants stand beside the server's while it is read.
    fn route(&mut self, d: &Directive) -> Option<figment::value::Dict> {
        let server = self.with_location_constants(d);
        let route = self.route_of(d);
        self.constants = server;
        route
    }

    /// [`Mapper::route`], its constants in place.
    fn route_of(&mut self, d: &Directive) -> Option<figment::value::Dict> {
        let spec = d.args.join(" ");
        let path = match PathMatch::parse(&spec) {
            Ok(path) => path,
            Err(message) => {
                self.error(d, format!("location {message}"));
                return None;
            }
        };
        let mut route = figment::value::Dict::new();
        route.insert("location".into(), Value::from(path.to_string()));
        self.internal_location = matches!(path, PathMatch::Named(_))
            || d.block
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|inner| inner.name == "internal");
        // A regular expression location or `location /` that answers with `return` (the
        // others are `fixed_responses`).
        if let Some(answer) = self.answer_of(d) {
            route.insert("answer".into(), Value::from(answer?));
            self.default_type_used = true;
            return Some(route);
        }
        let mut pass: Option<(Directive, ProxyPass)> = None;
        let mut timeouts = Vec::new();
        let mut buffering = Vec::new();
        let mut headers = Vec::new();
        let mut redirects = Vec::new();
        let mut body_size = None;
        let mut add_headers = Vec::new();
        let mut auth = Vec::new();
        let mut cookie_flags = Vec::new();
        let mut rate_limits = Vec::new();
        let mut conn_limits = Vec::new();
        let mut hide: Vec<Directive> = Vec::new();
        let mut error_pages: Vec<Directive> = Vec::new();
        let mut intercept: Option<Directive> = None;
        let mut ignore_headers: Vec<Directive> = Vec::new();
        let mut auth_request: Option<Directive> = None;
        let mut own_ssl: Vec<Directive> = Vec::new();
        // A location an `auth_request` asks: its requests have no body.
        let asked_by_auth = match &path {
            PathMatch::Exact(p) | PathMatch::Prefix(p) | PathMatch::PrefixNoRegex(p) => {
                self.auth_paths.iter().any(|a| a.starts_with(p.as_str()))
            }
            _ => false,
        };
        let mut access = Vec::new();
        let mut expires: Option<Directive> = None;
        let mut files: Vec<Directive> = Vec::new();
        let mut conditional: Vec<Value> = Vec::new();
        let mut rewrites: Vec<Value> = Vec::new();
        let mut ok = true;
        // nginx's `stub_status` (`on` before 1.7.5): the status page, nothing forwarded.
        let mut stub_status = false;
        let refused_to_all = denies_everyone(d.block.as_deref().unwrap_or_default());
        let forwards = d
            .block
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|inner| inner.name == "proxy_pass");
        for inner in d.block.as_deref().unwrap_or_default() {
            let arg = inner.args.first().cloned().unwrap_or_default();
            match inner.name.as_str() {
                "proxy_pass" => match self.upstream(inner, &arg) {
                    Some(upstream) => pass = Some((inner.clone(), upstream)),
                    None => ok = false,
                },
                "proxy_connect_timeout" | "proxy_read_timeout" => timeouts.push(inner.clone()),
                "proxy_request_buffering" | "proxy_http_version" => {
                    buffering.push(self.buffering_directive(inner));
                }
                "client_body_timeout" => self.warn(
                    inner,
                    "ignored in a location: the proxy's body_read_timeout (the server's or \
                     location /'s client_body_timeout) applies to every location",
                ),
                "send_timeout" | "keepalive_requests" => self.warn(
                    inner,
                    format!(
                        "ignored in a location: the proxy's {} (the server's or location /'s) \
                         applies to every location",
                        inner.name
                    ),
                ),
                "proxy_set_header"
                    if asked_by_auth
                        && matches!(inner.args.as_slice(), [name, empty]
                            if name.eq_ignore_ascii_case("content-length") && empty.is_empty()) =>
                {
                    self.warn(
                        inner,
                        "ignored: an auth_request's request has no body (nor Content-Length)",
                    );
                }
                "proxy_set_header" => headers.push(inner.clone()),
                "proxy_redirect" => redirects.push(inner.clone()),
                "client_max_body_size" => body_size = Some(inner.clone()),
                "add_header" => add_headers.push(inner.clone()),
                "auth_basic" | "auth_basic_user_file" => auth.push(inner.clone()),
                "proxy_cookie_flags" => cookie_flags.push(inner.clone()),
                "limit_req" | "limit_req_status" | "limit_req_dry_run" | "limit_req_log_level" => {
                    rate_limits.push(inner.clone());
                }
                "limit_conn" | "limit_conn_status" | "limit_conn_dry_run" => {
                    conn_limits.push(inner.clone());
                }
                "proxy_hide_header" => hide.push(inner.clone()),
                "error_page" => error_pages.push(inner.clone()),
                "proxy_intercept_errors" => intercept = Some(inner.clone()),
                "proxy_ignore_headers" => {
                    self.ignored_headers(inner);
                    ignore_headers.push(inner.clone());
                }
                "auth_request" => auth_request = Some(inner.clone()),
                "auth_request_set" => {}
                name if name.starts_with("proxy_ssl") => own_ssl.push(inner.clone()),
                "proxy_pass_request_body" if inner.args == ["off"] && asked_by_auth => {
                    self.warn(
                        inner,
                        "ignored: an auth_request's request has no body (nor Content-Length)",
                    );
                }
                "internal" if inner.args.is_empty() => {
                    route.insert("internal".into(), Value::from(true));
                }
                "limit_except" => match self.limit_except(inner) {
                    Some(except) => {
                        route.insert("limit_except".into(), Value::from(except));
                    }
                    None => ok = false,
                },
                "allow" | "deny" => access.push(inner.clone()),
                "satisfy" => self.satisfy(inner),
                "expires" => expires = Some(inner.clone()),
                // Never reached when every request is refused before nginx's content phase.
                "root" | "alias" | "index" | "try_files" | "autoindex" | "default_type"
                    if refused_to_all => {}
                "root" | "alias" | "index" | "default_type" => files.push(inner.clone()),
                "try_files" if !forwards => files.push(inner.clone()),
                "autoindex" if inner.args == ["off"] => {}
                "return" => {
                    ok = false;
                    self.error(
                        inner,
                        format!(
                            "not supported in location {spec}: the proxy answers `return` in a \
                             location that holds nothing else (but default_type, access_log)"
                        ),
                    );
                }
                "types" => {
                    ok = false;
                    self.error(
                        inner,
                        "a location's own types are not supported: the proxy has one table \
                         (give them to the server)",
                    );
                }
                "log_not_found" => {}
                "access_log" => self.warn(
                    inner,
                    "ignored: the proxy's access log (proxy.access_log) is the same for every \
                     location",
                ),
                name if name.starts_with("gzip") => self.location_gzip(inner),
                "absolute_redirect" | "port_in_redirect" | "server_name_in_redirect" => {
                    if !self.location_redirect_setting(inner) {
                        ok = false;
                    }
                }
                // Read before the loop ([`Mapper::with_location_constants`]).
                "set" => {}
                "stub_status" if matches!(inner.args.as_slice(), [] | [_]) && !forwards => {
                    if inner.args.first().is_some_and(|on| on != "on") {
                        self.error(inner, "takes nothing (or on, as before nginx 1.7.5)");
                        ok = false;
                    }
                    stub_status = true;
                }
                name if NGINX_ITSELF.contains(&name) => {
                    let why = why_ignored(name);
                    self.warn(inner, format!("ignored: {why}"));
                }
                _ if self.without_effect(inner) => {}
                "if" if !rewrites.is_empty() => {
                    ok = false;
                    self.error(inner, IF_AFTER_REWRITE);
                }
                "if" => match self.if_answer(inner) {
                    Some(entry) => conditional.push(Value::from(entry)),
                    None => ok = false,
                },
                "rewrite" => match self.rewrite_rule(inner) {
                    Some(rule) => rewrites.push(Value::from(rule)),
                    None => ok = false,
                },
                _ => {
                    ok = false;
                    let how = if forwards {
                        "the proxy forwards its requests as they came"
                    } else {
                        "the proxy serves its files as nginx's static module does (root or \
                         alias, index, types)"
                    };
                    self.error(inner, format!("not supported in location {spec}: {how}"));
                }
            }
        }
        if !conditional.is_empty() {
            route.insert("conditional_answers".into(), Value::from(conditional));
        }
        if !rewrites.is_empty() {
            route.insert("rewrites".into(), Value::from(rewrites));
        }
        // Response headers: nginx's are the location's own, else the server's. The proxy adds
        // its own (`location /`'s, else the server's) everywhere, and a route's own before them.
        let args = |level: &[Directive]| level.iter().map(|h| h.args.clone()).collect::<Vec<_>>();
        let [server_headers, root_headers] = self.headers.clone();
        let proxy_headers = if root_headers.is_empty() {
            &server_headers
        } else {
            &root_headers
        };
        let differ = |own: &[Directive]| args(own) != args(proxy_headers);
        if let Some(first) = add_headers.first() {
            if differ(&add_headers) {
                match self.route_headers(&add_headers, proxy_headers) {
                    Some([always, on_success]) => {
                        route.insert("response_headers".into(), Value::from(always));
                        if !on_success.is_empty() {
                            route.insert(
                                "response_headers_on_success".into(),
                                Value::from(on_success),
                            );
                        }
                        let root = if root_headers.is_empty() {
                            "the server's"
                        } else {
                            "location /'s"
                        };
                        self.warn(
                            first,
                            format!(
                                "added to location {spec}'s responses, and {root} add_header \
                                 too (nginx sends only the location's own there)"
                            ),
                        );
                    }
                    None => ok = false,
                }
            }
        } else if differ(&server_headers) {
            let warning = format!(
                "location /'s add_header are added in location {spec} too (nginx adds the \
                 server's there)"
            );
            self.warn(d, warning);
        }
        // Error pages and interception: the location's own, else the server's, else the `http`
        // level's; never `location /`'s.
        let level = if error_pages.is_empty() {
            self.server_error_pages()
        } else {
            error_pages
        };
        let pages = self.error_page_entries(&level)?;
        route.insert("error_pages".into(), Value::from(pages));
        let intercept = intercept.or_else(|| self.intercept_errors[1].clone());
        let intercept = intercept.or_else(|| self.intercept_errors[0].clone());
        route.insert(
            "intercept_errors".into(),
            Value::from(self.intercept_value(intercept.as_ref())?),
        );
        // `proxy_ignore_headers`: the location's own, else the server's, else the `http`
        // level's; never `location /`'s.
        let ignored = [
            &ignore_headers,
            &self.ignore_headers[1],
            &self.ignore_headers[0],
        ]
        .into_iter()
        .find(|level| !level.is_empty())
        .is_some_and(|level| ignores_accel_redirect(level));
        route.insert("accel_redirect".into(), Value::from(!ignored));
        let auth_request = auth_request.or_else(|| self.auth_request[1].clone());
        if let Some(d) = auth_request.or_else(|| self.auth_request[0].clone()) {
            route.insert("auth_request".into(), Value::from(self.auth_path(&d)?));
        }
        // Access rules: the location's own, else the server's, else the `http` level's; never
        // `location /`'s.
        let rules = if access.is_empty() {
            if self.access[1].is_empty() {
                self.access[0].clone()
            } else {
                self.access[1].clone()
            }
        } else {
            access
        };
        let rules = self.access_in_effect(&rules)?;
        route.insert("access_rules".into(), Value::from(rules));
        // The location's own `expires`, else the server's; never `location /`'s.
        let expires = self.expires_value(expires.or_else(|| self.expires[0].clone()))?;
        route.insert("expires".into(), Value::from(expires));
        let Some((at, upstream)) = pass else {
            // A location that refuses everyone (`deny all`) answers 403 without forwarding;
            // any other serves files. Rate limits count first, as in nginx's preaccess phase.
            if !ok {
                return None;
            }
            if stub_status {
                route.insert("stub_status".into(), Value::from(true));
                self.route_auth(&auth, &mut route)?;
            } else if !refused_to_all {
                self.files(d, &path, &files, &mut route)?;
                self.route_auth(&auth, &mut route)?;
            }
            let outer = self.rate_limits[0].clone();
            let (limits, status) = self.limits_in_effect(&rate_limits, &outer)?;
            route.insert("rate_limits".into(), Value::from(limits));
            route.insert("rate_limit_status".into(), Value::from(u64::from(status)));
            self.route_conn_limits(&conn_limits, &mut route)?;
            return Some(route);
        };
        // The location's path as nginx's `proxy_redirect default` and a URI that leaves paths
        // alone see it.
        let location_path = match &path {
            PathMatch::Exact(p) | PathMatch::Prefix(p) | PathMatch::PrefixNoRegex(p) => {
                Some(p.clone())
            }
            PathMatch::Regex { .. } | PathMatch::Named(_) => None,
        };
        let target = self
            .target_of(&at, &upstream, location_path.as_deref())
            .ok()?;
        if !ok {
            return None;
        }
        route.insert("upstream".into(), Value::from(upstream.url.clone()));
        if upstream.url.starts_with("https://") {
            let server = self.proxy_ssl.clone();
            let tls = self.upstream_tls(&at, &own_ssl, &server)?;
            route.insert("upstream_tls".into(), Value::from(tls));
        } else {
            for d in &own_ssl {
                self.warn(
                    d,
                    "ignored: the upstream is http://, and nginx uses proxy_ssl_* only with an \
                     https:// one",
                );
            }
        }
        if let Some((key, value)) = target {
            route.insert(key.into(), Value::from(value));
        }
        // Timeouts: the location's, else the server's, else the proxy's defaults (as for
        // `location /`).
        for (name, key, default) in [
            ("proxy_connect_timeout", "upstream_connect_timeout", "5s"),
            ("proxy_read_timeout", "upstream_response_timeout", "60s"),
        ] {
            let last = |level: &[Directive]| level.iter().rfind(|d| d.name == name).cloned();
            let value = match last(&timeouts).or_else(|| last(&self.upstream_timeouts[0])) {
                Some(t) => match t.args.first().and_then(|a| time(a)) {
                    Some(value) => value,
                    None => {
                        self.error(&t, "expects a time such as 60s, 1m or 500ms");
                        return None;
                    }
                },
                None => default.to_string(),
            };
            route.insert(key.into(), Value::from(value));
        }
        // nginx's `proxy_request_buffering`: the location's, else the server's (not
        // `location /`'s, which the proxy's own settings hold).
        let outer = self.request_buffering[0].clone();
        match self.buffered(&[&buffering, &outer]) {
            Some(on) => {
                route.insert("request_buffering".into(), Value::from(on));
            }
            None => return None,
        }
        let body = body_size.or_else(|| self.body_size[0].clone());
        let body = match body {
            Some(b) => match (
                size(b.args.first().map(String::as_str).unwrap_or_default()),
                b.args.len(),
            ) {
                (Some(_), 1) => b.args[0].clone(),
                _ => {
                    self.error(&b, "expects a size such as 1m, 512k or 0 (no limit)");
                    return None;
                }
            },
            None => NGINX_BODY_SIZE.to_string(),
        };
        route.insert("max_request_body".into(), Value::from(body));
        let header_level = if headers.is_empty() {
            self.set_headers[0].clone()
        } else {
            headers
        };
        // `$proxy_host`: the host of the URL as evaluated (`set` constants in).
        let url = (at.clone(), upstream.written.clone());
        let (_, set, real_ip) = self.request_headers(&header_level, Some(&url));
        route.insert("x_real_ip".into(), Value::from(real_ip.is_some()));
        route.insert("request_headers".into(), Value::from(set));
        let redirect_level = if redirects.is_empty() {
            self.redirects[0].clone()
        } else {
            redirects
        };
        // nginx's `default`: the proxy_pass URL (with the location's path when it has no URI
        // of its own), by the location's path; a regular expression location has no path, so
        // the URL is cut off.
        let default = (!upstream.variables).then(|| {
            let p = location_path.unwrap_or_default();
            let uri = if upstream.path.is_empty() {
                &p
            } else {
                &upstream.path
            };
            (at.clone(), format!("{}{uri}", upstream.written), p)
        });
        let rules = self
            .redirect_rules(&redirect_level, default)
            .map(|(_, rules)| rules)
            .unwrap_or_default();
        route.insert("redirect_rewrite".into(), Value::from(rules));
        let level = if hide.is_empty() {
            self.hide[0].clone()
        } else {
            hide
        };
        route.insert(
            "hide_response_headers".into(),
            Value::from(hidden_names(&level)),
        );
        self.route_auth(&auth, &mut route)?;
        let level = if cookie_flags.is_empty() {
            self.cookie_flags[0].clone()
        } else {
            cookie_flags
        };
        let rules = self.cookie_rules(&level)?;
        route.insert("cookie_flags".into(), Value::from(rules));
        let outer = self.rate_limits[0].clone();
        let (limits, status) = self.limits_in_effect(&rate_limits, &outer)?;
        route.insert("rate_limits".into(), Value::from(limits));
        route.insert("rate_limit_status".into(), Value::from(u64::from(status)));
        self.route_conn_limits(&conn_limits, &mut route)?;
        Some(route)
    }

    /// A route's `limit_conn`s (its own, else the server's) as its `concurrency_limits` and
    /// `concurrency_limit_status`; `None` when refused (said).
    fn route_conn_limits(
        &mut self,
        own: &[Directive],
        route: &mut figment::value::Dict,
    ) -> Option<()> {
        let outer = self.conn_limits[0].clone();
        let (limits, status) = self.conn_limits_in_effect(own, &outer)?;
        route.insert("concurrency_limits".into(), Value::from(limits));
        route.insert(
            "concurrency_limit_status".into(),
            Value::from(u64::from(status)),
        );
        Some(())
    }

    /// `limit_conn` and `limit_conn_status` of `location /` (else the server's), as
    /// `proxy.concurrency_limits` and `proxy.concurrency_limit_status`, with the zones they use
    /// as `proxy.concurrency_limit_zones`.
    fn limit_conn(&mut self) {
        let [outer, location] = std::mem::take(&mut self.conn_limits);
        let at = location.first().or(outer.first()).cloned();
        if let (Some((limits, status)), Some(at)) =
            (self.conn_limits_in_effect(&location, &outer), at)
        {
            self.set(&at, &["proxy", "concurrency_limits"], Value::from(limits));
            self.set(
                &at,
                &["proxy", "concurrency_limit_status"],
                Value::from(u64::from(status)),
            );
        }
        let mut zones = figment::value::Dict::new();
        let mut first: Option<Directive> = None;
        for d in std::mem::take(&mut self.conn_zones) {
            let Some(name) = zone_name(&d).filter(|name| !name.is_empty()) else {
                self.error(&d, "expects KEY zone=NAME:SIZE");
                continue;
            };
            match conn_key(d.args.first().map(String::as_str).unwrap_or_default()) {
                Some(key) => {
                    zones.insert(name.to_string(), Value::from(key));
                    first.get_or_insert(d.clone());
                }
                None => self.warn(
                    &d,
                    format!(
                        "not served: the proxy counts requests in flight per client address \
                         ($binary_remote_addr) or for the server ($server_name), not per {}; \
                         a limit_conn using zone {name} is refused",
                        d.args.first().map(String::as_str).unwrap_or_default()
                    ),
                ),
            }
        }
        if let Some(first) = first {
            self.set(
                &first,
                &["proxy", "concurrency_limit_zones"],
                Value::from(zones),
            );
        }
    }

    /// A limit's status (the last of `statuses`, else 503) and whether it is refused: a status
    /// out of 400–599, or a dry run (said).
    fn limit_status(&mut self, statuses: &[Directive], dry_runs: &[Directive]) -> (u16, bool) {
        let mut refused = false;
        for d in dry_runs {
            if d.args != ["off"] {
                self.error(
                    d,
                    "only off is supported: the proxy refuses what a limit refuses",
                );
                refused = true;
            }
        }
        let status = match statuses.last() {
            None => 503,
            Some(d) => match d.args.first().and_then(|a| a.parse::<u16>().ok()) {
                Some(code) if (400..=599).contains(&code) => code,
                _ => {
                    self.error(d, "expects a status from 400 to 599");
                    refused = true;
                    503
                }
            },
        };
        (status, refused)
    }

    /// The `limit_conn`s in effect, a level's own else the one above's, as
    /// `concurrency_limits` entries and the status; `None` when refused (said).
    fn conn_limits_in_effect(
        &mut self,
        own: &[Directive],
        outer: &[Directive],
    ) -> Option<(Vec<Value>, u16)> {
        let pick = |name: &str| nearest(own, outer, name);
        let (status, mut refused) =
            self.limit_status(&pick("limit_conn_status"), &pick("limit_conn_dry_run"));
        let usable: Vec<String> = self
            .conn_zones
            .iter()
            .filter(|z| conn_key(z.args.first().map(String::as_str).unwrap_or_default()).is_some())
            .filter_map(zone_name)
            .collect();
        // nginx does not count a request whose key is empty: `$server_name` without a name.
        let uncounted: Vec<String> = self
            .conn_zones
            .iter()
            .filter(|z| {
                self.server_name.is_empty()
                    && z.args.first().map(String::as_str) == Some("$server_name")
            })
            .filter_map(zone_name)
            .collect();
        let mut limits = Vec::new();
        for d in pick("limit_conn") {
            if d.args.first().is_some_and(|zone| uncounted.contains(zone)) {
                self.warn(
                    &d,
                    "ignored: its zone is keyed by $server_name and this server has no \
                     server_name (nginx counts no request with an empty key)",
                );
                continue;
            }
            match (d.args.as_slice(), d.args.get(1).map(|n| n.parse::<u32>())) {
                ([zone, _], Some(Ok(max))) if max > 0 && usable.contains(zone) => {
                    let mut limit = figment::value::Dict::new();
                    limit.insert("zone".into(), Value::from(zone.clone()));
                    limit.insert("max".into(), Value::from(u64::from(max)));
                    limits.push(Value::from(limit));
                }
                ([zone, _], Some(Ok(max))) if max > 0 => {
                    self.error(
                        &d,
                        format!(
                            "zone {zone}: no limit_conn_zone keyed by the client address \
                             ($binary_remote_addr) or the server ($server_name) defines it"
                        ),
                    );
                    refused = true;
                }
                _ => {
                    self.error(
                        &d,
                        "expects a zone and a number of requests, such as `addr 10`",
                    );
                    refused = true;
                }
            }
        }
        (!refused).then_some((limits, status))
    }

    /// `limit_req` and `limit_req_status` of `location /` (else the server's), as
    /// `proxy.rate_limits` and `proxy.rate_limit_status`, with the zones they use as
    /// `proxy.rate_limit_zones`.
    fn limit_req(&mut self) {
        let [outer, location] = std::mem::take(&mut self.rate_limits);
        let at = location.first().or(outer.first()).cloned();
        if let (Some((limits, status)), Some(at)) = (self.limits_in_effect(&location, &outer), at) {
            self.set(&at, &["proxy", "rate_limits"], Value::from(limits));
            self.set(
                &at,
                &["proxy", "rate_limit_status"],
                Value::from(u64::from(status)),
            );
        }
        let mut zones = figment::value::Dict::new();
        let mut first: Option<Directive> = None;
        for d in std::mem::take(&mut self.zones) {
            let mut name = None;
            let mut rate = None;
            for arg in d.args.iter().skip(1) {
                if let Some(zone) = arg.strip_prefix("zone=") {
                    name = zone.split(':').next().map(str::to_string);
                } else if let Some(value) = arg.strip_prefix("rate=") {
                    rate = Some(value.to_string());
                } else if arg != "sync" {
                    self.error(&d, format!("{arg}: expects zone=NAME:SIZE and rate=RATE"));
                }
            }
            let key = d.args.first().map(String::as_str).unwrap_or_default();
            match (name, rate) {
                (Some(name), Some(rate)) if super::request_rate(&rate).is_some() => {
                    if !matches!(key, "$binary_remote_addr" | "$remote_addr") {
                        self.warn(
                            &d,
                            format!(
                                "not served: the proxy counts requests per client address \
                                 ($binary_remote_addr), not per {key}; a limit_req using \
                                 zone {name} is refused"
                            ),
                        );
                        continue;
                    }
                    let mut zone = figment::value::Dict::new();
                    zone.insert("rate".into(), Value::from(rate));
                    zones.insert(name, Value::from(zone));
                    first.get_or_insert(d.clone());
                }
                _ => self.error(&d, "expects KEY zone=NAME:SIZE rate=RATE (such as 10r/s)"),
            }
        }
        if let Some(first) = first {
            self.set(&first, &["proxy", "rate_limit_zones"], Value::from(zones));
        }
    }

    /// A location that serves files (`own`: its `root`, `alias`, `index`, `default_type`) as
    /// the `root` or `alias`, `index` and `default_type` of its route; `None` when refused
    /// (said).
    fn files(
        &mut self,
        d: &Directive,
        path: &PathMatch,
        own: &[Directive],
        route: &mut figment::value::Dict,
    ) -> Option<()> {
        let last = |name: &str| own.iter().rfind(|inner| inner.name == name).cloned();
        let (key, dir) = match (last("alias"), last("root").or_else(|| self.root.clone())) {
            (Some(alias), _) => ("alias", alias),
            (None, Some(root)) => ("root", root),
            (None, None) => {
                self.warn(
                    d,
                    format!(
                        "no root: nginx serves {NGINX_ROOT} (Debian's), so its files must be \
                         there in the proxy's container, else requests get 404"
                    ),
                );
                route.insert("root".into(), Value::from(NGINX_ROOT));
                ("", d.clone())
            }
        };
        if !key.is_empty() {
            let value = match dir.args.as_slice() {
                [one] if one.contains('$') => {
                    self.error(&dir, format!("a {key} with a variable is not supported"));
                    return None;
                }
                [one] if !one.starts_with('/') => {
                    let full = format!("{NGINX_PREFIX}/{one}");
                    self.warn(
                        &dir,
                        format!(
                            "{one} is relative to nginx's prefix: served from {full} (Debian's \
                             prefix; nginx's own image has /etc/nginx): write the absolute \
                             directory if the files are elsewhere"
                        ),
                    );
                    full
                }
                [one] => one.clone(),
                _ => {
                    self.error(&dir, "expects one path");
                    return None;
                }
            };
            if key == "alias" && matches!(path, PathMatch::Regex { .. }) {
                self.error(
                    &dir,
                    "alias in a regular expression location needs its captures: not supported \
                     (use root)",
                );
                return None;
            }
            route.insert(key.into(), Value::from(value));
        }
        if let Some(index) = last("index").or_else(|| self.index.clone()) {
            if let Some(bad) = index
                .args
                .iter()
                .find(|name| name.contains('$') || name.contains('/'))
            {
                self.error(
                    &index,
                    format!("{bad}: only file names of the directory are supported"),
                );
                return None;
            }
            route.insert("index".into(), Value::from(index.args.clone()));
        }
        if let Some(tries) = last("try_files") {
            let allowed = |arg: &str, last: bool| {
                let variables: &[&str] = if last {
                    &["$uri", "$args", "$query_string", "$is_args"]
                } else {
                    &["$uri"]
                };
                !variables
                    .iter()
                    .fold(arg.to_string(), |text, variable| text.replace(variable, ""))
                    .contains('$')
            };
            let count = tries.args.len();
            if count < 2 {
                self.error(
                    &tries,
                    "expects the paths to try, then =CODE, a path or @NAME",
                );
                return None;
            }
            if let Some(bad) = tries
                .args
                .iter()
                .enumerate()
                .find(|(index, arg)| !allowed(arg, index + 1 == count))
            {
                self.error(
                    &tries,
                    format!(
                        "{}: a variable other than $uri (and, in the last entry, $args, \
                         $is_args) is not supported",
                        bad.1
                    ),
                );
                return None;
            }
            route.insert("try_files".into(), Value::from(tries.args.clone()));
        }
        let default_type = last("default_type")
            .or_else(|| self.default_type.clone())
            .and_then(|t| t.args.first().cloned())
            .unwrap_or_else(|| "text/plain".to_string());
        route.insert(
            "default_type".into(),
            Value::from(self.with_charset(&default_type)),
        );
        self.serves_files.get_or_insert_with(|| d.clone());
        self.default_type_used = true;
        Some(())
    }

    /// `media` with the server's `charset` when nginx adds it there (`charset_types`' default).
    fn with_charset(&self, media: &str) -> String {
        let charset = self
            .charset
            .as_ref()
            .and_then(|c| c.args.first())
            .filter(|c| *c != "off");
        match charset {
            Some(charset) if CHARSET_TYPES.contains(&media) => {
                format!("{media}; charset={charset}")
            }
            _ => media.to_string(),
        }
    }

    /// The `types` of the server (else the `http` level's, else nginx's own three) as
    /// `proxy.file_types`, when a location serves files; else `root`, `index` and `types`
    /// are warned about, as before.
    fn file_types(&mut self) {
        let [http, server] = std::mem::take(&mut self.types);
        let level = if server.is_empty() { http } else { server };
        let Some(first) = self.serves_files.clone() else {
            for d in level
                .iter()
                .chain(self.root.take().as_ref())
                .chain(self.index.take().as_ref())
                .cloned()
                .collect::<Vec<_>>()
            {
                self.warn(&d, format!("ignored: {}", why_ignored(&d.name)));
            }
            return;
        };
        let mut types = figment::value::Dict::new();
        if level.is_empty() {
            for (extension, media) in [
                ("html", "text/html"),
                ("gif", "image/gif"),
                ("jpg", "image/jpeg"),
            ] {
                types.insert(extension.into(), Value::from(self.with_charset(media)));
            }
        }
        for block in &level {
            for entry in block.block.as_deref().unwrap_or_default() {
                let media = self.with_charset(&entry.name);
                for extension in &entry.args {
                    // A later one wins, as in nginx (which warns of the duplicate).
                    types.insert(extension.to_ascii_lowercase(), Value::from(media.clone()));
                }
            }
        }
        let at = level.first().cloned().unwrap_or(first);
        self.set(&at, &["proxy", "file_types"], Value::from(types));
    }

    /// `allow` and `deny` of `location /`, else the server's, else the `http` level's, as
    /// `proxy.access_rules`.
    fn access_rules(&mut self) {
        let [http, server, location] = std::mem::take(&mut self.access);
        let level = [&location, &server, &http]
            .into_iter()
            .find(|level| !level.is_empty())
            .cloned()
            .unwrap_or_default();
        // Kept for the routes, which take the server's or the `http` level's.
        self.access = [http, server, Vec::new()];
        if let (Some(rules), Some(first)) = (self.access_in_effect(&level), level.first()) {
            self.set(first, &["proxy", "access_rules"], Value::from(rules));
        }
    }

    /// One level's `allow` and `deny` as `access_rules`, in order; `None` when one is refused
    /// (said).
    fn access_in_effect(&mut self, level: &[Directive]) -> Option<Vec<Value>> {
        let mut rules = Vec::new();
        let mut refused = false;
        for d in level {
            let text = format!("{} {}", d.name, d.args.join(" "));
            match (d.args.as_slice(), super::AccessRule::parse(&text)) {
                // `all` is every address, forwarded or not.
                ([what], Ok(_)) if self.real_ip_from && what != "all" => {
                    self.error(
                        d,
                        "with set_real_ip_from, nginx checks the address a trusted peer \
                         forwards; the proxy checks the TCP peer's: not supported together",
                    );
                    refused = true;
                }
                ([_], Ok(_)) => rules.push(Value::from(text)),
                ([what], Err(_)) if what.starts_with("unix:") => {
                    self.error(d, "unix: is not supported: the proxy listens on TCP");
                    refused = true;
                }
                (_, Err(why)) => {
                    self.error(d, format!("expects an address, a CIDR block or all: {why}"));
                    refused = true;
                }
                (_, Ok(_)) => {
                    self.error(d, "expects an address, a CIDR block or all");
                    refused = true;
                }
            }
        }
        (!refused).then_some(rules)
    }

    /// An `expires` directive as `expires` (none: `off`); `None` when refused (said).
    fn expires_value(&mut self, d: Option<Directive>) -> Option<String> {
        let Some(d) = d else {
            return Some("off".to_string());
        };
        let text = d.args.join(" ");
        match super::Expires::parse(&text) {
            Ok(_) if d.args.len() == 1 => Some(text),
            Ok(_) => {
                self.error(&d, "expects one time, epoch, max or off");
                None
            }
            Err(why) => {
                self.error(&d, why);
                None
            }
        }
    }

    /// Puts the `add_header` `d` (`name: value`) in `headers[0]` with `always`, in `headers[1]`
    /// without (`response_headers`, `response_headers_on_success`); where it went, or `None`
    /// when the other already names the header (warned: the proxy adds one value of a
    /// header).
    fn split_added_header(
        &mut self,
        d: &Directive,
        headers: &mut [figment::value::Dict; 2],
        name: &str,
        value: String,
        always: bool,
    ) -> Option<usize> {
        let (own, other) = if always { (0, 1) } else { (1, 0) };
        if headers[other].keys().any(|n| n.eq_ignore_ascii_case(name)) {
            self.warn(
                d,
                "ignored: an add_header of this name with the other `always` comes first (the \
                 proxy adds one value of a header)",
            );
            return None;
        }
        headers[own].insert(name.to_string(), Value::from(value));
        Some(own)
    }

    /// A location's own `add_header`s as its route's `response_headers` (with `always`) and
    /// `response_headers_on_success` (without); HSTS must be the proxy's (`proxy_headers`),
    /// which sends it everywhere. `None` when refused (said).
    fn route_headers(
        &mut self,
        own: &[Directive],
        proxy_headers: &[Directive],
    ) -> Option<[figment::value::Dict; 2]> {
        // With `always`, and without.
        let mut headers = [figment::value::Dict::new(), figment::value::Dict::new()];
        let mut refused = false;
        for d in own {
            let (Some(name), Some(value)) = (d.args.first(), d.args.get(1)) else {
                self.error(d, "expects a header name and a value");
                refused = true;
                continue;
            };
            if d.args.len() > 3 || d.args.get(2).is_some_and(|a| a != "always") {
                self.error(d, "only `always` may follow the value");
                refused = true;
            } else if self.header_value(d, name, value).is_none() {
                refused = true;
            } else if name.eq_ignore_ascii_case("strict-transport-security") {
                let same = proxy_headers.iter().any(|p| {
                    p.args.first().is_some_and(|n| n.eq_ignore_ascii_case(name))
                        && p.args.get(1) == Some(value)
                });
                if !same {
                    self.error(
                        d,
                        "an HSTS of its own in a location is not supported: the proxy sends one \
                         HSTS everywhere (give it to the server)",
                    );
                    refused = true;
                }
            } else if let Some(value) = self.header_value(d, name, value)
                && !value.is_empty()
            {
                let always = d.args.len() == 3;
                self.split_added_header(d, &mut headers, name, value, always);
            }
        }
        (!refused).then_some(headers)
    }

    /// A location's `auth_basic*` (`own`), else the server's, as its route's
    /// `basic_auth_realm` (`off` when none, so that it does not take `location /`'s) and
    /// `basic_auth_file`; `None` when refused (said).
    fn route_auth(&mut self, own: &[Directive], route: &mut figment::value::Dict) -> Option<()> {
        let outer = self.auth[0].clone();
        let (realm, file) = self.auth_in_effect(own, &outer)?;
        let realm = realm.map_or_else(|| "off".to_string(), |(_, realm)| realm);
        route.insert("basic_auth_realm".into(), Value::from(realm));
        if let Some((_, file)) = file {
            route.insert("basic_auth_file".into(), Value::from(file));
        }
        Some(())
    }

    /// `satisfy`: `all` is nginx's default and the proxy's way; `any` is refused.
    fn satisfy(&mut self, d: &Directive) {
        if d.args != ["all"] {
            self.error(
                d,
                "only all is supported: a request must pass both the access rules and \
                 auth_basic",
            );
        }
    }

    /// The `limit_req`s and the `limit_req_status` in effect where `own` are a location's
    /// directives and `outer` the server's: each the location's, else the server's, as nginx
    /// inherits them. `None` when one is refused (said).
    fn limits_in_effect(
        &mut self,
        own: &[Directive],
        outer: &[Directive],
    ) -> Option<(Vec<Value>, u16)> {
        let pick = |name: &str| nearest(own, outer, name);
        for d in pick("limit_req_log_level") {
            self.warn(&d, "ignored: a refused request is counted (client_errors_total{kind=\"rate_limited\"}) and in the access log");
        }
        let (status, mut refused) =
            self.limit_status(&pick("limit_req_status"), &pick("limit_req_dry_run"));
        let usable: Vec<String> = self
            .zones
            .iter()
            .filter(|z| {
                matches!(
                    z.args.first().map(String::as_str),
                    Some("$binary_remote_addr" | "$remote_addr")
                )
            })
            .filter_map(zone_name)
            .collect();
        let mut limits = Vec::new();
        for d in pick("limit_req") {
            let mut limit = figment::value::Dict::new();
            let mut valid = true;
            for arg in &d.args {
                if let Some(zone) = arg.strip_prefix("zone=") {
                    if !usable.iter().any(|z| z == zone) {
                        self.error(
                            &d,
                            format!(
                                "zone {zone}: no limit_req_zone keyed by the client address \
                                 ($binary_remote_addr) defines it"
                            ),
                        );
                        valid = false;
                    }
                    limit.insert("zone".into(), Value::from(zone.to_string()));
                } else if let Some(burst) = arg.strip_prefix("burst=") {
                    match burst.parse::<u64>() {
                        Ok(burst) => {
                            limit.insert("burst".into(), Value::from(burst));
                        }
                        Err(_) => valid = false,
                    }
                } else if let Some(delay) = arg.strip_prefix("delay=") {
                    match delay.parse::<u64>() {
                        Ok(delay) => {
                            limit.insert("delay".into(), Value::from(delay));
                        }
                        Err(_) => valid = false,
                    }
                } else if arg == "nodelay" {
                    limit.insert("nodelay".into(), Value::from(true));
                } else {
                    valid = false;
                }
            }
            if !limit.contains_key("zone") {
                valid = false;
            }
            if valid {
                limits.push(Value::from(limit));
            } else {
                refused = true;
                if !self.errors.iter().any(|e| e.to_string().contains(&d.at)) {
                    self.error(&d, "expects zone=NAME [burst=N] [nodelay | delay=N]");
                }
            }
        }
        (!refused).then_some((limits, status))
    }

    /// `proxy_cookie_flags` of `location /` (else the server's), as `proxy.cookie_flags`.
    fn proxy_cookie_flags(&mut self) {
        let [outer, location] = std::mem::take(&mut self.cookie_flags);
        let level = if location.is_empty() { outer } else { location };
        if let (Some(rules), Some(first)) = (self.cookie_rules(&level), level.first())
            && !rules.is_empty()
        {
            self.set(first, &["proxy", "cookie_flags"], Value::from(rules));
        }
    }

    /// The `proxy_cookie_flags` of one level as `cookie_flags` rules, in order (`off`: none);
    /// `None` when one is refused (said).
    fn cookie_rules(&mut self, level: &[Directive]) -> Option<Vec<Value>> {
        if level.iter().any(|d| d.args == ["off"]) {
            return Some(Vec::new());
        }
        let mut rules = Vec::new();
        let mut refused = false;
        for d in level {
            let Some((cookie, flags)) = d.args.split_first().filter(|(_, f)| !f.is_empty()) else {
                self.error(d, "expects off, or a cookie and its flags");
                refused = true;
                continue;
            };
            if cookie.contains('$') || flags.iter().any(|f| f.contains('$')) {
                self.error(d, "a variable in proxy_cookie_flags is not supported");
                refused = true;
                continue;
            }
            if let Some(pattern) = cookie.strip_prefix('~').filter(|p| !p.is_empty())
                && let Err(why) = super::regex_for(pattern, false)
            {
                self.error(d, format!("{pattern}: {why}"));
                refused = true;
                continue;
            }
            if let Some(bad) = flags.iter().find(|f| super::CookieFlag::parse(f).is_none()) {
                self.error(d, format!("{bad}: not a flag nginx knows"));
                refused = true;
                continue;
            }
            let mut rule = figment::value::Dict::new();
            rule.insert("cookie".into(), Value::from(cookie.clone()));
            rule.insert("flags".into(), Value::from(flags.to_vec()));
            rules.push(Value::from(rule));
        }
        (!refused).then_some(rules)
    }

    /// `auth_basic` and `auth_basic_user_file` of `location /` (else the server's), as
    /// `basic_auth_realm` and `basic_auth_file`.
    fn basic_auth(&mut self) {
        let [outer, location] = std::mem::take(&mut self.auth);
        let Some((realm, file)) = self.auth_in_effect(&location, &outer) else {
            return;
        };
        if let Some((at, realm)) = realm {
            self.set(&at, &["proxy", "basic_auth_realm"], Value::from(realm));
        }
        if let Some((at, file)) = file {
            self.set(&at, &["proxy", "basic_auth_file"], Value::from(file));
        }
    }

    /// The realm (`None`: `off` or none) and the user file in effect where `own` are a
    /// location's `auth_basic*` directives and `outer` the server's: each the location's, else
    /// the server's, as nginx inherits them. `None` when one is refused (said).
    #[allow(clippy::type_complexity)]
    fn auth_in_effect(
        &mut self,
        own: &[Directive],
        outer: &[Directive],
    ) -> Option<(Option<(Directive, String)>, Option<(Directive, String)>)> {
        let last = |name: &str| {
            let find = |level: &[Directive]| level.iter().rfind(|d| d.name == name).cloned();
            find(own).or_else(|| find(outer))
        };
        let mut refused = false;
        let mut value = |d: Option<Directive>, what: &str| -> Option<(Directive, String)> {
            let d = d?;
            match d.args.as_slice() {
                [one] if one.contains('$') => {
                    self.error(&d, format!("a {what} with a variable is not supported"));
                    refused = true;
                    None
                }
                [one] => Some((d.clone(), one.clone())),
                _ => {
                    self.error(&d, format!("expects one {what}"));
                    refused = true;
                    None
                }
            }
        };
        let realm = value(last("auth_basic"), "realm").filter(|(_, realm)| realm != "off");
        let file = value(last("auth_basic_user_file"), "file");
        (!refused).then_some((realm, file))
    }
}

/// nginx's root when none is given, as Debian builds it (`--prefix=/usr/share/nginx`).
const NGINX_ROOT: &str = "/usr/share/nginx/html";

/// Debian's nginx prefix, which a relative `root` or `alias` is relative to.
const NGINX_PREFIX: &str = "/usr/share/nginx";

/// The media types nginx adds `charset` to (`charset_types`' default).
const CHARSET_TYPES: &[&str] = &[
    "text/html",
    "text/xml",
    "text/plain",
    "text/vnd.wap.wml",
    "application/javascript",
    "application/rss+xml",
];

/// Whether a location's `allow` and `deny` refuse every address: a `deny all` with no `allow`
/// before it. nginx then answers 403 before serving anything.
fn denies_everyone(body: &[Directive]) -> bool {
    for d in body
        .iter()
        .filter(|d| d.name == "allow" || d.name == "deny")
    {
        match (d.name.as_str(), d.args.as_slice()) {
            ("deny", [all]) if all == "all" => return true,
            ("allow", _) => return false,
            _ => {}
        }
    }
    false
}

/// What a `proxy_pass` names.
struct ProxyPass {
    /// `http://HOST:PORT`, as `proxy.upstream` takes it.
    url: String,
    /// `http://` and the authority as written (an `upstream` block's name stays a name), as
    /// nginx's `proxy_redirect default` matches it.
    written: String,
    /// The URI after the authority, `""` when there is none; with `variables`, it may hold the
    /// request's variables.
    path: String,
    /// A variable is in the URL (`$request_uri` after the address, a constant of `set`): a URI
    /// then replaces the request's whole, as nginx does.
    variables: bool,
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

    /// The setting at `key` as JSON.
    fn json(mapped: &Mapped, key: &[&str]) -> Option<serde_json::Value> {
        mapped
            .settings
            .iter()
            .find(|(_, k, _)| *k == key)
            .map(|(_, _, value)| serde_json::to_value(value).unwrap())
    }

    /// Fails unless each of `expected` is in the errors `text`.
    fn assert_errors(text: &str, expected: &[&str]) {
        for expected in expected {
            assert!(text.contains(expected), "{expected} in:\n{text}");
        }
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
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert_eq!(
            json(&mapped, &["proxy", "request_headers"]).unwrap()["Host"],
            "${host}",
            "proxy_set_header Host $host: the name without its port, as nginx sends it"
        );
        assert_eq!(
            value(&mapped, "proxy.append_forwarded_for").as_deref(),
            Some("true"),
            "$proxy_add_x_forwarded_for: the client's list kept, the peer after it"
        );
        for (warning, expected) in warnings.iter().zip([
            ":3:1: server: warning: no access_log, so nginx would log every request",
            ":6:5: server_name: warning: ignored",
            ":21:1: server: warning: not served",
        ]) {
            assert!(warning.contains(expected), "{expected}: {warnings:#?}");
        }
    }

    #[test]
    fn what_would_change_a_response_is_an_error_at_its_line() {
        let err = map(
            "server {\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / {\n    proxy_pass http://127.0.0.1:80/app/$1;\n  }\n  location \
             ~ \\.php$ { return 200; expires 1d; }\n  add_header X-Frame-Options $x;\n  satisfy any;\n  location \
             /go { return 200 \"$host\"; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":6:5: proxy_pass: $1..$9 are the groups of a regular expression location",
                ":8:23: return: not supported in location ~ \\.php$: the proxy answers `return`",
                ":9:3: add_header: $x is not supported in add_header",
                ":10:3: satisfy: only all is supported",
                ":11:18: return: a variable is not supported in a text",
            ],
        );
    }

    /// `auth_request` of the server, a location's own and `off`; `auth_request_set` as a map
    /// of the auth answer's header; the asked location's `proxy_pass_request_body off` warned.
    #[test]
    fn auth_request_is_mapped_as_nginx_reads_it() {
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  auth_request /auth;\n  location = /auth {\n    proxy_pass \
             http://127.0.0.1:4180;\n    proxy_pass_request_body off;\n    proxy_set_header \
             Content-Length \"\";\n    auth_request off;\n  }\n  location /api/ {\n    \
             auth_request_set $user $upstream_http_x_user;\n    proxy_set_header X-User \
             $user;\n    proxy_pass http://127.0.0.1:81;\n  }\n  location / {\n    proxy_pass \
             http://127.0.0.1:80;\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "auth_request"]).unwrap(),
            serde_json::json!("/auth")
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(routes[0]["auth_request"], "off");
        assert_eq!(routes[1]["auth_request"], "/auth", "the server's");
        assert_eq!(routes[1]["request_headers"]["X-User"], "${user}");
        assert_eq!(
            json(&mapped, &["proxy", "maps"]).unwrap(),
            serde_json::json!([{
                "variable": "user",
                "source": "$auth_http_x_user",
                "default": "$auth_http_x_user",
                "values": [],
            }])
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        for expected in [
            ":8:5: proxy_pass_request_body: warning: ignored: an auth_request's request has no body",
            ":9:5: proxy_set_header: warning: ignored: an auth_request's request has no body",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "{expected}: {warnings:#?}"
            );
        }
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  auth_request $x;\n  location / {\n    auth_request_set $c \
             $upstream_status;\n    add_header X-Status $c;\n    proxy_pass \
             http://127.0.0.1:80;\n  }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":5:3: auth_request: takes a path (a variable is not supported) or off",
                ":7:5: auth_request_set: only $upstream_http_NAME",
            ],
        );
    }

    /// `absolute_redirect`, `port_in_redirect` (the server's or `http`'s) become
    /// `absolute_redirects` and `port_in_redirects` (nginx's defaults, on, written out); a
    /// location's own is fine when it is the server's, else refused; `server_name_in_redirect
    /// on` is refused.
    #[test]
    fn redirects_are_made_absolute_as_nginx_makes_them() {
        let server = |outer: &str, location: &str| {
            format!(
                "http {{\n{outer}  server {{\n    listen 443 ssl;\n    ssl_certificate a.crt;\n    \
                 ssl_certificate_key a.key;\n    location / {{\n      proxy_pass \
                 http://127.0.0.1:80;\n    }}\n    location /a/ {{\n{location}      proxy_pass \
                 http://127.0.0.1:81;\n    }}\n  }}\n}}\n"
            )
        };
        let mapped = map(&server("", "")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.absolute_redirects").as_deref(),
            Some("true")
        );
        assert_eq!(
            value(&mapped, "proxy.port_in_redirects"),
            None,
            "the default, on"
        );
        let mapped = map(&server(
            "  absolute_redirect off;\n  port_in_redirect off;\n  server_name_in_redirect off;\n",
            "      absolute_redirect off;\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.absolute_redirects").as_deref(),
            Some("false")
        );
        assert_eq!(
            value(&mapped, "proxy.port_in_redirects").as_deref(),
            Some("false")
        );
        let err = map(&server(
            "  server_name_in_redirect on;\n  port_in_redirect maybe;\n",
            "      absolute_redirect off;\n",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":2:3: server_name_in_redirect: not supported: the proxy names the host",
                ":3:3: port_in_redirect: expects on or off",
                ":12:7: absolute_redirect: a location's own is not supported: the proxy makes \
                 every redirect the same way (the server's is on",
            ],
        );
    }

    /// An `if` on a variable `auth_request_set` sets is tested by nginx before the variable is
    /// set (rewrite phase, then access phase): on an empty value. Never true: dropped with its
    /// block (oauth2-proxy's cookie-splitting recipe); always true: refused. In a location
    /// reached internally, the variables may be set: the `if` is read as any other.
    /// `$upstream_cookie_NAME` is the auth answer's cookie.
    #[test]
    fn an_if_on_auth_request_variables_is_read_as_nginx_tests_it() {
        let server = |body: &str, other: &str| {
            format!(
                "server {{\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
                 a.key;\n  location / {{\n    auth_request /auth;\n    auth_request_set \
                 $auth_cookie $upstream_http_set_cookie;\n    auth_request_set $part \
                 $upstream_cookie__session_1;\n    add_header Set-Cookie $auth_cookie;\n    \
                 add_header X-Part $part;\n{body}    proxy_pass http://127.0.0.1:80;\n  }}\n  \
                 location = /auth {{\n    proxy_pass http://127.0.0.1:4180;\n  }}\n{other}}}\n"
            )
        };
        let mapped = map(&server(
            "    if ($auth_cookie ~* \"(; .*)\") {\n      set $a $auth_cookie;\n    }\n    if \
             ($part) {\n      add_header Set-Cookie $a;\n    }\n    if ($upstream_http_x != \
             \"\") {\n      return 403;\n    }\n",
            "",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let maps = json(&mapped, &["proxy", "maps"]).unwrap();
        assert_eq!(maps[0]["source"], "$auth_http_set_cookie");
        assert_eq!(maps[1]["source"], "$auth_set_cookie__session_1");
        assert!(json(&mapped, &["proxy", "conditional_answers"]).is_none());
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        for expected in [
            ":11:5: if: warning: ignored with its block: nginx never enters it: $auth_cookie is \
             set only by auth_request_set",
            ":14:5: if: warning: ignored with its block: nginx never enters it: $part",
            ":17:5: if: warning: ignored with its block: nginx never enters it: $upstream_http_x",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "{expected}: {warnings:#?}"
            );
        }
        // True on the empty value: nginx enters it on every request.
        let err = map(&server(
            "    if ($auth_cookie ~ \"^$\") {\n      return 403;\n    }\n    if ($part = \"\") \
             {\n      return 403;\n    }\n",
            "",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":11:5: if: not supported: nginx enters this block on every request: $auth_cookie",
                ":14:5: if: not supported: nginx enters this block on every request: $part",
            ],
        );
        // In a named location (an error page's), the variables may be set: an `if` holding
        // anything but `return` is refused as before.
        let err = map(&server(
            "    error_page 401 = @signin;\n",
            "  location @signin {\n    if ($part) {\n      set $b 1;\n    }\n    proxy_pass \
             http://127.0.0.1:4180;\n  }\n",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[":18:5: if: only `if (...) { return ...; }` is supported"],
        );
    }

    /// `map` blocks: the ones a served directive uses become `proxy.maps` (a map a map uses
    /// too, before it), the others are warned about; what the proxy cannot read is an error at
    /// the map's line.
    #[test]
    fn maps_used_by_the_server_are_mapped() {
        let server = |maps: &str, body: &str| {
            format!(
                "http {{\n{maps}  server {{\n    listen 443 ssl;\n    ssl_certificate a.crt;\n    \
                 ssl_certificate_key a.key;\n{body}    location / {{\n      proxy_pass \
                 http://127.0.0.1:80;\n    }}\n  }}\n}}\n"
            )
        };
        let mapped = map(&server(
            "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n  map \
             $cors_origin $cors_credentials { default true; '' ''; }\n  map $http_origin \
             $cors_origin { default ''; ~^https://(.+)\\.example\\.com$ $http_origin; }\n",
            "    add_header Access-Control-Allow-Credentials $cors_credentials always;\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let maps = json(&mapped, &["proxy", "maps"]).unwrap();
        let names: Vec<&str> = maps
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["variable"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["cors_origin", "cors_credentials"],
            "the one used last"
        );
        assert_eq!(
            maps[0]["values"],
            serde_json::json!([{ "match": "~^https://(.+)\\.example\\.com$", "value": "$http_origin" }])
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(":2:3: map: warning: ignored: no directive the proxy serves uses $connection_upgrade")),
            "{warnings:#?}"
        );
        // The registry's idiom: the one value, added where the app sent none.
        let mapped = map(&server(
            "  map $upstream_http_docker_distribution_api_version $api { '' 'registry/2.0'; }\n",
            "    add_header Docker-Distribution-Api-Version $api always;\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "response_headers"]).unwrap()["Docker-Distribution-Api-Version"],
            "registry/2.0"
        );
        assert!(json(&mapped, &["proxy", "maps"]).is_none());
        let err = map(&server(
            "  map $http_host $a { hostnames; default 1; }\n  map $upstream_status $b { default \
             1; }\n  map $b $c { default $d; }\n  map $c $d { default 1; }\n",
            "    add_header X-A $a always;\n    add_header X-C $c always;\n",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":2:23: hostnames: not supported: host name wildcards",
                ":3:3: map: $upstream_status is not a request variable",
                "map: maps that use each other in a cycle",
            ],
        );
    }

    /// `error_page` in the server, `location /` and other locations, with `=`, `=CODE`, a
    /// named location and a URL; `proxy_intercept_errors` and `internal`; what nginx refuses,
    /// refused at its line.
    #[test]
    fn error_pages_are_mapped_as_nginx_reads_them() {
        let mapped = map(
            "http {\n  error_page 404 /http-404.html;\n  server {\n    listen 443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    error_page 500 502 503 \
             504 /50x.html;\n    error_page 404 =200 /empty;\n    proxy_intercept_errors on;\n    \
             location / {\n      proxy_pass http://127.0.0.1:80;\n    }\n    location = /50x.html \
             {\n      root /srv/errors;\n      internal;\n    }\n    location /api/ {\n      \
             proxy_pass http://127.0.0.1:81;\n      error_page 429 = @slow;\n      error_page 502 \
             https://status.example.com/;\n      error_page 503 =301 https://example.com/;\n      \
             proxy_intercept_errors off;\n    }\n    location @slow {\n      return 429 \
             \"slow down\";\n    }\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "error_pages"]).unwrap(),
            serde_json::json!([
                { "statuses": [500, 502, 503, 504], "page": "/50x.html" },
                { "statuses": [404], "page": "/empty", "status": 200 },
            ]),
            "the server's own, not the http level's"
        );
        assert_eq!(
            json(&mapped, &["proxy", "intercept_errors"]).unwrap(),
            serde_json::json!(true)
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        let route = |location: &str| {
            routes
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["location"] == location)
                .unwrap_or_else(|| panic!("{location}: {routes:#}"))
                .clone()
        };
        let errors = route("= /50x.html");
        assert_eq!(errors["internal"], serde_json::json!(true));
        assert_eq!(
            errors["error_pages"][0]["page"], "/50x.html",
            "the server's"
        );
        assert_eq!(errors["intercept_errors"], serde_json::json!(true));
        let api = route("/api/");
        assert_eq!(
            api["error_pages"],
            serde_json::json!([
                { "statuses": [429], "page": "@slow", "status": "page" },
                { "statuses": [502], "page": "https://status.example.com/" },
                { "statuses": [503], "page": "https://example.com/", "status": 301 },
            ])
        );
        assert_eq!(api["intercept_errors"], serde_json::json!(false));
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  error_page 200 /ok;\n  error_page 404 /$uri.html;\n  error_page 404 \
             page.html;\n  error_page /x;\n  error_page 404 =abc /x;\n  location / {\n    \
             proxy_pass http://127.0.0.1:80;\n  }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":5:3: error_page: \"200\" is not a status from 300 to 599",
                ":6:3: error_page: \"/$uri.html\": a variable in an error page's URI is not \
                 supported",
                ":7:3: error_page: \"page.html\" is not a path, a named location or an http:// \
                 or https:// URL",
                ":8:3: error_page: takes status codes and a URI",
                ":9:3: error_page: =abc is not a status from 200 to 599",
            ],
        );
    }

    /// Locations other than `/` that `proxy_pass` become `proxy.routes`, each with what nginx
    /// gives it: its own settings, else the server's (never `location /`'s), else nginx's
    /// defaults; what a route cannot do is an error at its line.
    #[test]
    fn other_proxy_pass_locations_become_routes() {
        let mapped = map(
            "upstream app { server 127.0.0.1:8080; }\nserver {\n  listen 443 ssl;\n  \
             ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  proxy_read_timeout 30s;\n  \
             client_max_body_size 5m;\n  proxy_set_header X-Scheme $scheme;\n  location / {\n    \
             proxy_pass http://app;\n    proxy_read_timeout 600s;\n    proxy_set_header \
             X-Real-IP $remote_addr;\n  }\n  location /hub {\n    proxy_pass \
             http://localhost:3012;\n    proxy_set_header Upgrade $http_upgrade;\n    \
             proxy_set_header X-Real-IP $remote_addr;\n    proxy_http_version 1.1;\n  }\n  \
             location ~* ^/api/v[0-9]+/ws$ {\n    proxy_pass http://app;\n    \
             client_max_body_size 0;\n  }\n  location ^~ /same/ { proxy_pass http://app/same/; }\n}\n",
        )
        .unwrap();
        let routes = mapped
            .settings
            .iter()
            .find(|(_, key, _)| *key == ["proxy", "routes"])
            .map(|(at, _, value)| (at.clone(), serde_json::to_value(value).unwrap()))
            .expect("routes");
        assert!(
            routes.0.ends_with(":14:3"),
            "placed at the first: {}",
            routes.0
        );
        let expected = serde_json::json!([
            {
                "location": "/hub",
                "upstream": "http://127.0.0.1:3012",
                "upstream_connect_timeout": "5s",
                "upstream_response_timeout": "30s",
                "max_request_body": "5m",
                "request_buffering": true,
                "request_headers": { "Host": "localhost:3012" },
                "x_real_ip": true,
                "basic_auth_realm": "off",
                "cookie_flags": [],
                "rate_limits": [],
                "rate_limit_status": 503,
                "concurrency_limits": [],
                "concurrency_limit_status": 503,
                "hide_response_headers": [],
                "error_pages": [],
                "intercept_errors": false,
                "accel_redirect": true,
                "access_rules": [],
                "expires": "off",
                "redirect_rewrite": [{ "from": "http://localhost:3012/hub", "to": "/hub" }],
            },
            {
                "location": "~* ^/api/v[0-9]+/ws$",
                "upstream": "http://127.0.0.1:8080",
                "upstream_connect_timeout": "5s",
                "upstream_response_timeout": "30s",
                "max_request_body": "0",
                "request_buffering": true,
                "request_headers": { "Host": "app", "X-Scheme": "https" },
                "x_real_ip": false,
                "basic_auth_realm": "off",
                "cookie_flags": [],
                "rate_limits": [],
                "rate_limit_status": 503,
                "concurrency_limits": [],
                "concurrency_limit_status": 503,
                "hide_response_headers": [],
                "error_pages": [],
                "intercept_errors": false,
                "accel_redirect": true,
                "access_rules": [],
                "expires": "off",
                "redirect_rewrite": [{ "from": "http://app", "to": "" }],
            },
            {
                "location": "^~ /same/",
                "upstream": "http://127.0.0.1:8080",
                "upstream_connect_timeout": "5s",
                "upstream_response_timeout": "30s",
                "max_request_body": "5m",
                "request_buffering": true,
                "request_headers": { "Host": "app", "X-Scheme": "https" },
                "x_real_ip": false,
                "basic_auth_realm": "off",
                "cookie_flags": [],
                "rate_limits": [],
                "rate_limit_status": 503,
                "concurrency_limits": [],
                "concurrency_limit_status": 503,
                "hide_response_headers": [],
                "error_pages": [],
                "intercept_errors": false,
                "accel_redirect": true,
                "access_rules": [],
                "expires": "off",
                "redirect_rewrite": [{ "from": "http://app/same/", "to": "/same/" }],
            },
        ]);
        assert_eq!(routes.1, expected);
        assert_eq!(
            value(&mapped, "proxy.upstream_response_timeout").as_deref(),
            Some("600s")
        );
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / { proxy_pass http://127.0.0.1:80; }\n  location ~ ^/api/ {\n    \
             proxy_pass http://127.0.0.1:80/;\n  }\n  location /admin {\n    proxy_pass \
             http://127.0.0.1:80;\n    sub_filter a b;\n  }\n  location @named { proxy_pass \
             http://127.0.0.1:80; }\n  location ~ /(x { proxy_pass http://127.0.0.1:80; }\n  \
             location /h { proxy_pass http://127.0.0.1:80; add_header X-A $x; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":7:5: proxy_pass: a URI in proxy_pass, in a regular expression or named \
                 location: nginx refuses it too",
                ":11:5: sub_filter: not supported in location /admin",
                ":14:3: location: location /(x: not a regular expression",
                ":15:49: add_header: $x is not supported in add_header",
            ],
        );
    }

    /// A URI in `proxy_pass` replaces the location's part of the path (`prefix_rewrite`), or the
    /// whole target when the URL has a variable (`upstream_uri`); a `set` constant may name the
    /// address; what nginx refuses, or a `set` of anything but a constant, is an error.
    #[test]
    fn proxy_pass_uris_and_set_constants_are_mapped() {
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  set $app \"127.0.0.1:8080\";\n  location / { proxy_pass \
             http://127.0.0.1:80/base/; }\n  location /api/ { proxy_pass http://$app/; }\n  \
             location = /m { proxy_pass http://127.0.0.1:80/metrics; }\n  location ~ ^/h { \
             proxy_pass http://$app/status; }\n  location /same/ { proxy_pass \
             http://127.0.0.1:80/same/; }\n  location /v/ { proxy_pass \
             http://127.0.0.1:80/v2$request_uri; }\n}\n",
        )
        .unwrap();
        assert_eq!(
            value(&mapped, "proxy.prefix_rewrite").as_deref(),
            Some("/base/")
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        let field = |i: usize, key: &str| routes[i].get(key).cloned();
        assert_eq!(field(0, "upstream"), Some("http://127.0.0.1:8080".into()));
        assert_eq!(field(0, "upstream_uri"), Some("/".into()));
        assert_eq!(field(1, "prefix_rewrite"), Some("/metrics".into()));
        assert_eq!(field(2, "upstream_uri"), Some("/status".into()));
        assert_eq!(field(3, "prefix_rewrite"), None);
        assert_eq!(field(3, "upstream_uri"), None);
        assert_eq!(field(4, "upstream_uri"), Some("/v2$request_uri".into()));
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  set $a $host;\n  set $b;\n  location /c/ { proxy_pass http://$c; }\n  \
             location @n { proxy_pass http://127.0.0.1:80/x; }\n  location /l/ { set $d $host; \
             proxy_pass http://127.0.0.1:80; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":5:3: set: only a constant is supported",
                ":6:3: set: only a constant is supported",
                ":7:18: proxy_pass: an upstream chosen by a variable is not supported",
                ":8:17: proxy_pass: a URI in proxy_pass, in a regular expression or named",
                ":9:18: set: only a constant is supported",
            ],
        );
        // A location's own constants (Kubernetes' `set $backend ...; proxy_pass $backend;`),
        // before the server's; `$proxy_host` is the host they give.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  set $up http://127.0.0.1:81;\n  location / { set $up \
             \"http://127.0.0.1:8080\"; proxy_pass $up; }\n  location /api/ { proxy_pass $up; \
             }\n  location /v2/ { set $v2 http://127.0.0.1:9000; proxy_pass $v2; }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.upstream").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            json(&mapped, &["proxy", "request_headers"]),
            Some(serde_json::json!({ "Host": "127.0.0.1:8080" }))
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(routes[0]["upstream"], "http://127.0.0.1:81", "the server's");
        assert_eq!(routes[0]["request_headers"]["Host"], "127.0.0.1:81");
        assert_eq!(routes[1]["upstream"], "http://127.0.0.1:9000");
        assert_eq!(routes[1]["request_headers"]["Host"], "127.0.0.1:9000");
    }

    /// `limit_conn_zone` and `limit_conn`: zones keyed by the address or the server as
    /// `concurrency_limit_zones`; the limits of `location /` (else the server's) as the
    /// proxy's, a location's own (else the server's) as its route's; a zone keyed by anything
    /// else warned about and a limit using it refused; `$server_name` without a name counts
    /// nothing (warned); `limit_conn_dry_run on` refused.
    #[test]
    fn limit_conn_maps_to_concurrency_limits() {
        let text = |name: &str, extra: &str| {
            format!(
                "limit_conn_zone $binary_remote_addr zone=addr:1m;\nlimit_conn_zone $server_name \
                 zone=all:1m;\nlimit_conn_zone $http_x zone=odd:1m;\nserver {{\n  listen 443 \
                 ssl;\n  {name}ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
                 limit_conn addr 5;\n  limit_conn_status 429;\n  location / {{ proxy_pass \
                 http://127.0.0.1:80; }}\n  location /dl/ {{ proxy_pass http://127.0.0.1:80; \
                 limit_conn all 1;{extra} }}\n  location /up/ {{ proxy_pass \
                 http://127.0.0.1:80; }}\n}}\n"
            )
        };
        let mapped = map(&text("server_name a.example;\n  ", "")).unwrap();
        assert_eq!(
            json(&mapped, &["proxy", "concurrency_limit_zones"]).unwrap(),
            serde_json::json!({ "addr": "address", "all": "server" })
        );
        assert_eq!(
            json(&mapped, &["proxy", "concurrency_limits"]).unwrap(),
            serde_json::json!([{ "zone": "addr", "max": 5 }])
        );
        assert_eq!(
            json(&mapped, &["proxy", "concurrency_limit_status"]),
            Some(serde_json::json!(429))
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(
            routes[0]["concurrency_limits"],
            serde_json::json!([{ "zone": "all", "max": 1 }])
        );
        assert_eq!(
            routes[1]["concurrency_limits"],
            serde_json::json!([{ "zone": "addr", "max": 5 }])
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(":3:1: limit_conn_zone: warning: not served")),
            "{warnings:#?}"
        );
        // No server_name: the `$server_name` zone counts nothing, as in nginx.
        let mapped = map(&text("", "")).unwrap();
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(routes[0]["concurrency_limits"], serde_json::json!([]));
        let err = map(&text("", " limit_conn odd 2; limit_conn_dry_run on;"))
            .unwrap_err()
            .to_string();
        assert_errors(
            &err,
            &[
                ":11:69: limit_conn: zone odd: no limit_conn_zone keyed by the client address",
                ":11:87: limit_conn_dry_run: only off is supported",
            ],
        );
    }

    /// `limit_except`: `location /`'s as the proxy's, another location's as its route's, with
    /// its `allow`/`deny` as the rules of the methods it does not let through; anything else in
    /// it is an error.
    #[test]
    fn limit_except_maps_to_limit_except() {
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / {\n    proxy_pass http://127.0.0.1:80;\n    limit_except GET \
             { deny all; }\n  }\n  location /a/ {\n    proxy_pass http://127.0.0.1:80;\n    \
             limit_except GET POST { allow 10.0.0.0/8; deny all; }\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(
            json(&mapped, &["proxy", "limit_except"]).unwrap(),
            serde_json::json!({ "methods": ["GET"], "access_rules": ["deny all"] })
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(
            routes[0]["limit_except"],
            serde_json::json!({
                "methods": ["GET", "POST"],
                "access_rules": ["allow 10.0.0.0/8", "deny all"],
            })
        );
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / {\n    proxy_pass http://127.0.0.1:80;\n    limit_except GET \
             { auth_basic x; }\n  }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[":7:24: auth_basic: only allow and deny are supported"],
        );
    }

    /// `rewrite`: the server's, then `location /`'s when no other location takes requests, as
    /// `proxy.rewrites`; another location's as its route's `rewrites`; an `if` after a
    /// `rewrite` of its block, a flag or variable the proxy does not know, an expression it
    /// cannot run, and `location /`'s beside other locations are errors.
    #[test]
    fn rewrite_maps_to_rewrites() {
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  rewrite_log on;\n  rewrite ^/old/(.*)$ /new/$1 permanent;\n  location / \
             {\n    proxy_pass http://127.0.0.1:80;\n    rewrite ^/a$ /b last;\n  }\n}\n",
        )
        .unwrap();
        let rules = json(&mapped, &["proxy", "rewrites"]).unwrap();
        assert_eq!(
            rules,
            serde_json::json!([
                { "regex": "^/old/(.*)$", "replacement": "/new/$1", "flag": "permanent" },
                { "regex": "^/a$", "replacement": "/b", "flag": "last" },
            ])
        );
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / { proxy_pass http://127.0.0.1:80; }\n  location /q/ {\n    \
             rewrite ^/q/(.*)$ /search?q=$1;\n  }\n}\n",
        )
        .unwrap();
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(
            routes[0]["rewrites"],
            serde_json::json!([{ "regex": "^/q/(.*)$", "replacement": "/search?q=$1" }])
        );
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  rewrite ^/a /b;\n  if ($http_x = 1) { return 403; }\n  location / {\n    \
             proxy_pass http://127.0.0.1:80;\n    rewrite ^/c /d;\n  }\n  location /e/ {\n    \
             rewrite ^/e /f stop;\n    rewrite ^/g /h$nothing;\n    rewrite ( /i;\n  }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":6:3: if: an `if` after a `rewrite`",
                ":12:5: rewrite: stop: expects last, break, redirect or permanent",
                ":13:5: rewrite: $nothing is not supported in a replacement",
                ":14:5: rewrite: (: not a regular expression the proxy can run",
            ],
        );
    }

    /// `auth_basic` / `auth_basic_user_file`: each `location /`'s, else the server's (or
    /// `http`'s), as the proxy's; another location's own, else the server's, written out for
    /// its route (`off` when none, so that it does not take `location /`'s).
    #[test]
    fn auth_basic_is_inherited_as_nginx_inherits_it() {
        let mapped = map(
            "http {\n  auth_basic_user_file /etc/users;\n  server {\n    listen 443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    location / {\n      \
             proxy_pass http://127.0.0.1:80;\n      auth_basic \"Site\";\n    }\n    location \
             /admin/ {\n      proxy_pass http://127.0.0.1:80;\n      auth_basic Admins;\n      \
             auth_basic_user_file /etc/admins;\n    }\n    location /open/ {\n      proxy_pass \
             http://127.0.0.1:80;\n    }\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(
            value(&mapped, "proxy.basic_auth_realm").as_deref(),
            Some("Site")
        );
        assert_eq!(
            value(&mapped, "proxy.basic_auth_file").as_deref(),
            Some("/etc/users")
        );
        let routes = json(&mapped, &["proxy", "routes"]).expect("routes");
        assert_eq!(routes[0]["basic_auth_realm"], "Admins");
        assert_eq!(routes[0]["basic_auth_file"], "/etc/admins");
        assert_eq!(routes[1]["basic_auth_realm"], "off");
        assert_eq!(routes[1]["basic_auth_file"], "/etc/users");
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             auth_basic $realm;\n  location / { proxy_pass http://127.0.0.1:80; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(":5:3: auth_basic: a realm with a variable is not supported"),
            "{err}"
        );
    }

    /// Locations without `proxy_pass` or `return` serve files: `root` (inherited), `alias`,
    /// `index`, `default_type`, the server's `types` and `charset`; without `location /`, the
    /// server's root serves what no location takes.
    #[test]
    fn locations_without_proxy_pass_serve_files() {
        let mapped = map(
            "http {\n  types { text/html html; image/png PNG; }\n  server {\n    listen 443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    root /srv/www;\n    \
             index home.html;\n    charset utf-8;\n    location /static/ { default_type \
             text/plain; }\n    location = /security.txt { alias /srv/security.txt; }\n    \
             location /api/ { proxy_pass http://127.0.0.1:80; }\n  }\n}\n",
        )
        .unwrap();
        let json = |key: &[&str]| json(&mapped, key);
        assert_eq!(
            json(&["proxy", "file_types"]),
            Some(serde_json::json!({ "html": "text/html; charset=utf-8", "png": "image/png" }))
        );
        let routes = json(&["proxy", "routes"]).expect("routes");
        assert_eq!(routes[0]["location"], "/static/");
        assert_eq!(routes[0]["root"], "/srv/www");
        assert_eq!(routes[0]["index"], serde_json::json!(["home.html"]));
        assert_eq!(routes[0]["default_type"], "text/plain; charset=utf-8");
        assert_eq!(routes[1]["alias"], "/srv/security.txt");
        assert_eq!(routes[1]["default_type"], "text/plain; charset=utf-8");
        assert_eq!(routes[3]["location"], "/");
        assert_eq!(routes[3]["root"], "/srv/www");
        assert!(
            mapped.warnings.iter().any(|w| w
                .message
                .starts_with("no location /: requests no location takes")),
            "{:?}",
            mapped.warnings
        );
        // A location's own add_header: its route's response_headers; HSTS stays the server's.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             add_header Strict-Transport-Security max-age=63072000 always;\n  location / { \
             proxy_pass http://127.0.0.1:80; }\n  location /static/ { root /srv; add_header \
             Cache-Control public; add_header Strict-Transport-Security max-age=63072000 \
             always; }\n}\n",
        )
        .unwrap();
        let routes = self::json(&mapped, &["proxy", "routes"]).expect("routes");
        assert_eq!(routes[0]["response_headers"], serde_json::json!({}));
        assert_eq!(
            routes[0]["response_headers_on_success"],
            serde_json::json!({ "Cache-Control": "public" }),
            "without `always`: 2xx and 3xx only"
        );
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             location / { proxy_pass http://127.0.0.1:80; }\n  location /static/ { root /srv; \
             add_header Strict-Transport-Security max-age=1; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[":6:34: add_header: an HSTS of its own in a location"],
        );
        // try_files and the named location it falls back to.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             root /srv;\n  location / { try_files $uri $uri/ @app; }\n  location @app { \
             proxy_pass http://127.0.0.1:80; }\n}\n",
        )
        .unwrap();
        let routes = self::json(&mapped, &["proxy", "routes"]).expect("routes");
        assert_eq!(routes[0]["location"], "/");
        assert_eq!(
            routes[0]["try_files"],
            serde_json::json!(["$uri", "$uri/", "@app"])
        );
        assert_eq!(routes[1]["location"], "@app");
        assert_eq!(routes[1]["upstream"], "http://127.0.0.1:80");
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             location / { proxy_pass http://127.0.0.1:80; }\n  location /a/ { root /srv; }\n  \
             location ~ \\.png$ { alias /srv/images/; }\n  location /b/ { types { text/x b; } }\n  \
             location /c/ { try_files $document_root$uri =404; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":7:23: alias: alias in a regular expression location needs its captures",
                ":8:18: types: a location's own types are not supported",
                ":9:18: try_files: $document_root$uri: a variable other than $uri",
            ],
        );
    }

    /// `allow` / `deny`: the nearest level that has any (`location /`, else the server, else
    /// `http`) as the proxy's; another location's own, else the server's, else `http`'s,
    /// written out for its route; a location that denies everyone is a route that forwards
    /// nothing.
    #[test]
    fn allow_and_deny_are_inherited_as_nginx_inherits_them() {
        let mapped = map(
            "http {\n  deny 192.168.0.0/16;\n  server {\n    listen 443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    allow 10.0.0.0/8;\n    \
             deny all;\n    location / { proxy_pass http://127.0.0.1:80; allow 127.0.0.1; deny \
             all; }\n    location /api/ { proxy_pass http://127.0.0.1:81; }\n    location \
             /open/ { proxy_pass http://127.0.0.1:81; allow all; }\n    location ~ \
             /\\.(?!well-known) { deny all; access_log off; log_not_found off; root /srv; }\n  \
             }\n}\n",
        )
        .unwrap();
        let json = |key: &[&str]| json(&mapped, key);
        assert_eq!(
            json(&["proxy", "access_rules"]),
            Some(serde_json::json!(["allow 127.0.0.1", "deny all"]))
        );
        let routes = json(&["proxy", "routes"]).expect("routes");
        assert_eq!(
            routes[0]["access_rules"],
            serde_json::json!(["allow 10.0.0.0/8", "deny all"])
        );
        assert_eq!(routes[1]["access_rules"], serde_json::json!(["allow all"]));
        assert_eq!(routes[2]["location"], "~ /\\.(?!well-known)");
        assert_eq!(routes[2]["access_rules"], serde_json::json!(["deny all"]));
        assert_eq!(routes[2].get("upstream"), None);
        // Without server rules, the `http` level's.
        let mapped = map(
            "http {\n  deny 192.168.0.0/16;\n  server {\n    listen 443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    location / { \
             proxy_pass http://127.0.0.1:80; }\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(
            self::json(&mapped, &["proxy", "access_rules"]),
            Some(serde_json::json!(["deny 192.168.0.0/16"]))
        );
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             set_real_ip_from 10.0.0.0/8;\n  location / { proxy_pass http://127.0.0.1:80; allow \
             10.1.0.0/16; }\n  location /a/ { allow unix:; deny all; }\n  location /b/ { \
             allow 10.0.0.0/8; deny all; }\n  location /c/ { proxy_pass http://127.0.0.1:80; \
             satisfy any; deny 10.0.0.0/33; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":6:48: allow: with set_real_ip_from, nginx checks the address a trusted peer forwards",
                ":7:18: allow: unix: is not supported",
                ":8:18: allow: with set_real_ip_from",
                ":9:50: satisfy: only all is supported",
                ":9:63: deny: expects an address, a CIDR block or all",
            ],
        );
    }

    /// `add_header`: the headers of `location /` if it has any, else the server's (with the
    /// `http` level's), as nginx inherits them; HSTS to `proxy.hsts`, the others to
    /// `proxy.response_headers`; without `always` a warning (nginx adds them to 2xx/3xx only).
    #[test]
    fn ssl_protocols_tls13_alone_and_session_tickets_are_mapped() {
        let server = |protocols: &str| {
            format!(
                "server {{\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
                 a.key;\n  ssl_protocols {protocols};\n  access_log off; proxy_set_header Host \
                 $http_host;\n  location / {{\n    proxy_pass \
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
        let headers = |mapped: &Mapped, key: &str| {
            mapped
                .settings
                .iter()
                .find(|(_, k, _)| k.join(".") == key)
                .map(|(_, _, v)| {
                    v.clone()
                        .into_dict()
                        .unwrap()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_string().unwrap()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let pair = |name: &str, value: &str| vec![(name.to_string(), value.to_string())];
        assert_eq!(
            headers(&mapped, "proxy.response_headers"),
            pair("X-Frame-Options", "DENY")
        );
        assert_eq!(
            headers(&mapped, "proxy.response_headers_on_success"),
            pair("X-From-Http", "1"),
            "without `always`: 2xx and 3xx only, as nginx"
        );
        assert!(
            mapped
                .warnings
                .iter()
                .all(|w| !w.to_string().contains("add_header")),
            "{:#?}",
            mapped.warnings
        );
        // A location with headers of its own: only those.
        let mapped = map(&server("      add_header X-Only-Here yes always;\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.hsts"),
            None,
            "the server's HSTS is not inherited"
        );
        assert_eq!(
            headers(&mapped, "proxy.response_headers"),
            pair("X-Only-Here", "yes")
        );
        assert!(headers(&mapped, "proxy.response_headers_on_success").is_empty());
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
        // worker_processes and events: nginx's own tuning, each with a warning; no access_log:
        // nginx's default, logging every request, is kept; no Host: nginx sends `app`, the
        // upstream's name, and so does the proxy.
        assert_eq!(mapped.warnings.len(), 3, "{:?}", mapped.warnings);
        assert_eq!(
            json(&mapped, &["proxy", "request_headers"]),
            Some(serde_json::json!({ "Host": "app" }))
        );
        assert_eq!(value(&mapped, "proxy.access_log").as_deref(), Some("true"));
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

    /// `listen 443; ssl on;` (nginx before 1.25): every listen of the server is TLS.
    #[test]
    fn ssl_on_makes_every_listen_tls() {
        let mapped = map(
            "server {\n  listen 443;\n  ssl on;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / {\n    proxy_pass http://127.0.0.1:80;\n  }\n}\nserver {\n  \
             listen 80;\n  return 301 https://$host$request_uri;\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.listen").as_deref(),
            Some("0.0.0.0:443")
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(":3:3: ssl: warning: every listen of the server is TLS")),
            "{warnings:#?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(":10:1: server: warning: not served")),
            "{warnings:#?}"
        );
        // At the `http` level, after the server: every server is TLS.
        let mapped = map(
            "http {\n  server {\n    listen 8443;\n    ssl_certificate a.crt;\n    \
             ssl_certificate_key a.key;\n    location / { proxy_pass http://127.0.0.1:80; }\n  \
             }\n  ssl on;\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.listen").as_deref(),
            Some("0.0.0.0:8443")
        );
        // `ssl off` in the server wins over the `http` level's `on`.
        let err = map(
            "http {\n  ssl on;\n  server {\n    listen 8443;\n    ssl off;\n    ssl_certificate \
             a.crt;\n    ssl_certificate_key a.key;\n    location / { proxy_pass \
             http://127.0.0.1:80; }\n  }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no server listens with ssl"), "{err}");
        // Two ports under `ssl on`: two TLS listeners.
        let mapped = map(
            "server {\n  listen 80;\n  listen 443;\n  ssl on;\n  ssl_certificate a.crt;\n  \
             ssl_certificate_key a.key;\n  location / { proxy_pass http://127.0.0.1:80; }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "listen"]),
            Some(serde_json::json!(["0.0.0.0:80", "0.0.0.0:443"]))
        );
    }

    /// Every `listen ... ssl` of the server is a listener of the proxy, as nginx binds them:
    /// IPv4 and IPv6 wildcards of a port become one dual-stack socket, an address on a port
    /// that a wildcard covers is served by the wildcard, and `$server_port` is the port each
    /// client reached when the ports differ.
    #[test]
    fn several_tls_listeners_are_each_listened_on() {
        let server = |listens: &str, header: &str| {
            format!(
                "server {{\n{listens}  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
                 location / {{\n    proxy_pass http://127.0.0.1:80;\n    {header}\n    \
                 proxy_set_header Host $host;\n  }}\n}}\n"
            )
        };
        let mapped = map(&server(
            "  listen 443 ssl http2;\n  listen [::]:443 ssl http2;\n  listen 8448 ssl \
             default_server;\n  listen [::]:8448 ssl default_server;\n  listen 127.0.0.1:8448 \
             ssl;\n  listen 10.0.0.1:9443 ssl;\n",
            "proxy_set_header X-Port $server_port;",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "listen"]),
            Some(serde_json::json!([
                "[::]:443",
                "[::]:8448",
                "10.0.0.1:9443"
            ]))
        );
        assert_eq!(
            json(&mapped, &["proxy", "request_headers"]),
            Some(serde_json::json!({ "Host": "${host}", "X-Port": "${server_port}" }))
        );
        // One port on every listener: a constant.
        let mapped = map(&server(
            "  listen 10.0.0.1:8443 ssl;\n  listen 10.0.0.2:8443 ssl;\n",
            "proxy_set_header X-Port $server_port;",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "listen"]),
            Some(serde_json::json!(["10.0.0.1:8443", "10.0.0.2:8443"]))
        );
        assert_eq!(
            json(&mapped, &["proxy", "request_headers"]),
            Some(serde_json::json!({ "Host": "${host}", "X-Port": "8443" }))
        );
    }

    /// One named server behind a default server that only refuses: the named one is served,
    /// its names become `server_names`, and the default's `return` or `ssl_reject_handshake`
    /// says what the other hosts get. Any other pair of TLS servers is refused.
    #[test]
    fn a_default_server_that_refuses_maps_to_server_names() {
        let app = |listen: &str| {
            format!(
                "server {{\n  listen {listen};\n  server_name app.example.com *.example.org;\n  \
                 ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  location / {{ \
                 proxy_pass http://127.0.0.1:80; }}\n}}\n"
            )
        };
        let refuser = |listen: &str, body: &str| {
            format!(
                "server {{\n  listen {listen};\n  server_name _;\n  ssl_certificate b.crt;\n  \
                 ssl_certificate_key b.key;\n  {body}\n}}\n"
            )
        };
        // The refuser first (the default by order), or marked default_server after the app.
        for text in [
            refuser("443 ssl", "return 444;") + &app("443 ssl"),
            app("443 ssl") + &refuser("443 ssl default_server", "return 444;"),
            refuser("443 ssl", "location / { return 444; }") + &app("443 ssl"),
        ] {
            let mapped = map(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                json(&mapped, &["proxy", "server_names"]),
                Some(serde_json::json!(["app.example.com", "*.example.org"])),
                "{text}"
            );
            assert_eq!(
                value(&mapped, "proxy.unknown_host").as_deref(),
                Some("close")
            );
            let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("its certificate is not served")),
                "{warnings:#?}"
            );
            assert!(
                !warnings.iter().any(|w| w.contains("server_name")),
                "{warnings:#?}"
            );
        }
        let mapped = map(&(refuser("443 ssl", "return 403;") + &app("443 ssl"))).unwrap();
        assert_eq!(
            json(&mapped, &["proxy", "unknown_host"]),
            Some(serde_json::json!(403))
        );
        // `ssl_reject_handshake` alone: unknown names get no handshake, and a known SNI with
        // another Host gets 421 (warned: nginx would serve the default server's root).
        let mapped = map(&(refuser("443 ssl", "ssl_reject_handshake on;")
            + &app("443 ssl")
            + &refuser("8443 ssl", "return 444;")))
        .unwrap();
        assert_eq!(
            value(&mapped, "proxy.reject_unknown_sni").as_deref(),
            Some("true")
        );
        assert_eq!(
            json(&mapped, &["proxy", "unknown_host"]),
            Some(serde_json::json!(421))
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        for expected in ["gets 421", "not served: its port 8443"] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "{expected}: {warnings:#?}"
            );
        }
        // The app is the default server (first, unmarked refuser after it), two apps, a
        // refuser that redirects, an app without a name: one server too many.
        for text in [
            app("443 ssl") + &refuser("443 ssl", "return 444;"),
            app("443 ssl") + &app("443 ssl"),
            refuser("443 ssl", "return 301 https://example.com;") + &app("443 ssl"),
        ] {
            let err = map(&text).unwrap_err().to_string();
            assert!(err.contains("a second server with ssl"), "{err}");
        }
        let err = map(&(refuser("443 ssl", "return 444;")
            + "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
               a.key;\n  location / { proxy_pass http://127.0.0.1:80; }\n}\n"))
        .unwrap_err()
        .to_string();
        assert!(err.contains("no server_name"), "{err}");
    }

    /// `gzip on` and its settings from the server, else `http`; a location's are warned about.
    #[test]
    fn gzip_maps_to_proxy_gzip() {
        let mapped = map(
            "http {\n  gzip on;\n  gzip_types text/css application/json;\n  gzip_min_length \
             1k;\n  server {\n    listen 443 ssl;\n    ssl_certificate a.crt;\n    \
             ssl_certificate_key a.key;\n    gzip_comp_level 5;\n    gzip_vary on;\n    \
             gzip_proxied expired no-cache auth;\n    gzip_disable msie6;\n    location / {\n      \
             proxy_pass http://127.0.0.1:80;\n      gzip off;\n    }\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "gzip"]),
            Some(serde_json::json!({
                "types": ["text/css", "application/json"],
                "min_length": "1024",
                "level": "5",
                "vary": true,
                "proxied": ["expired", "no-cache", "auth"],
            }))
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        for expected in [
            ":12:5: gzip_disable: warning: ignored",
            ":15:7: gzip: warning: ignored in a location",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "{expected}: {warnings:#?}"
            );
        }
        // `gzip off` (or none): nothing.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             gzip off;\n  gzip_types text/css;\n  location / { proxy_pass http://127.0.0.1:80; }\n}\n",
        )
        .unwrap();
        assert_eq!(json(&mapped, &["proxy", "gzip"]), None);
    }

    /// `if (...) { return ...; }` in the server and in a location: `conditional_answers`; any
    /// other `if` is an error at its line.
    #[test]
    fn if_return_maps_to_conditional_answers() {
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             if ($request_method !~ ^(GET|POST)$) { return 405; }\n  if ( $http_x_block ) { \
             return 403 \"no\"; }\n  location / { proxy_pass http://127.0.0.1:80; }\n  location \
             /api/ {\n    if ($request_method = OPTIONS) { return 204; }\n    if ($arg_debug = \
             1) { return https://example.com/debug; }\n    proxy_pass http://127.0.0.1:80;\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "conditional_answers"]),
            Some(serde_json::json!([
                { "when": "$request_method !~ ^(GET|POST)$", "status": 405 },
                { "when": "$http_x_block", "status": 403, "body": "no", "content_type": "text/plain" },
            ]))
        );
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(
            routes[0]["conditional_answers"],
            serde_json::json!([
                { "when": "$request_method = OPTIONS", "status": 204 },
                { "when": "$arg_debug = 1", "status": 302, "location": "https://example.com/debug" },
            ])
        );
        // `location /`'s, when no other location takes requests: after the server's.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             location / {\n    if ($http_x) { return 403; }\n    proxy_pass http://127.0.0.1:80;\n  \
             }\n  if ($http_y) { return 404; }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "conditional_answers"]),
            Some(serde_json::json!([
                { "when": "$http_y", "status": 404 },
                { "when": "$http_x", "status": 403 },
            ]))
        );
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             if (-f /maintenance) { return 503; }\n  if ($bad_var = 1) { return 403; }\n  if \
             ($http_x = 1) { set $a 1; }\n  if ($uri ~ \"(\") { return 400; }\n  location / {\n    \
             proxy_pass http://127.0.0.1:80;\n    if ($http_x) { return 403; }\n  }\n  location /a/ \
             { proxy_pass http://127.0.0.1:81; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":5:3: if: only a condition on a request variable",
                ":6:3: if: \"$bad_var = 1\": a condition starts with one of the request's variables",
                ":7:3: if: only `if (...) { return ...; }` is supported",
                ":8:3: if: not a regular expression the proxy can run",
            ],
        );
        // `location /`'s own `if` and `rewrite` beside another location: `/` is a route, so
        // that they hold for its requests only.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             location / {\n    proxy_pass http://127.0.0.1:80;\n    if ($http_x) { return 403; }\n    \
             rewrite ^/old$ /new permanent;\n  }\n  location /a/ { proxy_pass http://127.0.0.1:81; \
             }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(json(&mapped, &["proxy", "conditional_answers"]).is_none());
        let routes = json(&mapped, &["proxy", "routes"]).unwrap();
        assert_eq!(routes[0]["location"], "/");
        assert_eq!(routes[0]["upstream"], "http://127.0.0.1:80");
        assert_eq!(
            routes[0]["conditional_answers"],
            serde_json::json!([{ "when": "$http_x", "status": 403 }])
        );
        assert_eq!(routes[0]["rewrites"][0]["flag"], "permanent");
        assert_eq!(routes[1]["location"], "/a/");
        assert!(routes[1].get("conditional_answers").is_none());
    }

    /// Words are read as nginx reads them (checked with `add_header` and curl against nginx
    /// 1.22): a backslash is kept unless it escapes `"`, `'`, `\` or stands in `\t`, `\r`,
    /// `\n`, quoted or not; a `}` or `#` inside a word is part of it.
    #[test]
    fn backslashes_and_braces_are_read_as_nginx_reads_them() {
        let words = |text: &str| -> Vec<String> {
            tokenize("t.conf", text)
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .map(|t| t.text)
                .collect()
        };
        assert_eq!(
            words(r#"add_header X-A a\.b; add_header X-C "q\"r\.s\\t";"#),
            [
                "add_header",
                "X-A",
                r"a\.b",
                ";",
                "add_header",
                "X-C",
                r#"q"r\.s\t"#,
                ";"
            ]
        );
        assert_eq!(
            words(r"a 'p\'q\\z' a\x22b a}b a#b a\ b u\tv ${x}y;"),
            [
                "a", r"p'q\z", r"a\x22b", "a}b", "a#b", r"a\ b", "u\tv", "${x}y", ";"
            ]
        );
        assert_eq!(words(r"a\;b;"), [r"a\;b", ";"]);
        assert_eq!(
            words(r#"if ($scheme = "http") {"#),
            ["if", "($scheme", "=", "http", ")", "{"]
        );
        let err = tokenize("t.conf", "a \"b\"c;").unwrap_err().to_string();
        assert!(err.contains("t.conf:1:6: unexpected \"c\""), "{err}");
        // What an error prints is the value as written.
        let err = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             location / { proxy_pass http://127.0.0.1:80; }\n  location ~ /\\.(?!well-known) { \
             autoindex on; }\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(r"not supported in location ~ /\.(?!well-known)"),
            "{err}"
        );
        // A fixed header keeps its backslash, as nginx sends it.
        let mapped = map(
            "server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  \
             add_header X-A a\\.b always;\n  location / { proxy_pass http://127.0.0.1:80; }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let headers = mapped
            .settings
            .iter()
            .find(|(_, key, _)| key.join(".") == "proxy.response_headers")
            .and_then(|(_, _, v)| v.clone().into_dict())
            .expect("response headers");
        assert_eq!(headers.get("X-A").and_then(|v| v.as_str()), Some(r"a\.b"));
    }

    /// Directives that change nothing a client or the app sees are warned about, each with
    /// its reason; their look-alikes that would change something stay refused.
    #[test]
    fn directives_without_effect_are_warned_about_not_refused() {
        let server = |listen: &str, server: &str, location: &str| {
            format!(
                "http {{\n  log_not_found off;\n  limit_req_log_level warn;\n  \
                 limit_conn_log_level info;\n  server {{\n    {listen}\n    ssl_certificate \
                 a.crt;\n    ssl_certificate_key a.key;\n{server}    location / {{\n      \
                 proxy_pass http://127.0.0.1:80$request_uri;\n{location}    }}\n  }}\n}}\n"
            )
        };
        let text = server(
            "listen 443 ssl;",
            "    if ($scheme = \"http\") {\n      return 301 https://$host$request_uri;\n    }\n    \
             ignore_invalid_headers off;\n    chunked_transfer_encoding on;\n    \
             proxy_ssl_verify on;\n    proxy_intercept_errors off;\n    proxy_send_timeout 90;\n",
            "      if ( $scheme != https ) { return 403; }\n      proxy_ssl_session_reuse off;\n",
        );
        let mapped = map(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.upstream").as_deref(),
            Some("http://127.0.0.1:80"),
            "$request_uri is the URI the proxy forwards anyway"
        );
        let warnings: Vec<String> = mapped.warnings.iter().map(ToString::to_string).collect();
        for expected in [
            ":2:3: log_not_found: warning: ignored: it only sets what nginx writes to its error log",
            ":3:3: limit_req_log_level: warning: ignored: it only sets",
            ":4:3: limit_conn_log_level: warning: ignored: it only sets",
            ":9:5: if: warning: ignored with its block: never true",
            ":12:5: ignore_invalid_headers: warning: header names with underscores are forwarded",
            ":13:5: chunked_transfer_encoding: warning: ignored: on is nginx's default",
            ":14:5: proxy_ssl_verify: warning: ignored: the upstream is http://",
            ":16:5: proxy_send_timeout: warning: ignored: no timeout of its own",
            ":19:7: if: warning: ignored with its block: never true",
            ":20:7: proxy_ssl_session_reuse: warning: ignored: the upstream is http://",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "{expected}: {warnings:#?}"
            );
        }
        assert_eq!(
            value(&mapped, "proxy.drop_underscore_headers").as_deref(),
            Some("false"),
            "ignore_invalid_headers off: forwarded"
        );
        assert_eq!(
            value(&mapped, "proxy.intercept_errors").as_deref(),
            Some("false"),
            "proxy_intercept_errors off"
        );
        // A plain listen beside the TLS one: the `if` is true there only, and it is not served.
        let mixed = text.replace("listen 443 ssl;", "listen 80;\n    listen 443 ssl;");
        let mapped = map(&mixed).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            mapped.warnings.iter().any(|w| w.to_string().contains(
                "if: warning: ignored with its block: true only \
                                                 on the listen without ssl"
            )),
            "{:#?}",
            mapped.warnings
        );
        // What would change a response is still refused (the server's `if ... return` are
        // answers now).
        let err = map(&server(
            "listen 443 ssl;",
            "    if ($scheme = https) { return 403; }\n    chunked_transfer_encoding off;\n    \
             ignore_invalid_headers maybe;\n    if ($host = a) { return 403; }\n    \
             proxy_intercept_errors maybe;\n",
            "",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":10:5: chunked_transfer_encoding: not supported",
                ":11:5: ignore_invalid_headers: expects on or off",
                ":13:5: proxy_intercept_errors: takes on or off",
            ],
        );
        // proxy_ssl_* with an https:// upstream: its upstream_tls, nginx's defaults for the
        // others (no SNI); one nginx has but the proxy cannot do is refused.
        let text = server(
            "listen 443 ssl;",
            "    proxy_ssl_verify on;\n    proxy_ssl_trusted_certificate ca.crt;\n    \
             proxy_ssl_protocols TLSv1.2;\n",
            "",
        )
        .replace("http://127.0.0.1:80$request_uri", "https://127.0.0.1:8443");
        let mapped = map(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json(&mapped, &["proxy", "upstream_tls"]).unwrap(),
            serde_json::json!({ "verify": true, "send_server_name": false, "ca_file": "ca.crt" })
        );
        assert_eq!(
            value(&mapped, "proxy.upstream").as_deref(),
            Some("https://127.0.0.1:8443")
        );
        let err = map(&text.replace("proxy_ssl_protocols TLSv1.2", "proxy_ssl_crl crl.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":11:5: proxy_ssl_crl: not supported for an https:// upstream"),
            "{err}"
        );
        // `$request_uri` after a path: the whole target (nginx sends `//path`); another
        // variable right after the address: refused.
        let mapped = map(&server("listen 443 ssl;", "", "").replace(
            "http://127.0.0.1:80$request_uri",
            "http://127.0.0.1:80/$request_uri",
        ))
        .unwrap();
        assert_eq!(
            value(&mapped, "proxy.upstream_uri").as_deref(),
            Some("/$request_uri")
        );
        let err = map(&server("listen 443 ssl;", "", "")
            .replace("http://127.0.0.1:80$request_uri", "http://127.0.0.1:80$uri"))
        .unwrap_err()
        .to_string();
        assert!(err.contains("proxy_pass: "), "{err}");
    }

    /// nginx drops request headers with an underscore in their name unless told
    /// `ignore_invalid_headers off` or `underscores_in_headers on`: `drop_underscore_headers`.
    #[test]
    fn underscore_headers_are_dropped_as_nginx_drops_them() {
        let drops = |http: &str, server: &str| {
            let text = format!(
                "http {{\n{http}  server {{\n    listen 8443 ssl;\n    ssl_certificate a.crt;\n    \
                 ssl_certificate_key a.key;\n{server}    location / {{ proxy_pass \
                 http://127.0.0.1:80; }}\n  }}\n}}\n"
            );
            let mapped = map(&text).unwrap_or_else(|e| panic!("{e}"));
            value(&mapped, "proxy.drop_underscore_headers")
        };
        let yes = Some("true".to_string());
        let no = Some("false".to_string());
        assert_eq!(drops("", ""), yes, "nginx's defaults");
        assert_eq!(drops("", "    ignore_invalid_headers on;\n"), yes);
        assert_eq!(drops("  ignore_invalid_headers off;\n", ""), no);
        assert_eq!(drops("", "    underscores_in_headers on;\n"), no);
        assert_eq!(
            drops(
                "  ignore_invalid_headers off;\n",
                "    ignore_invalid_headers on;\n    underscores_in_headers off;\n"
            ),
            yes,
            "the server's own win"
        );
    }

    /// `proxy_read_timeout` / `proxy_connect_timeout`: the location's win over the server's,
    /// even when the server's come later in the file.
    #[test]
    fn upstream_timeouts_are_the_locations_else_the_servers() {
        let mapped = map(
            "http {\n  proxy_connect_timeout 5s;\n  server {\n    listen 8443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    location / {\n      \
             proxy_pass http://127.0.0.1:80;\n      proxy_read_timeout 90s;\n    }\n    \
             proxy_read_timeout 30s;\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.upstream_response_timeout").as_deref(),
            Some("90s")
        );
        assert_eq!(
            value(&mapped, "proxy.upstream_connect_timeout").as_deref(),
            Some("5s"),
            "the http level's, inherited"
        );
    }

    /// `worker_shutdown_timeout` (the main level's) is the proxy's drain time; the limits nginx
    /// keeps and the proxy does not say so.
    #[test]
    fn worker_shutdown_timeout_is_the_shutdown_grace() {
        let mapped = map(
            "worker_shutdown_timeout 25s;\nhttp {\n  keepalive_requests 100;\n  server {\n    listen 8443 ssl;\n    ssl_certificate a.crt;\n    \
             ssl_certificate_key a.key;\n    location / { proxy_pass http://127.0.0.1:80; }\n  \
             }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.shutdown_grace").as_deref(),
            Some("25s")
        );
        assert_eq!(
            value(&mapped, "proxy.keepalive_requests").as_deref(),
            Some("100")
        );
    }

    /// `client_body_timeout`, `send_timeout` and `keepalive_requests`: `location /`'s wins over
    /// the server's wherever it stands; another location's is warned about (the proxy's
    /// applies everywhere).
    #[test]
    fn client_timeouts_are_location_slash_else_the_servers() {
        for (directive, key, [http, slash, other, server]) in [
            (
                "client_body_timeout",
                "proxy.body_read_timeout",
                ["9s", "7s", "1h", "3s"],
            ),
            (
                "send_timeout",
                "proxy.send_timeout",
                ["9s", "7s", "1h", "3s"],
            ),
            (
                "keepalive_requests",
                "proxy.keepalive_requests",
                ["9", "7", "100", "3"],
            ),
        ] {
            let mapped = map(&format!(
                "http {{\n  {directive} {http};\n  server {{\n  listen 8443 ssl;\n  \
                 ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  location / {{\n    \
                 proxy_pass http://127.0.0.1:80;\n    {directive} {slash};\n  }}\n  location \
                 /up/ {{\n    proxy_pass http://127.0.0.1:80;\n    {directive} {other};\n  \
                 }}\n  {directive} {server};\n}}\n}}\n"
            ))
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(value(&mapped, key).as_deref(), Some(slash), "{directive}");
            assert!(
                mapped
                    .warnings
                    .iter()
                    .any(|w| w.path == directive && w.message.contains("every location")),
                "{:?}",
                mapped.warnings
            );
            let mapped = map(&format!(
                "http {{\n  {directive} {http};\n  server {{\n  listen 8443 ssl;\n  \
                 ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n  location / {{\n    \
                 proxy_pass http://127.0.0.1:80;\n  }}\n}}\n}}\n"
            ))
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                value(&mapped, key).as_deref(),
                Some(http),
                "{directive} inherited"
            );
        }
    }

    /// `proxy_request_buffering off` turns buffering off only with `proxy_http_version 1.1`,
    /// each the location's else the server's (`location /`'s for the proxy's own); nginx's
    /// default, and `off` over HTTP/1.0 (warned), hold the body.
    #[test]
    fn request_buffering_is_off_only_with_http_1_1() {
        let mapped = map(
            "http {\n  proxy_http_version 1.1;\n  server {\n    listen 8443 ssl;\n    \
             ssl_certificate a.crt;\n    ssl_certificate_key a.key;\n    location / {\n      \
             proxy_pass http://127.0.0.1:80;\n      proxy_request_buffering off;\n    }\n    \
             location /a/ { proxy_pass http://127.0.0.1:80; }\n    \
             location /b/ { proxy_pass http://127.0.0.1:80; proxy_request_buffering off; }\n    \
             location /c/ { proxy_pass http://127.0.0.1:80; proxy_request_buffering off; \
             proxy_http_version 1.0; }\n  }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value(&mapped, "proxy.request_buffering").as_deref(),
            Some("false"),
            "location /'s off, with the http level's 1.1"
        );
        let routes = mapped
            .settings
            .iter()
            .find(|(_, key, _)| *key == ["proxy", "routes"])
            .map(|(_, _, value)| serde_json::to_value(value).unwrap())
            .expect("routes");
        let buffering: Vec<_> = routes
            .as_array()
            .unwrap()
            .iter()
            .map(|route| {
                (
                    route["location"].clone(),
                    route["request_buffering"].clone(),
                )
            })
            .collect();
        assert_eq!(
            buffering,
            [
                ("/a/".into(), true.into()),
                ("/b/".into(), false.into()),
                ("/c/".into(), true.into()),
            ],
            "the server's default for /a/ (not location /'s off); /c/ over HTTP/1.0"
        );
        let warned: Vec<_> = mapped
            .warnings
            .iter()
            .filter(|w| w.path == "proxy_request_buffering")
            .collect();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].message.contains("proxy_http_version 1.1"));
        // Neither at all: nothing set, the proxy's default (held).
        let plain = map(
            "server {\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  location / { proxy_pass http://127.0.0.1:80; proxy_request_buffering \
             off; }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value(&plain, "proxy.request_buffering"), None);
        let bad = map(
            "server {\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
             a.key;\n  proxy_request_buffering maybe;\n  location / { proxy_pass \
             http://127.0.0.1:80; }\n}\n",
        )
        .unwrap_err();
        assert!(
            bad.to_string()
                .contains("proxy_request_buffering: expects on or off"),
            "{bad}"
        );
    }

    /// `access_log`: the nearest level that has any (`location /`, the server, `http`), `off`
    /// winning at its level; none at all is nginx's default, a log line per request.
    #[test]
    fn access_log_follows_nginx_levels_and_default() {
        let server = |http: &str, server: &str, location: &str| {
            format!(
                "http {{\n{http}  server {{\n    listen 8443 ssl;\n    ssl_certificate a.crt;\n    \
                 ssl_certificate_key a.key;\n    location / {{\n{location}      proxy_pass \
                 http://127.0.0.1:80;\n    }}\n{server}  }}\n}}\n"
            )
        };
        let log = |text: &str| {
            let mapped = map(text).unwrap_or_else(|e| panic!("{e}"));
            let warned = mapped
                .warnings
                .iter()
                .any(|w| w.path == "access_log" || w.message.contains("access_log"));
            (value(&mapped, "proxy.access_log"), warned)
        };
        let on = (Some("true".to_string()), true);
        let off = (Some("false".to_string()), false);
        assert_eq!(log(&server("", "", "")), on, "nginx's default");
        let http_off = "  access_log off;\n";
        let own = "    access_log /var/log/nginx/app.log main;\n";
        let inner_off = "      access_log off;\n";
        assert_eq!(log(&server(http_off, "", "")), off);
        // The server's own, after the location in the file, still loses to the location's.
        assert_eq!(log(&server(http_off, own, "")), on);
        assert_eq!(log(&server("", own, inner_off)), off);
        let both = "    access_log /a.log;\n    access_log off;\n";
        assert_eq!(log(&server("", both, "")), off, "off wins at its level");
    }

    /// `proxy_redirect`: nginx's `default` when there is none (the `proxy_pass` URL as
    /// written, rewritten to `/`), `off`, prefix pairs (`$scheme` is https), `location /`'s
    /// over the server's; regular expressions and other variables refused.
    #[test]
    fn proxy_redirect_maps_to_redirect_rewrite() {
        let server = |target: &str, server: &str, location: &str| {
            format!(
                "server {{\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
                 a.key;\n  access_log off; proxy_set_header Host $http_host;\n{server}  \
                 location / {{\n    proxy_pass \
                 {target};\n{location}  }}\n}}\n"
            )
        };
        let rules = |mapped: &Mapped| -> Vec<(String, String)> {
            mapped
                .settings
                .iter()
                .rfind(|(_, key, _)| key.join(".") == "proxy.redirect_rewrite")
                .map(|(_, _, list)| {
                    list.as_array()
                        .unwrap()
                        .iter()
                        .map(|entry| {
                            let dict = entry.as_dict().unwrap();
                            let get = |k: &str| dict[k].as_str().unwrap().to_string();
                            (get("from"), get("to"))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let pair = |from: &str, to: &str| (from.to_string(), to.to_string());
        let ok = |text: String| map(&text).unwrap_or_else(|e| panic!("{e}"));
        // None: nginx's default, with the URL as written (localhost stays localhost).
        let mapped = ok(server("http://localhost:8080", "", ""));
        assert_eq!(rules(&mapped), [pair("http://localhost:8080/", "/")]);
        assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
        let mapped = ok(server("http://127.0.0.1:80/", "", ""));
        assert_eq!(rules(&mapped), [pair("http://127.0.0.1:80/", "/")]);
        // A variable in proxy_pass: nginx has no default then.
        let mapped = ok(server("http://127.0.0.1:80$request_uri", "", ""));
        assert!(rules(&mapped).is_empty());
        // off: nothing rewritten, a warning.
        let mapped = ok(server(
            "http://127.0.0.1:80",
            "",
            "    proxy_redirect off;\n",
        ));
        assert!(rules(&mapped).is_empty());
        assert!(
            mapped.warnings[0]
                .to_string()
                .contains(":8:5: proxy_redirect: warning: ignored: off"),
            "{:?}",
            mapped.warnings
        );
        // Pairs in order, `default` among them; the location's own win over the server's.
        let mapped = ok(server(
            "http://127.0.0.1:80",
            "  proxy_redirect http://a/ http://b/;\n",
            "    proxy_redirect default;\n    proxy_redirect http:// $scheme://;\n",
        ));
        assert_eq!(
            rules(&mapped),
            [
                pair("http://127.0.0.1:80/", "/"),
                pair("http://", "https://")
            ]
        );
        assert_eq!(
            value(&mapped, "proxy.absolute_redirects").as_deref(),
            Some("true"),
            "a Location rewritten to a path is made absolute, as nginx makes it"
        );
        let mapped = ok(server(
            "http://127.0.0.1:80",
            "  proxy_redirect http:// https://;\n",
            "",
        ));
        assert_eq!(rules(&mapped), [pair("http://", "https://")]);
        // What cannot be carried over.
        let err = map(&server(
            "http://127.0.0.1:80$request_uri",
            "",
            "    proxy_redirect default;\n    proxy_redirect ~^http://(.*)$ https://$1;\n    \
             proxy_redirect http://$host/ https://$host/;\n    proxy_redirect a b c;\n",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":8:5: proxy_redirect: default cannot stand for a proxy_pass with a variable",
                ":9:5: proxy_redirect: a regular expression in proxy_redirect is not supported",
                ":10:5: proxy_redirect: a variable in proxy_redirect is not supported",
                ":11:5: proxy_redirect: expects off, default",
            ],
        );
    }

    /// `proxy_set_header`: `location /`'s, else the server's, as nginx inherits them; fixed
    /// values and the variables constant on the TLS listener to `proxy.request_headers` (`""`
    /// removes the header); other variables and the proxy's own headers refused.
    #[test]
    fn proxy_set_header_maps_to_request_headers() {
        let server = |server: &str, location: &str| {
            format!(
                "server {{\n  listen 8443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key \
                 a.key;\n  access_log off;\n{server}  location / {{\n    proxy_pass \
                 http://127.0.0.1:80;\n{location}  }}\n}}\n"
            )
        };
        let request_headers = |mapped: &Mapped| -> Vec<(String, String)> {
            mapped
                .settings
                .iter()
                .rfind(|(_, key, _)| key.join(".") == "proxy.request_headers")
                .map(|(_, _, v)| {
                    v.clone()
                        .into_dict()
                        .unwrap()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_string().unwrap()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mapped = map(&server(
            "  proxy_set_header X-Real-IP $remote_addr;\n",
            "    proxy_set_header Host $http_host;\n    proxy_set_header X-Scheme $scheme;\n    \
             proxy_set_header X-Forwarded-Port $server_port;\n    proxy_set_header X-NginX-Proxy \
             true;\n    proxy_set_header Authorization \"\";\n    proxy_set_header X-Https \
             ${https};\n    proxy_set_header Connection \"\";\n    proxy_set_header X-Client \
             $remote_addr;\n    proxy_set_header X-Via \"${host}:$server_port\";\n    \
             proxy_set_header X-Glued ${host}x;\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            request_headers(&mapped),
            [
                pair("Authorization", ""),
                pair("X-Client", "${remote_addr}"),
                pair("X-Forwarded-Port", "8443"),
                pair("X-Glued", "${host}x"),
                pair("X-Https", "on"),
                pair("X-NginX-Proxy", "true"),
                pair("X-Scheme", "https"),
                pair("X-Via", "${host}:8443"),
            ]
        );
        assert_eq!(
            value(&mapped, "proxy.x_real_ip"),
            None,
            "the location's own proxy_set_header: the server's are not inherited"
        );
        assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
        // The server's, when the location has none; no Host: nginx's $proxy_host (the
        // proxy_pass host, without the scheme's own port), written out.
        let mapped = map(&server(
            "  proxy_set_header X-Real-IP $remote_addr;\n  proxy_set_header X-Scheme $scheme;\n",
            "",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value(&mapped, "proxy.x_real_ip").as_deref(), Some("true"));
        assert_eq!(
            request_headers(&mapped),
            [pair("Host", "127.0.0.1"), pair("X-Scheme", "https")]
        );
        assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
        let mapped = map(&server(
            "",
            "    proxy_set_header Host $proxy_host:8080;\n    proxy_set_header X-Host $host;\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            request_headers(&mapped),
            [pair("Host", "127.0.0.1:8080"), pair("X-Host", "${host}")]
        );
        let err = map(&server(
            "",
            "    proxy_set_header X-User $user;\n    proxy_set_header Content-Length \"\";\n    \
             proxy_set_header X-A 1;\n    proxy_set_header x-a 2;\n    proxy_set_header \
             X-Forwarded-Proto http;\n    proxy_set_header X-Name $hostname;\n",
        ))
        .unwrap_err()
        .to_string();
        assert_errors(
            &err,
            &[
                ":8:5: proxy_set_header: X-User $user: $user is not supported",
                ":9:5: proxy_set_header: Content-Length \"\" is not supported: the proxy frames",
                ":11:5: proxy_set_header: x-a is set twice",
                ":12:5: proxy_set_header: X-Forwarded-Proto \"http\" is not supported: the proxy \
                 sets X-Forwarded-For",
                ":13:5: proxy_set_header: X-Name $hostname: $hostname is not supported",
            ],
        );
        // The request's own variables, replaced for each request; `$server_name`, a constant.
        let mapped = map(&server(
            "  server_name app.example.com www.example.com;\n",
            "    proxy_set_header Host $host;\n    proxy_set_header X-Request-ID $request_id;\n    \
             proxy_set_header X-Original-URI $request_uri;\n    proxy_set_header X-Path \
             \"$uri$is_args$args\";\n    proxy_set_header X-Trace $http_x_trace;\n    \
             proxy_set_header X-Server $server_name;\n    proxy_set_header X-TLS \
             \"$ssl_protocol $ssl_server_name $remote_port\";\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            request_headers(&mapped),
            [
                pair("Host", "${host}"),
                pair("X-Original-URI", "${request_uri}"),
                pair("X-Path", "${uri}${is_args}${args}"),
                pair("X-Request-ID", "${request_id}"),
                pair("X-Server", "app.example.com"),
                pair("X-TLS", "${ssl_protocol} ${ssl_server_name} ${remote_port}"),
                pair("X-Trace", "${http_x_trace}"),
            ]
        );
        // With set_real_ip_from, nginx's $remote_addr is what a trusted peer forwards.
        let mapped = map(&server(
            "  set_real_ip_from 10.0.0.0/8;\n",
            "    proxy_set_header Host $http_host;\n    proxy_set_header X-Real-IP \
             $remote_addr;\n    proxy_set_header X-Client $remote_addr;\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let real_ip: Vec<String> = mapped
            .warnings
            .iter()
            .map(ToString::to_string)
            .filter(|w| w.contains("from a set_real_ip_from peer, nginx's $remote_addr"))
            .collect();
        assert_eq!(real_ip.len(), 2, "{:?}", mapped.warnings);
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
