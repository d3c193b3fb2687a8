//! pki-sidecar: TLS certificates from Vault's PKI engine for a Kubernetes Pod, in one binary.
//!
//! Modules:
//! - [`cli`]: the command line as parsed, before anything is resolved.
//! - [`config`]: Vault-Agent-style HCL plus environment into one checked [`config::Config`].
//! - [`telemetry`]: logging, the Prometheus registry, and each role's `/metrics` listener.
//! - [`lifecycle`]: signals, the shutdown token, the reload hook, the pid file.
//! - [`http_server`]: the accept loop with graceful drain that every listener shares.
//! - [`app`]: the `hello world` web server role.
//! - [`validate`]: the `validate` subcommand's summary of what each role will do.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod http_server;
pub mod lifecycle;
pub mod telemetry;
pub mod validate;
