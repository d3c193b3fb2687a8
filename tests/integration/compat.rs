//! The template compatibility suite (`tests/compat/templates/`, COMPATIBILITY.md): every case
//! of every area rendered by this build's `pki-sidecar agent` against a real OpenBao and
//! compared with OpenBao Agent's recorded output, byte for byte, by
//! `scripts/compat-templates.sh`. CI also runs it with `--live 30`, re-rendering a sample with
//! `bao agent` itself.

use crate::util;

#[test]
fn every_template_case_renders_as_openbao_agent_rendered_it() {
    let output = std::process::Command::new("bash")
        .arg(util::repo().join("scripts/compat-templates.sh"))
        .env("PKI_SIDECAR", util::bin())
        .current_dir(util::repo())
        .output()
        .expect("run scripts/compat-templates.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains(" 0 failures"), "{text}");
}
