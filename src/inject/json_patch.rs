//! RFC 6902 JSON Patch, applied: vault-k8s's `agent-json-patch` and `agent-init-json-patch`
//! change the injected containers with one. Every operation of RFC 6902 (`add`, `remove`,
//! `replace`, `move`, `copy`, `test`) on RFC 6901 pointers; the patch applies whole or not at
//! all.

use serde_json::Value;

/// Applies `patch` (a JSON array of operations) to `document`; on an error `document` is
/// unchanged and the message names the operation.
pub(crate) fn apply(document: &mut Value, patch: &str) -> Result<(), String> {
    let operations: Vec<Value> = match serde_json::from_str::<Value>(patch) {
        Ok(Value::Array(operations)) => operations,
        Ok(_) => return Err("a JSON Patch is an array of operations".to_string()),
        Err(err) => return Err(format!("not JSON: {err}")),
    };
    let mut patched = document.clone();
    for (index, operation) in operations.iter().enumerate() {
        one(&mut patched, operation).map_err(|err| format!("operation {index}: {err}"))?;
    }
    *document = patched;
    Ok(())
}

fn one(document: &mut Value, operation: &Value) -> Result<(), String> {
    let field = |name: &str| -> Result<&str, String> {
        operation
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no {name:?} string"))
    };
    let value = || {
        operation
            .get("value")
            .cloned()
            .ok_or_else(|| "no \"value\"".to_string())
    };
    let path = pointer(field("path")?)?;
    match field("op")? {
        "add" => add(document, &path, value()?),
        "remove" => remove(document, &path).map(drop),
        "replace" => {
            remove(document, &path)?;
            add(document, &path, value()?)
        }
        "move" => {
            let from = pointer(field("from")?)?;
            if path.len() > from.len() && path[..from.len()] == from[..] {
                return Err("cannot move a value into itself".to_string());
            }
            let moved = remove(document, &from)?;
            add(document, &path, moved)
        }
        "copy" => {
            let from = pointer(field("from")?)?;
            let copied = get(document, &from)?.clone();
            add(document, &path, copied)
        }
        "test" => {
            if *get(document, &path)? == value()? {
                Ok(())
            } else {
                Err(format!("test failed at {}", field("path")?))
            }
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

/// An RFC 6901 pointer's tokens (`~1` is `/`, `~0` is `~`).
fn pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!("{text:?} is not a JSON Pointer (it starts with /)"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, appending: bool) -> Result<usize, String> {
    if appending && token == "-" {
        return Ok(len);
    }
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    match token.parse::<usize>() {
        Ok(i) if valid && (i < len || (appending && i == len)) => Ok(i),
        _ => Err(format!("array index {token:?} out of bounds")),
    }
}

fn get<'a>(document: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut at = document;
    for token in path {
        at = match at {
            Value::Object(map) => map
                .get(token)
                .ok_or_else(|| format!("no member {token:?}"))?,
            Value::Array(items) => &items[index(token, items.len(), false)?],
            _ => {
                return Err(format!(
                    "{token:?} is under a value that is not a container"
                ));
            }
        };
    }
    Ok(at)
}

fn parent<'a>(
    document: &'a mut Value,
    path: &'a [String],
) -> Result<(&'a mut Value, &'a str), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the whole document".to_string());
    };
    let mut at = document;
    for token in parents {
        at = match at {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("no member {token:?}"))?,
            Value::Array(items) => {
                let i = index(token, items.len(), false)?;
                &mut items[i]
            }
            _ => {
                return Err(format!(
                    "{token:?} is under a value that is not a container"
                ));
            }
        };
    }
    Ok((at, last))
}

fn add(document: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *document = value;
        return Ok(());
    }
    let (container, last) = parent(document, path)?;
    match container {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let i = index(last, items.len(), true)?;
            items.insert(i, value);
            Ok(())
        }
        _ => Err(format!("{last:?}: the parent is not an object or an array")),
    }
}

fn remove(document: &mut Value, path: &[String]) -> Result<Value, String> {
    if path.is_empty() {
        return Ok(std::mem::take(document));
    }
    let (container, last) = parent(document, path)?;
    match container {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| format!("no member {last:?}")),
        Value::Array(items) => {
            let i = index(last, items.len(), false)?;
            Ok(items.remove(i))
        }
        _ => Err(format!("{last:?}: the parent is not an object or an array")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    fn patched(mut document: serde_json::Value, patch: &str) -> Result<serde_json::Value, String> {
        apply(&mut document, patch).map(|()| document)
    }

    #[test]
    fn every_operation_of_rfc_6902() {
        let doc = json!({ "a/b": 1, "m~n": 2, "list": [1, 2, 3], "obj": { "x": "y" } });
        assert_eq!(
            patched(
                doc.clone(),
                r#"[
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "add", "path": "/list/0", "value": 0},
                {"op": "remove", "path": "/a~1b"},
                {"op": "replace", "path": "/m~0n", "value": "two"},
                {"op": "copy", "from": "/obj", "path": "/copy"},
                {"op": "move", "from": "/obj/x", "path": "/obj/z"},
                {"op": "test", "path": "/copy/x", "value": "y"},
                {"op": "add", "path": "/obj/new", "value": {"deep": [true]}}
            ]"#
            )
            .unwrap(),
            json!({
                "m~n": "two",
                "list": [0, 1, 2, 3, 4],
                "obj": { "z": "y", "new": { "deep": [true] } },
                "copy": { "x": "y" },
            })
        );
    }

    #[test]
    fn a_failing_operation_leaves_the_document_whole_and_is_named() {
        let doc = json!({ "a": [1] });
        for (patch, words) in [
            (
                r#"[{"op": "add", "path": "/a/-", "value": 2}, {"op": "remove", "path": "/b"}]"#,
                "operation 1: no member \"b\"",
            ),
            (
                r#"[{"op": "test", "path": "/a/0", "value": 2}]"#,
                "test failed",
            ),
            (
                r#"[{"op": "replace", "path": "/a/5", "value": 2}]"#,
                "out of bounds",
            ),
            (
                r#"[{"op": "add", "path": "/a/01", "value": 2}]"#,
                "out of bounds",
            ),
            (
                r#"[{"op": "move", "from": "/a", "path": "/a/0"}]"#,
                "into itself",
            ),
            (r#"[{"op": "frob", "path": "/a"}]"#, "unknown op"),
            (
                r#"[{"op": "add", "path": "a", "value": 1}]"#,
                "JSON Pointer",
            ),
            (r#"{"op": "add"}"#, "array of operations"),
            ("[", "not JSON"),
        ] {
            let mut document = doc.clone();
            let err = apply(&mut document, patch).unwrap_err();
            assert!(err.contains(words), "{patch}: {err}");
            assert_eq!(document, doc, "{patch}: unchanged");
        }
    }
}
