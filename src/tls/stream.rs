//! A server-side TLS stream over rustls's unbuffered API that holds no buffer while it waits.
//!
//! rustls's buffered `ServerConnection` (what `tokio-rustls` drives) keeps a 4 KiB record buffer
//! for the whole life of a connection. Here the buffers are this stream's own: received bytes,
//! decrypted bytes the reader has not taken yet, and encrypted bytes not yet sent. Each is
//! allocated when there is something to put in it and released as soon as it is empty and the
//! connection waits for its peer: an idle keep-alive connection holds its keys and its socket,
//! nothing more.
//!
//! [`accept`] reads the ClientHello before it creates the connection, to choose the config for
//! the client's cipher preference ([`ServerConfigs`]). The behaviour is otherwise
//! `tokio-rustls`'s, but for TLS 1.3's session tickets: [`accept`] completes once the handshake
//! is done and its last flight is sent, except the tickets when the client's first data came
//! with its Finished: those go out with the first write (the response to that data) or the
//! shutdown instead of in a packet of their own; reads end with `Ok(0)` after the peer's
//! close_notify and fail with `UnexpectedEof` when the socket closes without one; a TLS error is
//! an `InvalidData` error wrapping the `rustls::Error`, after the alert that tells the peer why
//! has been given a chance to go out; a shutdown sends close_notify, and the TCP FIN in the same
//! segment.

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use nix::sys::socket::{self, MsgFlags};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus,
};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::client_hello::HelloReader;
use super::{CipherPreference, server_provider_preferring};

/// How much a read from the socket asks for: one TLS record of the largest size.
const READ_SIZE: usize = 5 + 16_384 + 256;

/// The most plaintext one `poll_write` encrypts before it hands back to its caller.
const WRITE_CHUNK: usize = 64 * 1024;

/// Linux's `MSG_MORE`, which nix's `MsgFlags` does not name.
const MSG_MORE: MsgFlags = MsgFlags::from_bits_retain(nix::libc::MSG_MORE);

/// Room reserved per record beyond its plaintext: header, explicit nonce, tag, content type.
const RECORD_OVERHEAD: usize = 40;

/// The most records a failed connection sends (the ServerHello queued before a refusal, the
/// alert), and the largest: a ServerHello with a post-quantum key share is about 1.2 KiB.
const FAILED_RECORDS_MOST: usize = 4;
const FAILED_RECORD_MOST: usize = 4096;

/// A server's TLS connection on a TCP socket (see the module's documentation).
pub(crate) struct ServerTls {
    io: TcpStream,
    conn: UnbufferedServerConnection,
    /// Bytes received and not processed yet: `incoming[start..]`, at most a partial record
    /// between calls.
    incoming: Vec<u8>,
    start: usize,
    /// Decrypted bytes the reader has not taken yet: `plain[plain_start..]`.
    plain: Vec<u8>,
    plain_start: usize,
    /// Encrypted bytes not sent yet: `outgoing[sent..]`.
    outgoing: Vec<u8>,
    sent: usize,
    /// How many bytes at the front of `outgoing` (the session ticket of a new TLS 1.3
    /// connection whose first data came with the client's Finished) wait for the first write
    /// (or the shutdown) rather than go out at a flush or before a read waits.
    held: usize,
    /// Writes only encrypt into `outgoing`, and a flush or the shutdown sends: set for a
    /// connection that closes after its response, whose last flush is skipped so that the
    /// response and close_notify leave together ([`ServerTls::defer_sending`]).
    defer_send: bool,
    /// The peer's close_notify arrived: reads end.
    peer_closed: bool,
    /// The socket's read side reached its end.
    eof: bool,
    /// close_notify is queued or sent: no more writes.
    close_sent: bool,
    /// A TLS error ended the connection (see [`ServerTls::fail`]).
    failed: bool,
    /// Bytes went out since `stall` was last set.
    sent_since_stall: bool,
    sni: Option<Box<str>>,
    /// The longest a send may wait with none of its bytes taken by the socket (nginx's
    /// `send_timeout`); `None`: for ever.
    send_timeout: Option<std::time::Duration>,
    /// While a send waits: when it gives up. Allocated when a send first has to wait, dropped
    /// once everything waiting has gone out.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Set while a send waits for the socket (see [`ServerTls::send_waits`]).
    waits: Option<Arc<AtomicBool>>,
}

/// A TLS server's configs, one per [`CipherPreference`]; [`accept`] chooses by the client's
/// ClientHello. Apart from their cipher suites' order they are the same config.
pub(crate) struct ServerConfigs {
    /// For every client but those below.
    pub(crate) aes: Arc<ServerConfig>,
    /// For a client that lists ChaCha20-Poly1305 before AES-GCM.
    pub(crate) chacha20: Arc<ServerConfig>,
}

/// What the connection asks for once it has processed what it holds.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The handshake needs the peer's next flight.
    Handshaking,
    /// Handshake done, nothing left to process: application data may be written, and reading
    /// needs more bytes from the peer.
    Ready,
    /// Both sides have closed.
    Closed,
}

/// What to encrypt once the connection may send application data.
enum Send<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

impl ServerConfigs {
    /// Both configs, each made by `build` with the provider of its preference
    /// ([`crate::tls::server_provider_preferring`]), and each choosing the cipher suite by its
    /// own order (`ignore_client_order`). State that must be shared between the two (session
    /// storage, ticketer, certificate resolver) is `build`'s to share.
    pub(crate) fn new<E>(
        mut build: impl FnMut(Arc<CryptoProvider>) -> Result<ServerConfig, E>,
    ) -> Result<ServerConfigs, E> {
        let mut aes = build(server_provider_preferring(CipherPreference::Aes))?;
        let mut chacha20 = build(server_provider_preferring(CipherPreference::ChaCha20))?;
        aes.ignore_client_order = true;
        chacha20.ignore_client_order = true;
        Ok(ServerConfigs {
            aes: Arc::new(aes),
            chacha20: Arc::new(chacha20),
        })
    }
}

/// Completes a server handshake on `io`, with the config of `configs` the client's ClientHello
/// asks for. With `want_sni`, the server name the client asked for is kept from its ClientHello
/// (rustls's unbuffered connection does not expose it) and given by [`ServerTls::server_name`].
pub(crate) async fn accept(
    configs: &ServerConfigs,
    mut io: TcpStream,
    want_sni: bool,
    known_name: Option<&NameCheck>,
) -> io::Result<ServerTls> {
    // The ClientHello first: it decides the config the connection is made with. The bytes stay
    // in `incoming` for rustls.
    let mut incoming = Vec::new();
    let mut hello = HelloReader::new();
    let mut eof = false;
    let sni = loop {
        let before = incoming.len();
        let read = poll_fn(|cx| {
            ready!(io.poll_read_ready(cx))?;
            reserve_read(&mut incoming);
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut incoming);
            if read.is_pending() && incoming.is_empty() {
                incoming = Vec::new();
            }
            read
        });
        if read.await? == 0 {
            eof = true;
            break None;
        }
        if let Some(name) = hello.feed(&incoming[before..]) {
            break name;
        }
    };
    // Plain HTTP on the TLS port (a TLS record starts with 22, a request with its method): an
    // answer the person at the other end can read, as nginx gives one, instead of an alert.
    if !eof && incoming.first().is_some_and(u8::is_ascii_uppercase) {
        let _ = io.try_write(PLAIN_HTTP_ANSWER);
        // rustls's own error for it, which the callers recognise and log in words.
        return Err(invalid_data(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )));
    }
    // A name the server does not answer for (or none): the `unrecognized_name` alert, as
    // nginx's `ssl_reject_handshake` gives it, and no handshake.
    if let Some(known) = known_name
        && !eof
        && !sni.as_deref().is_some_and(known)
    {
        let _ = io.try_write(&UNRECOGNIZED_NAME);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "refused: the client asked for {} (reject_unknown_sni)",
                sni.as_deref()
                    .map_or("no name".to_string(), |n| format!("{n:?}"))
            ),
        ));
    }
    let config = if hello.prefers_chacha20() {
        &configs.chacha20
    } else {
        &configs.aes
    };
    let conn = UnbufferedServerConnection::new(config.clone()).map_err(invalid_data)?;
    let mut tls = ServerTls {
        io,
        conn,
        incoming,
        start: 0,
        plain: Vec::new(),
        plain_start: 0,
        outgoing: Vec::new(),
        sent: 0,
        held: 0,
        defer_send: false,
        peer_closed: false,
        eof,
        close_sent: false,
        failed: false,
        sent_since_stall: false,
        sni: sni.filter(|_| want_sni),
        send_timeout: None,
        stall: None,
        waits: None,
    };
    poll_fn(|cx| tls.poll_handshake(cx)).await?;
    Ok(tls)
}

/// Whether the server answers for a TLS server name (SNI).
pub(crate) type NameCheck = dyn Fn(&str) -> bool + std::marker::Send + Sync;

/// The answer to a plain HTTP request on the TLS port (nginx's 400 "The plain HTTP request was
/// sent to HTTPS port").
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; \
    charset=utf-8\r\nContent-Length: 50\r\nConnection: close\r\n\r\nThe plain HTTP \
    request was sent to the HTTPS port\n";

/// The error inside the `TimedOut` I/O error of a send that waited the send timeout with none
/// of its bytes taken.
#[derive(Debug)]
pub(crate) struct SendTimedOut;

impl std::fmt::Display for SendTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client took none of the response's bytes for send_timeout")
    }
}

impl std::error::Error for SendTimedOut {}

impl SendTimedOut {
    /// Whether `err`, or an error it comes from, is a send timeout. An HTTP/2 connection's
    /// I/O error keeps only the kind and the text of the one it had.
    pub(crate) fn caused(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(err);
        while let Some(err) = next {
            let io = err
                .downcast_ref::<io::Error>()
                .or_else(|| err.downcast_ref::<h2::Error>().and_then(h2::Error::get_io));
            if let Some(io) = io
                && io.kind() == io::ErrorKind::TimedOut
                && io.get_ref().is_some_and(|inner| {
                    inner.is::<SendTimedOut>() || inner.to_string() == SendTimedOut.to_string()
                })
            {
                return true;
            }
            next = err.source();
        }
        false
    }
}

/// A fatal `unrecognized_name` alert (RFC 8446 §6.2, 112) in a plaintext record.
const UNRECOGNIZED_NAME: [u8; 7] = [21, 3, 3, 0, 2, 2, 112];

/// Makes room in `incoming` for one read from the socket.
fn reserve_read(incoming: &mut Vec<u8>) {
    if incoming.capacity() - incoming.len() < READ_SIZE / 4 {
        incoming.reserve(READ_SIZE);
    }
}

impl ServerTls {
    /// The TLS session's state: the negotiated version, ALPN protocol, cipher suite and group.
    pub(crate) fn session(&self) -> &rustls::CommonState {
        &self.conn
    }

    /// The server name (SNI) the client asked for, when [`accept`] was asked to read it.
    pub(crate) fn server_name(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.io
    }

    /// Whether a read would return without waiting for the socket: decrypted bytes not read yet,
    /// or the peer's close_notify.
    pub(crate) fn has_buffered_input(&self) -> bool {
        self.plain_start < self.plain.len() || self.peer_closed
    }

    /// Whether encrypted bytes wait to be sent ([`ServerTls::send_all`] them before waiting
    /// for the peer with nothing to write).
    pub(crate) fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Whether bytes beyond a held session ticket wait to be sent: what a flush, or a read
    /// about to wait, sends (the ticket with them).
    fn has_unheld_output(&self) -> bool {
        self.outgoing.len() > self.held
    }

    /// With `defer`, writes no longer send: what they encrypt waits for a flush, the shutdown,
    /// or a read about to wait (as a held ticket does), and for a write that finds a chunk's
    /// worth waiting. For a connection that closes after its response: when the last flush is
    /// skipped, the response and close_notify leave in one packet at the shutdown, where they
    /// took a `sendto` and a packet each.
    pub(crate) fn defer_sending(&mut self, defer: bool) {
        self.defer_send = defer;
    }

    /// From now on, a send that waits `timeout` with none of its bytes taken (a client that
    /// stopped reading, its receive window full) fails with [`SendTimedOut`], as nginx's
    /// `send_timeout` closes such a connection; the wait restarts whenever bytes go out.
    pub(crate) fn set_send_timeout(&mut self, timeout: std::time::Duration) {
        self.send_timeout = Some(timeout);
    }

    /// A flag that is set while a send waits for the socket (with a send timeout set), for
    /// whoever times a wait of its own behind it: an HTTP/2 stream waiting for its window must
    /// not also be timed out for what is the connection's wait.
    pub(crate) fn send_waits(&mut self) -> Arc<AtomicBool> {
        self.waits.get_or_insert_default().clone()
    }

    /// Sends every byte waiting, a held session ticket included: for a connection about to
    /// wait with no response to carry it.
    pub(crate) async fn send_all(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_send(cx)).await
    }

    /// The bytes this stream holds in buffers of its own right now.
    #[cfg(test)]
    fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.plain.capacity() + self.outgoing.capacity()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let step = match self.process(None, Send::Nothing) {
                Ok(step) => step,
                Err(err) => return Poll::Ready(Err(self.fail(err))),
            };
            // A TLS 1.3 server may send before the client's Finished; the handshake (the
            // client's certificate, when one is asked for) is done only after it.
            if step == Step::Ready && !self.conn.is_handshaking() {
                // What TLS 1.3 sends then is only session tickets, which no client waits for.
                // When the client's first data came with its Finished, they go out with the
                // response to it: one packet and one wake-up of the client fewer. Otherwise
                // at once: they also acknowledge the Finished, and a client with Nagle's
                // algorithm on holds its request back until that (else 40 ms of delayed ACK).
                // TLS 1.2's last flight is the server's Finished, which the client waits for.
                let request_arrived = self.plain_start < self.plain.len()
                    || self.start < self.incoming.len()
                    || self.peer_closed;
                if request_arrived
                    && self.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
                {
                    self.held = self.outgoing.len();
                } else {
                    ready!(self.poll_send(cx))?;
                }
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_send(cx))?;
            if step == Step::Closed {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            if self.eof || self.peer_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection during the TLS handshake",
                )));
            }
            if ready!(self.poll_receive(cx))? == 0 {
                self.eof = true;
            }
        }
    }

    /// Processes every complete record received: decrypted data goes to `read` while it has
    /// room, then to `plain`; handshake messages, alerts and key updates to send go to
    /// `outgoing`; `send` is encrypted once the connection may send application data.
    fn process(
        &mut self,
        mut read: Option<&mut ReadBuf<'_>>,
        send: Send<'_>,
    ) -> Result<Step, rustls::Error> {
        if self.failed {
            return Err(rustls::Error::General("the TLS connection failed".into()));
        }
        loop {
            let UnbufferedStatus { mut discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[self.start..]);
            let step = match state {
                Err(err) => {
                    self.start += discard;
                    return Err(err);
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record?;
                        discard += record.discard;
                        deliver(record.payload, &mut read, &mut self.plain);
                    }
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode_into(&mut data, &mut self.outgoing, usize::MAX);
                    None
                }
                // The records are in `outgoing`; they are sent before the stream waits.
                Ok(ConnectionState::TransmitTlsData(data)) => {
                    data.done();
                    None
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Some(Step::Closed)
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Step::Handshaking),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let filled = self.outgoing.len();
                    let mut room = match send {
                        Send::Nothing => 0,
                        Send::Data(data) => {
                            data.len() + (data.len() / 16_384 + 1) * RECORD_OVERHEAD
                        }
                        Send::CloseNotify => 2 * RECORD_OVERHEAD,
                    };
                    loop {
                        self.outgoing.resize(filled + room, 0);
                        let into = &mut self.outgoing[filled..];
                        let result = match send {
                            Send::Nothing => Ok(0),
                            Send::Data(data) => traffic.encrypt(data, into),
                            Send::CloseNotify => traffic.queue_close_notify(into),
                        };
                        match result {
                            Ok(written) => {
                                self.outgoing.truncate(filled + written);
                                break;
                            }
                            Err(EncryptError::InsufficientSize(size)) => room = size.required_size,
                            Err(EncryptError::EncryptExhausted) => {
                                self.outgoing.truncate(filled);
                                self.start += discard;
                                return Err(rustls::Error::EncryptError);
                            }
                        }
                    }
                    Some(Step::Ready)
                }
                // Early data is off (the config's `max_early_data_size` is 0): rustls never
                // gets here for this server.
                Ok(ConnectionState::ReadEarlyData(_)) => {
                    self.start += discard;
                    return Err(rustls::Error::General("unexpected early data".into()));
                }
                Ok(other) => {
                    self.start += discard;
                    return Err(rustls::Error::General(format!(
                        "unexpected TLS connection state {other:?}"
                    )));
                }
            };
            self.start += discard;
            if self.start == self.incoming.len() {
                self.incoming.clear();
                self.start = 0;
            }
            if let Some(step) = step {
                return Ok(step);
            }
        }
    }

    /// Reads from the socket into `incoming`: `Ok(0)` at its end. With nothing held, the buffers
    /// are released before waiting, and `incoming` is allocated again once the socket is
    /// readable.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.io.poll_read_ready(cx).is_pending() {
            self.release_idle_buffers();
            return Poll::Pending;
        }
        if self.start > 0 {
            self.incoming.drain(..self.start);
            self.start = 0;
        }
        reserve_read(&mut self.incoming);
        // Through `AsyncRead`, not `try_read_buf`: a read that leaves room in the buffer shows
        // the socket drained, and tokio then clears its readiness, so the next read waits for
        // the kernel's next event instead of costing a `recvfrom` that fails with EAGAIN (one
        // per TLS flight).
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.incoming);
        if read.is_pending() {
            self.release_idle_buffers();
        }
        read
    }

    /// Frees every buffer that holds nothing.
    fn release_idle_buffers(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if self.plain_start == self.plain.len() {
            self.plain = Vec::new();
            self.plain_start = 0;
        }
        if self.sent == self.outgoing.len() {
            self.outgoing = Vec::new();
            self.sent = 0;
        }
    }

    /// Sends everything in `outgoing`.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send_flagged(cx, MsgFlags::MSG_NOSIGNAL)
    }

    /// Sends everything in `outgoing` for a shutdown that comes next, with `MSG_MORE`: the
    /// kernel holds the last segment back for more, and the shutdown sets FIN on it instead of
    /// sending a segment of its own (one packet, one wake-up of the peer fewer per closed
    /// connection). Should the shutdown not come, closing the socket sends what is held.
    fn poll_send_before_fin(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send_flagged(cx, MsgFlags::MSG_NOSIGNAL | MSG_MORE)
    }

    fn poll_send_flagged(&mut self, cx: &mut Context<'_>, flags: MsgFlags) -> Poll<io::Result<()>> {
        let fd = self.io.as_raw_fd();
        while self.sent < self.outgoing.len() {
            if self.io.poll_write_ready(cx)?.is_pending() {
                return self.poll_stalled(cx);
            }
            let pending = &self.outgoing[self.sent..];
            match self.io.try_io(Interest::WRITABLE, || {
                socket::send(fd, pending, flags).map_err(io::Error::from)
            }) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.sent += n;
                    self.sent_since_stall = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        self.outgoing.clear();
        self.sent = 0;
        self.held = 0;
        if self.stall.take().is_some()
            && let Some(waits) = &self.waits
        {
            waits.store(false, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }

    /// A send waits for the socket: pending until it may go on, or the send timeout's error
    /// once it has waited that long since its bytes last went out.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(timeout) = self.send_timeout else {
            return Poll::Pending;
        };
        let progressed = std::mem::take(&mut self.sent_since_stall);
        let stall = match &mut self.stall {
            Some(stall) => {
                if progressed {
                    stall.as_mut().reset(tokio::time::Instant::now() + timeout);
                }
                stall
            }
            None => {
                if let Some(waits) = &self.waits {
                    waits.store(true, Ordering::Relaxed);
                }
                self.stall.insert(Box::pin(tokio::time::sleep(timeout)))
            }
        };
        ready!(stall.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, SendTimedOut)))
    }

    /// Sends what the socket takes now, without waiting.
    fn try_send(&mut self) -> io::Result<()> {
        while self.sent < self.outgoing.len() {
            match self.io.try_write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) => return Err(err),
            }
        }
        self.outgoing.clear();
        self.sent = 0;
        self.held = 0;
        Ok(())
    }

    /// The error for a failed connection, after the alert rustls queued for the peer (if any)
    /// was offered to the socket. From then on the stream only reports the failure: rustls has
    /// judged the connection, and what is left of its input is not processed again.
    fn fail(&mut self, err: rustls::Error) -> io::Error {
        if self.failed {
            return invalid_data(err);
        }
        self.failed = true;
        // What rustls queued for the peer comes out, a record a call, before it looks at any
        // input. A refusal decided once a TLS 1.3 ServerHello was queued (no protocol in common
        // with the client's ALPN list) comes after that ServerHello, so more records are taken,
        // but only while no input is left: given back unread bytes (a hostile peer's junk), a
        // failed rustls reads them again, and the hostile-clients fault test saw 1 MiB a
        // connection go that way. Each call gets the same buffer (rustls keeps positions in
        // it); the records are few and of bounded size.
        for taken in 0..FAILED_RECORDS_MOST {
            if taken > 0 && self.start < self.incoming.len() {
                break;
            }
            let UnbufferedStatus { discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[self.start..]);
            self.start += discard;
            let Ok(ConnectionState::EncodeTlsData(mut record)) = state else {
                break;
            };
            encode_into(&mut record, &mut self.outgoing, FAILED_RECORD_MOST);
        }
        let _ = self.try_send();
        self.incoming = Vec::new();
        self.start = 0;
        invalid_data(err)
    }
}

/// Encodes the TLS record rustls queued at the end of `outgoing`, which grows to the room it
/// needs, up to `most` bytes: a record that needs more is left out.
fn encode_into(
    data: &mut EncodeTlsData<'_, ServerConnectionData>,
    outgoing: &mut Vec<u8>,
    most: usize,
) {
    let filled = outgoing.len();
    let mut room = 1024.min(most);
    loop {
        outgoing.resize(filled + room, 0);
        match data.encode(&mut outgoing[filled..]) {
            Ok(written) => {
                outgoing.truncate(filled + written);
                return;
            }
            Err(EncodeError::InsufficientSize(size))
                if size.required_size <= most && size.required_size > room =>
            {
                room = size.required_size;
            }
            Err(_) => {
                outgoing.truncate(filled);
                return;
            }
        }
    }
}

/// Copies `payload` into `read` as far as it has room, the rest to the end of `plain`.
fn deliver(payload: &[u8], read: &mut Option<&mut ReadBuf<'_>>, plain: &mut Vec<u8>) {
    let taken = match read {
        Some(buf) if plain.is_empty() => {
            let n = payload.len().min(buf.remaining());
            buf.put_slice(&payload[..n]);
            n
        }
        _ => 0,
    };
    plain.extend_from_slice(&payload[taken..]);
}

fn invalid_data(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl AsyncRead for ServerTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.plain_start < this.plain.len() {
            let n = (this.plain.len() - this.plain_start).min(buf.remaining());
            buf.put_slice(&this.plain[this.plain_start..this.plain_start + n]);
            this.plain_start += n;
            if this.plain_start == this.plain.len() {
                this.plain = Vec::new();
                this.plain_start = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let step = match this.process(Some(buf), Send::Nothing) {
                Ok(step) => step,
                Err(err) => return Poll::Ready(Err(this.fail(err))),
            };
            if buf.filled().len() > before || step == Step::Closed {
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                continue;
            }
            if this.eof {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                )));
            }
            // Before waiting for the peer, what the last records asked for (key updates,
            // alerts) goes out, without holding up the read: a peer that does not read must
            // not stop this side reading. A held session ticket waits for the response.
            if this.has_unheld_output()
                && let Poll::Ready(Err(err)) = this.poll_send(cx)
            {
                return Poll::Ready(Err(err));
            }
            if ready!(this.poll_receive(cx))? == 0 {
                this.eof = true;
            }
        }
    }
}

impl AsyncWrite for ServerTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // What earlier writes left goes first once it is a chunk's worth: the caller waits
        // rather than the buffer grows. Less (the session ticket of a new connection, deferred
        // writes) goes out together with this write, or deferring, at the flush.
        if this.outgoing.len() - this.sent >= WRITE_CHUNK {
            ready!(this.poll_send(cx))?;
        }
        let data = &buf[..buf.len().min(WRITE_CHUNK)];
        match this.process(None, Send::Data(data)) {
            Ok(Step::Ready) => {}
            Ok(Step::Closed) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Ok(Step::Handshaking) => {
                return Poll::Ready(Err(io::Error::other("TLS handshake not complete")));
            }
            Err(err) => return Poll::Ready(Err(this.fail(err))),
        }
        if !this.defer_send {
            this.try_send()?;
        }
        Poll::Ready(Ok(data.len()))
    }

    /// Sends what was written; a held session ticket alone waits for the first write.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.has_unheld_output() {
            this.poll_send(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            // A connection that failed has sent its alert already; it closes without one.
            if !this.failed {
                let _ = this.process(None, Send::CloseNotify);
            }
        }
        ready!(this.poll_send_before_fin(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    struct Pki {
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    fn pki() -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["server.test".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    fn server_config(pki: &Pki) -> ServerConfigs {
        ServerConfigs::new(|provider| {
            let mut config = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_no_client_auth()
                .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            // As the proxy: one ticket per connection, so a resumption shows which one came.
            config.send_tls13_tickets = 1;
            Ok::<_, rustls::Error>(config)
        })
        .unwrap()
    }

    fn client_config(
        pki: &Pki,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        client_offering(pki, versions, &crate::tls::crypto_provider().cipher_suites)
    }

    /// A listener, and a connected pair: the server side accepted by [`accept`] (asked for the
    /// SNI), the client side a `tokio-rustls` client with `config`.
    async fn pair(
        server: &ServerConfigs,
        client: rustls::ClientConfig,
    ) -> (ServerTls, tokio_rustls::client::TlsStream<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(address).await.unwrap();
            let name = ServerName::try_from("server.test").unwrap();
            connector.connect(name, tcp).await.unwrap()
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let server = accept(server, tcp, true, None).await.unwrap();
        (server, client.await.unwrap())
    }

    #[tokio::test]
    async fn both_versions_handshake_and_carry_data_both_ways() {
        let pki = pki();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut client = client_config(&pki, &[version]);
            client.alpn_protocols = vec![b"http/1.1".to_vec()];
            let (mut server, mut client) = pair(&server_config(&pki), client).await;
            assert_eq!(server.session().protocol_version(), Some(version.version));
            assert_eq!(server.session().alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_eq!(server.server_name(), Some("server.test"));

            client.write_all(b"ping").await.unwrap();
            client.flush().await.unwrap();
            let mut got = [0; 4];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping");
            server.write_all(b"pong").await.unwrap();
            server.flush().await.unwrap();
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"pong");
        }
    }

    /// [`client_config`] offering `suites`, in this order.
    fn client_offering(
        pki: &Pki,
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: &[rustls::SupportedCipherSuite],
    ) -> rustls::ClientConfig {
        let mut provider = (*crate::tls::crypto_provider()).clone();
        provider.cipher_suites = suites.to_vec();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.cert.clone()).unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    #[tokio::test]
    async fn the_server_chooses_aes_128_unless_the_client_puts_chacha20_first() {
        use rustls::crypto::aws_lc_rs::cipher_suite::*;
        let (tls13, tls12) = (&rustls::version::TLS13, &rustls::version::TLS12);
        let pki = pki();
        let configs = server_config(&pki);
        let cases = [
            // OpenSSL's and rustls's clients: AES-256 first.
            (
                tls13,
                vec![
                    TLS13_AES_256_GCM_SHA384,
                    TLS13_AES_128_GCM_SHA256,
                    TLS13_CHACHA20_POLY1305_SHA256,
                ],
                TLS13_AES_128_GCM_SHA256,
            ),
            // A client without AES instructions.
            (
                tls13,
                vec![
                    TLS13_CHACHA20_POLY1305_SHA256,
                    TLS13_AES_256_GCM_SHA384,
                    TLS13_AES_128_GCM_SHA256,
                ],
                TLS13_CHACHA20_POLY1305_SHA256,
            ),
            // What the client offers is all it gets.
            (
                tls13,
                vec![TLS13_AES_256_GCM_SHA384],
                TLS13_AES_256_GCM_SHA384,
            ),
            (
                tls13,
                vec![TLS13_CHACHA20_POLY1305_SHA256, TLS13_AES_256_GCM_SHA384],
                TLS13_CHACHA20_POLY1305_SHA256,
            ),
            (
                tls13,
                vec![TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256],
                TLS13_AES_256_GCM_SHA384,
            ),
            (
                tls12,
                vec![
                    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                ],
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                tls12,
                vec![
                    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                ],
                TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ];
        for (version, offered, expected) in cases {
            let client = client_offering(&pki, &[version], &offered);
            let (server, client) = pair(&configs, client).await;
            let names: Vec<_> = offered.iter().map(|suite| suite.suite()).collect();
            assert_eq!(
                server
                    .session()
                    .negotiated_cipher_suite()
                    .map(|s| s.suite()),
                Some(expected.suite()),
                "offered {names:?}"
            );
            assert_eq!(
                client
                    .get_ref()
                    .1
                    .negotiated_cipher_suite()
                    .map(|s| s.suite()),
                Some(expected.suite())
            );
        }
    }

    #[tokio::test]
    async fn a_tls13_ticket_waits_for_the_response_only_to_data_sent_with_finished() {
        let pki = pki();
        let configs = server_config(&pki);
        let client = client_config(&pki, &[&rustls::version::TLS13]);

        // The Finished alone: the ticket goes at once (it acknowledges the Finished, which a
        // client with Nagle's algorithm on waits for before it sends its request).
        let (server, mut stream) = pair(&configs, client.clone()).await;
        assert_eq!(
            server.session().handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        assert!(
            !server.wants_write(),
            "the ticket was sent with nothing to wait for"
        );
        let mut nothing = [0; 1];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            stream.read(&mut nothing),
        );
        assert!(read.await.is_err(), "no application data was sent");
        let (server, _stream) = pair(&configs, client.clone()).await;
        assert_eq!(
            server.session().handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "the client got the ticket without any response"
        );

        // The first request in the same write as the Finished: the ticket rides with the
        // response.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let fresh = client_config(&pki, &[&rustls::version::TLS13]);
        let for_thread = Arc::new(fresh.clone());
        let client_task = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(address).unwrap();
            let name = ServerName::try_from("server.test").unwrap();
            let mut conn = rustls::ClientConnection::new(for_thread, name).unwrap();
            // Queued before the handshake ends: rustls sends it with the Finished, in one
            // write.
            conn.writer().write_all(b"ping").unwrap();
            let mut got = [0; 4];
            rustls::Stream::new(&mut conn, &mut tcp)
                .read_exact(&mut got)
                .unwrap();
            got
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let mut server = accept(&configs, tcp, false, None).await.unwrap();
        assert!(server.wants_write(), "the ticket waits for the response");
        let mut got = [0; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        server.flush().await.unwrap();
        assert!(
            server.wants_write(),
            "a flush with nothing written keeps it"
        );
        server.write_all(b"pong").await.unwrap();
        assert!(!server.wants_write());
        assert_eq!(&client_task.join().unwrap(), b"pong");
        let (server, _stream) = pair(&configs, fresh).await;
        assert_eq!(
            server.session().handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "the ticket came with the response"
        );

        // TLS 1.2's last flight (the server's Finished) is sent before `accept` returns.
        let client = client_config(&pki, &[&rustls::version::TLS12]);
        let (server, _stream) = pair(&configs, client).await;
        assert!(!server.wants_write());
    }

    /// Whether nothing arrives on `stream` for 100 ms.
    async fn nothing_arrives(stream: &mut tokio_rustls::client::TlsStream<TcpStream>) -> bool {
        let mut nothing = [0; 1];
        let read = stream.read(&mut nothing);
        tokio::time::timeout(std::time::Duration::from_millis(100), read)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn deferred_writes_wait_for_the_flush_the_shutdown_or_a_read() {
        let pki = pki();
        let configs = server_config(&pki);
        let client = client_config(&pki, &[&rustls::version::TLS13]);

        // A write alone sends nothing; the flush does.
        let (mut server, mut stream) = pair(&configs, client.clone()).await;
        server.defer_sending(true);
        server.write_all(b"one").await.unwrap();
        assert!(server.wants_write());
        assert!(
            nothing_arrives(&mut stream).await,
            "a deferred write was sent"
        );
        server.flush().await.unwrap();
        let mut got = [0; 3];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one");

        // A read about to wait sends what waits.
        server.write_all(b"two").await.unwrap();
        let reading = tokio::spawn(async move {
            let mut got = [0; 4];
            server.read_exact(&mut got).await.unwrap();
            (server, got)
        });
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"two");
        stream.write_all(b"ping").await.unwrap();
        let (mut server, ping) = reading.await.unwrap();
        assert_eq!(&ping, b"ping");

        // The shutdown sends the response with close_notify, and the client sees a clean end.
        server.write_all(b"last").await.unwrap();
        assert!(
            nothing_arrives(&mut stream).await,
            "a deferred write was sent"
        );
        server.shutdown().await.unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).await.unwrap();
        assert_eq!(
            received, b"last",
            "then close_notify: a clean end, not an error"
        );

        // Not deferring (the default), a write sends at once.
        let (mut server, mut stream) = pair(&configs, client).await;
        server.write_all(b"now").await.unwrap();
        assert!(!server.wants_write());
        stream.read_exact(&mut got[..3]).await.unwrap();
        assert_eq!(&got[..3], b"now");
    }

    #[tokio::test]
    async fn large_transfers_in_both_directions_at_once_complete() {
        // Each side writes 4 MiB while the other writes too: neither side's writing may stop
        // it reading, or both would wait on full socket buffers for ever.
        let pki = pki();
        let (server, client) = pair(
            &server_config(&pki),
            client_config(&pki, &[&rustls::version::TLS13]),
        )
        .await;
        let payload: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        let (mut server_read, mut server_write) = tokio::io::split(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let expected = payload.clone();
        let server_side = tokio::spawn(async move {
            let sending = async {
                server_write.write_all(&expected).await.unwrap();
                server_write.flush().await.unwrap();
            };
            let receiving = async {
                let mut got = vec![0; expected.len()];
                server_read.read_exact(&mut got).await.unwrap();
                got
            };
            let ((), got) = tokio::join!(sending, receiving);
            got
        });
        let sending = async {
            client_write.write_all(&payload).await.unwrap();
            client_write.flush().await.unwrap();
        };
        let receiving = async {
            let mut got = vec![0; payload.len()];
            client_read.read_exact(&mut got).await.unwrap();
            got
        };
        let ((), client_got) = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            tokio::join!(sending, receiving)
        })
        .await
        .unwrap();
        assert!(
            client_got == payload,
            "the client read what the server sent"
        );
        assert!(server_side.await.unwrap() == payload, "and the other way");
    }

    #[tokio::test]
    async fn a_waiting_connection_holds_no_buffers() {
        let pki = pki();
        let (mut server, mut client) = pair(
            &server_config(&pki),
            client_config(&pki, &[&rustls::version::TLS13]),
        )
        .await;
        let request = vec![b'x'; 20_000];
        client.write_all(&request).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0; request.len()];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(&vec![b'y'; 30_000]).await.unwrap();
        server.flush().await.unwrap();
        assert!(server.buffered_capacity() > 0, "buffers while busy");
        // The next read finds nothing: the stream waits for the socket, holding nothing.
        let mut one = [0; 1];
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), server.read(&mut one)).await;
        assert!(waited.is_err(), "nothing to read");
        assert_eq!(server.buffered_capacity(), 0);
        // And it reads on as before.
        let mut answer = vec![0; 30_000];
        client.read_exact(&mut answer).await.unwrap();
        client.write_all(b"next").await.unwrap();
        client.flush().await.unwrap();
        let mut next = [0; 4];
        server.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"next");
    }

    #[tokio::test]
    async fn close_notify_ends_reads_and_a_bare_eof_is_an_error() {
        let pki = pki();
        let config = server_config(&pki);
        let client = client_config(&pki, &[&rustls::version::TLS13]);
        let (mut server, mut client_stream) = pair(&config, client.clone()).await;
        client_stream.write_all(b"last").await.unwrap();
        client_stream.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
        assert!(
            server.has_buffered_input(),
            "the close is known without the socket"
        );

        // A client that closes its socket without close_notify (having read everything, or its
        // kernel would reset the connection instead).
        let (mut server, mut client_stream) = pair(&config, client.clone()).await;
        server.write_all(b"x").await.unwrap();
        server.flush().await.unwrap();
        client_stream.read_exact(&mut [0; 1]).await.unwrap();
        let (tcp, _) = client_stream.into_inner();
        drop(tcp);
        let err = server.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        // The server's shutdown sends close_notify: the client reads to a clean end.
        let (mut server, mut client_stream) = pair(&config, client).await;
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut got = Vec::new();
        client_stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        assert!(server.write_all(b"more").await.is_err());
    }

    /// Plain HTTP sent to the TLS port gets a readable 400 (nginx's "The plain HTTP request
    /// was sent to HTTPS port"), not an alert, and no handshake.
    #[tokio::test]
    async fn a_plain_http_request_gets_a_readable_400() {
        let pki = pki();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(address).unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
                .unwrap();
            let mut answer = Vec::new();
            let _ = tcp.read_to_end(&mut answer);
            answer
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let err = accept(&server_config(&pki), tcp, false, None)
            .await
            .err()
            .expect("no handshake");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let answer = String::from_utf8(client.join().unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
        assert!(
            head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
            "{answer}"
        );
        assert!(body.contains("plain HTTP"), "{answer}");
    }

    #[tokio::test]
    async fn data_sent_with_the_clients_finished_is_read_after_the_handshake() {
        // The client's first request often travels in the same segment as its Finished.
        let pki = pki();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = client_config(&pki, &[&rustls::version::TLS13]);
        let client_task = std::thread::spawn(move || {
            let mut tcp = std::net::TcpStream::connect(address).unwrap();
            let name = ServerName::try_from("server.test").unwrap();
            let mut conn = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
            use std::io::Write;
            // Queue the request before the handshake ends: rustls sends it right after the
            // Finished, in one write.
            conn.writer().write_all(b"early request").unwrap();
            conn.complete_io(&mut tcp).unwrap();
            while conn.wants_write() {
                conn.write_tls(&mut tcp).unwrap();
            }
            tcp
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let mut server = accept(&server_config(&pki), tcp, false, None)
            .await
            .unwrap();
        let mut got = [0; 13];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early request");
        assert_eq!(server.server_name(), None, "not asked for");
        drop(client_task.join().unwrap());
    }

    #[tokio::test]
    async fn a_client_without_a_common_version_gets_an_alert_and_an_error() {
        let pki = pki();
        let resolver = server_config(&pki).aes.cert_resolver.clone();
        let config = ServerConfigs::new(|provider| {
            Ok::<_, rustls::Error>(
                ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[&rustls::version::TLS13])?
                    .with_no_client_auth()
                    .with_cert_resolver(resolver.clone()),
            )
        })
        .unwrap();
        let client = client_config(&pki, &[&rustls::version::TLS12]);
        let (err, client_err) = refused_handshake(&config, client).await;
        assert!(err.get_ref().unwrap().is::<rustls::Error>());
        assert!(
            client_err.contains("ProtocolVersion"),
            "the client was told why: {client_err}"
        );
    }

    /// A handshake `accept` refuses: its error (checked to be `InvalidData`), and the client's.
    async fn refused_handshake(
        config: &ServerConfigs,
        client: rustls::ClientConfig,
    ) -> (io::Error, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(address).await.unwrap();
            let name = ServerName::try_from("server.test").unwrap();
            connector.connect(name, tcp).await.unwrap_err()
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let err = accept(config, tcp, false, None).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        (err, client.await.unwrap().to_string())
    }

    /// A client whose ALPN list has no protocol the server speaks is told so with the
    /// `no_application_protocol` alert (RFC 7301 §3.2), as nginx tells it, rather than a bare
    /// close: in TLS 1.3 the alert comes after the ServerHello rustls had queued.
    #[tokio::test]
    async fn a_client_without_a_common_alpn_protocol_gets_the_alert() {
        let pki = pki();
        let server = server_config(&pki);
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut client = client_config(&pki, &[version]);
            client.alpn_protocols = vec![b"spdy/3".to_vec()];
            let (_, client_err) = refused_handshake(&server, client).await;
            assert!(
                client_err.contains("NoApplicationProtocol"),
                "{version:?}: the client was told why: {client_err}"
            );
        }
    }

    #[tokio::test]
    async fn a_client_that_closes_before_its_hello_ends_the_handshake() {
        let pki = pki();
        for sent in [&b""[..], &b"\x16\x03\x01\x02\x00\x01"[..]] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let client = tokio::spawn(async move {
                let mut tcp = TcpStream::connect(address).await.unwrap();
                tcp.write_all(sent).await.unwrap();
            });
            let (tcp, _) = listener.accept().await.unwrap();
            client.await.unwrap();
            let handshake = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                accept(&server_config(&pki), tcp, true, None),
            )
            .await
            .expect("the handshake ends at the client's EOF");
            assert_eq!(
                handshake.err().unwrap().kind(),
                io::ErrorKind::UnexpectedEof
            );
        }
    }

    #[tokio::test]
    async fn plain_http_on_the_port_is_recognised() {
        let pki = pki();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut tcp = TcpStream::connect(address).await.unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .await
                .unwrap();
            let mut rest = Vec::new();
            let _ = tcp.read_to_end(&mut rest).await;
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let err = accept(&server_config(&pki), tcp, true, None)
            .await
            .err()
            .unwrap();
        assert!(crate::tls::is_plain_text_client(&err), "{err}");
        client.await.unwrap();
    }
}
