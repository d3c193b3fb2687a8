//! Sprig's `urlParse` and `urlJoin`: Go's `net/url` parsing and printing of a URL.

use std::collections::BTreeMap;

use super::{Args, Outcome, kind_name, map, string, text};
use crate::template::Value;

/// The Sprig functions of this family.
pub(super) fn sprig(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "urlParse" => (|| {
            let raw = string(&args.exactly(1)?[0])?;
            let url = Url::parse(raw)
                .map_err(|err| format!("unable to parse url: parse {}: {err}", quote(raw)))?;
            let hostname = url.hostname().to_owned();
            let userinfo = url.user.as_ref().map(User::to_string).unwrap_or_default();
            let fields = [
                ("scheme", url.scheme),
                ("host", url.host),
                ("hostname", hostname),
                ("path", url.path),
                ("query", url.query),
                ("opaque", url.opaque),
                ("fragment", url.fragment),
                ("userinfo", userinfo),
            ];
            Ok(Value::Map(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect::<BTreeMap<_, _>>(),
            ))
        })(),
        "urlJoin" => (|| {
            let dict = map(&args.exactly(1)?[0])?;
            let field = |key: &str| -> Result<String, String> {
                match dict.get(key) {
                    None => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(format!(
                        "unable to parse {key} key, must be of type string, but {} found",
                        kind_name(other)
                    )),
                }
            };
            let mut url = Url {
                scheme: field("scheme")?,
                host: field("host")?,
                path: field("path")?,
                query: field("query")?,
                opaque: field("opaque")?,
                fragment: field("fragment")?,
                ..Url::default()
            };
            let userinfo = field("userinfo")?;
            if !userinfo.is_empty() {
                let raw = format!("proto://{userinfo}@host");
                let parsed = Url::parse(&raw).map_err(|err| {
                    format!(
                        "unable to parse userinfo in dict: parse {}: {err}",
                        quote(&raw)
                    )
                })?;
                url.user = parsed.user;
            }
            text(url.to_string())
        })(),
        _ => return None,
    })
}

fn quote(s: &str) -> String {
    crate::template::go_sprintf("%q", &[Value::String(s.to_owned())])
}

/// The parts of Go's `url.URL` that Sprig reads or sets.
#[derive(Default)]
struct Url {
    scheme: String,
    opaque: String,
    user: Option<User>,
    host: String,
    path: String,
    force_query: bool,
    query: String,
    fragment: String,
}

/// Go's `url.Userinfo`.
struct User {
    name: String,
    password: Option<String>,
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape(&self.name, Mode::UserPassword))?;
        if let Some(password) = &self.password {
            write!(f, ":{}", escape(password, Mode::UserPassword))?;
        }
        Ok(())
    }
}

/// Go's `encoding` modes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    UserPassword,
    Fragment,
}

impl Url {
    /// Go's `url.Parse` (messages without the `parse "URL": ` prefix).
    fn parse(raw: &str) -> Result<Url, String> {
        let (rest, fragment) = match raw.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (raw, None),
        };
        let mut url = Url::parse_without_fragment(rest)?;
        if let Some(fragment) = fragment {
            url.fragment = unescape(fragment, Mode::Fragment)?;
        }
        Ok(url)
    }

    fn parse_without_fragment(raw: &str) -> Result<Url, String> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("net/url: invalid control character in URL".to_owned());
        }
        let mut url = Url::default();
        if raw == "*" {
            url.path = "*".to_owned();
            return Ok(url);
        }
        let (scheme, rest) = split_scheme(raw)?;
        url.scheme = scheme.to_ascii_lowercase();
        let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
            url.force_query = true;
            &rest[..rest.len() - 1]
        } else {
            match rest.split_once('?') {
                Some((rest, query)) => {
                    url.query = query.to_owned();
                    rest
                }
                None => rest,
            }
        };
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_owned();
                return Ok(url);
            }
            let segment = rest.split('/').next().unwrap_or("");
            if segment.contains(':') {
                return Err("first path segment in URL cannot contain colon".to_owned());
            }
        }
        let mut path = rest;
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, tail) = match after.find('/') {
                Some(at) => (&after[..at], &after[at..]),
                None => (after, ""),
            };
            let (user, host) = parse_authority(authority)?;
            url.user = user;
            url.host = host;
            path = tail;
        }
        url.path = unescape(path, Mode::Path)?;
        Ok(url)
    }

    /// Go's `URL.Hostname`: the host without its port or IPv6 brackets.
    fn hostname(&self) -> &str {
        let mut host = self.host.as_str();
        if let Some(colon) = host.rfind(':')
            && valid_optional_port(&host[colon..])
        {
            host = &host[..colon];
        }
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }
}

impl std::fmt::Display for Url {
    /// Go's `URL.String`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if !self.opaque.is_empty() {
            out.push_str(&self.opaque);
        } else {
            if !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some() {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    out.push_str("//");
                }
                if let Some(user) = &self.user {
                    out.push_str(&user.to_string());
                    out.push('@');
                }
                out.push_str(&escape(&self.host, Mode::Host));
            }
            let path = if self.path == "*" {
                "*".to_owned()
            } else {
                escape(&self.path, Mode::Path)
            };
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                out.push('/');
            }
            if out.is_empty() && path.split('/').next().unwrap_or("").contains(':') {
                out.push_str("./");
            }
            out.push_str(&path);
        }
        if self.force_query || !self.query.is_empty() {
            out.push('?');
            out.push_str(&self.query);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&escape(&self.fragment, Mode::Fragment));
        }
        f.write_str(&out)
    }
}

/// Go's `getScheme`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".to_owned()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: `[userinfo@]host`.
fn parse_authority(authority: &str) -> Result<(Option<User>, String), String> {
    let Some(at) = authority.rfind('@') else {
        return Ok((None, parse_host(authority)?));
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    if !userinfo
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b))
    {
        return Err("net/url: invalid userinfo".to_owned());
    }
    let user = match userinfo.split_once(':') {
        None => User {
            name: unescape(userinfo, Mode::UserPassword)?,
            password: None,
        },
        Some((name, password)) => User {
            name: unescape(name, Mode::UserPassword)?,
            password: Some(unescape(password, Mode::UserPassword)?),
        },
    };
    Ok((Some(user), host))
}

/// Go's `parseHost`: brackets and port checked, escapes decoded.
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let close = host
            .rfind(']')
            .ok_or_else(|| "missing ']' in host".to_owned())?;
        let port = &host[close + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {} after host", quote(port)));
        }
    } else if let Some(colon) = host.rfind(':') {
        let port = &host[colon..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {} after host", quote(port)));
        }
    }
    unescape(host, Mode::Host)
}

/// Go's `validOptionalPort`: empty, or `:` and digits.
fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => {
            return match mode {
                Mode::Path => c == b'?',
                Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
                Mode::Fragment => false,
                Mode::Host => true,
            };
        }
        _ => {}
    }
    !(mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*'))
}

/// Go's `escape`: the bytes `should_escape` names as `%XX`.
fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if should_escape(b, mode) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Go's `unescape` (a decoded byte sequence that is not UTF-8 gets U+FFFD, as a template
/// string must be text).
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
            let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
                let end = (i + 3).min(bytes.len());
                return Err(format!(
                    "invalid URL escape {}",
                    quote(&String::from_utf8_lossy(&bytes[i..end]))
                ));
            };
            if mode == Mode::Host && high < 8 && &s[i..i + 3] != "%25" {
                return Err(format!("invalid URL escape {}", quote(&s[i..i + 3])));
            }
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            if mode == Mode::Host && b < 0x80 && should_escape(b, mode) {
                return Err(format!(
                    "invalid character {} in host name",
                    quote(&s[i..i + 1])
                ));
            }
            out.push(b);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
