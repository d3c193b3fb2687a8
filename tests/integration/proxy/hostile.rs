//! Hostile requests: the same probes sent to the proxy and to nginx, each in front of a raw
//! upstream that records the exact bytes it receives ([`Recorder`]).
//!
//! HTTP/1.1 probes are raw bytes over TLS, so a malformed request reaches the proxy as written;
//! HTTP/2 probes use the `h2` crate directly, which lets a request leave out `:authority` or
//! repeat `host`. Each probe states what the proxy must do (the client's status, what the
//! upstream may receive); `hostile_requests_beside_nginx` also runs them against nginx and
//! prints the `HOSTILE` lines `scripts/hostile-table.sh` turns into RELIABILITY.md's table.

use super::*;
use crate::util::recorder::{Answer, Received, Recorder};

/// How a probe is sent.
pub(super) enum Via {
    /// These bytes over an HTTP/1.1 TLS connection.
    H1(&'static str),
    /// An HTTP/2 request: method, path, `:authority` (None: left out), header fields.
    H2 {
        method: &'static str,
        path: &'static str,
        authority: Option<&'static str>,
        headers: &'static [(&'static str, &'static str)],
    },
}

/// What the upstream may receive.
pub(super) enum Upstream {
    /// Nothing at all.
    Nothing,
    /// Exactly one complete request whose head has each of `lines` (`name: value`, the name
    /// matched case-insensitively; a header listed here has no other line) and no line of a
    /// header named in `absent`. The request line is matched exactly when `lines` starts with
    /// one (a line without `:` ... `HTTP/1.1`).
    One {
        lines: &'static [&'static str],
        absent: &'static [&'static str],
    },
}

pub(super) struct Probe {
    pub id: &'static str,
    pub send: Via,
    /// What the proxy's client gets: a status code, or `reset`.
    pub answer: &'static str,
    pub upstream: Upstream,
    /// The upstream's header lines the table shows.
    pub show: &'static [&'static str],
}

const HOST_SHOWN: &[&str] = &["host"];

pub(super) fn probes() -> Vec<Probe> {
    use Via::{H1, H2};
    vec![
        Probe {
            id: "h1 two Host fields",
            send: H1("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 no Host",
            send: H1("GET / HTTP/1.1\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            // HTTP/1.0 needs no Host (health checks send none); nginx serves it too.
            id: "h1.0 no Host",
            send: H1("GET / HTTP/1.0\r\n\r\n"),
            answer: "200",
            upstream: Upstream::One {
                lines: &["host: localhost"],
                absent: &[],
            },
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 Host with a quote and Forwarded syntax",
            send: H1("GET / HTTP/1.1\r\nHost: localhost\", for=6.6.6.6;by=\"x\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 Host with userinfo",
            send: H1("GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 Host with a path",
            send: H1("GET / HTTP/1.1\r\nHost: a.example/evil\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 absolute-form target, other Host",
            send: H1("GET http://a.example/p?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n"),
            answer: "200",
            upstream: Upstream::One {
                lines: &[
                    "GET /p?q=1 HTTP/1.1",
                    "host: a.example",
                    "x-forwarded-host: a.example",
                ],
                absent: &[],
            },
            show: &["host", "x-forwarded-host"],
        },
        Probe {
            id: "h1 absolute-form target with userinfo",
            send: H1("GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 client-sent X-Forwarded-* and Forwarded",
            send: H1(
                "GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 6.6.6.6\r\n\
                 X-Forwarded-Proto: http\r\nX-Forwarded-Host: evil.example\r\n\
                 Forwarded: for=6.6.6.6\r\n\r\n",
            ),
            answer: "200",
            upstream: Upstream::One {
                lines: &[
                    "x-forwarded-for: 127.0.0.1",
                    "x-forwarded-proto: https",
                    "x-forwarded-host: a.example",
                ],
                absent: &["forwarded"],
            },
            show: &[
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
                "forwarded",
            ],
        },
        Probe {
            id: "h1 Transfer-Encoding: gzip, chunked",
            send: H1(
                "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\n",
            ),
            answer: "501",
            upstream: Upstream::Nothing,
            show: &["transfer-encoding"],
        },
        Probe {
            id: "h1 Transfer-Encoding: chunked, gzip",
            send: H1(
                "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, gzip\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\n",
            ),
            answer: "400",
            upstream: Upstream::Nothing,
            show: &["transfer-encoding"],
        },
        Probe {
            id: "h1 Content-Length and Transfer-Encoding",
            send: H1(
                "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\n\
                 Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            // hyper frames it by Transfer-Encoding alone and drops Content-Length (RFC 9112
            // §6.3); the body is held and reaches the upstream with its true length, as
            // nginx's: one reading.
            answer: "200",
            upstream: Upstream::One {
                lines: &["content-length: 5"],
                absent: &["transfer-encoding"],
            },
            show: &["content-length", "transfer-encoding"],
        },
        Probe {
            id: "h1 malformed chunk size",
            send: H1(
                "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\nZZ\r\nworld\r\n0\r\n\r\n",
            ),
            // Held until it fails: nothing reaches the upstream.
            answer: "400",
            upstream: Upstream::Nothing,
            show: &["transfer-encoding"],
        },
        Probe {
            id: "h1 Upgrade: h2c",
            send: H1(
                "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            ),
            answer: "200",
            upstream: Upstream::One {
                lines: &["GET / HTTP/1.1"],
                absent: &["upgrade", "http2-settings", "connection"],
            },
            show: &["upgrade", "http2-settings", "connection"],
        },
        Probe {
            // Never passed on, as nginx: the app's echo would show a script the headers it
            // cannot read.
            id: "h1 TRACE",
            send: H1("TRACE / HTTP/1.1\r\nHost: a.example\r\nCookie: session=1\r\n\r\n"),
            answer: "405",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 CONNECT",
            send: H1("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"),
            answer: "405",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 host differs from :authority",
            send: H2 {
                method: "GET",
                path: "/",
                authority: Some("a.example"),
                headers: &[("host", "b.example")],
            },
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 no :authority, no host",
            send: H2 {
                method: "GET",
                path: "/",
                authority: None,
                headers: &[],
            },
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 host instead of :authority",
            send: H2 {
                method: "GET",
                path: "/",
                authority: None,
                headers: &[("host", "a.example")],
            },
            answer: "200",
            upstream: Upstream::One {
                lines: &["GET / HTTP/1.1", "host: a.example"],
                absent: &[],
            },
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 two host fields",
            send: H2 {
                method: "GET",
                path: "/",
                authority: None,
                headers: &[("host", "a.example"), ("host", "b.example")],
            },
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 host with a quote and Forwarded syntax",
            send: H2 {
                method: "GET",
                path: "/",
                authority: None,
                headers: &[("host", "localhost\", for=6.6.6.6;by=\"x")],
            },
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 :authority with userinfo",
            send: H2 {
                method: "GET",
                path: "/",
                authority: Some("user@a.example"),
                headers: &[],
            },
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 two cookie fields",
            send: H2 {
                method: "GET",
                path: "/",
                authority: Some("a.example"),
                headers: &[("cookie", "a=1"), ("cookie", "b=2")],
            },
            answer: "200",
            upstream: Upstream::One {
                lines: &["cookie: a=1; b=2"],
                absent: &[],
            },
            show: &["cookie"],
        },
        Probe {
            id: "h1 GET with the target *",
            send: H1("GET * HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 a .. above the top of the path",
            send: H1("GET /../etc/passwd HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 an escaped .. above the top of the path",
            send: H1("GET /%2e%2e/x HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 a bad escape in the path",
            send: H1("GET /a%zz HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h1 an escaped NUL in the path",
            send: H1("GET /a%00b HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 a .. above the top of the path",
            send: H2 {
                method: "GET",
                path: "/../etc/passwd",
                authority: Some("a.example"),
                headers: &[],
            },
            answer: "400",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
        Probe {
            id: "h2 two equal content-length fields",
            send: H2 {
                method: "POST",
                path: "/",
                authority: Some("a.example"),
                headers: &[("content-length", "0"), ("content-length", "0")],
            },
            answer: "200",
            upstream: Upstream::One {
                lines: &["content-length: 0"],
                absent: &[],
            },
            show: &["content-length"],
        },
        Probe {
            id: "h2 CONNECT",
            send: H2 {
                method: "CONNECT",
                path: "",
                authority: Some("a.example:443"),
                headers: &[],
            },
            answer: "405",
            upstream: Upstream::Nothing,
            show: HOST_SHOWN,
        },
    ]
}

/// What one probe came to.
pub(super) struct Outcome {
    /// The status the client got, `reset (REASON)` for a reset stream, or `closed`.
    pub answer: String,
    /// What the upstream received for it.
    pub upstream: Vec<Received>,
}

/// Sends `probe` to the TLS server at `address` (certificate signed by `ca_pem`, valid for
/// `localhost`) and collects what `recorder` received for it; `ours` (the proxy under test)
/// waits for the request the probe says the upstream gets, which may trail the sentinel.
pub(super) async fn run(
    address: SocketAddr,
    ca_pem: &str,
    recorder: &Recorder,
    probe: &Probe,
    ours: bool,
) -> Outcome {
    let (answer, _) = exchange(address, ca_pem, &probe.send).await;
    let at_least = usize::from(ours && matches!(probe.upstream, Upstream::One { .. }));
    Outcome {
        answer,
        upstream: collect(address, ca_pem, recorder, at_least).await,
    }
}

/// Sends one request as `via` says: the status (`reset (REASON)` or `closed` when there is
/// none) and the response's header fields, names lowercase.
async fn exchange(address: SocketAddr, ca_pem: &str, via: &Via) -> (String, Vec<(String, String)>) {
    match via {
        Via::H1(bytes) => send_h1(address, ca_pem, bytes).await,
        Via::H2 {
            method,
            path,
            authority,
            headers,
        } => send_h2(address, ca_pem, method, path, *authority, headers).await,
    }
}

/// Sends raw `bytes` over HTTP/1.1 and reads one response.
async fn send_h1(
    address: SocketAddr,
    ca_pem: &str,
    bytes: &str,
) -> (String, Vec<(String, String)>) {
    let mut tls = tls_connect(address, client_config(ca_pem, H1, None))
        .await
        .expect("TLS handshake");
    tls.write_all(bytes.as_bytes()).await.expect("write probe");
    match read_response(&mut tls).await {
        Some((status, head)) => {
            let fields = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            (status.to_string(), fields)
        }
        None => ("closed".to_string(), Vec::new()),
    }
}

/// Reads one HTTP/1.1 response (status, head) and its `Content-Length` body; None when the
/// connection closes first.
async fn read_response(tls: &mut Tls) -> Option<(u16, String)> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        match tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buffer[..n]),
            Ok(_) => return None,
            Err(_) => panic!("no response within 20 s"),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while received.len() < head_end + 4 + length {
        match tls.read(&mut buffer).await {
            Ok(n) if n > 0 => received.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    Some((status, head))
}

/// Sends one HTTP/2 request with the `h2` crate: its status, `reset (REASON)`, or `closed`.
async fn send_h2(
    address: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    authority: Option<&str>,
    headers: &[(&str, &str)],
) -> (String, Vec<(String, String)>) {
    let tls = tls_connect(address, client_config(ca_pem, H2, None))
        .await
        .expect("TLS handshake");
    let (sender, connection) = h2::client::handshake(tls).await.expect("h2 handshake");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::builder().method(method);
    request = match authority {
        Some(authority) if path.is_empty() => request.uri(authority),
        Some(authority) => request.uri(format!("https://{authority}{path}")),
        // A relative URI on a request marked HTTP/1.1: h2 sends it without :authority.
        None => request.uri(path).version(http::Version::HTTP_11),
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).expect("request");
    let answer = async {
        let mut sender = sender.ready().await?;
        let (response, _) = sender.send_request(request, true)?;
        response.await
    }
    .await;
    task.abort();
    match answer {
        Ok(response) => {
            let fields = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            (response.status().as_u16().to_string(), fields)
        }
        Err(err) => match err.reason() {
            Some(reason) => (format!("reset ({reason:?})"), Vec::new()),
            None => (format!("closed ({err})"), Vec::new()),
        },
    }
}

/// What the upstream received for the last probe: sends a sentinel request and waits until it
/// arrives (and `at_least` other requests with it); returns the others. The proxies answer a
/// refused request without opening an upstream connection, and forward requests in order, so
/// anything a probe caused is in by then.
async fn collect(
    address: SocketAddr,
    ca_pem: &str,
    recorder: &Recorder,
    at_least: usize,
) -> Vec<Received> {
    let sentinel = "GET /sentinel HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_eq!(
        send_h1(address, ca_pem, sentinel).await.0,
        "200",
        "sentinel"
    );
    let mut received = Vec::new();
    let start = Instant::now();
    loop {
        received.extend(recorder.take());
        let sentinels = received
            .iter()
            .filter(|r| r.request_line().starts_with("GET /sentinel "))
            .count();
        if sentinels > 0 && received.len() - sentinels >= at_least {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the upstream did not get the sentinel: {received:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.retain(|r| !r.request_line().starts_with("GET /sentinel "));
    received
}

/// Panics unless `outcome` is what `probe` says the proxy does.
fn check(probe: &Probe, outcome: &Outcome) {
    let id = probe.id;
    let got = &outcome.upstream;
    assert_eq!(outcome.answer, probe.answer, "{id}: upstream got {got:?}");
    match &probe.upstream {
        Upstream::Nothing => assert!(got.is_empty(), "{id}: the upstream got {got:?}"),
        Upstream::One { lines, absent } => {
            assert_eq!(got.len(), 1, "{id}: {got:?}");
            let request = &got[0];
            assert!(request.complete, "{id}: {request:?}");
            for line in *lines {
                match line.split_once(": ") {
                    Some((name, value)) => {
                        assert_eq!(request.header(name), [value], "{id}: {name} in {request:?}")
                    }
                    None => assert_eq!(request.request_line(), *line, "{id}"),
                }
            }
            for name in *absent {
                assert!(
                    request.header(name).is_empty(),
                    "{id}: {name} reached the upstream: {request:?}"
                );
            }
        }
    }
}

/// The table cell for what the upstream received: `nothing`, or the shown header lines.
fn summary(probe: &Probe, received: &[Received]) -> String {
    if received.is_empty() {
        return "nothing".to_string();
    }
    received
        .iter()
        .map(|request| {
            let mut parts = vec![format!("`{}`", request.request_line())];
            for name in probe.show {
                for value in request.header(name) {
                    parts.push(format!("`{name}: {value}`"));
                }
            }
            if !request.complete {
                parts.push("(incomplete, abandoned)".to_string());
            }
            parts.join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_or_forwarded_unambiguously() {
    let recorder = Recorder::start("").await;
    let fixture = fixture(recorder.address, "").await;
    for probe in probes() {
        let outcome = run(
            fixture.proxy.address,
            &fixture.ca.pem,
            &recorder,
            &probe,
            true,
        )
        .await;
        check(&probe, &outcome);
    }
    for (kind, count) in [
        ("host", 11.0),
        ("transfer_encoding", 1.0),
        ("method", 3.0),
        ("body", 1.0),
    ] {
        assert_eq!(
            fixture.proxy.metric(&format!(
                "pki_sidecar_proxy_client_errors_total{{kind=\"{kind}\"}}"
            )),
            count,
            "{kind}"
        );
    }
    assert_no_upstream_errors(&fixture);
}

/// nginx as a TLS reverse proxy in front of `upstream`, the way one is usually configured
/// (`proxy_set_header` Host and X-Forwarded-*), HTTP/2 on; None when nginx is not installed.
fn start_nginx(
    dir: &Path,
    certs: &CertDir,
    upstream: SocketAddr,
) -> Option<(util::ChildGuard, SocketAddr)> {
    if Command::new("nginx").arg("-v").output().is_err() {
        return None;
    }
    let address: SocketAddr = format!("127.0.0.1:{}", util::free_port()).parse().unwrap();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 server {{\n    listen {address} ssl http2;\n\
         \x20   ssl_certificate {};\n    ssl_certificate_key {};\n\
         \x20   location / {{\n      proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
         \x20     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20     proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20     proxy_set_header X-Forwarded-Host $host;\n    }}\n  }}\n}}\n",
        certs.cert.display(),
        certs.key.display(),
    );
    let path = util::write_file(dir, "nginx.conf", &conf);
    let mut command = Command::new("nginx");
    command.args([
        "-p",
        &d.to_string(),
        "-c",
        &path.display().to_string(),
        "-e",
        &format!("{d}/error.log"),
    ]);
    let child = util::ChildGuard::spawn(command);
    util::wait_for_port(address, Duration::from_secs(10));
    Some((child, address))
}

/// Runs every probe against the proxy and against nginx and prints one `HOSTILE` line each:
/// `scripts/hostile-table.sh` makes RELIABILITY.md's "Hostile requests" table from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_beside_nginx() {
    let recorder = Recorder::start("").await;
    let fixture = fixture(recorder.address, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let nginx = start_nginx(dir.path(), &fixture.certs, recorder.address);
    let version = Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .replace("nginx version: ", "")
        })
        .unwrap_or_else(|_| "not installed".to_string());
    println!("HOSTILE-NGINX {version}");
    for probe in probes() {
        let ours = run(
            fixture.proxy.address,
            &fixture.ca.pem,
            &recorder,
            &probe,
            true,
        )
        .await;
        check(&probe, &ours);
        let theirs = match &nginx {
            Some((_, address)) => {
                let outcome = run(*address, &fixture.ca.pem, &recorder, &probe, false).await;
                format!(
                    "{} · {}",
                    outcome.answer,
                    summary(&probe, &outcome.upstream)
                )
            }
            None => "not measured (nginx not installed)".to_string(),
        };
        println!(
            "HOSTILE probe={}\tours={} · {}\tnginx={theirs}",
            probe.id,
            ours.answer,
            summary(&probe, &ours.upstream)
        );
    }
}

/// Sends `via` to the fixture's proxy, expects a 200 and returns the one request the upstream
/// received for it.
async fn forwarded_request(fixture: &Fixture, recorder: &Recorder, via: &Via) -> Received {
    let (answer, _) = exchange(fixture.proxy.address, &fixture.ca.pem, via).await;
    assert_eq!(answer, "200");
    let mut got = collect(fixture.proxy.address, &fixture.ca.pem, recorder, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

/// A request carrying both families of forwarding headers, over HTTP/1.1 and HTTP/2.
fn spoofed() -> [Via; 2] {
    [
        Via::H1(
            "GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 203.0.113.9\r\n\
             X-Forwarded-Proto: http\r\nX-Forwarded-Host: orig.example\r\n\
             Forwarded: for=203.0.113.9;proto=http\r\n\r\n",
        ),
        Via::H2 {
            method: "GET",
            path: "/",
            authority: Some("a.example"),
            headers: &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "orig.example"),
                ("forwarded", "for=203.0.113.9;proto=http"),
            ],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_x_forwarded_list_is_appended_to_and_its_proto_and_host_kept() {
    let recorder = Recorder::start("").await;
    let fixture = fixture(
        recorder.address,
        "  trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\n",
    )
    .await;
    for via in spoofed() {
        let got = forwarded_request(&fixture, &recorder, &via).await;
        assert_eq!(got.header("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
        assert_eq!(got.header("x-forwarded-proto"), ["http"]);
        assert_eq!(got.header("x-forwarded-host"), ["orig.example"]);
        assert!(got.header("forwarded").is_empty(), "{got:?}");
        assert_eq!(got.header("host"), ["a.example"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peers_forwarding_headers_are_replaced() {
    let recorder = Recorder::start("").await;
    // Trusted proxies that are not this client.
    let fixture = fixture(
        recorder.address,
        "  trusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]\n",
    )
    .await;
    for via in spoofed() {
        let got = forwarded_request(&fixture, &recorder, &via).await;
        assert_eq!(got.header("x-forwarded-for"), ["127.0.0.1"]);
        assert_eq!(got.header("x-forwarded-proto"), ["https"]);
        assert_eq!(got.header("x-forwarded-host"), ["a.example"]);
        assert!(got.header("forwarded").is_empty(), "{got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_family_replaces_or_appends_by_trust_and_drops_x_forwarded() {
    let recorder = Recorder::start("").await;
    let family = "  forwarded_headers = \"forwarded\"\n";
    let untrusted = fixture(recorder.address, family).await;
    let trusted = fixture(
        recorder.address,
        &format!("{family}  trusted_proxies = [\"127.0.0.1\"]\n"),
    )
    .await;
    for via in spoofed() {
        let got = forwarded_request(&untrusted, &recorder, &via).await;
        assert_eq!(
            got.header("forwarded"),
            ["for=127.0.0.1;proto=https;host=\"a.example\""]
        );
        let got = forwarded_request(&trusted, &recorder, &via).await;
        assert_eq!(
            got.header("forwarded"),
            ["for=203.0.113.9;proto=http, for=127.0.0.1;proto=https;host=\"a.example\""]
        );
        for name in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"] {
            assert!(got.header(name).is_empty(), "{name}: {got:?}");
        }
    }
}

/// The `strict-transport-security` values of the response to `via`, and its status.
async fn sts(fixture: &Fixture, via: &Via) -> (String, Vec<String>) {
    let (answer, fields) = exchange(fixture.proxy.address, &fixture.ca.pem, via).await;
    let values = fields
        .into_iter()
        .filter(|(name, _)| name == "strict-transport-security")
        .map(|(_, value)| value)
        .collect();
    (answer, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_added_to_responses_without_one_and_only_when_set() {
    let plain = Recorder::start("").await;
    let own = Recorder::start("strict-transport-security: max-age=60\r\n").await;
    let setting = "  hsts = \"max-age=31536000; includeSubDomains\"\n";
    let with = fixture(plain.address, setting).await;
    let with_own = fixture(own.address, setting).await;
    let without = fixture(plain.address, "").await;
    let ours = "max-age=31536000; includeSubDomains".to_string();
    let get = [
        Via::H1("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        Via::H2 {
            method: "GET",
            path: "/",
            authority: Some("a.example"),
            headers: &[],
        },
    ];
    let refused = [
        Via::H1("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
        Via::H2 {
            method: "GET",
            path: "/",
            authority: None,
            headers: &[],
        },
    ];
    for (get, refused) in get.iter().zip(&refused) {
        assert_eq!(sts(&with, get).await, ("200".into(), vec![ours.clone()]));
        assert_eq!(
            sts(&with_own, get).await,
            ("200".into(), vec!["max-age=60".to_string()]),
            "the upstream's own header is left alone"
        );
        assert_eq!(sts(&without, get).await, ("200".into(), vec![]));
        assert_eq!(
            sts(&with, refused).await,
            ("400".into(), vec![ours.clone()]),
            "the proxy's own answers carry it too"
        );
    }
}

/// `proxy.response_headers` (nginx's `add_header`): each added to every response that lacks
/// it, the proxy's own answers included, over HTTP/1.1 and HTTP/2; the upstream's own value
/// is left alone, not doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_headers_are_added_to_responses_without_them() {
    let plain = Recorder::start("").await;
    let own = Recorder::start("x-frame-options: SAMEORIGIN\r\n").await;
    let setting =
        "  response_headers = {\n    \"X-Frame-Options\" = \"DENY\"\n    \"X-Test\" = \"1\"\n  }\n";
    let with = fixture(plain.address, setting).await;
    let with_own = fixture(own.address, setting).await;
    let values = |fields: Vec<(String, String)>, name: &str| -> Vec<String> {
        fields
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect()
    };
    let get = [
        Via::H1("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        Via::H2 {
            method: "GET",
            path: "/",
            authority: Some("a.example"),
            headers: &[],
        },
    ];
    for via in &get {
        let (status, fields) = exchange(with.proxy.address, &with.ca.pem, via).await;
        assert_eq!(status, "200");
        assert_eq!(values(fields.clone(), "x-frame-options"), vec!["DENY"]);
        assert_eq!(values(fields, "x-test"), vec!["1"]);
        let (_, fields) = exchange(with_own.proxy.address, &with_own.ca.pem, via).await;
        assert_eq!(
            values(fields, "x-frame-options"),
            vec!["SAMEORIGIN"],
            "the upstream's own header is left alone"
        );
    }
    let refused = Via::H1("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n");
    let (status, fields) = exchange(with.proxy.address, &with.ca.pem, &refused).await;
    assert_eq!(status, "400");
    assert_eq!(
        values(fields, "x-frame-options"),
        vec!["DENY"],
        "the proxy's own answers carry them too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_after_the_response_started_is_counted_as_the_clients_error() {
    // The upstream answers as soon as it has the head; the client's body then breaks.
    let recorder = Recorder::start_with("", Answer::AtHead).await;
    // Streamed: held first (`request_buffering`), the body would fail before any answer.
    let fixture = fixture(recorder.address, "  request_buffering = false\n").await;
    let mut tls = tls_connect(
        fixture.proxy.address,
        client_config(&fixture.ca.pem, H1, None),
    )
    .await
    .expect("TLS handshake");
    tls.write_all(
        b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await
    .expect("write head");
    let (status, _) = read_response(&mut tls).await.expect("a response");
    assert_eq!(status, 200);
    tls.write_all(b"ZZ\r\nworld\r\n0\r\n\r\n")
        .await
        .expect("write the bad chunk");
    fixture
        .proxy
        .wait_metric("pki_sidecar_proxy_client_errors_total{kind=\"body\"}", 1.0)
        .await;
    let got = recorder.wait_take(1).await;
    assert!(
        !got[0].complete,
        "the upstream request was abandoned: {got:?}"
    );
    assert_no_upstream_errors(&fixture);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_while_the_response_streams_cuts_the_response_as_the_clients_error() {
    // The upstream sends a head announcing 100 bytes and 7 of them; the client's body breaks.
    let recorder = Recorder::start_with("", Answer::Unfinished).await;
    // Streamed: held first (`request_buffering`), the body would fail before any answer.
    let fixture = fixture(recorder.address, "  request_buffering = false\n").await;
    let mut tls = tls_connect(
        fixture.proxy.address,
        client_config(&fixture.ca.pem, H1, None),
    )
    .await
    .expect("TLS handshake");
    tls.write_all(
        b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await
    .expect("write head");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.ends_with(b"partial") {
        let n = tls.read(&mut buffer).await.expect("read the response");
        assert!(
            n > 0,
            "closed early: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
    tls.write_all(b"ZZ\r\nworld\r\n0\r\n\r\n")
        .await
        .expect("write the bad chunk");
    // The connection ends short of the 100 bytes: the client cannot take the cut response
    // for a whole one.
    let rest = read_until_closed(&mut tls, Duration::from_secs(20)).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    fixture
        .proxy
        .wait_metric("pki_sidecar_proxy_client_errors_total{kind=\"body\"}", 1.0)
        .await;
    assert_no_upstream_errors(&fixture);
}

/// The client's faults are never counted as the upstream's.
fn assert_no_upstream_errors(fixture: &Fixture) {
    for kind in ["connect", "timeout", "other"] {
        assert_eq!(
            fixture.proxy.metric(&format!(
                "pki_sidecar_proxy_upstream_errors_total{{kind=\"{kind}\"}}"
            )),
            0.0,
            "no upstream error of kind {kind}: the fault was the client's"
        );
    }
}

/// `proxy.max_request_body` (nginx's `client_max_body_size`): a body announced longer than the
/// limit gets 413 before anything reaches the upstream; one that grows past it (chunked, or an
/// HTTP/2 stream without a length) gets 413 when it does, the upstream seeing nothing of it
/// (it is held first: `request_buffering`); a body within the limit passes. Each refusal is
/// counted as the client's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_max_request_body_get_413() {
    const TOO_LARGE: &str = "pki_sidecar_proxy_client_errors_total{kind=\"body_too_large\"}";
    let recorder = Recorder::start("").await;
    let fixture = fixture(recorder.address, "  max_request_body = \"1k\"\n").await;
    let within = format!(
        "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1024\r\n\r\n{}",
        "x".repeat(1024)
    );
    let (status, _) = exchange(
        fixture.proxy.address,
        &fixture.ca.pem,
        &Via::H1(within.leak()),
    )
    .await;
    assert_eq!(status, "200", "a body of exactly the limit passes");
    let passed = recorder.wait_take(1).await;
    assert!(passed[0].complete && passed[0].body.len() == 1024);

    let announced = format!(
        "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1025\r\n\r\n{}",
        "x".repeat(1025)
    );
    let (status, _) = exchange(
        fixture.proxy.address,
        &fixture.ca.pem,
        &Via::H1(announced.leak()),
    )
    .await;
    assert_eq!(status, "413");
    let chunk = "x".repeat(600);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let (status, _) = exchange(
        fixture.proxy.address,
        &fixture.ca.pem,
        &Via::H1(chunked.leak()),
    )
    .await;
    assert_eq!(
        status, "413",
        "a chunked body stopped where it passes the limit"
    );

    // HTTP/2, a stream with no content-length: stopped as it grows.
    let mut client = fixture.client(H2).await;
    assert!(client.is_h2());
    let body = Full::new(Bytes::from(vec![b'x'; 3000])).boxed();
    let request = client
        .request(Method::POST, "/")
        .body(body)
        .expect("request");
    let response = client.send(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(fixture.proxy.metric(TOO_LARGE), 3.0);
    // None of the refused ones reached the upstream, as with nginx.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reached = recorder.take();
    assert!(
        reached.is_empty(),
        "{:?}",
        reached.iter().map(|r| r.body.len()).collect::<Vec<_>>()
    );
}

/// `proxy.request_buffering`: a body without a length is held, up to 1 MiB by default, and
/// sent with a `Content-Length`; a longer one goes on chunked, whole; a size raises the most
/// held; `false` streams it chunked; a client pausing while its body is held (with a length or
/// without) gets 408 with nothing sent to the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_without_a_length_are_held_up_to_request_buffering() {
    const MIB: usize = 1 << 20;
    let recorder = Recorder::start("").await;
    let chunked = |length: usize| -> &'static str {
        let chunk = "x".repeat(64 * 1024);
        let mut request =
            "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n".to_string();
        let mut left = length;
        while left > 0 {
            let size = left.min(chunk.len());
            request.push_str(&format!("{size:x}\r\n{}\r\n", &chunk[..size]));
            left -= size;
        }
        request.push_str("0\r\n\r\n");
        request.leak()
    };
    for (setting, length, expected) in [
        ("", 1000, Some(1000)),
        ("", MIB, Some(MIB)),
        ("", MIB + 1, None),
        ("  request_buffering = \"4m\"\n", 3 * MIB, Some(3 * MIB)),
        ("  request_buffering = false\n", 1000, None),
    ] {
        let fixture = fixture(recorder.address, setting).await;
        let (status, _) = exchange(
            fixture.proxy.address,
            &fixture.ca.pem,
            &Via::H1(chunked(length)),
        )
        .await;
        assert_eq!(status, "200", "{setting:?} {length}");
        let received = recorder.wait_take(1).await;
        let r = &received[0];
        assert!(r.complete, "{setting:?} {length}");
        match expected {
            Some(length) => {
                assert_eq!(r.header("content-length"), [length.to_string()]);
                assert!(r.header("transfer-encoding").is_empty());
                assert_eq!(r.body.len(), length);
            }
            None => {
                assert_eq!(
                    r.header("transfer-encoding"),
                    ["chunked"],
                    "{setting:?} {length}"
                );
                assert!(r.header("content-length").is_empty());
                assert!(r.body.len() > length, "the whole body, framed");
            }
        }
    }

    // A client that stops sending while its body is held: 408 once the pause passes
    // `body_read_timeout`, and the upstream gets nothing.
    // A body with a length within the most held is held too: a slow client does not hold up
    // the app (a synchronous worker waiting for the rest of an upload), as behind nginx.
    let fixture = fixture(recorder.address, "  body_read_timeout = \"1s\"\n").await;
    for stalled in [
        "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100\r\n\r\nhello",
    ] {
        let started = std::time::Instant::now();
        let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &Via::H1(stalled)).await;
        assert_eq!(status, "408", "{stalled:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(recorder.take().is_empty(), "{stalled:?}");
    }
}

/// A request answered before its body was read (413 for a body announced too long, a fixed
/// response) while the client is still sending: the proxy reads and drops the rest, as nginx
/// does, so the client finishes its upload and reads the answer. Dropped at once, the body
/// made HTTP/1 close with bytes unread (a TCP reset that could reach the client before the
/// answer, or fail its upload) and HTTP/2 reset the stream: curl saw "Stream error in the
/// HTTP/2 framing layer" for 6 % of 3,000-byte and 68 % of 300 KB uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_reads_the_early_answer() {
    const MIB: usize = 1 << 20;
    let recorder = Recorder::start("").await;
    // As in nginx, the size limit applies to a fixed response's path too: one fixture each.
    for (setting, path, expected) in [
        ("  max_request_body = \"1k\"\n", "/upload", "413"),
        (
            "  fixed_responses = { \"= /ping\" = { status = 200, body = \"pong\" } }\n",
            "/ping",
            "200",
        ),
    ] {
        let fixture = fixture(recorder.address, setting).await;
        let upload = format!(
            "POST {path} HTTP/1.1\r\nHost: a.example\r\nContent-Length: {}\r\n\r\n{}",
            4 * MIB,
            "x".repeat(4 * MIB)
        );
        let (status, _) = exchange(
            fixture.proxy.address,
            &fixture.ca.pem,
            &Via::H1(upload.leak()),
        )
        .await;
        assert_eq!(
            status, expected,
            "HTTP/1.1 {path}: the whole upload written, then the answer"
        );

        let mut client = fixture.client(H2).await;
        for round in 0..3 {
            let body = Full::new(Bytes::from(vec![b'x'; 4 * MIB])).boxed();
            let request = client
                .request(Method::POST, path)
                .body(body)
                .expect("request");
            let response = client
                .send(request)
                .await
                .unwrap_or_else(|e| panic!("HTTP/2 {path}, round {round}: {e:#}"));
            assert_eq!(response.status().as_str(), expected, "HTTP/2 {path}");
        }
    }
    assert!(
        recorder.take().iter().all(|request| !request.complete),
        "nothing of it was forwarded whole"
    );
}

/// `proxy.fixed_responses`: an exact path wins over a prefix, the longest prefix over a shorter
/// one, over HTTP/1.1 and HTTP/2; `response_headers` are added to them; nothing of them reaches
/// the upstream, and a path none matches is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_responses_are_answered_by_the_proxy() {
    let recorder = Recorder::start("").await;
    let setting = "  response_headers = { \"X-Test\" = \"1\" }\n  fixed_responses = {\n    \
                   \"/health\" = { status = 200, body = \"short\" }\n    \
                   \"/health/deep\" = { status = 503, body = \"deep\" }\n    \
                   \"= /health\" = { status = 204 }\n    \
                   \"/old\" = { status = 308, location = \"https://a.example/new\" }\n  }\n";
    let fixture = fixture(recorder.address, setting).await;
    for (path, status, location) in [
        ("/health", "204", None),
        ("/health/x", "200", None),
        ("/healthz", "200", None),
        ("/health/deep/er", "503", None),
        ("/old?q=1", "308", Some("https://a.example/new")),
    ] {
        for via in [
            Via::H1(format!("GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n").leak()),
            Via::H2 {
                method: "POST",
                path,
                authority: Some("a.example"),
                headers: &[],
            },
        ] {
            let (got, fields) = exchange(fixture.proxy.address, &fixture.ca.pem, &via).await;
            assert_eq!(got, status, "{path}");
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(field("location"), location, "{path}");
            assert_eq!(field("x-test"), Some("1"), "{path}: response_headers apply");
        }
    }
    assert!(recorder.take().is_empty(), "nothing of them was forwarded");
    let (got, _) = exchange(
        fixture.proxy.address,
        &fixture.ca.pem,
        &Via::H1("GET /other HTTP/1.1\r\nHost: a.example\r\n\r\n"),
    )
    .await;
    assert_eq!(got, "200");
    assert_eq!(
        recorder.wait_take(1).await[0].request_line(),
        "GET /other HTTP/1.1"
    );
}

/// `proxy.server_names`: a request for another host is refused before anything else looks at
/// it (here before a fixed response of its path), with `unknown_host`'s status or, for
/// `"close"`, a closed HTTP/1.1 connection and an HTTP/2 stream reset with PROTOCOL_ERROR, as
/// nginx's 444; counted as `client_errors_total{kind="unknown_host"}`; nothing reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_other_hosts_are_refused() {
    const UNKNOWN: &str = "pki_sidecar_proxy_client_errors_total{kind=\"unknown_host\"}";
    for (unknown, refused) in [("404", "404"), ("\"close\"", "closed")] {
        let recorder = Recorder::start("").await;
        let setting = format!(
            "  server_names = [\"a.example\", \"*.b.example\"]\n  unknown_host = {unknown}\n  \
             fixed_responses = {{ \"/health\" = {{ status = 200 }} }}\n"
        );
        let fixture = fixture(recorder.address, Box::leak(setting.into_boxed_str())).await;
        for (host, expected) in [
            ("a.example", "200"),
            ("A.Example.:8443", "200"),
            ("x.b.example", "200"),
            ("b.example", refused),
            ("c.example", refused),
        ] {
            for (path, reaches_app) in [("/health", false), ("/app", true)] {
                let h1 = Via::H1(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").leak());
                let h2 = Via::H2 {
                    method: "GET",
                    path,
                    authority: Some(Box::leak(host.to_string().into_boxed_str())),
                    headers: &[],
                };
                for (via, closed) in [(h1, "closed"), (h2, "reset (PROTOCOL_ERROR)")] {
                    let (got, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &via).await;
                    let expected = if expected == "closed" {
                        closed
                    } else {
                        expected
                    };
                    assert_eq!(got, expected, "{unknown}: {host} {path}");
                    if expected == "200" && reaches_app {
                        assert_eq!(recorder.wait_take(1).await.len(), 1);
                    }
                }
            }
        }
        assert_eq!(fixture.proxy.metric(UNKNOWN), 8.0, "{unknown}");
        assert!(
            recorder.take().is_empty(),
            "no refused request was forwarded"
        );
    }
}

/// `proxy.routes`: each location goes to its own upstream with its own settings, picked as nginx
/// picks a location (exact, `^~` prefix, regular expressions in order, longest prefix), fixed
/// responses among them; a route's limit, headers and timeout are its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_take_their_locations_with_their_own_settings() {
    let app = Recorder::start("").await;
    let hub = Recorder::start("").await;
    let php = Recorder::start("").await;
    // An upstream that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let setting = format!(
        "  request_headers = {{ \"X-Route\" = \"default\" }}\n  fixed_responses = {{\n    \
         \"^~ /hub/status\" = {{ status = 204 }}\n  }}\n  routes = [\n    \
         {{ location = \"^~ /hub\", upstream = \"http://{}\" }},\n    \
         {{ location = \"~ \\\\.php$\", upstream = \"http://{}\", request_headers = {{ \"X-Route\" = \"php\" }} }},\n    \
         {{ location = \"~* ^/PHP/\", upstream = \"http://{}\" }},\n    \
         {{ location = \"/upload/\", max_request_body = \"10\" }},\n    \
         {{ location = \"= /slow\", upstream = \"http://{silent_address}\", upstream_response_timeout = \"1s\" }},\n  ]\n",
        hub.address, php.address, hub.address,
    );
    let fixture = fixture(app.address, &setting).await;
    let get = |path: &'static str| {
        Via::H1(format!("GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n").leak())
    };
    for (path, to) in [
        ("/hub/ws", "hub"),
        // `^~`: the regular expressions are not tried.
        ("/hub/x.php", "hub"),
        ("/x.php?a=1", "php"),
        // The first regular expression that matches, in the order written.
        ("/php/x.php", "php"),
        ("/Php/x.html", "hub"),
        ("/upload/a", "app"),
        ("/other", "app"),
    ] {
        let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &get(path)).await;
        assert_eq!(status, "200", "{path}");
        let (recorder, route) = match to {
            "hub" => (&hub, "default"),
            "php" => (&php, "php"),
            _ => (&app, "default"),
        };
        let received = recorder.wait_take(1).await;
        assert_eq!(
            received[0].request_line(),
            format!("GET {path} HTTP/1.1"),
            "{path} goes to {to}"
        );
        assert_eq!(received[0].header("x-route"), [route], "{path}");
    }
    let (status, _) = exchange(
        fixture.proxy.address,
        &fixture.ca.pem,
        &get("/hub/status/x"),
    )
    .await;
    assert_eq!(status, "204", "the longer ^~ fixed response wins");
    // The route's body limit; the proxy's own (none) elsewhere.
    let post = |path: &str| {
        Via::H1(
            format!(
                "POST {path} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 20\r\n\r\n{}",
                "x".repeat(20)
            )
            .leak(),
        )
    };
    let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &post("/upload/a")).await;
    assert_eq!(status, "413");
    let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &post("/other")).await;
    assert_eq!(status, "200");
    assert_eq!(app.wait_take(1).await[0].body, b"x".repeat(20));
    // The route's response timeout, where the proxy's own is 60 s.
    let started = std::time::Instant::now();
    let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &get("/slow")).await;
    assert_eq!(status, "504");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(hub.take().is_empty() && php.take().is_empty() && app.take().is_empty());
}

/// `basic_auth_realm` / `basic_auth_file`: a request without the credentials gets 401 with the
/// challenge over HTTP/1.1 and HTTP/2 and reaches nobody (counted); with them it is forwarded,
/// `Authorization` included; a changed file is read again (a user removed is refused, one added
/// let in) and a broken one leaves the users in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_asks_for_credentials_and_follows_its_file() {
    let recorder = Recorder::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    std::fs::write(
        &users,
        "ann:{PLAIN}one\nbob:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n",
    )
    .unwrap();
    let setting = format!(
        "  reload_interval = \"1s\"\n  basic_auth_realm = \"Team\"\n  basic_auth_file = \"{}\"\n",
        users.display()
    );
    let fixture = fixture(recorder.address, &setting).await;
    let basic = |credentials: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
        .leak() as &'static str
    };
    let h1 = |authorization: Option<&'static str>| {
        let line = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        Via::H1(format!("GET /x HTTP/1.1\r\nHost: a.example\r\n{line}\r\n").leak())
    };
    let status = |via: Via| {
        let fixture = &fixture;
        async move {
            let (status, fields) = exchange(fixture.proxy.address, &fixture.ca.pem, &via).await;
            let challenge = fields
                .iter()
                .find(|(n, _)| n == "www-authenticate")
                .map(|(_, v)| v.clone());
            (status, challenge)
        }
    };
    let challenge = Some("Basic realm=\"Team\"".to_string());
    assert_eq!(
        status(h1(None)).await,
        ("401".to_string(), challenge.clone())
    );
    assert_eq!(
        status(h1(Some(basic("ann:two")))).await,
        ("401".to_string(), challenge.clone())
    );
    assert_eq!(
        status(Via::H2 {
            method: "GET",
            path: "/x",
            authority: Some("a.example"),
            headers: &[],
        })
        .await,
        ("401".to_string(), challenge.clone())
    );
    assert!(recorder.take().is_empty(), "nothing refused was forwarded");
    assert_eq!(status(h1(Some(basic("ann:one")))).await.0, "200");
    assert_eq!(status(h1(Some(basic("bob:secret")))).await.0, "200");
    let h2_headers: &'static [(&'static str, &'static str)] =
        vec![("authorization", basic("bob:secret"))].leak();
    assert_eq!(
        status(Via::H2 {
            method: "GET",
            path: "/x",
            authority: Some("a.example"),
            headers: h2_headers,
        })
        .await
        .0,
        "200"
    );
    let forwarded = recorder.wait_take(3).await;
    const UNAUTHORIZED: &str = "pki_sidecar_proxy_client_errors_total{kind=\"unauthorized\"}";
    assert_eq!(
        fixture.proxy.metric(UNAUTHORIZED),
        3.0,
        "the three refusals"
    );
    assert_eq!(forwarded[0].header("authorization"), [basic("ann:one")]);
    // The file changes: ann goes, cat comes.
    std::fs::write(&users, "bob:{PLAIN}secret\ncat:{PLAIN}three\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while status(h1(Some(basic("cat:three")))).await.0 != "200" {
        assert!(
            std::time::Instant::now() < deadline,
            "the new file was not read"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(h1(Some(basic("ann:one")))).await.0, "401");
    // A broken file: the users stay.
    std::fs::write(&users, "cat\n").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status(h1(Some(basic("cat:three")))).await.0, "200");
    // The refusals after the change (ann's, and cat's until the file was read) come after
    // those three.
    assert!(fixture.proxy.metric(UNAUTHORIZED) >= 4.0);
}

/// `proxy.tls_min_version = "tls13"` (nginx's `ssl_protocols TLSv1.3`): a client that speaks
/// TLS 1.2 only is refused in the handshake, a TLS 1.3 client is served; by default both are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_min_version_tls13_refuses_tls12_clients() {
    let recorder = Recorder::start("").await;
    let only13 = fixture(recorder.address, "  tls_min_version = \"tls13\"\n").await;
    let both = fixture(recorder.address, "").await;
    let client = |pem: &str, versions: &[&'static rustls::SupportedProtocolVersion]| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA usable");
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    };
    let tls12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    assert!(
        tls_connect(only13.proxy.address, client(&only13.ca.pem, tls12))
            .await
            .is_err(),
        "a TLS 1.2 client is refused"
    );
    let served = tls_connect(only13.proxy.address, client(&only13.ca.pem, tls13))
        .await
        .expect("a TLS 1.3 client is served");
    assert_eq!(
        served.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let old = tls_connect(both.proxy.address, client(&both.ca.pem, tls12))
        .await
        .expect("by default TLS 1.2 is served");
    assert_eq!(
        old.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

/// `proxy.session_tickets = false` (nginx's `ssl_session_tickets off`): a TLS 1.2 client gets
/// no session ticket (`openssl s_client` shows none) where by default it gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tickets_false_sends_no_tls12_ticket() {
    let recorder = Recorder::start("").await;
    let without = fixture(recorder.address, "  session_tickets = false\n").await;
    let with = fixture(recorder.address, "").await;
    let dir = tempfile::tempdir().unwrap();
    let s_client = |address: SocketAddr, pem: &str, name: &str| {
        let ca = util::write_file(dir.path(), name, pem);
        let output = Command::new("openssl")
            .args(["s_client", "-tls1_2", "-connect"])
            .arg(address.to_string())
            .args(["-servername", "localhost", "-CAfile"])
            .arg(&ca)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run openssl s_client");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let off = s_client(without.proxy.address, &without.ca.pem, "off.pem");
    let on = s_client(with.proxy.address, &with.ca.pem, "on.pem");
    assert!(on.contains("Protocol  : TLSv1.2"), "{on}");
    assert!(
        on.contains("TLS session ticket:"),
        "by default, a ticket:\n{on}"
    );
    assert!(off.contains("Protocol  : TLSv1.2"), "{off}");
    assert!(!off.contains("TLS session ticket:"), "no ticket:\n{off}");
}

/// `prefix_rewrite` and `upstream_uri`, from the proxy's own file: the location's part of the
/// path replaced (query kept) over HTTP/1.1 and HTTP/2, the whole target formed from the
/// request's variables, and a request whose values make no target refused with 400 (counted as
/// `kind="target"`) without reaching the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_targets_are_rewritten_for_each_request() {
    const TARGET: &str = "pki_sidecar_proxy_client_errors_total{kind=\"target\"}";
    let app = Recorder::start("").await;
    let setting = "  prefix_rewrite = \"/base/\"\n  routes = [\n    \
         { location = \"/api/\", prefix_rewrite = \"/\" },\n    \
         { location = \"= /m\", prefix_rewrite = \"/metrics\" },\n    \
         { location = \"~ ^/v2/\", upstream_uri = \"/new$uri?id=$arg_id\" },\n    \
         { location = \"~ ^/g/(\\\\w+)/(.*)$\", upstream_uri = \"/$2/$1\" },\n  ]\n";
    let fixture = fixture(app.address, setting).await;
    for (path, sent) in [
        ("/x?q=1", "/base/x?q=1"),
        ("/api/users?id=2", "/users?id=2"),
        ("/api/", "/"),
        ("/m?name=a", "/metrics?name=a"),
        ("/v2/a/b?id=7&other=1", "/new/v2/a/b?id=7"),
        // The location's groups.
        ("/g/ab/c/d?q=1", "/c/d/ab"),
    ] {
        let h1 = Via::H1(format!("GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n").leak());
        let h2 = Via::H2 {
            method: "GET",
            path: Box::leak(path.to_string().into_boxed_str()),
            authority: Some("a.example"),
            headers: &[],
        };
        for via in [h1, h2] {
            let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &via).await;
            assert_eq!(status, "200", "{path}");
            let received = app.wait_take(1).await;
            assert_eq!(received[0].request_line(), format!("GET {sent} HTTP/1.1"));
        }
    }
    // `$uri` is decoded: a space makes no request target.
    let h1 = Via::H1("GET /v2/a%20b HTTP/1.1\r\nHost: a.example\r\n\r\n");
    let (status, _) = exchange(fixture.proxy.address, &fixture.ca.pem, &h1).await;
    assert_eq!(status, "400");
    assert_eq!(fixture.proxy.metric(TARGET), 1.0);
    assert!(
        app.take().is_empty(),
        "the refused request was not forwarded"
    );
}

/// A client that completes the TLS handshake with ALPN `h2` and then sends nothing (not even
/// HTTP/2's preface) is closed once idle, as nginx closes it: hyper's graceful close waits for
/// the preface for ever, so such connections held `max_connections` slots until the proxy
/// stopped (five of them locked every other client out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_that_never_sends_its_preface_is_closed() {
    let recorder = Recorder::start("").await;
    let fixture = fixture(
        recorder.address,
        "  idle_timeout = \"1s\"\n  header_read_timeout = \"1s\"\n",
    )
    .await;
    let mut tls = tls_connect(
        fixture.proxy.address,
        client_config(&fixture.ca.pem, H2, None),
    )
    .await
    .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match tls.read(&mut buffer).await {
                // The server's SETTINGS and GOAWAY may come first.
                Ok(n) if n > 0 => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after 15 s");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "closed after {:?}",
        started.elapsed()
    );
}

/// A request with more header lines than hyper's default of 100 is forwarded whole, as nginx
/// forwards it (nginx bounds them by size alone): it got 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_many_header_lines_is_forwarded() {
    let recorder = Recorder::start("").await;
    let fixture = fixture(recorder.address, "").await;
    let mut request = "GET / HTTP/1.1\r\nHost: a.example\r\n".to_string();
    for index in 0..300 {
        request.push_str(&format!("X-H-{index:03}: v{index}\r\n"));
    }
    request.push_str("\r\n");
    let (status, _) = exchange(
        fixture.proxy.address,
        &fixture.ca.pem,
        &Via::H1(request.leak()),
    )
    .await;
    assert_eq!(status, "200");
    let received = recorder.wait_take(1).await;
    let lines = received[0]
        .head
        .iter()
        .filter(|line| line.starts_with("X-H-"))
        .count();
    assert_eq!(lines, 300, "{:?}", received[0].head);
}
