//! A sync under test: both sandboxes in a child process, a copy of the bundled flow, and
//! helpers to run `engine` against them and to look at what arrived.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use chrono::{Duration, Utc};
use serde_json::Value;

use super::Output;
use super::sandbox::SandboxProcess;
use super::workspace::Workspace;

pub struct Sync {
    pub sandbox: SandboxProcess,
    pub workspace: Workspace,
    http: reqwest::blocking::Client,
}

impl Sync {
    /// Start `engine sim all <args…>` and a workspace whose flow reads from `days_back` days ago.
    pub fn start(args: &[&str], days_back: i64) -> Sync {
        let mut all = vec!["all"];
        all.extend_from_slice(args);
        let sandbox = SandboxProcess::start(&all);
        let workspace = Workspace::with_bundle();
        // Tests must not wait seconds between retries: backoff is configuration.
        for connector in [
            "mappings/connectors/wdt_qimen.yaml",
            "mappings/connectors/kingdee_k3cloud.yaml",
        ] {
            let text = workspace.read(connector);
            let fast = text
                .replace(
                    "retry: { attempts: 6, initial_backoff: 2s, max_backoff: 40s, throttle_wait: 31s, throttle_attempts: 8 }",
                    "retry: { attempts: 6, initial_backoff: 10ms, max_backoff: 100ms, throttle_wait: 50ms, throttle_attempts: 8 }",
                )
                .replace(
                    "retry: { attempts: 5, initial_backoff: 1s, max_backoff: 30s }",
                    "retry: { attempts: 5, initial_backoff: 10ms, max_backoff: 100ms, throttle_wait: 50ms }",
                );
            assert_ne!(
                fast, text,
                "{connector} has the retry line the tests speed up"
            );
            workspace.write(connector, fast);
        }
        super::install_crypto();
        let sync = Sync {
            sandbox,
            workspace,
            http: reqwest::blocking::Client::new(),
        };
        sync.workspace.write(
            ".start",
            (Utc::now() - Duration::days(days_back)).to_rfc3339(),
        );
        sync
    }

    /// The environment of a run: the sandboxes' variables, a state dir in the workspace, the start time.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = self.sandbox.env.clone();
        env.insert(
            "ENGINE_STATE_DIR".into(),
            self.workspace.path("state").display().to_string(),
        );
        env.insert("REFUND_SYNC_START".into(), self.workspace.read(".start"));
        env
    }

    /// `engine <args…>` in the workspace with the sync's environment.
    pub fn engine(&self, args: &[&str]) -> Output {
        self.workspace
            .engine()
            .args(args.iter().copied())
            .envs(&self.env())
            .run()
    }

    /// `engine run mappings/refund.yaml` in the background (to kill it, or to act while it runs).
    pub fn spawn_run(&self, env: &BTreeMap<String, String>, stderr: Stdio) -> Child {
        Command::new(super::engine_binary())
            .args(["run", "mappings/refund.yaml"])
            .current_dir(self.workspace.root())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("engine run starts")
    }

    /// `engine run mappings/refund.yaml <args…>`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "mappings/refund.yaml"];
        all.extend_from_slice(args);
        self.engine(&all)
    }

    fn root(&self, url_var: &str) -> String {
        let url = self.sandbox.var(url_var);
        let scheme_end = url.find("://").unwrap() + 3;
        let host_end = url[scheme_end..]
            .find('/')
            .map_or(url.len(), |i| scheme_end + i);
        url[..host_end].to_string()
    }

    pub fn kingdee(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.root("KINGDEE_URL")))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn wdt(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.root("WDT_QIMEN_URL")))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn post_kingdee(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.root("KINGDEE_URL")))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn post_wdt(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.root("WDT_QIMEN_URL")))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn put_kingdee(&self, path: &str, body: Value) -> Value {
        self.http
            .put(format!("{}{path}", self.root("KINGDEE_URL")))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn put_wdt(&self, path: &str, body: Value) -> Value {
        self.http
            .put(format!("{}{path}", self.root("WDT_QIMEN_URL")))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Wait until `condition` holds of the sandboxes (say, a bill arrived), looking every
    /// 20 ms for up to two minutes: a test that acts on a run under way waits for a sign that
    /// it is under way, never for a fixed time that a loaded machine may not honour.
    #[track_caller]
    pub fn wait_until(&self, what: &str, mut condition: impl FnMut(&Sync) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !condition(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Write the bundled flow's batches of `size` bills instead of 50.
    pub fn set_batch_size(&self, size: usize) {
        self.workspace.edit(
            "mappings/refund.yaml",
            "  batch_size: 50\n",
            &format!("  batch_size: {size}\n"),
        );
    }

    /// Every bill in the Kingdee sandbox.
    pub fn bills(&self) -> Vec<Value> {
        let bills = self.kingdee("/_sim/bills");
        bills
            .as_array()
            .or_else(|| bills.get("bills").and_then(Value::as_array))
            .cloned()
            .unwrap_or_default()
    }

    /// Every order in the WDT sandbox.
    pub fn orders(&self) -> Vec<Value> {
        let orders = self.wdt("/_sim/orders");
        orders
            .as_array()
            .or_else(|| orders.get("orders").and_then(Value::as_array))
            .cloned()
            .unwrap_or_default()
    }
}
