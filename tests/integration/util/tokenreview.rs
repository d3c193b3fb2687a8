//! A stand-in for the one part of the Kubernetes API server that OpenBao's Kubernetes auth calls:
//! `POST /apis/authentication.k8s.io/v1/tokenreviews`. It believes any ServiceAccount-shaped JWT
//! (the payload is decoded, the signature never checked) and answers with the user named by the
//! JWT's claims, so tests can log in as any ServiceAccount without a cluster. A token that does not
//! decode, or whose claims carry `"revoked": true`, is refused the way the API server refuses a
//! deleted ServiceAccount's token, so tests can exercise a failed login. It records the
//! ServiceAccount uid of every token it reviews, so a test can tell which token a login used (e.g.
//! after swapping the token file). It must not grow into a Kubernetes fake: everything else answers
//! 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The path Vault's Kubernetes auth plugin posts TokenReviews to.
pub const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// The claim naming the ServiceAccount's uid (set it with `service_account_jwt_with`).
pub const UID_CLAIM: &str = "kubernetes.io/serviceaccount/service-account.uid";

/// A running TokenReview endpoint; it serves as long as the runtime it was started on.
pub struct TokenReview {
    url: String,
    stats: Arc<Stats>,
}

/// What the stand-in has seen, shared with its connection tasks.
#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    seen_uids: Mutex<Vec<String>>,
}

impl TokenReview {
    /// Binds 127.0.0.1 on a free port and serves on `runtime`. The runtime must outlive every
    /// login a test makes, which is why the bed keeps it in its static.
    pub fn start(runtime: &tokio::runtime::Handle) -> std::io::Result<Self> {
        // Bound here rather than in the task so the port is known (and any error reported) now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let served = Arc::clone(&stats);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("TokenReview stand-in: adopt the bound listener");
            serve(listener, served).await;
        });
        Ok(Self {
            url: format!("http://{address}"),
            stats,
        })
    }

    /// Base URL to give Vault as `kubernetes_host`, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many TokenReviews have been posted so far, by every test using this stand-in (all of
    /// the binary's, for the shared bed's).
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// The [`UID_CLAIM`] of every token reviewed so far, in order, whether the review accepted it
    /// or not (refused `"revoked"` tokens included). Tokens that do not decode, or carry no uid,
    /// add nothing. The shared bed's list holds every test's logins: look for a uid of your own.
    pub fn seen_uids(&self) -> Vec<String> {
        lock(&self.stats.seen_uids).clone()
    }
}

async fn serve(listener: tokio::net::TcpListener, stats: Arc<Stats>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Accept errors (e.g. EMFILE) are transient; a dead loop would fail logins silently.
                eprintln!("TokenReview stand-in: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(request, Arc::clone(&stats), peer)
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("TokenReview stand-in: connection from {peer}: {error}");
            }
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    stats: Arc<Stats>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != TOKEN_REVIEW_PATH {
        return Ok(respond(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "code": 404}),
        ));
    }
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            eprintln!("TokenReview stand-in: reading the body from {peer}: {error}");
            return Ok(respond(StatusCode::BAD_REQUEST, &json!({"kind": "Status"})));
        }
    };
    let Ok(review_request) = serde_json::from_slice::<Value>(&body) else {
        return Ok(respond(
            StatusCode::BAD_REQUEST,
            &json!({"kind": "Status", "code": 400}),
        ));
    };
    let spec = review_request
        .get("spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let claims = spec["token"]
        .as_str()
        .ok_or("no spec.token")
        .and_then(claims_of);
    if let Some(uid) = claims
        .as_ref()
        .ok()
        .and_then(|claims| claims[UID_CLAIM].as_str())
    {
        lock(&stats.seen_uids).push(uid.to_owned());
    }
    // 201 Created is what the API server answers to a TokenReview create.
    Ok(respond(StatusCode::CREATED, &review(spec, claims)))
}

/// The TokenReview answering `spec` (whose token has `claims`): authenticated as the JWT's
/// ServiceAccount, or refused.
fn review(spec: Value, claims: Result<Value, &'static str>) -> Value {
    let status = match claims.and_then(|claims| user_of(&claims)) {
        Ok(user) => json!({"authenticated": true, "user": user}),
        Err(reason) => json!({"authenticated": false, "user": {}, "error": reason}),
    };
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "metadata": {},
        "spec": spec,
        "status": status,
    })
}

/// The claims of a JWT, unverified.
fn claims_of(token: &str) -> Result<Value, &'static str> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token is not a JWT");
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "JWT payload is not base64url")?;
    serde_json::from_slice(&payload).map_err(|_| "JWT payload is not JSON")
}

/// The TokenReview `status.user` for a legacy ServiceAccount token's claims.
fn user_of(claims: &Value) -> Result<Value, &'static str> {
    if claims["revoked"] == Value::Bool(true) {
        return Err("service account token has been revoked");
    }
    let claim = |name: &str| claims[format!("kubernetes.io/serviceaccount/{name}")].as_str();
    let (Some(namespace), Some(name)) = (claim("namespace"), claim("service-account.name")) else {
        return Err("JWT lacks the ServiceAccount namespace or name claims");
    };
    Ok(json!({
        "username": format!("system:serviceaccount:{namespace}:{name}"),
        "uid": claims[UID_CLAIM].as_str().unwrap_or_default(),
        "groups": [
            "system:serviceaccounts",
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated",
        ],
    }))
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Locks `list`, ignoring poisoning: it is append-only, so a panicked writer leaves it whole.
fn lock<T>(list: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    list.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
