//! consul-template's pure template functions (those of the `openbao-template` fork that
//! OpenBao Agent 2.7.2 vendors) and the `sprig_*` functions it registers from Sprig v3.2.3's
//! generic map, for the agent's [`crate::agent::functions`].
//!
//! It owns each function's arguments, results and error messages, written to match Go's
//! where a template author sees them. It must not talk to Vault, write files or keep state
//! between calls; `file` and `env` read the process's files and environment, as
//! consul-template does. The Vault functions (`secret`, `secrets`, `pkiCert`, `writeToFile`)
//! live in `functions`.
//!
//! Names fall in three groups: [`CONSUL_TEMPLATE`] and [`SPRIG`] are implemented; [`refused`] explains at parse time
//! why a consul-template or Sprig name is not (out of scope, deliberately unsupported
//! ([`SPRIG_UNSUPPORTED`]), or not implemented yet); anything else is Go's "function not
//! defined".
//!
//! Families: [`strings`] (text), [`encoding`] (base64, JSON, YAML, TOML, hashes),
//! [`math`] (consul-template's and Sprig's arithmetic), [`collections`] (lists and maps),
//! [`sprig`] (Sprig's defaults, conversions, types, paths, regexes, dates and durations),
//! [`gotime`] (Go's time layouts, durations and parsing), [`url`] (Go's `net/url`),
//! [`semver`] (Masterminds/semver's constraints).

mod collections;
mod encoding;
mod gotime;
mod math;
mod semver;
mod sprig;
mod strings;
mod url;
mod yaml;

use crate::template::Value;

/// A function's result: the value, or the message Go would give (the engine prefixes
/// `error calling NAME: `).
pub(crate) type Outcome = Result<Value, String>;

/// consul-template's pure functions, implemented here.
pub(crate) const CONSUL_TEMPLATE: &[&str] = &[
    "file",
    "env",
    "mustEnv",
    "envOrDefault",
    "base64Decode",
    "base64Encode",
    "base64URLDecode",
    "base64URLEncode",
    "contains",
    "containsAll",
    "containsAny",
    "containsNone",
    "containsNotAll",
    "explodeMap",
    "mergeMap",
    "mergeMapWithOverride",
    "in",
    "indent",
    "loop",
    "join",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "trimSpace",
    "parseBool",
    "parseFloat",
    "parseInt",
    "parseJSON",
    "parseUint",
    "parseYAML",
    "regexReplaceAll",
    "regexMatch",
    "replaceAll",
    "sha256Hex",
    "md5sum",
    "hmacSHA256Hex",
    "timestamp",
    "toLower",
    "toJSON",
    "toJSONPretty",
    "toUnescapedJSON",
    "toUnescapedJSONPretty",
    "toTitle",
    "toTOML",
    "toUpper",
    "toYAML",
    "split",
    "splitToMap",
    "add",
    "subtract",
    "multiply",
    "divide",
    "modulo",
    "minimum",
    "maximum",
];

/// Sprig functions implemented here, without their `sprig_` prefix.
pub(crate) const SPRIG: &[&str] = &[
    // Strings.
    "abbrev",
    "abbrevboth",
    "trunc",
    "trim",
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "trimall",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "nospace",
    "initials",
    "swapcase",
    "snakecase",
    "camelcase",
    "kebabcase",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "wrap",
    "wrapWith",
    "split",
    "splitList",
    "splitn",
    "join",
    "sortAlpha",
    "toStrings",
    "seq",
    // Encodings and hashes.
    "sha1sum",
    "sha256sum",
    "adler32sum",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "fromJson",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "mustFromJson",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    // Conversions and numbers.
    "toString",
    "atoi",
    "int64",
    "int",
    "float64",
    "until",
    "untilStep",
    "add1",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "biggest",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "add1f",
    "addf",
    "subf",
    "mulf",
    "divf",
    // Defaults, types, flow.
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "ternary",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    "deepCopy",
    "mustDeepCopy",
    "fail",
    // Lists.
    "list",
    "tuple",
    "append",
    "mustAppend",
    "push",
    "mustPush",
    "prepend",
    "mustPrepend",
    "first",
    "mustFirst",
    "rest",
    "mustRest",
    "last",
    "mustLast",
    "initial",
    "mustInitial",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "compact",
    "mustCompact",
    "slice",
    "mustSlice",
    "concat",
    "chunk",
    "mustChunk",
    // Dicts.
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "values",
    "dig",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    // Regexes.
    "regexMatch",
    "mustRegexMatch",
    "regexFindAll",
    "mustRegexFindAll",
    "regexFind",
    "mustRegexFind",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    // Environment, paths, time, ids.
    "env",
    "expandenv",
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "now",
    "date",
    "dateInZone",
    "date_in_zone",
    "unixEpoch",
    "htmlDate",
    "htmlDateInZone",
    "dateModify",
    "date_modify",
    "mustDateModify",
    "must_date_modify",
    "duration",
    "durationRound",
    "ago",
    "toDate",
    "mustToDate",
    "uuidv4",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "randInt",
    "randBytes",
    "shuffle",
    "toDecimal",
    "hello",
    // URLs.
    "urlParse",
    "urlJoin",
    // Versions.
    "semverCompare",
];

/// Sprig v3.2.3 functions not implemented yet: refused at parse time by name.
pub(crate) const SPRIG_NOT_IMPLEMENTED: &[&str] = &[];

/// Sprig v3.2.3 functions pki-sidecar deliberately leaves out: what each would do that this
/// product must not, and what to use instead.
pub(crate) const SPRIG_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "getHostByName",
        "resolves DNS names while rendering, which makes a template's output depend on the network; look the name up outside the template",
    ),
    ("genPrivateKey", KEYS),
    ("genCA", KEYS),
    ("genCAWithKey", KEYS),
    ("genSelfSignedCert", KEYS),
    ("genSelfSignedCertWithKey", KEYS),
    ("genSignedCert", KEYS),
    ("genSignedCertWithKey", KEYS),
    ("buildCustomCert", KEYS),
    (
        "derivePassword",
        "derives passwords (Master Password's scrypt scheme) in the template; keep secrets in Vault and read them with `secret`",
    ),
    ("encryptAES", AES),
    ("decryptAES", AES),
    ("bcrypt", HASHES),
    ("htpasswd", HASHES),
    (
        "semver",
        "returns a Go object (*semver.Version) whose methods the template engine has no room for; compare versions with sprig_semverCompare",
    ),
];

const KEYS: &str = "generates keys or certificates in the template, bypassing Vault's PKI, which is what pki-sidecar exists to use; issue certificates with `pkiCert` or `secret \"pki/issue/ROLE\"`";
const AES: &str = "encrypts with a password-derived key in the template; use Vault's transit engine through `secret`";
const HASHES: &str = "hashes passwords with random salts, so every render differs and rewrites the file; store the hash in Vault and read it with `secret`";

/// Names consul-template has (or had) that pki-sidecar deliberately leaves out, and why.
const OUT_OF_SCOPE: &[(&str, &str)] = &[
    ("service", CONSUL),
    ("services", CONSUL),
    ("key", CONSUL),
    ("keyOrDefault", CONSUL),
    ("keyExists", CONSUL),
    ("ls", CONSUL),
    ("safeLs", CONSUL),
    ("tree", CONSUL),
    ("safeTree", CONSUL),
    ("node", CONSUL),
    ("nodes", CONSUL),
    ("connectCARoots", CONSUL),
    ("connectLeaf", CONSUL),
    ("caRoots", CONSUL),
    ("caLeaf", CONSUL),
    ("datacenters", CONSUL),
    ("partitions", CONSUL),
    ("peerings", CONSUL),
    ("exportedServices", CONSUL),
    ("checks", CONSUL),
    ("byKey", CONSUL),
    ("byTag", CONSUL),
    ("byMeta", CONSUL),
    ("explode", CONSUL),
    ("nomadService", NOMAD),
    ("nomadServices", NOMAD),
    ("nomadVar", NOMAD),
    ("nomadVarList", NOMAD),
    ("nomadVarExists", NOMAD),
    ("nomadVarListSafe", NOMAD),
    (
        "plugin",
        "runs an external command, which pki-sidecar does not allow",
    ),
    (
        "sockaddr",
        "needs go-sockaddr's network interface templates",
    ),
    ("spew_dump", SPEW),
    ("spew_printf", SPEW),
    ("spew_sdump", SPEW),
    ("spew_sprintf", SPEW),
    (
        "runTime",
        "is not in the consul-template OpenBao Agent vendors",
    ),
];

/// consul-template names not implemented yet (they need support outside this module).
const NOT_YET: &[(&str, &str)] = &[];

const CONSUL: &str = "is Consul-only (no Consul client)";
const NOMAD: &str = "is Nomad-only (no Nomad client)";
const SPEW: &str = "prints Go's internal representation of values (go-spew)";

/// Whether `name` is a pure function implemented here (with or without `sprig_`).
pub(crate) fn has(name: &str) -> bool {
    match name.strip_prefix("sprig_") {
        Some(sprig) => SPRIG.contains(&sprig),
        None => CONSUL_TEMPLATE.contains(&name),
    }
}

/// Why `name` is refused, for a consul-template or Sprig name not implemented here.
pub(crate) fn refused(name: &str) -> Option<String> {
    if let Some(sprig) = name
        .strip_prefix("sprig_")
        .filter(|sprig| SPRIG_NOT_IMPLEMENTED.contains(sprig))
    {
        return Some(format!(
            "function {name:?} (Sprig's {sprig:?}) is not implemented yet in pki-sidecar"
        ));
    }
    if let Some((sprig, why)) = name.strip_prefix("sprig_").and_then(|sprig| {
        SPRIG_UNSUPPORTED
            .iter()
            .find(|(unsupported, _)| *unsupported == sprig)
    }) {
        return Some(format!(
            "function {name:?} (Sprig's {sprig:?}) is deliberately unsupported in pki-sidecar: it {why}"
        ));
    }
    if let Some((_, why)) = NOT_YET.iter().find(|(refused, _)| *refused == name) {
        return Some(format!(
            "function {name:?} is not implemented yet in pki-sidecar: it {why}"
        ));
    }
    OUT_OF_SCOPE
        .iter()
        .find(|(refused, _)| *refused == name)
        .map(|(_, why)| format!("function {name:?} {why} and out of scope for pki-sidecar"))
}

/// Calls the pure function `name`.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Outcome {
    if let Some(sprig) = name
        .strip_prefix("sprig_")
        .filter(|sprig| SPRIG.contains(sprig))
    {
        let args = Args { name, values: args };
        return strings::sprig(sprig, &args)
            .or_else(|| encoding::sprig(sprig, &args))
            .or_else(|| math::sprig(sprig, &args))
            .or_else(|| collections::sprig(sprig, &args))
            .or_else(|| sprig::call(sprig, &args))
            .or_else(|| url::sprig(sprig, &args))
            .or_else(|| semver::sprig(sprig, &args))
            .unwrap_or_else(|| Err(format!("function {name:?} not defined")));
    }
    if !CONSUL_TEMPLATE.contains(&name) {
        return Err(format!("function {name:?} not defined"));
    }
    let args = Args { name, values: args };
    strings::consul(name, &args)
        .or_else(|| encoding::consul(name, &args))
        .or_else(|| math::consul(name, &args))
        .or_else(|| collections::consul(name, &args))
        .unwrap_or_else(|| Err(format!("function {name:?} not defined")))
}

/// One call's arguments, with Go's checks of count and type.
pub(crate) struct Args<'a> {
    name: &'a str,
    values: Vec<Value>,
}

impl Args<'_> {
    /// Exactly `n` arguments (Go: `wrong number of args for NAME: want N got M`).
    fn exactly(&self, n: usize) -> Result<&[Value], String> {
        if self.values.len() == n {
            Ok(&self.values)
        } else {
            Err(format!(
                "wrong number of args for {}: want {n} got {}",
                self.name,
                self.values.len()
            ))
        }
    }

    /// At least `n` arguments (a variadic Go function).
    fn at_least(&self, n: usize) -> Result<&[Value], String> {
        if self.values.len() >= n {
            Ok(&self.values)
        } else {
            Err(format!(
                "wrong number of args for {}: want at least {n} got {}",
                self.name,
                self.values.len()
            ))
        }
    }

    fn all(&self) -> &[Value] {
        &self.values
    }
}

/// Go's message for an argument of the wrong type.
fn wrong_type(expected: &str, got: &Value) -> String {
    match got {
        Value::Nil => format!("invalid value; expected {expected}"),
        other => format!(
            "wrong type for value; expected {expected}; got {}",
            other.type_name()
        ),
    }
}

/// A `string` parameter.
fn string(value: &Value) -> Result<&str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type("string", other)),
    }
}

/// An `int` parameter.
fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        other => Err(wrong_type("int", other)),
    }
}

/// A `bool` parameter.
fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(wrong_type("bool", other)),
    }
}

/// A `map[string]interface{}` parameter.
fn map(value: &Value) -> Result<&std::collections::BTreeMap<String, Value>, String> {
    match value {
        Value::Map(m) => Ok(m),
        other => Err(wrong_type("map[string]interface {}", other)),
    }
}

/// A `[]interface{}` parameter.
fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::List(items) => Ok(items),
        other => Err(wrong_type("[]interface {}", other)),
    }
}

/// A `[]string` parameter: a list whose items are all strings (see COMPATIBILITY.md: Go
/// would also refuse a `[]interface{}` of strings, which Vault data always is).
fn string_list(value: &Value) -> Result<Vec<&str>, String> {
    match value {
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(wrong_type("[]string", value)),
            })
            .collect(),
        other => Err(wrong_type("[]string", other)),
    }
}

fn text(s: impl Into<String>) -> Outcome {
    Ok(Value::String(s.into()))
}

/// Go's `fmt.Sprint` of one value (`%v`).
fn sprint(value: &Value) -> String {
    crate::template::go_sprint(std::slice::from_ref(value))
}

/// The Go kind name (`reflect.Kind`) of a value, as Sprig's `kindOf` prints it.
fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) | Value::JsonNumber(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Struct(s) if s.is_pointer() => "ptr",
        Value::Struct(_) => "struct",
        Value::TypedNil(t) => match t.printed() {
            "[]" => "slice",
            "map[]" => "map",
            _ => "ptr",
        },
    }
}

#[cfg(test)]
mod tests;
