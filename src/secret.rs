//! [`Secret`]: a string that never prints. Vault tokens, JWTs and AppRole secret IDs live in one
//! from the moment they are read until they are sent, and are wiped from memory when dropped.
//!
//! It must not offer `Display`, and its `Debug` shows only that something is there.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string: redacted in `Debug`, zeroed on drop, compared in constant time.
#[derive(Clone, Default)]
pub(crate) struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`.
    pub(crate) fn new(value: String) -> Secret {
        Secret(Zeroizing::new(value))
    }

    /// The secret itself, for the one place that must send or write it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(empty)"
        } else {
            "Secret([redacted])"
        })
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        // Length is not secret here; the contents are compared without an early exit.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("s.hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret([redacted]))");
        assert_eq!(secret.expose(), "s.hunter2");
        assert_eq!(secret, Secret::new("s.hunter2".to_string()));
        assert_ne!(secret, Secret::new("s.hunter3".to_string()));
    }
}
