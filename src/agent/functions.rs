//! The consul-template functions Vault Agent users write, for the template engine.
//!
//! Rendering is synchronous and Vault is not: as in consul-template, a render that reaches a
//! Vault function whose data has not been fetched yet records it as [`Dependency`] and gets
//! `nil` back; the caller fetches what was missing and renders again. `writeToFile` does not
//! write during a render either: it records a [`FileWrite`], which the caller carries out once
//! the render is complete, key files before the destination.
//!
//! This module must not do network I/O or read files. The pure functions (`file`, `toJSON`,
//! `sprig_*`, ...) are in [`super::library`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::library;
use super::scratch::{self, Scratch};
use crate::template::{Functions, Value};

/// The Vault functions; every other name comes from [`super::library`].
pub(crate) const NAMES: &[&str] = &[
    "pkiCert",
    "secret",
    "secrets",
    "writeToFile",
    EXECUTE_TEMPLATE,
    scratch::NAME,
];

/// consul-template's `executeTemplate NAME [DATA]`, which the template engine runs itself.
const EXECUTE_TEMPLATE: &str = "executeTemplate";

/// The names alone, for parsing templates at config load time.
pub struct KnownFunctions;

impl Functions for KnownFunctions {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name) || library::has(name)
    }

    fn refused(&self, name: &str) -> Option<String> {
        library::refused(name)
    }

    fn executes_template(&self, name: &str) -> bool {
        name == EXECUTE_TEMPLATE
    }

    fn has_methods(&self, name: &str) -> bool {
        name == scratch::NAME
    }

    fn call(&mut self, name: &str, _args: Vec<Value>) -> Result<Value, String> {
        Err(format!(
            "{name} cannot be called while the config is checked"
        ))
    }
}

/// Data a template needs from Vault, keyed as consul-template keys its dependencies: one key is
/// one Vault request per renewal, shared by every template of the agent that makes the call.
///
/// - `pkiCert`: the path and the template's destination (`vault.pki(PATH->DEST)`); the
///   arguments of the first call are the ones sent.
/// - `secret` with arguments (a write): the path and the arguments, sorted by name, a repeated
///   name's last value winning (`vault.write(PATH -> hash of the sorted data)`).
/// - `secret` without arguments (a read): the path, query string included (`?version=N`).
/// - `secrets` (a list): the path.
#[derive(Clone)]
pub enum Dependency {
    /// `pkiCert PATH k=v...`: issue a certificate (a write to `PATH`) for `destination`.
    PkiCert {
        /// Vault path, e.g. `pki_intermediate/issue/home`.
        path: String,
        /// The destination of the template that calls it (part of the key).
        destination: PathBuf,
        /// The `k=v` arguments, in order (not part of the key).
        args: Vec<(String, String)>,
    },
    /// `secret PATH [k=v...]`: a read, or a write when arguments are given.
    Secret {
        /// Vault path (a read's may end in a query string such as `?version=2`).
        path: String,
        /// The `k=v` arguments (a write), sorted by key, keys unique; none for a read.
        args: Vec<(String, String)>,
    },
    /// `secrets PATH`: a list of the keys under `PATH`.
    List {
        /// Vault path.
        path: String,
    },
}

impl Dependency {
    /// A `secret` call: arguments sorted by name, the last value of a repeated name kept.
    pub(crate) fn secret(path: String, args: Vec<(String, String)>) -> Dependency {
        let unique: BTreeMap<String, String> = args.into_iter().collect();
        Dependency::Secret {
            path,
            args: unique.into_iter().collect(),
        }
    }

    /// What identifies the dependency (see the type's documentation).
    fn key(&self) -> (u8, &str, Option<&std::path::Path>, &[(String, String)]) {
        match self {
            Dependency::PkiCert {
                path, destination, ..
            } => (0, path, Some(destination), &[]),
            Dependency::Secret { path, args } => (1, path, None, args),
            Dependency::List { path } => (2, path, None, &[]),
        }
    }
}

impl PartialEq for Dependency {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Dependency {}

impl PartialOrd for Dependency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dependency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::fmt::Debug for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Dependency {
    /// Argument values are left out: a `secret` write may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, path, args): (&str, &String, &[(String, String)]) = match self {
            Dependency::PkiCert { path, args, .. } => ("pkiCert", path, args),
            Dependency::Secret { path, args } => ("secret", path, args),
            Dependency::List { path } => ("secrets", path, &[]),
        };
        write!(f, "{name} {path:?}")?;
        for (key, _) in args {
            write!(f, " {key}=...")?;
        }
        Ok(())
    }
}

/// A `writeToFile` to carry out after the render.
#[derive(Clone, PartialEq, Eq)]
pub struct FileWrite {
    /// Where.
    pub path: PathBuf,
    /// What (already with `newline` applied).
    pub contents: String,
    /// User name or uid; `None` leaves it.
    pub owner: Option<String>,
    /// Group name or gid; `None` leaves it.
    pub group: Option<String>,
    /// Mode; `None` keeps an existing file's, else 0644.
    pub perms: Option<u32>,
    /// Append to the file instead of replacing it.
    pub append: bool,
}

impl Drop for FileWrite {
    fn drop(&mut self) {
        // The contents are usually a private key: wiped, not just freed.
        zeroize::Zeroize::zeroize(&mut self.contents);
    }
}

impl std::fmt::Debug for FileWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contents are usually a private key.
        write!(
            f,
            "FileWrite({}, {} bytes)",
            self.path.display(),
            self.contents.len()
        )
    }
}

/// The functions for one render pass over already-fetched data.
pub struct RenderFunctions<'a> {
    fetched: &'a BTreeMap<Dependency, Value>,
    /// The destination of the template being rendered (part of a `pkiCert`'s key).
    destination: PathBuf,
    /// Every Vault call the render reached, fetched or not.
    pub used: BTreeSet<Dependency>,
    /// Vault data the render reached but did not have.
    pub missing: BTreeSet<Dependency>,
    /// `writeToFile` calls, in render order.
    pub writes: Vec<FileWrite>,
    /// This render's `scratch` pad.
    scratch: Scratch,
}

impl<'a> RenderFunctions<'a> {
    /// Functions answering Vault calls from `fetched`, for the template writing
    /// `destination`.
    pub fn new(
        fetched: &'a BTreeMap<Dependency, Value>,
        destination: &std::path::Path,
    ) -> RenderFunctions<'a> {
        RenderFunctions {
            fetched,
            destination: destination.to_path_buf(),
            used: BTreeSet::new(),
            missing: BTreeSet::new(),
            writes: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    fn vault(&mut self, dependency: Dependency) -> Value {
        self.used.insert(dependency.clone());
        match self.fetched.get(&dependency) {
            Some(value) => value.clone(),
            None => {
                self.missing.insert(dependency);
                Value::Nil
            }
        }
    }
}

impl Functions for RenderFunctions<'_> {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name) || library::has(name)
    }

    fn refused(&self, name: &str) -> Option<String> {
        library::refused(name)
    }

    fn executes_template(&self, name: &str) -> bool {
        name == EXECUTE_TEMPLATE
    }

    fn has_methods(&self, name: &str) -> bool {
        name == scratch::NAME
    }

    fn call_method(&mut self, name: &str, method: &str, args: Vec<Value>) -> Result<Value, String> {
        match name {
            scratch::NAME => self.scratch.call(method, args),
            _ => Err(format!("{name} has no methods")),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        match name {
            // Go would print the pad's struct; here it is there for its methods only.
            scratch::NAME => Err(
                "scratch is used through its methods here (scratch.Set \"k\" v, scratch.Get \
                 \"k\", ...): pki-sidecar has no value for the pad itself"
                    .to_string(),
            ),
            // As consul-template: no arguments at all is nil, not an error.
            "pkiCert" | "secret" if args.is_empty() => Ok(Value::Nil),
            "pkiCert" => {
                let (path, args) = path_and_pairs(name, &args)?;
                let destination = self.destination.clone();
                Ok(self.vault(Dependency::PkiCert {
                    path,
                    destination,
                    args,
                }))
            }
            "secret" => {
                let (path, args) = path_and_pairs(name, &args)?;
                Ok(self.vault(Dependency::secret(path, args)))
            }
            "secrets" => {
                let (path, args) = path_and_pairs(name, &args)?;
                if !args.is_empty() {
                    return Err("secrets takes a Vault path only".to_string());
                }
                // Not fetched yet: an empty list, so that `range` over it renders nothing.
                Ok(match self.vault(Dependency::List { path }) {
                    Value::Nil => Value::List(Vec::new()),
                    value => value,
                })
            }
            "writeToFile" => {
                self.writes.push(write_to_file(&args)?);
                Ok(Value::String(String::new()))
            }
            _ => library::call(name, args),
        }
    }
}

/// A value's type, in Go's words, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::JsonNumber(_) => "json.Number",
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Struct(s) => s.type_name,
        Value::TypedNil(t) => t.type_name,
    }
}

/// `PATH "k=v" ...`.
fn path_and_pairs(name: &str, args: &[Value]) -> Result<(String, Vec<(String, String)>), String> {
    let Some((Value::String(path), rest)) = args.split_first() else {
        return Err(format!("{name} needs a Vault path as its first argument"));
    };
    let path = path.trim().trim_matches('/').to_string();
    if path.is_empty() {
        return Err(format!("{name}: the Vault path is empty"));
    }
    let mut pairs = Vec::with_capacity(rest.len());
    for arg in rest {
        let Value::String(text) = arg else {
            return Err(format!(
                "{name}: arguments after the path must be \"key=value\" strings"
            ));
        };
        // As consul-template: empty arguments are skipped, keys and values trimmed.
        if text.is_empty() {
            continue;
        }
        let Some((key, value)) = text.split_once('=') else {
            return Err(format!("not k=v pair {text:?}"));
        };
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok((path, pairs))
}

/// `writeToFile PATH OWNER GROUP PERMS [FLAGS] CONTENTS` (contents usually piped in last).
fn write_to_file(args: &[Value]) -> Result<FileWrite, String> {
    let strings: Vec<&str> = args
        .iter()
        .map(|value| match value {
            Value::String(s) => Ok(s.as_str()),
            other => Err(format!(
                "writeToFile: arguments must be strings, found {}",
                kind(other)
            )),
        })
        .collect::<Result<_, _>>()?;
    let (path, owner, group, perms, flags, contents) = match strings.as_slice() {
        [path, owner, group, perms, contents] => (*path, *owner, *group, *perms, "", *contents),
        [path, owner, group, perms, flags, contents] => {
            (*path, *owner, *group, *perms, *flags, *contents)
        }
        _ => {
            return Err(
                "writeToFile takes PATH OWNER GROUP PERMS [append|newline] and the contents"
                    .to_string(),
            );
        }
    };
    if path.trim().is_empty() {
        return Err("writeToFile: the path is empty".to_string());
    }
    let perms = if perms.trim().is_empty() {
        None
    } else {
        let parsed = crate::units::mode(&crate::units::Scalar::Text(perms.to_string()))
            .map_err(|err| format!("writeToFile: perms {err}"))?;
        Some(parsed)
    };
    let mut append = false;
    let mut newline = false;
    for flag in flags.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match flag {
            "append" => append = true,
            "newline" => newline = true,
            other => {
                return Err(format!(
                    "writeToFile: unknown flag {other:?} (append, newline)"
                ));
            }
        }
    }
    let mut contents = contents.to_string();
    if newline {
        contents.push('\n');
    }
    let name = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    Ok(FileWrite {
        path: PathBuf::from(path),
        contents,
        owner: name(owner),
        group: name(group),
        perms,
        append,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    #[test]
    fn vault_calls_are_recorded_until_fetched() {
        let mut fetched = BTreeMap::new();
        let mut functions = RenderFunctions::new(&fetched, std::path::Path::new("/dest"));
        let result = functions
            .call(
                "pkiCert",
                vec![
                    s("/pki_intermediate/issue/home/"),
                    s("common_name=foo.home"),
                    s("ttl=24h"),
                ],
            )
            .unwrap();
        assert_eq!(result, Value::Nil);
        let dependency = Dependency::PkiCert {
            path: "pki_intermediate/issue/home".into(),
            destination: "/dest".into(),
            args: vec![
                ("common_name".into(), "foo.home".into()),
                ("ttl".into(), "24h".into()),
            ],
        };
        assert_eq!(
            functions.missing.iter().collect::<Vec<_>>(),
            vec![&dependency]
        );
        assert_eq!(
            dependency.to_string(),
            "pkiCert \"pki_intermediate/issue/home\" common_name=... ttl=..."
        );
        fetched.insert(dependency, s("issued"));
        let mut functions = RenderFunctions::new(&fetched, std::path::Path::new("/dest"));
        let result = functions
            .call(
                "pkiCert",
                vec![
                    s("pki_intermediate/issue/home"),
                    s("common_name=foo.home"),
                    s("ttl=24h"),
                ],
            )
            .unwrap();
        assert_eq!(result, s("issued"));
        assert!(functions.missing.is_empty());
        assert!(
            functions
                .call("pkiCert", vec![s("p"), s("no-equals")])
                .is_err()
        );
    }

    #[test]
    fn write_to_file_is_recorded_with_the_seed_arguments() {
        let fetched = BTreeMap::new();
        let mut functions = RenderFunctions::new(&fetched, std::path::Path::new("/dest"));
        let out = functions
            .call(
                "writeToFile",
                vec![
                    s("/etc/nginx/ssl/tls.key"),
                    s(""),
                    s(""),
                    s("0644"),
                    s("KEY"),
                ],
            )
            .unwrap();
        assert_eq!(out, s(""));
        assert_eq!(
            functions.writes,
            vec![FileWrite {
                path: "/etc/nginx/ssl/tls.key".into(),
                contents: "KEY".into(),
                owner: None,
                group: None,
                perms: Some(0o644),
                append: false,
            }]
        );
        functions
            .call(
                "writeToFile",
                vec![
                    s("/log"),
                    s("app"),
                    s("1000"),
                    s("0600"),
                    s("append,newline"),
                    s("line"),
                ],
            )
            .unwrap();
        let write = &functions.writes[1];
        assert_eq!((write.contents.as_str(), write.append), ("line\n", true));
        assert_eq!(
            (write.owner.as_deref(), write.group.as_deref()),
            (Some("app"), Some("1000"))
        );
        assert!(
            functions
                .call("writeToFile", vec![s("/x"), s(""), s(""), s("rw"), s("c")])
                .is_err()
        );
        assert!(
            functions
                .call("writeToFile", vec![s("/x"), s("c")])
                .is_err()
        );
    }
}
