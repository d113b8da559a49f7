//! Templates: a YAML string leaf turned into a typed value, once per record.
//!
//! A leaf is a literal (no `{{`/`{%`), a single expression (`"{{ expr }}"`, whose value
//! keeps its type: numbers stay numbers, objects stay objects), or text (anything else,
//! rendered to a string). The brief's placeholder spelling `{{LAST_SYNC_TIME datetime}}` is
//! read as `{{ LAST_SYNC_TIME | datetime }}`. Every template of a flow is compiled once, at
//! load, into one [`TemplateSet`]; evaluation never parses. Errors in a template's syntax
//! come back relative to the leaf's text; `config` turns them into file positions.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, LazyLock};

use minijinja::{Environment, Expression, UndefinedBehavior, Value};
use regex::Regex;
use serde_json::Value as Json;

use crate::config::yaml::YamlPath;
use crate::error::Location;
use crate::value_map::ValueMaps;

mod chain;
pub mod decimal;
pub mod filters;
mod json;
mod path;
pub mod scope;
#[cfg(test)]
mod testing;

use chain::Chain;
pub use json::{UNDEFINED_RESULT, from_json, is_lent_marker, lent_marker, to_json};
pub use path::plain_path;
use path::read_path;

/// The fuel of one evaluation of one template: minijinja charges about one unit per
/// instruction and per 64 bytes of data it builds, so a million bounds a render to a few
/// hundred milliseconds and about 64 MB. Real templates use a few hundred; running out is an
/// error located at the template (a loop like `range(100000)` nested in another, a huge string).
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// Names a template may not read, because they would show more than the template names:
/// `env` whole (`env | tojson`, `env[name]`, a loop over `env`) and its listing methods.
pub const WHOLE_ENVIRONMENT: &[&str] = &["env", "env.items", "env.keys", "env.values"];

/// Whether an undeclared name (as [`TemplateSet::undeclared`] lists them) reads the whole
/// environment rather than one variable by name.
pub fn reads_whole_environment(name: &str) -> bool {
    WHOLE_ENVIRONMENT.iter().any(|whole| {
        name == *whole
            || (*whole != "env"
                && name
                    .strip_prefix(whole)
                    .is_some_and(|rest| rest.starts_with('.')))
    })
}

/// A compiled leaf: a constant, or a template in a [`TemplateSet`].
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    Literal(Json),
    Template(TemplateId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateId(usize);

/// The id the `index`-th template added to a [`Builder`] received.
pub(crate) fn id_at(index: usize) -> TemplateId {
    TemplateId(index)
}

/// Where a template was written, for errors at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub location: Location,
    pub path: YamlPath,
}

/// A template syntax error, positioned within the leaf's text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{{ expr }}`: the value keeps its type.
    Expression,
    /// Mixed text: the value is a string.
    Text,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    /// What minijinja compiles: the expression, or the whole text.
    source: String,
    origin: Origin,
    /// For an expression that is a plain path (`order_no`, `line.spec_no`): its names.
    plain: Option<Vec<String>>,
    /// For an expression that passes a plain path through the engine's filters
    /// (`line.num | decimal`): the path and the filters.
    chain: Option<Chain>,
}

/// How a leaf's text reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Literal,
    /// A single expression, and the character offset of its first character in the leaf.
    Expression {
        expr: String,
        offset: usize,
    },
    Text {
        source: String,
    },
}

static BRIEF_PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{\s*([A-Z][A-Z0-9_]*)\s+([a-z_][a-z0-9_]*)\s*\}\}").expect("valid regex")
});

/// Read the brief's `{{NAME filter}}` spelling as `{{ NAME | filter }}`.
pub fn rewrite_placeholders(text: &str) -> String {
    BRIEF_PLACEHOLDER
        .replace_all(text, "{{ $1 | $2 }}")
        .into_owned()
}

/// Decide what kind of leaf `text` is.
pub fn classify(text: &str) -> Classified {
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return Classified::Literal;
    }
    let rewritten = rewrite_placeholders(text);
    let trimmed = rewritten.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
    {
        let inner = inner.strip_prefix('-').unwrap_or(inner);
        let inner = inner.strip_suffix('-').unwrap_or(inner);
        if !inner.contains("{{")
            && !inner.contains("}}")
            && !inner.contains("{%")
            && !inner.trim().is_empty()
        {
            let expr = inner.trim();
            let leading = rewritten.find(expr).unwrap_or(0);
            let offset = rewritten[..leading].chars().count();
            return Classified::Expression {
                expr: expr.to_string(),
                offset,
            };
        }
    }
    Classified::Text { source: rewritten }
}

/// Collects templates and compiles them into a [`TemplateSet`].
pub struct Builder {
    env: Environment<'static>,
    entries: Vec<Entry>,
    value_maps: Arc<ValueMaps>,
}

impl Builder {
    /// `undefined` decides how missing names behave: `Strict` for mappings and parameters,
    /// `Chainable` for response envelopes (where a missing key is simply "not this case").
    pub fn new(undefined: UndefinedBehavior, value_maps: Arc<ValueMaps>) -> Builder {
        let mut env = Environment::new();
        env.set_undefined_behavior(undefined);
        env.set_formatter(filters::null_as_empty);
        env.set_fuel(Some(TEMPLATE_FUEL));
        // `debug()` prints everything a template can see, the environment included.
        env.remove_global("debug");
        filters::register(&mut env, Arc::clone(&value_maps));
        if undefined == UndefinedBehavior::Strict {
            filters::register_strict_builtins(&mut env);
        }
        Builder {
            env,
            entries: Vec::new(),
            value_maps,
        }
    }

    /// Compile a string leaf. Literals are returned as such; syntax errors are positioned in `text`.
    pub fn string_leaf(&mut self, text: &str, origin: Origin) -> Result<Leaf, SyntaxError> {
        match classify(text) {
            Classified::Literal => Ok(Leaf::Literal(Json::String(text.to_string()))),
            Classified::Expression { expr, offset } => {
                if let Err(err) = self.env.compile_expression(&expr) {
                    return Err(syntax_error(&err, &expr, offset));
                }
                Ok(Leaf::Template(self.push(Kind::Expression, expr, origin)))
            }
            Classified::Text { source } => {
                let name = format!("t{}", self.entries.len());
                if let Err(err) = self.env.add_template_owned(name, source.clone()) {
                    return Err(syntax_error(&err, &source, 0));
                }
                Ok(Leaf::Template(self.push(Kind::Text, source, origin)))
            }
        }
    }

    /// Compile a bare expression (envelope conditions, lookup row fields): no `{{ }}` needed,
    /// though they are accepted.
    pub fn expression(&mut self, text: &str, origin: Origin) -> Result<TemplateId, SyntaxError> {
        let (expr, offset) = match classify(text) {
            Classified::Expression { expr, offset } => (expr, offset),
            _ => (
                text.trim().to_string(),
                text.len() - text.trim_start().len(),
            ),
        };
        if let Err(err) = self.env.compile_expression(&expr) {
            return Err(syntax_error(&err, &expr, offset));
        }
        Ok(self.push(Kind::Expression, expr, origin))
    }

    fn push(&mut self, kind: Kind, source: String, origin: Origin) -> TemplateId {
        let (plain, chain) = match kind {
            Kind::Expression => (
                plain_path(&source).map(|names| names.into_iter().map(str::to_string).collect()),
                Chain::parse(&source),
            ),
            Kind::Text => (None, None),
        };
        self.entries.push(Entry {
            kind,
            source,
            origin,
            plain,
            chain,
        });
        TemplateId(self.entries.len() - 1)
    }

    /// How many templates have been added so far (ids are handed out in order).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names a template added earlier reads and does not define, with attribute paths
    /// (`line.spec_no`). For checks while compiling; [`TemplateSet::undeclared`] after.
    pub fn undeclared_of(&self, id: TemplateId) -> BTreeSet<String> {
        let entry = &self.entries[id.0];
        let names = match entry.kind {
            Kind::Expression => self
                .env
                .compile_expression(&entry.source)
                .ok()
                .map(|e| e.undeclared_variables(true)),
            Kind::Text => self
                .env
                .get_template(&format!("t{}", id.0))
                .ok()
                .map(|t| t.undeclared_variables(true)),
        };
        not_global(&self.env, names)
    }

    /// The compiled text of a template added earlier.
    pub fn source_of(&self, id: TemplateId) -> &str {
        &self.entries[id.0].source
    }

    pub fn build(self) -> TemplateSet {
        let entries = self.entries;
        let cell = Cell::new(self.env, |env| {
            Compiled(
                entries
                    .iter()
                    .map(|entry| match entry.kind {
                        Kind::Expression => Some(
                            env.compile_expression_owned(entry.source.clone())
                                .expect("compiled once already"),
                        ),
                        Kind::Text => None,
                    })
                    .collect(),
            )
        });
        TemplateSet {
            cell,
            entries,
            value_maps: self.value_maps,
        }
    }
}

struct Compiled<'env>(Vec<Option<Expression<'env, 'static>>>);

self_cell::self_cell!(
    struct Cell {
        owner: Environment<'static>,
        #[covariant]
        dependent: Compiled,
    }
);

/// Every compiled template of a flow (or of a connector's envelope), ready to evaluate.
pub struct TemplateSet {
    cell: Cell,
    entries: Vec<Entry>,
    value_maps: Arc<ValueMaps>,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("templates", &self.entries.len())
            .finish()
    }
}

impl TemplateSet {
    /// The names of a template that is a plain path (`order_no`, `vars.org`).
    pub fn plain(&self, id: TemplateId) -> Option<&[String]> {
        self.entries[id.0].plain.as_deref()
    }

    /// Evaluate a template against a context.
    pub fn eval(&self, id: TemplateId, ctx: &Value) -> Result<Value, minijinja::Error> {
        self.eval_unfuelled(id, ctx).map_err(|err| {
            if err.kind() != minijinja::ErrorKind::OutOfFuel {
                return err;
            }
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!(
                    "the template ran out of fuel: it takes more than {TEMPLATE_FUEL} steps (a loop or a value far too large)"
                ),
            )
        })
    }

    fn eval_unfuelled(&self, id: TemplateId, ctx: &Value) -> Result<Value, minijinja::Error> {
        let entry = &self.entries[id.0];
        if let Some(value) = entry.plain.as_deref().and_then(|path| read_path(path, ctx)) {
            return Ok(value);
        }
        let chained = entry.chain.as_ref();
        if let Some(value) = chained.and_then(|chain| chain.eval(ctx, &self.value_maps)) {
            return Ok(value);
        }
        self.eval_compiled(id, ctx)
    }

    /// Evaluate a template by minijinja (no plain-path shortcut).
    fn eval_compiled(&self, id: TemplateId, ctx: &Value) -> Result<Value, minijinja::Error> {
        let entry = &self.entries[id.0];
        match entry.kind {
            Kind::Expression => {
                let expression = self.cell.borrow_dependent().0[id.0]
                    .as_ref()
                    .expect("expressions are compiled");
                expression.eval(ctx.clone())
            }
            Kind::Text => {
                let template = self
                    .cell
                    .borrow_owner()
                    .get_template(&format!("t{}", id.0))?;
                template.render(ctx.clone()).map(Value::from)
            }
        }
    }

    pub fn origin(&self, id: TemplateId) -> &Origin {
        &self.entries[id.0].origin
    }

    pub fn kind(&self, id: TemplateId) -> Kind {
        self.entries[id.0].kind
    }

    /// The compiled text (the expression, or the whole text template).
    pub fn source(&self, id: TemplateId) -> &str {
        &self.entries[id.0].source
    }

    /// Names the template reads and does not define, with attribute paths (`line.spec_no`).
    pub fn undeclared(&self, id: TemplateId) -> BTreeSet<String> {
        not_global(self.cell.borrow_owner(), self.reads(id))
    }

    /// Like [`undeclared`](TemplateSet::undeclared), globals' names (`range`) included: a
    /// record field of that name is what the template reads.
    pub fn undeclared_or_global(&self, id: TemplateId) -> BTreeSet<String> {
        self.reads(id).unwrap_or_default().into_iter().collect()
    }

    /// The names template `id` reads (as `undeclared_or_global`), or `None` when they cannot be
    /// told.
    pub fn reads(&self, id: TemplateId) -> Option<HashSet<String>> {
        match self.entries[id.0].kind {
            Kind::Expression => self.cell.borrow_dependent().0[id.0]
                .as_ref()
                .map(|e| e.undeclared_variables(true)),
            Kind::Text => self
                .cell
                .borrow_owner()
                .get_template(&format!("t{}", id.0))
                .ok()
                .map(|t| t.undeclared_variables(true)),
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = TemplateId> {
        (0..self.entries.len()).map(TemplateId)
    }
}

/// A filter, test or value map a template names that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownName {
    Filter(String),
    Test(String),
    ValueMap(String),
}

static STRING_LITERAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"#).expect("valid regex"));
static FILTER_USE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex"));
static TEST_USE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bis\s+(?:not\s+)?([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex")
});
static LOOKUP_USE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"lookup\(\s*(?:"([^"]*)"|'([^']*)')"#).expect("valid regex"));

impl TemplateSet {
    /// Filters, tests and value maps the template names but that do not exist. minijinja
    /// only notices an unknown filter when it runs; this finds them before any record does.
    pub fn unknown_names(&self, id: TemplateId, value_maps: &BTreeSet<String>) -> Vec<UnknownName> {
        let source = self.source(id);
        let env = self.cell.borrow_owner();
        let mut unknown = Vec::new();
        for captures in LOOKUP_USE.captures_iter(source) {
            let name = captures
                .get(1)
                .or(captures.get(2))
                .map_or("", |m| m.as_str());
            if !value_maps.contains(name) {
                unknown.push(UnknownName::ValueMap(name.to_string()));
            }
        }
        // Names inside string literals are text, not filters.
        let code = STRING_LITERAL.replace_all(source, "''");
        for captures in FILTER_USE.captures_iter(&code) {
            let name = &captures[1];
            if !probe(
                env,
                &format!("none | {name}"),
                minijinja::ErrorKind::UnknownFilter,
            ) {
                unknown.push(UnknownName::Filter(name.to_string()));
            }
        }
        for captures in TEST_USE.captures_iter(&code) {
            let name = &captures[1];
            if !probe(
                env,
                &format!("none is {name}"),
                minijinja::ErrorKind::UnknownTest,
            ) {
                unknown.push(UnknownName::Test(name.to_string()));
            }
        }
        unknown.dedup();
        unknown
    }
}

/// Whether evaluating `expr` avoids an error of kind `missing` (i.e. the name exists).
fn probe(env: &Environment<'static>, expr: &str, missing: minijinja::ErrorKind) -> bool {
    match env.compile_expression(expr) {
        Ok(compiled) => !matches!(compiled.eval(()), Err(err) if err.kind() == missing),
        Err(_) => true,
    }
}

/// The undeclared names of a template (`None`: it did not compile) that are not globals.
fn not_global(env: &Environment<'static>, names: Option<HashSet<String>>) -> BTreeSet<String> {
    names
        .unwrap_or_default()
        .into_iter()
        .filter(|name| !is_global(env, name))
        .collect()
}

fn is_global(env: &Environment<'static>, name: &str) -> bool {
    let root = name.split('.').next().unwrap_or(name);
    env.globals().any(|(global, _)| global == root)
}

fn syntax_error(err: &minijinja::Error, source: &str, offset: usize) -> SyntaxError {
    let message = err.detail().unwrap_or("invalid template").to_string();
    let line = err.line().unwrap_or(1).max(1);
    let (column, len) = match err.range() {
        Some(range) if range.start <= source.len() => {
            let line_start = source[..range.start].rfind('\n').map_or(0, |i| i + 1);
            let column = source[line_start..range.start].chars().count() + 1;
            let end = range.end.min(source.len()).max(range.start);
            let len = source[range.start..end]
                .chars()
                .take_while(|c| *c != '\n')
                .count()
                .max(1);
            (column, len)
        }
        _ => (
            1,
            source
                .lines()
                .nth(line - 1)
                .map_or(1, |l| l.chars().count().max(1)),
        ),
    };
    let column = if line == 1 { column + offset } else { column };
    SyntaxError {
        message,
        line,
        column,
        len,
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;
    use crate::template::scope::Scope;
    use crate::template::testing::origin;

    fn evaluate(text: &str, record: Json) -> Result<Json, String> {
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new()));
        let leaf = builder.string_leaf(text, origin()).map_err(|e| e.message)?;
        let set = builder.build();
        match leaf {
            Leaf::Literal(json) => Ok(json),
            Leaf::Template(id) => {
                let scope = Scope::for_record(Arc::new(record), Vec::new());
                to_json(
                    &set.eval(id, &Value::from_object(scope))
                        .map_err(|e| e.to_string())?,
                )
            }
        }
    }

    #[test]
    fn leaves_classify_as_literal_expression_or_text() {
        assert_eq!(classify("XSTHD01_SYS"), Classified::Literal);
        assert_eq!(
            classify("{{ order_no }}"),
            Classified::Expression {
                expr: "order_no".into(),
                offset: 3
            }
        );
        assert_eq!(
            classify("  {{- a | b -}} "),
            Classified::Expression {
                expr: "a | b".into(),
                offset: 6
            }
        );
        assert_eq!(
            classify("{{ a }} and {{ b }}"),
            Classified::Text {
                source: "{{ a }} and {{ b }}".into()
            }
        );
        assert_eq!(
            classify("RK-{{ a }}"),
            Classified::Text {
                source: "RK-{{ a }}".into()
            }
        );
    }

    #[test]
    fn the_briefs_placeholder_spelling_is_accepted() {
        assert_eq!(
            rewrite_placeholders("{{LAST_SYNC_TIME datetime}}"),
            "{{ LAST_SYNC_TIME | datetime }}"
        );
        assert_eq!(
            rewrite_placeholders("{{PAGINATION_PAGE_SIZE}}"),
            "{{PAGINATION_PAGE_SIZE}}"
        );
        assert_eq!(
            classify("{{CURRENT_TIME datetime}}"),
            Classified::Expression {
                expr: "CURRENT_TIME | datetime".into(),
                offset: 3
            }
        );
    }

    #[test]
    fn single_expressions_keep_their_type_and_text_is_a_string() {
        let record = json!({"num": "2.0000", "n": 3, "lines": [{"a": 1}], "flag": true});
        assert_eq!(
            evaluate("{{ num | decimal }}", record.clone()),
            Ok(json!(2))
        );
        assert_eq!(evaluate("{{ n }}", record.clone()), Ok(json!(3)));
        assert_eq!(evaluate("{{ flag }}", record.clone()), Ok(json!(true)));
        assert_eq!(
            evaluate("{{ lines }}", record.clone()),
            Ok(json!([{"a": 1}]))
        );
        assert_eq!(
            evaluate("{{ {'FNumber': n} }}", record.clone()),
            Ok(json!({"FNumber": 3}))
        );
        assert_eq!(evaluate("n={{ n }}", record.clone()), Ok(json!("n=3")));
        assert_eq!(evaluate("literal", record), Ok(json!("literal")));
    }

    #[test]
    fn an_undefined_result_is_an_error_not_an_empty_string() {
        let result = evaluate("{{ nope }}", json!({}));
        assert_eq!(
            result,
            Err("the template produced no value (undefined)".to_string())
        );
        assert!(
            evaluate("x{{ nope }}", json!({}))
                .unwrap_err()
                .contains("undefined")
        );
    }

    #[test]
    fn syntax_errors_are_positioned_in_the_leaf() {
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new()));
        let err = builder
            .string_leaf("{{ order_no | }}", origin())
            .unwrap_err();
        assert_eq!(
            (err.line, err.column),
            (1, 13),
            "points at the dangling `|`"
        );
        let err = builder.string_leaf("RK{{ a b }}", origin()).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.column >= 8, "{err:?}");
    }

    #[test]
    fn unknown_filters_tests_and_value_maps_are_found_before_running() {
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new()));
        let text = "{{ a | datee | upper ~ 'x | nofilter' if b is positve else c | lookup('shops') | default('') }}";
        let Leaf::Template(id) = builder.string_leaf(text, origin()).unwrap() else {
            panic!("a template")
        };
        let set = builder.build();
        assert_eq!(
            set.unknown_names(id, &BTreeSet::new()),
            vec![
                UnknownName::ValueMap("shops".into()),
                UnknownName::Filter("datee".into()),
                UnknownName::Test("positve".into())
            ]
        );
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel_instead_of_hanging() {
        let result = evaluate(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            json!({}),
        );
        assert!(result.unwrap_err().contains("ran out of fuel"));
        let result = evaluate("{{ 'x' * 100000000 }}", json!({}));
        assert!(result.unwrap_err().contains("ran out of fuel"));
    }

    #[test]
    fn debug_is_not_a_function_templates_can_call() {
        let result = evaluate("{{ debug() }}", json!({"order_no": "RK1"}));
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn whole_environment_reads_are_told_from_reads_by_name() {
        for name in ["env", "env.items", "env.keys", "env.values", "env.items.x"] {
            assert!(reads_whole_environment(name), "{name}");
        }
        for name in ["env.WDT_SID", "env.itemsx", "environment", "vars.env"] {
            assert!(!reads_whole_environment(name), "{name}");
        }
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new()));
        let mut ids = Vec::new();
        for text in [
            "{{ env | tojson }}",
            "{{ env[name] }}",
            "{% for k in env %}{{ k }}{% endfor %}",
            "{{ env.A ~ env }}",
            "{% set e = env %}{{ e.A }}",
            "{{ env.items() }}",
        ] {
            let Leaf::Template(id) = builder.string_leaf(text, origin()).unwrap() else {
                panic!("a template")
            };
            ids.push((text, id));
        }
        let set = builder.build();
        for (text, id) in ids {
            assert!(
                set.undeclared(id)
                    .iter()
                    .any(|n| reads_whole_environment(n)),
                "{text}: {:?}",
                set.undeclared(id)
            );
        }
    }

    #[test]
    fn undeclared_names_include_attribute_paths() {
        let mut builder = Builder::new(UndefinedBehavior::Strict, Arc::new(ValueMaps::new()));
        let Leaf::Template(id) = builder
            .string_leaf(
                "{{ line.spec_no ~ vars.org ~ order_no ~ range(2) | join }}",
                origin(),
            )
            .unwrap()
        else {
            panic!("a template")
        };
        let set = builder.build();
        let names: Vec<String> = set.undeclared(id).into_iter().collect();
        assert_eq!(names, vec!["line.spec_no", "order_no", "vars.org"]);
    }
}
