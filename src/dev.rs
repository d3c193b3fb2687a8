//! `pki-sidecar dev`: the Pod's three roles in one process on localhost, for a first look.
//!
//! It generates the agent's config as HCL text — the seed's template with short-lived
//! certificates for `localhost` and 127.0.0.1, written into one directory — and loads it with
//! the normal loader, so the same template, `pkiCert`, renewal schedule, atomic writes, proxy
//! reload and metrics code run as in the Pod. Certificates come from the in-process
//! [`DevCa`] through the agent's [`Backend`](crate::agent::backend::Backend) seam, or, with
//! `--vault`, from a real Vault/OpenBao at `VAULT_ADDR` with `VAULT_TOKEN` (the `token_file`
//! method). Once the proxy serves a certificate that verifies against the CA, it prints the
//! `curl` line and the metrics URLs on stdout; logs go to stderr. It must stay a thin
//! assembly of the roles: no role behaves differently here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::agent::functions::KnownFunctions;
use crate::config::{self, LogFormat};
use crate::devca::{DevCa, LeafKey};
use crate::fsutil::{self, Ownership};
use crate::lifecycle::Lifecycle;
use crate::schedule::Clock;
use crate::secret::Secret;
use crate::units::{self, Scalar};
use crate::{agent, app, http_server, proxy, telemetry};
use tracing::Instrument;

/// `dev` options.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Lifetime of each certificate (`90s`, `2m`, `1h`); short, so a rotation is seen soon.
    #[arg(long, default_value = "2m", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Directory for ca.crt, tls.crt, tls.key and the generated dev.hcl [default: a new
    /// temporary directory, removed on exit].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The proxy's TLS listener.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The app's plain-HTTP listener (the proxy's upstream).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub app_listen: SocketAddr,
    /// The agent's /metrics, /healthz, /readyz.
    #[arg(long, default_value = "127.0.0.1:9101", value_name = "ADDR")]
    pub agent_metrics_listen: SocketAddr,
    /// The proxy's /metrics, /healthz, /readyz.
    #[arg(long, default_value = "127.0.0.1:9102", value_name = "ADDR")]
    pub proxy_metrics_listen: SocketAddr,
    /// The app's /metrics, /healthz, /readyz.
    #[arg(long, default_value = "127.0.0.1:9103", value_name = "ADDR")]
    pub app_metrics_listen: SocketAddr,
    /// Issue from the Vault/OpenBao at VAULT_ADDR with the token in VAULT_TOKEN instead of the
    /// development CA (BAO_* twins win).
    #[arg(long)]
    pub vault: bool,
    /// Log each request the proxy serves (`proxy.access_log = true`).
    #[arg(long)]
    pub access_log: bool,
    /// The development CA's leaf key type, as a Vault role's `key_type`: `ec` (ECDSA) or
    /// `rsa`. With --vault the role decides, so this flag is refused there.
    #[arg(long, default_value = "ec", value_name = "TYPE",
          value_parser = ["ec", "rsa"], conflicts_with = "vault")]
    pub key_type: String,
    /// The development CA's leaf key size, as a Vault role's `key_bits`: 256 or 384 for `ec`,
    /// 2048, 3072 or 4096 for `rsa` [default: 256 for ec, 2048 for rsa].
    #[arg(long, value_name = "BITS", conflicts_with = "vault")]
    pub key_bits: Option<u32>,
    /// The PKI issue path the template's pkiCert writes to.
    #[arg(
        long,
        default_value = "pki_intermediate/issue/home",
        value_name = "PATH"
    )]
    pub pki_path: String,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = units::duration(&Scalar::Text(text.to_string()))?;
    if ttl < Duration::from_secs(2) {
        return Err("a certificate must live at least 2s".to_string());
    }
    Ok(ttl)
}

/// File names inside the directory.
const ROOT_FILE: &str = "ca.crt";
const CERT_FILE: &str = "tls.crt";
const KEY_FILE: &str = "tls.key";
const CONFIG_FILE: &str = "dev.hcl";
const TOKEN_FILE: &str = "vault-token";

/// Runs `dev` to the end and chooses the exit code; errors are printed here, once.
pub fn main(log_level: Option<&str>, log_format: Option<LogFormat>, args: &DevArgs) -> ExitCode {
    telemetry::init_logging(log_level, None, log_format.unwrap_or(LogFormat::Text));
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pki-sidecar dev: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where the files live, and whether this run created the directory (then it removes it).
struct Workspace {
    dir: PathBuf,
    temporary: bool,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // The token must not outlive the run; a temporary directory goes entirely.
        let _ = std::fs::remove_file(self.dir.join(TOKEN_FILE));
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run(args: &DevArgs) -> anyhow::Result<()> {
    let leaf_key = LeafKey::parse(&args.key_type, args.key_bits.unwrap_or(0))
        .map_err(|err| anyhow::anyhow!("--key-type/--key-bits: {err}"))?;
    let workspace = prepare_dir(args.dir.as_deref())?;
    let dir = &workspace.dir;
    // Certificates left by an earlier run were signed by an earlier CA (or Vault): the agent
    // would reuse them, and they would not verify against this run's ca.crt.
    for stale in [CERT_FILE, KEY_FILE, ROOT_FILE] {
        match std::fs::remove_file(dir.join(stale)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err)
                    .with_context(|| format!("cannot remove {stale} in {}", dir.display()));
            }
            _ => {}
        }
    }
    let ca = if args.vault {
        let token = vault_env("TOKEN").map(Secret::new).context(
            "--vault needs a token in VAULT_TOKEN (or BAO_TOKEN) for the Vault at VAULT_ADDR",
        )?;
        if vault_env("ADDR").is_none() {
            bail!("--vault needs VAULT_ADDR (or BAO_ADDR): the address of Vault or OpenBao");
        }
        fsutil::write_atomic(
            &dir.join(TOKEN_FILE),
            token.expose().as_bytes(),
            0o600,
            Ownership::default(),
        )
        .context("cannot write the token file")?;
        None
    } else {
        let ca = DevCa::generate(args.ttl, args.ttl)
            .context("cannot generate the development CA")?
            .with_leaf_key(leaf_key);
        fsutil::write_atomic(
            &dir.join(ROOT_FILE),
            ca.root_pem().as_bytes(),
            0o644,
            Ownership::default(),
        )
        .context("cannot write the root certificate")?;
        Some(ca)
    };
    let config_path = dir.join(CONFIG_FILE);
    fsutil::write_atomic(
        &config_path,
        config_text(args, dir).as_bytes(),
        0o644,
        Ownership::default(),
    )
    .context("cannot write the generated config")?;
    let config = config::load(std::slice::from_ref(&config_path), &KnownFunctions)
        .map_err(|errors| anyhow::anyhow!("the generated config is invalid:\n{errors}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let lifecycle = Lifecycle::new();
        lifecycle.listen_for_signals()?;
        tracing::info!(
            dir = %dir.display(),
            issuer = if args.vault { "vault" } else { "development CA" },
            key = if args.vault {
                "the Vault role's".to_string()
            } else {
                format!("{} {}", leaf_key.key_type(), leaf_key.bits())
            },
            ttl_seconds = args.ttl.as_secs(),
            "dev: starting the app, the proxy and the agent in one process"
        );
        let mut roles = JoinSet::new();
        let (app_config, proxy_config) = (config.app.clone(), config.proxy.clone());
        let each = lifecycle.clone();
        roles.spawn(async move { ("app", app::run(&app_config, each).await) });
        let each = lifecycle.clone();
        roles.spawn(async move { ("proxy", proxy::run(&proxy_config, None, each).await) });
        let each = lifecycle.clone();
        roles.spawn(async move { ("agent", run_agent(&config, ca, each).await) });
        let banner = tokio::spawn(announce(args.banner(dir), lifecycle.shutdown.clone()));
        // One role ending (an error, or shutdown) ends them all.
        let mut failure = None;
        while let Some(joined) = roles.join_next().await {
            let (role, result) = joined.context("a role's task panicked")?;
            if let Err(err) = result {
                tracing::error!(role, error = format!("{err:#}"), "role failed; stopping");
                let hint = if address_in_use(&err) {
                    " (another process has the port; dev's --listen, --app-listen and \
                     --*-metrics-listen flags choose others)"
                } else {
                    ""
                };
                failure.get_or_insert(err.context(format!("the {role} role failed{hint}")));
            }
            lifecycle.shutdown.cancel();
        }
        banner.abort();
        match failure {
            Some(err) => Err(err),
            None => {
                tracing::info!("dev: stopped");
                Ok(())
            }
        }
    })
}

/// The agent role as the Pod runs it ([`agent::run`]) with `--vault`; else the same agent
/// ([`agent::Agent::serve`]) with the development CA as its backend, which needs no login.
async fn run_agent(
    config: &config::Config,
    ca: Option<DevCa>,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let Some(ca) = ca else {
        let agent_config = config
            .agent()
            .map_err(|errors| anyhow::anyhow!("the generated config is invalid:\n{errors}"))?;
        return agent::run(&agent_config, lifecycle).await;
    };
    run_dev_agent(config, ca, lifecycle)
        .instrument(telemetry::role_span("agent"))
        .await
}

/// The agent on the development CA: [`agent::Agent::serve`] with it as the backend.
async fn run_dev_agent(
    config: &config::Config,
    ca: DevCa,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let listen = config.telemetry.metrics_listen;
    let metrics_listener = http_server::bind(
        listen,
        "telemetry.metrics_listen",
        config.telemetry.listen_backlog,
    )
    .await?;
    let telemetry = telemetry::Telemetry::new().context("cannot register the agent's metrics")?;
    agent::Agent::with_backend(&config.templates(), Box::new(ca), telemetry, Clock::System)?
        .serve(metrics_listener, lifecycle)
        .await
}

/// Whether `err` comes from binding a port someone else holds.
fn address_in_use(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// Creates `dir` (or a new temporary one, 0700).
fn prepare_dir(dir: Option<&Path>) -> anyhow::Result<Workspace> {
    let (dir, temporary) = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.to_path_buf(), false)
        }
        None => {
            let dir = std::env::temp_dir().join(format!(
                "pki-sidecar-dev-{}-{:06x}",
                std::process::id(),
                fastrand::u32(..0x100_0000)
            ));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir, true)
        }
    };
    let dir =
        std::fs::canonicalize(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    // The path goes into HCL strings and Go template strings: keep it to characters that need
    // no escaping in either.
    let text = dir.to_string_lossy();
    if text
        .chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\\' | '$' | '%' | '{' | '}' | '`'))
    {
        bail!(
            "{}: choose a directory whose path has none of \" \\ $ % {{ }} ` (it is written \
             into the generated config)",
            dir.display()
        );
    }
    Ok(Workspace { dir, temporary })
}

/// `VAULT_{suffix}`, with its `BAO_` twin winning; empty counts as unset.
fn vault_env(suffix: &str) -> Option<String> {
    ["BAO_", "VAULT_"]
        .iter()
        .filter_map(|prefix| std::env::var(format!("{prefix}{suffix}")).ok())
        .find(|value| !value.is_empty())
}

/// The config the three roles run with: the seed's template for short-lived certificates for
/// `localhost` and 127.0.0.1, everything in `dir`.
fn config_text(args: &DevArgs, dir: &Path) -> String {
    let dir = dir.display();
    let auto_auth = if args.vault {
        format!(
            r#"
auto_auth {{
    method "token_file" {{
        config = {{
            token_file_path = "{dir}/{TOKEN_FILE}"
        }}
    }}
}}
"#
        )
    } else {
        String::new()
    };
    // With Vault the trust anchor comes from the issue answer (the CA chain); the development
    // CA's root is written before the agent starts.
    let ca_write = if args.vault {
        format!(
            r#"{{{{ .Data.CAChain | join "" | writeToFile "{dir}/{ROOT_FILE}" "" "" "0644" }}}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"# Generated by `pki-sidecar dev`; each run rewrites it.
{auto_auth}
template {{
destination = "{dir}/{CERT_FILE}"
contents = <<EOT
{{{{- with pkiCert "{path}" "common_name=localhost" "alt_names=localhost" "ip_sans=127.0.0.1" "ttl={ttl}s" -}}}}
{{{{ .Data.Cert }}}}
{{{{ .Data.CA }}}}
{{{{ if .Data.Key }}}}
{{{{ .Data.Key | writeToFile "{dir}/{KEY_FILE}" "" "" "0600" }}}}
{ca_write}
{{{{ end }}}}
{{{{ end }}}}
EOT
perms = 0644
}}

telemetry {{
    metrics_listen = "{agent_metrics}"
}}

proxy {{
    listen         = "{listen}"
    upstream       = "http://{upstream}"
    cert_file      = "{dir}/{CERT_FILE}"
    key_file       = "{dir}/{KEY_FILE}"
    metrics_listen = "{proxy_metrics}"
    access_log     = {access_log}
}}

app {{
    listen         = "{app_listen}"
    metrics_listen = "{app_metrics}"
}}
"#,
        path = args.pki_path,
        ttl = args.ttl.as_secs(),
        access_log = args.access_log,
        agent_metrics = args.agent_metrics_listen,
        listen = args.listen,
        upstream = loopback(args.app_listen),
        proxy_metrics = args.proxy_metrics_listen,
        app_listen = args.app_listen,
        app_metrics = args.app_metrics_listen,
    )
}

/// Where to connect to reach `listen` from this machine (an unspecified address means any).
fn loopback(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
    } else {
        listen
    }
}

/// What the banner prints.
struct Banner {
    dir: PathBuf,
    listen: SocketAddr,
    /// Where the proxy's /readyz is.
    proxy_metrics: SocketAddr,
    metrics: [(&'static str, SocketAddr); 3],
    ttl: Duration,
    vault: bool,
}

impl DevArgs {
    /// The banner's facts for files in `dir`.
    fn banner(&self, dir: &Path) -> Banner {
        Banner {
            dir: dir.to_path_buf(),
            listen: self.listen,
            proxy_metrics: self.proxy_metrics_listen,
            metrics: [
                ("agent", self.agent_metrics_listen),
                ("proxy", self.proxy_metrics_listen),
                ("app", self.app_metrics_listen),
            ],
            ttl: self.ttl,
            vault: self.vault,
        }
    }
}

/// Waits until the proxy serves a certificate that verifies against `ca.crt` for `localhost`,
/// then prints how to try it. Gives up quietly at shutdown.
async fn announce(banner: Banner, shutdown: CancellationToken) {
    let root_file = banner.dir.join(ROOT_FILE);
    let address = loopback(banner.listen);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        // The proxy's /readyz first, so no handshake is refused (and counted) before it has
        // a certificate; then one handshake proves what the banner promises.
        if is_ready(loopback(banner.proxy_metrics)).await
            && served_and_verified(address, &root_file).await.is_ok()
        {
            break;
        }
    }
    let port = banner.listen.port();
    let mut text = format!(
        "\npki-sidecar dev: https://localhost:{port}/ is served with a certificate from {}\n\
         \x20 files:   {} (ca.crt, tls.crt, tls.key, dev.hcl)\n\
         \x20 try:     curl --cacert {} https://localhost:{port}/\n",
        if banner.vault {
            "Vault"
        } else {
            "the development CA"
        },
        banner.dir.display(),
        root_file.display(),
    );
    for (role, address) in banner.metrics {
        text.push_str(&format!(
            "  metrics: http://{}/metrics ({role})\n",
            loopback(address)
        ));
    }
    text.push_str(&format!(
        "  certificates live {}s and are renewed at about 2/3 of that; Ctrl-C stops\n",
        banner.ttl.as_secs()
    ));
    println!("{text}");
}

/// Whether `GET /readyz` on `address` answers 200.
async fn is_ready(address: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(Duration::from_secs(2), exchange).await {
        Ok(Ok(answer)) => answer.starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

/// One TLS handshake with `address` as `localhost`, verified against the roots in `root_file`.
async fn served_and_verified(address: SocketAddr, root_file: &Path) -> anyhow::Result<()> {
    let text = tokio::fs::read(root_file).await?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in crate::tls::pem::certificates(&text).map_err(anyhow::Error::msg)? {
        roots.add(certificate)?;
    }
    let client = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(address),
    )
    .await??;
    let name = rustls_pki_types::ServerName::try_from("localhost")?;
    tokio::time::timeout(Duration::from_secs(2), connector.connect(name, stream)).await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        dev: DevArgs,
    }

    fn args(extra: &[&str]) -> DevArgs {
        Wrapper::parse_from(std::iter::once("dev").chain(extra.iter().copied())).dev
    }

    #[test]
    fn defaults_are_the_readme_s() {
        let args = args(&[]);
        assert_eq!(args.ttl, Duration::from_secs(120));
        assert_eq!(args.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(args.pki_path, "pki_intermediate/issue/home");
        assert!(!args.vault);
        assert!(Wrapper::try_parse_from(["dev", "--ttl", "1s"]).is_err());
        assert!(Wrapper::try_parse_from(["dev", "--ttl", "soon"]).is_err());
    }

    #[test]
    fn the_generated_config_loads_through_the_normal_loader() {
        let dir = Path::new("/run/dev-test");
        let development = config::load_str(
            "dev.hcl",
            &config_text(&args(&["--ttl", "90s"]), dir),
            &KnownFunctions,
        )
        .expect("dev config loads");
        assert!(development.auto_auth.is_none());
        assert_eq!(development.templates.len(), 1);
        assert_eq!(development.templates[0].destination, dir.join(CERT_FILE));
        assert_eq!(development.templates[0].perms, Some(0o644));
        let config::TemplateSource::Contents(text) = &development.templates[0].source else {
            panic!("inline template expected");
        };
        assert!(text.contains(
            r#"pkiCert "pki_intermediate/issue/home" "common_name=localhost" "alt_names=localhost" "ip_sans=127.0.0.1" "ttl=90s""#
        ));
        assert!(text.contains(r#"writeToFile "/run/dev-test/tls.key" "" "" "0600""#));
        assert_eq!(development.proxy.cert_file, dir.join(CERT_FILE));
        assert_eq!(development.proxy.key_file, dir.join(KEY_FILE));
        assert_eq!(
            development.proxy.upstream.to_string(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(development.telemetry.metrics_listen.port(), 9101);
        assert_eq!(development.proxy.metrics_listen.port(), 9102);
        assert_eq!(development.app.metrics_listen.port(), 9103);

        let vault = config::load_str(
            "dev.hcl",
            &config_text(&args(&["--vault", "--pki-path", "pki/issue/web"]), dir),
            &KnownFunctions,
        )
        .expect("--vault config loads");
        vault.agent().expect("the agent can run it");
        let method = &vault.auto_auth.as_ref().unwrap().method;
        assert_eq!(
            method.kind,
            config::AuthKind::TokenFile {
                token_file_path: dir.join(TOKEN_FILE)
            }
        );
        let config::TemplateSource::Contents(text) = &vault.templates[0].source else {
            panic!("inline template expected");
        };
        assert!(text.contains(r#"pkiCert "pki/issue/web""#));
        assert!(text.contains(r#".Data.CAChain | join "" | writeToFile "/run/dev-test/ca.crt""#));
    }

    #[test]
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(
            loopback("0.0.0.0:8080".parse().unwrap()).to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            loopback("127.0.0.2:8080".parse().unwrap()).to_string(),
            "127.0.0.2:8080"
        );
    }
}
