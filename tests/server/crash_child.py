"""A gateway process that sends one request and is killed (SIGKILL) right after its Nth group
commit: a crash at a chosen point between two of a request's transactions.

    python -m tests.server.crash_child DATA_DIR DATABASE_URL API_KEY PATH BODY_JSON N

Run by tests as a real subprocess; it never returns normally once the Nth commit is reached."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
from tests.conftest import two_host_catalog
from tests.server.conftest import GATEWAY, settings_for
from tests.server.fakes import FakeUpstream

from reapi.router import RouterConfig
from reapi_server.app import create_app


async def main(data_dir: str, url: str, key: str, path: str, body: str, kill_after: int) -> None:
    settings = settings_for(Path(data_dir), database_url=url)
    app = create_app(
        settings,
        catalog=two_host_catalog(),
        http_client=httpx.AsyncClient(transport=FakeUpstream().transport()),
        router_config=RouterConfig(first_byte_timeout=5.0),
        migrate=False,
    )
    async with app.router.lifespan_context(app):
        group = app.state.runtime.db.group
        real_transaction = group._transaction
        committed = 0

        async def transaction(ops, *rest):  # type: ignore[no-untyped-def]
            nonlocal committed
            results = await real_transaction(ops, *rest)
            committed += 1
            if committed == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return results

        group._transaction = transaction
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=GATEWAY
        ) as client:
            headers = {"authorization": f"Bearer {key}", "idempotency-key": "crash"}
            response = await client.post(path, json=json.loads(body), headers=headers)
    print(f"not killed: {response.status_code}", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    data_dir, url, key, path, body, kill_after = sys.argv[1:]
    asyncio.run(main(data_dir, url, key, path, body, int(kill_after)))
