//! The agent's auto_auth against real OpenBao: logins, the sink, renewals, re-logins, outages,
//! and what never reaches the logs.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util;
use crate::util::bao::{self, Bed};
use crate::util::role::{AgentProcess, Launch};

/// A running `pki-sidecar agent` ([`util::role`]) with its files in a temporary directory.
struct Agent {
    dir: tempfile::TempDir,
    process: AgentProcess,
    metrics: SocketAddr,
}

impl Agent {
    fn sink(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    fn jwt(&self) -> PathBuf {
        self.dir.path().join("sa-token")
    }

    /// Waits until the sink holds a token other than `previous`, and returns it.
    fn wait_for_token(&self, previous: Option<&str>, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Ok(token) = std::fs::read_to_string(self.sink())
                && !token.is_empty()
                && Some(token.as_str()) != previous
            {
                return token;
            }
            assert!(
                start.elapsed() < limit,
                "no new token in the sink after {limit:?}; metrics:\n{}",
                self.process.scrape()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The sample `series` now; a missing series fails the test.
    fn metric(&self, series: &str) -> f64 {
        self.process.metric(series)
    }

    /// Stops the agent with SIGTERM; returns its exit code and log.
    fn stop(self) -> (Option<i32>, String) {
        self.process.stop()
    }
}

/// Starts an agent against `bed` with `method` (an HCL `method` block, `DIR` standing for the
/// agent's directory) and `extra` HCL. The directory holds `sa-token` (a JWT for the seed's
/// ServiceAccount unless `jwt` is given) and `files`, written before the agent starts.
fn start_agent(
    bed: &Bed,
    method: &str,
    extra: &str,
    jwt: Option<String>,
    files: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Agent {
    let dir = tempfile::tempdir().expect("tempdir");
    let jwt = jwt.unwrap_or_else(|| bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT));
    std::fs::write(dir.path().join("sa-token"), jwt).expect("write the JWT");
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write a credential file");
    }
    let method = method.replace("DIR", &dir.path().display().to_string());
    let config = format!(
        r#"
pid_file = "{dir}/pidfile"
auto_auth {{
{method}
  sink "file" {{
    config = {{
      path = "{dir}/token"
    }}
  }}
}}
{extra}
"#,
        dir = dir.path().display(),
    );
    let config_path = util::write_file(dir.path(), "agent.hcl", &config);
    let mut launch = Launch::agent(&[&config_path], bed.addr(), &dir.path().join("agent.log"));
    for (name, value) in env {
        launch = launch.env(name, value);
    }
    let process = launch.spawn();
    let metrics = process.metrics();
    Agent {
        dir,
        process,
        metrics,
    }
}

fn kubernetes_method(role: &str) -> String {
    format!(
        r#"  method "kubernetes" {{
    mount_path  = "auth/kubernetes"
    min_backoff = "1s"
    max_backoff = "4s"
    config = {{
      role       = "{role}"
      token_path = "DIR/sa-token"
    }}
  }}"#
    )
}

/// Issues a certificate with `token`; the HTTP status.
fn issue_with(bed: &Bed, token: &str) -> u16 {
    bed.request(
        "POST",
        bao::ISSUE_PATH,
        Some(token),
        Some(json!({"common_name": "foo.home", "ttl": "1h"})),
    )
    .0
}

/// JSON log lines whose message is `message`.
fn log_events(stderr: &str, message: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["@message"] == message)
        .collect()
}

/// `pki_sidecar { revoke_token_on_shutdown = true }` (the injector's
/// `agent-revoke-on-shutdown`): after SIGTERM the agent waits `revoke_grace`, then revokes its
/// token, which no longer works; it still exits 0. Without the key the token outlives it.
#[test]
fn revoke_token_on_shutdown_revokes_the_token_after_the_grace() {
    let bed = bao::bed();
    let extra = "pki_sidecar {\n  revoke_token_on_shutdown = true\n  revoke_grace = \"1s\"\n}\n";
    let agent = start_agent(
        bed,
        &kubernetes_method(bao::LOGIN_ROLE),
        extra,
        None,
        &[],
        &[],
    );
    let token = agent.wait_for_token(None, Duration::from_secs(20));
    assert_eq!(issue_with(bed, &token), 200);
    let stopping = Instant::now();
    let (code, log) = agent.process.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        stopping.elapsed() >= Duration::from_secs(1),
        "the grace first"
    );
    assert!(log.contains("revoked the agent's token"), "{log}");
    assert_eq!(issue_with(bed, &token), 403, "the token is revoked");

    let agent = start_agent(bed, &kubernetes_method(bao::LOGIN_ROLE), "", None, &[], &[]);
    let token = agent.wait_for_token(None, Duration::from_secs(20));
    let (code, log) = agent.process.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        issue_with(bed, &token),
        200,
        "without the key the token stays"
    );
}

#[test]
fn kubernetes_login_writes_a_working_token_to_the_sink() {
    let bed = bao::bed();
    let agent = start_agent(bed, &kubernetes_method(bao::LOGIN_ROLE), "", None, &[], &[]);
    let token = agent.wait_for_token(None, Duration::from_secs(20));

    let mode = std::fs::metadata(agent.sink())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640, "the sink's default mode");
    assert_eq!(
        issue_with(bed, &token),
        200,
        "the sink's token may issue foo.home"
    );

    let readyz = util::http(agent.metrics, "GET", "/readyz");
    assert_eq!((readyz.status, readyz.body.as_str()), (200, "ready\n"));
    let scrape = agent.process.scrape();
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_agent_auth_total{method=\"kubernetes\",result=\"success\"}"
        ),
        1.0
    );
    let expiry = util::metric(
        &scrape,
        "pki_sidecar_agent_token_expiration_timestamp_seconds",
    );
    let now = bao::unix_now() as f64;
    assert!(
        expiry > now + 23.0 * 3600.0 && expiry < now + 24.0 * 3600.0 + 60.0,
        "24h token: {expiry}"
    );
    assert!(
        util::metric(
            &scrape,
            "pki_sidecar_vault_request_duration_seconds_count{operation=\"login\"}"
        ) >= 1.0
    );
    if let Some((ok, report)) = util::promtool_check(&scrape) {
        assert!(ok, "promtool: {report}");
    }

    let pid_file = agent.dir.path().join("pidfile");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        agent.process.pid().to_string()
    );
    // Vault Agent's mode for it.
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&pid_file).unwrap().permissions()
        ) & 0o777,
        0o600
    );
    let dir = agent.dir.path().to_path_buf();
    let jwt = std::fs::read_to_string(agent.jwt()).unwrap();
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !dir.join("pidfile").exists(),
        "the pid file is removed on a clean exit"
    );
    assert!(!stderr.contains(&token), "the token must not be logged");
    assert!(!stderr.contains(&jwt), "the JWT must not be logged");
    let logins = log_events(&stderr, "logged in to Vault");
    assert_eq!(logins.len(), 1, "{stderr}");
    // Vault Agent's JSON shape: `@` keys, the event's fields beside them with their JSON types.
    let login = &logins[0];
    assert_eq!(login["@level"], "info", "{login}");
    assert_eq!(login["@module"], "agent.auth", "{login}");
    assert_eq!(login["method"], "kubernetes", "{login}");
    assert!(login["ttl_seconds"].is_u64(), "{login}");
    assert!(login["renewable"].is_boolean(), "{login}");
    // The accessor can look the token up and revoke it: debug only.
    assert!(login.get("accessor").is_none(), "{login}");
    assert!(!stderr.contains("\"accessor\""), "{stderr}");
}

#[test]
fn tokens_are_renewed_past_their_ttl_and_replaced_at_max_ttl_with_the_rotated_sa_token() {
    let bed = bao::bed();
    bed.create_kubernetes_role("short-ttl", "3s", "8s");
    let first_jwt = bao::service_account_jwt_with(
        bao::NAMESPACE,
        bao::SERVICE_ACCOUNT,
        json!({"kubernetes.io/serviceaccount/service-account.uid": "uid-rotation-1"}),
    );
    let agent = start_agent(
        bed,
        &kubernetes_method("short-ttl"),
        "",
        Some(first_jwt),
        &[],
        &[],
    );
    let started = Instant::now();
    let first = agent.wait_for_token(None, Duration::from_secs(20));
    // Kubernetes rotates the projected token file: the next login must read the new one.
    let second_jwt = bao::service_account_jwt_with(
        bao::NAMESPACE,
        bao::SERVICE_ACCOUNT,
        json!({"kubernetes.io/serviceaccount/service-account.uid": "uid-rotation-2"}),
    );
    std::fs::write(agent.jwt(), second_jwt).unwrap();

    // Renewed twice (at about 2 s, then 4 s), the first token outlives its 3 s TTL.
    let renewed = "pki_sidecar_agent_token_renewals_total{result=\"success\"}";
    util::wait_until(Duration::from_secs(30), "two renewals", || {
        agent.metric(renewed) >= 2.0
    });
    assert!(started.elapsed() > Duration::from_secs(3));
    assert!(
        bed.token_ttl(&first).is_some(),
        "the first token outlived its 3s TTL by renewal"
    );

    // The max TTL (8 s) caps renewals: the agent logs in again, with the rotated JWT.
    let second = agent.wait_for_token(Some(&first), Duration::from_secs(15));
    assert_ne!(first, second);
    assert_eq!(issue_with(bed, &second), 200);
    let uids = bed.token_review().seen_uids();
    let position = |uid: &str| uids.iter().rposition(|u| u == uid);
    assert!(
        position("uid-rotation-2") > position("uid-rotation-1"),
        "the re-login used the rotated token file: {uids:?}"
    );
    assert!(
        agent.metric("pki_sidecar_agent_auth_total{method=\"kubernetes\",result=\"success\"}")
            >= 2.0
    );
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_revoked_token_is_replaced_at_the_next_renewal() {
    let bed = bao::bed();
    bed.create_kubernetes_role("revocable", "3s", "1h");
    let agent = start_agent(bed, &kubernetes_method("revocable"), "", None, &[], &[]);
    let first = agent.wait_for_token(None, Duration::from_secs(20));
    bed.revoke_token(&first);
    let second = agent.wait_for_token(Some(&first), Duration::from_secs(10));
    assert_eq!(issue_with(bed, &second), 200);
    assert!(agent.metric("pki_sidecar_agent_token_renewals_total{result=\"failure\"}") >= 1.0);
    // Vault Agent's names: the refused renewal a failure, the two logins successes.
    for prefix in ["vault", "bao"] {
        assert!(agent.metric(&format!("{prefix}_agent_auth_failure")) >= 1.0);
        assert!(agent.metric(&format!("{prefix}_agent_auth_success")) >= 2.0);
    }
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0));
    assert!(
        !log_events(
            &stderr,
            "Vault refused to renew the token; logging in again"
        )
        .is_empty(),
        "{stderr}"
    );
}

/// A template whose path the token's policies do not allow (403 "permission denied", as for a
/// revoked token) keeps its token: the token looks itself up, is valid, and no new login is
/// made at each retry (OpenBao Agent keeps its token too), so no token is left behind in Vault
/// per retry. A token Vault no longer knows is replaced by a new login at the next refusal.
#[test]
fn a_template_refused_by_policy_keeps_the_token() {
    let bed = bao::bed();
    let agent = start_agent(
        bed,
        &kubernetes_method(bao::LOGIN_ROLE),
        r#"template {
  contents    = "{{ with secret \"secret/data/not-in-any-policy\" }}{{ .Data.data.x }}{{ end }}"
  destination = "/dev/null"
}"#,
        None,
        &[],
        &[],
    );
    let first = agent.wait_for_token(None, Duration::from_secs(20));
    let failed = "pki_sidecar_agent_template_renders_total{result=\"failure\"}";
    let started = Instant::now();
    while agent.metric(failed) < 3.0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "fewer than 3 refused renders in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        agent.metric("pki_sidecar_agent_auth_total{method=\"kubernetes\",result=\"success\"}"),
        1.0,
        "one login, whatever the template's refusals"
    );
    let sink = std::fs::read_to_string(agent.dir.path().join("token")).unwrap();
    assert_eq!(sink, first, "the sink keeps its token");
    // A token Vault no longer knows, refused at the template's next retry: a new login.
    bed.revoke_token(&first);
    let second = agent.wait_for_token(Some(&first), Duration::from_secs(60));
    assert_eq!(issue_with(bed, &second), 200);
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !log_events(
            &stderr,
            "Vault refused the token for a template; logging in again"
        )
        .is_empty(),
        "{stderr}"
    );
}

#[test]
fn refused_logins_back_off_under_growing_ceilings_and_say_why() {
    let bed = bao::bed();
    for (case, role, jwt) in [
        ("unknown role", "no-such-role", None),
        (
            "rejected JWT",
            bao::LOGIN_ROLE,
            Some(bao::service_account_jwt_with(
                bao::NAMESPACE,
                bao::SERVICE_ACCOUNT,
                json!({"revoked": true}),
            )),
        ),
    ] {
        let started = Instant::now();
        let agent = start_agent(bed, &kubernetes_method(role), "", jwt, &[], &[]);
        // Three refused logins: the second and third come after the backoff's first two
        // waits (each at least min_backoff, 1 s: full jitter draws between it and the
        // ceiling), so never sooner than 2 s from the start — a lower bound, which a loaded
        // machine cannot break, where a count in a fixed window could.
        let failed = "pki_sidecar_agent_auth_total{method=\"kubernetes\",result=\"failure\"}";
        while agent.metric(failed) < 3.0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{case}: fewer than 3 failed logins in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            started.elapsed() >= Duration::from_millis(2000),
            "{case}: 3 failed logins within {:?}: the backoff did not wait",
            started.elapsed()
        );
        assert!(agent.metric("vault_agent_auth_failure") >= 3.0, "{case}");
        assert_eq!(agent.metric("vault_agent_auth_success"), 0.0, "{case}");
        let readyz = util::http(agent.metrics, "GET", "/readyz");
        assert_eq!(readyz.status, 503, "{case}");
        assert!(
            readyz.body.starts_with("vault_token: no Vault token yet"),
            "{case}: {}",
            readyz.body
        );
        assert!(!agent.sink().exists(), "{case}: no sink without a token");
        let (code, stderr) = agent.stop();
        assert_eq!(code, Some(0), "{case}: {stderr}");
        let failures = log_events(&stderr, "login to Vault failed");
        assert!(failures.len() >= 2, "{case}: {stderr}");
        let waits: Vec<f64> = failures
            .iter()
            .map(|e| e["retry_in_seconds"].as_f64().unwrap())
            .collect();
        // Wait n is drawn between min_backoff (1 s) and its ceiling, 1 s doubled n times and
        // capped at max_backoff (4 s): the first is 1 s, the second at most 2 s, the rest at
        // most 4 s (the log rounds to hundredths).
        for (n, wait) in waits.iter().enumerate() {
            let ceiling = 2f64.powi(n as i32).min(4.0);
            assert!(
                (0.99..=ceiling + 0.01).contains(wait),
                "{case}: wait {n} outside 1 s..{ceiling} s: {waits:?}"
            );
        }
        let error = failures[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("Vault answered 403 to login:")
                || error.starts_with("Vault answered 400 to login:"),
            "{case}: {error}"
        );
    }
}

#[test]
fn the_agent_rides_out_an_openbao_outage_and_recovers_without_a_restart() {
    let mut bed = bao::private_bed();
    bed.create_kubernetes_role("outage", "3s", "1h");
    let agent = start_agent(
        &bed,
        &kubernetes_method("outage"),
        "vault {\n  retry {\n    num_retries = 2\n  }\n}\n",
        None,
        &[],
        &[],
    );
    let first = agent.wait_for_token(None, Duration::from_secs(20));
    // A histogram's series appears at its first observation: before the first renewal there
    // is no `renew_self` series, which counts as no request.
    let requests = |agent: &Agent| {
        let scrape = agent.process.scrape();
        ["login", "renew_self"]
            .iter()
            .map(|operation| {
                let series = format!(
                    "pki_sidecar_vault_request_duration_seconds_count{{operation=\"{operation}\"}}"
                );
                util::try_metric(&scrape, &series).unwrap_or(0.0)
            })
            .sum::<f64>()
    };
    let before = requests(&agent);
    bed.stop();
    let down = Instant::now();
    // The renewal fails, then logins fail: two failed logins mean the agent has been riding
    // the outage through its backoff.
    let failed = "pki_sidecar_agent_auth_total{method=\"kubernetes\",result=\"failure\"}";
    util::wait_until(Duration::from_secs(60), "two failed logins", || {
        agent.metric(failed) >= 2.0
    });
    let down_for = down.elapsed().as_secs_f64();
    let attempts_while_down = requests(&agent) - before;
    // Each call is tried 3 times (2 retries), calls at least 0.75 s apart (min_backoff 1 s,
    // the jitter's floor, less a margin), plus the renewal in flight when Vault went: an upper bound, which a slow
    // machine only makes easier to meet.
    let bound = 3.0 * (down_for / 0.75 + 2.0);
    assert!(
        attempts_while_down <= bound,
        "{attempts_while_down} requests in {down_for:.1}s of outage (bound {bound:.0})"
    );
    assert_eq!(
        std::fs::read_to_string(agent.sink()).unwrap(),
        first,
        "the old token stays in the sink"
    );

    bed.restart();
    bed.create_kubernetes_role("outage", "3s", "1h");
    let second = agent.wait_for_token(Some(&first), Duration::from_secs(15));
    assert_eq!(
        issue_with(&bed, &second),
        200,
        "a token from the restarted server"
    );
    assert_eq!(util::http(agent.metrics, "GET", "/readyz").status, 200);
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn approle_and_token_file_logins_work() {
    let bed = bao::bed();
    let (role_id, secret_id) = bed.enable_approle();
    let method = r#"  method "approle" {
    config = {
      role_id_file_path   = "DIR/role-id"
      secret_id_file_path = "DIR/secret-id"
    }
  }"#;
    let files = [
        ("role-id", role_id.as_str()),
        ("secret-id", secret_id.as_str()),
    ];
    let agent = start_agent(bed, method, "", None, &files, &[]);
    let token = agent.wait_for_token(None, Duration::from_secs(20));
    assert_eq!(issue_with(bed, &token), 200);
    assert!(
        !agent.dir.path().join("secret-id").exists(),
        "remove_secret_id_file_after_reading defaults to true"
    );
    assert!(agent.dir.path().join("role-id").exists());
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains(&secret_id),
        "the secret ID must not be logged"
    );

    let given = bed.create_token(&["pki"], "1h", true);
    let method = r#"  method "token_file" {
    config = {
      token_file_path = "DIR/given-token"
    }
  }"#;
    let agent = start_agent(bed, method, "", None, &[("given-token", &given)], &[]);
    assert_eq!(agent.wait_for_token(None, Duration::from_secs(20)), given);
    let scrape = agent.process.scrape();
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_agent_auth_total{method=\"token_file\",result=\"success\"}"
        ),
        1.0
    );
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains(&given), "the token must not be logged");
}

/// A response-wrapping token for `path` (a POST with `body`), made with the root token: the
/// `wrap_info.token` Vault answers with `X-Vault-Wrap-TTL`.
fn wrapped(bed: &Bed, path: &str, body: &str) -> String {
    let output = std::process::Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "X-Vault-Wrap-TTL: 300s", "-H"])
        .arg(format!("X-Vault-Token: {}", bed.root_token()))
        .args(["-d", body])
        .arg(format!("{}/v1/{path}", bed.addr()))
        .output()
        .expect("run curl");
    let answer: Value = serde_json::from_slice(&output.stdout).expect("Vault's JSON");
    answer["wrap_info"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no wrap_info in {answer}"))
        .to_string()
}

/// `secret_id_response_wrapping_path`: the secret ID file holds a wrapping token; one created
/// at the configured path is unwrapped and logs in (the unwrapped secret ID is remembered, the
/// file removed), one created anywhere else is refused without being unwrapped, as Vault Agent
/// does.
#[test]
fn approle_unwraps_a_secret_id_wrapped_where_it_is_told() {
    let bed = bao::bed();
    let (role_id, secret_id) = bed.enable_approle();
    let method = |path: &str| {
        format!(
            r#"  method "approle" {{
    config = {{
      role_id_file_path                = "DIR/role-id"
      secret_id_file_path              = "DIR/secret-id"
      secret_id_response_wrapping_path = "{path}"
    }}
  }}"#
        )
    };
    // The agent, told the wrapping path, with `secret` in its secret ID file.
    let start = |secret: &str| {
        let files = [("role-id", role_id.as_str()), ("secret-id", secret)];
        start_agent(
            bed,
            &method("auth/approle/role/agent/secret-id"),
            "",
            None,
            &files,
            &[],
        )
    };
    let token = wrapped(bed, "auth/approle/role/agent/secret-id", "{}");
    let agent = start(&token);
    let issued = agent.wait_for_token(None, Duration::from_secs(20));
    assert_eq!(issue_with(bed, &issued), 200);
    assert!(!agent.dir.path().join("secret-id").exists());
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains(&token),
        "the wrapping token must not be logged"
    );

    // Wrapped by someone else (sys/wrapping/wrap): refused, and left wrapped.
    let elsewhere = wrapped(
        bed,
        "sys/wrapping/wrap",
        &json!({ "secret_id": secret_id }).to_string(),
    );
    let agent = start(&elsewhere);
    let failed = "pki_sidecar_agent_auth_total{method=\"approle\",result=\"failure\"}";
    util::wait_until(Duration::from_secs(20), "a refused login", || {
        agent.process.metric(failed) >= 1.0
    });
    assert!(!agent.sink().exists(), "no token without a secret ID");
    let (_, stderr) = agent.stop();
    assert!(
        stderr.contains("sys/wrapping/wrap") && stderr.contains("it is not unwrapped"),
        "{stderr}"
    );
    let (status, lookup) = bed.request(
        "POST",
        "sys/wrapping/lookup",
        Some(bed.root_token()),
        Some(json!({ "token": elsewhere })),
    );
    assert_eq!(status, 200, "still wrapped, never unwrapped: {lookup}");
}

#[test]
fn secrets_never_reach_the_logs_even_at_trace_level() {
    let bed = bao::bed();
    bed.create_kubernetes_role("traced", "2s", "1h");
    let agent = start_agent(
        bed,
        &kubernetes_method("traced"),
        "",
        None,
        &[],
        &[("RUST_LOG", "trace")],
    );
    let token = agent.wait_for_token(None, Duration::from_secs(20));
    // At least one renewal, so its request and answer are traced too.
    util::wait_until(Duration::from_secs(30), "a renewal", || {
        agent.metric("pki_sidecar_agent_token_renewals_total{result=\"success\"}") >= 1.0
    });
    let jwt = std::fs::read_to_string(agent.jwt()).unwrap();
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0));
    assert!(stderr.lines().count() > 20, "trace logging is on: {stderr}");
    assert!(!stderr.contains(&token), "token in the trace log");
    assert!(!stderr.contains(&jwt), "JWT in the trace log");
    // The JWT's payload alone (its middle part) must not appear either.
    let payload = jwt.split('.').nth(1).unwrap();
    assert!(!stderr.contains(payload), "JWT payload in the trace log");
}

#[test]
fn exit_after_auth_writes_the_sink_and_exits_zero() {
    let bed = bao::bed();
    let agent = start_agent(
        bed,
        &kubernetes_method(bao::LOGIN_ROLE),
        "exit_after_auth = true\n",
        None,
        &[],
        &[],
    );
    let sink = agent.sink();
    let _dir = agent.dir;
    let (code, stderr) = agent.process.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    let token = std::fs::read_to_string(sink).expect("sink written before exit");
    assert_eq!(issue_with(bed, &token), 200);
}

/// A sink with `wrap_ttl` holds a response-wrapping token for the agent's token, written as
/// Vault Agent writes it (the JSON of Vault's `wrap_info`, Go's field order): unwrapped once,
/// it gives the token, which then works; a second unwrap fails. A plain sink beside it holds
/// the token itself. OpenBao Agent, run on the same kind of file, writes the same fields in the
/// same order.
#[test]
fn a_sink_with_wrap_ttl_holds_a_single_use_wrapping_token_for_the_token() {
    let bed = bao::bed();
    let token = bed.create_token(&["default", bao::ISSUE_POLICY], "1h", true);
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "token-in", &token);
    let file = |extra: &str| {
        format!(
            r#"exit_after_auth = true
auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = "{dir}/token-in"
    }}
  }}
  sink "file" {{
    wrap_ttl = "5m"
    config = {{
      path = "{dir}/wrapped{extra}"
    }}
  }}
  sink "file" {{
    config = {{
      path = "{dir}/plain{extra}"
    }}
  }}
}}
vault {{
  address = "{addr}"
}}
"#,
            dir = dir.path().display(),
            addr = bed.addr(),
        )
    };
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            "{}telemetry {{\n  metrics_listen = \"127.0.0.1:0\"\n}}\n",
            file("")
        ),
    );
    let output = util::command()
        .args(["agent", "--config", config.to_str().unwrap()])
        .output()
        .expect("run the agent");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plain")).unwrap(),
        token
    );
    let wrapped = std::fs::read_to_string(dir.path().join("wrapped")).unwrap();
    assert!(
        !wrapped.contains(&token),
        "the token itself is not in the wrapped sink"
    );
    let keys = |json: &str| -> Vec<String> {
        // serde_json keeps the file's order only with preserve_order; read the keys by hand.
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let mut keys: Vec<(usize, String)> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|key| (json.find(&format!("\"{key}\":")).unwrap(), key.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, key)| key).collect()
    };
    let info: serde_json::Value = serde_json::from_str(&wrapped).unwrap();
    assert_eq!(
        keys(&wrapped),
        [
            "token",
            "accessor",
            "ttl",
            "creation_time",
            "creation_path",
            "wrapped_accessor"
        ]
    );
    assert_eq!(info["ttl"], 300);
    assert_eq!(info["creation_path"], "sys/wrapping/wrap");
    let wrapping_token = info["token"].as_str().unwrap();
    let (status, unwrapped) =
        bed.request("POST", "sys/wrapping/unwrap", Some(wrapping_token), None);
    assert_eq!(status, 200, "{unwrapped}");
    assert_eq!(unwrapped["data"]["token"], token.as_str());
    assert_eq!(issue_with(bed, &token), 200);
    let (status, _) = bed.request("POST", "sys/wrapping/unwrap", Some(wrapping_token), None);
    assert_ne!(status, 200, "a wrapping token unwraps once");

    // OpenBao Agent on the same file: the same fields, in the same order.
    let bao_config = util::write_file(dir.path(), "bao.hcl", &file("-bao"));
    let output = std::process::Command::new(bao::bao_binary())
        .args(["agent", &format!("-config={}", bao_config.display())])
        .env("HOME", dir.path())
        .output()
        .expect("run bao agent");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs = std::fs::read_to_string(dir.path().join("wrapped-bao")).unwrap();
    assert_eq!(keys(&theirs), keys(&wrapped));
    // One line each, as Go's JSON encoder ends it.
    assert!(
        theirs.ends_with("}\n") && wrapped.ends_with("}\n"),
        "{theirs:?} {wrapped:?}"
    );
    let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
    assert_eq!(theirs["ttl"], info["ttl"]);
    assert_eq!(theirs["creation_path"], info["creation_path"]);
    assert_eq!(theirs["wrapped_accessor"], info["wrapped_accessor"]);
}

/// One HTTP/1.1 request with `headers` and a JSON `body`, `Connection: close`.
fn request_with(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> util::HttpResponse {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: vault\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    stream
        .write_all(format!("{head}\r\n{body}").as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    util::parse_response(&raw)
}

/// Vault Agent's API proxy: an application that sent its Vault requests to the agent's
/// `listener "tcp"` keeps working. Requests reach Vault with the agent's token when they carry
/// none (`use_auto_auth_token = true`), with their own when they do; a listener with
/// `require_request_header` refuses a request without `X-Vault-Request: true`, as Vault Agent's.
#[test]
fn the_api_proxy_listener_forwards_requests_with_the_agents_token() {
    let bed = bao::bed();
    let token = bed.create_token(&["default", bao::ISSUE_POLICY], "1h", true);
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "token-in", &token);
    let (open, guarded) = (util::free_port(), util::free_port());
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            r#"vault {{
  address = "{addr}"
}}
auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = "{dir}/token-in"
    }}
  }}
}}
api_proxy {{
  use_auto_auth_token = true
}}
listener "tcp" {{
  address     = "127.0.0.1:{open}"
  tls_disable = true
}}
listener "tcp" {{
  address                = "localhost:{guarded}"
  tls_disable            = true
  require_request_header = true
}}
"#,
            addr = bed.addr(),
            dir = dir.path().display(),
        ),
    );
    let agent = Launch::agent(&[&config], bed.addr(), &dir.path().join("agent.log")).spawn();
    let open: std::net::SocketAddr = format!("127.0.0.1:{open}").parse().unwrap();
    let guarded: std::net::SocketAddr = format!("127.0.0.1:{guarded}").parse().unwrap();
    util::wait_for_port(open, Duration::from_secs(20));
    // Until the first login the proxy says it has no token yet.
    util::wait_until(Duration::from_secs(20), "the agent's token", || {
        request_with(open, "GET", "/v1/auth/token/lookup-self", &[], "").status == 200
    });
    let lookup = request_with(open, "GET", "/v1/auth/token/lookup-self", &[], "");
    let lookup: Value = serde_json::from_str(&lookup.body).unwrap();
    assert_eq!(
        lookup["data"]["id"],
        token.as_str(),
        "the agent's token was used"
    );
    // A request with a token of its own keeps it.
    let own = request_with(
        open,
        "GET",
        "/v1/auth/token/lookup-self",
        &[("X-Vault-Token", bed.root_token())],
        "",
    );
    let own: Value = serde_json::from_str(&own.body).unwrap();
    assert_eq!(own["data"]["id"], bed.root_token());
    // A write, with a body and Vault's answer passed back: a certificate issued with the
    // agent's token.
    let issued = request_with(
        open,
        "POST",
        &format!("/v1/{}", bao::ISSUE_PATH),
        &[("Content-Type", "application/json")],
        r#"{"common_name": "proxied.home", "ttl": "5m"}"#,
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    let issued: Value = serde_json::from_str(&issued.body).unwrap();
    assert!(
        issued["data"]["certificate"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    // Vault's refusals come back as Vault wrote them (the agent's token may not read KV).
    let refused = request_with(open, "GET", "/v1/secret/data/no-such-secret-here", &[], "");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("permission denied"),
        "{}",
        refused.body
    );
    // require_request_header.
    let refused = request_with(guarded, "GET", "/v1/auth/token/lookup-self", &[], "");
    assert_eq!(refused.status, 412);
    assert_eq!(
        refused.body,
        r#"{"errors":["missing 'X-Vault-Request' header"]}"#
    );
    let allowed = request_with(
        guarded,
        "GET",
        "/v1/auth/token/lookup-self",
        &[("X-Vault-Request", "true")],
        "",
    );
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    // Counted by outcome, as Vault Agent's agent.proxy.success / client_error / error: the
    // first 200 of the wait and the four after it; the 403 and the 412 (the 503s while the
    // agent had no token yet are errors, how many depends on the wait).
    let scrape = agent.scrape();
    let outcome = |name: &str| {
        util::metric(
            &scrape,
            &format!("pki_sidecar_agent_api_proxy_requests_total{{outcome=\"{name}\"}}"),
        )
    };
    assert_eq!(outcome("success"), 5.0, "{scrape}");
    assert_eq!(outcome("client_error"), 2.0, "{scrape}");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(&token), "the token never reaches the log");
}

/// The start of an agent file for `vault_addr` that logs in with the token in
/// `dir/token-in` and writes it to `dir/NAME.sink`: what both agents of a comparison share.
fn token_file_head(vault_addr: &str, dir: &std::path::Path, name: &str) -> String {
    format!(
        r#"vault {{
  address = "{vault_addr}"
}}
auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = "{dir}/token-in"
    }}
  }}
  sink "file" {{
    config = {{
      path = "{dir}/{name}.sink"
    }}
  }}
}}
"#,
        dir = dir.display(),
    )
}

/// Writes `dir/name`: [`token_file_head`], one plain `listener "tcp"` on `port` with the
/// `listener` lines given, then `rest`; returns its path.
fn token_file_listener(
    vault_addr: &str,
    dir: &std::path::Path,
    name: &str,
    port: u16,
    listener: &str,
    rest: &str,
) -> std::path::PathBuf {
    util::write_file(
        dir,
        name,
        &format!(
            "{head}listener \"tcp\" {{\n  address     = \"127.0.0.1:{port}\"\n  tls_disable = \
             true\n{listener}}}\n{rest}",
            head = token_file_head(vault_addr, dir, name),
        ),
    )
}

/// `listener "tcp" { agent_api { enable_quit = true } }`: `POST /agent/v1/quit` stops the agent
/// (a Job's app ends its sidecar so), with the status codes OpenBao Agent answers: 412 without
/// the header `require_request_header` asks for, 404 where the listener does not enable it, 405
/// for GET, 200 and a clean exit (0) for POST. Both agents run the same file.
#[test]
fn the_quit_endpoint_stops_the_agent_as_openbao_agents_does() {
    let bed = bao::bed();
    let token = bed.create_token(&["default"], "1h", true);
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "token-in", &token);
    let config_for = |name: &str, quit: u16, plain: u16| {
        util::write_file(
            dir.path(),
            name,
            &format!(
                r#"{head}cache {{}}
listener "tcp" {{
  address                = "127.0.0.1:{quit}"
  tls_disable            = true
  require_request_header = true
  agent_api {{
    enable_quit = true
  }}
}}
listener "tcp" {{
  address     = "127.0.0.1:{plain}"
  tls_disable = true
}}
"#,
                head = token_file_head(bed.addr(), dir.path(), name),
            ),
        )
    };
    // What each agent answers, in order: POST without the header and GET on the quit
    // listener, POST on the other one, then POST on the quit listener.
    let probe = |quit: u16, plain: u16| -> Vec<u16> {
        let quit: std::net::SocketAddr = format!("127.0.0.1:{quit}").parse().unwrap();
        let plain: std::net::SocketAddr = format!("127.0.0.1:{plain}").parse().unwrap();
        util::wait_for_port(quit, Duration::from_secs(20));
        util::wait_for_port(plain, Duration::from_secs(20));
        let header = [("X-Vault-Request", "true")];
        vec![
            request_with(quit, "POST", "/agent/v1/quit", &[], "").status,
            request_with(quit, "GET", "/agent/v1/quit", &header, "").status,
            request_with(plain, "POST", "/agent/v1/quit", &[], "").status,
            request_with(quit, "POST", "/agent/v1/quit", &header, "").status,
        ]
    };
    let (quit, plain) = (util::free_port(), util::free_port());
    let mut bao_agent = bao::ReferenceAgent::start(&config_for("bao.hcl", quit, plain), bed.addr());
    let theirs = probe(quit, plain);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = bao_agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "bao agent kept running"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(theirs, vec![412, 405, 404, 200], "the reference");
    assert_eq!(status.code(), Some(0), "bao agent exits 0");

    let (quit, plain) = (util::free_port(), util::free_port());
    let agent = Launch::agent(
        &[&config_for("ours.hcl", quit, plain)],
        bed.addr(),
        &dir.path().join("agent.log"),
    )
    .spawn();
    let ours = probe(quit, plain);
    let (code, log) = agent.wait_exit(Duration::from_secs(20));
    assert_eq!(ours, theirs, "the same answers as OpenBao Agent:\n{log}");
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("quit requested on /agent/v1/quit"), "{log}");
}

/// A Vault Agent file's Prometheus setup loads as it is (`telemetry { prometheus_retention_time,
/// disable_hostname }`) and a scrape config written for Vault Agent's listener keeps working:
/// `/agent/v1/metrics?format=prometheus` answers with the same statuses and content type as
/// OpenBao Agent's (412 without the request header the listener requires, 200 in the Prometheus
/// text format, 405 for POST, 400 for an unknown format), the body being the agent's metrics.
/// Without `format` OpenBao Agent dumps its in-memory sink as JSON; ours says which URL to use.
#[test]
fn the_listener_serves_metrics_where_openbao_agent_serves_them() {
    let bed = bao::bed();
    let token = bed.create_token(&["default"], "1h", true);
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "token-in", &token);
    let config_for = |name: &str, port: u16| {
        token_file_listener(
            bed.addr(),
            dir.path(),
            name,
            port,
            "  require_request_header = true\n",
            "telemetry {\n  prometheus_retention_time = \"30s\"\n  disable_hostname = true\n}\n",
        )
    };
    const PROMETHEUS: &str = "/agent/v1/metrics?format=prometheus";
    // Status and content type (its media type) of each probe, in order.
    let probe = |port: u16| -> Vec<(u16, String)> {
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        util::wait_for_port(address, Duration::from_secs(20));
        let header = [("X-Vault-Request", "true")];
        [
            request_with(address, "GET", PROMETHEUS, &[], ""),
            request_with(address, "GET", PROMETHEUS, &header, ""),
            request_with(address, "POST", PROMETHEUS, &header, ""),
            request_with(address, "GET", "/agent/v1/metrics?format=xml", &header, ""),
        ]
        .iter()
        .map(|reply| {
            let media = reply
                .header("content-type")
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string();
            (reply.status, media)
        })
        .collect()
    };
    let port = util::free_port();
    let bao_agent = bao::ReferenceAgent::start(&config_for("bao.hcl", port), bed.addr());
    let theirs = probe(port);
    drop(bao_agent);
    assert_eq!(
        theirs.iter().map(|(status, _)| *status).collect::<Vec<_>>(),
        vec![412, 200, 405, 400],
        "the reference: {theirs:?}"
    );
    assert_eq!(theirs[1].1, "text/plain", "the reference: {theirs:?}");

    let port = util::free_port();
    let agent = Launch::agent(
        &[&config_for("ours.hcl", port)],
        bed.addr(),
        &dir.path().join("agent.log"),
    )
    .spawn();
    let ours = probe(port);
    let log = agent.log();
    assert_eq!(
        ours.iter().map(|(status, _)| *status).collect::<Vec<_>>(),
        theirs.iter().map(|(status, _)| *status).collect::<Vec<_>>(),
        "the same statuses as OpenBao Agent: {ours:?}\n{log}"
    );
    assert_eq!(ours[1].1, theirs[1].1, "{ours:?}");
    assert!(
        !log.contains("warning"),
        "Vault Agent's Prometheus settings are met, not warned about:\n{log}"
    );
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let header = [("X-Vault-Request", "true")];
    let scraped = request_with(address, "GET", PROMETHEUS, &header, "");
    for family in [
        "# TYPE pki_sidecar_build_info gauge",
        "# TYPE pki_sidecar_agent_token_expiration_timestamp_seconds gauge",
    ] {
        assert!(
            scraped.body.contains(family),
            "{family} in the listener's metrics:\n{}",
            scraped.body
        );
    }
    let json = request_with(address, "GET", "/agent/v1/metrics", &header, "");
    assert_eq!(json.status, 400, "{}", json.body);
    assert!(json.body.contains("?format=prometheus"), "{}", json.body);
}

/// Alerts and dashboards written for Vault Agent's metrics keep working: the agent also counts
/// logins and listener requests under Vault Agent's names, as OpenBao Agent counts them. Both
/// agents run the same file (token_file login, a listener with `api_proxy` and `cache {}`) and
/// get the same requests (two Vault answers below 400, a 403 and a 400); every `bao_agent_*`
/// series OpenBao Agent shows has the same value in ours, ours shows the others at 0, and the
/// `vault_agent_*` ones (Vault Agent's default prefix) are the same. Then both with
/// `metrics_prefix = "team.a-b"`: `team_a_b_agent_*` only, again the same values.
#[test]
fn vault_agents_own_counters_count_as_openbao_agents() {
    let bed = bao::bed();
    // Not renewable: OpenBao Agent renews a renewable token right after its login (its lifetime
    // watcher's first step, one more auth_success), ours at 2/3 of its TTL.
    let token = bed.create_token(&["default"], "1h", false);
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "token-in", &token);
    let config_for = |name: &str, port: u16, prefix: &str| {
        let rest = format!(
            "api_proxy {{\n  use_auto_auth_token = true\n}}\ncache {{}}\ntelemetry {{\n  \
             prometheus_retention_time = \"30s\"\n  disable_hostname = true\n  {prefix}\n}}\n"
        );
        token_file_listener(bed.addr(), dir.path(), name, port, "", &rest)
    };
    // The agent's series, by name, after the same requests, made once it has logged in (its
    // sink written: the listener answers 503 before, a busy machine's login can take a while).
    let drive = |port: u16, name: &str| -> std::collections::BTreeMap<String, String> {
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        util::wait_for_port(address, Duration::from_secs(20));
        let sink = dir.path().join(format!("{name}.sink"));
        util::wait_until(Duration::from_secs(20), "the agent's login", || {
            sink.exists()
        });
        let mut statuses = Vec::new();
        for (method, path, body) in [
            ("GET", "/v1/sys/health", ""),
            ("GET", "/v1/auth/token/lookup-self", ""),
            ("GET", "/v1/sys/policy/no-such-policy", ""),
            ("POST", "/v1/auth/token/lookup", "{"),
        ] {
            statuses.push(request_with(address, method, path, &[], body).status);
        }
        assert_eq!(statuses, [200, 200, 403, 400], "the requests' answers");
        let scraped = request_with(
            address,
            "GET",
            "/agent/v1/metrics?format=prometheus",
            &[],
            "",
        );
        scraped
            .body
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once(' '))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    };
    let starting = |series: &std::collections::BTreeMap<String, String>, prefix: &str| {
        series
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<String, String>>()
    };
    for (case, setting, prefix) in [
        ("default", "", "bao_agent_"),
        (
            "prefixed",
            r#"metrics_prefix = "team.a-b""#,
            "team_a_b_agent_",
        ),
    ] {
        let port = util::free_port();
        let name = format!("bao-{case}.hcl");
        let reference = bao::ReferenceAgent::start(&config_for(&name, port, setting), bed.addr());
        let theirs = starting(&drive(port, &name), prefix);
        drop(reference);
        assert_eq!(
            theirs
                .get(&format!("{prefix}proxy_success"))
                .map(String::as_str),
            Some("2"),
            "the reference counts what this test expects: {theirs:?}"
        );

        let port = util::free_port();
        let name = format!("ours-{case}.hcl");
        let agent = Launch::agent(
            &[&config_for(&name, port, setting)],
            bed.addr(),
            &dir.path().join(format!("agent-{case}.log")),
        )
        .spawn();
        let all = drive(port, &name);
        let ours = starting(&all, prefix);
        let log = agent.log();
        let shown: std::collections::BTreeMap<String, String> = ours
            .iter()
            .filter(|(name, value)| value.as_str() != "0" || theirs.contains_key(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        assert_eq!(shown, theirs, "{case}: ours {ours:?}\n{log}");
        for name in ["auth_failure", "proxy_error", "cache_hit"] {
            assert_eq!(
                ours.get(&format!("{prefix}{name}")).map(String::as_str),
                Some("0"),
                "{case}: {name} from the start: {ours:?}"
            );
        }
        let vault = starting(&all, "vault_agent_");
        if case == "default" {
            let renamed: std::collections::BTreeMap<String, String> = ours
                .into_iter()
                .map(|(name, value)| (name.replacen("bao_", "vault_", 1), value))
                .collect();
            assert_eq!(vault, renamed, "Vault Agent's names count the same");
        } else {
            assert!(
                vault.is_empty() && starting(&all, "bao_agent_").is_empty(),
                "a metrics_prefix replaces both defaults: {all:?}"
            );
        }
    }
}

/// A listener request that cannot reach Vault: the same answer as OpenBao Agent's (500, Vault's
/// error shape, "failed to get the response") and the same count, `proxy_error`.
#[test]
fn a_listener_request_vault_cannot_answer_is_counted_as_openbao_agent_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "token-in", "s.unused");
    let dead = format!("http://127.0.0.1:{}", util::free_port());
    let config_for = |name: &str, port: u16| {
        let rest = "telemetry {\n  prometheus_retention_time = \"30s\"\n}\n";
        token_file_listener(&dead, dir.path(), name, port, "", rest)
    };
    let probe = |port: u16| {
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        util::wait_for_port(address, Duration::from_secs(20));
        let reply = request_with(address, "GET", "/v1/sys/health", &[], "");
        let scraped = request_with(
            address,
            "GET",
            "/agent/v1/metrics?format=prometheus",
            &[],
            "",
        );
        let proxy_series: Vec<String> = scraped
            .body
            .lines()
            .filter(|line| line.starts_with("bao_agent_proxy_") && !line.ends_with(" 0"))
            .map(str::to_string)
            .collect();
        (reply, proxy_series)
    };
    let port = util::free_port();
    // Its client waits out its timeout (60 s by default) before it answers.
    let reference = bao::ReferenceAgent::start_with(
        &config_for("bao.hcl", port),
        &dead,
        &[("BAO_CLIENT_TIMEOUT", "2s")],
    );
    let (their_reply, theirs) = probe(port);
    drop(reference);
    assert_eq!(theirs, ["bao_agent_proxy_error 1"], "the reference");

    let port = util::free_port();
    let agent = Launch::agent(
        &[&config_for("ours.hcl", port)],
        &dead,
        &dir.path().join("agent.log"),
    )
    .spawn();
    let (our_reply, ours) = probe(port);
    let log = agent.log();
    assert_eq!(ours, theirs, "{log}");
    assert_eq!(our_reply.status, their_reply.status, "{}", our_reply.body);
    let message = |body: &str| -> String {
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        parsed["errors"][0].as_str().unwrap().to_string()
    };
    for reply in [&our_reply, &their_reply] {
        assert!(
            message(&reply.body).starts_with("failed to get the response: "),
            "{}",
            reply.body
        );
    }
}

#[test]
fn the_seed_config_keeps_a_short_ttl_token_alive_beyond_its_ttl() {
    let bed = bao::bed();
    bed.create_kubernetes_role("seed-short", "3s", "1h");
    let dir = tempfile::tempdir().unwrap();
    let jwt = util::write_file(
        dir.path(),
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    // The seed's file with only the role, the token path and the file locations moved.
    let seed = std::fs::read_to_string(util::repo().join("etc/agent.hcl")).unwrap();
    let local = dir.path().display().to_string();
    let config = seed
        .replace("/home/vault/", &format!("{local}/"))
        .replace("/etc/nginx/ssl/", &format!("{local}/"))
        .replace(
            "role = \"authkube\"",
            &format!(
                "role = \"seed-short\"\n                token_path = \"{}\"",
                jwt.display()
            ),
        );
    assert_ne!(config, seed);
    let config = util::write_file(dir.path(), "agent.hcl", &config);
    let agent = Launch::agent(&[&config], bed.addr(), &dir.path().join("agent.log")).spawn();
    let sink = dir.path().join(".vault-token");
    let start = Instant::now();
    while !sink.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no token sink");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let token = std::fs::read_to_string(&sink).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pidfile")).unwrap(),
        agent.pid().to_string()
    );
    // Past twice the 3 s TTL, with the renewals (about 2 s apart) that kept it alive.
    util::wait_until(Duration::from_secs(60), "7 s and three renewals", || {
        start.elapsed() >= Duration::from_secs(7)
            && agent.metric("pki_sidecar_agent_token_renewals_total{result=\"success\"}") >= 3.0
    });
    assert_eq!(
        std::fs::read_to_string(&sink).unwrap(),
        token,
        "the same token, renewed"
    );
    let ttl = bed
        .token_ttl(&token)
        .expect("the token is alive after more than twice its TTL");
    assert!(ttl <= 3, "{ttl}");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// `bao server -dev -dev-tls`: a real OpenBao behind TLS with a CA of its own, and nothing
/// configured but its root token (`root`). Killed when dropped, or when the test binary dies.
struct TlsVault {
    address: String,
    certificates: tempfile::TempDir,
    _server: bao::DevServer,
}

impl TlsVault {
    fn start() -> TlsVault {
        let certificates = tempfile::tempdir().expect("tempdir");
        let port = util::free_port();
        let server = bao::DevServer::spawn(
            port,
            &[
                "-dev-tls".to_string(),
                format!("-dev-tls-cert-dir={}", certificates.path().display()),
            ],
        );
        let ca = certificates.path().join("vault-ca.pem");
        let start = Instant::now();
        while !ca.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            // Dropping `server` on panic stops bao.
            assert!(
                start.elapsed() <= Duration::from_secs(20),
                "bao -dev-tls did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsVault {
            address: format!("https://127.0.0.1:{port}"),
            certificates,
            _server: server,
        }
    }

    fn ca(&self) -> PathBuf {
        self.certificates.path().join("vault-ca.pem")
    }
}

/// Runs a token_file agent (the dev root token) against `vault` with `env`; returns its exit
/// code, stderr and the sink's contents. exit_after_auth makes a success end the run.
fn run_tls_agent(vault: &TlsVault, env: &[(&str, &str)]) -> (Option<i32>, String, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "root-token", "root\n");
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            r#"exit_after_auth = true
auto_auth {{
  method "token_file" {{
    exit_on_err = true
    config = {{
      token_file_path = "{dir}/root-token"
    }}
  }}
  sink "file" {{
    config = {{
      path = "{dir}/token"
    }}
  }}
}}
telemetry {{
  metrics_listen = "127.0.0.1:0"
}}
vault {{
  retry {{
    num_retries = -1
  }}
}}
"#,
            dir = dir.path().display()
        ),
    );
    let mut command = util::command();
    command
        .args(["agent", "--config", config.to_str().unwrap()])
        .env("VAULT_ADDR", &vault.address);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run the agent");
    let sink = std::fs::read_to_string(dir.path().join("token")).ok();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        sink,
    )
}

/// `bao` against `vault` as root, with its CA; the command's stdout.
fn bao_root(vault: &TlsVault, args: &[&str]) -> String {
    let output = std::process::Command::new(bao::bao_binary())
        .args(args)
        .env("BAO_ADDR", &vault.address)
        .env("BAO_CACERT", vault.ca())
        .env("BAO_TOKEN", "root")
        .output()
        .expect("run bao");
    assert!(
        output.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A forward proxy speaking `CONNECT` (what `HTTPS_PROXY` names): each tunnel's target is
/// recorded, then bytes are copied both ways. Runs until the test ends.
fn connect_proxy() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = targets.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let target = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["CONNECT", target, _] => target.to_string(),
                    _ => return,
                };
                // The rest of the request head.
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                seen.lock().unwrap().push(target.clone());
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    return;
                };
                let mut client = client;
                client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let mut upstream = upstream;
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut upstream);
                    let _ = upstream.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    (port, targets)
}

/// `HTTPS_PROXY` (what vault-k8s's `proxy-address` sets): the agent reaches an https Vault
/// through the proxy's `CONNECT` tunnel, with TLS to Vault inside it, as Vault Agent does; and
/// `NO_PROXY` naming Vault's host bypasses it.
#[test]
fn the_agent_reaches_vault_through_an_https_proxy() {
    let vault = TlsVault::start();
    let (port, targets) = connect_proxy();
    let proxy = format!("http://127.0.0.1:{port}");
    let ca = vault.ca();
    let ca = ca.to_str().unwrap();
    let (code, stderr, sink) = run_tls_agent(
        &vault,
        &[
            ("VAULT_CACERT", ca),
            ("HTTPS_PROXY", &proxy),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(sink.as_deref(), Some("root"));
    let vault_host = vault.address.trim_start_matches("https://").to_string();
    let through = targets.lock().unwrap().clone();
    assert!(
        !through.is_empty() && through.iter().all(|t| *t == vault_host),
        "tunnels: {through:?}"
    );
    targets.lock().unwrap().clear();
    let (code, stderr, _) = run_tls_agent(
        &vault,
        &[
            ("VAULT_CACERT", ca),
            ("HTTPS_PROXY", &proxy),
            ("NO_PROXY", "127.0.0.1"),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(targets.lock().unwrap().is_empty(), "NO_PROXY bypasses it");
}

/// `disable_idle_connections` (and its environment variable, as the Vault Agent Injector's
/// annotation sets it): the templates' requests each open a connection of their own, where by
/// default one connection carries them all. Counted as tunnels through a CONNECT proxy: a KV
/// secret re-read every second for four seconds.
#[test]
fn disable_idle_connections_gives_each_template_request_its_own_connection() {
    let vault = TlsVault::start();
    bao_root(
        &vault,
        &["kv", "put", "-mount=secret", "app", "password=s3cret"],
    );
    let (port, targets) = connect_proxy();
    let proxy = format!("http://127.0.0.1:{port}");
    let ca = vault.ca();
    let run = |extra_env: &[(&str, &str)]| -> usize {
        targets.lock().unwrap().clear();
        let dir = tempfile::tempdir().unwrap();
        util::write_file(dir.path(), "root-token", "root\n");
        let config = util::write_file(
            dir.path(),
            "agent.hcl",
            &format!(
                r#"auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = "{dir}/root-token"
    }}
  }}
}}
template_config {{
  static_secret_render_interval = "1s"
}}
template {{
  contents    = "{{{{ with secret \"secret/data/app\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
  destination = "{dir}/out.txt"
}}
"#,
                dir = dir.path().display()
            ),
        );
        let mut launch = Launch::agent(&[&config], &vault.address, &dir.path().join("agent.log"))
            .env("VAULT_CACERT", ca.to_str().unwrap())
            .env("HTTPS_PROXY", &proxy)
            .env("NO_PROXY", "")
            .env("no_proxy", "");
        for (name, value) in extra_env {
            launch = launch.env(name, value);
        }
        let agent = launch.spawn();
        util::wait_until(Duration::from_secs(20), "the first render", || {
            std::fs::read_to_string(dir.path().join("out.txt")).is_ok_and(|t| t == "s3cret")
        });
        std::thread::sleep(Duration::from_secs(4));
        let (code, log) = agent.stop();
        assert_eq!(code, Some(0), "{log}");
        targets.lock().unwrap().len()
    };
    let reused = run(&[]);
    let fresh = run(&[("VAULT_AGENT_DISABLE_IDLE_CONNECTIONS", "templating")]);
    eprintln!("connections: {reused} reused, {fresh} with disable_idle_connections");
    assert!(reused <= 2, "one connection carries the requests: {reused}");
    assert!(fresh >= reused + 3, "a connection per request: {fresh}");
}

/// The `cert` method: the agent logs in with a client certificate of its method's config
/// (read at each login) against a certificate role, over Vault's TLS verified with the
/// method's CA, and its token is that role's.
#[test]
fn the_cert_method_logs_in_with_its_client_certificate() {
    let vault = TlsVault::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| openssl_in(d, args);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=clients",
                "-days",
                "1",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/CN=web",
            ],
        ]
        .concat(),
    );
    util::write_file(d, "client.ext", "extendedKeyUsage = clientAuth\n");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "1",
        "-extfile",
        "client.ext",
    ]);
    bao_root(&vault, &["auth", "enable", "cert"]);
    bao_root(
        &vault,
        &[
            "write",
            "auth/cert/certs/web",
            &format!("certificate=@{}", d.join("ca.pem").display()),
            "token_policies=default",
            "token_ttl=1h",
        ],
    );
    let config = util::write_file(
        d,
        "agent.hcl",
        &format!(
            r#"exit_after_auth = true
vault {{
  address = "{address}"
}}
auto_auth {{
  method "cert" {{
    config = {{
      name        = "web"
      ca_cert     = "{ca}"
      client_cert = "{d}/client.pem"
      client_key  = "{d}/client.key"
      reload      = true
    }}
  }}
  sink "file" {{
    config = {{
      path = "{d}/token"
    }}
  }}
}}
telemetry {{
  metrics_listen = "127.0.0.1:0"
}}
"#,
            address = vault.address,
            ca = vault.ca().display(),
            d = d.display(),
        ),
    );
    let output = util::command()
        .args(["agent", "--config", config.to_str().unwrap()])
        .output()
        .expect("run the agent");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let token = std::fs::read_to_string(d.join("token")).expect("the sink");
    let lookup: Value = serde_json::from_str(&bao_root(
        &vault,
        &["token", "lookup", "-format=json", &token],
    ))
    .unwrap();
    assert_eq!(lookup["data"]["meta"]["cert_name"], "web", "{lookup}");
    assert_eq!(lookup["data"]["path"], "auth/cert/login", "{lookup}");
    assert!(!stderr.contains(&token), "the token never reaches the log");

    // A certificate no role trusts is refused, and the agent says so.
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "other.key",
                "-out",
                "other.pem",
                "-subj",
                "/CN=other",
                "-days",
                "1",
            ],
        ]
        .concat(),
    );
    let other = std::fs::read_to_string(&config)
        .unwrap()
        .replace("client.pem", "other.pem")
        .replace("client.key", "other.key")
        .replace("/token\"", "/token2\"")
        // Renewals and doctor's health check use vault {}'s TLS; the method's is the login's.
        .replace(
            "vault {\n",
            &format!("vault {{\n  ca_cert = \"{}\"\n", vault.ca().display()),
        )
        .replace(
            "method \"cert\" {",
            "method \"cert\" {\n    exit_on_err = true",
        );
    let other = util::write_file(d, "other.hcl", &other);
    let output = util::command()
        .args(["agent", "--config", other.to_str().unwrap()])
        .output()
        .expect("run the agent");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("login to Vault failed"), "{stderr}");
    assert!(!d.join("token2").exists());
    // doctor says what a certificate role must trust.
    let output = util::command()
        .args(["doctor", "--config", other.to_str().unwrap()])
        .output()
        .expect("run doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ login"), "{stdout}");
    assert!(stdout.contains("vault list auth/cert/certs"), "{stdout}");
}

#[test]
fn vault_over_tls_is_verified_with_the_configured_ca_and_name() {
    let vault = TlsVault::start();
    let ca = vault.ca().display().to_string();

    // VAULT_CACERT: the dev server's own CA verifies it.
    let (code, stderr, sink) = run_tls_agent(&vault, &[("VAULT_CACERT", &ca)]);
    assert_eq!((code, sink.as_deref()), (Some(0), Some("root")), "{stderr}");

    // VAULT_CAPATH: a directory of CA files; BAO_* wins over VAULT_*.
    let cas = tempfile::tempdir().unwrap();
    std::fs::copy(vault.ca(), cas.path().join("vault-ca.pem")).unwrap();
    let (code, stderr, _) = run_tls_agent(
        &vault,
        &[
            ("BAO_CAPATH", cas.path().to_str().unwrap()),
            ("VAULT_CAPATH", "/nonexistent"),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");

    // VAULT_TLS_SERVER_NAME: verified as `localhost`, one of the certificate's names.
    let (code, stderr, _) = run_tls_agent(
        &vault,
        &[
            ("VAULT_CACERT", &ca),
            ("VAULT_TLS_SERVER_NAME", "localhost"),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr, _) = run_tls_agent(
        &vault,
        &[
            ("VAULT_CACERT", &ca),
            ("VAULT_TLS_SERVER_NAME", "vault.example"),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!(
            "cannot verify the TLS certificate of Vault at {} with the CA file {ca}: invalid peer \
             certificate: certificate not valid for name \"vault.example\"",
            vault.address
        )),
        "{stderr}"
    );

    // The wrong CA: the error names the address and the file.
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), bao::bed().root_ca_pem()).unwrap();
    let other = other_ca.path().display().to_string();
    let (code, stderr, sink) = run_tls_agent(&vault, &[("VAULT_CACERT", &other)]);
    assert_eq!((code, sink), (Some(1), None));
    assert!(
        stderr.contains(&format!(
            "cannot verify the TLS certificate of Vault at {} with the CA file {other}: invalid \
             peer certificate: UnknownIssuer",
            vault.address
        )),
        "{stderr}"
    );

    // VAULT_SKIP_VERIFY: works, and says loudly what it gives up.
    let (code, stderr, _) = run_tls_agent(&vault, &[("VAULT_SKIP_VERIFY", "true")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("TLS VERIFICATION OF VAULT IS DISABLED"),
        "{stderr}"
    );
}

/// Runs `openssl` with `args` in `dir`, failing the test if it fails.
fn openssl_in(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn mutual_tls_to_vault_presents_the_configured_client_certificate() {
    // A CA, a server certificate for 127.0.0.1 and a client certificate, all from openssl.
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl_in(
        p,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=Test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    std::fs::write(p.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(p.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=agent")] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        openssl_in(
            p,
            &[
                &["req"][..],
                &ec,
                &["-subj", subject, "-keyout", &key, "-out", &csr],
            ]
            .concat(),
        );
        openssl_in(
            p,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
    // OpenBao with a second listener that requires a client certificate from that CA.
    let (dev_port, mtls_port) = (util::free_port(), util::free_port());
    let listener = util::write_file(
        p,
        "listener.hcl",
        &format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{mtls_port}\"\n  tls_cert_file = \"{d}/server.pem\"\n  tls_key_file = \"{d}/server.key\"\n  tls_client_ca_file = \"{d}/ca.pem\"\n  tls_require_and_verify_client_cert = true\n}}\n",
            d = p.display()
        ),
    );
    let server = bao::DevServer::spawn(dev_port, &[format!("-config={}", listener.display())]);
    let vault = TlsVault {
        address: format!("https://127.0.0.1:{mtls_port}"),
        certificates: tempfile::tempdir().unwrap(),
        _server: server,
    };
    let address: SocketAddr = format!("127.0.0.1:{mtls_port}").parse().unwrap();
    util::wait_for_port(address, Duration::from_secs(20));
    let ca = p.join("ca.pem").display().to_string();
    let (cert, key) = (
        p.join("client.pem").display().to_string(),
        p.join("client.key").display().to_string(),
    );

    let (code, stderr, sink) = run_tls_agent(
        &vault,
        &[
            ("VAULT_CACERT", &ca),
            ("VAULT_CLIENT_CERT", &cert),
            ("VAULT_CLIENT_KEY", &key),
        ],
    );
    assert_eq!((code, sink.as_deref()), (Some(0), Some("root")), "{stderr}");
    let (code, stderr, sink) = run_tls_agent(&vault, &[("VAULT_CACERT", &ca)]);
    assert_eq!(
        (code, sink),
        (Some(1), None),
        "no client certificate: refused"
    );
    assert!(
        stderr.contains(&format!("cannot reach Vault at {}", vault.address)),
        "{stderr}"
    );
}
