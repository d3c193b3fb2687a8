//! `agent-inject-command-NAME`: the command run after a template renders. The image has no
//! shell, so the value is split on whitespace into an argument list (Vault Agent's `exec`);
//! anything a shell would have interpreted is refused rather than passed on literally.

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

/// The argument list of `command`, or why it needs a shell.
pub(crate) fn split(command: &str) -> Result<Vec<String>, String> {
    for (token, name) in SHELL_SYNTAX {
        if command.contains(token) {
            return Err(format!(
                "{command:?} needs a shell ({name}), and the pki-sidecar image has none: give a \
                 plain command (a program and its arguments, separated by spaces), or put the \
                 logic in a program of your own image and run it from there"
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
            split("  /bin/kill   -HUP 1 ").unwrap(),
            vec!["/bin/kill", "-HUP", "1"]
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
            ("kill -HUP $(pidof nginx)", "`$`"),
            ("cat a | wc -l", "pipe"),
            ("touch a && touch b", "`&`"),
            ("touch a; touch b", "`;`"),
            ("echo 'hi there'", "quotes"),
            ("echo \"hi\"", "quotes"),
            ("echo `date`", "backticks"),
            ("echo hi > /tmp/x", "redirection"),
            ("rm /tmp/*.pem", "glob"),
            ("FOO=1 run", "variable assignment"),
        ] {
            let err = split(command).unwrap_err();
            assert!(err.contains(word), "{command}: {err}");
            assert!(err.contains("has none"), "{command}: {err}");
        }
    }

    #[test]
    fn an_empty_command_is_refused() {
        assert!(split("   ").unwrap_err().contains("empty"));
    }
}
