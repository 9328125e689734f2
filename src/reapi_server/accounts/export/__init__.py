"""A person's data, to take away: one JSON document with a section per table about them (the
registry: `sections.SECTIONS`), and CSV files for usage and payments. Only the person's rows:
every query is keyed by their user id, their email address or the accounts they own."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from ...api_keys import throttle as key_throttle
from ...billing import throttles as billing_throttles
from ...billing.settings import decimal_amount
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
    "SPREADSHEETS",
    "USAGE_COLUMNS",
    "Row",
    "Section",
    "Subject",
    "collect",
    "document",
    "iso",
    "payment_cells",
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


def payment_cells(row: Row) -> Row:
    """A payment as a spreadsheet shows it, as the billing history's CSV does: the amount in
    the currency's own unit (`10.00`, `EUR`), where the JSON keeps Stripe's minor units
    (`1000`, `eur`), which read as a thousand euros in a spreadsheet."""
    currency = str(row["currency"])
    return {
        **row,
        "amount": Decimal(decimal_amount(int(row["amount"]), currency)),
        "currency": currency.upper(),
    }


#: The sections downloadable as CSV: their columns, and how a row becomes cells.
SPREADSHEETS: dict[str, tuple[tuple[str, ...], Callable[[Row], Row] | None]] = {
    "usage": (USAGE_COLUMNS, None),
    "payments": (PAYMENT_COLUMNS, payment_cells),
}


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
