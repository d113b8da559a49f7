//! `engine run` against REST sources in the common paging styles (`support::rest_mock`),
//! each described in YAML only: Stripe-like cursors, GitHub-like and Shopify-like `Link`
//! headers, HubSpot-like cursors in the body, an offset API. With a 500, a 429 and items
//! modified while a window is read, every item arrives at the target exactly once. And an
//! answer that signals more than the declared pagination follows fails the window (exit 4)
//! without moving the cursor: the corrected flow then delivers everything.

use std::collections::HashMap;

use chrono::Duration;

use crate::support::Output;
use crate::support::rest_mock::{Faults, RestMock, Style, shanghai};
use crate::support::workspace::Workspace;

/// Parameters of every source request: the window, and the style's paging parameters.
const WINDOW_PARAMS: &str = r#"since: "{{LAST_SYNC_TIME datetime}}"
      until: "{{CURRENT_TIME datetime}}""#;

/// The source connector: one read operation per style.
fn source_connector(url: &str) -> String {
    format!(
        r#"name: source
base_url: {url}
auth: {{ strategy: none }}
envelope: {{ success: "status == 200", message: "body.message or 'failed'" }}
http: {{ retry: {{ initial_backoff: 50ms, max_backoff: 200ms }} }}
operations:
  stripe:
    kind: read
    method: GET
    path: /v1/items
    encoding: query
    params:
      {WINDOW_PARAMS}
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
      starting_after: "{{{{PAGINATION_CURSOR}}}}"
    records: $.data[*]
    pagination: {{ strategy: cursor, cursor: "$.data[-1:].id", has_more: body.has_more, max_page_size: 100 }}
    window: {{ max_span: 30d, field: updated_at }}
  github:
    kind: read
    method: GET
    path: /issues
    encoding: query
    params:
      {WINDOW_PARAMS}
      per_page: "{{{{PAGINATION_PAGE_SIZE}}}}"
    records: $[*]
    pagination: {{ strategy: link, max_page_size: 100 }}
    window: {{ max_span: 30d, field: updated_at }}
  github_pages:
    kind: read
    method: GET
    path: /issues
    encoding: query
    params:
      {WINDOW_PARAMS}
      per_page: "{{{{PAGINATION_PAGE_SIZE}}}}"
      page: "{{{{PAGINATION_START_PAGE}}}}"
    records: $[*]
    pagination: {{ strategy: page, first_page: 1, max_page_size: 100, total_header: X-Total-Count }}
    window: {{ max_span: 30d, field: updated_at }}
  shopify:
    kind: read
    method: GET
    path: /admin/orders.json
    encoding: query
    params:
      {WINDOW_PARAMS}
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
    records: $.orders[*]
    pagination: {{ strategy: link, max_page_size: 250 }}
    window: {{ max_span: 30d, field: updated_at }}
  hubspot:
    kind: read
    method: GET
    path: /crm/contacts
    encoding: query
    params:
      {WINDOW_PARAMS}
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
      after: "{{{{PAGINATION_CURSOR}}}}"
    records: $.results[*]
    total: $.total
    pagination: {{ strategy: cursor, cursor: $.paging.next.after, max_page_size: 100 }}
    window: {{ max_span: 30d, field: updated_at }}
  hubspot_links:
    kind: read
    method: GET
    path: /crm/contacts
    encoding: query
    params:
      {WINDOW_PARAMS}
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
    records: $.results[*]
    total: $.total
    pagination: {{ strategy: next_url, next_url: $.paging.next.link, max_page_size: 100 }}
    window: {{ max_span: 30d, field: updated_at }}
  offset:
    kind: read
    method: GET
    path: /records
    encoding: query
    params:
      {WINDOW_PARAMS}
      offset: "{{{{PAGINATION_OFFSET}}}}"
      limit: "{{{{PAGINATION_PAGE_SIZE}}}}"
    records: $.items[*]
    total: $.total
    pagination: {{ strategy: offset, max_page_size: 100 }}
    window: {{ max_span: 30d, field: updated_at }}
"#
    )
}

/// The target: a batch write and a lookup by key on the same mock.
fn sink_connector(url: &str) -> String {
    format!(
        r#"name: sink
base_url: {url}
auth: {{ strategy: none }}
envelope: {{ success: "status == 200", message: "'failed'" }}
operations:
  write:
    kind: write
    path: /sink/write
    encoding: json
    body: {{ records: "{{{{ records }}}}" }}
    batch: {{ max_size: 50 }}
    results: {{ successes: "$.ok[*]", errors: "$.errors[*]", index: i, id: id, message: m }}
  find:
    kind: lookup
    path: /sink/lookup
    encoding: json
    body: {{ keys: "{{{{ keys }}}}" }}
    rows: {{ path: "$.rows[*]", key: row.key, id: row.id }}
"#
    )
}

/// A workspace whose flow reads `operation` of the mock at `url` into its sink.
fn workspace(url: &str, operation: &str) -> Workspace {
    let workspace = Workspace::empty();
    workspace.write("connectors/source.yaml", source_connector(url));
    workspace.write("connectors/sink.yaml", sink_connector(url));
    workspace.write(
        "flow.yaml",
        format!(
            r#"name: rest
source:
  connector: source
  operation: {operation}
  page_size: 7
  window: {{ start: "{start}", lag: 1s, lookback: 1s }}
target: {{ connector: sink, operation: write, lookup: find, batch_size: 20 }}
key: {{ source: "{{{{ id }}}}", target: id, modified: "{{{{ updated_at }}}}" }}
mapping:
  id: "{{{{ id | string }}}}"
  name: "{{{{ name }}}}"
"#,
            start = shanghai(Duration::days(3)),
        ),
    );
    workspace
}

fn run(workspace: &Workspace) -> Output {
    workspace.run_flow("flow.yaml")
}

/// Every item the mock holds was written exactly once, and nothing else.
#[track_caller]
fn assert_each_written_once(mock: &RestMock) {
    let expected: HashMap<String, u32> = mock.ids().iter().map(|id| (id.to_string(), 1)).collect();
    let written = mock.written();
    let mut wrong: Vec<_> = expected
        .keys()
        .chain(written.keys())
        .filter(|key| written.get(*key) != expected.get(*key))
        .map(|key| format!("{key}: {:?}", written.get(key)))
        .collect();
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "written not exactly once: {wrong:?}");
}

/// Faults during the first run: a 500 on request 2, a 429 (`Retry-After: 1`) on request 4,
/// and after request 3 the items in `modified` leave the window (modified now).
fn faults(modified: Vec<u64>) -> Faults {
    Faults {
        server_error_at: vec![2],
        throttle_at: vec![4],
        modify_after: vec![(3, modified)],
        ..Faults::default()
    }
}

/// Two runs (the second after the modified items' time has passed the window lag): every
/// item arrives exactly once.
fn sync_every_item_once(style: Style, operation: &str, modified: Vec<u64>) {
    let mock = RestMock::start(style, 60, faults(modified));
    let workspace = workspace(&mock.url, operation);
    run(&workspace)
        .success()
        .stderr_contains("answered HTTP 500")
        .stderr_contains("answered HTTP 429");
    assert!(mock.requests() > 9, "the window took several pages");
    // The modified items are now newer than the first run's window: the next run reads them.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    run(&workspace).success();
    assert_each_written_once(&mock);
}

#[test]
fn a_stripe_like_cursor_with_has_more_delivers_every_item_once() {
    // Keyset paging: an item modified behind the cursor (3) or ahead of it (40) moves no other.
    sync_every_item_once(Style::Stripe, "stripe", vec![3, 40]);
}

#[test]
fn a_github_like_link_header_with_page_numbers_delivers_every_item_once() {
    // Page numbers in links shift when an item already read (3) leaves the window: the pages
    // before the last link are read again, last first, and meet the item that slid back.
    sync_every_item_once(Style::GitHub, "github", vec![3, 40]);
}

#[test]
fn a_github_like_api_read_by_page_number_with_a_header_total_loses_no_item_left_behind() {
    // The same API described by `page` with the `X-Total-Count` header: the drift-safe page
    // order, so an item already read leaving the window (3) moves no other item out of reach.
    sync_every_item_once(Style::GitHub, "github_pages", vec![3, 40]);
}

#[test]
fn a_shopify_like_opaque_page_info_in_link_delivers_every_item_once() {
    sync_every_item_once(Style::Shopify, "shopify", vec![3, 40]);
}

#[test]
fn a_hubspot_like_cursor_in_the_body_delivers_every_item_once() {
    sync_every_item_once(Style::HubSpot, "hubspot", vec![3, 40]);
}

#[test]
fn a_next_url_in_the_body_delivers_every_item_once() {
    sync_every_item_once(Style::HubSpot, "hubspot_links", vec![3, 40]);
}

#[test]
fn a_next_url_to_another_origin_is_not_followed_and_fails_the_window() {
    let mock = RestMock::start(
        Style::HubSpot,
        30,
        Faults {
            foreign_next: true,
            ..Faults::default()
        },
    );
    let workspace = workspace(&mock.url, "hubspot_links");
    run(&workspace)
        .code(4)
        .stderr_contains("is on another origin than the connector's");
    assert_eq!(
        mock.foreign_requests(),
        0,
        "no request left the connector's origin"
    );
    mock.set_faults(Faults::default());
    run(&workspace).success();
    assert_each_written_once(&mock);
}

#[test]
fn an_offset_api_with_a_total_delivers_every_item_once() {
    // Offsets shift like page numbers; the drift-safe page plan reads them downwards.
    sync_every_item_once(Style::Offset, "offset", vec![3, 40]);
}

/// A flow whose pagination is declared wrongly (the connector with `edits`) fails the window
/// with `message` (exit 4); once the connector is corrected, the next run delivers every item:
/// the cursor stayed before the window.
fn wrong_pagination_fails_then_recovers(
    style: Style,
    operation: &str,
    edits: &[(&str, &str)],
    message: &str,
) {
    let mock = RestMock::start(style, 30, Faults::default());
    let workspace = workspace(&mock.url, operation);
    let connector = workspace.read("connectors/source.yaml");
    for (old, new) in edits {
        workspace.edit("connectors/source.yaml", old, new);
    }
    run(&workspace).code(4).stderr_contains(message);
    workspace.write("connectors/source.yaml", connector);
    run(&workspace).success();
    assert_each_written_once(&mock);
}

#[test]
fn a_next_token_under_pagination_none_fails_the_window() {
    wrong_pagination_fails_then_recovers(
        Style::Stripe,
        "stripe",
        &[
            ("      starting_after: \"{{PAGINATION_CURSOR}}\"\n", ""),
            (
                "pagination: { strategy: cursor, cursor: \"$.data[-1:].id\", has_more: body.has_more, max_page_size: 100 }",
                "pagination: { strategy: none, max_page_size: 100 }",
            ),
        ],
        "the answer says `has_more: true`",
    );
}

#[test]
fn a_full_page_under_pagination_none_fails_the_window() {
    wrong_pagination_fails_then_recovers(
        Style::Offset,
        "offset",
        &[
            ("      offset: \"{{PAGINATION_OFFSET}}\"\n", ""),
            (
                "    records: $.items[*]\n    total: $.total\n",
                "    records: $.items[*]\n",
            ),
            (
                "pagination: { strategy: offset, max_page_size: 100 }",
                "pagination: { strategy: none, max_page_size: 7 }",
            ),
        ],
        "a full page of `max_page_size` 7",
    );
}

#[test]
fn a_total_above_the_one_answer_under_pagination_none_fails_the_window() {
    wrong_pagination_fails_then_recovers(
        Style::Offset,
        "offset",
        &[
            ("      offset: \"{{PAGINATION_OFFSET}}\"\n", ""),
            (
                "pagination: { strategy: offset, max_page_size: 100 }",
                "pagination: { strategy: none, max_page_size: 100 }",
            ),
        ],
        "the total says 30 record(s) but the answer holds 7",
    );
}

#[test]
fn a_link_next_under_pagination_none_fails_the_window() {
    wrong_pagination_fails_then_recovers(
        Style::GitHub,
        "github",
        &[(
            "pagination: { strategy: link, max_page_size: 100 }",
            "pagination: { strategy: none, max_page_size: 100 }",
        )],
        "which this pagination does not follow",
    );
}

#[test]
fn a_total_above_the_records_a_cursor_read_fails_the_window() {
    let mock = RestMock::start(
        Style::HubSpot,
        30,
        Faults {
            total_lie: 1,
            ..Faults::default()
        },
    );
    let workspace = workspace(&mock.url, "hubspot");
    run(&workspace)
        .code(4)
        .stderr_contains("the total says 31 record(s) but the window's pages held 30");
    mock.set_faults(Faults::default());
    run(&workspace).success();
    assert_each_written_once(&mock);
}
