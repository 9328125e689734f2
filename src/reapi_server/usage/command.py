"""`reapi-server usage export`: an account's usage rows as CSV, the same columns and filters as
the dashboard's export, for an operator answering an owner's request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import BinaryIO

from ..accounts.service import require_account
from ..config import Settings
from ..db import Database
from ..errors import GatewayError
from ..identity import repository as users
from ..identity.emails import normalise_email
from ..migrate import upgrade
from ..private import private_file
from .calendar import known_zones, zone_named
from .export import csv_chunks
from .query import parse_usage_query
from .reading import key_labels

__all__ = ["export_usage"]


async def export_usage(
    settings: Settings,
    email: str,
    *,
    first: str | None,
    last: str | None,
    time_zone: str | None,
    output: Path | None,
    stdout: BinaryIO,
) -> int:
    """Write the account's rows from `first` to `last` (local dates; the last 30 days by
    default) to `output` (created 0600) or `stdout`; how many rows were written."""
    if time_zone is not None and time_zone not in known_zones():
        raise GatewayError("unknown time zone (an IANA name such as Europe/Paris)")
    settings.ensure_database_dir()
    db = Database(settings.resolved_database_url)
    try:
        await upgrade(db)
        async with db.read() as session:
            account = await require_account(session, email)
            user = await users.find_user_by_email(session, normalise_email(email))
        zone = zone_named(time_zone or (user.time_zone if user is not None else "UTC"))
        params = {"from": first or "", "to": last or ""}
        query = parse_usage_query(
            params, account_id=account.id, zone=zone, now=time.time(), strict=True
        )
        keys = {k.id: k for k in await key_labels(db, account.id)}
        if output is not None:
            private_file(output)
        target = output.open("wb") if output is not None else stdout
        lines = -1  # the header is not a row
        try:
            async for chunk in csv_chunks(db, query.filter, keys):
                target.write(chunk)
                lines += chunk.count(b"\r\n")
        finally:
            if output is not None:
                target.close()
        return lines
    finally:
        await db.dispose()
