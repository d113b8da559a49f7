//! The console's pages: one handler per route, each reading the flow and its state afresh.
//!
//! A flow is named in the URL by its `name:`; its file is found among the console's flows.
//! A flow that has never run has no state database: its pages say so instead of creating one.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::ConsoleState;
use super::html::{escape, label, outcome_label, page, query_value, status_label, table};
use crate::check;
use crate::config;
use crate::config::model::{Flow, Schedule};
use crate::error::{Error, Result};
use crate::record;
use crate::request;
use crate::run::commands;
use crate::schedule;
use crate::state::lock::{self, FlowLock, LockState, Wait};
use crate::state::{Entry, Status, Store};
use crate::time::wall_clock;

/// How many ledger rows a records page shows at most.
const RECORDS_SHOWN: usize = 200;

type Page = std::result::Result<Html<String>, Refusal>;

/// An error page, boxed: a page's `Result` stays small.
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn failure(err: &Error, code: StatusCode) -> Refusal {
    let body = format!("<p class=\"error\">{}</p>", escape(&err.to_string()));
    Refusal(Box::new(
        (code, Html(page("出错 Error", None, &body))).into_response(),
    ))
}

/// A flow of the console, loaded as it is now, with its file and state database.
struct Loaded {
    file: PathBuf,
    flow: Arc<Flow>,
    store: PathBuf,
}

impl Loaded {
    /// The state database, or `None` when the flow has never run.
    fn open(&self) -> Result<Option<Store>> {
        match self.store.exists() {
            true => Store::open(&self.store).map(Some),
            false => Ok(None),
        }
    }

    fn lock_state(&self) -> Result<LockState> {
        let dir = self.store.parent().unwrap_or(Path::new("."));
        FlowLock::probe(&lock::lock_path(dir, &self.flow.name))
    }
}

fn load(state: &ConsoleState, file: &Path) -> Result<Loaded> {
    let mut loaded = config::load_flow(file);
    let Some(flow) = loaded.value.take() else {
        return Err(check::load_failure(&loaded));
    };
    Ok(Loaded {
        file: file.to_path_buf(),
        flow: Arc::new(flow),
        store: commands::store_path(file, state.state_dir.as_deref()),
    })
}

/// The console's flow named `name`.
fn find(state: &ConsoleState, name: &str) -> std::result::Result<Loaded, Refusal> {
    for file in &state.flows {
        if let Ok(loaded) = load(state, file)
            && loaded.flow.name == name
        {
            return Ok(loaded);
        }
    }
    Err(failure(
        &Error::usage(format!("no flow named `{name}` in this console")),
        StatusCode::NOT_FOUND,
    ))
}

fn internal(err: Error) -> Refusal {
    failure(&err, StatusCode::INTERNAL_SERVER_ERROR)
}

/// The flow's `schedule:` as people read it, with its next start in the flow's time zone (after
/// the last run's start, for an interval), escaped; `—` when it has none (`engine serve` does
/// not run it).
fn schedule_html(schedule: Option<&Schedule>, last_start: Option<DateTime<Utc>>) -> String {
    let Some(schedule) = schedule else {
        return label("无（serve 不运行）", "none (serve does not run it)");
    };
    format!(
        "{} · {} {}",
        escape(&schedule::readable(schedule)),
        label("下次", "next"),
        escape(&schedule::next_start_text(schedule, last_start, Utc::now()))
    )
}

fn lock_text(state: &LockState) -> String {
    match state {
        LockState::Free => label("空闲", "free"),
        LockState::Left(holder) => format!(
            "空闲 free (上次 last held by {}, 未正常释放 ended without releasing it)",
            holder.describe()
        ),
        LockState::Held(Some(holder)) => format!("运行中 held by {}", holder.describe()),
        LockState::Held(None) => "运行中 held by a process that is starting".to_string(),
    }
}

/// `/`: every flow with its schedule, lock, cursor and last run.
pub async fn flows(State(state): State<ConsoleState>) -> Page {
    let mut rows = Vec::new();
    for file in &state.flows {
        let loaded = match load(&state, file) {
            Ok(loaded) => loaded,
            Err(err) => {
                rows.push(vec![
                    escape(&file.display().to_string()),
                    format!("<span class=\"error\">{}</span>", escape(&err.to_string())),
                ]);
                continue;
            }
        };
        let name = escape(&loaded.flow.name);
        let link = format!(
            "<a href=\"/flows/{}\">{name}</a>",
            escape(&query_value(&loaded.flow.name))
        );
        let lock = loaded
            .lock_state()
            .map_or_else(|e| e.to_string(), |s| lock_text(&s));
        let (cursor, last, last_start) = match loaded.open().map_err(internal)? {
            None => ("—".to_string(), label("从未运行", "never run"), None),
            Some(store) => {
                let cursor = store.cursor(&loaded.flow.name).map_err(internal)?;
                let runs = store.runs(&loaded.flow.name, 1).map_err(internal)?;
                (
                    cursor.map_or("—".to_string(), wall_clock),
                    runs.first().map_or("—".to_string(), run_line),
                    runs.first().map(|run| run.started),
                )
            }
        };
        rows.push(vec![
            link,
            escape(&file.display().to_string()),
            schedule_html(loaded.flow.schedule.as_ref(), last_start),
            escape(&lock),
            escape(&cursor),
            last,
        ]);
    }
    let headers = [
        label("流程", "Flow"),
        label("文件", "File"),
        label("计划", "Schedule"),
        label("锁", "Lock"),
        label("游标", "Cursor"),
        label("最近一次运行", "Last run"),
    ];
    Ok(Html(page("流程 Flows", None, &table(&headers, &rows))))
}

/// One run as a line: kind, start, outcome and counts (already escaped).
fn run_line(run: &crate::state::Run) -> String {
    let started = wall_clock(run.started);
    match &run.summary {
        None => format!(
            "{} {} · {}",
            escape(run.kind.as_str()),
            escape(&started),
            label("进行中", "running")
        ),
        Some(s) => format!(
            "{} {} · {} · 读取 read {} · 写入 written {} · 跳过 skipped {} · 暂存 parked {}",
            escape(run.kind.as_str()),
            escape(&started),
            outcome_label(&s.outcome),
            s.read,
            s.written,
            s.skipped,
            s.failed
        ),
    }
}

/// `/flows/{flow}`: schedule, lock, cursor, records by status, live progress, last runs.
pub async fn overview(State(state): State<ConsoleState>, UrlPath(name): UrlPath<String>) -> Page {
    let loaded = find(&state, &name)?;
    let last_start = match loaded.open().map_err(internal)? {
        Some(store) => store
            .runs(&loaded.flow.name, 1)
            .map_err(internal)?
            .first()
            .map(|run| run.started),
        None => None,
    };
    let mut body = format!(
        "<p>{}: {} · {}: <code>{}</code></p>",
        label("计划", "Schedule"),
        schedule_html(loaded.flow.schedule.as_ref(), last_start),
        label("文件", "File"),
        escape(&loaded.file.display().to_string())
    );
    let live_url = format!("/flows/{}/live", query_value(&name));
    let _ = write!(
        body,
        "<h2>实时进度 Live progress</h2><div id=\"live\">{}</div>\
         <script>setInterval(function(){{fetch({}).then(function(r){{return r.text()}})\
         .then(function(t){{document.getElementById('live').innerHTML=t}})}},3000)</script>",
        live_fragment(&loaded).map_err(internal)?,
        serde_json::to_string(&live_url).expect("a string is JSON")
    );
    if let Some(store) = loaded.open().map_err(internal)? {
        let runs = store.runs(&loaded.flow.name, 20).map_err(internal)?;
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|run| {
                let s = run.summary.as_ref();
                let n = |f: fn(&crate::state::RunSummary) -> u64| {
                    s.map_or("—".into(), |s| f(s).to_string())
                };
                vec![
                    run.id.to_string(),
                    escape(run.kind.as_str()),
                    escape(&wall_clock(run.started)),
                    run.finished.map_or("—".into(), |t| escape(&wall_clock(t))),
                    s.map_or(label("进行中", "running"), |s| outcome_label(&s.outcome)),
                    n(|s| s.read),
                    n(|s| s.written),
                    n(|s| s.skipped),
                    n(|s| s.failed),
                    escape(s.and_then(|s| s.message.as_deref()).unwrap_or("")),
                ]
            })
            .collect();
        let headers = [
            "#".to_string(),
            label("类型", "Kind"),
            label("开始", "Started"),
            label("结束", "Finished"),
            label("结果", "Outcome"),
            label("读取", "Read"),
            label("写入", "Written"),
            label("跳过", "Skipped"),
            label("暂存", "Parked"),
            label("消息", "Message"),
        ];
        let _ = write!(
            body,
            "<h2>最近运行 Last runs</h2>{}",
            table(&headers, &rows)
        );
    }
    Ok(Html(page(&loaded.flow.name, Some(&name), &body)))
}

/// The live part of the overview: lock holder, the running run, records by status.
fn live_fragment(loaded: &Loaded) -> Result<String> {
    let mut out = format!(
        "<p id=\"lock\">{}: {}</p>",
        label("锁", "Lock"),
        escape(&lock_text(&loaded.lock_state()?))
    );
    let Some(store) = loaded.open()? else {
        out.push_str(&format!("<p>{}</p>", label("从未运行", "never run")));
        return Ok(out);
    };
    let cursor = store.cursor(&loaded.flow.name)?;
    let _ = write!(
        out,
        "<p>{}: {}</p>",
        label("游标", "Cursor"),
        escape(&cursor.map_or("—".into(), wall_clock))
    );
    if let Some(run) = store.runs(&loaded.flow.name, 1)?.first() {
        let _ = write!(
            out,
            "<p id=\"last-run\">{}: {}</p>",
            label("最近一次运行", "Last run"),
            run_line(run)
        );
    }
    let counts = store.counts(&loaded.flow.name)?;
    let rows = vec![counts.values().map(|n| n.to_string()).collect()];
    let headers: Vec<String> = counts
        .keys()
        .map(|s| status_label(*s).to_string())
        .collect();
    out.push_str(&table(&headers, &rows));
    Ok(out)
}

/// `/flows/{flow}/live`: the live fragment alone, polled by the overview's script.
pub async fn live(State(state): State<ConsoleState>, UrlPath(name): UrlPath<String>) -> Page {
    let loaded = find(&state, &name)?;
    live_fragment(&loaded).map(Html).map_err(internal)
}

#[derive(Deserialize)]
pub struct KeyQuery {
    #[serde(default)]
    key: String,
}

fn entry_row(name: &str, entry: &Entry) -> Vec<String> {
    vec![
        format!(
            "<a href=\"/flows/{}/record?key={}\">{}</a>",
            escape(&query_value(name)),
            escape(&query_value(&entry.key)),
            escape(&entry.key)
        ),
        status_label(entry.status).to_string(),
        escape(entry.target_number.as_deref().unwrap_or("—")),
        entry.attempts.to_string(),
        escape(entry.last_error.as_deref().unwrap_or("")),
        escape(&wall_clock(entry.updated)),
    ]
}

fn entry_headers() -> Vec<String> {
    vec![
        label("键", "Key"),
        label("状态", "Status"),
        label("目标单号", "Target number"),
        label("尝试次数", "Attempts"),
        label("最近错误", "Last error"),
        label("更新时间", "Updated"),
    ]
}

/// `/flows/{flow}/records?key=…`: ledger rows whose key contains the search text.
pub async fn records(
    State(state): State<ConsoleState>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<KeyQuery>,
) -> Page {
    let loaded = find(&state, &name)?;
    let mut body = format!(
        "<form method=\"get\"><label>{} <input name=\"key\" value=\"{}\"></label> \
         <button type=\"submit\">搜索 Search</button></form>",
        label("按键搜索", "Search by key"),
        escape(&query.key)
    );
    if let Some(store) = loaded.open().map_err(internal)? {
        let found = store
            .search(&loaded.flow.name, &query.key, RECORDS_SHOWN)
            .map_err(internal)?;
        let rows: Vec<Vec<String>> = found.iter().map(|e| entry_row(&name, e)).collect();
        let _ = write!(
            body,
            "<p>{} {} ({} {RECORDS_SHOWN})</p>{}",
            rows.len(),
            label("条记录", "record(s)"),
            label("最多显示", "at most"),
            table(&entry_headers(), &rows)
        );
    }
    Ok(Html(page(
        &format!("{name} · 记录 Records"),
        Some(&name),
        &body,
    )))
}

/// `/flows/{flow}/record?key=…`: one record with its source and the body sent / to send.
pub async fn record(
    State(state): State<ConsoleState>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<KeyQuery>,
) -> Page {
    let loaded = find(&state, &name)?;
    let store = loaded.open().map_err(internal)?;
    let entry = match &store {
        Some(store) => store
            .entry(&loaded.flow.name, &query.key)
            .map_err(internal)?,
        None => None,
    };
    let Some(entry) = entry else {
        return Err(failure(
            &Error::usage(format!(
                "flow `{name}` has no record with key `{}`",
                query.key
            )),
            StatusCode::NOT_FOUND,
        ));
    };
    let mut body = table(&entry_headers(), &[entry_row(&name, &entry)]);
    if let Some(field) = &entry.error_field {
        let _ = write!(
            body,
            "<p>{}: <code>{}</code></p>",
            label("出错字段", "Field"),
            escape(field)
        );
    }
    body.push_str(&source_and_body(&state, &loaded, &entry));
    Ok(Html(page(
        &format!("{name} · {}", entry.key),
        Some(&name),
        &body,
    )))
}

/// The kept source and the body it maps to now, or why they are not shown.
fn source_and_body(state: &ConsoleState, loaded: &Loaded, entry: &Entry) -> String {
    let Some(source) = &entry.source else {
        return format!(
            "<p>{}</p>",
            label(
                "账本不保留已写入记录的源数据与请求体。",
                "The ledger does not keep the source or the body of a written record."
            )
        );
    };
    let mut out = format!(
        "<h2>源记录 Source record</h2>{}",
        super::html::json_block(source)
    );
    out.push_str("<h2>请求体 Request body (按当前流程映射 mapped with the flow as it is now, as a retry sends it)</h2>");
    match mapped_body(&loaded.flow, source, &state.env) {
        Ok(body) => out.push_str(&super::html::json_block(&body)),
        Err(reason) => {
            let _ = write!(
                out,
                "<p class=\"error\" id=\"map-error\">{}</p>",
                escape(&reason)
            );
        }
    }
    out
}

/// The write body of one source record, as `preview` builds it.
fn mapped_body(
    flow: &Flow,
    source: &serde_json::Value,
    env: &request::Env,
) -> std::result::Result<serde_json::Value, String> {
    let mapped = record::map(flow, Arc::new(source.clone()))
        .map_err(|failure| format!("{}: {}", failure.error.target, failure.error.message))?;
    let inputs = request::target_inputs(flow, env).map_err(|err| err.message)?;
    request::write_body(
        flow,
        &inputs,
        vec![(mapped.key.clone(), mapped.target())],
        env,
    )
    .map_err(|err| err.message)
}

/// The parked rows of one status, with a retry button each.
fn parked_rows(name: &str, entries: &[Entry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|entry| {
            let mut row = entry_row(name, entry);
            row.push(retry_form(name, &entry.key));
            row
        })
        .collect()
}

fn retry_form(name: &str, key: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/flows/{}/retry\"><input type=\"hidden\" name=\"key\" value=\"{}\">\
         <button type=\"submit\" class=\"retry\" data-key=\"{}\">重试 Retry</button></form>",
        escape(&query_value(name)),
        escape(key),
        escape(key)
    )
}

/// `/flows/{flow}/parked`: parked records with their reasons and a retry button.
pub async fn parked(State(state): State<ConsoleState>, UrlPath(name): UrlPath<String>) -> Page {
    let loaded = find(&state, &name)?;
    let entries = match loaded.open().map_err(internal)? {
        Some(store) => store.parked(&loaded.flow.name, &[]).map_err(internal)?,
        None => Vec::new(),
    };
    let mut headers = entry_headers();
    headers.push(label("操作", "Action"));
    let body = format!(
        "<p>{} {}</p>{}",
        entries.len(),
        label("条暂存记录", "parked record(s)"),
        table(&headers, &parked_rows(&name, &entries))
    );
    Ok(Html(page(
        &format!("{name} · 暂存 Parked"),
        Some(&name),
        &body,
    )))
}

/// `/flows/{flow}/conflicts`: records that clash with what the target has.
pub async fn conflicts(State(state): State<ConsoleState>, UrlPath(name): UrlPath<String>) -> Page {
    let loaded = find(&state, &name)?;
    let store = loaded.open().map_err(internal)?;
    let entries: Vec<Entry> = match &store {
        Some(store) => store
            .parked(&loaded.flow.name, &[])
            .map_err(internal)?
            .into_iter()
            .filter(|e| e.status == Status::Conflict)
            .collect(),
        None => Vec::new(),
    };
    let mut body = format!(
        "<p>{} {}</p><p>{}</p>",
        entries.len(),
        label("条冲突", "conflict(s)"),
        label(
            "每条冲突：目标中的版本与按当前流程映射的结果逐字段对比，然后是源记录。",
            "Each conflict: the version the target has against what the record maps to now, field by field; then the source."
        )
    );
    for entry in &entries {
        let diff = match &store {
            Some(store) => {
                super::conflict::diff_html(&loaded.flow, store, entry).map_err(internal)?
            }
            None => String::new(),
        };
        let _ = write!(
            body,
            "<h2>{}</h2>{}{}{}{}",
            escape(&entry.key),
            table(&entry_headers(), &[entry_row(&name, entry)]),
            retry_form(&name, &entry.key),
            diff,
            source_and_body(&state, &loaded, entry)
        );
    }
    Ok(Html(page(
        &format!("{name} · 冲突 Conflicts"),
        Some(&name),
        &body,
    )))
}

#[derive(Deserialize)]
pub struct RetryForm {
    key: String,
}

/// `POST /flows/{flow}/retry`: `engine retry FLOW KEY` under the flow's lock; shows the outcome.
pub async fn retry(
    State(state): State<ConsoleState>,
    UrlPath(name): UrlPath<String>,
    Form(form): Form<RetryForm>,
) -> Page {
    let loaded = find(&state, &name)?;
    let result = commands::retry(
        &loaded.file,
        state.state_dir.as_deref(),
        vec![form.key.clone()],
        Wait::No,
        (*state.env).clone(),
        true,
        crate::run::progress::LogFormat::Text,
    )
    .await;
    let mut body = match &result {
        Ok(code) => format!(
            "<p id=\"retry-result\">{} (exit {})</p>",
            label("已重试", "Retried"),
            code.code()
        ),
        Err(err) => format!(
            "<p class=\"error\" id=\"retry-result\">{}: {}</p>",
            label("重试失败", "Retry failed"),
            escape(&err.to_string())
        ),
    };
    let entry = match loaded.open().map_err(internal)? {
        Some(store) => store
            .entry(&loaded.flow.name, &form.key)
            .map_err(internal)?,
        None => None,
    };
    if let Some(entry) = entry {
        let _ = write!(
            body,
            "<p id=\"outcome\" data-status=\"{}\">{}: {}</p>{}",
            entry.status.as_str(),
            label("现在状态", "Status now"),
            status_label(entry.status),
            table(&entry_headers(), &[entry_row(&name, &entry)])
        );
    }
    let _ = write!(
        body,
        "<p><a href=\"/flows/{}/parked\">{}</a></p>",
        escape(&query_value(&name)),
        label("返回暂存列表", "Back to the parked records")
    );
    Ok(Html(page(
        &format!("{name} · 重试 Retry {}", form.key),
        Some(&name),
        &body,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_shown_parsed_with_its_next_start() {
        use std::str::FromStr;

        use crate::config::model::ScheduleKind;

        let cron = Schedule {
            when: ScheduleKind::Cron(Box::new(croner::Cron::from_str("0 2 * * *").unwrap())),
            time_zone: chrono_tz::UTC,
        };
        let shown = schedule_html(Some(&cron), None);
        assert!(
            shown.starts_with("at 02:00 (`0 2 * * *`, UTC) · 下次 next ")
                && shown.ends_with(" 02:00:00 (UTC)"),
            "{shown}"
        );
        let every = Schedule {
            when: ScheduleKind::Every(std::time::Duration::from_secs(300)),
            time_zone: chrono_tz::Asia::Shanghai,
        };
        // Long after the last run: the next start is due now, in Shanghai's wall-clock time.
        let last = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let shown = schedule_html(Some(&every), Some(last));
        assert!(shown.starts_with("every 5m · 下次 next 20"), "{shown}");
        assert!(shown.ends_with(" (Asia/Shanghai)"), "{shown}");
        assert_eq!(
            schedule_html(None, None),
            "无（serve 不运行） none (serve does not run it)"
        );
    }
}
