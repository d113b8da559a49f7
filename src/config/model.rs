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
use crate::config::raw::{Encoding, HttpMethod, OnChange, OperationKind};
use crate::sign::qimen::SignMethod;
use crate::template::{Leaf, TemplateId, TemplateSet};
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
}

#[derive(Debug)]
pub struct Target {
    pub connector: Connector,
    pub operation: String,
    /// The operation's inputs: the connector's, the operation's, then the flow's params.
    pub params: Vec<Param>,
    pub batch_size: u32,
    pub concurrency: u32,
    /// Name of the lookup operation on the same connector.
    pub lookup: Option<String>,
    /// Inputs of the lookup operation (its own params under the flow's target params).
    pub lookup_params: Vec<Param>,
    pub on_change: OnChange,
    pub record_schema: Option<ApiSchema>,
}

impl Target {
    pub fn operation(&self) -> &Operation {
        &self.connector.operations[&self.operation]
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
    pub null_values: Vec<String>,
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
    pub path: String,
    pub encoding: Encoding,
    pub required_params: Vec<String>,
    pub headers: Vec<(String, Leaf)>,
    pub body: Option<Node>,
    pub envelope: Option<Envelope>,
    pub records: Option<JsonPath>,
    pub total: Option<JsonPath>,
    pub pagination: Option<Pagination>,
    pub window: Option<OperationWindow>,
    pub batch: Option<Batch>,
    pub results: Option<Results>,
    pub rows: Option<Rows>,
}

/// A parsed JSONPath and the text it came from.
#[derive(Debug, Clone)]
pub struct JsonPath {
    pub text: String,
    pub query: JpQuery,
}

impl JsonPath {
    /// Every value the path selects in `value`.
    pub fn select<'a>(&self, value: &'a Json) -> Vec<&'a Json> {
        jsonpath_rust::query::js_path_process(&self.query, value)
            .map(|found| found.into_iter().map(|r| r.val).collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Pagination {
    pub first_page: u32,
    pub max_page_size: u32,
    pub total_on_first_page_only: bool,
}

#[derive(Debug, Clone)]
pub struct OperationWindow {
    pub max_span: Duration,
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub max_size: u32,
    pub default_size: u32,
    pub concurrency: u32,
}

#[derive(Debug, Clone)]
pub struct Results {
    pub successes: JsonPath,
    pub errors: JsonPath,
    pub index: String,
    pub id: String,
    pub number: Option<String>,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rows {
    pub path: JsonPath,
    /// Expressions over `row`, in the flow's `envelopes` set.
    pub key: TemplateId,
    pub id: TemplateId,
    pub number: Option<TemplateId>,
    pub max_keys: u32,
}

/// The names every placeholder-aware template may read in source parameters.
pub const PLACEHOLDERS: &[&str] = &[
    "LAST_SYNC_TIME",
    "CURRENT_TIME",
    "PAGINATION_PAGE_SIZE",
    "PAGINATION_START_PAGE",
];
