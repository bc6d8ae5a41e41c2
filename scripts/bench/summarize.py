#!/usr/bin/env python3
"""Turns the benchmark's raw wrk results into the report's Markdown tables.

    summarize.py table CASES RESULTS CEILING       one row per case, medians across rounds
    summarize.py ratios RESULTS NUM:DEN:LABEL...    median req/s of NUM divided by DEN's
    summarize.py requests RESULTS [CASE...]         requests served in all runs of the cases

CASES is tab-separated: case, shown name, what it does. RESULTS is tab-separated: case,
round (0 for a discarded warm-up), then case.lua's fields: requests, duration_us,
http_errors, socket_errors, p50_us, p99_us.
"""

import csv
import statistics
import sys


def load_results(path):
    runs = {}
    with open(path, newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            case, rnd, requests, duration, http_errors, socket_errors, p50, p99 = row
            runs.setdefault(case, []).append(
                {
                    "round": int(rnd),
                    "requests": int(requests),
                    "rps": int(requests) / (int(duration) / 1e6),
                    "http_errors": int(http_errors),
                    "socket_errors": int(socket_errors),
                    "p50": int(p50) / 1000,
                    "p99": int(p99) / 1000,
                }
            )
    return runs


def measured(runs, case):
    return [r for r in runs.get(case, []) if r["round"] > 0]


def median(runs, case, field):
    values = [r[field] for r in measured(runs, case)]
    return statistics.median(values) if values else None


def ms(value):
    return "–" if value is None else f"{value:.2f} ms"


def table(cases_path, results_path, ceiling):
    runs = load_results(results_path)
    top = median(runs, ceiling, "rps")
    print("| case | request | what it does | req/s | ÷ ceiling | p50 | p99 | req/s per round | errors |")
    print("|---|---|---|--:|--:|--:|--:|---|--:|")
    with open(cases_path, newline="") as f:
        for case, name, what in csv.reader(f, delimiter="\t"):
            rows = measured(runs, case)
            if not rows:
                continue
            rps = median(runs, case, "rps")
            ratio = f"{rps / top:.3f}" if top else "–"
            rounds = " / ".join(f"{r['rps']:.0f}" for r in rows)
            errors = sum(r["http_errors"] + r["socket_errors"] for r in rows)
            print(
                f"| {case} | {name} | {what} | {rps:.0f} | {ratio} | {ms(median(runs, case, 'p50'))} "
                f"| {ms(median(runs, case, 'p99'))} | {rounds} | {errors} |"
            )


def ratios(results_path, pairs):
    runs = load_results(results_path)
    print("| hsq-config | OpenBao | req/s ratio |")
    print("|---|---|--:|")
    for pair in pairs:
        num, den, label = pair.split(":", 2)
        a, b = median(runs, num, "rps"), median(runs, den, "rps")
        value = f"{a / b:.2f}" if a and b else "–"
        print(f"| {num} | {den} | {value} ({label}) |")


def requests(results_path, cases):
    runs = load_results(results_path)
    chosen = cases or list(runs)
    print(sum(r["requests"] for case in chosen for r in runs.get(case, [])))


def main(argv):
    if len(argv) >= 4 and argv[0] == "table":
        table(argv[1], argv[2], argv[3])
    elif len(argv) >= 2 and argv[0] == "ratios":
        ratios(argv[1], argv[2:])
    elif len(argv) >= 2 and argv[0] == "requests":
        requests(argv[1], argv[2:])
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
