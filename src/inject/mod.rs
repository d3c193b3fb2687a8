//! Injection: the sidecars added to a Pod from its annotations, as the Vault Agent Injector
//! (vault-k8s) does. One transform ([`inject_pod`]) behind two front ends: the `inject` command
//! (Kubernetes YAML in, YAML out) and the admission webhook (`crate::webhook`).
//!
//! Kubernetes objects are handled as `serde_json::Value`: no generated Kubernetes crate.

mod command;
mod json_patch;
pub mod manifest;
mod plan;
mod pod;
mod yaml;

use serde_json::Value;

/// What the injector adds unless a Pod's annotations say otherwise; the same for both front
/// ends, so `inject` and the webhook produce the same Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Image of every injected container (the one pki-sidecar image).
    pub image: String,
    /// Vault's address for injected agents, unless an annotation sets it.
    pub vault_address: Option<String>,
}

/// What [`inject_pod`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The sidecars were added.
    Injected,
    /// The Pod already carries the injected-status annotation: left as it is.
    AlreadyInjected,
    /// No annotation asks for injection: left as it is.
    NotRequested,
}

impl Outcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::AlreadyInjected => "already_injected",
            Outcome::NotRequested => "not_requested",
        }
    }
}

/// A Pod the injector refuses, naming the annotation at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: {message}")]
pub struct InjectError {
    /// The full annotation name, e.g. `vault.hashicorp.com/agent-inject-command-cert`.
    pub annotation: String,
    /// What is wrong with it, and what to do.
    pub message: String,
}

/// Applies the injection to `pod`, an object with `metadata` and `spec`: a Pod, or a workload's
/// Pod template. On an error `pod` is unchanged.
pub fn inject_pod(settings: &Settings, pod: &mut Value) -> Result<Outcome, InjectError> {
    let annotations = annotations(pod)?;
    plan::check_names(&annotations)?;
    let own_on = match annotations.get(&format!("{}inject", plan::OWN)) {
        Some(v) => plan::parse_bool(&format!("{}inject", plan::OWN), v)?,
        None => false,
    };
    let vault_trigger = format!("{}agent-inject", plan::VAULT);
    let vault_on = match annotations.get(&vault_trigger) {
        Some(v) => plan::parse_bool(&vault_trigger, v)?,
        None => false,
    };
    let own_status = annotations.get(plan::OWN_STATUS).map(|s| s.trim());
    let vault_status = annotations.get(plan::VAULT_STATUS).map(|s| s.trim());
    for (name, status) in [
        (plan::OWN_STATUS, own_status),
        (plan::VAULT_STATUS, vault_status),
    ] {
        match status {
            None | Some("injected") => {}
            Some("update") if name == plan::VAULT_STATUS => {}
            Some(other) => {
                return Err(InjectError {
                    annotation: name.to_string(),
                    message: format!(
                        "{other:?}: the injector writes \"injected\" here{}; remove it to inject",
                        if name == plan::VAULT_STATUS {
                            " (\"update\" asks for a new injection)"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
    }
    if own_status == Some("injected") || vault_status == Some("injected") {
        return Ok(Outcome::AlreadyInjected);
    }
    let plan = match (own_on, vault_on) {
        (false, false) => return Ok(Outcome::NotRequested),
        (true, true) => {
            return Err(InjectError {
                annotation: vault_trigger,
                message: "both pki-sidecar.io/inject and vault.hashicorp.com/agent-inject ask \
                          for injection: use one vocabulary per Pod"
                    .to_string(),
            });
        }
        (true, false) => {
            if let Some(name) = annotations.keys().find(|k| k.starts_with(plan::VAULT)) {
                return Err(InjectError {
                    annotation: name.clone(),
                    message: "this Pod uses pki-sidecar.io/inject: vault.hashicorp.com \
                              annotations would be half-read; use one vocabulary per Pod"
                        .to_string(),
                });
            }
            plan::own_plan(settings, &annotations)?
        }
        (false, true) => plan::vault_plan(settings, &annotations)?,
    };
    let mut changed = pod.clone();
    let Some(object) = changed.as_object_mut() else {
        return Err(InjectError {
            annotation: plan.trigger.clone(),
            message: "the Pod is not an object".to_string(),
        });
    };
    let spec = object
        .entry("spec")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let Some(spec) = spec.as_object_mut() else {
        return Err(InjectError {
            annotation: plan.trigger.clone(),
            message: "the Pod's spec is not an object".to_string(),
        });
    };
    if vault_status == Some("update") {
        pod::strip(&plan, spec);
    }
    let mut plan = plan;
    pod::resolve(&mut plan, spec)?;
    check_plan(&plan)?;
    pod::apply(&plan, spec)?;
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(serde_json::Map::new());
    }
    let annotations = metadata
        .as_object_mut()
        .expect("metadata is an object")
        .entry("annotations")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(serde_json::Map::new());
    }
    annotations
        .as_object_mut()
        .expect("annotations is an object")
        .insert(plan.names.status.to_string(), "injected".into());
    *pod = changed;
    Ok(Outcome::Injected)
}

/// What the injection of `pod` leaves aside without refusing the Pod, one message each: the
/// Vault Agent Injector's per-secret annotations that name no secret, which it ignores too.
/// Empty unless `vault.hashicorp.com/agent-inject` asks for injection.
pub fn warnings(pod: &Value) -> Vec<String> {
    let Ok(annotations) = annotations(pod) else {
        return Vec::new();
    };
    let trigger = format!("{}agent-inject", plan::VAULT);
    match annotations
        .get(&trigger)
        .map(|v| plan::parse_bool(&trigger, v))
    {
        Some(Ok(true)) => {
            let mut warnings = plan::unused_per_secret(&annotations);
            // A custom agent image may hold more programs than pki-sidecar's.
            if !annotations.contains_key(&format!("{}agent-image", plan::VAULT)) {
                warnings.extend(plan::commands_the_image_lacks(&annotations));
            }
            warnings
        }
        _ => Vec::new(),
    }
}

/// The Pod's annotations, each a string.
fn annotations(pod: &Value) -> Result<plan::Annotations, InjectError> {
    let mut out = plan::Annotations::new();
    let Some(map) = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    else {
        return Ok(out);
    };
    for (name, value) in map {
        match value {
            Value::String(text) => {
                out.insert(name.clone(), text.clone());
            }
            Value::Null if !is_ours(name) => {}
            other if is_ours(name) => {
                return Err(InjectError {
                    annotation: name.clone(),
                    message: format!(
                        "the value must be a string; quote it (found {other}, which YAML read as \
                         a non-string)"
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn is_ours(name: &str) -> bool {
    name.starts_with(plan::OWN) || name.starts_with(plan::VAULT)
}

/// Every generated file checked with the loader the containers will run: a template that
/// does not parse names the annotation it came from. The whole files are loaded first (one load
/// each, the common case); only when one fails is each template loaded alone, to find the
/// annotation to blame.
fn check_plan(plan: &plan::Plan) -> Result<(), InjectError> {
    if plan.config_map.is_some() {
        return Ok(());
    }
    // A template file is in the Pod, not here: its template is checked as empty text.
    let templates: Vec<plan::TemplateSpec> = plan
        .templates
        .iter()
        .map(|t| plan::TemplateSpec {
            source: None,
            ..t.clone()
        })
        .collect();
    for init in [false, true] {
        let file = pod::agent_file(plan, &templates, init);
        if let Err(message) = pod::check_agent_file(&file) {
            // A telemetry value is blamed on its `agent-telemetry-*` annotation: each is
            // loaded alone in the file without templates.
            let mut bare = plan.clone();
            bare.telemetry.clear();
            for (key, value) in &plan.telemetry {
                bare.telemetry = [(key.clone(), value.clone())].into_iter().collect();
                pod::check_agent_file(&pod::agent_file(&bare, &[], init)).map_err(|message| {
                    InjectError {
                        annotation: format!(
                            "{}agent-telemetry-{}",
                            plan::VAULT,
                            key.replace('_', "-")
                        ),
                        message: format!("the agent would refuse this setting: {message}"),
                    }
                })?;
            }
            for template in &templates {
                let file = pod::agent_file(plan, std::slice::from_ref(template), init);
                pod::check_agent_file(&file).map_err(|message| InjectError {
                    annotation: template.annotation.clone(),
                    message: format!("the agent would refuse this template: {message}"),
                })?;
            }
            return Err(InjectError {
                annotation: plan.trigger.clone(),
                message: format!("the generated agent file does not load: {message}"),
            });
        }
    }
    if let Some(proxy) = &plan.proxy {
        pod::check_proxy_file(&pod::proxy_file(plan, proxy)).map_err(|message| InjectError {
            annotation: format!("{}proxy", plan::OWN),
            message: format!("the generated proxy file does not load: {message}"),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
