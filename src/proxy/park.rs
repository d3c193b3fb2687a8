//! HTTP/1.1 connections that hold no HTTP buffers while they wait for their next request.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for the whole life of an HTTP/1
//! connection, with no setting to release them. A keep-alive connection spends most of its life
//! waiting, so once it has been quiet for [`PARK_AFTER`] with nothing in flight, the connection is
//! *parked*: hyper's connection is closed gracefully, except that the TLS stream is kept rather
//! than shut down ([`ParkIo`]), and hyper hands back the stream, its service and any bytes it had
//! read but not parsed yet. While parked, the connection is the TLS stream (which releases its
//! own buffers while it waits: [`crate::tls::stream`]), the service and a few counters: it waits
//! for the socket to be readable, then a new hyper connection starts on the same stream,
//! replaying the unparsed bytes first. HTTP itself — parsing, limits, bodies,
//! pipelining, `Expect: 100-continue`, upgrades, the answers to bad requests — stays hyper's.
//!
//! A connection is parked only when hyper is between messages: every response written and
//! flushed, and the last request's body read to its end (hyper asked to close in the middle of a
//! message would end the connection after it, not park it). While parked, shutdown and
//! `idle_timeout` close the connection with a TLS close_notify, as hyper would have.
//! Nothing here does file I/O or takes a lock.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::tls::stream::ServerTls;

use super::{Activity, ConnectionShared};

/// How long an HTTP/1 connection stays quiet, nothing in flight, before it is parked. Long enough
/// that a busy connection (a client sending its next request at once) keeps its hyper
/// connection, short against the seconds a keep-alive connection typically waits.
pub(super) const PARK_AFTER: Duration = Duration::from_millis(100);

/// The longest wait between two looks at a connection whose message stays open (see
/// `ConnectionShared::check_when_quiet`).
const OPEN_CHECK_MOST: Duration = Duration::from_millis(3200);

/// How long closing a parked connection may take (the TLS close_notify and the TCP FIN).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What an HTTP/1 connection's service and its I/O tell the connection task about hyper's
/// state. One connection's requests run one after another on its own task; the atomics are
/// there because the service must be `Send + Sync`, not for contention.
#[derive(Default)]
pub(crate) struct H1State {
    /// Responses not written in full: counted when the service is called, uncounted when hyper
    /// drops the response body (at its end) or the service's future.
    open_responses: AtomicUsize,
    /// Whether the last request's body has not been read to its end yet.
    body_open: AtomicBool,
    /// Whether a response ended after hyper last flushed its output (hyper flushes the I/O only
    /// once its own buffer is empty).
    unflushed: AtomicBool,
    /// Set while the connection is being parked: the I/O's shutdown keeps the stream.
    parking: AtomicBool,
    /// Whether the current hyper connection has read any bytes.
    read_any: AtomicBool,
    /// Whether the last request asked for the connection to close after its response
    /// ([`asks_to_close`]): hyper shuts the connection down as soon as that response is
    /// flushed.
    closing: AtomicBool,
}

impl H1State {
    /// A request starts: its response is open until the returned guard drops; its body is open
    /// unless `body_ended` (a request without one); `closes` when it asked for the connection
    /// to close after its response ([`asks_to_close`]).
    pub(crate) fn request(self: &Arc<Self>, body_ended: bool, closes: bool) -> OpenResponse {
        self.body_open.store(!body_ended, Ordering::Relaxed);
        self.closing.store(closes, Ordering::Relaxed);
        self.open_responses.fetch_add(1, Ordering::Relaxed);
        OpenResponse(self.clone())
    }

    /// The current request's body was read to its end.
    pub(crate) fn body_ended(&self) {
        self.body_open.store(false, Ordering::Relaxed);
    }

    /// Whether hyper is between messages with everything written: it may be parked.
    fn between_messages(&self) -> bool {
        self.open_responses.load(Ordering::Relaxed) == 0
            && !self.body_open.load(Ordering::Relaxed)
            && !self.unflushed.load(Ordering::Relaxed)
    }

    /// Whether hyper's next step is to shut the connection down: the client asked to close,
    /// and the response has ended and the request's body been read. hyper flushes, then shuts
    /// down; that flush may be left to the shutdown.
    fn closes_now(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
            && self.open_responses.load(Ordering::Relaxed) == 0
            && !self.body_open.load(Ordering::Relaxed)
    }
}

/// Whether `request` asks for its connection to close after the response: `Connection: close`,
/// or HTTP/1.0 without `Connection: keep-alive` (hyper closes after such a response). Not an
/// upgrade, whose stream goes on as a tunnel; nor a request with an `Upgrade` header whatever
/// `Connection` says: hyper then ends the connection by handing its stream over rather than by
/// shutting it down, so its last response must not wait for a shutdown to be sent.
pub(crate) fn asks_to_close<B>(request: &http::Request<B>) -> bool {
    let has = |token: &str| {
        request
            .headers()
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    };
    if has("upgrade") || request.headers().contains_key(http::header::UPGRADE) {
        false
    } else if request.version() == http::Version::HTTP_10 {
        !has("keep-alive")
    } else {
        has("close")
    }
}

/// A response being written; dropped with its body.
pub(crate) struct OpenResponse(Arc<H1State>);

impl Drop for OpenResponse {
    fn drop(&mut self) {
        self.0.unflushed.store(true, Ordering::Relaxed);
        self.0.open_responses.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The TLS stream as hyper's HTTP/1 connection sees it: bytes hyper had read before it was
/// parked come first; a flush is reported to [`H1State`]; and while parking, a shutdown keeps
/// the stream open for the next hyper connection.
pub(super) struct ParkIo {
    stream: Box<ServerTls>,
    replay: Bytes,
    state: Arc<H1State>,
    /// Set when a shutdown was skipped because the connection is being parked.
    kept: bool,
}

impl ParkIo {
    fn before_write(&mut self) {
        // hyper writes nothing while it closes an idle connection; if it ever does, the
        // connection is not in a state to keep.
        self.state.parking.store(false, Ordering::Relaxed);
        // A connection that closes after this response sends at hyper's flushes only, so that
        // the last one can be left to the shutdown (see `poll_flush`).
        let closing = self.state.closing.load(Ordering::Relaxed);
        self.stream.defer_sending(closing);
    }
}

impl AsyncRead for ParkIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay[..n]);
            self.replay.advance(n);
            self.state.read_any.store(true, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut *self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.state.read_any.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ParkIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.before_write();
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.before_write();
        Pin::new(&mut *self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The last response of a connection the client asked to close: hyper shuts the stream
        // down right after this flush, and the shutdown sends the response with close_notify,
        // one `sendto` and one packet fewer. Should hyper read instead, the stream sends what
        // it holds before it waits.
        if self.state.closes_now() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut *self.stream).poll_flush(cx))?;
        self.state.unflushed.store(false, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.parking.load(Ordering::Relaxed) {
            self.kept = true;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}

/// How a hyper connection ended.
enum Ended<S> {
    /// Closed (or upgraded: the tunnel owns the stream now).
    Closed,
    /// Parked: the stream, the service, and bytes read but not parsed.
    Parked(Box<ServerTls>, S, Bytes),
}

impl ConnectionShared {
    /// Serves HTTP/1.1 on `tls` with `service` until the connection ends, parking it whenever it
    /// waits for a request.
    pub(super) async fn serve_http1<S>(
        &self,
        tls: Box<ServerTls>,
        service: S,
        state: Arc<H1State>,
        activity: Arc<Activity>,
        peer: SocketAddr,
    ) where
        S: HttpService<Incoming, ResBody = super::access::AccessBody> + Unpin + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut tls = tls;
        let mut service = service;
        let mut replay = Bytes::new();
        loop {
            match self
                .drive_http1(tls, service, replay, &state, &activity, peer)
                .await
            {
                Ended::Closed => return,
                Ended::Parked(parked, parked_service, unparsed) => {
                    service = parked_service;
                    replay = unparsed;
                    tls = parked;
                }
            }
            if replay.is_empty() {
                let _parked = ParkedGuard::new(&self.metrics.connections_parked);
                match self.wait_parked(&mut tls, &activity).await {
                    Wake::Readable => {}
                    Wake::Close => {
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, tls.shutdown()).await;
                        return;
                    }
                }
            }
        }
    }

    /// Runs one hyper connection on `tls` until it ends or is parked.
    async fn drive_http1<S>(
        &self,
        tls: Box<ServerTls>,
        service: S,
        replay: Bytes,
        state: &Arc<H1State>,
        activity: &Activity,
        peer: SocketAddr,
    ) -> Ended<S>
    where
        S: HttpService<Incoming, ResBody = super::access::AccessBody> + Unpin + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        state.parking.store(false, Ordering::Relaxed);
        state.read_any.store(false, Ordering::Relaxed);
        let requests_before = activity.requests.load(Ordering::Relaxed);
        let io = ParkIo {
            stream: tls,
            replay,
            state: state.clone(),
            kept: false,
        };
        // Boxed: hyper's connection (its state machine and buffers' headers) lives only while the
        // connection is served, not in the task while it is parked.
        let mut connection = Box::new(
            self.http1
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades(),
        );
        let mut closing = false;
        let mut parking = false;
        // Looks in a row that found a message still open.
        let mut open_checks = 0;
        loop {
            let mut check = std::pin::pin!(None);
            tokio::select! {
                // The connection first: a request that ends does so inside its poll, and the
                // check below must see that in the same wake-up.
                biased;
                result = Pin::new(&mut *connection) => {
                    if let Err(err) = result {
                        self.ended_with(peer, &err);
                        return Ended::Closed;
                    }
                    if !parking {
                        return Ended::Closed;
                    }
                    // `None`: upgraded, the tunnel has the stream.
                    let Some(parts) = connection.into_parts() else {
                        return Ended::Closed;
                    };
                    let io = parts.io.into_inner();
                    if !io.kept {
                        return Ended::Closed;
                    }
                    let unparsed = join(parts.read_buf, io.replay);
                    return Ended::Parked(io.stream, parts.service, unparsed);
                }
                () = self.shutdown.cancelled(), if !closing => {
                    // In-flight requests finish; an idle keep-alive connection closes now.
                    state.parking.store(false, Ordering::Relaxed);
                    Pin::new(&mut *connection).graceful_shutdown();
                    closing = true;
                }
                () = self.check_when_quiet(check.as_mut(), activity, state, open_checks), if !closing => {
                    open_checks = if state.between_messages() { 0 } else { open_checks + 1 };
                    if activity.is_idle(self.idle_timeout) {
                        state.parking.store(false, Ordering::Relaxed);
                        Pin::new(&mut *connection).graceful_shutdown();
                        closing = true;
                    } else if activity.is_idle(PARK_AFTER)
                        && state.between_messages()
                        && (!state.read_any.load(Ordering::Relaxed)
                            || activity.requests.load(Ordering::Relaxed) > requests_before)
                    {
                        // Not while a new hyper connection holds the start of its first request
                        // (a client sending its head slowly): hyper would not close then, only
                        // stop keeping the connection alive; and its `header_read_timeout`, which
                        // must cut such a client, restarts with each hyper connection. After a
                        // first request hyper closes whatever it holds, and hands that back.
                        // hyper closes an idle connection at once, writing nothing; the I/O
                        // keeps the stream when hyper shuts it down.
                        state.parking.store(true, Ordering::Relaxed);
                        Pin::new(&mut *connection).graceful_shutdown();
                        closing = true;
                        parking = true;
                    }
                }
            }
        }
    }

    /// Ready when it is time to look whether the connection is idle or may be parked. The timer
    /// is set only once no request is in flight: neither can happen before, and a connection
    /// whose one request ends it (`Connection: close`) then sets no timer at all. That spares
    /// each such connection a system call and a wake-up: a timer earlier than any the runtime
    /// holds makes tokio wake its driver (a write to an eventfd, then an `epoll_wait` that
    /// returns at once).
    ///
    /// While a message stays open (a response being written, a request body read), each look
    /// that finds it so (`open_checks` in a row) doubles the wait before the next, up to
    /// [`OPEN_CHECK_MOST`]: an event stream open for hours wakes its connection once every few
    /// seconds, not twenty times a second. When the message ends (inside the connection's poll,
    /// which comes first in the same wake-up), the look comes back to its usual time.
    fn check_when_quiet<'a>(
        &self,
        mut timer: Pin<&'a mut Option<tokio::time::Sleep>>,
        activity: &'a Activity,
        state: &'a H1State,
        open_checks: u32,
    ) -> impl Future<Output = ()> + 'a {
        let idle_timeout = self.idle_timeout;
        let mut backed_off = false;
        std::future::poll_fn(move |cx| {
            match timer.as_mut().as_pin_mut() {
                None => {
                    if activity.in_flight() {
                        // The request ends inside the connection's poll, which comes first in
                        // the same wake-up (`biased`): no waker is needed here.
                        return Poll::Pending;
                    }
                    backed_off = open_checks > 0 && !state.between_messages();
                    let wait = if backed_off {
                        (PARK_AFTER / 2 * 2u32.pow(open_checks.min(8))).min(OPEN_CHECK_MOST)
                    } else {
                        PARK_AFTER / 2
                    };
                    timer.set(Some(tokio::time::sleep_until(
                        Self::next_check(activity, idle_timeout, wait).into(),
                    )));
                }
                Some(sleep) if backed_off && state.between_messages() => {
                    backed_off = false;
                    let usual = Self::next_check(activity, idle_timeout, PARK_AFTER / 2);
                    if usual < sleep.deadline().into_std() {
                        sleep.reset(usual.into());
                    }
                }
                Some(_) => {}
            }
            timer
                .as_mut()
                .as_pin_mut()
                .map_or(Poll::Pending, |sleep| sleep.poll(cx))
        })
    }

    /// When to look next with no request in flight: at the idle deadline, or one PARK_AFTER
    /// after the last request, but never sooner than `wait` from now (a deadline already past
    /// would spin).
    fn next_check(activity: &Activity, idle_timeout: Duration, wait: Duration) -> Instant {
        let park_check = activity.next_check(PARK_AFTER).max(Instant::now() + wait);
        activity.next_check(idle_timeout).min(park_check)
    }

    /// Waits, holding no HTTP state, until the parked connection has something to read, or
    /// must close (shutdown, `idle_timeout`, a TLS error).
    async fn wait_parked(&self, tls: &mut ServerTls, activity: &Activity) -> Wake {
        // The stream may hold plaintext hyper did not read, or the peer's close_notify; the
        // socket will not tell about those.
        if tls.has_buffered_input() {
            return Wake::Readable;
        }
        if tls.wants_write() && tls.send_all().await.is_err() {
            return Wake::Close;
        }
        loop {
            let deadline = activity.next_check(self.idle_timeout);
            tokio::select! {
                () = self.shutdown.cancelled() => return Wake::Close,
                readable = tls.socket().readable() => {
                    return match readable {
                        Ok(()) => Wake::Readable,
                        Err(_) => Wake::Close,
                    };
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    if activity.is_idle(self.idle_timeout) {
                        return Wake::Close;
                    }
                }
            }
        }
    }
}

/// Counts a connection in `connections_parked` while it lives.
struct ParkedGuard<'a>(&'a prometheus::IntGauge);

impl<'a> ParkedGuard<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        ParkedGuard(gauge)
    }
}

impl Drop for ParkedGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Why a parked connection stopped waiting.
enum Wake {
    Readable,
    Close,
}

/// `first` then `second`, in a buffer of their own size. Never one of them as it is: hyper's
/// unparsed bytes are a view of its whole read buffer, which kept alive would hold the 8 KiB
/// that parking is there to free (even when the view is empty).
fn join(first: Bytes, second: Bytes) -> Bytes {
    if first.is_empty() && second.is_empty() {
        return Bytes::new();
    }
    let mut both = BytesMut::with_capacity(first.len() + second.len());
    both.extend_from_slice(&first);
    both.extend_from_slice(&second);
    both.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_between_messages_only_with_every_response_flushed_and_body_read() {
        let state = Arc::new(H1State::default());
        assert!(state.between_messages());
        let open = state.request(false, false);
        assert!(!state.between_messages(), "response open, body open");
        state.body_ended();
        assert!(!state.between_messages(), "response open");
        drop(open);
        assert!(!state.between_messages(), "response ended, not flushed");
        state.unflushed.store(false, Ordering::Relaxed);
        assert!(state.between_messages());
        let open = state.request(true, false);
        drop(open);
        state.unflushed.store(false, Ordering::Relaxed);
        assert!(state.between_messages(), "a request without a body");
    }

    #[test]
    fn a_request_asks_to_close_with_connection_close_or_as_http_1_0_without_keep_alive() {
        let request = |version: http::Version, connection: &[&str]| {
            let mut builder = http::Request::builder().version(version);
            for value in connection {
                builder = builder.header(http::header::CONNECTION, *value);
            }
            builder.body(()).unwrap()
        };
        let (v10, v11) = (http::Version::HTTP_10, http::Version::HTTP_11);
        let cases: [(http::Version, &[&str], bool); 9] = [
            (v11, &[], false),
            (v11, &["close"], true),
            (v11, &["Close"], true),
            (v11, &["keep-alive, Close "], true),
            (v11, &["x-custom", "close"], true),
            (v11, &["closed"], false),
            (v11, &["close, upgrade"], false),
            (v10, &[], true),
            (v10, &["Keep-Alive"], false),
        ];
        for (version, connection, closes) in cases {
            assert_eq!(
                asks_to_close(&request(version, connection)),
                closes,
                "{version:?} Connection: {connection:?}"
            );
        }
    }

    #[test]
    fn a_closing_connection_closes_once_its_response_ended_and_body_was_read() {
        let state = Arc::new(H1State::default());
        let open = state.request(false, true);
        assert!(!state.closes_now(), "response open, body open");
        state.body_ended();
        assert!(!state.closes_now(), "response open");
        drop(open);
        assert!(state.closes_now());
        let open = state.request(true, false);
        drop(open);
        assert!(!state.closes_now(), "the next request keeps the connection");
    }

    #[test]
    fn unparsed_bytes_keep_no_part_of_a_larger_buffer() {
        // hyper's read buffer: 8 KiB, of which the view handed back holds 3 bytes, or none.
        let mut read_buffer = BytesMut::with_capacity(8192);
        read_buffer.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET");
        let unparsed = read_buffer.split_off(read_buffer.len() - 3).freeze();
        let head = read_buffer.freeze();
        drop(head);
        let kept = join(unparsed, Bytes::new());
        assert_eq!(kept, Bytes::from("GET"));
        // A copy of its own: converting to a Vec needs no copy only when nothing else shares it
        // and it is not a view into a larger allocation.
        assert!(Vec::from(kept).capacity() < 64);
        let empty = BytesMut::with_capacity(8192).freeze();
        assert!(join(empty, Bytes::new()).is_empty());
    }

    #[test]
    fn unparsed_bytes_are_joined_in_order() {
        assert_eq!(join(Bytes::new(), Bytes::new()), Bytes::new());
        assert_eq!(join(Bytes::from("ab"), Bytes::new()), Bytes::from("ab"));
        assert_eq!(join(Bytes::new(), Bytes::from("cd")), Bytes::from("cd"));
        assert_eq!(
            join(Bytes::from("ab"), Bytes::from("cd")),
            Bytes::from("abcd")
        );
    }
}
