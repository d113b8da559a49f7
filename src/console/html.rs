//! The console's HTML: escaping, the page frame and the bilingual labels. Pure functions.
//!
//! Record data is untrusted (a shop's order remark can hold `<script>`), so every value goes
//! through [`escape`] on its way into a page; only the literal markup in this module and in
//! `pages` is written unescaped. A tiny escaper beats a template crate here: the pages are a
//! handful of tables, and a proc-macro template engine would add build time and a second
//! template language beside minijinja for no gain.

use std::fmt::Write;

use crate::state::Status;

/// Text made safe for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A value for a URL query: percent-encoded (then escaped where it lands in an attribute).
pub fn query_value(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A label in both languages: Chinese first, the users' language, then English.
pub fn label(zh: &str, en: &str) -> String {
    format!("{zh} {en}")
}

/// The bilingual label of a ledger status.
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::InFlight => "发送中 In flight",
        Status::Done => "已写入 Written",
        Status::Failed => "已暂存 Parked",
        Status::Conflict => "冲突 Conflict",
    }
}

/// The bilingual label of a run outcome (`ok`, `partial`, `failed`), or the text itself.
pub fn outcome_label(outcome: &str) -> String {
    match outcome {
        "ok" => "成功 ok".to_string(),
        "partial" => "部分暂存 partial".to_string(),
        "failed" => "失败 failed".to_string(),
        other => escape(other),
    }
}

const STYLE: &str = "body{font-family:system-ui,'PingFang SC','Microsoft YaHei',sans-serif;\
margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}pre{background:#f7f7f7;padding:.5em;overflow:auto;max-width:60em}\
nav a{margin-right:1em}.error{color:#a00}.ok{color:#070}";

/// A whole page: title, navigation for `flow` (when on a flow's page) and `body`.
pub fn page(title: &str, flow: Option<&str>, body: &str) -> String {
    let mut nav = String::from("<nav><a href=\"/\">流程 Flows</a>");
    if let Some(flow) = flow {
        let f = escape(&query_value(flow));
        let _ = write!(
            nav,
            "<a href=\"/flows/{f}\">概况 Overview</a>\
             <a href=\"/flows/{f}/records\">记录 Records</a>\
             <a href=\"/flows/{f}/parked\">暂存 Parked</a>\
             <a href=\"/flows/{f}/conflicts\">冲突 Conflicts</a>"
        );
    }
    nav.push_str("</nav>");
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>{} · engine</title><style>{STYLE}</style></head><body>{nav}<h1>{}</h1>{body}\
         </body></html>",
        escape(title),
        escape(title)
    )
}

/// A table: a header row (already-escaped labels) and rows of already-built cells.
pub fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for header in headers {
        let _ = write!(out, "<th>{header}</th>");
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// JSON, pretty-printed and escaped, in a `<pre>`.
pub fn json_block(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).expect("JSON serialises");
    format!("<pre>{}</pre>", escape(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_untrusted_text_inert() {
        for (input, expected) in [
            ("plain 退货单", "plain 退货单"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("\" onmouseover='x'", "&quot; onmouseover=&#39;x&#39;"),
            ("", ""),
        ] {
            assert_eq!(escape(input), expected, "{input}");
        }
    }

    #[test]
    fn a_page_escapes_its_title_and_keeps_the_body() {
        let html = page("<b>", Some("a\"b"), "<p>body</p>");
        assert!(html.contains("<h1>&lt;b&gt;</h1>"), "{html}");
        assert!(html.contains("/flows/a%22b/parked"), "{html}");
        assert!(html.contains("<p>body</p>"));
    }
}
