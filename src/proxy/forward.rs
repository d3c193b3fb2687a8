//! Forwarding one request to the upstream and its response back, bodies streamed both ways.
//!
//! The upstream is spoken to over HTTP/1.1 with a keep-alive pool ([`Upstream`]), whatever the
//! client used.
//! The request keeps its Host; hop-by-hop headers are dropped in both directions; the upstream
//! learns the client's address, scheme and host from `X-Forwarded-*` (or `Forwarded`). A
//! WebSocket (any `Upgrade`) is passed through: once the upstream answers 101, bytes are copied
//! both ways. An upstream that refuses is a 502, one too slow to answer is a 504, each with a
//! short plain-text body and a metric. Nothing here does file I/O or takes a lock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::metrics::ProxyMetrics;
use super::upstream::{Upstream, UpstreamBody, UpstreamError};
use crate::config::{self, ForwardedHeaders};

/// A response body: the upstream's stream, or a short one of ours.
pub(crate) type ProxyBody = Either<UpstreamBody, Full<Bytes>>;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1). Typed names, so that
/// looking one up hashes no string.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Who is on the other end of a client connection, formatted once per connection.
#[derive(Clone)]
pub(crate) struct Peer {
    /// The client's address as `X-Forwarded-For` carries it.
    pub for_value: HeaderValue,
    /// The client's address as `Forwarded: for=` carries it (IPv6 quoted and bracketed).
    pub forwarded_for: String,
}

impl Peer {
    /// The peer at `ip`.
    pub(crate) fn new(ip: IpAddr) -> Peer {
        let text = ip.to_string();
        let forwarded_for = match ip {
            IpAddr::V4(_) => text.clone(),
            IpAddr::V6(_) => format!("\"[{text}]\""),
        };
        Peer {
            for_value: HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown")),
            forwarded_for,
        }
    }
}

/// Sends requests to the upstream.
pub(crate) struct Forwarder {
    upstream: Arc<Upstream>,
    response_timeout: Duration,
    forwarded: ForwardedHeaders,
    metrics: ProxyMetrics,
}

impl Forwarder {
    /// A forwarder for the `proxy {}` settings.
    pub(crate) fn new(config: &config::Proxy, metrics: ProxyMetrics) -> Forwarder {
        let parts = config.upstream.clone().into_parts();
        let authority = parts
            .authority
            .unwrap_or_else(|| Authority::from_static("127.0.0.1:80"));
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        Forwarder {
            upstream: Upstream::new(address, config.upstream_connect_timeout),
            response_timeout: config.upstream_response_timeout,
            forwarded: config.forwarded_headers,
            metrics,
        }
    }

    /// Forwards `request` from `peer` and returns what the client gets.
    pub(crate) async fn handle(
        &self,
        mut request: Request<Incoming>,
        peer: &Peer,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let upgrade = request.version() == Version::HTTP_11 && wants_upgrade(request.headers());
        let host = request_host(&request);
        let upgrade_header = upgrade
            .then(|| request.headers().get(header::UPGRADE).cloned())
            .flatten();
        strip_hop_by_hop(request.headers_mut());
        if let Some(value) = upgrade_header {
            request
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            request.headers_mut().insert(header::UPGRADE, value);
        }
        if let Some(host) = &host {
            // An HTTP/2 client sends :authority instead of Host; HTTP/1.1 needs Host.
            if !request.headers().contains_key(header::HOST) {
                request.headers_mut().insert(header::HOST, host.clone());
            }
        }
        self.add_forwarded(request.headers_mut(), peer, host.as_ref());
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        // Origin form (`/path?query`): the upstream is ours, it needs no absolute URI.
        *request.uri_mut() = Uri::from(path);
        *request.version_mut() = Version::HTTP_11;
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));

        let sent = self.upstream.send(request, upgrade);
        let response = match tokio::time::timeout(self.response_timeout, sent).await {
            Err(_) => {
                self.metrics.upstream_error("timeout");
                return self.finish(
                    started,
                    error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
                );
            }
            Ok(Err(err)) => {
                let (kind, text) = match err {
                    UpstreamError::Connect(_) => ("connect", "upstream refused the connection\n"),
                    UpstreamError::Request(_) => ("other", "upstream failed\n"),
                };
                self.metrics.upstream_error(kind);
                tracing::debug!(error = %err, kind, "upstream request failed");
                return self.finish(started, error(StatusCode::BAD_GATEWAY, text));
            }
            Ok(Ok(response)) => response,
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_upgrade) = client_upgrade {
                return self.finish(started, tunnel(response, client_upgrade));
            }
        }
        let mut response = response;
        strip_hop_by_hop(response.headers_mut());
        self.finish(started, response.map(Either::Left))
    }

    fn finish(&self, started: Instant, response: Response<ProxyBody>) -> Response<ProxyBody> {
        self.metrics.response(response.status());
        self.metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
        response
    }

    fn add_forwarded(&self, headers: &mut HeaderMap, peer: &Peer, host: Option<&HeaderValue>) {
        match self.forwarded {
            ForwardedHeaders::XForwarded => {
                let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                    Some(existing) => HeaderValue::from_str(&format!(
                        "{existing}, {}",
                        peer.for_value.to_str().unwrap_or("unknown")
                    ))
                    .unwrap_or_else(|_| peer.for_value.clone()),
                    None => peer.for_value.clone(),
                };
                headers.insert(X_FORWARDED_FOR, value);
                headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
                if let Some(host) = host {
                    headers.insert(X_FORWARDED_HOST, host.clone());
                }
            }
            ForwardedHeaders::Forwarded => {
                let mut element = format!("for={};proto=https", peer.forwarded_for);
                if let Some(host) = host.and_then(|h| h.to_str().ok()) {
                    element.push_str(&format!(";host=\"{host}\""));
                }
                let value = match headers.get(&FORWARDED).and_then(|v| v.to_str().ok()) {
                    Some(existing) => format!("{existing}, {element}"),
                    None => element,
                };
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(FORWARDED, value);
                }
            }
        }
    }
}

/// The host the client asked for: `:authority` (HTTP/2) or `Host`.
fn request_host(request: &Request<Incoming>) -> Option<HeaderValue> {
    match request.headers().get(header::HOST) {
        Some(host) => Some(host.clone()),
        None => request
            .uri()
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok()),
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
    tokio::spawn(async move {
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
    Response::from_parts(parts, Either::Right(Full::new(Bytes::new())))
}

/// A short plain-text error.
fn error(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
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
        let v4 = Peer::new("10.0.0.7".parse().unwrap());
        assert_eq!(
            (v4.for_value.to_str().unwrap(), v4.forwarded_for.as_str()),
            ("10.0.0.7", "10.0.0.7")
        );
        let v6 = Peer::new("::1".parse().unwrap());
        assert_eq!(v6.forwarded_for, "\"[::1]\"");
    }
}
