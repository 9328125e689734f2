"""A person's data, to take away: one JSON document with a section per table about them (the
registry: `sections.SECTIONS`), and CSV files for usage and payments. Only the person's rows:
every query is keyed by their user id, their email address or the accounts they own."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ...api_keys import throttle as key_throttle
from ...billing import throttles as billing_throttles
from ...identity import repository as users
from ...identity.throttle import Throttle
from .. import repository as accounts
from .document import FORMAT, collect, document, to_json
from .section import Row, Section, Subject, iso
from .sections import SECTIONS
from .spreadsheet import to_csv

__all__ = [
    "FORMAT",
    "PAYMENT_COLUMNS",
    "SECTIONS",
    "USAGE_COLUMNS",
    "Row",
    "Section",
    "Subject",
    "collect",
    "document",
    "iso",
    "subject_of",
    "to_csv",
    "to_json",
]

#: The columns of the CSV downloads (the sections' row keys, in this order).
USAGE_COLUMNS = (
    "id",
    "created_at",
    "api_key_id",
    "model",
    "endpoint",
    "status",
    "credit_cost",
    "error_code",
    "provider",
    "attempts",
    "duration_ms",
)
PAYMENT_COLUMNS = (
    "id",
    "created_at",
    "product",
    "credits",
    "amount",
    "currency",
    "status",
    "invoice_id",
    "invoice_number",
    "invoice_url",
    "stripe_customer_id",
    "stripe_checkout_session_id",
    "stripe_payment_intent_id",
)


async def subject_of(
    session: AsyncSession,
    user_id: str,
    *,
    base_url: str,
    output_retention_seconds: float,
    throttle: Throttle,
) -> Subject | None:
    """Whose data the export holds; None when there is no such user."""
    user = await users.get_user(session, user_id)
    if user is None:
        return None
    counters = throttle.counters_about(user.email, user.id)
    account_ids = tuple(await accounts.owned_account_ids(session, user.id))
    billing_keys = [key for a in account_ids for key in billing_throttles.account_keys(a)]
    key_making = [key for a in account_ids for key in key_throttle.account_keys(a)]
    return Subject(
        user_id=user.id,
        email=user.email,
        account_ids=account_ids,
        base_url=base_url,
        output_retention_seconds=output_retention_seconds,
        throttle_keys=(*(c.key for c in counters), *billing_keys, *key_making),
    )
