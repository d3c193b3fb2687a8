//! The accept loop every plain-HTTP listener shares: serve until shutdown, then drain; and
//! its TLS twin ([`serve_tls`], the admission webhook's), which completes each handshake in the
//! connection's own task within a timeout.
//!
//! On shutdown the listener is closed first (new connections are refused), open connections
//! finish their in-flight request and are closed (HTTP/1 keep-alive ends after the current
//! response, HTTP/2 gets GOAWAY), and whatever is still running after the grace period is
//! dropped. It takes a bound listener so tests can bind port 0 and callers can report bind
//! errors themselves.

use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::telemetry::SpanExecutor;
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
// `sockopt_impl!` (for `DeferAccept` below) names these unqualified in its expansion.
use nix::{getsockopt_impl, libc, setsockopt_impl, sockopt_impl};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

/// How long a client may take to send request headers (slowloris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `service` on `listener` until `shutdown` is cancelled, then drains for at most
/// `grace`. `name` labels log lines.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: CancellationToken,
    grace: Duration,
    name: &'static str,
) where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = connection_builder();
    let graceful = GracefulShutdown::new();
    while let Some((stream, peer)) = accept(&listener, &shutdown, name).await {
        let connection =
            builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection.into_owned());
        crate::telemetry::spawn_in_span(async move {
            if let Err(err) = connection.await {
                tracing::debug!(listener = name, %peer, error = %err, "connection ended with an error");
            }
        });
    }
    drain(listener, graceful, grace, name).await;
}

/// [`serve`] over TLS: each accepted connection completes its handshake with `tls` within
/// `handshake_timeout` in a task of its own (a slow client never holds up the accept loop),
/// then HTTP/1.1 or HTTP/2 is served on it. On shutdown, handshakes under way are dropped and
/// in-flight requests get `grace` to finish.
pub(crate) async fn serve_tls<S, B>(
    listener: TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    service: S,
    shutdown: CancellationToken,
    grace: Duration,
    name: &'static str,
) where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut builder = connection_builder();
    builder.http2().timer(TokioTimer::new());
    let builder = std::sync::Arc::new(builder);
    let graceful = GracefulShutdown::new();
    while let Some((stream, peer)) = accept(&listener, &shutdown, name).await {
        // Taken before the handshake, so the drain also waits for (and then drops) a
        // connection still shaking hands.
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = service.clone();
        let shutdown = shutdown.clone();
        crate::telemetry::spawn_in_span(async move {
            let handshake = tokio::select! {
                () = shutdown.cancelled() => return,
                result = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)) => result,
            };
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    if crate::tls::is_plain_text_client(&err) {
                        tracing::debug!(listener = name, %peer, "{}", crate::tls::PLAIN_HTTP_ON_TLS_PORT);
                    } else {
                        tracing::debug!(listener = name, %peer, error = %err, "TLS handshake failed");
                    }
                    return;
                }
                Err(_) => {
                    tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(listener = name, %peer, error = %err, "connection ended with an error");
            }
        });
    }
    drain(listener, graceful, grace, name).await;
}

/// The HTTP/1.1 and HTTP/2 connection builder both loops use, with the header read timeout.
fn connection_builder() -> auto::Builder<SpanExecutor> {
    let mut builder = auto::Builder::new(SpanExecutor);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .title_case_headers(true);
    builder
}

/// The next connection (with `TCP_NODELAY`, from the listener), or `None` once `shutdown` is
/// cancelled.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    name: &'static str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning on the error.
                    tracing::warn!(listener = name, error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Closes the listener, then waits for the open connections to finish, `grace` at most.
async fn drain(listener: TcpListener, graceful: GracefulShutdown, grace: Duration, name: &str) {
    drop(listener);
    tracing::debug!(
        listener = name,
        connections = graceful.count(),
        grace_seconds = crate::timefmt::log_seconds(grace),
        "draining connections"
    );
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::debug!(listener = name, "all connections closed");
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, grace_seconds = crate::timefmt::log_seconds(grace), "grace period over; closing the remaining connections");
        }
    }
}

/// Where Linux keeps the cap it applies to every `listen(2)` backlog.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// The backlog `listen(2)` will actually get for `wanted`: the kernel silently caps it at
/// `net.core.somaxconn`, so the smaller of the two (`wanted` when the cap cannot be read).
pub(crate) fn effective_backlog(wanted: u32, somaxconn: Option<u32>) -> u32 {
    somaxconn.map_or(wanted, |cap| wanted.min(cap.max(1)))
}

/// `net.core.somaxconn`, when readable.
fn somaxconn() -> Option<u32> {
    std::fs::read_to_string(SOMAXCONN).ok()?.trim().parse().ok()
}

/// Binds `address` and listens with `backlog` pending connections at most (capped by
/// `net.core.somaxconn`); the error names the config key and, for a refused low port, the fix.
pub(crate) async fn bind(
    address: std::net::SocketAddr,
    key: &str,
    backlog: u32,
) -> anyhow::Result<TcpListener> {
    let cap = somaxconn();
    let effective = effective_backlog(backlog, cap);
    tracing::debug!(
        key,
        listen_backlog = backlog,
        somaxconn = cap,
        effective,
        "listen backlog"
    );
    let listener = listen(address, effective).map_err(|err| {
        let hint = if err.kind() == std::io::ErrorKind::PermissionDenied && address.port() < 1024 {
            " (ports below 1024 need CAP_NET_BIND_SERVICE or a lower \
             net.ipv4.ip_unprivileged_port_start)"
        } else {
            ""
        };
        anyhow::Error::new(err).context(format!("cannot listen on {address} ({key}){hint}"))
    })?;
    // The address actually bound: with port 0 in the config, the one way to learn the port.
    match listener.local_addr() {
        Ok(bound) => tracing::info!(key, address = %bound, "listening"),
        Err(err) => tracing::warn!(key, error = %err, "listening; its address cannot be read"),
    }
    Ok(listener)
}

/// What `TcpListener::bind` does (SO_REUSEADDR, so a restart does not wait out TIME_WAIT), with
/// the backlog chosen instead of the fixed 128 (mio's, after std's), and `TCP_NODELAY`, which
/// Linux copies to every accepted socket: no `setsockopt` per connection.
fn listen(address: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    let listener = socket.listen(backlog)?;
    // An optimisation, not a need: where the kernel (or a sandbox such as an old gVisor)
    // refuses it, connections are accepted at the end of the TCP handshake, as without it.
    if let Err(err) = nix::sys::socket::setsockopt(&listener, DeferAccept, &DEFER_ACCEPT_SECONDS) {
        tracing::warn!(
            %address,
            error = %err,
            "TCP_DEFER_ACCEPT refused by the kernel: each connection is accepted at the end of \
             its TCP handshake, before its client has sent anything"
        );
    }
    Ok(listener)
}

/// How long the kernel holds a new connection that has sent nothing before handing it to
/// `accept` anyway ([`DeferAccept`]): one SYN-ACK retransmission.
const DEFER_ACCEPT_SECONDS: u32 = 1;

sockopt_impl!(
    /// `TCP_DEFER_ACCEPT`: the listener is readable, and `accept` returns a connection, once the
    /// client's first bytes have arrived, not at the end of the TCP handshake. Every protocol
    /// served here (TLS, HTTP) starts with the client, so the server wakes once per new
    /// connection, with its first read ready, instead of accepting and then waiting for it; a
    /// client that connects and says nothing costs a request socket in the kernel, not a
    /// socket and a task, until it does (or [`DEFER_ACCEPT_SECONDS`] pass).
    DeferAccept,
    Both,
    libc::IPPROTO_TCP,
    libc::TCP_DEFER_ACCEPT,
    u32
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_is_capped_by_somaxconn() {
        assert_eq!(effective_backlog(4096, Some(4096)), 4096);
        assert_eq!(effective_backlog(4096, Some(128)), 128);
        assert_eq!(effective_backlog(511, Some(4096)), 511);
        assert_eq!(effective_backlog(511, None), 511);
        assert_eq!(effective_backlog(511, Some(0)), 1);
    }

    #[tokio::test]
    async fn accepted_connections_have_nodelay_from_the_listener() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), "test.listen", 16)
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let (_client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
        let (stream, _) = accepted.unwrap();
        assert!(
            stream.nodelay().unwrap(),
            "TCP_NODELAY inherited from the listener"
        );
    }

    #[tokio::test]
    async fn a_connection_is_accepted_once_its_client_has_sent_something() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = bind("127.0.0.1:0".parse().unwrap(), "test.listen", 16)
            .await
            .unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        // The kernel holds a silent connection until its first SYN-ACK retransmission (1 s).
        assert!(
            tokio::time::timeout(Duration::from_millis(300), listener.accept())
                .await
                .is_err(),
            "a connection that has sent nothing was accepted"
        );
        client.write_all(b"GET").await.unwrap();
        let (mut accepted, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("accepted once its client has sent something")
            .unwrap();
        let mut first = [0u8; 3];
        accepted.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"GET");
    }
}
