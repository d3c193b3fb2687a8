//! Lists and maps: consul-template's membership tests, `explodeMap`, `mergeMap`, `loop`, and
//! Sprig's list and dict functions.

use std::collections::BTreeMap;

use super::{Args, Outcome, int, kind_name, list, map, string};
use crate::template::Value;

/// consul-template's collection functions.
pub(super) fn consul(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "in" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Bool(is_in(&a[0], &a[1])))
        })(),
        "contains" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Bool(is_in(&a[1], &a[0])))
        })(),
        "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => (|| {
            let a = args.exactly(2)?;
            let (needles, haystack) = (list(&a[0])?, &a[1]);
            let (ret_true, invert) = match name {
                "containsAll" => (true, true),
                "containsAny" => (false, false),
                "containsNone" => (true, false),
                _ => (false, true),
            };
            for needle in needles {
                if is_in(haystack, needle) != invert {
                    return Ok(Value::Bool(!ret_true));
                }
            }
            Ok(Value::Bool(ret_true))
        })(),
        "explodeMap" => (|| {
            let input = map(&args.exactly(1)?[0])?;
            let mut out = BTreeMap::new();
            for (key, value) in input {
                explode(&mut out, key, value.clone(), key)
                    .map_err(|err| format!("explodeMap: {err}"))?;
            }
            Ok(Value::Map(out))
        })(),
        "mergeMap" | "mergeMapWithOverride" => (|| {
            let a = args.exactly(2)?;
            let (mut dst, src) = (map(&a[0])?.clone(), map(&a[1])?);
            merge(&mut dst, src, name == "mergeMapWithOverride");
            Ok(Value::Map(dst))
        })(),
        "loop" => (|| {
            let a = args.all();
            let (start, stop) = match a {
                [stop] => (0, loop_bound(stop)?),
                [start, stop] => (loop_bound(start)?, loop_bound(stop)?),
                _ => {
                    return Err(format!(
                        "loop: wrong number of arguments, expected 1 or 2, but got {}",
                        a.len()
                    ));
                }
            };
            let count = stop.saturating_sub(start).max(0);
            if count > MAX_LOOP {
                return Err(format!(
                    "loop: {count} iterations is more than pki-sidecar allows ({MAX_LOOP})"
                ));
            }
            Ok(Value::List((start..stop).map(Value::Int).collect()))
        })(),
        _ => return None,
    })
}

/// The most iterations `loop` produces (it is materialized as a list here, not a channel).
const MAX_LOOP: i64 = 1 << 20;

fn loop_bound(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::String(s) => {
            if s.is_empty() {
                return Ok(0);
            }
            s.parse::<i64>().map_err(|_| {
                format!(
                    "parseInt: strconv.ParseInt: parsing {}: {}",
                    crate::template::go_quote(s),
                    if s.trim_start_matches(['-', '+'])
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    {
                        "value out of range"
                    } else {
                        "invalid syntax"
                    }
                )
            })
        }
        other => Err(format!("loop: bad argument type: {}", other.type_name())),
    }
}

/// consul-template's `in`: a list holding an equal int, float or string, or a string holding
/// a substring.
fn is_in(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::List(items) => items.iter().any(|item| match (item, needle) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            _ => false,
        }),
        Value::String(s) => matches!(needle, Value::String(n) if s.contains(n.as_str())),
        _ => false,
    }
}

fn explode(
    map: &mut BTreeMap<String, Value>,
    key: &str,
    value: Value,
    parent: &str,
) -> Result<(), String> {
    if let Some((top, rest)) = key.split_once('/') {
        let nest = map
            .entry(top.to_owned())
            .or_insert_with(|| Value::Map(BTreeMap::new()));
        let Value::Map(nest) = nest else {
            return Err(format!(
                "not a map: {}: {} already has value {}",
                crate::template::go_quote(parent),
                crate::template::go_quote(top),
                crate::template::go_sprintf("%q", std::slice::from_ref(nest))
            ));
        };
        return explode(nest, rest, value, key);
    }
    if !key.is_empty() {
        map.insert(key.to_owned(), value);
    }
    Ok(())
}

/// mergo's map merge: keys missing from `dst` are added; with `overwrite`, `src`'s values
/// replace `dst`'s; maps on both sides are merged key by key.
fn merge(dst: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>, overwrite: bool) {
    for (key, value) in src {
        match (dst.get_mut(key), value) {
            (Some(Value::Map(inner)), Value::Map(src_inner)) => {
                merge(inner, src_inner, overwrite);
            }
            (Some(existing), _) => {
                if overwrite || sprig_empty(existing) {
                    *existing = value.clone();
                }
            }
            (None, _) => {
                dst.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Sprig's `empty`.
pub(super) fn sprig_empty(value: &Value) -> bool {
    !value.is_true()
}

/// reflect's kind name of a value that is not a list, for Sprig's "Cannot ... on type" errors;
/// nil panics in Go.
fn not_a_list(what: &str, value: &Value) -> String {
    match value {
        Value::Nil => "runtime error: invalid memory address or nil pointer dereference".to_owned(),
        other => format!("Cannot {what} on type {}", kind_name(other)),
    }
}

fn items<'a>(what: &str, value: &'a Value) -> Result<&'a [Value], String> {
    match value {
        Value::List(items) => Ok(items),
        other => Err(not_a_list(what, other)),
    }
}

/// Sprig's list and dict functions (`mustX` and `X` fail the same way: Go's template
/// engine turns the panic of `X` into an error).
pub(super) fn sprig(name: &str, args: &Args) -> Option<Outcome> {
    let base = name
        .strip_prefix("must")
        .map(|rest| {
            let mut chars = rest.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| name.to_owned());
    Some(match base.as_str() {
        "list" | "tuple" => Ok(Value::List(args.all().to_vec())),
        "append" | "push" => (|| {
            let a = args.exactly(2)?;
            let mut out = items("push", &a[0])?.to_vec();
            out.push(a[1].clone());
            Ok(Value::List(out))
        })(),
        "prepend" => (|| {
            let a = args.exactly(2)?;
            let mut out = vec![a[1].clone()];
            out.extend_from_slice(items("prepend", &a[0])?);
            Ok(Value::List(out))
        })(),
        "first" => (|| {
            let a = args.exactly(1)?;
            Ok(items("find first", &a[0])?
                .first()
                .cloned()
                .unwrap_or_default())
        })(),
        "last" => (|| {
            let a = args.exactly(1)?;
            Ok(items("find last", &a[0])?
                .last()
                .cloned()
                .unwrap_or_default())
        })(),
        "rest" => (|| {
            let a = args.exactly(1)?;
            let all = items("find rest", &a[0])?;
            // An empty list gives Go's nil []interface{}, which prints as [].
            Ok(Value::List(all.get(1..).unwrap_or_default().to_vec()))
        })(),
        "initial" => (|| {
            let a = args.exactly(1)?;
            let all = items("find initial", &a[0])?;
            Ok(Value::List(
                all.get(..all.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_vec(),
            ))
        })(),
        "reverse" => (|| {
            let a = args.exactly(1)?;
            let mut out = items("find reverse", &a[0])?.to_vec();
            out.reverse();
            Ok(Value::List(out))
        })(),
        "uniq" => (|| {
            let a = args.exactly(1)?;
            let mut out: Vec<Value> = Vec::new();
            for item in items("find uniq", &a[0])? {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::List(out))
        })(),
        "without" => (|| {
            let a = args.at_least(1)?;
            let omit = &a[1..];
            Ok(Value::List(
                items("find without", &a[0])?
                    .iter()
                    .filter(|item| !omit.contains(item))
                    .cloned()
                    .collect(),
            ))
        })(),
        "has" => (|| {
            let a = args.exactly(2)?;
            match &a[1] {
                Value::Nil => Ok(Value::Bool(false)),
                Value::List(all) => Ok(Value::Bool(all.contains(&a[0]))),
                other => Err(format!("Cannot find has on type {}", kind_name(other))),
            }
        })(),
        "compact" => (|| {
            let a = args.exactly(1)?;
            Ok(Value::List(
                items("compact", &a[0])?
                    .iter()
                    .filter(|item| !sprig_empty(item))
                    .cloned()
                    .collect(),
            ))
        })(),
        "slice" => (|| {
            let a = args.at_least(1)?;
            let all = match &a[0] {
                Value::List(all) => all,
                Value::Nil => return Err(not_a_list("slice", &Value::Nil)),
                other => {
                    return Err(format!(
                        "list should be type of slice or array but {}",
                        kind_name(other)
                    ));
                }
            };
            if all.is_empty() {
                return Ok(Value::Nil);
            }
            let start = a.get(1).map_or(0, super::math::to_int64);
            let end = a.get(2).map_or(all.len() as i64, super::math::to_int64);
            if start < 0 || end < start || end > all.len() as i64 {
                return Err("reflect: slice index out of range".to_owned());
            }
            Ok(Value::List(all[start as usize..end as usize].to_vec()))
        })(),
        "concat" => (|| {
            let mut out = Vec::new();
            for value in args.all() {
                match value {
                    Value::List(all) => out.extend_from_slice(all),
                    Value::Nil => return Err(not_a_list("concat", value)),
                    other => {
                        return Err(format!("Cannot concat type {} as list", kind_name(other)));
                    }
                }
            }
            Ok(Value::List(out))
        })(),
        "chunk" => (|| {
            let a = args.exactly(2)?;
            let size = int(&a[0])?;
            let all = items("chunk", &a[1])?;
            if size <= 0 {
                return Err("runtime error: integer divide by zero".to_owned());
            }
            Ok(Value::List(
                all.chunks(size as usize)
                    .map(|chunk| Value::List(chunk.to_vec()))
                    .collect(),
            ))
        })(),
        "dict" => {
            let a = args.all();
            let mut out = BTreeMap::new();
            for pair in a.chunks(2) {
                let key = super::strings::strval(&pair[0]);
                out.insert(
                    key,
                    pair.get(1)
                        .cloned()
                        .unwrap_or_else(|| Value::String(String::new())),
                );
            }
            Ok(Value::Map(out))
        }
        "get" => (|| {
            let a = args.exactly(2)?;
            let (d, key) = (map(&a[0])?, string(&a[1])?);
            Ok(d.get(key)
                .cloned()
                .unwrap_or_else(|| Value::String(String::new())))
        })(),
        "set" => (|| {
            let a = args.exactly(3)?;
            let (mut d, key) = (map(&a[0])?.clone(), string(&a[1])?);
            d.insert(key.to_owned(), a[2].clone());
            Ok(Value::Map(d))
        })(),
        "unset" => (|| {
            let a = args.exactly(2)?;
            let (mut d, key) = (map(&a[0])?.clone(), string(&a[1])?);
            d.remove(key);
            Ok(Value::Map(d))
        })(),
        "hasKey" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Bool(map(&a[0])?.contains_key(string(&a[1])?)))
        })(),
        "pluck" => (|| {
            let a = args.at_least(1)?;
            let key = string(&a[0])?;
            let mut out = Vec::new();
            for d in &a[1..] {
                if let Some(v) = map(d)?.get(key) {
                    out.push(v.clone());
                }
            }
            Ok(Value::List(out))
        })(),
        "keys" => (|| {
            let mut out = Vec::new();
            for d in args.all() {
                out.extend(map(d)?.keys().map(|k| Value::String(k.clone())));
            }
            Ok(Value::List(out))
        })(),
        "values" => (|| {
            let a = args.exactly(1)?;
            Ok(Value::List(map(&a[0])?.values().cloned().collect()))
        })(),
        "pick" | "omit" => (|| {
            let a = args.at_least(1)?;
            let d = map(&a[0])?;
            let names = a[1..].iter().map(string).collect::<Result<Vec<_>, _>>()?;
            let keep = base == "pick";
            Ok(Value::Map(
                d.iter()
                    .filter(|(k, _)| names.contains(&k.as_str()) == keep)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        })(),
        // mergo's Merge / MergeWithOverwrite into the first dict (a copy here).
        "merge" | "mergeOverwrite" => (|| {
            let a = args.at_least(1)?;
            let mut dst = map(&a[0])?.clone();
            for src in &a[1..] {
                merge(&mut dst, map(src)?, base == "mergeOverwrite");
            }
            Ok(Value::Map(dst))
        })(),
        "dig" => (|| {
            let a = args.all();
            if a.len() < 3 {
                return Err("dig needs at least three arguments".to_owned());
            }
            let Value::Map(mut current) = a[a.len() - 1].clone() else {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                    a[a.len() - 1].type_name()
                ));
            };
            let default = &a[a.len() - 2];
            let keys = &a[..a.len() - 2];
            for (n, key) in keys.iter().enumerate() {
                let Value::String(key) = key else {
                    return Err(format!(
                        "interface conversion: interface {{}} is {}, not string",
                        key.type_name()
                    ));
                };
                let Some(step) = current.get(key).cloned() else {
                    return Ok(default.clone());
                };
                if n + 1 == keys.len() {
                    return Ok(step);
                }
                match step {
                    Value::Map(next) => current = next,
                    other => {
                        return Err(format!(
                            "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                            other.type_name()
                        ));
                    }
                }
            }
            Ok(default.clone())
        })(),
        _ => return None,
    })
}
