//! Injection end to end: the project's annotated Deployment (`deploy/examples/`) has its Pod
//! sent to the running `pki-sidecar webhook` as a real AdmissionReview over HTTPS, the answer's
//! JSONPatch is applied (by the tests' own applier), and the Pod that results is run by the Pod
//! runner against the OpenBao bed, with the image's `app` role as the workload: curl gets
//! `hello world` over TLS from the injected proxy, the certificate renews, no request fails.
//!
//! What a cluster would do and this test stands in for: the Deployment controller turning the
//! template into a Pod (the template's `metadata` and `spec` with a `generateName`), the API
//! server posting the review (the webhook answers the same bytes it would), the kubelet (the
//! runner). The annotations name what the bed serves (the seed's role, PKI path and domain), and
//! the ServiceAccount is the bed's, as a cluster's Vault role would be bound to it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use pki_sidecar::certs::CertInfo;
use pki_sidecar::tls::pem;
use serde_json::json;

use super::runner::{EventKind, Inputs, PodHarness, PodSpec, require_root, yaml_documents};
use super::{SERVER_NAME, requests_during};
use crate::util::{self, bao};
use crate::webhook::{Webhook, ca, leaf, patched, pod_review};

/// The annotated example, as a user would apply it.
const EXAMPLE: &str = "deploy/examples/annotated-deployment.yaml";
/// The address injected agents are given; the runner rewrites it to its forwarder to the bed.
const VAULT_ADDRESS: &str = "https://vault.home";

#[test]
fn an_annotated_deployment_through_the_webhook_runs_serves_and_renews() {
    require_root();
    let started = Instant::now();
    let text = std::fs::read_to_string(util::repo().join(EXAMPLE)).expect("the example");
    let documents = yaml_documents(&text);
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment in the example");
    let template = &deployment["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["pki-sidecar.io/inject"], "true",
        "the example asks for injection"
    );

    // The Pod the ReplicaSet controller would create from the template, in the bed's namespace
    // and with its ServiceAccount, asking for what the bed's PKI role allows, for 12 seconds so
    // that the test sees renewals.
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"].clone(),
        "spec": template["spec"].clone(),
    });
    pod["metadata"]["generateName"] = json!("web-6d9f7c5b8-");
    pod["metadata"]["namespace"] = json!(bao::NAMESPACE);
    pod["spec"]["serviceAccountName"] = json!(bao::SERVICE_ACCOUNT);
    let annotations = pod["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    for (key, value) in [
        ("pki-sidecar.io/role", bao::LOGIN_ROLE),
        ("pki-sidecar.io/pki-path", bao::ISSUE_PATH),
        ("pki-sidecar.io/common-name", SERVER_NAME),
        ("pki-sidecar.io/alt-names", "localhost"),
        ("pki-sidecar.io/ttl", "12s"),
    ] {
        assert!(annotations.contains_key(key), "the example sets {key}");
        annotations.insert(key.to_owned(), json!(value));
    }
    let review = pod_review(&pod);

    // The webhook, serving with a certificate of its own CA, as cert-manager would give it.
    let webhook_ca = ca();
    let webhook = Webhook::start(
        &webhook_ca,
        Some(&leaf(&webhook_ca)),
        &["--vault-address", VAULT_ADDRESS],
    );
    let response = webhook.review(&review);
    let injected = patched(&pod, &response).unwrap_or_else(|| {
        panic!(
            "the webhook refused the example: {response}\n{}",
            webhook.log()
        )
    });
    // The API server's reinvocation (`reinvocationPolicy: IfNeeded`) sends the injected Pod
    // again: it is allowed as it is.
    let again = webhook.review(&pod_review(&injected));
    assert_eq!(again["allowed"], true, "{again}");
    assert!(
        again.get("patch").is_none(),
        "a second pass patched: {again}"
    );
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "the webhook exits 0 on SIGTERM: {log}");

    // What was added: an init container that issues first, the agent and the proxy beside the
    // app, and the status annotation that makes a second review a no-op.
    let names = |key: &str| -> Vec<String> {
        injected["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let init_containers = names("initContainers");
    let containers = names("containers");
    assert_eq!(init_containers.len(), 1, "one init container: {injected}");
    assert_eq!(containers.len(), 3, "app, agent, proxy: {containers:?}");
    assert!(containers.iter().any(|n| n == "app"));
    assert_eq!(
        injected["metadata"]["annotations"]["pki-sidecar.io/status"], "injected",
        "{injected}"
    );

    // The kubelet's part.
    let mut inputs = Inputs::from_manifests(&documents);
    inputs.namespace = bao::NAMESPACE.to_owned();
    inputs.vault_address = VAULT_ADDRESS.to_owned();
    let spec = PodSpec::from_pod(&injected, &inputs);
    let harness = PodHarness::start(&spec);

    // The first certificate was issued by the init container before anything else started.
    let events = harness.events();
    let init = &init_containers[0];
    let init_exit = events
        .iter()
        .position(|e| &e.container == init && matches!(e.what, EventKind::Exited(_)))
        .unwrap_or_else(|| panic!("the init container never ended: {events:?}"));
    assert!(
        matches!(&events[init_exit].what, EventKind::Exited(status) if status.success()),
        "{events:?}"
    );
    for name in &containers {
        let start = events
            .iter()
            .position(|e| &e.container == name && matches!(e.what, EventKind::Started { .. }))
            .unwrap_or_else(|| panic!("{name} never started: {events:?}"));
        assert!(start > init_exit, "{name} started before {init} ended");
    }

    // The injected proxy's port, from the annotation the example sets.
    let port: u16 = template["metadata"]["annotations"]["pki-sidecar.io/proxy-port"]
        .as_str()
        .expect("proxy-port")
        .parse()
        .expect("a port number");
    let address = SocketAddr::from((harness.pod_ip(), port));
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
    let failing = harness.failing_probes(&spec);
    assert!(failing.is_empty(), "{failing:?}\n{}", harness.logs());

    // The certificate the injected agent keeps fresh, served without a failed request.
    let report = requests_during(&harness, address, Duration::from_secs(25));
    let distinct: BTreeSet<&String> = report.serials.iter().collect();
    eprintln!(
        "injected pod: {} requests, {} failed, {} certificates served",
        report.ok + report.failures.len(),
        report.failures.len(),
        distinct.len()
    );
    assert!(
        report.failures.is_empty(),
        "{} requests failed, e.g. {:?}\n{}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(5)],
        harness.logs()
    );
    assert!(
        distinct.len() >= 2,
        "the served certificate never changed in 25 s: {distinct:?}\n{}",
        harness.logs()
    );
    assert!(report.ok > 100, "too few requests: {}", report.ok);
    let served = issued_leaf(&harness, &spec);
    assert_eq!(served.subject_cn, SERVER_NAME);
    harness.stop();
    eprintln!("injected pod test took {:?}", started.elapsed());
}

/// The leaf in the certificate file of the injected volume mounted by the proxy.
fn issued_leaf(harness: &PodHarness, spec: &PodSpec) -> CertInfo {
    let volume = spec
        .containers
        .iter()
        .flat_map(|c| c.mounts.iter())
        .map(|m| m.volume.clone())
        .find(|v| harness.volume(v).join("tls.crt").is_file())
        .expect("a volume holding tls.crt");
    let text = std::fs::read_to_string(harness.volume(&volume).join("tls.crt")).unwrap();
    CertInfo::parse(&pem::blocks(&text).unwrap()[0].der).unwrap()
}
