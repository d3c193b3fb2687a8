//! A real Prometheus (Debian's `/usr/bin/prometheus`) scraping the agent, the proxy, the app
//! and the admission webhook every second, labelled as the PodMonitors label them, with the
//! PrometheusRule's rules loaded; a real OpenBao behind the agent, whose certificate the proxy
//! and the webhook both serve. The scenario: renewals (12 s certificates), a bad certificate
//! file (a reload failure), an OpenBao outage (stopped, then restarted), an expired served
//! certificate (the agent stopped with SIGSTOP until it expires, then continued), and reviews
//! the webhook injects nothing into, refuses, or finds invalid. Then every panel query of the
//! dashboard must have returned a series over the scenario's window, and every alert
//! expression must evaluate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::util::role::{Launch, RoleProcess};
use crate::util::{self, ChildGuard, bao};

/// The labels the PodMonitor gives each role's series (the operator's `job` is
/// `namespace/podmonitor`).
const NAMESPACE: &str = "poc-sidecar-tls-pki";
const POD: &str = "poc-sidecar-tls-pki-deploy-0";
const JOB: &str = "poc-sidecar-tls-pki/poc-sidecar-tls-pki";
/// The same for the admission webhook (deploy/monitoring/webhook).
const WEBHOOK_NAMESPACE: &str = "pki-sidecar-injector";
const WEBHOOK_POD: &str = "pki-sidecar-injector-0";
const WEBHOOK_JOB: &str = "pki-sidecar-injector/pki-sidecar-injector";

/// Panel queries allowed to return nothing in this scenario, and why. None: the scenario runs
/// every role, the webhook included.
const ALLOWED_EMPTY: &[(&str, &str)] = &[];

/// `/usr/bin/prometheus`, or the one on PATH.
fn prometheus_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.exists() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.exists())
    })
}

/// A Prometheus server of the test's own; killed when dropped.
struct Prometheus {
    address: SocketAddr,
    _child: ChildGuard,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on `config` with its data in `dir`, and waits until it is ready.
    fn start(binary: &Path, dir: &Path, config: &Path) -> Prometheus {
        let address: SocketAddr = format!("127.0.0.1:{}", util::free_port()).parse().unwrap();
        let log = dir.join("prometheus.log");
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = ChildGuard(Some(command.spawn().expect("start prometheus")));
        let prometheus = Prometheus {
            address,
            _child: child,
            log,
        };
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
                && util::http(address, "GET", "/-/ready").status == 200
            {
                return prometheus;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30 s:\n{}",
                std::fs::read_to_string(&prometheus.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /api/v1/{endpoint}` with `params` URL-encoded (by curl, which also reads chunked
    /// answers); the answer's `data`, or the error Prometheus gave.
    fn api(&self, endpoint: &str, params: &[(&str, String)]) -> Result<Value, String> {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--max-time", "20", "-G"])
            .arg(format!("http://{}/api/v1/{endpoint}", self.address));
        for (name, value) in params {
            command
                .arg("--data-urlencode")
                .arg(format!("{name}={value}"));
        }
        let output = command.output().expect("run curl");
        let body: Value = serde_json::from_slice(&output.stdout).map_err(|err| {
            format!(
                "{endpoint}: not JSON ({err}): {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        if body["status"] != "success" {
            return Err(format!("{endpoint} {params:?}: {body}"));
        }
        Ok(body["data"].clone())
    }

    /// An instant query's result vector.
    fn query(&self, expr: &str) -> Vec<Value> {
        self.query_with(expr, &[])
    }

    /// An instant query's result vector, evaluated at `time` (seconds since the epoch) rather
    /// than now.
    fn query_at(&self, expr: &str, time: f64) -> Vec<Value> {
        self.query_with(expr, &[("time", format!("{time:.3}"))])
    }

    fn query_with(&self, expr: &str, extra: &[(&str, String)]) -> Vec<Value> {
        let mut params = vec![("query", expr.to_string())];
        params.extend(extra.iter().cloned());
        self.api("query", &params)
            .unwrap_or_else(|err| panic!("{err}"))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A range query's result matrix over `[start, end]`, one point a second.
    fn query_range(&self, expr: &str, start: f64, end: f64) -> Result<Vec<Value>, String> {
        let data = self.api(
            "query_range",
            &[
                ("query", expr.to_string()),
                ("start", format!("{start:.3}")),
                ("end", format!("{end:.3}")),
                ("step", "1".to_string()),
            ],
        )?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until the instant query `expr` returns at least `count` series.
    fn wait_for(&self, expr: &str, count: usize, limit: Duration) {
        util::wait_until(limit, &format!("prometheus: {expr}"), || {
            self.query(expr).len() >= count
        });
    }
}

/// Unix seconds now.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The sum of every sample of `family` (any labels) in a scrape.
fn family_sum(scrape: &str, family: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The value of the first sample of `family` whose labels contain every `labels` pair.
fn sample(scrape: &str, family: &str, labels: &[&str]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(family)?.strip_prefix('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        labels
            .iter()
            .all(|pair| set.split(',').any(|l| l == *pair))
            .then(|| value.parse().ok())?
    })
}

/// Role `home` of `pki_intermediate` as the bed makes it, but backdating NotBefore by 1 s
/// instead of Vault's 30 s, so that a 12 s certificate lives 13 s and is renewed about 8 s
/// after it is issued (at 2/3 of its lifetime) rather than at once.
fn shorten_backdating(bed: &bao::Bed) {
    bed.root_request(
        "POST",
        "pki_intermediate/roles/home",
        json!({
            "allowed_domains": "home,localhost",
            "allow_subdomains": true,
            "allow_bare_domains": true,
            "max_ttl": "72h",
            "not_before_duration": "1s",
        }),
    );
}

/// The seed's agent file, every file it writes in `files`, a 12 s certificate, one retry per
/// Vault call (so an outage shows at once).
fn agent_config(dir: &Path, files: &Path) -> PathBuf {
    let jwt = util::write_file(
        dir,
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    let seed = std::fs::read_to_string(util::repo().join("etc/agent.hcl")).unwrap();
    let files = files.display().to_string();
    let config = seed
        .replace("/home/vault/", &format!("{files}/"))
        .replace("/etc/nginx/ssl/", &format!("{files}/"))
        .replace(
            "role = \"authkube\"",
            &format!(
                "role = \"authkube\"\n            token_path = \"{}\"",
                jwt.display()
            ),
        )
        .replace("\"ttl=24h\"", "\"ttl=12s\"");
    util::write_file(
        dir,
        "agent.hcl",
        &format!("{config}\nvault {{\n  retry {{\n    num_retries = 1\n  }}\n}}\n"),
    )
}

/// Requests through the proxy (curl, any certificate accepted) every 200 ms, and a plain-text
/// request to its TLS port every second (a failed handshake), until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// Also, every second, to the webhook at `webhook`: each review file in turn, and a `GET /`
    /// (an invalid request).
    fn start(address: SocketAddr, webhook: SocketAddr, reviews: Vec<PathBuf>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut round = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let _ = Command::new("curl")
                    .args(["-sk", "--max-time", "5", "-o", "/dev/null"])
                    .arg(format!("https://{address}/"))
                    .status();
                if round % 5 == 2 {
                    let review = &reviews[(round / 5) as usize % reviews.len()];
                    let _ = Command::new("curl")
                        .args(["-sk", "--max-time", "5", "-o", "/dev/null"])
                        .args(["-H", "Content-Type: application/json", "--data-binary"])
                        .arg(format!("@{}", review.display()))
                        .arg(format!("https://{webhook}/mutate"))
                        .status();
                    let _ = Command::new("curl")
                        .args(["-sk", "--max-time", "5", "-o", "/dev/null"])
                        .arg(format!("https://{webhook}/"))
                        .status();
                }
                if round.is_multiple_of(5)
                    && let Ok(mut stream) =
                        std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
                {
                    use std::io::{Read, Write};
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                    let _ = stream.read(&mut [0; 64]);
                }
                round += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One scrape target as the PodMonitors label it.
struct Target {
    job: &'static str,
    namespace: &'static str,
    pod: &'static str,
    container: &'static str,
    endpoint: &'static str,
    address: SocketAddr,
}

/// Prometheus's config: the roles as static targets with the PodMonitors' labels, the
/// PrometheusRule's rules, a scrape and an evaluation every second.
fn prometheus_config(dir: &Path, targets: &[Target]) -> PathBuf {
    util::write_file(dir, "rules.yaml", &super::rules_file());
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - rules.yaml\nscrape_configs:\n",
    );
    for job in [JOB, WEBHOOK_JOB] {
        config.push_str(&format!(
            "  - job_name: {job}\n    metrics_path: /metrics\n    static_configs:\n"
        ));
        for target in targets.iter().filter(|target| target.job == job) {
            config.push_str(&format!(
                "      - targets: ['{}']\n        labels:\n          namespace: {}\n          \
                 pod: {}\n          container: {}\n          endpoint: {}\n",
                target.address, target.namespace, target.pod, target.container, target.endpoint
            ));
        }
    }
    util::write_file(dir, "prometheus.yml", &config)
}

/// `pki-sidecar webhook` serving the agent's pair (its certificate names localhost), on ports
/// it binds itself; once ready. Returns the process, its review address and metrics address.
fn start_webhook(dir: &Path, files: &Path) -> (ChildGuard, SocketAddr, SocketAddr) {
    let log = dir.join("webhook.log");
    let mut command = util::command();
    command
        .args(["webhook", "--log-format", "json"])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--tls-cert-file")
        .arg(files.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(files.join("tls.key"))
        .args([
            "--image",
            "pki-sidecar:monitoring-test",
            "--reload-interval",
            "1s",
        ])
        .env_remove("PKI_SIDECAR_INJECT_VAULT_ADDR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let child = ChildGuard(Some(command.spawn().expect("spawn the webhook")));
    let bound = |key: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find_map(|line| {
                let event: Value = serde_json::from_str(line).ok()?;
                (event["@message"] == "listening" && event["key"] == key)
                    .then(|| event["address"].as_str()?.parse().ok())?
            })
    };
    let mut addresses = None;
    util::wait_until(Duration::from_secs(30), "the webhook listening", || {
        addresses = bound("webhook.listen").zip(bound("webhook.metrics_listen"));
        addresses.is_some()
    });
    let (listen, metrics) = addresses.unwrap();
    util::wait_until(Duration::from_secs(30), "the webhook ready", || {
        util::http(metrics, "GET", "/readyz").status == 200
    });
    (child, listen, metrics)
}

/// AdmissionReviews the traffic sends the webhook: a Pod that asks for nothing, and one whose
/// annotation is unknown (refused).
fn write_reviews(dir: &Path) -> (PathBuf, PathBuf) {
    let plain = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "namespace": "team-a"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    });
    let mut refused = plain.clone();
    refused["metadata"]["annotations"] = json!({
        "pki-sidecar.io/inject": "true",
        "pki-sidecar.io/proxy-prot": "443",
    });
    (
        util::write_file(
            dir,
            "plain-review.json",
            &crate::webhook::pod_review(&plain).to_string(),
        ),
        util::write_file(
            dir,
            "refused-review.json",
            &crate::webhook::pod_review(&refused).to_string(),
        ),
    )
}

/// Whether Prometheus must be here: in CI (`PKI_SIDECAR_REQUIRE_PROMTOOL`, which also installs
/// the server from the same Debian package) the test fails rather than skip.
fn prometheus_or_skip() -> Option<PathBuf> {
    let found = prometheus_binary();
    if found.is_none() {
        assert!(
            std::env::var_os("PKI_SIDECAR_REQUIRE_PROMTOOL").is_none(),
            "prometheus is required here (PKI_SIDECAR_REQUIRE_PROMTOOL): run \
             scripts/install-test-deps.sh (Debian's prometheus package)"
        );
        eprintln!("SKIPPED: no prometheus binary; scripts/install-test-deps.sh installs it");
    }
    found
}

/// Waits until the role's scrape satisfies `done`.
fn wait_scrape(
    role: &RoleProcess,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&str) -> bool,
) {
    let start = Instant::now();
    loop {
        let scrape = role.scrape();
        if done(&scrape) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not after {limit:?}; scrape:\n{scrape}\nlog:\n{}",
            role.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The dashboard's variables as Grafana substitutes them for one Pod at a 1 s scrape interval
/// (`$__rate_interval` is four scrape intervals at least).
/// Both namespaces and Pods are selected, as Grafana writes several values of a variable in
/// a regex.
fn substitute(expr: &str) -> String {
    expr.replace("$namespace", &format!("({NAMESPACE}|{WEBHOOK_NAMESPACE})"))
        .replace("$pod", &format!("({POD}|{WEBHOOK_POD})"))
        .replace("$__rate_interval", "4s")
}

#[test]
fn prometheus_scraping_the_roles_through_a_scenario_fills_every_panel_and_evaluates_every_alert() {
    let Some(binary) = prometheus_or_skip() else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let mut bed = bao::private_bed();
    shorten_backdating(&bed);

    let agent = Launch::agent(
        &[&agent_config(dir.path(), &files)],
        bed.addr(),
        &dir.path().join("agent.log"),
    )
    .spawn();
    agent.wait_ready(Duration::from_secs(30));
    let app_config = util::write_file(dir.path(), "app.hcl", "app {}\n");
    let app = Launch::role("app", &[&app_config], &dir.path().join("app.log")).spawn();
    let proxy_config = util::write_file(
        dir.path(),
        "proxy.hcl",
        &format!(
            "proxy {{\n  upstream = \"http://{}\"\n  cert_file = \"{files}/tls.crt\"\n  \
             key_file = \"{files}/tls.key\"\n  reload_interval = \"1s\"\n}}\n",
            app.address("app.listen"),
            files = files.display()
        ),
    );
    let proxy = Launch::role("proxy", &[&proxy_config], &dir.path().join("proxy.log")).spawn();
    proxy.wait_ready(Duration::from_secs(30));

    let (webhook, webhook_listen, webhook_metrics) = start_webhook(dir.path(), &files);
    let pod_target = |container, endpoint, address| Target {
        job: JOB,
        namespace: NAMESPACE,
        pod: POD,
        container,
        endpoint,
        address,
    };
    let config = prometheus_config(
        dir.path(),
        &[
            pod_target("vault", "agent-metrics", agent.metrics()),
            pod_target("proxy", "proxy-metrics", proxy.metrics()),
            pod_target("app", "app-metrics", app.metrics()),
            Target {
                job: WEBHOOK_JOB,
                namespace: WEBHOOK_NAMESPACE,
                pod: WEBHOOK_POD,
                container: "webhook",
                endpoint: "metrics",
                address: webhook_metrics,
            },
        ],
    );
    let prometheus = Prometheus::start(&binary, dir.path(), &config);
    prometheus.wait_for("up == 1", 4, Duration::from_secs(30));
    let window_start = now();
    let (plain_review, refused_review) = write_reviews(dir.path());
    let traffic = Traffic::start(
        proxy.address("proxy.listen"),
        webhook_listen,
        vec![plain_review, refused_review],
    );

    // 1. Renewals: the 12 s certificate is renewed about every 8 s.
    let issued = "pki_sidecar_agent_issue_total";
    wait_scrape(&agent, Duration::from_secs(30), "a renewal", |s| {
        sample(s, issued, &["result=\"success\""]).unwrap_or(0.0) >= 2.0
    });

    // 2. A bad certificate file: the proxy refuses it and keeps its pair. Written again every
    //    second until counted: the agent's renewal may have been replacing the file just then.
    let refused = |s: &str| {
        sample(
            s,
            "pki_sidecar_proxy_certificate_reloads_total",
            &["reason=\"cert_invalid\"", "result=\"failure\""],
        )
        .unwrap_or(0.0)
            >= 1.0
    };
    let mut written = Instant::now() - Duration::from_secs(1);
    wait_scrape(&proxy, Duration::from_secs(20), "a reload failure", |s| {
        if refused(s) {
            return true;
        }
        if written.elapsed() >= Duration::from_secs(1) {
            std::fs::write(files.join("tls.crt"), "not a certificate\n").unwrap();
            written = Instant::now();
        }
        false
    });

    // 3. An OpenBao outage: the next renewal fails; after the restart the agent logs in again
    //    and issues.
    bed.stop();
    wait_scrape(
        &agent,
        Duration::from_secs(30),
        "a failed Vault call",
        |s| family_sum(s, "pki_sidecar_vault_request_errors_total") >= 1.0,
    );
    let before = sample(&agent.scrape(), issued, &["result=\"success\""]).unwrap();
    bed.restart();
    shorten_backdating(&bed);
    wait_scrape(
        &agent,
        Duration::from_secs(40),
        "an issue after the outage",
        |s| sample(s, issued, &["result=\"success\""]).unwrap_or(0.0) > before,
    );

    // 4. An expired served certificate: the agent stopped (SIGSTOP), the proxy keeps serving
    //    its certificate past NotAfter, until the agent continues and renews.
    //    The outage may have outlasted the served certificate: first the renewed one is served
    //    and Prometheus has seen it valid.
    let valid = "pki_sidecar_tls_certificate_ready{role=\"proxy\"} == 1";
    util::wait_until(
        Duration::from_secs(40),
        "Prometheus scraping the proxy's certificate valid",
        || prometheus.query(valid).len() == 1,
    );
    util::signal(agent.pid(), Signal::SIGSTOP);
    let reloads = |s: &str| {
        sample(
            s,
            "pki_sidecar_proxy_certificate_reloads_total",
            &["result=\"success\""],
        )
        .unwrap_or(0.0)
    };
    let reloaded_before = reloads(&proxy.scrape());
    // The proxy's certificate expires (it may still load the agent's last one first), and
    // Prometheus scrapes it expired, and fails to scrape the stopped agent.
    let expired = "pki_sidecar_tls_certificate_ready{role=\"proxy\"} == 0";
    let agent_down = "up{endpoint=\"agent-metrics\"} == 0";
    util::wait_until(
        Duration::from_secs(40),
        "Prometheus scraping the proxy's certificate expired and the agent down",
        || prometheus.query(expired).len() == 1 && prometheus.query(agent_down).len() == 1,
    );
    let reloaded_before = reloaded_before.max(reloads(&proxy.scrape()));
    util::signal(agent.pid(), Signal::SIGCONT);
    wait_scrape(
        &proxy,
        Duration::from_secs(30),
        "the renewed pair served",
        |s| reloads(s) > reloaded_before,
    );
    drop(traffic);
    // Everything until now is in Prometheus: one more scrape of each role.
    let end = now();
    prometheus.wait_for(
        &format!("timestamp(up) > {end}"),
        4,
        Duration::from_secs(15),
    );
    let window_end = now();
    let scenario = started.elapsed();

    // Every panel query returned a series at some point of the scenario.
    let dashboard = super::dashboard();
    let mut empty = Vec::new();
    for (title, expr) in super::panel_queries(&dashboard) {
        let query = substitute(&expr);
        let result = prometheus
            .query_range(&query, window_start, window_end)
            .unwrap_or_else(|err| panic!("panel {title:?}: {err}"));
        let allowed = ALLOWED_EMPTY.iter().find(|(panel, _)| *panel == title);
        match (result.is_empty(), allowed) {
            (true, None) => empty.push(format!("{title}: {query}")),
            (true, Some((_, why))) => eprintln!("panel {title:?} empty, as allowed: {why}"),
            (false, _) => {}
        }
    }
    assert!(
        empty.is_empty(),
        "panel queries with no data over the scenario:\n{}",
        empty.join("\n")
    );

    // Every alert expression evaluates, by itself and as a rule Prometheus runs.
    for (_, name, rule) in super::alerts() {
        let expr = rule["expr"].as_str().unwrap();
        prometheus
            .query_range(expr, window_start, window_end)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    // The alerts the scenario provokes match real series (their `for` is longer than the
    // scenario, so their expressions, not their firing, are what can be seen).
    for name in [
        "PkiSidecarCertificateNotValid",
        "PkiSidecarCertificateNearExpiry",
        "PkiSidecarAgentDown",
        "PkiSidecarWebhookErrors",
    ] {
        let (_, _, rule) = super::alerts()
            .into_iter()
            .find(|(_, n, _)| n == name)
            .unwrap();
        let expr = rule["expr"].as_str().unwrap();
        let matched = prometheus
            .query_range(expr, window_start, window_end)
            .unwrap();
        assert!(
            !matched.is_empty(),
            "{name} matched nothing during the scenario: {expr}"
        );
    }
    let rules = prometheus.api("rules", &[]).unwrap();
    let mut evaluated = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            assert_eq!(rule["health"], "ok", "{rule}");
            evaluated += 1;
        }
    }
    assert_eq!(evaluated, super::alerts().len());

    // What the scenario did, as Prometheus saw it: evaluated at the scenario's end, so that
    // the window covers the scenario however long the queries above took (evaluated now, on a
    // busy machine the window slid past the first renewals).
    let window = format!("{}s", (window_end - window_start).ceil() as u64 + 1);
    let seen = |expr: &str| {
        !prometheus
            .query_at(&expr.replace("WINDOW", &window), window_end)
            .is_empty()
    };
    for (what, expr) in [
        (
            "renewals",
            "increase(pki_sidecar_agent_issue_total{result=\"success\"}[WINDOW]) >= 2",
        ),
        (
            "the bad file",
            "increase(pki_sidecar_proxy_certificate_reloads_total{result=\"failure\",reason=\"cert_invalid\"}[WINDOW]) > 0",
        ),
        (
            "the outage",
            "increase(pki_sidecar_vault_request_errors_total{kind=\"unreachable\"}[WINDOW]) > 0",
        ),
        (
            "the agent not answering while stopped",
            "min_over_time(up{endpoint=\"agent-metrics\"}[WINDOW]) == 0",
        ),
        (
            "the served certificate expired, then valid again",
            "min_over_time(pki_sidecar_tls_certificate_ready{role=\"proxy\"}[WINDOW]) == 0 \
             and pki_sidecar_tls_certificate_ready{role=\"proxy\"} == 1",
        ),
        (
            "failed handshakes",
            "increase(pki_sidecar_proxy_tls_handshakes_total{result=\"failure\"}[WINDOW]) > 0",
        ),
        (
            "the issued and the served certificate compared on (namespace, pod, cert)",
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{role=\"agent\"} - on (namespace, pod, cert) pki_sidecar_tls_certificate_expiration_timestamp_seconds{role=\"proxy\"}",
        ),
    ] {
        assert!(seen(expr), "Prometheus did not see {what}: {expr}");
    }
    eprintln!(
        "monitoring scenario: {:.1} s of scenario, {:.1} s in all",
        scenario.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = (agent.stop(), proxy.stop(), app.stop());
    drop(webhook);
}
