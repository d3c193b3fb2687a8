//! The `proxy` role: TLS on 443 with the agent's certificate, HTTP forwarded to the app.
//!
//! The listener accepts while there is room under `max_connections` (beyond it, a connection is
//! closed at once), completes the TLS handshake within its timeout — taking the certificate
//! from [`store::CertStore`] with one atomic load — and serves HTTP/1.1 or HTTP/2 (ALPN) with
//! [`forward::Forwarder`]. Connections idle for `idle_timeout` are closed gracefully. On
//! shutdown it stops accepting, closes idle keep-alive connections, lets in-flight requests
//! finish within the grace period, and returns. The certificate files are followed by
//! [`store::Reloader`]; before the first valid pair the listener is up and refuses handshakes,
//! and `/readyz` says why.

pub(crate) mod access;
pub(crate) mod basic_auth;
pub(crate) mod client_cert;
pub(crate) mod concurrency;
pub(crate) mod cookies;
pub(crate) mod files;
pub(crate) mod forward;
pub(crate) mod gzip;
pub(crate) mod hosts;
pub(crate) mod metrics;
pub(crate) mod park;
pub(crate) mod rate_limit;
pub(crate) mod rewrite;
pub(crate) mod store;
pub(crate) mod stream_stall;
pub(crate) mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwap;
use std::future::Future;
use std::pin::Pin;

use access::{AccessBody, ConnectionInfo};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::Instrument;

use crate::tls::stream::{ServerConfigs, ServerTls};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config;
use crate::http_server;
use crate::lifecycle::Lifecycle;
use crate::telemetry::Telemetry;
use forward::{Forwarder, Peer};
use metrics::{ConfigReloadMetrics, ProxyMetrics};
use store::{CertResolver, CertStore, Reloader};
use stream_stall::StreamExecutor;

/// Runs the proxy until shutdown: binds its listeners, builds it, serves; `Ok` is a clean
/// exit.
/// With `reload` (how to read the configuration again, and the whole configuration `config`
/// came from), SIGHUP and changes to its files reload it.
pub async fn run(
    config: &config::Proxy,
    reload: Option<(ConfigReload, &config::Config)>,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    run_in_span(config, reload, lifecycle)
        .instrument(crate::telemetry::role_span("proxy"))
        .await
}

async fn run_in_span(
    config: &config::Proxy,
    reload: Option<(ConfigReload, &config::Config)>,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    raise_open_files_limit(config.max_connections);
    let backlog = config.listen_backlog;
    let mut listeners = vec![http_server::bind(config.listen, "proxy.listen", backlog).await?];
    for (n, address) in config.also_listen.iter().enumerate() {
        let key = format!("proxy.listen[{}]", n + 1);
        listeners.push(http_server::bind(*address, &key, backlog).await?);
    }
    let metrics_listener =
        http_server::bind(config.metrics_listen, "proxy.metrics_listen", backlog).await?;
    let telemetry = Telemetry::new().context("cannot register the proxy's metrics")?;
    // How the connections are run: on one thread (one CPU to run on), or by so many workers.
    let runtime = tokio::runtime::Handle::current();
    let (scheduler, threads) = match runtime.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => ("current_thread", 1),
        _ => ("multi_thread", runtime.metrics().num_workers()),
    };
    tracing::info!(
        listen = %config.listen,
        upstream = %config.upstream,
        cert = %config.cert_file.display(),
        key = %config.key_file.display(),
        metrics = %config.metrics_listen,
        scheduler,
        threads,
        "proxy starting"
    );
    let mut proxy = Proxy::build(config, telemetry)?;
    if let Some((reload, whole)) = reload {
        proxy = proxy.reload_with(reload, whole);
    }
    proxy.serve(listeners, metrics_listener, lifecycle).await;
    tracing::info!("proxy stopped");
    Ok(())
}

/// Descriptors the proxy needs besides its connections' and their upstreams': listeners, the
/// metrics server, certificate files being read, the inotify watch.
const SPARE_DESCRIPTORS: u64 = 64;

/// The most header lines of a client's HTTP/1.1 request. Past hyper's default of 100, hyper
/// takes their room from the heap for each request; 400 keeps it in the allocator's small sizes.
const MAX_REQUEST_HEADERS: usize = 400;

/// Raises the soft limit on open files to the hard one. Each connection holds a socket (and,
/// while a request is forwarded, a second one to the upstream), so `max_connections` (10,000 by
/// default) needs far more than the soft limit of 1,024 that many systems start processes with;
/// without this, `accept` fails with EMFILE long before `max_connections` is reached. The hard
/// limit is left alone (raising it needs privileges); a soft limit still too low is logged.
fn raise_open_files_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the open files limit");
            return;
        }
    };
    let mut effective = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => effective = hard,
            Err(err) => {
                tracing::warn!(error = %err, soft, hard, "cannot raise the open files limit")
            }
        }
    }
    let wanted = open_files_needed(max_connections);
    if effective < wanted {
        tracing::warn!(
            open_files_limit = effective,
            open_files_needed = wanted,
            max_connections,
            "{}",
            open_files_advice(effective, wanted)
        );
    } else {
        tracing::debug!(open_files_limit = effective, "open files limit");
    }
}

/// Descriptors `max_connections` needs: a socket each, a second one to the upstream while a
/// request is forwarded, and a few spare for files and listeners.
fn open_files_needed(max_connections: usize) -> u64 {
    2 * max_connections as u64 + SPARE_DESCRIPTORS
}

/// The open-files warning: what is needed and how to raise it.
fn open_files_advice(limit: u64, needed: u64) -> String {
    format!(
        "the open files limit ({limit}) is below the {needed} that proxy.max_connections needs; \
         accept will fail with EMFILE first. Raise it to {needed}: `ulimit -n {needed}` in the \
         shell that starts the proxy, `LimitNOFILE={needed}` for systemd, `--ulimit \
         nofile={needed}:{needed}` for docker/podman (or the runtime's default nofile limit \
         in containerd/CRI-O for Kubernetes), or lower proxy.max_connections"
    )
}

/// How a running proxy reads its configuration again: at SIGHUP, and when one of its files
/// changes (checked every `reload_interval`).
#[derive(Clone)]
pub struct ConfigReload {
    /// Followed whatever the configuration says: the `--config` paths as given (a directory's
    /// own modification time changes when a file is added or replaced).
    roots: Vec<PathBuf>,
    /// Reads the whole configuration again, as at start.
    load: Arc<dyn Fn() -> Result<config::Config, config::ConfigErrors> + Send + Sync>,
}

impl ConfigReload {
    /// Reloads with `load`, following `roots` and every file a configuration it loads was read
    /// from.
    pub fn new(
        roots: Vec<PathBuf>,
        load: impl Fn() -> Result<config::Config, config::ConfigErrors> + Send + Sync + 'static,
    ) -> ConfigReload {
        ConfigReload {
            roots,
            load: Arc::new(load),
        }
    }

    /// The files to follow while `config` runs: the roots, the files it was read from, the
    /// nginx file's includes.
    fn files(&self, config: &config::Config) -> Vec<PathBuf> {
        let mut files = self.roots.clone();
        for path in config.sources.iter().chain(&config.included) {
            if !files.contains(path) {
                files.push(path.clone());
            }
        }
        files
    }
}

/// A configured proxy, ready to serve a bound listener (tests bind port 0).
pub struct Proxy {
    config: config::Proxy,
    store: Arc<CertStore>,
    tls: Arc<ArcSwap<ServerConfigs>>,
    /// The request handling of the configuration running now, replaced by a reload.
    forwarder: Arc<ArcSwap<Forwarder>>,
    metrics: ProxyMetrics,
    config_metrics: ConfigReloadMetrics,
    /// How to read the configuration again, when it came from files.
    reload: Option<(ConfigReload, Vec<PathBuf>)>,
    telemetry: Telemetry,
    http1: http1::Builder,
    http2: http2::Builder<StreamExecutor>,
}

impl Proxy {
    /// Reads the configuration again with `reload` at SIGHUP and when its files change;
    /// `config` is the one the proxy was built from (its files are followed).
    pub fn reload_with(mut self, reload: ConfigReload, config: &config::Config) -> Proxy {
        let files = reload.files(config);
        self.reload = Some((reload, files));
        self
    }

    /// Registers the proxy's metrics in `telemetry`, builds the TLS config and the upstream
    /// client; reads no certificate and binds nothing yet.
    pub fn build(config: &config::Proxy, telemetry: Telemetry) -> anyhow::Result<Proxy> {
        let metrics = ProxyMetrics::register(&telemetry.registry, &config.cert_label)?;
        let config_metrics = ConfigReloadMetrics::register(&telemetry.registry)?;
        let store = Arc::new(CertStore::default());
        let tickets: Arc<dyn rustls::server::ProducesTickets> = if config.session_tickets {
            rustls::crypto::aws_lc_rs::Ticketer::new()
                .context("cannot create the TLS session ticket key")?
        } else {
            Arc::new(NoTickets)
        };
        let client_ca = match &config.client_auth {
            Some(auth) => Some(read_client_ca(&auth.ca_file)?),
            None => None,
        };
        // The ticketer is carried over when a client CA reload rebuilds the config, so
        // resumption survives it.
        let tls = tls_config(config, store.clone(), tickets, client_ca.as_deref())?;
        telemetry
            .readiness
            .not_ready(store::READY_CONDITION, "no certificate loaded yet");
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_header_size(config.max_header_size)
            .max_buf_size(config.max_header_size.max(8192))
            // hyper's default, 100 lines, refused (431) what nginx takes: nginx bounds a
            // request's header lines by their size alone (`max_header_size` here).
            .max_headers(MAX_REQUEST_HEADERS)
            // Header names in title case (`Content-Type`, `Date`), as nginx writes its own and
            // most apps theirs.
            .title_case_headers(true);
        let mut http2 = http2::Builder::new(StreamExecutor::new(
            metrics.client_errors.send_timeout.clone(),
        ));
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_header_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(256)
            // Rapid reset (CVE-2023-44487): bound the resets a client may make us absorb.
            .max_pending_accept_reset_streams(64)
            .max_local_error_reset_streams(256)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        let forwarder = Arc::new(ArcSwap::from_pointee(Forwarder::new(
            config,
            metrics.clone(),
        )?));
        Ok(Proxy {
            config: config.clone(),
            store,
            tls: Arc::new(ArcSwap::from(tls)),
            forwarder,
            metrics,
            config_metrics,
            reload: None,
            telemetry,
            http1,
            http2,
        })
    }

    /// Serves `listeners` (the same server on each; the metrics on `metrics_listener`) until
    /// the lifecycle's shutdown; then drains.
    pub async fn serve(
        mut self,
        listeners: Vec<TcpListener>,
        metrics_listener: TcpListener,
        lifecycle: Lifecycle,
    ) {
        let shutdown = lifecycle.shutdown.clone();
        let metrics_task = self.telemetry.start(metrics_listener, shutdown.clone());
        let reloader = Reloader {
            cert_file: self.config.cert_file.clone(),
            key_file: self.config.key_file.clone(),
            store: self.store.clone(),
            metrics: self.metrics.reload.clone(),
            readiness: self.telemetry.readiness.clone(),
            poll_interval: self.config.reload_interval,
        };
        let reload_task = tokio::spawn(
            reloader
                .run(shutdown.clone(), lifecycle.reloads())
                .in_current_span(),
        );
        let user_files = UserFiles::follow(
            self.forwarder.load_full(),
            self.config.reload_interval,
            &shutdown,
            &lifecycle,
        );
        // With a reload, the configuration's follower replaces the user files' with the
        // forwarder.
        let (config_task, user_files) = match self.reload.take() {
            Some((reload, files)) => {
                let follower = ConfigFollower {
                    reload,
                    running: self.config.clone(),
                    forwarder: self.forwarder.clone(),
                    metrics: self.metrics.clone(),
                    config_metrics: self.config_metrics.clone(),
                    user_files,
                    shutdown: shutdown.clone(),
                    lifecycle: lifecycle.clone(),
                };
                let task = tokio::spawn(follower.run(files).in_current_span());
                (Some(task), UserFiles(None))
            }
            None => (None, user_files),
        };
        let client_ca_task = self.config.client_auth.clone().map(|auth| {
            tokio::spawn(
                follow_client_ca(
                    self.config.clone(),
                    auth.ca_file,
                    self.store.clone(),
                    self.tls.clone(),
                    self.metrics.clone(),
                    shutdown.clone(),
                    lifecycle.reloads(),
                )
                .in_current_span(),
            )
        });
        let tracker = TaskTracker::new();
        let connections = Arc::new(ConnectionShared {
            forwarder: self.forwarder.clone(),
            metrics: self.metrics.clone(),
            http1: self.http1.clone(),
            http2: self.http2.clone(),
            handshake_timeout: self.config.tls_handshake_timeout,
            idle_timeout: self.config.idle_timeout,
            header_read_timeout: self.config.header_read_timeout,
            shutdown: shutdown.clone(),
            access_log: self.config.access_log,
        });
        // The accept loop is a task of its own, so it runs on a runtime worker (the thread that
        // also polls the sockets and runs the connections) rather than on the thread that
        // called `serve` (the binary's main thread, in `block_on`): each new connection is then
        // accepted and its task started on one thread, with no wake-up of another thread (a
        // futex call and two context switches per connection when the process has one core).
        // One loop per listener; `max_connections` counts them all.
        let limiter = Arc::new(Semaphore::new(self.config.max_connections));
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(
                    accept_loop(
                        listener,
                        shutdown.clone(),
                        limiter.clone(),
                        self.tls.clone(),
                        self.metrics.clone(),
                        connections.clone(),
                        tracker.clone(),
                    )
                    .in_current_span(),
                )
            })
            .collect();
        for loop_task in accepting {
            if let Err(err) = loop_task.await {
                tracing::error!(error = %err, "an accept loop ended abnormally");
            }
        }
        tracker.close();
        tracing::info!(
            connections = tracker.len(),
            grace_seconds = crate::timefmt::log_seconds(self.config.shutdown_grace),
            "draining connections"
        );
        tokio::select! {
            () = tracker.wait() => {}
            () = tokio::time::sleep(self.config.shutdown_grace) => {
                tracing::warn!(connections = tracker.len(), "grace period over; closing the remaining connections");
            }
            () = lifecycle.abort.cancelled() => {}
        }
        let _ = reload_task.await;
        for task in [client_ca_task, config_task].into_iter().flatten() {
            let _ = task.await;
        }
        user_files.finish().await;
        let _ = metrics_task.await;
    }
}

/// Accepts connections until `shutdown`, while `limiter` has room (`max_connections`; beyond
/// it, a connection is closed at once), each served by a task of `tracker`; then closes the
/// listener.
async fn accept_loop(
    listener: TcpListener,
    shutdown: CancellationToken,
    limiter: Arc<Semaphore>,
    tls: Arc<ArcSwap<ServerConfigs>>,
    metrics: ProxyMetrics,
    connections: Arc<ConnectionShared>,
    tracker: TaskTracker,
) {
    // The port clients reached (nginx's `$server_port`, a directory redirect's port): the
    // listener's, read once rather than per connection.
    let local_port = listener.local_addr().map_or(0, |address| address.port());
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limiter.clone().try_acquire_owned() else {
            // Refuse fast: closing costs nothing, queueing would cost memory.
            metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let config = tls.load_full();
        let shared = connections.clone();
        tracker.spawn(
            async move {
                shared
                    .serve_connection(stream, peer, local_port, config)
                    .await;
                drop(permit);
            }
            .in_current_span(),
        );
    }
    drop(listener);
}

/// A service's error that asks hyper to close the connection without a response (an HTTP/2
/// stream is reset): nginx's 444.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed without a response (444)")
    }
}

impl std::error::Error for CloseConnection {}

/// What every connection task shares.
struct ConnectionShared {
    /// The configuration's request handling: each request takes the one current when it
    /// starts.
    forwarder: Arc<ArcSwap<Forwarder>>,
    metrics: ProxyMetrics,
    http1: http1::Builder,
    http2: http2::Builder<StreamExecutor>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    /// `proxy.header_read_timeout`: also how long a connection asked to close may take to.
    header_read_timeout: Duration,
    shutdown: CancellationToken,
    /// `proxy.access_log`.
    access_log: bool,
}

impl ConnectionShared {
    async fn serve_connection(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        local_port: u16,
        config: Arc<ServerConfigs>,
    ) {
        let _active = ActiveGuard::new(&self.metrics.connections_active);
        let started = Instant::now();
        // What the connection keeps of its client (the server name, a certificate) is what
        // the configuration current at its start wants.
        let forwarder = self.forwarder.load_full();
        // The access log is on or a value carries `$ssl_server_name`: the connection keeps
        // its server name.
        let sni_wanted = self.access_log || forwarder.wants_sni();
        // The task is a few words: the handshake's state (the TLS session under construction)
        // and then the HTTP connection live in boxes of their own, each sized for what it is.
        // Nothing big is bound to a name in this function: rustc keeps a named local's storage
        // in the task across every later `.await`, even once moved from.
        let Some(connection) = self.start_http(
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                result = Box::pin(tokio::time::timeout(self.handshake_timeout, crate::tls::stream::accept(&config, stream, sni_wanted, forwarder.sni_filter()))) => result,
            },
            started,
            Client {
                peer,
                local_port,
                sni_wanted,
                forwarder,
            },
        ) else {
            return;
        };
        connection.await;
    }

    /// Counts the handshake's outcome and, when it succeeded, returns the connection to run:
    /// hyper's HTTP/2 when ALPN chose it (RFC 9113 §3.2), HTTP/1.1 otherwise — each protocol's
    /// own connection type, not a sniffing wrapper, so nothing is buffered to guess.
    fn start_http(
        &self,
        handshake: Result<std::io::Result<ServerTls>, tokio::time::error::Elapsed>,
        started: Instant,
        client: Client,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        let Client {
            peer,
            local_port,
            sni_wanted,
            forwarder,
        } = client;
        let mut tls = match handshake {
            Ok(Ok(tls)) => {
                self.metrics.handshake_ok.inc();
                self.metrics
                    .handshake_duration
                    .observe(started.elapsed().as_secs_f64());
                tls
            }
            Ok(Err(err)) => {
                self.metrics.handshake_failed.inc();
                if crate::tls::is_plain_text_client(&err) {
                    tracing::debug!(%peer, "{}", crate::tls::PLAIN_HTTP_ON_TLS_PORT);
                } else {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                }
                return None;
            }
            Err(_) => {
                self.metrics.handshake_timeout.inc();
                tracing::debug!(%peer, "TLS handshake timed out");
                return None;
            }
        };
        tls.set_send_timeout(forwarder.send_timeout());
        let keepalive_requests = forwarder.keepalive_requests();
        let mut peer_info = Peer::new(peer.ip(), forwarder.trusts(peer.ip()));
        peer_info.local_port = local_port;
        peer_info.port = peer.port();
        peer_info.tls_version = access::tls_version(&tls);
        if sni_wanted {
            peer_info.sni = tls.server_name().map(Box::from);
        }
        if forwarder.wants_client_cert() {
            peer_info.client_cert = tls
                .session()
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| client_cert::ClientCert::from_der(leaf))
                .map(Box::new);
        }
        let peer_info = Arc::new(peer_info);
        // Taken only with the access log on: off, a connection formats nothing more.
        let access = self
            .access_log
            .then(|| Arc::new(ConnectionInfo::new(peer, &tls)));
        let activity = Arc::new(Activity::default());
        drop(forwarder);
        let forwarders = self.forwarder.clone();
        let request_activity = activity.clone();
        let h2 = tls.session().alpn_protocol() == Some(b"h2");
        // HTTP/1 connections are parked between requests (see [`park`]); the service tells the
        // connection task when a response and a request body end.
        let h1_state = (!h2).then(|| Arc::new(park::H1State::default()));
        let request_h1_state = h1_state.clone();
        // HTTP/2 streams time their own wait for the client's window (see [`stream_stall`]).
        let connection_waits = h2.then(|| tls.send_waits());
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let forwarder = forwarders.load_full();
            let peer_address = peer;
            let connection_waits = connection_waits.clone();
            let peer = peer_info.clone();
            let activity = request_activity.clone();
            let access = access.clone();
            let h1 = request_h1_state.clone();
            async move {
                // Guards, not calls after the await: hyper drops this future when an HTTP/2
                // client resets the stream, and the request must still stop counting. The
                // request is in flight until its response's body ends (see `AccessBody`).
                let (in_flight, requests) = InFlight::begin(activity);
                if let Some(connection_waits) = connection_waits {
                    stream_stall::watch_stream(
                        forwarder.send_timeout(),
                        peer_address,
                        connection_waits,
                    );
                }
                // nginx's `keepalive_requests`: an HTTP/1.1 connection's last response says it
                // closes (HTTP/2: the connection task sends GOAWAY).
                let last = !h2 && requests >= forwarder.keepalive_requests();
                let open = h1.as_ref().map(|state| {
                    state.request(
                        hyper::body::Body::is_end_stream(request.body()),
                        park::asks_to_close(&request),
                    )
                });
                let gzip = forwarder.gzip();
                let asked = gzip.map(|gzip| gzip.asked(&request));
                let started = access.as_ref().map(|connection| {
                    let method = request.method().clone();
                    let path = Box::<str>::from(request.uri().path());
                    (connection.clone(), method, path, Instant::now())
                });
                let mut upstream = None;
                // Boxed: hyper keeps a slot the size of this future on every connection, idle
                // or not; a box per request is cheaper than that slot holding the whole
                // forwarding state.
                let timing = started.is_some().then_some(&mut upstream);
                let response = Box::pin(forwarder.handle(request, &peer, timing, h1)).await;
                let status = response.status().as_u16();
                let record = started.map(|(connection, method, path, started)| {
                    Box::new(access::Record {
                        connection,
                        method,
                        path,
                        status,
                        started,
                        upstream,
                        bytes: 0,
                    })
                });
                let close = response.status() == forward::CLOSE;
                let mut response = response;
                if last && response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                let encoder = match (gzip, asked) {
                    (Some(gzip), Some(asked)) => {
                        let status = response.status();
                        gzip.start(asked, status, response.headers_mut())
                    }
                    _ => None,
                };
                let held = response.extensions_mut().remove::<Arc<concurrency::Held>>();
                let response = response
                    .map(|body| AccessBody::new(body, record, open, encoder, held, in_flight));
                if close {
                    // Logged (status 444, as nginx logs it) as the response is dropped unsent.
                    drop(response);
                    // HTTP/1: hyper closes the connection on the error. HTTP/2: hyper resets
                    // the stream with the reason the error carries, nginx's PROTOCOL_ERROR.
                    return Err(if h2 {
                        Box::new(h2::Error::from(h2::Reason::PROTOCOL_ERROR))
                            as Box<dyn std::error::Error + Send + Sync>
                    } else {
                        Box::new(CloseConnection)
                    });
                }
                Ok(response)
            }
        });
        match h1_state {
            None => {
                let connection = self.http2.serve_connection(TokioIo::new(tls), service);
                Some(Box::pin(self.drive(
                    connection,
                    activity,
                    keepalive_requests,
                    peer,
                )))
            }
            Some(state) => Some(Box::pin(self.serve_http1(
                Box::new(tls),
                service,
                state,
                activity,
                peer,
            ))),
        }
    }

    /// Logs (and counts, for a send timeout) the error a connection ended with.
    fn ended_with(&self, peer: SocketAddr, err: &hyper::Error) {
        if crate::tls::stream::SendTimedOut::caused(err) {
            self.metrics.client_errors.send_timeout.inc();
            tracing::info!(%peer, "closed: the client took none of the response's bytes for send_timeout");
        } else {
            tracing::debug!(%peer, error = %err, "connection ended with an error");
        }
    }

    /// Runs `connection` to its end, closing it gracefully at shutdown, once idle, or once it
    /// has had `keepalive_requests` requests.
    async fn drive<C: GracefulConnection>(
        &self,
        connection: C,
        activity: Arc<Activity>,
        keepalive_requests: usize,
        peer: SocketAddr,
    ) {
        tokio::pin!(connection);
        let mut closing = false;
        loop {
            // Once asked to close, a connection with nothing in flight has `header_read_timeout`
            // to do so: hyper's graceful close waits for a client that never sent HTTP/2's
            // preface for ever (a connection held open by sending nothing after the handshake).
            let next_check = if closing {
                Instant::now() + self.header_read_timeout
            } else {
                activity.next_check(self.idle_timeout)
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        self.ended_with(peer, &err);
                    }
                    return;
                }
                () = self.shutdown.cancelled(), if !closing => {
                    // In-flight requests finish; idle keep-alive connections close now.
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                // Requests start on tasks of their own; this one looks at each of its wake-ups
                // (the responses' frames go out through it).
                () = std::future::poll_fn(|_| {
                    if activity.requests.load(Ordering::Relaxed) >= keepalive_requests {
                        std::task::Poll::Ready(())
                    } else {
                        std::task::Poll::Pending
                    }
                }), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep_until(next_check.into()) => {
                    if closing {
                        if activity.in_flight.load(Ordering::Relaxed) == 0 {
                            tracing::debug!(%peer, "closed: the client kept a connection asked to close");
                            return;
                        }
                    } else if activity.is_idle(self.idle_timeout) {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
    }
}

/// A connection's client, and the configuration it started under.
struct Client {
    peer: SocketAddr,
    local_port: u16,
    /// The connection keeps its TLS server name.
    sni_wanted: bool,
    forwarder: Arc<Forwarder>,
}

/// An HTTP connection that can be asked to finish what is in flight and close.
trait GracefulConnection: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, E> GracefulConnection for http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: hyper::body::Body + Send + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

/// When a connection last started or finished a request, how many are in flight (from a
/// request's start to its response's end), and how many it has had.
struct Activity {
    epoch: Instant,
    last_millis: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicUsize,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            epoch: Instant::now(),
            last_millis: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let millis = self.epoch.elapsed().as_millis() as u64;
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    /// A request starts: the connection's how-manyth.
    fn begin(&self) -> usize {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// Whether a request is in flight.
    fn in_flight(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.epoch + Duration::from_millis(self.last_millis.load(Ordering::Relaxed)) + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && Instant::now() >= self.idle_deadline(idle)
    }

    /// When to look again: at the idle deadline, or, while a request is in flight (the
    /// connection cannot go idle before it ends, and the deadline may already be past), one
    /// idle period from now, so that a request outlasting `idle_timeout` is not a busy loop.
    fn next_check(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            Instant::now() + idle
        } else {
            self.idle_deadline(idle)
        }
    }
}

/// One request in flight on a connection, until its response's body ends or is dropped
/// (see [`AccessBody`]), however its future ends.
struct InFlight(Arc<Activity>);

impl InFlight {
    /// The guard, and how many requests the connection has had with this one.
    fn begin(activity: Arc<Activity>) -> (InFlight, usize) {
        let requests = activity.begin();
        (InFlight(activity), requests)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Keeps `connections_active` exact however the connection task ends.
struct ActiveGuard<'a>(&'a prometheus::IntGauge);

impl<'a> ActiveGuard<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        ActiveGuard(gauge)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `session_tickets = false`: no stateless tickets. A TLS 1.3 client still gets a ticket, one
/// that names a session in the proxy's session cache (as OpenSSL does with nginx's
/// `ssl_session_tickets off`); a TLS 1.2 client resumes by session ID.
#[derive(Debug)]
struct NoTickets;

impl rustls::server::ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }

    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Session tickets sent after a full or resumed TLS 1.3 handshake.
const TLS13_TICKETS: usize = 1;

/// The rustls server configs ([`ServerConfigs`]: one per cipher preference, the server
/// choosing the suite): TLS 1.2 and 1.3 (1.3 only with `tls_min_version = "tls13"`), the key-exchange groups of
/// [`crate::tls::SERVER_KX_GROUPS`] (X25519MLKEM768 first), ALPN h2 and http/1.1, one session
/// ticket per handshake, the certificate from `store`, client certificates when configured.
fn tls_config(
    config: &config::Proxy,
    store: Arc<CertStore>,
    tickets: Arc<dyn rustls::server::ProducesTickets>,
    client_ca: Option<&[rustls_pki_types::CertificateDer<'static>]>,
) -> anyhow::Result<Arc<ServerConfigs>> {
    // The client certificate verifier checks signatures, which both configs' providers do
    // alike (they differ in their cipher suites' order only): one for both.
    let verifier = match (client_ca, &config.client_auth) {
        (Some(cas), Some(auth)) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .context("a client CA certificate is not usable")?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                crate::tls::server_provider(),
            );
            let verifier = if auth.required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            Some(
                verifier
                    .build()
                    .context("cannot build the client certificate verifier")?,
            )
        }
        _ => None,
    };
    let resolver = Arc::new(CertResolver(store));
    let sessions = rustls::server::ServerSessionMemoryCache::new(4096);
    let configs = ServerConfigs::new(|provider| {
        let versions: &[&rustls::SupportedProtocolVersion] = if config.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .context("the crypto provider supports neither TLS 1.2 nor 1.3")?;
        let builder = match &verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut tls = builder.with_cert_resolver(resolver.clone());
        // `http/1.0` too, as nginx lists it: a client offering only it (`curl --http1.0`)
        // is served HTTP/1, not refused the handshake.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), b"http/1.0".to_vec()];
        tls.ticketer = tickets.clone();
        // One TLS 1.3 ticket per handshake, not rustls's two: each is encrypted and sent with
        // the handshake's first response, a client resumes with one, and a resumed connection
        // gets a fresh one for next time. Browsers use a ticket once and keep one per origin.
        tls.send_tls13_tickets = TLS13_TICKETS;
        tls.session_storage = sessions.clone();
        anyhow::Ok(tls)
    })?;
    Ok(Arc::new(configs))
}

fn read_client_ca(
    path: &std::path::Path,
) -> anyhow::Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    crate::tls::read_certificates(path)
        .with_context(|| format!("proxy.client_ca_file {}", path.display()))
}

/// Follows the client CA file: a valid new bundle replaces the TLS config (for new handshakes),
/// an invalid one is logged, counted (`reason="client_ca_invalid"`) and the previous bundle
/// stays. Checked every `reload_interval` (modification time first) and at SIGHUP.
async fn follow_client_ca(
    config: config::Proxy,
    path: PathBuf,
    store: Arc<CertStore>,
    tls: Arc<ArcSwap<ServerConfigs>>,
    metrics: ProxyMetrics,
    shutdown: CancellationToken,
    mut reloads: watch::Receiver<u64>,
) {
    let mut watch = FileWatch::new(std::slice::from_ref(&path), config.reload_interval).await;
    while watch.changed(&shutdown, &mut reloads).await.is_some() {
        let tickets = tls.load().aes.ticketer.clone();
        match read_client_ca(&path)
            .and_then(|cas| tls_config(&config, store.clone(), tickets, Some(&cas)))
        {
            Ok(new) => {
                tls.store(new);
                tracing::info!(path = %path.display(), "loaded the client CA bundle");
            }
            Err(err) => {
                metrics
                    .reload
                    .reload_failure(store::ReloadError::ClientCaInvalid(String::new()).reason());
                tracing::warn!(
                    path = %path.display(),
                    error = format!("{err:#}"),
                    "client CA reload failed; keeping the previous bundle"
                );
            }
        }
    }
}

/// The task following the `basic_auth_file`s of one forwarder, when it has any.
struct UserFiles(Option<tokio::task::JoinHandle<()>>);

impl UserFiles {
    fn follow(
        forwarder: Arc<Forwarder>,
        interval: Duration,
        shutdown: &CancellationToken,
        lifecycle: &Lifecycle,
    ) -> UserFiles {
        UserFiles((!forwarder.basic_auths().is_empty()).then(|| {
            tokio::spawn(
                follow_user_files(forwarder, interval, shutdown.clone(), lifecycle.reloads())
                    .in_current_span(),
            )
        }))
    }

    /// Stops following: the forwarder was replaced (the new one read its files itself).
    fn stop(&self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }

    async fn finish(self) {
        if let Some(task) = self.0 {
            let _ = task.await;
        }
    }
}

/// Follows the configuration: at SIGHUP, and when one of its files changes, reads it all
/// again. A configuration that loads replaces the forwarder (every request that starts after
/// it, on new and open connections, is served with it); one that does not is logged and
/// counted, and the running one stays. Settings a running proxy cannot change (listeners,
/// TLS, connections' timeouts: [`applicable`]) keep their running values, and the
/// reload says which changed.
struct ConfigFollower {
    reload: ConfigReload,
    /// The configuration the proxy started with.
    running: config::Proxy,
    forwarder: Arc<ArcSwap<Forwarder>>,
    metrics: ProxyMetrics,
    config_metrics: ConfigReloadMetrics,
    user_files: UserFiles,
    shutdown: CancellationToken,
    lifecycle: Lifecycle,
}

impl ConfigFollower {
    async fn run(mut self, files: Vec<PathBuf>) {
        let interval = self.running.reload_interval;
        let mut reloads = self.lifecycle.reloads();
        let mut watch = FileWatch::new(&files, interval).await;
        let mut applied = self.running.clone();
        while watch.changed(&self.shutdown, &mut reloads).await.is_some() {
            let load = self.reload.load.clone();
            let loaded = match tokio::task::spawn_blocking(move || load()).await {
                Ok(loaded) => loaded,
                Err(err) => {
                    self.config_metrics.failed();
                    tracing::error!(error = %err, "the configuration reload ended abnormally");
                    continue;
                }
            };
            let config = match loaded {
                Ok(config) => config,
                Err(errors) => {
                    self.config_metrics.failed();
                    tracing::error!(
                        errors = %errors,
                        "the configuration does not load; serving with the previous one"
                    );
                    continue;
                }
            };
            // A reload may read other files (an include added, a directory's new file).
            let files = self.reload.files(&config);
            if files != watch.paths {
                watch = FileWatch::new(&files, interval).await;
            }
            for warning in &config.warnings {
                tracing::warn!("{warning}");
            }
            let (next, restart) = applicable(&self.running, &config.proxy);
            if next != applied {
                match self.replace(&next) {
                    Ok(()) => applied = next,
                    Err(err) => {
                        self.config_metrics.failed();
                        tracing::error!(
                            error = format!("{err:#}"),
                            "the configuration does not load; serving with the previous one"
                        );
                        continue;
                    }
                }
            } else {
                tracing::info!("configuration read again; no setting a reload applies has changed");
            }
            self.config_metrics.loaded(!restart.is_empty());
            if !restart.is_empty() {
                tracing::warn!(
                    settings = restart.join(", "),
                    "these settings changed and take effect at the next start; until then \
                     the proxy runs with their previous values"
                );
            }
        }
        self.user_files.finish().await;
    }

    /// Serves the requests that start from now on with `config`.
    fn replace(&mut self, config: &config::Proxy) -> anyhow::Result<()> {
        let forwarder = Arc::new(Forwarder::new(config, self.metrics.clone())?);
        self.forwarder.store(forwarder.clone());
        self.user_files.stop();
        self.user_files = UserFiles::follow(
            forwarder,
            self.running.reload_interval,
            &self.shutdown,
            &self.lifecycle,
        );
        tracing::info!(
            routes = config.routes.len(),
            upstream = %config.upstream,
            "configuration reloaded: requests that start from now on are served with it"
        );
        Ok(())
    }
}

/// What a reload can apply of `loaded`: the configuration with the settings that take effect
/// only at the next start (the listeners, the certificate files, TLS, and what each connection
/// is given when it opens) at their `running` values, and the keys of those that differ.
fn applicable(
    running: &config::Proxy,
    loaded: &config::Proxy,
) -> (config::Proxy, Vec<&'static str>) {
    // Every field is named here, so that a new setting has to say which kind it is.
    let config::Proxy {
        // Taken at the start.
        listen: _,
        also_listen: _,
        cert_file: _,
        key_file: _,
        cert_label: _,
        metrics_listen: _,
        listen_backlog: _,
        shutdown_grace: _,
        reload_interval: _,
        tls_handshake_timeout: _,
        tls13_only: _,
        session_tickets: _,
        header_read_timeout: _,
        idle_timeout: _,
        max_connections: _,
        max_header_size: _,
        access_log: _,
        client_auth: _,
        // Request handling: applied by a reload.
        upstream: _,
        upstream_target: _,
        upstream_connect_timeout: _,
        upstream_response_timeout: _,
        body_read_timeout: _,
        send_timeout: _,
        keepalive_requests: _,
        max_request_body: _,
        request_buffering: _,
        forwarded_headers: _,
        append_forwarded_for: _,
        trusted_proxies: _,
        hsts: _,
        response_headers: _,
        response_headers_on_success: _,
        request_headers: _,
        fixed_responses: _,
        conditional_answers: _,
        rewrites: _,
        routes: _,
        redirect_rewrite: _,
        x_real_ip: _,
        basic_auth: _,
        cookie_flags: _,
        rate_limit_zones: _,
        rate_limits: _,
        rate_limit_status: _,
        hide_response_headers: _,
        error_pages: _,
        maps: _,
        intercept_errors: _,
        accel_redirect: _,
        auth_request: _,
        upstream_tls: _,
        concurrency_limit_zones: _,
        concurrency_limits: _,
        concurrency_limit_status: _,
        access_rules: _,
        limit_except: _,
        server_names: _,
        gzip: _,
        file_types: _,
        expires: _,
        drop_underscore_headers: _,
        absolute_redirects: _,
        port_in_redirects: _,
    } = running;
    let mut applied = loaded.clone();
    let mut kept = Vec::new();
    macro_rules! at_start {
        ($key:literal: $($field:ident),+) => {
            if $(applied.$field != running.$field)||+ {
                kept.push($key);
                $(applied.$field = running.$field.clone();)+
            }
        };
    }
    at_start!("proxy.listen": listen, also_listen);
    at_start!("proxy.cert_file": cert_file);
    at_start!("proxy.key_file": key_file);
    at_start!("proxy.cert_label": cert_label);
    at_start!("proxy.metrics_listen": metrics_listen);
    at_start!("proxy.listen_backlog": listen_backlog);
    at_start!("proxy.shutdown_grace": shutdown_grace);
    at_start!("proxy.reload_interval": reload_interval);
    at_start!("proxy.tls_handshake_timeout": tls_handshake_timeout);
    at_start!("proxy.tls_min_version": tls13_only);
    at_start!("proxy.session_tickets": session_tickets);
    at_start!("proxy.header_read_timeout": header_read_timeout);
    at_start!("proxy.idle_timeout": idle_timeout);
    at_start!("proxy.max_connections": max_connections);
    at_start!("proxy.max_header_size": max_header_size);
    at_start!("proxy.access_log": access_log);
    at_start!("proxy.client_ca_file, proxy.client_auth": client_auth);
    (applied, kept)
}

/// Follows the `basic_auth_file`s: a file whose modification time changed (checked every
/// `interval`), or every file at SIGHUP, is read again; one that cannot be read or parsed is
/// logged and its previous users stay.
async fn follow_user_files(
    forwarder: Arc<Forwarder>,
    interval: Duration,
    shutdown: CancellationToken,
    mut reloads: watch::Receiver<u64>,
) {
    let auths = forwarder.basic_auths();
    let paths: Vec<PathBuf> = auths.iter().map(|a| a.path().to_path_buf()).collect();
    let mut watch = FileWatch::new(&paths, interval).await;
    while let Some(changed) = watch.changed(&shutdown, &mut reloads).await {
        for auth in changed.into_iter().map(|index| &auths[index]) {
            match auth.reload() {
                Ok(users) => {
                    tracing::info!(path = %auth.path().display(), users, "loaded the user file");
                }
                Err(error) => tracing::warn!(
                    path = %auth.path().display(),
                    error,
                    "user file reload failed; keeping the previous users"
                ),
            }
        }
    }
}

/// Files the proxy reads again when they change: their modification times (and sizes and
/// inodes, for a file replaced by another of the same age), checked every `interval`, and
/// SIGHUP, which counts as a change of every file.
struct FileWatch {
    paths: Vec<PathBuf>,
    seen: Vec<Option<FileVersion>>,
    poll: tokio::time::Interval,
}

/// What tells one version of a file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl FileWatch {
    async fn new(paths: &[PathBuf], interval: Duration) -> FileWatch {
        let mut poll = tokio::time::interval(interval);
        poll.tick().await;
        FileWatch {
            paths: paths.to_vec(),
            seen: paths.iter().map(|p| FileWatch::modified(p)).collect(),
            poll,
        }
    }

    fn modified(path: &std::path::Path) -> Option<FileVersion> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileVersion {
            modified: metadata.modified().ok()?,
            len: metadata.len(),
            inode: metadata.ino(),
        })
    }

    /// The indices of the files changed since the last call, once there are any; `None` at
    /// shutdown.
    async fn changed(
        &mut self,
        shutdown: &CancellationToken,
        reloads: &mut watch::Receiver<u64>,
    ) -> Option<Vec<usize>> {
        loop {
            let forced = tokio::select! {
                () = shutdown.cancelled() => return None,
                _ = self.poll.tick() => false,
                changed = reloads.changed() => if changed.is_err() { return None } else { true },
            };
            let mut changed = Vec::new();
            for (index, (path, seen)) in self.paths.iter().zip(self.seen.iter_mut()).enumerate() {
                let now = FileWatch::modified(path);
                if now != *seen || forced {
                    *seen = now;
                    changed.push(index);
                }
            }
            if !changed.is_empty() {
                return Some(changed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy_config(body: &str) -> config::Proxy {
        let text = format!("proxy {{\n{body}\n}}\n");
        config::load_str("p.hcl", &text, &crate::agent::functions::KnownFunctions)
            .unwrap_or_else(|errors| panic!("{errors}"))
            .proxy
    }

    #[test]
    fn a_reload_applies_request_settings_and_keeps_the_running_listeners_and_tls() {
        let running =
            proxy_config("listen = \"127.0.0.1:8443\"\nupstream = \"http://127.0.0.1:80\"");
        let loaded = proxy_config(
            "listen = \"127.0.0.1:9443\"\nupstream = \"http://127.0.0.1:81\"\n\
             tls_min_version = \"tls13\"\nhsts = \"max-age=60\"",
        );
        let (applied, kept) = applicable(&running, &loaded);
        assert_eq!(kept, ["proxy.listen", "proxy.tls_min_version"]);
        assert_eq!(applied.listen, running.listen);
        assert!(!applied.tls13_only);
        assert_eq!(applied.upstream, loaded.upstream);
        assert_eq!(applied.hsts.as_deref(), Some("max-age=60"));
        // Nothing but what only a start applies: nothing to apply, the keys named.
        let only_listen =
            proxy_config("listen = \"127.0.0.1:9443\"\nupstream = \"http://127.0.0.1:80\"");
        let (applied, kept) = applicable(&running, &only_listen);
        assert_eq!(applied, running);
        assert_eq!(kept, ["proxy.listen"]);
        assert_eq!(
            applicable(&running, &running),
            (running.clone(), Vec::new())
        );
    }

    #[test]
    fn the_open_files_warning_says_what_is_needed_and_how_to_raise_it() {
        let needed = open_files_needed(10_000);
        assert_eq!(needed, 20_064);
        let advice = open_files_advice(20_000, needed);
        for part in [
            "(20000)",
            "the 20064 that proxy.max_connections needs",
            "ulimit -n 20064",
            "LimitNOFILE=20064",
            "nofile=20064:20064",
        ] {
            assert!(advice.contains(part), "{part:?} in {advice}");
        }
    }
}
