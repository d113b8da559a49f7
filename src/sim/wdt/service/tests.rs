//! The service pipeline, driven without a socket: signing, paging, faults, drift, the
//! `/_sim/` edits and the history endpoint.

use std::collections::BTreeSet;

use super::*;
use crate::sign::qimen::{self, SignMethod};
use crate::sim::wdt::gateway::SignLengthPolicy;
use crate::time::parse_instant;

fn now() -> DateTime<Utc> {
    parse_instant("2024-06-01 12:00:00").unwrap()
}

fn settings() -> Settings {
    Settings {
        qimen: QimenCredentials {
            app_key: "app".to_string(),
            app_secret: "secret".to_string(),
            target_app_key: "target".to_string(),
            sid: "sid1".to_string(),
            skew: Duration::seconds(600),
        },
        direct: DirectCredentials {
            sid: "sid1".to_string(),
            appkey: "direct".to_string(),
            appsecret: "direct-secret".to_string(),
            skew: Duration::seconds(300),
            length_policy: SignLengthPolicy::Chars,
        },
        rules: Rules::default(),
        total_count_on_every_page: false,
        top_error_response: false,
        shares: Shares {
            unknown_sku: 0.0,
            other_status: 0.0,
        },
        archive_after: None,
    }
}

fn faults() -> Faults {
    Faults {
        latency_ms: 0,
        error_rate: 0.0,
        rate_limit_rate: 0.0,
        drift_rate: 0.0,
        drift_to: DriftTo::Now,
        duplicate_rate: 0.0,
        fail_next: 0,
        rate_limit_next: 0,
        rate_limit: 60,
        rate_limit_period_secs: 60,
    }
}

fn service(count: usize) -> Service {
    let until = wall_now(now()) - Duration::minutes(5);
    Service::new(settings(), faults(), 1, count, 2, until)
}

/// A signed Qimen form POST for the last three days with these extra parameters.
fn request(extra: &[(&str, &str)]) -> Incoming {
    let mut params: BTreeMap<String, String> = [
        ("method", gateway::METHOD),
        ("app_key", "app"),
        ("target_app_key", "target"),
        ("sid", "sid1"),
        ("timestamp", "2024-06-01 12:00:00"),
        ("format", "json"),
        ("v", "2.0"),
        ("sign_method", "md5"),
        ("start_time", "2024-05-29 12:00:00"),
        ("end_time", "2024-06-01 11:59:00"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sign = qimen::sign(&params, "secret", SignMethod::Md5);
    params.insert("sign".to_string(), sign);
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect();
    Incoming {
        http_method: "POST".to_string(),
        query: String::new(),
        content_type: Some("application/x-www-form-urlencoded".to_string()),
        body: body.join("&").into_bytes(),
    }
}

fn json(reply: &Reply) -> Value {
    assert_eq!(reply.content_type, JSON);
    serde_json::from_str(&reply.body).unwrap()
}

#[test]
fn a_signed_request_pages_through_every_order() {
    let mut service = service(25);
    let mut seen = Vec::new();
    for page_no in 0.. {
        let reply = service.handle(
            Api::Qimen,
            &request(&[("page_size", "10"), ("page_no", &page_no.to_string())]),
            now(),
        );
        let body = json(&reply);
        let response = &body["response"];
        assert_eq!(response["errorcode"], 0, "{body}");
        assert_eq!(response.get("total_count").is_some(), page_no == 0);
        let rows = response["stockin_list"].as_array().unwrap();
        seen.extend(
            rows.iter()
                .map(|row| row["order_no"].as_str().unwrap().to_string()),
        );
        if rows.len() < 10 {
            break;
        }
    }
    let all: Vec<String> = service
        .orders()
        .iter()
        .map(|o| o.order_no.clone())
        .collect();
    assert_eq!(seen, all);
    assert_eq!(service.stats().ok, 3);
    assert_eq!(service.stats().rows_served, 25);
}

#[test]
fn a_tampered_request_gets_the_sign_failure_envelope() {
    let mut service = service(3);
    let mut tampered = request(&[]);
    // Query and body merge: a parameter added in the query is signed over, so it breaks
    // a sign computed without it.
    tampered.query = "shop_no=SHOP01".to_string();
    let body = json(&service.handle(Api::Qimen, &tampered, now()));
    assert_eq!(
        body.to_string(),
        r#"{"response":{"flag":"failure","code":"25","message":"Invalid signature","sub_code":"sign-check-failure","sub_message":"Illegal request","request_id":"sim-0001"}}"#
    );
    assert_eq!(service.stats().sign, 1);
    assert_eq!(service.requests()[0].error_code.as_deref(), Some("25"));
}

#[test]
fn the_rate_limit_counts_admitted_requests_per_sid() {
    let mut service = service(1);
    service
        .update_faults(&FaultsPatch {
            rate_limit: Some(2),
            ..FaultsPatch::default()
        })
        .unwrap();
    let codes: Vec<Value> = (0..3)
        .map(|_| {
            json(&service.handle(Api::Qimen, &request(&[]), now()))["response"]["sub_code"].clone()
        })
        .collect();
    assert_eq!(codes, [Value::Null, Value::Null, Value::from("1012")]);
    assert_eq!(service.stats().rate_limited, 1);
    // A minute later the window has slid past the first two calls.
    let later = now() + Duration::seconds(60);
    let body = json(&service.handle(Api::Qimen, &request(&[]), later));
    assert_eq!(body["response"]["errorcode"], 0, "{body}");
}

#[test]
fn business_errors_travel_under_code_50() {
    let mut service = service(1);
    let mut incoming = request(&[]);
    // Re-sign without the window: only business validation can fail now.
    let mut params = params::decode(&incoming).params;
    params.remove("start_time");
    params.remove("end_time");
    params.remove("sign");
    let sign = qimen::sign(&params, "secret", SignMethod::Md5);
    params.insert("sign".to_string(), sign);
    incoming.body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes();
    let body = json(&service.handle(Api::Qimen, &incoming, now()));
    assert_eq!(body["response"]["code"], "50");
    assert_eq!(body["response"]["sub_code"], "2900");
    assert_eq!(service.stats().business, 1);
}

#[test]
fn injected_failures_come_first_and_are_counted() {
    let mut service = service(1);
    service
        .update_faults(&FaultsPatch {
            fail_next: Some(1),
            rate_limit_next: Some(1),
            ..FaultsPatch::default()
        })
        .unwrap();
    let first = service.handle(Api::Qimen, &request(&[]), now());
    assert!(first.status >= 500 && first.content_type != JSON);
    let second = json(&service.handle(Api::Qimen, &request(&[]), now()));
    assert_eq!(second["response"]["sub_code"], "1012");
    let third = json(&service.handle(Api::Qimen, &request(&[]), now()));
    assert_eq!(third["response"]["errorcode"], 0);
    let stats = service.stats();
    assert_eq!(
        (stats.injected_5xx, stats.injected_rate_limit, stats.ok),
        (1, 1, 1)
    );
}

#[test]
fn drift_bumps_an_order_at_or_before_the_page_served() {
    let mut service = service(30);
    service
        .update_faults(&FaultsPatch {
            drift_rate: Some(1.0),
            ..FaultsPatch::default()
        })
        .unwrap();
    let before: Vec<String> = service
        .orders()
        .iter()
        .map(|o| o.order_no.clone())
        .collect();
    service.handle(
        Api::Qimen,
        &request(&[("page_size", "10"), ("page_no", "1")]),
        now(),
    );
    let bumped = service.requests()[0]
        .drifted
        .clone()
        .expect("drift at rate 1");
    let position = before.iter().position(|no| *no == bumped).unwrap();
    assert!(position < 20, "bumped row {position} lies after page 1");
    let order = service.orders.get(&bumped).unwrap();
    assert_eq!(order.modified, "2024-06-01 12:00:00");
    assert!(
        order
            .details_list
            .iter()
            .all(|d| d.modified == order.modified)
    );
    assert_eq!(service.stats().drifted, 1);
}

#[test]
fn drift_to_the_end_keeps_the_order_in_the_window_at_its_end() {
    let mut service = service(30);
    service
        .update_faults(&FaultsPatch {
            drift_rate: Some(1.0),
            drift_to: Some(DriftTo::End),
            ..FaultsPatch::default()
        })
        .unwrap();
    let page = request(&[("page_size", "10"), ("page_no", "0")]);
    service.handle(Api::Qimen, &page, now());
    let bumped = service.requests()[0].drifted.clone().expect("drift");
    assert_eq!(service.orders[&bumped].modified, "2024-06-01 11:59:00");
    let last = service.orders().last().unwrap().order_no.clone();
    assert_eq!(last, bumped, "it is the last row of the window now");
}

#[test]
fn a_duplicated_row_repeats_right_after_itself() {
    let mut service = service(30);
    service
        .update_faults(&FaultsPatch {
            duplicate_rate: Some(1.0),
            ..FaultsPatch::default()
        })
        .unwrap();
    let page = json(&service.handle(
        Api::Qimen,
        &request(&[("page_size", "10"), ("page_no", "0")]),
        now(),
    ));
    let numbers: Vec<&str> = page["response"]["stockin_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 11, "ten orders and one of them again");
    assert!(numbers.windows(2).any(|pair| pair[0] == pair[1]));
    assert_eq!(
        page["response"]["total_count"], 30,
        "the total counts orders"
    );
    assert_eq!(service.stats().duplicated, 1);
}

#[test]
fn inserted_and_touched_orders_are_normalised() {
    let mut service = service(0);
    let order: Order = serde_json::from_str(
        r#"{"order_no":"RKX1","shop_no":"SHOP01","details_list":[{"spec_no":"TX-RED-M"}]}"#,
    )
    .unwrap();
    let upserted = service.upsert(vec![order.clone(), order], now()).unwrap();
    assert_eq!((upserted.inserted, upserted.replaced), (1, 1));
    let stored = service.orders()[0].clone();
    assert_eq!(
        (stored.status, stored.modified.as_str()),
        (80, "2024-06-01 12:00:00")
    );
    assert_eq!(stored.details_list[0].stockin_id, stored.stockin_id);
    assert_eq!(stored.stockin_no, "RKX1");

    let later = now() + Duration::seconds(30);
    let patch = serde_json::json!({"remark": "改过"});
    let touched = service.touch("RKX1", Some(&patch), later).unwrap();
    assert_eq!(
        (touched.modified.as_str(), touched.remark.as_str()),
        ("2024-06-01 12:00:30", "改过")
    );
    assert_eq!(touched.stockin_id, stored.stockin_id);
    assert!(matches!(
        service.touch("RKX2", None, later),
        Err(EditError::NotFound(_))
    ));
    let bad = serde_json::json!({"modified": "yesterday"});
    assert!(matches!(
        service.touch("RKX1", Some(&bad), later),
        Err(EditError::Invalid(_))
    ));
    let renamed = serde_json::json!({"order_no": "RKX9"});
    assert!(matches!(
        service.touch("RKX1", Some(&renamed), later),
        Err(EditError::Invalid(_))
    ));
    let refused: Order = serde_json::from_str(r#"{"order_no":"RKX3","status":50}"#).unwrap();
    assert!(
        service
            .upsert(vec![refused], now())
            .unwrap_err()
            .contains("`status`")
    );
}

/// A signed direct-mode form POST for the three days before `now()`.
fn direct(extra: &[(&str, &str)]) -> Incoming {
    use crate::sign::wdt_openapi::{self, LengthUnit};
    let timestamp = now().timestamp().to_string();
    let mut params: BTreeMap<String, String> = [
        ("sid", "sid1"),
        ("appkey", "direct"),
        ("timestamp", timestamp.as_str()),
        ("start_time", "2024-05-29 12:00:00"),
        ("end_time", "2024-06-01 11:59:00"),
        ("page_size", "100"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sign = wdt_openapi::sign(&params, "direct-secret", LengthUnit::Chars);
    params.insert("sign".to_string(), sign);
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect();
    Incoming {
        http_method: "POST".to_string(),
        query: String::new(),
        content_type: Some("application/x-www-form-urlencoded".to_string()),
        body: body.join("&").into_bytes(),
    }
}

fn order_nos(reply: &Reply) -> BTreeSet<String> {
    let body = json(reply);
    assert_eq!(body["code"], 0, "{body}");
    body["stockin_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["order_no"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_history_endpoint_serves_the_archived_orders_and_only_them() {
    let mut settings = settings();
    settings.archive_after = Some(Duration::days(1));
    let until = wall_now(now()) - Duration::minutes(5);
    let mut service = Service::new(settings, faults(), 1, 40, 2, until);
    let cut = wall_now(now()) - Duration::days(1);
    let (old, recent): (BTreeSet<String>, BTreeSet<String>) = {
        let (old, recent): (Vec<&Order>, Vec<&Order>) = service
            .orders()
            .into_iter()
            .partition(|order| order.modified_at().unwrap() < cut);
        let nos = |orders: Vec<&Order>| orders.iter().map(|o| o.order_no.clone()).collect();
        (nos(old), nos(recent))
    };
    assert!(!old.is_empty() && !recent.is_empty());
    let history = service.handle(Api::Openapi2History, &direct(&[]), now());
    assert_eq!(order_nos(&history), old);
    let current = service.handle(Api::Openapi2, &direct(&[]), now());
    assert_eq!(order_nos(&current), recent);
    let qimen = json(&service.handle(Api::Qimen, &request(&[("page_size", "100")]), now()));
    assert_eq!(qimen["response"]["total_count"], recent.len());
    // The same signature, the same rules: a wrong sign and a long window are refused.
    let mut tampered = direct(&[]);
    tampered.query = "shop_no=SHOP01".to_string();
    let body = json(&service.handle(Api::Openapi2History, &tampered, now()));
    assert_eq!(body["code"], 102, "{body}");
    let long = direct(&[("start_time", "2024-04-01 00:00:00")]);
    let body = json(&service.handle(Api::Openapi2History, &long, now()));
    assert_ne!(body["code"], 0, "{body}");
    let stats = service.stats();
    assert_eq!(
        (stats.openapi2_history, stats.openapi2, stats.qimen),
        (3, 1, 1)
    );
    // Touched now, an archived order is current again.
    let moved = old.iter().next().unwrap().clone();
    service.touch(&moved, None, now()).unwrap();
    let history = service.handle(Api::Openapi2History, &direct(&[]), now());
    assert!(!order_nos(&history).contains(&moved));
}

#[test]
fn generated_orders_are_modified_now() {
    let mut service = service(5);
    let fresh = service.generate(3, Some(1.0), None, now()).unwrap();
    assert_eq!(fresh.len(), 3);
    assert!(fresh.iter().all(|o| o.modified == "2024-06-01 12:00:00"));
    assert_eq!(service.orders().len(), 8);
    assert!(service.generate(1, Some(2.0), None, now()).is_err());
}
