//! [`Value`]: the data a template sees, shaped like the `interface{}` values Go's templates walk
//! (decoded JSON: nil, bool, numbers, strings, lists, string-keyed maps).
//!
//! It owns conversions to and from JSON and Go's notion of truth and of type names; printing
//! lives in `format`. It must not know what the data means.

use std::collections::BTreeMap;

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
    /// A list (Go's `[]interface{}`).
    List(Vec<Value>),
    /// A string-keyed map (Go's `map[string]interface{}`).
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Converts decoded JSON. Integers that fit `i64` become [`Value::Int`], every other number
    /// a [`Value::Float`].
    ///
    /// Note that consul-template sees numbers in Vault responses as Go's `json.Number`, a
    /// string type: they print the same, but there `eq .Data.data.port "8080"` is true and
    /// `lt .Data.data.port 9000` is an error, the other way round from a number here.
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
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    /// Go's truth for `if`, `with`, `and`, `or`, `not`: false, 0, nil and empty strings, lists
    /// and maps are false; everything else is true.
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(items) => !items.is_empty(),
            Value::Map(map) => !map.is_empty(),
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
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
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
