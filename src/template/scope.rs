//! What a template sees: the source record's fields at the top level, named values
//! (`vars`, `params`, placeholders, loop variables), and nothing else.
//!
//! Records stay `serde_json` values; [`RecordNode`] exposes them to minijinja lazily, without
//! copying, and notes the path of the last field a template asked for but the record lacks.
//! Strict undefined handling then fails the template, and the error names that field
//! (`details_list[1].spec_no`) instead of printing an empty string into an ERP document.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Value as Json;

/// The last field a template looked up and did not find.
#[derive(Debug, Default)]
pub struct Misses {
    last: Mutex<Option<String>>,
    /// Whether `last` may hold a miss: clearing, before every template, then takes no lock in
    /// the usual case of nothing missed.
    noted: AtomicBool,
}

impl Misses {
    fn note(&self, path: String) {
        let mut last = self.last.lock().expect("misses lock");
        *last = Some(path);
        self.noted.store(true, Ordering::Release);
    }

    /// Forget earlier misses (before evaluating the next template).
    pub fn clear(&self) {
        if self.noted.load(Ordering::Acquire) {
            let mut last = self.last.lock().expect("misses lock");
            *last = None;
            self.noted.store(false, Ordering::Relaxed);
        }
    }

    /// The field most recently found missing.
    pub fn last(&self) -> Option<String> {
        self.last.lock().expect("misses lock").clone()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(Arc<str>),
    Index(usize),
}

/// Texts a record holds for "no value" (a source connector's `null_values`, such as WDT's
/// no-date `9999-12-01 00:00:00`): templates read them as `null`. Seen through the record
/// instead of replaced in a copy of it, so a record is never copied to be mapped.
pub type Nulls = Arc<[String]>;

/// The JSON a [`RecordNode`] stands in: a record, or records a write lends as their compact
/// texts, parsed only if a template reads inside them.
#[derive(Debug, Clone)]
pub enum Root {
    Json(Arc<Json>),
    Texts(Arc<Texts>),
}

impl Root {
    fn json(&self) -> &Json {
        match self {
            Root::Json(json) => json,
            Root::Texts(texts) => texts.json(),
        }
    }
}

impl From<Arc<Json>> for Root {
    fn from(json: Arc<Json>) -> Root {
        Root::Json(json)
    }
}

/// Records as their compact JSON texts: the list of them, or the one record of a one-record
/// write.
#[derive(Debug)]
pub struct Texts {
    texts: Vec<Arc<str>>,
    one: bool,
    parsed: OnceLock<Json>,
}

impl Texts {
    /// `texts` are compact JSON (a mapped record's text); `one`: the one record itself, not a
    /// list.
    pub fn new(texts: Vec<Arc<str>>, one: bool) -> Texts {
        debug_assert!(!one || texts.len() == 1, "one record");
        Texts {
            texts,
            one,
            parsed: OnceLock::new(),
        }
    }

    pub fn texts(&self) -> &[Arc<str>] {
        &self.texts
    }

    pub fn is_one(&self) -> bool {
        self.one
    }

    fn json(&self) -> &Json {
        self.parsed.get_or_init(|| {
            let parse = |text: &Arc<str>| -> Json {
                serde_json::from_str(text).expect("a mapped record's text is JSON")
            };
            match (self.one, self.texts.first()) {
                (true, Some(text)) => parse(text),
                _ => Json::Array(self.texts.iter().map(parse).collect()),
            }
        })
    }
}

/// A node of a JSON record, seen from a template.
#[derive(Debug)]
pub struct RecordNode {
    root: Root,
    steps: Vec<Step>,
    misses: Arc<Misses>,
    nulls: Nulls,
    /// The records a write lends its body: written into JSON whole, they are the
    /// [`lent_marker`](super::json::lent_marker), not a copy.
    lent: bool,
}

impl RecordNode {
    pub fn new(root: impl Into<Root>, misses: Arc<Misses>) -> RecordNode {
        RecordNode::with_nulls(root, misses, Arc::from([]))
    }

    /// The records (or the one record) a write lends its body's templates: read as any record,
    /// but written into the body's JSON whole as the [`lent_marker`](super::json::lent_marker),
    /// for the request to put the records themselves in its place.
    pub fn lent(root: impl Into<Root>, misses: Arc<Misses>) -> RecordNode {
        RecordNode {
            lent: true,
            ..RecordNode::new(root, misses)
        }
    }

    /// A record whose `nulls` texts read as `null`.
    pub fn with_nulls(root: impl Into<Root>, misses: Arc<Misses>, nulls: Nulls) -> RecordNode {
        RecordNode {
            root: root.into(),
            steps: Vec::new(),
            misses,
            nulls,
            lent: false,
        }
    }

    /// A node for the same record at its root.
    fn at_root(&self, misses: &Arc<Misses>) -> RecordNode {
        RecordNode {
            root: self.root.clone(),
            steps: Vec::new(),
            misses: Arc::clone(misses),
            nulls: Arc::clone(&self.nulls),
            lent: false,
        }
    }

    /// A copy of the JSON this node stands for, with its null texts as `null`.
    pub fn to_json(&self) -> Json {
        if self.lent && self.steps.is_empty() {
            return Json::String(super::json::lent_marker().to_string());
        }
        let mut copy = self.json().clone();
        if !self.nulls.is_empty() {
            replace_nulls(&mut copy, &self.nulls);
        }
        copy
    }

    /// The JSON this node stands for.
    pub fn json(&self) -> &Json {
        let mut node = self.root.json();
        for step in &self.steps {
            node = match step {
                Step::Key(key) => &node[&**key],
                Step::Index(index) => &node[*index],
            };
        }
        node
    }

    fn path_with(&self, last: &str) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::Key(key) if out.is_empty() => out.push_str(key),
                Step::Key(key) => {
                    let _ = write!(out, ".{key}");
                }
                Step::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        if !last.is_empty() {
            if !out.is_empty() && !last.starts_with('[') {
                out.push('.');
            }
            out.push_str(last);
        }
        out
    }

    /// The value of `json`, a child of this node reached by `step`. Scalars are returned as
    /// they are; only objects and arrays need a node of their own (and its path).
    fn child(&self, json: &Json, step: impl FnOnce() -> Step) -> Value {
        if let Json::String(text) = json
            && self.nulls.iter().any(|null| null == text)
        {
            return Value::from(());
        }
        if let Some(value) = scalar_value(json) {
            return value;
        }
        let mut steps = self.steps.clone();
        steps.push(step());
        Value::from_object(RecordNode {
            root: self.root.clone(),
            steps,
            misses: Arc::clone(&self.misses),
            nulls: Arc::clone(&self.nulls),
            lent: false,
        })
    }

    /// Look up a field by name, noting a miss.
    pub fn field(&self, key: &str) -> Option<Value> {
        match self.json() {
            Json::Object(map) if let Some(child) = map.get(key) => {
                Some(self.child(child, || Step::Key(Arc::from(key))))
            }
            _ => {
                self.misses.note(self.path_with(key));
                None
            }
        }
    }
}

fn replace_nulls(json: &mut Json, nulls: &[String]) {
    match json {
        Json::String(text) if nulls.iter().any(|null| null == text) => *json = Json::Null,
        Json::Array(items) => items.iter_mut().for_each(|item| replace_nulls(item, nulls)),
        Json::Object(map) => map.values_mut().for_each(|item| replace_nulls(item, nulls)),
        _ => {}
    }
}

/// Scalars become plain template values; objects and arrays (`None` here) stay lazy record nodes.
fn scalar_value(json: &Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::from(n.to_string()),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(_) | Json::Object(_) => return None,
    })
}

impl Object for RecordNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json() {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.json() {
            Json::Array(items) => {
                let index = key.as_i64()?;
                let index = if index < 0 {
                    items.len() as i64 + index
                } else {
                    index
                };
                if index >= 0 && (index as usize) < items.len() {
                    let index = index as usize;
                    Some(self.child(&items[index], || Step::Index(index)))
                } else {
                    self.misses.note(self.path_with(&format!("[{index}]")));
                    None
                }
            }
            _ => self.field(key.as_str()?),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.json() {
            Json::Array(items) => Enumerator::Seq(items.len()),
            Json::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Value::from(k.as_str())).collect())
            }
            _ => Enumerator::Empty,
        }
    }
}

/// The top-level context of a template: named values first, then the record's fields.
#[derive(Debug)]
pub struct Scope {
    names: Vec<(Arc<str>, Value)>,
    record: Option<RecordNode>,
    misses: Arc<Misses>,
}

impl Scope {
    /// A scope over `record` (its fields are top-level names) plus `names`.
    pub fn for_record(record: Arc<Json>, names: Vec<(Arc<str>, Value)>) -> Scope {
        Scope::for_record_with_nulls(record, names, Arc::from([]))
    }

    /// A scope over `record` whose `nulls` texts read as `null`, plus `names`.
    pub fn for_record_with_nulls(
        record: Arc<Json>,
        names: Vec<(Arc<str>, Value)>,
        nulls: Nulls,
    ) -> Scope {
        let misses = Arc::new(Misses::default());
        let record = Some(RecordNode::with_nulls(record, Arc::clone(&misses), nulls));
        Scope {
            names,
            record,
            misses,
        }
    }

    /// A scope of named values only (connector params, bodies, envelopes).
    pub fn named(names: Vec<(Arc<str>, Value)>) -> Scope {
        Scope {
            names,
            record: None,
            misses: Arc::new(Misses::default()),
        }
    }

    /// The same scope with one more name bound (a loop variable).
    pub fn with(&self, name: &str, value: Value) -> Scope {
        let mut names = self.names.clone();
        names.push((Arc::from(name), value));
        let record = self.record.as_ref().map(|r| r.at_root(&self.misses));
        Scope {
            names,
            record,
            misses: Arc::clone(&self.misses),
        }
    }

    pub fn misses(&self) -> &Arc<Misses> {
        &self.misses
    }

    /// The whole record as a template value (what `record` refers to).
    pub fn record_value(&self) -> Option<Value> {
        self.record
            .as_ref()
            .map(|r| Value::from_object(r.at_root(&self.misses)))
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if let Some((_, value)) = self.names.iter().rev().find(|(n, _)| &**n == name) {
            return Some(value.clone());
        }
        if name == "record" {
            return self.record_value();
        }
        match &self.record {
            Some(record) => record.field(name),
            None => {
                self.misses.note(name.to_string());
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names.iter().map(|(n, _)| Value::from(&**n)).collect())
    }
}

/// Environment variables as templates see them (`env.WDT_SID`); an unset one is noted as a miss.
/// They are read one by one, by name: the object cannot be listed or printed whole (`check`
/// refuses templates that try, and this is the second line of defence).
#[derive(Debug)]
pub struct EnvVars {
    vars: Arc<std::collections::BTreeMap<String, String>>,
    misses: Arc<Misses>,
}

impl Object for EnvVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        match self.vars.get(name) {
            Some(value) => Some(Value::from(value.as_str())),
            None => {
                self.misses.note(format!("env.{name}"));
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        f.write_str("<environment>")
    }
}

impl Scope {
    /// Add `env`, so templates can read the given environment variables (shared, not copied,
    /// when given as an `Arc`: scopes made one after another for a request share one copy).
    pub fn with_env(
        mut self,
        vars: impl Into<Arc<std::collections::BTreeMap<String, String>>>,
    ) -> Scope {
        let env = EnvVars {
            vars: vars.into(),
            misses: Arc::clone(&self.misses),
        };
        self.names.push((Arc::from("env"), Value::from_object(env)));
        self
    }
}

/// The JSON behind a template value, if it is a record node.
pub fn record_json(value: &Value) -> Option<Json> {
    value
        .downcast_object_ref::<RecordNode>()
        .map(RecordNode::to_json)
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, UndefinedBehavior};
    use serde_json::json;

    use super::*;

    fn eval(expr: &str, scope: Scope) -> (Result<Value, String>, Option<String>) {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let misses = Arc::clone(scope.misses());
        let result = env
            .compile_expression(expr)
            .unwrap()
            .eval(Value::from_object(scope))
            .map_err(|e| e.to_string());
        (result, misses.last())
    }

    fn record() -> Arc<Json> {
        Arc::new(
            json!({"order_no": "RK1", "details_list": [{"spec_no": "A", "num": "2.0000"}, {"num": "1"}]}),
        )
    }

    #[test]
    fn fields_and_nested_values_are_visible() {
        let scope = Scope::for_record(
            record(),
            vec![(Arc::from("vars"), Value::from_pairs([("org", "100")]))],
        );
        let (value, _) = eval(
            "order_no ~ '/' ~ details_list[0].spec_no ~ '/' ~ vars.org ~ '/' ~ (details_list | length)",
            scope,
        );
        assert_eq!(value.unwrap().to_string(), "RK1/A/100/2");
    }

    #[test]
    fn a_missing_nested_field_is_noted_with_its_path() {
        let scope = Scope::for_record(record(), Vec::new());
        let (value, missed) = eval("details_list[1].spec_no ~ 'x'", scope);
        assert!(value.is_err());
        assert_eq!(missed.as_deref(), Some("details_list[1].spec_no"));
    }

    #[test]
    fn a_missing_top_level_field_is_noted() {
        let scope = Scope::for_record(record(), Vec::new());
        let (_, missed) = eval("shop_no ~ ''", scope);
        assert_eq!(missed.as_deref(), Some("shop_no"));
    }

    #[test]
    fn loops_see_items_and_bound_names_shadow_fields() {
        let scope = Scope::for_record(record(), Vec::new()).with("order_no", Value::from("shadow"));
        let (value, _) = eval(
            "order_no ~ (details_list | map(attribute='num') | join(','))",
            scope,
        );
        assert_eq!(value.unwrap().to_string(), "shadow2.0000,1");
    }

    #[test]
    fn unset_environment_variables_are_noted_by_name() {
        let vars: std::collections::BTreeMap<String, String> =
            [("WDT_SID".to_string(), "shop".to_string())]
                .into_iter()
                .collect();
        let scope = Scope::named(Vec::new()).with_env(vars);
        let misses = Arc::clone(scope.misses());
        let (value, _) = eval("env.WDT_SID ~ '/' ~ (env.NOPE | default('x'))", scope);
        assert_eq!(value.unwrap().to_string(), "shop/x");
        assert_eq!(misses.last().as_deref(), Some("env.NOPE"));
    }

    #[test]
    fn the_environment_cannot_be_listed_or_printed_whole() {
        let vars = [("SECRET".to_string(), "hunter2".to_string())]
            .into_iter()
            .collect();
        for expr in [
            "env | tojson",
            "env | string",
            "env | list | join(',')",
            "env.items() | list | string",
            "env | pprint",
        ] {
            let scope = Scope::named(Vec::new()).with_env(std::collections::BTreeMap::clone(&vars));
            let (value, _) = eval(expr, scope);
            if let Ok(value) = value {
                assert!(!value.to_string().contains("hunter2"), "{expr}: {value}");
            }
        }
    }

    #[test]
    fn defaults_make_absent_fields_optional() {
        let scope = Scope::for_record(record(), Vec::new());
        let (value, _) = eval("remark | default('none')", scope);
        assert_eq!(value.unwrap().to_string(), "none");
    }
}
