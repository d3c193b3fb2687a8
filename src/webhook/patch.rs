//! The RFC 6902 JSON Patch that turns one JSON value into another, as the admission webhook
//! answers it. It owns the diff only; what the patch is applied to is the API server's business.
//!
//! The patch is what the Kubernetes API server's applier (and any RFC 6902 applier) needs to
//! rebuild `new` from `old`, without being minimal:
//! - objects are compared key by key, recursively: a key only in `old` is removed, a key only
//!   in `new` is added with its whole value (so a missing parent, such as `annotations`, is
//!   added whole rather than through paths under it that do not exist yet), a key in both is
//!   compared again one level down;
//! - arrays are not aligned element by element: when `old` is a prefix of `new` (a container,
//!   a volume appended) each new element is added at `/-`, in order; otherwise the whole array
//!   is replaced, which is always correct whatever moved;
//! - any other change replaces the value at its path.
//!
//! Operations borrow their values from `new`: building the patch copies no subtree, only the
//! serializer reads them.

use serde::Serialize;
use serde_json::Value;

/// One JSON Patch operation; `value` points into the new document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation<'a> {
    /// Add `value` at `path` (for arrays, `path` ends with `/-`: append).
    Add {
        /// RFC 6901 JSON Pointer.
        path: String,
        /// What to add.
        value: &'a Value,
    },
    /// Remove what is at `path`.
    Remove {
        /// RFC 6901 JSON Pointer.
        path: String,
    },
    /// Replace what is at `path` with `value`.
    Replace {
        /// RFC 6901 JSON Pointer.
        path: String,
        /// The new value.
        value: &'a Value,
    },
}

/// The operations that turn `old` into `new`; empty when they are equal.
pub fn diff<'a>(old: &Value, new: &'a Value) -> Vec<Operation<'a>> {
    let mut operations = Vec::new();
    let mut path = String::new();
    diff_at(old, new, &mut path, &mut operations);
    operations
}

/// Appends to `operations` what turns `old` into `new` at `path`; `path` is restored before
/// returning (one buffer for the whole walk).
fn diff_at<'a>(
    old: &Value,
    new: &'a Value,
    path: &mut String,
    operations: &mut Vec<Operation<'a>>,
) {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            for key in old_map.keys() {
                if !new_map.contains_key(key) {
                    let length = path.len();
                    push_token(path, key);
                    operations.push(Operation::Remove { path: path.clone() });
                    path.truncate(length);
                }
            }
            for (key, new_value) in new_map {
                let length = path.len();
                push_token(path, key);
                match old_map.get(key) {
                    None => operations.push(Operation::Add {
                        path: path.clone(),
                        value: new_value,
                    }),
                    Some(old_value) => diff_at(old_value, new_value, path, operations),
                }
                path.truncate(length);
            }
        }
        (Value::Array(old_items), Value::Array(new_items)) => {
            if old_items == new_items {
                return;
            }
            if old_items.len() < new_items.len() && new_items[..old_items.len()] == old_items[..] {
                let length = path.len();
                path.push_str("/-");
                for value in &new_items[old_items.len()..] {
                    operations.push(Operation::Add {
                        path: path.clone(),
                        value,
                    });
                }
                path.truncate(length);
            } else {
                operations.push(Operation::Replace {
                    path: path.clone(),
                    value: new,
                });
            }
        }
        _ => {
            if old != new {
                operations.push(Operation::Replace {
                    path: path.clone(),
                    value: new,
                });
            }
        }
    }
}

/// Appends `/token` to `pointer`, escaped as RFC 6901 says: `~` as `~0`, `/` as `~1` (an
/// annotation key such as `vault.hashicorp.com/role` holds a `/`).
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for character in token.chars() {
        match character {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            other => pointer.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(old: Value, new: Value) -> Value {
        serde_json::to_value(diff(&old, &new)).unwrap()
    }

    #[test]
    fn equal_values_need_no_operation() {
        let pod = json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(patch(pod.clone(), pod), json!([]));
    }

    #[test]
    fn keys_are_escaped() {
        let old = json!({"metadata": {"annotations": {"a": "1"}}});
        let new = json!({"metadata": {"annotations": {"a": "1", "vault.hashicorp.com/role": "r", "x~y": "z"}}});
        assert_eq!(
            patch(old, new),
            json!([
                {"op": "add", "path": "/metadata/annotations/vault.hashicorp.com~1role", "value": "r"},
                {"op": "add", "path": "/metadata/annotations/x~0y", "value": "z"},
            ])
        );
    }

    #[test]
    fn a_missing_parent_is_added_whole() {
        let old = json!({"metadata": {"name": "a"}});
        let new = json!({"metadata": {"name": "a", "annotations": {"k/s": "v"}}});
        assert_eq!(
            patch(old, new),
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"k/s": "v"}}])
        );
    }

    #[test]
    fn appended_elements_are_added_at_the_end() {
        let old = json!({"spec": {"containers": [{"name": "app"}]}});
        let new = json!({"spec": {"containers": [{"name": "app"}, {"name": "b"}, {"name": "c"}]}});
        assert_eq!(
            patch(old, new),
            json!([
                {"op": "add", "path": "/spec/containers/-", "value": {"name": "b"}},
                {"op": "add", "path": "/spec/containers/-", "value": {"name": "c"}},
            ])
        );
    }

    #[test]
    fn other_array_changes_replace_the_array() {
        let old = json!({"spec": {"containers": [{"name": "app"}, {"name": "x"}]}});
        let new = json!({"spec": {"containers": [{"name": "b"}, {"name": "app"}]}});
        assert_eq!(
            patch(old, new.clone()),
            json!([{"op": "replace", "path": "/spec/containers", "value": new["spec"]["containers"]}])
        );
        let shorter = json!({"a": [1]});
        assert_eq!(
            patch(json!({"a": [1, 2]}), shorter),
            json!([{"op": "replace", "path": "/a", "value": [1]}])
        );
    }

    #[test]
    fn removed_and_changed_keys() {
        let old = json!({"a": 1, "b": {"c": true}, "d": "x"});
        let new = json!({"b": {"c": false}, "d": ["x"]});
        assert_eq!(
            patch(old, new),
            json!([
                {"op": "remove", "path": "/a"},
                {"op": "replace", "path": "/b/c", "value": false},
                {"op": "replace", "path": "/d", "value": ["x"]},
            ])
        );
    }

    #[test]
    fn a_different_root_is_replaced_whole() {
        assert_eq!(
            patch(json!([1]), json!({"a": 1})),
            json!([{"op": "replace", "path": "", "value": {"a": 1}}])
        );
    }
}
