//! Plain paths: expressions that only name a value and its attributes (`order_no`,
//! `line.spec_no`, `vars.org`), about a third of a mapping's templates. They are read from the
//! scope directly when every name on the way is there, which is what minijinja's evaluation
//! would give; anything else (a missing field, a global, a null on the way) is left to
//! minijinja, for its value or its error. Pure; reads only the scope it is given.

use minijinja::Value;

/// Names minijinja does not look up in the context (constants and its own variables).
const RESERVED_NAMES: &[&str] = &[
    "true", "True", "false", "False", "none", "None", "loop", "self",
];

/// The names of an expression that is nothing but a path of attributes (`order_no`,
/// `line.spec_no`, `vars.org`), or `None`.
pub fn plain_path(source: &str) -> Option<Vec<&str>> {
    let names: Vec<&str> = source.trim().split('.').collect();
    let identifier = |name: &&str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (names.iter().all(identifier) && !RESERVED_NAMES.contains(&names[0])).then_some(names)
}

/// What minijinja's evaluation of the plain path `path` gives in `ctx`, read without its
/// machinery, when every name on the way is there; `None` otherwise (a missing field, a
/// global, a null on the way: minijinja then evaluates the template, for its value or its
/// error). A path evaluates to exactly what the context gives for its first name and each
/// value's attribute for the next, which is what this reads.
pub(super) fn read_path(path: &[String], ctx: &Value) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut value = ctx.get_attr(first).ok()?;
    for name in rest {
        if value.is_undefined() {
            return None;
        }
        value = value.get_attr(name).ok()?;
    }
    (!value.is_undefined()).then_some(value)
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
    use crate::value_map::ValueMaps;

    #[test]
    fn plain_paths_read_without_minijinja_give_what_minijinja_gives() {
        let record = Arc::new(json!({
            "text": "RK1", "empty": "", "chinese": "退货", "int": 3, "negative": -7,
            "big": 18446744073709551615u64, "float": 2.5, "whole_float": 1.0, "tiny": 1e-7,
            "huge": 1e300, "decimal_text": "2.0000", "yes": true, "null": null,
            "no_date": "9999-12-01 00:00:00", "range": 5,
            "object": {"a": {"b": "deep"}, "n": null, "list": [1, {"x": "y"}]},
            "list": [{"spec_no": "A"}, {"num": "1"}], "empty_list": [], "empty_object": {}
        }));
        let paths = [
            "text",
            "empty",
            "chinese",
            "int",
            "negative",
            "big",
            "float",
            "whole_float",
            "tiny",
            "huge",
            "decimal_text",
            "yes",
            "null",
            "no_date",
            "range",
            "object",
            "object.a",
            "object.a.b",
            "object.n",
            "object.n.x",
            "object.list",
            "object.missing",
            "object.a.b.c",
            "list",
            "empty_list",
            "empty_object",
            "missing",
            "missing.x",
            "text.upper",
            "list.spec_no",
            "int.x",
            "vars",
            "vars.org",
            "vars.nested.k",
            "vars.missing",
            "record",
            "record.text",
            "record.object.a",
            "record.missing",
            "item",
            "item.spec_no",
            "item.num",
            "namespace",
            "dict",
            "_private",
        ];
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new()));
        let mut ids = Vec::new();
        for path in paths {
            let Leaf::Template(id) = builder
                .string_leaf(&format!("{{{{ {path} }}}}"), origin())
                .unwrap()
            else {
                panic!("a template")
            };
            assert!(builder.entries[id.0].plain.is_some(), "{path}");
            ids.push((path, id));
        }
        let set = builder.build();
        let names = vec![(
            Arc::from("vars"),
            from_json(&json!({"org": "100", "nested": {"k": 1}})),
        )];
        let nulls: scope::Nulls = Arc::from(["9999-12-01 00:00:00".to_string()]);
        let outer = Scope::for_record_with_nulls(Arc::clone(&record), names, nulls);
        let line = outer.record_value().unwrap().get_attr("list").unwrap();
        for item in [Value::from(()), line.get_item_by_index(0).unwrap()] {
            let scope = outer.with("item", item);
            let misses = Arc::clone(scope.misses());
            let ctx = Value::from_object(scope);
            for (path, id) in &ids {
                misses.clear();
                let fast = shown(set.eval(*id, &ctx), &misses);
                misses.clear();
                let slow = shown(set.eval_compiled(*id, &ctx), &misses);
                assert_eq!(fast, slow, "{path}");
            }
        }
    }

    #[test]
    fn only_attribute_paths_are_plain() {
        for (source, plain) in [
            ("order_no", Some(vec!["order_no"])),
            (" line.spec_no ", Some(vec!["line", "spec_no"])),
            ("record._x.y2", Some(vec!["record", "_x", "y2"])),
            ("none", None),
            ("True", None),
            ("loop.index", None),
            ("self", None),
            ("a.0", None),
            ("a[0]", None),
            ("a . b", None),
            ("a.", None),
            ("a | upper", None),
            ("a()", None),
            ("2a", None),
            ("", None),
        ] {
            assert_eq!(plain_path(source), plain, "{source:?}");
        }
    }
}
