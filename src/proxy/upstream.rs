//! Keep-alive HTTP/1.1 connections to the upstream, one request at a time on each.
//!
//! A request takes the most recently used idle connection (so a few connections stay warm and
//! the rest age out), or opens one. The connection goes back to the pool when the response
//! body has been read to its end, never before: a connection still delivering a body cannot
//! carry another request. A connection the upstream closed while it sat idle is noticed at
//! checkout and dropped; a request that was not yet written to such a connection is sent again
//! on a fresh one. One written just as the upstream closed it (its keep-alive timeout running
//! out, Node's 5 s, gunicorn's 2 s) is sent again on a fresh connection when it can be: no body
//! and a method that may be repeated, as nginx passes such a request to its next try. The lock
//! is held for a push or a pop, never across I/O.
//!
//! Two kinds of connection, each with its pool: a request without a body and without an
//! upgrade (most of them) is written and answered in the request's own task ([`h1`]); one
//! with a body, or asking for an upgrade, goes through hyper's client, whose connection runs in
//! a task of its own.

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use prometheus::IntCounter;

use super::park::H1State;
use tokio::net::TcpStream;

mod h1;

use h1::{Conn, Decoder, Io, Piece};

/// How long a connection may sit idle in the pool before it is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections are kept.
pub(crate) const MAX_IDLE: usize = 1024;
/// A request sent on a connection idle this long is kept (head only) until it is answered, to
/// be sent again if the upstream closed the connection under it. A connection busier than this
/// is not being closed for idleness, so its requests are not copied.
const REPLAY_AFTER_IDLE: Duration = Duration::from_millis(200);
/// The largest request body (read ahead whole, nginx's `proxy_request_buffering`) sent by the
/// request's own task ([`h1`]): written with its head before the response is read, it must fit
/// in what the sockets take without the upstream reading (an upstream that answers early, a
/// 413, and does not read the body would otherwise hold the write up); larger ones go through
/// hyper's client, which reads the response while it writes.
const OWN_BODY_MOST: usize = 16 << 10;
/// An idle connection of [`h1`]'s pool this old is looked at, when one is returned, for
/// whether the upstream closed it.
const LOOK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The most header lines an upstream's response may have. nginx has no such count (its bound
/// is `proxy_buffer_size`, 4 KiB of them), and hyper's default, 100, made an app's response with
/// more a 502. Past 100, hyper takes the room for them from the heap for each response; 400
/// keeps each of its two arrays in the allocator's small sizes, served from its thread cache.
const MAX_RESPONSE_HEADERS: usize = 400;

type Sender = http1::SendRequest<RequestBody>;

/// Why the upstream did not answer.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection could be opened (refused, unreachable, name not resolved, timed out).
    Connect(std::io::Error),
    /// The connection failed while the request was sent or the response awaited.
    Request(hyper::Error),
    /// The same, on a connection of the request's own task ([`h1`]).
    Exchange(std::io::Error),
    /// The client's request body failed (malformed chunked framing, the client gone
    /// mid-upload), so the request to the upstream was abandoned: the client's fault.
    ClientBody(hyper::Error),
    /// The client's request body grew beyond `proxy.max_request_body`: the request to the
    /// upstream was abandoned before the body's end.
    BodyTooLarge,
}

impl UpstreamError {
    /// A failed exchange, told apart by whose body broke it.
    fn request(err: hyper::Error) -> UpstreamError {
        match std::error::Error::source(&err).and_then(|s| s.downcast_ref::<ClientBodyError>()) {
            Some(ClientBodyError::TooLarge) => UpstreamError::BodyTooLarge,
            Some(ClientBodyError::Failed(_)) => UpstreamError::ClientBody(err),
            None => UpstreamError::Request(err),
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(err) => write!(f, "cannot connect: {err}"),
            UpstreamError::Request(err) => write!(f, "{err}"),
            UpstreamError::Exchange(err) => write!(f, "{err}"),
            UpstreamError::ClientBody(err) => write!(f, "the client's request body: {err}"),
            UpstreamError::BodyTooLarge => f.write_str("the client's request body is too large"),
        }
    }
}

/// The upstream and its idle connections.
pub(crate) struct Upstream {
    address: String,
    connect_timeout: Duration,
    /// An `https://` upstream: how to speak TLS to it, and the name it is verified for.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
    idle: Mutex<VecDeque<(Sender, Instant)>>,
    /// The idle connections of requests without a body ([`h1`]).
    own_idle: Mutex<VecDeque<(Conn, Instant)>>,
    /// Counts the responses cut off mid-body (`upstream_errors_total{kind="body"}`).
    cut: IntCounter,
}

/// The upstream failures logged each second at most: one per failed request otherwise.
pub(crate) static FAILURE_LOG: crate::telemetry::LogBudget = crate::telemetry::LogBudget::new(10);

impl Upstream {
    /// An upstream at `address` (`HOST:PORT`), over TLS with `tls`; nothing is opened yet.
    /// `cut` counts its responses cut off mid-body.
    pub(crate) fn new(
        address: String,
        connect_timeout: Duration,
        tls: Option<(
            Arc<rustls::ClientConfig>,
            rustls_pki_types::ServerName<'static>,
        )>,
        cut: IntCounter,
    ) -> Arc<Upstream> {
        Arc::new(Upstream {
            address,
            connect_timeout,
            tls: tls.map(|(config, name)| (tokio_rustls::TlsConnector::from(config), name)),
            idle: Mutex::new(VecDeque::new()),
            own_idle: Mutex::new(VecDeque::new()),
            cut,
        })
    }

    /// `HOST:PORT`, as the logs name it.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` and returns the response, its body tied to the connection so the
    /// connection returns to the pool once the body is read. `upgrade` requests keep their
    /// connection: it becomes the tunnel.
    /// `read_timeout`: the longest pause in the response body (nginx's `proxy_read_timeout`
    /// between two reads), after which the body fails and the client's response is cut.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: http::Request<RequestBody>,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        if !upgrade
            && let Some(body) = request.body().whole()
            && (body.is_empty() || (body.len() <= OWN_BODY_MOST && announces(&request, body)))
        {
            return self.send_own(&request, body, read_timeout).await;
        }
        // A pooled connection the upstream closed a moment ago fails without writing the
        // request; then the request is still ours and goes out on a fresh connection.
        if let Some((mut sender, idle_for)) = self.checkout() {
            let replay = (!upgrade && idle_for >= REPLAY_AFTER_IDLE)
                .then(|| replayable(&request))
                .flatten();
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(response, sender, upgrade, read_timeout)),
                Err(mut err) => match (err.take_message(), replay) {
                    (Some(unsent), _) => request = unsent,
                    (None, Some(copy)) if closed_under(err.error()) => {
                        tracing::debug!(
                            error = %err.error(),
                            "the upstream closed an idle connection as a request went out on \
                             it: sending it again on a new one"
                        );
                        request = copy;
                    }
                    (None, _) => return Err(UpstreamError::request(err.into_error())),
                },
            }
        }
        // Boxed: a new connection's future (its TLS handshake above all) is most of this one's
        // size, and the whole of it is moved with the request through each layer that awaits
        // it: 3.5 of 4.3 KiB, for a path a kept-alive connection does not take.
        let mut sender = Box::pin(self.connect()).await?;
        match sender.send_request(request).await {
            Ok(response) => Ok(self.wrap(response, sender, upgrade, read_timeout)),
            Err(err) => Err(UpstreamError::request(err)),
        }
    }

    fn wrap(
        self: &Arc<Self>,
        response: http::Response<Incoming>,
        sender: Sender,
        upgrade: bool,
        read_timeout: Duration,
    ) -> http::Response<UpstreamBody> {
        let keep = !upgrade && response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        let mut slot = keep.then(|| (sender, self.clone()));
        if response.body().is_end_stream() {
            // No body (204, 304, HEAD, Content-Length: 0): the connection is free now.
            if let Some((sender, upstream)) = slot.take() {
                upstream.checkin(sender);
            }
        }
        response.map(|body| UpstreamBody {
            source: Source::Hyper { body, slot },
            read_timeout,
            stall: None,
        })
    }

    /// `request`, with `body` (read ahead whole: nothing more is to come from the client) and
    /// no upgrade, written by this task on a connection of its own ([`h1`]), its response read
    /// by this task as its body is polled. One sent on a pooled connection the upstream closed
    /// under it is sent again on a new one when its method may be repeated (not POST, PATCH or
    /// LOCK, as nginx).
    async fn send_own(
        self: &Arc<Self>,
        request: &http::Request<RequestBody>,
        body: &[u8],
        read_timeout: Duration,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        let mut pooled = self.checkout_own();
        loop {
            let mut conn = match pooled.take() {
                Some(conn) => conn,
                // Boxed, as in `send`: the path a kept-alive connection does not take.
                None => Conn::new(Box::pin(self.open()).await?),
            };
            match conn.exchange(request, body).await {
                Ok(head) => return Ok(self.own_response(conn, head, read_timeout)),
                // Only a pooled connection's failure is unanswered: a new one is not tried
                // twice.
                Err(failure) if failure.unanswered && repeatable(request.method()) => {
                    tracing::debug!(
                        error = %failure.error,
                        "the upstream closed an idle connection as a request went out on it: \
                         sending it again on a new one"
                    );
                }
                Err(failure) => return Err(UpstreamError::Exchange(failure.error)),
            }
        }
    }

    fn own_response(
        self: &Arc<Self>,
        mut conn: Conn,
        head: h1::Head,
        read_timeout: Duration,
    ) -> http::Response<UpstreamBody> {
        let h1::Head {
            response,
            mut decoder,
            keep_alive,
        } = head;
        // A body that came whole with its head (the common small answer) is taken now, and the
        // connection is free at once.
        let first = conn.take_whole(&mut decoder);
        let mut body = OwnBody {
            conn: Some(conn),
            decoder,
            keep_alive,
            first,
            upstream: self.clone(),
        };
        if body.decoder.is_done() {
            body.release();
        }
        response.map(|()| UpstreamBody {
            source: Source::Own(body),
            read_timeout,
            stall: None,
        })
    }

    /// The most recently used idle connection of [`h1`]'s that can take a request now.
    fn checkout_own(&self) -> Option<Conn> {
        loop {
            let (mut conn, since) = self
                .own_idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_back()?;
            // Looked at outside the lock: it may read the socket.
            if since.elapsed() < IDLE_TIMEOUT && conn.usable() {
                return Some(conn);
            }
        }
    }

    /// Back into [`h1`]'s pool. The oldest idle connection goes if it has aged out, the pool
    /// is full, or (looked at once it has been idle a while) the upstream closed it: hyper's
    /// connection task closes its connection when the upstream does; this pool notices one
    /// such connection at each return, so closed ones do not pile up until they age out.
    fn checkin_own(&self, mut conn: Conn) {
        conn.idle();
        let now = Instant::now();
        let mut idle = self.own_idle.lock().unwrap_or_else(PoisonError::into_inner);
        make_room(&mut idle, now, |oldest, idle_for| {
            idle_for >= LOOK_AFTER_IDLE && !oldest.usable()
        });
        idle.push_back((conn, now));
    }

    /// The most recently used idle connection that can take a request now, and how long it
    /// sat idle.
    fn checkout(&self) -> Option<(Sender, Duration)> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((sender, since)) = idle.pop_back() {
            let idle_for = since.elapsed();
            if sender.is_ready() && idle_for < IDLE_TIMEOUT {
                return Some((sender, idle_for));
            }
        }
        None
    }

    /// Back into the pool; the oldest idle connection goes if it has aged out or the pool is
    /// full. A connection not ready yet (its last response still being wound up) is given a
    /// moment in a task of its own.
    fn checkin(self: Arc<Self>, mut sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if !sender.is_ready() {
            tokio::spawn(async move {
                if let Ok(Ok(())) =
                    tokio::time::timeout(Duration::from_secs(5), sender.ready()).await
                {
                    self.push(sender);
                }
            });
            return;
        }
        self.push(sender);
    }

    fn push(&self, sender: Sender) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        make_room(&mut idle, now, |_, _| false);
        idle.push_back((sender, now));
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        start(self.open().await?).await
    }

    /// A new connection to the upstream, its TLS handshake done for an `https://` one.
    async fn open(&self) -> Result<Io, UpstreamError> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.address))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return Err(UpstreamError::Connect(err)),
                Err(_) => {
                    return Err(UpstreamError::Connect(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {:?}", self.connect_timeout),
                    )));
                }
            };
        let _ = stream.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return Ok(Io::Plain(stream));
        };
        // The handshake within the same time as the connection.
        let handshake = connector.connect(name.clone(), stream);
        match tokio::time::timeout(self.connect_timeout, handshake).await {
            Ok(Ok(stream)) => Ok(Io::Tls(Box::new(stream))),
            Ok(Err(err)) => Err(UpstreamError::Connect(err)),
            Err(_) => Err(UpstreamError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no TLS handshake within {:?}", self.connect_timeout),
            ))),
        }
    }
}

/// Drops the oldest idle connections while the pool is full, they have aged out, or `gone`
/// says so of one (given how long it has been idle), so that one more can be pushed.
fn make_room<T>(
    idle: &mut VecDeque<(T, Instant)>,
    now: Instant,
    mut gone: impl FnMut(&mut T, Duration) -> bool,
) {
    loop {
        let full = idle.len() >= MAX_IDLE;
        let Some((oldest, since)) = idle.front_mut() else {
            return;
        };
        let idle_for = now.duration_since(*since);
        if !(full || idle_for >= IDLE_TIMEOUT || gone(oldest, idle_for)) {
            return;
        }
        idle.pop_front();
    }
}

/// HTTP/1.1 on `stream`, its connection driven by a task of its own.
async fn start(stream: Io) -> Result<Sender, UpstreamError> {
    let (sender, connection) = http1::Builder::new()
        .max_headers(MAX_RESPONSE_HEADERS)
        // The request's header names go in title case (`Host`, `X-Forwarded-For`, the
        // client's own), as most clients and nginx write them. Keeping the exact case of
        // names (hyper's `preserve_header_case`, a map of names per message) cost 2 to 8 % of
        // keep-alive requests/s (`bench/compare-builds.sh`).
        .title_case_headers(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Request)?;
    // Not run in the role's span: entering and leaving it at each of the task's polls (two or
    // three a request) cost about 700 of a keep-alive request's 43,000 instructions
    // (`bench/profile.sh requests`). Its one line enters the span; nothing else logs here.
    let span = tracing::Span::current();
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            span.in_scope(|| {
                tracing::debug!(error = %err, "upstream connection ended with an error");
            });
        }
    });
    Ok(sender)
}

/// A copy of `request` to send again, when it has no body and a method that may be repeated
/// (not POST, PATCH or LOCK, the methods nginx never passes to a next try once sent).
fn replayable(request: &http::Request<RequestBody>) -> Option<http::Request<RequestBody>> {
    let method = request.method();
    if !repeatable(method) || !request.body().is_end_stream() {
        return None;
    }
    let mut copy = http::Request::new(RequestBody::new(
        None,
        request.body().failures.clone(),
        None,
        None,
        None,
    ));
    *copy.method_mut() = method.clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// Whether `request`'s one `Content-Length` is `body`'s length (a body read ahead whole is
/// given one; a body that ended past the most to read ahead is not, and goes as it came).
fn announces(request: &http::Request<RequestBody>, body: &[u8]) -> bool {
    let mut lengths = request
        .headers()
        .get_all(http::header::CONTENT_LENGTH)
        .iter();
    match (lengths.next(), lengths.next()) {
        (Some(length), None) => {
            length
                .to_str()
                .ok()
                .and_then(|length| length.parse::<usize>().ok())
                == Some(body.len())
        }
        _ => false,
    }
}

/// Whether a request with `method` may be sent again once it went out: not POST, PATCH or
/// LOCK, the methods nginx never passes to a next try once sent.
fn repeatable(method: &http::Method) -> bool {
    *method != http::Method::POST && *method != http::Method::PATCH && method.as_str() != "LOCK"
}

/// Whether `err` is the upstream closing the connection under a request (closed before any
/// answer, reset, or a broken pipe), as when its keep-alive timeout ran out as the request
/// went out.
fn closed_under(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return h1::closed_under(io);
        }
        source = cause.source();
    }
    false
}

/// A response body from the upstream; its connection returns to the pool at the body's end.
/// Dropped before the end, the connection is closed (it is mid-message).
pub(crate) struct UpstreamBody {
    source: Source,
    /// The longest pause allowed between two pieces of the body.
    read_timeout: Duration,
    /// Armed only once the body has to wait (a body that comes with its head never does), and
    /// whether a piece came since it was set.
    stall: Option<(Pin<Box<tokio::time::Sleep>>, bool)>,
}

/// Who reads the body: hyper's client, or this task ([`h1`]).
enum Source {
    Hyper {
        body: Incoming,
        slot: Option<(Sender, Arc<Upstream>)>,
    },
    Own(OwnBody),
}

/// A body read by the task that polls it, from a connection of [`h1`]'s.
struct OwnBody {
    /// Given back (or closed) once the body has been read.
    conn: Option<Conn>,
    decoder: Decoder,
    /// Whether the connection may take another request after this body.
    keep_alive: bool,
    /// The body, or its start, read with the head.
    first: Option<Bytes>,
    upstream: Arc<Upstream>,
}

impl OwnBody {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && !conn.has_extra()
        {
            self.upstream.checkin_own(conn);
        }
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        let piece = match ready!(conn.poll_body(&mut self.decoder, cx)) {
            Ok(piece) => piece,
            Err(err) => return Poll::Ready(Some(Err(err))),
        };
        match piece {
            Piece::Data(data) => {
                if self.decoder.is_done() {
                    self.release();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Piece::Trailers(trailers) => {
                self.release();
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Piece::End => {
                self.release();
                Poll::Ready(None)
            }
        }
    }
}

impl UpstreamBody {
    fn release(&mut self) {
        match &mut self.source {
            Source::Hyper { slot, .. } => {
                if let Some((sender, upstream)) = slot.take() {
                    upstream.checkin(sender);
                }
            }
            Source::Own(own) => own.release(),
        }
    }

    /// The body failed mid-way: its connection is dropped, the failure counted and logged
    /// (nginx logs "upstream prematurely closed connection while reading upstream").
    fn cut(&mut self, error: &UpstreamBodyError) {
        let upstream = match &mut self.source {
            Source::Hyper { slot, .. } => match slot.take() {
                Some((_, upstream)) => upstream,
                None => return,
            },
            Source::Own(own) => {
                if own.conn.take().is_none() {
                    return;
                }
                own.upstream.clone()
            }
        };
        upstream.cut.inc();
        if let Some(held_back) = FAILURE_LOG.take() {
            tracing::warn!(
                upstream = upstream.address(),
                %error,
                held_back,
                "the upstream's response broke off: the response to the client is cut"
            );
        }
    }

    fn poll_source(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        match &mut self.source {
            Source::Hyper { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|err| UpstreamBodyError::Failed(Box::new(err))),
            Source::Own(own) => own
                .poll_frame(cx)
                .map_err(|err| UpstreamBodyError::Failed(Box::new(err))),
        }
    }
}

/// Why a response body from the upstream failed.
#[derive(Debug)]
pub(crate) enum UpstreamBodyError {
    /// The connection failed mid-body, or the body was not framed as its head said.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// No piece of the body came for the read timeout.
    Stalled(Duration),
}

impl std::fmt::Display for UpstreamBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamBodyError::Failed(err) => write!(f, "upstream response body: {err}"),
            UpstreamBodyError::Stalled(timeout) => write!(
                f,
                "upstream response body: nothing came for {} s (upstream_response_timeout)",
                timeout.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for UpstreamBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamBodyError::Failed(err) => Some(&**err),
            UpstreamBodyError::Stalled(_) => None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        let frame = match self.poll_source(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // nginx's `proxy_read_timeout` between two reads: the timer is set when the
                // body first waits, and set again when it waits after a piece came.
                let timeout = self.read_timeout;
                match &mut self.stall {
                    None => self.stall = Some((Box::pin(tokio::time::sleep(timeout)), false)),
                    Some((sleep, moved)) if *moved => {
                        sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
                        *moved = false;
                    }
                    Some(_) => {}
                }
                if let Some((sleep, _)) = &mut self.stall {
                    ready!(sleep.as_mut().poll(cx));
                }
                let error = UpstreamBodyError::Stalled(timeout);
                self.cut(&error);
                return Poll::Ready(Some(Err(error)));
            }
        };
        if let Some((_, moved)) = &mut self.stall {
            *moved = true;
        }
        match frame {
            None => {
                self.release();
                Poll::Ready(None)
            }
            Some(Ok(frame)) => {
                if self.is_end_stream() {
                    self.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                self.cut(&error);
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Hyper { body, .. } => body.is_end_stream(),
            Source::Own(own) => own.first.is_none() && own.decoder.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Hyper { body, .. } => body.size_hint(),
            Source::Own(own) => {
                let first = own.first.as_ref().map_or(0, |first| first.len() as u64);
                match own.decoder.exact() {
                    Some(left) => SizeHint::with_exact(first + left),
                    None => {
                        let mut hint = SizeHint::new();
                        hint.set_lower(first);
                        hint
                    }
                }
            }
        }
    }
}

/// The client's request body on its way to the upstream. Its failure is counted once, as the
/// client's, and carries [`ClientBodyError`] so that the failed exchange is not taken for the
/// upstream's.
pub(crate) struct RequestBody {
    /// Taken when the body passes the limit: it is then read and dropped ([`discard`]).
    body: Option<Incoming>,
    failures: IntCounter,
    /// Told when the body has been read to its end (HTTP/1: the connection may then be parked).
    h1: Option<Arc<H1State>>,
    /// `proxy.max_request_body`: the bytes still allowed, and what counts a body that exceeds
    /// them.
    limit: Option<(u64, IntCounter)>,
    /// Told of the body's progress, when there is a body.
    progress: Option<Arc<BodyProgress>>,
    /// What [`RequestBody::hold`] read, sent before the rest.
    held: Bytes,
}

/// How [`RequestBody::hold`] ended.
pub(crate) enum Held {
    /// The whole body, of this many bytes: it can be sent with a `Content-Length`.
    Whole(u64),
    /// Its first bytes, more than the most to hold: the rest follows as it comes.
    Start,
    /// The client's pause was longer than allowed.
    Paused,
    /// The body failed: [`ClientBodyError`] says how (counted where it failed).
    Failed(ClientBodyError),
}

/// How far a request body has gone to the upstream: when it last moved, whether it ended, and
/// whether it is waiting for the client. The response timeout runs from the body's end (as
/// nginx's `proxy_read_timeout` starts once the request is sent), and while the body flows, a
/// pause as long waiting for the client is the client's (408, nginx's `client_body_timeout`),
/// one waiting for the upstream to read it the upstream's (504).
pub(crate) struct BodyProgress {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last frame passed on.
    moved: std::sync::atomic::AtomicU64,
    /// Milliseconds since `epoch` of its end, `u64::MAX` before.
    ended: std::sync::atomic::AtomicU64,
    /// The upstream's writer asked for more and the client has not sent it yet.
    waiting_on_client: std::sync::atomic::AtomicBool,
}

/// Whose pause ran out the time ([`BodyProgress::wait`]).
pub(crate) enum Stalled {
    /// The upstream: no response within the timeout of the body's end, or it stopped reading.
    Upstream,
    /// The client: its body paused that long.
    Client,
}

impl BodyProgress {
    pub(crate) fn new() -> BodyProgress {
        BodyProgress {
            epoch: Instant::now(),
            moved: std::sync::atomic::AtomicU64::new(0),
            ended: std::sync::atomic::AtomicU64::new(u64::MAX),
            waiting_on_client: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.epoch + Duration::from_millis(millis)
    }

    /// `sent`'s outcome (the upstream's response), or whose pause ran out first: the
    /// upstream's `timeout`, or the client's `body_timeout` while the body waits on it.
    pub(crate) async fn wait<F: std::future::Future>(
        &self,
        sent: F,
        timeout: Duration,
        body_timeout: Duration,
    ) -> Result<F::Output, Stalled> {
        use std::sync::atomic::Ordering::Relaxed;
        tokio::pin!(sent);
        loop {
            let ended = self.ended.load(Relaxed);
            let (since, stalled, allowed) = if ended == u64::MAX {
                let client = self.waiting_on_client.load(Relaxed);
                let moved = self.moved.load(Relaxed);
                if client {
                    (moved, Stalled::Client, body_timeout)
                } else {
                    (moved, Stalled::Upstream, timeout)
                }
            } else {
                (ended, Stalled::Upstream, timeout)
            };
            let deadline = self.at(since) + allowed;
            if Instant::now() >= deadline {
                return Err(stalled);
            }
            tokio::select! {
                out = &mut sent => return Ok(out),
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }
}

impl RequestBody {
    /// `body`, whose failure increments `failures` and whose end is reported to `h1`; with
    /// `limit`, a body longer than its bytes fails there (counted by its counter).
    pub(crate) fn new(
        body: Option<Incoming>,
        failures: IntCounter,
        h1: Option<Arc<H1State>>,
        limit: Option<(u64, IntCounter)>,
        progress: Option<Arc<BodyProgress>>,
    ) -> RequestBody {
        RequestBody {
            body,
            failures,
            h1,
            limit,
            progress,
            held: Bytes::new(),
        }
    }

    /// The whole body when nothing more is to come from the client: none (empty), or all of
    /// it read ahead ([`RequestBody::hold`]).
    pub(crate) fn whole(&self) -> Option<&Bytes> {
        self.body
            .as_ref()
            .is_none_or(Incoming::is_end_stream)
            .then_some(&self.held)
    }

    /// Whether the body is to be held before it is sent, as nginx's `proxy_request_buffering`
    /// would hold it, within `most` bytes: one of unknown length (chunked, or an HTTP/2 stream
    /// without `content-length`), or one announced no longer than `most`. A longer announced
    /// one is streamed: the app gets its length anyway.
    pub(crate) fn to_hold(&self, most: u64) -> bool {
        !self.is_end_stream() && self.size_hint().exact().is_none_or(|length| length <= most)
    }

    /// Reads the body ahead, before anything is sent, as nginx's `proxy_request_buffering`:
    /// to its end if it has at most `most` bytes, else until it passes them. A frame is
    /// awaited for at most `pause`. Trailers are dropped, as nginx drops them.
    pub(crate) async fn hold(&mut self, most: u64, pause: Duration) -> Held {
        // Room for an announced length at once, up to 64 KiB: beyond, memory grows with the
        // bytes that come, not with what a client announces and never sends.
        let announced = self
            .size_hint()
            .exact()
            .map_or(0, |length| length.min(64 << 10));
        let mut held = bytes::BytesMut::with_capacity(usize::try_from(announced).unwrap_or(0));
        loop {
            let frame = std::future::poll_fn(|cx| self.poll_client(cx));
            match tokio::time::timeout(pause, frame).await {
                Err(_) => return Held::Paused,
                Ok(None) => break,
                Ok(Some(Err(err))) => return Held::Failed(err),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        held.extend_from_slice(&data);
                    }
                    if held.len() as u64 > most {
                        self.held = held.freeze();
                        return Held::Start;
                    }
                }
            }
            if self.body.as_ref().is_none_or(Incoming::is_end_stream) {
                break;
            }
        }
        self.held = held.freeze();
        Held::Whole(self.held.len() as u64)
    }

    /// The next frame from the client, its limit, failure and progress accounted for.
    fn poll_client(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending => {
                if let Some(progress) = &self.progress {
                    progress
                        .waiting_on_client
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                return Poll::Pending;
            }
            Poll::Ready(polled) => polled,
        };
        let ended = polled.is_none() || body.is_end_stream();
        if let Some(progress) = &self.progress {
            use std::sync::atomic::Ordering::Relaxed;
            progress.waiting_on_client.store(false, Relaxed);
            let now = progress.now();
            progress.moved.store(now, Relaxed);
            if ended {
                progress.ended.store(now, Relaxed);
            }
        }
        if let (Some(h1), true) = (&self.h1, ended) {
            // The upstream's client stops polling once `is_end_stream` says so.
            h1.body_ended();
        }
        match polled {
            Some(Err(err)) => {
                self.failures.inc();
                Poll::Ready(Some(Err(ClientBodyError::Failed(err))))
            }
            Some(Ok(frame)) => {
                if let (Some((remaining, too_large)), Some(data)) =
                    (&mut self.limit, frame.data_ref())
                {
                    let length = data.len() as u64;
                    if length > *remaining {
                        too_large.inc();
                        if let Some(body) = self.body.take().filter(|_| !ended) {
                            discard(body, self.h1.clone());
                        }
                        return Poll::Ready(Some(Err(ClientBodyError::TooLarge)));
                    }
                    *remaining -= length;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            None => Poll::Ready(None),
        }
    }
}

/// Why a client's request body ended early.
#[derive(Debug)]
pub(crate) enum ClientBodyError {
    /// Malformed framing, or the client gone mid-upload.
    Failed(hyper::Error),
    /// Longer than `proxy.max_request_body`.
    TooLarge,
}

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientBodyError::Failed(err) => write!(f, "request body from the client: {err}"),
            ClientBodyError::TooLarge => {
                f.write_str("request body from the client: longer than proxy.max_request_body")
            }
        }
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientBodyError::Failed(err) => Some(err),
            ClientBodyError::TooLarge => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        self.poll_client(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.body.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.held.len() as u64;
        match self.body.as_ref().filter(|body| !body.is_end_stream()) {
            None => SizeHint::with_exact(held),
            Some(body) => {
                let rest = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + held);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + held);
                }
                hint
            }
        }
    }
}

/// How long the proxy goes on reading a request body it answered before reading it all.
const DISCARD_TIME: Duration = Duration::from_secs(5);

/// Reads `body` to its end and drops it, for at most [`DISCARD_TIME`], in a task of its own: a
/// request answered early (413, a fixed response) whose client is still sending. Dropped at
/// once, the body would make HTTP/2 reset the stream, and HTTP/1 close the connection with
/// bytes unread (a TCP reset), either of which can reach the client before the answer does;
/// nginx reads and drops such a body too. Read to its end, an HTTP/1 connection stays open.
pub(crate) fn discard(mut body: Incoming, h1: Option<Arc<H1State>>) {
    tokio::spawn(async move {
        let drained = async {
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                if frame.is_err() {
                    return;
                }
            }
            if let Some(h1) = &h1 {
                h1.body_ended();
            }
        };
        let _ = tokio::time::timeout(DISCARD_TIME, drained).await;
    });
}
