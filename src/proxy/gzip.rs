//! `proxy.gzip`: responses compressed on their way to the client, as nginx's `gzip on` does.
//!
//! Which responses, as nginx's gzip filter decides: the client accepts `gzip` (not with
//! `q=0`), spoke HTTP/1.1 or later (`http_version = "1.0"` lets HTTP/1.0 in), and a request
//! that came through another proxy (`Via`) only as `proxied` allows;
//! the response is a 200, 403 or 404 without a `Content-Encoding`, of a type in `types`
//! (`text/html` always), and not announced shorter than `min_length`. The compressed response
//! loses `Content-Length` and `Accept-Ranges`, and a strong `ETag` becomes weak. `vary` adds
//! `Vary: Accept-Encoding` to every response of a compressible status and type, compressed or
//! not, as nginx's `gzip_vary` does.
//!
//! The body is compressed frame by frame with a sync flush after each, so a streamed response
//! (server-sent events, a long poll) is never held back waiting for more.

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode, Version};

use crate::config::{self, GzipProxied};

/// The compiled `proxy.gzip`.
pub(crate) struct Gzip {
    /// In lower case; `text/html` among them.
    types: Box<[Box<str>]>,
    any_type: bool,
    min_length: u64,
    level: Compression,
    vary: bool,
    proxied: Box<[GzipProxied]>,
    http10: bool,
}

/// What the response's decision needs to know of its request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Asked {
    /// The client takes gzip, over a version `http_version` allows (a HEAD too: its head
    /// says what a GET would get, as nginx's does).
    accepts: bool,
    /// The request came through another proxy (`Via`).
    via: bool,
    /// It carries `Authorization` (for `proxied = ["auth"]`).
    authorization: bool,
    /// A HEAD: the head is the one a GET gets, with no body to compress.
    head: bool,
}

impl Gzip {
    pub(crate) fn new(config: &config::Gzip) -> Gzip {
        let mut types: Vec<Box<str>> = config
            .types
            .iter()
            .map(|t| t.to_ascii_lowercase().into_boxed_str())
            .collect();
        if !types.iter().any(|t| &**t == "text/html") {
            types.push("text/html".into());
        }
        Gzip {
            any_type: types.iter().any(|t| &**t == "*"),
            types: types.into_boxed_slice(),
            min_length: config.min_length,
            level: Compression::new(config.level),
            vary: config.vary,
            proxied: config.proxied.clone().into_boxed_slice(),
            http10: config.http10,
        }
    }

    /// What `request` says about compressing its response.
    pub(crate) fn asked<B>(&self, request: &Request<B>) -> Asked {
        let headers = request.headers();
        let version_ok = match request.version() {
            Version::HTTP_09 => false,
            Version::HTTP_10 => self.http10,
            _ => true,
        };
        Asked {
            accepts: version_ok
                && headers
                    .get_all(header::ACCEPT_ENCODING)
                    .iter()
                    .any(|value| accepts_gzip(value.as_bytes())),
            via: headers.contains_key(header::VIA),
            head: request.method() == http::Method::HEAD,
            authorization: headers.contains_key(header::AUTHORIZATION),
        }
    }

    /// Decides for the response of `status` with `headers` to a request that `asked`: adds
    /// `Vary` when due, and when it is to be compressed, changes its headers for the
    /// compressed body and returns the encoder to compress it with (none for a HEAD, whose
    /// head alone changes).
    pub(crate) fn start(
        &self,
        asked: Asked,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> Option<Box<Encoder>> {
        if !matches!(
            status,
            StatusCode::OK | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ) || headers.contains_key(header::CONTENT_ENCODING)
            || !self.compressible_type(headers)
        {
            return None;
        }
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if length.is_some_and(|length| length < self.min_length) {
            return None;
        }
        if self.vary {
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if !asked.accepts || (asked.via && !self.proxied_allows(asked, headers)) {
            return None;
        }
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::ACCEPT_RANGES);
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        if let Some(etag) = headers.get(header::ETAG)
            && !etag.as_bytes().starts_with(b"W/")
        {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(etag.as_bytes());
            match HeaderValue::from_bytes(&weak) {
                Ok(weak) => {
                    headers.insert(header::ETAG, weak);
                }
                Err(_) => {
                    headers.remove(header::ETAG);
                }
            }
        }
        (!asked.head).then(|| {
            Box::new(Encoder {
                inner: GzEncoder::new(Vec::new(), self.level),
            })
        })
    }

    /// Whether a file's 200 of type `media` and `length` bytes is compressed for a request
    /// that `asked`: nginx then serves it whole, its gzip filter having dropped the length
    /// that its range filter needs, and a `Range` is not honoured.
    pub(crate) fn compresses_file(&self, asked: Asked, media: &HeaderValue, length: u64) -> bool {
        // A file's response has an ETag and a Last-Modified and no Expires or Cache-Control
        // yet: of `proxied`, only `any` and `auth` can let a proxied request's file through.
        let proxied_allows = || {
            self.proxied.iter().any(|when| match when {
                GzipProxied::Any => true,
                GzipProxied::Auth => asked.authorization,
                _ => false,
            })
        };
        asked.accepts
            && length >= self.min_length
            && self.type_matches(media)
            && (!asked.via || proxied_allows())
    }

    fn compressible_type(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| self.type_matches(value))
    }

    fn type_matches(&self, value: &HeaderValue) -> bool {
        let media = value.as_bytes();
        let media = media
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        self.any_type
            || self
                .types
                .iter()
                .any(|t| t.as_bytes().eq_ignore_ascii_case(media))
    }

    /// nginx's `gzip_proxied` for a request that came through a proxy.
    fn proxied_allows(&self, asked: Asked, headers: &HeaderMap) -> bool {
        let cache_control = |word: &str| {
            headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains(word))
            })
        };
        self.proxied.iter().any(|when| match when {
            GzipProxied::Any => true,
            GzipProxied::Expired => headers.contains_key(header::EXPIRES),
            GzipProxied::NoCache => cache_control("no-cache"),
            GzipProxied::NoStore => cache_control("no-store"),
            GzipProxied::Private => cache_control("private"),
            GzipProxied::NoLastModified => !headers.contains_key(header::LAST_MODIFIED),
            GzipProxied::NoEtag => !headers.contains_key(header::ETAG),
            GzipProxied::Auth => asked.authorization,
        })
    }
}

/// Whether an `Accept-Encoding` value takes gzip: a `gzip` coding whose `q` is not zero.
fn accepts_gzip(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    value.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim();
        name.eq_ignore_ascii_case("gzip")
            && parts.all(|param| {
                let param = param.trim();
                let Some(q) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                else {
                    return true;
                };
                q.trim().parse::<f32>().map_or(true, |q| q > 0.0)
            })
    })
}

/// One response's compressor.
pub(crate) struct Encoder {
    inner: GzEncoder<Vec<u8>>,
}

impl Encoder {
    /// `data` compressed, flushed so that the client can decompress all of it now.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Bytes {
        // Writing to a `Vec` cannot fail.
        let _ = self.inner.write_all(data);
        let _ = self.inner.flush();
        Bytes::from(std::mem::take(self.inner.get_mut()))
    }

    /// The end of the stream: what is left and gzip's trailer.
    pub(crate) fn finish(&mut self) -> Bytes {
        let _ = self.inner.try_finish();
        Bytes::from(std::mem::take(self.inner.get_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_as_nginx_reads_it() {
        for (value, takes) in [
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("deflate, gzip;q=0", false),
            ("gzip; q=0.000", false),
            ("x-gzip", false),
            ("identity", false),
            ("", false),
        ] {
            assert_eq!(accepts_gzip(value.as_bytes()), takes, "{value}");
        }
    }

    #[test]
    fn a_stream_compressed_frame_by_frame_is_one_gzip_member() {
        let gzip = Gzip::new(&config::Gzip {
            types: vec!["application/json".to_string()],
            min_length: 20,
            level: 1,
            vary: true,
            proxied: Vec::new(),
            http10: false,
        });
        let request = Request::builder()
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(())
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2000"));
        let mut encoder = gzip
            .start(gzip.asked(&request), StatusCode::OK, &mut headers)
            .expect("compressed");
        assert_eq!(headers[header::ETAG], "W/\"abc\"");
        assert_eq!(headers[header::VARY], "Accept-Encoding");
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
        let mut compressed = Vec::new();
        for _ in 0..100 {
            let out = encoder.compress(b"{\"a\":1}\n");
            assert!(!out.is_empty(), "each frame flushed");
            compressed.extend_from_slice(&out);
        }
        compressed.extend_from_slice(&encoder.finish());
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&compressed[..]),
            &mut plain,
        )
        .unwrap();
        assert_eq!(plain, "{\"a\":1}\n".repeat(100));
        // Too short, another type, a 500: as it came (Vary for the first, whose type
        // and status could have been compressed).
        let mut short = HeaderMap::new();
        short.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        short.insert(header::CONTENT_LENGTH, HeaderValue::from_static("19"));
        assert!(
            gzip.start(gzip.asked(&request), StatusCode::OK, &mut short)
                .is_none()
        );
        let mut other = HeaderMap::new();
        other.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        assert!(
            gzip.start(gzip.asked(&request), StatusCode::OK, &mut other)
                .is_none()
        );
        assert!(!other.contains_key(header::VARY));
        let mut html = HeaderMap::new();
        html.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        assert!(
            gzip.start(
                gzip.asked(&request),
                StatusCode::INTERNAL_SERVER_ERROR,
                &mut html
            )
            .is_none()
        );
        // Through another proxy: not with `proxied` empty (nginx's `off`).
        let via = Request::builder()
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(header::VIA, "1.1 cdn")
            .body(())
            .unwrap();
        let mut html = HeaderMap::new();
        html.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        assert!(
            gzip.start(gzip.asked(&via), StatusCode::OK, &mut html)
                .is_none()
        );
    }
}
