//! A [`Plan`] made into Kubernetes objects: the agent files (JSON, carried in environment
//! variables), the containers, the volumes, and the changes to the Pod's own containers.

use serde_json::{Map, Value, json};

use super::InjectError;
use super::plan::{Plan, ProxyPlan, Resources, Vocabulary};

/// The environment variable holding the agent file (as the Vault Agent Injector's).
pub(crate) const AGENT_ENV: &str = "VAULT_CONFIG";
/// The environment variable holding the proxy's file.
pub(crate) const PROXY_ENV: &str = "PKI_SIDECAR_PROXY_CONFIG";
/// The init container's addition to a ConfigMap's agent file (own vocabulary).
pub(crate) const INIT_ENV: &str = "PKI_SIDECAR_INIT_CONFIG";
/// The token sink's file in the agent's home.
const SINK_FILE: &str = "token";

fn error(annotation: &str, message: impl Into<String>) -> InjectError {
    InjectError {
        annotation: annotation.to_string(),
        message: message.into(),
    }
}

/// The agent file of the plan; `init` for the init container (render once, then exit).
pub(crate) fn agent_file(
    plan: &Plan,
    templates: &[super::plan::TemplateSpec],
    init: bool,
) -> Value {
    let mut file = Map::new();
    file.insert("exit_after_auth".into(), init.into());
    if !plan.vault.is_empty() {
        let vault: Map<String, Value> = plan
            .vault
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        file.insert("vault".into(), Value::Object(vault));
    }
    let mut method = Map::new();
    method.insert("type".into(), "kubernetes".into());
    method.insert("mount_path".into(), plan.auth_path.clone().into());
    let mut config = Map::new();
    config.insert("role".into(), plan.role.clone().into());
    for (k, v) in &plan.auth_config {
        config.insert(k.clone(), v.clone().into());
    }
    method.insert("config".into(), Value::Object(config));
    for (k, v) in &plan.auth {
        method.insert(k.to_string(), v.clone());
    }
    let home = plan.names.home_path;
    let mut sinks =
        vec![json!({ "type": "file", "config": { "path": format!("{home}/{SINK_FILE}") } })];
    if plan.inject_token {
        // vault-k8s's `agent-inject-token`: the token in the shared volume too.
        sinks.push(json!({
            "type": "file",
            "config": { "path": format!("{}/{SINK_FILE}", plan.secrets_path.trim_end_matches('/')) },
        }));
    }
    file.insert(
        "auto_auth".into(),
        json!({
            "method": Value::Object(method),
            "sink": sinks,
        }),
    );
    if !plan.template_config.is_empty() {
        let config: Map<String, Value> = plan
            .template_config
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        file.insert("template_config".into(), Value::Object(config));
    }
    let templates: Vec<Value> = templates
        .iter()
        .map(|t| {
            let mut template = Map::new();
            template.insert("destination".into(), t.destination.clone().into());
            match &t.source {
                Some(source) => template.insert("source".into(), source.clone().into()),
                None => template.insert("contents".into(), t.contents.clone().into()),
            };
            if let Some(perms) = &t.perms {
                template.insert("perms".into(), perms.clone().into());
            }
            if let Some(left) = &t.left_delimiter {
                template.insert("left_delimiter".into(), left.clone().into());
            }
            if let Some(right) = &t.right_delimiter {
                template.insert("right_delimiter".into(), right.clone().into());
            }
            if t.error_on_missing_key {
                template.insert("error_on_missing_key".into(), true.into());
            }
            if let Some(command) = &t.command {
                template.insert("exec".into(), json!({ "command": command }));
            }
            Value::Object(template)
        })
        .collect();
    if !templates.is_empty() {
        file.insert("template".into(), Value::Array(templates));
    }
    let mut telemetry: Map<String, Value> = plan
        .telemetry
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let listen = if plan.agent_metrics_local {
        "127.0.0.1:0".to_string()
    } else {
        format!("0.0.0.0:{}", plan.agent_metrics_port)
    };
    telemetry.insert("metrics_listen".into(), listen.into());
    file.insert("telemetry".into(), Value::Object(telemetry));
    // The sidecar's local listener: the API proxy, the quit endpoint, or both on one port (the
    // init container, which exits, serves neither).
    if !init {
        if let Some((_, use_auto_auth_token)) = &plan.api_proxy {
            file.insert(
                "api_proxy".into(),
                json!({ "use_auto_auth_token": use_auto_auth_token }),
            );
        }
        if let Some(port) = plan.api_proxy.as_ref().map(|(p, _)| *p).or(plan.quit_port) {
            let mut listener = json!({
                "type": "tcp",
                "address": format!("127.0.0.1:{port}"),
                "tls_disable": true,
            });
            if plan.quit_port.is_some() {
                listener["agent_api"] = json!({ "enable_quit": true });
            }
            file.insert("listener".into(), json!([listener]));
        }
    }
    if let Some(grace) = plan.revoke_grace.filter(|_| !init) {
        file.insert(
            "pki_sidecar".into(),
            json!({ "revoke_token_on_shutdown": true, "revoke_grace": format!("{grace}s") }),
        );
        // The agent's stop takes the grace, then the revocation.
        file.insert(
            "shutdown_grace".into(),
            format!("{}s", (grace + 5).max(10)).into(),
        );
    }
    for (key, parts) in &plan.connection_options {
        file.insert((*key).into(), json!(parts));
    }
    if let Some(level) = &plan.log_level {
        file.insert("log_level".into(), level.clone().into());
    }
    if let Some(format) = &plan.log_format {
        file.insert("log_format".into(), format.clone().into());
    }
    Value::Object(file)
}

/// The proxy's file.
pub(crate) fn proxy_file(plan: &Plan, proxy: &ProxyPlan) -> Value {
    let mut block = Map::new();
    block.insert("listen".into(), format!("0.0.0.0:{}", proxy.port).into());
    block.insert(
        "upstream".into(),
        format!("http://127.0.0.1:{}", proxy.upstream_port).into(),
    );
    block.insert("cert_file".into(), proxy.cert_file.clone().into());
    block.insert("key_file".into(), proxy.key_file.clone().into());
    block.insert(
        "metrics_listen".into(),
        format!("0.0.0.0:{}", proxy.metrics_port).into(),
    );
    if let Some((_, key)) = &proxy.client_ca {
        block.insert(
            "client_ca_file".into(),
            format!("{}/{key}", plan.names.client_ca_path).into(),
        );
        block.insert(
            "client_auth".into(),
            proxy
                .client_auth
                .clone()
                .unwrap_or_else(|| "require".to_string())
                .into(),
        );
    }
    json!({ "proxy": Value::Object(block) })
}

/// Checks an agent file with the agent's own loader (templates parsed with its functions).
pub(crate) fn check_agent_file(file: &Value) -> Result<(), String> {
    let text = file.to_string();
    let env = |name: &str| (name == AGENT_ENV).then(|| text.clone());
    crate::config::load_sources(
        &[],
        &[AGENT_ENV.to_string()],
        &env,
        &crate::agent::functions::KnownFunctions,
    )
    .and_then(|config| config.agent().map(|_| ()))
    .map_err(|errors| errors.to_string().trim().to_string())
}

/// Checks the proxy's file with the loader.
pub(crate) fn check_proxy_file(file: &Value) -> Result<(), String> {
    let text = file.to_string();
    let env = |name: &str| (name == PROXY_ENV).then(|| text.clone());
    crate::config::load_sources(
        &[],
        &[PROXY_ENV.to_string()],
        &env,
        &crate::agent::functions::KnownFunctions,
    )
    .map(|_| ())
    .map_err(|errors| errors.to_string().trim().to_string())
}

fn security_context(plan: &Plan) -> Value {
    let mut context = json!({
        "runAsNonRoot": true,
        "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    });
    if plan.set_ids {
        context["runAsUser"] = plan.run_as_user.into();
        context["runAsGroup"] = plan.run_as_group.into();
    }
    context
}

fn resources(resources: &Resources) -> Value {
    let mut out = Map::new();
    for (key, map) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        if !map.is_empty() {
            let values: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect();
            out.insert(key.into(), Value::Object(values));
        }
    }
    Value::Object(out)
}

fn http_probe(path: &str, port: &str, period: u64) -> Value {
    json!({ "httpGet": { "path": path, "port": port }, "periodSeconds": period })
}

/// The agent's mounts (sidecar or init).
fn agent_mounts(plan: &Plan, init: bool) -> Vec<Value> {
    let home = if init {
        plan.names.home_init
    } else {
        plan.names.home_sidecar
    };
    let mut mounts = vec![
        json!({ "name": plan.secrets_volume, "mountPath": plan.secrets_path }),
        json!({ "name": home, "mountPath": plan.names.home_path }),
    ];
    for (name, path) in &plan.custom_volumes {
        mounts.push(json!({ "name": name, "mountPath": path }));
    }
    if plan.tls_secret.is_some() {
        mounts.push(json!({ "name": plan.names.tls_volume, "mountPath": plan.tls_secret_path, "readOnly": true }));
    }
    if plan.config_map.is_some() {
        mounts.push(json!({ "name": plan.names.config_volume, "mountPath": plan.names.config_path, "readOnly": true }));
    }
    if let Some(token) = &plan.token_volume {
        mounts.push(json!({ "name": token.name, "mountPath": token.mount_path, "readOnly": true }));
    }
    if plan.extra_secret.is_some() {
        mounts.push(json!({
            "name": super::plan::EXTRA_SECRET_VOLUME,
            "mountPath": super::plan::EXTRA_SECRET_PATH,
            "readOnly": true,
        }));
    }
    mounts.extend(plan.copied_mounts.iter().cloned());
    mounts
}

/// The agent container's arguments and environment.
fn agent_command(plan: &Plan, init: bool) -> (Vec<String>, Vec<Value>) {
    match (&plan.config_map, plan.vocabulary) {
        (Some(_), Vocabulary::Vault) => {
            // vault-k8s's ConfigMap layout: config.hcl for the sidecar, config-init.hcl for
            // the init container.
            let file = if init {
                "config-init.hcl"
            } else {
                "config.hcl"
            };
            (
                vec![
                    "agent".into(),
                    "--config".into(),
                    format!("{}/{file}", plan.names.config_path),
                ],
                config_map_environment(plan),
            )
        }
        (Some(_), Vocabulary::Own) => {
            let mut args = vec![
                "agent".to_string(),
                "--config".to_string(),
                plan.names.config_path.to_string(),
            ];
            let mut env = Vec::new();
            if init {
                args.extend(["--config-env".to_string(), INIT_ENV.to_string()]);
                env.push(json!({ "name": INIT_ENV, "value": json!({ "exit_after_auth": true }).to_string() }));
            }
            (args, env)
        }
        (None, _) => {
            let file = agent_file(plan, &plan.templates, init);
            (
                vec!["agent".into(), "--config-env".into(), AGENT_ENV.into()],
                vec![json!({ "name": AGENT_ENV, "value": file.to_string() })],
            )
        }
    }
}

/// What the annotations say of Vault and the logs, for an agent whose file comes from
/// `agent-configmap`: vault-k8s sets them as the agent's environment (`VAULT_ADDR`,
/// `VAULT_CACERT`... from `service`, `ca-cert`, `tls-skip-verify`...), which the file's `vault {}`
/// gives way to, since the file may have none.
fn config_map_environment(plan: &Plan) -> Vec<Value> {
    let mut env = Vec::new();
    for (key, variable) in [
        ("address", "VAULT_ADDR"),
        ("ca_cert", "VAULT_CACERT"),
        ("ca_path", "VAULT_CAPATH"),
        ("client_cert", "VAULT_CLIENT_CERT"),
        ("client_key", "VAULT_CLIENT_KEY"),
        ("tls_skip_verify", "VAULT_SKIP_VERIFY"),
        ("tls_server_name", "VAULT_TLS_SERVER_NAME"),
        ("namespace", "VAULT_NAMESPACE"),
        ("client_timeout", "VAULT_CLIENT_TIMEOUT"),
    ] {
        if let Some(value) = plan.vault.get(key) {
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            env.push(json!({ "name": variable, "value": value }));
        }
    }
    if let Some(retries) = plan.vault.get("retry").and_then(|r| r.get("num_retries")) {
        env.push(json!({ "name": "VAULT_MAX_RETRIES", "value": retries.to_string() }));
    }
    for (value, variable) in [
        (&plan.log_level, "VAULT_LOG_LEVEL"),
        (&plan.log_format, "VAULT_LOG_FORMAT"),
    ] {
        if let Some(value) = value {
            env.push(json!({ "name": variable, "value": value }));
        }
    }
    env
}

/// `agent-json-patch` / `agent-init-json-patch`: the injected container changed by the
/// annotation's RFC 6902 patch, as vault-k8s applies it.
fn patch_container(
    container: &mut Value,
    patch: Option<&str>,
    annotation: &str,
) -> Result<(), InjectError> {
    let Some(patch) = patch.filter(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    let annotation = format!("{}{annotation}", super::plan::VAULT);
    super::json_patch::apply(container, patch)
        .map_err(|message| error(&annotation, format!("the patch does not apply: {message}")))
}

/// `proxy-address`: Vault is reached through that proxy (`HTTPS_PROXY`, as vault-k8s sets it).
fn with_proxy_env(plan: &Plan, mut env: Vec<Value>) -> Vec<Value> {
    if let Some(proxy) = &plan.proxy_address {
        env.push(json!({ "name": "HTTPS_PROXY", "value": proxy }));
    }
    env
}

fn agent_container(plan: &Plan) -> Value {
    let (args, env) = agent_command(plan, false);
    let mut container = json!({
        "name": plan.names.agent,
        "image": plan.image,
        "args": args,
        "ports": [{ "name": "agent-metrics", "containerPort": plan.agent_metrics_port }],
        "readinessProbe": http_probe("/readyz", "agent-metrics", 5),
        "livenessProbe": http_probe("/healthz", "agent-metrics", 10),
        "resources": resources(&plan.agent_resources),
        "securityContext": security_context(plan),
        "volumeMounts": agent_mounts(plan, false),
    });
    if plan.agent_metrics_local
        && let Some(fields) = container.as_object_mut()
    {
        for key in ["ports", "readinessProbe", "livenessProbe"] {
            fields.remove(key);
        }
    }
    let env = with_proxy_env(plan, env);
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    container
}

fn init_container(plan: &Plan) -> Value {
    let (args, env) = agent_command(plan, true);
    let mut container = json!({
        "name": plan.names.init,
        "image": plan.image,
        "args": args,
        "resources": resources(&plan.agent_resources),
        "securityContext": security_context(plan),
        "volumeMounts": agent_mounts(plan, true),
    });
    let env = with_proxy_env(plan, env);
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    container
}

fn proxy_container(plan: &Plan, proxy: &ProxyPlan) -> Value {
    let mut mounts = vec![
        json!({ "name": plan.secrets_volume, "mountPath": plan.secrets_path, "readOnly": true }),
    ];
    if proxy.client_ca.is_some() {
        mounts.push(json!({ "name": plan.names.client_ca_volume, "mountPath": plan.names.client_ca_path, "readOnly": true }));
    }
    json!({
        "name": plan.names.proxy,
        "image": plan.image,
        "args": ["proxy", "--config-env", PROXY_ENV],
        "env": [{ "name": PROXY_ENV, "value": proxy_file(plan, proxy).to_string() }],
        "ports": [
            { "name": "https", "containerPort": proxy.port },
            { "name": "proxy-metrics", "containerPort": proxy.metrics_port },
        ],
        // Until the agent has written the first pair the proxy is not ready; the startup
        // probe gives it two minutes before liveness counts.
        "startupProbe": {
            "httpGet": { "path": "/readyz", "port": "proxy-metrics" },
            "periodSeconds": 2,
            "failureThreshold": 60,
        },
        "readinessProbe": http_probe("/readyz", "proxy-metrics", 5),
        "livenessProbe": http_probe("/healthz", "proxy-metrics", 10),
        "resources": resources(&proxy.resources),
        "securityContext": security_context(plan),
        "volumeMounts": mounts,
    })
}

fn memory_volume(name: &str, size_limit: bool) -> Value {
    if size_limit {
        json!({ "name": name, "emptyDir": { "medium": "Memory", "sizeLimit": "1Mi" } })
    } else {
        json!({ "name": name, "emptyDir": { "medium": "Memory" } })
    }
}

fn volumes(plan: &Plan) -> Vec<Value> {
    let own = plan.vocabulary == Vocabulary::Own;
    let mut volumes = vec![memory_volume(&plan.secrets_volume, own)];
    for (name, _) in &plan.custom_volumes {
        volumes.push(memory_volume(name, false));
    }
    // With the init container alone (`agent-pre-populate-only`), no sidecar's home.
    if !plan.pre_populate_only || plan.names.home_init == plan.names.home_sidecar {
        volumes.push(memory_volume(plan.names.home_sidecar, true));
    }
    if plan.pre_populate && plan.names.home_init != plan.names.home_sidecar {
        volumes.push(memory_volume(plan.names.home_init, true));
    }
    if let Some(secret) = &plan.tls_secret {
        volumes.push(json!({ "name": plan.names.tls_volume, "secret": { "secretName": secret } }));
    }
    if let Some(secret) = &plan.extra_secret {
        volumes.push(json!({
            "name": super::plan::EXTRA_SECRET_VOLUME,
            "secret": { "secretName": secret },
        }));
    }
    if let Some(map) = &plan.config_map {
        volumes.push(json!({ "name": plan.names.config_volume, "configMap": { "name": map } }));
    }
    if let Some(ProxyPlan {
        client_ca: Some((map, _)),
        ..
    }) = &plan.proxy
    {
        volumes.push(json!({ "name": plan.names.client_ca_volume, "configMap": { "name": map } }));
    }
    volumes
}

fn array<'a>(spec: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = spec
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("an array was just put there")
}

fn name_of(value: &Value) -> Option<&str> {
    value.get("name").and_then(Value::as_str)
}

/// Removes what an earlier injection of `plan`'s vocabulary added (for `agent-inject-status:
/// update`, which asks for a new injection).
pub(crate) fn strip(plan: &Plan, spec: &mut Map<String, Value>) {
    let containers = [plan.names.agent, plan.names.init, plan.names.proxy];
    // The volumes this plan adds, and those an earlier injection's annotations may have added
    // and this one's no longer do (a removed `secret-volume-path-NAME`, `tls-secret`...).
    let mut volumes: Vec<String> = volumes(plan)
        .iter()
        .filter_map(|v| name_of(v).map(str::to_string))
        .collect();
    let names = &plan.names;
    for name in [
        names.home_init,
        names.home_sidecar,
        names.config_volume,
        names.tls_volume,
        names.client_ca_volume,
        super::plan::EXTRA_SECRET_VOLUME,
    ] {
        volumes.push(name.to_string());
    }
    let custom = format!("{}-custom-", plan.secrets_volume);
    if let Some(Value::Array(list)) = spec.get("volumes") {
        volumes.extend(
            list.iter()
                .filter_map(name_of)
                .filter(|name| name.starts_with(&custom))
                .map(str::to_string),
        );
    }
    for key in ["containers", "initContainers"] {
        if let Some(Value::Array(list)) = spec.get_mut(key) {
            list.retain(|c| !name_of(c).is_some_and(|n| containers.contains(&n)));
            for container in list.iter_mut() {
                if let Some(Value::Array(mounts)) = container.get_mut("volumeMounts") {
                    mounts.retain(|m| !name_of(m).is_some_and(|n| volumes.iter().any(|v| v == n)));
                }
            }
        }
    }
    if let Some(Value::Array(list)) = spec.get_mut("volumes") {
        list.retain(|v| !name_of(v).is_some_and(|n| volumes.iter().any(|x| x == n)));
    }
}

/// Where the agent serves its metrics and probes in this Pod. A Pod on the host's network gets
/// a loopback port the kernel picks ([`Plan::agent_metrics_local`]); in any other, a port one
/// of the Pod's own containers declares is not taken: a default one moves to the next free
/// port, one an annotation chose is an error, as is a clash the ConfigMap's agent file decides.
fn agent_metrics_port(plan: &mut Plan, spec: &Map<String, Value>) -> Result<(), InjectError> {
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        plan.agent_metrics_local = true;
        return Ok(());
    }
    let injected = [plan.names.agent, plan.names.init, plan.names.proxy];
    let mut taken: Vec<(u16, String)> = Vec::new();
    for key in ["containers", "initContainers"] {
        for container in spec
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name_of(container).unwrap_or_default();
            if injected.contains(&name) {
                continue;
            }
            for port in container
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(number) = port
                    .get("containerPort")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                {
                    taken.push((number, name.to_string()));
                }
            }
        }
    }
    if let Some(proxy) = &plan.proxy {
        for port in [proxy.port, proxy.upstream_port, proxy.metrics_port] {
            taken.push((port, String::new()));
        }
    }
    let Some((_, owner)) = taken
        .iter()
        .find(|(port, owner)| *port == plan.agent_metrics_port && !owner.is_empty())
    else {
        return Ok(());
    };
    let annotation = match plan.vocabulary {
        Vocabulary::Vault => "vault.hashicorp.com/agent-configmap",
        Vocabulary::Own => "pki-sidecar.io/agent-metrics-port",
    };
    if plan.agent_metrics_port_given || plan.config_map.is_some() {
        return Err(error(
            annotation,
            format!(
                "container {owner:?} declares port {}, where the agent would serve its metrics \
                 and probes: give the agent another port",
                plan.agent_metrics_port
            ),
        ));
    }
    let free = (plan.agent_metrics_port..=u16::MAX)
        .find(|candidate| !taken.iter().any(|(port, _)| port == candidate));
    match free {
        Some(port) => {
            plan.agent_metrics_port = port;
            Ok(())
        }
        None => Err(error(annotation, "no free port for the agent's metrics")),
    }
}

/// What the plan takes from the Pod itself: the user of `agent-run-as-same-user`, where the
/// token volume of `agent-service-account-token-volume-name` is mounted and the token's path
/// in it (vault-k8s's rules).
pub(crate) fn resolve(plan: &mut Plan, spec: &Map<String, Value>) -> Result<(), InjectError> {
    let containers: &[Value] = spec
        .get("containers")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    agent_metrics_port(plan, spec)?;
    if plan.run_as_same_user {
        let annotation = "vault.hashicorp.com/agent-run-as-same-user";
        let Some(first) = containers.first() else {
            return Err(error(annotation, "the Pod has no container"));
        };
        // The container's own user, else the Pod's (which the container runs as then).
        let user = [first.get("securityContext"), spec.get("securityContext")]
            .into_iter()
            .flatten()
            .find_map(|context| context.get("runAsUser").and_then(Value::as_i64));
        match user {
            None => {
                return Err(error(
                    annotation,
                    format!(
                        "the first container ({:?}) has no runAsUser, in its securityContext or \
                         the Pod's: set one, or use vault.hashicorp.com/agent-run-as-user",
                        name_of(first).unwrap_or_default()
                    ),
                ));
            }
            Some(0) => {
                return Err(error(
                    annotation,
                    "the first container runs as root, and the injected containers never do",
                ));
            }
            Some(user) => plan.run_as_user = user,
        }
    }
    if let Some(source) = &plan.copy_volume_mounts {
        let annotation = "vault.hashicorp.com/agent-copy-volume-mounts";
        let all = ["containers", "initContainers"]
            .iter()
            .filter_map(|key| spec.get(*key).and_then(Value::as_array))
            .flatten();
        let Some(container) = all
            .into_iter()
            .find(|c| name_of(c) == Some(source.as_str()))
        else {
            return Err(error(
                annotation,
                format!("the Pod has no container or init container named {source:?}"),
            ));
        };
        // The ServiceAccount token's mounts are left out, as vault-k8s leaves them.
        let own: Vec<String> = agent_mounts(plan, false)
            .into_iter()
            .chain(agent_mounts(plan, true))
            .filter_map(|m| {
                m.get("mountPath")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        let mut copied = Vec::new();
        for mount in container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = mount.get("mountPath").and_then(Value::as_str).unwrap_or("");
            if path.to_ascii_lowercase().contains("serviceaccount") {
                continue;
            }
            // `agent-service-account-token-volume-name`'s volume is mounted by the agent
            // containers already: a second mount of it would make the Pod invalid.
            let volume = mount.get("name").and_then(Value::as_str);
            if plan
                .token_volume
                .as_ref()
                .is_some_and(|token| Some(token.name.as_str()) == volume)
            {
                continue;
            }
            if own
                .iter()
                .any(|p| p.trim_end_matches('/') == path.trim_end_matches('/'))
            {
                return Err(error(
                    annotation,
                    format!(
                        "container {source:?} mounts something at {path}, where the agent's \
                         own volume is"
                    ),
                ));
            }
            copied.push(mount.clone());
        }
        plan.copied_mounts = copied;
    }
    if let Some(token) = &mut plan.token_volume {
        let annotation = "vault.hashicorp.com/agent-service-account-token-volume-name";
        let Some(volume) = spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|v| name_of(v) == Some(token.name.as_str()))
        else {
            return Err(error(
                annotation,
                format!("the Pod has no volume named {:?}", token.name),
            ));
        };
        let Some(path) = volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|source| {
                source
                    .pointer("/serviceAccountToken/path")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
            })
        else {
            return Err(error(
                annotation,
                format!(
                    "volume {:?} is not a projected volume with a serviceAccountToken source",
                    token.name
                ),
            ));
        };
        // Where an app container mounts it, else vault-k8s's default.
        token.mount_path = containers
            .iter()
            .filter_map(|c| c.get("volumeMounts").and_then(Value::as_array))
            .flatten()
            .find(|m| name_of(m) == Some(token.name.as_str()))
            .and_then(|m| m.get("mountPath").and_then(Value::as_str))
            .unwrap_or(super::plan::TOKEN_VOLUME_DEFAULT_MOUNT)
            .trim_end_matches('/')
            .to_string();
        // An auth-config-token-path annotation wins, as in vault-k8s.
        plan.auth_config
            .entry("token_path".to_string())
            .or_insert_with(|| format!("{}/{}", token.mount_path, path.trim_start_matches('/')));
    }
    Ok(())
}

/// Adds the plan's containers and volumes to `spec`; refuses name clashes.
pub(crate) fn apply(plan: &Plan, spec: &mut Map<String, Value>) -> Result<(), InjectError> {
    if spec.get("automountServiceAccountToken") == Some(&Value::Bool(false))
        && plan.config_map.is_none()
        && !plan.auth_config.contains_key("token_path")
    {
        return Err(error(
            &plan.trigger,
            "the Pod sets automountServiceAccountToken: false, but the agent logs in to Vault \
             with the ServiceAccount token: remove it (or set it to true)",
        ));
    }
    let new_volumes = volumes(plan);
    let existing_volumes: Vec<String> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|v| name_of(v).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for volume in &new_volumes {
        let name = name_of(volume).unwrap_or_default();
        if existing_volumes.iter().any(|v| v == name) {
            return Err(error(
                &plan.trigger,
                format!(
                    "the Pod already has a volume named {name:?}, which the injection adds: rename it"
                ),
            ));
        }
    }
    let mut all_names: Vec<String> = Vec::new();
    for key in ["containers", "initContainers"] {
        if let Some(list) = spec.get(key).and_then(Value::as_array) {
            all_names.extend(list.iter().filter_map(|c| name_of(c).map(str::to_string)));
        }
    }
    for name in [plan.names.agent, plan.names.init, plan.names.proxy] {
        if all_names.iter().any(|n| n == name) {
            return Err(error(
                &plan.trigger,
                format!(
                    "the Pod already has a container named {name:?}, which the injection adds: rename it"
                ),
            ));
        }
    }
    // Which app containers get the shared volume.
    let app_names: Vec<String> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|c| name_of(c).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let chosen: Vec<String> = match &plan.containers {
        None => app_names.clone(),
        Some(names) => {
            let annotation = match plan.vocabulary {
                Vocabulary::Own => "pki-sidecar.io/containers",
                Vocabulary::Vault => "vault.hashicorp.com/agent-inject-containers",
            };
            for name in names {
                if !app_names.iter().any(|n| n == name) {
                    return Err(error(
                        annotation,
                        format!(
                            "the Pod has no container named {name:?} (it has: {})",
                            app_names.join(", ")
                        ),
                    ));
                }
            }
            names.clone()
        }
    };
    let mut shared: Vec<(&str, &str)> = vec![(&plan.secrets_volume, &plan.secrets_path)];
    shared.extend(
        plan.custom_volumes
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_str())),
    );
    let add_mount = |container: &mut Value| -> Result<(), InjectError> {
        let name = name_of(container).unwrap_or_default().to_string();
        let Some(object) = container.as_object_mut() else {
            return Ok(());
        };
        let mounts = array(object, "volumeMounts");
        for (volume, path) in &shared {
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(*path))
            {
                return Err(error(
                    &plan.trigger,
                    format!(
                        "container {name:?} already mounts something at {path}, where the \
                         injected files go"
                    ),
                ));
            }
            mounts.push(match plan.vocabulary {
                Vocabulary::Own => {
                    json!({ "name": volume, "mountPath": path, "readOnly": true })
                }
                Vocabulary::Vault => json!({ "name": volume, "mountPath": path }),
            });
        }
        Ok(())
    };
    if let Some(Value::Array(list)) = spec.get_mut("containers") {
        for container in list.iter_mut() {
            if name_of(container).is_some_and(|n| chosen.iter().any(|c| c == n)) {
                add_mount(container)?;
            }
        }
    }
    if plan.mount_in_init_containers
        && plan.pre_populate
        && let Some(Value::Array(list)) = spec.get_mut("initContainers")
    {
        for container in list.iter_mut() {
            add_mount(container)?;
        }
    }
    if let Some(share) = plan.share_process_namespace {
        if share && spec.get("shareProcessNamespace") == Some(&Value::Bool(false)) {
            return Err(error(
                "vault.hashicorp.com/agent-share-process-namespace",
                "the Pod sets shareProcessNamespace: false; refusing to turn it on",
            ));
        }
        spec.insert("shareProcessNamespace".into(), share.into());
    }
    array(spec, "volumes").extend(new_volumes);
    if plan.pre_populate {
        let mut init = init_container(plan);
        patch_container(
            &mut init,
            plan.json_patches.1.as_deref(),
            "agent-init-json-patch",
        )?;
        let list = array(spec, "initContainers");
        if plan.init_first {
            list.insert(0, init);
        } else {
            list.push(init);
        }
    }
    let containers = array(spec, "containers");
    if !plan.pre_populate_only {
        let mut agent = agent_container(plan);
        patch_container(
            &mut agent,
            plan.json_patches.0.as_deref(),
            "agent-json-patch",
        )?;
        containers.push(agent);
    }
    if let Some(proxy) = &plan.proxy {
        containers.push(proxy_container(plan, proxy));
    }
    Ok(())
}
