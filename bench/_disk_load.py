"""A busy disk beside a benchmark, and a probe of how long the gateway's event loop stalls.

`DiskLoad`: another process writing big files to the gateway's file system, over and over (`dd`,
each file flushed with `fdatasync`): Linux then holds writers back against its dirty pages and
the journal is busy, so a small file's open, write, link or rename can block. `LoopProbe`: a
thread asking the gateway's `/healthz` (answered on the event loop, nothing else) every 10 ms on
one kept connection; a long answer is a loop held by something (with the load's own queueing:
compare runs with and without the disk load)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from _bench import pinned

__all__ = ["DiskLoad", "LoopProbe"]


class DiskLoad:
    """`with DiskLoad(folder, core):` writes `mib` MiB files in `folder` while the block runs."""

    def __init__(self, folder: Path, core: int | None, mib: int = 1000) -> None:
        self._file = folder / "disk-load.bin"
        self._argv = pinned(
            core,
            [
                "sh",
                "-c",
                f"while :; do dd if=/dev/zero of={self._file} bs=1M count={mib} "
                "conv=fdatasync status=none; done",
            ],
        )
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> DiskLoad:
        self._process = subprocess.Popen(self._argv, start_new_session=True)
        time.sleep(1)  # the dirty pages build up first
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait()
        self._file.unlink(missing_ok=True)


class LoopProbe:
    """`with LoopProbe(base) as probe:` then `probe.figures()`: (max, p99) ms of /healthz."""

    def __init__(self, base: str, interval: float = 0.01) -> None:
        parts = urlsplit(base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._interval = interval
        self._times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoopProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
                continue
            self._times.append((time.perf_counter() - start) * 1000)
            self._stop.wait(self._interval)
        connection.close()

    def figures(self) -> tuple[float, float] | None:
        if not self._times:
            return None
        times = sorted(self._times)
        return times[-1], times[min(len(times) - 1, int(len(times) * 0.99))]
