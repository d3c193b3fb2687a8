//! A template's `command` or `exec`: run after its files change, bounded by `command_timeout`
//! (`exec { timeout }`).
//!
//! A shell line runs under `/bin/sh -c`, as consul-template does; a list runs as an argument
//! vector with no shell. The child gets no stdin and is killed when the timeout passes. The
//! outcome is logged and returned; a failing command never undoes the files.

use std::time::Duration;

use crate::config::TemplateCommand;

/// Runs `command` within `timeout`; `true` when it exited 0 in time.
pub(crate) async fn run(command: &TemplateCommand, timeout: Duration) -> bool {
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
