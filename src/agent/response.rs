//! Vault's answer to `secret` as a template sees it: consul-template's `*dependency.Secret`,
//! a Go struct, so that printing it (`{{ . }}`, `printf "%+v"`), marshalling it (`toJSON`) and
//! reaching a field it lacks behave as in OpenBao Agent.

use std::sync::Arc;

use crate::template::{GoNil, GoStruct, Value};

/// A nil `[]string` field (Vault sent `null` or nothing).
static NIL_STRINGS: GoNil = GoNil {
    type_name: "[]string",
    fields: &[],
};
/// A nil `map[string]interface {}` (`Data` when Vault sent none).
static NIL_DATA: GoNil = GoNil {
    type_name: "map[string]interface {}",
    fields: &[],
};
/// A nil `map[string]string` (`Auth.Metadata`).
static NIL_METADATA: GoNil = GoNil {
    type_name: "map[string]string",
    fields: &[],
};
const AUTH_FIELDS: [&str; 6] = [
    "ClientToken",
    "Accessor",
    "Policies",
    "Metadata",
    "LeaseDuration",
    "Renewable",
];
const WRAP_INFO_FIELDS: [&str; 4] = ["Token", "TTL", "CreationTime", "WrappedAccessor"];
static NIL_AUTH: GoNil = GoNil {
    type_name: "*dependency.SecretAuth",
    fields: &AUTH_FIELDS,
};
static NIL_WRAP_INFO: GoNil = GoNil {
    type_name: "*dependency.SecretWrapInfo",
    fields: &WRAP_INFO_FIELDS,
};

/// `secret`'s value: Vault's whole answer under consul-template's field names, in its order:
/// `.RequestID`, `.LeaseID`, `.LeaseDuration`, `.Renewable`, `.Data`, `.Warnings`, `.Auth`
/// (`.ClientToken`, `.Accessor`, `.Policies`, `.Metadata`, `.LeaseDuration`, `.Renewable`)
/// and `.WrapInfo` (`.Token`, `.TTL`, `.CreationTime`, `.WrappedAccessor`). What Vault left
/// out is Go's zero value: `""`, `0`, `false`, or a typed nil (`.Auth` and `.WrapInfo` when
/// Vault sent none).
pub(crate) fn secret_value(response: &serde_json::Value) -> Value {
    let fields = vec![
        ("RequestID", text(response, "request_id")),
        ("LeaseID", text(response, "lease_id")),
        ("LeaseDuration", number(response, "lease_duration")),
        ("Renewable", flag(response, "renewable")),
        ("Data", or_nil(data(data_of(response)), &NIL_DATA)),
        (
            "Warnings",
            or_nil(field(response, "warnings"), &NIL_STRINGS),
        ),
        ("Auth", auth(response.get("auth"))),
        ("WrapInfo", wrap_info(response.get("wrap_info"))),
    ];
    go_struct("*dependency.Secret", fields)
}

/// What `.Data` holds: Vault's `data`; for an answer that has none, not being a secret
/// (`sys/health`, `sys/seal-status`, `sys/leader`, an OIDC key set at
/// `identity/oidc/.well-known/keys`), the whole answer, as OpenBao Agent gives it (checked with
/// `bao agent`). A `data` that is `null` stays nil.
fn data_of(response: &serde_json::Value) -> Option<&serde_json::Value> {
    match response.get("data") {
        None if response.is_object() => Some(response),
        data => data,
    }
}

fn auth(auth: Option<&serde_json::Value>) -> Value {
    let Some(auth) = auth.filter(|a| a.is_object()) else {
        return Value::TypedNil(&NIL_AUTH);
    };
    let values = [
        text(auth, "client_token"),
        text(auth, "accessor"),
        or_nil(field(auth, "policies"), &NIL_STRINGS),
        or_nil(field(auth, "metadata"), &NIL_METADATA),
        number(auth, "lease_duration"),
        flag(auth, "renewable"),
    ];
    go_struct(
        "*dependency.SecretAuth",
        AUTH_FIELDS.into_iter().zip(values).collect(),
    )
}

fn wrap_info(info: Option<&serde_json::Value>) -> Value {
    let Some(info) = info.filter(|i| i.is_object()) else {
        return Value::TypedNil(&NIL_WRAP_INFO);
    };
    let values = [
        text(info, "token"),
        number(info, "ttl"),
        text(info, "creation_time"),
        text(info, "wrapped_accessor"),
    ];
    go_struct(
        "*dependency.SecretWrapInfo",
        WRAP_INFO_FIELDS.into_iter().zip(values).collect(),
    )
}

fn go_struct(type_name: &'static str, fields: Vec<(&'static str, Value)>) -> Value {
    Value::Struct(Arc::new(GoStruct {
        type_name,
        fields,
        hidden: Vec::new(),
    }))
}

/// `Data`, as consul-template decodes it: numbers are `json.Number`s.
fn data(data: Option<&serde_json::Value>) -> Value {
    Value::from_vault_json(data.unwrap_or(&serde_json::Value::Null))
}

fn field(object: &serde_json::Value, key: &str) -> Value {
    Value::from_json(object.get(key).unwrap_or(&serde_json::Value::Null))
}

/// The field, or Go's zero value `zero` when Vault sent `null` or nothing.
fn or(value: Value, zero: Value) -> Value {
    match value {
        Value::Nil => zero,
        value => value,
    }
}

fn or_nil(value: Value, zero: &'static GoNil) -> Value {
    or(value, Value::TypedNil(zero))
}

fn text(object: &serde_json::Value, key: &str) -> Value {
    or(field(object, key), Value::String(String::new()))
}

fn number(object: &serde_json::Value, key: &str) -> Value {
    or(field(object, key), Value::Int(0))
}

fn flag(object: &serde_json::Value, key: &str) -> Value {
    or(field(object, key), Value::Bool(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::pki::tests::render;

    /// Go's errors for a field the struct, its nil pointer, a field's string or a map's value
    /// lacks, each naming the type Go names.
    #[test]
    fn a_missing_field_is_gos_error_naming_gos_type() {
        let secret = secret_value(&serde_json::json!({
            "request_id": "r", "data": {"data": {"k": "v", "n": 3}}, "warnings": null
        }));
        for (text, expected) in [
            (
                "{{ .Missing }}",
                "can't evaluate field Missing in type *dependency.Secret",
            ),
            (
                "{{ .RequestID.Nope }}",
                "can't evaluate field Nope in type string",
            ),
            (
                "{{ .Data.data.k.Nope }}",
                "can't evaluate field Nope in type interface {}",
            ),
            (
                "{{ .Auth.ClientToken }}",
                "nil pointer evaluating *dependency.SecretAuth.ClientToken",
            ),
            (
                "{{ .Auth.Nope }}",
                "can't evaluate field Nope in type *dependency.SecretAuth",
            ),
        ] {
            let error = render(text, &secret).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert_eq!(
            render(
                "{{ .Data.data.n }}|{{ printf \"%T\" .Data.data.n }}|{{ .Warnings }}",
                &secret
            )
            .unwrap(),
            "3|json.Number|[]"
        );
    }
}
