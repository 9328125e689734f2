"""A real uvicorn server running the gateway in a background thread, on loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from tests.conftest import two_host_catalog
from tests.server.fakes import FakeUpstream

from reapi.router import RouterConfig
from reapi_server.app import create_app
from reapi_server.db import Database
from reapi_server.runtime import Runtime
from reapi_server.serving import gateway_config


@dataclass
class LiveGateway:
    base_url: str
    key: str
    account_id: str
    upstream: FakeUpstream
    runtime: Runtime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _make_account(url: str, credits: int) -> tuple[str, str]:
    from reapi_server.accounts.service import create_account
    from reapi_server.api_keys.service import issue_key

    db = Database(url)
    try:
        async with db.write() as session:
            account = await create_account(
                session, "live@example.com", credits_granted=credits, now=time.time()
            )
            _, issued = await issue_key(session, account.id, now=time.time())
    finally:
        await db.dispose()
    return account.id, issued.plaintext


@contextmanager
def live_gateway(
    data_dir: Path,
    template: Path,
    *,
    upstream_client: httpx.AsyncClient | None = None,
    **overrides: object,
) -> Iterator[LiveGateway]:
    """The gateway on a free loopback port; upstreams are the in-process fake unless
    `upstream_client` (e.g. a plain client, for simulators on real sockets) is given."""
    from tests.server.conftest import settings_for

    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, data_dir / "reapi.db")
    settings = settings_for(data_dir, **overrides)
    account_id, key = asyncio.run(_make_account(settings.resolved_database_url, 10**9))
    upstream = FakeUpstream()
    app = create_app(
        settings,
        catalog=two_host_catalog(),
        http_client=upstream_client or httpx.AsyncClient(transport=upstream.transport()),
        router_config=RouterConfig(first_byte_timeout=0.3),
        migrate=False,
    )
    port = free_port()
    server = uvicorn.Server(
        gateway_config(app, settings, host="127.0.0.1", port=port, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", key, account_id, upstream, app.state.runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
