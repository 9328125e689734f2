"""A lean aiohttp pass-through proxy: the floor of what a Python gateway costs per request.

    python bench/_passthrough.py UPSTREAM_URL UPSTREAM_KEY CLIENT_KEY [BURN_MS]

It checks the client's bearer key against one fixed key, forwards the body to the upstream's
`/images/generations` with the upstream's key over a pooled aiohttp session and answers with the
upstream's status and body. No accounts, credits, storage, logging or metrics. Prints
{"url": ...} once it listens.

BURN_MS: CPU time to spend per request on the event loop, half before the upstream call and
half after (a busy loop on the thread's CPU clock): the lean proxy made as costly as a real
gateway, to tell what that CPU alone does to throughput from what the gateway's own design does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def burn(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time (not wall time: a preempted burn goes on)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def main() -> None:
    import aiohttp
    import uvloop
    from aiohttp import web

    upstream, upstream_key, client_key = sys.argv[1:4]
    half = float(sys.argv[4]) / 2000 if len(sys.argv) > 4 else 0.0
    expected = f"Bearer {client_key}"
    forward_headers = {
        "Authorization": f"Bearer {upstream_key}",
        "Content-Type": "application/json",
    }

    async def run() -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        target = f"{upstream}/images/generations"

        async def images(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != expected:
                return web.json_response({"error": {"message": "bad key"}}, status=401)
            body = await request.read()
            if half:
                burn(half)
            async with session.post(target, data=body, headers=forward_headers) as answer:
                data = await answer.read()
                if half:
                    burn(half)
                return web.Response(
                    body=data, status=answer.status, content_type="application/json"
                )

        async def health(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/images/generations", images)
        app.router.add_get("/healthz", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}/v1"}), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await session.close()

    uvloop.run(run())


if __name__ == "__main__":
    main()
