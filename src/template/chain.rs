//! Filter chains: expressions that read a plain path and pass it through the engine's own
//! filters (`line.num | decimal`, `line.tax | decimal | mul(100)`, `check_time | date`,
//! `shop_no | lookup('shop_customer')`, `line.spec_no | lookup('material',
//! default=line.spec_no)`), about half of a mapping's templates. They are evaluated by calling
//! the filters' functions directly, with the arguments minijinja would pass, when the path and
//! every path argument are there and every filter succeeds; anything else (a missing field, a
//! filter's error, an argument this reader does not know) is left to minijinja, which
//! evaluates the template again for its value or its error. A chain reads the scope exactly as
//! minijinja's evaluation does (the same names, in the same order), so the field noted missing
//! is the same either way. Pure; reads only the scope and the value maps it is given.

use minijinja::Value;

use super::decimal;
use super::filters;
use super::path::{plain_path, read_path};
use crate::config::raw::MissPolicy;
use crate::value_map::ValueMaps;

/// A plain path and the filters it goes through.
#[derive(Debug)]
pub(super) struct Chain {
    input: Vec<String>,
    calls: Vec<Call>,
}

/// One filter of a chain, its arguments read from the template's text.
#[derive(Debug)]
enum Call {
    Decimal,
    Arithmetic(fn(Value, Value) -> Result<Value, minijinja::Error>, Arg),
    Round(Option<u32>),
    /// `date` or `datetime`: the format, given or the filter's own.
    Time(String),
    Timestamp,
    Lookup {
        map: String,
        policy: Option<MissPolicy>,
        default: Option<Arg>,
    },
    /// `default(x)` of a value that is there: the value itself.
    Default,
}

/// An argument: a constant, or a plain path read when the chain is evaluated.
#[derive(Debug, Clone)]
enum Arg {
    Constant(Value),
    Path(Vec<String>),
}

impl Arg {
    fn read(&self, ctx: &Value) -> Option<Value> {
        match self {
            Arg::Constant(value) => Some(value.clone()),
            Arg::Path(path) => read_path(path, ctx),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Arg::Constant(value) => value.as_str(),
            Arg::Path(_) => None,
        }
    }
}

impl Chain {
    /// The chain an expression is, or `None` when it is anything else (a plain path alone
    /// included: that has its own shortcut).
    pub(super) fn parse(source: &str) -> Option<Chain> {
        let mut cursor = Cursor {
            text: source.trim(),
            at: 0,
        };
        let input = cursor.path()?;
        let mut calls = Vec::new();
        while cursor.eat(b'|') {
            calls.push(cursor.call()?);
        }
        cursor.skip_space();
        (cursor.at == cursor.text.len() && !calls.is_empty()).then_some(Chain { input, calls })
    }

    /// What minijinja's evaluation gives, when every step succeeds; `None` otherwise.
    pub(super) fn eval(&self, ctx: &Value, value_maps: &ValueMaps) -> Option<Value> {
        let mut value = read_path(&self.input, ctx)?;
        for call in &self.calls {
            value = call.apply(value, ctx, value_maps)?;
        }
        Some(value)
    }
}

impl Call {
    fn apply(&self, value: Value, ctx: &Value, value_maps: &ValueMaps) -> Option<Value> {
        let result = match self {
            Call::Decimal => decimal::filter_decimal(value),
            Call::Arithmetic(filter, other) => filter(value, other.read(ctx)?),
            Call::Round(places) => decimal::filter_round(value, *places),
            Call::Time(format) => {
                let read = filters::zone_in(ctx, false);
                filters::time_text(&value, format, read, || filters::zone_in(ctx, true))
                    .map(Value::from)
            }
            Call::Timestamp => {
                filters::timestamp_in(&value, filters::zone_in(ctx, false)).map(Value::from)
            }
            Call::Lookup {
                map,
                policy,
                default,
            } => {
                let default = match default {
                    Some(arg) => Some(arg.read(ctx)?),
                    None => None,
                };
                filters::lookup_in(value_maps, &value, map, *policy, default)
            }
            Call::Default => Ok(value),
        };
        result.ok()
    }
}

/// Reads a chain's text, token by token.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        let rest = &self.text.as_bytes()[self.at..];
        self.at += rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    }

    /// Whether `byte` comes next (after spaces); takes it if so.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.text.as_bytes().get(self.at) == Some(&byte) {
            self.at += 1;
            return true;
        }
        false
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.as_bytes().get(self.at).copied()
    }

    /// A name: a letter or `_`, then letters, digits and `_`.
    fn name(&mut self) -> Option<&'a str> {
        self.skip_space();
        let rest = &self.text[self.at..];
        let length = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let name = &rest[..length];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        self.at += length;
        Some(name)
    }

    /// A plain path, written without spaces (`line.spec_no`).
    fn path(&mut self) -> Option<Vec<String>> {
        self.skip_space();
        let rest = &self.text[self.at..];
        let length = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .count();
        let names = plain_path(&rest[..length])?;
        self.at += length;
        Some(names.into_iter().map(str::to_string).collect())
    }

    /// A filter and its arguments.
    fn call(&mut self) -> Option<Call> {
        let name = self.name()?;
        let (positional, named) = if self.eat(b'(') {
            self.arguments()?
        } else {
            (Vec::new(), Vec::new())
        };
        let call = match (name, positional.as_slice()) {
            ("decimal", []) => Call::Decimal,
            ("add", [other]) => Call::Arithmetic(decimal::filter_add, other.clone()),
            ("sub", [other]) => Call::Arithmetic(decimal::filter_sub, other.clone()),
            ("mul", [other]) => Call::Arithmetic(decimal::filter_mul, other.clone()),
            ("div", [other]) => Call::Arithmetic(decimal::filter_div, other.clone()),
            ("round", []) => Call::Round(None),
            ("round", [Arg::Constant(places)]) => {
                Call::Round(Some(u32::try_from(places.as_i64()?).ok()?))
            }
            ("date", []) => Call::Time(crate::time::DATE.to_string()),
            ("datetime", []) => Call::Time(crate::time::WALL_CLOCK.to_string()),
            ("date" | "datetime", [format]) => Call::Time(format.text()?.to_string()),
            ("timestamp", []) => Call::Timestamp,
            ("lookup", [map]) => return lookup(map.text()?, named),
            ("default", [Arg::Constant(_)]) => Call::Default,
            _ => return None,
        };
        named.is_empty().then_some(call)
    }

    /// `( a, b, name=c )`, after the `(`: the positional arguments, then the named ones.
    #[allow(clippy::type_complexity)]
    fn arguments(&mut self) -> Option<(Vec<Arg>, Vec<(&'a str, Arg)>)> {
        let (mut positional, mut named) = (Vec::new(), Vec::new());
        if self.eat(b')') {
            return Some((positional, named));
        }
        loop {
            let start = self.at;
            let keyword = self.name().filter(|_| self.eat(b'='));
            if keyword.is_none() {
                self.at = start;
            }
            let arg = self.argument()?;
            match keyword {
                Some(keyword) => named.push((keyword, arg)),
                // A positional argument after a named one is minijinja's error.
                None if named.is_empty() => positional.push(arg),
                None => return None,
            }
            if self.eat(b')') {
                return Some((positional, named));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// A string without escapes, a number written plainly, or a plain path.
    fn argument(&mut self) -> Option<Arg> {
        match self.peek()? {
            quote @ (b'\'' | b'"') => {
                let rest = &self.text[self.at + 1..];
                let end = rest.find(quote as char)?;
                let text = &rest[..end];
                if text.contains('\\') {
                    return None;
                }
                self.at += end + 2;
                Some(Arg::Constant(Value::from(text)))
            }
            b'0'..=b'9' => {
                let rest = &self.text[self.at..];
                let length = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_digit() || *b == b'.')
                    .count();
                let number = &rest[..length];
                // `1_000`, `1e3`, `0x10` and the like are left to minijinja.
                if rest[length..]
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return None;
                }
                self.at += length;
                Some(Arg::Constant(constant_number(number)?))
            }
            _ => Some(Arg::Path(self.path()?)),
        }
    }
}

/// A number as minijinja reads it: digits alone are an unsigned integer, digits with one
/// point a float.
fn constant_number(text: &str) -> Option<Value> {
    match text.split_once('.') {
        None => text.parse::<u64>().ok().map(Value::from),
        Some((whole, fraction))
            if !whole.is_empty() && !fraction.is_empty() && !fraction.contains('.') =>
        {
            text.parse::<f64>().ok().map(Value::from)
        }
        Some(_) => None,
    }
}

/// `lookup(map, on_missing='…', default=…)`.
fn lookup(map: &str, named: Vec<(&str, Arg)>) -> Option<Call> {
    let (mut policy, mut default) = (None, None);
    for (name, arg) in named {
        match name {
            "on_missing" if policy.is_none() => {
                policy = Some(filters::miss_policy(arg.text()?).ok()?);
            }
            "default" if default.is_none() => default = Some(arg),
            _ => return None,
        }
    }
    Some(Call::Lookup {
        map: map.to_string(),
        policy,
        default,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use minijinja::UndefinedBehavior;
    use serde_json::json;

    use super::*;
    use crate::template::scope::{self, Scope};
    use crate::template::testing::{origin, shown};
    use crate::template::{Builder, Leaf, from_json};
    use crate::value_map::ValueMap;

    fn maps() -> Arc<ValueMaps> {
        let csv = b"code,kingdee\nSHOP01,CUST0001\nA,MAT-A\n7,SEVEN\n";
        let mut maps = ValueMaps::new();
        for (name, policy, default) in [
            ("strict", MissPolicy::Error, None),
            ("lenient", MissPolicy::Default, Some("DEF".to_string())),
            ("no_default", MissPolicy::Default, None),
            ("skip", MissPolicy::SkipLine, None),
        ] {
            let file = std::path::Path::new("m.csv");
            let map = ValueMap::parse(name, file, csv, policy, default).unwrap();
            maps.insert(name.to_string(), map);
        }
        Arc::new(maps)
    }

    const CHAINS: &[&str] = &[
        "num | decimal",
        "num | decimal | mul(100)",
        "tax | decimal | mul(100)",
        "tax | mul(100)",
        "tax | mul(1.5)",
        "tax | mul(num)",
        "tax | mul(missing)",
        "num | add('0.5') | sub(1) | div(4)",
        "num | div(0)",
        "int | div(3) | round",
        "int | div(3) | round(2)",
        "text | decimal",
        "empty | decimal",
        "null | decimal",
        "yes | decimal",
        "big | decimal",
        "float | decimal",
        "exp | decimal",
        "line.num | decimal",
        "line.missing | decimal",
        "missing | decimal",
        "when | date",
        "when | datetime",
        "when | date('%Y%m%d')",
        "when | datetime(\"%H:%M\")",
        "when | timestamp",
        "utc | datetime",
        "epoch | date",
        "epoch_ms | datetime",
        "no_date | date",
        "null | date",
        "text | date",
        "yes | timestamp",
        "when | date('%Q')",
        "shop | lookup('strict')",
        "other | lookup('strict')",
        "other | lookup('lenient')",
        "other | lookup('no_default')",
        "other | lookup('skip')",
        "other | lookup('strict', on_missing='default')",
        "other | lookup('lenient', on_missing='error')",
        "other | lookup('strict', default=other)",
        "other | lookup('strict', default='')",
        "other | lookup('strict', default=missing)",
        "shop | lookup('strict', default=missing)",
        "line.spec_no | lookup('strict', default=line.spec_no)",
        "line.spec_no | lookup('strict', on_missing='skip_line', default='x')",
        "seven | lookup('strict')",
        "null | lookup('strict')",
        "null | lookup('strict', default='d')",
        "shop | lookup('absent_map')",
        "text | default('')",
        "null | default('')",
        "empty | default('x')",
        "missing | default('')",
        "line.remark | default('') ",
        "vars.rate | decimal | mul(num)",
        "num | decimal | mul(vars.rate) | round(1)",
    ];

    #[test]
    fn chains_evaluated_without_minijinja_give_what_minijinja_gives() {
        let record = Arc::new(json!({
            "num": "3", "tax": "0.13", "int": 10, "text": "RK1", "empty": "", "null": null,
            "yes": true, "big": "123456789012345678901234567890", "float": 2.5, "exp": "1e2",
            "when": "2024-03-01 08:30:00", "utc": "2024-03-01T00:30:00Z",
            "epoch": 1709253000, "epoch_ms": 1709253000123i64,
            "no_date": "9999-12-01 00:00:00", "shop": "SHOP01", "other": "SHOP77", "seven": 7,
            "line": {"num": "2", "spec_no": "A", "remark": null},
        }));
        let mut builder = Builder::new(UndefinedBehavior::Strict, maps());
        let mut ids = Vec::new();
        for chain in CHAINS {
            let Leaf::Template(id) = builder
                .string_leaf(&format!("{{{{ {chain} }}}}"), origin())
                .unwrap()
            else {
                panic!("a template")
            };
            assert!(builder.entries[id.0].chain.is_some(), "{chain}");
            ids.push((chain, id));
        }
        let set = builder.build();
        let names = vec![(Arc::from("vars"), from_json(&json!({"rate": "0.5"})))];
        let nulls: scope::Nulls = Arc::from(["9999-12-01 00:00:00".to_string()]);
        let plain = Scope::for_record_with_nulls(Arc::clone(&record), names.clone(), nulls);
        let zones = crate::template::filters::zone_names(
            crate::time::Zone::parse("UTC").unwrap(),
            crate::time::Zone::parse("+05:00").unwrap(),
        );
        let zoned = Scope::for_record(
            Arc::clone(&record),
            names.into_iter().chain(zones).collect(),
        );
        for scope in [plain, zoned] {
            let misses = Arc::clone(scope.misses());
            let ctx = Value::from_object(scope);
            for (chain, id) in &ids {
                misses.clear();
                let fast = shown(set.eval(*id, &ctx), &misses);
                misses.clear();
                let compiled = set.eval_compiled(*id, &ctx);
                // What minijinja evaluates without an error from a value that is there, the
                // chain evaluates itself.
                let chain_of = set.entries[id.0].chain.as_ref().unwrap();
                let direct = chain_of.eval(&ctx, &set.value_maps);
                if !chain.starts_with("missing") {
                    assert_eq!(compiled.is_ok(), direct.is_some(), "{chain}");
                }
                let slow = shown(compiled, &misses);
                assert_eq!(fast, slow, "{chain}");
            }
        }
    }

    #[test]
    fn the_usual_chains_are_read_and_anything_else_is_left_to_minijinja() {
        for chain in [
            "check_time | date",
            "line.tax | decimal | mul(100)",
            "line.spec_no | lookup('material', default=line.spec_no)",
            "shop_no|lookup( 'shop_customer' )",
            "x | round(2) | datetime",
            "x | default(\"\")",
        ] {
            assert!(Chain::parse(chain).is_some(), "{chain}");
        }
        for other in [
            "order_no",
            "a | upper",
            "a | decimal(2)",
            "a | mul(-1)",
            "a | mul(1_000)",
            "a | mul(1e3)",
            "a | mul(1.2.3)",
            "a | lookup('m', default='x', 'y')",
            "a | lookup('m', nope='x')",
            "a | lookup('m', on_missing='nope')",
            "a | lookup('m', default='x', default='y')",
            "a | lookup(m)",
            "a | lookup('m\\'x')",
            "a | date(fmt)",
            "a | default(b)",
            "a | default('x', true)",
            "a | round(-1)",
            "a | decimal | ",
            "a | decimal and b",
            "a.b[0] | decimal",
            "none | decimal",
            "a | mul(b())",
            "a | mul(b.c",
        ] {
            assert!(Chain::parse(other).is_none(), "{other}");
        }
    }
}
