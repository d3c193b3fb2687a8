//! The parser: tokens into the tree that `exec` walks, with Go's grammar and Go's parse-time
//! checks (unknown functions, undefined variables, unbalanced `end`/`else`, `break` outside
//! `range`), plus arity checks for the built-in functions.
//!
//! It owns the tree types and literal decoding (numbers, quoted strings). It must not evaluate
//! anything, and it bounds nesting so that no input can exhaust the stack.

use super::lex::{Kind, Token};
use super::{Functions, TemplateError};

/// Deepest nesting of blocks and parentheses accepted. Real templates nest a handful deep;
/// the bound keeps parsing and rendering recursion far from the stack's end.
pub(super) const MAX_DEPTH: usize = 200;

/// A 1-based line and column (in characters) in the template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug)]
pub(super) enum Node {
    Text(String),
    /// `{{ pipeline }}`: prints the result unless the pipeline declares variables.
    Action(Pipeline),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
    /// `{{template "name" pipeline}}` (and the call half of `{{block}}`): runs the named
    /// template with the pipeline's value (absent without one) as its dot.
    Template(TemplateCall),
}

#[derive(Debug)]
pub(super) struct TemplateCall {
    pub name: String,
    pub pos: Pos,
    pub pipe: Option<Pipeline>,
}

/// The templates a parse defined with `define` and `block`, by name.
pub(super) type Definitions = std::collections::BTreeMap<String, Vec<Node>>;

/// The shared shape of `if`, `with` and `range`.
#[derive(Debug)]
pub(super) struct Branch {
    pub pipe: Pipeline,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(super) struct Pipeline {
    pub pos: Pos,
    /// Variables declared (`:=`) or assigned (`=`) with the result.
    pub decl: Vec<String>,
    pub is_assign: bool,
    /// Never empty: the parser rejects empty pipelines.
    pub commands: Vec<Command>,
}

#[derive(Debug)]
pub(super) struct Command {
    /// Never empty: the parser rejects empty commands.
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(super) enum Arg {
    Dot(Pos),
    Nil(Pos),
    Bool(bool, Pos),
    Number(Number, Pos, String),
    String(String, Pos, String),
    /// `.A.B`: fields of the dot.
    Field(Vec<String>, Pos),
    /// `$x.A.B`: a variable and fields of it.
    Variable(String, Vec<String>, Pos),
    /// `(pipeline).A.B`.
    Chain(Box<Arg>, Vec<String>, Pos),
    /// `( pipeline )`.
    Pipeline(Box<Pipeline>),
    Function(Function, Pos),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
}

/// A function reference, resolved at parse time.
#[derive(Debug, Clone)]
pub(super) enum Function {
    Builtin(Builtin),
    /// Supplied through [`Functions`].
    External(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    And,
    Or,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Len,
    Index,
    Print,
    Printf,
    Println,
    Html,
    Js,
    Urlquery,
    Slice,
    Call,
}

impl Builtin {
    fn lookup(name: &str) -> Option<Builtin> {
        Some(match name {
            "and" => Builtin::And,
            "or" => Builtin::Or,
            "not" => Builtin::Not,
            "eq" => Builtin::Eq,
            "ne" => Builtin::Ne,
            "lt" => Builtin::Lt,
            "le" => Builtin::Le,
            "gt" => Builtin::Gt,
            "ge" => Builtin::Ge,
            "len" => Builtin::Len,
            "index" => Builtin::Index,
            "print" => Builtin::Print,
            "printf" => Builtin::Printf,
            "println" => Builtin::Println,
            "html" => Builtin::Html,
            "js" => Builtin::Js,
            "urlquery" => Builtin::Urlquery,
            "slice" => Builtin::Slice,
            "call" => Builtin::Call,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Builtin::And => "and",
            Builtin::Or => "or",
            Builtin::Not => "not",
            Builtin::Eq => "eq",
            Builtin::Ne => "ne",
            Builtin::Lt => "lt",
            Builtin::Le => "le",
            Builtin::Gt => "gt",
            Builtin::Ge => "ge",
            Builtin::Len => "len",
            Builtin::Index => "index",
            Builtin::Print => "print",
            Builtin::Printf => "printf",
            Builtin::Println => "println",
            Builtin::Html => "html",
            Builtin::Js => "js",
            Builtin::Urlquery => "urlquery",
            Builtin::Slice => "slice",
            Builtin::Call => "call",
        }
    }

    /// (minimum, exact?) argument count, as Go's signatures imply.
    fn arity(self) -> (usize, bool) {
        match self {
            Builtin::Not | Builtin::Len => (1, true),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => (2, true),
            Builtin::And
            | Builtin::Or
            | Builtin::Eq
            | Builtin::Index
            | Builtin::Printf
            | Builtin::Slice
            | Builtin::Call => (1, false),
            Builtin::Print | Builtin::Println | Builtin::Html | Builtin::Js | Builtin::Urlquery => {
                (0, false)
            }
        }
    }
}

impl Arg {
    pub(super) fn pos(&self) -> Pos {
        match self {
            Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(_, p)
            | Arg::Number(_, p, _)
            | Arg::String(_, p, _)
            | Arg::Field(_, p)
            | Arg::Variable(_, _, p)
            | Arg::Chain(_, _, p)
            | Arg::Function(_, p) => *p,
            Arg::Pipeline(pipe) => pipe.pos,
        }
    }

    /// The argument roughly as written, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Arg::Dot(_) => ".".to_owned(),
            Arg::Nil(_) => "nil".to_owned(),
            Arg::Bool(b, _) => b.to_string(),
            Arg::Number(_, _, text) | Arg::String(_, _, text) => text.clone(),
            Arg::Field(fields, _) => fields.iter().map(|f| format!(".{f}")).collect(),
            Arg::Variable(name, fields, _) => {
                let mut s = name.clone();
                s.extend(fields.iter().map(|f| format!(".{f}")));
                s
            }
            Arg::Chain(base, fields, _) => {
                let mut s = base.describe();
                s.extend(fields.iter().map(|f| format!(".{f}")));
                s
            }
            Arg::Pipeline(pipe) => format!("({})", pipe.describe()),
            Arg::Function(Function::Builtin(b), _) => b.name().to_owned(),
            Arg::Function(Function::External(name), _) => name.clone(),
        }
    }
}

impl Pipeline {
    /// The pipeline roughly as written, for messages.
    pub(super) fn describe(&self) -> String {
        let mut s = String::new();
        if !self.decl.is_empty() {
            s.push_str(&self.decl.join(", "));
            s.push_str(if self.is_assign { " = " } else { " := " });
        }
        let commands: Vec<String> = self
            .commands
            .iter()
            .map(|c| {
                c.args
                    .iter()
                    .map(Arg::describe)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        s.push_str(&commands.join(" | "));
        s
    }
}

/// Maps byte offsets to line and column.
pub(super) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(super) fn new(text: &'a str) -> LineIndex<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    pub(super) fn pos(&self, offset: usize) -> Pos {
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Pos { line, column }
    }
}

type Result<T> = std::result::Result<T, TemplateError>;

/// Parses the token stream of `text` into its top-level list and the templates it defines.
pub(super) fn parse(
    text: &str,
    tokens: Vec<Token>,
    functions: &dyn Functions,
) -> Result<(Vec<Node>, Definitions)> {
    let mut parser = Parser {
        lines: LineIndex::new(text),
        tokens,
        next: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
        depth: 0,
        functions,
        definitions: Definitions::new(),
    };
    let root = parser.parse_root()?;
    // The file itself is the template named "" (consul-template's name for it), added last, as
    // Go's `Tree.add` does: a non-empty `define ""` stands in for an empty file, and beside a
    // non-empty one is a second definition.
    let root = match parser.definitions.remove("") {
        Some(defined) if !is_empty_tree(&defined) => {
            if !is_empty_tree(&root) {
                return Err(
                    parser.error(text.len(), "template: multiple definition of template \"\"")
                );
            }
            defined
        }
        _ => root,
    };
    Ok((root, parser.definitions))
}

/// Go's `parse.IsEmptyTree`: only blank text and comments. Such a definition never replaces
/// an earlier one, and is replaced by a later one without a "multiple definition" error.
fn is_empty_tree(list: &[Node]) -> bool {
    list.iter().all(|node| match node {
        Node::Text(text) => text.trim_matches(is_go_space).is_empty(),
        _ => false,
    })
}

/// `unicode.IsSpace`, which Go's `bytes.TrimSpace` uses.
fn is_go_space(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{a0}') || c.is_whitespace()
}

/// How an item list ended.
enum Stop {
    End,
    Else(usize),
}

struct Parser<'a> {
    lines: LineIndex<'a>,
    tokens: Vec<Token>,
    next: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    functions: &'a dyn Functions,
    definitions: Definitions,
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> TemplateError {
        let pos = self.lines.pos(offset);
        TemplateError {
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    fn pos(&self, offset: usize) -> Pos {
        self.lines.pos(offset)
    }

    /// The next token. The stream always ends with Eof or Error and is never read past that.
    fn next_token(&mut self) -> Token {
        let token = self.peek_token();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn peek_token(&self) -> Token {
        match self.tokens.get(self.next).or(self.tokens.last()) {
            Some(token) => token.clone(),
            None => Token {
                kind: Kind::Eof,
                pos: 0,
                text: String::new(),
            },
        }
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next_token();
            if token.kind != Kind::Space {
                return token;
            }
        }
    }

    /// Skips spaces and returns the following token without consuming it.
    fn peek_non_space(&mut self) -> Token {
        while self.peek_token().kind == Kind::Space {
            self.next += 1;
        }
        self.peek_token()
    }

    fn backup(&mut self) {
        self.next = self.next.saturating_sub(1);
    }

    fn unexpected(&self, token: &Token, context: &str) -> TemplateError {
        match token.kind {
            Kind::Error => self.error(token.pos, token.text.clone()),
            _ => self.error(
                token.pos,
                format!("unexpected {} in {context}", describe(token)),
            ),
        }
    }

    fn enter(&mut self, offset: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(offset, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_root(&mut self) -> Result<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            let token = self.peek_token();
            if token.kind == Kind::LeftDelim {
                // `{{define}}` is only recognised at the top level, as in Go.
                let at = self.next;
                self.next_token();
                let keyword = self.next_non_space();
                if keyword.kind == Kind::Define {
                    self.definition(keyword.pos)?;
                    continue;
                }
                self.next = at;
            }
            match token.kind {
                Kind::Eof => return Ok(root),
                _ => match self.text_or_action()? {
                    Item::Node(node) => root.push(node),
                    Item::Nothing => {}
                    Item::End(pos) => return Err(self.error(pos, "unexpected {{end}}")),
                    Item::Else(pos) => return Err(self.error(pos, "unexpected {{else}}")),
                },
            }
        }
    }

    /// `{{define "name"}}...{{end}}` after its keyword: a template with its own variables.
    fn definition(&mut self, keyword_at: usize) -> Result<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        self.expect_right_delim(CONTEXT)?;
        let list = self.template_body(("define", keyword_at), CONTEXT)?;
        self.add_definition(name, list, keyword_at)
    }

    /// A `define` or `block` body through its `{{end}}`, with a fresh variable scope (only
    /// `$`) and outside any `range`.
    fn template_body(&mut self, opener: (&str, usize), context: &str) -> Result<Vec<Node>> {
        self.enter(opener.1)?;
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let listed = self.item_list(opener);
        self.vars = vars;
        self.range_depth = range_depth;
        self.depth -= 1;
        let (list, stop) = listed?;
        if let Stop::Else(pos) = stop {
            return Err(self.error(pos, format!("unexpected {{{{else}}}} in {context}")));
        }
        Ok(list)
    }

    /// Go's `Tree.add`: an empty definition never replaces an earlier one and is replaced by
    /// a later one; two non-empty definitions of one name in one parse are an error.
    fn add_definition(&mut self, name: String, list: Vec<Node>, at: usize) -> Result<()> {
        match self.definitions.get(&name) {
            Some(old) if !is_empty_tree(old) => {
                if !is_empty_tree(&list) {
                    return Err(self.error(
                        at,
                        format!("template: multiple definition of template {name:?}"),
                    ));
                }
            }
            _ => {
                self.definitions.insert(name, list);
            }
        }
        Ok(())
    }

    /// The quoted name after `define`, `template` or `block`.
    fn template_name(&self, token: &Token, context: &str) -> Result<String> {
        match token.kind {
            Kind::String => unquote(&token.text).map_err(|m| self.error(token.pos, m)),
            Kind::RawString => Ok(token
                .text
                .get(1..token.text.len().saturating_sub(1))
                .unwrap_or("")
                .replace('\r', "")),
            _ => Err(self.unexpected(token, context)),
        }
    }

    /// `{{template "name"}}` or `{{template "name" pipeline}}` after its keyword. Its errors
    /// point at the name, as Go's do.
    fn template_call(&mut self) -> Result<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.peek_non_space().kind == Kind::RightDelim {
            self.next_token();
            None
        } else {
            // Variables the pipeline declares persist until the enclosing block's end.
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        };
        Ok(Node::Template(TemplateCall {
            name,
            pos: self.pos(token.pos),
            pipe,
        }))
    }

    /// `{{block "name" pipeline}}default{{end}}`: defines `name` and calls it in place.
    fn block(&mut self, keyword_at: usize) -> Result<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        let list = self.template_body(("block", keyword_at), CONTEXT)?;
        self.add_definition(name.clone(), list, keyword_at)?;
        Ok(Node::Template(TemplateCall {
            name,
            pos: self.pos(token.pos),
            pipe: Some(pipe),
        }))
    }

    /// Items up to `{{end}}` or `{{else}}`; `opener` names the block for the EOF message.
    fn item_list(&mut self, opener: (&str, usize)) -> Result<(Vec<Node>, Stop)> {
        let mut list = Vec::new();
        loop {
            let token = self.peek_non_space();
            if token.kind == Kind::Eof {
                let at = self.pos(opener.1);
                return Err(self.error(
                    token.pos,
                    format!(
                        "unexpected EOF: {{{{{}}}}} at {}:{} has no {{{{end}}}}",
                        opener.0, at.line, at.column
                    ),
                ));
            }
            match self.text_or_action()? {
                Item::Node(node) => list.push(node),
                Item::Nothing => {}
                Item::End(_) => return Ok((list, Stop::End)),
                Item::Else(pos) => return Ok((list, Stop::Else(pos))),
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Text => Ok(Item::Node(Node::Text(token.text))),
            Kind::Comment => Ok(Item::Nothing),
            Kind::LeftDelim => self.action(),
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> Result<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::If => Ok(Item::Node(Node::If(self.control("if", token.pos)?))),
            Kind::With => Ok(Item::Node(Node::With(self.control("with", token.pos)?))),
            Kind::Range => Ok(Item::Node(Node::Range(self.control("range", token.pos)?))),
            Kind::Else => self.else_control(token.pos),
            Kind::End => {
                self.expect_right_delim("end")?;
                Ok(Item::End(token.pos))
            }
            Kind::Break | Kind::Continue => {
                let name = token.text.as_str();
                self.expect_right_delim(&format!("{{{{{name}}}}}"))?;
                if self.range_depth == 0 {
                    return Err(
                        self.error(token.pos, format!("{{{{{name}}}}} outside {{{{range}}}}"))
                    );
                }
                Ok(Item::Node(if token.kind == Kind::Break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Kind::Template => Ok(Item::Node(self.template_call()?)),
            Kind::Block => Ok(Item::Node(self.block(token.pos)?)),
            _ => {
                self.backup();
                Ok(Item::Node(Node::Action(
                    self.pipeline("command", Kind::RightDelim)?,
                )))
            }
        }
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<()> {
        let token = self.next_non_space();
        if token.kind != Kind::RightDelim {
            return Err(self.unexpected(&token, context));
        }
        Ok(())
    }

    fn else_control(&mut self, else_at: usize) -> Result<Item> {
        // `{{else if ...}}` and `{{else with ...}}` leave the keyword pending for the block.
        let peek = self.peek_non_space();
        if !matches!(peek.kind, Kind::If | Kind::With) {
            self.expect_right_delim("else")?;
        }
        Ok(Item::Else(else_at))
    }

    /// `if`, `with` or `range` after its keyword, through its `{{end}}`.
    fn control(&mut self, context: &str, keyword_at: usize) -> Result<Branch> {
        self.enter(keyword_at)?;
        let scope = self.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list((context, keyword_at));
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, stop) = listed?;
        let else_list = match stop {
            Stop::End => None,
            Stop::Else(_) => {
                let chained = self.peek_token().kind;
                if context == "if" && chained == Kind::If {
                    let keyword = self.next_token();
                    Some(vec![Node::If(self.control("if", keyword.pos)?)])
                } else if context == "with" && chained == Kind::With {
                    let keyword = self.next_token();
                    Some(vec![Node::With(self.control("with", keyword.pos)?)])
                } else {
                    let (else_list, stop) = self.item_list((context, keyword_at))?;
                    if let Stop::Else(pos) = stop {
                        return Err(self.error(pos, "expected end; found {{else}}"));
                    }
                    Some(else_list)
                }
            }
        };
        self.vars.truncate(scope);
        self.depth -= 1;
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> Result<Pipeline> {
        let start = self.peek_non_space();
        let mut pipe = Pipeline {
            pos: self.pos(start.pos),
            decl: Vec::new(),
            is_assign: false,
            commands: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and in range `$i, $v :=`.
        loop {
            let variable = self.peek_non_space();
            if variable.kind != Kind::Variable {
                break;
            }
            let before = self.next;
            self.next_token();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    self.next_token();
                    pipe.is_assign = next.kind == Kind::Assign;
                    if pipe.is_assign && !self.vars.contains(&variable.text) {
                        return Err(self.error(
                            variable.pos,
                            format!("undefined variable {:?}", variable.text),
                        ));
                    }
                    pipe.decl.push(variable.text.clone());
                    self.vars.push(variable.text);
                    break;
                }
                Kind::Char if next.text == "," => {
                    self.next_token();
                    pipe.decl.push(variable.text.clone());
                    self.vars.push(variable.text);
                    if context == "range" && pipe.decl.len() < 2 {
                        let after = self.peek_non_space();
                        if matches!(
                            after.kind,
                            Kind::Variable | Kind::RightDelim | Kind::RightParen
                        ) {
                            continue;
                        }
                        return Err(self.error(after.pos, "range can only initialize variables"));
                    }
                    return Err(self.error(next.pos, format!("too many declarations in {context}")));
                }
                _ => {
                    self.next = before;
                    break;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            if token.kind == end {
                return self.check_pipeline(pipe, context, token.pos);
            }
            match token.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    pipe.commands.push(self.command()?);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: Pipeline, context: &str, end_at: usize) -> Result<Pipeline> {
        if pipe.commands.is_empty() {
            return Err(self.error(end_at, format!("missing value for {context}")));
        }
        for (stage, command) in pipe.commands.iter().enumerate() {
            let Some(first) = command.args.first() else {
                continue;
            };
            if stage > 0
                && matches!(
                    first,
                    Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::String(..)
                )
            {
                return Err(self.error_at(
                    first.pos(),
                    format!("non executable command in pipeline stage {}", stage + 1),
                ));
            }
            if let Arg::Function(Function::Builtin(builtin), pos) = first {
                let count = command.args.len() - 1 + usize::from(stage > 0);
                self.check_arity(*builtin, count, *pos)?;
            }
        }
        Ok(pipe)
    }

    fn error_at(&self, pos: Pos, message: String) -> TemplateError {
        TemplateError {
            line: pos.line,
            column: pos.column,
            message,
        }
    }

    fn check_arity(&self, builtin: Builtin, count: usize, pos: Pos) -> Result<()> {
        let (want, exact) = builtin.arity();
        if exact && count != want {
            return Err(self.error_at(
                pos,
                format!(
                    "wrong number of args for {}: want {want} got {count}",
                    builtin.name()
                ),
            ));
        }
        if !exact && count < want {
            return Err(self.error_at(
                pos,
                format!(
                    "wrong number of args for {}: want at least {want} got {count}",
                    builtin.name()
                ),
            ));
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command> {
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                // A function named as an argument is called with no arguments.
                if let (false, Arg::Function(Function::Builtin(builtin), pos)) =
                    (args.is_empty(), &operand)
                {
                    self.check_arity(*builtin, 0, *pos)?;
                }
                args.push(operand);
            }
            let token = self.next_token();
            match token.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            let token = self.peek_token();
            return Err(self.error(token.pos, "empty command"));
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if self.peek_token().kind != Kind::Field {
            return Ok(Some(term));
        }
        let mut fields = Vec::new();
        while self.peek_token().kind == Kind::Field {
            let field = self.next_token();
            fields.push(field.text.trim_start_matches('.').to_owned());
        }
        Ok(Some(match term {
            Arg::Field(mut chain, pos) => {
                chain.extend(fields);
                Arg::Field(chain, pos)
            }
            Arg::Variable(name, mut chain, pos) => {
                chain.extend(fields);
                Arg::Variable(name, chain, pos)
            }
            Arg::Bool(..) | Arg::String(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                let pos = term.pos();
                return Err(self.error_at(
                    pos,
                    format!("unexpected . after term {:?}", term.describe()),
                ));
            }
            Arg::Function(Function::Builtin(builtin), pos) => {
                self.check_arity(builtin, 0, pos)?;
                Arg::Chain(
                    Box::new(Arg::Function(Function::Builtin(builtin), pos)),
                    fields,
                    pos,
                )
            }
            other => {
                let pos = other.pos();
                Arg::Chain(Box::new(other), fields, pos)
            }
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let token = self.next_non_space();
        let pos = self.pos(token.pos);
        Ok(Some(match token.kind {
            Kind::Identifier => {
                // The caller's functions come first, as in Go (a FuncMap overrides built-ins).
                let function = if self.functions.has(&token.text) {
                    Function::External(token.text)
                } else if let Some(builtin) = Builtin::lookup(&token.text) {
                    Function::Builtin(builtin)
                } else if let Some(reason) = self.functions.refused(&token.text) {
                    return Err(self.error(token.pos, reason));
                } else {
                    return Err(
                        self.error(token.pos, format!("function {:?} not defined", token.text))
                    );
                };
                Arg::Function(function, pos)
            }
            Kind::Dot => Arg::Dot(pos),
            Kind::Nil => Arg::Nil(pos),
            Kind::Variable => {
                if !self.vars.contains(&token.text) {
                    return Err(
                        self.error(token.pos, format!("undefined variable {:?}", token.text))
                    );
                }
                Arg::Variable(token.text, Vec::new(), pos)
            }
            Kind::Field => Arg::Field(vec![token.text.trim_start_matches('.').to_owned()], pos),
            Kind::Bool => Arg::Bool(token.text == "true", pos),
            Kind::Number => {
                let number = parse_number(&token.text).map_err(|m| self.error(token.pos, m))?;
                Arg::Number(number, pos, token.text)
            }
            Kind::CharConstant => {
                let c = unquote_char(&token.text).map_err(|m| self.error(token.pos, m))?;
                Arg::Number(Number::Int(i64::from(u32::from(c))), pos, token.text)
            }
            Kind::LeftParen => {
                self.enter(token.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.depth -= 1;
                Arg::Pipeline(Box::new(pipe))
            }
            Kind::String => {
                let s = unquote(&token.text).map_err(|m| self.error(token.pos, m))?;
                Arg::String(s, pos, token.text)
            }
            Kind::RawString => {
                // Go's strconv.Unquote drops carriage returns from raw strings.
                let inner = token
                    .text
                    .get(1..token.text.len().saturating_sub(1))
                    .unwrap_or("");
                Arg::String(inner.replace('\r', ""), pos, token.text)
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Item {
    Node(Node),
    /// A comment.
    Nothing,
    End(usize),
    Else(usize),
}

/// A token as Go's parser names it in "unexpected" messages.
fn describe(token: &Token) -> String {
    match token.kind {
        Kind::Eof => "EOF".to_owned(),
        Kind::If
        | Kind::Else
        | Kind::End
        | Kind::Range
        | Kind::With
        | Kind::Break
        | Kind::Continue
        | Kind::Nil
        | Kind::Define
        | Kind::Template
        | Kind::Block => format!("<{}>", token.text),
        _ if token.text.chars().count() > 10 => {
            let head: String = token.text.chars().take(10).collect();
            format!("{}...", super::format::quote(&head, false))
        }
        _ => super::format::quote(&token.text, false),
    }
}

/// A number literal as Go's parser and `idealConstant` read it: an int unless it has a
/// fraction or exponent (hex ints and char constants stay ints).
pub(super) fn parse_number(text: &str) -> std::result::Result<Number, String> {
    let illegal = || {
        format!(
            "illegal number syntax: {}",
            super::format::quote(text, false)
        )
    };
    if text.ends_with('i') {
        return Err(format!("complex numbers are not supported: {text}"));
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1
        && lower.starts_with('0')
        && lower.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    let is_float_syntax = if radix == 16 {
        digits.contains(['.', 'p'])
    } else {
        digits.contains(['.', 'e'])
    };
    if !is_float_syntax {
        if !underscores_ok(digits, prefixed) {
            return Err(illegal());
        }
        let clean: String = digits.chars().filter(|&c| c != '_').collect();
        if clean.is_empty() {
            return Err(illegal());
        }
        return match u64::from_str_radix(&clean, radix) {
            Ok(magnitude) => {
                let value = if negative {
                    0i64.checked_sub_unsigned(magnitude)
                } else {
                    i64::try_from(magnitude).ok()
                };
                value
                    .map(Number::Int)
                    .ok_or_else(|| format!("{text} overflows int"))
            }
            Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => Err(format!(
                "integer overflow: {}",
                super::format::quote(text, false)
            )),
            Err(_) => Err(illegal()),
        };
    }
    if radix == 16 {
        return hex_float(digits)
            .map(|f| Number::Float(if negative { -f } else { f }))
            .ok_or_else(illegal);
    }
    if radix != 10 {
        return Err(illegal());
    }
    if !underscores_ok(digits, false) || digits.starts_with('_') {
        return Err(illegal());
    }
    let clean: String = unsigned.chars().filter(|&c| c != '_').collect();
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Number::Float(if negative { -f } else { f })),
        _ => Err(illegal()),
    }
}

/// A hexadecimal float after its `0x` (lower-cased): hex digits with an optional point, then a
/// mandatory `p` and a decimal power of two, as Go's `strconv.ParseFloat` reads it.
fn hex_float(digits: &str) -> Option<f64> {
    let (mantissa, exponent) = digits.split_once('p')?;
    if !underscores_ok(mantissa, true)
        || !underscores_ok(exponent.trim_start_matches(['+', '-']), false)
    {
        return None;
    }
    let mantissa: String = mantissa.chars().filter(|&c| c != '_').collect();
    let exponent: String = exponent.chars().filter(|&c| c != '_').collect();
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((&mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in whole.chars().chain(fraction.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let fraction_bits = i32::try_from(fraction.len()).ok()?.checked_mul(4)?;
    let power: i32 = exponent.parse().ok()?;
    let value = value * 2f64.powi(power.checked_sub(fraction_bits)?);
    value.is_finite().then_some(value)
}

/// Go's rule: an underscore only between digits, or right after a base prefix.
fn underscores_ok(digits: &str, prefixed: bool) -> bool {
    let bytes = digits.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'_' {
            continue;
        }
        let before_ok = if i == 0 {
            prefixed
        } else {
            bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric)
        };
        let after_ok = bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphanumeric());
        if !before_ok || !after_ok {
            return false;
        }
    }
    true
}

/// Decodes a double-quoted Go string literal, quotes included.
pub(super) fn unquote(text: &str) -> std::result::Result<String, String> {
    let bad = || format!("bad string literal {text}: invalid syntax");
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\n' {
            return Err(bad());
        }
        if c != '\\' {
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        match escape(&mut chars, '"').ok_or_else(bad)? {
            Escaped::Char(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Escaped::Byte(b) => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("bad string literal {text}: not valid UTF-8"))
}

/// Decodes a Go character constant, quotes included.
fn unquote_char(text: &str) -> std::result::Result<char, String> {
    let bad = || format!("malformed character constant: {text}");
    let inner = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .ok_or_else(bad)?;
    let mut chars = inner.chars().peekable();
    let c = match chars.next().ok_or_else(bad)? {
        '\\' => match escape(&mut chars, '\'').ok_or_else(bad)? {
            Escaped::Char(c) => c,
            Escaped::Byte(b) => char::from(b),
        },
        '\'' => return Err(bad()),
        c => c,
    };
    if chars.next().is_some() {
        return Err(bad());
    }
    Ok(c)
}

enum Escaped {
    Char(char),
    /// `\x` and octal escapes give bytes, which may be part of a UTF-8 sequence.
    Byte(u8),
}

/// One escape after its backslash, as Go's `strconv.UnquoteChar`.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) -> Option<Escaped> {
    let c = chars.next()?;
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            value = value * 16 + chars.next()?.to_digit(16)?;
        }
        Some(value)
    };
    Some(match c {
        'a' => Escaped::Char('\u{7}'),
        'b' => Escaped::Char('\u{8}'),
        'f' => Escaped::Char('\u{c}'),
        'n' => Escaped::Char('\n'),
        'r' => Escaped::Char('\r'),
        't' => Escaped::Char('\t'),
        'v' => Escaped::Char('\u{b}'),
        '\\' => Escaped::Char('\\'),
        _ if c == quote => Escaped::Char(c),
        'x' => Escaped::Byte(u8::try_from(hex(chars, 2)?).ok()?),
        'u' => Escaped::Char(char::from_u32(hex(chars, 4)?)?),
        'U' => Escaped::Char(char::from_u32(hex(chars, 8)?)?),
        '0'..='7' => {
            let mut value = c.to_digit(8)?;
            for _ in 0..2 {
                value = value * 8 + chars.next()?.to_digit(8)?;
            }
            Escaped::Byte(u8::try_from(value).ok()?)
        }
        _ => return None,
    })
}
