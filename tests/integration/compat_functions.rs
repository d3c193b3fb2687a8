//! consul-template's function library against OpenBao Agent: every case in
//! `tests/compat/templates/functions/` rendered by `pki-sidecar agent` (one run per case,
//! `exit_after_auth`, against the shared OpenBao bed seeded with the cases' `golden-secret.json`)
//! and compared with what OpenBao Agent 2.7.2 produced: `<case>.golden` byte for byte, or for
//! `<case>.error` a failed run whose log carries the same function error.
//!
//! Cases listed in [`KNOWN_DIFFERENCES`] are reported, not failed; each is an intentional
//! difference listed in COMPATIBILITY.md ("Template functions").

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util;
use crate::util::bao;

/// Cases whose output differs from OpenBao Agent's on purpose (see COMPATIBILITY.md).
const KNOWN_DIFFERENCES: &[&str] = &["parseYAML-yaml11", "sprig-dicts-mutation"];

fn cases_dir() -> PathBuf {
    util::repo().join("tests/compat/templates/functions")
}

/// How one case came out.
enum Outcome {
    Same,
    Different(String),
}

/// The agent's config for one case: token_file auth with the root token, one template.
fn config(dir: &Path, addr: &str, token: &Path, source: &Path, destination: &Path) -> PathBuf {
    util::write_file(
        dir,
        "agent.hcl",
        &format!(
            r#"vault {{ address = "{addr}" }}
exit_after_auth = true
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "{token}" }}
  }}
}}
template_config {{ exit_on_retry_failure = true }}
telemetry {{ metrics_listen = "127.0.0.1:0" }}
template {{
  source = "{source}"
  destination = "{destination}"
}}
"#,
            token = token.display(),
            source = source.display(),
            destination = destination.display(),
        ),
    )
}

/// Runs `pki-sidecar agent` on one case; returns (exit code, rendered output, stderr).
fn render(bed: &bao::Bed, case: &Path) -> (Option<i32>, Option<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let token = util::write_file(dir.path(), "token", bed.root_token());
    let destination = dir.path().join("out");
    let config = config(dir.path(), bed.addr(), &token, case, &destination);
    let mut command = util::command();
    command
        .args(["agent", "--config"])
        .arg(&config)
        .env_remove("PKI_SIDECAR_COMPAT_UNSET");
    let mut child = util::ChildGuard::spawn(command);
    let (code, log) = child.wait(Duration::from_secs(30));
    (code, std::fs::read_to_string(&destination).ok(), log)
}

/// The function's own message in an OpenBao Agent error line: what follows `error calling
/// NAME: `, or else what follows the `executing "" at <...>: ` prefix.
fn go_message(error_line: &str) -> String {
    // The agent's log (hclog) quotes the message and formats it once more, which turns
    // Go's `%!q(...)` into `%!!(MISSING)q(...)`: both undone here.
    let line = error_line
        .trim()
        .replace("\\\"", "\"")
        .replace("%!!(MISSING)", "%!");
    if let Some((_, message)) = line.split_once("error calling ") {
        if let Some((_, message)) = message.split_once(": ") {
            return message.to_owned();
        }
    }
    // Go's own argument checks: `executing "" at <toUpper>: wrong type for value; ...`.
    match line.split_once(">: ") {
        Some((_, message)) => message.to_owned(),
        None => line,
    }
}

fn check(bed: &bao::Bed, name: &str, case: &Path) -> Outcome {
    let golden = case.with_extension("golden");
    let error = case.with_extension("error");
    let (code, output, log) = render(bed, case);
    if golden.exists() {
        let expected = std::fs::read_to_string(&golden).unwrap();
        match output {
            Some(output) if code == Some(0) && output == expected => Outcome::Same,
            Some(output) => Outcome::Different(format!(
                "{name}: output differs (exit {code:?})\n--- OpenBao Agent\n{expected}\n--- pki-sidecar\n{output}"
            )),
            None => Outcome::Different(format!("{name}: no output (exit {code:?})\n{log}")),
        }
    } else if error.exists() {
        let expected = go_message(&std::fs::read_to_string(&error).unwrap());
        if code == Some(0) {
            Outcome::Different(format!(
                "{name}: rendered, OpenBao Agent failed with {expected:?}"
            ))
        } else if log.replace("\\\"", "\"").contains(&expected) {
            Outcome::Same
        } else {
            Outcome::Different(format!(
                "{name}: failed (exit {code:?}) without {expected:?}:\n{log}"
            ))
        }
    } else {
        Outcome::Different(format!("{name}: neither {name}.golden nor {name}.error"))
    }
}

#[test]
fn function_cases_render_as_openbao_agent_renders_them() {
    let bed = bao::bed();
    let secret: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cases_dir().join("golden-secret.json")).unwrap(),
    )
    .unwrap();
    bed.root_request(
        "POST",
        "secret/data/golden",
        serde_json::json!({ "data": secret }),
    );
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tpl"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let (mut same, mut known, mut failures) = (0, Vec::new(), Vec::new());
    for case in &cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        match check(bed, &name, case) {
            Outcome::Same => same += 1,
            Outcome::Different(report) if KNOWN_DIFFERENCES.contains(&name.as_str()) => {
                known.push(report);
            }
            Outcome::Different(report) => failures.push(report),
        }
    }
    eprintln!(
        "function cases: {} in all, {same} as OpenBao Agent, {} known differences",
        cases.len(),
        known.len()
    );
    for report in &known {
        eprintln!("known difference: {report}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
