//! The `app` role: the seed's "hello world" web server on port 80, behind the proxy.
//!
//! It answers `GET /` with `hello world`, `/healthz` with `ok`, and counts every response by
//! status code. It exists so the Pod is complete from one image; it must stay trivial.

use std::convert::Infallible;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tokio::net::TcpListener;

use crate::config;
use crate::http_server;
use crate::lifecycle::Lifecycle;
use crate::telemetry::{self, HttpMetrics, Telemetry};

/// Binds the app's two listeners and serves until shutdown.
pub async fn run(config: &config::App, lifecycle: Lifecycle) -> anyhow::Result<()> {
    let listener = http_server::bind(config.listen, "app.listen").await?;
    let metrics_listener = http_server::bind(config.metrics_listen, "app.metrics_listen").await?;
    let telemetry = Telemetry::new().context("cannot register the app's metrics")?;
    tracing::info!(
        listen = %config.listen,
        metrics = %config.metrics_listen,
        "app serving hello world"
    );
    let mut reloads = lifecycle.reloads();
    tokio::spawn(async move {
        while reloads.changed().await.is_ok() {
            tracing::info!("SIGHUP: the app role has nothing to reload");
        }
    });
    let metrics_task = tokio::spawn(
        telemetry
            .clone()
            .serve(metrics_listener, lifecycle.shutdown.clone()),
    );
    tokio::select! {
        result = serve(listener, telemetry, lifecycle.shutdown.clone(), config.shutdown_grace) => result?,
        () = lifecycle.abort.cancelled() => {}
    }
    metrics_task
        .await
        .context("the metrics listener task failed")?;
    tracing::info!("app stopped");
    Ok(())
}

/// Serves the app on an already-bound listener (tests bind port 0).
pub async fn serve(
    listener: TcpListener,
    telemetry: Telemetry,
    shutdown: tokio_util::sync::CancellationToken,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    let metrics = HttpMetrics::register(&telemetry.registry, "app")
        .context("cannot register the app's HTTP metrics")?;
    let handler = Handler {
        ok: metrics.counter(StatusCode::OK),
        not_found: metrics.counter(StatusCode::NOT_FOUND),
        not_allowed: metrics.counter(StatusCode::METHOD_NOT_ALLOWED),
        duration: metrics.histogram(),
    };
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = handler.respond(request.method(), request.uri().path());
        async move { Ok::<_, Infallible>(response) }
    });
    http_server::serve(listener, service, shutdown, grace, "app").await;
    Ok(())
}

/// The request handler, with its counters resolved once at start.
#[derive(Clone)]
struct Handler {
    ok: prometheus::IntCounter,
    not_found: prometheus::IntCounter,
    not_allowed: prometheus::IntCounter,
    duration: prometheus::Histogram,
}

impl Handler {
    fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let readable = method == Method::GET || method == Method::HEAD;
        let (counter, response) = match path {
            "/" if readable => (&self.ok, telemetry::text(StatusCode::OK, "hello world\n")),
            "/healthz" if readable => (&self.ok, telemetry::text(StatusCode::OK, "ok\n")),
            "/" | "/healthz" => {
                let mut response =
                    telemetry::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                response
                    .headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
                (&self.not_allowed, response)
            }
            _ => (
                &self.not_found,
                telemetry::text(StatusCode::NOT_FOUND, "not found\n"),
            ),
        };
        counter.inc();
        self.duration.observe(started.elapsed().as_secs_f64());
        response
    }
}
