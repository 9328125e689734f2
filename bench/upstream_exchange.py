"""One upstream exchange's CPU, as the gateway makes it, without HTTP in front of it.

    python bench/upstream_exchange.py [--exchanges 3000] [--repetitions 3] [--before SRC]

Runs what `images.service.generate` runs around the upstream call, in one process on uvloop:
`LocalCore.prepare_image`, the engine's failover loop (`AsyncEngine.run`, the router's
bookkeeping), the OpenAI adapter (the request built, its streamed answer read: the event, its
JSON, the image's base64), the `h1` transport's write and parse, and `images_answer`, against
bench/_upstream.py (a 4.2 KB PNG as `b64_json`, at once; pinned to another core when there are
two). Reported: the event loop thread's CPU time per exchange (10th percentile and median over
the exchanges of each repetition, then the median over repetitions), user and system.
`--before SRC`: another checkout's `src` too (`git archive <commit> src | tar -x -C DIR`), its
repetitions interleaved with this one's. For instruction counts, run one child under
`valgrind --tool=callgrind` with `--child N` and with `--child 0`, and subtract.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _bench import pinned, stop, upstream_process  # noqa: E402


async def exchanges(url: str, count: int) -> dict[str, float]:
    import uvloop  # noqa: F401  (the child runs on it, as the gateway does)
    from _upstream import SIM_KEY

    from reapi.catalog import load_catalog
    from reapi.core import (
        GATEWAY_HINTS,
        AsyncEngine,
        AsyncFetcher,
        LocalCore,
        image_request,
        resolve_connections,
    )
    from reapi.router import Router, RouterConfig
    from reapi_server.upstream_h1 import H1Transport

    catalog = load_catalog(None)
    connections = resolve_connections(catalog, {"openai": SIM_KEY}, {"openai": url})
    core = LocalCore(catalog, connections, hints=GATEWAY_HINTS)
    router = Router(RouterConfig())
    engine = AsyncEngine(router, None, AsyncFetcher(), transport=H1Transport())

    async def one() -> None:
        params, payload = image_request(
            prompt="a lighthouse at dusk", model="gpt-image-2", size="1024x1024"
        )
        prepared = core.prepare_image(params, payload, edit=False)

        async def attempt(route):  # type: ignore[no-untyped-def]
            protocol = core.image_attempt(prepared, route)
            return await engine.drive(protocol, route.provider, router.first_byte_timeout(route))

        outcome = await engine.run(prepared.routes, attempt, hedge_for=prepared.spec.id)
        core.images_answer(prepared, outcome)

    for _ in range(50):  # warm: the connection, the caches
        await one()
    spent = []
    before = resource.getrusage(resource.RUSAGE_THREAD)
    for _ in range(count):
        started = time.thread_time_ns()
        await one()
        spent.append(time.thread_time_ns() - started)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    await engine.aclose()
    spent.sort()
    return {
        "p10": spent[len(spent) // 10] / 1000 if spent else 0.0,
        "p50": spent[len(spent) // 2] / 1000 if spent else 0.0,
        "user": (after.ru_utime - before.ru_utime) / max(count, 1) * 1e6,
        "system": (after.ru_stime - before.ru_stime) / max(count, 1) * 1e6,
    }


def child(url: str, count: int) -> None:
    import uvloop

    print(json.dumps(uvloop.run(exchanges(url, count))), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=3000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src, run alike")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    two_cores = (os.cpu_count() or 1) >= 2
    if args.child is not None:
        upstream = None
        if args.url is None:
            upstream, args.url, _ = upstream_process(1 if two_cores else None)
        try:
            child(args.url, args.child)
        finally:
            stop(upstream)
        return
    variants = {"this checkout": None}
    if args.before is not None:
        variants["before"] = args.before
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    upstream, url, _ = upstream_process(1 if two_cores else None)
    try:
        for repetition in range(args.repetitions):
            for name, source in variants.items():
                env = dict(os.environ)
                if source is not None:
                    env["PYTHONPATH"] = str(source)
                argv = [sys.executable, __file__, "--child", str(args.exchanges), "--url", url]
                done = subprocess.run(
                    pinned(0 if two_cores else None, argv),
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                results[name].append(result)
                print(f"  rep {repetition + 1}  {name:14s} {result}", flush=True)
    finally:
        stop(upstream)
    print("\n| code | CPU us per exchange, p10 | p50 | user | system |")
    print("|---|--:|--:|--:|--:|")
    for name, runs in results.items():
        cells = [statistics.median(r[k] for r in runs) for k in ("p10", "p50", "user", "system")]
        print(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    print(f"\n{args.repetitions} repetitions of {args.exchanges} exchanges; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
