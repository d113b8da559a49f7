//! `engine sim kingdee` from the outside: a real `engine` process, real HTTP, and a client
//! written here from the spec (including its own app-signature code, independent of
//! `engine::sign`), plus the official Python SDK, unmodified, in `kingdee_sdk_conformance`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::repo_root;
use crate::support::sandbox::SandboxProcess;

mod faults;
mod sdk;

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
