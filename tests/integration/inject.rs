//! `pki-sidecar inject`: annotated workloads in, the same objects with the sidecars out.
//!
//! PyYAML (YAML 1.1, as kubectl's go-yaml v2 reads `0644`, `yes`, `0x2`) is the oracle for
//! "semantically unchanged": input and output are parsed by it and compared once what the
//! injection adds is taken away. Every injected Pod template is checked against the Kubernetes
//! schemas (`kubernetes-validate --strict`) and each injected container's command line and
//! environment through `pki-sidecar validate --role`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util;

const VAULT: &str = "https://vault.vault.svc:8200";

const INJECTED_CONTAINERS: &[&str] = &[
    "pki-sidecar-agent",
    "pki-sidecar-init",
    "pki-sidecar-proxy",
    "vault-agent",
    "vault-agent-init",
];
const INJECTED_VOLUMES: &[&str] = &[
    "pki-sidecar-tls",
    "pki-sidecar-home",
    "pki-sidecar-config",
    "pki-sidecar-vault-tls",
    "pki-sidecar-client-ca",
    "vault-secrets",
    "home-init",
    "home-sidecar",
    "vault-config",
    "vault-tls-secrets",
];
const STATUS: &[&str] = &[
    "pki-sidecar.io/status",
    "vault.hashicorp.com/agent-inject-status",
];

/// The fixtures every test runs over: the Vault Agent Injector's examples, every kind, and the
/// project's own annotated Deployment.
fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(util::repo().join("tests/inject"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files.push(util::repo().join("deploy/examples/annotated-deployment.yaml"));
    assert!(files.len() >= 8, "{files:?}");
    files
}

fn run_inject(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = util::command();
    command
        .arg("inject")
        .args(["--vault-address", VAULT])
        .args(args)
        .env_remove("PKI_SIDECAR_INJECT_IMAGE")
        .env_remove("PKI_SIDECAR_INJECT_VAULT_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn inject_ok(args: &[&str], stdin: Option<&str>) -> String {
    let output = run_inject(args, stdin);
    assert!(
        output.status.success(),
        "inject {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every document of `text` as PyYAML (YAML 1.1) reads it.
fn oracle(text: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml\n\
             docs = list(yaml.safe_load_all(sys.stdin))\n\
             print(json.dumps(docs, default=str))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with PyYAML");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyYAML: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Takes away what the injection adds, wherever it is.
fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, names) in [
                ("containers", INJECTED_CONTAINERS),
                ("initContainers", INJECTED_CONTAINERS),
                ("volumes", INJECTED_VOLUMES),
                ("volumeMounts", INJECTED_VOLUMES),
            ] {
                if let Some(Value::Array(items)) = map.get_mut(key) {
                    let before = items.len();
                    items.retain(|i| !i["name"].as_str().is_some_and(|n| names.contains(&n)));
                    if items.is_empty() && before > 0 {
                        map.remove(key);
                    }
                }
            }
            if let Some(Value::Object(annotations)) = map.get_mut("annotations") {
                let before = annotations.len();
                for status in STATUS {
                    annotations.remove(*status);
                }
                if annotations.is_empty() && before > 0 {
                    map.remove("annotations");
                }
            }
            for child in map.values_mut() {
                strip(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Every object of a stream, Lists flattened.
fn objects(docs: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind == "List" || kind.ends_with("List") {
            out.extend(objects(doc["items"].as_array().unwrap()));
        } else {
            out.push(doc.clone());
        }
    }
    out
}

/// The Pod spec of a Pod or workload object.
fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = match object["kind"].as_str()? {
        "Pod" => &object["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &object["spec"]["template"]["spec"],
        "PodTemplate" => &object["template"]["spec"],
        _ => return None,
    };
    spec.is_object().then_some(spec)
}

fn injected(spec: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|list| {
        spec[*list].as_array().is_some_and(|l| {
            l.iter()
                .any(|c| INJECTED_CONTAINERS.contains(&c["name"].as_str().unwrap_or("")))
        })
    })
}

/// `kubernetes-validate --strict` on each object alone (it has no schema for `List`).
fn kubernetes_validate(objects: &[Value], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut stream = String::new();
    for object in objects {
        stream.push_str("---\n");
        stream.push_str(&serde_json::to_string(object).unwrap());
        stream.push('\n');
    }
    let file = util::write_file(dir.path(), "objects.yaml", &stream);
    let validation = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file)
        .output()
        .expect("run kubernetes-validate (scripts/install-test-deps.sh installs it)");
    let report = String::from_utf8_lossy(&validation.stdout).to_string()
        + &String::from_utf8_lossy(&validation.stderr);
    assert!(validation.status.success(), "{what}: {report}");
    assert!(!report.contains("Couldn't find schema"), "{what}: {report}");
}

/// `pki-sidecar validate --role ROLE` with each pki-sidecar container's arguments and
/// environment; ConfigMap mounts are materialised from the stream's ConfigMaps.
fn validate_containers(spec: &Value, config_maps: &BTreeMap<String, Value>, what: &str) -> usize {
    let mut checked = 0;
    let volumes: BTreeMap<&str, &Value> = spec["volumes"]
        .as_array()
        .map(|l| l.iter().map(|v| (v["name"].as_str().unwrap(), v)).collect())
        .unwrap_or_default();
    for list in ["initContainers", "containers"] {
        for container in spec[list].as_array().into_iter().flatten() {
            if !container["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("pki-sidecar"))
            {
                continue;
            }
            let args: Vec<String> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            // Every injected container; the workload's own pki-sidecar containers when they
            // name a config (a bare `app` runs on defaults, which validate does not take).
            let injected = INJECTED_CONTAINERS.contains(&container["name"].as_str().unwrap());
            if !injected && !args.iter().any(|a| a.starts_with("--config")) {
                continue;
            }
            let role = args[0].clone();
            assert!(
                ["agent", "proxy", "app"].contains(&role.as_str()),
                "{args:?}"
            );
            let dir = tempfile::tempdir().unwrap();
            let mut rest: Vec<String> = args[1..].to_vec();
            // ConfigMap mounts: the ConfigMap's files in a directory standing for the mount.
            for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                let volume = volumes[mount["name"].as_str().unwrap()];
                let Some(map_name) = volume["configMap"]["name"].as_str() else {
                    continue;
                };
                let Some(map) = config_maps.get(map_name) else {
                    continue;
                };
                let local = dir.path().join(map_name);
                std::fs::create_dir_all(&local).unwrap();
                for (file, text) in map["data"].as_object().unwrap() {
                    std::fs::write(local.join(file), text.as_str().unwrap()).unwrap();
                }
                let mount_path = mount["mountPath"].as_str().unwrap();
                for arg in &mut rest {
                    if let Some(tail) = arg.strip_prefix(mount_path) {
                        *arg = format!("{}{tail}", local.display());
                    }
                }
            }
            let mut command = util::command();
            command.args(["validate", "--role", &role]).args(&rest);
            for env in container["env"].as_array().into_iter().flatten() {
                command.env(
                    env["name"].as_str().unwrap(),
                    env["value"].as_str().unwrap(),
                );
            }
            let output = command.output().unwrap();
            assert!(
                output.status.success(),
                "{what}: container {}: validate --role {role} {rest:?}: {}",
                container["name"],
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn fixtures_are_injected_valid_and_otherwise_unchanged() {
    for file in fixtures() {
        let what = file.display().to_string();
        let input = std::fs::read_to_string(&file).unwrap();
        let output = inject_ok(&[file.to_str().unwrap()], None);
        let before = oracle(&input);
        let after = oracle(&output);
        assert_eq!(before.len(), after.len(), "{what}: documents in and out");
        let config_maps: BTreeMap<String, Value> = objects(&after)
            .into_iter()
            .filter(|o| o["kind"] == "ConfigMap")
            .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
            .collect();
        let mut injected_templates = 0;
        let mut containers = 0;
        for object in objects(&after) {
            let Some(spec) = pod_spec(&object) else {
                continue;
            };
            if injected(spec) {
                injected_templates += 1;
                kubernetes_validate(std::slice::from_ref(&object), &what);
                containers += validate_containers(spec, &config_maps, &what);
            }
        }
        assert!(injected_templates > 0, "{what}: nothing injected");
        assert!(containers > 0, "{what}: no container checked");
        for (index, (mut a, mut b)) in before.into_iter().zip(after).enumerate() {
            strip(&mut a);
            strip(&mut b);
            assert_eq!(
                a,
                b,
                "{what}: document {} differs beyond the injection",
                index + 1
            );
        }
    }
}

#[test]
fn injecting_twice_is_injecting_once() {
    for file in fixtures() {
        let once = inject_ok(&[file.to_str().unwrap()], None);
        let twice = inject_ok(&[], Some(&once));
        assert_eq!(once, twice, "{}", file.display());
    }
}

#[test]
fn every_workload_kind_and_list_is_injected_and_the_rest_left_byte_for_byte() {
    let file = util::repo().join("tests/inject/kinds.yaml");
    let input = std::fs::read_to_string(&file).unwrap();
    let output = inject_ok(&[file.to_str().unwrap()], None);
    let docs = oracle(&output);
    let by_name: BTreeMap<String, Value> = objects(&docs)
        .into_iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o,
            )
        })
        .collect();
    let names = |key: &str, list: &str| -> Vec<String> {
        pod_spec(&by_name[key]).unwrap()[list]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|c| c["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for key in [
        "Pod/lone",
        "DaemonSet/node-agent",
        "Deployment/in-list",
        "Pod/in-pod-list",
        "ReplicationController/rc",
        "PodTemplate/tmpl",
    ] {
        assert_eq!(
            names(key, "containers"),
            ["app", "pki-sidecar-agent"],
            "{key}"
        );
        assert_eq!(names(key, "initContainers"), ["pki-sidecar-init"], "{key}");
    }
    assert_eq!(
        names("ReplicaSet/rs", "containers"),
        ["app", "pki-sidecar-agent", "pki-sidecar-proxy"]
    );
    // pre-populate-only: the CronJob's Jobs render once and complete.
    assert_eq!(names("CronJob/nightly", "containers"), ["job"]);
    assert_eq!(
        names("CronJob/nightly", "initContainers"),
        ["vault-agent-init"]
    );
    assert!(pod_spec(&by_name["Deployment/plain"]).is_some_and(|s| !injected(s)));
    // YAML 1.1 values keep what kubectl reads: 0644 is 420, yes is true, 0x2 is 2.
    let lone = &by_name["Pod/lone"]["spec"];
    assert_eq!(lone["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(lone["volumes"][0]["configMap"]["optional"], true);
    assert_eq!(lone["containers"][0]["env"][0]["value"], "yes");
    assert_eq!(by_name["ReplicaSet/rs"]["spec"]["replicas"], 2);
    assert_eq!(
        by_name["ReplicaSet/rs"]["spec"]["template"]["metadata"]["labels"],
        serde_json::json!({ "app": "rs", "tier": "web" })
    );
    // Documents left alone are written back as they were, comments and all.
    let untouched_service = input.split("---\n").next().unwrap();
    assert!(output.starts_with(untouched_service), "{output}");
    let plain = input.rsplit("---\n").next().unwrap();
    assert!(plain.contains("# trailing comment"));
    assert!(output.ends_with(plain), "{output}");
}

#[test]
fn stdin_files_and_directories_give_the_same_stream() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read_to_string(util::repo().join("tests/inject/vault-pki-cert.yaml")).unwrap();
    let b = std::fs::read_to_string(util::repo().join("deploy/examples/annotated-deployment.yaml"))
        .unwrap();
    util::write_file(dir.path(), "a.yaml", &a);
    util::write_file(dir.path(), "b.yml", &b);
    util::write_file(dir.path(), "notes.txt", "not a manifest: skipped\n");
    let a_path = dir.path().join("a.yaml");
    let b_path = dir.path().join("b.yml");
    let from_dir = inject_ok(&[dir.path().to_str().unwrap()], None);
    let from_files = inject_ok(&[a_path.to_str().unwrap(), b_path.to_str().unwrap()], None);
    let from_stdin = inject_ok(&[], Some(&format!("{a}---\n{b}")));
    let from_dash = inject_ok(&["-", b_path.to_str().unwrap()], Some(&a));
    assert_eq!(from_dir, from_files);
    assert_eq!(oracle(&from_dir), oracle(&from_stdin));
    assert_eq!(from_dash, from_files);
    assert_eq!(oracle(&from_dir).len(), 4);
}

#[test]
fn a_bad_annotation_exits_78_naming_file_document_object_and_annotation() {
    for (file, document, object, annotation) in [
        (
            "unknown-annotation.yaml",
            "document 2",
            "Deployment/shop/typo",
            "pki-sidecar.io/proxy-prot",
        ),
        (
            "shell-command.yaml",
            "document 1",
            "Deployment/shop/reloader",
            "vault.hashicorp.com/agent-inject-command-cert",
        ),
        (
            "unsupported.yaml",
            "document 1",
            "Pod/shop/cached",
            "vault.hashicorp.com/agent-telemetry-statsd-address",
        ),
        (
            "bad-template.yaml",
            "document 1",
            "Pod/shop/broken",
            "vault.hashicorp.com/agent-inject-template-db",
        ),
    ] {
        let path = format!("tests/inject/bad/{file}");
        // The good fixture first: nothing of it may reach stdout either.
        let output = run_inject(&["tests/inject/vault-pki-cert.yaml", &path], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{file}: {stderr}");
        assert!(output.stdout.is_empty(), "{file}: partial output");
        for needle in [path.as_str(), document, object, annotation] {
            assert!(stderr.contains(needle), "{file}: {needle} in {stderr}");
        }
    }
    let shell = run_inject(&["tests/inject/bad/shell-command.yaml"], None);
    assert!(String::from_utf8_lossy(&shell.stderr).contains("needs a shell"));
}

#[test]
fn unparseable_yaml_is_refused_without_output() {
    let output = run_inject(&[], Some("a: 1\n---\nb: [unclosed\n"));
    assert_eq!(output.status.code(), Some(65));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("stdin: document 2"));
}

fn config_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = util::command();
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

const AGENT_JSON: &str = r#"{
  "auto_auth": {
    "method": {"type": "kubernetes", "config": {"role": "web"}},
    "sink": [{"type": "file", "config": {"path": "/tmp/token"}}]
  },
  "template": [{"contents": "x", "destination": "/tmp/x", "perms": "0644"}]
}"#;

#[test]
fn config_env_carries_an_agent_file_plain_or_base64() {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(AGENT_JSON);
    for value in [AGENT_JSON, encoded.as_str()] {
        let output = config_env(
            &[
                "validate",
                "--role",
                "agent",
                "--config-env",
                "VAULT_CONFIG",
            ],
            &[("VAULT_CONFIG", value)],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.starts_with("environment variable VAULT_CONFIG: valid"),
            "{stdout}"
        );
        assert!(
            stdout.contains("kubernetes at auth/kubernetes: role web"),
            "{stdout}"
        );
    }
}

#[test]
fn config_env_layers_after_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = util::write_file(
        dir.path(),
        "base.hcl",
        "vault {\n  address = \"https://from-file:8200\"\n}\n",
    );
    let output = config_env(
        &[
            "validate",
            "--role",
            "agent",
            "--config",
            file.to_str().unwrap(),
            "--config-env",
            "A",
            "--config-env",
            "B",
        ],
        &[
            ("A", AGENT_JSON),
            ("B", r#"{"vault": {"address": "https://from-env:8200"}}"#),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("https://from-env:8200"), "{stdout}");
}

#[test]
fn a_bad_config_env_names_the_variable_line_and_key_and_exits_78() {
    for (value, needles) in [
        (
            "{\n  \"exit_after_auth\": true,\n  \"vault\": {\"address\": 1,}\n}",
            &["environment variable VAULT_CONFIG:3:", "trailing comma"][..],
        ),
        (
            "{\n  \"exit_after_auth\": \"maybe\"\n}",
            &[
                "environment variable VAULT_CONFIG:2:3: exit_after_auth:",
                "boolean",
            ][..],
        ),
        (
            "",
            &["environment variable VAULT_CONFIG", "not set or empty"][..],
        ),
    ] {
        for role in ["agent", "proxy", "app"] {
            let output = config_env(
                &["validate", "--role", role, "--config-env", "VAULT_CONFIG"],
                &[("VAULT_CONFIG", value)],
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(78), "{stderr}");
            for needle in needles {
                assert!(stderr.contains(needle), "{needle} in {stderr}");
            }
        }
    }
    // The roles themselves and doctor refuse it the same way, before starting anything.
    for command in ["agent", "proxy", "app", "doctor"] {
        let output = config_env(
            &[command, "--config-env", "VAULT_CONFIG"],
            &[("VAULT_CONFIG", "{\"app\": {\"listen\": 80,}}")],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{command}: {stderr}");
        assert!(
            stderr.contains("environment variable VAULT_CONFIG:1:"),
            "{command}: {stderr}"
        );
    }
}

/// The `env` value named `name` of `container`, parsed as JSON.
fn container_env_json(container: &Value, name: &str) -> Value {
    let value = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {container}"))["value"]
        .as_str()
        .unwrap();
    serde_json::from_str(value).unwrap()
}

/// The generated files, run against the OpenBao bed with the Pod's paths moved into a
/// directory: the init container issues the pair and exits; the sidecar takes over the same
/// certificate instead of issuing a second one; the proxy serves it.
#[test]
fn the_injected_init_agent_and_proxy_issue_once_and_serve_the_certificate() {
    use crate::util::bao;
    use std::net::SocketAddr;
    use std::time::Duration;

    let bed = bao::bed();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: e2e
  annotations:
    pki-sidecar.io/inject: "true"
    pki-sidecar.io/role: "{role}"
    pki-sidecar.io/pki-path: "{path}"
    pki-sidecar.io/common-name: "foo.home"
    pki-sidecar.io/alt-names: "localhost,bar.home"
    pki-sidecar.io/ttl: "1h"
    pki-sidecar.io/proxy: "true"
spec:
  containers:
    - name: app
      image: app:1
"#,
        role = bao::LOGIN_ROLE,
        path = bao::ISSUE_PATH,
    );
    let mut command = util::command();
    command
        .args(["inject", "--vault-address", bed.addr()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pod = oracle(&String::from_utf8(output.stdout).unwrap()).remove(0);
    let find = |list: &str, name: &str| -> Value {
        pod["spec"][list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };

    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let jwt = bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT);
    let token_path = util::write_file(dir.path(), "sa-token", &jwt);
    // The Pod's paths, moved into the directory; the metrics on a free loopback port.
    let localize = |file: &Value, metrics: SocketAddr| -> String {
        let text = file
            .to_string()
            .replace("/etc/pki-sidecar/tls", &tls.display().to_string())
            .replace("/home/pki-sidecar", &home.display().to_string());
        let mut file: Value = serde_json::from_str(&text).unwrap();
        if file.get("auto_auth").is_some() {
            file["auto_auth"]["method"]["config"]["token_path"] =
                token_path.display().to_string().into();
            file["telemetry"]["metrics_listen"] = metrics.to_string().into();
        }
        file.to_string()
    };
    let run = |args: &[&str], env: (&str, String)| {
        let mut command = util::command();
        command.args(args).env(env.0, env.1);
        util::ChildGuard::spawn(command)
    };

    // The init container: renders once, exits 0.
    let init_metrics: SocketAddr = format!("127.0.0.1:{}", util::free_port()).parse().unwrap();
    let init_file = localize(
        &container_env_json(&find("initContainers", "pki-sidecar-init"), "VAULT_CONFIG"),
        init_metrics,
    );
    let mut init = run(
        &["agent", "--config-env", "VAULT_CONFIG"],
        ("VAULT_CONFIG", init_file),
    );
    let (code, stderr) = init.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "init: {stderr}");
    let cert = tls.join("tls.crt");
    let key = tls.join("tls.key");
    assert_pair_matches(&cert, &key);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let issued = std::fs::read_to_string(&cert).unwrap();
    let issued_key = std::fs::read_to_string(&key).unwrap();

    // The sidecar: ready on the first certificate, without issuing another.
    let agent_metrics: SocketAddr = format!("127.0.0.1:{}", util::free_port()).parse().unwrap();
    let agent_file = localize(
        &container_env_json(&find("containers", "pki-sidecar-agent"), "VAULT_CONFIG"),
        agent_metrics,
    );
    let mut agent = run(
        &["agent", "--config-env", "VAULT_CONFIG"],
        ("VAULT_CONFIG", agent_file),
    );
    util::wait_for_port(agent_metrics, Duration::from_secs(30));
    util::wait_until(Duration::from_secs(30), "the sidecar agent ready", || {
        util::http(agent_metrics, "GET", "/readyz").status == 200
    });
    // Ready means every template rendered: a second certificate would be on disk by now.
    assert_eq!(
        std::fs::read_to_string(&cert).unwrap(),
        issued,
        "the sidecar issued again"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), issued_key);

    // The proxy serves that certificate.
    let proxy_port = util::free_port();
    let proxy_metrics = util::free_port();
    let mut proxy_file = container_env_json(
        &find("containers", "pki-sidecar-proxy"),
        "PKI_SIDECAR_PROXY_CONFIG",
    );
    proxy_file["proxy"]["listen"] = format!("127.0.0.1:{proxy_port}").into();
    proxy_file["proxy"]["metrics_listen"] = format!("127.0.0.1:{proxy_metrics}").into();
    let proxy_text = localize(&proxy_file, agent_metrics);
    let _proxy = run(
        &["proxy", "--config-env", "PKI_SIDECAR_PROXY_CONFIG"],
        ("PKI_SIDECAR_PROXY_CONFIG", proxy_text),
    );
    let proxy_address: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    util::wait_for_port(proxy_address, Duration::from_secs(30));
    let ca = util::write_file(dir.path(), "root.pem", bed.root_ca_pem());
    let check = util::command()
        .args([
            "check",
            "tls",
            "--connect",
            &proxy_address.to_string(),
            "--servername",
            "foo.home",
            "--cacert",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    util::signal(agent.pid(), nix::sys::signal::Signal::SIGTERM);
    let (code, stderr) = agent.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "sidecar: {stderr}");
}

/// The Vault Agent Injector's PKI example as a vault-k8s user writes it (`pkiCert` in
/// `agent-inject-template-NAME`, the key through `writeToFile`): `vault-agent-init` issues,
/// `vault-agent` takes the pair over without issuing again.
#[test]
fn a_vault_k8s_pki_template_is_issued_once_by_init_and_sidecar() {
    use crate::util::bao;
    use std::net::SocketAddr;
    use std::time::Duration;

    let bed = bao::bed();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: vault-e2e
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: "{role}"
    vault.hashicorp.com/agent-inject-secret-tls.crt: "{path}"
    vault.hashicorp.com/agent-inject-template-tls.crt: |
      {{{{- with pkiCert "{path}" "common_name=foo.home" "ttl=1h" -}}}}
      {{{{ .Cert }}}}{{{{ .CA }}}}
      {{{{ if .Key }}}}{{{{ .Key | writeToFile "/vault/secrets/tls.key" "" "" "0400" }}}}{{{{ end }}}}
      {{{{- end }}}}
spec:
  containers:
    - name: app
      image: app:1
"#,
        role = bao::LOGIN_ROLE,
        path = bao::ISSUE_PATH,
    );
    let output = {
        let mut command = util::command();
        command
            .args(["inject", "--vault-address", bed.addr()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pod = oracle(&String::from_utf8(output.stdout).unwrap()).remove(0);
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let token_path = util::write_file(
        dir.path(),
        "sa-token",
        &bao::service_account_jwt(bao::NAMESPACE, bao::SERVICE_ACCOUNT),
    );
    let agent_file = |list: &str, name: &str, metrics: SocketAddr| -> String {
        let container = pod["spec"][list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let text = container_env_json(container, "VAULT_CONFIG")
            .to_string()
            .replace("/vault/secrets", &secrets.display().to_string())
            .replace("/home/vault", &home.display().to_string());
        let mut file: Value = serde_json::from_str(&text).unwrap();
        file["auto_auth"]["method"]["config"]["token_path"] =
            token_path.display().to_string().into();
        file["telemetry"]["metrics_listen"] = metrics.to_string().into();
        file.to_string()
    };
    let free = || -> SocketAddr { format!("127.0.0.1:{}", util::free_port()).parse().unwrap() };
    let mut init = {
        let mut command = util::command();
        command.args(["agent", "--config-env", "VAULT_CONFIG"]).env(
            "VAULT_CONFIG",
            agent_file("initContainers", "vault-agent-init", free()),
        );
        util::ChildGuard::spawn(command)
    };
    let (code, stderr) = init.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "vault-agent-init: {stderr}");
    let cert = secrets.join("tls.crt");
    let key = secrets.join("tls.key");
    assert_pair_matches(&cert, &key);
    let issued = std::fs::read_to_string(&cert).unwrap();
    let metrics = free();
    let mut agent = {
        let mut command = util::command();
        command.args(["agent", "--config-env", "VAULT_CONFIG"]).env(
            "VAULT_CONFIG",
            agent_file("containers", "vault-agent", metrics),
        );
        util::ChildGuard::spawn(command)
    };
    util::wait_for_port(metrics, Duration::from_secs(30));
    util::wait_until(Duration::from_secs(30), "vault-agent ready", || {
        util::http(metrics, "GET", "/readyz").status == 200
    });
    let leaf = |pem: &str| {
        pem.split("-----END CERTIFICATE-----")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        leaf(&std::fs::read_to_string(&cert).unwrap()),
        leaf(&issued),
        "vault-agent issued a second certificate"
    );
    util::signal(agent.pid(), nix::sys::signal::Signal::SIGTERM);
    let (code, stderr) = agent.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "vault-agent: {stderr}");
}

/// `pki-sidecar check pair`: the certificate and key files belong together and are valid.
fn assert_pair_matches(cert: &Path, key: &Path) {
    let pair = util::command()
        .args(["check", "pair", "--cert"])
        .arg(cert)
        .arg("--key")
        .arg(key)
        .output()
        .unwrap();
    assert!(
        pair.status.success(),
        "{}",
        String::from_utf8_lossy(&pair.stdout)
    );
}
