//! `proxy --nginx-config`: one nginx configuration, checked by `nginx -t`, served by nginx and
//! then by the proxy on the same port; the upstream and the client see the same thing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util;
use crate::util::recorder::{Answer, Recorder};
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

/// The start of every nginx file here, up to the `http` block's own directives: nginx in the
/// foreground, its pid, logs and temporary files in `d`.
fn nginx_head(d: &Path) -> String {
    let d = d.display();
    format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{\n    \
         worker_connections 64;\n}}\nhttp {{\n    access_log off;\n    client_body_temp_path \
         {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
         uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
    )
}

/// `nginx.conf` in `d`: [`nginx_head`], then one TLS server on 127.0.0.1:`port` with the pair
/// [`pair`] made and the directives `body` (lines of the server block), closed.
fn tls_server(d: &Path, port: u16, body: &str) -> PathBuf {
    let preamble = nginx_head(d);
    let shown = d.display();
    util::write_file(
        d,
        "nginx.conf",
        &format!(
            "{preamble}    server {{\n        listen 127.0.0.1:{port} ssl;\n        \
             ssl_certificate     {shown}/tls.crt;\n        ssl_certificate_key \
             {shown}/tls.key;\n{body}    }}\n}}\n"
        ),
    )
}

/// `openssl` in `dir` with `words` split at spaces, then `more` as they are; it must succeed.
fn openssl_in(dir: &Path, words: &str, more: &[&str]) {
    let output = Command::new("openssl")
        .args(words.split(' '))
        .args(more)
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

/// The status of a POST of `bytes` bytes to `path`, announced (Content-Length) or chunked.
fn post_status(port: u16, dir: &Path, path: &str, bytes: usize, chunked: bool) -> u16 {
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
        .arg(format!("https://localhost:{port}{path}"))
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
        post_status(port, dir, "/upload", 2000, false),
        post_status(port, dir, "/upload", 3000, false),
        post_status(port, dir, "/upload", 3000, true),
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

/// `probe` against nginx serving `conf` on `port`, then against the proxy reading the same
/// file: nginx's result, then the proxy's; the proxy must stop cleanly.
async fn nginx_then_proxy<T>(
    conf: &Path,
    d: &Path,
    port: u16,
    probe: impl Fn(&Path) -> T,
) -> (T, T) {
    let nginx = start_nginx(conf, d, port);
    let theirs = probe(d);
    stop_nginx(nginx, port);
    let proxy = start_proxy(conf, d.join("proxy.log")).await;
    let ours = probe(d);
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    (theirs, ours)
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
    let preamble = nginx_head(d);
    let conf = util::write_file(
        d,
        "nginx.conf",
        &format!(
            r#"{preamble}    server {{
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
    assert_eq!(
        ours_upstream[0].header("host"),
        theirs_upstream[0].header("host"),
        "the Host the app is told"
    );
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
        "        location /api { fastcgi_pass 127.0.0.1:9000; }\n        location / {",
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
            "bad.conf:{line}:25: fastcgi_pass: not supported in location /api"
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
/// text, beside the stock `error_page` / `location = /50x.html` pair: nginx and the proxy give
/// the same status, `Content-Type`, `Location` and text for each path, and neither forwards them;
/// every other path still reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_locations_are_answered_as_nginx_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let upstream = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location = /ping {{ return 204; }}
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
"#,
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
}

/// Locations that `proxy_pass` elsewhere or with settings of their own (`proxy.routes`): each
/// path reaches the same upstream from nginx and from the proxy on one file, with the same
/// headers, and bodies get the same 413s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_locations_are_routed_as_nginx_routes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let hub = Recorder::start("").await;
    let api = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        client_max_body_size 2500;
        proxy_set_header X-Route server;
        location / {{
            proxy_pass http://127.0.0.1:{app};
            proxy_set_header X-Route root;
        }}
        location /hub {{
            proxy_pass http://127.0.0.1:{hub};
            proxy_set_header X-Route hub;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_http_version 1.1;
        }}
        location ^~ /static/ {{
            proxy_pass http://127.0.0.1:{app};
            proxy_set_header X-Route static;
        }}
        location ~ \.php$ {{
            proxy_pass http://127.0.0.1:{api};
        }}
        location ~* ^/API/v[0-9]+/ {{
            proxy_pass http://127.0.0.1:{api};
            proxy_set_header X-Route api;
            client_max_body_size 0;
        }}
        location = /exact {{
            proxy_pass http://127.0.0.1:{hub};
            proxy_set_header X-Route exact;
        }}
        location /upload/ {{
            proxy_pass http://127.0.0.1:{app}/upload/;
            client_max_body_size 1000;
        }}
"#,
            app = app.address.port(),
            hub = hub.address.port(),
            api = api.address.port(),
        ),
    );
    const PATHS: &[&str] = &[
        "/",
        "/hub/socket",
        "/hubble",
        "/static/a.php",
        "/x.php?q=1",
        "/api/v1/users",
        "/Api/v2/b.php",
        "/exact",
        "/exact/more",
        "/upload/a",
    ];
    // Where each path went: the upstream, the path it got and its X-Route lines; then the
    // statuses of 2000-byte uploads to three locations.
    let probe = |d: PathBuf| {
        let recorders = [("app", &app), ("hub", &hub), ("api", &api)];
        let mut seen = Vec::new();
        for path in PATHS {
            let d = d.clone();
            let status = answer(port, &d, path).0;
            assert_eq!(status, 200, "{path}");
            let mut went = Vec::new();
            for (name, recorder) in recorders {
                for received in recorder.take() {
                    let target = received
                        .request_line()
                        .split(' ')
                        .nth(1)
                        .unwrap()
                        .to_string();
                    let route: Vec<String> = received
                        .header("x-route")
                        .iter()
                        .map(|v| v.to_string())
                        .collect();
                    went.push((name, target, route));
                }
            }
            seen.push(went);
        }
        let uploads: Vec<u16> = ["/upload/a", "/api/v1/upload", "/other"]
            .iter()
            .map(|path| post_status(port, &d, path, 2000, false))
            .collect();
        for (_, recorder) in recorders {
            recorder.take();
        }
        (seen, uploads)
    };
    let nginx = start_nginx(&conf, &d, port);
    let theirs = probe(d.clone());
    stop_nginx(nginx, port);
    let proxy = start_proxy(&conf, d.join("proxy.log")).await;
    let ours = probe(d.clone());
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    for ((path, theirs), ours) in PATHS.iter().zip(&theirs.0).zip(&ours.0) {
        assert_eq!(ours, theirs, "{path}");
    }
    assert_eq!(ours.1, theirs.1, "uploads");
    // What nginx did, so that the comparison means something.
    let went = |i: usize| {
        theirs.0[i]
            .first()
            .map(|(name, _, route)| (*name, route.clone()))
    };
    assert_eq!(went(1), Some(("hub", vec!["hub".to_string()])));
    assert_eq!(went(3), Some(("app", vec!["static".to_string()])));
    assert_eq!(went(4), Some(("api", vec!["server".to_string()])));
    assert_eq!(went(6), Some(("api", vec!["server".to_string()])));
    assert_eq!(went(8), Some(("app", vec!["root".to_string()])));
    assert_eq!(theirs.1, [413, 200, 200]);
}

/// `proxy_pass` with a URI (`prefix_rewrite`, `upstream_uri`) and with a `set` constant: for
/// every path, the upstream that nginx sends it to gets the same request target from the
/// proxy reading the same file — the location's part replaced (prefix, `^~`, exact, `/`), the
/// whole target replaced where the URL has a variable (a regular expression location's groups
/// among them), and left as sent where it has no URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pass_uris_replace_paths_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let api = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        set $api "127.0.0.1:{api}";
        location / {{
            proxy_pass http://127.0.0.1:{app}/base/;
        }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{api}/;
        }}
        location /v1 {{
            proxy_pass http://127.0.0.1:{api}/version-one;
        }}
        location = /metrics {{
            proxy_pass http://127.0.0.1:{app}/actuator/prometheus;
        }}
        location ^~ /static/ {{
            proxy_pass http://127.0.0.1:{app}/assets/;
        }}
        location /same/ {{
            proxy_pass http://127.0.0.1:{app}/same/;
        }}
        location ~ ^/health {{
            proxy_pass http://$api/status;
        }}
        location ~ ^/echo {{
            proxy_pass http://$api/e$request_uri;
        }}
        location /var/ {{
            proxy_pass http://$api;
        }}
        location ~ ^/cap/(\w+)/(.*)$ {{
            proxy_pass http://127.0.0.1:{api}/c/$2/$1$is_args$args;
        }}
"#,
            app = app.address.port(),
            api = api.address.port(),
        ),
    );
    const PATHS: &[&str] = &[
        "/",
        "/x/y?q=1&r=2",
        "/api/users?id=2",
        "/api/",
        "/v1/a",
        "/v1x",
        "/metrics",
        "/metrics?name=a",
        "/static/a.css",
        "/static/deep/b.js?v=3",
        "/same/z",
        "/health",
        "/health/deep?x=1",
        "/echo/a?b=c",
        "/var/w?k=v",
        "/a%20b/c",
        "/cap/ab/x/y?z=1",
        "/cap/cd/",
    ];
    let probe = |d: &Path| {
        let recorders = [("app", &app), ("api", &api)];
        let mut seen = Vec::new();
        for path in PATHS {
            let status = answer(port, d, path).0;
            assert_eq!(status, 200, "{path}");
            let mut went = Vec::new();
            for (name, recorder) in recorders {
                for received in recorder.take() {
                    let target = received
                        .request_line()
                        .split(' ')
                        .nth(1)
                        .unwrap()
                        .to_string();
                    went.push((name, target));
                }
            }
            seen.push(went);
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for ((path, theirs), ours) in PATHS.iter().zip(&theirs).zip(&ours) {
        assert_eq!(ours, theirs, "{path}");
    }
    // What nginx did, so that the comparison means something.
    let went = |i: usize| {
        theirs[i]
            .first()
            .map(|(name, target)| (*name, target.as_str()))
    };
    assert_eq!(went(1), Some(("app", "/base/x/y?q=1&r=2")));
    assert_eq!(went(2), Some(("api", "/users?id=2")));
    assert_eq!(went(5), Some(("api", "/version-onex")));
    assert_eq!(went(7), Some(("app", "/actuator/prometheus?name=a")));
    assert_eq!(went(9), Some(("app", "/assets/deep/b.js?v=3")));
    assert_eq!(went(12), Some(("api", "/status")));
    assert_eq!(went(13), Some(("api", "/e/echo/a?b=c")));
    assert_eq!(went(14), Some(("api", "/var/w?k=v")));
    assert_eq!(went(16), Some(("api", "/c/x/y/ab?z=1")));
}

/// `rewrite` in the server and in locations (`last`, `break`, none, `redirect`, `permanent`,
/// a URL, groups, a query of its own, `?` that drops the request's, a loop, a `break` before
/// files): nginx and the proxy on one file give the same status and `Location` (a path made
/// absolute by both) and the same upstream gets the same target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_sends_requests_on_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    std::fs::create_dir_all(d.join("www/files")).unwrap();
    std::fs::write(d.join("www/files/page.html"), "the page\n").unwrap();
    let app = Recorder::start("").await;
    let api = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        rewrite ^/old/(.*)$ /new/$1 permanent;
        rewrite ^/legacy(.*)$ /api$1;
        rewrite ^/go$ https://$host/elsewhere?from=go redirect;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location ~ "^/static/[0-9a-fA-F]{{8}}/(.*)$" {{
            rewrite "^/static/[0-9a-fA-F]{{8}}/(.*)" /$1 last;
        }}
        location /api/ {{
            rewrite ^/api/v1/(.*)$ /api/v2/$1 break;
            proxy_pass http://127.0.0.1:{api};
        }}
        location /q/ {{
            rewrite ^/q/(.*)$ /search?term=$1 last;
        }}
        location /drop/ {{
            rewrite ^/drop/(.*)$ /plain/$1? last;
        }}
        location /loop/ {{
            rewrite ^ /loop/again last;
        }}
        location /files/ {{
            root {www};
            rewrite ^/files/(.*)\.htm$ /files/$1.html break;
        }}
"#,
            app = app.address.port(),
            api = api.address.port(),
            www = d.join("www").display(),
        ),
    );
    const PATHS: &[&str] = &[
        "/old/a?x=1",
        "/legacy/users",
        "/go?x=1",
        "/static/0123abcd/css/a.css?v=2",
        "/static/nothex/b.css",
        "/api/v1/items?id=1",
        "/api/v3/items",
        "/q/rust",
        "/drop/a?secret=1",
        "/loop/",
        "/files/page.htm",
        "/other?k=v",
    ];
    let probe = |d: &Path| {
        let recorders = [("app", &app), ("api", &api)];
        let mut seen = Vec::new();
        for path in PATHS {
            let (status, _, location, body) = answer(port, d, path);
            let body = if status == 200 { body } else { String::new() };
            let mut went = Vec::new();
            for (name, recorder) in recorders {
                for received in recorder.take() {
                    let target = received
                        .request_line()
                        .split(' ')
                        .nth(1)
                        .unwrap()
                        .to_string();
                    went.push((name, target));
                }
            }
            seen.push((status, location, body, went));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for ((path, theirs), ours) in PATHS.iter().zip(&theirs).zip(&ours) {
        assert_eq!(ours, theirs, "{path}");
    }
    // What nginx did, so that the comparison means something.
    let went = |i: usize| {
        theirs[i]
            .3
            .first()
            .map(|(name, target)| (*name, target.as_str()))
    };
    assert_eq!(
        (theirs[0].0, theirs[0].1.as_str()),
        (301, format!("https://localhost:{port}/new/a?x=1").as_str())
    );
    assert_eq!(went(1), Some(("api", "/api/users")));
    assert_eq!(
        (theirs[2].0, theirs[2].1.as_str()),
        (302, "https://localhost/elsewhere?from=go&x=1")
    );
    assert_eq!(went(3), Some(("app", "/css/a.css?v=2")));
    assert_eq!(went(5), Some(("api", "/api/v2/items?id=1")));
    assert_eq!(went(7), Some(("app", "/search?term=rust")));
    assert_eq!(went(8), Some(("app", "/plain/a")));
    assert_eq!(theirs[9].0, 500);
    assert_eq!((theirs[10].0, theirs[10].2.as_str()), (200, "the page\n"));
}

/// `limit_conn_zone` and `limit_conn` (`concurrency_limits`): with requests held in flight by
/// an upstream that never finishes its responses, nginx and the proxy on one file refuse the
/// same requests with the same status (the server's limit per address, inherited by locations;
/// a location's own limit for the whole server instead of it), and serve again once the held
/// clients are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limits_refuse_what_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let held = Recorder::start_with("", Answer::Unfinished).await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        server_name localhost;
        limit_conn addr 2;
        limit_conn_status 429;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /held/ {{
            proxy_pass http://127.0.0.1:{held};
        }}
        location /own/ {{
            proxy_pass http://127.0.0.1:{app};
            limit_conn all 1;
        }}
        location /ownheld/ {{
            proxy_pass http://127.0.0.1:{held};
            limit_conn all 1;
        }}
"#,
            app = app.address.port(),
            held = held.address.port(),
        ),
    );
    // `limit_conn_zone` belongs to the `http` level, before the server.
    let text = std::fs::read_to_string(&conf).unwrap().replacen(
        "    server {",
        "    limit_conn_zone $binary_remote_addr zone=addr:1m;\n    \
         limit_conn_zone $server_name zone=all:1m;\n    server {",
        1,
    );
    std::fs::write(&conf, text).unwrap();
    // A client whose request stays in flight until it is killed.
    let hold = |d: &Path, path: &str| {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--max-time", "30", "--cacert"])
            .arg(d.join("tls.crt"))
            .arg(format!("https://localhost:{port}{path}"))
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl")
    };
    let arrived = |count: usize| {
        let mut seen = 0;
        util::wait_until(Duration::from_secs(15), "held requests arrive", || {
            seen += held.take().len();
            seen >= count
        });
    };
    let probe = |d: &Path| {
        let mut statuses = Vec::new();
        let mut clients = vec![hold(d, "/held/1"), hold(d, "/held/2")];
        arrived(2);
        statuses.push(answer(port, d, "/").0);
        statuses.push(answer(port, d, "/own/").0);
        clients.push(hold(d, "/ownheld/"));
        arrived(1);
        statuses.push(answer(port, d, "/own/").0);
        statuses.push(answer(port, d, "/").0);
        for mut client in clients {
            client.kill().unwrap();
            client.wait().unwrap();
        }
        // Served again once the held requests are given up.
        let mut last = 0;
        util::wait_until(Duration::from_secs(15), "the limits free up", || {
            last = answer(port, d, "/own/").0;
            last == 200
        });
        statuses.push(last);
        statuses.push(answer(port, d, "/").0);
        app.take();
        statuses
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    assert_eq!(theirs, [429, 200, 429, 429, 200, 200]);
}

/// `add_header` beside `return`, in a location and in a location's `if` (the CORS preflight
/// idiom, with `$http_origin`): nginx and the proxy on one file send the same status and the
/// same added headers — only with the statuses nginx adds them to, or `always` — and a
/// preflight never reaches the app while other requests do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_header_beside_return_is_sent_as_nginx_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /api/ {{
            if ($request_method = OPTIONS) {{
                add_header Access-Control-Allow-Origin $http_origin;
                add_header Access-Control-Allow-Methods "GET, POST, OPTIONS";
                add_header Access-Control-Max-Age 1728000;
                add_header Content-Type "text/plain; charset=utf-8";
                add_header Content-Length 0;
                return 204;
            }}
            proxy_pass http://127.0.0.1:{app};
        }}
        location = /health {{
            access_log off;
            add_header X-Health yes;
            return 200 "healthy\n";
        }}
        location = /down {{
            add_header X-Down yes;
            add_header X-Always yes always;
            return 503;
        }}
"#,
            app = app.address.port(),
        ),
    );
    const NAMES: &[&str] = &[
        ":status",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-max-age",
        "content-type",
        "x-health",
        "x-down",
        "x-always",
    ];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for (path, method) in [
            ("/api/x", "OPTIONS"),
            ("/other", "OPTIONS"),
            ("/api/x", "GET"),
            ("/health", "GET"),
            ("/down", "GET"),
        ] {
            let fields = head_from(
                "127.0.0.1",
                port,
                d,
                path,
                &["Origin: https://web.example"],
                &["-X", method],
            );
            // An error without text: nginx sends its HTML page, the proxy no body.
            let error = field(&fields, ":status").starts_with(['4', '5']);
            let picked: Vec<(&str, String)> = NAMES
                .iter()
                .filter(|name| !(error && **name == "content-type"))
                .map(|name| (*name, field(&fields, name)))
                .collect();
            seen.push((path, method, picked, app.take().len()));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (theirs, ours) in theirs.iter().zip(&ours) {
        assert_eq!(ours, theirs);
    }
    // What nginx did, so that the comparison means something.
    let get = |i: usize, name: &str| {
        theirs[i]
            .2
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get(0, ":status"), "204");
    assert_eq!(get(0, "access-control-allow-origin"), "https://web.example");
    assert_eq!(theirs[0].3, 0, "a preflight is answered by the server");
    assert_eq!(theirs[1].3, 1, "outside /api/, OPTIONS is forwarded");
    assert_eq!(get(2, ":status"), "200");
    assert_eq!(theirs[2].3, 1);
    assert_eq!(get(3, "x-health"), "yes");
    assert_eq!(
        (get(4, ":status").as_str(), get(4, "x-down").as_str()),
        ("503", "")
    );
    assert_eq!(get(4, "x-always"), "yes");
}

/// `add_header` with the request's variables, the server's and a location's own, on
/// forwarded responses and files: nginx and the proxy on one file send the same values, and
/// `$request_id` is the same request's in the response and in the request the app got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_header_values_carry_request_variables_as_nginx_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    std::fs::create_dir_all(d.join("www/files")).unwrap();
    std::fs::write(d.join("www/files/a.txt"), "a\n").unwrap();
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        add_header X-Origin $http_origin always;
        add_header X-SNI $ssl_server_name always;
        add_header X-Seen "$host $request_method $uri$is_args$args";
        add_header X-Request-ID $request_id;
        location / {{
            proxy_pass http://127.0.0.1:{app};
            proxy_set_header X-Request-ID $request_id;
        }}
        location /own/ {{
            proxy_pass http://127.0.0.1:{app};
            add_header X-Route "own $arg_q";
        }}
        location /files/ {{
            root {www};
        }}
"#,
            app = app.address.port(),
            www = d.join("www").display(),
        ),
    );
    const NAMES: &[&str] = &[":status", "x-origin", "x-sni", "x-seen", "x-route"];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for path in ["/a/b?q=1", "/own/x?q=2", "/files/a.txt", "/files/none"] {
            let fields = head(port, d, path, &["Origin: https://web.example"]);
            let picked: Vec<(&str, String)> = NAMES
                .iter()
                .map(|name| (*name, field(&fields, name)))
                .collect();
            // The id the app got is the one the client got.
            let id = field(&fields, "x-request-id");
            let sent: Vec<String> = app
                .take()
                .iter()
                .flat_map(|r| r.header("x-request-id").into_iter().map(str::to_string))
                .collect();
            let same = !sent.is_empty() && sent.iter().all(|s| *s == id) && id.len() == 32;
            seen.push((path, picked, same));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    type Seen<'a> = (&'a str, Vec<(&'a str, String)>, bool);
    let get_in = |seen: &[Seen], i: usize, name: &str| {
        seen[i]
            .1
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for (i, (theirs_one, ours_one)) in theirs.iter().zip(&ours).enumerate() {
        if i == 1 {
            // A location's own add_header: nginx drops the server's there, the proxy keeps
            // them (documented, warned when the file is read).
            for name in [":status", "x-route"] {
                assert_eq!(get_in(&ours, i, name), get_in(&theirs, i, name), "{name}");
            }
            assert_eq!(get_in(&ours, i, "x-seen"), "localhost GET /own/x?q=2");
            assert_eq!(ours_one.2, theirs_one.2);
            continue;
        }
        // A 404 included: nginx adds only the `always` headers there, and so does the proxy.
        assert_eq!(ours_one, theirs_one);
    }
    // What nginx did, so that the comparison means something.
    let get = |i: usize, name: &str| get_in(&theirs, i, name);
    assert_eq!(get(0, "x-seen"), "localhost GET /a/b?q=1");
    assert!(theirs[0].2, "the app got the response's request id");
    assert_eq!(get(1, "x-route"), "own 2");
    assert_eq!(
        get(1, "x-seen"),
        "",
        "a location's own add_header replaces the server's"
    );
    assert_eq!(get(2, "x-seen"), "localhost GET /files/a.txt");
    assert_eq!(
        (get(3, ":status").as_str(), get(3, "x-seen").as_str()),
        ("404", "")
    );
    assert_eq!(get(3, "x-origin"), "https://web.example");
    assert_eq!(
        get(0, "x-sni"),
        "localhost",
        "a response header names the SNI"
    );
}

/// `proxy_hide_header` (`hide_response_headers`): the server's list, and a location's own that
/// replaces it; nginx and the proxy on one file pass the same headers of the app's responses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_hide_header_hides_what_nginx_hides() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("X-Powered-By: PHP/8\r\nX-Custom: 1\r\nX-Kept: yes\r\n").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        proxy_hide_header X-Powered-By;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{app};
            proxy_hide_header X-Custom;
        }}
"#,
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        ["/", "/api/x"]
            .iter()
            .map(|path| {
                let fields = head(port, d, path, &[]);
                let picked: Vec<String> = ["x-powered-by", "x-custom", "x-kept"]
                    .iter()
                    .map(|name| field(&fields, name))
                    .collect();
                app.take();
                picked
            })
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    assert_eq!(theirs[0], ["", "1", "yes"]);
    assert_eq!(theirs[1], ["PHP/8", "", "yes"]);
}

/// `limit_except` (`limit_except` of the proxy and routes): methods it lets through pass the
/// location's rules, the others its own (`GET` bringing `HEAD`); nginx and the proxy on one
/// file give each method from two client addresses the same status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_except_refuses_what_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location / {{
            proxy_pass http://127.0.0.1:{app};
            limit_except GET {{
                deny all;
            }}
        }}
        location /admin/ {{
            proxy_pass http://127.0.0.1:{app};
            limit_except GET POST {{
                allow 127.0.0.2;
                deny all;
            }}
        }}
        location /open/ {{
            proxy_pass http://127.0.0.1:{app};
        }}
"#,
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        let mut statuses = Vec::new();
        for from in ["127.0.0.1", "127.0.0.2"] {
            for (method, path) in [
                ("GET", "/"),
                ("HEAD", "/"),
                ("POST", "/"),
                ("DELETE", "/x"),
                ("POST", "/admin/a"),
                ("PUT", "/admin/a"),
                ("DELETE", "/admin/a"),
                ("PUT", "/open/a"),
            ] {
                let options: Vec<&str> = if method == "HEAD" {
                    vec!["-I"]
                } else {
                    vec!["-X", method]
                };
                let fields = head_from(from, port, d, path, &[], &options);
                statuses.push((from, method, path, field(&fields, ":status")));
            }
        }
        app.take();
        statuses
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    let status = |from: &str, method: &str, path: &str| {
        theirs
            .iter()
            .find(|(f, m, p, _)| *f == from && *m == method && *p == path)
            .map(|(_, _, _, s)| s.clone())
            .unwrap()
    };
    assert_eq!(status("127.0.0.1", "HEAD", "/"), "200");
    assert_eq!(status("127.0.0.1", "POST", "/"), "403");
    assert_eq!(status("127.0.0.1", "PUT", "/admin/a"), "403");
    assert_eq!(status("127.0.0.2", "PUT", "/admin/a"), "200");
    assert_eq!(status("127.0.0.1", "PUT", "/open/a"), "200");
}

/// An htpasswd file with a user per hash scheme, each with the password `secret`.
const HTPASSWD: &str = include_str!("../fixtures/htpasswd/every-scheme");

/// `auth_basic` and `auth_basic_user_file` (`basic_auth_realm`, `basic_auth_file`): every user
/// of every hash scheme, with the right and a wrong password and none, on the server's realm,
/// a location's own realm and a location with `auth_basic off`, gets the same status and
/// `WWW-Authenticate` from nginx and from the proxy on one file; the app sees the same requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_lets_in_whom_nginx_lets_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    util::write_file(&d, "htpasswd", HTPASSWD);
    util::write_file(&d, "admins", "plain:{PLAIN}secret\n");
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        auth_basic "Site";
        auth_basic_user_file {d}/htpasswd;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /admin/ {{
            proxy_pass http://127.0.0.1:{app};
            auth_basic "Admins";
            auth_basic_user_file {d}/admins;
        }}
        location /open/ {{
            proxy_pass http://127.0.0.1:{app};
            auth_basic off;
        }}
        location = /ping {{ return 204; }}
"#,
            d = d.display(),
            app = app.address.port(),
        ),
    );
    let users = [
        "apr", "md5", "sha256", "sha512", "bcrypt", "sha", "ssha", "plain", "nobody",
    ];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for path in ["/", "/admin/x", "/open/y", "/ping"] {
            let mut credentials: Vec<Option<String>> = vec![None];
            for user in users {
                credentials.push(Some(format!("{user}:secret")));
                credentials.push(Some(format!("{user}:wrong")));
            }
            for given in credentials {
                let (status, challenge) = auth_status(port, d, path, given.as_deref());
                seen.push((path, given, status, challenge));
            }
        }
        let forwarded: Vec<String> = app
            .take()
            .iter()
            .map(|r| {
                let target = r.request_line().split(' ').nth(1).unwrap_or_default();
                format!("{target} {:?}", r.header("authorization"))
            })
            .collect();
        (seen, forwarded)
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (theirs, ours) in theirs.0.iter().zip(&ours.0) {
        assert_eq!(ours, theirs);
    }
    assert_eq!(ours.1, theirs.1, "what reached the app");
    // What nginx did, so that the comparison means something.
    let status = |path: &str, given: Option<&str>| {
        theirs
            .0
            .iter()
            .find(|(p, g, _, _)| *p == path && g.as_deref() == given)
            .map(|(_, _, status, challenge)| (*status, challenge.clone()))
            .unwrap()
    };
    for user in &users[..8] {
        assert_eq!(
            status("/", Some(&format!("{user}:secret"))).0,
            200,
            "{user}"
        );
        assert_eq!(status("/", Some(&format!("{user}:wrong"))).0, 401, "{user}");
    }
    assert_eq!(status("/", None), (401, "Basic realm=\"Site\"".to_string()));
    assert_eq!(status("/admin/x", Some("apr:secret")).0, 401);
    assert_eq!(status("/admin/x", Some("plain:secret")).0, 200);
    assert_eq!(status("/admin/x", None).1, "Basic realm=\"Admins\"");
    assert_eq!(status("/open/y", None).0, 200);
    assert_eq!(status("/ping", None).0, 204);
}

/// The status and `WWW-Authenticate` of GET `path` with `user:password` (or none).
fn auth_status(port: u16, dir: &Path, path: &str, credentials: Option<&str>) -> (u16, String) {
    use base64::Engine as _;
    let authorization = credentials.map(|c| {
        format!(
            "Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode(c)
        )
    });
    let fields = head(port, dir, path, &Vec::from_iter(authorization.as_deref()));
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let status = field(":status")
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, field("www-authenticate").unwrap_or_default())
}

/// `proxy_cookie_flags` (`cookie_flags`): an app's `Set-Cookie` headers, in a location with
/// a rule for one cookie, one for every cookie, two rules one after the other, and `off`, come
/// out of nginx and of the proxy on one file byte for byte the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_flags_are_set_as_nginx_sets_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start(
        "Set-Cookie: session_id=abc; Path=/\r\n\
         Set-Cookie: session_id=x; Secure; SameSite=Strict; HttpOnly\r\n\
         Set-Cookie: other=1; path=/; SAMESITE=none\r\n\
         Set-Cookie: a=b\r\n\
         Set-Cookie: weird; ;x=y\r\n\
         Set-Cookie: session_id=q;path=/;secure\r\n\
         Set-Cookie: c=d; Max-Age=5; httponly ; samesite = Lax\r\n\
         Set-Cookie: SESSION=e; Domain=example.com; httponly\r\n",
    )
    .await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        proxy_cookie_flags session_id samesite=lax secure;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /every/ {{
            proxy_pass http://127.0.0.1:{app};
            proxy_cookie_flags ~ nosecure samesite=strict httponly;
        }}
        location /two/ {{
            proxy_pass http://127.0.0.1:{app};
            proxy_cookie_flags other nosamesite;
            proxy_cookie_flags ~(?i)^sess nohttponly samesite=none;
        }}
        location /none/ {{
            proxy_pass http://127.0.0.1:{app};
            proxy_cookie_flags off;
        }}
"#,
            app = app.address.port(),
        ),
    );
    const PATHS: [&str; 4] = ["/", "/every/", "/two/", "/none/"];
    let probe = |d: &Path| {
        PATHS
            .iter()
            .map(|path| {
                head(port, d, path, &[])
                    .into_iter()
                    .filter(|(name, _)| name == "set-cookie")
                    .map(|(_, value)| value)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for ((path, theirs), ours) in PATHS.iter().zip(&theirs).zip(&ours) {
        assert_eq!(ours, theirs, "{path}");
    }
    // What nginx did, so that the comparison means something.
    assert_eq!(theirs[0][0], "session_id=abc; Path=/; Secure; SameSite=Lax");
    assert_eq!(theirs[1][3], "a=b; HttpOnly; SameSite=Strict");
    assert_eq!(theirs[2][7], "SESSION=e; Domain=example.com; SameSite=None");
    assert_eq!(theirs[3][0], "session_id=abc; Path=/");
}

/// `$ssl_client_*` in `proxy_set_header` (mutual TLS): a client certificate whose subject needs
/// every kind of RFC 2253 escaping (a leading space, `;<>"`, a comma, a non-ASCII letter), and no
/// certificate at all, give the app the same subject, issuer, verification, serial, fingerprint
/// and escaped PEM from nginx and from the proxy on one file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_variables_reach_the_app_as_nginx_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let openssl = |words: &str, more: &[&str]| openssl_in(&d, words, more);
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        &format!("req -x509 {ec} -keyout ca.key -out ca.crt -days 1 -subj"),
        &["/CN=Client CA/O=Acme"],
    );
    openssl(
        &format!("req {ec} -keyout client.key -out client.csr -utf8 -subj"),
        &["/C=FR/ST=Île-de-France/O=Acme, Inc./OU=Web/CN= client #1;x<y>\"q\"/emailAddress=a@b.c"],
    );
    util::write_file(
        &d,
        "client.ext",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    openssl(
        "x509 -req -in client.csr -CA ca.crt -CAkey ca.key -set_serial 0x00A1B2 -days 1 \
         -extfile client.ext -out client.crt",
        &[],
    );
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        ssl_client_certificate {d}/ca.crt;
        ssl_verify_client optional;
        location / {{
            proxy_pass http://127.0.0.1:{app};
            proxy_set_header X-Subject $ssl_client_s_dn;
            proxy_set_header X-Issuer $ssl_client_i_dn;
            proxy_set_header X-Verify $ssl_client_verify;
            proxy_set_header X-Serial "serial=$ssl_client_serial";
            proxy_set_header X-Fingerprint $ssl_client_fingerprint;
            proxy_set_header X-Cert $ssl_client_escaped_cert;
        }}
"#,
            d = d.display(),
            app = app.address.port(),
        ),
    );
    const SHOWN: [&str; 6] = [
        "x-subject",
        "x-issuer",
        "x-verify",
        "x-serial",
        "x-fingerprint",
        "x-cert",
    ];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for with_cert in [true, false] {
            let mut command = Command::new("curl");
            command
                .args(["-sS", "-o", "/dev/null", "--max-time", "10", "--cacert"])
                .arg(d.join("tls.crt"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
            if with_cert {
                command
                    .arg("--cert")
                    .arg(d.join("client.crt"))
                    .arg("--key")
                    .arg(d.join("client.key"));
            }
            let output = command
                .arg(format!("https://localhost:{port}/"))
                .output()
                .expect("run curl");
            assert!(
                output.status.success(),
                "curl: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let received = app.take();
            assert_eq!(received.len(), 1);
            seen.push(
                SHOWN
                    .iter()
                    .map(|name| received[0].header(name).join("|"))
                    .collect::<Vec<_>>(),
            );
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (with, (theirs, ours)) in ["with", "without"].iter().zip(theirs.iter().zip(&ours)) {
        for ((name, theirs), ours) in SHOWN.iter().zip(theirs).zip(ours) {
            assert_eq!(ours, theirs, "{name}, {with} a certificate");
        }
    }
    // What nginx sent, so that the comparison means something.
    assert_eq!(
        theirs[0][0],
        r#"emailAddress=a@b.c,CN=\ client #1\;x\<y\>\"q\",OU=Web,O=Acme\, Inc.,ST=\C3\8Ele-de-France,C=FR"#
    );
    assert_eq!(theirs[0][2], "SUCCESS");
    assert_eq!(theirs[0][3], "serial=A1B2");
    assert_eq!(theirs[1][2], "NONE");
}

/// `limit_req_zone` / `limit_req` / `limit_req_status` (`rate_limit_zones`, `rate_limits`,
/// `rate_limit_status`): a run of requests to the server's limit with a burst, a location's own
/// limit and status, two limits on one location, and a location inheriting the server's, gets the
/// same statuses from nginx and from the proxy on one file (at one request a minute, the run's
/// own pace changes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_what_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        limit_req zone=site burst=2 nodelay;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /strict/ {{
            proxy_pass http://127.0.0.1:{app};
            limit_req zone=strict;
            limit_req_status 429;
        }}
        location /both/ {{
            proxy_pass http://127.0.0.1:{app};
            limit_req zone=strict;
            limit_req zone=both burst=5 nodelay;
        }}
        location /inherits/ {{
            proxy_pass http://127.0.0.1:{app};
            limit_req_status 429;
        }}
"#,
            app = app.address.port(),
        ),
    );
    // `limit_req_zone` belongs to the `http` level, before the server.
    let text = std::fs::read_to_string(&conf).unwrap().replacen(
        "    server {",
        "    limit_req_zone $binary_remote_addr zone=site:1m rate=1r/m;\n    \
         limit_req_zone $binary_remote_addr zone=strict:1m rate=1r/m;\n    \
         limit_req_zone $binary_remote_addr zone=both:1m rate=1r/m;\n    server {",
        1,
    );
    std::fs::write(&conf, text).unwrap();
    let paths = [
        "/",
        "/",
        "/",
        "/",
        "/",
        "/strict/",
        "/strict/",
        "/both/",
        "/both/",
        "/inherits/",
    ];
    let probe = |d: &Path| {
        paths
            .iter()
            .map(|path| auth_status(port, d, path, None).0)
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs, "{paths:?}");
    // What nginx did, so that the comparison means something: the burst of two after the first,
    // then refusals; the strict zone's own status; /both/ refused by the strict zone it shares
    // with /strict/; /inherits/ has the server's limit (with its own status), having no
    // limit_req of its own.
    assert_eq!(theirs, [200, 200, 200, 503, 503, 200, 429, 503, 503, 429]);
}

/// `allow` and `deny` (`access_rules`): from two client addresses, paths under the server's
/// rules, a location's own (one refusing an address its next rule allows), `allow all`, a
/// location that denies everyone (a PCRE look-ahead, nginxconfig.io's dot-file rule), rules
/// beside `auth_basic` (the address is checked first) and beside `return` (which answers
/// first): the same statuses from nginx and from the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_refuse_whom_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    util::write_file(&d, "users", "plain:{PLAIN}secret\n");
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        allow 127.0.0.2;
        deny all;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /open/ {{
            proxy_pass http://127.0.0.1:{app};
            allow all;
        }}
        location /local/ {{
            proxy_pass http://127.0.0.1:{app};
            deny 127.0.0.2;
            allow 127.0.0.0/8;
            deny all;
        }}
        location ~ /\.(?!well-known) {{
            deny all;
        }}
        location /auth/ {{
            proxy_pass http://127.0.0.1:{app};
            allow 127.0.0.1;
            deny all;
            auth_basic "Site";
            auth_basic_user_file {d}/users;
        }}
        location = /ping {{
            deny all;
            return 204;
        }}
"#,
            d = d.display(),
            app = app.address.port(),
        ),
    );
    let paths = [
        "/",
        "/open/a",
        "/local/b",
        "/.git/config",
        "/.well-known/c",
        "/open/.env",
        "/auth/d",
        "/ping",
    ];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for from in ["127.0.0.1", "127.0.0.2"] {
            for path in paths {
                let status = status_from(from, port, d, path, &[]);
                seen.push(format!("{from} {path} {status}"));
            }
        }
        seen
    };
    let nginx = start_nginx(&conf, &d, port);
    let theirs = probe(&d);
    stop_nginx(nginx, port);
    let proxy = start_proxy(&conf, d.join("proxy.log")).await;
    let ours = probe(&d);
    let forbidden = proxy.metric("pki_sidecar_proxy_client_errors_total{kind=\"forbidden\"}");
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    let expected: Vec<String> = [
        "127.0.0.1 / 403",
        "127.0.0.1 /open/a 200",
        "127.0.0.1 /local/b 200",
        "127.0.0.1 /.git/config 403",
        "127.0.0.1 /.well-known/c 403",
        "127.0.0.1 /open/.env 403",
        "127.0.0.1 /auth/d 401",
        "127.0.0.1 /ping 204",
        "127.0.0.2 / 200",
        "127.0.0.2 /open/a 200",
        "127.0.0.2 /local/b 403",
        "127.0.0.2 /.git/config 403",
        "127.0.0.2 /.well-known/c 200",
        "127.0.0.2 /open/.env 403",
        "127.0.0.2 /auth/d 403",
        "127.0.0.2 /ping 204",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(theirs, expected);
    assert_eq!(forbidden, 8.0, "each 403 counted");
}

/// A location is chosen by the path as nginx reads it (decoded, `.`, `..` and repeated slashes
/// resolved), so that an escaped or doubled path meets the access rules of the location it
/// names (`/%61dmin` is `/admin`, behind `auth_basic`; `//internal/x` is denied); one nginx
/// refuses (a `..` above the top, a bad escape, an escaped NUL) is refused by both. The same
/// statuses from nginx and from the proxy, sent with curl's `--path-as-is`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_and_dotted_paths_meet_the_locations_nginx_chooses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    util::write_file(&d, "users", "plain:{PLAIN}secret\n");
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /admin {{
            proxy_pass http://127.0.0.1:{app};
            auth_basic "Admin";
            auth_basic_user_file {d}/users;
        }}
        location /internal/ {{
            deny all;
        }}
        location ~ /\.(?!well-known) {{
            deny all;
        }}
"#,
            d = d.display(),
            app = app.address.port(),
        ),
    );
    let paths = [
        "/admin",
        "/%61dmin",
        "//admin",
        "/x/../admin",
        "/./admin",
        "/internal/x",
        "//internal/x",
        "/%69nternal/x",
        "/internal%2Fx",
        "/.env",
        "/%2eenv",
        "/x//.git/config",
        "/.well-known/a",
        "/open/a",
        "/open//a",
        "/open/%7Ea",
        "/../etc/passwd",
        "/..",
        "/%2e%2e/x",
        "/a%00b",
        "/a%zz",
        "/a%2",
    ];
    let probe = |d: &Path| {
        paths
            .iter()
            .map(|path| {
                let status = status_from("127.0.0.1", port, d, path, &["--path-as-is"]);
                format!("{path} {status}")
            })
            .collect::<Vec<_>>()
    };
    let nginx = start_nginx(&conf, &d, port);
    let theirs = probe(&d);
    stop_nginx(nginx, port);
    let proxy = start_proxy(&conf, d.join("proxy.log")).await;
    let ours = probe(&d);
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(ours, theirs, "{log}");
    // What nginx did, so that the comparison means something.
    let expected: Vec<String> = [
        "/admin 401",
        "/%61dmin 401",
        "//admin 401",
        "/x/../admin 401",
        "/./admin 401",
        "/internal/x 403",
        "//internal/x 403",
        "/%69nternal/x 403",
        "/internal%2Fx 403",
        "/.env 403",
        "/%2eenv 403",
        "/x//.git/config 403",
        "/.well-known/a 200",
        "/open/a 200",
        "/open//a 200",
        "/open/%7Ea 200",
        "/../etc/passwd 400",
        "/.. 400",
        "/%2e%2e/x 400",
        "/a%00b 400",
        "/a%zz 400",
        "/a%2 400",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(theirs, expected);
}

/// Locations that serve files (`root`, `alias`, inherited `root`, `index`, `types`,
/// `default_type`, `charset`): the same statuses and the same `Content-Type`, `Content-Length`,
/// `Content-Range`, `Accept-Ranges`, `ETag`, `Last-Modified` and `Location` from nginx and from
/// the proxy for index files, a directory without its slash (with a query), a directory
/// without an index, missing files, a FIFO, escaped and `..` paths, `HEAD`, `POST`, one byte
/// range (suffix, open, past the end), `If-None-Match`, `If-Modified-Since` and `If-Range`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_as_nginx_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    for sub in ["static/sub", "static/empty"] {
        std::fs::create_dir_all(www.join(sub)).unwrap();
    }
    util::write_file(&www, "static/index.html", "<p>index</p>\n");
    util::write_file(&www, "static/a.CSS", "body { color: red }\n");
    util::write_file(&www, "static/sub/index.html", "<p>sub</p>\n");
    util::write_file(&www, "static/notes.txt", "plain text\n");
    util::write_file(&www, "static/data.bin", &"0123456789".repeat(100));
    // Several of the proxy's 64 KiB reads.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(www.join("static/big.bin"), &big).unwrap();
    util::write_file(&d, "security.txt", "Contact: mailto:security@example.com\n");
    nix::unistd::mkfifo(&www.join("static/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        types {{
            text/html html;
            text/css css;
            text/plain txt;
        }}
        default_type application/octet-stream;
        charset utf-8;
        root {www};
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /static/ {{
        }}
        location /files/ {{
            alias {www}/static/;
            index notes.txt;
        }}
        location = /security.txt {{
            alias {d}/security.txt;
        }}
        location ~* \.bin$ {{
            default_type application/x-data;
        }}
"#,
            www = www.display(),
            d = d.display(),
            app = app.address.port(),
        ),
    );
    // Path, header lines, curl options.
    let requests: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("/static/", vec![], vec![]),
        ("/static/a.CSS", vec![], vec![]),
        ("/static/a%2ECSS", vec![], vec![]),
        ("/static/notes.txt", vec![], vec![]),
        ("/static/sub", vec![], vec![]),
        ("/static/sub?x=1", vec![], vec![]),
        ("/static/sub/", vec![], vec![]),
        ("/static/empty/", vec![], vec![]),
        ("/static/nope", vec![], vec![]),
        ("/static/nope/", vec![], vec![]),
        ("/static/fifo", vec![], vec![]),
        ("/static//sub/./", vec![], vec![]),
        (
            "/static/%2e%2e/%2e%2e/etc/passwd",
            vec![],
            vec!["--path-as-is"],
        ),
        ("/files/", vec![], vec![]),
        ("/files/a.CSS", vec![], vec![]),
        ("/security.txt", vec![], vec![]),
        ("/static/data.bin", vec![], vec![]),
        ("/static/data.bin", vec!["Range: bytes=10-19"], vec![]),
        ("/static/data.bin", vec!["Range: bytes=-5"], vec![]),
        ("/static/data.bin", vec!["Range: bytes=990-"], vec![]),
        ("/static/data.bin", vec!["Range: bytes=2000-"], vec![]),
        ("/static/data.bin", vec!["Range: bytes=x"], vec![]),
        ("/static/a.CSS", vec![], vec!["-I"]),
        ("/static/a.CSS", vec![], vec!["-X", "POST"]),
        ("/static/nope", vec![], vec!["-X", "POST"]),
        ("/static/a.CSS", vec![], vec!["-X", "DELETE"]),
    ];
    let etag_and_date = |d: &Path| {
        let fields = head(port, d, "/static/data.bin", &[]);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .expect(name)
        };
        (field("etag"), field("last-modified"))
    };
    let probe = |d: &Path| {
        let (etag, date) = etag_and_date(d);
        let conditional = [
            format!("If-None-Match: {etag}"),
            format!("If-None-Match: \"other\", W/{etag}"),
            format!("If-Modified-Since: {date}"),
            "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT".to_string(),
            format!("If-Range: {etag}\r\nRange: bytes=0-4"),
            "If-Range: \"other\"\r\nRange: bytes=0-4".to_string(),
            "If-Match: \"other\"".to_string(),
            "If-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT".to_string(),
        ];
        let mut seen = Vec::new();
        let mut ask = |path: &str, lines: &[&str], options: &[&str]| {
            let fields = head_from("127.0.0.1", port, d, path, lines, options);
            let status = fields[0].1.clone();
            let mut kept: Vec<String> = fields
                .iter()
                .skip(1)
                .filter(|(name, _)| {
                    matches!(
                        name.as_str(),
                        "etag" | "last-modified" | "location" | "content-range" | "accept-ranges"
                    ) || (matches!(name.as_str(), "content-type" | "content-length")
                        && matches!(status.as_str(), "200" | "206"))
                })
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            // Header order is not compared.
            kept.sort();
            seen.push(format!("{path} {lines:?} {options:?} -> {status} {kept:?}"));
        };
        for (path, lines, options) in &requests {
            ask(path, lines, options);
        }
        for line in &conditional {
            let lines: Vec<&str> = line.split("\r\n").collect();
            ask("/static/data.bin", &lines, &[]);
        }
        // The bytes themselves: a whole file over several of the proxy's reads, and a range
        // across two.
        let body = |range: Option<&str>| {
            let mut curl = Command::new("curl");
            curl.args(["-sS", "--max-time", "10", "--cacert"])
                .arg(d.join("tls.crt"))
                .arg(format!("https://localhost:{port}/static/big.bin"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
            if let Some(range) = range {
                curl.args(["-H", range]);
            }
            curl.output().expect("run curl").stdout
        };
        seen.push(format!("whole file: {}", body(None) == big));
        seen.push(format!(
            "range across reads: {}",
            body(Some("Range: bytes=65000-140000")) == big[65000..=140000]
        ));
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    let differ: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(ours, theirs)| ours != theirs)
        .map(|(ours, theirs)| format!("proxy: {ours}\nnginx: {theirs}"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(ours.len(), theirs.len());
    // What nginx did, so that the comparison means something.
    let statuses: Vec<&str> = theirs
        .iter()
        .map(|line| {
            line.split(" -> ")
                .nth(1)
                .unwrap_or_default()
                .split(' ')
                .next()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "200", "200", "200", "200", "301", "301", "200", "403", "404", "404", "404", "200",
            "400", "200", "200", "200", "200", "206", "206", "206", "416", "416", "200", "405",
            "404", "405", "304", "304", "304", "200", "206", "200", "412", "412", "", ""
        ]
    );
    assert_eq!(
        theirs[theirs.len() - 2..],
        ["whole file: true", "range across reads: true"]
    );
}

/// A server without `location /` (nginx serves its `root` where no location takes a request)
/// and one whose `location /` serves files: the same statuses, types and lengths from nginx
/// and from the proxy, the other location still forwarded to the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_location_slash_serves_its_root_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    std::fs::create_dir_all(www.join("docs")).unwrap();
    util::write_file(&www, "index.html", "<p>home</p>\n");
    util::write_file(&www, "docs/guide.html", "<p>guide</p>\n");
    let app = Recorder::start("").await;
    let port = util::free_port();
    for slash in [
        "",
        "        location / {\n            index guide.html index.html;\n        }\n",
    ] {
        let conf = tls_server(
            &d,
            port,
            &format!(
                "        root {www};\n{slash}        location /api/ {{\n            proxy_pass \
                 http://127.0.0.1:{app};\n        }}\n",
                www = www.display(),
                app = app.address.port(),
            ),
        );
        let probe = |d: &Path| {
            [
                "/",
                "/docs/",
                "/docs",
                "/docs/guide.html",
                "/nope",
                "/api/x",
            ]
            .iter()
            .map(|path| {
                let fields = head(port, d, path, &[]);
                let field = |name: &str| field(&fields, name);
                let status = field(":status");
                let length = if status == "200" && *path != "/api/x" {
                    field("content-length")
                } else {
                    String::new()
                };
                format!("{path} {status} {length} {}", field("location"))
            })
            .collect::<Vec<_>>()
        };
        let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
        assert_eq!(ours, theirs, "{slash:?}");
        let statuses: Vec<&str> = theirs
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "200",
                if slash.is_empty() { "403" } else { "200" },
                "301",
                "200",
                "404",
                "200"
            ],
            "{slash:?}: {theirs:?}"
        );
    }
}

/// A server with two `listen ... ssl` ports: both serve, a directory's redirect names the
/// port the client reached, and `$server_port` is that port at the app, from nginx and from the
/// proxy alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listen_of_the_server_serves_as_nginx_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    std::fs::create_dir_all(www.join("docs")).unwrap();
    util::write_file(&www, "docs/index.html", "<p>docs</p>\n");
    let app = Recorder::start("").await;
    let (port, other) = (util::free_port(), util::free_port());
    let conf = tls_server(
        &d,
        port,
        &format!(
            "        listen 127.0.0.1:{other} ssl;\n        root {www};\n        location /api/ \
             {{\n            proxy_pass http://127.0.0.1:{app};\n            proxy_set_header \
             Host $host;\n            proxy_set_header X-Port $server_port;\n        }}\n",
            www = www.display(),
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for listener in [port, other] {
            for path in ["/docs", "/docs/", "/api/x"] {
                let fields = head(listener, d, path, &[]);
                let location = field(&fields, "location").replace(&listener.to_string(), "PORT");
                seen.push(format!("{path} {} {location}", field(&fields, ":status")));
            }
            let received = app.take();
            assert_eq!(received.len(), 1, "{received:?}");
            seen.push(format!(
                "app: {:?}",
                received[0]
                    .header("x-port")
                    .iter()
                    .map(|p| p.replace(&listener.to_string(), "PORT"))
                    .collect::<Vec<_>>()
            ));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    let expected: Vec<String> = [
        "/docs 301 https://localhost:PORT/docs/",
        "/docs/ 200 ",
        "/api/x 200 ",
        "app: [\"PORT\"]",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(theirs, [expected.clone(), expected].concat());
}

/// One request to `name` (its SNI, resolved to 127.0.0.1) with `host` as the Host header over
/// HTTP/1.1 or HTTP/2: curl's exit code, the status (000 without one) and whether curl said
/// the server refused the handshake with `unrecognized_name`.
fn by_name(port: u16, dir: &Path, name: &str, host: &str, http2: bool) -> String {
    let output = Command::new("curl")
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
        // The certificate names localhost only: what is compared is what the server does.
        .arg("--insecure")
        .arg(if http2 { "--http2" } else { "--http1.1" })
        .args(["-H", &format!("Host: {host}")])
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}/x"))
        .output()
        .expect("run curl");
    let stderr = String::from_utf8_lossy(&output.stderr).to_ascii_lowercase();
    format!(
        "{name} Host: {host} {} -> exit {} status {}{}",
        if http2 { "h2" } else { "h1" },
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim(),
        if stderr.contains("unrecognized name") {
            " (unrecognized name)"
        } else {
            ""
        },
    )
}

/// A named server behind a default server that refuses every other host, three ways: `return
/// 444` (the connection closed, an HTTP/2 stream reset), `return 421`, and
/// `ssl_reject_handshake on` (no handshake for another name, or none): the same outcomes from
/// nginx and from the proxy, for exact, wildcard and regex names, over HTTP/1.1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_server_refuses_other_hosts_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let shown = d.display();
    for default in [
        "return 444;",
        "return 421;",
        "ssl_reject_handshake on; return 444;",
        "ssl_reject_handshake on;",
    ] {
        let conf = util::write_file(
            &d,
            "nginx.conf",
            &format!(
                "{preamble}    server {{\n        listen 127.0.0.1:{port} ssl http2 default_server;\n        \
                 server_name _;\n        ssl_certificate {shown}/tls.crt;\n        \
                 ssl_certificate_key {shown}/tls.key;\n        {default}\n    }}\n    server \
                 {{\n        listen 127.0.0.1:{port} ssl http2;\n        server_name localhost \
                 *.apps.example.com ~^api[0-9]+\\.example\\.com$;\n        ssl_certificate \
                 {shown}/tls.crt;\n        ssl_certificate_key {shown}/tls.key;\n        location \
                 / {{\n            proxy_pass http://127.0.0.1:{app};\n        }}\n    }}\n}}\n",
                preamble = nginx_head(&d),
                app = app.address.port(),
            ),
        );
        let probe = |d: &Path| {
            let mut seen = Vec::new();
            for http2 in [false, true] {
                for (name, host) in [
                    ("localhost", "localhost"),
                    ("localhost", "LocalHost:443"),
                    ("x.apps.example.com", "x.apps.example.com"),
                    ("localhost", "api7.example.com"),
                    ("localhost", "other.example.com"),
                    ("localhost", "apps.example.com"),
                    ("other.example.com", "localhost"),
                    ("127.0.0.1", "localhost"),
                ] {
                    seen.push(by_name(port, d, name, host, http2));
                }
            }
            let forwarded = app.take().len();
            seen.push(format!("forwarded: {forwarded}"));
            seen
        };
        let (mut theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
        if default == "ssl_reject_handshake on;" {
            // The one difference, warned about when the file is read: a known SNI with
            // another Host reaches nginx's default server, which serves its root (404 for
            // /x); the proxy answers 421.
            for line in &mut theirs {
                *line = line.replace("status 404", "status 421");
            }
        }
        assert_eq!(ours, theirs, "{default}");
        let refused = |line: &String| line.contains(" -> ") && !line.contains("status 200");
        assert_eq!(
            theirs.iter().filter(|l| refused(l)).count(),
            if default.starts_with("ssl") { 8 } else { 4 },
            "{default}: {theirs:#?}"
        );
    }
}

/// nginx's request variables in `proxy_set_header` (`$request_method`, `$request_uri`, `$uri`,
/// `$args`, `$is_args`, `$query_string`, `$http_NAME`, `$server_name`, `$ssl_protocol`,
/// `$ssl_server_name`): the same values at the app from nginx and from the proxy, over HTTP/1.1
/// and HTTP/2; `$request_id` and `$remote_port` of the same form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_variables_reach_the_app_as_nginx_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let preamble = nginx_head(&d);
    let shown = d.display();
    let conf = util::write_file(
        &d,
        "nginx.conf",
        &format!(
            "{preamble}    server {{\n        listen 127.0.0.1:{port} ssl http2;\n        \
             server_name localhost app.example.com;\n        ssl_certificate {shown}/tls.crt;\n        \
             ssl_certificate_key {shown}/tls.key;\n        ssl_protocols TLSv1.2 TLSv1.3;\n        \
             location / {{\n            \
             proxy_pass http://127.0.0.1:{app};\n            proxy_set_header Host $host;\n            \
             proxy_set_header X-Method $request_method;\n            proxy_set_header \
             X-Original-URI $request_uri;\n            proxy_set_header X-Path \
             \"$uri$is_args$args|$query_string\";\n            proxy_set_header X-Trace \
             \"[$http_x_trace][$http_x_absent][$http_host]\";\n            proxy_set_header \
             X-Server $server_name;\n            proxy_set_header X-TLS \"$ssl_protocol \
             $ssl_server_name\";\n            proxy_set_header X-Request-ID $request_id;\n            \
             proxy_set_header X-Remote-Port $remote_port;\n            proxy_set_header \
             X-Forwarded-For $proxy_add_x_forwarded_for;\n            proxy_set_header \
             X-Forwarded-Host $host;\n        }}\n    }}\n}}\n",
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for (version, path) in [
            ("--http1.1", "/a/./b/../c%20d?x=1&y"),
            ("--http2", "/plain"),
            ("--http1.1", "/q?"),
        ] {
            let output = Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "10",
                    "--path-as-is",
                    version,
                ])
                .args(["-X", "PATCH", "-H", "X-Trace: one"])
                .args(["-H", "X-Forwarded-For: 203.0.113.9"])
                .arg("--cacert")
                .arg(d.join("tls.crt"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .arg(format!("https://localhost:{port}{path}"))
                .output()
                .expect("run curl");
            assert!(output.status.success(), "{output:?}");
            let received = app.take();
            assert_eq!(received.len(), 1);
            let header = |name: &str| received[0].header(name).join(" / ");
            for name in [
                "host",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-method",
                "x-original-uri",
                "x-path",
                "x-trace",
                "x-server",
                "x-tls",
            ] {
                seen.push(format!("{path} {name}: {}", header(name)));
            }
            let id = header("x-request-id");
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id}"
            );
            assert!(header("x-remote-port").parse::<u16>().is_ok());
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    assert!(
        theirs.contains(&"/a/./b/../c%20d?x=1&y x-path: /a/c d?x=1&y|x=1&y".to_string()),
        "{theirs:#?}"
    );
    assert!(
        theirs.contains(&"/plain host: localhost".to_string()),
        "$host: the name without its port, over HTTP/2 too: {theirs:#?}"
    );
    assert!(
        theirs.contains(&"/plain x-forwarded-for: 203.0.113.9, 127.0.0.1".to_string()),
        "$proxy_add_x_forwarded_for: the client's list, then the peer: {theirs:#?}"
    );
}

/// One GET (or HEAD) of `path` with the header lines `extra`, as `curl` gets it (no decoding):
/// the status, the headers gzip touches and the body, gunzipped when it came compressed.
fn gzip_probe(port: u16, dir: &Path, path: &str, extra: &[&str], head: bool) -> String {
    let (body, head_file) = (dir.join("gzip-body"), dir.join("gzip-head"));
    let _ = std::fs::remove_file(&body);
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-D"])
        .arg(&head_file)
        .arg("-o")
        .arg(&body)
        .args(["--max-time", "10", "--cacert"])
        .arg(dir.join("tls.crt"))
        .args(extra.iter().flat_map(|line| ["-H", line]))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if head {
        command.arg("-I");
    }
    let output = command
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "{path} {extra:?} head={head}: {output:?}"
    );
    let text = std::fs::read_to_string(&head_file)
        .unwrap()
        .to_ascii_lowercase();
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .map(|v| v.trim().to_string())
    };
    let encoding = field("content-encoding");
    // `-I` writes the head where the body would go.
    let raw = if head {
        Vec::new()
    } else {
        std::fs::read(&body).unwrap_or_default()
    };
    let plain = if encoding.as_deref() == Some("gzip") && !raw.is_empty() {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut plain)
            .unwrap_or_else(|e| panic!("{path} {extra:?}: {e}: {text} {raw:?}"));
        plain
    } else {
        raw
    };
    format!(
        "{path} {extra:?} head={head}: {} encoding={encoding:?} vary={:?} length={} \
         accept-ranges={} etag-weak={:?} body={} bytes, sha {:x}",
        text.split(' ').nth(1).unwrap_or_default(),
        field("vary"),
        field("content-length").is_some(),
        field("accept-ranges").is_some(),
        field("etag").map(|e| e.starts_with("w/")),
        plain.len(),
        plain
            .iter()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b))),
    )
}

/// `gzip on` with `gzip_types`, `gzip_min_length` and `gzip_vary`: for files of each kind and
/// an app's short response, with and without `Accept-Encoding: gzip`, with `q=0`, through
/// another proxy (`Via`, `gzip_proxied` off), with a `Range` (honoured only where nothing is
/// compressed), and HEAD: the same statuses, `Content-Encoding`,
/// `Vary`, `Content-Length`, `Accept-Ranges` and weak `ETag` from nginx and from the proxy,
/// and the same bytes once gunzipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_compresses_what_nginx_compresses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let text =
        |n: usize| -> String { (0..n).map(|i| format!("line {i} of some text\n")).collect() };
    util::write_file(
        &www,
        "big.json",
        &format!("[\"{}\"]", text(200).replace('\n', " ")),
    );
    util::write_file(&www, "small.json", "[1,2,3]");
    util::write_file(&www, "page.html", &format!("<pre>{}</pre>", text(300)));
    util::write_file(&www, "style.css", &text(100));
    util::write_file(&www, "notes.txt", &text(100));
    let app = Recorder::start("Content-Type: application/json\r\n").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            "        root {www};\n        types {{ text/html html; application/json json; \
             text/css css; text/plain txt; }}\n        gzip on;\n        gzip_types \
             application/json text/css;\n        gzip_min_length 100;\n        gzip_vary \
             on;\n        location /api/ {{\n            proxy_pass \
             http://127.0.0.1:{app};\n        }}\n",
            www = www.display(),
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for path in [
            "/big.json",
            "/small.json",
            "/page.html",
            "/style.css",
            "/notes.txt",
            "/api/x",
        ] {
            for extra in [
                &["Accept-Encoding: gzip"][..],
                &[],
                &["Accept-Encoding: br, gzip;q=0"],
                &["Accept-Encoding: gzip, deflate", "Via: 1.1 cdn"],
                &["Accept-Encoding: gzip", "Range: bytes=5-40"],
            ] {
                seen.push(gzip_probe(port, d, path, extra, false));
            }
            seen.push(gzip_probe(port, d, path, &["Accept-Encoding: gzip"], true));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    let compressed = theirs
        .iter()
        .filter(|l| l.contains("encoding=Some(\"gzip\")"))
        .count();
    // big.json, page.html and style.css, by GET, by HEAD and with a Range (ignored then).
    assert_eq!(compressed, 9, "{theirs:#?}");
}

/// nginx's `if (...) { return ...; }`, in the server (before any location) and in a location:
/// `=`, `!=`, `~`, `~*`, `!~` and a variable alone, on the method, a header, the User-Agent and
/// a query argument, and redirects whose URL has the request's variables: the same statuses
/// and `Location`s from nginx and from the proxy (and the same text where `return` gives one),
/// and only what no condition answers reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_return_answers_as_nginx_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            "        if ($request_method !~ ^(GET|HEAD|POST|OPTIONS)$) {{ return 405; }}\n        \
             if ($http_x_block) {{ return 403 \"blocked\\n\"; }}\n        if ($http_x_old) {{ \
             return 301 https://$host:$server_port/new$request_uri; }}\n        if ($arg_go) {{ \
             return $scheme://example.com/$arg_go; }}\n        location / {{\n            \
             proxy_pass http://127.0.0.1:{app};\n        }}\n        location /api/ {{\n            \
             if ($request_method = OPTIONS) {{ return 204; }}\n            if ( $http_user_agent \
             ~* \"curl|wget\" ) {{ return 403; }}\n            if ($arg_x != \"\") {{ return 418; }}\n            \
             proxy_pass http://127.0.0.1:{app};\n        }}\n",
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for (method, path, headers) in [
            ("GET", "/", &[][..]),
            ("DELETE", "/", &[]),
            ("PUT", "/api/x", &[]),
            ("OPTIONS", "/", &[]),
            ("OPTIONS", "/api/x", &[]),
            ("GET", "/", &["X-Block: 1"]),
            ("GET", "/", &["X-Block: 0"]),
            ("GET", "/api/x", &["User-Agent: Wget/1.21"]),
            ("GET", "/api/x", &["User-Agent: Mozilla/5.0"]),
            ("POST", "/api/x", &["User-Agent: curl/8"]),
            ("GET", "/api/x?X=1", &[]),
            ("GET", "/api/x?y=1&x=", &[]),
            ("GET", "/a/b?c=d", &["X-Old: 1"]),
            ("GET", "/?go=there", &[]),
        ] {
            let output = Command::new("curl")
                .args(["-sS", "-o", "-", "--max-time", "10"])
                .args(["-w", "\n%{redirect_url} %{http_code}"])
                .args(["-X", method, "-A", "Mozilla/5.0"])
                .args(headers.iter().flat_map(|h| ["-H", *h]))
                .arg("--cacert")
                .arg(d.join("tls.crt"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .arg(format!("https://localhost:{port}{path}"))
                .output()
                .expect("run curl");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let (body, end) = text.rsplit_once('\n').unwrap_or(("", ""));
            let (location, status) = end.rsplit_once(' ').unwrap_or(("", ""));
            let body = if body.contains("blocked") { body } else { "" };
            seen.push(format!(
                "{method} {path} {headers:?}: {status} {body:?} {location}"
            ));
        }
        let forwarded: Vec<String> = app
            .take()
            .iter()
            // nginx speaks HTTP/1.0 to the app unless told otherwise; the proxy, 1.1.
            .map(|r| r.request_line().rsplit_once(' ').unwrap().0.to_string())
            .collect();
        seen.push(format!("forwarded: {forwarded:?}"));
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    for redirect in [
        format!(": 301 \"\" https://localhost:{port}/new/a/b?c=d"),
        ": 302 \"\" https://example.com/there".to_string(),
    ] {
        assert!(
            theirs.iter().any(|line| line.ends_with(&redirect)),
            "{redirect}: {theirs:#?}"
        );
    }
    assert_eq!(
        theirs.last().unwrap(),
        "forwarded: [\"GET /\", \"OPTIONS /\", \"GET /\", \"GET /api/x\", \"GET \
         /api/x?y=1&x=\"]"
    );
}

/// `try_files`: a file, a directory's index, then a named location that forwards (the app
/// gets the path as it came); an SPA's fallback page; `=404`; a fallback path with `$args`
/// that another location forwards (the app gets that path and the query): the same statuses
/// and lengths from nginx and from the proxy, and the same request lines at the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_files_falls_back_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    for sub in ["docs", "spa/assets"] {
        std::fs::create_dir_all(www.join(sub)).unwrap();
    }
    util::write_file(&www, "docs/index.html", "<p>docs</p>\n");
    util::write_file(&www, "robots.txt", "User-agent: *\n");
    util::write_file(&www, "spa/index.html", "<p>the app shell</p>\n");
    util::write_file(&www, "spa/assets/app.js", "run();\n");
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        root {www};
        location / {{
            try_files $uri $uri/ @app;
        }}
        location @app {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /spa/ {{
            try_files $uri $uri/ /spa/index.html;
        }}
        location /strict/ {{
            try_files $uri =404;
        }}
        location /legacy/ {{
            try_files $uri /api/handler$is_args$args;
        }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{app};
        }}
"#,
            www = www.display(),
            app = app.address.port(),
        ),
    );
    let paths = [
        "/robots.txt",
        "/docs/",
        "/docs",
        "/login?next=/home",
        "/spa/assets/app.js",
        "/spa/deep/link",
        "/spa/",
        "/strict/nope",
        "/legacy/old?id=7",
        "/legacy/plain",
    ];
    let probe = |d: &Path| {
        paths
            .iter()
            .map(|path| {
                let fields = head(port, d, path, &[]);
                let field = |name: &str| field(&fields, name);
                let status = field(":status");
                // The app's answers are the recorder's own.
                let length = if field("etag").is_empty() {
                    String::new()
                } else {
                    field("content-length")
                };
                format!("{path} {status} {length} {}", field("location"))
            })
            .collect::<Vec<_>>()
    };
    // Method and target: nginx speaks HTTP/1.0 to the app, the proxy 1.1.
    let seen_by_app = |app: &Recorder| {
        app.take()
            .iter()
            .map(|r| {
                let line = r.request_line();
                line.rsplit_once(' ')
                    .map_or(line, |(start, _)| start)
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let ((theirs, their_app), (ours, our_app)) =
        nginx_then_proxy(&conf, &d, port, |d: &Path| (probe(d), seen_by_app(&app))).await;
    assert_eq!(ours, theirs);
    assert_eq!(our_app, their_app);
    // What nginx did, so that the comparison means something.
    let statuses: Vec<&str> = theirs
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200", "200", "301", "200", "200", "200", "200", "404", "200", "200"
        ],
        "{theirs:?}"
    );
    assert_eq!(
        their_app,
        [
            "GET /login?next=/home",
            "GET /api/handler?id=7",
            "GET /api/handler"
        ]
    );
}

/// `return` in regular expression locations (in the file's order, before a longer prefix)
/// and in `location /`: the same statuses and redirects from nginx and from the proxy, the
/// other paths still forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_in_any_location_answers_as_nginx_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let forwarding = format!(
        "        location / {{\n            proxy_pass http://127.0.0.1:{app};\n        }}\n",
        app = app.address.port()
    );
    let answering = "        location / {\n            return 403;\n        }\n".to_string();
    for root in [forwarding, answering] {
        let conf = tls_server(
            &d,
            port,
            &format!(
                r#"{root}        location ~ \.php$ {{
            return 404;
        }}
        location ~* /\.git {{
            return 403 "no";
        }}
        location ~ ^/old/ {{
            return 301 https://example.com/new/;
        }}
        location /keep/ {{
            proxy_pass http://127.0.0.1:{app};
        }}
"#,
                app = app.address.port(),
            ),
        );
        let probe = |d: &Path| {
            [
                "/index.php",
                "/a/b.PHP",
                "/.git/config",
                "/.GIT/x",
                "/old/x",
                "/keep/x.php",
                "/keep/x",
                "/x",
            ]
            .iter()
            .map(|path| {
                let fields = head(port, d, path, &[]);
                let field = |name: &str| field(&fields, name);
                format!("{path} {} {}", field(":status"), field("location"))
            })
            .collect::<Vec<_>>()
        };
        let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
        assert_eq!(ours, theirs, "{root}");
        let statuses: Vec<&str> = theirs
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        let root_status = if root.contains("return") {
            "403"
        } else {
            "200"
        };
        assert_eq!(
            statuses,
            [
                "404",
                root_status,
                "403",
                "403",
                "301",
                "404",
                "200",
                root_status
            ],
            "{root}"
        );
    }
}

/// `expires` (the server's, a location's own, `epoch`, `max`, negative, `off`) on forwarded
/// responses (the app's own `Cache-Control` and `Expires` replaced) and on files (not on a
/// 404): the same `Cache-Control`, and `Expires` the same distance from `Date`, from nginx and
/// from the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_is_set_as_nginx_sets_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    std::fs::create_dir_all(www.join("static")).unwrap();
    util::write_file(&www, "static/a.txt", "a\n");
    let app =
        Recorder::start("Cache-Control: private\r\nCache-Control: no-transform\r\nExpires: 0\r\n")
            .await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        expires 1h;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /static/ {{
            root {www};
            expires 30d;
        }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{app};
            expires epoch;
        }}
        location /max/ {{
            proxy_pass http://127.0.0.1:{app};
            expires max;
        }}
        location /neg/ {{
            proxy_pass http://127.0.0.1:{app};
            expires -1;
        }}
        location /off/ {{
            proxy_pass http://127.0.0.1:{app};
            expires off;
        }}
"#,
            www = www.display(),
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        [
            "/",
            "/static/a.txt",
            "/static/nope",
            "/api/x",
            "/max/x",
            "/neg/x",
            "/off/x",
        ]
        .iter()
        .map(|path| {
            let fields = head(port, d, path, &[]);
            let all = |name: &str| {
                fields
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            };
            let date = |text: &str| httpdate::parse_http_date(text).ok();
            let expires = all("expires").join(", ");
            // Relative to the response's own Date: the clocks of the two runs differ.
            let expires = match (date(&expires), all("date").first().and_then(|d| date(d))) {
                (Some(at), Some(now))
                    if !expires.starts_with("Thu, 01 Jan 1970")
                        && !expires.starts_with("Thu, 31 Dec 2037") =>
                {
                    match at.duration_since(now) {
                        Ok(ahead) => format!("Date + {}s", ahead.as_secs()),
                        Err(behind) => format!("Date - {}s", behind.duration().as_secs()),
                    }
                }
                _ => expires,
            };
            format!(
                "{path} {} [{}] [{expires}]",
                all(":status").join(""),
                all("cache-control").join(", ")
            )
        })
        .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    assert_eq!(
        theirs,
        [
            "/ 200 [max-age=3600] [Date + 3600s]",
            "/static/a.txt 200 [max-age=2592000] [Date + 2592000s]",
            "/static/nope 404 [] []",
            "/api/x 200 [no-cache] [Thu, 01 Jan 1970 00:00:01 GMT]",
            "/max/x 200 [max-age=315360000] [Thu, 31 Dec 2037 23:55:55 GMT]",
            "/neg/x 200 [no-cache] [Date - 1s]",
            "/off/x 200 [private, no-transform] [0]",
        ]
    );
}

/// A location's own `add_header` (files and forwarded): the location's headers on its
/// responses from nginx and from the proxy; the server's elsewhere. Where nginx then drops
/// the server's headers, the proxy keeps them (said when the file is read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locations_own_add_header_is_sent_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    std::fs::create_dir_all(www.join("static")).unwrap();
    util::write_file(&www, "static/a.css", "a {}\n");
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        add_header X-Frame-Options DENY always;
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /static/ {{
            root {www};
            add_header Cache-Control "public, immutable" always;
        }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{app};
            add_header X-Api v1 always;
            add_header Cache-Control no-store always;
        }}
"#,
            www = www.display(),
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        ["/", "/static/a.css", "/api/x"]
            .iter()
            .map(|path| {
                let fields = head(port, d, path, &[]);
                let field = |name: &str| field(&fields, name);
                let frame = field("x-frame-options");
                (
                    format!(
                        "{path} {} [{}] [{}]",
                        field(":status"),
                        field("cache-control"),
                        field("x-api")
                    ),
                    frame,
                )
            })
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    let seen = |all: &[(String, String)]| all.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>();
    assert_eq!(seen(&ours), seen(&theirs));
    assert_eq!(
        seen(&theirs),
        [
            "/ 200 [] []",
            "/static/a.css 200 [public, immutable] []",
            "/api/x 200 [no-store] [v1]"
        ]
    );
    let frames = |all: &[(String, String)]| all.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>();
    assert_eq!(
        frames(&theirs),
        ["DENY", "", ""],
        "nginx drops the server's"
    );
    assert_eq!(
        frames(&ours),
        ["DENY", "DENY", "DENY"],
        "the proxy keeps them"
    );
}

/// The value of the first `name` line of a [`head`], or empty.
fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The response head of GET `path` sent with the header lines `extra`, its lines as `(name
/// lowercased, value)`, after the status as `(":status", code)`.
fn head(port: u16, dir: &Path, path: &str, extra: &[&str]) -> Vec<(String, String)> {
    head_from("127.0.0.1", port, dir, path, extra, &[])
}

/// The status of a GET of `path` from the client address `from`, with curl's `options`.
fn status_from(from: &str, port: u16, dir: &Path, path: &str, options: &[&str]) -> String {
    head_from(from, port, dir, path, &[], options)
        .into_iter()
        .find(|(name, _)| name == ":status")
        .map(|(_, status)| status)
        .unwrap_or_default()
}

/// [`head`] from the client address `from` (an address of the loopback block, 127.0.0.0/8,
/// which every one of them reaches), with curl's `options` (`-I`, `-X POST`, `--path-as-is`).
fn head_from(
    from: &str,
    port: u16,
    dir: &Path,
    path: &str,
    extra: &[&str],
    options: &[&str],
) -> Vec<(String, String)> {
    let output = Command::new("curl")
        .args(["--interface", from])
        .args(options)
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--max-time",
            "10",
            "--cacert",
        ])
        .arg(dir.join("tls.crt"))
        .args(extra.iter().flat_map(|line| ["-H", line]))
        .arg(format!("https://localhost:{port}{path}"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let status = text.split(' ').nth(1).unwrap_or_default().to_string();
    std::iter::once((":status".to_string(), status))
        .chain(text.lines().filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.to_ascii_lowercase(), value.trim().to_string()))
        }))
        .collect()
}

/// Forms real-world files use, served by nginx and by the proxy: `listen PORT; ssl on;` (nginx
/// before 1.25), backslashes in `add_header` values (kept, unless they escape a quote),
/// `proxy_redirect` (nginx's `default` for an `upstream` block, then `http:// https://`) on the
/// app's `Location` and `Refresh`, and `proxy_set_header` with fixed values, `""`, the
/// variables constant on a TLS listener and `$host`, `$remote_addr`, and nginx's default of
/// dropping request headers with an underscore in their name: the same header values, a redirect to the same URL
/// (nginx makes the one rewritten to a path absolute; the proxy sends the path), and the same
/// request headers at the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_on_backslashes_and_proxy_redirect_are_served_as_nginx_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let upstream =
        Recorder::start("Location: http://app/next?a=1\r\nRefresh: 3; url=http://b.example/r\r\n")
            .await;
    let port = util::free_port();
    let preamble = nginx_head(&d);
    let conf = util::write_file(
        &d,
        "nginx.conf",
        &format!(
            r#"{preamble}    upstream app {{
        server 127.0.0.1:{up};
    }}
    server {{
        listen 127.0.0.1:{port};
        ssl on;
        ssl_certificate     {d}/tls.crt;
        ssl_certificate_key {d}/tls.key;
        add_header X-A a\.b always;
        add_header X-C "q\"r\.s" always;
        location / {{
            proxy_pass http://app;
            proxy_redirect default;
            proxy_redirect http:// https://;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Scheme $scheme;
            proxy_set_header X-Https $https;
            proxy_set_header X-NginX-Proxy true;
            proxy_set_header Authorization "";
            proxy_set_header X-Client $remote_addr;
            proxy_set_header X-Via "${{host}}:$server_port";
        }}
    }}
}}
"#,
            d = d.display(),
            up = upstream.address.port(),
        ),
    );
    let test = Command::new("nginx")
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&d)
        .output()
        .expect("run nginx -t");
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let probe = |d: PathBuf| {
        move || {
            let forged = [
                "Authorization: Basic eDp5",
                "X-Scheme: forged",
                "X-NginX-Proxy: no",
                "X_Forwarded_For: 6.6.6.6",
            ];
            head(port, &d, "/start", &forged)
        }
    };
    let nginx = start_nginx(&conf, &d, port);
    let theirs = tokio::task::spawn_blocking(probe(d.clone())).await.unwrap();
    let their_request = upstream.wait_take(1).await;
    stop_nginx(nginx, port);

    let log = d.join("proxy.log");
    let proxy = start_proxy(&conf, log).await;
    let ours = tokio::task::spawn_blocking(probe(d.clone())).await.unwrap();
    let our_request = upstream.wait_take(1).await;
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");

    let field = |head: &[(String, String)], name: &str| {
        head.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} in {head:?}"))
    };
    for (who, head) in [("nginx", &theirs), ("proxy", &ours)] {
        assert_eq!(field(head, "x-a"), r"a\.b", "{who}");
        assert_eq!(field(head, "x-c"), r#"q"r\.s"#, "{who}");
        assert_eq!(
            field(head, "refresh"),
            "3; url=https://b.example/r",
            "{who}"
        );
    }
    assert_eq!(
        field(&theirs, "location"),
        format!("https://localhost:{port}/next?a=1"),
        "nginx, the reference: the path proxy_redirect left, made absolute"
    );
    assert_eq!(
        field(&ours, "location"),
        field(&theirs, "location"),
        "the proxy"
    );
    assert!(
        log.contains("ssl: warning: every listen of the server is TLS"),
        "{log}"
    );
    let port_text = port.to_string();
    for (who, received) in [("nginx", &their_request[0]), ("proxy", &our_request[0])] {
        assert_eq!(
            received.header("x-forwarded-port"),
            [port_text.as_str()],
            "{who}"
        );
        assert_eq!(received.header("x-scheme"), ["https"], "{who}");
        assert_eq!(received.header("x-https"), ["on"], "{who}");
        assert_eq!(received.header("x-nginx-proxy"), ["true"], "{who}");
        assert_eq!(received.header("x-client"), ["127.0.0.1"], "{who}");
        assert!(
            received.header("x_forwarded_for").is_empty(),
            "{who}: nginx drops a name with an underscore by default: {:?}",
            received.head
        );
        assert_eq!(
            received.header("x-via"),
            [format!("localhost:{port}").as_str()],
            "{who}"
        );
        assert!(
            received.header("authorization").is_empty(),
            "{who}: {:?}",
            received.head
        );
    }
    // `validate` lists what is set, removed and rewritten.
    let output = util::command()
        .args(["validate", "--nginx-config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for line in [
        format!("  request   X-Forwarded-Port: {port} (request_headers)"),
        "  request   Authorization removed (request_headers)".to_string(),
        "  request   headers named with an underscore dropped (drop_underscore_headers)"
            .to_string(),
        "  redirects http://app/ -> / in Location and Refresh (redirect_rewrite)".to_string(),
        "  redirects http:// -> https:// in Location and Refresh (redirect_rewrite)".to_string(),
        "  redirects to a path made absolute: https://HOST[:PORT unless 443]/PATH \
         (absolute_redirects)"
            .to_string(),
    ] {
        assert!(stdout.contains(&line), "{line}: {stdout}");
    }
}

/// Copies `from` into `to`, directories included, writing `to` in place of `@DIR@` in each file.
fn copy_filled_in(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read the corpus") {
        let path = entry.expect("a directory entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_filled_in(&path, &target);
        } else {
            let text = std::fs::read_to_string(&path).expect("a text file");
            let text = text.replace("@DIR@", &to.display().to_string());
            std::fs::write(&target, text).expect("write");
        }
    }
}

/// `tests/compat/nginx-files`: real nginx files, each mapped or refused (every error at its
/// `FILE:LINE:COL`) as `EXPECTED` records.
#[test]
fn real_nginx_files_map_or_are_refused_as_recorded() {
    let corpus = util::repo().join("tests/compat/nginx-files");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_filled_in(&corpus, dir.path());
    // An include of `modules-enabled/*.conf` needs the directory, which git does not keep.
    std::fs::create_dir_all(dir.path().join("modules-enabled")).expect("mkdir");
    pair(dir.path());
    let expected = std::fs::read_to_string(corpus.join("EXPECTED")).expect("EXPECTED");
    let mut verdicts = std::collections::BTreeMap::new();
    for line in expected.lines() {
        let (file, verdict) = line.split_once('\t').expect("FILE<TAB>VERDICT");
        verdicts.insert(file.to_string(), verdict.to_string());
    }
    let mut confs: Vec<String> = std::fs::read_dir(&corpus)
        .expect("read the corpus")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".conf"))
        .collect();
    confs.sort();
    assert_eq!(
        confs,
        verdicts.keys().cloned().collect::<Vec<_>>(),
        "every file has one line in EXPECTED"
    );
    let mut wrong = Vec::new();
    for (file, verdict) in &verdicts {
        let path = dir.path().join(file);
        let output = util::command()
            .args(["validate", "--nginx-config"])
            .arg(&path)
            .output()
            .expect("run validate");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let got = match output.status.code() {
            Some(0) => "mapped".to_string(),
            Some(78) => "refused".to_string(),
            other => format!("exit {other:?}"),
        };
        if &got != verdict {
            wrong.push(format!("{file}: {got}, EXPECTED says {verdict}\n{stderr}"));
            continue;
        }
        if got == "refused" {
            // Each error names a file, a line and a column (an include's own file included).
            let unplaced: Vec<&str> = stderr
                .lines()
                .filter(|line| !line.contains(": warning: "))
                .filter(|line| {
                    let Some((place, _)) = line.split_once(": ") else {
                        return true;
                    };
                    let mut parts = place.rsplitn(3, ':');
                    let numbers = parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
                        && parts.next().is_some_and(|l| l.parse::<u32>().is_ok());
                    !numbers
                })
                .collect();
            if !unplaced.is_empty() {
                wrong.push(format!(
                    "{file}: errors without FILE:LINE:COL: {unplaced:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// One exchange with `path` (curl's `options` and header lines `extra`): the response's head
/// lines as [`head_from`] gives them, and its body.
fn exchange(
    port: u16,
    dir: &Path,
    path: &str,
    options: &[&str],
    extra: &[&str],
) -> (Vec<(String, String)>, String) {
    let body = dir.join("exchange-body");
    let _ = std::fs::remove_file(&body);
    let mut all = vec!["-o", body.to_str().unwrap()];
    all.extend_from_slice(options);
    let fields = head_from("127.0.0.1", port, dir, path, extra, &all);
    // With `-I`, curl writes the head there too: a HEAD has no body.
    let text = if options.contains(&"-I") {
        String::new()
    } else {
        std::fs::read_to_string(&body).unwrap_or_default()
    };
    (fields, text)
}

/// `error_page` (`error_pages`, `intercept_errors`, `internal`): the stock `/50x.html` for an
/// app that is down, a 404 page for files, a named location answering a refusal, `=` and
/// `=CODE`, redirects, `return CODE` with and without text, the app's own errors passed or
/// intercepted, a 401's challenge kept, HEAD and POST, and a client's conditional request. nginx
/// and the proxy on one file give the same status, page, `Content-Type`, `Location`,
/// `WWW-Authenticate` and `Retry-After`, send the page's `ETag` but no `Last-Modified` with an
/// error's status, and ask the app for the same paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_page_replaces_errors_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let html = d.join("html");
    std::fs::create_dir(&html).unwrap();
    std::fs::write(html.join("50x.html"), "<p>down for a moment</p>\n").unwrap();
    std::fs::write(html.join("404.html"), "<p>no such page</p>\n").unwrap();
    std::fs::write(html.join("index.html"), "<p>home</p>\n").unwrap();
    let app = Recorder::start_with("", Answer::StatusOfPath).await;
    // Nothing listens there: the app is down.
    let down = util::free_port();
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        error_page 500 502 503 504 /50x.html;
        error_page 404 /404.html;
        location = /50x.html {{
            root {html};
            internal;
        }}
        location = /404.html {{
            root {html};
        }}
        location / {{
            proxy_pass http://127.0.0.1:{down};
        }}
        location /files/ {{
            alias {html}/;
        }}
        location /app/ {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /intercepted/ {{
            proxy_intercept_errors on;
            proxy_pass http://127.0.0.1:{app};
        }}
        location /own/ {{
            proxy_intercept_errors on;
            error_page 401 /404.html;
            error_page 500 = /app/200;
            proxy_pass http://127.0.0.1:{app};
        }}
        location /denied/ {{
            deny all;
            error_page 403 = @refused;
        }}
        location @refused {{
            add_header Retry-After 60 always;
            return 429 '{{"error":"refused"}}';
        }}
        location /as-200/ {{
            error_page 502 =200 /50x.html;
            proxy_pass http://127.0.0.1:{down};
        }}
        location /as-page/ {{
            error_page 502 = /50x.html;
            proxy_pass http://127.0.0.1:{down};
        }}
        location /moved/ {{
            error_page 502 https://status.example.com/down;
            proxy_pass http://127.0.0.1:{down};
        }}
        location /gone/ {{
            error_page 502 =301 https://status.example.com/gone;
            proxy_pass http://127.0.0.1:{down};
        }}
        location /return/ {{
            return 404;
        }}
        location /return-text/ {{
            return 404 "its own text\n";
        }}
        location /to-app/ {{
            error_page 502 = @app;
            proxy_pass http://127.0.0.1:{down};
        }}
        location @app {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /old/ {{
            rewrite ^/old/ /50x.html last;
        }}
        location /broken/ {{
            error_page 502 /missing.html;
            proxy_pass http://127.0.0.1:{down};
        }}
        location = /missing.html {{
            root {html};
        }}
"#,
            html = html.display(),
            app = app.address.port(),
        ),
    );
    const CASES: &[(&str, &[&str], &[&str])] = &[
        ("/", &[], &[]),
        ("/some/page?x=1", &["-I"], &[]),
        ("/", &["--data-binary", "form=1"], &[]),
        ("/", &[], &["If-None-Match: *"]),
        ("/files/index.html", &[], &[]),
        ("/files/nothing-here", &[], &[]),
        ("/50x.html", &[], &[]),
        ("/404.html", &[], &[]),
        ("/app/500", &[], &[]),
        ("/app/404", &[], &[]),
        ("/intercepted/500", &[], &[]),
        ("/intercepted/404", &[], &[]),
        ("/intercepted/403", &[], &[]),
        ("/intercepted/200", &[], &[]),
        ("/own/401", &[], &[]),
        ("/own/500", &["--data-binary", "form=1"], &[]),
        ("/own/502", &[], &[]),
        ("/denied/x", &[], &[]),
        ("/as-200/x", &[], &[]),
        ("/as-page/x", &[], &[]),
        ("/moved/x", &[], &[]),
        ("/gone/x", &[], &[]),
        ("/return/x", &[], &[]),
        ("/return-text/x", &[], &[]),
        ("/to-app/201", &["-X", "PUT"], &[]),
        ("/old/x", &[], &[]),
        ("/broken/x", &[], &[]),
    ];
    let probe = |d: &Path| {
        let answers: Vec<_> = CASES
            .iter()
            .map(|(path, options, extra)| {
                let (fields, body) = exchange(port, d, path, options, extra);
                let picked: Vec<String> = [
                    ":status",
                    "content-type",
                    "location",
                    "www-authenticate",
                    "retry-after",
                ]
                .iter()
                .map(|name| field(&fields, name))
                .collect();
                let etag = !field(&fields, "etag").is_empty();
                let modified = !field(&fields, "last-modified").is_empty();
                (*path, picked, etag, modified, body)
            })
            .collect();
        let mut asked: Vec<String> = app
            .take()
            .iter()
            .map(|r| {
                let line: Vec<&str> = r.request_line().split(' ').collect();
                format!("{} {}", line[0], line[1])
            })
            .collect();
        asked.sort();
        (answers, asked)
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (theirs, ours) in theirs.0.iter().zip(&ours.0) {
        let path = theirs.0;
        // nginx sends its own HTML page (`text/html`) with a redirect and an error no page
        // replaces, where the proxy sends its own short text; every other body is the same.
        let redirect = (300..400).contains(&theirs.1[0].parse::<u16>().unwrap())
            || theirs.4.contains("<hr><center>nginx/");
        let but_type = |fields: &[String]| {
            let mut fields = fields.to_vec();
            if redirect {
                fields[1].clear();
            }
            fields
        };
        assert_eq!(
            but_type(&ours.1),
            but_type(&theirs.1),
            "{path}: status, headers"
        );
        assert_eq!(
            (ours.2, ours.3),
            (theirs.2, theirs.3),
            "{path}: ETag, Last-Modified"
        );
        if !redirect {
            assert_eq!(ours.4, theirs.4, "{path}: body");
        }
    }
    assert_eq!(ours.1, theirs.1, "the requests the app got");
    // What nginx did, so that the comparison means something.
    let got = |path: &str, options: &[&str]| {
        let at = CASES
            .iter()
            .position(|(p, o, _)| *p == path && *o == options)
            .unwrap();
        let answer = &theirs.0[at];
        (answer.1[0].clone(), answer.4.clone())
    };
    let down_page = "<p>down for a moment</p>\n".to_string();
    let missing = "<p>no such page</p>\n".to_string();
    assert_eq!(got("/", &[]), ("502".into(), down_page.clone()));
    assert_eq!(
        got("/files/nothing-here", &[]),
        ("404".into(), missing.clone())
    );
    assert_eq!(got("/50x.html", &[]), ("404".into(), missing.clone()));
    assert_eq!(
        got("/app/500", &[]),
        ("500".into(), "app 500 GET /app/500\n".into())
    );
    assert_eq!(
        got("/intercepted/500", &[]),
        ("500".into(), down_page.clone())
    );
    assert_eq!(
        got("/intercepted/403", &[]).1,
        "app 403 GET /intercepted/403\n"
    );
    assert_eq!(got("/own/401", &[]), ("401".into(), missing.clone()));
    assert_eq!(
        got("/own/500", &["--data-binary", "form=1"]),
        ("200".into(), "app 200 GET /app/200\n".into())
    );
    assert_eq!(
        got("/denied/x", &[]),
        ("429".into(), "{\"error\":\"refused\"}".into())
    );
    assert_eq!(got("/as-200/x", &[]), ("200".into(), down_page.clone()));
    assert_eq!(got("/return/x", &[]), ("404".into(), missing));
    assert_eq!(got("/return-text/x", &[]).1, "its own text\n");
    // The page of an error page fails: that error, as it is.
    assert_eq!(got("/broken/x", &[]).0, "404");
    // A named location keeps the method; a rewrite reaches an internal location.
    assert!(
        theirs.1.contains(&"PUT /to-app/201".to_string()),
        "{:?}",
        theirs.1
    );
    assert_eq!(got("/old/x", &[]), ("200".into(), down_page.clone()));
    let own_401 = &theirs.0[CASES.iter().position(|c| c.0 == "/own/401").unwrap()];
    assert_eq!(own_401.1[3], "Basic realm=\"app\"");
}

/// `map` (`proxy.maps`): a CORS allow-list (exact values, case ignored, and a regular
/// expression whose group is in the value), a redirect table read by `if` and `return`, a
/// block list by `User-Agent`, and a map of a map, used by `add_header`, `proxy_set_header`,
/// `if` and `return`; an empty value sends no header, as nginx. nginx and the proxy on one
/// file give each request the same status, `Location` and CORS headers, and the app the same
/// `X-Origin-Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_choose_values_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        if ($blocked) {{
            return 403;
        }}
        if ($new_uri) {{
            return 301 $new_uri;
        }}
        add_header Access-Control-Allow-Origin $cors_origin always;
        add_header Access-Control-Allow-Credentials $cors_credentials always;
        location / {{
            proxy_pass http://127.0.0.1:{app};
            proxy_set_header X-Origin-Ok $cors_origin;
        }}
"#,
            app = app.address.port(),
        ),
    );
    let text = std::fs::read_to_string(&conf).unwrap().replacen(
        "    server {",
        r#"    map $http_origin $cors_origin {
        default "";
        "https://app.example.com" $http_origin;
        "~^https://([a-z]+)\.example\.org$" "https://$1.example.org";
        \~tilde "tilde";
    }
    map $cors_origin $cors_credentials {
        default "true";
        "" "";
    }
    map $request_uri $new_uri {
        /old-page /new-page;
        ~^/blog/(\d+)$ /articles/$1;
    }
    map $http_user_agent $blocked {
        default 0;
        ~*badbot 1;
    }
    server {"#,
        1,
    );
    std::fs::write(&conf, text).unwrap();
    const CASES: &[(&str, &[&str])] = &[
        ("/", &["Origin: https://app.example.com"]),
        ("/", &["Origin: https://APP.Example.com"]),
        ("/", &["Origin: https://shop.example.org"]),
        ("/", &["Origin: https://shop.example.org.evil.com"]),
        ("/", &["Origin: ~tilde"]),
        ("/", &[]),
        ("/", &["User-Agent: BadBot/2.1"]),
        ("/old-page", &[]),
        ("/Old-Page", &[]),
        ("/blog/42", &[]),
        ("/blog/x", &[]),
    ];
    let probe = |d: &Path| {
        let answers: Vec<Vec<String>> = CASES
            .iter()
            .map(|(path, extra)| {
                let fields = head(port, d, path, extra);
                [
                    ":status",
                    "location",
                    "access-control-allow-origin",
                    "access-control-allow-credentials",
                ]
                .iter()
                .map(|name| {
                    // Present with an empty value, or absent.
                    match fields.iter().find(|(n, _)| n == name) {
                        Some((_, value)) => format!("={value}"),
                        None => "absent".to_string(),
                    }
                })
                .collect()
            })
            .collect();
        let seen: Vec<Vec<String>> = app
            .take()
            .iter()
            .map(|r| {
                r.header("x-origin-ok")
                    .iter()
                    .map(|v| v.to_string())
                    .collect()
            })
            .collect();
        (answers, seen)
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (((path, extra), theirs), ours) in CASES.iter().zip(&theirs.0).zip(&ours.0) {
        assert_eq!(ours, theirs, "{path} {extra:?}");
    }
    assert_eq!(ours.1, theirs.1, "X-Origin-Ok at the app");
    // What nginx did, so that the comparison means something.
    assert_eq!(theirs.0[1][2], "=https://APP.Example.com");
    assert_eq!(theirs.0[2][2], "=https://shop.example.org");
    assert_eq!(theirs.0[3][2], "absent");
    assert_eq!(theirs.0[3][3], "absent");
    assert_eq!(theirs.0[6][0], "=403");
    assert_eq!(
        theirs.0[9][1],
        format!("=https://localhost:{port}/articles/42"),
        "a path made absolute"
    );
}

/// The Docker registry's recipe: `map $upstream_http_docker_distribution_api_version $v { ''
/// 'registry/2.0'; }` with `add_header Docker-Distribution-Api-Version $v always`: the header is
/// added where the app did not send it, the proxy's own refusal included, and the app's own is
/// passed alone. nginx and the proxy on one file send the same values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_the_app_did_not_send_is_added_as_the_registry_recipe_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let registry = Recorder::start("Docker-Distribution-Api-Version: registry/2.0\r\n").await;
    let other = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location /v2/ {{
            allow 127.0.0.1;
            deny all;
            add_header Docker-Distribution-Api-Version $docker_distribution_api_version always;
            proxy_pass http://127.0.0.1:{registry};
        }}
        location /other/ {{
            add_header Docker-Distribution-Api-Version $docker_distribution_api_version always;
            proxy_pass http://127.0.0.1:{other};
        }}
        location / {{
            proxy_pass http://127.0.0.1:{other};
        }}
"#,
            registry = registry.address.port(),
            other = other.address.port(),
        ),
    );
    let text = std::fs::read_to_string(&conf).unwrap().replacen(
        "    server {",
        "    map $upstream_http_docker_distribution_api_version $docker_distribution_api_version \
         {\n        '' 'registry/2.0';\n    }\n    server {",
        1,
    );
    std::fs::write(&conf, text).unwrap();
    let probe = |d: &Path| {
        [
            ("127.0.0.1", "/v2/"),
            ("127.0.0.2", "/v2/"),
            ("127.0.0.1", "/other/x"),
        ]
        .iter()
        .map(|(from, path)| {
            let fields = head_from(from, port, d, path, &[], &[]);
            let values: Vec<String> = fields
                .iter()
                .filter(|(name, _)| name == "docker-distribution-api-version")
                .map(|(_, value)| value.clone())
                .collect();
            (field(&fields, ":status"), values)
        })
        .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    let one = vec!["registry/2.0".to_string()];
    assert_eq!(theirs[0], ("200".to_string(), one.clone()));
    assert_eq!(theirs[1], ("403".to_string(), one.clone()));
    assert_eq!(theirs[2], ("200".to_string(), one));
}

/// `auth_request` (oauth2-proxy's recipe): each request asks another location first, without
/// its body and with `$request_uri` and `$request_method` of the request it asks about; a 2xx
/// lets it in with `auth_request_set` variables from the answer's headers, a 401 (with its
/// challenge, and `error_page 401 = @signin`'s redirect) and a 403 refuse it, anything else is a
/// 500. nginx and the proxy on one file give the same statuses, `Location` and
/// `WWW-Authenticate`, and the app and the auth server get the same requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_request_lets_in_whom_nginx_lets_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start_with("X-Auth-Request-User: alice\r\n", Answer::StatusOfPath).await;
    let port = util::free_port();
    let check = |name: &str, status: u16| {
        format!(
            "        location = /check-{name} {{\n            proxy_pass \
             http://127.0.0.1:{app}/auth/{status};\n            proxy_pass_request_body off;\n            \
             proxy_set_header Content-Length \"\";\n            proxy_set_header X-Original-URI \
             $request_uri;\n            proxy_set_header X-Original-Method $request_method;\n        \
             }}\n",
            app = app.address.port(),
        )
    };
    let mut body = String::new();
    for (name, status) in [("ok", 202), ("no", 401), ("forbid", 403), ("broken", 404)] {
        body.push_str(&check(name, status));
    }
    body.push_str(&format!(
        r#"        location /private/ {{
            auth_request /check-ok;
            auth_request_set $user $upstream_http_x_auth_request_user;
            proxy_set_header X-User $user;
            proxy_pass http://127.0.0.1:{app};
        }}
        location /login/ {{
            auth_request /check-no;
            error_page 401 = @signin;
            proxy_pass http://127.0.0.1:{app};
        }}
        location @signin {{
            return 302 https://auth.example.com/sign_in?rd=$scheme://$host$request_uri;
        }}
        location /forbidden/ {{
            auth_request /check-forbid;
            proxy_pass http://127.0.0.1:{app};
        }}
        location /broken/ {{
            auth_request /check-broken;
            proxy_pass http://127.0.0.1:{app};
        }}
        location /challenged/ {{
            auth_request /check-no;
            proxy_pass http://127.0.0.1:{app};
        }}
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
"#,
        app = app.address.port(),
    ));
    let conf = tls_server(&d, port, &body);
    const CASES: &[(&str, &[&str])] = &[
        ("/private/a?x=1", &[]),
        ("/private/b", &["--data-binary", "form=1"]),
        ("/login/x?y=2", &[]),
        ("/forbidden/x", &[]),
        ("/broken/x", &[]),
        ("/challenged/x", &[]),
        ("/open", &[]),
    ];
    let probe = |d: &Path| {
        let answers: Vec<Vec<String>> = CASES
            .iter()
            .map(|(path, options)| {
                let fields = head_from("127.0.0.1", port, d, path, &[], options);
                [":status", "location", "www-authenticate"]
                    .iter()
                    .map(|name| field(&fields, name))
                    .collect()
            })
            .collect();
        let mut asked: Vec<String> = app
            .take()
            .iter()
            .map(|r| {
                let line: Vec<&str> = r.request_line().split(' ').collect();
                format!(
                    "{} {} user={:?} uri={:?} method={:?} length={:?}",
                    line[0],
                    line[1],
                    r.header("x-user"),
                    r.header("x-original-uri"),
                    r.header("x-original-method"),
                    r.header("content-length"),
                )
            })
            .collect();
        asked.sort();
        (answers, asked)
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (((path, _), theirs), ours) in CASES.iter().zip(&theirs.0).zip(&ours.0) {
        assert_eq!(ours, theirs, "{path}");
    }
    assert_eq!(
        ours.1, theirs.1,
        "the requests the app and the auth server got"
    );
    // What nginx did, so that the comparison means something.
    let statuses: Vec<&str> = theirs.0.iter().map(|a| a[0].as_str()).collect();
    assert_eq!(statuses, ["200", "200", "302", "403", "500", "401", "200"]);
    assert_eq!(theirs.0[5][2], "Basic realm=\"app\"");
    assert!(
        theirs
            .1
            .iter()
            .any(|line| line.starts_with("GET /private/a?x=1 user=[\"alice\"]")),
        "{:#?}",
        theirs.1
    );
}

/// oauth2-proxy's nginx recipe whole: `auth_request_set` from the auth answer's header
/// (`Set-Cookie`: its first line) and from a cookie it sets (`$upstream_cookie_NAME`), the
/// cookie-splitting `if` blocks nginx tests before those variables are set (so never enters),
/// `add_header Set-Cookie` beside the app's own cookie, and a refusal's sign-in redirect that
/// carries the refusing answer's cookie. nginx and the proxy on one file: the same statuses,
/// redirects and `Set-Cookie` lines, and the same requests at the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_proxy_cookies_reach_the_client_as_nginx_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let auth = Recorder::start_with(
        "X-Auth-Request-User: alice\r\nSet-Cookie: _oauth2_proxy=AAA; Path=/; HttpOnly\r\n\
         Set-Cookie: _oauth2_proxy_1=BBB; Path=/\r\n",
        Answer::StatusOfPath,
    )
    .await;
    let app = Recorder::start_with("Set-Cookie: app=1; Path=/\r\n", Answer::StatusOfPath).await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location = /oauth2/auth {{
            proxy_pass http://127.0.0.1:{auth}/auth/202;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location = /oauth2/deny {{
            proxy_pass http://127.0.0.1:{auth}/auth/401;
        }}
        location / {{
            auth_request /oauth2/auth;
            error_page 401 = @oauth2_signin;
            auth_request_set $user $upstream_http_x_auth_request_user;
            proxy_set_header X-User $user;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            add_header Set-Cookie $auth_cookie;
            auth_request_set $auth_cookie_upstream_1 $upstream_cookie__oauth2_proxy_1;
            add_header X-Part $auth_cookie_upstream_1;
            if ($auth_cookie ~* "(; .*)") {{
                set $auth_cookie_0 $auth_cookie;
                set $auth_cookie_1 "_oauth2_proxy_1=$auth_cookie_upstream_1$1";
            }}
            if ($auth_cookie_upstream_1) {{
                add_header Set-Cookie $auth_cookie_0;
                add_header Set-Cookie $auth_cookie_1;
            }}
            proxy_pass http://127.0.0.1:{app};
        }}
        location /members/ {{
            auth_request /oauth2/deny;
            error_page 401 = @oauth2_signin;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            proxy_pass http://127.0.0.1:{app};
        }}
        location @oauth2_signin {{
            add_header Set-Cookie $auth_cookie;
            return 302 https://auth.example.com/oauth2/sign_in?rd=$request_uri;
        }}
"#,
            auth = auth.address.port(),
            app = app.address.port(),
        ),
    );
    const PATHS: &[&str] = &["/page?x=1", "/members/x"];
    let probe = |d: &Path| {
        let answers: Vec<Vec<String>> = PATHS
            .iter()
            .map(|path| {
                let fields = head(port, d, path, &["Cookie: _oauth2_proxy=AAA"]);
                let mut answer: Vec<String> = [":status", "location", "x-part"]
                    .iter()
                    .map(|name| field(&fields, name))
                    .collect();
                answer.extend(
                    fields
                        .iter()
                        .filter(|(name, _)| name == "set-cookie")
                        .map(|(_, value)| format!("Set-Cookie: {value}")),
                );
                answer
            })
            .collect();
        let mut asked: Vec<String> = app
            .take()
            .iter()
            .map(|r| {
                let line: Vec<&str> = r.request_line().split(' ').collect();
                format!(
                    "{} {} user={:?} host={:?}",
                    line[0],
                    line[1],
                    r.header("x-user"),
                    r.header("host")
                )
            })
            .collect();
        asked.sort();
        auth.take();
        (answers, asked)
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for ((path, theirs), ours) in PATHS.iter().zip(&theirs.0).zip(&ours.0) {
        assert_eq!(ours, theirs, "{path}");
    }
    assert_eq!(ours.1, theirs.1, "the requests the app got");
    // What nginx did, so that the comparison means something.
    assert_eq!(
        theirs.0[0],
        [
            "200",
            "",
            "BBB",
            "Set-Cookie: app=1; Path=/",
            "Set-Cookie: _oauth2_proxy=AAA; Path=/; HttpOnly",
        ]
    );
    assert_eq!(
        theirs.0[1],
        [
            "302",
            "https://auth.example.com/oauth2/sign_in?rd=/members/x",
            "",
            "Set-Cookie: _oauth2_proxy=AAA; Path=/; HttpOnly",
        ]
    );
    // No proxy_set_header Host: nginx's `$proxy_host`, the proxy_pass host.
    assert_eq!(
        theirs.1,
        [format!(
            "GET /page?x=1 user=[\"alice\"] host=[\"127.0.0.1:{}\"]",
            app.address.port()
        )],
        "{:#?}",
        theirs.1
    );
}

/// Kubernetes' `set $backend URL; proxy_pass $backend;` in locations (a location's own
/// constant before the server's), with nginx's default `Host: $proxy_host` and a location's
/// `proxy_set_header Host $host`: the app gets the same requests, with the same Host, from
/// nginx and from the proxy on one file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_constants_and_the_host_reach_the_app_as_nginx_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let api = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        set $up http://127.0.0.1:{api};
        location / {{
            set $backend "http://127.0.0.1:{app}";
            proxy_pass $backend;
        }}
        location /api/ {{
            proxy_pass $up;
            proxy_set_header Host $host;
        }}
        location /named/ {{
            proxy_pass http://localhost:{app};
        }}
"#,
            app = app.address.port(),
            api = api.address.port(),
        ),
    );
    const PATHS: &[&str] = &["/page?x=1", "/api/v1/items?y=2", "/named/a"];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for path in PATHS {
            let fields = head(port, d, path, &[]);
            let mut got: Vec<String> = Vec::new();
            for (name, recorder) in [("app", &app), ("api", &api)] {
                for r in recorder.take() {
                    let line: Vec<&str> = r.request_line().split(' ').collect();
                    got.push(format!("{name} {} host={:?}", line[1], r.header("host")));
                }
            }
            seen.push((field(&fields, ":status"), got));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for ((path, theirs), ours) in PATHS.iter().zip(&theirs).zip(&ours) {
        assert_eq!(ours, theirs, "{path}");
    }
    // What nginx did, so that the comparison means something.
    let app_port = app.address.port();
    assert_eq!(
        theirs[0].1,
        [format!("app /page?x=1 host=[\"127.0.0.1:{app_port}\"]")]
    );
    assert_eq!(
        theirs[1].1,
        ["api /api/v1/items?y=2 host=[\"localhost\"]".to_string()]
    );
    assert_eq!(
        theirs[2].1,
        [format!("app /named/a host=[\"localhost:{app_port}\"]")]
    );
}

/// `location /` with its own `if` and `rewrite` beside another location: they hold for the
/// requests `location /` takes, not for the other location's (the proxy makes `/` a route of
/// its own). nginx and the proxy on one file: the same answers, redirects and headers, and the
/// same requests at each app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_roots_own_if_and_rewrite_hold_for_it_alone_as_in_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let api = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        add_header X-Frame-Options DENY always;
        location / {{
            if ($request_method = OPTIONS) {{
                add_header Access-Control-Allow-Origin *;
                return 204;
            }}
            rewrite ^/old/(.*)$ /new/$1 permanent;
            proxy_pass http://127.0.0.1:{app};
            proxy_set_header Host $host;
        }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{api};
        }}
"#,
            app = app.address.port(),
            api = api.address.port(),
        ),
    );
    const CASES: &[(&str, &str)] = &[
        ("OPTIONS", "/x"),
        ("GET", "/old/a?q=1"),
        ("GET", "/page"),
        ("OPTIONS", "/api/x"),
        ("GET", "/api/old/b"),
    ];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for (method, path) in CASES {
            let fields = head_from("127.0.0.1", port, d, path, &[], &["-X", method]);
            let mut got: Vec<String> = [
                ":status",
                "location",
                "access-control-allow-origin",
                "x-frame-options",
            ]
            .iter()
            .map(|name| field(&fields, name))
            .collect();
            for (name, recorder) in [("app", &app), ("api", &api)] {
                for r in recorder.take() {
                    let line: Vec<&str> = r.request_line().split(' ').collect();
                    got.push(format!("{name} {} {}", line[0], line[1]));
                }
            }
            seen.push(got);
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    for (((method, path), theirs), ours) in CASES.iter().zip(&theirs).zip(&ours) {
        assert_eq!(ours, theirs, "{method} {path}");
    }
    // What nginx did, so that the comparison means something.
    let statuses: Vec<&str> = theirs.iter().map(|got| got[0].as_str()).collect();
    assert_eq!(statuses, ["204", "301", "200", "200", "200"]);
    assert_eq!(theirs[0][2], "*");
    assert_eq!(theirs[3][4], "api OPTIONS /api/x", "not location /'s if");
    assert_eq!(theirs[4][4], "api GET /api/old/b", "nor its rewrite");
}

/// `stub_status` (the nginx-prometheus-exporter's source): the same page, to the byte but for
/// the figures, from nginx and from the proxy on one file, `text/plain`, its figures
/// consistent (requests counted, this one included; the asking connection active), behind
/// the location's access rules; other methods get 405 from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stub_status_is_the_page_nginx_serves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location = /nginx_status {{
            stub_status;
            allow 127.0.0.1;
            deny all;
        }}
"#,
            app = app.address.port(),
        ),
    );
    let probe = |d: &Path| {
        let (_, _, _, _) = answer(port, d, "/page");
        let pages: Vec<(u16, String, String)> = (0..2)
            .map(|_| {
                let (status, media, _, body) = answer(port, d, "/nginx_status");
                (status, media, body)
            })
            .collect();
        let denied = head_from("127.0.0.2", port, d, "/nginx_status", &[], &[]);
        let posted = head_from("127.0.0.1", port, d, "/nginx_status", &[], &["-X", "POST"]);
        app.take();
        (pages, field(&denied, ":status"), field(&posted, ":status"))
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    // The layout the exporter parses, figures as `N`.
    let shape = |body: &str| -> String {
        body.chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect::<String>()
            .split('N')
            .filter(|piece| !piece.is_empty())
            .collect::<Vec<_>>()
            .join("N")
    };
    let figures = |body: &str| -> Vec<u64> {
        body.split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect()
    };
    for (who, (pages, denied, posted)) in [("nginx", &theirs), ("proxy", &ours)] {
        for (status, media, body) in pages {
            assert_eq!(*status, 200, "{who}: {body}");
            assert_eq!(media, "text/plain", "{who}");
            assert_eq!(shape(body), shape(&theirs.0[0].2), "{who}: {body:?}");
            let [
                active,
                accepts,
                handled,
                requests,
                reading,
                writing,
                waiting,
            ] = figures(body)[..]
            else {
                panic!("{who}: {body:?}");
            };
            assert!(
                active >= 1 && active == reading + writing + waiting,
                "{who}: {body}"
            );
            assert!(accepts >= handled && handled >= 1, "{who}: {body}");
            assert!(requests >= 2, "{who}: the page and this request: {body}");
        }
        let requests = |i: usize| figures(&pages[i].2)[3];
        assert!(requests(1) > requests(0), "{who}: each request counted");
        assert_eq!(denied, "403", "{who}");
        assert_eq!(posted, "405", "{who}");
    }
    assert_eq!(
        shape(&theirs.0[0].2),
        "Active connections: N \nserver accepts handled requests\n N N N \nReading: N Writing: N \
         Waiting: N \n"
    );
}

/// `proxy_pass https://` (`upstream_tls`): nginx's defaults (no verification, no SNI), SNI with
/// `proxy_ssl_server_name on` and `proxy_ssl_name`, verification against
/// `proxy_ssl_trusted_certificate` (a wrong name refused: 502), and a client certificate. An
/// nginx serving TLS is the app; nginx and the proxy on one file get the same answers from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_spoken_to_as_nginx_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let openssl = |words: &str, more: &[&str]| openssl_in(&d, words, more);
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        &format!("req -x509 {ec} -keyout ca.key -out ca.crt -days 1 -subj"),
        &["/CN=App CA"],
    );
    for (name, subject, ext) in [
        (
            "app",
            "/CN=app.internal",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:app.internal\n",
        ),
        (
            "client",
            "/CN=front/O=Acme",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        openssl(
            &format!("req {ec} -keyout {name}.key -out {name}.csr -subj"),
            &[subject],
        );
        util::write_file(&d, &format!("{name}.ext"), ext);
        openssl(
            &format!(
                "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -set_serial 0x0{} -days 1 \
                 -extfile {name}.ext -out {name}.crt",
                name.len()
            ),
            &[],
        );
    }
    // The app: nginx over TLS, saying what it saw.
    let app_dir = d.join("app");
    std::fs::create_dir(&app_dir).unwrap();
    let app_port = util::free_port();
    let shown = d.display();
    let app_conf = util::write_file(
        &app_dir,
        "nginx.conf",
        &format!(
            "{head}    server {{\n        listen 127.0.0.1:{app_port} ssl;\n        \
             ssl_certificate {shown}/app.crt;\n        ssl_certificate_key {shown}/app.key;\n        \
             ssl_client_certificate {shown}/ca.crt;\n        ssl_verify_client optional;\n        \
             location / {{\n            return 200 \"sni=[$ssl_server_name] \
             client=[$ssl_client_s_dn] $request_uri\\n\";\n        }}\n    }}\n}}\n",
            head = nginx_head(&app_dir),
        ),
    );
    let _app = start_nginx(&app_conf, &app_dir, app_port);
    let port = util::free_port();
    let up = format!("https://127.0.0.1:{app_port}");
    let conf = tls_server(
        &d,
        port,
        // nginx shares a TLS session among the locations of one upstream address, and a
        // resumed session keeps the first handshake's SNI, client certificate and verification
        // result: each location here gets its own handshake, as the proxy's routes do.
        &format!(
            r#"        proxy_ssl_session_reuse off;
        location / {{
            proxy_pass {up};
        }}
        location /sni/ {{
            proxy_pass {up};
            proxy_ssl_server_name on;
            proxy_ssl_name app.internal;
        }}
        location /verified/ {{
            proxy_pass {up};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {shown}/ca.crt;
            proxy_ssl_name app.internal;
        }}
        location /wrong-name/ {{
            proxy_pass {up};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {shown}/ca.crt;
            proxy_ssl_name other.internal;
        }}
        location /client/ {{
            proxy_pass {up};
            proxy_ssl_certificate {shown}/client.crt;
            proxy_ssl_certificate_key {shown}/client.key;
        }}
"#
        ),
    );
    const PATHS: &[&str] = &[
        "/a?x=1",
        "/sni/b",
        "/verified/c",
        "/wrong-name/d",
        "/client/e",
    ];
    let probe = |d: &Path| {
        PATHS
            .iter()
            .map(|path| {
                let (status, _, _, body) = answer(port, d, path);
                (status, if status == 200 { body } else { String::new() })
            })
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    // What nginx did, so that the comparison means something.
    assert_eq!(theirs[0], (200, "sni=[] client=[] /a?x=1\n".to_string()));
    assert_eq!(theirs[1].1, "sni=[app.internal] client=[] /sni/b\n");
    assert_eq!(theirs[2].0, 200);
    assert_eq!(theirs[3].0, 502);
    assert_eq!(theirs[4].1, "sni=[] client=[O=Acme,CN=front] /client/e\n");
}

/// What `nginx -s reload` is for: an edited file (here an included one) is served after
/// SIGHUP; a file replaced on disk is served without one (the proxy follows its files); a file
/// nginx would refuse leaves the running configuration serving, as `nginx -s reload` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_file_is_served_after_sighup_as_nginx_reload_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let snippet = |version: &str| {
        util::write_file(
            &d,
            "headers.conf",
            &format!("add_header X-Config {version} always;\n"),
        );
    };
    snippet("one");
    let server = |more: &str| {
        tls_server(
            &d,
            port,
            &format!(
                "        include {d}/headers.conf;\n{more}        location / {{\n            \
                 proxy_pass http://127.0.0.1:{app};\n        }}\n",
                d = d.display(),
                app = app.address.port(),
            ),
        )
    };
    let conf = server("");
    let log = d.join("proxy.log");
    // The files are checked every 200 ms rather than 5 s: set beside the nginx file.
    let settings = util::write_file(
        &d,
        "settings.hcl",
        "proxy {\n  reload_interval = \"200ms\"\n}\n",
    );
    let proxy = tokio::task::spawn_blocking({
        let (conf, log) = (conf.clone(), log.clone());
        move || {
            let proxy = Launch::role("proxy", &[&settings], &log)
                .args(&["--nginx-config", conf.to_str().unwrap()])
                .spawn();
            proxy.wait_ready(Duration::from_secs(15));
            proxy
        }
    })
    .await
    .unwrap();
    let config = |d: &Path| field(&head(port, d, "/", &[]), "x-config");
    assert_eq!(config(&d), "one");

    // The included file edited in place: its directory's listing does not change, so it is
    // SIGHUP that makes the proxy read it (as nginx).
    snippet("two");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy.pid()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    util::wait_until(Duration::from_secs(15), "SIGHUP reloads", || {
        config(&d) == "two"
    });

    // The main file replaced: read again without a signal.
    let replaced = d.join("next.conf");
    std::fs::copy(
        server("        location = /new { return 204; }\n"),
        &replaced,
    )
    .unwrap();
    std::fs::rename(&replaced, &conf).unwrap();
    util::wait_until(Duration::from_secs(15), "the changed file is read", || {
        field(&head(port, &d, "/new", &[]), ":status") == "204"
    });

    // A file that does not load: the running configuration serves on, and the log says why.
    std::fs::write(&conf, "server {\n    listen 127.0.0.1:1 ssl\n").unwrap();
    util::wait_until(Duration::from_secs(15), "the failure is counted", || {
        proxy.metric("pki_sidecar_proxy_config_reloads_total{result=\"failure\"}") >= 1.0
    });
    assert_eq!(field(&head(port, &d, "/new", &[]), ":status"), "204");
    assert_eq!(config(&d), "two");
    assert!(!app.take().is_empty());
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("configuration reloaded") && log.contains("does not load"),
        "{log}"
    );
}

/// The length of a chunked body as the recorder kept it (framing included), or `None` when
/// its framing is not whole.
fn chunked_length(mut body: &[u8]) -> Option<usize> {
    let mut total = 0;
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return body.ends_with(b"\r\n").then_some(total);
        }
        total += size;
        body = body.get(size + 2..)?;
    }
}

/// nginx's `proxy_request_buffering on` (its default): a body sent without a length (chunked,
/// or an HTTP/2 stream without `content-length`) reaches the app whole with a
/// `Content-Length`, as apps that cannot read a chunked body (Python's wsgiref, Django's
/// runserver) need; with `proxy_request_buffering off` and `proxy_http_version 1.1` it goes
/// on chunked; `off` without 1.1 is buffered all the same. Same file, same requests, nginx's
/// and the proxy's app see the same framing and length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_without_a_length_reach_the_app_as_nginx_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start("").await;
    let port = util::free_port();
    let preamble = nginx_head(&d);
    let shown = d.display();
    let pass = format!("proxy_pass http://127.0.0.1:{};", app.address.port());
    let conf = util::write_file(
        &d,
        "nginx.conf",
        &format!(
            "{preamble}    server {{\n        listen 127.0.0.1:{port} ssl http2;\n        \
             ssl_certificate {shown}/tls.crt;\n        ssl_certificate_key {shown}/tls.key;\n        \
             client_max_body_size 10m;\n        \
             location / {{ {pass} }}\n        \
             location /stream/ {{ {pass} proxy_request_buffering off; proxy_http_version 1.1; }}\n        \
             location /old/ {{ {pass} proxy_request_buffering off; }}\n    }}\n}}\n"
        ),
    );
    let upload = d.join("upload");
    std::fs::write(&upload, vec![b'x'; 70_000]).unwrap();
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for path in ["/", "/stream/", "/old/"] {
            for (version, sent) in [
                ("--http1.1", "chunked"),
                ("--http2", "unknown"),
                ("--http1.1", "sized"),
            ] {
                // `-T -` reads stdin: a body of unknown length, chunked over HTTP/1.1 and
                // without content-length over HTTP/2; `--data-binary @FILE` announces one.
                let mut curl = Command::new("curl");
                curl.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                    .args(["--max-time", "10", version, "-X", "POST", "-H", "Expect:"]);
                if sent == "sized" {
                    curl.arg("--data-binary")
                        .arg(format!("@{}", upload.display()));
                } else {
                    curl.args(["-T", "-"])
                        .stdin(std::fs::File::open(&upload).unwrap());
                }
                let output = curl
                    .arg("--cacert")
                    .arg(d.join("tls.crt"))
                    .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                    .arg(format!("https://localhost:{port}{path}"))
                    .output()
                    .expect("run curl");
                let status = String::from_utf8_lossy(&output.stdout).to_string();
                let received = app.take();
                assert_eq!(received.len(), 1, "{path} {version} {sent}: {output:?}");
                let r = &received[0];
                let framing = match (
                    r.header("content-length").as_slice(),
                    r.header("transfer-encoding").as_slice(),
                ) {
                    (&[length], []) => {
                        assert_eq!(r.body.len().to_string(), length);
                        format!("content-length {length}")
                    }
                    ([], &["chunked"]) => {
                        format!("chunked {:?}", chunked_length(&r.body))
                    }
                    (lengths, codings) => format!("{lengths:?} {codings:?}"),
                };
                seen.push(format!("{path} {version} {sent} -> {status}: {framing}"));
            }
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    assert_eq!(ours, theirs);
    assert!(
        theirs.contains(&"/ --http1.1 chunked -> 200: content-length 70000".into()),
        "{theirs:#?}"
    );
    assert!(
        theirs.contains(&"/stream/ --http2 unknown -> 200: chunked Some(70000)".into()),
        "{theirs:#?}"
    );
}

/// An app's `X-Accel-Redirect` (Django's and Rails' protected downloads): the request goes on to
/// the path the header names, an `internal` location's files or another upstream location
/// (GET, HEAD kept), or to a named location; the app's body is dropped and the response is the
/// path's, with the app's `Content-Type`, `Content-Disposition`, `Set-Cookie`,
/// `Cache-Control`, `Expires` and (on a success) `Accept-Ranges`; an error page's path is
/// followed too. nginx and the proxy on one file answer the same statuses, headers and bodies;
/// `proxy_ignore_headers X-Accel-Redirect` passes the app's answer as it is, without the
/// header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_accel_redirect_is_followed_as_nginx_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let www = d.join("www");
    std::fs::create_dir_all(www.join("protected")).unwrap();
    util::write_file(&www, "protected/report.txt", "the protected report\n");
    util::write_file(&www, "protected/a b.txt", "a file with a space\n");
    let app = Recorder::start_with("", Answer::Accel).await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        types {{
            text/plain txt;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location /protected/ {{
            internal;
            root {www};
        }}
        location @named {{
            return 200 "named\n";
        }}
        location /accel/plain/ {{
            proxy_ignore_headers X-Accel-Redirect;
            proxy_pass http://127.0.0.1:{app};
        }}
        location /gone/ {{
            error_page 404 =200 /accel/inner/page;
            root {www};
        }}
"#,
            www = www.display(),
            app = app.address.port(),
        ),
    );
    // Path, header lines, curl options.
    let requests: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("/accel/protected/report.txt", vec![], vec![]),
        ("/accel/protected/a%20b.txt", vec![], vec![]),
        (
            "/accel/protected/report.txt",
            vec!["Range: bytes=4-12"],
            vec![],
        ),
        ("/accel/protected/missing.txt", vec![], vec![]),
        ("/accel/protected/%2e%2e/%2e%2e/etc/passwd", vec![], vec![]),
        ("/accel/inner/z?a=b", vec![], vec![]),
        ("/accel/inner/z", vec![], vec!["-I"]),
        ("/accel@named", vec![], vec![]),
        ("/protected/report.txt", vec![], vec![]),
        ("/accel/plain/x", vec![], vec![]),
        ("/no-redirect", vec![], vec![]),
        ("/gone/x", vec![], vec![]),
    ];
    let probe = |d: &Path| {
        let mut seen = Vec::new();
        for (path, lines, options) in &requests {
            let output = Command::new("curl")
                .args(options)
                .args(["-sS", "-i", "--max-time", "10", "--cacert"])
                .arg(d.join("tls.crt"))
                .args(lines.iter().flat_map(|line| ["-H", *line]))
                .arg(format!("https://localhost:{port}{path}"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .output()
                .expect("run curl");
            let text = String::from_utf8_lossy(&output.stdout).to_string();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let status = head.split(' ').nth(1).unwrap_or_default().to_string();
            let success = status.starts_with('2');
            let mut kept: Vec<String> = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
                // Each server's own; and X-Accel-Buffering, which the proxy passes on and
                // nginx hides (COMPATIBILITY.md).
                .filter(|(name, _)| {
                    !matches!(
                        name.as_str(),
                        "date" | "server" | "connection" | "x-accel-buffering"
                    ) && (success || !matches!(name.as_str(), "content-type" | "content-length"))
                })
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            kept.sort();
            // Error pages are each server's own text.
            let body = if success { body } else { "" };
            seen.push(format!(
                "{path} {lines:?} {options:?} -> {status} {kept:?} {body:?}"
            ));
        }
        seen
    };
    let (theirs, ours) = nginx_then_proxy(&conf, &d, port, probe).await;
    let differ: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(ours, theirs)| ours != theirs)
        .map(|(ours, theirs)| format!("proxy: {ours}\nnginx: {theirs}"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(ours.len(), requests.len());
    // What nginx did, so that the comparison means something.
    let all = theirs.join("\n");
    assert!(all.contains("\"the protected report\\n\""), "{all}");
    assert!(all.contains("content-type: text/x-app"), "{all}");
    assert!(all.contains("content-disposition: attachment"), "{all}");
    assert!(!theirs[0].contains("x-custom"), "{all}");
    assert!(theirs[9].contains("x-custom"), "{all}");
    // An error page whose path the app answers with `X-Accel-Redirect`.
    assert!(theirs[11].contains("inner GET /inner/page"), "{all}");
    assert!(all.contains("inner GET /inner/z?a=b"), "{all}");
    assert!(all.contains("the app's own body"), "{all}");
    assert!(!all.contains("x-accel-redirect"), "{all}");
}

/// What the comparison with nginx leaves out: a POST sent on by `X-Accel-Redirect` reaches the
/// named path as a GET without the body (nginx sends the body again), and an app that keeps
/// answering with `X-Accel-Redirect` gets a 500 after ten hops, as nginx's limit of internal
/// redirects gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_accel_redirect_drops_the_body_and_stops_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    pair(&d);
    let app = Recorder::start_with("", Answer::Accel).await;
    let port = util::free_port();
    let conf = tls_server(
        &d,
        port,
        &format!(
            r#"        location / {{
            proxy_pass http://127.0.0.1:{app};
        }}
        location @app {{
            proxy_pass http://127.0.0.1:{app};
        }}
"#,
            app = app.address.port(),
        ),
    );
    let proxy = start_proxy(&conf, d.join("proxy.log")).await;
    let curl = |path: &str, options: &[&str]| {
        let output = Command::new("curl")
            .args(options)
            .args(["-sS", "-i", "--http1.1", "--max-time", "10", "--cacert"])
            .arg(d.join("tls.crt"))
            .arg(format!("https://localhost:{port}{path}"))
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let posted = curl("/accel/inner/z", &["--data-binary", "form=1"]);
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    assert!(posted.ends_with("inner GET /inner/z \n"), "{posted}");
    let received = app.wait_take(2).await;
    assert_eq!(received[0].request_line(), "POST /accel/inner/z HTTP/1.1");
    assert_eq!(received[0].body, b"form=1");
    assert_eq!(received[1].request_line(), "GET /inner/z HTTP/1.1");
    assert!(received[1].header("content-length").is_empty());
    assert!(received[1].body.is_empty());
    let looped = curl("/accel@app", &[]);
    assert!(looped.starts_with("HTTP/1.1 500"), "{looped}");
    // The first request and ten hops.
    assert_eq!(app.wait_take(11).await.len(), 11);
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("X-Accel-Redirect sent the request on 10 times"),
        "{log}"
    );
}
