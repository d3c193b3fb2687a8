//! pki-sidecar: TLS certificates from Vault's PKI engine for a Kubernetes Pod, in one binary.
//!
//! Modules:
//! - [`cli`]: the command line as parsed, before anything is resolved.
//! - [`config`]: Vault-Agent-style HCL plus environment into one checked [`config::Config`].
//! - [`telemetry`]: logging, the Prometheus registry, and each role's `/metrics` listener.
//! - [`lifecycle`]: signals, the shutdown token, the reload hook, the pid file.
//! - [`http_server`]: the accept loop with graceful drain that every listener shares.
//! - [`app`]: the `hello world` web server role.
//! - [`proxy`]: the TLS-terminating proxy role, with certificate hot reload.
//! - [`check`]: the `check tls` and `check pair` probes.
//! - [`doctor`]: the troubleshooting walk, one line per step, for a config.
//! - [`agent`]: the Vault Agent replacement: auto_auth and the token's life.
//! - [`vault`]: the Vault client (vaultrs endpoints over our TLS transport).
//! - [`devca`]: the in-memory development CA that answers like Vault's `pki/issue`.
//! - [`dev`]: `pki-sidecar dev`: the three roles in one process, on the development CA.
//! - [`schedule`]: renewal points and backoff, as pure functions.
//! - [`fsutil`]: atomic file replacement.
//! - [`certs`]: PEM blocks, certificate facts, key/certificate matching.
//! - [`secret`]: strings that never print.
//! - [`timefmt`]: RFC 3339 times and compact durations for logs and output.
//! - [`validate`]: the `validate` subcommand's summary of what each role will do.
//! - [`template`]: a Go `text/template` engine; functions come from the caller.
//! - `fuzzing` (tests and `--cfg fuzzing` only): the cargo-fuzz targets' bodies, replayed by
//!   `cargo test` (not an API).
#![forbid(unsafe_code)]

pub mod agent;
pub mod app;
pub mod certs;
pub mod check;
pub mod cli;
pub mod config;
pub mod dev;
pub mod devca;
pub mod doctor;
pub mod fsutil;
// Only in tests and in cargo-fuzz builds (`--cfg fuzzing`): it reads test fixtures at compile
// time, which a release build from `src/` alone (the Containerfile's) does not have.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http_server;
pub mod lifecycle;
pub mod proxy;
pub mod schedule;
pub mod secret;
pub mod telemetry;
pub mod template;
pub mod timefmt;
pub mod tls;
pub mod units;
pub mod validate;
pub mod vault;
