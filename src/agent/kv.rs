//! KV version 2 as Vault Agent reads it.
//!
//! A template written for a KV version 1 mount says `secret "secret/app"`; on a version 2 mount
//! the same data lives at `secret/data/app`. Vault Agent (consul-template) asks Vault which
//! mount a path is on (`sys/internal/ui/mounts/PATH`) and, on a KV v2 mount, inserts `data/`
//! for reads and writes (wrapping a write's fields in `data`) and `metadata/` for lists, unless
//! the path already names one of them. The answer is cached per mount here, so a path costs
//! one lookup per mount for the agent's life; a lookup that fails is not cached (the next fetch
//! asks again) unless Vault refused it (403: the path is then assumed KV v1 for the agent's
//! life, as consul-template assumes per dependency), and one that Vault answers 404 (a Vault
//! too old to know the endpoint) means KV v1, as in consul-template.

use super::backend::Backend;

/// A mount found by a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The mount's path with its trailing slash (`secret/`).
    pub path: String,
    /// A KV version 2 mount.
    pub kv2: bool,
}

/// The mounts looked up so far.
#[derive(Debug, Default)]
pub(crate) struct Mounts {
    known: Vec<Mount>,
    /// Paths whose lookup failed for good (a 403: the token may not look up the mount).
    refused: std::collections::BTreeSet<String>,
}

/// Why a lookup gave no mount.
#[derive(Debug)]
pub(crate) enum Unknown {
    /// Vault does not have the endpoint (404): KV v1, as consul-template assumes.
    NoEndpoint,
    /// The lookup failed; the message says why.
    Failed(String),
}

impl Mounts {
    /// The cached mount `path` (without query string) lies on, the longest match first.
    fn cached(&self, path: &str) -> Option<&Mount> {
        self.known
            .iter()
            .filter(|mount| {
                let bare = mount.path.trim_end_matches('/');
                path == bare || path.starts_with(&mount.path)
            })
            .max_by_key(|mount| mount.path.len())
    }

    /// The mount `path` lies on: from the cache, else asked of `backend`.
    pub(crate) async fn resolve(
        &mut self,
        backend: &dyn Backend,
        path: &str,
    ) -> Result<Mount, Unknown> {
        if let Some(mount) = self.cached(path) {
            return Ok(mount.clone());
        }
        if self.refused.contains(path) {
            return Err(Unknown::NoEndpoint);
        }
        let lookup = format!("sys/internal/ui/mounts/{path}");
        let answer = backend
            .request("mount_lookup", http::Method::GET, &lookup, None)
            .await
            .map_err(|err| {
                let status = err
                    .downcast_ref::<crate::vault::VaultError>()
                    .and_then(crate::vault::VaultError::status);
                match status {
                    Some(404) => Unknown::NoEndpoint,
                    Some(403) => {
                        // Asked once per path, as consul-template does per dependency.
                        self.refused.insert(path.to_string());
                        Unknown::Failed(format!("{err:#}"))
                    }
                    _ => Unknown::Failed(format!("{err:#}")),
                }
            })?;
        let mount = parse_lookup(&answer).map_err(Unknown::Failed)?;
        self.known.push(mount.clone());
        Ok(mount)
    }
}

/// Reads `sys/internal/ui/mounts/PATH`'s answer.
pub(crate) fn parse_lookup(answer: &serde_json::Value) -> Result<Mount, String> {
    let data = answer
        .get("data")
        .ok_or("the mount lookup's answer has no data")?;
    let text = |key: &str| data.get(key).and_then(serde_json::Value::as_str);
    let mut path = text("path")
        .filter(|p| !p.is_empty())
        .ok_or("the mount lookup's answer names no mount path")?
        .to_string();
    if !path.ends_with('/') {
        path.push('/');
    }
    let version = data
        .get("options")
        .and_then(|options| options.get("version"))
        .and_then(serde_json::Value::as_str);
    Ok(Mount {
        kv2: text("type") == Some("kv") && version == Some("2"),
        path,
    })
}

/// The path a KV v2 read or write of `raw` goes to on `mount`: `data/` inserted after the
/// mount unless the path already continues with `data/`, `metadata/` or `subkeys/`.
pub(crate) fn data_path(raw: &str, mount: &Mount) -> String {
    insert_after_mount(raw, mount, "data", &["data/", "metadata/", "subkeys/"])
}

/// The path a KV v2 list of `raw` goes to on `mount`: `metadata/` inserted after the mount
/// unless already there.
pub(crate) fn metadata_path(raw: &str, mount: &Mount) -> String {
    insert_after_mount(raw, mount, "metadata", &["metadata/"])
}

fn insert_after_mount(raw: &str, mount: &Mount, segment: &str, kept: &[&str]) -> String {
    let bare = mount.path.trim_end_matches('/');
    if raw == bare || raw == mount.path {
        return format!("{bare}/{segment}");
    }
    let Some(rest) = raw.strip_prefix(&mount.path) else {
        return raw.to_string();
    };
    if kept.iter().any(|prefix| rest.starts_with(prefix)) || rest == segment {
        return raw.to_string();
    }
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        format!("{bare}/{segment}")
    } else {
        format!("{bare}/{segment}/{rest}")
    }
}

/// Whether a KV v2 read's answer is a version that has been deleted (consul-template: "no
/// secret exists").
pub(crate) fn deleted(answer: &serde_json::Value) -> bool {
    answer
        .pointer("/data/metadata/deletion_time")
        .and_then(serde_json::Value::as_str)
        .and_then(crate::timefmt::parse_rfc3339)
        .is_some_and(|at| at <= std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv2(path: &str) -> Mount {
        Mount {
            path: path.to_string(),
            kv2: true,
        }
    }

    #[test]
    fn data_is_inserted_after_the_mount_unless_already_named() {
        let secret = kv2("secret/");
        assert_eq!(data_path("secret/app", &secret), "secret/data/app");
        assert_eq!(data_path("secret/a/b", &secret), "secret/data/a/b");
        assert_eq!(data_path("secret/data/app", &secret), "secret/data/app");
        assert_eq!(
            data_path("secret/metadata/app", &secret),
            "secret/metadata/app"
        );
        assert_eq!(
            data_path("secret/subkeys/app", &secret),
            "secret/subkeys/app"
        );
        assert_eq!(data_path("secret", &secret), "secret/data");
        let deep = kv2("team/kv/");
        assert_eq!(data_path("team/kv/app", &deep), "team/kv/data/app");
        // A path on another mount is left alone.
        assert_eq!(data_path("other/app", &secret), "other/app");
    }

    #[test]
    fn lists_go_to_metadata() {
        let secret = kv2("secret/");
        assert_eq!(metadata_path("secret/", &secret), "secret/metadata");
        assert_eq!(metadata_path("secret", &secret), "secret/metadata");
        assert_eq!(
            metadata_path("secret/apps", &secret),
            "secret/metadata/apps"
        );
        assert_eq!(
            metadata_path("secret/metadata/apps", &secret),
            "secret/metadata/apps"
        );
    }

    #[test]
    fn the_lookup_answer_gives_the_mount_and_its_version() {
        let answer = serde_json::json!({"data": {"path": "secret/", "type": "kv",
            "options": {"version": "2"}}});
        assert_eq!(parse_lookup(&answer).unwrap(), kv2("secret/"));
        let v1 = serde_json::json!({"data": {"path": "kv", "type": "kv", "options": null}});
        assert_eq!(
            parse_lookup(&v1).unwrap(),
            Mount {
                path: "kv/".into(),
                kv2: false
            }
        );
        let pki = serde_json::json!({"data": {"path": "pki/", "type": "pki",
            "options": {"version": "2"}}});
        assert!(!parse_lookup(&pki).unwrap().kv2);
        assert!(parse_lookup(&serde_json::json!({})).is_err());
    }

    #[test]
    fn the_cache_answers_for_every_path_under_a_mount() {
        let mut mounts = Mounts::default();
        mounts.known.push(kv2("secret/"));
        mounts.known.push(kv2("secret/deep/"));
        assert_eq!(mounts.cached("secret/app").unwrap().path, "secret/");
        assert_eq!(mounts.cached("secret").unwrap().path, "secret/");
        assert_eq!(mounts.cached("secret/deep/x").unwrap().path, "secret/deep/");
        assert!(mounts.cached("secretive/x").is_none());
    }

    #[test]
    fn a_deleted_version_is_recognised() {
        let deleted_answer = serde_json::json!({"data": {"data": null,
            "metadata": {"deletion_time": "2020-01-01T00:00:00Z"}}});
        assert!(deleted(&deleted_answer));
        let live = serde_json::json!({"data": {"data": {"a": "b"},
            "metadata": {"deletion_time": ""}}});
        assert!(!deleted(&live));
    }
}
