"""Python bytecodes per image request of the gateway's event loop thread, by function and by
layer: where `bench/request_instructions.py`'s libpython share goes.

    python bench/request_bytecodes.py [--requests 200] [--concurrency 1]
        [--before /tmp/reapi-before/src] [--top 30]

Callgrind counts instructions by C function, so CPython's ~2/3 of a request is one interpreter
loop with no Python function in sight. Here the gateway runs as in `request_instructions.py`
(one worker, SQLite, background tasks off) with a trace function that counts each bytecode
executed on the event loop's thread (`sys.settrace` with opcode events, switched on after 100
warm-up requests); the same wall time with no request is counted too and taken off. A count
does not depend on the machine's load; it moves by 1-2% between runs (timers, a WAL copy or a
cached key's refresh falling in the window), while a function's own count does not move at all.
Bytecodes are not instructions (a call into C, an allocation, a dict lookup cost more than a
jump), but the eleventh round's ~400,000 instructions a request in the interpreter loop alone are
about 27 per bytecode. Threads other than the loop's (the output writer, the WAL copy) are not
counted: with callgrind they were ~2% of a request's instructions.
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _bench import counting_env, free_port, provision_gateway, stop, upstream_process, wait_ready
from request_instructions import EMAIL, WARM_UP, _send

#: Run in the gateway's process: SIGUSR1 starts the count, each SIGUSR2 ends a window (the
#: requests', then the idle one) and the second writes both, by (file, line, function).
_COUNTER = r"""
import pickle, signal, sys
counts, windows = {}, []
def trace(frame, event, arg):
    if event == "opcode":
        counts[frame.f_code] = counts.get(frame.f_code, 0) + 1
    elif event == "call":
        frame.f_trace_opcodes, frame.f_trace_lines = True, False
    return trace
def start(*_):
    sys.settrace(trace)
def window(*_):
    sys._getframe().f_trace = None  # this handler's own bytecodes are not the gateway's
    taken = dict(counts)  # one call in C: nothing traced runs between the copy and the clear
    counts.clear()
    named = {}  # by where the code is: generated __init__s share theirs ("<string>", line 1)
    for code, n in taken.items():
        name = (code.co_filename, code.co_firstlineno, code.co_qualname)
        named[name] = named.get(name, 0) + n
    windows.append(named)
    if len(windows) == 2:
        sys.settrace(None)
        with open(sys.argv[1], "wb") as out:
            pickle.dump(windows, out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, window)
from reapi_server.serving import serve_from_environment
serve_from_environment()
"""

#: Layers by where a function's file is (the first that matches).
LAYERS = (
    ("server protocol (uvicorn, head limits)", ("uvicorn/", "head_limits.py", "lean_http.py")),
    ("access layer, metrics, ids", ("observability/", "prometheus_client/", "own_host.py", "ids")),
    ("route, body, response", ("openai_api/", "json_api/", "starlette/", "fastapi/")),
    ("auth, rate limit", ("api_keys/", "limits/")),
    ("group commit, WAL", ("group_commit", "writer_turn", "wal_", "kept_outcome", "/db.py")),
    ("credit hold and settle, usage row", ("credits/", "usage/", "alerts/", "billing/")),
    ("output file", ("mirror/",)),
    ("image service", ("images/", "references/")),
    ("upstream exchange (core, adapter, HTTP/1.1)", ("reapi/", "upstream")),
    ("dataclass __init__s", ("<string>",)),
    ("event loop, tasks, locks", ("asyncio/", "_weakrefset", "threading", "anyio/")),
)


def count(source: str | None, requests: int, concurrency: int) -> Counter[tuple[str, int, str]]:
    with tempfile.TemporaryDirectory(prefix="reapi-bytecodes-") as tmp:
        workdir = Path(tmp)
        upstream, url, _control = upstream_process(None)
        env = counting_env(workdir, url, source)
        key = provision_gateway(env, EMAIL, {"bench": []})["bench"]
        env["REAPI_PORT"] = str(port := free_port())
        out, log = workdir / "counts.pickle", workdir / "gateway.log"
        argv = [sys.executable, "-c", _COUNTER, str(out)]
        process = None
        try:
            process = subprocess.Popen(
                argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
            )
            wait_ready(f"http://127.0.0.1:{port}/healthz", process, 120, log)
            _send(port, key, WARM_UP, concurrency, None)
            os.kill(process.pid, signal.SIGUSR1)
            started = time.monotonic()
            _send(port, key, requests, concurrency, None)
            os.kill(process.pid, signal.SIGUSR2)
            time.sleep(time.monotonic() - started)
            os.kill(process.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 60
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            with out.open("rb") as file:
                busy, idle = pickle.load(file)
        finally:
            stop(process)
            stop(upstream)
        net: Counter[tuple[str, int, str]] = Counter(busy)
        net.subtract(idle)
        return net


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/src/", "/python3.11/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    return path


def report(name: str, counts: Counter[tuple[str, int, str]], requests: int, top: int) -> None:
    total = sum(counts.values())
    layers: Counter[str] = Counter()
    for (path, _, _), n in counts.items():
        layer = next((lay for lay, keys in LAYERS if any(k in path for k in keys)), "other")
        layers[layer] += n
    print(f"\n### {name}: {total / requests:,.0f} bytecodes per request\n")
    print("| layer | per request | share |\n|---|--:|--:|")
    for layer in [lay for lay, _ in LAYERS] + ["other"]:
        print(f"| {layer} | {layers[layer] / requests:,.0f} | {100 * layers[layer] / total:.1f}% |")
    print("\n| function | per request |\n|---|--:|")
    for (path, line, function), n in counts.most_common(top):
        print(f"| `{_short(path)}:{line} {function}` | {n / requests:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--before", help="another checkout's src, counted after this one")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    targets = [("reapi", None)] + ([("before", args.before)] if args.before else [])
    counted = {name: count(src, args.requests, args.concurrency) for name, src in targets}
    print(f"{args.requests} requests, {args.concurrency} at a time, after {WARM_UP} not counted")
    for name, counts in counted.items():
        report(name, counts, args.requests, args.top)
    if args.before:
        now, then = (sum(counted[k].values()) for k in ("reapi", "before"))
        print(f"\nreapi ÷ before: {now / then:.4f}")


if __name__ == "__main__":
    main()
