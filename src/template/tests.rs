//! Unit tests for each feature and error, and the golden tests: every
//! `tests/fixtures/templates/*.tpl` must render exactly as OpenBao Agent (Go) rendered it into
//! the `.golden` beside it (`scripts/template-goldens.sh`), and so must every case of the
//! compatibility suite's `syntax` area (`tests/compat/templates/syntax`).

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

/// Caller functions for tests: `secret` returns a fixed value for one path, `fail` always
/// errors, `echo` returns its arguments as a list.
struct TestFunctions {
    secret_path: String,
    secret: Value,
    calls: Vec<String>,
}

impl TestFunctions {
    fn new() -> TestFunctions {
        TestFunctions {
            secret_path: String::new(),
            secret: Value::Nil,
            calls: Vec::new(),
        }
    }
}

impl Functions for TestFunctions {
    fn has(&self, name: &str) -> bool {
        matches!(name, "secret" | "fail" | "echo")
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        self.calls.push(name.to_owned());
        match name {
            "secret" => match args.as_slice() {
                [Value::String(path)] if *path == self.secret_path => Ok(self.secret.clone()),
                _ => Err(format!("no secret at {args:?}")),
            },
            "echo" => Ok(Value::List(args)),
            _ => Err("it failed".to_owned()),
        }
    }
}

fn render_with(text: &str, dot: &Value, options: RenderOptions) -> Result<String, TemplateError> {
    let mut functions = TestFunctions::new();
    let template = Template::parse(text, "{{", "}}", &functions)?;
    template.render(dot, &mut functions, options)
}

fn render(text: &str) -> String {
    render_data(text, &data())
}

fn render_data(text: &str, dot: &Value) -> String {
    match render_with(text, dot, RenderOptions::default()) {
        Ok(out) => out,
        Err(e) => panic!("{text:?} failed: {e}"),
    }
}

/// The error `text` fails with (parse or render), as "line:col: message".
fn failure(text: &str) -> String {
    failure_with(text, RenderOptions::default())
}

fn failure_with(text: &str, options: RenderOptions) -> String {
    match render_with(text, &data(), options) {
        Ok(out) => panic!("{text:?} rendered {out:?}, expected an error"),
        Err(e) => e.to_string(),
    }
}

fn data() -> Value {
    Value::from_json(&serde_json::json!({
        "name": "web",
        "empty": "",
        "n": 3,
        "f": 2.5,
        "list": ["a", "b", "c"],
        "ints": [3, 1, 2],
        "map": {"b": 2, "a": 1, "c": 3},
        "nested": {"inner": {"deep": "yes"}, "items": [{"id": "x"}, {"id": "y"}]},
        "null": null,
        "yes": true,
        "no": false,
    }))
}

// ---- text, trimming, comments ------------------------------------------------------------

#[test]
fn plain_text_passes_through() {
    assert_eq!(render("hello\n world "), "hello\n world ");
    assert_eq!(render(""), "");
}

#[test]
fn trim_markers_remove_ascii_whitespace_on_their_side() {
    assert_eq!(render("a  \n\t {{- .name -}} \r\n b"), "awebb");
    assert_eq!(render("a {{- .name }} b"), "aweb b");
    assert_eq!(render("a {{ .name -}} b"), "a webb");
    // Without the space, `-3` is a number.
    assert_eq!(render("a {{-3}} b"), "a -3 b");
    assert_eq!(render("a {{ -3 }} b"), "a -3 b");
    // Non-breaking space is not trimmed.
    assert_eq!(render("a\u{a0}{{- 1 }}"), "a\u{a0}1");
}

#[test]
fn comments_print_nothing_and_may_trim() {
    assert_eq!(render("a {{/* c */}} b"), "a  b");
    assert_eq!(render("a {{- /* c */ -}} b"), "ab");
    assert_eq!(render("a {{- /* multi\nline */}} b"), "a b");
    assert_eq!(failure("x\n{{/* open"), "2:1: unclosed comment");
    assert_eq!(
        failure("{{/* c */ x }}"),
        "1:1: comment ends before closing delimiter"
    );
}

#[test]
fn seed_template_shape() {
    let text = "{{- with .nested -}}\n{{ .inner.deep }}\n{{ if .items }}\n{{ len .items }}\n{{ end }}\n{{ end }}    ";
    assert_eq!(render(text), "yes\n\n2\n\n    ");
}

// ---- actions and values ------------------------------------------------------------------

#[test]
fn values_print_as_go_does() {
    assert_eq!(
        render("{{ .name }} {{ .n }} {{ .f }} {{ .yes }} {{ .missing }} {{ .null }}"),
        "web 3 2.5 true <no value> <no value>"
    );
    assert_eq!(
        render("{{ .list }} {{ .map }} {{ .nested.items }}"),
        "[a b c] map[a:1 b:2 c:3] [map[id:x] map[id:y]]"
    );
    assert_eq!(
        render("{{ print .null }} {{ printf \"%v\" (index .list 0) }}"),
        "<nil> a"
    );
    let list_with_nil = Value::List(vec![Value::Nil, Value::from(1i64)]);
    assert_eq!(render_data("{{ . }}", &list_with_nil), "[<nil> 1]");
}

#[test]
fn literals() {
    assert_eq!(
        render(
            "{{ 42 }} {{ -7 }} {{ +7 }} {{ 0x1f }} {{ 0X1F }} {{ 0o17 }} {{ 017 }} {{ 0b11 }} {{ 1_000 }}"
        ),
        "42 -7 7 31 31 15 15 3 1000"
    );
    assert_eq!(
        render("{{ 1.5 }} {{ 2.0 }} {{ 1e3 }} {{ 1e6 }} {{ .5 }} {{ 1e-7 }} {{ 0x1E }}"),
        "1.5 2 1000 1e+06 0.5 1e-07 30"
    );
    assert_eq!(
        render("{{ 'a' }} {{ '\\n' }} {{ '\\'' }} {{ 'é' }}"),
        "97 10 39 233"
    );
    assert_eq!(
        render(r#"{{ "a\tb\"c\\d\x41\101\u00e9\U0001F600" }}"#),
        "a\tb\"c\\dAAé😀"
    );
    assert_eq!(render("{{ `raw\\n{{ }}` }}"), "raw\\n{{ }}");
    assert_eq!(render("{{ `a\r\nb` }}"), "a\nb");
    assert_eq!(render("{{ true }} {{ false }}"), "true false");
    assert_eq!(render("{{ \"}}\" }}"), "}}");
}

#[test]
fn bad_literals_are_parse_errors() {
    assert_eq!(failure("{{ 12abc }}"), "1:4: bad number syntax: \"12a\"");
    assert_eq!(
        failure("{{ 1__0 }}"),
        "1:4: illegal number syntax: \"1__0\""
    );
    assert_eq!(
        failure("{{ 9223372036854775808 }}"),
        "1:4: 9223372036854775808 overflows int"
    );
    assert_eq!(failure("{{ 1e }}"), "1:4: illegal number syntax: \"1e\"");
    assert_eq!(
        failure("\n  {{ \"a\\qb\" }}"),
        "2:6: bad string literal \"a\\qb\": invalid syntax"
    );
    assert_eq!(failure("{{ \"open }}"), "1:4: unterminated quoted string");
    assert_eq!(
        failure("{{ `open }}"),
        "1:4: unterminated raw quoted string"
    );
    assert_eq!(
        failure("{{ 'ab' }}"),
        "1:4: malformed character constant: 'ab'"
    );
    assert_eq!(
        failure("{{ \"\\xff\" }}"),
        "1:4: bad string literal \"\\xff\": not valid UTF-8"
    );
}

#[test]
fn field_chains_on_dot_variables_and_parentheses() {
    assert_eq!(render("{{ .nested.inner.deep }}"), "yes");
    assert_eq!(render("{{ $n := .nested }}{{ $n.inner.deep }}"), "yes");
    assert_eq!(render("{{ (index .nested.items 1).id }}"), "y");
    assert_eq!(render("{{ (.nested).inner.deep }}"), "yes");
    assert_eq!(render("{{ .nested.nothing }}"), "<no value>");
}

#[test]
fn field_errors() {
    assert_eq!(
        failure("{{ .name.first }}"),
        "1:4: can't evaluate field first in type interface {}"
    );
    assert_eq!(
        failure("{{ .list.x }}"),
        "1:4: can't evaluate field x in type interface {}"
    );
    // A value not from the data has its own type, as in Go.
    assert_eq!(
        failure("{{ $s := \"abc\" }}{{ $s.x }}"),
        "1:21: can't evaluate field x in type string"
    );
    assert_eq!(
        failure("{{ .missing.x }}"),
        "1:4: nil pointer evaluating interface {}.x"
    );
    assert_eq!(
        failure("{{ .name 1 }}"),
        "1:4: name is not a method but has arguments"
    );
    assert_eq!(
        failure("{{ 1 | .name }}"),
        "1:8: name is not a method but has arguments"
    );
    assert_eq!(
        failure("{{ 1 | . }}"),
        "1:8: non executable command in pipeline stage 2"
    );
    assert_eq!(
        failure("{{ 1 | $ }}"),
        "1:8: can't give argument to non-function $"
    );
    assert_eq!(failure("{{ nil }}"), "1:4: nil is not a command");
    assert_eq!(
        failure("{{ \"s\".x }}"),
        "1:4: unexpected . after term \"\\\"s\\\"\""
    );
}

#[test]
fn absent_data_has_absent_fields() {
    // consul-template renders with nil data: `.X` and `$.X` are `<no value>`, not errors.
    assert_eq!(
        render_data("{{ .a.b }} {{ $.a }} {{ . }}", &Value::Nil),
        "<no value> <no value> <no value>"
    );
    let options = RenderOptions {
        error_on_missing_key: true,
    };
    let err = render_with("\n {{ .a }}", &Value::Nil, options).unwrap_err();
    assert_eq!(err.to_string(), "2:5: nil data; no entry for key \"a\"");
}

#[test]
fn missing_keys_with_error_option() {
    let options = RenderOptions {
        error_on_missing_key: true,
    };
    assert_eq!(
        failure_with("ok\n{{ .nested.nope }}", options),
        "2:4: map has no entry for key \"nope\""
    );
    assert_eq!(
        render_with("{{ .nested.inner.deep }}", &data(), options).unwrap(),
        "yes"
    );
    // index is not affected, as in Go.
    assert_eq!(
        render_with("{{ index .map \"z\" }}", &data(), options).unwrap(),
        "<no value>"
    );
}

// ---- control structures ------------------------------------------------------------------

#[test]
fn if_else_if_else() {
    let text = "{{ if .empty }}1{{ else if .no }}2{{ else if .n }}3{{ else }}4{{ end }}";
    assert_eq!(render(text), "3");
    assert_eq!(render("{{ if .missing }}x{{ else }}y{{ end }}"), "y");
    for (value, truth) in [
        ("0", "F"),
        ("1", "T"),
        ("0.0", "F"),
        ("\"\"", "F"),
        ("\"0\"", "T"),
        (".list", "T"),
        (".null", "F"),
        ("false", "F"),
    ] {
        assert_eq!(
            render(&format!(
                "{{{{ if {value} }}}}T{{{{ else }}}}F{{{{ end }}}}"
            )),
            truth,
            "{value}"
        );
    }
    let empty = Value::from_json(&serde_json::json!({"l": [], "m": {}}));
    assert_eq!(
        render_data("{{ if .l }}T{{ end }}{{ if .m }}T{{ end }}", &empty),
        ""
    );
}

#[test]
fn with_sets_dot_and_else_with_chains() {
    assert_eq!(
        render("{{ with .nested.inner }}{{ .deep }}{{ end }}"),
        "yes"
    );
    assert_eq!(
        render("{{ with .missing }}x{{ else with .name }}{{ . }}{{ else }}z{{ end }}"),
        "web"
    );
    assert_eq!(
        render("{{ with .empty }}x{{ else }}{{ .name }}{{ end }}"),
        "web"
    );
}

#[test]
fn range_lists_and_maps() {
    assert_eq!(render("{{ range .list }}{{ . }}{{ end }}"), "abc");
    assert_eq!(
        render("{{ range $i, $v := .list }}{{ $i }}={{ $v }} {{ end }}"),
        "0=a 1=b 2=c "
    );
    assert_eq!(render("{{ range $v := .ints }}{{ $v }}{{ end }}"), "312");
    assert_eq!(
        render("{{ range $k, $v := .map }}{{ $k }}{{ $v }}{{ end }}"),
        "a1b2c3"
    );
    assert_eq!(render("{{ range .map }}{{ . }}{{ end }}"), "123");
    assert_eq!(
        render("{{ range .missing }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        render("{{ range $x := .nested.nothing }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        failure("\n{{ range .name }}{{ end }}"),
        "2:10: range can't iterate over web"
    );
}

#[test]
fn break_and_continue() {
    assert_eq!(
        render("{{ range .list }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}"),
        "a"
    );
    assert_eq!(
        render("{{ range .list }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}"),
        "ac"
    );
    // break leaves only the innermost range.
    assert_eq!(
        render("{{ range .list }}{{ range $.ints }}{{ break }}{{ end }}{{ . }}{{ end }}"),
        "abc"
    );
    assert_eq!(
        failure("{{ if true }}{{ break }}{{ end }}"),
        "1:17: {{break}} outside {{range}}"
    );
    assert_eq!(
        failure("{{ continue }}"),
        "1:4: {{continue}} outside {{range}}"
    );
    assert_eq!(
        failure("{{ range .list }}{{ break 1 }}{{ end }}"),
        "1:27: unexpected \"1\" in {{break}}"
    );
}

#[test]
fn variables_scope_like_go() {
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}"),
        "21"
    );
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        render("{{ $x := 0 }}{{ range $i, $v := .list }}{{ $x = $i }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        render("{{ $i := 9 }}{{ range $i, $v := .list }}{{ end }}{{ $i }}"),
        "9"
    );
    assert_eq!(
        render("{{ range .list }}{{ $.name }}{{ end }}"),
        "webwebweb"
    );
    assert_eq!(
        render("{{ $i := 0 }}{{ $v := \"\" }}{{ range $i, $v = .list }}{{ end }}{{ $i }}{{ $v }}"),
        "2c"
    );
    assert_eq!(render("{{ $x := .list }}{{ len $x }}"), "3");
    assert_eq!(
        failure("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}"),
        "1:39: undefined variable \"$y\""
    );
    assert_eq!(failure("{{ $z = 1 }}"), "1:4: undefined variable \"$z\"");
    assert_eq!(
        failure("{{ range $a, $b, $c := .list }}{{ end }}"),
        "1:16: too many declarations in range"
    );
    assert_eq!(
        failure("{{ $a, $b := 1 }}"),
        "1:6: too many declarations in command"
    );
}

#[test]
fn block_structure_errors() {
    assert_eq!(
        failure("a\n{{ if .yes }}\nb"),
        "3:2: unexpected EOF: {{if}} at 2:4 has no {{end}}"
    );
    assert_eq!(
        failure("{{ range .list }}{{ with . }}"),
        "1:30: unexpected EOF: {{with}} at 1:21 has no {{end}}"
    );
    assert_eq!(failure("x {{ end }}"), "1:6: unexpected {{end}}");
    assert_eq!(failure("x\n  {{ else }}"), "2:6: unexpected {{else}}");
    assert_eq!(
        failure("{{ if 1 }}{{ else }}{{ else }}{{ end }}"),
        "1:24: expected end; found {{else}}"
    );
    assert_eq!(failure("{{ if }}{{ end }}"), "1:7: missing value for if");
    assert_eq!(failure("{{ }}"), "1:4: missing value for command");
    assert_eq!(failure("a {{ .name "), "1:3: unclosed action");
    assert_eq!(failure("{{ (.name }}"), "1:11: unclosed left paren");
    assert_eq!(failure("{{ .name) }}"), "1:9: unexpected right paren");
    assert_eq!(
        failure("{{ if 1 }}{{ define \"x\" }}{{ end }}{{ end }}"),
        "1:14: unexpected <define> in command"
    );
    assert_eq!(failure("{{ end 1 }}"), "1:8: unexpected \"1\" in end");
    assert_eq!(failure("{{ .a.b-}}"), "1:8: bad character U+002D '-'");
    assert_eq!(failure("{{ .a # }}"), "1:7: unexpected \"#\" in operand");
    assert_eq!(
        failure("{{ .a | 1 }}"),
        "1:9: non executable command in pipeline stage 2"
    );
    assert_eq!(failure("{{ a := 1 }}"), "1:4: function \"a\" not defined");
    assert_eq!(failure("{{ .x : }}"), "1:7: expected :=");
    assert_eq!(
        failure("{{ \u{1} }}"),
        "1:4: unrecognized character in action: U+0001 '\u{1}'"
    );
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
    let deep_blocks = "{{ if 1 }}".repeat(1000) + &"{{ end }}".repeat(1000);
    assert!(
        failure(&deep_blocks).ends_with("nesting deeper than 200 levels"),
        "{}",
        failure(&deep_blocks)
    );
    let deep_parens = format!("{{{{ {}1{} }}}}", "(".repeat(1000), ")".repeat(1000));
    assert!(failure(&deep_parens).contains("nesting deeper than"));
    let fine = "{{ if 1 }}".repeat(150) + "x" + &"{{ end }}".repeat(150);
    assert_eq!(render(&fine), "x");
}

// ---- pipelines and functions ---------------------------------------------------------------

#[test]
fn piped_value_is_the_last_argument() {
    assert_eq!(render("{{ \"a\" | printf \"%s-%s\" \"b\" }}"), "b-a");
    assert_eq!(render("{{ .list | len }}"), "3");
    assert_eq!(render("{{ 1 | echo 2 3 | len }}"), "3");
    assert_eq!(render("{{ (echo 1 (echo 2)) }}"), "[1 [2]]");
}

#[test]
fn caller_functions_and_their_errors() {
    let mut functions = TestFunctions::new();
    functions.secret_path = "kv/x".to_owned();
    functions.secret = Value::from_json(&serde_json::json!({"Data": {"v": "s3cret"}}));
    let template = Template::parse(
        "{{ with secret \"kv/x\" }}{{ .Data.v }}{{ end }}",
        "{{",
        "}}",
        &functions,
    )
    .unwrap();
    assert_eq!(
        template
            .render(&Value::Nil, &mut functions, RenderOptions::default())
            .unwrap(),
        "s3cret"
    );
    assert_eq!(functions.calls, ["secret"]);
    assert_eq!(
        failure("line\n  {{ fail 1 }}"),
        "2:6: error calling fail: it failed"
    );
    assert_eq!(
        failure("{{ .name | nope }}"),
        "1:12: function \"nope\" not defined"
    );
}

/// A caller function with a built-in's name replaces it, as a Go FuncMap does.
#[test]
fn caller_functions_shadow_builtins() {
    struct Shadow;
    impl Functions for Shadow {
        fn has(&self, name: &str) -> bool {
            name == "len"
        }
        fn call(&mut self, _: &str, _: Vec<Value>) -> Result<Value, String> {
            Ok(Value::from("shadowed"))
        }
    }
    let template = Template::parse("{{ len 1 2 }}", "{{", "}}", &Shadow).unwrap();
    assert_eq!(
        template
            .render(&Value::Nil, &mut Shadow, RenderOptions::default())
            .unwrap(),
        "shadowed"
    );
}

#[test]
fn and_or_short_circuit_and_return_the_deciding_value() {
    assert_eq!(
        render("{{ and 1 0 2 }}|{{ and 1 2 }}|{{ or 0 \"\" }}|{{ or 0 .name 1 }}"),
        "0|2||web"
    );
    assert_eq!(
        render("{{ and .no (fail) }}|{{ or .yes (fail) }}"),
        "false|true"
    );
    assert_eq!(render("{{ .empty | or \"default\" }}"), "default");
    assert_eq!(render("{{ not .list }} {{ not .null }}"), "false true");
}

#[test]
fn comparisons() {
    assert_eq!(
        render("{{ eq 1 1 }} {{ eq .name \"a\" \"web\" }} {{ eq .name \"a\" \"b\" }} {{ ne 1 2 }}"),
        "true true false true"
    );
    assert_eq!(
        render(
            "{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 1.25 }} {{ ge \"a\" \"b\" }} {{ lt \"B\" \"a\" }}"
        ),
        "true true true false true"
    );
    assert_eq!(
        render("{{ eq .missing \"x\" }} {{ eq .missing .null }} {{ ne .missing 1 }}"),
        "false true true"
    );
    assert_eq!(
        failure("{{ eq 1 1.0 }}"),
        "1:4: error calling eq: incompatible types for comparison: int and float64"
    );
    assert_eq!(
        failure("{{ lt 1 \"1\" }}"),
        "1:4: error calling lt: incompatible types for comparison: int and string"
    );
    assert_eq!(
        failure("{{ lt true false }}"),
        "1:4: error calling lt: invalid type for comparison"
    );
    assert_eq!(
        failure("{{ gt .list .list }}"),
        "1:4: error calling gt: invalid type for comparison"
    );
    assert_eq!(
        failure("{{ eq .list .list }}"),
        "1:4: error calling eq: non-comparable type [a b c]: []interface {}"
    );
    assert_eq!(
        failure("{{ eq .list .map }}"),
        "1:4: error calling eq: non-comparable types [a b c]: []interface {}, \
         map[string]interface {}: map[a:1 b:2 c:3]"
    );
}

#[test]
fn builtin_arity_is_checked_at_parse_time() {
    assert_eq!(
        failure("{{ if false }}{{ not 1 2 }}{{ end }}"),
        "1:18: wrong number of args for not: want 1 got 2"
    );
    assert_eq!(
        failure("{{ 1 | lt 2 3 }}"),
        "1:8: wrong number of args for lt: want 2 got 3"
    );
    assert_eq!(
        failure("{{ eq 1 }}"),
        "1:4: error calling eq: missing argument for comparison"
    );
    assert_eq!(
        failure("{{ printf }}"),
        "1:4: wrong number of args for printf: want at least 1 got 0"
    );
    assert_eq!(
        failure("{{ print len }}"),
        "1:10: wrong number of args for len: want 1 got 0"
    );
    assert_eq!(
        render("{{ print }}|{{ println }}|{{ 1 | not }}"),
        "|\n|false"
    );
}

#[test]
fn len_and_index() {
    assert_eq!(
        render("{{ len .list }} {{ len .map }} {{ len \"héllo\" }} {{ len .empty }}"),
        "3 3 6 0"
    );
    assert_eq!(
        render(
            "{{ index .list 2 }} {{ index .map \"b\" }} {{ index .nested \"items\" 1 \"id\" }} {{ index .map \"zz\" }} {{ index \"abc\" 0 }}"
        ),
        "c 2 y <no value> 97"
    );
    assert_eq!(
        failure("\n\n   {{ index .list 3 }}"),
        "3:7: error calling index: index out of range: 3"
    );
    assert_eq!(
        failure("{{ index .list -1 }}"),
        "1:4: error calling index: index out of range: -1"
    );
    assert_eq!(
        failure("{{ index .list \"a\" }}"),
        "1:4: error calling index: cannot index slice/array with type string"
    );
    assert_eq!(
        failure("{{ index .map 1 }}"),
        "1:4: error calling index: value has type int; should be string"
    );
    assert_eq!(
        failure("{{ index .missing 1 }}"),
        "1:4: error calling index: index of untyped nil"
    );
    assert_eq!(
        failure("{{ index .n 1 }}"),
        "1:4: error calling index: can't index item of type int"
    );
    assert_eq!(
        failure("{{ len .n }}"),
        "1:4: error calling len: len of type int"
    );
}

#[test]
fn printf_verbs() {
    let cases = [
        (
            "%s|%v|%q|%x|%X",
            "\"hi\" \"hi\" \"hi\" \"hi\" \"hi\"",
            "hi|hi|\"hi\"|6869|6869",
        ),
        (
            "[%5s][%-5s][%05s][%.1s]",
            "\"ab\" \"ab\" \"ab\" \"ab\"",
            "[   ab][ab   ][000ab][a]",
        ),
        (
            "%d|%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%c|%U",
            "42 42 42 -42 42 255 255 8 5 65 65",
            "42|   42|42   |-0042|+42|ff|FF|10|101|A|U+0041",
        ),
        (
            "%f|%.2f|%8.3f|%-7.1f|%08.2f|%e|%g|%v",
            "3.14159 2.675 3.14159 2.5 -1.5 1234.5678 0.00001 1e21",
            "3.141590|2.67|   3.142|2.5    |-0001.50|1.234568e+03|1e-05|1e+21",
        ),
        ("%.0f %.1f %.2f", "0.5 0.25 0.125", "0 0.2 0.12"),
        ("%t %v %5t", "true false true", "true false  true"),
        ("%%|%d %d|%z", "1", "%|1 %!d(MISSING)|%!z(MISSING)"),
        ("%d", "1 \"x\"", "1%!(EXTRA string=x)"),
        (
            "%d|%s|%v",
            "\"x\" nil nil",
            "%!d(string=x)|%!s(<nil>)|<nil>",
        ),
        (
            "%v|%d|%q",
            ".list .ints .list",
            "[a b c]|[3 1 2]|[\"a\" \"b\" \"c\"]",
        ),
        ("%v", ".map", "map[a:1 b:2 c:3]"),
        ("%[2]s%[1]s", "\"a\" \"b\"", "ba"),
        ("%*d|%-*d|%.*f", "4 7 3 1 1 2.25", "   7|1  |2.2"),
        (
            "%T %T %T %T %T %T",
            "1 1.5 \"s\" true .list .map",
            "int float64 string bool []interface {} map[string]interface {}",
        ),
    ];
    for (format, args, want) in cases {
        assert_eq!(
            render(&format!("{{{{ printf \"{format}\" {args} }}}}")),
            want,
            "{format}"
        );
    }
}

#[test]
fn printf_precisions_beyond_rusts_formatter_pad_with_zeros_as_go() {
    // Found by fuzzing: Rust's `{:.*}` panics above u16::MAX, Go takes up to 1e6.
    let e = render("{{ printf \"%.100000e\" 5.0 }}");
    assert_eq!(e, format!("5.{}e+00", "0".repeat(100_000)));
    let f = render("{{ printf \"%.70000f\" 0.5 }}");
    assert_eq!(f, format!("0.5{}", "0".repeat(69_999)));
    // %g keeps only the exact digits, as Go's does.
    assert_eq!(
        render("{{ printf \"%.80000g\" 0.15 }}"),
        "0.1499999999999999944488848768742172978818416595458984375"
    );
    let capped = render("{{ printf \"%.*e\" 2000000 1.0 }}");
    assert_eq!(capped.len(), "1.".len() + 1_000_000 + "e+00".len());
    // Up to the exact digits nothing changes.
    assert_eq!(
        render("{{ printf \"%.1100f\" 1.0 }}"),
        format!("1.{}", "0".repeat(1100))
    );
}

#[test]
fn print_and_println_spacing() {
    assert_eq!(render("{{ print 1 2 \"a\" \"b\" 3 true }}"), "1 2ab3 true");
    assert_eq!(render("{{ print \"a\" 1 2 \"b\" }}"), "a1 2b");
    assert_eq!(render("{{ println 1 \"a\" 2 }}"), "1 a 2\n");
    assert_eq!(render("{{ print .null 1 }}"), "<nil> 1");
}

#[test]
fn custom_delimiters() {
    let functions = TestFunctions::new();
    let template = Template::parse(
        "{{ x }} [[- .name -]] <<>> [[/* c */]][[ \"]]\" ]]",
        "[[",
        "]]",
        &functions,
    )
    .unwrap();
    let out = template
        .render(&data(), &mut TestFunctions::new(), RenderOptions::default())
        .unwrap();
    assert_eq!(out, "{{ x }}web<<>> ]]");
    let template = Template::parse("a <% .name -%> b<%.n%>", "<%", "%>", &functions).unwrap();
    let out = template
        .render(&data(), &mut TestFunctions::new(), RenderOptions::default())
        .unwrap();
    assert_eq!(out, "a webb3");
    let err = Template::parse("x", "", "}}", &functions).unwrap_err();
    assert_eq!(err.message, "delimiters must not be empty");
}

#[test]
fn multi_line_actions_and_columns_count_characters() {
    assert_eq!(render("{{ print\n  1\n  2 }}"), "1 2");
    assert_eq!(
        failure("é é {{ nope }}"),
        "1:8: function \"nope\" not defined"
    );
}

#[test]
fn json_round_trip() {
    let json = serde_json::json!({"a": [1, 2.5, "s", true, null, {"b": {}}]});
    assert_eq!(Value::from_json(&json).to_json(), json);
    let mut map = BTreeMap::new();
    map.insert(
        "k".to_owned(),
        Value::from(vec![Value::from(1i64), Value::from("v"), Value::from(true)]),
    );
    assert_eq!(
        Value::from(map).to_json(),
        serde_json::json!({"k": [1, "v", true]})
    );
    assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::Value::Null);
}

#[test]
fn odd_input_does_not_panic() {
    let samples = [
        "{{",
        "}}",
        "{{-",
        "{{- ",
        "-}}",
        "{{ -}}",
        "{{- -}}",
        "{{ ( }}",
        "{{ ) }}",
        "{{ $ }}",
        "{{ $. }}",
        "{{ . . }}",
        "{{ .. }}",
        "{{ 'x }}",
        "{{ '\\ }}",
        "{{ \"\\",
        "{{ `",
        "{{/*",
        "{{/**/",
        "{{ | }}",
        "{{ .a | }}",
        "{{ range $i, }}{{ end }}",
        "{{ range $i, 1 }}{{ end }}",
        "{{ else if 1 }}",
        "{{ if 1 }}{{ else with 1 }}{{ end }}",
        "{{ with 1 }}{{ else if 1 }}{{ end }}",
        "{{ 0x }}",
        "{{ 0b2 }}",
        "{{ 1e999 }}",
        "{{ -0x8000000000000000 }}",
        "{{ 'é' }}",
        "{{ \"\\u12\" }}",
        "{{ \"\\ud800\" }}",
        "{{ printf \"%[0]d %[9]d %[x %*.*d %-*d\" 1 }}",
        "{{ printf \"%\" }}",
        "{{ printf \"%-010.3e %+.3g %#v % x %#o\" 1.5 -0.0 1 \"\" 0 }}",
        "{{ printf \"%c %q %U\" -1 -1 -1 }}",
        "{{ (nil).x }}",
        "{{ index . }}",
        "{{ printf 1 }}",
        "{{ len nil }}",
        "\u{0}{{ \u{feff} }}",
    ];
    for text in samples {
        let _ = render_with(text, &data(), RenderOptions::default());
        let _ = render_with(
            text,
            &Value::Nil,
            RenderOptions {
                error_on_missing_key: true,
            },
        );
    }
    // Every prefix of a real template.
    let text = "{{- with .nested -}}{{ range $i, $v := .items }}{{ printf \"%d:%s\" $i $v.id }}{{ else }}-{{ end }}{{ end }}";
    for (end, _) in text.char_indices() {
        let _ = render_with(&text[..end], &data(), RenderOptions::default());
    }
}

// ---- golden tests against Go -----------------------------------------------------------------

/// What consul-template's `secret "secret/data/golden"` returned in the golden run: the KV v2
/// read response, whose `.Data.data` is `golden-secret.json`.
fn golden_functions(dir: &Path) -> TestFunctions {
    let text = std::fs::read_to_string(dir.join("golden-secret.json")).unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let response = serde_json::json!({
        "LeaseID": "",
        "LeaseDuration": 0,
        "Renewable": false,
    });
    // Vault's data as consul-template decodes it: numbers are json.Numbers.
    let vault_data = serde_json::json!({
        "data": data,
        "metadata": {"version": 1, "deletion_time": "", "destroyed": false},
    });
    let Value::Map(mut secret) = Value::from_json(&response) else {
        unreachable!("an object")
    };
    secret.insert("Data".to_owned(), Value::from_vault_json(&vault_data));
    TestFunctions {
        secret_path: "secret/data/golden".to_owned(),
        secret: Value::Map(secret),
        calls: Vec::new(),
    }
}

#[test]
fn goldens_match_go_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut templates: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "tpl"))
        .collect();
    templates.sort();
    assert!(
        templates.len() >= 10,
        "expected the golden templates in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &templates {
        let text = std::fs::read_to_string(path).unwrap();
        let golden = std::fs::read_to_string(path.with_extension("golden")).unwrap();
        let (left, right) = match std::fs::read_to_string(path.with_extension("delims")) {
            Ok(delims) => {
                let mut parts = delims.split_whitespace();
                (
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().to_owned(),
                )
            }
            Err(_) => ("{{".to_owned(), "}}".to_owned()),
        };
        let mut functions = golden_functions(&dir);
        // consul-template executes templates with nil data.
        let rendered = Template::parse(&text, &left, &right, &functions)
            .and_then(|t| t.render(&Value::Nil, &mut functions, RenderOptions::default()));
        match rendered {
            Ok(out) if out == golden => {}
            Ok(out) => failures.push(format!(
                "{}: differs from Go\n--- go\n{golden}\n--- ours\n{out}",
                path.display()
            )),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---- define, template, block ----------------------------------------------------------------

#[test]
fn define_and_template_call_named_templates() {
    assert_eq!(
        render(
            r#"{{ define "a" }}A{{ end }}{{ define "b" }}B{{ template "a" }}{{ end }}[{{ template "b" }}]"#
        ),
        "[BA]"
    );
    // The pipeline's value is the callee's dot and `$`; the caller's variables are not visible.
    assert_eq!(
        render_data(
            r#"{{ define "t" }}{{ .id }}/{{ $.id }}{{ end }}{{ $x := 1 }}{{ template "t" index .nested.items 0 }}"#,
            &data()
        ),
        "x/x"
    );
    assert_eq!(
        failure(r#"{{ define "t" }}{{ $x }}{{ end }}{{ $x := 1 }}{{ template "t" }}"#),
        "1:20: undefined variable \"$x\""
    );
    // Without a pipeline the dot is absent: its fields are quietly absent too.
    assert_eq!(
        render(r#"{{ define "t" }}[{{ . }}][{{ .a.b }}]{{ end }}{{ template "t" }}"#),
        "[<no value>][<no value>]"
    );
    // Variables the call's pipeline declares stay in the caller's scope.
    assert_eq!(
        render(r#"{{ define "t" }}{{ . }}{{ end }}{{ template "t" $v := 7 }}{{ $v }}"#),
        "77"
    );
    assert_eq!(
        render(r#"{{ define `raw` }}R{{ end }}{{ template `raw` }}"#),
        "R"
    );
}

#[test]
fn block_defines_and_calls_in_place() {
    assert_eq!(
        render_data(
            r#"{{ block "l" .list }}{{ range . }}-{{ . }}{{ end }}{{ end }}!"#,
            &data()
        ),
        "-a-b-c!"
    );
    // An empty earlier definition is replaced by the block's body.
    assert_eq!(
        render(r#"{{ define "b" }} {{ end }}{{ block "b" 1 }}body {{ . }}{{ end }}"#),
        "body 1"
    );
}

#[test]
fn redefinition_follows_go() {
    // An empty definition never replaces a non-empty one, and is replaced by a later one.
    assert_eq!(
        render(
            r#"{{ define "x" }}first{{ end }}{{ define "x" }} {{/* c */}} {{ end }}{{ template "x" }}"#
        ),
        "first"
    );
    assert_eq!(
        render(r#"{{ define "x" }}  {{ end }}{{ define "x" }}second{{ end }}{{ template "x" }}"#),
        "second"
    );
    assert_eq!(
        failure(r#"{{ define "x" }}a{{ end }}{{ define "x" }}b{{ end }}"#),
        "1:30: template: multiple definition of template \"x\""
    );
    assert_eq!(
        failure(r#"{{ block "x" 1 }}a{{ end }}{{ define "x" }}b{{ end }}"#),
        "1:31: template: multiple definition of template \"x\""
    );
}

#[test]
fn the_file_is_the_template_named_empty() {
    // consul-template names the file's template "": `define ""` stands in for an empty file,
    // is a second definition beside a non-empty one, and `template ""` calls the file.
    assert_eq!(render("{{ define \"\" }}x{{ end }}\n"), "x");
    assert_eq!(
        failure("{{ define \"\" }}x{{ end }}main"),
        "1:30: template: multiple definition of template \"\""
    );
    assert_eq!(
        render_data(
            r#"{{ define "t" }}{{ template "" 1 }}{{ end }}{{ if . }}{{ . }}{{ else }}{{ template "t" }}{{ end }}"#,
            &Value::Nil
        ),
        "1"
    );
}

#[test]
fn template_errors() {
    assert_eq!(
        failure(r#"{{ template "nope" }}"#),
        "1:13: template \"nope\" not defined"
    );
    assert_eq!(
        failure("{{ template }}"),
        "1:13: unexpected \"}}\" in template clause"
    );
    assert_eq!(
        failure("{{ define x }}{{ end }}"),
        "1:11: unexpected \"x\" in define clause"
    );
    assert_eq!(
        failure(r#"{{ define "x" }}a"#),
        "1:18: unexpected EOF: {{define}} at 1:4 has no {{end}}"
    );
    assert_eq!(
        failure(r#"{{ define "x" }}a{{ else }}b{{ end }}"#),
        "1:21: unexpected {{else}} in define clause"
    );
    assert_eq!(
        failure(r#"{{ block "x" }}a{{ end }}"#),
        "1:14: missing value for block clause"
    );
    // A define body is outside any range, even when the call is inside one.
    assert_eq!(
        failure(r#"{{ define "x" }}{{ break }}{{ end }}"#),
        "1:20: {{break}} outside {{range}}"
    );
}

#[test]
fn template_recursion_is_bounded() {
    // Recursion that ends renders.
    assert_eq!(
        render_data(
            r#"{{ define "r" }}{{ if . }}{{ index . 0 }}{{ template "r" slice . 1 }}{{ end }}{{ end }}{{ template "r" .list }}"#,
            &data()
        ),
        "abc"
    );
    // Endless recursion is an error, not a stack overflow, even with every level nested as
    // deep as the parser allows, on a thread with tokio's 2 MiB worker stack.
    let nested = format!(
        r#"{{{{ define "r" }}}}{}{{{{ template "r" . }}}}{}{{{{ end }}}}{{{{ template "r" 1 }}}}"#,
        "{{ if 1 }}".repeat(super::parse::MAX_DEPTH - 1),
        "{{ end }}".repeat(super::parse::MAX_DEPTH - 1)
    );
    let message = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || failure(&nested))
        .unwrap()
        .join()
        .unwrap();
    let expected = format!(
        "exceeded maximum template depth ({})",
        super::exec::MAX_EXEC_DEPTH
    );
    assert!(message.ends_with(&expected), "{message}");
    // The same without blocks in between.
    let message = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| failure(r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" 1 }}"#))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(message, format!("1:29: {expected}"));
    // The deepest render that succeeds, with parentheses nested as deep as the parser allows
    // at its bottom, fits the same stack.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let parens = super::parse::MAX_DEPTH - 3;
            let text = format!(
                r#"{{{{ define "r" }}}}{{{{ if . }}}}{{{{ template "r" slice . 1 }}}}{{{{ else }}}}{{{{ {}1{} }}}}{{{{ end }}}}{{{{ end }}}}{{{{ template "r" . }}}}"#,
                "(print ".repeat(parens),
                ")".repeat(parens)
            );
            let mut deepest = None;
            for items in (100..200).rev() {
                let list = Value::List(vec![Value::Int(0); items]);
                if let Ok(out) = render_with(&text, &list, RenderOptions::default()) {
                    deepest = Some((items, out));
                    break;
                }
            }
            let (items, out) = deepest.expect("some depth renders");
            assert_eq!(out, "1");
            assert!(items * 2 + 2 >= super::exec::MAX_EXEC_DEPTH, "{items}");
        })
        .unwrap()
        .join()
        .unwrap();
}

// ---- html, js, urlquery, slice, call ----------------------------------------------------------

#[test]
fn html_escapes_as_go() {
    assert_eq!(
        render(r#"{{ html "<a href=\"x\">Tom & Jerry's</a>\u0000" }}"#),
        "&lt;a href=&#34;x&#34;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;\u{FFFD}"
    );
    // Several operands print as fmt.Sprint; nil is <no value>.
    assert_eq!(render(r#"{{ html "a" 1 2 "<" }}"#), "a1 2&lt;");
    assert_eq!(render(r#"{{ html .x }}"#), "&lt;no value&gt;");
    assert_eq!(render(r#"{{ "<b>" | html }}"#), "&lt;b&gt;");
}

#[test]
fn js_escapes_as_go() {
    assert_eq!(
        render(r#"{{ js "it's \"q\" \\ <b> & a=b\ttab\n\u0001 é \u2028" }}"#),
        r#"it\'s \"q\" \\ \u003Cb\u003E \u0026 a\u003Db\u0009tab\u000A\u0001 é \u2028"#
    );
    assert_eq!(render(r#"{{ js 1 2 }}"#), "1 2");
}

#[test]
fn urlquery_escapes_as_go() {
    assert_eq!(
        render(r#"{{ urlquery "a b&c=d/e?f#g+h~i_j.k-l é" }}"#),
        "a+b%26c%3Dd%2Fe%3Ff%23g%2Bh~i_j.k-l+%C3%A9"
    );
    assert_eq!(render(r#"{{ urlquery nil }}"#), "%3Cno+value%3E");
}

#[test]
fn slice_as_go() {
    assert_eq!(
        render_data(
            "{{ slice .list 1 }}|{{ slice .list 0 1 }}|{{ slice .list }}|{{ slice .list 1 1 1 }}",
            &data()
        ),
        "[b c]|[a]|[a b c]|[]"
    );
    assert_eq!(
        render(r#"{{ slice "abcdef" 1 3 }} {{ slice "abc" 3 }}"#),
        "bc "
    );
    for (text, message) in [
        (r#"{{ slice "abc" 2 1 }}"#, "invalid slice index: 2 > 1"),
        (r#"{{ slice "abc" 0 9 }}"#, "index out of range: 9"),
        (r#"{{ slice "abc" -1 }}"#, "index out of range: -1"),
        (
            r#"{{ slice "abc" 0 1 2 }}"#,
            "cannot 3-index slice a string",
        ),
        (r#"{{ slice 3 0 }}"#, "can't slice item of type int"),
        (r#"{{ slice .x 0 }}"#, "slice of untyped nil"),
        (
            r#"{{ slice "abc" "a" }}"#,
            "cannot index slice/array with type string",
        ),
        (r#"{{ slice "abc" 1 2 3 4 }}"#, "too many slice indexes: 4"),
        (
            r#"{{ slice "é" 1 }}"#,
            "slice 1:2 cuts a UTF-8 character (not supported here)",
        ),
    ] {
        assert_eq!(
            failure(text),
            format!("1:4: error calling slice: {message}"),
            "{text}"
        );
    }
}

#[test]
fn call_fails_as_go_with_no_function_values() {
    assert_eq!(
        failure("{{ call .x }}"),
        "1:4: error calling call: call of nil"
    );
    assert_eq!(
        failure(r#"{{ call "f" 1 }}"#),
        "1:4: error calling call: non-function \"f\" of type string"
    );
    assert_eq!(
        failure(r#"{{ "f" | call }}"#),
        "1:10: error calling call: non-function f of type string"
    );
    assert_eq!(
        failure("{{ call }}"),
        "1:4: wrong number of args for call: want at least 1 got 0"
    );
}

// ---- range over an integer, numbers ----------------------------------------------------------

#[test]
fn range_over_an_integer() {
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        render("{{ range $i := 3 }}<{{ $i }}>{{ end }}"),
        "<0><1><2>"
    );
    assert_eq!(
        render("{{ range 0 }}x{{ else }}none{{ end }} {{ range -1 }}x{{ else }}neg{{ end }}"),
        "none neg"
    );
    assert_eq!(
        render(
            "{{ range $i := 9223372036854775807 }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $i }}{{ end }}"
        ),
        "01"
    );
    assert_eq!(
        failure("{{ range $i, $j := 3 }}{{ end }}"),
        "1:10: can't use 3 to iterate over more than one variable"
    );
    assert_eq!(
        failure("{{ range 1.5 }}{{ end }}"),
        "1:10: range can't iterate over 1.5"
    );
    assert_eq!(
        failure(r#"{{ range "ab" }}{{ end }}"#),
        "1:10: range can't iterate over ab"
    );
}

#[test]
fn hexadecimal_floats_and_integer_overflow() {
    assert_eq!(
        render("{{ 0x1p4 }} {{ 0x1.8p1 }} {{ -0x_1p-2 }} {{ 0X.8P0 }}"),
        "16 3 -0.25 0.5"
    );
    assert_eq!(
        failure("{{ 0x1.8 }}"),
        "1:4: illegal number syntax: \"0x1.8\""
    );
    assert_eq!(
        failure("{{ 99999999999999999999 }}"),
        "1:4: integer overflow: \"99999999999999999999\""
    );
}

// ---- field chains on function results and variables -------------------------------------------

#[test]
fn fields_of_function_results_and_variables() {
    assert_eq!(
        render_data(
            "{{ (index .nested.items 0).id }} {{ $h := index .nested.items 1 }}{{ $h.id }} {{ (index .nested.items 0).missing }}",
            &data()
        ),
        "x y <no value>"
    );
    // A pipeline's nil result is Go's invalid value (evalPipeline digs into the interface{}):
    // its fields are quietly absent, and so are those of a variable holding one.
    assert_eq!(
        render_data(
            "[{{ (index .map \"nope\").Data.x }}] {{ $v := index .map \"nope\" }}[{{ $v.Data }}]",
            &data()
        ),
        "[<no value>] [<no value>]"
    );
    // A nil met inside one chain (a missing key) is a nil interface{}: its fields are an
    // error, and so are those of a range's nil element.
    assert_eq!(
        failure("{{ .map.nope.x }}"),
        "1:4: nil pointer evaluating interface {}.x"
    );
    assert_eq!(
        failure("{{ range $e := echo .null }}{{ $e.x }}{{ end }}"),
        "1:32: nil pointer evaluating interface {}.x"
    );
    // With missingkey=error, Go's words for an absent value's field.
    assert_eq!(
        failure_with(
            "{{ (index .map \"nope\").x }}",
            RenderOptions {
                error_on_missing_key: true,
            }
        ),
        "1:5: nil data; no entry for key \"x\""
    );
}

/// The compatibility suite's `syntax` area (`tests/compat/templates/syntax`), through the
/// engine alone: `scripts/compat-templates.sh` runs the same cases through the whole agent
/// against OpenBao Agent's output; this catches an engine regression in `cargo test`.
#[test]
fn compat_syntax_cases_match_go() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/templates/syntax");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "tpl"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 80,
        "expected the syntax cases in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &cases {
        let text = std::fs::read_to_string(path).unwrap();
        let (left, right) = match std::fs::read_to_string(path.with_extension("delims")) {
            Ok(delims) => {
                let mut parts = delims.split_whitespace();
                (
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().to_owned(),
                )
            }
            Err(_) => ("{{".to_owned(), "}}".to_owned()),
        };
        let read = |ext: &str| std::fs::read_to_string(path.with_extension(ext)).ok();
        // None: must fail; Some(text): must render exactly that.
        let expected = match (read("ours"), read("ours-error"), read("golden")) {
            (Some(ours), _, _) => Some(ours),
            (None, Some(_), _) => None,
            (None, None, golden) => golden,
        };
        let mut functions = golden_functions(&dir);
        let rendered = Template::parse(&text, &left, &right, &functions)
            .and_then(|t| t.render(&Value::Nil, &mut functions, RenderOptions::default()));
        let name = path.file_stem().unwrap().to_string_lossy();
        match (rendered, expected) {
            (Ok(out), Some(want)) if out == want => {}
            (Err(_), None) => {}
            (Ok(out), Some(want)) => {
                failures.push(format!("{name}: differs\n--- go\n{want}\n--- ours\n{out}"));
            }
            (Ok(out), None) => failures.push(format!("{name}: rendered {out:?}, must fail")),
            (Err(e), Some(_)) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
