//! Forwarding one request to the upstream and its response back, bodies streamed both ways.
//!
//! The upstream is spoken to over HTTP/1.1 with a keep-alive pool ([`Upstream`]), whatever the
//! client used.
//! A request is first admitted: `CONNECT` is a 405, a transfer coding other than `chunked` a
//! 501, and a request without exactly one valid host (Host, `:authority`, or an absolute-form
//! target, which must agree) a 400 — none of these reach the upstream. An admitted request
//! goes out with one `Host` line (an absolute-form target's authority, never a Host header
//! that disagrees with it), hop-by-hop headers dropped in both directions (`Upgrade: h2c` and
//! `HTTP2-Settings` too: no cleartext HTTP/2 over TLS), HTTP/2 `cookie` fields joined into one
//! line, and the client's address, scheme and host in `X-Forwarded-*` or `Forwarded`: replacing
//! what the client sent, unless the client is a trusted proxy, whose list is appended to. A
//! WebSocket (any other `Upgrade`) is passed through: once the upstream answers 101, bytes are
//! copied both ways. An upstream that refuses is a 502, one too slow to answer is a 504, a
//! client body that breaks off before the answer a 400, each with a short plain-text body and
//! a metric. Nothing here does file I/O or takes a lock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;

use super::basic_auth::{self, BasicAuth};
use super::client_cert::ClientCert;
use super::concurrency;
use super::cookies;
use super::files::{FileBody, Files, Served};
use super::gzip::Gzip;
use super::hosts::Hosts;
use super::metrics::ProxyMetrics;
use super::park::H1State;
use super::rate_limit;
use super::rewrite;
use super::upstream::{
    BodyProgress, ClientBodyError, FAILURE_LOG, Held, RequestBody, Stalled, Upstream, UpstreamBody,
    UpstreamError,
};
use crate::config::{self, Cidr, ForwardedHeaders};
use crate::tls::stream::NameCheck;

/// A response body: the upstream's stream, a short one of ours, or a file a route serves.
pub(crate) type ProxyBody = Either<UpstreamBody, Either<Full<Bytes>, FileBody>>;

/// nginx's `expires` on a response of `status`: `Expires` set, every `Cache-Control` replaced
/// by one, for 200, 201, 204, 206, 301, 302, 303, 304, 307 and 308 only.
fn set_expires(status: StatusCode, headers: &mut HeaderMap, expires: config::Expires) {
    if !matches!(
        status.as_u16(),
        200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
    ) {
        return;
    }
    let (at, cache_control) = match expires {
        config::Expires::Epoch => (
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:01 GMT"),
            HeaderValue::from_static("no-cache"),
        ),
        config::Expires::Max => (
            HeaderValue::from_static("Thu, 31 Dec 2037 23:55:55 GMT"),
            HeaderValue::from_static("max-age=315360000"),
        ),
        config::Expires::After(seconds) => {
            // `Date` from the same second, so that a cache reads the same lifetime from
            // `Expires` as from `max-age` (nginx sends its own `Date`, from one clock, too).
            let now = std::time::SystemTime::now();
            if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
                headers.insert(header::DATE, date);
            }
            let offset = Duration::from_secs(seconds.unsigned_abs());
            let at = if seconds >= 0 {
                now + offset
            } else {
                now.checked_sub(offset).unwrap_or(now)
            };
            let cache_control = if seconds < 0 {
                HeaderValue::from_static("no-cache")
            } else {
                HeaderValue::from_str(&format!("max-age={seconds}"))
                    .unwrap_or(HeaderValue::from_static("no-cache"))
            };
            (
                HeaderValue::from_str(&httpdate::fmt_http_date(at))
                    .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:01 GMT")),
                cache_control,
            )
        }
    };
    headers.insert(header::EXPIRES, at);
    headers.insert(header::CACHE_CONTROL, cache_control);
}

/// Internal redirects (`try_files` fallbacks) one request may take, as nginx allows.
const MAX_HOPS: usize = 10;

/// A short body of ours.
fn full(bytes: Bytes) -> ProxyBody {
    Either::Right(Either::Left(Full::new(bytes)))
}

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1; `HTTP2-Settings`, RFC 7540
/// §3.2.1). Typed names, so that looking one up hashes no string.
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const HTTPS: HeaderValue = HeaderValue::from_static("https");

/// Who is on the other end of a client connection, formatted once per connection.
#[derive(Clone)]
pub(crate) struct Peer {
    /// The client's address (the TCP peer).
    pub ip: IpAddr,
    /// The client's address as `X-Forwarded-For` carries it.
    pub for_value: HeaderValue,
    /// The client's address as `Forwarded: for=` carries it (IPv6 quoted and bracketed).
    pub forwarded_for: String,
    /// Whether the client is in `trusted_proxies`: its forwarding headers are kept and
    /// appended to rather than replaced.
    pub trusted: bool,
    /// The client's certificate, formed when a request header needs it.
    pub client_cert: Option<Box<ClientCert>>,
    /// The port of the listener the connection came in on (nginx's `$server_port`).
    pub local_port: u16,
    /// The client's port (nginx's `$remote_port`).
    pub port: u16,
    /// `TLSv1.2` or `TLSv1.3` (nginx's `$ssl_protocol`).
    pub tls_version: &'static str,
    /// The server name the client asked for, kept when a request header needs it (nginx's
    /// `$ssl_server_name`).
    pub sni: Option<Box<str>>,
}

impl Peer {
    /// The peer at `ip`.
    pub(crate) fn new(ip: IpAddr, trusted: bool) -> Peer {
        let text = ip.to_string();
        let mut forwarded_for = String::with_capacity(text.len() + 4);
        match ip {
            IpAddr::V4(_) => push_forwarded_value(&mut forwarded_for, &text),
            IpAddr::V6(_) => push_forwarded_value(&mut forwarded_for, &format!("[{text}]")),
        }
        Peer {
            ip,
            for_value: HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown")),
            forwarded_for,
            trusted,
            client_cert: None,
            local_port: 443,
            port: 0,
            tls_version: "TLSv1.3",
            sni: None,
        }
    }
}

/// Sends requests to the upstream.
pub(crate) struct Forwarder {
    /// `proxy.upstream` and the proxy's own settings: where a request goes when no location of
    /// `locations` takes it.
    default: Target,
    /// `proxy.fixed_responses` and `proxy.routes`.
    locations: Locations,
    forwarded: ForwardedHeaders,
    trusted_proxies: Vec<Cidr>,
    hsts: Option<HeaderValue>,
    /// `proxy.response_headers` and `response_headers_on_success`, parsed once.
    response_headers: Vec<AddedHeader>,
    /// One of them has the request's variables.
    response_headers_per_request: bool,
    /// Some of `response_headers` name the `auth_request` answer (`$auth_http_NAME`...):
    /// their values are formed once it let the request in.
    response_headers_after_auth: bool,
    /// `proxy.drop_underscore_headers`.
    drop_underscore_headers: bool,
    /// `proxy.body_read_timeout`: the longest pause in a client's request body.
    body_read_timeout: Duration,
    /// `proxy.send_timeout`: the longest a connection's response bytes wait for the client.
    send_timeout: Duration,
    /// `proxy.keepalive_requests`: the most requests one connection serves.
    keepalive_requests: usize,
    /// `proxy.append_forwarded_for`.
    append_forwarded_for: bool,
    /// `proxy.absolute_redirects`: with `port_in_redirects`, whether the port goes in.
    absolute_redirects: Option<bool>,
    /// Every `basic_auth_file`, read once.
    auths: Vec<Arc<BasicAuth>>,
    /// `proxy.server_names`: none, every host is served.
    hosts: Option<Arc<Hosts>>,
    /// `proxy.gzip`.
    gzip: Option<Gzip>,
    /// `proxy.conditional_answers` (nginx's `if` in the server), before any location.
    conditional: Box<[Conditional]>,
    /// `proxy.rewrites` (nginx's `rewrite` in the server), after them.
    rewrites: Box<[rewrite::Rule]>,
    /// A location has `concurrency_limits`: a response may hold a request's place.
    limits_concurrency: bool,
    /// A location has `error_pages`: a request's head is kept for them.
    error_pages: bool,
    /// `reject_unknown_sni`: whether a TLS server name is one of `hosts`.
    sni_check: Option<Box<NameCheck>>,
    /// A value names `$ssl_server_name` (see [`Forwarder::wants_sni`]).
    wants_sni: bool,
    /// A value names a `$ssl_client_*` variable (see [`Forwarder::wants_client_cert`]).
    wants_client_cert: bool,
    metrics: ProxyMetrics,
}

/// `limit_except`: the methods let through on the location's access rules, and the rules the
/// others pass.
struct LimitExcept {
    methods: Box<[Method]>,
    rules: Box<[config::AccessRule]>,
}

/// The zones of `rate_limit_zones` and `concurrency_limit_zones`, by name.
struct Zones {
    rates: HashMap<String, Arc<rate_limit::Zone>>,
    concurrency: HashMap<String, Arc<concurrency::Zone>>,
}

/// An upstream and the settings a request to it is sent with: the proxy's own, or a route's.
struct Target {
    upstream: Arc<Upstream>,
    response_timeout: Duration,
    /// `max_request_body`, in bytes.
    max_request_body: Option<u64>,
    /// `request_buffering`: the most bytes of a body without a length read before it is sent.
    request_buffering: Option<u64>,
    /// `request_headers`: set or removed on each forwarded request.
    request_headers: Vec<(HeaderName, SetHeader)>,
    /// `redirect_rewrite`: (from, to), in order.
    redirects: Vec<(Bytes, Bytes)>,
    /// `x_real_ip`.
    x_real_ip: bool,
    /// `basic_auth_realm` and `basic_auth_file`.
    basic_auth: Option<Arc<BasicAuth>>,
    /// `cookie_flags`.
    cookies: Vec<cookies::Rule>,
    /// `rate_limits`, with their zones.
    rate_limits: Vec<rate_limit::Limit>,
    /// `rate_limit_status`.
    rate_limit_status: StatusCode,
    /// `hide_response_headers`.
    hidden: Box<[HeaderName]>,
    /// `concurrency_limits`, with their zones.
    concurrency_limits: Box<[concurrency::Limit]>,
    /// `concurrency_limit_status`.
    concurrency_limit_status: StatusCode,
    /// `access_rules`.
    access_rules: Box<[config::AccessRule]>,
    /// `limit_except`.
    limit_except: Option<Box<LimitExcept>>,
    /// `root` or `alias`: files served instead of forwarding (boxed: most targets forward).
    files: Option<Box<Files>>,
    /// `expires`.
    expires: Option<config::Expires>,
    /// `conditional_answers` (nginx's `if` in a location).
    conditional: Box<[Conditional]>,
    /// `rewrites` (nginx's `rewrite` in a location), after them.
    rewrites: Box<[rewrite::Rule]>,
    /// The route's own `response_headers` (and `_on_success`), added before the proxy's.
    response_headers: Box<[AddedHeader]>,
    /// `prefix_rewrite` or `upstream_uri`.
    rewrite: Rewrite,
    /// `error_pages` and `intercept_errors`.
    error_pages: ErrorPages,
    /// `internal`.
    internal: bool,
    /// `accel_redirect`.
    accel_redirect: bool,
    /// `stub_status`.
    stub_status: bool,
    /// `auth_request`.
    auth_request: Option<PathAndQuery>,
}

/// A route's `error_pages` (the proxy's when it has none) and `intercept_errors`.
struct ErrorPages {
    pages: Box<[ErrorPage]>,
    intercept: bool,
}

/// One of `error_pages`, its parts parsed once.
struct ErrorPage {
    statuses: Box<[StatusCode]>,
    page: Page,
    status: config::ErrorPageStatus,
}

/// [`config::ErrorPageTarget`], parsed.
enum Page {
    Uri(PathAndQuery),
    Named(Box<str>),
    Redirect(HeaderValue),
}

impl ErrorPages {
    fn new(pages: &[config::ErrorPage], intercept: bool) -> ErrorPages {
        let pages = pages
            .iter()
            .filter_map(|entry| {
                // Validated when the configuration was resolved.
                let page = match &entry.page {
                    config::ErrorPageTarget::Uri(path) => {
                        Page::Uri(PathAndQuery::try_from(path.as_str()).ok()?)
                    }
                    config::ErrorPageTarget::Named(name) => Page::Named(name.as_str().into()),
                    config::ErrorPageTarget::Redirect(url) => {
                        Page::Redirect(HeaderValue::from_str(url).ok()?)
                    }
                };
                Some(ErrorPage {
                    statuses: entry
                        .statuses
                        .iter()
                        .filter_map(|code| StatusCode::from_u16(*code).ok())
                        .collect(),
                    page,
                    status: entry.status,
                })
            })
            .collect();
        ErrorPages { pages, intercept }
    }

    /// The page for a response of `status`, the first that names it.
    fn find(&self, status: StatusCode) -> Option<&ErrorPage> {
        self.pages
            .iter()
            .find(|page| page.statuses.contains(&status))
    }
}

/// What the passes of one request through the locations share (its first, and an error
/// page's).
struct Pass<'a> {
    /// `$request_id`, formed when a value first names it.
    request_id: Option<String>,
    /// Where the request is counted in `concurrency_limits`, once.
    held: &'a mut Option<concurrency::Held>,
    /// Whether the request has been counted in `rate_limits` (once).
    counted: bool,
    /// The headers of the request's `auth_request` answer, whatever it was: an error page's
    /// pass keeps them (`$auth_http_NAME` there), as nginx keeps `auth_request_set`'s variables
    /// across its internal redirects.
    auth: Option<Arc<HeaderMap>>,
    /// The `auth_request` let the request in.
    let_in: bool,
}

/// A response of the proxy's own making (nginx's special responses, and the app's that
/// `intercept_errors` takes): the error pages that may replace it, and the route's own
/// `response_headers`, added when none does.
#[derive(Clone, Copy)]
struct Special<'a> {
    pages: &'a ErrorPages,
    headers: &'a [AddedHeader],
}

impl<'a> Special<'a> {
    fn of(pages: &'a ErrorPages, target: &'a Target) -> Special<'a> {
        Special {
            pages,
            headers: &target.response_headers,
        }
    }
}

/// The headers of the request's `auth_request` answer (`$auth_http_NAME`).
#[derive(Clone)]
struct AuthResponse(Arc<HeaderMap>);

/// The upstream header that sends a request on to another path or route (nginx's).
const X_ACCEL_REDIRECT: HeaderName = HeaderName::from_static("x-accel-redirect");

/// The upstream's answer's headers nginx keeps for the response of the path its
/// `X-Accel-Redirect` names (its `redirect` headers); the others go with the answer.
const ACCEL_KEPT: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_DISPOSITION,
    header::SET_COOKIE,
    header::CACHE_CONTROL,
    header::EXPIRES,
    header::ACCEPT_RANGES,
];

/// On the placeholder response of an upstream's answer with `X-Accel-Redirect` (whose headers
/// are the ones kept, [`ACCEL_KEPT`]): where to, and the request's head and host as they were
/// before it was forwarded.
#[derive(Clone)]
struct Accel {
    to: HeaderValue,
    head: Head,
    host: HeaderValue,
}

/// On a request sent on by `X-Accel-Redirect`, and on the upstream's response to it (whose
/// `Content-Type` is its own, where a file's or an answer's is the first answer's).
#[derive(Clone, Copy)]
struct AccelPass;

/// On an `auth_request`'s request: the method and target of the request it asks about
/// (nginx's `$request_method` and `$request_uri` there).
#[derive(Clone)]
struct MainRequest {
    method: Method,
    uri: Uri,
}

/// A request's head as the client sent it, for an error page's pass.
#[derive(Clone)]
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn of<B>(request: &Request<B>) -> Head {
        Head {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request.headers().clone(),
        }
    }

    fn into_request(self) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        request
    }
}

/// What the upstream is sent as a request's target ([`config::UpstreamTarget`]).
enum Rewrite {
    AsSent,
    Prefix {
        matched: Box<str>,
        with: Box<str>,
    },
    /// The pieces, and the location's expression when they name its groups.
    Whole(
        Box<[config::ReplacementPiece]>,
        Option<Box<fancy_regex::Regex>>,
    ),
}

impl Rewrite {
    fn new(target: &config::UpstreamTarget, path: &config::PathMatch) -> Rewrite {
        match target {
            config::UpstreamTarget::AsSent => Rewrite::AsSent,
            config::UpstreamTarget::Prefix { matched, with } => Rewrite::Prefix {
                matched: matched.as_str().into(),
                with: with.as_str().into(),
            },
            // Validated when the configuration was resolved.
            config::UpstreamTarget::Whole(uri) => {
                let Ok(pieces) = config::RewriteRule::pieces(uri) else {
                    return Rewrite::AsSent;
                };
                let groups = pieces
                    .iter()
                    .any(|piece| matches!(piece, config::ReplacementPiece::Capture(_)));
                let regex = match path {
                    config::PathMatch::Regex {
                        pattern,
                        ignore_case,
                    } if groups => config::regex_for(pattern, *ignore_case).ok().map(Box::new),
                    _ => None,
                };
                Rewrite::Whole(pieces.into(), regex)
            }
        }
    }

    /// `uri`'s path with the location's part replaced, its query kept (`None`: not a target,
    /// for the path no longer matches or the result is not a URI).
    fn prefix(uri: &Uri, matched: &str, with: &str) -> Option<PathAndQuery> {
        let rest = uri.path().strip_prefix(matched)?;
        let query = uri.query();
        let mut target =
            String::with_capacity(with.len() + rest.len() + query.map_or(0, |q| q.len() + 1));
        target.push_str(with);
        target.push_str(rest);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        PathAndQuery::try_from(target).ok()
    }
}

impl Target {
    /// The proxy's own settings or a route's (`config`); a user file is read once for every
    /// target that names it with the same realm (`auths`).
    fn new(
        config: &config::Route,
        auths: &mut Vec<Arc<BasicAuth>>,
        zones: &Zones,
        // `file_types`, shared by every route that serves files.
        file_types: &Arc<HashMap<String, HeaderValue>>,
        // Counts the upstream's responses cut off mid-body.
        cut: &prometheus::IntCounter,
    ) -> anyhow::Result<Target> {
        let config::Route {
            upstream,
            upstream_connect_timeout: connect_timeout,
            upstream_response_timeout: response_timeout,
            max_request_body,
            request_buffering,
            request_headers,
            redirect_rewrite: redirects,
            x_real_ip,
            ..
        } = config;
        let basic_auth = match &config.basic_auth {
            None => None,
            Some(settings) => {
                let challenge = BasicAuth::challenge_for(&settings.realm);
                match auths
                    .iter()
                    .find(|a| a.path() == settings.user_file && a.challenge() == challenge)
                {
                    Some(shared) => Some(shared.clone()),
                    None => {
                        let auth = Arc::new(
                            BasicAuth::load(&settings.realm, &settings.user_file)
                                .map_err(|why| anyhow::anyhow!("basic_auth_file {why}"))?,
                        );
                        auths.push(auth.clone());
                        Some(auth)
                    }
                }
            }
        };
        let authority = upstream
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("127.0.0.1:80"));
        let default_port = if upstream.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(default_port)
        );
        let tls = match upstream.scheme_str() {
            Some("https") => {
                let settings = &config.upstream_tls;
                let tls = crate::tls::upstream_client_config(
                    settings.verify,
                    settings.ca_file.as_deref(),
                    settings
                        .client_cert
                        .as_ref()
                        .map(|(cert, key)| (cert.as_path(), key.as_path())),
                    settings.send_server_name,
                )?;
                let host = settings
                    .server_name
                    .clone()
                    .unwrap_or_else(|| authority.host().trim_matches(['[', ']']).to_string());
                let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|_| {
                    anyhow::anyhow!("upstream_tls: {host:?} is not a DNS name or an IP address")
                })?;
                Some((Arc::new(tls), name))
            }
            _ => None,
        };
        Ok(Target {
            upstream: Upstream::new(address, *connect_timeout, tls, cut.clone()),
            response_timeout: *response_timeout,
            max_request_body: *max_request_body,
            request_buffering: *request_buffering,
            // Validated when the configuration was resolved.
            request_headers: request_headers
                .iter()
                .filter_map(|(name, value)| {
                    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                    let parts = config::request_header_parts(value).ok()?;
                    let set = match parts.as_slice() {
                        [] => SetHeader::Remove,
                        [config::RequestHeaderPart::Text(text)] => {
                            SetHeader::Fixed(HeaderValue::from_str(text).ok()?)
                        }
                        _ => SetHeader::PerRequest(parts),
                    };
                    Some((name, set))
                })
                .collect(),
            redirects: redirects
                .iter()
                .map(|r| (Bytes::from(r.from.clone()), Bytes::from(r.to.clone())))
                .collect(),
            x_real_ip: *x_real_ip,
            basic_auth,
            // Validated when the configuration was resolved.
            cookies: config
                .cookie_flags
                .iter()
                .filter_map(cookies::Rule::new)
                .collect(),
            // Zones checked when the configuration was resolved.
            rate_limits: config
                .rate_limits
                .iter()
                .filter_map(|limit| {
                    Some(rate_limit::Limit {
                        zone: zones.rates.get(&limit.zone)?.clone(),
                        burst: limit.burst,
                        delay: limit.delay,
                    })
                })
                .collect(),
            rate_limit_status: StatusCode::from_u16(config.rate_limit_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            // Validated when the configuration was resolved.
            hidden: config
                .hide_response_headers
                .iter()
                .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                .collect(),
            // Zones checked when the configuration was resolved.
            concurrency_limits: config
                .concurrency_limits
                .iter()
                .filter_map(|limit| {
                    Some(concurrency::Limit {
                        zone: zones.concurrency.get(&limit.zone)?.clone(),
                        max: limit.max,
                    })
                })
                .collect(),
            concurrency_limit_status: StatusCode::from_u16(config.concurrency_limit_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            access_rules: config.access_rules.clone().into_boxed_slice(),
            // Validated when the configuration was resolved.
            limit_except: config.limit_except.as_ref().map(|except| {
                let mut methods: Vec<Method> = except
                    .methods
                    .iter()
                    .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                    .collect();
                // nginx: GET brings HEAD.
                if methods.contains(&Method::GET) {
                    methods.push(Method::HEAD);
                }
                Box::new(LimitExcept {
                    methods: methods.into(),
                    rules: except.access_rules.clone().into(),
                })
            }),
            files: config
                .files
                .as_ref()
                .map(|dir| Box::new(Files::new(dir, &config.path, file_types.clone()))),
            expires: config.expires,
            conditional: config
                .conditional_answers
                .iter()
                .map(Conditional::new)
                .collect::<anyhow::Result<_>>()?,
            rewrites: rewrite::Rule::compile(&config.rewrites)?,
            // Validated when the configuration was resolved.
            response_headers: AddedHeader::list(
                &config.response_headers,
                &config.response_headers_on_success,
            )
            .into(),
            rewrite: Rewrite::new(&config.upstream_target, &config.path),
            error_pages: ErrorPages::new(&config.error_pages, config.intercept_errors),
            internal: config.internal,
            accel_redirect: config.accel_redirect,
            stub_status: config.stub_status,
            // Validated when the configuration was resolved.
            auth_request: config
                .auth_request
                .as_deref()
                .and_then(|path| PathAndQuery::try_from(path).ok()),
        })
    }
}

impl Target {
    /// `expires` and the route's own `response_headers` on a response it served or forwarded;
    /// `values`: those with the request's variables, formed while the request was there.
    fn set_response_headers(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
        values: &[AddedValue],
    ) {
        if let Some(expires) = self.expires {
            set_expires(status, headers, expires);
        }
        add_response_headers(status, headers, &self.response_headers, values);
    }
}

/// Whether `part` is one `wanted` says yes to, or a map whose source or values hold one.
fn names(
    part: &config::RequestHeaderPart,
    wanted: &dyn Fn(&config::RequestHeaderPart) -> bool,
) -> bool {
    wanted(part)
        || matches!(part, config::RequestHeaderPart::Map(map) if map.parts().any(|p| names(p, wanted)))
}

/// One of `response_headers` or `response_headers_on_success`.
struct AddedHeader {
    name: HeaderName,
    value: AnswerValue,
    /// Added to every response (`response_headers`, nginx's `add_header ... always`); else to
    /// those of [`config::SUCCESS_STATUSES`] only.
    always: bool,
}

impl AddedHeader {
    /// `always` and `on_success` (checked when the configuration was read), in that order.
    fn list(always: &[(String, String)], on_success: &[(String, String)]) -> Vec<AddedHeader> {
        let tagged = |headers, always| {
            AnswerValue::headers(headers)
                .into_iter()
                .map(move |(name, value)| AddedHeader {
                    name,
                    value,
                    always,
                })
        };
        tagged(always, true)
            .chain(tagged(on_success, false))
            .collect()
    }
}

/// An [`AddedHeader`] with the request's variables, formed for a request.
struct AddedValue {
    name: HeaderName,
    value: HeaderValue,
    always: bool,
}

/// Adds the fixed ones of `added` and `values` (formed for the request) to a response of
/// `status`, each as [`add_response_header`] does, those it gets.
fn add_response_headers(
    status: StatusCode,
    headers: &mut HeaderMap,
    added: &[AddedHeader],
    values: &[AddedValue],
) {
    let success = config::SUCCESS_STATUSES.contains(&status.as_u16());
    for header in added {
        if let AnswerValue::Fixed(value) = &header.value
            && (header.always || success)
        {
            add_response_header(headers, &header.name, value);
        }
    }
    for added in values {
        if added.always || success {
            add_response_header(headers, &added.name, &added.value);
        }
    }
}

/// Adds `name: value` to a response's `headers` unless it has that header (the app's own wins,
/// never doubled); a `Set-Cookie` is added beside the others unless the same line is there:
/// each sets a cookie of its own, as nginx's `add_header` adds it.
fn add_response_header(headers: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    if name == header::SET_COOKIE {
        if !headers.get_all(name).iter().any(|line| line == value) {
            headers.append(name.clone(), value.clone());
        }
    } else {
        headers.entry(name).or_insert_with(|| value.clone());
    }
}

/// The values of the `response_headers` with the request's variables among `headers`, for
/// `request`.
fn response_values<B>(
    headers: &[AddedHeader],
    request: &Request<B>,
    host: &HeaderValue,
    peer: &Peer,
    request_id: &mut Option<String>,
) -> Vec<AddedValue> {
    headers
        .iter()
        .filter(|added| matches!(added.value, AnswerValue::PerRequest(_)))
        .filter_map(|added| {
            // An empty value adds nothing, as nginx's `add_header`.
            let value = added.value.value(request, host, peer, request_id)?;
            (!value.is_empty()).then(|| AddedValue {
                name: added.name.clone(),
                value,
                always: added.always,
            })
        })
        .collect()
}

/// What a location does with the requests it takes.
enum Action {
    /// Answers them itself (`proxy.fixed_responses`, a route's `answer`), with the error
    /// pages an answer without text may be replaced by, and whether only an internal request
    /// reaches it.
    Answer {
        fixed: Fixed,
        pages: ErrorPages,
        internal: bool,
    },
    /// Forwards them (`proxy.routes`).
    Forward(Box<Target>),
}

/// The locations of `proxy.fixed_responses` and `proxy.routes`, looked up as nginx looks up
/// its `location` blocks: an exact path; else the longest prefix, if it is `^~`; else the
/// first regular expression that matches, in the order written; else the longest prefix.
/// `None`: the proxy's own upstream and settings.
#[derive(Default)]
struct Locations {
    exact: Vec<(String, Action)>,
    /// Longest first; `true`: `^~` (no regular expression is tried after it).
    prefixes: Vec<(String, bool, Action)>,
    regexes: Vec<(fancy_regex::Regex, Action)>,
    /// `@NAME` locations, reached from a `try_files` fallback only.
    named: Vec<(String, Action)>,
}

impl Locations {
    fn add(&mut self, path: &config::PathMatch, action: Action) {
        match path {
            config::PathMatch::Exact(path) => self.exact.push((path.clone(), action)),
            config::PathMatch::Named(name) => self.named.push((name.clone(), action)),
            config::PathMatch::Prefix(path) => self.prefixes.push((path.clone(), false, action)),
            config::PathMatch::PrefixNoRegex(path) => {
                self.prefixes.push((path.clone(), true, action));
            }
            config::PathMatch::Regex {
                pattern,
                ignore_case,
            } => {
                // Validated when the configuration was resolved.
                if let Ok(regex) = config::regex_for(pattern, *ignore_case) {
                    self.regexes.push((regex, action));
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.regexes.is_empty()
    }

    /// Every location's action, named ones too.
    fn all(&self) -> impl Iterator<Item = &Action> {
        self.exact
            .iter()
            .map(|(_, action)| action)
            .chain(self.prefixes.iter().map(|(_, _, action)| action))
            .chain(self.regexes.iter().map(|(_, action)| action))
            .chain(self.named.iter().map(|(_, action)| action))
    }

    /// The location `@name`.
    fn named(&self, name: &str) -> Option<&Action> {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, action)| action)
    }

    fn find(&self, path: &str) -> Option<&Action> {
        if let Some((_, action)) = self.exact.iter().find(|(p, _)| p == path) {
            return Some(action);
        }
        let prefix = self
            .prefixes
            .iter()
            .find(|(p, _, _)| path.starts_with(p.as_str()));
        if let Some((_, true, action)) = prefix {
            return Some(action);
        }
        self.regexes
            .iter()
            // An error is a path past the backtracking limit: it does not match.
            .find(|(regex, _)| regex.is_match(path).unwrap_or(false))
            .map(|(_, action)| action)
            .or(prefix.map(|(_, _, action)| action))
    }
}

/// `path` as nginx matches it against its locations: percent-decoded, its `.` and `..`
/// segments resolved and repeated slashes merged ([`super::files::normalize`]); `None` where
/// nginx answers 400 (a bad escape, an escaped NUL, a `..` above the top). A path with nothing
/// to resolve, as most are, is taken as it is, without a copy.
fn matching_path(path: &str) -> Option<std::borrow::Cow<'_, str>> {
    let bytes = path.as_bytes();
    let plain = !bytes.contains(&b'%')
        && !bytes.windows(2).any(|pair| pair == b"//")
        && !bytes
            .split(|&b| b == b'/')
            .any(|segment| segment == b"." || segment == b"..");
    if plain {
        return Some(std::borrow::Cow::Borrowed(path));
    }
    let normalized = super::files::normalize(path)?;
    Some(std::borrow::Cow::Owned(
        String::from_utf8_lossy(&normalized).into_owned(),
    ))
}

/// One fixed answer, its parts built once.
/// One of `conditional_answers`, compiled.
struct Conditional {
    variable: config::RequestHeaderPart,
    test: Test,
    answer: Fixed,
}

/// [`config::ConditionTest`] with its regular expression compiled.
enum Test {
    Set,
    Equals(String),
    Differs(String),
    /// `true`: negated (`!~`).
    Matches(fancy_regex::Regex, bool),
}

impl Conditional {
    fn new(entry: &config::ConditionalAnswer) -> anyhow::Result<Conditional> {
        let test = match &entry.when.test {
            config::ConditionTest::Set => Test::Set,
            config::ConditionTest::Equals(text) => Test::Equals(text.clone()),
            config::ConditionTest::Differs(text) => Test::Differs(text.clone()),
            config::ConditionTest::Matches {
                pattern,
                ignore_case,
                negated,
            } => Test::Matches(
                config::regex_for(pattern, *ignore_case).map_err(anyhow::Error::msg)?,
                *negated,
            ),
        };
        Ok(Conditional {
            variable: entry.when.variable.clone(),
            test,
            answer: Fixed::new(&entry.answer),
        })
    }
}

struct Fixed {
    status: StatusCode,
    body: Bytes,
    content_type: Option<HeaderValue>,
    location: Option<AnswerValue>,
    /// `headers`.
    headers: Box<[(HeaderName, AnswerValue)]>,
    /// `only_own_headers`: its response carries [`OwnHeaders`].
    only_own_headers: bool,
}

/// On an answer with `only_own_headers`: no `response_headers` or `hsts` of the proxy's or the
/// route's are added to it.
#[derive(Clone, Copy)]
struct OwnHeaders;

/// A header value of an answer (its `Location`, its `headers`): as written, or with request
/// variables to replace.
enum AnswerValue {
    Fixed(HeaderValue),
    PerRequest(Vec<config::RequestHeaderPart>),
}

impl AnswerValue {
    /// The request's variables and text it is made of, when it has variables.
    fn parts(&self) -> Option<&[config::RequestHeaderPart]> {
        match self {
            AnswerValue::PerRequest(parts) => Some(parts),
            AnswerValue::Fixed(_) => None,
        }
    }

    /// `text`'s value; `None` when it is not one (checked when the configuration was read).
    fn new(text: &str) -> Option<AnswerValue> {
        if text.contains('$') {
            config::request_header_parts(text)
                .ok()
                .map(AnswerValue::PerRequest)
        } else {
            HeaderValue::from_str(text).ok().map(AnswerValue::Fixed)
        }
    }

    /// `headers` (checked when the configuration was read) as names and values.
    fn headers(headers: &[(String, String)]) -> Vec<(HeaderName, AnswerValue)> {
        headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    AnswerValue::new(value)?,
                ))
            })
            .collect()
    }

    /// The value for `request`; `None` when the request's values make no header value.
    fn value<B>(
        &self,
        request: &Request<B>,
        host: &HeaderValue,
        peer: &Peer,
        request_id: &mut Option<String>,
    ) -> Option<HeaderValue> {
        match self {
            AnswerValue::Fixed(value) => Some(value.clone()),
            AnswerValue::PerRequest(parts) => value_of(parts, request, host, peer, request_id),
        }
    }
}

impl Fixed {
    fn new(entry: &config::FixedResponse) -> Fixed {
        // Validated when the configuration was resolved.
        Fixed {
            status: StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK),
            body: Bytes::from(entry.body.clone()),
            content_type: (!entry.body.is_empty())
                .then(|| HeaderValue::from_str(&entry.content_type).ok())
                .flatten(),
            location: entry.location.as_deref().and_then(AnswerValue::new),
            headers: AnswerValue::headers(&entry.headers).into(),
            only_own_headers: entry.only_own_headers,
        }
    }
}

impl Fixed {
    /// Whether it is an answer of the proxy's own making (nginx's `return CODE` without text,
    /// or with a redirect's URL), which an error page may replace.
    fn special(&self) -> bool {
        self.body.is_empty()
    }

    /// The answer to `request` (for its `Location`'s variables).
    fn response<B>(
        &self,
        request: &Request<B>,
        host: &HeaderValue,
        peer: &Peer,
        request_id: &mut Option<String>,
    ) -> Response<ProxyBody> {
        let mut response = Response::new(full(self.body.clone()));
        *response.status_mut() = self.status;
        if let Some(content_type) = &self.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
        }
        let location = self
            .location
            .as_ref()
            .and_then(|location| location.value(request, host, peer, request_id));
        if let Some(location) = location {
            response.headers_mut().insert(header::LOCATION, location);
        }
        for (name, value) in &self.headers {
            if let Some(value) = value.value(request, host, peer, request_id)
                && !value.is_empty()
            {
                response.headers_mut().insert(name, value);
            }
        }
        if self.only_own_headers {
            response.extensions_mut().insert(OwnHeaders);
        }
        response
    }
}

impl Forwarder {
    /// A forwarder for the `proxy {}` settings; an error when a `basic_auth_file` cannot be
    /// read or holds what cannot be verified.
    pub(crate) fn new(config: &config::Proxy, metrics: ProxyMetrics) -> anyhow::Result<Forwarder> {
        // Values read below may name the maps.
        let _scope = config::MapScope::enter(config.maps.clone());
        let mut auths = Vec::new();
        let zones = Zones {
            rates: config
                .rate_limit_zones
                .iter()
                .map(|(name, rate)| (name.clone(), Arc::new(rate_limit::Zone::new(*rate))))
                .collect(),
            concurrency: config
                .concurrency_limit_zones
                .iter()
                .map(|(name, key)| (name.clone(), Arc::new(concurrency::Zone::new(*key))))
                .collect(),
        };
        // Validated when the configuration was resolved.
        let file_types = Arc::new(
            config
                .file_types
                .iter()
                .filter_map(|(extension, media)| {
                    Some((extension.clone(), HeaderValue::from_str(media).ok()?))
                })
                .collect(),
        );
        let cut = metrics.upstream_body_cut();
        let mut locations = Locations::default();
        for entry in &config.fixed_responses {
            let action = Action::Answer {
                fixed: Fixed::new(entry),
                pages: ErrorPages::new(&config.error_pages, config.intercept_errors),
                internal: false,
            };
            locations.add(&entry.path, action);
        }
        for route in &config.routes {
            let action = match &route.answer {
                Some(answer) => Action::Answer {
                    fixed: Fixed::new(answer),
                    pages: ErrorPages::new(&route.error_pages, route.intercept_errors),
                    internal: route.internal,
                },
                None => Action::Forward(Box::new(Target::new(
                    route,
                    &mut auths,
                    &zones,
                    &file_types,
                    &cut,
                )?)),
            };
            locations.add(&route.path, action);
        }
        locations
            .prefixes
            .sort_by_key(|(path, _, _)| std::cmp::Reverse(path.len()));
        let default = Target::new(&config.own_route(), &mut auths, &zones, &file_types, &cut)?;
        let hosts = config
            .server_names
            .as_ref()
            .map(Hosts::new)
            .transpose()?
            .map(Arc::new);
        let error_pages = !default.error_pages.pages.is_empty()
            || locations.all().any(|action| match action {
                Action::Answer { pages, .. } => !pages.pages.is_empty(),
                Action::Forward(target) => !target.error_pages.pages.is_empty(),
            });
        // Validated when the configuration was resolved.
        let response_headers = AddedHeader::list(
            &config.response_headers,
            &config.response_headers_on_success,
        );
        let is_auth = |part: &config::RequestHeaderPart| {
            matches!(
                part,
                config::RequestHeaderPart::AuthHttp(_)
                    | config::RequestHeaderPart::AuthSetCookie(_)
            )
        };
        let response_headers_after_auth = response_headers
            .iter()
            .filter_map(|header| header.value.parts())
            .flatten()
            .any(|part| names(part, &is_auth));
        let response_headers_per_request = response_headers
            .iter()
            .any(|header| header.value.parts().is_some());
        let mut forwarder = Forwarder {
            default,
            locations,
            error_pages,
            auths,
            sni_check: hosts
                .clone()
                .filter(|_| {
                    config
                        .server_names
                        .as_ref()
                        .is_some_and(|n| n.reject_unknown_sni)
                })
                .map(|hosts| {
                    Box::new(move |name: &str| hosts.knows(name.as_bytes())) as Box<NameCheck>
                }),
            hosts,
            gzip: config.gzip.as_ref().map(Gzip::new),
            conditional: config
                .conditional_answers
                .iter()
                .map(Conditional::new)
                .collect::<anyhow::Result<_>>()?,
            rewrites: rewrite::Rule::compile(&config.rewrites)?,
            limits_concurrency: !config.concurrency_limits.is_empty()
                || config
                    .routes
                    .iter()
                    .any(|route| !route.concurrency_limits.is_empty()),
            forwarded: config.forwarded_headers,
            body_read_timeout: config.body_read_timeout,
            send_timeout: config.send_timeout,
            keepalive_requests: config.keepalive_requests,
            trusted_proxies: config.trusted_proxies.clone(),
            // Validated when the configuration was resolved.
            hsts: config
                .hsts
                .as_deref()
                .and_then(|value| HeaderValue::from_str(value).ok()),
            response_headers,
            response_headers_per_request,
            response_headers_after_auth,
            drop_underscore_headers: config.drop_underscore_headers,
            append_forwarded_for: config.append_forwarded_for,
            absolute_redirects: config
                .absolute_redirects
                .then_some(config.port_in_redirects),
            wants_sni: false,
            wants_client_cert: false,
            metrics,
        };
        forwarder.wants_sni =
            forwarder.uses(|part| matches!(part, config::RequestHeaderPart::SslServerName));
        forwarder.wants_client_cert =
            forwarder.uses(|part| matches!(part, config::RequestHeaderPart::Client(_)));
        Ok(forwarder)
    }

    /// Whether a value carries a `$ssl_client_*` variable: the client certificate is then
    /// formed for each connection that has one.
    pub(crate) fn wants_client_cert(&self) -> bool {
        self.wants_client_cert
    }

    /// `proxy.send_timeout`, for a connection starting under this configuration.
    pub(crate) fn send_timeout(&self) -> Duration {
        self.send_timeout
    }

    /// `proxy.keepalive_requests`, for a connection starting under this configuration.
    pub(crate) fn keepalive_requests(&self) -> usize {
        self.keepalive_requests
    }

    /// Whether a value carries `$ssl_server_name`: the connection's server name is then kept.
    pub(crate) fn wants_sni(&self) -> bool {
        self.wants_sni
    }

    /// Whether a value with the request's variables (a request or response header, an answer's,
    /// a condition) has a piece `wanted` says yes to.
    fn uses(&self, wanted: impl Fn(&config::RequestHeaderPart) -> bool) -> bool {
        let in_parts =
            |parts: &[config::RequestHeaderPart]| parts.iter().any(|part| names(part, &wanted));
        let in_value = |value: &AnswerValue| value.parts().is_some_and(in_parts);
        let in_values =
            |values: &[(HeaderName, AnswerValue)]| values.iter().any(|(_, value)| in_value(value));
        let in_added = |added: &[AddedHeader]| added.iter().any(|added| in_value(&added.value));
        let in_answer = |fixed: &Fixed| {
            in_values(&fixed.headers) || fixed.location.as_ref().is_some_and(in_value)
        };
        let uses = |target: &Target| {
            target.request_headers.iter().any(|(_, set)| match set {
                SetHeader::PerRequest(parts) => in_parts(parts),
                _ => false,
            }) || in_added(&target.response_headers)
                || target.conditional.iter().any(|conditional| {
                    names(&conditional.variable, &wanted) || in_answer(&conditional.answer)
                })
        };
        in_added(&self.response_headers)
            || uses(&self.default)
            || self.locations.all().any(|action| match action {
                Action::Forward(target) => uses(target),
                Action::Answer { fixed, .. } => in_answer(fixed),
            })
    }

    /// The user files of `basic_auth_file`, each once, to be read again when they change.
    pub(crate) fn basic_auths(&self) -> &[Arc<BasicAuth>] {
        &self.auths
    }

    /// Whether a client at `ip` is a trusted proxy.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|cidr| cidr.contains(ip))
    }

    /// Forwards `request` from `peer` and returns what the client gets. When given (the
    /// access log is on), `upstream_time` is set to the wait for the upstream's response
    /// headers, if it answered; without it, the clock is not read for it. `h1`, on an HTTP/1
    /// connection, is told when the request body has been read to its end.
    /// `proxy.gzip`, compiled.
    pub(crate) fn gzip(&self) -> Option<&Gzip> {
        self.gzip.as_ref()
    }

    /// With `reject_unknown_sni`: whether a handshake's server name is one of `server_names`.
    pub(crate) fn sni_filter(&self) -> Option<&NameCheck> {
        self.sni_check.as_deref()
    }

    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        peer: &Peer,
        upstream_time: Option<&mut Option<Duration>>,
        h1: Option<Arc<H1State>>,
    ) -> Response<ProxyBody> {
        if !self.limits_concurrency {
            return self
                .respond(request, peer, upstream_time, h1, &mut None)
                .await;
        }
        let mut held = None;
        let mut response = self
            .respond(request, peer, upstream_time, h1, &mut held)
            .await;
        if let Some(held) = held {
            response.extensions_mut().insert(Arc::new(held));
        }
        response
    }

    /// [`Forwarder::handle`]; `held`: where the request is counted in `concurrency_limits`,
    /// for the response to hold until it ends.
    async fn respond(
        &self,
        request: Request<Incoming>,
        peer: &Peer,
        mut upstream_time: Option<&mut Option<Duration>>,
        h1: Option<Arc<H1State>>,
        held: &mut Option<concurrency::Held>,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let request = request.map(Some);
        // The proxy's `response_headers` with the request's variables, formed once it is
        // admitted.
        let mut added = Vec::new();
        let host = match self.admit(&request) {
            Ok(host) => host,
            Err((status, why)) => {
                discard_body(request, h1);
                return self.finish(started, &added, error(status, why));
            }
        };
        // nginx chooses the server by the host before anything else it does with a request.
        if let Some(hosts) = &self.hosts
            && !hosts.knows(host.as_bytes())
        {
            self.metrics.client_errors.unknown_host.inc();
            discard_body(request, h1);
            // The other server's answer: none of this one's response headers.
            let response = match hosts.refusal() {
                Some(status) => error(status, UNKNOWN_HOST),
                None => close_connection(),
            };
            self.metrics.response(response.status());
            self.metrics
                .request_duration
                .observe(started.elapsed().as_secs_f64());
            return response;
        }
        let mut pass = Pass {
            // `$request_id`: one for the request, wherever a value names it.
            request_id: None,
            held,
            counted: false,
            auth: None,
            let_in: false,
        };
        let after_auth = self.response_headers_after_auth;
        if self.response_headers_per_request && !after_auth {
            added = response_values(
                &self.response_headers,
                &request,
                &host,
                peer,
                &mut pass.request_id,
            );
        }
        // What an error page, and response headers formed after the `auth_request`, need: the
        // request's head as the client sent it, and its host.
        let kept = (self.error_pages || after_auth).then(|| (Head::of(&request), host.clone()));
        let (mut response, mut special) = self
            .route(
                request,
                host,
                peer,
                upstream_time.as_deref_mut(),
                h1,
                &mut pass,
                None,
            )
            .await;
        if response.extensions().get::<Accel>().is_some() {
            // Boxed, as the other rare paths (see below).
            (response, special) = Box::pin(self.accel_redirect(
                response,
                peer,
                upstream_time.as_deref_mut(),
                &mut pass,
            ))
            .await;
        }
        let page = special.and_then(|special| special.pages.find(response.status()));
        let response = match (page, &kept) {
            (Some(page), Some((head, host))) => {
                // Boxed, as the other rare paths: a future holds room for the largest of
                // its awaits, and the common request's is moved whole at each await.
                Box::pin(self.error_page(
                    page,
                    response,
                    head,
                    host.clone(),
                    peer,
                    upstream_time,
                    &mut pass,
                ))
                .await
            }
            _ => {
                let mut response = response;
                // The route's own fixed headers, on its refusals too (nginx's `add_header ...
                // always`: the Docker registry's API version on its 401).
                if response.extensions().get::<OwnHeaders>().is_none() {
                    let status = response.status();
                    let added = special.map_or(&[][..], |special| special.headers);
                    add_response_headers(status, response.headers_mut(), added, &[]);
                }
                response
            }
        };
        if let (true, Some((head, host))) = (after_auth, kept) {
            // With the answer that let the request in; a refused request's response is
            // another location's in nginx, which does not add these.
            let mut request = head.into_request();
            if pass.let_in
                && let Some(answer) = pass.auth.take()
            {
                request.extensions_mut().insert(AuthResponse(answer));
            }
            added = response_values(
                &self.response_headers,
                &request,
                &host,
                peer,
                &mut pass.request_id,
            );
        }
        self.finish(started, &added, response)
    }

    /// Follows an upstream's `X-Accel-Redirect` (`response` is its placeholder, [`Accel`]), as
    /// nginx does: the request goes on, without its body, to the path (GET; HEAD stays HEAD)
    /// or the `@name` route (its method kept) the header names, internal routes included, and
    /// the response is that path's, with the answer's [`ACCEL_KEPT`] headers. Another
    /// `X-Accel-Redirect` there is followed too, at most [`MAX_HOPS`] times.
    async fn accel_redirect<'s>(
        &'s self,
        mut response: Response<ProxyBody>,
        peer: &Peer,
        mut upstream_time: Option<&mut Option<Duration>>,
        pass: &mut Pass<'_>,
    ) -> (Response<ProxyBody>, Option<Special<'s>>) {
        let mut special = None;
        // The answers' kept headers, the first answer's first.
        let mut kept = HeaderMap::new();
        for hop in 1.. {
            let Some(accel) = response.extensions_mut().remove::<Accel>() else {
                break;
            };
            for (name, value) in response.headers() {
                kept.append(name, value.clone());
            }
            let Accel { to, head, host } = accel;
            if hop > MAX_HOPS {
                tracing::warn!(
                    path = head.uri.path(),
                    "X-Accel-Redirect sent the request on {MAX_HOPS} times: check what the app \
                     answers on the paths it names for a loop"
                );
                return (
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error: X-Accel-Redirect led nowhere\n",
                    ),
                    None,
                );
            }
            let (path, start) = match to.as_bytes().strip_prefix(b"@") {
                Some(name) => {
                    let named = std::str::from_utf8(name)
                        .ok()
                        .and_then(|name| self.locations.named(name));
                    let Some(action) = named else {
                        tracing::warn!(
                            to = String::from_utf8_lossy(to.as_bytes()).as_ref(),
                            path = head.uri.path(),
                            "the app's X-Accel-Redirect names a route no `location` of \
                             proxy.routes has (answered 500): add a route with that \
                             `location = \"@NAME\"`, or correct the header the app sends"
                        );
                        return (
                            error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "internal error: no such named route\n",
                            ),
                            None,
                        );
                    };
                    (None, Some(action))
                }
                None => {
                    // A path nginx would not open (`..` above the top, a bad escape) or not
                    // a path at all: 404, as nginx answers.
                    let path = PathAndQuery::try_from(to.as_bytes()).ok().filter(|path| {
                        path.as_str().starts_with('/') && matching_path(path.path()).is_some()
                    });
                    let Some(path) = path else {
                        let mut refused = error(StatusCode::NOT_FOUND, "not found\n");
                        carry(&kept, &mut refused);
                        return (refused, None);
                    };
                    (Some(path), None)
                }
            };
            let mut request = internal_request(head, path, pass);
            request.extensions_mut().insert(AccelPass);
            (response, special) = self
                .route(
                    request,
                    host,
                    peer,
                    upstream_time.as_deref_mut(),
                    None,
                    pass,
                    Some(start),
                )
                .await;
        }
        carry(&kept, &mut response);
        (response, special)
    }

    /// The response of `page` (nginx's `error_page`), which replaces `response` to a request
    /// of `head` for `host`: a redirect, or the request sent on to the page's path or named
    /// route, without its body, once (an error there is sent as it is).
    #[allow(clippy::too_many_arguments)]
    async fn error_page(
        &self,
        page: &ErrorPage,
        response: Response<ProxyBody>,
        head: &Head,
        host: HeaderValue,
        peer: &Peer,
        mut upstream_time: Option<&mut Option<Duration>>,
        pass: &mut Pass<'_>,
    ) -> Response<ProxyBody> {
        let error_status = response.status();
        let (path, start) = match &page.page {
            Page::Redirect(url) => {
                let status = match page.status {
                    config::ErrorPageStatus::Set(code) => {
                        StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND)
                    }
                    _ => StatusCode::FOUND,
                };
                let mut redirect = Response::new(full(Bytes::new()));
                *redirect.status_mut() = status;
                redirect.headers_mut().insert(header::LOCATION, url.clone());
                keep_challenge(&response, &mut redirect);
                return redirect;
            }
            Page::Uri(path) => (Some(path), None),
            Page::Named(name) => match self.locations.named(name) {
                Some(action) => (None, Some(action)),
                // Checked when the configuration was resolved.
                None => return response,
            },
        };
        // `None`: the page's own.
        let status = match page.status {
            config::ErrorPageStatus::Kept => Some(error_status),
            config::ErrorPageStatus::Set(code) => StatusCode::from_u16(code).ok(),
            config::ErrorPageStatus::OfPage => None,
        };
        let mut head = head.clone();
        // A page sent with an error's status is never a 304 or a range (nginx checks both on
        // a 200 only).
        if status.is_some_and(|status| status != StatusCode::OK) {
            for name in [
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                header::IF_MODIFIED_SINCE,
                header::IF_UNMODIFIED_SINCE,
                header::IF_RANGE,
                header::RANGE,
            ] {
                head.headers.remove(name);
            }
        }
        let request = internal_request(head, path.cloned(), pass);
        let (mut served, mut special) = self
            .route(
                request,
                host,
                peer,
                upstream_time.as_deref_mut(),
                None,
                pass,
                Some(start),
            )
            .await;
        if served.extensions().get::<Accel>().is_some() {
            (served, special) = self.accel_redirect(served, peer, upstream_time, pass).await;
        }
        // An error while the page is served is sent as it is, with its own status (nginx's
        // `recursive_error_pages off`).
        if special.is_some() {
            keep_challenge(&response, &mut served);
            return served;
        }
        if let Some(status) = status {
            *served.status_mut() = status;
        }
        // nginx sends Last-Modified with 200, 206 and 304 only, and Accept-Ranges with 200.
        if !matches!(served.status().as_u16(), 200 | 206 | 304) {
            served.headers_mut().remove(header::LAST_MODIFIED);
        }
        if served.status() != StatusCode::OK {
            served.headers_mut().remove(header::ACCEPT_RANGES);
        }
        keep_challenge(&response, &mut served);
        served
    }

    /// Takes `request` through the server's `if`s and `rewrite`s and its locations to the
    /// response: an answer, a file, a refusal, or the upstream's. With it, for a response of
    /// the proxy's own making (nginx's special responses, and the app's that
    /// `intercept_errors` takes), the error pages that may replace it (`None`: the app's
    /// response, passed as it is). `start`: an error page's pass (`Some(Some(route))`: a named
    /// route, which skips the server's rules).
    #[allow(clippy::too_many_arguments)]
    async fn route<'s>(
        &'s self,
        mut request: Request<Option<Incoming>>,
        host: HeaderValue,
        peer: &Peer,
        upstream_time: Option<&mut Option<Duration>>,
        h1: Option<Arc<H1State>>,
        pass: &mut Pass<'_>,
        start: Option<Option<&'s Action>>,
    ) -> (Response<ProxyBody>, Option<Special<'s>>) {
        let first = start.is_none();
        let server_pages = &self.default.error_pages;
        let mut named: Option<&Action> = start.flatten();
        // A location only an internal request reaches (`internal`): an error page's, or one
        // a rewrite or a `try_files` fallback sent on.
        let mut internal = !first;
        if named.is_none() {
            // nginx's server-level `if` (its server rewrite phase), before a location is
            // chosen.
            if let Some(fixed) = first_answer(&self.conditional, &request, &host, peer) {
                let mut response = fixed.response(&request, &host, peer, &mut pass.request_id);
                self.absolute_location(response.headers_mut(), &host, peer.local_port);
                discard_body(request, h1);
                return (
                    response,
                    Some(Special::of(server_pages, &self.default)).filter(|_| fixed.special()),
                );
            }
            // nginx's server-level `rewrite`, after its `if`s: the new path is looked up.
            if !self.rewrites.is_empty() {
                match self.rewrite(
                    &self.rewrites,
                    &mut request,
                    &host,
                    peer,
                    &mut pass.request_id,
                ) {
                    Err(response) => {
                        discard_body(request, h1);
                        return (*response, Some(Special::of(server_pages, &self.default)));
                    }
                    Ok(Some(_)) => internal = true,
                    Ok(None) => {}
                }
            }
        }
        // A location only an internal request reaches (`internal`): an error page's, or after
        // a rewrite or a `try_files` fallback.
        // A `try_files` fallback or a rewrite sends the request on to another location, at
        // most this many times (nginx's limit of internal redirects).
        let mut hops = 0;
        // A route's `break` keeps the rewritten target, which its `prefix_rewrite` leaves.
        let mut broke = false;
        let target = loop {
            let action = match named.take() {
                Some(action) => Some(action),
                None => {
                    // Locations are chosen by the path as nginx reads it (decoded, `.`, `..` and
                    // repeated slashes resolved), so that `/%61dmin` or `//admin` meets
                    // `location /admin`'s access rules; one nginx refuses (a bad escape, a
                    // NUL, a `..` above the top) is refused here too, wherever it would go.
                    let Some(path) = matching_path(request.uri().path()) else {
                        self.metrics.client_errors.target.inc();
                        discard_body(request, h1);
                        return (
                            error(StatusCode::BAD_REQUEST, "bad request: malformed path\n"),
                            Some(Special::of(server_pages, &self.default)),
                        );
                    };
                    if self.locations.is_empty() {
                        None
                    } else {
                        self.locations.find(&path)
                    }
                }
            };
            let (target, answer, pages, internal_only) = match action {
                None => (&self.default, None, server_pages, false),
                Some(Action::Forward(target)) => {
                    (&**target, None, &target.error_pages, target.internal)
                }
                // nginx checks the body's length before a location's `return`, with the
                // server's limit.
                Some(Action::Answer {
                    fixed,
                    pages,
                    internal,
                }) => (&self.default, Some(fixed), pages, *internal),
            };
            if internal_only && !internal && hops == 0 {
                discard_body(request, h1);
                return (
                    error(StatusCode::NOT_FOUND, "not found\n"),
                    Some(Special::of(pages, target)),
                );
            }
            // A body announced longer than allowed is refused before anything is forwarded,
            // as nginx does; one that grows past the limit is stopped by `RequestBody`.
            if let Some(limit) = target.max_request_body
                && request
                    .body()
                    .as_ref()
                    .and_then(|body| body.size_hint().exact())
                    .is_some_and(|length| length > limit)
            {
                self.metrics.client_errors.body_too_large.inc();
                discard_body(request, h1);
                return (
                    error(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE),
                    Some(Special::of(pages, target)),
                );
            }
            // A location's `if` (its rewrite phase), before its `return` and access checks.
            if let Some(fixed) = first_answer(&target.conditional, &request, &host, peer) {
                let mut response = fixed.response(&request, &host, peer, &mut pass.request_id);
                self.absolute_location(response.headers_mut(), &host, peer.local_port);
                discard_body(request, h1);
                return (
                    response,
                    Some(Special::of(pages, target)).filter(|_| fixed.special()),
                );
            }
            // Then its `rewrite`s: a new path is looked up again (`last`), or stays (`break`).
            if !target.rewrites.is_empty() {
                match self.rewrite(
                    &target.rewrites,
                    &mut request,
                    &host,
                    peer,
                    &mut pass.request_id,
                ) {
                    Err(response) => {
                        discard_body(request, h1);
                        return (*response, Some(Special::of(pages, target)));
                    }
                    Ok(Some(true)) => {
                        hops += 1;
                        if hops <= MAX_HOPS {
                            continue;
                        }
                        tracing::warn!(
                            path = request.uri().path(),
                            "rewrites sent the request on {MAX_HOPS} times: check the routes' \
                             rewrites for a loop"
                        );
                        discard_body(request, h1);
                        // No error page after as many redirects, as in nginx.
                        return (
                            error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "internal error: rewrites led nowhere\n",
                            ),
                            None,
                        );
                    }
                    Ok(Some(false)) => broke = true,
                    Ok(None) => {}
                }
            }
            if let Some(fixed) = answer {
                // Answered here whatever the method and body, as nginx's `return` does (before
                // its access checks).
                let mut response = fixed.response(&request, &host, peer, &mut pass.request_id);
                self.absolute_location(response.headers_mut(), &host, peer.local_port);
                discard_body(request, h1);
                return (
                    response,
                    Some(Special::of(pages, target)).filter(|_| fixed.special()),
                );
            }
            // nginx's order: `limit_req` (its preaccess phase, once per request), then its
            // access phase.
            if !pass.counted && !target.rate_limits.is_empty() {
                pass.counted = true;
                match rate_limit::check(&target.rate_limits, peer.ip) {
                    rate_limit::Verdict::Refuse => {
                        self.metrics.client_errors.rate_limited.inc();
                        discard_body(request, h1);
                        return (
                            error(
                                target.rate_limit_status,
                                "too many requests from this address\n",
                            ),
                            Some(Special::of(pages, target)),
                        );
                    }
                    rate_limit::Verdict::Pass(wait) if !wait.is_zero() => {
                        tokio::time::sleep(wait).await;
                    }
                    rate_limit::Verdict::Pass(_) => {}
                }
            }
            // nginx's `limit_conn`, in the same phase, once per request.
            if pass.held.is_none() && !target.concurrency_limits.is_empty() {
                match concurrency::acquire(&target.concurrency_limits, peer.ip) {
                    Some(taken) => *pass.held = Some(taken),
                    None => {
                        self.metrics.client_errors.concurrency_limited.inc();
                        discard_body(request, h1);
                        return (
                            error(
                                target.concurrency_limit_status,
                                "too many requests in flight from this address\n",
                            ),
                            Some(Special::of(pages, target)),
                        );
                    }
                }
            }
            // Then, in nginx's access phase, `allow` and `deny` before `auth_basic`.
            // `limit_except`: a method it does not let through passes its rules instead.
            let rules = match &target.limit_except {
                Some(except) if !except.methods.contains(request.method()) => &except.rules,
                _ => &target.access_rules,
            };
            if !config::AccessRule::allows(rules, peer.ip) {
                self.metrics.client_errors.forbidden.inc();
                discard_body(request, h1);
                return (
                    error(StatusCode::FORBIDDEN, "forbidden: this address is denied\n"),
                    Some(Special::of(pages, target)),
                );
            }
            if let Some(auth) = &target.basic_auth
                && auth
                    .check(request.headers().get(header::AUTHORIZATION))
                    .await
                    == basic_auth::Outcome::Refused
            {
                self.metrics.client_errors.unauthorized.inc();
                discard_body(request, h1);
                let mut response = error(
                    StatusCode::UNAUTHORIZED,
                    "authorization required: credentials of this realm's users\n",
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, auth.challenge());
                return (response, Some(Special::of(pages, target)));
            }
            // nginx's `auth_request`, last of the access phase; never for a request that is
            // itself one.
            if let Some(path) = &target.auth_request
                && request.extensions().get::<MainRequest>().is_none()
            {
                let (answer, refusal) = Box::pin(self.authorize(path, &request, &host, peer)).await;
                pass.auth = Some(answer.clone());
                pass.let_in = refusal.is_none();
                request.extensions_mut().insert(AuthResponse(answer));
                if let Some(response) = refusal {
                    discard_body(request, h1);
                    return (response, Some(Special::of(pages, target)));
                }
            }
            // nginx's `stub_status`, in its content phase.
            if target.stub_status {
                let readable = matches!(*request.method(), Method::GET | Method::HEAD);
                discard_body(request, h1);
                if readable {
                    return (self.stub_status(), None);
                }
                return (
                    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
                    Some(Special::of(pages, target)),
                );
            }
            let Some(files) = &target.files else {
                break target;
            };
            let asked = self.gzip.as_ref().map(|gzip| (gzip, gzip.asked(&request)));
            let compressed = |media: &HeaderValue, length: u64| {
                asked.is_some_and(|(gzip, asked)| gzip.compresses_file(asked, media, length))
            };
            let served = files
                .serve(
                    request.method(),
                    request.uri(),
                    request.headers(),
                    &compressed,
                )
                .await;
            hops += 1;
            match served {
                Served::Response(mut response) => {
                    // A directory's redirect.
                    self.absolute_location(response.headers_mut(), &host, peer.local_port);
                    let values = response_values(
                        &target.response_headers,
                        &request,
                        &host,
                        peer,
                        &mut pass.request_id,
                    );
                    discard_body(request, h1);
                    target.set_response_headers(response.status(), response.headers_mut(), &values);
                    // A file's content is a 200, 206 or 304; anything else is the proxy's.
                    let status = response.status();
                    let special = status.as_u16() >= 300 && status != StatusCode::NOT_MODIFIED;
                    return (
                        *response,
                        Some(Special::of(pages, target)).filter(|_| special),
                    );
                }
                _ if hops > MAX_HOPS => {}
                Served::Redirect(uri) => {
                    if let Ok(path) = PathAndQuery::try_from(uri) {
                        let mut parts = request.uri().clone().into_parts();
                        parts.path_and_query = Some(path);
                        if let Ok(uri) = Uri::from_parts(parts) {
                            *request.uri_mut() = uri;
                            continue;
                        }
                    }
                }
                Served::Named(name) => {
                    // Checked when the configuration was resolved.
                    named = self.locations.named(&name);
                    if named.is_some() {
                        continue;
                    }
                }
            }
            tracing::warn!(
                path = request.uri().path(),
                "try_files fell back {MAX_HOPS} times, or to a path that is not a URI: check the \
                 fallbacks of the routes' try_files for a loop"
            );
            discard_body(request, h1);
            return (
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: try_files led nowhere\n",
                ),
                None,
            );
        };
        let pages = Some(Special::of(&target.error_pages, target));
        // nginx's variables read the request as the client sent it: formed before the
        // proxy changes its headers.
        let route_added = response_values(
            &target.response_headers,
            &request,
            &host,
            peer,
            &mut pass.request_id,
        );
        let whole = match &target.rewrite {
            Rewrite::Whole(pieces, regex) => {
                let path = request.uri().path();
                // The location's groups, as its expression matched the path.
                let groups = regex
                    .as_ref()
                    .and_then(|regex| regex.captures(path).ok().flatten());
                let mut built = Vec::new();
                for piece in pieces {
                    match piece {
                        config::ReplacementPiece::Part(part) => {
                            push_variable(
                                &mut built,
                                part,
                                &request,
                                &host,
                                peer,
                                &mut pass.request_id,
                            );
                        }
                        config::ReplacementPiece::Capture(n) => {
                            if let Some(group) = groups.as_ref().and_then(|g| g.get(*n)) {
                                built.extend_from_slice(group.as_str().as_bytes());
                            }
                        }
                    }
                }
                drop(groups);
                match PathAndQuery::try_from(built) {
                    Ok(target) if target.as_str().starts_with('/') => Some(target),
                    _ => {
                        let response = self.bad_target(request.uri());
                        discard_body(request, h1);
                        return (response, pages);
                    }
                }
            }
            _ => None,
        };
        let per_request = (!target.request_headers.is_empty()).then(|| {
            per_request_values(
                &request,
                &host,
                &target.request_headers,
                peer,
                &mut pass.request_id,
            )
        });
        let h2 = request.version() == Version::HTTP_2;
        let upgrade_header = if h2 {
            None
        } else {
            upgrade_protocols(request.headers())
        };
        let upgrade = upgrade_header.is_some();
        // For an answer with `X-Accel-Redirect`: the request as it is before the proxy's
        // changes for the app, which the path it names is asked with.
        // Not for an `auth_request`'s question, whose answer only says yes or no.
        let accel = (target.accel_redirect
            && !upgrade
            && request.extensions().get::<MainRequest>().is_none())
        .then(|| (Head::of(&request), host.clone()));
        if self.drop_underscore_headers {
            drop_underscore_headers(request.headers_mut());
        }
        strip_hop_by_hop(request.headers_mut());
        // The client's `100-continue` is answered here, when the body is first read; the app
        // gets the body, not the question (nginx sends no `Expect` either).
        request.headers_mut().remove(header::EXPECT);
        if let Some(value) = upgrade_header {
            request
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            request.headers_mut().insert(header::UPGRADE, value);
        }
        if h2 {
            join_cookies(request.headers_mut());
            // HTTP/2 lets a `content-length` be repeated with one value (the h2 layer refuses
            // differing ones); HTTP/1.1 upstreams may refuse two lines: one is sent.
            let headers = request.headers_mut();
            if headers
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .nth(1)
                .is_some()
                && let Some(length) = headers.get(header::CONTENT_LENGTH).cloned()
            {
                headers.insert(header::CONTENT_LENGTH, length);
            }
        }
        self.add_forwarded(request.headers_mut(), peer, &host, target.x_real_ip);
        // For a `Location` made absolute once `redirect_rewrite` rewrote it.
        let redirect_host = (!target.redirects.is_empty() && self.absolute_redirects.is_some())
            .then(|| host.clone());
        // One Host line, the one admitted (an HTTP/2 client sends :authority instead).
        request.headers_mut().insert(header::HOST, host);
        if let Some(values) = per_request {
            set_request_headers(request.headers_mut(), &target.request_headers, values);
        }
        let as_sent = |uri: &Uri| {
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"))
        };
        let path = match (&target.rewrite, whole) {
            (_, Some(whole)) => whole,
            (Rewrite::Prefix { matched, with }, _) if !broke => {
                Rewrite::prefix(request.uri(), matched, with)
                    .unwrap_or_else(|| as_sent(request.uri()))
            }
            _ => as_sent(request.uri()),
        };
        // For the log line of a failure (a reference to the same bytes, no copy).
        let asked = (request.method().clone(), path.clone());
        // Origin form (`/path?query`): the upstream is ours, it needs no absolute URI.
        *request.uri_mut() = Uri::from(path);
        *request.version_mut() = Version::HTTP_11;
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let errors = &self.metrics.client_errors;
        let limit = target
            .max_request_body
            .map(|bytes| (bytes, errors.body_too_large.clone()));
        // Followed only when there is a body: a request without one starts the response
        // timeout at once, with nothing allocated for it.
        let has_body = request
            .body()
            .as_ref()
            .is_some_and(|body| !hyper::body::Body::is_end_stream(body));
        let progress = (has_body && !upgrade).then(|| Arc::new(BodyProgress::new()));
        let mut request = request
            .map(|body| RequestBody::new(body, errors.body.clone(), h1, limit, progress.clone()));
        // nginx's `proxy_request_buffering`: a body is read first, so that the app gets a
        // `Content-Length` (many cannot read a chunked one: wsgiref, runserver...) and is not
        // held up by a slow client (a synchronous worker waiting for an upload's bytes).
        if let Some(most) = target.request_buffering
            && progress.is_some()
            && request.body().to_hold(most)
        {
            match request.body_mut().hold(most, self.body_read_timeout).await {
                Held::Whole(length) => {
                    request
                        .headers_mut()
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
                }
                Held::Start => {}
                Held::Paused => return (self.body_paused(), pages),
                // Counted where the body failed; nothing reached the app.
                Held::Failed(ClientBodyError::TooLarge) => {
                    return (error(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE), pages);
                }
                Held::Failed(ClientBodyError::Failed(err)) => return (body_failed(&err), pages),
            }
        }

        // Only an internal pass can be an `X-Accel-Redirect`'s: a client's request is not
        // looked at.
        let accel_pass = !first && request.extensions().get::<AccelPass>().is_some();
        let sent = target
            .upstream
            .send(request, upgrade, target.response_timeout);
        let forwarded = upstream_time.is_some().then(Instant::now);
        let waited = match &progress {
            // Boxed: it holds the exchange twice over, and a request without a body (the
            // common one) would carry the room for it (see `error_page` above).
            Some(progress) => {
                Box::pin(progress.wait(sent, target.response_timeout, self.body_read_timeout)).await
            }
            None => tokio::time::timeout(target.response_timeout, sent)
                .await
                .map_err(|_| Stalled::Upstream),
        };
        let response = match waited {
            Err(Stalled::Upstream) => {
                self.metrics.upstream_error("timeout");
                // Formatted only if the line is written (not while a flood is held back).
                let timeout = format_args!(
                    "no response within {} s (upstream_response_timeout)",
                    target.response_timeout.as_secs_f64()
                );
                upstream_failed(&target.upstream, &asked, "timeout", &timeout, 504);
                return (
                    error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
                    pages,
                );
            }
            Err(Stalled::Client) => return (self.body_paused(), pages),
            // Counted (kind="body") where the body failed.
            Ok(Err(UpstreamError::ClientBody(err))) => return (body_failed(&err), pages),
            Ok(Err(UpstreamError::BodyTooLarge)) => {
                // Counted (kind="body_too_large") where the body went past the limit.
                return (error(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE), pages);
            }
            Ok(Err(err)) => {
                let (kind, text) = match err {
                    UpstreamError::Connect(_) => ("connect", "upstream refused the connection\n"),
                    _ => ("other", "upstream failed\n"),
                };
                self.metrics.upstream_error(kind);
                upstream_failed(&target.upstream, &asked, kind, &err, 502);
                return (error(StatusCode::BAD_GATEWAY, text), pages);
            }
            Ok(Ok(response)) => {
                if let (Some(time), Some(forwarded)) = (upstream_time, forwarded) {
                    *time = Some(forwarded.elapsed());
                }
                response
            }
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                // A switch the client did not ask for (RFC 9110 §15.2.2): nothing to relay.
                self.metrics.upstream_error("other");
                return (
                    error(
                        StatusCode::BAD_GATEWAY,
                        "upstream switched protocols unasked\n",
                    ),
                    pages,
                );
            };
            return (tunnel(response, client_upgrade), None);
        }
        let mut response = response;
        // The client is answered in its own HTTP/1.1 (or HTTP/2), whatever the app spoke: an
        // HTTP/1.0 app's answer would otherwise close a kept-alive client connection.
        *response.version_mut() = Version::HTTP_11;
        // An upstream that sent both a transfer coding and a length was read by its coding
        // (RFC 9112 §6.3): the length, which the body does not have, is not passed on.
        if response.headers().contains_key(header::TRANSFER_ENCODING) {
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        one_length(response.status(), response.headers_mut());
        strip_hop_by_hop(response.headers_mut());
        for name in &target.hidden {
            response.headers_mut().remove(name);
        }
        if !target.redirects.is_empty()
            && rewrite_redirects(response.headers_mut(), &target.redirects)
            && let Some(host) = &redirect_host
        {
            self.absolute_location(response.headers_mut(), host, peer.local_port);
        }
        if !target.cookies.is_empty()
            && let header::Entry::Occupied(mut set) =
                response.headers_mut().entry(header::SET_COOKIE)
        {
            for value in set.iter_mut() {
                if let Some(rewritten) = cookies::apply(&target.cookies, value) {
                    *value = rewritten;
                }
            }
        }
        // nginx never passes `X-Accel-Redirect` on, and follows it unless told not to.
        if let Some(to) = response.headers_mut().remove(X_ACCEL_REDIRECT)
            && let Some((head, host)) = accel
        {
            let mut placeholder = Response::new(full(Bytes::new()));
            // The answer's status, for whoever takes the placeholder for a response.
            *placeholder.status_mut() = response.status();
            for name in ACCEL_KEPT {
                if let header::Entry::Occupied(entry) = response.headers_mut().entry(name.clone()) {
                    let (name, values) = entry.remove_entry_mult();
                    for value in values {
                        placeholder.headers_mut().append(name.clone(), value);
                    }
                }
            }
            placeholder
                .extensions_mut()
                .insert(Accel { to, head, host });
            // The answer's body is not read.
            return (placeholder, None);
        }
        if accel_pass {
            response.extensions_mut().insert(AccelPass);
        }
        target.set_response_headers(response.status(), response.headers_mut(), &route_added);
        if h2 {
            own_header_values(response.headers_mut());
        }
        // The app's error goes through the error pages with `intercept_errors` (nginx's
        // `proxy_intercept_errors on`).
        let intercepted = target.error_pages.intercept
            && response.status().as_u16() >= 300
            && target.error_pages.find(response.status()).is_some();
        (response.map(Either::Left), pages.filter(|_| intercepted))
    }

    /// Asks `path` about `request` (nginx's `auth_request`): a GET with the client's headers
    /// and no body, through the locations as any request. The answer's headers, whatever its
    /// status (nginx sets `auth_request_set`'s variables on refusals too); with them, unless
    /// it is a 2xx, the refusal to send: its 401 (with its `WWW-Authenticate`) or 403, else a
    /// 500.
    async fn authorize<B>(
        &self,
        path: &PathAndQuery,
        request: &Request<B>,
        host: &HeaderValue,
        peer: &Peer,
    ) -> (Arc<HeaderMap>, Option<Response<ProxyBody>>) {
        let mut asked = Request::new(None);
        *asked.method_mut() = Method::GET;
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(path.clone());
        *asked.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from(path.clone()));
        *asked.version_mut() = request.version();
        let mut headers = request.headers().clone();
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        *asked.headers_mut() = headers;
        asked.extensions_mut().insert(MainRequest {
            method: request.method().clone(),
            uri: request.uri().clone(),
        });
        // Counted in the request's own limits, not again.
        let mut held = None;
        let mut pass = Pass {
            request_id: None,
            held: &mut held,
            counted: true,
            auth: None,
            let_in: false,
        };
        let (answer, _) =
            Box::pin(self.route(asked, host.clone(), peer, None, None, &mut pass, Some(None)))
                .await;
        let status = answer.status();
        let headers = Arc::new(answer.into_parts().0.headers);
        if status.is_success() {
            return (headers, None);
        }
        let mut refusal = match status {
            StatusCode::UNAUTHORIZED => {
                self.metrics.client_errors.unauthorized.inc();
                error(
                    StatusCode::UNAUTHORIZED,
                    "authorization required: refused by the auth_request\n",
                )
            }
            StatusCode::FORBIDDEN => {
                self.metrics.client_errors.forbidden.inc();
                error(
                    StatusCode::FORBIDDEN,
                    "forbidden: refused by the auth_request\n",
                )
            }
            _ => {
                tracing::warn!(
                    path = path.as_str(),
                    status = status.as_u16(),
                    "the auth_request answered neither 2xx, 401 nor 403: the request gets 500"
                );
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the auth_request failed\n",
                )
            }
        };
        if status == StatusCode::UNAUTHORIZED
            && let Some(challenge) = headers.get(header::WWW_AUTHENTICATE)
        {
            refusal
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge.clone());
        }
        (headers, Some(refusal))
    }

    /// The one host `request` is for, or the status and text that refuse it (counted).
    fn admit<B>(&self, request: &Request<B>) -> Result<HeaderValue, (StatusCode, &'static str)> {
        let errors = &self.metrics.client_errors;
        if request.method() == Method::CONNECT {
            errors.method.inc();
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not served here\n",
            ));
        }
        // nginx never passes TRACE on (405): the app's echo of the request would show a script
        // the headers it cannot read (cross-site tracing), and scanners flag it.
        if request.method() == Method::TRACE {
            errors.method.inc();
            return Err((StatusCode::METHOD_NOT_ALLOWED, "TRACE is not served here\n"));
        }
        // RFC 9112 §3.2.4: the asterisk form is OPTIONS's alone.
        if request.uri().path() == "*" && request.method() != Method::OPTIONS {
            errors.target.inc();
            return Err((
                StatusCode::BAD_REQUEST,
                "bad request: the target * is for OPTIONS only\n",
            ));
        }
        if request.version() != Version::HTTP_2 && !only_chunked(request.headers()) {
            errors.transfer_encoding.inc();
            return Err((
                StatusCode::NOT_IMPLEMENTED,
                "transfer codings other than chunked are not implemented\n",
            ));
        }
        request_host(request).map_err(|why| {
            errors.host.inc();
            (StatusCode::BAD_REQUEST, why)
        })
    }

    /// Applies `rules` to `request`: `Ok(None)` when none matched, `Ok(Some(search))` with its
    /// target replaced (`search`: its location to be looked up again), `Err` with the answer (a
    /// redirect, or a 400 for a replacement that makes no target).
    fn rewrite<B>(
        &self,
        rules: &[rewrite::Rule],
        request: &mut Request<B>,
        host: &HeaderValue,
        peer: &Peer,
        request_id: &mut Option<String>,
    ) -> Result<Option<bool>, Box<Response<ProxyBody>>> {
        let outcome = rewrite::apply(rules, request.uri(), |built, part| {
            push_variable(built, part, request, host, peer, request_id);
        });
        match outcome {
            rewrite::Outcome::Unchanged => Ok(None),
            rewrite::Outcome::Changed { target, search } => {
                let mut parts = request.uri().clone().into_parts();
                parts.path_and_query = Some(target);
                let uri =
                    Uri::from_parts(parts).map_err(|_| Box::new(self.bad_target(request.uri())))?;
                *request.uri_mut() = uri;
                Ok(Some(search))
            }
            rewrite::Outcome::Redirect(status, location) => {
                let mut response = Response::new(full(Bytes::new()));
                *response.status_mut() = status;
                response.headers_mut().insert(header::LOCATION, location);
                self.absolute_location(response.headers_mut(), host, peer.local_port);
                Err(Box::new(response))
            }
            rewrite::Outcome::Invalid => Err(Box::new(self.bad_target(request.uri()))),
        }
    }

    /// The 400 for a request whose values make no target.
    fn bad_target(&self, uri: &Uri) -> Response<ProxyBody> {
        tracing::debug!(
            path = uri.path(),
            "the request's values make no request target"
        );
        self.metrics.client_errors.target.inc();
        error(StatusCode::BAD_REQUEST, "bad request target\n")
    }

    /// nginx's `stub_status` page (`text/plain`, its layout to the byte, so that the
    /// nginx-prometheus-exporter reads it) from the proxy's counters: active connections;
    /// connections accepted (handshakes begun, and those `max_connections` refused), handled
    /// (begun), requests (answered, and this one); Reading 0 (the proxy does not count a
    /// connection reading a request's head apart), Writing the active connections not Waiting
    /// (idle, parked between requests).
    fn stub_status(&self) -> Response<ProxyBody> {
        let m = &self.metrics;
        let active = u64::try_from(m.connections_active.get()).unwrap_or(0);
        let waiting = u64::try_from(m.connections_parked.get())
            .unwrap_or(0)
            .min(active);
        let handled = m.handshake_ok.get() + m.handshake_failed.get() + m.handshake_timeout.get();
        let accepts = handled + m.connections_refused.get();
        let requests = m.request_duration.get_sample_count() + 1;
        let writing = active - waiting;
        let text = format!(
            "Active connections: {active} \nserver accepts handled requests\n {accepts} {handled} \
             {requests} \nReading: 0 Writing: {writing} Waiting: {waiting} \n"
        );
        let mut response = Response::new(full(Bytes::from(text)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    }

    /// nginx's `client_body_timeout`: the client's pause, not the upstream's (counted).
    fn body_paused(&self) -> Response<ProxyBody> {
        self.metrics.client_errors.body.inc();
        error(
            StatusCode::REQUEST_TIMEOUT,
            "request timeout: the request body paused too long\n",
        )
    }

    /// With `absolute_redirects`, a `Location` of the proxy's making (an answer's, a
    /// rewrite's, a directory's, one `redirect_rewrite` rewrote) that is a path is made
    /// absolute as nginx makes it: `https://`, the host the client named (without its port),
    /// the port of the listener it reached unless 443 (or `port_in_redirects` is off), the path.
    fn absolute_location(&self, headers: &mut HeaderMap, host: &HeaderValue, port: u16) {
        let Some(with_port) = self.absolute_redirects else {
            return;
        };
        let Some(path) = headers
            .get(header::LOCATION)
            .map(HeaderValue::as_bytes)
            .filter(|path| path.starts_with(b"/"))
        else {
            return;
        };
        let mut url = b"https://".to_vec();
        url.extend(
            without_port(host.as_bytes())
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        if with_port && port != 443 {
            url.extend_from_slice(format!(":{port}").as_bytes());
        }
        url.extend_from_slice(path);
        if let Ok(url) = HeaderValue::from_bytes(&url) {
            headers.insert(header::LOCATION, url);
        }
    }

    fn finish(
        &self,
        started: Instant,
        added: &[AddedValue],
        mut response: Response<ProxyBody>,
    ) -> Response<ProxyBody> {
        // An answer with `only_own_headers` gets none of these.
        if response.extensions().get::<OwnHeaders>().is_none() {
            self.add_own_headers(added, &mut response);
        }
        self.metrics.response(response.status());
        self.metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
        response
    }

    /// `hsts` and `response_headers` (`added`: those formed for the request) on `response`.
    fn add_own_headers(&self, added: &[AddedValue], response: &mut Response<ProxyBody>) {
        if let Some(hsts) = &self.hsts {
            response
                .headers_mut()
                .entry(header::STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        let status = response.status();
        add_response_headers(
            status,
            response.headers_mut(),
            &self.response_headers,
            added,
        );
    }

    /// Sets the forwarding headers of the configured family and removes the other family's.
    /// A trusted peer's list is appended to, and its `X-Forwarded-Proto`/`-Host` (one line
    /// each) kept; anyone else's forwarding headers are replaced.
    fn add_forwarded(
        &self,
        headers: &mut HeaderMap,
        peer: &Peer,
        host: &HeaderValue,
        x_real_ip: bool,
    ) {
        if x_real_ip {
            // nginx's `$remote_addr`: the TCP peer, whatever the client sent.
            headers.insert(X_REAL_IP, peer.for_value.clone());
        }
        // The list the client sent is kept, this hop's address after it.
        let append = peer.trusted || self.append_forwarded_for;
        match self.forwarded {
            ForwardedHeaders::XForwarded => {
                headers.remove(&FORWARDED);
                let for_value = if append {
                    appended(headers, &X_FORWARDED_FOR, peer.for_value.as_bytes())
                } else {
                    peer.for_value.clone()
                };
                headers.insert(X_FORWARDED_FOR, for_value);
                if !(peer.trusted && one_line(headers, &X_FORWARDED_PROTO)) {
                    headers.insert(X_FORWARDED_PROTO, HTTPS);
                }
                if !(peer.trusted && one_line(headers, &X_FORWARDED_HOST)) {
                    headers.insert(X_FORWARDED_HOST, host.clone());
                }
            }
            ForwardedHeaders::Forwarded => {
                headers.remove(&X_FORWARDED_FOR);
                headers.remove(&X_FORWARDED_PROTO);
                headers.remove(&X_FORWARDED_HOST);
                let element = forwarded_element(peer, host);
                let value = if append {
                    appended(headers, &FORWARDED, element.as_bytes())
                } else {
                    HeaderValue::from_str(&element).unwrap_or(HeaderValue::from_static(""))
                };
                headers.insert(FORWARDED, value);
            }
        }
    }
}

/// Whether `headers` has exactly one `name` line.
fn one_line(headers: &HeaderMap, name: &HeaderName) -> bool {
    let mut values = headers.get_all(name).iter();
    values.next().is_some() && values.next().is_none()
}

/// The `name` lines of `headers` and then `last`, as one comma-separated list.
fn appended(headers: &HeaderMap, name: &HeaderName, last: &[u8]) -> HeaderValue {
    let mut list = Vec::new();
    for value in headers.get_all(name) {
        list.extend_from_slice(value.as_bytes());
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(last);
    // Header values and an element of ours: no byte a header value cannot hold.
    HeaderValue::from_bytes(&list).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// One RFC 7239 element for this hop: `for=...;proto=https;host="..."`.
fn forwarded_element(peer: &Peer, host: &HeaderValue) -> String {
    let mut element = String::with_capacity(32 + peer.forwarded_for.len() + host.len());
    element.push_str("for=");
    element.push_str(&peer.forwarded_for);
    element.push_str(";proto=https;host=");
    push_quoted(&mut element, &String::from_utf8_lossy(host.as_bytes()));
    element
}

/// Appends `value` as an RFC 7239 value: a token when it is one, else a quoted string.
pub(crate) fn push_forwarded_value(out: &mut String, value: &str) {
    if !value.is_empty() && value.bytes().all(is_tchar) {
        out.push_str(value);
    } else {
        push_quoted(out, value);
    }
}

/// Appends `value` as a quoted string (RFC 9110 §5.6.4): `"` and `\` escaped, characters a
/// quoted string cannot hold (controls other than tab) left out, so the value can never end
/// the string early nor start another element.
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The host of an HTTP/1.0 request that names none.
const NO_HOST_NAME: &str = "localhost";

/// The one host the request is for, as the upstream gets it in Host; or why there is none.
///
/// HTTP/1.x: exactly one valid Host line; an absolute-form target's authority is the host
/// (RFC 9112 §3.2.2), whatever Host says. HTTP/2: `:authority` or `host`, equal when both are
/// sent (RFC 9113 §8.3.1).
fn request_host<B>(request: &Request<B>) -> Result<HeaderValue, &'static str> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("bad request: more than one Host\n");
    }
    if host.is_some_and(|host| !valid_host(host.as_bytes())) {
        return Err("bad request: invalid Host\n");
    }
    let authority = request.uri().authority();
    if request.version() == Version::HTTP_2 {
        return match (authority, host) {
            (Some(authority), Some(host))
                if !authority
                    .as_str()
                    .as_bytes()
                    .eq_ignore_ascii_case(host.as_bytes()) =>
            {
                Err("bad request: host differs from :authority\n")
            }
            (Some(authority), _) => authority_host(authority),
            (None, Some(host)) => Ok(host.clone()),
            (None, None) => Err("bad request: no :authority or host\n"),
        };
    }
    let Some(host) = host else {
        // HTTP/1.0 has no Host to require (health checks such as HAProxy's `option httpchk`
        // send none); nginx takes its server's name. The app, spoken to in HTTP/1.1, needs one.
        return match authority {
            None if request.version() == Version::HTTP_10 => {
                Ok(HeaderValue::from_static(NO_HOST_NAME))
            }
            _ => Err("bad request: no Host\n"),
        };
    };
    match authority {
        Some(authority) => {
            let web = request.uri().scheme_str().is_some_and(|scheme| {
                scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
            });
            if !web {
                return Err("bad request: the target is not an http or https URI\n");
            }
            authority_host(authority)
        }
        None => Ok(host.clone()),
    }
}

/// `authority` as a Host value, when it is a valid host (no userinfo).
fn authority_host(authority: &Authority) -> Result<HeaderValue, &'static str> {
    if !valid_host(authority.as_str().as_bytes()) {
        return Err("bad request: invalid authority\n");
    }
    HeaderValue::from_str(authority.as_str()).map_err(|_| "bad request: invalid authority\n")
}

/// Whether `value` is `host[:port]` as RFC 3986 §3.2.2–3.2.3 spell them: a non-empty reg-name
/// (unreserved, sub-delims, percent-encoded octets; an IPv4 address is one) or a bracketed
/// IPv6 address, then optionally `:` and up to five digits. No userinfo, no spaces, no
/// controls, no `/`, `@`, `"`, `\`.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    let port = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = std::str::from_utf8(&rest[..end]).ok();
        if literal.and_then(|l| l.parse::<Ipv6Addr>().ok()).is_none() {
            return false;
        }
        match &rest[end + 1..] {
            [] => return true,
            [b':', port @ ..] => port,
            _ => return false,
        }
    } else {
        let (name, port) = match value.iter().position(|&b| b == b':') {
            Some(at) => (&value[..at], Some(&value[at + 1..])),
            None => (value, None),
        };
        if !valid_reg_name(name) {
            return false;
        }
        match port {
            None => return true,
            Some(port) => port,
        }
    };
    port.len() <= 5 && port.iter().all(u8::is_ascii_digit)
}

fn valid_reg_name(name: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// Whether every transfer coding the request lists is `chunked` (true without any). hyper
/// refuses a list whose last coding is not `chunked`; one that also lists `gzip` it would
/// decode as chunked and forward without saying the content is gzipped.
fn only_chunked(headers: &HeaderMap) -> bool {
    if !headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .all(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .all(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
            })
        })
}

/// The `Upgrade` to forward when the request asks for one (`Connection: upgrade` and
/// `Upgrade`), without `h2c`: cleartext HTTP/2 has no place inside TLS. None when nothing
/// else is left.
fn upgrade_protocols(headers: &HeaderMap) -> Option<HeaderValue> {
    if !wants_upgrade(headers) {
        return None;
    }
    let mut values = headers.get_all(header::UPGRADE).iter();
    let first = values.next()?;
    let is_h2c = |p: &str| p.trim().eq_ignore_ascii_case("h2c");
    let plain = values.next().is_none() && first.to_str().is_ok_and(|v| !v.split(',').any(is_h2c));
    if plain {
        return Some(first.clone());
    }
    let kept: Vec<&str> = headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !is_h2c(p))
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join(", ")).ok()
}

/// `proxy.drop_underscore_headers`: removes the headers whose name has an underscore, as nginx
/// ignores them by default (so `X_Forwarded_For` never reaches an app that reads names with
/// `_` and `-` alike).
fn drop_underscore_headers(headers: &mut HeaderMap) {
    // Nothing allocated for the usual request, which has none.
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let underscored: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in underscored {
        headers.remove(name);
    }
}

/// What `proxy.request_headers` does with one header.
enum SetHeader {
    Remove,
    Fixed(HeaderValue),
    /// A value with `$host` or `$remote_addr`, built for each request.
    PerRequest(Vec<config::RequestHeaderPart>),
}

/// `proxy.request_headers`, as nginx's `proxy_set_header`: each header set to its value, the
/// client's lines of it replaced, or removed when its value is empty; `values` holds the
/// per-request ones in order ([`per_request_values`]; `None`: not a valid header value, so not
/// set).
fn set_request_headers(
    headers: &mut HeaderMap,
    set: &[(HeaderName, SetHeader)],
    values: Vec<Option<HeaderValue>>,
) {
    let mut values = values.into_iter();
    for (name, what) in set {
        let value = match what {
            SetHeader::Remove => {
                headers.remove(name);
                continue;
            }
            SetHeader::Fixed(value) => value.clone(),
            SetHeader::PerRequest(_) => match values.next().flatten() {
                // An empty value is not sent, as nginx's `proxy_set_header`.
                Some(value) if value.is_empty() => {
                    headers.remove(name);
                    continue;
                }
                Some(value) => value,
                None => continue,
            },
        };
        headers.insert(name.clone(), value);
    }
}

/// The values of `set`'s per-request entries for `request` from `peer`, in order, read from the
/// request as the client sent it (`$host`: the admitted `host`, lowercased, without the port,
/// as nginx's).
fn per_request_values<B>(
    request: &Request<B>,
    host: &HeaderValue,
    set: &[(HeaderName, SetHeader)],
    peer: &Peer,
    request_id: &mut Option<String>,
) -> Vec<Option<HeaderValue>> {
    let mut values = Vec::new();
    for (_, what) in set {
        let SetHeader::PerRequest(parts) = what else {
            continue;
        };
        values.push(value_of(parts, request, host, peer, request_id));
    }
    values
}

/// The header value `parts` make for `request` from `peer`; `None` when the request's values
/// make none.
fn value_of<B>(
    parts: &[config::RequestHeaderPart],
    request: &Request<B>,
    host: &HeaderValue,
    peer: &Peer,
    request_id: &mut Option<String>,
) -> Option<HeaderValue> {
    let mut built = Vec::new();
    for part in parts {
        push_variable(&mut built, part, request, host, peer, request_id);
    }
    HeaderValue::from_bytes(&built).ok()
}

/// Appends the value of the per-request `part` for `request` from `peer` to `built`
/// (`$request_id`: formed once per request in `request_id`).
fn push_variable<B>(
    built: &mut Vec<u8>,
    part: &config::RequestHeaderPart,
    request: &Request<B>,
    host: &HeaderValue,
    peer: &Peer,
    request_id: &mut Option<String>,
) {
    use config::RequestHeaderPart as Part;
    let uri = request.uri();
    let query = uri.query().unwrap_or_default();
    match part {
        Part::Text(text) => built.extend_from_slice(text.as_bytes()),
        Part::RemoteAddr => built.extend_from_slice(peer.for_value.as_bytes()),
        Part::ServerPort => built.extend_from_slice(peer.local_port.to_string().as_bytes()),
        Part::RemotePort => built.extend_from_slice(peer.port.to_string().as_bytes()),
        Part::Client(variable) => {
            built.extend_from_slice(client_variable(peer, *variable).as_bytes());
        }
        Part::Host => {
            built.extend(
                without_port(host.as_bytes())
                    .iter()
                    .map(u8::to_ascii_lowercase),
            );
        }
        Part::RequestId => built.extend_from_slice(
            request_id
                .get_or_insert_with(|| format!("{:032x}", fastrand::u128(..)))
                .as_bytes(),
        ),
        Part::RequestUri => {
            // An `auth_request`'s: the request's it asks about, as nginx's.
            let uri = match request.extensions().get::<MainRequest>() {
                Some(main) => &main.uri,
                None => uri,
            };
            built.extend_from_slice(
                uri.path_and_query()
                    .map_or(uri.path(), PathAndQuery::as_str)
                    .as_bytes(),
            );
        }
        Part::Uri => match super::files::normalize(uri.path()) {
            Some(path) => built.extend_from_slice(&path),
            None => built.extend_from_slice(uri.path().as_bytes()),
        },
        Part::Args => built.extend_from_slice(query.as_bytes()),
        Part::IsArgs => {
            if !query.is_empty() {
                built.push(b'?');
            }
        }
        Part::RequestMethod => {
            let method = match request.extensions().get::<MainRequest>() {
                Some(main) => &main.method,
                None => request.method(),
            };
            built.extend_from_slice(method.as_str().as_bytes());
        }
        Part::SslProtocol => built.extend_from_slice(peer.tls_version.as_bytes()),
        Part::SslServerName => {
            built.extend_from_slice(peer.sni.as_deref().unwrap_or_default().as_bytes());
        }
        Part::Scheme => built.extend_from_slice(b"https"),
        Part::Https => built.extend_from_slice(b"on"),
        Part::Arg(name) => {
            let found = query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                key.eq_ignore_ascii_case(name).then_some(value)
            });
            built.extend_from_slice(found.unwrap_or_default().as_bytes());
        }
        Part::Cookie(name) => {
            let found = request
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .flat_map(|line| line.as_bytes().split(|&b| b == b';'))
                .find_map(|pair| {
                    let pair = pair.trim_ascii();
                    let at = pair.iter().position(|&b| b == b'=')?;
                    pair[..at]
                        .eq_ignore_ascii_case(name.as_bytes())
                        .then(|| &pair[at + 1..])
                });
            built.extend_from_slice(found.unwrap_or_default());
        }
        Part::AuthHttp(name) => {
            if let Some(AuthResponse(headers)) = request.extensions().get::<AuthResponse>() {
                // `Set-Cookie` lines joined are no cookie: the first, as nginx takes.
                let most = if name == "set-cookie" { 1 } else { usize::MAX };
                for (index, value) in headers.get_all(name.as_str()).iter().take(most).enumerate() {
                    if index > 0 {
                        built.extend_from_slice(b", ");
                    }
                    built.extend_from_slice(value.as_bytes());
                }
            }
        }
        Part::AuthSetCookie(name) => {
            if let Some(AuthResponse(headers)) = request.extensions().get::<AuthResponse>() {
                built.extend_from_slice(set_cookie_value(headers, name).unwrap_or_default());
            }
        }
        Part::Map(map) => {
            let mut source = Vec::new();
            for part in &map.source {
                push_variable(&mut source, part, request, host, peer, request_id);
            }
            let source = String::from_utf8_lossy(&source);
            let (pieces, groups) = map.lookup(&source);
            for piece in pieces {
                match piece {
                    config::ReplacementPiece::Part(part) => {
                        push_variable(built, part, request, host, peer, request_id);
                    }
                    config::ReplacementPiece::Capture(n) => {
                        if let Some(group) = groups.as_ref().and_then(|g| g.get(*n)) {
                            built.extend_from_slice(group.as_str().as_bytes());
                        }
                    }
                }
            }
        }
        // An HTTP/2 client names the host in `:authority`: nginx's `$http_host` is it.
        Part::Http(name) if name == "host" => built.extend_from_slice(host.as_bytes()),
        Part::Http(name) => {
            let separator: &[u8] = if name == "cookie" { b"; " } else { b", " };
            for (index, value) in request.headers().get_all(name.as_str()).iter().enumerate() {
                if index > 0 {
                    built.extend_from_slice(separator);
                }
                built.extend_from_slice(value.as_bytes());
            }
        }
    }
}

/// The first of `answers` whose condition `request` meets.
fn first_answer<'a, B>(
    answers: &'a [Conditional],
    request: &Request<B>,
    host: &HeaderValue,
    peer: &Peer,
) -> Option<&'a Fixed> {
    let mut request_id = None;
    answers.iter().find_map(|conditional| {
        let mut value = Vec::new();
        push_variable(
            &mut value,
            &conditional.variable,
            request,
            host,
            peer,
            &mut request_id,
        );
        let holds = match &conditional.test {
            Test::Set => !value.is_empty() && value != b"0",
            Test::Equals(text) => value == text.as_bytes(),
            Test::Differs(text) => value != text.as_bytes(),
            Test::Matches(regex, negated) => {
                let text = String::from_utf8_lossy(&value);
                regex.is_match(text.as_ref()).unwrap_or(false) != *negated
            }
        };
        holds.then_some(&conditional.answer)
    })
}

/// `$ssl_client_*` for `peer`'s connection: empty (`NONE` for `verify`) without a client
/// certificate.
fn client_variable(peer: &Peer, variable: config::ClientVariable) -> &str {
    use config::ClientVariable;
    let Some(cert) = &peer.client_cert else {
        return if variable == ClientVariable::Verify {
            "NONE"
        } else {
            ""
        };
    };
    match variable {
        ClientVariable::Subject => &cert.subject,
        ClientVariable::Issuer => &cert.issuer,
        ClientVariable::Verify => "SUCCESS",
        ClientVariable::Serial => &cert.serial,
        ClientVariable::Fingerprint => &cert.fingerprint,
        ClientVariable::EscapedCert => &cert.escaped,
    }
}

/// A Host value without its `:port` (`[v6]` keeps its brackets).
fn without_port(host: &[u8]) -> &[u8] {
    if host.starts_with(b"[") {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// `proxy.redirect_rewrite`, as nginx's `proxy_redirect`: in each `Location` and in the URL after
/// `url=` of each `Refresh`, the first `from` the URL starts with (case included) is replaced
/// by its `to`. A value that would not be a valid header is left as it was. Whether a
/// `Location` was rewritten.
fn rewrite_redirects(headers: &mut HeaderMap, redirects: &[(Bytes, Bytes)]) -> bool {
    let mut location = false;
    let rewrite = |value: &HeaderValue, url_at: usize| -> Option<HeaderValue> {
        let bytes = value.as_bytes();
        let url = &bytes[url_at..];
        let (from, to) = redirects.iter().find(|(from, _)| url.starts_with(from))?;
        let mut out = Vec::with_capacity(bytes.len() + to.len());
        out.extend_from_slice(&bytes[..url_at]);
        out.extend_from_slice(to);
        out.extend_from_slice(&url[from.len()..]);
        HeaderValue::from_bytes(&out).ok()
    };
    for name in [header::LOCATION, header::REFRESH] {
        let header::Entry::Occupied(mut entry) = headers.entry(name) else {
            continue;
        };
        let refresh = entry.key() == header::REFRESH;
        for value in entry.iter_mut() {
            let url_at = if refresh {
                match value
                    .as_bytes()
                    .windows(4)
                    .position(|w| w.eq_ignore_ascii_case(b"url="))
                {
                    Some(at) => at + 4,
                    None => continue,
                }
            } else {
                0
            };
            if let Some(new) = rewrite(value, url_at) {
                *value = new;
                location |= !refresh;
            }
        }
    }
    location
}

/// Joins HTTP/2 `cookie` fields into the one line HTTP/1.1 wants (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers.get_all(header::CONNECTION).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Gives each header value an allocation of its own, for a response to an HTTP/2 client.
///
/// hyper parses an upstream response's header values as slices of its connection's read
/// buffer (8 KiB and more), and a slice keeps the whole buffer alive. HTTP/2's header
/// compression keeps the values it has sent in a table for the life of the client's connection
/// (RFC 7541's dynamic table), so each HTTP/2 connection, idle or not, would hold on to a read
/// buffer of the upstream connection: about 4 KiB of RSS per idle connection with jemalloc,
/// 16 KiB of heap with the C library's malloc. Copied, a value costs its own few bytes.
/// HTTP/1.1 responses are written out and dropped, so they are left as they are.
fn own_header_values(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        // Cannot fail: the bytes come from a valid value.
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
    }
}

/// Removes hop-by-hop headers, including any the `Connection` header names. Most messages
/// carry none: one pass over the names finds that out without a lookup per hop header.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Completes a protocol switch: the client gets the 101, then bytes flow both ways.
fn tunnel(
    mut upstream_response: Response<UpstreamBody>,
    client_upgrade: hyper::upgrade::OnUpgrade,
) -> Response<ProxyBody> {
    let upstream_upgrade = hyper::upgrade::on(&mut upstream_response);
    crate::telemetry::spawn_in_span(async move {
        match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((client, upstream)) => {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(error = %err, "upgraded connection ended with an error");
                }
            }
            Err(err) => tracing::debug!(error = %err, "protocol upgrade failed"),
        }
    });
    let (parts, _) = upstream_response.into_parts();
    Response::from_parts(parts, full(Bytes::new()))
}

/// The 413's text.
const TOO_LARGE: &str = "request body too large\n";

/// The text of `unknown_host`'s status.
const UNKNOWN_HOST: &str = "this server does not answer for that host\n";

/// nginx's 444: a handler's answer that says "close the connection, send nothing" (the
/// connection's service turns it into an error, so hyper closes an HTTP/1 connection and
/// resets an HTTP/2 stream).
pub(crate) const CLOSE: StatusCode = match StatusCode::from_u16(444) {
    Ok(code) => code,
    Err(_) => unreachable!(),
};

/// The answer that closes the connection: [`CLOSE`].
fn close_connection() -> Response<ProxyBody> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = CLOSE;
    response
}

/// A request answered without being forwarded: a body the client may still be sending is
/// read and dropped ([`super::upstream::discard`]), so that the client reads the answer.
fn discard_body(request: Request<Option<Incoming>>, h1: Option<Arc<H1State>>) {
    if let Some(body) = request.into_body()
        && !hyper::body::Body::is_end_stream(&body)
    {
        super::upstream::discard(body, h1);
    }
}

/// The value of the cookie `name` that one of `headers`' `Set-Cookie` lines sets, as nginx's
/// `$upstream_cookie_NAME` reads it: the first line that starts with the name (case ignored),
/// then `=` (spaces around it skipped); the value runs to the first `;`.
fn set_cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers.get_all(header::SET_COOKIE).iter().find_map(|line| {
        let line = line.as_bytes();
        let rest = line
            .get(..name.len())
            .filter(|start| start.eq_ignore_ascii_case(name.as_bytes()))
            .map(|_| &line[name.len()..])?;
        let spaces = |bytes: &'h [u8]| &bytes[bytes.iter().take_while(|&&b| b == b' ').count()..];
        let rest = spaces(spaces(rest).strip_prefix(b"=")?);
        let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

/// A 401's challenge (`WWW-Authenticate`: Basic authentication's, an `auth_request`'s, the
/// app's) stays on the error page that replaces it, whatever its status, as in nginx.
fn keep_challenge(refusal: &Response<ProxyBody>, page: &mut Response<ProxyBody>) {
    if refusal.status() == StatusCode::UNAUTHORIZED
        && !page.headers().contains_key(header::WWW_AUTHENTICATE)
        && let Some(challenge) = refusal.headers().get(header::WWW_AUTHENTICATE)
    {
        page.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge.clone());
    }
}

/// A short plain-text error.
/// At most one `Content-Length`, and none on a 204 (RFC 9110 §8.6): hyper reads an upstream
/// that repeats the length (`Content-Length: 6` twice, or `6, 6`) when the values agree, and
/// sends a 204's on, but HTTP/2 clients refuse either (PROTOCOL_ERROR: no response at all).
fn one_length(status: StatusCode, headers: &mut HeaderMap) {
    if status == StatusCode::NO_CONTENT {
        headers.remove(header::CONTENT_LENGTH);
        return;
    }
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return;
    };
    if values.next().is_none() && !first.as_bytes().contains(&b',') {
        return;
    }
    // hyper has checked that every value is the same number.
    let length = first
        .to_str()
        .ok()
        .and_then(|value| value.split(',').next())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match length {
        Some(length) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
}

/// Logs a request the upstream did not answer (nginx writes such a line to its error log):
/// the method and the path sent (never the query, which may hold secrets), within
/// [`FAILURE_LOG`]'s budget.
fn upstream_failed(
    upstream: &Upstream,
    (method, path): &(Method, PathAndQuery),
    kind: &str,
    error: &dyn std::fmt::Display,
    status: u16,
) {
    if let Some(held_back) = FAILURE_LOG.take() {
        tracing::warn!(
            %method,
            path = path.path(),
            upstream = upstream.address(),
            kind,
            %error,
            status,
            held_back,
            "the upstream did not answer"
        );
    }
}

/// The answer to a request body that failed (counted where it failed): malformed framing, or
/// the client gone.
fn body_failed(err: &dyn std::fmt::Display) -> Response<ProxyBody> {
    tracing::debug!(error = %err, "the client's request body failed");
    error(
        StatusCode::BAD_REQUEST,
        "bad request: the request body is malformed or ended early\n",
    )
}

/// The request the proxy sends on itself (nginx's internal redirect: an error page's, an
/// `X-Accel-Redirect`'s) from the head of the one it stands for, without its body, with the
/// `auth_request` answer that let that one in: to `path` with GET (HEAD stays HEAD), or,
/// without one, to a named route with the method as it came.
fn internal_request(
    head: Head,
    path: Option<PathAndQuery>,
    pass: &Pass<'_>,
) -> Request<Option<Incoming>> {
    let Head {
        method,
        uri,
        version,
        mut headers,
    } = head;
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    let mut request = Request::new(None);
    *request.method_mut() = match path {
        Some(_) if method != Method::HEAD => Method::GET,
        _ => method,
    };
    *request.uri_mut() = match path {
        Some(path) => {
            let mut parts = uri.into_parts();
            parts.path_and_query = Some(path.clone());
            Uri::from_parts(parts).unwrap_or_else(|_| Uri::from(path))
        }
        None => uri,
    };
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    if let Some(answer) = &pass.auth {
        request
            .extensions_mut()
            .insert(AuthResponse(Arc::clone(answer)));
    }
    request
}

/// The headers an `X-Accel-Redirect` answer passes on (`kept`) added to `response`, sent for
/// it, before its own lines, as nginx sends them: its `Content-Type` replaces a file's or an
/// answer's, not an upstream's nor an error's own; `Accept-Ranges` only on a success.
fn carry<B>(kept: &HeaderMap, response: &mut Response<B>) {
    let status = response.status();
    let upstream = response.extensions().get::<AccelPass>().is_some();
    let headers = response.headers_mut();
    for name in kept.keys() {
        if *name == header::CONTENT_TYPE {
            if (!headers.contains_key(name) || (status.is_success() && !upstream))
                && let Some(value) = kept.get(name)
            {
                headers.insert(name, value.clone());
            }
            continue;
        }
        if *name == header::ACCEPT_RANGES && !status.is_success() {
            continue;
        }
        let own: Vec<HeaderValue> = match headers.entry(name) {
            header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
            header::Entry::Vacant(_) => Vec::new(),
        };
        for value in kept.get_all(name).iter().cloned().chain(own) {
            headers.append(name, value);
        }
    }
}

fn error(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `$auth_set_cookie_NAME` (nginx's `$upstream_cookie_NAME`): the first `Set-Cookie` line
    /// that sets NAME (case ignored), its value up to `;`; `Set-Cookie` lines are never joined.
    /// Locations see the path as nginx reads it; a plain path is not copied; what nginx
    /// refuses is `None`.
    #[test]
    fn locations_match_the_path_as_nginx_reads_it() {
        let seen = |path: &str| matching_path(path).map(|p| p.into_owned());
        assert!(matches!(
            matching_path("/api/v1/.well-known/x"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
        assert_eq!(seen("/%61dmin").as_deref(), Some("/admin"));
        assert_eq!(seen("//admin//x/").as_deref(), Some("/admin/x/"));
        assert_eq!(seen("/x/../admin").as_deref(), Some("/admin"));
        assert_eq!(seen("/a/./b/.").as_deref(), Some("/a/b/"));
        assert_eq!(seen("/internal%2Fx").as_deref(), Some("/internal/x"));
        assert_eq!(seen("/%25zz").as_deref(), Some("/%zz"), "decoded once");
        for refused in [
            "/..",
            "/../etc/passwd",
            "/%2e%2e/x",
            "/a%00b",
            "/a%zz",
            "/a%2",
        ] {
            assert_eq!(seen(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_cookie_is_read_from_set_cookie_lines_as_nginx_reads_it() {
        let mut headers = HeaderMap::new();
        for line in [
            "_session_10=ten; Path=/",
            "_Session_1 = one; Path=/; Secure",
            "_session_1=again",
            "bare=",
        ] {
            headers.append(header::SET_COOKIE, HeaderValue::from_static(line));
        }
        let value = |name: &str| set_cookie_value(&headers, name).map(|v| v.to_vec());
        assert_eq!(value("_session_1").as_deref(), Some(&b"one"[..]));
        assert_eq!(value("_session_10").as_deref(), Some(&b"ten"[..]));
        assert_eq!(value("bare").as_deref(), Some(&b""[..]));
        assert_eq!(value("_session"), None, "a longer name is another cookie");
        assert_eq!(value("Path"), None, "an attribute is no cookie");
        let mut added = HeaderMap::new();
        added.append(header::SET_COOKIE, HeaderValue::from_static("app=1"));
        added.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in [
            (header::SET_COOKIE, "auth=2"),
            (header::SET_COOKIE, "auth=2"),
            (header::CACHE_CONTROL, "max-age=60"),
        ] {
            add_response_header(&mut added, &name, &HeaderValue::from_static(value));
        }
        let cookies: Vec<_> = added.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["app=1", "auth=2"], "beside the app's, once");
        assert_eq!(
            added[header::CACHE_CONTROL],
            "no-store",
            "the app's own wins"
        );
    }

    /// Which location each path goes to, as nginx picks among `location` blocks.
    #[test]
    fn locations_are_picked_as_nginx_picks_them() {
        let mut locations = Locations::default();
        let fixed = |status: u16| Action::Answer {
            fixed: Fixed {
                status: StatusCode::from_u16(status).unwrap(),
                body: Bytes::new(),
                content_type: None,
                location: None,
                headers: Box::new([]),
                only_own_headers: false,
            },
            pages: ErrorPages::new(&[], false),
            internal: false,
        };
        for (spec, status) in [
            ("= /exact", 201),
            ("/static/", 202),
            ("^~ /static/img/", 203),
            ("~ \\.png$", 204),
            ("~* ^/API/", 205),
            ("~ ^/api/v1", 206),
            ("/api/v1/long/", 207),
            ("/exact", 208),
            // PCRE's look-ahead and back-references, as nginx runs them.
            ("~ /\\.(?!well-known)", 209),
            ("~ ^/(\\w+)/\\1$", 210),
            ("~ ^/any(.*)$", 211),
        ] {
            let path = config::PathMatch::parse(spec).unwrap();
            locations.add(&path, fixed(status));
        }
        locations
            .prefixes
            .sort_by_key(|(path, _, _)| std::cmp::Reverse(path.len()));
        let found = |path: &str| match locations.find(path) {
            Some(Action::Answer { fixed, .. }) => Some(fixed.status.as_u16()),
            Some(Action::Forward(_)) => unreachable!(),
            None => None,
        };
        // Exact before anything.
        assert_eq!(found("/exact"), Some(201));
        assert_eq!(found("/exactly"), Some(208));
        // A plain prefix loses to a regular expression that matches, wins when none does.
        assert_eq!(found("/static/a.png"), Some(204));
        assert_eq!(found("/static/a.css"), Some(202));
        // `^~` as the longest prefix: no regular expression is tried.
        assert_eq!(found("/static/img/a.png"), Some(203));
        // Regular expressions in the order written, `~*` ignoring case.
        assert_eq!(found("/api/v1/users"), Some(205));
        assert_eq!(found("/Api/v2"), Some(205));
        // The longest prefix is not `^~`: the regular expressions come first.
        assert_eq!(found("/api/v1/long/x"), Some(205));
        // Look-ahead: dot files except `.well-known`; a back-reference: a repeated segment.
        assert_eq!(found("/.git/config"), Some(209));
        assert_eq!(found("/.well-known/security.txt"), None);
        assert_eq!(found("/twice/twice"), Some(210));
        assert_eq!(found("/once/twice"), None);
        assert_eq!(found("/anything/at/all"), Some(211));
        // Nothing: the proxy's own upstream.
        assert_eq!(found("/"), None);
        assert_eq!(found("/other"), None);
    }

    #[test]
    fn request_headers_are_set_or_removed_as_nginx_proxy_set_header_does() {
        let mut request = Request::builder()
            .method("PATCH")
            .uri("/a/./b/../c%20d?x=1&y")
            .header("x-scheme", "forged")
            .header("x-scheme", "twice")
            .header(header::AUTHORIZATION, "Basic eA==")
            .header(header::ACCEPT, "*/*")
            .header("x-trace", "one")
            .header("x-trace", "two")
            .header(header::COOKIE, "a=1")
            .header(header::COOKIE, "b=2")
            .body(())
            .unwrap();
        let host = HeaderValue::from_static("App.Example:8443");
        let parts =
            |value: &str| SetHeader::PerRequest(config::request_header_parts(value).unwrap());
        let mut peer = Peer::new("192.0.2.7".parse().unwrap(), false);
        peer.port = 50123;
        peer.local_port = 8443;
        peer.tls_version = "TLSv1.2";
        peer.sni = Some("app.example".into());
        let set = [
            (
                HeaderName::from_static("x-scheme"),
                SetHeader::Fixed(HeaderValue::from_static("https")),
            ),
            (header::AUTHORIZATION, SetHeader::Remove),
            (
                HeaderName::from_static("x-forwarded-port"),
                SetHeader::Fixed(HeaderValue::from_static("443")),
            ),
            (
                HeaderName::from_static("x-client"),
                parts("ip=$remote_addr;h=${host}"),
            ),
            (
                HeaderName::from_static("x-request"),
                parts("$request_method $request_uri $uri$is_args$args $query_string"),
            ),
            (
                HeaderName::from_static("x-connection"),
                parts("$remote_port $server_port $ssl_protocol $ssl_server_name"),
            ),
            (
                HeaderName::from_static("x-headers"),
                parts("$http_x_trace|$http_cookie|$http_host|$http_none|"),
            ),
            (HeaderName::from_static("x-id"), parts("$request_id")),
            (HeaderName::from_static("x-id-twice"), parts("$request_id")),
        ];
        let values = per_request_values(&request, &host, &set, &peer, &mut None);
        let headers = request.headers_mut();
        set_request_headers(headers, &set, values);
        let all = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(all("x-scheme"), ["https"], "the client's lines replaced");
        assert!(all("authorization").is_empty(), "removed");
        assert_eq!(all("x-forwarded-port"), ["443"]);
        assert_eq!(all("x-client"), ["ip=192.0.2.7;h=app.example"]);
        assert_eq!(
            all("x-request"),
            ["PATCH /a/./b/../c%20d?x=1&y /a/c d?x=1&y x=1&y"]
        );
        assert_eq!(all("x-connection"), ["50123 8443 TLSv1.2 app.example"]);
        assert_eq!(all("x-headers"), ["one, two|a=1; b=2|App.Example:8443||"]);
        let id = all("x-id")[0].to_string();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(all("x-id-twice"), [id.as_str()], "one id per request");
        assert_eq!(without_port(b"[::1]:443"), b"[::1]");
        assert_eq!(without_port(b"example.com"), b"example.com");
        assert_eq!(all("accept"), ["*/*"], "others untouched");
    }

    #[test]
    fn headers_with_an_underscore_are_dropped_as_nginx_does_by_default() {
        let mut headers = HeaderMap::new();
        headers.append("x_forwarded_for", HeaderValue::from_static("6.6.6.6"));
        headers.append("x_forwarded_for", HeaderValue::from_static("7.7.7.7"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        headers.insert("_", HeaderValue::from_static("1"));
        drop_underscore_headers(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-forwarded-for"));
    }

    #[test]
    fn redirects_are_rewritten_as_nginx_proxy_redirect_does() {
        let rules: Vec<(Bytes, Bytes)> = [("http://127.0.0.1:8080/", "/"), ("http://", "https://")]
            .into_iter()
            .map(|(f, t)| (Bytes::from(f), Bytes::from(t)))
            .collect();
        let rewritten = |name: HeaderName, values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(name.clone(), HeaderValue::from_static(value));
            }
            rewrite_redirects(&mut headers, &rules);
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        // The first rule that matches, once; case counts, as in nginx.
        assert_eq!(
            rewritten(
                header::LOCATION,
                &[
                    "http://127.0.0.1:8080/x?a=1",
                    "http://app.example/login",
                    "HTTP://app.example/",
                    "/relative",
                    "https://already/"
                ]
            ),
            [
                "/x?a=1",
                "https://app.example/login",
                "HTTP://app.example/",
                "/relative",
                "https://already/"
            ]
        );
        assert_eq!(
            rewritten(
                header::REFRESH,
                &[
                    "5; URL=http://a.example/x",
                    "5; url=http://127.0.0.1:8080/r",
                    "5"
                ]
            ),
            ["5; URL=https://a.example/x", "5; url=/r", "5"]
        );
        assert_eq!(
            rewritten(header::CONTENT_LOCATION, &["http://a.example/"]),
            ["http://a.example/"],
            "other headers are left alone"
        );
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }

    #[test]
    fn header_values_for_an_http2_client_no_longer_share_the_upstream_buffer() {
        // As hyper parses a response: every value a slice of one read buffer.
        let buffer =
            Bytes::from_static(b"text/plain; charset=utf-8\x00Thu, 03 Dec 2026 10:00:00 GMT");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_maybe_shared(buffer.slice(0..25)).unwrap(),
        );
        let mut date = HeaderValue::from_maybe_shared(buffer.slice(26..)).unwrap();
        date.set_sensitive(true);
        headers.append(header::DATE, date);
        headers.append(header::DATE, HeaderValue::from_static("second line"));
        let inside =
            |value: &HeaderValue| buffer.as_ptr_range().contains(&value.as_bytes().as_ptr());
        assert!(headers.values().filter(|v| inside(v)).count() == 2);

        own_header_values(&mut headers);

        assert!(
            !headers.values().any(inside),
            "a value still points into the buffer"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        let dates: Vec<_> = headers.get_all(header::DATE).iter().collect();
        assert_eq!(dates, ["Thu, 03 Dec 2026 10:00:00 GMT", "second line"]);
        assert!(dates[0].is_sensitive() && !dates[1].is_sensitive());
    }

    #[test]
    fn upgrades_need_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!wants_upgrade(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(wants_upgrade(&headers));
    }

    #[test]
    fn peers_are_formatted_for_both_header_styles() {
        let v4 = Peer::new("10.0.0.7".parse().unwrap(), false);
        assert_eq!(
            (v4.for_value.to_str().unwrap(), v4.forwarded_for.as_str()),
            ("10.0.0.7", "10.0.0.7")
        );
        let v6 = Peer::new("::1".parse().unwrap(), true);
        assert_eq!(v6.forwarded_for, "\"[::1]\"");
        assert!(v6.trusted);
    }

    fn forwarded(value: &str) -> String {
        let mut out = String::new();
        push_forwarded_value(&mut out, value);
        out
    }

    #[test]
    fn forwarded_values_are_tokens_or_escaped_quoted_strings() {
        assert_eq!(forwarded("https"), "https");
        assert_eq!(forwarded("10.0.0.7"), "10.0.0.7");
        assert_eq!(forwarded("[2001:db8::1]"), "\"[2001:db8::1]\"");
        assert_eq!(forwarded("a.example:8443"), "\"a.example:8443\"");
        assert_eq!(forwarded(""), "\"\"");
        assert_eq!(forwarded("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(forwarded("a\r\nb\u{7f}\tc"), "\"ab\tc\"");
    }

    /// Splits a `Forwarded` value into elements and pairs the way a recipient does, honouring
    /// quoted strings and their escapes.
    fn parse_forwarded(value: &str) -> Vec<Vec<(String, String)>> {
        let mut elements = vec![vec![]];
        let mut chars = value.chars().peekable();
        loop {
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
            assert_eq!(chars.next(), Some('='), "{value}");
            let mut text = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next().expect("closing quote") {
                        '\\' => text.push(chars.next().expect("escaped")),
                        '"' => break,
                        c => text.push(c),
                    }
                }
            } else {
                text = std::iter::from_fn(|| chars.next_if(|c| !matches!(c, ';' | ','))).collect();
            }
            elements.last_mut().unwrap().push((name, text));
            match chars.next() {
                None => return elements,
                Some(';') => {}
                Some(',') => elements.push(vec![]),
                Some(c) => panic!("{c:?} after a value in {value}"),
            }
        }
    }

    #[test]
    fn a_hostile_host_stays_inside_its_one_quoted_string() {
        let peer = Peer::new("192.0.2.1".parse().unwrap(), false);
        for hostile in [
            "localhost\", for=6.6.6.6;host=\"evil",
            "a\\\", for=6.6.6.6",
            "x\\",
            "x;for=1.2.3.4,for=5.6.7.8",
        ] {
            let host = HeaderValue::from_str(hostile).unwrap();
            let element = forwarded_element(&peer, &host);
            let parsed = parse_forwarded(&element);
            assert_eq!(parsed.len(), 1, "{element}");
            assert_eq!(
                parsed[0],
                [
                    ("for".to_string(), "192.0.2.1".to_string()),
                    ("proto".to_string(), "https".to_string()),
                    ("host".to_string(), hostile.to_string()),
                ],
                "{element}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever a header value holds, its `Forwarded` element parses back as one element
        /// of three pairs, the host intact.
        #[test]
        fn no_host_value_can_add_end_or_reorder_forwarded_elements(host in "[ -~\t]{0,40}") {
            let peer = Peer::new("192.0.2.1".parse().unwrap(), false);
            let value = HeaderValue::from_str(&host).unwrap();
            let parsed = parse_forwarded(&forwarded_element(&peer, &value));
            proptest::prop_assert_eq!(parsed.len(), 1);
            proptest::prop_assert_eq!(parsed[0].len(), 3);
            proptest::prop_assert_eq!(&parsed[0][2].1, &host);
        }
    }

    #[test]
    fn a_trusted_list_is_appended_to_and_an_untrusted_one_replaced() {
        let mut headers = HeaderMap::new();
        headers.append(&FORWARDED, HeaderValue::from_static("for=10.0.0.1"));
        headers.append(&FORWARDED, HeaderValue::from_static("for=10.0.0.2"));
        let value = appended(&headers, &FORWARDED, b"for=10.0.0.3");
        assert_eq!(value, "for=10.0.0.1, for=10.0.0.2, for=10.0.0.3");
        assert_eq!(appended(&HeaderMap::new(), &FORWARDED, b"for=x"), "for=x");
    }

    #[test]
    fn hosts_follow_the_rfc_3986_grammar() {
        for good in [
            "a.example",
            "a.example:8443",
            "A-B.example.",
            "127.0.0.1",
            "127.0.0.1:443",
            "[::1]",
            "[2001:db8::1]:443",
            "xn--bcher-kva.example",
            "a%2Eb",
            "localhost:",
            "under_score~!$&'()*+,;=",
        ] {
            assert!(valid_host(good.as_bytes()), "{good} is valid");
        }
        for bad in [
            "",
            ":443",
            "a b",
            "a\tb",
            "a.example\"",
            "user@a.example",
            "a.example/path",
            "a.example:443:1",
            "a.example:44a",
            "a.example:123456",
            "[::1",
            "[not-ip]",
            "[::1]x",
            "[fe80::1%25eth0]",
            "a%2",
            "a%zz",
            "a\\b",
            "localhost\", for=6.6.6.6;x=\"",
            "é.example",
            "a?b",
            "a#b",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?} is invalid");
        }
    }

    #[test]
    fn a_response_carries_one_length_and_a_204_none() {
        let lengths = |status: u16, values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(
                    header::CONTENT_LENGTH,
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            one_length(StatusCode::from_u16(status).unwrap(), &mut headers);
            headers
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(lengths(200, &["6"]), ["6"]);
        assert_eq!(lengths(200, &["6", "6"]), ["6"]);
        assert_eq!(lengths(200, &["6, 6"]), ["6"]);
        assert_eq!(lengths(200, &[]), Vec::<String>::new());
        assert_eq!(lengths(204, &["5"]), Vec::<String>::new());
        assert_eq!(
            lengths(304, &["100"]),
            ["100"],
            "a 304 may say the length of a 200"
        );
    }

    #[test]
    fn only_chunked_codings_are_accepted() {
        let mut headers = HeaderMap::new();
        assert!(only_chunked(&headers));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("Chunked"),
        );
        assert!(only_chunked(&headers));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("gzip, chunked"),
        );
        assert!(!only_chunked(&headers));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        headers.append(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(!only_chunked(&headers));
    }

    #[test]
    fn h2c_is_never_an_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, HTTP2-Settings"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(upgrade_protocols(&headers), None);
        headers.insert(header::UPGRADE, HeaderValue::from_static("H2C, websocket"));
        assert_eq!(upgrade_protocols(&headers).unwrap(), "websocket");
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(upgrade_protocols(&headers).unwrap(), "websocket");
    }

    #[test]
    fn http2_cookie_fields_become_one_line() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        join_cookies(&mut headers);
        assert_eq!(headers.get(header::COOKIE).unwrap(), "a=1");
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("c=3"));
        join_cookies(&mut headers);
        let cookies: Vec<_> = headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
    }
}
