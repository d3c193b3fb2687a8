//! The `agent` role: Vault Agent's job for this Pod.
//!
//! It writes the pid file, serves its metrics, logs in with auto_auth and keeps the token
//! alive ([`auth`]), and renders the templates — certificates above all — and keeps them fresh
//! ([`runner`]; one template's passes in [`render`], the `pkiCert` decisions in [`pki`], the
//! consul-template [`functions`], a template's `command` in `command`). It runs until
//! shutdown, or, with `exit_after_auth` (an init container), renders every template once and
//! exits. With `env_template` and `exec` it runs a child process with the rendered variables
//! and restarts it when they change (`supervisor`), ending when the child does.
//!
//! Assembly is the same for every role: [`Agent::build`] turns the parsed config into a
//! runnable agent (registering its metrics, touching neither the network nor the disk), and
//! [`Agent::serve`] runs it on a listener bound by the caller until shutdown. Templates fetch
//! through a [`backend::Backend`]: Vault by default; [`Agent::with_backend`] takes any other
//! (the development CA of `pki-sidecar dev`, a test's scripted issuer), which needs no login.

mod api_proxy;
pub(crate) mod auth;
pub mod backend;
pub(crate) mod builtin;
mod command;
pub mod functions;
pub(crate) mod kv;
pub(crate) mod library;
pub(crate) mod metrics;
pub mod pki;
pub mod render;
mod response;
pub(crate) mod runner;
mod scratch;
mod supervisor;

pub use supervisor::ChildExited;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{AgentConfig, Templates};
use crate::lifecycle::Lifecycle;
use crate::schedule::Clock;
use crate::telemetry::Telemetry;
use crate::vault::{VaultClient, VaultMetrics};
use backend::{Backend, VaultBackend};

/// Retry bounds for templates served by a backend without a login (Vault Agent's auth
/// defaults, which are what bound a Vault-backed agent's retries unless the file says
/// otherwise).
const DEFAULT_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// A configured agent, ready to serve.
pub struct Agent {
    telemetry: Telemetry,
    runner: runner::TemplateRunner,
    /// The token keeper, when the backend is Vault.
    keeper: Option<auth::TokenKeeper>,
    pid_file: Option<PathBuf>,
    exit_after_auth: bool,
    /// The API proxy (`listener "tcp"`): what serves its requests, and its bound listeners
    /// with their `require_request_header`.
    api_proxy: Option<Arc<api_proxy::Forwarder>>,
    /// Each API listener, with its `require_request_header` and `agent_api.enable_quit`.
    api_listeners: Vec<(TcpListener, bool, bool)>,
    shutdown_grace: Duration,
    /// The `exec` child's supervisor, fed by the runner's `env_template` values.
    supervisor: Option<supervisor::Supervisor>,
    /// `revoke_token_on_shutdown`: the grace, the client and the current token.
    revoke: Option<Revoke>,
}

/// What revoking the token at shutdown needs.
struct Revoke {
    grace: Duration,
    client: VaultClient,
    tokens: watch::Receiver<Option<Arc<crate::vault::Token>>>,
}

impl Revoke {
    /// Waits the grace (cut short by a second stop signal), then revokes the current token
    /// (`auth/token/revoke-self`), which revokes the leases read with it too.
    async fn run(self, abort: &CancellationToken) {
        let Some(token) = self.tokens.borrow().clone() else {
            return;
        };
        tracing::info!(
            grace_seconds = crate::timefmt::log_seconds(self.grace),
            "revoking the agent's token after the grace (revoke_token_on_shutdown)"
        );
        tokio::select! {
            () = tokio::time::sleep(self.grace) => {}
            () = abort.cancelled() => {}
        }
        match self
            .client
            .raw(
                "revoke_self",
                http::Method::POST,
                "auth/token/revoke-self",
                &token.secret,
                None,
            )
            .await
        {
            Ok(_) => tracing::info!("revoked the agent's token and its leases"),
            Err(err) => tracing::warn!(error = %err, "cannot revoke the agent's token"),
        }
    }
}

impl Agent {
    /// The production agent: templates fetched from Vault with the token its keeper gets by
    /// `auto_auth`. Reads the CA files Vault's TLS needs; calls nothing yet.
    pub fn build(config: &AgentConfig, telemetry: Telemetry) -> anyhow::Result<Agent> {
        let method = &config.auto_auth.method;
        let vault_metrics = VaultMetrics::register(&telemetry.registry)?;
        let vault_agent = metrics::VaultAgentCounters::register(
            &telemetry.registry,
            &config.telemetry.vault_agent_prefixes,
            config.api_proxy.as_ref().is_some_and(|proxy| proxy.cache),
        )?;
        let agent_metrics = metrics::AgentMetrics::register(
            &telemetry.registry,
            method.kind.name(),
            vault_agent.clone(),
        )?;
        let client = VaultClient::new(&config.vault, vault_metrics)
            .with_context(|| {
                format!(
                    "cannot set up the connection to Vault at {}",
                    config.vault.address
                )
            })?
            .limit_in_flight(config.templates.settings.max_connections_per_host);
        telemetry.readiness.not_ready(
            auth::READY_CONDITION,
            format!(
                "no Vault token yet (logging in to {})",
                config.vault.address
            ),
        );
        if !config.auto_auth.sinks.is_empty() {
            telemetry.readiness.not_ready(
                auth::SINK_READY_CONDITION,
                "no token written to the sinks yet",
            );
        }
        let (token_tx, token_rx) = watch::channel(None);
        // disable_idle_connections / disable_keep_alives: that part's requests get a client
        // of their own that closes each connection after its request.
        let part = |fresh: bool| -> anyhow::Result<VaultClient> {
            if fresh {
                client.without_connection_reuse()
            } else {
                Ok(client.clone())
            }
        };
        let fresh = config.fresh_connections;
        let forwarder = match &config.api_proxy {
            Some(proxy) => Some(Arc::new(api_proxy::Forwarder::new(
                part(fresh.api_proxy)?,
                token_rx.clone(),
                proxy.use_auto_auth_token,
                telemetry.clone(),
                vault_agent,
            )?)),
            None => None,
        };
        let templating = part(fresh.templating)?;
        let auth_client = part(fresh.auto_auth)?;
        let relogin = Arc::new(Notify::new());
        let backend = VaultBackend {
            // With `exit_on_retry_failure` a failed render ends the agent: its calls use every
            // retry rather than hand an outage to a backoff that will not run.
            client: if config.templates.settings.exit_on_retry_failure {
                templating.retrying_while_down()
            } else {
                templating
            },
            tokens: token_rx.clone(),
            relogin: relogin.clone(),
        };
        let revoke = config
            .revoke_on_shutdown
            .filter(|_| !config.exit_after_auth)
            .map(|grace| Revoke {
                grace,
                client: auth_client.clone(),
                tokens: token_rx.clone(),
            });
        let keeper = auth::TokenKeeper {
            authenticator: auth::Authenticator::new(auth_client.clone(), method.clone()),
            client: auth_client,
            sinks: config.auto_auth.sinks.clone(),
            method: method.clone(),
            metrics: agent_metrics,
            readiness: telemetry.readiness.clone(),
            token_tx,
            relogin,
        };
        tracing::info!(
            vault = %config.vault.address,
            method = method.kind.name(),
            mount = %method.mount_path,
            templates = config.templates.templates.len(),
            "agent configured"
        );
        let mut agent = Agent::assemble(
            &config.templates,
            Box::new(backend),
            (method.min_backoff, method.max_backoff),
            telemetry,
            Clock::System,
        )?;
        agent.keeper = Some(keeper);
        agent.pid_file = config.pid_file.clone();
        agent.exit_after_auth = config.exit_after_auth;
        agent.api_proxy = forwarder;
        agent.shutdown_grace = config.shutdown_grace;
        agent.revoke = revoke;
        agent
            .runner
            .set_command_env(command::vault_environment(&config.vault));
        if let Some(exec) = &config.exec {
            let (env_tx, env_rx) = watch::channel(None);
            agent.runner.set_env_sink(env_tx);
            agent.supervisor = Some(supervisor::Supervisor {
                exec: exec.clone(),
                env: env_rx,
                // Most of the grace, so the child is gone before the agent's watchdog ends it.
                shutdown_kill_after: config.shutdown_grace.mul_f64(0.8),
            });
        }
        Ok(agent)
    }

    /// An agent whose templates fetch from `backend`, which needs no login: no token keeper,
    /// no auth or token metrics. Everything else — the runner, the renewal schedule, the atomic
    /// writes, the metrics — is the production agent's.
    pub fn with_backend(
        templates: &Templates,
        backend: Box<dyn Backend>,
        telemetry: Telemetry,
        clock: Clock,
    ) -> anyhow::Result<Agent> {
        tracing::info!(
            issuer = %backend.describe(),
            templates = templates.templates.len(),
            "agent configured"
        );
        Agent::assemble(templates, backend, DEFAULT_BACKOFF, telemetry, clock)
    }

    fn assemble(
        templates: &Templates,
        backend: Box<dyn Backend>,
        backoff: (Duration, Duration),
        telemetry: Telemetry,
        clock: Clock,
    ) -> anyhow::Result<Agent> {
        let template_metrics =
            metrics::TemplateMetrics::register(&telemetry.registry, &templates.cert_labels)?;
        let runner = runner::TemplateRunner::new(
            templates,
            backend,
            backoff,
            template_metrics,
            telemetry.readiness.clone(),
            clock,
        )?;
        Ok(Agent {
            telemetry,
            runner,
            keeper: None,
            pid_file: None,
            exit_after_auth: false,
            api_proxy: None,
            api_listeners: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
            supervisor: None,
            revoke: None,
        })
    }

    /// Serves `metrics_listener` and runs the agent until `lifecycle` shuts down (or, with
    /// `exit_after_auth`, until every template rendered once); `Ok` is a clean exit.
    pub async fn serve(
        self,
        metrics_listener: TcpListener,
        lifecycle: Lifecycle,
    ) -> anyhow::Result<()> {
        let _pid_file = self
            .pid_file
            .as_deref()
            .map(auth::PidFile::create)
            .transpose()?;
        let metrics_task = self
            .telemetry
            .start(metrics_listener, lifecycle.shutdown.clone());
        let mut proxy_tasks = Vec::new();
        if let Some(forwarder) = &self.api_proxy {
            for (listener, require_request_header, enable_quit) in self.api_listeners {
                let forwarder = forwarder.clone();
                let shutdown = lifecycle.shutdown.clone();
                let service = hyper::service::service_fn(move |request| {
                    let forwarder = forwarder.clone();
                    let shutdown = shutdown.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            forwarder
                                .handle(request, require_request_header, enable_quit, &shutdown)
                                .await,
                        )
                    }
                });
                proxy_tasks.push(crate::telemetry::spawn_in_span(crate::http_server::serve(
                    listener,
                    service,
                    lifecycle.shutdown.clone(),
                    self.shutdown_grace,
                    "api proxy",
                )));
            }
        }
        let shutdown = lifecycle.shutdown.clone();
        let result = run_parts(
            self.keeper,
            self.runner,
            self.supervisor,
            &shutdown,
            lifecycle.reloads(),
            self.exit_after_auth,
        )
        .await;
        // A stop signal (not an error, not the exec child's exit): the token goes last.
        if result.is_ok()
            && lifecycle.shutdown.is_cancelled()
            && let Some(revoke) = self.revoke
        {
            revoke.run(&lifecycle.abort).await;
        }
        // Whether a stop signal (or the quit endpoint) ended it, rather than its own end.
        let stopped = lifecycle.shutdown.is_cancelled();
        lifecycle.shutdown.cancel();
        let _ = metrics_task.await;
        for task in proxy_tasks {
            let _ = task.await;
        }
        result?;
        if self.exit_after_auth && !stopped {
            tracing::info!("exit_after_auth: every template rendered; exiting");
        } else {
            tracing::info!("agent stopped");
        }
        Ok(())
    }
}

/// The keeper (if any), the runner and the supervisor (if any), until shutdown or the first
/// error (the `exec` child's exit is one).
async fn run_parts(
    keeper: Option<auth::TokenKeeper>,
    runner: runner::TemplateRunner,
    supervisor: Option<supervisor::Supervisor>,
    shutdown: &CancellationToken,
    reloads: watch::Receiver<u64>,
    exit_after_auth: bool,
) -> anyhow::Result<()> {
    if let Some(supervisor) = supervisor {
        let child = supervisor.run(shutdown);
        let others = Box::pin(run_parts(
            keeper,
            runner,
            None,
            shutdown,
            reloads,
            exit_after_auth,
        ));
        tokio::pin!(child);
        // The supervisor stops its child at shutdown: when the others end first (an error),
        // the agent stops, and the child with it.
        return tokio::select! {
            result = &mut child => result,
            result = others => {
                shutdown.cancel();
                child.await?;
                result
            }
        };
    }
    let Some(keeper) = keeper else {
        return runner.run(shutdown, reloads, false).await;
    };
    if exit_after_auth {
        // An init container: one login, every template once, then exit.
        return match keeper.run(shutdown.clone(), true).await? {
            auth::KeeperExit::Authenticated => runner.run(shutdown, reloads, true).await,
            auth::KeeperExit::Shutdown => Ok(()),
        };
    }
    let keeper = keeper.run(shutdown.clone(), false);
    let runner = runner.run(shutdown, reloads, false);
    tokio::pin!(keeper, runner);
    // Both run until shutdown; an error from either (exit_on_err, exit_on_retry_failure) ends
    // the agent.
    tokio::select! {
        result = &mut keeper => result.map(|_| ()),
        result = &mut runner => result,
    }
}

/// Binds the agent's metrics listener. A Vault Agent file says nothing of this port, and the
/// default may be another process's (a second agent on the host, the app): the agent's job,
/// its files, does not depend on it, so a taken default gives a loopback port of the system's
/// choosing, with a warning. A port the configuration names is still an error.
async fn bind_metrics(telemetry: &crate::config::Telemetry) -> anyhow::Result<TcpListener> {
    let key = "telemetry.metrics_listen";
    let backlog = telemetry.listen_backlog;
    match crate::http_server::bind(telemetry.metrics_listen, key, backlog).await {
        Ok(listener) => Ok(listener),
        Err(err) if !telemetry.metrics_listen_given && address_in_use(&err) => {
            let fallback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let listener = crate::http_server::bind(fallback, key, backlog).await?;
            tracing::warn!(
                default = %telemetry.metrics_listen,
                instead = %listener.local_addr().unwrap_or(fallback),
                "the default metrics address is taken by another process: the metrics are \
                 served on a loopback port instead; set telemetry {{ metrics_listen }} to choose \
                 one"
            );
            Ok(listener)
        }
        Err(err) => Err(err),
    }
}

/// Whether `err` (from a bind) is an address another socket holds.
fn address_in_use(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// Runs the agent of `config` until shutdown: binds its metrics listener, builds, serves.
pub async fn run(config: &AgentConfig, lifecycle: Lifecycle) -> anyhow::Result<()> {
    run_in_span(config, lifecycle)
        .instrument(crate::telemetry::role_span("agent"))
        .await
}

async fn run_in_span(config: &AgentConfig, lifecycle: Lifecycle) -> anyhow::Result<()> {
    // The first login reads its credential on the blocking pool and the first certificate is
    // written there: its thread starts now, alongside the listener and the pid file, instead
    // of when the login waits on it (part of the time to the first certificate).
    drop(tokio::task::spawn_blocking(|| ()));
    let metrics_listener = bind_metrics(&config.telemetry).await?;
    let mut api_listeners = Vec::new();
    for (index, listener) in config
        .api_proxy
        .iter()
        .flat_map(|p| p.listeners.iter())
        .enumerate()
    {
        let key = format!("listener[{index}].address");
        let bound =
            crate::http_server::bind(listener.address, &key, config.telemetry.listen_backlog)
                .await?;
        api_listeners.push((bound, listener.require_request_header, listener.enable_quit));
    }
    let telemetry = Telemetry::new().context("cannot register the agent's metrics")?;
    tracing::info!(metrics = %config.telemetry.metrics_listen, "agent starting");
    let mut agent = Agent::build(config, telemetry)?;
    agent.api_listeners = api_listeners;
    agent.serve(metrics_listener, lifecycle).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A taken default metrics address (a Vault Agent file names none) gives a loopback port
    /// instead, so the agent still does its job; a taken address the file names is an error.
    #[tokio::test]
    async fn a_taken_default_metrics_address_gives_a_loopback_port_a_named_one_an_error() {
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = squatter.local_addr().unwrap();
        let telemetry = |given: bool| crate::config::Telemetry {
            metrics_listen: taken,
            metrics_listen_given: given,
            cert_labels: Default::default(),
            listen_backlog: 16,
            vault_agent_prefixes: Vec::new(),
        };
        let listener = bind_metrics(&telemetry(false)).await.unwrap();
        let bound = listener.local_addr().unwrap();
        assert!(bound.ip().is_loopback());
        assert_ne!(bound.port(), taken.port());
        let err = bind_metrics(&telemetry(true)).await.unwrap_err();
        assert!(address_in_use(&err), "{err:#}");
        assert!(
            format!("{err:#}").contains("telemetry.metrics_listen"),
            "{err:#}"
        );
    }
}
