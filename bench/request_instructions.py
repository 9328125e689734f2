"""Instructions per image request of the whole gateway, counted by callgrind: a yardstick the
machine's load moves far less than CPU time.

    python bench/request_instructions.py [--requests 300] [--concurrency 1]
        [--upstream-ms 0] [--before /tmp/reapi-before/src] [--top 15] [--syscalls 2000]

CPU time per request swings by up to 2x on a shared machine (other processes on the core, a slow
host, the file system's state), so a change of a few percent cannot be seen in `bench/gateway.py`.
Here `reapi-server serve` (one worker, SQLite, as in `bench/gateway.py`: auth, rate limit, credit
hold and settlement, usage row, output stored on local disk, metrics) runs under `valgrind
--tool=callgrind` with counting off and its background tasks off (outboxes, job polls, health
probes, sweeps: not a request's work, and under callgrind, ~50x slower, they would run ~50 times
as often per request). After a warm-up of 100 requests (statements prepared, the key cached,
connections made) counting is on for `--requests` requests of `gpt-image-2` (the bench
upstream's 4.2 KB PNG as `b64_json`, instant) sent `--concurrency` at a time; then the same
wall time again with no request is counted and taken off (what is left of timers). Reported:
user-space instructions per request (every thread of the gateway; the kernel's work is not
counted), split by shared object, and the functions with the largest own counts. With `--before
SRC` another checkout's `src` is counted the same way right after. Two runs of the same code
(A/A) differed by about 1% at one connection; timing still decides a little (what a batch holds,
when the WAL's checkpoint runs).

`--upstream-ms LATENCY[~JITTER]` delays the upstream's answers: moderate load, where fewer
requests share a pass of the event loop and a group commit than at full load. Under callgrind
the gateway is ~50x slower, so the upstream's delay must be as much longer for the same load:
the report gives the share of the counted time the gateway was busy (the 50 ms cell at 32
connections, ~470 requests a second at ~1.8 ms, is ~85% busy; `--upstream-ms 2500
--concurrency 32` comes near it). `--syscalls N` also sends N requests to the same gateway run
without callgrind (the upstream's delay as given, unscaled) under `perf stat`, and reports
system calls (by name) and context switches per request: the kernel's side, which callgrind
does not count. The load's threads run on the other core.

Needs `valgrind` (Debian's package), and `perf` for `--syscalls`. About two minutes per 300
requests at one connection.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from _bench import (
    CLOCK_TICKS,
    IMAGE_BODY,
    counting_env,
    cpu_seconds,
    free_port,
    pinned,
    provision_gateway,
    set_delay,
    stop,
    upstream_process,
    wait_ready,
)

EMAIL = "bench@reapi.local"
WARM_UP = 100


def _serve(
    workdir: Path, upstream: str, source: str | None, core: int | None, *, callgrind: bool = True
) -> tuple[subprocess.Popen[bytes], int, str]:
    env = counting_env(workdir, upstream, source)
    key = provision_gateway(env, EMAIL, {"bench": []})["bench"]
    port = free_port()
    cli = str(Path(sys.executable).with_name("reapi-server"))
    # `serve` replaces itself with the server's process: callgrind follows the exec.
    counter = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",
        f"--callgrind-out-file={workdir}/callgrind.%p",
    ]
    argv = [*(counter if callgrind else []), cli, "serve", "--port", str(port)]
    log = workdir / "gateway.log"
    process = subprocess.Popen(
        pinned(core, argv), env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    wait_ready(f"http://127.0.0.1:{port}/healthz", process, 600, log)
    return process, port, key


def _send(port: int, key: str, requests: int, concurrency: int, core: int | None) -> None:
    body = json.dumps(IMAGE_BODY)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    failures: list[str] = []

    def client(count: int) -> None:
        if core is not None:  # this thread only: the gateway keeps its core to itself
            os.sched_setaffinity(0, {core})
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for _ in range(count):
            connection.request("POST", "/v1/images/generations", body, headers)
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                failures.append(f"{response.status} {data[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in shares if n]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")


def _annotate(path: Path) -> list[tuple[int, str, str]]:
    """(own instructions, function, shared object) of each function in a callgrind file."""
    out = subprocess.run(
        # --auto=no: with a library's C sources on disk (a compiled extension's support
        # files, say) the default annotates them line by line, and those lines would match
        # the pattern below and be counted again.
        ["callgrind_annotate", "--threshold=100", "--auto=no", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[(.*)\])?$", line)
        if match and "PROGRAM TOTALS" not in line:
            source, _, function = match.group(2).rpartition(":")
            # Inlined code is listed by its source file alone, without the shared object.
            rows.append((int(match.group(1).replace(",", "")), function, match.group(3) or source))
    return rows


def _object_name(path: str) -> str:
    if "/Python-3." in path:  # CPython's own sources: inlined into libpython
        return "libpython"
    for short in ("libpython", "libsqlite3", "libc.so", "orjson", "uvloop", "httptools"):
        if short in path:
            return {"libc.so": "libc"}.get(short, short)
    if path.endswith((".h", ".c")):  # inlined code outside CPython's own sources
        return "other"
    return Path(path).name.split(".")[0] or "?"


def _callgrind(pid: int, *options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(pid)], check=True, capture_output=True)


def _cores() -> tuple[int | None, int | None]:
    """(the gateway's core, the load's core): apart where there are two and taskset."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None:
        return 0, 1
    return None, None


def count(
    source: str | None,
    requests: int,
    concurrency: int,
    delay: tuple[float, float],
    keep: Path | None = None,
) -> tuple[list[tuple[int, str, str]], float]:
    """Own instructions by function over `requests` requests, less what the gateway ran in as
    long again with no request (its remaining timers); and the share of the counted requests'
    wall time the gateway was busy (its CPU time over that time)."""
    gateway_core, load_core = _cores()
    with tempfile.TemporaryDirectory(prefix="reapi-instr-") as tmp:
        workdir = Path(tmp)
        upstream, url, control = upstream_process(load_core)
        process = None
        try:
            set_delay(control, *delay)
            process, port, key = _serve(workdir, url, source, gateway_core)
            _send(port, key, WARM_UP, concurrency, load_core)
            _callgrind(process.pid, "-i", "on")
            started, cpu = time.monotonic(), cpu_seconds(process.pid)
            _send(port, key, requests, concurrency, load_core)
            _callgrind(process.pid, "-d")  # dumps, and counts from zero again
            elapsed = time.monotonic() - started
            busy = (cpu_seconds(process.pid) - cpu) / elapsed
            time.sleep(elapsed)
            _callgrind(process.pid, "-d")
            _callgrind(process.pid, "-i", "off")
        finally:
            stop(process)
            stop(upstream)
        dumps = sorted(workdir.glob("callgrind.*.[0-9]*"), key=lambda p: int(p.suffix[1:]))
        if len(dumps) < 2:
            raise SystemExit("callgrind wrote no dumps: " + (workdir / "gateway.log").read_text())
        if keep is not None:  # for callgrind_annotate --inclusive=yes --tree=caller, say
            keep.mkdir(parents=True, exist_ok=True)
            for name, dump in zip(("requests", "idle"), dumps, strict=False):
                shutil.copy(dump, keep / f"callgrind.{name}")
        idle: Counter[tuple[str, str]] = Counter()
        for n, function, obj in _annotate(dumps[1]):
            idle[function, obj] += n
        rows = [
            (n - idle[function, obj], function, obj) for n, function, obj in _annotate(dumps[0])
        ]
        return rows, busy


#: Counted by `perf stat` besides each system call: the switches off a core, and whether each
#: was the thread's choice (it blocked) is in /proc's counters instead.
KERNEL_EVENTS = ("raw_syscalls:sys_enter", "context-switches", "cpu-migrations")


#: The system calls counted by name (every one of them, ~400 tracepoints on each thread, made
#: each context switch dear enough to triple the gateway's CPU): those a request makes.
SYSCALLS = [
    "epoll_pwait",
    "epoll_wait",
    "epoll_ctl",
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "sendmsg",
    "recvmsg",
    "accept4",
    "pread64",
    "pwrite64",
    "fdatasync",
    "fsync",
    "fcntl",
    "flock",
    "futex",
    "openat",
    "close",
    "newfstatat",
    "statx",
    "unlink",
    "unlinkat",
    "linkat",
    "rename",
    "getrandom",
    "getpid",
    "mmap",
    "munmap",
    "madvise",
    "brk",
    "ftruncate",
    "lseek",
    "sched_yield",
    "clock_nanosleep",
    "ioctl",
]


def _syscall_events() -> list[str]:
    listed = subprocess.run(
        ["perf", "list", "syscalls:sys_enter_*"], capture_output=True, text=True, check=True
    ).stdout
    found = set(re.findall(r"syscalls:sys_enter_(\w+)", listed))
    return [f"syscalls:sys_enter_{name}" for name in SYSCALLS if name in found]


def _switches(pid: int) -> Counter[str]:
    """Voluntary and involuntary context switches of a process's live threads, and the
    process's user and system CPU time (ms: those of its threads that left included), from
    /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    counts: Counter[str] = Counter(
        {
            "user ms": int(fields[11]) * 1000 // CLOCK_TICKS,
            "system ms": int(fields[12]) * 1000 // CLOCK_TICKS,
        }
    )
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name.endswith("ctxt_switches"):
                    counts[name] += int(value)
    return counts


def kernel_counts(
    source: str | None, requests: int, concurrency: int, delay: tuple[float, float]
) -> tuple[Counter[str], float]:
    """System calls by name, context switches and CPU time over `requests` requests of the
    gateway run without callgrind, less as long again with no request; and the requests per
    second."""
    gateway_core, load_core = _cores()
    with tempfile.TemporaryDirectory(prefix="reapi-kernel-") as tmp:
        workdir = Path(tmp)
        upstream, url, control = upstream_process(load_core)
        process = None
        try:
            set_delay(control, *delay)
            process, port, key = _serve(workdir, url, source, gateway_core, callgrind=False)
            _send(port, key, max(WARM_UP, 4 * concurrency), concurrency, load_core)
            counted: list[Counter[str]] = []
            for load in (requests, 0):
                perf = subprocess.Popen(
                    [
                        "perf",
                        "stat",
                        "-x,",
                        "-e",
                        ",".join(KERNEL_EVENTS + tuple(_syscall_events())),
                        "-p",
                        str(process.pid),
                    ],
                    stderr=subprocess.PIPE,
                    text=True,
                )
                time.sleep(0.3)  # perf attaches to the threads
                switches, started = _switches(process.pid), time.monotonic()
                if load:
                    _send(port, key, load, concurrency, load_core)
                    elapsed = time.monotonic() - started
                else:
                    time.sleep(elapsed)
                counts = _switches(process.pid)
                counts.subtract(switches)
                perf.send_signal(signal.SIGINT)
                for line in perf.communicate()[1].splitlines():
                    fields = line.split(",")
                    if len(fields) > 3 and fields[0].isdigit():
                        counts[fields[2].removeprefix("syscalls:sys_enter_")] += int(fields[0])
                counted.append(counts)
        finally:
            stop(process)
            stop(upstream)
    busy, idle = counted
    busy.subtract(idle)
    return busy, requests / elapsed


def report_kernel(name: str, counts: Counter[str], rps: float, requests: int, top: int) -> None:
    total = counts["raw_syscalls:sys_enter"]
    print(
        f"\n### {name}, without callgrind: {total / requests:.1f} system calls and "
        f"{counts['context-switches'] / requests:.2f} context switches per request "
        f"({rps:,.0f} requests a second)\n"
    )
    print("| per request | count |\n|---|--:|")
    for label, key in (
        ("context switches (voluntary, /proc)", "voluntary_ctxt_switches"),
        ("context switches (involuntary, /proc)", "nonvoluntary_ctxt_switches"),
        ("CPU migrations", "cpu-migrations"),
        ("user CPU (ms)", "user ms"),
        ("system CPU (ms)", "system ms"),
    ):
        print(f"| {label} | {counts[key] / requests:.3f} |")
    calls = {k: v for k, v in counts.items() if k in SYSCALLS}
    for call, n in sorted(calls.items(), key=lambda item: -item[1])[:top]:
        if n / requests >= 0.005:
            print(f"| `{call}` | {n / requests:.2f} |")


def report(name: str, rows: list[tuple[int, str, str]], requests: int, top: int) -> None:
    total = sum(n for n, _, _ in rows)
    by_object: Counter[str] = Counter()
    for n, _, obj in rows:
        by_object[_object_name(obj)] += n
    print(f"\n### {name}: {total / requests:,.0f} instructions per request\n")
    print("| shared object | per request | share |\n|---|--:|--:|")
    for obj, n in by_object.most_common(8):
        print(f"| {obj} | {n / requests:,.0f} | {100 * n / total:.1f}% |")
    print("\n| function (own count) | shared object | per request |\n|---|---|--:|")
    for n, function, obj in sorted(rows, reverse=True)[:top]:
        print(f"| `{function}` | {_object_name(obj)} | {n / requests:,.0f} |")


def _delay(text: str) -> tuple[float, float]:
    latency, _, jitter = text.partition("~")
    return float(latency), float(jitter or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--upstream-ms", type=_delay, default=(0.0, 0.0), help="LATENCY[~JITTER] of the upstream"
    )
    parser.add_argument("--before", help="another checkout's src, counted after this one")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--syscalls", type=int, default=0, help="requests sent without callgrind under perf stat"
    )
    parser.add_argument("--no-callgrind", action="store_true", help="only the --syscalls part")
    parser.add_argument(
        "--keep", type=Path, help="copy the callgrind files to KEEP/<target>/ for annotation"
    )
    args = parser.parse_args()
    if not args.no_callgrind and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    if args.syscalls and shutil.which("perf") is None:
        raise SystemExit("perf is needed for --syscalls: apt-get install linux-perf")
    targets = [("reapi", None)] + ([("before", args.before)] if args.before else [])
    shape = (
        f"{args.concurrency} at a time, upstream {args.upstream_ms[0]:g}"
        f" ± {args.upstream_ms[1]:g} ms"
    )
    if not args.no_callgrind:
        counted = {
            name: count(
                src,
                args.requests,
                args.concurrency,
                args.upstream_ms,
                None if args.keep is None else args.keep / name,
            )
            for name, src in targets
        }
        print(f"{args.requests} requests, {shape}, after {WARM_UP} not counted")
        for name, (rows, busy) in counted.items():
            report(name, rows, args.requests, args.top)
            print(f"\nThe gateway was busy {100 * busy:.0f}% of the counted requests' time.")
        if args.before:
            now, then = (sum(n for n, _, _ in counted[k][0]) for k in ("reapi", "before"))
            print(f"\nreapi ÷ before: {now / then:.4f}")
    if args.syscalls:
        print(f"\n{args.syscalls} requests without callgrind, {shape}")
        kernel = {
            name: kernel_counts(src, args.syscalls, args.concurrency, args.upstream_ms)
            for name, src in targets
        }
        for name, (counts, rps) in kernel.items():
            report_kernel(name, counts, rps, args.syscalls, args.top)


if __name__ == "__main__":
    main()
