"""Amounts in a currency's smallest unit, shown the way a receipt shows them."""

from __future__ import annotations

__all__ = ["format_amount"]

#: Currencies Stripe counts in whole units (its "zero-decimal currencies").
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
#: Currencies Stripe counts in thousandths.
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}


def decimals(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def format_amount(amount: int, currency: str, *, symbol: bool = True) -> str:
    """`1050, "eur"` -> "€10.50"; without a known symbol (or `symbol=False`): "10.50 EUR"."""
    places = decimals(currency)
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 10**places)
    number = f"{units:,}" + (f".{cents:0{places}d}" if places else "")
    mark = _SYMBOLS.get(currency.lower()) if symbol else None
    return f"{sign}{mark}{number}" if mark else f"{sign}{number} {currency.upper()}"
