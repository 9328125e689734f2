"""Instructions per image request of the whole gateway, counted by callgrind: a yardstick the
machine's load moves far less than CPU time.

    python bench/request_instructions.py [--requests 300] [--concurrency 1]
        [--before /tmp/reapi-before/src] [--top 15]

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

Needs `valgrind` (Debian's package). About two minutes per 300 requests at one connection.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from _bench import (
    IMAGE_BODY,
    counting_env,
    free_port,
    pinned,
    provision_gateway,
    stop,
    upstream_process,
    wait_ready,
)

EMAIL = "bench@reapi.local"
WARM_UP = 100


def _serve(
    workdir: Path, upstream: str, source: str | None, core: int | None
) -> tuple[subprocess.Popen[bytes], int, str]:
    env = counting_env(workdir, upstream, source)
    key = provision_gateway(env, EMAIL, {"bench": []})["bench"]
    port = free_port()
    cli = str(Path(sys.executable).with_name("reapi-server"))
    # `serve` replaces itself with the server's process: callgrind follows the exec.
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",
        f"--callgrind-out-file={workdir}/callgrind.%p",
        cli,
        "serve",
        "--port",
        str(port),
    ]
    log = workdir / "gateway.log"
    process = subprocess.Popen(
        pinned(core, argv), env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    wait_ready(f"http://127.0.0.1:{port}/healthz", process, 600, log)
    return process, port, key


def _send(port: int, key: str, requests: int, concurrency: int) -> None:
    body = json.dumps(IMAGE_BODY)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    failures: list[str] = []

    def client(count: int) -> None:
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


def count(source: str | None, requests: int, concurrency: int) -> list[tuple[int, str, str]]:
    """Own instructions by function over `requests` requests, less what the gateway ran in as
    long again with no request (its remaining timers)."""
    cores = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    gateway_core, load_core = (0, 1) if cores else (None, None)
    with tempfile.TemporaryDirectory(prefix="reapi-instr-") as tmp:
        workdir = Path(tmp)
        upstream, url, _control = upstream_process(load_core)
        process = None
        try:
            process, port, key = _serve(workdir, url, source, gateway_core)
            _send(port, key, WARM_UP, concurrency)
            _callgrind(process.pid, "-i", "on")
            started = time.monotonic()
            _send(port, key, requests, concurrency)
            _callgrind(process.pid, "-d")  # dumps, and counts from zero again
            time.sleep(time.monotonic() - started)
            _callgrind(process.pid, "-d")
            _callgrind(process.pid, "-i", "off")
        finally:
            stop(process)
            stop(upstream)
        dumps = sorted(workdir.glob("callgrind.*.[0-9]*"), key=lambda p: int(p.suffix[1:]))
        if len(dumps) < 2:
            raise SystemExit("callgrind wrote no dumps: " + (workdir / "gateway.log").read_text())
        idle: Counter[tuple[str, str]] = Counter()
        for n, function, obj in _annotate(dumps[1]):
            idle[function, obj] += n
        return [
            (n - idle[function, obj], function, obj) for n, function, obj in _annotate(dumps[0])
        ]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--before", help="another checkout's src, counted after this one")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    targets = [("reapi", None)] + ([("before", args.before)] if args.before else [])
    counted = {name: count(src, args.requests, args.concurrency) for name, src in targets}
    print(f"{args.requests} requests, {args.concurrency} at a time, after {WARM_UP} not counted")
    for name, rows in counted.items():
        report(name, rows, args.requests, args.top)
    if args.before:
        now, then = (sum(n for n, _, _ in counted[k]) for k in ("reapi", "before"))
        print(f"\nreapi ÷ before: {now / then:.4f}")


if __name__ == "__main__":
    main()
