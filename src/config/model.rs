//! The validated configuration: what `config::compile` produces and the rest of `engine` uses.
//!
//! Every template is compiled (ids into the flow's [`TemplateSet`]s), every JSONPath parsed,
//! every duration read, every reference resolved. Code after compilation never parses a
//! string that came from YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Duration;
use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value as Json;

use crate::apischema::ApiSchema;
use crate::config::raw::{
    Encoding, FileFormat, FileMode, FileSince, HttpMethod, OnChange, OperationKind,
};
use crate::sign::digest::{Algorithm, Encoding as DigestEncoding};
use crate::sign::qimen::SignMethod;
use crate::template::{Leaf, TemplateId, TemplateSet};
use crate::time::Zone;
use crate::tree::Node;
use crate::value_map::ValueMaps;

/// A compiled flow with both of its connectors.
#[derive(Debug)]
pub struct Flow {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub source: Source,
    pub target: Target,
    pub key: Key,
    /// The flow's `vars`, an object.
    pub vars: Json,
    /// `vars` as templates see it, converted once.
    pub vars_value: minijinja::Value,
    /// What every record's templates see beside the record: `vars`, and the zones the time
    /// filters read the source's naive times in and write the target's times in. Made once:
    /// a record's scope clones it (a list of shared values).
    pub record_names: Vec<(Arc<str>, minijinja::Value)>,
    pub value_maps: Arc<ValueMaps>,
    pub mapping: Node,
    /// Strict templates: the mapping, keys, parameters, bodies and connector settings.
    pub templates: TemplateSet,
    /// Lenient expressions over responses: envelopes and lookup rows.
    pub envelopes: TemplateSet,
    /// When `engine serve` runs the flow; `None`: only `engine run` does.
    pub schedule: Option<Schedule>,
}

/// When `engine serve` runs a flow.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub when: ScheduleKind,
    pub time_zone: chrono_tz::Tz,
}

#[derive(Debug, Clone)]
pub enum ScheduleKind {
    /// A run starts this long after the previous one started.
    Every(std::time::Duration),
    /// A run starts at each time the cron expression names.
    Cron(Box<croner::Cron>),
}

#[derive(Debug)]
pub struct Source {
    pub connector: Connector,
    pub operation: String,
    /// Request parameters: the connector's, the operation's, then the flow's (later ones win).
    pub params: Vec<Param>,
    pub page_size: u32,
    pub window: Option<Window>,
    pub record_schema: Option<ApiSchema>,
}

impl Source {
    pub fn operation(&self) -> &Operation {
        &self.connector.operations[&self.operation]
    }
}

#[derive(Debug)]
pub struct Window {
    /// Where the first run starts (a template over `env`).
    pub start: Leaf,
    pub lag: Duration,
    pub lookback: Duration,
    pub max_span: Duration,
    /// The record field the API filters on (last-modified time), if known.
    pub field: Option<String>,
    /// No parameter reads `CURRENT_TIME`: the API filters on the window's start only, and
    /// records modified after a window's end (by `key.modified`) are left for the next one.
    pub open_ended: bool,
}

#[derive(Debug)]
pub struct Target {
    pub connector: Connector,
    pub operation: String,
    /// The operation's inputs: the connector's, the operation's, then the flow's params.
    pub params: Vec<Param>,
    pub batch_size: u32,
    pub concurrency: Concurrency,
    /// Name of the lookup operation on the same connector.
    pub lookup: Option<String>,
    /// Inputs of the lookup operation (its own params under the flow's target params).
    pub lookup_params: Vec<Param>,
    pub on_change: OnChange,
    /// How a changed record is sent (`on_change: update` or `upsert`).
    pub update: Option<Update>,
    /// Whether an audited record may be un-audited, updated and audited again.
    pub allow_unaudit: bool,
    /// Whether the ledger keeps written records' content for `engine resend`.
    pub keep_records: bool,
    pub record_schema: Option<ApiSchema>,
}

/// How a flow sends a changed record to a key the target already holds.
#[derive(Debug)]
pub struct Update {
    /// The update operation (`kind: update`), or the write operation under `on_change: upsert`.
    pub operation: String,
    /// Its inputs: the connector's, the operation's, then the flow's target params.
    pub params: Vec<Param>,
    /// The actions that un-audit the record, in order (from the update operation).
    pub unaudit: Vec<Action>,
    /// The actions that audit it again, in order.
    pub reaudit: Vec<Action>,
}

/// One action step of an update.
#[derive(Debug)]
pub struct Action {
    pub operation: String,
    pub params: Vec<Param>,
}

impl Target {
    pub fn operation(&self) -> &Operation {
        &self.connector.operations[&self.operation]
    }

    /// The operation a changed record is sent through, if the flow sends changes.
    pub fn update_operation(&self) -> Option<&Operation> {
        self.update
            .as_ref()
            .map(|update| &self.connector.operations[&update.operation])
    }

    pub fn lookup_operation(&self) -> Option<&Operation> {
        self.lookup
            .as_ref()
            .map(|name| &self.connector.operations[name])
    }
}

#[derive(Debug)]
pub struct Key {
    pub source: TemplateId,
    /// The target field holding the key.
    pub target: String,
    pub modified: Option<TemplateId>,
}

/// A named parameter whose value is a tree of templates.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub node: Node,
}

#[derive(Debug)]
pub struct Connector {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub base_url: Leaf,
    pub auth: Auth,
    pub headers: Vec<(String, Leaf)>,
    pub envelope: Envelope,
    pub http: Http,
    pub operations: BTreeMap<String, Operation>,
    /// Field texts that mean "no value" in this API's records (read as `null`).
    pub null_values: crate::template::scope::Nulls,
    /// The zone the API writes naive times in, and placeholders and time filters write in.
    pub time_zone: Zone,
    /// A file connector's files (then `base_url`, `auth` and `envelope` are stand-ins, never
    /// used, and `operations` holds the implicit `read` and `write`).
    pub files: Option<FileConnector>,
}

/// A file connector, validated: see `crate::file`.
#[derive(Debug, Clone)]
pub struct FileConnector {
    /// The path as written, resolved against the connector file's folder.
    pub path: PathBuf,
    pub format: FileFormat,
    pub mode: FileMode,
    /// CSV columns given by `columns:`; `None`: the mapped record's top-level keys.
    pub columns: Option<Vec<FieldPath>>,
    pub since: FileSince,
}

/// A field path of a mapped record, `customer.name` or `lines.0.qty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub text: String,
    pub segments: Vec<String>,
}

impl FieldPath {
    pub fn parse(text: &str) -> FieldPath {
        FieldPath {
            text: text.to_string(),
            segments: text.split('.').map(str::to_string).collect(),
        }
    }

    /// The value at this path in `record` (a digit segment also indexes a list).
    pub fn select<'a>(&self, record: &'a Json) -> Option<&'a Json> {
        self.segments
            .iter()
            .try_fold(record, |value, segment| match value {
                Json::Object(fields) => fields.get(segment),
                Json::Array(items) => items.get(segment.parse::<usize>().ok()?),
                _ => None,
            })
    }
}

/// An authentication strategy with its compiled parameters.
#[derive(Debug)]
pub enum Auth {
    None,
    QimenSign {
        app_key: Leaf,
        secret: Leaf,
        sign_method: SignMethod,
    },
    Kingdee(Box<KingdeeAuth>),
    ApiKey {
        in_query: bool,
        name: String,
        value: Leaf,
    },
    Bearer {
        token: Leaf,
    },
    Basic {
        username: Leaf,
        password: Leaf,
    },
    OAuth2(Box<OAuth2Auth>),
    Login(Box<LoginAuth>),
    Signature(Box<SignatureAuth>),
}

/// `oauth2_client_credentials`.
#[derive(Debug)]
pub struct OAuth2Auth {
    pub token_url: Leaf,
    pub client_id: Leaf,
    pub client_secret: Leaf,
    pub scope: Option<Leaf>,
    pub audience: Option<Leaf>,
    /// `client_secret_basic`: the credentials go in an `Authorization: Basic` header.
    pub basic: bool,
}

/// `login`.
#[derive(Debug)]
pub struct LoginAuth {
    pub method: HttpMethod,
    pub path: Leaf,
    pub form: Vec<(String, Leaf)>,
    pub json: Vec<(String, Leaf)>,
    pub token: LoginToken,
    pub send: Placement,
}

#[derive(Debug)]
pub enum LoginToken {
    Body(JsonPath),
    Cookie(String),
}

/// Where a session token goes: `prefix + token + suffix` in a header, parameter or cookie.
#[derive(Debug, Clone)]
pub struct Placement {
    pub location: PlaceIn,
    pub name: String,
    pub prefix: String,
    pub suffix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceIn {
    Header,
    Query,
    Cookie,
}

/// `signature`. Its templates depend on the request, so the signer compiles their texts (checked
/// here, at load) into its own environment when the run starts.
#[derive(Debug)]
pub struct SignatureAuth {
    pub secret: Leaf,
    /// Added parameters: name and template text.
    pub params: Vec<(String, String)>,
    pub string_to_sign: String,
    pub algorithm: Algorithm,
    pub encoding: DigestEncoding,
    pub location: SignatureIn,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureIn {
    /// The form body when the request has one, else the query.
    Param,
    Query,
    Header,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KingdeeMode {
    AppSignature,
    Password,
    /// App signature when both app id and secret are non-empty, else password.
    Auto,
}

#[derive(Debug)]
pub struct KingdeeAuth {
    pub mode: KingdeeMode,
    pub acct_id: Leaf,
    pub username: Leaf,
    pub app_id: Option<Leaf>,
    pub app_secret: Option<Leaf>,
    pub password: Option<Leaf>,
    pub lcid: Option<Leaf>,
    pub org_num: Option<Leaf>,
}

/// Response classification; ids are in the flow's `envelopes` set.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub success: TemplateId,
    pub code: Option<TemplateId>,
    pub message: TemplateId,
    pub retryable: Option<TemplateId>,
    pub throttled: Option<TemplateId>,
    pub reauth: Option<TemplateId>,
    pub fatal: Option<TemplateId>,
}

#[derive(Debug, Clone)]
pub struct Http {
    /// One attempt, the body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// One call, every attempt and wait included.
    pub call_timeout: Duration,
    pub max_response_bytes: u64,
    pub rate_limit: Option<RateLimit>,
    pub retry: Retry,
}

impl Default for Http {
    /// The documented defaults of `http`.
    fn default() -> Http {
        Http {
            timeout: Duration::seconds(60),
            connect_timeout: Duration::seconds(10),
            call_timeout: Duration::minutes(5),
            max_response_bytes: 64 * 1024 * 1024,
            rate_limit: None,
            retry: Retry::default(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub throttle_wait: Duration,
    pub throttle_attempts: u32,
    pub max_retry_after: Duration,
}

impl Default for Retry {
    /// The documented defaults of `http.retry`.
    fn default() -> Retry {
        Retry {
            attempts: 5,
            initial_backoff: Duration::seconds(1),
            max_backoff: Duration::seconds(30),
            throttle_wait: Duration::seconds(30),
            throttle_attempts: 6,
            max_retry_after: Duration::minutes(2),
        }
    }
}

#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub kind: OperationKind,
    pub method: HttpMethod,
    pub path: RequestPath,
    pub encoding: Encoding,
    pub required_params: Vec<String>,
    /// Query parameters sent with any method, besides those of `encoding: query`.
    pub query: Vec<(String, Leaf)>,
    /// Headers evaluated per request, after the connector's.
    pub headers: Vec<(String, Leaf)>,
    pub body: Option<Node>,
    pub envelope: Option<Envelope>,
    pub records: Option<JsonPath>,
    /// An answer without the records list holds no records (`records_absent: empty`); else
    /// only when the answer says so (a total of 0, an empty body).
    pub records_absent_empty: bool,
    pub total: Option<JsonPath>,
    pub pagination: Option<Pagination>,
    pub window: Option<OperationWindow>,
    pub batch: Option<Batch>,
    pub results: Option<Results>,
    pub rows: Option<Rows>,
    /// Update: an expression over the answer, true when the record is audited (or locked).
    pub audited: Option<TemplateId>,
    /// Action: an expression over the answer, true when the record already is in the state
    /// the action produces.
    pub already: Option<TemplateId>,
}

/// An operation's path: the text as written, cut into segments at every `/` outside a
/// template tag. A literal segment is sent as written; what a templated segment renders is
/// percent-encoded, so that no value can add a segment or a query.
#[derive(Debug, Clone, Default)]
pub struct RequestPath {
    pub text: String,
    pub segments: Vec<Leaf>,
}

/// A parsed JSONPath and the text it came from.
#[derive(Debug, Clone)]
pub struct JsonPath {
    pub text: String,
    pub query: JpQuery,
}

#[cfg(test)]
impl JsonPath {
    /// The path `text` parsed, for tests (a bad path panics).
    pub fn of(text: &str) -> JsonPath {
        JsonPath {
            text: text.to_string(),
            query: jsonpath_rust::parser::parse_json_path(text).unwrap(),
        }
    }
}

impl JsonPath {
    /// Every value the path selects in `value`.
    pub fn select<'a>(&self, value: &'a Json) -> Vec<&'a Json> {
        jsonpath_rust::query::js_path_process(&self.query, value)
            .map(|found| found.into_iter().map(|r| r.val).collect())
            .unwrap_or_default()
    }
}

/// How a read operation pages through a window (see `source::strategy`).
#[derive(Debug, Clone)]
pub struct Pagination {
    pub strategy: PagingStrategy,
    /// The largest page the API gives: the page size of `page` and `offset`; under the other
    /// strategies an answer holding this many records signals that more were cut off.
    pub max_page_size: Option<u32>,
    /// The header holding the total count, lowercase (instead of the operation's `total`).
    pub total_header: Option<String>,
}

#[derive(Debug, Clone)]
pub enum PagingStrategy {
    Page {
        first_page: u32,
        total_on_first_page_only: bool,
    },
    Offset,
    Cursor {
        from: CursorFrom,
        /// An expression (in the flow's `envelopes` set) false on the last page.
        has_more: Option<TemplateId>,
    },
    Link {
        has_more: Option<TemplateId>,
    },
    NextUrl {
        path: JsonPath,
        has_more: Option<TemplateId>,
    },
    None,
}

/// Where the next cursor is in an answer.
#[derive(Debug, Clone)]
pub enum CursorFrom {
    Body(JsonPath),
    /// A header name, lowercase.
    Header(String),
}

impl Pagination {
    /// Whether pages are numbered (the drift-safe page plan reads them).
    pub fn numbered(&self) -> bool {
        matches!(
            self.strategy,
            PagingStrategy::Page { .. } | PagingStrategy::Offset
        )
    }
}

#[derive(Debug, Clone)]
pub struct OperationWindow {
    pub max_span: Duration,
    pub field: Option<String>,
}

/// How many write calls a run keeps in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    Fixed(u32),
    /// Starts at `initial`, moves between 1 and `max` with the target's latency.
    Adaptive {
        initial: u32,
        max: u32,
    },
}

impl Concurrency {
    /// The most write calls ever in flight at once.
    pub fn max(self) -> u32 {
        match self {
            Concurrency::Fixed(n) => n.max(1),
            Concurrency::Adaptive { max, .. } => max.max(1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub max_size: u32,
    pub default_size: u32,
    pub concurrency: u32,
}

/// How a write's answer reports each record's outcome.
#[derive(Debug, Clone)]
pub enum Results {
    /// Several records per call: items in lists, matched to records.
    Batch(BatchResults),
    /// One record per call: the answer is the record's result.
    One(OneResults),
}

impl Results {
    /// Whether `body` reports any record's outcome (then an HTTP 5xx is an answer, not a
    /// transient failure).
    pub fn mentions_records(&self, body: &Json) -> bool {
        match self {
            Results::Batch(batch) => match &batch.lists {
                ResultLists::Split { successes, errors } => {
                    !successes.select(body).is_empty() || !errors.select(body).is_empty()
                }
                ResultLists::Items(items) => !items.select(body).is_empty(),
            },
            Results::One(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BatchResults {
    pub lists: ResultLists,
    pub matched_by: MatchedBy,
    /// Item fields.
    pub id: String,
    pub number: Option<String>,
    pub message: String,
    pub field: Option<String>,
}

impl BatchResults {
    /// Whether `body` lists items that may be refusals (then a failed call is not refused as
    /// a whole).
    pub fn lists_refusals(&self, body: &Json) -> bool {
        match &self.lists {
            ResultLists::Split { errors, .. } => !errors.select(body).is_empty(),
            ResultLists::Items(items) => !items.select(body).is_empty(),
        }
    }
}

/// Where a batch answer lists its items.
#[derive(Debug, Clone)]
pub enum ResultLists {
    /// Success items and error items apart.
    Split {
        successes: JsonPath,
        errors: JsonPath,
    },
    /// One list: an item with an id is written, one with a message refused.
    Items(JsonPath),
}

/// How an item names its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchedBy {
    /// This item field holds the record's 0-based position in the batch.
    Index(String),
    /// This item field echoes the record key.
    Key(String),
    /// The items are in batch order (`items` only).
    Order,
}

/// A one-record write's result: expressions over the answer's `body`, `status` and `headers`,
/// in the flow's `envelopes` set.
#[derive(Debug, Clone)]
pub struct OneResults {
    pub id: Option<TemplateId>,
    pub number: Option<TemplateId>,
    /// True when the target refused the record as one it holds; `None`: `status == 409`.
    pub duplicate: Option<TemplateId>,
}

#[derive(Debug, Clone)]
pub struct Rows {
    pub path: JsonPath,
    /// The list `path` selects the items of (`$.data` for `$.data[*]`): an answer without it
    /// cannot say which keys are absent.
    pub list: Option<JsonPath>,
    /// Expressions over `row`, in the flow's `envelopes` set.
    pub key: TemplateId,
    pub id: TemplateId,
    pub number: Option<TemplateId>,
    pub max_keys: u32,
    /// Expression over `status`, `body`, `headers`: the key is not in the target.
    pub not_found: Option<TemplateId>,
}

/// The names every placeholder-aware template may read in source parameters.
pub const PLACEHOLDERS: &[&str] = &[
    "LAST_SYNC_TIME",
    "CURRENT_TIME",
    "PAGINATION_PAGE_SIZE",
    "PAGINATION_START_PAGE",
    "PAGINATION_OFFSET",
    "PAGINATION_CURSOR",
];
