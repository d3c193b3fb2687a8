//! Where the templates' data comes from: a Vault (or OpenBao) server, or the development CA.
//!
//! [`Backend`] is the one seam between the template runner and an issuer. The runner asks it
//! for `pkiCert` issues and `secret` reads and writes as Vault API requests (method, path, JSON
//! body) and gets Vault's JSON answer back, so everything after the request — parsing the
//! answer, the renewal schedule, the atomic writes, the metrics — is the same code whichever
//! issuer answered. The Vault backend also owns the token handshake: it waits for the keeper's
//! first token and asks for a new login on a 403. It must not interpret answers.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::devca::DevCa;
use crate::vault::{Token, VaultClient};

/// The issuer behind the templates.
pub enum Backend {
    /// A Vault or OpenBao server, with the token the agent's keeper maintains.
    Vault {
        /// The HTTP client, metrics and retries included.
        client: VaultClient,
        /// The keeper's current token (`None` until the first login).
        tokens: watch::Receiver<Option<Arc<Token>>>,
        /// Notified on a 403 so the keeper logs in again.
        relogin: Arc<Notify>,
    },
    /// The in-process development CA of `pki-sidecar dev`: issues only, needs no login.
    DevCa(Arc<DevCa>),
}

impl Backend {
    /// Waits until requests can be made (Vault: the first token). `false` on shutdown.
    pub async fn ready(&mut self, shutdown: &CancellationToken) -> bool {
        let Backend::Vault { tokens, .. } = self else {
            return true;
        };
        while tokens.borrow().is_none() {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                changed = tokens.changed() => if changed.is_err() { return false },
            }
        }
        true
    }

    /// One API request: `method` on `path` (no `/v1/`) with `body`; Vault's JSON answer.
    /// `operation` names the request in metrics (`issue`, `secret`).
    pub async fn request(
        &self,
        operation: &'static str,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Vault {
                client,
                tokens,
                relogin,
            } => {
                let token = tokens
                    .borrow()
                    .clone()
                    .ok_or_else(|| anyhow!("no Vault token (logging in)"))?;
                client
                    .raw(operation, method, path, &token.secret, body)
                    .await
                    .map_err(|err| {
                        if err.is_forbidden() {
                            relogin.notify_one();
                        }
                        anyhow!(err)
                    })
            }
            Backend::DevCa(ca) => {
                let is_write = method == http::Method::POST || method == http::Method::PUT;
                let is_issue = path
                    .trim_matches('/')
                    .rsplit('/')
                    .nth(1)
                    .is_some_and(|segment| segment == "issue");
                if !(is_write && is_issue) {
                    bail!(
                        "the development CA answers PKI issue requests (a write to \
                         MOUNT/issue/ROLE) only, not {method} {path}"
                    );
                }
                let body = body.unwrap_or_else(|| serde_json::json!({}));
                Ok(ca.issue(&body)?)
            }
        }
    }

    /// What the backend is, for logs and readiness messages.
    pub fn describe(&self) -> String {
        match self {
            Backend::Vault { client, .. } => format!("Vault at {}", client.address()),
            Backend::DevCa(_) => "the development CA".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_development_ca_answers_issue_writes_only() {
        let ca = DevCa::generate(Duration::from_secs(60), Duration::from_secs(60)).unwrap();
        let backend = Backend::DevCa(Arc::new(ca));
        let body = serde_json::json!({"common_name": "localhost"});
        let answer = backend
            .request(
                "issue",
                http::Method::POST,
                "pki_intermediate/issue/home",
                Some(body.clone()),
            )
            .await
            .unwrap();
        assert!(answer["data"]["certificate"].is_string());
        for (method, path) in [
            (http::Method::GET, "pki_intermediate/issue/home"),
            (http::Method::POST, "pki_intermediate/sign/home"),
            (http::Method::GET, "secret/data/app"),
        ] {
            let err = backend
                .request("secret", method.clone(), path, Some(body.clone()))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("issue requests"),
                "{method} {path}: {err}"
            );
        }
        let mut backend = backend;
        assert!(backend.ready(&CancellationToken::new()).await);
    }
}
