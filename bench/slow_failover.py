"""A hung primary that is slow by nature: both routes of gpt-image-2 take 30 s to generate (as
OpenAI's image API and a second host do), requests arrive at a steady rate, and after a warm-up the
primary hangs (reads the request, never answers; its health probes hang as well). For each setup,
what the first request after the hang waited, what the requests already in flight waited, when the
primary's breaker opened, and the steady state after that.

    python bench/slow_failover.py [--scale 1.0] [--rate 1.0] [--setups unstreamed,streamed,...]

Setups, each on a fresh client (its own breakers and latencies):
- unstreamed: the route as it shipped before streaming: 180 s for a first byte;
- streamed: `stream_idle_timeout = 60` (at most 60 s of silence), partial images every 10 s;
- probes: streamed, plus health probes every 5 s (2 s timeout, two downs in a row);
- hedged: probes, plus hedging gpt-image-2 after its routes' observed p95 (floor 1 s, 20 samples).

`--scale` multiplies every duration (generation time, deadlines, probe timing, breaker open
period, warm-up and observation) to try the script quickly; the figures in docs/benchmarks.md
are at scale 1. The simulators run in a child process; the client is the SDK's async one, whose
engine and router the gateway uses too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from tests.conftest import two_host_catalog

from reapi import AsyncReAPI, BreakerPolicy, HedgePolicy, RouterConfig
from reapi._probes import HealthProber, ProbeConfig
from reapi.catalog import Catalog
from reapi.router import BreakerState

SETUPS = ("unstreamed", "streamed", "probes", "hedged")
#: Seconds at scale 1.
GENERATION = 30.0
FIRST_BYTE = 180.0
IDLE = 60.0
WARM_UP = 60.0
OBSERVE = 240.0


@dataclass
class Sent:
    issued: float
    finished: float | None = None
    provider: str | None = None
    codes: list[str] = field(default_factory=list)

    @property
    def waited(self) -> float | None:
        return None if self.finished is None else self.finished - self.issued


def catalog(streamed: bool, scale: float) -> Catalog:
    data = two_host_catalog().model_dump(mode="json")
    for route in data["models"]["gpt-image-2"]["routes"]:
        route["first_byte_timeout"] = FIRST_BYTE * scale
        if streamed:
            route["stream_idle_timeout"] = IDLE * scale
            route["options"] = {"partial_images": 2}
    return Catalog.model_validate(data)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def control(url: str, name: str, fault: str, latency: float) -> None:
    body = {"fault": fault, "latency": latency}
    httpx.post(f"{url}/faults/{name}", json=body, timeout=5).raise_for_status()


async def run_setup(setup: str, urls: dict[str, str], ctl: str, args: argparse.Namespace) -> dict:
    scale = args.scale
    hedge = HedgePolicy(allow=frozenset({"gpt-image-2"}), floor=1.0 * scale, min_samples=20)
    client = AsyncReAPI(
        catalog=catalog(setup != "unstreamed", scale),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls=urls,
        router=RouterConfig(
            first_byte_timeout=FIRST_BYTE * scale,
            breaker=BreakerPolicy(open_seconds=30.0 * scale),
            hedge=hedge if setup == "hedged" else HedgePolicy(),
        ),
    )
    for name in ("primary", "backup"):
        control(ctl, name, "none", GENERATION * scale)
    router = client._engine.router
    core = client._setup.core
    route = core.catalog.models["gpt-image-2"].routes[0]
    sent: list[Sent] = []
    #: When each attempt on the primary began (the core builds one protocol per attempt).
    primary_attempts: list[float] = []
    build_attempt = core.image_attempt

    def counted_attempt(prepared, on):  # type: ignore[no-untyped-def]
        if on.key == route.key:
            primary_attempts.append(time.perf_counter())
        return build_attempt(prepared, on)

    core.image_attempt = counted_attempt  # type: ignore[method-assign]
    tasks: list[asyncio.Task[None]] = []

    async def one(record: Sent) -> None:
        result = await client.images.generate(model="gpt-image-2", prompt="a lighthouse")
        record.finished = time.perf_counter()
        record.provider = result.reapi.provider if result.reapi else None
        record.codes = [a.code for a in result.reapi.attempt_log] if result.reapi else []

    background: list[asyncio.Task[None]] = []
    if setup in ("probes", "hedged"):
        config = ProbeConfig(interval=5.0 * scale, timeout=2.0 * scale, recheck=1.0 * scale)
        prober = HealthProber(client._setup.core, client._engine, config)
        background.append(asyncio.create_task(prober.run()))

    started = time.perf_counter()
    hung_at = started + WARM_UP * scale
    end = hung_at + OBSERVE * scale
    opened_at: float | None = None
    hung = False
    next_send = started
    while (now := time.perf_counter()) < end:
        if not hung and now >= hung_at:
            control(ctl, "primary", "hang", 0.0)
            hung, hung_at = True, time.perf_counter()
        if hung and opened_at is None and router.state(route) is BreakerState.OPEN:
            opened_at = now
        if now >= next_send:
            record = Sent(now)
            sent.append(record)
            tasks.append(asyncio.create_task(one(record)))
            next_send += 1.0 / args.rate
        await asyncio.sleep(0.01)
    for task in tasks + background:
        task.cancel()
    await asyncio.gather(*tasks, *background, return_exceptions=True)
    await client.aclose()

    backup = GENERATION * scale
    warm = [s for s in sent if s.issued < hung_at]
    in_flight = [s for s in warm if s.finished is None or s.finished > hung_at]
    after = [s for s in sent if s.issued >= hung_at]
    benched = opened_at or end
    to_hung = [t for t in primary_attempts if t >= hung_at]
    first = after[0] if after else None
    steady_from = (opened_at or end) + 1.0 * scale
    steady = [s for s in after if steady_from <= s.issued <= end - backup - 5.0 * scale]

    def waits(records: list[Sent]) -> list[float]:
        return [s.waited if s.waited is not None else end - s.issued for s in records]

    return {
        "setup": setup,
        "first": waits([first])[0] if first else None,
        "first_done": first is not None and first.finished is not None,
        "in_flight_max": max(waits(in_flight), default=0.0),
        "opened": None if opened_at is None else opened_at - hung_at,
        "hung_before": sum(1 for t in to_hung if t < benched),
        "hung_after": sum(1 for t in to_hung if t >= benched),
        "steady_n": len(steady),
        "steady_p50": pct(waits(steady), 0.5) - backup if steady else None,
        "steady_p99": pct(waits(steady), 0.99) - backup if steady else None,
        "warm_hedges": sum(1 for s in warm for c in s.codes if c == "hedge_lost"),
        "warm_n": len(warm),
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=1.0, help="requests per second")
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    logging.getLogger("reapi").setLevel(logging.ERROR)  # the probes' warnings: counted below
    setups = [s for s in args.setups.split(",") if s]
    assert all(s in SETUPS for s in setups), f"setups are {', '.join(SETUPS)}"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_two_openai_sims.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        rows = [asyncio.run(run_setup(s, info["urls"], info["control"], args)) for s in setups]
    finally:
        child.terminate()
        child.wait(5)
    scale = args.scale
    print(
        f"generation {GENERATION * scale:g} s on both routes; primary hung after "
        f"{WARM_UP * scale:g} s of warm-up; {args.rate:g} request/s; observed "
        f"{OBSERVE * scale:g} s; python {sys.version.split()[0]}\n"
    )
    print(
        "| setup | first request after the hang: wait (s) | sent before the hang: longest wait (s) "
        "| primary benched after (s) | sent to the hung primary: before / after it was benched "
        "| steady state: wait beyond the backup's own, p50 / p99 (s) | hedges while healthy |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        first = fmt(row["first"]) + ("" if row["first_done"] else "+ (unfinished)")
        steady = (
            f"{fmt(row['steady_p50'], 3)} / {fmt(row['steady_p99'], 3)} (n={row['steady_n']})"
            if row["steady_n"]
            else "—"
        )
        print(
            f"| {row['setup']} | {first} | {fmt(row['in_flight_max'])} | {fmt(row['opened'])} "
            f"| {row['hung_before']} / {row['hung_after']} | {steady} "
            f"| {row['warm_hedges']} of {row['warm_n']} |"
        )


if __name__ == "__main__":
    main()
