//! The command line as the user typed it; nothing here reads files or the environment
//! beyond what clap does for `--config`'s `PKI_SIDECAR_CONFIG`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Role};

/// What `--version` prints after the name: the version and the git commit (no build date, so
/// builds stay reproducible).
const CLI_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PKI_SIDECAR_GIT_COMMIT"),
    ")"
);

/// TLS certificates from Vault's PKI engine for a Kubernetes Pod: agent, proxy and app.
#[derive(Debug, Parser)]
#[command(name = "pki-sidecar", version = CLI_VERSION, about, propagate_version = true)]
pub struct Cli {
    /// Config file (HCL, as Vault Agent's); repeat to layer files, later ones win.
    #[arg(
        long = "config",
        short = 'c',
        global = true,
        env = "PKI_SIDECAR_CONFIG",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub config: Vec<PathBuf>,

    /// Environment variable holding a JSON agent file (or base64 of one), as the Vault Agent
    /// Injector's `VAULT_CONFIG`; repeatable, layered after the `--config` files, in order.
    #[arg(long = "config-env", global = true, value_name = "NAME")]
    pub config_env: Vec<String>,

    /// Log line format [default: the file's log_format, else text].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level or tracing filter, e.g. `debug` or `pki_sidecar=trace` [default: RUST_LOG,
    /// else the file's log_level, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to Vault, issue certificates through templates and keep them renewed.
    Agent,
    /// Terminate TLS with the agent's certificate and forward to the app.
    Proxy,
    /// Serve `hello world` over plain HTTP.
    App,
    /// Check the config and print what each role would do; touches nothing.
    Validate(ValidateArgs),
    /// Probes for Kubernetes and for people: the served certificate, a key pair on disk.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Walk the troubleshooting steps for a config: token, Vault, login, policy, files, proxy.
    Doctor,
    /// Try it on one machine: app, proxy and agent in one process, on a development CA.
    Dev(crate::dev::DevArgs),
    /// Add the sidecars to annotated workloads in Kubernetes YAML (files, directories or stdin).
    Inject(InjectCommandArgs),
    /// Serve the mutating admission webhook that adds the sidecars to annotated Pods.
    Webhook(WebhookArgs),
}

/// Injection defaults shared by `inject` and `webhook`, so both produce the same Pod.
#[derive(Debug, Clone, Args)]
pub struct InjectArgs {
    /// Image of the injected containers.
    #[arg(
        long,
        env = "PKI_SIDECAR_INJECT_IMAGE",
        value_name = "IMAGE",
        default_value = concat!("pki-sidecar:", env!("CARGO_PKG_VERSION"))
    )]
    pub image: String,
    /// Vault's address for injected agents, unless a Pod's annotation sets it.
    #[arg(long, env = "PKI_SIDECAR_INJECT_VAULT_ADDR", value_name = "URL")]
    pub vault_address: Option<String>,
}

impl InjectArgs {
    /// The transform's settings.
    pub fn settings(&self) -> crate::inject::Settings {
        crate::inject::Settings {
            image: self.image.clone(),
            vault_address: self.vault_address.clone(),
        }
    }
}

/// `inject` options.
#[derive(Debug, Args)]
pub struct InjectCommandArgs {
    /// Injection defaults.
    #[command(flatten)]
    pub inject: InjectArgs,
    /// YAML files or directories to read; `-` or nothing reads stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `webhook` options; each flag can also be set by the environment variable it names.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Injection defaults.
    #[command(flatten)]
    pub inject: InjectArgs,
    /// The HTTPS listener the API server posts AdmissionReviews to (`/mutate`).
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:8443",
        value_name = "ADDR"
    )]
    pub listen: std::net::SocketAddr,
    /// `/metrics`, `/healthz` and `/readyz` (plain HTTP).
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_METRICS_LISTEN",
        default_value = "0.0.0.0:9104",
        value_name = "ADDR"
    )]
    pub metrics_listen: std::net::SocketAddr,
    /// The serving certificate chain (PEM), reloaded when it changes.
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_TLS_CERT_FILE",
        default_value = "/etc/pki-sidecar/webhook/tls.crt",
        value_name = "FILE"
    )]
    pub tls_cert_file: PathBuf,
    /// The serving certificate's key (PEM).
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_TLS_KEY_FILE",
        default_value = "/etc/pki-sidecar/webhook/tls.key",
        value_name = "FILE"
    )]
    pub tls_key_file: PathBuf,
    /// How often the certificate files are checked besides file events and SIGHUP.
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_RELOAD_INTERVAL",
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub reload_interval: std::time::Duration,
    /// The largest AdmissionReview read, in bytes (larger: 413). The API server refuses
    /// request bodies over 3 MiB, so a review of a Pod it accepted fits.
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_MAX_BODY_BYTES",
        default_value_t = 3 * 1024 * 1024,
        value_name = "BYTES"
    )]
    pub max_body_bytes: usize,
    /// How long in-flight reviews may take to finish after SIGTERM.
    #[arg(
        long,
        env = "PKI_SIDECAR_WEBHOOK_SHUTDOWN_GRACE",
        default_value = "15s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub shutdown_grace: std::time::Duration,
}

impl WebhookArgs {
    /// The webhook's resolved config.
    pub fn config(&self) -> crate::webhook::Config {
        crate::webhook::Config {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            cert_file: self.tls_cert_file.clone(),
            key_file: self.tls_key_file.clone(),
            reload_interval: self.reload_interval,
            max_body_bytes: self.max_body_bytes,
            shutdown_grace: self.shutdown_grace,
            handshake_timeout: std::time::Duration::from_secs(10),
            settings: self.inject.settings(),
        }
    }
}

/// A duration as the config files spell it (`10s`, `1m30s`, `250ms`, bare seconds).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = crate::units::duration(&crate::units::Scalar::Text(text.to_string()))?;
    if duration.is_zero() {
        return Err("must be more than 0".to_string());
    }
    Ok(duration)
}

/// `validate` options.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only check what this role needs.
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// Treat every warning (a key Vault Agent would ignore, two templates writing one file...)
    /// as an error: exit 78. `pki_sidecar { strict = true }` in the file does the same.
    #[arg(long)]
    pub strict: bool,
}

/// `check` probes.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Connect over TLS and check the served certificate.
    Tls(CheckTlsArgs),
    /// Check that a certificate file and a key file belong together and are valid.
    Pair(CheckPairArgs),
}

/// `check tls` options.
#[derive(Debug, Args)]
pub struct CheckTlsArgs {
    /// Where to connect, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: String,
    /// SNI name to send and verify.
    #[arg(long)]
    pub servername: Option<String>,
    /// CA bundle to verify against.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Fail if the certificate expires within this many seconds.
    #[arg(long, value_name = "SECS")]
    pub checkend: Option<u64>,
}

/// `check pair` options.
#[derive(Debug, Args)]
pub struct CheckPairArgs {
    /// The certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// The private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}
