"""Helpers shared by the server tests."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from typing import Any

import httpx
import httpx2
import openai

from reapi_server.accounts.service import create_account
from reapi_server.api_keys.service import issue_key
from reapi_server.credits import repository as credit_rows
from reapi_server.observability.logging import JsonFormatter
from reapi_server.runtime import Runtime


async def make_account(
    rt: Runtime, *, credits: int = 10_000, email: str | None = None
) -> tuple[str, str]:
    email = email or f"user-{secrets.token_hex(4)}@example.com"
    async with rt.db.write() as session:
        account = await create_account(session, email, credits_granted=credits, now=rt.now())
        _, issued = await issue_key(session, account.id, now=rt.now())
    return account.id, issued.plaintext


_OUTPUT_NAME = re.compile(r"/(\d+)-[0-9a-f]{32}\.")


def unnamed(keys: Iterable[str]) -> list[str]:
    """Storage keys, sorted, with each output's keyed name taken out (`outputs/<task>/<n>.<ext>`):
    the layout a test can spell without the fleet's secret."""
    return sorted(_OUTPUT_NAME.sub(r"/\1.", key) for key in keys)


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def ledger_matches(rt: Runtime, account_id: str) -> tuple[int, int]:
    async with rt.db.read() as session:
        balance = await credit_rows.balance_of(session, account_id)
        sums = await credit_rows.ledger_sums(session, account_id)
    assert balance == sums, f"balance/reserved {balance} != ledger sums {sums}"
    return balance


async def scrape_metrics(gateway: Any) -> str:
    """/metrics as a scraper gets it: on the metrics listener (the in-process app tells its
    listeners apart by the address a request came in on)."""
    host, port = gateway.rt.settings.metrics_address
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}:{port}") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


def client_for(gateway: Any, key: str) -> openai.AsyncOpenAI:
    """The official openai-python client, talking to the in-process gateway."""
    return openai.AsyncOpenAI(
        base_url="http://gateway.test/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gateway.app)),
    )


def access_entries(caplog: Any) -> list[dict[str, Any]]:
    """The access log lines caught (`caplog` at INFO for reapi_server.access), as written."""
    records = [r for r in caplog.records if r.name == "reapi_server.access"]
    return [json.loads(JsonFormatter().format(r)) for r in records]
