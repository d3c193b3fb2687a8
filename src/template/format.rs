//! Go's `fmt` for template values: `Sprint`, `Sprintln`, `Sprintf` and the `%v` printing of an
//! action's result, written to match Go byte for byte for the verbs templates use.
//!
//! It owns verbs, flags, width, precision and Go's float and quoting rules. It must not fail:
//! like Go, a bad verb, a missing or extra argument prints a `%!` marker instead of an error.

use super::value::Value;

/// `fmt.Sprint`: operands in `%v`, with a space between two operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut previous_was_string = false;
    for (n, arg) in args.iter().enumerate() {
        // Go's Sprint asks for the string kind, which `json.Number` is.
        let is_string = matches!(arg, Value::String(_) | Value::JsonNumber(_));
        if n > 0 && !is_string && !previous_was_string {
            out.push(' ');
        }
        print_arg(&mut out, arg, 'v', &Spec::default());
        previous_was_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: operands in `%v`, always space-separated, then a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (n, arg) in args.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        print_arg(&mut out, arg, 'v', &Spec::default());
    }
    out.push('\n');
    out
}

/// `fmt.Sprint` of one value: how `{{ . }}` prints anything but nil. Go's templates print
/// what a pointer points to, so a struct pointer prints without the `&` of `print .`.
pub(super) fn display(value: &Value) -> String {
    let mut out = String::new();
    let spec = Spec {
        indirect: true,
        ..Spec::default()
    };
    print_arg(&mut out, value, 'v', &spec);
    out
}

/// Flags, width and precision of one `%` directive.
#[derive(Default, Clone)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
    /// `%+v`: struct fields with their names (Go clears `plus` for `v`).
    plus_v: bool,
    /// `%#v`: Go syntax (Go clears `sharp` for `v`).
    sharp_v: bool,
    /// Printing an element of a list, map or struct, not the operand itself.
    nested: bool,
    /// The operand, a struct pointer, prints as its struct (a template's `{{ . }}`), not
    /// `&{...}`; elements do not inherit it.
    indirect: bool,
}

/// Go caps width and precision at 1e6 ("too large" otherwise); so do we, to bound memory.
const MAX_WIDTH: usize = 1_000_000;

/// `fmt.Sprintf`.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // Flags.
        while let Some(&(_, flag)) = chars.peek() {
            match flag {
                '#' => spec.sharp = true,
                '0' => spec.zero = !spec.minus,
                '+' => spec.plus = true,
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        // Argument index before the width: %[2]d.
        let mut good_arg_num = true;
        let mut take_index = |chars: &mut Chars<'_>, arg_num: &mut usize| {
            if let Some(index) = arg_index(chars, args.len()) {
                reordered = true;
                match index {
                    Some(index) => *arg_num = index,
                    None => good_arg_num = false,
                }
            }
        };
        take_index(&mut chars, &mut arg_num);
        // Width.
        if chars.peek().map(|&(_, c)| c) == Some('*') {
            chars.next();
            match args.get(arg_num) {
                Some(Value::Int(w)) => {
                    let w = (*w).clamp(-(MAX_WIDTH as i64), MAX_WIDTH as i64);
                    if w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg_num += 1;
        } else if let Some(w) = digits(&mut chars) {
            spec.width = Some(w);
        }
        // Precision.
        if chars.peek().map(|&(_, c)| c) == Some('.') {
            chars.next();
            take_index(&mut chars, &mut arg_num);
            if chars.peek().map(|&(_, c)| c) == Some('*') {
                chars.next();
                match args.get(arg_num) {
                    Some(Value::Int(p)) if *p >= 0 => {
                        spec.precision = Some((*p as u64).min(MAX_WIDTH as u64) as usize)
                    }
                    Some(Value::Int(_)) => spec.precision = None,
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg_num += 1;
            } else {
                spec.precision = Some(digits(&mut chars).unwrap_or(0));
            }
        }
        take_index(&mut chars, &mut arg_num);
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == 'v' {
            spec.plus_v = std::mem::take(&mut spec.plus);
            spec.sharp_v = std::mem::take(&mut spec.sharp);
        }
        if verb == '%' {
            out.push('%');
        } else if !good_arg_num {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if let Some(arg) = args.get(arg_num) {
            print_arg(&mut out, arg, verb, &spec);
            arg_num += 1;
        } else {
            out.push_str(&format!("%!{verb}(MISSING)"));
        }
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (n, arg) in args.iter().enumerate().skip(arg_num) {
            if n > arg_num {
                out.push_str(", ");
            }
            if matches!(arg, Value::Nil) {
                out.push_str("<nil>");
            } else {
                out.push_str(arg.type_name());
                out.push('=');
                print_arg(&mut out, arg, 'v', &Spec::default());
            }
        }
        out.push(')');
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// A run of decimal digits, capped at [`MAX_WIDTH`].
fn digits(chars: &mut Chars<'_>) -> Option<usize> {
    let mut value: Option<usize> = None;
    while let Some(&(_, c)) = chars.peek() {
        let Some(d) = c.to_digit(10) else { break };
        value = Some((value.unwrap_or(0) * 10 + d as usize).min(MAX_WIDTH));
        chars.next();
    }
    value
}

/// `[n]`: a 1-based argument index. Returns None when there is no `[`; otherwise Some(the
/// 0-based index), or Some(None) for a bad one. Without a closing bracket only the `[` is
/// skipped, as Go does.
fn arg_index(chars: &mut Chars<'_>, arg_count: usize) -> Option<Option<usize>> {
    if chars.peek().map(|&(_, c)| c) != Some('[') {
        return None;
    }
    chars.next();
    if !chars.clone().any(|(_, c)| c == ']') {
        return Some(None);
    }
    let n = digits(chars);
    if chars.peek().map(|&(_, c)| c) != Some(']') {
        for (_, c) in chars.by_ref() {
            if c == ']' {
                break;
            }
        }
        return Some(None);
    }
    chars.next();
    Some(n.filter(|&n| n >= 1 && n <= arg_count).map(|n| n - 1))
}

fn print_arg(out: &mut String, arg: &Value, verb: char, spec: &Spec) {
    if verb == 'T' {
        pad(out, spec, arg.type_name());
        return;
    }
    match arg {
        Value::Nil => match verb {
            // Go: a nil inside a list, map or struct field is a nil `interface {}`.
            'v' if spec.sharp_v && spec.nested => out.push_str("interface {}(nil)"),
            'v' => pad(out, spec, "<nil>"),
            _ => bad_verb(out, arg, verb, spec),
        },
        Value::Bool(b) => match verb {
            't' | 'v' => pad(out, spec, if *b { "true" } else { "false" }),
            _ => bad_verb(out, arg, verb, spec),
        },
        Value::Int(i) => format_integer(out, arg, *i, verb, spec),
        Value::Float(f) => match verb {
            'v' => format_float(out, *f, 'g', None, spec),
            'g' | 'G' => format_float(out, *f, verb, spec.precision, spec),
            'f' | 'F' | 'e' | 'E' => {
                format_float(out, *f, verb, Some(spec.precision.unwrap_or(6)), spec)
            }
            _ => bad_verb(out, arg, verb, spec),
        },
        // `json.Number` prints as its text: its `String` method for `%v %s %q %x`, the
        // string kind for Go syntax and in a bad verb's marker.
        Value::String(s) | Value::JsonNumber(s) if verb == 'v' && spec.sharp_v => {
            pad(out, spec, &quote(s, false))
        }
        Value::String(s) | Value::JsonNumber(s) => match verb {
            'v' | 's' => {
                let truncated = match spec.precision {
                    Some(p) => s.char_indices().nth(p).map_or(s.as_str(), |(i, _)| &s[..i]),
                    None => s,
                };
                pad(out, spec, truncated);
            }
            'q' => {
                let quoted = if spec.sharp && can_backquote(s) {
                    format!("`{s}`")
                } else {
                    quote(s, spec.plus)
                };
                pad(out, spec, &quoted)
            }
            'x' | 'X' => hex_string(out, s.as_bytes(), verb, spec),
            _ => bad_verb(out, arg, verb, spec),
        },
        Value::List(items) => {
            let inner = nested(spec);
            let go_syntax = verb == 'v' && spec.sharp_v;
            out.push_str(if go_syntax { "[]interface {}{" } else { "[" });
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(if go_syntax { ", " } else { " " });
                }
                print_arg(out, item, verb, &inner);
            }
            out.push(if go_syntax { '}' } else { ']' });
        }
        Value::Map(map) => {
            let inner = nested(spec);
            let go_syntax = verb == 'v' && spec.sharp_v;
            out.push_str(if go_syntax {
                "map[string]interface {}{"
            } else {
                "map["
            });
            for (n, (key, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(if go_syntax { ", " } else { " " });
                }
                print_arg(out, &Value::String(key.clone()), verb, &inner);
                out.push(':');
                print_arg(out, item, verb, &inner);
            }
            out.push(if go_syntax { '}' } else { ']' });
        }
        Value::Struct(s) => {
            let go_syntax = verb == 'v' && spec.sharp_v;
            if s.is_pointer() && !spec.indirect {
                out.push('&');
            }
            if go_syntax {
                out.push_str(s.type_name.trim_start_matches('*'));
            }
            out.push('{');
            let inner = nested(spec);
            for (n, (name, item)) in s.fields.iter().enumerate() {
                if n > 0 {
                    out.push_str(if go_syntax { ", " } else { " " });
                }
                if go_syntax || spec.plus_v {
                    out.push_str(name);
                    out.push(':');
                }
                print_arg(out, item, verb, &inner);
            }
            out.push('}');
        }
        Value::TypedNil(t) => match verb {
            'v' if spec.sharp_v => {
                if t.type_name.starts_with('*') {
                    out.push_str(&format!("({})(nil)", t.type_name));
                } else {
                    out.push_str(t.type_name);
                    out.push_str("(nil)");
                }
            }
            _ if t.printed() != "<nil>" => pad(out, spec, t.printed()),
            'v' => pad(out, spec, "<nil>"),
            _ => bad_verb(out, arg, verb, spec),
        },
    }
}

/// The spec for the elements of a list, map or struct: the same verb and flags, one level
/// down.
fn nested(spec: &Spec) -> Spec {
    Spec {
        nested: true,
        indirect: false,
        ..spec.clone()
    }
}

/// `%!verb(type=value)`, Go's marker for a verb that does not fit the operand.
fn bad_verb(out: &mut String, arg: &Value, verb: char, spec: &Spec) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if matches!(arg, Value::Nil) {
        out.push_str("<nil>");
    } else {
        out.push_str(arg.type_name());
        out.push('=');
        print_arg(out, arg, 'v', spec);
    }
    out.push(')');
}

/// Writes `s` padded to the width: spaces (or zeros with the `0` flag) on the left, or spaces
/// on the right with `-`. Width counts characters, as Go's counts runes.
fn pad(out: &mut String, spec: &Spec, s: &str) {
    let len = s.chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else {
        out.extend(std::iter::repeat_n(if spec.zero { '0' } else { ' ' }, fill));
        out.push_str(s);
    }
}

fn format_integer(out: &mut String, arg: &Value, value: i64, verb: char, spec: &Spec) {
    let (base, upper) = match verb {
        'v' | 'd' => (10, false),
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        'c' => {
            let c = u32::try_from(value)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, spec, c.encode_utf8(&mut [0; 4]));
            return;
        }
        'q' => {
            let c = u32::try_from(value)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, spec, &quote_rune(c, spec.plus));
            return;
        }
        'U' => {
            let mut s = format!("U+{:04X}", value as u64);
            let printable = u32::try_from(value)
                .ok()
                .and_then(char::from_u32)
                .filter(|&c| is_print(c));
            if let (true, Some(c)) = (spec.sharp, printable) {
                s.push_str(&format!(" '{c}'"));
            }
            pad(out, spec, &s);
            return;
        }
        _ => return bad_verb(out, arg, verb, spec),
    };
    let negative = value < 0;
    let magnitude = value.unsigned_abs();
    let mut digits = match base {
        2 => format!("{magnitude:b}"),
        8 => format!("{magnitude:o}"),
        16 if upper => format!("{magnitude:X}"),
        16 => format!("{magnitude:x}"),
        _ => magnitude.to_string(),
    };
    // Two ways to ask for leading zeros: %.3d, or %03d (which leaves room for the sign).
    let mut min_digits = 0;
    if let Some(p) = spec.precision {
        min_digits = p;
        if p == 0 && value == 0 {
            let blank = Spec {
                zero: false,
                ..spec.clone()
            };
            pad(out, &blank, "");
            return;
        }
    } else if let (true, false, Some(w)) = (spec.zero, spec.minus, spec.width) {
        min_digits = w;
        if negative || spec.plus || spec.space {
            min_digits = min_digits.saturating_sub(1);
        }
    }
    if digits.len() < min_digits {
        digits = "0".repeat(min_digits - digits.len()) + &digits;
    }
    let mut prefix = String::new();
    if negative {
        prefix.push('-');
    } else if spec.plus {
        prefix.push('+');
    } else if spec.space {
        prefix.push(' ');
    }
    if spec.sharp {
        match base {
            2 => prefix.push_str("0b"),
            8 if !digits.starts_with('0') => prefix.push('0'),
            16 => prefix.push_str(if upper { "0X" } else { "0x" }),
            _ => {}
        }
    }
    if verb == 'O' {
        prefix.push_str("0o");
    }
    let plain = Spec {
        zero: false,
        ..spec.clone()
    };
    pad(out, &plain, &(prefix + &digits));
}

/// Formats a float as Go's `strconv.FormatFloat` with `fmt`'s sign and padding rules.
/// `precision` None means the shortest representation that round-trips.
fn format_float(out: &mut String, value: f64, verb: char, precision: Option<usize>, spec: &Spec) {
    let body = if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        "Inf".to_owned()
    } else {
        let magnitude = value.abs();
        match verb {
            'f' | 'F' => fixed(magnitude, precision.unwrap_or(6)),
            'e' | 'E' => {
                let s = go_exponent(&scientific(magnitude, precision.unwrap_or(6)));
                if verb == 'E' { s.to_uppercase() } else { s }
            }
            _ => {
                let s = format_g(magnitude, precision);
                if verb == 'G' { s.to_uppercase() } else { s }
            }
        }
    };
    let sign = if value.is_sign_negative() && !value.is_nan() {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    if value.is_finite() && spec.zero && !spec.minus {
        // Zeros go between the sign and the digits.
        let width = spec.width.unwrap_or(0);
        let len = sign.len() + body.len();
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', width.saturating_sub(len)));
        out.push_str(&body);
    } else {
        let plain = Spec {
            zero: false,
            ..spec.clone()
        };
        let text = if value.is_infinite() && sign.is_empty() {
            // Go prints +Inf even without the plus flag.
            format!("+{body}")
        } else {
            format!("{sign}{body}")
        };
        pad(out, &plain, &text);
    }
}

/// Digits after the decimal point past which every `f64`'s exact decimal expansion is zeros
/// (the smallest subnormal, 2^-1074, has 1074 of them; no `f64` has more than 767 significant
/// digits). Rust's formatter panics on a precision above `u16::MAX`, Go accepts up to
/// [`MAX_WIDTH`]: format this many digits, then append the zeros.
const EXACT_DIGITS: usize = 1100;

/// `{:.precision$}` for any precision up to [`MAX_WIDTH`].
fn fixed(magnitude: f64, precision: usize) -> String {
    let mut s = format!("{:.*}", precision.min(EXACT_DIGITS), magnitude);
    s.extend(std::iter::repeat_n(
        '0',
        precision.saturating_sub(EXACT_DIGITS),
    ));
    s
}

/// `{:.precision$e}` (Rust's exponent form) for any precision up to [`MAX_WIDTH`].
fn scientific(magnitude: f64, precision: usize) -> String {
    let s = format!("{:.*e}", precision.min(EXACT_DIGITS), magnitude);
    let zeros = precision.saturating_sub(EXACT_DIGITS);
    if zeros == 0 {
        return s;
    }
    let (mantissa, exponent) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let mut out = String::with_capacity(s.len() + zeros);
    out.push_str(mantissa);
    out.extend(std::iter::repeat_n('0', zeros));
    out.push('e');
    out.push_str(exponent);
    out
}

/// Rust's `1.5e3` exponent into Go's `1.5e+03`.
fn go_exponent(rust: &str) -> String {
    let Some((mantissa, exponent)) = rust.split_once('e') else {
        return rust.to_owned();
    };
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// The decimal digits (no trailing zeros, at least one) and decimal point position of a
/// non-negative finite float, shortest or rounded to `significant` digits, as Go's `decimal`.
fn decimal_digits(magnitude: f64, significant: Option<usize>) -> (Vec<u8>, i64) {
    let rust = match significant {
        // Trailing zeros are dropped below, so the extra ones need not be formatted at all.
        Some(n) => format!("{:.*e}", n.saturating_sub(1).min(EXACT_DIGITS), magnitude),
        None => format!("{magnitude:e}"),
    };
    let (mantissa, exponent) = rust.split_once('e').unwrap_or((rust.as_str(), "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    (digits, exponent + 1)
}

/// Go's `%g`: shortest (or `precision` significant digits), in `%e` form when the exponent is
/// below -4 or at least the precision (6 when shortest).
fn format_g(magnitude: f64, precision: Option<usize>) -> String {
    let precision = precision.map(|p| p.max(1));
    let (digits, point) = decimal_digits(magnitude, precision);
    let count = digits.len() as i64;
    let shortest = precision.is_none();
    let mut prec = precision.map_or(count, |p| p as i64);
    let mut exponent_threshold = prec;
    if exponent_threshold > count && count >= point {
        exponent_threshold = count;
    }
    if shortest {
        exponent_threshold = 6;
    }
    let exponent = if magnitude == 0.0 { 0 } else { point - 1 };
    if exponent < -4 || exponent >= exponent_threshold {
        if prec > count {
            prec = count;
        }
        let mut s = String::new();
        s.push(char::from(digits.first().copied().unwrap_or(b'0')));
        if prec > 1 {
            s.push('.');
            for i in 1..prec as usize {
                s.push(char::from(*digits.get(i).unwrap_or(&b'0')));
            }
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        s.push_str(&format!("e{sign}{:02}", exponent.unsigned_abs()));
        return s;
    }
    if prec > point {
        prec = count;
    }
    let fraction_digits = (prec - point).max(0);
    let mut s = String::new();
    if point > 0 {
        for i in 0..point {
            s.push(char::from(*digits.get(i as usize).unwrap_or(&b'0')));
        }
    } else {
        s.push('0');
    }
    if fraction_digits > 0 {
        s.push('.');
        for i in 1..=fraction_digits {
            let j = point + i - 1;
            let digit = if j >= 0 {
                digits.get(j as usize).copied().unwrap_or(b'0')
            } else {
                b'0'
            };
            s.push(char::from(digit));
        }
    }
    s
}

/// `%x` / `%X` of a string: two hex digits a byte; `% x` spaces them, `%#x` prefixes `0x`.
fn hex_string(out: &mut String, bytes: &[u8], verb: char, spec: &Spec) {
    let length = spec.precision.map_or(bytes.len(), |p| p.min(bytes.len()));
    let bytes = bytes.get(..length).unwrap_or(bytes);
    let mut s = String::new();
    let prefix = if verb == 'X' { "0X" } else { "0x" };
    if spec.sharp && !bytes.is_empty() {
        s.push_str(prefix);
    }
    for (n, b) in bytes.iter().enumerate() {
        if spec.space && n > 0 {
            s.push(' ');
            if spec.sharp {
                s.push_str(prefix);
            }
        }
        if verb == 'X' {
            s.push_str(&format!("{b:02X}"));
        } else {
            s.push_str(&format!("{b:02x}"));
        }
    }
    pad(out, spec, &s);
}

/// Go's `unicode.IsPrint`, approximated: not a control, and no whitespace but the space.
pub(super) fn is_print(c: char) -> bool {
    !c.is_control() && (c == ' ' || !c.is_whitespace()) && !matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// `strconv.Quote` (or `QuoteToASCII` with `ascii_only`).
pub(super) fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_into(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    escape_into(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

fn escape_into(out: &mut String, c: char, quote: char, ascii_only: bool) {
    match c {
        _ if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ if is_print(c) && (!ascii_only || c.is_ascii()) => out.push(c),
        _ if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        _ if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        _ => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// `strconv.CanBackquote`: no backquote, no control character but tab.
fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !c.is_control()))
}
