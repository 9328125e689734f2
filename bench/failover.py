"""What failover costs: for each fault on the primary, p50/p99 latency of N sequential image
requests through reapi's router versus N direct calls to the healthy simulator.

    python bench/failover.py [--requests 200] [--deadline 0.8]

The simulators run in a child process. "first" is the first request after the fault appears
(breaker closed: the failing route is tried, then the next); the percentiles cover the rest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from tests.conftest import two_host_catalog

from reapi import ReAPI, RouterConfig

FAULTS = ["error_500", "rate_limit", "refuse", "reset", "hang"]
BODY = {"model": "gpt-image-2", "prompt": "a lighthouse", "size": "1024x1024"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def direct(url: str, n: int) -> list[float]:
    with httpx.Client() as client:
        headers = {"authorization": "Bearer sk-sim"}
        client.post(url + "/images/generations", json=BODY, headers=headers)  # warm up
        times = []
        for _ in range(n):
            started = time.perf_counter()
            client.post(url + "/images/generations", json=BODY, headers=headers).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def through_reapi(urls: dict[str, str], n: int, deadline: float) -> tuple[float, list[float], int]:
    client = ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls=urls,
        router=RouterConfig(first_byte_timeout=deadline),
    )
    times, attempts = [], 0
    for _ in range(n + 1):
        started = time.perf_counter()
        result = client.images.generate(
            model="gpt-image-2", prompt="a lighthouse", size="1024x1024"
        )
        times.append((time.perf_counter() - started) * 1000)
        attempts += result.reapi.attempts if result.reapi else 1
        assert result.reapi and result.reapi.provider == "backup"
    client.close()
    return times[0], times[1:], attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=0.8)
    args = parser.parse_args()
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_two_openai_sims.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        urls, control = info["urls"], info["control"]
        base = direct(urls["backup"], args.requests)
        print(
            f"direct to the healthy simulator: p50 {pct(base, 0.5):.2f} ms, "
            f"p99 {pct(base, 0.99):.2f} ms ({args.requests} requests)\n"
        )
        print(
            "| fault on primary | first request (ms) | p50 (ms) | p99 (ms) | added p50 (ms) "
            "| added p99 (ms) | attempts |"
        )
        print("|---|---|---|---|---|---|---|")
        for fault in FAULTS:
            httpx.post(f"{control}/faults/primary", json={"fault": fault, "retry_after": 30})
            first, rest, attempts = through_reapi(urls, args.requests, args.deadline)
            print(
                f"| {fault} | {first:.1f} | {pct(rest, 0.5):.2f} | {pct(rest, 0.99):.2f} | "
                f"{pct(rest, 0.5) - pct(base, 0.5):+.2f} | "
                f"{pct(rest, 0.99) - pct(base, 0.99):+.2f} | {attempts} |"
            )
            httpx.post(f"{control}/faults/primary", json={"fault": "none"})
        print(
            f"\nfirst-byte deadline {args.deadline} s; python {sys.version.split()[0]}; "
            f"statistics over {args.requests} requests (median {statistics.median(base):.2f})"
        )
    finally:
        child.terminate()
        child.wait(5)


if __name__ == "__main__":
    main()
