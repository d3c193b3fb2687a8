//! `proxy --nginx-config`: one nginx configuration, checked by `nginx -t`, served by nginx and
//! then by the proxy on the same port; the upstream and the client see the same thing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util;
use crate::util::recorder::Recorder;
use crate::util::role::{Launch, RoleProcess};

/// A self-signed ECDSA pair for `localhost` in `dir` (`tls.crt`, `tls.key`).
fn pair(dir: &Path) {
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "tls.key",
            "-out",
            "tls.crt",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-days",
            "1",
        ])
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One HTTPS request with a forged `X-Real-IP`; the response head and body.
fn curl(port: u16, dir: &Path) -> String {
    let output = Command::new("curl")
        .args(["-sS", "-D", "-", "--max-time", "10", "--cacert"])
        .arg(dir.join("tls.crt"))
        .args(["-H", "X-Real-IP: 6.6.6.6", "-H", "X-Forwarded-For: 6.6.6.6"])
        .arg(format!("https://localhost:{port}/some/path?q=1"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_ascii_lowercase()
}

/// The status of a POST of `bytes` bytes, announced (Content-Length) or chunked.
fn post_status(port: u16, dir: &Path, bytes: usize, chunked: bool) -> u16 {
    let body = dir.join(format!("body-{bytes}"));
    std::fs::write(&body, vec![b'x'; bytes]).unwrap();
    let mut command = Command::new("curl");
    command
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg("--cacert")
        .arg(dir.join("tls.crt"))
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if chunked {
        command.args(["-H", "Transfer-Encoding: chunked"]);
    }
    let output = command
        .arg(format!("https://localhost:{port}/upload"))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl: {}", String::from_utf8_lossy(&output.stderr)))
}

/// What a server answers to the body-size probes, in order: 2000 bytes announced (taken to the
/// upstream), 3000 announced, 3000 chunked.
fn body_probes(port: u16, dir: &Path) -> Vec<u16> {
    vec![
        post_status(port, dir, 2000, false),
        post_status(port, dir, 3000, false),
        post_status(port, dir, 3000, true),
    ]
}

/// A child killed when dropped.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx serving `conf` (prefix `dir`), once it listens on `port`: the reference.
fn start_nginx(conf: &Path, dir: &Path, port: u16) -> Guard {
    let nginx = Guard(
        Command::new("nginx")
            .arg("-c")
            .arg(conf)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nginx"),
    );
    util::wait_until(Duration::from_secs(15), "nginx listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    nginx
}

/// Stops `nginx` and waits until `port` is free for the proxy.
fn stop_nginx(nginx: Guard, port: u16) {
    drop(nginx);
    util::wait_until(Duration::from_secs(15), "nginx stops", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

/// The proxy on the same file (`proxy --nginx-config CONF`), once ready; its log in `log`.
async fn start_proxy(conf: &Path, log: PathBuf) -> RoleProcess {
    let conf = conf.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let proxy = Launch::role("proxy", &[], &log)
            .args(&["--nginx-config", conf.to_str().unwrap()])
            .spawn();
        proxy.wait_ready(Duration::from_secs(15));
        proxy
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_an_nginx_configuration_as_nginx_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pair(d);
    let upstream = Recorder::start("").await;
    let port = util::free_port();
    let conf = util::write_file(
        d,
        "nginx.conf",
        &format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate     {d}/tls.crt;
        ssl_certificate_key {d}/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_timeout 30s;
        add_header Strict-Transport-Security "max-age=600" always;
        add_header X-Frame-Options DENY always;
        add_header X-Content-Type-Options nosniff always;
        location / {{
            proxy_pass http://127.0.0.1:{up};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 30s;
            client_max_body_size 2k;
        }}
    }}
}}
"#,
            d = d.display(),
            up = upstream.address.port(),
        ),
    );
    // nginx itself takes the file.
    let test = Command::new("nginx")
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(d)
        .output()
        .expect("run nginx -t");
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );

    // nginx serves it: the reference.
    let nginx = start_nginx(&conf, d, port);
    let (theirs, d2) = tokio::task::spawn_blocking({
        let d = d.to_path_buf();
        move || (curl(port, &d), d)
    })
    .await
    .unwrap();
    let theirs_upstream = upstream.wait_take(1).await;
    let (their_bodies, d2) = tokio::task::spawn_blocking(move || (body_probes(port, &d2), d2))
        .await
        .unwrap();
    let their_upload = upstream.wait_take(1).await;
    stop_nginx(nginx, port);

    // The proxy on the same file.
    let log = d.join("proxy.log");
    let proxy = start_proxy(&conf, log).await;
    let (ours, d2) = tokio::task::spawn_blocking(move || (curl(port, &d2), d2))
        .await
        .unwrap();
    let ours_upstream = upstream.wait_take(1).await;
    let our_bodies = tokio::task::spawn_blocking(move || body_probes(port, &d2))
        .await
        .unwrap();
    let our_upload = upstream.wait_take(1).await;

    // client_max_body_size: the same statuses, and only the allowed body reached the app whole.
    // nginx buffers a body before forwarding it; the proxy streams it, so the app may see the
    // start of the chunked one before the proxy abandons it.
    assert_eq!(their_bodies, vec![200, 413, 413], "nginx, the reference");
    assert_eq!(our_bodies, their_bodies, "the proxy");
    assert_eq!(
        their_upload.len(),
        1,
        "nginx forwards the allowed body only"
    );
    for (who, uploads) in [("nginx", &their_upload), ("proxy", &our_upload)] {
        assert_eq!(uploads[0].request_line(), "POST /upload HTTP/1.1", "{who}");
        assert!(uploads[0].complete, "{who}");
        assert_eq!(uploads[0].body.len(), 2000, "{who}");
        assert!(
            uploads[1..].iter().all(|abandoned| !abandoned.complete),
            "{who}: a body past the limit never reaches the app whole"
        );
    }

    // The client: the app's answer, HSTS and the added headers, from both.
    for response in [&theirs, &ours] {
        assert!(
            response.starts_with("http/1.1 200") || response.starts_with("http/2 200"),
            "{response}"
        );
        for header in [
            "strict-transport-security: max-age=600",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
        ] {
            assert!(response.contains(header), "{header}: {response}");
        }
        assert!(response.ends_with("ok\n"), "{response}");
    }
    // The upstream: the path, the client's address in X-Real-IP and X-Forwarded-For (the
    // forged ones replaced), the scheme.
    for (who, received) in [("nginx", &theirs_upstream[0]), ("proxy", &ours_upstream[0])] {
        assert_eq!(
            received.request_line(),
            "GET /some/path?q=1 HTTP/1.1",
            "{who}"
        );
        assert_eq!(
            received.header("x-real-ip"),
            ["127.0.0.1"],
            "{who}: {:?}",
            received.head
        );
        assert_eq!(
            received.header("x-forwarded-for"),
            ["127.0.0.1"],
            "{who}: {:?}",
            received.head
        );
        assert_eq!(received.header("x-forwarded-proto"), ["https"], "{who}");
        let host = received.header("host");
        assert!(
            host.len() == 1 && host[0].starts_with("localhost"),
            "{who}: {host:?}"
        );
    }
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    // `validate --nginx-config` says the same before a switch; a location the proxy would not
    // serve is an error at its line.
    let output = util::command()
        .args(["validate", "--nginx-config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "listen    https://127.0.0.1:{port} -> http://127.0.0.1:"
        )),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "        location / {",
        "        location /api { proxy_pass http://127.0.0.1:9; }\n        location / {",
    );
    let line = text
        .lines()
        .position(|l| l.contains("location /api"))
        .unwrap()
        + 1;
    let bad = util::write_file(dir.path(), "bad.conf", &text);
    let output = util::command()
        .args(["validate", "--nginx-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "bad.conf:{line}:9: location: only `location /` is served"
        )),
        "{stderr}"
    );
    // What the proxy does not carry over is said, at its line.
    assert!(
        log.contains("nginx.conf:2:1: master_process: warning: ignored"),
        "{log}"
    );
}

/// What a server answers to GET `path`: status, `Content-Type`, `Location` and body.
fn answer(port: u16, dir: &Path, path: &str) -> (u16, String, String, String) {
    let output = Command::new("curl")
        .args(["-sS", "-D", "-", "--max-time", "10", "--cacert"])
        .arg(dir.join("tls.crt"))
        .arg(format!("https://localhost:{port}{path}"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{path}: {text}"));
    let field = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    (
        status,
        field("content-type"),
        field("location"),
        body.to_string(),
    )
}

/// `location` blocks that only `return` (health checks, redirects), the `default_type` of their
/// text, and the stock `error_page` / `location = /50x.html` pair: nginx and the proxy give the
/// same status, `Content-Type`, `Location` and text for each path, and neither forwards them;
/// every other path still reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_locations_are_answered_as_nginx_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let upstream = Recorder::start("").await;
    let port = util::free_port();
    let conf = util::write_file(
        &d,
        "nginx.conf",
        &format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate     {d}/tls.crt;
        ssl_certificate_key {d}/tls.key;
        location = /ping {{ return 204; }}
        location /healthz {{
            access_log off;
            return 200 "ok\n";
        }}
        location /typed {{
            default_type application/json;
            return 200 '{{"ok":true}}';
        }}
        location ^~ /gone {{ return 410 "gone\n"; }}
        location /old {{ return 301 https://example.com/new; }}
        location /bare {{ return https://example.com/x; }}
        location / {{
            proxy_pass http://127.0.0.1:{up};
        }}
        error_page 502 503 /50x.html;
        location = /50x.html {{
            root /usr/share/nginx/html;
        }}
    }}
}}
"#,
            d = d.display(),
            up = upstream.address.port(),
        ),
    );
    const PATHS: &[&str] = &[
        "/ping",
        "/healthz",
        "/healthz/deep?x=1",
        "/typed",
        "/gone/away",
        "/old",
        "/bare",
        "/pingpong",
    ];
    let probe = |d: std::path::PathBuf| {
        move || {
            PATHS
                .iter()
                .map(|path| answer(port, &d, path))
                .collect::<Vec<_>>()
        }
    };
    let nginx = start_nginx(&conf, &d, port);
    let theirs = tokio::task::spawn_blocking(probe(d.clone())).await.unwrap();
    let their_forwarded = upstream.wait_take(1).await;
    stop_nginx(nginx, port);

    let log = d.join("proxy.log");
    let proxy = start_proxy(&conf, log).await;
    let ours = tokio::task::spawn_blocking(probe(d.clone())).await.unwrap();
    let our_forwarded = upstream.wait_take(1).await;
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");

    for ((path, theirs), ours) in PATHS.iter().zip(&theirs).zip(&ours) {
        assert_eq!(ours.0, theirs.0, "{path}: status");
        assert_eq!(ours.2, theirs.2, "{path}: Location");
        // nginx sends its own HTML page with a redirect; the text of a `return` is the same.
        if !(300..400).contains(&theirs.0) {
            assert_eq!(ours.1, theirs.1, "{path}: Content-Type");
            assert_eq!(ours.3, theirs.3, "{path}: body");
        }
    }
    assert_eq!(theirs[0].0, 204);
    assert_eq!(
        theirs[1],
        (200, "text/plain".into(), String::new(), "ok\n".into())
    );
    assert_eq!(theirs[3].1, "application/json");
    // Only `/pingpong` (not `= /ping`) went to the app, from both.
    for (who, forwarded) in [("nginx", &their_forwarded), ("proxy", &our_forwarded)] {
        // (nginx forwards with HTTP/1.0 unless told `proxy_http_version 1.1`.)
        let paths: Vec<&str> = forwarded
            .iter()
            .filter_map(|r| r.request_line().split(' ').nth(1))
            .collect();
        assert_eq!(paths, ["/pingpong"], "{who}");
    }
    assert!(
        log.contains("location: warning: not served: the error_page it serves is ignored"),
        "{log}"
    );
}
