//! `pki-sidecar inject`: Kubernetes YAML in (files, directories, stdin), the same stream out
//! with the sidecars added to each annotated Pod template. A document the injection leaves
//! alone is written back byte for byte; a changed one is written from its parsed value (YAML
//! 1.1 as kubectl reads it), so every field keeps the value kubectl would have read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use super::{InjectError, Outcome, Settings, inject_pod, yaml};

/// `EX_CONFIG`: an annotation is invalid.
const EXIT_ANNOTATION: u8 = 78;
/// `EX_DATAERR`: the input is not Kubernetes YAML.
const EXIT_INPUT: u8 = 65;
/// `EX_NOINPUT`: an input cannot be read.
const EXIT_NOINPUT: u8 = 66;

/// One input: where it came from (for messages) and its text.
struct Input {
    name: String,
    text: String,
}

/// Why the command failed, with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// The message for stderr.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

/// Runs the command: reads `paths` (stdin for none or `-`), writes the result to stdout.
pub fn run(settings: &Settings, paths: &[PathBuf]) -> ExitCode {
    let result = read_inputs(paths).and_then(|inputs| {
        let mut out = String::new();
        for input in &inputs {
            let text = transform(settings, &input.name, &input.text)?;
            if !out.is_empty() && !text.is_empty() {
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                if !text.starts_with("---") {
                    out.push_str("---\n");
                }
            }
            out.push_str(&text);
        }
        Ok(out)
    });
    match result {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("pki-sidecar inject: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, Failure> {
    let stdin = || -> Result<Input, Failure> {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| Failure {
                message: format!("stdin: cannot read: {err}"),
                code: EXIT_NOINPUT,
            })?;
        Ok(Input {
            name: "stdin".to_string(),
            text,
        })
    };
    if paths.is_empty() {
        return Ok(vec![stdin()?]);
    }
    let mut inputs = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            inputs.push(stdin()?);
            continue;
        }
        let unreadable = |err: std::io::Error| Failure {
            message: format!("{}: cannot read: {err}", path.display()),
            code: EXIT_NOINPUT,
        };
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        let files = if metadata.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(unreadable)? {
                let entry = entry.map_err(unreadable)?;
                let file = entry.path();
                let manifest = file
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
                if manifest && file.is_file() {
                    files.push(file);
                }
            }
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|err| Failure {
                message: format!("{}: cannot read: {err}", file.display()),
                code: EXIT_NOINPUT,
            })?;
            inputs.push(Input {
                name: file.display().to_string(),
                text,
            });
        }
    }
    Ok(inputs)
}

/// The stream `text` (read from `name`) with every annotated Pod template injected.
pub fn transform(settings: &Settings, name: &str, text: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len());
    for (index, chunk) in yaml::split(text).into_iter().enumerate() {
        out.push_str(&chunk.separator);
        let document = yaml::load(&chunk.body).map_err(|err| Failure {
            message: format!(
                "{name}: document {} (from line {}): not YAML: {err}",
                index + 1,
                chunk.first_line
            ),
            code: EXIT_INPUT,
        })?;
        let Some(mut value) = document else {
            out.push_str(&chunk.body);
            continue;
        };
        let changed = inject_object(settings, &mut value).map_err(|(object, err)| Failure {
            message: format!("{name}: document {}: {object}: {err}", index + 1),
            code: EXIT_ANNOTATION,
        })?;
        if changed {
            out.push_str(&yaml::emit(&value));
        } else {
            out.push_str(&chunk.body);
        }
    }
    Ok(out)
}

/// `Kind/namespace/name` (or `Kind/name`) of an object.
fn describe(object: &Value) -> String {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let kind = text(&object["kind"]).unwrap_or_else(|| "(no kind)".to_string());
    let name = text(&object["metadata"]["name"])
        .or_else(|| text(&object["metadata"]["generateName"]).map(|g| format!("{g}*")));
    match (text(&object["metadata"]["namespace"]), name) {
        (Some(namespace), Some(name)) => format!("{kind}/{namespace}/{name}"),
        (None, Some(name)) => format!("{kind}/{name}"),
        (_, None) => kind,
    }
}

/// Injects the Pod templates of `object` (a Pod, a workload, a List); whether it changed.
pub fn inject_object(
    settings: &Settings,
    object: &mut Value,
) -> Result<bool, (String, InjectError)> {
    let Some(kind) = object
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(false);
    };
    if kind == "List" || kind.ends_with("List") {
        let mut changed = false;
        let mut items = match object.get_mut("items") {
            Some(Value::Array(items)) => std::mem::take(items),
            _ => return Ok(false),
        };
        let mut result = Ok(());
        for (index, item) in items.iter_mut().enumerate() {
            match inject_object(settings, item) {
                Ok(c) => changed |= c,
                Err((inner, err)) => {
                    result = Err((format!("{} item {}: {inner}", describe(object), index), err));
                    break;
                }
            }
        }
        object["items"] = Value::Array(items);
        result?;
        return Ok(changed);
    }
    let path: &[&str] = match kind.as_str() {
        "Pod" => &[],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController"
        | "PodTemplate" => &["spec", "template"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        _ => return Ok(false),
    };
    let path: &[&str] = if kind == "PodTemplate" {
        &["template"]
    } else {
        path
    };
    let described = describe(object);
    let mut target = &mut *object;
    for key in path {
        match target.get_mut(*key) {
            Some(next) if next.is_object() => target = next,
            _ => return Ok(false),
        }
    }
    let noted = super::warnings(target);
    match inject_pod(settings, target) {
        Ok(Outcome::Injected) => {
            for warning in noted {
                eprintln!("pki-sidecar inject: {described}: warning: {warning}");
            }
            Ok(true)
        }
        Ok(Outcome::AlreadyInjected | Outcome::NotRequested) => Ok(false),
        Err(err) => Err((described, err)),
    }
}
