//! The `agent` role: Vault Agent's job for this Pod.
//!
//! It writes the pid file, serves its metrics, logs in with auto_auth and keeps the token
//! alive ([`auth`]), and renders the templates — certificates above all — and keeps them fresh
//! ([`templates`], with the consul-template [`functions`]). It runs until SIGTERM, or, with
//! `exit_after_auth` (an init container), renders every template once and exits. Templates
//! fetch through a [`backend::Backend`]: Vault, or the development CA of `pki-sidecar dev`
//! ([`run_with_dev_ca`]), which needs no login.

pub mod auth;
pub mod backend;
pub mod functions;
pub mod metrics;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};

use crate::config::{Config, Role};
use crate::devca::DevCa;
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
    let template_metrics = metrics::TemplateMetrics::register(&telemetry.registry)?;
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
    tracing::info!(
        vault = %config.vault.address,
        method = auto_auth.method.kind.name(),
        mount = %auto_auth.method.mount_path,
        templates = config.templates.len(),
        metrics = %config.telemetry.metrics_listen,
        "agent starting"
    );
    let (token_tx, token_rx) = watch::channel(None);
    let relogin = Arc::new(Notify::new());
    let backend = backend::Backend::Vault {
        client: client.clone(),
        tokens: token_rx,
        relogin: relogin.clone(),
    };
    let runner = templates::TemplateRunner::new(
        config,
        backend,
        (auto_auth.method.min_backoff, auto_auth.method.max_backoff),
        template_metrics,
        telemetry.readiness.clone(),
    )?;
    let keeper = auth::TokenKeeper {
        authenticator: auth::Authenticator::new(client.clone(), auto_auth.method.clone()),
        client,
        sinks: auto_auth.sinks.clone(),
        method: auto_auth.method.clone(),
        metrics: agent_metrics,
        readiness: telemetry.readiness.clone(),
        token_tx,
        relogin,
    };
    let shutdown = lifecycle.shutdown.clone();
    let result = if config.exit_after_auth {
        // An init container: one login, every template once, then exit.
        match keeper.run(shutdown.clone(), true).await {
            Ok(auth::KeeperExit::Authenticated) => {
                runner.run(&shutdown, lifecycle.reloads(), true).await
            }
            Ok(auth::KeeperExit::Shutdown) => Ok(()),
            Err(err) => Err(err),
        }
    } else {
        let keeper = keeper.run(shutdown.clone(), false);
        let runner = runner.run(&shutdown, lifecycle.reloads(), false);
        tokio::pin!(keeper, runner);
        // Both run until shutdown; an error from either (exit_on_err,
        // exit_on_retry_failure) ends the agent.
        tokio::select! {
            result = &mut keeper => result.map(|_| ()),
            result = &mut runner => result,
        }
    };
    lifecycle.shutdown.cancel();
    let _ = metrics_task.await;
    result?;
    if config.exit_after_auth {
        tracing::info!("exit_after_auth: every template rendered; exiting");
    } else {
        tracing::info!("agent stopped");
    }
    Ok(())
}

/// Retry bounds for templates served by the development CA (Vault Agent's auth defaults).
const DEV_CA_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// Runs the agent's templates against the in-process development CA until shutdown: the same
/// runner, renewal schedule, atomic writes and metrics as [`run`], without a login. No auth or
/// token metric is registered, since nothing logs in.
pub async fn run_with_dev_ca(
    config: &Config,
    lifecycle: Lifecycle,
    ca: Arc<DevCa>,
) -> anyhow::Result<()> {
    let telemetry = Telemetry::new().context("cannot register the agent's metrics")?;
    let template_metrics = metrics::TemplateMetrics::register(&telemetry.registry)?;
    let metrics_listener =
        http_server::bind(config.telemetry.metrics_listen, "telemetry.metrics_listen").await?;
    let metrics_task = tokio::spawn(
        telemetry
            .clone()
            .serve(metrics_listener, lifecycle.shutdown.clone()),
    );
    let backend = backend::Backend::DevCa(ca);
    tracing::info!(
        issuer = %backend.describe(),
        templates = config.templates.len(),
        metrics = %config.telemetry.metrics_listen,
        "agent starting"
    );
    let runner = templates::TemplateRunner::new(
        config,
        backend,
        DEV_CA_BACKOFF,
        template_metrics,
        telemetry.readiness.clone(),
    )?;
    let shutdown = lifecycle.shutdown.clone();
    let result = runner.run(&shutdown, lifecycle.reloads(), false).await;
    lifecycle.shutdown.cancel();
    let _ = metrics_task.await;
    result?;
    tracing::info!("agent stopped");
    Ok(())
}
