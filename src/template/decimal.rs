//! Exact decimal numbers inside templates: quantities and money never pass through `f64`.
//!
//! WDT sends amounts as strings (`"59.9000"`); `| decimal` turns one into a [`Decimal`]
//! value, `mul`/`add`/`sub`/`div`/`round` compute exactly, and the tests `positive`, `zero`
//! and `negative` check signs. When a template's result is written to JSON, a decimal
//! becomes a JSON number whose text is the exact value (or a string when `f64` could not
//! carry it exactly). Comparing a decimal with a plain number is not supported by the
//! template engine (it compares kinds, not values): compare decimals with decimals.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{DynObject, Object, ObjectRepr};
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

/// Read any numeric template value (decimal, integer, float, numeric string) as an exact decimal.
pub fn to_exact(value: &Value) -> Result<Exact, Error> {
    crate::template::filters::defined(value)?;
    if let Some(decimal) = value.downcast_object_ref::<Decimal>() {
        return Ok(decimal.0);
    }
    if let Some(integer) = value.as_i64() {
        return Ok(Exact::from(integer));
    }
    if let Some(text) = value.as_str() {
        let trimmed = text.trim();
        return trimmed
            .parse::<Exact>()
            .or_else(|_| Exact::from_scientific(trimmed))
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("`{text}` is not a decimal number"),
                )
            });
    }
    if value.is_number() {
        // A float literal written in the template: go through its shortest text, which is what the author wrote.
        let text = value.to_string();
        return text
            .parse::<Exact>()
            .or_else(|_| Exact::from_scientific(&text))
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("`{text}` is not a decimal number"),
                )
            });
    }
    if value.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "an empty value (`null`) is not a decimal number",
        ));
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("`{value}` ({}) is not a decimal number", value.kind()),
    ))
}

/// The JSON form of an exact decimal: a number when `f64` prints back to the same decimal, else a string.
pub fn to_json(exact: Exact) -> serde_json::Value {
    let exact = exact.normalize();
    if let Some(float) = exact.to_f64()
        && let Ok(printed) = format!("{float}").parse::<Exact>()
        && printed == exact
        && let Some(number) = serde_json::Number::from_f64(float)
    {
        if exact.scale() == 0
            && let Some(integer) = exact.to_i64()
        {
            return serde_json::Value::from(integer);
        }
        return serde_json::Value::Number(number);
    }
    serde_json::Value::String(exact.to_string())
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
