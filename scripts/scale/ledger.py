#!/usr/bin/env python3
"""The ledger checks of scripts/test-scale.sh: what the load saw (load.py's ledger), when each
fault happened (the marks), where nginx sent each request (its access log), what the fake
provider issued (its ledger), and what PostgreSQL holds (audit rows, the config's version),
held against each other.

    ledger.py --ledger FILE --marks FILE --access-log FILE --provider FILE --db URL
              --request-timeout SECONDS --stale-limit SECONDS

Prints one line per result, tab-separated: `pass<TAB>text`, `fail<TAB>text` or
`info<TAB>text`; scripts/test-scale.sh turns them into its PASS/FAIL lines. Standard library
only (psql for the database).
"""

import argparse
import collections
import hashlib
import json
import subprocess
import sys
from datetime import datetime

OPS = ("read", "reveal", "token", "patch")
# Which audit action a 200 of each audited operation must have left.
AUDITED = {"reveal": "secret_revealed", "token": "token_retrieved", "patch": "config_patched"}


def out(kind, text):
    print(f"{kind}\t{text}", flush=True)


def check(passed, text, why=""):
    out("pass" if passed else "fail", text if passed or not why else f"{text}: {why}")
    return passed


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def psql_rows(db, sql):
    """Rows of SQL as dicts (each row as JSON, one a line)."""
    query = f"COPY (SELECT row_to_json(t) FROM ({sql}) t) TO STDOUT"
    done = subprocess.run(["psql", "-X", "-q", db, "-c", query], capture_output=True, text=True, check=True)
    # COPY's text format escapes backslashes; JSON from row_to_json has no control characters.
    return [json.loads(line.replace("\\\\", "\\")) for line in done.stdout.splitlines() if line]


def pct(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ok(r):
    return 200 <= r["status"] < 300


def describe(records):
    """`n requests, n ok, failures {status: n}, p50/p99/max`."""
    lat = [r["t1"] - r["t0"] for r in records]
    failed = collections.Counter(str(r["status"]) for r in records if not ok(r))
    text = f"{len(records)} requests, {sum(1 for r in records if ok(r))} 2xx"
    if failed:
        text += ", failed " + ", ".join(f"{k}×{v}" for k, v in sorted(failed.items()))
    if lat:
        text += f"; latency p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
    return text


def ops_text(records):
    c = collections.Counter(r["op"] for r in records)
    return " ".join(f"{op} {c.get(op, 0)}" for op in OPS)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ledger", required=True)
    p.add_argument("--marks", required=True)
    p.add_argument("--access-log", required=True)
    p.add_argument("--provider", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--request-timeout", type=float, required=True)
    p.add_argument("--stale-limit", type=float, required=True)
    args = p.parse_args()

    records = load_jsonl(args.ledger)
    marks = load_jsonl(args.marks)
    phases = [m for m in marks if "phase" in m]
    events = {m["event"]: m for m in marks if "event" in m}
    access = {}
    with open(args.access_log) as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            access[entry.get("request_id")] = entry

    if not check(len(records) > 0, "the load sent requests"):
        return
    span = records[-1]["t0"] - records[0]["t0"]
    out("info", f"load: {len(records)} requests over {span:.0f} s ({len(records) / max(span, 1):.0f}/s): {ops_text(records)}")
    out("info", f"all: {describe(records)}")

    # --- every request, whatever the phase -----------------------------------------------
    unanswered = [r for r in records if r["status"] == 0]
    check(not unanswered, "every request got an HTTP answer from nginx",
          f"{len(unanswered)} did not, e.g. {unanswered[:1]}")
    bound = args.request_timeout + 3
    slow = [r for r in records if r["t1"] - r["t0"] > bound]
    check(not slow, f"no request took longer than the request timeout ({args.request_timeout:.0f} s, +3 s slack)",
          f"{len(slow)} did, the longest {max((r['t1'] - r['t0'] for r in slow), default=0):.1f} s")
    failures = [r for r in records if not ok(r)]
    odd = [r for r in failures if r["status"] not in (502, 503)]
    check(not odd, "every failure is a 502 or a 503 (no 4xx, no 500)",
          "; ".join(f"{r['op']} {r['status']} {r.get('code')}" for r in odd[:5]))

    # --- per phase -----------------------------------------------------------------------
    by_phase = collections.OrderedDict((m["phase"], []) for m in phases)
    bounds = [(m["t"], phases[i + 1]["t"] if i + 1 < len(phases) else float("inf"), m["phase"])
              for i, m in enumerate(phases)]
    # A request belongs to the phase in which its answer came: a request in flight when a
    # fault began is that fault's.
    for r in records:
        for start, end, name in bounds:
            if start <= r["t1"] < end:
                by_phase[name].append(r)
                break
    for name, rs in by_phase.items():
        out("info", f"phase {name}: {describe(rs)}")

    def no_failures(name, text):
        rs = by_phase.get(name, [])
        bad = [r for r in rs if not ok(r)]
        check(rs and not bad, text, f"{len(bad)} of {len(rs)} failed: " + ", ".join(
            f"{r['op']} {r['status']}" for r in bad[:8]))

    calm = [r for name in ("baseline", "rolling", "kill", "redis", "after") for r in by_phase.get(name, [])]
    slow_calm = sorted((r for r in calm if r["t1"] - r["t0"] > 1.0), key=lambda r: r["t0"])
    if slow_calm:
        first, last = slow_calm[0], slow_calm[-1]
        out("info", f"{len(slow_calm)} request(s) outside the PostgreSQL faults took over 1 s, from "
                    f"{first['t0'] - records[0]['t0']:.1f} s to {last['t0'] - records[0]['t0']:.1f} s into the load "
                    f"(the longest {max(r['t1'] - r['t0'] for r in slow_calm):.1f} s)")
    no_failures("baseline", "baseline (no fault): every request 2xx")
    no_failures("rolling", "rolling restart of the three replicas: zero failed requests")

    # kill -9: failures only among requests in flight on the killed replica.
    kill = events.get("kill")
    if kill:
        rs = by_phase.get("kill", [])
        bad = [r for r in rs if not ok(r)]
        victim = f"127.0.0.1:{kill['port']}"
        in_flight = []
        other = []
        for r in bad:
            entry = access.get(r.get("rid")) or {}
            upstreams = entry.get("upstream", "")
            if r["status"] == 502 and victim in upstreams and r["t0"] <= kill["t"]:
                in_flight.append(r)
            else:
                other.append((r, upstreams))
        out("info", f"kill -9 of {victim}: {len(in_flight)} request(s) failed in flight on it "
                    f"({ops_text(in_flight)}); {len(rs) - len(bad)} of {len(rs)} in the phase answered 2xx")
        check(not other, "kill -9: every failure was a request in flight on the killed replica (502), none elsewhere",
              "; ".join(f"{r['op']} {r['status']} upstream {u or '?'} t0-kill {r['t0'] - kill['t']:+.2f}s" for r, u in other[:6]))
        gets = [r for r in rs if r["op"] == "read" and not ok(r)]
        check(not gets, "kill -9: no masked read failed (GETs go on to the next replica)", f"{len(gets)} failed")

    # PostgreSQL restarts: 503 with Retry-After allowed, then recovery.
    for name in ("pg-fast", "pg-immediate"):
        rs = by_phase.get(name, [])
        bad = [r for r in rs if not ok(r)]
        no_retry = [r for r in bad if not (r["status"] == 503 and r.get("retry_after"))]
        out("info", f"{name}: {len(bad)} failed during the outage ({ops_text(bad)}), "
                    f"codes {dict(collections.Counter(r.get('code') for r in bad))}")
        check(rs and not no_retry, f"{name}: every failure during the outage is a 503 with Retry-After",
              "; ".join(f"{r['op']} {r['status']} {r.get('code')} retry-after={r.get('retry_after')}" for r in no_retry[:6]))
        recovered = events.get(f"{name}-recovered")
        if recovered:
            late = [r for r in rs if r["t0"] >= recovered["t"] + 1.0]
            late_bad = [r for r in late if not ok(r)]
            check(late and not late_bad,
                  f"{name}: recovered without restarting a replica ({len(late)} requests from 1 s after ready, all 2xx)",
                  f"{len(late_bad)} of {len(late)} failed: " + ", ".join(f"{r['op']} {r['status']} {r.get('code')}" for r in late_bad[:6]))

    # Redis restart: masked reads and reveals never fail; the rest may 503, then recover.
    rs = by_phase.get("redis", [])
    if rs:
        core = [r for r in rs if r["op"] in ("read", "reveal") and not ok(r)]
        check(not core, "Redis restart: every masked read and reveal answered 2xx throughout",
              f"{len(core)} failed: " + ", ".join(f"{r['op']} {r['status']} {r.get('code')}" for r in core[:6]))
        bad = [r for r in rs if not ok(r)]
        no_retry = [r for r in bad if not (r["status"] == 503 and r.get("retry_after"))]
        out("info", f"Redis restart: {len(bad)} failed ({ops_text(bad)})")
        check(not no_retry, "Redis restart: any failure is a 503 with Retry-After",
              "; ".join(f"{r['op']} {r['status']} {r.get('code')}" for r in no_retry[:6]))
        recovered = events.get("redis-recovered")
        if recovered:
            late = [r for r in rs if r["t0"] >= recovered["t"] + 1.0]
            late_bad = [r for r in late if not ok(r)]
            check(late and not late_bad, f"Redis restart: recovered by itself ({len(late)} requests from 1 s after ready, all 2xx)",
                  f"{len(late_bad)} of {len(late)} failed")

    # SIGSTOP of Redis and PostgreSQL: bounded latency, no pile-up afterwards.
    stopped, resumed = events.get("paused"), events.get("resumed")
    if stopped and resumed:
        pause = resumed["t"] - stopped["t"]
        rs = by_phase.get("pause", [])
        during = [r for r in rs if r["t0"] < resumed["t"]]
        after = [r for r in rs if r["t0"] >= resumed["t"] + 2.0]
        bad = [r for r in rs if not ok(r)]
        no_retry = [r for r in bad if not (r["status"] == 503 and r.get("retry_after"))]
        longest = max((r["t1"] - r["t0"] for r in during), default=0)
        out("info", f"pause of {pause:.1f} s: {describe(during)}; from 2 s after SIGCONT: {describe(after)}")
        check(longest <= pause + 5, f"pause: no request started in the pause took longer than the pause + 5 s ({longest:.1f} s)")
        check(not no_retry, "pause: any failure is a 503 with Retry-After",
              "; ".join(f"{r['op']} {r['status']} {r.get('code')}" for r in no_retry[:6]))
        # A pile-up (work queued in the pause and still ahead of new requests) shows as
        # requests that wait towards the request timeout or fail; half the request timeout
        # leaves room for a CI machine that is slow for reasons of its own.
        base = [r["t1"] - r["t0"] for r in by_phase.get("baseline", []) if ok(r)]
        after_lat = [r["t1"] - r["t0"] for r in after]
        limit = max(args.request_timeout / 2, 4 * pct(base, 99))
        late_bad = [r for r in after if not ok(r)]
        check(after and not late_bad and max(after_lat) <= limit,
              f"pause: no pile-up: from 2 s after SIGCONT every request 2xx within {limit:.1f} s "
              f"(max {max(after_lat, default=0) * 1000:.0f} ms, baseline p99 {pct(base, 99) * 1000:.0f} ms)",
              f"{len(late_bad)} failed, max latency {max(after_lat, default=0):.1f} s")
    no_failures("after", "after the faults: every request 2xx")

    # --- the ledger against the database ---------------------------------------------------
    rows = psql_rows(args.db, """
        SELECT id, request_id, action, success, details FROM configuration_audit_logs
         WHERE action IN ('secret_revealed', 'token_retrieved', 'config_patched', 'token_refreshed')
    """)
    by_rid = collections.defaultdict(list)
    for row in rows:
        by_rid[row["request_id"]].append(row)
    answered = {op: [r for r in records if r["op"] == op and r["status"] == 200] for op in OPS}
    for op, action in AUDITED.items():
        missing, doubled = [], []
        for r in answered[op]:
            mine = [x for x in by_rid.get(r.get("rid"), []) if x["action"] == action and x["success"]]
            if not mine:
                missing.append(r)
            elif len(mine) > 1:
                doubled.append(r)
        stored = sum(1 for x in rows if x["action"] == action and x["success"])
        out("info", f"{action}: {len(answered[op])} answered 200, {stored} audit rows; "
                    f"{stored - len(answered[op])} rows without a 200 in the ledger (the seeding's calls, "
                    f"and answers lost to a fault after the commit)")
        check(answered[op] and not missing and not doubled,
              f"every {op} answered 200 ({len(answered[op])}) has exactly one {action} audit row (by request id)",
              f"{len(missing)} without, {len(doubled)} with more than one")

    # PATCH: each 200 is in the config's history, with its own value; the history is one line.
    patches = sorted((x for x in rows if x["action"] == "config_patched" and x["success"]), key=lambda x: x["id"])
    def change(x):
        return ((x["details"] or {}).get("changes") or {}).get("settings.account_id") or {}

    value_of = {x["request_id"]: change(x) for x in patches}
    wrong = [r for r in answered["patch"] if (value_of.get(r.get("rid")) or {}).get("after") != r.get("value")]
    check(not wrong, "every PATCH answered 200 is in the history with the value it sent",
          f"{len(wrong)} are not, e.g. {wrong[:1]}")
    versions = [r.get("version") for r in answered["patch"]]
    check(len(set(versions)) == len(versions), f"every PATCH answered 200 got its own version ({len(versions)} distinct)",
          f"{len(versions) - len(set(versions))} versions handed out twice")
    breaks = sum(1 for x in patches if "after" not in change(x))
    for prev, cur in zip(patches, patches[1:]):
        if change(cur).get("before") != change(prev).get("after"):
            breaks += 1
    check(breaks == 0, f"the config's history is one line: each of the {len(patches)} patches starts from the previous one's value",
          f"{breaks} patch(es) started from another value (a lost update)")
    final = psql_rows(args.db, "SELECT version FROM integration_configs WHERE provider = 'stripe' AND environment = 'sandbox'")
    final_version = final[0]["version"] if final else None
    check(final_version == 1 + len(patches),
          f"the config's version ({final_version}) is 1 + the patches in its audit history ({len(patches)})")
    if versions:
        check(max(versions) <= (final_version or 0), "no PATCH answered a version the config never reached")

    # Reads see writes: a masked read that starts after a PATCH was acknowledged may answer an
    # older version for as long as the invalidation takes to reach its replica (PostgreSQL
    # NOTIFY: milliseconds, longer while PostgreSQL is paused), and never longer than an entry
    # lives (CACHE_TTL_SECS): the bound the caches promise, checked with 1 s of slack.
    acked = sorted((r["t1"], r["version"]) for r in answered["patch"] if r.get("version"))
    stale = []
    j, newest, first_at = 0, 0, {}
    for r in sorted((r for r in records if r["op"] == "read" and r["status"] == 200 and r.get("version")),
                    key=lambda r: r["t0"]):
        while j < len(acked) and acked[j][0] < r["t0"]:
            newest = max(newest, acked[j][1])
            first_at.setdefault(acked[j][1], acked[j][0])
            j += 1
        if r["version"] < newest:
            # How long ago the first version newer than the one read was acknowledged.
            since = min(t for v, t in first_at.items() if v > r["version"])
            stale.append((r["t0"] - since, r))
    worst = max(stale, key=lambda x: x[0]) if stale else (0.0, None)
    out("info", f"reads after an acknowledged PATCH: {len(stale)} answered an older version; "
                f"the stalest {worst[0] * 1000:.0f} ms behind")
    check(worst[0] <= args.stale_limit,
          f"no masked read answered a version older than {args.stale_limit:.1f} s behind an acknowledged PATCH",
          f"the stalest was {worst[0]:.2f} s behind (phase of t0 {worst[1] and worst[1]['t0']})")

    # --- OAuth refreshes against the fake provider ------------------------------------------
    with open(args.provider) as f:
        grants = json.load(f)
    refreshes = [g for g in grants if g["grant"] == "refresh_token"]
    handed = {r["token"] for r in answered["token"] if r.get("token")}
    def short(token):
        return hashlib.sha256(token.encode()).hexdigest()[:16]

    issued = {short(g["access"]): g for g in grants}
    stored_refreshes = sum(1 for x in rows if x["action"] == "token_refreshed" and x["success"])
    out("info", f"OAuth: {len(refreshes)} refreshes reached the provider, {stored_refreshes} committed "
                f"(token_refreshed audit rows), {len(handed)} distinct access tokens handed out")
    check(len(refreshes) >= 3, f"OAuth refreshes were exercised ({len(refreshes)} reached the provider)")
    unknown = [t for t in handed if t not in issued]
    check(not unknown, "every access token handed out was issued by the provider", f"{len(unknown)} were not")
    presented = collections.defaultdict(list)
    for g in refreshes:
        presented[g["presented"]].append(g)
    twice = {k: v for k, v in presented.items() if len(v) > 1}
    both_used = [k for k, v in twice.items() if sum(1 for g in v if short(g["access"]) in handed) > 1]
    out("info", f"OAuth: {len(presented)} distinct refresh tokens presented for {len(refreshes)} refreshes; "
                f"{len(twice)} presented again after a refresh whose result was never committed (a fault between "
                f"the provider's answer and the commit)")
    check(not both_used, "exactly one refresh per expiring token: no two refreshes of the same token both reached a client",
          f"{len(both_used)} refresh token(s) were refreshed twice and both results handed out")
    check(len(twice) <= len(refreshes) - stored_refreshes,
          "every repeated refresh follows a refresh that never committed "
          f"({len(twice)} repeated, {len(refreshes) - stored_refreshes} uncommitted)")
    expired = [r for r in answered["token"] if r.get("expires_at") and _ts(r["expires_at"]) <= r["t0"]]
    check(not expired, "no token call answered 200 with an access token already expired",
          f"{len(expired)} did")


def _ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - a broken check is a failed check
        out("fail", f"the ledger checks could not run: {type(e).__name__}: {e}")
        sys.exit(1)
