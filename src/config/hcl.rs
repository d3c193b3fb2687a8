//! The HCL provider: turns one Vault-Agent-style HCL file into a figment dictionary.
//!
//! Vault reads its agent file with HCL1; the Rust HCL crates speak HCL2. The two agree on
//! everything a Vault Agent file uses except for a few details, which this module bridges so the
//! rest of the config code sees plain values:
//!
//! - integer literals with a leading zero are octal, as in HCL1 (`perms = 0644` is 0o644);
//! - `method "kubernetes" { ... }` is the same as `method { type = "kubernetes" ... }`;
//! - repeatable blocks (`template`, `sink`) always become lists, one block or many;
//! - a block given twice where only one is allowed is an error; a key set twice in one block
//!   counts once, with its last value, as in HCL1 (with a warning);
//! - HCL2 expressions (variables, functions, `${...}` interpolation) have no HCL1 meaning in a
//!   Vault file and are refused rather than evaluated;
//! - HCL1's quoted keys (`"vault" = { ... }`) are read as names, columns kept;
//! - each top-level Vault Agent stanza this program refuses (`exec`...) is recorded with its
//!   place, one error per occurrence, and left out of the data.
//!
//! It parses with `hcl-edit`, which keeps byte spans and the raw text of number literals, so
//! every error it reports names the file, line and column. It must not know what the keys mean
//! beyond the structural rules above: typing and checking belong to `config::raw` and
//! `config::resolve`.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Empty, Map, Num, Tag, Value};
use figment::{Metadata, Profile, Provider, Source};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{Block, Body, Structure};
use hcl_edit::template::Element;

use super::error::{ConfigError, ConfigWarning, origin_name};

/// Blocks that may appear more than once at the same place; they always become lists.
const REPEATABLE_BLOCKS: &[&str] = &["template", "sink", "listener"];
/// Blocks inside a `template` that may be repeated, the last one counting (consul-template
/// flattens them that way, and Vault Agent keeps the last `wait` and `exec`).
const LAST_WINS_IN_TEMPLATE: &[&str] = &["wait", "exec"];
/// Top-level blocks whose single label is a name, each becoming one entry of a map under the
/// block's key (`env_template "DB_PASSWORD" { }`: `env_template.DB_PASSWORD`), as HCL1 reads them.
const NAMED_BLOCKS: &[&str] = &["env_template"];
/// Blocks whose single label names their `type`, as Vault Agent reads them.
const TYPED_BLOCKS: &[&str] = &["method", "sink", "listener"];
/// Whether the key at `path` (its name last) is a file mode: a template's `perms`, a sink's
/// `config.mode`. The same names elsewhere (in a block Vault Agent ignores, such as a
/// misspelt `sinks`) are not checked: the block is dropped with a warning, as Vault Agent
/// drops it.
fn is_mode(path: &[String]) -> bool {
    let is = |part: &String, block: &str| {
        part == block
            || part
                .strip_prefix(block)
                .is_some_and(|rest| rest.starts_with('['))
    };
    match path {
        [template, perms] => is(template, "template") && perms == "perms",
        [auto_auth, sink, config, mode] => {
            auto_auth == "auto_auth" && is(sink, "sink") && config == "config" && mode == "mode"
        }
        _ => false,
    }
}

/// How long parsing one file may take. Real configs parse in well under a millisecond; some
/// malformed input makes hcl-edit 0.10 take time exponential in its length (fuzzing found 18
/// lines of it taking 1 s, 22 taking 110 s).
pub(crate) const PARSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// One parsed HCL file, ready to be merged by figment.
#[derive(Debug)]
pub(crate) struct HclFile {
    path: PathBuf,
    data: Dict,
    /// What the parse noticed that changes nothing but deserves a word (taken once).
    warnings: Vec<ConfigWarning>,
    /// `line:column` of each key, by its path (`vault.address`, `template[0].wait`), for the
    /// messages about it.
    places: Map<String, (usize, usize)>,
}

impl Clone for HclFile {
    fn clone(&self) -> Self {
        // The warnings are reported once, from the file as loaded; copies (figment's
        // providers) carry only the data.
        HclFile {
            path: self.path.clone(),
            data: self.data.clone(),
            warnings: Vec::new(),
            places: self.places.clone(),
        }
    }
}

/// The HCL files of one load being parsed on their own thread ([`HclFile::parse_in_background`]).
pub(crate) struct Parsing {
    results: std::sync::mpsc::Receiver<Result<HclFile, ConfigError>>,
    deadline: std::time::Duration,
}

impl Parsing {
    /// The next file's result, `path` being that file; the deadline starts now. On timeout the
    /// parsing thread is left to spin: every caller exits (78) on the error.
    pub(crate) fn next(&self, path: &Path) -> Result<HclFile, ConfigError> {
        self.results
            .recv_timeout(self.deadline)
            .unwrap_or_else(|_| {
                Err(ConfigError::ParseTimeout {
                    file: path.display().to_string(),
                    seconds: self.deadline.as_secs(),
                })
            })
    }
}

impl HclFile {
    /// Starts parsing `texts` (each file's path and contents) on one thread of their own, in
    /// order: [`Parsing::next`] gives each file's result under `deadline`
    /// ([`PARSE_DEADLINE`]), since a malformed file must end in an error, never in a hang. One
    /// thread for every file of a load, not one each: a thread's start is a measurable part of
    /// the agent's time to its first certificate.
    pub(crate) fn parse_in_background(
        texts: Vec<(PathBuf, String)>,
        deadline: std::time::Duration,
    ) -> std::io::Result<Parsing> {
        let (sender, results) = std::sync::mpsc::channel();
        if !texts.is_empty() {
            std::thread::Builder::new()
                .name("hcl-parse".into())
                .spawn(move || {
                    for (path, text) in texts {
                        // The receiver gone (an earlier file failed): nothing more to parse.
                        if sender.send(HclFile::parse(&path, &text)).is_err() {
                            return;
                        }
                    }
                })?;
        }
        Ok(Parsing { results, deadline })
    }

    /// Converts HCL `text` that was read from `path`.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<HclFile, ConfigError> {
        let file = path.display().to_string();
        let unquoted = unquote_keys(text);
        let syntax = |err: hcl_edit::parser::Error| {
            let location = err.location();
            ConfigError::Syntax {
                file: file.clone(),
                line: location.line(),
                column: location.column(),
                message: syntax_message(err.message()),
            }
        };
        // HCL2 first (with HCL1's `$${` and `%%{` kept as text: [`Hcl1Bridge::escapes`]);
        // only a file HCL2 refuses is read again with HCL1's looser rules ([`hcl1_bodies`]),
        // so that a file which parses is never read differently. The error, when both fail,
        // is HCL2's on the file as written.
        let escaped = Hcl1Bridge::escapes(&unquoted);
        let (body, bridged, inserted) = match hcl_edit::parser::parse_body(&escaped.text) {
            Ok(body) if escaped.inserted.is_empty() => (body, None, Vec::new()),
            Ok(body) => (body, Some(escaped.text), escaped.inserted),
            Err(escaped_err) => {
                let in_place = hcl1_bodies(&unquoted).unwrap_or_else(|| unquoted.clone());
                let bridged = Hcl1Bridge::rewrite(&in_place);
                match hcl_edit::parser::parse_body(&bridged.text) {
                    Ok(body) => (body, Some(bridged.text), bridged.inserted),
                    Err(_) => {
                        let err = match escaped.inserted.is_empty() {
                            true => escaped_err,
                            false => hcl_edit::parser::parse_body(&unquoted)
                                .err()
                                .unwrap_or(escaped_err),
                        };
                        return Err(syntax(err));
                    }
                }
            }
        };
        let converter = Converter {
            file: &file,
            text: bridged.as_deref().unwrap_or(&unquoted),
            original: &unquoted,
            inserted: &inserted,
            warnings: std::cell::RefCell::new(Vec::new()),
            places: std::cell::RefCell::new(Map::new()),
        };
        let data = converter.body(&body, &mut Vec::new())?;
        let data = super::shape::normalize(&file, data)?;
        Ok(HclFile {
            path: path.to_path_buf(),
            data,
            warnings: converter.warnings.into_inner(),
            places: converter.places.into_inner(),
        })
    }

    /// A file whose data was read some other way (JSON), for the same later checks, with the
    /// places of its keys.
    pub(crate) fn from_parts(
        path: &Path,
        data: Dict,
        places: Map<String, (usize, usize)>,
    ) -> HclFile {
        HclFile {
            path: path.to_path_buf(),
            data,
            warnings: Vec::new(),
            places,
        }
    }

    /// `(line, column)` of the key at `path`, or of its nearest parent written in the file
    /// (a required key that is missing: the block that lacks it).
    pub(crate) fn place_near(&self, path: &str) -> Option<(usize, usize)> {
        let mut candidate = path.to_string();
        loop {
            // A block written once as an object is a list of one after shaping: `sink[0]`
            // may have been recorded as `sink`.
            if let Some(place) = self
                .places
                .get(&candidate)
                .or_else(|| self.places.get(&candidate.replace("[0]", "")))
            {
                return Some(*place);
            }
            candidate.truncate(candidate.rfind(['.', '['])?);
        }
    }

    /// The file this was read from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The data as read.
    pub(crate) fn data(&self) -> &Dict {
        &self.data
    }

    /// The parse's warnings (taken once).
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// The data, for removing keys Vault Agent ignores before it is typed.
    pub(crate) fn data_mut(&mut self) -> &mut Dict {
        &mut self.data
    }
}

impl Provider for HclFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(origin_name(&self.path), Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

/// HCL1 lets a key be quoted where HCL2 wants a name: `"vault" = { "address" = "..." }`, as
/// the Vault Agent Injector's examples write it. A quoted name at the start of a line, followed
/// by `=` or `{`, has its quotes replaced by spaces, so every byte keeps its line and column
/// for errors. Heredoc bodies (template text) are left alone.
fn unquote_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut heredoc_end: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(end) = &heredoc_end {
            if line.trim() == end {
                heredoc_end = None;
            }
            out.push_str(line);
            continue;
        }
        out.push_str(&unquote_line(line));
        heredoc_end = heredoc_start(line);
    }
    out
}

/// `"name" =` or `"name" {` at the start of `line`, unquoted; anything else as it is.
fn unquote_line(line: &str) -> String {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    let Some(after_quote) = rest.strip_prefix('"') else {
        return line.to_string();
    };
    let Some(close) = after_quote.find('"') else {
        return line.to_string();
    };
    let name = &after_quote[..close];
    let is_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let tail = &after_quote[close + 1..];
    let next = tail.trim_start().chars().next();
    if !is_name || !matches!(next, Some('=' | '{')) || tail.trim_start().starts_with("==") {
        return line.to_string();
    }
    format!("{} {name} {tail}", &line[..indent])
}

/// The end marker of a heredoc that `line` opens (`<<EOT`, `<<-EOT`), if any.
fn heredoc_start(line: &str) -> Option<String> {
    let at = line.rfind("<<")?;
    let marker = line[at + 2..].trim_start_matches('-').trim_end();
    let is_marker = !marker.is_empty()
        && marker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    is_marker.then(|| marker.to_string())
}

/// HCL1's bodies where HCL2 wants something stricter, rewritten in place (every byte keeps
/// its line and column), or `None` when there is nothing to rewrite:
///
/// - `name = {` ending a line opens a block, `name {`: HCL1 lets an object hold blocks
///   (`"auto_auth" = { sink "file" { ... } }`) and lets it be given again (two
///   `"template" = { ... }`), where an HCL2 object may hold neither and an attribute may not be
///   repeated;
/// - a comma ending an attribute's line is dropped: HCL1 separates a body's items with commas
///   or newlines, an HCL2 block body with newlines only (`left_delimiter = "{{",`).
///
/// Heredoc bodies (template text) are left alone.
fn hcl1_bodies(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut heredoc_end: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(end) = &heredoc_end {
            if line.trim() == end {
                heredoc_end = None;
            }
            out.push_str(line);
            continue;
        }
        heredoc_end = heredoc_start(line);
        let mut bytes = line.as_bytes().to_vec();
        if let Some(at) = hcl1_line_rewrite(line) {
            bytes[at] = b' ';
            changed = true;
        }
        // Only a one-byte ASCII character is replaced by a space: still UTF-8.
        out.push_str(&String::from_utf8(bytes).unwrap_or_else(|_| line.to_string()));
    }
    changed.then_some(out)
}

/// The byte of `line` that [`hcl1_bodies`] replaces by a space: the `=` of `name = {` when the
/// `{` ends the line, or the comma ending `name = value,`.
fn hcl1_line_rewrite(line: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    if name_len == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let after_name = &rest[name_len..];
    let equals = indent + name_len + (after_name.len() - after_name.trim_start().len());
    if line.as_bytes().get(equals) != Some(&b'=') || line[equals..].starts_with("==") {
        return None;
    }
    // The line's significant bytes: outside strings, before a comment.
    let mut depth = 0i32;
    let mut last = None;
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    let mut i = equals + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            last = Some(i);
        } else {
            match b {
                b'#' => break,
                b'/' if bytes.get(i + 1) == Some(&b'/') => break,
                b'"' => in_string = true,
                b'{' | b'[' | b'(' => depth += 1,
                b'}' | b']' | b')' => depth -= 1,
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                last = Some(i);
            }
        }
        i += 1;
    }
    let last = last?;
    match bytes[last] {
        b'{' if depth == 1 && line[equals + 1..last].trim().is_empty() => Some(equals),
        b',' if depth == 0 && !in_string && line[equals + 1..last].trim() != "" => Some(last),
        _ => None,
    }
}

/// The HCL1 forms a file may hold that HCL2 has no room for, made HCL2 by inserting text (the
/// places of what is reported are mapped back to the file as written):
///
/// - `%{` and `${` in a string or a heredoc are text in HCL1, which has no template
///   directives and evaluates no interpolation, but start one in HCL2 (`"%{+Q}r"`, an HAProxy
///   log format; `<<EOT ... ${VAR:-x} ... EOT`): escaped as `%%{`, `$${` (a `$${` already
///   written, text in HCL1 too, as `$$${`, which HCL2 reads as `$${`: [`Hcl1Bridge::escapes`]);
/// - a block body on one line: HCL1 separates a body's items by spaces as well as newlines
///   (`template { destination = "/x" contents = "y" }`, `auto_auth { method "jwt" { ... } }`),
///   HCL2 allows one attribute there and no block: newlines are inserted after a block's `{`,
///   between its items and before its `}`;
/// - an object's items on one line without commas (`wait = { min = "2s" max = "10s" }`):
///   commas are inserted;
/// - a key set twice in one body or object, which HCL1 reads as the last value given (as
///   OpenBao Agent does: checked), where HCL2 refuses the file: each earlier one is renamed
///   with [`OVERRIDDEN`] in front, and dropped with a warning.
struct Hcl1Bridge {
    text: String,
    /// `(offset in text, length)` of each insertion, in order.
    inserted: Vec<(usize, usize)>,
}

/// A token of [`Hcl1Bridge`]'s scan: its kind and byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hcl1Token {
    Newline,
    /// A quoted string or a heredoc, a word (a name, a number, `true`), a value.
    Value,
    Open(u8),
    Close(u8),
    /// `=`, `:`, `,`.
    Punct(u8),
}

/// What a `{ }`, `[ ]` or the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hcl1Frame {
    Body,
    Object,
    List,
}

impl Hcl1Bridge {
    /// `text` with only HCL1's doubled `$${` and `%%{` (and longer runs) in its strings and
    /// heredocs escaped once more, so that HCL2, which reads `$${` as `${`, reads them as
    /// written, as HCL1 (and so OpenBao Agent) does. A lone `${` is left to HCL2, which sees an
    /// interpolation, taken as written with a warning.
    fn escapes(text: &str) -> Hcl1Bridge {
        if !text.contains("${") && !text.contains("%{") {
            return Hcl1Bridge {
                text: text.to_string(),
                inserted: Vec::new(),
            };
        }
        let tokens = hcl1_tokens(text);
        let plan = escape_plan(text, &tokens, false);
        Hcl1Bridge::insert(text, plan)
    }

    fn rewrite(text: &str) -> Hcl1Bridge {
        let tokens = hcl1_tokens(text);
        // Insertions planned at source offsets: `(offset, text)`, made in one pass at the end.
        let mut plan = escape_plan(text, &tokens, true);
        let mut frames = vec![Hcl1Frame::Body];
        // Per frame: the keys set so far, with where each was last written.
        let mut keys: Vec<std::collections::HashMap<&str, usize>> = vec![Default::default()];
        // The word or string that may be the key of the item being read.
        let mut candidate_key: Option<(usize, usize)> = None;
        // Per frame: the end of the item just completed, if the next one must be separated.
        let mut item_ended: Vec<Option<usize>> = vec![None];
        // The key of the item being read in a body or object has been seen, and its `=`/`:`.
        let mut after_equals = false;
        let mut previous: Option<(Hcl1Token, usize, usize)> = None;
        for (index, &(token, start, end)) in tokens.iter().enumerate() {
            let frame = *frames.last().unwrap_or(&Hcl1Frame::Body);
            let depth = frames.len() - 1;
            // A new item on the line of the previous one's end.
            if let Some(at) = item_ended[depth] {
                match token {
                    Hcl1Token::Newline | Hcl1Token::Close(_) | Hcl1Token::Punct(b',') => {}
                    _ => plan.push((at, if frame == Hcl1Frame::Body { "\n" } else { "," })),
                }
                item_ended[depth] = None;
            }
            match token {
                Hcl1Token::Newline => {}
                Hcl1Token::Punct(b'=' | b':') => {
                    after_equals = true;
                    if let (Some((key_start, key_end)), Some(seen)) =
                        (candidate_key.take(), keys.last_mut())
                        && frame != Hcl1Frame::List
                    {
                        let key = text[key_start..key_end].trim_matches('"');
                        // A quoted key gets the name inside its quotes.
                        let name_start =
                            key_start + usize::from(text.as_bytes()[key_start] == b'"');
                        if let Some(earlier) = seen.insert(key, name_start) {
                            plan.push((earlier, OVERRIDDEN));
                        }
                    }
                }
                Hcl1Token::Punct(_) => {}
                Hcl1Token::Open(open) => {
                    let kind = if open == b'[' {
                        Hcl1Frame::List
                    } else if after_equals || frame == Hcl1Frame::List {
                        Hcl1Frame::Object
                    } else {
                        Hcl1Frame::Body
                    };
                    after_equals = false;
                    candidate_key = None;
                    frames.push(kind);
                    item_ended.push(None);
                    keys.push(Default::default());
                    if kind == Hcl1Frame::Body {
                        // Something on the `{`'s line after it: the body starts on a line of
                        // its own.
                        let next = tokens.get(index + 1).map(|(t, _, _)| *t);
                        if !matches!(next, None | Some(Hcl1Token::Newline | Hcl1Token::Close(_))) {
                            plan.push((end, "\n"));
                        }
                    }
                }
                Hcl1Token::Close(_) => {
                    let closed = frames.pop().unwrap_or(Hcl1Frame::Body);
                    item_ended.pop();
                    keys.pop();
                    candidate_key = None;
                    if frames.is_empty() {
                        // Unbalanced: HCL2's error on the file as written will be reported.
                        frames.push(Hcl1Frame::Body);
                        item_ended.push(None);
                        keys.push(Default::default());
                    }
                    if closed == Hcl1Frame::Body
                        && !matches!(
                            previous,
                            None | Some((Hcl1Token::Newline | Hcl1Token::Open(_), _, _))
                        )
                    {
                        plan.push((start, "\n"));
                    }
                    let depth = frames.len() - 1;
                    if frames[depth] != Hcl1Frame::List {
                        item_ended[depth] = Some(end);
                    }
                }
                Hcl1Token::Value => {
                    // A value after `=` (or a list's item) ends an item; a key or a block's
                    // label does not.
                    if after_equals {
                        after_equals = false;
                        item_ended[depth] = Some(end);
                        candidate_key = None;
                    } else {
                        // A key, or a block's name or label (the last before `=` is the key).
                        let at_item_start = !matches!(previous, Some((Hcl1Token::Value, _, _)));
                        candidate_key = at_item_start.then_some((start, end));
                    }
                }
            }
            previous = Some((token, start, end));
        }
        Hcl1Bridge::insert(text, plan)
    }

    /// `text` with each of `plan`'s `(offset, text)` inserted, and where.
    fn insert(text: &str, mut plan: Vec<(usize, &'static str)>) -> Hcl1Bridge {
        let mut bridge = Hcl1Bridge {
            text: String::with_capacity(text.len() + 64),
            inserted: Vec::with_capacity(plan.len()),
        };
        plan.sort_by_key(|(at, _)| *at);
        let mut copied = 0;
        for (at, insert) in plan {
            bridge.text.push_str(&text[copied..at]);
            bridge.inserted.push((bridge.text.len(), insert.len()));
            bridge.text.push_str(insert);
            copied = at;
        }
        bridge.text.push_str(&text[copied..]);
        bridge
    }
}

/// The escapes that make HCL2 read `text`'s strings and heredocs as HCL1 text: one more `$`
/// or `%` before the `{` of each doubled `$${`/`%%{` (HCL2 takes one away, HCL1 none), and,
/// with `lone`, one before each `${`/`%{` too (HCL2's escape of it).
fn escape_plan(
    text: &str,
    tokens: &[(Hcl1Token, usize, usize)],
    lone: bool,
) -> Vec<(usize, &'static str)> {
    hcl1_template_escapes(text, tokens)
        .into_iter()
        .filter(|&(_, doubled)| lone || doubled)
        .map(|(start, _)| {
            let insert = match text.as_bytes()[start] {
                b'%' => "%",
                _ => "$",
            };
            (start + 1, insert)
        })
        .collect()
}

/// What [`Hcl1Bridge`] puts in front of a key given again later in its body or object.
const OVERRIDDEN: &str = "__overridden__";

/// The tokens of `text` as HCL1 scans them, comments and spaces left out (a comment that holds
/// a newline counts as one).
fn hcl1_tokens(text: &str) -> Vec<(Hcl1Token, usize, usize)> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let token = match bytes[i] {
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'\n' => {
                i += 1;
                Hcl1Token::Newline
            }
            b'#' => {
                i = memchr_newline(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = memchr_newline(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let close = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |at| i + 2 + at + 2);
                let newline = text[i..close].contains('\n');
                i = close;
                if !newline {
                    continue;
                }
                Hcl1Token::Newline
            }
            b'"' => {
                i = hcl1_string_end(bytes, i);
                Hcl1Token::Value
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                i = hcl1_heredoc_end(text, i);
                Hcl1Token::Value
            }
            open @ (b'{' | b'[') => {
                i += 1;
                Hcl1Token::Open(open)
            }
            close @ (b'}' | b']') => {
                i += 1;
                Hcl1Token::Close(close)
            }
            punct @ (b'=' | b':' | b',') => {
                i += 1;
                Hcl1Token::Punct(punct)
            }
            _ => {
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'{'
                            | b'}'
                            | b'['
                            | b']'
                            | b'='
                            | b','
                            | b'"'
                            | b'#'
                    )
                {
                    i += 1;
                }
                Hcl1Token::Value
            }
        };
        tokens.push((token, start, i));
    }
    tokens
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |at| from + at)
}

/// The end of the quoted string starting at `start`, as HCL1's scanner finds it: a quote
/// inside `${ }` does not end it.
fn hcl1_string_end(bytes: &[u8], start: usize) -> usize {
    let mut braces = 0usize;
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'\n' if braces == 0 => return i,
            b'"' if braces == 0 => return i + 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                braces += 1;
                i += 1;
            }
            b'}' if braces > 0 => braces -= 1,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The end of the heredoc starting at `start` (`<<EOT` or `<<-EOT`): past its closing line.
fn hcl1_heredoc_end(text: &str, start: usize) -> usize {
    let line_end = memchr_newline(text.as_bytes(), start);
    let Some(marker) = heredoc_start(&text[start..line_end]) else {
        return start + 2;
    };
    let mut at = line_end;
    while at < text.len() {
        let next = memchr_newline(text.as_bytes(), at + 1);
        if text[at + 1..next].trim() == marker {
            return next;
        }
        at = next;
    }
    text.len()
}

/// Where each `${` or `%{` of a string or a heredoc's body of `text` (scanned as `tokens`)
/// starts, and whether it is doubled (`$${`, `%%{`: the same character before it).
fn hcl1_template_escapes(text: &str, tokens: &[(Hcl1Token, usize, usize)]) -> Vec<(usize, bool)> {
    let mut escapes = Vec::new();
    for &(token, start, end) in tokens {
        if token != Hcl1Token::Value {
            continue;
        }
        let body_start = match text.as_bytes()[start] {
            b'"' => start + 1,
            b'<' => memchr_newline(text.as_bytes(), start),
            _ => continue,
        };
        let body = &text.as_bytes()[body_start..end.max(body_start)];
        for (offset, pair) in body.windows(2).enumerate() {
            if matches!(pair, b"${" | b"%{") {
                let doubled = offset > 0 && body[offset - 1] == pair[0];
                escapes.push((body_start + offset, doubled));
            }
        }
    }
    escapes
}

/// hcl-edit's messages list what it expected in winnow's words; keep the first line only.
fn syntax_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    if first.is_empty() {
        "invalid HCL syntax".to_string()
    } else {
        first.to_string()
    }
}

struct Converter<'a> {
    file: &'a str,
    /// What was parsed: the file, or its [`Hcl1Bridge`] rewrite.
    text: &'a str,
    /// The file as written (quoted keys unquoted in place), for lines and columns.
    original: &'a str,
    /// What the bridge inserted into `text`: `(offset in text, length)`, in order.
    inserted: &'a [(usize, usize)],
    warnings: std::cell::RefCell<Vec<ConfigWarning>>,
    places: std::cell::RefCell<Map<String, (usize, usize)>>,
}

impl Converter<'_> {
    /// `line:col` (1-based) in the file as written of a byte offset in what was parsed, for
    /// structural errors.
    fn place(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        let shift: usize = self
            .inserted
            .iter()
            .take_while(|(at, _)| *at < offset)
            .map(|(at, len)| (*len).min(offset - at))
            .sum();
        offset -= shift;
        let before = &self.original[..offset.min(self.original.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Whether `key` is one [`Hcl1Bridge`] renamed because it is set again later: it is then
    /// left out, with a warning.
    fn overridden(&self, path: &[String], key: &str, span: Option<std::ops::Range<usize>>) -> bool {
        let Some(name) = key.strip_prefix(OVERRIDDEN) else {
            return false;
        };
        let (line, column) = self.place(span.map_or(0, |at| at.start));
        let mut at = path.to_vec();
        at.push(name.to_string());
        self.warnings.borrow_mut().push(ConfigWarning {
            origin: format!("{}:{line}:{column}", self.file),
            path: super::error::render_path(&at),
            message: "is set again later in the same block; the last value counts, as in \
                      Vault Agent (remove this one)"
                .to_string(),
        });
        true
    }

    /// Remembers where the key `key` under `path` is written.
    fn record(&self, path: &[String], key: &str, span: Option<std::ops::Range<usize>>) {
        if let Some(span) = span {
            let mut at = path.to_vec();
            at.push(key.to_string());
            self.places
                .borrow_mut()
                .insert(super::error::render_path(&at), self.place(span.start));
        }
    }

    fn syntax_at(&self, span: Option<std::ops::Range<usize>>, message: String) -> ConfigError {
        let (line, column) = self.place(span.map_or(0, |s| s.start));
        ConfigError::Syntax {
            file: self.file.to_string(),
            line,
            column,
            message,
        }
    }

    /// An error about the value at `path`, written at `span`.
    fn invalid(
        &self,
        path: &[String],
        span: Option<std::ops::Range<usize>>,
        message: String,
    ) -> ConfigError {
        let (line, column) = self.place(span.map_or(0, |s| s.start));
        ConfigError::Invalid {
            origin: format!("{}:{line}:{column}", self.file),
            path: super::error::render_path(path),
            message,
        }
    }

    fn body(&self, body: &Body, path: &mut Vec<String>) -> Result<Dict, ConfigError> {
        let mut dict = Dict::new();
        // Where each single key was first set, to point at both places of a duplicate.
        let mut first_seen: Map<String, usize> = Map::new();
        // Where each named block's name was first given.
        let mut named_seen: Map<String, usize> = Map::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attribute)
                    if self.overridden(path, attribute.key.as_str(), attribute.key.span()) => {}
                Structure::Attribute(attribute) => {
                    let key = attribute.key.as_str().to_string();
                    let span = attribute.key.span();
                    self.record(path, &key, span.clone());
                    self.check_duplicate(&mut first_seen, &key, span.clone(), "key")?;
                    path.push(key.clone());
                    let value = self.expression(&attribute.value, path, Some(&key))?;
                    path.pop();
                    let value = if REPEATABLE_BLOCKS.contains(&key.as_str()) {
                        wrap_in_list(value)
                    } else {
                        value
                    };
                    dict.insert(key, value);
                }
                Structure::Block(block)
                    if path.is_empty() && NAMED_BLOCKS.contains(&block.ident.as_str()) =>
                {
                    let key = block.ident.as_str().to_string();
                    self.record(path, &key, block.ident.span());
                    let [label] = block.labels.as_slice() else {
                        return Err(self.syntax_at(
                            block.ident.span(),
                            format!(
                                "`{key}` takes one label, the environment variable's name: \
                                 {key} \"NAME\" {{ ... }}"
                            ),
                        ));
                    };
                    if first_seen.contains_key(&key) {
                        return Err(self.syntax_at(
                            block.ident.span(),
                            format!("`{key}` is set both as a key and as a block"),
                        ));
                    }
                    let name = label.as_str().to_string();
                    let first = named_seen.get(&name).copied();
                    if let Some(first) = first {
                        let (line, _) = self.place(first);
                        return Err(self.syntax_at(
                            label.span(),
                            format!(
                                "{key} \"{name}\" is given more than once (first on line {line})"
                            ),
                        ));
                    }
                    named_seen.insert(name.clone(), label.span().map_or(0, |s| s.start));
                    path.push(key.clone());
                    self.record(path, &name, label.span());
                    path.push(name.clone());
                    let body = self.body(&block.body, path)?;
                    path.pop();
                    path.pop();
                    match dict.entry(key).or_insert_with(|| Value::from(Dict::new())) {
                        Value::Dict(_, entries) => {
                            entries.insert(name, Value::from(body));
                        }
                        _ => unreachable!("named block keys only ever hold maps"),
                    }
                }
                Structure::Block(block) => {
                    let key = block.ident.as_str().to_string();
                    self.record(path, &key, block.ident.span());
                    let in_template = path.last().is_some_and(|p| p.starts_with("template["));
                    let repeatable = REPEATABLE_BLOCKS.contains(&key.as_str())
                        || (in_template && LAST_WINS_IN_TEMPLATE.contains(&key.as_str()));
                    if repeatable {
                        if first_seen.contains_key(&key) {
                            return Err(self.syntax_at(
                                block.ident.span(),
                                format!("`{key}` is set both as a key and as a block"),
                            ));
                        }
                        let index = match dict.get(&key) {
                            Some(Value::Array(_, items)) => items.len(),
                            _ => 0,
                        };
                        let item = format!("{key}[{index}]");
                        self.record(path, &item, block.ident.span());
                        path.push(item);
                        let value = self.block(block, path)?;
                        path.pop();
                        match dict
                            .entry(key)
                            .or_insert_with(|| Value::from(Vec::<Value>::new()))
                        {
                            Value::Array(_, items) => items.push(value),
                            _ => unreachable!("repeatable block keys only ever hold lists"),
                        }
                    } else {
                        // A top-level block this program does not know (Vault's `path`...) is
                        // ignored with a warning, as Vault Agent ignores it, however often it
                        // is repeated: only its first is kept for the warning.
                        let unknown = path.is_empty()
                            && !super::keys::fields::<super::raw::RawConfig>()
                                .contains(&key.as_str());
                        if unknown && first_seen.contains_key(&key) {
                            continue;
                        }
                        self.check_duplicate(&mut first_seen, &key, block.ident.span(), "block")?;
                        path.push(key.clone());
                        let value = self.block(block, path)?;
                        path.pop();
                        dict.insert(key, value);
                    }
                }
            }
        }
        Ok(dict)
    }

    fn check_duplicate(
        &self,
        first_seen: &mut Map<String, usize>,
        key: &str,
        span: Option<std::ops::Range<usize>>,
        what: &str,
    ) -> Result<(), ConfigError> {
        let offset = span.as_ref().map_or(0, |s| s.start);
        if let Some(first) = first_seen.get(key) {
            let (line, _) = self.place(*first);
            return Err(self.syntax_at(
                span,
                format!("{what} `{key}` is set more than once (first on line {line})"),
            ));
        }
        first_seen.insert(key.to_string(), offset);
        Ok(())
    }

    fn block(&self, block: &Block, path: &mut Vec<String>) -> Result<Value, ConfigError> {
        let name = block.ident.as_str();
        let mut dict = self.body(&block.body, path)?;
        match block.labels.as_slice() {
            [] => {}
            [label] if TYPED_BLOCKS.contains(&name) => {
                let label = label.as_str();
                match dict.get("type") {
                    Some(Value::String(_, given)) if given != label => {
                        return Err(self.syntax_at(
                            block.ident.span(),
                            format!(
                                "block `{name} \"{label}\"` also sets type = \"{given}\"; \
                                 keep one of the two"
                            ),
                        ));
                    }
                    _ => {
                        dict.insert("type".to_string(), Value::from(label.to_string()));
                    }
                }
            }
            [label, ..] if TYPED_BLOCKS.contains(&name) => {
                return Err(self.syntax_at(
                    label.span(),
                    format!("block `{name}` takes at most one label, its type"),
                ));
            }
            labels => {
                // HCL1: `name "a" "b" { ... }` is `name = { a = { b = { ... } } }`. Nothing this
                // program reads is written that way, so the key check will name the label.
                for label in labels.iter().rev() {
                    let mut outer = Dict::new();
                    outer.insert(label.as_str().to_string(), Value::from(dict));
                    dict = outer;
                }
            }
        }
        Ok(Value::from(dict))
    }

    fn expression(
        &self,
        expression: &Expression,
        path: &mut Vec<String>,
        key: Option<&str>,
    ) -> Result<Value, ConfigError> {
        Ok(match expression {
            Expression::Null(_) => Value::Empty(Tag::Default, Empty::None),
            Expression::Bool(value) => Value::from(*value.value()),
            Expression::Number(number) => {
                let raw: &str = number.as_repr().map_or("", |raw| raw);
                self.number(raw, number.value(), number.span(), path, key)?
            }
            Expression::String(value) => Value::from(value.value().clone()),
            Expression::Array(array) => {
                let mut items = Vec::with_capacity(array.len());
                for (index, item) in array.iter().enumerate() {
                    path.push(format!("[{index}]"));
                    items.push(self.expression(item, path, None)?);
                    path.pop();
                }
                Value::from(items)
            }
            Expression::Object(object) => {
                let mut dict = Dict::new();
                for (object_key, object_value) in object.iter() {
                    let name = match object_key {
                        ObjectKey::Ident(ident) => ident.as_str().to_string(),
                        ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                        ObjectKey::Expression(other) => {
                            return Err(self.syntax_at(
                                other.span(),
                                "object keys must be names or quoted strings".to_string(),
                            ));
                        }
                    };
                    if self.overridden(path, &name, object_key.span()) {
                        continue;
                    }
                    if dict.contains_key(&name) {
                        return Err(self.syntax_at(
                            object_key.span(),
                            format!("key `{name}` is set more than once"),
                        ));
                    }
                    self.record(path, &name, object_key.span());
                    path.push(name.clone());
                    let value = self.expression(object_value.expr(), path, Some(&name))?;
                    path.pop();
                    dict.insert(name, value);
                }
                Value::from(dict)
            }
            Expression::StringTemplate(template) => {
                Value::from(self.literal_template(template.iter(), path, template.span())?)
            }
            Expression::HeredocTemplate(heredoc) => {
                Value::from(self.literal_template(heredoc.template.iter(), path, heredoc.span())?)
            }
            Expression::Parenthesis(inner) => self.expression(inner.inner(), path, key)?,
            Expression::UnaryOp(op) => {
                return Err(self.syntax_at(
                    op.span(),
                    "operators are not supported in a Vault Agent config; write the value"
                        .to_string(),
                ));
            }
            other => {
                return Err(self.syntax_at(
                    other.span(),
                    "expressions (variables, functions, operators) are not supported in a \
                     Vault Agent config; write a literal value"
                        .to_string(),
                ));
            }
        })
    }

    /// HCL1 numbers: a leading zero means octal; a mode must be written that way.
    fn number(
        &self,
        raw: &str,
        parsed: &hcl_edit::Number,
        span: Option<std::ops::Range<usize>>,
        path: &[String],
        key: Option<&str>,
    ) -> Result<Value, ConfigError> {
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let is_integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        if is_integer && digits.len() > 1 && digits.starts_with('0') {
            let magnitude = u64::from_str_radix(digits, 8).map_err(|_| {
                self.syntax_at(
                    span.clone(),
                    format!("`{raw}` starts with 0, so it is octal, but has a digit 8 or 9"),
                )
            })?;
            return Ok(if negative {
                let value = i64::try_from(magnitude)
                    .map(|m| -m)
                    .map_err(|_| self.syntax_at(span, format!("`{raw}` is out of range")))?;
                Value::Num(Tag::Default, Num::I64(value))
            } else {
                Value::Num(Tag::Default, Num::U64(magnitude))
            });
        }
        if is_integer
            && key.is_some()
            && is_mode(path)
            && digits != "0"
            && (negative || !crate::units::decimal_mode_as_meant(digits.parse().unwrap_or(0)))
        {
            // HCL1 would read `perms = 644` as decimal 644 (0o1204): never what was meant.
            // (`mode = 384`, 0600 written in decimal, is taken as Vault Agent takes it.)
            return Err(self.invalid(path, span, decimal_mode_message(raw, digits)));
        }
        if let Some(value) = parsed.as_u64() {
            Ok(Value::Num(Tag::Default, Num::U64(value)))
        } else if let Some(value) = parsed.as_i64() {
            Ok(Value::Num(Tag::Default, Num::I64(value)))
        } else if let Some(value) = parsed.as_f64() {
            Ok(Value::Num(Tag::Default, Num::F64(value)))
        } else {
            Err(self.syntax_at(span, format!("`{raw}` is not a number")))
        }
    }

    /// A string or heredoc as Vault Agent's HCL1 reads it: text. HCL1 evaluates no `${...}`
    /// or `%{...}`, so they stay as written (`"${VAULT_ADDR}"` is those 14 characters, which
    /// the environment's VAULT_ADDR overrides), with a warning for whoever expected HCL2.
    fn literal_template<'t>(
        &self,
        elements: impl Iterator<Item = &'t Element>,
        path: &[String],
        span: Option<std::ops::Range<usize>>,
    ) -> Result<String, ConfigError> {
        let mut text = String::new();
        for element in elements {
            match element {
                Element::Literal(literal) => text.push_str(literal.value()),
                Element::Interpolation(_) | Element::Directive(_) => {
                    let Some(written) = element.span().and_then(|at| self.text.get(at)) else {
                        return Err(self.syntax_at(
                            element.span().or(span),
                            "`${...}` and `%{...}` are HCL2 templates, which Vault Agent \
                             configs do not evaluate; write the text itself"
                                .to_string(),
                        ));
                    };
                    text.push_str(written);
                    let (line, column) = self.place(element.span().map_or(0, |at| at.start));
                    self.warnings.borrow_mut().push(ConfigWarning {
                        origin: format!("{}:{line}:{column}", self.file),
                        path: super::error::render_path(path),
                        message: format!(
                            "`{written}` is taken as it is written: Vault Agent's HCL \
                             evaluates no `${{...}}` (an environment variable such as \
                             VAULT_ADDR overrides its key on its own)"
                        ),
                    });
                }
            }
        }
        Ok(text)
    }
}

/// Why the decimal file mode `raw` is refused, and how to write it.
pub(crate) fn decimal_mode_message(raw: &str, digits: &str) -> String {
    if digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        format!("{raw} is a decimal number; file modes are octal: write 0{digits} or \"0{digits}\"")
    } else {
        format!(
            "{raw} is a decimal number that is no usual file mode (Vault Agent would apply it \
             as 0{:o}); write the mode in octal, such as 0640 or \"0640\"",
            digits.parse::<u64>().unwrap_or(0)
        )
    }
}

/// `template = { ... }` written as an attribute is still one template.
fn wrap_in_list(value: Value) -> Value {
    match value {
        Value::Array(..) => value,
        other => Value::from(vec![other]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dict, ConfigError> {
        HclFile::parse(Path::new("t.hcl"), text).map(|f| f.data)
    }

    fn get<'d>(dict: &'d Dict, path: &str) -> &'d Value {
        let mut parts = path.split('.');
        let first = parts.next().expect("a path has a first part");
        let mut value = dict.get(first);
        for part in parts {
            value = match value {
                Some(Value::Dict(_, d)) => d.get(part),
                Some(Value::Array(_, items)) => {
                    part.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            };
        }
        value.unwrap_or_else(|| panic!("no value at {path}"))
    }

    /// Files parsed in the background come back in the order given, errors naming their file.
    #[test]
    fn background_parsing_keeps_the_order_and_names_each_file() {
        let texts = vec![
            (PathBuf::from("a.hcl"), "pid_file = \"/a\"\n".to_string()),
            (PathBuf::from("b.hcl"), "vault {\n".to_string()),
            (PathBuf::from("c.hcl"), "pid_file = \"/c\"\n".to_string()),
        ];
        let parsing = HclFile::parse_in_background(texts, PARSE_DEADLINE).unwrap();
        let first = parsing.next(Path::new("a.hcl")).unwrap();
        assert_eq!(
            first.data.get("pid_file").and_then(Value::as_str),
            Some("/a")
        );
        let second = parsing.next(Path::new("b.hcl")).unwrap_err().to_string();
        assert!(second.starts_with("b.hcl:1:9: "), "{second}");
        let third = parsing.next(Path::new("c.hcl")).unwrap();
        assert_eq!(
            third.data.get("pid_file").and_then(Value::as_str),
            Some("/c")
        );
    }

    /// A file hcl-edit takes exponential time over (RELIABILITY.md, finding 2: 12 lines take
    /// about 17 ms in a release build, far more in a test build) ends in an error naming it once
    /// the deadline passes, however long the parser would go on.
    #[test]
    fn a_parse_past_its_deadline_is_an_error_naming_the_file() {
        let slow = format!("a = <<EOT\n{}EOT\n", "\"/ \"/t = \"/ \"${\"\n".repeat(12));
        let texts = vec![(PathBuf::from("slow.hcl"), slow)];
        let deadline = std::time::Duration::from_millis(1);
        let parsing = HclFile::parse_in_background(texts, deadline).unwrap();
        let err = parsing.next(Path::new("slow.hcl")).unwrap_err();
        assert!(
            matches!(&err, ConfigError::ParseTimeout { file, .. } if file == "slow.hcl"),
            "{err}"
        );
    }

    #[test]
    fn leading_zero_is_octal() {
        let dict = parse("perms = 0644\nother = 010\nplain = 10\n").unwrap();
        assert_eq!(get(&dict, "perms").to_u128(), Some(0o644));
        assert_eq!(get(&dict, "other").to_u128(), Some(8));
        assert_eq!(get(&dict, "plain").to_u128(), Some(10));
    }

    #[test]
    fn decimal_mode_is_refused() {
        let err = parse("template {\n  perms = 644\n}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.hcl:2:11: template[0].perms: 644 is a decimal number; file modes are octal: \
             write 0644 or \"0644\""
        );
        let err = parse(
            "auto_auth {\n  sink \"file\" {\n    config = {\n      mode = 999\n    }\n  }\n}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "t.hcl:4:14: auto_auth.sink[0].config.mode: 999 is a decimal number that is no \
                 usual file mode (Vault Agent would apply it as 01747)"
            ),
            "{err}"
        );
        // 0600 in decimal, as Vault Agent applies it.
        let dict = parse(
            "auto_auth {\n  sink \"file\" {\n    config = {\n      mode = 384\n    }\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(
            get(&dict, "auto_auth.sink.0.config.mode").to_u128(),
            Some(0o600)
        );
        // The same names where they are no mode: in a block Vault Agent ignores (a misspelt
        // `sinks`), dropped later with a warning as Vault Agent drops it.
        let dict = parse("auto_auth {\n  sinks {\n    sink \"file\" {\n      config = {\n        mode = 384\n      }\n    }\n  }\n}\n").unwrap();
        assert_eq!(
            get(&dict, "auto_auth.sinks.sink.0.config.mode").to_u128(),
            Some(384)
        );
    }

    #[test]
    fn bad_octal_digit_is_a_syntax_error() {
        let err = parse("x = 1\nperms = 0649\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.hcl:2:9: `0649` starts with 0, so it is octal, but has a digit 8 or 9"
        );
    }

    #[test]
    fn labelled_method_gets_its_type() {
        let dict = parse("auto_auth {\n method \"kubernetes\" {\n mount_path = \"auth/k\"\n }\n}")
            .unwrap();
        assert_eq!(
            get(&dict, "auto_auth.method.type").as_str(),
            Some("kubernetes")
        );
        let dict = parse("auto_auth {\n method {\n type = \"approle\"\n }\n}").unwrap();
        assert_eq!(
            get(&dict, "auto_auth.method.type").as_str(),
            Some("approle")
        );
    }

    #[test]
    fn conflicting_label_and_type_is_refused() {
        let err =
            parse("auto_auth {\n method \"kubernetes\" {\n type = \"jwt\"\n }\n}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t.hcl:2:2: block `method \"kubernetes\"`"),
            "{err}"
        );
    }

    #[test]
    fn one_template_or_many_is_a_list() {
        let one = parse("template {\n destination = \"a\"\n}\n").unwrap();
        assert!(matches!(get(&one, "template"), Value::Array(_, v) if v.len() == 1));
        let two =
            parse("template {\n destination = \"a\"\n}\ntemplate {\n destination = \"b\"\n}\n")
                .unwrap();
        assert_eq!(get(&two, "template.1.destination").as_str(), Some("b"));
        let attr = parse("template = { destination = \"a\" }\n").unwrap();
        assert!(matches!(get(&attr, "template"), Value::Array(_, v) if v.len() == 1));
    }

    #[test]
    fn duplicate_single_block_is_refused() {
        let err = parse("vault {\n}\nvault {\n}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.hcl:3:1: block `vault` is set more than once (first on line 1)"
        );
    }

    #[test]
    fn heredoc_keeps_go_template_text() {
        let dict = parse("contents = <<EOT\n{{ .Data.Cert }}\n  x\nEOT\n").unwrap();
        assert_eq!(
            get(&dict, "contents").as_str(),
            Some("{{ .Data.Cert }}\n  x\n")
        );
    }

    #[test]
    fn interpolation_is_literal_text_with_a_warning() {
        let mut file = HclFile::parse(
            Path::new("t.hcl"),
            "a = \"${var.x}/%{ if y }z%{ endif }\"\n",
        )
        .unwrap();
        assert_eq!(
            get(&file.data, "a").as_str(),
            Some("${var.x}/%{ if y }z%{ endif }")
        );
        let warnings = file.take_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(warnings[0].origin, "t.hcl:1:6");
        assert!(
            warnings[0]
                .message
                .contains("`${var.x}` is taken as it is written")
        );
        // HCL1's text, as OpenBao Agent reads it: a doubled `$${` or `%%{` stays as written
        // (HCL2 would read `${`), in strings and heredocs, errors placed in the file as written.
        let ok = parse("a = \"$${x} $$${y} %%{z} $$w\"\nb = <<EOT\n$${x}%%{ y }\nEOT\n").unwrap();
        assert_eq!(get(&ok, "a").as_str(), Some("$${x} $$${y} %%{z} $$w"));
        assert_eq!(get(&ok, "b").as_str(), Some("$${x}%%{ y }\n"));
        let err = parse("a = \"$${x}\"\nb = foo\n").unwrap_err().to_string();
        assert!(err.starts_with("t.hcl:2:5: expressions"), "{err}");
        let err = parse("c = { x = \"$${x}\", y = foo }\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.hcl:1:24: expressions"), "{err}");
    }

    #[test]
    fn variables_are_refused() {
        let err = parse("a = foo\n").unwrap_err();
        assert!(
            err.to_string().starts_with("t.hcl:1:5: expressions"),
            "{err}"
        );
    }

    /// HCL1 bodies HCL2 refuses: an object holding a block, an object given twice, commas
    /// ending attributes. Read the HCL1 way, with every place kept; a template's text untouched.
    #[test]
    fn hcl1_bodies_load_where_hcl2_refuses_them() {
        let text = "\"auto_auth\" = {\n  \"method\" = {\n    \"type\" = \"kubernetes\"\n  }\n  \
                    sink \"file\" {\n    config = {\n      path = \"/t\",\n    }\n  }\n}\n\
                    \"template\" = {\n  \"contents\" = <<EOF\nx = {\nkey = 1,\nEOF\n  \
                    \"destination\" = \"/a\"\n}\n\"template\" = {\n  destination = \"/b\",\n  \
                    left_delimiter = \"{{\",\n  right_delimiter = \"}}\" # closes\n  \
                    contents = \"{ a = 1, }\"\n}\n";
        let file = HclFile::parse(Path::new("t.hcl"), text).unwrap_or_else(|e| panic!("{e}"));
        let dict = &file.data;
        assert_eq!(
            get(dict, "auto_auth.method.type").as_str(),
            Some("kubernetes")
        );
        assert_eq!(
            get(dict, "auto_auth.sink.0.config.path").as_str(),
            Some("/t")
        );
        assert_eq!(
            get(dict, "template.0.contents").as_str(),
            Some("x = {\nkey = 1,\n")
        );
        assert_eq!(get(dict, "template.0.destination").as_str(), Some("/a"));
        assert_eq!(get(dict, "template.1.destination").as_str(), Some("/b"));
        assert_eq!(get(dict, "template.1.left_delimiter").as_str(), Some("{{"));
        assert_eq!(get(dict, "template.1.right_delimiter").as_str(), Some("}}"));
        assert_eq!(
            get(dict, "template.1.contents").as_str(),
            Some("{ a = 1, }")
        );
        assert_eq!(file.place_near("template[1].left_delimiter"), Some((20, 3)));
        // What HCL2 reads is never rewritten: `x = {` there is an object, and a list keeps
        // its commas.
        assert!(hcl1_bodies("a = [\n  1,\n  2,\n]\n").is_none());
        let dict = parse("a = {\n  b = 1\n}\nlist = [\n  \"x\",\n  \"y\",\n]\n").unwrap();
        assert_eq!(get(&dict, "a.b").to_u128(), Some(1));
        assert_eq!(get(&dict, "list.1").as_str(), Some("y"));
        // Where both fail, the error is HCL2's, on the file as written.
        let err = parse("a = 1,\nvault { retry { num_retries = } }\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.hcl:1:"), "{err}");
    }

    #[test]
    fn hcl1_one_line_bodies_objects_without_commas_and_percent_braces_load() {
        let text = "auto_auth { method \"jwt\" { config = { path = \"/j\" role = \"r\" } } }\n\
                    template { destination = \"/a\"  contents = \"100%{+Q}r ${x} $${y} %%{z}\" }\n\
                    template {\n  destination = \"/b\"\n  wait = { min = \"2s\" max = \"10s\" }\n  \
                    contents = <<EOT\nlog %{User-Agent}i ${VAR:-x}\nEOT\n}\n\
                    vault { retry { num_retries = 5 } } # one line\n";
        let file = HclFile::parse(Path::new("t.hcl"), text).unwrap_or_else(|e| panic!("{e}"));
        let dict = &file.data;
        assert_eq!(get(dict, "auto_auth.method.type").as_str(), Some("jwt"));
        assert_eq!(
            get(dict, "auto_auth.method.config.role").as_str(),
            Some("r")
        );
        assert_eq!(get(dict, "template.0.destination").as_str(), Some("/a"));
        // Text, as HCL1 reads it, `$${` and `%%{` too.
        assert_eq!(
            get(dict, "template.0.contents").as_str(),
            Some("100%{+Q}r ${x} $${y} %%{z}")
        );
        assert_eq!(get(dict, "template.1.wait.max").as_str(), Some("10s"));
        assert_eq!(
            get(dict, "template.1.contents").as_str(),
            Some("log %{User-Agent}i ${VAR:-x}\n")
        );
        assert_eq!(get(dict, "vault.retry.num_retries").to_u128(), Some(5));
        // A key given twice: the last value, as HCL1 and OpenBao Agent read it, and a warning
        // at the first.
        let mut duplicated = HclFile::parse(
            Path::new("t.hcl"),
            "pid_file = \"/a\"\npid_file = \"/b\"\nvault {\n  retry = { num_retries = 1, \"num_retries\" = 2 }\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(get(&duplicated.data, "pid_file").as_str(), Some("/b"));
        assert_eq!(
            get(&duplicated.data, "vault.retry.num_retries").to_u128(),
            Some(2)
        );
        let warnings: Vec<String> = duplicated
            .take_warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("t.hcl:1:1: pid_file: warning: is set again later"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("t.hcl:4:13: vault.retry.num_retries: warning"),
            "{warnings:?}"
        );
        // Places are the file's, whatever was inserted before them.
        assert_eq!(file.place_near("template[0].contents"), Some((2, 32)));
        assert_eq!(file.place_near("template[1].wait"), Some((5, 3)));
        assert_eq!(file.place_near("vault.retry"), Some((10, 9)));
    }

    #[test]
    fn quoted_keys_are_hcl1_names() {
        let text = "\"vault\" = {\n  \"address\" = \"https://v:8200\"\n}\n\"auto_auth\" = {\n  \
                    \"sink\" = {\n    \"type\" = \"file\"\n  }\n}\ncontents = <<EOT\n\"a\" = 1\nEOT\n";
        let dict = parse(text).unwrap();
        assert_eq!(get(&dict, "vault.address").as_str(), Some("https://v:8200"));
        assert_eq!(get(&dict, "auto_auth.sink.0.type").as_str(), Some("file"));
        assert_eq!(get(&dict, "contents").as_str(), Some("\"a\" = 1\n"));
        let err = parse("\"vault\" = {\n  \"address\" = \n}\n").unwrap_err();
        assert!(err.to_string().starts_with("t.hcl:2:15:"), "{err}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse("vault {\n  address = \n}\n").unwrap_err();
        assert!(err.to_string().starts_with("t.hcl:2:"), "{err}");
    }
}
