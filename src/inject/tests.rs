//! The transform's unit tests: each annotation, the defaults, refusals by name, idempotency.

use serde_json::{Value, json};

use super::{InjectError, Outcome, Settings, inject_pod};

fn settings() -> Settings {
    Settings {
        image: "pki-sidecar:test".to_string(),
        vault_address: Some("https://vault.vault:8200".to_string()),
    }
}

fn pod(annotations: Value) -> Value {
    json!({
        "metadata": { "annotations": annotations },
        "spec": { "containers": [{ "name": "web", "image": "web:1" }] },
    })
}

fn inject(annotations: Value) -> Result<Value, InjectError> {
    let mut pod = pod(annotations);
    inject_pod(&settings(), &mut pod).map(|_| pod)
}

fn refused(annotations: Value) -> InjectError {
    let mut pod = pod(annotations);
    let before = pod.clone();
    let err = inject_pod(&settings(), &mut pod).unwrap_err();
    assert_eq!(pod, before, "an error leaves the pod unchanged");
    err
}

fn container<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod["spec"][list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {list} {name} in {pod:#}"))
}

fn env_json(container: &Value, name: &str) -> Value {
    let value = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()["value"]
        .as_str()
        .unwrap();
    serde_json::from_str(value).unwrap()
}

/// The agent file `file` (a `VAULT_CONFIG` value) as the agent loads it.
fn load_agent_file(file: &Value) -> crate::config::Config {
    let text = file.to_string();
    let env = |var: &str| (var == "VAULT_CONFIG").then(|| text.clone());
    crate::config::load_sources(
        &[],
        &["VAULT_CONFIG".to_string()],
        &env,
        &crate::agent::functions::KnownFunctions,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn own() -> Value {
    json!({
        "pki-sidecar.io/inject": "true",
        "pki-sidecar.io/role": "web",
        "pki-sidecar.io/pki-path": "pki/issue/web",
        "pki-sidecar.io/common-name": "web.default.svc",
    })
}

fn with(mut base: Value, key: &str, value: &str) -> Value {
    base[key] = value.into();
    base
}

fn vault() -> Value {
    json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
        "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
    })
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn no_annotation_is_not_requested_and_untouched() {
    let mut pod = pod(json!({ "other": "x" }));
    let before = pod.clone();
    assert_eq!(
        inject_pod(&settings(), &mut pod).unwrap(),
        Outcome::NotRequested
    );
    assert_eq!(pod, before);
    let mut off = self::pod(json!({ "pki-sidecar.io/inject": "false" }));
    assert_eq!(
        inject_pod(&settings(), &mut off).unwrap(),
        Outcome::NotRequested
    );
}

#[test]
fn own_defaults_add_init_agent_volume_and_status() {
    let pod = inject(own()).unwrap();
    assert_eq!(names(&pod, "initContainers"), ["pki-sidecar-init"]);
    assert_eq!(names(&pod, "containers"), ["web", "pki-sidecar-agent"]);
    assert_eq!(
        pod["metadata"]["annotations"]["pki-sidecar.io/status"],
        "injected"
    );
    let web = container(&pod, "containers", "web");
    assert_eq!(
        web["volumeMounts"],
        json!([{ "name": "pki-sidecar-tls", "mountPath": "/etc/pki-sidecar/tls", "readOnly": true }])
    );
    let agent = container(&pod, "containers", "pki-sidecar-agent");
    assert_eq!(
        agent["args"],
        json!(["agent", "--config-env", "VAULT_CONFIG"])
    );
    assert_eq!(agent["image"], "pki-sidecar:test");
    assert_eq!(agent["securityContext"]["runAsUser"], 65532);
    assert_eq!(agent["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        agent["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(agent["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(agent["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(agent["resources"]["limits"]["memory"], "64Mi");
    let file = env_json(agent, "VAULT_CONFIG");
    assert_eq!(file["exit_after_auth"], false);
    assert_eq!(file["vault"]["address"], "https://vault.vault:8200");
    assert_eq!(file["auto_auth"]["method"]["config"]["role"], "web");
    assert_eq!(file["auto_auth"]["method"]["mount_path"], "auth/kubernetes");
    assert_eq!(file["telemetry"]["metrics_listen"], "0.0.0.0:9101");
    let templates = file["template"].as_array().unwrap();
    assert_eq!(
        templates.len(),
        1,
        "one pkiCert template: cert and key issued once"
    );
    let contents = templates[0]["contents"].as_str().unwrap();
    assert!(
        contents.contains(r#"pkiCert "pki/issue/web" "common_name=web.default.svc""#),
        "{contents}"
    );
    assert!(contents.contains(r#"{{ if .Data.Key }}"#), "{contents}");
    assert!(
        contents.contains(r#"writeToFile "/etc/pki-sidecar/tls/tls.key" "" "" "0600""#),
        "{contents}"
    );
    assert_eq!(templates[0]["destination"], "/etc/pki-sidecar/tls/tls.crt");
    assert_eq!(templates[0]["perms"], "0644");
    let init = container(&pod, "initContainers", "pki-sidecar-init");
    let init_file = env_json(init, "VAULT_CONFIG");
    assert_eq!(init_file["exit_after_auth"], true);
    assert_eq!(init_file["template"], file["template"]);
    assert!(
        init.get("readinessProbe").is_none(),
        "init containers take no probes"
    );
    let volumes = &pod["spec"]["volumes"];
    assert_eq!(volumes[0]["emptyDir"]["medium"], "Memory");
}

#[test]
fn own_certificate_parameters_files_and_modes() {
    let mut a = own();
    for (k, v) in [
        ("alt-names", "web, web.shop"),
        ("ip-sans", "127.0.0.1"),
        ("ttl", "24h"),
        ("cert-dir", "/tls/"),
        ("cert-file", "server.pem"),
        ("key-file", "server-key.pem"),
        ("ca-file", "ca.pem"),
        ("cert-perms", "0640"),
        ("key-perms", "640"),
        ("auth-path", "auth/k8s-east"),
        ("vault-address", "https://bao:8200"),
        ("run-as-user", "1001"),
        ("run-as-group", "2002"),
        ("agent-limits-memory", "32Mi"),
        ("agent-requests-cpu", "5m"),
        ("agent-metrics-port", "9200"),
    ] {
        a[format!("pki-sidecar.io/{k}")] = v.into();
    }
    let pod = inject(a).unwrap();
    let agent = container(&pod, "containers", "pki-sidecar-agent");
    let file = env_json(agent, "VAULT_CONFIG");
    let contents = file["template"][0]["contents"].as_str().unwrap();
    for needle in [
        r#""alt_names=web,web.shop""#,
        r#""ip_sans=127.0.0.1""#,
        r#""ttl=24h""#,
        r#"writeToFile "/tls/server-key.pem" "" "" "0640""#,
        r#"writeToFile "/tls/ca.pem" "" "" "0640""#,
    ] {
        assert!(contents.contains(needle), "{needle} in {contents}");
    }
    assert_eq!(file["template"][0]["destination"], "/tls/server.pem");
    assert_eq!(file["template"][0]["perms"], "0640");
    assert_eq!(file["auto_auth"]["method"]["mount_path"], "auth/k8s-east");
    assert_eq!(file["vault"]["address"], "https://bao:8200");
    assert_eq!(file["telemetry"]["metrics_listen"], "0.0.0.0:9200");
    assert_eq!(agent["ports"][0]["containerPort"], 9200);
    assert_eq!(agent["securityContext"]["runAsUser"], 1001);
    assert_eq!(agent["securityContext"]["runAsGroup"], 2002);
    assert_eq!(agent["resources"]["limits"]["memory"], "32Mi");
    assert_eq!(agent["resources"]["requests"]["cpu"], "5m");
    assert_eq!(
        container(&pod, "containers", "web")["volumeMounts"][0]["mountPath"],
        "/tls"
    );
}

#[test]
fn own_proxy_container_and_mtls() {
    let mut a = with(own(), "pki-sidecar.io/proxy", "true");
    a["pki-sidecar.io/proxy-port"] = "9443".into();
    a["pki-sidecar.io/proxy-upstream-port"] = "3000".into();
    a["pki-sidecar.io/proxy-client-ca"] = "clients/bundle.pem".into();
    a["pki-sidecar.io/proxy-client-auth"] = "optional".into();
    a["pki-sidecar.io/proxy-limits-memory"] = "256Mi".into();
    let pod = inject(a).unwrap();
    let proxy = container(&pod, "containers", "pki-sidecar-proxy");
    assert_eq!(
        proxy["args"],
        json!(["proxy", "--config-env", "PKI_SIDECAR_PROXY_CONFIG"])
    );
    let file = env_json(proxy, "PKI_SIDECAR_PROXY_CONFIG");
    assert_eq!(
        file,
        json!({ "proxy": {
            "listen": "0.0.0.0:9443",
            "upstream": "http://127.0.0.1:3000",
            "cert_file": "/etc/pki-sidecar/tls/tls.crt",
            "key_file": "/etc/pki-sidecar/tls/tls.key",
            "metrics_listen": "0.0.0.0:9102",
            "client_ca_file": "/etc/pki-sidecar/client-ca/bundle.pem",
            "client_auth": "optional",
        }})
    );
    assert_eq!(proxy["startupProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(proxy["resources"]["limits"]["memory"], "256Mi");
    assert_eq!(proxy["volumeMounts"][0]["readOnly"], true);
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "clients")
    );
}

#[test]
fn own_containers_and_agent_config() {
    let mut p = pod(with(own(), "pki-sidecar.io/containers", "side"));
    p["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "side", "image": "s" }));
    inject_pod(&settings(), &mut p).unwrap();
    assert!(
        container(&p, "containers", "web")
            .get("volumeMounts")
            .is_none()
    );
    assert_eq!(
        container(&p, "containers", "side")["volumeMounts"][0]["name"],
        "pki-sidecar-tls"
    );

    let pod = inject(json!({
        "pki-sidecar.io/inject": "true",
        "pki-sidecar.io/agent-config": "my-agent",
    }))
    .unwrap();
    let agent = container(&pod, "containers", "pki-sidecar-agent");
    assert_eq!(
        agent["args"],
        json!(["agent", "--config", "/etc/pki-sidecar/config"])
    );
    let init = container(&pod, "initContainers", "pki-sidecar-init");
    assert_eq!(
        env_json(init, "PKI_SIDECAR_INIT_CONFIG"),
        json!({ "exit_after_auth": true })
    );
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "my-agent")
    );
}

#[test]
fn injecting_twice_is_injecting_once() {
    for annotations in [with(own(), "pki-sidecar.io/proxy", "true"), vault()] {
        let mut once = pod(annotations);
        assert_eq!(
            inject_pod(&settings(), &mut once).unwrap(),
            Outcome::Injected
        );
        let mut twice = once.clone();
        assert_eq!(
            inject_pod(&settings(), &mut twice).unwrap(),
            Outcome::AlreadyInjected
        );
        assert_eq!(once, twice);
    }
}

#[test]
fn vault_update_status_injects_again_without_duplicates() {
    let mut once = pod(vault());
    inject_pod(&settings(), &mut once).unwrap();
    let mut again = once.clone();
    again["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"] = "update".into();
    assert_eq!(
        inject_pod(&settings(), &mut again).unwrap(),
        Outcome::Injected
    );
    assert_eq!(again, once);
}

/// An update after annotations were removed leaves nothing of what they had added.
#[test]
fn vault_update_status_removes_what_removed_annotations_had_added() {
    let plain = pod(vault());
    let mut first = plain.clone();
    for (key, value) in [
        ("secret-volume-path-db", "/etc/db"),
        ("tls-secret", "vault-ca"),
        ("agent-extra-secret", "extra"),
    ] {
        first["metadata"]["annotations"][format!("vault.hashicorp.com/{key}")] = value.into();
    }
    inject_pod(&settings(), &mut first).unwrap();
    let mut again = first.clone();
    let annotations = again["metadata"]["annotations"].as_object_mut().unwrap();
    for key in ["secret-volume-path-db", "tls-secret", "agent-extra-secret"] {
        annotations.remove(&format!("vault.hashicorp.com/{key}"));
    }
    annotations.insert(
        "vault.hashicorp.com/agent-inject-status".into(),
        "update".into(),
    );
    inject_pod(&settings(), &mut again).unwrap();
    let mut expected = plain;
    inject_pod(&settings(), &mut expected).unwrap();
    assert_eq!(again["spec"], expected["spec"]);
}

#[test]
fn vault_defaults_follow_vault_k8s() {
    let pod = inject(vault()).unwrap();
    assert_eq!(names(&pod, "initContainers"), ["vault-agent-init"]);
    assert_eq!(names(&pod, "containers"), ["web", "vault-agent"]);
    assert_eq!(
        pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );
    let agent = container(&pod, "containers", "vault-agent");
    assert_eq!(agent["securityContext"]["runAsUser"], 100);
    assert_eq!(agent["securityContext"]["runAsGroup"], 1000);
    assert_eq!(
        agent["resources"]["requests"],
        json!({ "cpu": "250m", "memory": "64Mi" })
    );
    assert_eq!(
        agent["resources"]["limits"],
        json!({ "cpu": "500m", "memory": "128Mi" })
    );
    let web = container(&pod, "containers", "web");
    assert_eq!(
        web["volumeMounts"][0],
        json!({ "name": "vault-secrets", "mountPath": "/vault/secrets" })
    );
    let file = env_json(agent, "VAULT_CONFIG");
    assert_eq!(file["template"][0]["destination"], "/vault/secrets/db");
    assert_eq!(
        file["template"][0]["contents"],
        "{{ with secret \"secret/data/db\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
    );
    assert_eq!(file["template_config"]["exit_on_retry_failure"], true);
}

#[test]
fn vault_per_secret_annotations() {
    let mut a = vault();
    for (k, v) in [
        (
            "agent-inject-template-db",
            "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}",
        ),
        ("agent-inject-file-db", "conf/db.txt"),
        ("agent-inject-perms-db", "0400"),
        ("agent-inject-command-db", "/bin/reload --now"),
        ("agent-inject-secret-Cert", "pki/issue/web"),
        ("agent-inject-default-template", "json"),
        ("error-on-missing-key-db", "true"),
        ("service", "https://vault.example:8200"),
        ("namespace", "team-a"),
        ("tls-secret", "vault-tls"),
        ("ca-cert", "/vault/tls/ca.crt"),
        ("agent-run-as-user", "2000"),
        ("agent-run-as-group", "3000"),
        ("agent-limits-cpu", "1"),
        ("agent-limits-mem", "256Mi"),
        ("agent-requests-cpu", ""),
        ("agent-requests-mem", "32Mi"),
        ("agent-pre-populate-only", "true"),
        ("agent-init-first", "true"),
        ("auth-path", "auth/other"),
    ] {
        a[format!("vault.hashicorp.com/{k}")] = v.into();
    }
    let mut p = pod(a);
    p["spec"]["initContainers"] = json!([{ "name": "migrate", "image": "m" }]);
    inject_pod(&settings(), &mut p).unwrap();
    assert_eq!(names(&p, "initContainers"), ["vault-agent-init", "migrate"]);
    assert_eq!(
        names(&p, "containers"),
        ["web"],
        "pre-populate-only: no sidecar"
    );
    assert!(
        !p["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "home-sidecar"),
        "pre-populate-only: no sidecar's home"
    );
    assert_eq!(
        container(&p, "initContainers", "migrate")["volumeMounts"][0]["name"],
        "vault-secrets"
    );
    let init = container(&p, "initContainers", "vault-agent-init");
    assert_eq!(init["securityContext"]["runAsUser"], 2000);
    assert_eq!(init["resources"]["requests"], json!({ "memory": "32Mi" }));
    assert_eq!(
        init["resources"]["limits"],
        json!({ "cpu": "1", "memory": "256Mi" })
    );
    let file = env_json(init, "VAULT_CONFIG");
    assert_eq!(file["vault"]["address"], "https://vault.example:8200");
    assert_eq!(file["vault"]["namespace"], "team-a");
    assert_eq!(file["vault"]["ca_cert"], "/vault/tls/ca.crt");
    assert_eq!(file["auto_auth"]["method"]["mount_path"], "auth/other");
    let templates = file["template"].as_array().unwrap();
    // Sorted by name: `Cert` (lowercased to its file `cert`), then `db`.
    assert_eq!(templates[0]["destination"], "/vault/secrets/cert");
    assert_eq!(
        templates[0]["contents"],
        "{{ with secret \"pki/issue/web\" }}{{ .Data | toJSON }}\n{{ end }}"
    );
    assert_eq!(templates[1]["destination"], "/vault/secrets/conf/db.txt");
    assert_eq!(templates[1]["perms"], "0400");
    assert_eq!(
        templates[1]["exec"]["command"],
        json!(["/bin/reload", "--now"])
    );
    assert_eq!(templates[1]["error_on_missing_key"], true);
    assert!(
        init["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/vault/tls")
    );
}

#[test]
fn refusals_name_the_annotation() {
    for (annotations, name, words) in [
        (
            with(own(), "pki-sidecar.io/injectt", "true"),
            "pki-sidecar.io/injectt",
            "unknown",
        ),
        (
            with(vault(), "vault.hashicorp.com/agent-inject-secrett-x", "a"),
            "vault.hashicorp.com/agent-inject-secrett-x",
            "not an annotation",
        ),
        (
            with(vault(), "vault.hashicorp.com/go-max-procs", "0"),
            "vault.hashicorp.com/go-max-procs",
            "positive",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-cache-exit-on-err",
                "sometimes",
            ),
            "vault.hashicorp.com/agent-cache-exit-on-err",
            "true or false",
        ),
        (
            with(
                with(vault(), "vault.hashicorp.com/agent-cache-enable", "true"),
                "vault.hashicorp.com/agent-cache-listener-port",
                "http",
            ),
            "vault.hashicorp.com/agent-cache-listener-port",
            "not a port",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-telemetry-statsd-address",
                "statsd:8125",
            ),
            "vault.hashicorp.com/agent-telemetry-statsd-address",
            "pushes no metrics",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-telemetry-prometheus-retention-time",
                "soon",
            ),
            "vault.hashicorp.com/agent-telemetry-prometheus-retention-time",
            "not a duration",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-inject-template-file-db",
                "../x",
            ),
            "vault.hashicorp.com/agent-inject-template-file-db",
            "absolute",
        ),
        (
            with(vault(), "vault.hashicorp.com/auth-type", "aws"),
            "vault.hashicorp.com/auth-type",
            "kubernetes",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-inject-command-db",
                "curl -X POST localhost:8080/reload && echo $(date)",
            ),
            "vault.hashicorp.com/agent-inject-command-db",
            "shell",
        ),
        (
            with(vault(), "vault.hashicorp.com/agent-inject-perms-db", "0999"),
            "vault.hashicorp.com/agent-inject-perms-db",
            "octal",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-inject-template-db",
                "{{ with secret \"a\" }",
            ),
            "vault.hashicorp.com/agent-inject-template-db",
            "template",
        ),
        (
            with(
                vault(),
                "vault.hashicorp.com/agent-inject-template-db",
                "{{ nosuchfunc }}",
            ),
            "vault.hashicorp.com/agent-inject-template-db",
            "nosuchfunc",
        ),
        (
            with(vault(), "vault.hashicorp.com/agent-limits-mem", "lots"),
            "vault.hashicorp.com/agent-limits-mem",
            "quantity",
        ),
        (
            with(vault(), "vault.hashicorp.com/agent-run-as-user", "0"),
            "vault.hashicorp.com/agent-run-as-user",
            "root",
        ),
        (
            with(vault(), "pki-sidecar.io/proxy", "true"),
            "pki-sidecar.io/proxy",
            "one vocabulary",
        ),
        (
            with(own(), "vault.hashicorp.com/role", "x"),
            "vault.hashicorp.com/role",
            "one vocabulary",
        ),
        (
            with(own(), "pki-sidecar.io/proxy", "maybe"),
            "pki-sidecar.io/proxy",
            "boolean",
        ),
        (
            with(own(), "pki-sidecar.io/proxy-port", "8443"),
            "pki-sidecar.io/proxy-port",
            "proxy is off",
        ),
        (
            with(own(), "pki-sidecar.io/ip-sans", "not-an-ip"),
            "pki-sidecar.io/ip-sans",
            "IP",
        ),
        (
            with(own(), "pki-sidecar.io/key-file", "../escape"),
            "pki-sidecar.io/key-file",
            "file name",
        ),
        (
            with(own(), "pki-sidecar.io/ttl", "forever"),
            "pki-sidecar.io/ttl",
            "duration",
        ),
        (
            with(own(), "pki-sidecar.io/containers", "nope"),
            "pki-sidecar.io/containers",
            "no container named",
        ),
        (
            with(own(), "pki-sidecar.io/status", "done"),
            "pki-sidecar.io/status",
            "injected",
        ),
    ] {
        let err = refused(annotations);
        assert_eq!(err.annotation, name, "{err}");
        assert!(err.message.contains(words), "{name}: {err}");
    }
    let mut no_role = own();
    no_role
        .as_object_mut()
        .unwrap()
        .remove("pki-sidecar.io/role");
    assert_eq!(refused(no_role).annotation, "pki-sidecar.io/role");
    let unaddressed = Settings {
        vault_address: None,
        ..settings()
    };
    let mut p = pod(own());
    assert_eq!(
        inject_pod(&unaddressed, &mut p).unwrap_err().annotation,
        "pki-sidecar.io/vault-address"
    );
    let mut p = pod(vault());
    assert_eq!(
        inject_pod(&unaddressed, &mut p).unwrap_err().annotation,
        "vault.hashicorp.com/service"
    );
}

#[test]
fn every_vault_k8s_annotation_is_supported() {
    // The names vault-k8s defines (agent-inject/agent/annotations.go), per-secret ones with
    // a NAME.
    for key in [
        "agent-inject-status",
        "agent-inject",
        "agent-inject-secret-x",
        "agent-inject-file-x",
        "agent-inject-perms-x",
        "agent-inject-template-x",
        "agent-inject-containers",
        "agent-inject-default-template",
        "agent-inject-template-file-x",
        "agent-template-left-delim-x",
        "agent-template-right-delim-x",
        "agent-inject-token",
        "agent-inject-command-x",
        "agent-image",
        "agent-request-namespace",
        "agent-init-first",
        "agent-pre-populate",
        "agent-pre-populate-only",
        "agent-configmap",
        "agent-extra-secret",
        "agent-limits-cpu",
        "agent-limits-mem",
        "agent-limits-ephemeral",
        "agent-requests-cpu",
        "agent-requests-mem",
        "agent-requests-ephemeral",
        "agent-revoke-on-shutdown",
        "agent-revoke-grace",
        "namespace",
        "agent-run-as-user",
        "agent-run-as-group",
        "agent-run-as-same-user",
        "agent-share-process-namespace",
        "agent-set-security-context",
        "agent-service-account-token-volume-name",
        "service",
        "proxy-address",
        "tls-skip-verify",
        "tls-secret",
        "tls-server-name",
        "ca-cert",
        "ca-key",
        "client-cert",
        "client-key",
        "client-max-retries",
        "client-timeout",
        "go-max-procs",
        "log-level",
        "log-format",
        "role",
        "auth-type",
        "auth-path",
        "auth-config-x",
        "secret-volume-path",
        "secret-volume-path-x",
        "preserve-secret-case",
        "preserve-secret-case-x",
        "agent-cache-enable",
        "agent-cache-use-auto-auth-token",
        "agent-cache-listener-port",
        "agent-cache-exit-on-err",
        "agent-copy-volume-mounts",
        "template-config-exit-on-retry-failure",
        "template-static-secret-render-interval",
        "template-max-connections-per-host",
        "template-lease-renewal-threshold",
        "agent-enable-quit",
        "auth-min-backoff",
        "auth-max-backoff",
        "agent-disable-idle-connections",
        "agent-disable-keep-alives",
        "agent-json-patch",
        "agent-init-json-patch",
        "agent-auto-auth-exit-on-err",
        "agent-telemetry-x",
        "error-on-missing-key-x",
    ] {
        let annotations: super::plan::Annotations =
            [(format!("vault.hashicorp.com/{key}"), String::new())]
                .into_iter()
                .collect();
        super::plan::check_names(&annotations)
            .unwrap_or_else(|err| panic!("{key} is not supported: {err}"));
    }
}

#[test]
fn non_string_annotation_is_refused() {
    let err = refused(json!({ "pki-sidecar.io/inject": true }));
    assert_eq!(err.annotation, "pki-sidecar.io/inject");
    assert!(err.message.contains("string"));
}

#[test]
fn name_clashes_are_refused_and_leave_the_pod_alone() {
    let mut p = pod(own());
    p["spec"]["volumes"] = json!([{ "name": "pki-sidecar-tls", "emptyDir": {} }]);
    let before = p.clone();
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert_eq!(err.annotation, "pki-sidecar.io/inject");
    assert!(err.message.contains("pki-sidecar-tls"));
    assert_eq!(p, before);
}

#[test]
fn vault_connection_login_and_template_config_annotations() {
    let mut a = vault();
    for (k, v) in [
        ("tls-server-name", "vault.internal"),
        ("tls-skip-verify", "true"),
        ("ca-key", "/vault/tls/cas"),
        ("client-cert", "/vault/tls/client.crt"),
        ("client-key", "/vault/tls/client.key"),
        ("client-max-retries", "3"),
        ("client-timeout", "30s"),
        ("log-level", "debug"),
        ("log-format", "json"),
        ("auth-min-backoff", "2s"),
        ("auth-max-backoff", "1m"),
        ("agent-auto-auth-exit-on-err", "true"),
        ("template-config-exit-on-retry-failure", "false"),
        ("template-static-secret-render-interval", "10m"),
        ("template-lease-renewal-threshold", "0.5"),
        ("template-max-connections-per-host", "4"),
        ("secret-volume-path", "/secrets"),
        ("preserve-secret-case", "true"),
        ("agent-inject-secret-DB", "secret/data/other"),
        ("agent-template-left-delim-DB", "[["),
        ("agent-template-right-delim-DB", "]]"),
        (
            "agent-inject-template-DB",
            "[[ with secret \"secret/data/other\" ]][[ .Data ]][[ end ]]",
        ),
        ("agent-cache-enable", "false"),
        ("agent-image", "registry.example/pki-sidecar:1"),
        ("auth-type", "kubernetes"),
    ] {
        a[format!("vault.hashicorp.com/{k}")] = v.into();
    }
    let pod = inject(a).unwrap();
    let agent = container(&pod, "containers", "vault-agent");
    assert_eq!(agent["image"], "registry.example/pki-sidecar:1");
    let file = env_json(agent, "VAULT_CONFIG");
    assert_eq!(
        file["vault"],
        json!({
            "address": "https://vault.vault:8200",
            "tls_server_name": "vault.internal",
            "tls_skip_verify": true,
            "ca_path": "/vault/tls/cas",
            "client_cert": "/vault/tls/client.crt",
            "client_key": "/vault/tls/client.key",
            "retry": { "num_retries": 3 },
            "client_timeout": "30s",
        })
    );
    assert_eq!(file["log_level"], "debug");
    assert_eq!(file["log_format"], "json");
    let method = &file["auto_auth"]["method"];
    assert_eq!(method["min_backoff"], "2s");
    assert_eq!(method["max_backoff"], "1m");
    assert_eq!(method["exit_on_err"], true);
    assert_eq!(
        file["template_config"],
        json!({
            "exit_on_retry_failure": false,
            "static_secret_render_interval": "10m",
            "lease_renewal_threshold": 0.5,
            "max_connections_per_host": 4,
        })
    );
    let templates = file["template"].as_array().unwrap();
    // preserve-secret-case keeps `DB`; `db` is another secret.
    assert_eq!(templates[0]["destination"], "/secrets/DB");
    assert_eq!(templates[0]["left_delimiter"], "[[");
    assert_eq!(templates[0]["right_delimiter"], "]]");
    assert_eq!(templates[1]["destination"], "/secrets/db");
    assert_eq!(
        container(&pod, "containers", "web")["volumeMounts"][0]["mountPath"],
        "/secrets"
    );
}

#[test]
fn a_configmaps_agent_gets_the_vault_and_log_annotations_as_its_environment() {
    let pod = inject(json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/agent-configmap": "agent-files",
        "vault.hashicorp.com/service": "https://vault.example.com:8200",
        "vault.hashicorp.com/tls-skip-verify": "true",
        "vault.hashicorp.com/ca-cert": "/vault/tls/ca.crt",
        "vault.hashicorp.com/tls-secret": "vault-ca",
        "vault.hashicorp.com/namespace": "team-a",
        "vault.hashicorp.com/log-level": "debug",
    }))
    .unwrap();
    let expected = json!([
        { "name": "VAULT_ADDR", "value": "https://vault.example.com:8200" },
        { "name": "VAULT_CACERT", "value": "/vault/tls/ca.crt" },
        { "name": "VAULT_SKIP_VERIFY", "value": "true" },
        { "name": "VAULT_NAMESPACE", "value": "team-a" },
        { "name": "VAULT_LOG_LEVEL", "value": "debug" },
    ]);
    assert_eq!(
        container(&pod, "containers", "vault-agent")["env"],
        expected
    );
    assert_eq!(
        container(&pod, "initContainers", "vault-agent-init")["env"],
        expected
    );
}

#[test]
fn vault_agent_configmap_runs_its_files() {
    let pod = inject(json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/agent-configmap": "agent-files",
    }))
    .unwrap();
    let agent = container(&pod, "containers", "vault-agent");
    assert_eq!(
        agent["args"],
        json!(["agent", "--config", "/vault/configs/config.hcl"])
    );
    // Vault's address (the injector's, as vault-k8s sets it) in the environment, which the
    // file's `vault {}` gives way to.
    assert_eq!(
        agent["env"],
        json!([{ "name": "VAULT_ADDR", "value": "https://vault.vault:8200" }])
    );
    let init = container(&pod, "initContainers", "vault-agent-init");
    assert_eq!(
        init["args"],
        json!(["agent", "--config", "/vault/configs/config-init.hcl"])
    );
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "vault-config" && v["configMap"]["name"] == "agent-files")
    );
}

/// vault-k8s's `agent-cache-enable`: the sidecar serves Vault's API on 127.0.0.1 (the
/// agent's API proxy, without a cache) with the agent's token; the init container, which
/// exits after its first render, serves none. The file loads with the agent's parser.
#[test]
fn agent_cache_enable_gives_the_sidecar_an_api_proxy_listener() {
    let mut a = vault();
    a["vault.hashicorp.com/agent-cache-enable"] = "true".into();
    let pod = inject(a.clone()).unwrap();
    let file = env_json(container(&pod, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(file["api_proxy"], json!({ "use_auto_auth_token": true }));
    assert_eq!(
        file["listener"],
        json!([{ "type": "tcp", "address": "127.0.0.1:8200", "tls_disable": true }])
    );
    let init = env_json(
        container(&pod, "initContainers", "vault-agent-init"),
        "VAULT_CONFIG",
    );
    assert!(init.get("listener").is_none() && init.get("api_proxy").is_none());
    let loaded = load_agent_file(&file);
    let proxy = loaded.api_proxy.expect("an API proxy");
    assert_eq!(
        proxy.use_auto_auth_token,
        crate::config::AutoAuthToken::IfMissing
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    a["vault.hashicorp.com/agent-cache-listener-port"] = "8100".into();
    a["vault.hashicorp.com/agent-cache-use-auto-auth-token"] = "force".into();
    let pod = inject(a).unwrap();
    let file = env_json(container(&pod, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(file["api_proxy"], json!({ "use_auto_auth_token": "force" }));
    assert_eq!(file["listener"][0]["address"], "127.0.0.1:8100");
}

/// `agent-telemetry-*` becomes the agent file's `telemetry` block as vault-k8s writes it
/// (dashes made underscores, JSON values read as JSON), and the file loads without a warning for
/// Vault Agent's Prometheus settings; `go-max-procs`, `agent-cache-exit-on-err` and
/// `agent-request-namespace` are checked and change nothing the agent does.
#[test]
fn telemetry_annotations_become_the_agent_files_telemetry_block() {
    let mut a = vault();
    for (key, value) in [
        ("agent-telemetry-prometheus-retention-time", "24h"),
        ("agent-telemetry-disable-hostname", "true"),
        ("go-max-procs", "2"),
        ("agent-cache-exit-on-err", "true"),
        ("agent-request-namespace", "shop"),
    ] {
        a = with(a, &format!("vault.hashicorp.com/{key}"), value);
    }
    let pod = inject(a.clone()).unwrap();
    let file = env_json(container(&pod, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(
        file["telemetry"],
        json!({
            "prometheus_retention_time": "24h",
            "disable_hostname": true,
            "metrics_listen": "0.0.0.0:9101",
        })
    );
    let loaded = load_agent_file(&file);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // One that shapes only Vault's own metric names: in the file, warned about by the agent.
    let a = with(
        a,
        "vault.hashicorp.com/agent-telemetry-prefix-filter",
        r#"["+vault.agent"]"#,
    );
    let pod = inject(a).unwrap();
    let file = env_json(container(&pod, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(file["telemetry"]["prefix_filter"], json!(["+vault.agent"]));
    let loaded = load_agent_file(&file);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].path, "telemetry.prefix_filter");
}

/// `agent-enable-quit`: the sidecar's listener serves `/agent/v1/quit` (`agent_api`), on the
/// cache listener's port, with or without the cache; never in the init container.
#[test]
fn agent_enable_quit_puts_the_quit_endpoint_on_the_sidecars_listener() {
    let a = with(vault(), "vault.hashicorp.com/agent-enable-quit", "true");
    let pod = inject(a.clone()).unwrap();
    let file = env_json(container(&pod, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(
        file["listener"],
        json!([{
            "type": "tcp",
            "address": "127.0.0.1:8200",
            "tls_disable": true,
            "agent_api": { "enable_quit": true },
        }])
    );
    assert!(file.get("api_proxy").is_none());
    let loaded = load_agent_file(&file);
    let listeners = loaded.api_proxy.expect("a listener").listeners;
    assert!(listeners[0].enable_quit);
    let init = env_json(
        container(&pod, "initContainers", "vault-agent-init"),
        "VAULT_CONFIG",
    );
    assert!(init.get("listener").is_none());
    // With the cache: one listener, both.
    let b = with(a.clone(), "vault.hashicorp.com/agent-cache-enable", "true");
    let b = with(b, "vault.hashicorp.com/agent-cache-listener-port", "8100");
    let file = env_json(
        container(&inject(b).unwrap(), "containers", "vault-agent"),
        "VAULT_CONFIG",
    );
    assert_eq!(file["api_proxy"], json!({ "use_auto_auth_token": true }));
    assert_eq!(file["listener"].as_array().unwrap().len(), 1);
    assert_eq!(file["listener"][0]["address"], "127.0.0.1:8100");
    assert_eq!(file["listener"][0]["agent_api"]["enable_quit"], true);
    let err = refused(with(a, "vault.hashicorp.com/agent-configmap", "files"));
    assert_eq!(err.annotation, "vault.hashicorp.com/agent-enable-quit");
}

/// vault-k8s's `agent-inject-token`: the init container and the sidecar also write the token
/// to `token` in the shared volume (mode 0640, Vault Agent's default), as vault-k8s's
/// second sink; with a ConfigMap's agent file, which it cannot change, it is an error.
#[test]
fn agent_inject_token_adds_a_sink_in_the_shared_volume() {
    let mut a = vault();
    a["vault.hashicorp.com/agent-inject-token"] = "true".into();
    let pod = inject(a.clone()).unwrap();
    for (list, name) in [
        ("containers", "vault-agent"),
        ("initContainers", "vault-agent-init"),
    ] {
        let file = env_json(container(&pod, list, name), "VAULT_CONFIG");
        let sinks = file["auto_auth"]["sink"].as_array().unwrap();
        assert_eq!(sinks.len(), 2, "{name}: {file}");
        assert_eq!(sinks[1]["config"]["path"], "/vault/secrets/token", "{name}");
        let loaded = load_agent_file(&file);
        let sinks = loaded.auto_auth.expect("auto_auth").sinks;
        assert_eq!(sinks[1].path, std::path::Path::new("/vault/secrets/token"));
        assert_eq!(sinks[1].mode, 0o640);
    }
    a["vault.hashicorp.com/agent-inject-token"] = "false".into();
    let file = env_json(
        container(&inject(a.clone()).unwrap(), "containers", "vault-agent"),
        "VAULT_CONFIG",
    );
    assert_eq!(file["auto_auth"]["sink"].as_array().unwrap().len(), 1);
    a["vault.hashicorp.com/agent-inject-token"] = "true".into();
    a["vault.hashicorp.com/agent-configmap"] = "agent-files".into();
    let err = inject(a).unwrap_err();
    assert!(err.to_string().contains("agent-inject-token"), "{err}");
}

/// vault-k8s's `agent-revoke-on-shutdown` and `agent-revoke-grace`: the sidecar (not the init
/// container) revokes its token that long after its stop signal, its shutdown grace long
/// enough for it; the file loads with the agent's parser.
#[test]
fn agent_revoke_on_shutdown_makes_the_sidecar_revoke_its_token() {
    let mut a = vault();
    a["vault.hashicorp.com/agent-revoke-on-shutdown"] = "true".into();
    let pod = inject(a.clone()).unwrap();
    let file = env_json(container(&pod, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(
        file["pki_sidecar"],
        json!({ "revoke_token_on_shutdown": true, "revoke_grace": "5s" })
    );
    let init = env_json(
        container(&pod, "initContainers", "vault-agent-init"),
        "VAULT_CONFIG",
    );
    assert!(init.get("pki_sidecar").is_none(), "{init}");
    a["vault.hashicorp.com/agent-revoke-grace"] = "20".into();
    let file = env_json(
        container(&inject(a.clone()).unwrap(), "containers", "vault-agent"),
        "VAULT_CONFIG",
    );
    assert_eq!(file["pki_sidecar"]["revoke_grace"], "20s");
    assert_eq!(file["shutdown_grace"], "25s");
    let loaded = load_agent_file(&file);
    assert_eq!(
        loaded.revoke_on_shutdown,
        Some(std::time::Duration::from_secs(20))
    );
    a["vault.hashicorp.com/agent-revoke-grace"] = "soon".into();
    assert!(
        inject(a.clone())
            .unwrap_err()
            .to_string()
            .contains("agent-revoke-grace")
    );
    a["vault.hashicorp.com/agent-revoke-on-shutdown"] = "false".into();
    a["vault.hashicorp.com/agent-revoke-grace"] = "5".into();
    let err = inject(a).unwrap_err().to_string();
    assert!(err.contains("does nothing without"), "{err}");
}

#[test]
fn own_vault_connection_annotations() {
    let mut a = own();
    for (k, v) in [
        ("vault-namespace", "team-a"),
        ("vault-tls-secret", "vault-ca"),
        ("vault-ca-cert", "ca.crt"),
        ("uri-sans", "spiffe://cluster/web"),
        ("proxy", "true"),
        ("proxy-metrics-port", "9300"),
    ] {
        a[format!("pki-sidecar.io/{k}")] = v.into();
    }
    let pod = inject(a).unwrap();
    let agent = container(&pod, "containers", "pki-sidecar-agent");
    let file = env_json(agent, "VAULT_CONFIG");
    assert_eq!(file["vault"]["namespace"], "team-a");
    assert_eq!(
        file["vault"]["ca_cert"],
        "/etc/pki-sidecar/vault-tls/ca.crt"
    );
    assert!(
        file["template"][0]["contents"]
            .as_str()
            .unwrap()
            .contains(r#""uri_sans=spiffe://cluster/web""#)
    );
    assert!(
        agent["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "pki-sidecar-vault-tls" && m["readOnly"] == true)
    );
    let proxy = container(&pod, "containers", "pki-sidecar-proxy");
    assert_eq!(proxy["ports"][1]["containerPort"], 9300);
    assert_eq!(
        env_json(proxy, "PKI_SIDECAR_PROXY_CONFIG")["proxy"]["metrics_listen"],
        "0.0.0.0:9300"
    );
    let mut clash = with(own(), "pki-sidecar.io/proxy", "true");
    clash["pki-sidecar.io/proxy-port"] = "9101".into();
    let err = refused(clash);
    assert_eq!(err.annotation, "pki-sidecar.io/proxy-port");
    assert!(err.message.contains("agent-metrics-port"), "{err}");
}

/// `agent-run-as-same-user`: the injected containers run as the first app container's user
/// (its own securityContext, else the Pod's); none, or root, is refused.
#[test]
fn agent_run_as_same_user_takes_the_first_containers_user() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-run-as-same-user",
        "true",
    );
    let users = |p: &Value| -> Vec<Value> {
        ["vault-agent", "vault-agent-init"]
            .iter()
            .map(|name| {
                let list = if *name == "vault-agent" {
                    "containers"
                } else {
                    "initContainers"
                };
                container(p, list, name)["securityContext"]["runAsUser"].clone()
            })
            .collect()
    };
    let mut p = pod(a.clone());
    p["spec"]["containers"][0]["securityContext"] = json!({ "runAsUser": 4242 });
    p["spec"]["securityContext"] = json!({ "runAsUser": 7 });
    inject_pod(&settings(), &mut p).unwrap();
    assert_eq!(users(&p), vec![json!(4242), json!(4242)]);
    // The group stays the injector's (vault-k8s's 1000).
    assert_eq!(
        container(&p, "containers", "vault-agent")["securityContext"]["runAsGroup"],
        1000
    );
    let mut p = pod(a.clone());
    p["spec"]["securityContext"] = json!({ "runAsUser": 7 });
    inject_pod(&settings(), &mut p).unwrap();
    assert_eq!(users(&p), vec![json!(7), json!(7)]);
    // It wins over agent-run-as-user, as in vault-k8s.
    let mut p = pod(with(
        a.clone(),
        "vault.hashicorp.com/agent-run-as-user",
        "555",
    ));
    p["spec"]["containers"][0]["securityContext"] = json!({ "runAsUser": 4242 });
    inject_pod(&settings(), &mut p).unwrap();
    assert_eq!(users(&p), vec![json!(4242), json!(4242)]);

    let err = refused(a.clone());
    assert_eq!(err.annotation, "vault.hashicorp.com/agent-run-as-same-user");
    assert!(err.message.contains("no runAsUser"), "{err}");
    let mut p = pod(a);
    p["spec"]["containers"][0]["securityContext"] = json!({ "runAsUser": 0 });
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert!(err.message.contains("root"), "{err}");
}

/// `agent-set-security-context: "false"`: no user or group (OpenShift assigns them); the rest
/// of the hardening stays. With a user or group annotation it is a contradiction, refused.
#[test]
fn agent_set_security_context_false_leaves_the_ids_to_the_platform() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-set-security-context",
        "false",
    );
    let p = inject(a.clone()).unwrap();
    for (list, name) in [
        ("containers", "vault-agent"),
        ("initContainers", "vault-agent-init"),
    ] {
        let context = &container(&p, list, name)["securityContext"];
        assert!(context.get("runAsUser").is_none(), "{context}");
        assert!(context.get("runAsGroup").is_none(), "{context}");
        assert_eq!(context["runAsNonRoot"], true);
        assert_eq!(context["allowPrivilegeEscalation"], false);
        assert_eq!(context["readOnlyRootFilesystem"], true);
        assert_eq!(context["capabilities"]["drop"], json!(["ALL"]));
    }
    let set = inject(with(
        vault(),
        "vault.hashicorp.com/agent-set-security-context",
        "true",
    ))
    .unwrap();
    assert_eq!(
        container(&set, "containers", "vault-agent")["securityContext"]["runAsUser"],
        100
    );
    for key in [
        "vault.hashicorp.com/agent-run-as-user",
        "vault.hashicorp.com/agent-run-as-group",
    ] {
        let err = refused(with(a.clone(), key, "2000"));
        assert_eq!(err.annotation, key);
        assert!(err.message.contains("ignored"), "{err}");
    }
    let err = refused(with(
        a,
        "vault.hashicorp.com/agent-run-as-same-user",
        "true",
    ));
    assert_eq!(err.annotation, "vault.hashicorp.com/agent-run-as-same-user");
}

/// `agent-share-process-namespace`: the Pod's shareProcessNamespace, so that the agent's
/// commands see the app's processes; a Pod that turned it off explicitly is not overridden.
#[test]
fn agent_share_process_namespace_sets_the_pods_field() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-share-process-namespace",
        "true",
    );
    let a = with(
        a,
        "vault.hashicorp.com/agent-inject-command-db",
        "kill -HUP $(pidof web)",
    );
    let p = inject(a.clone()).unwrap();
    assert_eq!(p["spec"]["shareProcessNamespace"], true);
    // The command reaches the agent as the line it is, which the agent runs itself.
    let file = env_json(container(&p, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(
        file["template"][0]["exec"]["command"],
        json!(["kill -HUP $(pidof web)"])
    );
    let loaded = load_agent_file(&file);
    let command = loaded.templates[0].command.clone().expect("a command");
    assert_eq!(
        command,
        crate::config::TemplateCommand::Shell("kill -HUP $(pidof web)".into())
    );
    crate::agent::builtin::parse(&command).expect("run by the agent");

    let off = inject(with(
        vault(),
        "vault.hashicorp.com/agent-share-process-namespace",
        "false",
    ))
    .unwrap();
    assert_eq!(off["spec"]["shareProcessNamespace"], false);
    assert!(
        inject(vault()).unwrap()["spec"]
            .get("shareProcessNamespace")
            .is_none()
    );
    let mut p = pod(a);
    p["spec"]["shareProcessNamespace"] = false.into();
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert_eq!(
        err.annotation,
        "vault.hashicorp.com/agent-share-process-namespace"
    );
}

/// `agent-service-account-token-volume-name`: a projected token volume (an audience of its
/// own) mounted in the agent where the app mounts it, else at vault-k8s's path, and the login's
/// token_path pointing into it; `auth-config-*` is the login's config.
#[test]
fn a_named_token_volume_is_what_the_agent_logs_in_with() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-service-account-token-volume-name",
        "vault-token",
    );
    let token_volume = json!({
        "name": "vault-token",
        "projected": { "sources": [
            { "serviceAccountToken": { "path": "jwt", "audience": "vault", "expirationSeconds": 600 } }
        ] },
    });
    let check = |p: &Value, mount: &str| {
        for (list, name) in [
            ("containers", "vault-agent"),
            ("initContainers", "vault-agent-init"),
        ] {
            let c = container(p, list, name);
            assert!(
                c["volumeMounts"].as_array().unwrap().contains(
                    &json!({ "name": "vault-token", "mountPath": mount, "readOnly": true })
                ),
                "{c}"
            );
            let file = env_json(c, "VAULT_CONFIG");
            assert_eq!(
                file["auto_auth"]["method"]["config"],
                json!({ "role": "web", "token_path": format!("{mount}/jwt") })
            );
            load_agent_file(&file);
        }
    };
    // Mounted by the app: the same path.
    let mut p = pod(a.clone());
    p["spec"]["volumes"] = json!([token_volume.clone()]);
    p["spec"]["containers"][0]["volumeMounts"] =
        json!([{ "name": "vault-token", "mountPath": "/var/run/secrets/tokens/" }]);
    p["spec"]["automountServiceAccountToken"] = false.into();
    inject_pod(&settings(), &mut p).unwrap();
    check(&p, "/var/run/secrets/tokens");
    // Not mounted by the app: vault-k8s's path.
    let mut p = pod(a.clone());
    p["spec"]["volumes"] = json!([token_volume.clone()]);
    inject_pod(&settings(), &mut p).unwrap();
    check(&p, "/var/run/secrets/vault.hashicorp.com/serviceaccount");
    // auth-config-token-path wins over the volume's path; auth-config-role stands in for role.
    let mut b = with(
        a.clone(),
        "vault.hashicorp.com/auth-config-token-path",
        "/var/run/secrets/vault.hashicorp.com/serviceaccount/other",
    );
    b.as_object_mut()
        .unwrap()
        .remove("vault.hashicorp.com/role");
    let b = with(b, "vault.hashicorp.com/auth-config-role", "from-config");
    let mut p = pod(b);
    p["spec"]["volumes"] = json!([token_volume]);
    inject_pod(&settings(), &mut p).unwrap();
    let file = env_json(container(&p, "containers", "vault-agent"), "VAULT_CONFIG");
    assert_eq!(
        file["auto_auth"]["method"]["config"],
        json!({
            "role": "from-config",
            "token_path": "/var/run/secrets/vault.hashicorp.com/serviceaccount/other"
        })
    );
    // A volume that is not there, or not a projected token.
    let err = refused(a.clone());
    assert!(err.message.contains("no volume named"), "{err}");
    let mut p = pod(a);
    p["spec"]["volumes"] = json!([{ "name": "vault-token", "emptyDir": {} }]);
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert!(err.message.contains("serviceAccountToken"), "{err}");
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/auth-config-audience",
        "x",
    ));
    assert!(err.message.contains("token_path"), "{err}");
}

/// `agent-extra-secret`: a Secret at `/vault/custom` in the agent containers (for files an
/// agent file or annotation names there); `agent-copy-volume-mounts`: another container's
/// mounts, but its ServiceAccount token's, in the agent containers too.
/// The volume mounts of the injected sidecar and init container, by name.
fn agents_mounts(pod: &Value) -> [(&'static str, Vec<Value>); 2] {
    [
        ("containers", "vault-agent"),
        ("initContainers", "vault-agent-init"),
    ]
    .map(|(list, name)| {
        let mounts = container(pod, list, name)["volumeMounts"]
            .as_array()
            .unwrap()
            .clone();
        (name, mounts)
    })
}

#[test]
fn a_copied_mount_of_the_token_volume_is_not_mounted_twice() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-service-account-token-volume-name",
        "vault-token",
    );
    let mut p = pod(with(
        a,
        "vault.hashicorp.com/agent-copy-volume-mounts",
        "web",
    ));
    p["spec"]["volumes"] = json!([{ "name": "vault-token", "projected": { "sources": [
        { "serviceAccountToken": { "path": "token", "audience": "vault" } }
    ] } }]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([
        { "name": "vault-token", "mountPath": "/var/run/secrets/openbao", "readOnly": true },
    ]);
    inject_pod(&settings(), &mut p).unwrap();
    for (name, mounts) in agents_mounts(&p) {
        let paths: Vec<&str> = mounts
            .iter()
            .filter_map(|m| m["mountPath"].as_str())
            .collect();
        let mut unique = paths.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(paths.len(), unique.len(), "{name}: {paths:?}");
        assert!(
            paths.contains(&"/var/run/secrets/openbao"),
            "{name}: {paths:?}"
        );
    }
}

#[test]
fn extra_secret_and_copied_mounts_reach_the_agent_containers() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-extra-secret",
        "vault-extra",
    );
    let a = with(a, "vault.hashicorp.com/agent-copy-volume-mounts", "web");
    let mut p = pod(a.clone());
    p["spec"]["volumes"] = json!([{ "name": "templates", "configMap": { "name": "tpl" } }]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([
        { "name": "templates", "mountPath": "/etc/templates", "readOnly": true },
        { "name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount" },
    ]);
    inject_pod(&settings(), &mut p).unwrap();
    assert!(
        p["spec"]["volumes"].as_array().unwrap().contains(
            &json!({ "name": "extra-secrets", "secret": { "secretName": "vault-extra" } })
        )
    );
    for (name, mounts) in agents_mounts(&p) {
        assert!(
            mounts.contains(
                &json!({ "name": "extra-secrets", "mountPath": "/vault/custom", "readOnly": true })
            ),
            "{name}: {mounts:?}"
        );
        assert!(
            mounts.contains(
                &json!({ "name": "templates", "mountPath": "/etc/templates", "readOnly": true })
            ),
            "{name}: {mounts:?}"
        );
        assert!(
            !mounts.iter().any(|m| m["name"] == "kube-api-access"),
            "{name}: the token's mount is not copied"
        );
    }
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/agent-copy-volume-mounts",
        "nope",
    ));
    assert!(err.message.contains("no container"), "{err}");
    let mut p = pod(with(
        vault(),
        "vault.hashicorp.com/agent-copy-volume-mounts",
        "web",
    ));
    p["spec"]["containers"][0]["volumeMounts"] =
        json!([{ "name": "data", "mountPath": "/vault/secrets" }]);
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert!(err.message.contains("/vault/secrets"), "{err}");
}

/// `agent-inject-template-file-NAME`: the template is a file in the agent container (here from
/// a copied mount), rendered to the secret's file; template text wins when both are given.
#[test]
fn a_template_file_is_the_templates_source() {
    let a = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
        "vault.hashicorp.com/agent-inject-template-file-db": "/etc/templates/db.ctmpl",
        "vault.hashicorp.com/agent-inject-command-db": "pkill -HUP web",
        "vault.hashicorp.com/agent-copy-volume-mounts": "web",
    });
    let mut p = pod(a.clone());
    p["spec"]["containers"][0]["volumeMounts"] =
        json!([{ "name": "templates", "mountPath": "/etc/templates" }]);
    inject_pod(&settings(), &mut p).unwrap();
    let file = env_json(container(&p, "containers", "vault-agent"), "VAULT_CONFIG");
    let template = &file["template"][0];
    assert_eq!(template["source"], "/etc/templates/db.ctmpl");
    assert!(template.get("contents").is_none());
    assert_eq!(template["destination"], "/vault/secrets/db");
    assert_eq!(template["exec"]["command"], json!(["pkill -HUP web"]));
    let both = with(
        a.clone(),
        "vault.hashicorp.com/agent-inject-template-db",
        "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}",
    );
    let mut p = pod(both);
    p["spec"]["containers"][0]["volumeMounts"] =
        json!([{ "name": "templates", "mountPath": "/etc/templates" }]);
    inject_pod(&settings(), &mut p).unwrap();
    let file = env_json(container(&p, "containers", "vault-agent"), "VAULT_CONFIG");
    assert!(file["template"][0].get("source").is_none());
    assert_eq!(file["template"].as_array().unwrap().len(), 1);
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/agent-inject-template-file-db",
        "templates/db.ctmpl",
    ));
    assert!(err.message.contains("absolute"), "{err}");
}

/// `proxy-address`: `HTTPS_PROXY` in the agent containers; `agent-disable-idle-connections`
/// and `agent-disable-keep-alives`: the agent file's keys, which the agent reads.
#[test]
fn proxy_address_and_connection_annotations_reach_the_agent() {
    let a = with(
        vault(),
        "vault.hashicorp.com/proxy-address",
        "http://proxy.corp:3128",
    );
    let a = with(
        a,
        "vault.hashicorp.com/agent-disable-idle-connections",
        "auto-auth, templating",
    );
    let a = with(
        a,
        "vault.hashicorp.com/agent-disable-keep-alives",
        "caching",
    );
    let p = inject(a.clone()).unwrap();
    for (list, name) in [
        ("containers", "vault-agent"),
        ("initContainers", "vault-agent-init"),
    ] {
        let c = container(&p, list, name);
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .contains(&json!({ "name": "HTTPS_PROXY", "value": "http://proxy.corp:3128" })),
            "{c}"
        );
        let file = env_json(c, "VAULT_CONFIG");
        assert_eq!(
            file["disable_idle_connections"],
            json!(["auto-auth", "templating"])
        );
        assert_eq!(file["disable_keep_alives"], json!(["caching"]));
        let loaded = load_agent_file(&file);
        assert_eq!(
            loaded.fresh_connections,
            crate::config::FreshConnections {
                auto_auth: true,
                templating: true,
                api_proxy: true,
            }
        );
    }
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/agent-disable-keep-alives",
        "everything",
    ));
    assert!(err.message.contains("auto-auth"), "{err}");
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/proxy-address",
        "socks5://proxy:1080",
    ));
    assert_eq!(err.annotation, "vault.hashicorp.com/proxy-address");
}

/// `secret-volume-path-NAME`: that secret in a directory of its own, an in-memory volume
/// (`vault-secrets-custom-N`, one per directory) mounted there in the app and agent containers.
#[test]
fn a_secret_with_a_volume_path_of_its_own_gets_its_own_volume() {
    let a = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
        "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
        "vault.hashicorp.com/agent-inject-secret-tls": "secret/data/tls",
        "vault.hashicorp.com/secret-volume-path-tls": "/etc/tls",
        "vault.hashicorp.com/agent-inject-secret-ca": "secret/data/ca",
        "vault.hashicorp.com/secret-volume-path-ca": "/etc/tls/",
    });
    let p = inject(a).unwrap();
    assert!(p["spec"]["volumes"].as_array().unwrap().contains(
        &json!({ "name": "vault-secrets-custom-0", "emptyDir": { "medium": "Memory" } })
    ));
    assert_eq!(
        p["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["name"]
                .as_str()
                .unwrap()
                .starts_with("vault-secrets-custom"))
            .count(),
        1,
        "one volume per directory"
    );
    for (list, name) in [
        ("containers", "web"),
        ("containers", "vault-agent"),
        ("initContainers", "vault-agent-init"),
    ] {
        let mounts = container(&p, list, name)["volumeMounts"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            mounts.contains(&json!({ "name": "vault-secrets-custom-0", "mountPath": "/etc/tls" })),
            "{name}: {mounts:?}"
        );
        assert!(
            mounts.contains(&json!({ "name": "vault-secrets", "mountPath": "/vault/secrets" })),
            "{name}: {mounts:?}"
        );
    }
    let file = env_json(container(&p, "containers", "vault-agent"), "VAULT_CONFIG");
    let destinations: Vec<&str> = file["template"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        destinations,
        vec!["/etc/tls/ca", "/vault/secrets/db", "/etc/tls/tls"]
    );
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/secret-volume-path-db",
        "relative/dir",
    ));
    assert_eq!(err.annotation, "vault.hashicorp.com/secret-volume-path-db");
}

/// `agent-json-patch` / `agent-init-json-patch`: RFC 6902 patches of the injected sidecar and
/// init container, as vault-k8s applies them; one that does not apply is refused by name.
#[test]
fn json_patches_change_the_injected_containers() {
    let a = with(
        vault(),
        "vault.hashicorp.com/agent-json-patch",
        r#"[{"op": "add", "path": "/env/-", "value": {"name": "EXTRA", "value": "1"}},
            {"op": "replace", "path": "/resources/limits/memory", "value": "256Mi"}]"#,
    );
    let a = with(
        a,
        "vault.hashicorp.com/agent-init-json-patch",
        r#"[{"op": "add", "path": "/imagePullPolicy", "value": "Always"}]"#,
    );
    let p = inject(a).unwrap();
    let agent = container(&p, "containers", "vault-agent");
    assert!(
        agent["env"]
            .as_array()
            .unwrap()
            .contains(&json!({ "name": "EXTRA", "value": "1" }))
    );
    assert_eq!(agent["resources"]["limits"]["memory"], "256Mi");
    assert!(agent.get("imagePullPolicy").is_none());
    let init = container(&p, "initContainers", "vault-agent-init");
    assert_eq!(init["imagePullPolicy"], "Always");
    assert_eq!(init["resources"]["limits"]["memory"], "128Mi");
    let err = refused(with(
        vault(),
        "vault.hashicorp.com/agent-json-patch",
        r#"[{"op": "remove", "path": "/nothing"}]"#,
    ));
    assert_eq!(err.annotation, "vault.hashicorp.com/agent-json-patch");
    assert!(err.message.contains("no member"), "{err}");
}

#[test]
fn a_pod_without_its_service_account_token_is_refused() {
    let mut p = pod(own());
    p["spec"]["automountServiceAccountToken"] = false.into();
    let before = p.clone();
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert_eq!(err.annotation, "pki-sidecar.io/inject");
    assert!(
        err.message.contains("automountServiceAccountToken"),
        "{err}"
    );
    assert_eq!(p, before);
}

mod streams {
    use proptest::prelude::*;

    use super::settings;
    use crate::inject::manifest::transform;

    /// Pieces of Kubernetes YAML, shuffled into streams: annotated and plain workloads,
    /// separators, comments, anchors, flow style, stray indentation.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "---\n",
            "# comment\n",
            "apiVersion: v1\n",
            "kind: Pod\n",
            "kind: Deployment\n",
            "kind: List\n",
            "metadata:\n",
            "  name: x\n",
            "  annotations:\n",
            "    pki-sidecar.io/inject: \"true\"\n",
            "    pki-sidecar.io/role: web\n",
            "    pki-sidecar.io/pki-path: pki/issue/web\n",
            "    pki-sidecar.io/common-name: web\n",
            "    vault.hashicorp.com/agent-inject: \"true\"\n",
            "    vault.hashicorp.com/role: web\n",
            "    vault.hashicorp.com/agent-inject-secret-a: secret/a\n",
            "spec:\n",
            "  containers:\n",
            "    - name: app\n",
            "      image: app:1\n",
            "  template:\n",
            "    metadata: {annotations: {pki-sidecar.io/inject: \"true\"}}\n",
            "items:\n",
            "  - {kind: Pod, metadata: {name: y}, spec: {}}\n",
            "mode: 0644\n",
            "flag: yes\n",
            "a: &x {b: 1}\n",
            "c: *x\n",
            "  bad indent: [\n",
            "%YAML 1.1\n",
            "...\n",
        ])
    }

    proptest! {
        #[test]
        fn any_stream_is_refused_or_injected_idempotently(
            pieces in prop::collection::vec(piece(), 0..24)
        ) {
            let text: String = pieces.concat();
            if let Ok(once) = transform(&settings(), "stream", &text) {
                let twice = transform(&settings(), "stream", &once)
                    .unwrap_or_else(|f| panic!("{}\n--- from ---\n{text}\n--- gave ---\n{once}", f.message));
                prop_assert_eq!(&twice, &once, "{}", text);
            }
        }
    }
}

/// The agent's metrics port is not one the Pod's containers declare: a default one moves to the
/// next free port, one an annotation chose is an error; on the host's network the agent takes a
/// loopback port the kernel picks and declares none (each Pod on a node would claim it).
#[test]
fn the_agents_metrics_port_keeps_clear_of_the_pods_own_and_of_the_hosts() {
    let mut p = pod(vault());
    p["spec"]["containers"][0]["ports"] =
        json!([{ "containerPort": 9101 }, { "containerPort": 9102 }]);
    inject_pod(&settings(), &mut p).unwrap();
    let agent = container(&p, "containers", "vault-agent");
    assert_eq!(agent["ports"][0]["containerPort"], 9103);
    assert_eq!(
        env_json(agent, "VAULT_CONFIG")["telemetry"]["metrics_listen"],
        "0.0.0.0:9103"
    );
    let mut p = pod(with(own(), "pki-sidecar.io/agent-metrics-port", "9300"));
    p["spec"]["containers"][0]["ports"] = json!([{ "containerPort": 9300 }]);
    let err = inject_pod(&settings(), &mut p).unwrap_err();
    assert!(err.message.contains("declares port 9300"), "{err}");
    let mut p = pod(vault());
    p["spec"]["hostNetwork"] = json!(true);
    inject_pod(&settings(), &mut p).unwrap();
    for (list, name) in [
        ("containers", "vault-agent"),
        ("initContainers", "vault-agent-init"),
    ] {
        let agent = container(&p, list, name);
        for key in ["ports", "readinessProbe", "livenessProbe"] {
            assert!(agent.get(key).is_none(), "{name}: {key}");
        }
        assert_eq!(
            env_json(agent, "VAULT_CONFIG")["telemetry"]["metrics_listen"],
            "127.0.0.1:0"
        );
    }
}

/// A command running a program pki-sidecar's image lacks (`chmod`, `touch`: the Vault Agent
/// Injector's image has BusyBox) would fail after every render: a warning says so, and what to
/// use for `chmod`; signal commands, which the agent runs itself, and a custom image do not.
#[test]
fn a_command_the_image_cannot_run_is_a_warning() {
    let annotations = with(
        with(
            vault(),
            "vault.hashicorp.com/agent-inject-command-db",
            "chmod 0644 /vault/secrets/db",
        ),
        "vault.hashicorp.com/agent-inject-secret-web",
        "secret/data/web",
    );
    let annotations = with(
        annotations,
        "vault.hashicorp.com/agent-inject-command-web",
        "pkill -HUP nginx || true",
    );
    let warnings = super::warnings(&pod(annotations.clone()));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("runs `chmod`")
            && warnings[0].contains("agent-inject-perms-db instead"),
        "{warnings:?}"
    );
    let custom = with(
        annotations,
        "vault.hashicorp.com/agent-image",
        "pki-sidecar:tools",
    );
    assert!(super::warnings(&pod(custom)).is_empty());
}

/// Blank values, as a Helm chart renders an unset one (`{{ .Values.file | quote }}`), are
/// vault-k8s's "unset": a blank secret or template names no secret (with a warning), a blank
/// file name or mode is the default.
#[test]
fn blank_annotation_values_are_unset_as_for_the_vault_agent_injector() {
    let mut annotations = vault();
    for (key, value) in [
        ("agent-inject-file-db", ""),
        ("agent-inject-perms-db", " "),
        ("agent-inject-secret-x", ""),
        ("agent-inject-template-extra", ""),
    ] {
        annotations = with(annotations, &format!("vault.hashicorp.com/{key}"), value);
    }
    let warnings = super::warnings(&pod(annotations.clone()));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("agent-inject-secret-x: empty, so ignored"),
        "{warnings:?}"
    );
    let injected = inject(annotations).expect("injected");
    let spec = injected["spec"].to_string();
    assert!(spec.contains("/vault/secrets/db"), "{spec}");
    assert!(
        !spec.contains("/vault/secrets/x") && !spec.contains("/vault/secrets/extra"),
        "{spec}"
    );
}

/// A per-secret annotation naming no secret (a leftover after its secret was removed) is
/// ignored as the Vault Agent Injector ignores it, with a warning, not a refusal; the webhook
/// sends the warning to kubectl.
#[test]
fn a_leftover_per_secret_annotation_is_a_warning() {
    let annotations = with(
        with(
            vault(),
            "vault.hashicorp.com/agent-inject-command-other",
            "/bin/true",
        ),
        "vault.hashicorp.com/secret-volume-path-gone",
        "/etc/gone",
    );
    let warnings = super::warnings(&pod(annotations.clone()));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "annotation vault.hashicorp.com/agent-inject-command-other: ignored, as the Vault \
             Agent Injector ignores it"
        ),
        "{warnings:?}"
    );
    let injected = inject(annotations).expect("injected");
    let spec = injected["spec"].to_string();
    assert!(
        !spec.contains("/bin/true") && !spec.contains("/etc/gone"),
        "{spec}"
    );
    // A Pod that asks for no injection gets no warning.
    let mut off = with(
        json!({}),
        "vault.hashicorp.com/agent-inject-command-other",
        "x",
    );
    off = with(off, "vault.hashicorp.com/agent-inject", "false");
    assert!(super::warnings(&pod(off)).is_empty());
}
