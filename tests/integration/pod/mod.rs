//! The Pod of `deploy/` recreated on one machine from the rendered manifests, without Kubernetes.
//!
//! `kubectl kustomize deploy` is read for everything the three containers get: their args, their
//! `envFrom` ConfigMaps, their volume mounts, the ConfigMaps' data, the Pod's user, group and
//! sysctls, the probes and the PodMonitor's ports. [`PodHarness`] then does what a kubelet and a
//! container runtime would:
//!
//! - **Network**: a network namespace of the Pod's own (`ip netns add`), `lo` up and a veth pair
//!   to the root namespace (`eth0` inside, private 10.x addresses unique to the test run), with
//!   the Pod's sysctls set inside it (`net.ipv4.ip_unprivileged_port_start=0`, which is per
//!   namespace: the binary binds 80 and 443 with no capability, as in the Pod).
//! - **Filesystem**: each container is `ip netns exec NS unshare --mount --propagation private
//!   sh -c SCRIPT`. The script lays a copy-on-write overlay (upper layer on a tmpfs private to
//!   the container) over each top-level directory a mount lands in (`/etc`, `/home`, `/run` — so
//!   the mount points can be created without touching the host), bind-mounts the volumes at the
//!   manifest's paths (emptyDirs and ConfigMaps as host temp directories; `readOnly` mounts
//!   read-only; a `subPath` as a single file; the ServiceAccount token at the kubelet's path), then
//!   makes `/` and the overlays read-only (`readOnlyRootFilesystem`) and finally
//!   `exec setpriv` to the Pod's uid/gid with no capabilities and `no_new_privs`
//!   (`capabilities.drop: [ALL]`, `allowPrivilegeEscalation: false`). Every exec keeps the same
//!   pid, so the harness signals the binary itself. The host's real `/etc`, `/home` and `/run`
//!   are never modified: every mount happens inside the containers' private mount namespaces.
//! - **Probes**: the httpGet probes are sent from the root namespace to the Pod's IP, as a
//!   kubelet does; the exec probe runs in the proxy container's namespaces, as the proxy's user.
//! - **Metrics**: Debian's `prometheus` scrapes the PodMonitor's ports at the Pod's IP.
//!
//! Real: the binary (the same file for all three containers), its args, environment, paths, uid,
//! ports and sysctl; OpenBao with the seed's Vault setup ([`bao::bed`]); curl and Prometheus as
//! clients. Stood in for: Kubernetes itself (the TokenReview API answered by the bed's stand-in,
//! a JWT whose signature nobody checks as the ServiceAccount token), the image (the host's root
//! filesystem with the host's binary instead of distroless with `/pki-sidecar`, so the exec
//! probe's `/pki-sidecar` is replaced by the host path), `https://vault.home` (the bed, reached
//! through a TCP forwarder; see [`PodHarness::start`]), the in-memory emptyDirs (host temp
//! directories), seccomp (not applied) and resource limits (not applied).
//!
//! Teardown: [`PodHarness::stop`] sends SIGTERM to the three containers as a kubelet does and
//! asserts they exit 0, that no process is left in the Pod's namespace, and that the namespace,
//! the veth pair and Prometheus are gone; `Drop` does the same on a panic. If the test binary is
//! killed outright, `setpriv --pdeathsig=KILL` ends the containers and Prometheus, and a watchdog
//! shell removes the namespace and the veth pair.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use nix::sys::signal::Signal;
use pki_sidecar::certs::{self, CertInfo};
use pki_sidecar::tls::pem;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_yaml::Value;

use crate::deploy::{kind, rendered, text};
use crate::util::{self, bao};

/// The name the certificate is issued for (the seed's `common_name`) and the exec probe sends.
const SERVER_NAME: &str = "foo.home";
/// The volume holding the agent's HCL (kustomize adds a hash to its ConfigMap's name), and its key.
const AGENT_CONFIG_VOLUME: &str = "agent-config";
const AGENT_CONFIG_KEY: &str = "vault-agent-config.hcl";
/// Where a kubelet mounts the ServiceAccount token (`automountServiceAccountToken: true`); the
/// seed's agent file does not set `token_path`, so the agent reads it here.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The environment every container gets before its own: the distroless image's `PATH` (also
/// what `ip`, `unshare` and `setpriv` are found with) and the kubelet's `HOSTNAME`.
const BASE_ENV: [(&str, &str); 2] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOSTNAME", "poc-sidecar-tls-pki-deploy-test"),
];
/// The proxy's startupProbe allows 2 minutes; the agent usually needs well under a second.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// The Pod's default terminationGracePeriodSeconds.
const TERMINATION_GRACE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The tests

/// The seed's Pod as rendered: HTTPS with the agent's certificate over HTTP/1.1 and HTTP/2, every
/// probe passing, and Prometheus seeing the served certificate's expiry.
#[test]
fn the_rendered_pod_serves_hello_world_over_tls_with_its_probes_and_metrics() {
    require_root();
    let started = Instant::now();
    let pod = PodSpec::render("deploy");
    let mut harness = PodHarness::start(&pod);
    let root_ca = util::write_file(harness.dir(), "root-ca.pem", bao::bed().root_ca_pem());

    // curl, as a client outside the Pod, resolving foo.home to the Pod's IP.
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .arg(flag)
            .arg("--cacert")
            .arg(&root_ca)
            .arg("--resolve")
            .arg(format!("{SERVER_NAME}:443:{}", harness.pod_ip()))
            .args(["--write-out", "|%{http_version}"])
            .arg(format!("https://{SERVER_NAME}/"))
            .output()
            .expect("run curl (scripts/install-test-deps.sh installs it)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {flag}: {stdout}{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            harness.logs()
        );
        let (body, served_version) = stdout.rsplit_once('|').expect("curl's --write-out");
        assert_eq!(body.trim_end(), "hello world", "curl {flag}");
        assert_eq!(served_version, version, "curl {flag}");
    }

    // The served chain: the agent's leaf (as written to tls.crt) and the bed's intermediate.
    let chain = harness.block_on(served_chain(harness.https_address()));
    let intermediate = pem::blocks(bao::bed().intermediate_ca_pem()).unwrap();
    assert_eq!(chain.len(), 2, "leaf + intermediate");
    assert_eq!(chain[1], intermediate[0].der, "the bed's intermediate");
    let leaf = CertInfo::parse(&chain[0]).unwrap();
    assert_eq!(leaf.subject_cn, SERVER_NAME);
    let on_disk = std::fs::read_to_string(harness.volume("tls").join("tls.crt")).unwrap();
    assert_eq!(
        pem::blocks(&on_disk).unwrap()[0].der,
        chain[0],
        "the proxy serves the tls.crt the agent wrote"
    );
    let lifetime = leaf.not_after.duration_since(leaf.not_before).unwrap();
    assert!(
        lifetime > Duration::from_secs(23 * 3600),
        "the seed's ttl=24h: {lifetime:?}"
    );

    // Every probe of every container, as a kubelet runs them.
    for container in &pod.containers {
        for probe in &container.probes {
            match &probe.action {
                ProbeAction::Http { path, port } => {
                    let address = SocketAddr::from((harness.pod_ip(), *port));
                    let status = http_status(address, path);
                    assert_eq!(
                        status,
                        Ok(200),
                        "{} {} GET {path} on {address}\n{}",
                        container.name,
                        probe.kind,
                        harness.logs()
                    );
                }
                ProbeAction::Exec { argv } => {
                    let output = harness.exec_in_container(&container.name, argv);
                    assert!(
                        output.status.success(),
                        "{} {} {argv:?}: {:?}\n{}{}",
                        container.name,
                        probe.kind,
                        output.status,
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
            }
        }
    }
    // The manifest's liveness probe is the one exec probe; make sure it was not skipped.
    let proxy = pod.container("proxy");
    assert!(
        proxy
            .probes
            .iter()
            .any(|p| p.kind == "livenessProbe" && matches!(p.action, ProbeAction::Exec { .. })),
        "the proxy's liveness probe is `pki-sidecar check tls`"
    );

    // The listeners belong to the Pod's user: ports 80 and 443 bound thanks to the sysctl alone.
    let sockets = harness.exec_in_namespace(&["ss", "-Hltne"]);
    let sockets = String::from_utf8_lossy(&sockets.stdout);
    for port in [80, 443, 9101, 9102, 9103] {
        let line = sockets
            .lines()
            .find(|l| l.contains(&format!(":{port} ")))
            .unwrap_or_else(|| panic!("nothing listens on {port} in the Pod: {sockets}"));
        assert!(line.contains(&format!("uid:{}", pod.run_as_user)), "{line}");
    }
    // The app answers on loopback only: plain HTTP to the Pod IP cannot go around the proxy.
    let app = sockets.lines().find(|l| l.contains(":80 ")).unwrap();
    assert!(
        app.contains(" 127.0.0.1:80 "),
        "the app listens on loopback: {app}"
    );
    let plain = http_status(SocketAddr::from((harness.pod_ip(), 80)), "/");
    assert!(
        plain.as_ref().is_err_and(|e| e.contains("refused")),
        "plain HTTP to the Pod IP is refused: {plain:?}"
    );

    // Prometheus, scraping the PodMonitor's endpoints, sees the served certificate's NotAfter.
    let prometheus = harness.start_prometheus(&pod);
    let expected = certs::unix_seconds(leaf.not_after);
    let series = "pki_sidecar_tls_certificate_expiration_timestamp_seconds{role=\"proxy\"}";
    let result = prometheus.wait_for(series, Duration::from_secs(30), |result| {
        result.len() == 1 && sample_value(&result[0]) == Some(expected)
    });
    assert_eq!(sample_value(&result[0]), Some(expected), "{result:?}");
    let up = prometheus.wait_for("up", Duration::from_secs(30), |result| {
        result.len() == pod.metrics_endpoints.len()
            && result.iter().all(|s| sample_value(s) == Some(1.0))
    });
    assert_eq!(up.len(), 3, "every role is scraped: {up:?}");

    harness.stop();
    eprintln!("pod test took {:?}", started.elapsed());
}

/// The same Pod with a 12 s certificate: while the agent renews, a client opening a new TLS
/// connection for every request sees the serial change and never a failed request.
#[test]
fn the_rendered_pod_renews_its_certificate_without_a_failed_request() {
    require_root();
    let started = Instant::now();
    let mut pod = PodSpec::render("deploy");
    // The seed asks for a day; the test has seconds. Only the rendered ConfigMap changes.
    let hcl = pod.config_map_entry(AGENT_CONFIG_VOLUME, AGENT_CONFIG_KEY);
    assert_eq!(hcl.matches("\"ttl=24h\"").count(), 1, "{hcl}");
    *hcl = hcl.replace("\"ttl=24h\"", "\"ttl=12s\"");
    let harness = PodHarness::start(&pod);
    let written = std::fs::read_to_string(harness.volume("tls").join("tls.crt")).unwrap();
    let first = CertInfo::parse(&pem::blocks(&written).unwrap()[0].der).unwrap();
    let left = first
        .not_after
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        left <= Duration::from_secs(12),
        "ttl=12s took: {left:?} left"
    );

    let address = harness.https_address();
    let report = harness.block_on(async move {
        let config = client_config(bao::bed().root_ca_pem());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
        // Two clients, so a request is always in flight somewhere during a reload.
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let config = Arc::clone(&config);
                tokio::spawn(async move {
                    let mut report = LoopReport::default();
                    while tokio::time::Instant::now() < deadline {
                        match get_hello(address, Arc::clone(&config)).await {
                            Ok(serial) => {
                                report.ok += 1;
                                if report.serials.last() != Some(&serial) {
                                    report.serials.push(serial);
                                }
                            }
                            Err(error) => report.failures.push(error),
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    report
                })
            })
            .collect();
        let mut total = LoopReport::default();
        for worker in workers {
            let report = worker.await.expect("client task");
            total.ok += report.ok;
            total.failures.extend(report.failures);
            total.serials.extend(report.serials);
        }
        total
    });
    let distinct: BTreeSet<&String> = report.serials.iter().collect();
    eprintln!(
        "rotation: {} requests, {} failed, {} certificates served",
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
    assert!(
        report.ok > 100,
        "too few requests to mean anything: {}",
        report.ok
    );

    harness.stop();
    eprintln!("pod rotation test took {:?}", started.elapsed());
}

#[derive(Default)]
struct LoopReport {
    ok: usize,
    failures: Vec<String>,
    /// The serials in the order each client first saw them.
    serials: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// What the manifests say

/// The parts of the rendered manifests that the harness runs.
struct PodSpec {
    containers: Vec<ContainerSpec>,
    /// Volume name → its manifest entry.
    volumes: BTreeMap<String, Value>,
    /// ConfigMap name → key → value, as rendered (a test may edit them before starting).
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    run_as_user: u32,
    run_as_group: u32,
    fs_group: u32,
    sysctls: Vec<(String, String)>,
    /// The ServiceAccount's `automountServiceAccountToken`.
    automount_token: bool,
    namespace: String,
    service_account: String,
    /// The PodMonitor's endpoints resolved to ports: (port, path).
    metrics_endpoints: Vec<(u16, String)>,
}

struct ContainerSpec {
    name: String,
    args: Vec<String>,
    /// `envFrom` ConfigMaps, then `env` values, in the manifest's order.
    env: Vec<(String, String)>,
    mounts: Vec<MountSpec>,
    probes: Vec<Probe>,
}

struct MountSpec {
    volume: String,
    path: String,
    sub_path: Option<String>,
    read_only: bool,
}

struct Probe {
    /// `readinessProbe`, `livenessProbe` or `startupProbe`.
    kind: &'static str,
    action: ProbeAction,
}

enum ProbeAction {
    Http { path: String, port: u16 },
    Exec { argv: Vec<String> },
}

impl PodSpec {
    /// `kubectl kustomize DIR`, read for one Deployment's Pod.
    fn render(dir: &str) -> PodSpec {
        let documents = rendered(dir);
        let deployments = kind(&documents, "Deployment");
        assert_eq!(deployments.len(), 1, "one Deployment in {dir}");
        let deployment = deployments[0];
        let pod = &deployment["spec"]["template"]["spec"];
        let namespace = text(&deployment["metadata"]["namespace"]).to_owned();
        let config_maps: BTreeMap<String, BTreeMap<String, String>> = kind(&documents, "ConfigMap")
            .into_iter()
            .map(|cm| {
                let data = cm["data"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (text(k).to_owned(), text(v).to_owned()))
                    .collect();
                (text(&cm["metadata"]["name"]).to_owned(), data)
            })
            .collect();
        let service_account = text(&pod["serviceAccountName"]).to_owned();
        let automount_token = kind(&documents, "ServiceAccount")
            .into_iter()
            .find(|sa| sa["metadata"]["name"].as_str() == Some(&service_account))
            .map(|sa| sa["automountServiceAccountToken"].as_bool() != Some(false))
            .expect("the Pod's ServiceAccount is in the manifests")
            && pod["automountServiceAccountToken"].as_bool() != Some(false);
        let security = &pod["securityContext"];
        let id = |key: &str| -> u32 {
            let value = security[key].as_u64();
            u32::try_from(value.unwrap_or_else(|| panic!("securityContext.{key}"))).unwrap()
        };
        let sysctls = security["sysctls"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|s| (text(&s["name"]).to_owned(), text(&s["value"]).to_owned()))
            .collect();
        let volumes = pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .map(|v| (text(&v["name"]).to_owned(), v.clone()))
            .collect();

        let mut ports = BTreeMap::new();
        let mut containers = Vec::new();
        for container in pod["containers"].as_sequence().expect("containers") {
            let name = text(&container["name"]).to_owned();
            for port in container["ports"].as_sequence().into_iter().flatten() {
                let number = u16::try_from(port["containerPort"].as_u64().unwrap()).unwrap();
                if let Some(port_name) = port["name"].as_str() {
                    ports.insert(port_name.to_owned(), number);
                }
            }
            let mut env = Vec::new();
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                let map = text(&source["configMapRef"]["name"]);
                let data = config_maps
                    .get(map)
                    .unwrap_or_else(|| panic!("{name}: envFrom ConfigMap {map} not rendered"));
                env.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let value = variable["value"].as_str().unwrap_or_else(|| {
                    panic!("{name}: only literal env values are supported: {variable:?}")
                });
                env.push((text(&variable["name"]).to_owned(), value.to_owned()));
            }
            let mounts = container["volumeMounts"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|m| MountSpec {
                    volume: text(&m["name"]).to_owned(),
                    path: text(&m["mountPath"]).to_owned(),
                    sub_path: m["subPath"].as_str().map(str::to_owned),
                    read_only: m["readOnly"].as_bool() == Some(true),
                })
                .collect();
            containers.push((
                container,
                ContainerSpec {
                    name,
                    args: container["args"]
                        .as_sequence()
                        .expect("args")
                        .iter()
                        .map(|a| text(a).to_owned())
                        .collect(),
                    env,
                    mounts,
                    probes: Vec::new(),
                },
            ));
        }
        // Probes name ports of their own container, but the names are unique in this Pod.
        let port = |value: &Value| -> u16 {
            match value {
                Value::Number(n) => u16::try_from(n.as_u64().unwrap()).unwrap(),
                other => *ports
                    .get(text(other))
                    .unwrap_or_else(|| panic!("no container port named {other:?}")),
            }
        };
        let containers = containers
            .into_iter()
            .map(|(manifest, mut spec)| {
                for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
                    let probe = &manifest[kind];
                    let action = if let Some(get) = probe["httpGet"].as_mapping() {
                        let get = Value::Mapping(get.clone());
                        ProbeAction::Http {
                            path: text(&get["path"]).to_owned(),
                            port: port(&get["port"]),
                        }
                    } else if let Some(command) = probe["exec"]["command"].as_sequence() {
                        ProbeAction::Exec {
                            argv: command.iter().map(|a| text(a).to_owned()).collect(),
                        }
                    } else {
                        assert!(probe.is_null(), "{}: unsupported {kind}", spec.name);
                        continue;
                    };
                    spec.probes.push(Probe { kind, action });
                }
                spec
            })
            .collect();

        let monitors = kind(&documents, "PodMonitor");
        assert_eq!(monitors.len(), 1, "one PodMonitor");
        let metrics_endpoints = monitors[0]["spec"]["podMetricsEndpoints"]
            .as_sequence()
            .expect("podMetricsEndpoints")
            .iter()
            .map(|e| (port(&e["port"]), text(&e["path"]).to_owned()))
            .collect();

        PodSpec {
            containers,
            volumes,
            config_maps,
            run_as_user: id("runAsUser"),
            run_as_group: id("runAsGroup"),
            fs_group: id("fsGroup"),
            sysctls,
            automount_token,
            namespace,
            service_account,
            metrics_endpoints,
        }
    }

    fn container(&self, name: &str) -> &ContainerSpec {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// One value of the ConfigMap behind `volume`, as rendered, to edit before
    /// [`PodHarness::start`].
    fn config_map_entry(&mut self, volume: &str, key: &str) -> &mut String {
        let map = text(&self.volumes[volume]["configMap"]["name"]).to_owned();
        self.config_maps
            .get_mut(&map)
            .and_then(|data| data.get_mut(key))
            .unwrap_or_else(|| panic!("no {key} in ConfigMap {map}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The harness

/// The Pod running: its network namespace, its three containers, and what the test added around
/// it (the forwarder to OpenBao, Prometheus). Everything is torn down by [`PodHarness::stop`],
/// which checks that it went well, or by `Drop` (on a panic), which does the same quietly.
struct PodHarness {
    network: Network,
    /// Runs the forwarder to OpenBao and the tests' own async clients.
    runtime: Option<tokio::runtime::Runtime>,
    containers: Vec<RunningContainer>,
    prometheus: Option<Child>,
    /// What [`PodHarness::exec_in_container`] needs to build a container's command.
    launch: BTreeMap<String, ContainerLaunch>,
    volumes: BTreeMap<String, PathBuf>,
    binary: PathBuf,
    user: (u32, u32),
    dir: tempfile::TempDir,
}

struct RunningContainer {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A container's mounts and environment, resolved to this run's host paths.
struct ContainerLaunch {
    /// (host source, target path, read-only, is a file).
    mounts: Vec<(PathBuf, String, bool, bool)>,
    env: Vec<(String, String)>,
}

impl PodHarness {
    /// Creates the Pod's network namespace, materialises its volumes, and starts its containers
    /// in manifest order; returns once every readiness and startup probe answers 200.
    ///
    /// The one deviation from the manifests: `VAULT_ADDR` (from `app-cm`, `https://vault.home`)
    /// becomes `http://<root side of the veth>:<port>`, a TCP forwarder in this process to the
    /// test bed's OpenBao. The bed listens on 127.0.0.1 in the root namespace, which the Pod's
    /// namespace cannot reach, and it speaks plain http (a dev server), so `VAULT_CACERT` (the
    /// seed's chain-ca, still mounted at its path) is not used.
    fn start(pod: &PodSpec) -> PodHarness {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("pki-pod-")
            .tempdir()
            .expect("temp dir");
        // Traversable (not listable) by the Pod's user, for a copied binary.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let binary = executable_by(util::bin(), pod.run_as_user, pod.run_as_group, dir.path());

        let network = Network::create();
        for (name, value) in &pod.sysctls {
            set_sysctl(&network.name, name, value);
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let bed = bao::bed();
        let bed_address: SocketAddr = bed
            .addr()
            .trim_start_matches("http://")
            .parse()
            .expect("the bed's address");
        let forwarder = runtime
            .block_on(tokio::net::TcpListener::bind((network.host_ip, 0)))
            .expect("bind the forwarder on the veth's root side");
        let vault_addr = format!("http://{}", forwarder.local_addr().unwrap());
        runtime.spawn(forward(forwarder, bed_address));

        let mut harness = PodHarness {
            network,
            runtime: Some(runtime),
            containers: Vec::new(),
            prometheus: None,
            launch: BTreeMap::new(),
            volumes: BTreeMap::new(),
            binary,
            user: (pod.run_as_user, pod.run_as_group),
            dir,
        };
        harness.materialise_volumes(pod);
        for container in &pod.containers {
            let mut env = container.env.clone();
            for (name, value) in &mut env {
                if name == "VAULT_ADDR" {
                    *value = vault_addr.clone();
                }
            }
            let launch = ContainerLaunch {
                mounts: harness.mounts_of(pod, container),
                env,
            };
            harness.launch.insert(container.name.clone(), launch);
        }
        for container in &pod.containers {
            let log = harness.dir().join(format!("{}.log", container.name));
            let file = File::create(&log).expect("log file");
            // The image's ENTRYPOINT (`/pki-sidecar`, here this build's binary), then the args.
            let mut argv = vec![harness.binary.display().to_string()];
            argv.extend(container.args.iter().cloned());
            let mut command = harness.container_command(&container.name, &argv);
            command
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file);
            let child = command.spawn().expect("spawn ip netns exec");
            harness.containers.push(RunningContainer {
                name: container.name.clone(),
                child,
                log,
            });
        }
        harness.wait_until_ready(pod);
        harness
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn pod_ip(&self) -> Ipv4Addr {
        self.network.pod_ip
    }

    fn https_address(&self) -> SocketAddr {
        SocketAddr::from((self.pod_ip(), 443))
    }

    /// The host directory behind volume `name`.
    fn volume(&self, name: &str) -> &Path {
        &self.volumes[name]
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("running").block_on(future)
    }

    /// Runs `argv` in the Pod's network namespace as root, as `ip netns exec` does.
    fn exec_in_namespace(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.network.name])
            .args(argv)
            .output()
            .expect("run ip netns exec")
    }

    /// Runs `argv` inside container `name` (its network and mounts, its user), as a kubelet runs
    /// an exec probe. The image's `/pki-sidecar` is this build's binary.
    fn exec_in_container(&self, name: &str, argv: &[String]) -> Output {
        let mut argv = argv.to_vec();
        if argv[0] == "/pki-sidecar" {
            argv[0] = self.binary.display().to_string();
        }
        self.container_command(name, &argv)
            .output()
            .expect("run ip netns exec")
    }

    /// `ip netns exec NS unshare --mount --propagation private sh -c SCRIPT`: the script mounts
    /// the container's filesystem view, then `exec setpriv ... ARGV`.
    fn container_command(&self, name: &str, argv: &[String]) -> Command {
        let launch = &self.launch[name];
        let layer = self.dir().join("rootfs-layer");
        std::fs::create_dir_all(&layer).unwrap();
        let mut script = String::from("set -eu\n");
        // Copy-on-write overlays, so mount points can be made without touching the host.
        let mut overlaid = BTreeSet::new();
        for (_, target, _, _) in &launch.mounts {
            overlaid.insert(overlay_root(target));
        }
        script += &format!(
            "mount -t tmpfs -o mode=0755,size=8m pod-rootfs-layer {}\n",
            quote(&layer)
        );
        for root in &overlaid {
            let slug = root.trim_start_matches('/');
            script += &format!(
                "mkdir {upper} {work}\n\
                 mount -t overlay pod-rootfs -o lowerdir={root},upperdir={upper},workdir={work} {root}\n",
                upper = quote(layer.join(format!("{slug}.upper"))),
                work = quote(layer.join(format!("{slug}.work"))),
                root = quote(root),
            );
        }
        for (source, target, read_only, is_file) in &launch.mounts {
            let target = quote(target);
            if *is_file {
                script += &format!("mkdir -p \"$(dirname {target})\"\n: > {target}\n");
            } else {
                script += &format!("mkdir -p {target}\n");
            }
            script += &format!("mount --bind {} {target}\n", quote(source));
            if *read_only {
                script += &format!("mount -o remount,bind,ro {target}\n");
            }
        }
        // readOnlyRootFilesystem. `bind` makes these per-mount changes in this namespace only.
        for root in &overlaid {
            script += &format!("mount -o remount,ro {}\n", quote(root));
        }
        script += "mount -o remount,bind,ro /\n";
        // runAsUser/runAsGroup, capabilities.drop [ALL], allowPrivilegeEscalation: false; the
        // parent-death signal so that nothing outlives a test binary that was killed.
        script += &format!(
            "exec setpriv --reuid={} --regid={} --clear-groups --inh-caps=-all \
             --bounding-set=-all --no-new-privs --pdeathsig=KILL \"$@\"\n",
            self.user.0, self.user.1
        );
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.network.name])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", &script, name])
            .args(argv)
            .current_dir("/")
            .env_clear()
            .envs(BASE_ENV)
            .envs(launch.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Host directories for the Pod's volumes, as a kubelet makes them: emptyDirs writable by
    /// the fsGroup, ConfigMaps as files of mode 0644, the ServiceAccount token projected.
    fn materialise_volumes(&mut self, pod: &PodSpec) {
        let root = self.dir().join("volumes");
        std::fs::create_dir(&root).unwrap();
        for (name, volume) in &pod.volumes {
            let path = root.join(name);
            std::fs::create_dir(&path).unwrap();
            if volume["emptyDir"].is_mapping() {
                std::os::unix::fs::chown(&path, Some(0), Some(pod.fs_group)).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2777)).unwrap();
            } else if let Some(map) = volume["configMap"]["name"].as_str() {
                let data = pod
                    .config_maps
                    .get(map)
                    .unwrap_or_else(|| panic!("volume {name}: ConfigMap {map} not rendered"));
                assert!(volume["configMap"]["items"].is_null(), "items unsupported");
                for (key, value) in data {
                    write_mode(&path.join(key), value, 0o644);
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            } else {
                panic!("volume {name}: unsupported kind {volume:?}");
            }
            self.volumes.insert(name.clone(), path);
        }
        if pod.automount_token {
            let path = root.join("kube-api-access");
            std::fs::create_dir(&path).unwrap();
            let jwt = bao::service_account_jwt(&pod.namespace, &pod.service_account);
            write_mode(&path.join("token"), &jwt, 0o644);
            write_mode(&path.join("namespace"), &pod.namespace, 0o644);
            write_mode(&path.join("ca.crt"), bao::bed().root_ca_pem(), 0o644);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            self.volumes.insert("kube-api-access".to_owned(), path);
        }
    }

    /// The container's mounts resolved to host paths, parents before children.
    fn mounts_of(
        &self,
        pod: &PodSpec,
        container: &ContainerSpec,
    ) -> Vec<(PathBuf, String, bool, bool)> {
        let mut mounts: Vec<_> = container
            .mounts
            .iter()
            .map(|mount| {
                let volume = &self.volumes[&mount.volume];
                match &mount.sub_path {
                    Some(sub) => {
                        let source = volume.join(sub);
                        let is_file = source.is_file();
                        (source, mount.path.clone(), mount.read_only, is_file)
                    }
                    None => (volume.clone(), mount.path.clone(), mount.read_only, false),
                }
            })
            .collect();
        if pod.automount_token {
            mounts.push((
                self.volumes["kube-api-access"].clone(),
                SERVICE_ACCOUNT_DIR.to_owned(),
                true,
                false,
            ));
        }
        mounts.sort_by_key(|(_, target, _, _)| Path::new(target).components().count());
        mounts
    }

    /// Polls every startup and readiness probe until all answer 200; fails on a container that
    /// exits meanwhile.
    fn wait_until_ready(&mut self, pod: &PodSpec) {
        let started = Instant::now();
        let probes: Vec<(String, String, u16)> = pod
            .containers
            .iter()
            .flat_map(|c| c.probes.iter().map(move |p| (c, p)))
            .filter(|(_, p)| p.kind != "livenessProbe")
            .filter_map(|(c, p)| match &p.action {
                ProbeAction::Http { path, port } => Some((c.name.clone(), path.clone(), *port)),
                ProbeAction::Exec { .. } => None,
            })
            .collect();
        assert!(!probes.is_empty(), "no readiness probes to wait for");
        loop {
            let exited: Vec<String> = self
                .containers
                .iter_mut()
                .filter_map(|c| {
                    let status = c.child.try_wait().unwrap()?;
                    Some(format!("{} exited with {status}", c.name))
                })
                .collect();
            assert!(exited.is_empty(), "{exited:?}\n{}", self.logs());
            let pending: Vec<String> = probes
                .iter()
                .filter(|(_, path, port)| {
                    http_status(SocketAddr::from((self.pod_ip(), *port)), path) != Ok(200)
                })
                .map(|(name, path, port)| format!("{name} {path} :{port}"))
                .collect();
            if pending.is_empty() {
                eprintln!("pod ready in {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "not ready after {STARTUP_LIMIT:?}: {pending:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts Prometheus in the root namespace, scraping the PodMonitor's endpoints at the Pod's
    /// IP every second, and waits until it is ready.
    fn start_prometheus(&mut self, pod: &PodSpec) -> PrometheusClient {
        let targets: Vec<String> = pod
            .metrics_endpoints
            .iter()
            .map(|(port, path)| {
                format!(
                    "  - job_name: pki-sidecar-{port}\n    metrics_path: {path}\n    \
                     static_configs:\n      - targets: ['{}:{port}']\n        \
                     labels: {{job: pki-sidecar}}\n",
                    self.pod_ip()
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}",
            targets.concat()
        );
        let config = util::write_file(self.dir(), "prometheus.yml", &config);
        let storage = self.dir().join("prometheus-data");
        let port = util::free_port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = File::create(self.dir().join("prometheus.log")).unwrap();
        let child = Command::new("setpriv")
            .arg("--pdeathsig=KILL")
            .arg("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run prometheus (scripts/install-test-deps.sh installs it)");
        self.prometheus = Some(child);
        let started = Instant::now();
        while http_status(address, "/-/ready") != Ok(200) {
            if let Some(status) = self.prometheus.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "prometheus exited with {status}: {}",
                    std::fs::read_to_string(self.dir().join("prometheus.log")).unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        PrometheusClient { address }
    }

    /// The containers' logs, for failure messages.
    fn logs(&self) -> String {
        let mut text = String::new();
        for container in &self.containers {
            let log = std::fs::read_to_string(&container.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            text += &format!("--- {} (last {} lines)\n", container.name, tail.len());
            for line in tail.into_iter().rev() {
                text += line;
                text.push('\n');
            }
        }
        text
    }

    /// Tears everything down and asserts it went as a kubelet would want: every container exits
    /// 0 on SIGTERM within the grace period, nothing is left in the Pod's network namespace, and
    /// the namespace, the veth pair and Prometheus are gone.
    fn stop(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "teardown: {problems:#?}");
    }

    /// Stops everything, returning what went wrong (never panics: it also runs from `Drop`).
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // The kubelet sends SIGTERM to every container at once.
        for container in &self.containers {
            let pid = nix::unistd::Pid::from_raw(container.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + TERMINATION_GRACE;
        for mut container in self.containers.drain(..) {
            match wait_until(&mut container.child, deadline) {
                Some(status) if status.success() => {}
                Some(status) => problems.push(format!(
                    "container {} exited with {status} on SIGTERM; its log:\n{}",
                    container.name,
                    std::fs::read_to_string(&container.log).unwrap_or_default()
                )),
                None => problems.push(format!(
                    "container {} still running {TERMINATION_GRACE:?} after SIGTERM: killed",
                    container.name
                )),
            }
        }
        if let Some(mut prometheus) = self.prometheus.take() {
            let pid = nix::unistd::Pid::from_raw(prometheus.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            if wait_until(&mut prometheus, Instant::now() + Duration::from_secs(15)).is_none() {
                problems.push("prometheus did not exit on SIGTERM: killed".to_owned());
            }
        }
        // Anything still in the namespace (a probe's leftover, a stray child) is a bug.
        if let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.network.name])
            .output()
        {
            let pids = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if !pids.is_empty() {
                problems.push(format!("processes left in the Pod's namespace: {pids}"));
                for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        problems.extend(self.network.delete());
        problems
    }
}

impl Drop for PodHarness {
    fn drop(&mut self) {
        for problem in self.teardown() {
            eprintln!("pod teardown: {problem}");
        }
    }
}

/// Waits for `child` until `deadline`; kills it then (returning `None`).
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the Pod test must run as root: it creates a network namespace, a veth pair and mount \
         namespaces (CI runs the tests as root; locally: `sudo -E cargo test --test integration \
         pod`). It does not skip."
    );
}

/// `path` as a single-quoted shell word.
fn quote(path: impl AsRef<Path>) -> String {
    let text = path.as_ref().to_str().expect("UTF-8 path");
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The top-level directory an overlay must cover so that `target` can be created: that of the
/// longest existing ancestor once symlinks are resolved (`/var/run/...` lands in `/run`).
fn overlay_root(target: &str) -> String {
    let mut existing = Path::new(target);
    while !existing.exists() {
        existing = existing.parent().expect("an absolute path");
    }
    let canonical = existing.canonicalize().unwrap();
    match canonical.components().nth(1) {
        Some(Component::Normal(top)) => format!("/{}", top.to_str().unwrap()),
        _ => panic!("{target}: a mount point directly in / cannot be made without touching /"),
    }
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `binary` if `uid`/`gid` can execute it where it is (every ancestor searchable, the file
/// readable and executable by others), else a copy of mode 0755 in `dir`.
fn executable_by(binary: &str, uid: u32, gid: u32, dir: &Path) -> PathBuf {
    let check = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(binary)
        .arg("--version")
        .output()
        .expect("run setpriv (util-linux)");
    if check.status.success() {
        return PathBuf::from(binary);
    }
    let copy = dir.join("pki-sidecar");
    std::fs::copy(binary, &copy).expect("copy the binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Sets a namespaced sysctl inside network namespace `ns` and checks that it took there only.
fn set_sysctl(ns: &str, name: &str, value: &str) {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let outside = std::fs::read_to_string(&path).unwrap_or_default();
    let output = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c"])
        .arg(r#"printf '%s\n' "$1" > "$2" && cat "$2""#)
        .args(["sysctl", value, &path])
        .output()
        .expect("run ip netns exec");
    assert!(
        output.status.success(),
        "sysctl {name}={value} in {ns}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), value);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        outside,
        "{name} must be namespaced: the root namespace's value changed"
    );
}

/// Copies connections accepted on `listener` to `target` (the Pod's way out to OpenBao).
async fn forward(listener: tokio::net::TcpListener, target: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The network namespace

/// `pki-pod-<pid>-<n>`, with `lo` up and a veth pair: `eth0` inside (`pod_ip`), `pkp<pid>h<n>`
/// outside (`host_ip`), on a /30 of 10.128.0.0/9 derived from the pid and `n`. Deleted on drop,
/// and by a watchdog if the test binary is killed (`Drop` never runs then).
struct Network {
    name: String,
    host_interface: String,
    host_ip: Ipv4Addr,
    pod_ip: Ipv4Addr,
    /// `sh` blocked reading its stdin (a pipe from this process): when the pipe closes — by
    /// [`Network::delete`] or because this process died — it deletes the interface and the
    /// namespace. The containers die with the test binary too (`setpriv --pdeathsig`).
    watchdog: Option<Child>,
}

/// What the watchdog runs: `$1` is the interface, `$2` the namespace.
const NETWORK_WATCHDOG: &str =
    r#"read _ignored; ip link del "$1" 2>/dev/null; ip netns del "$2" 2>/dev/null; exit 0"#;

impl Network {
    fn create() -> Network {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let index = ((pid << 3) | (n & 7)) & ((1 << 21) - 1);
        let subnet = u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (index << 2);
        let name = format!("pki-pod-{pid}-{n}");
        let host_interface = format!("pkp{pid}h{n}");
        let watchdog = Command::new("sh")
            .args(["-c", NETWORK_WATCHDOG, "pod-network-watchdog"])
            .args([&host_interface, &name])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run sh");
        let network = Network {
            name,
            host_interface,
            host_ip: Ipv4Addr::from(subnet + 1),
            pod_ip: Ipv4Addr::from(subnet + 2),
            watchdog: Some(watchdog),
        };
        // Leftovers of a killed run that had the same pid (its watchdog should have removed them).
        let _ = remove_network(&network.host_interface, &network.name);
        let host = network.host_ip.to_string() + "/30";
        let pod = network.pod_ip.to_string() + "/30";
        let ns = network.name.clone();
        let interface = network.host_interface.clone();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "link", "add", &interface, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["addr", "add", &host, "dev", &interface]);
        ip(&["link", "set", &interface, "up"]);
        ip(&["-n", &ns, "addr", "add", &pod, "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        network
    }

    /// Deletes the veth pair and the namespace; returns what is still there afterwards.
    fn delete(&mut self) -> Vec<String> {
        let Some(mut watchdog) = self.watchdog.take() else {
            return Vec::new();
        };
        drop(watchdog.stdin.take());
        let _ = watchdog.wait();
        remove_network(&self.host_interface, &self.name)
    }
}

/// Deletes `interface` (and so its veth peer) and namespace `ns`, whichever exist; returns what
/// is still there afterwards.
fn remove_network(interface: &str, ns: &str) -> Vec<String> {
    let _ = Command::new("ip")
        .args(["link", "del", interface])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
    let mut problems = Vec::new();
    if Path::new("/run/netns").join(ns).exists() {
        problems.push(format!("network namespace {ns} still exists"));
    }
    if Path::new("/sys/class/net").join(interface).exists() {
        problems.push(format!("interface {interface} still exists"));
    }
    problems
}

impl Drop for Network {
    fn drop(&mut self) {
        for problem in self.delete() {
            eprintln!("pod network teardown: {problem}");
        }
    }
}

/// Runs `ip ARGS`, panicking with its message on failure.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `ip` ({e}): scripts/install-test-deps.sh installs iproute2")
    });
    assert!(
        output.status.success(),
        "`ip {}` failed: {} (the Pod test needs root and network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

// ---------------------------------------------------------------------------------------------
// Clients

/// The status of `GET path` on `address` (kubelet-style: a fresh connection, 5 s timeout).
fn http_status(address: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if raw.is_empty() {
        return Err("empty response".to_owned());
    }
    Ok(util::parse_response(&raw).status)
}

/// A client trusting only the bed's root CA, with no session resumption, so every handshake
/// shows the certificate served at that moment.
fn client_config(root_ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA usable");
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One `GET https://foo.home/` on a new connection to `address`, the chain verified against
/// the bed's root. Returns the served leaf's serial.
async fn get_hello(address: SocketAddr, config: Arc<ClientConfig>) -> Result<String, String> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
        let serial = CertInfo::parse(&leaf)?.serial;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http: {e}"))?;
        tokio::spawn(connection);
        let request = hyper::Request::get("/")
            .header(hyper::header::HOST, SERVER_NAME)
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
        Ok(serial)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 10s".to_owned()))
}

/// The chain the proxy serves for foo.home (verified against the bed's root), as DER.
async fn served_chain(address: SocketAddr) -> Vec<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(bao::bed().root_ca_pem()))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the proxy");
    let certificates = tls.get_ref().1.peer_certificates().expect("certificates");
    certificates.iter().map(|c| c.to_vec()).collect()
}

/// Prometheus' HTTP API.
struct PrometheusClient {
    address: SocketAddr,
}

impl PrometheusClient {
    /// Queries `expr` until `done` holds for the result vector, or panics after `limit`.
    fn wait_for(
        &self,
        expr: &str,
        limit: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            let result = self.query(expr);
            if done(&result) {
                return result;
            }
            assert!(
                started.elapsed() < limit,
                "prometheus: {expr} still {result:?} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `/api/v1/query?query=EXPR`: the result vector.
    fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let output = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--fail",
                "--max-time",
                "10",
                "--get",
            ])
            .arg("--data-urlencode")
            .arg(format!("query={expr}"))
            .arg(format!("http://{}/api/v1/query", self.address))
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "prometheus query {expr}: {body}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let body: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("prometheus answer {body:?}: {e}"));
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The value of one instant-vector sample (`{"metric": ..., "value": [time, "value"]}`).
fn sample_value(sample: &serde_json::Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}
