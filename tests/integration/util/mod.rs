//! Helpers shared by the integration tests: the binary, free ports, a tiny HTTP client, and
//! (in submodules) the OpenBao bed and the Kubernetes TokenReview stand-in.
#![allow(dead_code)] // Each test module uses a different subset.

pub mod bao;
pub mod cluster;
pub mod faultproxy;
pub mod jsonpatch;
pub mod postgres;
pub mod recorder;
pub mod role;
pub mod tokenreview;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `pki-sidecar` binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pki-sidecar")
}

/// The repository root; fixture paths in expected messages are relative to it.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `pki-sidecar` command run from the repository root with no Vault/OpenBao environment, so
/// the developer's own `VAULT_ADDR` cannot change a result.
pub fn command() -> Command {
    let mut command = Command::new(bin());
    command.current_dir(repo());
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULT_") || name.starts_with("BAO_") || name == "PKI_SIDECAR_CONFIG" {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// A loopback port that was free a moment ago (for the binary, which must be given a port).
///
/// Taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768-60999 by
/// default), which serves every bind to port 0 and every outgoing connection's local port: a
/// port picked there could be taken by any of those before the binary binds it ("Address
/// already in use", a test failing now and then on a busy machine). Below it, only this
/// function hands ports out, each once per process, an even offset apart so that the next
/// port up (OpenBao's dev cluster listener) is never handed out too. Where the range leaves
/// no room below it, a port the kernel picks is used, as before.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    if ephemeral_low >= LOW + 2_000 {
        let slots = (ephemeral_low - LOW) / 2;
        // Processes started together (a test binary, the OpenBao it spawns) start apart.
        let start = std::process::id().wrapping_mul(7_919) % slots;
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            if n >= slots {
                break;
            }
            let port = u16::try_from(LOW + 2 * ((start + n) % slots)).expect("below 65536");
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `done` every 50 ms until it holds; panics with `what` after `limit`. Returns the time
/// it took. Tests wait for the condition they assert, never for a fixed time.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Waits until something accepts connections on `address`, or panics after `limit`.
pub fn wait_for_port(address: SocketAddr, limit: Duration) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < limit,
            "nothing listening on {address} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub fn http(address: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let mut stream =
        TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

/// Parses a complete HTTP/1.1 response (Content-Length or read-to-close bodies).
pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Kills the child if a test panics before it stopped it.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Starts `command` with piped stdout/stderr.
    pub fn spawn(mut command: Command) -> ChildGuard {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        ChildGuard(Some(command.spawn().expect("spawn pki-sidecar")))
    }

    /// The process id, for signals.
    pub fn pid(&self) -> i32 {
        self.0.as_ref().expect("running").id() as i32
    }

    /// Waits up to `limit` for exit; returns the exit code and stderr.
    pub fn wait(&mut self, limit: Duration) -> (Option<i32>, String) {
        let mut child = self.0.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return (status.code(), stderr);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("process did not exit within {limit:?}; stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes `text` to a new file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

/// Runs `promtool check metrics` on `text`; `None` when promtool is not installed, which is
/// said on stderr, and is a failure when `PKI_SIDECAR_REQUIRE_PROMTOOL` is set (CI sets it):
/// no caller can skip the check silently. Vault Agent's own counters (`vault_agent_auth_success`
/// and the like, `bao_agent_...`) are left out: their names are Vault Agent's, without the
/// `_total` promtool asks of a counter, kept so that alerts written for them keep working.
pub fn promtool_check(text: &str) -> Option<(bool, String)> {
    let vault_agents = |line: &str| {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        ["vault_agent_", "bao_agent_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
    };
    let text: String = text
        .lines()
        .filter(|line| !vault_agents(line))
        .map(|line| format!("{line}\n"))
        .collect();
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            assert!(
                std::env::var_os("PKI_SIDECAR_REQUIRE_PROMTOOL").is_none(),
                "promtool is required here (PKI_SIDECAR_REQUIRE_PROMTOOL) but cannot run: {err}; \
                 run scripts/install-test-deps.sh"
            );
            eprintln!(
                "SKIPPED promtool check metrics: promtool cannot run ({err}); \
                 scripts/install-test-deps.sh installs it"
            );
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool output");
    let mut report = String::from_utf8_lossy(&output.stdout).to_string();
    report.push_str(&String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), report))
}

/// The value of the sample `series` (name and labels exactly as exported) in a scrape. A
/// series that is missing fails the test, with the scrape: reading it as 0 would let a renamed
/// metric or a lost label pass every "stays at 0" assertion.
pub fn metric(text: &str, series: &str) -> f64 {
    try_metric(text, series).unwrap_or_else(|| panic!("no series {series} in the scrape:\n{text}"))
}

/// The value of the sample `series` in a scrape, `None` while it is not exported (for waits on
/// a series that appears later, such as one labelled by a certificate's serial).
pub fn try_metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Whether this process runs as root. A test needing root (mount namespaces, tmpfs) calls this
/// first: without root it is skipped with a message, unless `PKI_SIDECAR_REQUIRE_ROOT` is set
/// (CI sets it), in which case it fails rather than pass without having run.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("PKI_SIDECAR_REQUIRE_ROOT").is_none(),
        "{test} needs root (mount namespaces) and PKI_SIDECAR_REQUIRE_ROOT is set"
    );
    eprintln!(
        "SKIPPED {test}: needs root (run as root, or set PKI_SIDECAR_REQUIRE_ROOT=1 to fail)"
    );
    false
}

/// The resident set size of process `pid` (`VmRSS`) and its peak (`VmHWM`), in KiB.
pub fn rss_kib(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}
