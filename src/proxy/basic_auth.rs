//! HTTP Basic authentication against an htpasswd file, as nginx's `auth_basic` and
//! `auth_basic_user_file` do it.
//!
//! The file holds `user:hash[:comment]` lines (`#` comments and blank lines skipped). A hash is
//! one nginx verifies: Apache's `$apr1$` and crypt(3)'s `$1$` (MD5-crypt), `$5$` and `$6$`
//! (SHA-crypt), `$2a$`/`$2b$`/`$2y$` (bcrypt), `{SHA}`, `{SSHA}` and `{PLAIN}`. A line nginx
//! could not verify either (DES crypt, yescrypt `$y$`, an unknown scheme) is an error at its line
//! when the file is read, not a 401 at request time.
//!
//! The file is read when the proxy starts, then again when its modification time changes
//! (checked every `reload_interval`) and at SIGHUP; a file that can no longer be read or parsed
//! leaves the previous users in place. A password is verified off the runtime's threads (bcrypt
//! takes tens of milliseconds); a credential that verified is remembered, by a SHA-256 of the
//! `Authorization` value, until the file changes, so a client sending the same credentials on
//! every request costs one hash after the first.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use base64::Engine as _;
use http::HeaderValue;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// Remembered credentials per file version; past this the memory is cleared and starts again.
const REMEMBERED: usize = 1024;

/// One `auth_basic` realm and the users of its file.
pub(crate) struct BasicAuth {
    path: PathBuf,
    /// `Basic realm="..."`.
    challenge: HeaderValue,
    users: ArcSwap<Users>,
}

/// One version of the file.
struct Users {
    hashes: HashMap<String, Hash>,
    /// SHA-256 of `Authorization` values that verified against this version.
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// A stored password hash (no `Debug`: a `{PLAIN}` one is the password).
#[derive(Clone)]
enum Hash {
    /// `$apr1$` (`apr1` true) or `$1$`: the salt and the encoded digest.
    Md5Crypt {
        apr1: bool,
        salt: String,
        encoded: String,
    },
    /// `$5$`, `$6$`: the whole string, for sha-crypt to parse.
    ShaCrypt(String),
    /// `$2a$`, `$2b$`, `$2y$`: the whole string.
    Bcrypt(String),
    /// `{SHA}`: SHA-1 of the password.
    Sha1([u8; 20]),
    /// `{SSHA}`: SHA-1 of the password and the salt, then the salt.
    SaltedSha1 { digest: [u8; 20], salt: Vec<u8> },
    /// `{PLAIN}`.
    Plain(String),
}

/// What a request's credentials come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    /// No or malformed `Authorization`, unknown user, wrong password: 401 with the challenge.
    Refused,
}

impl BasicAuth {
    /// `WWW-Authenticate` for `realm` (printable ASCII, checked with the configuration).
    pub(crate) fn challenge_for(realm: &str) -> HeaderValue {
        let quoted = realm.replace('\\', "\\\\").replace('"', "\\\"");
        HeaderValue::from_str(&format!("Basic realm=\"{quoted}\""))
            .unwrap_or(HeaderValue::from_static("Basic"))
    }

    /// Reads `path` for the realm `realm`; the error names the file and line.
    pub(crate) fn load(realm: &str, path: &Path) -> Result<BasicAuth, String> {
        let users = read_users(path)?;
        let challenge = BasicAuth::challenge_for(realm);
        Ok(BasicAuth {
            path: path.to_path_buf(),
            challenge,
            users: ArcSwap::from_pointee(users),
        })
    }

    /// The file it reads.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `WWW-Authenticate` for a 401.
    pub(crate) fn challenge(&self) -> HeaderValue {
        self.challenge.clone()
    }

    /// Reads the file again; on an error the previous users stay.
    pub(crate) fn reload(&self) -> Result<usize, String> {
        let users = read_users(&self.path)?;
        let count = users.hashes.len();
        self.users.store(Arc::new(users));
        Ok(count)
    }

    /// Checks a request's `Authorization` value.
    pub(crate) async fn check(&self, authorization: Option<&HeaderValue>) -> Outcome {
        let Some(value) = authorization else {
            return Outcome::Refused;
        };
        let users = self.users.load_full();
        let key: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        if lock(&users.verified).contains(&key) {
            return Outcome::Allowed;
        }
        let Some((user, password)) = credentials(value.as_bytes()) else {
            return Outcome::Refused;
        };
        let Some(hash) = users.hashes.get(&user).cloned() else {
            return Outcome::Refused;
        };
        let verified = if hash.is_slow() {
            tokio::task::spawn_blocking(move || hash.verify(&password))
                .await
                .unwrap_or(false)
        } else {
            hash.verify(&password)
        };
        if !verified {
            return Outcome::Refused;
        }
        let mut remembered = lock(&users.verified);
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key);
        Outcome::Allowed
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `Basic BASE64(user:password)`, the scheme in any case, as nginx reads it.
fn credentials(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

fn read_users(path: &Path) -> Result<Users, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    parse_users(&text).map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))
}

/// The users of an htpasswd file's text; the error is the line (from 1) and what is wrong.
fn parse_users(text: &str) -> Result<Users, (usize, String)> {
    let mut hashes = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        let user = fields.next().unwrap_or_default();
        let Some(stored) = fields.next() else {
            return Err((index + 1, format!("{user:?}: expected USER:HASH")));
        };
        let hash = Hash::parse(stored).map_err(|why| (index + 1, format!("user {user}: {why}")))?;
        // nginx takes the first line of a user.
        hashes.entry(user.to_string()).or_insert(hash);
    }
    Ok(Users {
        hashes,
        verified: Mutex::new(HashSet::new()),
    })
}

impl Hash {
    fn parse(stored: &str) -> Result<Hash, String> {
        let md5 = |rest: &str, apr1: bool| match rest.split_once('$') {
            Some((salt, encoded)) if encoded.len() == 22 => Ok(Hash::Md5Crypt {
                apr1,
                salt: salt.chars().take(8).collect(),
                encoded: encoded.to_string(),
            }),
            _ => Err("a malformed MD5-crypt hash".to_string()),
        };
        let sha1 = |encoded: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| "a malformed SHA-1 hash (base64 expected)".to_string())
        };
        if let Some(rest) = stored.strip_prefix("$apr1$") {
            md5(rest, true)
        } else if let Some(rest) = stored.strip_prefix("$1$") {
            md5(rest, false)
        } else if stored.starts_with("$5$") || stored.starts_with("$6$") {
            sha_crypt::PasswordHashRef::new(stored)
                .map(|_| Hash::ShaCrypt(stored.to_string()))
                .map_err(|_| "a malformed SHA-crypt hash".to_string())
        } else if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            if stored.len() == 60 {
                Ok(Hash::Bcrypt(stored.to_string()))
            } else {
                Err("a malformed bcrypt hash".to_string())
            }
        } else if let Some(encoded) = stored.strip_prefix("{SHA}") {
            let digest = sha1(encoded)?;
            <[u8; 20]>::try_from(digest.as_slice())
                .map(Hash::Sha1)
                .map_err(|_| "a SHA-1 hash is 20 bytes".to_string())
        } else if let Some(encoded) = stored.strip_prefix("{SSHA}") {
            let bytes = sha1(encoded)?;
            if bytes.len() <= 20 {
                return Err("a salted SHA-1 hash is 20 bytes and a salt".to_string());
            }
            let mut digest = [0; 20];
            digest.copy_from_slice(&bytes[..20]);
            Ok(Hash::SaltedSha1 {
                digest,
                salt: bytes[20..].to_vec(),
            })
        } else if let Some(plain) = stored.strip_prefix("{PLAIN}") {
            Ok(Hash::Plain(plain.to_string()))
        } else if stored.starts_with("$y$") || stored.starts_with("$7$") {
            Err(
                "yescrypt and scrypt hashes are not supported: use bcrypt (htpasswd -B) or \
                 SHA-512 crypt (openssl passwd -6)"
                    .to_string(),
            )
        } else if stored.len() == 13 && !stored.starts_with('$') {
            Err(
                "DES crypt() hashes are not supported (they keep 8 characters of a password): \
                 use bcrypt (htpasswd -B) or SHA-512 crypt (openssl passwd -6)"
                    .to_string(),
            )
        } else {
            Err(
                "not a hash nginx verifies ($apr1$, $1$, $5$, $6$, $2y$, {SHA}, {SSHA}, \
                 {PLAIN})"
                    .to_string(),
            )
        }
    }

    /// Whether verifying takes long enough to leave the runtime's threads for it.
    fn is_slow(&self) -> bool {
        matches!(
            self,
            Hash::Md5Crypt { .. } | Hash::ShaCrypt(_) | Hash::Bcrypt(_)
        )
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Md5Crypt {
                apr1,
                salt,
                encoded,
            } => {
                let magic: &[u8] = if *apr1 { b"$apr1$" } else { b"$1$" };
                let computed = md5_crypt(password, salt.as_bytes(), magic);
                computed.as_bytes().ct_eq(encoded.as_bytes()).into()
            }
            Hash::ShaCrypt(stored) => {
                use sha_crypt::PasswordVerifier as _;
                sha_crypt::ShaCrypt::default()
                    .verify_password(password, stored.as_str())
                    .is_ok()
            }
            Hash::Bcrypt(stored) => bcrypt::verify(password, stored).unwrap_or(false),
            Hash::Sha1(digest) => {
                let computed: [u8; 20] = sha1::Sha1::digest(password).into();
                computed.ct_eq(digest).into()
            }
            Hash::SaltedSha1 { digest, salt } => {
                let mut hasher = sha1::Sha1::new();
                hasher.update(password);
                hasher.update(salt);
                let computed: [u8; 20] = hasher.finalize().into();
                computed.ct_eq(digest).into()
            }
            Hash::Plain(plain) => plain.as_bytes().ct_eq(password).into(),
        }
    }
}

/// crypt(3)'s alphabet for MD5-crypt's output.
const CRYPT_64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt (Poul-Henning Kamp's, as FreeBSD and glibc define it; Apache's `$apr1$` is the
/// same with its own magic): the 22 characters after `MAGIC SALT $`.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new();
    context.update(password);
    context.update(magic);
    context.update(salt);
    let mut left = password.len();
    while left > 0 {
        let take = left.min(16);
        context.update(&alternate[..take]);
        left -= take;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut next = Md5::new();
        if round & 1 == 1 {
            next.update(password);
        } else {
            next.update(digest);
        }
        if round % 3 != 0 {
            next.update(salt);
        }
        if round % 7 != 0 {
            next.update(password);
        }
        if round & 1 == 1 {
            next.update(digest);
        } else {
            next.update(password);
        }
        digest = next.finalize();
    }
    let mut out = String::with_capacity(22);
    let mut push = |value: u32, count: usize| {
        let mut value = value;
        for _ in 0..count {
            out.push(char::from(CRYPT_64[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    let d = |i: usize| u32::from(digest[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push((d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    push(d(11), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user per scheme, each with the password `secret`.
    const EVERY_SCHEME: &str = include_str!("../../tests/fixtures/htpasswd/every-scheme");

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[tokio::test]
    async fn every_scheme_nginx_verifies_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        // A comment after the hash, a blank line, and a second line for a user (nginx takes
        // the first) as well.
        std::fs::write(
            &path,
            format!("{EVERY_SCHEME}extra:{{PLAIN}}x:a comment\n\nplain:{{PLAIN}}other\n"),
        )
        .unwrap();
        let auth = BasicAuth::load("Private \"zone\"", &path).unwrap();
        assert_eq!(auth.challenge(), "Basic realm=\"Private \\\"zone\\\"\"");
        for user in [
            "apr", "md5", "sha256", "sha512", "bcrypt", "sha", "ssha", "plain",
        ] {
            assert_eq!(
                auth.check(Some(&header(user, "secret"))).await,
                Outcome::Allowed,
                "{user}"
            );
            assert_eq!(
                auth.check(Some(&header(user, "secreT"))).await,
                Outcome::Refused,
                "{user}"
            );
        }
        assert_eq!(
            auth.check(Some(&header("extra", "x"))).await,
            Outcome::Allowed,
            "a comment after the hash"
        );
        // Remembered: the same value is allowed again without the hash.
        assert_eq!(
            auth.check(Some(&header("bcrypt", "secret"))).await,
            Outcome::Allowed
        );
        for refused in [
            None,
            Some(header("nobody", "secret")),
            Some(HeaderValue::from_static("Bearer abc")),
            Some(HeaderValue::from_static("Basic !!!")),
            Some(HeaderValue::from_static("Basic c2VjcmV0")),
        ] {
            assert_eq!(auth.check(refused.as_ref()).await, Outcome::Refused);
        }
        assert_eq!(
            auth.check(Some(&HeaderValue::from_static("bAsIc cGxhaW46c2VjcmV0")))
                .await,
            Outcome::Allowed,
            "the scheme in any case"
        );
        // A new file replaces the users and what was remembered.
        std::fs::write(&path, "plain:{PLAIN}new\n").unwrap();
        assert_eq!(auth.reload(), Ok(1));
        assert_eq!(
            auth.check(Some(&header("plain", "secret"))).await,
            Outcome::Refused
        );
        assert_eq!(
            auth.check(Some(&header("plain", "new"))).await,
            Outcome::Allowed
        );
        // A broken one leaves them in place.
        std::fs::write(&path, "plain\n").unwrap();
        assert!(auth.reload().unwrap_err().contains("htpasswd:1: "));
        assert_eq!(
            auth.check(Some(&header("plain", "new"))).await,
            Outcome::Allowed
        );
    }

    #[test]
    fn hashes_nginx_could_not_verify_are_refused_at_their_line() {
        for (line, why) in [
            ("u:abNANd1rDfiNc", "DES crypt"),
            ("u:$y$j9T$salt$hash", "yescrypt"),
            ("u:$apr1$salt$short", "malformed MD5-crypt"),
            ("u:$2y$05$short", "malformed bcrypt"),
            ("u:{SHA}not base64!", "base64 expected"),
            ("u:$argon2id$v=19$x", "not a hash nginx verifies"),
            ("u", "expected USER:HASH"),
        ] {
            let text = format!("ok:{{PLAIN}}x\n{line}\n");
            let Err((at, message)) = parse_users(&text) else {
                panic!("{line} accepted");
            };
            assert_eq!(at, 2, "{line}");
            assert!(message.contains(why), "{line}: {message}");
        }
    }
}
