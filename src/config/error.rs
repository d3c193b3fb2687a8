//! Configuration errors, worded for the person who wrote the file.
//!
//! Two shapes, as in compilers and ripgrep: `FILE:LINE:COL: message` when the parser knows the
//! place, `FILE: block.key: message` when the problem is the meaning of a value. `FILE` is the
//! path as given on the command line, or `environment variable NAME` for an override. The
//! process exits with [`EXIT_CONFIG`] when any of these is reported.

use std::fmt;
use std::path::Path;

/// `EX_CONFIG` from sysexits.h: the configuration is invalid.
pub const EXIT_CONFIG: i32 = 78;

/// One problem with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid HCL, or not a shape a Vault Agent file can have.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The path as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The HCL parser did not finish in time: hcl-edit 0.10 takes time exponential in the
    /// length of some malformed input (found by fuzzing, see RELIABILITY.md).
    #[error(
        "{file}: the HCL parser gave up after {seconds} s; the file is probably malformed (an \
         unterminated heredoc or string, a stray `${{`): check it with `pki-sidecar validate`"
    )]
    ParseTimeout {
        /// The path as given.
        file: String,
        /// The deadline.
        seconds: u64,
    },
    /// A value is well-formed HCL but wrong for its key.
    #[error("{origin}: {path}: {message}")]
    Invalid {
        /// The file (or environment variable) the value came from.
        origin: String,
        /// Where in the config, as `block.key` with `[N]` for list items.
        path: String,
        /// What is wrong and, where it helps, what to write instead.
        message: String,
    },
}

/// Something in the configuration that loads but is probably a mistake: a key Vault Agent
/// would ignore (most likely a typo), two templates writing one file. `pki-sidecar validate
/// --strict` and `pki_sidecar { strict = true }` turn every warning into an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file (or environment variable) it is about.
    pub origin: String,
    /// Where in the config, as `block.key`.
    pub path: String,
    /// What looks wrong.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: warning: {}",
            self.origin, self.path, self.message
        )
    }
}

impl ConfigWarning {
    /// The same finding as an error, for strict mode.
    pub fn into_error(self) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin,
            path: self.path,
            message: format!("{} (an error in strict mode)", self.message),
        }
    }
}

/// The phrase every deliberately unsupported Vault Agent feature is refused with, so a reader
/// (and the compatibility test) can tell "not implemented on purpose" from a mistake.
pub(crate) const UNSUPPORTED: &str = "is deliberately not supported by pki-sidecar";

/// `WHAT is deliberately not supported by pki-sidecar: WHY_AND_INSTEAD`.
pub(crate) fn unsupported(what: &str, why_and_instead: &str) -> String {
    format!("{what} {UNSUPPORTED}: {why_and_instead}")
}

/// All the problems found in one load; printed one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// How a file is named in messages: the path exactly as the user gave it.
pub(crate) fn origin_name(path: &Path) -> String {
    path.display().to_string()
}

/// `["template[0]", "perms"]` → `template[0].perms`; list indices attach without a dot.
pub(crate) fn render_path<S: AsRef<str>>(parts: &[S]) -> String {
    let mut out = String::new();
    for part in parts {
        let part = part.as_ref();
        if part.starts_with('[') {
            out.push_str(part);
        } else if part.bytes().all(|b| b.is_ascii_digit()) && !part.is_empty() {
            out.push('[');
            out.push_str(part);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    if out.is_empty() {
        "(top level)".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_hcl_access() {
        assert_eq!(
            render_path(&["template", "0", "perms"]),
            "template[0].perms"
        );
        assert_eq!(
            render_path(&["template[1]", "destination"]),
            "template[1].destination"
        );
        assert_eq!(render_path::<&str>(&[]), "(top level)");
    }
}
