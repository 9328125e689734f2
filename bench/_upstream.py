"""A lean fake OpenAI image upstream for the gateway benchmarks (aiohttp on uvloop).

    python bench/_upstream.py            # prints {"url": ..., "control": ...} and serves

`POST /v1/images/generations` answers like `gpt-image-2`: one real PNG of a few KB (noise, so
that it does not compress away) as `b64_json`, with `usage`; `"stream": true` gets the same as
one `image_generation.completed` server-sent event. The latency is set at run time:
`POST /control {"latency_ms": 50, "jitter_ms": 25}` makes every answer wait 50 ms ± up to 25 ms
(uniform). It checks nothing but the bearer key: it must cost the load core little, so that the
direct baseline measures the load tool, not this server. With `BENCH_UPSTREAM_STAMP=1` (set by
`gateway.py --timeline`) each answer carries `X-Bench-Sent-Ns`, this process's perf_counter_ns
as it answers (CLOCK_MONOTONIC, the gateway's clock too): the timeline then tells the upstream's
lateness from the time the gateway's loop took to read the answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import struct
import sys
import time
import zlib

SIM_KEY = "sk-bench-upstream"


def noise_png(width: int = 40, height: int = 34, seed: int = 15) -> bytes:
    """A valid 8-bit RGB PNG of random pixels: about 4.2 KB."""
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


PNG = noise_png()
_B64 = base64.b64encode(PNG).decode()
_USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
    "output_tokens": 272,
    "output_tokens_details": {"image_tokens": 272, "text_tokens": 0},
    "total_tokens": 284,
}
_OUTCOME = {
    "background": "opaque",
    "output_format": "png",
    "quality": "medium",
    "size": "1024x1024",
}


def _answer(stream: bool) -> tuple[bytes, str]:
    created = int(time.time())
    if stream:
        event = {
            "type": "image_generation.completed",
            "b64_json": _B64,
            "created_at": created,
            **_OUTCOME,
            "usage": _USAGE,
        }
        body = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        return body.encode(), "text/event-stream"
    body = {"created": created, **_OUTCOME, "data": [{"b64_json": _B64}], "usage": _USAGE}
    return json.dumps(body).encode(), "application/json"


def main() -> None:
    import uvloop
    from aiohttp import web

    delay = {"latency": 0.0, "jitter": 0.0}
    rng = random.Random(50)
    expected = f"Bearer {SIM_KEY}"
    stamp = os.environ.get("BENCH_UPSTREAM_STAMP") == "1"

    async def images(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        body = await request.read()
        stream = b'"stream"' in body and json.loads(body).get("stream") is True
        wait = delay["latency"] + (rng.uniform(-1, 1) * delay["jitter"] if delay["jitter"] else 0)
        if wait > 0:
            await asyncio.sleep(wait)
        data, content_type = _answer(stream)
        headers = {"X-Bench-Sent-Ns": str(time.perf_counter_ns())} if stamp else None
        return web.Response(body=data, content_type=content_type, headers=headers)

    async def control(request: web.Request) -> web.Response:
        fields = await request.json()
        delay["latency"] = float(fields.get("latency_ms", 0)) / 1000
        delay["jitter"] = float(fields.get("jitter_ms", 0)) / 1000
        return web.json_response({"latency_ms": fields.get("latency_ms", 0)})

    async def run() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/images/generations", images)
        app.router.add_post("/control", control)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(
            json.dumps(
                {
                    "url": f"http://127.0.0.1:{port}/v1",
                    "control": f"http://127.0.0.1:{port}/control",
                }
            ),
            flush=True,
        )
        await asyncio.Event().wait()

    uvloop.run(run())


if __name__ == "__main__":
    sys.exit(main())
