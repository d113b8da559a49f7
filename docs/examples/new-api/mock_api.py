#!/usr/bin/env python3
"""A stand-in for both example APIs of docs/new-api.md, on one port, for trying the guide's
`engine run` without real systems (Python 3, standard library only; state in memory).

The shop: POST /oauth/token (client credentials in the form) → a bearer token;
GET /v1/orders?updated_since&limit&starting_after → {data, has_more}, sorted by id.
The books: POST /api/sales/batch {records} → {saved, errors} (a sale without a customer email
is refused); POST /api/sales/lookup {numbers} → {rows}. Both check their credentials.

    python3 docs/examples/new-api/mock_api.py 8765
"""
import json
import sys
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = "token-for-the-example"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def order(n):
    updated = NOW - timedelta(minutes=30 * (151 - n))
    return {
        "id": f"ord_{1000 + n}",
        "created_at": (updated - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "channel": ["web", "app", "pos", "kiosk"][n % 4],
        "currency": "eur",
        "amount": 1990 * (n % 3 + 1),
        "customer": {"email": "" if n == 7 else f"customer{n}@example.com"},
        "items": [{"sku": "TEE-M-BLUE", "quantity": n % 3 + 1, "unit_amount": 1990}],
    }


ORDERS = [order(n) for n in range(1, 151)]
SALES = {}


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/v1/orders":
            return self.answer(404, {"error": {"message": "no such path"}})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, {"error": {"message": "invalid token"}})
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        since = datetime.strptime(query["updated_since"], "%Y-%m-%dT%H:%M:%SZ")
        since = since.replace(tzinfo=timezone.utc)
        limit = int(query.get("limit", 10))
        after = query.get("starting_after", "")
        found = [
            o for o in ORDERS
            if datetime.fromisoformat(o["updated_at"].replace("Z", "+00:00")) >= since
            and o["id"] > after
        ]
        self.answer(200, {"object": "list", "data": found[:limit], "has_more": len(found) > limit})

    def do_POST(self):
        if self.path == "/oauth/token":
            form = parse_qs(self.body().decode())
            if form.get("client_secret") != ["replace-me"]:
                return self.answer(401, {"error": "invalid_client"})
            return self.answer(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})
        if self.headers.get("X-Api-Key") != "replace-me":
            return self.answer(401, {"error": "invalid api key"})
        body = json.loads(self.body())
        if self.path == "/api/sales/batch":
            saved, errors = [], []
            for index, sale in enumerate(body["records"]):
                if not sale["customer_email"]:
                    errors.append({"index": index, "message": "customer_email is required"})
                    continue
                SALES.setdefault(sale["number"], f"S{len(SALES) + 1:05}")
                saved.append({"index": index, "id": SALES[sale["number"]], "number": sale["number"]})
            return self.answer(200, {"saved": saved, "errors": errors})
        if self.path == "/api/sales/lookup":
            rows = [{"number": n, "id": SALES[n]} for n in body["numbers"] if n in SALES]
            return self.answer(200, {"rows": rows})
        self.answer(404, {"error": "no such path"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8765), Handler).serve_forever()
