"""What every change billing applies shares: the time, the mail it may queue, and `Waiting`.

Changes run inside the caller's transaction and never commit. Each starts by locking the
account it changes (PostgreSQL: `lock_order`): every billing change of one account, and the
account's requests, queue on that row, so a top-up, a refund and a dispute of one account are
applied one after the other whatever process or event brings them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..email.compose import MailComposer
from ..email.message import Message
from ..email.outbox import enqueue
from ..group_commit import as_tx
from ..lock_order import lock_accounts

__all__ = ["Applying", "MailFor", "Waiting", "lock_account"]

#: Builds one message for an address.
MailFor = Callable[[MailComposer, str], Message]


class Waiting(Exception):
    """What the change depends on is not there yet (a refund of a payment not credited yet):
    the event stays unhandled and is applied later."""


@dataclass(frozen=True, slots=True)
class Applying:
    now: float
    mail: MailComposer

    async def notify_owner(self, session: AsyncSession, account_id: str, make: MailFor) -> None:
        """Queue a message to the account's owner, in this transaction (no owner: none)."""
        email = await accounts.owner_email(session, account_id)
        if email is not None:
            await enqueue(session, make(self.mail, email), self.now)


async def lock_account(session: AsyncSession, account_id: str | None) -> None:
    if account_id is not None:
        await lock_accounts(as_tx(session), [account_id])
