//! One `admission.k8s.io/v1` AdmissionReview in, its answer out: a pure function of the request
//! body and the injection settings, with no I/O, so it is tested without a server.
//!
//! A Pod CREATE goes through [`inject_pod`]; the answer allows it with the JSON Patch from the
//! Pod as sent to the Pod as transformed (none when nothing changed). A Pod whose annotations
//! the transform refuses is not allowed, with a 400 status naming the annotation, as the Vault
//! Agent Injector refuses one. Any other kind or operation is allowed untouched: the webhook
//! configuration only sends Pod CREATE, and an answer that blocks something it did not ask for
//! would be worse than one that lets it through. A body that is not a v1 AdmissionReview is the
//! caller's 400.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::patch;
use crate::inject::{InjectError, Outcome, Settings, inject_pod};

/// The only AdmissionReview version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// What happened to one review; the `result` label of the request counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A Pod CREATE went through the transform.
    Transformed(Outcome),
    /// The transform refused the Pod's annotations: not allowed.
    Refused,
    /// Not a Pod CREATE: allowed untouched.
    Ignored,
}

impl Verdict {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Transformed(outcome) => outcome.label(),
            Verdict::Refused => "refused",
            Verdict::Ignored => "ignored",
        }
    }
}

/// A body that is not a review this webhook can answer: the HTTP answer is 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReview(String);

/// The answer to one review.
#[derive(Debug)]
pub struct Answer {
    /// The response body, an AdmissionReview.
    pub body: Vec<u8>,
    /// What happened.
    pub verdict: Verdict,
    /// The request's namespace and name (or `generateName`), for the log.
    pub pod: String,
}

#[derive(Deserialize)]
struct ReviewIn {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
struct RequestIn {
    uid: String,
    kind: GroupVersionKind,
    operation: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    object: Option<Value>,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    version: String,
    kind: String,
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    /// Shown by kubectl: what the injection left aside (admission.k8s.io/v1 `warnings`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StatusOut {
    code: u16,
    message: String,
}

/// Answers the AdmissionReview in `body`.
pub fn answer(settings: &Settings, body: &[u8]) -> Result<Answer, InvalidReview> {
    let review: ReviewIn = serde_json::from_slice(body)
        .map_err(|err| InvalidReview(format!("the body is not an AdmissionReview: {err}")))?;
    if review.api_version != API_VERSION || review.kind != "AdmissionReview" {
        return Err(InvalidReview(format!(
            "expected apiVersion {API_VERSION} kind AdmissionReview, got apiVersion {:?} kind \
             {:?}; set admissionReviewVersions: [v1] in the MutatingWebhookConfiguration",
            review.api_version, review.kind
        )));
    }
    let Some(request) = review.request else {
        return Err(InvalidReview(
            "the AdmissionReview has no request".to_string(),
        ));
    };
    if request.uid.is_empty() {
        return Err(InvalidReview("request.uid is empty".to_string()));
    }
    let is_pod =
        request.kind.group.is_empty() && request.kind.version == "v1" && request.kind.kind == "Pod";
    if !is_pod || request.operation != "CREATE" {
        return Ok(Answer {
            body: serialize(&request.uid, true, None, None, Vec::new()),
            verdict: Verdict::Ignored,
            pod: String::new(),
        });
    }
    let Some(Value::Object(mut object)) = request.object else {
        return Err(InvalidReview(
            "request.object of a Pod CREATE is missing or not an object".to_string(),
        ));
    };
    let pod = pod_name(&request.namespace, &request.name, &object);
    // The transform sees what `inject` gives it for a Pod template, metadata and spec, moved
    // out of the Pod rather than copied; the one copy is the original the patch is taken from.
    let mut template = Map::new();
    for key in ["metadata", "spec"] {
        if let Some(value) = object.remove(key) {
            template.insert(key.to_string(), value);
        }
    }
    let original = Value::Object(template);
    let mut transformed = original.clone();
    let noted = crate::inject::warnings(&original);
    let verdict = match inject_pod(settings, &mut transformed) {
        Ok(outcome) => outcome,
        Err(err) => {
            return Ok(Answer {
                body: serialize(&request.uid, false, None, Some(refusal(&err)), Vec::new()),
                verdict: Verdict::Refused,
                pod,
            });
        }
    };
    let operations = patch::diff(&original, &transformed);
    let patch = if operations.is_empty() {
        None
    } else {
        // Invariant: JSON values (string keys only) always serialize.
        let json = serde_json::to_vec(&operations).expect("a JSON Patch serializes");
        Some(base64::engine::general_purpose::STANDARD.encode(json))
    };
    let warnings = if verdict == Outcome::Injected {
        noted
            .into_iter()
            .map(|warning| format!("pki-sidecar injector: {warning}"))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Answer {
        body: serialize(&request.uid, true, patch, None, warnings),
        verdict: Verdict::Transformed(verdict),
        pod,
    })
}

fn refusal(err: &InjectError) -> StatusOut {
    StatusOut {
        code: 400,
        message: format!("pki-sidecar injector: {err}"),
    }
}

fn serialize(
    uid: &str,
    allowed: bool,
    patch: Option<String>,
    status: Option<StatusOut>,
    warnings: Vec<String>,
) -> Vec<u8> {
    let review = ReviewOut {
        api_version: API_VERSION,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            status,
            warnings,
        },
    };
    // Invariant: strings, booleans and a small integer always serialize.
    serde_json::to_vec(&review).expect("an AdmissionReview response serializes")
}

/// `namespace/name`, or `namespace/generateName*` for a Pod a controller names on creation.
fn pod_name(namespace: &str, name: &str, object: &Map<String, Value>) -> String {
    let metadata = object.get("metadata");
    let namespace = if namespace.is_empty() {
        metadata.and_then(|m| m["namespace"].as_str()).unwrap_or("")
    } else {
        namespace
    };
    let name = if name.is_empty() {
        metadata.and_then(|m| m["name"].as_str()).unwrap_or("")
    } else {
        name
    };
    if name.is_empty() {
        let generate = metadata
            .and_then(|m| m["generateName"].as_str())
            .unwrap_or("");
        format!("{namespace}/{generate}*")
    } else {
        format!("{namespace}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings {
            image: "pki-sidecar:test".to_string(),
            vault_address: None,
        }
    }

    fn review(kind: &str, operation: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": API_VERSION,
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": operation,
                "namespace": "team",
                "object": object,
            }
        }))
        .unwrap()
    }

    fn response(answer: &Answer) -> Value {
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["apiVersion"], API_VERSION);
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(
            body["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        body["response"].clone()
    }

    #[test]
    fn other_kinds_and_operations_are_ignored() {
        for (kind, operation) in [
            ("ConfigMap", "CREATE"),
            ("Pod", "UPDATE"),
            ("Pod", "DELETE"),
        ] {
            let answer = answer(&settings(), &review(kind, operation, json!({}))).unwrap();
            assert_eq!(answer.verdict, Verdict::Ignored);
            let response = response(&answer);
            assert_eq!(response["allowed"], true);
            assert!(response.get("patch").is_none(), "{response}");
        }
    }

    #[test]
    fn bodies_that_are_not_v1_reviews_are_invalid() {
        let v1beta1 = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE"}});
        let no_request = json!({"apiVersion": API_VERSION, "kind": "AdmissionReview"});
        let no_object = review("Pod", "CREATE", Value::Null);
        for body in [
            b"{".to_vec(),
            b"[]".to_vec(),
            serde_json::to_vec(&v1beta1).unwrap(),
            serde_json::to_vec(&no_request).unwrap(),
            no_object,
        ] {
            assert!(answer(&settings(), &body).is_err());
        }
    }

    #[test]
    fn a_pod_is_answered_with_the_transform_s_patch() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-", "annotations": {"a/b": "c"}},
            "spec": {"containers": [{"name": "app", "image": "app"}]}});
        let answer = answer(&settings(), &review("Pod", "CREATE", pod.clone())).unwrap();
        assert_eq!(answer.pod, "team/web-*");
        let mut expected = json!({"metadata": pod["metadata"], "spec": pod["spec"]});
        let outcome = inject_pod(&settings(), &mut expected);
        let response = response(&answer);
        match outcome {
            Err(err) => {
                assert_eq!(answer.verdict, Verdict::Refused);
                assert_eq!(response["allowed"], false);
                assert_eq!(response["status"]["code"], 400);
                assert!(
                    response["status"]["message"]
                        .as_str()
                        .unwrap()
                        .contains(&err.annotation)
                );
            }
            Ok(outcome) => {
                assert_eq!(answer.verdict, Verdict::Transformed(outcome));
                assert_eq!(response["allowed"], true);
                let unchanged =
                    expected == json!({"metadata": pod["metadata"], "spec": pod["spec"]});
                assert_eq!(response.get("patch").is_none(), unchanged, "{response}");
                if !unchanged {
                    assert_eq!(response["patchType"], "JSONPatch");
                }
            }
        }
    }

    /// What the injection leaves aside reaches kubectl as the response's `warnings`.
    #[test]
    fn a_leftover_annotation_is_a_warning_kubectl_shows() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/service": "https://vault.vault:8200",
                "vault.hashicorp.com/role": "web",
                "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
                "vault.hashicorp.com/agent-inject-command-gone": "/bin/true"}},
            "spec": {"containers": [{"name": "app", "image": "app"}]}});
        let answer = answer(&settings(), &review("Pod", "CREATE", pod)).unwrap();
        let response = response(&answer);
        assert_eq!(
            answer.verdict,
            Verdict::Transformed(Outcome::Injected),
            "{response}"
        );
        assert_eq!(response["allowed"], true);
        let warnings = response["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1, "{response}");
        assert!(
            warnings[0]
                .as_str()
                .unwrap()
                .contains("agent-inject-command-gone: ignored"),
            "{response}"
        );
    }
}
