"""A background loop's rounds while the database is away: one warning when the outage starts
and one info line when a round works again, not an error a round (about three a second a
process before); any other failure is still an error each time."""

import asyncio
import logging
import secrets
import sqlite3

import pytest
from sqlalchemy import exc as sa
from tests.server.fault_proxy import FaultProxy
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)

from reapi_server.background_rounds import RoundLog
from reapi_server.jobs.poller import JobPoller

_LOG = logging.getLogger("reapi_server.jobs")


def _lines(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == _LOG.name]


def _sqlite_unavailable() -> Exception:
    cause = sqlite3.OperationalError("disk I/O error")
    cause.sqlite_errorcode = sqlite3.SQLITE_IOERR
    cause.sqlite_errorname = "SQLITE_IOERR"
    return sa.OperationalError("SELECT 1", {}, cause)


def test_an_outage_is_one_warning_and_its_end_one_info_line(caplog):
    caplog.set_level(logging.INFO, logger=_LOG.name)
    rounds = RoundLog(_LOG, "poller round")
    for _ in range(30):
        rounds.failed(_sqlite_unavailable())
    rounds.succeeded()
    rounds.succeeded()
    rounds.failed(ConnectionRefusedError(111, "refused"))  # a second outage is told again
    assert _lines(caplog) == [
        ("WARNING", "poller round: database unavailable, retrying quietly until it is back"),
        ("INFO", "poller round: database back"),
        ("WARNING", "poller round: database unavailable, retrying quietly until it is back"),
    ]
    assert caplog.records[0].code == "OperationalError:SQLITE_IOERR"


def test_any_other_failure_is_an_error_every_round(caplog):
    caplog.set_level(logging.INFO, logger=_LOG.name)
    rounds = RoundLog(_LOG, "sweep")
    for _ in range(2):
        rounds.failed(KeyError("a bug"))
    for _ in range(2):  # a file's error (the sweeper deletes outputs), not the database's
        rounds.failed(PermissionError(13, "denied"))
    rounds.succeeded()  # nothing to say: no outage was told
    assert _lines(caplog) == [("ERROR", "sweep failed")] * 4
    assert [r.code for r in caplog.records] == ["KeyError"] * 2 + ["PermissionError"] * 2


@pytest.mark.postgres
async def test_the_poller_says_an_outage_once(postgres_server, make_gateway, caplog):  # noqa: F811
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    proxy = FaultProxy(postgres_server.port)
    try:
        gateway = await make_gateway(
            database_url=f"postgresql+asyncpg://reapi@127.0.0.1:{proxy.port}/{name}",
            database_timeout=1.0,
            poll_interval=0.02,
        )
        caplog.set_level(logging.INFO, logger=_LOG.name)
        polling = asyncio.create_task(JobPoller(gateway.rt).run_forever())
        await asyncio.sleep(0.3)
        proxy.refuse()
        await asyncio.sleep(1.0)  # dozens of rounds
        failed_rounds = len(_lines(caplog))
        proxy.heal()
        for _ in range(200):
            if ("INFO", "poller round: database back") in _lines(caplog):
                break
            await asyncio.sleep(0.05)
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling
    finally:
        proxy.close()
    assert failed_rounds == 1, _lines(caplog)
    assert _lines(caplog) == [
        ("WARNING", "poller round: database unavailable, retrying quietly until it is back"),
        ("INFO", "poller round: database back"),
    ]
