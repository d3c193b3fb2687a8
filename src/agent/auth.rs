//! auto_auth: logging in with the configured method, and keeping a live token for as long as
//! the agent runs.
//!
//! [`Authenticator`] performs one login, reading its credential files afresh every time (a
//! projected ServiceAccount token rotates under the agent's feet). [`TokenKeeper`] owns the
//! token's life: it publishes each token (sink files, a watch channel for the template
//! renderer, metrics), renews it at about 2/3 of its TTL, and logs in again when the token is
//! not renewable, is capped by its max TTL, or is refused. Every failure path waits with the
//! method's backoff; every wait ends at shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::AgentMetrics;
use crate::config::{AuthKind, AuthMethod, FileSink};
use crate::fsutil;
use crate::schedule::{self, Backoff};
use crate::secret::Secret;
use crate::telemetry::Readiness;
use crate::vault::{Token, VaultClient, VaultError};

/// The readiness condition this module owns.
pub(crate) const READY_CONDITION: &str = "vault_token";
/// The readiness condition of the sinks: every sink holds the current token.
pub(crate) const SINK_READY_CONDITION: &str = "vault_token_sinks";

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    /// A credential file could not be read (it may appear later).
    #[error("{0:#}")]
    Credentials(anyhow::Error),
    /// Vault refused or could not be reached.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Performs logins with one auth method.
pub(crate) struct Authenticator {
    client: VaultClient,
    method: AuthMethod,
    /// A secret ID or JWT whose file was removed after reading, kept for later logins as
    /// Vault Agent does.
    remembered: Option<Secret>,
}

impl Authenticator {
    /// An authenticator for `method` talking to `client`.
    pub(crate) fn new(client: VaultClient, method: AuthMethod) -> Authenticator {
        Authenticator {
            client,
            method,
            remembered: None,
        }
    }

    /// The method's name, for metrics and logs.
    pub(crate) fn method_name(&self) -> &'static str {
        self.method.kind.name()
    }

    /// One login attempt (with the client's own retries inside).
    pub(crate) async fn login(&mut self) -> Result<Token, LoginError> {
        let mount = self.method.mount().to_string();
        let namespace = self.method.namespace.clone();
        let namespace = namespace.as_deref();
        match self.method.kind.clone() {
            AuthKind::Kubernetes { role, token_path } => {
                let jwt =
                    read_credential(&token_path, "the ServiceAccount token (token_path)").await?;
                Ok(self
                    .client
                    .login_kubernetes(&mount, &role, &jwt, namespace)
                    .await?)
            }
            AuthKind::Jwt { path, role } => {
                let jwt = read_credential(&path, "the JWT (config.path)").await?;
                Ok(self
                    .client
                    .login_jwt(&mount, &role, &jwt, namespace)
                    .await?)
            }
            AuthKind::AppRole {
                role_id_file_path,
                secret_id_file_path,
                remove_secret_id_file_after_reading,
                secret_id_response_wrapping_path,
            } => {
                let role_id = read_credential(&role_id_file_path, "the AppRole role ID").await?;
                let secret_id = match &secret_id_file_path {
                    None => Secret::default(),
                    Some(path) => {
                        self.secret_id(
                            path,
                            remove_secret_id_file_after_reading,
                            secret_id_response_wrapping_path.as_deref(),
                        )
                        .await?
                    }
                };
                Ok(self
                    .client
                    .login_approle(&mount, role_id.expose(), &secret_id, namespace)
                    .await?)
            }
            AuthKind::TokenFile { token_file_path } => {
                let secret =
                    read_credential(&token_file_path, "the token file (token_file_path)").await?;
                Ok(self.client.lookup_self(&secret).await?)
            }
            AuthKind::Cert {
                name,
                client_cert,
                client_key,
                ca_cert,
            } => {
                // The certificate files are read afresh for each login (a renewed client
                // certificate is used at once), as Vault Agent's `reload = true`.
                let client = if client_cert.is_some() || ca_cert.is_some() {
                    self.client
                        .with_login_tls(client_cert.zip(client_key), ca_cert)
                        .map_err(LoginError::Credentials)?
                } else {
                    self.client.clone()
                };
                Ok(client
                    .login_cert(&mount, name.as_deref(), namespace)
                    .await?)
            }
        }
    }

    /// The secret ID from its file, or the one remembered after the file was removed. With
    /// `wrapped_at`, the file holds a response-wrapping token: as Vault Agent, the token's
    /// creation path must be `wrapped_at` (so a token wrapped by anyone else, for another
    /// purpose, is not unwrapped), then the secret ID is unwrapped from it. A wrapping token
    /// can be unwrapped once, so the unwrapped secret ID is what is remembered.
    async fn secret_id(
        &mut self,
        path: &Path,
        remove: bool,
        wrapped_at: Option<&str>,
    ) -> Result<Secret, LoginError> {
        if !path.exists()
            && let Some(remembered) = &self.remembered
        {
            return Ok(remembered.clone());
        }
        let mut secret = read_credential(path, "the AppRole secret ID").await?;
        if let Some(expected) = wrapped_at {
            secret = self.unwrap_secret_id(&secret, expected).await?;
        }
        if remove {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the secret ID file {}", path.display()))
                .map_err(LoginError::Credentials)?;
        }
        self.remembered = Some(secret.clone());
        Ok(secret)
    }
}

impl Authenticator {
    /// The secret ID inside the response-wrapping token `wrapping`, created at `expected`.
    async fn unwrap_secret_id(
        &self,
        wrapping: &Secret,
        expected: &str,
    ) -> Result<Secret, LoginError> {
        let lookup = self
            .client
            .raw(
                "wrapping_lookup",
                http::Method::POST,
                "sys/wrapping/lookup",
                wrapping,
                Some(serde_json::json!({ "token": wrapping.expose() })),
            )
            .await?;
        let created_at = lookup
            .pointer("/data/creation_path")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if !created_at.trim_matches('/').eq_ignore_ascii_case(expected) {
            return Err(LoginError::Credentials(anyhow::anyhow!(
                "the secret ID file holds a response-wrapping token created at {created_at:?}, \
                 not at secret_id_response_wrapping_path {expected:?}: it is not unwrapped"
            )));
        }
        let unwrapped = self
            .client
            .raw(
                "unwrap",
                http::Method::POST,
                "sys/wrapping/unwrap",
                wrapping,
                None,
            )
            .await?;
        match unwrapped
            .pointer("/data/secret_id")
            .and_then(serde_json::Value::as_str)
        {
            Some(secret_id) if !secret_id.is_empty() => Ok(Secret::new(secret_id.to_string())),
            _ => Err(LoginError::Credentials(anyhow::anyhow!(
                "the response-wrapping token in the secret ID file unwrapped to no secret_id"
            ))),
        }
    }
}

/// [`read_secret`] off the runtime's thread: a credential file that never answers (a FIFO, a
/// hung volume) leaves the agent able to stop.
async fn read_credential(path: &Path, what: &'static str) -> Result<Secret, LoginError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_secret(&path, what))
        .await
        .map_err(|err| LoginError::Credentials(anyhow::anyhow!("reading {what} stopped: {err}")))?
}

/// Reads a credential file, trimmed; empty or unreadable is an error naming the file.
fn read_secret(path: &Path, what: &str) -> Result<Secret, LoginError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} at {}", path.display()))
        .map_err(LoginError::Credentials)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(LoginError::Credentials(anyhow::anyhow!(
            "{what} at {} is empty",
            path.display()
        )));
    }
    let secret = Secret::new(trimmed.to_string());
    drop(zeroize::Zeroizing::new(text));
    Ok(secret)
}

/// What to do when a token's renewal point comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenStep {
    /// `renew-self`.
    Renew,
    /// Log in again: not renewable, or capped by its max TTL.
    Login,
    /// The token never expires: nothing to do.
    Keep,
}

/// The step for `token` whose first TTL (at login) was `login_ttl`: a renewal that returned
/// less than asked for means the max TTL is near, and renewing again would gain nothing (Vault
/// then answers 500 "past the max TTL" rather than a clean refusal).
pub(crate) fn next_step(token: &Token, login_ttl: Duration) -> TokenStep {
    if token.ttl.is_zero() {
        TokenStep::Keep
    } else if !token.renewable || token.ttl < login_ttl {
        TokenStep::Login
    } else {
        TokenStep::Renew
    }
}

/// Keeps a token alive and publishes it.
pub(crate) struct TokenKeeper {
    /// Logs in.
    pub authenticator: Authenticator,
    /// Renews.
    pub client: VaultClient,
    /// Where each new token is written.
    pub sinks: Vec<FileSink>,
    /// Backoff bounds and `exit_on_err`.
    pub method: AuthMethod,
    /// Counters and gauges.
    pub metrics: AgentMetrics,
    /// Marked ready at the first token.
    pub readiness: Readiness,
    /// The current token, for the template renderer.
    pub token_tx: watch::Sender<Option<Arc<Token>>>,
    /// Rung by the template renderer when Vault refuses the token (403): log in again now.
    pub relogin: Arc<tokio::sync::Notify>,
}

/// How the keeper stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeeperExit {
    /// Shutdown was requested.
    Shutdown,
    /// `exit_after_auth`: the first token was published.
    Authenticated,
}

impl TokenKeeper {
    /// Runs until shutdown (or, with `exit_after_auth`, until the first token is published).
    /// Returns an error only when `exit_on_err` is set and a login failed.
    pub(crate) async fn run(
        mut self,
        shutdown: CancellationToken,
        exit_after_auth: bool,
    ) -> anyhow::Result<KeeperExit> {
        if exit_after_auth {
            return self.run_once(&shutdown).await;
        }
        // The sinks are written by their own loop, which retries a failed write with backoff
        // and always writes the newest token.
        let sinks = write_sinks_until_shutdown(
            self.sinks.clone(),
            self.client.clone(),
            self.token_tx.subscribe(),
            self.metrics.clone(),
            self.readiness.clone(),
            (self.method.min_backoff, self.method.max_backoff),
            shutdown.clone(),
        );
        let keeper = self.keep_logged_in(&shutdown, false);
        tokio::pin!(sinks, keeper);
        tokio::select! {
            result = &mut keeper => result,
            () = &mut sinks => keeper.await,
        }
    }

    /// `exit_after_auth`: the first login, its token written to every sink (any failure is
    /// an error), then [`KeeperExit::Authenticated`].
    async fn run_once(mut self, shutdown: &CancellationToken) -> anyhow::Result<KeeperExit> {
        let exit = self.keep_logged_in(shutdown, true).await?;
        if exit != KeeperExit::Authenticated {
            return Ok(exit);
        }
        let Some(token) = self.token_tx.borrow().clone() else {
            anyhow::bail!("logged in, but no token was published");
        };
        let failed = tokio::select! {
            () = shutdown.cancelled() => return Ok(KeeperExit::Shutdown),
            failed = write_sinks(&self.sinks, &token, &self.client, &self.metrics) => failed,
        };
        if let Some((path, error)) = failed.into_iter().next() {
            anyhow::bail!(
                "cannot write the token sink {}, and exit_after_auth is set: {error}",
                path.display()
            );
        }
        self.readiness.ready(SINK_READY_CONDITION);
        Ok(KeeperExit::Authenticated)
    }

    /// Logs in and keeps the token alive until shutdown (with `once`, returns after the first
    /// login).
    async fn keep_logged_in(
        &mut self,
        shutdown: &CancellationToken,
        once: bool,
    ) -> anyhow::Result<KeeperExit> {
        let shutdown = shutdown.clone();
        let mut backoff = Backoff::new(self.method.min_backoff, self.method.max_backoff);
        loop {
            let token = tokio::select! {
                () = shutdown.cancelled() => return Ok(KeeperExit::Shutdown),
                result = self.authenticator.login() => result,
            };
            let token = match token {
                Ok(token) => {
                    self.metrics.auth(self.authenticator.method_name(), true);
                    backoff.reset();
                    token
                }
                Err(err) => {
                    self.metrics.auth(self.authenticator.method_name(), false);
                    if self.method.exit_on_err {
                        return Err(anyhow::Error::new(err).context(
                            "login to Vault failed and auto_auth.method.exit_on_err is set",
                        ));
                    }
                    let wait = backoff.next_delay();
                    tracing::warn!(
                        method = self.authenticator.method_name(),
                        error = %err,
                        failures = backoff.failures(),
                        retry_in_seconds = crate::timefmt::log_seconds(wait),
                        "login to Vault failed"
                    );
                    if !sleep_or_shutdown(wait, &shutdown).await {
                        return Ok(KeeperExit::Shutdown);
                    }
                    continue;
                }
            };
            tracing::info!(
                method = self.authenticator.method_name(),
                ttl_seconds = token.ttl.as_secs(),
                renewable = token.renewable,
                policies = ?token.policies,
                "logged in to Vault"
            );
            // The accessor can look up and revoke the token: not for every log reader.
            tracing::debug!(accessor = %token.accessor, "the Vault token's accessor");
            self.publish(token.clone());
            if once {
                return Ok(KeeperExit::Authenticated);
            }
            match self.keep_alive(token, &shutdown).await {
                KeepAlive::Shutdown => return Ok(KeeperExit::Shutdown),
                KeepAlive::LoginAgain => {}
            }
        }
    }

    /// Renews `token` until it must be replaced by a new login.
    async fn keep_alive(&mut self, mut token: Token, shutdown: &CancellationToken) -> KeepAlive {
        let login_ttl = token.ttl;
        loop {
            let step = next_step(&token, login_ttl);
            let renew_at = (step != TokenStep::Keep).then(|| {
                token.received_at + schedule::token_renewal_delay(token.ttl, fastrand::f64())
            });
            if renew_at.is_none() {
                tracing::info!("the Vault token never expires; no renewal needed");
            }
            if let Some(end) = self.hold(&token, renew_at, shutdown).await {
                return end;
            }
            if step == TokenStep::Login {
                tracing::info!(
                    renewable = token.renewable,
                    ttl_seconds = token.ttl.as_secs(),
                    "the Vault token cannot be extended further; logging in again"
                );
                return KeepAlive::LoginAgain;
            }
            match self.renew(&token, login_ttl, shutdown).await {
                Renewal::Renewed(renewed) => token = renewed,
                Renewal::LoginAgain => return KeepAlive::LoginAgain,
                Renewal::Shutdown => return KeepAlive::Shutdown,
            }
        }
    }

    /// Keeps `token` until `until` (for good when `None`): `None` once the time has come, else
    /// how the keeping ends (a stop, or a template's refusal that the token itself is refused).
    async fn hold(
        &mut self,
        token: &Token,
        until: Option<Instant>,
        shutdown: &CancellationToken,
    ) -> Option<KeepAlive> {
        let due = async {
            match until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(due);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Some(KeepAlive::Shutdown),
                () = &mut due => return None,
                () = self.relogin.notified() => {
                    if self.token_refused(token).await {
                        return Some(KeepAlive::LoginAgain);
                    }
                }
            }
        }
    }

    /// Whether Vault refuses `token` itself, after it refused a template's request (403): Vault
    /// says "permission denied" both for a token it no longer knows and for a path the token's
    /// policies do not allow, so the token looks itself up. Only a token that may not do that
    /// calls for a new login; a policy that does not allow the template's path would otherwise
    /// bring a login (and a token left behind in Vault) at every retry of the template, where
    /// OpenBao Agent keeps its token and retries the read.
    async fn token_refused(&mut self, token: &Token) -> bool {
        match self.client.lookup_self(&token.secret).await {
            Ok(_) => {
                tracing::debug!(
                    "Vault refused a template's request (403) but the token is valid: its \
                     policies do not allow that path; keeping the token"
                );
                false
            }
            Err(err) if err.is_forbidden() => {
                tracing::info!("Vault refused the token for a template; logging in again");
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot check the token after a refusal: keeping it");
                false
            }
        }
    }

    /// Renews with backoff until it works, is refused, or the token runs out.
    async fn renew(
        &mut self,
        token: &Token,
        increment: Duration,
        shutdown: &CancellationToken,
    ) -> Renewal {
        let mut backoff = Backoff::new(self.method.min_backoff, self.method.max_backoff);
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return Renewal::Shutdown,
                result = self.client.renew_self(token, increment) => result,
            };
            match result {
                Ok(renewed) => {
                    self.metrics.renewal(true);
                    tracing::debug!(
                        ttl_seconds = renewed.ttl.as_secs(),
                        "renewed the Vault token"
                    );
                    self.publish(renewed.clone());
                    return Renewal::Renewed(renewed);
                }
                Err(err) if !err.is_retryable() => {
                    self.metrics.renewal(false);
                    tracing::warn!(error = %err, "Vault refused to renew the token; logging in again");
                    return Renewal::LoginAgain;
                }
                Err(err) => {
                    self.metrics.renewal(false);
                    let remaining = token
                        .deadline()
                        .map(|d| d.saturating_duration_since(Instant::now()));
                    if remaining.is_some_and(|r| r.is_zero()) {
                        tracing::warn!(error = %err, "the Vault token expired while Vault was unreachable; logging in again");
                        self.readiness.not_ready(
                            READY_CONDITION,
                            "the Vault token expired; logging in again",
                        );
                        return Renewal::LoginAgain;
                    }
                    // Never sleep past the token's end: retry more often as it nears.
                    let wait = backoff.next_delay().min(
                        remaining.map_or(Duration::MAX, |r| r / 2 + Duration::from_millis(100)),
                    );
                    tracing::warn!(
                        error = %err,
                        retry_in_seconds = crate::timefmt::log_seconds(wait),
                        "renewing the Vault token failed"
                    );
                    if !sleep_or_shutdown(wait, shutdown).await {
                        return Renewal::Shutdown;
                    }
                }
            }
        }
    }

    /// Makes `token` current: watch channel (whose new tokens the sink writer writes),
    /// metrics, readiness.
    fn publish(&mut self, token: Token) {
        let expires = token
            .expires_at
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        self.metrics.token_expiration.set(expires);
        self.readiness.ready(READY_CONDITION);
        self.token_tx.send_replace(Some(Arc::new(token)));
    }
}

/// Writes `token` to every sink, off the runtime's thread, counting each write; the sinks that
/// failed, with why.
async fn write_sinks(
    sinks: &[FileSink],
    token: &Token,
    client: &VaultClient,
    metrics: &AgentMetrics,
) -> Vec<(PathBuf, String)> {
    // What each sink holds: the token, or (`wrap_ttl`) a response-wrapping token for it, new
    // for every write, as Vault Agent wraps at every write.
    let mut targets: Vec<(PathBuf, u32, Secret)> = Vec::with_capacity(sinks.len());
    let mut failed = Vec::new();
    for sink in sinks {
        match sink.wrap_ttl {
            None => targets.push((sink.path.clone(), sink.mode, token.secret.clone())),
            Some(ttl) => match client.wrap_token(&token.secret, ttl).await {
                Ok(wrapped) => targets.push((sink.path.clone(), sink.mode, wrapped)),
                Err(err) => {
                    metrics.sink_write(false);
                    tracing::error!(
                        path = %sink.path.display(),
                        error = %err,
                        "cannot response-wrap the token for the sink (wrap_ttl)"
                    );
                    failed.push((sink.path.clone(), format!("wrapping the token: {err}")));
                }
            },
        }
    }
    let paths: Vec<PathBuf> = targets.iter().map(|(path, _, _)| path.clone()).collect();
    let results = tokio::task::spawn_blocking(move || {
        targets
            .into_iter()
            .map(|(path, mode, contents)| {
                let result = fsutil::write_atomic(
                    &path,
                    contents.expose().as_bytes(),
                    mode,
                    fsutil::Ownership::default(),
                );
                (path, result)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let results = match results {
        Ok(results) => results,
        Err(err) => {
            failed.extend(
                paths
                    .into_iter()
                    .map(|path| (path, format!("the write stopped: {err}"))),
            );
            return failed;
        }
    };
    for (path, result) in results {
        metrics.sink_write(result.is_ok());
        match result {
            Ok(()) => tracing::debug!(path = %path.display(), "wrote the token sink"),
            Err(err) => {
                tracing::error!(path = %path.display(), error = %err, "cannot write the token sink");
                failed.push((path, err.to_string()));
            }
        }
    }
    failed
}

/// Writes each new token of `tokens` to the sinks until shutdown; a failed write is retried
/// with backoff (with the newest token by then). The agent is not ready until every sink
/// holds the current token.
async fn write_sinks_until_shutdown(
    sinks: Vec<FileSink>,
    client: VaultClient,
    mut tokens: watch::Receiver<Option<Arc<Token>>>,
    metrics: AgentMetrics,
    readiness: Readiness,
    (min_backoff, max_backoff): (Duration, Duration),
    shutdown: CancellationToken,
) {
    if sinks.is_empty() {
        return shutdown.cancelled().await;
    }
    let mut written: Option<Arc<Token>> = None;
    let mut backoff = Backoff::new(min_backoff, max_backoff);
    let mut retry_in: Option<Duration> = None;
    loop {
        let retry = async {
            match retry_in {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = tokens.changed() => if changed.is_err() { return },
            () = retry => {}
        }
        let Some(token) = tokens.borrow_and_update().clone() else {
            continue;
        };
        // A renewal publishes the same token again: nothing to write.
        if retry_in.is_none() && written.as_ref().is_some_and(|w| w.secret == token.secret) {
            continue;
        }
        let failed = tokio::select! {
            () = shutdown.cancelled() => return,
            failed = write_sinks(&sinks, &token, &client, &metrics) => failed,
        };
        if failed.is_empty() {
            written = Some(token);
            backoff.reset();
            retry_in = None;
            readiness.ready(SINK_READY_CONDITION);
        } else {
            let names: Vec<String> = failed
                .iter()
                .map(|(path, _)| path.display().to_string())
                .collect();
            readiness.not_ready(
                SINK_READY_CONDITION,
                format!("cannot write the token sink {}", names.join(", ")),
            );
            let wait = backoff.next_delay();
            tracing::warn!(
                failed = failed.len(),
                failures = backoff.failures(),
                retry_in_seconds = crate::timefmt::log_seconds(wait),
                "writing the token sinks failed; retrying"
            );
            retry_in = Some(wait);
        }
    }
}

enum KeepAlive {
    Shutdown,
    LoginAgain,
}

enum Renewal {
    Renewed(Token),
    LoginAgain,
    Shutdown,
}

/// Sleeps for `duration`; `false` if shutdown came first.
pub(crate) async fn sleep_or_shutdown(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

/// The pid file: written at start, removed when dropped (clean exit).
pub(crate) struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's pid to `path`.
    pub(crate) fn create(path: &Path) -> anyhow::Result<PidFile> {
        fsutil::write_atomic(
            path,
            std::process::id().to_string().as_bytes(),
            // Vault Agent's mode for it.
            0o600,
            fsutil::Ownership::default(),
        )
        .with_context(|| format!("cannot write the pid file {} (pid_file)", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_file(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %err, "cannot remove the pid file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(ttl: u64, renewable: bool) -> Token {
        Token {
            secret: Secret::new("s.x".into()),
            ttl: Duration::from_secs(ttl),
            renewable,
            accessor: String::new(),
            policies: Vec::new(),
            received_at: Instant::now(),
            expires_at: None,
        }
    }

    #[test]
    fn renewable_tokens_are_renewed_until_capped() {
        let login_ttl = Duration::from_secs(3600);
        assert_eq!(next_step(&token(3600, true), login_ttl), TokenStep::Renew);
        // Vault returned less than the increment asked: the max TTL is near.
        assert_eq!(next_step(&token(1200, true), login_ttl), TokenStep::Login);
        assert_eq!(next_step(&token(3599, true), login_ttl), TokenStep::Login);
        assert_eq!(next_step(&token(3600, false), login_ttl), TokenStep::Login);
        assert_eq!(next_step(&token(0, false), login_ttl), TokenStep::Keep);
    }

    #[test]
    fn credential_files_are_trimmed_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt");
        std::fs::write(&path, "eyJ.abc.def\n").unwrap();
        assert_eq!(
            read_secret(&path, "the JWT").unwrap().expose(),
            "eyJ.abc.def"
        );
        std::fs::write(&path, "  \n").unwrap();
        let err = read_secret(&path, "the JWT").unwrap_err().to_string();
        assert_eq!(err, format!("the JWT at {} is empty", path.display()));
        let missing = dir.path().join("missing");
        let err = read_secret(&missing, "the JWT").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read the JWT at {}: ", missing.display())),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waits_end_at_shutdown() {
        let shutdown = CancellationToken::new();
        let waiter = {
            let shutdown = shutdown.clone();
            tokio::spawn(
                async move { sleep_or_shutdown(Duration::from_secs(3600), &shutdown).await },
            )
        };
        tokio::task::yield_now().await;
        shutdown.cancel();
        assert!(!waiter.await.unwrap());
        assert!(sleep_or_shutdown(Duration::from_secs(1), &CancellationToken::new()).await);
    }
}
