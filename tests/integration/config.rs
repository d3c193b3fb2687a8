//! Config loading as users meet it: the seed's file, the fixtures through `validate`, layering
//! of files and environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pki_sidecar::config::{
    self, AuthKind, FileSink, LogFormat, TemplateCommand, TemplateSource, Wait,
};

use crate::util;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = util::repo().join("tests/fixtures/config").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "hcl" || e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(util::repo())
        .expect("fixture under the repo")
        .display()
        .to_string()
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn seed_agent_file_loads_to_the_expected_values() {
    let config = config::load_with_env(
        &[util::repo().join("etc/agent.hcl")],
        &no_env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .unwrap_or_else(|e| panic!("the seed's file must load: {e}"));
    assert!(!config.exit_after_auth);
    assert_eq!(
        config.pid_file.as_deref(),
        Some(Path::new("/home/vault/pidfile"))
    );
    let auto_auth = config.auto_auth.as_ref().expect("auto_auth");
    assert_eq!(auto_auth.method.mount_path, "auth/kubernetes");
    assert_eq!(auto_auth.method.mount(), "kubernetes");
    assert_eq!(
        auto_auth.method.kind,
        AuthKind::Kubernetes {
            role: "authkube".into(),
            token_path: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
        }
    );
    assert_eq!(auto_auth.method.min_backoff, Duration::from_secs(1));
    assert_eq!(auto_auth.method.max_backoff, Duration::from_secs(300));
    assert_eq!(
        auto_auth.sinks,
        vec![FileSink {
            path: "/home/vault/.vault-token".into(),
            mode: 0o640,
            wrap_ttl: None,
        }]
    );
    assert_eq!(config.templates.len(), 1);
    let template = &config.templates[0];
    assert_eq!(template.destination, Path::new("/etc/nginx/ssl/tls.crt"));
    assert_eq!(
        template.perms,
        Some(0o644),
        "perms = 0644 is octal, as in Vault's HCL1"
    );
    let TemplateSource::Contents(contents) = &template.source else {
        panic!("the seed's template is inline");
    };
    assert!(contents.starts_with(
        "{{- with pkiCert \"pki_intermediate/issue/home\" \"common_name=foo.home\" \
         \"alt_names=localhost,bar.home\" \"ttl=24h\" -}}\n"
    ));
    assert!(
        contents.contains(
            "{{ .Data.Key | writeToFile \"/etc/nginx/ssl/tls.key\" \"\" \"\" \"0644\" }}\n"
        )
    );
    assert!(
        contents.ends_with("{{ end }}    \n"),
        "trailing spaces kept: {contents:?}"
    );
    assert_eq!(
        (
            template.left_delimiter.as_str(),
            template.right_delimiter.as_str()
        ),
        ("{{", "}}")
    );
    assert!(template.create_dest_dirs);
    // Defaults for everything the seed leaves out.
    assert_eq!(config.vault.address, "https://127.0.0.1:8200");
    assert_eq!(config.vault.num_retries, 12);
    assert!((config.template_config.lease_renewal_threshold - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        config.template_config.max_connections_per_host, 10,
        "Vault Agent's default"
    );
    assert_eq!(config.telemetry.metrics_listen.to_string(), "0.0.0.0:9101");
    assert_eq!(config.proxy.listen.to_string(), "0.0.0.0:443");
    assert_eq!(config.proxy.upstream.to_string(), "http://127.0.0.1:80/");
    assert_eq!(config.proxy.cert_file, Path::new("/etc/nginx/ssl/tls.crt"));
    assert_eq!(config.proxy.key_file, Path::new("/etc/nginx/ssl/tls.key"));
    assert_eq!(config.proxy.metrics_listen.to_string(), "0.0.0.0:9102");
    assert_eq!(config.proxy.max_request_body, None, "no limit unless asked");
    assert_eq!(
        config.proxy.request_buffering,
        Some(1 << 20),
        "a body without a length held up to 1 MiB, as nginx's proxy_request_buffering on"
    );
    assert_eq!(
        config.proxy.body_read_timeout,
        Duration::from_secs(60),
        "nginx's client_body_timeout"
    );
    assert!(!config.proxy.tls13_only, "TLS 1.2 and 1.3 by default");
    assert!(config.proxy.session_tickets, "stateless tickets by default");
    assert_eq!(config.app.listen.to_string(), "127.0.0.1:80");
    assert_eq!(config.app.metrics_listen.to_string(), "0.0.0.0:9103");
    assert_eq!(config.app.shutdown_grace, Duration::from_secs(10));
    assert_eq!(
        (
            config.listen_backlog,
            config.telemetry.listen_backlog,
            config.proxy.listen_backlog,
            config.app.listen_backlog
        ),
        (4096, 4096, 4096, 4096),
        "every listener's backlog defaults to 4096"
    );
}

#[test]
fn seed_agent_file_validates_with_the_seed_environment() {
    // The seed's app-cm ConfigMap sets these two for the agent container.
    let output = util::command()
        .args(["validate", "--config", "etc/agent.hcl", "--role", "agent"])
        .env("VAULT_ADDR", "https://vault.home")
        .env("VAULT_CACERT", "/etc/ssl/certs/vault.pem")
        .output()
        .expect("run validate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("https://vault.home, CA /etc/ssl/certs/vault.pem"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kubernetes at auth/kubernetes: role authkube"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> /etc/nginx/ssl/tls.crt (perms 0644)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("proxy:"),
        "--role agent shows the agent only: {stdout}"
    );
}

#[test]
fn every_invalid_fixture_exits_78_with_its_exact_message() {
    let files = fixtures("invalid");
    for file in &files {
        let expected_path = file.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!("{} needs {}: {e}", file.display(), expected_path.display())
        });
        let output = util::command()
            .args(["validate", "--config", &relative(file)])
            .output()
            .expect("run validate");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(78),
            "{}: stderr {stderr}",
            file.display()
        );
        assert_eq!(stderr, expected, "{}", file.display());
        assert!(
            output.stdout.is_empty(),
            "{}: nothing on stdout",
            file.display()
        );
    }
    // Every expectation belongs to a fixture.
    let dir = util::repo().join("tests/fixtures/config/invalid");
    for entry in std::fs::read_dir(&dir).expect("read fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(
                path.with_extension("hcl").exists(),
                "orphan {}",
                path.display()
            );
        }
    }
}

#[test]
fn every_valid_fixture_validates() {
    for file in fixtures("valid") {
        let output = util::command()
            .args(["validate", "--config", &relative(&file)])
            .output()
            .expect("run validate");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.starts_with(&format!("{}: valid\n", relative(&file))),
            "{stdout}"
        );
    }
}

#[test]
fn every_key_fixture_resolves_every_key() {
    let path = util::repo().join("tests/fixtures/config/valid/every-key.hcl");
    let config = config::load_with_env(
        &[path],
        &no_env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .expect("every-key.hcl loads");
    assert_eq!(config.logging.level.as_deref(), Some("debug"));
    assert_eq!(config.logging.format, Some(LogFormat::Json));
    assert_eq!(config.shutdown_grace, Duration::from_secs(20));
    let vault = &config.vault;
    assert_eq!(
        vault.address, "https://vault.example:8200",
        "trailing slash trimmed"
    );
    assert_eq!(
        vault.ca_path.as_deref(),
        Some(Path::new("/etc/ssl/vault-cas"))
    );
    assert_eq!(
        vault.client_key.as_deref(),
        Some(Path::new("/etc/vault/client.key"))
    );
    assert_eq!(vault.tls_server_name.as_deref(), Some("vault.internal"));
    assert_eq!(vault.namespace.as_deref(), Some("team-a"));
    assert_eq!(vault.num_retries, 5);
    let auto_auth = config.auto_auth.as_ref().expect("auto_auth");
    let method = &auto_auth.method;
    assert_eq!(method.mount_path, "auth/k8s-prod");
    assert_eq!(method.namespace.as_deref(), Some("team-a/k8s"));
    assert_eq!(
        (method.min_backoff, method.max_backoff),
        (Duration::from_secs(2), Duration::from_secs(60))
    );
    assert!(method.exit_on_err);
    assert_eq!(
        method.kind,
        AuthKind::Kubernetes {
            role: "authkube".into(),
            token_path: "/var/run/secrets/tokens/vault".into()
        }
    );
    assert_eq!(
        auto_auth.sinks,
        vec![
            FileSink {
                path: "/home/vault/.vault-token".into(),
                mode: 0o600,
                wrap_ttl: None,
            },
            FileSink {
                path: "/run/token-copy".into(),
                mode: 0o644,
                wrap_ttl: Some(Duration::from_secs(600)),
            },
        ]
    );
    assert!(config.template_config.exit_on_retry_failure);
    assert_eq!(
        config.template_config.static_secret_render_interval,
        Duration::from_secs(600)
    );
    assert_eq!(config.template_config.lease_renewal_threshold, 0.5);
    assert_eq!(config.template_config.max_connections_per_host, 4);
    let [first, second] = config.templates.as_slice() else {
        panic!("two templates");
    };
    assert_eq!(
        first.source,
        TemplateSource::File("tests/fixtures/config/valid/cert.tpl".into())
    );
    assert_eq!(first.perms, Some(0o640));
    assert!(!first.create_dest_dirs);
    assert!(first.error_on_missing_key);
    assert_eq!(
        (
            first.left_delimiter.as_str(),
            first.right_delimiter.as_str()
        ),
        ("[[", "]]")
    );
    assert_eq!(
        first.command,
        Some(TemplateCommand::Argv(vec![
            "/bin/kill".into(),
            "-HUP".into(),
            "1".into()
        ]))
    );
    assert_eq!(first.command_timeout, Duration::from_secs(90));
    assert_eq!(
        first.wait,
        Some(Wait {
            min: Duration::from_secs(2),
            max: Duration::from_secs(10)
        })
    );
    assert_eq!(
        second.command,
        Some(TemplateCommand::Shell("echo rendered".into()))
    );
    assert_eq!(second.perms, None);
    assert_eq!(
        config.telemetry.metrics_listen.to_string(),
        "127.0.0.1:19101"
    );
    assert_eq!(
        config.telemetry.cert_labels,
        std::collections::BTreeMap::from([("/etc/tls/tls.crt".into(), "web".to_string())])
    );
    assert_eq!(config.proxy.cert_label, "web");
    assert_eq!(config.proxy.max_request_body, Some(20 << 20));
    assert_eq!(config.proxy.request_buffering, Some(2 << 20));
    assert_eq!(config.proxy.body_read_timeout, Duration::from_secs(30));
    assert_eq!(config.proxy.routes[0].request_buffering, None);
    assert!(config.proxy.tls13_only);
    assert!(!config.proxy.session_tickets);
    assert_eq!(
        config.proxy.request_headers,
        [
            ("Authorization".to_string(), String::new()),
            ("X-Client".to_string(), "$remote_addr".to_string()),
            ("X-Forwarded-Port".to_string(), "443".to_string()),
        ]
    );
    assert!(config.proxy.drop_underscore_headers);
    assert_eq!(
        config.proxy.redirect_rewrite,
        [config::RedirectRewrite {
            from: "http://".into(),
            to: "https://".into()
        }]
    );
    assert_eq!(config.proxy.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(config.proxy.upstream.to_string(), "http://127.0.0.1:8080/");
    assert_eq!(
        config.proxy.metrics_listen.to_string(),
        "0.0.0.0:19102",
        "Go's :PORT form"
    );
    assert_eq!(config.proxy.shutdown_grace, Duration::from_secs(30));
    assert_eq!(
        config
            .proxy
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.0.0.0/8", "fd00::/8"]
    );
    assert_eq!(
        config.proxy.hsts.as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
    {
        use pki_sidecar::config::{ErrorPage, ErrorPageStatus, ErrorPageTarget};
        let pages = &config.proxy.error_pages;
        assert_eq!(
            pages[0],
            ErrorPage {
                statuses: vec![500, 502, 503, 504],
                page: ErrorPageTarget::Uri("/50x.html".into()),
                status: ErrorPageStatus::Kept,
            }
        );
        assert_eq!(pages[1].page, ErrorPageTarget::Named("app".into()));
        assert_eq!(pages[1].status, ErrorPageStatus::OfPage);
        assert_eq!(pages[2].status, ErrorPageStatus::Set(303));
        assert!(config.proxy.intercept_errors);
        let errors = config
            .proxy
            .routes
            .iter()
            .find(|route| route.path.to_string() == "= /50x.html")
            .expect("the error page's route");
        assert!(errors.internal && !errors.intercept_errors);
        assert_eq!(errors.error_pages[0].status, ErrorPageStatus::Set(200));
        assert!(config.proxy.accel_redirect && !errors.accel_redirect);
        // A route without its own takes the proxy's.
        assert_eq!(&config.proxy.routes[1].error_pages, pages);
        assert!(config.proxy.routes[1].intercept_errors);
        assert!(config.proxy.routes[1].accel_redirect);
        assert_eq!(config.proxy.auth_request.as_deref(), Some("/auth"));
        assert_eq!(
            config.proxy.routes[1].auth_request.as_deref(),
            Some("/auth")
        );
        let tls = &config.proxy.upstream_tls;
        assert!(tls.verify && !tls.send_server_name);
        assert_eq!(tls.server_name.as_deref(), Some("app.internal"));
        assert_eq!(
            tls.client_cert,
            Some((
                "/etc/app-tls/client.crt".into(),
                "/etc/app-tls/client.key".into()
            ))
        );
        let auth = config
            .proxy
            .routes
            .iter()
            .find(|route| route.path.to_string() == "= /auth")
            .expect("the auth route");
        assert_eq!(auth.auth_request, None, "off");
        assert_eq!(auth.upstream.to_string(), "https://127.0.0.1:4443/");
        assert!(
            !auth.upstream_tls.verify && auth.upstream_tls.send_server_name,
            "its own, whole"
        );
        assert_eq!(config.proxy.maps[0].name, "cors_origin");
        assert_eq!(
            config.proxy.response_headers,
            [(
                "Access-Control-Allow-Origin".to_string(),
                "$cors_origin".to_string()
            )]
        );
    }
    assert_eq!(config.listen_backlog, 1024);
    assert_eq!(
        config.telemetry.listen_backlog, 1024,
        "the agent's metrics listener takes the top-level backlog"
    );
    assert_eq!(config.proxy.listen_backlog, 511);
    assert_eq!(config.app.listen_backlog, 2048, "a number in a string");
    assert_eq!(config.app.metrics_listen.to_string(), "[::1]:19103");
    assert_eq!(
        config.app.shutdown_grace,
        Duration::from_secs(5),
        "bare seconds"
    );
}

#[test]
fn other_auth_methods_resolve() {
    let load = |name: &str| {
        let path = util::repo().join("tests/fixtures/config/valid").join(name);
        config::load_with_env(
            &[path],
            &no_env,
            &pki_sidecar::agent::functions::KnownFunctions,
        )
        .expect("fixture loads")
        .auto_auth
        .expect("auto_auth")
    };
    let approle = load("approle.hcl");
    assert_eq!(approle.method.mount_path, "auth/approle");
    assert_eq!(
        approle.method.kind,
        AuthKind::AppRole {
            role_id_file_path: "/etc/vault/role-id".into(),
            secret_id_file_path: Some("/etc/vault/secret-id".into()),
            remove_secret_id_file_after_reading: false,
            secret_id_response_wrapping_path: None,
        }
    );
    let jwt = load("jwt.hcl");
    assert_eq!(
        jwt.method.kind,
        AuthKind::Jwt {
            path: "/var/run/secrets/tokens/vault-jwt".into(),
            role: "app".into()
        }
    );
    let cert = load("cert-auth.hcl");
    assert_eq!(
        cert.method.kind,
        AuthKind::Cert {
            name: Some("web".into()),
            client_cert: Some("/etc/vault/client.pem".into()),
            client_key: Some("/etc/vault/client-key.pem".into()),
            ca_cert: Some("/etc/vault/ca.pem".into()),
        }
    );
    let token = load("token-file.hcl");
    assert_eq!(
        token.method.kind,
        AuthKind::TokenFile {
            token_file_path: "/home/vault/.vault-token-in".into()
        }
    );
}

#[test]
fn environment_overrides_the_file_and_bao_wins_over_vault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "a.hcl",
        "vault {\n  address = \"https://from-file:8200\"\n  namespace = \"file-ns\"\n}\n",
    );
    let env: HashMap<&str, &str> = [
        ("VAULT_ADDR", "https://from-vault-env:8200"),
        ("BAO_ADDR", "https://from-bao-env:8200"),
        ("VAULT_CACERT", "/ca.pem"),
        ("VAULT_SKIP_VERIFY", "true"),
        ("VAULT_NAMESPACE", ""),
        ("VAULT_MAX_RETRIES", "-1"),
        ("VAULT_CLIENT_TIMEOUT", "90"),
        ("VAULT_LOG_LEVEL", "warn"),
        ("BAO_LOG_FORMAT", "json"),
    ]
    .into_iter()
    .collect();
    let config = config::load_with_env(
        &[file],
        &|name| env.get(name).map(|v| v.to_string()),
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .expect("loads");
    assert_eq!(config.vault.address, "https://from-bao-env:8200");
    assert_eq!(config.vault.ca_cert.as_deref(), Some(Path::new("/ca.pem")));
    assert!(config.vault.tls_skip_verify);
    assert_eq!(
        config.vault.namespace.as_deref(),
        Some("file-ns"),
        "an empty variable is unset"
    );
    assert_eq!(config.vault.num_retries, 0, "-1 disables retries");
    assert_eq!(
        config.vault.client_timeout,
        std::time::Duration::from_secs(90),
        "VAULT_CLIENT_TIMEOUT in seconds, as Vault reads it"
    );
    assert_eq!(
        config.logging.level.as_deref(),
        Some("warn"),
        "VAULT_LOG_LEVEL"
    );
    assert_eq!(
        config.logging.format,
        Some(config::LogFormat::Json),
        "BAO_LOG_FORMAT"
    );
}

#[test]
fn a_file_the_hcl_parser_chokes_on_ends_in_an_error_not_a_hang() {
    // Found by fuzzing: hcl-edit 0.10 needs about 110 s for this 1,971-byte malformed file.
    let started = std::time::Instant::now();
    let output = util::command()
        .args([
            "validate",
            "--config",
            "fuzz/slow/config/hcl-edit-110-seconds-1971-bytes",
        ])
        .output()
        .expect("run validate");
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "fuzz/slow/config/hcl-edit-110-seconds-1971-bytes: the HCL parser gave up after 10 s"
        ),
        "{stderr}"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(40),
        "took {elapsed:?}"
    );
}

#[test]
fn a_zero_client_timeout_is_refused() {
    let output = util::command()
        .args(["validate", "--config", "etc/agent.hcl"])
        .env("VAULT_CLIENT_TIMEOUT", "0s")
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "environment variable VAULT_CLIENT_TIMEOUT: vault.client_timeout: 0 would give"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let output = util::command()
        .args(["validate", "--config", "etc/agent.hcl"])
        .env("BAO_SKIP_VERIFY", "maybe")
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "environment variable BAO_SKIP_VERIFY: vault.tls_skip_verify: \"maybe\" is not true or false\n"
    );
}

#[test]
fn an_error_names_the_line_of_its_key_in_the_file_it_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = util::write_file(
        dir.path(),
        "first.hcl",
        "template {\n  contents = \"a\"\n  destination = \"/a\"\n}\ntemplate {\n  \
         contents = \"b\"\n  destination = \"/b\"\n}\n",
    );
    // The second file's second template is the third of the load: its error points at the
    // second file's own line.
    let second = util::write_file(
        dir.path(),
        "second.hcl",
        "vault {\n  address = \"https://v:8200\"\n}\n\ntemplate {\n  contents = \"c\"\n  \
         destination = \"/c\"\n}\n\ntemplate {\n  contents = \"d\"\n  destination = \
         \"/d\"\n  perms = \"rw\"\n}\nauto_auth {\n  method \"kubernetes\" {\n    config = {\n      \
         token_path = \"/t\"\n    }\n  }\n}\n",
    );
    let output = util::command()
        .arg("validate")
        .args(["--config", first.to_str().unwrap()])
        .args(["--config", second.to_str().unwrap()])
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    let second = second.display();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            // A missing key points at the block that lacks it.
            "{second}:17:5: auto_auth.method.config.role: is required by the kubernetes method\n\
             {second}:13:3: template[3].perms: \"rw\" is not an octal file mode; write an octal \
             mode such as 0640 or \"0640\"\n"
        )
    );
    // The same from a JSON file.
    let json = util::write_file(
        dir.path(),
        "agent.json",
        "{\n  \"template\": [\n    {\"contents\": \"a\", \"destination\": \"/a\"},\n    \
         {\"contents\": \"b\", \"destination\": \"/b\",\n     \"perms\": \"rw\"}\n  ]\n}\n",
    );
    let output = util::command()
        .args(["validate", "--config", json.to_str().unwrap()])
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "{}:5:6: template[1].perms: \"rw\" is not an octal file mode; write an octal mode \
             such as 0640 or \"0640\"\n",
            json.display()
        )
    );
}

#[test]
fn later_files_override_earlier_ones_and_templates_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = util::write_file(
        dir.path(),
        "base.hcl",
        "pid_file = \"/base.pid\"\nvault {\n  address = \"https://base:8200\"\n  namespace = \"ns\"\n}\n\
         template {\n  contents = \"a\"\n  destination = \"/a\"\n}\n",
    );
    let overlay = util::write_file(
        dir.path(),
        "overlay.hcl",
        "vault {\n  address = \"https://overlay:8200\"\n}\ntemplate {\n  contents = \"b\"\n  destination = \"/b\"\n}\n",
    );
    let config = config::load_with_env(
        &[base.clone(), overlay.clone()],
        &no_env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .expect("loads");
    assert_eq!(config.vault.address, "https://overlay:8200");
    assert_eq!(
        config.vault.namespace, None,
        "a later vault {{}} replaces the earlier one whole, as Vault Agent's Config.Merge"
    );
    assert_eq!(config.pid_file.as_deref(), Some(Path::new("/base.pid")));
    let destinations: Vec<_> = config
        .templates
        .iter()
        .map(|t| t.destination.clone())
        .collect();
    assert_eq!(destinations, vec![PathBuf::from("/a"), PathBuf::from("/b")]);

    // Through the binary: --config repeated, and PKI_SIDECAR_CONFIG as a comma-separated list.
    let broken = util::write_file(
        dir.path(),
        "broken.hcl",
        "vault {\n  address = \"nope\"\n}\n",
    );
    let output = util::command()
        .arg("validate")
        .args([
            "--config",
            base.to_str().unwrap(),
            "--config",
            broken.to_str().unwrap(),
        ])
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "{}:2:3: vault.address: \"nope\" is not a Vault address such as https://vault.example:8200\n",
            broken.display()
        ),
        "the error names the file the bad value came from, and its line"
    );
    let output = util::command()
        .arg("validate")
        .env(
            "PKI_SIDECAR_CONFIG",
            format!("{},{}", base.display(), overlay.display()),
        )
        .output()
        .expect("run validate");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with(&format!(
            "{}, {}: valid\n",
            base.display(),
            overlay.display()
        )),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn role_checks_apply_only_to_the_role_asked_for() {
    let fixture = "tests/fixtures/config/valid/proxy-and-app-only.hcl";
    let output = util::command()
        .args(["validate", "--config", fixture])
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("agent:\n  not configured"));
    let output = util::command()
        .args(["validate", "--config", fixture, "--role", "agent"])
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "{fixture}: auto_auth: the agent role needs an auto_auth block with a method to \
             log in to Vault\n"
        )
    );
}

#[test]
fn validate_without_a_file_and_a_missing_file_are_config_errors() {
    let output = util::command()
        .arg("validate")
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    let output = util::command()
        .args(["validate", "--config", "does/not/exist.hcl"])
        .output()
        .expect("run validate");
    assert_eq!(output.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .starts_with("does/not/exist.hcl: cannot read: No such file or directory"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn version_and_help_need_no_config() {
    let output = util::command()
        .arg("--version")
        .output()
        .expect("run --version");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "pki-sidecar {} (commit {})\n",
            env!("CARGO_PKG_VERSION"),
            env!("PKI_SIDECAR_GIT_COMMIT")
        )
    );
    // A checkout builds with its commit (build.rs), never the tarball's `unknown`.
    let commit = env!("PKI_SIDECAR_GIT_COMMIT");
    assert!(
        commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );
    let output = util::command().arg("--help").output().expect("run --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["agent", "proxy", "app", "validate", "check"] {
        assert!(help.contains(command), "--help lists {command}: {help}");
    }
}

/// The keys `src/config/raw.rs` accepts, as `(struct, key)`: each `pub NAME: Option<...>` field
/// of each `pub` or `pub(crate) struct Raw...`, under its `#[serde(rename = "...")]` when it has one.
fn raw_config_keys() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(util::repo().join("src/config/raw.rs")).expect("raw.rs");
    let mut keys = Vec::new();
    let mut current: Option<String> = None;
    let mut rename: Option<String> = None;
    for line in source.lines() {
        let line = line.trim();
        if let Some(rest) = line
            .strip_prefix("pub struct Raw")
            .or_else(|| line.strip_prefix("pub(crate) struct Raw"))
        {
            current = rest.split_whitespace().next().map(str::to_string);
        } else if line == "}" {
            current = None;
        } else if let Some(name) = line
            .strip_prefix("#[serde(rename = \"")
            .and_then(|rest| rest.split('"').next())
        {
            rename = Some(name.to_string());
        } else if let (Some(block), Some(field)) = (&current, line.strip_prefix("pub "))
            && let Some((name, _)) = field.split_once(": Option<")
        {
            keys.push((
                block.clone(),
                rename.take().unwrap_or_else(|| name.to_string()),
            ));
        }
    }
    keys
}

#[test]
fn every_config_key_is_in_the_readme_reference() {
    let keys = raw_config_keys();
    assert!(keys.len() > 60, "raw.rs parsed into too few keys: {keys:?}");
    let readme = std::fs::read_to_string(util::repo().join("README.md")).expect("README.md");
    let start = readme
        .find("\n## Configuration\n")
        .expect("a ## Configuration section in README.md");
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |at| start + 1 + at);
    let reference = &readme[start..end];
    // A key is documented when it appears as a word inside a `code span` of the reference:
    // `proxy.listen`, `retry { num_retries }`, `sink "file"`...
    let spans: Vec<&str> = reference.split('`').skip(1).step_by(2).collect();
    let is_word = |span: &str, key: &str| {
        span.match_indices(key).any(|(at, _)| {
            let before = span[..at].chars().next_back();
            let after = span[at + key.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            boundary(before) && boundary(after)
        })
    };
    let missing: Vec<String> = keys
        .iter()
        .filter(|(_, key)| !spans.iter().any(|span| is_word(span, key)))
        .map(|(block, key)| format!("{key} (Raw{block})"))
        .collect();
    assert!(
        missing.is_empty(),
        "config keys missing from README.md's ## Configuration: {missing:?}"
    );
}

/// Vault Agent's `Config.Merge` for several files: `exit_after_auth` holds when any file sets
/// it, and a later `template_config {}` replaces the earlier one whole (OpenBao Agent run on
/// such files exits at once, and forgets the first file's `exit_on_retry_failure`).
#[test]
fn several_files_merge_as_vault_agent_merges_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = util::write_file(
        dir.path(),
        "first.hcl",
        "exit_after_auth = true\ntemplate_config {\n  exit_on_retry_failure = true\n}\n",
    );
    let second = util::write_file(
        dir.path(),
        "second.hcl",
        "exit_after_auth = false\ntemplate_config {\n  static_secret_render_interval = \"1m\"\n}\n",
    );
    let config = config::load_with_env(
        &[first, second],
        &no_env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .expect("loads");
    assert!(config.exit_after_auth);
    assert!(!config.template_config.exit_on_retry_failure);
    assert_eq!(
        config.template_config.static_secret_render_interval,
        Duration::from_secs(60)
    );
}
