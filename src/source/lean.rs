//! Reading records lean: each record of an answer parsed only for the fields the flow reads,
//! and kept as its JSON text for the rest.
//!
//! A WDT order has about 170 fields; the bundled flow reads about twenty. Building every field
//! of every record as a serde_json value was a fifth of a run's CPU, and most of the values
//! were only written out again for the ledger. When a flow's templates name the fields they
//! read (`record::mapped_fields`), the reader asks the client for a lean parse: the answer is
//! parsed as usual except its records list, whose items are each kept as their text and parsed
//! for those fields only (`projected::parse_fields`). The mapping sees what it would
//! see of the whole record; the ledger packs the text, which reads back as the whole record.
//!
//! A records path is read lean only when nothing else can look inside its records:
//! - the path is plain names ending in a wildcard (`$.response.stockin_list[*]`);
//! - the pager reads no paths of the body (a cursor or a next URL may point into a record);
//! - the total's path does not go through the list;
//! - no envelope or pager template names the list, a path under it, or the whole `body`
//!   (`body.response.stockin_list | length`, `body | tojson`). A template reaching the list
//!   from a name above it by a subscript or a filter (`body.response | tojson`) sees each
//!   record with only the flow's fields.
//!
//! See `http::lean` for the parse itself.

use jsonpath_rust::parser::model::{Segment, Selector};

use crate::config::model::{Flow, JsonPath, PagingStrategy};
use crate::http::lean::Lean;
use crate::record;
use crate::source::answer::reads_body_paths;

/// The deepest records list read lean: a record read lean holds at most 100 levels of nesting
/// (`projected::risky`), which with the list's own stays within serde_json's 128.
const MAX_DEPTH: usize = 16;

/// How `flow`'s source operation can be read lean, or `None` when its records must be parsed
/// whole (see the module's rules).
pub fn plan(flow: &Flow) -> Option<Lean> {
    let operation = flow.source.operation();
    let list = list_names(operation.records.as_ref()?)?;
    // A record is nested below the list; `projected::risky` counts on it being near the top.
    if list.len() > MAX_DEPTH {
        return None;
    }
    if let Some(pagination) = &operation.pagination
        && reads_body_paths(&pagination.strategy)
    {
        return None;
    }
    if let Some(total) = &operation.total
        && reaches(total, &list)
    {
        return None;
    }
    // The templates that see this operation's answers: its envelope and its pager's.
    let envelope = operation.envelope.as_ref()?;
    let has_more = operation
        .pagination
        .as_ref()
        .and_then(|p| match &p.strategy {
            PagingStrategy::Link { has_more } => *has_more,
            _ => None,
        });
    let ids = [envelope.success, envelope.message]
        .into_iter()
        .chain(envelope.code)
        .chain(envelope.retryable)
        .chain(envelope.throttled)
        .chain(envelope.reauth)
        .chain(envelope.fatal)
        .chain(has_more);
    for id in ids {
        // A template whose reads cannot be told may read anything.
        let names = flow.envelopes.reads(id)?;
        if names.iter().any(|name| reads_records(name, &list)) {
            return None;
        }
    }
    Some(Lean {
        list,
        fields: record::mapped_fields(flow)?,
    })
}

/// Whether a template reading `name` (as minijinja names what it reads: `body.response.flag`)
/// may see inside the records of the list at `list`: it names the whole body, the list or
/// something under it.
fn reads_records(name: &str, list: &[String]) -> bool {
    let mut parts = name.split('.');
    if parts.next() != Some("body") {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    let diverges = rest.iter().zip(list).any(|(read, listed)| read != listed);
    rest.is_empty() || !diverges && rest.len() >= list.len()
}

/// The names of a records path of plain names ending in a wildcard.
fn list_names(path: &JsonPath) -> Option<Vec<String>> {
    let (Segment::Selector(Selector::Wildcard), parents) = path.query.segments.split_last()? else {
        return None;
    };
    parents
        .iter()
        .map(|segment| match segment {
            Segment::Selector(Selector::Name(name)) => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// Whether `path` may select something inside the list at `list` (anything but plain names
/// that leave the list's path counts).
fn reaches(path: &JsonPath, list: &[String]) -> bool {
    let mut names = Vec::new();
    for segment in &path.query.segments {
        match segment {
            Segment::Selector(Selector::Name(name)) => names.push(name.to_string()),
            _ => return true,
        }
    }
    !names.iter().zip(list).any(|(name, listed)| name != listed) && names.len() >= list.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled_flow() -> Flow {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = crate::config::load_flow(&root.join("mappings/refund.yaml"));
        loaded.value.expect("the bundled flow loads")
    }

    #[test]
    fn the_bundled_flow_reads_its_orders_lean() {
        let flow = bundled_flow();
        let lean = plan(&flow).expect("read lean");
        assert_eq!(lean.list, ["response", "stockin_list"]);
        assert_eq!(Some(lean.fields), record::mapped_fields(&flow));
    }

    #[test]
    fn a_template_naming_the_records_or_the_whole_body_keeps_them_whole() {
        let list = ["response".to_string(), "stockin_list".to_string()];
        let cases = [
            ("body.response.flag", false),
            ("body.response", false),
            ("body.error_response.code", false),
            ("headers.link", false),
            ("status", false),
            ("body", true),
            ("body.response.stockin_list", true),
            ("body.response.stockin_list.order_no", true),
        ];
        for (name, reads) in cases {
            assert_eq!(reads_records(name, &list), reads, "{name}");
        }
    }

    #[test]
    fn a_path_that_may_select_inside_the_records_is_told_apart() {
        let list = ["response".to_string(), "stockin_list".to_string()];
        let path = JsonPath::of;
        assert!(!reaches(&path("$.response.total_count"), &list));
        assert!(!reaches(&path("$.total"), &list));
        assert!(reaches(&path("$.response.stockin_list[0].total"), &list));
        assert!(reaches(&path("$..total"), &list));
        assert_eq!(
            list_names(&path("$.response.stockin_list[*]")),
            Some(list.to_vec())
        );
        assert_eq!(list_names(&path("$.response.stockin_list[0]")), None);
        assert_eq!(list_names(&path("$..stockin_list[*]")), None);
    }
}
