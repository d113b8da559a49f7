//! API schemas: the JSON Schema of a source record and of a target record, and the checks
//! of a mapping against them that `engine check` runs (and `engine run` refuses to skip).
//!
//! The schemas live in `schemas/api/`, one per API record type, and are referenced by the
//! connector operation that reads or writes that type. Besides standard JSON Schema, a
//! property may carry `"x-base-data": "<form>"`: a Kingdee base-data reference that must be
//! written as `{FNumber: …}`. The checks work on compiled trees and never evaluate anything.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value as Json;

use crate::error::{Error, Location, did_you_mean};
use crate::template::{Kind, TemplateId, TemplateSet};
use crate::tree::{Field, Node};

/// A loaded API schema.
#[derive(Debug, Clone)]
pub struct ApiSchema {
    pub file: PathBuf,
    /// What the schema describes, e.g. `SAL_RETURNSTOCK 销售退货单`.
    pub title: String,
    root: Json,
}

/// What a source path is, according to a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    /// The field exists; its (resolved) schema.
    Found(&'a Json),
    /// A segment does not exist in a closed object.
    Unknown {
        segment: String,
        known: Vec<&'a str>,
    },
    /// Somewhere along the path the schema allows anything.
    Open,
}

impl ApiSchema {
    pub fn load(file: &Path) -> Result<ApiSchema, Error> {
        let bytes = crate::config::file::read_bounded(
            file,
            "JSON file",
            crate::config::file::MAX_CONFIG_BYTES,
        )?;
        let text = String::from_utf8(bytes).map_err(|err| {
            let (line, column) =
                crate::config::file::position_of_invalid_utf8(err.as_bytes(), err.utf8_error());
            Error::config(format!("API schema `{}` is not UTF-8 text", file.display()))
                .with_location(Location::new(file, line, column, 1))
                .with_hint("JSON files are UTF-8; convert it, e.g. `iconv -f GBK -t UTF-8`")
        })?;
        let root: Json = serde_json::from_str(&text).map_err(|err| {
            Error::config(format!("API schema `{}` is not valid JSON", file.display()))
                .with_location(Location::new(
                    file,
                    err.line().max(1),
                    err.column().max(1),
                    1,
                ))
                .with_source(err)
        })?;
        validate(file, &text, &root)?;
        let title = root
            .get("title")
            .and_then(Json::as_str)
            .unwrap_or("record")
            .to_string();
        Ok(ApiSchema {
            file: file.to_path_buf(),
            title,
            root,
        })
    }

    pub fn root(&self) -> &Json {
        &self.root
    }

    /// Follow `$ref`s to the schema they name (`load` has made sure they end).
    pub fn resolve<'a>(&'a self, schema: &'a Json) -> &'a Json {
        let mut schema = schema;
        for _ in 0..MAX_REF_CHAIN {
            let Some(name) = schema
                .get("$ref")
                .and_then(Json::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            else {
                break;
            };
            match self.root.pointer(&format!("/$defs/{name}")) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// Resolve a source path such as `["details_list", "spec_no"]` (arrays are stepped through).
    pub fn field(&self, path: &[String]) -> Resolved<'_> {
        let mut schema = self.resolve(&self.root);
        for segment in path {
            while schema.get("type").and_then(Json::as_str) == Some("array") {
                match schema.get("items") {
                    Some(items) => schema = self.resolve(items),
                    None => return Resolved::Open,
                }
            }
            if segment.parse::<usize>().is_ok() {
                continue;
            }
            let properties = schema.get("properties").and_then(Json::as_object);
            match properties.and_then(|p| p.get(segment)) {
                Some(next) => schema = self.resolve(next),
                None if schema.get("additionalProperties") == Some(&Json::Bool(false)) => {
                    return Resolved::Unknown {
                        segment: segment.clone(),
                        known: properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default(),
                    };
                }
                None => return Resolved::Open,
            }
        }
        Resolved::Found(schema)
    }
}

/// More `$ref`s in a row than any real schema has: a guard for `resolve`.
const MAX_REF_CHAIN: usize = 64;

/// A schema file must be a JSON Schema object whose `$ref`s name definitions of the same file
/// and never lead back to themselves; otherwise the mapping could not be checked against it.
fn validate(file: &Path, text: &str, root: &Json) -> Result<(), Error> {
    let name = file.display();
    if !root.is_object() {
        let what = match root {
            Json::Array(_) => "a list",
            Json::String(_) => "a text",
            Json::Number(_) => "a number",
            Json::Bool(_) => "true or false",
            _ => "empty",
        };
        return Err(Error::config(format!(
            "API schema `{name}` must be a JSON Schema object, not {what}"
        ))
        .with_location(Location::new(file, 1, 1, 1))
        .with_hint(
            "an API schema describes one record: `{\"type\": \"object\", \"properties\": {…}}`",
        ));
    }
    let defs: Vec<&str> = root
        .get("$defs")
        .and_then(Json::as_object)
        .map(|d| d.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut refs = Vec::new();
    collect_refs(root, &mut refs);
    for reference in refs {
        let at = locate_text(file, text, &format!("{reference:?}"));
        let Some(target) = reference.strip_prefix("#/$defs/") else {
            return Err(Error::config(format!(
                "API schema `{name}` has a `$ref` that cannot be followed: `{reference}`"
            ))
            .with_location(at)
            .with_hint("a `$ref` names a definition of the same file: `#/$defs/<name>`"));
        };
        if !defs.contains(&target) {
            let hint = match did_you_mean(target, defs.iter().copied()) {
                Some(suggestion) => format!("did you mean `#/$defs/{suggestion}`?"),
                None if defs.is_empty() => "the file has no `$defs`".to_string(),
                None => format!(
                    "the definitions are {}",
                    defs.iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(Error::config(format!(
                "API schema `{name}` has a `$ref` to a missing definition `{reference}`"
            ))
            .with_location(at)
            .with_hint(hint));
        }
    }
    for start in &defs {
        let mut seen = vec![*start];
        let mut current = *start;
        while let Some(next) = root
            .pointer(&format!("/$defs/{current}/$ref"))
            .and_then(Json::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            if seen.contains(&next) {
                let reference = format!("#/$defs/{next}");
                seen.push(next);
                return Err(Error::config(format!(
                    "API schema `{name}` has a cyclic $ref `{reference}`"
                ))
                .with_location(locate_text(file, text, &format!("{reference:?}")))
                .with_hint(format!(
                    "`{}`: a definition must be more than a `$ref` back to itself",
                    seen.join("` → `")
                )));
            }
            seen.push(next);
            current = next;
        }
    }
    Ok(())
}

fn collect_refs<'a>(schema: &'a Json, out: &mut Vec<&'a str>) {
    match schema {
        Json::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Json::as_str) {
                out.push(reference);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Json::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Where `needle` first occurs in `text` (1-based line and column), else the file's start.
fn locate_text(file: &Path, text: &str, needle: &str) -> Location {
    let Some(offset) = text.find(needle) else {
        return Location::new(file, 1, 1, 1);
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location::new(file, line, column, needle.chars().count())
}

/// What a template leaf gives, as far as can be told without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Null,
}

impl Shape {
    fn of_json(json: &Json) -> Shape {
        match json {
            Json::Null => Shape::Null,
            Json::Bool(_) => Shape::Boolean,
            Json::Number(n) if n.is_i64() || n.is_u64() => Shape::Integer,
            Json::Number(_) => Shape::Number,
            Json::String(_) => Shape::String,
            Json::Array(_) => Shape::Array,
            Json::Object(_) => Shape::Object,
        }
    }

    fn of_schema_type(name: &str) -> Option<Shape> {
        Some(match name {
            "string" => Shape::String,
            "number" => Shape::Number,
            "integer" => Shape::Integer,
            "boolean" => Shape::Boolean,
            "object" => Shape::Object,
            "array" => Shape::Array,
            "null" => Shape::Null,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Shape::String => "a string",
            Shape::Number => "a number",
            Shape::Integer => "an integer",
            Shape::Boolean => "true or false",
            Shape::Object => "an object",
            Shape::Array => "a list",
            Shape::Null => "null",
        }
    }

    fn fits(self, expected: Shape) -> bool {
        self == expected || (self == Shape::Integer && expected == Shape::Number)
    }
}

fn schema_shapes(schema: &Json) -> Vec<Shape> {
    match schema.get("type") {
        Some(Json::String(t)) => Shape::of_schema_type(t).into_iter().collect(),
        Some(Json::Array(ts)) => ts
            .iter()
            .filter_map(Json::as_str)
            .filter_map(Shape::of_schema_type)
            .collect(),
        _ => Vec::new(),
    }
}

static LAST_FILTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\([^()]*\))?\s*$").expect("valid regex")
});
static PLAIN_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$")
        .expect("valid regex")
});

/// Names that are not source fields inside a mapping.
const MAPPING_NAMES: &[&str] = &["vars", "record"];

/// Checks a flow mapping against the source and target schemas and the flow's `vars`.
pub struct MappingCheck<'a> {
    pub templates: &'a TemplateSet,
    pub source: Option<&'a ApiSchema>,
    pub target: Option<&'a ApiSchema>,
    pub vars: &'a Json,
    pub errors: Vec<Error>,
}

/// A name bound by `$each`, and the source path of its items when known.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    path: Option<Vec<String>>,
}

impl<'a> MappingCheck<'a> {
    /// Check the mapping tree rooted at `mapping` (written at `location`).
    pub fn check(&mut self, mapping: &Node, location: &Location) {
        let target = self.target.map(|t| t.resolve(t.root()));
        self.node(mapping, target, &[], "the mapping", location);
    }

    /// Check the names one template reads (for key templates and the like).
    pub fn template_names(&mut self, id: TemplateId) {
        self.names(id, &[]);
    }

    fn node(
        &mut self,
        node: &Node,
        schema: Option<&'a Json>,
        bindings: &[Binding],
        what: &str,
        location: &Location,
    ) {
        let schema = schema.map(|s| self.target.expect("a target schema").resolve(s));
        match node {
            Node::Invalid => {}
            Node::Literal(json) => {
                self.check_shape(Some(Shape::of_json(json)), schema, what, location, None);
                self.check_choice(json, schema, what, location);
            }
            Node::Template(id) => {
                self.names(*id, bindings);
                let shape = self.leaf_shape(*id, bindings);
                self.check_shape(
                    shape,
                    schema,
                    what,
                    &self.templates.origin(*id).location.clone(),
                    Some(*id),
                );
            }
            Node::Object(fields) => {
                if let Some(schema) = schema
                    && !schema_shapes(schema).is_empty()
                    && !schema_shapes(schema).contains(&Shape::Object)
                {
                    let shapes = schema_shapes(schema);
                    self.errors.push(
                        Error::config(format!(
                            "{what} expects {}, but is written as an object",
                            shapes[0].name()
                        ))
                        .with_location(location.clone()),
                    );
                    return;
                }
                self.fields(fields, schema, bindings, what, location);
            }
            Node::Array(items) => {
                if let Some(schema) = schema
                    && !schema_shapes(schema).is_empty()
                    && !schema_shapes(schema).contains(&Shape::Array)
                {
                    self.errors.push(
                        Error::config(format!(
                            "{what} expects {}, but is written as a list",
                            schema_shapes(schema)[0].name()
                        ))
                        .with_location(location.clone()),
                    );
                    return;
                }
                let items_schema = schema.and_then(|s| s.get("items"));
                for item in items {
                    self.node(item, items_schema, bindings, what, location);
                }
            }
            Node::Each(each) => {
                self.names(each.items, bindings);
                if let Some(schema) = schema
                    && !schema_shapes(schema).is_empty()
                    && !schema_shapes(schema).contains(&Shape::Array)
                {
                    self.errors.push(
                        Error::config(format!(
                            "{what} expects {}, but `$each` makes a list",
                            schema_shapes(schema)[0].name()
                        ))
                        .with_location(each.location.clone()),
                    );
                }
                let source = self.templates.source(each.items);
                let path = (self.templates.kind(each.items) == Kind::Expression
                    && PLAIN_PATH.is_match(source))
                .then(|| self.source_path(source, bindings))
                .flatten();
                let not_a_list = match (self.source, &path) {
                    (Some(source_schema), Some(path)) => match source_schema.field(path) {
                        Resolved::Found(found) => Some(schema_shapes(found))
                            .filter(|shapes| !shapes.is_empty() && !shapes.contains(&Shape::Array))
                            .map(|shapes| (source_schema, shapes)),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some((source_schema, shapes)) = not_a_list {
                    self.errors.push(
                        Error::config(format!(
                            "`$each` needs a list, but `{source}` is {} in {}",
                            shapes[0].name(),
                            source_schema.title
                        ))
                        .with_location(self.templates.origin(each.items).location.clone())
                        .with_hint("`$each` makes one item per element of a list field, such as `details_list`"),
                    );
                }
                let mut inner = bindings.to_vec();
                inner.push(Binding {
                    name: each.var.clone(),
                    path,
                });
                if let Some(condition) = each.condition {
                    self.names(condition, &inner);
                }
                let items_schema = schema.and_then(|s| s.get("items"));
                self.node(&each.item, items_schema, &inner, what, &each.location);
            }
            Node::When(when) => {
                self.names(when.condition, bindings);
                self.node(&when.value, schema, bindings, what, location);
            }
        }
    }

    fn fields(
        &mut self,
        fields: &[Field],
        schema: Option<&'a Json>,
        bindings: &[Binding],
        what: &str,
        location: &Location,
    ) {
        let Some(target) = self.target else {
            for field in fields {
                self.node(
                    &field.node,
                    None,
                    bindings,
                    &format!("`{}`", field.key),
                    &field.key_location,
                );
            }
            return;
        };
        let properties = schema
            .and_then(|s| s.get("properties"))
            .and_then(Json::as_object);
        let closed = schema.and_then(|s| s.get("additionalProperties")) == Some(&Json::Bool(false));
        let base_data = schema.is_some_and(|s| s.get("x-base-data").is_some());
        for field in fields {
            let child_schema = properties.and_then(|p| p.get(&field.key));
            if child_schema.is_none() && closed && properties.is_some() {
                let known: Vec<&str> = properties
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let mut error = Error::config(if base_data {
                    format!(
                        "`{}` is not a key of a base-data reference ({what})",
                        field.key
                    )
                } else {
                    format!(
                        "`{}` is not a field of {} ({what})",
                        field.key, target.title
                    )
                })
                .with_location(field.key_location.clone());
                if let Some(suggestion) = did_you_mean(&field.key, known.iter().copied()) {
                    error = error.with_hint(format!("did you mean `{suggestion}`?"));
                }
                self.errors.push(error);
                // What the unknown field reads is still checked against the source schema.
                let child_what = format!("`{}`", field.key);
                self.node(
                    &field.node,
                    None,
                    bindings,
                    &child_what,
                    &field.key_location,
                );
                continue;
            }
            let child_what = format!("`{}`", field.key);
            if let Some(property) = child_schema
                && (property.get("x-base-data").is_some()
                    || target.resolve(property).get("x-base-data").is_some())
            {
                let child = target.resolve(property);
                let written_as_object = match &field.node {
                    // Already reported (e.g. a misspelt directive): no second error about its shape.
                    Node::Object(_) | Node::Invalid => true,
                    Node::When(when) => matches!(when.value, Node::Object(_)),
                    _ => false,
                };
                if !written_as_object {
                    let title = property
                        .get("title")
                        .or_else(|| child.get("title"))
                        .and_then(Json::as_str)
                        .unwrap_or("");
                    self.errors.push(
                        Error::config(format!("base-data field `{}` {title} must be written as `{{FNumber: …}}`", field.key).replace("  ", " "))
                            .with_location(field.key_location.clone())
                            .with_hint(format!("write `{}: {{ FNumber: \"{{{{ … }}}}\" }}`: Kingdee resolves base data by its code", field.key)),
                    );
                    if let Node::Template(id) = &field.node {
                        self.names(*id, bindings);
                    }
                    continue;
                }
            }
            self.node(
                &field.node,
                child_schema,
                bindings,
                &child_what,
                &field.key_location,
            );
        }
        if let Some(required) = schema
            .and_then(|s| s.get("required"))
            .and_then(Json::as_array)
        {
            for name in required.iter().filter_map(Json::as_str) {
                if fields.iter().any(|f| f.key == name) {
                    continue;
                }
                let title = properties
                    .and_then(|p| p.get(name))
                    .map(|p| {
                        target
                            .resolve(p)
                            .get("title")
                            .or_else(|| p.get("title"))
                            .and_then(Json::as_str)
                            .unwrap_or("")
                    })
                    .unwrap_or("");
                let name_and_title = if title.is_empty() {
                    format!("`{name}`")
                } else {
                    format!("`{name}` ({title})")
                };
                let place = if what == "the mapping" {
                    String::new()
                } else {
                    format!(" in {what}")
                };
                self.errors.push(
                    Error::config(format!(
                        "required field {name_and_title} of {} is not mapped{place}",
                        target.title
                    ))
                    .with_location(location.clone())
                    .with_hint(format!(
                        "add `{name}:` here; {} rejects records without it",
                        target.title
                    )),
                );
            }
        }
    }

    fn check_shape(
        &mut self,
        given: Option<Shape>,
        schema: Option<&Json>,
        what: &str,
        location: &Location,
        template: Option<TemplateId>,
    ) {
        let (Some(given), Some(schema)) = (given, schema) else {
            return;
        };
        let expected = schema_shapes(schema);
        if expected.is_empty() || expected.iter().any(|e| given.fits(*e)) {
            return;
        }
        let mut error = Error::config(format!(
            "{what} expects {}, but {} {}",
            expected
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(" or "),
            if template.is_some() {
                "this template gives"
            } else {
                "the value is"
            },
            given.name()
        ))
        .with_location(location.clone());
        if given == Shape::String && expected.contains(&Shape::Number) {
            error = error
                .with_hint("convert exactly with `| decimal` (e.g. `{{ line.num | decimal }}`)");
        }
        self.errors.push(error);
    }

    /// A literal written where the schema allows only some values (`enum`) must be one of them.
    fn check_choice(
        &mut self,
        given: &Json,
        schema: Option<&Json>,
        what: &str,
        location: &Location,
    ) {
        let Some(choices) = schema.and_then(|s| s.get("enum")).and_then(Json::as_array) else {
            return;
        };
        if choices.contains(given) {
            return;
        }
        let shown = match given {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        };
        let names: Vec<String> = choices
            .iter()
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
            .collect();
        let listed = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match did_you_mean(&shown, names.iter().map(String::as_str)) {
            Some(suggestion) => format!("did you mean `{suggestion}`? ({what} is one of {listed})"),
            None => format!("{what} is one of {listed}"),
        };
        self.errors.push(
            Error::config(format!("`{shown}` is not a valid value for {what}"))
                .with_location(location.clone())
                .with_hint(hint),
        );
    }

    /// The shape a template leaf gives, when it can be told.
    fn leaf_shape(&self, id: TemplateId, bindings: &[Binding]) -> Option<Shape> {
        if self.templates.kind(id) == Kind::Text {
            return Some(Shape::String);
        }
        let source = self.templates.source(id).trim();
        if let Some(captures) = LAST_FILTER.captures(source) {
            return match &captures[1] {
                "decimal" | "add" | "sub" | "mul" | "div" | "round" | "float" => {
                    Some(Shape::Number)
                }
                "int" | "timestamp" | "length" | "count" => Some(Shape::Integer),
                "string" | "date" | "datetime" | "lookup" | "sql_quote" | "upper" | "lower"
                | "trim" | "title" | "join" | "replace" => Some(Shape::String),
                "list" => Some(Shape::Array),
                _ => None,
            };
        }
        if PLAIN_PATH.is_match(source) {
            let root = source.split(['.', '[']).next().unwrap_or(source);
            if root == "vars" {
                let key = source.strip_prefix("vars.")?;
                return self.vars.get(key).map(Shape::of_json);
            }
            let path = self.source_path(source, bindings)?;
            if let Some(schema) = self.source
                && let Resolved::Found(found) = schema.field(&path)
                && let [shape] = schema_shapes(found)[..]
            {
                return Some(shape);
            }
        }
        None
    }

    /// The source path a name stands for (through `$each` bindings), or `None` if not a source field.
    fn source_path(&self, name: &str, bindings: &[Binding]) -> Option<Vec<String>> {
        let segments: Vec<String> = name
            .split(['.', '[', ']'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let (root, rest) = segments.split_first()?;
        if let Some(binding) = bindings.iter().rev().find(|b| &b.name == root) {
            let mut path = binding.path.clone()?;
            path.extend(rest.iter().cloned());
            return Some(path);
        }
        match root.as_str() {
            "record" => Some(rest.to_vec()),
            "vars" | "env" | "loop" => None,
            _ => Some(segments.clone()),
        }
    }

    /// Every name a template reads must exist: `vars.x` in the flow's vars, fields in the source schema.
    fn names(&mut self, id: TemplateId, bindings: &[Binding]) {
        let location = self.templates.origin(id).location.clone();
        for name in self.templates.undeclared(id) {
            let root = name.split('.').next().unwrap_or(&name).to_string();
            if root == "vars" {
                let Some(key) = name.strip_prefix("vars.") else {
                    continue;
                };
                let key = key.split('.').next().unwrap_or(key);
                if self.vars.get(key).is_none() {
                    let known: Vec<&str> = self
                        .vars
                        .as_object()
                        .map(|o| o.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let mut error =
                        Error::config(format!("`vars.{key}` is not defined in the flow's `vars`"))
                            .with_location(location.clone());
                    if let Some(suggestion) = did_you_mean(key, known.iter().copied()) {
                        error = error.with_hint(format!("did you mean `vars.{suggestion}`?"));
                    }
                    self.errors.push(error);
                }
                continue;
            }
            if root == "debug" {
                // `check_environment_access` in `config::compile` reports it.
                continue;
            }
            if root == "env" {
                self.errors.push(
                    Error::config(format!(
                        "`{name}`: environment variables are not readable in a mapping"
                    ))
                    .with_location(location.clone())
                    .with_hint(
                        "put constants in the flow's `vars`; secrets never belong in ERP documents",
                    ),
                );
                continue;
            }
            if crate::config::model::PLACEHOLDERS.contains(&root.as_str()) {
                self.errors.push(
                    Error::config(format!(
                        "placeholder `{root}` is only available in the source's `params`"
                    ))
                    .with_location(location.clone()),
                );
                continue;
            }
            if MAPPING_NAMES.contains(&root.as_str()) && root != "record" {
                continue;
            }
            let Some(schema) = self.source else { continue };
            let Some(path) = self.source_path(&name, bindings) else {
                continue;
            };
            if let Resolved::Unknown { segment, known } = schema.field(&path) {
                let shown = if bindings.iter().any(|b| b.name == root) {
                    format!("`{name}` (`{}`)", path.join("."))
                } else {
                    format!("`{name}`")
                };
                let mut error = Error::config(format!(
                    "source field {shown} does not exist in {}",
                    schema.title
                ))
                .with_location(location.clone());
                if let Some(suggestion) = did_you_mean(&segment, known.iter().copied()) {
                    error = error.with_hint(format!("did you mean `{suggestion}`?"));
                } else {
                    error = error.with_hint(format!(
                        "the fields are listed in {}",
                        schema.file.display()
                    ));
                }
                self.errors.push(error);
            }
        }
    }
}
