#!/usr/bin/env python3
"""The mixed load of scripts/test-scale.sh: a bounded, paced stream of requests through nginx,
every one of them written to a ledger.

    load.py --base URL --admin TOKEN --service TOKEN --ledger FILE --stop-file FILE
            [--rate 200] [--threads 24] [--max-seconds 150] [--max-requests 40000]

Each of THREADS workers sends one request at a time, paced so that all together send about
RATE a second; a worker that falls behind (a slow answer) does not catch up in a burst, so at
most THREADS requests are ever open and a pause of the backends cannot pile up requests here.
Every request opens its own connection (as a fresh client would), so nothing here depends on
nginx keeping a client connection across a reload. The load stops when STOP_FILE appears,
after MAX_SECONDS, or after MAX_REQUESTS.

The mix (by weight): masked reads of the Stripe config 45, reveals of it 20, QuickBooks token
calls 25, merge patches of one Stripe setting 10, each patch with a value no other request
uses. One JSON line per request in LEDGER: op, t0 and t1 (unix seconds), status (0 when no
HTTP answer came), rid (the x-request-id answered), retry_after, error; patches add value and
version (reads add the version their ETag names), token calls add token (a SHA-256 prefix of the access token) and expires_at.
Standard library only.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import threading
import time
from urllib.parse import urlsplit

CONFIG = "/api/config/integrations/stripe/sandbox"
OPS = (
    ("read", 45),
    ("reveal", 20),
    ("token", 25),
    ("patch", 10),
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--admin", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--threads", type=int, default=24)
    p.add_argument("--max-seconds", type=float, default=150)
    p.add_argument("--max-requests", type=int, default=40000)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()

    url = urlsplit(args.base)
    host, port = url.hostname, url.port or 80
    started = time.time()
    deadline = started + args.max_seconds
    budget = threading.Semaphore(args.max_requests)
    records = []
    records_lock = threading.Lock()
    stop = threading.Event()
    names = [name for name, _ in OPS]
    weights = [weight for _, weight in OPS]

    def one(op, serial):
        headers = {"Authorization": f"Bearer {args.service}", "Connection": "close"}
        body = None
        method, path = "GET", CONFIG
        extra = {}
        if op == "reveal":
            method, path = "POST", CONFIG + "/reveal"
        elif op == "token":
            method, path = "POST", "/api/config/quickbooks/token?environment=sandbox"
        elif op == "patch":
            method = "PATCH"
            headers["Authorization"] = f"Bearer {args.admin}"
            headers["Content-Type"] = "application/merge-patch+json"
            value = f"acct_scale{serial}"
            body = json.dumps({"settings": {"account_id": value}}).encode()
            extra["value"] = value
        record = {"op": op, "t0": time.time()}
        conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            record["status"] = response.status
            record["rid"] = response.getheader("x-request-id")
            record["retry_after"] = response.getheader("retry-after")
            if response.status == 200 and op == "read":
                extra["version"] = int((response.getheader("etag") or "0").strip('W/"') or 0)
            elif response.status == 200 and op == "patch":
                extra["version"] = json.loads(data).get("version")
            elif response.status == 200 and op == "token":
                grant = json.loads(data)
                extra["token"] = hashlib.sha256(grant["access_token"].encode()).hexdigest()[:16]
                extra["expires_at"] = grant.get("expires_at")
            elif response.status >= 400:
                try:
                    extra["code"] = json.loads(data).get("code")
                except ValueError:
                    extra["code"] = None
        except Exception as e:  # noqa: BLE001 - every failure is a ledger entry
            record["status"] = 0
            record["error"] = f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        record["t1"] = time.time()
        record.update(extra)
        return record

    def worker(index):
        rng = random.Random(index)
        interval = args.threads / args.rate
        next_at = started + rng.random() * interval
        serial = index * 1_000_000
        while not stop.is_set():
            now = time.time()
            if now >= deadline:
                break
            if next_at > now:
                time.sleep(next_at - now)
            # Behind schedule: start now, but never make up for lost time in a burst.
            next_at = max(next_at + interval, time.time())
            if stop.is_set() or not budget.acquire(blocking=False):
                break
            serial += 1
            record = one(rng.choices(names, weights)[0], serial)
            with records_lock:
                records.append(record)

    def watch_stop():
        while not stop.is_set():
            if os.path.exists(args.stop_file) or time.time() >= deadline:
                stop.set()
            time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.threads)]
    watcher = threading.Thread(target=watch_stop, daemon=True)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    records.sort(key=lambda r: r["t0"])
    with open(args.ledger, "w") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    elapsed = time.time() - started
    ok = sum(1 for r in records if 200 <= r["status"] < 300)
    print(f"load: {len(records)} requests in {elapsed:.1f} s ({len(records) / elapsed:.0f}/s), {ok} answered 2xx")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
