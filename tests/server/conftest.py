"""Gateway fixtures: a migrated SQLite database in a temp data dir, the fake upstream, an
in-process ASGI client, and helpers to make accounts and keys."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import two_host_catalog
from tests.server.fakes import BASE_URLS, KEYS, FakeUpstream
from tests.server.helpers import make_account
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)
from tests.server.s3 import MotoServer, moto_server  # noqa: F401  (fixture)

from reapi.catalog import Catalog
from reapi.router import RouterConfig
from reapi_server.app import create_app
from reapi_server.config import Settings
from reapi_server.migrate import upgrade_sync
from reapi_server.mirror import LocalDiskStore
from reapi_server.runtime import Runtime

GATEWAY = "http://gateway.test"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once per session; each test copies the file (much faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "reapi.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "provider_keys": KEYS,
        "provider_base_urls": BASE_URLS,
        "run_background_tasks": False,
        "poll_interval": 0.0,
        "log_json": True,
        "secret_key": "test-secret",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Gateway:
    client: httpx.AsyncClient
    app: FastAPI
    rt: Runtime
    upstream: FakeUpstream
    data_dir: Path
    #: The S3 server and bucket when the gateway stores in S3, else None.
    s3: tuple[MotoServer, str] | None = None

    async def account(self, credits: int = 10_000, email: str | None = None) -> tuple[str, str]:
        """(account id, API key)"""
        return await make_account(self.rt, credits=credits, email=email)

    def stored(self) -> dict[str, bytes]:
        """Every object in the gateway's storage (key → bytes), whichever the backend."""
        if self.s3 is not None:
            server, bucket = self.s3
            return server.objects(bucket)
        store = LocalDiskStore(self.data_dir / "outputs")
        return {
            store.key_of(p) or str(p.relative_to(store.root)): p.read_bytes().partition(b"\n")[2]
            for p in store.root.rglob("*")
            if p.is_file()
        }


@pytest.fixture
def storage_backend() -> str:
    """Which store gateways use; test modules that run on both override it (parametrized)."""
    return "local"


@pytest.fixture
def gateway_storage(request: pytest.FixtureRequest, storage_backend: str):
    """Settings for the chosen backend: for S3, moto's server (started once) and a new bucket."""

    def settings() -> tuple[dict[str, object], tuple[MotoServer, str] | None]:
        if storage_backend == "local":
            return {}, None
        server: MotoServer = request.getfixturevalue("moto_server")
        bucket = server.new_bucket()
        return server.settings(bucket), (server, bucket)

    return settings


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def make_gateway(
    tmp_path: Path, migrated_template: Path, upstream: FakeUpstream, gateway_storage
):
    """Factory: start a gateway (lifespan included) with settings overrides."""
    stack: list[tuple[object, httpx.AsyncClient]] = []

    async def start(
        database_url: str | None = None,
        catalog: Catalog | None = None,
        span_exporter: object = None,
        router_config: RouterConfig | None = None,
        **overrides: object,
    ) -> Gateway:
        data_dir = tmp_path / f"data{len(stack)}"
        data_dir.mkdir(exist_ok=True)
        storage, s3 = gateway_storage()
        overrides = {**storage, **overrides}
        if database_url is None:
            shutil.copy(migrated_template, data_dir / "reapi.db")
        else:
            overrides["database_url"] = database_url
        settings = settings_for(data_dir, **overrides)
        app = create_app(
            settings,
            catalog=catalog or two_host_catalog(),
            http_client=httpx.AsyncClient(transport=upstream.transport()),
            router_config=router_config or RouterConfig(first_byte_timeout=0.3, body_timeout=0.5),
            migrate=database_url is not None,
            span_exporter=span_exporter,  # type: ignore[arg-type]
        )
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY)
        stack.append((lifespan, client))
        return Gateway(client, app, app.state.runtime, upstream, data_dir, s3)

    yield start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture
async def gateway(make_gateway) -> AsyncIterator[Gateway]:
    yield await make_gateway()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str | None:
    """None (the default SQLite file), then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    name = f"t_{secrets.token_hex(6)}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE reapi_template")
    return str(server.url(name))


@pytest.fixture
async def db_gateway(database_url, make_gateway) -> Gateway:
    """A gateway on SQLite, then on PostgreSQL: for guarantees that depend on the database."""
    return await make_gateway(database_url=database_url)
