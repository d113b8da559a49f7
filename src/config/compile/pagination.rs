//! Compiling a read operation's `pagination` into a [`Pagination`] strategy.
//!
//! Every read operation must say how it pages: without it, the first answer would be taken
//! for the whole window (the silent loss of issue 10). Each strategy's keys are checked here,
//! with a hint naming what is missing, so nothing about paging can fail on page 3 of a run.

use crate::config::model::{CursorFrom, Pagination, PagingStrategy};
use crate::config::raw::{OperationKind, PaginationStrategy, RawOperation, RawPagination};
use crate::config::yaml::{Document, YamlPath};

use super::{Compiler, Context};

/// The operation's pagination; `None` (with an error for a read operation) when it has none.
pub(super) fn compile_pagination(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    name: &str,
    raw: &RawOperation,
) -> Option<Pagination> {
    let Some(p) = raw.pagination.as_ref() else {
        if raw.kind == OperationKind::Read {
            cx.error(
                format!("read operation `{name}` does not say how it pages"),
                doc.locate_key(path),
                Some(
                    "add `pagination: { strategy: … }` (`page`, `offset`, `cursor`, `link`, `next_url`), or `pagination: { strategy: none }` when one answer holds the whole window".into(),
                ),
            );
        }
        return None;
    };
    let path = path.key("pagination");
    let strategy = p.strategy.unwrap_or(PaginationStrategy::Page);
    misplaced_keys(cx, doc, &path, p, strategy);
    if p.max_page_size == Some(0) {
        cx.error(
            "`max_page_size` must be at least 1",
            doc.locate(&path.key("max_page_size")),
            None,
        );
    }
    let max_page_size = p.max_page_size.map(|size| size.max(1));
    if matches!(
        strategy,
        PaginationStrategy::Page | PaginationStrategy::Offset
    ) && max_page_size.is_none()
        // Written but of the wrong shape: that error is already reported.
        && doc.position(&path.key("max_page_size")).is_none()
    {
        cx.error(
            format!(
                "pagination `{}` needs `max_page_size`",
                strategy_name(strategy)
            ),
            doc.locate_key(&path),
            Some("the largest page the API gives, e.g. `max_page_size: 100`".into()),
        );
    }
    let has_more = p
        .has_more
        .as_ref()
        .and_then(|text| cx.expression(doc, &path.key("has_more"), text, Context::Envelope));
    let strategy = match strategy {
        PaginationStrategy::Page => PagingStrategy::Page {
            first_page: p.first_page.unwrap_or(0),
            total_on_first_page_only: p.total_on_first_page_only.unwrap_or(false),
        },
        PaginationStrategy::Offset => PagingStrategy::Offset,
        PaginationStrategy::Cursor => {
            let from = match (&p.cursor, &p.cursor_header) {
                (Some(text), None) => cx
                    .json_path(doc, &path.key("cursor"), text)
                    .map(CursorFrom::Body)?,
                (None, Some(header)) => CursorFrom::Header(header.to_ascii_lowercase()),
                (Some(_), Some(_)) => {
                    cx.error(
                        "pagination `cursor` takes the token from `cursor` or `cursor_header`, not both",
                        doc.locate(&path.key("cursor_header")),
                        None,
                    );
                    return None;
                }
                (None, None) => {
                    cx.error(
                        "pagination `cursor` needs `cursor` (a JSONPath of the body) or `cursor_header`",
                        doc.locate_key(&path),
                        Some("e.g. `cursor: $.paging.next.after`".into()),
                    );
                    return None;
                }
            };
            PagingStrategy::Cursor { from, has_more }
        }
        PaginationStrategy::Link => PagingStrategy::Link { has_more },
        PaginationStrategy::NextUrl => {
            let Some(text) = &p.next_url else {
                cx.error(
                    "pagination `next_url` needs `next_url`, the JSONPath of the next page's URL",
                    doc.locate_key(&path),
                    Some("e.g. `next_url: $.links.next`".into()),
                );
                return None;
            };
            let json_path = cx.json_path(doc, &path.key("next_url"), text)?;
            PagingStrategy::NextUrl {
                path: json_path,
                has_more,
            }
        }
        PaginationStrategy::None => {
            if p.max_page_size.is_none() && p.total_header.is_none() && raw.total.is_none() {
                // Nothing would show an answer cut off at the API's default page size.
                cx.warning(
                    "pagination `none` without `max_page_size` or a total cannot tell one answer cut off at the API's page size from the whole window: give `max_page_size` (the most records the API returns at once), `total` or `total_header`",
                    doc.locate_key(&path),
                );
            }
            PagingStrategy::None
        }
    };
    if p.total_header.is_some() && raw.total.is_some() {
        cx.error(
            "the total comes from `total` or `pagination.total_header`, not both",
            doc.locate_key(&path.key("total_header")),
            None,
        );
    }
    Some(Pagination {
        strategy,
        max_page_size,
        total_header: p
            .total_header
            .as_ref()
            .map(|name| name.to_ascii_lowercase()),
    })
}

/// A key another strategy reads is an error: written here it would silently do nothing.
fn misplaced_keys(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    p: &RawPagination,
    strategy: PaginationStrategy,
) {
    use PaginationStrategy::{Cursor, Link, NextUrl, Page};
    let keys: [(&str, bool, &[PaginationStrategy]); 6] = [
        ("first_page", p.first_page.is_some(), &[Page]),
        (
            "total_on_first_page_only",
            p.total_on_first_page_only.is_some(),
            &[Page],
        ),
        ("cursor", p.cursor.is_some(), &[Cursor]),
        ("cursor_header", p.cursor_header.is_some(), &[Cursor]),
        ("has_more", p.has_more.is_some(), &[Cursor, Link, NextUrl]),
        ("next_url", p.next_url.is_some(), &[NextUrl]),
    ];
    for (key, given, used_by) in keys {
        if given && !used_by.contains(&strategy) {
            let users: Vec<String> = used_by
                .iter()
                .map(|s| format!("`{}`", strategy_name(*s)))
                .collect();
            cx.error(
                format!(
                    "`{key}` does nothing under pagination `{}`",
                    strategy_name(strategy)
                ),
                doc.locate_key(&path.key(key)),
                Some(format!(
                    "it is read by {}; remove it or set `strategy`",
                    users.join(", ")
                )),
            );
        }
    }
}

/// The placeholders a paging strategy needs in some source parameter.
pub(super) fn needed_placeholders(pagination: &Pagination) -> &'static [&'static str] {
    match pagination.strategy {
        PagingStrategy::Page { .. } => &["PAGINATION_START_PAGE", "PAGINATION_PAGE_SIZE"],
        PagingStrategy::Offset => &["PAGINATION_OFFSET", "PAGINATION_PAGE_SIZE"],
        PagingStrategy::Cursor { .. } => &["PAGINATION_CURSOR"],
        PagingStrategy::Link { .. } | PagingStrategy::NextUrl { .. } | PagingStrategy::None => &[],
    }
}

/// The placeholders a paging strategy does not give (another strategy's): a parameter
/// using one would fail on the first request.
pub(super) fn unavailable_placeholders(pagination: &Pagination) -> Vec<&'static str> {
    let mut unavailable = match pagination.strategy {
        PagingStrategy::Page { .. } => vec!["PAGINATION_OFFSET", "PAGINATION_CURSOR"],
        PagingStrategy::Offset => vec!["PAGINATION_START_PAGE", "PAGINATION_CURSOR"],
        PagingStrategy::Cursor { .. } => vec!["PAGINATION_START_PAGE", "PAGINATION_OFFSET"],
        PagingStrategy::Link { .. } | PagingStrategy::NextUrl { .. } | PagingStrategy::None => {
            vec![
                "PAGINATION_START_PAGE",
                "PAGINATION_OFFSET",
                "PAGINATION_CURSOR",
            ]
        }
    };
    if !pagination.numbered() && pagination.max_page_size.is_none() {
        unavailable.push("PAGINATION_PAGE_SIZE");
    }
    unavailable
}

pub(super) fn strategy_name(strategy: PaginationStrategy) -> &'static str {
    match strategy {
        PaginationStrategy::Page => "page",
        PaginationStrategy::Offset => "offset",
        PaginationStrategy::Cursor => "cursor",
        PaginationStrategy::Link => "link",
        PaginationStrategy::NextUrl => "next_url",
        PaginationStrategy::None => "none",
    }
}
