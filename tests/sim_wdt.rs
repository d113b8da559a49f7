//! `engine sim wdt`, driven over HTTP the way a client does: an independent Python client for
//! the protocol, pagers that show page drift, the rate limit, the generated data, and the
//! inspection endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use chrono::{Duration, Utc};
use engine::sign::qimen::{self, SignMethod};
use engine::sim::catalog;
use engine::time::wall_clock;
use serde_json::{Value, json};

use crate::support::sandbox::SandboxProcess;
use crate::support::{Engine, repo_root};

const OPENAPI_APPKEY: &str = "conformance-appkey";
const OPENAPI_APPSECRET: &str = "conformance-secret";

/// A minimal Qimen caller for the tests that are not about signing (the Python client is).
struct Qimen<'a> {
    sandbox: &'a SandboxProcess,
    http: reqwest::blocking::Client,
}

impl<'a> Qimen<'a> {
    fn new(sandbox: &'a SandboxProcess) -> Qimen<'a> {
        // reqwest is built without a default rustls provider; the binary installs ring in
        // `cli::run`, a test process has to do the same before building a client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Qimen {
            sandbox,
            http: reqwest::blocking::Client::new(),
        }
    }

    fn base(&self) -> String {
        self.sandbox
            .var("WDT_QIMEN_URL")
            .trim_end_matches("/router/qm")
            .to_string()
    }

    /// A signed form POST of `business` parameters; returns the HTTP status and the body.
    fn call(&self, business: &[(&str, &str)]) -> (u16, Value) {
        let timestamp = wall_clock(Utc::now());
        let mut params: BTreeMap<&str, &str> = BTreeMap::from([
            ("method", "wdt.stockin.order.query.refund"),
            ("app_key", self.sandbox.var("WDT_APP_KEY")),
            ("target_app_key", self.sandbox.var("WDT_TARGET_APP_KEY")),
            ("sid", self.sandbox.var("WDT_SID")),
            ("timestamp", timestamp.as_str()),
            ("format", "json"),
            ("v", "2.0"),
            ("sign_method", "md5"),
        ]);
        params.extend(business.iter().copied());
        let sign = qimen::sign(&params, self.sandbox.var("WDT_APP_SECRET"), SignMethod::Md5);
        params.insert("sign", &sign);
        let response = self
            .http
            .post(self.sandbox.var("WDT_QIMEN_URL"))
            .form(&params)
            .send()
            .expect("the sandbox answers");
        let status = response.status().as_u16();
        let text = response.text().expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// One page of the window, as a list of order numbers, and `total_count` if present.
    fn page(
        &self,
        window: &Window,
        page_no: usize,
        page_size: usize,
    ) -> (Vec<String>, Option<u64>) {
        let (page_no, page_size) = (page_no.to_string(), page_size.to_string());
        let (status, body) = self.call(&[
            ("start_time", &window.start),
            ("end_time", &window.end),
            ("page_no", &page_no),
            ("page_size", &page_size),
        ]);
        assert_eq!(status, 200);
        let response = &body["response"];
        assert_eq!(response["errorcode"], 0, "{body}");
        let rows = response["stockin_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["order_no"].as_str().unwrap().to_string())
            .collect();
        (rows, response["total_count"].as_u64())
    }

    fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .json(&body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }

    fn orders(&self) -> Vec<Value> {
        self.get("/_sim/orders").as_array().unwrap().clone()
    }
}

/// A query window as wall-clock strings.
struct Window {
    start: String,
    end: String,
}

#[test]
fn an_independent_python_client_gets_the_specified_envelopes() {
    let sandbox = SandboxProcess::start(&[
        "wdt",
        "--wdt-orders",
        "80",
        "--wdt-openapi-appkey",
        OPENAPI_APPKEY,
        "--wdt-openapi-appsecret",
        OPENAPI_APPSECRET,
    ]);
    let output = Command::new("python3")
        .arg(repo_root().join("tests/conformance/qimen_client.py"))
        .envs(&sandbox.env)
        .env("WDT_OPENAPI_APPKEY", OPENAPI_APPKEY)
        .env("WDT_OPENAPI_APPSECRET", OPENAPI_APPSECRET)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("all passed"),
        "the Python client failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .lines()
            .filter(|line| line.starts_with("ok - "))
            .count()
            >= 30
    );
}

#[test]
fn the_history_endpoint_serves_archived_orders_to_an_independent_python_client() {
    let sandbox = SandboxProcess::start(&[
        "wdt",
        "--wdt-orders",
        "120",
        "--wdt-days",
        "20",
        "--wdt-archive-after-days",
        "7",
        "--wdt-openapi-appkey",
        OPENAPI_APPKEY,
        "--wdt-openapi-appsecret",
        OPENAPI_APPSECRET,
    ]);
    let output = Command::new("python3")
        .arg(repo_root().join("tests/conformance/qimen_client.py"))
        .args(["history", "7"])
        .envs(&sandbox.env)
        .env("WDT_OPENAPI_APPKEY", OPENAPI_APPKEY)
        .env("WDT_OPENAPI_APPSECRET", OPENAPI_APPSECRET)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("all passed"),
        "the Python client failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("ok - "))
            .count(),
        10,
        "{stdout}"
    );
    let stats = Qimen::new(&sandbox).get("/_sim/stats");
    assert!(stats["openapi2_history"].as_u64().unwrap() >= 7, "{stats}");
}

#[test]
fn without_an_archive_the_history_endpoint_is_empty_and_nothing_leaves_the_router() {
    let sandbox = SandboxProcess::start(&["wdt", "--wdt-orders", "30", "--wdt-days", "20"]);
    let client = Qimen::new(&sandbox);
    let timestamp = Utc::now().timestamp().to_string();
    let now = Utc::now();
    let start = wall_clock(now - Duration::days(29));
    let end = wall_clock(now);
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([
        ("sid", sandbox.var("WDT_SID")),
        ("appkey", engine::sim::wdt::DEFAULT_OPENAPI_APPKEY),
        ("timestamp", timestamp.as_str()),
        ("start_time", start.as_str()),
        ("end_time", end.as_str()),
    ]);
    let sign = engine::sign::wdt_openapi::sign(
        &params,
        engine::sim::wdt::DEFAULT_OPENAPI_APPSECRET,
        engine::sign::wdt_openapi::LengthUnit::Chars,
    );
    params.insert("sign", &sign);
    let body: Value = client
        .http
        .post(format!(
            "{}/openapi2/his_stockin_order_query_refund.php",
            client.base()
        ))
        .form(&params)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        body,
        json!({"code": 0, "message": "", "total_count": 0, "stockin_list": []})
    );
    let window = Window { start, end };
    let (_, total) = client.page(&window, 0, 100);
    let completed = client
        .orders()
        .iter()
        .filter(|order| order["status"] == 80)
        .count();
    assert_eq!(total, Some(completed as u64));
}

#[test]
fn the_env_line_points_at_the_router_with_the_credentials() {
    let sandbox = SandboxProcess::start(&["wdt", "--wdt-orders", "1", "--wdt-sid", "shop-hq"]);
    let keys: Vec<&str> = sandbox.env.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "WDT_APP_KEY",
            "WDT_APP_SECRET",
            "WDT_QIMEN_URL",
            "WDT_SID",
            "WDT_TARGET_APP_KEY"
        ]
    );
    assert!(
        sandbox
            .var("WDT_QIMEN_URL")
            .starts_with("http://127.0.0.1:")
    );
    assert!(sandbox.var("WDT_QIMEN_URL").ends_with("/router/qm"));
    assert_eq!(sandbox.var("WDT_SID"), "shop-hq");
}

fn drift_sandbox(until: &str) -> SandboxProcess {
    SandboxProcess::start(&[
        "wdt",
        "--seed",
        "7",
        "--wdt-orders",
        "120",
        "--wdt-days",
        "3",
        "--wdt-until",
        until,
        "--wdt-other-status-share",
        "0",
        "--wdt-drift-rate",
        "0.5",
    ])
}

/// Orders that still lie in the window after paging, by the sandbox's own record.
fn still_in_window(client: &Qimen, window: &Window) -> BTreeSet<String> {
    client
        .orders()
        .iter()
        .filter(|order| {
            let modified = order["modified"].as_str().unwrap();
            order["status"] == 80
                && window.start.as_str() <= modified
                && modified <= window.end.as_str()
        })
        .map(|order| order["order_no"].as_str().unwrap().to_string())
        .collect()
}

/// Page 0, 1, 2, … until a short page: what most integrations do.
fn naive_forward_pager(client: &Qimen, window: &Window) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut seen = BTreeSet::new();
    for page_no in 0.. {
        let (rows, _) = client.page(window, page_no, 10);
        let short = rows.len() < 10;
        seen.extend(rows);
        if short {
            break;
        }
    }
    let missed = still_in_window(client, window)
        .difference(&seen)
        .cloned()
        .collect();
    (seen, missed)
}

#[test]
fn page_drift_makes_a_naive_forward_pager_skip_orders_deterministically() {
    let now = Utc::now();
    let until = wall_clock(now - Duration::minutes(10));
    let window = Window {
        start: wall_clock(now - Duration::days(4)),
        end: wall_clock(now - Duration::minutes(1)),
    };

    let first = drift_sandbox(&until);
    let client = Qimen::new(&first);
    let before: BTreeSet<String> = still_in_window(&client, &window);
    assert_eq!(
        before.len(),
        120,
        "every generated order starts in the window"
    );
    let (seen, missed) = naive_forward_pager(&client, &window);
    assert!(
        !missed.is_empty(),
        "drift should have pushed unseen orders past the pager; saw {} of {}",
        seen.len(),
        before.len()
    );
    let stats = client.get("/_sim/stats");
    assert!(stats["drifted"].as_u64().unwrap() >= 1, "{stats}");

    // Same seed, same data, same requests: the same orders are lost.
    let second = drift_sandbox(&until);
    let (_, missed_again) = naive_forward_pager(&Qimen::new(&second), &window);
    assert_eq!(missed, missed_again);
}

#[test]
fn page_drift_does_not_hurt_a_pager_that_walks_back_from_the_last_page() {
    let now = Utc::now();
    let until = wall_clock(now - Duration::minutes(10));
    let window = Window {
        start: wall_clock(now - Duration::days(4)),
        end: wall_clock(now - Duration::minutes(1)),
    };
    let sandbox = drift_sandbox(&until);
    let client = Qimen::new(&sandbox);
    let (first_page, total) = client.page(&window, 0, 10);
    let total = total.expect("page 0 carries total_count") as usize;
    let mut seen: BTreeSet<String> = first_page.into_iter().collect();
    for page_no in (0..total.div_ceil(10)).rev() {
        seen.extend(client.page(&window, page_no, 10).0);
    }
    let missed: Vec<String> = still_in_window(&client, &window)
        .difference(&seen)
        .cloned()
        .collect();
    assert!(missed.is_empty(), "a descending pager lost {missed:?}");
    assert!(client.get("/_sim/stats")["drifted"].as_u64().unwrap() >= 1);
}

#[test]
fn calls_beyond_the_rate_limit_get_1012_until_the_period_passes() {
    let sandbox = SandboxProcess::start(&[
        "wdt",
        "--wdt-orders",
        "5",
        "--wdt-rate-limit",
        "4",
        "--wdt-rate-limit-period-secs",
        "2",
    ]);
    let client = Qimen::new(&sandbox);
    let window = Window {
        start: wall_clock(Utc::now() - Duration::days(20)),
        end: wall_clock(Utc::now()),
    };
    let query = [
        ("start_time", window.start.as_str()),
        ("end_time", window.end.as_str()),
    ];
    let outcomes: Vec<Value> = (0..6)
        .map(|_| {
            let (_, body) = client.call(&query);
            body["response"]["sub_code"].clone()
        })
        .collect();
    let limited = json!({"response": {"sub_code": "1012"}})["response"]["sub_code"].clone();
    assert_eq!(
        outcomes[..4],
        [Value::Null, Value::Null, Value::Null, Value::Null]
    );
    assert_eq!(outcomes[4..], [limited.clone(), limited]);
    let (_, body) = client.call(&query);
    assert_eq!(body["response"]["sub_message"], "调用频繁，请稍后再试");
    assert_eq!(client.get("/_sim/stats")["rate_limited"], 3);
    // Refused calls do not count: once the period has slid, calls get through again.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let (_, body) = client.call(&query);
    assert_eq!(body["response"]["errorcode"], 0, "{body}");
}

#[test]
fn the_same_seed_generates_the_same_orders() {
    let orders = |seed: &str| {
        let sandbox = SandboxProcess::start(&[
            "wdt",
            "--seed",
            seed,
            "--wdt-orders",
            "50",
            "--wdt-until",
            "2024-06-01 12:00:00",
        ]);
        Qimen::new(&sandbox).orders()
    };
    let first = orders("42");
    assert_eq!(first.len(), 50);
    assert_eq!(first, orders("42"));
    assert_ne!(first, orders("43"));
    assert!(
        first
            .iter()
            .all(|order| order["modified"].as_str().unwrap() <= "2024-06-01 12:00:00")
    );
}

#[test]
fn generated_orders_use_catalogue_master_data_and_honour_the_shares() {
    let sandbox = SandboxProcess::start(&[
        "wdt",
        "--wdt-orders",
        "300",
        "--wdt-unknown-sku-share",
        "0.1",
        "--wdt-other-status-share",
        "0.2",
    ]);
    let orders = Qimen::new(&sandbox).orders();
    let known: BTreeSet<String> = catalog::skus().into_iter().map(|sku| sku.spec_no).collect();
    let unknown: BTreeSet<String> = catalog::unknown_skus()
        .into_iter()
        .map(|sku| sku.spec_no)
        .collect();
    let mut with_unknown = 0;
    for order in &orders {
        let shop = catalog::shop(order["shop_no"].as_str().unwrap()).expect("a catalogue shop");
        assert_eq!(order["shop_name"], shop.shop_name);
        assert!(catalog::warehouse(order["warehouse_no"].as_str().unwrap()).is_some());
        let lines = order["details_list"].as_array().unwrap();
        assert!((1..=4).contains(&lines.len()));
        let mut has_unknown = false;
        for line in lines {
            let spec_no = line["spec_no"].as_str().unwrap();
            assert!(
                known.contains(spec_no) || unknown.contains(spec_no),
                "{spec_no}"
            );
            has_unknown |= unknown.contains(spec_no);
            assert!(catalog::unit_number(line["goods_unit"].as_str().unwrap()).is_some());
        }
        if has_unknown {
            with_unknown += 1;
            // Unknown SKUs sit only in orders the default query returns.
            assert_eq!(order["status"], 80);
        }
    }
    assert_eq!(with_unknown, 30);
    assert_eq!(
        orders.iter().filter(|order| order["status"] != 80).count(),
        60
    );
}

/// Every field of the brief's response table and of spec §8.7, order then line level.
const ORDER_FIELDS: &[&str] = &[
    "order_no",
    "warehouse_no",
    "warehouse_name",
    "shop_no",
    "shop_remark",
    "src_order_no",
    "process_status",
    "status",
    "stockin_time",
    "created_time",
    "trade_no",
    "trade_type",
    "order_type",
    "order_type_name",
    "goods_amount",
    "actual_refund_amount",
    "total_price",
    "post_fee",
    "other_fee",
    "logistics_type",
    "logistics_no",
    "logistics_name",
    "logistics_code",
    "refund_no",
    "check_time",
    "customer_no",
    "customer_name",
    "nick_name",
    "shop_name",
    "stockin_reason",
    "flag_name",
    "platform_id",
    "stockin_operator_name",
    "check_operator_name",
    "refund_remark",
    "refund_operator_name",
    "stockin_no",
    "wms_outer_no",
    "wms_status",
    "wms_result",
    "warehouse_id",
    "src_order_id",
    "reason_id",
    "fa_status",
    "logistics_id",
    "post_share_type",
    "operator_id",
    "check_operator_id",
    "goods_type_count",
    "note_count",
    "flag_id",
    "details_list",
    "stockin_id",
    "refund_id",
    "shop_id",
    "modified",
    "creator_name",
    "remark",
    "buyer_nick",
    "trans_from_wt",
];
const DETAIL_FIELDS: &[&str] = &[
    "stockin_id",
    "remark",
    "goods_count",
    "discount",
    "tax_amount",
    "adjust_price",
    "right_price",
    "tid",
    "src_order_type",
    "adjust_num",
    "modified",
    "rec_id",
    "src_order_detail_id",
    "spec_no",
    "cost_price",
    "production_date",
    "validity_days",
    "expire_date",
    "src_price",
    "tax_price",
    "tax",
    "total_cost",
    "right_num",
    "num",
    "num2",
    "right_cost",
    "brand_no",
    "brand_name",
    "goods_name",
    "prop2",
    "goods_no",
    "spec_name",
    "spec_code",
    "goods_unit",
    "batch_no",
    "batch_remark",
    "position_no",
    "oid",
    "org_stockin_detail_id",
    "spec_id",
    "batch_id",
    "position_id",
    "unit_id",
    "base_unit_id",
    "unit_ratio",
    "expect_num",
    "cost_price2",
    "share_post_cost",
    "share_post_total",
    "created",
    "barcode",
    "stockin_price",
    "actual_refund_amount",
    "defect",
    "stock_type",
    "platform_id",
];

#[test]
fn served_records_carry_every_documented_field() {
    let sandbox = SandboxProcess::start(&["wdt", "--wdt-orders", "40"]);
    let client = Qimen::new(&sandbox);
    let window = Window {
        start: wall_clock(Utc::now() - Duration::days(20)),
        end: wall_clock(Utc::now()),
    };
    let (_, body) = client.call(&[
        ("start_time", &window.start),
        ("end_time", &window.end),
        ("page_size", "100"),
    ]);
    let rows = body["response"]["stockin_list"].as_array().unwrap();
    assert!(!rows.is_empty());
    let decimal = |text: &Value| {
        let text = text.as_str().unwrap();
        text.split_once('.')
            .is_some_and(|(_, fraction)| fraction.len() == 4)
    };
    for row in rows {
        for field in ORDER_FIELDS {
            assert!(row.get(field).is_some(), "order lacks `{field}`: {row}");
        }
        assert!(decimal(&row["goods_amount"]) && decimal(&row["actual_refund_amount"]));
        for line in row["details_list"].as_array().unwrap() {
            for field in DETAIL_FIELDS {
                assert!(line.get(field).is_some(), "line lacks `{field}`: {line}");
            }
            assert!(decimal(&line["num"]) && decimal(&line["tax_price"]) && decimal(&line["tax"]));
        }
    }
}

#[test]
fn inspection_endpoints_change_the_data_and_faults_at_runtime() {
    let sandbox = SandboxProcess::start(&["wdt", "--wdt-orders", "10"]);
    let client = Qimen::new(&sandbox);
    let by_number = |order_no: &str| {
        let (_, body) = client.call(&[("stockin_no", order_no)]);
        body["response"]["stockin_list"].as_array().unwrap().clone()
    };

    // Insert an order; it is served at once, with defaults filled in.
    let (status, body) = client.send(
        reqwest::Method::POST,
        "/_sim/orders",
        json!([{"order_no": "RKTEST0001", "shop_no": "SHOP02", "modified": "2024-01-01 10:00:00",
                "details_list": [{"spec_no": "TX-RED-M", "num": "1.0000"}]}]),
    );
    assert_eq!((status, body), (200, json!({"inserted": 1, "replaced": 0})));
    let rows = by_number("RKTEST0001");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["modified"], "2024-01-01 10:00:00");
    assert_eq!(
        rows[0]["details_list"][0]["stockin_id"],
        rows[0]["stockin_id"]
    );

    // Touch it: modified becomes now and the patch applies.
    let (status, touched) = client.send(
        reqwest::Method::POST,
        "/_sim/orders/RKTEST0001/touch",
        json!({"remark": "复核"}),
    );
    assert_eq!(status, 200);
    assert_eq!(touched["remark"], "复核");
    assert!(touched["modified"].as_str().unwrap() > "2024-01-02");
    let (status, _) = client.send(
        reqwest::Method::POST,
        "/_sim/orders/RKNOPE/touch",
        json!({}),
    );
    assert_eq!(status, 404);

    // Generate fresh orders modified now.
    let (status, generated) =
        client.send(reqwest::Method::POST, "/_sim/generate", json!({"count": 3}));
    assert_eq!(status, 200);
    assert_eq!(generated["generated"], 3);
    assert_eq!(client.orders().len(), 14);

    // Faults: the next two calls fail with a 5xx, then service resumes.
    let (status, faults) = client.send(
        reqwest::Method::PUT,
        "/_sim/faults",
        json!({"fail_next": 2}),
    );
    assert_eq!((status, faults["fail_next"].clone()), (200, json!(2)));
    let statuses: Vec<u16> = (0..3)
        .map(|_| client.call(&[("stockin_no", "RKTEST0001")]).0)
        .collect();
    assert!(statuses[0] >= 500 && statuses[1] >= 500, "{statuses:?}");
    assert_eq!(statuses[2], 200);
    let (status, refused) = client.send(
        reqwest::Method::PUT,
        "/_sim/faults",
        json!({"drift_rate": 3}),
    );
    assert_eq!(status, 400);
    assert!(refused["error"].as_str().unwrap().contains("drift_rate"));

    let stats = client.get("/_sim/stats");
    assert_eq!(stats["injected_5xx"], 2);
    assert_eq!(stats["ok"], 2);
    let requests = client.get("/_sim/requests");
    assert_eq!(requests.as_array().unwrap().len(), 4);
    assert_eq!(requests[0]["params"]["stockin_no"], "RKTEST0001");
    assert_eq!(requests[1]["outcome"], "injected_5xx");
}

#[test]
fn out_of_range_switches_are_usage_errors() {
    Engine::new()
        .args(["sim", "wdt", "--wdt-unknown-sku-share", "1.5"])
        .run()
        .code(2)
        .stderr_contains("`1.5` is not a share between 0 and 1");
}
