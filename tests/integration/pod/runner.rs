//! The Pod runner: any Pod object run on one machine as a kubelet and a container runtime
//! would, without Kubernetes.
//!
//! # Use
//!
//! ```ignore
//! use crate::pod::runner::{Inputs, PodHarness, PodSpec, pod_of_workload, yaml_documents};
//!
//! // A Pod (or a workload's Pod template with its `metadata`) as JSON, e.g. the webhook's
//! // patched Pod, and the objects it refers to (ConfigMaps, Secrets, ServiceAccounts).
//! let documents = yaml_documents(&fixture_text);
//! let pod = pod_of_workload(&documents[0]);   // a Deployment's Pod (a Pod stays as it is)
//! let mut inputs = Inputs::from_manifests(&documents);
//! inputs.vault_address = "https://vault.example".into(); // the address the injector wrote
//! let spec = PodSpec::from_pod(&pod, &inputs);
//! let mut harness = PodHarness::start(&spec); // init containers, containers, readiness
//! let ip = harness.pod_ip();                  // curl https://<ip>:PORT/ from the root namespace
//! let certs = harness.volume("tls");         // the host directory behind an emptyDir
//! let pid = harness.pid("app");               // /proc/PID/status: the container's uid
//! assert!(harness.failing_probes(&spec).is_empty(), "{}", harness.logs());
//! harness.stop();                             // SIGTERM, exit 0 within grace, nothing left
//! ```
//!
//! [`PodSpec::render`] reads `kubectl kustomize DIR` (one Deployment, its ConfigMaps, its
//! ServiceAccount and its PodMonitor) into the same [`PodSpec`]. A test may edit a
//! [`PodSpec`] (its public fields, [`PodSpec::config_map_entry`]) before starting it.
//!
//! # What the Pod may use
//!
//! - **Containers and init containers**, any names. Init containers run one after the other,
//!   each to completion, before any container starts; a non-zero exit (or one still running after
//!   [`STARTUP_LIMIT`]) fails [`PodHarness::start`] with its log, where a kubelet would retry
//!   forever. An init container with `restartPolicy: Always` (a native sidecar) is started in its
//!   turn and left running once its startup probe passes. Containers then start in manifest
//!   order; [`PodHarness::events`] records when each started and exited, with the files the
//!   Pod's emptyDirs held at each start.
//! - **The image**: every image is pki-sidecar's: `ENTRYPOINT ["/pki-sidecar"]`,
//!   `CMD ["--help"]`, `USER 65532:65532`. `command` replaces the entrypoint and `args` the
//!   command, as in Kubernetes, with `$(VAR)` references expanded; `/pki-sidecar` as the first
//!   word (also in exec probes) is this build's binary; any other first word is found in the
//!   host's `PATH` (e.g. `sh`, `curl`). `workingDir` is honoured.
//! - **Environment**: `envFrom` ConfigMaps and Secrets, then `env` with `value` or `valueFrom`
//!   (`fieldRef` to `metadata.name`, `metadata.namespace`, `spec.serviceAccountName`,
//!   `status.podIP`, `status.hostIP`; `configMapKeyRef`; `secretKeyRef`), after `PATH` and
//!   `HOSTNAME` (the Pod's name). Anything else panics naming the container and variable.
//! - **Security context**: `runAsUser`/`runAsGroup` of the container, else of the Pod, else the
//!   image's; the Pod's `fsGroup` and `supplementalGroups` as supplementary groups of every
//!   container (`setpriv --groups`); `readOnlyRootFilesystem` per container; no capabilities
//!   and `no_new_privs` always. Root (uid 0) is refused: a container shares the host's files.
//! - **Volumes**: `emptyDir` (any medium: a host directory, group-owned by the fsGroup with the
//!   setgid bit, mode 2777), `configMap` and `secret` (with `items`, `defaultMode`, `mode` and
//!   `optional`; data from [`Inputs`]), `projected` (serviceAccountToken, configMap, secret and
//!   downwardAPI namespace sources), and the ServiceAccount token at the kubelet's path when
//!   automounted and no volume already covers that path. Mounts honour `readOnly` and
//!   `subPath`. Any other volume kind panics naming the volume.
//! - **Probes**: `httpGet` (port by number or by a name of the same container's ports),
//!   `tcpSocket` and `exec` (killed after [`EXEC_LIMIT`]). [`PodHarness::start`] returns once
//!   every startup and readiness probe of every running container passes;
//!   [`PodHarness::failing_probes`] runs all of them (liveness too) once.
//! - **Metrics**: [`Inputs::metrics_endpoints`], else every container port whose name contains
//!   `metrics` at `/metrics`; [`PodHarness::start_prometheus`] scrapes them.
//!
//! # How
//!
//! - **Network**: a network namespace of the Pod's own (`ip netns add`), `lo` up and a veth pair
//!   to the root namespace (`eth0` inside, private 10.x addresses unique to the test run), with
//!   the Pod's sysctls set inside it (e.g. `net.ipv4.ip_unprivileged_port_start=0`, which is per
//!   namespace).
//! - **Filesystem**: each container is `ip netns exec NS unshare --mount --propagation private
//!   sh -c SCRIPT`. The script lays a copy-on-write overlay (upper layer on a tmpfs private to
//!   the container) over each top-level directory a mount lands in (`/etc`, `/home`, `/run` — so
//!   the mount points can be created without touching the host), bind-mounts the volumes at the
//!   manifest's paths, then (with `readOnlyRootFilesystem`) makes `/` and the overlays read-only
//!   and finally `exec setpriv` to the container's uid/gid and groups with no capabilities and
//!   `no_new_privs`. Every exec keeps the same pid, so the harness signals the binary itself and
//!   [`PodHarness::pid`] is the process to inspect. The host's real `/etc`, `/home` and `/run`
//!   are never modified. The one trace on the host: a mount under a top-level directory the host
//!   lacks (vault-k8s's `/vault/secrets`) needs that directory to overlay, so it is created
//!   empty while a harness uses it and removed after ([`TOP_LEVELS`]). Without `readOnlyRootFilesystem` the rest of `/` is the host's, writable
//!   where the host lets the container's user write.
//! - **Vault**: every `VAULT_ADDR` variable, and every occurrence of [`Inputs::vault_address`] in
//!   environment values and in ConfigMap and Secret files, becomes `http://<root side of the
//!   veth>:<port>`, a TCP forwarder in this process to the test bed's OpenBao (which listens on
//!   127.0.0.1 in the root namespace and speaks plain http), or to [`PodSpec::vault_target`].
//! - **Probes**: httpGet and tcpSocket probes are sent from the root namespace to the Pod's IP,
//!   as a kubelet does; exec probes run in the container's namespaces, as its user.
//!
//! Ignored: `image` (every image is pki-sidecar's, see above), `resources`, `lifecycle` hooks,
//! `restartPolicy` of containers (nothing is restarted: an exit fails the test), seccomp.
//!
//! Stood in for: Kubernetes itself (the TokenReview API answered by the bed's stand-in, a JWT
//! whose signature nobody checks as the ServiceAccount token), the image (the host's root
//! filesystem with the host's binary instead of distroless with `/pki-sidecar`), the in-memory
//! emptyDirs (host temp directories), seccomp and resource limits (not applied).
//!
//! Teardown: [`PodHarness::stop`] sends SIGTERM to every running container at once (native
//! sidecars too, where a kubelet would stop them after the containers) and asserts they exit 0
//! within the grace period, that no process is left in the Pod's namespace, and that the
//! namespace, the veth pair and Prometheus are gone; `Drop` does the same on a panic. If the
//! test binary is killed outright, `setpriv --pdeathsig=KILL` ends the containers and
//! Prometheus, and a watchdog shell removes the namespace and the veth pair.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nix::sys::signal::Signal;
use serde_json::{Value as Json, json};

use crate::deploy::{kind, rendered};
use crate::util::{self, bao};

/// Where a kubelet mounts the ServiceAccount token.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The image's `ENTRYPOINT`, `CMD` and `USER` (the Containerfile's).
const IMAGE_ENTRYPOINT: &str = "/pki-sidecar";
const IMAGE_CMD: &str = "--help";
const IMAGE_USER: (u32, u32) = (65532, 65532);
/// The distroless image's `PATH` (also what `ip`, `unshare` and `setpriv` are found with).
const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long init containers and readiness may take: the agent usually needs well under a second.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// How long an exec (probe) may run: a kubelet's timeoutSeconds, generous for a busy machine.
pub const EXEC_LIMIT: Duration = Duration::from_secs(30);
/// The Pod's default terminationGracePeriodSeconds.
const TERMINATION_GRACE: Duration = Duration::from_secs(30);
/// The volume name of the automounted ServiceAccount token.
const TOKEN_VOLUME: &str = "kube-api-access";

// ---------------------------------------------------------------------------------------------
// What the Pod is given besides itself

/// The objects a Pod refers to, which a cluster would hold: passed alongside the Pod object.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// ConfigMap name → key → value.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name → key → value (decoded).
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The namespace when the Pod's metadata names none.
    pub namespace: String,
    /// ServiceAccount name → its `automountServiceAccountToken` (a ServiceAccount absent here
    /// automounts, Kubernetes' default).
    pub service_accounts: BTreeMap<String, bool>,
    /// What Prometheus scrapes, (port, path); `None`: every container port whose name contains
    /// `metrics`, at `/metrics`.
    pub metrics_endpoints: Option<Vec<(u16, String)>>,
    /// The Vault address the Pod was given, rewritten to the harness' forwarder wherever it
    /// appears (environment values, ConfigMap and Secret files). Empty: no rewriting beyond
    /// `VAULT_ADDR`.
    pub vault_address: String,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
            namespace: bao::NAMESPACE.to_owned(),
            service_accounts: BTreeMap::new(),
            metrics_endpoints: None,
            vault_address: "https://vault.home".to_owned(),
        }
    }
}

impl Inputs {
    /// The ConfigMaps (`data`), Secrets (`data` decoded from base64, then `stringData`) and
    /// ServiceAccounts among `documents`; everything else is ignored.
    pub fn from_manifests(documents: &[Json]) -> Inputs {
        let mut inputs = Inputs::default();
        for document in documents {
            let name = || text(&document["metadata"]["name"], "metadata.name").to_owned();
            match document["kind"].as_str() {
                Some("ConfigMap") => {
                    let data = entries(&document["data"])
                        .map(|(k, v)| (k.clone(), text(v, k).to_owned()))
                        .collect();
                    inputs.config_maps.insert(name(), data);
                }
                Some("Secret") => {
                    let mut data: BTreeMap<String, Vec<u8>> = entries(&document["data"])
                        .map(|(k, v)| {
                            let decoded = base64::engine::general_purpose::STANDARD
                                .decode(text(v, k))
                                .unwrap_or_else(|e| panic!("Secret {}: {k}: {e}", name()));
                            (k.clone(), decoded)
                        })
                        .collect();
                    data.extend(
                        entries(&document["stringData"])
                            .map(|(k, v)| (k.clone(), text(v, k).as_bytes().to_vec())),
                    );
                    inputs.secrets.insert(name(), data);
                }
                Some("ServiceAccount") => {
                    let automount = document["automountServiceAccountToken"].as_bool();
                    inputs
                        .service_accounts
                        .insert(name(), automount != Some(false));
                }
                _ => {}
            }
        }
        inputs
    }
}

// ---------------------------------------------------------------------------------------------
// What the Pod says

/// The documents of a YAML stream (`---`-separated), as JSON values.
pub fn yaml_documents(text: &str) -> Vec<Json> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|document| Json::deserialize(document).expect("a YAML document"))
        .filter(|document| !document.is_null())
        .collect()
}

/// The Pod a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job; a CronJob's job
/// template) would create: its Pod template with the workload's namespace and the name
/// `<workload>-test`. A Pod is returned as it is.
pub fn pod_of_workload(workload: &Json) -> Json {
    if workload["kind"] == "Pod" {
        return workload.clone();
    }
    let template = if workload["kind"] == "CronJob" {
        &workload["spec"]["jobTemplate"]["spec"]["template"]
    } else {
        &workload["spec"]["template"]
    };
    assert!(
        template["spec"].is_object(),
        "no Pod template in {workload}"
    );
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["name"] = json!(format!(
        "{}-test",
        text(&workload["metadata"]["name"], "the workload's name")
    ));
    if let Some(namespace) = workload["metadata"]["namespace"].as_str() {
        metadata["namespace"] = json!(namespace);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

/// A Pod resolved to what the harness runs. Tests may edit it (e.g. a ConfigMap's data) before
/// [`PodHarness::start`].
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    /// Volume name → its manifest entry.
    pub volumes: BTreeMap<String, Json>,
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub fs_group: Option<u32>,
    /// The supplementary groups of every container: the fsGroup, then `supplementalGroups`.
    pub groups: Vec<u32>,
    pub sysctls: Vec<(String, String)>,
    /// Whether the kubelet would mount the ServiceAccount token.
    pub automount_token: bool,
    pub service_account: String,
    /// What Prometheus scrapes: (port, path).
    pub metrics_endpoints: Vec<(u16, String)>,
    /// See [`Inputs::vault_address`].
    pub vault_address: String,
    /// The OpenBao the Pod's Vault address leads to (plain http on this host); `None`: the
    /// shared bed ([`bao::bed`]). A test that configured an OpenBao of its own (e.g. with
    /// `deploy/vault/setup.sh`, using the bed's TokenReview stand-in) sets it before
    /// [`PodHarness::start`].
    pub vault_target: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    /// `command` and `args` resolved against the image (before `$(VAR)` expansion).
    pub argv: Vec<String>,
    /// `envFrom`, then `env`, in the manifest's order (later ones win).
    pub env: Vec<(String, EnvValue)>,
    pub mounts: Vec<MountSpec>,
    pub probes: Vec<Probe>,
    /// Named container ports.
    pub ports: BTreeMap<String, u16>,
    pub run_as_user: u32,
    pub run_as_group: u32,
    pub read_only_root: bool,
    /// `workingDir` (default `/`).
    pub working_dir: Option<String>,
    /// An init container with `restartPolicy: Always` (a native sidecar): started in its turn
    /// among the init containers, then left running beside the containers.
    pub sidecar: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Literal(String),
    /// `status.podIP`, known once the network exists.
    PodIp,
    /// `status.hostIP`: the root side of the veth.
    HostIp,
}

#[derive(Debug, Clone)]
pub struct MountSpec {
    pub volume: String,
    pub path: String,
    pub sub_path: Option<String>,
    pub read_only: bool,
}

#[derive(Debug, Clone)]
pub struct Probe {
    /// `readinessProbe`, `livenessProbe` or `startupProbe`.
    pub kind: &'static str,
    pub action: ProbeAction,
}

#[derive(Debug, Clone)]
pub enum ProbeAction {
    Http { path: String, port: u16 },
    Tcp { port: u16 },
    Exec { argv: Vec<String> },
}

impl PodSpec {
    /// `kubectl kustomize DIR`, read for its one Deployment's Pod, with the rendered ConfigMaps,
    /// Secrets and ServiceAccounts as [`Inputs`] and the PodMonitor's endpoints as the metrics
    /// endpoints.
    pub fn render(dir: &str) -> PodSpec {
        let yaml = rendered(dir);
        let documents: Vec<Json> = yaml
            .iter()
            .map(|d| serde_json::to_value(d).expect("a manifest as JSON"))
            .collect();
        let deployments: Vec<&Json> = documents
            .iter()
            .filter(|d| d["kind"] == "Deployment")
            .collect();
        assert_eq!(deployments.len(), 1, "one Deployment in {dir}");
        let pod = pod_of_workload(deployments[0]);
        let inputs = Inputs::from_manifests(&documents);
        let mut spec = PodSpec::from_pod(&pod, &inputs);
        assert!(
            inputs.service_accounts.contains_key(&spec.service_account),
            "the Pod's ServiceAccount is in the manifests"
        );

        let monitors = kind(&yaml, "PodMonitor");
        assert_eq!(monitors.len(), 1, "one PodMonitor");
        let monitor = serde_json::to_value(monitors[0]).unwrap();
        spec.metrics_endpoints = monitor["spec"]["podMetricsEndpoints"]
            .as_array()
            .expect("podMetricsEndpoints")
            .iter()
            .map(|e| {
                let name = text(&e["port"], "PodMonitor port");
                let port = spec
                    .containers
                    .iter()
                    .find_map(|c| c.ports.get(name))
                    .unwrap_or_else(|| panic!("no container port named {name}"));
                (*port, text(&e["path"], "PodMonitor path").to_owned())
            })
            .collect();
        spec
    }

    /// `pod`: a Pod, or a workload's Pod template with `metadata` (its `name`, else its
    /// `generateName` + `test`, is the Pod's name and `HOSTNAME`).
    pub fn from_pod(pod: &Json, inputs: &Inputs) -> PodSpec {
        let metadata = &pod["metadata"];
        let name = match (metadata["name"].as_str(), metadata["generateName"].as_str()) {
            (Some(name), _) => name.to_owned(),
            (None, Some(prefix)) => format!("{prefix}test"),
            (None, None) => "pod-test".to_owned(),
        };
        let namespace = metadata["namespace"]
            .as_str()
            .unwrap_or(&inputs.namespace)
            .to_owned();
        let spec = &pod["spec"];
        assert!(spec.is_object(), "the Pod has no spec: {pod}");
        let service_account = spec["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let automount_token = match spec["automountServiceAccountToken"].as_bool() {
            Some(value) => value,
            None => inputs
                .service_accounts
                .get(&service_account)
                .copied()
                .unwrap_or(true),
        };
        let security = &spec["securityContext"];
        let fs_group = id(&security["fsGroup"], "securityContext.fsGroup");
        let mut groups: Vec<u32> = fs_group.into_iter().collect();
        for group in security["supplementalGroups"]
            .as_array()
            .into_iter()
            .flatten()
        {
            groups.extend(id(group, "supplementalGroups"));
        }
        let sysctls = security["sysctls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    text(&s["name"], "sysctl").to_owned(),
                    text(&s["value"], "sysctl").to_owned(),
                )
            })
            .collect();
        let volumes: BTreeMap<String, Json> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (text(&v["name"], "volume name").to_owned(), v.clone()))
            .collect();
        for (volume, manifest) in &volumes {
            let known = ["emptyDir", "configMap", "secret", "projected"]
                .iter()
                .any(|kind| manifest[*kind].is_object());
            assert!(
                known,
                "volume {volume}: unsupported kind (the runner knows emptyDir, configMap, secret \
                 and projected): {manifest}"
            );
        }
        let context = Context {
            pod_name: &name,
            namespace: &namespace,
            service_account: &service_account,
            inputs,
            pod_security: security,
        };
        let list = |key: &str| -> Vec<ContainerSpec> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| context.container(c))
                .collect()
        };
        let init_containers = list("initContainers");
        let containers = list("containers");
        assert!(!containers.is_empty(), "the Pod has no containers");
        let mut names = BTreeSet::new();
        for container in init_containers.iter().chain(&containers) {
            assert!(
                names.insert(container.name.clone()),
                "two containers named {}",
                container.name
            );
        }
        let metrics_endpoints = inputs.metrics_endpoints.clone().unwrap_or_else(|| {
            containers
                .iter()
                .flat_map(|c| &c.ports)
                .filter(|(name, _)| name.contains("metrics"))
                .map(|(_, port)| (*port, "/metrics".to_owned()))
                .collect()
        });
        PodSpec {
            name,
            namespace,
            init_containers,
            containers,
            volumes,
            config_maps: inputs.config_maps.clone(),
            secrets: inputs.secrets.clone(),
            fs_group,
            groups,
            sysctls,
            automount_token,
            service_account,
            metrics_endpoints,
            vault_address: inputs.vault_address.clone(),
            vault_target: None,
        }
    }

    /// Container (not init container) `name`.
    pub fn container(&self, name: &str) -> &ContainerSpec {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// One value of the ConfigMap behind `volume`, to edit before [`PodHarness::start`].
    pub fn config_map_entry(&mut self, volume: &str, key: &str) -> &mut String {
        let map = text(&self.volumes[volume]["configMap"]["name"], "configMap.name").to_owned();
        self.config_maps
            .get_mut(&map)
            .and_then(|data| data.get_mut(key))
            .unwrap_or_else(|| panic!("no {key} in ConfigMap {map}"))
    }

    fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(&self.containers)
    }

    /// What keeps running once started: native sidecars, then the containers.
    pub fn running_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers
            .iter()
            .filter(|c| c.sidecar)
            .chain(&self.containers)
    }
}

/// What resolving one container needs from its Pod.
struct Context<'a> {
    pod_name: &'a str,
    namespace: &'a str,
    service_account: &'a str,
    inputs: &'a Inputs,
    pod_security: &'a Json,
}

impl Context<'_> {
    fn container(&self, manifest: &Json) -> ContainerSpec {
        let name = text(&manifest["name"], "container name").to_owned();
        let strings = |key: &str| -> Option<Vec<String>> {
            manifest[key].as_array().map(|items| {
                items
                    .iter()
                    .map(|a| text(a, &format!("{name}: {key}")).to_owned())
                    .collect()
            })
        };
        // Kubernetes: `command` replaces ENTRYPOINT; `args` replaces CMD.
        let argv = match (strings("command"), strings("args")) {
            (Some(command), args) => [command, args.unwrap_or_default()].concat(),
            (None, Some(args)) => [vec![IMAGE_ENTRYPOINT.to_owned()], args].concat(),
            (None, None) => vec![IMAGE_ENTRYPOINT.to_owned(), IMAGE_CMD.to_owned()],
        };

        let mut env = Vec::new();
        for source in manifest["envFrom"].as_array().into_iter().flatten() {
            let prefix = source["prefix"].as_str().unwrap_or("");
            if let Some(map) = source["configMapRef"]["name"].as_str() {
                match self.inputs.config_maps.get(map) {
                    Some(data) => env.extend(
                        data.iter()
                            .map(|(k, v)| (format!("{prefix}{k}"), EnvValue::Literal(v.clone()))),
                    ),
                    None => assert!(
                        source["configMapRef"]["optional"] == true,
                        "{name}: envFrom ConfigMap {map} not given"
                    ),
                }
            } else if let Some(secret) = source["secretRef"]["name"].as_str() {
                match self.inputs.secrets.get(secret) {
                    Some(data) => env.extend(data.iter().map(|(k, v)| {
                        let value = String::from_utf8(v.clone()).expect("UTF-8 Secret value");
                        (format!("{prefix}{k}"), EnvValue::Literal(value))
                    })),
                    None => assert!(
                        source["secretRef"]["optional"] == true,
                        "{name}: envFrom Secret {secret} not given"
                    ),
                }
            } else {
                panic!("{name}: unsupported envFrom {source}");
            }
        }
        for variable in manifest["env"].as_array().into_iter().flatten() {
            let key = text(&variable["name"], "env name").to_owned();
            if let Some(value) = variable["value"].as_str() {
                env.push((key, EnvValue::Literal(value.to_owned())));
            } else if let Some(value) = self.value_from(&name, &key, &variable["valueFrom"]) {
                env.push((key, value));
            } else if variable.get("valueFrom").is_none() {
                // No value at all: the empty string, as Kubernetes.
                env.push((key, EnvValue::Literal(String::new())));
            }
        }

        let mounts = manifest["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| MountSpec {
                volume: text(&m["name"], "volumeMount name").to_owned(),
                path: text(&m["mountPath"], "mountPath").to_owned(),
                sub_path: m["subPath"].as_str().map(str::to_owned),
                read_only: m["readOnly"] == true,
            })
            .collect();

        let mut ports = BTreeMap::new();
        for port in manifest["ports"].as_array().into_iter().flatten() {
            let number = u16::try_from(port["containerPort"].as_u64().expect("containerPort"))
                .expect("a port number");
            if let Some(port_name) = port["name"].as_str() {
                ports.insert(port_name.to_owned(), number);
            }
        }
        let port = |value: &Json, kind: &str| -> u16 {
            match value {
                Json::Number(n) => u16::try_from(n.as_u64().unwrap()).unwrap(),
                Json::String(port_name) => *ports.get(port_name).unwrap_or_else(|| {
                    panic!("{name} {kind}: no port named {port_name} in this container")
                }),
                other => panic!("{name} {kind}: port {other}"),
            }
        };
        let mut probes = Vec::new();
        for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let probe = &manifest[kind];
            let action = if probe["httpGet"].is_object() {
                let get = &probe["httpGet"];
                assert!(
                    get["scheme"].as_str().unwrap_or("HTTP") == "HTTP",
                    "{name} {kind}: only HTTP httpGet probes are supported"
                );
                ProbeAction::Http {
                    path: get["path"].as_str().unwrap_or("/").to_owned(),
                    port: port(&get["port"], kind),
                }
            } else if probe["tcpSocket"].is_object() {
                ProbeAction::Tcp {
                    port: port(&probe["tcpSocket"]["port"], kind),
                }
            } else if let Some(command) = probe["exec"]["command"].as_array() {
                ProbeAction::Exec {
                    argv: command
                        .iter()
                        .map(|a| text(a, "exec command").to_owned())
                        .collect(),
                }
            } else {
                assert!(probe.is_null(), "{name}: unsupported {kind}: {probe}");
                continue;
            };
            probes.push(Probe { kind, action });
        }

        let security = &manifest["securityContext"];
        let either = |key: &str| {
            let what = format!("{name}: securityContext.{key}");
            id(&security[key], &what).or_else(|| id(&self.pod_security[key], &what))
        };
        let run_as_user = either("runAsUser").unwrap_or(IMAGE_USER.0);
        let run_as_group = either("runAsGroup").unwrap_or(IMAGE_USER.1);
        assert!(
            run_as_user != 0,
            "{name}: runs as root; the runner refuses (its containers share the host's files)"
        );
        ContainerSpec {
            name,
            argv,
            env,
            mounts,
            probes,
            ports,
            run_as_user,
            run_as_group,
            read_only_root: security["readOnlyRootFilesystem"] == true,
            working_dir: manifest["workingDir"].as_str().map(str::to_owned),
            sidecar: manifest["restartPolicy"] == "Always",
        }
    }

    /// `valueFrom`; `None` for an optional reference to something missing (no variable).
    fn value_from(&self, container: &str, key: &str, from: &Json) -> Option<EnvValue> {
        if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            return Some(match path {
                "metadata.name" => EnvValue::Literal(self.pod_name.to_owned()),
                "metadata.namespace" => EnvValue::Literal(self.namespace.to_owned()),
                "spec.serviceAccountName" => EnvValue::Literal(self.service_account.to_owned()),
                "status.podIP" => EnvValue::PodIp,
                "status.hostIP" => EnvValue::HostIp,
                other => panic!("{container}: env {key}: fieldRef {other} is not supported"),
            });
        }
        let (kind, reference) = if from["configMapKeyRef"].is_object() {
            ("ConfigMap", &from["configMapKeyRef"])
        } else if from["secretKeyRef"].is_object() {
            ("Secret", &from["secretKeyRef"])
        } else {
            panic!("{container}: env {key}: unsupported valueFrom {from}");
        };
        let object = text(&reference["name"], "key reference name");
        let wanted = text(&reference["key"], "key reference key");
        let value = if kind == "ConfigMap" {
            self.inputs
                .config_maps
                .get(object)
                .and_then(|d| d.get(wanted))
                .cloned()
        } else {
            self.inputs
                .secrets
                .get(object)
                .and_then(|d| d.get(wanted))
                .map(|v| String::from_utf8(v.clone()).expect("UTF-8 Secret value"))
        };
        match value {
            Some(value) => Some(EnvValue::Literal(value)),
            None if reference["optional"] == true => None,
            None => panic!("{container}: env {key}: {kind} {object} has no key {wanted}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The harness

/// Something that happened to a container, in order.
#[derive(Debug, Clone)]
pub struct Event {
    pub container: String,
    pub at: Instant,
    pub what: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    /// The container's process was spawned; `files` lists what the Pod's emptyDirs held just
    /// before (`VOLUME/RELATIVE/PATH`, sorted).
    Started { files: Vec<String> },
    /// An init container finished (running containers are not watched).
    Exited(ExitStatus),
}

/// The Pod running: its network namespace, its containers, and what the test added around it
/// (the forwarder to OpenBao, Prometheus). Everything is torn down by [`PodHarness::stop`],
/// which checks that it went well, or by `Drop` (on a panic), which does the same quietly.
pub struct PodHarness {
    network: Network,
    /// Runs the forwarder to OpenBao and the tests' own async clients.
    runtime: Option<tokio::runtime::Runtime>,
    containers: Vec<RunningContainer>,
    /// Every container's log, init containers' included, in start order.
    logs: Vec<(String, PathBuf)>,
    events: Vec<Event>,
    prometheus: Option<Child>,
    /// What [`PodHarness::exec_in_container`] needs to build a container's command.
    launch: BTreeMap<String, ContainerLaunch>,
    volumes: BTreeMap<String, PathBuf>,
    /// The emptyDir volumes' names.
    empty_dirs: Vec<String>,
    binary: PathBuf,
    vault_addr: String,
    /// Top-level directories this harness holds in [`TOP_LEVELS`].
    top_levels: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

/// Top-level directories created on the host for mount points under a directory the host does
/// not have (the Vault Agent Injector's `/vault`): an overlay needs an existing directory to
/// cover, and `/` itself cannot be overlaid. Each is created empty (root, 0755) when a harness
/// first needs it, counted per running harness, and removed when the last one stops; a
/// directory that was already there is never counted nor removed.
static TOP_LEVELS: std::sync::Mutex<BTreeMap<PathBuf, usize>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Makes sure the top-level directory of `target` exists, creating and counting it in
/// [`TOP_LEVELS`] when it does not (or when another harness created it); returns it when
/// counted, for [`release_top_level`].
fn hold_top_level(target: &str) -> Option<PathBuf> {
    let Some(Component::Normal(top)) = Path::new(target).components().nth(1) else {
        return None;
    };
    let top = Path::new("/").join(top);
    let mut held = TOP_LEVELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(count) = held.get_mut(&top) {
        *count += 1;
        return Some(top);
    }
    if std::fs::symlink_metadata(&top).is_ok() {
        return None;
    }
    std::fs::create_dir(&top).unwrap_or_else(|e| panic!("create {}: {e}", top.display()));
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
    held.insert(top.clone(), 1);
    Some(top)
}

/// Gives back a directory of [`hold_top_level`]: removed (it is empty: only overlays in the
/// containers' private mount namespaces ever covered it) when no harness holds it any more.
fn release_top_level(top: &Path) -> Option<String> {
    let mut held = TOP_LEVELS.lock().unwrap_or_else(|e| e.into_inner());
    let count = held.get_mut(top)?;
    *count -= 1;
    if *count > 0 {
        return None;
    }
    held.remove(top);
    std::fs::remove_dir(top)
        .err()
        .map(|e| format!("remove {}: {e}", top.display()))
}

struct RunningContainer {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A container's command line, mounts, environment and identity, resolved to this run.
struct ContainerLaunch {
    argv: Vec<String>,
    /// (host source, target path, read-only, is a file).
    mounts: Vec<(PathBuf, String, bool, bool)>,
    env: Vec<(String, String)>,
    user: (u32, u32),
    groups: Vec<u32>,
    read_only_root: bool,
    working_dir: String,
}

impl PodHarness {
    /// Creates the Pod's network namespace, materialises its volumes, runs its init containers
    /// to completion one by one, starts its containers in manifest order, and returns once every
    /// startup and readiness probe passes. Panics (tearing down) with the logs otherwise.
    pub fn start(pod: &PodSpec) -> PodHarness {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("pki-pod-")
            .tempdir()
            .expect("temp dir");
        // Traversable (not listable) by the Pod's users, for a copied binary.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let users: BTreeSet<(u32, u32)> = pod
            .all_containers()
            .map(|c| (c.run_as_user, c.run_as_group))
            .collect();
        let binary = executable_by(util::bin(), &users, dir.path());

        let network = Network::create();
        for (name, value) in &pod.sysctls {
            set_sysctl(&network.name, name, value);
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let bed_address: SocketAddr = pod.vault_target.unwrap_or_else(|| {
            bao::bed()
                .addr()
                .trim_start_matches("http://")
                .parse()
                .expect("the bed's address")
        });
        let forwarder = runtime
            .block_on(tokio::net::TcpListener::bind((network.host_ip, 0)))
            .expect("bind the forwarder on the veth's root side");
        let vault_addr = format!("http://{}", forwarder.local_addr().unwrap());
        runtime.spawn(forward(forwarder, bed_address));

        let mut harness = PodHarness {
            network,
            runtime: Some(runtime),
            containers: Vec::new(),
            logs: Vec::new(),
            events: Vec::new(),
            prometheus: None,
            launch: BTreeMap::new(),
            volumes: BTreeMap::new(),
            empty_dirs: Vec::new(),
            binary,
            vault_addr,
            top_levels: Vec::new(),
            dir,
        };
        harness.materialise_volumes(pod);
        for container in pod.all_containers() {
            let env = harness.environment(pod, container);
            let mut argv: Vec<String> = container.argv.iter().map(|a| expand(a, &env)).collect();
            if argv[0] == IMAGE_ENTRYPOINT {
                argv[0] = harness.binary.display().to_string();
            }
            let launch = ContainerLaunch {
                argv,
                mounts: harness.mounts_of(pod, container),
                env,
                user: (container.run_as_user, container.run_as_group),
                groups: pod.groups.clone(),
                read_only_root: container.read_only_root,
                working_dir: container
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".to_owned()),
            };
            for (_, target, _, _) in &launch.mounts {
                if !harness
                    .top_levels
                    .iter()
                    .any(|t| Path::new(target).starts_with(t))
                    && let Some(top) = hold_top_level(target)
                {
                    harness.top_levels.push(top);
                }
            }
            harness.launch.insert(container.name.clone(), launch);
        }
        for container in &pod.init_containers {
            if container.sidecar {
                // The kubelet starts the next init container once the sidecar has started.
                harness.start_container(&container.name);
                harness.wait_for_probes(&[container], &["startupProbe"]);
            } else {
                harness.run_init_container(&container.name);
            }
        }
        for container in &pod.containers {
            harness.start_container(&container.name);
        }
        let running: Vec<&ContainerSpec> = pod.running_containers().collect();
        harness.wait_for_probes(&running, &["startupProbe", "readinessProbe"]);
        harness
    }

    fn start_container(&mut self, name: &str) {
        let child = self.spawn(name);
        let log = self.logs.last().unwrap().1.clone();
        self.containers.push(RunningContainer {
            name: name.to_owned(),
            child,
            log,
        });
    }

    /// The temp directory of this run (logs, volumes, anything a test writes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pod_ip(&self) -> Ipv4Addr {
        self.network.pod_ip
    }

    /// The Pod IP's port 443.
    pub fn https_address(&self) -> SocketAddr {
        SocketAddr::from((self.pod_ip(), 443))
    }

    /// The Vault address the Pod's containers were given (the forwarder to the bed).
    pub fn vault_addr(&self) -> &str {
        &self.vault_addr
    }

    /// The host directory behind volume `name`.
    pub fn volume(&self, name: &str) -> &Path {
        self.volumes
            .get(name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    }

    /// The pid of running container `name`'s process (the binary itself: every exec kept it).
    pub fn pid(&self, name: &str) -> i32 {
        let container = self
            .containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no running container {name}"));
        container.child.id() as i32
    }

    /// What happened to the containers so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The whole log of container or init container `name`.
    pub fn log(&self, name: &str) -> String {
        let (_, path) = self
            .logs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no container {name} started"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("running").block_on(future)
    }

    /// Runs `argv` in the Pod's network namespace as root, as `ip netns exec` does.
    pub fn exec_in_namespace(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.network.name])
            .args(argv)
            .output()
            .expect("run ip netns exec")
    }

    /// Runs `argv` inside container `name` (its network, mounts, environment and user), as a
    /// kubelet runs an exec probe. The image's `/pki-sidecar` is this build's binary.
    /// Killed after [`EXEC_LIMIT`] (every exec keeps the pid, so the kill reaches `argv`).
    pub fn exec_in_container(&self, name: &str, argv: &[String]) -> Output {
        let mut argv = argv.to_vec();
        if argv[0] == IMAGE_ENTRYPOINT {
            argv[0] = self.binary.display().to_string();
        }
        let child = self
            .container_command(name, &argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ip netns exec");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let killer = std::thread::spawn(move || {
            if finished.recv_timeout(EXEC_LIMIT).is_err() {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        });
        let output = child.wait_with_output().expect("wait for ip netns exec");
        let _ = done.send(());
        killer.join().unwrap();
        output
    }

    /// The environment of `container`: the image's, `HOSTNAME`, then its own, resolved to this
    /// run (field references, `$(VAR)`, the Vault address).
    fn environment(&self, pod: &PodSpec, container: &ContainerSpec) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_owned(), IMAGE_PATH.to_owned()),
            ("HOSTNAME".to_owned(), pod.name.clone()),
        ];
        for (key, value) in &container.env {
            let value = match value {
                EnvValue::Literal(text) => expand(text, &env),
                EnvValue::PodIp => self.pod_ip().to_string(),
                EnvValue::HostIp => self.network.host_ip.to_string(),
            };
            let value = if key == "VAULT_ADDR" {
                self.vault_addr.clone()
            } else {
                self.rewrite_vault_address(pod, &value)
            };
            env.push((key.clone(), value));
        }
        env
    }

    fn rewrite_vault_address(&self, pod: &PodSpec, text: &str) -> String {
        if pod.vault_address.is_empty() {
            text.to_owned()
        } else {
            text.replace(&pod.vault_address, &self.vault_addr)
        }
    }

    /// Runs init container `name` to completion; panics with its log unless it exits 0.
    fn run_init_container(&mut self, name: &str) {
        let mut child = self.spawn(name);
        let status = wait_until(&mut child, Instant::now() + STARTUP_LIMIT);
        let log = self.log(name);
        let Some(status) = status else {
            panic!("init container {name} still running after {STARTUP_LIMIT:?}: killed\n{log}");
        };
        self.events.push(Event {
            container: name.to_owned(),
            at: Instant::now(),
            what: EventKind::Exited(status),
        });
        assert!(
            status.success(),
            "init container {name} exited with {status} (a kubelet would restart it and keep \
             the Pod pending); its log:\n{log}"
        );
    }

    /// Spawns container `name` with its log file, recording the event.
    fn spawn(&mut self, name: &str) -> Child {
        let log = self.dir().join(format!("{name}.log"));
        let file = File::create(&log).expect("log file");
        let argv = self.launch[name].argv.clone();
        let mut command = self.container_command(name, &argv);
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let files = self.empty_dir_files();
        let child = command.spawn().expect("spawn ip netns exec");
        self.events.push(Event {
            container: name.to_owned(),
            at: Instant::now(),
            what: EventKind::Started { files },
        });
        self.logs.push((name.to_owned(), log));
        child
    }

    /// `VOLUME/PATH` of every file in the emptyDirs, sorted.
    fn empty_dir_files(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), &name, out);
                } else {
                    out.push(name);
                }
            }
        }
        let mut files = Vec::new();
        for volume in &self.empty_dirs {
            walk(&self.volumes[volume], volume, &mut files);
        }
        files.sort();
        files
    }

    /// `ip netns exec NS unshare --mount --propagation private sh -c SCRIPT`: the script mounts
    /// the container's filesystem view, then `exec setpriv ... ARGV`.
    fn container_command(&self, name: &str, argv: &[String]) -> Command {
        let launch = &self.launch[name];
        let layer = self.dir().join("rootfs-layer");
        std::fs::create_dir_all(&layer).unwrap();
        let mut script = String::from("set -eu\n");
        // Copy-on-write overlays, so mount points can be made without touching the host.
        let mut overlaid = BTreeSet::new();
        for (_, target, _, _) in &launch.mounts {
            overlaid.insert(overlay_root(target));
        }
        script += &format!(
            "mount -t tmpfs -o mode=0755,size=8m pod-rootfs-layer {}\n",
            quote(&layer)
        );
        for root in &overlaid {
            let slug = root.trim_start_matches('/');
            script += &format!(
                "mkdir {upper} {work}\n\
                 mount -t overlay pod-rootfs -o lowerdir={root},upperdir={upper},workdir={work} {root}\n",
                upper = quote(layer.join(format!("{slug}.upper"))),
                work = quote(layer.join(format!("{slug}.work"))),
                root = quote(root),
            );
        }
        for (source, target, read_only, is_file) in &launch.mounts {
            let target = quote(target);
            if *is_file {
                script += &format!("mkdir -p \"$(dirname {target})\"\n: > {target}\n");
            } else {
                script += &format!("mkdir -p {target}\n");
            }
            script += &format!("mount --bind {} {target}\n", quote(source));
            if *read_only {
                script += &format!("mount -o remount,bind,ro {target}\n");
            }
        }
        if launch.read_only_root {
            // `bind` makes these per-mount changes in this namespace only.
            for root in &overlaid {
                script += &format!("mount -o remount,ro {}\n", quote(root));
            }
            script += "mount -o remount,bind,ro /\n";
        }
        // The user, group and supplementary groups; capabilities.drop [ALL],
        // allowPrivilegeEscalation: false; the parent-death signal so that nothing outlives a
        // test binary that was killed.
        let groups = if launch.groups.is_empty() {
            "--clear-groups".to_owned()
        } else {
            let list: Vec<String> = launch.groups.iter().map(u32::to_string).collect();
            format!("--groups={}", list.join(","))
        };
        script += &format!("cd {}\n", quote(&launch.working_dir));
        script += &format!(
            "exec setpriv --reuid={} --regid={} {groups} --inh-caps=-all \
             --bounding-set=-all --no-new-privs --pdeathsig=KILL \"$@\"\n",
            launch.user.0, launch.user.1
        );
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.network.name])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", &script, name])
            .args(argv)
            .current_dir("/")
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Host directories for the Pod's volumes, as a kubelet makes them: emptyDirs writable by
    /// the fsGroup, ConfigMaps and Secrets as files (mode 0644 unless told), the ServiceAccount
    /// token projected.
    fn materialise_volumes(&mut self, pod: &PodSpec) {
        let root = self.dir().join("volumes");
        std::fs::create_dir(&root).unwrap();
        for (name, volume) in &pod.volumes {
            let path = root.join(name);
            std::fs::create_dir(&path).unwrap();
            if volume["emptyDir"].is_object() {
                std::os::unix::fs::chown(&path, Some(0), pod.fs_group).unwrap();
                let mode = if pod.fs_group.is_some() {
                    0o2777
                } else {
                    0o777
                };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                self.empty_dirs.push(name.clone());
            } else if volume["configMap"].is_object() {
                self.write_source(pod, name, &path, "ConfigMap", &volume["configMap"]);
            } else if volume["secret"].is_object() {
                self.write_source(pod, name, &path, "Secret", &volume["secret"]);
            } else if volume["projected"].is_object() {
                self.write_projected(pod, name, &path, &volume["projected"]);
            } else {
                panic!(
                    "volume {name}: unsupported kind (the runner knows emptyDir, configMap, secret and projected): {volume}"
                );
            }
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(
                    std::fs::metadata(&path).unwrap().permissions().mode() | 0o755,
                ),
            )
            .unwrap();
            self.volumes.insert(name.clone(), path);
        }
        if pod.automount_token {
            let path = root.join(TOKEN_VOLUME);
            std::fs::create_dir(&path).unwrap();
            let jwt = bao::service_account_jwt(&pod.namespace, &pod.service_account);
            self.write_file(pod, &path.join("token"), jwt.as_bytes(), 0o644);
            self.write_file(
                pod,
                &path.join("namespace"),
                pod.namespace.as_bytes(),
                0o644,
            );
            let ca = bao::bed().root_ca_pem().as_bytes();
            self.write_file(pod, &path.join("ca.crt"), ca, 0o644);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            self.volumes.insert(TOKEN_VOLUME.to_owned(), path);
        }
    }

    /// A `configMap` or `secret` volume (or projected source): its keys (or `items`) as files.
    fn write_source(&self, pod: &PodSpec, volume: &str, dir: &Path, kind: &str, source: &Json) {
        let object = source["name"]
            .as_str()
            .or(source["secretName"].as_str())
            .unwrap_or_else(|| panic!("volume {volume}: {kind} without a name"));
        let data: Option<BTreeMap<String, Vec<u8>>> = if kind == "ConfigMap" {
            pod.config_maps.get(object).map(|d| {
                d.iter()
                    .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                    .collect()
            })
        } else {
            pod.secrets.get(object).cloned()
        };
        let Some(data) = data else {
            assert!(
                source["optional"] == true,
                "volume {volume}: {kind} {object} not given"
            );
            return;
        };
        let default_mode = mode(&source["defaultMode"]).unwrap_or(0o644);
        match source["items"].as_array() {
            Some(items) => {
                for item in items {
                    let key = text(&item["key"], "items key");
                    let value = data.get(key).unwrap_or_else(|| {
                        panic!("volume {volume}: {kind} {object} has no key {key}")
                    });
                    let relative = text(&item["path"], "items path");
                    let target = dir.join(relative);
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    let mode = mode(&item["mode"]).unwrap_or(default_mode);
                    self.write_file(pod, &target, value, mode);
                }
            }
            None => {
                for (key, value) in &data {
                    self.write_file(pod, &dir.join(key), value, default_mode);
                }
            }
        }
    }

    /// A `projected` volume: ServiceAccount token, ConfigMap, Secret and downwardAPI sources.
    fn write_projected(&self, pod: &PodSpec, volume: &str, dir: &Path, projected: &Json) {
        let default_mode = mode(&projected["defaultMode"]).unwrap_or(0o644);
        for source in projected["sources"].as_array().into_iter().flatten() {
            if source["serviceAccountToken"].is_object() {
                let jwt = bao::service_account_jwt(&pod.namespace, &pod.service_account);
                let relative = text(&source["serviceAccountToken"]["path"], "token path");
                self.write_file(pod, &dir.join(relative), jwt.as_bytes(), default_mode);
            } else if source["configMap"]["name"] == "kube-root-ca.crt"
                && !pod.config_maps.contains_key("kube-root-ca.crt")
            {
                let ca = bao::bed().root_ca_pem().as_bytes();
                self.write_file(pod, &dir.join("ca.crt"), ca, default_mode);
            } else if source["configMap"].is_object() {
                self.write_source(pod, volume, dir, "ConfigMap", &source["configMap"]);
            } else if source["secret"].is_object() {
                self.write_source(pod, volume, dir, "Secret", &source["secret"]);
            } else if let Some(items) = source["downwardAPI"]["items"].as_array() {
                for item in items {
                    let field = item["fieldRef"]["fieldPath"].as_str();
                    let value = match field {
                        Some("metadata.namespace") => pod.namespace.clone(),
                        Some("metadata.name") => pod.name.clone(),
                        _ => panic!("volume {volume}: unsupported downwardAPI item {item}"),
                    };
                    let relative = text(&item["path"], "downwardAPI path");
                    self.write_file(pod, &dir.join(relative), value.as_bytes(), default_mode);
                }
            } else {
                panic!("volume {volume}: unsupported projected source {source}");
            }
        }
    }

    /// One file of a ConfigMap, Secret or token volume: root-owned (group: the fsGroup) with
    /// `mode` (plus group read with an fsGroup, as a kubelet), the Vault address rewritten.
    fn write_file(&self, pod: &PodSpec, path: &Path, contents: &[u8], mode: u32) {
        match std::str::from_utf8(contents) {
            Ok(text) => std::fs::write(path, self.rewrite_vault_address(pod, text)),
            Err(_) => std::fs::write(path, contents),
        }
        .unwrap();
        let mode = if pod.fs_group.is_some() {
            mode | 0o040
        } else {
            mode
        };
        std::os::unix::fs::chown(path, Some(0), pod.fs_group).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The container's mounts resolved to host paths, parents before children.
    fn mounts_of(
        &self,
        pod: &PodSpec,
        container: &ContainerSpec,
    ) -> Vec<(PathBuf, String, bool, bool)> {
        let mut mounts: Vec<_> = container
            .mounts
            .iter()
            .map(|mount| {
                let volume = self.volumes.get(&mount.volume).unwrap_or_else(|| {
                    panic!(
                        "{}: mounts volume {}, which the Pod does not have",
                        container.name, mount.volume
                    )
                });
                match &mount.sub_path {
                    Some(sub) => {
                        let source = volume.join(sub);
                        if !source.exists() {
                            // The kubelet creates a missing subPath as a directory.
                            std::fs::create_dir_all(&source).unwrap();
                        }
                        let is_file = source.is_file();
                        (source, mount.path.clone(), mount.read_only, is_file)
                    }
                    None => (volume.clone(), mount.path.clone(), mount.read_only, false),
                }
            })
            .collect();
        let token_mounted = mounts
            .iter()
            .any(|(_, target, _, _)| Path::new(target) == Path::new(SERVICE_ACCOUNT_DIR));
        if pod.automount_token && !token_mounted {
            mounts.push((
                self.volumes[TOKEN_VOLUME].clone(),
                SERVICE_ACCOUNT_DIR.to_owned(),
                true,
                false,
            ));
        }
        mounts.sort_by_key(|(_, target, _, _)| Path::new(target).components().count());
        mounts
    }

    /// Polls the probes of `kinds` of `containers` until all pass; fails on a running container
    /// that exits meanwhile, or after [`STARTUP_LIMIT`].
    fn wait_for_probes(&mut self, containers: &[&ContainerSpec], kinds: &[&str]) {
        let started = Instant::now();
        let probes: Vec<(String, ProbeAction)> = containers
            .iter()
            .flat_map(|c| c.probes.iter().map(move |p| (c, p)))
            .filter(|(_, p)| kinds.contains(&p.kind))
            .map(|(c, p)| (c.name.clone(), p.action.clone()))
            .collect();
        loop {
            let exited: Vec<String> = self
                .containers
                .iter_mut()
                .filter_map(|c| {
                    let status = c.child.try_wait().unwrap()?;
                    Some(format!("{} exited with {status}", c.name))
                })
                .collect();
            assert!(exited.is_empty(), "{exited:?}\n{}", self.logs());
            let mut pending = Vec::new();
            for (name, action) in &probes {
                if !self.probe(name, action) {
                    pending.push(format!("{name} {action:?}"));
                }
            }
            if pending.is_empty() {
                eprintln!("{kinds:?} passed in {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "not ready after {STARTUP_LIMIT:?}: {pending:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every probe (startup, readiness, liveness) of every running container, run once as a
    /// kubelet would: those that fail, described.
    pub fn failing_probes(&self, pod: &PodSpec) -> Vec<String> {
        pod.running_containers()
            .flat_map(|c| c.probes.iter().map(move |p| (c, p)))
            .filter(|(c, p)| !self.probe(&c.name, &p.action))
            .map(|(c, p)| format!("{} {} {:?}", c.name, p.kind, p.action))
            .collect()
    }

    /// One probe of container `name`, as a kubelet runs it: does it pass?
    pub fn probe(&self, name: &str, action: &ProbeAction) -> bool {
        match action {
            ProbeAction::Http { path, port } => {
                let status = http_status(SocketAddr::from((self.pod_ip(), *port)), path);
                status.is_ok_and(|s| (200..400).contains(&s))
            }
            ProbeAction::Tcp { port } => TcpStream::connect_timeout(
                &SocketAddr::from((self.pod_ip(), *port)),
                Duration::from_secs(1),
            )
            .is_ok(),
            ProbeAction::Exec { argv } => self.exec_in_container(name, argv).status.success(),
        }
    }

    /// Starts Prometheus in the root namespace, scraping the Pod's metrics endpoints at its IP
    /// every second, and waits until it is ready.
    pub fn start_prometheus(&mut self, pod: &PodSpec) -> PrometheusClient {
        assert!(
            !pod.metrics_endpoints.is_empty(),
            "the Pod has no metrics endpoints"
        );
        let targets: Vec<String> = pod
            .metrics_endpoints
            .iter()
            .map(|(port, path)| {
                format!(
                    "  - job_name: pki-sidecar-{port}\n    metrics_path: {path}\n    \
                     static_configs:\n      - targets: ['{}:{port}']\n        \
                     labels: {{job: pki-sidecar}}\n",
                    self.pod_ip()
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}",
            targets.concat()
        );
        let config = util::write_file(self.dir(), "prometheus.yml", &config);
        let storage = self.dir().join("prometheus-data");
        let port = util::free_port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = File::create(self.dir().join("prometheus.log")).unwrap();
        let child = Command::new("setpriv")
            .arg("--pdeathsig=KILL")
            .arg("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run prometheus (scripts/install-test-deps.sh installs it)");
        self.prometheus = Some(child);
        let started = Instant::now();
        while http_status(address, "/-/ready") != Ok(200) {
            if let Some(status) = self.prometheus.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "prometheus exited with {status}: {}",
                    std::fs::read_to_string(self.dir().join("prometheus.log")).unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        PrometheusClient { address }
    }

    /// The last 40 lines of every container's log (init containers' included), for failure
    /// messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (name, path) in &self.logs {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            text += &format!("--- {name} (last {} lines)\n", tail.len());
            for line in tail.into_iter().rev() {
                text += line;
                text.push('\n');
            }
        }
        text
    }

    /// Tears everything down and asserts it went as a kubelet would want: every container exits
    /// 0 on SIGTERM within the grace period, nothing is left in the Pod's network namespace, and
    /// the namespace, the veth pair and Prometheus are gone.
    pub fn stop(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "teardown: {problems:#?}");
    }

    /// Stops everything, returning what went wrong (never panics: it also runs from `Drop`).
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // The kubelet sends SIGTERM to every container at once.
        for container in &self.containers {
            let pid = nix::unistd::Pid::from_raw(container.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + TERMINATION_GRACE;
        for mut container in self.containers.drain(..) {
            match wait_until(&mut container.child, deadline) {
                Some(status) if status.success() => {}
                Some(status) => problems.push(format!(
                    "container {} exited with {status} on SIGTERM; its log:\n{}",
                    container.name,
                    std::fs::read_to_string(&container.log).unwrap_or_default()
                )),
                None => problems.push(format!(
                    "container {} still running {TERMINATION_GRACE:?} after SIGTERM: killed",
                    container.name
                )),
            }
        }
        if let Some(mut prometheus) = self.prometheus.take() {
            let pid = nix::unistd::Pid::from_raw(prometheus.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            if wait_until(&mut prometheus, Instant::now() + Duration::from_secs(15)).is_none() {
                problems.push("prometheus did not exit on SIGTERM: killed".to_owned());
            }
        }
        // Anything still in the namespace (a probe's leftover, a stray child) is a bug.
        if let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.network.name])
            .output()
        {
            let pids = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if !pids.is_empty() {
                problems.push(format!("processes left in the Pod's namespace: {pids}"));
                for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        problems.extend(self.network.delete());
        for top in self.top_levels.drain(..) {
            problems.extend(release_top_level(&top));
        }
        problems
    }
}

impl Drop for PodHarness {
    fn drop(&mut self) {
        for problem in self.teardown() {
            eprintln!("pod teardown: {problem}");
        }
    }
}

/// Kubernetes' `$(VAR)` expansion against the variables defined so far; `$$` is a `$`, and a
/// reference to an undefined variable stays as written.
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(index) = rest.find('$') {
        out += &rest[..index];
        let after = &rest[index + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let reference = after.strip_prefix('(').and_then(|inner| {
            inner
                .find(')')
                .map(|end| (&inner[..end], &inner[end + 1..]))
        });
        match reference {
            Some((name, tail)) => {
                match env.iter().rev().find(|(k, _)| k == name) {
                    Some((_, value)) => out += value,
                    None => out += &format!("$({name})"),
                }
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out + rest
}

/// Waits for `child` until `deadline`; kills it then (returning `None`).
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the Pod test must run as root: it creates a network namespace, a veth pair and mount \
         namespaces (CI runs the tests as root; locally: `sudo -E cargo test --test integration \
         pod`). It does not skip."
    );
}

/// A string field, or a panic naming `what`.
fn text<'a>(value: &'a Json, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {value}"))
}

/// The entries of a JSON object (none when absent).
fn entries(value: &Json) -> impl Iterator<Item = (&String, &Json)> {
    value.as_object().into_iter().flatten()
}

/// A uid or gid field.
fn id(value: &Json, what: &str) -> Option<u32> {
    if value.is_null() {
        return None;
    }
    let number = value.as_u64().unwrap_or_else(|| panic!("{what}: {value}"));
    Some(u32::try_from(number).unwrap_or_else(|_| panic!("{what}: {value}")))
}

/// A file mode field (JSON numbers are decimal: 420 is 0644).
fn mode(value: &Json) -> Option<u32> {
    value.as_u64().map(|m| u32::try_from(m).expect("a mode"))
}

/// `path` as a single-quoted shell word.
fn quote(path: impl AsRef<Path>) -> String {
    let text = path.as_ref().to_str().expect("UTF-8 path");
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The top-level directory an overlay must cover so that `target` can be created: that of the
/// longest existing ancestor once symlinks are resolved (`/var/run/...` lands in `/run`).
fn overlay_root(target: &str) -> String {
    let mut existing = Path::new(target);
    while !existing.exists() {
        existing = existing.parent().expect("an absolute path");
    }
    let canonical = existing.canonicalize().unwrap();
    match canonical.components().nth(1) {
        Some(Component::Normal(top)) => format!("/{}", top.to_str().unwrap()),
        _ => panic!("{target}: a mount point directly in / cannot be made without touching /"),
    }
}

/// `binary` if every (uid, gid) of `users` can execute it where it is (every ancestor
/// searchable, the file readable and executable by others), else a copy of mode 0755 in `dir`.
fn executable_by(binary: &str, users: &BTreeSet<(u32, u32)>, dir: &Path) -> PathBuf {
    let usable = users.iter().all(|(uid, gid)| {
        Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(binary)
            .arg("--version")
            .output()
            .expect("run setpriv (util-linux)")
            .status
            .success()
    });
    if usable {
        return PathBuf::from(binary);
    }
    let copy = dir.join("pki-sidecar");
    std::fs::copy(binary, &copy).expect("copy the binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Sets a namespaced sysctl inside network namespace `ns` and checks that it took there only.
fn set_sysctl(ns: &str, name: &str, value: &str) {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let outside = std::fs::read_to_string(&path).unwrap_or_default();
    let output = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c"])
        .arg(r#"printf '%s\n' "$1" > "$2" && cat "$2""#)
        .args(["sysctl", value, &path])
        .output()
        .expect("run ip netns exec");
    assert!(
        output.status.success(),
        "sysctl {name}={value} in {ns}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), value);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        outside,
        "{name} must be namespaced: the root namespace's value changed"
    );
}

/// Copies connections accepted on `listener` to `target` (the Pod's way out to OpenBao).
async fn forward(listener: tokio::net::TcpListener, target: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The network namespace

/// `pki-pod-<pid>-<n>`, with `lo` up and a veth pair: `eth0` inside (`pod_ip`), `pkp<pid>h<n>`
/// outside (`host_ip`), on a /30 of 10.128.0.0/9 derived from the pid and `n`. Deleted on drop,
/// and by a watchdog if the test binary is killed (`Drop` never runs then).
struct Network {
    name: String,
    host_interface: String,
    host_ip: Ipv4Addr,
    pod_ip: Ipv4Addr,
    /// `sh` blocked reading its stdin (a pipe from this process): when the pipe closes — by
    /// [`Network::delete`] or because this process died — it deletes the interface and the
    /// namespace. The containers die with the test binary too (`setpriv --pdeathsig`).
    watchdog: Option<Child>,
}

/// What the watchdog runs: `$1` is the interface, `$2` the namespace.
const NETWORK_WATCHDOG: &str =
    r#"read _ignored; ip link del "$1" 2>/dev/null; ip netns del "$2" 2>/dev/null; exit 0"#;

impl Network {
    fn create() -> Network {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let index = ((pid << 3) | (n & 7)) & ((1 << 21) - 1);
        let subnet = u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (index << 2);
        let name = format!("pki-pod-{pid}-{n}");
        let host_interface = format!("pkp{pid}h{n}");
        let watchdog = Command::new("sh")
            .args(["-c", NETWORK_WATCHDOG, "pod-network-watchdog"])
            .args([&host_interface, &name])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run sh");
        let network = Network {
            name,
            host_interface,
            host_ip: Ipv4Addr::from(subnet + 1),
            pod_ip: Ipv4Addr::from(subnet + 2),
            watchdog: Some(watchdog),
        };
        // Leftovers of a killed run that had the same pid (its watchdog should have removed them).
        let _ = remove_network(&network.host_interface, &network.name);
        let host = network.host_ip.to_string() + "/30";
        let pod = network.pod_ip.to_string() + "/30";
        let ns = network.name.clone();
        let interface = network.host_interface.clone();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "link", "add", &interface, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["addr", "add", &host, "dev", &interface]);
        ip(&["link", "set", &interface, "up"]);
        ip(&["-n", &ns, "addr", "add", &pod, "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        network
    }

    /// Deletes the veth pair and the namespace; returns what is still there afterwards.
    fn delete(&mut self) -> Vec<String> {
        let Some(mut watchdog) = self.watchdog.take() else {
            return Vec::new();
        };
        drop(watchdog.stdin.take());
        let _ = watchdog.wait();
        remove_network(&self.host_interface, &self.name)
    }
}

/// Deletes `interface` (and so its veth peer) and namespace `ns`, whichever exist; returns what
/// is still there afterwards.
fn remove_network(interface: &str, ns: &str) -> Vec<String> {
    let _ = Command::new("ip")
        .args(["link", "del", interface])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
    let mut problems = Vec::new();
    if Path::new("/run/netns").join(ns).exists() {
        problems.push(format!("network namespace {ns} still exists"));
    }
    if Path::new("/sys/class/net").join(interface).exists() {
        problems.push(format!("interface {interface} still exists"));
    }
    problems
}

impl Drop for Network {
    fn drop(&mut self) {
        for problem in self.delete() {
            eprintln!("pod network teardown: {problem}");
        }
    }
}

/// Runs `ip ARGS`, panicking with its message on failure.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `ip` ({e}): scripts/install-test-deps.sh installs iproute2")
    });
    assert!(
        output.status.success(),
        "`ip {}` failed: {} (the Pod test needs root and network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

// ---------------------------------------------------------------------------------------------
// Clients

/// The status of `GET path` on `address` (kubelet-style: a fresh connection, 5 s timeout).
pub fn http_status(address: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if raw.is_empty() {
        return Err("empty response".to_owned());
    }
    Ok(util::parse_response(&raw).status)
}

/// Prometheus' HTTP API.
pub struct PrometheusClient {
    address: SocketAddr,
}

impl PrometheusClient {
    /// Queries `expr` until `done` holds for the result vector, or panics after `limit`.
    pub fn wait_for(
        &self,
        expr: &str,
        limit: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            let result = self.query(expr);
            if done(&result) {
                return result;
            }
            assert!(
                started.elapsed() < limit,
                "prometheus: {expr} still {result:?} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `/api/v1/query?query=EXPR`: the result vector.
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let output = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--fail",
                "--max-time",
                "10",
                "--get",
            ])
            .arg("--data-urlencode")
            .arg(format!("query={expr}"))
            .arg(format!("http://{}/api/v1/query", self.address))
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "prometheus query {expr}: {body}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let body: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("prometheus answer {body:?}: {e}"));
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The value of one instant-vector sample (`{"metric": ..., "value": [time, "value"]}`).
pub fn sample_value(sample: &serde_json::Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}
