"""Billing settings (`[billing]` in TOML, `REAPI_BILLING__...` in the environment).

Billing is on when a Stripe secret key, at least one webhook signing secret and at least one
credit pack are set (`BillingSettings.enabled`). Without a webhook secret the webhook endpoint
does not exist (404): a gateway that cannot verify Stripe's signatures must never credit
anything. Prices come only from `packs`; the browser only names a pack.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "STRIPE_CHECKOUT_ORIGIN",
    "THREE_DECIMAL_CURRENCIES",
    "ZERO_DECIMAL_CURRENCIES",
    "BillingSettings",
    "CreditPack",
    "decimal_amount",
    "format_money",
]

#: ISO 4217 codes Stripe counts in whole units (no cents); every other is in hundredths.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
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
    }
)
#: ISO 4217 codes with three decimals (Stripe counts them in thousandths). Refused for packs:
#: prices, refund amounts and receipts here count hundredths.
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"
_PACK_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_CURRENCY = re.compile(r"[a-z]{3}")
#: What Stripe issues as a webhook signing secret: `whsec_` and printable characters, no spaces.
_WEBHOOK_SECRET = re.compile(r"whsec_[!-~]+")


def decimal_amount(amount: int, currency: str) -> str:
    """`1000, "eur"` → `"10.00"`; `1000, "jpy"` → `"1000"` (minor units to major)."""
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d}"


def format_money(amount: int, currency: str) -> str:
    """`1000, "eur"` → `"10.00 EUR"` (minor units to the currency's own notation)."""
    code = currency.upper()
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount:,} {code}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d} {code}"


class CreditPack(BaseModel):
    """Credits sold at one price in one currency. A pack offered in two currencies is two packs
    (`starter-eur`, `starter-usd`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: What the buy form posts and the ledger remembers; lower case, digits, `-` and `_`.
    id: str
    name: str = Field(min_length=1, max_length=100)
    credits: int = Field(gt=0, le=10**12)
    #: The price in the currency's minor unit (cents), as Stripe counts.
    unit_amount: int = Field(gt=0, le=99_999_999)
    #: ISO 4217, lower case as Stripe writes it.
    currency: str = "eur"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _PACK_ID.fullmatch(value):
            raise ValueError("a pack id: 1-40 of a-z, 0-9, - and _, not starting with - or _")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.lower()
        if not _CURRENCY.fullmatch(value):
            raise ValueError("a currency is an ISO 4217 code such as eur or usd")
        if value in THREE_DECIMAL_CURRENCIES:
            raise ValueError(
                f"{value.upper()} has three decimals, which billing does not support:"
                " price the pack in another currency"
            )
        return value

    @property
    def price(self) -> str:
        return format_money(self.unit_amount, self.currency)


class BillingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The Stripe secret (or restricted) key: `sk_live_...` / `sk_test_...`.
    stripe_secret_key: SecretStr | None = None
    #: The webhook endpoint's signing secrets (`whsec_...`). Several while rotating: a delivery
    #: signed with any of them is accepted. Empty: the webhook endpoint does not exist.
    stripe_webhook_secrets: list[SecretStr] = Field(default_factory=list)
    #: Where the Stripe API is; unset: Stripe's own. The demo and the tests point it at the
    #: Stripe simulator (`reapi_server.testing.stripe_sim`).
    stripe_api_base: str | None = None
    #: Seconds one Stripe API call may take.
    stripe_timeout: float = Field(default=30.0, gt=0, le=80)
    packs: list[CreditPack] = Field(default_factory=list)
    #: The currency shown first when packs come in several.
    currency: str = "eur"
    #: Stripe Tax: tax computed on Checkout (needs Stripe Tax set up in the Stripe account).
    automatic_tax: bool = False
    #: Checkout asks business buyers for their tax ID (it goes on the invoice).
    tax_id_collection: bool = False
    #: How long a signed webhook stays acceptable after Stripe signed it (seconds).
    webhook_tolerance: float = Field(default=300.0, gt=0, le=3600)
    #: How often each process re-applies stored events that could not be applied yet (an
    #: event that came before what it depends on, or met an error).
    event_retry_interval: float = Field(default=30.0, gt=0)
    #: Seconds after its arrival when the retry loop stops trying an event it could not apply
    #: (3 days, as long as Stripe retries a delivery): it is shown as given up in the admin,
    #: where it can be applied by hand; what it waits for arriving still applies it.
    event_give_up_after: float = Field(default=3 * 86_400.0, gt=0)
    #: How long the success page waits for Stripe's webhook before saying it is late.
    success_wait_seconds: float = Field(default=10.0, ge=0, le=60)
    #: Checkout Sessions an account may start per hour (each is a Stripe API call).
    checkout_limit: int = Field(default=20, ge=1)
    #: ... and from one client address (IPv4 address, IPv6 /64), whatever the account.
    checkout_limit_per_address: int = Field(default=60, ge=1)
    #: Success pages per hour that wait for the webhook, per account (a page refreshing while
    #: a payment is confirmed waits each time); past it the page answers at once (429).
    success_wait_limit: int = Field(default=60, ge=1)
    #: ... and from one client address.
    success_wait_limit_per_address: int = Field(default=120, ge=1)
    #: Auto top-up: no second charge for an account within this many seconds of its last.
    auto_top_up_cooldown: float = Field(default=600.0, ge=0)
    #: How often each process looks for accounts below their auto top-up threshold that a
    #: request of another process (or one that ended before its check) left there.
    auto_top_up_interval: float = Field(default=60.0, gt=0)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.lower()
        if not _CURRENCY.fullmatch(value):
            raise ValueError("billing.currency is an ISO 4217 code such as eur or usd")
        return value

    @field_validator("stripe_webhook_secrets")
    @classmethod
    def _webhook_secrets(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        # A blank secret keys the HMAC with "": anyone could sign a checkout as paid.
        if not all(_WEBHOOK_SECRET.fullmatch(secret.get_secret_value()) for secret in secrets):
            raise ValueError(
                "each must be the webhook endpoint's signing secret as Stripe shows it,"
                " whsec_... with no spaces (a blank one is never accepted)"
            )
        return secrets

    @model_validator(mode="after")
    def _packs_are_distinct(self) -> BillingSettings:
        ids = [pack.id for pack in self.packs]
        if len(ids) != len(set(ids)):
            raise ValueError("billing.packs: each pack needs its own id")
        return self

    @model_validator(mode="after")
    def _webhooks_need_the_key(self) -> BillingSettings:
        # Events are applied from what Stripe says when asked again: without the key, every
        # delivery would be stored and never applied.
        if self.stripe_webhook_secrets and self.stripe_secret_key is None:
            raise ValueError("billing.stripe_webhook_secrets needs billing.stripe_secret_key")
        return self

    @property
    def live(self) -> bool:
        """A live-mode Stripe key (real money)."""
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""
        return key.startswith(("sk_live_", "rk_live_"))

    @property
    def enabled(self) -> bool:
        """Checkout and the webhook work: a secret key, a webhook secret, something to sell."""
        return (
            self.stripe_secret_key is not None
            and bool(self.stripe_webhook_secrets)
            and bool(self.packs)
        )

    def pack(self, pack_id: str) -> CreditPack | None:
        return next((pack for pack in self.packs if pack.id == pack_id), None)

    @property
    def checkout_origin(self) -> str | None:
        """Where Checkout's payment page is (a buy form's answer redirects there, which the
        page's CSP `form-action` must allow): Stripe's, or the simulator's when the API is."""
        if not self.enabled:
            return None
        if self.stripe_api_base:
            parts = urlsplit(self.stripe_api_base)
            return f"{parts.scheme}://{parts.netloc}"
        return STRIPE_CHECKOUT_ORIGIN

    @property
    def currencies(self) -> list[str]:
        """The packs' currencies, the default first."""
        found = sorted({pack.currency for pack in self.packs})
        return sorted(found, key=lambda currency: currency != self.currency)
