//! A flow's `source:` against its connector: the read operation, its parameters (and the
//! placeholders they use), the page size and the window.

use serde_json::Value as Json;

use crate::config::model::{Operation, Source, Window};
use crate::config::raw::{OperationKind, RawFlow};
use crate::config::yaml::{Document, YamlPath};
use crate::template::Leaf;
use crate::time;

use super::checks::check_placeholders;
use super::connector::{find_operation, merge_params};
use super::{Compiler, ConnectorSource, Context, op_schema, request};

/// The source of a flow read through an API connector; `None` after an error (reported).
pub(super) fn compile_source(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    conn: ConnectorSource,
) -> Option<Source> {
    let root = YamlPath::root();
    let op_path = root.key("source").key("operation");
    find_operation(
        cx,
        doc,
        &op_path,
        &conn,
        &raw.source.operation,
        OperationKind::Read,
    )?;
    // An operation whose connector failed to compile is missing here; its errors are reported.
    let op = conn.connector.operations.get(&raw.source.operation)?;
    let params = merge_params(
        cx,
        &conn,
        &raw.source.operation,
        (doc, &root.key("source").key("params"), &raw.source.params),
        Context::SourceParams,
    );
    let max_page_size = op.pagination.as_ref().and_then(|p| p.max_page_size);
    let page_size = match (max_page_size, raw.source.page_size) {
        // Against a connector with errors the limits may be stand-ins: not compared.
        (Some(max), Some(size)) if conn.clean && (size == 0 || size > max) => {
            cx.error(
                format!(
                    "`page_size` {size} is outside what `{}` accepts (1 to {})",
                    raw.source.operation, max
                ),
                doc.locate(&root.key("source").key("page_size")),
                None,
            );
            max
        }
        (Some(_), Some(size)) => size,
        (Some(max), None) => max,
        (None, size) => size.unwrap_or(0),
    };
    let mut window = compile_window(cx, doc, raw, op, conn.clean);
    let bounded = check_placeholders(cx, doc, &params, op, &raw.source.operation);
    if let Some(window) = window.as_mut() {
        window.open_ended = !bounded;
        request::check_open_ended(cx, doc, raw, window);
    }
    let record_schema = op_schema(cx, &conn, &raw.source.operation, &[]);
    Some(Source {
        connector: conn.connector,
        operation: raw.source.operation.clone(),
        params,
        page_size,
        window,
        record_schema,
    })
}

/// `source.window` against the operation's window: `None` when the operation has none.
pub(super) fn compile_window(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    op: &Operation,
    clean: bool,
) -> Option<Window> {
    let path = YamlPath::root().key("source").key("window");
    match (&op.window, &raw.source.window) {
        (None, None) => None,
        (None, Some(_)) => {
            cx.warning(
                format!(
                    "operation `{}` has no time window; `window` is ignored",
                    raw.source.operation
                ),
                doc.locate_key(&path),
            );
            None
        }
        (Some(_), None) => {
            cx.error(
                format!("operation `{}` reads by time window; the flow needs `window.start`", raw.source.operation),
                doc.locate_key(&YamlPath::root().key("source")),
                Some("add `window: { start: \"2024-01-01 00:00:00\" }` under `source`: where the first run begins".into()),
            );
            None
        }
        (Some(op_window), Some(window)) => {
            let start = cx.leaf(doc, &path.key("start"), &window.start, Context::FlowSetting);
            if let Leaf::Literal(Json::String(text)) = &start
                && let Err(message) = time::parse_instant(text)
            {
                cx.error(message, doc.locate(&path.key("start")), None);
            }
            let lag = cx.span(
                doc,
                &path.key("lag"),
                window.lag.as_deref(),
                chrono::Duration::minutes(1),
            );
            let lookback = cx.span(
                doc,
                &path.key("lookback"),
                window.lookback.as_deref(),
                chrono::Duration::minutes(5),
            );
            let max_span = cx.span(
                doc,
                &path.key("max_span"),
                window.max_span.as_deref(),
                op_window.max_span,
            );
            if clean && max_span > op_window.max_span {
                cx.error(
                    format!(
                        "`max_span` {} is longer than `{}` allows ({})",
                        time::format_span(max_span),
                        raw.source.operation,
                        time::format_span(op_window.max_span)
                    ),
                    doc.locate(&path.key("max_span")),
                    None,
                );
            }
            if max_span <= chrono::Duration::zero() {
                cx.error(
                    "`max_span` must be longer than zero",
                    doc.locate(&path.key("max_span")),
                    None,
                );
            }
            Some(Window {
                start,
                lag,
                lookback,
                max_span: max_span.min(op_window.max_span),
                field: op_window.field.clone(),
                open_ended: false,
            })
        }
    }
}
