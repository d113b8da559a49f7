//! The official Python SDK of Kingdee (kingdee-cdp-webapi-sdk), unmodified, against the
//! sandbox (issue 3, item 4).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A venv with the official SDK under the target directory, installed once and reused.
fn sdk_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kingdee-cdp-webapi-sdk-8.2.0");
    let python = venv.join("bin").join("python");
    let importable = |python: &Path| {
        Command::new(python)
            .args(["-c", "import k3cloud_webapi_sdk.main"])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if importable(&python) {
        return python;
    }
    // Build in a private directory and rename it into place, so that two test runs at once
    // never see a half-installed venv.
    let staging = venv.with_extension(format!("staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&staging)
        .output()
        .expect("python3 runs (the SDK conformance test needs Python 3 with venv)");
    assert!(
        created.status.success(),
        "python3 -m venv failed:\n{}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    let pip = Command::new(staging.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "kingdee-cdp-webapi-sdk==8.2.0",
        ])
        .output()
        .expect("pip runs");
    assert!(
        pip.status.success(),
        "pip install kingdee-cdp-webapi-sdk==8.2.0 failed:\n{}{}",
        String::from_utf8_lossy(&pip.stdout),
        String::from_utf8_lossy(&pip.stderr)
    );
    if std::fs::rename(&staging, &venv).is_err() {
        // Another run won the race; use its venv.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        importable(&python),
        "the SDK is not importable from {}",
        python.display()
    );
    python
}

#[test]
fn kingdee_sdk_conformance() {
    let python = sdk_python();
    let kingdee = Kingdee::start(&[]);
    let output = Command::new(python)
        .arg(repo_root().join("tests/conformance/kingdee_sdk.py"))
        .envs(kingdee.process.env.iter())
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .expect("the conformance script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kingdee_sdk.py failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|err| panic!("no JSON report ({err}):\n{stdout}"));

    // App-signature login: the first call opened a session, whose cookie the SDK kept.
    assert_eq!(
        report["session_after_first_call"].as_str().map(str::len),
        Some(32)
    );
    // Partial failure at DIndex 1, the other two saved.
    let batch = &report["batch"]["Result"];
    assert_eq!(batch["ResponseStatus"]["IsSuccess"], false);
    assert_eq!(batch["ResponseStatus"]["MsgCode"], 11);
    assert_eq!(
        batch["ResponseStatus"]["Errors"][0],
        json!({"FieldName": "FMaterialId", "Message": "单据体实体【明细信息】第【1】行分录，【物料编码】字段必录", "DIndex": 1})
    );
    assert_eq!(
        batch["ResponseStatus"]["SuccessEntitys"],
        json!([
            {"Id": 100001, "Number": "SDK-0001", "DIndex": 0},
            {"Id": 100002, "Number": "SDK-0003", "DIndex": 2},
        ])
    );
    assert_eq!(
        batch["NeedReturnData"],
        json!([{"FBillNo": "SDK-0001"}, {"FBillNo": "SDK-0003"}])
    );
    // The saved bill comes back by FBillNo.
    assert_eq!(
        report["query"],
        json!([[100001, "SDK-0001", "A", "TX-RED-M", 2, 59.9]])
    );
    assert_eq!(report["bill_query"], json!([{"FBillNo": "SDK-0003"}]));
    // The duplicate is refused.
    let duplicate = &report["duplicate"]["Result"]["ResponseStatus"];
    assert_eq!(duplicate["MsgCode"], 11);
    assert_eq!(
        duplicate["Errors"][0]["Message"],
        "违反字段唯一性要求：编码唯一。[SDK-0001]在当前系统中已经被使用。"
    );
    assert_eq!(
        report["bad_field"][0][0]["Result"]["ResponseStatus"]["MsgCode"],
        9
    );
    // Statuses through the SDK's Submit, Audit and UnAudit (issue 11, item 4).
    let status = |name: &str| report[name]["Result"]["ResponseStatus"].clone();
    assert_eq!(
        status("audit_unsubmitted")["Errors"],
        json!([{"FieldName": null, "Message": "单据编号为“SDK-0001”的销售退货单，单据未提交，不能审核！", "DIndex": 0}])
    );
    assert_eq!(status("audit_unsubmitted")["MsgCode"], 11);
    assert_eq!(
        status("submit")["SuccessEntitys"],
        json!([
            {"Id": 100001, "Number": "SDK-0001", "DIndex": 0},
            {"Id": 100002, "Number": "SDK-0003", "DIndex": 1},
        ])
    );
    assert_eq!(status("audit")["IsSuccess"], true);
    assert_eq!(
        status("audit")["SuccessMessages"][1]["Message"],
        "单据编号为“SDK-0003”的销售退货单，审核成功！"
    );
    assert_eq!(status("audit_again")["MsgCode"], 11);
    assert_eq!(
        status("audit_again")["Errors"][0]["Message"],
        "单据编号为“SDK-0001”的销售退货单，单据已经审核！"
    );
    assert_eq!(status("save_audited")["MsgCode"], 12);
    assert_eq!(
        status("save_audited")["Errors"][0]["Message"],
        "单据编号为“SDK-0001”的销售退货单已审核，不允许修改"
    );
    assert_eq!(status("unaudit")["MsgCode"], 0);
    assert_eq!(status("save_unaudited")["IsSuccess"], true);
    assert_eq!(report["forced_operation_msgcode"].to_string(), SESSION_LOST);
    assert_eq!(
        report["statuses"],
        json!([
            [100001, "SDK-0001", "D", "changed"],
            [100002, "SDK-0003", "C", "退货入库 SDK-0003"],
        ])
    );
    let stats = kingdee.sim("GET", "stats", None);
    assert_eq!(
        stats["requests"]["DynamicFormService.Audit"],
        json!({"ok": 1, "failed": 2})
    );
    assert_eq!(
        stats["requests"]["DynamicFormService.Submit"],
        json!({"ok": 1, "injected_msgcode": 1})
    );
    assert_eq!(
        (
            &stats["bills_submitted"],
            &stats["bills_audited"],
            &stats["bills_unaudited"]
        ),
        (&json!(2), &json!(2), &json!(1))
    );
    // Bad credentials, as the SDK sees them.
    assert_eq!(
        report["wrong_secret"].to_string(),
        SESSION_LOST,
        "{report:#}"
    );
    assert_eq!(report["wrong_acct"], "Fail to verify thirty passport");
    // Mishaps: the SDK raises on `response_error:` and returns a forced MsgCode 1 as it is.
    assert!(
        report["response_error"]
            .as_str()
            .is_some_and(|text| text.starts_with("response_error:")),
        "{report:#}"
    );
    assert_eq!(report["forced_msgcode"].to_string(), SESSION_LOST);
    // And the sandbox agrees about what it holds.
    let numbers: Vec<Value> = kingdee
        .sim("GET", "bills", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["FBillNo"].clone())
        .collect();
    assert_eq!(numbers, vec![json!("SDK-0001"), json!("SDK-0003")]);
}
