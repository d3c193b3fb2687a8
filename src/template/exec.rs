//! The renderer: walks the parsed tree over a dot value, as Go's `text/template/exec.go` does,
//! and implements the built-in functions.
//!
//! It owns variable scoping, truthiness of branches, `range` iteration, field lookup and the
//! built-ins' semantics (comparison kinds, `index`, short-circuit `and`/`or`). It must not
//! panic on any tree or data: every lookup is checked, and recursion follows the parse tree,
//! whose depth the parser bounds.

use super::format;
use super::parse::{
    Arg, Branch, Builtin, Command, Definitions, Function, Node, Number, Pipeline, Pos, TemplateCall,
};
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

/// How deep rendering may nest: `{{template}}` calls and the `if`/`with`/`range` blocks walked
/// inside them, counted together. Go bounds template calls alone, at 100000, on its growable
/// stacks; here a level costs up to about 4 KiB of stack in a debug build, so 300 levels stay
/// well inside a 2 MiB thread stack (tokio's worker default).
/// `tests::template_recursion_is_bounded` runs the worst case on such a thread. Without
/// `{{template}}` the parser's bound ([`super::parse::MAX_DEPTH`], 200) is the lower one.
pub(super) const MAX_EXEC_DEPTH: usize = 300;

pub(super) struct State<'a> {
    /// The current template's initial dot (the data, or a `{{template}}` call's argument).
    pub root: *const Value,
    /// Whether that dot is absent (Go's invalid value: no data, or a `{{template}}` call
    /// without a pipeline), whose fields are quietly absent too, unlike a nil found in the
    /// data, whose fields are an error.
    pub root_absent: bool,
    /// Templates named by `define` and `block`.
    pub definitions: &'a Definitions,
    /// The file's own template, named "" as consul-template names it.
    pub main: &'a [Node],
    /// Template calls and blocks being walked (bounded by [`MAX_EXEC_DEPTH`]).
    pub depth: usize,
    pub functions: &'a mut dyn Functions,
    pub options: RenderOptions,
    /// Variables in scope, innermost last; `$` is first. The flag says the value was a
    /// pipeline's result (`$x := ...`), where Go holds a nil as an invalid `reflect.Value`,
    /// whose fields are quietly absent ([`Exec::eval_fields`]); a range's element is not.
    pub vars: Vec<(String, Value, bool)>,
    pub out: String,
}

fn error(pos: Pos, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line: pos.line,
        column: pos.column,
        message: message.into(),
    }
}

impl<'a> State<'a> {
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
            Node::If(branch) | Node::With(branch) | Node::Range(branch) => {
                self.enter(branch.pipe.pos)?;
                let flow = match node {
                    Node::Range(_) => self.walk_range(dot, branch),
                    _ => self.walk_if_or_with(dot, branch, matches!(node, Node::With(_))),
                };
                self.depth -= 1;
                return flow;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template(call) => self.walk_template(dot, call)?,
        }
        Ok(Flow::Normal)
    }

    /// Go's `walkTemplate`: the named template runs with the pipeline's value as dot and `$`,
    /// and sees none of the caller's variables.
    fn walk_template(&mut self, dot: &Value, call: &TemplateCall) -> Result<()> {
        let Some(body) = self.named(&call.name) else {
            return Err(error(
                call.pos,
                format!("template {:?} not defined", call.name),
            ));
        };
        self.enter(call.pos)?;
        let (new_dot, absent) = match &call.pipe {
            Some(pipe) => match self.eval_pipeline(dot, pipe) {
                Ok(value) => (value, false),
                Err(err) => {
                    self.depth -= 1;
                    return Err(err);
                }
            },
            None => (Value::Nil, true),
        };
        let walked = self.walk_body(body, &new_dot, absent);
        self.depth -= 1;
        walked
    }

    /// The template named `name` (`""`: the file's own), as `{{template}}` and
    /// `executeTemplate` find it.
    fn named(&self, name: &str) -> Option<&'a [Node]> {
        if name.is_empty() {
            Some(self.main)
        } else {
            self.definitions.get(name).map(Vec::as_slice)
        }
    }

    /// Walks a named template's `body` with `new_dot` as dot and `$` (`absent`: no data was
    /// given), none of the caller's variables in scope; the caller's are restored after.
    fn walk_body(&mut self, body: &[Node], new_dot: &Value, absent: bool) -> Result<()> {
        let vars = std::mem::replace(
            &mut self.vars,
            vec![("$".to_owned(), new_dot.clone(), false)],
        );
        let root = std::mem::replace(&mut self.root, new_dot);
        let root_absent = std::mem::replace(&mut self.root_absent, absent);
        // A define body is parsed outside any range: break and continue cannot leave it.
        let walked = self.walk_nodes(new_dot, body);
        self.vars = vars;
        self.root = root;
        self.root_absent = root_absent;
        walked.map(|_| ())
    }

    /// `executeTemplate NAME [DATA]` (consul-template): the named template run with `DATA` as
    /// dot (absent when not given), its output returned rather than printed. As Go's
    /// `ExecuteTemplate`, it sees none of the caller's variables.
    fn execute_template(&mut self, pos: Pos, function: &str, values: Vec<Value>) -> Result<String> {
        let mut values = values.into_iter();
        let name = match values.next() {
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(error(
                    pos,
                    format!(
                        "wrong type for value; expected string; got {}",
                        other.type_name()
                    ),
                ));
            }
            None => {
                return Err(error(
                    pos,
                    format!("wrong number of args for {function}: want at least 1 got 0"),
                ));
            }
        };
        let rest: Vec<Value> = values.collect();
        let (new_dot, absent) = match rest.len() {
            0 => (Value::Nil, true),
            1 => (rest.into_iter().next().unwrap_or_default(), false),
            n => {
                return Err(error(
                    pos,
                    format!(
                        "error calling {function}: executeTemplate: wrong number of \
                         arguments, expected 1 or 2, but got {}",
                        n + 1
                    ),
                ));
            }
        };
        let Some(body) = self.named(&name) else {
            return Err(error(
                pos,
                format!(
                    "error calling {function}: template: no template {name:?} associated with template \"\""
                ),
            ));
        };
        self.enter(pos)?;
        let out = std::mem::take(&mut self.out);
        let walked = self.walk_body(body, &new_dot, absent);
        self.depth -= 1;
        let printed = std::mem::replace(&mut self.out, out);
        walked.map(|_| printed)
    }

    /// One level deeper (a template call or a block), or Go's depth error.
    fn enter(&mut self, pos: Pos) -> Result<()> {
        if self.depth >= MAX_EXEC_DEPTH {
            return Err(error(
                pos,
                format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"),
            ));
        }
        self.depth += 1;
        Ok(())
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
        // Lazily: `range N` must not allocate N items up front.
        let items: Box<dyn Iterator<Item = (Value, Value)>> = match value {
            Value::List(items) => Box::new(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| (Value::Int(i64::try_from(i).unwrap_or(i64::MAX)), item)),
            ),
            Value::Map(map) => Box::new(map.into_iter().map(|(k, v)| (Value::String(k), v))),
            // Go: an invalid value (nil) is not an error, just nothing to iterate; nor is a
            // nil slice or map.
            Value::Nil => Box::new(std::iter::empty()),
            Value::TypedNil(t) if t.printed() != "<nil>" => Box::new(std::iter::empty()),
            // Go 1.22: `range N` runs N times with 0..N-1 as the element.
            Value::Int(n) => {
                if branch.pipe.decl.len() > 1 {
                    return Err(error(
                        branch.pipe.pos,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                Box::new((0..n.max(0)).map(|i| (Value::Nil, Value::Int(i))))
            }
            other => {
                return Err(error(
                    branch.pipe.pos,
                    // Go prints the value as `%v` does: a struct pointer with its `&`.
                    format!(
                        "range can't iterate over {}",
                        format::sprint(std::slice::from_ref(&other))
                    ),
                ));
            }
        };
        // The body's own variables live above this mark and are dropped each iteration.
        let body_scope = self.vars.len();
        let mut iterated = false;
        for (index, element) in items {
            iterated = true;
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
            ([only], true) => self.set_var(pipe.pos, only, element, false)?,
            ([first, second], true) => {
                self.set_var(pipe.pos, first, index, false)?;
                self.set_var(pipe.pos, second, element, false)?;
            }
            (decl, false) => {
                // The pipeline pushed the declared variables last; overwrite them in place.
                let top = self.vars.len();
                if decl.len() == 2
                    && let Some(slot) = top.checked_sub(2).and_then(|i| self.vars.get_mut(i))
                {
                    slot.1 = index;
                    slot.2 = false;
                }
                if let Some(slot) = top.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
                    slot.1 = element;
                    slot.2 = false;
                }
            }
            (_, true) => return Err(error(pipe.pos, "too many variables in range")),
        }
        Ok(())
    }

    fn set_var(&mut self, pos: Pos, name: &str, value: Value, from_pipeline: bool) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                slot.2 = from_pipeline;
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
                self.set_var(pipe.pos, name, value.clone(), true)?;
            } else {
                self.vars.push((name.clone(), value.clone(), true));
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
            Arg::Chain(base, fields, pos) if self.has_methods(base) => {
                let values = self.eval_args(dot, rest, last)?;
                Ok(self
                    .call_method(base, fields, values, *pos)?
                    .unwrap_or_default())
            }
            Arg::Field(..) | Arg::Variable(..) | Arg::Chain(..) => {
                if let Arg::Variable(_, fields, _) = first
                    && fields.is_empty()
                {
                    not_a_function(first, has_args)?;
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
                let absent = std::ptr::eq(dot, self.root) && self.root_absent;
                self.eval_fields(dot, absent, fields, has_args, *pos)
            }
            Arg::Variable(name, fields, pos) => {
                let (value, from_pipeline) =
                    match self.vars.iter().rev().find(|(n, _, _)| n == name) {
                        Some((_, value, from_pipeline)) => (value, *from_pipeline),
                        None => return Err(error(*pos, format!("undefined variable: {name}"))),
                    };
                let absent = from_pipeline || (name == "$" && self.root_absent);
                self.eval_fields(value, absent, fields, has_args, *pos)
            }
            Arg::Chain(base, fields, pos) => {
                if matches!(**base, Arg::Nil(_)) {
                    return Err(error(*pos, "indirection through explicit nil"));
                }
                if let Some(value) = self.call_method(base, fields, Vec::new(), *pos)? {
                    return Ok(value);
                }
                // A pipeline's nil result is Go's invalid value: its fields are absent.
                let value = self.eval_arg(dot, base)?;
                self.eval_fields(&value, true, fields, has_args, *pos)
            }
            other => self.eval_arg(dot, other),
        }
    }

    /// Whether `base` is a function giving an object with methods ([`Functions::has_methods`]).
    fn has_methods(&self, base: &Arg) -> bool {
        matches!(base, Arg::Function(Function::External(name), _) if self.functions.has_methods(name))
    }

    /// `name.Method args` where `name` gives an object with methods: the method is called with
    /// `args` (the arguments go to the last field, as in Go; a method before it gets none),
    /// and any further fields are read from its result. `None` when `base` is no such name.
    fn call_method(
        &mut self,
        base: &Arg,
        fields: &[String],
        args: Vec<Value>,
        pos: Pos,
    ) -> Result<Option<Value>> {
        let Arg::Function(Function::External(name), _) = base else {
            return Ok(None);
        };
        if !self.functions.has_methods(name) {
            return Ok(None);
        }
        let Some((method, rest)) = fields.split_first() else {
            return Ok(None);
        };
        let has_args = !args.is_empty();
        let (method_args, last_args) = if rest.is_empty() {
            (args, false)
        } else {
            (Vec::new(), has_args)
        };
        let value = self
            .functions
            .call_method(name, method, method_args)
            .map_err(|m| error(pos, m))?;
        if rest.is_empty() {
            return Ok(Some(value));
        }
        self.eval_fields(&value, false, rest, last_args, pos)
            .map(Some)
    }

    /// `receiver.A.B...`. `absent` says a nil receiver stands for Go's invalid `reflect.Value`
    /// (absent data given to the template, a pipeline's nil result, a variable holding one),
    /// whose fields are quietly absent too, unlike a nil found in the data (a missing key, a
    /// range's nil element), whose fields are an error. `has_args` says the last field was
    /// given arguments, which only methods could take.
    fn eval_fields(
        &self,
        receiver: &Value,
        absent: bool,
        fields: &[String],
        has_args: bool,
        pos: Pos,
    ) -> Result<Value> {
        if let (Value::Nil, true) = (receiver, absent) {
            if let (true, Some(name)) = (self.options.error_on_missing_key, fields.first()) {
                return Err(error(pos, format!("nil data; no entry for key {name:?}")));
            }
            return Ok(Value::Nil);
        }
        static NIL: Value = Value::Nil;
        // A struct's field is a value of its own (a hidden name may be the struct itself).
        let mut reached: Value;
        // Whether `value` is a struct's field (of its declared type), not a map's value (an
        // `interface {}` to Go), for the error about a field of it.
        let mut from_struct = false;
        let mut value = receiver;
        for (n, name) in fields.iter().enumerate() {
            let in_struct = matches!(value, Value::Struct(_));
            value = match value {
                Value::Struct(s) => {
                    let Some(found) = s.get(name) else {
                        return Err(error(
                            pos,
                            format!("can't evaluate field {name} in type {}", s.type_name),
                        ));
                    };
                    if has_args && n + 1 == fields.len() {
                        return Err(error(
                            pos,
                            format!("{name} has arguments but cannot be invoked as function"),
                        ));
                    }
                    reached = found;
                    &reached
                }
                Value::TypedNil(t) if t.fields.contains(&name.as_str()) => {
                    return Err(error(
                        pos,
                        format!("nil pointer evaluating {}.{name}", t.type_name),
                    ));
                }
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
                // A nil map has no keys.
                Value::TypedNil(t) if t.type_name.starts_with("map[") => &NIL,
                other => {
                    // A value found in a map is an `interface {}` to Go; a struct's field has
                    // its declared type.
                    let type_name = if n > 0 && !from_struct {
                        "interface {}"
                    } else {
                        other.type_name()
                    };
                    return Err(error(
                        pos,
                        format!("can't evaluate field {name} in type {type_name}"),
                    ));
                }
            };
            from_struct = in_struct;
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
            Function::Builtin(Builtin::Call) => {
                // Go names the callee as written, or, when it is the piped value, by
                // reflect.Value's String: a string itself, another value `<TYPE Value>`.
                let callee = match (args.first(), &last) {
                    (Some(arg), _) => arg.describe(),
                    (None, Some(Value::String(s))) => s.clone(),
                    (None, Some(other)) => format!("<{} Value>", other.type_name()),
                    (None, None) => String::new(),
                };
                let values = self.eval_args(dot, args, last)?;
                Err(error(
                    pos,
                    format!("error calling call: {}", call(&callee, &values)),
                ))
            }
            Function::Builtin(builtin) => {
                let values = self.eval_args(dot, args, last)?;
                call_builtin(*builtin, &values)
                    .map_err(|m| error(pos, format!("error calling {}: {m}", builtin.name())))
            }
            Function::External(name) if self.functions.executes_template(name) => {
                let values = self.eval_args(dot, args, last)?;
                self.execute_template(pos, name, values).map(Value::String)
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
            [Value::String(s) | Value::JsonNumber(s)] => Ok(Value::Int(len_i64(s.len()))),
            [Value::List(items)] => Ok(Value::Int(len_i64(items.len()))),
            [Value::Map(map)] => Ok(Value::Int(len_i64(map.len()))),
            [Value::TypedNil(t)] if t.printed() != "<nil>" => Ok(Value::Int(0)),
            // Go's `length` asks a nil's type, and reflect's panic becomes the error.
            [Value::Nil] => Err("reflect: call of reflect.Value.Type on zero Value".to_owned()),
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
        Builtin::Html => Ok(Value::String(html_escape(&escaper_text(args)))),
        Builtin::Js => Ok(Value::String(js_escape(&escaper_text(args)))),
        Builtin::Urlquery => Ok(Value::String(query_escape(&escaper_text(args)))),
        Builtin::Slice => match args.split_first() {
            Some((item, indexes)) => slice(item, indexes),
            None => Err(wrong()),
        },
        Builtin::Call => Err(call("", args)),
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

/// Go's `call`: the data here never holds a function, so every call fails, with Go's message
/// for what the first argument is.
fn call(callee: &str, args: &[Value]) -> String {
    match args.first() {
        None | Some(Value::Nil) => "call of nil".to_owned(),
        Some(other) => format!("non-function {callee} of type {}", other.type_name()),
    }
}

/// Go's `evalArgs` for `html`, `js` and `urlquery`: one string as is, otherwise `fmt.Sprint`
/// of the operands with nil shown as `<no value>`.
fn escaper_text(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.clone();
    }
    let shown: Vec<Value> = args
        .iter()
        .map(|arg| match arg {
            Value::Nil => Value::String("<no value>".to_owned()),
            other => other.clone(),
        })
        .collect();
    format::sprint(&shown)
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            _ if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            _ if c.is_ascii() || format::is_print(c) => out.push(c),
            _ => out.push_str(&format!("\\u{:04X}", u32::from(c))),
        }
    }
    out
}

/// Go's `url.QueryEscape`: unreserved bytes as is, space as `+`, every other byte `%XX`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `slice item i j k`: `item[i:j:k]` for lists, `item[i:j]` for strings.
fn slice(item: &Value, indexes: &[Value]) -> std::result::Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("slice of untyped nil".to_owned());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Value::String(s) | Value::JsonNumber(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".to_owned());
            }
            s.len()
        }
        Value::List(items) => items.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    // Go bounds indexes by the capacity; a list here has no room beyond its length.
    let mut bounds = [0, len, len];
    for (slot, index) in bounds.iter_mut().zip(indexes) {
        *slot = match index {
            Value::Int(i) => match usize::try_from(*i) {
                Ok(x) if x <= len => x,
                _ => return Err(format!("index out of range: {i}")),
            },
            Value::Nil => return Err("cannot index slice/array with nil".to_owned()),
            other => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
        };
    }
    let [low, high, max] = bounds;
    if low > high {
        return Err(format!("invalid slice index: {low} > {high}"));
    }
    if indexes.len() == 3 && high > max {
        return Err(format!("invalid slice index: {high} > {max}"));
    }
    match item {
        // A slice of a string type keeps its type (a json.Number's digits stay one).
        Value::String(s) | Value::JsonNumber(s) => match s.get(low..high) {
            Some(part) if matches!(item, Value::JsonNumber(_)) => {
                Ok(Value::JsonNumber(part.to_owned()))
            }
            Some(part) => Ok(Value::String(part.to_owned())),
            // Go slices bytes and may cut a character; a Rust string cannot hold the pieces.
            None => Err(format!(
                "slice {low}:{high} cuts a UTF-8 character (not supported here)"
            )),
        },
        Value::List(items) => Ok(Value::List(items.get(low..high).unwrap_or(&[]).to_vec())),
        _ => Err(format!("can't slice item of type {}", item.type_name())),
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
            (Value::String(s) | Value::JsonNumber(s), Value::Int(i)) => {
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
            (Value::List(_) | Value::String(_) | Value::JsonNumber(_), Value::Nil) => {
                return Err("cannot index slice/array with nil".to_owned());
            }
            (Value::List(_) | Value::String(_) | Value::JsonNumber(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
            (Value::Map(map), Value::String(k)) => map.get(k).unwrap_or(&NIL),
            (Value::TypedNil(t), Value::String(_)) if t.type_name.starts_with("map[") => &NIL,
            (Value::TypedNil(t), Value::Int(i)) if t.type_name.starts_with("[]") => {
                return Err(format!("index out of range: {i}"));
            }
            (Value::Map(_), Value::Nil) => {
                return Err("value is nil; should be of type string".to_owned());
            }
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
        Value::String(_) | Value::JsonNumber(_) => Some(BasicKind::String),
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
        // Go compares the string kind by text: `eq .Data.port "8080"` with a json.Number.
        (Value::String(x) | Value::JsonNumber(x), Value::String(y) | Value::JsonNumber(y)) => {
            x == y
        }
        (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) => {
            return Err(format!(
                "non-comparable type {}: {}",
                format::display(b),
                b.type_name()
            ));
        }
        (Value::List(_) | Value::Map(_), Value::List(_) | Value::Map(_)) => {
            return Err(format!(
                "non-comparable types {}: {}, {}: {}",
                format::display(a),
                a.type_name(),
                b.type_name(),
                format::display(b)
            ));
        }
        _ => return Err(incompatible(a, b)),
    })
}

/// Go's error for operands of different kinds, naming both types.
fn incompatible(a: &Value, b: &Value) -> String {
    format!("{BAD_COMPARISON}: {} and {}", a.type_name(), b.type_name())
}

/// Go's `lt`: ints, floats and strings only, of the same kind.
fn less(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    let (Some(ka), Some(kb)) = (basic_kind(a), basic_kind(b)) else {
        return Err(BAD_COMPARISON_TYPE.to_owned());
    };
    if ka != kb {
        return Err(incompatible(a, b));
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x) | Value::JsonNumber(x), Value::String(y) | Value::JsonNumber(y)) => x < y,
        _ => return Err(BAD_COMPARISON_TYPE.to_owned()),
    })
}
