"""The gateway under a real uvicorn server on loopback, configured as the demo is (no public
address: the web half's links and origins are the bind address), with its background loops
(the mail outbox among them) running."""

from __future__ import annotations

import shutil
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
from tests.server.live import free_port

from reapi_server.app import create_app
from reapi_server.runtime import Runtime


@dataclass
class LiveWeb:
    base_url: str
    runtime: Runtime
    mail_dir: Path


@contextmanager
def live_web_server(
    data_dir: Path, template: Path, *, upstream: FakeUpstream | None = None, **overrides: object
) -> Iterator[LiveWeb]:
    """`upstream`: the simulated providers (by default a FakeUpstream answering stand-in
    bytes; give it real media for pages whose pictures are looked at)."""
    from tests.server.conftest import settings_for

    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, data_dir / "reapi.db")
    port = free_port()
    settings = settings_for(
        data_dir,
        host="127.0.0.1",
        port=port,
        run_background_tasks=True,
        email_send_interval=0.1,
        **overrides,
    )
    upstream = upstream or FakeUpstream()
    app = create_app(
        settings,
        catalog=two_host_catalog(),
        http_client=httpx.AsyncClient(transport=upstream.transport()),
        migrate=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield LiveWeb(f"http://127.0.0.1:{port}", app.state.runtime, settings.mail_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
