//! Compiling the target side of a connector: what a write's or a lookup's templates may read
//! ([`Reads`]), the `results` of a write (batch lists of items, or one record's answer) and the
//! `rows` of a lookup, and the checks that a lookup's key reaches its request.
//!
//! A write with `batch:` sends several records per call and reads `records` and `keys`; one
//! without sends one record per call and reads `record` and `key`, and its answer is that
//! record's result. A lookup reads `keys`, and `key` when it takes one key per call
//! (`rows.max_keys: 1`). Nothing here evaluates a template.

use crate::config::model::{
    BatchResults, MatchedBy, OneResults, Operation, ResultLists, Results, Rows,
};
use crate::config::raw::{Encoding, HttpMethod, OperationKind, RawOperation, RawResults};
use crate::config::yaml::{Document, YamlPath};
use crate::error::Location;
use crate::template::{TemplateId, TemplateSet};

use super::{Compiler, Context, collect_templates, request};

/// What an operation's request templates (path, query, headers, body) read besides `params`,
/// `vars` and `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reads {
    /// Nothing more (parameters, a source's request).
    Params,
    /// A batch write: `records` and `keys`.
    Records,
    /// A one-record write: `record` and `key`.
    Record,
    /// A lookup of many keys per call: `keys`.
    Keys,
    /// A lookup of one key per call: `keys` and `key`.
    Key,
    /// An update: one changed record by its target id (`compile::update`).
    Update,
    /// An action about one record by its target id.
    Action,
}

impl Reads {
    /// What operation `raw`'s templates read.
    pub(super) fn of(raw: &RawOperation) -> Reads {
        match raw.kind {
            OperationKind::Write if raw.batch.is_some() => Reads::Records,
            OperationKind::Write => Reads::Record,
            OperationKind::Lookup if raw.rows.as_ref().and_then(|r| r.max_keys) == Some(1) => {
                Reads::Key
            }
            OperationKind::Lookup => Reads::Keys,
            OperationKind::Read => Reads::Params,
            OperationKind::Update => Reads::Update,
            OperationKind::Action => Reads::Action,
        }
    }

    /// Every name such a template may read.
    pub(super) fn roots(self) -> &'static [&'static str] {
        match self {
            Reads::Params => &["params", "vars", "env"],
            Reads::Records => &["params", "records", "keys", "vars", "env"],
            Reads::Record => &["params", "record", "key", "vars", "env"],
            Reads::Keys => &["params", "keys", "vars", "env"],
            Reads::Key => &["params", "keys", "key", "vars", "env"],
            Reads::Update => super::update::UPDATE_READS,
            Reads::Action => super::update::ACTION_READS,
        }
    }

    /// Such a template's body, for messages.
    pub(super) fn describe_body(self) -> &'static str {
        match self {
            Reads::Params => "target parameters",
            Reads::Records => "a batch write's body",
            Reads::Record => "a one-record write's body",
            Reads::Keys | Reads::Key => "a lookup body",
            Reads::Update => "an update's body",
            Reads::Action => "an action's body",
        }
    }

    /// Why `root` is not readable here, when it is readable by another kind of operation.
    pub(super) fn misread_hint(self, root: &str) -> Option<String> {
        match (self, root) {
            (Reads::Record, "records" | "keys") => Some(
                "this write sends one record per call (it has no `batch:`): read `record` and `key`, or add `batch: { max_size: … }` to send several".into(),
            ),
            (Reads::Records, "record" | "key") => Some(
                "this write sends batches (`batch:`): read `records` and `keys`, or remove `batch:` to send one record per call".into(),
            ),
            (Reads::Keys, "key") => Some(
                "this lookup takes up to `rows.max_keys` keys per call (default 100): read `keys`, or set `rows.max_keys: 1` to read `key`".into(),
            ),
            (Reads::Keys | Reads::Key, "record" | "records") => Some(
                "a lookup finds records by key: read `keys` (or `key` with `rows.max_keys: 1`)".into(),
            ),
            _ => None,
        }
    }
}

/// `results` of write operation `name` at `path`, after its shape was checked. A one-record
/// write needs none (its answer is the result): it gets the defaults.
pub(super) fn compile_results(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    name: &str,
    raw: &RawOperation,
) -> Option<Results> {
    if raw.kind != OperationKind::Write {
        return None;
    }
    let at = path.key("results");
    let given = raw.results.clone().unwrap_or_default();
    if raw.batch.is_none() {
        return Some(Results::One(compile_one(cx, doc, &at, name, &given)));
    }
    if raw.results.is_none() {
        cx.error(
            format!("operation `{name}` of kind `write` needs `results`"),
            doc.locate_key(path),
            Some("where the response reports each record's outcome, e.g. `results: { successes: \"$.saved[*]\", errors: \"$.errors[*]\", index: index, id: id, message: message }`".into()),
        );
        return None;
    }
    compile_batch(cx, doc, &at, name, &given).map(Results::Batch)
}

fn compile_one(
    cx: &mut Compiler,
    doc: &Document,
    at: &YamlPath,
    name: &str,
    raw: &RawResults,
) -> OneResults {
    let batch_only = [
        ("successes", raw.successes.is_some()),
        ("errors", raw.errors.is_some()),
        ("items", raw.items.is_some()),
        ("index", raw.index.is_some()),
        ("key", raw.key.is_some()),
        ("message", raw.message.is_some()),
        ("field", raw.field.is_some()),
    ];
    for (key, _) in batch_only.iter().filter(|(_, given)| *given) {
        cx.error(
            format!("`results.{key}` is for batch writes; operation `{name}` sends one record per call (it has no `batch:`)"),
            doc.locate_key(&at.key(key)),
            Some("the answer to a one-record write is its record's result: give `id` (and `number`, `duplicate`) as expressions over `body`, `status` and `headers`, e.g. `id: body.id`; the refusal's message is the envelope's `message`".into()),
        );
    }
    let mut expression = |key: &str, text: &Option<String>| {
        text.as_ref()
            .and_then(|text| cx.expression(doc, &at.key(key), text, Context::Envelope))
    };
    OneResults {
        id: expression("id", &raw.id),
        number: expression("number", &raw.number),
        duplicate: expression("duplicate", &raw.duplicate),
    }
}

fn compile_batch(
    cx: &mut Compiler,
    doc: &Document,
    at: &YamlPath,
    name: &str,
    raw: &RawResults,
) -> Option<BatchResults> {
    let mut complete = true;
    let mut need = |cx: &mut Compiler, what: &str, hint: &str| {
        complete = false;
        cx.error(
            format!("`results` of batch write `{name}` needs {what}"),
            doc.locate_key(at),
            Some(hint.to_string()),
        );
    };
    if raw.duplicate.is_some() {
        cx.error(
            format!("`results.duplicate` is for one-record writes; `{name}` sends batches"),
            doc.locate_key(&at.key("duplicate")),
            Some("a batch item refused as a duplicate is looked up like any refusal".into()),
        );
    }
    let lists = match (&raw.successes, &raw.errors, &raw.items) {
        (Some(successes), Some(errors), None) => {
            let successes = cx.json_path(doc, &at.key("successes"), successes);
            let errors = cx.json_path(doc, &at.key("errors"), errors);
            Some(ResultLists::Split {
                successes: successes?,
                errors: errors?,
            })
        }
        (None, None, Some(items)) => cx
            .json_path(doc, &at.key("items"), items)
            .map(ResultLists::Items),
        _ => {
            need(
                cx,
                "either `successes` and `errors`, or `items`",
                "`successes`/`errors`: JSONPaths of the saved and the refused items; `items`: one list where an item with an id is saved and one with a message refused",
            );
            None
        }
    };
    let matched_by = match (&raw.index, &raw.key, &lists) {
        (Some(index), None, _) => Some(MatchedBy::Index(index.clone())),
        (None, Some(key), _) => Some(MatchedBy::Key(key.clone())),
        (None, None, Some(ResultLists::Items(_))) => Some(MatchedBy::Order),
        (Some(_), Some(_), _) => {
            need(
                cx,
                "one of `index` and `key`, not both",
                "`index`: the item field with the record's position; `key`: the item field echoing the record key",
            );
            None
        }
        (None, None, _) => {
            need(
                cx,
                "`index` or `key`",
                "`index`: the item field with the record's position in the batch; `key`: the item field echoing the record key",
            );
            None
        }
    };
    if raw.id.is_none() {
        need(cx, "`id`", "the item field holding the target's id");
    }
    if raw.message.is_none() {
        need(
            cx,
            "`message`",
            "the item field holding a refusal's message",
        );
    }
    if !complete {
        return None;
    }
    Some(BatchResults {
        lists: lists?,
        matched_by: matched_by?,
        id: raw.id.clone()?,
        number: raw.number.clone(),
        message: raw.message.clone()?,
        field: raw.field.clone(),
    })
}

/// `rows` of lookup operation `raw` at `path`.
pub(super) fn compile_rows(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    raw: &RawOperation,
) -> Option<Rows> {
    let r = raw.rows.as_ref()?;
    let at = path.key("rows");
    let found = cx.json_path(doc, &at.key("path"), &r.path);
    let key = cx.expression(doc, &at.key("key"), &r.key, Context::Row);
    let id = cx.expression(doc, &at.key("id"), &r.id, Context::Row);
    let number = r
        .number
        .as_ref()
        .and_then(|text| cx.expression(doc, &at.key("number"), text, Context::Row));
    let not_found = r
        .not_found
        .as_ref()
        .and_then(|text| cx.expression(doc, &at.key("not_found"), text, Context::Envelope));
    // The list `rows.path` takes every item of: compiled here so that a lookup's answer
    // lacking it is told from an empty list.
    let list = (r.path.strip_suffix("[*]"))
        .filter(|list| found.is_some() && !list.is_empty())
        .and_then(|list| cx.json_path(doc, &at.key("path"), list));
    Some(Rows {
        path: found?,
        list,
        key: key?,
        id: id?,
        number,
        max_keys: r.max_keys.unwrap_or(100).max(1),
        not_found,
    })
}

/// The templates of an operation's request: path, query, headers and body.
pub(super) fn request_templates(op: &Operation) -> Vec<TemplateId> {
    let mut ids = request::request_templates(op);
    if let Some(body) = &op.body {
        collect_templates(body, &mut ids);
    }
    ids
}

/// A lookup whose request reads neither `key` nor `keys` asks the same question for every
/// record: its answer cannot tell which records are in the target.
pub(super) fn check_lookup_reads_keys(
    cx: &mut Compiler,
    set: &TemplateSet,
    op: &Operation,
    location: Location,
) {
    let ids = request_templates(op);
    let reads_a_key = ids.iter().any(|id| {
        set.undeclared(*id).iter().any(|name| {
            let root = name.split('.').next().unwrap_or(name);
            root == "key" || root == "keys"
        })
    });
    if !reads_a_key {
        let one = op.rows.as_ref().is_some_and(|rows| rows.max_keys == 1);
        let hint = if one {
            "put the key where the API expects it, e.g. `path: /customers/{{ key }}` or `query: { external_id: \"{{ key }}\" }`"
        } else {
            "send the keys, e.g. `body: { numbers: \"{{ keys }}\" }`; for an API that takes one key per call set `rows.max_keys: 1` and write `query: { external_id: \"{{ key }}\" }`"
        };
        cx.error(
            format!(
                "lookup `{}` reads neither `key` nor `keys`: its request is the same for every record",
                op.name
            ),
            location,
            Some(hint.into()),
        );
    }
}

/// A body that is missing where the operation needs one: a write or a lookup with
/// `encoding: json`.
pub(super) fn body_is_missing(raw: &RawOperation) -> bool {
    raw.body.is_none()
        && raw.encoding == Encoding::Json
        && raw.kind != OperationKind::Read
        && !(raw.kind == OperationKind::Lookup && raw.method == Some(HttpMethod::Get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_operation_reads_its_own_names() {
        let operation = |yaml: &str| -> RawOperation { serde_yaml::from_str(yaml).unwrap() };
        let table = [
            ("{kind: read, encoding: query}", Reads::Params, None),
            (
                "{kind: write, encoding: json, batch: {max_size: 5}}",
                Reads::Records,
                Some("record"),
            ),
            (
                "{kind: write, encoding: json}",
                Reads::Record,
                Some("records"),
            ),
            (
                "{kind: lookup, encoding: json, rows: {path: $, key: row.k, id: row.i}}",
                Reads::Keys,
                Some("key"),
            ),
            (
                "{kind: lookup, encoding: query, rows: {path: $, key: row.k, id: row.i, max_keys: 1}}",
                Reads::Key,
                Some("record"),
            ),
        ];
        for (yaml, reads, misread) in table {
            assert_eq!(Reads::of(&operation(yaml)), reads, "{yaml}");
            if let Some(name) = misread {
                assert!(!reads.roots().contains(&name), "{yaml}");
                assert!(reads.misread_hint(name).is_some(), "{yaml}");
            }
        }
        assert!(Reads::Key.roots().contains(&"key") && Reads::Key.roots().contains(&"keys"));
    }
}
