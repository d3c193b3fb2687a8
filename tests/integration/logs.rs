//! What the logs say while something is wrong, as the real binary writes them.

use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pki_sidecar::tls::AcceptAnyCertificate;
use rustls_pki_types::ServerName;
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
    // After its retry window (5 s) the call leaves the outage to the login backoff, and says so.
    const HANDED_OVER: &str = "Vault is down; this call stops retrying and leaves the next \
                               attempt to its caller's backoff";
    util::wait_until(Duration::from_secs(15), "the call handing over", || {
        !events(&agent.log(), HANDED_OVER).is_empty()
    });
    let (_, log) = agent.stop();
    let handed = &events(&log, HANDED_OVER)[0];
    assert_eq!(handed["@level"], "warn", "{handed}");
    assert_eq!(handed["operation"], "login", "{handed}");
    let failing_for = handed["failing_for_seconds"].as_f64().unwrap();
    assert!((3.0..=5.0).contains(&failing_for), "{handed}");
    assert!(
        first_seen < Duration::from_secs(1),
        "the first failure was logged {first_seen:?} after the start:\n{log}"
    );
    let failures = events(&log, "Vault request failed; retrying");
    let mut previous = 0;
    for event in &failures {
        assert_eq!(event["@level"], "warn", "{event}");
        assert_eq!(event["vault"], address.as_str(), "{event}");
        let error = event["error"].as_str().unwrap();
        assert!(error.contains("Connection refused"), "{error}");
        // Counted within a call; a call that found Vault down for its whole retry window hands
        // over to the login backoff, whose next call counts from 1 again.
        let attempt = event["attempt"].as_u64().unwrap();
        assert!(attempt == previous + 1 || attempt == 1, "{event}");
        previous = attempt;
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

/// A `dev` run logging to a file, on free loopback ports.
struct DevRun {
    child: util::ChildGuard,
    log: std::path::PathBuf,
    proxy: SocketAddr,
    proxy_metrics: SocketAddr,
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl DevRun {
    /// Starts `dev` on free ports and waits for the proxy to be ready. A port another test
    /// took between `free_port` and dev's bind makes dev exit with "Address already in use":
    /// that start is tried again on fresh ports (up to 5 times); any other failure shows the
    /// log.
    fn start(format: &str, access_log: bool) -> DevRun {
        for attempt in 1..=5 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("dev");
            let log = tmp.path().join("dev.log");
            let port = || SocketAddr::from(([127, 0, 0, 1], util::free_port()));
            let (proxy, app, agent_metrics, proxy_metrics, app_metrics) =
                (port(), port(), port(), port(), port());
            let mut command = util::command();
            command
                .args(["dev", "--log-format", format, "--dir"])
                .arg(&dir)
                .args(["--listen", &proxy.to_string()])
                .args(["--app-listen", &app.to_string()])
                .args(["--agent-metrics-listen", &agent_metrics.to_string()])
                .args(["--proxy-metrics-listen", &proxy_metrics.to_string()])
                .args(["--app-metrics-listen", &app_metrics.to_string()])
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap());
            if access_log {
                command.arg("--access-log");
            }
            let child = util::ChildGuard(Some(command.spawn().expect("spawn dev")));
            let mut run = DevRun {
                child,
                log,
                proxy,
                proxy_metrics,
                dir,
                _tmp: tmp,
            };
            let started = std::time::Instant::now();
            loop {
                let ready = std::net::TcpStream::connect(run.proxy_metrics).is_ok()
                    && util::http(run.proxy_metrics, "GET", "/readyz").status == 200;
                if ready {
                    return run;
                }
                let exited = run
                    .child
                    .0
                    .as_mut()
                    .and_then(|child| child.try_wait().expect("try_wait"));
                if exited.is_some() {
                    let log = run.log();
                    assert!(
                        attempt < 5 && log.contains("Address already in use"),
                        "dev exited before it was ready:\n{log}"
                    );
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the proxy not ready after 30 s:\n{}",
                    run.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        unreachable!("the fifth attempt returns or fails")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the whole log once it exited.
    fn stop(mut self) -> String {
        util::signal(self.child.pid(), Signal::SIGTERM);
        let (code, _) = self.child.wait(Duration::from_secs(20));
        assert_eq!(code, Some(0), "{}", self.log());
        self.log()
    }

    /// `GET /a/b?token=secret` over HTTP/1.1 and TLS with SNI `localhost`; the response.
    fn get(&self) -> String {
        let provider = pki_sidecar::tls::crypto_provider();
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let socket = std::net::TcpStream::connect(self.proxy).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, socket);
        tls.write_all(
            b"GET /a/b?token=secret HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut response = Vec::new();
        // The server closes without a close_notify when the connection ends: what was read is
        // the whole response.
        let _ = tls.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }
}

/// The role a line's module belongs to, in `dev`; `None` for the process's own lines.
fn expected_role(module: &str) -> Option<&'static [&'static str]> {
    match module {
        "dev" | "lifecycle" => None,
        "access" => Some(&["proxy"]),
        m if m.starts_with("agent") || m == "vault" => Some(&["agent"]),
        m if m.starts_with("proxy") => Some(&["proxy"]),
        "app" => Some(&["app"]),
        _ => Some(&["agent", "proxy", "app"]),
    }
}

#[test]
fn dev_json_lines_carry_their_role_and_template_and_the_access_log_has_every_field() {
    let dev = DevRun::start("json", true);
    let response = dev.get();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    util::wait_until(Duration::from_secs(10), "the access line", || {
        !events(&dev.log(), "request").is_empty()
    });
    let destination = dev.dir.join("tls.crt");
    let log = dev.stop();
    let mut roles = std::collections::BTreeSet::new();
    for line in log.lines() {
        let event: serde_json::Map<String, Value> = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not one JSON object ({err}): {line}"));
        assert!(
            !event.contains_key("spans") && !event.contains_key("span"),
            "{line}"
        );
        for key in ["@level", "@message", "@module", "@timestamp"] {
            assert!(event[key].is_string(), "{key}: {line}");
        }
        let module = event["@module"].as_str().unwrap();
        match expected_role(module) {
            None => assert!(!event.contains_key("role"), "{line}"),
            Some(allowed) => {
                let role = event["role"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no role: {line}"));
                assert!(allowed.contains(&role), "{role} for {module}: {line}");
                roles.insert(role.to_string());
            }
        }
        if module == "agent.runner" && event.contains_key("template") {
            assert_eq!(
                event["destination"],
                destination.display().to_string(),
                "a template's line names its destination: {line}"
            );
        }
    }
    assert_eq!(roles.len(), 3, "lines of all three roles: {roles:?}");
    for message in ["issued a certificate", "rendered"] {
        let found = events(&log, message);
        assert_eq!(found.len(), 1, "{message}:\n{log}");
        assert_eq!(found[0]["destination"], destination.display().to_string());
    }
    // The proxy may start before the agent wrote the files: its first load is no recovery.
    assert!(
        events(&log, "the certificate files are valid again").is_empty(),
        "{log}"
    );
    assert_eq!(events(&log, "serving the certificate").len(), 1, "{log}");
    let access = events(&log, "request");
    assert_eq!(access.len(), 1, "one line per request:\n{log}");
    let line = &access[0];
    assert_eq!(line["@module"], "access");
    assert_eq!(line["@level"], "info");
    assert_eq!(line["role"], "proxy");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/a/b", "no query string: {line}");
    assert_eq!(line["status"], 404);
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(line["bytes"], body.len() as u64, "{line}");
    assert!(line["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
    let upstream = line["upstream_ms"].as_f64().unwrap();
    assert!(
        upstream > 0.0 && upstream <= line["duration_ms"].as_f64().unwrap(),
        "{line}"
    );
    assert_eq!(line["tls_version"], "TLSv1.3");
    assert_eq!(line["sni"], "localhost");
    assert!(
        line["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{line}"
    );
    assert!(!log.contains("token=secret"), "the query is never logged");
}

#[test]
fn dev_text_lines_show_their_spans_and_the_access_log_is_off_by_default() {
    for access_log in [true, false] {
        let dev = DevRun::start("text", access_log);
        assert!(dev.get().starts_with("HTTP/1.1 404"));
        if access_log {
            util::wait_until(Duration::from_secs(10), "the access line", || {
                dev.log().contains("pki_sidecar::access")
            });
        }
        let destination = dev.dir.join("tls.crt");
        let log = dev.stop();
        let access: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("pki_sidecar::access"))
            .collect();
        assert_eq!(
            access.len(),
            usize::from(access_log),
            "one line per request with the access log on, none off:\n{log}"
        );
        if access_log {
            let line = access[0];
            assert!(
                line.contains(" INFO role{role=\"proxy\"}: pki_sidecar::access: request "),
                "{line}"
            );
            for field in [
                "method=GET",
                "path=\"/a/b\"",
                "status=404",
                "bytes=10",
                "duration_ms=",
                "upstream_ms=",
                "tls_version=\"TLSv1.3\"",
                "sni=\"localhost\"",
                "client=127.0.0.1:",
            ] {
                assert!(line.contains(field), "{field} in {line}");
            }
        }
        for line in log.lines() {
            if line.contains("pki_sidecar::dev:") || line.contains("pki_sidecar::lifecycle:") {
                continue;
            }
            assert!(line.contains(" role{role=\""), "no role: {line}");
        }
        let rendered = log
            .lines()
            .find(|line| line.contains(": rendered "))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            rendered.contains(&format!(
                "role{{role=\"agent\"}}:template{{destination={}}}:",
                destination.display()
            )),
            "{rendered}"
        );
    }
}

/// `proxy.access_log`: off by default, `validate` shows it, a bad value is a config error.
#[test]
fn validate_prints_the_access_log_setting_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let validate = |text: &str| {
        let file = util::write_file(dir.path(), "proxy.hcl", text);
        let output = util::command()
            .args(["validate", "--role", "proxy", "--config"])
            .arg(&file)
            .output()
            .expect("run validate");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = validate("proxy {\n  listen = \"127.0.0.1:8443\"\n}\n");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("  access    off (access_log = false)\n"),
        "{out}"
    );
    let (code, out, err) = validate("proxy {\n  access_log = true\n}\n");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("  access    a log line per request (access_log)\n"),
        "{out}"
    );
    let (code, out, err) = validate("proxy {\n  access_log = \"sometimes\"\n}\n");
    assert_eq!(code, Some(78), "{out}{err}");
    assert!(err.contains("proxy.access_log"), "{err}");
}

/// What an operator switching from nginx looks for first when the app fails: a warning per
/// request the upstream did not answer (nginx's `[error] ... upstream` lines), naming the
/// method, the path sent (never its query), the upstream, the kind and the status answered;
/// and a response the app cut off mid-body is logged and counted
/// (`upstream_errors_total{kind="body"}`), not taken for a 200 that went well.
#[test]
fn upstream_failures_are_logged_without_the_query_and_a_cut_body_is_counted() {
    use std::net::TcpListener;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    util::write_file(d, "tls.crt", &certified.cert.pem());
    let key = util::write_file(d, "tls.key", &certified.signing_key.serialize_pem());
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // An app that announces 1,000 bytes, sends 10 and closes.
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let app_address = app.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in app.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
        }
    });
    let down = util::free_port();
    let config = util::write_file(
        d,
        "proxy.hcl",
        &format!(
            "log_format = \"json\"\nproxy {{\n  upstream = \"http://{app_address}\"\n  \
             cert_file = \"{d}/tls.crt\"\n  key_file = \"{d}/tls.key\"\n  routes = [{{ location \
             = \"/down/\", upstream = \"http://127.0.0.1:{down}\" }}]\n}}\n",
            d = d.display()
        ),
    );
    let proxy = Launch::role("proxy", &[&config], &d.join("proxy.log")).spawn();
    proxy.wait_ready(Duration::from_secs(30));
    let listen = proxy.address("proxy.listen");
    let curl = |path: &str| {
        std::process::Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .arg(format!("https://localhost:{}{path}", listen.port()))
            .args([
                "--resolve",
                &format!("localhost:{}:127.0.0.1", listen.port()),
            ])
            .output()
            .expect("run curl")
    };
    let refused = curl("/down/orders?token=s3cret");
    assert_eq!(String::from_utf8_lossy(&refused.stdout), "502");
    let cut = curl("/report?token=s3cret");
    assert!(
        !cut.status.success(),
        "the client sees the body cut: {cut:?}"
    );
    util::wait_until(Duration::from_secs(10), "both failures logged", || {
        let log = proxy.log();
        !events(&log, "the upstream did not answer").is_empty()
            && !events(
                &log,
                "the upstream's response broke off: the response to the client is cut",
            )
            .is_empty()
    });
    let log = proxy.log();
    let failed = &events(&log, "the upstream did not answer")[0];
    assert_eq!(failed["@level"], "warn", "{failed}");
    assert_eq!(failed["method"], "GET");
    assert_eq!(failed["path"], "/down/orders");
    assert_eq!(failed["upstream"], format!("127.0.0.1:{down}"));
    assert_eq!(failed["kind"], "connect");
    assert_eq!(failed["status"], 502);
    let broke = &events(
        &log,
        "the upstream's response broke off: the response to the client is cut",
    )[0];
    assert_eq!(broke["upstream"], app_address.to_string(), "{broke}");
    assert!(
        !log.contains("s3cret"),
        "a query never reaches the log:\n{log}"
    );
    assert_eq!(
        proxy.metric("pki_sidecar_proxy_upstream_errors_total{kind=\"body\"}"),
        1.0
    );
    assert_eq!(
        proxy.metric("pki_sidecar_proxy_upstream_errors_total{kind=\"connect\"}"),
        1.0
    );
}
