//! Pods run on one machine without Kubernetes, against the OpenBao bed: the Pod of `deploy/` as
//! rendered by `kubectl kustomize`, and a hand-written Pod shaped like an injected one (init
//! container, per-container users). The runner itself, and how to use it on any Pod object
//! (e.g. the admission webhook's), is [`runner`].
//!
//! Real: the binary (the same file for every container), its args, environment, paths, uids,
//! ports and sysctls; OpenBao with the seed's Vault setup ([`bao::bed`]); curl and Prometheus as
//! clients. Stood in for: see [`runner`].

mod injected;
pub mod runner;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use pki_sidecar::certs::{self, CertInfo};
use pki_sidecar::tls::pem;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::util::{self, bao};
use runner::{
    EventKind, Inputs, PodHarness, PodSpec, ProbeAction, http_status, require_root, sample_value,
};

/// The name the certificate is issued for (the seed's `common_name`) and the exec probe sends.
const SERVER_NAME: &str = "foo.home";
/// The volume holding the agent's HCL (kustomize adds a hash to its ConfigMap's name), and its key.
const AGENT_CONFIG_VOLUME: &str = "agent-config";
const AGENT_CONFIG_KEY: &str = "vault-agent-config.hcl";

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
                ProbeAction::Tcp { port } => {
                    panic!(
                        "{}: the manifests have no tcpSocket probe ({port})",
                        container.name
                    )
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
    // `ss -Hltne`'s fourth column is the local address; other columns hold numbers too (the
    // socket's `sk:` cookie once read `sk:80`).
    let listening_on = |port: u16| {
        sockets.lines().find(|line| {
            line.split_whitespace()
                .nth(3)
                .is_some_and(|local| local.ends_with(&format!(":{port}")))
        })
    };
    let owners = [
        (80, "app"),
        (443, "proxy"),
        (9101, "vault"),
        (9102, "proxy"),
        (9103, "app"),
    ];
    for (port, owner) in owners {
        let line = listening_on(port)
            .unwrap_or_else(|| panic!("nothing listens on {port} in the Pod: {sockets}"));
        let uid = pod.container(owner).run_as_user;
        assert_eq!(uid, 65532, "the manifest's user");
        assert!(line.contains(&format!("uid:{uid}")), "{line}");
    }
    // The app answers on loopback only: plain HTTP to the Pod IP cannot go around the proxy.
    let app = listening_on(80).unwrap();
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
    let report = requests_during(&harness, address, Duration::from_secs(25));
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

/// A hand-written Pod shaped like an injected one (`pod/injected-pod.yaml`): the init agent issues
/// the first certificate and exits 0 before anything else starts, so the proxy finds the pair at
/// its start; then the agent sidecar, the proxy and the workload each run as their own user, and
/// curl gets `hello world` over TLS from the Pod IP.
#[test]
fn an_injected_pod_runs_its_init_container_first_and_each_container_as_its_user() {
    require_root();
    let started = Instant::now();
    let path = util::repo().join("tests/integration/pod/injected-pod.yaml");
    let text = std::fs::read_to_string(&path).expect("the fixture");
    let documents = runner::yaml_documents(&text);
    let pod_object = documents
        .iter()
        .find(|d| d["kind"] == "Pod")
        .expect("a Pod");
    let mut inputs = Inputs::from_manifests(&documents);
    // VAULT_CACERT must hold a certificate even over http: the bed's CA, as a cluster would hold.
    let vault_ca = inputs.secrets.get_mut("web-vault-ca").expect("the Secret");
    vault_ca.insert(
        "ca.crt".to_owned(),
        bao::bed().root_ca_pem().as_bytes().to_vec(),
    );
    let spec = PodSpec::from_pod(pod_object, &inputs);
    let init = "pki-sidecar-agent-init";
    let names = ["pki-sidecar-agent", "pki-sidecar-proxy", "web"];
    assert_eq!(spec.init_containers.len(), 1);
    assert_eq!(
        spec.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    let endpoints: BTreeSet<u16> = spec.metrics_endpoints.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        endpoints,
        BTreeSet::from([9101, 9102, 9103]),
        "the ports named *metrics*"
    );

    let harness = PodHarness::start(&spec);

    // The init container exited 0 before any container started, and had written the pair by
    // then: the proxy's start found both files in the emptyDir.
    let events = harness.events();
    let position = |name: &str, started: bool| {
        events
            .iter()
            .position(|e| {
                e.container == name && matches!(e.what, EventKind::Started { .. }) == started
            })
            .unwrap_or_else(|| panic!("no event for {name}: {events:?}"))
    };
    let init_exit = position(init, false);
    assert!(
        matches!(&events[init_exit].what, EventKind::Exited(status) if status.success()),
        "{events:?}"
    );
    assert!(position(init, true) < init_exit);
    eprintln!(
        "the init container took {:?}",
        events[init_exit].at - events[position(init, true)].at
    );
    for name in names {
        assert!(
            position(name, true) > init_exit,
            "{name} started before the init container ended: {events:?}"
        );
    }
    let EventKind::Started { files } = &events[position("pki-sidecar-proxy", true)].what else {
        unreachable!()
    };
    for file in ["pki-sidecar-tls/tls.crt", "pki-sidecar-tls/tls.key"] {
        assert!(
            files.iter().any(|f| f == file),
            "{file} when the proxy started: {files:?}"
        );
    }
    assert!(
        harness
            .log("pki-sidecar-proxy")
            .contains("serving the certificate"),
        "{}",
        harness.logs()
    );

    // curl, outside the Pod, over TLS to the Pod IP's 8443.
    curl_hello(&harness, 8443);

    // Every probe passes, liveness too (the proxy's tcpSocket, the agent's /healthz).
    let failing = harness.failing_probes(&spec);
    assert!(failing.is_empty(), "{failing:?}\n{}", harness.logs());

    // Each process as its container's user, with the fsGroup as a supplementary group.
    for (name, uid, gid) in [
        ("pki-sidecar-agent", 100, 1000),
        ("pki-sidecar-proxy", 100, 1000),
        ("web", 65532, 65532),
    ] {
        let status = std::fs::read_to_string(format!("/proc/{}/status", harness.pid(name)))
            .expect("the container's process");
        let field = |key: &str| -> Vec<u32> {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            line[key.len()..]
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        };
        assert_eq!(field("Uid:"), [uid; 4], "{name}");
        assert_eq!(field("Gid:"), [gid; 4], "{name}");
        assert_eq!(field("Groups:"), [1000], "{name}: the fsGroup");
        let name_line = status.lines().next().unwrap();
        assert!(
            name_line.contains("pki-sidecar"),
            "{name}: the binary itself: {name_line}"
        );
    }

    // The environment: a field reference, and the Vault address rewritten to the forwarder.
    let environ = std::fs::read(format!(
        "/proc/{}/environ",
        harness.pid("pki-sidecar-agent")
    ))
    .expect("the agent's environment");
    let environ: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    for expected in [
        format!("POD_IP={}", harness.pod_ip()),
        "POD_NAME=web-injected".to_owned(),
        "POD_NAMESPACE=poc-sidecar-tls-pki".to_owned(),
        format!("VAULT_ADDR={}", harness.vault_addr()),
        "HOSTNAME=web-injected".to_owned(),
    ] {
        assert!(environ.contains(&expected), "{expected} in {environ:?}");
    }

    // The files: the key readable by the fsGroup only, the Secret's item through its subPath.
    let key = harness.volume("pki-sidecar-tls").join("tls.key");
    let metadata = std::fs::metadata(&key).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        (metadata.uid(), metadata.gid(), metadata.mode() & 0o777),
        (100, 1000, 0o640),
        "tls.key: written by the agent's user in the fsGroup's setgid directory"
    );
    let cat = ["cat".to_owned(), "/etc/ssl/certs/vault.pem".to_owned()];
    let output = harness.exec_in_container("pki-sidecar-agent", &cat);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        bao::bed().root_ca_pem(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = harness.exec_in_container("web", &cat);
    assert!(
        !output.status.success(),
        "the workload does not mount the Secret"
    );

    harness.stop();
    let took = started.elapsed();
    eprintln!("injected pod test took {took:?}");
}

/// A failing init container stops the start with its exit status and its log (where a kubelet
/// would retry forever), the harness cleaning up behind it; a volume kind the runner does not
/// know is refused by name before anything runs.
#[test]
fn a_failing_init_container_fails_the_start_with_its_log() {
    require_root();
    let pod = serde_json::json!({
        "metadata": {"name": "failing-init"},
        "spec": {
            "automountServiceAccountToken": false,
            "initContainers": [{
                "name": "setup",
                "command": ["sh", "-c", "echo cannot set up >&2; exit 3"],
            }],
            "containers": [{"name": "web", "args": ["app"]}],
        },
    });
    let spec = PodSpec::from_pod(&pod, &Inputs::default());
    assert_eq!(spec.container("web").run_as_user, 65532, "the image's user");
    let failure =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| PodHarness::start(&spec)))
            .map(drop)
            .expect_err("the start fails");
    let message = panic_text(failure);
    assert!(
        message.contains("init container setup exited with exit status: 3")
            && message.contains("cannot set up"),
        "{message}"
    );

    let mut unknown = pod.clone();
    unknown["spec"]["volumes"] =
        serde_json::json!([{"name": "data", "hostPath": {"path": "/srv"}}]);
    let failure = std::panic::catch_unwind(|| PodSpec::from_pod(&unknown, &Inputs::default()))
        .map(drop)
        .expect_err("hostPath is refused");
    let message = panic_text(failure);
    assert!(
        message.contains("volume data: unsupported kind"),
        "{message}"
    );
}

/// A native sidecar (an init container with `restartPolicy: Always`) starts in its turn, is
/// running when the next init container runs, and stays up beside the containers until the
/// Pod stops.
#[test]
fn a_native_sidecar_init_container_runs_beside_the_containers() {
    require_root();
    let app = |name: &str, metrics: u16| {
        serde_json::json!({
            "name": name,
            "args": ["app"],
            "env": [{"name": "PKI_SIDECAR_CONFIG", "value": format!("/etc/apps/{name}.hcl")}],
            "ports": [{"name": "metrics", "containerPort": metrics}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
            "securityContext": {"readOnlyRootFilesystem": true},
            "volumeMounts": [{"name": "apps", "mountPath": "/etc/apps", "readOnly": true}],
        })
    };
    let mut sidecar = app("hello", 9103);
    sidecar["restartPolicy"] = "Always".into();
    sidecar["startupProbe"] = sidecar["readinessProbe"].clone();
    let pod = serde_json::json!({
        "metadata": {"name": "native-sidecar"},
        "spec": {
            "automountServiceAccountToken": false,
            "initContainers": [
                sidecar,
                {
                    "name": "reach-hello",
                    "command": ["curl", "--silent", "--show-error", "--fail", "--max-time", "5",
                                "http://127.0.0.1:8080/"],
                },
            ],
            "containers": [app("web", 9104)],
            "volumes": [{"name": "apps", "configMap": {"name": "apps"}}],
        },
    });
    let mut inputs = Inputs::default();
    let config = |listen: u16, metrics: u16| {
        format!(
            "app {{\n  listen = \"127.0.0.1:{listen}\"\n  metrics_listen = \"0.0.0.0:{metrics}\"\n}}\n"
        )
    };
    inputs.config_maps.insert(
        "apps".to_owned(),
        [
            ("hello.hcl".to_owned(), config(8080, 9103)),
            ("web.hcl".to_owned(), config(8081, 9104)),
        ]
        .into(),
    );
    let spec = PodSpec::from_pod(&pod, &inputs);
    assert!(spec.init_containers[0].sidecar && !spec.init_containers[1].sidecar);
    let harness = PodHarness::start(&spec);

    let order: Vec<String> = harness
        .events()
        .iter()
        .map(|e| match &e.what {
            EventKind::Started { .. } => format!("{} started", e.container),
            EventKind::Exited(status) => format!("{} exited: {status}", e.container),
        })
        .collect();
    assert_eq!(
        order,
        [
            "hello started",
            "reach-hello started",
            "reach-hello exited: exit status: 0",
            "web started",
        ]
    );
    assert_eq!(harness.log("reach-hello").trim_end(), "hello world");
    let failing = harness.failing_probes(&spec);
    assert!(failing.is_empty(), "{failing:?}\n{}", harness.logs());
    let status = std::fs::read_to_string(format!("/proc/{}/status", harness.pid("hello")));
    assert!(
        status.is_ok_and(|s| s.contains("\nUid:\t65532\t")),
        "the sidecar runs"
    );
    harness.stop();
}

/// A panic's message.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
    }
}

/// curl, as a client outside the Pod, `GET https://foo.home:PORT/` at the Pod's IP verified
/// against the bed's root: asserts `hello world`.
pub(crate) fn curl_hello(harness: &PodHarness, port: u16) {
    let root_ca = util::write_file(harness.dir(), "root-ca.pem", bao::bed().root_ca_pem());
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
        .arg("--cacert")
        .arg(&root_ca)
        .arg("--resolve")
        .arg(format!("{SERVER_NAME}:{port}:{}", harness.pod_ip()))
        .arg(format!("https://{SERVER_NAME}:{port}/"))
        .output()
        .expect("run curl (scripts/install-test-deps.sh installs it)");
    assert!(
        output.status.success(),
        "curl: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        harness.logs()
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        "hello world"
    );
}

/// New TLS connections to `address` (as `foo.home`, verified against the bed's root), one `GET /`
/// each, from two clients every 50 ms for `run_for`: what they saw.
pub(crate) fn requests_during(
    harness: &PodHarness,
    address: SocketAddr,
    run_for: Duration,
) -> LoopReport {
    requests_during_trusting(harness, address, run_for, bao::bed().root_ca_pem())
}

/// [`requests_during`], verifying against `root_ca_pem` (a Vault other than the bed's).
pub(crate) fn requests_during_trusting(
    harness: &PodHarness,
    address: SocketAddr,
    run_for: Duration,
    root_ca_pem: &str,
) -> LoopReport {
    harness.block_on(async move {
        let config = client_config(root_ca_pem);
        let deadline = tokio::time::Instant::now() + run_for;
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
    })
}

#[derive(Default)]
pub(crate) struct LoopReport {
    pub ok: usize,
    pub failures: Vec<String>,
    /// The serials in the order each client first saw them.
    pub serials: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A client trusting only the bed's root CA, with no session resumption, so every handshake
/// shows the certificate served at that moment.
pub(crate) fn client_config(root_ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA usable");
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One `GET https://foo.home/` on a new connection to `address`, the chain verified against
/// the bed's root. Returns the served leaf's serial.
pub(crate) async fn get_hello(
    address: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<String, String> {
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
pub(crate) async fn served_chain(address: SocketAddr) -> Vec<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(bao::bed().root_ca_pem()))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the proxy");
    let certificates = tls.get_ref().1.peer_certificates().expect("certificates");
    certificates.iter().map(|c| c.to_vec()).collect()
}
