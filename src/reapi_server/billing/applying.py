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
from ..credits import movements
from ..email.compose import MailComposer
from ..email.message import Message
from ..email.outbox import enqueue
from ..models import Payment
from . import repository
from .stripe_api import StripeObject, object_id

__all__ = ["Applying", "MailFor", "Waiting", "lock_account", "payment_of"]

#: Builds one message for an address.
MailFor = Callable[[MailComposer, str], Message]


class Waiting(Exception):
    """What the change depends on is not there yet (a refund of a payment not credited yet):
    the event stays unhandled and is applied later. `on`: the PaymentIntent, charge or top-up
    whose purchase it waits for (crediting it wakes the event); None when it waits for time
    (credits held by running requests).

    `hold_account`: the wait ends only once the account's credit holds close, so the account
    takes no new holds meanwhile (`movements.REFUND_HOLD`), and `retry_after` says how soon
    to look again."""

    def __init__(
        self,
        message: str,
        *,
        on: str | None = None,
        hold_account: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.on = on
        self.hold_account = hold_account
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Applying:
    now: float
    mail: MailComposer

    async def notify_owner(self, session: AsyncSession, account_id: str, make: MailFor) -> None:
        """Queue a message to the account's owner, in this transaction (no owner: none)."""
        email = await accounts.owner_email(session, account_id)
        if email is not None:
            await enqueue(session, make(self.mail, email), self.now)


async def payment_of(session: AsyncSession, about: StripeObject) -> Payment | None:
    """The paid payment a charge or a dispute is about (credited, or under review). None: not
    one of ours (another integration on the same Stripe account). `Waiting`: ours, not
    credited yet (its event has not been applied)."""
    intent = about.get("payment_intent")
    charge_id = about["id"] if about.get("object") == "charge" else object_id(about.get("charge"))
    payment = await repository.find_payment(
        session, payment_intent_id=object_id(intent), charge_id=charge_id
    )
    if payment is not None and payment.status in ("paid", "review"):
        return payment  # under review: its refunds and disputes move money, no credits
    metadata = intent.get("metadata") if isinstance(intent, dict) else None
    top_up_id = metadata.get("top_up_id") if isinstance(metadata, dict) else None
    ours = payment is not None or (isinstance(top_up_id, str) and await _known(session, top_up_id))
    if ours:
        waits_for = object_id(intent) or charge_id or top_up_id
        raise Waiting("the payment is not credited yet", on=waits_for)
    return None


async def _known(session: AsyncSession, top_up_id: str) -> bool:
    """A top-up of ours, or the tombstone of one whose account was deleted (its payment is
    recorded when its own event is applied: `after_deletion`)."""
    if await repository.get_top_up(session, top_up_id) is not None:
        return True
    return await repository.deleted_top_up(session, top_up_id) is not None


async def lock_account(session: AsyncSession, account_id: str | None) -> None:
    if account_id is not None:
        await movements.lock_account(session, account_id)
