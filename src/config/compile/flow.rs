//! A flow file compiled: its name, its source and target against their connectors, its key
//! and mapping, the checks of its templates, and its schedule.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::model::{Flow, Key};
use crate::config::raw::RawFlow;
use crate::config::yaml::{Document, YamlPath};
use crate::template;
use crate::value_map::ValueMaps;

use super::connector::load_connector_for;
use super::mapping::{Compiled, build_and_check, compile_key, compile_mapping};
use super::schedule::compile_schedule;
use super::source::compile_source;
use super::target::compile_target;
use super::{Compiler, file};

pub(super) fn compile_flow(
    cx: &mut Compiler,
    doc: &Document,
    raw: RawFlow,
    file: &Path,
    flow_dir: &Path,
    value_maps: Arc<ValueMaps>,
) -> Option<Flow> {
    let root = YamlPath::root();
    if raw.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        cx.error(
            "`name` is empty",
            doc.locate(&root.key("name")),
            Some("the name keys the flow's saved state; leave it out to use the file name".into()),
        );
    }
    let name = raw.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let source_conn = load_connector_for(
        cx,
        doc,
        &root.key("source").key("connector"),
        &raw.source.connector,
        flow_dir,
    );
    let target_conn = load_connector_for(
        cx,
        doc,
        &root.key("target").key("connector"),
        &raw.target.connector,
        flow_dir,
    );
    let source = source_conn.and_then(|conn| {
        if conn.connector.files.is_some() {
            file::source(cx, doc, &raw, conn)
        } else {
            compile_source(cx, doc, &raw, conn)
        }
    });
    let (target, lookup_at) = match target_conn {
        Some(conn) if conn.connector.files.is_some() => (file::target(cx, doc, &raw, conn), None),
        Some(conn) => compile_target(cx, doc, &raw, conn).unzip(),
        None => (None, None),
    };
    let lookup_at = lookup_at.flatten();

    let vars = Json::Object(
        raw.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let (key_source, key_modified) = compile_key(cx, doc, &raw);
    let mut mapping = compile_mapping(cx, doc, &raw);
    let compiled = Compiled {
        doc,
        raw: &raw,
        vars: &vars,
        value_maps: &value_maps,
        source: source.as_ref(),
        target: target.as_ref(),
        lookup_at,
        key: [key_source, key_modified],
    };
    let (strict, lenient) = build_and_check(cx, compiled, &mut mapping);

    let schedule = raw
        .schedule
        .as_ref()
        .and_then(|raw| compile_schedule(cx, doc, raw));
    let (source, target, key_source) = (source?, target?, key_source?);
    let vars_value = template::from_json(&vars);
    let mut record_names = vec![(Arc::from("vars"), vars_value.clone())];
    record_names.extend(template::filters::zone_names(
        source.connector.time_zone,
        target.connector.time_zone,
    ));
    Some(Flow {
        name,
        file: file.to_path_buf(),
        description: raw.description,
        source,
        target,
        key: Key {
            source: key_source,
            target: raw.key.target,
            modified: key_modified,
        },
        vars_value,
        record_names,
        vars,
        value_maps,
        mapping,
        templates: strict,
        envelopes: lenient,
        schedule,
    })
}
