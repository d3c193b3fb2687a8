//! A stand-in for the one part of the Kubernetes API server that OpenBao's Kubernetes auth calls:
//! `POST /apis/authentication.k8s.io/v1/tokenreviews`. It believes any ServiceAccount-shaped JWT
//! (the payload is decoded, the signature never checked) and answers with the user named by the
//! JWT's claims, so tests can log in as any ServiceAccount without a cluster. A token that does not
//! decode, or whose claims carry `"revoked": true`, is refused the way the API server refuses a
//! deleted ServiceAccount's token, so tests can exercise a failed login. It must not grow into a
//! Kubernetes fake: everything else answers 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A running TokenReview endpoint; it serves until the test binary exits.
pub struct TokenReview {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl TokenReview {
    /// Binds 127.0.0.1 on a free port and serves on `runtime`. The runtime must outlive every
    /// login a test makes, which is why the bed keeps it in its static.
    pub fn start(runtime: &tokio::runtime::Handle) -> std::io::Result<Self> {
        // Bound here rather than in the task so the port is known (and any error reported) now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("TokenReview stand-in: adopt the bound listener");
            serve(listener, counter).await;
        });
        Ok(Self {
            url: format!("http://{address}"),
            requests,
        })
    }

    /// Base URL to give Vault as `kubernetes_host`, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many TokenReviews have been posted so far, by every test in the binary.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(listener: tokio::net::TcpListener, requests: Arc<AtomicUsize>) {
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
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(request, Arc::clone(&requests), peer)
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
    requests: Arc<AtomicUsize>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != TOKEN_REVIEW_PATH {
        return Ok(respond(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "code": 404}),
        ));
    }
    requests.fetch_add(1, Ordering::SeqCst);
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
    // 201 Created is what the API server answers to a TokenReview create.
    Ok(respond(StatusCode::CREATED, &review(&review_request)))
}

/// The TokenReview answering `request`: authenticated as the JWT's ServiceAccount, or refused.
fn review(request: &Value) -> Value {
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match spec["token"]
        .as_str()
        .ok_or("no spec.token")
        .and_then(user_of)
    {
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

/// The TokenReview `status.user` for a legacy ServiceAccount token's claims.
fn user_of(token: &str) -> Result<Value, &'static str> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token is not a JWT");
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "JWT payload is not base64url")?;
    let claims: Value = serde_json::from_slice(&payload).map_err(|_| "JWT payload is not JSON")?;
    if claims["revoked"] == Value::Bool(true) {
        return Err("service account token has been revoked");
    }
    let claim = |name: &str| claims[format!("kubernetes.io/serviceaccount/{name}")].as_str();
    let (Some(namespace), Some(name)) = (claim("namespace"), claim("service-account.name")) else {
        return Err("JWT lacks the ServiceAccount namespace or name claims");
    };
    Ok(json!({
        "username": format!("system:serviceaccount:{namespace}:{name}"),
        "uid": claim("service-account.uid").unwrap_or_default(),
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
