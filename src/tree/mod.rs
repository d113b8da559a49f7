//! Trees of templates: a YAML tree shaped like the output, whose leaves are templates.
//!
//! Flow mappings and connector request bodies are both written this way. Besides plain
//! mappings, lists and leaves, two directives exist:
//!
//! ```yaml
//! FEntity:                     # repeat over a source array
//!   $each: "{{ details_list }}"
//!   $as: line                  # the loop variable (default `item`); the record stays visible
//!   $if: "{{ line.num is positive }}"   # optional: keep only some items
//!   $item: { FMaterialId: { FNumber: "{{ line.spec_no }}" } }
//! FHeadNote:                   # a conditional field, omitted when the condition is false
//!   $if: "{{ remark != '' }}"
//!   $value: "{{ remark }}"
//! ```
//!
//! A key that really starts with `$` is written `$$key`. Compiling reports every problem at
//! once; evaluating turns a record into JSON or into an error that names the output field,
//! the template's file position and (for strictness failures) the missing source field. A
//! flow's mapping is then annotated from the target's API schema ([`apply_target_schema`]):
//! evaluation gives fields their schema's scalar type and holds `$each` to `minItems`.

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::apischema::ApiSchema;
use crate::config::shape::{describe_value, key_text};
use crate::config::yaml::{Document, YamlPath};
use crate::error::{Error, Location, did_you_mean};
use crate::template::{self, Builder, Leaf, TemplateId};

mod eval;
mod sink;

pub use eval::{EvalError, Evaluated, EvaluatedText, evaluate, evaluate_template, evaluate_text};

/// A compiled tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A leaf whose template did not compile (its error is already reported); never evaluated.
    Invalid,
    Literal(Json),
    Template(TemplateId),
    Object(Vec<Field>),
    Array(Vec<Node>),
    Each(Box<Each>),
    When(Box<When>),
}

/// One key of an object node, with where its key is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub key_location: Location,
    pub path: YamlPath,
    pub node: Node,
    /// What the target's schema asks of this field's value (see [`apply_target_schema`]).
    pub coerce: Coerce,
}

/// What a target field's schema type asks of its value, decided once when the flow loads so
/// that evaluating a record costs one comparison per field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Coerce {
    /// No single scalar type: the value goes out as the template made it.
    #[default]
    Keep,
    /// `type: string`: a number becomes its text (`12345` → `"12345"`), which loses nothing.
    Text,
    /// `type: number`: a numeric text becomes the exact number; any other text fails the record.
    Number,
    /// `type: integer`: as `Number`, and the number must be whole.
    Integer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Each {
    pub items: TemplateId,
    pub var: String,
    pub condition: Option<TemplateId>,
    pub item: Node,
    /// The fewest items the target accepts (the schema's `minItems`, see [`apply_target_schema`]).
    pub min_items: usize,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub condition: TemplateId,
    pub value: Node,
}

const EACH_KEYS: &[&str] = &["$each", "$as", "$if", "$item"];
const WHEN_KEYS: &[&str] = &["$if", "$value"];

/// Compile the tree at `path` of `doc`, adding its templates to `builder` and any problem to `errors`.
pub fn compile(
    value: &Yaml,
    path: &YamlPath,
    doc: &Document,
    builder: &mut Builder,
    errors: &mut Vec<Error>,
) -> Node {
    compile_in(value, path, doc, builder, errors, &[])
}

/// [`compile`] inside the `$each` sections whose loop variables are `loops` (innermost last).
fn compile_in(
    value: &Yaml,
    path: &YamlPath,
    doc: &Document,
    builder: &mut Builder,
    errors: &mut Vec<Error>,
    loops: &[&str],
) -> Node {
    match value {
        Yaml::Null => Node::Literal(Json::Null),
        Yaml::Bool(b) => Node::Literal(Json::Bool(*b)),
        Yaml::Number(n) => Node::Literal(serde_json::to_value(n).unwrap_or(Json::Null)),
        Yaml::String(text) => match leaf(text, path, doc, builder) {
            Ok(Leaf::Literal(json)) => Node::Literal(json),
            Ok(Leaf::Template(id)) => match loop_variable_mistake(id, builder, loops) {
                None => Node::Template(id),
                Some(error) => {
                    errors.push(error.with_location(doc.locate(path)));
                    Node::Invalid
                }
            },
            Err(err) => {
                errors.push(err);
                Node::Invalid
            }
        },
        Yaml::Sequence(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_in(item, &path.index(i), doc, builder, errors, loops))
                .collect(),
        ),
        Yaml::Tagged(tagged) => compile_in(&tagged.value, path, doc, builder, errors, loops),
        Yaml::Mapping(mapping) => compile_mapping(mapping, path, doc, builder, errors, loops),
    }
}

/// A template inside an `$each` that names its items (`$as: line`) but reads `item`: without
/// this, `item` would be looked up as a field of the record, and the error would blame the
/// source data instead of the loop variable.
fn loop_variable_mistake(id: TemplateId, builder: &Builder, loops: &[&str]) -> Option<Error> {
    let innermost = *loops.last()?;
    if loops.contains(&"item") {
        return None;
    }
    let name = builder
        .undeclared_of(id)
        .into_iter()
        .find(|name| name == "item" || name.starts_with("item."))?;
    let suggestion = format!("{innermost}{}", &name["item".len()..]);
    Some(
        Error::config(format!(
            "`item` is not defined here; this `$each` names its item `{innermost}`"
        ))
        .with_hint(format!(
            "did you mean `{suggestion}`? (a record field called `item` is `record.item`)"
        )),
    )
}

/// Compile one string leaf at `path`, positioning syntax errors in the file.
pub fn leaf(
    text: &str,
    path: &YamlPath,
    doc: &Document,
    builder: &mut Builder,
) -> Result<Leaf, Error> {
    builder.string_leaf(text, origin(path, doc)).map_err(|err| {
        Error::config(format!("invalid template: {}", err.message))
            .with_location(doc.locate_in_scalar(path, err.line, err.column, err.len))
            .with_hint("templates are minijinja: `{{ field }}`, `{{ field | filter }}`, `{% if … %}…{% endif %}`")
    })
}

/// Where a template written at `path` of `doc` comes from.
fn origin(path: &YamlPath, doc: &Document) -> template::Origin {
    template::Origin {
        location: doc.locate(path),
        path: path.clone(),
    }
}

/// Compile one expression at `path` (a `$each` source or an `$if` condition).
pub fn expression(
    text: &Yaml,
    path: &YamlPath,
    doc: &Document,
    builder: &mut Builder,
) -> Result<TemplateId, Error> {
    let Some(text) = text.as_str() else {
        return Err(Error::config(format!(
            "`{path}` must be a template such as `\"{{{{ field }}}}\"`, not {}",
            describe_value(text)
        ))
        .with_location(doc.locate(path)));
    };
    builder.expression(text, origin(path, doc)).map_err(|err| {
        Error::config(format!("invalid expression: {}", err.message))
            .with_location(doc.locate_in_scalar(path, err.line, err.column, err.len))
    })
}

fn compile_mapping(
    mapping: &serde_yaml::Mapping,
    path: &YamlPath,
    doc: &Document,
    builder: &mut Builder,
    errors: &mut Vec<Error>,
    loops: &[&str],
) -> Node {
    let keys: Vec<(String, &Yaml)> = mapping
        .iter()
        .filter_map(|(k, v)| key_text(k).map(|k| (k, v)))
        .collect();
    let directives: Vec<&str> = keys
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with('$') && !k.starts_with("$$"))
        .collect();
    if directives.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let fields = keys
            .iter()
            .map(|(key, value)| {
                let child = path.key(key);
                let node = compile_in(value, &child, doc, builder, errors, loops);
                let key = key
                    .strip_prefix('$')
                    .filter(|k| k.starts_with('$'))
                    .unwrap_or(key)
                    .to_string();
                // `1:` and `"1":` are two YAML keys but one JSON key.
                if !seen.insert(key.clone()) {
                    errors.push(
                        Error::config(format!("`{key}` is written twice in `{path}`"))
                            .with_location(doc.locate_key(&child)),
                    );
                }
                Field {
                    key,
                    key_location: doc.locate_key(&child),
                    path: child,
                    node,
                    coerce: Coerce::Keep,
                }
            })
            .collect();
        return Node::Object(fields);
    }
    let get = |name: &str| keys.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let known = |key: &str| EACH_KEYS.contains(&key) || WHEN_KEYS.contains(&key);
    // A misspelt directive says nothing reliable about what the rest was meant to be: report
    // it alone, rather than a cascade of "has no `$item`" and "cannot stand beside" errors.
    let unknown: Vec<&str> = directives.iter().copied().filter(|d| !known(d)).collect();
    if !unknown.is_empty() {
        for key in unknown {
            let mut error = Error::config(format!("unknown directive `{key}` in `{path}`"))
                .with_location(doc.locate_key(&path.key(key)));
            let all = EACH_KEYS.iter().chain(WHEN_KEYS).copied();
            if let Some(suggestion) = did_you_mean(key, all) {
                error = error.with_hint(format!("did you mean `{suggestion}`?"));
            }
            errors.push(error);
        }
        return Node::Invalid;
    }
    let is_each = get("$each").is_some() || get("$as").is_some() || get("$item").is_some();
    let allowed = if is_each { EACH_KEYS } else { WHEN_KEYS };
    let mut ok = true;
    for (key, _) in &keys {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        ok = false;
        let directive = if is_each { "$each" } else { "$if" };
        errors.push(
            Error::config(format!(
                "`{key}` cannot stand beside `{directive}` in `{path}`"
            ))
            .with_location(doc.locate_key(&path.key(key)))
            .with_hint(if is_each {
                "fields of each repeated item go under `$item`"
            } else {
                "the conditional value goes under `$value`"
            }),
        );
    }
    let required: &[&str] = if is_each {
        &["$each", "$item"]
    } else {
        &["$if", "$value"]
    };
    for name in required {
        if get(name).is_none() {
            ok = false;
            let present = directives
                .iter()
                .find(|d| allowed.contains(d))
                .copied()
                .unwrap_or(directives[0]);
            errors.push(
                Error::config(format!("`{path}` uses `{present}` but has no `{name}`"))
                    .with_location(doc.locate_key(path))
                    .with_hint(if is_each {
                        "a repeated section is `$each: \"{{ list }}\"` plus `$item:` with the fields of one item"
                    } else {
                        "a conditional field is `$if: \"{{ condition }}\"` plus `$value: …`"
                    }),
            );
        }
    }
    if !ok {
        return Node::Invalid;
    }
    let var = match get("$as") {
        None => "item".to_string(),
        Some(Yaml::String(name)) if is_identifier(name) => name.clone(),
        Some(other) => {
            errors.push(
                Error::config(format!(
                    "`$as` must be a simple name such as `line`, not {}",
                    describe_value(other)
                ))
                .with_location(doc.locate(&path.key("$as"))),
            );
            "item".to_string()
        }
    };
    // `$each` and `$if` read names like any leaf; the condition of an `$each` also sees its item.
    let mut expr = |name: &str, loops: &[&str]| -> Option<TemplateId> {
        let value = get(name)?;
        let at = path.key(name);
        match expression(value, &at, doc, builder) {
            Ok(id) => match loop_variable_mistake(id, builder, loops) {
                None => Some(id),
                Some(error) => {
                    errors.push(error.with_location(doc.locate(&at)));
                    None
                }
            },
            Err(err) => {
                errors.push(err);
                None
            }
        }
    };
    if is_each {
        let items = expr("$each", loops);
        let inner: Vec<&str> = loops.iter().copied().chain([var.as_str()]).collect();
        let condition = expr("$if", &inner);
        let condition_ok = get("$if").is_none() || condition.is_some();
        let item = compile_in(
            get("$item").expect("checked above"),
            &path.key("$item"),
            doc,
            builder,
            errors,
            &inner,
        );
        match items {
            Some(items) if condition_ok => Node::Each(Box::new(Each {
                items,
                var,
                condition,
                item,
                min_items: 0,
                location: doc.locate_key(path),
            })),
            _ => Node::Invalid,
        }
    } else {
        let condition = expr("$if", loops);
        let value = compile_in(
            get("$value").expect("checked above"),
            &path.key("$value"),
            doc,
            builder,
            errors,
            loops,
        );
        match condition {
            Some(condition) => Node::When(Box::new(When { condition, value })),
            None => Node::Invalid,
        }
    }
}

/// Every template of a tree, directives' included, in no particular order.
pub fn template_ids(node: &Node) -> Vec<TemplateId> {
    let mut ids = Vec::new();
    collect_templates(node, &mut ids);
    ids
}

/// Add every template of a tree, directives' included, to `ids`.
pub fn collect_templates(node: &Node, ids: &mut Vec<TemplateId>) {
    match node {
        Node::Invalid | Node::Literal(_) => {}
        Node::Template(id) => ids.push(*id),
        Node::Object(fields) => {
            for field in fields {
                collect_templates(&field.node, ids);
            }
        }
        Node::Array(items) => {
            for item in items {
                collect_templates(item, ids);
            }
        }
        Node::Each(each) => {
            ids.push(each.items);
            ids.extend(each.condition);
            collect_templates(&each.item, ids);
        }
        Node::When(when) => {
            ids.push(when.condition);
            collect_templates(&when.value, ids);
        }
    }
}

/// Annotate a flow's mapping with what the target's schema asks of it: the scalar type of
/// each field and the fewest items of each repeated section (`minItems`: Kingdee refuses a
/// bill without lines). Done once when the flow loads; evaluation then only compares.
pub fn apply_target_schema(node: &mut Node, schema: &ApiSchema) {
    apply_schema(node, Some(schema.root()), schema);
}

fn apply_schema(node: &mut Node, schema: Option<&Json>, api: &ApiSchema) {
    let schema = schema.map(|s| api.resolve(s));
    match node {
        Node::Object(fields) => {
            let properties = schema.and_then(|s| s.get("properties"));
            for field in fields {
                let child = properties.and_then(|p| p.get(&field.key));
                field.coerce = child.map_or(Coerce::Keep, |c| coerce_for(api.resolve(c)));
                apply_schema(&mut field.node, child, api);
            }
        }
        Node::Array(items) => {
            let items_schema = schema.and_then(|s| s.get("items"));
            for item in items {
                apply_schema(item, items_schema, api);
            }
        }
        Node::Each(each) => {
            each.min_items = schema
                .and_then(|s| s.get("minItems"))
                .and_then(Json::as_u64)
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
            apply_schema(&mut each.item, schema.and_then(|s| s.get("items")), api);
        }
        Node::When(when) => apply_schema(&mut when.value, schema, api),
        Node::Invalid | Node::Literal(_) | Node::Template(_) => {}
    }
}

fn coerce_for(schema: &Json) -> Coerce {
    let types: Vec<&str> = match schema.get("type") {
        Some(Json::String(one)) => vec![one.as_str()],
        Some(Json::Array(many)) => many
            .iter()
            .filter_map(Json::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => return Coerce::Keep,
    };
    match types[..] {
        ["string"] => Coerce::Text,
        ["number"] => Coerce::Number,
        ["integer"] => Coerce::Integer,
        _ => Coerce::Keep,
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use minijinja::Value;

    use minijinja::UndefinedBehavior;
    use serde_json::json;

    use super::*;
    use crate::config::raw::MissPolicy;
    use crate::template::TemplateSet;
    use crate::template::scope::Scope;
    use crate::value_map::{ValueMap, ValueMaps};

    struct Compiled {
        node: Node,
        templates: TemplateSet,
    }

    fn compile_text(yaml: &str) -> Result<Compiled, Vec<String>> {
        let doc = Document::parse(Path::new("flow.yaml"), yaml.to_string()).unwrap();
        let mut maps = ValueMaps::new();
        let csv = b"shop,customer\nSHOP01,CUST0001\n";
        maps.insert(
            "shops".into(),
            ValueMap::parse(
                "shops",
                Path::new("shops.csv"),
                csv,
                MissPolicy::SkipLine,
                None,
            )
            .unwrap(),
        );
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(maps));
        let mut errors = Vec::new();
        let node = compile(
            &doc.value,
            &YamlPath::root(),
            &doc,
            &mut builder,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors
                .iter()
                .map(|e| format!("{}: {}", e.location().unwrap(), e.message()))
                .collect());
        }
        Ok(Compiled {
            node,
            templates: builder.build(),
        })
    }

    /// The tree evaluated as a value, after checking that its text is the value's compact
    /// JSON, byte for byte, with the same lines skipped and the same error.
    fn run(yaml: &str, record: Json) -> Result<Evaluated, EvalError> {
        let compiled = compile_text(yaml).unwrap();
        let scope = || {
            Scope::for_record(
                Arc::new(record.clone()),
                vec![(Arc::from("vars"), Value::from_pairs([("org", "100")]))],
            )
        };
        let value = evaluate(&compiled.node, &compiled.templates, scope());
        let text = evaluate_text(&compiled.node, &compiled.templates, scope(), "FBillNo");
        match (&value, text) {
            (Ok(value), Ok(text)) => {
                assert_eq!(text.text, serde_json::to_string(&value.value).unwrap());
                assert_eq!(text.skipped, value.skipped);
                assert_eq!(text.watched.as_ref(), value.value.get("FBillNo"));
            }
            (Err(err), Err(text_err)) => assert_eq!(*err, text_err),
            (value, text) => panic!("{value:?} but as text {text:?}"),
        }
        value
    }

    fn order() -> Json {
        json!({"order_no": "RK1", "shop_no": "SHOP01", "remark": "", "details_list": [
            {"spec_no": "A", "num": "2.0000", "shop": "SHOP01"},
            {"spec_no": "B", "num": "0.0000", "shop": "SHOP99"},
            {"spec_no": "C", "num": "1.5", "shop": "SHOP99"}
        ]})
    }

    #[test]
    fn a_tree_keeps_its_shape_order_and_types() {
        let yaml = "FBillNo: '{{ order_no }}'\nFSaleOrgId: {FNumber: '{{ vars.org }}'}\nFQty: 2\nFList: ['a', '{{ order_no }}']\n";
        let out = run(yaml, order()).unwrap();
        assert_eq!(
            serde_json::to_string(&out.value).unwrap(),
            r#"{"FBillNo":"RK1","FSaleOrgId":{"FNumber":"100"},"FQty":2,"FList":["a","RK1"]}"#
        );
    }

    #[test]
    fn each_repeats_filters_and_sees_the_parent_record() {
        let yaml = "FEntity:\n  $each: '{{ details_list }}'\n  $as: line\n  $if: '{{ line.num is positive }}'\n  $item:\n    FMaterialId: {FNumber: '{{ line.spec_no }}'}\n    FRealQty: '{{ line.num | decimal }}'\n    FNote: '{{ order_no }}'\n";
        let out = run(yaml, order()).unwrap();
        assert_eq!(
            out.value,
            json!({"FEntity": [
                {"FMaterialId": {"FNumber": "A"}, "FRealQty": 2, "FNote": "RK1"},
                {"FMaterialId": {"FNumber": "C"}, "FRealQty": 1.5, "FNote": "RK1"}
            ]})
        );
    }

    #[test]
    fn conditional_fields_are_omitted_when_false() {
        let yaml = "FHeadNote:\n  $if: \"{{ remark != '' }}\"\n  $value: '{{ remark }}'\nFBillNo: '{{ order_no }}'\n";
        assert_eq!(run(yaml, order()).unwrap().value, json!({"FBillNo": "RK1"}));
    }

    #[test]
    fn skip_line_lookups_drop_the_line_and_say_so() {
        let yaml = "FEntity:\n  $each: '{{ details_list }}'\n  $item:\n    FCustId: \"{{ item.shop | lookup('shops') }}\"\n";
        let out = run(yaml, order()).unwrap();
        assert_eq!(out.value, json!({"FEntity": [{"FCustId": "CUST0001"}]}));
        assert_eq!(out.skipped.len(), 2);
        assert!(
            out.skipped[0].contains("FEntity item 2: `SHOP99` is not in value map `shops`"),
            "{:?}",
            out.skipped
        );
    }

    #[test]
    fn a_missing_field_names_the_field_the_output_and_the_file_position() {
        let yaml = "FEntity:\n  $each: '{{ details_list }}'\n  $as: line\n  $item:\n    FLot: '{{ line.batch_no }}'\n";
        let err = run(yaml, order()).unwrap_err();
        assert_eq!(
            err.message,
            "field `details_list[0].batch_no` is missing from the record"
        );
        assert_eq!(err.target, "FEntity[0].FLot");
        assert_eq!((err.location.line, err.location.column), (5, 11));
        assert_eq!(
            err.missing_field.as_deref(),
            Some("details_list[0].batch_no")
        );
    }

    #[test]
    fn filter_failures_carry_the_filters_message() {
        let err = run("FQty: '{{ order_no | decimal }}'\n", order()).unwrap_err();
        assert_eq!(err.message, "`RK1` is not a decimal number");
        assert_eq!(err.target, "FQty");
    }

    #[test]
    fn directive_mistakes_are_all_reported() {
        let yaml = "A:\n  $each: '{{ x }}'\n  $tiem: {}\nB:\n  $if: '{{ x }}'\nC:\n  $each: '{{ x }}'\n  $item: {}\n  FNote: x\nD:\n  $each: 3\n  $item: {}\n";
        let errors = compile_text(yaml).err().unwrap();
        assert_eq!(
            errors,
            vec![
                "flow.yaml:3:3: unknown directive `$tiem` in `A`",
                "flow.yaml:4:1: `B` uses `$if` but has no `$value`",
                "flow.yaml:9:3: `FNote` cannot stand beside `$each` in `C`",
                "flow.yaml:11:10: `D.$each` must be a template such as `\"{{ field }}\"`, not the number `3`",
            ]
        );
    }

    #[test]
    fn template_syntax_errors_point_into_the_file() {
        let errors = compile_text("a:\n  b: \"{{ x | }}\"\n").err().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("flow.yaml:2:12: invalid template"),
            "{errors:?}"
        );
    }

    /// A mapped record is parsed again where something reads inside it: one nested deeper
    /// than serde_json reads fails when it is mapped, with the reason.
    #[test]
    fn a_record_nested_too_deep_to_read_back_fails_as_text() {
        let compiled = compile_text("FBillNo: x\nFDeep: { a: '{{ deep }}' }\n").unwrap();
        let mut deep = json!(1);
        for _ in 0..127 {
            deep = json!([deep]);
        }
        let scope = Scope::for_record(Arc::new(json!({ "deep": deep })), Vec::new());
        let err = evaluate_text(&compiled.node, &compiled.templates, scope, "FBillNo").unwrap_err();
        assert_eq!(
            err.message,
            "the mapped record nests 129 objects and lists; at most 128 can be read back"
        );
    }

    #[test]
    fn a_key_written_twice_as_yaml_keys_of_two_types_is_refused() {
        let errors = compile_text("FQty: 1\n1: a\n'1': b\n").err().unwrap();
        assert_eq!(
            errors,
            ["flow.yaml:3:1: `1` is written twice in `(top level)`"]
        );
    }

    #[test]
    fn dollar_dollar_escapes_a_literal_dollar_key() {
        assert_eq!(
            run("$$ref: x\n", order()).unwrap().value,
            json!({"$ref": "x"})
        );
    }
}
