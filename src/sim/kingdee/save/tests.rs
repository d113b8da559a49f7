use chrono::TimeZone;
use rust_decimal::Decimal;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 2, 0, 0).unwrap()
}

/// A packet every check accepts.
fn packet(bill_no: &str, material: &str) -> Value {
    json!({
        "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
        "FBillNo": bill_no,
        "FDate": "2024-03-01",
        "FSaleOrgId": {"FNumber": "100"},
        "FStockOrgId": {"FNumber": 100},
        "FRetcustId": {"FNumber": "CUST0001"},
        "FHeadNote": "退货",
        "SubHeadEntity": {"FSettleOrgId": {"FNumber": "100"}},
        "FEntity": [{
            "FMaterialId": {"FNumber": material},
            "FRealQty": "2",
            "FTaxPrice": 59.9,
            "FEntryTaxRate": "13",
            "FStockId": {"FNumber": "CK001"},
            "FNote": "line",
        }],
    })
}

fn call(formid: &str, data: Value) -> FormCall {
    let Value::Object(data) = data else { panic!() };
    FormCall {
        formid: Some(formid.to_string()),
        data,
    }
}

fn batch(store: &mut BillStore, config: &SaveConfig, data: Value) -> SaveOutcome {
    save(
        store,
        &BaseData::seeded(),
        config,
        SaveKind::BatchSave,
        &call("SAL_RETURNSTOCK", data),
        now(),
    )
}

fn errors(outcome: &SaveOutcome) -> Vec<(Option<String>, String, u64)> {
    outcome.body["Result"]["ResponseStatus"]["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["FieldName"].as_str().map(str::to_string),
                error["Message"].as_str().unwrap().to_string(),
                error["DIndex"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_good_batch_saves_every_bill_with_the_documented_envelope() {
    let mut store = BillStore::default();
    let outcome = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"NeedReturnFields": ["FBillNo"], "Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "WY-BLK-L")]}),
    );
    assert_eq!(
        outcome.body.to_string(),
        r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"RT-1","DIndex":0},{"Id":100002,"Number":"RT-2","DIndex":1}],"SuccessMessages":[],"MsgCode":0},"NeedReturnData":[{"FBillNo":"RT-1"},{"FBillNo":"RT-2"}]}}"#
    );
    assert_eq!(outcome.created, 2);
    let bill = store.by_number("RT-1").unwrap();
    assert_eq!(bill.status, DocumentStatus::Created);
    let row = &bill.entries[0];
    assert_eq!((row.entry_id, row.seq), (100001, 1));
    assert_eq!(
        row.fields["FUnitID"].number(),
        Some("Pcs"),
        "unit from the material"
    );
    assert_eq!(
        row.fields["FAllAmount"],
        Cell::Decimal(Decimal::new(11980, 2))
    );
    assert_eq!(bill.sub_head["FSettleCurrId"].number(), Some("PRE001"));
    assert_eq!(
        bill.head["FStockOrgId"].number(),
        Some("100"),
        "numeric code"
    );
}

#[test]
fn an_unknown_material_fails_only_its_own_packet() {
    let mut store = BillStore::default();
    let outcome = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "XPWY-PNK-M"), packet("RT-3", "WJ-STD")]}),
    );
    let status = &outcome.body["Result"]["ResponseStatus"];
    assert_eq!(status["IsSuccess"], false);
    assert_eq!(status["ErrorCode"], 500);
    assert_eq!(status["MsgCode"], 11);
    assert_eq!(
        errors(&outcome),
        vec![
            (
                Some("FMaterialId".into()),
                "单据体实体【明细信息】第【1】行分录，【物料编码】字段必录".into(),
                1
            ),
            (
                Some("FUnitID".into()),
                "单据体实体【明细信息】第【1】行分录，【库存单位】字段必录".into(),
                1
            ),
        ]
    );
    let saved: Vec<u64> = status["SuccessEntitys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entity| entity["DIndex"].as_u64().unwrap())
        .collect();
    assert_eq!(saved, vec![0, 2]);
    assert_eq!(store.bills().len(), 2);
    assert_eq!((outcome.created, outcome.rejected), (2, 1));
}

#[test]
fn verification_reports_the_reference_itself_with_msg_code_9() {
    let mut store = BillStore::default();
    for (material, verify) in [("XPWY-PNK-M", json!(true)), ("FORBID-001", json!("true"))] {
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"IsVerifyBaseDataField": verify, "Model": [packet("RT-9", material)]}),
        );
        assert_eq!(outcome.body["Result"]["ResponseStatus"]["MsgCode"], 9);
        assert_eq!(
            errors(&outcome),
            vec![(
                Some("FMaterialId".into()),
                format!("字段“物料编码”的值“{material}”在系统中不存在或已禁用"),
                0
            )]
        );
    }
    assert!(store.bills().is_empty());
}

#[test]
fn missing_head_fields_give_the_head_message() {
    let mut store = BillStore::default();
    let mut bad = packet("RT-1", "TX-RED-M");
    bad.as_object_mut().unwrap().remove("FRetcustId");
    bad["FSaleOrgId"] = json!({"FNumber": "999"});
    bad["SubHeadEntity"] = json!({});
    let outcome = batch(
        &mut store,
        &SaveConfig {
            default_settle_currency: None,
            ..SaveConfig::default()
        },
        json!({"Model": [bad]}),
    );
    assert_eq!(
        errors(&outcome),
        vec![
            (
                Some("FSaleOrgId".into()),
                "字段“销售组织”是必填项".into(),
                0
            ),
            (
                Some("FRetcustId".into()),
                "字段“退货客户”是必填项".into(),
                0
            ),
            (
                Some("FSettleCurrId".into()),
                "字段“结算币别”是必填项".into(),
                0
            ),
            (
                Some("FSettleOrgId".into()),
                "字段“结算组织”是必填项".into(),
                0
            ),
        ]
    );
}

#[test]
fn validate_flag_false_skips_required_checks() {
    let mut store = BillStore::default();
    let outcome = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"ValidateFlag": "false", "Model": [{"FBillNo": "RT-EMPTY"}]}),
    );
    assert_eq!(outcome.created, 1, "{}", outcome.body);
}

#[test]
fn bill_numbers_are_unique_across_the_table_and_the_call() {
    let mut store = BillStore::default();
    batch(
        &mut store,
        &SaveConfig::default(),
        json!({"Model": [packet("RT-1", "TX-RED-M")]}),
    );
    let outcome = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "TX-RED-M"), packet("RT-2", "TX-RED-L")]}),
    );
    assert_eq!(
        errors(&outcome),
        vec![
            (
                Some("FBillNo".into()),
                "违反字段唯一性要求：编码唯一。[RT-1]在当前系统中已经被使用。".into(),
                0
            ),
            (
                Some("FBillNo".into()),
                "违反字段唯一性要求：编码唯一。[RT-2]在当前系统中已经被使用。".into(),
                2
            ),
        ]
    );
    assert_eq!(outcome.body["Result"]["ResponseStatus"]["MsgCode"], 11);
    assert_eq!((outcome.created, outcome.duplicates), (1, 2));
}

#[test]
fn atomic_mode_saves_nothing_when_one_packet_fails() {
    let mut store = BillStore::default();
    let config = SaveConfig {
        batch_mode: BatchMode::Atomic,
        ..SaveConfig::default()
    };
    let outcome = batch(
        &mut store,
        &config,
        json!({"Model": [packet("RT-1", "TX-RED-M"), packet("RT-2", "NOPE")]}),
    );
    assert_eq!(
        outcome.body["Result"]["ResponseStatus"]["SuccessEntitys"],
        json!([])
    );
    assert!(store.bills().is_empty());
    assert_eq!(outcome.rejected, 2);
    let outcome = batch(
        &mut store,
        &config,
        json!({"Model": [packet("RT-1", "TX-RED-M")]}),
    );
    assert_eq!(
        outcome.body["Result"]["ResponseStatus"]["SuccessEntitys"][0]["Id"],
        100001
    );
}

#[test]
fn auto_submit_and_audit_gives_status_c_and_auto_numbers_fill_gaps() {
    let mut store = BillStore::default();
    let mut unnumbered = packet("", "TX-RED-M");
    unnumbered.as_object_mut().unwrap().remove("FBillNo");
    batch(
        &mut store,
        &SaveConfig::default(),
        json!({"IsAutoSubmitAndAudit": true, "Model": [unnumbered]}),
    );
    let bill = &store.bills()[0];
    assert_eq!(bill.status, DocumentStatus::Audited);
    assert_eq!(bill.bill_no, "XSTH00000001");
}

#[test]
fn save_has_top_level_id_and_number() {
    let mut store = BillStore::default();
    let good = save(
        &mut store,
        &BaseData::seeded(),
        &SaveConfig::default(),
        SaveKind::Save,
        &call(
            "SAL_RETURNSTOCK",
            json!({"Model": packet("RT-1", "TX-RED-M")}),
        ),
        now(),
    );
    assert_eq!(
        good.body.to_string(),
        r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"RT-1","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"Id":100001,"Number":"RT-1","NeedReturnData":[{}]}}"#
    );
    let bad = save(
        &mut store,
        &BaseData::seeded(),
        &SaveConfig::default(),
        SaveKind::Save,
        &call(
            "SAL_RETURNSTOCK",
            json!({"Model": packet("RT-1", "TX-RED-M")}),
        ),
        now(),
    );
    assert_eq!(bad.body["Result"]["Id"], "");
    assert_eq!(bad.body["Result"]["Number"], "");
    assert_eq!(bad.body["Result"]["ResponseStatus"]["MsgCode"], 11);
}

#[test]
fn call_level_errors_use_their_msg_codes() {
    let mut store = BillStore::default();
    for (formid, data, code, message) in [
        (
            "NO_SUCH_FORM",
            json!({"Model": []}),
            4,
            "标识为“NO_SUCH_FORM”的业务对象不存在，或者被删除",
        ),
        (
            "SAL_RETURNSTOCK",
            json!({}),
            8,
            "data数据包中的参数Model必传。",
        ),
        (
            "SAL_RETURNSTOCK",
            json!({"Model": {}}),
            8,
            "BatchSave接口的参数Model必须是数组",
        ),
        (
            "SAL_RETURNSTOCK",
            json!({"IsVerifyBaseDataField": "yes", "Model": []}),
            4,
            "参数IsVerifyBaseDataField的值“yes”无效：String was not recognized as a valid Boolean.",
        ),
        ("", json!({"Model": []}), 5, "表单标识formid不能为空"),
    ] {
        let outcome = batch_with_form(&mut store, formid, data);
        let status = &outcome.body["Result"]["ResponseStatus"];
        assert_eq!(status["MsgCode"], code, "{formid}");
        assert_eq!(status["Errors"][0]["Message"], message, "{formid}");
    }
}

fn batch_with_form(store: &mut BillStore, formid: &str, data: Value) -> SaveOutcome {
    save(
        store,
        &BaseData::seeded(),
        &SaveConfig::default(),
        SaveKind::BatchSave,
        &call(formid, data),
        now(),
    )
}

#[test]
fn validate_repeat_json_rejects_an_identical_packet() {
    let mut store = BillStore::default();
    let mut unnumbered = packet("", "TX-RED-M");
    unnumbered.as_object_mut().unwrap().remove("FBillNo");
    let data = json!({"ValidateRepeatJson": true, "Model": [unnumbered]});
    assert_eq!(
        batch(&mut store, &SaveConfig::default(), data.clone()).created,
        1
    );
    let again = batch(&mut store, &SaveConfig::default(), data);
    assert_eq!(again.created, 0);
    assert_eq!(again.body["Result"]["ResponseStatus"]["MsgCode"], 11);
}

#[test]
fn an_update_merges_fields_and_replaces_rows() {
    let mut store = BillStore::default();
    batch(
        &mut store,
        &SaveConfig::default(),
        json!({"Model": [packet("RT-1", "TX-RED-M")]}),
    );
    let update = json!({"Model": [{
        "FID": "100001",
        "FHeadNote": "改",
        "FEntity": [{"FMaterialId": {"FNumber": "WJ-STD"}, "FRealQty": 1, "FStockId": {"FNumber": "CK002"}}],
    }]});
    let outcome = batch(&mut store, &SaveConfig::default(), update);
    assert_eq!(outcome.updated, 1, "{}", outcome.body);
    let bill = store.by_fid(100001).unwrap();
    assert_eq!(bill.bill_no, "RT-1");
    assert_eq!(bill.head["FHeadNote"], Cell::Text("改".into()));
    assert_eq!(bill.entries.len(), 1);
    assert_eq!(
        bill.entries[0].fields["FMaterialId"].number(),
        Some("WJ-STD")
    );

    let unknown = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"Model": [{"FID": 5}]}),
    );
    assert_eq!(unknown.body["Result"]["ResponseStatus"]["MsgCode"], 10);
}

#[test]
fn an_audited_bill_cannot_be_updated() {
    let mut store = BillStore::default();
    batch(
        &mut store,
        &SaveConfig::default(),
        json!({"IsAutoSubmitAndAudit": "true", "Model": [packet("RT-1", "TX-RED-M")]}),
    );
    let outcome = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"Model": [{"FID": 100001, "FHeadNote": "x"}]}),
    );
    assert_eq!(outcome.body["Result"]["ResponseStatus"]["MsgCode"], 12);
    assert_eq!(
        errors(&outcome)[0].1,
        "单据编号为“RT-1”的销售退货单已审核，不允许修改"
    );
}

#[test]
fn a_save_by_fid_is_allowed_in_a_and_d_and_refused_in_b_and_c() {
    for (status, refusal) in [
        (DocumentStatus::Created, None),
        (DocumentStatus::Reaudit, None),
        (
            DocumentStatus::Submitted,
            Some("单据编号为“RT-1”的销售退货单已提交，不允许修改"),
        ),
        (
            DocumentStatus::Audited,
            Some("单据编号为“RT-1”的销售退货单已审核，不允许修改"),
        ),
    ] {
        let mut store = BillStore::default();
        batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [packet("RT-1", "TX-RED-M")]}),
        );
        store.by_fid_mut(100001).unwrap().status = status;
        let outcome = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"Model": [{"FID": 100001, "FHeadNote": "改"}]}),
        );
        let bill = store.by_fid(100001).unwrap();
        assert_eq!(bill.status, status, "the status is kept");
        match refusal {
            None => {
                assert_eq!(outcome.updated, 1, "{status:?}: {}", outcome.body);
                assert_eq!(bill.head["FHeadNote"], Cell::Text("改".into()));
            }
            Some(message) => {
                let response = &outcome.body["Result"]["ResponseStatus"];
                assert_eq!(response["MsgCode"], 12, "{status:?}");
                assert_eq!(errors(&outcome), vec![(None, message.to_string(), 0)]);
                assert_eq!(bill.head["FHeadNote"], Cell::Text("退货".into()));
            }
        }
        let auto = batch(
            &mut store,
            &SaveConfig::default(),
            json!({"IsAutoSubmitAndAudit": true, "Model": [{"FID": 100001, "FHeadNote": "x"}]}),
        );
        assert_eq!(
            auto.updated, 0,
            "{status:?}: IsAutoSubmitAndAudit on an update"
        );
    }
}

#[test]
fn quantities_accept_numbers_and_numeric_strings_and_reject_text() {
    for (text, expected) in [
        ("2", Some(Decimal::new(2, 0))),
        (" 2.50 ", Some(Decimal::new(250, 2))),
        ("1e2", Some(Decimal::new(100, 0))),
        ("abc", None),
    ] {
        assert_eq!(parse_decimal(text), expected, "{text}");
    }
    let mut store = BillStore::default();
    let mut bad = packet("RT-1", "TX-RED-M");
    bad["FEntity"][0]["FRealQty"] = json!("two");
    let outcome = batch(&mut store, &SaveConfig::default(), json!({"Model": [bad]}));
    assert_eq!(
        errors(&outcome)[0].1,
        "单据体实体【明细信息】第【1】行分录，字段“实退数量”的值“two”不是有效的数字"
    );
}

#[test]
fn need_return_data_reads_head_and_entry_keys() {
    let mut store = BillStore::default();
    let outcome = batch(
        &mut store,
        &SaveConfig::default(),
        json!({"NeedReturnFields": ["FID", "FBillNo", "FSaleOrgId", "FEntity.FMaterialId", "FENTITY_FENTRYID"], "Model": [packet("RT-1", "TX-RED-M")]}),
    );
    assert_eq!(
        outcome.body["Result"]["NeedReturnData"][0],
        json!({"FID": 100001, "FBillNo": "RT-1", "FSaleOrgId": {"FNumber": "100"}, "FEntity": [{"FEntryID": 100001, "FMaterialId": {"FNumber": "TX-RED-M"}}]})
    );
}
