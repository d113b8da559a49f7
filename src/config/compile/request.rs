//! Compiling the request side of an operation and of a connector: the templated path (cut
//! into segments), query parameters and headers, the base URL's scheme and the time zone.
//!
//! The path, query and headers of an operation read the request's context (`params`, `vars`,
//! `env`, and what [`Reads`] says a write or a lookup reads), checked like a body's. Nothing
//! here evaluates a template: `request` does, per call.

use crate::config::model::{Operation, RequestPath, Window};
use crate::config::raw::{RawConnector, RawFlow, RawOperation};
use crate::config::yaml::{Document, YamlPath};
use crate::template::{Leaf, TemplateId};
use crate::time::{self, Zone};

use super::write::Reads;
use super::{Compiler, Context};

/// Named templates: query parameters or headers.
type NamedLeaves = Vec<(String, Leaf)>;

/// The path, query parameters and headers of operation `raw` at `path`.
pub(super) fn compile_parts(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    raw: &RawOperation,
) -> (RequestPath, NamedLeaves, NamedLeaves) {
    let context = Context::Request(Reads::of(raw));
    let text = raw.path.clone().unwrap_or_default();
    let segments = split_path(&text)
        .into_iter()
        .map(|segment| cx.leaf(doc, &path.key("path"), segment, context))
        .collect();
    let mut templated = |key: &str, map: &std::collections::BTreeMap<String, String>| {
        map.iter()
            .map(|(name, value)| {
                let leaf = cx.leaf(doc, &path.key(key).key(name), value, context);
                (name.clone(), leaf)
            })
            .collect::<Vec<_>>()
    };
    let query = templated("query", &raw.query);
    let headers = templated("headers", &raw.headers);
    (RequestPath { text, segments }, query, headers)
}

/// The templates of an operation's path, query and headers.
pub(super) fn request_templates(op: &Operation) -> Vec<TemplateId> {
    let named = op.query.iter().chain(&op.headers).map(|(_, leaf)| leaf);
    op.path
        .segments
        .iter()
        .chain(named)
        .filter_map(|leaf| match leaf {
            Leaf::Template(id) => Some(*id),
            Leaf::Literal(_) => None,
        })
        .collect()
}

/// `text` cut at every `/` outside a template tag (`{{ }}`, `{% %}`, `{# #}`), so that an
/// expression such as `{{ a ~ '/' ~ b }}` stays whole.
pub(super) fn split_path(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut start = 0;
    let mut inside: Option<u8> = None;
    let mut at = 0;
    while at < bytes.len() {
        let pair = (bytes[at], bytes.get(at + 1).copied());
        match (inside, pair) {
            (None, (b'{', Some(open @ (b'{' | b'%' | b'#')))) => {
                inside = Some(if open == b'{' { b'}' } else { open });
                at += 2;
                continue;
            }
            (Some(close), (first, Some(b'}'))) if first == close => {
                inside = None;
                at += 2;
                continue;
            }
            (None, (b'/', _)) => {
                segments.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
        at += 1;
    }
    segments.push(&text[start..]);
    segments
}

/// The connector's `time_zone`, `Asia/Shanghai` when it names none.
pub(super) fn compile_time_zone(cx: &mut Compiler, doc: &Document, raw: &RawConnector) -> Zone {
    let Some(text) = raw.time_zone.as_deref() else {
        return time::DEFAULT_ZONE;
    };
    Zone::parse(text).unwrap_or_else(|message| {
        cx.error(
            message,
            doc.locate(&YamlPath::root().key("time_zone")),
            Some(
                "e.g. `time_zone: UTC`, `time_zone: Asia/Shanghai` or `time_zone: \"+08:00\"`"
                    .into(),
            ),
        );
        time::DEFAULT_ZONE
    })
}

/// A `base_url` whose scheme is written out must be `http` or `https`: `engine` sends HTTP
/// requests only, and a `file://` or `ftp://` URL would fail on the first call of a run.
pub(super) fn check_base_url(cx: &mut Compiler, doc: &Document, base_url: &str) {
    let text = base_url.trim();
    let Some((scheme, _)) = text.split_once("://") else {
        return;
    };
    if scheme.contains("{{") || scheme.contains("{%") {
        return;
    }
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        cx.error(
            format!("`base_url` is a `{scheme}://` URL; engine calls APIs over `http://` or `https://` only"),
            doc.locate(&YamlPath::root().key("base_url")),
            Some(if scheme.eq_ignore_ascii_case("file") {
                crate::file::FILE_URL_HINT.into()
            } else {
                "write the API's address, e.g. `https://api.example.com/v1` or `{{ env.API_BASE_URL }}`".into()
            }),
        );
    }
}

/// A window without an upper bound leaves records modified after its end for the next
/// window, which it can tell only by `key.modified`.
pub(super) fn check_open_ended(cx: &mut Compiler, doc: &Document, raw: &RawFlow, window: &Window) {
    if window.open_ended && raw.key.modified.is_none() {
        cx.error(
            format!(
                "operation `{}` is read without an upper bound (no parameter uses `CURRENT_TIME`), so the flow needs `key.modified`",
                raw.source.operation
            ),
            doc.locate_key(&YamlPath::root().key("key")),
            Some("add `modified: \"{{ updated_at }}\"` under `key` (the record's last-modified time): records modified after a window's end are left for the next run by it; or send the window's end with `{{CURRENT_TIME}}`".into()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_slashes_outside_template_tags() {
        let table: &[(&str, &[&str])] = &[
            ("", &[""]),
            ("Kingdee.X.common.kdsvc", &["Kingdee.X.common.kdsvc"]),
            (
                "/contacts/{{ records[0].id }}",
                &["", "contacts", "{{ records[0].id }}"],
            ),
            (
                "/a/{{ x ~ '/' ~ y }}/b",
                &["", "a", "{{ x ~ '/' ~ y }}", "b"],
            ),
            ("/a/{# a / note #}b/", &["", "a", "{# a / note #}b", ""]),
            ("v1/{{ params.id }}.json", &["v1", "{{ params.id }}.json"]),
        ];
        for (text, expected) in table {
            assert_eq!(&split_path(text), expected, "{text}");
        }
    }
}
