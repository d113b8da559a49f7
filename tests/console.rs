//! `engine console` driven in a real headless browser (Debian's Chromium through chromedriver's
//! W3C WebDriver API): a parked record is shown with its reason, and its retry button delivers
//! it once the master data is fixed.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::engine_binary;
use crate::support::sync::Sync;

/// How long the test waits for something it must see (chromedriver listening, a page, a run
/// holding the lock): generous, since a loaded two-core machine can be slow, and only a
/// failing test waits it out.
const PATIENCE: Duration = Duration::from_secs(120);

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a program is on the PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Chromium and chromedriver, or a failure that says how to install them.
fn browser() -> (PathBuf, PathBuf) {
    match (on_path("chromium"), on_path("chromedriver")) {
        (Some(chromium), Some(driver)) => (chromium, driver),
        _ => panic!(
            "the console test needs Chromium and chromedriver on the PATH: \
             install them with `sudo apt-get install -y chromium chromium-driver` (Debian; \
             `.ci/run` does it)"
        ),
    }
}

/// chromedriver's WebDriver endpoint: a session in headless Chromium.
struct Browser {
    http: reqwest::blocking::Client,
    session: String,
    root: String,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let (chromium, driver) = browser();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Killed(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let root = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        // chromedriver answers once it listens.
        let deadline = Instant::now() + PATIENCE;
        while !http
            .get(format!("{root}/status"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening on port {port} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let created: Value = http
            .post(format!("{root}/session"))
            .json(
                &json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                    "binary": chromium.display().to_string(),
                    "args": args,
                }}}}),
            )
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        Browser {
            http,
            session,
            root,
            _driver: driver,
            _profile: profile,
        }
    }

    /// WebDriver's whole answer to one command, an error or not.
    fn answer(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let url = format!("{}/session/{}{path}", self.root, self.session);
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(body);
        }
        request.send().unwrap().json().unwrap()
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let answer = self.answer(method, path, &body);
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}));
    }

    /// The ids of the elements matching a CSS selector.
    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            reqwest::Method::POST,
            "/elements",
            json!({"using": "css selector", "value": css}),
        );
        found.as_array().unwrap().iter().map(element_id).collect()
    }

    /// The first element matching a CSS selector, once there is one. A click that submits a
    /// form can return before the next page has even started loading, and that page comes
    /// only once the server has done its work: look until it is there, within [`PATIENCE`].
    fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let query = json!({"using": "css selector", "value": css});
        loop {
            // While the page changes, a search may also fail (the document it ran in went
            // away): that is not yet an answer either.
            let answer = self.answer(reqwest::Method::POST, "/elements", &query);
            if let Some(first) = answer["value"].as_array().and_then(|found| found.first()) {
                return element_id(first);
            }
            if Instant::now() >= deadline {
                let page = self.answer(reqwest::Method::GET, "/source", &Value::Null);
                panic!(
                    "no `{css}` within {PATIENCE:?}; WebDriver's last answer: {answer}\n\
                     the page: {}",
                    page["value"]
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find(&self, using: &str, value: &str) -> String {
        let found = self.call(
            reqwest::Method::POST,
            "/element",
            json!({"using": using, "value": value}),
        );
        element_id(&found)
    }

    fn text(&self, element: &str) -> String {
        let text = self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            Value::Null,
        );
        text.as_str().unwrap().to_string()
    }

    fn attribute(&self, element: &str, name: &str) -> String {
        let value = self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/attribute/{name}"),
            Value::Null,
        );
        value.as_str().unwrap_or_default().to_string()
    }

    fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        );
    }
}

/// The id in a WebDriver element reference (`{"element-6066-…": "id"}`).
fn element_id(reference: &Value) -> String {
    reference
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.root, self.session))
            .send();
    }
}

/// `engine console` in the sync's workspace; its URL is the line it prints.
fn start_console(sync: &Sync) -> (Killed, String) {
    let mut child = Command::new(engine_binary())
        .args(["console", "--listen", "127.0.0.1:0"])
        .current_dir(sync.workspace.root())
        .envs(sync.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("engine console starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "printed {line:?}");
    (Killed(child), url)
}

#[test]
fn the_console_shows_a_parked_record_and_its_retry_button_delivers_it_once_fixed() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "40",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0.1",
        ],
        6,
    );
    sync.run(&[]).code(1);
    let browser = Browser::start();
    let (_console, url) = start_console(&sync);

    browser.open(&format!("{url}flows/refund/parked"));
    let buttons = browser.find_all("button.retry");
    assert_eq!(
        buttons.len(),
        4,
        "the sandbox's 4 unknown-SKU orders are parked"
    );
    let key = browser.attribute(&buttons[0], "data-key");
    let row = browser.find("xpath", &format!("//tr[.//button[@data-key='{key}']]"));
    let shown = browser.text(&row);
    assert!(shown.contains(&key), "{shown}");
    assert!(shown.contains("已暂存 Parked"), "{shown}");
    assert!(
        shown.contains("物料编码"),
        "the reason is Kingdee's own message: {shown}"
    );
    assert!(
        !sync.bills().iter().any(|b| b["FBillNo"] == key.as_str()),
        "no bill for {key} yet"
    );

    for sku in engine::sim::catalog::unknown_skus() {
        sync.post_kingdee(
            "/_sim/basedata/materials",
            json!({"FNumber": sku.spec_no, "FName": sku.goods_name, "BaseUnit": "Pcs"}),
        );
    }
    let button = browser.find("css selector", &format!("button[data-key='{key}']"));
    browser.click(&button);

    // The retry runs while the browser waits for the answer page.
    let outcome = browser.wait_for("#outcome");
    assert_eq!(browser.attribute(&outcome, "data-status"), "done");
    assert!(browser.text(&outcome).contains("已写入 Written"));
    let bills = sync
        .bills()
        .iter()
        .filter(|b| b["FBillNo"] == key.as_str())
        .count();
    assert_eq!(bills, 1, "the retried record's bill arrived exactly once");

    // Only the clicked record was retried: the other three are still parked.
    browser.open(&format!("{url}flows/refund/parked"));
    let left: Vec<String> = browser
        .find_all("button.retry")
        .iter()
        .map(|b| browser.attribute(b, "data-key"))
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(!left.contains(&key));
}

/// A blocking client that ignores any proxy of the environment.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
}

#[test]
fn the_console_pages_show_records_escaped_with_the_body_a_retry_would_send() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0.1",
        ],
        6,
    );
    // A parked order whose data carries markup: the console must show it as text.
    let unknown: Vec<String> = engine::sim::catalog::unknown_skus()
        .into_iter()
        .map(|sku| sku.spec_no)
        .collect();
    let order = sync
        .orders()
        .into_iter()
        .find(|o| {
            o["details_list"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| unknown.contains(&l["spec_no"].as_str().unwrap_or("").to_string()))
        })
        .expect("an order with an unknown SKU");
    let key = order["order_no"].as_str().unwrap().to_string();
    sync.post_wdt(
        &format!("/_sim/orders/{key}/touch"),
        // Its own `modified`: a record modified now would wait for the flow's lag.
        json!({"remark": "<script>alert(1)</script>", "modified": order["modified"]}),
    );
    sync.run(&[]).code(1);
    let (_console, url) = start_console(&sync);
    let http = client();
    let get = |path: &str| {
        http.get(format!("{url}{path}"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };

    let flows = get("");
    assert!(
        flows.contains("refund") && flows.contains("mappings/refund.yaml"),
        "{flows}"
    );
    let overview = get("flows/refund");
    assert!(overview.contains("实时进度 Live progress"), "{overview}");
    assert!(get("flows/refund/live").contains("已暂存 Parked"));
    let found = get(&format!("flows/refund/records?key={key}"));
    assert!(found.contains("1 条记录 record(s)"), "{found}");
    let record = get(&format!("flows/refund/record?key={key}"));
    assert!(record.contains("源记录 Source record"), "{record}");
    assert!(
        record.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{record}"
    );
    assert!(!record.contains("<script>alert"), "record data is escaped");
    assert!(record.contains("请求体 Request body"), "{record}");
    assert!(
        record.contains(&format!("&quot;{key}&quot;")),
        "the body names the bill: {record}"
    );
    let conflicts = get("flows/refund/conflicts");
    assert!(conflicts.contains("0 条冲突 conflict(s)"), "{conflicts}");
}

#[test]
fn the_console_beyond_this_machine_needs_a_token() {
    let sync = Sync::start(&["--wdt-orders", "1"], 1);
    sync.engine(&["console", "--listen", "0.0.0.0:0"])
        .code(2)
        .stderr_contains("without a token");
    let mut child = Command::new(engine_binary())
        .args(["console", "--listen", "127.0.0.1:0"])
        .current_dir(sync.workspace.root())
        .envs(sync.env())
        .env("ENGINE_CONSOLE_TOKEN", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _console = Killed(child);
    let url = line.trim();
    let http = client();
    let status =
        |request: reqwest::blocking::RequestBuilder| request.send().unwrap().status().as_u16();
    assert_eq!(status(http.get(url)), 401);
    assert_eq!(status(http.get(format!("{url}?token=wrong"))), 401);
    assert_eq!(
        status(
            http.post(format!("{url}flows/refund/retry"))
                .form(&[("key", "x")])
        ),
        401
    );
    let answer = http.get(format!("{url}?token=s3cret")).send().unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap();
    assert_eq!(
        status(
            http.get(format!("{url}flows/refund"))
                .header("cookie", cookie)
        ),
        200
    );
    assert_eq!(status(http.get(url).bearer_auth("s3cret")), 200);
    // Another site's form cannot post a retry, even with the user's token cookie.
    let from = |origin: &str| {
        http.post(format!("{url}flows/refund/retry"))
            .header("cookie", cookie)
            .header("origin", origin)
            .form(&[("key", "x")])
    };
    assert_eq!(status(from("http://evil.example")), 403);
    let own = url.trim_end_matches('/');
    assert_ne!(status(from(own)), 403, "the console's own page may post");
}

#[test]
fn the_console_shows_who_runs_a_flow_and_refuses_a_retry_meanwhile() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "20",
            "--wdt-days",
            "5",
            "--wdt-unknown-sku-share",
            "0.1",
        ],
        6,
    );
    sync.run(&[]).code(1);
    let parked = sync
        .engine(&["failed", "mappings/refund.yaml", "--json"])
        .success();
    let parked: Vec<Value> = serde_json::from_str(&parked.stdout).unwrap();
    let key = parked[0]["key"].as_str().unwrap().to_string();
    for sku in engine::sim::catalog::unknown_skus() {
        sync.post_kingdee(
            "/_sim/basedata/materials",
            json!({"FNumber": sku.spec_no, "FName": sku.goods_name, "BaseUnit": "Pcs"}),
        );
    }
    // A slow source keeps the next run, and its lock, alive while the console looks: each
    // read takes 50 s (under the connector's 60 s timeout), however late the console sees
    // the lock on a loaded machine; the run is killed when the test ends.
    sync.put_wdt("/_sim/faults", json!({"latency_ms": 50000}));
    let run = Killed(sync.spawn_run(&sync.env(), Stdio::null()));
    let (_console, url) = start_console(&sync);
    let http = client();
    let deadline = Instant::now() + PATIENCE;
    let live = loop {
        let live = http
            .get(format!("{url}flows/refund/live"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if live.contains("运行中 held by") {
            break live;
        }
        assert!(
            Instant::now() < deadline,
            "the live progress shows the run holding the lock within {PATIENCE:?}: {live}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(live.contains(&format!("pid {}", run.0.id())), "{live}");
    let refused = http
        .post(format!("{url}flows/refund/retry"))
        .form(&[("key", key.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(refused.contains("重试失败 Retry failed"), "{refused}");
    assert!(refused.contains("已暂存 Parked"), "still parked: {refused}");
    assert!(!sync.bills().iter().any(|b| b["FBillNo"] == key.as_str()));
}

#[test]
fn a_conflict_shows_what_the_target_has_against_what_the_record_maps_to_now_field_by_field() {
    let sync = Sync::start(
        &[
            "--wdt-orders",
            "10",
            "--wdt-days",
            "3",
            "--wdt-unknown-sku-share",
            "0",
        ],
        4,
    );
    sync.workspace.edit(
        "mappings/refund.yaml",
        "  on_change: skip ",
        "  on_change: conflict ",
    );
    sync.workspace
        .edit("mappings/refund.yaml", "    lag: 5s ", "    lag: 0s ");
    sync.run(&[]).success();
    let written = crate::run::bill_numbers(&sync);
    let changed = written.iter().next().unwrap().clone();
    sync.post_wdt(
        &format!("/_sim/orders/{changed}/touch"),
        json!({"refund_remark": "客户补充说明"}),
    );
    std::thread::sleep(Duration::from_millis(1100));
    sync.run(&[]).code(1);
    let (_console, url) = start_console(&sync);
    let page = client()
        .get(format!("{url}flows/refund/conflicts"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("1 条冲突 conflict(s)"), "{page}");
    let diff = page
        .split("<div class=\"diff\">")
        .nth(1)
        .unwrap_or_else(|| panic!("a field diff: {page}"));
    let diff = diff.split("</div>").next().unwrap();
    // Only the note changed: the bill in Kingdee has it without the remark, the order maps
    // to it with the remark now.
    assert_eq!(
        diff.matches("<tr>").count(),
        2,
        "a header and one field: {diff}"
    );
    assert!(diff.contains("<code>FHeadNote</code>"), "{diff}");
    assert!(
        diff.contains(&format!("旺店通退货入库单 {changed}")) && diff.contains("客户补充说明"),
        "{diff}"
    );
}
