//! Evaluating a compiled tree for one record, into a [`Sink`]: a `serde_json` value
//! ([`evaluate`]) or compact JSON text ([`evaluate_text`], what a run's mapping makes).

use std::fmt::Write as _;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::ValueKind;
use serde_json::Value as Json;

use super::sink::{JsonSink, Sink, TextSink};
use super::{Coerce, Each, Field, Node};
use crate::error::Location;
use crate::template::filters::skip_line;
use crate::template::scope::{Misses, Scope};
use crate::template::{self, TemplateId, TemplateSet};

/// Why a tree could not be evaluated for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// The output field being computed, e.g. `FEntity[1].FMaterialId.FNumber`.
    pub target: String,
    /// Where the failing template is written.
    pub location: Location,
    pub message: String,
    /// For strictness failures: the source field the record lacks (`details_list[1].spec_no`).
    pub missing_field: Option<String>,
}

/// The result of evaluating a tree for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub value: Json,
    /// Lines dropped by `skip_line` lookups, as readable notes.
    pub skipped: Vec<String>,
}

enum Failure {
    Error(EvalError),
    Skip(String),
}

/// Evaluate `node` in `scope`.
pub fn evaluate<'a>(
    node: &'a Node,
    templates: &'a TemplateSet,
    scope: Scope,
) -> Result<Evaluated, EvalError> {
    let mut out = JsonSink::default();
    let mut run = Run::new(templates, &scope);
    let result = run.node(node, &Value::from_object(scope), &mut out);
    run.finish(result)?;
    Ok(Evaluated {
        value: out.into_json(),
        skipped: run.skipped,
    })
}

/// The result of evaluating a tree for one record as text.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedText {
    /// The compact JSON text: the bytes `serde_json` writes of the value [`evaluate`] makes.
    pub text: String,
    /// The value of the top-level field `watch` names, if it was written.
    pub watched: Option<Json>,
    /// Lines dropped by `skip_line` lookups, as readable notes.
    pub skipped: Vec<String>,
}

/// Evaluate `node` in `scope` straight into its compact JSON text, and read the value of the
/// top-level field `watch` on the way (a flow's key field).
pub fn evaluate_text<'a>(
    node: &'a Node,
    templates: &'a TemplateSet,
    scope: Scope,
    watch: &'a str,
) -> Result<EvaluatedText, EvalError> {
    let mut out = TextSink::default();
    let mut run = Run::new(templates, &scope);
    run.watch = Some(watch);
    let result = run.node(node, &Value::from_object(scope), &mut out);
    let written = run.finish(result)?;
    // The text is parsed again where something reads inside it, and serde_json reads at most
    // this deep: such a record fails here, with a reason, rather than there.
    const DEEPEST: usize = 128;
    if out.deepest() > DEEPEST {
        return Err(EvalError {
            target: String::new(),
            location: Location::file_only(""),
            message: format!(
                "the mapped record nests {} objects and lists; at most {DEEPEST} can be read back",
                out.deepest()
            ),
            missing_field: None,
        });
    }
    Ok(EvaluatedText {
        // Nothing written is `null`, as `evaluate` makes it.
        text: if written {
            out.into_text()
        } else {
            "null".to_string()
        },
        watched: run.watched,
        skipped: run.skipped,
    })
}

/// Evaluate one template in `scope` (for keys, parameters and other single templates).
pub fn evaluate_template(
    id: TemplateId,
    templates: &TemplateSet,
    scope: Scope,
) -> Result<Value, EvalError> {
    let mut run = Run::new(templates, &scope);
    run.template(id, &Value::from_object(scope))
        .map_err(|failure| match failure {
            Failure::Error(err) => err,
            Failure::Skip(message) => EvalError {
                target: String::new(),
                location: templates.origin(id).location.clone(),
                message,
                missing_field: None,
            },
        })
}

struct Run<'a> {
    templates: &'a TemplateSet,
    misses: Arc<Misses>,
    /// The output field being computed, spelt out only when an error names it.
    target: Vec<Segment<'a>>,
    skipped: Vec<String>,
    /// A top-level field whose value is wanted, and that value once written.
    watch: Option<&'a str>,
    watched: Option<Json>,
}

/// One step of the output field being computed: a key of the tree, or a position in a list.
#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Run<'a> {
    fn new(templates: &'a TemplateSet, scope: &Scope) -> Run<'a> {
        Run {
            templates,
            misses: Arc::clone(scope.misses()),
            target: Vec::new(),
            skipped: Vec::new(),
            watch: None,
            watched: None,
        }
    }

    /// Whether a whole tree's evaluation wrote a value, or its error.
    fn finish(&self, result: Result<bool, Failure>) -> Result<bool, EvalError> {
        match result {
            Ok(written) => Ok(written),
            Err(Failure::Error(err)) => Err(err),
            Err(Failure::Skip(message)) => Err(EvalError {
                target: String::new(),
                location: Location::file_only(""),
                message: format!("{message}, and `skip_line` only works inside `$each`"),
                missing_field: None,
            }),
        }
    }

    fn target(&self) -> String {
        let mut out = String::new();
        for segment in &self.target {
            match segment {
                Segment::Key(key) => {
                    if !out.is_empty() && !key.starts_with('[') {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        out
    }

    fn fail(&self, id: TemplateId, message: String, missing_field: Option<String>) -> Failure {
        Failure::Error(EvalError {
            target: self.target(),
            location: self.templates.origin(id).location.clone(),
            message,
            missing_field,
        })
    }

    /// The failure of template `id` that met an undefined value: the field the record lacks.
    fn missing(&self, id: TemplateId) -> Failure {
        let field = self.misses.last();
        let message = match &field {
            Some(field) => match field.strip_prefix("env.") {
                Some(var) => format!("environment variable `{var}` is not set"),
                None => format!("field `{field}` is missing from the record"),
            },
            None => template::UNDEFINED_RESULT.to_string(),
        };
        self.fail(id, message, field.filter(|f| !f.starts_with("env.")))
    }

    fn template(&mut self, id: TemplateId, ctx: &Value) -> Result<Value, Failure> {
        self.misses.clear();
        match self.templates.eval(id, ctx) {
            Ok(value) if value.is_undefined() => Err(self.missing(id)),
            Ok(value) => Ok(value),
            Err(err) => {
                if let Some(skip) = skip_line(&err) {
                    return Err(Failure::Skip(skip.message.clone()));
                }
                let message = err
                    .detail()
                    .map(str::to_string)
                    .unwrap_or_else(|| err.to_string());
                // Operators meeting an undefined operand (`x + 1`) fail as invalid operations
                // whose text says "undefined"; the miss noted is the field behind it.
                if err.kind() == minijinja::ErrorKind::UndefinedError
                    || (message.contains("undefined") && self.misses.last().is_some())
                {
                    return Err(self.missing(id));
                }
                Err(self.fail(id, message, None))
            }
        }
    }

    fn json(&mut self, id: TemplateId, ctx: &Value) -> Result<Json, Failure> {
        let value = self.template(id, ctx)?;
        template::to_json(&value).map_err(|message| {
            if message == template::UNDEFINED_RESULT {
                self.missing(id)
            } else {
                self.fail(id, message, self.misses.last())
            }
        })
    }

    /// Give a field's value the scalar type the target's schema names, where that loses nothing:
    /// a number becomes its text and an empty value (`null`) empty text in a text field; a
    /// numeric text becomes the exact number in a number field (and fails the record if it is
    /// not plain decimal notation or has more digits than a JSON number carries exactly).
    fn coerce(&self, field: &Field, value: Json) -> Result<Json, Failure> {
        let (whole, text) = match (field.coerce, value) {
            (Coerce::Text, Json::Number(number)) => return Ok(Json::String(number.to_string())),
            (Coerce::Text, Json::Null) => return Ok(Json::String(String::new())),
            (Coerce::Number, Json::String(text)) => (false, text),
            (Coerce::Integer, Json::String(text)) => (true, text),
            // A boolean is never a number: it fails below like any other non-number.
            (Coerce::Number, Json::Bool(b)) => (false, b.to_string()),
            (Coerce::Integer, Json::Bool(b)) => (true, b.to_string()),
            (Coerce::Integer, Json::Number(number)) if !number.is_i64() && !number.is_u64() => {
                (true, number.to_string())
            }
            (_, value) => return Ok(value),
        };
        let expects = if whole { "a whole number" } else { "a number" };
        let number = match template::decimal::parse_plain(text.trim()) {
            Err(problem) if problem.contains("cannot be held exactly") => {
                Err(format!("the target expects {expects} here: {problem}"))
            }
            Ok(exact) if !whole || exact.fract().is_zero() => template::decimal::to_number(exact)
                .ok_or_else(|| {
                    format!("the target expects {expects} here: `{text}` has more digits than a JSON number carries exactly")
                }),
            _ => Err(format!("the target expects {expects} here, not `{text}`")),
        };
        match number {
            Ok(number) => Ok(Json::Number(number)),
            Err(message) => {
                let location = match &field.node {
                    Node::Template(id) => self.templates.origin(*id).location.clone(),
                    _ => field.key_location.clone(),
                };
                Err(Failure::Error(EvalError {
                    target: self.target(),
                    location,
                    message,
                    missing_field: None,
                }))
            }
        }
    }

    /// Write `node` into `out`; `Ok(false)` means "omit this field" (a false `$if`), and
    /// nothing was written.
    fn node<S: Sink>(&mut self, node: &'a Node, ctx: &Value, out: &mut S) -> Result<bool, Failure> {
        match node {
            Node::Invalid => return Ok(false),
            Node::Literal(json) => out.value(json),
            Node::Template(id) => out.value(&self.json(*id, ctx)?),
            Node::Object(fields) => {
                out.open(true);
                for field in fields {
                    self.field(field, ctx, out)?;
                }
                out.close();
            }
            Node::Array(items) => {
                out.open(false);
                for (i, item) in items.iter().enumerate() {
                    self.target.push(Segment::Index(i));
                    let written = self.node(item, ctx, out);
                    self.target.pop();
                    written?;
                }
                out.close();
            }
            Node::When(when) => {
                if !self.template(when.condition, ctx)?.is_true() {
                    return Ok(false);
                }
                return self.node(&when.value, ctx, out);
            }
            Node::Each(each) => self.each(each, ctx, out)?,
        }
        Ok(true)
    }

    /// Write one field of an object: its key and value, or nothing when it is omitted.
    fn field<S: Sink>(
        &mut self,
        field: &'a Field,
        ctx: &Value,
        out: &mut S,
    ) -> Result<(), Failure> {
        let before = out.mark();
        out.key(&field.key);
        let value_at = out.mark();
        self.target.push(Segment::Key(&field.key));
        let written = match (&field.node, field.coerce) {
            (node, Coerce::Keep) => self.node(node, ctx, out),
            // A schema's scalar type applies to the value, before it is written.
            (Node::Template(id), _) => self
                .json(*id, ctx)
                .and_then(|value| self.coerce(field, value))
                .map(|value| out.value(&value))
                .map(|()| true),
            (node, _) => {
                let mut one = JsonSink::default();
                match self.node(node, ctx, &mut one) {
                    Ok(true) => self
                        .coerce(field, one.into_json())
                        .map(|value| out.value(&value))
                        .map(|()| true),
                    other => other,
                }
            }
        };
        self.target.pop();
        if !written? {
            out.rewind(before);
        } else if self.target.is_empty() && self.watch == Some(field.key.as_str()) {
            self.watched = out.value_since(value_at);
        }
        Ok(())
    }

    fn each<S: Sink>(&mut self, each: &'a Each, ctx: &Value, out: &mut S) -> Result<(), Failure> {
        let items = self.template(each.items, ctx)?;
        if !matches!(items.kind(), ValueKind::Seq | ValueKind::Iterable) {
            let message = format!(
                "`$each` needs a list, but the template gave `{items}` ({})",
                items.kind()
            );
            return Err(self.fail(each.items, message, None));
        }
        let scope = ctx
            .downcast_object_ref::<Scope>()
            .expect("trees are evaluated in a scope");
        let iter = items
            .try_iter()
            .map_err(|err| self.fail(each.items, err.to_string(), None))?;
        out.open(false);
        let mut kept = 0;
        let mut total = 0;
        for (index, item) in iter.enumerate() {
            total += 1;
            let item_ctx = Value::from_object(scope.with(&each.var, item));
            if let Some(condition) = each.condition
                && !self.template(condition, &item_ctx)?.is_true()
            {
                continue;
            }
            let before = out.mark();
            self.target.push(Segment::Index(kept));
            let written = self.node(&each.item, &item_ctx, out);
            self.target.pop();
            match written {
                Ok(true) => kept += 1,
                Ok(false) => {}
                Err(Failure::Skip(message)) => {
                    out.rewind(before);
                    self.skipped
                        .push(format!("{} item {}: {message}", self.target(), index + 1))
                }
                Err(err) => return Err(err),
            }
        }
        out.close();
        if kept < each.min_items {
            return Err(self.too_few(each, total, kept));
        }
        Ok(())
    }

    /// A repeated section that came out shorter than the target's `minItems` (a bill with no lines).
    fn too_few(&self, each: &Each, total: usize, kept: usize) -> Failure {
        let target = self.target();
        let source = self.templates.source(each.items);
        let needs = format!(
            "`{target}` needs at least {} item{}",
            each.min_items,
            if each.min_items == 1 { "" } else { "s" }
        );
        let message = match (total, kept) {
            (0, _) => format!("`{source}` is empty, but {needs}"),
            (_, 0) => format!("none of the {total} items of `{source}` was kept, but {needs}"),
            _ => format!("only {kept} of the {total} items of `{source}` were kept, but {needs}"),
        };
        Failure::Error(EvalError {
            target,
            location: each.location.clone(),
            message,
            missing_field: None,
        })
    }
}
