//! An RFC 6902 JSON Patch applier for the tests, written from the RFC and independent of the
//! webhook's diff (`pki_sidecar::webhook::patch`), so a test that applies the webhook's patch
//! does not check the diff against itself. `add`, `remove`, `replace`, `move`, `copy` and
//! `test`; errors name the operation's index and path, as an applier in the API server would
//! refuse the patch.

use serde_json::Value;

/// Applies `patch` (an array of operations) to `document`.
pub fn apply(patch: &Value, mut document: Value) -> Result<Value, String> {
    let operations = patch.as_array().ok_or("a JSON Patch is an array")?;
    for (index, operation) in operations.iter().enumerate() {
        apply_one(operation, &mut document).map_err(|err| format!("operation {index}: {err}"))?;
    }
    Ok(document)
}

fn apply_one(operation: &Value, document: &mut Value) -> Result<(), String> {
    let op = operation["op"].as_str().ok_or("no op")?;
    let path = parse(operation["path"].as_str().ok_or("no path")?)?;
    let value = || {
        operation
            .get("value")
            .cloned()
            .ok_or_else(|| format!("{op} without a value"))
    };
    let from =
        || -> Result<Vec<String>, String> { parse(operation["from"].as_str().ok_or("no from")?) };
    match op {
        "add" => add(document, &path, value()?),
        "remove" => remove(document, &path).map(drop),
        "replace" => {
            remove(document, &path)?;
            add(document, &path, value()?)
        }
        "move" => {
            let moved = remove(document, &from()?)?;
            add(document, &path, moved)
        }
        "copy" => {
            let copied = get(document, &from()?)?.clone();
            add(document, &path, copied)
        }
        "test" => {
            if *get(document, &path)? == value()? {
                Ok(())
            } else {
                Err("test failed".to_string())
            }
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

/// RFC 6901: "" is the whole document; otherwise "/"-separated tokens with `~1` for `/` and
/// `~0` for `~`, decoded in that order.
fn parse(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("pointer {pointer:?} does not start with /"))?;
    Ok(rest
        .split('/')
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn array_index(token: &str, len: usize, for_add: bool) -> Result<usize, String> {
    if token == "-" && for_add {
        return Ok(len);
    }
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return Err(format!("bad array index {token:?}"));
    }
    let index: usize = token
        .parse()
        .map_err(|_| format!("bad array index {token:?}"))?;
    let limit = if for_add { len } else { len.saturating_sub(1) };
    if index > limit || (!for_add && len == 0) {
        return Err(format!("array index {index} out of bounds ({len})"));
    }
    Ok(index)
}

fn get<'a>(document: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut current = document;
    for token in path {
        current = match current {
            Value::Object(map) => map
                .get(token)
                .ok_or_else(|| format!("no member {token:?}"))?,
            Value::Array(items) => &items[array_index(token, items.len(), false)?],
            _ => return Err(format!("{token:?} under a scalar")),
        };
    }
    Ok(current)
}

fn parent<'a>(document: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut current = document;
    for token in path {
        current = match current {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("no member {token:?}"))?,
            Value::Array(items) => {
                let index = array_index(token, items.len(), false)?;
                &mut items[index]
            }
            _ => return Err(format!("{token:?} under a scalar")),
        };
    }
    Ok(current)
}

fn add(document: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, init)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    match parent(document, init)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len(), true)?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("cannot add {last:?} under a scalar")),
    }
}

fn remove(document: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, init)) = path.split_last() else {
        return Ok(std::mem::take(document));
    };
    match parent(document, init)? {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| format!("no member {last:?} to remove")),
        Value::Array(items) => {
            let index = array_index(last, items.len(), false)?;
            Ok(items.remove(index))
        }
        _ => Err(format!("cannot remove {last:?} under a scalar")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Examples from RFC 6902 appendix A.
    #[test]
    fn rfc_examples() {
        let cases = [
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}]),
                json!({"baz": "qux", "foo": "bar"}),
            ),
            (
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
                json!({"foo": ["bar", "qux", "baz"]}),
            ),
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}]),
                json!({"foo": "bar"}),
            ),
            (
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}]),
                json!({"foo": ["bar", "baz"]}),
            ),
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
                json!({"baz": "boo", "foo": "bar"}),
            ),
            (
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
                json!({"foo": ["bar", ["abc", "def"]]}),
            ),
            (
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}]),
                json!({"/": 9, "~1": 10}),
            ),
            (
                json!({"a/b": {}}),
                json!([{"op": "add", "path": "/a~1b/c", "value": 1}]),
                json!({"a/b": {"c": 1}}),
            ),
        ];
        for (document, patch, expected) in cases {
            assert_eq!(apply(&patch, document).unwrap(), expected, "{patch}");
        }
    }

    #[test]
    fn errors() {
        let document = json!({"foo": "bar"});
        for patch in [
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
            json!([{"op": "remove", "path": "/nope"}]),
            json!([{"op": "replace", "path": "/nope", "value": 1}]),
            json!([{"op": "test", "path": "/foo", "value": "baz"}]),
        ] {
            assert!(apply(&patch, document.clone()).is_err(), "{patch}");
        }
    }
}
