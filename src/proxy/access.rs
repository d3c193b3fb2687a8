//! The proxy's access log (`proxy.access_log`): one line per request, through tracing with
//! the target `pki_sidecar::access`, so it has the text or JSON format of every other line.
//!
//! The line is written when the response body is dropped: after its last byte went out, or
//! when the client went away mid-body; `bytes` counts the body bytes handed to the connection.
//! With the access log off, the response body is [`AccessBody`] with no record: no
//! allocation, no formatting, one branch per body frame.
//!
//! The path is logged without its query string, which may carry credentials.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use hyper::body::{Body, Frame, SizeHint};

use super::InFlight;
use super::concurrency::Held;
use super::forward::ProxyBody;
use super::gzip::Encoder;
use super::park::OpenResponse;
use super::stream_stall;
use crate::tls::stream::ServerTls;

/// The tracing target of access lines: `@module` `access` in JSON; a filter can name it
/// (`RUST_LOG=info,pki_sidecar::access=off`).
pub(crate) const TARGET: &str = "pki_sidecar::access";

/// What one TLS connection tells every request on it: taken once, after the handshake.
pub(crate) struct ConnectionInfo {
    /// The client's address and port.
    pub client: SocketAddr,
    /// `TLSv1.3`, `TLSv1.2`.
    pub tls_version: &'static str,
    /// The server name the client asked for (SNI), or empty.
    pub sni: Box<str>,
}

/// The connection's TLS version as nginx's `$ssl_protocol` names it.
pub(crate) fn tls_version(connection: &ServerTls) -> &'static str {
    match connection.session().protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(_) => "other",
        None => "",
    }
}

impl ConnectionInfo {
    /// The details of `connection` from `client`.
    pub(crate) fn new(client: SocketAddr, connection: &ServerTls) -> ConnectionInfo {
        ConnectionInfo {
            client,
            tls_version: tls_version(connection),
            sni: connection.server_name().unwrap_or_default().into(),
        }
    }
}

/// One request's record, filled as it is served and written when its body is dropped.
pub(crate) struct Record {
    pub connection: Arc<ConnectionInfo>,
    pub method: Method,
    /// The path, without the query.
    pub path: Box<str>,
    pub status: u16,
    pub started: Instant,
    /// From forwarding the request to the upstream's response headers; none when the
    /// upstream gave no answer (or the proxy answered itself).
    pub upstream: Option<Duration>,
    /// Body bytes sent so far.
    pub bytes: u64,
}

impl Record {
    /// Writes the line.
    fn log(&self) {
        let upstream_ms = self.upstream.map(crate::timefmt::log_millis);
        tracing::info!(
            target: TARGET,
            method = %self.method,
            path = &*self.path,
            status = self.status,
            bytes = self.bytes,
            duration_ms = crate::timefmt::log_millis(self.started.elapsed()),
            upstream_ms,
            tls_version = self.connection.tls_version,
            sni = &*self.connection.sni,
            client = %self.connection.client,
            "request"
        );
    }
}

/// The proxy's response body: the forwarded one, compressed when `proxy.gzip` says so,
/// counting the bytes sent when a record is kept.
pub(crate) struct AccessBody {
    inner: ProxyBody,
    record: Option<Box<Record>>,
    gzip: Option<Box<Compressing>>,
    /// An HTTP/1 response being written: the connection is not parked before it ends.
    _open: Option<OpenResponse>,
    /// The request's place in `concurrency_limits`, given back when the response ends.
    _held: Option<Arc<Held>>,
    /// The request counts as in flight on its connection until its response ends: the
    /// connection's `idle_timeout` starts then, as nginx's `keepalive_timeout`.
    _in_flight: InFlight,
    /// An HTTP/2 stream's data not given yet (see [`stream_stall::SLICE`]).
    rest: Option<Bytes>,
}

/// A body being compressed.
struct Compressing {
    encoder: Box<Encoder>,
    /// The gzip trailer is sent.
    finished: bool,
    /// The trailers that came after the last data, sent after the gzip trailer.
    trailers: Option<Frame<Bytes>>,
}

impl AccessBody {
    /// `inner`, compressed with `gzip` when given, logged at its end when `record` is given;
    /// `open`, `held` and `in_flight` end with it.
    pub(super) fn new(
        inner: ProxyBody,
        record: Option<Box<Record>>,
        open: Option<OpenResponse>,
        gzip: Option<Box<Encoder>>,
        held: Option<Arc<Held>>,
        in_flight: InFlight,
    ) -> AccessBody {
        AccessBody {
            inner,
            record,
            gzip: gzip.map(|encoder| {
                Box::new(Compressing {
                    encoder,
                    finished: false,
                    trailers: None,
                })
            }),
            _open: open,
            _held: held,
            _in_flight: in_flight,
            rest: None,
        }
    }

    /// The next frame of the compressed body.
    fn poll_compressed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, <ProxyBody as Body>::Error>>> {
        let Some(gzip) = self.gzip.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            if gzip.finished {
                return Poll::Ready(gzip.trailers.take().map(Ok));
            }
            let data = match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => gzip.encoder.compress(&data),
                    Err(trailers) => {
                        gzip.trailers = Some(trailers);
                        gzip.finished = true;
                        gzip.encoder.finish()
                    }
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => {
                    gzip.finished = true;
                    gzip.encoder.finish()
                }
            };
            if data.is_empty() {
                continue;
            }
            if let Some(record) = self.record.as_mut() {
                record.bytes += data.len() as u64;
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }
}

impl Body for AccessBody {
    type Data = Bytes;
    type Error = <ProxyBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = if let Some(rest) = this.rest.take() {
            Poll::Ready(Some(Ok(Frame::data(rest))))
        } else if this.gzip.is_some() {
            this.poll_compressed(cx)
        } else {
            let polled = Pin::new(&mut this.inner).poll_frame(cx);
            if let (Some(record), Poll::Ready(Some(Ok(frame)))) = (this.record.as_mut(), &polled)
                && let Some(data) = frame.data_ref()
            {
                record.bytes += data.len() as u64;
            }
            polled
        };
        // An HTTP/2 stream's wait for its client is timed from what its body gives.
        stream_stall::note_frame(polled, &mut this.rest)
    }

    fn is_end_stream(&self) -> bool {
        if self.rest.is_some() {
            return false;
        }
        match &self.gzip {
            Some(gzip) => gzip.finished && gzip.trailers.is_none(),
            None => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.gzip.is_some() {
            return SizeHint::default();
        }
        let mut hint = self.inner.size_hint();
        if let Some(rest) = &self.rest {
            let rest = rest.len() as u64;
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper + rest);
            }
            hint.set_lower(hint.lower() + rest);
        }
        hint
    }
}

impl Drop for AccessBody {
    fn drop(&mut self) {
        if let Some(record) = &self.record {
            record.log();
        }
    }
}
