//! Checking the shape of a YAML document against the JSON Schema of its raw type.
//!
//! serde stops at the first problem; a person editing a flow wants all of them. This walks
//! the YAML value against the schema that schemars generates from `config::raw` (the same
//! one shipped in `schemas/` for editors) and collects every unknown key (with "did you
//! mean"), missing key, wrong type and invalid choice, each with its YAML path. It knows the
//! subset of JSON Schema that schemars emits: `$ref`, `type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `const`, `oneOf`/`anyOf`. No IO.

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::config::yaml::{Segment, YamlPath};
use crate::error::did_you_mean;

/// One shape problem, located by path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: YamlPath,
    pub message: String,
    /// Point at the key of `path` rather than its value.
    pub on_key: bool,
    pub label: Option<String>,
    pub hint: Option<String>,
    /// An unknown key: once reported, the document can be checked further without it.
    pub unknown_key: bool,
    /// How to mend the document so that the rest of it can still be checked.
    pub repair: Repair,
}

/// How a document is mended after a problem is reported, so that later checks (templates,
/// references, the mapping against the API schemas) still run on the rest of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Repair {
    /// Drop the value at the path: an optional setting then takes its default; a required
    /// one makes the document unreadable as its type.
    Remove,
    /// Put this value at the path instead (the choice that "did you mean" suggests).
    Replace(Yaml),
    /// Add this key with a placeholder value to the mapping at the path (a missing required
    /// text): later problems that stem from the placeholder are located where this one is.
    Insert { key: String, value: Yaml },
    /// Leave the document as it is.
    Keep,
}

impl Problem {
    fn new(path: &YamlPath, message: String) -> Problem {
        Problem {
            path: path.clone(),
            message,
            on_key: false,
            label: None,
            hint: None,
            unknown_key: false,
            repair: Repair::Remove,
        }
    }
}

/// Remove the key at `path` from `value` (to go on checking after reporting it as unknown).
pub fn remove(value: &mut Yaml, path: &YamlPath) {
    let Some((last, parents)) = path.segments().split_last() else {
        return;
    };
    let mut node = value;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Key(key), Yaml::Mapping(map)) => map.get_mut(key.as_str()),
            (Segment::Index(i), Yaml::Sequence(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    if let (Segment::Key(key), Yaml::Mapping(map)) = (last, node) {
        map.remove(key.as_str());
    }
}

/// The node at `path` in `value`, if that path exists.
fn node_at<'a>(value: &'a mut Yaml, path: &YamlPath) -> Option<&'a mut Yaml> {
    let mut node = value;
    for segment in path.segments() {
        node = match (segment, node) {
            (Segment::Key(key), Yaml::Mapping(map)) => map.get_mut(key.as_str())?,
            (Segment::Index(i), Yaml::Sequence(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Add `key: item` to the mapping at `path` in `value`, if there is one.
pub fn insert(value: &mut Yaml, path: &YamlPath, key: &str, item: Yaml) {
    if let Some(Yaml::Mapping(map)) = node_at(value, path) {
        map.insert(Yaml::String(key.to_string()), item);
    }
}

/// Put `replacement` at `path` in `value`, if that path exists.
pub fn replace(value: &mut Yaml, path: &YamlPath, replacement: Yaml) {
    if let Some(node) = node_at(value, path) {
        *node = replacement;
    }
}

/// Every shape problem of `value` against `schema` (a root schema with `$defs`).
pub fn check(value: &Yaml, schema: &Json) -> Vec<Problem> {
    let mut walker = Walker {
        root: schema,
        problems: Vec::new(),
    };
    walker.walk(value, schema, &YamlPath::root());
    walker.problems
}

struct Walker<'a> {
    root: &'a Json,
    problems: Vec<Problem>,
}

impl<'a> Walker<'a> {
    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut schema = schema;
        while let Some(reference) = schema.get("$ref").and_then(Json::as_str) {
            let Some(name) = reference.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.get("$defs").and_then(|defs| defs.get(name)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn walk(&mut self, value: &Yaml, schema: &'a Json, path: &YamlPath) {
        let schema = self.resolve(schema);
        if is_any(schema) {
            // Anything goes here (a mapping tree, params), but an unquoted template is never meant.
            self.scan_for_unquoted_templates(value, path);
            return;
        }
        if looks_like_unquoted_template(value) {
            let mut problem = Problem::new(
                path,
                format!(
                    "`{}` looks like a template that is not quoted",
                    describe_path(path)
                ),
            );
            problem.hint = Some(
                "a YAML value that starts with `{{` must be quoted: write `\"{{ … }}\"`"
                    .to_string(),
            );
            // Checked on as the quoted template it was meant to be, when that can be told.
            if let Some(text) = unquoted_template_text(value) {
                problem.repair = Repair::Replace(Yaml::String(text));
            }
            self.problems.push(problem);
            return;
        }
        if let Some(branches) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)
        {
            self.walk_branches(value, branches, path);
            return;
        }
        if let Some(choices) = schema.get("enum").and_then(Json::as_array) {
            self.check_choice(
                value,
                choices.iter().filter_map(Json::as_str).collect(),
                path,
            );
            return;
        }
        if let Some(constant) = schema.get("const").and_then(Json::as_str) {
            self.check_choice(value, vec![constant], path);
            return;
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Json::String(t) => vec![t.as_str()],
                Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
                _ => Vec::new(),
            };
            if !types.iter().any(|t| type_matches(t, value)) {
                let expected = types
                    .iter()
                    .filter(|t| **t != "null")
                    .map(|t| article(t))
                    .collect::<Vec<_>>()
                    .join(" or ");
                let mut problem = Problem::new(
                    path,
                    format!(
                        "`{}` must be {expected}, not {}",
                        describe_path(path),
                        describe_value(value)
                    ),
                );
                // Without a whole section (`vars`, `window`) every use of it would be another
                // error: the file is then not checked further.
                if types.iter().any(|t| *t == "object" || *t == "array") {
                    problem.repair = Repair::Keep;
                }
                self.problems.push(problem);
                return;
            }
            if let (Some(minimum), Some(number)) =
                (schema.get("minimum").and_then(Json::as_f64), value.as_f64())
                && number < minimum
            {
                // Unsigned settings have `minimum: 0`, but many of them refuse 0 as well (and
                // say their range when compiled); "at least 0" would send people to a second error.
                let message = if minimum == 0.0 {
                    format!(
                        "`{}` cannot be negative, not `{}`",
                        describe_path(path),
                        describe_number(value)
                    )
                } else {
                    format!(
                        "`{}` must be at least {minimum}, not `{}`",
                        describe_path(path),
                        describe_number(value)
                    )
                };
                self.problems.push(Problem::new(path, message));
            }
        }
        match value {
            Yaml::Mapping(mapping) => self.walk_mapping(mapping, schema, path),
            Yaml::Sequence(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, item_schema, &path.index(i));
                    }
                }
            }
            Yaml::Tagged(tagged) => self.walk(&tagged.value, schema, path),
            _ => {}
        }
    }

    fn scan_for_unquoted_templates(&mut self, value: &Yaml, path: &YamlPath) {
        match value {
            _ if looks_like_unquoted_template(value) => self.walk(value, &Json::Bool(false), path),
            Yaml::Mapping(mapping) => {
                for (key, item) in mapping {
                    if let Some(key) = key_text(key) {
                        self.scan_for_unquoted_templates(item, &path.key(&key));
                    }
                }
            }
            Yaml::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.scan_for_unquoted_templates(item, &path.index(i));
                }
            }
            _ => {}
        }
    }

    fn walk_mapping(&mut self, mapping: &serde_yaml::Mapping, schema: &'a Json, path: &YamlPath) {
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        for (key, item) in mapping {
            let Some(key) = key_text(key) else {
                let mut problem = Problem::new(
                    path,
                    format!("a key in `{}` is not a plain text key", describe_path(path)),
                );
                problem.repair = Repair::Keep;
                self.problems.push(problem);
                continue;
            };
            let child = path.key(&key);
            if let Some(property) = properties.and_then(|p| p.get(&key)) {
                self.walk(item, property, &child);
                continue;
            }
            match additional {
                Some(Json::Bool(false)) => {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let mut problem = Problem::new(
                        &child,
                        format!("unknown key `{key}` in {}", describe_parent(path)),
                    );
                    problem.on_key = true;
                    problem.unknown_key = true;
                    problem.label = did_you_mean(&key, known.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"));
                    if problem.label.is_none() && !known.is_empty() {
                        problem.hint = Some(format!("expected one of {}", quote_list(&known)));
                    }
                    self.problems.push(problem);
                }
                Some(additional_schema) if additional_schema.is_object() => {
                    self.walk(item, additional_schema, &child)
                }
                _ => {}
            }
        }
        if let Some(required) = schema.get("required").and_then(Json::as_array) {
            for name in required.iter().filter_map(Json::as_str) {
                if mapping
                    .keys()
                    .any(|key| key_text(key).as_deref() == Some(name))
                {
                    continue;
                }
                let mut problem = Problem::new(
                    path,
                    format!("missing key `{name}` in {}", describe_parent(path)),
                );
                problem.on_key = true;
                let property = properties
                    .and_then(|p| p.get(name))
                    .map(|p| self.resolve(p));
                problem.repair = match property.and_then(|p| p.get("type")) {
                    Some(Json::String(t)) if t == "string" => Repair::Insert {
                        key: name.to_string(),
                        value: Yaml::String(String::new()),
                    },
                    _ => Repair::Keep,
                };
                problem.hint = properties
                    .and_then(|p| p.get(name))
                    .and_then(|p| {
                        self.resolve(p)
                            .get("description")
                            .or_else(|| p.get("description"))
                    })
                    .and_then(Json::as_str)
                    .map(|description| format!("`{name}`: {}", first_sentence(description)));
                self.problems.push(problem);
            }
        }
    }

    fn walk_branches(&mut self, value: &Yaml, branches: &'a [Json], path: &YamlPath) {
        let resolved: Vec<&Json> = branches.iter().map(|b| self.resolve(b)).collect();
        // `Option<T>`: null is fine, anything else must be a T.
        if value.is_null()
            && resolved
                .iter()
                .any(|b| b.get("type").and_then(Json::as_str) == Some("null"))
        {
            return;
        }
        let non_null: Vec<&Json> = resolved
            .iter()
            .copied()
            .filter(|b| b.get("type").and_then(Json::as_str) != Some("null"))
            .collect();
        // An enum with documented variants: every branch is a string constant.
        let constants: Option<Vec<&str>> = non_null
            .iter()
            .map(|b| b.get("const").and_then(Json::as_str))
            .collect();
        if let Some(constants) = constants {
            self.check_choice(value, constants, path);
            return;
        }
        // An internally tagged enum: every branch is an object with the same constant property.
        if let Some(tag) = tag_property(&non_null) {
            let choices: Vec<&str> = non_null
                .iter()
                .filter_map(|b| {
                    b.pointer(&format!("/properties/{tag}/const"))
                        .and_then(Json::as_str)
                })
                .collect();
            let Yaml::Mapping(mapping) = value else {
                self.problems.push(Problem::new(
                    path,
                    format!(
                        "`{}` must be a mapping, not {}",
                        describe_path(path),
                        describe_value(value)
                    ),
                ));
                return;
            };
            let given = mapping
                .iter()
                .find(|(k, _)| key_text(k).as_deref() == Some(tag))
                .map(|(_, v)| v);
            match given.and_then(Yaml::as_str) {
                None => {
                    let mut problem = Problem::new(
                        path,
                        format!("missing key `{tag}` in {}", describe_parent(path)),
                    );
                    problem.on_key = true;
                    problem.repair = Repair::Keep;
                    problem.hint = Some(format!("`{tag}` is one of {}", quote_list(&choices)));
                    self.problems.push(problem);
                }
                Some(name) => match non_null.iter().find(|b| {
                    b.pointer(&format!("/properties/{tag}/const"))
                        .and_then(Json::as_str)
                        == Some(name)
                }) {
                    Some(branch) => self.walk(value, branch, path),
                    None => {
                        let mut problem =
                            Problem::new(&path.key(tag), format!("unknown {tag} `{name}`"));
                        problem.label = did_you_mean(name, choices.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"));
                        problem.hint = Some(format!("`{tag}` is one of {}", quote_list(&choices)));
                        self.problems.push(problem);
                    }
                },
            }
            return;
        }
        // Anything else: valid if one branch accepts it; otherwise report the closest branch.
        let mut best: Option<Vec<Problem>> = None;
        for branch in non_null {
            let mut trial = Walker {
                root: self.root,
                problems: Vec::new(),
            };
            trial.walk(value, branch, path);
            if trial.problems.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| trial.problems.len() < b.len()) {
                best = Some(trial.problems);
            }
        }
        self.problems.extend(best.unwrap_or_default());
    }

    fn check_choice(&mut self, value: &Yaml, choices: Vec<&str>, path: &YamlPath) {
        let given = match value {
            Yaml::String(s) => s.clone(),
            other => {
                self.problems.push(Problem::new(
                    path,
                    format!(
                        "`{}` must be one of {}, not {}",
                        describe_path(path),
                        quote_list(&choices),
                        describe_value(other)
                    ),
                ));
                return;
            }
        };
        if choices.contains(&given.as_str()) {
            return;
        }
        let mut problem = Problem::new(
            path,
            format!(
                "`{given}` is not a valid value for `{}`",
                describe_path(path)
            ),
        );
        let suggestion = did_you_mean(&given, choices.iter().copied());
        problem.label = suggestion.map(|s| format!("did you mean `{s}`?"));
        if let Some(suggestion) = suggestion {
            problem.repair = Repair::Replace(Yaml::String(suggestion.to_string()));
        }
        problem.hint = Some(format!("expected one of {}", quote_list(&choices)));
        self.problems.push(problem);
    }
}

fn tag_property<'a>(branches: &[&'a Json]) -> Option<&'a str> {
    let first = branches.first()?.get("properties")?.as_object()?;
    let tag = first
        .iter()
        .find(|(_, p)| p.get("const").is_some())?
        .0
        .as_str();
    branches
        .iter()
        .all(|b| b.pointer(&format!("/properties/{tag}/const")).is_some())
        .then_some(tag)
}

fn type_matches(expected: &str, value: &Yaml) -> bool {
    let value = match value {
        Yaml::Tagged(tagged) => &tagged.value,
        other => other,
    };
    match expected {
        "object" => value.is_mapping(),
        "array" => value.is_sequence(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_bool(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// A schema that allows anything: `true`, or an object holding only annotations.
fn is_any(schema: &Json) -> bool {
    match schema {
        Json::Bool(b) => *b,
        Json::Object(map) => map
            .keys()
            .all(|k| matches!(k.as_str(), "description" | "title" | "default" | "examples")),
        _ => false,
    }
}

/// An unquoted `{{ x }}` parses as a mapping whose only key is a mapping.
fn looks_like_unquoted_template(value: &Yaml) -> bool {
    match value {
        Yaml::Mapping(mapping) => mapping.len() == 1 && mapping.keys().all(Yaml::is_mapping),
        _ => false,
    }
}

/// `{{ order_no }}` written unquoted parses as `{{order_no: null}: null}`; give back the text.
fn unquoted_template_text(value: &Yaml) -> Option<String> {
    let Yaml::Mapping(outer) = value else {
        return None;
    };
    let (Yaml::Mapping(inner), Yaml::Null) = outer.iter().next()? else {
        return None;
    };
    let (name, Yaml::Null) = inner.iter().next().filter(|_| inner.len() == 1)? else {
        return None;
    };
    Some(format!("{{{{ {} }}}}", key_text(name)?))
}

pub(crate) fn key_text(key: &Yaml) -> Option<String> {
    match key {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "integer" => "an integer".to_string(),
        "boolean" => "true or false".to_string(),
        other => format!("a {other}"),
    }
}

pub(crate) fn describe_value(value: &Yaml) -> String {
    match value {
        Yaml::Null => "empty".to_string(),
        Yaml::Bool(b) => format!("`{b}`"),
        Yaml::Number(n) => format!("the number `{n}`"),
        Yaml::String(s) => format!("the text `{s}`"),
        Yaml::Sequence(_) => "a list".to_string(),
        Yaml::Mapping(_) => "a mapping".to_string(),
        Yaml::Tagged(tagged) => describe_value(&tagged.value),
    }
}

fn describe_number(value: &Yaml) -> String {
    match value {
        Yaml::Number(n) => n.to_string(),
        other => describe_value(other),
    }
}

fn describe_path(path: &YamlPath) -> String {
    path.to_string()
}

fn describe_parent(path: &YamlPath) -> String {
    if path.is_root() {
        "the top level".to_string()
    } else {
        format!("`{path}`")
    }
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first sentence of a field's documentation, starting lowercase (it follows a colon).
fn first_sentence(text: &str) -> String {
    let text = text.replace('\n', " ");
    // A sentence ends at ". ", but not at the one of "e.g. " or "i.e. ".
    let end = text
        .match_indices(". ")
        .map(|(i, _)| i)
        .find(|&i| !text[..i].ends_with("e.g") && !text[..i].ends_with("i.e"));
    let sentence = match end {
        Some(end) => &text[..end],
        None => text.trim_end_matches('.'),
    };
    let mut chars = sentence.chars();
    // An acronym (`JSONPath`, `URL`) keeps its capitals; a sentence's first word does not.
    let acronym = sentence.chars().nth(1).is_some_and(char::is_uppercase);
    match chars.next() {
        Some(first) if !acronym => first.to_lowercase().chain(chars).collect(),
        Some(_) => sentence.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(yaml: &str, schema: Json) -> Vec<(String, String, Option<String>)> {
        let value: Yaml = serde_yaml::from_str(yaml).unwrap();
        check(&value, &schema)
            .into_iter()
            .map(|p| (p.path.to_string(), p.message, p.label))
            .collect()
    }

    fn object_schema() -> Json {
        json!({
            "type": "object",
            "properties": {
                "connector": {"type": "string", "description": "Connector name. More text."},
                "page_size": {"type": ["integer", "null"], "minimum": 0},
                "kind": {"$ref": "#/$defs/Kind"},
                "auth": {"$ref": "#/$defs/Auth"},
                "params": {"type": "object", "additionalProperties": true},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["connector"],
            "additionalProperties": false,
            "$defs": {
                "Kind": {"oneOf": [{"type": "string", "const": "read"}, {"type": "string", "const": "write"}]},
                "Auth": {"oneOf": [
                    {"type": "object", "properties": {"strategy": {"const": "none"}}, "required": ["strategy"], "additionalProperties": false},
                    {"type": "object", "properties": {"strategy": {"const": "bearer"}, "token": {"type": "string"}}, "required": ["strategy", "token"], "additionalProperties": false}
                ]}
            }
        })
    }

    #[test]
    fn a_valid_document_has_no_problems() {
        let yaml = "connector: wdt\npage_size: 100\nkind: read\nauth: {strategy: bearer, token: x}\nparams: {a: 1}\ntags: [a]\n";
        assert_eq!(problems(yaml, object_schema()), vec![]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let yaml =
            "conector: wdt\npage_size: lots\nkind: reed\nauth: {strategy: bearer}\ntags: [1]\n";
        let found = problems(yaml, object_schema());
        let messages: Vec<&str> = found.iter().map(|(_, m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "unknown key `conector` in the top level",
                "`page_size` must be an integer, not the text `lots`",
                "`reed` is not a valid value for `kind`",
                "missing key `token` in `auth`",
                "`tags[0]` must be a string, not the number `1`",
                "missing key `connector` in the top level",
            ]
        );
        assert_eq!(found[0].2.as_deref(), Some("did you mean `connector`?"));
        assert_eq!(found[2].2.as_deref(), Some("did you mean `read`?"));
    }

    #[test]
    fn tagged_choices_name_the_tag_and_suggest() {
        let found = problems("connector: x\nauth: {strategy: barer}\n", object_schema());
        assert_eq!(
            found,
            vec![(
                "auth.strategy".to_string(),
                "unknown strategy `barer`".to_string(),
                Some("did you mean `bearer`?".to_string())
            )]
        );
    }

    #[test]
    fn an_unquoted_template_is_recognised() {
        let found = problems("connector: {{ env.X }}\n", object_schema());
        assert_eq!(
            found[0].1,
            "`connector` looks like a template that is not quoted"
        );
    }

    #[test]
    fn missing_keys_get_the_first_sentence_of_their_description_as_hint() {
        let value: Yaml = serde_yaml::from_str("page_size: 1\n").unwrap();
        let found = check(&value, &object_schema());
        assert_eq!(
            found[0].hint.as_deref(),
            Some("`connector`: connector name")
        );
        assert_eq!(
            first_sentence("JSONPath of the success items."),
            "JSONPath of the success items"
        );
        assert_eq!(
            first_sentence("The field (e.g. `FBillNo`). More."),
            "the field (e.g. `FBillNo`)"
        );
    }
}
