//! `pki-sidecar doctor`: the seed's troubleshooting section as one command.
//!
//! Each step prints one line as soon as it has run — `✓` passed, `✗` failed (followed by a
//! `next:` line saying what to look at), `-` skipped because it does not apply or an earlier
//! failure makes it meaningless — and the exit code is 0 when nothing failed, 1 otherwise. The
//! steps, in the order a certificate travels:
//!
//! 1. the ServiceAccount token file is readable and its claims decode (kubernetes auth only);
//! 2. Vault answers `sys/health`, its certificate verifying with the configured CA;
//! 3. a login with the configured method and role works;
//! 4. the token's policies allow every Vault path the templates call (`sys/capabilities-self`);
//! 5. each certificate template's destination and key files exist, match and are valid;
//! 6. the proxy's listener serves the certificate in its `cert_file`.
//!
//! It checks with the agent's own code paths — [`VaultClient`], [`Authenticator`], the
//! template engine (a dry render finds the `pkiCert` paths and key files), the `check pair` and
//! `check tls` probes — so what passes here is what the agent and the proxy do. It must not
//! write files, and must never print a token, a JWT or a key: only claims, paths and facts. The
//! token it logs in for is revoked at the end (except a `token_file` token, which is not its own).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::ServerName;

use crate::agent::auth::Authenticator;
use crate::agent::functions::Dependency;
use crate::agent::kv;
use crate::agent::render::{self, DryRun};
use crate::certs::CertInfo;
use crate::check::{self, CouldNotRun, Problem, Target};
use crate::config::{AuthKind, AuthMethod, Config, Template};
use crate::timefmt::{format_duration, rfc3339};
use crate::tls::pem;
use crate::vault::{Token, Trust, VaultClient, VaultError, VaultMetrics};

/// The steps doctor runs, in order: what `doctor --help` lists, and the names its report
/// lines begin with (`Report::step` takes a [`Step`], so the two cannot drift apart).
pub const STEPS: [Step; 6] = [
    Step::ServiceAccountToken,
    Step::VaultReachable,
    Step::Login,
    Step::Policy,
    Step::Certificate,
    Step::ProxyListener,
];

/// One kind of step; a report line is its name, then what it was run on, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The ServiceAccount token file (kubernetes auth).
    ServiceAccountToken,
    /// Vault's `sys/health`.
    VaultReachable,
    /// One login with the configured method.
    Login,
    /// `sys/capabilities-self` for a path the templates call.
    Policy,
    /// A `pkiCert` template's files.
    Certificate,
    /// The proxy's listener.
    ProxyListener,
}

impl Step {
    /// What the report line begins with.
    pub fn name(self) -> &'static str {
        match self {
            Step::ServiceAccountToken => "ServiceAccount token",
            Step::VaultReachable => "Vault reachable",
            Step::Login => "login",
            Step::Policy => "policy allows",
            Step::Certificate => "certificate",
            Step::ProxyListener => "proxy listener",
        }
    }

    /// What it checks, in one line.
    pub fn checks(self) -> &'static str {
        match self {
            Step::ServiceAccountToken => {
                "auto_auth's token_path is readable and its claims decode (kubernetes auth)"
            }
            Step::VaultReachable => {
                "Vault answers sys/health with the configured address, CA and client certificate"
            }
            Step::Login => "one login with the configured method and role works",
            Step::Policy => {
                "the token may call every Vault path the templates and env_templates call \
                 (sys/capabilities-self)"
            }
            Step::Certificate => {
                "each pkiCert template's certificate and key files exist, match and are valid"
            }
            Step::ProxyListener => {
                "proxy.listen answers a TLS handshake with the certificate in proxy.cert_file"
            }
        }
    }
}

/// Exit code when every step passed or was skipped.
pub(crate) const EXIT_ALL_PASSED: u8 = 0;
/// Exit code when at least one step failed.
pub(crate) const EXIT_FAILED: u8 = 1;

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It passed; what was found.
    Passed(String),
    /// It failed: what was wrong, and what to do next.
    Failed {
        /// What was found.
        detail: String,
        /// Where to look, as the seed's troubleshooting section would say.
        next: String,
    },
    /// It did not run, and why.
    Skipped(String),
}

fn failed(detail: impl Into<String>, next: impl Into<String>) -> Outcome {
    Outcome::Failed {
        detail: detail.into(),
        next: next.into(),
    }
}

/// The steps printed so far.
#[derive(Debug, Default)]
struct Report {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Report {
    /// Prints one step at once (progress for a slow Vault) and counts it; `subject` is what
    /// it ran on (a path, an address), written after the step's name.
    fn step(&mut self, step: Step, subject: Option<&str>, outcome: &Outcome) {
        let name = match subject {
            Some(subject) => format!("{} {subject}", step.name()),
            None => step.name().to_string(),
        };
        print!("{}", render_step(&name, outcome));
        let _ = std::io::stdout().flush();
        match outcome {
            Outcome::Passed(_) => self.passed += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }

    fn summary(&self) -> String {
        let total = self.passed + self.failed + self.skipped;
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        if self.failed == 0 {
            format!(
                "doctor: {} of {total} checks passed{skipped}\n",
                self.passed
            )
        } else {
            format!(
                "doctor: {} of {total} checks FAILED, {} passed{skipped}\n",
                self.failed, self.passed
            )
        }
    }
}

/// One step as printed: `✓ name: detail`, `✗ name: detail` + `  next: ...`, `- name: skipped`.
pub(crate) fn render_step(name: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed(detail) => format!("✓ {name}: {detail}\n"),
        Outcome::Failed { detail, next } => format!("✗ {name}: {detail}\n  next: {next}\n"),
        Outcome::Skipped(why) => format!("- {name}: skipped: {why}\n"),
    }
}

/// Runs every step for `config` and returns the exit code.
pub fn run(config: &Config) -> ExitCode {
    let now = SystemTime::now();
    let mut report = Report::default();
    let files: Vec<String> = config
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!("pki-sidecar doctor: {}", files.join(", "));

    let method = config.auto_auth.as_ref().map(|auto_auth| &auto_auth.method);
    let claims = match method.map(|m| &m.kind) {
        Some(AuthKind::Kubernetes { token_path, .. }) => {
            let (outcome, claims) = service_account_token(token_path, now);
            report.step(Step::ServiceAccountToken, None, &outcome);
            claims
        }
        Some(other) => {
            report.step(
                Step::ServiceAccountToken,
                None,
                &Outcome::Skipped(format!(
                    "auto_auth uses the {} method, not kubernetes",
                    other.name()
                )),
            );
            None
        }
        None => {
            report.step(
                Step::ServiceAccountToken,
                None,
                &Outcome::Skipped("no auto_auth block".to_string()),
            );
            None
        }
    };

    let dry_runs: Vec<(usize, &Template, Result<DryRun, String>)> = config
        .templates
        .iter()
        .enumerate()
        .map(|(index, template)| {
            let dry = render::dry_run(template).map_err(|err| format!("{err:#}"));
            (index, template, dry)
        })
        .collect();
    // env_template blocks call Vault too: their paths go through the policy step (a text
    // that does not parse is `validate`'s to report; it loaded, so it parses).
    let env_dry_runs: Vec<DryRun> = config
        .env_templates
        .iter()
        .filter_map(|env| render::dry_run(&env.as_template()).ok())
        .collect();
    let mut vault_calls: Vec<Dependency> = Vec::new();
    let all_dry = dry_runs
        .iter()
        .filter_map(|(_, _, dry)| dry.as_ref().ok())
        .chain(&env_dry_runs);
    for dry in all_dry {
        for call in &dry.vault_calls {
            if !vault_calls.contains(call) {
                vault_calls.push(call.clone());
            }
        }
    }

    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(vault_steps(
            config,
            method,
            claims.as_ref(),
            &vault_calls,
            &mut report,
        )),
        Err(err) => report.step(
            Step::VaultReachable,
            None,
            &failed(
                format!("cannot start the async runtime: {err}"),
                "this is a resource problem on the machine running doctor, not in Vault",
            ),
        ),
    }

    for (index, template, dry) in &dry_runs {
        let destination = template.destination.display().to_string();
        let outcome = match dry {
            Err(err) => failed(
                format!("template[{index}] cannot be rendered dry: {err}"),
                "fix the template (`pki-sidecar validate --config FILE` checks its syntax)",
            ),
            Ok(dry)
                if !dry
                    .vault_calls
                    .iter()
                    .any(|call| matches!(call, Dependency::PkiCert { .. })) =>
            {
                Outcome::Skipped(format!("template[{index}] does not call pkiCert"))
            }
            Ok(dry) => certificate_files(&template.destination, &dry.key_files, now),
        };
        report.step(Step::Certificate, Some(&destination), &outcome);
    }
    if config.templates.is_empty() {
        report.step(
            Step::Certificate,
            None,
            &Outcome::Skipped("no template {} block".to_string()),
        );
    }

    let listen = config.proxy.listen.to_string();
    report.step(Step::ProxyListener, Some(&listen), &proxy_listener(config));

    print!("{}", report.summary());
    if report.failed == 0 {
        ExitCode::from(EXIT_ALL_PASSED)
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

// ---------------------------------------------------------------------------------------------
// ServiceAccount token

/// What the ServiceAccount token says about itself (unverified: Vault and Kubernetes verify).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Claims {
    /// The Pod's namespace.
    pub namespace: Option<String>,
    /// The ServiceAccount's name.
    pub service_account: Option<String>,
    /// `exp`; legacy Secret-based tokens have none.
    pub expires: Option<SystemTime>,
}

/// Decodes a JWT's payload without verifying it: the projected token's `kubernetes.io` claims,
/// or a legacy Secret token's `kubernetes.io/serviceaccount/...` ones.
pub(crate) fn decode_claims(jwt: &str) -> Result<Claims, String> {
    let mut parts = jwt.trim().split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT (expected three dot-separated parts)".to_string());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "not a JWT (its payload is not base64url)".to_string())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| "not a JWT (its payload is not JSON)".to_string())?;
    let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
    let projected = &value["kubernetes.io"];
    let namespace = text(&projected["namespace"])
        .or_else(|| text(&value["kubernetes.io/serviceaccount/namespace"]));
    let service_account = text(&projected["serviceaccount"]["name"])
        .or_else(|| text(&value["kubernetes.io/serviceaccount/service-account.name"]));
    let expires = value["exp"]
        .as_u64()
        .or_else(|| value["exp"].as_f64().map(|exp| exp.max(0.0) as u64))
        .map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
    Ok(Claims {
        namespace,
        service_account,
        expires,
    })
}

/// The token step's verdict on decoded claims at `now`.
pub(crate) fn judge_claims(path: &Path, claims: &Claims, now: SystemTime) -> Outcome {
    let namespace = claims.namespace.as_deref().unwrap_or("(none)");
    let account = claims.service_account.as_deref().unwrap_or("(none)");
    let mut detail = format!(
        "{}: namespace {namespace}, service account {account}",
        path.display()
    );
    match claims.expires {
        None => detail.push_str(", no expiry (a legacy Secret-based token)"),
        Some(expires) => match expires.duration_since(now) {
            Ok(left) => {
                let _ = write!(
                    detail,
                    ", expires {} (in {})",
                    rfc3339(expires),
                    format_duration(Duration::from_secs(left.as_secs()))
                );
            }
            Err(past) => {
                let _ = write!(
                    detail,
                    ", EXPIRED at {} ({} ago)",
                    rfc3339(expires),
                    format_duration(Duration::from_secs(past.duration().as_secs()))
                );
                return failed(
                    detail,
                    "the kubelet refreshes a projected token well before it expires: check the \
                     Pod's serviceAccountToken volume, or that this file is the projected one",
                );
            }
        },
    }
    if claims.namespace.is_none() || claims.service_account.is_none() {
        return failed(
            detail,
            "this is not a Kubernetes ServiceAccount token: check auto_auth.method.config.\
             token_path (default /var/run/secrets/kubernetes.io/serviceaccount/token)",
        );
    }
    Outcome::Passed(detail)
}

fn service_account_token(path: &Path, now: SystemTime) -> (Outcome, Option<Claims>) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(err) => {
            return (
                failed(
                    format!("cannot read {}: {err}", path.display()),
                    "check the Pod's ServiceAccount token mount (automountServiceAccountToken, \
                     a projected volume) and auto_auth.method.config.token_path",
                ),
                None,
            );
        }
    };
    match decode_claims(&text) {
        Ok(claims) => (judge_claims(path, &claims, now), Some(claims)),
        Err(why) => (
            failed(
                format!("{}: {why}", path.display()),
                "the file must hold the ServiceAccount JWT itself: check token_path",
            ),
            None,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Vault: reachable, login, capabilities

async fn vault_steps(
    config: &Config,
    method: Option<&AuthMethod>,
    claims: Option<&Claims>,
    vault_calls: &[Dependency],
    report: &mut Report,
) {
    let capability_names: Vec<String> = vault_calls.iter().map(capability_subject).collect();
    let skip_rest = |report: &mut Report, why: &str| {
        report.step(Step::Login, None, &Outcome::Skipped(why.to_string()));
        for name in &capability_names {
            report.step(Step::Policy, Some(name), &Outcome::Skipped(why.to_string()));
        }
    };

    // A diagnosis should answer in seconds; the agent's retries are for riding out outages.
    let mut vault = config.vault.clone();
    vault.num_retries = 0;
    let metrics = match VaultMetrics::register(&prometheus::Registry::new()) {
        Ok(metrics) => metrics,
        Err(err) => {
            report.step(
                Step::VaultReachable,
                None,
                &failed(format!("cannot set up metrics: {err}"), "report this bug"),
            );
            return skip_rest(report, "Vault was not checked");
        }
    };
    let client = match VaultClient::new(&vault, metrics) {
        Ok(client) => client,
        Err(err) => {
            report.step(
                Step::VaultReachable,
                None,
                &failed(
                    format!("{err:#}"),
                    "fix vault.ca_cert / ca_path / client_cert / client_key (or VAULT_CACERT, \
                     VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY): each must name a \
                     readable PEM file",
                ),
            );
            return skip_rest(report, "no Vault client could be built");
        }
    };
    let reachable = reachability(&client).await;
    let is_reachable = !matches!(reachable, Outcome::Failed { .. });
    report.step(Step::VaultReachable, None, &reachable);
    if !is_reachable {
        return skip_rest(report, "Vault is not reachable");
    }

    let Some(method) = method else {
        return skip_rest(report, "no auto_auth block");
    };
    // doctor writes nothing, so it must not consume an AppRole secret ID file either.
    let mut login_method = method.clone();
    if let AuthKind::AppRole {
        secret_id_file_path: Some(path),
        remove_secret_id_file_after_reading,
        ..
    } = &mut login_method.kind
    {
        if *remove_secret_id_file_after_reading && !path.exists() {
            let why = format!(
                "the secret ID file {} was removed after reading \
                 (remove_secret_id_file_after_reading), as the agent does; doctor cannot log in \
                 without it",
                path.display()
            );
            return skip_rest(report, &why);
        }
        *remove_secret_id_file_after_reading = false;
    }
    let mut authenticator = Authenticator::new(client.clone(), login_method);
    let token = match authenticator.login().await {
        Ok(token) => {
            report.step(
                Step::Login,
                None,
                &Outcome::Passed(login_detail(method, &token)),
            );
            token
        }
        Err(err) => {
            report.step(
                Step::Login,
                None,
                &failed(err.to_string(), login_hint(method, claims)),
            );
            for name in &capability_names {
                report.step(
                    Step::Policy,
                    Some(name),
                    &Outcome::Skipped("no token: the login failed".into()),
                );
            }
            return;
        }
    };

    for (call, name) in vault_calls.iter().zip(&capability_names) {
        let outcome = capability(&client, &token, call).await;
        report.step(Step::Policy, Some(name), &outcome);
    }

    if !matches!(method.kind, AuthKind::TokenFile { .. }) {
        // The token was made for this diagnosis alone; do not leave it alive in Vault.
        let _ = client
            .raw(
                "revoke_self",
                http::Method::POST,
                "auth/token/revoke-self",
                &token.secret,
                None,
            )
            .await;
    }
}

async fn reachability(client: &VaultClient) -> Outcome {
    let address = client.address().to_string();
    match client.health().await {
        Ok(health) => {
            let version = health["version"].as_str().unwrap_or("unknown version");
            let standby = if health["standby"].as_bool() == Some(true) {
                ", standby"
            } else {
                ""
            };
            let tls = if !address.starts_with("https://") {
                "plain HTTP, no TLS".to_string()
            } else if *client.trust() == Trust::Nothing {
                "TLS NOT verified (tls_skip_verify)".to_string()
            } else {
                format!("TLS verified with {}", client.trust())
            };
            Outcome::Passed(format!(
                "{address} answered sys/health (version {version}, unsealed{standby}); {tls}"
            ))
        }
        Err(err) => {
            let next = reachability_hint(&address, client.trust(), &err);
            failed(err.to_string(), next)
        }
    }
}

/// `host:port` and `host` of an `https://host:port` address, for the `openssl` hint.
fn host_and_port(address: &str) -> (String, String) {
    match address.parse::<http::Uri>() {
        Ok(uri) => {
            let host = uri.host().unwrap_or("VAULT_HOST").to_string();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("http") => 80,
                _ => 443,
            });
            let host_port = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            (host_port, host.trim_matches(['[', ']']).to_string())
        }
        Err(_) => ("VAULT_HOST:443".to_string(), "VAULT_HOST".to_string()),
    }
}

fn reachability_hint(address: &str, trust: &Trust, err: &VaultError) -> String {
    match err {
        VaultError::Certificate { .. } => {
            let (host_port, host) = host_and_port(address);
            let ca = match trust {
                Trust::CaFile(path) => path.clone(),
                _ => "CA_FILE".to_string(),
            };
            format!(
                "{trust} does not hold the CA that signed Vault's certificate (or the name \
                 {host} is not in it): see what Vault serves with `openssl s_client -connect \
                 {host_port} -servername {host} -CAfile {ca} -showcerts` (or `pki-sidecar check \
                 tls --connect {host_port} --cacert {ca}`), then point vault.ca_cert / \
                 VAULT_CACERT at the CA that issued it"
            )
        }
        VaultError::Api { status, .. } if *status == 503 || *status == 501 => {
            "Vault answered but is sealed or not initialized: unseal it (`vault status`)".into()
        }
        VaultError::Api { .. } | VaultError::Protocol { .. } => format!(
            "{address} answered, but not as Vault does: check vault.address / VAULT_ADDR \
             (`curl -v {address}/v1/sys/health`)"
        ),
        VaultError::Unreachable { .. } | VaultError::Timeout { .. } => format!(
            "check vault.address / VAULT_ADDR, DNS, and any NetworkPolicy or firewall between \
             the Pod and Vault: `curl -v {address}/v1/sys/health` from the Pod"
        ),
    }
}

fn method_words(method: &AuthMethod) -> String {
    match &method.kind {
        AuthKind::Kubernetes { role, .. } | AuthKind::Jwt { role, .. } => format!(
            "{} role \"{role}\" at {}",
            method.kind.name(),
            method.mount_path
        ),
        AuthKind::AppRole { .. } => format!("approle at {}", method.mount_path),
        AuthKind::TokenFile { token_file_path } => {
            format!("the token in {}", token_file_path.display())
        }
        AuthKind::Cert { name, .. } => match name {
            Some(name) => format!("cert role \"{name}\" at {}", method.mount_path),
            None => format!("cert at {}", method.mount_path),
        },
    }
}

fn login_detail(method: &AuthMethod, token: &Token) -> String {
    let ttl = if token.ttl.is_zero() {
        "no expiry".to_string()
    } else {
        format!("TTL {}", format_duration(token.ttl))
    };
    let renewable = if token.renewable {
        "renewable"
    } else {
        "not renewable"
    };
    format!(
        "{}: a token with policies [{}], {ttl}, {renewable}",
        method_words(method),
        token.policies.join(", ")
    )
}

fn login_hint(method: &AuthMethod, claims: Option<&Claims>) -> String {
    let mount = &method.mount_path;
    match &method.kind {
        AuthKind::Kubernetes { role, .. } => {
            let account = claims
                .and_then(|c| c.service_account.as_deref())
                .unwrap_or("the ServiceAccount");
            let namespace = claims
                .and_then(|c| c.namespace.as_deref())
                .unwrap_or("the Pod's namespace");
            format!(
                "check the role `{role}` exists (`vault read {mount}/role/{role}`) and its \
                 bound_service_account_names / bound_service_account_namespaces include \
                 `{account}` / `{namespace}`; if Vault says permission denied for a role that \
                 matches, Vault cannot review the token: check the mount's kubernetes_host and \
                 token reviewer (`vault read {mount}/config`) and the system:auth-delegator \
                 ClusterRoleBinding (the seed's crb.yaml; `kubectl create -f tokenreview.yaml` \
                 must say authenticated: true)"
            )
        }
        AuthKind::Jwt { role, .. } => format!(
            "check the role `{role}` exists (`vault read {mount}/role/{role}`) and its \
             bound_audiences / bound_claims / user_claim match the JWT, and that the mount's \
             keys verify it (`vault read {mount}/config`)"
        ),
        AuthKind::AppRole { .. } => format!(
            "check that the role ID and secret ID files are current for a role under {mount} \
             (`vault list {mount}/role`); a secret ID may have expired or run out of uses"
        ),
        AuthKind::TokenFile { token_file_path } => format!(
            "the token in {} is expired, revoked or for another Vault: write a valid one \
             (`vault token lookup` shows its TTL)",
            token_file_path.display()
        ),
        AuthKind::Cert { .. } => format!(
            "check the client certificate is signed by a CA a role under {mount} trusts \
             (`vault list {mount}/certs`), is current, and that Vault's listener asks for \
             client certificates (tls_disable_client_certs is not set)"
        ),
    }
}

/// The capability a Vault call needs, and the step's name.
fn required_capability(call: &Dependency) -> (&str, &'static str) {
    match call {
        Dependency::PkiCert { path, .. } => (path, "update"),
        Dependency::Secret { path, args } if !args.is_empty() => (path, "update"),
        Dependency::Secret { path, .. } => (path.split('?').next().unwrap_or(path), "read"),
        Dependency::List { path } => (path, "list"),
    }
}

/// What a policy step is about: `update on pki/issue/web`.
fn capability_subject(call: &Dependency) -> String {
    let (path, capability) = required_capability(call);
    format!("{capability} on {path}")
}

async fn capability(client: &VaultClient, token: &Token, call: &Dependency) -> Outcome {
    let (raw_path, needed) = required_capability(call);
    // On a KV v2 mount the agent reads `MOUNT/data/...` and lists `MOUNT/metadata/...`: the
    // policy must allow those paths.
    let kv_path = match call {
        Dependency::PkiCert { .. } => None,
        Dependency::Secret { .. } | Dependency::List { .. } => client
            .raw(
                "mount_lookup",
                http::Method::GET,
                &format!("sys/internal/ui/mounts/{raw_path}"),
                &token.secret,
                None,
            )
            .await
            .ok()
            .and_then(|answer| kv::parse_lookup(&answer).ok())
            .filter(|mount| mount.kv2)
            .map(|mount| match call {
                Dependency::List { .. } => kv::metadata_path(raw_path, &mount),
                _ => kv::data_path(raw_path, &mount),
            }),
    };
    let path = kv_path.as_deref().unwrap_or(raw_path);
    let function = match call {
        Dependency::PkiCert { .. } => "pkiCert",
        Dependency::Secret { .. } => "secret",
        Dependency::List { .. } => "secrets",
    };
    let body = serde_json::json!({ "paths": [path] });
    let answer = client
        .raw(
            "capabilities_self",
            http::Method::POST,
            "sys/capabilities-self",
            &token.secret,
            Some(body),
        )
        .await;
    let capabilities: Vec<String> = match answer {
        Ok(answer) => {
            let list = answer["data"][path]
                .as_array()
                .or_else(|| answer[path].as_array())
                .or_else(|| answer["capabilities"].as_array());
            list.map(|list| {
                list.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        }
        Err(err) => {
            return failed(
                format!("sys/capabilities-self: {err}"),
                "the token cannot even ask about its own capabilities: check the `default` \
                 policy is attached",
            );
        }
    };
    let granted = capabilities.iter().any(|c| c == needed || c == "root");
    let listed = if capabilities.is_empty() {
        "none".to_string()
    } else {
        capabilities.join(", ")
    };
    if granted {
        Outcome::Passed(format!("the token may {listed} there ({function})"))
    } else {
        let policies = token.policies.join(", ");
        let rule = match needed {
            "read" => r#"["read"]"#,
            "list" => r#"["list"]"#,
            _ => r#"["create", "update"]"#,
        };
        failed(
            format!("{function} \"{path}\": the token's capabilities there are: {listed}"),
            format!(
                "add to one of the login role's token_policies (now: {policies}) a rule \
                 `path \"{path}\" {{ capabilities = {rule} }}` (`vault policy write pki \
                 pki.hcl`, as the seed does), or attach the policy that has it to the role"
            ),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Files and the listener

fn certificate_files(destination: &Path, key_files: &[PathBuf], now: SystemTime) -> Outcome {
    let mut key_paths: Vec<PathBuf> = key_files.to_vec();
    if key_paths.is_empty() {
        // No writeToFile for the key: it may sit in the destination itself.
        let holds_key = std::fs::read(destination)
            .ok()
            .and_then(|text| pem::blocks(&text).ok())
            .is_some_and(|blocks| blocks.iter().any(pem::PemBlock::is_private_key));
        if holds_key {
            key_paths.push(destination.to_path_buf());
        }
    }
    let not_written = "the agent writes it after its first complete render: check the steps \
                       above and the agent's log (`kubectl logs POD -c vault`)";
    if key_paths.is_empty() {
        return certificate_only(destination, now, not_written);
    }
    let mut facts = String::new();
    let mut problems: Vec<Problem> = Vec::new();
    for key in &key_paths {
        match check::pair(destination, key, now) {
            Err(why) => return failed(why.to_string(), not_written),
            Ok(finding) if finding.problems.is_empty() => {
                if facts.is_empty() {
                    let field = |label: &str| {
                        finding
                            .fields
                            .iter()
                            .find(|(l, _)| *l == label)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    facts = format!(
                        "{}, serial {}, valid until {} (for {})",
                        field("subject"),
                        field("serial"),
                        field("not after"),
                        field("expires in")
                    );
                }
            }
            Ok(finding) => problems.extend(finding.problems),
        }
    }
    let keys: Vec<String> = key_paths.iter().map(|p| p.display().to_string()).collect();
    if problems.is_empty() {
        return Outcome::Passed(format!("key {} matches; {facts}", keys.join(", ")));
    }
    let next = if problems
        .iter()
        .any(|problem| matches!(problem, Problem::KeyMismatch(_)))
    {
        format!(
            "`openssl pkey -pubout -in {key} | openssl sha256` and `openssl x509 -pubkey -noout \
             -in {cert} | openssl sha256` differ: restart the agent (it never reuses a \
             mismatched pair and issues a new one), and make sure nothing else writes these files",
            key = keys[0],
            cert = destination.display()
        )
    } else {
        "the agent is not renewing it: check the Vault steps above and the agent's log; \
         pki_sidecar_agent_certificate_renewal_timestamp_seconds says when it planned to"
            .to_string()
    };
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    failed(problems.join("; "), next)
}

fn certificate_only(destination: &Path, now: SystemTime, not_written: &str) -> Outcome {
    let text = match std::fs::read_to_string(destination) {
        Ok(text) => text,
        Err(err) => {
            return failed(
                format!("cannot read {}: {err}", destination.display()),
                not_written,
            );
        }
    };
    let info = match check::first_certificate(&text).and_then(|der| CertInfo::parse(&der)) {
        Ok(info) => info,
        Err(why) => return failed(format!("{}: {why}", destination.display()), not_written),
    };
    match check::fitness(info.not_before, info.not_after, now, Duration::ZERO) {
        Ok(left) => Outcome::Passed(format!(
            "{}, serial {}, valid until {} (for {}); the template writes no key file",
            info.subject_cn,
            info.serial,
            rfc3339(info.not_after),
            format_duration(Duration::from_secs(left.as_secs()))
        )),
        Err(unfit) => failed(
            format!("{}: {unfit}", destination.display()),
            "the agent is not renewing it: check the Vault steps above and the agent's log",
        ),
    }
}

/// Where to connect to reach `listen`: an unspecified address is reached on loopback.
fn listener_target(listen: std::net::SocketAddr) -> Target {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Target {
        host: ip.to_string(),
        port: listen.port(),
    }
}

/// The name to send as SNI: the certificate's first DNS name, else the address itself.
fn sni_for(info: Option<&CertInfo>, target: &Target) -> ServerName<'static> {
    info.into_iter()
        .flat_map(|info| info.names.iter())
        .filter(|name| name.parse::<IpAddr>().is_err() && !name.starts_with('*'))
        .find_map(|name| ServerName::try_from(name.clone()).ok())
        .or_else(|| {
            target
                .host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| ServerName::IpAddress(ip.into()))
        })
        .unwrap_or_else(|| ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into()))
}

fn proxy_listener(config: &Config) -> Outcome {
    let proxy = &config.proxy;
    let target = listener_target(proxy.listen);
    let on_disk = std::fs::read_to_string(&proxy.cert_file)
        .map_err(|err| format!("cannot read {}: {err}", proxy.cert_file.display()))
        .and_then(|text| {
            check::first_certificate(&text)
                .map_err(|why| format!("{}: {why}", proxy.cert_file.display()))
        })
        .and_then(|der| CertInfo::parse(&der).map(|info| (der, info)));
    let name = sni_for(on_disk.as_ref().ok().map(|(_, info)| info), &target);
    let served = match check::served(&target, name.clone(), None) {
        Ok(served) => served,
        Err(why) => {
            if !config.proxy_configured && matches!(why, CouldNotRun::Connect(_)) {
                return Outcome::Skipped(format!(
                    "no proxy {{}} block, and nothing listens on {target}"
                ));
            }
            return failed(
                why.to_string(),
                format!(
                    "is the proxy running here? (`kubectl logs POD -c proxy`); it listens on \
                     proxy.listen = {} and refuses handshakes until it has loaded {}",
                    proxy.listen,
                    proxy.cert_file.display()
                ),
            );
        }
    };
    let Some(leaf) = served.chain.first() else {
        return failed(
            format!("{target} completed a handshake without a certificate"),
            "this is not the pki-sidecar proxy",
        );
    };
    let served_info = match CertInfo::parse(leaf) {
        Ok(info) => info,
        Err(why) => return failed(format!("the served certificate: {why}"), "check the proxy"),
    };
    let (disk_der, disk_info) = match on_disk {
        Ok(found) => found,
        Err(why) => {
            return failed(
                format!(
                    "{target} serves serial {}, but its cert_file cannot be compared: {why}",
                    served_info.serial
                ),
                "proxy.cert_file must name the file the agent writes (template destination)",
            );
        }
    };
    let sni = name.to_str();
    let via = if target.to_string() == proxy.listen.to_string() {
        String::new()
    } else {
        format!("reached at {target}, ")
    };
    if disk_der == leaf.as_ref() {
        Outcome::Passed(format!(
            "{via}SNI {sni}: serves {}: serial {}, valid until {}",
            proxy.cert_file.display(),
            served_info.serial,
            rfc3339(served_info.not_after)
        ))
    } else {
        failed(
            format!(
                "{target} (SNI {sni}) serves serial {} (valid until {}), but {} holds serial {}",
                served_info.serial,
                rfc3339(served_info.not_after),
                proxy.cert_file.display(),
                disk_info.serial
            ),
            format!(
                "the proxy reloads within proxy.reload_interval ({}) of a change; if this \
                 persists, its log says why it refused the new pair \
                 (pki_sidecar_proxy_certificate_reloads_total{{result=\"failure\"}}); SIGHUP \
                 forces a reload. `pki-sidecar check tls --connect {target} --servername {sni}` \
                 shows what is served",
                format_duration(proxy.reload_interval)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_lists_every_kind_of_step_once_in_order() {
        // `Step as usize` is the declaration order; a variant left out of STEPS, or listed
        // twice, breaks the sequence.
        for (index, step) in STEPS.iter().enumerate() {
            assert_eq!(*step as usize, index, "{step:?}");
        }
        assert_eq!(Step::ProxyListener as usize + 1, STEPS.len());
    }

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode("signature")
        )
    }

    #[test]
    fn projected_and_legacy_claims_decode() {
        let projected = jwt(serde_json::json!({
            "exp": 2_000_000_000u64,
            "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"}},
        }));
        assert_eq!(
            decode_claims(&projected),
            Ok(Claims {
                namespace: Some("ns".into()),
                service_account: Some("sa".into()),
                expires: Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
            })
        );
        let legacy = jwt(serde_json::json!({
            "kubernetes.io/serviceaccount/namespace": "poc",
            "kubernetes.io/serviceaccount/service-account.name": "app-sa",
        }));
        let claims = decode_claims(&legacy).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.namespace.as_deref(), Some("poc"));
        assert_eq!(claims.service_account.as_deref(), Some("app-sa"));
        assert_eq!(claims.expires, None);
        assert!(decode_claims("not-a-jwt").is_err());
        assert!(decode_claims("a.!!!.c").is_err());
    }

    #[test]
    fn claims_are_judged_at_now() {
        let path = Path::new("/token");
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let claims = Claims {
            namespace: Some("ns".into()),
            service_account: Some("sa".into()),
            expires: Some(at(1_000)),
        };
        assert!(matches!(
            judge_claims(path, &claims, at(400)),
            Outcome::Passed(detail) if detail.contains("(in 10m)")
        ));
        assert!(matches!(
            judge_claims(path, &claims, at(1_001)),
            Outcome::Failed { detail, .. } if detail.contains("EXPIRED")
        ));
        let legacy = Claims {
            expires: None,
            ..claims.clone()
        };
        assert!(matches!(
            judge_claims(path, &legacy, at(400)),
            Outcome::Passed(detail) if detail.contains("no expiry")
        ));
        let foreign = Claims {
            namespace: None,
            ..claims
        };
        assert!(matches!(
            judge_claims(path, &foreign, at(400)),
            Outcome::Failed { .. }
        ));
    }

    #[test]
    fn steps_render_one_line_and_a_hint() {
        assert_eq!(
            render_step("login", &Outcome::Passed("ok".into())),
            "✓ login: ok\n"
        );
        assert_eq!(
            render_step("login", &failed("refused", "check the role")),
            "✗ login: refused\n  next: check the role\n"
        );
        assert_eq!(
            render_step("login", &Outcome::Skipped("no auto_auth".into())),
            "- login: skipped: no auto_auth\n"
        );
    }

    #[test]
    fn unspecified_listeners_are_reached_on_loopback() {
        let target = listener_target("0.0.0.0:443".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(target.to_string(), "127.0.0.1:443");
        let target = listener_target("[::]:8443".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(target.to_string(), "[::1]:8443");
    }

    #[test]
    fn the_openssl_hint_names_host_and_port() {
        assert_eq!(
            host_and_port("https://vault.home"),
            ("vault.home:443".to_string(), "vault.home".to_string())
        );
        assert_eq!(
            host_and_port("https://127.0.0.1:8200"),
            ("127.0.0.1:8200".to_string(), "127.0.0.1".to_string())
        );
    }
}
