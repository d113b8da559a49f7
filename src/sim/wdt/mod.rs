//! The WDT sandbox (`engine sim wdt`): the Qimen router `POST|GET /router/qm` serving
//! `wdt.stockin.order.query.refund`, WDT's direct `POST /openapi2/stockin_order_query_refund.php`
//! and its history twin `his_stockin_order_query_refund.php` (the same signature, parameters and
//! windows over the orders archived by `--wdt-archive-after-days`), and the inspection
//! endpoints under `/_sim/`.
//!
//! Modules in request order: `params` decodes query and body, `gateway` authenticates
//! (Qimen sign or WDT sign, via [`crate::sign`]), `faults` rate-limits and injects failures,
//! `query` validates the business parameters and selects a page, `envelope` writes the JSON,
//! `service` runs that pipeline over the in-memory state, and `server` is the thin axum layer
//! around it. `data` generates the orders from [`crate::sim::catalog`]; `codes` holds every
//! error code and text. Nothing below `server` does IO or reads the clock.
//!
//! Behaviours the spec marks inferred ([I]/[U]) are switches here, each defaulting to the
//! spec's recommendation; see `/_sim/faults` for the ones that change at runtime.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::sim::CommonOptions;
use crate::time::{Clock, SystemClock, parse_instant};

mod codes;
mod data;
mod envelope;
mod faults;
mod gateway;
mod generate;
mod params;
mod query;
mod random;
mod server;
mod service;
mod stats;
mod vocabulary;

pub use data::{Detail, Order};
pub use gateway::{METHOD, SignLengthPolicy};

use faults::{DriftTo, Faults, check_share};
use gateway::{DirectCredentials, QimenCredentials};
use generate::Shares;
use query::Rules;
use service::{Service, Settings, wall_now};

/// The Qimen app key of the caller (8 digits, like a real TOP app key).
pub const DEFAULT_APP_KEY: &str = "21458367";
/// The caller's Qimen app secret. A sandbox value, not a credential of any real system.
pub const DEFAULT_APP_SECRET: &str = "sandbox0qimen0secret0d4c7e2a9b61";
/// WDT's app on Qimen, which every request must target.
pub const DEFAULT_TARGET_APP_KEY: &str = "23017765";
/// The WDT seller account.
pub const DEFAULT_SID: &str = "sandbox01";
/// The `appkey` of the direct `openapi2` endpoint.
pub const DEFAULT_OPENAPI_APPKEY: &str = "sandbox01-ot";
/// The `appsecret` of the direct `openapi2` endpoint.
pub const DEFAULT_OPENAPI_APPSECRET: &str = "sandbox0wdt0secret";
/// How far before start the generated orders end, so a client with a small lag sees them all.
pub const DEFAULT_LAG: Duration = Duration::minutes(5);

/// Options of the WDT sandbox. Every flag starts with `--wdt-` because `engine sim all` puts
/// them beside the Kingdee sandbox's.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct WdtOptions {
    /// Port of the WDT sandbox (0 = an ephemeral port).
    #[arg(long = "wdt-port", default_value_t = 0)]
    pub port: u16,
    /// Number of refund stock-ins generated at start.
    #[arg(long = "wdt-orders", default_value_t = 200)]
    pub orders: usize,
    /// Generated orders are modified within this many days up to `--wdt-until`.
    #[arg(long = "wdt-days", default_value_t = 14)]
    pub days: u32,
    /// Latest `modified` of the generated orders (`yyyy-MM-dd HH:mm:ss`, Asia/Shanghai);
    /// default five minutes before start. Fix it to get byte-identical data across runs.
    #[arg(long = "wdt-until", value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,
    /// Share of orders containing at least one SKU unknown to the Kingdee sandbox.
    #[arg(long = "wdt-unknown-sku-share", default_value_t = 0.05, value_parser = parse_share)]
    pub unknown_sku_share: f64,
    /// Share of orders in status 10/20/30/60, which the default query (status 80) skips.
    #[arg(long = "wdt-other-status-share", default_value_t = 0.1, value_parser = parse_share)]
    pub other_status_share: f64,
    /// Qimen `app_key` the sandbox accepts.
    #[arg(long = "wdt-app-key", default_value = DEFAULT_APP_KEY)]
    pub app_key: String,
    /// Qimen app secret the sandbox verifies signs with.
    #[arg(long = "wdt-app-secret", default_value = DEFAULT_APP_SECRET)]
    pub app_secret: String,
    /// `target_app_key` the sandbox accepts (WDT's app on Qimen).
    #[arg(long = "wdt-target-app-key", default_value = DEFAULT_TARGET_APP_KEY)]
    pub target_app_key: String,
    /// The one WDT seller account (`sid`) that exists.
    #[arg(long = "wdt-sid", default_value = DEFAULT_SID)]
    pub sid: String,
    /// `appkey` of the direct openapi2 endpoint.
    #[arg(long = "wdt-openapi-appkey", default_value = DEFAULT_OPENAPI_APPKEY)]
    pub openapi_appkey: String,
    /// `appsecret` of the direct openapi2 endpoint.
    #[arg(long = "wdt-openapi-appsecret", default_value = DEFAULT_OPENAPI_APPSECRET)]
    pub openapi_appsecret: String,
    /// Allowed Qimen timestamp skew in seconds [inferred].
    #[arg(long = "wdt-qimen-skew-secs", default_value_t = 600)]
    pub qimen_skew_secs: u32,
    /// Allowed openapi2 timestamp skew in seconds (documented: 5 minutes).
    #[arg(long = "wdt-openapi-skew-secs", default_value_t = 300)]
    pub openapi_skew_secs: u32,
    /// How openapi2 sign lengths are counted [inferred: characters, as WDT's PHP server].
    #[arg(long = "wdt-sign-length-unit", value_enum, default_value_t = SignLengthPolicy::Chars)]
    pub sign_length_unit: SignLengthPolicy,
    /// Longest query window in days (documented: 30).
    #[arg(long = "wdt-max-window-days", default_value_t = 30)]
    pub max_window_days: u32,
    /// Largest `page_size` (documented: 100).
    #[arg(long = "wdt-max-page-size", default_value_t = 100)]
    pub max_page_size: u32,
    /// Clamp an out-of-range `page_size` instead of answering an error [inferred: error].
    #[arg(long = "wdt-clamp-page-size")]
    pub clamp_page_size: bool,
    /// Send `total_count` on every page (documented: only when `page_no` is 0).
    #[arg(long = "wdt-total-count-every-page")]
    pub total_count_every_page: bool,
    /// Answer gateway-level failures as TOP's `{"error_response":…}` [inferred: off].
    #[arg(long = "wdt-top-error-response")]
    pub top_error_response: bool,
    /// Requests allowed per `sid` per period; 0 disables the limiter.
    #[arg(long = "wdt-rate-limit", default_value_t = 60)]
    pub rate_limit: u32,
    /// Length of the rate limiter's sliding period in seconds.
    #[arg(long = "wdt-rate-limit-period-secs", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_period_secs: u64,
    /// Delay before every API answer, in milliseconds.
    #[arg(long = "wdt-latency-ms", default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of API requests answered with an HTTP 5xx.
    #[arg(long = "wdt-error-rate", default_value_t = 0.0, value_parser = parse_share)]
    pub error_rate: f64,
    /// Share of authenticated requests answered `1012` (too frequent).
    #[arg(long = "wdt-rate-limit-rate", default_value_t = 0.0, value_parser = parse_share)]
    pub rate_limit_rate: f64,
    /// Chance after each served page that an order on it or an earlier page is modified.
    #[arg(long = "wdt-drift-rate", default_value_t = 0.0, value_parser = parse_share)]
    pub drift_rate: f64,
    /// Where drift moves an order: `now` (it leaves the window) or `end` (the window's last
    /// second: it stays in the window, at its end).
    #[arg(long = "wdt-drift-to", value_enum, default_value_t = DriftTo::Now)]
    pub drift_to: DriftTo,
    /// Chance that a served page lists one of its orders twice.
    #[arg(long = "wdt-duplicate-rate", default_value_t = 0.0, value_parser = parse_share)]
    pub duplicate_rate: f64,
    /// Orders last modified more than this many days ago are archived: only
    /// `his_stockin_order_query_refund.php` serves them, the Qimen router and
    /// `stockin_order_query_refund.php` no longer do [inferred; 0, the default: none are].
    #[arg(long = "wdt-archive-after-days", default_value_t = 0)]
    pub archive_after_days: u32,
}

impl Default for WdtOptions {
    fn default() -> WdtOptions {
        WdtOptions {
            port: 0,
            orders: 200,
            days: 14,
            until: None,
            unknown_sku_share: 0.05,
            other_status_share: 0.1,
            app_key: DEFAULT_APP_KEY.to_string(),
            app_secret: DEFAULT_APP_SECRET.to_string(),
            target_app_key: DEFAULT_TARGET_APP_KEY.to_string(),
            sid: DEFAULT_SID.to_string(),
            openapi_appkey: DEFAULT_OPENAPI_APPKEY.to_string(),
            openapi_appsecret: DEFAULT_OPENAPI_APPSECRET.to_string(),
            qimen_skew_secs: 600,
            openapi_skew_secs: 300,
            sign_length_unit: SignLengthPolicy::Chars,
            max_window_days: 30,
            max_page_size: 100,
            clamp_page_size: false,
            total_count_every_page: false,
            top_error_response: false,
            rate_limit: 60,
            rate_limit_period_secs: 60,
            latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            drift_rate: 0.0,
            drift_to: DriftTo::Now,
            duplicate_rate: 0.0,
            archive_after_days: 0,
        }
    }
}

fn parse_share(text: &str) -> std::result::Result<f64, String> {
    let share: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    check_share(share)
}

fn parse_until(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    parse_instant(text)
}

impl WdtOptions {
    /// Check what clap cannot see when the options are built in code, then split them into
    /// the service's fixed settings and its runtime-adjustable faults.
    fn compile(&self) -> Result<(Settings, Faults)> {
        for (flag, share) in [
            ("--wdt-unknown-sku-share", self.unknown_sku_share),
            ("--wdt-other-status-share", self.other_status_share),
            ("--wdt-error-rate", self.error_rate),
            ("--wdt-rate-limit-rate", self.rate_limit_rate),
            ("--wdt-drift-rate", self.drift_rate),
            ("--wdt-duplicate-rate", self.duplicate_rate),
        ] {
            check_share(share).map_err(|err| Error::usage(format!("{flag}: {err}")))?;
        }
        if self.rate_limit_period_secs == 0 {
            return Err(Error::usage(
                "--wdt-rate-limit-period-secs: must be at least 1",
            ));
        }
        if self.max_page_size == 0 {
            return Err(Error::usage("--wdt-max-page-size: must be at least 1"));
        }
        let settings = Settings {
            qimen: QimenCredentials {
                app_key: self.app_key.clone(),
                app_secret: self.app_secret.clone(),
                target_app_key: self.target_app_key.clone(),
                sid: self.sid.clone(),
                skew: Duration::seconds(i64::from(self.qimen_skew_secs)),
            },
            direct: DirectCredentials {
                sid: self.sid.clone(),
                appkey: self.openapi_appkey.clone(),
                appsecret: self.openapi_appsecret.clone(),
                skew: Duration::seconds(i64::from(self.openapi_skew_secs)),
                length_policy: self.sign_length_unit,
            },
            rules: Rules {
                max_window_days: self.max_window_days,
                max_page_size: self.max_page_size,
                default_page_size: 40.min(self.max_page_size),
                clamp_page_size: self.clamp_page_size,
            },
            total_count_on_every_page: self.total_count_every_page,
            top_error_response: self.top_error_response,
            shares: Shares {
                unknown_sku: self.unknown_sku_share,
                other_status: self.other_status_share,
            },
            archive_after: (self.archive_after_days > 0)
                .then(|| Duration::days(i64::from(self.archive_after_days))),
        };
        let faults = Faults {
            latency_ms: self.latency_ms,
            error_rate: self.error_rate,
            rate_limit_rate: self.rate_limit_rate,
            drift_rate: self.drift_rate,
            drift_to: self.drift_to,
            duplicate_rate: self.duplicate_rate,
            fail_next: 0,
            rate_limit_next: 0,
            rate_limit: self.rate_limit,
            rate_limit_period_secs: self.rate_limit_period_secs,
        };
        Ok((settings, faults))
    }
}

/// A running WDT sandbox. Dropping it (or calling [`WdtSandbox::shutdown`]) stops the server.
pub struct WdtSandbox {
    pub addr: SocketAddr,
    app_key: String,
    app_secret: String,
    target_app_key: String,
    sid: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl WdtSandbox {
    /// `http://host:port`, the root of every endpoint.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Qimen router URL a flow posts to.
    pub fn qimen_url(&self) -> String {
        format!("{}/router/qm", self.base_url())
    }

    /// The variables that point the bundled flow at this sandbox.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WDT_QIMEN_URL", self.qimen_url()),
            ("WDT_APP_KEY", self.app_key.clone()),
            ("WDT_APP_SECRET", self.app_secret.clone()),
            ("WDT_TARGET_APP_KEY", self.target_app_key.clone()),
            ("WDT_SID", self.sid.clone()),
        ]
    }

    /// Stop accepting connections and wait for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WdtSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Generate the data, bind `common.host:options.port` and serve on the current tokio runtime;
/// returns once the socket is listening.
pub async fn start(common: &CommonOptions, options: &WdtOptions) -> Result<WdtSandbox> {
    start_with_clock(common, options, Arc::new(SystemClock)).await
}

/// [`start`] with a chosen clock, for tests that need a fixed "now".
pub async fn start_with_clock(
    common: &CommonOptions,
    options: &WdtOptions,
    clock: Arc<dyn Clock>,
) -> Result<WdtSandbox> {
    let (settings, faults) = options.compile()?;
    let until = match options.until {
        Some(until) => wall_now(until),
        None => wall_now(clock.now() - DEFAULT_LAG),
    };
    let service = Service::new(
        settings,
        faults,
        common.seed,
        options.orders,
        options.days,
        until,
    );
    let bind = SocketAddr::new(common.host, options.port);
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|err| {
        Error::new(
            ErrorKind::Io,
            format!("cannot listen on `{bind}` for the WDT sandbox"),
        )
        .with_hint("choose another port with `--wdt-port`, or 0 for any free port")
        .with_source(err)
    })?;
    let addr = listener.local_addr().map_err(|err| {
        Error::new(ErrorKind::Io, "cannot read the WDT sandbox's address").with_source(err)
    })?;
    let shared = Arc::new(server::Shared {
        service: Mutex::new(service),
        clock,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let app = server::router(shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(WdtSandbox {
        addr,
        app_key: options.app_key.clone(),
        app_secret: options.app_secret.clone(),
        target_app_key: options.target_app_key.clone(),
        sid: options.sid.clone(),
        stop: Some(stop),
        task: Some(task),
    })
}

/// `count` orders as the sandbox makes them by default from `seed`, modified within 20 days
/// up to `until`: realistic records for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn sample_orders(seed: u64, count: usize, until: chrono::NaiveDateTime) -> Vec<Order> {
    let options = WdtOptions::default();
    let shares = Shares {
        unknown_sku: options.unknown_sku_share,
        other_status: options.other_status_share,
    };
    generate::Generator::new(seed).initial(count, 20, until, shares)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        wdt: WdtOptions,
    }

    #[test]
    fn default_equals_the_command_line_defaults() {
        let parsed = Harness::try_parse_from(["engine"]).unwrap();
        assert_eq!(parsed.wdt, WdtOptions::default());
    }

    #[test]
    fn every_flag_is_prefixed_and_shares_are_checked() {
        use clap::CommandFactory;
        for arg in Harness::command().get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            assert!(long.starts_with("wdt-"), "--{long} lacks the wdt- prefix");
        }
        let err = Harness::try_parse_from(["engine", "--wdt-drift-rate", "1.5"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("`1.5` is not a share between 0 and 1")
        );
        let until =
            Harness::try_parse_from(["engine", "--wdt-until", "2024-06-01 12:00:00"]).unwrap();
        assert_eq!(
            until.wdt.until,
            Some(parse_instant("2024-06-01 12:00:00").unwrap())
        );
    }

    /// One HTTP/1.1 request over a raw socket, so this test needs no client library.
    async fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    #[tokio::test]
    async fn starts_in_process_with_the_defaults_and_stops_on_shutdown() {
        let sandbox = start(&CommonOptions::default(), &WdtOptions::default())
            .await
            .unwrap();
        let env: Vec<&str> = sandbox.env().iter().map(|(key, _)| *key).collect();
        assert_eq!(
            env,
            [
                "WDT_QIMEN_URL",
                "WDT_APP_KEY",
                "WDT_APP_SECRET",
                "WDT_TARGET_APP_KEY",
                "WDT_SID"
            ]
        );
        assert_eq!(
            sandbox.qimen_url(),
            format!("http://{}/router/qm", sandbox.addr)
        );
        let addr = sandbox.addr;
        let response = raw_get(addr, "/_sim/orders").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("\"order_no\":\"RK"));
        sandbox.shutdown().await;
        assert!(
            raw_get(addr, "/_sim/stats").await.is_err(),
            "still listening"
        );
    }

    #[tokio::test]
    async fn a_taken_port_is_an_io_error_with_a_hint() {
        let first = start(&CommonOptions::default(), &WdtOptions::default())
            .await
            .unwrap();
        let options = WdtOptions {
            port: first.addr.port(),
            ..WdtOptions::default()
        };
        let err = start(&CommonOptions::default(), &options)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.message().contains(&format!("`{}`", first.addr)),
            "{}",
            err.message()
        );
        assert!(err.hint().unwrap().contains("--wdt-port"));
    }

    #[test]
    fn options_built_in_code_are_checked_too() {
        let options = WdtOptions {
            unknown_sku_share: -0.1,
            ..WdtOptions::default()
        };
        let err = options.compile().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.message().starts_with("--wdt-unknown-sku-share"));
    }
}
