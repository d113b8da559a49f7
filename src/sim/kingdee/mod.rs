//! The Kingdee K/3 Cloud (金蝶云星空) WebAPI sandbox (`engine sim kingdee`).
//!
//! A loopback HTTP server that a K3Cloud client — the engine, or the official Python SDK
//! unmodified — cannot tell from a real site for the services a sales-return sync uses:
//! password and app-secret logins, the SDK's app-signature v2, `Save`/`BatchSave`,
//! `Submit`/`Audit`/`UnAudit` of `SAL_RETURNSTOCK`, `ExecuteBillQuery`/`BillQuery`/`View`, with the real envelopes and
//! messages of `specs/kingdee_k3cloud.md`. Behaviours the spec marks inferred are switches.
//!
//! Modules in data-flow order: `service` routes one call and decides everything about it,
//! using `body` (request shapes), `auth` (sessions, logins, signatures), `save`, `operation`
//! (statuses), `query` and `filter`, over `basedata`, `schema` and `bills`; answers are built by `envelope`; faults
//! by `faults`; `state` holds it all behind one lock; `server` is the only module that does
//! IO. Nothing below `server` knows about sockets or sleeps.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::{ArgAction, Parser};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::sign::kingdee as sign;
use crate::sim::CommonOptions;
use crate::time::SystemClock;

mod auth;
mod basedata;
mod bills;
mod body;
mod envelope;
mod faults;
mod filter;
mod mishap;
mod operation;
mod operation_call;
mod query;
mod random;
mod route;
mod save;
mod save_call;
mod schema;
mod server;
mod service;
mod state;
mod withhold;

pub use faults::{BatchMode, ConflictScope};
pub use mishap::Mishap;

/// The synthetic credentials of the spec's worked example (§2.3).
pub const DEFAULT_ACCT_ID: &str = "65a1b2c3d4e5f6";
pub const DEFAULT_USERNAME: &str = "apiuser";
pub const DEFAULT_CLIENT_ID: &str = "299999";
pub const DEFAULT_CLIENT_SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
pub const DEFAULT_APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const DEFAULT_PASSWORD: &str = "Sandbox#2024";

/// Options of the Kingdee sandbox. Every flag starts with `--kingdee-` (and every clap id
/// too) so that `engine sim all` can flatten them beside the WDT sandbox's options.
#[derive(Debug, Clone, clap::Args)]
pub struct KingdeeOptions {
    /// Port to listen on (0 picks a free one).
    #[arg(
        id = "kingdee-port",
        long = "kingdee-port",
        value_name = "PORT",
        default_value_t = 0
    )]
    pub port: u16,
    /// Virtual directory of the site: the `k3cloud` in `/k3cloud/<Service>.common.kdsvc`.
    #[arg(
        id = "kingdee-vdir",
        long = "kingdee-vdir",
        value_name = "DIR",
        default_value = "k3cloud"
    )]
    pub vdir: String,
    /// Data-centre (账套) id: `acctID` of logins, first field of `X-Kd-Appdata`.
    #[arg(id = "kingdee-acct-id", long = "kingdee-acct-id", value_name = "ACCT_ID", default_value = DEFAULT_ACCT_ID)]
    pub acct_id: String,
    /// Data-centre name shown in login results.
    #[arg(
        id = "kingdee-datacenter-name",
        long = "kingdee-datacenter-name",
        value_name = "NAME",
        default_value = "engine sim"
    )]
    pub datacenter_name: String,
    /// The API user.
    #[arg(id = "kingdee-username", long = "kingdee-username", value_name = "USER", default_value = DEFAULT_USERNAME)]
    pub username: String,
    /// The API user's password (for `ValidateUser`).
    #[arg(id = "kingdee-password", long = "kingdee-password", value_name = "PASSWORD", default_value = DEFAULT_PASSWORD)]
    pub password: String,
    /// Client id of the third-party app: the part of the app id before `_`.
    #[arg(id = "kingdee-client-id", long = "kingdee-client-id", value_name = "ID", default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// Decoded client secret (32 base64 characters); the app id is derived from it.
    #[arg(
        id = "kingdee-client-secret",
        long = "kingdee-client-secret", value_name = "SECRET",
        default_value = DEFAULT_CLIENT_SECRET
    )]
    pub client_secret: String,
    /// App secret (应用密钥) that keys `X-Kd-Signature`.
    #[arg(id = "kingdee-app-secret", long = "kingdee-app-secret", value_name = "SECRET", default_value = DEFAULT_APP_SECRET)]
    pub app_secret: String,
    /// Whether the user is in 「允许调用WebAPI接口用户」 (else every business call fails, MsgCode 11).
    #[arg(
        id = "kingdee-webapi-allowed",
        long = "kingdee-webapi-allowed", value_name = "BOOL",
        default_value_t = true,
        action = ArgAction::Set
    )]
    pub webapi_allowed: bool,
    /// Wrong passwords in a row that lock the user.
    #[arg(
        id = "kingdee-lockout-after",
        long = "kingdee-lockout-after",
        value_name = "N",
        default_value_t = 5
    )]
    pub lockout_after: u32,
    /// Idle lifetime of a session, in seconds.
    #[arg(
        id = "kingdee-session-ttl-secs",
        long = "kingdee-session-ttl-secs",
        value_name = "SECS",
        default_value_t = 1200
    )]
    pub session_ttl_secs: u64,
    /// Gateway mode: refuse signed calls whose `x-api-timestamp` is more than this many
    /// seconds off (HTTP 519, errcode 4006), as `api.kingdee.com/galaxyapi` does. Off if unset.
    #[arg(
        id = "kingdee-gateway-skew-secs",
        long = "kingdee-gateway-skew-secs",
        value_name = "SECS"
    )]
    pub gateway_skew_secs: Option<u64>,
    /// Message for missing or forbidden base data when `IsVerifyBaseDataField` is true;
    /// `{caption}`, `{code}` and `{key}` are replaced.
    #[arg(
        id = "kingdee-basedata-message",
        long = "kingdee-basedata-message", value_name = "TEMPLATE",
        default_value = save::DEFAULT_BASEDATA_MESSAGE
    )]
    pub basedata_message: String,
    /// MsgCode of that error: 9 (指定字段/值不存在) or 11 (验证失败).
    #[arg(
        id = "kingdee-basedata-msgcode",
        long = "kingdee-basedata-msgcode", value_name = "CODE",
        default_value_t = 9,
        value_parser = clap::value_parser!(u32).range(9..=11)
    )]
    pub basedata_msgcode: u32,
    /// Settlement currency filled in when a bill has none (empty: none, so it is required).
    #[arg(
        id = "kingdee-default-settle-currency",
        long = "kingdee-default-settle-currency",
        value_name = "CODE",
        default_value = "PRE001"
    )]
    pub default_settle_currency: String,
    /// Make `FDate` required instead of defaulting to today.
    #[arg(id = "kingdee-require-date", long = "kingdee-require-date")]
    pub require_date: bool,
    /// Accept duplicate `FBillNo` values (turn the uniqueness rule off).
    #[arg(
        id = "kingdee-allow-duplicate-bill-no",
        long = "kingdee-allow-duplicate-bill-no"
    )]
    pub allow_duplicate_bill_no: bool,
    /// Delay before every WebAPI call, in milliseconds.
    #[arg(
        id = "kingdee-latency-ms",
        long = "kingdee-latency-ms",
        value_name = "MS",
        default_value_t = 0
    )]
    pub latency_ms: u64,
    /// Extra delay per bill of a save, after the commit, in milliseconds.
    #[arg(
        id = "kingdee-latency-per-bill-ms",
        long = "kingdee-latency-per-bill-ms",
        value_name = "MS",
        default_value_t = 0
    )]
    pub latency_per_bill_ms: u64,
    /// Most writes (`Save`, `BatchSave`, `Submit`, `Audit`, `UnAudit`) under way at once;
    /// beyond, a write is answered MsgCode 13 busy and not carried out. Default: no limit.
    #[arg(id = "kingdee-capacity", long = "kingdee-capacity", value_name = "N")]
    pub capacity: Option<usize>,
    /// Share (0..1) of WebAPI calls answered HTTP 500 without doing anything.
    #[arg(
        id = "kingdee-error-rate",
        long = "kingdee-error-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub error_rate: f64,
    /// Share (0..1) of writes (saves, Submit/Audit/UnAudit) that commit, then close the
    /// connection without a response.
    #[arg(
        id = "kingdee-commit-then-drop-rate",
        long = "kingdee-commit-then-drop-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub commit_then_drop_rate: f64,
    /// Share (0..1) of writes (saves, Submit/Audit/UnAudit) refused with the MsgCode 13
    /// network-control conflict.
    #[arg(
        id = "kingdee-conflict-rate",
        long = "kingdee-conflict-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub conflict_rate: f64,
    /// `call`: a conflict refuses the whole save; `bill`: only its first bill, the others are saved.
    #[arg(
        id = "kingdee-conflict-scope",
        long = "kingdee-conflict-scope", value_name = "SCOPE",
        value_enum,
        default_value_t = ConflictScope::Call
    )]
    pub conflict_scope: ConflictScope,
    /// `independent`: each BatchSave packet succeeds or fails alone; `atomic`: all or none.
    #[arg(
        id = "kingdee-batch-mode",
        long = "kingdee-batch-mode", value_name = "MODE",
        value_enum,
        default_value_t = BatchMode::Independent
    )]
    pub batch_mode: BatchMode,
    /// A bill number someone else holds: saving (or submitting, auditing…) it meets the
    /// MsgCode 13 network-control conflict while the other bills of the call go through.
    /// Repeatable.
    #[arg(
        id = "kingdee-conflict-bill-no",
        long = "kingdee-conflict-bill-no",
        value_name = "BILL_NO"
    )]
    pub conflict_bill_nos: Vec<String>,
    /// MsgCode of the `msgcode` mishap (0–15; 1 = 上下文丢失, the session is lost).
    #[arg(
        id = "kingdee-msgcode",
        long = "kingdee-msgcode",
        value_name = "CODE",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(mishap::MAX_MSGCODE))
    )]
    pub msgcode: u32,
    /// Share (0..1) of business calls answered with that MsgCode, not carried out.
    #[arg(
        id = "kingdee-msgcode-rate",
        long = "kingdee-msgcode-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub msgcode_rate: f64,
    /// Share (0..1) of calls answered with a plain-text `response_error:` body, not carried out.
    #[arg(
        id = "kingdee-response-error-rate",
        long = "kingdee-response-error-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub response_error_rate: f64,
    /// Share (0..1) of calls answered with the HTML login page (HTTP 200), not carried out.
    #[arg(
        id = "kingdee-html-login-rate",
        long = "kingdee-html-login-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub html_login_rate: f64,
    /// Share (0..1) of calls carried out and answered with the first half of their JSON.
    #[arg(
        id = "kingdee-truncated-json-rate",
        long = "kingdee-truncated-json-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub truncated_json_rate: f64,
    /// Share (0..1) of saves whose answer leaves one saved bill out of `SuccessEntitys`.
    #[arg(
        id = "kingdee-missing-entity-rate",
        long = "kingdee-missing-entity-rate",
        value_name = "SHARE",
        default_value_t = 0.0
    )]
    pub missing_entity_rate: f64,
    /// Arm a mishap for the next calls: `MISHAP[:CALLS[:ON]]`, ON being `any`, `login`,
    /// `save` or `query` (e.g. `msgcode:2:save`). Repeatable; armed mishaps come before rates.
    #[arg(
        id = "kingdee-arm",
        long = "kingdee-arm",
        value_name = "MISHAP[:CALLS[:ON]]",
        value_parser = parse_armed
    )]
    pub arm: Vec<mishap::Armed>,
}

/// `MISHAP[:CALLS[:ON]]` of `--kingdee-arm`.
fn parse_armed(text: &str) -> std::result::Result<mishap::Armed, String> {
    let mut parts = text.split(':');
    let value = |part: &str| serde_json::Value::String(part.trim().to_string());
    let mishap: Mishap = serde_json::from_value(value(parts.next().unwrap_or_default()))
        .map_err(|_| {
            format!("`{text}`: the mishap is one of msgcode, response_error, html_login, truncated_json, missing_entity")
        })?;
    let calls = match parts.next() {
        None => 1,
        Some(calls) => calls
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: CALLS must be a count, not `{calls}`"))?,
    };
    let on = match parts.next() {
        None => mishap::Calls::Any,
        Some(on) => serde_json::from_value(value(on))
            .map_err(|_| format!("`{text}`: ON is one of any, login, save, query"))?,
    };
    if let Some(extra) = parts.next() {
        return Err(format!("`{text}`: unexpected `:{extra}`"));
    }
    let armed = mishap::Armed {
        mishap,
        calls,
        on,
        msgcode: None,
        done: None,
        saved: None,
    };
    armed.validate().map_err(|err| format!("`{text}`: {err}"))?;
    Ok(armed)
}

/// Parses nothing but the defaults, so that `Default` can never drift from clap.
#[derive(Parser)]
struct DefaultsOnly {
    #[command(flatten)]
    options: KingdeeOptions,
}

impl Default for KingdeeOptions {
    fn default() -> KingdeeOptions {
        DefaultsOnly::parse_from(["kingdee"]).options
    }
}

/// A running Kingdee sandbox; dropping it stops the server.
pub struct KingdeeSandbox {
    pub addr: SocketAddr,
    url: String,
    acct_id: String,
    username: String,
    app_id: String,
    app_secret: Secret,
    password: Secret,
    _shutdown: watch::Sender<()>,
}

impl KingdeeSandbox {
    /// The site root a client is given, with the virtual directory and a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The variables the bundled flow reads.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KINGDEE_URL", self.url.clone()),
            ("KINGDEE_ACCT_ID", self.acct_id.clone()),
            ("KINGDEE_USERNAME", self.username.clone()),
            ("KINGDEE_APP_ID", self.app_id.clone()),
            ("KINGDEE_APP_SECRET", self.app_secret.expose().to_string()),
            ("KINGDEE_PASSWORD", self.password.expose().to_string()),
        ]
    }
}

/// Check the options and build the sandbox's initial state.
fn initial_state(
    common: &CommonOptions,
    options: &KingdeeOptions,
) -> Result<(state::State, save::SaveConfig, String)> {
    let usage = |message: String| Error::new(ErrorKind::Usage, message);
    if options.vdir.is_empty() || options.vdir.contains('/') {
        return Err(usage(format!(
            "`--kingdee-vdir` must be one path segment, not `{}`",
            options.vdir
        )));
    }
    if options.client_id.is_empty() || options.client_id.contains('_') {
        return Err(usage(format!(
            "`--kingdee-client-id` must be non-empty and without `_`, not `{}`",
            options.client_id
        )));
    }
    let app_id = sign::app_id(&options.client_id, &options.client_secret);
    let (_, decoded) = sign::client_of_app_id(&app_id);
    if decoded != options.client_secret {
        return Err(usage(
            "`--kingdee-client-secret` must be 32 base64 characters (like the default)".to_string(),
        )
        .with_hint("the app id is `<client id>_<encoded secret>`, and only such secrets encode"));
    }
    let basedata_code = match options.basedata_msgcode {
        9 => envelope::MsgCode::FieldNotFound,
        11 => envelope::MsgCode::ValidationFailed,
        other => {
            return Err(usage(format!(
                "`--kingdee-basedata-msgcode` must be 9 or 11, not `{other}`"
            )));
        }
    };
    let faults = faults::Faults {
        latency_ms: options.latency_ms,
        latency_per_bill_ms: options.latency_per_bill_ms,
        error_rate: options.error_rate,
        commit_then_drop_rate: options.commit_then_drop_rate,
        conflict_rate: options.conflict_rate,
        conflict_scope: options.conflict_scope,
        batch_mode: options.batch_mode,
        session_ttl_secs: options.session_ttl_secs,
        capacity: options.capacity,
        conflict_bill_nos: options.conflict_bill_nos.clone(),
        rates: mishap::Rates {
            msgcode: options.msgcode,
            msgcode_rate: options.msgcode_rate,
            response_error_rate: options.response_error_rate,
            html_login_rate: options.html_login_rate,
            truncated_json_rate: options.truncated_json_rate,
            missing_entity_rate: options.missing_entity_rate,
        },
        next: options.arm.clone(),
    };
    faults
        .validate()
        .map_err(|err| usage(format!("invalid Kingdee fault setting: {err}")))?;

    let mut auth = auth::Auth::new(&options.acct_id, &options.datacenter_name);
    auth.lockout_after = options.lockout_after.max(1);
    auth.gateway_skew = options
        .gateway_skew_secs
        .map(|secs| chrono::Duration::seconds(secs.min(i64::MAX as u64) as i64));
    auth.users.push(auth::User {
        username: options.username.clone(),
        password: Secret::new(options.password.clone()),
        webapi_allowed: options.webapi_allowed,
        locked: false,
        failed_logins: 0,
    });
    auth.apps.push(auth::App {
        client_id: options.client_id.clone(),
        client_secret: Secret::new(options.client_secret.clone()),
        app_id: app_id.clone(),
        app_secret: Secret::new(options.app_secret.clone()),
        allowed_users: vec![options.username.clone()],
    });
    let state = state::State {
        auth,
        basedata: basedata::BaseData::seeded(),
        bills: bills::BillStore::default(),
        faults,
        stats: state::Stats::default(),
        random: random::Random::new(common.seed),
        tasks: Default::default(),
    };
    let save_config = save::SaveConfig {
        basedata_message: options.basedata_message.clone(),
        basedata_code,
        default_settle_currency: Some(options.default_settle_currency.trim().to_string())
            .filter(|code| !code.is_empty()),
        date_required: options.require_date,
        unique_bill_no: !options.allow_duplicate_bill_no,
        batch_mode: options.batch_mode,
    };
    Ok((state, save_config, app_id))
}

/// Bind `common.host:options.port`, start serving on the current tokio runtime, and return
/// once the socket listens.
pub async fn start(common: &CommonOptions, options: &KingdeeOptions) -> Result<KingdeeSandbox> {
    let (state, save_config, app_id) = initial_state(common, options)?;
    let listener = TcpListener::bind((common.host, options.port))
        .await
        .map_err(|err| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "cannot listen on `{}:{}` for the Kingdee sandbox",
                    common.host, options.port
                ),
            )
            .with_source(err)
        })?;
    let addr = listener.local_addr().map_err(|err| {
        Error::new(ErrorKind::Io, "cannot read the Kingdee sandbox's address").with_source(err)
    })?;
    let shared = Arc::new(server::Shared {
        state: Mutex::new(state),
        saves_under_way: Default::default(),
        save_config,
        vdir: options.vdir.clone(),
        clock: Box::new(SystemClock),
    });
    let (shutdown, shutdown_receiver) = watch::channel(());
    tokio::spawn(server::serve(
        listener,
        server::router(shared),
        shutdown_receiver,
    ));
    Ok(KingdeeSandbox {
        addr,
        url: format!("http://{}/{}/", server::reachable(addr), options.vdir),
        acct_id: options.acct_id.clone(),
        username: options.username.clone(),
        app_id,
        app_secret: Secret::new(options.app_secret.clone()),
        password: Secret::new(options.password.clone()),
        _shutdown: shutdown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_example_credentials() {
        let options = KingdeeOptions::default();
        assert_eq!(options.port, 0);
        assert_eq!(options.vdir, "k3cloud");
        assert_eq!(options.session_ttl_secs, 1200);
        assert_eq!(options.batch_mode, BatchMode::Independent);
        assert!(options.webapi_allowed);
        let (_, _, app_id) = initial_state(&CommonOptions::default(), &options).unwrap();
        assert_eq!(app_id, "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH");
    }

    async fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn start_listens_and_dropping_the_sandbox_stops_it() {
        let sandbox = start(&CommonOptions::default(), &KingdeeOptions::default())
            .await
            .unwrap();
        let addr = sandbox.addr;
        assert_eq!(
            sandbox.env()[0],
            ("KINGDEE_URL", format!("http://{addr}/k3cloud/"))
        );
        let answer = raw_get(addr, "/_sim/faults").await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(r#""batch_mode":"independent""#), "{answer}");
        drop(sandbox);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for (options, needle) in [
            (
                KingdeeOptions {
                    client_secret: "short".into(),
                    ..KingdeeOptions::default()
                },
                "--kingdee-client-secret",
            ),
            (
                KingdeeOptions {
                    error_rate: 1.5,
                    ..KingdeeOptions::default()
                },
                "error_rate",
            ),
            (
                KingdeeOptions {
                    vdir: "a/b".into(),
                    ..KingdeeOptions::default()
                },
                "--kingdee-vdir",
            ),
            (
                KingdeeOptions {
                    basedata_msgcode: 10,
                    ..KingdeeOptions::default()
                },
                "--kingdee-basedata-msgcode",
            ),
        ] {
            let err = initial_state(&CommonOptions::default(), &options).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage);
            assert!(err.message().contains(needle), "{}", err.message());
        }
    }
}
