//! Arithmetic: consul-template's `add` ... `maximum` (the piped value is the left operand)
//! and Sprig's integer and float helpers (Sprig converts anything with `cast`).

use super::{Args, Outcome, int};
use crate::template::Value;

/// consul-template's math functions: `add B A` is A+B, so that `A | add B` reads naturally.
pub(super) fn consul(name: &str, args: &Args) -> Option<Outcome> {
    if !matches!(
        name,
        "add" | "subtract" | "multiply" | "divide" | "modulo" | "minimum" | "maximum"
    ) {
        return None;
    }
    Some((|| {
        let a = args.exactly(2)?;
        let (b, a) = (&a[0], &a[1]);
        let unknown = |v: &Value| {
            let shown = match v {
                Value::Nil => "%!q(<invalid reflect.Value>)".to_owned(),
                other => crate::template::go_sprintf("%q", std::slice::from_ref(other)),
            };
            Err(format!(
                "{name}: unknown type for {shown} ({})",
                v.type_name()
            ))
        };
        let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
        if !number(a) {
            return unknown(a);
        }
        if !number(b) {
            return unknown(b);
        }
        let as_float = |v: &Value| match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => 0.0,
        };
        let overflow_safe = |r: Option<i64>| {
            r.map(Value::Int)
                .ok_or_else(|| "runtime error: integer divide by zero".to_owned())
        };
        match (name, a, b) {
            ("add", Value::Int(x), Value::Int(y)) => Ok(Value::Int(x.wrapping_add(*y))),
            ("subtract", Value::Int(x), Value::Int(y)) => Ok(Value::Int(x.wrapping_sub(*y))),
            ("multiply", Value::Int(x), Value::Int(y)) => Ok(Value::Int(x.wrapping_mul(*y))),
            ("divide", Value::Int(x), Value::Int(y)) => overflow_safe(x.checked_div(*y).or(
                // i64::MIN / -1 wraps in Go.
                (*y == -1).then(|| x.wrapping_neg()),
            )),
            ("modulo", Value::Int(x), Value::Int(y)) => {
                overflow_safe(x.checked_rem(*y).or((*y == -1).then_some(0)))
            }
            ("modulo", _, _) => {
                let float = if matches!(a, Value::Float(_)) { a } else { b };
                unknown(float)
            }
            ("add", _, _) => Ok(Value::Float(as_float(a) + as_float(b))),
            ("subtract", _, _) => Ok(Value::Float(as_float(a) - as_float(b))),
            ("multiply", _, _) => Ok(Value::Float(as_float(a) * as_float(b))),
            ("divide", _, _) => Ok(Value::Float(as_float(a) / as_float(b))),
            // minimum/maximum return the chosen operand with its own type.
            ("minimum", _, _) => Ok(if as_float(a) < as_float(b) { a } else { b }.clone()),
            ("maximum", _, _) => Ok(if as_float(a) > as_float(b) { a } else { b }.clone()),
            _ => unknown(a),
        }
    })())
}

/// Sprig's numeric functions.
pub(super) fn sprig(name: &str, args: &Args) -> Option<Outcome> {
    if let Some(outcome) = sprig_decimal(name, args) {
        return Some(outcome);
    }
    Some(match name {
        "add1" => (|| Ok(Value::Int(to_int64(&args.exactly(1)?[0]).wrapping_add(1))))(),
        "add" => Ok(Value::Int(
            args.all()
                .iter()
                .fold(0i64, |sum, v| sum.wrapping_add(to_int64(v))),
        )),
        "sub" => (|| {
            let a = args.exactly(2)?;
            Ok(Value::Int(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
        })(),
        "div" => (|| {
            let a = args.exactly(2)?;
            let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
            if y == 0 {
                return Err("runtime error: integer divide by zero".to_owned());
            }
            Ok(Value::Int(x.wrapping_div(y)))
        })(),
        "mod" => (|| {
            let a = args.exactly(2)?;
            let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
            if y == 0 {
                return Err("runtime error: integer divide by zero".to_owned());
            }
            Ok(Value::Int(x.wrapping_rem(y)))
        })(),
        "mul" => (|| {
            let a = args.at_least(1)?;
            Ok(Value::Int(
                a[1..].iter().fold(to_int64(&a[0]), |product, v| {
                    product.wrapping_mul(to_int64(v))
                }),
            ))
        })(),
        "max" | "biggest" => (|| {
            let a = args.at_least(1)?;
            Ok(Value::Int(a.iter().map(to_int64).max().unwrap_or(0)))
        })(),
        "min" => (|| {
            let a = args.at_least(1)?;
            Ok(Value::Int(a.iter().map(to_int64).min().unwrap_or(0)))
        })(),
        "maxf" => (|| {
            let a = args.at_least(1)?;
            Ok(Value::Float(
                a[1..]
                    .iter()
                    .fold(to_float64(&a[0]), |m, v| go_max(m, to_float64(v))),
            ))
        })(),
        "minf" => (|| {
            let a = args.at_least(1)?;
            Ok(Value::Float(
                a[1..]
                    .iter()
                    .fold(to_float64(&a[0]), |m, v| go_min(m, to_float64(v))),
            ))
        })(),
        "ceil" => (|| Ok(Value::Float(to_float64(&args.exactly(1)?[0]).ceil())))(),
        "floor" => (|| Ok(Value::Float(to_float64(&args.exactly(1)?[0]).floor())))(),
        "round" => (|| {
            let a = args.at_least(2)?;
            if a.len() > 3 {
                return Err(format!(
                    "wrong number of args for round: want at most 3 got {}",
                    a.len()
                ));
            }
            let round_on = match a.get(2) {
                Some(Value::Float(f)) => *f,
                Some(Value::Int(i)) => *i as f64,
                Some(other) => return Err(super::wrong_type("float64", other)),
                None => 0.5,
            };
            let places = int(&a[1])? as f64;
            let pow = 10f64.powf(places);
            let digit = pow * to_float64(&a[0]);
            let fraction = digit.fract();
            let rounded = if fraction >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::Float(rounded / pow))
        })(),
        "until" => (|| {
            let count = int(&args.exactly(1)?[0])?;
            let step = if count < 0 { -1 } else { 1 };
            ints(until_step(0, count, step))
        })(),
        "untilStep" => (|| {
            let a = args.exactly(3)?;
            ints(until_step(int(&a[0])?, int(&a[1])?, int(&a[2])?))
        })(),
        _ => return None,
    })
}

fn ints(items: Vec<i64>) -> Outcome {
    Ok(Value::List(items.into_iter().map(Value::Int).collect()))
}

/// The longest list `until`/`untilStep`/`seq` build.
const MAX_ITEMS: usize = 1 << 20;

/// Sprig's `untilStep`.
pub(super) fn until_step(start: i64, stop: i64, step: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut i = start;
    if stop < start {
        if step >= 0 {
            return out;
        }
        while i > stop && out.len() < MAX_ITEMS {
            out.push(i);
            i = i.saturating_add(step);
        }
        return out;
    }
    if step <= 0 {
        return out;
    }
    while i < stop && out.len() < MAX_ITEMS {
        out.push(i);
        i = i.saturating_add(step);
    }
    out
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// spf13/cast's `ToInt64`: numbers truncated, strings parsed with Go's base prefixes (a
/// trailing `.0` dropped), booleans 1/0, anything else 0.
pub(super) fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        // cast reads a json.Number as its text.
        Value::String(s) | Value::JsonNumber(s) => parse_go_int(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// spf13/cast's `ToFloat64`.
pub(super) fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) | Value::JsonNumber(s) => super::sprig::parse_go_float(s).unwrap_or(0.0),
        _ => 0.0,
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    match s.split_once('.') {
        Some((whole, fraction))
            if !whole.is_empty() && !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') =>
        {
            whole
        }
        _ => s,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b`/`0` prefixes, `_`
/// between digits only with a prefix.
pub(super) fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest.to_owned(), true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest.to_owned(), true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    let body = if prefixed {
        if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
            return None;
        }
        body.replace('_', "")
    } else {
        body
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(&body, radix).ok()?;
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            None
        } else {
            Some((magnitude as i64).wrapping_neg())
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A shopspring/decimal value: `coefficient × 10^exponent`.
struct Decimal {
    coefficient: num_bigint::BigInt,
    exponent: i64,
}

/// The places shopspring/decimal's `Div` keeps (`DivisionPrecision`).
const DIVISION_PRECISION: i64 = 16;

impl Decimal {
    /// `decimal.NewFromFloat`: the shortest decimal that reads back as `f`.
    fn from_float(f: f64) -> Result<Decimal, String> {
        if !f.is_finite() {
            return Err(format!(
                "Cannot create a Decimal from {}",
                crate::template::go_sprint(&[Value::Float(f)])
            ));
        }
        // `{:e}` is Rust's shortest round-trip form: `-1.2345e-7`.
        let shown = format!("{f:e}");
        let (mantissa, exponent) = shown.split_once('e').unwrap_or((&shown, "0"));
        let places = mantissa
            .split_once('.')
            .map_or(0, |(_, fraction)| fraction.len());
        let digits = mantissa.replace('.', "");
        Ok(Decimal {
            coefficient: digits.parse().unwrap_or_default(),
            exponent: exponent.parse::<i64>().unwrap_or(0) - places as i64,
        })
    }

    /// `Decimal.Float64`: the nearest float64 (±Inf beyond its range).
    fn to_float(&self) -> f64 {
        format!("{}e{}", self.coefficient, self.exponent)
            .parse()
            .unwrap_or(0.0)
    }

    fn scaled(&self, exponent: i64) -> num_bigint::BigInt {
        &self.coefficient * pow10(self.exponent - exponent)
    }

    fn add(&self, other: &Decimal) -> Decimal {
        let exponent = self.exponent.min(other.exponent);
        Decimal {
            coefficient: self.scaled(exponent) + other.scaled(exponent),
            exponent,
        }
    }

    fn sub(&self, other: &Decimal) -> Decimal {
        let exponent = self.exponent.min(other.exponent);
        Decimal {
            coefficient: self.scaled(exponent) - other.scaled(exponent),
            exponent,
        }
    }

    fn mul(&self, other: &Decimal) -> Decimal {
        Decimal {
            coefficient: &self.coefficient * &other.coefficient,
            exponent: self.exponent + other.exponent,
        }
    }

    /// `Decimal.Div`: the quotient rounded to 16 places, halves away from zero.
    fn div(&self, other: &Decimal) -> Result<Decimal, String> {
        use num_bigint::Sign;
        if other.coefficient.sign() == Sign::NoSign {
            return Err("decimal division by 0".to_owned());
        }
        let shift = self.exponent - other.exponent + DIVISION_PRECISION;
        let (numerator, denominator) = if shift >= 0 {
            (&self.coefficient * pow10(shift), other.coefficient.clone())
        } else {
            (self.coefficient.clone(), &other.coefficient * pow10(-shift))
        };
        let mut quotient = &numerator / &denominator;
        let remainder = &numerator % &denominator;
        if remainder.magnitude() * 2u32 >= *denominator.magnitude() {
            let negative = (numerator.sign() == Sign::Minus) != (denominator.sign() == Sign::Minus);
            quotient += if negative { -1 } else { 1 };
        }
        Ok(Decimal {
            coefficient: quotient,
            exponent: -DIVISION_PRECISION,
        })
    }
}

fn pow10(n: i64) -> num_bigint::BigInt {
    num_bigint::BigInt::from(10u32).pow(n.max(0) as u32)
}

/// Sprig's `execDecimalOp`: every operand through `cast.ToFloat64` and
/// `decimal.NewFromFloat`, folded left with `op`, back to a float64.
fn decimal_fold(
    first: &Value,
    rest: &[Value],
    op: impl Fn(&Decimal, &Decimal) -> Result<Decimal, String>,
) -> Outcome {
    let mut acc = Decimal::from_float(to_float64(first))?;
    for value in rest {
        acc = op(&acc, &Decimal::from_float(to_float64(value))?)?;
    }
    Ok(Value::Float(acc.to_float()))
}

/// Sprig's float functions (shopspring/decimal arithmetic).
pub(super) fn sprig_decimal(name: &str, args: &Args) -> Option<Outcome> {
    Some(match name {
        "add1f" => (|| {
            let a = args.exactly(1)?;
            decimal_fold(&a[0], &[Value::Int(1)], |x, y| Ok(x.add(y)))
        })(),
        "addf" => decimal_fold(&Value::Float(0.0), args.all(), |x, y| Ok(x.add(y))),
        "subf" => (|| {
            let a = args.at_least(1)?;
            decimal_fold(&a[0], &a[1..], |x, y| Ok(x.sub(y)))
        })(),
        "mulf" => (|| {
            let a = args.at_least(1)?;
            decimal_fold(&a[0], &a[1..], |x, y| Ok(x.mul(y)))
        })(),
        "divf" => (|| {
            let a = args.at_least(1)?;
            decimal_fold(&a[0], &a[1..], Decimal::div)
        })(),
        _ => return None,
    })
}
