//! The commands the agent runs itself: what a template's `command` usually does to make the app
//! reload — `kill -HUP $(pidof nginx)`, `pkill -HUP nginx || true`, `killall -HUP app`,
//! `kill -HUP $(cat /run/app.pid)`, the same wrapped in `sh -c '…'`.
//!
//! The image has no shell and no procps: without this, every such line (the usual
//! `vault.hashicorp.com/agent-inject-command-NAME`) would fail to start. A line is parsed into a
//! small script — simple commands joined by `;`, `&&` and `||`, output redirected to
//! `/dev/null` or dropped, `$(…)` or backticks around `pidof`, `pgrep` or `cat FILE` — and run
//! in the agent: processes are found in `/proc` and signalled with kill(2). What the grammar
//! does not cover (pipes, variables, other programs) is [`Unsupported`], and the line goes to
//! `/bin/sh` as before. The processes of other containers are visible only when the Pod shares
//! its process namespace, and signalling them needs the same user (or `CAP_KILL`): failures
//! say which.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use regex::{Regex, RegexBuilder};

use crate::config::TemplateCommand;

/// Why a command is not one the agent runs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn unsupported<T>(reason: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported(reason.into()))
}

/// The programs the agent runs itself, for messages.
pub(crate) const PROGRAMS: &str =
    "kill, pkill, killall, pgrep, pidof, sleep, echo, true, false, exit";

/// A parsed command line: simple commands, each run or skipped by its connector.
#[derive(Debug)]
pub(crate) struct Script {
    steps: Vec<(Connector, Command)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connector {
    /// The first command, or after `;` or a line break.
    Always,
    /// After `&&`: only when the last status was 0.
    IfSuccess,
    /// After `||`: only when the last status was not 0.
    IfFailure,
}

#[derive(Debug)]
enum Command {
    /// `kill`: a signal (0 checks only) to the processes listed.
    Kill {
        signal: i32,
        targets: Vec<Target>,
    },
    /// `pkill` and `killall`: a signal to the processes selected; `quiet` hides "none found".
    SignalMatching {
        program: &'static str,
        signal: i32,
        select: Select,
    },
    /// `pgrep` and `pidof` on their own: 0 when a process is found.
    Find {
        program: &'static str,
        select: Select,
    },
    Sleep(Duration),
    Echo(String),
    Exit(Option<i32>),
    Status(i32),
}

/// A `kill` argument.
#[derive(Debug)]
enum Target {
    Pid(i32),
    /// `$(pidof …)` or `$(pgrep …)`: each process found (one word when quoted).
    Found {
        select: Select,
        quoted: bool,
    },
    /// `$(cat FILE)`: the process IDs the file lists.
    File {
        path: PathBuf,
        quoted: bool,
    },
}

/// Which processes a command means.
#[derive(Debug)]
enum Select {
    /// `pidof NAME…`: by program name; `single` keeps one; `omit` leaves some out.
    Names {
        names: Vec<String>,
        single: bool,
        omit: Vec<i32>,
    },
    /// `pgrep`/`pkill PATTERN`: an extended regular expression on the name (`full`: on the
    /// command line), the newest or oldest only when asked.
    Pattern {
        regex: Regex,
        full: bool,
        pick: Pick,
    },
    /// `killall NAME…`: the exact name.
    Exact { names: Vec<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    All,
    Newest,
    Oldest,
}

/// The script for `command`, or why the agent cannot run it itself.
pub(crate) fn parse(command: &TemplateCommand) -> Result<Script, Unsupported> {
    match command {
        TemplateCommand::Shell(line) => parse_line(line, 0),
        TemplateCommand::Argv(argv) => {
            let words: Vec<Word> = argv.iter().map(|w| Word::Literal(w.clone())).collect();
            script_of(vec![(Connector::Always, words)], 0)
        }
    }
}

/// Shells a wrapper `sh -c '…'` may name.
const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "busybox"];

fn parse_line(line: &str, depth: usize) -> Result<Script, Unsupported> {
    if depth > 3 {
        return unsupported("shells nested more than three deep");
    }
    let segments = split_line(line)?;
    script_of(segments, depth)
}

fn script_of(segments: Vec<(Connector, Vec<Word>)>, depth: usize) -> Result<Script, Unsupported> {
    // `sh -c 'LINE'` alone: the line itself.
    if let [(_, words)] = segments.as_slice()
        && let Some(script) = shell_wrapper(words)
    {
        return parse_line(script?, depth + 1);
    }
    let mut steps = Vec::new();
    for (connector, words) in segments {
        steps.push((connector, command(&words)?));
    }
    if steps.is_empty() {
        return unsupported("an empty command");
    }
    Ok(Script { steps })
}

/// The script of `sh -c SCRIPT`, when `words` are that.
fn shell_wrapper(words: &[Word]) -> Option<Result<&str, Unsupported>> {
    let mut words = words;
    if let [Word::Literal(env), rest @ ..] = words
        && base(env) == "env"
    {
        words = rest;
    }
    let [Word::Literal(program), rest @ ..] = words else {
        return None;
    };
    if !SHELLS.contains(&base(program)) {
        return None;
    }
    let rest = if base(program) == "busybox" {
        match rest {
            [Word::Literal(sh), rest @ ..] if sh == "sh" || sh == "ash" => rest,
            _ => return None,
        }
    } else {
        rest
    };
    Some(match rest {
        [
            Word::Literal(c),
            Word::Literal(script) | Word::Joined(script),
            ..,
        ] if c == "-c" => Ok(script.as_str()),
        _ => unsupported(format!(
            "{program} without `-c SCRIPT` (a script file, or options the agent does not read)"
        )),
    })
}

/// A path's last component: `/usr/bin/pkill` is `pkill`.
fn base(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

fn command(words: &[Word]) -> Result<Command, Unsupported> {
    let mut words = words;
    if let [Word::Literal(exec), rest @ ..] = words
        && exec == "exec"
        && !rest.is_empty()
    {
        words = rest;
    }
    let Some((Word::Literal(program), args)) = words.split_first() else {
        return unsupported("a command that starts with a substitution");
    };
    let literal = |what: &str| -> Result<Vec<&str>, Unsupported> {
        args.iter()
            .map(|w| match w {
                Word::Literal(s) => Ok(s.as_str()),
                Word::Subst { .. } | Word::Joined(_) => {
                    unsupported(format!("a substitution in {what}'s arguments"))
                }
            })
            .collect()
    };
    match base(program) {
        "kill" => kill(args),
        "pkill" => {
            let (signal, select) = pgrep("pkill", &literal("pkill")?, true)?;
            Ok(Command::SignalMatching {
                program: "pkill",
                signal,
                select,
            })
        }
        "pgrep" => Ok(Command::Find {
            program: "pgrep",
            select: pgrep("pgrep", &literal("pgrep")?, false)?.1,
        }),
        "pidof" => Ok(Command::Find {
            program: "pidof",
            select: pidof(&literal("pidof")?)?,
        }),
        "killall" => {
            let (signal, select) = killall(&literal("killall")?)?;
            Ok(Command::SignalMatching {
                program: "killall",
                signal,
                select,
            })
        }
        "sleep" => match literal("sleep")?.as_slice() {
            [seconds] => {
                let value = seconds.strip_suffix('s').unwrap_or(seconds);
                match value.parse::<f64>() {
                    Ok(s) if s.is_finite() && s >= 0.0 => {
                        Ok(Command::Sleep(Duration::from_secs_f64(s)))
                    }
                    _ => unsupported(format!("sleep {seconds:?}: not a number of seconds")),
                }
            }
            _ => unsupported("sleep with other than one argument"),
        },
        "echo" => Ok(Command::Echo(literal("echo")?.join(" "))),
        "true" | ":" => Ok(Command::Status(0)),
        "false" => Ok(Command::Status(1)),
        "exit" => match literal("exit")?.as_slice() {
            [] => Ok(Command::Exit(None)),
            [code] => code
                .parse::<u8>()
                .map(|c| Command::Exit(Some(i32::from(c))))
                .map_err(|_| Unsupported(format!("exit {code:?}: not a status 0-255"))),
            _ => unsupported("exit with more than one argument"),
        },
        other => unsupported(format!(
            "{other:?} is not one of the programs the agent runs itself ({PROGRAMS})"
        )),
    }
}

/// A signal by name (`HUP`, `SIGHUP`, `hup`) or number; 0 checks that a process exists.
fn signal_named(text: &str) -> Result<i32, Unsupported> {
    if let Ok(number) = text.parse::<i32>() {
        if number == 0 || Signal::try_from(number).is_ok() {
            return Ok(number);
        }
        return unsupported(format!("signal {number} is not one this system knows"));
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    format!("SIG{name}")
        .parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| {
            Unsupported(format!(
                "{text:?} is not a signal name (HUP, TERM, USR1, …)"
            ))
        })
}

/// A leading `-SIGNAL` (`-HUP`, `-9`), as kill, pkill and killall take it.
fn dash_signal(arg: &str) -> Option<i32> {
    arg.strip_prefix('-')
        .filter(|s| !s.is_empty() && !s.starts_with('-'))
        .and_then(|s| signal_named(s).ok())
}

fn kill(args: &[Word]) -> Result<Command, Unsupported> {
    let mut signal = Signal::SIGTERM as i32;
    let mut rest = args;
    let mut options = true;
    let mut signal_given = false;
    let mut targets = Vec::new();
    while let Some((word, tail)) = rest.split_first() {
        rest = tail;
        let arg = match word {
            Word::Subst { command, quoted } => {
                targets.push(substituted(command, *quoted)?);
                options = false;
                continue;
            }
            Word::Joined(_) => return unsupported(JOINED),
            Word::Literal(arg) => arg.as_str(),
        };
        if options && arg == "--" {
            options = false;
            continue;
        }
        if options && matches!(arg, "-s" | "-n" | "--signal") {
            match rest.split_first() {
                Some((Word::Literal(value), tail)) => {
                    signal = signal_named(value)?;
                    signal_given = true;
                    rest = tail;
                    continue;
                }
                _ => return unsupported(format!("kill {arg} without a signal")),
            }
        }
        // Only the first option may be `-SIGNAL`; after it, `-N` is a process group.
        if options && !signal_given && arg.starts_with('-') {
            match dash_signal(arg) {
                Some(s) => {
                    signal = s;
                    signal_given = true;
                    continue;
                }
                None => return unsupported(format!("kill option {arg:?}")),
            }
        }
        options = false;
        targets.push(Target::Pid(pid(arg)?));
    }
    Ok(Command::Kill { signal, targets })
}

/// A process ID as `kill` takes it here: positive (groups and "every process" are refused).
fn pid(text: &str) -> Result<i32, Unsupported> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        Ok(_) => unsupported(format!(
            "kill {text}: process groups and \"every process\" are not signalled by the agent"
        )),
        Err(_) => unsupported(format!("kill {text:?}: not a process ID")),
    }
}

const JOINED: &str = "a substitution joined to other text in one word";

/// What `$(…)` inside a `kill` line lists.
fn substituted(words: &[Word], quoted: bool) -> Result<Target, Unsupported> {
    let literal: Vec<&str> = words
        .iter()
        .map(|w| match w {
            Word::Literal(s) => Ok(s.as_str()),
            Word::Subst { .. } | Word::Joined(_) => {
                unsupported("a substitution inside a substitution")
            }
        })
        .collect::<Result<_, _>>()?;
    let Some((program, args)) = literal.split_first() else {
        return unsupported("an empty substitution");
    };
    match base(program) {
        "pidof" => Ok(Target::Found {
            select: pidof(args)?,
            quoted,
        }),
        "pgrep" => Ok(Target::Found {
            select: pgrep("pgrep", args, false)?.1,
            quoted,
        }),
        "cat" => match args {
            [file] if !file.starts_with('-') => Ok(Target::File {
                path: PathBuf::from(file),
                quoted,
            }),
            _ => unsupported("cat with other than one file in a substitution"),
        },
        other => unsupported(format!(
            "$({other} …): a substitution runs pidof, pgrep or cat FILE only"
        )),
    }
}

fn pidof(args: &[&str]) -> Result<Select, Unsupported> {
    let mut single = false;
    let mut omit = Vec::new();
    let mut names = Vec::new();
    let mut rest = args;
    while let Some((&arg, tail)) = rest.split_first() {
        rest = tail;
        match arg {
            "-s" => single = true,
            "-o" => match rest.split_first() {
                Some((value, tail)) => {
                    for p in value.split(',') {
                        omit.push(pid(p).map_err(|_| {
                            Unsupported(format!("pidof -o {value:?}: process IDs only"))
                        })?);
                    }
                    rest = tail;
                }
                None => return unsupported("pidof -o without a process ID"),
            },
            "-x" => {}
            _ if arg.starts_with('-') => return unsupported(format!("pidof option {arg:?}")),
            name => names.push(name.to_string()),
        }
    }
    if names.is_empty() {
        return unsupported("pidof without a program name");
    }
    Ok(Select::Names {
        names,
        single,
        omit,
    })
}

/// pgrep's and pkill's arguments: the signal (pkill) and the selection.
fn pgrep(program: &str, args: &[&str], signals: bool) -> Result<(i32, Select), Unsupported> {
    let mut signal = Signal::SIGTERM as i32;
    let (mut full, mut exact, mut ignore_case) = (false, false, false);
    let mut pick = Pick::All;
    let mut pattern = None;
    let mut rest = args;
    while let Some((&arg, tail)) = rest.split_first() {
        rest = tail;
        if pattern.is_some() {
            return unsupported(format!("{program} with more than one pattern"));
        }
        if signals && (arg == "--signal" || arg == "-s") {
            match rest.split_first() {
                Some((value, tail)) => {
                    signal = signal_named(value)?;
                    rest = tail;
                    continue;
                }
                None => return unsupported(format!("{program} {arg} without a signal")),
            }
        }
        // procps takes `-SIGNAL` wherever it stands.
        if signals && let Some(s) = dash_signal(arg) {
            signal = s;
            continue;
        }
        let long = |name: &str| arg == format!("--{name}");
        if long("full") {
            full = true;
        } else if long("exact") {
            exact = true;
        } else if long("ignore-case") {
            ignore_case = true;
        } else if long("newest") {
            pick = Pick::Newest;
        } else if long("oldest") {
            pick = Pick::Oldest;
        } else if let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) {
            for flag in flags.chars() {
                match flag {
                    'f' => full = true,
                    'x' => exact = true,
                    'i' => ignore_case = true,
                    'n' => pick = Pick::Newest,
                    'o' => pick = Pick::Oldest,
                    'e' if signals => {}
                    _ => return unsupported(format!("{program} option -{flag}")),
                }
            }
        } else {
            pattern = Some(arg);
        }
    }
    let Some(pattern) = pattern else {
        return unsupported(format!("{program} without a pattern"));
    };
    let source = if exact {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    let regex = RegexBuilder::new(&source)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| Unsupported(format!("{program} pattern {pattern:?}: {e}")))?;
    Ok((signal, Select::Pattern { regex, full, pick }))
}

fn killall(args: &[&str]) -> Result<(i32, Select), Unsupported> {
    let mut signal = Signal::SIGTERM as i32;
    let mut names = Vec::new();
    let mut rest = args;
    while let Some((&arg, tail)) = rest.split_first() {
        rest = tail;
        if names.is_empty() && matches!(arg, "-s" | "--signal") {
            match rest.split_first() {
                Some((value, tail)) => {
                    signal = signal_named(value)?;
                    rest = tail;
                    continue;
                }
                None => return unsupported(format!("killall {arg} without a signal")),
            }
        }
        if names.is_empty() && arg.starts_with('-') {
            match arg {
                // Quiet and exact change nothing here: the agent logs, and matches whole names.
                "-q" | "--quiet" | "-e" | "--exact" | "-v" | "--verbose" => continue,
                _ => match dash_signal(arg) {
                    Some(s) => {
                        signal = s;
                        continue;
                    }
                    None => return unsupported(format!("killall option {arg:?}")),
                },
            }
        }
        names.push(arg.to_string());
    }
    if names.is_empty() {
        return unsupported("killall without a program name");
    }
    Ok((signal, Select::Exact { names }))
}

// ---- The line's words ----

/// A word of the line: text, or one `$(…)`/backticks substitution making the whole word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Literal(String),
    Subst {
        command: Vec<Word>,
        quoted: bool,
    },
    /// Text and substitutions in one word, as written: only a `sh -c` script may be one (the
    /// substitutions are then the script's).
    Joined(String),
}

/// A piece of a word while it is read.
enum Piece {
    Text(String),
    /// The command, whether quoted, and its text as written (`$(…)`).
    Subst(Vec<Word>, bool, String),
}

/// Splits `line` into simple commands and their connectors; redirections to `/dev/null` or
/// between the output streams are dropped (the agent logs what matters).
fn split_line(line: &str) -> Result<Vec<(Connector, Vec<Word>)>, Unsupported> {
    let chars: Vec<char> = line.chars().collect();
    let mut segments = Vec::new();
    let mut connector = Connector::Always;
    let mut words: Vec<Word> = Vec::new();
    let mut i = 0;
    let mut end = |connector: &mut Connector,
                   next: Connector,
                   words: &mut Vec<Word>|
     -> Result<(), Unsupported> {
        if words.is_empty() {
            if next == Connector::Always && *connector == Connector::Always {
                return Ok(());
            }
            return unsupported("an operator with no command before it");
        }
        segments.push((*connector, std::mem::take(words)));
        *connector = next;
        Ok(())
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' => i += 1,
            '\n' | ';' => {
                end(&mut connector, Connector::Always, &mut words)?;
                i += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '|' if next == Some('|') => {
                end(&mut connector, Connector::IfFailure, &mut words)?;
                i += 2;
            }
            '&' if next == Some('&') => {
                end(&mut connector, Connector::IfSuccess, &mut words)?;
                i += 2;
            }
            '|' => return unsupported("a pipe `|`"),
            '&' if next == Some('>') => i = redirection(&chars, i + 2)?,
            '&' => return unsupported("a background job `&`"),
            '>' => i = redirection(&chars, i + 1)?,
            '1' | '2' if next == Some('>') && words_boundary(&chars, i) => {
                i = redirection(&chars, i + 2)?;
            }
            '<' => return unsupported("an input redirection `<`"),
            '(' | ')' => return unsupported("a subshell `( … )`"),
            '{' | '}' if words_boundary(&chars, i) => {
                return unsupported("a command group `{ … }`");
            }
            _ => {
                let (word, after) = read_word(&chars, i)?;
                words.push(word);
                i = after;
            }
        }
    }
    if words.is_empty() && connector != Connector::Always {
        return unsupported("an operator with no command after it");
    }
    end(&mut connector, Connector::Always, &mut words)?;
    Ok(segments)
}

/// Whether position `i` starts a word (start of line or after a blank or an operator).
fn words_boundary(chars: &[char], i: usize) -> bool {
    i == 0 || matches!(chars[i - 1], ' ' | '\t' | '\n' | ';' | '|' | '&')
}

/// Reads a redirection's target from `i` (after `>`, `>>`, `2>`, `&>`): `/dev/null`, `&1` or
/// `&2`. Returns the position after it.
fn redirection(chars: &[char], mut i: usize) -> Result<usize, Unsupported> {
    if chars.get(i) == Some(&'>') {
        i += 1;
    }
    if chars.get(i) == Some(&'&') {
        return match chars.get(i + 1) {
            Some('1' | '2') => Ok(i + 2),
            _ => unsupported("a redirection to a file descriptor other than 1 or 2"),
        };
    }
    while matches!(chars.get(i), Some(' ' | '\t')) {
        i += 1;
    }
    let (target, after) = read_word(chars, i)?;
    match target {
        Word::Literal(path) if path == "/dev/null" => Ok(after),
        _ => unsupported("a redirection to a file (only /dev/null is dropped)"),
    }
}

/// Reads one word from `i`: quotes, escapes and substitutions; returns it and the position
/// after it.
fn read_word(chars: &[char], mut i: usize) -> Result<(Word, usize), Unsupported> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(text)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | ';' | '|' | '&' | '<' | '>' | '(' | ')' => break,
            '\'' => {
                let close = find(chars, i + 1, '\'')
                    .ok_or_else(|| Unsupported("an unclosed quote '".into()))?;
                text.extend(&chars[i + 1..close]);
                // `''` is an empty word of its own.
                if close == i + 1 {
                    pieces.push(Piece::Text(String::new()));
                }
                i = close + 1;
            }
            '"' => {
                i += 1;
                let start_pieces = pieces.len();
                let mut any = false;
                loop {
                    match chars.get(i) {
                        None => return unsupported("an unclosed quote \""),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('$' | '`' | '"' | '\\')) => {
                            text.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('$') if chars.get(i + 1) == Some(&'(') => {
                            flush(&mut text, &mut pieces);
                            let (inner, written, after) = substitution(chars, i + 2, ')')?;
                            pieces.push(Piece::Subst(inner, true, written));
                            i = after;
                        }
                        Some('`') => {
                            flush(&mut text, &mut pieces);
                            let (inner, written, after) = substitution(chars, i + 1, '`')?;
                            pieces.push(Piece::Subst(inner, true, written));
                            i = after;
                        }
                        Some('$') if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) => {
                            return unsupported("a variable `$`");
                        }
                        Some(&other) => {
                            text.push(other);
                            i += 1;
                        }
                    }
                    any = true;
                }
                if !any && pieces.len() == start_pieces && text.is_empty() {
                    pieces.push(Piece::Text(String::new()));
                }
            }
            '\\' => match chars.get(i + 1) {
                Some('\n') => i += 2,
                Some(&escaped) => {
                    text.push(escaped);
                    i += 2;
                }
                None => return unsupported("a backslash at the end of the line"),
            },
            '$' if chars.get(i + 1) == Some(&'(') => {
                flush(&mut text, &mut pieces);
                let (inner, written, after) = substitution(chars, i + 2, ')')?;
                pieces.push(Piece::Subst(inner, false, written));
                i = after;
            }
            '`' => {
                flush(&mut text, &mut pieces);
                let (inner, written, after) = substitution(chars, i + 1, '`')?;
                pieces.push(Piece::Subst(inner, false, written));
                i = after;
            }
            '$' => return unsupported("a variable `$`"),
            '*' | '?' | '[' => return unsupported(format!("a glob `{c}` (quote it)")),
            '~' if text.is_empty() && pieces.is_empty() => {
                return unsupported("`~` (a home directory)");
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    flush(&mut text, &mut pieces);
    let word = match pieces.len() {
        0 => return unsupported("an empty word"),
        1 => match pieces.pop() {
            Some(Piece::Text(text)) => Word::Literal(text),
            Some(Piece::Subst(command, quoted, _)) => Word::Subst { command, quoted },
            None => unreachable!("one piece"),
        },
        _ => {
            let mut joined = String::new();
            let mut substituted = false;
            for piece in pieces {
                match piece {
                    Piece::Text(text) => joined.push_str(&text),
                    Piece::Subst(_, _, written) => {
                        substituted = true;
                        joined.push_str(&written);
                    }
                }
            }
            if substituted {
                Word::Joined(joined)
            } else {
                Word::Literal(joined)
            }
        }
    };
    Ok((word, i))
}

fn find(chars: &[char], from: usize, wanted: char) -> Option<usize> {
    (from..chars.len()).find(|&j| chars[j] == wanted)
}

/// The simple command inside `$(…)` (ending at `close` = `)`) or backticks (`close` = `` ` ``)
/// from `i`, and the position after it.
fn substitution(
    chars: &[char],
    i: usize,
    close: char,
) -> Result<(Vec<Word>, String, usize), Unsupported> {
    let mut j = i;
    let mut quote = None;
    while j < chars.len() {
        let c = chars[j];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == close => break,
            None if c == '(' || c == '`' => return unsupported("a nested substitution"),
            None => {}
        }
        j += 1;
    }
    if j >= chars.len() {
        return unsupported("an unclosed substitution");
    }
    let inner: String = chars[i..j].iter().collect();
    let mut segments = split_line(&inner)?;
    let written = format!("$({inner})");
    match segments.as_mut_slice() {
        [(_, words)] => Ok((std::mem::take(words), written, j + 1)),
        _ => unsupported("a substitution of more than one simple command"),
    }
}

// ---- Running ----

/// One process of `/proc`.
#[derive(Debug, Clone)]
struct Process {
    pid: i32,
    /// The kernel's name for it (`comm`, at most 15 bytes).
    name: String,
    /// Its arguments (empty for a zombie).
    args: Vec<String>,
    /// Its start, in clock ticks after boot.
    start: u64,
}

impl Process {
    fn command_line(&self) -> String {
        if self.args.is_empty() {
            format!("[{}]", self.name)
        } else {
            self.args.join(" ")
        }
    }

    /// Whether `pidof NAME` finds it: the name, its first argument's or its program's last
    /// path component (a long name as the kernel truncated it).
    fn is_named(&self, name: &str) -> bool {
        self.name == name
            || (name.len() > 15 && self.name.len() == 15 && name.starts_with(&self.name))
            || self.args.first().is_some_and(|a| base(a) == name)
    }
}

/// The processes this process can see, but itself.
fn processes(proc_root: &Path) -> Vec<Process> {
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut found: Vec<Process> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            if pid == own {
                return None;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let name = stat.get(open + 1..close)?.to_string();
            // After the name: state (field 3) … starttime (field 22).
            let start = stat
                .get(close + 2..)?
                .split(' ')
                .nth(19)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some(Process {
                pid,
                name,
                args,
                start,
            })
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

impl Select {
    fn matches(&self, all: &[Process]) -> Vec<Process> {
        match self {
            Select::Names {
                names,
                single,
                omit,
            } => {
                // pidof lists the newest first.
                let mut found: Vec<Process> = all
                    .iter()
                    .filter(|p| !omit.contains(&p.pid) && names.iter().any(|n| p.is_named(n)))
                    .cloned()
                    .collect();
                found.reverse();
                if *single {
                    found.truncate(1);
                }
                found
            }
            Select::Pattern { regex, full, pick } => {
                let mut found: Vec<Process> = all
                    .iter()
                    .filter(|p| {
                        if *full && !p.args.is_empty() {
                            regex.is_match(&p.args.join(" "))
                        } else {
                            regex.is_match(&p.name)
                        }
                    })
                    .cloned()
                    .collect();
                let key = |p: &Process| (p.start, p.pid);
                match pick {
                    Pick::All => {}
                    Pick::Newest => {
                        found = found.into_iter().max_by_key(key).into_iter().collect();
                    }
                    Pick::Oldest => {
                        found = found.into_iter().min_by_key(key).into_iter().collect();
                    }
                }
                found
            }
            Select::Exact { names } => all
                .iter()
                .filter(|p| {
                    names.iter().any(|n| {
                        if n.len() > 15 || n.contains('/') {
                            p.args.first().is_some_and(|a| a == n || base(a) == n)
                        } else {
                            p.name == *n
                        }
                    })
                })
                .cloned()
                .collect(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Select::Names { names, .. } | Select::Exact { names } => names.join(" "),
            Select::Pattern { regex, full, .. } => {
                format!(
                    "{}pattern {:?}",
                    if *full { "command-line " } else { "" },
                    regex.as_str()
                )
            }
        }
    }
}

/// What running a script did: its status and one line per step worth telling.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub status: i32,
    pub report: String,
}

impl Script {
    /// Runs the script; the processes are those of `/proc`.
    pub(crate) async fn run(&self) -> Outcome {
        self.run_in(Path::new("/proc")).await
    }

    async fn run_in(&self, proc_root: &Path) -> Outcome {
        let mut out = Outcome::default();
        for (connector, command) in &self.steps {
            let run = match connector {
                Connector::Always => true,
                Connector::IfSuccess => out.status == 0,
                Connector::IfFailure => out.status != 0,
            };
            if !run {
                continue;
            }
            match command {
                Command::Exit(code) => {
                    out.status = code.unwrap_or(out.status);
                    return out;
                }
                Command::Status(code) => out.status = *code,
                Command::Sleep(duration) => {
                    tokio::time::sleep(*duration).await;
                    out.status = 0;
                }
                Command::Echo(text) => {
                    let _ = writeln!(out.report, "echo: {text}");
                    out.status = 0;
                }
                Command::Find { program, select } => {
                    let found = select.matches(&processes(proc_root));
                    if found.is_empty() {
                        let _ = writeln!(
                            out.report,
                            "{program}: no process matches {}{}",
                            select.describe(),
                            visibility_hint(proc_root)
                        );
                        out.status = 1;
                    } else {
                        out.status = 0;
                    }
                }
                Command::SignalMatching {
                    program,
                    signal,
                    select,
                } => {
                    let found = select.matches(&processes(proc_root));
                    if found.is_empty() {
                        let _ = writeln!(
                            out.report,
                            "{program}: no process matches {}{}",
                            select.describe(),
                            visibility_hint(proc_root)
                        );
                        out.status = 1;
                    } else {
                        let sent = signal_all(*signal, &found, &mut out.report, program);
                        out.status = if sent > 0 { 0 } else { 1 };
                    }
                }
                Command::Kill { signal, targets } => {
                    out.status = kill_targets(*signal, targets, proc_root, &mut out.report);
                }
            }
        }
        out
    }
}

/// A hint for a search that found nothing: only the agent's own processes are visible unless
/// the Pod shares its process namespace.
fn visibility_hint(proc_root: &Path) -> &'static str {
    let others = processes(proc_root);
    if others.iter().all(|p| p.pid == 1 || p.name == "pki-sidecar") {
        " (only the agent's own processes are visible: share the Pod's process namespace, \
         shareProcessNamespace: true or vault.hashicorp.com/agent-share-process-namespace)"
    } else {
        ""
    }
}

fn kill_targets(signal: i32, targets: &[Target], proc_root: &Path, report: &mut String) -> i32 {
    let all = processes(proc_root);
    let mut pids: Vec<(i32, String)> = Vec::new();
    let mut status = 0;
    for target in targets {
        match target {
            Target::Pid(pid) => {
                let name = all
                    .iter()
                    .find(|p| p.pid == *pid)
                    .map_or_else(|| format!("process {pid}"), Process::command_line);
                pids.push((*pid, name));
            }
            Target::Found { select, quoted } => {
                let found = select.matches(&all);
                if *quoted && found.len() > 1 {
                    let _ = writeln!(
                        report,
                        "kill: \"{}\" is not a process ID ({} matches {}; quoted, it is one word)",
                        found
                            .iter()
                            .map(|p| p.pid.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        found.len(),
                        select.describe()
                    );
                    status = 1;
                    continue;
                }
                if found.is_empty() {
                    let _ = writeln!(
                        report,
                        "kill: no process matches {}{}",
                        select.describe(),
                        visibility_hint(proc_root)
                    );
                }
                pids.extend(found.iter().map(|p| (p.pid, p.command_line())));
            }
            Target::File { path, quoted } => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let words: Vec<&str> = text.split_whitespace().collect();
                    if *quoted && words.len() > 1 {
                        let _ =
                            writeln!(report, "kill: {} lists more than one word", path.display());
                        status = 1;
                        continue;
                    }
                    for word in words {
                        match word.parse::<i32>() {
                            Ok(pid) if pid > 0 => {
                                let name = all.iter().find(|p| p.pid == pid).map_or_else(
                                    || format!("process {pid}"),
                                    Process::command_line,
                                );
                                pids.push((pid, name));
                            }
                            _ => {
                                let _ = writeln!(
                                    report,
                                    "kill: {:?} in {} is not a process ID",
                                    word,
                                    path.display()
                                );
                                status = 1;
                            }
                        }
                    }
                }
                Err(err) => {
                    let _ = writeln!(report, "cat: {}: {err}", path.display());
                    status = 1;
                }
            },
        }
    }
    if pids.is_empty() {
        let _ = writeln!(report, "kill: no process to signal");
        return 1;
    }
    let processes: Vec<Process> = pids
        .into_iter()
        .map(|(pid, name)| Process {
            pid,
            name,
            args: Vec::new(),
            start: 0,
        })
        .collect();
    if signal_all(signal, &processes, report, "kill") < processes.len() {
        status = 1;
    }
    status
}

/// Sends `signal` to each process; returns how many took it.
fn signal_all(signal: i32, found: &[Process], report: &mut String, program: &str) -> usize {
    let named = signal_name(signal);
    let mut sent = 0;
    for process in found {
        let label = if process.args.is_empty() {
            process.name.clone()
        } else {
            process.command_line()
        };
        let result = if signal == 0 {
            signal::kill(Pid::from_raw(process.pid), None)
        } else {
            match Signal::try_from(signal) {
                Ok(s) => signal::kill(Pid::from_raw(process.pid), s),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => {
                sent += 1;
                let _ = writeln!(
                    report,
                    "{program}: sent {named} to process {} ({label})",
                    process.pid
                );
            }
            Err(Errno::EPERM) => {
                let _ = writeln!(
                    report,
                    "{program}: not permitted to signal process {} ({label}): it runs as \
                     another user; run the agent as the app's user \
                     (vault.hashicorp.com/agent-run-as-same-user)",
                    process.pid
                );
            }
            Err(Errno::ESRCH) => {
                let _ = writeln!(report, "{program}: no process {}", process.pid);
            }
            Err(err) => {
                let _ = writeln!(
                    report,
                    "{program}: cannot signal process {} ({label}): {err}",
                    process.pid
                );
            }
        }
    }
    sent
}

fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Result<Script, Unsupported> {
        parse(&TemplateCommand::Shell(text.to_string()))
    }

    fn argv(words: &[&str]) -> Result<Script, Unsupported> {
        parse(&TemplateCommand::Argv(
            words.iter().map(|w| w.to_string()).collect(),
        ))
    }

    #[test]
    fn the_usual_reload_lines_are_run_by_the_agent() {
        for text in [
            "kill -HUP $(pidof nginx)",
            "kill -s HUP $(pidof nginx)",
            "kill -SIGHUP `pidof nginx`",
            "kill -1 \"$(cat /var/run/nginx.pid)\"",
            "kill -HUP 1",
            "/bin/kill -TERM $(pgrep -f 'java .*app.jar')",
            "pkill -HUP nginx",
            "pkill -HUP nginx || true",
            "pkill --signal SIGUSR1 -f 'gunicorn: master' 2>/dev/null || :",
            "/bin/sh -c 'pkill -HUP nginx || true'",
            "sh -c \"kill -HUP $(pidof nginx)\"",
            "killall podinfo",
            "killall -q -HUP nginx",
            "killall -s USR2 app",
            "sleep 2 && kill -HUP $(pidof app) >/dev/null 2>&1",
            "echo reloading; pkill -x -HUP nginx; exit 0",
            "kill -TERM $(pgrep fake-service)\n",
            "exec kill -HUP $(pidof app)",
            "pgrep -x nginx && pkill -x -HUP nginx",
        ] {
            line(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
        argv(&["pkill", "-HUP", "nginx"]).unwrap();
        argv(&["/bin/sh", "-c", "kill -HUP $(pidof nginx)"]).unwrap();
    }

    #[test]
    fn what_needs_a_real_shell_is_named() {
        for (text, reason) in [
            (
                "curl -X POST http://localhost:8080/reload",
                "\"curl\" is not one",
            ),
            ("kill -HUP $(pidof nginx | head -1)", "a pipe"),
            ("kill -HUP $PID", "a variable"),
            ("kill -HUP $(ps aux)", "pidof, pgrep or cat"),
            ("kill -9 -1", "process groups"),
            ("kill -HUP 0", "process groups"),
            ("pkill -u app nginx", "option -u"),
            ("pkill -HUP a b", "more than one pattern"),
            ("kill -HUP $(pidof x) > /tmp/log", "only /dev/null"),
            ("(kill -HUP 1)", "subshell"),
            ("kill -HUP 1 &", "background"),
            ("kill -HUP $(cat $(echo f))", "nested"),
            ("pkill -HUP '('", "pattern"),
            ("kill -FOO 1", "kill option"),
            ("sh script.sh", "without `-c SCRIPT`"),
            ("kill -HUP 1 &&", "no command after"),
            ("|| true", "no command before"),
            ("rm -f /tmp/app.lock", "not one"),
        ] {
            let err = line(text).expect_err(text);
            assert!(err.0.contains(reason), "{text:?}: {err}");
        }
        argv(&["/usr/local/bin/reload-app"]).expect_err("another program");
    }

    #[test]
    fn signals_are_named_as_kill_names_them() {
        assert_eq!(signal_named("HUP"), Ok(1));
        assert_eq!(signal_named("sighup"), Ok(1));
        assert_eq!(signal_named("SIGUSR2"), Ok(12));
        assert_eq!(signal_named("9"), Ok(9));
        assert_eq!(signal_named("0"), Ok(0));
        assert!(signal_named("NOPE").is_err());
        assert_eq!(dash_signal("-HUP"), Some(1));
        assert_eq!(dash_signal("-f"), None);
    }

    /// A child process named `name` (a link to `sleep`, so the kernel names it so).
    struct Child {
        _dir: tempfile::TempDir,
        child: std::process::Child,
    }

    fn named_child(name: &str) -> Child {
        let dir = tempfile::tempdir().expect("tempdir");
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep");
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(sleep, &link).expect("symlink");
        // Through `env --default-signal`, which execs it: under `nohup` (SIGHUP ignored, and
        // inherited so) SIGHUP must still end it.
        let child = std::process::Command::new("env")
            .arg("--default-signal")
            .arg(&link)
            .arg("300")
            .spawn()
            .expect("spawn");
        // Until the kernel shows the new name (after exec).
        let start = std::time::Instant::now();
        while !processes(Path::new("/proc"))
            .iter()
            .any(|p| p.pid == child.id() as i32 && p.name == name)
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{name} never ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Child { _dir: dir, child }
    }

    impl Child {
        /// The signal that ended it, within 10 s.
        fn ended_by(mut self) -> Option<i32> {
            use std::os::unix::process::ExitStatusExt;
            let start = std::time::Instant::now();
            loop {
                if let Some(status) = self.child.try_wait().expect("wait") {
                    return status.signal();
                }
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn unique(prefix: &str) -> String {
        format!("{prefix}{}", fastrand::u32(10_000..99_999))
    }

    #[tokio::test]
    async fn each_form_signals_the_process_it_names_and_only_it() {
        for template in [
            "kill -HUP $(pidof NAME)",
            "/bin/sh -c 'pkill -HUP NAME || true'",
            "killall -HUP NAME",
            "pkill -x -HUP NAME",
            "kill -s HUP `pgrep -n NAME`",
        ] {
            let name = unique("fakeapp");
            let other = named_child(&unique("bystander"));
            let target = named_child(&name);
            let script = line(&template.replace("NAME", &name)).expect(template);
            let outcome = script.run().await;
            assert_eq!(outcome.status, 0, "{template}: {}", outcome.report);
            assert!(
                outcome.report.contains("sent SIGHUP to process"),
                "{template}: {}",
                outcome.report
            );
            assert_eq!(target.ended_by(), Some(libc_sighup()), "{template}");
            // The bystander is still there: no wider match.
            assert!(
                other.child.id() > 0 && Path::new(&format!("/proc/{}", other.child.id())).exists()
            );
            let mut other = other;
            let _ = other.child.kill();
            let _ = other.child.wait();
        }
    }

    fn libc_sighup() -> i32 {
        Signal::SIGHUP as i32
    }

    #[tokio::test]
    async fn a_pid_file_is_read_and_nothing_found_fails_unless_guarded() {
        let name = unique("pidfile");
        let target = named_child(&name);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.pid");
        std::fs::write(&file, format!("{}\n", target.child.id())).expect("write");
        let outcome = line(&format!("kill -USR1 $(cat {})", file.display()))
            .unwrap()
            .run()
            .await;
        assert_eq!(outcome.status, 0, "{}", outcome.report);
        assert_eq!(target.ended_by(), Some(Signal::SIGUSR1 as i32));

        let missing = unique("absent");
        let failed = line(&format!("pkill -HUP {missing}")).unwrap().run().await;
        assert_eq!(failed.status, 1);
        assert!(
            failed.report.contains("no process matches"),
            "{}",
            failed.report
        );
        let failed = line(&format!("kill -HUP $(pidof {missing})"))
            .unwrap()
            .run()
            .await;
        assert_eq!(failed.status, 1, "{}", failed.report);
        let guarded = line(&format!("pkill -HUP {missing} || true"))
            .unwrap()
            .run()
            .await;
        assert_eq!(guarded.status, 0);
        let exited = line("false; exit 3").unwrap().run().await;
        assert_eq!(exited.status, 3);
        let chained = line(&format!("pgrep {missing} && exit 4; exit"))
            .unwrap()
            .run()
            .await;
        assert_eq!(chained.status, 1, "the status of the skipped chain stays");
    }

    #[test]
    fn words_are_read_as_a_shell_reads_them() {
        let words = |text: &str| split_line(text).unwrap().remove(0).1;
        assert_eq!(
            words(r#"pkill -f 'a b' "c d" e\ f"#),
            vec![
                Word::Literal("pkill".into()),
                Word::Literal("-f".into()),
                Word::Literal("a b".into()),
                Word::Literal("c d".into()),
                Word::Literal("e f".into()),
            ]
        );
        assert_eq!(
            words("kill \"$(pidof x)\""),
            vec![
                Word::Literal("kill".into()),
                Word::Subst {
                    command: vec![Word::Literal("pidof".into()), Word::Literal("x".into())],
                    quoted: true
                },
            ]
        );
        let segments = split_line("a; b && c || d\ne # f").unwrap();
        let connectors: Vec<Connector> = segments.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            connectors,
            vec![
                Connector::Always,
                Connector::Always,
                Connector::IfSuccess,
                Connector::IfFailure,
                Connector::Always
            ]
        );
    }
}
