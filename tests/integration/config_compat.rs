//! Agent files as Vault Agent reads them: JSON, HCL1's quoted keys, keys Vault Agent ignores
//! (warnings, errors under `--strict`), template `exec` and owners, and `validate`'s checks.

use std::path::Path;
use std::time::Duration;

use pki_sidecar::config::{self, AuthKind, TemplateCommand};

use crate::util;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(path: &Path) -> Result<config::Config, config::ConfigErrors> {
    config::load_with_env(
        &[path.to_path_buf()],
        &no_env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
}

fn validate(args: &[&str]) -> (Option<i32>, String, String) {
    let output = util::command()
        .arg("validate")
        .args(args)
        .output()
        .expect("run validate");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_key_vault_agent_ignores_is_a_warning_and_an_error_under_strict() {
    let fixture = "tests/fixtures/config/warn/unknown-key.hcl";
    let warning = format!(
        "{fixture}:2:3: vault.adress: warning: unknown key, ignored (as Vault Agent ignores it) (did \
         you mean `address`?)\n"
    );
    let (code, stdout, stderr) = validate(&["--config", fixture]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, warning);
    assert!(
        stdout.starts_with(&format!("{fixture}: valid\n")),
        "{stdout}"
    );

    let (code, stdout, stderr) = validate(&["--strict", "--config", fixture]);
    assert_eq!(code, Some(78), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "{fixture}:2:3: vault.adress: unknown key, ignored (as Vault Agent ignores it) (did you \
             mean `address`?) (an error in strict mode)\n"
        )
    );
    assert!(stdout.is_empty());

    // The same from the file itself, for every role.
    let dir = tempfile::tempdir().expect("tempdir");
    let strict = util::write_file(
        dir.path(),
        "strict.hcl",
        "pki_sidecar {\n  strict = true\n}\nvault {\n  adress = \"https://v:8200\"\n}\n",
    );
    let (code, _, stderr) = validate(&["--config", strict.to_str().unwrap()]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("vault.adress: unknown key"), "{stderr}");
    let output = util::command()
        .args(["app", "--config", strict.to_str().unwrap()])
        .output()
        .expect("run app");
    assert_eq!(output.status.code(), Some(78));
}

#[test]
fn keys_vault_agent_ignores_are_dropped_at_each_level_it_ignores_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "ignored.hcl",
        "unknown_top = 1\nvault {\n  address = \"https://v:8200\"\n  retry {\n    \
         num_retrys = 3\n  }\n}\nauto_auth {\n  enable_reauth_on_new_credentials = true\n  \
         method \"kubernetes\" {\n    mount_pth = \"auth/k8s\"\n    config = {\n      role = \
         \"r\"\n    }\n  }\n  sink \"file\" {\n    config = {\n      path = \"/tmp/t\"\n      \
         mod = \"0600\"\n    }\n  }\n}\ntemplate_config {\n  exit_on_retry_failur = true\n}\n",
    );
    let config = load(&file).unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "unknown_top",
            "vault.retry.num_retrys",
            "auto_auth.enable_reauth_on_new_credentials",
            "auto_auth.method.mount_pth",
            "auto_auth.sink[0].config.mod",
            "template_config.exit_on_retry_failur",
        ]
    );
    assert!(
        config.warnings[3]
            .message
            .contains("did you mean `mount_path`?")
    );
    // A template is decoded strictly by Vault Agent too (mapstructure's ErrorUnused).
    let file = util::write_file(
        dir.path(),
        "template.hcl",
        "template {\n  contents = \"x\"\n  destinaton = \"/tmp/x\"\n}\n",
    );
    let err = load(&file).unwrap_err().to_string();
    assert!(
        err.contains("template[0].destinaton: unknown key (did you mean `destination`?)"),
        "{err}"
    );
}

/// A method's `config` keys: one the method does not read is ignored with a warning (as Vault
/// Agent's method ignores it, a leftover `role` in an AppRole file for one); one it reads that
/// this program does not implement is refused by name; Vault's `remove_jwt_after_reading =
/// false` says what this program does and loads.
#[test]
fn method_config_keys_follow_what_vault_agents_method_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let approle = util::write_file(
        dir.path(),
        "approle.hcl",
        "auto_auth {\n  method \"approle\" {\n    config = {\n      role = \"wildcard\"\n      \
         role_id_file_path = \"/r\"\n      secret_id_file_path = \"/s\"\n      \
         remove_secret_id_file_after_readin = false\n    }\n  }\n}\nvault {\n  retry {\n    \
         num_retries = 2147483647\n  }\n}\n",
    );
    let config = load(&approle).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    let file = approle.display();
    assert_eq!(
        warnings,
        vec![
            format!(
                "{file}:4:7: auto_auth.method.config.role: warning: unknown key, ignored (as Vault \
                 Agent ignores it)"
            ),
            format!(
                "{file}:7:7: auto_auth.method.config.remove_secret_id_file_after_readin: \
                 warning: unknown key, ignored (as Vault Agent ignores it) (did you mean \
                 `remove_secret_id_file_after_reading`?)"
            ),
        ]
    );
    // Vault's own limit: a huge count is "retry for ever".
    assert_eq!(config.vault.num_retries, 2_147_483_647);
    let (code, _, stderr) = validate(&["--strict", "--config", &approle.to_string_lossy()]);
    assert_eq!(code, Some(78), "{stderr}");

    let jwt = util::write_file(
        dir.path(),
        "jwt.hcl",
        "auto_auth {\n  method \"jwt\" {\n    config = {\n      path = \"/j\"\n      role = \
         \"r\"\n      remove_jwt_after_reading = false\n      remove_jwt_follows_symlinks = \
         true\n    }\n  }\n}\n",
    );
    let config = load(&jwt).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    // Half a client pair for `cert`: Vault Agent ignores it, so does this, and says so.
    let cert = util::write_file(
        dir.path(),
        "cert.hcl",
        "auto_auth {\n  method \"cert\" {\n    config = {\n      client_key = \"/k.pem\"\n    \
         }\n  }\n}\n",
    );
    let config = load(&cert).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec![format!(
            "{}:4:7: auto_auth.method.config.client_key: warning: ignored without client_cert \
             (as Vault Agent ignores it): the login presents vault {{}}'s client certificate, if \
             any; give both or neither",
            cert.display()
        )]
    );
    assert!(matches!(
        config.auto_auth.unwrap().method.kind,
        AuthKind::Cert {
            client_cert: None,
            client_key: None,
            ..
        }
    ));
    // Refused keys: tests/fixtures/config/invalid/method-{refused-config-key,jwt-removal}.hcl.
}

/// `listener "tcp"` with `api_proxy {}` or (older files) `cache {}`: the API proxy's settings,
/// a warning that nothing is cached and one for `persist`, an error when both blocks set
/// `use_auto_auth_token` (as OpenBao Agent's), the JSON form alike.
#[test]
fn listener_api_proxy_and_cache_resolve_as_vault_agent_reads_them() {
    use pki_sidecar::config::{ApiListener, AutoAuthToken};
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "agent.hcl",
        "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = \
         \"/t\"\n    }\n  }\n}\ncache {\n  use_auto_auth_token = \"force\"\n  persist \"kubernetes\" {\n    path = \
         \"/vault/agent-cache\"\n  }\n}\nlistener \"tcp\" {\n  address = \"127.0.0.1:8100\"\n  \
         tls_disable = true\n}\nlistener {\n  type = \"tcp\"\n  address = \"localhost:8101\"\n  \
         tls_disable = \"true\"\n  require_request_header = true\n  agent_api {\n    \
         enable_quit = true\n  }\n}\n",
    );
    let config = load(&file).unwrap_or_else(|e| panic!("{e}"));
    let proxy = config.api_proxy.expect("an API proxy");
    assert_eq!(proxy.use_auto_auth_token, AutoAuthToken::Force);
    assert_eq!(
        proxy.listeners,
        vec![
            ApiListener {
                address: "127.0.0.1:8100".parse().unwrap(),
                require_request_header: false,
                enable_quit: false,
            },
            ApiListener {
                address: "127.0.0.1:8101".parse().unwrap(),
                require_request_header: true,
                enable_quit: true,
            },
        ]
    );
    let warnings: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(warnings, vec!["cache.persist", "cache"]);
    let json = util::write_file(
        dir.path(),
        "agent.json",
        r#"{"auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/t"}}}, "api_proxy": {"use_auto_auth_token": true}, "listener": [{"tcp": {"address": "127.0.0.1:8200", "tls_disable": true}}]}"#,
    );
    let config = load(&json).unwrap_or_else(|e| panic!("{e}"));
    let proxy = config.api_proxy.expect("an API proxy");
    assert_eq!(proxy.use_auto_auth_token, AutoAuthToken::IfMissing);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // The agent's token needs an agent that logs in (OpenBao Agent refuses the file without).
    const AUTO_AUTH: &str = "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = \
         \"/t\"\n    }\n  }\n}\n";
    // Both blocks: OpenBao Agent refuses the file too.
    let both = util::write_file(
        dir.path(),
        "both.hcl",
        &format!(
            "{AUTO_AUTH}cache {{\n  use_auto_auth_token = true\n}}\napi_proxy {{\n  \
             use_auto_auth_token = true\n}}\n"
        ),
    );
    let err = load(&both).unwrap_err().to_string();
    assert!(
        err.contains("cache.use_auto_auth_token: is set in api_proxy {} too"),
        "{err}"
    );
    // A listener beyond loopback that lends the agent's token: a warning.
    let open = util::write_file(
        dir.path(),
        "open.hcl",
        &format!(
            "{AUTO_AUTH}api_proxy {{\n  use_auto_auth_token = true\n}}\nlistener \"tcp\" {{\n  \
             address = \"0.0.0.0:8200\"\n  tls_disable = true\n}}\n"
        ),
    );
    let warnings = load(&open).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].path, "listener[0].address");
    assert!(
        warnings[0].message.contains("agent's token"),
        "{:?}",
        warnings[0]
    );
    // No listener: nothing to serve.
    let none = util::write_file(
        dir.path(),
        "none.hcl",
        &format!("{AUTO_AUTH}api_proxy {{\n  use_auto_auth_token = true\n}}\n"),
    );
    assert!(load(&none).unwrap().api_proxy.is_none());
}

#[test]
fn json_files_load_like_their_hcl_twins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = util::write_file(
        dir.path(),
        "a.hcl",
        "vault {\n  address = \"https://v:8200\"\n}\nauto_auth {\n  method \"approle\" {\n    \
         config = {\n      role_id_file_path = \"/r\"\n    }\n  }\n  sink \"file\" {\n    \
         config = {\n      path = \"/t\"\n      mode = 0600\n    }\n  }\n}\ntemplate {\n  \
         contents = \"a\"\n  destination = \"/a\"\n  perms = \"0600\"\n}\n",
    );
    // HCL1's JSON form of blocks: lists of objects, labels as keys.
    let json = util::write_file(
        dir.path(),
        "a.json",
        r#"{
  "vault": [{"address": "https://v:8200"}],
  "auto_auth": [{
    "method": [{"approle": {"config": [{"role_id_file_path": "/r"}]}}],
    "sink": {"type": "file", "config": {"path": "/t", "mode": "0600"}}
  }],
  "template": {"contents": "a", "destination": "/a", "perms": "0600"}
}
"#,
    );
    let from_hcl = load(&hcl).unwrap_or_else(|e| panic!("{e}"));
    let from_json = load(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_hcl.vault, from_json.vault);
    assert_eq!(from_hcl.auto_auth, from_json.auto_auth);
    assert_eq!(from_hcl.templates, from_json.templates);

    let broken = util::write_file(
        dir.path(),
        "broken.json",
        "{\n  \"vault\": {\n    \"address\": \"https://v:8200\",\n  }\n}\n",
    );
    let (code, _, stderr) = validate(&["--config", broken.to_str().unwrap()]);
    assert_eq!(code, Some(78));
    assert!(
        stderr.starts_with(&format!("{}:4:3: trailing comma", broken.display())),
        "{stderr}"
    );
    let listeners = util::write_file(
        dir.path(),
        "listeners.json",
        "{\n  \"listener\": [\n    {\"tcp\": {\"address\": \"127.0.0.1:8100\"}},\n    \
         {\"unix\": {\"address\": \"/tmp/s\"}}\n  ]\n}\n",
    );
    let (code, _, stderr) = validate(&["--config", listeners.to_str().unwrap()]);
    assert_eq!(code, Some(78));
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    // A TLS listener (no tls_disable) and a unix one, each refused at its line.
    assert!(
        stderr
            .lines()
            .all(|l| l.contains(":2:3: listener[") && l.contains("deliberately not supported")),
        "{stderr}"
    );
}

#[test]
fn template_exec_runs_an_argv_with_its_timeout_and_wins_over_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "exec.hcl",
        "template {\n  contents = \"a\"\n  destination = \"/a\"\n  command = \"echo old\"\n  \
         exec {\n    command = [\"/bin/kill\", \"-HUP\", \"1\"]\n    timeout = \"5s\"\n  }\n}\n\
         template {\n  contents = \"b\"\n  destination = \"/b\"\n  command_timeout = \"7s\"\n  \
         exec {\n    command = \"/usr/bin/touch /tmp/x\"\n  }\n}\n",
    );
    let config = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.templates[0].command,
        Some(TemplateCommand::Argv(vec![
            "/bin/kill".into(),
            "-HUP".into(),
            "1".into()
        ]))
    );
    assert_eq!(config.templates[0].command_timeout, Duration::from_secs(5));
    // consul-template: one string with spaces runs under `sh -c`, a list of words directly.
    assert_eq!(
        config.templates[1].command,
        Some(TemplateCommand::Shell("/usr/bin/touch /tmp/x".into()))
    );
    assert_eq!(
        config.templates[1].command_timeout,
        Duration::from_secs(7),
        "command_timeout stands in for exec.timeout"
    );
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_eq!(config.warnings[0].path, "template[0].command");
}

#[test]
fn template_user_and_group_resolve_names_and_ids() {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name);
    let dir = tempfile::tempdir().expect("tempdir");
    let user_text = user.clone().unwrap_or_else(|| uid.to_string());
    let file = util::write_file(
        dir.path(),
        "owner.hcl",
        &format!(
            "template {{\n  contents = \"a\"\n  destination = \"/a\"\n  user = \"{user_text}\"\n  \
             group = {gid}\n}}\n"
        ),
    );
    let config = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.templates[0].user, Some(uid));
    assert_eq!(config.templates[0].group, Some(gid));
    let file = util::write_file(
        dir.path(),
        "nobody.hcl",
        "template {\n  contents = \"a\"\n  destination = \"/a\"\n  user = \"no-such-user-here\"\n}\n",
    );
    let err = load(&file).unwrap_err().to_string();
    assert!(
        err.contains("template[0].user: no user named \"no-such-user-here\""),
        "{err}"
    );
}

#[test]
fn validate_warns_about_shared_files_unguarded_keys_and_missing_cas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "checks.hcl",
        "vault {\n  ca_cert = \"/nonexistent/ca.pem\"\n}\ntemplate {\n  contents = \
         \"{{ with pkiCert \\\"pki/issue/r\\\" \\\"common_name=a\\\" }}{{ .Data.Cert }}{{ \
         .Data.Key | writeToFile \\\"/tmp/pki-sidecar-checks/k.pem\\\" \\\"\\\" \\\"\\\" \
         \\\"0600\\\" }}{{ end }}\"\n  destination = \"/tmp/pki-sidecar-checks/c.pem\"\n}\n\
         template {\n  contents = \"b\"\n  destination = \"/tmp/pki-sidecar-checks/c.pem\"\n}\n\
         proxy {\n  cert_file = \"/tmp/pki-sidecar-checks/c.pem\"\n  key_file = \
         \"/tmp/pki-sidecar-checks/other.pem\"\n}\n",
    );
    let (code, _, stderr) = validate(&["--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    // Each at its key's line.
    for expected in [
        "checks.hcl:4:1: template[0]: warning: writes the private key to \
         /tmp/pki-sidecar-checks/k.pem even when .Data.Key is empty",
        "checks.hcl:6:3: template[0].destination: warning: /tmp/pki-sidecar-checks/c.pem is \
         written by more than one template",
        "checks.hcl:14:3: proxy.key_file: warning: no template writes \
         /tmp/pki-sidecar-checks/other.pem",
        "checks.hcl:2:3: vault.ca_cert: warning: the CA file /nonexistent/ca.pem does not exist",
    ] {
        assert!(stderr.contains(expected), "{expected}\nin\n{stderr}");
    }
    assert!(!stderr.contains("proxy.cert_file"), "{stderr}");
    let (code, _, _) = validate(&["--strict", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(78));
    // The seed's guarded write is not flagged.
    let (code, _, stderr) = validate(&["--config", "etc/agent.hcl"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("Data.Key is empty"), "{stderr}");
}

/// With several files, a warning about a template points at the file that wrote it, its
/// index counted in that file.
#[test]
fn validate_warnings_point_at_the_file_that_wrote_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = util::write_file(
        dir.path(),
        "a.hcl",
        "template {\n  contents = \"a\"\n  destination = \"/tmp/pki-sidecar-two/a\"\n}\n",
    );
    let second = util::write_file(
        dir.path(),
        "b.hcl",
        "\n\ntemplate {\n  contents = \"{{ with pkiCert \\\"pki/issue/r\\\" \\\"common_name=a\\\" }}{{ \
         .Data.Key | writeToFile \\\"/tmp/pki-sidecar-two/k\\\" \\\"\\\" \\\"\\\" \\\"0600\\\" }}{{ end \
         }}\"\n  destination = \"/tmp/pki-sidecar-two/a\"\n}\n",
    );
    let (code, _, stderr) = validate(&[
        "--config",
        first.to_str().unwrap(),
        "--config",
        second.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("a.hcl:3:3: template[0].destination: warning:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("b.hcl:3:1: template[1]: warning: writes the private key"),
        "{stderr}"
    );
}

/// The app answers plain HTTP; with a proxy in the file, an app listening beyond loopback is a
/// way around TLS, and `validate` says so (the default, 127.0.0.1:80, is not flagged).
#[test]
fn validate_warns_when_the_app_listens_beyond_loopback_next_to_a_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exposed = util::write_file(
        dir.path(),
        "exposed.hcl",
        "proxy {\n  listen = \"0.0.0.0:8443\"\n}\napp {\n  listen = \"0.0.0.0:8080\"\n}\n",
    );
    let (code, _, stderr) = validate(&["--config", exposed.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "app.listen: warning: 0.0.0.0:8080 is reachable from outside the Pod: plain HTTP \
             to the Pod IP bypasses the proxy's TLS; listen on 127.0.0.1:8080"
        ),
        "{stderr}"
    );
    let (code, _, _) = validate(&["--strict", "--config", exposed.to_str().unwrap()]);
    assert_eq!(code, Some(78));
    for (name, text) in [
        ("default.hcl", "proxy {\n  listen = \"0.0.0.0:8443\"\n}\n"),
        (
            "loopback.hcl",
            "proxy {\n  listen = \"0.0.0.0:8443\"\n}\napp {\n  listen = \"[::1]:8080\"\n}\n",
        ),
        // No proxy in the file: an app on its own may well be meant to be reached.
        ("app-only.hcl", "app {\n  listen = \"0.0.0.0:8080\"\n}\n"),
    ] {
        let file = util::write_file(dir.path(), name, text);
        let (code, _, stderr) = validate(&["--config", file.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert!(!stderr.contains("app.listen"), "{name}: {stderr}");
    }
}

#[test]
fn the_agent_applies_template_user_group_and_runs_exec_without_a_shell() {
    use std::os::unix::fs::MetadataExt;

    let bed = util::bao::bed();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let out = dir.path().join("out.txt");
    let ran = dir.path().join("exec ran");
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            "auto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = \
             \"{}\"\n    }}\n  }}\n}}\ntemplate {{\n  contents = \"hello\"\n  destination = \
             \"{}\"\n  user = {uid}\n  group = \"{gid}\"\n  command = \"echo shell-command-ran >&2\"\n  \
             exec {{\n    command = [\"/usr/bin/touch\", \"{}\"]\n    timeout = \"10s\"\n  \
             }}\n}}\n",
            token.display(),
            out.display(),
            ran.display()
        ),
    );
    let agent =
        util::role::Launch::agent(&[&config], bed.addr(), &dir.path().join("agent.log")).spawn();
    agent.wait_ready(Duration::from_secs(30));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // The file name has a space: a shell would have split it.
    while !ran.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "exec did not run: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let metadata = std::fs::metadata(&out).expect("destination written");
    assert_eq!((metadata.uid(), metadata.gid()), (uid, gid));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("shell-command-ran"),
        "exec wins over command: {log}"
    );
    assert!(
        log.contains("template[0].command: warning: ignored: exec is set too"),
        "{log}"
    );
}

/// A template's `command` that signals the app (`kill -HUP $(pidof NAME)`, the usual
/// `agent-inject-command`) is run by the agent itself: the process named gets the signal, and
/// the log says so; `validate` says it needs no shell.
#[test]
fn the_agent_signals_the_app_itself_after_a_render() {
    use std::os::unix::process::ExitStatusExt;

    let bed = util::bao::bed();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = util::write_file(dir.path(), "token", bed.root_token());
    // The "app": sleep under a name of its own (the kernel names a process after the file it
    // ran), plus a bystander the pattern must not reach.
    let name = format!("rl-{}", std::process::id() % 100_000);
    let app_path = dir.path().join(&name);
    std::os::unix::fs::symlink("/bin/sleep", &app_path).expect("symlink");
    let bystander_path = dir.path().join(format!("{name}x"));
    std::os::unix::fs::symlink("/bin/sleep", &bystander_path).expect("symlink");
    // Through `env --default-signal=HUP`, which execs it: a test run under `nohup` (SIGHUP
    // ignored, and inherited so) must not change what SIGHUP does to the app.
    let spawn = |path: &std::path::Path| {
        let child = std::process::Command::new("env")
            .arg("--default-signal=HUP")
            .arg(path)
            .arg("600")
            .spawn()
            .expect("spawn");
        let comm = format!("/proc/{}/comm", child.id());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        util::wait_until(Duration::from_secs(10), "the exec", || {
            std::fs::read_to_string(&comm).is_ok_and(|c| c.trim_end() == name)
        });
        child
    };
    let mut app = spawn(&app_path);
    let mut bystander = spawn(&bystander_path);
    let out = dir.path().join("out.txt");
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            "auto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = \
             \"{}\"\n    }}\n  }}\n}}\ntemplate {{\n  contents = \"hello\"\n  destination = \
             \"{}\"\n  command = \"sh -c 'kill -HUP $(pidof {name}) || true'\"\n}}\n",
            token.display(),
            out.display(),
        ),
    );
    let (code, stdout, stderr) = validate(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("run by the agent itself, no shell"),
        "{stdout}"
    );
    let agent =
        util::role::Launch::agent(&[&config], bed.addr(), &dir.path().join("agent.log")).spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = app.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the app got no signal: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(nix::libc::SIGHUP), "{}", agent.log());
    assert_eq!(
        bystander.try_wait().expect("wait"),
        None,
        "the bystander lives"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!("sent SIGHUP to process {}", app.id())),
        "{log}"
    );
    assert!(log.contains("run by the agent"), "{log}");
}

/// `disable_idle_connections` and `disable_keep_alives`: the parts named (caching and
/// proxying both meaning the API proxy), the environment variables over the file, and an
/// unknown part an error at its place, as OpenBao Agent refuses it.
#[test]
fn disable_idle_connections_and_keep_alives_name_the_parts() {
    use pki_sidecar::config::FreshConnections;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "agent.hcl",
        "disable_idle_connections = [\"auto-auth\"]\ndisable_keep_alives = [\"proxying\"]\n",
    );
    let config = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.fresh_connections,
        FreshConnections {
            auto_auth: true,
            templating: false,
            api_proxy: true,
        }
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let env = |name: &str| {
        (name == "VAULT_AGENT_DISABLE_IDLE_CONNECTIONS").then(|| "templating,caching".to_string())
    };
    let config = config::load_with_env(
        std::slice::from_ref(&file),
        &env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.fresh_connections,
        FreshConnections {
            auto_auth: false,
            templating: true,
            api_proxy: true,
        },
        "the variable replaces the file's list"
    );
    let bad = util::write_file(
        dir.path(),
        "bad.hcl",
        "pid_file = \"/tmp/x\"\ndisable_idle_connections = [\"templates\"]\n",
    );
    let err = load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.hcl:2:1")
            && err.contains("disable_idle_connections: unknown value \"templates\""),
        "{err}"
    );
    let output = std::process::Command::new(util::bao::bao_binary())
        .args(["agent", "-config"])
        .arg(&bad)
        .output()
        .expect("bao agent");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success()
            && said.contains("unknown disable_idle_connections value: templates"),
        "OpenBao Agent refuses it too: {said}"
    );
}

/// The corpus of real agent files (`tests/compat/agent-files`, provenance in `SOURCES`) and
/// OpenBao Agent's verdict on each (`EXPECTED`, written by `scripts/classify-agent-files.py`).
fn corpus() -> Vec<(String, String)> {
    let dir = util::repo().join("tests/compat/agent-files");
    let expected = std::fs::read_to_string(dir.join("EXPECTED")).expect("EXPECTED");
    let verdicts: Vec<(String, String)> = expected
        .lines()
        .map(|line| {
            let (file, verdict) = line.split_once('\t').expect("FILE<TAB>VERDICT");
            assert!(
                matches!(verdict, "loaded" | "config-error"),
                "{line}: unknown verdict"
            );
            (file.to_string(), verdict.to_string())
        })
        .collect();
    // Every file has a verdict and a source, and every verdict a file.
    let sources = std::fs::read_to_string(dir.join("SOURCES")).expect("SOURCES");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".hcl") || name.ends_with(".json"))
        .collect();
    files.sort();
    let listed: Vec<String> = verdicts.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(files, listed, "EXPECTED lists exactly the corpus files");
    for file in &files {
        assert!(
            sources
                .lines()
                .any(|line| line.split('\t').next() == Some(file.as_str())),
            "{file} has no line in SOURCES"
        );
    }
    verdicts
}

#[test]
fn every_agent_file_openbao_loads_loads_here_or_is_refused_on_purpose() {
    let verdicts = corpus();
    assert!(
        verdicts.len() >= 20,
        "at least 20 files: {}",
        verdicts.len()
    );
    assert!(
        verdicts.iter().any(|(f, _)| f.ends_with(".json")),
        "JSON files are part of the corpus"
    );
    let mut loaded_here = 0;
    let mut refused_here = 0;
    for (file, verdict) in &verdicts {
        if verdict != "loaded" {
            continue;
        }
        let path = format!("tests/compat/agent-files/{file}");
        let (code, _, stderr) = validate(&["--config", &path]);
        match code {
            Some(0) => loaded_here += 1,
            Some(78) => {
                refused_here += 1;
                for line in stderr.lines().filter(|l| !l.contains(": warning: ")) {
                    // A template `source` is read at load here (OpenBao reads it later): the
                    // files name paths of the machines they were written for.
                    let missing_source = line.contains(".source: cannot read the template file")
                        && line.ends_with("No such file or directory (os error 2)");
                    assert!(
                        line.contains("is deliberately not supported by pki-sidecar")
                            || missing_source,
                        "{file}: OpenBao Agent loads it; the only errors allowed here are \
                         deliberate refusals, but got:\n{line}"
                    );
                }
            }
            other => panic!("{file}: exit {other:?}: {stderr}"),
        }
    }
    eprintln!("corpus: {loaded_here} load, {refused_here} refused on purpose");
    assert!(loaded_here >= 5, "{loaded_here} files load");
}

#[test]
fn the_corpus_verdicts_are_openbao_agents() {
    // EXPECTED is what scripts/classify-agent-files.py writes from the installed bao.
    let output = std::process::Command::new("python3")
        .arg(util::repo().join("scripts/classify-agent-files.py"))
        .arg("--check")
        .current_dir(util::repo())
        .output()
        .expect("run the classifier");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn method_backoff_keys_are_read_where_vault_agent_reads_them() {
    // OpenBao's fixture sets both on the method; backoff is configured nowhere else here.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "backoff.hcl",
        "auto_auth {\n  method {\n    type = \"token_file\"\n    config = {\n      \
         token_file_path = \"/t\"\n    }\n    max_backoff = \"2m\"\n    min_backoff = \"5s\"\n  \
         }\n}\n",
    );
    let config = load(&file).unwrap_or_else(|e| panic!("{e}"));
    let method = &config.auto_auth.expect("auto_auth").method;
    assert_eq!(
        (method.min_backoff, method.max_backoff),
        (Duration::from_secs(5), Duration::from_secs(120))
    );
    // A later file's auto_auth replaces the earlier one whole, as Vault Agent's Config.Merge:
    // the first file's max_backoff is gone with it.
    let overlay = util::write_file(
        dir.path(),
        "overlay.hcl",
        "auto_auth {\n  method {\n    type = \"token_file\"\n    config = {\n      \
         token_file_path = \"/t\"\n    }\n    min_backoff = 2\n  }\n}\n",
    );
    let config = config::load_with_env(
        &[file, overlay],
        &no_env,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let method = &config.auto_auth.expect("auto_auth").method;
    assert_eq!(
        (method.min_backoff, method.max_backoff),
        (Duration::from_secs(2), Duration::from_secs(300))
    );
}

#[test]
fn a_role_prints_the_warnings_at_start_and_runs() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().expect("tempdir");
    let file = util::write_file(
        dir.path(),
        "app.hcl",
        "vault {\n  adress = \"https://v:8200\"\n}\napp {\n  listen = \"127.0.0.1:0\"\n  \
         metrics_listen = \"127.0.0.1:0\"\n}\n",
    );
    let mut child = util::command()
        .args(["app", "--config", file.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start app");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a line").expect("text");
    assert!(
        first.ends_with(
            "app.hcl:2:3: vault.adress: warning: unknown key, ignored (as Vault Agent ignores it) \
             (did you mean `address`?)"
        ),
        "{first}"
    );
    // The role goes on: it logs that it listens.
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .take(20)
        .any(|line| line.contains("listening"));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    // Keep reading: a closed stderr would fail the role's last log lines.
    for _ in lines.map_while(Result::ok) {}
    let status = child.wait().expect("wait");
    assert!(listening, "the app started after the warning");
    assert_eq!(status.code(), Some(0));
}

/// `--config DIR` loads the directory's `*.hcl` and `*.json` files (not subdirectories, other
/// names or editors' temporary files), as Vault Agent's `-config` does, in name order.
#[test]
fn a_directory_loads_its_hcl_and_json_files_in_name_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("agent.d");
    std::fs::create_dir_all(conf.join("sub.hcl")).unwrap();
    util::write_file(
        &conf,
        "10-vault.hcl",
        "vault {\n  address = \"https://first:8200\"\n}\nauto_auth {\n  method \"approle\" {\n    \
         config = {\n      role_id_file_path = \"/r\"\n    }\n  }\n}\n",
    );
    util::write_file(
        &conf,
        "20-later.json",
        r#"{"vault": {"address": "https://second:8200"}, "template": {"contents": "a", "destination": "/a"}}"#,
    );
    // Ignored: not .hcl/.json, editors' temporary files.
    util::write_file(&conf, "README.md", "not a config");
    util::write_file(
        &conf,
        "30-vault.hcl~",
        "vault {\n  address = \"https://backup:8200\"\n}\n",
    );
    util::write_file(&conf, ".#40-vault.hcl", "broken {");
    let loaded = load(&conf).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.vault.address, "https://second:8200",
        "later names win"
    );
    assert_eq!(loaded.templates.len(), 1);
    let (code, stdout, stderr) = validate(&["--config", conf.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
