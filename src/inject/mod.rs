//! Injection: the sidecars added to a Pod from its annotations, as the Vault Agent Injector
//! (vault-k8s) does. One transform ([`inject_pod`]) behind two front ends: the `inject` command
//! (Kubernetes YAML in, YAML out) and the admission webhook (`crate::webhook`).
//!
//! Kubernetes objects are handled as `serde_json::Value`: no generated Kubernetes crate.

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
    let _ = (settings, pod);
    Ok(Outcome::NotRequested)
}
