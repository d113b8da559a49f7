//! Compiling a file connector (`file:` instead of `base_url`) and the flow sides that use it.
//!
//! A file connector has no API: its `path`, `format`, `mode`, `columns` and `since` are
//! checked here, and it is given the two implicit operations a flow names, `read` (as a
//! source) and `write` (as a target), so that the rest of the engine sees an ordinary
//! connector. Reading and writing the files is `crate::file`'s.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::compile::source::compile_window;
use crate::config::compile::{Compiler, ConnectorSource, placeholder_envelope, tidy};
use crate::config::model::{
    Auth, Batch, Concurrency, Connector, FieldPath, FileConnector, Http, Operation,
    OperationWindow, Pagination, PagingStrategy, RequestPath, Source, Target,
};
use crate::config::raw::{
    Encoding, FileFormat, FileMode, FileSince, HttpMethod, OnChange, OperationKind, RawConnector,
    RawFile, RawFlow,
};
use crate::config::yaml::{Document, YamlPath};
use crate::file::naming::{self, Pattern};
use crate::template::Leaf;

/// The operation a flow names to read a file connector.
pub const READ: &str = "read";
/// The operation a flow names to write a file connector.
pub const WRITE: &str = "write";
/// Records per write (one temporary file and rename each) unless the flow says otherwise.
const DEFAULT_BATCH: u32 = 500;
const MAX_BATCH: u32 = 100_000;

const HTTP_KEYS_HINT: &str = "a file connector reads and writes `file.path`; leave out `base_url`, `auth`, `envelope` and `operations` (a flow names its operation `read` or `write`)";

/// A file connector: its `file:` section checked, the HTTP settings refused.
pub(super) fn compile_connector(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawConnector,
    spec: &RawFile,
    file: &Path,
    time_zone: crate::time::Zone,
) -> Connector {
    let root = YamlPath::root();
    for (key, present) in [
        ("base_url", raw.base_url.is_some()),
        ("auth", raw.auth.is_some()),
        ("envelope", raw.envelope.is_some()),
        ("operations", !raw.operations.is_empty()),
        ("params", !raw.params.is_empty()),
        ("headers", !raw.headers.is_empty()),
        ("http", raw.http.is_some()),
    ] {
        if present {
            cx.error(
                format!("a file connector has no `{key}`"),
                doc.locate_key(&root.key(key)),
                Some(HTTP_KEYS_HINT.into()),
            );
        }
    }
    let at = root.key("file");
    let mode = spec.mode.unwrap_or(FileMode::Append);
    if spec.path.trim().is_empty() {
        cx.error("`file.path` is empty", doc.locate(&at.key("path")), None);
    }
    match Pattern::parse(&spec.path) {
        Err(message) => cx.error(
            format!("`file.path`: {message}"),
            doc.locate(&at.key("path")),
            None,
        ),
        Ok(pattern) if mode == FileMode::PerRun && !pattern.has_time() => cx.error(
            "`mode: per_run` writes one file per run, but `file.path` has no `{time}`",
            doc.locate(&at.key("path")),
            Some("name the files by the run's time, e.g. `exports/refunds-{time}.csv`".into()),
        ),
        Ok(pattern) if mode != FileMode::PerRun && pattern.has_time() => cx.error(
            "`file.path` has `{time}`, which only `mode: per_run` fills in",
            doc.locate(&at.key("mode")),
            Some(
                "add `mode: per_run` (a new file per run), or take `{time}` out of the path".into(),
            ),
        ),
        Ok(_) => {}
    }
    if spec.columns.is_some() && spec.format != FileFormat::Csv {
        cx.error(
            "`file.columns` is for CSV files",
            doc.locate_key(&at.key("columns")),
            Some("JSON Lines write each mapped record whole; leave `columns` out".into()),
        );
    }
    let columns = spec.columns.as_ref().map(|columns| {
        if columns.is_empty() {
            cx.error(
                "`file.columns` is empty",
                doc.locate(&at.key("columns")),
                Some("list the columns, or leave `columns` out for the mapped record's top-level keys".into()),
            );
        }
        for (index, column) in columns.iter().enumerate() {
            if column.split('.').any(|segment| segment.trim().is_empty()) {
                cx.error(
                    format!("`{column}` is not a field path"),
                    doc.locate(&at.key("columns").index(index)),
                    Some("write field names joined by dots, e.g. `customer.name` or `lines.0.qty`".into()),
                );
            }
            if columns[..index].contains(column) {
                cx.error(
                    format!("column `{column}` is listed twice"),
                    doc.locate(&at.key("columns").index(index)),
                    None,
                );
            }
        }
        columns.iter().map(|c| FieldPath::parse(c)).collect()
    });
    let folder = file.parent().unwrap_or(Path::new("."));
    Connector {
        name: raw.name.clone(),
        file: file.to_path_buf(),
        description: raw.description.clone(),
        base_url: Leaf::Literal(serde_json::Value::Null),
        auth: Auth::None,
        headers: Vec::new(),
        envelope: placeholder_envelope(),
        http: Http::default(),
        operations: implicit_operations(),
        null_values: raw.null_values.clone().into(),
        time_zone,
        files: Some(FileConnector {
            path: tidy(&folder.join(&spec.path)),
            format: spec.format,
            mode,
            columns,
            since: spec.since.unwrap_or(FileSince::FileTime),
        }),
    }
}

fn implicit_operations() -> BTreeMap<String, Operation> {
    let operation = |name: &str, kind| Operation {
        name: name.to_string(),
        kind,
        method: HttpMethod::Post,
        path: RequestPath::default(),
        encoding: Encoding::Json,
        required_params: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        envelope: None,
        audited: None,
        already: None,
        records: None,
        records_absent_empty: false,
        total: None,
        pagination: (kind == OperationKind::Read).then_some(Pagination {
            strategy: PagingStrategy::None,
            max_page_size: None,
            total_header: None,
        }),
        window: (kind == OperationKind::Read).then_some(OperationWindow {
            max_span: chrono::Duration::days(3660),
            field: None,
        }),
        batch: (kind == OperationKind::Write).then_some(Batch {
            max_size: MAX_BATCH,
            default_size: DEFAULT_BATCH,
            concurrency: 1,
        }),
        results: None,
        rows: None,
    };
    BTreeMap::from([
        (READ.to_string(), operation(READ, OperationKind::Read)),
        (WRITE.to_string(), operation(WRITE, OperationKind::Write)),
    ])
}

/// A flow's operation on a file connector must be the implicit one.
fn check_operation(cx: &mut Compiler, doc: &Document, side: &str, given: &str, wanted: &str) {
    if given != wanted {
        cx.error(
            format!("a file connector's operation as a {side} is `{wanted}`, not `{given}`"),
            doc.locate(&YamlPath::root().key(side).key("operation")),
            Some(format!("write `operation: {wanted}`")),
        );
    }
}

fn refuse_params(cx: &mut Compiler, doc: &Document, side: &str, given: bool) {
    if given {
        cx.error(
            format!("a file connector takes no `{side}.params`"),
            doc.locate_key(&YamlPath::root().key(side).key("params")),
            Some("what is read and written is the connector's `file:`".into()),
        );
    }
}

/// The source side of a flow reading a file connector.
pub(super) fn source(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    conn: ConnectorSource,
) -> Option<Source> {
    check_operation(cx, doc, "source", &raw.source.operation, READ);
    refuse_params(cx, doc, "source", !raw.source.params.is_empty());
    if raw.source.page_size.is_some() {
        cx.warning(
            "a file source reads one line at a time; `page_size` is ignored",
            doc.locate_key(&YamlPath::root().key("source").key("page_size")),
        );
    }
    let spec = conn.connector.files.as_ref()?;
    if spec.since == FileSince::RecordTime && raw.key.modified.is_none() {
        cx.error(
            "`since: record_time` reads the lines modified within the window, so the flow needs `key.modified`",
            doc.locate_key(&YamlPath::root().key("key")),
            Some("add `modified: \"{{ updated_at }}\"` under `key`, or use `since: file_time`".into()),
        );
    }
    let window = match &raw.source.window {
        Some(_) => compile_window(cx, doc, raw, &conn.connector.operations[READ], conn.clean),
        None => None,
    };
    Some(Source {
        connector: conn.connector,
        operation: READ.to_string(),
        params: Vec::new(),
        page_size: DEFAULT_BATCH,
        window,
        record_schema: None,
    })
}

/// The target side of a flow writing a file connector.
pub(super) fn target(
    cx: &mut Compiler,
    doc: &Document,
    raw: &RawFlow,
    conn: ConnectorSource,
) -> Option<Target> {
    let root = YamlPath::root();
    check_operation(cx, doc, "target", &raw.target.operation, WRITE);
    refuse_params(cx, doc, "target", !raw.target.params.is_empty());
    if raw.target.lookup.is_some() {
        cx.error(
            "a file target has no `lookup`: it finds a record by reading its own files",
            doc.locate_key(&root.key("target").key("lookup")),
            Some("leave `lookup` out".into()),
        );
    }
    let spec = conn.connector.files.as_ref()?;
    if naming::has_glob(&spec.path.to_string_lossy()) {
        cx.error(
            format!(
                "`file.path` of `{}` is a glob; a target writes one file (or one per run)",
                conn.connector.name
            ),
            conn.doc.locate(&root.key("file").key("path")),
            Some("name the file; under `mode: per_run`, with `{time}` in its name".into()),
        );
    }
    if let Some(columns) = &spec.columns
        && !columns.iter().any(|c| c.text == raw.key.target)
    {
        cx.error(
            format!(
                "the CSV columns of `{}` leave out the key field `{}`",
                conn.connector.name, raw.key.target
            ),
            conn.doc.locate_key(&root.key("file").key("columns")),
            Some(format!(
                "add `{}` to `columns`: a record is found in the file by its key, so it is never written twice",
                raw.key.target
            )),
        );
    }
    let batch_size = match raw.target.batch_size {
        Some(size) if size == 0 || size > MAX_BATCH => {
            cx.error(
                format!(
                    "`batch_size` {size} is outside what a file target accepts (1 to {MAX_BATCH})"
                ),
                doc.locate(&root.key("target").key("batch_size")),
                None,
            );
            DEFAULT_BATCH
        }
        Some(size) => size,
        None => DEFAULT_BATCH,
    };
    // One batch at a time: each rewrites the file, so a second writer would only wait.
    for (key, given) in [
        ("concurrency", raw.target.concurrency.is_some()),
        ("max_concurrency", raw.target.max_concurrency.is_some()),
    ] {
        if given {
            cx.warning(
                format!("a file target writes one batch at a time; `{key}` is ignored"),
                doc.locate_key(&root.key("target").key(key)),
            );
        }
    }
    if raw.target.on_change.is_some_and(OnChange::sends_changes) {
        cx.error(
            "a file target takes no updates: `on_change` may be `skip` or `conflict`",
            doc.locate(&root.key("target").key("on_change")),
            None,
        );
    }
    Some(Target {
        connector: conn.connector,
        operation: WRITE.to_string(),
        params: Vec::new(),
        batch_size,
        concurrency: Concurrency::Fixed(1),
        lookup: None,
        lookup_params: Vec::new(),
        on_change: raw.target.on_change.unwrap_or(OnChange::Skip),
        update: None,
        allow_unaudit: false,
        keep_records: raw.target.keep_records.unwrap_or(true),
        record_schema: None,
    })
}
