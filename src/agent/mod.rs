//! The `agent` role: Vault Agent's job for this Pod.
//!
//! It writes the pid file, serves its metrics, logs in with auto_auth and keeps the token
//! alive ([`auth`]). It runs until SIGTERM, or exits after the first login with
//! `exit_after_auth` (an init container).

pub mod auth;
pub mod metrics;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::{Config, Role};
use crate::http_server;
use crate::lifecycle::Lifecycle;
use crate::telemetry::Telemetry;
use crate::vault::{VaultClient, VaultMetrics};

/// Runs the agent until shutdown; `Ok` is a clean exit.
pub async fn run(config: &Config, lifecycle: Lifecycle) -> anyhow::Result<()> {
    config
        .check_role(Role::Agent)
        .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let auto_auth = config
        .auto_auth
        .clone()
        .context("the agent needs an auto_auth block")?;
    let _pid_file = config
        .pid_file
        .as_deref()
        .map(auth::PidFile::create)
        .transpose()?;

    let telemetry = Telemetry::new().context("cannot register the agent's metrics")?;
    let vault_metrics = VaultMetrics::register(&telemetry.registry)?;
    let agent_metrics =
        metrics::AgentMetrics::register(&telemetry.registry, auto_auth.method.kind.name())?;
    telemetry.readiness.not_ready(
        auth::READY_CONDITION,
        format!(
            "no Vault token yet (logging in to {})",
            config.vault.address
        ),
    );
    let metrics_listener =
        http_server::bind(config.telemetry.metrics_listen, "telemetry.metrics_listen").await?;
    let metrics_task = tokio::spawn(
        telemetry
            .clone()
            .serve(metrics_listener, lifecycle.shutdown.clone()),
    );

    let client = VaultClient::new(&config.vault, vault_metrics).with_context(|| {
        format!(
            "cannot set up the connection to Vault at {}",
            config.vault.address
        )
    })?;
    if !config.templates.is_empty() {
        tracing::warn!(
            templates = config.templates.len(),
            "template blocks are not rendered by this version yet; only the token is kept alive"
        );
    }
    let mut reloads = lifecycle.reloads();
    tokio::spawn(async move {
        while reloads.changed().await.is_ok() {
            tracing::info!("SIGHUP: the agent has nothing to reload yet");
        }
    });
    tracing::info!(
        vault = %config.vault.address,
        method = auto_auth.method.kind.name(),
        mount = %auto_auth.method.mount_path,
        metrics = %config.telemetry.metrics_listen,
        "agent starting"
    );
    let (token_tx, _token_rx) = watch::channel(None);
    let keeper = auth::TokenKeeper {
        authenticator: auth::Authenticator::new(client.clone(), auto_auth.method.clone()),
        client,
        sinks: auto_auth.sinks.clone(),
        method: auto_auth.method.clone(),
        metrics: agent_metrics,
        readiness: telemetry.readiness.clone(),
        token_tx,
    };
    let result = keeper
        .run(lifecycle.shutdown.clone(), config.exit_after_auth)
        .await;
    lifecycle.shutdown.cancel();
    let _ = metrics_task.await;
    match result? {
        auth::KeeperExit::Authenticated => tracing::info!("exit_after_auth: done"),
        auth::KeeperExit::Shutdown => tracing::info!("agent stopped"),
    }
    Ok(())
}
