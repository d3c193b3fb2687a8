//! `cookie_flags`: the `Secure`, `HttpOnly` and `SameSite` attributes of the upstream's
//! `Set-Cookie` headers added or removed, as nginx's `proxy_cookie_flags` does it.
//!
//! A header whose first part is not `NAME=VALUE` is passed as it is. Otherwise the first rule
//! whose cookie matches the name (the name itself, or a regular expression written `~REGEX`)
//! applies: its `no*` flags remove those attributes, `samesite=...` replaces the cookie's own
//! `SameSite` where it stands, and the attributes it asks for that the cookie lacks are added
//! at the end, `Secure` first, then `HttpOnly`, then `SameSite`. A header a rule applied to is
//! written again as nginx writes it: its parts trimmed and joined with `"; "`; one no rule
//! matched is passed byte for byte.

use http::HeaderValue;

use crate::config::{CookieFlag, CookieRule};

/// One rule, its regular expression compiled.
pub(crate) struct Rule {
    cookie: Cookie,
    flags: Vec<CookieFlag>,
}

enum Cookie {
    Name(String),
    /// `~` alone.
    Every,
    Regex(fancy_regex::Regex),
}

impl Rule {
    /// The rule `config` (validated when the configuration was read).
    pub(crate) fn new(config: &CookieRule) -> Option<Rule> {
        let cookie = match config.cookie.strip_prefix('~') {
            Some("") => Cookie::Every,
            Some(pattern) => Cookie::Regex(crate::config::regex_for(pattern, false).ok()?),
            None => Cookie::Name(config.cookie.clone()),
        };
        Some(Rule {
            cookie,
            flags: config.flags.clone(),
        })
    }

    fn matches(&self, name: &str) -> bool {
        match &self.cookie {
            Cookie::Name(wanted) => wanted == name,
            Cookie::Every => true,
            // An error is a name past the backtracking limit: it does not match.
            Cookie::Regex(regex) => regex.is_match(name).unwrap_or(false),
        }
    }
}

/// `value` with the first of `rules` that matches its cookie applied; `None` when none does
/// (or the value is not a cookie): it is passed as it is.
pub(crate) fn apply(rules: &[Rule], value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let mut parts: Vec<(String, Option<String>)> = text
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, value)) => (key.trim().to_string(), Some(value.trim().to_string())),
            None => (part.to_string(), None),
        })
        .collect();
    let (name, Some(_)) = parts.first()? else {
        return None;
    };
    let rule = rules.iter().find(|rule| rule.matches(name))?;
    let wants = |flag: CookieFlag| rule.flags.contains(&flag);
    let same_site = rule.flags.iter().find_map(|flag| match flag {
        CookieFlag::SameSite(value) => Some(*value),
        _ => None,
    });
    let (mut secure, mut http_only, mut same_site_set) = (false, false, false);
    let mut kept = vec![parts.remove(0)];
    for (key, value) in parts {
        if key.eq_ignore_ascii_case("secure") {
            if wants(CookieFlag::NoSecure) {
                continue;
            }
            secure = true;
        } else if key.eq_ignore_ascii_case("httponly") {
            if wants(CookieFlag::NoHttpOnly) {
                continue;
            }
            http_only = true;
        } else if key.eq_ignore_ascii_case("samesite") {
            if wants(CookieFlag::NoSameSite) {
                continue;
            }
            if let Some(wanted) = same_site {
                same_site_set = true;
                kept.push(("SameSite".to_string(), Some(wanted.to_string())));
                continue;
            }
        }
        kept.push((key, value));
    }
    if wants(CookieFlag::Secure) && !secure {
        kept.push(("Secure".to_string(), None));
    }
    if wants(CookieFlag::HttpOnly) && !http_only {
        kept.push(("HttpOnly".to_string(), None));
    }
    if let (Some(wanted), false) = (same_site, same_site_set) {
        kept.push(("SameSite".to_string(), Some(wanted.to_string())));
    }
    let written: Vec<String> = kept
        .into_iter()
        .map(|(key, value)| match value {
            Some(value) => format!("{key}={value}"),
            None => key,
        })
        .collect();
    HeaderValue::from_str(&written.join("; ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SameSite as Site;

    fn rules(specs: &[(&str, &[CookieFlag])]) -> Vec<Rule> {
        specs
            .iter()
            .map(|(cookie, flags)| {
                Rule::new(&CookieRule {
                    cookie: cookie.to_string(),
                    flags: flags.to_vec(),
                })
                .unwrap()
            })
            .collect()
    }

    fn applied(rules: &[Rule], value: &str) -> String {
        apply(rules, &HeaderValue::from_str(value).unwrap())
            .map_or_else(|| value.to_string(), |v| v.to_str().unwrap().to_string())
    }

    /// The cases and what nginx 1.22 sent for each (`proxy_cookie_flags`, seen with curl).
    #[test]
    fn flags_are_added_and_removed_as_nginx_does() {
        use CookieFlag::*;
        let cookies = [
            "session_id=abc; Path=/",
            "session_id=x; Secure; SameSite=Strict; HttpOnly",
            "other=1; path=/; SAMESITE=none",
            "a=b",
            "weird; ;x=y",
            "session_id=q;path=/;secure",
            "c=d; Max-Age=5; httponly ; samesite = Lax",
        ];
        let a = rules(&[("session_id", &[SameSite(Site::Lax), Secure])]);
        let b = rules(&[("~", &[NoSecure, SameSite(Site::Strict), HttpOnly])]);
        let c = rules(&[
            ("other", &[NoSameSite]),
            ("~(?i)^SESS", &[NoHttpOnly, SameSite(Site::None)]),
        ]);
        let expected: [(&[Rule], [&str; 7]); 3] = [
            (
                &a,
                [
                    "session_id=abc; Path=/; Secure; SameSite=Lax",
                    "session_id=x; Secure; SameSite=Lax; HttpOnly",
                    "other=1; path=/; SAMESITE=none",
                    "a=b",
                    "weird; ;x=y",
                    "session_id=q; path=/; secure; SameSite=Lax",
                    "c=d; Max-Age=5; httponly ; samesite = Lax",
                ],
            ),
            (
                &b,
                [
                    "session_id=abc; Path=/; HttpOnly; SameSite=Strict",
                    "session_id=x; SameSite=Strict; HttpOnly",
                    "other=1; path=/; SameSite=Strict; HttpOnly",
                    "a=b; HttpOnly; SameSite=Strict",
                    "weird; ;x=y",
                    "session_id=q; path=/; HttpOnly; SameSite=Strict",
                    "c=d; Max-Age=5; httponly; SameSite=Strict",
                ],
            ),
            (
                &c,
                [
                    "session_id=abc; Path=/; SameSite=None",
                    "session_id=x; Secure; SameSite=None",
                    "other=1; path=/",
                    "a=b",
                    "weird; ;x=y",
                    "session_id=q; path=/; secure; SameSite=None",
                    "c=d; Max-Age=5; httponly ; samesite = Lax",
                ],
            ),
        ];
        for (rules, wanted) in expected {
            for (cookie, wanted) in cookies.iter().zip(wanted) {
                assert_eq!(applied(rules, cookie), wanted, "{cookie}");
            }
        }
    }
}
