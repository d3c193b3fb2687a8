//! Which keys each block knows, and what happens to the others.
//!
//! OpenBao Agent decodes most of its file with HCL1's `DecodeObject`, which drops keys it does
//! not know without a word: at the top level and in `vault`, `retry`, `auto_auth`, `method`,
//! `sink` (and its `config`), `template_config` and `telemetry`. Only `template` blocks (and
//! `exec`/`env_template`) are decoded with mapstructure's `ErrorUnused`,
//! so an unknown key there stops Vault Agent too. The same file must load in both programs, so
//! an unknown key at a level Vault Agent ignores is removed here with a warning that suggests
//! the nearest known key; at the other levels (`template` and this project's `proxy`, `app`,
//! `pki_sidecar`) serde's `deny_unknown_fields` keeps it an error.
//!
//! The known keys are read from the `raw` structs themselves, so the list cannot drift from
//! what is deserialised. This module must not judge values: it only sorts keys.

use figment::value::{Dict, Value};
use serde::Deserialize;

use super::error::{ConfigWarning, render_path};
use super::raw;

/// The field names of a `#[derive(Deserialize)]` struct, as serde sees them.
pub(crate) fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut found));
    found
}

/// A deserializer that only records the field list a struct asks for.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = Stop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Vault Agent's log file settings: the agent logs to stderr only, so each is ignored with a
/// warning that says where the lines go instead.
const LOG_FILE_KEYS: [&str; 4] = [
    "log_file",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
];
const LOG_FILE_IGNORED: &str = "ignored: pki-sidecar logs to stderr only (kubectl logs, the \
                                journal, or the service manager's redirection), never to a \
                                file, so nothing is written or rotated there";

/// The known key nearest to `key`, when it is near enough to be a likely typo.
pub(crate) fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| (edit_distance(&key, candidate), *candidate))
        .filter(|(distance, candidate)| {
            // One edit for words of three letters or fewer, else two, or a third of the word.
            let allowed = if candidate.len() <= 3 {
                1
            } else {
                (candidate.len() / 3).max(2)
            };
            *distance <= allowed
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, counting characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// " (did you mean `X`?)" or nothing.
pub(crate) fn did_you_mean(key: &str, known: &[&str]) -> String {
    suggestion(key, known).map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
}

/// Vault Agent's `telemetry` keys that send its metrics somewhere else than a Prometheus
/// scrape: sinks this program does not have. Each is refused, as losing it would lose the
/// user's metrics without a word.
const TELEMETRY_SINKS: &[&str] = &[
    "statsite_address",
    "statsd_address",
    "dogstatsd_addr",
    "dogstatsd_tags",
    "circonus_api_token",
    "circonus_api_app",
    "circonus_api_url",
    "circonus_submission_interval",
    "circonus_submission_url",
    "circonus_check_id",
    "circonus_check_force_metric_activation",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_display_name",
    "circonus_check_tags",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "stackdriver_project_id",
    "stackdriver_location",
    "stackdriver_namespace",
    "stackdriver_debug_logs",
];

/// Whether `key` of a `telemetry` block (or the injector's `agent-telemetry-*`, dashes made
/// underscores) names one of Vault Agent's metrics sinks, which the agent refuses.
pub(crate) fn is_telemetry_sink(key: &str) -> bool {
    TELEMETRY_SINKS.contains(&key)
}

/// Vault Agent's other `telemetry` keys, each with why it changes nothing here: taken out with
/// a warning. (`prometheus_retention_time`, `disable_hostname` and `metrics_prefix` are fields
/// of [`raw::RawTelemetry`]: what they ask for is what the agent does.)
const TELEMETRY_NO_EFFECT: &[(&str, &str)] = &[
    ("usage_gauge_period", SERVER_ONLY),
    ("maximum_gauge_cardinality", SERVER_ONLY),
    ("lease_metrics_epsilon", SERVER_ONLY),
    ("num_lease_metrics_buckets", SERVER_ONLY),
    ("add_lease_metrics_namespace_labels", SERVER_ONLY),
    ("filter_default", VAULT_NAMES),
    ("prefix_filter", VAULT_NAMES),
    ("enable_hostname_label", VAULT_NAMES),
];

const SERVER_ONLY: &str = "a Vault server setting with no effect on an agent (Vault Agent \
                           ignores it too), ignored";
const VAULT_NAMES: &str = "it filters or labels Vault's own metrics; pki-sidecar's \
                          metrics, Vault Agent's counters among them, are all exported with \
                          fixed labels (README, Metrics), so it is ignored";

/// The `config` keys Vault Agent's auth method of this type reads (it ignores any other), for
/// the methods this program has; `None` for another type, which is refused as a whole.
/// Resolution then refuses those of them this program does not implement, by name.
fn method_config_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "kubernetes" => &["role", "token_path"],
        "approle" => &[
            "role_id_file_path",
            "secret_id_file_path",
            "remove_secret_id_file_after_reading",
            "secret_id_response_wrapping_path",
        ],
        "jwt" => &[
            "path",
            "role",
            "remove_jwt_after_reading",
            "remove_jwt_follows_symlinks",
            "jwt_read_period",
        ],
        "token_file" => &["token_file_path"],
        "cert" => &["name", "ca_cert", "client_cert", "client_key", "reload"],
        _ => return None,
    })
}

/// Removes the keys Vault Agent would ignore from one file's data, one warning each; Vault
/// Agent's telemetry settings that change nothing here are taken out with a warning, its
/// metrics sinks with an error.
///
/// `place` gives `(line, column)` of a key's rendered path, when the file says; the warnings
/// come in the file's order.
pub(crate) fn prune_ignored(
    origin: &str,
    place: &dyn Fn(&str) -> Option<(usize, usize)>,
    data: &mut Dict,
) -> (Vec<ConfigWarning>, Vec<super::error::ConfigError>) {
    let mut errors = Vec::new();
    let mut warnings: Vec<(Option<(usize, usize)>, ConfigWarning)> = Vec::new();
    // `FILE:LINE:COL` where the file says where the key is, else `FILE`.
    let located = |at: Option<(usize, usize)>| {
        at.map_or_else(
            || origin.to_string(),
            |(line, column)| format!("{origin}:{line}:{column}"),
        )
    };
    if let Some(Value::Dict(_, telemetry)) = data.get_mut("telemetry") {
        let keys: Vec<String> = telemetry.keys().cloned().collect();
        for key in keys {
            let rendered = render_path(&["telemetry", key.as_str()]);
            let at = place(&rendered);
            if is_telemetry_sink(&key) {
                telemetry.remove(&key);
                errors.push(super::error::ConfigError::Invalid {
                    origin: located(at),
                    path: rendered,
                    message: super::error::unsupported(
                        &format!("Vault Agent's metrics sink setting `{key}`"),
                        "the agent pushes no metrics; Prometheus scrapes them from \
                         telemetry.metrics_listen (or /agent/v1/metrics?format=prometheus on \
                         a listener): remove the key",
                    ),
                });
            } else if let Some((_, why)) = TELEMETRY_NO_EFFECT.iter().find(|(k, _)| *k == key) {
                telemetry.remove(&key);
                warnings.push((
                    at,
                    ConfigWarning {
                        origin: located(at),
                        path: rendered,
                        message: (*why).to_string(),
                    },
                ));
            }
        }
    }
    for key in LOG_FILE_KEYS {
        if data.remove(key).is_some() {
            let rendered = render_path(&[key]);
            let at = place(&rendered);
            warnings.push((
                at,
                ConfigWarning {
                    origin: located(at),
                    path: rendered,
                    message: LOG_FILE_IGNORED.to_string(),
                },
            ));
        }
    }
    let mut prune = |dict: &mut Dict, known: &[&str], path: &[&str]| {
        let unknown: Vec<String> = dict
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            dict.remove(&key);
            let mut at: Vec<&str> = path.to_vec();
            at.push(&key);
            let rendered = render_path(&at);
            let at = place(&rendered);
            warnings.push((
                at,
                ConfigWarning {
                    origin: located(at),
                    path: rendered,
                    message: format!(
                        "unknown key, ignored (as Vault Agent ignores it){}",
                        did_you_mean(&key, known)
                    ),
                },
            ));
        }
    };
    prune(data, fields::<raw::RawConfig>(), &[]);
    if let Some(Value::Dict(_, vault)) = data.get_mut("vault") {
        prune(vault, fields::<raw::RawVault>(), &["vault"]);
        if let Some(Value::Dict(_, retry)) = vault.get_mut("retry") {
            prune(retry, fields::<raw::RawRetry>(), &["vault", "retry"]);
        }
    }
    if let Some(Value::Dict(_, auto_auth)) = data.get_mut("auto_auth") {
        prune(auto_auth, fields::<raw::RawAutoAuth>(), &["auto_auth"]);
        if let Some(Value::Dict(_, method)) = auto_auth.get_mut("method") {
            prune(method, fields::<raw::RawMethod>(), &["auto_auth", "method"]);
            let known = match method.get("type") {
                Some(Value::String(_, kind)) => method_config_keys(kind),
                _ => None,
            };
            if let (Some(known), Some(Value::Dict(_, config))) = (known, method.get_mut("config")) {
                prune(config, known, &["auto_auth", "method", "config"]);
            }
        }
        if let Some(Value::Array(_, sinks)) = auto_auth.get_mut("sink") {
            for (index, sink) in sinks.iter_mut().enumerate() {
                let index = index.to_string();
                if let Value::Dict(_, sink) = sink {
                    prune(
                        sink,
                        fields::<raw::RawSink>(),
                        &["auto_auth", "sink", &index],
                    );
                    if let Some(Value::Dict(_, config)) = sink.get_mut("config") {
                        prune(
                            config,
                            fields::<raw::RawSinkConfig>(),
                            &["auto_auth", "sink", &index, "config"],
                        );
                    }
                }
            }
        }
    }
    if let Some(Value::Dict(_, template_config)) = data.get_mut("template_config") {
        prune(
            template_config,
            fields::<raw::RawTemplateConfig>(),
            &["template_config"],
        );
    }
    if let Some(Value::Dict(_, telemetry)) = data.get_mut("telemetry") {
        prune(telemetry, fields::<raw::RawTelemetry>(), &["telemetry"]);
    }
    if let Some(Value::Array(_, listeners)) = data.get_mut("listener") {
        for (index, listener) in listeners.iter_mut().enumerate() {
            if let Value::Dict(_, listener) = listener
                && let Some(Value::Dict(_, agent_api)) = listener.get_mut("agent_api")
            {
                let index = index.to_string();
                prune(
                    agent_api,
                    fields::<raw::RawAgentApi>(),
                    &["listener", &index, "agent_api"],
                );
            }
        }
    }
    warnings.sort_by_key(|(at, _)| *at);
    (
        warnings.into_iter().map(|(_, warning)| warning).collect(),
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_the_raw_structs() {
        let vault = fields::<raw::RawVault>();
        assert!(vault.contains(&"address"), "{vault:?}");
        assert!(vault.contains(&"ca_cert"), "{vault:?}");
        assert!(fields::<raw::RawMethod>().contains(&"type"));
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(edit_distance("adress", "address"), 1);
        assert_eq!(
            suggestion("adress", fields::<raw::RawVault>()),
            Some("address")
        );
        assert_eq!(suggestion("degub", &["debug", "info"]), Some("debug"));
        assert_eq!(suggestion("something_else", &["debug", "info"]), None);
    }
}
