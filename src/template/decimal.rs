//! Exact decimal numbers inside templates: quantities and money never pass through `f64`.
//!
//! WDT sends amounts as strings (`"59.9000"`); `| decimal` turns one into a [`Decimal`]
//! value, `mul`/`add`/`sub`/`div`/`round` compute exactly, and the tests `positive`, `zero`
//! and `negative` check signs. Only plain decimal notation is a number ([`parse_plain`]): not
//! `1e2`, `1_000` or `true`, and nothing that would only fit rounded. When a template's result
//! is written to JSON, a decimal becomes a JSON number whose text is the exact value
//! ([`to_number`]); where `f64` cannot carry it, a string — and a record whose target schema
//! asks for a number there fails instead (see `tree`). Comparing a decimal with a plain number
//! is not supported by the template engine (it compares kinds, not values): compare decimals
//! with decimals.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{DynObject, Object, ObjectRepr, ValueKind};
use minijinja::{Error, ErrorKind, Value};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal as Exact, RoundingStrategy};

/// A decimal value living inside a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub Exact);

impl Object for Decimal {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.0.is_zero()
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        other
            .downcast_ref::<Decimal>()
            .map(|other| self.0.cmp(&other.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

impl Decimal {
    pub fn value(exact: Exact) -> Value {
        Value::from_object(Decimal(exact))
    }
}

/// Read a numeric template value (decimal, integer, float, numeric text) as an exact decimal.
/// A text must be plain decimal notation ([`parse_plain`]); a float is read from its shortest
/// text, which is what was written in the JSON or the template; a boolean is never a number.
pub fn to_exact(value: &Value) -> Result<Exact, Error> {
    crate::template::filters::defined(value)?;
    if let Some(decimal) = value.downcast_object_ref::<Decimal>() {
        return Ok(decimal.0);
    }
    if value.kind() == ValueKind::Bool {
        return Err(invalid(format!(
            "`{}` is a boolean, not a decimal number",
            value.is_true()
        )));
    }
    if let Some(text) = value.as_str() {
        return parse_plain(text).map_err(invalid);
    }
    if value.is_integer() {
        // Integers print as their digits, however wide (`u64`, `i128`).
        return parse_plain(&value.to_string()).map_err(invalid);
    }
    if value.is_number() {
        let float = f64::try_from(value.clone())
            .map_err(|_| invalid(format!("`{value}` is not a decimal number")))?;
        // Rust prints the shortest text that reads back as the same float, in plain notation:
        // for a number from JSON or the template that is the text its author wrote.
        return parse_plain(&format!("{float}"))
            .map_err(|_| invalid(format!("`{value}` cannot be held exactly as a decimal")));
    }
    if value.is_none() {
        return Err(invalid(
            "an empty value (`null`) is not a decimal number".to_string(),
        ));
    }
    Err(invalid(format!(
        "`{value}` ({}) is not a decimal number",
        value.kind()
    )))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Parse plain decimal notation: an optional sign, digits, and an optional `.` with more
/// digits (`-12.50`). Nothing else is a number here: no spaces, `_`, exponents, `inf` or
/// `.5`, and a value that would only fit rounded (more than 28 decimal places or beyond
/// ±7.9e28) is refused rather than rounded.
pub fn parse_plain(text: &str) -> Result<Exact, String> {
    let not_decimal = || {
        // Say what is accepted when other readers would have taken it as a number (`1e2`, `1_000`).
        if text.parse::<f64>().is_ok() || text.contains('_') {
            format!(
                "`{text}` is not a decimal number: only plain digits with an optional sign and fraction are, such as `-12.50`"
            )
        } else {
            format!("`{text}` is not a decimal number")
        }
    };
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(not_decimal());
    }
    let out_of_range = || {
        format!("`{text}` cannot be held exactly: a decimal has at most 28 places and 29 digits")
    };
    // Up to 28 digits are always held exactly (10^28 < 2^96, and 28 places at most): the check
    // below, which costs more than the parse, can only pass. Prices and quantities take this way.
    if whole.len() + fraction.map_or(0, str::len) <= SURELY_HELD_DIGITS {
        return text.parse::<Exact>().map_err(|_| out_of_range());
    }
    held_exactly(text, whole, fraction.unwrap_or(""))
}

/// How many digits a decimal always holds exactly, whatever its point.
const SURELY_HELD_DIGITS: usize = 28;

/// `text` (plain notation, split into its `whole` and `fraction` digits) as a decimal, if it is
/// held without rounding.
fn held_exactly(text: &str, whole: &str, fraction: &str) -> Result<Exact, String> {
    let out_of_range = || {
        format!("`{text}` cannot be held exactly: a decimal has at most 28 places and 29 digits")
    };
    let exact = text.parse::<Exact>().map_err(|_| out_of_range())?;
    // rust_decimal rounds what it cannot hold; compare the digits to be sure nothing was.
    let significant = |whole: &str, fraction: &str| {
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        format!("{whole}.{fraction}")
    };
    let written = significant(whole, fraction);
    let held = exact.abs().normalize().to_string();
    let (held_whole, held_fraction) = held.split_once('.').unwrap_or((&held, ""));
    if significant(held_whole, held_fraction) != written {
        return Err(out_of_range());
    }
    Ok(exact)
}

/// The JSON number with exactly the value of `exact`, if an `f64` carries it.
pub fn to_number(exact: Exact) -> Option<serde_json::Number> {
    let exact = exact.normalize();
    if exact.scale() == 0
        && let Some(integer) = exact.to_i64()
    {
        return Some(serde_json::Number::from(integer));
    }
    // Rust reads decimal text into the nearest float and prints a float as the shortest text
    // that reads back to it: the float carries the decimal if that text is the decimal again.
    let float: f64 = exact.to_string().parse().ok()?;
    let printed = parse_plain(&format!("{float}")).ok()?;
    (printed == exact)
        .then(|| serde_json::Number::from_f64(float))
        .flatten()
}

/// The JSON form of an exact decimal: a number when `f64` carries it exactly, else a string.
pub fn to_json(exact: Exact) -> serde_json::Value {
    match to_number(exact) {
        Some(number) => serde_json::Value::Number(number),
        None => serde_json::Value::String(exact.normalize().to_string()),
    }
}

/// `value | decimal`: parse as an exact decimal.
pub fn filter_decimal(value: Value) -> Result<Value, Error> {
    to_exact(&value).map(Decimal::value)
}

pub fn filter_add(value: Value, other: Value) -> Result<Value, Error> {
    arithmetic(&value, &other, "add", Exact::checked_add)
}

pub fn filter_sub(value: Value, other: Value) -> Result<Value, Error> {
    arithmetic(&value, &other, "subtract", Exact::checked_sub)
}

pub fn filter_mul(value: Value, other: Value) -> Result<Value, Error> {
    arithmetic(&value, &other, "multiply", Exact::checked_mul)
}

pub fn filter_div(value: Value, other: Value) -> Result<Value, Error> {
    if to_exact(&other)?.is_zero() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot divide `{value}` by zero"),
        ));
    }
    arithmetic(&value, &other, "divide", Exact::checked_div)
}

fn arithmetic(
    value: &Value,
    other: &Value,
    verb: &str,
    op: fn(Exact, Exact) -> Option<Exact>,
) -> Result<Value, Error> {
    let (a, b) = (to_exact(value)?, to_exact(other)?);
    op(a, b).map(Decimal::value).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot {verb} `{a}` and `{b}`: the result is out of range"),
        )
    })
}

/// `value | round(2)`: round half away from zero (四舍五入), the rule of Chinese accounting.
pub fn filter_round(value: Value, places: Option<u32>) -> Result<Value, Error> {
    let exact = to_exact(&value)?;
    Ok(Decimal::value(exact.round_dp_with_strategy(
        places.unwrap_or(0),
        RoundingStrategy::MidpointAwayFromZero,
    )))
}

pub fn test_positive(value: Value) -> Result<bool, Error> {
    Ok(to_exact(&value)?.is_sign_positive() && !to_exact(&value)?.is_zero())
}

pub fn test_negative(value: Value) -> Result<bool, Error> {
    let exact = to_exact(&value)?;
    Ok(exact.is_sign_negative() && !exact.is_zero())
}

pub fn test_zero(value: Value) -> Result<bool, Error> {
    Ok(to_exact(&value)?.is_zero())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exact(text: &str) -> Exact {
        text.parse().unwrap()
    }

    #[test]
    fn texts_of_up_to_28_digits_read_as_the_full_check_reads_them() {
        for text in [
            "0",
            "-0",
            "+0",
            "0.0000",
            "-0.000",
            "2.0000",
            "59.9000",
            "-12.50",
            "+7",
            "007.50",
            "0.13",
            "1234567890123456789012345678",
            "9999999999999999999999999999",
            "0.0000000000000000000000000001",
            "-0.1234567890123456789012345678",
            "12345678901234.56789012345678",
            "79228162514264337593543950335",
            "0.00000000000000000000000000001",
            "1.2345678901234567890123456789",
        ] {
            let unsigned = text.trim_start_matches(['-', '+']);
            let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
            assert_eq!(
                parse_plain(text),
                held_exactly(text, whole, fraction),
                "{text}"
            );
        }
    }

    #[test]
    fn json_output_is_the_exact_decimal() {
        assert_eq!(to_json(exact("2.0000")), json!(2));
        assert_eq!(to_json(exact("59.9000")), json!(59.9));
        assert_eq!(
            serde_json::to_string(&to_json(exact("59.9000"))).unwrap(),
            "59.9"
        );
        assert_eq!(to_json(exact("0.1") + exact("0.2")), json!(0.3));
        assert_eq!(
            to_json(exact("12345678901234567.891")),
            json!("12345678901234567.891")
        );
    }

    #[test]
    fn arithmetic_is_exact() {
        let product = filter_mul(Value::from("19.90"), Value::from(3)).unwrap();
        assert_eq!(product.to_string(), "59.7");
        let sum = filter_add(Value::from("0.1"), Value::from("0.2")).unwrap();
        assert_eq!(sum.to_string(), "0.3");
        let share = filter_div(Value::from("100"), Value::from("3")).unwrap();
        assert_eq!(filter_round(share, Some(2)).unwrap().to_string(), "33.33");
        assert_eq!(
            filter_round(Value::from("2.345"), Some(2))
                .unwrap()
                .to_string(),
            "2.35"
        );
        assert_eq!(
            filter_round(Value::from("-2.345"), Some(2))
                .unwrap()
                .to_string(),
            "-2.35"
        );
    }

    #[test]
    fn only_plain_decimal_notation_is_a_number() {
        let table: &[(&str, Option<&str>)] = &[
            ("0", Some("0")),
            ("59.9000", Some("59.9")),
            ("-12.50", Some("-12.5")),
            ("+3", Some("3")),
            ("007.10", Some("7.1")),
            ("-0.000", Some("0")),
            (
                "0.0000000000000000000000000001",
                Some("0.0000000000000000000000000001"),
            ),
            (
                "79228162514264337593543950335",
                Some("79228162514264337593543950335"),
            ),
            ("1_000", None),
            ("1e2", None),
            ("1E2", None),
            ("1e30", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            (".5", None),
            ("5.", None),
            ("1.2.3", None),
            ("0x10", None),
            ("inf", None),
            ("NaN", None),
            ("１２", None),
            ("--1", None),
            // Would only fit rounded: refused, never rounded.
            ("0.00000000000000000000000000001", None),
            ("1.00000000000000000000000000001", None),
            ("79228162514264337593543950336", None),
            ("100000000000000000000000000000000", None),
        ];
        for (text, expected) in table {
            let parsed = parse_plain(text).map(|exact| exact.normalize().to_string());
            assert_eq!(
                parsed.as_deref().ok(),
                *expected,
                "{text:?} gave {parsed:?}"
            );
        }
    }

    #[test]
    fn template_values_are_numbers_only_when_they_are_exactly_decimals() {
        let table: Vec<(Value, Result<&str, &str>)> = vec![
            (Value::from("2.0000"), Ok("2")),
            (Value::from(3), Ok("3")),
            (Value::from(u64::MAX), Ok("18446744073709551615")),
            (Value::from(0.13), Ok("0.13")),
            (Value::from(1e-28), Ok("0.0000000000000000000000000001")),
            (
                Value::from(true),
                Err("`true` is a boolean, not a decimal number"),
            ),
            (
                Value::from(false),
                Err("`false` is a boolean, not a decimal number"),
            ),
            (
                Value::from(()),
                Err("an empty value (`null`) is not a decimal number"),
            ),
            (
                Value::from("1_000"),
                Err("`1_000` is not a decimal number: only plain digits"),
            ),
            (
                Value::from("1e2"),
                Err("`1e2` is not a decimal number: only plain digits"),
            ),
            (
                Value::from(1e30),
                Err("cannot be held exactly as a decimal"),
            ),
            (
                Value::from(1e-29),
                Err("cannot be held exactly as a decimal"),
            ),
        ];
        for (value, expected) in table {
            let got = to_exact(&value).map(|e| e.normalize().to_string());
            match (&got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{value:?}"),
                (Err(err), Err(expected)) => assert!(
                    err.detail().unwrap_or_default().contains(expected),
                    "{value:?}: {err}"
                ),
                _ => panic!("{value:?} gave {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_json_number_is_written_only_when_it_is_the_exact_decimal() {
        let table: &[(&str, Option<&str>)] = &[
            ("13", Some("13")),
            ("0.3", Some("0.3")),
            ("59.9", Some("59.9")),
            ("-0.0001", Some("-0.0001")),
            ("0.00000000000000000000000001", Some("1e-26")),
            ("123456789012345.67", Some("123456789012345.67")),
            ("12345678901234567.891", None),
            ("79228162514264337593543950300", None),
            ("0.1000000000000000000000000001", None),
        ];
        for (text, expected) in table {
            let number = to_number(exact(text)).map(|n| serde_json::to_string(&n).unwrap());
            assert_eq!(number.as_deref(), *expected, "{text}");
        }
    }

    #[test]
    fn bad_numbers_are_named_in_the_error() {
        let err = filter_decimal(Value::from("12a")).unwrap_err();
        assert_eq!(err.detail(), Some("`12a` is not a decimal number"));
        let err = filter_div(Value::from("1"), Value::from("0.00")).unwrap_err();
        assert_eq!(err.detail(), Some("cannot divide `1` by zero"));
    }

    #[test]
    fn sign_tests_read_strings_and_decimals() {
        assert!(test_positive(Value::from("2.0000")).unwrap());
        assert!(!test_positive(Value::from("0.0000")).unwrap());
        assert!(test_zero(Value::from("0.0000")).unwrap());
        assert!(test_negative(Decimal::value(exact("-1"))).unwrap());
    }

    #[test]
    fn decimals_compare_with_decimals() {
        assert!(Decimal::value(exact("2.5")) > Decimal::value(exact("2.45")));
        assert_eq!(Decimal::value(exact("2.50")), Decimal::value(exact("2.5")));
    }
}
