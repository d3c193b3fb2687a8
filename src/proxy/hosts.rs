//! `proxy.server_names`: which hosts the proxy answers for, matched as nginx matches a
//! request's host against `server_name`.
//!
//! A host is compared without its port and a trailing dot, case ignored: exact names, then
//! `*.example.com` (a name below it), `www.example.*` (a name after it), `.example.com` (the
//! name itself or one below), then the regular expressions in their order, on the host in
//! lower case. Nothing here allocates but a regular expression's lower-cased host.

use fancy_regex::Regex;
use http::StatusCode;

use crate::config::{self, UnknownHost};

/// The compiled `server_names`.
pub(crate) struct Hosts {
    exact: Box<[Box<[u8]>]>,
    /// `*.example.com` as `.example.com`: a name ending with it, longer than it.
    below: Box<[Box<[u8]>]>,
    /// `www.example.*` as `www.example.`: a name starting with it, longer than it.
    after: Box<[Box<[u8]>]>,
    /// `.example.com` as `example.com`: that name, or one ending with `.example.com`.
    itself_or_below: Box<[Box<[u8]>]>,
    regexes: Box<[Regex]>,
    unknown: UnknownHost,
}

impl Hosts {
    /// The names of `config` (checked when the configuration was resolved).
    pub(crate) fn new(config: &config::ServerNames) -> anyhow::Result<Hosts> {
        let (mut exact, mut below, mut after, mut itself_or_below, mut regexes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for name in &config.names {
            let bytes = |text: &str| text.as_bytes().to_ascii_lowercase().into_boxed_slice();
            if let Some(pattern) = name.strip_prefix('~') {
                regexes.push(config::regex_for(pattern, false).map_err(anyhow::Error::msg)?);
            } else if let Some(suffix) = name.strip_prefix('*') {
                below.push(bytes(suffix));
            } else if let Some(prefix) = name.strip_suffix('*') {
                after.push(bytes(prefix));
            } else if let Some(domain) = name.strip_prefix('.') {
                itself_or_below.push(bytes(domain));
            } else {
                exact.push(bytes(name));
            }
        }
        Ok(Hosts {
            exact: exact.into_boxed_slice(),
            below: below.into_boxed_slice(),
            after: after.into_boxed_slice(),
            itself_or_below: itself_or_below.into_boxed_slice(),
            regexes: regexes.into_boxed_slice(),
            unknown: config.unknown,
        })
    }

    /// Whether `host` (a valid Host value, `name[:port]`) is one of the names.
    pub(crate) fn knows(&self, host: &[u8]) -> bool {
        let host = name_of(host);
        let ends_with = |suffix: &[u8]| {
            host.len() >= suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        };
        self.exact
            .iter()
            .any(|name| host.eq_ignore_ascii_case(name))
            || self
                .below
                .iter()
                .any(|suffix| host.len() > suffix.len() && ends_with(suffix))
            || self.after.iter().any(|prefix| {
                host.len() > prefix.len() && host[..prefix.len()].eq_ignore_ascii_case(prefix)
            })
            || self.itself_or_below.iter().any(|domain| {
                host.eq_ignore_ascii_case(domain)
                    || (host.len() > domain.len()
                        && ends_with(domain)
                        && host[host.len() - domain.len() - 1] == b'.')
            })
            || (!self.regexes.is_empty() && {
                let lower = String::from_utf8_lossy(host).to_ascii_lowercase();
                self.regexes
                    .iter()
                    .any(|regex| regex.is_match(&lower).unwrap_or(false))
            })
    }

    /// The status a request for another host gets; `None`: the connection is closed.
    pub(crate) fn refusal(&self) -> Option<StatusCode> {
        match self.unknown {
            UnknownHost::Close => None,
            UnknownHost::Status(code) => {
                Some(StatusCode::from_u16(code).unwrap_or(StatusCode::MISDIRECTED_REQUEST))
            }
        }
    }
}

/// The name of a Host value: without its port and a trailing dot (nginx's host validation).
fn name_of(host: &[u8]) -> &[u8] {
    let name = if host.starts_with(b"[") {
        match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(colon) => &host[..colon],
            None => host,
        }
    };
    name.strip_suffix(b".").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Hosts {
        Hosts::new(&config::ServerNames {
            names: names.iter().map(ToString::to_string).collect(),
            unknown: UnknownHost::Close,
            reject_unknown_sni: false,
        })
        .unwrap()
    }

    /// The forms of nginx's `server_name`, each against the hosts it takes and those it does
    /// not (as nginx 1.22 chose between a named server and a default one for each).
    #[test]
    fn hosts_are_matched_as_nginx_matches_server_name() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "app.example.com",
                &[
                    "app.example.com",
                    "APP.Example.com:8443",
                    "app.example.com.",
                ],
                &["example.com", "x.app.example.com", "app.example.co"],
            ),
            (
                "*.example.com",
                &["a.example.com", "a.b.example.com:443"],
                &["example.com", ".example.com", "aexample.com"],
            ),
            (
                "www.example.*",
                &["www.example.com", "www.example.co.uk"],
                &["www.example", "example.com", "wwwxexample.com"],
            ),
            (
                ".example.com",
                &["example.com", "a.example.com", "a.b.EXAMPLE.com"],
                &["aexample.com", "example.org"],
            ),
            (
                "~^api\\d+\\.example\\.com$",
                &["api1.example.com", "API22.example.com:443"],
                &["api.example.com", "xapi1.example.com"],
            ),
            ("[::1]", &["[::1]", "[::1]:8443"], &["[::2]", "::1"]),
            ("_", &[], &["_x", "localhost"]),
        ];
        for (name, taken, refused) in cases {
            let hosts = hosts(&[name]);
            for host in *taken {
                assert!(hosts.knows(host.as_bytes()), "{name} takes {host}");
            }
            for host in *refused {
                assert!(!hosts.knows(host.as_bytes()), "{name} refuses {host}");
            }
        }
        let several = hosts(&["a.example.com", "*.example.org"]);
        assert!(several.knows(b"a.example.com"));
        assert!(several.knows(b"b.example.org"));
        assert!(!several.knows(b"b.example.com"));
    }
}
