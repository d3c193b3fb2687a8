//! consul-template's `scratch`: a key-value pad one render of one template writes and reads
//! (`scratch.Set "zone" .Data.zone` in one `with`, `scratch.Get "zone"` in another). A new
//! pad for every render, as consul-template makes one for every execution of a template;
//! `executeTemplate` shares its caller's.
//!
//! The template engine hands each `scratch.Method args` here
//! ([`crate::template::Functions::call_method`]). The methods take and return what
//! consul-template's `*Scratch` does; an error reads as Go's template engine words it.

use std::collections::BTreeMap;

use crate::template::Value;

/// The function's name in templates.
pub(crate) const NAME: &str = "scratch";

/// One render's pad.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    values: BTreeMap<String, Value>,
}

impl Scratch {
    /// Calls `method` with `args`.
    pub(crate) fn call(&mut self, method: &str, args: Vec<Value>) -> Result<Value, String> {
        let arity = match method {
            "Key" | "Get" | "MapValues" => 1,
            "Set" | "SetX" => 2,
            "MapSet" | "MapSetX" => 3,
            _ => {
                return Err(format!(
                    "can't evaluate field {method} in type *template.Scratch"
                ));
            }
        };
        if args.len() != arity {
            return Err(format!(
                "wrong number of args for {method}: want {arity} got {}",
                args.len()
            ));
        }
        let mut args = args.into_iter();
        let key = string_arg(args.next())?;
        match method {
            "Key" => Ok(Value::Bool(self.values.contains_key(&key))),
            "Get" => Ok(self.values.get(&key).cloned().unwrap_or_default()),
            "Set" | "SetX" => {
                let value = args.next().unwrap_or_default();
                if method == "Set" || !self.values.contains_key(&key) {
                    self.values.insert(key, value);
                }
                Ok(Value::String(String::new()))
            }
            "MapSet" | "MapSetX" => {
                let map_key = string_arg(args.next())?;
                let value = args.next().unwrap_or_default();
                let map = self
                    .values
                    .entry(key.clone())
                    .or_insert_with(|| Value::Map(BTreeMap::new()));
                let Value::Map(map) = map else {
                    return Err(format!("error calling {method}: {key:?} is not a map"));
                };
                if method == "MapSet" || !map.contains_key(&map_key) {
                    map.insert(map_key, value);
                }
                Ok(Value::String(String::new()))
            }
            // MapValues: the map's values in the order of their keys; no map, no values.
            _ => Ok(Value::List(match self.values.get(&key) {
                Some(Value::Map(map)) => map.values().cloned().collect(),
                _ => Vec::new(),
            })),
        }
    }
}

/// A `string` parameter: Go's template engine refuses any other value for it.
fn string_arg(value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::String(text)) => Ok(text),
        Some(Value::Nil) | None => Err("invalid value; expected string".to_string()),
        Some(other) => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::String(s.to_string())
    }

    #[test]
    fn set_get_and_key() {
        let mut pad = Scratch::default();
        assert_eq!(pad.call("Key", vec![text("a")]), Ok(Value::Bool(false)));
        assert_eq!(pad.call("Get", vec![text("a")]), Ok(Value::Nil));
        assert_eq!(pad.call("Set", vec![text("a"), text("1")]), Ok(text("")));
        assert_eq!(pad.call("SetX", vec![text("a"), text("2")]), Ok(text("")));
        assert_eq!(pad.call("Get", vec![text("a")]), Ok(text("1")));
        assert_eq!(
            pad.call("Set", vec![text("a"), Value::Int(3)]),
            Ok(text(""))
        );
        assert_eq!(pad.call("Get", vec![text("a")]), Ok(Value::Int(3)));
        assert_eq!(pad.call("Key", vec![text("a")]), Ok(Value::Bool(true)));
    }

    #[test]
    fn maps_keep_their_values_in_key_order() {
        let mut pad = Scratch::default();
        pad.call("MapSet", vec![text("m"), text("b"), text("2")])
            .unwrap();
        pad.call("MapSet", vec![text("m"), text("a"), text("1")])
            .unwrap();
        pad.call("MapSetX", vec![text("m"), text("a"), text("x")])
            .unwrap();
        assert_eq!(
            pad.call("MapValues", vec![text("m")]),
            Ok(Value::List(vec![text("1"), text("2")]))
        );
        assert_eq!(
            pad.call("MapValues", vec![text("none")]),
            Ok(Value::List(vec![]))
        );
        pad.call("Set", vec![text("s"), text("x")]).unwrap();
        assert_eq!(
            pad.call("MapSet", vec![text("s"), text("k"), text("v")]),
            Err("error calling MapSet: \"s\" is not a map".to_string())
        );
        // A value stored as a map first is one.
        let data = Value::Map(BTreeMap::from([("z".to_string(), text("26"))]));
        pad.call("Set", vec![text("d"), data]).unwrap();
        pad.call("MapSet", vec![text("d"), text("y"), text("25")])
            .unwrap();
        assert_eq!(
            pad.call("MapValues", vec![text("d")]),
            Ok(Value::List(vec![text("25"), text("26")]))
        );
    }

    #[test]
    fn wrong_calls_are_errors_in_go_s_words() {
        let mut pad = Scratch::default();
        assert_eq!(
            pad.call("Set", vec![text("a")]),
            Err("wrong number of args for Set: want 2 got 1".to_string())
        );
        assert_eq!(
            pad.call("Put", vec![text("a")]),
            Err("can't evaluate field Put in type *template.Scratch".to_string())
        );
        assert_eq!(
            pad.call("Get", vec![Value::Int(1)]),
            Err("wrong type for value; expected string; got int".to_string())
        );
    }
}
