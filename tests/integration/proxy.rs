//! The proxy role against real clients: TLS, reload, forwarding, limits.
//!
//! Most tests run the library in this process (`Proxy::build` + `serve` on port-0 listeners)
//! in front of a small upstream written here: the app itself, an echo server that returns the
//! request's headers, or raw TCP servers that misbehave on purpose. Clients are hyper over
//! tokio-rustls, verifying the proxy's certificate against a CA made here with rcgen, and
//! speaking HTTP/1.1 or HTTP/2 as ALPN chooses. The end-to-end tests run the real binaries
//! (`pki-sidecar proxy` in front of `pki-sidecar app`, curl as the client).
//! The `hostile` submodule sends malformed and ambiguous requests and checks, byte for byte,
//! what reaches a recording upstream; `flags` runs the binary configured by its flags.
//!
//! Nothing here asserts a tight latency: timeouts are asserted as "cut within a generous
//! bound", rotations as "most of them observed", and every wait polls with a deadline.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use nix::sys::signal::Signal;
use pki_sidecar::lifecycle::Lifecycle;
use pki_sidecar::proxy::Proxy;
use pki_sidecar::telemetry::Telemetry;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::util;
use crate::util::role::{Launch, RoleProcess};

mod flags;
mod hostile;
mod parked;
mod reload;

const DAY: i64 = 86_400;
const HELLO: &str = "hello world\n";
const H1: &[&[u8]] = &[b"http/1.1"];
const H2: &[&[u8]] = &[b"h2"];

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA that signs leaves.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(common_name: &str) -> Ca {
    let key = KeyPair::generate().expect("generate CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate and its key, as the agent would write them.
#[derive(Clone, Debug)]
struct Pair {
    cert: String,
    key: String,
    /// The serial's DER content bytes, as a TLS client sees them.
    serial: Vec<u8>,
    /// NotAfter in Unix seconds.
    not_after: i64,
}

/// Makes every serial in the test binary distinct, so a handshake names its pair exactly.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A leaf for `localhost`/`foo.home`/127.0.0.1 with `key` (PKCS#8 PEM, written as is), valid
/// from `now + from` to `now + to` seconds, signed by `ca`.
fn issue(ca: &Ca, key_pem: &str, from: i64, to: i64, client: bool) -> Pair {
    let key = KeyPair::from_pem(key_pem).expect("key PEM for rcgen");
    let names = ["localhost", "foo.home", "127.0.0.1"];
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let mut serial = vec![0x42];
    serial.extend_from_slice(&NEXT_SERIAL.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    if client {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let now = unix_now();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs((now + from) as u64);
    params.not_after = epoch + Duration::from_secs((now + to) as u64);
    let cert = params.signed_by(&key, &ca.issuer).expect("sign leaf").pem();
    Pair {
        cert,
        key: key_pem.to_string(),
        serial,
        not_after: now + to,
    }
}

/// A valid ECDSA P-256 pair with a PKCS#8 key.
fn valid_pair(ca: &Ca) -> Pair {
    issue(ca, &ecdsa_key(), -DAY, 30 * DAY, false)
}

fn ecdsa_key() -> String {
    KeyPair::generate().expect("generate key").serialize_pem()
}

/// Runs `openssl ARGS` with `input` on stdin and returns stdout.
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to openssl");
    let output = child.wait_with_output().expect("openssl output");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("openssl prints PEM")
}

/// A new RSA-2048 key as PKCS#8 PEM, made by openssl rather than the code under test.
fn rsa_key() -> String {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        "",
    )
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`.
fn replace(path: &Path, text: &str) {
    let name = path.file_name().expect("file name").to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, text).expect("write temporary file");
    std::fs::rename(&temporary, path).expect("rename into place");
}

/// A certificate directory with `tls.crt` and `tls.key`.
struct CertDir {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl CertDir {
    fn new() -> CertDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        CertDir { dir, cert, key }
    }

    /// Installs `pair` the way the agent does: key first, each by rename.
    fn install(&self, pair: &Pair) {
        replace(&self.key, &pair.key);
        replace(&self.cert, &pair.cert);
    }

    /// `proxy {}` lines naming these files.
    fn settings(&self) -> String {
        format!(
            "  cert_file = \"{}\"\n  key_file = \"{}\"\n",
            self.cert.display(),
            self.key.display()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy in this process

struct ProxyUnderTest {
    address: SocketAddr,
    metrics_address: SocketAddr,
    telemetry: Telemetry,
    lifecycle: Lifecycle,
    task: Option<JoinHandle<()>>,
}

/// Starts a proxy configured by the `proxy {}` body `settings` on 127.0.0.1:0.
async fn start_proxy(settings: &str) -> ProxyUnderTest {
    let text = format!("proxy {{\n{settings}}}\n");
    let config = pki_sidecar::config::load_str(
        "proxy-test.hcl",
        &text,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .unwrap_or_else(|errors| panic!("{errors}\n{text}"));
    start_built(|telemetry| Proxy::build(&config.proxy, telemetry).expect("build proxy")).await
}

/// Serves the proxy `build` makes with its telemetry, on 127.0.0.1:0.
async fn start_built(build: impl FnOnce(Telemetry) -> Proxy) -> ProxyUnderTest {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let metrics_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metrics");
    let address = listener.local_addr().unwrap();
    let metrics_address = metrics_listener.local_addr().unwrap();
    let telemetry = Telemetry::new().expect("telemetry");
    let lifecycle = Lifecycle::new();
    let proxy = build(telemetry.clone());
    let task = tokio::spawn(proxy.serve(vec![listener], metrics_listener, lifecycle.clone()));
    ProxyUnderTest {
        address,
        metrics_address,
        telemetry,
        lifecycle,
        task: Some(task),
    }
}

impl ProxyUnderTest {
    fn scrape(&self) -> String {
        String::from_utf8(self.telemetry.render()).expect("metrics are UTF-8")
    }

    fn metric(&self, series: &str) -> f64 {
        util::metric(&self.scrape(), series)
    }

    /// Waits until `series` is at least `value`.
    async fn wait_metric(&self, series: &str, value: f64) {
        let start = Instant::now();
        while self.metric(series) < value {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{series} stayed below {value}:\n{}",
                self.scrape()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the proxy serves a certificate (the reloader's first load is immediate).
    async fn wait_ready(&self) {
        let start = Instant::now();
        while let Err(reason) = self.telemetry.readiness.check() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "not ready: {reason}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn readyz(&self) -> util::HttpResponse {
        let address = self.metrics_address;
        tokio::task::spawn_blocking(move || util::http(address, "GET", "/readyz"))
            .await
            .expect("readyz thread")
    }

    async fn stop(mut self) {
        self.lifecycle.shutdown.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("the proxy drains and returns")
            .expect("proxy task");
    }
}

impl Drop for ProxyUnderTest {
    fn drop(&mut self) {
        self.lifecycle.shutdown.cancel();
        self.lifecycle.abort.cancel();
    }
}

fn reloads(result: &str, reason: &str) -> String {
    format!(
        "pki_sidecar_proxy_certificate_reloads_total{{reason=\"{reason}\",result=\"{result}\"}}"
    )
}

const RELOADED: &str =
    "pki_sidecar_proxy_certificate_reloads_total{reason=\"new_certificate\",result=\"success\"}";
const HANDSHAKE_FAILED: &str = "pki_sidecar_proxy_tls_handshakes_total{result=\"failure\"}";

/// A proxy serving a fresh valid pair in front of `upstream`, with `extra` settings.
struct Fixture {
    ca: Ca,
    pair: Pair,
    certs: CertDir,
    proxy: ProxyUnderTest,
}

async fn fixture(upstream: SocketAddr, extra: &str) -> Fixture {
    let ca = ca("Proxy Test CA");
    let pair = valid_pair(&ca);
    let certs = CertDir::new();
    certs.install(&pair);
    let proxy = start_proxy(&format!(
        "  upstream = \"http://{upstream}\"\n{}{extra}\n",
        certs.settings()
    ))
    .await;
    proxy.wait_ready().await;
    Fixture {
        ca,
        pair,
        certs,
        proxy,
    }
}

impl Fixture {
    async fn client(&self, alpn: &[&[u8]]) -> Client {
        Client::connect(self.proxy.address, client_config(&self.ca.pem, alpn, None))
            .await
            .unwrap_or_else(|err| panic!("connect to the proxy: {err}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

type ClientBody = BoxBody<Bytes, Infallible>;

fn empty() -> ClientBody {
    Empty::<Bytes>::new().boxed()
}

/// A TLS client config trusting `ca_pem`, offering `alpn`, with no session resumption (so
/// every handshake shows the certificate served now).
fn client_config(ca_pem: &str, alpn: &[&[u8]], identity: Option<&Pair>) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA usable");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(pair) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(pair.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client cert PEM"),
                PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).expect("client key PEM"),
            )
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(address: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    tls_on(TcpStream::connect(address).await?, config).await
}

/// A TLS handshake for `localhost` on a connected socket.
async fn tls_on(tcp: TcpStream, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let name = ServerName::try_from("localhost").expect("server name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The serial of the leaf the server presented in this handshake.
fn served_serial(tls: &Tls) -> Vec<u8> {
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("peer certificates");
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0]).expect("leaf parses");
    leaf.tbs_certificate.raw_serial().to_vec()
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<ClientBody>),
    H2(hyper::client::conn::http2::SendRequest<ClientBody>),
}

/// One TLS connection with HTTP/1.1 or HTTP/2 on it, as ALPN chose.
struct Client {
    sender: Sender,
    /// What the client puts in Host / :authority.
    host: String,
    /// The serial of the certificate this connection's handshake saw.
    serial: Vec<u8>,
    connection: JoinHandle<()>,
    /// Ends (its sender dropped) when the connection task has finished: the socket is closed.
    closed: watch::Receiver<()>,
}

impl Client {
    async fn connect(address: SocketAddr, config: Arc<ClientConfig>) -> Result<Client, String> {
        let tls = tls_connect(address, config)
            .await
            .map_err(|err| format!("TLS handshake: {err}"))?;
        let serial = served_serial(&tls);
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let (closed_tx, closed) = watch::channel(());
        let (sender, connection) = if h2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|err| format!("HTTP/2 handshake: {err}"))?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
                drop(closed_tx);
            });
            (Sender::H2(sender), task)
        } else {
            // As many header lines as the proxy passes on (curl has no count either).
            let (sender, connection) = hyper::client::conn::http1::Builder::new()
                .max_headers(1000)
                .handshake(io)
                .await
                .map_err(|err| format!("HTTP/1.1 handshake: {err}"))?;
            let task = tokio::spawn(async move {
                let _ = connection.with_upgrades().await;
                drop(closed_tx);
            });
            (Sender::H1(sender), task)
        };
        Ok(Client {
            sender,
            host: "localhost".to_string(),
            serial,
            connection,
            closed,
        })
    }

    fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// A request for `path` in the form this connection's protocol wants.
    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        match self.sender {
            Sender::H2(_) => Request::builder()
                .method(method)
                .uri(format!("https://{}{path}", self.host)),
            Sender::H1(_) => Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, self.host.as_str()),
        }
    }

    async fn send(&mut self, request: Request<ClientBody>) -> hyper::Result<Response<Incoming>> {
        match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }

    /// GET `path`; the status and the whole body.
    async fn get(&mut self, path: &str) -> Result<(StatusCode, String), String> {
        let request = self
            .request(Method::GET, path)
            .body(empty())
            .expect("request");
        let response = self.send(request).await.map_err(|err| format!("{err}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| format!("body: {err}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closes the TCP connection now rather than whenever hyper notices.
        self.connection.abort();
    }
}

/// A request body fed chunk by chunk from a channel, to prove the proxy streams.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(Frame::data(chunk))))
    }
}

// ---------------------------------------------------------------------------------------------
// Upstreams

/// The real app on 127.0.0.1:0.
async fn hello_upstream(shutdown: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
    let address = listener.local_addr().unwrap();
    let metrics_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app metrics");
    let config = pki_sidecar::config::App {
        listen: address,
        metrics_listen: metrics_listener.local_addr().unwrap(),
        listen_backlog: 4096,
        shutdown_grace: Duration::from_secs(1),
    };
    let app = pki_sidecar::app::App::build(&config, Telemetry::new().expect("telemetry"))
        .expect("build the app");
    tokio::spawn(app.serve(
        listener,
        metrics_listener,
        Lifecycle::with_shutdown(shutdown.clone()),
    ));
    address
}

/// What the echo upstream saw, and the levers the tests pull.
#[derive(Default)]
struct EchoState {
    /// Bytes of `/upload` bodies received so far.
    upload_bytes: AtomicU64,
    /// Notified when a `/slow` request arrives.
    slow_started: Notify,
    /// `/slow` answers once this is notified.
    release: Notify,
}

/// An HTTP/1.1 upstream: `/slow` waits for the test, `/upload` hashes the body as it streams
/// in, an `Upgrade` request gets a 101 and its bytes echoed, anything else gets a JSON
/// description of the request it received. Its responses carry hop-by-hop headers, which the
/// proxy must drop.
async fn echo_upstream() -> (SocketAddr, Arc<EchoState>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let address = listener.local_addr().unwrap();
    let state = Arc::new(EchoState::default());
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(echo(request, state).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (address, state)
}

async fn echo(mut request: Request<Incoming>, state: Arc<EchoState>) -> Response<Full<Bytes>> {
    if let Some(protocol) = request.headers().get(header::UPGRADE).cloned() {
        let on_upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let mut buffer = [0u8; 4096];
            while let Ok(read) = io.read(&mut buffer).await {
                if read == 0 || io.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, protocol)
            .header(header::CONNECTION, "Upgrade")
            .body(Full::new(Bytes::new()))
            .expect("101");
    }
    match request.uri().path() {
        "/slow" => {
            state.slow_started.notify_one();
            state.release.notified().await;
            Response::new(Full::new(Bytes::from_static(b"slow done\n")))
        }
        "/upload" => {
            let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            let mut length = 0u64;
            let mut body = request.into_body();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    return Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(Full::new(Bytes::from_static(b"body error\n")))
                        .expect("400");
                };
                if let Some(data) = frame.data_ref() {
                    digest.update(data);
                    length += data.len() as u64;
                    state.upload_bytes.store(length, Ordering::Relaxed);
                }
            }
            let text = format!("{length} {}", hex(digest.finish().as_ref()));
            Response::new(Full::new(Bytes::from(text)))
        }
        _ => {
            let headers: Vec<serde_json::Value> = request
                .headers()
                .iter()
                .map(|(name, value)| {
                    serde_json::json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())])
                })
                .collect();
            let description = serde_json::json!({
                "method": request.method().as_str(),
                "uri": request.uri().to_string(),
                "version": format!("{:?}", request.version()),
                "headers": headers,
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONNECTION, "x-response-hop")
                .header("x-response-hop", "1")
                .header("keep-alive", "timeout=30")
                .header("x-upstream", "echo")
                .body(Full::new(Bytes::from(description.to_string())))
                .expect("echo response")
        }
    }
}

/// The values of header `name` in the echo upstream's description.
fn echoed(description: &serde_json::Value, name: &str) -> Vec<String> {
    description["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .filter(|pair| pair[0].as_str() == Some(name))
        .map(|pair| pair[1].as_str().expect("header value").to_string())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An upstream that accepts connections and never answers.
async fn silent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind silent");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    address
}

/// An upstream on a loopback port of its own whose every connection `serve` handles, in a task
/// of its own.
async fn serving_upstream<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an upstream");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    address
}

/// An upstream that promises 100000 bytes for `/half` and closes after 7; any other path gets
/// a complete `ok` (and `Connection: close`).
async fn truncating_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind truncating");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_head(&mut stream).await else {
                    return;
                };
                let reply: &[u8] = if head.starts_with(b"GET /half ") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
                };
                let _ = stream.write_all(reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

/// Reads a request's head (up to its blank line, and what came with it); `None` when the
/// connection ends first.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    Some(head)
}

/// An upstream that streams `text/event-stream` chunk by chunk: the first event at once, the
/// second when `release` fires, then the end.
async fn streaming_upstream(release: tokio::sync::oneshot::Receiver<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind streaming");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        if read_head(&mut stream).await.is_none() {
            return;
        }
        let _ = stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: \
                  chunked\r\n\r\nd\r\ndata: first\n\n\r\n",
            )
            .await;
        let _ = release.await;
        let _ = stream
            .write_all(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
            .await;
        let _ = stream.shutdown().await;
    });
    address
}

/// A port where nothing listens (bound a moment ago, then released).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Rotation under load

#[derive(Clone, Copy, Debug)]
enum Rotation {
    /// The agent's way: a temporary file renamed over `tls.key`, then over `tls.crt`.
    RenameKeyThenCert,
    /// A Kubernetes Secret volume: `tls.crt` -> `..data/tls.crt`, `..data` -> a timestamped
    /// directory, replaced by renaming a new `..data_tmp` link over it.
    KubernetesSymlinkSwap,
    /// `std::fs::write` of the key, then of the certificate: readers can see half a file.
    InPlaceRewrite,
}

/// Puts `pair` in place under `root` the `rotation` way (`generation` names Kubernetes'
/// timestamped directory).
fn rotate(root: &Path, rotation: Rotation, generation: usize, pair: &Pair) {
    let (cert, key) = (root.join("tls.crt"), root.join("tls.key"));
    match rotation {
        Rotation::RenameKeyThenCert => {
            replace(&key, &pair.key);
            replace(&cert, &pair.cert);
        }
        Rotation::InPlaceRewrite => {
            std::fs::write(&key, &pair.key).expect("rewrite key");
            std::fs::write(&cert, &pair.cert).expect("rewrite cert");
        }
        Rotation::KubernetesSymlinkSwap => {
            let name = format!("..2025_01_01_00_00_00.{}", 1000 + generation);
            std::fs::create_dir(root.join(&name)).expect("timestamped dir");
            std::fs::write(root.join(&name).join("tls.crt"), &pair.cert).expect("cert");
            std::fs::write(root.join(&name).join("tls.key"), &pair.key).expect("key");
            let data = root.join("..data");
            let previous = std::fs::read_link(&data).ok();
            let temporary = root.join("..data_tmp");
            std::os::unix::fs::symlink(&name, &temporary).expect("..data_tmp");
            std::fs::rename(&temporary, &data).expect("swap ..data");
            for file in ["tls.crt", "tls.key"] {
                if std::fs::symlink_metadata(root.join(file)).is_err() {
                    std::os::unix::fs::symlink(format!("..data/{file}"), root.join(file))
                        .expect("file link");
                }
            }
            if let Some(previous) = previous {
                std::fs::remove_dir_all(root.join(previous)).expect("remove old dir");
            }
        }
    }
}

#[derive(Default)]
struct LoadStats {
    requests: AtomicU64,
    handshakes: AtomicU64,
    failures: Mutex<Vec<String>>,
    serials: Mutex<HashSet<Vec<u8>>>,
}

impl LoadStats {
    fn fail(&self, what: String) {
        self.failures.lock().expect("failures").push(what);
    }

    fn check(&self, result: Result<(StatusCode, String), String>, what: &str) {
        match result {
            Ok((StatusCode::OK, body)) if body == HELLO => {
                self.requests.fetch_add(1, Ordering::Relaxed);
            }
            other => self.fail(format!("{what}: {other:?}")),
        }
    }
}

/// Opens new connections in a loop (recording each handshake's serial), two requests each.
async fn new_connections(
    address: SocketAddr,
    config: Arc<ClientConfig>,
    stats: Arc<LoadStats>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        match Client::connect(address, config.clone()).await {
            Err(err) => stats.fail(format!("new connection: {err}")),
            Ok(mut client) => {
                stats.handshakes.fetch_add(1, Ordering::Relaxed);
                stats
                    .serials
                    .lock()
                    .expect("serials")
                    .insert(client.serial.clone());
                for _ in 0..2 {
                    let result = client.get("/").await;
                    stats.check(result, if client.is_h2() { "h2" } else { "h1" });
                }
            }
        }
    }
}

/// Keeps one connection for the whole run, sending requests on it.
async fn kept_alive(
    address: SocketAddr,
    config: Arc<ClientConfig>,
    stats: Arc<LoadStats>,
    stop: CancellationToken,
) {
    let mut client = match Client::connect(address, config).await {
        Ok(client) => client,
        Err(err) => return stats.fail(format!("keep-alive connection: {err}")),
    };
    while !stop.is_cancelled() {
        let result = client.get("/").await;
        stats.check(
            result,
            if client.is_h2() {
                "h2 keep-alive"
            } else {
                "h1 keep-alive"
            },
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn rotation_under_load(rotation: Rotation) {
    const ROTATIONS: usize = 50;
    const EVERY: Duration = Duration::from_millis(200);
    let ca = ca("Rotation CA");
    let pairs: Vec<Pair> = (0..=ROTATIONS).map(|_| valid_pair(&ca)).collect();
    let certs = CertDir::new();
    rotate(certs.dir.path(), rotation, 0, &pairs[0]);
    let upstream_shutdown = CancellationToken::new();
    let upstream = hello_upstream(&upstream_shutdown).await;
    // Each kept-alive client stays on one connection through every rotation (by default it
    // would close after 1000 requests).
    let proxy = start_proxy(&format!(
        "  upstream = \"http://{upstream}\"\n{}  reload_interval = \"1s\"\n  \
         keepalive_requests = 1000000\n",
        certs.settings()
    ))
    .await;
    proxy.wait_ready().await;
    let reloads_before = proxy.metric(RELOADED);

    let stats = Arc::new(LoadStats::default());
    let stop = CancellationToken::new();
    let h1 = client_config(&ca.pem, H1, None);
    let h2 = client_config(&ca.pem, H2, None);
    let mut clients = Vec::new();
    for config in [&h1, &h2, &h1, &h2] {
        clients.push(tokio::spawn(new_connections(
            proxy.address,
            config.clone(),
            stats.clone(),
            stop.clone(),
        )));
    }
    for config in [&h1, &h2] {
        clients.push(tokio::spawn(kept_alive(
            proxy.address,
            config.clone(),
            stats.clone(),
            stop.clone(),
        )));
    }

    let started = Instant::now();
    for (generation, pair) in pairs.iter().enumerate().skip(1) {
        tokio::time::sleep(EVERY).await;
        let root = certs.dir.path().to_path_buf();
        let pair = pair.clone();
        // File I/O off the runtime: the agent is another process.
        tokio::task::spawn_blocking(move || rotate(&root, rotation, generation, &pair))
            .await
            .expect("rotation");
    }
    // Every new handshake ends up with the last pair.
    let last = pairs.last().expect("pairs");
    let config = client_config(&ca.pem, H1, None);
    let settle = Instant::now();
    loop {
        let client = Client::connect(proxy.address, config.clone()).await;
        if client.as_ref().is_ok_and(|c| c.serial == last.serial) {
            break;
        }
        assert!(
            settle.elapsed() < Duration::from_secs(15),
            "{rotation:?}: the last pair is not served: {:?}",
            client.err()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    for client in clients {
        client.await.expect("client task");
    }
    let elapsed = started.elapsed();

    let failures = stats.failures.lock().expect("failures").clone();
    let serials = stats.serials.lock().expect("serials").clone();
    let observed = pairs[1..]
        .iter()
        .filter(|pair| serials.contains(&pair.serial))
        .count();
    let requests = stats.requests.load(Ordering::Relaxed);
    let handshakes = stats.handshakes.load(Ordering::Relaxed);
    let reloads = proxy.metric(RELOADED) - reloads_before;
    let scrape = proxy.scrape();
    eprintln!(
        "{rotation:?}: {observed}/{ROTATIONS} rotations observed by new handshakes, \
         {requests} requests and {handshakes} handshakes in {elapsed:?}, {reloads} reloads, \
         failed reloads: {}",
        scrape
            .lines()
            .filter(|l| l.contains("result=\"failure\"")
                && l.starts_with("pki_sidecar_proxy_certificate_reloads_total")
                && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        failures.is_empty(),
        "{rotation:?}: {} failed requests out of {}, first: {:?}",
        failures.len(),
        requests + failures.len() as u64,
        &failures[..failures.len().min(5)]
    );
    assert!(requests > 200, "{rotation:?}: too few requests: {requests}");
    assert!(
        serials
            .iter()
            .all(|serial| pairs.iter().any(|p| &p.serial == serial)),
        "{rotation:?}: a handshake saw a certificate that was never installed"
    );
    assert!(
        observed * 2 > ROTATIONS,
        "{rotation:?}: only {observed}/{ROTATIONS} rotations were seen by new handshakes"
    );
    assert!(
        reloads >= observed as f64,
        "{rotation:?}: {reloads} reloads counted for {observed} observed rotations"
    );
    assert_eq!(util::metric(&scrape, HANDSHAKE_FAILED), 0.0, "{scrape}");
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"tls.crt\",role=\"proxy\"}"
        ),
        last.not_after as f64,
        "the gauge follows the served certificate"
    );
    proxy.stop().await;
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_under_load_fails_no_request() {
    rotation_under_load(Rotation::RenameKeyThenCert).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_kubernetes_symlink_swap_under_load_fails_no_request() {
    rotation_under_load(Rotation::KubernetesSymlinkSwap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_in_place_rewrite_under_load_fails_no_request() {
    rotation_under_load(Rotation::InPlaceRewrite).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Bad input keeps the last good pair; missing files at start

/// The serial a new handshake gets now.
async fn serial_now(proxy: &ProxyUnderTest, config: &Arc<ClientConfig>) -> Vec<u8> {
    Client::connect(proxy.address, config.clone())
        .await
        .unwrap_or_else(|err| panic!("handshake with the last good pair: {err}"))
        .serial
        .clone()
}

/// Waits until a new handshake gets `serial`.
async fn wait_serial(proxy: &ProxyUnderTest, config: &Arc<ClientConfig>, serial: &[u8]) {
    let start = Instant::now();
    loop {
        match Client::connect(proxy.address, config.clone()).await {
            Ok(client) if client.serial == serial => return,
            other => assert!(
                start.elapsed() < Duration::from_secs(15),
                "the new pair is not served: {:?}",
                other.map(|c| c.serial.clone())
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_keep_the_last_good_pair_and_are_counted_by_reason() {
    let upstream_shutdown = CancellationToken::new();
    let upstream = hello_upstream(&upstream_shutdown).await;
    let fixture = fixture(upstream, "  reload_interval = \"1s\"\n").await;
    let (ca, good, certs, proxy) = (&fixture.ca, &fixture.pair, &fixture.certs, &fixture.proxy);
    let config = client_config(&ca.pem, H1, None);
    assert_eq!(serial_now(proxy, &config).await, good.serial);

    // SIGHUP (what `Lifecycle::request_reload` does on the signal) forces a reload of the
    // unchanged files.
    let before = proxy.metric(RELOADED);
    proxy.lifecycle.request_reload();
    proxy.wait_metric(RELOADED, before + 1.0).await;

    let other = valid_pair(ca);
    let expired = issue(ca, &ecdsa_key(), -30 * DAY, -DAY, false);
    let not_yet_valid = issue(ca, &ecdsa_key(), DAY, 30 * DAY, false);
    let half_key = &good.key[..good.key.len() / 2];
    let junk_cert =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n";
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "DER that is no certificate",
            junk_cert,
            &good.key,
            "cert_invalid",
        ),
        (
            "PEM that is no base64",
            bad_base64,
            &good.key,
            "cert_invalid",
        ),
        ("truncated key", &good.cert, half_key, "key_invalid"),
        (
            "key of another certificate",
            &good.cert,
            &other.key,
            "mismatch",
        ),
        (
            "expired certificate",
            &expired.cert,
            &expired.key,
            "expired",
        ),
        (
            "certificate not valid yet",
            &not_yet_valid.cert,
            &not_yet_valid.key,
            "not_yet_valid",
        ),
    ];
    for (what, cert, key, reason) in cases {
        let series = reloads("failure", reason);
        let before = proxy.metric(&series);
        replace(&certs.key, key);
        replace(&certs.cert, cert);
        proxy.wait_metric(&series, before + 1.0).await;
        assert_eq!(
            serial_now(proxy, &config).await,
            good.serial,
            "{what}: new handshakes still get the last good pair"
        );
        let ready = proxy.readyz().await;
        assert_eq!(
            ready.status, 200,
            "{what}: still serving, so ready: {}",
            ready.body
        );
    }

    // A file that is gone, then one that cannot be read (a directory: the tests may run as
    // root, which reads through any mode bits).
    let before = proxy.metric(&reloads("failure", "missing"));
    std::fs::remove_file(&certs.cert).expect("remove cert");
    proxy
        .wait_metric(&reloads("failure", "missing"), before + 1.0)
        .await;
    assert_eq!(
        serial_now(proxy, &config).await,
        good.serial,
        "missing cert"
    );
    let before = proxy.metric(&reloads("failure", "unreadable"));
    std::fs::create_dir(&certs.cert).expect("a directory where the cert was");
    proxy
        .wait_metric(&reloads("failure", "unreadable"), before + 1.0)
        .await;
    assert_eq!(
        serial_now(proxy, &config).await,
        good.serial,
        "unreadable cert"
    );
    std::fs::remove_dir(&certs.cert).expect("remove the directory");

    // Good files again, in every key format Vault and openssl write.
    let rsa_pkcs8 = rsa_key();
    let rsa_pair = issue(ca, &rsa_pkcs8, -DAY, 30 * DAY, false);
    let rsa_pkcs1 = openssl(&["pkey", "-traditional"], &rsa_pkcs8);
    assert!(
        rsa_pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{rsa_pkcs1}"
    );
    let ec_pkcs8 = ecdsa_key();
    let ec_pair = issue(ca, &ec_pkcs8, -DAY, 30 * DAY, false);
    let ec_sec1 = openssl(&["ec"], &ec_pkcs8);
    assert!(
        ec_sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"),
        "{ec_sec1}"
    );
    for (what, pair, key) in [
        ("RSA, PKCS#1", &rsa_pair, &rsa_pkcs1),
        ("RSA, PKCS#8", &rsa_pair, &rsa_pkcs8),
        ("ECDSA, SEC1", &ec_pair, &ec_sec1),
    ] {
        if what == "RSA, PKCS#8" {
            // Same certificate: go through another pair so the change is visible.
            certs.install(good);
            wait_serial(proxy, &config, &good.serial).await;
        }
        replace(&certs.key, key);
        replace(&certs.cert, &pair.cert);
        wait_serial(proxy, &config, &pair.serial).await;
        let mut client = Client::connect(proxy.address, config.clone())
            .await
            .expect(what);
        assert_eq!(
            client.get("/").await,
            Ok((StatusCode::OK, HELLO.to_string())),
            "{what}"
        );
    }
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_files_at_start_refuse_handshakes_until_they_appear() {
    let upstream_shutdown = CancellationToken::new();
    let upstream = hello_upstream(&upstream_shutdown).await;
    let ca = ca("Late CA");
    let certs = CertDir::new();
    let proxy = start_proxy(&format!(
        "  upstream = \"http://{upstream}\"\n{}  reload_interval = \"1s\"\n",
        certs.settings()
    ))
    .await;
    let config = client_config(&ca.pem, H1, None);

    // The listener is up: TCP connects, the handshake is refused.
    let refused = tls_connect(proxy.address, config.clone()).await;
    assert!(
        refused.is_err(),
        "a handshake before the first certificate must fail"
    );
    proxy.wait_metric(HANDSHAKE_FAILED, 1.0).await;
    // The reloader's first look may come after the refused handshake: until then the reason
    // is "no certificate loaded yet".
    let start = Instant::now();
    let ready = loop {
        let ready = proxy.readyz().await;
        assert_eq!(ready.status, 503);
        if !ready.body.contains("no certificate loaded yet")
            || start.elapsed() > Duration::from_secs(10)
        {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        ready.body.contains("certificate: no valid certificate:")
            && ready.body.contains("tls.crt does not exist"),
        "{}",
        ready.body
    );
    assert!(proxy.metric(&reloads("failure", "missing")) >= 1.0);

    let pair = valid_pair(&ca);
    certs.install(&pair);
    wait_serial(&proxy, &config, &pair.serial).await;
    let mut client = Client::connect(proxy.address, config.clone())
        .await
        .expect("connect");
    assert_eq!(
        client.get("/").await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    let ready = proxy.readyz().await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    drop(client);
    proxy.stop().await;
    upstream_shutdown.cancel();
}

// ---------------------------------------------------------------------------------------------
// 3. Upstream failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_upstream_is_a_short_502_and_counted() {
    let fixture = fixture(closed_port().await, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        let (status, body) = client.get("/").await.expect("a response");
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body, "upstream refused the connection\n");
    }
    let scrape = fixture.proxy.scrape();
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_proxy_upstream_errors_total{kind=\"connect\"}"
        ),
        2.0,
        "{scrape}"
    );
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_http_requests_total{code=\"502\",role=\"proxy\"}"
        ),
        2.0,
        "{scrape}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstream_is_a_504_after_the_response_timeout() {
    let fixture = fixture(
        silent_upstream().await,
        "  upstream_response_timeout = \"1s\"\n",
    )
    .await;
    let mut client = fixture.client(H1).await;
    let started = Instant::now();
    let (status, body) = client.get("/").await.expect("a response");
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fixture
            .proxy
            .metric("pki_sidecar_proxy_upstream_errors_total{kind=\"timeout\"}"),
        1.0
    );
    // The same connection keeps working.
    let (status, _) = client.get("/").await.expect("a second response");
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
}

/// An upstream whose response body comes in 4 pieces of 5 bytes, `pause` apart, after a head
/// announcing `announced` bytes; it then holds the connection open without a word.
async fn pausing_upstream(pause: Duration, announced: usize) -> SocketAddr {
    serving_upstream(move |mut stream| async move {
        if read_head(&mut stream).await.is_none() {
            return;
        }
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {announced}\r\n\r\n");
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..4 {
            if stream.write_all(b"12345").await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await
}

/// `upstream_response_timeout` is also the longest pause in the response body, as nginx's
/// `proxy_read_timeout` is between two reads: a body that stops coming is cut (the client sees
/// its response end short, not a hang), one that keeps coming, however long in all, is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_that_stops_coming_is_cut_after_the_response_timeout() {
    for alpn in [H1, H2] {
        // Four pauses of 400 ms: 1.6 s in all, none as long as the 1 s timeout.
        let steady = fixture(
            pausing_upstream(Duration::from_millis(400), 20).await,
            "  upstream_response_timeout = \"1s\"\n",
        )
        .await;
        let mut client = steady.client(alpn).await;
        assert_eq!(
            client.get("/").await,
            Ok((StatusCode::OK, "12345".repeat(4))),
            "{alpn:?}"
        );
        // 20 bytes of the 100 announced, then nothing.
        let stalled = fixture(
            pausing_upstream(Duration::from_millis(10), 100).await,
            "  upstream_response_timeout = \"1s\"\n",
        )
        .await;
        let mut client = stalled.client(alpn).await;
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(20), client.get("/"))
            .await
            .expect("the response ends");
        assert!(outcome.is_err(), "{alpn:?}: cut, not whole: {outcome:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(15),
            "{alpn:?}: {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_closing_mid_response_leaves_the_proxy_healthy() {
    let fixture = fixture(truncating_upstream().await, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        match client.get("/half").await {
            // The head was already sent: the client sees its body cut.
            Err(_) => {}
            Ok((status, body)) => assert!(
                status == StatusCode::BAD_GATEWAY || body.len() < 100_000,
                "a truncated response passed as complete: {status} {} bytes",
                body.len()
            ),
        }
        let mut next = fixture.client(alpn).await;
        assert_eq!(
            next.get("/").await,
            Ok((StatusCode::OK, "ok\n".to_string())),
            "the next request works"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Forwarding

/// An upstream answering `ok` to every request; with `keep_alive`, it closes a connection idle
/// that long, without warning (as most servers do). Returns how many connections it accepted.
async fn counting_upstream(keep_alive: Option<Duration>) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind counting");
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let read = match keep_alive {
                        Some(idle) if buffer.is_empty() => {
                            tokio::time::timeout(idle, stream.read(&mut chunk)).await
                        }
                        _ => Ok(stream.read(&mut chunk).await),
                    };
                    let Ok(Ok(read)) = read else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_kept_alive_and_reused() {
    let (upstream, accepted) = counting_upstream(None).await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        for _ in 0..30 {
            assert_eq!(
                client.get("/").await,
                Ok((StatusCode::OK, "ok\n".to_string()))
            );
        }
    }
    // 60 sequential requests from two client connections: one upstream connection carries
    // them all (a second one at most, if a response's end was still being wound up).
    let opened = accepted.load(Ordering::Relaxed);
    assert!(
        (1..=2).contains(&opened),
        "{opened} upstream connections for 60 sequential requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_idle_connections_costs_no_request() {
    let (upstream, accepted) = counting_upstream(Some(Duration::from_millis(50))).await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        for round in 0..10 {
            // Back to back, then after a pause in which the upstream closes the connection.
            if round % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            assert_eq!(
                client.get("/").await,
                Ok((StatusCode::OK, "ok\n".to_string())),
                "request {round} over {alpn:?}"
            );
        }
    }
    assert!(accepted.load(Ordering::Relaxed) >= 10);
    let metrics = fixture.proxy.scrape();
    assert_eq!(
        util::metric(
            &metrics,
            "pki_sidecar_proxy_upstream_errors_total{kind=\"other\"}"
        ),
        0.0
    );
}

/// An upstream whose keep-alive timeout (250 ms) runs out just as a request comes: a request
/// that arrives on a connection idle that long is read, and the connection closed without an
/// answer (made certain, where a real one races). Counts the requests it answers.
async fn closing_on_reuse_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let answered = Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    let address = serving_upstream(move |mut stream| {
        let count = count.clone();
        async move {
            let mut answered_at: Option<Instant> = None;
            while read_head(&mut stream).await.is_some() {
                if answered_at.is_some_and(|at| at.elapsed() >= Duration::from_millis(250)) {
                    return;
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
                answered_at = Some(Instant::now());
            }
        }
    })
    .await;
    (address, answered)
}

/// A request written to an idle upstream connection just as the upstream closed it is sent
/// again on a new connection when it can be (no body, a method that may be repeated), as nginx
/// passes it to its next try: no 502 for a GET or a DELETE. A POST is never sent twice: 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_upstream_closed_its_idle_connection_under_is_sent_again() {
    let (upstream, answered) = closing_on_reuse_upstream().await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        for method in [Method::GET, Method::DELETE, Method::POST] {
            // A connection in the pool, idle long enough for its upstream to close it.
            assert_eq!(
                client.get("/warm").await,
                Ok((StatusCode::OK, "ok\n".to_string())),
                "{alpn:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            let request = client.request(method.clone(), "/").body(empty()).unwrap();
            let response = client.send(request).await.expect("a response");
            let expected = if method == Method::POST {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::OK
            };
            assert_eq!(response.status(), expected, "{method} over {alpn:?}");
        }
    }
    // Each client: three warm-ups, the GET and the DELETE sent again.
    assert_eq!(answered.load(Ordering::Relaxed), 10);
}

/// An HTTP/1.0 app (Python's `http.server`, wsgiref): each answer then closes its connection,
/// `/sized` with a length, `/eof` delimited by the close. Sends back whether the request had an
/// `Expect` line.
async fn http10_upstream() -> SocketAddr {
    serving_upstream(|mut stream| async move {
        let Some(head) = read_head(&mut stream).await else {
            return;
        };
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let expect = if text.contains("\r\nexpect:") {
            "expect"
        } else {
            "none"
        };
        let body = format!("{expect}\n");
        let reply = if text.starts_with("get /sized ") {
            format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            format!("HTTP/1.0 200 OK\r\n\r\n{body}")
        };
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await
}

/// An HTTP/1.0 app's answers reach an HTTP/1.1 client as HTTP/1.1 on a connection kept alive
/// (a length, or chunks for a body the app ended by closing), as nginx answers; the client's
/// `Expect: 100-continue` is the proxy's to answer, not passed to the app. A client offering
/// only `http/1.0` in ALPN is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_apps_answers_keep_the_clients_connection_alive() {
    let fixture = fixture(http10_upstream().await, "").await;
    let mut client = fixture.client(H1).await;
    for path in ["/sized", "/eof", "/sized", "/eof"] {
        let request = client
            .request(Method::GET, path)
            .header(header::EXPECT, "100-continue")
            .body(empty())
            .unwrap();
        let response = client.send(request).await.expect("on the same connection");
        assert_eq!(response.version(), http::Version::HTTP_11, "{path}");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers().get(header::CONNECTION).is_none(),
            "{path}: {:?}",
            response.headers()
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"none\n", "{path}");
    }
    // A client that offers only `http/1.0` in ALPN (`curl --http1.0`) is served, as by nginx.
    let mut client = fixture.client(&[b"http/1.0"]).await;
    assert_eq!(
        client.get("/sized").await,
        Ok((StatusCode::OK, "none\n".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_x_forwarded_headers_reach_the_upstream_and_hop_by_hop_ones_do_not() {
    let (upstream, _) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        client.host = "foo.home:8443".to_string();
        let h2 = client.is_h2();
        let mut request = client
            .request(Method::GET, "/path?q=1")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-custom", "kept");
        if !h2 {
            // HTTP/2 forbids connection-specific headers; over HTTP/1.1 they must stop here.
            request = request
                .header(header::CONNECTION, "keep-alive, x-hop-named")
                .header("x-hop-named", "1")
                .header("keep-alive", "timeout=5")
                .header("proxy-connection", "keep-alive")
                .header(header::TE, "trailers");
        }
        let response = client
            .send(request.body(empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let seen: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let what = if h2 { "h2" } else { "h1" };
        assert_eq!(
            seen["version"], "HTTP/1.1",
            "{what}: the upstream speaks HTTP/1.1"
        );
        assert_eq!(seen["uri"], "/path?q=1", "{what}");
        assert_eq!(echoed(&seen, "host"), ["foo.home:8443"], "{what}: {seen}");
        assert_eq!(
            echoed(&seen, "x-forwarded-for"),
            ["127.0.0.1"],
            "{what}: an untrusted client's list is replaced"
        );
        assert_eq!(echoed(&seen, "x-forwarded-proto"), ["https"], "{what}");
        assert_eq!(
            echoed(&seen, "x-forwarded-host"),
            ["foo.home:8443"],
            "{what}"
        );
        assert_eq!(echoed(&seen, "x-custom"), ["kept"], "{what}");
        for hop in [
            "x-hop-named",
            "keep-alive",
            "proxy-connection",
            "te",
            "upgrade",
            "transfer-encoding",
        ] {
            assert!(
                echoed(&seen, hop).is_empty(),
                "{what}: {hop} was forwarded: {seen}"
            );
        }
        assert!(
            echoed(&seen, "connection")
                .iter()
                .all(|v| !v.contains("x-hop-named")),
            "{what}: {seen}"
        );
        assert_eq!(
            headers.get("x-upstream").map(|v| v.as_bytes()),
            Some(&b"echo"[..])
        );
        for hop in ["x-response-hop", "keep-alive"] {
            assert!(
                !headers.contains_key(hop),
                "{what}: response hop-by-hop {hop} reached the client"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_style_sends_one_rfc7239_header() {
    let (upstream, _) = echo_upstream().await;
    let fixture = fixture(upstream, "  forwarded_headers = \"forwarded\"\n").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        client.host = "foo.home".to_string();
        let (status, body) = client.get("/").await.expect("response");
        assert_eq!(status, StatusCode::OK);
        let seen: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            echoed(&seen, "forwarded"),
            ["for=127.0.0.1;proto=https;host=\"foo.home\""],
            "{seen}"
        );
        assert!(echoed(&seen, "x-forwarded-for").is_empty(), "{seen}");
        assert_eq!(echoed(&seen, "host"), ["foo.home"]);
    }
}

/// Deterministic bytes for upload `chunk` number `index`.
fn chunk(index: u64, size: usize) -> Bytes {
    let mut state = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    Bytes::from(bytes)
}

/// A request's outcome, awaited in a task of its own: the status and the body as text.
type Answered = JoinHandle<Result<(StatusCode, String), String>>;

/// A POST to the echo upstream's `/upload` whose body is what is sent on the channel returned
/// (`capacity` pieces in flight), until it is dropped; the task gives the status and body.
fn upload(mut client: Client, capacity: usize) -> (mpsc::Sender<Bytes>, Answered) {
    let (body_tx, body_rx) = mpsc::channel::<Bytes>(capacity);
    let request = client
        .request(Method::POST, "/upload")
        .body(BoxBody::new(ChannelBody(body_rx)))
        .expect("request");
    let response = tokio::spawn(async move {
        let response = client.send(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    });
    (body_tx, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_is_streamed_through_intact() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: u64 = 320; // 20 MiB
    const FIRST: u64 = 32; // 2 MiB before waiting for the upstream
    let (upstream, state) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        state.upload_bytes.store(0, Ordering::Relaxed);
        let client = fixture.client(alpn).await;
        let what = if client.is_h2() { "h2" } else { "h1" };
        let (body_tx, response) = upload(client, 4);
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for index in 0..CHUNKS {
            if index == FIRST {
                // A proxy that buffers the whole body would never let these bytes through
                // before the rest is sent: wait until the upstream has most of them.
                let start = Instant::now();
                while state.upload_bytes.load(Ordering::Relaxed)
                    < (FIRST as usize * CHUNK / 2) as u64
                {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "{what}: the upstream got {} bytes of the first {}: the body is buffered, not streamed",
                        state.upload_bytes.load(Ordering::Relaxed),
                        FIRST as usize * CHUNK
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let data = chunk(index, CHUNK);
            digest.update(&data);
            body_tx
                .send(data)
                .await
                .expect("the request body is being read");
        }
        drop(body_tx);
        let (status, body) = response.await.expect("request task").expect("response");
        let expected = format!(
            "{} {}",
            CHUNKS as usize * CHUNK,
            hex(digest.finish().as_ref())
        );
        assert_eq!((status, body), (StatusCode::OK, expected), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_style_upgrade_round_trips_through_the_proxy() {
    let (upstream, _) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    let mut client = fixture.client(H1).await;
    let request = client
        .request(Method::GET, "/socket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(empty())
        .expect("request");
    let response = client.send(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response
            .headers()
            .get(header::UPGRADE)
            .map(|v| v.as_bytes()),
        Some(&b"websocket"[..])
    );
    let upgraded = hyper::upgrade::on(response).await.expect("upgraded");
    let mut io = TokioIo::new(upgraded);
    for message in [
        &b"ping 1"[..],
        b"a second, longer message",
        &[0u8, 1, 2, 255],
    ] {
        io.write_all(message).await.expect("write");
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut echoed))
            .await
            .expect("echo in time")
            .expect("read echo");
        assert_eq!(echoed, message);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Limits

/// Sends requests on new connections until `stop`; returns how many got `hello world`, and
/// panics on the first that did not.
async fn bystander(address: SocketAddr, config: Arc<ClientConfig>, stop: CancellationToken) -> u64 {
    let mut served = 0;
    while !stop.is_cancelled() {
        let mut client = Client::connect(address, config.clone())
            .await
            .expect("bystander connects");
        assert_eq!(
            client.get("/").await,
            Ok((StatusCode::OK, HELLO.to_string())),
            "bystander"
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served
}

/// Reads until the server closes the connection (EOF or error); returns what arrived.
async fn read_until_closed(tls: &mut Tls, limit: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(limit, async {
        loop {
            match tls.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the proxy did not close the connection within {limit:?}"
    );
    received
}

/// nginx's `keepalive_requests` (1000 by default): a connection serves that many requests,
/// then closes, so that clients that keep their connections open for ever still spread over a
/// Service's Pods as they open new ones. HTTP/1.1: the last response says `Connection: close`
/// and the connection closes after it; HTTP/2: GOAWAY after the last request, which is
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_after_keepalive_requests() {
    let shutdown = CancellationToken::new();
    let fixture = fixture(
        hello_upstream(&shutdown).await,
        "  keepalive_requests = 3\n",
    )
    .await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        for index in 1..=3 {
            let request = client.request(Method::GET, "/").body(empty()).unwrap();
            let response = client.send(request).await.expect("answered");
            assert_eq!(response.status(), StatusCode::OK, "{alpn:?} {index}");
            let close = response.headers().get(header::CONNECTION).cloned();
            let body = response.into_body().collect().await.expect("body");
            assert!(!body.to_bytes().is_empty());
            if alpn == H1 {
                assert_eq!(close.is_some_and(|v| v == "close"), index == 3, "{index}");
            }
        }
        let mut closed = client.closed.clone();
        tokio::time::timeout(Duration::from_secs(10), closed.changed())
            .await
            .unwrap_or_else(|_| panic!("{alpn:?}: still open after its third request"))
            .unwrap_err();
    }
    // A connection under the limit stays open.
    let mut client = fixture.client(H1).await;
    let mut closed = client.closed.clone();
    assert_eq!(client.get("/").await.expect("answered").0, StatusCode::OK);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), closed.changed())
            .await
            .is_err()
    );
    shutdown.cancel();
}

/// An upstream answering every request with `length` zero bytes, written as fast as the proxy
/// takes them.
async fn large_body_upstream(length: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![0u8; 64 * 1024];
                let mut left = length;
                while left > 0 {
                    let take = left.min(chunk.len());
                    if stream.write_all(&chunk[..take]).await.is_err() {
                        return;
                    }
                    left -= take;
                }
            });
        }
    });
    address
}

/// A client stream whose reads wait, taking nothing from the socket, while the gate is shut:
/// a client that stops reading its response.
struct Gated {
    inner: Tls,
    open: Arc<watch::Sender<bool>>,
    opened: Option<Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl tokio::io::AsyncRead for Gated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !*self.open.borrow() {
            let open = self.open.clone();
            let opened = self.opened.get_or_insert_with(|| {
                Box::pin(async move {
                    let _ = open.subscribe().wait_for(|open| *open).await;
                })
            });
            if opened.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.opened = None;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Gated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Asks `address` for `/` over `alpn` on a socket with a small receive buffer, the reads behind
/// a gate (open at first): the response's body and the gate.
async fn gated_get(
    address: SocketAddr,
    config: Arc<ClientConfig>,
    h2: bool,
) -> (Incoming, Arc<watch::Sender<bool>>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let tls = tls_on(socket.connect(address).await.expect("connect"), config)
        .await
        .expect("handshake");
    let open = Arc::new(watch::channel(true).0);
    let io = TokioIo::new(Gated {
        inner: tls,
        open: open.clone(),
        opened: None,
    });
    let request = Request::get(if h2 { "https://localhost/" } else { "/" });
    let request = if h2 {
        request
    } else {
        request.header("host", "localhost")
    };
    let request = request.body(empty()).unwrap();
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(1 << 30)
                .initial_connection_window_size(1 << 30)
                .handshake(io)
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await
    };
    let response = response.expect("response head");
    assert_eq!(response.status(), StatusCode::OK);
    (response.into_body(), open)
}

/// Reads `body` until `at_least` bytes have come, or it ends: the bytes read, and whether it
/// ended whole (`Some(true)`), broken off (`Some(false)`) or not yet (`None`).
async fn read_body(body: &mut Incoming, at_least: usize) -> (usize, Option<bool>) {
    let mut read = 0;
    while read < at_least {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) => return (read, Some(false)),
            None => return (read, Some(true)),
        }
    }
    (read, None)
}

/// The proxy's count of connections closed and HTTP/2 streams reset for `send_timeout`.
const TIMED_OUT: &str = "pki_sidecar_proxy_client_errors_total{kind=\"send_timeout\"}";

/// nginx's `send_timeout`: a client that stops reading its response (its receive window full)
/// is closed once none of the response's bytes have gone out for `send_timeout`, over either
/// protocol, and counted; a client that reads slowly, with pauses shorter than it, gets its
/// whole response however long it takes. (As for nginx, the wait is for the socket: with up to
/// 4 MiB of the response in its send buffer, a writer waits until the client has taken a good
/// part of that, a third, before it may write again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_send_timeout() {
    const LENGTH: usize = 64 << 20;
    let fixture = fixture(
        large_body_upstream(LENGTH).await,
        "  send_timeout = \"3s\"\n",
    )
    .await;
    let config = |alpn| client_config(&fixture.ca.pem, alpn, None);
    for (index, (alpn, h2)) in [(H1, false), (H2, true)].into_iter().enumerate() {
        // Stops reading: closed, its body broken off.
        let (mut body, open) = gated_get(fixture.proxy.address, config(alpn), h2).await;
        let (first, end) = read_body(&mut body, 1 << 20).await;
        assert_eq!(end, None, "h2 {h2}");
        open.send_replace(false);
        fixture
            .proxy
            .wait_metric(TIMED_OUT, index as f64 + 1.0)
            .await;
        open.send_replace(true);
        let (rest, end) = read_body(&mut body, LENGTH).await;
        assert_eq!(
            end,
            Some(false),
            "h2 {h2}: read {} of {LENGTH}",
            first + rest
        );
        // 1 MiB at a time with pauses of 200 ms, for twice the timeout: whole. (It drains the
        // proxy's send buffer in under half a second: a wide margin on a busy machine.)
        let (mut body, open) = gated_get(fixture.proxy.address, config(alpn), h2).await;
        let started = Instant::now();
        let mut read = 0;
        while started.elapsed() < Duration::from_secs(6) {
            let (more, end) = read_body(&mut body, 1 << 20).await;
            assert_eq!(end, None, "h2 {h2}: slow reader cut after {read} bytes");
            read += more;
            open.send_replace(false);
            tokio::time::sleep(Duration::from_millis(200)).await;
            open.send_replace(true);
        }
        let (rest, end) = read_body(&mut body, LENGTH).await;
        assert_eq!((read + rest, end), (LENGTH, Some(true)), "h2 {h2}");
        assert_eq!(
            fixture.proxy.metric(TIMED_OUT),
            index as f64 + 1.0,
            "h2 {h2}"
        );
    }
}

/// `send_timeout` for one HTTP/2 stream: a client that keeps its connection going but gives
/// one stream no window (it reads the others, or nothing) has that stream reset once none of
/// its response has gone out for `send_timeout`, counted as a send timeout, and the connection
/// goes on serving; a stream read slowly, with pauses shorter than it, gets its whole response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_given_no_window_is_reset_after_send_timeout() {
    const LENGTH: usize = 4 << 20;
    let fixture = fixture(
        large_body_upstream(LENGTH).await,
        "  send_timeout = \"2s\"\n",
    )
    .await;
    let tls = tls_connect(
        fixture.proxy.address,
        client_config(&fixture.ca.pem, H2, None),
    )
    .await
    .expect("handshake");
    // The stream's window is 64 KiB and opens only as its body is read; the connection's is
    // wide, so one stream's wait is its own.
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(64 * 1024)
        .initial_connection_window_size(1 << 30)
        .handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let get = |sender: &mut hyper::client::conn::http2::SendRequest<_>| {
        sender.send_request(Request::get("https://localhost/").body(empty()).unwrap())
    };
    let stalled = get(&mut sender).await.expect("response head");
    assert_eq!(stalled.status(), StatusCode::OK);
    let started = Instant::now();
    fixture.proxy.wait_metric(TIMED_OUT, 1.0).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "reset before send_timeout: {:?}",
        started.elapsed()
    );
    let (read, end) = read_body(&mut stalled.into_body(), LENGTH).await;
    assert_eq!(
        end,
        Some(false),
        "the stalled stream was not reset ({read} bytes)"
    );
    assert!(
        read <= 64 * 1024,
        "{read} bytes came through a 64 KiB window"
    );

    // The same connection: a stream read 256 KiB at a time with pauses of 1 s, for 5 s, then
    // to its end.
    let slow = get(&mut sender).await.expect("the connection goes on");
    let mut body = slow.into_body();
    let started = Instant::now();
    let mut read = 0;
    while started.elapsed() < Duration::from_secs(5) {
        let (more, end) = read_body(&mut body, 256 * 1024).await;
        assert_eq!(end, None, "slow reader cut after {read} bytes");
        read += more;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (rest, end) = read_body(&mut body, LENGTH).await;
    assert_eq!((read + rest, end), (LENGTH, Some(true)));
    assert_eq!(fixture.proxy.metric(TIMED_OUT), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_after_header_read_timeout_while_others_are_served() {
    let upstream_shutdown = CancellationToken::new();
    let fixture = fixture(
        hello_upstream(&upstream_shutdown).await,
        "  header_read_timeout = \"1s\"\n",
    )
    .await;
    let config = client_config(&fixture.ca.pem, H1, None);
    let stop = CancellationToken::new();
    let others = tokio::spawn(bystander(
        fixture.proxy.address,
        config.clone(),
        stop.clone(),
    ));

    let mut slow = tls_connect(fixture.proxy.address, config)
        .await
        .expect("handshake");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("first bytes");
    let started = Instant::now();
    // One more header byte every 200 ms: never idle, never done.
    let cut = loop {
        let mut buffer = [0u8; 1024];
        tokio::select! {
            read = slow.read(&mut buffer) => break read.map(|n| buffer[..n].to_vec()),
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Err(err) = slow.write_all(b"x").await {
                    break Err(err);
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a client trickling its headers was not cut"
        );
    };
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut before the timeout: {elapsed:?}"
    );
    if let Ok(bytes) = &cut {
        // Either a plain close or an error response, never a forwarded request.
        let text = String::from_utf8_lossy(bytes);
        assert!(
            bytes.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    stop.cancel();
    let served = others.await.expect("bystander");
    assert!(served >= 1, "others were served meanwhile");
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_closed_at_once() {
    let upstream_shutdown = CancellationToken::new();
    let fixture = fixture(
        hello_upstream(&upstream_shutdown).await,
        "  max_connections = 5\n",
    )
    .await;
    let proxy = &fixture.proxy;
    let mut held = Vec::new();
    for alpn in [H1, H2, H1, H2, H1] {
        let mut client = fixture.client(alpn).await;
        assert_eq!(
            client.get("/").await,
            Ok((StatusCode::OK, HELLO.to_string()))
        );
        held.push(client);
    }
    let config = client_config(&fixture.ca.pem, H1, None);
    let sixth = tls_connect(proxy.address, config.clone()).await;
    assert!(
        sixth.is_err(),
        "the 6th connection must be closed, not served"
    );
    assert_eq!(
        proxy.metric("pki_sidecar_proxy_connections_refused_total"),
        1.0
    );
    assert_eq!(proxy.metric("pki_sidecar_proxy_connections_active"), 5.0);
    for client in &mut held {
        assert_eq!(
            client.get("/").await,
            Ok((StatusCode::OK, HELLO.to_string())),
            "the connections already open are untouched"
        );
    }
    held.pop();
    let start = Instant::now();
    loop {
        match Client::connect(proxy.address, config.clone()).await {
            Ok(mut client) => {
                assert_eq!(
                    client.get("/").await,
                    Ok((StatusCode::OK, HELLO.to_string()))
                );
                break;
            }
            Err(err) => assert!(
                start.elapsed() < Duration::from_secs(10),
                "no room after one connection closed: {err}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused_without_affecting_others() {
    let upstream_shutdown = CancellationToken::new();
    let fixture = fixture(
        hello_upstream(&upstream_shutdown).await,
        "  max_header_size = 16384\n",
    )
    .await;
    let config = client_config(&fixture.ca.pem, H1, None);
    let mut open = fixture.client(H2).await;
    let big = "a".repeat(64 * 1024);

    // HTTP/1.1, raw bytes so no client-side limit interferes.
    let mut tls = tls_connect(fixture.proxy.address, config.clone())
        .await
        .expect("handshake");
    let request = format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    let _ = tls.write_all(request.as_bytes()).await;
    let answer = read_until_closed(&mut tls, Duration::from_secs(20)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 431"),
        "HTTP/1.1: {}",
        &text[..text.len().min(200)]
    );

    // HTTP/2.
    let mut client = fixture.client(H2).await;
    let request = client
        .request(Method::GET, "/")
        .header("x-big", big.as_str())
        .body(empty())
        .expect("request");
    // Refused as a stream or connection error, or answered 431; never forwarded.
    if let Ok(response) = client.send(request).await {
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    // Others are unaffected.
    assert_eq!(open.get("/").await, Ok((StatusCode::OK, HELLO.to_string())));
    let mut fresh = fixture.client(H1).await;
    assert_eq!(
        fresh.get("/").await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_never_completes_is_cut() {
    let upstream_shutdown = CancellationToken::new();
    let fixture = fixture(
        hello_upstream(&upstream_shutdown).await,
        "  tls_handshake_timeout = \"1s\"\n",
    )
    .await;
    let mut stalled = TcpStream::connect(fixture.proxy.address)
        .await
        .expect("connect");
    // Half a ClientHello record header, then nothing.
    stalled.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stalled.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled handshake was not cut");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    fixture
        .proxy
        .wait_metric(
            "pki_sidecar_proxy_tls_handshakes_total{result=\"timeout\"}",
            1.0,
        )
        .await;
    let mut client = fixture.client(H1).await;
    assert_eq!(
        client.get("/").await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_even_after_a_cancelled_request() {
    // A client that gives up on a request (HTTP/2 RST_STREAM, as a browser does when the user
    // navigates away) must not leave its connection counted busy forever.
    let (upstream, state) = echo_upstream().await;
    let fixture = fixture(upstream, "  idle_timeout = \"1s\"\n").await;
    let mut client = fixture.client(H2).await;
    let request = client
        .request(Method::GET, "/slow")
        .body(empty())
        .expect("request");
    let pending = client.send(request);
    tokio::select! {
        _ = pending => panic!("/slow answered before it was released"),
        () = state.slow_started.notified() => {}
    }
    // `pending` is dropped here: hyper resets the stream.
    let started = Instant::now();
    let connection = &mut client.connection;
    tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("the idle connection was never closed")
        .expect("connection task");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    state.release.notify_one();
}

/// `idle_timeout` counts from a response's end, as nginx's `keepalive_timeout` does: a
/// response that takes longer than it to send (a slow download, an event stream) neither closes
/// its HTTP/1.1 connection after it nor has HTTP/2's GOAWAY sent in its middle, and the next
/// request on the connection is served; then, quiet for `idle_timeout`, the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_outlasting_idle_timeout_keeps_its_connection() {
    // 20 bytes in four parts 500 ms apart: 1.5 s; `Connection: close`, so that each request
    // gets an upstream connection of its own.
    let upstream = serving_upstream(|mut stream| async move {
        if read_head(&mut stream).await.is_none() {
            return;
        }
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\nconnection: close\r\n\r\n";
        if stream.write_all(head).await.is_err() {
            return;
        }
        for part in 0..4 {
            if part > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if stream.write_all(b"12345").await.is_err() {
                return;
            }
        }
    })
    .await;
    let fixture = fixture(upstream, "  idle_timeout = \"1s\"\n").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        for request in ["first", "second"] {
            assert_eq!(
                client.get("/").await,
                Ok((StatusCode::OK, "12345".repeat(4))),
                "{alpn:?}: the {request} request on the connection"
            );
        }
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(20), &mut client.connection)
            .await
            .expect("the idle connection was never closed")
            .expect("connection task");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{alpn:?}: closed {:?} after its last response",
            started.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6, 7. The real binaries

/// `pki-sidecar proxy` as a process with `body` in its `proxy {}` block, on ports it binds
/// itself ([`util::role`]), once ready (serving the pair it was given: before that it refuses
/// handshakes); started off the async runtime (starting waits for its log).
async fn spawn_proxy(dir: &Path, body: &str) -> RoleProcess {
    spawn_proxy_behind(dir, body, &[]).await
}

/// [`spawn_proxy`], the process started by `wrapper` (a command line that execs the rest).
async fn spawn_proxy_behind(dir: &Path, body: &str, wrapper: &[String]) -> RoleProcess {
    let config = util::write_file(dir, "proxy.hcl", &format!("proxy {{\n{body}}}\n"));
    let log = dir.join("proxy.log");
    let wrapper = wrapper.to_vec();
    tokio::task::spawn_blocking(move || {
        let proxy = Launch::role("proxy", &[&config], &log)
            .wrapper(&wrapper)
            .spawn();
        proxy.wait_ready(Duration::from_secs(15));
        proxy
    })
    .await
    .expect("spawn thread")
}

/// User + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// With one CPU to run on (`taskset`, a Pod whose CPU limit is under two), the proxy runs its
/// connections on one thread, says so as it starts, and serves both protocols and a request
/// that waits on the app while others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_with_one_cpu_runs_on_one_thread_and_serves() {
    let (upstream, state) = echo_upstream().await;
    let ca = ca("One CPU CA");
    let certs = CertDir::new();
    certs.install(&valid_pair(&ca));
    let pinned = ["taskset", "-c", "0"].map(String::from);
    let child = spawn_proxy_behind(
        certs.dir.path(),
        &format!("  upstream = \"http://{upstream}\"\n{}", certs.settings()),
        &pinned,
    )
    .await;
    let log = child.log();
    let starting = log
        .lines()
        .find(|line| line.contains("proxy starting"))
        .unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert!(
        starting.contains("\"scheduler\":\"current_thread\"") && starting.contains("\"threads\":1"),
        "{starting}"
    );
    let address = child.address("proxy.listen");
    let mut waiting = Client::connect(address, client_config(&ca.pem, H1, None))
        .await
        .expect("connect");
    let slow = tokio::spawn(async move { waiting.get("/slow").await });
    tokio::time::timeout(Duration::from_secs(10), state.slow_started.notified())
        .await
        .expect("the slow request reached the upstream");
    for protocol in [H1, H2] {
        let mut client = Client::connect(address, client_config(&ca.pem, protocol, None))
            .await
            .expect("connect");
        for _ in 0..3 {
            let (status, body) = client.get("/").await.expect("answered");
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(body.contains("\"method\":\"GET\""), "{body}");
        }
    }
    state.release.notify_one();
    assert_eq!(
        slow.await.expect("slow request task"),
        Ok((StatusCode::OK, "slow done\n".to_string()))
    );
    let (code, log) = tokio::task::spawn_blocking(move || child.stop())
        .await
        .expect("stop thread");
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_long_request_finish_refuses_new_connections_and_exits_zero() {
    drains_on(Signal::SIGTERM).await;
}

/// SIGQUIT is nginx's graceful stop (its image's `STOPSIGNAL`): the proxy drains on it as on
/// SIGTERM, where it was killed at once with every request in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_drains_as_sigterm_does() {
    drains_on(Signal::SIGQUIT).await;
}

/// After `stop`, a long request finishes, new connections are refused, and the proxy exits 0.
async fn drains_on(stop: Signal) {
    let (upstream, state) = echo_upstream().await;
    let ca = ca("Drain CA");
    let certs = CertDir::new();
    certs.install(&valid_pair(&ca));
    let child = spawn_proxy(
        certs.dir.path(),
        &format!("  upstream = \"http://{upstream}\"\n{}", certs.settings()),
    )
    .await;
    let address = child.address("proxy.listen");

    let mut client = Client::connect(address, client_config(&ca.pem, H1, None))
        .await
        .expect("connect");
    let in_flight = tokio::spawn(async move { client.get("/slow").await });
    tokio::time::timeout(Duration::from_secs(10), state.slow_started.notified())
        .await
        .expect("the request reached the upstream");

    util::signal(child.pid(), stop);
    let start = Instant::now();
    while TcpStream::connect(address).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the proxy still accepts connections after {stop}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!in_flight.is_finished(), "the in-flight request was cut");

    state.release.notify_one();
    let answer = in_flight.await.expect("request task");
    assert_eq!(answer, Ok((StatusCode::OK, "slow done\n".to_string())));
    let (code, stderr) =
        tokio::task::spawn_blocking(move || child.wait_exit(Duration::from_secs(15)))
            .await
            .expect("wait thread");
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("draining connections"), "{stderr}");
    assert!(stderr.contains("proxy stopped"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outlasting_idle_timeout_keeps_the_proxy_quiet() {
    let (upstream, state) = echo_upstream().await;
    let ca = ca("Quiet CA");
    let certs = CertDir::new();
    certs.install(&valid_pair(&ca));
    let child = spawn_proxy(
        certs.dir.path(),
        &format!(
            "  upstream = \"http://{upstream}\"\n{}  idle_timeout = \"1s\"\n",
            certs.settings()
        ),
    )
    .await;
    let address = child.address("proxy.listen");
    let mut client = Client::connect(address, client_config(&ca.pem, H1, None))
        .await
        .expect("connect");
    let in_flight = tokio::spawn(async move { client.get("/slow").await });
    tokio::time::timeout(Duration::from_secs(10), state.slow_started.notified())
        .await
        .expect("the request reached the upstream");
    // Waiting on an upstream costs nothing; a busy loop would burn a core for these 3 s.
    let before = cpu_ticks(child.pid());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let burned = cpu_ticks(child.pid()) - before;
    assert!(
        burned < ticks_per_second(),
        "the proxy used {burned} CPU ticks in 3 s while a request waited"
    );
    state.release.notify_one();
    assert_eq!(
        in_flight.await.expect("request task"),
        Ok((StatusCode::OK, "slow done\n".to_string())),
        "a request longer than idle_timeout completes"
    );
}

/// Runs curl against the proxy; returns (stdout, stderr) after asserting success.
fn curl(ca: &Path, address: SocketAddr, protocol: &str) -> String {
    let url = format!("https://localhost:{}/", address.port());
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            protocol,
            "--cacert",
        ])
        .arg(ca)
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", address.port()),
        ])
        .args(["--write-out", "\n%{http_version} %{http_code}", &url])
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {protocol}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `pki-sidecar app` and, in front of it, `pki-sidecar proxy` (the binaries, not the library),
/// serving a pair from a CA of its own; the proxy is ready. Fields drop in order: the processes
/// end before their directory goes.
struct Binaries {
    proxy: RoleProcess,
    app: RoleProcess,
    certs: CertDir,
    pair: Pair,
    ca: Ca,
}

fn proxy_and_app_binaries(ca_name: &str) -> Binaries {
    let ca = ca(ca_name);
    let pair = valid_pair(&ca);
    let certs = CertDir::new();
    certs.install(&pair);
    let app_config = util::write_file(certs.dir.path(), "app.hcl", "app {}\n");
    let app = Launch::role("app", &[&app_config], &certs.dir.path().join("app.log")).spawn();
    let config = util::write_file(
        certs.dir.path(),
        "proxy.hcl",
        &format!(
            "proxy {{\n  upstream = \"http://{}\"\n{}}}\n",
            app.address("app.listen"),
            certs.settings()
        ),
    );
    let proxy = Launch::role("proxy", &[&config], &certs.dir.path().join("proxy.log")).spawn();
    proxy.wait_ready(Duration::from_secs(15));
    Binaries {
        proxy,
        app,
        certs,
        pair,
        ca,
    }
}

/// A Pod's memory goes back down after a burst of connections. The binary's allocator (jemalloc
/// with a background thread, .cargo/config.toml) returns the pages the burst's connections freed
/// once they have gone unused for its decay time (10 s), with no further traffic to prompt it.
/// glibc's malloc and the static musl build's own libc keep such pages: with them the proxy's
/// RSS stays at the burst's height until it restarts (BENCHMARKS.md, "The image's allocator").
#[test]
fn the_proxy_binary_gives_back_the_memory_of_a_burst_of_connections() {
    const CONNECTIONS: usize = 600;
    const BATCH: usize = 50;
    // The burst's client ends live in this process, the server ends in the proxy (which
    // inherits the limit).
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    assert!(hard > 2 * CONNECTIONS as u64, "open files limit {hard}");

    let Binaries {
        ca,
        proxy,
        app: _app,
        certs: _certs,
        pair: _pair,
    } = proxy_and_app_binaries("Burst CA");
    let (address, pid) = (proxy.address("proxy.listen"), proxy.pid());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        let client = client_config(&ca.pem, H1, None);
        // One connection first, so that what the proxy makes once (its session cache, the
        // upstream pool) is in the baseline.
        let (_, _, response) = get_once(address, client.clone()).await;
        assert!(response.ends_with(HELLO), "{response:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (before, _) = util::rss_kib(pid);

        // The burst: keep-alive connections, each answered once, all held open together.
        let mut held = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS / BATCH {
            let batch: Vec<_> = (0..BATCH)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let mut tls = tls_connect(address, client)
                            .await
                            .unwrap_or_else(|err| panic!("TLS handshake with the proxy: {err}"));
                        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                            .await
                            .expect("send the request");
                        let mut answer = Vec::new();
                        let mut buffer = [0u8; 4096];
                        while !answer.ends_with(HELLO.as_bytes()) {
                            let n = tokio::time::timeout(
                                Duration::from_secs(20),
                                tls.read(&mut buffer),
                            )
                            .await
                            .expect("an answer within 20 s")
                            .expect("read the answer");
                            assert!(n > 0, "closed before the answer: {answer:?}");
                            answer.extend_from_slice(&buffer[..n]);
                        }
                        tls
                    })
                })
                .collect();
            for connection in batch {
                held.push(connection.await.expect("a burst connection"));
            }
        }
        let (with, _) = util::rss_kib(pid);
        let took = with.saturating_sub(before);
        assert!(
            took >= 1024,
            "{CONNECTIONS} connections took {took} KiB of RSS ({before} KiB before): too little \
             to tell whether it comes back"
        );

        // They close, and nothing more happens: at least half of what they took comes back
        // (in a release build about a fifth of it stays).
        drop(held);
        let started = Instant::now();
        loop {
            let (now, _) = util::rss_kib(pid);
            if now <= before + took / 2 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the proxy's RSS was {before} KiB, {with} KiB with {CONNECTIONS} connections, \
                 and is still {now} KiB 60 s after they closed"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

#[test]
fn proxy_binary_in_front_of_app_binary_serves_curl_over_http1_and_http2() {
    let Binaries {
        ca,
        pair,
        certs,
        proxy,
        app,
    } = proxy_and_app_binaries("Done-When CA");
    let ca_file = util::write_file(certs.dir.path(), "ca.pem", &ca.pem);
    let (address, metrics) = (proxy.address("proxy.listen"), proxy.metrics());

    assert_eq!(
        curl(&ca_file, address, "--http1.1"),
        "hello world\n\n1.1 200"
    );
    assert_eq!(curl(&ca_file, address, "--http2"), "hello world\n\n2 200");

    assert_eq!(util::http(metrics, "GET", "/readyz").status, 200);
    let scrape = util::http(metrics, "GET", "/metrics").body;
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"tls.crt\",role=\"proxy\"}"
        ),
        pair.not_after as f64,
        "{scrape}"
    );
    assert_eq!(
        util::metric(
            &scrape,
            "pki_sidecar_http_requests_total{code=\"200\",role=\"proxy\"}"
        ),
        2.0,
        "{scrape}"
    );
    let colons: Vec<String> = pair.serial.iter().map(|b| format!("{b:02x}")).collect();
    let serial_label = format!("serial_number=\"{}\"", colons.join(":"));
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("pki_sidecar_tls_certificate_info{")
                && l.to_lowercase().contains(&serial_label)),
        "{serial_label} not in:\n{scrape}"
    );
    if let Some((ok, report)) = util::promtool_check(&scrape) {
        assert!(ok, "promtool check metrics failed:\n{report}\n{scrape}");
    }

    // SIGHUP reloads the certificate without a restart.
    let before = util::metric(&scrape, RELOADED);
    util::signal(proxy.pid(), Signal::SIGHUP);
    let start = Instant::now();
    while util::metric(&util::http(metrics, "GET", "/metrics").body, RELOADED) < before + 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(curl(&ca_file, address, "--http2"), "hello world\n\n2 200");

    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "proxy log:\n{log}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "app log:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// 8. Client certificates

async fn mtls_fixture(mode: &str) -> (Fixture, Ca, CancellationToken) {
    let upstream_shutdown = CancellationToken::new();
    let upstream = hello_upstream(&upstream_shutdown).await;
    let clients = ca("Client CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = util::write_file(dir.path(), "clients.pem", &clients.pem);
    let fixture = fixture(
        upstream,
        &format!(
            "  client_ca_file = \"{}\"\n  client_auth = \"{mode}\"\n",
            ca_file.display()
        ),
    )
    .await;
    // The CA file is read at start; the directory may go.
    drop(dir);
    (fixture, clients, upstream_shutdown)
}

/// A GET through a fresh connection with `identity`; `Err` when the handshake or request
/// is refused (TLS 1.3 reports a refused client certificate after the client's handshake).
async fn get_as(
    fixture: &Fixture,
    identity: Option<&Pair>,
) -> Result<(StatusCode, String), String> {
    let config = client_config(&fixture.ca.pem, H1, identity);
    // Bounded: a connection the proxy neither serves nor closes is a failure to report, not a
    // test run that never ends.
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut client = Client::connect(fixture.proxy.address, config).await?;
        // With TLS 1.3 the proxy refuses a client certificate after the client's handshake has
        // finished: it sends an alert and closes. hyper's HTTP/1 client almost always reports
        // that as an error, but rarely (about once in a thousand runs, seen with the proxy's
        // side of the socket in TIME-WAIT, i.e. closed by both ends) its request future never
        // resolves once the connection task is gone. A closed connection with no answer is the
        // refusal, whichever of the two notices it first.
        let mut closed = client.closed.clone();
        tokio::select! {
            got = client.get("/") => got,
            _ = async {
                let _ = closed.changed().await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            } => Err("the proxy closed the connection without an answer".to_string()),
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "a GET with {} client certificate got no answer and no close in 30 s:\n{}",
            if identity.is_some() { "a" } else { "no" },
            fixture.proxy.scrape()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_anonymous_clients() {
    let (fixture, clients, upstream_shutdown) = mtls_fixture("require").await;
    let member = issue(&clients, &ecdsa_key(), -DAY, DAY, true);
    let stranger = issue(&ca("Stranger CA"), &ecdsa_key(), -DAY, DAY, true);
    let failed_before = fixture.proxy.metric(HANDSHAKE_FAILED);
    assert!(
        get_as(&fixture, None).await.is_err(),
        "no client certificate"
    );
    assert!(
        get_as(&fixture, Some(&stranger)).await.is_err(),
        "a client certificate from another CA"
    );
    fixture
        .proxy
        .wait_metric(HANDSHAKE_FAILED, failed_before + 2.0)
        .await;
    assert_eq!(
        get_as(&fixture, Some(&member)).await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_accept_both() {
    let (fixture, clients, upstream_shutdown) = mtls_fixture("optional").await;
    let member = issue(&clients, &ecdsa_key(), -DAY, DAY, true);
    let stranger = issue(&ca("Stranger CA"), &ecdsa_key(), -DAY, DAY, true);
    assert_eq!(
        get_as(&fixture, None).await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    assert_eq!(
        get_as(&fixture, Some(&member)).await,
        Ok((StatusCode::OK, HELLO.to_string()))
    );
    assert!(
        get_as(&fixture, Some(&stranger)).await.is_err(),
        "a certificate that is presented is still verified"
    );
    upstream_shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_ca_file_is_reloaded_and_a_bad_one_keeps_the_previous() {
    let upstream_shutdown = CancellationToken::new();
    let upstream = hello_upstream(&upstream_shutdown).await;
    let first = ca("First Client CA");
    let second = ca("Second Client CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = util::write_file(dir.path(), "clients.pem", &first.pem);
    let fixture = fixture(
        upstream,
        &format!(
            "  client_ca_file = \"{}\"\n  client_auth = \"require\"\n  reload_interval = \"1s\"\n",
            ca_file.display()
        ),
    )
    .await;
    let from_first = issue(&first, &ecdsa_key(), -DAY, DAY, true);
    let from_second = issue(&second, &ecdsa_key(), -DAY, DAY, true);
    let ok = Ok((StatusCode::OK, HELLO.to_string()));
    assert_eq!(get_as(&fixture, Some(&from_first)).await, ok);
    assert!(get_as(&fixture, Some(&from_second)).await.is_err());

    // A new bundle is picked up by the poll, for new handshakes.
    replace(&ca_file, &second.pem);
    let started = std::time::Instant::now();
    while get_as(&fixture, Some(&from_second)).await != ok {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new client CA was not loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        get_as(&fixture, Some(&from_first)).await.is_err(),
        "the old CA no longer admits"
    );

    // A broken bundle is refused, counted, and the previous one stays (SIGHUP forces the look).
    let failures = reloads("failure", "client_ca_invalid");
    let before = fixture.proxy.metric(&failures);
    replace(&ca_file, "not a certificate\n");
    fixture.proxy.lifecycle.request_reload();
    fixture.proxy.wait_metric(&failures, before + 1.0).await;
    assert_eq!(get_as(&fixture, Some(&from_second)).await, ok);
    upstream_shutdown.cancel();
}

/// A client trusting `ca_pem` whose provider offers only `groups` for key exchange; resumption
/// as `resume` says (off: every handshake is a full one).
fn group_client_config(
    ca_pem: &str,
    groups: &[&'static dyn rustls::crypto::SupportedKxGroup],
    resume: bool,
) -> Arc<ClientConfig> {
    suite_client_config(ca_pem, groups, None, resume)
}

/// [`group_client_config`], offering `suites` (in this order) instead of the provider's.
fn suite_client_config(
    ca_pem: &str,
    groups: &[&'static dyn rustls::crypto::SupportedKxGroup],
    suites: Option<&[rustls::SupportedCipherSuite]>,
    resume: bool,
) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA usable");
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = groups.to_vec();
    if let Some(suites) = suites {
        provider.cipher_suites = suites.to_vec();
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// One TLS connection to `address` with `config`, one `GET /` on it; the key-exchange group
/// (`None` for none), how the handshake went, and the response as received.
async fn get_once(
    address: SocketAddr,
    config: Arc<ClientConfig>,
) -> (Option<String>, Option<rustls::HandshakeKind>, String) {
    let mut tls = tls_connect(address, config)
        .await
        .unwrap_or_else(|err| panic!("TLS handshake with the proxy: {err}"));
    let (_, connection) = tls.get_ref();
    let group = connection
        .negotiated_key_exchange_group()
        .map(|group| format!("{:?}", group.name()));
    let kind = connection.handshake_kind();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let response = read_until_closed(&mut tls, Duration::from_secs(20)).await;
    (group, kind, String::from_utf8_lossy(&response).into_owned())
}

/// The segments `socket` has received: those with data (Linux's `tcpi_data_segs_in`), and all
/// of them (`tcpi_segs_in`).
fn segments_in(socket: &std::net::TcpStream) -> (u32, u32) {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is zeroed memory the size of a `tcp_info`, a plain struct of integers, and
    // `length` says that size; the descriptor is a live TCP socket for the whole call.
    let info = unsafe {
        let result = libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut length,
        );
        assert_eq!(result, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
        info.assume_init()
    };
    (info.tcpi_data_segs_in, info.tcpi_segs_in)
}

/// A client that asks to close (`Connection: close`, or HTTP/1.0) gets the response, the session
/// ticket, the TLS close_notify and the TCP FIN in one segment after the handshake's: the proxy
/// leaves its last flush to the shutdown that follows it, and sends that flush with `MSG_MORE`
/// so that the FIN rides on it. A keep-alive request's response still leaves at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_response_leaves_with_its_ticket_and_close_notify_in_one_segment() {
    let shutdown = CancellationToken::new();
    let upstream = hello_upstream(&shutdown).await;
    let fixture = fixture(upstream, "").await;
    let address = fixture.proxy.address;
    let mut config = (*client_config(&fixture.ca.pem, H1, None)).clone();
    config.resumption = rustls::client::Resumption::in_memory_sessions(8);
    let config = Arc::new(config);
    for (request, status_line) in [
        (
            &b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"[..],
            "HTTP/1.1 200 OK",
        ),
        (&b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"[..], " 200 OK"),
    ] {
        let config = config.clone();
        let (response, segments) = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(address).expect("connect to the proxy");
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut conn = rustls::ClientConnection::new(config, name).expect("client");
            // Queued before the handshake ends: rustls sends it with its Finished, so the proxy
            // holds the ticket for the response (one segment either way).
            conn.writer().write_all(request).unwrap();
            let mut received = Vec::new();
            rustls::Stream::new(&mut conn, &mut tcp)
                .read_to_end(&mut received)
                .expect("the response, then close_notify (not a bare TCP close)");
            (
                String::from_utf8_lossy(&received).into_owned(),
                segments_in(&tcp),
            )
        })
        .await
        .unwrap();
        assert!(response.contains(status_line), "{response}");
        assert!(response.ends_with("hello world\n"), "{response}");
        let (data, all) = segments;
        assert_eq!(
            data, 2,
            "the handshake's flight, then the response with the ticket and close_notify"
        );
        // Without data: the SYN-ACK and at most the kernel's quick ACK of the client's
        // Finished. A FIN of its own would be a third (as it was before MSG_MORE).
        assert!(
            all - data <= 2,
            "{all} segments in, {data} with data: the FIN came in a segment of its own"
        );
    }
    // Keep-alive: the response is not held back for a shutdown that does not come.
    let mut client = fixture.client(H1).await;
    for _ in 0..3 {
        assert_eq!(
            client.get("/").await,
            Ok((StatusCode::OK, "hello world\n".to_string()))
        );
    }
    shutdown.cancel();
}

#[test]
fn proxy_binary_does_post_quantum_key_exchange_falls_back_to_classical_chooses_the_cipher_and_resumes()
 {
    use rustls::crypto::aws_lc_rs::kx_group;
    let Binaries {
        ca,
        proxy,
        app: _app,
        certs: _certs,
        pair: _pair,
    } = proxy_and_app_binaries("Key Exchange CA");
    let address = proxy.address("proxy.listen");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        // A client offering only the hybrid group (as a post-quantum-only client would), only
        // X25519 (as OpenSSL 3.0's clients), only P-256: each gets the group it offered.
        for (group, name) in [
            (kx_group::X25519MLKEM768, "X25519MLKEM768"),
            (kx_group::X25519, "X25519"),
            (kx_group::SECP256R1, "secp256r1"),
        ] {
            let (negotiated, kind, response) =
                get_once(address, group_client_config(&ca.pem, &[group], false)).await;
            assert_eq!(negotiated.as_deref(), Some(name), "offering only {name}");
            assert_eq!(
                kind,
                Some(rustls::HandshakeKind::Full),
                "offering only {name}"
            );
            assert!(
                response.starts_with("HTTP/1.1 200") && response.ends_with(HELLO),
                "offering only {name}: {response:?}"
            );
        }
        // A browser's order (hybrid first, then X25519) gets the hybrid group, without a
        // HelloRetryRequest.
        let (negotiated, kind, _) = get_once(
            address,
            group_client_config(
                &ca.pem,
                &[kx_group::X25519MLKEM768, kx_group::X25519],
                false,
            ),
        )
        .await;
        assert_eq!(negotiated.as_deref(), Some("X25519MLKEM768"));
        assert_eq!(kind, Some(rustls::HandshakeKind::Full));
        // The cipher suite: AES-128-GCM for a client listing AES-256 first (rustls's and
        // OpenSSL's order), ChaCha20 for one that lists it first, what a client offers only.
        use rustls::crypto::aws_lc_rs::cipher_suite::*;
        for (offered, expected) in [
            (
                vec![
                    TLS13_AES_256_GCM_SHA384,
                    TLS13_AES_128_GCM_SHA256,
                    TLS13_CHACHA20_POLY1305_SHA256,
                ],
                TLS13_AES_128_GCM_SHA256,
            ),
            (
                vec![TLS13_CHACHA20_POLY1305_SHA256, TLS13_AES_128_GCM_SHA256],
                TLS13_CHACHA20_POLY1305_SHA256,
            ),
            (vec![TLS13_AES_256_GCM_SHA384], TLS13_AES_256_GCM_SHA384),
        ] {
            let config = suite_client_config(&ca.pem, &[kx_group::X25519], Some(&offered), false);
            let tls = tls_connect(address, config)
                .await
                .unwrap_or_else(|err| panic!("TLS handshake with the proxy: {err}"));
            let offered: Vec<_> = offered.iter().map(|suite| suite.suite()).collect();
            assert_eq!(
                tls.get_ref()
                    .1
                    .negotiated_cipher_suite()
                    .map(|suite| suite.suite()),
                Some(expected.suite()),
                "offering {offered:?}"
            );
        }
        // Resumption: the one ticket each handshake issues is enough for a client that comes
        // back again and again (each resumed connection gets a new one).
        let resuming = group_client_config(&ca.pem, &[kx_group::X25519MLKEM768], true);
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let (_, kind, response) = get_once(address, resuming.clone()).await;
            assert!(response.ends_with(HELLO), "{response:?}");
            kinds.push(kind);
        }
        assert_eq!(
            kinds,
            [
                Some(rustls::HandshakeKind::Full),
                Some(rustls::HandshakeKind::Resumed),
                Some(rustls::HandshakeKind::Resumed)
            ]
        );
    });
}

/// `proxy.gzip` on a streamed response: each piece the app sends reaches the client
/// compressed and decodable at once (the first event arrives while the app still holds the
/// second), the whole is one gzip stream, and the app's framing headers are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_stream_is_flushed_piece_by_piece() {
    let (release, held) = tokio::sync::oneshot::channel();
    let upstream = streaming_upstream(held).await;
    let fixture = fixture(
        upstream,
        "  gzip {\n    types = [\"text/event-stream\"]\n    vary = true\n  }\n",
    )
    .await;
    let mut client = fixture.client(H2).await;
    let request = client
        .request(Method::GET, "/events")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(empty())
        .unwrap();
    let response = client.send(request).await.expect("response");
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(response.headers()[header::VARY], "Accept-Encoding");
    assert!(!response.headers().contains_key(header::CONTENT_LENGTH));
    let mut body = response.into_body();
    let mut received = Vec::new();
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    // The first event, decoded before the app sends anything more.
    while !String::from_utf8_lossy(decoder.get_ref()).contains("data: first") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the first event arrives while the app holds the second")
            .expect("a frame")
            .expect("no error");
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
            std::io::Write::write_all(&mut decoder, &data).unwrap();
            std::io::Write::flush(&mut decoder).unwrap();
        }
    }
    release.send(()).unwrap();
    let rest = body.collect().await.expect("the rest").to_bytes();
    received.extend_from_slice(&rest);
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&received[..]), &mut plain)
        .unwrap();
    assert_eq!(plain, "data: first\n\ndata: second\n\n");
}

/// An upstream that answers every request with `reply` as it is, then closes.
async fn raw_upstream(reply: &'static [u8]) -> SocketAddr {
    piecewise_upstream(vec![reply]).await
}

/// An upstream's response with both `Content-Length` and `Transfer-Encoding` is read by its
/// coding, and the length it does not have is not passed on (RFC 9112 §6.3): over HTTP/1.1
/// the client would cut the body short, over HTTP/2 refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_a_length_and_a_coding_reaches_the_client_by_its_coding() {
    let upstream = raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        let request = client.request(Method::GET, "/").body(empty()).unwrap();
        let response = client.send(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_ne!(
            response.headers().get(header::CONTENT_LENGTH),
            Some(&http::HeaderValue::from_static("2"))
        );
        let body = response.into_body().collect().await.expect("whole body");
        assert_eq!(body.to_bytes(), Bytes::from_static(b"hello"));
    }
}

/// A length the app repeats (`Content-Length: 6` twice, or `6, 6`, which hyper reads when the
/// values agree) reaches the client once, and a 204's length not at all (RFC 9110 §8.6): an
/// HTTP/2 client refuses either (PROTOCOL_ERROR), and would get no response at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_length_and_a_204s_length_do_not_reach_the_client() {
    for (reply, status, body) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Length: 6\r\n\r\nhello\n"[..],
            StatusCode::OK,
            &b"hello\n"[..],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 6, 6\r\n\r\nhello\n",
            StatusCode::OK,
            b"hello\n",
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            StatusCode::NO_CONTENT,
            b"",
        ),
    ] {
        let upstream = raw_upstream(reply).await;
        let fixture = fixture(upstream, "").await;
        for alpn in [H1, H2] {
            let mut client = fixture.client(alpn).await;
            let request = client.request(Method::GET, "/").body(empty()).unwrap();
            let response = client.send(request).await.expect("a response");
            assert_eq!(response.status(), status, "{alpn:?}");
            let lengths: Vec<_> = response
                .headers()
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .cloned()
                .collect();
            let whole = response.into_body().collect().await.expect("whole body");
            assert_eq!(whole.to_bytes(), Bytes::from_static(body), "{alpn:?}");
            if status == StatusCode::NO_CONTENT {
                assert!(lengths.is_empty(), "{alpn:?}: {lengths:?}");
            } else {
                assert_eq!(lengths, [http::HeaderValue::from_static("6")], "{alpn:?}");
            }
        }
    }
}

/// An app's response with more than hyper's default of 100 header lines (nginx counts none)
/// reaches the client whole, over HTTP/1.1 and HTTP/2; it was a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_many_header_lines_reaches_the_client() {
    let mut reply = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n".to_string();
    for index in 0..300 {
        reply.push_str(&format!("X-H-{index:03}: v{index}\r\n"));
    }
    reply.push_str("\r\nhello\n");
    let upstream = raw_upstream(reply.leak().as_bytes()).await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        let request = client.request(Method::GET, "/").body(empty()).unwrap();
        let response = client.send(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK, "{alpn:?}");
        let count = response
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("x-h-"))
            .count();
        assert_eq!(count, 300, "{alpn:?}");
    }
}

/// Header names go in title case over HTTP/1.1 (`Content-Type`, not `content-type`), as nginx
/// writes its own and most apps and clients theirs: the app's response headers, the proxy's
/// own (`Date`), and the request headers the app gets (`User-Agent`, `X-Forwarded-For`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_are_in_title_case_over_http1() {
    let (heads, mut asked) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            if let Some(head) = read_head(&mut stream).await {
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nX-Request-ID: 7\r\ncontent-TYPE: text/plain\r\n\
                          Content-Length: 6\r\n\r\nhello\n",
                    )
                    .await;
                let _ = stream.shutdown().await;
            }
        }
    });
    let fixture = fixture(upstream, "").await;
    let mut tls = tls_connect(
        fixture.proxy.address,
        client_config(&fixture.ca.pem, H1, None),
    )
    .await
    .expect("handshake");
    tls.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Custom-CASE: a\r\nuser-agent: t\r\n\
          Connection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = String::from_utf8(read_until_closed(&mut tls, Duration::from_secs(20)).await)
        .expect("text");
    let head = asked.recv().await.expect("the request reached the app");
    for line in [
        "X-Custom-Case: a\r\n",
        "User-Agent: t\r\n",
        "X-Forwarded-For: 127.0.0.1\r\n",
    ] {
        assert!(
            head.contains(line),
            "{line:?} in the app's request:\n{head}"
        );
    }
    for line in [
        "X-Request-Id: 7\r\n",
        "Content-Type: text/plain\r\n",
        "Date: ",
    ] {
        assert!(answer.contains(line), "{line:?} in the response:\n{answer}");
    }
    assert!(answer.ends_with("\r\n\r\nhello\n"), "{answer}");
}

/// nginx's default: a request header named with an underscore never reaches the app, so a
/// client's `X_Forwarded_For` cannot pose as the proxy's `X-Forwarded-For` to an app that
/// reads `_` and `-` alike (CGI, WSGI); `drop_underscore_headers = false` forwards them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_named_with_underscores_are_dropped_unless_told_otherwise() {
    let (upstream, state) = echo_upstream().await;
    for (settings, forwarded) in [("", false), ("  drop_underscore_headers = false\n", true)] {
        let fixture = fixture(upstream, settings).await;
        for alpn in [H1, H2] {
            let mut client = fixture.client(alpn).await;
            let request = client
                .request(Method::GET, "/")
                .header("X_Forwarded_For", "6.6.6.6")
                .header("X-Kept", "yes")
                .body(empty())
                .unwrap();
            let response = client.send(request).await.expect("response");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(echoed(&echo, "x-kept"), ["yes"]);
            assert_eq!(
                !echoed(&echo, "x_forwarded_for").is_empty(),
                forwarded,
                "{settings:?} {echo}"
            );
        }
    }
    drop(state);
}

/// The response timeout runs from the request body's end, as nginx's `proxy_read_timeout`
/// starts once the request is sent: an upload that flows, however slowly, is not cut at it;
/// a client whose body pauses `body_read_timeout` gets 408 (nginx's `client_body_timeout`),
/// counted as the client's, never as an upstream timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_not_an_upstream_timeout_and_a_stalled_one_is_the_clients() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(
        upstream,
        "  upstream_response_timeout = \"1500ms\"\n  body_read_timeout = \"1s\"\n",
    )
    .await;
    for alpn in [H1, H2] {
        // Six pieces 300 ms apart: 1.8 s in all, past the timeout, never paused as long.
        let (body_tx, response) = upload(fixture.client(alpn).await, 1);
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for index in 0..6 {
            let data = chunk(index, 1000);
            digest.update(&data);
            body_tx.send(data).await.expect("the body is being read");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        drop(body_tx);
        let (status, body) = response.await.expect("task").expect("response");
        assert_eq!(
            (status, body),
            (
                StatusCode::OK,
                format!("6000 {}", hex(digest.finish().as_ref()))
            ),
            "{alpn:?}"
        );
    }
    let timeouts = "pki_sidecar_proxy_upstream_errors_total{kind=\"timeout\"}";
    assert_eq!(fixture.proxy.metric(timeouts), 0.0);
    // A body that stops: 408, the client's.
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        let (body_tx, body_rx) = mpsc::channel::<Bytes>(1);
        let request = client
            .request(Method::POST, "/upload")
            .body(BoxBody::new(ChannelBody(body_rx)))
            .expect("request");
        body_tx.send(chunk(0, 1000)).await.expect("first piece");
        let response = client.send(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{alpn:?}");
        drop(body_tx);
    }
    assert_eq!(fixture.proxy.metric(timeouts), 0.0);
    assert!(
        fixture
            .proxy
            .metric("pki_sidecar_proxy_client_errors_total{kind=\"body\"}")
            >= 2.0
    );
}

/// An upstream that switches protocols for a request that asked for no upgrade has nothing the
/// client could use (RFC 9110 §15.2.2): 502, not a 101 followed by a close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_of_protocols_nobody_asked_for_is_a_502() {
    let upstream =
        raw_upstream(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n").await;
    let fixture = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        let mut client = fixture.client(alpn).await;
        let (status, _) = client.get("/").await.expect("an answer");
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{alpn:?}");
    }
}

/// An upstream that answers every request with `pieces`, a few milliseconds apart (each its
/// own read for the proxy), then closes.
async fn piecewise_upstream(pieces: Vec<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let pieces = pieces.clone();
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_some() {
                    for piece in pieces {
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    address
}

/// A request without a body is written and its answer read by the connection's own task, not
/// hyper's client: what the client gets is what hyper's client gave. Informational answers are
/// skipped, the app's own reason phrase kept (HTTP/1.1), a chunked body whose pieces and sizes
/// come across reads decoded whole, an HTTP/1.0 body read to the close, a HEAD answer's length
/// passed on with no body; a malformed head is a 502, and a body cut short cuts the client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_answer_read_in_the_requests_own_task_is_what_the_client_gets() {
    let chunked = piecewise_upstream(vec![
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 200 All Good\r\nTransfer-Encoding: chunked\r\nX-App: 1\r\n\r\n6\r",
        b"\nhello \r\n",
        b"5\r\nworld\r",
        b"\n0\r\nX-Checksum: 11\r\n\r\n",
    ])
    .await;
    let served = fixture(chunked, "").await;
    for alpn in [H1, H2] {
        let mut client = served.client(alpn).await;
        let request = client.request(Method::GET, "/").body(empty()).unwrap();
        let response = client.send(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK, "{alpn:?}");
        assert_eq!(response.headers()["x-app"], "1", "{alpn:?}");
        if alpn == H1 {
            let reason = response.extensions().get::<hyper::ext::ReasonPhrase>();
            assert_eq!(reason.map(|r| r.as_bytes()), Some(&b"All Good"[..]));
        }
        let body = response.into_body().collect().await.expect("whole body");
        assert_eq!(
            body.to_bytes(),
            Bytes::from_static(b"hello world"),
            "{alpn:?}"
        );
    }

    let to_the_close = piecewise_upstream(vec![
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ",
        b"second",
    ])
    .await;
    let served = fixture(to_the_close, "").await;
    for alpn in [H1, H2] {
        let mut client = served.client(alpn).await;
        let request = client.request(Method::GET, "/").body(empty()).unwrap();
        let response = client.send(request).await.expect("a response");
        let body = response.into_body().collect().await.expect("whole body");
        assert_eq!(
            body.to_bytes(),
            Bytes::from_static(b"first second"),
            "{alpn:?}"
        );
    }

    let head = raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").await;
    let served = fixture(head, "").await;
    let mut client = served.client(H1).await;
    let request = client.request(Method::HEAD, "/").body(empty()).unwrap();
    let response = client.send(request).await.expect("a response");
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "5");
    let body = response.into_body().collect().await.expect("no body");
    assert!(body.to_bytes().is_empty());

    let malformed = raw_upstream(b"HTTP/1.1 20 OK\r\n\r\n").await;
    let served = fixture(malformed, "").await;
    let mut client = served.client(H1).await;
    let request = client.request(Method::GET, "/").body(empty()).unwrap();
    let response = client.send(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    let cut = piecewise_upstream(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"]).await;
    let served = fixture(cut, "").await;
    let mut client = served.client(H1).await;
    let request = client.request(Method::GET, "/").body(empty()).unwrap();
    let response = client.send(request).await.expect("a response");
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "10");
    assert!(
        response.into_body().collect().await.is_err(),
        "a body cut short at the app is cut short at the client"
    );
}

/// A request body read ahead whole (nginx's `proxy_request_buffering`, on by default) reaches
/// the app whole with its `Content-Length`, whatever the size: up to 16 KiB it is written with
/// its head by the request's own task, beyond by hyper's client. It came without a length,
/// chunked from an HTTP/1.1 client or as an HTTP/2 stream, in two pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_read_ahead_reaches_the_app_whole_with_its_length_whatever_its_size() {
    let (upstream, _state) = echo_upstream().await;
    let served = fixture(upstream, "").await;
    for alpn in [H1, H2] {
        for (index, size) in [1usize, 5000, 16 << 10, (16 << 10) + 1, 100_000]
            .into_iter()
            .enumerate()
        {
            let data = chunk(index as u64, size);
            let expected = format!(
                "{size} {}",
                hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data).as_ref())
            );
            let (pieces, answered) = upload(served.client(alpn).await, 2);
            pieces
                .send(data.slice(..size / 2))
                .await
                .expect("first piece");
            pieces
                .send(data.slice(size / 2..))
                .await
                .expect("second piece");
            drop(pieces);
            let (status, text) = answered.await.expect("task").expect("answer");
            assert_eq!(status, StatusCode::OK, "{alpn:?} {size}");
            assert_eq!(text, expected, "{alpn:?} {size}");

            // What the app was told of the body.
            let (pieces, taken) = mpsc::channel::<Bytes>(2);
            pieces
                .send(data.slice(..size / 2))
                .await
                .expect("first piece");
            pieces
                .send(data.slice(size / 2..))
                .await
                .expect("second piece");
            drop(pieces);
            let mut client = served.client(alpn).await;
            let request = client
                .request(Method::POST, "/")
                .body(BoxBody::new(ChannelBody(taken)))
                .unwrap();
            let response = client.send(request).await.expect("a response");
            let body = response.into_body().collect().await.expect("whole body");
            let description: serde_json::Value =
                serde_json::from_slice(&body.to_bytes()).expect("the echo's JSON");
            assert_eq!(
                echoed(&description, "content-length"),
                [size.to_string()],
                "{alpn:?} {size}"
            );
            assert!(echoed(&description, "transfer-encoding").is_empty());
        }
    }
}
