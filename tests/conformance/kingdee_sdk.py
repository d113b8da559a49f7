"""Drive `engine sim kingdee` with the official Kingdee Python SDK, unmodified.

Run by `tests/sim_kingdee.rs` (`kingdee_sdk_conformance`) with the sandbox's variables in the
environment (KINGDEE_URL, KINGDEE_ACCT_ID, KINGDEE_USERNAME, KINGDEE_APP_ID,
KINGDEE_APP_SECRET). It prints one JSON object on its last line: what each call returned,
parsed. The Rust test asserts on it, so this script only reports and never decides.
"""

import json
import os
import sys
import urllib.request

from k3cloud_webapi_sdk.main import K3CloudApiSdk

URL = os.environ["KINGDEE_URL"]
ACCT_ID = os.environ["KINGDEE_ACCT_ID"]
USERNAME = os.environ["KINGDEE_USERNAME"]
APP_ID = os.environ["KINGDEE_APP_ID"]
APP_SECRET = os.environ["KINGDEE_APP_SECRET"]


def client(acct_id=ACCT_ID, app_secret=APP_SECRET):
    """An SDK client configured the documented way (InitConfig, app-signature mode)."""
    sdk = K3CloudApiSdk(URL)
    sdk.InitConfig(acct_id, USERNAME, APP_ID, app_secret, URL, 2052)
    return sdk


def arm(mishap, **extra):
    """Arm a sandbox mishap for the next call (the sandbox's own control endpoint)."""
    root = URL.rstrip("/").rsplit("/", 1)[0]
    request = urllib.request.Request(
        root + "/_sim/faults/next",
        data=json.dumps({"mishap": mishap, **extra}).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def bill(bill_no, material, quantity):
    """A SAL_RETURNSTOCK packet shaped like the brief's field table."""
    return {
        "FBillTypeID": {"FNUMBER": "XSTHD01_SYS"},
        "FBillNo": bill_no,
        "FDate": "2024-03-01",
        "FSaleOrgId": {"FNumber": "100"},
        "FStockOrgId": {"FNumber": "100"},
        "FRetcustId": {"FNumber": "CUST0001"},
        "FHeadNote": "退货入库 " + bill_no,
        "SubHeadEntity": {"FSettleOrgId": {"FNumber": "100"}},
        "FEntity": [
            {
                "FMaterialId": {"FNumber": material},
                "FRealQty": quantity,
                "FTaxPrice": "59.90",
                "FEntryTaxRate": "13",
                "FStockId": {"FNumber": "CK001"},
                "FNote": "line of " + bill_no,
            }
        ],
    }


def main():
    report = {}
    sdk = client()

    # One bill with a material Kingdee does not know, between two good ones.
    batch = sdk.BatchSave(
        "SAL_RETURNSTOCK",
        {
            "IsVerifyBaseDataField": "false",
            "NeedReturnFields": ["FBillNo"],
            "Model": [
                bill("SDK-0001", "TX-RED-M", "2"),
                bill("SDK-0002", "XPWY-PNK-M", 1),
                bill("SDK-0003", "WJ-STD", 3),
            ],
        },
    )
    report["batch"] = json.loads(batch)
    report["session_after_first_call"] = sdk.cookiesStore.SID

    query = sdk.ExecuteBillQuery(
        {
            "FormId": "SAL_RETURNSTOCK",
            "FieldKeys": "FID,FBillNo,FDocumentStatus,FMaterialId.FNumber,FRealQty,FTaxPrice",
            "FilterString": "FBillNo='SDK-0001'",
            "OrderString": "FID ASC",
            "TopRowCount": 0,
            "StartRow": 0,
            "Limit": 2000,
        }
    )
    report["query"] = json.loads(query)

    bill_query = sdk.BillQuery(
        {
            "FormId": "SAL_RETURNSTOCK",
            "FieldKeys": "FBillNo",
            "FilterString": "FBillNo in ('SDK-0002','SDK-0003')",
        }
    )
    report["bill_query"] = json.loads(bill_query)

    duplicate = sdk.BatchSave("SAL_RETURNSTOCK", {"Model": [bill("SDK-0001", "TX-RED-M", 1)]})
    report["duplicate"] = json.loads(duplicate)

    bad_field = sdk.ExecuteBillQuery({"FormId": "SAL_RETURNSTOCK", "FieldKeys": "FID,FNoSuchField"})
    report["bad_field"] = json.loads(bad_field)

    # A bill's statuses, through the SDK's own Submit, Audit and UnAudit: SDK-0001 (FID
    # 100001) and SDK-0003 (FID 100002) were saved in status A.
    report["audit_unsubmitted"] = json.loads(sdk.Audit("SAL_RETURNSTOCK", {"Ids": "100001"}))
    report["submit"] = json.loads(
        sdk.Submit("SAL_RETURNSTOCK", {"Numbers": ["SDK-0001", "SDK-0003"]})
    )
    report["audit"] = json.loads(sdk.Audit("SAL_RETURNSTOCK", {"Ids": "100001,100002"}))
    report["audit_again"] = json.loads(sdk.Audit("SAL_RETURNSTOCK", {"Ids": "100001"}))
    report["save_audited"] = json.loads(
        sdk.Save("SAL_RETURNSTOCK", {"Model": {"FID": 100001, "FHeadNote": "changed"}})
    )
    report["unaudit"] = json.loads(sdk.UnAudit("SAL_RETURNSTOCK", {"Numbers": ["SDK-0001"]}))
    report["save_unaudited"] = json.loads(
        sdk.Save("SAL_RETURNSTOCK", {"Model": {"FID": 100001, "FHeadNote": "changed"}})
    )
    arm("msgcode", on="operation")
    report["forced_operation_msgcode"] = json.loads(
        sdk.Submit("SAL_RETURNSTOCK", {"Ids": "100001"})
    )
    report["statuses"] = json.loads(
        sdk.ExecuteBillQuery(
            {
                "FormId": "SAL_RETURNSTOCK",
                "FieldKeys": "FID,FBillNo,FDocumentStatus,FHeadNote",
                "OrderString": "FID ASC",
            }
        )
    )

    # A client with the wrong app secret: no session, so the signature decides.
    wrong_secret = client(app_secret="ffffffffffffffffffffffffffffffff")
    report["wrong_secret"] = json.loads(
        wrong_secret.BatchSave("SAL_RETURNSTOCK", {"Model": [bill("SDK-0009", "TX-RED-M", 1)]})
    )

    # A client with the wrong data centre: the SDK raises on the non-200 answer.
    wrong_acct = client(acct_id="ffffffffffffff")
    try:
        wrong_acct.BatchSave("SAL_RETURNSTOCK", {"Model": [bill("SDK-0010", "TX-RED-M", 1)]})
        report["wrong_acct"] = "no error"
    except RuntimeError as err:
        report["wrong_acct"] = str(err)

    # Mishaps, as the SDK sees them: it raises on a `response_error:` body and hands over a
    # forced MsgCode 1 envelope as the answer.
    arm("response_error", on="save")
    try:
        sdk.BatchSave("SAL_RETURNSTOCK", {"Model": [bill("SDK-0011", "TX-RED-M", 1)]})
        report["response_error"] = "no error"
    except RuntimeError as err:
        report["response_error"] = str(err)
    arm("msgcode", on="save")
    report["forced_msgcode"] = json.loads(
        sdk.BatchSave("SAL_RETURNSTOCK", {"Model": [bill("SDK-0012", "TX-RED-M", 1)]})
    )

    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
