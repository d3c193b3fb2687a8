//! `pki-sidecar proxy` configured by flags (`--listen`, `--upstream`, `--cert`, `--key`,
//! `--client-ca`, `--metrics-listen`), as the real binary: with no file at all, over a file's
//! `proxy {}` block, and with values the config's rules refuse (exit 78, naming the flag).

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::StatusCode;
use nix::sys::signal::Signal;

use super::{Client, H1, HELLO, Pair, ca, client_config, ecdsa_key, issue, valid_pair};
use crate::util::role::{Launch, RoleProcess};
use crate::util::{self, ChildGuard};

/// A proxy process started with flags, and the addresses it bound.
struct FlagProxy {
    child: ChildGuard,
    log: std::path::PathBuf,
    listen: SocketAddr,
    metrics: SocketAddr,
}

impl FlagProxy {
    /// `pki-sidecar proxy --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 ARGS...`, logging
    /// JSON to `dir/proxy.log`; waits for both listeners.
    fn spawn(dir: &Path, args: &[&str]) -> FlagProxy {
        let log = dir.join("proxy.log");
        let mut command = util::command();
        command
            .args(["proxy", "--log-format", "json"])
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("the proxy's log file"));
        let mut child = ChildGuard(Some(command.spawn().expect("spawn the proxy")));
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let bound = |key: &str| -> Option<SocketAddr> {
                text.lines()
                    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                    .find(|event| event["@message"] == "listening" && event["key"] == key)
                    .and_then(|event| event["address"].as_str()?.parse().ok())
            };
            if let (Some(listen), Some(metrics)) =
                (bound("proxy.listen"), bound("proxy.metrics_listen"))
            {
                return FlagProxy {
                    child,
                    log,
                    listen,
                    metrics,
                };
            }
            let exited = child
                .0
                .as_mut()
                .expect("started")
                .try_wait()
                .expect("try_wait");
            assert!(exited.is_none(), "the proxy exited ({exited:?}):\n{text}");
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the proxy did not listen within 30 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&self) {
        util::wait_until(Duration::from_secs(15), "the proxy's /readyz", || {
            util::http(self.metrics, "GET", "/readyz").status == 200
        });
    }

    /// SIGTERM; the exit code and the log.
    fn stop(mut self) -> (Option<i32>, String) {
        util::signal(self.child.pid(), Signal::SIGTERM);
        let (code, _) = self.child.wait(Duration::from_secs(15));
        (code, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// The app, as the proxy's upstream.
fn app(dir: &Path) -> RoleProcess {
    let config = util::write_file(dir, "app.hcl", "app {}\n");
    Launch::role("app", &[&config], &dir.join("app.log")).spawn()
}

/// A GET / through a fresh HTTP/1.1 connection with `identity`; `Err` when refused.
async fn get(
    address: SocketAddr,
    ca_pem: &str,
    identity: Option<&Pair>,
) -> Result<(StatusCode, String), String> {
    let mut client = Client::connect(address, client_config(ca_pem, H1, identity)).await?;
    client.get("/").await
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_with_flags_only_serves_tls_and_forwards_to_the_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("Flags CA");
    let pair = valid_pair(&ca);
    let cert = util::write_file(dir.path(), "tls.crt", &pair.cert);
    let key = util::write_file(dir.path(), "tls.key", &pair.key);
    let app = app(dir.path());
    // HOST:PORT, as ghostunnel's --target: plain HTTP.
    let upstream = app.address("app.listen").to_string();
    let proxy = FlagProxy::spawn(
        dir.path(),
        &[
            "--upstream",
            &upstream,
            "--cert",
            path(&cert),
            "--key",
            path(&key),
        ],
    );
    proxy.wait_ready();
    assert_eq!(
        get(proxy.listen, &ca.pem, None).await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_flags_override_the_files_proxy_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("Flags CA");
    let pair = valid_pair(&ca);
    let cert = util::write_file(dir.path(), "tls.crt", &pair.cert);
    let key = util::write_file(dir.path(), "tls.key", &pair.key);
    let app = app(dir.path());
    // Every value here but hsts would fail the test: nothing listens on port 1, the files do
    // not exist, and the test looks for the listeners on 127.0.0.1. The flags replace them.
    let config = util::write_file(
        dir.path(),
        "proxy.hcl",
        "proxy {\n  listen = \"127.0.0.2:1\"\n  metrics_listen = \"127.0.0.2:1\"\n  \
         upstream = \"http://127.0.0.1:1\"\n  cert_file = \"/nonexistent/tls.crt\"\n  \
         key_file = \"/nonexistent/tls.key\"\n  hsts = \"max-age=60\"\n}\n",
    );
    let upstream = format!("http://{}", app.address("app.listen"));
    let proxy = FlagProxy::spawn(
        dir.path(),
        &[
            "--config",
            path(&config),
            "--upstream",
            &upstream,
            "--cert",
            path(&cert),
            "--key",
            path(&key),
        ],
    );
    proxy.wait_ready();
    assert_eq!(proxy.listen.ip().to_string(), "127.0.0.1");
    assert_eq!(
        get(proxy.listen, &ca.pem, None).await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    // What no flag sets still comes from the file.
    let response = tokio::task::spawn_blocking({
        let ca_file = util::write_file(dir.path(), "ca.pem", &ca.pem);
        let port = proxy.listen.port();
        move || {
            std::process::Command::new("curl")
                .args(["--silent", "--show-error", "--include", "--max-time", "20"])
                .arg("--cacert")
                .arg(&ca_file)
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .arg(format!("https://localhost:{port}/"))
                .output()
                .expect("run curl")
        }
    })
    .await
    .expect("curl thread");
    let head = String::from_utf8_lossy(&response.stdout).to_lowercase();
    assert!(
        head.contains("strict-transport-security: max-age=60"),
        "{head}"
    );
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn proxy_flag_with_a_bad_value_exits_78_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let valid = util::write_file(
        dir.path(),
        "proxy.hcl",
        "proxy {\n  listen = \":8443\"\n}\n",
    );
    for (args, expected) in [
        (
            vec!["--listen", "localhost:443"],
            "--listen: proxy.listen: \"localhost:443\" is not an IP:port address",
        ),
        (
            vec!["--upstream", "ftp://127.0.0.1:80"],
            "--upstream: proxy.upstream: \"ftp://127.0.0.1:80\" is not an upstream",
        ),
        (
            vec!["--metrics-listen", "9102"],
            "--metrics-listen: proxy.metrics_listen: \"9102\" is not an IP:port address",
        ),
        (vec!["--cert", ""], "--cert: proxy.cert_file: "),
    ] {
        for with_file in [false, true] {
            let mut command = util::command();
            command.arg("proxy");
            if with_file {
                command.arg("--config").arg(&valid);
            }
            let output = command.args(&args).output().expect("run the proxy");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(78), "{args:?}: {stderr}");
            assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_client_ca_flag_refuses_a_client_without_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ca = ca("Flags CA");
    let pair = valid_pair(&server_ca);
    let cert = util::write_file(dir.path(), "tls.crt", &pair.cert);
    let key = util::write_file(dir.path(), "tls.key", &pair.key);
    let clients = ca("Flags Client CA");
    let client_ca = util::write_file(dir.path(), "clients.pem", &clients.pem);
    // The file asks for optional client certificates from another CA: --client-ca replaces
    // the CA and makes them required.
    let other = util::write_file(dir.path(), "other.pem", &server_ca.pem);
    let config = util::write_file(
        dir.path(),
        "proxy.hcl",
        &format!(
            "proxy {{\n  client_ca_file = \"{}\"\n  client_auth = \"optional\"\n}}\n",
            other.display()
        ),
    );
    let app = app(dir.path());
    let upstream = app.address("app.listen").to_string();
    let proxy = FlagProxy::spawn(
        dir.path(),
        &[
            "--config",
            path(&config),
            "--upstream",
            &upstream,
            "--cert",
            path(&cert),
            "--key",
            path(&key),
            "--client-ca",
            path(&client_ca),
        ],
    );
    proxy.wait_ready();
    let member = issue(&clients, &ecdsa_key(), -super::DAY, super::DAY, true);
    assert!(
        get(proxy.listen, &server_ca.pem, None).await.is_err(),
        "a client without a certificate is refused"
    );
    assert_eq!(
        get(proxy.listen, &server_ca.pem, Some(&member)).await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}
