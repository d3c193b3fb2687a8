//! The configuration read again while the proxy runs (`src/proxy/mod.rs`, `ConfigFollower`):
//! at SIGHUP and when its file changes. What a user relies on: the next request, on a
//! connection opened before the reload too, is served with the new settings; a file that does
//! not load changes nothing and says so; a setting only a restart applies keeps its running
//! value and is named. Every wait polls with a deadline.

use super::*;

use pki_sidecar::agent::functions::KnownFunctions;
use pki_sidecar::proxy::ConfigReload;

const LOADED: &str = "pki_sidecar_proxy_config_reloads_total{result=\"success\"}";
const FAILED: &str = "pki_sidecar_proxy_config_reloads_total{result=\"failure\"}";
const LAST_OK: &str = "pki_sidecar_proxy_config_last_reload_successful";
const RESTART: &str = "pki_sidecar_proxy_config_restart_required";

/// The proxy reading `path` (a whole agent file with a `proxy {}` block), reloading from it.
async fn start_from_file(path: &Path) -> ProxyUnderTest {
    let load_path = path.to_path_buf();
    let load = move || pki_sidecar::config::load(std::slice::from_ref(&load_path), &KnownFunctions);
    let config = load().unwrap_or_else(|errors| panic!("{errors}"));
    let roots = vec![path.to_path_buf()];
    let proxy = start_built(|telemetry| {
        Proxy::build(&config.proxy, telemetry)
            .expect("build proxy")
            .reload_with(ConfigReload::new(roots, load), &config)
    })
    .await;
    proxy.wait_ready().await;
    proxy
}

/// The `proxy {}` file: `upstream`, the certificate files, then `body`.
fn proxy_file(upstream: SocketAddr, certs: &CertDir, body: &str) -> String {
    format!(
        "proxy {{\n  upstream = \"http://{upstream}\"\n{}{body}\n}}\n",
        certs.settings()
    )
}

/// GET `path` on `client`: the status, the `X-Config` response header, and what the upstream
/// saw of `X-From-Proxy` (the echo upstream's JSON; empty for an answer of the proxy's own).
async fn probe(client: &mut Client, path: &str) -> (u16, String, String) {
    let request = client
        .request(Method::GET, path)
        .body(empty())
        .expect("request");
    let response = client.send(request).await.expect("response");
    let status = response.status().as_u16();
    let config = response
        .headers()
        .get("x-config")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let seen = serde_json::from_slice::<serde_json::Value>(&body)
        .map(|echo| echoed(&echo, "x-from-proxy").join(","))
        .unwrap_or_default();
    (status, config, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_the_next_request_with_the_new_file_and_a_bad_file_changes_nothing() {
    let (upstream, _) = echo_upstream().await;
    let ca = ca("Reload Test CA");
    let certs = CertDir::new();
    certs.install(&valid_pair(&ca));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pki-sidecar.hcl");
    let version = |name: &str, more: &str| {
        proxy_file(
            upstream,
            &certs,
            &format!(
                "  response_headers = {{ \"X-Config\" = \"{name}\" }}\n  request_headers = {{ \
                 \"X-From-Proxy\" = \"{name}\" }}\n{more}"
            ),
        )
    };
    std::fs::write(&path, version("one", "")).unwrap();
    let proxy = start_from_file(&path).await;
    let config = client_config(&ca.pem, H1, None);
    let mut h1 = Client::connect(proxy.address, config).await.unwrap();
    let mut h2 = Client::connect(proxy.address, client_config(&ca.pem, H2, None))
        .await
        .unwrap();
    assert!(h2.is_h2());
    for client in [&mut h1, &mut h2] {
        assert_eq!(probe(client, "/").await, (200, "one".into(), "one".into()));
    }
    assert_eq!(proxy.metric(LAST_OK), 1.0);

    // A new file, and SIGHUP: the connections opened before it get the new settings at their
    // next request; a location the new file adds answers.
    replace(
        &path,
        &version(
            "two",
            "  fixed_responses = { \"= /maintenance\" = { status = 503, body = \"later\\n\" } }\n",
        ),
    );
    proxy.lifecycle.request_reload();
    proxy.wait_metric(LOADED, 1.0).await;
    for client in [&mut h1, &mut h2] {
        assert_eq!(probe(client, "/").await, (200, "two".into(), "two".into()));
        assert_eq!(client.get("/maintenance").await.unwrap().0, 503);
    }
    assert_eq!(proxy.metric(RESTART), 0.0);

    // A file that does not load: counted, said, and the running settings stay.
    replace(&path, "proxy {\n  upstream = \n");
    proxy.lifecycle.request_reload();
    proxy.wait_metric(FAILED, 1.0).await;
    assert_eq!(proxy.metric(LAST_OK), 0.0);
    assert_eq!(probe(&mut h1, "/").await, (200, "two".into(), "two".into()));
    let mut fresh = Client::connect(proxy.address, client_config(&ca.pem, H1, None))
        .await
        .unwrap();
    assert_eq!(
        probe(&mut fresh, "/").await,
        (200, "two".into(), "two".into())
    );

    // A setting only a restart applies (the listener) beside one a reload applies: the
    // second is served, the first is named and the running listener keeps serving.
    replace(
        &path,
        &version(
            "three",
            "  listen = \"127.0.0.1:1\"\n  idle_timeout = \"17s\"\n",
        ),
    );
    proxy.lifecycle.request_reload();
    proxy.wait_metric(LOADED, 2.0).await;
    assert_eq!(proxy.metric(LAST_OK), 1.0);
    assert_eq!(proxy.metric(RESTART), 1.0);
    assert_eq!(
        probe(&mut h2, "/").await,
        (200, "three".into(), "three".into())
    );
    let mut fresh = Client::connect(proxy.address, client_config(&ca.pem, H2, None))
        .await
        .unwrap();
    assert_eq!(
        probe(&mut fresh, "/").await,
        (200, "three".into(), "three".into())
    );
    drop((h1, h2, fresh));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_as_a_configmap_is_reloaded_without_a_signal_and_no_request_fails() {
    let (upstream, _) = echo_upstream().await;
    let ca = ca("Reload Test CA");
    let certs = CertDir::new();
    certs.install(&valid_pair(&ca));
    // The kubelet's layout: the file is a link through `..data`, and an update swaps that
    // link to a new directory.
    let dir = tempfile::tempdir().unwrap();
    let version = |n: usize| {
        let data = dir.path().join(format!("..v{n}"));
        std::fs::create_dir(&data).unwrap();
        std::fs::write(
            data.join("pki-sidecar.hcl"),
            proxy_file(
                upstream,
                &certs,
                &format!(
                    "  reload_interval = \"100ms\"\n  response_headers = {{ \"X-Config\" = \
                     \"v{n}\" }}\n"
                ),
            ),
        )
        .unwrap();
        let link = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(format!("..v{n}"), &link).unwrap();
        std::fs::rename(&link, dir.path().join("..data")).unwrap();
    };
    version(0);
    let path = dir.path().join("pki-sidecar.hcl");
    std::os::unix::fs::symlink("..data/pki-sidecar.hcl", &path).unwrap();
    let proxy = start_from_file(&path).await;

    // Requests keep flowing on kept-alive connections while the file changes under them:
    // each answer carries one version or the next, never an error.
    let stop = CancellationToken::new();
    let mut load = Vec::new();
    for alpn in [H1, H2] {
        let mut client = Client::connect(proxy.address, client_config(&ca.pem, alpn, None))
            .await
            .unwrap();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            // Once stopped, on until this connection has had an answer from the last version
            // (a request sent before it loaded may still carry the one before), for 10 s at most.
            let mut stopped_at = None;
            loop {
                let (status, config, _) = probe(&mut client, "/").await;
                assert_eq!(status, 200);
                if seen.last() != Some(&config) {
                    seen.push(config);
                }
                if stop.is_cancelled() {
                    let since = *stopped_at.get_or_insert_with(Instant::now);
                    if seen.last().map(String::as_str) == Some("v3")
                        || since.elapsed() > Duration::from_secs(10)
                    {
                        break;
                    }
                }
            }
            seen
        }));
    }
    for n in 1..=3 {
        version(n);
        proxy.wait_metric(LOADED, n as f64).await;
        // The next connection is served with it.
        let mut client = Client::connect(proxy.address, client_config(&ca.pem, H1, None))
            .await
            .unwrap();
        assert_eq!(probe(&mut client, "/").await.1, format!("v{n}"));
    }
    stop.cancel();
    for task in load {
        let seen = task.await.expect("no request failed");
        // In order, each version at most once, ending with the last.
        assert_eq!(seen.last().map(String::as_str), Some("v3"), "{seen:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen, "versions out of order: {seen:?}");
    }
    assert_eq!(proxy.metric(FAILED), 0.0);
    proxy.stop().await;
}
