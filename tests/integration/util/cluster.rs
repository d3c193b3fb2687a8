//! A real OpenBao cluster for the fault suite: three `bao server` processes on loopback with
//! integrated (raft) storage, each with its own data directory, initialised with one unseal key,
//! and haproxy in front sending every request to the active node only, as a Kubernetes Service
//! selecting the active Pod does (haproxy's health check asks each node's `sys/health`, which
//! answers 200 on the active node, 429 on a standby, 503 when sealed). Through haproxy the
//! cluster is configured like the test bed ([`bao::attach`]), so an agent pointed at
//! [`Cluster::addr`] sees the same mounts and roles as one pointed at the dev server.
//!
//! Nodes can be killed ([`Cluster::kill`]), sealed and unsealed one by one. Every process runs
//! under a watchdog (as the bed's do), so none outlives the test binary, however it ends.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use super::bao::{self, Bed};

/// How long a node may take to listen, an election to settle, haproxy to see the active node.
const SETTLE: Duration = Duration::from_secs(60);
/// How often [`Cluster::start`] picks fresh ports after losing one to another process.
const START_ATTEMPTS: u32 = 3;
/// haproxy's health check interval: a node's change of state shows within about this long.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Like [`bao::WATCHDOG`], with the program's output going to the file `$LOG` and its pid
/// printed first, so that a test can SIGKILL the program itself (not the shell).
const WATCHDOG: &str = r#""$0" "$@" >"$LOG" 2>&1 & pid=$!; echo "$pid"; exec >&-; read _ignored; kill "$pid" 2>/dev/null; wait "$pid""#;

/// One program under [`WATCHDOG`].
struct Watched {
    watchdog: Child,
    watchdog_stdin: Option<ChildStdin>,
    pid: i32,
    log: PathBuf,
}

impl Watched {
    fn spawn(program: &Path, args: &[String], log: &Path) -> Watched {
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(program)
            .args(args)
            .env("LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Only the shell's own reports ("Killed"): the program's output goes to `$LOG`.
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run `sh` to start {}: {e}", program.display()));
        let stdout = watchdog.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the watchdog's pid line");
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the watchdog printed {line:?}, not a pid"));
        Watched {
            watchdog_stdin: watchdog.stdin.take(),
            watchdog,
            pid,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        matches!(self.watchdog.try_wait(), Ok(Some(_)))
    }

    /// SIGKILLs the program (not the watchdog), then lets the watchdog go and waits for it,
    /// which has reaped the program by then.
    fn kill(self) {
        super::signal(self.pid, Signal::SIGKILL);
        self.stop();
    }

    /// Tells the watchdog to stop the program (SIGTERM) and waits for both.
    fn stop(mut self) {
        self.watchdog_stdin.take();
        let _ = self.watchdog.wait();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.watchdog_stdin.take().is_some() {
            let _ = self.watchdog.wait();
        }
    }
}

/// One `bao server` of the cluster.
pub struct Node {
    /// `node1`..`node3`, its raft node id.
    pub name: String,
    /// Its API listener (`api_addr`).
    pub api: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    /// `None` once killed.
    process: Option<Watched>,
}

impl Node {
    /// `http://127.0.0.1:PORT`, as `sys/leader` names it.
    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }
}

/// The cluster, haproxy in front of it, and the bed configured through haproxy.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    haproxy: Option<Watched>,
    haproxy_address: SocketAddr,
    unseal_key: String,
    root_token: String,
    /// `None` until the cluster is configured, the last step of [`Cluster::start`].
    bed: Option<Bed>,
}

impl Cluster {
    /// Starts three nodes, initialises and unseals the first, joins and unseals the other two,
    /// waits until all three are raft voters (so the cluster survives losing one), starts haproxy
    /// and configures the cluster through it. Takes 16-18 s on a busy 2-core machine, about 10 s
    /// of it waiting for autopilot to promote the joined nodes.
    pub fn start() -> Cluster {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Cluster::try_start() {
                Ok(cluster) => {
                    eprintln!(
                        "OpenBao cluster ready behind haproxy at {} in {:?} ({})",
                        cluster.addr(),
                        started.elapsed(),
                        cluster
                            .nodes
                            .iter()
                            .map(|node| format!("{} {}", node.name, node.api))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return cluster;
                }
                Err(log)
                    if attempts < START_ATTEMPTS
                        && log.to_lowercase().contains("address already in use") =>
                {
                    eprintln!("a cluster port was taken meanwhile; starting again on fresh ports");
                }
                Err(log) => panic!("the OpenBao cluster did not start:\n{log}"),
            }
        }
    }

    /// [`Cluster::start`] once; `Err` with the output of a process that exited early.
    fn try_start() -> Result<Cluster, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        // Seven ports held at once so they are distinct, then released for bao and haproxy,
        // which must be told theirs (bao reports its configured address, not the bound one).
        let ports: Vec<TcpListener> = (0..7)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let addresses: Vec<SocketAddr> = ports
            .iter()
            .map(|l| l.local_addr().expect("local address"))
            .collect();
        drop(ports);
        let bao = bao::bao_binary();
        let mut nodes: Vec<Node> = (0..3)
            .map(|i| {
                let name = format!("node{}", i + 1);
                let data = dir.path().join(&name);
                std::fs::create_dir(&data).expect("the node's data directory");
                let (api, cluster) = (addresses[2 * i], addresses[2 * i + 1]);
                let config = super::write_file(
                    dir.path(),
                    &format!("{name}.hcl"),
                    &format!(
                        "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"{name}\"\n  \
                         # The tightest raft timings: elections within a second or two.\n  \
                         performance_multiplier = 1\n}}\n\
                         listener \"tcp\" {{\n  address = \"{api}\"\n  \
                         cluster_address = \"{cluster}\"\n  tls_disable = true\n}}\n\
                         api_addr = \"http://{api}\"\ncluster_addr = \"https://{cluster}\"\n\
                         disable_mlock = true\n",
                        data = data.display()
                    ),
                );
                let log = dir.path().join(format!("{name}.log"));
                Node {
                    name,
                    api,
                    config,
                    log,
                    process: None,
                }
            })
            .collect();
        for node in &mut nodes {
            node.process = Some(start_node(&bao, node));
        }
        let haproxy_address = addresses[6];
        let mut cluster = Cluster {
            dir,
            nodes,
            haproxy: None,
            haproxy_address,
            unseal_key: String::new(),
            root_token: String::new(),
            bed: None,
        };
        for i in 0..3 {
            cluster.wait_listening(i)?;
        }

        let init = cluster.bao(
            0,
            None,
            &["operator", "init"],
            &["-key-shares=1", "-key-threshold=1", "-format=json"],
        );
        let init: Value = serde_json::from_str(&init).expect("`bao operator init` prints JSON");
        let key = init["unseal_keys_b64"][0].as_str().expect("an unseal key");
        let root_token = init["root_token"]
            .as_str()
            .expect("a root token")
            .to_owned();
        cluster.unseal_key = key.to_owned();
        cluster.root_token = root_token.clone();
        cluster.unseal(0);
        cluster.wait_for("node1 active", |c| c.health(0) == Some(200));
        // Autopilot promotes a joined node to voter once it has been healthy this long (10 s by
        // default), on its next round (about every 10 s); a cluster of one voter and two
        // non-voters would not survive its leader.
        cluster.bao(
            0,
            Some(&root_token),
            &["operator", "raft", "autopilot", "set-config"],
            &["-server-stabilization-time=1s"],
        );
        for i in 1..3 {
            let leader = cluster.nodes[0].url();
            cluster.bao(i, None, &["operator", "raft", "join"], &[&leader]);
            cluster.unseal(i);
        }
        cluster.wait_for("three raft voters, failure tolerance 1", |c| {
            let state = c.bao(
                0,
                Some(&root_token),
                &["operator", "raft", "autopilot", "state"],
                &["-format=json"],
            );
            let state: Value = serde_json::from_str(&state).unwrap_or_default();
            state["FailureTolerance"].as_u64() == Some(1)
                && state["Voters"].as_array().map(Vec::len) == Some(3)
        });

        cluster.start_haproxy()?;
        cluster.bed = Some(bao::attach(haproxy_address, &root_token));
        Ok(cluster)
    }

    /// haproxy's address as a URL: what the agent's `VAULT_ADDR` is.
    pub fn addr(&self) -> &str {
        self.bed().addr()
    }

    /// The bed configured through haproxy: mounts, roles, root requests.
    pub fn bed(&self) -> &Bed {
        self.bed.as_ref().expect("configured by Cluster::start")
    }

    /// The HTTP status of `GET /v1/sys/health` on node `i` (200 active, 429 standby, 503
    /// sealed), or `None` when it does not answer.
    pub fn health(&self, i: usize) -> Option<u16> {
        health_at(self.nodes[i].api)
    }

    /// The status haproxy answers `GET /v1/sys/health` with: 200 while it has an active node
    /// to send it to, 503 when it has none.
    pub fn health_through_haproxy(&self) -> Option<u16> {
        health_at(self.haproxy_address)
    }

    /// The node answering `sys/health` 200, if any.
    pub fn active(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.health(i) == Some(200))
    }

    /// The leader's API address as node `i` sees it (`sys/leader`'s `leader_address`), when it
    /// answers and knows one.
    pub fn leader_seen_by(&self, i: usize) -> Option<String> {
        let response = get_at(self.nodes[i].api, "/v1/sys/leader")?;
        let body: Value = serde_json::from_str(&response.body).ok()?;
        body["leader_address"]
            .as_str()
            .filter(|address| !address.is_empty())
            .map(str::to_owned)
    }

    /// SIGKILLs node `i` (no chance to step down or flush anything), and waits until it is gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(process) = self.nodes[i].process.take() {
            process.kill();
        }
    }

    /// `bao operator seal` on node `i` itself (so it seals that node, active or standby).
    pub fn seal(&self, i: usize) {
        self.bao(i, Some(&self.root_token), &["operator", "seal"], &[]);
    }

    /// Seals every node, all at once, and waits until each answers 503.
    ///
    /// One by one is racy: sealing the standbys first leaves the active node without a raft
    /// quorum, and about a second later it steps down, after which its own seal fails ("internal
    /// error": with no active node it cannot check the token); sealing it first hands the lead
    /// to a standby. A busy machine can stretch the gap between two `bao` commands past that
    /// second, so the seals are sent together, then a node not sealed yet (a standby elected in
    /// the meantime) is sealed again until a deadline.
    pub fn seal_all(&self) {
        let seals: Vec<_> = (0..self.nodes.len())
            .map(|i| {
                self.bao_command(i, Some(&self.root_token), &["operator", "seal"], &[])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run the bao CLI")
            })
            .collect();
        let mut failures: Vec<String> = Vec::new();
        for (i, seal) in seals.into_iter().enumerate() {
            let output = seal.wait_with_output().expect("wait for the bao CLI");
            if !output.status.success() {
                failures.push(format!(
                    "{}: {}",
                    self.nodes[i].name,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.nodes.len() {
            while self.health(i) != Some(503) {
                assert!(
                    Instant::now() < deadline,
                    "node {} is not sealed (health {:?}); seal failures: {failures:?}\nits log:\n{}",
                    self.nodes[i].name,
                    self.health(i),
                    self.node_log(i)
                );
                let retry = self
                    .bao_command(i, Some(&self.root_token), &["operator", "seal"], &[])
                    .output()
                    .expect("run the bao CLI");
                if !retry.status.success() {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// `bao operator unseal` on node `i` with the cluster's one key.
    pub fn unseal(&self, i: usize) {
        self.bao(i, None, &["operator", "unseal"], &[&self.unseal_key]);
    }

    /// What node `i` has logged, for failure messages.
    pub fn node_log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// The requests whose path contains `path`, in order, from haproxy's request log (`option
    /// httplog`: `... frontend backend/server Tq/Tw/Tc/Tr/Ta STATUS ... "METHOD PATH
    /// HTTP/1.1"`): the node that answered (`<NOSRV>` when haproxy had none to send it to), and
    /// the status.
    pub fn haproxy_answers(&self, path: &str) -> Vec<(String, u16)> {
        self.haproxy_log()
            .lines()
            .filter(|line| {
                line.split('"')
                    .nth(1)
                    .and_then(|request| request.split(' ').nth(1))
                    .is_some_and(|target| target.contains(path))
            })
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let timers = words
                    .iter()
                    .position(|word| word.matches('/').count() == 4)?;
                let (_, server) = words.get(timers.checked_sub(1)?)?.split_once('/')?;
                Some((server.to_owned(), words.get(timers + 1)?.parse().ok()?))
            })
            .collect()
    }

    /// What haproxy has logged.
    pub fn haproxy_log(&self) -> String {
        self.haproxy.as_ref().map(Watched::log).unwrap_or_default()
    }

    /// Runs `bao WORDS -address=NODE ARGS` against node `i` (with `token` as `BAO_TOKEN`):
    /// `words` the subcommand, `args` its flags and then its positional arguments (Go's flag
    /// parsing stops at the first of those). Returns stdout; panics, with the node's log, when
    /// the command fails.
    fn bao(&self, i: usize, token: Option<&str>, words: &[&str], args: &[&str]) -> String {
        let output = self
            .bao_command(i, token, words, args)
            .output()
            .expect("run the bao CLI");
        assert!(
            output.status.success(),
            "`bao {}` on {} failed: {}{}\nits log:\n{}",
            words.join(" "),
            self.nodes[i].name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.node_log(i)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The command [`Cluster::bao`] runs: no `VAULT_*`/`BAO_*` from the test's environment.
    fn bao_command(&self, i: usize, token: Option<&str>, words: &[&str], args: &[&str]) -> Command {
        let mut command = Command::new(bao::bao_binary());
        command
            .args(words)
            .arg(format!("-address={}", self.nodes[i].url()))
            .args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("VAULT_") || name.starts_with("BAO_") {
                command.env_remove(name);
            }
        }
        if let Some(token) = token {
            command.env("BAO_TOKEN", token);
        }
        command
    }

    /// Waits until node `i` answers `sys/health` with 501 (not initialised: a fresh node, not
    /// some other server that took its port); `Err` with its log if it exited meanwhile (e.g.
    /// its port was taken).
    fn wait_listening(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE;
        while self.health(i) != Some(501) {
            let exited = self.nodes[i].process.as_mut().is_none_or(Watched::exited);
            if exited || Instant::now() > deadline {
                let node = &self.nodes[i];
                return Err(format!(
                    "{} did not answer on {}; its log:\n{}",
                    node.name,
                    node.api,
                    self.node_log(i)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + SETTLE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "OpenBao cluster: {what}: not after {SETTLE:?}; node1's log:\n{}",
                self.node_log(0)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// haproxy on [`Cluster::haproxy_address`], checking each node's `sys/health` every
    /// [`CHECK_INTERVAL`] and sending requests only to the one answering 200.
    fn start_haproxy(&mut self) -> Result<(), String> {
        let servers: String = self
            .nodes
            .iter()
            .map(|node| {
                format!(
                    "  server {} {} check inter {}ms fall 1 rise 1\n",
                    node.name,
                    node.api,
                    CHECK_INTERVAL.as_millis()
                )
            })
            .collect();
        let config = super::write_file(
            self.dir.path(),
            "haproxy.cfg",
            &format!(
                "global\n  maxconn 256\n  log stdout format raw local0\n\
                 defaults\n  mode http\n  log global\n  option httplog\n  \
                 timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  \
                 timeout check 1s\n\
                 frontend vault\n  bind {address}\n  default_backend active\n\
                 backend active\n  option httpchk GET /v1/sys/health\n  \
                 http-check expect status 200\n{servers}",
                address = self.haproxy_address
            ),
        );
        let mut haproxy = Watched::spawn(
            &haproxy_binary(),
            &[
                "-db".to_owned(),
                "-f".to_owned(),
                config.display().to_string(),
            ],
            &self.dir.path().join("haproxy.log"),
        );
        // Until haproxy has seen the active node; and still runs then (it exits at once when
        // it cannot bind, which leaves whoever took its port answering).
        let deadline = Instant::now() + SETTLE;
        while health_at(self.haproxy_address) != Some(200) || haproxy.exited() {
            if haproxy.exited() || Instant::now() > deadline {
                return Err(format!(
                    "haproxy did not forward to the active node on {} (is it installed? \
                     scripts/install-test-deps.sh installs it); its log:\n{}",
                    self.haproxy_address,
                    haproxy.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.haproxy = Some(haproxy);
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(haproxy) = self.haproxy.take() {
            haproxy.stop();
        }
        for node in &mut self.nodes {
            if let Some(process) = node.process.take() {
                process.stop();
            }
        }
    }
}

/// `HAPROXY_BIN`, else `haproxy` on PATH, else Debian's `/usr/sbin/haproxy` (a user's PATH
/// often lacks `/usr/sbin`).
fn haproxy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HAPROXY_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|directory| directory.join("haproxy"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"))
}

fn start_node(bao: &Path, node: &Node) -> Watched {
    Watched::spawn(
        bao,
        &[
            "server".to_owned(),
            format!("-config={}", node.config.display()),
        ],
        &node.log,
    )
}

/// `GET /v1/sys/health`'s status at `address`, or `None` when nothing answers.
fn health_at(address: SocketAddr) -> Option<u16> {
    get_at(address, "/v1/sys/health").map(|response| response.status)
}

/// One `GET` with `Connection: close`; `None` when the connection fails or times out.
fn get_at(address: SocketAddr, path: &str) -> Option<super::HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    text.contains("\r\n\r\n")
        .then(|| super::parse_response(&raw))
}
