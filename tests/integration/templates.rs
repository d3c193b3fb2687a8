//! The agent's templates against real OpenBao: the seed's template producing a matching pair,
//! reuse across restarts, renewal, outages, and byte-for-byte agreement with OpenBao Agent.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pki_sidecar::certs::{self, CertInfo};
use pki_sidecar::tls::pem;

use crate::util;
use crate::util::bao::{self, Bed};
use crate::util::role::{AgentProcess, Launch};

/// The seed's agent file with the role, the token path and every file moved into `dir`.
fn seed_config(dir: &Path, role: &str, extra: &str) -> PathBuf {
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
    util::write_file(dir, "agent.hcl", &format!("{config}\n{extra}"))
}

/// A running agent on `config` ([`util::role`]).
type Running = AgentProcess;

fn start(bed: &Bed, dir: &Path, config: &Path) -> Running {
    Launch::agent(&[config], bed.addr(), &dir.join("agent.log")).spawn()
}

/// Stops `agent` with SIGTERM, asserts it exits 0, and returns its log.
fn stop(agent: Running) -> String {
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    log
}

/// The leaf certificate in a PEM file, and its key file's key matches it.
fn pair(dir: &Path) -> (CertInfo, Vec<pem::PemBlock>) {
    let chain = pem::blocks(std::fs::read_to_string(dir.join("tls.crt")).unwrap()).unwrap();
    let leaf = chain.first().expect("a certificate in tls.crt");
    let key_text = std::fs::read_to_string(dir.join("tls.key")).unwrap();
    let key = pem::blocks(&key_text)
        .unwrap()
        .into_iter()
        .find(|b| b.is_private_key())
        .expect("a key");
    assert_eq!(
        certs::key_matches(&leaf.der, key.private_key().expect("a supported key")),
        Ok(()),
        "tls.key matches tls.crt"
    );
    (CertInfo::parse(&leaf.der).unwrap(), chain)
}

#[test]
fn the_seed_template_yields_the_leaf_and_issuing_ca_with_a_matching_key() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE, "");
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));

    let (leaf, chain) = pair(dir.path());
    assert_eq!(leaf.subject_cn, "foo.home");
    for name in ["foo.home", "localhost", "bar.home"] {
        assert!(
            leaf.names.iter().any(|n| n == name),
            "SAN {name} in {:?}",
            leaf.names
        );
    }
    let lifetime = leaf.lifetime().as_secs();
    assert!(
        (86_000..=86_460).contains(&lifetime),
        "ttl=24h: {lifetime}s"
    );
    assert_eq!(chain.len(), 2, "leaf + issuing CA");
    assert_eq!(
        chain[1].to_pem(),
        pem::blocks(bed.intermediate_ca_pem()).unwrap()[0].to_pem()
    );
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tls.key"), 0o644, "the seed asks writeToFile for 0644");
    assert_eq!(mode("tls.crt"), 0o644, "the seed's perms = 0644");

    assert_eq!(
        agent.metric("pki_sidecar_agent_issue_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        agent.metric("pki_sidecar_agent_template_renders_total{result=\"success\"}"),
        1.0
    );
    // Labelled by the certificate file's base name, as the proxy labels the file it serves.
    let expiry = agent.metric(
        "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"tls.crt\",role=\"agent\"}",
    );
    assert_eq!(expiry, certs::unix_seconds(leaf.not_after));
    assert_eq!(
        agent.metric("pki_sidecar_tls_certificate_ready{cert=\"tls.crt\",role=\"agent\"}"),
        1.0
    );
    let renewal =
        agent.metric("pki_sidecar_agent_certificate_renewal_timestamp_seconds{cert=\"tls.crt\"}");
    let start = certs::unix_seconds(leaf.not_before);
    let fraction = (renewal - start) / leaf.lifetime().as_secs_f64();
    assert!(
        (0.6166..=0.7167).contains(&fraction),
        "renewal at 2/3 ± 5 %: {fraction}"
    );
    let scrape = agent.scrape();
    assert!(
        scrape.contains(&format!("serial_number=\"{}\"", leaf.serial)),
        "the info series names the serial"
    );
    if let Some((ok, report)) = util::promtool_check(&scrape) {
        assert!(ok, "promtool: {report}");
    }
    let stderr = stop(agent);
    let key = std::fs::read_to_string(dir.path().join("tls.key")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(
        !stderr.contains(key_body),
        "the private key must never be logged"
    );
}

/// Metrics label a certificate by the file it lands in, as the proxy serving that file does:
/// a key-only or CA-only file gets no series, and `telemetry { cert_labels }` renames one.
#[test]
fn certificate_series_are_labelled_by_the_file_holding_the_leaf() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().display();
    let issue = r#"pkiCert "pki_intermediate/issue/home" "common_name=web.home" "ttl=1h""#;
    let extra = format!(
        r#"
template {{
  destination = "{local}/web/cert.pem"
  create_dest_dirs = true
  contents = "{{{{ with {issue} }}}}{{{{ .Data.Cert }}}}{{{{ end }}}}"
}}
template {{
  destination = "{local}/web/key.pem"
  create_dest_dirs = true
  contents = "{{{{ with {issue} }}}}{{{{ .Data.Key }}}}{{{{ end }}}}"
}}
template {{
  destination = "{local}/web/ca.pem"
  create_dest_dirs = true
  contents = "{{{{ with {issue} }}}}{{{{ .Data.CA }}}}{{{{ end }}}}"
}}
telemetry {{
  cert_labels = {{ "{local}/web/cert.pem" = "web" }}
}}
"#,
        issue = issue.replace('"', "\\\""),
    );
    let config = seed_config(dir.path(), bao::LOGIN_ROLE, &extra);
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    let scrape = agent.scrape();
    let web = CertInfo::parse(
        &pem::certificates(std::fs::read(dir.path().join("web/cert.pem")).unwrap()).unwrap()[0],
    )
    .unwrap();
    assert_eq!(
        agent.metric(
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"web\",role=\"agent\"}"
        ),
        certs::unix_seconds(web.not_after),
        "{scrape}"
    );
    let (seed, _) = pair(dir.path());
    assert_eq!(
        agent.metric(
            "pki_sidecar_tls_certificate_expiration_timestamp_seconds{cert=\"tls.crt\",role=\"agent\"}"
        ),
        certs::unix_seconds(seed.not_after),
        "{scrape}"
    );
    let labelled: Vec<&str> = scrape
        .lines()
        .filter(|line| line.starts_with("pki_sidecar_tls_certificate_ready{"))
        .collect();
    assert_eq!(
        labelled,
        [
            "pki_sidecar_tls_certificate_ready{cert=\"tls.crt\",role=\"agent\"} 1",
            "pki_sidecar_tls_certificate_ready{cert=\"web\",role=\"agent\"} 1",
        ],
        "one series per certificate file; none for the key or the CA alone"
    );
    stop(agent);
}

#[test]
fn a_restart_reuses_the_pair_on_disk_and_a_broken_key_gets_a_new_pair() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE, "");
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    stop(agent);
    let (first, _) = pair(dir.path());

    // Restart: same serial, nothing issued.
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    assert_eq!(
        agent.metric("pki_sidecar_agent_issue_total{result=\"success\"}"),
        0.0
    );
    let stderr = stop(agent);
    assert!(
        stderr.contains("reusing the certificate on disk"),
        "{stderr}"
    );
    let (again, _) = pair(dir.path());
    assert_eq!(again.serial, first.serial);

    // A key that no longer matches (here: another certificate's key) forces a new pair.
    let other = tempfile::tempdir().unwrap();
    let other_agent = start(
        bed,
        other.path(),
        &seed_config(other.path(), bao::LOGIN_ROLE, ""),
    );
    other_agent.wait_ready(Duration::from_secs(30));
    stop(other_agent);
    std::fs::copy(other.path().join("tls.key"), dir.path().join("tls.key")).unwrap();
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    assert_eq!(
        agent.metric("pki_sidecar_agent_issue_total{result=\"success\"}"),
        1.0
    );
    stop(agent);
    let (renewed, _) = pair(dir.path());
    assert_ne!(renewed.serial, first.serial);

    // A deleted key, then a corrupted one: a new pair each time.
    for damage in ["delete", "corrupt"] {
        let before = pair(dir.path()).0.serial;
        match damage {
            "delete" => std::fs::remove_file(dir.path().join("tls.key")).unwrap(),
            _ => std::fs::write(
                dir.path().join("tls.key"),
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            )
            .unwrap(),
        }
        let agent = start(bed, dir.path(), &config);
        agent.wait_ready(Duration::from_secs(30));
        stop(agent);
        assert_ne!(pair(dir.path()).0.serial, before, "{damage}: a new pair");
    }
}

#[test]
fn short_lived_certificates_are_renewed_before_expiry_and_the_pair_always_matches() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(
        dir.path(),
        bao::LOGIN_ROLE,
        "template_config {\n  lease_renewal_threshold = 0.5\n}\n",
    );
    // The seed asks for 24h; this test wants 8 s certificates.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"ttl=24h\"", "\"ttl=8s\"");
    std::fs::write(&config, text).unwrap();
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));

    let mut serials: Vec<(String, std::time::SystemTime, std::time::SystemTime)> = Vec::new();
    let started = Instant::now();
    while serials.len() < 3 {
        if started.elapsed() > Duration::from_secs(30) {
            let stderr = stop(agent);
            panic!("fewer than two renewals in 30s: {serials:?}\n{stderr}");
        }
        let (leaf, _) = pair_retrying(dir.path());
        if serials
            .last()
            .is_none_or(|(serial, _, _)| *serial != leaf.serial)
        {
            let now = std::time::SystemTime::now();
            if let Some((_, _, previous_not_after)) = serials.last() {
                assert!(
                    now < *previous_not_after,
                    "renewed before the previous certificate expired"
                );
            }
            serials.push((leaf.serial.clone(), now, leaf.not_after));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(agent.metric("pki_sidecar_agent_issue_total{result=\"success\"}") >= 3.0);
    stop(agent);
}

/// [`pair`], tolerating the instant between the key's and the certificate's renames.
fn pair_retrying(dir: &Path) -> (CertInfo, Vec<pem::PemBlock>) {
    for _ in 0..20 {
        if let Ok(found) = std::panic::catch_unwind(|| pair(dir)) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pair(dir)
}

#[test]
fn an_openbao_outage_across_a_renewal_point_keeps_the_files_until_it_returns() {
    let mut bed = bao::private_bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(
        dir.path(),
        bao::LOGIN_ROLE,
        "template_config {\n  lease_renewal_threshold = 0.5\n}\nvault {\n  retry {\n    num_retries = 1\n  }\n}\n",
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"ttl=24h\"", "\"ttl=10s\"");
    std::fs::write(&config, text).unwrap();
    let agent = start(&bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    let (first, _) = pair(dir.path());
    let crt_before = std::fs::read(dir.path().join("tls.crt")).unwrap();
    bed.stop();
    // The renewal point (about 5 s) passes while OpenBao is down, and the render fails.
    util::wait_until(Duration::from_secs(60), "a failed render", || {
        agent.metric("pki_sidecar_agent_template_renders_total{result=\"failure\"}") >= 1.0
    });
    assert_eq!(
        std::fs::read(dir.path().join("tls.crt")).unwrap(),
        crt_before,
        "the old files stay"
    );
    assert_eq!(pair(dir.path()).0.serial, first.serial);
    assert!(agent.metric("pki_sidecar_agent_template_renders_total{result=\"failure\"}") >= 1.0);
    bed.restart();
    let started = Instant::now();
    loop {
        let (leaf, chain) = pair_retrying(dir.path());
        if leaf.serial != first.serial {
            // Issued by the restarted server's new intermediate.
            assert_eq!(
                chain[1].to_pem(),
                pem::blocks(bed.intermediate_ca_pem()).unwrap()[0].to_pem()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no renewal after OpenBao came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(agent);
}

#[test]
fn exit_after_auth_renders_every_template_once_and_exits() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("exit_after_auth = false", "exit_after_auth = true");
    std::fs::write(&config, text).unwrap();
    let agent = start(bed, dir.path(), &config);
    let (code, stderr) = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    pair(dir.path());
}

#[test]
fn templates_render_secrets_run_their_command_and_rerender_on_sighup() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    bed.root_request(
        "POST",
        "sys/mounts/kv-templates",
        serde_json::json!({"type": "kv", "options": {"version": "2"}}),
    );
    bed.root_request(
        "POST",
        "kv-templates/data/app",
        serde_json::json!({"data": {"user": "alice", "password": "s3cret"}}),
    );
    let policy = r#"path "kv-templates/data/app" { capabilities = ["read"] }"#;
    bed.root_request(
        "PUT",
        "sys/policies/acl/kv-templates",
        serde_json::json!({"policy": policy}),
    );
    bed.root_request(
        "POST",
        "auth/kubernetes/role/kv-reader",
        serde_json::json!({
            "bound_service_account_names": bao::SERVICE_ACCOUNT,
            "bound_service_account_namespaces": bao::NAMESPACE,
            "token_policies": "kv-templates",
            "ttl": "1h",
        }),
    );
    let source = util::write_file(
        dir.path(),
        "app.tpl",
        "{{ with secret \"kv-templates/data/app\" }}{{ .Data.data.user }}{{ end }}\n",
    );
    let jwt = util::write_file(
        dir.path(),
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    let d = dir.path().display();
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            r#"auto_auth {{
  method "kubernetes" {{
    config = {{
      role       = "kv-reader"
      token_path = "{jwt}"
    }}
  }}
}}
template {{
  source      = "{source}"
  destination = "{d}/out/app.txt"
  perms       = "0600"
  command     = "echo ran >> {d}/command.log"
}}
template {{
  contents    = "{{{{ with secret \"kv-templates/data/app\" }}}}{{{{ toJSON .Data.data }}}}{{{{ end }}}}"
  destination = "{d}/app.json"
  wait {{
    min = "1s"
  }}
}}
template_config {{
  static_secret_render_interval = "1s"
}}
"#,
            jwt = jwt.display(),
            source = source.display(),
        ),
    );
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/app.txt")).unwrap(),
        "alice\n"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("out/app.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.json")).unwrap(),
        r#"{"password":"s3cret","user":"alice"}"#
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("command.log")).unwrap(),
        "ran\n"
    );

    // SIGHUP re-reads the source file.
    std::fs::write(
        &source,
        "{{ with secret \"kv-templates/data/app\" }}{{ .Data.data.user | toUpper }}{{ end }}\n",
    )
    .unwrap();
    util::signal(agent.pid(), Signal::SIGHUP);
    let started = Instant::now();
    while std::fs::read_to_string(dir.path().join("out/app.txt")).unwrap() != "ALICE\n" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGHUP did not re-render"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("command.log")).unwrap(),
        "ran\nran\n",
        "the command ran once per change, and app.json (unchanged) triggered nothing"
    );
    // A changed secret is picked up at the next static_secret_render_interval, and written
    // after wait.min.
    bed.root_request(
        "POST",
        "kv-templates/data/app",
        serde_json::json!({"data": {"user": "bob", "password": "s3cret"}}),
    );
    let started = Instant::now();
    while std::fs::read_to_string(dir.path().join("app.json")).unwrap()
        != r#"{"password":"s3cret","user":"bob"}"#
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the changed secret was not re-rendered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "wait.min held the write back"
    );
    let stderr = stop(agent);
    assert!(!stderr.contains("s3cret"), "secret values are not logged");
}

/// Runs OpenBao Agent (`bao agent`, Go's text/template via consul-template) once on `config`.
fn run_openbao_agent(bed: &Bed, config: &Path) {
    let output = std::process::Command::new(bao::bao_binary())
        .args(["agent", "-config"])
        .arg(config)
        .env("BAO_ADDR", bed.addr())
        .env("VAULT_ADDR", bed.addr())
        .output()
        .expect("run bao agent");
    assert!(
        output.status.success(),
        "bao agent failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_seed_template_renders_byte_for_byte_as_openbao_agent_does() {
    use pki_sidecar::agent::functions::{Dependency, RenderFunctions};
    use pki_sidecar::template::{RenderOptions, Value};

    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let config = seed_config(dir.path(), bao::LOGIN_ROLE, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("exit_after_auth = false", "exit_after_auth = true");
    std::fs::write(&config, text).unwrap();

    // 1. A fresh issue, rendered by Go: the layout with the key present.
    run_openbao_agent(bed, &config);
    let go_fresh = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    let (leaf, chain) = pair(dir.path());
    let key = std::fs::read_to_string(dir.path().join("tls.key")).unwrap();
    let loaded = pki_sidecar::config::load_with_env(
        std::slice::from_ref(&config),
        &|_| None,
        &pki_sidecar::agent::functions::KnownFunctions,
    )
    .unwrap();
    let template = &loaded.templates[0];
    let pki_sidecar::config::TemplateSource::Contents(text) = &template.source else {
        panic!("inline template");
    };
    let parsed = pki_sidecar::agent::render::parse(template, text).unwrap();
    let dependency = Dependency::PkiCert {
        path: "pki_intermediate/issue/home".into(),
        destination: template.destination.clone(),
        args: vec![
            ("common_name".into(), "foo.home".into()),
            ("alt_names".into(), "localhost,bar.home".into()),
            ("ttl".into(), "24h".into()),
        ],
    };
    let value = pki_sidecar::agent::pki::pki_value(
        &chain[0].to_pem(),
        &key,
        &chain[1].to_pem(),
        &[chain[1].to_pem()],
    );
    let fetched = [(dependency, value)].into_iter().collect();
    let mut functions = RenderFunctions::new(&fetched, &template.destination);
    let ours = parsed
        .render(&Value::Nil, &mut functions, RenderOptions::default())
        .unwrap();
    assert_eq!(ours, go_fresh, "fresh render, byte for byte");
    assert_eq!(functions.writes.len(), 1);
    assert_eq!(
        functions.writes[0].contents, key,
        "the key goes to writeToFile as Go wrote it"
    );

    // 2. A restart reusing the certificate (no key in the render): ours, then Go's, on the
    //    same file must agree byte for byte.
    let agent = start(bed, dir.path(), &config);
    let (code, stderr) = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("reusing the certificate on disk"),
        "{stderr}"
    );
    let ours_reused = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    run_openbao_agent(bed, &config);
    let go_reused = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    assert_eq!(ours_reused, go_reused, "reused render, byte for byte");
    assert_eq!(
        pair(dir.path()).0.serial,
        leaf.serial,
        "neither agent re-issued"
    );
}

/// The leaf in `dir/cert.pem` and whether `dir/key.pem` holds its key (the Vault Agent
/// Injector's layout: one template per file).
fn split_pair(dir: &Path) -> Result<CertInfo, String> {
    let chain = pem::blocks(std::fs::read(dir.join("cert.pem")).map_err(|e| e.to_string())?)?;
    let leaf = chain.first().ok_or("no certificate in cert.pem")?;
    let key_text = std::fs::read(dir.join("key.pem")).map_err(|e| e.to_string())?;
    let (key, _) = pem::first_private_key(&key_text)?;
    certs::key_matches(&leaf.der, key).map_err(|e| e.to_string())?;
    CertInfo::parse(&leaf.der)
}

/// How many certificates `mount` has issued (Vault keeps every one under `certs/`).
fn issued_count(bed: &Bed, mount: &str) -> usize {
    let (status, listed) = bed.request(
        "LIST",
        &format!("{mount}/certs"),
        Some(bed.root_token()),
        None,
    );
    if status == 404 {
        return 0; // none yet
    }
    assert_eq!(status, 200, "{listed}");
    listed["data"]["keys"].as_array().map_or(0, Vec::len)
}

/// Two templates, one writing `.Data.certificate`, the other `.Data.private_key` of the same
/// `secret` write (arguments in another order): as OpenBao Agent does, one request feeds both,
/// so the key always matches the certificate — after the first render, across renewals and
/// after a restart — with exactly one issue each time.
#[test]
fn a_certificate_and_key_split_across_templates_come_from_one_issue() {
    let bed = bao::bed();
    let pki = bed.mount_isolated_pki("split_pair");
    let dir = tempfile::tempdir().unwrap();
    let jwt = util::write_file(
        dir.path(),
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let agent_file = |exit_after_auth: bool, ttl: &str, out: &Path| {
        format!(
            r#"exit_after_auth = {exit_after_auth}
auto_auth {{
  method "kubernetes" {{
    config = {{
      role = "{role}"
      token_path = "{jwt}"
    }}
  }}
}}
template_config {{
  lease_renewal_threshold = 0.5
}}
template {{
  destination = "{out}/cert.pem"
  contents = <<EOT
{{{{ with secret "{mount}/issue/home" "common_name=foo.home" "ttl={ttl}" }}}}{{{{ .Data.certificate }}}}{{{{ end }}}}
EOT
}}
template {{
  destination = "{out}/key.pem"
  contents = <<EOT
{{{{ with secret "{mount}/issue/home" "ttl={ttl}" "common_name=foo.home" }}}}{{{{ .Data.private_key }}}}{{{{ end }}}}
EOT
}}
"#,
            role = pki.login_role,
            jwt = jwt.display(),
            mount = pki.mount,
            out = out.display(),
        )
    };

    // The reference: OpenBao Agent issues once and writes a matching pair.
    let reference = dir.path().join("reference");
    std::fs::create_dir(&reference).unwrap();
    let bao_config = util::write_file(
        dir.path(),
        "bao-agent.hcl",
        &agent_file(true, "1h", &reference),
    );
    let before = issued_count(bed, &pki.mount);
    run_openbao_agent(bed, &bao_config);
    assert_eq!(
        issued_count(bed, &pki.mount),
        before + 1,
        "OpenBao Agent issues once"
    );
    split_pair(&reference).expect("OpenBao Agent's pair matches");

    // Ours: 8 s certificates renewed at half their life.
    let config = util::write_file(dir.path(), "agent.hcl", &agent_file(false, "8s", &out));
    let before = issued_count(bed, &pki.mount);
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    let first = split_pair(&out).unwrap_or_else(|e| panic!("after the first render: {e}"));
    assert_eq!(
        issued_count(bed, &pki.mount),
        before + 1,
        "one issue for both templates"
    );

    // Renewals: every serial seen on disk is one issue, and the pair matches each time (the key
    // is renamed first, so a reader may catch the new key beside the old certificate for an
    // instant: retried).
    let mut serials = vec![first.serial.clone()];
    let started = Instant::now();
    while serials.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "fewer than two renewals in 40 s: {serials:?}\n{}",
            agent.log()
        );
        let mut found = split_pair(&out);
        for _ in 0..20 {
            if found.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            found = split_pair(&out);
        }
        let leaf = found.unwrap_or_else(|e| panic!("after a renewal: {e}\n{}", agent.log()));
        if serials.last() != Some(&leaf.serial) {
            serials.push(leaf.serial);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A renewal may land between the last look and the count: count, then look again.
    let stopped_log = stop(agent);
    let issued = issued_count(bed, &pki.mount) - before;
    let last = split_pair(&out).unwrap_or_else(|e| panic!("after stopping: {e}"));
    if serials.last() != Some(&last.serial) {
        serials.push(last.serial.clone());
    }
    assert_eq!(
        issued,
        serials.len(),
        "exactly one issue per renewal: serials seen {serials:?}\n{stopped_log}"
    );

    // A restart (with hour-long certificates now, so no renewal can add an issue): one new
    // issue feeds both files again.
    let config = util::write_file(dir.path(), "agent.hcl", &agent_file(false, "1h", &out));
    let before = issued_count(bed, &pki.mount);
    let agent = start(bed, dir.path(), &config);
    agent.wait_ready(Duration::from_secs(30));
    let restarted = split_pair(&out).unwrap_or_else(|e| panic!("after a restart: {e}"));
    assert_ne!(
        restarted.serial, last.serial,
        "a secret write is issued anew at start"
    );
    let log = stop(agent);
    assert_eq!(
        issued_count(bed, &pki.mount),
        before + 1,
        "one issue at the restart: {log}"
    );
}

/// `secret` on KV version 2 and version 1 mounts, as a value and in pipelines, and `secrets`:
/// rendered by OpenBao Agent and by pki-sidecar from the same data, byte for byte.
/// `backup = true`: when the destination changes, its previous contents are kept in
/// `DESTINATION.bak` with its mode, as OpenBao Agent keeps them: both agents run the same file
/// (a KV secret re-read every second) over a destination that was there before, through one
/// change of the secret; the files and modes are compared.
#[test]
fn backup_keeps_the_previous_file_as_openbao_agent_does() {
    use std::os::unix::fs::PermissionsExt;
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let secret = format!("secret/data/backup-{}", std::process::id());
    let put = |value: &str| {
        bed.root_request("POST", &secret, serde_json::json!({"data": {"v": value}}));
    };
    put("one");
    let config_for = |name: &str| {
        let out = dir.path().join(name);
        std::fs::write(&out, "previous\n").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
        util::write_file(
            dir.path(),
            &format!("{name}.hcl"),
            &format!(
                r#"vault {{
  address = "{addr}"
}}
auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = "{token}"
    }}
  }}
}}
template_config {{
  static_secret_render_interval = "1s"
}}
template {{
  contents    = "{{{{ with secret \"{secret}\" }}}}{{{{ .Data.data.v }}}}{{{{ end }}}}"
  destination = "{out}"
  backup      = true
}}
"#,
                addr = bed.addr(),
                token = token.display(),
                out = out.display(),
            ),
        )
    };
    let files = |name: &str| -> Vec<(String, u32)> {
        [name.to_string(), format!("{name}.bak")]
            .iter()
            .map(|f| {
                let path = dir.path().join(f);
                (
                    std::fs::read_to_string(&path).unwrap_or_default(),
                    std::fs::metadata(&path).map_or(0, |m| m.permissions().mode() & 0o7777),
                )
            })
            .collect()
    };
    let wait_for = |name: &str, value: &str| {
        util::wait_until(Duration::from_secs(20), "the render", || {
            std::fs::read_to_string(dir.path().join(name)).is_ok_and(|t| t == value)
        });
    };
    let bao_config = config_for("bao.out");
    let ours_config = config_for("ours.out");
    let _bao = bao::ReferenceAgent::start(&bao_config, bed.addr());
    let agent = Launch::agent(&[&ours_config], bed.addr(), &dir.path().join("agent.log")).spawn();
    wait_for("bao.out", "one");
    wait_for("ours.out", "one");
    let first = files("bao.out");
    assert_eq!(
        first,
        vec![
            ("one".to_string(), 0o640),
            ("previous\n".to_string(), 0o640)
        ],
        "the reference"
    );
    assert_eq!(files("ours.out"), first, "{}", agent.log());
    put("two");
    wait_for("bao.out", "two");
    wait_for("ours.out", "two");
    let second = files("bao.out");
    assert_eq!(
        second,
        vec![("two".to_string(), 0o640), ("one".to_string(), 0o640)],
        "the reference"
    );
    assert_eq!(files("ours.out"), second, "{}", agent.log());
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn kv_reads_and_lists_render_as_openbao_agent_renders_them() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    // KV v2 (the dev server's secret/): two versions. KV v1 on a mount of its own.
    for password in ["first", "s3cond"] {
        bed.root_request(
            "POST",
            "secret/data/compat-kv",
            serde_json::json!({"data": {"user": "app", "password": password, "port": 8080}}),
        );
    }
    bed.root_request(
        "POST",
        "secret/data/compat-kv-other",
        serde_json::json!({"data": {"x": "y"}}),
    );
    let (status, _) = bed.request("GET", "sys/mounts/kv1", Some(bed.root_token()), None);
    if status != 200 {
        bed.root_request(
            "POST",
            "sys/mounts/kv1",
            serde_json::json!({"type": "kv", "options": {"version": "1"}}),
        );
    }
    bed.root_request(
        "POST",
        "kv1/compat",
        serde_json::json!({"user": "v1user", "ttl": "1h"}),
    );
    bed.root_request("POST", "kv1/compat2", serde_json::json!({"a": "b"}));
    let template = r#"v2: {{ with secret "secret/compat-kv" }}{{ .Data.data.user }} {{ .Data.data.password }} {{ .Data.data.port }} v{{ .Data.metadata.version }}{{ end }}
explicit: {{ with secret "secret/data/compat-kv" }}{{ .Data.data.user }}{{ end }}
version 1: {{ with secret "secret/compat-kv?version=1" }}{{ .Data.data.password }} v{{ .Data.metadata.version }}{{ end }}
variable: {{ $s := secret "secret/compat-kv" }}{{ with $s }}{{ .Data.data.user }}{{ end }}
keys: {{ with secret "secret/compat-kv" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }};{{ end }}{{ end }}
v1: {{ with secret "kv1/compat" }}{{ .Data.user }} {{ .LeaseDuration }} {{ .Renewable }} [{{ .LeaseID }}]{{ end }}
json: {{ with secret "kv1/compat" }}{{ .Data | toJSON }}{{ end }}
list v2: {{ range secrets "secret/" }}{{ if eq . "compat-kv" "compat-kv-other" }}{{ . }},{{ end }}{{ end }}
list v1: {{ range secrets "kv1/" }}{{ . }},{{ end }}
paren: {{ (secret "secret/compat-kv").Data.data.user }}
variable field: {{ $t := secret "kv1/compat" }}{{ $t.Data.user }}
auth: {{ with secret "auth/token/create" "ttl=1h" "policies=default" }}{{ .Auth.Policies }} {{ .Auth.LeaseDuration }} {{ .Auth.Renewable }} {{ .LeaseDuration }} {{ .Renewable }} {{ gt (len .Auth.ClientToken) 10 }}{{ end }}
nil fields: {{ with secret "kv1/compat" }}{{ .Warnings }} {{ if .Auth }}auth{{ end }}{{ with .WrapInfo }}wrapped{{ end }}{{ end }}
"#;
    let source = util::write_file(dir.path(), "kv.tpl", template);
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let config_for = |out: &str| {
        let text = format!(
            r#"exit_after_auth = true
vault {{ address = "{addr}" }}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template_config {{ exit_on_retry_failure = true }}
template {{
  source = "{source}"
  destination = "{dir}/{out}"
}}
"#,
            addr = bed.addr(),
            token = token.display(),
            source = source.display(),
            dir = dir.path().display(),
        );
        util::write_file(dir.path(), &format!("{out}.hcl"), &text)
    };
    run_openbao_agent(bed, &config_for("bao.out"));
    let agent = Launch::agent(
        &[&config_for("ours.out")],
        bed.addr(),
        &dir.path().join("agent.log"),
    )
    .spawn();
    let (code, log) = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    let theirs = std::fs::read_to_string(dir.path().join("bao.out")).unwrap();
    let ours = std::fs::read_to_string(dir.path().join("ours.out")).unwrap();
    assert!(
        theirs.contains("v2: app s3cond 8080 v2")
            && theirs.contains("version 1: first v1")
            && theirs.contains("list v2: compat-kv,compat-kv-other,")
            && theirs.contains("list v1: compat,compat2,"),
        "the reference rendered the data:\n{theirs}"
    );
    assert_eq!(ours, theirs, "byte for byte as OpenBao Agent");
}

/// Vault Agent's process supervisor mode: `env_template` blocks become the environment of the
/// `exec` command, which starts once every one has a value; the agent exits with the
/// command's status. OpenBao Agent on the same file gives the command the same values, byte
/// for byte (a secret with a newline and spaces in it), and a certificate and its key split
/// across two variables come from one issue in both.
#[test]
fn env_templates_give_the_exec_command_what_openbao_agent_gives_it() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    bed.root_request(
        "POST",
        "secret/data/compat-env",
        serde_json::json!({"data": {"user": "app", "password": " pa ss\nword "}}),
    );
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let config_for = |out: &str| {
        let text = format!(
            r#"vault {{ address = "{addr}" }}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template_config {{ exit_on_retry_failure = true }}
env_template "DB_USER" {{
  contents = "{{{{ with secret \"secret/data/compat-env\" }}}}{{{{ .Data.data.user }}}}{{{{ end }}}}"
  error_on_missing_key = true
}}
env_template "DB_PASSWORD" {{
  contents = "{{{{ with secret \"secret/data/compat-env\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
}}
env_template "TLS_CERT" {{
  contents = "{{{{ with pkiCert \"{issue}\" \"common_name=localhost\" \"ttl=1h\" }}}}{{{{ .Cert }}}}{{{{ end }}}}"
}}
env_template "TLS_KEY" {{
  contents = "{{{{ with pkiCert \"{issue}\" \"common_name=localhost\" \"ttl=1h\" }}}}{{{{ .Key }}}}{{{{ end }}}}"
}}
exec {{
  command = ["sh", "-c", "printf '%s|%s' \"$DB_USER\" \"$DB_PASSWORD\" > {dir}/{out}; printf '%s' \"$TLS_CERT\" > {dir}/{out}.crt; printf '%s' \"$TLS_KEY\" > {dir}/{out}.key; exit 3"]
}}
"#,
            addr = bed.addr(),
            token = token.display(),
            issue = bao::ISSUE_PATH,
            dir = dir.path().display(),
        );
        util::write_file(dir.path(), &format!("{out}.hcl"), &text)
    };
    let output = std::process::Command::new(bao::bao_binary())
        .args(["agent", "-config"])
        .arg(config_for("bao.out"))
        .env("BAO_ADDR", bed.addr())
        .output()
        .expect("run bao agent");
    assert_eq!(
        output.status.code(),
        Some(3),
        "bao agent exits with the command's status:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let agent = Launch::agent(
        &[&config_for("ours.out")],
        bed.addr(),
        &dir.path().join("agent.log"),
    )
    .spawn();
    let (code, log) = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(3),
        "the agent exits with the command's status:\n{log}"
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("bao.out"), "app| pa ss\nword ", "the reference");
    assert_eq!(
        read("ours.out"),
        read("bao.out"),
        "byte for byte as OpenBao Agent"
    );
    for out in ["bao.out", "ours.out"] {
        let cert = pem::blocks(read(&format!("{out}.crt"))).unwrap();
        let key = pem::blocks(read(&format!("{out}.key"))).unwrap();
        assert_eq!(
            certs::key_matches(&cert[0].der, key[0].private_key().expect("a key")),
            Ok(()),
            "{out}: TLS_KEY matches TLS_CERT"
        );
    }
    assert!(
        !log.contains("pa ss"),
        "secret values are not logged:\n{log}"
    );
}

/// A changed value restarts the `exec` command with it (`restart_on_secret_changes`, by
/// default `always`); SIGTERM to the agent stops the command with `restart_stop_signal` and
/// the agent exits 0.
#[test]
fn a_changed_env_template_value_restarts_the_exec_command() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let write = |password: &str| {
        bed.root_request(
            "POST",
            "secret/data/compat-env-restart",
            serde_json::json!({"data": {"password": password}}),
        );
    };
    write("first");
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let starts = dir.path().join("starts");
    let stops = dir.path().join("stops");
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            r#"vault {{ address = "{addr}" }}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template_config {{ static_secret_render_interval = "1s" }}
env_template "DB_PASSWORD" {{
  contents = "{{{{ with secret \"secret/data/compat-env-restart\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
}}
exec {{
  command = ["sh", "-c", "echo \"$DB_PASSWORD\" >> {starts}; trap 'echo \"$DB_PASSWORD\" >> {stops}; exit 0' INT; while :; do sleep 0.1; done"]
  restart_stop_signal = "SIGINT"
}}
"#,
            addr = bed.addr(),
            token = token.display(),
            starts = starts.display(),
            stops = stops.display(),
        ),
    );
    let agent = Launch::agent(&[&config], bed.addr(), &dir.path().join("agent.log")).spawn();
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let wait_for = |path: &Path, want: &str| {
        let start = std::time::Instant::now();
        while read(path) != want {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} is {:?}, not {want:?}",
                path.display(),
                read(path)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&starts, "first\n");
    write("second");
    wait_for(&starts, "first\nsecond\n");
    wait_for(&stops, "first\n");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        read(&stops),
        "first\nsecond\n",
        "the command was stopped with SIGINT"
    );
    assert!(log.contains("restarting the exec command"), "{log}");
}

/// Dynamic credentials (OpenBao's database engine on a real PostgreSQL): the lease is renewed,
/// so the rendered username stays while renewals extend it, as OpenBao Agent keeps it; near
/// the lease's max TTL the secret is read again, before the old credentials end.
#[test]
fn renewable_leases_are_renewed_and_read_again_only_near_their_max_ttl() {
    let postgres = util::postgres::Postgres::start();
    let bed = bao::bed();
    let mount = "database-leases";
    let (status, _) = bed.request(
        "GET",
        &format!("sys/mounts/{mount}"),
        Some(bed.root_token()),
        None,
    );
    if status != 200 {
        bed.root_request(
            "POST",
            &format!("sys/mounts/{mount}"),
            serde_json::json!({"type": "database"}),
        );
    }
    bed.root_request(
        "POST",
        &format!("{mount}/config/pg"),
        serde_json::json!({
            "plugin_name": "postgresql-database-plugin",
            "allowed_roles": "app",
            "connection_url": format!(
                "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                postgres.port
            ),
            "username": "postgres",
            "password": "trusted",
        }),
    );
    // Renewals at about 2/3 of 6 s; the max TTL allows two or three before the last.
    bed.root_request(
        "POST",
        &format!("{mount}/roles/app"),
        serde_json::json!({
            "db_name": "pg",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            "default_ttl": "6s",
            "max_ttl": "20s",
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let config_for = |out: &Path, name: &str| {
        util::write_file(
            dir.path(),
            name,
            &format!(
                r#"vault {{ address = "{addr}" }}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template {{
  contents = "{{{{ with secret \"{mount}/creds/app\" }}}}{{{{ .Data.username }}}} {{{{ .LeaseDuration }}}}{{{{ end }}}}"
  destination = "{out}"
}}
"#,
                addr = bed.addr(),
                token = token.display(),
                out = out.display(),
            ),
        )
    };
    // OpenBao Agent alongside, on the same role: the reference.
    let theirs = dir.path().join("bao.env");
    let reference = bao::ReferenceAgent::start(&config_for(&theirs, "bao.hcl"), bed.addr());
    let out = dir.path().join("db.env");
    let config = config_for(&out, "agent.hcl");
    let agent = Launch::agent(&[&config], bed.addr(), &dir.path().join("agent.log")).spawn();
    let read_file = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let read = || read_file(&out);
    util::wait_until(
        Duration::from_secs(30),
        "OpenBao Agent's first credentials",
        || !read_file(&theirs).is_empty(),
    );
    let theirs_first = read_file(&theirs);
    util::wait_until(Duration::from_secs(30), "the first credentials", || {
        !read().is_empty()
    });
    let first = read();
    assert!(first.starts_with("v-") && first.ends_with(" 6"), "{first}");
    // Two renewals: the file still holds the first credentials, unchanged (the lease duration
    // rendered is the first one's, as OpenBao Agent renders it).
    util::wait_until(Duration::from_secs(30), "two lease renewals", || {
        agent.log().matches("lease renewed").count() >= 2
    });
    assert_eq!(
        read(),
        first,
        "renewals keep the credentials:\n{}",
        agent.log()
    );
    assert_eq!(
        read_file(&theirs),
        theirs_first,
        "OpenBao Agent keeps its credentials meanwhile too"
    );
    assert!(theirs_first.ends_with(" 6"), "{theirs_first}");
    drop(reference);
    // Near the max TTL the credentials are read again, while the old ones still work.
    util::wait_until(Duration::from_secs(40), "new credentials", || {
        let now = read();
        !now.is_empty() && now != first
    });
    let log = agent.log();
    assert!(log.contains("its max TTL is near"), "{log}");
    assert!(!log.contains("cannot renew the lease"), "{log}");
    let (code, log) = agent.stop();
    assert_eq!(code, Some(0), "{log}\n{}", postgres.log());
}

/// HCL1's text where HCL2 sees templates and separators: `%{` and `${` in strings and
/// heredocs, bodies and objects on one line, a key given twice (the last counts). The files
/// OpenBao Agent writes from such an agent file, pki-sidecar writes byte for byte.
#[test]
fn hcl1_text_in_an_agent_file_renders_as_openbao_agent_renders_it() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    util::write_file(dir.path(), "token", bed.root_token());
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!(
            r#"exit_after_auth = true
auto_auth {{ method "token_file" {{ config = {{ token_file_path = "{d}/token" }} }} }}
template {{ destination = "{d}/haproxy.cfg"  contents = "log-format \"%{{+Q}}o %ci %{{+Q}}r\" ${{x}} $${{y}} %%{{z}}\n" }}
template {{
  destination = "{d}/first.conf"
  destination = "{d}/httpd.conf"
  wait = {{ min = "1s" max = "2s" }}
  perms = 0640
  contents = <<EOT
LogFormat "%h \"%{{Referer}}i\" %{{User-Agent}}i" combined
SetEnv TOKEN_FILE ${{TOKEN_FILE:-/tmp/token}} $${{HOME}} %%{{x}}
{{{{ "%{{" }}}} {{{{ printf "%d" 42 }}}}
EOT
}}
"#
        ),
    );
    // A file HCL2 reads without the bridge: its doubled `$${` and `%%{` are HCL1's text too.
    util::write_file(
        dir.path(),
        "hcl2.hcl",
        &format!(
            r#"exit_after_auth = true
auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = "{d}/token"
    }}
  }}
}}
template {{
  destination = "{d}/run.sh"
  contents    = "export A=$${{HOME}} B=$$${{PATH}} C=%%{{x}} D=$$ E=${{USER}}\n"
}}
template {{
  destination = "{d}/run2.sh"
  contents    = <<EOT
export A=$${{HOME}} C=%%{{x}} E=${{USER}}
EOT
}}
"#
        ),
    );
    let hcl2 = dir.path().join("hcl2.hcl");
    let names = ["haproxy.cfg", "httpd.conf", "run.sh", "run2.sh"];
    run_openbao_agent(bed, &config);
    run_openbao_agent(bed, &hcl2);
    let theirs: Vec<String> = names
        .iter()
        .map(|name| std::fs::read_to_string(dir.path().join(name)).unwrap())
        .collect();
    assert!(!dir.path().join("first.conf").exists());
    for name in names {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let agent = start(bed, dir.path(), &config);
    let (code, log) = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    let (code, hcl2_log) = start(bed, dir.path(), &hcl2).wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{hcl2_log}");
    let ours: Vec<String> = names
        .iter()
        .map(|name| std::fs::read_to_string(dir.path().join(name)).unwrap())
        .collect();
    assert_eq!(ours, theirs);
    assert!(!dir.path().join("first.conf").exists());
    assert!(theirs[0].contains("%{+Q}o"), "{theirs:?}");
    assert!(
        theirs[1].contains("${TOKEN_FILE:-/tmp/token} $${HOME} %%{x}"),
        "{theirs:?}"
    );
    assert_eq!(
        theirs[2], "export A=$${HOME} B=$$${PATH} C=%%{x} D=$$ E=${USER}\n",
        "{theirs:?}"
    );
    assert!(
        log.contains("template[1].destination: warning: is set again later"),
        "{log}"
    );
}

/// With `exit_on_retry_failure`, a template that fails is tried again `vault.retry.num_retries`
/// times (250 ms apart, doubling) before the agent exits, as OpenBao Agent's template engine
/// retries it: a secret written a moment after the agent starts is rendered; one that never
/// comes ends the agent with exit code 1 after the retries.
#[test]
fn exit_on_retry_failure_retries_a_missing_secret_before_it_exits() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let config_for = |name: &str, path: &str, retries: i32| {
        util::write_file(
            dir.path(),
            &format!("{name}.hcl"),
            &format!(
                r#"exit_after_auth = true
vault {{
  address = "{addr}"
  retry {{ num_retries = {retries} }}
}}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template_config {{ exit_on_retry_failure = true }}
template {{
  contents = "{{{{ with secret \"{path}\" }}}}{{{{ .Data.data.value }}}}{{{{ end }}}}"
  destination = "{dir}/{name}.out"
}}
"#,
                addr = bed.addr(),
                token = token.display(),
                dir = dir.path().display(),
            ),
        )
    };
    let path = format!("secret/data/late-{}", std::process::id());
    let late = config_for("late", &path, 12);
    let agent = Launch::agent(&[&late], bed.addr(), &dir.path().join("late.log")).spawn();
    std::thread::sleep(Duration::from_millis(800));
    bed.root_request(
        "POST",
        &path,
        serde_json::json!({ "data": { "value": "arrived" } }),
    );
    let (code, log) = agent.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("late.out")).unwrap(),
        "arrived"
    );
    let never = config_for("never", "secret/data/never-written", 2);
    let agent = Launch::agent(&[&never], bed.addr(), &dir.path().join("never.log")).spawn();
    let (code, log) = agent.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("failed 3 times"), "{log}");
    assert!(!dir.path().join("never.out").exists());
}

/// Templates whose files change in one pass run their commands once each (the injector's
/// certificate and key templates share their reload: one reload, not two), as OpenBao Agent
/// runs them; with `exit_on_retry_failure`, a failing command ends both agents with exit code
/// 1, the files written.
#[test]
fn a_shared_command_runs_once_and_a_failing_one_ends_the_agent_as_in_openbao_agent() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let config_for = |name: &str, tail: &str| {
        let out = dir.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        util::write_file(
            dir.path(),
            &format!("{name}.hcl"),
            &format!(
                r#"vault {{
  address = "{addr}"
}}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template {{
  contents    = "cert"
  destination = "{out}/cert.pem"
  command     = "echo reload >> {out}/commands.log"
}}
template {{
  contents    = "key"
  destination = "{out}/key.pem"
  command     = "echo reload >> {out}/commands.log"
}}
template {{
  contents    = "ca"
  destination = "{out}/ca.pem"
  command     = "echo other >> {out}/commands.log"
}}
{tail}"#,
                addr = bed.addr(),
                token = token.display(),
                out = out.display(),
            ),
        )
    };
    // Each agent until its three files are written and its commands have had a second to run.
    let commands_of = |name: &str, ours: bool| -> String {
        let config = config_for(name, "");
        let out = dir.path().join(name);
        let run = || {
            let started = Instant::now();
            while !out.join("ca.pem").exists() || !out.join("commands.log").exists() {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{name}: no files"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        if ours {
            let agent = Launch::agent(&[&config], bed.addr(), &dir.path().join("ours.log")).spawn();
            run();
            drop(agent);
        } else {
            let reference = bao::ReferenceAgent::start(&config, bed.addr());
            run();
            drop(reference);
        }
        let mut lines: Vec<String> = std::fs::read_to_string(out.join("commands.log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines.join(",")
    };
    let theirs = commands_of("bao", false);
    assert_eq!(theirs, "other,reload", "the reference");
    assert_eq!(commands_of("ours", true), theirs);

    let failing = "template_config {\n  exit_on_retry_failure = true\n}\ntemplate {\n  contents = \"x\"\n  destination = \"DIR/x\"\n  command = \"exit 3\"\n}\n";
    for (name, ours) in [("bao-failing", false), ("ours-failing", true)] {
        let out = dir.path().join(name);
        let config = config_for(name, &failing.replace("DIR", &out.display().to_string()));
        let code = if ours {
            let agent =
                Launch::agent(&[&config], bed.addr(), &dir.path().join("failing.log")).spawn();
            agent.wait_exit(Duration::from_secs(60)).0
        } else {
            let mut reference = bao::ReferenceAgent::start(&config, bed.addr());
            let started = Instant::now();
            loop {
                if let Some(status) = reference.0.try_wait().unwrap() {
                    break status.code();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "bao agent went on"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        assert_eq!(code, Some(1), "{name}");
        assert_eq!(
            std::fs::read_to_string(out.join("x")).unwrap(),
            "x",
            "{name}"
        );
    }
}

/// Answers that are not secrets (`sys/health`, `sys/seal-status`, `sys/leader`, an OIDC key
/// set) have no `data`: `.Data` is the whole answer, as OpenBao Agent renders it (an app's
/// JWKS file rendered from `identity/oidc/.well-known/keys` was `null`).
#[test]
fn answers_without_data_render_whole_as_in_openbao_agent() {
    let bed = bao::bed();
    let dir = tempfile::tempdir().unwrap();
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let config_for = |name: &str| {
        util::write_file(
            dir.path(),
            &format!("{name}.hcl"),
            &format!(
                r#"exit_after_auth = true
vault {{
  address = "{addr}"
}}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{token}" }} }}
}}
template {{
  contents    = <<EOT
{{{{ with secret "sys/health" }}}}{{{{ .Data.initialized }}}} {{{{ .Data.sealed }}}} [{{{{ .RequestID }}}}]{{{{ end }}}}
{{{{ with secret "sys/seal-status" }}}}{{{{ .Data.type }}}}{{{{ end }}}}
{{{{ with secret "sys/leader" }}}}{{{{ .Data.ha_enabled }}}}{{{{ end }}}}
{{{{ with secret "identity/oidc/.well-known/keys" }}}}{{{{ .Data | toJSON }}}}{{{{ end }}}}
EOT
  destination = "{dir}/{name}.out"
}}
"#,
                addr = bed.addr(),
                token = token.display(),
                dir = dir.path().display(),
            ),
        )
    };
    run_openbao_agent(bed, &config_for("bao"));
    let theirs = std::fs::read_to_string(dir.path().join("bao.out")).unwrap();
    assert!(
        theirs.starts_with("true false []\nshamir\n"),
        "the reference: {theirs}"
    );
    let agent = Launch::agent(
        &[&config_for("ours")],
        bed.addr(),
        &dir.path().join("ours.log"),
    )
    .spawn();
    let (code, log) = agent.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    let ours = std::fs::read_to_string(dir.path().join("ours.out")).unwrap();
    assert_eq!(ours, theirs);
}
