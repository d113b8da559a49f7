//! `engine sim kingdee` from the outside: a real `engine` process, real HTTP, and a client
//! written here from the spec (including its own app-signature code, independent of
//! `engine::sign`), plus the official Python SDK, unmodified, in `kingdee_sdk_conformance`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::repo_root;
use crate::support::sandbox::SandboxProcess;

const STUB: &str = "Kingdee.BOS.WebApi.ServicesStub.";

/// A running sandbox and a plain HTTP client for it.
struct Kingdee {
    process: SandboxProcess,
    client: Client,
}

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    set_cookies: Vec<String>,
    text: String,
}

impl Reply {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text))
    }

    /// The value of cookie `name` among the `Set-Cookie` headers.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|cookie| {
            let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.to_string())
        })
    }
}

impl Kingdee {
    fn start(args: &[&str]) -> Kingdee {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut all = vec!["kingdee"];
        all.extend_from_slice(args);
        Kingdee {
            process: SandboxProcess::start(&all),
            client: Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    fn var(&self, key: &str) -> &str {
        self.process.var(key)
    }

    /// `http://127.0.0.1:PORT` (the site root without the virtual directory).
    fn root(&self) -> String {
        self.var("KINGDEE_URL")
            .trim_end_matches('/')
            .trim_end_matches("/k3cloud")
            .to_string()
    }

    fn path_of(service: &str) -> String {
        format!("/k3cloud/{STUB}{service}.common.kdsvc")
    }

    fn try_post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(String, String)],
    ) -> reqwest::Result<Reply> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.root()))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send()?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_string))
            .collect();
        Ok(Reply {
            status,
            content_type,
            set_cookies,
            text: response.text()?,
        })
    }

    #[track_caller]
    fn post(&self, service: &str, body: Value, headers: &[(String, String)]) -> Reply {
        self.try_post(&Kingdee::path_of(service), &body, headers)
            .unwrap_or_else(|err| panic!("POST {service}: {err}"))
    }

    /// Log in with the password and return the session cookie header.
    #[track_caller]
    fn login(&self) -> Vec<(String, String)> {
        let reply = self.post(
            "AuthService.ValidateUser",
            json!({"parameters": [self.var("KINGDEE_ACCT_ID"), self.var("KINGDEE_USERNAME"), self.var("KINGDEE_PASSWORD"), 2052]}),
            &[],
        );
        let body = reply.json();
        assert_eq!(body["LoginResultType"], 1, "{body}");
        let sid = reply
            .cookie("kdservice-sessionid")
            .expect("a session cookie");
        assert_eq!(body["KDSVCSessionId"], sid.as_str());
        let asp = reply
            .cookie("ASP.NET_SessionId")
            .expect("an ASP.NET cookie");
        assert_eq!(body["Context"]["SessionId"], asp.as_str());
        vec![(
            "Cookie".to_string(),
            format!("kdservice-sessionid={sid}; ASP.NET_SessionId={asp}"),
        )]
    }

    /// The numbers of the bills the sandbox holds.
    fn bill_numbers(&self) -> Vec<String> {
        self.sim("GET", "bills", None)
            .as_array()
            .unwrap()
            .iter()
            .map(|bill| bill["FBillNo"].as_str().unwrap().to_string())
            .collect()
    }

    #[track_caller]
    fn sim(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_sim/{path}", self.root());
        let request = match method {
            "GET" => self.client.get(url),
            "PUT" => self.client.put(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url),
        };
        let request = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .body(body.to_string()),
            None => request,
        };
        let response = request.send().expect("the inspection endpoint answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().expect("inspection endpoints answer JSON")
    }
}

/// A SAL_RETURNSTOCK packet as the brief's flow sends it.
fn bill(bill_no: &str, material: &str) -> Value {
    json!({
        "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
        "FBillNo": bill_no,
        "FDate": "2024-03-01",
        "FSaleOrgId": {"FNumber": "100"},
        "FStockOrgId": {"FNumber": "100"},
        "FRetcustId": {"FNumber": "CUST0003"},
        "FHeadNote": "退货",
        "SubHeadEntity": {"FSettleOrgId": {"FNumber": "100"}},
        "FEntity": [{
            "FMaterialId": {"FNumber": material},
            "FRealQty": "1",
            "FTaxPrice": "129.00",
            "FEntryTaxRate": "13",
            "FStockId": {"FNumber": "CK003"},
            "FNote": "line",
        }],
    })
}

fn batch(model: Vec<Value>) -> Value {
    json!({"formid": "SAL_RETURNSTOCK", "data": {"Model": model}})
}

const SESSION_LOST: &str = r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":1}}}"#;

// --- An app-signature client written from the spec (§2.2), not from engine::sign. ---

fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => (b'a' + (c as u8 - b'a' + 13) % 26) as char,
            _ => c,
        })
        .collect()
}

fn hmac_base64_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    BASE64.encode(hex::encode(mac.finalize().into_bytes()))
}

fn quote_all(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn signed_headers(
    path: &str,
    acct: &str,
    user: &str,
    app_id: &str,
    app_secret: &str,
    timestamp: &str,
) -> Vec<(String, String)> {
    let (client_id, encoded) = app_id.split_once('_').unwrap();
    let key = rot13("0054s397p6234378o09pn7q3r5qropr7");
    let raw = BASE64.decode(encoded).unwrap();
    let client_secret = BASE64.encode(
        raw.iter()
            .zip(key.as_bytes())
            .map(|(a, b)| a ^ b)
            .collect::<Vec<u8>>(),
    );
    let canonical = format!(
        "POST\n{}\n\nx-api-nonce:{timestamp}\nx-api-timestamp:{timestamp}\n",
        quote_all(path)
    );
    let app_data = format!("{acct},{user},2052,0");
    [
        ("X-Api-ClientID", client_id.to_string()),
        ("X-Api-Auth-Version", "2.0".to_string()),
        ("x-api-timestamp", timestamp.to_string()),
        ("x-api-nonce", timestamp.to_string()),
        (
            "x-api-signheaders",
            "x-api-timestamp,x-api-nonce".to_string(),
        ),
        (
            "X-Api-Signature",
            hmac_base64_hex(&client_secret, &canonical),
        ),
        ("X-Kd-Appkey", app_id.to_string()),
        ("X-Kd-Appdata", BASE64.encode(&app_data)),
        (
            "X-Kd-Signature",
            hmac_base64_hex(app_secret, &format!("{app_id}{app_data}")),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

impl Kingdee {
    fn signed(&self, service: &str, acct: &str, app_secret: &str) -> Vec<(String, String)> {
        signed_headers(
            &Kingdee::path_of(service),
            acct,
            self.var("KINGDEE_USERNAME"),
            self.var("KINGDEE_APP_ID"),
            app_secret,
            "1700000000",
        )
    }
}

#[test]
fn the_test_signer_reproduces_the_spec_vector() {
    let headers = signed_headers(
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc",
        "65a1b2c3d4e5f6",
        "apiuser",
        "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH",
        "0123456789abcdef0123456789abcdef",
        "1700000000",
    );
    let get = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        get("X-Api-Signature"),
        Some(
            "NzRiYzUxZWE0ZDVmMTQ0ZjA1ZDQwMzZmNjYwODQ5YjhkMWQ0NjgzMDE5YTliYzI3MTRiYzVkNTI1OGI0MTMxMA=="
        )
    );
    assert_eq!(
        get("X-Kd-Signature"),
        Some(
            "NDM1ZmVmNjMxYjU0ZGMzNjViOGFmNmE1MzEyZTEyMWQwMzY3ODEzYWU2MDNiZWM3YzRjZWM1MjQ3ODgyNTdiNw=="
        )
    );
}

#[test]
fn sim_kingdee_prints_the_variables_a_flow_reads() {
    let kingdee = Kingdee::start(&[]);
    let url = kingdee.var("KINGDEE_URL");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/k3cloud/"),
        "{url}"
    );
    assert_eq!(kingdee.var("KINGDEE_ACCT_ID"), "65a1b2c3d4e5f6");
    assert_eq!(kingdee.var("KINGDEE_USERNAME"), "apiuser");
    assert_eq!(
        kingdee.var("KINGDEE_APP_ID"),
        "299999_W2bDRxFLQqCZ5Y9P7+7t2dxs0L2/xptH"
    );
    assert_eq!(
        kingdee.var("KINGDEE_APP_SECRET"),
        "0123456789abcdef0123456789abcdef"
    );
    assert!(!kingdee.var("KINGDEE_PASSWORD").is_empty());
}

#[test]
fn password_login_then_batch_save_with_the_cookie() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-0001", "TX-RED-M")]),
        &session,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text,
        r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"RT-0001","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"NeedReturnData":[{}]}}"#
    );
    assert!(
        reply.set_cookies.is_empty(),
        "a live session sets no cookie"
    );
    let bills = kingdee.sim("GET", "bills", None);
    assert_eq!(bills[0]["FBillNo"], "RT-0001");
    assert_eq!(bills[0]["FDocumentStatus"], "A");
    assert_eq!(bills[0]["FEntity"][0]["FMaterialId"]["FNumber"], "TX-RED-M");
    assert_eq!(bills[0]["FEntity"][0]["FRealQty"], "1");
    // The session id also works as a header, without the cookie.
    let sid = session[0]
        .1
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("kdservice-sessionid=")
        .to_string();
    let by_header = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FBillNo"}}),
        &[("kdservice-sessionid".to_string(), sid)],
    );
    assert_eq!(by_header.json(), json!([["RT-0001"]]));

    // Clearing the table keeps the counters: a new bill never reuses an FID.
    assert_eq!(kingdee.sim("DELETE", "bills", None), json!({"deleted": 1}));
    let again = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-0001", "TX-RED-M")]),
        &session,
    );
    assert_eq!(
        again.json()["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Id"],
        100002
    );
}

#[test]
fn calls_without_a_valid_session_get_msg_code_1() {
    let kingdee = Kingdee::start(&[]);
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &[],
    );
    assert_eq!((reply.status, reply.text.as_str()), (200, SESSION_LOST));
    let query = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID"}}),
        &[(
            "Cookie".to_string(),
            "kdservice-sessionid=made-up".to_string(),
        )],
    );
    assert_eq!(query.text, format!("[[{SESSION_LOST}]]"));
    assert!(
        kingdee
            .sim("GET", "bills", None)
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn expired_sessions_get_msg_code_1() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    let first = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &session,
    );
    assert_eq!(first.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    assert_eq!(
        kingdee.sim("POST", "sessions/expire", None),
        json!({"expired": 1})
    );
    let second = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-2", "TX-RED-M")]),
        &session,
    );
    assert_eq!(second.text, SESSION_LOST);
    let stats = kingdee.sim("GET", "stats", None);
    assert_eq!(
        stats["requests"]["DynamicFormService.BatchSave"],
        json!({"ok": 1, "unauthorised": 1})
    );
}

#[test]
fn a_short_session_lifetime_expires_idle_sessions() {
    let kingdee = Kingdee::start(&["--kingdee-session-ttl-secs", "1"]);
    let session = kingdee.login();
    std::thread::sleep(Duration::from_millis(2100));
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &session,
    );
    assert_eq!(reply.text, SESSION_LOST);
}

#[test]
fn independently_signed_calls_are_verified_as_the_sdk_signs() {
    let kingdee = Kingdee::start(&[]);
    let acct = kingdee.var("KINGDEE_ACCT_ID").to_string();
    let secret = kingdee.var("KINGDEE_APP_SECRET").to_string();
    let good = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &kingdee.signed("DynamicFormService.BatchSave", &acct, &secret),
    );
    assert_eq!(good.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    let sid = good
        .cookie("kdservice-sessionid")
        .expect("a session opened");
    assert!(good.cookie("ASP.NET_SessionId").is_some());

    // Signed for another service: the path is part of the signature.
    let wrong_path = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-2", "TX-RED-M")]),
        &kingdee.signed("DynamicFormService.Save", &acct, &secret),
    );
    assert_eq!(wrong_path.text, SESSION_LOST);
    let wrong_secret = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-2", "TX-RED-M")]),
        &kingdee.signed(
            "DynamicFormService.BatchSave",
            &acct,
            "ffffffffffffffffffffffffffffffff",
        ),
    );
    assert_eq!(wrong_secret.text, SESSION_LOST);
    let wrong_acct = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-2", "TX-RED-M")]),
        &kingdee.signed("DynamicFormService.BatchSave", "ffffffffffffff", &secret),
    );
    assert_ne!(wrong_acct.status, 200);
    assert_eq!(wrong_acct.text, "Fail to verify thirty passport");

    // A live session wins over a bad signature (spec §2.2, R5).
    let mut headers = kingdee.signed(
        "DynamicFormService.BatchSave",
        &acct,
        "ffffffffffffffffffffffffffffffff",
    );
    headers.push(("kdservice-sessionid".to_string(), sid));
    let with_session = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-3", "TX-RED-M")]),
        &headers,
    );
    assert_eq!(
        with_session.json()["Result"]["ResponseStatus"]["IsSuccess"],
        true
    );
    let numbers: Vec<Value> = kingdee
        .sim("GET", "bills", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["FBillNo"].clone())
        .collect();
    assert_eq!(numbers, vec![json!("RT-1"), json!("RT-3")]);
}

#[test]
fn auto_submit_and_audit_saves_status_c() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        json!({"formid": "SAL_RETURNSTOCK", "data": {"IsAutoSubmitAndAudit": "true", "Model": [bill("RT-C", "TX-RED-M")]}}),
        &session,
    );
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    let query = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FBillNo,FDocumentStatus", "FilterString": "FBillNo='RT-C'"}}),
        &session,
    );
    assert_eq!(query.json(), json!([["RT-C", "C"]]));
}

#[test]
fn an_unknown_material_fails_its_packet_and_the_others_are_saved() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        json!({"formid": "SAL_RETURNSTOCK", "data": {"IsVerifyBaseDataField": true, "Model": [bill("RT-1", "TX-RED-M"), bill("RT-2", "XPWY-PNK-M"), bill("RT-3", "FORBID-001")]}}),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["IsSuccess"], false);
    assert_eq!(status["MsgCode"], 9);
    assert_eq!(
        status["Errors"],
        json!([
            {"FieldName": "FMaterialId", "Message": "字段“物料编码”的值“XPWY-PNK-M”在系统中不存在或已禁用", "DIndex": 1},
            {"FieldName": "FMaterialId", "Message": "字段“物料编码”的值“FORBID-001”在系统中不存在或已禁用", "DIndex": 2},
        ])
    );
    assert_eq!(
        status["SuccessEntitys"],
        json!([{"Id": 100001, "Number": "RT-1", "DIndex": 0}])
    );

    // The user creates the material in Kingdee, then the sync retries the failed packet.
    let added = kingdee.sim(
        "POST",
        "basedata/materials",
        Some(json!({"FNumber": "XPWY-PNK-M", "FName": "新品联名卫衣 粉色 M", "BaseUnit": "Pcs"})),
    );
    assert_eq!(added["Forbidden"], false);
    let retry = kingdee.post(
        "DynamicFormService.BatchSave",
        json!({"formid": "SAL_RETURNSTOCK", "data": {"IsVerifyBaseDataField": true, "Model": [bill("RT-2", "XPWY-PNK-M")]}}),
        &session,
    );
    assert_eq!(retry.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    let stats = kingdee.sim("GET", "stats", None);
    assert_eq!(stats["bills_created"], 2);
    assert_eq!(stats["packets_rejected"], 2);
}

#[test]
fn atomic_mode_saves_nothing_when_one_packet_fails() {
    let kingdee = Kingdee::start(&["--kingdee-batch-mode", "atomic"]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M"), bill("RT-2", "NO-SUCH-SKU")]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["IsSuccess"], false);
    assert_eq!(status["SuccessEntitys"], json!([]));
    assert_eq!(status["Errors"][0]["DIndex"], 1);
    assert!(
        kingdee
            .sim("GET", "bills", None)
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Switched back at run time, the same call saves the good packet.
    kingdee.sim("PUT", "faults", Some(json!({"batch_mode": "independent"})));
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M"), bill("RT-2", "NO-SUCH-SKU")]),
        &session,
    );
    assert_eq!(
        reply.json()["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Number"],
        "RT-1"
    );
}

#[test]
fn duplicate_bill_numbers_are_refused_with_msg_code_11() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &session,
    );
    let reply = kingdee.post(
        "DynamicFormService.Save",
        json!({"formid": "SAL_RETURNSTOCK", "data": {"Model": bill("RT-1", "TX-RED-M")}}),
        &session,
    );
    assert_eq!(
        reply.text,
        r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":"FBillNo","Message":"违反字段唯一性要求：编码唯一。[RT-1]在当前系统中已经被使用。","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":11},"Id":"","Number":"","NeedReturnData":[]}}"#
    );
    assert_eq!(kingdee.sim("GET", "stats", None)["duplicates_rejected"], 1);
}

#[test]
fn commit_then_drop_saves_the_bill_but_never_answers() {
    let kingdee = Kingdee::start(&["--kingdee-commit-then-drop-rate", "1"]);
    let session = kingdee.login();
    let outcome = kingdee.try_post(
        &Kingdee::path_of("DynamicFormService.BatchSave"),
        &batch(vec![bill("RT-LOST", "TX-RED-M")]),
        &session,
    );
    assert!(
        outcome.is_err(),
        "the client must see no response: {outcome:?}"
    );
    let bills = kingdee.sim("GET", "bills", None);
    assert_eq!(bills[0]["FBillNo"], "RT-LOST");
    assert_eq!(kingdee.sim("GET", "stats", None)["drops_injected"], 1);
    // The careful client queries before resending, and finds the bill.
    let query = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID", "FilterString": "FBillNo='RT-LOST'"}}),
        &session,
    );
    assert_eq!(query.json(), json!([[100001]]));
}

#[test]
fn injected_errors_and_conflicts_save_nothing() {
    let kingdee = Kingdee::start(&["--kingdee-error-rate", "1"]);
    let session_reply = kingdee.try_post(
        &Kingdee::path_of("AuthService.ValidateUser"),
        &json!({"parameters": ["65a1b2c3d4e5f6", "apiuser", "x", 2052]}),
        &[],
    );
    assert_eq!(session_reply.unwrap().status, 500);
    let faults = kingdee.sim(
        "PUT",
        "faults",
        Some(json!({"error_rate": 0.0, "conflict_rate": 1.0})),
    );
    assert_eq!(faults["conflict_rate"], 1.0);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-9", "TX-RED-M")]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["MsgCode"], 13);
    assert_eq!(
        status["Errors"][0]["Message"],
        "“Administrator”使用业务单据：“销售退货单”业务操作-“[销售退货单-RT-9-保存]”冲突，请稍候再使用。"
    );
    assert!(
        kingdee
            .sim("GET", "bills", None)
            .as_array()
            .unwrap()
            .is_empty()
    );
    let stats = kingdee.sim("GET", "stats", None);
    assert_eq!(
        (
            stats["errors_injected"].as_u64(),
            stats["conflicts_injected"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[test]
fn a_conflict_on_one_bill_lets_the_others_through() {
    let kingdee = Kingdee::start(&[
        "--kingdee-conflict-rate",
        "1",
        "--kingdee-conflict-scope",
        "bill",
    ]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![
            bill("RT-1", "TX-RED-M"),
            bill("RT-2", "TX-RED-M"),
            bill("RT-3", "NO-SUCH-SKU"),
        ]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["MsgCode"], 13);
    assert_eq!(status["IsSuccess"], false);
    assert_eq!(status["Errors"][0]["DIndex"], 0);
    assert!(
        status["Errors"][0]["Message"]
            .as_str()
            .unwrap()
            .contains("[销售退货单-RT-1-保存]”冲突，请稍候再使用。"),
        "{status}"
    );
    assert_eq!(
        status["Errors"][1]["DIndex"], 2,
        "the unknown material, at its own place"
    );
    assert_eq!(status["SuccessEntitys"][0]["DIndex"], 1);
    assert_eq!(status["SuccessEntitys"][0]["Number"], "RT-2");
    let saved: Vec<String> = kingdee
        .sim("GET", "bills", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["FBillNo"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(saved, vec!["RT-2".to_string()]);
}

#[test]
fn bills_on_the_conflict_list_meet_msg_code_13_and_the_others_are_saved() {
    let kingdee = Kingdee::start(&[
        "--kingdee-conflict-bill-no",
        "RT-2",
        "--kingdee-conflict-bill-no",
        "RT-4",
    ]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![
            bill("RT-1", "TX-RED-M"),
            bill("RT-2", "TX-RED-M"),
            bill("RT-3", "NO-SUCH-SKU"),
            bill("RT-4", "TX-RED-M"),
        ]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(
        (
            &status["IsSuccess"],
            &status["MsgCode"],
            &status["ErrorCode"]
        ),
        (&json!(false), &json!(13), &json!(500))
    );
    let errors: Vec<(u64, bool)> = status["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            let message = error["Message"].as_str().unwrap();
            (
                error["DIndex"].as_u64().unwrap(),
                message.ends_with("冲突，请稍候再使用。"),
            )
        })
        .collect();
    // The unknown material misses two required fields of its line.
    assert_eq!(
        errors,
        [(1, true), (2, false), (2, false), (3, true)],
        "{status}"
    );
    assert_eq!(
        status["SuccessEntitys"],
        json!([{"Id": 100001, "Number": "RT-1", "DIndex": 0}])
    );
    assert_eq!(kingdee.bill_numbers(), ["RT-1"]);
    // A call of listed bills only is refused whole; once the list is cleared they save.
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-4", "TX-RED-M")]),
        &session,
    );
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["MsgCode"], 13);
    let faults = kingdee.sim("PUT", "faults", Some(json!({"conflict_bill_nos": []})));
    assert_eq!(faults["conflict_bill_nos"], json!([]));
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-4", "TX-RED-M")]),
        &session,
    );
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    assert_eq!(kingdee.bill_numbers(), ["RT-1", "RT-4"]);
}

/// What a client gets for one armed mishap, and whether its bills were saved.
struct MishapCase {
    armed: Value,
    /// Bills sent in one BatchSave.
    sent: &'static [&'static str],
    content_type: &'static str,
    check: fn(&str),
    saved: &'static [&'static str],
}

fn not_json_but_the_start_of_a_save_answer(text: &str) {
    assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
    assert!(
        text.starts_with(r#"{"Result":{"ResponseStatus":{"IsSuccess":true"#),
        "{text}"
    );
}

fn one_entity_of_two_left_out(text: &str) {
    let body: Value = serde_json::from_str(text).unwrap();
    let status = &body["Result"]["ResponseStatus"];
    assert_eq!(status["IsSuccess"], true, "{body}");
    assert_eq!(status["Errors"], json!([]), "{body}");
    assert_eq!(
        status["SuccessEntitys"].as_array().unwrap().len(),
        1,
        "{body}"
    );
}

#[test]
fn mishaps_armed_for_the_next_save_answer_in_their_documented_shapes() {
    let cases = [
        MishapCase {
            armed: json!({"mishap": "msgcode", "on": "save"}),
            sent: &["RT-1"],
            content_type: "application/json; charset=utf-8",
            check: |text| assert_eq!(text, SESSION_LOST),
            saved: &[],
        },
        MishapCase {
            armed: json!({"mishap": "msgcode", "msgcode": 1, "done": true}),
            sent: &["RT-1"],
            content_type: "application/json; charset=utf-8",
            check: |text| assert_eq!(text, SESSION_LOST),
            saved: &["RT-1"],
        },
        MishapCase {
            armed: json!({"mishap": "response_error"}),
            sent: &["RT-1"],
            content_type: "text/plain; charset=utf-8",
            check: |text| assert!(text.starts_with("response_error:"), "{text}"),
            saved: &[],
        },
        MishapCase {
            armed: json!({"mishap": "html_login", "on": "save"}),
            sent: &["RT-1"],
            content_type: "text/html; charset=utf-8",
            check: |text| {
                assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
                assert!(text.contains("type=\"password\""), "{text}");
            },
            saved: &[],
        },
        MishapCase {
            armed: json!({"mishap": "truncated_json"}),
            sent: &["RT-1", "RT-2"],
            content_type: "application/json; charset=utf-8",
            check: not_json_but_the_start_of_a_save_answer,
            saved: &["RT-1", "RT-2"],
        },
        MishapCase {
            armed: json!({"mishap": "missing_entity"}),
            sent: &["RT-1", "RT-2"],
            content_type: "application/json; charset=utf-8",
            check: one_entity_of_two_left_out,
            saved: &["RT-1", "RT-2"],
        },
    ];
    for case in cases {
        let kingdee = Kingdee::start(&[]);
        let session = kingdee.login();
        let faults = kingdee.sim("POST", "faults/next", Some(case.armed.clone()));
        assert_eq!(faults["next"].as_array().unwrap().len(), 1, "{faults}");
        let sent = case.sent.iter().map(|no| bill(no, "TX-RED-M")).collect();
        let reply = kingdee.post("DynamicFormService.BatchSave", batch(sent), &session);
        assert_eq!(
            (reply.status, reply.content_type.as_str()),
            (200, case.content_type),
            "{}",
            case.armed
        );
        (case.check)(&reply.text);
        assert_eq!(kingdee.bill_numbers(), case.saved, "{}", case.armed);
        let stats = kingdee.sim("GET", "stats", None);
        assert_eq!(stats["mishaps_injected"], 1, "{}: {stats}", case.armed);
        assert_eq!(kingdee.sim("GET", "faults", None)["next"], json!([]));
    }
}

#[test]
fn a_missing_entity_armed_unsaved_leaves_a_bill_out_of_the_answer_and_the_table() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    kingdee.sim(
        "POST",
        "faults/next",
        Some(json!({"mishap": "missing_entity", "saved": false})),
    );
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M"), bill("RT-2", "TX-RED-M")]),
        &session,
    );
    let body = reply.json();
    one_entity_of_two_left_out(&reply.text);
    let reported = body["Result"]["ResponseStatus"]["SuccessEntitys"][0].clone();
    // The bill the answer names is the one saved, at its own position in the call.
    let saved = kingdee.bill_numbers();
    assert_eq!(saved.len(), 1);
    assert_eq!(reported["Number"], saved[0].as_str());
    let position = if saved[0] == "RT-1" { 0 } else { 1 };
    assert_eq!(reported["DIndex"], position);
}

#[test]
fn mishaps_hit_only_the_calls_they_are_armed_for_and_as_many_as_armed() {
    let kingdee = Kingdee::start(&["--kingdee-arm", "msgcode:2:query"]);
    let session = kingdee.login();
    let query = json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID"}});
    let saved = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &session,
    );
    assert_eq!(saved.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    for _ in 0..2 {
        let reply = kingdee.post(
            "DynamicFormService.ExecuteBillQuery",
            query.clone(),
            &session,
        );
        assert_eq!(reply.text, format!("[[{SESSION_LOST}]]"));
    }
    let reply = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        query.clone(),
        &session,
    );
    assert_eq!(reply.json(), json!([[100001]]));
    // A MsgCode other than 1, and an HTML page even for a login.
    kingdee.sim(
        "POST",
        "faults/next",
        Some(json!({"mishap": "msgcode", "msgcode": 14, "on": "query"})),
    );
    kingdee.sim(
        "POST",
        "faults/next",
        Some(json!({"mishap": "html_login", "on": "login"})),
    );
    let reply = kingdee.post("DynamicFormService.BillQuery", query, &session);
    assert_eq!(reply.json()["Result"]["ResponseStatus"]["MsgCode"], 14);
    let login = kingdee.post(
        "AuthService.ValidateUser",
        json!({"parameters": [kingdee.var("KINGDEE_ACCT_ID"), kingdee.var("KINGDEE_USERNAME"), kingdee.var("KINGDEE_PASSWORD"), 2052]}),
        &[],
    );
    assert!(login.content_type.starts_with("text/html"), "{login:?}");
    assert!(login.set_cookies.is_empty());
    let refused = kingdee
        .client
        .post(format!("{}/_sim/faults/next", kingdee.root()))
        .body(json!({"mishap": "msgcode", "on": "login"}).to_string())
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let error: Value = refused.json().unwrap();
    assert_eq!(
        error["error"],
        "a `msgcode` mishap never hits `login` calls"
    );
    let disarmed = kingdee.sim("DELETE", "faults/next", None);
    assert_eq!(disarmed["next"], json!([]));
}

#[test]
fn mishap_rates_follow_the_seed() {
    let counts = |seed: &str| {
        let kingdee = Kingdee::start(&[
            "--seed",
            seed,
            "--kingdee-truncated-json-rate",
            "0.3",
            "--kingdee-response-error-rate",
            "0.3",
        ]);
        let mut shapes = Vec::new();
        for _ in 0..20 {
            let reply = kingdee.post("AuthService.Logout", json!({}), &[]);
            shapes.push(if reply.text.starts_with("response_error:") {
                'e'
            } else if serde_json::from_str::<Value>(&reply.text).is_err() {
                't'
            } else {
                'j'
            });
        }
        let stats = kingdee.sim("GET", "stats", None);
        let injected = shapes.iter().filter(|shape| **shape != 'j').count();
        assert_eq!(stats["mishaps_injected"], injected);
        shapes.into_iter().collect::<String>()
    };
    let first = counts("3");
    assert_eq!(first, counts("3"), "the same seed, the same mishaps");
    for shape in ['e', 't', 'j'] {
        assert!(first.contains(shape), "{first}");
    }
}

#[test]
fn malformed_mishap_switches_are_usage_errors() {
    for (args, needle) in [
        (&["--kingdee-arm", "msgcode:x"][..], "CALLS must be a count"),
        (&["--kingdee-arm", "typo"][..], "the mishap is one of"),
        (&["--kingdee-arm", "msgcode:1:login"][..], "never hits"),
        (&["--kingdee-msgcode", "16"][..], "16"),
        (&["--kingdee-html-login-rate", "2"][..], "html_login_rate"),
    ] {
        let output = crate::support::Engine::new()
            .args(["sim", "kingdee"])
            .args(args.iter().copied())
            .run()
            .code(2);
        assert!(
            output.stderr.contains(needle),
            "{args:?}: {}",
            output.stderr
        );
    }
}

#[test]
fn query_errors_are_wrapped_for_execute_bill_query_and_bare_for_bill_query() {
    let kingdee = Kingdee::start(&[]);
    let session = kingdee.login();
    let data = json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID,FIssueType"}});
    let wrapped = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        data.clone(),
        &session,
    );
    assert_eq!(
        wrapped.text,
        r#"[[{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"元数据中标识为FIssueType的字段不存在","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":9}}}]]"#
    );
    let bare = kingdee.post("DynamicFormService.BillQuery", data, &session);
    assert_eq!(bare.json()["Result"]["ResponseStatus"]["MsgCode"], 9);
    let filter = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID", "FilterString": "FBillNo = = 'x'"}}),
        &session,
    );
    let status = &filter.json()[0][0]["Result"]["ResponseStatus"];
    assert_eq!(status["MsgCode"], 4);
    assert!(
        status["Errors"][0]["Message"]
            .as_str()
            .unwrap()
            .starts_with("GetRealExpress error")
    );
    let no_form = kingdee.post(
        "DynamicFormService.ExecuteBillQuery",
        json!({"data": {"FieldKeys": "FID"}}),
        &session,
    );
    assert_eq!(
        no_form.json()[0][0]["Result"]["ResponseStatus"]["Errors"][0]["Message"],
        "data数据包中的参数FormId必传。"
    );
}

#[test]
fn legacy_and_form_encoded_bodies_reach_the_same_services() {
    let kingdee = Kingdee::start(&[]);
    let legacy = kingdee.post(
        "AuthService.ValidateUser",
        json!({"format": 1, "useragent": "ApiClient", "rid": {}, "parameters": ["65a1b2c3d4e5f6", "apiuser", kingdee.var("KINGDEE_PASSWORD"), 2052], "timestamp": "2006-01-02", "v": "1.0"}),
        &[],
    );
    assert_eq!(legacy.json()["LoginResultType"], 1);
    let sid = legacy.cookie("kdservice-sessionid").unwrap();
    let cookie = vec![("Cookie".to_string(), format!("kdservice-sessionid={sid}"))];
    let saved = kingdee.post(
        "DynamicFormService.BatchSave",
        json!({"parameters": ["SAL_RETURNSTOCK", json!({"Model": [bill("RT-P", "TX-RED-M")]}).to_string()]}),
        &cookie,
    );
    assert_eq!(saved.json()["Result"]["ResponseStatus"]["IsSuccess"], true);
    let query = json!({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FBillNo,FEntity_FSeq,FMaterialId.FNumber"}).to_string();
    let form_body = format!(
        "data={}",
        query
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    );
    let reply = kingdee
        .client
        .post(format!(
            "{}{}",
            kingdee.root(),
            Kingdee::path_of("DynamicFormService.ExecuteBillQuery")
        ))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", format!("kdservice-sessionid={sid}"))
        .body(form_body)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(reply, r#"[["RT-P",1,"TX-RED-M"]]"#);
}

#[test]
fn wrong_credentials_and_unknown_services_are_refused() {
    let kingdee = Kingdee::start(&["--kingdee-lockout-after", "2"]);
    let login = |acct: &str, password: &str| {
        kingdee
            .post(
                "AuthService.ValidateUser",
                json!({"acctid": acct, "userName": "apiuser", "password": password, "lcid": 2052}),
                &[],
            )
            .json()
    };
    assert_eq!(
        login("nope", "x")["Message"],
        "当前尝试登录的数据中心无法获取到"
    );
    assert_eq!(
        login("65a1b2c3d4e5f6", "x")["Message"],
        "用户名或密码错误！"
    );
    login("65a1b2c3d4e5f6", "x");
    let password = kingdee.var("KINGDEE_PASSWORD").to_string();
    let locked = login("65a1b2c3d4e5f6", &password);
    assert_eq!(locked["LoginResultType"], 0);
    assert!(
        locked["Message"].as_str().unwrap().contains("锁定"),
        "{locked}"
    );
    kingdee.sim("POST", "users/apiuser", Some(json!({"locked": false})));
    assert_eq!(login("65a1b2c3d4e5f6", &password)["LoginResultType"], 1);

    let unknown = kingdee.post("DynamicFormService.Frobnicate", json!({}), &[]);
    assert_eq!(unknown.status, 404);
    let no_vdir = kingdee
        .try_post(
            &format!("/{STUB}DynamicFormService.BatchSave.common.kdsvc"),
            &json!({}),
            &[],
        )
        .unwrap();
    assert_eq!((no_vdir.status, no_vdir.text.as_str()), (403, ""));
}

#[test]
fn users_off_the_webapi_whitelist_get_msg_code_11() {
    let kingdee = Kingdee::start(&["--kingdee-webapi-allowed", "false"]);
    let session = kingdee.login();
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &session,
    );
    let status = &reply.json()["Result"]["ResponseStatus"];
    assert_eq!(status["MsgCode"], 11);
    assert_eq!(
        status["Errors"][0]["Message"],
        "当前用户未指定允许调用WebAPI接口"
    );
}

#[test]
fn gateway_mode_refuses_stale_timestamps_with_519() {
    let kingdee = Kingdee::start(&["--kingdee-gateway-skew-secs", "300"]);
    let acct = kingdee.var("KINGDEE_ACCT_ID").to_string();
    let secret = kingdee.var("KINGDEE_APP_SECRET").to_string();
    // The test signer uses a timestamp from 2023: far outside the window.
    let reply = kingdee.post(
        "DynamicFormService.BatchSave",
        batch(vec![bill("RT-1", "TX-RED-M")]),
        &kingdee.signed("DynamicFormService.BatchSave", &acct, &secret),
    );
    assert_eq!(reply.status, 519);
    assert_eq!(reply.json()["errcode"], 4006);
}

// --- The official SDK (issue 3, item 4). ---

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
