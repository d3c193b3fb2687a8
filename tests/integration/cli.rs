//! The command line itself, as the real binary prints it: each subcommand's `--help` (its own
//! options, then the global ones, its environment, signals and exit codes), `doctor --help`
//! against the steps doctor really runs, the shell completion scripts (checked by bash, zsh and
//! fish themselves) and the manual pages (rendered by groff).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use crate::util;

/// Every command with a page and a `--help`, as typed after `pki-sidecar`.
const COMMANDS: &[&[&str]] = &[
    &["agent"],
    &["proxy"],
    &["app"],
    &["validate"],
    &["check", "tls"],
    &["check", "pair"],
    &["doctor"],
    &["dev"],
    &["inject"],
    &["webhook"],
    &["completions"],
    &["man"],
];

fn run(args: &[&str]) -> Output {
    util::command()
        .args(args)
        .output()
        .expect("run pki-sidecar")
}

fn stdout(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The lines of the section `title:` of a help text, up to the next blank line.
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    let heading = format!("{title}:");
    let mut lines = help.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "no {heading} in:\n{help}");
    lines.take_while(|line| !line.is_empty()).collect()
}

/// The labels of a section's items (`  0   ok` gives `0`); continuation lines have none.
fn labels(lines: &[&str]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

struct Expected {
    command: &'static [&'static str],
    /// A flag of the command's own.
    own_flag: &'static str,
    /// Environment variables the help must name.
    env: &'static [&'static str],
    /// Whether it serves until a signal stops it.
    signals: bool,
    exit_codes: &'static [&'static str],
}

const VAULT_ENV: &[&str] = &[
    "PKI_SIDECAR_CONFIG",
    "RUST_LOG",
    "VAULT_ADDR",
    "VAULT_CACERT",
    "VAULT_NAMESPACE",
    "BAO_ADDR",
];
const ROLE_ENV: &[&str] = &["PKI_SIDECAR_CONFIG", "RUST_LOG", "VAULT_LOG_LEVEL"];

const EXPECTED: &[Expected] = &[
    Expected {
        command: &["agent"],
        own_flag: "--help",
        env: VAULT_ENV,
        signals: true,
        exit_codes: &["0", "1", "2", "78", "N"],
    },
    Expected {
        command: &["proxy"],
        own_flag: "--listen",
        env: ROLE_ENV,
        signals: true,
        exit_codes: &["0", "1", "2", "78"],
    },
    Expected {
        command: &["app"],
        own_flag: "--help",
        env: ROLE_ENV,
        signals: true,
        exit_codes: &["0", "1", "2", "78"],
    },
    Expected {
        command: &["validate"],
        own_flag: "--strict",
        env: VAULT_ENV,
        signals: false,
        exit_codes: &["0", "2", "78"],
    },
    Expected {
        command: &["check", "tls"],
        own_flag: "--checkend",
        env: &[],
        signals: false,
        exit_codes: &["0", "1", "2"],
    },
    Expected {
        command: &["check", "pair"],
        own_flag: "--cert",
        env: &[],
        signals: false,
        exit_codes: &["0", "1", "2"],
    },
    Expected {
        command: &["doctor"],
        own_flag: "--help",
        env: VAULT_ENV,
        signals: false,
        exit_codes: &["0", "1", "2", "78"],
    },
    Expected {
        command: &["dev"],
        own_flag: "--ttl",
        env: &["RUST_LOG", "VAULT_ADDR", "VAULT_TOKEN", "TMPDIR"],
        signals: true,
        exit_codes: &["0", "1", "2"],
    },
    Expected {
        command: &["inject"],
        own_flag: "--image",
        env: &["PKI_SIDECAR_INJECT_IMAGE", "PKI_SIDECAR_INJECT_VAULT_ADDR"],
        signals: false,
        exit_codes: &["0", "1", "2", "65", "66", "78"],
    },
    Expected {
        command: &["webhook"],
        own_flag: "--tls-cert-file",
        env: &[
            "PKI_SIDECAR_WEBHOOK_LISTEN",
            "PKI_SIDECAR_WEBHOOK_TLS_CERT_FILE",
            "PKI_SIDECAR_INJECT_IMAGE",
            "RUST_LOG",
        ],
        signals: true,
        exit_codes: &["0", "1", "2"],
    },
    Expected {
        command: &["completions"],
        own_flag: "--help",
        env: &[],
        signals: false,
        exit_codes: &["0", "1", "2"],
    },
    Expected {
        command: &["man"],
        own_flag: "--dir",
        env: &[],
        signals: false,
        exit_codes: &["0", "1", "2"],
    },
];

#[test]
fn every_help_lists_its_options_then_the_global_ones_its_environment_signals_and_exit_codes() {
    assert_eq!(
        EXPECTED.iter().map(|e| e.command).collect::<Vec<_>>(),
        COMMANDS,
        "every command is checked"
    );
    for expected in EXPECTED {
        let mut args = expected.command.to_vec();
        args.push("--help");
        let help = stdout(&args);
        let name = expected.command.join(" ");
        let own = help
            .find("\nOptions:\n")
            .unwrap_or_else(|| panic!("{name}: no Options"));
        let global = help
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{name}: no Global options:\n{help}"));
        let own_flag = own
            + help[own..]
                .find(&format!(" {}", expected.own_flag))
                .unwrap_or_else(|| panic!("{name}: no {}", expected.own_flag));
        assert!(own < own_flag && own_flag < global, "{name}:\n{help}");
        let globals = &help[global..];
        for flag in [
            "--config <FILE>",
            "--config-env <NAME>",
            "--log-format",
            "--log-level",
        ] {
            assert!(globals.contains(flag), "{name}: {flag} not global:\n{help}");
            assert!(
                !help[..global].contains(flag),
                "{name}: {flag} before the global ones"
            );
        }
        for variable in expected.env {
            assert!(
                help.contains(variable),
                "{name}: {variable} not named:\n{help}"
            );
        }
        if expected.signals {
            let signals = labels(&section(&help, "Signals"));
            assert_eq!(
                signals,
                ["SIGHUP", "SIGTERM,"].map(String::from).into(),
                "{name}:\n{help}"
            );
            assert!(help.contains("SIGTERM, SIGINT"), "{name}:\n{help}");
        } else {
            assert!(!help.contains("Signals:"), "{name}:\n{help}");
        }
        let codes = labels(&section(&help, "Exit codes"));
        let expected_codes: BTreeSet<String> =
            expected.exit_codes.iter().map(|c| c.to_string()).collect();
        assert_eq!(codes, expected_codes, "{name}:\n{help}");

        // -h stays short: the options only.
        let mut args = expected.command.to_vec();
        args.push("-h");
        let short = stdout(&args);
        assert!(!short.contains("Exit codes:"), "{name} -h:\n{short}");
        assert!(short.contains("Global options:"), "{name} -h:\n{short}");
    }
}

#[test]
fn top_level_help_names_every_command_and_the_exit_codes() {
    let help = stdout(&["--help"]);
    let commands = labels(&section(&help, "Commands"));
    for command in COMMANDS {
        assert!(commands.contains(command[0]), "{command:?} not in:\n{help}");
    }
    assert!(help.contains("Exit codes:"), "{help}");
    let version = stdout(&["--version"]);
    assert!(
        version.starts_with(concat!(
            "pki-sidecar ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        )),
        "{version}"
    );
}

#[test]
fn doctor_help_lists_every_step_doctor_runs_in_order() {
    let help = stdout(&["doctor", "--help"]);
    let listed: Vec<String> = section(&help, "Steps, in order")
        .iter()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        // A name is words up to two spaces (the column gap) or the end of the line.
        .map(|line| {
            line.trim_start()
                .split("  ")
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(listed.len(), 6, "{help}");

    // A config reaching every kind of step: kubernetes auth (token), a Vault (reachable),
    // a pkiCert template (login, policy, certificate) and a proxy block (listener). Nothing
    // answers, so every step fails or is skipped, quickly.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = util::write_file(
        dir.path(),
        "doctor.hcl",
        &format!(
            "vault {{\n  address = \"http://127.0.0.1:1\"\n}}\n\
             auto_auth {{\n  method \"kubernetes\" {{\n    config = {{\n      role = \"web\"\n      \
             token_path = \"{dir}/token\"\n    }}\n  }}\n}}\n\
             template {{\n  contents = \"{{{{ with pkiCert \\\"pki/issue/web\\\" \
             \\\"common_name=foo.home\\\" }}}}{{{{ .Data.Cert }}}}{{{{ end }}}}\"\n  \
             destination = \"{dir}/tls.crt\"\n}}\n\
             proxy {{\n  listen = \"127.0.0.1:1\"\n}}\n",
            dir = dir.path().display()
        ),
    );
    let output = run(&["doctor", "--config", config.to_str().expect("UTF-8")]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let ran: Vec<&str> = report
        .lines()
        .filter_map(|line| {
            ["✓ ", "✗ ", "- "]
                .iter()
                .find_map(|mark| line.strip_prefix(mark))
        })
        .collect();
    assert_eq!(ran.len(), 6, "{report}");
    for (line, step) in ran.iter().zip(&listed) {
        assert!(
            line.starts_with(&format!("{step} ")) || line.starts_with(&format!("{step}:")),
            "{line:?} is not the step {step:?} listed by --help:\n{help}"
        );
    }
}

/// The named shell, or a failure saying how to install it.
fn shell(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "{name} is needed to check its completion script: bash scripts/install-test-deps.sh"
    );
    Command::new(name)
}

fn write_script(dir: &Path, name: &str, shell_name: &str) -> String {
    let script = stdout(&["completions", shell_name]);
    assert!(!script.trim().is_empty(), "{shell_name}: empty script");
    util::write_file(dir, name, &script)
        .to_str()
        .expect("UTF-8")
        .to_string()
}

#[test]
fn bash_completion_is_valid_bash_and_completes_subcommands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "pki-sidecar.bash", "bash");
    let syntax = shell("bash")
        .args(["-n", &script])
        .output()
        .expect("bash -n");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // What bash does on TAB: the function `complete -p` names, with COMP_* set.
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {script}\n\
             function=$(complete -p pki-sidecar | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
             COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\n\
             COMP_POINT=${{#COMP_LINE}}\n\
             \"$function\" pki-sidecar '{current}' '{previous}'\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words = words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            cword = words.len() - 1,
            current = words[words.len() - 1],
            previous = words[words.len() - 2],
        );
        let output = shell("bash").args(["-c", &program]).output().expect("bash");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete("pki-sidecar ch"), ["check"]);
    assert_eq!(complete("pki-sidecar check p"), ["pair"]);
    assert_eq!(complete("pki-sidecar completions z"), ["zsh"]);
    assert!(
        complete("pki-sidecar proxy --cl").contains(&"--client-ca".to_string()),
        "proxy's flags complete"
    );
}

#[test]
fn zsh_and_fish_completions_are_valid_scripts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zsh = write_script(dir.path(), "_pki-sidecar", "zsh");
    let output = shell("zsh").args(["-n", &zsh]).output().expect("zsh -n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        std::fs::read_to_string(&zsh)
            .unwrap()
            .starts_with("#compdef pki-sidecar")
    );

    let fish = write_script(dir.path(), "pki-sidecar.fish", "fish");
    let output = shell("fish").args(["-n", &fish]).output().expect("fish -n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let completed = shell("fish")
        .args([
            "-c",
            &format!("source {fish}; complete -C 'pki-sidecar ch'"),
        ])
        .output()
        .expect("fish complete -C");
    let completed = String::from_utf8_lossy(&completed.stdout);
    let words: Vec<&str> = completed
        .lines()
        .filter_map(|line| line.split('\t').next())
        .collect();
    assert_eq!(words, ["check"], "{completed}");
}

/// `page` rendered by `groff -man -Tutf8 -ww`: the text, after asserting no warning.
fn groff(page: &Path) -> String {
    let output = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(page)
        .output()
        .expect("groff (Debian groff-base): bash scripts/install-test-deps.sh");
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && warnings.is_empty(),
        "{}: {warnings}",
        page.display()
    );
    // groff's terminal output overstrikes for bold and underline; keep the letters.
    let text = String::from_utf8_lossy(&output.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn man_pages_render_without_warnings_and_cover_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main_page = util::write_file(dir.path(), "stdout.1", &stdout(&["man"]));
    let text = groff(&main_page);
    for command in COMMANDS {
        assert!(
            text.contains(&format!("pki-sidecar-{}(1)", command[0])),
            "{command:?} not in the main page:\n{text}"
        );
    }

    let pages = dir.path().join("pages");
    std::fs::create_dir(&pages).expect("mkdir");
    let listed = stdout(&["man", "--dir", pages.to_str().expect("UTF-8")]);
    let mut expected: Vec<String> = vec!["pki-sidecar.1".to_string()];
    expected.push("pki-sidecar-check.1".to_string());
    expected.extend(
        COMMANDS
            .iter()
            .map(|command| format!("pki-sidecar-{}.1", command.join("-"))),
    );
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&pages)
        .expect("read the directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    written.sort();
    assert_eq!(written, expected);
    assert_eq!(listed.lines().count(), expected.len(), "{listed}");
    for name in &written {
        let text = groff(&pages.join(name));
        assert!(text.contains("SYNOPSIS"), "{name}:\n{text}");
    }
    // The laid-out lists survive: one line per step in doctor's page.
    let doctor = groff(&pages.join("pki-sidecar-doctor.1"));
    assert!(
        doctor
            .lines()
            .any(|line| line.trim_start().starts_with("ServiceAccount token  ")),
        "{doctor}"
    );
    assert!(doctor.contains("✓ passed"), "{doctor}");
    let agent = groff(&pages.join("pki-sidecar-agent.1"));
    for text in ["SIGHUP", "VAULT_ADDR", "Exit codes:"] {
        assert!(agent.contains(text), "{text} not in:\n{agent}");
    }
}
