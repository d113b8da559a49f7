//! A fluent builder around the `engine` executable, in the style of `just`'s tests:
//! `Engine::new().args(["check"]).run().success()`.

// Not every helper is used by every test module at every commit.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod axum_thread;
pub mod hostile_http;
pub mod hostile_wdt;
pub mod mock_rest;
pub mod oauth_api;
pub mod prometheus;
pub mod receiver;
pub mod rest_mock;
pub mod sandbox;
pub mod server;
pub mod sync;
pub mod workspace;

/// rustls needs a crypto provider per process before a reqwest client is built in a test.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The path of the built `engine` binary.
pub fn engine_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_engine"))
}

/// The repository root (where `mappings/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Environment variables a flow reads; a test sees only the ones it sets itself.
pub const FLOW_ENV: &[&str] = &[
    "WDT_QIMEN_URL",
    "WDT_APP_KEY",
    "WDT_APP_SECRET",
    "WDT_TARGET_APP_KEY",
    "WDT_SID",
    "KINGDEE_URL",
    "KINGDEE_ACCT_ID",
    "KINGDEE_USERNAME",
    "KINGDEE_APP_ID",
    "KINGDEE_APP_SECRET",
    "KINGDEE_PASSWORD",
    "KINGDEE_LCID",
    "ENGINE_STATE_DIR",
];

/// One invocation of `engine`.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    current_dir: Option<PathBuf>,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Engine {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Engine
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Engine {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn envs(mut self, vars: &BTreeMap<String, String>) -> Engine {
        self.env.extend(vars.clone());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Engine {
        self.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Run to completion and capture everything.
    pub fn run(&self) -> Output {
        let mut command = Command::new(engine_binary());
        command.args(&self.args).stdin(Stdio::null());
        command.current_dir(self.current_dir.clone().unwrap_or_else(repo_root));
        for key in FLOW_ENV {
            command.env_remove(key);
        }
        command.envs(&self.env);
        let output = command.output().expect("the engine binary runs");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What one invocation printed and returned.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn code(self, expected: i32) -> Output {
        assert_eq!(
            self.code, expected,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Output {
        self.code(0)
    }

    #[track_caller]
    pub fn stderr_contains(self, needle: &str) -> Output {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_contains(self, needle: &str) -> Output {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}",
            self.stdout
        );
        self
    }
}
