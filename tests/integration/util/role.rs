//! The one way the integration tests run a role (`pki-sidecar agent`, `proxy` or `app`) as a
//! process, as the Pod does.
//!
//! The role binds its own listeners on port 0: [`Launch::spawn`] adds a last config layer
//! setting each listener the role has to `127.0.0.1:0`, and reads the addresses the role bound
//! from its `listening` log lines. No port is chosen in advance, so no other test can take it in
//! between. The role logs JSON to a file (a pipe nobody reads would fill and block it), which
//! [`RoleProcess::log`] reads and [`RoleProcess::stop`] returns.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::ChildGuard;

/// The config keys of a role's listeners, the metrics listener first.
fn listeners(role: &str) -> &'static [&'static str] {
    match role {
        "agent" => &["telemetry.metrics_listen"],
        "proxy" => &["proxy.metrics_listen", "proxy.listen"],
        "app" => &["app.metrics_listen", "app.listen"],
        other => panic!("no such role: {other}"),
    }
}

/// How to start one role.
pub struct Launch {
    role: String,
    configs: Vec<PathBuf>,
    vault: Option<String>,
    log: PathBuf,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    args: Vec<String>,
}

impl Launch {
    /// `pki-sidecar agent` on `configs` (in order) against the Vault at `vault`, logging to
    /// `log` (the port-0 layer is written beside it).
    pub fn agent(configs: &[&Path], vault: &str, log: &Path) -> Launch {
        let mut launch = Launch::role("agent", configs, log);
        launch.vault = Some(vault.to_string());
        launch
    }

    /// `pki-sidecar ROLE` on `configs` (in order), logging to `log`.
    pub fn role(role: &str, configs: &[&Path], log: &Path) -> Launch {
        Launch {
            role: role.to_string(),
            configs: configs.iter().map(|path| path.to_path_buf()).collect(),
            vault: None,
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

    /// Starts the role and waits (up to 30 s) for the addresses of its listeners.
    pub fn spawn(self) -> RoleProcess {
        let dir = self.log.parent().expect("the log file's directory");
        let keys = listeners(&self.role);
        // One block per name: a block given twice in one file is a config error.
        let block = keys[0].split_once('.').expect("block.key").0;
        let mut layer = format!("{block} {{\n");
        for key in keys {
            let (in_block, name) = key.split_once('.').expect("block.key");
            assert_eq!(in_block, block, "a role's listeners are in one block");
            layer.push_str(&format!("  {name} = \"127.0.0.1:0\"\n"));
        }
        layer.push_str("}\n");
        let port_0 = super::write_file(dir, &format!("{}-port-0.hcl", self.role), &layer);
        let mut command = if let Some((program, args)) = self.wrapper.split_first() {
            let mut command = Command::new(program);
            command.args(args).arg(super::bin());
            command.current_dir(super::repo()).env_remove("RUST_LOG");
            command
        } else {
            super::command()
        };
        command
            .args([self.role.as_str(), "--log-format", "json"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(File::create(&self.log).expect("the role's log file"));
        if let Some(vault) = &self.vault {
            command.env("VAULT_ADDR", vault);
        }
        for config in self.configs.iter().chain([&port_0]) {
            command.arg("--config").arg(config);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let child = ChildGuard(Some(command.spawn().expect("spawn a role")));
        let mut process = RoleProcess {
            child,
            addresses: Vec::new(),
            log: self.log,
        };
        process.addresses = process.wait_for_addresses(keys, Duration::from_secs(30));
        process
    }
}

/// The agent, as [`Launch::agent`] starts it.
pub type AgentProcess = RoleProcess;

/// A running role; killed if the test ends without stopping it.
pub struct RoleProcess {
    child: ChildGuard,
    /// Each listener's config key and the address it bound, the metrics listener first.
    addresses: Vec<(&'static str, SocketAddr)>,
    log: PathBuf,
}

impl RoleProcess {
    /// The addresses the role's listeners bound (`keys`), from its log.
    fn wait_for_addresses(
        &mut self,
        keys: &'static [&'static str],
        limit: Duration,
    ) -> Vec<(&'static str, SocketAddr)> {
        let start = Instant::now();
        loop {
            let log = self.log();
            let events: Vec<serde_json::Value> = log
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .filter(|event: &serde_json::Value| event["@message"] == "listening")
                .collect();
            let bound: Option<Vec<(&'static str, SocketAddr)>> = keys
                .iter()
                .map(|key| {
                    events
                        .iter()
                        .find(|event| event["key"] == *key)
                        .and_then(|event| event["address"].as_str()?.parse().ok())
                        .map(|address| (*key, address))
                })
                .collect();
            if let Some(bound) = bound {
                return bound;
            }
            assert!(
                self.running(),
                "the role exited before listening; its log:\n{log}"
            );
            assert!(
                start.elapsed() < limit,
                "the role did not listen within {limit:?}; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The metrics listener's address.
    pub fn metrics(&self) -> SocketAddr {
        self.addresses[0].1
    }

    /// The address the listener `key` (`proxy.listen`, `app.listen`) bound.
    pub fn address(&self, key: &str) -> SocketAddr {
        self.addresses
            .iter()
            .find(|(bound, _)| *bound == key)
            .unwrap_or_else(|| panic!("no listener {key}"))
            .1
    }

    /// The process id, for signals.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// `/metrics` now.
    pub fn scrape(&self) -> String {
        super::http(self.metrics(), "GET", "/metrics").body
    }

    /// The sample `series` now; a missing series fails the test ([`super::metric`]).
    pub fn metric(&self, series: &str) -> f64 {
        super::metric(&self.scrape(), series)
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        std::net::TcpStream::connect_timeout(&self.metrics(), Duration::from_millis(200)).is_ok()
            && super::http(self.metrics(), "GET", "/readyz").status == 200
    }

    /// Waits until `/readyz` answers 200, or fails the test after `limit` with the log.
    pub fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        while !self.ready() {
            assert!(
                start.elapsed() < limit,
                "not ready after {limit:?}; its log:\n{}",
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
