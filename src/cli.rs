//! The command line as the user typed it; nothing here reads files or the environment
//! beyond what clap does for the variables its `env` attributes name.
//!
//! Every subcommand's `--help` (not `-h`) ends with the environment variables it reads, the
//! signals it handles and its exit codes ([`help`]); `doctor --help` lists
//! [`crate::doctor::STEPS`], the steps doctor runs.

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

/// The heading the options every subcommand takes are listed under, after its own.
const GLOBAL: &str = "Global options";

/// TLS certificates from Vault's PKI engine for a Kubernetes Pod: agent, proxy and app.
#[derive(Debug, Parser)]
#[command(
    name = "pki-sidecar",
    version = CLI_VERSION,
    about,
    propagate_version = true,
    after_long_help = help::long(help::top)
)]
pub struct Cli {
    /// Config file (HCL, as Vault Agent's); repeat to layer files, later ones win.
    #[arg(
        long = "config",
        short = 'c',
        global = true,
        help_heading = GLOBAL,
        env = "PKI_SIDECAR_CONFIG",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub config: Vec<PathBuf>,

    /// Environment variable holding a JSON agent file (or base64 of one), as the Vault Agent
    /// Injector's `VAULT_CONFIG`; repeatable, layered after the `--config` files, in order.
    #[arg(
        long = "config-env",
        global = true,
        value_name = "NAME",
        help_heading = GLOBAL
    )]
    pub config_env: Vec<String>,

    /// Log line format [default: the file's log_format, else text].
    #[arg(long, global = true, value_enum, help_heading = GLOBAL)]
    pub log_format: Option<LogFormat>,

    /// Log level or tracing filter, e.g. `debug` or `pki_sidecar=trace` [default: RUST_LOG,
    /// else the file's log_level, else info].
    #[arg(long, global = true, value_name = "LEVEL", help_heading = GLOBAL)]
    pub log_level: Option<String>,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to Vault, issue certificates through templates and keep them renewed.
    #[command(after_long_help = help::long(help::agent))]
    Agent,
    /// Terminate TLS with the agent's certificate and forward to the app.
    ///
    /// Settings come from the `proxy {}` block of the --config files; each flag below
    /// overrides its key, and with flags alone no file is needed.
    #[command(after_long_help = help::long(help::proxy))]
    Proxy(ProxyArgs),
    /// Serve `hello world` over plain HTTP.
    #[command(after_long_help = help::long(help::app))]
    App,
    /// Check the config and print what each role would do; touches nothing.
    #[command(after_long_help = help::long(help::validate))]
    Validate(ValidateArgs),
    /// Probes for Kubernetes and for people: the served certificate, a key pair on disk.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Walk the troubleshooting steps for a config: token, Vault, login, policy, files, proxy.
    #[command(after_long_help = help::long(help::doctor))]
    Doctor,
    /// Try it on one machine: app, proxy and agent in one process, on a development CA.
    #[command(after_long_help = help::long(help::dev))]
    Dev(crate::dev::DevArgs),
    /// Add the sidecars to annotated workloads in Kubernetes YAML (files, directories or stdin).
    #[command(after_long_help = help::long(help::inject))]
    Inject(InjectCommandArgs),
    /// Serve the mutating admission webhook that adds the sidecars to annotated Pods.
    #[command(after_long_help = help::long(help::webhook))]
    Webhook(WebhookArgs),
    /// Write a shell completion script to stdout.
    ///
    /// bash: `pki-sidecar completions bash > /etc/bash_completion.d/pki-sidecar`;
    /// zsh: into a directory of $fpath as `_pki-sidecar`; fish:
    /// `~/.config/fish/completions/pki-sidecar.fish`.
    #[command(after_long_help = help::long(help::generator))]
    Completions(CompletionsArgs),
    /// Write the manual page (roff) to stdout, or one page per subcommand into a directory.
    #[command(after_long_help = help::long(help::generator))]
    Man(ManArgs),
}

/// `proxy` options: each one overrides the same key of the files' `proxy {}` block.
#[derive(Debug, Default, Args)]
pub struct ProxyArgs {
    /// The TLS listener, IP:PORT or :PORT [proxy.listen; default 0.0.0.0:443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where requests go: http://HOST:PORT (or HOST:PORT), or https://HOST:PORT
    /// [proxy.upstream; default http://127.0.0.1:80].
    #[arg(long, value_name = "ADDR")]
    pub upstream: Option<String>,
    /// The certificate chain served, PEM; reloaded when it changes [proxy.cert_file; default
    /// /etc/nginx/ssl/tls.crt].
    #[arg(long, value_name = "FILE")]
    pub cert: Option<String>,
    /// The certificate's private key, PEM [proxy.key_file; default /etc/nginx/ssl/tls.key].
    #[arg(long, value_name = "FILE")]
    pub key: Option<String>,
    /// CAs for client certificates (mutual TLS). Implies client_auth = "require": a client
    /// without a certificate signed by them is refused [proxy.client_ca_file].
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<String>,
    /// /metrics, /healthz and /readyz, plain HTTP [proxy.metrics_listen; default
    /// 0.0.0.0:9102].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Read the settings from nginx's configuration: its server with `listen ... ssl` (the
    /// certificate, the key, `location / { proxy_pass }`, timeouts, HSTS...), under the flags
    /// and over the files; what is not carried over is a warning, what would change a
    /// request or a response an error (exit 78).
    #[arg(long, value_name = "FILE")]
    pub nginx_config: Option<std::path::PathBuf>,
}

impl ProxyArgs {
    /// The flags given, as the config's last layer: a bad value is reported naming the flag
    /// (`--listen: proxy.listen: ...`) and exits 78, as a bad file does.
    pub fn overrides(&self) -> Vec<crate::config::FlagOverride> {
        use crate::config::FlagOverride;
        let mut overrides = Vec::new();
        let mut set = |flag, path, value: &Option<String>| {
            if let Some(value) = value {
                overrides.push(FlagOverride {
                    flag,
                    path,
                    value: value.clone(),
                });
            }
        };
        set("--listen", &["proxy", "listen"], &self.listen);
        // ghostunnel's --target is HOST:PORT: take it as plain HTTP.
        let upstream = self.upstream.as_ref().map(|text| {
            if text.contains("://") {
                text.clone()
            } else {
                format!("http://{text}")
            }
        });
        set("--upstream", &["proxy", "upstream"], &upstream);
        set("--cert", &["proxy", "cert_file"], &self.cert);
        set("--key", &["proxy", "key_file"], &self.key);
        set("--client-ca", &["proxy", "client_ca_file"], &self.client_ca);
        // A CA file without a requirement would let clients without a certificate in.
        let require = self.client_ca.as_ref().map(|_| "require".to_string());
        set("--client-ca", &["proxy", "client_auth"], &require);
        set(
            "--metrics-listen",
            &["proxy", "metrics_listen"],
            &self.metrics_listen,
        );
        overrides
    }
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash (bash-completion).
    Bash,
    /// zsh (compsys).
    Zsh,
    /// fish.
    Fish,
}

impl Shell {
    /// clap_complete's generator for this shell.
    pub fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// `completions` options.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `man` options.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into DIR (pki-sidecar.1, pki-sidecar-agent.1,
    /// pki-sidecar-check-tls.1, ...) instead of the main page to stdout; DIR must exist.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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

/// `check tls --checkend`: a duration as the config spells it, where `0` is allowed (the
/// liveness probe's "not expired yet").
fn parse_checkend(text: &str) -> Result<std::time::Duration, String> {
    crate::units::duration(&crate::units::Scalar::Text(text.to_string()))
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
    /// Check nginx's configuration as `proxy --nginx-config FILE` reads it (then --config is
    /// optional, and the role defaults to proxy).
    #[arg(long, value_name = "FILE")]
    pub nginx_config: Option<std::path::PathBuf>,
}

/// `check` probes.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Connect over TLS and check the served certificate.
    #[command(after_long_help = help::long(help::check_tls))]
    Tls(CheckTlsArgs),
    /// Check that a certificate file and a key file belong together and are valid.
    #[command(after_long_help = help::long(help::check_pair))]
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
    /// Fail (exit 1) if the certificate expires within this long: `1d`, `12h`, `90m`, `30s`,
    /// bare seconds; `0` checks that it has not expired [default: 0].
    #[arg(long, value_name = "DURATION", value_parser = parse_checkend)]
    pub checkend: Option<std::time::Duration>,
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

/// The manual pages, `(file name, roff text)`: `pki-sidecar.1` first, then one per command at
/// every level (`pki-sidecar-agent.1`, `pki-sidecar-check-tls.1`...), as clap_mangen names them.
/// Characters beyond ASCII (doctor's `✓`) are written as roff's `\[uXXXX]` escapes, so
/// `groff -man` renders them without warnings whatever its input encoding.
pub fn man_pages() -> std::io::Result<Vec<(String, String)>> {
    use clap::CommandFactory as _;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    let mut pending = vec![command];
    while let Some(command) = pending.pop() {
        pending.extend(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned()
                .collect::<Vec<_>>()
                .into_iter()
                .rev(),
        );
        let man = clap_mangen::Man::new(command);
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        let text = String::from_utf8(roff)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
        // clap_mangen fills the after-help text like prose; it is laid out already (lists
        // with hanging indents, at most help::WIDTH columns, which fits beside man's indent).
        let text = text.replacen(".SH EXTRA\n", ".SH DETAILS\n.nf\n", 1);
        pages.push((man.get_filename(), roff_ascii(&text)));
    }
    Ok(pages)
}

/// `text` with every non-ASCII character as a roff Unicode escape.
fn roff_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// The end of each subcommand's `--help` (requirements, environment, signals, exit codes).
pub mod help;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::agent::functions::KnownFunctions;
    use crate::config::{self, Config, ConfigErrors};

    #[test]
    fn the_long_help_is_left_out_only_inside_without_long_help() {
        use clap::CommandFactory as _;
        let after = |command: &clap::Command, name: &str| {
            command
                .find_subcommand(name)
                .and_then(clap::Command::get_after_long_help)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let lean = help::without_long_help(Cli::command);
        assert_eq!(after(&lean, "agent"), "");
        let full = Cli::command();
        assert!(after(&full, "agent").contains("Exit codes:"));
        // The same parse either way.
        let args = [
            "pki-sidecar",
            "agent",
            "--config",
            "a.hcl",
            "--log-level",
            "debug",
        ];
        let parsed = help::without_long_help(|| Cli::try_parse_from(args)).unwrap();
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", Cli::try_parse_from(args).unwrap())
        );
    }

    fn proxy_args(args: &[&str]) -> ProxyArgs {
        let mut argv = vec!["pki-sidecar", "proxy"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Proxy(args) => args,
            other => panic!("not proxy: {other:?}"),
        }
    }

    /// The config from `file` (a `proxy {}` body, if any), `env` and the flags of `args`.
    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Config, ConfigErrors> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(body) = file {
            let path = dir.path().join("proxy.hcl");
            std::fs::write(&path, format!("proxy {{\n{body}\n}}\n")).expect("write");
            paths.push(path);
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config::load_sources_with_flags(
            &paths,
            &[],
            &proxy_args(args).overrides(),
            &|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &KnownFunctions,
        )
    }

    #[test]
    fn proxy_flags_are_the_last_layer() {
        let config = load(
            Some("  listen = \"0.0.0.0:8443\"\n  upstream = \"http://127.0.0.1:81\"\n  hsts = \"max-age=1\""),
            &[],
            &["--listen", "127.0.0.1:9443", "--cert", "/c/tls.crt"],
        )
        .expect("loads");
        assert_eq!(config.proxy.listen.to_string(), "127.0.0.1:9443");
        assert_eq!(config.proxy.cert_file, PathBuf::from("/c/tls.crt"));
        // What no flag sets comes from the file, or the defaults.
        assert_eq!(config.proxy.upstream.to_string(), "http://127.0.0.1:81/");
        assert_eq!(config.proxy.hsts.as_deref(), Some("max-age=1"));
        assert_eq!(
            config.proxy.key_file,
            PathBuf::from("/etc/nginx/ssl/tls.key")
        );
    }

    #[test]
    fn proxy_flags_alone_are_a_whole_config() {
        let config = load(None, &[], &["--upstream", "127.0.0.1:8080"]).expect("loads");
        assert_eq!(config.proxy.upstream.to_string(), "http://127.0.0.1:8080/");
        assert_eq!(config.proxy.listen.to_string(), "0.0.0.0:443");
        assert!(config.proxy.client_auth.is_none());
    }

    #[test]
    fn client_ca_flag_requires_client_certificates_whatever_the_file_says() {
        let config = load(
            Some("  client_ca_file = \"/f/ca.pem\"\n  client_auth = \"optional\""),
            &[],
            &["--client-ca", "/flag/ca.pem"],
        )
        .expect("loads");
        let auth = config.proxy.client_auth.expect("mutual TLS");
        assert_eq!(auth.ca_file, PathBuf::from("/flag/ca.pem"));
        assert!(auth.required);
    }

    #[test]
    fn a_bad_flag_value_is_blamed_on_the_flag_and_the_environment_on_its_variable() {
        let errors = load(
            Some("  listen = \":443\""),
            &[("VAULT_ADDR", "not a url")],
            &[
                "--listen",
                "localhost:443",
                "--metrics-listen",
                "127.0.0.1:9102",
            ],
        )
        .expect_err("refused")
        .to_string();
        assert!(
            errors.contains("--listen: proxy.listen: \"localhost:443\" is not an IP:port"),
            "{errors}"
        );
        assert!(
            errors.contains("environment variable VAULT_ADDR: vault.address:"),
            "{errors}"
        );
        assert!(!errors.contains("--metrics-listen"), "{errors}");
    }

    #[test]
    fn checkend_takes_config_durations_and_zero() {
        let parse = |text: &str| parse_checkend(text).map(|d| d.as_secs());
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1d"), Ok(86_400));
        assert_eq!(parse("12h"), Ok(43_200));
        assert_eq!(parse("90m"), Ok(5_400));
        assert_eq!(parse("30s"), Ok(30));
        assert_eq!(parse("3600"), Ok(3_600));
        assert!(parse("soon").is_err());
    }
}
