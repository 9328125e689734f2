"""Fixtures of the web half's tests: gateways whose public address is http or https, on
SQLite and on PostgreSQL, and browsers talking to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from tests.server.conftest import (  # noqa: F401  (fixtures)
    Gateway,
    database_url,
    gateway_storage,
    make_gateway,
    migrated_template,
    storage_backend,
    upstream,
)
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)
from tests.web.helpers import Browser, Clock
from tests.web.live import live_web_server
from tests.web.oauth import Providers, running_providers

BASE = "http://gateway.test"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def web(make_gateway, clock) -> Gateway:  # noqa: F811
    """A gateway (SQLite) whose public address is http://gateway.test, on a clock tests move."""
    gateway = await make_gateway(public_base_url=BASE)
    gateway.rt.clock = clock
    return gateway


@pytest.fixture
async def db_web(database_url, make_gateway, clock) -> Gateway:  # noqa: F811
    """A web gateway on SQLite, then on PostgreSQL."""
    gateway = await make_gateway(database_url=database_url, public_base_url=BASE)
    gateway.rt.clock = clock
    return gateway


@pytest.fixture
def providers(clock) -> Iterator[Providers]:
    """Simulated GitHub and Google sign-in on loopback, on the test's clock."""
    with running_providers(clock) as running:
        yield running


@pytest.fixture
async def people_web(database_url, make_gateway, clock, providers) -> Gateway:  # noqa: F811
    """A web gateway with GitHub and Google sign-in, on SQLite then PostgreSQL: every table
    about people can get a row (`tests.web.people.seed_person`)."""
    gateway = await make_gateway(
        database_url=database_url, public_base_url=BASE, oauth=providers.settings()
    )
    gateway.rt.clock = clock
    return gateway


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[..., Browser]]:
    """Factory: a new browser (its own cookies) on a gateway's app."""
    opened: list[Browser] = []

    def open_browser(gateway: Gateway, base_url: str = BASE, address: str = "127.0.0.1") -> Browser:
        browser = Browser(gateway.app, base_url, address)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        await browser.aclose()


@pytest.fixture
def live_web(tmp_path, migrated_template):  # noqa: F811
    """(base URL, the email of a user who exists) of a live server, as the demo runs."""
    import asyncio

    from reapi_server.accounts.service import create_account
    from reapi_server.db import Database

    email = "known@example.com"

    async def make_user(url: str) -> None:
        db = Database(url)
        try:
            async with db.write() as session:
                await create_account(session, email, credits_granted=0, now=1.0)
        finally:
            await db.dispose()

    with live_web_server(tmp_path / "live", migrated_template) as live:
        asyncio.run(make_user(live.runtime.settings.resolved_database_url))
        yield live.base_url, email


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item (`rep_call`): the browser fixture photographs
    its pages when the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
