//! A template's `command` or `exec`: run after its files change, bounded by `command_timeout`
//! (`exec { timeout }`).
//!
//! What the agent can run itself — signals to the app (`kill -HUP $(pidof nginx)`, `pkill`,
//! `killall`, with `||`, `&&`, `;` and `sh -c` around them) — it runs in process
//! ([`super::builtin`]): the image has neither a shell nor procps. Anything else: a shell line
//! runs under `/bin/sh -c`, as consul-template does; a list runs as an argument vector with no
//! shell. The child gets no stdin, writes to the agent's own output, and is killed with the
//! processes it started when the timeout passes. The outcome is logged and returned; a failing
//! command never undoes the files.

use std::time::Duration;

use super::builtin::{self, Script, Unsupported};
use crate::config::TemplateCommand;

/// Runs `command` within `timeout`, with `env` in its environment besides the agent's; `true`
/// when it exited 0 in time.
pub(crate) async fn run(
    command: &TemplateCommand,
    timeout: Duration,
    env: &[(String, String)],
) -> bool {
    match builtin::parse(command) {
        Ok(script) => run_script(&script, timeout).await,
        Err(why) => run_program(command, timeout, env, &why).await,
    }
}

/// The Vault connection as a template's command finds it in its environment, as consul-template
/// gives it (a command that calls the `vault` or `bao` CLI reaches the agent's Vault): the
/// address, and its TLS settings, under Vault Agent's names (`VAULT_ADDR`...) and OpenBao
/// Agent's (`BAO_ADDR`...). `SKIP_VERIFY` is `true` where nothing is verified: a plain-HTTP
/// address, or `tls_skip_verify`.
pub(crate) fn vault_environment(vault: &crate::config::Vault) -> Vec<(String, String)> {
    let mut settings = vec![("ADDR", vault.address.clone())];
    let verified = vault.address.starts_with("https://") && !vault.tls_skip_verify;
    if !verified {
        settings.push(("SKIP_VERIFY", "true".to_string()));
    }
    let paths = [
        ("CACERT", &vault.ca_cert),
        ("CAPATH", &vault.ca_path),
        ("CLIENT_CERT", &vault.client_cert),
        ("CLIENT_KEY", &vault.client_key),
    ];
    for (name, path) in paths {
        if let Some(path) = path {
            settings.push((name, path.display().to_string()));
        }
    }
    if let Some(name) = &vault.tls_server_name {
        settings.push(("TLS_SERVER_NAME", name.clone()));
    }
    ["VAULT", "BAO"]
        .iter()
        .flat_map(|prefix| {
            settings
                .iter()
                .map(move |(name, value)| (format!("{prefix}_{name}"), value.clone()))
        })
        .collect()
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

async fn run_program(
    command: &TemplateCommand,
    timeout: Duration,
    env: &[(String, String)],
    why: &Unsupported,
) -> bool {
    let (program, args): (&str, Vec<&str>) = match command {
        TemplateCommand::Shell(line) => ("/bin/sh", vec!["-c", line.as_str()]),
        TemplateCommand::Argv(argv) => match argv.split_first() {
            Some((program, rest)) => (program.as_str(), rest.iter().map(String::as_str).collect()),
            None => return true,
        },
    };
    // Its output goes where the agent's goes, as OpenBao Agent passes it on; it is waited for
    // until it exits (not until every process it started closes the output: `reload &` does
    // not hold the render up). It leads a process group of its own, so that a timeout or the
    // agent's stop ends what it started too.
    let spawned = tokio::process::Command::new(program)
        .args(&args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                command = program,
                error = %err,
                not_built_in = %why,
                "cannot run the template command: {program} is not in this image (the \
                 pki-sidecar image has no shell); the agent itself runs only {}",
                builtin::PROGRAMS
            );
            return false;
        }
        Err(err) => {
            tracing::warn!(command = program, error = %err, "cannot run the template command");
            return false;
        }
    };
    let mut group = Group(child.id());
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // Exited: what it left running in the background is its own.
            group.0 = None;
            if status.success() {
                tracing::info!(command = program, "template command succeeded");
                true
            } else {
                tracing::warn!(command = program, %status, "template command failed");
                false
            }
        }
        Ok(Err(err)) => {
            tracing::warn!(command = program, error = %err, "cannot wait for the template command");
            false
        }
        Err(_) => {
            tracing::warn!(
                command = program,
                timeout_seconds = timeout.as_secs(),
                "template command timed out; killed with the processes it started"
            );
            false
        }
    }
}

/// A running command's process group, killed (SIGKILL) when dropped before the command
/// exited: at its timeout, or when the agent stops while it runs.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(id) = self.0.and_then(|id| i32::try_from(id).ok()) {
            // ESRCH: the group is gone already.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(id),
                nix::sys::signal::Signal::SIGKILL,
            );
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
        assert!(run(&argv(&["true"]), Duration::from_secs(10), &[]).await);
        assert!(!run(&argv(&["false"]), Duration::from_secs(10), &[]).await);
        assert!(
            !run(
                &argv(&["/nonexistent/program"]),
                Duration::from_secs(10),
                &[]
            )
            .await
        );
        assert!(
            run(
                &TemplateCommand::Shell("exit 0".into()),
                Duration::from_secs(10),
                &[]
            )
            .await
        );
        assert!(!run(&argv(&["sleep", "5"]), Duration::from_millis(100), &[]).await);
    }

    /// A command that leaves a process running in the background is done when it exits (the
    /// background one holds no pipe it waits on); one that times out is killed with every
    /// process it started, so nothing it started acts later.
    #[tokio::test]
    async fn background_processes_hold_nothing_up_and_die_with_a_timed_out_command() {
        let started = std::time::Instant::now();
        let shell = |line: &str| TemplateCommand::Shell(line.to_string());
        assert!(run(&shell("sleep 5 & true"), Duration::from_secs(10), &[]).await);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "waited {:?} for a background process",
            started.elapsed()
        );
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let line = format!("(sleep 1; touch {}) & sleep 10", marker.display());
        assert!(!run(&shell(&line), Duration::from_millis(200), &[]).await);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !marker.exists(),
            "a process the timed-out command started lived on"
        );
    }

    /// A command finds the agent's Vault connection in its environment under Vault Agent's and
    /// OpenBao Agent's names, as consul-template gives it.
    #[tokio::test]
    async fn a_command_finds_the_vault_connection_in_its_environment() {
        let vault = crate::config::Vault {
            address: "https://vault.internal:8200".into(),
            ca_cert: Some("/etc/vault/ca.pem".into()),
            ca_path: None,
            client_cert: None,
            client_key: None,
            tls_skip_verify: false,
            tls_server_name: Some("vault".into()),
            namespace: None,
            num_retries: 12,
            client_timeout: Duration::from_secs(60),
        };
        let env = vault_environment(&vault);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let line = format!("env > {}", out.display());
        assert!(run(&TemplateCommand::Shell(line), Duration::from_secs(10), &env).await);
        let seen = std::fs::read_to_string(&out).unwrap();
        for prefix in ["VAULT", "BAO"] {
            for line in [
                "ADDR=https://vault.internal:8200",
                "CACERT=/etc/vault/ca.pem",
                "TLS_SERVER_NAME=vault",
            ] {
                assert!(
                    seen.contains(&format!("{prefix}_{line}\n")),
                    "{prefix}_{line}:\n{seen}"
                );
            }
            assert!(!seen.contains(&format!("{prefix}_SKIP_VERIFY")), "{seen}");
        }
        let plain = crate::config::Vault {
            address: "http://127.0.0.1:8200".into(),
            ..vault
        };
        assert!(
            vault_environment(&plain).contains(&("VAULT_SKIP_VERIFY".into(), "true".into())),
            "nothing is verified over plain HTTP, as consul-template says"
        );
    }
}
