//! The raw types of a flow file: source, target, key, mapping, value maps, schedule.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A flow: read records with one API operation, map each record, write it with another.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "engine flow")]
pub struct RawFlow {
    /// Name of the flow; its key in the state database. Default: the file name without `.yaml`.
    #[serde(default)]
    pub name: Option<String>,
    /// What the flow does, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Where records come from.
    pub source: RawSource,
    /// Where mapped records go.
    pub target: RawTarget,
    /// How a record is identified on both sides: the basis of deduplication and of exactly-once writes.
    pub key: RawKey,
    /// Constants for templates, read as `vars.<name>` (organisation numbers, bill type, currency, …).
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Value maps: CSV files translating a source code into a target code, read with the `lookup` filter.
    #[serde(default)]
    pub value_maps: BTreeMap<String, RawValueMap>,
    /// The target record as a YAML tree shaped like it; leaves are templates evaluated per source
    /// record. `$each`/`$as`/`$if`/`$item` repeat a section over a source array; `$if`/`$value`
    /// make a field conditional.
    pub mapping: Value,
    /// When `engine serve` runs the flow: `{ every: 5m }` or `{ cron: "*/10 * * * *" }`, in
    /// `time_zone`. A flow without one is run only by `engine run`.
    #[serde(default)]
    pub schedule: Option<RawSchedule>,
}

/// When `engine serve` runs a flow: exactly one of `every` and `cron`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// An interval between the starts of two runs: `30s`, `5m`, `1h` (at least `1s`).
    #[serde(default)]
    pub every: Option<String>,
    /// A cron expression (5 fields, or 6 with seconds first): `*/10 * * * *`, `0 2 * * *`.
    #[serde(default)]
    pub cron: Option<String>,
    /// The time zone of `cron` (an IANA name). Default `Asia/Shanghai`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// The read side of a flow.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Connector name: the file `connectors/<name>.yaml` next to the flow, or a path to a connector file.
    pub connector: String,
    /// The connector operation that reads records (`kind: read`).
    pub operation: String,
    /// Request parameters, merged over the operation's. Templates may use the placeholders
    /// `LAST_SYNC_TIME`, `CURRENT_TIME` (window ends, in the connector's `time_zone`; leave
    /// `CURRENT_TIME` out for an API with a lower bound only), `PAGINATION_PAGE_SIZE`,
    /// `PAGINATION_START_PAGE` (the page being requested), `PAGINATION_OFFSET`,
    /// `PAGINATION_CURSOR` (as the operation's pagination gives them), written
    /// `{{LAST_SYNC_TIME datetime}}` or `{{ LAST_SYNC_TIME | datetime }}`.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Records per page, at most the operation's `max_page_size`. Default: the maximum.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// How the time window moves from run to run (windowed operations only).
    #[serde(default)]
    pub window: Option<RawFlowWindow>,
}

/// How a flow walks time.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFlowWindow {
    /// Where the first run starts (before any cursor exists): `2024-01-01 00:00:00` (in the source
    /// connector's `time_zone`), RFC 3339 or epoch seconds. May be a template such as `{{ env.SYNC_START | default('2024-01-01 00:00:00') }}`.
    pub start: String,
    /// How far behind now a window ends, so rows still being written are not missed. Default `1m`, at most `7d`.
    #[serde(default)]
    pub lag: Option<String>,
    /// How far before the cursor each run starts again; re-read records are deduplicated. Default `5m`, at most `30d`.
    #[serde(default)]
    pub lookback: Option<String>,
    /// The longest window per request. Default (and maximum): the operation's `window.max_span`.
    #[serde(default)]
    pub max_span: Option<String>,
}

/// The write side of a flow.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Connector name: the file `connectors/<name>.yaml` next to the flow, or a path to a connector file.
    pub connector: String,
    /// The connector operation that writes records (`kind: write`).
    pub operation: String,
    /// Inputs of the operation (for Kingdee `batch_save`: `form_id` and `options`), read by its
    /// `body` template as `params.<name>`.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Records per write call. Default: the operation's `batch.default_size`.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Write calls in flight at once: `adaptive` (the default: starts at the operation's
    /// `batch.concurrency`, raised while the target's latency stays flat, cut when it rises,
    /// times out or the target answers busy) or a fixed number.
    #[serde(default)]
    pub concurrency: Option<RawConcurrency>,
    /// Most write calls in flight at once under `concurrency: adaptive`. Default 16.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// The connector operation (`kind: lookup`) that finds records already in the target by key;
    /// used before resending a write whose outcome is unknown. Strongly recommended.
    #[serde(default)]
    pub lookup: Option<String>,
    /// What to do with a record already written whose mapped content changed since (a source
    /// edit, or a mapping change carried by `engine resend`): `skip` it, report it as a
    /// `conflict` (parked, listed by `engine failed`), `update` it through `target.update`, or
    /// send it through `target.operation` again when that creates or updates (`upsert`).
    /// Default `skip`.
    #[serde(default)]
    pub on_change: Option<OnChange>,
    /// The connector operation (`kind: update`) that sends a changed record by the target id
    /// the ledger recorded; required by `on_change: update`.
    #[serde(default)]
    pub update: Option<String>,
    /// Whether an update the target refuses because the record is audited (the update
    /// operation's `audited`) may un-audit it, update it and audit it again (its `unaudit` and
    /// `reaudit` actions). Without it such a change is parked as a `conflict` with the target's
    /// message. Default false.
    #[serde(default)]
    pub allow_unaudit: Option<bool>,
    /// Whether the ledger keeps each written record's newest source and the mapped record
    /// last sent (compressed), which `engine resend` maps again and diffs. Off, a ledger row
    /// takes about 500 bytes instead of about 2.6 KB (the bundled flow's orders), and
    /// `resend` cannot run. Default true.
    #[serde(default)]
    pub keep_records: Option<bool>,
}

/// What to do when a record already written has changed in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// Leave the target alone; the first version written stays.
    Skip,
    /// Park the record with a conflict so a person decides.
    Conflict,
    /// Send the changed record through `target.update` (by the target id in the ledger).
    Update,
    /// Send the changed record through `target.operation` again, which creates or updates.
    Upsert,
}

impl OnChange {
    /// The mode as the flow file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnChange::Skip => "skip",
            OnChange::Conflict => "conflict",
            OnChange::Update => "update",
            OnChange::Upsert => "upsert",
        }
    }

    /// Whether the mode sends a changed record to the target.
    pub fn sends_changes(self) -> bool {
        matches!(self, OnChange::Update | OnChange::Upsert)
    }
}

/// The record key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// Template giving a source record's key, e.g. `{{ order_no }}`.
    pub source: String,
    /// The target field that carries the key (e.g. `FBillNo`); the mapping must write the same value there.
    pub target: String,
    /// Template giving a source record's last-modified time; when a record is read twice in one run
    /// (overlapping windows, drifting pages) the newest copy wins. Default: the operation's `window.field`.
    #[serde(default)]
    pub modified: Option<String>,
}

/// A value map file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawValueMap {
    /// CSV file relative to the flow file: a header row, then rows of source value, target code
    /// (further columns are ignored and may hold notes).
    pub file: String,
    /// What `lookup` does with a value the map lacks: `error` (the record fails), `default`
    /// (use `default`), `skip_line` (drop the detail line). A `lookup` call may override it. Default `error`.
    #[serde(default)]
    pub on_missing: Option<MissPolicy>,
    /// The value returned for a missing value under `on_missing: default`.
    #[serde(default)]
    pub default: Option<String>,
}

/// What a value-map lookup does with a value the map lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissPolicy {
    /// The record fails with a message naming the value and the map.
    Error,
    /// The map's `default` is used.
    Default,
    /// The repeated section's current line is dropped (inside `$each` only).
    SkipLine,
}

/// `target.concurrency`: a fixed number of write calls, or `adaptive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawConcurrency {
    /// Always this many write calls in flight.
    Fixed(u32),
    /// Follow the target's latency and busy answers, up to `target.max_concurrency`.
    Mode(RawConcurrencyMode),
}

/// The adaptive concurrency keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawConcurrencyMode {
    /// Raise the concurrency while latency stays flat, cut it when it rises or the target is busy.
    Adaptive,
}
