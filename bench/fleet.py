"""Requests per second of 1 and 2 gateway instances on one PostgreSQL (and Redis).

    python bench/fleet.py [--duration 10] [--concurrency 32] [--instances 1,2] [--no-redis]

Each instance is `reapi-server serve` (1 worker, a data dir of its own) on a PostgreSQL started
here from Debian's binaries (durable: fsync on), with Redis (rate limits, breakers) when
redis-server is installed. The fake OpenAI upstream (bench/_upstream.py) runs in its own
process. `wrk` (Debian:
`apt-get install -y wrk`) sends image generations: one wrk per instance, the connections split
evenly, their rates added up — the shape a load balancer in front of the fleet gives.

On one machine the instances, PostgreSQL, the simulator and wrk share its cores: the ratio of the
rows, measured in one run, says how the gateway scales with instances when each has cores of its
own; the absolute figures say what this machine does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import ROOT, free_port, stop, upstream_process, wait_ready, wrk
from _upstream import SIM_KEY

sys.path.insert(0, str(ROOT))

from tests.server.postgres import PostgresServer, pg_bin
from tests.server.redis import RedisServer, redis_available

EMAIL = "fleet-bench@reapi.local"
BODY = {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "size": "1024x1024"}


def _durable(server: PostgresServer) -> None:
    """The test helper's server runs without fsync; a benchmark measures a durable one."""
    options = (
        f"-p {server.port} -k {server.base} -c listen_addresses=127.0.0.1 -c max_connections=200"
    )
    subprocess.run(
        [
            *server.as_user,
            f"{server.bindir}/initdb",
            "-D",
            server.data,
            "-A",
            "trust",
            "-U",
            "reapi",
        ],
        check=True,
        capture_output=True,
    )
    log = os.path.join(server.base, "log")
    pg_ctl = [f"{server.bindir}/pg_ctl", "-D", server.data, "-o", options, "-w", "-l", log]
    subprocess.run(
        [*server.as_user, *pg_ctl, "start"],
        check=True,
        capture_output=True,
    )


def _instance(env: dict[str, str], workdir: Path, index: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    data = workdir / f"instance{index}"
    log = workdir / f"instance{index}.log"
    cli = str(Path(sys.executable).with_name("reapi-server"))
    process = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--data-dir", str(data), "--workers", "1"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(f"http://127.0.0.1:{port}/readyz", process, 60, log)
    return process, f"http://127.0.0.1:{port}/v1/images/generations"


def run(args: argparse.Namespace) -> None:
    bindir = pg_bin()
    if bindir is None:
        sys.exit("no PostgreSQL binaries: apt-get install -y postgresql")
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="reapi-fleet-bench-"))
    postgres = PostgresServer(bindir)
    redis = RedisServer() if args.redis and redis_available() else None
    sim, sim_url, _ = upstream_process(None)
    instances: list[subprocess.Popen] = []
    try:
        if args.durable:
            _durable(postgres)
        else:  # the test helper's: fsync and synchronous commit off (the gateway's own cost)
            postgres.start()
        postgres.execute("CREATE DATABASE reapi")
        if redis is not None:
            redis.start()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("REAPI_")},
            "REAPI_DATABASE_URL": postgres.url("reapi"),
            "REAPI_SECRET_KEY": "bench-fleet-secret-" + "0" * 32,  # 32 bytes or more: no warning
            "REAPI_PROVIDER_BASE_URLS": json.dumps({"openai": sim_url}),
            "REAPI_PROVIDER_KEYS": json.dumps({"openai": SIM_KEY}),
            "REAPI_LOG_LEVEL": "WARNING",
            "REAPI_METRICS_LISTEN": "off",
            "REAPI_REQUESTS_PER_MINUTE": str(10**9),
        }
        if redis is not None:
            env["REAPI_REDIS_URL"] = redis.url
        cli = str(Path(sys.executable).with_name("reapi-server"))
        admin = {**env, "REAPI_DATA_DIR": str(workdir / "admin")}
        subprocess.run([cli, "migrate"], env=admin, check=True, capture_output=True)
        subprocess.run(
            [cli, "accounts", "create", "--email", EMAIL, "--credits", str(10**12)],
            env=admin,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [cli, "keys", "create", "--email", EMAIL],
            env=admin,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        key = re.search(r"REAPI_API_KEY=(\S+)", out).group(1)  # type: ignore[union-attr]
        urls = []
        for index in range(max(args.instances)):
            process, url = _instance(env, workdir, index)
            instances.append(process)
            urls.append(url)
        print("| instances | requests/s | p50 (ms) | p99 (ms) | non-2xx |")
        print("|---|---|---|---|---|")
        for count in args.instances:
            targets = urls[:count]
            per = max(args.concurrency // count, 1)
            # warm up (pools, caches), then the measured run
            for url in targets:
                with contextlib.suppress(KeyError, AttributeError):  # too few answers to parse
                    wrk(url, BODY, key, per, 3, workdir, None)
            started = time.monotonic()
            results = _parallel(targets, key, per, args.duration, workdir)
            rps = sum(r.rps for r in results)
            p50 = max(r.p50 for r in results)
            p99 = max(r.p99 for r in results)
            bad = sum(r.bad for r in results)
            print(f"| {count} | {rps:.0f} | {p50:.1f} | {p99:.1f} | {bad} |", flush=True)
            assert time.monotonic() - started < args.duration * 3
        redis_note = "with Redis" if redis is not None else "without Redis"
        database = "durable" if args.durable else "without fsync"
        print(
            f"\n{args.concurrency} connections split over the instances, {args.duration:g} s per "
            f"row, PostgreSQL {database}, {redis_note}; python {sys.version.split()[0]}, "
            f"{os.cpu_count()} cores shared by everything"
        )
    finally:
        for process in instances:
            stop(process)
        stop(sim)
        if redis is not None:
            redis.stop()
        postgres.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _parallel(urls: list[str], key: str, connections: int, duration: float, workdir: Path):
    """One wrk per instance, at the same time (wrk is a process: threads suffice to wait)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(urls)) as pool:
        futures = [
            pool.submit(wrk, url, BODY, key, connections, duration, _own(workdir, i), None)
            for i, url in enumerate(urls)
        ]
        return [future.result() for future in futures]


def _own(workdir: Path, index: int) -> Path:
    path = workdir / f"wrk{index}"
    path.mkdir(exist_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in all")
    parser.add_argument("--instances", default="1,2", help="instance counts to measure")
    parser.add_argument("--no-redis", dest="redis", action="store_false")
    parser.add_argument(
        "--no-fsync",
        dest="durable",
        action="store_false",
        help="PostgreSQL without fsync: what the gateways cost, not the disk",
    )
    args = parser.parse_args()
    args.instances = [int(n) for n in args.instances.split(",")]
    run(args)


if __name__ == "__main__":
    main()
