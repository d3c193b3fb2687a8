//! The renderer: walks the parsed tree over a dot value, as Go's `text/template/exec.go` does,
//! and implements the built-in functions.
//!
//! It owns variable scoping, truthiness of branches, `range` iteration, field lookup and the
//! built-ins' semantics (comparison kinds, `index`, short-circuit `and`/`or`). It must not
//! panic on any tree or data: every lookup is checked, and recursion follows the parse tree,
//! whose depth the parser bounds.

use super::format;
use super::parse::{Arg, Branch, Builtin, Command, Function, Node, Number, Pipeline, Pos};
use super::value::Value;
use super::{Functions, RenderOptions, TemplateError};

type Result<T> = std::result::Result<T, TemplateError>;

/// How a walk ended: normally, or by `{{break}}`/`{{continue}}` unwinding to the nearest range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct State<'a> {
    /// The initial dot. When it is nil it stands for Go's invalid (absent) data, whose fields
    /// are quietly absent too, unlike a nil found in the data, whose fields are an error.
    pub root: &'a Value,
    pub functions: &'a mut dyn Functions,
    pub options: RenderOptions,
    /// Variables in scope, innermost last; `$` is first.
    pub vars: Vec<(String, Value)>,
    pub out: String,
}

fn error(pos: Pos, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line: pos.line,
        column: pos.column,
        message: message.into(),
    }
}

impl State<'_> {
    pub(super) fn walk_list(&mut self, dot: &Value, list: &[Node]) -> Result<()> {
        self.walk_nodes(dot, list).map(|_| ())
    }

    fn walk_nodes(&mut self, dot: &Value, list: &[Node]) -> Result<Flow> {
        for node in list {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> Result<Flow> {
        match node {
            Node::Text(text) => self.out.push_str(text),
            Node::Action(pipe) => {
                // Variables declared here persist until the enclosing block's end.
                let value = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print_value(&value);
                }
            }
            Node::If(branch) => return self.walk_if_or_with(dot, branch, false),
            Node::With(branch) => return self.walk_if_or_with(dot, branch, true),
            Node::Range(branch) => return self.walk_range(dot, branch),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    /// How `{{ value }}` prints: Go's `fmt.Fprint`, except that nil is `<no value>`.
    fn print_value(&mut self, value: &Value) {
        match value {
            Value::Nil => self.out.push_str("<no value>"),
            Value::String(s) => self.out.push_str(s),
            other => self.out.push_str(&format::display(other)),
        }
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &Branch, is_with: bool) -> Result<Flow> {
        let scope = self.vars.len();
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let flow = if value.is_true() {
            if is_with {
                self.walk_nodes(&value, &branch.list)
            } else {
                self.walk_nodes(dot, &branch.list)
            }
        } else if let Some(else_list) = &branch.else_list {
            self.walk_nodes(dot, else_list)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(scope);
        flow
    }

    fn walk_range(&mut self, dot: &Value, branch: &Branch) -> Result<Flow> {
        let scope = self.vars.len();
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let items: Vec<(Value, Value)> = match value {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (Value::Int(i64::try_from(i).unwrap_or(i64::MAX)), item))
                .collect(),
            Value::Map(map) => map
                .into_iter()
                .map(|(k, v)| (Value::String(k), v))
                .collect(),
            // Go: an invalid value (nil) is not an error, just nothing to iterate.
            Value::Nil => Vec::new(),
            other => {
                return Err(error(
                    branch.pipe.pos,
                    format!("range can't iterate over {}", format::display(&other)),
                ));
            }
        };
        // The body's own variables live above this mark and are dropped each iteration.
        let body_scope = self.vars.len();
        let iterated = !items.is_empty();
        for (index, element) in items {
            self.bind_range_vars(&branch.pipe, index, element.clone())?;
            let flow = self.walk_nodes(&element, &branch.list);
            self.vars.truncate(body_scope);
            if flow? == Flow::Break {
                break;
            }
        }
        if let (false, Some(else_list)) = (iterated, &branch.else_list) {
            let flow = self.walk_nodes(dot, else_list);
            self.vars.truncate(scope);
            return flow;
        }
        self.vars.truncate(scope);
        Ok(Flow::Normal)
    }

    /// Sets `$v` (one variable) or `$i, $v` (two) for one iteration, as Go's `oneIteration`.
    fn bind_range_vars(&mut self, pipe: &Pipeline, index: Value, element: Value) -> Result<()> {
        match (pipe.decl.as_slice(), pipe.is_assign) {
            ([], _) => {}
            ([only], true) => self.set_var(pipe.pos, only, element)?,
            ([first, second], true) => {
                self.set_var(pipe.pos, first, index)?;
                self.set_var(pipe.pos, second, element)?;
            }
            (decl, false) => {
                // The pipeline pushed the declared variables last; overwrite them in place.
                let top = self.vars.len();
                if decl.len() == 2 {
                    if let Some(slot) = top.checked_sub(2).and_then(|i| self.vars.get_mut(i)) {
                        slot.1 = index;
                    }
                }
                if let Some(slot) = top.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
                    slot.1 = element;
                }
            }
            (_, true) => return Err(error(pipe.pos, "too many variables in range")),
        }
        Ok(())
    }

    fn set_var(&mut self, pos: Pos, name: &str, value: Value) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(error(pos, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipeline) -> Result<Value> {
        let mut value: Option<Value> = None;
        for command in &pipe.commands {
            // The previous command's result is this one's final argument.
            value = Some(self.eval_command(dot, command, value)?);
        }
        let value = value.unwrap_or_default();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe.pos, name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        command: &Command,
        last: Option<Value>,
    ) -> Result<Value> {
        let Some((first, rest)) = command.args.split_first() else {
            return Err(error(Pos { line: 1, column: 1 }, "empty command"));
        };
        let has_args = !rest.is_empty() || last.is_some();
        match first {
            Arg::Field(..) | Arg::Variable(..) | Arg::Chain(..) => {
                if let Arg::Variable(_, fields, _) = first {
                    if fields.is_empty() {
                        not_a_function(first, has_args)?;
                    }
                }
                self.eval_field_arg(dot, first, has_args)
            }
            Arg::Function(function, pos) => self.eval_function(dot, function, *pos, rest, last),
            Arg::Pipeline(pipe) => {
                not_a_function(first, has_args)?;
                self.eval_pipeline(dot, pipe)
            }
            Arg::Nil(pos) => Err(error(*pos, "nil is not a command")),
            _ => {
                not_a_function(first, has_args)?;
                self.eval_arg(dot, first)
            }
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> Result<Value> {
        Ok(match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => Value::Nil,
            Arg::Bool(b, _) => Value::Bool(*b),
            Arg::Number(Number::Int(i), _, _) => Value::Int(*i),
            Arg::Number(Number::Float(f), _, _) => Value::Float(*f),
            Arg::String(s, _, _) => Value::String(s.clone()),
            Arg::Field(..) | Arg::Variable(..) | Arg::Chain(..) => {
                self.eval_field_arg(dot, arg, false)?
            }
            Arg::Pipeline(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Function(function, pos) => self.eval_function(dot, function, *pos, &[], None)?,
        })
    }

    /// `.A.B`, `$x.A.B` or `(pipeline).A.B`. Walks by reference and clones only the result,
    /// so that `$.Data...` inside a long range does not copy all the data each time.
    fn eval_field_arg(&mut self, dot: &Value, arg: &Arg, has_args: bool) -> Result<Value> {
        match arg {
            Arg::Field(fields, pos) => {
                let is_root = std::ptr::eq(dot, self.root);
                self.eval_fields(dot, is_root, fields, has_args, *pos)
            }
            Arg::Variable(name, fields, pos) => {
                let value = match self.vars.iter().rev().find(|(n, _)| n == name) {
                    Some((_, value)) => value,
                    None => return Err(error(*pos, format!("undefined variable: {name}"))),
                };
                self.eval_fields(value, name == "$", fields, has_args, *pos)
            }
            Arg::Chain(base, fields, pos) => {
                if matches!(**base, Arg::Nil(_)) {
                    return Err(error(*pos, "indirection through explicit nil"));
                }
                let value = self.eval_arg(dot, base)?;
                self.eval_fields(&value, false, fields, has_args, *pos)
            }
            other => self.eval_arg(dot, other),
        }
    }

    /// `receiver.A.B...`. `is_root` says the receiver is the initial dot (or `$`): when that
    /// is nil it stands for Go's absent data, whose fields are quietly absent too, unlike a nil
    /// found in the data, whose fields are an error. `has_args` says the last field was given
    /// arguments, which only methods could take.
    fn eval_fields(
        &self,
        receiver: &Value,
        is_root: bool,
        fields: &[String],
        has_args: bool,
        pos: Pos,
    ) -> Result<Value> {
        if let (Value::Nil, true, Value::Nil) = (receiver, is_root, self.root) {
            if let (true, Some(name)) = (self.options.error_on_missing_key, fields.first()) {
                return Err(error(pos, format!("nil data; no entry for key {name:?}")));
            }
            return Ok(Value::Nil);
        }
        static NIL: Value = Value::Nil;
        let mut value = receiver;
        for (n, name) in fields.iter().enumerate() {
            value = match value {
                Value::Map(map) => {
                    if has_args && n + 1 == fields.len() {
                        return Err(error(
                            pos,
                            format!("{name} is not a method but has arguments"),
                        ));
                    }
                    match map.get(name) {
                        Some(found) => found,
                        None if self.options.error_on_missing_key => {
                            return Err(error(pos, format!("map has no entry for key {name:?}")));
                        }
                        None => &NIL,
                    }
                }
                // Go: a nil interface value (a missing key's result) cannot have fields.
                Value::Nil => {
                    return Err(error(
                        pos,
                        format!("nil pointer evaluating interface {{}}.{name}"),
                    ));
                }
                other => {
                    return Err(error(
                        pos,
                        format!("can't evaluate field {name} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(value.clone())
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        function: &Function,
        pos: Pos,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        match function {
            Function::Builtin(builtin @ (Builtin::And | Builtin::Or)) => {
                // Short-circuit: the first argument that decides is the result.
                let want = *builtin == Builtin::Or;
                let mut value = Value::Nil;
                for arg in args {
                    value = self.eval_arg(dot, arg)?;
                    if value.is_true() == want {
                        return Ok(value);
                    }
                }
                Ok(last.unwrap_or(value))
            }
            Function::Builtin(builtin) => {
                let values = self.eval_args(dot, args, last)?;
                call_builtin(*builtin, &values)
                    .map_err(|m| error(pos, format!("error calling {}: {m}", builtin.name())))
            }
            Function::External(name) => {
                let values = self.eval_args(dot, args, last)?;
                self.functions
                    .call(name, values)
                    .map_err(|m| error(pos, format!("error calling {name}: {m}")))
            }
        }
    }

    fn eval_args(&mut self, dot: &Value, args: &[Arg], last: Option<Value>) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.eval_arg(dot, arg)?);
        }
        values.extend(last);
        Ok(values)
    }
}

fn not_a_function(arg: &Arg, has_args: bool) -> Result<()> {
    if has_args {
        return Err(error(
            arg.pos(),
            format!("can't give argument to non-function {}", arg.describe()),
        ));
    }
    Ok(())
}

/// Runs a built-in other than `and`/`or`; arity was checked at parse time, and is checked
/// again here so that no slice pattern can fail.
fn call_builtin(builtin: Builtin, args: &[Value]) -> std::result::Result<Value, String> {
    let wrong = || format!("wrong number of args: got {}", args.len());
    match builtin {
        Builtin::And | Builtin::Or => Err("and/or are evaluated lazily".to_owned()),
        Builtin::Not => match args {
            [value] => Ok(Value::Bool(!value.is_true())),
            _ => Err(wrong()),
        },
        Builtin::Len => match args {
            [Value::String(s)] => Ok(Value::Int(len_i64(s.len()))),
            [Value::List(items)] => Ok(Value::Int(len_i64(items.len()))),
            [Value::Map(map)] => Ok(Value::Int(len_i64(map.len()))),
            [Value::Nil] => Err("len of nil pointer".to_owned()),
            [other] => Err(format!("len of type {}", other.type_name())),
            _ => Err(wrong()),
        },
        Builtin::Index => match args.split_first() {
            Some((item, indexes)) => index(item, indexes),
            None => Err(wrong()),
        },
        Builtin::Eq => match args.split_first() {
            Some((first, rest)) if !rest.is_empty() => {
                for other in rest {
                    if equal(first, other)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            _ => Err("missing argument for comparison".to_owned()),
        },
        Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => {
            let [a, b] = args else { return Err(wrong()) };
            let result = match builtin {
                Builtin::Ne => !equal(a, b)?,
                Builtin::Lt => less(a, b)?,
                Builtin::Le => less(a, b)? || equal(a, b)?,
                Builtin::Gt => !(less(a, b)? || equal(a, b)?),
                _ => !less(a, b)?,
            };
            Ok(Value::Bool(result))
        }
        Builtin::Print => Ok(Value::String(format::sprint(args))),
        Builtin::Println => Ok(Value::String(format::sprintln(args))),
        Builtin::Printf => match args.split_first() {
            Some((Value::String(fmt), rest)) => Ok(Value::String(format::sprintf(fmt, rest))),
            Some((other, _)) => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
            None => Err(wrong()),
        },
    }
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Go's `index item i j ...`: lists and strings by int, maps by string key (a missing key is
/// nil).
fn index(item: &Value, indexes: &[Value]) -> std::result::Result<Value, String> {
    static NIL: Value = Value::Nil;
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".to_owned());
    }
    let mut item = item;
    for (n, key) in indexes.iter().enumerate() {
        item = match (item, key) {
            (Value::Nil, _) => return Err("index of nil pointer".to_owned()),
            (Value::List(items), Value::Int(i)) => {
                let found = usize::try_from(*i).ok().and_then(|i| items.get(i));
                found.ok_or_else(|| format!("index out of range: {i}"))?
            }
            (Value::String(s), Value::Int(i)) => {
                // Go indexes a string's bytes; the result is a number, not a value to walk on.
                let found = usize::try_from(*i)
                    .ok()
                    .and_then(|i| s.as_bytes().get(i).copied());
                let byte = found.ok_or_else(|| format!("index out of range: {i}"))?;
                if n + 1 < indexes.len() {
                    return Err("can't index item of type uint8".to_owned());
                }
                return Ok(Value::Int(i64::from(byte)));
            }
            (Value::List(_) | Value::String(_), Value::Nil) => {
                return Err("cannot index slice/array with nil".to_owned());
            }
            (Value::List(_) | Value::String(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
            (Value::Map(map), Value::String(k)) => map.get(k).unwrap_or(&NIL),
            (Value::Map(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ));
            }
            (other, _) => {
                return Err(format!("can't index item of type {}", other.type_name()));
            }
        };
    }
    Ok(item.clone())
}

/// The kinds Go's comparisons understand.
#[derive(PartialEq, Eq)]
enum BasicKind {
    Bool,
    Int,
    Float,
    String,
}

fn basic_kind(value: &Value) -> Option<BasicKind> {
    match value {
        Value::Bool(_) => Some(BasicKind::Bool),
        Value::Int(_) => Some(BasicKind::Int),
        Value::Float(_) => Some(BasicKind::Float),
        Value::String(_) => Some(BasicKind::String),
        _ => None,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

/// Go's `eq` for two operands: same basic kinds compare by value; nil equals only nil and is
/// unequal (not an error) to anything else; different kinds are an error.
fn equal(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) => {
            return Err(format!("non-comparable type {}", a.type_name()));
        }
        _ => return Err(BAD_COMPARISON.to_owned()),
    })
}

/// Go's `lt`: ints, floats and strings only, of the same kind.
fn less(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    let (Some(ka), Some(kb)) = (basic_kind(a), basic_kind(b)) else {
        return Err(BAD_COMPARISON_TYPE.to_owned());
    };
    if ka != kb {
        return Err(BAD_COMPARISON.to_owned());
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        _ => return Err(BAD_COMPARISON_TYPE.to_owned()),
    })
}
