//! `pki-sidecar dev`: the three roles in one process, as a newcomer first meets the project.
//!
//! - on the development CA with 6 s certificates: `hello world` over TLS verified against the
//!   printed `ca.crt`, at least one rotation with no failed request across it, the three
//!   metrics endpoints, no login metric, the key file's mode, SIGTERM → exit 0;
//! - `--vault` against the OpenBao bed (token auth, the seed's PKI role);
//! - the README's quick start: its dev command run with its own arguments, the `curl` line it
//!   prints run as printed, and its test command being the one `.ci/run` runs.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use nix::sys::signal::Signal;
use pki_sidecar::certs::{self, CertInfo};
use pki_sidecar::tls::pem;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::util::{self, ChildGuard, bao};

/// The listeners of one `dev` run, all on free loopback ports.
struct Ports {
    proxy: SocketAddr,
    app: SocketAddr,
    agent_metrics: SocketAddr,
    proxy_metrics: SocketAddr,
    app_metrics: SocketAddr,
}

impl Ports {
    fn free() -> Ports {
        let port = || SocketAddr::from(([127, 0, 0, 1], util::free_port()));
        Ports {
            proxy: port(),
            app: port(),
            agent_metrics: port(),
            proxy_metrics: port(),
            app_metrics: port(),
        }
    }

    fn args(&self) -> Vec<String> {
        [
            ("--listen", self.proxy),
            ("--app-listen", self.app),
            ("--agent-metrics-listen", self.agent_metrics),
            ("--proxy-metrics-listen", self.proxy_metrics),
            ("--app-metrics-listen", self.app_metrics),
        ]
        .iter()
        .flat_map(|(flag, address)| [flag.to_string(), address.to_string()])
        .collect()
    }
}

/// A running `dev` process and its stdout, line by line.
struct Dev {
    child: ChildGuard,
    stdout: mpsc::Receiver<String>,
}

impl Dev {
    fn spawn(command: Command) -> Dev {
        let mut child = ChildGuard::spawn(command);
        let pipe = child.0.as_mut().unwrap().stdout.take().expect("stdout");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        Dev {
            child,
            stdout: line_rx,
        }
    }

    /// Waits for the printed `curl ...` line; returns it trimmed.
    fn curl_line(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.trim_start().starts_with("try:") => {
                    let curl = line.trim_start().trim_start_matches("try:").trim();
                    assert!(curl.starts_with("curl --cacert "), "{line}");
                    return curl.to_string();
                }
                Ok(line) => seen.push(line),
                Err(_) => {
                    let (code, stderr) = self.child.wait(Duration::from_secs(15));
                    panic!(
                        "no curl line within {limit:?} (exit {code:?}); stdout:\n{}\nstderr:\n{stderr}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// SIGTERM, then the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        util::signal(self.child.pid(), Signal::SIGTERM);
        self.child.wait(Duration::from_secs(20))
    }
}

/// `curl --cacert FILE https://localhost:PORT/` → (FILE, PORT).
fn parse_curl(line: &str) -> (PathBuf, u16) {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{line}");
    let url = words[3];
    let port = url
        .strip_prefix("https://localhost:")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("not https://localhost:PORT/: {url}"));
    (PathBuf::from(words[2]), port)
}

/// The pod harness's client (no resumption: every request a full handshake), from PEM bytes.
fn client_config(roots_pem: &[u8]) -> Arc<ClientConfig> {
    crate::pod::client_config(std::str::from_utf8(roots_pem).expect("CA PEM is text"))
}

/// `GET https://localhost:PORT/` on a new connection, verified against `config`'s roots;
/// the served leaf when the answer is `hello world`.
async fn get_hello(address: SocketAddr, config: Arc<ClientConfig>) -> Result<CertInfo, String> {
    CertInfo::parse(&get_hello_leaf(address, config).await?)
}

/// [`get_hello`], answering with the served leaf's DER.
async fn get_hello_leaf(
    address: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<CertificateDer<'static>, String> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http: {e}"))?;
        tokio::spawn(connection);
        let request = hyper::Request::get("/")
            .header(hyper::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if status != 200 || body.as_ref() != b"hello world\n" {
            return Err(format!("HTTP {status}: {body:?}"));
        }
        Ok(leaf)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 10s".to_owned()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A metrics scrape, checked by promtool when it is installed.
fn scrape(address: SocketAddr) -> String {
    let response = util::http(address, "GET", "/metrics");
    assert_eq!(response.status, 200, "{address}/metrics");
    if let Some((ok, report)) = util::promtool_check(&response.body) {
        assert!(ok, "promtool check metrics on {address}: {report}");
    }
    response.body
}

fn unix_now() -> f64 {
    certs::unix_seconds(SystemTime::now())
}

#[test]
fn dev_serves_hello_world_and_rotates_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut command = util::command();
    command
        .args(["dev", "--ttl", "6s", "--dir"])
        .arg(dir.path())
        .args(ports.args());
    let mut dev = Dev::spawn(command);
    let curl = dev.curl_line(Duration::from_secs(30));
    let (root_file, port) = parse_curl(&curl);
    assert_eq!(port, ports.proxy.port());
    let dir_path = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(root_file, dir_path.join("ca.crt"));

    // Requests on new connections, one every 100 ms, until two rotations were seen (6 s
    // certificates renew after about 4 s): none may fail, before, during or after a rotation.
    let config = client_config(&std::fs::read(&root_file).unwrap());
    let runtime = runtime();
    let mut serials = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let info = runtime
            .block_on(get_hello(ports.proxy, config.clone()))
            .unwrap_or_else(|err| {
                panic!(
                    "request {} failed after {:?} (serials so far {serials:?}): {err}",
                    serials.len(),
                    started.elapsed()
                )
            });
        assert_eq!(info.subject_cn, "localhost");
        assert_eq!(info.names, ["localhost", "127.0.0.1"]);
        assert!(
            info.lifetime() <= Duration::from_secs(6 + 30 + 1),
            "{info:?}"
        );
        if serials.last() != Some(&info.serial) {
            serials.push(info.serial);
        }
        if serials.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let distinct: BTreeSet<&String> = serials.iter().collect();
    assert!(
        distinct.len() >= 2 && distinct.len() == serials.len(),
        "expected at least one rotation to a new serial in 20 s: {serials:?}"
    );

    // Files: the key is the owner's alone; the root is the printed one.
    let mode = |name: &str| {
        std::fs::metadata(dir_path.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tls.key"), 0o600);
    assert_eq!(mode("tls.crt"), 0o644);

    // Metrics: both certificate holders export the expiry; nothing pretends to have logged in.
    // Both label it by the file's base name, so their series join on `cert`.
    // The agent keeps rotating: a scrape of each can fall either side of a rotation the proxy
    // has not picked up yet, so the two are read again until they agree.
    let (mut agent, mut proxy) = (String::new(), String::new());
    let expiry = |text: &str, role: &str| {
        util::metric(
            text,
            &format!(
                "pki_sidecar_tls_certificate_expiration_timestamp_seconds{{cert=\"tls.crt\",role=\"{role}\"}}"
            ),
        )
    };
    util::wait_until(
        Duration::from_secs(20),
        "the served certificate is the issued one (same expiry in both roles' metrics)",
        || {
            agent = scrape(ports.agent_metrics);
            proxy = scrape(ports.proxy_metrics);
            expiry(&agent, "agent") == expiry(&proxy, "proxy")
        },
    );
    assert!(expiry(&agent, "agent") > unix_now() - 10.0, "{agent}");
    assert!(util::metric(&agent, "pki_sidecar_agent_issue_total{result=\"success\"}") >= 2.0);
    assert!(!agent.contains("pki_sidecar_agent_auth_total"), "{agent}");
    assert!(expiry(&proxy, "proxy") > unix_now() - 10.0, "{proxy}");
    for (scrape, role) in [(&agent, "agent"), (&proxy, "proxy")] {
        assert_eq!(
            util::metric(
                scrape,
                &format!("pki_sidecar_tls_certificate_ready{{cert=\"tls.crt\",role=\"{role}\"}}")
            ),
            1.0,
            "{scrape}"
        );
    }
    // dev waits for the proxy's readiness before its own check: no handshake was refused.
    assert_eq!(
        util::metric(
            &proxy,
            "pki_sidecar_proxy_tls_handshakes_total{result=\"failure\"}"
        ),
        0.0,
        "{proxy}"
    );
    assert!(
        util::metric(
            &proxy,
            "pki_sidecar_proxy_certificate_reloads_total{reason=\"new_certificate\",result=\"success\"}"
        ) >= 2.0,
        "{proxy}"
    );
    let app = scrape(ports.app_metrics);
    assert!(
        util::metric(
            &app,
            "pki_sidecar_http_requests_total{code=\"200\",role=\"app\"}"
        ) >= serials.len() as f64,
        "{app}"
    );
    for address in [ports.agent_metrics, ports.proxy_metrics, ports.app_metrics] {
        assert_eq!(
            util::http(address, "GET", "/readyz").status,
            200,
            "{address}"
        );
    }

    let (code, stderr) = dev.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("issued a certificate"), "{stderr}");
    assert!(stderr.contains("serving a new certificate"), "{stderr}");
    // An explicit --dir is kept, with the generated config in it.
    assert!(dir_path.join("dev.hcl").is_file());
}

#[test]
fn dev_vault_mode_issues_from_openbao() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut command = util::command();
    command
        .args(["dev", "--vault", "--ttl", "1m", "--dir"])
        .arg(dir.path())
        .args(ports.args())
        .env("VAULT_ADDR", bed.addr())
        .env("VAULT_TOKEN", bed.root_token());
    let mut dev = Dev::spawn(command);
    let curl = dev.curl_line(Duration::from_secs(30));
    let (root_file, _) = parse_curl(&curl);

    // Verified against the bed's own root: the certificate really comes from OpenBao.
    let runtime = runtime();
    let info = runtime
        .block_on(get_hello(
            ports.proxy,
            client_config(bed.root_ca_pem().as_bytes()),
        ))
        .expect("hello world from a certificate OpenBao issued");
    assert_eq!(info.subject_cn, "localhost");
    let intermediate =
        CertInfo::parse(&pem::blocks(bed.intermediate_ca_pem()).unwrap()[0].der).unwrap();
    assert_eq!(info.issuer_cn, intermediate.subject_cn);
    // And against the printed ca.crt (the chain from the issue answer).
    runtime
        .block_on(get_hello(
            ports.proxy,
            client_config(&std::fs::read(&root_file).unwrap()),
        ))
        .expect("hello world verified with the printed ca.crt");
    let agent = scrape(ports.agent_metrics);
    assert_eq!(
        util::metric(
            &agent,
            "pki_sidecar_agent_auth_total{method=\"token_file\",result=\"success\"}"
        ),
        1.0,
        "{agent}"
    );

    let token_file = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("vault-token");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, stderr) = dev.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!token_file.exists(), "the token file outlived the run");
    assert!(!stderr.contains(bed.root_token()), "the token was logged");
}

#[test]
fn dev_vault_mode_without_a_token_says_what_is_missing() {
    let output = util::command()
        .args(["dev", "--vault"])
        .env("VAULT_ADDR", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("VAULT_TOKEN"), "{stderr}");
}

/// The fenced `sh` blocks of the README's "Quick start" section, in order.
fn quick_start_blocks() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(util::repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Quick start"))
        .expect("a \"## Quick start\" section in README.md");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), text) if !text.is_empty() && !text.starts_with('#') => {
                // A trailing `# comment` is for the reader, not the shell.
                block.push(text.split(" #").next().unwrap().trim().to_string());
            }
            _ => {}
        }
    }
    blocks
}

/// The README's first command, run as a newcomer would from the repository root with no
/// Vault in the environment and no flag of ours added: default ports, default directory.
///
/// It runs the binary `cargo test` built rather than `cargo run --release`: that command is
/// cargo building the release profile, then executing `target/release/pki-sidecar` with the
/// arguments after `--`. Building the release profile here would take minutes on CI's two
/// cores, inside a test, in a build directory cargo test is using; what differs between the
/// two builds is optimisation only. `.ci/run` runs the release build (the benchmarks' smoke
/// runs) and then this very command, literally (`scripts/quick-start.sh`).
#[test]
fn readme_quick_start_works_as_written() {
    let blocks = quick_start_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "two command blocks in Quick start: {blocks:?}"
    );
    let dev_command = &blocks[0];
    assert_eq!(dev_command.len(), 1, "{dev_command:?}");
    let args: Vec<&str> = dev_command[0]
        .strip_prefix("cargo run --release -- ")
        .unwrap_or_else(|| panic!("not `cargo run --release -- ...`: {}", dev_command[0]))
        .split_whitespace()
        .collect();
    assert_eq!(args, ["dev"]);
    // `cargo run` without `--bin` needs exactly one binary in the package: this one.
    let manifest = std::fs::read_to_string(util::repo().join("Cargo.toml")).unwrap();
    assert_eq!(manifest.matches("[[bin]]").count(), 1);
    assert!(manifest.contains("name = \"pki-sidecar\""));

    // The README's test command is one command, and it is what CI runs for its test step.
    let test_command = &blocks[1];
    assert_eq!(
        test_command,
        &["bash scripts/test.sh"],
        "the README's test command"
    );
    let ci = std::fs::read_to_string(util::repo().join(".ci/run")).unwrap();
    let ci_commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        ci_commands.contains(&test_command[0].as_str()),
        "the README's {:?} is not a command of .ci/run",
        test_command[0]
    );
    assert!(
        !ci_commands.iter().any(|l| l.starts_with("cargo test")),
        ".ci/run runs the tests through the README's command only: {ci_commands:?}"
    );
    // That command installs what the tests need, then runs every test.
    let script = std::fs::read_to_string(util::repo().join("scripts/test.sh")).unwrap();
    let script_commands: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let install = script_commands
        .iter()
        .position(|l| l.starts_with("bash scripts/install-test-deps.sh"))
        .unwrap_or_else(|| panic!("scripts/test.sh installs nothing: {script_commands:?}"));
    let test = script_commands
        .iter()
        .position(|l| *l == "exec cargo test -j2 --locked \"$@\"")
        .unwrap_or_else(|| panic!("scripts/test.sh runs no cargo test: {script_commands:?}"));
    assert!(install < test, "{script_commands:?}");

    let mut command = util::command();
    command.args(&args);
    let mut dev = Dev::spawn(command);
    let curl = dev.curl_line(Duration::from_secs(30));
    let (root_file, port) = parse_curl(&curl);
    assert_eq!(port, 8443, "the README promises https://localhost:8443");
    // The printed line, run as printed.
    let output = Command::new("sh")
        .args(["-c", &format!("{curl} --silent --show-error --max-time 10")])
        .output()
        .expect("sh");
    if output.status.code() == Some(127) {
        eprintln!("curl is not installed; checking with rustls instead");
        runtime()
            .block_on(get_hello(
                SocketAddr::from(([127, 0, 0, 1], port)),
                client_config(&std::fs::read(&root_file).unwrap()),
            ))
            .expect("hello world");
    } else {
        assert!(
            output.status.success(),
            "{curl}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "hello world\n");
    }
    // The metrics URLs it printed answer.
    for port in [9101, 9102, 9103] {
        scrape(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let temporary = root_file.parent().unwrap().to_path_buf();
    let (code, stderr) = dev.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !temporary.exists(),
        "the default directory is removed on exit"
    );
}

/// `--dir` with an earlier run's files: they are replaced, never reused (the CA is new).
#[test]
fn dev_replaces_an_earlier_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let stale = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    util::write_file(dir.path(), "tls.crt", stale);
    let ports = Ports::free();
    let mut command = util::command();
    command
        .args(["dev", "--dir"])
        .arg(dir.path())
        .args(ports.args());
    let mut dev = Dev::spawn(command);
    let curl = dev.curl_line(Duration::from_secs(30));
    let (root_file, _) = parse_curl(&curl);
    let info = runtime()
        .block_on(get_hello(
            ports.proxy,
            client_config(&std::fs::read(root_file).unwrap()),
        ))
        .expect("hello world");
    // The default lifetime: 2 minutes (plus Vault's 30 s backdating).
    assert_eq!(info.lifetime(), Duration::from_secs(150));
    let (code, stderr) = dev.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

/// `dev --key-type rsa --key-bits 3072`: the proxy serves an RSA certificate of that size
/// (the development CA generates the key, as a Vault role with `key_type=rsa` does), and the
/// key file holds its key. With `--vault` the role decides: the flag is refused.
#[test]
fn dev_key_type_rsa_serves_an_rsa_certificate() {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut command = util::command();
    command
        .args(["dev", "--key-type", "rsa", "--key-bits", "3072", "--dir"])
        .arg(dir.path())
        .args(ports.args());
    let mut dev = Dev::spawn(command);
    let curl = dev.curl_line(Duration::from_secs(60));
    let (root_file, _) = parse_curl(&curl);
    let leaf = runtime()
        .block_on(get_hello_leaf(
            ports.proxy,
            client_config(&std::fs::read(root_file).unwrap()),
        ))
        .expect("hello world");
    let (_, parsed) = X509Certificate::from_der(leaf.as_ref()).unwrap();
    match parsed.public_key().parsed().unwrap() {
        PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 3072),
        other => panic!("the proxy served a non-RSA certificate: {other:?}"),
    }
    let (key, _) = pem::first_private_key(std::fs::read(dir.path().join("tls.key")).unwrap())
        .expect("tls.key");
    assert_eq!(certs::key_matches(&leaf, key), Ok(()));
    let (code, stderr) = dev.stop();
    assert_eq!(code, Some(0), "{stderr}");

    let refused = util::command()
        .args(["dev", "--vault", "--key-type", "rsa"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--key-type"), "{stderr}");
}

/// The development CA's certificates are DER that strict parsers accept: OpenSSL prints each,
/// and pyca/cryptography (whose parser refuses an explicitly encoded DEFAULT value) loads each
/// with every extension and sees the leaf as "not a CA".
#[test]
fn dev_certificates_parse_strictly_with_openssl_and_pyca() {
    use pki_sidecar::agent::backend::Backend as _;
    use pki_sidecar::devca::DevCa;
    let ca = DevCa::generate(Duration::from_secs(600), Duration::from_secs(3600)).unwrap();
    let answer = runtime()
        .block_on(ca.request(
            "issue",
            http::Method::POST,
            "pki/issue/dev",
            Some(serde_json::json!({"common_name": "localhost"})),
        ))
        .unwrap();
    let field = |key: &str| answer["data"][key].as_str().unwrap().to_string();
    let chain = answer["data"]["ca_chain"].as_array().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("leaf", field("certificate")),
        ("intermediate", chain[0].as_str().unwrap().to_string()),
        ("root", chain[1].as_str().unwrap().to_string()),
    ];
    for (name, pem) in &files {
        let path = dir.path().join(format!("{name}.pem"));
        std::fs::write(&path, pem).unwrap();
        let openssl = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&path)
            .output()
            .expect("openssl runs");
        assert!(
            openssl.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&openssl.stderr)
        );
        let script = "import sys\n\
            from cryptography import x509\n\
            cert = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())\n\
            exts = list(cert.extensions)\n\
            print(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)\n";
        let python = Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output()
            .expect("python3 runs");
        assert!(
            python.status.success(),
            "{name}: pyca/cryptography refused it: {}",
            String::from_utf8_lossy(&python.stderr)
        );
        let is_ca = String::from_utf8_lossy(&python.stdout).trim().to_string();
        assert_eq!(
            is_ca,
            if *name == "leaf" { "False" } else { "True" },
            "{name}"
        );
    }
}
