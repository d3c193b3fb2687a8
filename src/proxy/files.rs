//! Files a route serves from a directory (`root`, `alias`), as nginx's static, index, range
//! and not-modified modules serve them: GET and HEAD (POST to a file and every other method:
//! 405), the path percent-decoded and its `.`, `..` and repeated slashes resolved (above the
//! directory: 400), `index` files for a path ending in `/` (none: 403; no directory: 404), a
//! directory without its `/` redirected (301) to it, `ETag` and `Last-Modified` as nginx forms
//! them with `If-None-Match`, `If-Modified-Since` (exact), `If-Match`, `If-Unmodified-Since`,
//! and one byte range (`Range`, `If-Range`; 416 when none can be served).
//!
//! This is the only part of the proxy that reads files for a request: opening and reading run
//! on tokio's blocking pool, never on a worker thread, and only for the routes that serve
//! files. A file is streamed in 64 KiB reads, never held whole.

use std::collections::HashMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt as _;

use super::forward::ProxyBody;
use crate::config;

/// How much of a file one read takes.
const CHUNK: usize = 64 * 1024;

/// One route's files.
pub(crate) struct Files {
    dir: PathBuf,
    /// `alias`: the location's path, which `dir` replaces.
    alias_of: Option<Box<[u8]>>,
    index: Box<[String]>,
    default_type: HeaderValue,
    /// Media types by extension, in lower case: the proxy's `file_types`.
    types: Arc<HashMap<String, HeaderValue>>,
    /// `try_files`: the paths tried, and what is done when none is there.
    try_files: Option<(Box<[String]>, config::TryFallback)>,
}

/// What a route that serves files does with a request.
pub(crate) enum Served {
    /// Boxed: the fallbacks are two words.
    Response(Box<Response<ProxyBody>>),
    /// A `try_files` fallback path (and query): the request goes on as it, to whichever
    /// location takes it.
    Redirect(String),
    /// A `try_files` fallback `@NAME`: the request goes to that named location, as it came.
    Named(String),
}

/// What the file system said of a path.
enum Found {
    File(std::fs::File, std::fs::Metadata),
    Directory,
    /// 404, 403 or 500.
    Refused(StatusCode),
}

impl Files {
    /// The files of `config` at `location`; `types` shared by every route.
    pub(crate) fn new(
        config: &config::Files,
        location: &config::PathMatch,
        types: Arc<HashMap<String, HeaderValue>>,
    ) -> Files {
        let alias_of = match (config.alias, location) {
            (
                true,
                config::PathMatch::Exact(path)
                | config::PathMatch::Prefix(path)
                | config::PathMatch::PrefixNoRegex(path),
            ) => Some(path.as_bytes().into()),
            // Refused when the configuration was resolved.
            _ => None,
        };
        Files {
            dir: config.dir.clone(),
            alias_of,
            index: config.index.clone().into_boxed_slice(),
            // Validated when the configuration was resolved.
            default_type: HeaderValue::from_str(&config.default_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            types,
            try_files: config
                .try_files
                .as_ref()
                .map(|(tried, fallback)| (tried.clone().into_boxed_slice(), fallback.clone())),
        }
    }

    /// The answer to `method` on `uri` with the request's `headers`.
    pub(crate) async fn serve(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        compressed: &(dyn Fn(&HeaderValue, u64) -> bool + Sync),
    ) -> Served {
        let Some(mut path) = normalize(uri.path()) else {
            return Served::Response(Box::new(status(StatusCode::BAD_REQUEST)));
        };
        // nginx's try_files runs before the static module looks at the method.
        if let Some((tried, fallback)) = &self.try_files {
            match self.try_paths(tried, &path).await {
                Some(found) => path = found,
                None => {
                    return match fallback {
                        config::TryFallback::Status(code) => Served::Response(Box::new(status(
                            StatusCode::from_u16(*code).unwrap_or(StatusCode::NOT_FOUND),
                        ))),
                        config::TryFallback::Uri(template) => {
                            Served::Redirect(expand(template, &path, uri.query()))
                        }
                        config::TryFallback::Named(name) => Served::Named(name.clone()),
                    };
                }
            }
        }
        Served::Response(Box::new(
            self.serve_path(method, uri, headers, path, compressed)
                .await,
        ))
    }

    /// The first of `tried` that is there (a directory for one written with a `/` last, else
    /// anything but a directory), `$uri` being `path`; `None` when none is.
    async fn try_paths(&self, tried: &[String], path: &[u8]) -> Option<Vec<u8>> {
        for candidate in tried {
            // As nginx: a `/` written last asks for a directory and is not part of the path
            // (`$uri/` for `/docs` is `/docs`, which then gets its 301 to `/docs/`).
            let (written, wants_directory) = match candidate.strip_suffix('/') {
                Some(written) => (written, true),
                None => (candidate.as_str(), false),
            };
            let mut expanded = Vec::new();
            for (index, part) in written.split("$uri").enumerate() {
                if index > 0 {
                    expanded.extend_from_slice(path);
                }
                expanded.extend_from_slice(part.as_bytes());
            }
            let Some(resolved) = resolve(&expanded) else {
                continue;
            };
            let Some(file) = self.file_of(&resolved) else {
                continue;
            };
            match open(file).await {
                Found::Directory if wants_directory => return Some(resolved),
                Found::File(..) if !wants_directory => return Some(resolved),
                _ => {}
            }
        }
        None
    }

    /// The answer for the normalized `path`.
    async fn serve_path(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        path: Vec<u8>,
        compressed: &(dyn Fn(&HeaderValue, u64) -> bool + Sync),
    ) -> Response<ProxyBody> {
        if !matches!(*method, Method::GET | Method::HEAD | Method::POST) {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let Some(file) = self.file_of(&path) else {
            return status(StatusCode::NOT_FOUND);
        };
        let (found, served_path) = if path.ends_with(b"/") {
            match self.index_of(file).await {
                Ok((found, name)) => {
                    let mut served = path.clone();
                    served.extend_from_slice(name.as_bytes());
                    (found, served)
                }
                Err(code) => return status(code),
            }
        } else {
            (open(file).await, path.clone())
        };
        let (file, metadata) = match found {
            Found::File(file, metadata) => (file, metadata),
            Found::Refused(code) => return status(code),
            Found::Directory => return to_directory(&path, uri),
        };
        if *method == Method::POST {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let media = self.media_type(&served_path);
        let whole = compressed(&media, metadata.len());
        respond(method, headers, file, &metadata, media, whole)
    }

    /// The file a normalized path names: `dir` and the path, or for `alias` `dir` and what
    /// follows the location's path; `None` when the path is not under that location.
    fn file_of(&self, path: &[u8]) -> Option<PathBuf> {
        let rest = match &self.alias_of {
            Some(location) => {
                let rest = path.strip_prefix(&location[..])?;
                // `location /img { alias /srv/images/; }` with `/img../x`: nginx opens
                // `/srv/images/../x`, outside the directory (a well-known misconfiguration).
                // Here a `.` or `..` the join would make is not found.
                if rest
                    .split(|&b| b == b'/')
                    .any(|part| part == b".." || part == b".")
                {
                    return None;
                }
                rest
            }
            None => path,
        };
        let mut file = self.dir.as_os_str().as_bytes().to_vec();
        file.extend_from_slice(rest);
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(&file)))
    }

    /// The first `index` file in the directory `dir` (its path ends in `/`), with its name;
    /// else 403 when the directory is there, 404 when it is not.
    async fn index_of(&self, dir: PathBuf) -> Result<(Found, String), StatusCode> {
        for name in self.index.iter() {
            let mut candidate = dir.as_os_str().as_bytes().to_vec();
            candidate.extend_from_slice(name.as_bytes());
            match open(PathBuf::from(std::ffi::OsStr::from_bytes(&candidate))).await {
                found @ Found::File(..) => return Ok((found, name.clone())),
                Found::Refused(StatusCode::NOT_FOUND) | Found::Directory => {}
                Found::Refused(code) => return Err(code),
            }
        }
        match open(dir).await {
            Found::Directory => Err(StatusCode::FORBIDDEN),
            Found::Refused(code) => Err(code),
            Found::File(..) => Err(StatusCode::NOT_FOUND),
        }
    }

    /// The type of what `path` names, by its extension (nginx's: after the last `.` of the
    /// last segment, looked up in lower case), else `default_type`.
    fn media_type(&self, path: &[u8]) -> HeaderValue {
        let last = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        last.iter()
            .rposition(|&b| b == b'.')
            .and_then(|dot| std::str::from_utf8(&last[dot + 1..]).ok())
            .and_then(|extension| self.types.get(&extension.to_ascii_lowercase()))
            .unwrap_or(&self.default_type)
            .clone()
    }
}

/// 301 to the directory's path with its `/`, the query kept; made absolute with
/// `absolute_redirects`, as nginx makes it.
fn to_directory(path: &[u8], uri: &Uri) -> Response<ProxyBody> {
    let mut location = path.to_vec();
    location.push(b'/');
    if let Some(query) = uri.query() {
        location.push(b'?');
        location.extend_from_slice(query.as_bytes());
    }
    let mut response = status(StatusCode::MOVED_PERMANENTLY);
    match HeaderValue::from_bytes(&location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => status(StatusCode::BAD_REQUEST),
    }
}

/// A `try_files` fallback with its variables: `$uri` (the normalized path, escaped again),
/// `$args` and `$query_string` (the query), `$is_args` (`?` when there is one).
fn expand(template: &str, path: &[u8], query: Option<&str>) -> String {
    let mut escaped = String::with_capacity(path.len());
    for &byte in path {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    let query = query.unwrap_or_default();
    template
        .replace("$is_args", if query.is_empty() { "" } else { "?" })
        .replace("$query_string", query)
        .replace("$args", query)
        .replace("$uri", &escaped)
}

/// `path` percent-decoded, its empty and `.` segments dropped and each `..` taking the one
/// before it, as nginx reads a URI; ending in `/` when it did (or in `/.`, `/..`). `None`: a
/// bad escape, a NUL, or a `..` above the top (nginx's 400).
pub(crate) fn normalize(path: &str) -> Option<Vec<u8>> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = match bytes[at] {
            b'%' => {
                let hex = bytes.get(at + 1..at + 3)?;
                let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                at += 3;
                value
            }
            other => {
                at += 1;
                other
            }
        };
        if byte == 0 {
            return None;
        }
        decoded.push(byte);
    }
    resolve(&decoded)
}

/// A decoded path with its empty and `.` segments dropped and each `..` taking the one before
/// it; `None` for a `..` above the top.
fn resolve(decoded: &[u8]) -> Option<Vec<u8>> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut last: &[u8] = b"";
    for segment in decoded.split(|&b| b == b'/') {
        last = segment;
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop()?;
            }
            _ => segments.push(segment),
        }
    }
    let mut out = Vec::with_capacity(decoded.len() + 1);
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if segments.is_empty() || matches!(last, b"" | b"." | b"..") {
        out.push(b'/');
    }
    Some(out)
}

/// Opens `path` (without blocking on a FIFO) and reads what it is, on the blocking pool.
async fn open(path: PathBuf) -> Found {
    let opened = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)?;
        let metadata = file.metadata()?;
        Ok::<_, io::Error>((file, metadata))
    })
    .await;
    match opened {
        Ok(Ok((_, metadata))) if metadata.is_dir() => Found::Directory,
        Ok(Ok((file, metadata))) if metadata.is_file() => Found::File(file, metadata),
        // A FIFO, a socket, a device: not served.
        Ok(Ok(_)) => Found::Refused(StatusCode::NOT_FOUND),
        Ok(Err(err)) => Found::Refused(match err.raw_os_error() {
            Some(nix::libc::ENOENT | nix::libc::ENOTDIR | nix::libc::ENAMETOOLONG) => {
                StatusCode::NOT_FOUND
            }
            Some(nix::libc::EACCES | nix::libc::EPERM) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }),
        Err(_) => Found::Refused(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The response for a regular file: 200, 206, 304, 412 or 416.
fn respond(
    method: &Method,
    headers: &HeaderMap,
    file: std::fs::File,
    metadata: &std::fs::Metadata,
    media: HeaderValue,
    whole: bool,
) -> Response<ProxyBody> {
    let length = metadata.len();
    // nginx's, in whole seconds: "mtime-length" in hexadecimal.
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs());
    let etag = format!("\"{modified:x}-{length:x}\"");
    let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(modified));
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let date = |value: &str| -> Option<u64> {
        httpdate::parse_http_date(value.trim())
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|since| since.as_secs())
    };
    let mut response = Response::new(full(Bytes::new()));
    let fields = response.headers_mut();
    // Both are made of ASCII digits, letters and quotes, or an HTTP date.
    if let (Ok(etag), Ok(last_modified)) = (
        HeaderValue::from_str(&etag),
        HeaderValue::from_str(&last_modified),
    ) {
        fields.insert(header::LAST_MODIFIED, last_modified);
        fields.insert(header::ETAG, etag);
    }
    // nginx's not-modified module.
    if let Some(since) = text(header::IF_UNMODIFIED_SINCE)
        && date(&since).is_none_or(|since| since < modified)
    {
        return precondition_failed();
    }
    if let Some(wanted) = text(header::IF_MATCH)
        && !etag_matches(&wanted, &etag, false)
    {
        return precondition_failed();
    }
    let since = text(header::IF_MODIFIED_SINCE);
    let none_match = text(header::IF_NONE_MATCH);
    if since.is_some() || none_match.is_some() {
        let modified_since = since.is_some_and(|since| date(&since) != Some(modified));
        let changed = none_match.is_some_and(|tags| !etag_matches(&tags, &etag, true));
        if !modified_since && !changed {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return response;
        }
    }
    let fields = response.headers_mut();
    fields.insert(header::CONTENT_TYPE, media);
    // nginx's range module.
    let mut range = 0..length;
    // `whole`: the response is to be compressed, and nginx then serves the whole file.
    let wanted = text(header::RANGE)
        .filter(|_| !whole)
        .filter(|value| value.len() >= 7 && value.as_bytes()[..6].eq_ignore_ascii_case(b"bytes="));
    let if_range = text(header::IF_RANGE);
    let validator_holds = match &if_range {
        None => true,
        Some(tag) if tag.len() >= 2 && tag.ends_with('"') => *tag == etag,
        Some(when) => date(when) == Some(modified),
    };
    match wanted
        .filter(|_| validator_holds)
        .map(|value| ranges(&value[6..], length))
    {
        Some(Ranges::One(one)) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {}-{}/{length}", one.start, one.end - 1);
            if let Ok(value) = HeaderValue::from_str(&content_range) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            range = one;
        }
        Some(Ranges::Unsatisfiable) => {
            let mut refused = status(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return refused;
        }
        Some(Ranges::Whole) | None => {
            response
                .headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
    }
    let size = range.end - range.start;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if *method == Method::HEAD || size == 0 {
        return response;
    }
    let mut file = tokio::fs::File::from_std(file);
    let start = range.start;
    *response.body_mut() = Either::Right(Either::Right(FileBody {
        reader: None,
        opening: Some(Box::pin(async move {
            use tokio::io::AsyncSeekExt as _;
            file.seek(io::SeekFrom::Start(start)).await?;
            Ok(file.take(size))
        })),
        remaining: size,
        buffer: BytesMut::new(),
    }));
    response
}

/// `If-Match` (`weak`: `If-None-Match`) against the file's `etag`: `*`, or one of a comma
/// list, as nginx compares them (`W/` skipped when weak).
fn etag_matches(list: &str, etag: &str, weak: bool) -> bool {
    let list = list.trim_matches([' ', '\t']);
    if list == "*" {
        return true;
    }
    list.split(',').any(|tag| {
        let tag = tag.trim_matches([' ', '\t']);
        let tag = if weak {
            tag.strip_prefix("W/").unwrap_or(tag)
        } else {
            tag
        };
        tag == etag
    })
}

/// What a `Range` asks of a file of `length` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranges {
    One(std::ops::Range<u64>),
    /// 416.
    Unsatisfiable,
    /// The whole file, 200: several ranges, ranges longer than the file together, or one from
    /// byte 0 of an empty file.
    Whole,
}

/// Parses the ranges after `bytes=` as nginx does: `START-END`, `START-`, `-SUFFIX`, comma
/// separated, spaces allowed around each part; a range past the end is dropped, one reaching
/// past it cut at the end; anything malformed, or no range left, is 416.
fn ranges(spec: &str, length: u64) -> Ranges {
    let bytes = spec.as_bytes();
    let mut at = 0;
    let skip_spaces = |at: &mut usize| {
        while bytes.get(*at) == Some(&b' ') {
            *at += 1;
        }
    };
    let number = |at: &mut usize| -> Option<u64> {
        let start = *at;
        let mut value: u64 = 0;
        while let Some(digit) = bytes.get(*at).filter(|b| b.is_ascii_digit()) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            *at += 1;
        }
        (*at > start).then_some(value)
    };
    let mut found: Vec<std::ops::Range<u64>> = Vec::new();
    let mut total: u64 = 0;
    loop {
        skip_spaces(&mut at);
        let (start, end);
        if bytes.get(at) == Some(&b'-') {
            at += 1;
            let Some(suffix) = number(&mut at) else {
                return Ranges::Unsatisfiable;
            };
            start = length.saturating_sub(suffix);
            end = length;
        } else {
            let Some(first) = number(&mut at) else {
                return Ranges::Unsatisfiable;
            };
            skip_spaces(&mut at);
            if bytes.get(at) != Some(&b'-') {
                return Ranges::Unsatisfiable;
            }
            at += 1;
            skip_spaces(&mut at);
            start = first;
            if matches!(bytes.get(at), None | Some(b',')) {
                end = length;
            } else {
                let Some(last) = number(&mut at) else {
                    return Ranges::Unsatisfiable;
                };
                end = if last >= length { length } else { last + 1 };
            }
        }
        skip_spaces(&mut at);
        if !matches!(bytes.get(at), None | Some(b',')) {
            return Ranges::Unsatisfiable;
        }
        if start < end {
            total = total.saturating_add(end - start);
            found.push(start..end);
        } else if start == 0 {
            return Ranges::Whole;
        }
        if bytes.get(at) != Some(&b',') {
            break;
        }
        at += 1;
    }
    match found.len() {
        0 => Ranges::Unsatisfiable,
        _ if total > length => Ranges::Whole,
        1 => Ranges::One(found.remove(0)),
        // Several ranges: the whole file (nginx sends multipart/byteranges).
        _ => Ranges::Whole,
    }
}

/// A short answer of `code` with a plain-text body.
fn status(code: StatusCode) -> Response<ProxyBody> {
    let text = format!(
        "{} {}\n",
        code.as_u16(),
        code.canonical_reason().unwrap_or_default()
    );
    let mut response = Response::new(full(Bytes::from(text)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn precondition_failed() -> Response<ProxyBody> {
    status(StatusCode::PRECONDITION_FAILED)
}

fn full(bytes: Bytes) -> ProxyBody {
    Either::Right(Either::Left(Full::new(bytes)))
}

type Opening =
    Pin<Box<dyn std::future::Future<Output = io::Result<tokio::io::Take<tokio::fs::File>>> + Send>>;

/// A file's bytes from an offset, `remaining` of them, in reads of [`CHUNK`].
pub(crate) struct FileBody {
    /// The seek to the first byte, until it is done.
    opening: Option<Opening>,
    reader: Option<tokio::io::Take<tokio::fs::File>>,
    remaining: u64,
    buffer: BytesMut,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if let Some(opening) = this.opening.as_mut() {
            let reader = ready!(opening.as_mut().poll(cx));
            this.opening = None;
            match reader {
                Ok(reader) => this.reader = Some(reader),
                Err(err) => {
                    this.remaining = 0;
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        this.buffer.reserve(CHUNK);
        match ready!(tokio_util::io::poll_read_buf(
            Pin::new(reader),
            cx,
            &mut this.buffer
        )) {
            Ok(0) => {
                this.remaining = 0;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was sent",
                ))))
            }
            Ok(read) => {
                this.remaining = this.remaining.saturating_sub(read as u64);
                Poll::Ready(Some(Ok(Frame::data(this.buffer.split().freeze()))))
            }
            Err(err) => {
                this.remaining = 0;
                Poll::Ready(Some(Err(err)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_nginx_reads_a_uri() {
        let norm = |path: &str| normalize(path).map(|p| String::from_utf8(p).unwrap());
        assert_eq!(norm("/"), Some("/".into()));
        assert_eq!(norm("/a/b.css"), Some("/a/b.css".into()));
        assert_eq!(norm("//a///b/"), Some("/a/b/".into()));
        assert_eq!(norm("/a/./b/../c"), Some("/a/c".into()));
        assert_eq!(norm("/a/b/.."), Some("/a/".into()));
        assert_eq!(norm("/a/."), Some("/a/".into()));
        assert_eq!(norm("/%61%2Fb%20c"), Some("/a/b c".into()));
        // Escaped dots are dots.
        assert_eq!(norm("/a/%2e%2E/b"), Some("/b".into()));
        for bad in [
            "/..",
            "/a/../..",
            "/%2e%2e/etc/passwd",
            "/a%zz",
            "/a%2",
            "/a%00b",
        ] {
            assert_eq!(norm(bad), None, "{bad}");
        }
    }

    /// An alias whose location has no `/` where the alias has one never leaves its directory.
    #[test]
    fn an_alias_never_reaches_above_its_directory() {
        let files = Files::new(
            &config::Files {
                dir: PathBuf::from("/srv/images/"),
                alias: true,
                index: vec!["index.html".to_string()],
                default_type: "application/octet-stream".to_string(),
                try_files: None,
            },
            &config::PathMatch::Prefix("/img".to_string()),
            Arc::new(HashMap::new()),
        );
        let file = |path: &str| files.file_of(&normalize(path).unwrap());
        assert_eq!(
            file("/img/a.png"),
            Some(PathBuf::from("/srv/images//a.png"))
        );
        assert_eq!(file("/imga.png"), Some(PathBuf::from("/srv/images/a.png")));
        assert_eq!(file("/img../etc/passwd"), None);
        assert_eq!(file("/img./x"), None);
        assert_eq!(file("/other"), None);
    }

    #[test]
    fn ranges_are_read_as_nginx_reads_them() {
        assert_eq!(ranges("0-9", 100), Ranges::One(0..10));
        assert_eq!(ranges(" 10 - 19 ", 100), Ranges::One(10..20));
        assert_eq!(ranges("90-", 100), Ranges::One(90..100));
        assert_eq!(ranges("-10", 100), Ranges::One(90..100));
        assert_eq!(ranges("-500", 100), Ranges::One(0..100));
        assert_eq!(ranges("50-500", 100), Ranges::One(50..100));
        assert_eq!(ranges("0-", 100), Ranges::One(0..100));
        assert_eq!(ranges("0-0", 0), Ranges::Whole);
        // Past the end: dropped; nothing left: 416.
        assert_eq!(ranges("100-200", 100), Ranges::Unsatisfiable);
        assert_eq!(ranges("100-200,0-4", 100), Ranges::One(0..5));
        // Backwards: dropped.
        assert_eq!(ranges("9-5", 100), Ranges::Unsatisfiable);
        for bad in ["x", "1-x", "1", "1-2;", "--1", ""] {
            assert_eq!(ranges(bad, 100), Ranges::Unsatisfiable, "{bad}");
        }
        // Several, or more than the file: the whole file.
        assert_eq!(ranges("0-1,5-6", 100), Ranges::Whole);
        assert_eq!(ranges("0-60,40-99", 100), Ranges::Whole);
    }

    #[test]
    fn etags_are_compared_as_nginx_compares_them() {
        let etag = "\"5f-1a\"";
        assert!(etag_matches("*", etag, false));
        assert!(etag_matches("\"x\", \"5f-1a\"", etag, false));
        assert!(!etag_matches("W/\"5f-1a\"", etag, false));
        assert!(etag_matches("W/\"5f-1a\"", etag, true));
        assert!(!etag_matches("\"5f-1b\"", etag, true));
    }
}
