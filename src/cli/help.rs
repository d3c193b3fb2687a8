//! The end of each subcommand's `--help`: what it requires, the environment variables it
//! reads, the signals it handles, its exit codes. `-h` leaves them out. Lines are wrapped here
//! at `WIDTH` with hanging indents, so clap's own wrapping (which would lose the
//! indent) does not touch them on an 80-column terminal.

use std::cell::Cell;

use crate::config::ENV_OVERRIDES;
use crate::doctor::STEPS;

thread_local! {
    /// Whether [`long`] builds the texts on this thread: off only inside [`without_long_help`].
    /// Per thread, so that nothing built elsewhere meanwhile (a test's) loses its texts.
    static LONG_HELP: Cell<bool> = const { Cell::new(true) };
}

/// `text()`, the end of a command's `--help`, unless the command line is being built by
/// [`without_long_help`] on this thread.
pub fn long(text: fn() -> String) -> String {
    if LONG_HELP.get() {
        text()
    } else {
        String::new()
    }
}

/// Runs `build` (a parse of the command line) with every command's long help left empty.
/// Building those texts (wrapping, the environment table, the exit codes) is about a million
/// instructions, a third of `validate`'s whole run, and only `--help` shows them: parse this
/// way first, and again with them when clap has help (or an error) to print.
pub fn without_long_help<T>(build: impl FnOnce() -> T) -> T {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            LONG_HELP.set(true);
        }
    }
    LONG_HELP.set(false);
    let _restore = Restore;
    build()
}

/// The longest line written: an 80-column terminal shows it whole, and so does `man`
/// beside its 7-column indent.
pub const WIDTH: usize = 72;
/// Where an item's text starts.
const LABEL: usize = 24;

/// `text` wrapped at [`WIDTH`], every line indented by `indent` spaces, except the first
/// by `first` (the label's width already written).
fn wrap(text: &str, first: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut column = first;
    let mut line_start = true;
    for word in text.split_whitespace() {
        if !line_start && column + 1 + word.len() > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
            line_start = true;
        }
        if !line_start {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
        line_start = false;
    }
    out.push('\n');
    out
}

/// A paragraph.
fn para(text: &str) -> String {
    wrap(text, 0, 0) + "\n"
}

/// A titled list: each label, then its text from column [`LABEL`] (on the next line when
/// the label is longer).
fn section(title: &str, items: &[(String, String)]) -> String {
    let mut out = format!("{title}:\n");
    for (label, text) in items {
        let label = format!("  {label}");
        if label.len() < LABEL {
            out.push_str(&format!("{label:<LABEL$}"));
        } else {
            out.push_str(&label);
            out.push('\n');
            out.push_str(&" ".repeat(LABEL));
        }
        out.push_str(&wrap(text, LABEL, LABEL));
    }
    out.push('\n');
    out
}

fn items(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(label, text)| (label.to_string(), text.to_string()))
        .collect()
}

/// The exit code of a wrong command line: clap's own, for every subcommand.
const EXIT_USAGE: (&str, &str) = (
    "2",
    "the command line is wrong (an unknown flag, a bad value)",
);
/// An invalid config, for every command that loads one.
const EXIT_CONFIG: (&str, &str) = (
    "78",
    "invalid configuration (EX_CONFIG), reported as FILE:LINE:COL: message or FILE: \
     block.key: message",
);

/// The signals of a role that serves until stopped.
fn signals(on_term: &str, on_hup: &str) -> String {
    section(
        "Signals",
        &items(&[("SIGTERM, SIGINT", on_term), ("SIGHUP", on_hup)]),
    )
}

/// What a second stop signal does to a draining role.
const SECOND_SIGNAL: &str = "; a second one ends the drain at once";

/// The variables every command that loads a config reads; `all_vault` for the commands
/// that use Vault (the others read and check them but use only the logging ones).
fn config_env(all_vault: bool, extra: &[(&str, &str)]) -> String {
    let mut list = items(&[
        ("PKI_SIDECAR_CONFIG", "--config's files, comma-separated"),
        (
            "--config-env NAME",
            "the variable NAME: a JSON agent file, or base64 of one",
        ),
        (
            "RUST_LOG",
            "the log filter when --log-level is not given (over the file's log_level)",
        ),
    ]);
    for (suffix, path) in ENV_OVERRIDES {
        let key = path.join(".");
        if all_vault || key.starts_with("log_") {
            list.push((
                format!("VAULT_{suffix}"),
                format!("{key}; BAO_{suffix} wins over it"),
            ));
        }
    }
    if !all_vault {
        list.push((
            "VAULT_*, BAO_*".to_string(),
            "the others of `agent --help` are read and checked too: the config is one for \
             every role"
                .to_string(),
        ));
    }
    list.extend(items(extra));
    let mut text = section("Environment", &list);
    text.push_str(&para(
        "Precedence, lowest first: defaults, the --config files in order, --config-env, \
         the environment, the flags.",
    ));
    text
}

/// The system CA variables, read when no Vault CA is configured.
const SYSTEM_CA_ENV: (&str, &str) = (
    "SSL_CERT_FILE, SSL_CERT_DIR",
    "the system CAs Vault is verified with when neither vault.ca_cert nor vault.ca_path \
     is set (with an http:// address, read only if Vault redirects to https://)",
);

fn exits(codes: &[(&str, &str)]) -> String {
    section("Exit codes", &items(codes))
}

/// `pki-sidecar --help`.
pub fn top() -> String {
    para(
        "Each command's --help lists its own options, then the global ones, the \
         environment variables it reads, the signals it handles and its exit codes.",
    ) + &exits(&[
        ("0", "ok"),
        (
            "1",
            "runtime failure, an unhealthy check, a failed doctor step",
        ),
        (
            "2",
            "a wrong command line (an unknown flag, a bad value); for check, a check that \
             could not run",
        ),
        (
            "65, 66",
            "(inject) input that is not YAML, input that cannot be read",
        ),
        EXIT_CONFIG,
    ])
}

/// `agent --help`.
pub fn agent() -> String {
    para("Requires a config (--config FILE or --config-env NAME) with an auto_auth block.")
        + &config_env(
            true,
            &[
                SYSTEM_CA_ENV,
                (
                    "templates",
                    "the variables templates read with env, mustEnv, envOrDefault, \
                     expandenv",
                ),
            ],
        )
        + &signals(
            "stop at once, whatever the agent waits on (Vault, a file, a template \
             command), exit 0; an exec {} command gets its restart_stop_signal first",
            "re-read the templates' source files and render them again",
        )
        + &exits(&[
            (
                "0",
                "stopped by a signal; with exit_after_auth, every template rendered once",
            ),
            (
                "1",
                "runtime failure: a failed login with exit_on_err, a file exit_after_auth \
                 cannot write, still running shutdown_grace after the stop signal",
            ),
            (
                "N",
                "with exec {}: the command exited by itself with status N (128 + the \
                 signal's number when a signal ended it)",
            ),
            EXIT_USAGE,
            EXIT_CONFIG,
        ])
}

/// `proxy --help`.
pub fn proxy() -> String {
    para(
        "A flag overrides the same key of the files' proxy {} block; with no --config, \
         the flags and the defaults are the whole config.",
    ) + &config_env(false, &[])
        + &signals(
            &format!(
                "stop accepting, let in-flight requests finish within shutdown_grace, \
                 exit 0{SECOND_SIGNAL}"
            ),
            "re-read the certificate, the key, the client CA file and the whole \
             configuration, as nginx -s reload (also done when they change on disk); a \
             configuration that does not load is logged and the running one stays",
        )
        + &exits(&[
            ("0", "stopped by a signal, in-flight requests drained"),
            ("1", "runtime failure (a listener that cannot be bound)"),
            EXIT_USAGE,
            EXIT_CONFIG,
            ("", "a bad flag value is named: --listen: proxy.listen: ..."),
        ])
}

/// `app --help`.
pub fn app() -> String {
    para("Settings come from the app {} block of the --config files, if any.")
        + &config_env(false, &[])
        + &signals(
            &format!(
                "stop accepting, let in-flight requests finish within shutdown_grace, \
                 exit 0{SECOND_SIGNAL}"
            ),
            "logged: the app has nothing to reload",
        )
        + &exits(&[
            ("0", "stopped by a signal, in-flight requests drained"),
            ("1", "runtime failure (a listener that cannot be bound)"),
            EXIT_USAGE,
            EXIT_CONFIG,
        ])
}

/// `validate --help`.
pub fn validate() -> String {
    para("Requires --config FILE or --config-env NAME.")
        + &config_env(true, &[])
        + &exits(&[
            ("0", "the config is valid (warnings are printed on stderr)"),
            EXIT_USAGE,
            EXIT_CONFIG,
            ("", "also: no config given; with --strict, any warning"),
        ])
}

/// `doctor --help`: the steps, from the list doctor runs.
pub fn doctor() -> String {
    let steps: Vec<(String, String)> = STEPS
        .iter()
        .map(|step| (step.name().to_string(), step.checks().to_string()))
        .collect();
    para("Requires --config FILE or --config-env NAME: the agent's config.")
        + &para("Each step prints one line: ✓ passed, ✗ failed (then next:), - skipped.")
        + &section("Steps, in order", &steps)
        + &config_env(true, &[SYSTEM_CA_ENV])
        + &exits(&[
            ("0", "no step failed"),
            ("1", "a step failed (its next: line says what to check)"),
            EXIT_USAGE,
            EXIT_CONFIG,
            ("", "also: no config given"),
        ])
}

/// `check tls --help`.
pub fn check_tls() -> String {
    para(
        "Prints, one `label: value` a line: connected (the address), servername, protocol \
         (TLSv1_3, TLSv1_2), kx group (the key-exchange group the handshake used: X25519MLKEM768 when \
         the server does post-quantum key exchange, else X25519, secp256r1, ...), cipher (the \
         cipher suite, such as TLS13_AES_128_GCM_SHA256), then the \
         certificate's subject, issuer, names, serial, validity and remaining time, the \
         chain's length and whether it verified. Problems go to stderr.",
    ) + "\n"
        + &para("Environment: none read.")
        + &exits(&[
            (
                "0",
                "the certificate is valid now, and still at now + --checkend",
            ),
            (
                "1",
                "unhealthy: expired, not yet valid, expiring within --checkend, not for \
                 --servername, or not signed by --cacert",
            ),
            (
                "2",
                "could not check (no connection, no handshake, an unreadable --cacert), \
                 or the command line is wrong",
            ),
        ])
}

/// `check pair --help`.
pub fn check_pair() -> String {
    para("Environment: none read.")
        + &exits(&[
            ("0", "the key matches the certificate, which is valid now"),
            (
                "1",
                "unhealthy: they do not match, or the certificate is expired or not yet \
                 valid",
            ),
            (
                "2",
                "could not check (a file unreadable or not PEM), or the command line is \
                 wrong",
            ),
        ])
}

/// `dev --help`.
pub fn dev() -> String {
    para("--config is ignored: dev writes its own config into --dir.")
        + &section(
            "Environment",
            &items(&[
                ("RUST_LOG", "the log filter when --log-level is not given"),
                (
                    "VAULT_ADDR",
                    "with --vault, the Vault to issue from; BAO_ADDR wins over it",
                ),
                (
                    "VAULT_TOKEN",
                    "with --vault, the token to issue with; BAO_TOKEN wins over it",
                ),
                (
                    "VAULT_*, BAO_*",
                    "the others of `agent --help`, applied to the generated config",
                ),
                ("TMPDIR", "where the temporary directory goes without --dir"),
            ]),
        )
        + &signals(
            &format!("stop the three roles, draining the proxy and the app{SECOND_SIGNAL}"),
            "the agent renders again, the proxy re-reads its certificate",
        )
        + &exits(&[
            ("0", "stopped by a signal"),
            (
                "1",
                "a role failed (a port in use, Vault refusing), or the directory cannot be \
                 used",
            ),
            EXIT_USAGE,
        ])
}

/// `inject --help`.
pub fn inject() -> String {
    para("Environment: the variables named [env: ...] above.")
        + &exits(&[
            ("0", "every document written to stdout"),
            ("1", "stdout cannot be written"),
            EXIT_USAGE,
            ("65", "input that is not YAML (EX_DATAERR)"),
            ("66", "input that cannot be read (EX_NOINPUT)"),
            (
                "78",
                "a bad annotation, named with its file, document and object; nothing is \
                 written",
            ),
        ])
}

/// `webhook --help`.
pub fn webhook() -> String {
    para(
        "--config is ignored: the webhook takes its flags, or the PKI_SIDECAR_WEBHOOK_* \
         and PKI_SIDECAR_INJECT_* variables named [env: ...] above.",
    ) + &section(
        "Environment",
        &items(&[
            ("PKI_SIDECAR_*", "as named [env: ...] above, for each flag"),
            ("RUST_LOG", "the log filter when --log-level is not given"),
        ]),
    ) + &signals(
        &format!(
            "stop accepting, let reviews in flight finish within --shutdown-grace, exit \
             0{SECOND_SIGNAL}"
        ),
        "re-read the serving certificate and key (also done when they change)",
    ) + &exits(&[
        ("0", "stopped by a signal, reviews in flight answered"),
        ("1", "runtime failure (a listener that cannot be bound)"),
        EXIT_USAGE,
    ])
}

/// `completions --help` and `man --help`.
pub fn generator() -> String {
    para("Environment: none read.")
        + &exits(&[
            ("0", "written"),
            ("1", "stdout or the directory cannot be written"),
            EXIT_USAGE,
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_becomes_roff_escapes() {
        assert_eq!(
            super::super::roff_ascii("✓ ok → é"),
            "\\[u2713] ok \\[u2192] \\[u00E9]"
        );
    }

    #[test]
    fn items_wrap_with_a_hanging_indent_within_the_width() {
        let text = section(
            "Exit codes",
            &items(&[
                ("0", "ok"),
                ("a label longer than the column", "short"),
                ("1", &"word ".repeat(40)),
            ]),
        );
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        let pad = " ".repeat(LABEL);
        assert!(
            text.starts_with(&format!("Exit codes:\n  0{}ok\n", &pad[3..])),
            "{text}"
        );
        assert!(
            text.contains(&format!("  a label longer than the column\n{pad}short\n")),
            "{text}"
        );
        // After the "1" line, its continuation lines, then the blank line ending the list.
        let continued: Vec<&str> = text.lines().skip(5).collect();
        assert!(continued.len() > 1, "{text}");
        assert_eq!(continued.last(), Some(&""));
        for line in &continued[..continued.len() - 1] {
            assert!(line.starts_with(&pad), "{line:?}");
        }
    }

    #[test]
    fn every_help_text_fits_the_width() {
        for text in [
            top(),
            agent(),
            proxy(),
            app(),
            validate(),
            doctor(),
            check_tls(),
            check_pair(),
            dev(),
            inject(),
            webhook(),
            generator(),
        ] {
            for line in text.lines() {
                assert!(line.chars().count() <= WIDTH, "{line:?}");
            }
        }
    }
}
