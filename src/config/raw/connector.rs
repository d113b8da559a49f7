//! The raw types of a connector file: auth, envelope, HTTP settings, operations with their
//! pagination, windows, batches, results and rows, and file connectors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A connector: everything about one API except its signing algorithm.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "engine connector")]
pub struct RawConnector {
    /// Name of the connector; flows refer to it by this name (it must match the file name).
    pub name: String,
    /// What API this is, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Base URL of the API; operation paths are appended to it. Usually `{{ env.<VAR> }}`.
    /// Required, except in a file connector (`file:`), which has none.
    #[serde(default)]
    pub base_url: Option<String>,
    /// JSON Lines or CSV files instead of an API: a file connector has `file:` and no
    /// `base_url`, `auth`, `envelope` or `operations` (a flow names its implicit operation
    /// `read` as a source, `write` as a target).
    #[serde(default)]
    pub file: Option<RawFile>,
    /// How requests are authenticated. Required, except in a file connector.
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// Parameters sent with every request of every operation (templates).
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// HTTP headers sent with every request (templates reading `env`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The time zone the API writes times in without an offset, and in which the placeholders
    /// (`LAST_SYNC_TIME`, `CURRENT_TIME`) and the time filters (`datetime`, `date`) write them:
    /// `UTC`, an IANA name such as `Asia/Shanghai`, or an offset such as `+08:00`. Default
    /// `Asia/Shanghai`.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// How a response tells success from failure (operations may override it). Required,
    /// except in a file connector.
    #[serde(default)]
    pub envelope: Option<RawEnvelope>,
    /// Timeouts, retries and rate limit.
    #[serde(default)]
    pub http: Option<RawHttp>,
    /// The operations of the API, by name. Required, except in a file connector.
    #[serde(default)]
    pub operations: BTreeMap<String, RawOperation>,
    /// Texts this API sends in a record field to mean "no value", such as WDT's no-date
    /// `9999-12-01 00:00:00`. A field of a record read from this connector that holds exactly
    /// one of them reads as an empty value (`null`) in the flow's key and mapping: a required
    /// date then fails its record with a reason instead of sending the sentinel on.
    #[serde(default)]
    pub null_values: Vec<String>,
}

/// A file connector: JSON Lines or CSV files read as a source or written as a target.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The file, relative to this connector file (or absolute). As a source it may be a glob
    /// (`*`, `?`, `[abc]`, `**` for any folders) and every file it matches is read, in name
    /// order. Under `mode: per_run` it holds `{time}` (or `{time:<strftime>}`, default
    /// `%Y%m%dT%H%M%SZ`), replaced by the run's start time in UTC; read as a source, `{time}`
    /// matches any text.
    pub path: String,
    /// `jsonl` (one JSON object per line) or `csv` (a header row, then one record per row).
    pub format: FileFormat,
    /// Target: `append` (one file that grows, the default), `per_run` (one new file per run,
    /// named by `{time}` in `path`) or `replace` (one file rewritten with each run's records).
    /// Every write is atomic: a temporary file beside it, flushed to disk, then renamed.
    #[serde(default)]
    pub mode: Option<FileMode>,
    /// Target, CSV: the columns, each a field path of the mapped record (`FBillNo`,
    /// `customer.name`, `lines.0.qty`); the header row names them as written. A nested value
    /// is written as JSON text. Default: the mapped record's top-level keys (those of the
    /// file's header when it already exists). Must include the flow's `key.target`.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Source, with the flow's `source.window`: `file_time` (the default: the files modified
    /// within the window, read whole) or `record_time` (every file, only the lines whose
    /// `key.modified` falls within the window). Without `source.window` every line is read
    /// each run and the ledger skips what was written.
    #[serde(default)]
    pub since: Option<FileSince>,
}

/// The format of a file connector's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// CSV (RFC 4180): a header row, then one record per row.
    Csv,
}

/// How a file target places each run's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileMode {
    /// One file that grows.
    Append,
    /// One new file per run, named by `{time}` in `path`.
    PerRun,
    /// One file holding the records of the last run that wrote any.
    Replace,
}

/// Which lines an incremental file source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileSince {
    /// The files modified within the window, read whole.
    FileTime,
    /// The lines whose `key.modified` falls within the window, from every file.
    RecordTime,
}

/// An authentication strategy and its parameters. Values are templates, usually `{{ env.<VAR> }}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawAuth {
    /// No authentication.
    None,
    /// Alibaba Qimen/TOP signature over all parameters (adds `app_key`, `timestamp`, `sign_method`, `sign`).
    QimenSign {
        /// The caller's Qimen app key.
        app_key: String,
        /// The caller's Qimen app secret.
        secret: String,
        /// `md5` (default), `hmac` or `hmac-sha256`.
        #[serde(default)]
        sign_method: Option<String>,
    },
    /// Kingdee K/3 Cloud: the official SDK's app signature (v2), or a password session (`ValidateUser`).
    Kingdee {
        /// `app_signature`, `password`, or `auto` (app signature when `app_id` and `app_secret`
        /// are non-empty, else password). Default `auto`.
        #[serde(default)]
        mode: Option<String>,
        /// Data centre (account set) id.
        acct_id: String,
        /// User name.
        username: String,
        /// App id of the third-party system registration (`<clientId>_<encoded secret>`).
        #[serde(default)]
        app_id: Option<String>,
        /// App secret of the registration.
        #[serde(default)]
        app_secret: Option<String>,
        /// Password, for `password` mode.
        #[serde(default)]
        password: Option<String>,
        /// Language id: 2052 简体中文 (default), 1033 English, 3076 繁體.
        #[serde(default)]
        lcid: Option<String>,
        /// Organisation number sent in the app signature (default `0`).
        #[serde(default)]
        org_num: Option<String>,
    },
    /// A static key in a header or query parameter.
    ApiKey {
        /// `header` (default) or `query`.
        #[serde(default, rename = "in")]
        location: Option<String>,
        /// Header or parameter name.
        name: String,
        /// The key.
        value: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// OAuth2 client credentials (RFC 6749 §4.4): a token fetched from `token_url`, sent as
    /// `Authorization: Bearer <token>`, renewed before it expires and once when the API
    /// answers 401 or the envelope's `reauth` holds.
    Oauth2ClientCredentials {
        /// The token endpoint: an http(s) URL, or a path on the connector's `base_url`.
        token_url: String,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: String,
        /// Space-separated scopes to ask for.
        #[serde(default)]
        scope: Option<String>,
        /// The `audience` parameter some providers (Auth0, Okta) require.
        #[serde(default)]
        audience: Option<String>,
        /// How the client proves itself: `client_secret_post` (id and secret in the form body,
        /// the default) or `client_secret_basic` (HTTP basic auth).
        #[serde(default)]
        client_auth: Option<String>,
    },
    /// A session login: one request (templated from `env`) whose answer yields a token or a
    /// cookie, then sent with every call; logged in again when the API answers 401 or the
    /// envelope's `reauth` holds.
    Login {
        /// The login request.
        request: RawLoginRequest,
        /// Where the answer holds the token.
        token: RawLoginToken,
        /// Where each call carries the token.
        send: RawPlacement,
    },
    /// Declarative request signing: extra parameters are added, a string to sign is rendered
    /// from the request, digested, and the signature placed in a parameter or header.
    Signature {
        /// The signing secret: the key of `hmac-*`, and `secret` in the templates.
        secret: String,
        /// Parameters added to every request before signing (e.g. `app_key`, `timestamp`);
        /// templates over `env`, `secret`, `timestamp`, `epoch_seconds`, `epoch_millis`.
        /// They are added in the order written here.
        #[serde(default)]
        params: serde_json::Map<String, Value>,
        /// Template of the signed text. It sees `params` (every query and form parameter,
        /// the added ones included, sorted by name: a list of `{name, value}`), `body` (a raw
        /// JSON body's text, else empty), `method`, `path`, `timestamp` (wall-clock text
        /// `yyyy-MM-dd HH:mm:ss`, Asia/Shanghai),
        /// `epoch_seconds`, `epoch_millis`, `secret` and `env`.
        string_to_sign: String,
        /// `md5`, `sha1`, `sha256`, `hmac-md5`, `hmac-sha1` or `hmac-sha256`.
        algorithm: String,
        /// `hex_upper` (default), `hex_lower` or `base64`.
        #[serde(default)]
        encoding: Option<String>,
        /// Where the signature goes.
        signature: RawSignaturePlacement,
    },
}

/// The login request of the `login` strategy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoginRequest {
    /// `POST` (default) or `GET`.
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// The login endpoint: an http(s) URL, or a path on the connector's `base_url`.
    pub path: String,
    /// Form fields (templates over `env`), sent as `application/x-www-form-urlencoded`.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// JSON body fields (templates over `env`), sent as one JSON object of strings.
    #[serde(default)]
    pub json: BTreeMap<String, String>,
}

/// Where the login answer holds the token: exactly one of `path` and `cookie`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoginToken {
    /// A JSONPath into the answer's body, e.g. `$.data.token`.
    #[serde(default)]
    pub path: Option<String>,
    /// The name of a cookie the answer sets (`Set-Cookie`).
    #[serde(default)]
    pub cookie: Option<String>,
}

/// Where each call carries the login token.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    /// `header` (default), `query` or `cookie`.
    #[serde(default, rename = "in")]
    pub location: Option<String>,
    /// The header, parameter or cookie name.
    pub name: String,
    /// What is sent, with `{{ token }}` where the token goes, e.g. `Bearer {{ token }}`.
    /// Default `{{ token }}`.
    #[serde(default)]
    pub value: Option<String>,
}

/// Where the `signature` strategy puts the signature.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSignaturePlacement {
    /// `param` (default: the form body when the request has one, else the query, like the
    /// added parameters), `query` or `header`.
    #[serde(default, rename = "in")]
    pub location: Option<String>,
    /// The parameter or header name, e.g. `sign`.
    pub name: String,
}

/// Expressions over a response: `body` is the parsed JSON, `status` the HTTP status. Missing
/// keys are simply undefined here (never an error), so `body.response.flag == 'failure'` is safe.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvelope {
    /// True when the call succeeded.
    pub success: String,
    /// The API's error code, for messages.
    #[serde(default)]
    pub code: Option<String>,
    /// The API's error message.
    pub message: String,
    /// True when a failure is transient and the call may be repeated (conflicts, busy servers);
    /// it is retried with the `http.retry` backoff.
    #[serde(default)]
    pub retryable: Option<String>,
    /// True when the API refuses the call for calling too often (a rate limit such as WDT's
    /// `1012`): every call of the connector waits `http.retry.throttle_wait`, then it is repeated.
    /// HTTP 429 counts as throttled too.
    #[serde(default)]
    pub throttled: Option<String>,
    /// True when a failure means the session is gone: the auth strategy logs in again and the call is repeated.
    #[serde(default)]
    pub reauth: Option<String>,
    /// True when a failure concerns the call as a whole and no record could fix it (no
    /// permission, licence, a user not allowed to call the API, bad parameters): the run stops
    /// with the API's message, nothing is parked and the cursor stays.
    #[serde(default)]
    pub fatal: Option<String>,
}

/// HTTP behaviour of a connector.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// One attempt, from connecting until the last byte of the answer, e.g. `60s`. A server
    /// that answers slower (a drip) fails the attempt. Default `60s`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Connect timeout. Default `10s`.
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// One call in all: its attempts, the waits between them and any login it needs, e.g.
    /// `5m`. A call that would take longer fails and is not repeated. Default `5m`.
    #[serde(default)]
    pub call_timeout: Option<String>,
    /// The largest answer accepted, in bytes after decompression. A larger one fails the call
    /// (it is not repeated). Default 67108864 (64 MiB).
    #[serde(default)]
    pub max_response_bytes: Option<u64>,
    /// At most this many requests per period, across all concurrent calls.
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    /// Retries of transient failures (network errors, 5xx, `retryable` envelopes).
    #[serde(default)]
    pub retry: Option<RawRetry>,
}

/// A sliding-window rate limit.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Requests allowed per period.
    pub requests: u32,
    /// The period, e.g. `60s`.
    pub per: String,
}

/// Retry policy with exponential backoff and jitter.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included. Default 5.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Wait before the second attempt; doubles each time. Default `1s`.
    #[serde(default)]
    pub initial_backoff: Option<String>,
    /// Longest wait between attempts. Default `30s`.
    #[serde(default)]
    pub max_backoff: Option<String>,
    /// How long every call waits after the API said it is called too often (`throttled`, or
    /// HTTP 429; a longer `Retry-After` wins). Default `30s`.
    #[serde(default)]
    pub throttle_wait: Option<String>,
    /// How many throttled answers in a row one call accepts before the run stops. Default 6.
    #[serde(default)]
    pub throttle_attempts: Option<u32>,
    /// The longest `Retry-After` obeyed, e.g. `2m`. A server that asks for a longer pause
    /// fails the call at once, saying what it asked. Default `2m`.
    #[serde(default)]
    pub max_retry_after: Option<String>,
}

/// One API operation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOperation {
    /// What the operation does, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// `read` (a source: records, pagination, window), `write` (a target: batches, per-record
    /// results), `lookup` (finds written records by key), `update` (sends one changed record by
    /// its target id) or `action` (one call about one record by its target id).
    pub kind: OperationKind,
    /// HTTP method: `GET`, `POST`, `PUT`, `PATCH` or `DELETE`. Default `POST`.
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// Path appended to the connector's `base_url`; a template, e.g. `/contacts/{{ key }}`.
    /// It reads `params` (the merged parameters), `vars`, `env`, and `records` and `keys` (a
    /// batch write), `record` and `key` (a write without `batch`), or `keys` (a lookup; `key`
    /// too when its `rows.max_keys` is 1). Each segment a template writes is percent-encoded, so a value holding `/` or
    /// `?` stays inside its segment. Default: none.
    #[serde(default)]
    pub path: Option<String>,
    /// Query parameters sent in the URL with any method and encoding (templates reading what
    /// `path` reads). A parameter whose value is empty (`null`) is left out.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// How parameters travel: `form` (urlencoded body), `query` (URL), or `json` (the `body` template).
    pub encoding: Encoding,
    /// Parameters (templates), merged over the connector's; a flow's `params` override these.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Parameters a flow must give.
    #[serde(default)]
    pub required_params: Vec<String>,
    /// Extra HTTP headers (templates reading what `path` reads). A header whose value is empty
    /// (`null`) is left out.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON request body (`encoding: json`), a YAML tree of templates. It reads `params`
    /// (the merged parameters) and what `path` reads: `records` and `keys` (a batch write),
    /// `record` and `key` (a one-record write), `keys` (and `key`) (a lookup), `record`, `key`,
    /// `target_id` and `target_number` (an update; an action all but `record`). A read sends
    /// it instead of its parameters (a POST search taking the cursor in the body).
    #[serde(default)]
    pub body: Option<Value>,
    /// Overrides the connector's envelope for this operation.
    #[serde(default)]
    pub envelope: Option<RawEnvelope>,
    /// JSON Schema of one record (read) or one target record (write), relative to this file;
    /// may use `{{ params.<name> }}`. `engine check` checks mappings against it.
    #[serde(default)]
    pub schema: Option<String>,
    /// JSON Schema of the parameters a flow gives this operation, relative to this file.
    /// `engine check` warns about a key a closed object there does not list (a misspelt
    /// request option), with the closest known key.
    #[serde(default)]
    pub params_schema: Option<String>,
    /// Read: JSONPath of the records in a response.
    #[serde(default)]
    pub records: Option<String>,
    /// Read: what an answer without the `records` list means. `error` (the default): the
    /// window fails, unless the answer itself says it holds nothing (a total of 0, an empty
    /// body), since an error answer the envelope let through looks the same (a `has_more`
    /// expression cannot tell: it is false for an answer without the key too);
    /// `empty`: no records, for an API that leaves an empty list out.
    #[serde(default)]
    pub records_absent: Option<RecordsAbsent>,
    /// Read: JSONPath of the total number of matching records.
    #[serde(default)]
    pub total: Option<String>,
    /// Read: how pages are requested.
    #[serde(default)]
    pub pagination: Option<RawPagination>,
    /// Read: the time window the API filters on.
    #[serde(default)]
    pub window: Option<RawOperationWindow>,
    /// Write: batch limits; without it the write sends one record per call.
    #[serde(default)]
    pub batch: Option<RawBatch>,
    /// Write: where the per-record outcomes are in a response.
    #[serde(default)]
    pub results: Option<RawResults>,
    /// Lookup: where the found rows are and what they hold.
    #[serde(default)]
    pub rows: Option<RawRows>,
    /// Update: an expression over the answer (`body`, `status`, `headers`), true when the
    /// target refused because the record is audited, approved or locked (Kingdee: MsgCode 12).
    #[serde(default)]
    pub audited: Option<String>,
    /// Update: the actions (`kind: action`) that un-audit a record, sent in order before the
    /// update is sent again when the flow says `allow_unaudit: true`.
    #[serde(default)]
    pub unaudit: Vec<String>,
    /// Update: the actions that audit the record again afterwards, in order (Kingdee: submit,
    /// then audit).
    #[serde(default)]
    pub reaudit: Vec<String>,
    /// Action: an expression over the answer, true when the record already is in the state the
    /// action produces (counted as done, so a step repeated after a crash is harmless).
    #[serde(default)]
    pub already: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Reads records (a flow source).
    Read,
    /// Writes records, in batches or one per call (a flow target).
    Write,
    /// Finds already-written records by key.
    Lookup,
    /// Sends one changed record by the target id recorded in the ledger.
    Update,
    /// One call about one record by target id (un-audit, submit, audit).
    Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
}

impl HttpMethod {
    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `application/x-www-form-urlencoded` body.
    Form,
    /// URL query string.
    Query,
    /// JSON body built from `body`.
    Json,
}

/// How the pages of one window are requested. Every read operation declares it: a reader
/// that does not know how to ask for more would take the first answer for the whole window.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPagination {
    /// `page` (page numbers, the default), `offset` (offset and limit), `cursor` (a token
    /// from each answer sent with the next request), `link` (`Link: <…>; rel="next"`),
    /// `next_url` (a URL in the body) or `none` (one answer holds the whole window).
    #[serde(default)]
    pub strategy: Option<PaginationStrategy>,
    /// `page`: number of the first page (0 for WDT). Default 0.
    #[serde(default)]
    pub first_page: Option<u32>,
    /// Largest page size the API accepts (`page`, `offset`: required). Under `none`, an answer
    /// holding this many records is taken for a cut-off one and fails the window.
    #[serde(default)]
    pub max_page_size: Option<u32>,
    /// `page`: the total count is only in the first page's response (WDT: `total_count` on page 0).
    #[serde(default)]
    pub total_on_first_page_only: Option<bool>,
    /// `cursor`: JSONPath of the next token in the body, e.g. `$.paging.next.after`.
    #[serde(default)]
    pub cursor: Option<String>,
    /// `cursor`: the response header holding the next token (instead of `cursor`).
    #[serde(default)]
    pub cursor_header: Option<String>,
    /// `cursor`, `link`, `next_url`: an expression over `body`, `status` and `headers` that
    /// is false on the last page, e.g. `body.has_more` (`body.has_more == 'true'` when the API
    /// sends it as text: the text "false" is true).
    #[serde(default)]
    pub has_more: Option<String>,
    /// `next_url`: JSONPath of the next page's URL in the body, e.g. `$.links.next`.
    #[serde(default)]
    pub next_url: Option<String>,
    /// The response header holding the total count (e.g. `X-Total-Count`), for an API that
    /// gives it there rather than in the body (the operation's `total`).
    #[serde(default)]
    pub total_header: Option<String>,
}

/// What an answer without its records list means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordsAbsent {
    /// No records.
    Empty,
    /// The window fails, unless the answer says it holds nothing.
    Error,
}

/// A pagination strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaginationStrategy {
    /// Page numbers: `{{PAGINATION_START_PAGE}}` and `{{PAGINATION_PAGE_SIZE}}`.
    Page,
    /// Offset and limit: `{{PAGINATION_OFFSET}}` and `{{PAGINATION_PAGE_SIZE}}`.
    Offset,
    /// A token from the last answer in `{{PAGINATION_CURSOR}}` (null on the first request).
    Cursor,
    /// The URL of the `Link` header's `rel="next"`, on the connector's origin.
    Link,
    /// A URL from the body, on the connector's origin.
    NextUrl,
    /// One answer holds the whole window.
    None,
}

/// The API's time window.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOperationWindow {
    /// Longest window the API accepts, e.g. `30d`; at most `3660d`.
    pub max_span: String,
    /// The record field the window filters on (last-modified time).
    #[serde(default)]
    pub field: Option<String>,
}

/// Batch limits of a write operation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    /// Most records per call.
    pub max_size: u32,
    /// Records per call unless the flow says otherwise.
    #[serde(default)]
    pub default_size: Option<u32>,
    /// Calls in flight at once unless the flow says otherwise. Default 1.
    #[serde(default)]
    pub concurrency: Option<u32>,
}

/// Where a write response reports each record's outcome.
///
/// A batch write (`batch:`) names lists of items and item fields: `successes` and `errors`
/// (or one `items` list), matched to records by `index` (position in the batch) or `key`
/// (the item echoes the record key), or by order when `items` has neither. A one-record write
/// (no `batch:`) needs none of this: its answer is its record's result, and `id`, `number` and
/// `duplicate` are expressions over the answer's `body`, `status` and `headers`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResults {
    /// Batch: JSONPath of the success items.
    #[serde(default)]
    pub successes: Option<String>,
    /// Batch: JSONPath of the error items.
    #[serde(default)]
    pub errors: Option<String>,
    /// Batch: JSONPath of one list of items instead of `successes` and `errors`: an item with
    /// a non-empty `id` field is written, one with a `message` refused, any other unknown.
    #[serde(default)]
    pub items: Option<String>,
    /// Batch: field of an item holding the record's 0-based position in the batch.
    #[serde(default)]
    pub index: Option<String>,
    /// Batch: field of an item echoing the record key (instead of `index`).
    #[serde(default)]
    pub key: Option<String>,
    /// Batch: field of a success item holding the target's id. One-record write: an expression
    /// over `body`, `status` and `headers`, e.g. `body.id` or
    /// `headers.location | split('/') | last`.
    #[serde(default)]
    pub id: Option<String>,
    /// Batch: field of a success item holding the target's number. One-record write: an
    /// expression, as `id`.
    #[serde(default)]
    pub number: Option<String>,
    /// Batch: field of an error item holding the message.
    #[serde(default)]
    pub message: Option<String>,
    /// Batch: field of an error item naming the field at fault.
    #[serde(default)]
    pub field: Option<String>,
    /// One-record write: an expression true when the target refused the record as one it
    /// already holds; the record is then looked up. Default `status == 409`.
    #[serde(default)]
    pub duplicate: Option<String>,
}

/// Where a lookup response lists found records.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRows {
    /// JSONPath of the rows (`$` when the answer is the record itself, as `GET /customers/{{ key }}`).
    pub path: String,
    /// Expression over `row` giving the record key.
    pub key: String,
    /// Expression over `row` giving the target id.
    pub id: String,
    /// Expression over `row` giving the target number.
    #[serde(default)]
    pub number: Option<String>,
    /// Most keys per lookup call. Default 100. With 1 the lookup's templates may read `key`.
    #[serde(default)]
    pub max_keys: Option<u32>,
    /// Expression over `status`, `body` and `headers`, true when the answer says the key is
    /// not in the target (e.g. `status == 404`). Without it an answer the envelope does not
    /// call a success (a 404 included) stops the run.
    #[serde(default)]
    pub not_found: Option<String>,
}
