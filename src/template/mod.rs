//! A Go `text/template` engine for Vault Agent / consul-template templates: text and actions,
//! `{{-`/`-}}` trimming, comments, `if`/`with`/`range` (with `else`, `else if`, `else with`,
//! `break`, `continue`, and `range` over an integer), variables, pipelines, field chains on
//! the dot, variables and parenthesised pipelines, every literal Go has but complex numbers,
//! custom delimiters, `define`/`template`/`block`, and Go's built-in functions (`and or not eq
//! ne lt le gt ge len index slice print printf println html js urlquery call`; `call` always
//! fails, since the data holds no functions). It matches Go 1.27 (what OpenBao Agent 2.7.2 is
//! built with) byte for byte: `tests/fixtures/templates/*.golden` were rendered by OpenBao
//! Agent and are checked here, and `tests/compat/templates/syntax/` is checked against the
//! whole agent by `scripts/compat-templates.sh`.
//!
//! It owns parsing, rendering and Go's printing rules. It must not know about Vault, files or
//! the agent: every other function comes from the caller through [`Functions`]. It must not
//! panic on any template or data: nesting is bounded at parse time, template calls and the
//! blocks inside them at render time (300 levels, where Go allows 100000 calls on its growable
//! stacks), and every lookup is checked.
//!
//! Not implemented: complex literals (refused when parsing), methods (the data has none), and
//! `range` over functions. Differences: `slice` bounds indexes by length (Go: by capacity),
//! and refuses to cut a string inside a UTF-8 character.
mod exec;
mod format;
mod lex;
mod parse;
mod value;

#[cfg(test)]
mod tests;

pub(crate) use value::go_json_float;
pub use value::{GoNil, GoStruct, Hidden, Value};

/// Functions beyond the built-ins, supplied by the caller (the agent's consul-template
/// functions).
pub trait Functions {
    /// Whether `name` exists (checked at parse time: an unknown function is a parse error).
    /// A name that is also a built-in's replaces the built-in, as a Go `FuncMap` does.
    fn has(&self, name: &str) -> bool;
    /// Why `name`, which [`Functions::has`] does not know, is refused: a name the caller
    /// deliberately leaves out gets this message at parse time instead of Go's generic
    /// "function not defined". A built-in's name is never asked.
    fn refused(&self, _name: &str) -> Option<String> {
        None
    }
    /// Whether `name` (which [`Functions::has`]) executes a named template of the one being
    /// rendered, as consul-template's `executeTemplate NAME [DATA]` does: the engine runs it
    /// (a Go function closes over its template; here the engine holds the templates) and the
    /// result is the text it printed. [`Functions::call`] is never asked for such a name.
    fn executes_template(&self, _name: &str) -> bool {
        false
    }
    /// Calls `name`; an Err(message) aborts rendering with the action's position.
    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String>;
    /// Whether `name` (which [`Functions::has`]) gives an object whose methods the template
    /// calls, as consul-template's `scratch` does (`scratch.Set "k" v`): the engine then
    /// hands `name.Method args` to [`Functions::call_method`] rather than calling `name`.
    fn has_methods(&self, _name: &str) -> bool {
        false
    }
    /// Calls `method` of the object `name` gives; an Err(message) aborts rendering with the
    /// action's position. Asked only for a name that [`Functions::has_methods`].
    fn call_method(
        &mut self,
        name: &str,
        method: &str,
        _args: Vec<Value>,
    ) -> Result<Value, String> {
        Err(format!("can't evaluate field {method} of {name}"))
    }
}

/// Go's `fmt.Sprint` of `args`, for callers' functions that print values as Go does.
pub fn go_sprint(args: &[Value]) -> String {
    format::sprint(args)
}

/// Go's `fmt.Sprintf`, for callers' functions that format values as Go does.
pub fn go_sprintf(format_string: &str, args: &[Value]) -> String {
    format::sprintf(format_string, args)
}

/// Go's `strconv.Quote`, for callers' functions.
pub fn go_quote(s: &str) -> String {
    format::quote(s, false)
}

/// A parsed template, ready to render any number of times.
#[derive(Debug)]
pub struct Template {
    root: Vec<parse::Node>,
    /// Templates named by `define` and `block`, for `{{template}}`.
    definitions: parse::Definitions,
}

/// Choices that change rendering.
#[derive(Debug, Default, Clone, Copy)]
pub struct RenderOptions {
    /// A missing map key is an error (Go's `missingkey=error`, consul-template's
    /// `error_on_missing_key`) instead of printing `<no value>`.
    pub error_on_missing_key: bool,
}

/// A parse or render error at a 1-based line and column (in characters) of the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct TemplateError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What went wrong, in Go's words where Go has them.
    pub message: String,
}

impl Template {
    /// Parses `text` with the delimiters `left` and `right` (Go's `{{` and `}}` unless the
    /// template stanza says otherwise). Function names are resolved against the built-ins and
    /// `functions` now; the same names must be callable at render time.
    pub(crate) fn parse(
        text: &str,
        left: &str,
        right: &str,
        functions: &dyn Functions,
    ) -> Result<Template, TemplateError> {
        if left.is_empty() || right.is_empty() {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: "delimiters must not be empty".to_owned(),
            });
        }
        let tokens = lex::lex(text, left, right);
        let (root, definitions) = parse::parse(text, tokens, functions)?;
        Ok(Template { root, definitions })
    }

    /// Renders with `dot` as the initial `.` and `$`.
    pub fn render(
        &self,
        dot: &Value,
        functions: &mut dyn Functions,
        options: RenderOptions,
    ) -> Result<String, TemplateError> {
        let mut state = exec::State {
            root: dot,
            root_absent: matches!(dot, Value::Nil),
            definitions: &self.definitions,
            main: &self.root,
            depth: 0,
            functions,
            options,
            vars: vec![("$".to_owned(), dot.clone(), false)],
            out: String::new(),
        };
        state.walk_list(dot, &self.root)?;
        Ok(state.out)
    }
}
