//! The `pki-sidecar` executable: parse the command line, load the config, run one role.
//!
//! Errors are printed once, here, with their whole chain. Exit codes: 0 ok, 1 runtime failure,
//! 2 a check could not run (or a wrong command line, clap's), 78 invalid configuration; each
//! subcommand's `--help` lists its own.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// jemalloc, for Rust's allocations and (unprefixed) the C code's: size classes four to a
/// doubling and no per-block header, where the static musl build's libc rounds every block up
/// to a power of two; freed memory goes back to the system from a background thread
/// (.cargo/config.toml). See BENCHMARKS.md, "The image's allocator".
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{CommandFactory, Parser};
use pki_sidecar::agent::functions::KnownFunctions;
use pki_sidecar::cli::{CheckCommand, Cli, Command, ManArgs, Shell};
use pki_sidecar::config::{self, Config, LogFormat, Role};
use pki_sidecar::lifecycle::Lifecycle;
use pki_sidecar::{agent, app, check, dev, doctor, proxy, telemetry, validate, webhook};

fn main() -> ExitCode {
    // One crypto provider for the whole process, before any TLS config is built.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("pki-sidecar: a rustls crypto provider was already installed");
        return ExitCode::FAILURE;
    }
    // Parsed without the long help's texts; `--help`, `--version` and usage errors are parsed
    // again from the whole command line, which prints them and exits.
    let cli =
        pki_sidecar::cli::help::without_long_help(Cli::try_parse).unwrap_or_else(|_| Cli::parse());
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pki-sidecar: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let role = match &cli.command {
        Command::Agent => Role::Agent,
        Command::Proxy(_) => Role::Proxy,
        Command::App => Role::App,
        Command::Validate(args) => return Ok(validate_command(&cli, args.role, args.strict)),
        Command::Check(CheckCommand::Tls(args)) => {
            return Ok(check::run_tls(&check::TlsProbe {
                connect: args.connect.clone(),
                servername: args.servername.clone(),
                cacert: args.cacert.clone(),
                checkend: args.checkend.unwrap_or_default(),
            }));
        }
        Command::Check(CheckCommand::Pair(args)) => {
            return Ok(check::run_pair(&args.cert, &args.key));
        }
        Command::Doctor => return Ok(doctor_command(&cli)),
        Command::Completions(args) => return Ok(completions(args.shell)),
        Command::Man(args) => return Ok(man(args)),
        Command::Dev(args) => {
            if !cli.config.is_empty() || !cli.config_env.is_empty() {
                eprintln!("pki-sidecar dev: --config is ignored; dev writes its own config");
            }
            return Ok(dev::main(cli.log_level.as_deref(), cli.log_format, args));
        }
        Command::Inject(args) => {
            return Ok(pki_sidecar::inject::manifest::run(
                &args.inject.settings(),
                &args.paths,
            ));
        }
        Command::Webhook(args) => {
            if !cli.config.is_empty() || !cli.config_env.is_empty() {
                eprintln!(
                    "pki-sidecar webhook: --config is ignored; the webhook takes flags and \
                     PKI_SIDECAR_WEBHOOK_* variables"
                );
            }
            telemetry::init_logging(
                cli.log_level.as_deref(),
                None,
                cli.log_format.unwrap_or(LogFormat::Text),
            );
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let lifecycle = Lifecycle::new();
                lifecycle.listen_for_signals()?;
                webhook::run(args.config(), lifecycle).await
            })?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let sources = Sources::of(&cli);
    let config = match load(&sources) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    // Each role's own config type, checked for what only that role needs (the agent's
    // auto_auth) before anything starts.
    let role_config = match role {
        Role::Agent => match config.agent() {
            Ok(agent_config) => RoleConfig::Agent(agent_config),
            Err(errors) => {
                eprintln!("{errors}");
                return Ok(ExitCode::from(config::EXIT_CONFIG as u8));
            }
        },
        Role::Proxy => RoleConfig::Proxy(config.proxy.clone()),
        Role::App => RoleConfig::App(config.app.clone()),
    };
    let format = cli
        .log_format
        .or(config.logging.format)
        .unwrap_or(LogFormat::Text);
    telemetry::init_logging(
        cli.log_level.as_deref(),
        config.logging.level.as_deref(),
        format,
    );
    match role_config {
        RoleConfig::App(app_config) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let lifecycle = Lifecycle::new();
                lifecycle.listen_for_signals()?;
                app::run(&app_config, lifecycle).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        RoleConfig::Agent(agent_config) => {
            // One thread: the agent waits on Vault and timers, and stays small.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let grace = agent_config.shutdown_grace;
            let result = runtime.block_on(async {
                let lifecycle = Lifecycle::new();
                lifecycle.listen_for_signals()?;
                lifecycle.exit_after_grace(grace);
                agent::run(&agent_config, lifecycle).await
            });
            // File work left running on the blocking pool (a write stuck on a hung volume, a
            // read waiting on a FIFO) gets half the grace to finish, then the process ends
            // without it, before the watchdog would have to.
            runtime.shutdown_timeout(grace / 2);
            // With `exec`, the agent ends when its child does, with the child's status.
            if let Err(err) = &result
                && let Some(exited) = err.downcast_ref::<agent::ChildExited>()
            {
                return Ok(ExitCode::from(u8::try_from(exited.code).unwrap_or(1)));
            }
            result?;
            Ok(ExitCode::SUCCESS)
        }
        RoleConfig::Proxy(proxy_config) => {
            let runtime = proxy_runtime()?;
            // SIGHUP and a change to the files read the configuration again, as at start.
            let reload = proxy::ConfigReload::new(sources.roots(), move || sources.load());
            runtime.block_on(async {
                let lifecycle = Lifecycle::new();
                lifecycle.listen_for_signals()?;
                proxy::run(&proxy_config, Some((reload, &config)), lifecycle).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A role and the config it runs with.
// Built once per process and matched at once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum RoleConfig {
    Agent(config::AgentConfig),
    Proxy(config::Proxy),
    App(config::App),
}

/// The proxy's runtime: with one CPU to run on (`taskset`, a Pod whose CPU limit is under two:
/// `available_parallelism` rounds the cgroup's quota down), a single-threaded one, where the
/// tasks of a request (its connection's, the upstream connection's) wake each other without
/// the work-stealing scheduler's shared queues and atomic hand-offs; with more, one worker per
/// CPU.
fn proxy_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

/// Loads the config files, printing errors and choosing exit code 78 when they are invalid;
/// warnings are printed to stderr and the load goes on.
fn load(sources: &Sources) -> Result<Config, ExitCode> {
    let config = sources.load().map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(config::EXIT_CONFIG as u8)
    })?;
    for warning in &config.warnings {
        eprintln!("{warning}");
    }
    Ok(config)
}

/// Where the command line says the configuration comes from: the `--config` files, then the
/// `--config-env` variables, with the process environment, then the role's flags (`proxy
/// --listen`...); the nginx file of `--nginx-config`.
struct Sources {
    config: Vec<std::path::PathBuf>,
    config_env: Vec<String>,
    flags: Vec<config::FlagOverride>,
    nginx: Option<std::path::PathBuf>,
}

impl Sources {
    fn of(cli: &Cli) -> Sources {
        let flags = match &cli.command {
            Command::Proxy(args) => args.overrides(),
            _ => Vec::new(),
        };
        let nginx = match &cli.command {
            Command::Proxy(args) => args.nginx_config.clone(),
            Command::Validate(args) => args.nginx_config.clone(),
            _ => None,
        };
        Sources {
            config: cli.config.clone(),
            config_env: cli.config_env.clone(),
            flags,
            nginx,
        }
    }

    /// The paths as given (files and directories).
    fn roots(&self) -> Vec<std::path::PathBuf> {
        self.config.iter().chain(&self.nginx).cloned().collect()
    }

    /// Reads the configuration (again: a running proxy's reload).
    fn load(&self) -> Result<Config, config::ConfigErrors> {
        if let Some(nginx) = &self.nginx {
            return config::load_for_proxy(
                &self.config,
                &self.config_env,
                nginx,
                &self.flags,
                &|name| std::env::var(name).ok(),
                &KnownFunctions,
            );
        }
        config::load_sources_with_flags(
            &self.config,
            &self.config_env,
            &self.flags,
            &|name| std::env::var(name).ok(),
            &KnownFunctions,
        )
    }
}

/// `completions SHELL`: the script on stdout.
fn completions(shell: Shell) -> ExitCode {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell.generator(), &mut command, "pki-sidecar", &mut script);
    if shell == Shell::Bash {
        // clap_complete (4.6.12) spells a hyphenated program name one way in the loop that
        // finds the subcommand and another in the `case` arms that complete it, so nothing
        // after `pki-sidecar SUBCOMMAND` would complete (clap-rs/clap#6421, #6529). The arms
        // get the loop's spelling; once clap is fixed this matches nothing.
        let text = String::from_utf8_lossy(&script).replace("pki__subcmd__sidecar", "pki__sidecar");
        script = text.into_bytes();
    }
    write_stdout(&script, "completions")
}

/// `man`: the main page on stdout, or with `--dir` every command's page into the directory,
/// each path printed as it is written.
fn man(args: &ManArgs) -> ExitCode {
    let pages = match pki_sidecar::cli::man_pages() {
        Ok(pages) => pages,
        Err(err) => {
            eprintln!("pki-sidecar man: cannot render the pages: {err}");
            return ExitCode::FAILURE;
        }
    };
    let Some(dir) = &args.dir else {
        // The first page is the main one.
        let main_page = pages
            .first()
            .map(|(_, text)| text.as_str())
            .unwrap_or_default();
        return write_stdout(main_page.as_bytes(), "man");
    };
    for (name, text) in &pages {
        let path = dir.join(name);
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!(
                "pki-sidecar man: cannot write {}: {err} (--dir must name an existing, \
                 writable directory: `mkdir -p {}` first)",
                path.display(),
                dir.display()
            );
            return ExitCode::FAILURE;
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

/// Writes generated text to stdout; a closed pipe is a failure, not a panic.
fn write_stdout(bytes: &[u8], command: &str) -> ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pki-sidecar {command}: cannot write to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}

fn validate_command(cli: &Cli, role: Option<Role>, strict: bool) -> ExitCode {
    let nginx = matches!(&cli.command, Command::Validate(args) if args.nginx_config.is_some());
    let role = role.or(nginx.then_some(Role::Proxy));
    if cli.config.is_empty() && cli.config_env.is_empty() && !nginx {
        eprintln!(
            "pki-sidecar validate: no config file given; use --config FILE or --config-env NAME"
        );
        return ExitCode::from(config::EXIT_CONFIG as u8);
    }
    let mut config = match Sources::of(cli).load() {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(config::EXIT_CONFIG as u8);
        }
    };
    // What only a look at the files and the templates' dry runs can tell.
    let checks = validate::checks(&config);
    config
        .warnings
        .extend(config::locate_warnings(&cli.config, checks));
    if (strict || config.strict)
        && let Some(errors) = config.strict_errors()
    {
        eprintln!("{errors}");
        return ExitCode::from(config::EXIT_CONFIG as u8);
    }
    for warning in &config.warnings {
        eprintln!("{warning}");
    }
    let roles = match role {
        Some(role) => {
            if role == Role::Agent
                && let Err(errors) = config.agent()
            {
                eprintln!("{errors}");
                return ExitCode::from(config::EXIT_CONFIG as u8);
            }
            vec![role]
        }
        None => vec![Role::Agent, Role::Proxy, Role::App],
    };
    print!("{}", validate::summary(&config, &roles));
    ExitCode::SUCCESS
}

fn doctor_command(cli: &Cli) -> ExitCode {
    if cli.config.is_empty() && cli.config_env.is_empty() {
        eprintln!(
            "pki-sidecar doctor: no config file given; use --config FILE or --config-env NAME"
        );
        return ExitCode::from(config::EXIT_CONFIG as u8);
    }
    match load(&Sources::of(cli)) {
        Ok(config) => doctor::run(&config),
        Err(code) => code,
    }
}
