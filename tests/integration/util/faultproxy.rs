//! A fault-injecting HTTP proxy between the agent and OpenBao: it forwards requests, or answers
//! 500, or 429 with `Retry-After`, or never answers, or resets connections, as the test says, and
//! switches at run time. It records every request it sees (when, method, path, what it did), so
//! a test can assert backoff spacing and request rates from the wire rather than from the
//! agent's own account.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;

/// What the proxy does with the next request (or connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward to OpenBao.
    Pass,
    /// Answer `500 Internal Server Error` with a Vault-shaped error body.
    Status500,
    /// Answer `429 Too Many Requests` with `Retry-After: N` seconds.
    TooManyRequests(u64),
    /// Read the request and never answer (the connection stays open until the client gives up).
    Hang,
    /// Accept each connection and reset it at once, before reading anything: Vault unreachable.
    Reset,
}

/// One request (or, in [`Mode::Reset`], one connection) seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    /// The path without the query, e.g. `/v1/pki_intermediate/issue/home`; empty for a reset
    /// connection.
    pub path: String,
    pub mode: Mode,
}

struct State {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Seen>>,
    /// Cancelled (and replaced) when the mode becomes [`Mode::Reset`], which closes every open
    /// connection: a client's pooled keep-alive connection must not outlive "Vault went away".
    open_connections: Mutex<CancellationToken>,
}

/// A running fault proxy on 127.0.0.1; stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (OpenBao's plain-http address) in `mode`.
    pub fn start(upstream: SocketAddr, mode: Mode) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fault proxy runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the fault proxy");
        let address = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            upstream,
            mode: Mutex::new(mode),
            seen: Mutex::new(Vec::new()),
            open_connections: Mutex::new(CancellationToken::new()),
        });
        runtime.spawn(accept_loop(listener, Arc::clone(&state)));
        FaultProxy {
            address,
            state,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`, for `VAULT_ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Switches the mode; requests already hanging keep hanging.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
        if mode == Mode::Reset {
            let mut open = self.state.open_connections.lock().unwrap();
            open.cancel();
            *open = CancellationToken::new();
        }
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests whose path contains `fragment`.
    pub fn seen_matching(&self, fragment: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains(fragment))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let mode = *state.mode.lock().unwrap();
        if mode == Mode::Reset {
            state.seen.lock().unwrap().push(Seen {
                at: Instant::now(),
                method: String::new(),
                path: String::new(),
                mode,
            });
            // Linger 0: close sends RST, as a crashed or firewalled peer does. (The deprecation
            // is about a non-zero linger blocking the thread in drop; zero never blocks.)
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
            continue;
        }
        let closed = state.open_connections.lock().unwrap().clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(request, state).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = closed.cancelled() => {}
            }
        });
    }
}

async fn handle(request: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    let mode = *state.mode.lock().unwrap();
    state.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        mode,
    });
    match mode {
        Mode::Pass => forward(request, state.upstream)
            .await
            .unwrap_or_else(|error| vault_error(502, &format!("fault proxy: {error}"), None)),
        // A request that raced the switch to Reset on a connection about to be closed.
        Mode::Reset => vault_error(503, "fault proxy: resetting", None),
        Mode::Status500 => vault_error(500, "injected internal error", None),
        Mode::TooManyRequests(after) => vault_error(429, "injected rate limit", Some(after)),
        Mode::Hang => std::future::pending().await,
    }
}

fn vault_error(status: u16, message: &str, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(after) = retry_after {
        builder = builder.header("retry-after", after.to_string());
    }
    builder
        .body(Full::new(Bytes::from(
            serde_json::json!({ "errors": [message] }).to_string(),
        )))
        .expect("a valid response")
}

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut uri = format!("http://{upstream}{}", parts.uri.path());
    if let Some(query) = parts.uri.query() {
        uri.push('?');
        uri.push_str(query);
    }
    let mut outgoing = Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        if name != "host" {
            outgoing = outgoing.header(name, value);
        }
    }
    let response = client.request(outgoing.body(Full::new(body))?).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// The gaps between consecutive times, in seconds.
pub fn gaps(times: &[Instant]) -> Vec<f64> {
    times
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]).as_secs_f64())
        .collect()
}
