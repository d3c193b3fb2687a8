//! The integration tests, in one binary so one OpenBao dev server serves them all.
//!
//! - `config`: the seed's file, the fixture folders through `validate`, layering.
//! - `config_compat`: agent files as Vault Agent reads them (JSON, quoted keys, ignored keys,
//!   `exec`, owners), `validate`'s checks, and the corpus of real agent files
//!   (`tests/compat/agent-files/`) against OpenBao Agent's verdicts.
//! - `agent`: the agent's auto_auth and token lifecycle against real OpenBao.
//! - `app`: the app role, metrics endpoints, graceful drain, signals.
//! - `templates`: the agent's templates and certificates against real OpenBao and OpenBao Agent.
//! - `check`: the `check tls` and `check pair` probes.
//! - `cli`: `--help` of every command, `doctor --help` against doctor's steps, the shell
//!   completions (checked by bash, zsh and fish) and the man pages (rendered by groff).
//! - `compat`: every template compatibility case against OpenBao Agent's recorded output.
//! - `doctor`: the troubleshooting walk against the OpenBao bed, passing and failing each step.
//! - `proxy`: the proxy role: TLS, reload, forwarding, limits; `proxy::hostile`, hostile
//!   requests against a recording upstream, beside nginx (RELIABILITY.md's "Hostile requests").
//! - `nginx_config`: `proxy --nginx-config` on an nginx file that nginx itself serves, side by
//!   side: the same headers reach the upstream and the client.
//! - `deploy`: manifests, the image recipe and `deploy/vault/setup.sh`.
//! - `monitoring`: `deploy/monitoring` — the alert rules through promtool, the Grafana
//!   dashboard, and a real Prometheus scraping every role through a scenario.
//! - `dev`: `pki-sidecar dev` and the README's quick start.
//! - `docs`: the Markdown documents' links between each other reach a file and a heading, and
//!   no document repeats a section.
//! - `inprocess`: the agent in-process on tokio's paused time (renewal schedule, backoff).
//! - `faults`: the fault-injection suite (Vault failing, full disk, kills, hostile clients,
//!   invalid configs, secrets in logs); its `RELIABILITY` lines make `RELIABILITY.md`'s table.
//! - `hostile`: what another container may leave in the agent's shared directory (links, FIFOs,
//!   directories, huge files), failed writes, and SIGTERM while I/O is blocked.
//! - `image`: the built image's config and root filesystem (`scripts/build-image.sh`).
//! - `bed`: the OpenBao test bed itself.
//! - `pod`: Pods run on one machine (netns, mount namespaces, per-container users), end to end:
//!   the rendered Pod and an injected-shaped one; `pod::injected`, annotated Pods of both
//!   vocabularies through the running webhook; `pod::runner` runs any Pod object.
//! - `inject`: `pki-sidecar inject` over Kubernetes YAML and the annotation contract.
//! - `walkthrough`: the README's Kubernetes walkthrough and its examples, read out of README.md
//!   and run (setup.sh against a bare OpenBao, the rendered Pods through `pod::runner`).
//! - `webhook`: the admission webhook over HTTPS, its JSON Patch against an applier of the
//!   tests' own, the two front ends on `tests/inject/`, and `deploy/injector/`.
mod agent;
mod app;
mod bed;
mod check;
mod cli;
mod compat;
mod config;
mod config_compat;
mod deploy;
mod dev;
mod docs;
mod doctor;
mod faults;
mod hostile;
mod image;
mod inject;
mod inprocess;
mod logs;
mod monitoring;
mod nginx_config;
mod pod;
mod proxy;
mod templates;
mod util;
mod walkthrough;
mod webhook;
