//! The top-level `exec {}`: Vault Agent's process supervisor mode.
//!
//! The runner renders the `env_template` blocks; once every one has a value, the command
//! starts with the agent's own environment plus those variables (theirs win), sharing the
//! agent's stdin, stdout and stderr. When a value changes, the child is stopped with
//! `restart_stop_signal` (killed 30 s later if still running) and started again with the new
//! values, unless `restart_on_secret_changes = "never"`. When the child exits on its own, the
//! agent exits with its status (128 + the signal's number when a signal ended it). At
//! shutdown the child gets the same stop signal, and is killed if it outlives most of the
//! agent's shutdown grace.
//!
//! A one-string command with a space runs under `sh -c` in a process group of its own, so the
//! stop signal reaches the shell's children too, as consul-template does.

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::runner::EnvVars;
use crate::config::{Exec, TemplateCommand};

/// How long a child stopped for a restart has before it is killed (Vault Agent's figure).
const RESTART_KILL_AFTER: Duration = Duration::from_secs(30);

/// The child ended on its own: the agent ends with its status.
#[derive(Debug)]
pub struct ChildExited {
    /// The child's exit status, or 128 + the number of the signal that ended it.
    pub code: i32,
}

impl std::fmt::Display for ChildExited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the exec command exited with status {}", self.code)
    }
}

impl std::error::Error for ChildExited {}

/// Runs the `exec` command with the rendered variables.
pub(crate) struct Supervisor {
    pub(crate) exec: Exec,
    pub(crate) env: watch::Receiver<Option<Arc<EnvVars>>>,
    /// How long the child has after the stop signal at shutdown before it is killed.
    pub(crate) shutdown_kill_after: Duration,
}

impl Supervisor {
    /// Waits for the first complete set of variables, starts the child and keeps it running
    /// with current values until shutdown (`Ok`) or until it exits on its own
    /// ([`ChildExited`]).
    pub(crate) async fn run(mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let Some(vars) = self.next_values(shutdown).await else {
            return Ok(());
        };
        let mut child = self.start(&vars)?;
        let mut values_open = true;
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_err(|err| anyhow!("waiting for the exec command: {err}"))?;
                    let code = status
                        .code()
                        .or_else(|| status.signal().map(|signal| 128 + signal))
                        .unwrap_or(1);
                    tracing::info!(status = code, "the exec command exited; the agent exits with its status");
                    return Err(ChildExited { code }.into());
                }
                () = shutdown.cancelled() => {
                    self.stop(&mut child, self.shutdown_kill_after).await;
                    return Ok(());
                }
                changed = self.env.changed(), if values_open => {
                    if changed.is_err() {
                        // The runner is gone (the agent is stopping): nothing more will come.
                        values_open = false;
                        continue;
                    }
                    let Some(vars) = self.env.borrow_and_update().clone() else {
                        continue;
                    };
                    if !self.exec.restart_on_secret_changes {
                        tracing::info!(
                            "an env_template value changed; the exec command keeps running \
                             (restart_on_secret_changes = \"never\")"
                        );
                        continue;
                    }
                    tracing::info!("an env_template value changed: restarting the exec command");
                    self.stop(&mut child, RESTART_KILL_AFTER).await;
                    child = self.start(&vars)?;
                }
            }
        }
    }

    /// The first complete set of values, or `None` at shutdown.
    async fn next_values(&mut self, shutdown: &CancellationToken) -> Option<Arc<EnvVars>> {
        loop {
            if let Some(vars) = self.env.borrow_and_update().clone() {
                return Some(vars);
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                changed = self.env.changed() => {
                    if changed.is_err() {
                        shutdown.cancelled().await;
                        return None;
                    }
                }
            }
        }
    }

    fn start(&self, vars: &EnvVars) -> anyhow::Result<Child> {
        let (program, args, shell) = match &self.exec.command {
            TemplateCommand::Shell(line) => ("/bin/sh", vec!["-c", line.as_str()], true),
            TemplateCommand::Argv(argv) => match argv.split_first() {
                Some((program, rest)) => (
                    program.as_str(),
                    rest.iter().map(String::as_str).collect(),
                    false,
                ),
                None => return Err(anyhow!("exec.command is empty")),
            },
        };
        let mut command = Command::new(program);
        command
            .args(&args)
            .envs(vars.iter())
            .stdin(std::process::Stdio::inherit())
            .stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            // Should the agent end abruptly (an error), the child does not outlive it.
            .kill_on_drop(true);
        if shell {
            command.process_group(0);
        }
        let child = command.spawn().map_err(|err| {
            anyhow!(
                "cannot start the exec command {program} (exec.command): {err}; give a \
                     path the agent's user can execute, absolute or relative to the agent's \
                     working directory"
            )
        })?;
        tracing::info!(
            pid = child.id(),
            command = program,
            variables = vars.len(),
            "exec command started"
        );
        Ok(child)
    }

    /// Sends the stop signal and waits up to `kill_after` for the child to exit, then kills
    /// it (its process group, for a shell line).
    async fn stop(&self, child: &mut Child, kill_after: Duration) {
        let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
            return;
        };
        let group = matches!(self.exec.command, TemplateCommand::Shell(_));
        let send = |signal: Signal| {
            let result = if group {
                signal::killpg(Pid::from_raw(pid), signal)
            } else {
                signal::kill(Pid::from_raw(pid), signal)
            };
            if let Err(err) = result {
                tracing::debug!(pid, %signal, error = %err, "cannot signal the exec command");
            }
        };
        let stop_signal =
            Signal::try_from(self.exec.restart_stop_signal).unwrap_or(Signal::SIGTERM);
        tracing::info!(pid, signal = %stop_signal, "stopping the exec command");
        send(stop_signal);
        match tokio::time::timeout(kill_after, child.wait()).await {
            Ok(Ok(status)) => tracing::info!(pid, %status, "the exec command stopped"),
            Ok(Err(err)) => tracing::warn!(pid, error = %err, "waiting for the exec command"),
            Err(_) => {
                tracing::warn!(
                    pid,
                    seconds = kill_after.as_secs_f64(),
                    "the exec command did not stop in time; killing it"
                );
                send(Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor(
        command: TemplateCommand,
        restart: bool,
    ) -> (Supervisor, watch::Sender<Option<Arc<EnvVars>>>) {
        let (tx, rx) = watch::channel(None);
        (
            Supervisor {
                exec: Exec {
                    command,
                    restart_on_secret_changes: restart,
                    restart_stop_signal: Signal::SIGTERM as i32,
                },
                env: rx,
                shutdown_kill_after: Duration::from_secs(5),
            },
            tx,
        )
    }

    fn vars(pairs: &[(&str, &str)]) -> Option<Arc<EnvVars>> {
        Some(Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    #[tokio::test]
    async fn the_child_sees_the_variables_and_its_status_is_the_agents() {
        let (supervisor, tx) = supervisor(
            TemplateCommand::Shell("test \"$GREETING\" = hello && exit 7".into()),
            true,
        );
        tx.send_replace(vars(&[("GREETING", "hello")]));
        let err = supervisor.run(&CancellationToken::new()).await.unwrap_err();
        assert_eq!(
            err.downcast_ref::<ChildExited>().map(|e| e.code),
            Some(7),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn a_change_restarts_the_child_with_the_new_values() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // Each start appends its value, then waits to be stopped.
        let line = format!("echo \"$V\" >> {}; exec sleep 30", log.display());
        let (supervisor, tx) = supervisor(TemplateCommand::Shell(line), true);
        tx.send_replace(vars(&[("V", "one")]));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { supervisor.run(&shutdown).await }
        });
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        let wait_for = |want: &'static str| async move {
            for _ in 0..200 {
                if read() == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("log is {:?}, not {want:?}", read());
        };
        wait_for("one\n").await;
        tx.send_replace(vars(&[("V", "two")]));
        wait_for("one\ntwo\n").await;
        shutdown.cancel();
        run.await.unwrap().expect("a clean stop at shutdown");
    }

    #[tokio::test]
    async fn never_keeps_the_child_running() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let line = format!("echo \"$V\" >> {}; exec sleep 30", log.display());
        let (supervisor, tx) = supervisor(TemplateCommand::Shell(line), false);
        tx.send_replace(vars(&[("V", "one")]));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { supervisor.run(&shutdown).await }
        });
        for _ in 0..200 {
            if std::fs::read_to_string(&log).unwrap_or_default() == "one\n" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tx.send_replace(vars(&[("V", "two")]));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\n");
        shutdown.cancel();
        run.await.unwrap().expect("a clean stop at shutdown");
    }

    #[tokio::test]
    async fn a_child_ignoring_the_stop_signal_is_killed() {
        let (mut supervisor, tx) = supervisor(
            TemplateCommand::Argv(vec![
                "sh".into(),
                "-c".into(),
                "trap '' TERM; sleep 30 & wait; sleep 30".into(),
            ]),
            true,
        );
        supervisor.shutdown_kill_after = Duration::from_millis(300);
        tx.send_replace(vars(&[("V", "one")]));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { supervisor.run(&shutdown).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), run).await;
        ended.expect("killed within the grace").unwrap().unwrap();
    }
}
