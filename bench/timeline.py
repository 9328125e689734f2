"""The gaps of the gateway's per-request timeline (bench-only, `bench/gateway.py --timeline`).

    python bench/timeline.py /tmp/x/reapi-timeline.*     # files written by the gateway at exit

Each line of a file is one image request's perf_counter_ns stamps (`bench/_timeline`): its head
parsed (p), its task entered (e), the credit hold asked (h0) and committed (h1), the upstream
call begun (u0), written (w), its first byte (b), read whole (a), the task resumed with it (r),
the output written (o0, o1), the upstream's own answer (us, with `--timeline`: its clock is
the same CLOCK_MONOTONIC), the settlement asked (s0) and committed (s1), the answer's head and
body sent (x0, x). Prints each gap's p50, p90, p99 and mean in ms, over the requests that have
both stamps (the first and last `--trim` of them dropped: warm-up and shutdown).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

GAPS = (
    ("p", "e", "head parsed → task runs"),
    ("e", "h0", "request code before the hold"),
    ("h0", "h1", "credit hold (commit)"),
    ("h1", "u0", "hold committed → upstream call"),
    ("u0", "w", "upstream request written"),
    ("w", "b", "written → first upstream byte"),
    ("w", "us", "of which: written → the upstream answers (its wait, its core)"),
    ("us", "b", "of which: the upstream answers → our loop reads it"),
    ("b", "a", "first byte → answer whole"),
    ("a", "r", "answer whole → task resumes"),
    ("r", "o0", "answer → output write"),
    ("o0", "o1", "output write"),
    ("o1", "s0", "output → settlement asked"),
    ("s0", "s1", "settlement (commit)"),
    ("s1", "x0", "settled → answer's head"),
    ("x0", "x", "answer sent"),
    ("p", "x", "whole request (parsed → sent)"),
    ("p", "w", "parsed → upstream written"),
    ("a", "x", "upstream answered → sent"),
)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--trim", type=float, default=0.1)
    args = parser.parse_args()
    records = []
    for path in args.files:
        lines = path.read_text().splitlines()
        cut = int(len(lines) * args.trim)
        records += [json.loads(line) for line in lines[cut : len(lines) - cut]]
    n = max(len(records), 1)
    print(
        f"{len(records)} requests; committed at once: "
        f"the hold {sum(1 for r in records if 'h' in str(r.get('led', ''))) / n:.0%}, "
        f"the settlement {sum(1 for r in records if 's' in str(r.get('led', ''))) / n:.0%}; "
        f"batch sizes p50 hold {statistics.median([r.get('hn', 0) for r in records] or [0])}, "
        f"settlement {statistics.median([r.get('sn', 0) for r in records] or [0])}"
    )
    print("| gap | n | p50 ms | p90 | p99 | mean |")
    print("|---|--:|--:|--:|--:|--:|")
    for start, end, label in GAPS:
        values = [(r[end] - r[start]) / 1e6 for r in records if r.get(start) and r.get(end)]
        if not values:
            continue
        print(
            f"| {label} | {len(values)} | {pct(values, 0.5):.2f} | {pct(values, 0.9):.2f} | "
            f"{pct(values, 0.99):.2f} | {statistics.fmean(values):.2f} |"
        )


if __name__ == "__main__":
    main()
