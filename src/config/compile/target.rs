//! A flow's `target:` against its connector: the write operation and its lookup, their
//! parameters, the batch size, the concurrency, updates and what is kept of each record.

use crate::config::model::{Batch, Target};
use crate::config::raw::{OnChange, OperationKind, RawFlow};
use crate::config::yaml::{Document, YamlPath};
use crate::error::Location;

use super::checks::check_params_schema;
use super::concurrency::target_concurrency;
use super::connector::{check_required_params, find_operation, merge_params};
use super::write::Reads;
use super::{Compiler, ConnectorSource, Context, constant_params, op_schema, update};

/// The target of a flow written through an API connector, and where its lookup operation is
/// declared (for the checks of what the lookup reads); `None` after an error (reported).
pub(super) fn compile_target(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    conn: ConnectorSource,
) -> Option<(Target, Option<Location>)> {
    let root = YamlPath::root();
    let op_path = root.key("target").key("operation");
    let write = find_operation(
        cx,
        doc,
        &op_path,
        &conn,
        &raw.target.operation,
        OperationKind::Write,
    );
    let lookup_raw = raw.target.lookup.as_ref().and_then(|lookup| {
        find_operation(
            cx,
            doc,
            &root.key("target").key("lookup"),
            &conn,
            lookup,
            OperationKind::Lookup,
        )
    });
    let op_raw = write?;
    let op = conn.connector.operations.get(&raw.target.operation)?;
    let flow_params = (doc, &root.key("target").key("params"), &raw.target.params);
    let inputs = Context::TargetInputs(Reads::Params);
    let params = merge_params(cx, &conn, &raw.target.operation, flow_params, inputs);
    let lookup_params = match (&lookup_raw, &raw.target.lookup) {
        (Some(_), Some(lookup)) => merge_params(cx, &conn, lookup, flow_params, inputs),
        _ => Vec::new(),
    };
    check_required_params(
        cx,
        doc,
        &op_raw,
        &raw.target.operation,
        &params,
        &root.key("target"),
    );
    if let (Some(lookup_op), Some(lookup)) = (&lookup_raw, &raw.target.lookup) {
        check_required_params(
            cx,
            doc,
            lookup_op,
            lookup,
            &lookup_params,
            &root.key("target"),
        );
    }
    let batch = op.batch.unwrap_or(Batch {
        max_size: 1,
        default_size: 1,
        concurrency: 1,
    });
    let batch_size = match raw.target.batch_size {
        Some(size) if conn.clean && (size == 0 || size > batch.max_size) => {
            cx.error(
                format!(
                    "`batch_size` {size} is outside what `{}` accepts (1 to {})",
                    raw.target.operation, batch.max_size
                ),
                doc.locate(&root.key("target").key("batch_size")),
                None,
            );
            batch.default_size
        }
        Some(size) => size,
        None => batch.default_size,
    };
    let concurrency = target_concurrency(cx, doc, &root, &raw.target, batch.concurrency);
    if raw.target.lookup.is_none() {
        cx.warning(
            "the target has no `lookup`: a write whose outcome is unknown (timeout, crash) cannot be verified before it is sent again",
            doc.locate_key(&root.key("target")),
        );
    }
    check_params_schema(
        cx,
        doc,
        &conn,
        (&raw.target.operation, &op_raw),
        &raw.target.params,
    );
    let update = update::compile_update(cx, doc, raw, &conn);
    let param_values = constant_params(&params);
    let record_schema = op_schema(cx, &conn, &raw.target.operation, &param_values);
    let lookup_at = (raw.target.lookup.as_ref())
        .filter(|_| lookup_raw.is_some())
        .map(|name| conn.doc.locate_key(&root.key("operations").key(name)));
    let target = Target {
        connector: conn.connector,
        operation: raw.target.operation.clone(),
        params,
        batch_size,
        concurrency,
        lookup: raw.target.lookup.clone().filter(|_| lookup_raw.is_some()),
        lookup_params,
        on_change: raw.target.on_change.unwrap_or(OnChange::Skip),
        update,
        allow_unaudit: raw.target.allow_unaudit.unwrap_or(false),
        keep_records: raw.target.keep_records.unwrap_or(true),
        record_schema,
    };
    Some((target, lookup_at))
}
