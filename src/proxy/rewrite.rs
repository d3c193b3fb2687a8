//! `rewrites` (nginx's `rewrite REGEX REPLACEMENT [FLAG]`): a request's path replaced, or the
//! request redirected, before its location is looked up (the proxy's) or in its location (a
//! route's).
//!
//! Each rule's expression is tried, in order, on the path as it stands (as the client sent it,
//! or as an earlier rule left it). A match makes the replacement: text, `$1`..`$9` (the groups),
//! the request's variables. A replacement that begins with `http://`, `https://` or `$scheme`,
//! or a rule flagged `redirect` (302) or `permanent` (301), answers with a redirect there. Else
//! the replacement is the new path; its own query (after `?`) comes first and the request's
//! follows after `&`, unless the replacement ends with `?`, which drops the request's. Then
//! `last` and `break` stop the rules, and no flag tries the next ones.

use http::uri::PathAndQuery;
use http::{HeaderValue, StatusCode, Uri};

use crate::config::{self, ReplacementPiece, RequestHeaderPart, RewriteFlag};

/// One rule, its expression compiled.
pub(crate) struct Rule {
    regex: fancy_regex::Regex,
    pieces: Box<[ReplacementPiece]>,
    flag: RewriteFlag,
    redirects: bool,
}

impl Rule {
    /// The compiled rules of `rules`, in order; an expression that does not compile is an error
    /// (the configuration was checked when it was read).
    pub(crate) fn compile(rules: &[config::RewriteRule]) -> anyhow::Result<Box<[Rule]>> {
        rules
            .iter()
            .map(|rule| {
                Ok(Rule {
                    regex: config::regex_for(&rule.regex, false)
                        .map_err(|why| anyhow::anyhow!("rewrite {}: {why}", rule.regex))?,
                    pieces: rule.pieces.clone().into(),
                    flag: rule.flag,
                    redirects: rule.redirects(),
                })
            })
            .collect()
    }
}

/// What the rules did to a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No rule matched.
    Unchanged,
    /// The request's new target; `search`: its location is to be looked up again (no flag or
    /// `last`), else it stays where it is (`break`).
    Changed { target: PathAndQuery, search: bool },
    /// A redirect: the status and `Location`.
    Redirect(StatusCode, HeaderValue),
    /// A replacement that makes no target or no `Location` (a decoded variable with a space).
    Invalid,
}

/// Applies `rules` to a request of target `uri`; `push` appends the value of a request variable
/// other than the path's and the query's (which the rules may have changed).
pub(crate) fn apply(
    rules: &[Rule],
    uri: &Uri,
    mut push: impl FnMut(&mut Vec<u8>, &RequestHeaderPart),
) -> Outcome {
    let mut path = uri.path().to_string();
    let mut query = uri.query().map(str::to_string);
    // The target the last rule made, when no rule stopped the others.
    let mut last = None;
    for rule in rules {
        let Ok(Some(groups)) = rule.regex.captures(&path) else {
            continue;
        };
        let mut built = Vec::new();
        for piece in &rule.pieces {
            match piece {
                ReplacementPiece::Capture(n) => {
                    if let Some(group) = groups.get(*n) {
                        built.extend_from_slice(group.as_str().as_bytes());
                    }
                }
                ReplacementPiece::Part(RequestHeaderPart::Uri) => {
                    match super::files::normalize(&path) {
                        Some(decoded) => built.extend_from_slice(&decoded),
                        None => built.extend_from_slice(path.as_bytes()),
                    }
                }
                ReplacementPiece::Part(RequestHeaderPart::Args) => {
                    built.extend_from_slice(query.as_deref().unwrap_or_default().as_bytes());
                }
                ReplacementPiece::Part(RequestHeaderPart::IsArgs) => {
                    if query.as_deref().is_some_and(|q| !q.is_empty()) {
                        built.push(b'?');
                    }
                }
                ReplacementPiece::Part(part) => push(&mut built, part),
            }
        }
        drop(groups);
        let Ok(built) = String::from_utf8(built) else {
            return Outcome::Invalid;
        };
        // The request's query after the replacement's own, unless it ends with `?`.
        let (new_path, new_query) = match built.strip_suffix('?') {
            Some(without) => match without.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (without.to_string(), None),
            },
            None => match (built.split_once('?'), &query) {
                (Some((p, q)), Some(old)) if !old.is_empty() => {
                    (p.to_string(), Some(format!("{q}&{old}")))
                }
                (Some((p, q)), _) => (p.to_string(), Some(q.to_string())),
                (None, old) => (built.clone(), old.clone()),
            },
        };
        let joined = match new_query.as_deref() {
            Some(q) if !q.is_empty() => format!("{new_path}?{q}"),
            _ => new_path.clone(),
        };
        if rule.redirects {
            let status = if rule.flag == RewriteFlag::Permanent {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::FOUND
            };
            return match HeaderValue::try_from(joined) {
                Ok(location) => Outcome::Redirect(status, location),
                Err(_) => Outcome::Invalid,
            };
        }
        let target = match PathAndQuery::try_from(joined) {
            Ok(target) if new_path.starts_with('/') => target,
            _ => return Outcome::Invalid,
        };
        path = new_path;
        query = new_query;
        match rule.flag {
            RewriteFlag::Last => {
                return Outcome::Changed {
                    target,
                    search: true,
                };
            }
            RewriteFlag::Break => {
                return Outcome::Changed {
                    target,
                    search: false,
                };
            }
            _ => last = Some(target),
        }
    }
    match last {
        Some(target) => Outcome::Changed {
            target,
            search: true,
        },
        None => Outcome::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(&str, &str, RewriteFlag)]) -> Box<[Rule]> {
        let rules: Vec<config::RewriteRule> = list
            .iter()
            .map(|(regex, replacement, flag)| config::RewriteRule {
                regex: regex.to_string(),
                replacement: replacement.to_string(),
                pieces: config::RewriteRule::pieces(replacement).unwrap(),
                flag: *flag,
            })
            .collect();
        Rule::compile(&rules).unwrap()
    }

    fn run(rules: &[Rule], target: &str) -> Outcome {
        let uri: Uri = target.parse().unwrap();
        apply(rules, &uri, |built, part| {
            if let RequestHeaderPart::Text(text) = part {
                built.extend_from_slice(text.as_bytes());
            } else {
                built.extend_from_slice(b"example.com");
            }
        })
    }

    fn changed(target: &str, search: bool) -> Outcome {
        Outcome::Changed {
            target: PathAndQuery::try_from(target).unwrap(),
            search,
        }
    }

    #[test]
    fn groups_queries_and_flags_make_the_new_target() {
        use RewriteFlag::*;
        let last = rules(&[("^/static/[0-9a-f]{8}/(.*)$", "/$1", Last)]);
        assert_eq!(
            run(&last, "/static/0123abcd/css/a.css?v=1"),
            changed("/css/a.css?v=1", true)
        );
        assert_eq!(run(&last, "/static/short/a.css"), Outcome::Unchanged);
        // The replacement's query first, the request's after it; `?` at the end drops it.
        let query = rules(&[("^/a/(.*)", "/b?x=$1", Break)]);
        assert_eq!(run(&query, "/a/1?y=2"), changed("/b?x=1&y=2", false));
        let drop = rules(&[("^/a/(.*)", "/b/$1?", Break)]);
        assert_eq!(run(&drop, "/a/1?y=2"), changed("/b/1", false));
        // No flag: the next rules see the new path; the location is looked up again.
        let chain = rules(&[
            ("^/one(.*)", "/two$1", Next),
            ("^/two(.*)", "/three$1", Next),
        ]);
        assert_eq!(run(&chain, "/one/x"), changed("/three/x", true));
        // `last` stops the rules.
        let stop = rules(&[
            ("^/one(.*)", "/two$1", Last),
            ("^/two(.*)", "/three$1", Next),
        ]);
        assert_eq!(run(&stop, "/one/x"), changed("/two/x", true));
        // `$12` is the first group and a 2.
        let digits = rules(&[("^/(a)", "/$12", Break)]);
        assert_eq!(run(&digits, "/a"), changed("/a2", false));
    }

    #[test]
    fn urls_and_redirect_flags_answer_with_a_redirect() {
        use RewriteFlag::*;
        let permanent = rules(&[("^/old/(.*)$", "/new/$1", Permanent)]);
        assert_eq!(
            run(&permanent, "/old/x?a=1"),
            Outcome::Redirect(
                StatusCode::MOVED_PERMANENTLY,
                HeaderValue::from_static("/new/x?a=1")
            )
        );
        let url = rules(&[("^", "https://$host/moved", Next)]);
        assert_eq!(
            run(&url, "/anything"),
            Outcome::Redirect(
                StatusCode::FOUND,
                HeaderValue::from_static("https://example.com/moved")
            )
        );
        // `$uri` is decoded: a space makes no target.
        let decoded = rules(&[("^/d/", "/e$uri", Break)]);
        assert_eq!(run(&decoded, "/d/a%20b"), Outcome::Invalid);
    }
}
