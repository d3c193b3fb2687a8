//! `agent-inject-command-NAME`: the command run after a template renders. The image has no
//! shell: a line the agent runs itself (signals to the app: `kill -HUP $(pidof nginx)`,
//! `pkill -HUP nginx || true`, `sh -c '…'` around them; [`crate::agent::builtin`]) is passed
//! as written; anything else is split on whitespace into an argument list (Vault Agent's
//! `exec`), and what a shell would have interpreted there is refused rather than passed on
//! literally.

use crate::agent::builtin;
use crate::config::TemplateCommand;

/// What a shell would interpret, and a short name for the message.
const SHELL_SYNTAX: &[(&str, &str)] = &[
    ("|", "a pipe `|`"),
    ("&", "`&` or `&&`"),
    (";", "`;`"),
    ("'", "quotes"),
    ("\"", "quotes"),
    ("`", "backticks"),
    ("$", "`$` (variables, substitutions)"),
    (">", "a redirection `>`"),
    ("<", "a redirection `<`"),
    ("*", "a glob `*`"),
    ("?", "a glob `?`"),
    ("[", "a glob `[`"),
    ("~", "`~` (home directory)"),
    ("\\", "a backslash escape"),
    ("(", "`(` (subshells)"),
    (")", "`)` (subshells)"),
    ("{", "`{` (brace expansion)"),
    ("}", "`}` (brace expansion)"),
    ("#", "`#` (comments)"),
    ("\n", "a line break"),
];

/// The command for the agent's template: one line the agent runs itself, or the argument list
/// of a plain command; an error says why `command` would need a shell.
pub(crate) fn split(command: &str) -> Result<Vec<String>, String> {
    let line = command.trim();
    let not_built_in = match builtin::parse(&TemplateCommand::Shell(line.to_string())) {
        // One string (with a space: a shell line to the agent, which then runs it itself).
        Ok(_) => return Ok(vec![line.to_string()]),
        Err(why) => why,
    };
    for (token, name) in SHELL_SYNTAX {
        if command.contains(token) {
            return Err(format!(
                "{command:?} needs a shell ({name}), and the pki-sidecar image has none. The \
                 agent runs signal commands itself ({}; with `||`, `&&`, `;`, `$(pidof …)`, \
                 `$(pgrep …)`, `$(cat FILE)`, `sh -c`), but not this one: {not_built_in}. Give \
                 such a command, or a plain one (a program and its arguments, separated by \
                 spaces), or put the logic in a program of your own image",
                builtin::PROGRAMS
            ));
        }
    }
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        return Err("the command is empty".to_string());
    }
    if words[0].contains('=') {
        return Err(format!(
            "{command:?} starts with a variable assignment, which needs a shell, and the \
             pki-sidecar image has none: give a plain command (a program and its arguments)"
        ));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn a_plain_command_is_split_on_whitespace() {
        assert_eq!(
            split("  /app/reload   --all now ").unwrap(),
            vec!["/app/reload", "--all", "now"]
        );
        assert_eq!(
            split("/pki-sidecar\tcheck pair --cert /vault/secrets/tls.crt").unwrap(),
            vec![
                "/pki-sidecar",
                "check",
                "pair",
                "--cert",
                "/vault/secrets/tls.crt"
            ]
        );
    }

    #[test]
    fn what_needs_a_shell_is_refused_by_name() {
        for (command, word) in [
            ("kill -HUP $(pidof nginx | head -1)", "pipe"),
            ("cat a | wc -l", "pipe"),
            ("touch a && touch b", "`&`"),
            ("touch a; touch b", "`;`"),
            ("printf 'hi there'", "quotes"),
            ("printf \"hi\"", "quotes"),
            ("printf `date`", "backticks"),
            ("printf hi > /tmp/x", "redirection"),
            ("rm /tmp/*.pem", "glob"),
            ("FOO=1 run", "variable assignment"),
        ] {
            let err = split(command).unwrap_err();
            assert!(err.contains(word), "{command}: {err}");
            assert!(err.contains("has none"), "{command}: {err}");
        }
    }

    #[test]
    fn signal_lines_the_agent_runs_itself_pass_as_written() {
        for line in [
            "kill -HUP $(pidof nginx)",
            "/bin/sh -c 'pkill -HUP nginx || true'",
            "killall podinfo",
            "kill -TERM $(pgrep fake-service)",
        ] {
            assert_eq!(split(line).unwrap(), vec![line.to_string()], "{line}");
        }
        assert_eq!(split("  true ").unwrap(), vec!["true"]);
    }

    #[test]
    fn an_empty_command_is_refused() {
        assert!(split("   ").unwrap_err().contains("empty"));
    }
}
