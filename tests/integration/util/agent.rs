//! The one way the integration tests run `pki-sidecar agent` as a process, as the Pod does.
//!
//! The agent binds its own metrics listener on port 0: [`Launch::spawn`] adds a last config
//! layer setting `telemetry.metrics_listen = "127.0.0.1:0"`, and reads the address the agent
//! bound from its `listening` log line. No port is chosen in advance, so no other test can take
//! it in between. The agent logs JSON to a file (a pipe nobody reads would fill and block it),
//! which [`AgentProcess::log`] reads and [`AgentProcess::stop`] returns.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::ChildGuard;

/// How to start one agent.
pub struct Launch {
    configs: Vec<PathBuf>,
    vault: String,
    log: PathBuf,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    args: Vec<String>,
}

impl Launch {
    /// `pki-sidecar agent` on `configs` (in order) against the Vault at `vault`, logging to
    /// `log` (the port-0 telemetry layer is written beside it).
    pub fn new(configs: &[&Path], vault: &str, log: &Path) -> Launch {
        Launch {
            configs: configs.iter().map(|path| path.to_path_buf()).collect(),
            vault: vault.to_string(),
            log: log.to_path_buf(),
            env: Vec::new(),
            wrapper: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Sets an environment variable for the agent.
    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Runs the agent behind `wrapper`, a command line that ends by exec'ing the rest.
    pub fn wrapper(mut self, wrapper: &[String]) -> Launch {
        self.wrapper = wrapper.to_vec();
        self
    }

    /// Adds command-line arguments after `agent`.
    pub fn args(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(|arg| arg.to_string()));
        self
    }

    /// Starts the agent and waits (up to 30 s) for its metrics listener's address.
    pub fn spawn(self) -> AgentProcess {
        let dir = self.log.parent().expect("the log file's directory");
        let telemetry = super::write_file(
            dir,
            "telemetry-port-0.hcl",
            "telemetry {\n  metrics_listen = \"127.0.0.1:0\"\n}\n",
        );
        let mut command = if let Some((program, args)) = self.wrapper.split_first() {
            let mut command = Command::new(program);
            command.args(args).arg(super::bin());
            command.current_dir(super::repo()).env_remove("RUST_LOG");
            command
        } else {
            super::command()
        };
        command
            .args(["agent", "--log-format", "json"])
            .args(&self.args)
            .env("VAULT_ADDR", &self.vault)
            .stdout(Stdio::null())
            .stderr(File::create(&self.log).expect("the agent's log file"));
        for config in self.configs.iter().chain([&telemetry]) {
            command.arg("--config").arg(config);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let child = ChildGuard(Some(command.spawn().expect("spawn the agent")));
        let mut agent = AgentProcess {
            child,
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: self.log,
        };
        agent.metrics = agent.wait_for_metrics_address(Duration::from_secs(30));
        agent
    }
}

/// A running agent; killed if the test ends without stopping it.
pub struct AgentProcess {
    child: ChildGuard,
    metrics: SocketAddr,
    log: PathBuf,
}

impl AgentProcess {
    /// The address the agent's metrics listener bound, from its log.
    fn wait_for_metrics_address(&mut self, limit: Duration) -> SocketAddr {
        let start = Instant::now();
        loop {
            let log = self.log();
            let bound = log
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|event| {
                    event["message"] == "listening" && event["key"] == "telemetry.metrics_listen"
                })
                .and_then(|event| event["address"].as_str()?.parse().ok());
            if let Some(address) = bound {
                return address;
            }
            assert!(
                self.running(),
                "the agent exited before listening; its log:\n{log}"
            );
            assert!(
                start.elapsed() < limit,
                "the agent did not listen within {limit:?}; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The metrics listener's address.
    pub fn metrics(&self) -> SocketAddr {
        self.metrics
    }

    /// The process id, for signals.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// `/metrics` now.
    pub fn scrape(&self) -> String {
        super::http(self.metrics, "GET", "/metrics").body
    }

    /// The sample `series` now; a missing series fails the test ([`super::metric`]).
    pub fn metric(&self, series: &str) -> f64 {
        super::metric(&self.scrape(), series)
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        std::net::TcpStream::connect_timeout(&self.metrics, Duration::from_millis(200)).is_ok()
            && super::http(self.metrics, "GET", "/readyz").status == 200
    }

    /// Waits until `/readyz` answers 200, or fails the test after `limit` with the log.
    pub fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        while !self.ready() {
            assert!(
                start.elapsed() < limit,
                "agent not ready after {limit:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        let child = self.child.0.as_mut().expect("started");
        child.try_wait().expect("try_wait").is_none()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; waits up to 15 s for the exit; returns the exit code and the whole log.
    pub fn stop(mut self) -> (Option<i32>, String) {
        super::signal(self.child.pid(), Signal::SIGTERM);
        let (code, _) = self.child.wait(Duration::from_secs(15));
        (code, self.log())
    }

    /// Waits up to `limit` for the agent to exit by itself; the exit code and the whole log.
    pub fn wait_exit(mut self, limit: Duration) -> (Option<i32>, String) {
        let (code, _) = self.child.wait(limit);
        (code, self.log())
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        super::signal(self.child.pid(), Signal::SIGKILL);
        let _ = self.child.wait(Duration::from_secs(15));
    }
}
