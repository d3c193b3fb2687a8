//! The lexer: template text into tokens, following Go's `text/template/parse/lex.go` rule for
//! rule, since trimming and delimiter handling decide the output byte for byte.
//!
//! It owns delimiters, `{{- `/` -}}` trimming, comments and the token grammar inside actions.
//! It must not judge structure (that is the parser's); a lexical error ends the token stream
//! with an [`Kind::Error`] token, so that earlier parse errors are still reported first, as Go's
//! concurrent lexer does.

/// One token; `pos` is its byte offset in the template text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Kind,
    pub pos: usize,
    /// The token's source text (for messages), or the text itself for [`Kind::Text`].
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Plain text between actions, already trimmed.
    Text,
    LeftDelim,
    RightDelim,
    /// A `{{/* */}}` comment: produces nothing.
    Comment,
    /// A run of spaces inside an action; separates arguments.
    Space,
    Declare,
    Assign,
    Pipe,
    LeftParen,
    RightParen,
    /// A printable ASCII character with no other meaning, such as the `,` of `range $i, $v`.
    Char,
    String,
    RawString,
    CharConstant,
    Number,
    /// `$` or `$name`.
    Variable,
    /// `.Name`.
    Field,
    Dot,
    Identifier,
    Bool,
    Nil,
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    Define,
    Template,
    Block,
    Eof,
    /// A lexical error; `text` holds the message. Always the last token.
    Error,
}

const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

/// Go's `isSpace` inside actions and for trimming.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Go's `isAlphaNumeric`.
fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `-` followed by a space: the trim marker after a left delimiter.
fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(char::from(b[1]))
}

/// A space followed by `-`: the trim marker before a right delimiter.
fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(char::from(b[0])) && b[1] == b'-'
}

/// The length of the marker, `- ` or ` -`.
const TRIM_MARKER_LEN: usize = 2;

/// Tokenises `text` with the given delimiters (both non-empty). The last token is
/// [`Kind::Eof`] or [`Kind::Error`].
pub(super) fn lex(text: &str, left: &str, right: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        text,
        left,
        right,
        pos: 0,
        tokens: Vec::new(),
        paren_depth: 0,
    };
    lexer.run();
    lexer.tokens
}

struct Lexer<'a> {
    text: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    paren_depth: i32,
}

/// Ends the lexer's run with an error token.
struct Stop;

impl Lexer<'_> {
    fn run(&mut self) {
        while self.lex_text().is_ok() {}
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn emit(&mut self, kind: Kind, start: usize) {
        let text = self.text.get(start..self.pos).unwrap_or("").to_owned();
        self.tokens.push(Token {
            kind,
            pos: start,
            text,
        });
    }

    fn error(&mut self, pos: usize, message: String) -> Result<(), Stop> {
        self.tokens.push(Token {
            kind: Kind::Error,
            pos,
            text: message,
        });
        Err(Stop)
    }

    /// Text up to the next left delimiter, then the action or comment it opens.
    /// Returns Err when the stream has ended (EOF or error).
    fn lex_text(&mut self) -> Result<(), Stop> {
        let start = self.pos;
        let Some(offset) = self.rest().find(self.left) else {
            if self.pos < self.text.len() {
                self.pos = self.text.len();
                self.emit(Kind::Text, start);
            }
            self.tokens.push(Token {
                kind: Kind::Eof,
                pos: self.text.len(),
                text: String::new(),
            });
            return Err(Stop);
        };
        let delim_at = start + offset;
        let after_delim = delim_at + self.left.len();
        let trim = has_left_trim_marker(self.text.get(after_delim..).unwrap_or(""));
        let mut segment = self.text.get(start..delim_at).unwrap_or("");
        if trim {
            segment = segment.trim_end_matches(is_space);
        }
        if !segment.is_empty() {
            self.tokens.push(Token {
                kind: Kind::Text,
                pos: start,
                text: segment.to_owned(),
            });
        }
        let after_marker = after_delim + if trim { TRIM_MARKER_LEN } else { 0 };
        self.pos = after_marker;
        if self.rest().starts_with(LEFT_COMMENT) {
            return self.lex_comment(delim_at);
        }
        self.tokens.push(Token {
            kind: Kind::LeftDelim,
            pos: delim_at,
            text: self.left.to_owned(),
        });
        self.paren_depth = 0;
        self.lex_inside_action(delim_at)
    }

    fn lex_comment(&mut self, delim_at: usize) -> Result<(), Stop> {
        self.pos += LEFT_COMMENT.len();
        let Some(end) = self.rest().find(RIGHT_COMMENT) else {
            return self.error(delim_at, "unclosed comment".to_owned());
        };
        self.pos += end + RIGHT_COMMENT.len();
        let Some(trim) = self.at_right_delim() else {
            return self.error(delim_at, "comment ends before closing delimiter".to_owned());
        };
        self.tokens.push(Token {
            kind: Kind::Comment,
            pos: delim_at,
            text: String::new(),
        });
        self.skip_right_delim(trim);
        Ok(())
    }

    /// Whether a right delimiter (possibly trim-marked) starts here; Some(trim) if so.
    fn at_right_delim(&self) -> Option<bool> {
        let rest = self.rest();
        if has_right_trim_marker(rest)
            && rest
                .get(TRIM_MARKER_LEN..)
                .is_some_and(|r| r.starts_with(self.right))
        {
            return Some(true);
        }
        if rest.starts_with(self.right) {
            return Some(false);
        }
        None
    }

    fn skip_right_delim(&mut self, trim: bool) {
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += self.right.len();
        if trim {
            let rest = self.rest();
            self.pos += rest.len() - rest.trim_start_matches(is_space).len();
        }
    }

    /// Go's `atTerminator`: what may follow a field, variable or identifier.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(self.right),
        }
    }

    fn lex_inside_action(&mut self, delim_at: usize) -> Result<(), Stop> {
        loop {
            if let Some(trim) = self.at_right_delim() {
                if self.paren_depth != 0 {
                    return self.error(self.pos, "unclosed left paren".to_owned());
                }
                let start = self.pos;
                self.tokens.push(Token {
                    kind: Kind::RightDelim,
                    pos: start,
                    text: self.right.to_owned(),
                });
                self.skip_right_delim(trim);
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                return self.error(delim_at, "unclosed action".to_owned());
            };
            self.pos += c.len_utf8();
            match c {
                _ if is_space(c) => self.lex_space(start),
                '=' => self.emit(Kind::Assign, start),
                ':' => {
                    if self.peek() != Some('=') {
                        return self.error(start, "expected :=".to_owned());
                    }
                    self.pos += 1;
                    self.emit(Kind::Declare, start);
                }
                '|' => self.emit(Kind::Pipe, start),
                '"' => self.lex_quote(start)?,
                '`' => self.lex_raw_quote(start)?,
                '\'' => self.lex_char(start)?,
                '$' => self.lex_field_or_variable(start, Kind::Variable)?,
                '.' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => {
                    self.lex_field_or_variable(start, Kind::Field)?
                }
                '.' | '+' | '-' | '0'..='9' => {
                    self.pos = start;
                    self.lex_number(start)?;
                }
                '(' => {
                    self.paren_depth += 1;
                    self.emit(Kind::LeftParen, start);
                }
                ')' => {
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return self.error(start, "unexpected right paren".to_owned());
                    }
                    self.emit(Kind::RightParen, start);
                }
                _ if is_alphanumeric(c) => self.lex_identifier(start)?,
                _ if c.is_ascii() && !c.is_ascii_control() => self.emit(Kind::Char, start),
                _ => {
                    return self.error(
                        start,
                        format!("unrecognized character in action: {}", describe_char(c)),
                    );
                }
            }
        }
    }

    fn lex_space(&mut self, start: usize) {
        let mut count = 1;
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
            count += 1;
        }
        // A trim-marked right delimiter starts with a space: leave that space for it.
        let last_space = self.pos - 1;
        let tail = self.text.get(last_space..).unwrap_or("");
        if has_right_trim_marker(tail)
            && tail
                .get(TRIM_MARKER_LEN..)
                .is_some_and(|r| r.starts_with(self.right))
        {
            self.pos = last_space;
            if count == 1 {
                return;
            }
        }
        self.emit(Kind::Space, start);
    }

    fn lex_quote(&mut self, start: usize) -> Result<(), Stop> {
        loop {
            let Some(c) = self.peek() else {
                return self.error(start, "unterminated quoted string".to_owned());
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.peek() {
                    Some(e) if e != '\n' => self.pos += e.len_utf8(),
                    _ => return self.error(start, "unterminated quoted string".to_owned()),
                },
                '\n' => return self.error(start, "unterminated quoted string".to_owned()),
                '"' => break,
                _ => {}
            }
        }
        self.emit(Kind::String, start);
        Ok(())
    }

    fn lex_raw_quote(&mut self, start: usize) -> Result<(), Stop> {
        let Some(end) = self.rest().find('`') else {
            return self.error(start, "unterminated raw quoted string".to_owned());
        };
        self.pos += end + 1;
        self.emit(Kind::RawString, start);
        Ok(())
    }

    fn lex_char(&mut self, start: usize) -> Result<(), Stop> {
        loop {
            let Some(c) = self.peek() else {
                return self.error(start, "unterminated character constant".to_owned());
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.peek() {
                    Some(e) if e != '\n' => self.pos += e.len_utf8(),
                    _ => return self.error(start, "unterminated character constant".to_owned()),
                },
                '\n' => return self.error(start, "unterminated character constant".to_owned()),
                '\'' => break,
                _ => {}
            }
        }
        self.emit(Kind::CharConstant, start);
        Ok(())
    }

    /// After `$` or `.`: a bare `$`/`.`, or a name.
    fn lex_field_or_variable(&mut self, start: usize, kind: Kind) -> Result<(), Stop> {
        if self.at_terminator() {
            self.emit(
                if kind == Kind::Variable {
                    Kind::Variable
                } else {
                    Kind::Dot
                },
                start,
            );
            return Ok(());
        }
        while let Some(c) = self.peek().filter(|&c| is_alphanumeric(c)) {
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let bad = self.peek().map(describe_char).unwrap_or_default();
            return self.error(self.pos, format!("bad character {bad}"));
        }
        self.emit(kind, start);
        Ok(())
    }

    fn lex_identifier(&mut self, start: usize) -> Result<(), Stop> {
        while let Some(c) = self.peek().filter(|&c| is_alphanumeric(c)) {
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let bad = self.peek().map(describe_char).unwrap_or_default();
            return self.error(self.pos, format!("bad character {bad}"));
        }
        let kind = match self.text.get(start..self.pos).unwrap_or("") {
            "if" => Kind::If,
            "else" => Kind::Else,
            "end" => Kind::End,
            "range" => Kind::Range,
            "with" => Kind::With,
            "break" => Kind::Break,
            "continue" => Kind::Continue,
            "define" => Kind::Define,
            "template" => Kind::Template,
            "block" => Kind::Block,
            "nil" => Kind::Nil,
            "true" | "false" => Kind::Bool,
            _ => Kind::Identifier,
        };
        self.emit(kind, start);
        Ok(())
    }

    /// Go's `scanNumber`: the token's extent only; its value is checked by the parser.
    fn lex_number(&mut self, start: usize) -> Result<(), Stop> {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek().filter(|&c| is_alphanumeric(c)) {
            self.pos += c.len_utf8();
            let text = self.text.get(start..self.pos).unwrap_or("").to_owned();
            return self.error(
                start,
                format!("bad number syntax: {}", super::format::quote(&text, false)),
            );
        }
        self.emit(Kind::Number, start);
        Ok(())
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }
}

/// Go's `%#U`: `U+002D '-'`.
fn describe_char(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}
