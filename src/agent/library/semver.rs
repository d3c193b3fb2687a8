//! Sprig's `semverCompare`: Masterminds/semver v3.4.0's versions (`NewVersion`, which coerces
//! `1`, `v1.2`) and constraints (`NewConstraint`: `=`, `!=`, `>`, `<`, `>=`, `<=`, `~`, `^`,
//! `x` wildcards, `A - B` ranges, `,` or space for and, `||` for or), the version OpenBao
//! Agent 2.7.2 links.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

use super::{Args, Outcome, string};
use crate::template::Value;

/// The Sprig functions of this family.
pub(super) fn sprig(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "semverCompare" => (|| {
            let a = args.exactly(2)?;
            let (constraint, version) = (string(&a[0])?, string(&a[1])?);
            let constraints = parse_constraints(constraint)?;
            let version = Version::parse(version)?;
            Ok(Value::Bool(constraints.iter().any(|group| {
                let include_pre = group.iter().any(|c| !c.version.pre.is_empty());
                group.iter().all(|c| c.check(&version, include_pre))
            })))
        })(),
        _ => return None,
    })
}

/// Go's RE2 `\s`.
const WS: &str = r"[\t\n\f\r ]";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";

fn regex(pattern: String) -> Regex {
    Regex::new(&pattern).unwrap_or_else(|err| panic!("semver pattern: {err}"))
}

static LOOSE_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$"
            .to_owned(),
    )
});
static CONSTRAINT: LazyLock<Regex> =
    LazyLock::new(|| regex(format!(r"^{WS}*({OPS}){WS}*({CV}){WS}*$")));
static RANGE: LazyLock<Regex> =
    LazyLock::new(|| regex(format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")));
static FIND: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"({OPS}){WS}*({CV})")));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    regex(format!(
        r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
    ))
});

/// A version: numbers, prerelease and (ignored in comparisons) metadata.
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl Version {
    /// semver's `NewVersion` (coercing): messages as Go's.
    fn parse(text: &str) -> Result<Version, String> {
        let m = LOOSE_VERSION
            .captures(text)
            .ok_or_else(|| "invalid semantic version".to_owned())?;
        let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
        let number = |i: usize| -> Result<u64, String> {
            let digits = group(i).trim_start_matches('.');
            if digits.is_empty() {
                return Ok(0);
            }
            digits.parse().map_err(|_| {
                format!(
                    "error parsing version segment: strconv.ParseUint: parsing {}: value out of range",
                    crate::template::go_quote(digits)
                )
            })
        };
        let version = Version {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
            pre: group(5).to_owned(),
        };
        if !version.pre.is_empty() {
            for part in version.pre.split('.') {
                if part.bytes().all(|b| b.is_ascii_digit()) {
                    if part.len() > 1 && part.starts_with('0') {
                        return Err("version segment starts with 0".to_owned());
                    }
                } else if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err("invalid prerelease string".to_owned());
                }
            }
        }
        // The loose pattern already limits metadata to what validateMetadata accepts.
        Ok(version)
    }

    fn compare(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(""),
            b.get(i).copied().unwrap_or(""),
        );
        let order = compare_pre_part(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// semver's `comparePrePart`: numbers below words, numbers by value, words bytewise.
fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    let number = |t: &str| {
        if t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (number(s), number(o)) {
        (None, None) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => {
            if x > y {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// One comparison of a constraint.
struct Constraint {
    op: String,
    version: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

/// semver's `NewConstraint`: or-groups of and-ed comparisons.
fn parse_constraints(text: &str) -> Result<Vec<Vec<Constraint>>, String> {
    let rewritten = rewrite_ranges(text);
    rewritten
        .split("||")
        .map(|group| {
            if !VALID.is_match(group) {
                return Err(format!("improper constraint: {group}"));
            }
            FIND.find_iter(group)
                .map(|m| parse_constraint(m.as_str()))
                .collect()
        })
        .collect()
}

/// semver's `rewriteRange`: `A - B` becomes `>= A, <= B `.
fn rewrite_ranges(text: &str) -> String {
    let mut out = text.to_owned();
    for m in RANGE.captures_iter(text) {
        let replacement = format!(">= {}, <= {} ", &m[1], &m[11]);
        out = out.replacen(&m[0], &replacement, 1);
    }
    out
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "*" | "X")
}

/// semver's `parseConstraint`.
fn parse_constraint(text: &str) -> Result<Constraint, String> {
    let m = CONSTRAINT
        .captures(text)
        .ok_or_else(|| format!("improper constraint: {text}"))?;
    let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
    let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
    let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
    let version = if is_x(major) {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        (dirty, minor_dirty) = (true, true);
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        (dirty, patch_dirty) = (true, true);
        format!("{major}{minor}.0{pre}")
    } else {
        group(2).to_owned()
    };
    let version = Version::parse(&version).map_err(|_| "constraint parser error".to_owned())?;
    Ok(Constraint {
        op: group(1).to_owned(),
        version,
        minor_dirty,
        patch_dirty,
        dirty,
    })
}

impl Constraint {
    /// Whether `v` meets this comparison (semver's constraint functions, without their
    /// messages: `semverCompare` only reports the result).
    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.version;
        match self.op.as_str() {
            "" | "=" => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.compare(c) == Ordering::Equal
                }
            }
            "!=" => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                v.compare(c) != Ordering::Equal
            }
            ">" => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                v.compare(c) == Ordering::Greater
            }
            "<" => v.compare(c) == Ordering::Less,
            ">=" | "=>" => v.compare(c) != Ordering::Less,
            "<=" | "=<" => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major || v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            "~" | "~>" => self.tilde(v),
            "^" => self.caret(v),
            _ => false,
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }
}
