"""What a key's limits cost: one reapi-server, two keys of one account, one without limits and
one with every limit set (a spend limit per month, a model allowlist, an expiry, requests per
minute, concurrent videos; none ever reached), loaded at the same time by two wrk processes for
`--rounds` rounds, so that both see the same machine (on a shared, loaded one, runs one after the
other differ by more than what is measured), and again with two keys without limits (the
control: the method's own noise). Reported: each key's median req/s and the median and range of
the per-round ratios.

    python bench/key_limits.py [--rounds 10] [--duration 5] [--latencies 0,50] [--concurrency 1,16]

The upstream is reapi's own OpenAI simulator (`reapi.testing`), in a process of its own, which also
creates videos (`sora-2`, overlaid on the catalog). With taskset and 2+ cores, the gateway is
pinned to core 0 and wrk + the simulator to core 1. (This was `bench/gateway.py --key-limits`;
the gateway table is `bench/gateway.py`.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import (
    ROOT,
    Result,
    free_port,
    http,
    pinned,
    provision_gateway,
    stop,
    wait_ready,
    wrk,
)

SIM_KEY = "sk-bench-sim"
EMAIL = "bench@reapi.local"

#: Every limit a key can have, none of them reached during a run.
KEY_LIMITS = [
    *("--spend-limit", str(10**14), "--period", "monthly"),
    *("--models", "gpt-image-2,sora-2", "--expires", "2099-01-01"),
    *("--rpm", str(10**9), "--max-videos", str(10**9)),
]

ENDPOINTS = {
    "images": (
        "/images/generations",
        {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "size": "1024x1024"},
    ),
    "video create": (
        "/videos",
        {"model": "sora-2", "prompt": "a lighthouse at dusk", "size": "1280x720", "seconds": "4"},
    ),
}

# The packaged catalog has no OpenAI video model: overlay one routed to the simulator's sora-2.
CATALOG_OVERLAY = {
    "models": [
        {
            "id": "sora-2",
            "kind": "video",
            "name": "Sora 2 (bench)",
            "owned_by": "openai",
            "capabilities": {
                "sizes": {
                    "1280x720": {"aspect_ratio": "16:9", "resolution": "720p"},
                    "720x1280": {"aspect_ratio": "9:16", "resolution": "720p"},
                },
                "seconds": [4, 8, 12],
                "input_reference": True,
            },
            "price": {"unit": "second", "credits": 10},
            "routes": [{"provider": "openai", "upstream_model": "sora-2"}],
        }
    ]
}


# -- the simulator process --------------------------------------------------------------------


def simulator_main() -> None:
    from reapi.testing import OpenAISimulator, SimulatorSpec, run_simulators

    handle = run_simulators({"openai": SimulatorSpec(OpenAISimulator(SIM_KEY), "/v1")})
    print(
        json.dumps({"url": handle.provider_urls["openai"], "control": handle.control_url}),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (handle.stop(), sys.exit(0)))
    handle.wait()


class Target:
    name = ""
    key = ""
    base = ""  # ends with /v1
    process: subprocess.Popen | None = None
    log: Path | None = None

    def stop(self) -> None:
        stop(self.process)


class ReapiServer(Target):
    name = "reapi"

    def __init__(self, sim_url: str, workdir: Path, core: int | None) -> None:
        data = workdir / "reapi-data"
        overlay = workdir / "catalog.json"
        overlay.write_text(json.dumps(CATALOG_OVERLAY))
        port = free_port()
        env = {
            **os.environ,
            "REAPI_DATA_DIR": str(data),
            "REAPI_CATALOG_PATH": str(overlay),
            "REAPI_PROVIDER_BASE_URLS": json.dumps({"openai": sim_url}),
            "REAPI_PROVIDER_KEYS": json.dumps({"openai": SIM_KEY}),
            "REAPI_LOG_LEVEL": "WARNING",
            "REAPI_METRICS_LISTEN": "off",
            # Limits that would otherwise answer 429 under a benchmark's load.
            "REAPI_REQUESTS_PER_MINUTE": str(10**9),
            "REAPI_MAX_CONCURRENT_VIDEOS": str(10**9),
            # Video jobs are created, not polled to completion: polling is off the create path.
            "REAPI_POLL_INTERVAL": "3600",
        }
        keys = provision_gateway(env, EMAIL, {"bench": [], "limited": KEY_LIMITS, "control": []})
        self.key = keys["bench"]
        #: A key of the same account with every limit set (`--key-limits`).
        self.limited_key = keys["limited"]
        #: A second key without limits: the control of `--key-limits` (the method's own noise).
        self.control_key = keys["control"]
        cli = str(Path(sys.executable).with_name("reapi-server"))
        self.log = workdir / "reapi.log"
        self.process = subprocess.Popen(
            pinned(core, [cli, "serve", "--port", str(port), "--workers", "1"]),
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{port}/v1"
        wait_ready(f"http://127.0.0.1:{port}/healthz", self.process, 60, self.log)


# -- the run -----------------------------------------------------------------------------------


def replace_key(target: Target, key: str) -> Target:
    """The same target, called with another key."""
    other = Target()
    other.base, other.key = target.base, key
    return other


def check(target: Target, endpoint: str) -> str | None:
    """One request (also the warm-up): None if it succeeds, else why not."""
    path, body = ENDPOINTS[endpoint]
    status, text = http("POST", target.base + path, body, target.key, timeout=60)
    return None if status < 300 else f"HTTP {status}: {text[:300]}"


def set_latency(control: str, ms: float) -> None:
    status, text = http("POST", f"{control}/faults/openai", {"latency": ms / 1000})
    if status != 200:
        raise RuntimeError(f"could not set simulator latency: {status} {text}")


def measure_key_limits(
    reapi: ReapiServer,
    endpoints: list[str],
    latencies: list[float],
    levels: list[int],
    args: argparse.Namespace,
    control: str,
    workdir: Path,
    core: int | None,
) -> str:
    """The same load, at the same time, with a key without limits and one with every limit:
    two wrk processes side by side against one server, each with `level` connections, for
    `args.rounds` rounds (which one starts first alternates). Measured together, both see the
    same machine: on a shared, loaded one, runs one after the other differ by more than what is
    measured. Each case is measured again with two keys without limits (the control: what the
    method reads when there is no difference). A table of the medians and per-round ratios."""
    pairs = {
        "limits": (reapi.key, reapi.limited_key),
        "control": (reapi.key, reapi.control_key),
    }
    head = ["upstream", "request", "conc. (each)", "pair", "rounds", "A req/s", "B req/s"]
    head += ["B ÷ A (median)", "range of the rounds", "non-2xx"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = {"limits": "A no limits, B limits", "control": "A, B both without limits"}

    def run(key: str, name: str, url: str, body: dict, level: int, duration: float) -> Result:
        return wrk(url, body, key, level, duration, workdir, core, f"{name}.lua")

    with ThreadPoolExecutor(2) as pool:
        for latency in latencies:
            set_latency(control, latency)
            for endpoint in endpoints:
                path, body = ENDPOINTS[endpoint]
                url = reapi.base + path
                for key in (reapi.key, reapi.limited_key, reapi.control_key):  # warm up
                    run(key, "warm", url, body, 4, 2)
                for level in levels:
                    for pair, (a, b) in pairs.items():
                        rps: dict[str, list[float]] = {"a": [], "b": []}
                        bad = 0
                        for round_ in range(args.rounds):
                            order = [("a", a), ("b", b)]
                            if round_ % 2:
                                order.reverse()
                            runs = {
                                side: pool.submit(run, key, side, url, body, level, args.duration)
                                for side, key in order
                            }
                            for side, future in runs.items():
                                result = future.result()
                                rps[side].append(result.rps)
                                bad += result.bad
                            print(
                                f"  {latency:>3.0f} ms upstream  {endpoint:12} c={level:<3} "
                                f"{pair:8} round {round_ + 1}: A {rps['a'][-1]:8.1f} req/s, "
                                f"B {rps['b'][-1]:8.1f} req/s",
                                flush=True,
                            )
                        ratios = sorted(y / x for x, y in zip(rps["a"], rps["b"], strict=True) if x)
                        row = [
                            f"{latency:g} ms",
                            endpoint,
                            str(level),
                            names[pair],
                            str(args.rounds),
                            f"{statistics.median(rps['a']):,.0f}",
                            f"{statistics.median(rps['b']):,.0f}",
                            f"{statistics.median(ratios):.3f}",
                            f"{ratios[0]:.3f} to {ratios[-1]:.3f}",
                            str(bad),
                        ]
                        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--latencies", default="0,50", help="upstream latencies in ms")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--simulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulator:
        simulator_main()
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    latencies = [float(x) for x in args.latencies.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_core, load_core = (0, 1) if pin else (None, None)
    with tempfile.TemporaryDirectory(prefix="reapi-bench-") as tmp:
        workdir = Path(tmp)
        sim = subprocess.Popen(
            pinned(load_core, [sys.executable, __file__, "--simulator"]),
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert sim.stdout is not None
            info = json.loads(sim.stdout.readline())
            sim_url, control = info["url"], info["control"]
            reapi = ReapiServer(sim_url, workdir, gw_core)
            try:
                for endpoint in ENDPOINTS:
                    for key in (reapi.key, reapi.limited_key, reapi.control_key):
                        problem = check(replace_key(reapi, key), endpoint)
                        if problem:
                            sys.exit(f"reapi refused {endpoint}: {problem}")
                print("reapi-server, a key without limits and one with every limit:")
                table = measure_key_limits(
                    reapi, list(ENDPOINTS), latencies, levels, args, control, workdir, load_core
                )
            finally:
                reapi.stop()
        finally:
            stop(sim)
    print()
    print(table)


if __name__ == "__main__":
    main()
