//! A flow's key, mapping and vars, and the checks of what every template of the flow reads
//! once its template sets are built.

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::UndefinedBehavior;
use serde_json::Value as Json;

use crate::apischema::MappingCheck;
use crate::config::model::{Source, Target};
use crate::config::raw::RawFlow;
use crate::config::yaml::{Document, YamlPath};
use crate::error::Location;
use crate::template::scope::Scope;
use crate::template::{self, Builder, Leaf, TemplateId, TemplateSet};
use crate::tree::{self, Node};
use crate::value_map::ValueMaps;

use super::checks::{
    check_contexts, check_literal_arguments, check_names_exist, check_param_names,
};
use super::{Compiler, Context, describe_json, write};

/// `key.source` (a template reading the record) and `key.modified`, when they compile.
pub(super) fn compile_key(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
) -> (Option<TemplateId>, Option<TemplateId>) {
    let key_path = YamlPath::root().key("key");
    let key_source = match tree::leaf(
        &raw.key.source,
        &key_path.key("source"),
        doc,
        &mut cx.strict,
    ) {
        Ok(Leaf::Template(id)) => Some(id),
        Ok(Leaf::Literal(_)) => {
            cx.error(
                "`key.source` must be a template that reads the record, such as `{{ order_no }}`",
                doc.locate(&key_path.key("source")),
                None,
            );
            None
        }
        Err(err) => {
            cx.errors.push(err);
            None
        }
    };
    let key_modified = raw.key.modified.as_ref().and_then(|text| {
        match tree::leaf(text, &key_path.key("modified"), doc, &mut cx.strict) {
            Ok(Leaf::Template(id)) => Some(id),
            Ok(Leaf::Literal(_)) => None,
            Err(err) => {
                cx.errors.push(err);
                None
            }
        }
    });
    (key_source, key_modified)
}

/// `mapping:`, a tree of target fields that writes the key field.
pub(super) fn compile_mapping(cx: &mut Compiler, doc: &Document, raw: &RawFlow) -> Node {
    let root = YamlPath::root();
    let mapping_path = root.key("mapping");
    let mapping = match &raw.mapping {
        Json::Object(_) => cx.tree(doc, &mapping_path, &raw.mapping, Context::Mapping),
        other => {
            cx.error(
                format!(
                    "`mapping` must be a tree of target fields, not {}",
                    describe_json(other)
                ),
                doc.locate(&mapping_path),
                Some("write the target record's fields under `mapping:`".into()),
            );
            Node::Invalid
        }
    };
    if let Node::Object(fields) = &mapping
        && !fields.iter().any(|f| f.key == raw.key.target)
    {
        cx.error(
            format!("the mapping does not write the key field `{}`", raw.key.target),
            doc.locate(&root.key("key").key("target")),
            Some(format!("map `{}` from the same value as `key.source`, so a record can be found in the target by its key", raw.key.target)),
        );
    }
    mapping
}

/// What the template checks look at besides the compiler.
pub(super) struct Compiled<'a> {
    pub doc: &'a Document,
    pub raw: &'a RawFlow,
    pub vars: &'a Json,
    pub value_maps: &'a Arc<ValueMaps>,
    pub source: Option<&'a Source>,
    pub target: Option<&'a Target>,
    /// Where the target's lookup operation is declared.
    pub lookup_at: Option<Location>,
    pub key: [Option<TemplateId>; 2],
}

/// Build the flow's template sets (strict, and lenient for envelopes), then check what every
/// template reads: contexts, literal arguments, parameter names, value-map names, and the
/// mapping against the source's and the target's record schemas (applied to `mapping`).
pub(super) fn build_and_check(
    cx: &mut Compiler,
    flow: Compiled<'_>,
    mapping: &mut Node,
) -> (TemplateSet, TemplateSet) {
    let strict = std::mem::replace(
        &mut cx.strict,
        Builder::new(UndefinedBehavior::Strict, Arc::clone(flow.value_maps)),
    )
    .build();
    let lenient = std::mem::replace(
        &mut cx.lenient,
        Builder::new(UndefinedBehavior::Chainable, Arc::clone(flow.value_maps)),
    )
    .build();
    check_contexts(cx, &strict, &lenient, flow.vars);
    check_literal_arguments(cx, &strict, flow.value_maps);
    if let Some(target) = flow.target {
        let ops = [
            Some((&target.operation, &target.params)),
            target.lookup.as_ref().map(|l| (l, &target.lookup_params)),
        ];
        for (op_name, params) in ops.into_iter().flatten() {
            if let Some(op) = target.connector.operations.get(op_name) {
                check_param_names(cx, &strict, op, params, "target");
            }
        }
        if let (Some(op), Some(at)) = (target.lookup_operation(), flow.lookup_at) {
            write::check_lookup_reads_keys(cx, &strict, op, at);
        }
    }
    if let Some(source) = flow.source {
        let op = source.operation();
        check_param_names(cx, &strict, op, &source.params, "source");
    }
    // Maps that failed to load are still declared: their own errors are enough.
    let declared: BTreeSet<String> = flow.raw.value_maps.keys().cloned().collect();
    check_names_exist(cx, &strict, &declared);
    check_names_exist(cx, &lenient, &declared);
    let mapping_path = YamlPath::root().key("mapping");
    let mut check = MappingCheck {
        templates: &strict,
        source: flow.source.and_then(|s| s.record_schema.as_ref()),
        target: flow.target.and_then(|t| t.record_schema.as_ref()),
        vars: flow.vars,
        errors: Vec::new(),
    };
    check.check(mapping, &flow.doc.locate_key(&mapping_path));
    for id in flow.key.into_iter().flatten() {
        check.template_names(id);
    }
    cx.errors.append(&mut check.errors);
    if let Some(schema) = flow.target.and_then(|t| t.record_schema.as_ref()) {
        tree::apply_target_schema(mapping, schema);
    }
    fold_vars(mapping, &strict, &template::from_json(flow.vars));
    (strict, lenient)
}

/// Put in place of each leaf of the mapping that only reads a var (`"{{ vars.org }}"`) the
/// value it gives, as it gives it (converted to JSON as any leaf's value; the target's schema
/// still applies to it): vars are fixed when the flow loads, so mapping a record then pays
/// nothing for them. Done after every check, which saw the leaves as written. A leaf inside a
/// `$each` whose `$as` is `vars` (the loop's item then), or one that gives nothing, stays a
/// template and is evaluated for each record, with the error it makes.
fn fold_vars(node: &mut Node, templates: &TemplateSet, vars: &minijinja::Value) {
    match node {
        Node::Template(id) => {
            if templates
                .plain(*id)
                .and_then(<[String]>::first)
                .map(String::as_str)
                != Some("vars")
            {
                return;
            }
            let scope = Scope::named(vec![(Arc::from("vars"), vars.clone())]);
            let value = tree::evaluate_template(*id, templates, scope).ok();
            if let Some(json) = value.and_then(|value| template::to_json(&value).ok()) {
                *node = Node::Literal(json);
            }
        }
        Node::Object(fields) => {
            for field in fields {
                fold_vars(&mut field.node, templates, vars);
            }
        }
        Node::Array(items) => {
            for item in items {
                fold_vars(item, templates, vars);
            }
        }
        Node::When(when) => fold_vars(&mut when.value, templates, vars),
        Node::Each(each) if each.var != "vars" => fold_vars(&mut each.item, templates, vars),
        Node::Each(_) | Node::Literal(_) | Node::Invalid => {}
    }
}
