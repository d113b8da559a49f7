//! One source record through a flow: its key, its last-modified time, and the target record.
//!
//! This is the whole of "mapping" as `preview` and `run` see it: pure, no IO. A record
//! that cannot be mapped fails alone, with the reason and (when the key could be read) its
//! key, so the run can park it and go on. Templates see the record with the source
//! connector's `null_values` read as `null`, and a record whose last-modified value is not a
//! time fails like any other record that cannot be mapped.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::ValueKind;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::config::model::Flow;
use crate::template::scope::Scope;
use crate::template::{self, Kind, TemplateId};
use crate::time;
use crate::tree::{self, EvalError, Node};

/// A record mapped into the target's shape, as its compact JSON text: what the ledger keeps,
/// the request sends and the content hash is taken from. The value is parsed from it only
/// where something reads inside it ([`Mapped::target`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub key: String,
    pub modified: Option<String>,
    /// Detail lines dropped by `skip_line` lookups.
    pub skipped: Vec<String>,
    pub text: Compact,
    /// A digest of the text: the same source content maps to the same hash.
    pub hash: String,
}

impl Mapped {
    /// `target` with its text and hash.
    pub fn new(key: String, modified: Option<String>, target: Json, skipped: Vec<String>) -> Self {
        Mapped::of_text(key, modified, Compact::of(&target), skipped)
    }

    fn of_text(key: String, modified: Option<String>, text: Compact, skipped: Vec<String>) -> Self {
        let hash = text_hash(text.text());
        Mapped {
            key,
            modified,
            skipped,
            text,
            hash,
        }
    }

    /// The mapped record as a value, parsed from its text.
    pub fn target(&self) -> Json {
        serde_json::from_str(self.text.text()).expect("a mapped record's text is JSON")
    }
}

/// A value's compact JSON text (`serde_json::to_string`), shared.
#[derive(Debug, Clone)]
pub struct Compact(Arc<str>);

impl Compact {
    pub fn of(value: &Json) -> Compact {
        Compact(Arc::from(
            serde_json::to_string(value).expect("JSON values serialise"),
        ))
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// The text, shared.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl PartialEq for Compact {
    fn eq(&self, other: &Compact) -> bool {
        self.text() == other.text()
    }
}

/// A record mapped, before its content hash: what `preview` prints, which has no use for the
/// hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: String,
    pub modified: Option<String>,
    pub target: Json,
    /// Detail lines dropped by `skip_line` lookups.
    pub skipped: Vec<String>,
}

/// A record that could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The record's key, when even that could not be read `None`.
    pub key: Option<String>,
    pub error: Box<EvalError>,
}

/// A record's scope: `vars`, and the time filters reading naive times in the source's zone and
/// writing in the target's.
fn scope(flow: &Flow, record: Arc<Json>) -> Scope {
    // Fields holding one of the source connector's `null_values` (WDT's no-date
    // `9999-12-01 00:00:00`) read as `null`; the record itself stays as read (the ledger keeps
    // that).
    Scope::for_record_with_nulls(
        record,
        flow.record_names.clone(),
        Arc::clone(&flow.source.connector.null_values),
    )
}

/// The key and last-modified text of a source record. The text is as the record gives it,
/// even when it is not a time (a copy with another text is another version); [`map`] refuses
/// a record whose last-modified value is not a time.
pub fn key_of(flow: &Flow, record: &Arc<Json>) -> Result<(String, Option<String>), EvalError> {
    keys_of(flow, record).map(|keys| (keys.key, keys.modified))
}

/// A record's key and last-modified time, evaluated once: the reader keys the record with
/// them and the mapping takes them from here ([`map_keyed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub key: String,
    /// The last-modified text as the record gives it, as [`key_of`] reads it (`None` when it
    /// is null or its template fails).
    pub modified: Option<String>,
    /// Why the record's last-modified value is not a time, if it is not: [`map`] refuses it.
    pub not_a_time: Option<Box<EvalError>>,
}

/// The record's [`Keys`]; an error when even its key cannot be read.
pub fn keys_of(flow: &Flow, record: &Arc<Json>) -> Result<Keys, EvalError> {
    let key = key_text(flow, record)?;
    let Some(id) = flow.key.modified else {
        return Ok(Keys {
            key,
            modified: None,
            not_a_time: None,
        });
    };
    let (modified, not_a_time) =
        match tree::evaluate_template(id, &flow.templates, scope(flow, Arc::clone(record))) {
            Ok(value) => {
                let modified = Some(&value)
                    .filter(|value| !value.is_none() && !value.is_undefined())
                    .map(text);
                (modified, modified_problem(flow, id, &value).map(Box::new))
            }
            Err(error) => (None, Some(Box::new(error))),
        };
    Ok(Keys {
        key,
        modified,
        not_a_time,
    })
}

/// What a reader must keep of one field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The field as it is.
    Whole,
    /// A list whose items, where they are objects, keep only these fields (anything else, a
    /// list item that is not an object or a field that is not a list, is kept whole).
    Items(Fields),
}

/// The fields of a record (or of a list's items) a reader must keep, and what of each.
pub type Fields = BTreeMap<String, Need>;

/// The top-level fields [`key_of`] reads (and perhaps a few more names), or `None` when its
/// templates read the whole `record`: a reader that only needs keys may skip the others.
pub fn key_fields(flow: &Flow) -> Option<Fields> {
    let mut needs = Needs::default();
    for id in std::iter::once(flow.key.source).chain(flow.key.modified) {
        needs.template(flow, id, &[])?;
    }
    Some(needs.top)
}

/// The fields [`map_target`] reads (and perhaps a few more names), or `None` when the flow's
/// templates read the whole `record`. A field outside them changes no mapped record nor any
/// error: a reader that only maps may skip the others. Inside a list that an `$each` repeats
/// over (`$each: "{{ details_list }}"`), only the item fields its templates read are needed
/// (`line.spec_no`), unless one reads an item or the list as a whole (`line | tojson`,
/// `details_list | length`): then the list is kept whole.
pub fn mapped_fields(flow: &Flow) -> Option<Fields> {
    let mut needs = Needs::default();
    for id in std::iter::once(flow.key.source).chain(flow.key.modified) {
        needs.template(flow, id, &[])?;
    }
    needs.node(flow, &flow.mapping, &mut Vec::new())?;
    Some(needs.top)
}

/// A loop variable of an enclosing `$each`, and the record list its items come from: the path
/// of list fields down to it, or `None` when the list is not a record field read by name (its
/// template's own reads then keep what it reads whole).
type Bound<'f> = (&'f str, Option<Vec<String>>);

/// The needs of a flow's templates, gathered.
#[derive(Default)]
struct Needs {
    top: Fields,
}

impl Needs {
    /// Add the reads of a tree inside the loops `loops` (innermost last); `None`: it reads the
    /// whole record.
    fn node<'f>(&mut self, flow: &Flow, node: &'f Node, loops: &mut Vec<Bound<'f>>) -> Option<()> {
        match node {
            Node::Invalid | Node::Literal(_) => {}
            Node::Template(id) => self.template(flow, *id, loops)?,
            Node::Object(fields) => {
                for field in fields {
                    self.node(flow, &field.node, loops)?;
                }
            }
            Node::Array(items) => {
                for item in items {
                    self.node(flow, item, loops)?;
                }
            }
            Node::When(when) => {
                self.template(flow, when.condition, loops)?;
                self.node(flow, &when.value, loops)?;
            }
            Node::Each(each) => {
                let list = self.list(flow, each.items, loops);
                if list.is_none() {
                    self.template(flow, each.items, loops)?;
                }
                loops.push((each.var.as_str(), list));
                let inner = each
                    .condition
                    .map_or(Some(()), |id| self.template(flow, id, loops))
                    .and_then(|()| self.node(flow, &each.item, loops));
                loops.pop();
                inner?;
            }
        }
        Some(())
    }

    /// The path of the record list an `$each` template names plainly (`{{ details_list }}`, or
    /// `{{ line.serials }}` over an enclosing loop's item), noted as needed.
    fn list(&mut self, flow: &Flow, id: TemplateId, loops: &[Bound<'_>]) -> Option<Vec<String>> {
        if flow.templates.kind(id) != Kind::Expression {
            return None;
        }
        let path = template::plain_path(flow.templates.source(id))?;
        let list = match (bound(loops, path[0]), &path[..]) {
            (Some(Some(outer)), [_, name]) => {
                let mut list = outer.clone();
                list.push((*name).to_string());
                list
            }
            (None, [name]) if *name != "record" => vec![(*name).to_string()],
            _ => return None,
        };
        self.add(&list, Need::Items(Fields::new()));
        Some(list)
    }

    /// Add the reads of one template; `None`: it reads the whole record.
    fn template(&mut self, flow: &Flow, id: TemplateId, loops: &[Bound<'_>]) -> Option<()> {
        for name in flow.templates.undeclared_or_global(id) {
            let mut parts = name.split('.');
            let root = parts.next().unwrap_or(&name);
            match bound(loops, root) {
                Some(None) => {}
                Some(Some(list)) => match parts.next() {
                    Some(field) => {
                        let mut path = list.clone();
                        path.push(field.to_string());
                        self.add(&path, Need::Whole);
                    }
                    None => self.add(list, Need::Whole),
                },
                None if root == "record" => return None,
                None => self.add(&[root.to_string()], Need::Whole),
            }
        }
        Some(())
    }

    /// Note `need` at `path`: every name but the last is a list whose items are projected.
    fn add(&mut self, path: &[String], need: Need) {
        let mut fields = &mut self.top;
        let (last, lists) = path.split_last().expect("a path names a field");
        for list in lists {
            let entry = fields
                .entry(list.clone())
                .or_insert_with(|| Need::Items(Fields::new()));
            match entry {
                Need::Whole => return,
                Need::Items(items) => fields = items,
            }
        }
        match (fields.get_mut(last), need) {
            (None, need) => {
                fields.insert(last.clone(), need);
            }
            (Some(Need::Whole), _) | (Some(Need::Items(_)), Need::Items(_)) => {}
            (Some(held), Need::Whole) => *held = Need::Whole,
        }
    }
}

/// What `name` is bound to by the innermost enclosing `$each` naming it, if any.
fn bound<'l>(loops: &'l [Bound<'_>], name: &str) -> Option<&'l Option<Vec<String>>> {
    loops
        .iter()
        .rev()
        .find(|(var, _)| *var == name)
        .map(|(_, list)| list)
}

fn key_text(flow: &Flow, record: &Arc<Json>) -> Result<String, EvalError> {
    let key = tree::evaluate_template(
        flow.key.source,
        &flow.templates,
        scope(flow, Arc::clone(record)),
    )?;
    let problem = if key.is_none() {
        Some("is null")
    } else if !matches!(key.kind(), ValueKind::String | ValueKind::Number) {
        Some("is not a text or a number")
    } else if text(&key).trim().is_empty() {
        Some("is empty")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(EvalError {
            target: String::new(),
            location: flow.templates.origin(flow.key.source).location.clone(),
            message: format!(
                "the key `{}` {problem}",
                flow.templates.source(flow.key.source).trim()
            ),
            missing_field: None,
        });
    }
    Ok(text(&key))
}

/// Why the record's last-modified value (`key.modified`, template `id`) is not a time, if it
/// is not: a record without one cannot be placed in time, so it is refused (and parked under
/// its key) rather than sent.
fn modified_problem(flow: &Flow, id: TemplateId, value: &Value) -> Option<EvalError> {
    let source = flow.templates.source(id).trim();
    let zone = flow.source.connector.time_zone;
    let problem = if value.is_none() {
        "is empty (`null`)".to_string()
    } else if let Some(text) = value.as_str() {
        match time::parse_instant_in(text, zone) {
            Ok(_) => return None,
            Err(_) => format!("is `{text}`, not a time"),
        }
    } else if value.kind() == ValueKind::Number
        && time::parse_instant_in(&text(value), zone).is_ok()
    {
        // Epoch seconds or milliseconds given as a JSON number, as many APIs send them.
        return None;
    } else {
        format!("is `{}` ({}), not a time", text(value), value.kind())
    };
    Some(EvalError {
        target: String::new(),
        location: flow.templates.origin(id).location.clone(),
        message: format!(
            "the last-modified time `{source}` {problem}; expected `yyyy-MM-dd HH:mm:ss` ({}), RFC 3339 or epoch seconds or milliseconds",
            zone.name()
        ),
        missing_field: None,
    })
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Map one source record into its text (a run's records: nothing reads inside them).
pub fn map(flow: &Flow, record: Arc<Json>) -> Result<Mapped, Failure> {
    let keys = keys_of(flow, &record).map_err(|error| Failure {
        key: None,
        error: Box::new(error),
    })?;
    map_keyed(flow, record, keys)
}

/// [`map`] a record whose [`Keys`] were read already (by the reader, from this record).
pub fn map_keyed(flow: &Flow, record: Arc<Json>, keys: Keys) -> Result<Mapped, Failure> {
    let (key, modified) = keys_and_modified(keys)?;
    let failed = |error| Failure {
        key: Some(key.clone()),
        error: Box::new(error),
    };
    let evaluated = tree::evaluate_text(
        &flow.mapping,
        &flow.templates,
        scope(flow, record),
        &flow.key.target,
    )
    .map_err(failed)?;
    check_key(flow, &key, evaluated.watched.as_ref()).map_err(failed)?;
    let text = Compact(Arc::from(evaluated.text));
    Ok(Mapped::of_text(key, modified, text, evaluated.skipped))
}

/// Map one source record into a value, without the content hash a run keeps.
pub fn map_target(flow: &Flow, record: Arc<Json>) -> Result<Target, Failure> {
    let keys = keys_of(flow, &record).map_err(|error| Failure {
        key: None,
        error: Box::new(error),
    })?;
    let (key, modified) = keys_and_modified(keys)?;
    let failed = |error| Failure {
        key: Some(key.clone()),
        error: Box::new(error),
    };
    let evaluated =
        tree::evaluate(&flow.mapping, &flow.templates, scope(flow, record)).map_err(failed)?;
    check_key(flow, &key, evaluated.value.get(&flow.key.target)).map_err(failed)?;
    Ok(Target {
        key,
        modified,
        target: evaluated.value,
        skipped: evaluated.skipped,
    })
}

/// The record's key and last-modified time, or why they cannot be read.
/// The key and the last-modified time of a record to map: a record whose last-modified value
/// is not a time fails, under its key.
fn keys_and_modified(keys: Keys) -> Result<(String, Option<String>), Failure> {
    match keys.not_a_time {
        Some(error) => Err(Failure {
            key: Some(keys.key),
            error,
        }),
        None => Ok((keys.key, keys.modified)),
    }
}

/// The mapped record must carry its key in the key field (`written`, its value there).
fn check_key(flow: &Flow, key: &str, written: Option<&Json>) -> Result<(), EvalError> {
    let written = written.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    if written.as_deref() == Some(key) {
        return Ok(());
    }
    Err(EvalError {
        target: flow.key.target.clone(),
        location: flow.templates.origin(flow.key.source).location.clone(),
        message: match written {
            Some(written) => format!(
                "`{}` is `{written}`, not the record's key `{key}`",
                flow.key.target
            ),
            None => format!(
                "the mapping left `{}` empty; it must carry the record's key `{key}`",
                flow.key.target
            ),
        },
        missing_field: None,
    })
}

/// A short, stable digest of a JSON value: SHA-256 of its compact serialisation, which is
/// streamed into the hash rather than built first.
pub fn content_hash(value: &Json) -> String {
    let mut hasher = Hashing(Sha256::new());
    serde_json::to_writer(&mut hasher, value).expect("JSON values serialise");
    digest_text(hasher.0)
}

/// [`content_hash`] of the value whose compact text is `text`.
fn text_hash(text: &str) -> String {
    digest_text(Sha256::new_with_prefix(text))
}

/// The hash as ledgers store it: the first 16 bytes of the SHA-256, in hex.
fn digest_text(hasher: Sha256) -> String {
    hex::encode(&hasher.finalize()[..16])
}

/// Bytes written are hashed.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bundled_flow() -> Flow {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = crate::config::load_flow(&root.join("mappings/refund.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.value.unwrap()
    }

    /// The bundled flow's sample orders (`mappings/samples/refund_orders.json`).
    fn sample_orders() -> Vec<Json> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings/samples/refund_orders.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn sorted(fields: Option<Fields>) -> Vec<String> {
        let mut fields: Vec<String> = fields.unwrap().into_keys().collect();
        fields.sort();
        fields
    }

    #[test]
    fn a_reader_that_skips_the_fields_no_template_reads_maps_the_same_record() {
        let flow = bundled_flow();
        assert_eq!(sorted(key_fields(&flow)), ["modified", "order_no"]);
        let fields = mapped_fields(&flow).unwrap();
        for field in [
            "order_no",
            "check_time",
            "shop_no",
            "details_list",
            "warehouse_no",
        ] {
            assert!(fields.contains_key(field), "{field}: {fields:?}");
        }
        assert!(!fields.contains_key("logistics_no"), "{fields:?}");
        let samples = sample_orders();
        for sample in samples {
            let Json::Object(whole) = &sample else {
                panic!("a record")
            };
            let projected: serde_json::Map<String, Json> = whole
                .iter()
                .filter(|(name, _)| fields.contains_key(*name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            assert!(projected.len() < whole.len());
            assert_eq!(
                map_target(&flow, Arc::new(Json::Object(projected))),
                map_target(&flow, Arc::new(sample.clone()))
            );
        }
    }

    /// A flow over file connectors mapping records with `mapping` (YAML).
    fn flow_mapping(mapping: &str) -> Flow {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        std::fs::create_dir_all(dir.path().join("connectors")).unwrap();
        write(
            "connectors/in.yaml",
            "name: in\nfile: { path: in.jsonl, format: jsonl }\n",
        );
        write(
            "connectors/out.yaml",
            "name: out\nfile: { path: out.jsonl, format: jsonl }\n",
        );
        write(
            "flow.yaml",
            &format!(
                "source: {{ connector: in, operation: read }}\ntarget: {{ connector: out, operation: write }}\nkey: {{ source: \"{{{{ id }}}}\", target: id }}\nmapping:\n{mapping}"
            ),
        );
        let loaded = crate::config::load_flow(&dir.path().join("flow.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.value.unwrap()
    }

    /// Fields as `a, b[c, d]` (sorted; a list whose items keep some fields shows them in brackets).
    fn described(fields: &Fields) -> String {
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|name| match &fields[name] {
                Need::Whole => name.clone(),
                Need::Items(items) => format!("{name}[{}]", described(items)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    const LINES: &str = "  lines:\n    $each: \"{{ lines }}\"\n    $as: l\n";

    /// (mapping under `mapping:`, the fields read as [`described`] shows them; `None`: the
    /// whole record).
    fn projection_cases() -> Vec<(String, Option<&'static str>)> {
        let with_lines = |item: &str| format!("  id: \"{{{{ id }}}}\"\n{LINES}{item}");
        vec![
            (
                with_lines("    $item: { a: \"{{ l.a }}\", b: \"{{ l.b.c | default('') }}\" }\n"),
                Some("id, lines[a, b]"),
            ),
            // No item field read: the list is kept (its length matters), its items empty.
            (with_lines("    $item: { k: x }\n"), Some("id, lines[]")),
            (
                with_lines("    $if: \"{{ l.keep }}\"\n    $item: { a: \"{{ l.a }}\" }\n"),
                Some("id, lines[a, keep]"),
            ),
            // An item or the list read as a whole keeps the list whole.
            (
                with_lines("    $item: { a: \"{{ l.a }}\", all: \"{{ l | tojson }}\" }\n"),
                Some("id, lines"),
            ),
            (
                with_lines("    $item: { a: \"{{ l['a'] }}\" }\n"),
                Some("id, lines"),
            ),
            (
                with_lines("    $item: { a: \"{{ l.a }}\" }\n") + "  n: \"{{ lines | length }}\"\n",
                Some("id, lines"),
            ),
            (
                "  id: \"{{ id }}\"\n  lines:\n    $each: \"{{ lines | reverse }}\"\n    $as: l\n    $item: { a: \"{{ l.a }}\" }\n".to_string(),
                Some("id, lines"),
            ),
            // Nested lists; a loop variable shadows the record's field of that name.
            (
                with_lines("    $item:\n      subs:\n        $each: \"{{ l.subs }}\"\n        $as: s\n        $item: { x: \"{{ s.x }}\", a: \"{{ l.a }}\", id: \"{{ id }}\" }\n"),
                Some("id, lines[a, subs[x]]"),
            ),
            (
                "  id: \"{{ id }}\"\n  lines:\n    $each: \"{{ lines }}\"\n    $item: { a: \"{{ item.a }}\", id: \"{{ id }}\" }\n".to_string(),
                Some("id, lines[a]"),
            ),
            (
                with_lines("    $item: { a: \"{{ l.a }}\", r: \"{{ record.x }}\" }\n"),
                None,
            ),
        ]
    }

    #[test]
    fn a_record_mapped_with_the_keys_its_reader_read_maps_as_it_does_alone() {
        let flow = bundled_flow();
        let samples = sample_orders();
        let mut records = samples.clone();
        // Last-modified values that are not times, and a record without a key.
        for (at, modified) in [json!("yesterday"), json!(null), json!(true)]
            .into_iter()
            .enumerate()
        {
            let mut record = samples[at].clone();
            record["modified"] = modified;
            record["order_no"] = json!(format!("RK-MOD-{at}"));
            records.push(record);
        }
        let mut unnamed = samples[0].clone();
        unnamed["order_no"] = json!(null);
        records.push(unnamed);
        let mut not_a_time = 0;
        for record in records.into_iter().map(Arc::new) {
            let alone = map(&flow, Arc::clone(&record));
            let read = keys_of(&flow, &record);
            let Ok(keys) = read else {
                let failure = alone.expect_err("a record without a key fails");
                assert_eq!(failure.key, None);
                assert_eq!(*failure.error, read.unwrap_err());
                continue;
            };
            assert_eq!(
                key_of(&flow, &record).unwrap(),
                (keys.key.clone(), keys.modified.clone())
            );
            not_a_time += usize::from(keys.not_a_time.is_some());
            match (alone, map_keyed(&flow, Arc::clone(&record), keys)) {
                (Ok(alone), Ok(keyed)) => assert_eq!(alone, keyed),
                (Err(alone), Err(keyed)) => {
                    assert_eq!(alone.key, keyed.key);
                    assert_eq!(alone.error, keyed.error);
                }
                (alone, keyed) => panic!("{alone:?} against {keyed:?}"),
            }
        }
        assert_eq!(not_a_time, 3);
    }

    #[test]
    fn inside_a_repeated_list_only_the_item_fields_read_are_needed() {
        let flow = bundled_flow();
        assert_eq!(
            described(&mapped_fields(&flow).unwrap()),
            // (`vars` is not among them: the leaves that read only a var are folded.)
            "check_time, details_list[goods_unit, num, remark, spec_no, tax, tax_price], modified, order_no, refund_remark, shop_no, src_order_no, warehouse_no"
        );
        for (mapping, expected) in projection_cases() {
            let fields = mapped_fields(&flow_mapping(&mapping));
            assert_eq!(
                fields.as_ref().map(described).as_deref(),
                expected,
                "{mapping}"
            );
        }
    }

    #[test]
    fn a_record_parsed_with_only_the_fields_read_maps_as_the_whole_record_does() {
        let samples = sample_orders();
        let mut records = samples.clone();
        // Lines missing a field, holding nulls or other shapes, and lists that are not lists.
        for (field, value) in [
            (
                "details_list",
                json!([{"spec_no": "A", "num": "1", "tax_price": "2", "tax": "0.13", "x": 1}, 3, null]),
            ),
            (
                "details_list",
                json!([{"spec_no": null, "num": "1", "tax_price": "2", "tax": "0.13"}]),
            ),
            (
                "details_list",
                json!([{"num": "1", "tax_price": "2", "tax": "0.13"}]),
            ),
            ("details_list", json!({"spec_no": "A"})),
            ("details_list", json!("none")),
            ("details_list", json!([])),
        ] {
            let mut record = samples[0].clone();
            record[field] = value;
            records.push(record);
        }
        let check = |flow: &Flow, records: &[Json]| {
            let fields = mapped_fields(flow).unwrap();
            for record in records {
                let bytes = serde_json::to_vec(record).unwrap();
                let projection = crate::projected::Projection {
                    fields: &fields,
                    exact: true,
                };
                let projected = crate::projected::parse_fields(&bytes, projection).unwrap();
                assert!(projected.to_string().len() < bytes.len(), "{record}");
                assert_eq!(
                    map_target(flow, Arc::new(projected)),
                    map_target(flow, Arc::new(record.clone())),
                    "{record}"
                );
            }
        };
        check(&bundled_flow(), &records);
        let lines = json!([{"a": 1, "b": {"c": 2}, "keep": true, "subs": [{"x": "X", "y": 1}, 2], "z": 1}, {"a": "t", "keep": false, "z": 2}, 7]);
        for (mapping, expected) in projection_cases() {
            if expected.is_some() {
                let flow = flow_mapping(&mapping);
                check(
                    &flow,
                    &[
                        json!({"id": "A", "lines": lines, "other": 1}),
                        json!({"id": "B", "lines": [], "other": 1}),
                    ],
                );
            }
        }
    }

    #[test]
    fn a_record_field_named_like_a_global_is_kept_for_the_template_that_reads_it() {
        let flow = flow_between_files("mapping: { id: \"{{ id }}\", n: \"{{ range }}\" }\n");
        assert!(mapped_fields(&flow).unwrap().contains_key("range"));
        let whole = map_target(&flow, Arc::new(json!({"id": "A", "range": 3}))).unwrap();
        assert_eq!(whole.target, json!({"id": "A", "n": 3}));
        let flow = flow_between_files("mapping: { id: \"{{ id }}\", all: \"{{ record }}\" }\n");
        assert!(mapped_fields(&flow).is_none());
    }

    /// A flow from one JSON Lines file to another, keyed by `id`, with `rest` (its mapping and
    /// anything else) added.
    fn flow_between_files(rest: &str) -> Flow {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        std::fs::create_dir_all(dir.path().join("connectors")).unwrap();
        write(
            "connectors/in.yaml",
            "name: in\nfile: { path: in.jsonl, format: jsonl }\n",
        );
        write(
            "connectors/out.yaml",
            "name: out\nfile: { path: out.jsonl, format: jsonl }\n",
        );
        let head = "source: { connector: in, operation: read }\ntarget: { connector: out, operation: write }\nkey: { source: \"{{ id }}\", target: id }\n";
        write("flow.yaml", &format!("{head}{rest}"));
        let loaded = crate::config::load_flow(&dir.path().join("flow.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.value.unwrap()
    }

    /// A leaf that only reads a var is its value once the flow loads; a record maps as before,
    /// and a loop that names its item `vars` still reads the item.
    #[test]
    fn a_leaf_reading_only_a_var_is_folded_and_a_loop_named_vars_is_not() {
        let flow = bundled_flow();
        let Node::Object(fields) = &flow.mapping else {
            panic!("an object")
        };
        let bill_type = fields.iter().find(|f| f.key == "FBillTypeID").unwrap();
        let Node::Object(inner) = &bill_type.node else {
            panic!("an object")
        };
        assert_eq!(inner[0].node, Node::Literal(json!("XSTHD01_SYS")));
        let flow = flow_between_files(
            "vars: { org: 100, x: top, nested: { a: [1] } }\nmapping:\n  id: \"{{ id }}\"\n  org: \"{{ vars.org }}\"\n  nested: \"{{ vars.nested }}\"\n  lines: { $each: \"{{ items }}\", $as: vars, $item: { v: \"{{ vars.x }}\" } }\n",
        );
        let record = json!({"id": "A", "items": [{"x": "a"}, {"x": "b"}]});
        let mapped = map_target(&flow, Arc::new(record)).unwrap();
        assert_eq!(
            mapped.target,
            json!({"id": "A", "org": 100, "nested": {"a": [1]}, "lines": [{"v": "a"}, {"v": "b"}]})
        );
    }

    /// A run maps a record straight into its text: the same bytes, and so the same hash, as
    /// the value `preview` maps it to, serialised; the same failure where it fails.
    #[test]
    fn a_record_mapped_into_text_is_the_value_it_maps_to_written_compactly() {
        let flow = bundled_flow();
        let until = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        let (mut mapped_both, mut failed) = (0, 0);
        for order in crate::sim::wdt::sample_orders(11, 300, until) {
            let mut order = serde_json::to_value(order).unwrap();
            if failed == 0 {
                // A record the mapping refuses (no lines: the bill's `minItems`).
                order["details_list"] = json!([]);
            }
            let record = Arc::new(order);
            match (map(&flow, Arc::clone(&record)), map_target(&flow, record)) {
                (Ok(mapped), Ok(target)) => {
                    let bytes = serde_json::to_string(&target.target).unwrap();
                    assert_eq!(mapped.text.text(), bytes);
                    assert_eq!(mapped.hash, content_hash(&target.target));
                    assert_eq!(
                        (mapped.key, mapped.modified, mapped.skipped),
                        (target.key, target.modified, target.skipped)
                    );
                    mapped_both += 1;
                }
                (Err(text), Err(value)) => {
                    assert_eq!(text, value);
                    failed += 1;
                }
                (text, value) => panic!("{text:?} but as a value {value:?}"),
            }
        }
        // The sandbox's orders include some the mapping refuses (unknown shops).
        assert!(mapped_both > 200 && failed > 1, "{mapped_both} {failed}");
    }

    #[test]
    fn the_hash_follows_the_content() {
        let a = content_hash(&json!({"FBillNo": "RK1", "FQty": 2}));
        assert_eq!(a, content_hash(&json!({"FBillNo": "RK1", "FQty": 2})));
        assert_ne!(a, content_hash(&json!({"FBillNo": "RK1", "FQty": 3})));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn the_hash_is_sha256_of_the_compact_json_as_ledgers_on_disk_hold_it() {
        // Ledgers compare against stored hashes: the function and its input must not change.
        let value = json!({"FBillNo": "RK1", "FEntity": [{"FQty": 2.5, "FNote": "退货 \"x\""}]});
        let bytes = serde_json::to_vec(&value).unwrap();
        let expected = hex::encode(&Sha256::digest(&bytes)[..16]);
        assert_eq!(content_hash(&value), expected);
        let mapped = Mapped::new("RK1".into(), None, value.clone(), Vec::new());
        assert_eq!(
            (mapped.text.text().as_bytes(), mapped.hash),
            (&bytes[..], expected)
        );
        assert_eq!(
            content_hash(&json!({"FBillNo": "RK1", "FQty": 2})),
            "b1bd9668c9770f499f2881a3e1f4cf18"
        );
    }
}
