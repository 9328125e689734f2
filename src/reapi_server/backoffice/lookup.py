"""What operators look up: people by email or id, an account with its money, keys, usage,
outputs and audit trail, the audit log with its actors. Reads only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..api_keys import repository as keys
from ..audit import repository as audit
from ..credits import repository as credits
from ..identity import repository as users
from ..mirror import repository as outputs
from ..models import Account, ApiKey, AuditEntry, LedgerEntry, StoredOutput, UsageRecord, User
from ..usage import repository as usage

__all__ = [
    "AccountDetail",
    "AuditLine",
    "Found",
    "Overview",
    "account_detail",
    "account_exists",
    "audit_lines",
    "find",
    "overview",
    "person",
]

#: Rows of each kind an account page shows (the latest).
PAGE_ROWS = 50


@dataclass(frozen=True, slots=True)
class Found:
    """One search result: a person and the account they own (either may be missing: a
    person without an account, an account whose owner was deleted)."""

    user: User | None
    account: Account | None


#: What each action is called on the pages.
ACTION_WORDS = {
    "credits.adjust": "Adjusted credits",
    "credits.grant": "Granted credits",
    "account.disable": "Disabled the account",
    "account.enable": "Enabled the account",
    "user.promote": "Made an admin",
    "user.delete": "Deleted the person",
    "user.reset_2fa": "Turned two-factor authentication off",
}


@dataclass(frozen=True, slots=True)
class AuditLine:
    entry: AuditEntry
    #: The acting admin's email, "command line", or "a deleted admin".
    actor: str
    detail: dict[str, Any]

    @property
    def summary(self) -> str:
        return ACTION_WORDS.get(self.entry.action, self.entry.action)


@dataclass(frozen=True, slots=True)
class AccountDetail:
    account: Account
    balance: int
    reserved: int
    owners: list[User]
    keys: list[ApiKey]
    ledger: list[LedgerEntry]
    usage: list[UsageRecord]
    outputs: list[StoredOutput]
    audit: list[AuditLine]


@dataclass(frozen=True, slots=True)
class Overview:
    users: int
    admins: int
    disabled_accounts: int
    audit: list[AuditLine]


async def _with_accounts(session: AsyncSession, found: list[User]) -> list[Found]:
    owned = await accounts.owned_by(session, [user.id for user in found])
    return [Found(user, owned.get(user.id)) for user in found]


async def _account_found(session: AsyncSession, account_id: str) -> list[Found]:
    account = await accounts.get(session, account_id)
    if account is None:
        return []
    owners = await accounts.owners(session, account_id)
    return [Found(user, account) for user in owners] or [Found(None, account)]


async def account_exists(session: AsyncSession, account_id: str) -> bool:
    return await accounts.get(session, account_id) is not None


async def person(session: AsyncSession, user_id: str) -> Found | None:
    """A person by user id, with the account they own (if any)."""
    user = await users.get_user(session, user_id)
    return None if user is None else (await _with_accounts(session, [user]))[0]


async def find(session: AsyncSession, query: str, *, limit: int = 50) -> list[Found]:
    """By user id (`user_...`), account id (`acct_...`) or key id (`key_...`) exactly;
    otherwise by a part of the email address. No query: the newest people."""
    query = query.strip()
    if not query:
        return await _with_accounts(session, await users.newest_users(session, limit=limit))
    if query.startswith("user_"):
        user = await users.get_user(session, query)
        return await _with_accounts(session, [user]) if user is not None else []
    if query.startswith("acct_"):
        return await _account_found(session, query)
    if query.startswith("key_"):
        key = await keys.get(session, query)
        return await _account_found(session, key.account_id) if key is not None else []
    return await _with_accounts(session, await users.search_users(session, query, limit=limit))


async def _lines(session: AsyncSession, entries: list[AuditEntry]) -> list[AuditLine]:
    emails: dict[str, str] = {}
    for actor_id in {e.actor_user_id for e in entries if e.actor_user_id is not None}:
        user = await users.get_user(session, actor_id)
        if user is not None:
            emails[actor_id] = user.email
    return [
        AuditLine(
            entry=entry,
            actor=(
                "command line"
                if entry.actor_user_id is None
                else emails.get(entry.actor_user_id, "a deleted admin")
            ),
            detail=json.loads(entry.detail),
        )
        for entry in entries
    ]


async def audit_lines(
    session: AsyncSession, *, limit: int, before_id: int | None = None
) -> list[AuditLine]:
    return await _lines(session, await audit.recent(session, limit=limit, before_id=before_id))


async def account_detail(session: AsyncSession, account_id: str) -> AccountDetail | None:
    account = await accounts.get(session, account_id)
    if account is None:
        return None
    balance, reserved = await credits.balance_of(session, account_id)
    owners = await accounts.owners(session, account_id)
    trail = await audit.about(
        session,
        user_id=owners[0].id if owners else None,
        account_ids=[account_id],
        limit=PAGE_ROWS,
    )
    return AccountDetail(
        account=account,
        balance=balance,
        reserved=reserved,
        owners=owners,
        keys=await keys.list_for_account(session, account_id),
        ledger=await credits.latest_ledger(session, account_id, limit=PAGE_ROWS),
        usage=await usage.list_for_account(session, account_id, limit=PAGE_ROWS),
        outputs=await outputs.latest_outputs(session, account_id, limit=PAGE_ROWS),
        audit=await _lines(session, trail),
    )


async def overview(session: AsyncSession) -> Overview:
    return Overview(
        users=await users.count_users(session),
        admins=await users.count_users(session, role="admin"),
        disabled_accounts=await accounts.count_disabled(session),
        audit=await audit_lines(session, limit=10),
    )
