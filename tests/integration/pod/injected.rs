//! Injection end to end, for both annotation vocabularies: an annotated Pod is sent to the
//! running `pki-sidecar webhook` as a real AdmissionReview over HTTPS, the answer's JSONPatch is
//! applied (by the tests' own applier), and the Pod that results is run by the Pod runner against
//! the OpenBao bed: curl gets `hello world` over TLS, the certificate renews, no request fails.
//!
//! - `pki-sidecar.io/`: the project's annotated Deployment (`deploy/examples/`), the image's
//!   `app` role as the workload behind the injected proxy.
//! - `vault.hashicorp.com/`: a Pod written for the Vault Agent Injector
//!   (`vault-annotated-pod.yaml`), unchanged, whose own TLS server (pki-sidecar's `proxy`, where
//!   nginx stood) reads the files the injected agent renders into `/vault/secrets`.
//!
//! What a cluster would do and this test stands in for: the controller turning a template into a
//! Pod (its `metadata` and `spec` with a `generateName`), the API server posting the review (the
//! webhook answers the same bytes it would), the kubelet (the runner). The annotations name what
//! the bed serves (the seed's role, PKI path and domain), and the ServiceAccount is the bed's, as
//! a cluster's Vault role would be bound to it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pki_sidecar::certs::CertInfo;
use pki_sidecar::tls::pem;
use serde_json::{Value, json};

use super::runner::{EventKind, Inputs, PodHarness, PodSpec, require_root, yaml_documents};
use super::{SERVER_NAME, curl_hello, requests_during};
use crate::util::{self, bao};
use crate::webhook::{Webhook, ca, leaf, patched, pod_review};

/// The address injected agents are given; the runner rewrites it to its forwarder to the bed.
const VAULT_ADDRESS: &str = "https://vault.home";
/// The certificates' lifetime in these tests, so that they renew while requests run.
const TTL: &str = "12s";

#[test]
fn an_annotated_deployment_through_the_webhook_runs_serves_and_renews() {
    require_root();
    let started = Instant::now();
    let text =
        std::fs::read_to_string(util::repo().join("deploy/examples/annotated-deployment.yaml"))
            .expect("the example");
    let documents = yaml_documents(&text);
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment in the example");
    let template = &deployment["spec"]["template"];

    // The Pod the ReplicaSet controller would create from the template, in the bed's namespace
    // and with its ServiceAccount, asking for what the bed's PKI role allows.
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"].clone(),
        "spec": template["spec"].clone(),
    });
    pod["metadata"]["generateName"] = json!("web-6d9f7c5b8-");
    pod["metadata"]["namespace"] = json!(bao::NAMESPACE);
    pod["spec"]["serviceAccountName"] = json!(bao::SERVICE_ACCOUNT);
    set_annotations(
        &mut pod,
        &[
            ("pki-sidecar.io/role", bao::LOGIN_ROLE),
            ("pki-sidecar.io/pki-path", bao::ISSUE_PATH),
            ("pki-sidecar.io/common-name", SERVER_NAME),
            ("pki-sidecar.io/alt-names", "localhost"),
            ("pki-sidecar.io/ttl", TTL),
        ],
    );
    let injected = through_the_webhook(&pod);

    // What was added: an init container that issues first, the agent and the proxy beside the
    // app, and the status annotation.
    assert_eq!(names(&injected, "initContainers").len(), 1, "{injected}");
    let containers = names(&injected, "containers");
    assert_eq!(containers.len(), 3, "app, agent, proxy: {containers:?}");
    assert!(containers.iter().any(|n| n == "app"));
    assert_eq!(
        injected["metadata"]["annotations"]["pki-sidecar.io/status"], "injected",
        "{injected}"
    );

    let port: u16 = template["metadata"]["annotations"]["pki-sidecar.io/proxy-port"]
        .as_str()
        .expect("the example sets proxy-port")
        .parse()
        .expect("a port number");
    run_serve_and_renew(&injected, &documents, port, "tls.crt");
    eprintln!("injected deployment test took {:?}", started.elapsed());
}

#[test]
fn a_vault_k8s_annotated_pod_through_the_webhook_feeds_its_own_tls_server() {
    require_root();
    let started = Instant::now();
    let text = std::fs::read_to_string(
        util::repo().join("tests/integration/pod/vault-annotated-pod.yaml"),
    )
    .expect("the fixture");
    let documents = yaml_documents(&text);
    let mut pod = documents
        .iter()
        .find(|d| d["kind"] == "Pod")
        .expect("a Pod")
        .clone();
    // Only the lifetime changes, so that the test sees renewals.
    let key = "vault.hashicorp.com/agent-inject-template-tls.crt";
    let template = pod["metadata"]["annotations"][key]
        .as_str()
        .expect("the template annotation")
        .to_owned();
    assert_eq!(template.matches("\"ttl=24h\"").count(), 1, "{template}");
    set_annotations(
        &mut pod,
        &[(
            key,
            &template.replace("\"ttl=24h\"", &format!("\"ttl={TTL}\"")),
        )],
    );
    let injected = through_the_webhook(&pod);

    // vault-k8s's names, so that `kubectl logs -c vault-agent` and dashboards keep working.
    assert_eq!(names(&injected, "initContainers"), ["vault-agent-init"]);
    let containers = names(&injected, "containers");
    assert!(
        containers.iter().any(|n| n == "vault-agent"),
        "{containers:?}"
    );
    assert_eq!(
        injected["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );
    // The fixture's own TLS server listens on 8443.
    run_serve_and_renew(&injected, &documents, 8443, "tls.crt");
    eprintln!("vault-k8s annotated pod test took {:?}", started.elapsed());
}

/// Sets `annotations` on `pod`, each of which must already be there.
fn set_annotations(pod: &mut Value, annotations: &[(&str, &str)]) {
    let map = pod["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    for (key, value) in annotations {
        assert!(map.contains_key(*key), "the Pod sets {key}");
        map.insert((*key).to_owned(), json!(value));
    }
}

/// `pod` sent to a webhook serving with a certificate of its own CA (as cert-manager would give
/// it), and its answer's patch applied; then the injected Pod sent again, as the API server's
/// reinvocation (`reinvocationPolicy: IfNeeded`) does, and allowed as it is.
fn through_the_webhook(pod: &Value) -> Value {
    let webhook_ca = ca();
    let webhook = Webhook::start(
        &webhook_ca,
        Some(&leaf(&webhook_ca)),
        &["--vault-address", VAULT_ADDRESS],
    );
    // As the API server's calls succeed only once a replica is ready (its Service's endpoints).
    util::wait_until(Duration::from_secs(30), "the webhook ready", || {
        webhook.readyz().status == 200
    });
    let response = webhook.review(&pod_review(pod));
    let injected = patched(pod, &response)
        .unwrap_or_else(|| panic!("the webhook refused the Pod: {response}\n{}", webhook.log()));
    assert_ne!(&injected, pod, "nothing injected: {response}");
    let again = webhook.review(&pod_review(&injected));
    assert_eq!(again["allowed"], true, "{again}");
    assert!(
        again.get("patch").is_none(),
        "a second pass patched: {again}"
    );
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "the webhook exits 0 on SIGTERM: {log}");
    injected
}

/// The names of the Pod's `key` containers (`containers`, `initContainers`).
fn names(pod: &Value, key: &str) -> Vec<String> {
    pod["spec"][key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `injected` (the ConfigMaps and ServiceAccounts of `documents` beside it) as a kubelet
/// would, then checks: every init container exited 0 before any container started; curl gets
/// `hello world` over TLS on the Pod IP's `port`; every probe passes; for 25 s, two clients on
/// new connections see no failed request and at least two certificates (renewed at ttl 12s);
/// the file `cert_file` in the Pod's volumes holds a leaf for `foo.home`. Stops the Pod.
fn run_serve_and_renew(injected: &Value, documents: &[Value], port: u16, cert_file: &str) {
    let mut inputs = Inputs::from_manifests(documents);
    inputs.namespace = bao::NAMESPACE.to_owned();
    inputs.vault_address = VAULT_ADDRESS.to_owned();
    let spec = PodSpec::from_pod(injected, &inputs);
    let harness = PodHarness::start(&spec);

    // The first certificate was issued by the init containers before anything else started.
    let events = harness.events();
    let init_names = names(injected, "initContainers");
    let mut last_init_exit = 0;
    for init in &init_names {
        let exit = events
            .iter()
            .position(|e| &e.container == init && matches!(e.what, EventKind::Exited(_)))
            .unwrap_or_else(|| panic!("{init} never ended: {events:?}"));
        assert!(
            matches!(&events[exit].what, EventKind::Exited(status) if status.success()),
            "{events:?}"
        );
        last_init_exit = last_init_exit.max(exit);
    }
    for name in names(injected, "containers") {
        let start = events
            .iter()
            .position(|e| e.container == name && matches!(e.what, EventKind::Started { .. }))
            .unwrap_or_else(|| panic!("{name} never started: {events:?}"));
        assert!(
            start > last_init_exit,
            "{name} started before the init containers ended: {events:?}"
        );
    }

    let address = SocketAddr::from((harness.pod_ip(), port));
    curl_hello(&harness, port);
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

    // The file the agent keeps, in whichever volume holds it.
    let file = spec
        .containers
        .iter()
        .flat_map(|c| c.mounts.iter())
        .map(|m| harness.volume(&m.volume).join(cert_file))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no volume holds {cert_file}"));
    let text = std::fs::read_to_string(file).unwrap();
    let leaf = CertInfo::parse(&pem::blocks(&text).unwrap()[0].der).unwrap();
    assert_eq!(leaf.subject_cn, SERVER_NAME);
    harness.stop();
}
