"""The Stripe calls billing makes, through the official `stripe` package (its async methods on
httpx), pointed at `billing.stripe_api_base` when set (the Stripe simulator in tests and the
demo). The package (and what it pulls in, such as `requests`) is imported only by a gateway
that has a Stripe key.

Objects come back as plain dicts (`to_dict()`): billing reads a handful of fields from each,
and a dict says plainly that a field may be missing or null. A failure of Stripe or of the
network becomes `BillingUnavailable` (502), with nothing of Stripe's message in it; a card
refused off-session is `CardRefused`, which auto top-up acts on.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from reapi.core import detached

from ..errors import GatewayError
from .settings import BillingSettings

if TYPE_CHECKING:
    import stripe

__all__ = ["BillingUnavailable", "CardRefused", "StripeApi", "StripeObject", "StripeRefused"]

StripeObject = dict[str, Any]


class BillingUnavailable(GatewayError):
    """Stripe could not be reached or refused the call: try again later."""

    http_status = 502
    error_type = "server_error"
    default_code = "payment_provider_unavailable"


class StripeRefused(BillingUnavailable):
    """Stripe refused the request itself (400 or 404 `invalid_request_error`: a saved card
    that was detached, a customer deleted): the same request again is refused again. Where
    nothing acts on it, it is as unavailable as any other failure."""

    def __init__(self, message: str, stripe_code: str) -> None:
        super().__init__(message)
        #: Stripe's error code (`resource_missing`, ...) or `invalid_request`.
        self.stripe_code = stripe_code


class CardRefused(Exception):
    """An off-session charge the bank refused: Stripe's code (`authentication_required`,
    `card_declined`, ...) and the PaymentIntent it left behind."""

    def __init__(self, code: str, payment_intent_id: str | None) -> None:
        super().__init__(code)
        self.code = code
        self.payment_intent_id = payment_intent_id


def _unavailable(error: BaseException) -> Exception:
    import stripe

    if isinstance(error, stripe.CardError):
        intent = getattr(error, "error", None)
        intent_id = getattr(getattr(intent, "payment_intent", None), "id", None)
        return CardRefused(str(error.code or "card_declined"), intent_id)
    code = getattr(error, "code", None)
    code = code if isinstance(code, str) and code.isascii() and len(code) < 60 else None
    status = getattr(error, "http_status", None)
    suffix = f" ({code})" if code else ""
    where = f"answered {status}" if isinstance(status, int) else "could not be reached"
    message = f"the payment provider {where}{suffix}; try again in a moment"
    if isinstance(error, stripe.InvalidRequestError) and status in (400, 404):
        return StripeRefused(message, code or "invalid_request")
    return BillingUnavailable(message)


def _quiet_stripe() -> None:
    """Keep the stripe package from logging: with `STRIPE_LOG=debug` (read once, when it is
    imported) or `stripe.log = "debug"` it prints every request and response body to stderr,
    and it logs them to its `stripe` logger, past the gateway's log allowlist."""
    import stripe

    stripe.log = None
    util: Any = importlib.import_module("stripe._util")
    if hasattr(util, "STRIPE_LOG"):
        util.STRIPE_LOG = None
    logger = logging.getLogger("stripe")
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False


async def _call(make: Callable[[], Awaitable[Any]]) -> StripeObject:
    """Run one Stripe call; its object as a dict, or its failure as our error (unchained:
    Stripe's errors hold the request, which holds the secret key)."""
    import stripe

    _quiet_stripe()  # again: whatever set `stripe.log` since

    try:
        result = await make()
    except stripe.StripeError as original:
        error = _unavailable(original)
    else:
        return cast(StripeObject, result.to_dict())
    raise detached(error)


class StripeApi:
    def __init__(self, settings: BillingSettings) -> None:
        import stripe

        if settings.stripe_secret_key is None:
            raise ValueError("billing needs billing.stripe_secret_key")
        _quiet_stripe()
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self._http: stripe.HTTPXClient = stripe.HTTPXClient(timeout=settings.stripe_timeout)
        self._client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            base_addresses=cast(Any, base),
            http_client=self._http,
            # Retries reuse one idempotency key: a lost answer never charges twice.
            max_network_retries=2,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    @property
    def _v1(self) -> Any:
        return self._client.v1

    async def create_checkout_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> StripeObject:
        return await _call(
            lambda: self._v1.checkout.sessions.create_async(
                params=dict(params), options={"idempotency_key": idempotency_key}
            )
        )

    async def checkout_session(self, session_id: str) -> StripeObject:
        """The session with its PaymentIntent (and that one's latest charge) expanded."""
        return await _call(
            lambda: self._v1.checkout.sessions.retrieve_async(
                session_id, params={"expand": ["payment_intent.latest_charge"]}
            )
        )

    async def expire_checkout_session(self, session_id: str) -> StripeObject:
        """Close an open session: it can no longer be paid (refused if it is not open)."""
        return await _call(lambda: self._v1.checkout.sessions.expire_async(session_id))

    async def payment_intent(self, intent_id: str) -> StripeObject:
        return await _call(
            lambda: self._v1.payment_intents.retrieve_async(
                intent_id, params={"expand": ["latest_charge"]}
            )
        )

    async def find_payment_intent(
        self, *, customer: str, since: float, top_up_id: str
    ) -> StripeObject | None:
        """The customer's PaymentIntent made since `since` for our top-up (by its metadata):
        one whose creation's answer was lost."""
        page = await _call(
            lambda: self._v1.payment_intents.list_async(
                params={"customer": customer, "created": {"gte": int(since) - 60}, "limit": 100}
            )
        )
        for intent in listed(page):
            metadata = intent.get("metadata")
            if isinstance(metadata, Mapping) and metadata.get("top_up_id") == top_up_id:
                return intent
        return None

    async def create_payment_intent(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> StripeObject:
        """Create (and, with `confirm`, charge); a bank's refusal is `CardRefused`."""
        return await _call(
            lambda: self._v1.payment_intents.create_async(
                params=dict(params), options={"idempotency_key": idempotency_key}
            )
        )

    async def charge(self, charge_id: str) -> StripeObject:
        """The charge with every refund of it, and its PaymentIntent."""
        return await _call(
            lambda: self._v1.charges.retrieve_async(
                charge_id, params={"expand": ["refunds", "payment_intent"]}
            )
        )

    async def dispute(self, dispute_id: str) -> StripeObject:
        """The dispute with its PaymentIntent."""
        return await _call(
            lambda: self._v1.disputes.retrieve_async(
                dispute_id, params={"expand": ["payment_intent"]}
            )
        )

    async def invoice(self, invoice_id: str) -> StripeObject:
        return await _call(lambda: self._v1.invoices.retrieve_async(invoice_id))

    async def payment_method(self, method_id: str) -> StripeObject:
        return await _call(lambda: self._v1.payment_methods.retrieve_async(method_id))

    async def customer_methods(self, customer: str) -> list[str]:
        """The ids of every payment method saved on the customer, of any type (a card, a SEPA
        debit): each purchase that saved one added it, and a newer one does not take the older
        off."""
        methods: list[str] = []
        params: dict[str, Any] = {"customer": customer, "limit": 100}
        while True:
            page = await _call(lambda: self._v1.payment_methods.list_async(params=dict(params)))
            ids = [method["id"] for method in listed(page) if isinstance(method.get("id"), str)]
            methods += ids
            if not page.get("has_more") or not ids:
                return methods
            params["starting_after"] = ids[-1]

    async def detach_payment_method(self, method_id: str) -> StripeObject:
        """Take a saved card off its customer: it can no longer be charged."""
        return await _call(lambda: self._v1.payment_methods.detach_async(method_id))

    async def delete_customer(self, customer: str) -> StripeObject:
        """Delete the customer at Stripe (its email address, its saved payment methods); the
        payments made stay there, under the same ids, as the law requires of Stripe."""
        return await _call(lambda: self._v1.customers.delete_async(customer))

    async def event(self, event_id: str) -> StripeObject:
        return await _call(lambda: self._v1.events.retrieve_async(event_id))

    async def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> StripeObject:
        params: dict[str, Any] = {"payment_intent": payment_intent, "metadata": dict(metadata)}
        if amount is not None:
            params["amount"] = amount
        return await _call(
            lambda: self._v1.refunds.create_async(
                params=params, options={"idempotency_key": idempotency_key}
            )
        )


def object_id(value: object) -> str | None:
    """The id of an expandable field, whether Stripe gave the id or the object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def listed(value: object) -> Sequence[StripeObject]:
    """The `data` of an expanded list (a charge's `refunds`), or nothing."""
    if isinstance(value, Mapping):
        data = value.get("data")
        if isinstance(data, list):
            return [item for item in data if isinstance(item, dict)]
    return []
