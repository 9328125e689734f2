"""How the group commit batches under load: transactions per request, ops per transaction, the
event loop's passes and the WAL's writes per request, with CPU per request, for reapi (this
checkout) and optionally an earlier checkout, interleaved (issue 15, tenth round).

    python bench/commit_batching.py --before /tmp/reapi-before/src \\
        --scenarios 50~25:32,50:32,0:1 --repetitions 6 --duration 8 --perf

Each scenario is `LATENCY[~JITTER]:CONNECTIONS` against bench/gateway.py's fake upstream. The
gateways run with bench/_commit_probe on PYTHONPATH (the committer's counters) and, with
`--perf`, `perf stat` counts per run: `epoll_pwait` calls (the event loop's passes that
waited for I/O), `pwrite64` (WAL frames) and context switches. Gateway on core 0, wrk and the
upstream on core 1, as bench/gateway.py does. Prints each run, then per scenario the medians
(range) and, with `--before`, the median ratio of the interleaved pairs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import gateway
from _bench import BENCH, CLOCK_TICKS, IMAGE_BODY, set_delay, stop, upstream_process, wrk

PROBE = BENCH / "_commit_probe"
EVENTS = (
    "syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_pwrite64,context-switches,"
    "syscalls:sys_enter_futex"
)
COUNTERS = ("holds", "settles", "leads", "batches", "batched_ops")
COLUMNS = (
    ("rps", "req/s"),
    ("p50", "p50 ms"),
    ("bad", "bad answers"),
    ("cpu", "CPU ms/req"),
    ("loop_cpu", "loop thread CPU ms/req"),
    ("tx", "transactions/req"),
    ("leads", "at once/req"),
    ("ops_per_batch", "ops per queued tx"),
    ("sys_enter_pwrite64", "pwrite64/req"),
    ("sys_enter_epoll_pwait", "epoll_pwait/req"),
    ("context-switches", "context switches/req"),
)


def probe_counts(prefix: str) -> dict[str, float]:
    total: dict[str, float] = {}
    for path in glob.glob(prefix + ".*"):
        if path.endswith(".tmp"):
            continue
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        for key in COUNTERS:
            total[key] = total.get(key, 0) + record.get(key, 0)
        for key, value in record.get("loop", {}).items():
            total["loop_" + key] = total.get("loop_" + key, 0) + value
    return total


def perf_counts(process: subprocess.Popen) -> dict[str, float]:
    process.send_signal(signal.SIGINT)
    counts: dict[str, float] = {}
    for line in process.communicate()[1].splitlines():
        fields = line.split(",")
        if len(fields) > 3 and fields[0].replace(".", "").isdigit():
            counts[fields[2].split(":")[-1]] = float(fields[0])
    return counts


def parse_scenarios(text: str) -> list[tuple[float, float, int]]:
    scenarios = []
    for item in text.split(","):
        upstream, _, connections = item.partition(":")
        latency, _, jitter = upstream.partition("~")
        scenarios.append((float(latency), float(jitter or 0), int(connections)))
    return scenarios


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, help="another checkout's src, run as `before`")
    parser.add_argument("--scenarios", default="50~25:32", help="LATENCY[~JITTER]:CONNECTIONS,…")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--perf", action="store_true", help="perf stat's counts per run")
    parser.add_argument("--json", type=Path, help="every run's figures, as JSON")
    args = parser.parse_args()
    scenarios = parse_scenarios(args.scenarios)
    workdir = Path(tempfile.mkdtemp(prefix="commit-batching-"))
    upstream, url, control = upstream_process(1)
    targets: list[tuple[gateway.Target, str]] = []
    runs: list[dict] = []
    try:
        os.environ["PYTHONPATH"] = str(PROBE)
        for name in ["reapi"] + (["before"] if args.before else []):
            prefix = str(workdir / f"probe-{name}")
            os.environ["BENCH_COMMIT_PROBE_OUT"] = prefix
            source = None
            if name == "before":  # its PYTHONPATH is its source: the probe goes beside it
                source = args.before.resolve()
                shutil.copy(PROBE / "sitecustomize.py", source / "sitecustomize.py")
            target = gateway.reapi_target(name, url, workdir, 0, source=source)
            gateway.warm(target, workdir, 1)
            targets.append((target, prefix))
        for rep in range(args.repetitions):
            order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
            for latency, jitter, connections in scenarios:
                set_delay(control, latency, jitter)
                for target, prefix in order:
                    runs.append(
                        measure(target, prefix, connections, args, workdir, upstream.pid)
                        | {"rep": rep, "scenario": (latency, jitter, connections)}
                    )
                    shown = {k: round(v, 3) for k, v in runs[-1].items() if isinstance(v, float)}
                    print(rep, target.name, f"{latency:g}~{jitter:g}:{connections}", shown)
    finally:
        for target, _ in targets:
            stop(target.process)
        stop(upstream)
        if args.json is not None:
            args.json.write_text(json.dumps(runs))
    report(runs, scenarios, [t.name for t, _ in targets])


def measure(target, prefix, connections, args, workdir, upstream_pid) -> dict:
    wrk(target.url, IMAGE_BODY, target.key, min(connections, 4), 1, workdir, 1)
    time.sleep(0.5)  # the probe writes every 0.2 s
    before = probe_counts(prefix)
    perf = None
    if args.perf:
        pids = ",".join(map(str, gateway.process_tree(target.process.pid)))
        perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", EVENTS, "-p", pids],
            stderr=subprocess.PIPE,
            text=True,
        )
    run = gateway._measure(target, connections, args.duration, workdir, 1, [upstream_pid])
    counted = perf_counts(perf) if perf is not None else {}
    time.sleep(0.5)
    after = probe_counts(prefix)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    requests = max(delta.get("holds", 0), 1)
    answered = max(run.result.requests, 1)
    loop_ticks = delta.get("loop_utime", 0) + delta.get("loop_stime", 0)
    return {
        "target": target.name,
        "rps": run.result.rps,
        "p50": run.result.p50,
        "bad": float(run.result.bad),  # answers other than 2xx, and socket errors
        "cpu": run.cpu_ms,
        "loop_cpu": loop_ticks / CLOCK_TICKS / requests * 1000,
        "tx": (delta.get("leads", 0) + delta.get("batches", 0)) / requests,
        "leads": delta.get("leads", 0) / requests,
        "ops_per_batch": delta.get("batched_ops", 0) / max(delta.get("batches", 0), 1),
        **{k: v / answered for k, v in counted.items()},
    }


def report(runs: list[dict], scenarios, names: list[str]) -> None:
    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"

    for scenario in scenarios:
        latency, jitter, connections = scenario
        print(f"\n{latency:g} ± {jitter:g} ms, {connections} connections")
        print("| measure | " + " | ".join(names) + (" | pair ratio |" if len(names) > 1 else " |"))
        print("|---|" + "--:|" * (len(names) + (len(names) > 1)))
        for key, label in COLUMNS:
            cells, series = [], []
            for name in names:
                values = [
                    r[key]
                    for r in runs
                    if r["target"] == name and r["scenario"] == scenario and r.get(key) is not None
                ]
                series.append(values)
                cells.append(spread(values) if values else "—")
            if len(names) > 1 and all(series) and len(series[0]) == len(series[1]):
                ratios = [a / b for a, b in zip(series[0], series[1], strict=True) if b]
                cells.append(spread(ratios) if ratios else "—")
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
