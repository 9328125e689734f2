"""Helpers of the dashboard's tests: a signed-in person with their account, keys, usage rows
written as the gateway writes them."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from tests.web.helpers import Browser, new_email

from reapi_server.accounts.service import account_of
from reapi_server.api_keys.service import issue_key
from reapi_server.credits.service import grant
from reapi_server.identity import repository as users
from reapi_server.models import UsageRecord
from reapi_server.usage.repository import insert

#: A figure of a page's `stats` list: (label, value).
STAT = r'<span class="stat-label">([^<]+)</span><span class="stat-value">([^<]+)</span>'


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass
class Person:
    browser: Browser
    email: str
    user_id: str
    account_id: str


async def person(gateway, browsers, *, credits: int = 0) -> Person:
    """Signed up (and so signed in) in a browser of their own."""
    browser = browsers(gateway)
    email = new_email()
    await browser.sign_up(email)
    async with gateway.rt.db.write() as session:
        user = await users.find_user_by_email(session, email)
        account = await account_of(session, user.id)
        if credits:
            await grant(session, account.id, credits, gateway.rt.now())
    return Person(browser, email, user.id, account.id)


async def key_for(gateway, account_id: str, name: str = "") -> tuple[str, str]:
    """(key id, the key)"""
    async with gateway.rt.db.write() as session:
        row, issued = await issue_key(session, account_id, name=name, now=gateway.rt.now())
    return row.id, issued.plaintext


def usage_row(account_id: str, at: float, **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "id": f"req_{secrets.token_hex(12)}",
        "account_id": account_id,
        "api_key_id": None,
        "model": "gpt-image-2",
        "endpoint": "images.generations",
        "credit_cost": 10,
        "status": "succeeded",
        "error_code": None,
        "provider": "primary",
        "attempts": 1,
        "duration_ms": 5,
        "created_at": at,
    }
    values.update(fields)
    return UsageRecord(**values)


async def seed(gateway, rows: list[UsageRecord]) -> None:
    """As the gateway writes them: a pending row's request holds credit (a held hold), which is
    how the totals find the requests in flight (`usage.report`)."""
    async with gateway.rt.db.write() as session:
        for record in rows:
            await insert(session, record)
            if record.status == "pending":
                await session.execute(
                    text(
                        "INSERT INTO credit_holds (id, account_id, amount, charged, status,"
                        " purpose, request_id, expires_at, created_at) VALUES"
                        " (:id, :account, 0, 0, 'held', 'image', :request, NULL, :at)"
                    ),
                    {
                        "id": f"hold_{record.id}",
                        "account": record.account_id,
                        "request": record.id,
                        "at": record.created_at,
                    },
                )


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def api_rows(browser: Browser, **params: str) -> list[dict]:
    """Every row of /api/usage for these filters, following its cursors."""
    rows: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"older": cursor} if cursor else {})}
        response = await browser.get("/api/usage", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return rows
