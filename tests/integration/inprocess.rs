//! The agent in-process, on tokio's paused time: its renewal schedule and its backoff, driven
//! through the `Backend` seam by the development CA on a clock that follows tokio's, with no
//! sleep and no port race (the metrics listener is bound on port 0 and handed in). What needs
//! OpenBao's real behaviour stays in `agent` and `templates`, on the real bed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pki_sidecar::agent::Agent;
use pki_sidecar::agent::backend::{Backend, BoxFuture};
use pki_sidecar::agent::functions::KnownFunctions;
use pki_sidecar::certs::{self, CertInfo};
use pki_sidecar::devca::DevCa;
use pki_sidecar::lifecycle::Lifecycle;
use pki_sidecar::schedule::Clock;
use pki_sidecar::telemetry::Telemetry;
use pki_sidecar::tls::pem;
use tokio::time::Instant;

/// The development CA, failing the first `failures` requests (as a Vault answering 500), and
/// recording when each request came, on tokio's clock.
struct Scripted {
    ca: DevCa,
    failures: Mutex<u32>,
    requests: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl Backend for Scripted {
    fn request<'a>(
        &'a self,
        operation: &'static str,
        method: http::Method,
        path: &'a str,
        body: Option<serde_json::Value>,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            if path.starts_with("sys/") {
                // A KV v2 mount lookup (a `secret` write asks first): not an issue, not counted.
                return self.ca.request(operation, method, path, body).await;
            }
            let fail = {
                let mut failures = self.failures.lock().unwrap();
                let fail = *failures > 0;
                *failures = failures.saturating_sub(1);
                fail
            };
            self.requests.lock().unwrap().push((Instant::now(), !fail));
            if fail {
                anyhow::bail!("scripted failure (as a Vault answering 500)");
            }
            self.ca.request(operation, method, path, body).await
        })
    }

    fn describe(&self) -> String {
        "a scripted development CA".to_string()
    }
}

/// The seed's template shape, for a certificate living `ttl`, written into `dir`.
fn templates(dir: &std::path::Path, ttl: Duration) -> pki_sidecar::config::Templates {
    let text = format!(
        r#"
template {{
  destination = "{dir}/tls.crt"
  contents = <<EOT
{{{{- with pkiCert "pki/issue/web" "common_name=localhost" "ttl={ttl}s" -}}}}
{{{{ .Data.Cert }}}}
{{{{ .Data.Key | writeToFile "{dir}/tls.key" "" "" "0600" }}}}
{{{{- end }}}}
EOT
}}
"#,
        dir = dir.display(),
        ttl = ttl.as_secs()
    );
    pki_sidecar::config::load_str("inprocess.hcl", &text, &KnownFunctions)
        .unwrap_or_else(|errors| panic!("{errors}"))
        .templates()
}

/// The pair in `dir`, if it matches and is valid at `now`.
fn valid_pair(dir: &std::path::Path, now: SystemTime) -> Result<CertInfo, String> {
    let crt = std::fs::read(dir.join("tls.crt")).map_err(|e| e.to_string())?;
    let key = std::fs::read(dir.join("tls.key")).map_err(|e| e.to_string())?;
    let leaf = pem::certificates(&crt)?
        .into_iter()
        .next()
        .ok_or("no certificate")?;
    let (key, _) = pem::first_private_key(&key)?;
    certs::key_matches(&leaf, key).map_err(|e| e.to_string())?;
    let info = CertInfo::parse(&leaf)?;
    if info.not_before <= now && now < info.not_after {
        Ok(info)
    } else {
        Err(format!("not valid at {now:?}: {info:?}"))
    }
}

/// Runs an agent on `backend` for `span` of tokio's (paused) time, checking every `step`
/// that the files hold a matching pair valid now; returns the requests seen.
async fn run_for(
    ttl: Duration,
    failures: u32,
    span: Duration,
    step: Duration,
) -> Vec<(Instant, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let templates = templates(dir.path(), ttl);
    run_templates_for(dir.path(), templates, ttl, failures, span, step).await
}

/// [`run_for`] with the templates given, writing `tls.crt` and `tls.key` into `dir`.
async fn run_templates_for(
    dir: &std::path::Path,
    templates: pki_sidecar::config::Templates,
    ttl: Duration,
    failures: u32,
    span: Duration,
    step: Duration,
) -> Vec<(Instant, bool)> {
    let clock = Clock::following_tokio(SystemTime::now());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let backend = Scripted {
        ca: DevCa::generate(ttl, ttl).unwrap().with_clock(clock),
        failures: Mutex::new(failures),
        requests: requests.clone(),
    };
    let telemetry = Telemetry::new().unwrap();
    let agent = Agent::with_backend(&templates, Box::new(backend), telemetry, clock).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lifecycle = Lifecycle::new();
    let running = tokio::spawn(agent.serve(listener, lifecycle.clone()));
    let started = Instant::now();
    let mut first_valid = None;
    while started.elapsed() < span {
        tokio::time::sleep(step).await;
        match valid_pair(dir, clock.now()) {
            Ok(_) => {
                first_valid.get_or_insert(started.elapsed());
            }
            // Before the first pair, nothing is expected yet; after it, a gap is a failure.
            Err(why) => assert!(
                first_valid.is_none(),
                "at {:?}, after a first pair at {first_valid:?}: {why}",
                started.elapsed()
            ),
        }
    }
    lifecycle.shutdown.cancel();
    running.await.unwrap().unwrap();
    assert!(first_valid.is_some(), "never a valid pair");
    requests.lock().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn six_hours_of_one_minute_certificates_renew_at_two_thirds_with_no_gap() {
    let ttl = Duration::from_secs(60);
    let span = Duration::from_secs(6 * 3600);
    let requests = run_for(ttl, 0, span, Duration::from_secs(1)).await;
    assert!(requests.iter().all(|(_, ok)| *ok));
    // One issue at start, then one per renewal: at 2/3 of the life ± 5 % jitter, so between
    // 37 s and 43 s apart (asserted with room: 30 s to 50 s); never two at once.
    let gaps: Vec<f64> = requests
        .windows(2)
        .map(|pair| (pair[1].0 - pair[0].0).as_secs_f64())
        .collect();
    for gap in &gaps {
        assert!((29.0..=51.0).contains(gap), "renewal gap {gap} s: {gaps:?}");
    }
    let expected = span.as_secs_f64() / 40.0;
    let issued = requests.len() as f64;
    assert!(
        (expected * 0.85..=expected * 1.15).contains(&issued),
        "{issued} issues in 6 h, expected about {expected}"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_then_the_first_success_writes_the_pair() {
    let requests = run_for(
        Duration::from_secs(3600),
        6,
        Duration::from_secs(600),
        Duration::from_secs(1),
    )
    .await;
    let failed: Vec<Instant> = requests
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(failed.len(), 6, "{requests:?}");
    assert!(requests[6].1, "the seventh request succeeds");
    // The retries wait between min_backoff (1 s) and a ceiling doubling from it: 1, 2, 4, 8,
    // 16, 32 s (full jitter). Time is paused, so the gaps are the waits themselves.
    let gaps: Vec<f64> = requests
        .windows(2)
        .take(6)
        .map(|pair| (pair[1].0 - pair[0].0).as_secs_f64())
        .collect();
    for (n, gap) in gaps.iter().enumerate() {
        let ceiling = 2f64.powi(n as i32);
        assert!(
            *gap >= 1.0 - 1e-3 && *gap <= ceiling + 1e-3,
            "wait {n}: {gap} s, not within 1..{ceiling} s: {gaps:?}"
        );
    }
    assert!(
        (gaps[0] - 1.0).abs() < 1e-3,
        "the first ceiling is min_backoff"
    );
    // An hour-long certificate is not renewed within the ten minutes after it arrived.
    assert_eq!(requests.len(), 7, "{requests:?}");
}

/// The production agent ([`Agent::build`]: kubernetes login, Vault backend) in this process
/// against the real OpenBao bed, on a metrics listener bound here on port 0: the seed's file,
/// its files moved into a temporary directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_agent_runs_in_process_against_openbao() {
    let bed = crate::util::bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let jwt = crate::util::write_file(
        dir.path(),
        "sa-token",
        &crate::util::bao::service_account_jwt(
            crate::util::bao::NAMESPACE,
            crate::util::bao::SERVICE_ACCOUNT,
        ),
    );
    let local = dir.path().display().to_string();
    let seed = std::fs::read_to_string(crate::util::repo().join("etc/agent.hcl")).unwrap();
    let text = seed
        .replace("/home/vault/", &format!("{local}/"))
        .replace("/etc/nginx/ssl/", &format!("{local}/"))
        .replace(
            "role = \"authkube\"",
            &format!("role = \"authkube\"\n token_path = \"{}\"", jwt.display()),
        );
    let path = crate::util::write_file(dir.path(), "agent.hcl", &text);
    let address = bed.addr().to_string();
    let env = move |name: &str| (name == "VAULT_ADDR").then(|| address.clone());
    let config = pki_sidecar::config::load_with_env(&[path], &env, &KnownFunctions)
        .unwrap_or_else(|errors| panic!("{errors}"))
        .agent()
        .unwrap_or_else(|errors| panic!("{errors}"));

    let telemetry = Telemetry::new().unwrap();
    let agent = Agent::build(&config, telemetry).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = listener.local_addr().unwrap();
    let lifecycle = Lifecycle::new();
    let running = tokio::spawn(agent.serve(listener, lifecycle.clone()));

    // Ready once logged in and the pair is written; the pid file names this process.
    let ready = tokio::task::spawn_blocking(move || {
        crate::util::wait_until(Duration::from_secs(30), "the agent ready", || {
            crate::util::http(metrics, "GET", "/readyz").status == 200
        })
    });
    ready.await.unwrap();
    let info = valid_pair(dir.path(), SystemTime::now()).expect("a valid pair");
    assert_eq!(info.subject_cn, "foo.home");
    assert!(dir.path().join(".vault-token").exists(), "the token sink");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pidfile")).unwrap(),
        std::process::id().to_string()
    );
    lifecycle.shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// The Vault Agent Injector's layout: the certificate and the key rendered by two templates
/// from one `secret` write. One issue feeds both, per renewal, for hours, and the pair always
/// matches.
#[tokio::test(start_paused = true)]
async fn a_pair_split_across_two_templates_renews_with_one_issue_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
template {{
  destination = "{dir}/tls.crt"
  contents = "{{{{ with secret \"pki/issue/web\" \"common_name=localhost\" \"ttl=60s\" }}}}{{{{ .Data.certificate }}}}{{{{ end }}}}"
}}
template {{
  destination = "{dir}/tls.key"
  contents = "{{{{ with secret \"pki/issue/web\" \"ttl=60s\" \"common_name=localhost\" }}}}{{{{ .Data.private_key }}}}{{{{ end }}}}"
}}
"#,
        dir = dir.path().display()
    );
    let templates = pki_sidecar::config::load_str("split.hcl", &text, &KnownFunctions)
        .unwrap_or_else(|errors| panic!("{errors}"))
        .templates();
    let span = Duration::from_secs(3600);
    let requests = run_templates_for(
        dir.path(),
        templates,
        Duration::from_secs(60),
        0,
        span,
        Duration::from_secs(1),
    )
    .await;
    let gaps: Vec<f64> = requests
        .windows(2)
        .map(|pair| (pair[1].0 - pair[0].0).as_secs_f64())
        .collect();
    for gap in &gaps {
        assert!(
            (35.0..=45.0).contains(gap),
            "one issue per renewal: gap {gap} s: {gaps:?}"
        );
    }
    assert!(requests.len() >= 80, "{} issues in an hour", requests.len());
}

/// Templates that share an answer are written together or not at all: when the key's template
/// fails, the certificate's is not written either (it would not match the key on disk), and
/// retrying uses the same answer rather than issuing again.
#[tokio::test(start_paused = true)]
async fn when_one_of_two_templates_sharing_an_answer_fails_neither_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
template {{
  destination = "{dir}/tls.crt"
  contents = "{{{{ with secret \"pki/issue/web\" \"common_name=localhost\" \"ttl=3600s\" }}}}{{{{ .Data.certificate }}}}{{{{ end }}}}"
}}
template {{
  destination = "{dir}/tls.key"
  contents = "{{{{ with secret \"pki/issue/web\" \"common_name=localhost\" \"ttl=3600s\" }}}}{{{{ .Data.private_key }}}}{{{{ index .Data.nothing \"x\" }}}}{{{{ end }}}}"
}}
"#,
        dir = dir.path().display()
    );
    let templates = pki_sidecar::config::load_str("failing.hcl", &text, &KnownFunctions)
        .unwrap_or_else(|errors| panic!("{errors}"))
        .templates();
    let clock = Clock::following_tokio(SystemTime::now());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let ttl = Duration::from_secs(3600);
    let backend = Scripted {
        ca: DevCa::generate(ttl, ttl).unwrap().with_clock(clock),
        failures: Mutex::new(0),
        requests: requests.clone(),
    };
    let agent = Agent::with_backend(
        &templates,
        Box::new(backend),
        Telemetry::new().unwrap(),
        clock,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lifecycle = Lifecycle::new();
    let running = tokio::spawn(agent.serve(listener, lifecycle.clone()));
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(
        !dir.path().join("tls.crt").exists() && !dir.path().join("tls.key").exists(),
        "nothing written while the key's template fails"
    );
    assert_eq!(
        requests.lock().unwrap().len(),
        1,
        "the retries reuse the one answer"
    );
    lifecycle.shutdown.cancel();
    running.await.unwrap().unwrap();
}
