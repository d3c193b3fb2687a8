//! `pki-sidecar webhook`: the real binary, AdmissionReviews over HTTPS with certificates made
//! here (rcgen), readiness before and after the certificate, hot reload, metrics, SIGTERM; the
//! JSON Patch diff against an applier of its own (`util::jsonpatch`) on random values; and the
//! two front ends, `inject` and the webhook, on every `tests/inject/*.yaml` fixture.
//!
//! Nothing here assumes what the transform does: each expectation is taken from
//! `pki_sidecar::inject::inject_pod` (or from `pki-sidecar inject`) for the same Pod.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use nix::sys::signal::Signal;
use pki_sidecar::inject::{Settings, inject_pod};
use proptest::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};

use crate::util::{self, ChildGuard, HttpResponse, jsonpatch};

/// The image both front ends are given, so their Pods can be compared.
const IMAGE: &str = "pki-sidecar:webhook-test";

// ---------------------------------------------------------------------------------------------
// Certificates

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "webhook test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign CA");
    Ca {
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// A serving pair for `localhost`/127.0.0.1 as cert-manager would write it.
struct Leaf {
    cert: String,
    key: String,
    der: CertificateDer<'static>,
    not_after: u64,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

fn leaf(ca: &Ca) -> Leaf {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, "pki-sidecar-injector.test.svc");
    let mut serial = vec![0x57];
    serial.extend_from_slice(&NEXT_SERIAL.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let not_after = now + 30 * 86_400;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(now - 3600);
    params.not_after = epoch + Duration::from_secs(not_after);
    let cert = params.signed_by(&key, &ca.issuer).expect("sign leaf");
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().clone(),
        not_after,
    }
}

/// Writes the pair as cert-manager's Secret volume changes: each file replaced by a rename.
fn install(dir: &Path, leaf: &Leaf) {
    for (name, text) in [("tls.key", &leaf.key), ("tls.crt", &leaf.cert)] {
        let temporary = dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, text).expect("write pair");
        std::fs::rename(&temporary, dir.join(name)).expect("rename pair");
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook process

struct Webhook {
    child: ChildGuard,
    listen: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
    client: Arc<ClientConfig>,
    _dir: tempfile::TempDir,
    certs: PathBuf,
}

impl Webhook {
    /// Starts the webhook on port 0 with its pair in a fresh directory (written first when
    /// `leaf` is given), trusting `ca`.
    fn start(ca: &Ca, leaf: Option<&Leaf>, extra: &[&str]) -> Webhook {
        let dir = tempfile::tempdir().expect("temporary directory");
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).expect("certs directory");
        if let Some(leaf) = leaf {
            install(&certs, leaf);
        }
        let log = dir.path().join("webhook.log");
        let mut command = util::command();
        command
            .args(["webhook", "--log-format", "json", "--log-level", "debug"])
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--tls-cert-file")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key-file")
            .arg(certs.join("tls.key"))
            .args(["--image", IMAGE, "--reload-interval", "1s"])
            .args(extra)
            .env_remove("PKI_SIDECAR_INJECT_VAULT_ADDR")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = ChildGuard(Some(command.spawn().expect("spawn the webhook")));
        let mut roots = RootCertStore::empty();
        roots.add(ca.der.clone()).expect("trust the CA");
        let mut client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        // A full handshake each time: a resumed session reports the certificate of the
        // session it resumes, not the one served now.
        client.resumption = rustls::client::Resumption::disabled();
        let mut webhook = Webhook {
            child,
            listen: "127.0.0.1:1".parse().unwrap(),
            metrics: "127.0.0.1:1".parse().unwrap(),
            log,
            client: Arc::new(client),
            _dir: dir,
            certs,
        };
        webhook.listen = webhook.bound("webhook.listen");
        webhook.metrics = webhook.bound("webhook.metrics_listen");
        webhook
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address the listener `key` bound, from its `listening` log line.
    fn bound(&mut self, key: &str) -> SocketAddr {
        let start = Instant::now();
        loop {
            let found = self.log().lines().find_map(|line| {
                let event: Value = serde_json::from_str(line).ok()?;
                (event["@message"] == "listening" && event["key"] == key)
                    .then(|| event["address"].as_str()?.parse().ok())?
            });
            if let Some(address) = found {
                return address;
            }
            let child = self.child.0.as_mut().expect("running");
            assert!(
                child.try_wait().expect("try_wait").is_none(),
                "the webhook exited; its log:\n{}",
                self.log()
            );
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{key} not bound; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn scrape(&self) -> String {
        util::http(self.metrics, "GET", "/metrics").body
    }

    fn readyz(&self) -> HttpResponse {
        util::http(self.metrics, "GET", "/readyz")
    }

    /// One HTTPS request with `Connection: close`; the response and the served leaf.
    fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(HttpResponse, CertificateDer<'static>), String> {
        let mut stream = self.connect()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(|err| format!("write: {err}"))?;
        let response = read_response(&mut stream)?;
        let leaf = stream
            .conn
            .peer_certificates()
            .ok_or("no peer certificate")?[0]
            .clone();
        Ok((response, leaf.into_owned()))
    }

    fn connect(&self) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
        let tcp = TcpStream::connect(self.listen).map_err(|err| format!("connect: {err}"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let connection = ClientConnection::new(
            self.client.clone(),
            ServerName::try_from("localhost").expect("name"),
        )
        .map_err(|err| format!("TLS client: {err}"))?;
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|err| format!("handshake: {err}"))?;
        }
        Ok(stream)
    }

    /// POSTs `review` as JSON; the decoded answer.
    fn review(&self, review: &Value) -> Value {
        let body = serde_json::to_vec(review).unwrap();
        let (response, _) = self
            .request("POST", "/mutate", Some("application/json"), &body)
            .unwrap_or_else(|err| panic!("review: {err}; log:\n{}", self.log()));
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.header("content-type"), Some("application/json"));
        let answer: Value = serde_json::from_str(&response.body).expect("a JSON answer");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
        answer["response"].clone()
    }

    fn pid(&self) -> i32 {
        self.child.pid()
    }

    fn stop(mut self) -> (Option<i32>, String) {
        util::signal(self.pid(), Signal::SIGTERM);
        let (code, _) = self.child.wait(Duration::from_secs(20));
        (code, self.log())
    }
}

fn read_response(stream: &mut impl Read) -> Result<HttpResponse, String> {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            // A peer closing without close_notify after the whole response.
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(err) => return Err(format!("read: {err}")),
        }
    }
    if raw.is_empty() {
        return Err("no response".to_string());
    }
    Ok(util::parse_response(&raw))
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// An AdmissionReview v1 of `object` as the API server sends it.
fn review(group: &str, version: &str, kind: &str, operation: &str, object: Value) -> Value {
    let uid = format!(
        "00000000-0000-4000-8000-{:012}",
        NEXT_UID.fetch_add(1, Ordering::Relaxed)
    );
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "operation": operation,
            "namespace": "team-a",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    })
}

fn pod_review(pod: &Value) -> Value {
    review("", "v1", "Pod", "CREATE", pod.clone())
}

fn plain_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "plain-", "namespace": "team-a", "labels": {"app": "plain"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    })
}

fn settings() -> Settings {
    Settings {
        image: IMAGE.to_string(),
        vault_address: None,
    }
}

/// The Pod the answer makes of `pod`: `pod` with the decoded patch applied (by the test's own
/// applier), or `None` when the Pod is refused.
fn patched(pod: &Value, response: &Value) -> Option<Value> {
    if response["allowed"] == false {
        return None;
    }
    assert_eq!(response["allowed"], true, "{response}");
    match response.get("patch") {
        None => {
            assert!(response.get("patchType").is_none(), "{response}");
            Some(pod.clone())
        }
        Some(patch) => {
            assert_eq!(response["patchType"], "JSONPatch", "{response}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch.as_str().expect("base64 text"))
                .expect("the patch is base64");
            let patch: Value = serde_json::from_slice(&bytes).expect("the patch is JSON");
            Some(jsonpatch::apply(&patch, pod.clone()).expect("the patch applies"))
        }
    }
}

/// `{metadata, spec}` of a Pod or a Pod template, as the transform sees it.
fn template_of(pod: &Value) -> Value {
    let mut template = serde_json::Map::new();
    for key in ["metadata", "spec"] {
        if let Some(value) = pod.get(key) {
            template.insert(key.to_string(), value.clone());
        }
    }
    Value::Object(template)
}

// ---------------------------------------------------------------------------------------------
// Serving

#[test]
fn readiness_waits_for_the_certificate_and_a_new_one_is_served_without_a_restart() {
    let ca = ca();
    let webhook = Webhook::start(&ca, None, &[]);
    let readyz = webhook.readyz();
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert!(readyz.body.contains("certificate"), "{}", readyz.body);
    assert_eq!(util::http(webhook.metrics, "GET", "/healthz").status, 200);
    assert!(
        webhook.connect().is_err(),
        "a handshake before the certificate must fail"
    );

    let first = leaf(&ca);
    install(&webhook.certs, &first);
    util::wait_until(Duration::from_secs(10), "ready after the pair", || {
        webhook.readyz().status == 200
    });
    let (response, served) = webhook
        .request("POST", "/mutate", Some("application/json"), b"{}")
        .expect("request");
    assert_eq!(response.status, 400);
    assert_eq!(served, first.der);
    let pid = webhook.pid();

    let second = leaf(&ca);
    install(&webhook.certs, &second);
    let took = util::wait_until(
        Duration::from_secs(10),
        "the new pair served",
        || match webhook.request("GET", "/mutate", None, b"") {
            Ok((_, served)) => served == second.der,
            Err(err) => {
                eprintln!("waiting for the new pair: {err}");
                false
            }
        },
    );
    eprintln!("the new certificate was served {took:?} after the files changed");
    assert_eq!(webhook.pid(), pid);
    let scrape = webhook.scrape();
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_webhook_certificate_reloads_total{reason=\"new_certificate\",result=\"success\"}"
        ),
        2.0
    );
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"server\",role=\"webhook\"}"
        ),
        second.not_after as f64
    );
    if let Some((ok, output)) = util::promtool_check(&scrape) {
        assert!(ok, "promtool check metrics:\n{output}");
    }
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn reviews_are_answered_by_kind_operation_and_body() {
    let ca = ca();
    let webhook = Webhook::start(&ca, Some(&leaf(&ca)), &["--max-body-bytes", "65536"]);
    util::wait_until(Duration::from_secs(10), "ready", || {
        webhook.readyz().status == 200
    });

    // Not a Pod, not a CREATE: allowed, untouched.
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let response = webhook.review(&review("", "v1", "ConfigMap", "CREATE", config_map));
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");
    let response = webhook.review(&review("", "v1", "Pod", "UPDATE", plain_pod()));
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
    let response = webhook.review(&review("apps", "v1", "Deployment", "CREATE", deployment));
    assert_eq!(response["allowed"], true);
    let ignored = 3.0;

    // A Pod nothing asks to inject: allowed, and no patch.
    let pod = plain_pod();
    let response = webhook.review(&pod_review(&pod));
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");

    // What is not a v1 review over POST /mutate as JSON.
    let post = |content_type: Option<&str>, body: &[u8]| {
        webhook
            .request("POST", "/mutate", content_type, body)
            .expect("request")
            .0
    };
    let json_type = Some("application/json");
    let mut v1beta1 = pod_review(&pod);
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let invalid = [
        (
            post(json_type, b"{\"apiVersion\": "),
            400,
            "not an AdmissionReview",
        ),
        (post(json_type, b"[1, 2]"), 400, "not an AdmissionReview"),
        (
            post(json_type, &serde_json::to_vec(&v1beta1).unwrap()),
            400,
            "admission.k8s.io/v1",
        ),
        (
            post(
                json_type,
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            ),
            400,
            "no request",
        ),
        (
            post(Some("application/yaml"), b"{}"),
            415,
            "application/json",
        ),
        (post(None, b"{}"), 415, "application/json"),
        (post(json_type, &vec![b' '; 70_000]), 413, "65536"),
        (
            webhook.request("GET", "/mutate", None, b"").expect("GET").0,
            405,
            "POST",
        ),
        (
            webhook
                .request("POST", "/other", json_type, b"{}")
                .expect("path")
                .0,
            404,
            "/mutate",
        ),
    ];
    for (response, status, says) in &invalid {
        assert_eq!(response.status, *status, "{}", response.body);
        assert!(
            response.body.contains(says),
            "{status}: {:?} should say {says:?}",
            response.body
        );
    }

    let scrape = webhook.scrape();
    let count = |result: &str| {
        util::metric(
            &scrape,
            &format!("pki_sidecar_webhook_requests_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(count("ignored"), ignored);
    let answered_pod = count("not_requested") + count("injected") + count("already_injected");
    assert_eq!(answered_pod + count("refused"), 1.0);
    assert_eq!(count("invalid"), invalid.len() as f64);
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_webhook_request_duration_seconds_count"
        ),
        ignored + 1.0 + invalid.len() as f64
    );
    assert!(
        scrape.contains("pki_sidecar_webhook_request_duration_seconds_bucket{le=\"0.005\"}"),
        "{scrape}"
    );
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// For several Pods (plain, annotated, with a command the image cannot run), the webhook's
/// answer is the library transform's result: refused exactly when it fails, naming the same
/// annotation, and otherwise the patch rebuilds exactly the transformed Pod.
#[test]
fn answers_agree_with_the_transform() {
    let ca = ca();
    let webhook = Webhook::start(&ca, Some(&leaf(&ca)), &[]);
    util::wait_until(Duration::from_secs(10), "ready", || {
        webhook.readyz().status == 200
    });
    let annotated = |annotations: Value| {
        let mut pod = plain_pod();
        pod["metadata"]["annotations"] = annotations;
        pod
    };
    let pods = [
        plain_pod(),
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "app", "image": "a"}]}}),
        annotated(json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "web",
            "vault.hashicorp.com/agent-inject-secret-tls.crt": "pki_intermediate/issue/home",
        })),
        annotated(json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "web",
            "vault.hashicorp.com/agent-inject-secret-tls.crt": "pki_intermediate/issue/home",
            "vault.hashicorp.com/agent-inject-command-tls.crt": "sh -c 'kill -HUP $(pidof nginx) && echo done'",
        })),
        annotated(json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/agent-inject-status": "injected",
        })),
        annotated(json!({"vault.hashicorp.com/agent-inject": "not-a-boolean"})),
    ];
    for pod in &pods {
        let response = webhook.review(&pod_review(pod));
        let mut expected = template_of(pod);
        match inject_pod(&settings(), &mut expected) {
            Err(err) => {
                assert_eq!(response["allowed"], false, "{pod}: {response}");
                assert_eq!(response["status"]["code"], 400);
                let message = response["status"]["message"].as_str().expect("a message");
                assert!(message.contains(&err.annotation), "{message}");
                assert!(message.contains(&err.message), "{message}");
                assert!(response.get("patch").is_none());
            }
            Ok(_) => {
                let result = patched(pod, &response).expect("allowed");
                assert_eq!(template_of(&result), expected, "{pod}");
                assert_eq!(result["kind"], "Pod");
            }
        }
    }
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// SIGTERM while a review is half sent: the listener closes, the review is still answered,
/// then the process exits 0.
#[test]
fn sigterm_drains_a_review_in_flight() {
    let ca = ca();
    let webhook = Webhook::start(&ca, Some(&leaf(&ca)), &[]);
    util::wait_until(Duration::from_secs(10), "ready", || {
        webhook.readyz().status == 200
    });
    let body = serde_json::to_vec(&pod_review(&plain_pod())).unwrap();
    let mut stream = webhook.connect().expect("connect");
    write!(
        stream,
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..body.len() / 2]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    util::signal(webhook.pid(), Signal::SIGTERM);
    util::wait_until(Duration::from_secs(5), "the listener closed", || {
        TcpStream::connect(webhook.listen).is_err()
    });
    stream.write_all(&body[body.len() / 2..]).unwrap();
    let response = read_response(&mut stream).expect("the in-flight review is answered");
    assert_eq!(response.status, 200, "{}", response.body);
    let mut webhook = webhook;
    let (code, _) = webhook.child.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", webhook.log());
}

// ---------------------------------------------------------------------------------------------
// The diff, against the test's own applier

fn json_value() -> impl Strategy<Value = Value> {
    // Few distinct keys and small scalars, so the two sides share keys and values often;
    // keys with `/` and `~` to exercise the pointer escapes.
    let keys = prop::sample::select(vec![
        "a",
        "b",
        "a/b",
        "~",
        "~1",
        "",
        "vault.hashicorp.com/role",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-2i64..3).prop_map(Value::from),
        prop::sample::select(vec!["", "x", "/", "~0"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|map| Value::Object(
                map.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_patch_of_two_values_turns_one_into_the_other(old in json_value(), new in json_value()) {
        let patch = serde_json::to_value(pki_sidecar::webhook::patch::diff(&old, &new)).unwrap();
        let applied = jsonpatch::apply(&patch, old.clone());
        prop_assert_eq!(applied.as_ref(), Ok(&new), "patch {}", patch);
        if old == new {
            prop_assert_eq!(patch, json!([]));
        }
    }

    #[test]
    fn appended_elements_are_patched_as_appends(
        common in prop::collection::vec(json_value(), 0..4),
        extra in prop::collection::vec(json_value(), 1..4),
    ) {
        let old = json!({"spec": {"containers": common.clone()}});
        let mut longer = common;
        longer.extend(extra.iter().cloned());
        let new = json!({"spec": {"containers": longer}});
        let patch = serde_json::to_value(pki_sidecar::webhook::patch::diff(&old, &new)).unwrap();
        let operations = patch.as_array().unwrap();
        prop_assert_eq!(operations.len(), extra.len());
        for operation in operations {
            prop_assert_eq!(&operation["op"], "add");
            prop_assert_eq!(&operation["path"], "/spec/containers/-");
        }
        prop_assert_eq!(jsonpatch::apply(&patch, old), Ok(new));
    }
}

// ---------------------------------------------------------------------------------------------
// One transform, two front ends

/// Each Pod template in `object` (a Pod, a workload, a `List` of them), in document order.
fn templates(object: &Value, out: &mut Vec<Value>) {
    let kind = object["kind"].as_str().unwrap_or("");
    match kind {
        "Pod" => out.push(template_of(object)),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => {
            if let Some(template) = object["spec"].get("template") {
                out.push(template_of(template));
            }
        }
        "CronJob" => {
            if let Some(template) = object["spec"]["jobTemplate"]["spec"].get("template") {
                out.push(template_of(template));
            }
        }
        _ if kind.ends_with("List") => {
            for item in object["items"].as_array().into_iter().flatten() {
                templates(item, out);
            }
        }
        _ => {}
    }
}

fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|document| {
            let value = serde_yaml::Value::deserialize(document).expect("YAML");
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .filter(|value| !value.is_null())
        .collect()
}

#[test]
fn inject_and_the_webhook_make_the_same_pod_from_every_fixture() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(util::repo().join("tests/inject"))
        .expect("tests/inject")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    fixtures.sort();
    assert!(
        fixtures
            .iter()
            .any(|path| path.ends_with("webhook-pod.yaml")),
        "{fixtures:?}"
    );
    let ca = ca();
    let webhook = Webhook::start(&ca, Some(&leaf(&ca)), &[]);
    util::wait_until(Duration::from_secs(10), "ready", || {
        webhook.readyz().status == 200
    });
    let mut compared = 0;
    for fixture in &fixtures {
        let name = fixture
            .strip_prefix(util::repo())
            .unwrap_or(fixture)
            .display()
            .to_string();
        let text = std::fs::read_to_string(fixture).expect("fixture");
        let mut sent = Vec::new();
        for document in yaml_documents(&text) {
            templates(&document, &mut sent);
        }
        let output = util::command()
            .args(["inject", "--image", IMAGE])
            .arg(fixture)
            .env_remove("PKI_SIDECAR_INJECT_VAULT_ADDR")
            .env_remove("PKI_SIDECAR_INJECT_IMAGE")
            .output()
            .expect("run inject");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("not built yet (issue 15)") {
            eprintln!(
                "SKIPPED: `pki-sidecar inject` is not built on this branch; {name} not compared"
            );
            continue;
        }
        // The webhook's answer for each template, sent as the Pod a controller would create.
        let answers: Vec<(Value, Value)> = sent
            .iter()
            .map(|template| {
                let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
                for (key, value) in template.as_object().expect("template object") {
                    pod[key] = value.clone();
                }
                let response = webhook.review(&pod_review(&pod));
                (pod, response)
            })
            .collect();
        let refusals: Vec<&str> = answers
            .iter()
            .filter(|(_, response)| response["allowed"] == false)
            .map(|(_, response)| response["status"]["message"].as_str().unwrap_or(""))
            .collect();
        match output.status.code() {
            Some(0) => {
                assert!(
                    refusals.is_empty(),
                    "{name}: inject accepted what the webhook refused: {refusals:?}"
                );
                let mut injected = Vec::new();
                for document in yaml_documents(&String::from_utf8_lossy(&output.stdout)) {
                    templates(&document, &mut injected);
                }
                assert_eq!(
                    injected.len(),
                    answers.len(),
                    "{name}: Pod templates in and out"
                );
                for (index, ((pod, response), from_inject)) in
                    answers.iter().zip(&injected).enumerate()
                {
                    let from_webhook = patched(pod, response).expect("allowed");
                    assert_eq!(
                        template_of(&from_webhook),
                        *from_inject,
                        "{name}: Pod template {index}: the webhook's patched Pod differs from inject's"
                    );
                    compared += 1;
                }
            }
            Some(78) => {
                assert!(
                    refusals.iter().any(|message| {
                        message
                            .split_whitespace()
                            .filter(|word| word.contains('/'))
                            .any(|annotation| stderr.contains(annotation.trim_end_matches(':')))
                    }),
                    "{name}: inject refused ({stderr}) but the webhook's refusals name no same \
                     annotation: {refusals:?}"
                );
            }
            other => panic!("{name}: inject exited {other:?}: {stderr}"),
        }
    }
    eprintln!(
        "{compared} Pod templates compared across {} fixtures",
        fixtures.len()
    );
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "{log}");
}
