//! pki-sidecar: TLS certificates from Vault's PKI engine for a Kubernetes Pod, in one binary.
//!
//! Modules:
//! - [`cli`]: the command line as parsed, before anything is resolved.
//! - [`config`]: Vault-Agent-style HCL plus environment into one checked [`config::Config`],
//!   and per-role configs ([`config::AgentConfig`], [`config::Proxy`], [`config::App`]).
//! - [`units`]: durations, file modes and booleans as Vault spells them.
//! - [`tls`]: the crypto provider, PEM ([`tls::pem`]), trusted roots, rustls client configs.
//! - [`certs`]: certificate facts and the one key-matches-certificate check.
//! - [`telemetry`]: logging, the Prometheus registry, and each role's `/metrics` listener.
//! - [`lifecycle`]: signals, the shutdown token, the reload hook.
//! - [`http_server`]: the accept loop with graceful drain that every listener shares.
//! - [`app`]: the `hello world` web server role.
//! - [`proxy`]: the TLS-terminating proxy role, with certificate hot reload.
//! - [`agent`]: the Vault Agent replacement: auto_auth, the token's life, the templates.
//! - [`vault`]: the Vault client (vaultrs endpoints over our TLS transport).
//! - [`devca`]: the in-memory development CA, an agent backend answering like `pki/issue`.
//! - [`check`]: the `check tls` and `check pair` probes.
//! - [`doctor`]: the troubleshooting walk, one line per step, for a config.
//! - [`validate`]: the `validate` subcommand's summary of what each role will do.
//! - [`dev`]: `pki-sidecar dev`: the three roles in one process, on the development CA.
//! - [`inject`]: the sidecars added to a Pod from its annotations (own and Vault Agent
//!   Injector's), and the `inject` command over Kubernetes YAML.
//! - [`webhook`]: the mutating admission webhook, the same transform as a JSONPatch.
//! - [`schedule`]: renewal points and backoff as pure functions, and the wall [`schedule::Clock`].
//! - [`fsutil`]: atomic file replacement, several files staged and renamed together.
//! - [`secret`]: strings that never print.
//! - [`timefmt`]: RFC 3339 times and compact durations for logs and output.
//! - [`template`]: a Go `text/template` engine; functions come from the caller.
//! - `fuzzing` (tests and `--cfg fuzzing` only): the cargo-fuzz targets' bodies, replayed by
//!   `cargo test` (not an API).
//!
//! Layers, lowest first (checked by `scripts/check-layering.py`): a module may use modules of
//! its own layer and of lower ones, never of a higher one.
//!
//! 1. `secret`, `timefmt`, `units`, `fsutil`, `schedule`, `lifecycle` — leaf utilities
//! 2. `template` — the template engine, knowing nothing of Vault or files
//! 3. `config` — files and environment to typed values; no role imported
//! 4. `tls`, `certs` — the TLS toolbox and the certificate API
//! 5. `telemetry`, `http_server`, `vault` — what the roles are built from
//! 6. `agent`, `proxy`, `app` — the three roles
//! 7. `devca` — an agent backend for development
//! 8. `check`, `doctor`, `validate`, `dev`, `inject`, `webhook` — commands, taking plain values
//! 9. `cli` — the command line
//! 10. `fuzzing` — test-only entry points
#![forbid(unsafe_code)]
// The docs are for whoever works on this crate (`cargo doc --document-private-items`): module
// overviews link to the crate-private items they describe.
#![allow(rustdoc::private_intra_doc_links)]

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
pub mod inject;
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
pub mod webhook;
