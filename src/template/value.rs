//! [`Value`]: the data a template sees, shaped like the `interface{}` values Go's templates walk
//! (decoded JSON: nil, bool, numbers, strings, lists, string-keyed maps), and the few Go structs
//! consul-template hands them (`secret`'s, `pkiCert`'s).
//!
//! It owns conversions to and from JSON and Go's notion of truth and of type names; printing
//! lives in `format`. It must not know what the data means.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One value in a template's data, or produced while rendering.
///
/// Maps are `BTreeMap`s so that iteration and printing follow sorted key order, as Go's
/// `range` and `fmt` do for maps.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Go's untyped nil: a missing map key, a JSON `null`.
    #[default]
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (Go's `int`).
    Int(i64),
    /// A floating-point number (Go's `float64`).
    Float(f64),
    /// A string.
    String(String),
    /// A number in Vault's answer, Go's `json.Number` (consul-template decodes Vault's JSON
    /// with `UseNumber`): a string type holding the number's text. It prints as that text,
    /// compares (`eq`, `lt`) with strings and measures (`len`) as one, is true when not empty
    /// ("0" too), marshals as a number, and is refused by functions wanting a string or a
    /// number (`toUpper`, `add`); Sprig's conversions parse it.
    JsonNumber(String),
    /// A list (Go's `[]interface{}`).
    List(Vec<Value>),
    /// A string-keyed map (Go's `map[string]interface{}`).
    Map(BTreeMap<String, Value>),
    /// A Go struct (or pointer to one): its fields print, marshal and are reached by name as
    /// Go's are, and a name it lacks is an error, not nil.
    Struct(Arc<GoStruct>),
    /// A nil pointer, slice or map of a known type: a struct's field the data left empty. It
    /// prints as Go prints that type's nil (`<nil>`, `[]`, `map[]`) and marshals as `null`.
    TypedNil(&'static GoNil),
}

/// A struct of consul-template's data, such as `*dependency.Secret`.
#[derive(Debug, Clone, PartialEq)]
pub struct GoStruct {
    /// Go's name of the type, `*` first for a pointer: `%T` and error messages print it.
    pub type_name: &'static str,
    /// The fields, in declaration order: how Go prints and marshals them.
    pub fields: Vec<(&'static str, Value)>,
    /// Names a template can reach that Go neither prints nor marshals: a method returning the
    /// value itself (`PemEncoded`'s `Data`), or a field of a newer version of the type.
    pub hidden: Vec<(&'static str, Hidden)>,
}

/// What a [`GoStruct`]'s hidden name gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Hidden {
    /// The struct itself (a method such as `func (p PemEncoded) Data() PemEncoded`).
    Itself,
    /// A value.
    Value(Value),
}

/// A typed nil's type.
#[derive(Debug, PartialEq)]
pub struct GoNil {
    /// Go's name of the type: `*dependency.SecretAuth`, `[]string`, `map[string]string`.
    pub type_name: &'static str,
    /// For a pointer to a struct, the struct's field names: reaching one through the nil
    /// pointer is Go's "nil pointer evaluating" error, reaching another "can't evaluate field".
    pub fields: &'static [&'static str],
}

impl GoNil {
    /// What Go's `%v` prints for this nil.
    pub(crate) fn printed(&self) -> &'static str {
        if self.type_name.starts_with("[]") {
            "[]"
        } else if self.type_name.starts_with("map[") {
            "map[]"
        } else {
            "<nil>"
        }
    }
}

impl GoStruct {
    /// The value a name reaches: a field, or a hidden name. None when the type has neither.
    pub(crate) fn get(self: &Arc<Self>, name: &str) -> Option<Value> {
        if let Some((_, value)) = self.fields.iter().find(|(n, _)| *n == name) {
            return Some(value.clone());
        }
        self.hidden
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, hidden)| match hidden {
                Hidden::Itself => Value::Struct(Arc::clone(self)),
                Hidden::Value(value) => value.clone(),
            })
    }

    /// Whether the type is a pointer to a struct (printed `&{...}` by `printf "%v"`).
    pub(crate) fn is_pointer(&self) -> bool {
        self.type_name.starts_with('*')
    }
}

impl Value {
    /// Converts decoded JSON (`parseJSON`'s, a test's data). Integers that fit `i64` become
    /// [`Value::Int`], every other number a [`Value::Float`]. Vault's answers go through
    /// [`Value::from_vault_json`] instead.
    pub(crate) fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts Vault's decoded JSON as consul-template sees it: like [`Value::from_json`], but
    /// numbers are [`Value::JsonNumber`]s.
    pub(crate) fn from_vault_json(json: &serde_json::Value) -> Value {
        match json {
            // The text Vault sent: an integer as is, a float64 as Go's encoding/json wrote it
            // (serde_json keeps the value, not the text, and writes floats its own way:
            // `2e-6` for Vault's `0.000002`).
            serde_json::Value::Number(n) => Value::JsonNumber(match n.as_f64() {
                Some(f) if n.is_f64() => go_json_float(f),
                _ => n.to_string(),
            }),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_vault_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_vault_json(v)))
                    .collect(),
            ),
            other => Value::from_json(other),
        }
    }

    /// Converts to JSON. A non-finite float, which JSON cannot hold, becomes `null`.
    /// (Templates' `toJSON` writes Go's JSON itself, in `agent::library`.)
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::JsonNumber(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
            Value::Struct(s) => serde_json::Value::Object(
                s.fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_json()))
                    .collect(),
            ),
            Value::TypedNil(_) => serde_json::Value::Null,
        }
    }

    /// Go's truth for `if`, `with`, `and`, `or`, `not`: false, 0, nil and empty strings, lists
    /// and maps are false; everything else (a struct) is true.
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) | Value::JsonNumber(s) => !s.is_empty(),
            Value::List(items) => !items.is_empty(),
            Value::Map(map) => !map.is_empty(),
            Value::Struct(_) => true,
            Value::TypedNil(_) => false,
        }
    }

    /// The Go type name the value would have in consul-template's data, for `%T` and for
    /// error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::JsonNumber(_) => "json.Number",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(s) => s.type_name,
            Value::TypedNil(t) => t.type_name,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(map: BTreeMap<String, Value>) -> Value {
        Value::Map(map)
    }
}

/// Go's encoding/json text of a float64: the shortest digits that read back as `f`, written
/// out in full between 1e-6 and 1e21 (`0.000002`, `100000000000000000000`, `-0`), else with an
/// exponent (`1e+21`, `1e-7`). (Go refuses NaN and infinities; here they are `null`.)
pub(crate) fn go_json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else {
        f.to_string()
    }
}
