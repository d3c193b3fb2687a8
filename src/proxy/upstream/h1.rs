//! HTTP/1.1 to the upstream, spoken in the request's own task, for requests without a body.
//!
//! hyper's client drives each upstream connection in a task of its own: a request crosses to
//! it through a channel and its response comes back through another, two wake-ups and a
//! handful of locked instructions a request, where nginx's event loop reads and writes both
//! sides itself. A request with no body and no upgrade (most of them: GET, HEAD, an HTTP/2
//! stream ended with its headers) is written here by the task that read it, and its response
//! read by the same task, as the client's response body is polled. Requests with a body, and
//! upgrades, still go through hyper's client, which reads a response while a body is being
//! written and hands a switched connection over.
//!
//! What the upstream gets and what is taken from its answer are hyper's client's, so that the
//! two paths cannot be told apart: the request head in title case (`Host`, `X-Forwarded-For`),
//! no `Transfer-Encoding` on a request without a body; the response head parsed by `httparse`
//! with at most [`MAX_HEADERS`] lines, informational answers (100, 103) skipped, a reason
//! phrase that is not the status's own kept for the client; the body framed by RFC 9112 §6.3
//! (none for HEAD, 1xx, 204, 304; a transfer coding before a length; else to the close), a
//! chunked body's trailers passed on.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::super::park::asks_to_close;

/// The most header lines a response may have (see the comment on the client's own setting).
pub(super) const MAX_HEADERS: usize = super::MAX_RESPONSE_HEADERS;

/// The largest response head read: hyper's client's bound (its buffer's most, 8 KiB and
/// 100 times 4 KiB), so that a head one path takes the other takes too.
const MAX_HEAD: usize = 8192 + 4096 * 100;

/// The most bytes a chunk's size line (with its extensions) or a body's trailers may take.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 << 10;

/// The room read into at first, and the most it grows to while a large body streams.
const FIRST_READ: usize = 8 << 10;
const MOST_READ: usize = 256 << 10;

/// The stream to the upstream: TCP, or TLS over it.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Io::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// One upstream connection of this path, between two requests or in one.
pub(crate) struct Conn {
    io: Io,
    /// Bytes read and not used yet.
    read: BytesMut,
    /// The request head being written (its room kept for the next one).
    write: Vec<u8>,
    /// The room the next read asks for: doubled while reads fill it.
    chunk: usize,
    /// Whether a request has been sent on it before (a failure before any answer may then be
    /// the upstream having closed it as it sat idle).
    reused: bool,
}

/// A failed exchange, and whether the upstream can have seen nothing of the request's answer:
/// the request failed to go out, or the connection closed (or was reset) before any byte of a
/// response came.
pub(crate) struct Failure {
    pub(crate) error: io::Error,
    pub(crate) unanswered: bool,
}

/// A response head, with what it says of its body and of the connection.
pub(crate) struct Head {
    pub(crate) response: http::Response<()>,
    pub(crate) decoder: Decoder,
    /// Whether the connection may carry another request once the body has been read.
    pub(crate) keep_alive: bool,
}

impl Conn {
    pub(crate) fn new(io: Io) -> Conn {
        Conn {
            io,
            read: BytesMut::new(),
            write: Vec::new(),
            chunk: FIRST_READ,
            reused: false,
        }
    }

    /// Whether the connection, idle in the pool, can still take a request: nothing came on it
    /// (no close, no reset, no stray bytes). A look at the readiness the runtime already has:
    /// no system call unless the socket was marked readable.
    pub(crate) fn usable(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// Made ready for the pool: a read buffer grown by a large body is given back.
    pub(crate) fn idle(&mut self) {
        if self.read.capacity() > FIRST_READ {
            self.read = BytesMut::new();
            self.chunk = FIRST_READ;
        }
        if self.write.capacity() > FIRST_READ {
            self.write = Vec::new();
        }
    }

    /// Writes `request`'s head and `body` (the whole of it, its length in the head) and reads
    /// the response's head.
    pub(crate) async fn exchange<B>(
        &mut self,
        request: &http::Request<B>,
        body: &[u8],
    ) -> Result<Head, Failure> {
        let reused = std::mem::replace(&mut self.reused, true);
        self.write.clear();
        encode(request, &mut self.write);
        self.write.extend_from_slice(body);
        let sent = async {
            self.io.write_all(&self.write).await?;
            self.io.flush().await
        };
        if let Err(error) = sent.await {
            return Err(Failure {
                unanswered: reused,
                error,
            });
        }
        let mut answered = false;
        loop {
            if !self.read.is_empty() {
                answered = true;
                match parse(&mut self.read, request.method()) {
                    Ok(Some(mut head)) => {
                        // A request that asked to close (a `Connection: close` set by the
                        // configuration's request headers) leaves nothing to keep.
                        head.keep_alive &= !asks_to_close(request);
                        return Ok(head);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        return Err(Failure {
                            unanswered: false,
                            error,
                        });
                    }
                }
                if self.read.len() > MAX_HEAD {
                    return Err(Failure {
                        unanswered: false,
                        error: invalid("the upstream's response head is too large"),
                    });
                }
            }
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) => {
                    return Err(Failure {
                        unanswered: reused && !answered,
                        error: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the upstream closed the connection before its response was complete",
                        ),
                    });
                }
                Ok(_) => {}
                Err(error) => {
                    let unanswered = reused && !answered && closed_under(&error);
                    return Err(Failure { unanswered, error });
                }
            }
        }
    }

    /// Reads what the upstream sent into the read buffer: how many bytes (0 at its end).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let spare = self.read.capacity() - self.read.len();
        if spare < self.chunk / 2 {
            self.read.reserve(self.chunk);
        }
        let spare = self.read.capacity() - self.read.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.read
        ))?;
        if n == spare && self.chunk < MOST_READ {
            self.chunk *= 2;
        }
        Poll::Ready(Ok(n))
    }

    /// The next piece of the body `decoder` frames.
    pub(crate) fn poll_body(
        &mut self,
        decoder: &mut Decoder,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Piece>> {
        loop {
            match decoder.decode(&mut self.read)? {
                Step::Piece(piece) => return Poll::Ready(Ok(piece)),
                Step::More => {}
            }
            if ready!(self.poll_fill(cx))? == 0 {
                decoder.closed()?;
                return Poll::Ready(Ok(Piece::End));
            }
        }
    }

    /// The body `decoder` frames by its length when all of it came with the head: taken, and
    /// the decoder done.
    pub(crate) fn take_whole(&mut self, decoder: &mut Decoder) -> Option<Bytes> {
        let Decoder::Length(left) = *decoder else {
            return None;
        };
        let left = usize::try_from(left)
            .ok()
            .filter(|&left| left <= self.read.len())?;
        *decoder = Decoder::Done;
        Some(self.read.split_to(left).freeze())
    }

    /// Whether bytes beyond the response were read (a connection that cannot be kept).
    pub(crate) fn has_extra(&self) -> bool {
        !self.read.is_empty()
    }
}

/// Whether `error` is the connection closed or reset under a request.
pub(super) fn closed_under(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

fn invalid(text: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// The request line and header lines of `request`, names in title case, as hyper's client
/// writes them for a request without a body or with one of a known length (any
/// `Transfer-Encoding` left out: the body, if any, follows whole, its `Content-Length` set).
fn encode<B>(request: &http::Request<B>, dst: &mut Vec<u8>) {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    dst.reserve(32 + target.len() + request.headers().len() * 32);
    dst.extend_from_slice(request.method().as_str().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(target.as_bytes());
    dst.extend_from_slice(if request.version() == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    for (name, value) in request.headers() {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        let start = dst.len();
        dst.extend_from_slice(name.as_str().as_bytes());
        title_case(&mut dst[start..]);
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
}

/// `name` (lower case, as a header map holds it) in title case: `x-forwarded-for` becomes
/// `X-Forwarded-For`.
fn title_case(name: &mut [u8]) {
    let mut upper = true;
    for byte in name {
        if upper {
            byte.make_ascii_uppercase();
        }
        upper = *byte == b'-';
    }
}

/// Where a header line's name and value lie in the head.
#[derive(Clone, Copy)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

impl Span {
    const EMPTY: Span = Span {
        name: (0, 0),
        value: (0, 0),
    };
}

/// The response head at the start of `buf`, taken from it; `None` while it is incomplete.
/// Informational answers before it are skipped (taken from `buf` too).
fn parse(buf: &mut BytesMut, method: &Method) -> io::Result<Option<Head>> {
    // Where each line lies, noted while the parser holds the buffer: most heads have a few
    // lines, held on the stack; more take room from the heap.
    let mut few = [Span::EMPTY; 32];
    let mut many = Vec::new();
    loop {
        let (length, code, reason, version, count) =
            {
                let mut headers =
                    [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut []);
                let bytes: &[u8] = buf;
                let base = bytes.as_ptr() as usize;
                let offset = |part: &[u8]| {
                    let start = part.as_ptr() as usize - base;
                    // The head is at most MAX_HEAD bytes, far below u32::MAX.
                    (start as u32, (start + part.len()) as u32)
                };
                let length = match httparse::ParserConfig::default()
                    .parse_response_with_uninit_headers(&mut response, bytes, &mut headers)
                {
                    Ok(httparse::Status::Complete(length)) => length,
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(httparse::Error::TooManyHeaders) => {
                        return Err(invalid("the upstream's response has too many header lines"));
                    }
                    Err(_) => return Err(invalid("the upstream's response head is malformed")),
                };
                let lines = response.headers.len();
                let spans: &mut [Span] = if lines <= few.len() {
                    &mut few[..lines]
                } else {
                    many.resize(lines, Span::EMPTY);
                    &mut many
                };
                for (span, line) in spans.iter_mut().zip(response.headers.iter()) {
                    *span = Span {
                        name: offset(line.name.as_bytes()),
                        value: offset(line.value),
                    };
                }
                let reason = response.reason.map(|reason| offset(reason.as_bytes()));
                (
                    length,
                    response.code.unwrap_or(0),
                    reason,
                    response.version.unwrap_or(1),
                    response.headers.len(),
                )
            };
        let head = buf.split_to(length).freeze();
        let status = StatusCode::from_u16(code)
            .map_err(|_| invalid("the upstream's status is not valid"))?;
        let version = if version == 1 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let mut keep_alive = version == Version::HTTP_11;
        let mut asked_close = false;
        let mut headers = HeaderMap::with_capacity(count);
        let spans = if count <= few.len() {
            &few[..count]
        } else {
            &many[..count]
        };
        for span in spans {
            let (from, to) = span.name;
            let name = HeaderName::from_bytes(&head[from as usize..to as usize])
                .map_err(|_| invalid("a header name in the upstream's response is not valid"))?;
            let (from, to) = span.value;
            let value = HeaderValue::from_maybe_shared(head.slice(from as usize..to as usize))
                .map_err(|_| invalid("a header value in the upstream's response is not valid"))?;
            if name == header::CONNECTION {
                // Once a line asks to close, a later `keep-alive` does not undo it.
                if asked_close || has_token(&value, b"close") {
                    asked_close = true;
                    keep_alive = false;
                } else if !keep_alive {
                    keep_alive = has_token(&value, b"keep-alive");
                }
            }
            headers.append(name, value);
        }
        let Some(decoder) = Decoder::for_response(status, version, method, &headers)? else {
            // An informational answer (100, 103): the final one follows.
            continue;
        };
        let mut response = http::Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        if let Some((from, to)) = reason {
            let reason = &head[from as usize..to as usize];
            if Some(reason) != status.canonical_reason().map(str::as_bytes)
                && let Ok(reason) =
                    hyper::ext::ReasonPhrase::try_from(head.slice(from as usize..to as usize))
            {
                response.extensions_mut().insert(reason);
            }
        }
        let keep_alive = keep_alive && status != StatusCode::SWITCHING_PROTOCOLS;
        let keep_alive = keep_alive && !matches!(decoder, Decoder::Close);
        return Ok(Some(Head {
            response,
            decoder,
            keep_alive,
        }));
    }
}

/// Whether the comma-separated list `value` has `token` (ASCII case aside).
fn has_token(value: &HeaderValue, token: &[u8]) -> bool {
    value
        .as_bytes()
        .split(|&byte| byte == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// How a response's body is framed, and how much of it is left.
pub(crate) enum Decoder {
    /// This many bytes are left.
    Length(u64),
    /// Chunked: where in the coding the next byte falls.
    Chunked(Chunk),
    /// To the connection's close.
    Close,
    /// Read to its end.
    Done,
}

/// Where a chunked body stands.
pub(crate) enum Chunk {
    /// A chunk's size line comes next.
    Size,
    /// This many bytes of the current chunk are left.
    Data(u64),
    /// The CRLF after a chunk's data comes next.
    DataEnd,
    /// The trailer section comes next (after the last chunk).
    Trailers,
}

/// What the body gave.
pub(crate) enum Piece {
    Data(Bytes),
    Trailers(HeaderMap),
    End,
}

/// What a look at the buffer gave.
enum Step {
    Piece(Piece),
    /// Nothing before more bytes are read.
    More,
}

impl Decoder {
    /// The body's framing from its response's head (RFC 9112 §6.3, as hyper's client reads
    /// it); `None` for an informational response, which has none and is not the answer.
    fn for_response(
        status: StatusCode,
        version: Version,
        method: &Method,
        headers: &HeaderMap,
    ) -> io::Result<Option<Decoder>> {
        match status.as_u16() {
            101 | 204 | 304 => return Ok(Some(Decoder::Done)),
            100..=199 => return Ok(None),
            _ => {}
        }
        if method == Method::HEAD {
            return Ok(Some(Decoder::Done));
        }
        if let Some(last) = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
        {
            if version == Version::HTTP_10 {
                return Err(invalid(
                    "the upstream's HTTP/1.0 response has a Transfer-Encoding",
                ));
            }
            let chunked = last
                .as_bytes()
                .rsplit(|&byte| byte == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            return Ok(Some(if chunked {
                Decoder::Chunked(Chunk::Size)
            } else {
                Decoder::Close
            }));
        }
        let mut length = None;
        for value in headers.get_all(header::CONTENT_LENGTH) {
            for part in value.as_bytes().split(|&byte| byte == b',') {
                let part = part.trim_ascii();
                let parsed = (!part.is_empty() && part.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(part).ok()?.parse::<u64>().ok())
                    .flatten();
                match (parsed, length) {
                    (None, _) => return Err(invalid("the upstream's Content-Length is not valid")),
                    (Some(new), Some(old)) if new != old => {
                        return Err(invalid(
                            "the upstream's response has Content-Length lines that differ",
                        ));
                    }
                    (Some(new), _) => length = Some(new),
                }
            }
        }
        Ok(Some(match length {
            Some(0) => Decoder::Done,
            Some(length) => Decoder::Length(length),
            None => Decoder::Close,
        }))
    }

    /// Whether the body has been read to its end.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Decoder::Done)
    }

    /// The bytes left, when they are known.
    pub(crate) fn exact(&self) -> Option<u64> {
        match self {
            Decoder::Length(left) => Some(*left),
            Decoder::Done => Some(0),
            _ => None,
        }
    }

    /// The connection closed: the end of a body read to the close, else a body cut short.
    fn closed(&mut self) -> io::Result<()> {
        match self {
            Decoder::Close | Decoder::Done => {
                *self = Decoder::Done;
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the end of the response body",
            )),
        }
    }

    /// The next piece of the body in `buf` (taken from it).
    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        loop {
            match self {
                Decoder::Done => return Ok(Step::Piece(Piece::End)),
                Decoder::Close => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    return Ok(Step::Piece(Piece::Data(buf.split().freeze())));
                }
                Decoder::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let data = take(left, buf);
                    if *left == 0 {
                        *self = Decoder::Done;
                    }
                    return Ok(Step::Piece(Piece::Data(data)));
                }
                Decoder::Chunked(chunk) => match chunk {
                    Chunk::Size => {
                        if buf.is_empty() {
                            return Ok(Step::More);
                        }
                        if !buf[0].is_ascii_hexdigit() {
                            return Err(invalid(
                                "a chunk size in the upstream's body is not valid",
                            ));
                        }
                        match httparse::parse_chunk_size(buf) {
                            Ok(httparse::Status::Complete((used, size))) => {
                                let _ = buf.split_to(used);
                                *chunk = if size == 0 {
                                    Chunk::Trailers
                                } else {
                                    Chunk::Data(size)
                                };
                            }
                            Ok(httparse::Status::Partial) if buf.len() <= MAX_CHUNK_LINE => {
                                return Ok(Step::More);
                            }
                            _ => {
                                return Err(invalid(
                                    "a chunk size in the upstream's body is not valid",
                                ));
                            }
                        }
                    }
                    Chunk::Data(left) => {
                        if buf.is_empty() {
                            return Ok(Step::More);
                        }
                        let data = take(left, buf);
                        if *left == 0 {
                            *chunk = Chunk::DataEnd;
                        }
                        return Ok(Step::Piece(Piece::Data(data)));
                    }
                    Chunk::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(Step::More);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(invalid(
                                "a chunk in the upstream's body does not end where its size says",
                            ));
                        }
                        let _ = buf.split_to(2);
                        *chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        if buf.len() < 2 {
                            return Ok(Step::More);
                        }
                        if buf.starts_with(b"\r\n") {
                            let _ = buf.split_to(2);
                            *self = Decoder::Done;
                            continue;
                        }
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            if buf.len() > MAX_TRAILERS {
                                return Err(invalid("the upstream's trailers are too large"));
                            }
                            return Ok(Step::More);
                        };
                        let section = buf.split_to(end + 4).freeze();
                        *self = Decoder::Done;
                        return Ok(Step::Piece(Piece::Trailers(trailers(&section)?)));
                    }
                },
            }
        }
    }
}

/// As much of the `left` bytes as `buf` has, taken from it (and counted off `left`).
fn take(left: &mut u64, buf: &mut BytesMut) -> Bytes {
    let taken = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
    *left -= taken as u64;
    buf.split_to(taken).freeze()
}

/// The trailer lines of a chunked body (`section` ends with its empty line).
fn trailers(section: &Bytes) -> io::Result<HeaderMap> {
    let mut lines = [httparse::EMPTY_HEADER; 64];
    let invalid_trailers = || invalid("the upstream's trailers are not valid");
    let lines = match httparse::parse_headers(section, &mut lines) {
        Ok(httparse::Status::Complete((_, lines))) => lines,
        _ => return Err(invalid_trailers()),
    };
    let mut map = HeaderMap::with_capacity(lines.len());
    for line in lines {
        let name = HeaderName::from_bytes(line.name.as_bytes()).map_err(|_| invalid_trailers())?;
        let value = HeaderValue::from_bytes(line.value).map_err(|_| invalid_trailers())?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, method: &Method) -> io::Result<Option<Head>> {
        parse(&mut BytesMut::from(text), method)
    }

    fn body(decoder: &mut Decoder, input: &[&[u8]]) -> io::Result<(Vec<u8>, Option<HeaderMap>)> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut trailers = None;
        for piece in input {
            buf.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut buf)? {
                    Step::More => break,
                    Step::Piece(Piece::Data(data)) => out.extend_from_slice(&data),
                    Step::Piece(Piece::Trailers(map)) => trailers = Some(map),
                    Step::Piece(Piece::End) => return Ok((out, trailers)),
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "more input wanted",
        ))
    }

    #[test]
    fn a_request_head_is_written_in_title_case_without_a_transfer_coding() {
        let request = http::Request::builder()
            .method(Method::GET)
            .uri("/a/b?c=d")
            .header("host", "app.example")
            .header("x-forwarded-for", "10.0.0.1")
            .header("transfer-encoding", "chunked")
            .header("x-forwarded-for", "10.0.0.2")
            .body(())
            .unwrap();
        let mut out = Vec::new();
        encode(&request, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a/b?c=d HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 10.0.0.1\r\n\
             X-Forwarded-For: 10.0.0.2\r\n\r\n"
        );
    }

    #[test]
    fn a_response_head_is_parsed_and_informational_answers_skipped() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
             HTTP/1.1 200 Fine\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello",
        );
        let head = parse(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.response.status(), StatusCode::OK);
        assert_eq!(head.response.headers().get_all("x-a").iter().count(), 2);
        assert!(head.keep_alive);
        assert_eq!(head.decoder.exact(), Some(5));
        let reason = head.response.extensions().get::<hyper::ext::ReasonPhrase>();
        assert_eq!(reason.map(|r| r.as_bytes()), Some(&b"Fine"[..]));
        assert_eq!(&buf[..], b"hello");
        // A status's own reason is not kept.
        let head = parsed(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            &Method::GET,
        );
        let head = head.unwrap().unwrap();
        assert!(
            head.response
                .extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .is_none()
        );
        assert!(head.decoder.is_done());
    }

    #[test]
    fn an_incomplete_head_waits_and_a_bad_one_fails() {
        assert!(
            parsed("HTTP/1.1 200 OK\r\nContent-Le", &Method::GET)
                .unwrap()
                .is_none()
        );
        assert!(parsed("HTTP/1.1 2000 OK\r\n\r\n", &Method::GET).is_err());
        assert!(parsed("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", &Method::GET).is_err());
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(parsed(&many, &Method::GET).is_err());
        let most = format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS));
        assert!(parsed(&most, &Method::GET).unwrap().is_some());
    }

    #[test]
    fn the_connection_is_kept_as_http_1_0_and_1_1_say() {
        let keep = |text: &str| parsed(text, &Method::GET).unwrap().unwrap().keep_alive;
        assert!(keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!keep(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\n\
             Content-Length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(keep(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
        ));
        // A body read to the close leaves nothing to keep.
        assert!(!keep("HTTP/1.1 200 OK\r\n\r\n"));
    }

    #[test]
    fn bodies_are_framed_as_rfc_9112_says() {
        let decoder =
            |text: &str, method: &Method| parsed(text, method).map(|h| h.unwrap().decoder);
        let get = &Method::GET;
        assert!(
            decoder("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", get)
                .unwrap()
                .is_done()
        );
        assert!(
            decoder("HTTP/1.1 304 Not Modified\r\n\r\n", get)
                .unwrap()
                .is_done()
        );
        assert!(
            decoder(
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                &Method::HEAD
            )
            .unwrap()
            .is_done()
        );
        assert!(matches!(
            decoder(
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                get
            )
            .unwrap(),
            Decoder::Chunked(_)
        ));
        assert!(matches!(
            decoder("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", get).unwrap(),
            Decoder::Close
        ));
        assert_eq!(
            decoder(
                "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
                get
            )
            .unwrap()
            .exact(),
            Some(7)
        );
        assert!(decoder("HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n", get).is_err());
        assert!(decoder("HTTP/1.1 200 OK\r\nContent-Length: +7\r\n\r\n", get).is_err());
        assert!(decoder("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", get).is_err());
    }

    #[test]
    fn a_chunked_body_is_decoded_across_reads_with_its_trailers() {
        let mut decoder = Decoder::Chunked(Chunk::Size);
        let (data, trailers) = body(
            &mut decoder,
            &[
                b"5;ext=1\r\nhel",
                b"lo\r",
                b"\n1",
                b"0\r\n0123456789abcdef\r\n0\r\n",
                b"X-Sum: 3\r\n\r\n",
            ],
        )
        .unwrap();
        assert_eq!(data, b"hello0123456789abcdef");
        assert_eq!(trailers.unwrap()["x-sum"], "3");
        assert!(decoder.is_done());

        let mut decoder = Decoder::Chunked(Chunk::Size);
        let (data, trailers) = body(&mut decoder, &[b"3\r\nabc\r\n0\r\n\r\n"]).unwrap();
        assert_eq!(data, b"abc");
        assert!(trailers.is_none());

        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"3\r\nabcXY",
            b"fffffffffffffffff\r\n",
        ] {
            let mut decoder = Decoder::Chunked(Chunk::Size);
            assert!(
                body(&mut decoder, &[bad]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut decoder = Decoder::Chunked(Chunk::Size);
        let long = vec![b'1'; 1]
            .into_iter()
            .chain(vec![b';'; MAX_CHUNK_LINE + 1])
            .collect::<Vec<_>>();
        assert!(body(&mut decoder, &[&long]).is_err());
    }

    #[test]
    fn a_length_body_ends_at_its_length_and_a_close_one_at_the_close() {
        let mut decoder = Decoder::Length(5);
        let mut buf = BytesMut::from("hel");
        let Ok(Step::Piece(Piece::Data(first))) = decoder.decode(&mut buf) else {
            panic!("no data");
        };
        assert_eq!(&first[..], b"hel");
        assert!(matches!(decoder.decode(&mut buf), Ok(Step::More)));
        assert!(decoder.closed().is_err(), "a body cut short is an error");
        buf.extend_from_slice(b"loEXTRA");
        let Ok(Step::Piece(Piece::Data(rest))) = decoder.decode(&mut buf) else {
            panic!("no data");
        };
        assert_eq!(&rest[..], b"lo");
        assert!(decoder.is_done());
        assert_eq!(&buf[..], b"EXTRA");

        let mut decoder = Decoder::Close;
        let mut buf = BytesMut::from("all of it");
        assert!(matches!(
            decoder.decode(&mut buf),
            Ok(Step::Piece(Piece::Data(_)))
        ));
        assert!(decoder.closed().is_ok());
        assert!(decoder.is_done());
    }

    proptest::proptest! {
        #[test]
        fn a_chunked_body_cut_anywhere_decodes_to_the_same_bytes(
            content in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            sizes in proptest::collection::vec(1usize..700, 1..20),
            cuts in proptest::collection::vec(0usize..5000, 0..12),
        ) {
            let mut encoded = Vec::new();
            let mut rest = &content[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let size = (*size).min(rest.len());
                encoded.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                encoded.extend_from_slice(&rest[..size]);
                encoded.extend_from_slice(b"\r\n");
                rest = &rest[size..];
            }
            encoded.extend_from_slice(b"0\r\n\r\n");
            let mut points: Vec<usize> =
                cuts.into_iter().map(|cut| cut % (encoded.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for point in points {
                pieces.push(&encoded[last..point]);
                last = point;
            }
            pieces.push(&encoded[last..]);
            let mut decoder = Decoder::Chunked(Chunk::Size);
            let (data, trailers) = body(&mut decoder, &pieces).unwrap();
            proptest::prop_assert_eq!(data, content);
            proptest::prop_assert!(trailers.is_none());
            proptest::prop_assert!(decoder.is_done());
        }

        #[test]
        fn no_bytes_make_the_head_parser_or_the_chunk_decoder_panic(
            input in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let mut buf = BytesMut::from(&input[..]);
            let _ = parse(&mut buf, &Method::GET);
            let mut decoder = Decoder::Chunked(Chunk::Size);
            let _ = body(&mut decoder, &[&input]);
        }
    }
}
