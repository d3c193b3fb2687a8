//! The `app` role and the machinery every role shares: metrics endpoints, graceful drain,
//! signals.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use nix::sys::signal::Signal;
use pki_sidecar::lifecycle::Lifecycle;
use pki_sidecar::telemetry::Telemetry;
use pki_sidecar::{app, http_server};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::util;
use crate::util::role::Launch;

async fn get(address: SocketAddr, method: &'static str, path: &'static str) -> util::HttpResponse {
    tokio::task::spawn_blocking(move || util::http(address, method, path))
        .await
        .expect("request thread")
}

/// Starts the app and a metrics listener on port 0, returning both addresses.
async fn start_app(
    shutdown: &CancellationToken,
) -> (SocketAddr, SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
    let metrics_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metrics");
    let (address, metrics_address) = (
        listener.local_addr().unwrap(),
        metrics_listener.local_addr().unwrap(),
    );
    let telemetry = Telemetry::new().expect("telemetry");
    let config = pki_sidecar::config::App {
        listen: address,
        metrics_listen: metrics_address,
        listen_backlog: 4096,
        shutdown_grace: Duration::from_secs(5),
    };
    let app = app::App::build(&config, telemetry).expect("build the app");
    let lifecycle = Lifecycle::with_shutdown(shutdown.clone());
    let task = tokio::spawn(async move {
        app.serve(listener, metrics_listener, lifecycle)
            .await
            .expect("app serves");
    });
    (address, metrics_address, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_answers_hello_world_and_counts_by_code() {
    let shutdown = CancellationToken::new();
    let (address, metrics_address, task) = start_app(&shutdown).await;

    let hello = get(address, "GET", "/").await;
    assert_eq!((hello.status, hello.body.as_str()), (200, "hello world\n"));
    assert_eq!(
        hello.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let head = get(address, "HEAD", "/").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let health = get(address, "GET", "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let missing = get(address, "GET", "/nope").await;
    assert_eq!(missing.status, 404);
    let post = get(address, "POST", "/").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let metrics = get(metrics_address, "GET", "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = &metrics.body;
    assert!(
        text.contains("pki_sidecar_http_requests_total{code=\"200\",role=\"app\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("pki_sidecar_http_requests_total{code=\"404\",role=\"app\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pki_sidecar_http_requests_total{code=\"405\",role=\"app\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pki_sidecar_http_request_duration_seconds_count{role=\"app\"} 5"),
        "{text}"
    );
    assert!(text.contains("pki_sidecar_build_info{commit=\""), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    if let Some((ok, report)) = util::promtool_check(text) {
        assert!(ok, "promtool check metrics failed:\n{report}\n{text}");
    }

    assert_eq!(get(metrics_address, "GET", "/healthz").await.status, 200);
    assert_eq!(get(metrics_address, "GET", "/readyz").await.status, 200);
    assert_eq!(get(metrics_address, "GET", "/other").await.status, 404);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("app stops promptly once idle")
        .expect("app task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_lists_what_is_pending() {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    let telemetry = Telemetry::new().expect("telemetry");
    telemetry
        .readiness
        .not_ready("certificate", "no valid certificate and key yet");
    tokio::spawn(telemetry.clone().serve(listener, shutdown.clone()));
    let response = get(address, "GET", "/readyz").await;
    assert_eq!(response.status, 503);
    assert_eq!(
        response.body,
        "certificate: no valid certificate and key yet\n"
    );
    telemetry.readiness.ready("certificate");
    assert_eq!(get(address, "GET", "/readyz").await.status, 200);
    shutdown.cancel();
}

/// A service that answers after `delay`, to have a request in flight during shutdown.
fn slow_service(
    delay: Duration,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |_request| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
            b"done\n",
        ))))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(http_server::serve(
        listener,
        slow_service(Duration::from_millis(500)),
        shutdown.clone(),
        Duration::from_secs(10),
        "test",
    ));
    let in_flight = tokio::task::spawn_blocking(move || util::http(address, "GET", "/"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    shutdown.cancel();
    let response = in_flight.await.expect("request thread");
    assert_eq!((response.status, response.body.as_str()), (200, "done\n"));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server returns once drained")
        .expect("server task");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_after_the_grace_period() {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(http_server::serve(
        listener,
        slow_service(Duration::from_secs(60)),
        shutdown.clone(),
        Duration::from_millis(300),
        "test",
    ));
    let _stuck = tokio::task::spawn_blocking(move || {
        let _ = std::net::TcpStream::connect(address).map(|mut s| {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            let _ = s.read(&mut [0; 16]);
        });
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the drain is bounded by the grace period")
        .expect("server task");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn app_binary_serves_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = util::write_file(dir.path(), "app.hcl", "app {}\n");
    let child = Launch::role("app", &[&config], &dir.path().join("app.log")).spawn();
    let (address, metrics) = (child.address("app.listen"), child.metrics());

    let hello = util::http(address, "GET", "/");
    assert_eq!((hello.status, hello.body.as_str()), (200, "hello world\n"));
    let scrape = util::http(metrics, "GET", "/metrics");
    assert!(
        scrape
            .body
            .contains("pki_sidecar_http_requests_total{code=\"200\",role=\"app\"} 1")
    );

    util::signal(child.pid(), Signal::SIGHUP);
    util::wait_until(Duration::from_secs(10), "the SIGHUP logged", || {
        child.log().contains("nothing to reload")
    });
    assert_eq!(
        util::http(address, "GET", "/").status,
        200,
        "SIGHUP does not stop the app"
    );

    let (code, stderr) = child.stop();
    assert_eq!(code, Some(0), "log:\n{stderr}");
    // Vault Agent's (hclog's) JSON line: four `@` keys, the event's fields beside them.
    let mut messages = Vec::new();
    for line in stderr.lines() {
        let event: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("--log-format json writes JSON objects ({e}): {line}"));
        for key in ["@level", "@message", "@module", "@timestamp"] {
            assert!(event[key].is_string(), "{key} in every line: {line}");
        }
        assert!(
            ["trace", "debug", "info", "warn", "error"]
                .contains(&event["@level"].as_str().unwrap()),
            "{line}"
        );
        messages.push((event["@module"].clone(), event["@message"].clone()));
    }
    let listening = stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["@message"] == "listening" && event["key"] == "app.listen")
        .unwrap_or_else(|| panic!("a listening line for app.listen: {stderr}"));
    assert_eq!(listening["@module"], "http_server");
    assert_eq!(listening["address"], address.to_string());
    assert!(
        messages.contains(&("app".into(), "app stopped".into())),
        "{messages:?}"
    );
    assert!(stderr.contains("nothing to reload"), "{stderr}");
}

#[test]
fn app_binary_reports_a_port_it_cannot_bind() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = blocker.local_addr().unwrap().port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = util::write_file(
        dir.path(),
        "app.hcl",
        &format!(
            "app {{\n  listen = \"127.0.0.1:{port}\"\n  metrics_listen = \"127.0.0.1:0\"\n}}\n"
        ),
    );
    let output = util::command()
        .args(["app", "--config", config.to_str().unwrap()])
        .output()
        .expect("run app");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: cannot listen on 127.0.0.1:{port} (app.listen): "
        )),
        "{stderr}"
    );
}

#[test]
fn a_role_whose_stderr_reader_is_gone_still_serves_and_stops_cleanly() {
    // A log line that cannot be written is lost, never a panic that takes a task with it.
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = util::free_port();
        let config = util::write_file(
            dir.path(),
            "app.hcl",
            &format!(
                "app {{\n  listen = \"127.0.0.1:{port}\"\n  metrics_listen = \"127.0.0.1:0\"\n}}\n"
            ),
        );
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        // Nobody reads: every write to the role's stderr fails with EPIPE.
        drop(read_end);
        let child = util::command()
            .args(["app", "--log-format", format, "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(write_end))
            .spawn()
            .expect("spawn the app");
        let mut child = util::ChildGuard(Some(child));
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        util::wait_for_port(address, Duration::from_secs(10));
        assert_eq!(util::http(address, "GET", "/").status, 200, "{format}");
        util::signal(child.pid(), Signal::SIGTERM);
        let (code, _) = child.wait(Duration::from_secs(10));
        assert_eq!(code, Some(0), "{format}: exit status after SIGTERM");
    }
}
