//! The README's Kubernetes walkthrough and its examples, run from the README itself: the `sh`
//! blocks are read out of `README.md` and run in order, so the document and what is tested
//! cannot drift apart. What needs a cluster is stood in for as the Pod tests do
//! ([`crate::pod::runner`]): `kubectl apply -k DIR` is `kubectl kustomize DIR` validated against
//! the Kubernetes schemas and its Deployment run as a Pod in a network namespace; a
//! port-forward is a TCP forwarder to the Pod's port; `kubectl exec` runs the command in that
//! container. Vault is a bare OpenBao dev server configured by `deploy/vault/setup.sh`, as the
//! walkthrough's first step does.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::deploy::{BareVault, validate_rendered};
use crate::pod::runner::{EventKind, Inputs, PodHarness, PodSpec, pod_of_workload, require_root};
use crate::util::{self, bao};

/// The walkthrough's heading in README.md.
pub const WALKTHROUGH: &str = "## Walkthrough: the seed's setup with this image";

/// The fenced `sh` blocks of the README section under `heading`, up to the next heading (its
/// subsections are sections of their own), each as its command lines, trimmed, comment lines
/// left out.
pub fn readme_sh_blocks(heading: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(util::repo().join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| l.trim_end() != heading);
    assert!(
        lines.next().is_some(),
        "no heading {heading:?} in README.md"
    );
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut in_other_fence = false;
    for line in lines {
        let text = line.trim();
        if current.is_none() && !in_other_fence && line.starts_with('#') {
            let depth = line.chars().take_while(|c| *c == '#').count();
            if line[depth..].starts_with(' ') {
                break;
            }
        }
        match (&mut current, text) {
            (None, "```sh") if !in_other_fence => current = Some(Vec::new()),
            (None, fence) if fence.starts_with("```") => in_other_fence = !in_other_fence,
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), text) if !text.is_empty() && !text.starts_with('#') => {
                block.push(text.to_owned());
            }
            _ => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block under {heading}");
    blocks
}

/// Where the walkthrough's commands run: a directory of the user's (`root.pem` lands there)
/// with the repository's `deploy/` in it, the `vault` CLI (OpenBao's `bao`, which takes the
/// same arguments) on `PATH`, and Vault configured by step 1.
pub struct Walk {
    pub vault: BareVault,
    pub dir: tempfile::TempDir,
    path: String,
}

impl Walk {
    /// A bare OpenBao dev server and a user's directory; nothing run yet.
    pub fn new() -> Walk {
        let vault = BareVault::start();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(util::repo().join("deploy"), dir.path().join("deploy")).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // `vault` as the walkthrough writes it: OpenBao's CLI, given the VAULT_* variables.
        let shim = bin.join("vault");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\nBAO_ADDR=${{BAO_ADDR:-$VAULT_ADDR}} BAO_TOKEN=${{BAO_TOKEN:-$VAULT_TOKEN}} exec '{}' \"$@\"\n",
                bao::bao_binary().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}:{}",
            bin.display(),
            bao::bao_binary().parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Walk { vault, dir, path }
    }

    /// The walkthrough's step 1 block, run by `bash` as written but for the user's own values:
    /// Vault's address and token, and the API server (the bed's TokenReview stand-in, whose CA
    /// is given as `KUBERNETES_CA_CERT_FILE`, as the README allows). Returns its stdout.
    pub fn configure_vault(&self, block: &[String]) -> String {
        let mut script = block.join("\n");
        for (theirs, ours) in [
            (
                "VAULT_ADDR=https://vault.home",
                format!("VAULT_ADDR={}", self.vault.address),
            ),
            ("VAULT_TOKEN=...", "VAULT_TOKEN=root".to_owned()),
            (
                "KUBERNETES_HOST=https://192.168.0.20:6443",
                format!("KUBERNETES_HOST={}", bao::bed().token_review().url()),
            ),
        ] {
            assert_eq!(
                script.matches(theirs).count(),
                1,
                "step 1 sets {theirs:?} once: {script}"
            );
            script = script.replace(theirs, &ours);
        }
        let ca = util::write_file(self.dir.path(), "k8s-ca.pem", bao::bed().root_ca_pem());
        let output = self
            .bash(&script)
            .env("KUBERNETES_CA_CERT_FILE", &ca)
            .output()
            .expect("run bash");
        assert!(
            output.status.success(),
            "step 1:\n{script}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `bash -c SCRIPT` in the user's directory with errors fatal, no Vault in the environment
    /// but what the script sets.
    pub fn bash(&self, script: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN");
        command
    }

    /// Runs the README's commands `lines` after step 1: `kubectl apply -k` (one, first),
    /// `kubectl -n NS port-forward deploy/NAME L:R &`, `curl` (must answer `hello world`) and
    /// `kubectl -n NS exec deploy/NAME -c C -- ARGV` (must exit 0). Anything else panics.
    /// Returns what ran, the port-forwards (still forwarding) and the running Pod.
    pub fn run<'a>(&self, lines: impl IntoIterator<Item = &'a String>) -> Applied {
        self.run_editing(lines, |_| {})
    }

    /// [`Walk::run`], with `edit` applied to the rendered Pod before it starts (e.g. a shorter
    /// certificate lifetime in its ConfigMap).
    pub fn run_editing<'a>(
        &self,
        lines: impl IntoIterator<Item = &'a String>,
        edit: impl FnOnce(&mut PodSpec),
    ) -> Applied {
        let mut edit = Some(edit);
        let mut running: Option<(PodSpec, PodHarness)> = None;
        let mut forwards: Vec<(u16, PortForward)> = Vec::new();
        let mut ran = Vec::new();
        for line in lines {
            let line = line.as_str();
            if let Some(dir) = line.strip_prefix("kubectl apply -k ") {
                assert!(running.is_none(), "{line}: one Pod at a time");
                let edit = edit.take().expect("one apply");
                running = Some(self.apply(dir.trim(), edit));
                ran.push("apply");
                continue;
            }
            if line.starts_with("curl ") {
                let mut command = line.to_owned();
                for (readme_port, forward) in &forwards {
                    command =
                        command.replace(&format!(":{readme_port}"), &format!(":{}", forward.port));
                }
                let output = self
                    .bash(&format!("{command} --silent --show-error --max-time 10"))
                    .output()
                    .unwrap();
                let harness = &running.as_ref().expect("curl before apply").1;
                assert!(
                    output.status.success(),
                    "{line}: {}\n{}",
                    output_text(&output),
                    harness.logs()
                );
                assert_eq!(
                    String::from_utf8_lossy(&output.stdout),
                    "hello world\n",
                    "{line}"
                );
                ran.push("curl");
                continue;
            }
            let Some((namespace, verb, name, rest)) = kubectl_on_deployment(line) else {
                panic!("the walkthrough test does not know how to run {line:?}");
            };
            let (pod, harness) = running.as_ref().expect("a kubectl step before apply");
            assert_names_the_pod(line, pod, namespace, name);
            match (verb, rest.as_slice()) {
                ("port-forward", [ports, "&"]) => {
                    let (local, remote) = ports.split_once(':').expect("LOCAL:REMOTE");
                    let remote: u16 = remote.parse().unwrap();
                    let forward = PortForward::start(SocketAddr::from((harness.pod_ip(), remote)));
                    forwards.push((local.parse().unwrap(), forward));
                    ran.push("port-forward");
                }
                ("exec", ["-c", container, "--", argv @ ..]) => {
                    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
                    let output = harness.exec_in_container(container, &argv);
                    assert!(
                        output.status.success(),
                        "{line}: {}\n{}",
                        output_text(&output),
                        harness.logs()
                    );
                    eprintln!("{line}:\n{}", String::from_utf8_lossy(&output.stdout));
                    ran.push("exec");
                }
                _ => panic!("the walkthrough test does not know how to run {line:?}"),
            }
        }
        let (pod, harness) = running.expect("the commands apply nothing");
        Applied {
            steps: ran,
            forwards,
            pod,
            harness,
        }
    }

    /// The OpenBao the Pods are pointed at.
    pub fn vault_target(&self) -> SocketAddr {
        self.vault
            .address
            .trim_start_matches("http://")
            .parse()
            .unwrap()
    }

    /// `kubectl apply -k DIR`, stood in for: rendered and validated, its one Deployment run as a
    /// Pod against this walk's Vault.
    pub fn apply(&self, dir: &str, edit: impl FnOnce(&mut PodSpec)) -> (PodSpec, PodHarness) {
        validate_rendered(dir);
        let mut pod = PodSpec::render(dir);
        pod.vault_target = Some(self.vault_target());
        edit(&mut pod);
        let harness = PodHarness::start(&pod);
        (pod, harness)
    }
}

/// What [`Walk::run`] left running.
pub struct Applied {
    /// `apply`, `port-forward`, `curl`, `exec`: what ran, in order.
    pub steps: Vec<&'static str>,
    /// (the README's local port, the forwarder standing for it).
    pub forwards: Vec<(u16, PortForward)>,
    pub pod: PodSpec,
    pub harness: PodHarness,
}

/// `kubectl port-forward`, stood in for: connections to 127.0.0.1:PORT (a free port, where the
/// README says e.g. 8443) copied to `target`, until dropped.
pub struct PortForward {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PortForward {
    pub fn start(target: SocketAddr) -> PortForward {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        inbound.set_nonblocking(false).unwrap();
                        let Ok(outbound) = TcpStream::connect(target) else {
                            continue;
                        };
                        for (mut from, mut to) in [
                            (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                            (outbound, inbound),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Write);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        PortForward {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `kubectl -n NS VERB deploy/NAME REST...`: (namespace, verb, name, rest).
fn kubectl_on_deployment(line: &str) -> Option<(&str, &str, &str, Vec<&str>)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["kubectl", "-n", namespace, verb, target, rest @ ..] => {
            let name = target.strip_prefix("deploy/")?;
            Some((namespace, verb, name, rest.to_vec()))
        }
        _ => None,
    }
}

/// The Pod of Deployment `name` (the runner names it `<name>-test`) in `namespace`: asserts the
/// README's command names the Pod that was applied.
fn assert_names_the_pod(line: &str, pod: &PodSpec, namespace: &str, name: &str) {
    assert_eq!(
        (namespace, format!("{name}-test")),
        (pod.namespace.as_str(), pod.name.clone()),
        "{line}: not the applied Deployment"
    );
}

fn output_text(output: &Output) -> String {
    format!(
        "{:?}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The walkthrough, as a newcomer runs it from a clean shell: every `sh` block of the section,
/// in order. Step 1 (`setup.sh` and `root.pem`) runs literally; `kubectl apply -k`,
/// `port-forward`, `curl` and `kubectl exec` run as described in this module's documentation.
/// Any other command fails the test: the walkthrough cannot grow a step nothing checks.
#[test]
fn the_readme_walkthrough_runs_as_written() {
    require_root();
    let blocks = readme_sh_blocks(WALKTHROUGH);
    assert!(blocks.len() >= 3, "{blocks:?}");
    let walk = Walk::new();

    // Step 1: Vault, then root.pem, which nothing else creates.
    let step1 = &blocks[0];
    assert!(
        step1.iter().any(|l| l.ends_with("deploy/vault/setup.sh")),
        "step 1 runs setup.sh: {step1:?}"
    );
    let _ = walk.configure_vault(step1);
    let root_pem = std::fs::read_to_string(walk.dir.path().join("root.pem"))
        .expect("step 1 writes root.pem for step 4");
    let ca = walk
        .vault
        .cli()
        .args(["read", "-field=certificate", "pki/cert/ca"])
        .output()
        .unwrap();
    assert_eq!(
        pki_sidecar::tls::pem::blocks(&root_pem).unwrap()[0].der,
        pki_sidecar::tls::pem::blocks(&ca.stdout).unwrap()[0].der,
        "root.pem is the root CA setup.sh made"
    );

    let applied = walk.run(blocks[1..].iter().flatten());
    assert_eq!(
        applied.steps,
        ["apply", "port-forward", "curl", "exec", "exec"],
        "the walkthrough's steps"
    );
    drop(applied.forwards);
    applied.harness.stop();
}

/// A walk with step 1 of the walkthrough done: Vault configured, `root.pem` written.
fn walk_after_step_1() -> Walk {
    let walk = Walk::new();
    let _ = walk.configure_vault(&readme_sh_blocks(WALKTHROUGH)[0]);
    walk
}

/// The ids of process `pid`'s status line `key` (`Uid:`, `Gid:`, `Groups:`).
fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    line[key.len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The app-port example as the README runs it: `hello world` through the proxy, which forwards to
/// the app on 127.0.0.1:8080; nothing listens on port 80 any more.
#[test]
fn example_app_port_forwards_to_the_app_on_8080() {
    require_root();
    let walk = walk_after_step_1();
    let blocks = readme_sh_blocks("### Example: your app on another port");
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let applied = walk.run(blocks.iter().flatten());
    assert_eq!(applied.steps, ["apply", "port-forward", "curl"]);
    let harness = &applied.harness;
    let sockets = harness.exec_in_namespace(&["ss", "-Hltnp"]);
    let sockets = String::from_utf8_lossy(&sockets.stdout).into_owned();
    let app_pid = harness.pid("app").to_string();
    let app = sockets
        .lines()
        .find(|l| l.contains(" 127.0.0.1:8080 "))
        .unwrap_or_else(|| panic!("nothing listens on 127.0.0.1:8080: {sockets}"));
    assert!(
        app.contains(&format!("pid={app_pid},")),
        "the app listens there: {app}"
    );
    assert!(
        !sockets.lines().any(|l| l
            .split_whitespace()
            .nth(3)
            .is_some_and(|local| local.ends_with(":80"))),
        "nothing listens on port 80: {sockets}"
    );
    let failing = harness.failing_probes(&applied.pod);
    assert!(failing.is_empty(), "{failing:?}\n{}", harness.logs());
    drop(applied.forwards);
    applied.harness.stop();
}

/// The agent-only example as the README runs it: no proxy; the workload serves the agent's pair
/// itself, as its own user, reading the 0640 key through the Pod's fsGroup; with a 12 s
/// certificate, the renewed pairs are served without a failed request.
#[test]
fn example_agent_only_serves_tls_from_the_workload_reading_the_shared_volume() {
    require_root();
    let walk = walk_after_step_1();
    let blocks = readme_sh_blocks("### Example: the agent alone, your app serving TLS");
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let applied = walk.run_editing(blocks.iter().flatten(), |pod| {
        let hcl = pod.config_map_entry("agent-config", "vault-agent-config.hcl");
        assert_eq!(hcl.matches("\"ttl=24h\"").count(), 1, "{hcl}");
        *hcl = hcl.replace("\"ttl=24h\"", "\"ttl=12s\"");
    });
    assert_eq!(applied.steps, ["apply", "port-forward", "curl"]);
    let harness = &applied.harness;
    let mut names: Vec<&str> = applied
        .pod
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["vault", "web"], "the agent and the workload only");

    use std::os::unix::fs::MetadataExt as _;
    let tls = harness.volume("tls");
    let key = std::fs::metadata(tls.join("tls.key")).unwrap();
    assert_eq!(
        (key.uid(), key.gid(), key.mode() & 0o777),
        (65532, 65532, 0o640),
        "tls.key: the agent's, group-readable by the fsGroup only"
    );
    let cert = std::fs::metadata(tls.join("tls.crt")).unwrap();
    assert_eq!(cert.mode() & 0o777, 0o644, "tls.crt");

    let web = harness.pid("web");
    assert_eq!(
        status_ids(web, "Uid:"),
        [1000; 4],
        "the workload's own user"
    );
    assert_eq!(status_ids(web, "Groups:"), [65532], "the fsGroup");
    // The workload cannot write the agent's files.
    let touch = ["sh", "-c", "echo x > /etc/tls/tls.key"].map(str::to_owned);
    let output = harness.exec_in_container("web", &touch);
    assert!(!output.status.success(), "the volume is read-only in web");

    let failing = harness.failing_probes(&applied.pod);
    assert!(failing.is_empty(), "{failing:?}\n{}", harness.logs());

    // Renewals: new connections every 50 ms from two clients see the serial change, and none
    // fails (server.py loads the pair per connection).
    let address = SocketAddr::from((harness.pod_ip(), 8443));
    let root_pem = std::fs::read_to_string(walk.dir.path().join("root.pem")).unwrap();
    let report =
        crate::pod::requests_during_trusting(harness, address, Duration::from_secs(25), &root_pem);
    let distinct: std::collections::BTreeSet<&String> = report.serials.iter().collect();
    eprintln!(
        "agent-only rotation: {} requests, {} failed, {} certificates served",
        report.ok + report.failures.len(),
        report.failures.len(),
        distinct.len()
    );
    assert!(
        report.failures.is_empty(),
        "{} of {} requests failed, e.g. {:?}\n{}",
        report.failures.len(),
        report.ok + report.failures.len(),
        &report.failures[..report.failures.len().min(5)],
        harness.logs()
    );
    assert!(
        distinct.len() >= 2,
        "the served certificate never changed in 25 s: {distinct:?}\n{}",
        harness.logs()
    );
    assert!(report.ok > 100, "too few requests: {}", report.ok);
    drop(applied.forwards);
    applied.harness.stop();
}

/// `curl` from outside both Pods to `https://NAME/` at `ip`, verified against the walk's
/// `root.pem`, with `extra` arguments (a client pair): its output.
fn curl_at(walk: &Walk, name: &str, ip: std::net::Ipv4Addr, extra: &[String]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .arg("--cacert")
        .arg(walk.dir.path().join("root.pem"))
        .arg("--resolve")
        .arg(format!("{name}:443:{ip}"))
        .args(extra)
        .arg(format!("https://{name}/"))
        .output()
        .expect("run curl (scripts/install-test-deps.sh installs it)")
}

/// The mTLS example as the README applies it: both workloads run (each one's init container
/// issuing before its proxy starts, its agent sidecar taking the certificate over); the server refuses a client without a certificate and one
/// with a certificate from another CA, and answers `hello world` to the client Pod's pair; the
/// client's proxy does the same for the server's pair.
#[test]
fn example_mtls_requires_a_client_certificate_from_the_vault_ca() {
    require_root();
    let section = "### Example: mutual TLS between two workloads";
    let blocks = readme_sh_blocks(section);
    assert_eq!(blocks, [["kubectl apply -k deploy/examples/mtls"]]);
    let dir = "deploy/examples/mtls";
    // The README's proxy block is the example's proxy.hcl.
    let readme = std::fs::read_to_string(util::repo().join("README.md")).unwrap();
    let shown = readme
        .split(section)
        .nth(1)
        .and_then(|rest| rest.split("```hcl\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("an hcl block in the mTLS example");
    let file = std::fs::read_to_string(util::repo().join(dir).join("proxy.hcl")).unwrap();
    let code: Vec<&str> = file.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(shown.trim(), code.join("\n").trim(), "README vs proxy.hcl");

    let walk = walk_after_step_1();
    validate_rendered(dir);
    let documents: Vec<serde_json::Value> = crate::deploy::rendered(dir)
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    let inputs = Inputs::from_manifests(&documents);
    let spec_of = |name: &str| {
        let deployment = documents
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Deployment {name} in {dir}"));
        let mut spec = PodSpec::from_pod(&pod_of_workload(deployment), &inputs);
        spec.vault_target = Some(walk.vault_target());
        spec
    };
    let server_spec = spec_of("poc-sidecar-tls-pki-deploy");
    let client_spec = spec_of("mtls-client");
    let server = PodHarness::start(&server_spec);
    let client = PodHarness::start(&client_spec);
    for (spec, harness) in [(&server_spec, &server), (&client_spec, &client)] {
        // The init container issued the pair and ca.crt before the proxy started.
        let proxy_start = harness
            .events()
            .iter()
            .find(|e| e.container == "proxy" && matches!(e.what, EventKind::Started { .. }))
            .expect("the proxy started");
        let EventKind::Started { files } = &proxy_start.what else {
            unreachable!()
        };
        for file in ["tls/ca.crt", "tls/tls.crt", "tls/tls.key"] {
            assert!(files.iter().any(|f| f == file), "{file}: {files:?}");
        }
        let failing = harness.failing_probes(spec);
        assert!(failing.is_empty(), "{failing:?}\n{}", harness.logs());
        // The sidecar agent took over what the init container issued.
        assert!(
            harness.log("vault-init").contains("issued a certificate"),
            "{}",
            harness.logs()
        );
        let sidecar = harness.log("vault");
        assert!(
            sidecar.contains("reusing the certificate on disk")
                && !sidecar.contains("issued a certificate"),
            "{sidecar}"
        );
    }

    let pair = |harness: &PodHarness| -> Vec<String> {
        let tls = harness.volume("tls");
        vec![
            "--cert".to_owned(),
            tls.join("tls.crt").display().to_string(),
            "--key".to_owned(),
            tls.join("tls.key").display().to_string(),
        ]
    };
    // Without a certificate: refused.
    let output = curl_at(&walk, "foo.home", server.pod_ip(), &[]);
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "no client certificate: {}",
        output_text(&output)
    );
    // With a certificate from another CA: refused.
    let other = walk.dir.path();
    let openssl = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=client.home", "-keyout", "other.key"])
        .args(["-out", "other.crt"])
        .current_dir(other)
        .output()
        .expect("run openssl");
    assert!(openssl.status.success(), "{}", output_text(&openssl));
    let foreign = [
        "--cert".to_owned(),
        other.join("other.crt").display().to_string(),
        "--key".to_owned(),
        other.join("other.key").display().to_string(),
    ];
    let output = curl_at(&walk, "foo.home", server.pod_ip(), &foreign);
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "a certificate from another CA: {}",
        output_text(&output)
    );
    // With the client Pod's own pair: served; and the other way round.
    for (name, target, from) in [
        ("foo.home", &server, &client),
        ("client.home", &client, &server),
    ] {
        let output = curl_at(&walk, name, target.pod_ip(), &pair(from));
        assert!(
            output.status.success(),
            "{name} with the other Pod's pair: {}\n{}",
            output_text(&output),
            target.logs()
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "hello world\n");
    }
    let client_cert = std::fs::read_to_string(client.volume("tls").join("tls.crt")).unwrap();
    let leaf = pki_sidecar::certs::CertInfo::parse(
        &pki_sidecar::tls::pem::blocks(&client_cert).unwrap()[0].der,
    )
    .unwrap();
    assert_eq!(leaf.subject_cn, "client.home");
    client.stop();
    server.stop();
}
