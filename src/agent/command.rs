//! A template's `command` or `exec`: run after its files change, bounded by `command_timeout`
//! (`exec { timeout }`).
//!
//! What the agent can run itself — signals to the app (`kill -HUP $(pidof nginx)`, `pkill`,
//! `killall`, with `||`, `&&`, `;` and `sh -c` around them) — it runs in process
//! ([`super::builtin`]): the image has neither a shell nor procps. Anything else: a shell line
//! runs under `/bin/sh -c`, as consul-template does; a list runs as an argument vector with no
//! shell. The child gets no stdin and is killed when the timeout passes. The outcome is logged
//! and returned; a failing command never undoes the files.

use std::time::Duration;

use super::builtin::{self, Script, Unsupported};
use crate::config::TemplateCommand;

/// Runs `command` within `timeout`; `true` when it exited 0 in time.
pub(crate) async fn run(command: &TemplateCommand, timeout: Duration) -> bool {
    match builtin::parse(command) {
        Ok(script) => run_script(&script, timeout).await,
        Err(why) => run_program(command, timeout, &why).await,
    }
}

async fn run_script(script: &Script, timeout: Duration) -> bool {
    let Ok(outcome) = tokio::time::timeout(timeout, script.run()).await else {
        tracing::warn!(
            timeout_seconds = timeout.as_secs(),
            "template command timed out; stopped"
        );
        return false;
    };
    let report = outcome.report.trim_end();
    if outcome.status == 0 {
        tracing::info!(report, "template command succeeded (run by the agent)");
        true
    } else {
        tracing::warn!(
            status = outcome.status,
            report,
            "template command failed (run by the agent)"
        );
        false
    }
}

async fn run_program(command: &TemplateCommand, timeout: Duration, why: &Unsupported) -> bool {
    let (program, args): (&str, Vec<&str>) = match command {
        TemplateCommand::Shell(line) => ("/bin/sh", vec!["-c", line.as_str()]),
        TemplateCommand::Argv(argv) => match argv.split_first() {
            Some((program, rest)) => (program.as_str(), rest.iter().map(String::as_str).collect()),
            None => return true,
        },
    };
    let child = tokio::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(output)) if output.status.success() => {
            tracing::info!(command = program, "template command succeeded");
            true
        }
        Ok(Ok(output)) => {
            tracing::warn!(
                command = program,
                status = %output.status,
                stderr = %String::from_utf8_lossy(&output.stderr).trim(),
                "template command failed"
            );
            false
        }
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                command = program,
                error = %err,
                not_built_in = %why,
                "cannot run the template command: {program} is not in this image (the \
                 pki-sidecar image has no shell); the agent itself runs only {}",
                builtin::PROGRAMS
            );
            false
        }
        Ok(Err(err)) => {
            tracing::warn!(command = program, error = %err, "cannot run the template command");
            false
        }
        Err(_) => {
            tracing::warn!(
                command = program,
                timeout_seconds = timeout.as_secs(),
                "template command timed out; killed"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_report_success_failure_and_timeouts() {
        let argv =
            |words: &[&str]| TemplateCommand::Argv(words.iter().map(|w| w.to_string()).collect());
        assert!(run(&argv(&["true"]), Duration::from_secs(10)).await);
        assert!(!run(&argv(&["false"]), Duration::from_secs(10)).await);
        assert!(!run(&argv(&["/nonexistent/program"]), Duration::from_secs(10)).await);
        assert!(
            run(
                &TemplateCommand::Shell("exit 0".into()),
                Duration::from_secs(10)
            )
            .await
        );
        assert!(!run(&argv(&["sleep", "5"]), Duration::from_millis(100)).await);
    }
}
