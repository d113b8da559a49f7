//! Compiling how a flow carries a changed record to a key the target already holds: the flow's
//! `on_change: update | upsert`, `target.update` and `allow_unaudit`, and the parts of the
//! connector operations they use (`kind: update` with `audited`, `unaudit`, `reaudit`;
//! `kind: action` with `already`).
//!
//! An update or action reads `params`, `vars`, `env`, `key`, `target_id`, `target_number` and
//! (an update) `record`, checked like any other template. Nothing here sends anything:
//! `target::update` does, per record.

use crate::config::model::{Action, Update};
use crate::config::raw::{OnChange, OperationKind, RawFlow, RawOperation};
use crate::config::yaml::{Document, YamlPath};
use crate::template::TemplateId;

use super::write::Reads;
use super::{Compiler, ConnectorSource, Context, find_operation, merge_params};

/// What an update's body, path, query and headers read besides `params`, `vars` and `env`.
pub(super) const UPDATE_READS: &[&str] = &[
    "params",
    "record",
    "key",
    "target_id",
    "target_number",
    "vars",
    "env",
];

/// What an action's read: the same but the record.
pub(super) const ACTION_READS: &[&str] =
    &["params", "key", "target_id", "target_number", "vars", "env"];

/// An operation's `audited` and `already` expressions, each refused on a kind it does not
/// belong to, and `unaudit`/`reaudit` refused outside an update.
pub(super) fn operation_answers(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    name: &str,
    raw: &RawOperation,
) -> (Option<TemplateId>, Option<TemplateId>) {
    let misplaced = |cx: &mut Compiler, key: &str, kind: &str| {
        cx.error(
            format!("`{key}` belongs to an operation of kind `{kind}`; `{name}` is not one"),
            doc.locate_key(&path.key(key)),
            None,
        );
    };
    let is_update = raw.kind == OperationKind::Update;
    if !is_update {
        for (key, present) in [
            ("audited", raw.audited.is_some()),
            ("unaudit", !raw.unaudit.is_empty()),
            ("reaudit", !raw.reaudit.is_empty()),
        ] {
            if present {
                misplaced(cx, key, "update");
            }
        }
    }
    if raw.kind != OperationKind::Action && raw.already.is_some() {
        misplaced(cx, "already", "action");
    }
    if is_update && !raw.unaudit.is_empty() && raw.audited.is_none() {
        cx.error(
            format!("operation `{name}` has `unaudit` but no `audited` to say when to use it"),
            doc.locate_key(&path.key("unaudit")),
            Some("an expression over the answer, e.g. `body.code == 12`".into()),
        );
    }
    let expression = |cx: &mut Compiler, key: &str, text: &Option<String>| {
        text.as_ref()
            .and_then(|text| cx.expression(doc, &path.key(key), text, Context::Envelope))
    };
    let audited = expression(cx, "audited", &raw.audited);
    let already = expression(cx, "already", &raw.already);
    (audited, already)
}

/// The flow's way of sending changes: `None` unless `on_change` is `update` or `upsert` (and
/// then an error when it cannot be built).
pub(super) fn compile_update(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    conn: &ConnectorSource,
) -> Option<Update> {
    let target = YamlPath::root().key("target");
    let on_change = raw.target.on_change.unwrap_or(OnChange::Skip);
    let flow_params = (doc, &target.key("params"), &raw.target.params);
    let inputs = Context::TargetInputs(Reads::Params);
    if !on_change.sends_changes() {
        if let Some(update) = &raw.target.update {
            cx.warning(
                format!(
                    "`target.update` `{update}` is not used under `on_change: {}`; set `on_change: update` to send changes through it",
                    on_change.as_str()
                ),
                doc.locate(&target.key("update")),
            );
        }
        return None;
    }
    let name = match on_change {
        OnChange::Upsert => raw.target.operation.clone(),
        _ => {
            let Some(name) = raw.target.update.clone() else {
                let updates: Vec<String> = conn
                    .raw
                    .operations
                    .iter()
                    .filter(|(_, op)| op.kind == OperationKind::Update)
                    .map(|(name, _)| format!("`{name}`"))
                    .collect();
                cx.error(
                    "`on_change: update` needs `target.update`, the operation that sends a changed record",
                    doc.locate(&target.key("on_change")),
                    Some(match updates.is_empty() {
                        true => format!(
                            "connector `{}` has no operation of kind `update`; add one, or use `on_change: upsert` if `{}` creates or updates",
                            conn.raw.name, raw.target.operation
                        ),
                        false => format!("`update: …` with one of {}", updates.join(", ")),
                    }),
                );
                return None;
            };
            find_operation(
                cx,
                doc,
                &target.key("update"),
                conn,
                &name,
                OperationKind::Update,
            )?;
            refuse_writes_without_an_id(cx, doc, raw, conn);
            name
        }
    };
    let op = &conn.raw.operations[&name];
    let params = merge_params(cx, conn, &name, flow_params, inputs);
    let actions = |cx: &mut Compiler, names: &[String], key: &str| -> Vec<Action> {
        let at = YamlPath::root().key("operations").key(&name).key(key);
        names
            .iter()
            .enumerate()
            .filter_map(|(index, action)| {
                // The names are the connector's: a wrong one is reported there.
                find_operation(
                    cx,
                    &conn.doc,
                    &at.index(index),
                    conn,
                    action,
                    OperationKind::Action,
                )?;
                Some(Action {
                    operation: action.clone(),
                    params: merge_params(cx, conn, action, flow_params, inputs),
                })
            })
            .collect()
    };
    let unaudit = actions(cx, &op.unaudit, "unaudit");
    let reaudit = actions(cx, &op.reaudit, "reaudit");
    if raw.target.allow_unaudit == Some(true) && op.unaudit.is_empty() {
        cx.warning(
            format!("`allow_unaudit` has no effect: operation `{name}` lists no `unaudit` actions"),
            doc.locate(&target.key("allow_unaudit")),
        );
    }
    Some(Update {
        operation: name,
        params,
        unaudit,
        reaudit,
    })
}

/// An update is sent by the target id the ledger recorded when the record was written. A
/// one-record write that reads no id from its answer, in a flow without a lookup to find it,
/// leaves none: every change would be parked at run time.
fn refuse_writes_without_an_id(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    conn: &ConnectorSource,
) {
    let Some(write) = conn.raw.operations.get(&raw.target.operation) else {
        return;
    };
    let reads_id = write.results.as_ref().is_some_and(|r| r.id.is_some());
    if write.batch.is_some() || reads_id || raw.target.lookup.is_some() {
        return;
    }
    cx.error(
        format!(
            "`on_change: update` sends a change by the target id, and operation `{}` learns none: it has no `results.id` and the flow no `target.lookup`",
            raw.target.operation
        ),
        doc.locate(&YamlPath::root().key("target").key("on_change")),
        Some(format!(
            "give operation `{}` a `results: {{ id: \"body.id\" }}` (or read it from a header, `headers.location | split('/') | last`), or add a `target.lookup` whose `rows.id` finds it",
            raw.target.operation
        )),
    );
}
