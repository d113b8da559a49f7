#!/usr/bin/env python3
"""An independent client of the WDT sandbox, written from docs/spec wdt_qimen.md (§2, §3, §8),
not from the Rust code. Standard library only.

It signs requests the way Qimen integrators and WDT's own SDKs do, calls the sandbox, and checks
the envelopes the spec prescribes. Every check prints `ok - …` or `not ok - …`; the exit status
is 1 if any check failed.

Environment (as printed by `engine sim wdt`): WDT_QIMEN_URL, WDT_APP_KEY, WDT_APP_SECRET,
WDT_TARGET_APP_KEY, WDT_SID; for the direct openapi2 checks WDT_OPENAPI_APPKEY and
WDT_OPENAPI_APPSECRET. `qimen_client.py history DAYS` checks only the history endpoint of a
sandbox started with `--wdt-archive-after-days DAYS`.
"""

import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8))
METHOD = "wdt.stockin.order.query.refund"

failures = []


def check(name, condition, detail=""):
    if condition:
        print(f"ok - {name}")
    else:
        print(f"not ok - {name}: {detail}")
        failures.append(name)


# --- Qimen/TOP sign (spec §2.3) -------------------------------------------------------------


def qimen_sign(params, secret, sign_method="md5", body=""):
    """Drop `sign` and empty keys/values, sort by key, concatenate key+value, append a raw
    body; md5 wraps with the secret, hmac/hmac-sha256 key with it; uppercase hex."""
    text = "".join(
        k + v for k, v in sorted(params.items()) if k != "sign" and k and v
    ) + body
    if sign_method == "md5":
        return hashlib.md5((secret + text + secret).encode("utf-8")).hexdigest().upper()
    digest = hashlib.md5 if sign_method == "hmac" else hashlib.sha256
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), digest).hexdigest().upper()


# --- WDT openapi2 sign (spec §3.3) ----------------------------------------------------------


def wdt_sign(params, secret, unit="chars"):
    def length(s):
        return len(s) if unit == "chars" else len(s.encode("utf-8"))

    pieces = [
        "%02d-%s:%04d-%s" % (length(k), k, length(v), v)
        for k, v in sorted(params.items())
        if k != "sign"
    ]
    return hashlib.md5((";".join(pieces) + secret).encode("utf-8")).hexdigest()


# --- HTTP -----------------------------------------------------------------------------------


def http(url, *, method="POST", query=None, form=None, raw=None, content_type=None):
    if query:
        url = url + "?" + urllib.parse.urlencode(query)
    data = None
    headers = {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode("utf-8")
        headers["Content-Type"] = "application/x-www-form-urlencoded;charset=utf-8"
    elif raw is not None:
        data = raw.encode("utf-8")
        headers["Content-Type"] = content_type or "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def call_json(url, **kwargs):
    status, content_type, body = http(url, **kwargs)
    return status, content_type, json.loads(body.decode("utf-8"))


# --- the client -----------------------------------------------------------------------------


class Qimen:
    def __init__(self):
        self.url = os.environ["WDT_QIMEN_URL"]
        self.app_key = os.environ["WDT_APP_KEY"]
        self.secret = os.environ["WDT_APP_SECRET"]
        self.target = os.environ["WDT_TARGET_APP_KEY"]
        self.sid = os.environ["WDT_SID"]

    def system(self, sign_method="md5", timestamp=None, **overrides):
        params = {
            "method": METHOD,
            "app_key": self.app_key,
            "target_app_key": self.target,
            "timestamp": timestamp or datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "format": "json",
            "v": "2.0",
            "sign_method": sign_method,
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def window(self, days_back=15, **extra):
        now = datetime.now(BEIJING)
        params = {
            "sid": self.sid,
            "start_time": (now - timedelta(days=days_back)).strftime("%Y-%m-%d %H:%M:%S"),
            "end_time": now.strftime("%Y-%m-%d %H:%M:%S"),
        }
        params.update(extra)
        return params

    def post_form(self, business, sign_method="md5", secret=None, **system_overrides):
        params = self.system(sign_method, **system_overrides)
        params.update(business)
        params["sign"] = qimen_sign(params, secret or self.secret, sign_method)
        return call_json(self.url, form=params)


def is_success(body):
    response = body.get("response", {})
    return (
        "flag" not in response
        and response.get("errorcode") == 0
        and isinstance(response.get("stockin_list"), list)
    )


def is_failure(body, code, sub_code=None, sub_message=None):
    response = body.get("response", {})
    return (
        response.get("flag") == "failure"
        and response.get("code") == code
        and (sub_code is None or response.get("sub_code") == sub_code)
        and (sub_message is None or response.get("sub_message") == sub_message)
        and isinstance(response.get("request_id"), str)
    )


def qimen_checks():
    q = Qimen()

    # The signer itself against the spec's §2.3 vector, so a sign failure below is the server's.
    vector = {
        "app_key": "12345678", "end_time": "2024-01-01 23:59:59", "format": "json",
        "method": METHOD, "page_no": "0", "page_size": "40", "sid": "test2",
        "sign_method": "md5", "start_time": "2024-01-01 00:00:00",
        "target_app_key": "87654321", "timestamp": "2024-01-01 12:00:00", "v": "2.0",
    }
    check("own md5 signer matches the spec vector",
          qimen_sign(vector, "test_secret") == "C659C284B1E8836251F1AA50BF933259")
    check("own hmac signer matches the spec vector",
          qimen_sign(vector, "test_secret", "hmac") == "F5417C4A13CB4F11B6C809A969E7B918")
    check("own hmac-sha256 signer matches the spec vector",
          qimen_sign(vector, "test_secret", "hmac-sha256")
          == "D0A02563287E3635F6BCD25443BA3ECE4C21FA705859AB057A181DFBDB79892F")

    for sign_method in ["md5", "hmac", "hmac-sha256"]:
        status, content_type, body = q.post_form(q.window(), sign_method)
        check(f"{sign_method}-signed form POST succeeds", status == 200 and is_success(body), body)
    check("success is JSON with charset",
          content_type and content_type.replace(" ", "").lower() == "application/json;charset=utf-8",
          content_type)

    # Typing of the records (spec §4.4, §8.7).
    rows = body["response"]["stockin_list"] if is_success(body) else []
    check("the default query returns records", len(rows) > 0, "no rows")
    typed = all(
        isinstance(r["stockin_id"], str) and r["status"] == 80
        and isinstance(r["trans_from_wt"], int) and isinstance(r["process_status"], int)
        and (r["logistics_id"] is None or isinstance(r["logistics_id"], str))
        and all(isinstance(d["num"], str) and isinstance(d["defect"], int) for d in r["details_list"])
        for r in rows
    )
    check("records carry strings for ids/quantities and ints for status and flags", typed)

    # No sign_method: the gateway defaults to md5.
    params = q.system(sign_method=None)
    params.update(q.window())
    params["sign"] = qimen_sign(params, q.secret, "md5")
    _, _, body = call_json(q.url, form=params)
    check("sign_method absent means md5", is_success(body), body)

    # GET with everything in the query (Python integrators).
    params = q.system()
    params.update(q.window())
    params["sign"] = qimen_sign(params, q.secret)
    _, _, body = call_json(q.url, method="GET", query=params)
    check("GET with all parameters in the query succeeds", is_success(body), body)

    # System parameters in the query, business parameters in the form body (Java SDK).
    system = q.system()
    business = q.window(page_size="5")
    system["sign"] = qimen_sign({**system, **business}, q.secret)
    _, _, body = call_json(q.url, query=system, form=business)
    check("split query/body request succeeds", is_success(body), body)

    # Epoch milliseconds as timestamp (TOP's Python SDK).
    millis = str(int(datetime.now(timezone.utc).timestamp() * 1000))
    _, _, body = q.post_form(q.window(), timestamp=millis)
    check("epoch-millisecond timestamp is accepted", is_success(body), body)

    # A JSON body is signed as a raw body; parameters travel in the query.
    params = q.system()
    params.update(q.window())
    raw = json.dumps({"note": "raw body"})
    params["sign"] = qimen_sign(params, q.secret, "md5", body=raw)
    _, _, body = call_json(q.url, query=params, raw=raw)
    check("JSON body signed as secret+S+body+secret succeeds", is_success(body), body)

    # Failures (spec §8.3).
    params = q.system()
    params.update(q.window())
    params["sign"] = "0" * 32
    status, content_type, body = call_json(q.url, form=params)
    check("wrong sign → 25 sign-check-failure Illegal request",
          status == 200 and is_failure(body, "25", "sign-check-failure", "Illegal request")
          and body["response"].get("message") == "Invalid signature", body)
    check("failures are HTTP 200 JSON with charset",
          content_type and content_type.replace(" ", "").lower() == "application/json;charset=utf-8",
          content_type)

    params = q.system()
    params.update(q.window())
    params["sign"] = qimen_sign(params, q.secret + "x")
    _, _, body = call_json(q.url, form=params)
    check("sign made with another secret → 25", is_failure(body, "25", "sign-check-failure"), body)

    _, _, body = q.post_form(q.window(), app_key="99999999")
    check("wrong app_key → 29", is_failure(body, "29"), body)

    stale = (datetime.now(BEIJING) - timedelta(minutes=20)).strftime("%Y-%m-%d %H:%M:%S")
    _, _, body = q.post_form(q.window(), timestamp=stale)
    check("stale timestamp → 31", is_failure(body, "31"), body)

    _, _, body = q.post_form(q.window(), target_app_key="99999999")
    check("wrong target_app_key → 41", is_failure(body, "41"), body)

    _, _, body = q.post_form(q.window(), method="wdt.trade.query")
    check("other method → 22", is_failure(body, "22"), body)

    _, _, body = q.post_form(q.window(sid="nobody"))
    check("unknown sid → 50 / 1020 卖家账号不存在", is_failure(body, "50", "1020", "卖家账号不存在"), body)

    _, _, body = q.post_form({"sid": q.sid})
    check("no time range → 50 / 2900",
          is_failure(body, "50", "2900", "时间范围与入库单号不能全部为空"), body)

    _, _, body = q.post_form(q.window(days_back=31))
    check("a window over 30 days is refused", is_failure(body, "50"), body)

    _, _, body = q.post_form(q.window(status="50"))
    check("an unknown status is refused", is_failure(body, "50"), body)

    # Paging (spec §4.3): total_count only on page 0, pages do not overlap.
    _, _, first = q.post_form(q.window(page_size="5", page_no="0"))
    _, _, second = q.post_form(q.window(page_size="5", page_no="1"))
    check("page 0 carries total_count",
          is_success(first) and isinstance(first["response"].get("total_count"), int), first)
    check("page 1 has no total_count",
          is_success(second) and "total_count" not in second["response"], second)
    ids = lambda body: [r["stockin_id"] for r in body["response"].get("stockin_list", [])]
    check("pages 0 and 1 are disjoint and full",
          len(ids(first)) == 5 and len(ids(second)) == 5 and not set(ids(first)) & set(ids(second)),
          (ids(first), ids(second)))
    _, _, beyond = q.post_form(q.window(page_size="100", page_no="999"))
    check("a page past the end is an empty success",
          is_success(beyond) and beyond["response"]["stockin_list"] == [], beyond)

    # total_count agrees with the sandbox's own list of status-80 orders in the window.
    base = q.url.rsplit("/router/qm", 1)[0]
    _, _, everything = call_json(base + "/_sim/orders", method="GET")
    window = q.window()
    expected = [
        o for o in everything
        if o["status"] == 80 and window["start_time"] <= o["modified"] <= window["end_time"]
    ]
    check("total_count equals the matching orders",
          first.get("response", {}).get("total_count") == len(expected),
          (first.get("response", {}).get("total_count"), len(expected)))


def openapi2_checks():
    appkey = os.environ.get("WDT_OPENAPI_APPKEY")
    secret = os.environ.get("WDT_OPENAPI_APPSECRET")
    if not appkey or not secret:
        print("not ok - openapi2 credentials missing from the environment")
        failures.append("openapi2 credentials")
        return
    official = {
        "appkey": "test2-xx", "end_time": "2016-08-01 13:00:00", "page_no": "0",
        "page_size": "40", "sid": "test2", "start_time": "2016-08-01 12:00:00",
        "timestamp": "1470042310",
    }
    check("own WDT signer matches the official example",
          wdt_sign(official, "12345") == "ad4e6fe037ea6e3ba4768317be9d1309")

    url = os.environ["WDT_QIMEN_URL"].rsplit("/router/qm", 1)[0] + "/openapi2/stockin_order_query_refund.php"
    now = datetime.now(BEIJING)

    def params(**extra):
        p = {
            "sid": os.environ["WDT_SID"],
            "appkey": appkey,
            "timestamp": str(int(now.timestamp())),
            "start_time": (now - timedelta(days=15)).strftime("%Y-%m-%d %H:%M:%S"),
            "end_time": now.strftime("%Y-%m-%d %H:%M:%S"),
        }
        p.update(extra)
        return p

    p = params()
    p["sign"] = wdt_sign(p, secret)
    _, _, body = call_json(url, form=p)
    check("openapi2 signed request succeeds",
          body.get("code") == 0 and isinstance(body.get("stockin_list"), list)
          and isinstance(body.get("total_count"), int), body)

    p = params(shop_no="店铺01")
    p["sign"] = wdt_sign(p, secret, "chars")
    _, _, body = call_json(url, form=p)
    check("openapi2 counts characters in a Chinese value",
          body.get("code") == 0 and body.get("stockin_list") == [], body)

    p = params(shop_no="店铺01")
    p["sign"] = wdt_sign(p, secret, "bytes")
    _, _, body = call_json(url, form=p)
    check("openapi2 refuses a byte-length sign by default",
          isinstance(body.get("code"), int) and body["code"] != 0, body)

    p = params(timestamp=str(int(now.timestamp()) - 600))
    p["sign"] = wdt_sign(p, secret)
    _, _, body = call_json(url, form=p)
    check("openapi2 refuses a timestamp 10 minutes old",
          isinstance(body.get("code"), int) and body["code"] != 0, body)

    p = {k: v for k, v in params().items() if k not in ("start_time", "end_time")}
    p["sign"] = wdt_sign(p, secret)
    _, _, body = call_json(url, form=p)
    check("openapi2 without time range → 2900",
          body == {"code": 2900, "message": "时间范围与入库单号不能全部为空"}, body)


def history_checks(archive_after_days):
    """`his_stockin_order_query_refund.php` (spec §3.1, §8.1): the direct protocol over the
    orders archived before now − archive_after_days; the current endpoints keep the rest."""
    appkey = os.environ["WDT_OPENAPI_APPKEY"]
    secret = os.environ["WDT_OPENAPI_APPSECRET"]
    root = os.environ["WDT_QIMEN_URL"].rsplit("/router/qm", 1)[0]
    history_url = root + "/openapi2/his_stockin_order_query_refund.php"
    current_url = root + "/openapi2/stockin_order_query_refund.php"
    now = datetime.now(BEIJING)
    start = (now - timedelta(days=29)).strftime("%Y-%m-%d %H:%M:%S")
    end = now.strftime("%Y-%m-%d %H:%M:%S")

    def signed(**extra):
        p = {
            "sid": os.environ["WDT_SID"], "appkey": appkey,
            "timestamp": str(int(datetime.now(BEIJING).timestamp())),
            "start_time": start, "end_time": end,
        }
        p.update(extra)
        p["sign"] = wdt_sign(p, secret)
        return p

    def every_page(url):
        numbers, page_no = [], 0
        while True:
            _, _, body = call_json(url, form=signed(page_no=str(page_no), page_size="25"))
            if body.get("code") != 0:
                return None, body
            rows = body["stockin_list"]
            numbers += [row["order_no"] for row in rows]
            if len(rows) < 25:
                return numbers, body
            page_no += 1

    # Ground truth from the sandbox's inspection endpoint; orders within a minute of the
    # archive boundary may fall on either side while this runs, so they are not compared.
    _, _, orders = call_json(root + "/_sim/orders", method="GET")
    cut = (now - timedelta(days=archive_after_days)).replace(tzinfo=None)

    def modified(order):
        return datetime.strptime(order["modified"], "%Y-%m-%d %H:%M:%S")

    near = {o["order_no"] for o in orders if abs((modified(o) - cut).total_seconds()) < 60}
    done = [o for o in orders if o["status"] == 80 and o["order_no"] not in near]
    old = {o["order_no"] for o in done if modified(o) < cut}
    recent = {o["order_no"] for o in done if modified(o) >= cut}
    check("the sandbox holds orders on both sides of the archive boundary",
          old and recent, (len(old), len(recent)))

    history, body = every_page(history_url)
    check("history: signed request succeeds", history is not None, body)
    history = set(history or []) - near
    check("history: serves exactly the archived orders", history == old,
          (sorted(history ^ old)[:5]))
    current, body = every_page(current_url)
    current = set(current or []) - near
    check("current endpoint: serves exactly the orders not archived", current == recent,
          (sorted(current ^ recent)[:5]))
    _, _, body = call_json(history_url, form=signed(page_no="0", page_size="1"))
    check("history: total_count on page 0 counts the archive",
          body.get("total_count", -1) >= len(old) and len(body.get("stockin_list", [])) == 1,
          body)

    q = Qimen()
    status, _, body = q.post_form(q.window(days_back=29, page_size="1"))
    check("Qimen: archived orders are not served",
          is_success(body) and body["response"].get("total_count", -1) >= len(recent)
          and body["response"].get("total_count", -1) <= len(recent) + len(near),
          body)

    p = signed(shop_no="店铺01")
    p["sign"] = wdt_sign({k: v for k, v in p.items() if k != "sign"}, secret, "bytes")
    _, _, body = call_json(history_url, form=p)
    check("history: a byte-length sign is refused like the current endpoint's",
          isinstance(body.get("code"), int) and body["code"] != 0, body)
    p = signed()
    p["sign"] = wdt_sign({k: v for k, v in p.items() if k != "sign"}, "not-the-secret")
    _, _, body = call_json(history_url, form=p)
    check("history: a wrong secret is refused", body.get("code") not in (0, None), body)
    _, _, body = call_json(history_url, form=signed(
        start_time=(now - timedelta(days=45)).strftime("%Y-%m-%d %H:%M:%S")))
    check("history: a window over 30 days is refused",
          isinstance(body.get("code"), int) and body["code"] != 0, body)
    p = signed()
    del p["start_time"], p["end_time"]
    p["sign"] = wdt_sign({k: v for k, v in p.items() if k != "sign"}, secret)
    _, _, body = call_json(history_url, form=p)
    check("history: without time range → 2900",
          body == {"code": 2900, "message": "时间范围与入库单号不能全部为空"}, body)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "history":
        history_checks(int(sys.argv[2]))
        print(f"{len(failures)} failed" if failures else "all passed")
        sys.exit(1 if failures else 0)
    qimen_checks()
    openapi2_checks()
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)
