//! `engine check`: a golden output for every class of problem, each case a small edit of the
//! bundled files (`tests/fixtures/check/*.yaml`). Adding a case means adding a file.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::support::workspace::Workspace;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Replacements in the bundled files: `old` must occur exactly once.
    #[serde(default)]
    edits: Vec<Edit>,
    /// Files to write (text).
    #[serde(default)]
    write: BTreeMap<String, String>,
    /// Files to write (raw bytes).
    #[serde(default)]
    write_bytes: BTreeMap<String, Vec<u8>>,
    /// Whether the flow's environment variables are set (default: yes).
    #[serde(default)]
    env: Option<bool>,
    /// Arguments after `engine check` (default: none, i.e. the whole `mappings/` folder).
    #[serde(default)]
    args: Vec<String>,
    /// The expected exit code (default: 3, or 0 for `clean` and `unset_environment`).
    #[serde(default)]
    code: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    file: String,
    old: String,
    new: String,
}

/// Every variable the bundled flow reads, with harmless values.
pub fn flow_env() -> BTreeMap<String, String> {
    [
        ("WDT_QIMEN_URL", "http://127.0.0.1:9/router/qm"),
        ("WDT_APP_KEY", "12345678"),
        ("WDT_APP_SECRET", "secret"),
        ("WDT_TARGET_APP_KEY", "87654321"),
        ("WDT_SID", "sid"),
        ("KINGDEE_URL", "http://127.0.0.1:9/k3cloud/"),
        ("KINGDEE_ACCT_ID", "acct"),
        ("KINGDEE_USERNAME", "user"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn workspace_for(case: &Case) -> Workspace {
    let workspace = Workspace::with_bundle();
    for edit in &case.edits {
        workspace.edit(&edit.file, &edit.old, &edit.new);
    }
    for (file, contents) in &case.write {
        workspace.write(file, contents);
    }
    for (file, bytes) in &case.write_bytes {
        workspace.write(file, bytes);
    }
    workspace
}

#[test]
fn every_class_of_problem_has_a_golden_output() {
    insta::glob!("fixtures/check/*.yaml", |path| {
        let case: Case = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let workspace = workspace_for(&case);
        let mut engine = workspace.engine().arg("check").args(&case.args);
        if case.env.unwrap_or(true) {
            engine = engine.envs(&flow_env());
        }
        let output = engine.run();
        assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
        let clean = path
            .file_stem()
            .is_some_and(|s| s == "clean" || s == "unset_environment");
        let expected = case.code.unwrap_or(if clean { 0 } else { 3 });
        assert_eq!(output.code, expected, "{}", output.stderr);
        insta::assert_snapshot!(format!("exit code {}\n{}", output.code, output.stderr));
    });
}

#[test]
fn json_output_locates_every_error_for_ci() {
    let workspace = Workspace::with_bundle();
    workspace.edit(
        "mappings/refund.yaml",
        "  page_size: 100\n",
        "  page_sise: 100\n",
    );
    workspace.edit(
        "mappings/refund.yaml",
        "'{{ line.num | decimal }}'".replace('\'', "\"").as_str(),
        "\"{{ line.qty | decimal }}\"",
    );
    let output = workspace
        .engine()
        .args(["check", "--format", "json"])
        .envs(&flow_env())
        .run()
        .code(3);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let errors: Vec<(String, u64, u64)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap().to_string(),
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, "unknown key `page_sise` in `source`");
    assert!(
        errors[1].0.starts_with("source field `line.qty`"),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|(_, line, column)| *line > 0 && *column > 0)
    );
}

#[test]
fn check_names_a_file_that_does_not_exist() {
    Workspace::empty()
        .engine()
        .args(["check", "nowhere.yaml"])
        .run()
        .code(3)
        .stderr_contains("error: `nowhere.yaml` does not exist");
}

#[test]
fn a_connector_file_is_checked_on_its_own() {
    let workspace = Workspace::with_bundle();
    workspace.edit(
        "mappings/connectors/kingdee_k3cloud.yaml",
        "      index: DIndex\n",
        "      indx: DIndex\n",
    );
    workspace
        .engine()
        .args(["check", "mappings/connectors/kingdee_k3cloud.yaml"])
        .envs(&flow_env())
        .run()
        .code(3)
        .stderr_contains("error: unknown key `indx` in `operations.batch_save.results`");
}
