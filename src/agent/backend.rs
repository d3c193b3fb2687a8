//! Where the templates' data comes from: the one seam between the template runner and an
//! issuer.
//!
//! The runner asks a [`Backend`] for `pkiCert` issues and `secret` reads and writes as Vault
//! API requests (method, path, JSON body) and gets Vault's JSON answer back, so everything after
//! the request — parsing the answer, the renewal schedule, the atomic writes, the metrics — is
//! the same code whichever issuer answered. [`VaultBackend`] is the production one: it also owns
//! the token handshake (it waits for the keeper's first token and asks for a new login on a
//! 403). Others live with their owners: the development CA of `pki-sidecar dev`
//! ([`crate::devca`]), and the scripted issuers of the tests. A backend must not interpret
//! answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::anyhow;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::vault::{Token, VaultClient};

/// A boxed future, as the trait's methods return (it is used as `Box<dyn Backend>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An issuer the template runner fetches from.
pub trait Backend: Send + Sync {
    /// Waits until requests can be made (Vault: the first token). `false` on shutdown. A
    /// backend that needs no login is ready at once.
    fn ready<'a>(&'a mut self, _shutdown: &'a CancellationToken) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }

    /// One API request: `method` on `path` (no `/v1/`) with `body`; Vault's JSON answer.
    /// `operation` names the request in metrics (`issue`, `secret`).
    fn request<'a>(
        &'a self,
        operation: &'static str,
        method: http::Method,
        path: &'a str,
        body: Option<serde_json::Value>,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>>;

    /// What the backend is, for logs and readiness messages.
    fn describe(&self) -> String;
}

/// A Vault or OpenBao server, with the token the agent's keeper maintains.
pub(crate) struct VaultBackend {
    /// The HTTP client, metrics and retries included.
    pub client: VaultClient,
    /// The keeper's current token (`None` until the first login).
    pub tokens: watch::Receiver<Option<Arc<Token>>>,
    /// Notified on a 403 so the keeper logs in again.
    pub relogin: Arc<Notify>,
}

impl Backend for VaultBackend {
    fn ready<'a>(&'a mut self, shutdown: &'a CancellationToken) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            while self.tokens.borrow().is_none() {
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    changed = self.tokens.changed() => if changed.is_err() { return false },
                }
            }
            true
        })
    }

    fn request<'a>(
        &'a self,
        operation: &'static str,
        method: http::Method,
        path: &'a str,
        body: Option<serde_json::Value>,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let token = self
                .tokens
                .borrow()
                .clone()
                .ok_or_else(|| anyhow!("no Vault token (logging in)"))?;
            self.client
                .raw(operation, method, path, &token.secret, body)
                .await
                .map_err(|err| {
                    // A token that may not look up its mount (KV v2 detection) is not a token
                    // that expired: that 403 calls for no new login.
                    if err.is_forbidden() && operation != "mount_lookup" {
                        self.relogin.notify_one();
                    }
                    anyhow!(err)
                })
        })
    }

    fn describe(&self) -> String {
        format!("Vault at {}", self.client.address())
    }
}
