//! A conflict's field diff: what the target holds (the mapped record last sent, which the
//! ledger keeps) against what the record maps to now (its newest source, with the flow as it
//! is now), field by field, as `engine resend --dry-run` prints it. Reads the ledger; sends
//! nothing.

use std::sync::Arc;

use super::html::{escape, label, table};
use crate::config::model::Flow;
use crate::error::Result;
use crate::record;
use crate::run::resend;
use crate::state::{Entry, Store};

/// The diff of one conflict as HTML, or a sentence saying why there is none.
pub fn diff_html(flow: &Flow, store: &Store, entry: &Entry) -> Result<String> {
    let Some(kept) = store.kept(&flow.name, &entry.key)? else {
        return Ok(note(
            "账本未保留此记录的内容（流程设置了 keep_records: false，或记录写入早于此功能）。",
            "The ledger keeps no content of this record (`keep_records: false`, or it was written before the ledger kept records).",
        ));
    };
    let Some(sent) = kept.sent else {
        return Ok(note(
            "账本未保留目标中的版本。",
            "The ledger does not hold the version the target has.",
        ));
    };
    let source = entry.source.clone().unwrap_or(kept.source);
    let now = match record::map(flow, Arc::new(source)) {
        Ok(mapped) => mapped.target(),
        Err(failure) => {
            return Ok(format!(
                "<p class=\"error\">{}: {}</p>",
                label("现在无法映射", "It cannot be mapped now"),
                escape(&failure.error.message)
            ));
        }
    };
    let changes = resend::diff(&sent, &now);
    if changes.is_empty() {
        return Ok(note(
            "按当前流程映射，与目标中的版本相同。",
            "Mapped with the flow as it is now, it equals the version the target has.",
        ));
    }
    let show = |value: &Option<serde_json::Value>| match value {
        Some(value) => format!("<code>{}</code>", escape(&value.to_string())),
        None => label("（无）", "(none)"),
    };
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|change| {
            vec![
                format!("<code>{}</code>", escape(&change.path)),
                show(&change.old),
                show(&change.new),
            ]
        })
        .collect();
    let headers = [
        label("字段", "Field"),
        label("目标中", "In the target"),
        label("现在映射为", "Maps to now"),
    ];
    Ok(format!(
        "<div class=\"diff\">{}</div>",
        table(&headers, &rows)
    ))
}

fn note(zh: &str, en: &str) -> String {
    format!("<p>{}</p>", label(zh, en))
}
