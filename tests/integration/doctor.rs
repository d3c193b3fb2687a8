//! `pki-sidecar doctor` against the OpenBao bed: all steps pass with a running agent and proxy,
//! and each failure the seed's troubleshooting section covers is blamed on the right step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util;
use crate::util::bao::{self, Bed};
use crate::util::role::{Launch, RoleProcess};

/// The seed's agent file with the role, the token path and every file moved into `dir`.
fn seed_config(dir: &Path, role: &str) -> PathBuf {
    let jwt = util::write_file(
        dir,
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    let seed = std::fs::read_to_string(util::repo().join("etc/agent.hcl")).expect("etc/agent.hcl");
    let local = dir.display().to_string();
    let config = seed
        .replace("/home/vault/", &format!("{local}/"))
        .replace("/etc/nginx/ssl/", &format!("{local}/"))
        .replace(
            "role = \"authkube\"",
            &format!(
                "role = \"{role}\"\n                token_path = \"{}\"",
                jwt.display()
            ),
        );
    util::write_file(dir, "agent.hcl", &config)
}

/// The proxy serving `dir`'s pair on ports it binds itself ([`util::role`]), ready; and the
/// config file doctor reads for it: the same block, with the address it bound.
fn start_proxy(dir: &Path) -> (RoleProcess, PathBuf) {
    let block = format!(
        "  upstream = \"http://127.0.0.1:9\"\n  cert_file = \"{d}/tls.crt\"\n  \
         key_file = \"{d}/tls.key\"\n",
        d = dir.display()
    );
    let config = util::write_file(dir, "proxy.hcl", &format!("proxy {{\n{block}}}\n"));
    let proxy = Launch::role("proxy", &[&config], &dir.join("proxy.log")).spawn();
    proxy.wait_ready(Duration::from_secs(30));
    let listen = proxy.address("proxy.listen");
    let for_doctor = util::write_file(
        dir,
        "proxy-doctor.hcl",
        &format!("proxy {{\n{block}  listen = \"{listen}\"\n}}\n"),
    );
    (proxy, for_doctor)
}

/// The agent on `config` ([`util::role`]) until it has written the pair, then stopped.
fn issue_with_agent(bed: &Bed, dir: &Path, config: &Path) {
    let agent = Launch::agent(&[config], bed.addr(), &dir.join("agent.log")).spawn();
    agent.wait_ready(Duration::from_secs(30));
    agent.kill();
}

/// Runs doctor on `configs` with `env`; returns the exit code and stdout + stderr.
fn doctor(configs: &[&Path], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = util::command();
    command.arg("doctor");
    for config in configs {
        command.arg("--config").arg(config);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run pki-sidecar doctor");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    // Shown with --nocapture, or when the test fails.
    eprintln!("{text}");
    (output.status.code(), text)
}

/// The line of the first step whose name starts with `name`, with its `next:` line if any.
fn step(output: &str, name: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let at = lines
        .iter()
        .position(|line| {
            line.split_once(' ').is_some_and(|(mark, rest)| {
                ["✓", "✗", "-"].contains(&mark) && rest.starts_with(name)
            })
        })
        .unwrap_or_else(|| panic!("no step {name:?} in:\n{output}"));
    let mut text = format!("{}\n", lines[at]);
    if let Some(next) = lines.get(at + 1).filter(|line| line.starts_with("  next:")) {
        text.push_str(next);
        text.push('\n');
    }
    text
}

fn passed(output: &str, name: &str) {
    let line = step(output, name);
    assert!(line.starts_with('✓'), "{name} should pass:\n{output}");
}

fn failed(output: &str, name: &str) -> String {
    let line = step(output, name);
    assert!(
        line.starts_with('✗') && line.contains("\n  next: "),
        "{name} should fail with a hint:\n{output}"
    );
    line
}

#[test]
fn doctor_passes_every_step_against_a_running_agent_and_proxy() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE);
    issue_with_agent(bed, dir.path(), &config);
    let (_proxy, proxy_hcl) = start_proxy(dir.path());

    let started = Instant::now();
    let (code, output) = doctor(&[&config, &proxy_hcl], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(0), "{output}");
    eprintln!("doctor took {:?}:\n{output}", started.elapsed());
    let steps: Vec<&str> = output
        .lines()
        .filter(|line| !line.starts_with("pki-sidecar doctor:") && !line.starts_with("doctor:"))
        .collect();
    assert_eq!(steps.len(), 6, "six steps:\n{output}");
    assert!(
        steps.iter().all(|line| line.starts_with('✓')),
        "every step passes:\n{output}"
    );
    let token = step(&output, "ServiceAccount token");
    assert!(
        token.contains(&format!(
            "namespace {}, service account {}",
            bao::NAMESPACE,
            bao::SERVICE_ACCOUNT
        )),
        "{output}"
    );
    assert!(token.contains("no expiry"), "the bed's JWT has no exp");
    assert!(step(&output, "login").contains("role \"authkube\""));
    assert!(
        step(
            &output,
            "policy allows update on pki_intermediate/issue/home"
        )
        .contains("update")
    );
    assert!(step(&output, "certificate").contains("foo.home"));
    assert!(output.contains("doctor: 6 of 6 checks passed"), "{output}");

    // Secrets never reach the output: the JWT, the key, a token.
    let jwt = std::fs::read_to_string(dir.path().join("sa-token")).unwrap();
    let key = std::fs::read_to_string(dir.path().join("tls.key")).unwrap();
    assert!(!output.contains(jwt.trim()), "the JWT leaked:\n{output}");
    assert!(!output.contains("PRIVATE KEY"), "{output}");
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!output.contains(line), "key material leaked:\n{output}");
    }
    let sink = std::fs::read_to_string(dir.path().join(".vault-token")).unwrap_or_default();
    assert!(
        sink.trim().is_empty() || !output.contains(sink.trim()),
        "{output}"
    );
    assert!(!output.contains(bed.root_token()), "{output}");
}

#[test]
fn doctor_blames_the_login_for_a_wrong_role() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), "no-such-role");
    let (code, output) = doctor(&[&config], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(1), "{output}");
    passed(&output, "ServiceAccount token");
    passed(&output, "Vault reachable");
    let login = failed(&output, "login");
    assert!(
        login.contains("no-such-role") && login.contains("bound_service_account_names"),
        "{login}"
    );
    assert!(
        login.contains(bao::SERVICE_ACCOUNT) && login.contains(bao::NAMESPACE),
        "the hint names the token's account and namespace: {login}"
    );
    assert!(step(&output, "policy allows").starts_with("- "), "{output}");
}

#[test]
fn doctor_blames_reachability_for_a_wrong_ca() {
    let bed = bao::bed();
    let certificates = tempfile::tempdir().unwrap();
    let port = util::free_port();
    let _server = bao::DevServer::spawn(
        port,
        &[
            "-dev-tls".to_string(),
            format!("-dev-tls-cert-dir={}", certificates.path().display()),
        ],
    );
    let started = Instant::now();
    while !certificates.path().join("vault-ca.pem").exists()
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "bao -dev-tls did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE);
    // An unrelated CA: the bed's root, which did not sign the TLS server's certificate.
    let wrong_ca = util::write_file(dir.path(), "wrong-ca.pem", bed.root_ca_pem());
    let address = format!("https://127.0.0.1:{port}");
    let (code, output) = doctor(
        &[&config],
        &[
            ("VAULT_ADDR", &address),
            ("VAULT_CACERT", wrong_ca.to_str().unwrap()),
        ],
    );
    assert_eq!(code, Some(1), "{output}");
    passed(&output, "ServiceAccount token");
    let reachable = failed(&output, "Vault reachable");
    assert!(
        reachable.contains("cannot verify the TLS certificate")
            && reachable.contains(&wrong_ca.display().to_string())
            && reachable.contains(&format!("openssl s_client -connect 127.0.0.1:{port}")),
        "{reachable}"
    );
    assert!(step(&output, "login").starts_with("- "), "{output}");

    // The right CA passes that step.
    let right_ca = certificates.path().join("vault-ca.pem");
    let (_, output) = doctor(
        &[&config],
        &[
            ("VAULT_ADDR", &address),
            ("VAULT_CACERT", right_ca.to_str().unwrap()),
        ],
    );
    let reachable = step(&output, "Vault reachable");
    assert!(
        reachable.starts_with('✓') && reachable.contains("TLS verified with the CA file"),
        "{output}"
    );
}

#[test]
fn doctor_blames_the_certificate_step_for_a_mismatched_pair() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE);
    let issue = || {
        bed.root_request(
            "POST",
            bao::ISSUE_PATH,
            json!({"common_name": "foo.home", "ttl": "1h"}),
        )
    };
    let (first, second) = (issue(), issue());
    let text = |value: &serde_json::Value, key: &str| {
        value["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {value}"))
            .to_string()
    };
    util::write_file(
        dir.path(),
        "tls.crt",
        &format!(
            "{}\n{}\n",
            text(&first, "certificate"),
            text(&first, "issuing_ca")
        ),
    );
    util::write_file(dir.path(), "tls.key", &text(&second, "private_key"));
    let (code, output) = doctor(&[&config], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(1), "{output}");
    passed(&output, "login");
    passed(&output, "policy allows");
    let certificate = failed(&output, "certificate");
    assert!(
        certificate.contains("does not match") && certificate.contains("openssl pkey -pubout"),
        "{certificate}"
    );
    assert!(!output.contains("PRIVATE KEY"), "{output}");
}

#[test]
fn doctor_blames_the_policy_when_the_token_may_not_issue() {
    let bed = bao::bed();
    bed.root_request(
        "POST",
        "auth/kubernetes/role/doctor-no-pki",
        json!({
            "bound_service_account_names": bao::SERVICE_ACCOUNT,
            "bound_service_account_namespaces": bao::NAMESPACE,
            "token_policies": "default",
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), "doctor-no-pki");
    let (code, output) = doctor(&[&config], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(1), "{output}");
    passed(&output, "login");
    let policy = failed(
        &output,
        "policy allows update on pki_intermediate/issue/home",
    );
    assert!(
        policy.contains(
            r#"path "pki_intermediate/issue/home" { capabilities = ["create", "update"] }"#
        ),
        "{policy}"
    );
}

#[test]
fn doctor_skips_the_token_step_for_other_methods_and_leaves_a_token_file_alive() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let token = bed.create_token(&[bao::ISSUE_POLICY], "1h", true);
    let token_file = util::write_file(dir.path(), "vault-token", &format!("{token}\n"));
    let config = seed_config(dir.path(), bao::LOGIN_ROLE);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("method \"kubernetes\"", "method \"token_file\"")
        .replace("mount_path = \"auth/kubernetes\"", "")
        .replace(
            &format!("token_path = \"{}\"", dir.path().join("sa-token").display()),
            "",
        )
        .replace(
            "role = \"authkube\"",
            &format!("token_file_path = \"{}\"", token_file.display()),
        );
    let config = util::write_file(dir.path(), "token-file.hcl", &text);
    let (code, output) = doctor(&[&config], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(1), "only the certificate is missing:\n{output}");
    assert!(
        step(&output, "ServiceAccount token").starts_with("- ")
            && output.contains("uses the token_file method"),
        "{output}"
    );
    passed(&output, "login");
    passed(
        &output,
        "policy allows update on pki_intermediate/issue/home",
    );
    failed(&output, "certificate");
    assert!(!output.contains(&token), "the token leaked:\n{output}");
    assert!(
        bed.token_ttl(&token).is_some(),
        "a token_file token is not doctor's to revoke"
    );
}

#[test]
fn doctor_without_a_config_is_a_config_error() {
    let (code, output) = doctor(&[], &[]);
    assert_eq!(code, Some(78), "{output}");
}

/// On a KV v2 mount the agent reads `secret/data/...`: doctor checks the policy there, and its
/// hint names that path.
#[test]
fn doctor_checks_kv_v2_reads_on_the_data_path() {
    let bed = bao::bed();
    bed.root_request(
        "PUT",
        "sys/policies/acl/doctor-kv",
        json!({"policy": r#"path "secret/data/doctor-kv" { capabilities = ["read"] }"#}),
    );
    let dir = tempfile::tempdir().unwrap();
    let token = bed.create_token(&["doctor-kv"], "1h", true);
    let token_file = util::write_file(dir.path(), "vault-token", &token);
    let config = util::write_file(
        dir.path(),
        "kv.hcl",
        &format!(
            r#"auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{}" }} }}
}}
template {{
  destination = "{}/out"
  contents = "{{{{ with secret \"secret/doctor-kv\" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}{{{{ with secret \"secret/doctor-kv-denied\" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}"
}}
"#,
            token_file.display(),
            dir.path().display()
        ),
    );
    let (code, output) = doctor(&[&config], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(1), "{output}");
    passed(&output, "policy allows read on secret/doctor-kv:");
    let denied = failed(&output, "policy allows read on secret/doctor-kv-denied");
    assert!(
        denied.contains(r#"path "secret/data/doctor-kv-denied" { capabilities = ["read"] }"#),
        "{denied}"
    );
}

/// `env_template` blocks (Vault Agent's process supervisor mode) call Vault too: their paths
/// are checked by the policy step like a template's.
#[test]
fn doctor_checks_the_paths_env_templates_read() {
    let bed = bao::bed();
    bed.root_request(
        "PUT",
        "sys/policies/acl/doctor-env",
        json!({"policy": r#"path "secret/data/doctor-env" { capabilities = ["read"] }"#}),
    );
    let dir = tempfile::tempdir().unwrap();
    let token = bed.create_token(&["doctor-env"], "1h", true);
    let token_file = util::write_file(dir.path(), "vault-token", &token);
    let config = util::write_file(
        dir.path(),
        "env.hcl",
        &format!(
            r#"auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{}" }} }}
}}
env_template "ALLOWED" {{
  contents = "{{{{ with secret \"secret/doctor-env\" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}"
}}
env_template "DENIED" {{
  contents = "{{{{ with secret \"secret/doctor-env-denied\" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}"
}}
exec {{
  command = ["/bin/true"]
}}
"#,
            token_file.display(),
        ),
    );
    let (code, output) = doctor(&[&config], &[("VAULT_ADDR", bed.addr())]);
    assert_eq!(code, Some(1), "{output}");
    passed(&output, "policy allows read on secret/doctor-env:");
    let denied = failed(&output, "policy allows read on secret/doctor-env-denied");
    assert!(
        denied.contains(r#"path "secret/data/doctor-env-denied" { capabilities = ["read"] }"#),
        "{denied}"
    );
}
