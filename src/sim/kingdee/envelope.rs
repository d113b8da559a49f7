//! The K3Cloud response envelope (`{"Result":{"ResponseStatus":{…}}}`) and its MsgCode table.
//!
//! Shapes follow spec §4: a success has no `ErrorCode`; a failure has `ErrorCode: 500`,
//! `IsSuccess: false`; the list of saved bills is spelled `SuccessEntitys`; every error item
//! is `{FieldName, Message, DIndex}` in that order. Query services wrap an error envelope as a
//! single "row" (`[[envelope]]`, spec §5.2). Pure data, no IO.

use serde_json::{Value, json};

/// The documented `MsgCode` values (spec §4.1) the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgCode {
    /// 上下文丢失: no session, expired session, or a signature that does not verify.
    ContextLost = 1,
    /// 异常: unknown form, unparsable filter, malformed input.
    Exception = 4,
    /// 单据标识为空: no `formid` on a form service.
    FormIdEmpty = 5,
    /// 参数错误: missing `data`, `Model`, `FieldKeys`, `FormId`, …
    ParameterError = 8,
    /// 指定字段/值不存在: unknown query field, base data not found (with verification on).
    FieldNotFound = 9,
    /// 未找到对应数据: update of an unknown `FID`, `View` of an unknown bill.
    DataNotFound = 10,
    /// 验证失败: required fields, uniqueness, WebAPI whitelist.
    ValidationFailed = 11,
    /// 不可操作: update of an audited bill.
    NotOperable = 12,
    /// 网控冲突: someone else holds the bill.
    NetworkControlConflict = 13,
}

impl MsgCode {
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// The message of MsgCode 1, kept in Chinese whatever the `lcid` (spec §2.1).
pub const SESSION_LOST: &str = "会话信息已丢失，请重新登录";

/// One entry of `Errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorItem {
    pub field_name: Option<String>,
    pub message: String,
    /// The index of the packet in `Model` (0 for calls without packets).
    pub dindex: usize,
    /// The MsgCode this error would give the envelope if it came first.
    pub code: MsgCode,
}

impl ErrorItem {
    pub fn new(
        code: MsgCode,
        field_name: Option<&str>,
        message: impl Into<String>,
        dindex: usize,
    ) -> ErrorItem {
        ErrorItem {
            field_name: field_name.map(str::to_string),
            message: message.into(),
            dindex,
            code,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"FieldName": self.field_name, "Message": self.message, "DIndex": self.dindex})
    }
}

/// One entry of `SuccessEntitys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessEntity {
    pub id: u64,
    pub number: String,
    pub dindex: usize,
}

/// The `ResponseStatus` object. With no errors it is a success (`MsgCode` 0, no `ErrorCode`);
/// otherwise `MsgCode` is the code of the first error by `DIndex`.
pub fn response_status(errors: &[ErrorItem], saved: &[SuccessEntity]) -> Value {
    let mut errors = errors.to_vec();
    errors.sort_by_key(|error| error.dindex);
    let success: Vec<Value> = saved
        .iter()
        .map(|entity| json!({"Id": entity.id, "Number": entity.number, "DIndex": entity.dindex}))
        .collect();
    match errors.first() {
        None => json!({
            "IsSuccess": true,
            "Errors": [],
            "SuccessEntitys": success,
            "SuccessMessages": [],
            "MsgCode": 0,
        }),
        Some(first) => json!({
            "ErrorCode": 500,
            "IsSuccess": false,
            "Errors": errors.iter().map(ErrorItem::to_json).collect::<Vec<_>>(),
            "SuccessEntitys": success,
            "SuccessMessages": [],
            "MsgCode": first.code.code(),
        }),
    }
}

/// A whole failure envelope with one error and nothing saved.
pub fn failure(code: MsgCode, field_name: Option<&str>, message: impl Into<String>) -> Value {
    json!({"Result": {"ResponseStatus": response_status(
        &[ErrorItem::new(code, field_name, message, 0)],
        &[],
    )}})
}

/// The MsgCode 1 envelope every client knows (spec §2.1).
pub fn session_lost() -> Value {
    failure(MsgCode::ContextLost, None, SESSION_LOST)
}

/// `ExecuteBillQuery` returns errors disguised as a single data row.
pub fn wrap_as_query_row(envelope: Value) -> Value {
    json!([[envelope]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_lost_envelope_is_byte_for_byte_the_documented_one() {
        assert_eq!(
            session_lost().to_string(),
            r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":1}}}"#
        );
    }

    #[test]
    fn a_success_has_no_error_code_and_msg_code_0() {
        let status = response_status(
            &[],
            &[SuccessEntity {
                id: 100001,
                number: "RT-1".into(),
                dindex: 0,
            }],
        );
        assert_eq!(
            status.to_string(),
            r#"{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"RT-1","DIndex":0}],"SuccessMessages":[],"MsgCode":0}"#
        );
    }

    #[test]
    fn errors_are_sorted_by_dindex_and_the_first_decides_the_msg_code() {
        let status = response_status(
            &[
                ErrorItem::new(MsgCode::ValidationFailed, Some("FBillNo"), "dup", 2),
                ErrorItem::new(MsgCode::FieldNotFound, Some("FMaterialId"), "missing", 1),
            ],
            &[],
        );
        assert_eq!(status["MsgCode"], 9);
        assert_eq!(status["ErrorCode"], 500);
        assert_eq!(status["Errors"][0]["DIndex"], 1);
        assert_eq!(status["Errors"][1]["FieldName"], "FBillNo");
    }

    #[test]
    fn query_errors_are_wrapped_as_one_row() {
        let wrapped = wrap_as_query_row(failure(MsgCode::FieldNotFound, None, "x"));
        assert_eq!(wrapped[0][0]["Result"]["ResponseStatus"]["MsgCode"], 9);
    }
}
