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

/// A flow whose source parameters print the environment is refused by every command that
/// loads it: nothing is rendered, so no variable (here a secret) reaches stdout, stderr or WDT.
#[test]
fn no_command_renders_the_whole_environment() {
    let workspace = Workspace::with_bundle();
    workspace.edit(
        "mappings/refund.yaml",
        "status: \"80\" ",
        "status: \"{{ env | tojson }}\" ",
    );
    let mut env = flow_env();
    env.insert("SOME_SECRET".into(), "hunter2-secret-value".into());
    for args in [
        &["check"][..],
        &[
            "preview",
            "mappings/refund.yaml",
            "--input",
            "mappings/samples/refund_orders.json",
        ],
        &["run", "mappings/refund.yaml", "--dry-run"],
    ] {
        let output = workspace
            .engine()
            .args(args.iter().copied())
            .envs(&env)
            .run()
            .code(3);
        let printed = format!("{}{}", output.stdout, output.stderr);
        assert!(
            printed.contains("a template may read environment variables only one by one, by name"),
            "{args:?}: {printed}"
        );
        assert!(!printed.contains("hunter2"), "{args:?}: {printed}");
    }
}

/// A template that would loop for ever (here ten billion steps in a connector's write body)
/// runs out of fuel: `preview` ends at once with an error located at the template.
#[test]
fn a_runaway_template_runs_out_of_fuel_with_a_located_error() {
    let workspace = Workspace::with_bundle();
    workspace.edit(
        "mappings/connectors/kingdee_k3cloud.yaml",
        "formid: \"{{ params.form_id }}\"",
        "formid: \"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ params.form_id }}\"",
    );
    workspace
        .engine()
        .args([
            "preview",
            "mappings/refund.yaml",
            "--input",
            "mappings/samples/refund_orders.json",
        ])
        .envs(&flow_env())
        .run()
        .stderr_contains("ran out of fuel")
        .stderr_contains("--> mappings/connectors/kingdee_k3cloud.yaml:55:");
}

/// A flow with a 100,000-item list and a mistake after it is checked in linear time: the
/// mistake is located, and the 2 MB line it is on is cut to the part around the caret.
#[test]
fn a_huge_line_is_checked_whole_and_echoed_cut_short() {
    let workspace = Workspace::with_bundle();
    let items = vec!["1"; 100_000].join(", ");
    let filler = "x".repeat(2_000_000);
    workspace.edit(
        "mappings/refund.yaml",
        "  return_type: THLX01_SYS          # 退货\n",
        &format!("  return_type: THLX01_SYS\n  many: [{items}]\n  long: \"{filler}\" oops\n"),
    );
    let output = workspace
        .engine()
        .args(["check", "mappings/refund.yaml"])
        .envs(&flow_env())
        .run()
        .code(3)
        .stderr_contains("--> mappings/refund.yaml:65:2000012");
    assert!(output.stderr.len() < 2_000, "{}", output.stderr.len());
}

/// Files a flow names are read within bounds: one over the size limit is refused unread.
#[test]
fn a_file_over_the_size_limit_is_refused() {
    let workspace = Workspace::with_bundle();
    let mut text = workspace.read("mappings/refund.yaml");
    text.push_str(&format!("# {}\n", "x".repeat(5 * 1024 * 1024)));
    workspace.write("mappings/refund.yaml", text);
    let output = workspace
        .engine()
        .args(["check", "mappings/refund.yaml"])
        .envs(&flow_env())
        .run()
        .code(3)
        .stderr_contains(
            "error: `mappings/refund.yaml` is too large for a YAML file: it may have at most 4 MiB",
        );
    assert!(output.stderr.len() < 2_000, "{}", output.stderr.len());
}
