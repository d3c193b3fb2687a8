//! What the logs say while something is wrong, as the real binary writes them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, role::Launch};

/// The JSON events of `log` whose `@message` is `message`.
fn events(log: &str, message: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["@message"] == message)
        .collect()
}

/// An agent whose Vault is down says so at once, naming the address and the error, and every
/// retry after says when the next attempt is.
#[test]
fn an_unreachable_vault_is_logged_within_a_second_with_each_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then closed.
    let address = format!("http://127.0.0.1:{}", util::free_port());
    util::write_file(dir.path(), "jwt", "not-a-real-jwt\n");
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            r#"vault {{ address = "{address}" }}
auto_auth {{
  method "kubernetes" {{
    config = {{
      role = "web"
      token_path = "{dir}/jwt"
    }}
  }}
}}
"#,
            dir = dir.path().display()
        ),
    );
    let started = Instant::now();
    let agent = Launch::agent(&[&config], &address, &dir.path().join("agent.log")).spawn();
    let mut first_seen = None;
    util::wait_until(Duration::from_secs(10), "the first failed request", || {
        let found = !events(&agent.log(), "Vault request failed; retrying").is_empty();
        if found && first_seen.is_none() {
            first_seen = Some(started.elapsed());
        }
        found
    });
    let first_seen = first_seen.unwrap();
    // Three retries: each names its attempt and when the next one is.
    util::wait_until(Duration::from_secs(10), "three failed attempts", || {
        events(&agent.log(), "Vault request failed; retrying").len() >= 3
    });
    let (_, log) = agent.stop();
    assert!(
        first_seen < Duration::from_secs(1),
        "the first failure was logged {first_seen:?} after the start:\n{log}"
    );
    let failures = events(&log, "Vault request failed; retrying");
    for (n, event) in failures.iter().enumerate() {
        assert_eq!(event["@level"], "warn", "{event}");
        assert_eq!(event["vault"], address.as_str(), "{event}");
        let error = event["error"].as_str().unwrap();
        assert!(error.contains("Connection refused"), "{error}");
        assert_eq!(event["attempt"], n as u64 + 1, "{event}");
        let retry_in = event["retry_in_seconds"].as_f64().unwrap();
        assert!((0.1..=2.0).contains(&retry_in), "{event}");
        assert_eq!(
            (retry_in * 100.0).round() / 100.0,
            retry_in,
            "rounded to hundredths: {event}"
        );
        // The wall-clock time of the next attempt: after this line's, by retry_in.
        let at = event["@timestamp"].as_str().unwrap();
        let next = event["next_attempt_at"].as_str().unwrap();
        assert!(
            next.len() == 24 && next.ends_with('Z') && next > at,
            "{event}"
        );
    }
}
