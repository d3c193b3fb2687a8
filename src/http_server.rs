//! The accept loop every plain-HTTP listener shares: serve until shutdown, then drain.
//!
//! On shutdown the listener is closed first (new connections are refused), open connections
//! finish their in-flight request and are closed (HTTP/1 keep-alive ends after the current
//! response, HTTP/2 gets GOAWAY), and whatever is still running after the grace period is
//! dropped. It takes a bound listener so tests can bind port 0 and callers can report bind
//! errors themselves.

use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning on the error.
                    tracing::warn!(listener = name, error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection =
            builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(listener = name, %peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::debug!(
        listener = name,
        grace_seconds = grace.as_secs_f64(),
        "draining connections"
    );
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::debug!(listener = name, "all connections closed");
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, grace_seconds = grace.as_secs_f64(), "grace period over; closing the remaining connections");
        }
    }
}

/// Binds `address`; the error names the config key and, for a refused low port, the fix.
pub(crate) async fn bind(address: std::net::SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(address).await.map_err(|err| {
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
