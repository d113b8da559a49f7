//! The filters and tests ERP mappings need, registered on every template environment.
//!
//! Decimals (`decimal`, `add`, `sub`, `mul`, `div`, `round`; tests `positive`, `zero`,
//! `negative`), times (`datetime`, `date`, `timestamp`), value maps (`lookup`) and SQL-style
//! quoting for query filters (`sql_quote`). Pure functions of their arguments and of two
//! hidden names of the template's scope: the zone a naive time is read in and the zone a
//! time is written in ([`zone_names`]; Asia/Shanghai when the scope has none). The value maps
//! are shared read-only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, TimeZone, Utc};
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, Output, State, Value};

use crate::config::raw::MissPolicy;
use crate::template::decimal;
use crate::time::{self, Zone};
use crate::value_map::ValueMaps;

/// The hidden scope name holding the zone naive times are read in.
const READ_ZONE: &str = "__engine_read_zone";
/// The hidden scope name holding the zone times are written in.
const WRITE_ZONE: &str = "__engine_write_zone";

/// The names that tell the time filters of a scope to read naive times in `read` and write
/// times in `write` (a mapping reads in the source's zone and writes in the target's).
pub fn zone_names(read: Zone, write: Zone) -> [(std::sync::Arc<str>, Value); 2] {
    [
        (std::sync::Arc::from(READ_ZONE), Value::from(read.name())),
        (std::sync::Arc::from(WRITE_ZONE), Value::from(write.name())),
    ]
}

/// The zone a scope names under `name`, Asia/Shanghai when it names none.
fn zone_of(state: &State, name: &str) -> Zone {
    zone_named(state.lookup(name))
}

/// The zone of a scope's hidden zone name (`value`, as the scope gives it), Asia/Shanghai
/// when the scope has none.
fn zone_named(value: Option<Value>) -> Zone {
    value
        .and_then(|value| value.as_str().and_then(|text| Zone::parse(text).ok()))
        .unwrap_or(time::DEFAULT_ZONE)
}

/// The zone naive times are read in (`write` false) or times are written in (`write` true),
/// as the scope `ctx` names it: what the time filters find through their `State` when `ctx`
/// is the template's context.
pub(super) fn zone_in(ctx: &Value, write: bool) -> Zone {
    let name = if write { WRITE_ZONE } else { READ_ZONE };
    zone_named(ctx.get_attr(name).ok().filter(|v| !v.is_undefined()))
}

/// Marks a lookup miss under `skip_line`: the repeated section drops the current line.
#[derive(Debug)]
pub struct SkipLine {
    pub message: String,
}

impl std::fmt::Display for SkipLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SkipLine {}

/// Whether an evaluation error asks to skip the current line rather than fail the record.
pub fn skip_line(error: &Error) -> Option<&SkipLine> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(err) = next {
        if let Some(skip) = err.downcast_ref::<SkipLine>() {
            return Some(skip);
        }
        next = err.source();
    }
    None
}

/// Register everything on `env`.
pub fn register(env: &mut Environment<'static>, value_maps: Arc<ValueMaps>) {
    env.add_filter("decimal", decimal::filter_decimal);
    env.add_filter("add", decimal::filter_add);
    env.add_filter("sub", decimal::filter_sub);
    env.add_filter("mul", decimal::filter_mul);
    env.add_filter("div", decimal::filter_div);
    env.add_filter("round", decimal::filter_round);
    env.add_test("positive", decimal::test_positive);
    env.add_test("negative", decimal::test_negative);
    env.add_test("zero", decimal::test_zero);
    env.add_filter("datetime", filter_datetime);
    env.add_filter("date", filter_date);
    env.add_filter("timestamp", filter_timestamp);
    env.add_filter("sql_quote", filter_sql_quote);
    env.add_filter("merge", filter_merge);
    env.add_filter(
        "lookup",
        move |value: Value, map: String, kwargs: Kwargs| lookup(&value_maps, &value, &map, &kwargs),
    );
}

/// How a text template writes a value: an empty value (`null`) is empty text, never the
/// word `none`; everything else as minijinja writes it. (An undefined value never gets here
/// in a strict template: minijinja fails on it first.)
pub fn null_as_empty(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_none() {
        return Ok(());
    }
    minijinja::escape_formatter(out, state, value)
}

/// minijinja's filters that accept an undefined value and turn it into text (`tojson` gives
/// `null`, `escape` and `urlencode` an empty string, `pprint` the word `undefined`) or fail
/// with a message that does not name the field. Each is wrapped to fail as strict undefined.
/// Only for strict environments: lenient envelopes may print what is not there.
pub fn register_strict_builtins(env: &mut Environment<'static>) {
    use minijinja::filters;
    env.add_filter(
        "tojson",
        |value: &Value, indent: Option<Value>, kwargs: Kwargs| {
            defined(value)?;
            filters::tojson(value, indent, kwargs)
        },
    );
    for name in ["escape", "e"] {
        env.add_filter(name, |state: &mut State, value: &Value| {
            defined(value)?;
            filters::escape(state, value)
        });
    }
    env.add_filter("urlencode", |value: &Value| {
        defined(value)?;
        filters::urlencode(value)
    });
    env.add_filter("pprint", |value: &Value| {
        defined(value)?;
        Ok::<_, Error>(filters::pprint(value))
    });
    env.add_filter("list", |state: &State, value: Value| {
        defined(&value)?;
        filters::list(state, value)
    });
    env.add_filter("abs", |value: Value| {
        defined(&value)?;
        filters::abs(value)
    });
    env.add_filter("min", |state: &State, value: Value, kwargs: Kwargs| {
        defined(&value)?;
        filters::min(state, value, kwargs)
    });
    env.add_filter("max", |state: &State, value: Value, kwargs: Kwargs| {
        defined(&value)?;
        filters::max(state, value, kwargs)
    });
}

/// minijinja's own filters and tests, for "did you mean" suggestions.
pub const BUILTIN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "count",
    "default",
    "dictsort",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
];
pub const BUILTIN_TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "true",
    "false",
    "odd",
    "even",
    "divisibleby",
    "number",
    "integer",
    "float",
    "string",
    "sequence",
    "iterable",
    "mapping",
    "startingwith",
    "endingwith",
    "lower",
    "upper",
    "safe",
    "escaped",
    "in",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "boolean",
    "filter",
    "test",
    "positive",
    "negative",
    "zero",
];

/// Names of every filter [`register`] adds (for "did you mean" in checks).
pub const FILTERS: &[&str] = &[
    "decimal",
    "add",
    "sub",
    "mul",
    "div",
    "round",
    "datetime",
    "date",
    "timestamp",
    "sql_quote",
    "lookup",
];

/// Fail on an undefined input the way strict undefined does. An undefined value reaching a
/// filter is a field the record lacks; the evaluator names that field (it noted the miss), so
/// the filter must not turn it into an empty value or complain about an empty string.
pub fn defined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the value is undefined",
        ));
    }
    Ok(())
}

fn instant(value: &Value, zone: Zone) -> Result<DateTime<Utc>, Error> {
    defined(value)?;
    if let Some(text) = value.as_str() {
        return time::parse_instant_in(text, zone)
            .map_err(|message| Error::new(ErrorKind::InvalidOperation, message));
    }
    if value.kind() == minijinja::value::ValueKind::Bool {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`{}` is not a time", value.is_true()),
        ));
    }
    if let Some(number) = value.as_i64() {
        // Ten digits are seconds; thirteen are milliseconds (as TOP accepts both).
        let instant = if number.abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(number)
        } else {
            Utc.timestamp_opt(number, 0)
        };
        return instant.single().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("`{number}` is not a valid timestamp"),
            )
        });
    }
    if value.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "an empty value (`null`) is not a time",
        ));
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("`{value}` is not a time"),
    ))
}

/// Format `instant` in `zone` with a chrono format, or say what is wrong with the format
/// (chrono would panic on `%Q` or a lone `%` when the text is made).
fn format_time(instant: DateTime<Utc>, format: &str, zone: Zone) -> Result<String, Error> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "`{format}` is not a valid time format (chrono `strftime`: `%Y-%m-%d %H:%M:%S`)"
            ),
        )
    };
    let items = parsed_format(format).ok_or_else(bad)?;
    let mut text = String::new();
    write!(text, "{}", zone.format_items(instant, &items)).map_err(|_| bad())?;
    Ok(text)
}

/// The most time formats [`parsed_format`] keeps (a format is usually a template's constant;
/// one made from record data could otherwise grow the cache without end).
const MAX_CACHED_FORMATS: usize = 64;

/// A chrono format parsed once (a mapping formats a time or two per record, and parsing the
/// format cost more than formatting with it); `None` when it is not a valid format.
fn parsed_format(format: &str) -> Option<Arc<[Item<'static>]>> {
    static FORMATS: LazyLock<Mutex<HashMap<String, Arc<[Item<'static>]>>>> =
        LazyLock::new(Mutex::default);
    let mut formats = FORMATS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(items) = formats.get(format) {
        return Some(Arc::clone(items));
    }
    let items: Arc<[Item<'static>]> = StrftimeItems::new(format).parse_to_owned().ok()?.into();
    if formats.len() < MAX_CACHED_FORMATS {
        formats.insert(format.to_string(), Arc::clone(&items));
    }
    Some(items)
}

/// `value | datetime` → `2024-01-01 12:00:00` (in the writing zone); `datetime('%Y%m%d')` for
/// other formats.
pub fn filter_datetime(
    state: &State,
    value: Value,
    format: Option<String>,
) -> Result<String, Error> {
    let format = format.as_deref().unwrap_or(time::WALL_CLOCK);
    time_text(&value, format, zone_of(state, READ_ZONE), || {
        zone_of(state, WRITE_ZONE)
    })
}

/// `value | date` → `2024-01-01` (in the writing zone).
pub fn filter_date(state: &State, value: Value, format: Option<String>) -> Result<String, Error> {
    let format = format.as_deref().unwrap_or(time::DATE);
    time_text(&value, format, zone_of(state, READ_ZONE), || {
        zone_of(state, WRITE_ZONE)
    })
}

/// `value` read as a time in `read` and written with `format` in the zone `write` gives (the
/// `date` and `datetime` filters once their read zone is known; the write zone is looked up
/// only for a time, as the filters always did).
pub(super) fn time_text(
    value: &Value,
    format: &str,
    read: Zone,
    write: impl FnOnce() -> Zone,
) -> Result<String, Error> {
    format_time(instant(value, read)?, format, write())
}

/// `value | timestamp` → seconds since the epoch.
pub fn filter_timestamp(state: &State, value: Value) -> Result<i64, Error> {
    timestamp_in(&value, zone_of(state, READ_ZONE))
}

/// `value` read as a time in `zone`, in seconds since the epoch.
pub(super) fn timestamp_in(value: &Value, zone: Zone) -> Result<i64, Error> {
    Ok(instant(value, zone)?.timestamp())
}

/// `value | sql_quote` → `'value'` with quotes doubled, for Kingdee `FilterString`s.
pub fn filter_sql_quote(value: Value) -> Result<String, Error> {
    defined(&value)?;
    Ok(format!("'{}'", value.to_string().replace('\'', "''")))
}

/// `options | merge({'Model': records})`: a new mapping with the keys of both, the right side winning.
pub fn filter_merge(left: Value, right: Value) -> Result<Value, Error> {
    let mut pairs: Vec<(Value, Value)> = Vec::new();
    for side in [&left, &right] {
        defined(side)?;
        if side.kind() != minijinja::value::ValueKind::Map {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`merge` combines mappings, not `{side}` ({})", side.kind()),
            ));
        }
        for key in side.try_iter()? {
            let value = side.get_item(&key)?;
            pairs.retain(|(k, _)| k != &key);
            pairs.push((key, value));
        }
    }
    Ok(Value::from_pairs(pairs))
}

fn lookup(
    value_maps: &ValueMaps,
    value: &Value,
    map_name: &str,
    kwargs: &Kwargs,
) -> Result<Value, Error> {
    if value_maps.get(map_name).is_none() {
        return Err(no_such_map(map_name));
    }
    let policy = match kwargs.get::<Option<String>>("on_missing")?.as_deref() {
        None => None,
        Some(name) => Some(miss_policy(name)?),
    };
    // `Option<Value>` would read an undefined default as no default at all.
    let default: Option<Value> = if kwargs.has("default") {
        let default: Value = kwargs.get("default")?;
        defined(&default)?;
        Some(default)
    } else {
        None
    };
    kwargs.assert_all_used()?;
    lookup_in(value_maps, value, map_name, policy, default)
}

fn no_such_map(map_name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("there is no value map `{map_name}`"),
    )
}

/// The policy `lookup(…, on_missing=name)` names.
pub(super) fn miss_policy(name: &str) -> Result<MissPolicy, Error> {
    match name {
        "error" => Ok(MissPolicy::Error),
        "default" => Ok(MissPolicy::Default),
        "skip_line" => Ok(MissPolicy::SkipLine),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`on_missing` is `error`, `default` or `skip_line`, not `{other}`"),
        )),
    }
}

/// `value | lookup(map_name, on_missing=policy, default=default)` once its arguments are read
/// (`policy` `None`: the map's own).
pub(super) fn lookup_in(
    value_maps: &ValueMaps,
    value: &Value,
    map_name: &str,
    policy: Option<MissPolicy>,
    default: Option<Value>,
) -> Result<Value, Error> {
    let Some(map) = value_maps.get(map_name) else {
        return Err(no_such_map(map_name));
    };
    let policy = policy.unwrap_or(map.on_missing);
    defined(value)?;
    if value.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot look up an empty value (`null`) in value map `{map_name}`"),
        ));
    }
    let key = value.to_string();
    if let Some(found) = map.get(&key) {
        return Ok(Value::from(found));
    }
    // A miss that has a default builds no message.
    if let Some(default) = default {
        return Ok(default);
    }
    let message = || {
        format!(
            "`{key}` is not in value map `{map_name}` ({})",
            map.file.display()
        )
    };
    match policy {
        MissPolicy::Default => match &map.default {
            Some(default) => Ok(Value::from(default.as_str())),
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("{}, and the map has no `default`", message()),
            )),
        },
        MissPolicy::SkipLine => {
            let message = message();
            Err(Error::new(ErrorKind::InvalidOperation, message.clone())
                .with_source(SkipLine { message }))
        }
        MissPolicy::Error => Err(Error::new(ErrorKind::InvalidOperation, message())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use minijinja::context;

    use super::*;
    use crate::value_map::ValueMap;

    fn env() -> Environment<'static> {
        let mut maps = ValueMaps::new();
        let csv = b"shop,customer\nSHOP01,CUST0001\n";
        maps.insert(
            "shops".into(),
            ValueMap::parse(
                "shops",
                Path::new("shops.csv"),
                csv,
                MissPolicy::Error,
                None,
            )
            .unwrap(),
        );
        maps.insert(
            "lenient".into(),
            ValueMap::parse(
                "lenient",
                Path::new("l.csv"),
                csv,
                MissPolicy::Default,
                Some("CUST0000".into()),
            )
            .unwrap(),
        );
        let mut env = Environment::new();
        register(&mut env, Arc::new(maps));
        env
    }

    fn eval(expr: &str) -> Result<String, Error> {
        env()
            .compile_expression(expr)
            .unwrap()
            .eval(context! {})
            .map(|v| v.to_string())
    }

    #[test]
    fn times_are_read_and_written_in_shanghai() {
        assert_eq!(eval("'2024-01-01 23:30:00' | date").unwrap(), "2024-01-01");
        assert_eq!(
            eval("'2024-01-01T00:00:00Z' | datetime").unwrap(),
            "2024-01-01 08:00:00"
        );
        assert_eq!(
            eval("'2024-01-01 08:00:00' | timestamp").unwrap(),
            "1704067200"
        );
        assert_eq!(
            eval("1704067200000 | datetime('%Y%m%d%H')").unwrap(),
            "2024010108"
        );
        assert!(
            eval("'someday' | date")
                .unwrap_err()
                .to_string()
                .contains("`someday` is not a time")
        );
    }

    #[test]
    fn times_are_read_and_written_in_the_zones_of_the_scope() {
        let utc = Zone::parse("UTC").unwrap();
        let plus5 = Zone::parse("+05:00").unwrap();
        let table: &[(&str, Zone, Zone, &str)] = &[
            (
                "'2026-12-01T08:00:00Z' | datetime",
                utc,
                utc,
                "2026-12-01 08:00:00",
            ),
            (
                "'2026-12-01 08:00:00' | datetime",
                utc,
                time::DEFAULT_ZONE,
                "2026-12-01 16:00:00",
            ),
            (
                "'2026-12-01 16:00:00' | datetime",
                time::DEFAULT_ZONE,
                utc,
                "2026-12-01 08:00:00",
            ),
            ("'2026-12-01 23:30:00' | date", utc, plus5, "2026-12-02"),
            (
                "'2026-12-01 08:00:00' | timestamp",
                utc,
                time::DEFAULT_ZONE,
                "1796112000",
            ),
            ("'1796112000' | datetime", utc, utc, "2026-12-01 08:00:00"),
            (
                "1796112000000 | datetime('%Y-%m-%dT%H:%M:%S%:z')",
                utc,
                plus5,
                "2026-12-01T13:00:00+05:00",
            ),
            (
                "'2026-12-01T08:00:00+0800' | datetime",
                plus5,
                utc,
                "2026-12-01 00:00:00",
            ),
        ];
        let env = env();
        for (expr, read, write, expected) in table {
            let names: BTreeMap<String, Value> = zone_names(*read, *write)
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect();
            let got = env.compile_expression(expr).unwrap().eval(names).unwrap();
            assert_eq!(got.to_string(), *expected, "{expr}");
        }
    }

    #[test]
    fn a_time_format_kept_from_an_earlier_use_formats_the_same() {
        for round in 0..2 {
            // More formats than are kept: the later ones are parsed at each use.
            for n in 0..MAX_CACHED_FORMATS + 6 {
                let expr = format!("'2024-01-01 08:00:00' | datetime('%Y/{n}/%H')");
                assert_eq!(eval(&expr).unwrap(), format!("2024/{n}/08"), "{round}");
            }
            assert_eq!(eval("'2024-01-01 08:00:00' | date").unwrap(), "2024-01-01");
            let err = eval("'2024-01-01 08:00:00' | datetime('%Q')").unwrap_err();
            assert!(err.to_string().contains("`%Q` is not a valid time format"));
        }
    }

    #[test]
    fn a_bad_time_format_is_an_error_not_a_panic() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("'2024-01-01 08:00:00' | datetime('%Y%m%d')", Ok("20240101")),
            ("'2024-01-01 08:00:00' | date('%d/%m/%Y')", Ok("01/01/2024")),
            ("'2024-01-01 08:00:00' | date('%%')", Ok("%")),
            (
                "'2024-01-01 08:00:00' | datetime('%Q')",
                Err("`%Q` is not a valid time format"),
            ),
            (
                "'2024-01-01 08:00:00' | date('%')",
                Err("`%` is not a valid time format"),
            ),
            (
                "'2024-01-01 08:00:00' | date('%Y-%')",
                Err("`%Y-%` is not a valid time format"),
            ),
            (
                "'2024-01-01 08:00:00' | datetime('%.3Q')",
                Err("is not a valid time format"),
            ),
            ("none | date", Err("an empty value (`null`) is not a time")),
            (
                "none | datetime('%Q')",
                Err("an empty value (`null`) is not a time"),
            ),
            ("true | timestamp", Err("`true` is not a time")),
        ];
        for (expr, expected) in table {
            match (eval(expr), expected) {
                (Ok(got), Ok(expected)) => assert_eq!(&got, expected, "{expr}"),
                (Err(err), Err(expected)) => {
                    assert!(err.to_string().contains(expected), "{expr}: {err}")
                }
                (got, expected) => panic!("{expr} gave {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn null_is_empty_text_in_a_text_template() {
        let mut env = env();
        env.set_formatter(null_as_empty);
        let table: &[(&str, &str)] = &[
            ("RT {{ none }}.", "RT ."),
            ("{{ x }}|{{ y }}|{{ z }}", "|0|False"),
            ("{{ 'a' }}{{ 1.5 }}", "a1.5"),
        ];
        for (template, expected) in table {
            let rendered = env
                .render_str(template, context! { x => (), y => 0, z => false })
                .unwrap();
            assert_eq!(&rendered, expected, "{template}");
        }
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        assert!(env.render_str("RT {{ nope }}", context! {}).is_err());
    }

    #[test]
    fn lookups_follow_the_miss_policy() {
        assert_eq!(eval("'SHOP01' | lookup('shops')").unwrap(), "CUST0001");
        let err = eval("'SHOP99' | lookup('shops')").unwrap_err();
        assert_eq!(
            err.detail(),
            Some("`SHOP99` is not in value map `shops` (shops.csv)")
        );
        assert!(skip_line(&err).is_none());
        assert_eq!(eval("'SHOP99' | lookup('lenient')").unwrap(), "CUST0000");
        assert_eq!(
            eval("'SHOP99' | lookup('shops', default='X')").unwrap(),
            "X"
        );
        let skip = env()
            .compile_expression("'SHOP99' | lookup('shops', on_missing='skip_line')")
            .unwrap()
            .eval(context! {})
            .unwrap_err();
        assert!(skip_line(&skip).is_some());
        assert!(
            eval("'SHOP01' | lookup('nope')")
                .unwrap_err()
                .to_string()
                .contains("there is no value map `nope`")
        );
    }

    #[test]
    fn sql_quote_doubles_quotes() {
        assert_eq!(eval("\"O'Brien\" | sql_quote").unwrap(), "'O''Brien'");
        assert_eq!(
            eval("['A','B'] | map('sql_quote') | join(',')").unwrap(),
            "'A','B'"
        );
    }

    #[test]
    fn merge_combines_mappings_in_order_with_the_right_side_winning() {
        assert_eq!(
            eval("{'a': 1, 'b': 2} | merge({'b': 3, 'c': 4}) | tojson").unwrap(),
            r#"{"a": 1, "b": 3, "c": 4}"#
        );
        assert!(
            eval("{'a': 1} | merge([1])")
                .unwrap_err()
                .to_string()
                .contains("`merge` combines mappings")
        );
    }

    #[test]
    fn decimal_filters_chain() {
        assert_eq!(
            eval("'19.90' | decimal | mul(3) | round(2)").unwrap(),
            "59.7"
        );
        assert_eq!(eval("'0.1300' | mul(100)").unwrap(), "13");
        assert_eq!(eval("'2.0000' is positive").unwrap(), "True");
    }
}
