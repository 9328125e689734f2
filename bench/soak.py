"""Soak: reapi-server at full load for 10 minutes: does anything grow?

    python bench/soak.py [--minutes 10] [--concurrency 32] [--latency 0]

One gateway (1 worker, SQLite, everything on, pinned to core 0) in front of the lean fake upstream
(bench/_upstream.py, a 4.2 KB PNG, instant unless --latency), `wrk` at 32 connections the whole
time, in back-to-back slices of 10 s. Sampled every half second: the size of the SQLite WAL; after
each slice: requests per second, the gateway's RSS, the database file, the output files (count,
bytes on disk) and the fan-out folders. Reported per minute, then the verdict: the WAL's largest
size against its bound (16 MiB), RSS and throughput in the first minute against the last, and idle
RSS before and after. Exit status 1 when the WAL went past its bound by more than a quarter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from _bench import (
    IMAGE_BODY,
    cpu_seconds,
    http,
    rss_mib,
    set_delay,
    stop,
    upstream_process,
    wrk,
)
from gateway import reapi_target

MIB = 1024 * 1024
WAL_BOUND = 16 * MIB
SLICE = 10.0


def disk_usage(root: Path) -> tuple[int, int, int]:
    """(files, bytes allocated on disk, directories) under root."""
    files = blocks = dirs = 0
    for _, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        files += len(filenames)
    for path in root.rglob("*"):
        try:
            blocks += path.lstat().st_blocks
        except OSError:
            continue
    return files, blocks * 512, dirs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.0, help="upstream latency in ms")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_core, load_core = (0, 1) if pin else (None, None)
    with tempfile.TemporaryDirectory(prefix="reapi-soak-") as tmp:
        workdir = Path(tmp)
        upstream, url, control = upstream_process(load_core)
        reapi = None
        try:
            set_delay(control, args.latency)
            reapi = reapi_target("reapi", url, workdir, gw_core)
            assert reapi.process is not None
            pid = reapi.process.pid
            data = workdir / "reapi-data"
            wal = data / "reapi.db-wal"
            status, text = http("POST", reapi.url, IMAGE_BODY, reapi.key, timeout=60)
            if status >= 300:
                sys.exit(f"reapi refused the warm-up request: {status} {text[:300]}")
            time.sleep(1)
            idle_before = rss_mib(pid)
            largest = [0]
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(0.5):
                    largest[0] = max(largest[0], wal.stat().st_size if wal.exists() else 0)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            print(
                "| minute | req/s | CPU ms/req | RSS MiB | largest WAL MiB | database MiB "
                "| output files | on disk MiB | folders |"
            )
            print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
            slices = max(int(args.minutes * 60 / SLICE), 1)
            per_minute = max(int(60 / SLICE), 1)
            minutes: list[tuple[float, float]] = []  # (req/s, RSS)
            requests = seconds = cpu = 0.0
            wal_in_minute = wal_overall = 0
            for index in range(slices):
                before = cpu_seconds(pid)
                started = time.monotonic()
                result = wrk(
                    reapi.url, IMAGE_BODY, reapi.key, args.concurrency, SLICE, workdir, load_core
                )
                seconds += time.monotonic() - started
                cpu += cpu_seconds(pid) - before
                requests += result.requests
                wal_in_minute = max(wal_in_minute, largest[0])
                wal_overall = max(wal_overall, wal_in_minute)
                if (index + 1) % per_minute == 0 or index + 1 == slices:
                    rss = rss_mib(pid)
                    files, on_disk, dirs = disk_usage(data / "outputs")
                    database = (data / "reapi.db").stat().st_size / MIB
                    rps = requests / seconds
                    minutes.append((rps, rss))
                    print(
                        f"| {len(minutes)} | {rps:,.0f} | {cpu / max(requests, 1) * 1000:.2f} "
                        f"| {rss:.0f} | {wal_in_minute / MIB:.1f} | {database:.0f} | {files:,} "
                        f"| {on_disk / MIB:.0f} | {dirs:,} |",
                        flush=True,
                    )
                    requests = seconds = cpu = 0.0
                    largest[0] = wal_in_minute = 0
            sampling.set()
            time.sleep(2)
            idle_after = rss_mib(pid)
            first, last = minutes[0], minutes[-1]
            print()
            print(
                f"- RSS idle before {idle_before:.0f} MiB, after {idle_after:.0f} MiB; under load "
                f"{first[1]:.0f} MiB in the first minute, {last[1]:.0f} MiB in the last"
            )
            print(
                f"- throughput: {first[0]:,.0f} req/s in the first minute, {last[0]:,.0f} in the "
                "last"
            )
            held = wal_overall <= WAL_BOUND * 1.25
            print(
                f"- largest WAL {wal_overall / MIB:.1f} MiB against a bound of "
                f"{WAL_BOUND / MIB:.0f} MiB: " + ("held" if held else "NOT HELD")
            )
            if not held:
                sys.exit(1)
        finally:
            if reapi is not None:
                reapi.stop()
            stop(upstream)


if __name__ == "__main__":
    main()
