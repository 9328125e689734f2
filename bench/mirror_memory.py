"""Peak memory of mirroring a 200 MB video: the gateway's own code path (`upstream_body` →
`mirror` → store) from a local HTTP server into moto's S3 server (multipart) and onto local disk.

The upstream and moto run in child processes, so only the mirroring side is measured. Peak RSS
is the kernel's high-water mark (`VmHWM` in /proc/self/status), reset just before each run by
writing 5 to /proc/self/clear_refs; the figure is that peak minus the RSS right before the run.
The target (issue 5): at most 64 MiB above the baseline.

    .venv/bin/python bench/mirror_memory.py [--mb 200]
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024
LIMIT_MIB = 64

#: The video's host is on loopback: a URL an upstream's answer names is fetched only at public
#: addresses unless the operator allows a private network, as here.
LOOPBACK = ["127.0.0.0/8"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_video(port: int, size: int) -> None:
    """A 'provider CDN': GET returns `size` bytes in 1 MiB writes, generated, never held whole."""
    piece = os.urandom(MIB)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "video/mp4")
            self.send_header("content-length", str(size))
            self.end_headers()
            left = size
            while left:
                chunk = piece[: min(left, MIB)]
                self.wfile.write(chunk)
                left -= len(chunk)

        def log_message(self, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


async def _mirror_once(rt, url: str, task_id: str) -> int:
    from reapi.catalog import Route
    from reapi.providers import GeneratedFile, UpstreamRequest
    from reapi_server.mirror.fetch import upstream_body
    from reapi_server.mirror.outputs import Output, mirror

    route = Route(provider="openai", upstream_model="sora-2")
    video = GeneratedFile(
        "video/mp4", fetch=UpstreamRequest("GET", url, purpose="download", download=True)
    )
    body = upstream_body(rt, route, video)
    assert body is not None
    stored = await mirror(rt.store, rt.output_names, task_id, [Output("video", body)])
    return stored[0].size_bytes


async def _buffered_once(rt, url: str, task_id: str) -> int:
    """For comparison: the code path before streaming — the engine reads the body whole."""
    from reapi.providers import UpstreamRequest

    reply = await rt.engine.send(
        UpstreamRequest("GET", url, purpose="download", download=True), "openai", 30.0
    )
    return await rt.store.put(f"outputs/{task_id}/0.mp4", reply.content, "video/mp4")


async def _measure(
    settings, url_small: str, url_big: str, *, buffered: bool = False
) -> tuple[float, float, int]:
    from reapi_server.runtime import build_runtime

    once = _buffered_once if buffered else _mirror_once
    # The fleet's secret names the stored outputs (`OutputNames`); any will do for a bench.
    rt = build_runtime(settings, secret=os.urandom(32))
    try:
        await once(rt, url_small, "video_00000000000000000000000a")  # warm-up
        baseline = _status_kib("VmRSS")
        _reset_peak()
        started = time.perf_counter()
        size = await once(rt, url_big, "video_00000000000000000000000b")
        elapsed = time.perf_counter() - started
        peak = _status_kib("VmHWM")
    finally:
        await rt.aclose()
    return (peak - baseline) / 1024, elapsed, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="video size in MB (10^6 bytes)")
    args = parser.parse_args()
    size = args.mb * 1000 * 1000

    from reapi_server.config import Settings

    work = Path(tempfile.mkdtemp(prefix="reapi-bench-mirror-"))
    big_port, small_port, moto_port = _free_port(), _free_port(), _free_port()
    servers = [
        multiprocessing.Process(target=_serve_video, args=(big_port, size), daemon=True),
        multiprocessing.Process(target=_serve_video, args=(small_port, 10 * MIB), daemon=True),
    ]
    for server in servers:
        server.start()
    (work / "moto").mkdir()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        env={**os.environ, "TMPDIR": str(work / "moto")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in (big_port, small_port, moto_port):
            _wait(port)
        import boto3

        endpoint = f"http://127.0.0.1:{moto_port}"
        boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket="bench")
        s3 = Settings(
            data_dir=work / "s3-data",
            storage_backend="s3",
            s3_endpoint_url=endpoint,
            s3_bucket="bench",
            s3_region="us-east-1",
            s3_access_key_id="bench",  # type: ignore[arg-type]
            s3_secret_access_key="bench",  # type: ignore[arg-type]
            s3_addressing_style="path",
            log_json=False,
            fetch_allow_networks=LOOPBACK,
        )
        local = Settings(
            data_dir=work / "local-data", log_json=False, fetch_allow_networks=LOOPBACK
        )
        urls = (f"http://127.0.0.1:{small_port}/v.mp4", f"http://127.0.0.1:{big_port}/v.mp4")
        print(f"mirroring a {args.mb} MB video ({size:,} bytes); part size 8 MiB")
        worst = 0.0
        for name, settings in (("S3 (moto, multipart)", s3), ("local disk", local)):
            delta, elapsed, stored = asyncio.run(_measure(settings, *urls))
            assert stored == size, (stored, size)
            worst = max(worst, delta)
            rate = size / elapsed / 1e6
            print(
                f"{name:22} peak RSS +{delta:5.1f} MiB over the baseline, "
                f"{elapsed:5.1f} s ({rate:.0f} MB/s)"
            )
        delta, elapsed, _ = asyncio.run(_measure(local, *urls, buffered=True))
        print(f"{'(whole-body read)':22} peak RSS +{delta:5.1f} MiB: what streaming avoids")
        verdict = "within" if worst <= LIMIT_MIB else "OVER"
        print(f"worst: +{worst:.1f} MiB, {verdict} the {LIMIT_MIB} MiB budget")
        return 0 if worst <= LIMIT_MIB else 1
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        for server in servers:
            server.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
