//! The `app` role: the seed's "hello world" web server on 127.0.0.1:80, behind the proxy
//! (loopback by default: the proxy is its only client, so plain HTTP cannot bypass TLS).
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
use tracing::Instrument;

use crate::config;
use crate::http_server;
use crate::lifecycle::Lifecycle;
use crate::telemetry::{self, HttpMetrics, Telemetry};

/// Binds the app's two listeners, builds it and serves until shutdown.
pub async fn run(config: &config::App, lifecycle: Lifecycle) -> anyhow::Result<()> {
    run_in_span(config, lifecycle)
        .instrument(crate::telemetry::role_span("app"))
        .await
}

async fn run_in_span(config: &config::App, lifecycle: Lifecycle) -> anyhow::Result<()> {
    let backlog = config.listen_backlog;
    let listener = http_server::bind(config.listen, "app.listen", backlog).await?;
    let metrics_listener =
        http_server::bind(config.metrics_listen, "app.metrics_listen", backlog).await?;
    let telemetry = Telemetry::new().context("cannot register the app's metrics")?;
    App::build(config, telemetry)?
        .serve(listener, metrics_listener, lifecycle)
        .await
}

/// A configured app, ready to serve bound listeners (tests bind port 0).
pub struct App {
    handler: Handler,
    telemetry: Telemetry,
    grace: std::time::Duration,
}

impl App {
    /// Registers the app's metrics in `telemetry`; binds nothing.
    pub fn build(config: &config::App, telemetry: Telemetry) -> anyhow::Result<App> {
        let metrics = HttpMetrics::register(&telemetry.registry, "app")
            .context("cannot register the app's HTTP metrics")?;
        let handler = Handler {
            ok: metrics.counter(StatusCode::OK),
            not_found: metrics.counter(StatusCode::NOT_FOUND),
            not_allowed: metrics.counter(StatusCode::METHOD_NOT_ALLOWED),
            duration: metrics.histogram(),
        };
        Ok(App {
            handler,
            telemetry,
            grace: config.shutdown_grace,
        })
    }

    /// Serves `listener` (and the metrics on `metrics_listener`) until the lifecycle's
    /// shutdown, then drains within the grace period (a second signal ends the drain).
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics_listener: TcpListener,
        lifecycle: Lifecycle,
    ) -> anyhow::Result<()> {
        let metrics_task = self
            .telemetry
            .start(metrics_listener, lifecycle.shutdown.clone());
        match listener.local_addr() {
            Ok(address) => tracing::info!(listen = %address, "app serving hello world"),
            Err(_) => tracing::info!("app serving hello world"),
        }
        let mut reloads = lifecycle.reloads();
        tokio::spawn(
            async move {
                while reloads.changed().await.is_ok() {
                    tracing::info!("SIGHUP: the app role has nothing to reload");
                }
            }
            .in_current_span(),
        );
        let handler = self.handler;
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let response = handler.respond(request.method(), request.uri().path());
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::select! {
            () = http_server::serve(listener, service, lifecycle.shutdown.clone(), self.grace, "app") => {}
            () = lifecycle.abort.cancelled() => {}
        }
        metrics_task
            .await
            .context("the metrics listener task failed")?;
        tracing::info!("app stopped");
        Ok(())
    }
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
