//! One WebAPI call, start to finish, without IO: route the path to a service, draw the
//! faults, read the body, authorise, run the service, and describe the HTTP answer.
//!
//! [`handle`] is a pure function of (request, now, state); `server` only moves bytes and
//! sleeps. Which service a path names is [`route`](super::route)'s business.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::sim::kingdee::auth::{self, Credentials, Decision, LoginParams, NewSession};
use crate::sim::kingdee::body::{self, CallError, RawCall, scalar_text};
use crate::sim::kingdee::envelope::{self, MsgCode};
use crate::sim::kingdee::faults::Injection;
use crate::sim::kingdee::mishap::{self, Mishap, Plan};
use crate::sim::kingdee::operation_call;
use crate::sim::kingdee::query;
use crate::sim::kingdee::route::Service;
use crate::sim::kingdee::save::SaveConfig;
use crate::sim::kingdee::save_call;
use crate::sim::kingdee::state::{Outcome, State};

/// A routed WebAPI request.
#[derive(Debug, Clone)]
pub struct Request {
    pub service: Service,
    /// The path (and query) as received: what an app signature signs.
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub credentials: Credentials,
    pub body: Vec<u8>,
    /// More writes under way than `--kingdee-capacity` allows: a save or an operation is
    /// answered busy.
    pub over_capacity: bool,
}

/// What to do after the answer is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Respond,
    /// Close the connection without a response (the save has been committed).
    DropConnection,
}

/// The HTTP answer, described.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub set_cookies: Vec<String>,
    pub after: After,
    /// Bills in the call, for the per-bill latency.
    pub bills: usize,
}

pub const JSON: &str = "application/json; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

impl Response {
    pub fn json(value: Value) -> Response {
        Response {
            status: 200,
            content_type: JSON,
            body: value.to_string(),
            set_cookies: Vec::new(),
            after: After::Respond,
            bills: 0,
        }
    }

    fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: text.to_string(),
            set_cookies: Vec::new(),
            after: After::Respond,
            bills: 0,
        }
    }

    fn with_session(mut self, session: Option<&NewSession>) -> Response {
        if let Some(session) = session {
            self.set_cookies.extend(session.set_cookies());
        }
        self
    }
}

/// `ExecuteBillQuery` disguises errors as a data row; every other service answers them bare.
fn error_answer(service: Service, envelope: Value) -> Response {
    match service {
        Service::ExecuteBillQuery => Response::json(envelope::wrap_as_query_row(envelope)),
        _ => Response::json(envelope),
    }
}

pub fn call_error(service: Service, err: CallError) -> Response {
    let envelope = match err {
        CallError::MissingData => {
            envelope::failure(MsgCode::ParameterError, None, "data数据包必传。")
        }
        CallError::DataNotAnObject(message) => envelope::failure(MsgCode::Exception, None, message),
    };
    error_answer(service, envelope)
}

/// Handle one routed WebAPI call.
pub fn handle(
    state: &mut State,
    config: &SaveConfig,
    request: &Request,
    now: DateTime<Utc>,
) -> Response {
    let service = request.service;
    let draws = [
        state.random.unit(),
        state.random.unit(),
        state.random.unit(),
    ];
    let mut injection = state.faults.decide(service.is_write(), draws);
    if request.over_capacity && service.is_write() {
        injection = Injection::Busy;
    }
    // Mishaps are drawn only when one can happen, so that a seed gives the other faults the
    // same draws as before mishaps existed.
    let plan = if injection != Injection::ServerError && state.faults.mishaps_possible() {
        let draw = state.random.unit();
        state.faults.mishap(service.kind(), draw)
    } else {
        None
    };
    if plan.is_some() {
        injection = Injection::None;
    }
    let vdir = request
        .path_and_query
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let (response, outcome) = match plan {
        Some(plan) if !plan.done => (
            mishap_answer(service, &plan, vdir, None),
            Outcome::Mishap(plan.mishap),
        ),
        _ if injection == Injection::ServerError => (
            Response::text(500, "500 - Internal Server Error (injected by engine sim)"),
            Outcome::InjectedError,
        ),
        _ => {
            let (response, outcome) =
                match body::parse(request.content_type.as_deref(), &request.body) {
                    Err(err) => (
                        error_answer(service, envelope::failure(MsgCode::Exception, None, err.0)),
                        Outcome::Failed,
                    ),
                    Ok(call) if service.is_login() || service == Service::Logout => {
                        login(state, service, &call, &request.credentials, now)
                    }
                    Ok(call) => business(state, config, request, &call, injection, plan, now),
                };
            match plan {
                Some(plan) if plan.mishap != Mishap::MissingEntity => (
                    mishap_answer(service, &plan, vdir, Some(response)),
                    Outcome::Mishap(plan.mishap),
                ),
                _ => (response, outcome),
            }
        }
    };
    state.stats.record(service.short_name(), outcome);
    response
}

/// The answer a mishap gives, instead of the call's own `done` answer if it ran.
fn mishap_answer(service: Service, plan: &Plan, vdir: &str, done: Option<Response>) -> Response {
    let bills = done.as_ref().map_or(0, |done| done.bills);
    let mut response = match plan.mishap {
        Mishap::Msgcode => error_answer(service, mishap::msgcode_envelope(plan.msgcode)),
        Mishap::ResponseError => Response::text(200, mishap::RESPONSE_ERROR),
        Mishap::HtmlLogin => Response {
            status: 200,
            content_type: HTML,
            body: mishap::html_login_page(vdir),
            set_cookies: Vec::new(),
            after: After::Respond,
            bills: 0,
        },
        // The headers (and cookies) went out; the body broke off half way.
        Mishap::TruncatedJson | Mishap::MissingEntity => match done {
            Some(mut done) => {
                done.body = mishap::truncate(&done.body);
                return done;
            }
            None => Response::text(200, ""),
        },
    };
    response.bills = bills;
    response
}

fn login(
    state: &mut State,
    service: Service,
    call: &RawCall,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> (Response, Outcome) {
    let auth = &mut state.auth;
    let random = &mut state.random;
    let outcome = match service {
        Service::GetDataCenterList => {
            let list = json!([{
                "Id": auth.acct_id,
                "Number": auth.acct_id,
                "Name": auth.datacenter_name,
                "DatabaseType": 3,
                "UseLanguages": auth.lcids,
            }]);
            return (Response::json(list), Outcome::Ok);
        }
        Service::Logout => {
            let body = auth.logout(&credentials.session_ids);
            return (Response::json(body), Outcome::Ok);
        }
        Service::ValidateUser => {
            let p = call.login_parameters(&[
                &["acctid", "acctID", "dbid"],
                &["username", "userName"],
                &["password", "pwd"],
                &["lcid"],
            ]);
            let params = LoginParams {
                acct_id: p[0].as_deref(),
                username: p[1].as_deref(),
                password: p[2].as_deref(),
                lcid: p[3].as_deref(),
                ..LoginParams::default()
            };
            auth.validate_user(&params, now, random)
        }
        Service::LoginByAppSecret => {
            let p = call.login_parameters(&[
                &["acctid", "acctID"],
                &["username", "userName"],
                &["appid", "appId"],
                &["appsecret", "appSecret"],
                &["lcid"],
            ]);
            let params = LoginParams {
                acct_id: p[0].as_deref(),
                username: p[1].as_deref(),
                app_id: p[2].as_deref(),
                app_secret: p[3].as_deref(),
                lcid: p[4].as_deref(),
                ..LoginParams::default()
            };
            auth.login_by_app_secret(&params, now, random)
        }
        _ => {
            let p = call.login_parameters(&[
                &["acctid", "acctID"],
                &["username", "userName"],
                &["appid", "appId"],
                &["timestamp"],
                &["sign"],
                &["lcid"],
            ]);
            let params = LoginParams {
                acct_id: p[0].as_deref(),
                username: p[1].as_deref(),
                app_id: p[2].as_deref(),
                timestamp: p[3].as_deref(),
                sign: p[4].as_deref(),
                lcid: p[5].as_deref(),
                ..LoginParams::default()
            };
            auth.login_by_sign(&params, now, random)
        }
    };
    let result = if outcome.session.is_some() {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    (
        Response::json(outcome.body).with_session(outcome.session.as_ref()),
        result,
    )
}

fn business(
    state: &mut State,
    config: &SaveConfig,
    request: &Request,
    call: &RawCall,
    injection: Injection,
    plan: Option<Plan>,
    now: DateTime<Utc>,
) -> (Response, Outcome) {
    let service = request.service;
    let ttl = state.session_ttl();
    let decision = state.auth.authorise(
        &request.credentials,
        &request.path_and_query,
        now,
        ttl,
        &mut state.random,
    );
    let session = match decision {
        Decision::Granted { new_session, .. } => new_session,
        Decision::SessionLost { shell } => {
            let response = error_answer(service, envelope::session_lost());
            return (response.with_session(shell.as_ref()), Outcome::Unauthorised);
        }
        Decision::ThirtyPassport => {
            return (
                Response::text(500, auth::THIRTY_PASSPORT),
                Outcome::Unauthorised,
            );
        }
        Decision::NotWhitelisted => {
            let envelope =
                envelope::failure(MsgCode::ValidationFailed, None, auth::NOT_WHITELISTED);
            return (error_answer(service, envelope), Outcome::NotWhitelisted);
        }
        Decision::Gateway(body) => {
            let mut response = Response::json(body);
            response.status = 519;
            return (response, Outcome::GatewayRefused);
        }
    };
    let (response, outcome) = match service {
        Service::Save | Service::BatchSave => {
            save_call::save_call(state, config, service, call, injection, plan, now)
        }
        Service::Submit | Service::Audit | Service::UnAudit => {
            operation_call::operation_call(state, service, call, injection, plan, now)
        }
        Service::ExecuteBillQuery | Service::BillQuery => query_call(state, service, call),
        Service::View => match call.form_call() {
            Ok(form) => {
                let body = query::view(form.formid.as_deref(), &form.data, &state.bills);
                let ok = body["Result"]["ResponseStatus"]["IsSuccess"] == true;
                (
                    Response::json(body),
                    if ok { Outcome::Ok } else { Outcome::Failed },
                )
            }
            Err(err) => (call_error(service, err), Outcome::Failed),
        },
        _ => async_result(state, call),
    };
    (response.with_session(session.as_ref()), outcome)
}

fn query_call(state: &State, service: Service, call: &RawCall) -> (Response, Outcome) {
    let data = match call.data_call() {
        Ok(data) => data,
        Err(err) => return (call_error(service, err), Outcome::Failed),
    };
    match query::run(&data, &state.bills, &state.basedata) {
        Ok(result) => {
            let body = match service {
                Service::ExecuteBillQuery => result.to_arrays(),
                _ => result.to_objects(),
            };
            (Response::json(body), Outcome::Ok)
        }
        Err(err) => (error_answer(service, err.envelope()), Outcome::Failed),
    }
}

/// `QueryAsyncResult` with `{"queryInfo": "{\"TaskId\": …}"}`: the finished save's envelope.
fn async_result(state: &State, call: &RawCall) -> (Response, Outcome) {
    let info: BTreeMap<String, Value> = call
        .named("queryInfo")
        .and_then(|value| match value {
            Value::String(text) => serde_json::from_str(text).ok(),
            Value::Object(object) => Some(object.clone().into_iter().collect()),
            _ => None,
        })
        .unwrap_or_default();
    let task_id = info
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("TaskId"))
        .and_then(|(_, value)| scalar_text(value))
        .unwrap_or_default();
    match state.tasks.get(&task_id) {
        Some(result) => (
            Response::json(json!({"Status": 2, "TaskId": task_id, "Result": result})),
            Outcome::Ok,
        ),
        None => (
            Response::json(envelope::failure(
                MsgCode::DataNotFound,
                None,
                format!("异步任务“{task_id}”不存在"),
            )),
            Outcome::Failed,
        ),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::sim::CommonOptions;
    use crate::sim::kingdee::{KingdeeOptions, initial_state};

    const BATCH_SAVE: &str =
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc";

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap()
    }

    fn sandbox() -> (State, SaveConfig) {
        let (state, config, _) =
            initial_state(&CommonOptions::default(), &KingdeeOptions::default()).unwrap();
        (state, config)
    }

    fn request(service: Service, body: Value, session_ids: &[String]) -> Request {
        Request {
            service,
            path_and_query: BATCH_SAVE.to_string(),
            content_type: Some("application/json".to_string()),
            credentials: Credentials {
                session_ids: session_ids.to_vec(),
                headers: BTreeMap::new(),
            },
            body: body.to_string().into_bytes(),
            over_capacity: false,
        }
    }

    fn login(state: &mut State, config: &SaveConfig) -> String {
        let body = json!({"parameters": ["65a1b2c3d4e5f6", "apiuser", "Sandbox#2024", 2052]});
        let response = handle(
            state,
            config,
            &request(Service::ValidateUser, body, &[]),
            now(),
        );
        assert_eq!(response.set_cookies.len(), 2, "{}", response.body);
        let value: Value = serde_json::from_str(&response.body).unwrap();
        value["KDSVCSessionId"].as_str().unwrap().to_string()
    }

    fn good_batch() -> Value {
        json!({"formid": "SAL_RETURNSTOCK", "data": {"Model": [{
            "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
            "FBillNo": "RT-1",
            "FSaleOrgId": {"FNumber": "100"},
            "FStockOrgId": {"FNumber": "100"},
            "FRetcustId": {"FNumber": "CUST0001"},
            "FEntity": [{"FMaterialId": {"FNumber": "TX-RED-M"}, "FRealQty": 1, "FStockId": {"FNumber": "CK001"}}],
        }]}})
    }

    #[test]
    fn errors_are_wrapped_as_a_row_only_for_execute_bill_query() {
        let (mut state, config) = sandbox();
        let query = json!({"data": {"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID"}});
        for (service, body, wrapped) in [
            (Service::ExecuteBillQuery, query.clone(), true),
            (Service::BillQuery, query.clone(), false),
            (Service::BatchSave, good_batch(), false),
            (
                Service::View,
                json!({"formid": "SAL_RETURNSTOCK", "data": {"Number": "x"}}),
                false,
            ),
        ] {
            let response = handle(&mut state, &config, &request(service, body, &[]), now());
            let value: Value = serde_json::from_str(&response.body).unwrap();
            let envelope = if wrapped { &value[0][0] } else { &value };
            assert_eq!(
                envelope["Result"]["ResponseStatus"]["MsgCode"], 1,
                "{service:?}: {value}"
            );
            assert_eq!(response.status, 200);
        }
    }

    #[test]
    fn a_session_authorises_saves_and_the_stats_count_outcomes() {
        let (mut state, config) = sandbox();
        let sid = login(&mut state, &config);
        let saved = handle(
            &mut state,
            &config,
            &request(Service::BatchSave, good_batch(), std::slice::from_ref(&sid)),
            now(),
        );
        assert!(saved.set_cookies.is_empty());
        assert_eq!(saved.bills, 1);
        let again = handle(
            &mut state,
            &config,
            &request(Service::BatchSave, good_batch(), &[sid]),
            now(),
        );
        let value: Value = serde_json::from_str(&again.body).unwrap();
        assert_eq!(value["Result"]["ResponseStatus"]["MsgCode"], 11);
        let stats = state.stats_json(now());
        assert_eq!(
            stats["requests"]["DynamicFormService.BatchSave"],
            json!({"ok": 1, "failed": 1})
        );
        assert_eq!(
            stats["requests"]["AuthService.ValidateUser"],
            json!({"ok": 1})
        );
        assert_eq!(stats["duplicates_rejected"], 1);
    }

    #[test]
    fn injected_faults_act_before_or_after_the_save() {
        for (patch, expected_status, drop, saved) in [
            (json!({"error_rate": 1.0}), 500, false, 0),
            (json!({"conflict_rate": 1.0}), 200, false, 0),
            (json!({"commit_then_drop_rate": 1.0}), 200, true, 1),
        ] {
            let (mut state, config) = sandbox();
            let sid = login(&mut state, &config);
            let patch = serde_json::from_value(patch.clone()).unwrap();
            state.faults = state.faults.patched(&patch).unwrap();
            let response = handle(
                &mut state,
                &config,
                &request(Service::BatchSave, good_batch(), &[sid]),
                now(),
            );
            assert_eq!(response.status, expected_status, "{patch:?}");
            assert_eq!(response.after == After::DropConnection, drop, "{patch:?}");
            assert_eq!(state.bills.bills().len(), saved, "{patch:?}");
        }
    }

    #[test]
    fn unreadable_bodies_and_missing_data_get_envelopes() {
        let (mut state, config) = sandbox();
        let sid = login(&mut state, &config);
        let mut broken = request(Service::BatchSave, json!({}), std::slice::from_ref(&sid));
        broken.body = b"{not json".to_vec();
        let response = handle(&mut state, &config, &broken, now());
        let value: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(value["Result"]["ResponseStatus"]["MsgCode"], 4);
        let missing = request(
            Service::BatchSave,
            json!({"formid": "SAL_RETURNSTOCK"}),
            &[sid],
        );
        let response = handle(&mut state, &config, &missing, now());
        let value: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(value["Result"]["ResponseStatus"]["MsgCode"], 8);
        assert_eq!(
            value["Result"]["ResponseStatus"]["Errors"][0]["Message"],
            "data数据包必传。"
        );
    }
}
