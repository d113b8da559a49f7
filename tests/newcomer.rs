//! The newcomer's path through the README: sandboxes that write an env file, commands that
//! read it (`--env-file`), and every missing variable named at once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::engine_binary;
use crate::support::workspace::Workspace;

/// `engine sim all --env-file <file>` in `dir`, returned once it printed its JSON line.
fn sim_writing(dir: &Path, env_file: &str) -> Child {
    let mut child = Command::new(engine_binary())
        .args(["sim", "all", "--env-file", env_file])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("engine sim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with('{'), "engine sim printed {line:?}");
    child
}

/// Stop `child` as `kill` or Ctrl-C would (SIGTERM), and wait for it.
fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
}

#[test]
fn the_sandbox_env_file_drives_run_and_failed_and_goes_with_the_sandboxes() {
    let workspace = Workspace::with_bundle();
    let sim = sim_writing(workspace.root(), "sandbox.env");
    let env_file = workspace.path("sandbox.env");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the env file holds secrets");
    }
    let text = workspace.read("sandbox.env");
    for name in ["WDT_QIMEN_URL", "KINGDEE_URL", "KINGDEE_APP_SECRET"] {
        assert!(text.contains(&format!("\n{name}=\"")), "{text}");
    }
    // The state folder may come from the file too.
    let state = workspace.path("state");
    std::fs::write(
        &env_file,
        format!("{text}export ENGINE_STATE_DIR='{}'\n", state.display()),
    )
    .unwrap();
    let run = workspace
        .engine()
        .args(["run", "mappings/refund.yaml", "--env-file", "sandbox.env"])
        .run()
        .code(1);
    assert!(
        run.stderr
            .contains("180 read: 180 new, 0 seen before; 170 written"),
        "{}",
        run.stderr
    );
    assert!(state.join("state.db").exists(), "{}", run.stderr);
    assert!(!workspace.path("mappings/.engine").exists());
    let failed = workspace
        .engine()
        .args([
            "failed",
            "mappings/refund.yaml",
            "--json",
            "--env-file",
            "sandbox.env",
        ])
        .run()
        .success();
    let parked: Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(
        parked.as_array().map(Vec::len),
        Some(10),
        "{}",
        failed.stdout
    );
    terminate(sim);
    assert!(
        !env_file.exists(),
        "the file of stopped sandboxes is removed"
    );
}

#[test]
fn the_real_environment_wins_over_the_env_file_and_no_value_is_printed() {
    let workspace = Workspace::with_bundle();
    let sim = sim_writing(workspace.root(), "sandbox.env");
    let text = workspace.read("sandbox.env");
    let real_url = text
        .lines()
        .find_map(|line| line.strip_prefix("KINGDEE_URL=\""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap()
        .to_string();
    // The file's Kingdee points nowhere; the environment's at the sandbox.
    workspace.write(
        "mine.env",
        text.replace(&real_url, "http://127.0.0.1:9/k3cloud-in-the-file"),
    );
    let run = workspace
        .engine()
        .env("KINGDEE_URL", &real_url)
        .args(["run", "mappings/refund.yaml", "--env-file", "mine.env"])
        .args(["--state-dir", "state"])
        .run()
        .code(1);
    assert!(
        run.stderr
            .contains("180 read: 180 new, 0 seen before; 170 written"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: `KINGDEE_URL` from the environment wins over `mine.env`"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("k3cloud-in-the-file"),
        "{}",
        run.stderr
    );
    terminate(sim);
}

#[test]
fn a_bad_env_file_line_is_located_without_showing_it() {
    let workspace = Workspace::with_bundle();
    workspace.write(
        "bad.env",
        "# Kingdee\nKINGDEE_URL=http://k3\nKINGDEE_PASSWORD=\"s3cret-pa55\n",
    );
    let output = workspace
        .engine()
        .args(["check", "--env-file", "bad.env"])
        .run()
        .code(2);
    assert!(
        output.stderr.contains(
            "error: `bad.env:3:18`: the value of `KINGDEE_PASSWORD` opens a quote \" that is never closed"
        ),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("s3cret"), "{}", output.stderr);
    let missing = workspace
        .engine()
        .args(["check", "--env-file", "none.env"])
        .run()
        .code(2);
    assert!(
        missing
            .stderr
            .contains("error: cannot read the env file `none.env`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn an_env_file_quiets_checks_warnings_about_unset_variables() {
    let workspace = Workspace::with_bundle();
    let before = workspace.engine().args(["check"]).run().success();
    assert!(
        before
            .stderr
            .contains("environment variable `WDT_SID` is not set"),
        "{}",
        before.stderr
    );
    workspace.write(
        "site.env",
        "export WDT_QIMEN_URL=http://wdt\nWDT_APP_KEY=k\nWDT_APP_SECRET='s'\nWDT_TARGET_APP_KEY=t\n\
         WDT_SID=sid # the seller\nKINGDEE_URL=\"http://k3\"\nKINGDEE_ACCT_ID=a\nKINGDEE_USERNAME=u\n",
    );
    let after = workspace
        .engine()
        .args(["check", "--env-file", "site.env"])
        .run()
        .success();
    assert!(!after.stderr.contains("is not set"), "{}", after.stderr);
}

#[test]
fn sim_never_overwrites_an_env_file_it_did_not_write() {
    let workspace = Workspace::empty();
    workspace.write(".env", "MY_OWN=1\n");
    let output = workspace
        .engine()
        .args(["sim", "wdt", "--env-file", ".env"])
        .run()
        .code(2);
    assert!(
        output
            .stderr
            .contains("`.env` exists and was not written by `engine sim`"),
        "{}",
        output.stderr
    );
    assert_eq!(workspace.read(".env"), "MY_OWN=1\n");
}

#[test]
fn every_missing_variable_is_named_at_once_with_where_it_is_read() {
    let workspace = Workspace::with_bundle();
    let run = workspace
        .engine()
        .args(["run", "mappings/refund.yaml"])
        .run()
        .code(3);
    assert!(
        run.stderr
            .contains("error: 8 environment variables are not set:"),
        "{}",
        run.stderr
    );
    for (name, at) in [
        (
            "KINGDEE_ACCT_ID",
            "mappings/connectors/kingdee_k3cloud.yaml:14:12",
        ),
        (
            "KINGDEE_URL",
            "mappings/connectors/kingdee_k3cloud.yaml:9:11",
        ),
        (
            "KINGDEE_USERNAME",
            "mappings/connectors/kingdee_k3cloud.yaml:15:13",
        ),
        ("WDT_APP_KEY", "mappings/connectors/wdt_qimen.yaml:15:12"),
        ("WDT_APP_SECRET", "mappings/connectors/wdt_qimen.yaml:16:11"),
        ("WDT_QIMEN_URL", "mappings/connectors/wdt_qimen.yaml:11:11"),
        ("WDT_SID", "mappings/connectors/wdt_qimen.yaml:24:8"),
        (
            "WDT_TARGET_APP_KEY",
            "mappings/connectors/wdt_qimen.yaml:23:19",
        ),
    ] {
        assert!(
            run.stderr.contains(&format!("`{name}` (read at {at})")),
            "{name}: {}",
            run.stderr
        );
    }
    assert!(
        !workspace.path("mappings/.engine").exists(),
        "nothing was started"
    );
    // `retry` writes only: it needs the target's variables, not the source's.
    let retry = workspace
        .engine()
        .env("KINGDEE_URL", "http://127.0.0.1:9")
        .args(["retry", "mappings/refund.yaml"])
        .run()
        .code(3);
    assert!(
        retry
            .stderr
            .contains("error: 2 environment variables are not set:")
            && retry.stderr.contains("`KINGDEE_ACCT_ID`")
            && retry.stderr.contains("`KINGDEE_USERNAME`")
            && !retry.stderr.contains("WDT_"),
        "{}",
        retry.stderr
    );
}

#[test]
fn an_env_file_is_read_from_a_pipe_but_never_without_end() {
    use std::io::Write;
    let workspace = Workspace::with_bundle();
    // `--env-file /dev/stdin` given `text`: a pipe, as `<(vault read …)` is.
    let check = |text: Vec<u8>| {
        let mut child = std::process::Command::new(crate::support::engine_binary())
            .args(["check", "--env-file", "/dev/stdin", "mappings/refund.yaml"])
            .current_dir(workspace.path(""))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&text);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(b"WDT_APP_SECRET=from-a-pipe\n".to_vec());
    assert!(
        !stderr.contains("`WDT_APP_SECRET` is not set"),
        "the piped variable was not read: {stderr}"
    );
    assert_ne!(code, Some(2), "{stderr}");
    // Two megabytes of blank lines: `/dev/zero` or a wrong path would be endless.
    let (code, stderr) = check(vec![b'\n'; 2 << 20]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: the env file `/dev/stdin` is longer than 1 MiB"),
        "{stderr}"
    );
}
