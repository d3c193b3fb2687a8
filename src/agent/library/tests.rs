//! Unit tests of the function library: every name dispatches, each function against Go's
//! results, and the error cases.

// `&[value.clone()]` reads better than `slice::from_ref` in these tables.
#![allow(clippy::cloned_ref_to_slice_refs)]

use std::collections::BTreeMap;

use super::*;

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn l(items: &[Value]) -> Value {
    Value::List(items.to_vec())
}

fn m(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn ok(name: &str, args: &[Value]) -> Value {
    call(name, args.to_vec()).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn err(name: &str, args: &[Value]) -> String {
    match call(name, args.to_vec()) {
        Ok(value) => panic!("{name} succeeded with {value:?}"),
        Err(err) => err,
    }
}

#[test]
fn every_listed_name_is_dispatched() {
    for name in CONSUL_TEMPLATE {
        let result = call(name, Vec::new());
        if let Err(message) = result {
            assert!(!message.contains("not defined"), "{name}: {message}");
        }
        assert!(has(name));
        assert!(refused(name).is_none());
    }
    for name in SPRIG {
        let full = format!("sprig_{name}");
        if let Err(message) = call(&full, Vec::new()) {
            assert!(!message.contains("not defined"), "{full}: {message}");
        }
        assert!(has(&full));
    }
    for name in SPRIG_NOT_IMPLEMENTED {
        assert!(!SPRIG.contains(name), "{name}");
        let full = format!("sprig_{name}");
        assert!(!has(&full));
        assert!(refused(&full).unwrap().contains("not implemented yet"));
    }
    for (name, _) in SPRIG_UNSUPPORTED {
        assert!(!SPRIG.contains(name), "{name}");
        let full = format!("sprig_{name}");
        assert!(!has(&full));
        assert!(refused(&full).unwrap().contains("deliberately unsupported"));
    }
    assert_eq!(
        refused("service").unwrap(),
        "function \"service\" is Consul-only (no Consul client) and out of scope for pki-sidecar"
    );
    assert!(refused("nosuch").is_none());
}

#[test]
fn strings_match_go() {
    assert_eq!(ok("toUpper", &[s("abc")]), s("ABC"));
    assert_eq!(ok("toLower", &[s("ÀBC")]), s("àbc"));
    assert_eq!(
        ok("toTitle", &[s("hello wORLD-x don't")]),
        s("Hello WORLD-X Don't")
    );
    assert_eq!(ok("trimSpace", &[s(" \t x \n")]), s("x"));
    assert_eq!(ok("trim", &[s("-_"), s("-_x_-")]), s("x"));
    assert_eq!(ok("trimPrefix", &[s("ab"), s("abab")]), s("ab"));
    assert_eq!(ok("trimSuffix", &[s("b"), s("abb")]), s("ab"));
    assert_eq!(ok("replaceAll", &[s(""), s("-"), s("ab")]), s("-a-b-"));
    assert_eq!(ok("split", &[s(","), s(" a,b \n")]), l(&[s("a"), s("b")]));
    assert_eq!(ok("split", &[s(","), s("  ")]), l(&[]));
    assert_eq!(ok("join", &[s("-"), l(&[s("a"), s("b")])]), s("a-b"));
    assert_eq!(
        err("join", &[s("-"), l(&[i(1)])]),
        "wrong type for value; expected []string; got []interface {}"
    );
    assert_eq!(
        ok("splitToMap", &[s(","), s("="), s("a=1,b=2=3,c")]),
        m(&[("a", s("1")), ("b", s("2=3"))])
    );
    assert_eq!(ok("indent", &[i(2), s("a\n\nb\n")]), s("  a\n\n  b\n"));
    assert!(err("indent", &[i(i64::MAX), s("a")]).contains("larger than pki-sidecar allows"));
    assert!(err("sprig_nindent", &[i(1 << 40), s("a")]).contains("larger than"));
    assert_eq!(
        err("parseJSON", &[s("é")]),
        "invalid character 'é' looking for beginning of value"
    );
    assert_eq!(
        err("indent", &[i(-1), s("a")]),
        "indent value must be a positive integer"
    );
    assert_eq!(
        err("toUpper", &[i(1)]),
        "wrong type for value; expected string; got int"
    );
    assert_eq!(
        err("toUpper", &[]),
        "wrong number of args for toUpper: want 1 got 0"
    );
    assert_eq!(
        ok(
            "regexReplaceAll",
            &[s("a(x*)b"), s("${1}W"), s("-ab-axxb-")]
        ),
        s("-W-xxW-")
    );
    assert_eq!(
        ok("regexMatch", &[s("^[a-z]+$"), s("abc")]),
        Value::Bool(true)
    );
    assert!(err("regexMatch", &[s("("), s("x")]).starts_with("error parsing regexp"));
}

#[test]
fn environment_and_files() {
    // PATH is set in every test environment; an unset name is empty.
    assert_ne!(ok("env", &[s("PATH")]), s(""));
    assert_eq!(ok("env", &[s("PKI_SIDECAR_SURELY_UNSET")]), s(""));
    assert_eq!(
        err("mustEnv", &[s("PKI_SIDECAR_SURELY_UNSET")]),
        "required environment variable PKI_SIDECAR_SURELY_UNSET is empty"
    );
    assert_eq!(
        ok("envOrDefault", &[s("PKI_SIDECAR_SURELY_UNSET"), s("d")]),
        s("d")
    );
    assert_eq!(ok("file", &[s("")]), s(""));
    assert!(
        ok("file", &[s("Cargo.toml")])
            .to_string_lossy()
            .contains("pki-sidecar")
    );
    assert_eq!(
        err("file", &[s("/nonexistent/x")]),
        "file(/nonexistent/x): stat /nonexistent/x: no such file or directory"
    );
    assert_eq!(err("file", &[s("/")]), "file(/): read /: is a directory");
}

#[test]
fn encodings_match_go() {
    assert_eq!(ok("base64Encode", &[s("hi?>")]), s("aGk/Pg=="));
    assert_eq!(ok("base64URLEncode", &[s("hi?>")]), s("aGk_Pg=="));
    assert_eq!(ok("base64Decode", &[s("aGk/Pg==")]), s("hi?>"));
    assert_eq!(ok("base64URLDecode", &[s("aGk_Pg==")]), s("hi?>"));
    assert_eq!(
        err("base64Decode", &[s("a*")]),
        "base64Decode: illegal base64 data at input byte 1"
    );
    assert_eq!(
        ok("sha256Hex", &[s("abc")]),
        s("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        ok("md5sum", &[s("abc")]),
        s("900150983cd24fb0d6963f7d28e17f72")
    );
    assert_eq!(
        ok("hmacSHA256Hex", &[s("message"), s("key")]),
        s("6e9ef29b75fffc5b7abae527d58fdadb2fe42e7219011976917343065f58ed4a")
    );
    let data = m(&[
        ("b", s("<&>")),
        ("a", Value::Float(3.0)),
        ("c", l(&[Value::Nil, Value::Bool(true)])),
    ]);
    assert_eq!(
        ok("toJSON", &[data.clone()]),
        s(r#"{"a":3,"b":"\u003c\u0026\u003e","c":[null,true]}"#)
    );
    assert_eq!(
        ok("toUnescapedJSON", &[data.clone()]),
        s(r#"{"a":3,"b":"<&>","c":[null,true]}"#)
    );
    assert_eq!(
        ok("toJSONPretty", &[data]),
        s(
            "{\n  \"a\": 3,\n  \"b\": \"\\u003c\\u0026\\u003e\",\n  \"c\": [\n    null,\n    true\n  ]\n}"
        )
    );
    assert_eq!(ok("toJSON", &[Value::Float(1e21)]), s("1e+21"));
    assert_eq!(ok("toJSON", &[Value::Float(1e-7)]), s("1e-7"));
    assert_eq!(
        ok("parseJSON", &[s(r#"{"a":[1,"x"]}"#)]),
        m(&[("a", l(&[Value::Float(1.0), s("x")]))])
    );
    assert_eq!(ok("parseJSON", &[s("")]), m(&[]));
    assert_eq!(err("parseJSON", &[s("{")]), "unexpected end of JSON input");
    assert_eq!(
        ok("sprig_b64dec", &[s("*")]),
        s("illegal base64 data at input byte 0")
    );
    assert!(err("base64Decode", &[s("/w==")]).contains("not UTF-8"));
    assert!(err("sprig_b64dec", &[s("/w==")]).contains("not UTF-8"));
    assert!(err("sprig_trunc", &[i(1), s("é")]).contains("not UTF-8"));
    assert_eq!(ok("sprig_b32enc", &[s("hello")]), s("NBSWY3DP"));
    assert_eq!(ok("sprig_b32dec", &[s("NBSWY3DP")]), s("hello"));
    assert_eq!(ok("sprig_b32enc", &[s("hi")]), s("NBUQ===="));
    assert_eq!(ok("sprig_b32dec", &[s("NBUQ====")]), s("hi"));
    assert_eq!(
        ok("sprig_sha1sum", &[s("abc")]),
        s("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    assert_eq!(ok("sprig_adler32sum", &[s("Wikipedia")]), s("300286872"));
}

#[test]
fn yaml_and_toml() {
    let data = m(&[
        ("name", s("web")),
        ("port", i(8080)),
        ("on", s("yes")),
        ("empty", s("")),
        ("list", l(&[s("a"), i(1)])),
        ("nested", m(&[("k", s("v: x")), ("multi", s("a\nb"))])),
        ("key10", i(10)),
        ("key9", i(9)),
    ]);
    assert_eq!(
        ok("toYAML", &[data]),
        s("empty: \"\"\n\
           key9: 9\n\
           key10: 10\n\
           list:\n\
           - a\n\
           - 1\n\
           name: web\n\
           nested:\n  \
             k: 'v: x'\n  \
             multi: |-\n    a\n    b\n\
           \"on\": \"yes\"\n\
           port: 8080")
    );
    assert_eq!(
        ok("parseYAML", &[s("a: 1\nb: [x, 2.5]\nc: ~\n")]),
        m(&[
            ("a", i(1)),
            ("b", l(&[s("x"), Value::Float(2.5)])),
            ("c", Value::Nil)
        ])
    );
    assert!(err("parseYAML", &[s("a: [")]).starts_with("yaml: "));
    assert_eq!(
        ok(
            "toTOML",
            &[m(&[
                ("a", i(1)),
                ("s", s("x\"y")),
                (
                    "t",
                    m(&[
                        ("f", Value::Float(2.0)),
                        ("u", m(&[("b", Value::Bool(true))]))
                    ])
                ),
            ])]
        ),
        s("a = 1\ns = \"x\\\"y\"\n\n[t]\n  f = 2.0\n  [t.u]\n    b = true")
    );
    assert_eq!(ok("toTOML", &[s("x")]), s("\"x\""));
    assert_eq!(ok("toTOML", &[l(&[i(1), s("a")])]), s("[1, \"a\"]"));
}

#[test]
fn numbers_print_as_vault_sent_them_and_tomls_floats_have_no_exponent() {
    // Vault writes a float64 with Go's encoding/json: plain between 1e-6 and 1e21.
    let vault = |text: &str| {
        Value::from_vault_json(&serde_json::from_str::<serde_json::Value>(text).unwrap())
    };
    for (sent, kept) in [
        ("0.000002", "0.000002"),
        ("100000000000000000000", "100000000000000000000"),
        ("18446744073709552000", "18446744073709552000"),
        ("-0", "-0"),
        ("1e+21", "1e+21"),
        ("1e-7", "1e-7"),
        ("5432", "5432"),
        ("123.456", "123.456"),
    ] {
        assert_eq!(vault(sent), Value::JsonNumber(kept.to_string()), "{sent}");
    }
    // BurntSushi's toml: `'f'` digits with `.0`, a json.Number as its int64 first.
    let toml = |value: Value| ok("toTOML", &[m(&[("x", value)])]);
    assert_eq!(toml(Value::Float(10485760.0)), s("x = 10485760.0"));
    assert_eq!(toml(Value::Float(0.00001)), s("x = 0.00001"));
    assert_eq!(toml(Value::Float(1e20)), s("x = 100000000000000000000.0"));
    assert_eq!(toml(vault("-0")), s("x = 0"));
    assert_eq!(
        toml(vault("12345678901234567890")),
        s("x = 12345678901234567000.0")
    );
}

#[test]
fn math_matches_consul_template() {
    assert_eq!(ok("add", &[i(2), i(3)]), i(5));
    assert_eq!(ok("subtract", &[i(2), i(3)]), i(1));
    assert_eq!(
        ok("multiply", &[i(2), Value::Float(1.5)]),
        Value::Float(3.0)
    );
    assert_eq!(ok("divide", &[i(2), i(7)]), i(3));
    assert_eq!(ok("divide", &[i(2), Value::Float(7.0)]), Value::Float(3.5));
    assert_eq!(ok("modulo", &[i(3), i(7)]), i(1));
    assert_eq!(ok("minimum", &[i(3), i(7)]), i(3));
    assert_eq!(ok("maximum", &[Value::Float(7.5), i(7)]), Value::Float(7.5));
    assert_eq!(
        err("divide", &[i(0), i(7)]),
        "runtime error: integer divide by zero"
    );
    assert_eq!(
        err("add", &[i(1), s("x")]),
        "add: unknown type for \"x\" (string)"
    );
    assert_eq!(
        err("modulo", &[Value::Float(1.5), i(7)]),
        "modulo: unknown type for %!q(float64=1.5) (float64)"
    );
}

#[test]
fn collections_match_consul_template() {
    let list = l(&[s("a"), i(1), Value::Float(2.0)]);
    assert_eq!(ok("in", &[list.clone(), i(1)]), Value::Bool(true));
    assert_eq!(ok("in", &[list.clone(), s("1")]), Value::Bool(false));
    assert_eq!(ok("contains", &[s("a"), list.clone()]), Value::Bool(true));
    assert_eq!(ok("contains", &[s("b"), s("abc")]), Value::Bool(true));
    assert_eq!(
        ok("containsAll", &[l(&[s("a"), i(1)]), list.clone()]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("containsAny", &[l(&[s("z"), i(1)]), list.clone()]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("containsNone", &[l(&[s("z")]), list.clone()]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("containsNotAll", &[l(&[s("a"), s("z")]), list]),
        Value::Bool(true)
    );
    assert_eq!(
        ok(
            "explodeMap",
            &[m(&[("a/b", i(1)), ("a/c", i(2)), ("d", i(3))])]
        ),
        m(&[("a", m(&[("b", i(1)), ("c", i(2))])), ("d", i(3))])
    );
    assert_eq!(
        err("explodeMap", &[m(&[("a", i(1)), ("a/b", i(2))])]),
        "explodeMap: not a map: \"a/b\": \"a\" already has value '\\x01'"
    );
    let dst = m(&[("a", i(1)), ("n", m(&[("x", i(1))]))]);
    let src = m(&[
        ("a", i(2)),
        ("b", i(3)),
        ("n", m(&[("x", i(2)), ("y", i(2))])),
    ]);
    assert_eq!(
        ok("mergeMap", &[dst.clone(), src.clone()]),
        m(&[
            ("a", i(1)),
            ("b", i(3)),
            ("n", m(&[("x", i(1)), ("y", i(2))]))
        ])
    );
    assert_eq!(
        ok("mergeMapWithOverride", &[dst, src]),
        m(&[
            ("a", i(2)),
            ("b", i(3)),
            ("n", m(&[("x", i(2)), ("y", i(2))]))
        ])
    );
    assert_eq!(ok("loop", &[i(3)]), l(&[i(0), i(1), i(2)]));
    assert_eq!(ok("loop", &[s("2"), i(4)]), l(&[i(2), i(3)]));
    assert_eq!(
        err("loop", &[]),
        "loop: wrong number of arguments, expected 1 or 2, but got 0"
    );
    assert_eq!(
        err("loop", &[Value::Float(1.0)]),
        "loop: bad argument type: float64"
    );
}

#[test]
fn parsing_numbers() {
    assert_eq!(ok("parseBool", &[s("t")]), Value::Bool(true));
    assert_eq!(ok("parseBool", &[s("")]), Value::Bool(false));
    assert_eq!(
        err("parseBool", &[s("yes")]),
        "parseBool: strconv.ParseBool: parsing \"yes\": invalid syntax"
    );
    assert_eq!(ok("parseInt", &[s("-42")]), i(-42));
    assert_eq!(
        err("parseInt", &[s("0x10")]),
        "parseInt: strconv.ParseInt: parsing \"0x10\": invalid syntax"
    );
    assert_eq!(
        err("parseInt", &[s("99999999999999999999")]),
        "parseInt: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
    );
    assert_eq!(ok("parseUint", &[s("42")]), i(42));
    assert_eq!(
        err("parseUint", &[s("-1")]),
        "parseUint: strconv.ParseUint: parsing \"-1\": invalid syntax"
    );
    assert_eq!(ok("parseFloat", &[s("1.5e3")]), Value::Float(1500.0));
    assert_eq!(
        err("parseFloat", &[s("x")]),
        "parseFloat: strconv.ParseFloat: parsing \"x\": invalid syntax"
    );
}

#[test]
fn go_time_layouts() {
    let t = gotime::Instant {
        seconds: 1_136_239_445,
        nanos: 123_456_789,
    };
    // Go's reference time, in UTC: Mon Jan 2 22:04:05 UTC 2006.
    assert_eq!(
        gotime::format(
            &t,
            "Mon Monday Jan January 01 1 02 2 _2 15 03 3 04 4 05 5 PM pm 2006 06 MST"
        ),
        "Mon Monday Jan January 01 1 02 2  2 22 10 10 04 4 05 5 PM pm 2006 06 UTC"
    );
    assert_eq!(gotime::format(&t, gotime::RFC3339), "2006-01-02T22:04:05Z");
    assert_eq!(
        gotime::format(&t, "15:04:05.000 .999999999 -0700 -07:00 Z0700 002"),
        "22:04:05.123 .123456789 +0000 +00:00 Z 002"
    );
    assert_eq!(
        gotime::format(&t, gotime::GO_STRING),
        "2006-01-02 22:04:05.123456789 +0000 UTC"
    );
    assert_eq!(
        gotime::parse_go_string("2006-01-02 22:04:05.123456789 +0000 UTC"),
        Some(t)
    );
    assert_eq!(ok("sprig_date", &[s("2006-01-02"), i(0)]), s("1970-01-01"));
    assert_eq!(
        ok("sprig_unixEpoch", &[s("2006-01-02 22:04:05 +0000 UTC")]),
        s("1136239445")
    );
    assert_eq!(gotime::parse_duration("1h30m"), Ok(5_400_000_000_000));
    assert_eq!(gotime::parse_duration("-1.5s"), Ok(-1_500_000_000));
    assert_eq!(gotime::parse_duration("0"), Ok(0));
    assert_eq!(
        gotime::parse_duration("1"),
        Err("time: missing unit in duration \"1\"".to_owned())
    );
    assert_eq!(
        gotime::parse_duration("1d"),
        Err("time: unknown unit \"d\" in duration \"1d\"".to_owned())
    );
    assert_eq!(
        gotime::parse_duration("x"),
        Err("time: invalid duration \"x\"".to_owned())
    );
    assert_eq!(
        ok(
            "sprig_dateModify",
            &[s("-1h"), s("2006-01-02 22:04:05 +0000 UTC")]
        ),
        s("2006-01-02 21:04:05 +0000 UTC")
    );
    assert_eq!(
        ok(
            "sprig_dateModify",
            &[s("bad"), s("2006-01-02 22:04:05 +0000 UTC")]
        ),
        s("2006-01-02 22:04:05 +0000 UTC")
    );
    assert_eq!(
        err(
            "sprig_mustDateModify",
            &[s("bad"), s("2006-01-02 22:04:05 +0000 UTC")]
        ),
        "time: invalid duration \"bad\""
    );
    assert_eq!(ok("sprig_htmlDate", &[i(86_400)]), s("1970-01-02"));
    let stamp = ok("timestamp", &[]);
    assert_eq!(stamp.to_string_lossy().len(), 20);
    assert!(
        ok("timestamp", &[s("unix")])
            .to_string_lossy()
            .parse::<i64>()
            .is_ok()
    );
    assert_eq!(
        err("timestamp", &[s("a"), s("b")]),
        "timestamp: wrong number of arguments, expected 0 or 1, but got 2"
    );
}

#[test]
fn sprig_strings() {
    assert_eq!(ok("sprig_trim", &[s(" x ")]), s("x"));
    assert_eq!(ok("sprig_upper", &[s("x")]), s("X"));
    assert_eq!(
        ok("sprig_title", &[s("hello don't_x-y")]),
        s("Hello Don'T_x-Y")
    );
    assert_eq!(ok("sprig_untitle", &[s("Hello")]), s("hello"));
    assert_eq!(ok("sprig_substr", &[i(1), i(3), s("hello")]), s("el"));
    assert_eq!(ok("sprig_substr", &[i(2), i(99), s("hello")]), s("llo"));
    assert_eq!(ok("sprig_trunc", &[i(3), s("hello")]), s("hel"));
    assert_eq!(ok("sprig_trunc", &[i(-3), s("hello")]), s("llo"));
    assert_eq!(ok("sprig_abbrev", &[i(5), s("hello world")]), s("he..."));
    assert_eq!(
        ok("sprig_abbrevboth", &[i(5), i(10), s("1234 5678 9123")]),
        s("...5678...")
    );
    assert_eq!(ok("sprig_repeat", &[i(3), s("ab")]), s("ababab"));
    assert_eq!(ok("sprig_nospace", &[s("a b\tc")]), s("abc"));
    assert_eq!(ok("sprig_initials", &[s("First Try")]), s("FT"));
    assert_eq!(
        ok("sprig_swapcase", &[s("This Is A.Test")]),
        s("tHIS iS a.tEST")
    );
    assert_eq!(ok("sprig_contains", &[s("b"), s("abc")]), Value::Bool(true));
    assert_eq!(
        ok("sprig_hasPrefix", &[s("a"), s("abc")]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("sprig_hasSuffix", &[s("c"), s("abc")]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("sprig_quote", &[s("a\"b"), i(1), Value::Nil]),
        s(r#""a\"b" "1""#)
    );
    assert_eq!(ok("sprig_squote", &[s("a"), i(1)]), s("'a' '1'"));
    assert_eq!(
        ok("sprig_cat", &[s("a"), i(1), Value::Nil, s("b")]),
        s("a 1 b")
    );
    assert_eq!(ok("sprig_indent", &[i(2), s("a\nb")]), s("  a\n  b"));
    assert_eq!(ok("sprig_nindent", &[i(2), s("a")]), s("\n  a"));
    assert_eq!(ok("sprig_replace", &[s("a"), s("b"), s("aa")]), s("bb"));
    assert_eq!(ok("sprig_plural", &[s("one"), s("many"), i(2)]), s("many"));
    assert_eq!(
        ok("sprig_wrap", &[i(5), s("Hello World again")]),
        s("Hello\nWorld\nagain")
    );
    assert_eq!(
        ok("sprig_wrapWith", &[i(5), s("\t"), s("Hello World")]),
        s("Hello\tWorld")
    );
    assert_eq!(
        ok("sprig_split", &[s("$"), s("a$b")]),
        m(&[("_0", s("a")), ("_1", s("b"))])
    );
    assert_eq!(
        ok("sprig_splitn", &[s("$"), i(2), s("a$b$c")]),
        m(&[("_0", s("a")), ("_1", s("b$c"))])
    );
    assert_eq!(ok("sprig_splitList", &[s(","), s("")]), l(&[s("")]));
    assert_eq!(
        ok("sprig_join", &[s("+"), l(&[i(1), s("a"), Value::Nil])]),
        s("1+a")
    );
    assert_eq!(ok("sprig_join", &[s("+"), s("x")]), s("x"));
    assert_eq!(
        ok("sprig_sortAlpha", &[l(&[s("b"), i(10), s("a")])]),
        l(&[s("10"), s("a"), s("b")])
    );
    assert_eq!(
        ok("sprig_toStrings", &[l(&[i(1), Value::Bool(true)])]),
        l(&[s("1"), s("true")])
    );
    assert_eq!(ok("sprig_seq", &[i(3)]), s("1 2 3"));
    assert_eq!(ok("sprig_seq", &[i(5), i(-2), i(1)]), s("5 3 1"));
    assert_eq!(ok("sprig_seq", &[i(0)]), s("1 0"));
}

#[test]
fn sprig_values_and_lists() {
    assert_eq!(ok("sprig_default", &[s("d"), s("")]), s("d"));
    assert_eq!(ok("sprig_default", &[s("d")]), s("d"));
    assert_eq!(ok("sprig_default", &[s("d"), i(3)]), i(3));
    assert_eq!(ok("sprig_empty", &[l(&[])]), Value::Bool(true));
    assert_eq!(ok("sprig_coalesce", &[i(0), s(""), s("x")]), s("x"));
    assert_eq!(ok("sprig_coalesce", &[i(0)]), Value::Nil);
    assert_eq!(ok("sprig_all", &[i(1), s("")]), Value::Bool(false));
    assert_eq!(ok("sprig_any", &[i(0), s("x")]), Value::Bool(true));
    assert_eq!(
        ok("sprig_ternary", &[s("a"), s("b"), Value::Bool(false)]),
        s("b")
    );
    assert_eq!(ok("sprig_typeOf", &[l(&[])]), s("[]interface {}"));
    assert_eq!(ok("sprig_kindOf", &[m(&[])]), s("map"));
    assert_eq!(ok("sprig_kindIs", &[s("int"), i(1)]), Value::Bool(true));
    assert_eq!(
        ok("sprig_typeIsLike", &[s("*int"), i(1)]),
        Value::Bool(false)
    );
    assert_eq!(ok("sprig_typeIsLike", &[s("int"), i(1)]), Value::Bool(true));
    assert_eq!(
        ok("sprig_deepEqual", &[i(1), Value::Float(1.0)]),
        Value::Bool(false)
    );
    assert_eq!(err("sprig_fail", &[s("boom")]), "boom");
    assert_eq!(ok("sprig_toString", &[Value::Float(2.5)]), s("2.5"));
    assert_eq!(ok("sprig_atoi", &[s("x")]), i(0));
    assert_eq!(ok("sprig_int64", &[s("0x10")]), i(16));
    assert_eq!(ok("sprig_int", &[s("010")]), i(8));
    assert_eq!(ok("sprig_int", &[s("12.0")]), i(12));
    assert_eq!(ok("sprig_float64", &[s("1.5")]), Value::Float(1.5));
    assert_eq!(ok("sprig_add", &[i(1), s("2"), Value::Float(3.9)]), i(6));
    assert_eq!(ok("sprig_sub", &[i(1), i(2)]), i(-1));
    assert_eq!(ok("sprig_mul", &[i(2), i(3), i(4)]), i(24));
    assert_eq!(ok("sprig_div", &[i(7), i(2)]), i(3));
    assert_eq!(ok("sprig_mod", &[i(7), i(2)]), i(1));
    assert_eq!(
        err("sprig_div", &[i(7), i(0)]),
        "runtime error: integer divide by zero"
    );
    assert_eq!(ok("sprig_max", &[i(1), i(5), i(3)]), i(5));
    assert_eq!(ok("sprig_min", &[i(4), i(5), i(3)]), i(3));
    assert_eq!(
        ok("sprig_maxf", &[i(1), Value::Float(5.5)]),
        Value::Float(5.5)
    );
    assert_eq!(
        ok("sprig_round", &[Value::Float(1.23556), i(2)]),
        Value::Float(1.24)
    );
    assert_eq!(ok("sprig_ceil", &[Value::Float(1.2)]), Value::Float(2.0));
    assert_eq!(ok("sprig_until", &[i(3)]), l(&[i(0), i(1), i(2)]));
    assert_eq!(
        ok("sprig_untilStep", &[i(0), i(10), i(4)]),
        l(&[i(0), i(4), i(8)])
    );
    let list = l(&[i(1), i(2), i(2), i(0)]);
    assert_eq!(ok("sprig_first", &[list.clone()]), i(1));
    assert_eq!(ok("sprig_last", &[list.clone()]), i(0));
    assert_eq!(ok("sprig_rest", &[list.clone()]), l(&[i(2), i(2), i(0)]));
    assert_eq!(ok("sprig_initial", &[list.clone()]), l(&[i(1), i(2), i(2)]));
    assert_eq!(ok("sprig_uniq", &[list.clone()]), l(&[i(1), i(2), i(0)]));
    assert_eq!(ok("sprig_compact", &[list.clone()]), l(&[i(1), i(2), i(2)]));
    assert_eq!(ok("sprig_without", &[list.clone(), i(2)]), l(&[i(1), i(0)]));
    assert_eq!(ok("sprig_has", &[i(2), list.clone()]), Value::Bool(true));
    assert_eq!(ok("sprig_reverse", &[l(&[i(1), i(2)])]), l(&[i(2), i(1)]));
    assert_eq!(ok("sprig_append", &[l(&[i(1)]), i(2)]), l(&[i(1), i(2)]));
    assert_eq!(ok("sprig_prepend", &[l(&[i(1)]), i(2)]), l(&[i(2), i(1)]));
    assert_eq!(
        ok("sprig_concat", &[l(&[i(1)]), l(&[i(2)])]),
        l(&[i(1), i(2)])
    );
    assert_eq!(
        ok("sprig_slice", &[list.clone(), i(1), i(3)]),
        l(&[i(2), i(2)])
    );
    assert_eq!(
        ok("sprig_chunk", &[i(3), list.clone()]),
        l(&[l(&[i(1), i(2), i(2)]), l(&[i(0)])])
    );
    assert_eq!(ok("sprig_first", &[l(&[])]), Value::Nil);
    assert_eq!(
        err("sprig_first", &[s("x")]),
        "Cannot find first on type string"
    );
    assert_eq!(
        err("sprig_mustFirst", &[i(1)]),
        "Cannot find first on type int"
    );
    let d = ok("sprig_dict", &[s("a"), i(1), s("b")]);
    assert_eq!(d, m(&[("a", i(1)), ("b", s(""))]));
    assert_eq!(ok("sprig_get", &[d.clone(), s("a")]), i(1));
    assert_eq!(ok("sprig_get", &[d.clone(), s("z")]), s(""));
    assert_eq!(ok("sprig_hasKey", &[d.clone(), s("b")]), Value::Bool(true));
    assert_eq!(
        ok("sprig_set", &[d.clone(), s("c"), i(3)]).to_string_lossy(),
        "map[a:1 b: c:3]"
    );
    assert_eq!(ok("sprig_unset", &[d.clone(), s("a")]), m(&[("b", s(""))]));
    assert_eq!(ok("sprig_keys", &[d.clone()]), l(&[s("a"), s("b")]));
    assert_eq!(ok("sprig_pick", &[d.clone(), s("a")]), m(&[("a", i(1))]));
    assert_eq!(ok("sprig_omit", &[d.clone(), s("a")]), m(&[("b", s(""))]));
    assert_eq!(ok("sprig_pluck", &[s("a"), d.clone(), m(&[])]), l(&[i(1)]));
    assert_eq!(
        ok(
            "sprig_dig",
            &[s("x"), s("y"), s("def"), m(&[("x", m(&[("y", i(5))]))])]
        ),
        i(5)
    );
    assert_eq!(ok("sprig_dig", &[s("q"), s("def"), d]), s("def"));
}

#[test]
fn sprig_merge_fills_or_overwrites_like_mergo() {
    let dst = m(&[("a", i(1)), ("e", s("")), ("n", m(&[("x", i(1))]))]);
    assert_eq!(
        ok(
            "sprig_merge",
            &[
                dst.clone(),
                m(&[("a", i(2)), ("e", s("f"))]),
                m(&[("n", m(&[("y", i(2))]))])
            ]
        ),
        m(&[
            ("a", i(1)),
            ("e", s("f")),
            ("n", m(&[("x", i(1)), ("y", i(2))]))
        ])
    );
    assert_eq!(
        ok(
            "sprig_mustMergeOverwrite",
            &[dst, m(&[("a", i(2)), ("e", s(""))])]
        ),
        m(&[("a", i(2)), ("e", s("")), ("n", m(&[("x", i(1))]))])
    );
    assert_eq!(
        err("sprig_merge", &[s("x")]),
        "wrong type for value; expected map[string]interface {}; got string"
    );
}

#[test]
fn sprig_regex_paths_env() {
    assert_eq!(
        ok("sprig_regexMatch", &[s("^a"), s("abc")]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("sprig_regexMatch", &[s("("), s("abc")]),
        Value::Bool(false)
    );
    assert!(err("sprig_mustRegexMatch", &[s("("), s("abc")]).starts_with("error parsing regexp"));
    assert_eq!(
        ok("sprig_regexFindAll", &[s("a."), s("abacad"), i(2)]),
        l(&[s("ab"), s("ac")])
    );
    assert_eq!(ok("sprig_regexFind", &[s("a."), s("xxad")]), s("ad"));
    assert_eq!(
        ok(
            "sprig_regexReplaceAll",
            &[s("a(x*)b"), s("-ab-axxb-"), s("${1}W")]
        ),
        s("-W-xxW-")
    );
    assert_eq!(
        ok(
            "sprig_regexReplaceAllLiteral",
            &[s("a(x*)b"), s("-ab-"), s("${1}")]
        ),
        s("-${1}-")
    );
    assert_eq!(
        ok("sprig_regexSplit", &[s("z+"), s("pizza"), i(-1)]),
        l(&[s("pi"), s("a")])
    );
    assert_eq!(ok("sprig_regexQuoteMeta", &[s("1.2")]), s("1\\.2"));
    assert_eq!(ok("sprig_base", &[s("/a/b.txt")]), s("b.txt"));
    assert_eq!(ok("sprig_dir", &[s("/a/b.txt")]), s("/a"));
    assert_eq!(ok("sprig_dir", &[s("b")]), s("."));
    assert_eq!(ok("sprig_clean", &[s("a//b/../c/.")]), s("a/c"));
    assert_eq!(ok("sprig_clean", &[s("/../a")]), s("/a"));
    assert_eq!(ok("sprig_ext", &[s("a/b.tar.gz")]), s(".gz"));
    assert_eq!(ok("sprig_isAbs", &[s("/a")]), Value::Bool(true));
    assert_eq!(
        ok(
            "sprig_expandenv",
            &[s("$PKI_SIDECAR_SURELY_UNSET-${PKI_SIDECAR_SURELY_UNSET}x$")]
        ),
        s("-x$")
    );
    let uuid = ok("sprig_uuidv4", &[]).to_string_lossy();
    assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"));
    assert_eq!(ok("sprig_hello", &[]), s("Hello!"));
    let alnum = ok("sprig_randAlphaNum", &[i(40)]).to_string_lossy();
    assert!(alnum.len() == 40 && alnum.bytes().all(|b| b.is_ascii_alphanumeric()));
    let alpha = ok("sprig_randAlpha", &[i(40)]).to_string_lossy();
    assert!(alpha.len() == 40 && alpha.bytes().all(|b| b.is_ascii_alphabetic()));
    let digits = ok("sprig_randNumeric", &[i(40)]).to_string_lossy();
    assert!(digits.len() == 40 && digits.bytes().all(|b| b.is_ascii_digit()));
    let ascii = ok("sprig_randAscii", &[i(40)]).to_string_lossy();
    assert!(ascii.len() == 40 && ascii.bytes().all(|b| (32..=126).contains(&b)));
    assert_eq!(ok("sprig_randAlpha", &[i(-1)]), s(""));
    for _ in 0..50 {
        let Value::Int(n) = ok("sprig_randInt", &[i(3), i(6)]) else {
            panic!("randInt gives an int")
        };
        assert!((3..6).contains(&n));
    }
    assert_eq!(
        err("sprig_randInt", &[i(3), i(3)]),
        "invalid argument to Intn"
    );
    assert_eq!(ok("sprig_randBytes", &[i(3)]).to_string_lossy().len(), 4);
    let mut shuffled: Vec<char> = ok("sprig_shuffle", &[s("abcdé")])
        .to_string_lossy()
        .chars()
        .collect();
    shuffled.sort_unstable();
    assert_eq!(shuffled, vec!['a', 'b', 'c', 'd', 'é']);
    assert_eq!(ok("sprig_toDecimal", &[s("0777")]), i(511));
    assert_eq!(ok("sprig_toDecimal", &[i(17)]), i(15));
    assert_eq!(ok("sprig_toDecimal", &[i(8)]), i(0));
}

trait Lossy {
    fn to_string_lossy(&self) -> String;
}

impl Lossy for Value {
    fn to_string_lossy(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => crate::template::go_sprint(std::slice::from_ref(other)),
        }
    }
}

#[test]
fn regex_errors_are_worded_as_go_words_them() {
    assert_eq!(
        err("regexMatch", &[s("[a-"), s("x")]),
        "error parsing regexp: missing closing ]: `[a-`"
    );
    assert_eq!(
        err("regexMatch", &[s("a(b"), s("x")]),
        "error parsing regexp: missing closing ): `a(b`"
    );
    assert_eq!(
        err("regexMatch", &[s("a)"), s("x")]),
        "error parsing regexp: unexpected ): `a)`"
    );
    assert_eq!(
        err("regexMatch", &[s("*a"), s("x")]),
        "error parsing regexp: missing argument to repetition operator: `*`"
    );
}

#[test]
fn refused_names_fail_the_parse_with_their_reason() {
    use crate::agent::functions::KnownFunctions;
    use crate::template::Template;
    let parse = |text: &str| Template::parse(text, "{{", "}}", &KnownFunctions).map(|_| ());
    assert_eq!(
        parse("x\n{{ service \"web\" }}").unwrap_err().to_string(),
        "2:4: function \"service\" is Consul-only (no Consul client) and out of scope for pki-sidecar"
    );
    assert!(
        parse("{{ sprig_semver \"1.0.0\" }}")
            .unwrap_err()
            .message
            .contains("Sprig's \"semver\") is deliberately unsupported in pki-sidecar: it returns a Go object")
    );
    assert!(
        parse("{{ plugin \"x\" }}")
            .unwrap_err()
            .message
            .contains("out of scope")
    );
    assert_eq!(
        parse("{{ nosuch }}").unwrap_err().message,
        "function \"nosuch\" not defined"
    );
    assert!(parse("{{ sprig_upper (toJSON 1) | trimSpace }}").is_ok());
}

#[test]
fn no_function_panics_on_odd_arguments() {
    let big = [
        Value::Nil,
        i(0),
        i(-1),
        i(i64::MIN),
        i(i64::MAX),
        Value::Float(f64::NAN),
        Value::Float(-1e300),
        s(""),
        s("é/ü.x"),
        s("[("),
        l(&[Value::Nil, i(1), s("a")]),
        m(&[("a", m(&[("b", i(1))]))]),
    ];
    let small = [i(2), i(-3), s("a b"), l(&[]), m(&[])];
    let names: Vec<String> = CONSUL_TEMPLATE
        .iter()
        .map(|n| (*n).to_owned())
        .chain(SPRIG.iter().map(|n| format!("sprig_{n}")))
        .filter(|n| !matches!(n.as_str(), "file" | "sprig_fail"))
        .collect();
    for name in &names {
        for a in &big {
            let _ = call(name, vec![a.clone()]);
            for b in &big {
                let _ = call(name, vec![a.clone(), b.clone()]);
            }
            for b in &small {
                for c in &small {
                    let _ = call(name, vec![a.clone(), b.clone(), c.clone()]);
                    let _ = call(name, vec![b.clone(), a.clone(), c.clone()]);
                    let _ = call(name, vec![b.clone(), c.clone(), a.clone()]);
                }
            }
        }
    }
}

#[test]
fn sprig_word_cases_follow_xstrings() {
    for (input, snake) in [
        ("FirstName", "first_name"),
        ("HTTPServer", "http_server"),
        ("NoHTTPS", "no_https"),
        ("GO PATH", "go_path"),
        ("HTTP20xOK", "http_20x_ok"),
        ("Bld4Floor3rd", "bld4_floor_3rd"),
        ("HTTPStatus404", "http_status404"),
        ("v1.2.3Beta", "v1.2.3_beta"),
        ("x$y+z", "x_$_y_+_z"),
        ("  x  y ", "__x__y_"),
        ("中文Name", "中文_name"),
        ("", ""),
    ] {
        assert_eq!(ok("sprig_snakecase", &[s(input)]), s(snake), "{input}");
        let kebab = snake.replace('_', "-");
        assert_eq!(ok("sprig_kebabcase", &[s(input)]), s(&kebab), "{input}");
    }
    for (input, camel) in [
        ("some_words", "SomeWords"),
        ("_complex__case_", "_Complex_Case_"),
        ("a", "A"),
        ("_", "__"),
        ("__", "___"),
        ("-x-", "-X-"),
        ("ärger_über", "ÄrgerÜber"),
        ("", ""),
    ] {
        assert_eq!(ok("sprig_camelcase", &[s(input)]), s(camel), "{input}");
    }
    assert!(err("sprig_snakecase", &[i(1)]).contains("expected string"));
}

#[test]
fn sprig_float_arithmetic_is_decimal() {
    let f = Value::Float;
    assert_eq!(ok("sprig_addf", &[f(0.1), f(0.2)]), f(0.3));
    assert_eq!(ok("sprig_addf", &[]), f(0.0));
    assert_eq!(ok("sprig_add1f", &[s("2.25")]), f(3.25));
    assert_eq!(ok("sprig_subf", &[f(0.3), f(0.1)]), f(0.2));
    assert_eq!(ok("sprig_subf", &[i(1), i(2), i(3)]), f(-4.0));
    assert_eq!(ok("sprig_mulf", &[f(1.1), i(3)]), f(3.3));
    assert_eq!(ok("sprig_mulf", &[f(1e200), f(1e200)]), f(f64::INFINITY));
    assert_eq!(ok("sprig_divf", &[i(2), i(3)]), f(0.6666666666666667));
    assert_eq!(ok("sprig_divf", &[i(-2), i(3)]), f(-0.6666666666666667));
    assert_eq!(ok("sprig_divf", &[i(1), f(7e10)]), f(1.42857e-11));
    assert_eq!(err("sprig_divf", &[i(1), i(0)]), "decimal division by 0");
    assert!(err("sprig_addf", &[f(f64::NAN)]).starts_with("Cannot create a Decimal from NaN"));
    assert!(err("sprig_subf", &[]).contains("want at least 1"));
}

#[test]
fn sprig_urls_follow_go_net_url() {
    let parsed = ok(
        "sprig_urlParse",
        &[s("https://u:p%40ss@Example.com:8443/a/b%20c?x=1#f")],
    );
    assert_eq!(
        parsed,
        m(&[
            ("scheme", s("https")),
            ("host", s("Example.com:8443")),
            ("hostname", s("Example.com")),
            ("path", s("/a/b c")),
            ("query", s("x=1")),
            ("opaque", s("")),
            ("fragment", s("f")),
            ("userinfo", s("u:p%40ss")),
        ])
    );
    assert_eq!(
        ok("sprig_urlJoin", &[parsed]),
        s("https://u:p%40ss@Example.com:8443/a/b%20c?x=1#f")
    );
    let opaque = ok("sprig_urlParse", &[s("MAILTO:root@example.com")]);
    assert_eq!(
        opaque,
        m(&[
            ("scheme", s("mailto")),
            ("host", s("")),
            ("hostname", s("")),
            ("path", s("")),
            ("query", s("")),
            ("opaque", s("root@example.com")),
            ("fragment", s("")),
            ("userinfo", s("")),
        ])
    );
    assert_eq!(
        err("sprig_urlParse", &[s("http://[::1")]),
        "unable to parse url: parse \"http://[::1\": missing ']' in host"
    );
    assert_eq!(
        err("sprig_urlParse", &[s("/a%zz")]),
        "unable to parse url: parse \"/a%zz\": invalid URL escape \"%zz\""
    );
    assert_eq!(
        err("sprig_urlParse", &[s(":x")]),
        "unable to parse url: parse \":x\": missing protocol scheme"
    );
    assert_eq!(
        err("sprig_urlParse", &[s("http://h:x/")]),
        "unable to parse url: parse \"http://h:x/\": invalid port \":x\" after host"
    );
    assert_eq!(ok("sprig_urlJoin", &[m(&[("path", s("a:b"))])]), s("./a:b"));
    assert_eq!(
        ok("sprig_urlJoin", &[m(&[("host", s("h")), ("path", s("p"))])]),
        s("//h/p")
    );
    assert_eq!(
        err("sprig_urlJoin", &[m(&[("host", i(1))])]),
        "unable to parse host key, must be of type string, but int found"
    );
}

#[test]
fn sprig_durations_print_as_go() {
    use super::gotime::{duration_string, round_duration};
    for (nanos, shown) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (1_000_000_000, "1s"),
        (3_661_000_000_000, "1h1m1s"),
        (3_600_000_000_000, "1h0m0s"),
        (-90_500_000_000, "-1m30.5s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ] {
        assert_eq!(duration_string(nanos), shown, "{nanos}");
    }
    assert_eq!(round_duration(1_499_999_999, 1_000_000_000), 1_000_000_000);
    assert_eq!(round_duration(1_500_000_000, 1_000_000_000), 2_000_000_000);
    assert_eq!(
        round_duration(-1_500_000_000, 1_000_000_000),
        -2_000_000_000
    );
    assert_eq!(round_duration(i64::MAX, 1_000_000_000), i64::MAX);
    assert_eq!(ok("sprig_duration", &[s("3661")]), s("1h1m1s"));
    assert_eq!(ok("sprig_duration", &[s("-1")]), s("-1s"));
    // A template's integers are Go ints, which Sprig's duration does not read.
    assert_eq!(ok("sprig_duration", &[i(95)]), s("0s"));
    assert_eq!(ok("sprig_durationRound", &[s("2h10m5s")]), s("2h"));
    assert_eq!(ok("sprig_durationRound", &[s("-5m")]), s("5m"));
    assert_eq!(ok("sprig_durationRound", &[s("721h")]), s("1mo"));
    assert_eq!(ok("sprig_durationRound", &[s("1s")]), s("0s"));
    assert_eq!(ok("sprig_durationRound", &[i(3600)]), s("0s"));
    let hour_ago = super::gotime::now().seconds - 3600;
    let ago = ok("sprig_ago", &[i(hour_ago)]);
    assert!(
        matches!(&ago, Value::String(a) if a.starts_with("1h0m")),
        "{ago:?}"
    );
    let now = ok("sprig_now", &[]);
    assert_eq!(ok("sprig_ago", &[now.clone()]), s("0s"));
    let rounded = ok("sprig_durationRound", &[now]);
    assert_eq!(rounded, s("0s"));
    assert_eq!(ok("sprig_ago", &[l(&[])]), s("0s"));
}

#[test]
fn sprig_semver_compare_follows_masterminds_semver() {
    let cmp = |c: &str, v: &str| ok("sprig_semverCompare", &[s(c), s(v)]);
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    assert_eq!(cmp("^1.2.0", "1.9.0"), t);
    assert_eq!(cmp("^1.2.0", "2.0.0"), f);
    assert_eq!(cmp("^1.2.0", "1.3.0-beta"), f);
    assert_eq!(cmp(">=1.2.3-0", "1.2.4-rc.1"), t);
    assert_eq!(cmp("~1.2", "1.2.9"), t);
    assert_eq!(cmp("~1.2", "1.3.0"), f);
    assert_eq!(cmp("1.2 - 1.4", "1.4.5"), t);
    assert_eq!(cmp(">1.0.0 || <0.5", "0.4.0"), t);
    assert_eq!(cmp("^0.2.3", "0.3.0"), f);
    assert_eq!(cmp("*", "v1"), t);
    assert_eq!(cmp("1.2.3", "1.2.3+build"), t);
    assert_eq!(
        err("sprig_semverCompare", &[s("^1"), s("one")]),
        "invalid semantic version"
    );
    assert_eq!(
        err("sprig_semverCompare", &[s(">1 <<2"), s("1.0.0")]),
        "improper constraint: >1 <<2"
    );
    assert_eq!(
        err("sprig_semverCompare", &[s(">1"), s("1.0.0-01")]),
        "version segment starts with 0"
    );
    assert!(
        err("sprig_semverCompare", &[s(">1"), s("99999999999999999999")])
            .starts_with("error parsing version segment: strconv.ParseUint")
    );
}

#[test]
fn sprig_to_date_parses_go_layouts() {
    let to_date = |layout: &str, value: &str| ok("sprig_toDate", &[s(layout), s(value)]);
    assert_eq!(
        to_date("2006-01-02", "2017-12-31"),
        s("2017-12-31 00:00:00 +0000 UTC")
    );
    assert_eq!(
        to_date("Jan 2 2006 3:04PM", "feb 29 2024 12:30AM"),
        s("2024-02-29 00:30:00 +0000 UTC")
    );
    assert_eq!(
        to_date("2006-01-02 15:04:05", "2021-06-01 10:00:00.5"),
        s("2021-06-01 10:00:00.5 +0000 UTC")
    );
    // An offset is applied; the time is kept (and printed) in UTC.
    assert_eq!(
        to_date(super::gotime::RFC3339, "2021-06-01T12:00:00+02:00"),
        s("2021-06-01 10:00:00 +0000 UTC")
    );
    assert_eq!(
        to_date("2006-01-02", "bad"),
        s("0001-01-01 00:00:00 +0000 UTC")
    );
    let must = |layout: &str, value: &str| err("sprig_mustToDate", &[s(layout), s(value)]);
    assert_eq!(
        must("2006-01-02", "2017-13-01"),
        "parsing time \"2017-13-01\": month out of range"
    );
    assert_eq!(
        must("2006-01-02", "2023-02-29"),
        "parsing time \"2023-02-29\": day out of range"
    );
    assert_eq!(
        must("Jan 2, 2006", "Jun 1 2021"),
        "parsing time \"Jun 1 2021\" as \"Jan 2, 2006\": cannot parse \" 2021\" as \", \""
    );
    assert_eq!(
        must("2006-01-02", "2021-06-01x"),
        "parsing time \"2021-06-01x\": extra text: \"x\""
    );
    assert!(must("2006 MST", "2021 CET").contains("only UTC"));
}
