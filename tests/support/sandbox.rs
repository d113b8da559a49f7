//! Start `engine sim …` as a child process, the way a user does, and read the JSON line of
//! environment variables it prints. The process is killed when the handle drops.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::engine_binary;

pub struct SandboxProcess {
    child: Child,
    /// The variables `engine sim` printed (`WDT_QIMEN_URL`, `KINGDEE_URL`, credentials, …).
    pub env: BTreeMap<String, String>,
}

impl SandboxProcess {
    /// Run `engine sim <args…>` (for example `["all", "--wdt-orders", "50"]`).
    pub fn start(args: &[&str]) -> SandboxProcess {
        let mut child = Command::new(engine_binary())
            .arg("sim")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("engine sim starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("engine sim {args:?} printed nothing within 30 s");
            }
        };
        let env = serde_json::from_str(&line).unwrap_or_else(|err| {
            let _ = child.kill();
            panic!("engine sim {args:?} printed {line:?}, not a JSON object of strings: {err}")
        });
        SandboxProcess { child, env }
    }

    #[track_caller]
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("engine sim did not print {key}: {:?}", self.env.keys()))
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
