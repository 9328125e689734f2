"""Customers and payment methods (cards from Stripe's test card set, and a bank debit)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ._account import Account, Origin, StripeObject
from ._clock import new_id
from ._errors import StripeError, invalid
from ._forms import Params, merge_metadata, new_metadata

__all__ = [
    "ASYNC_METHOD_TYPES",
    "TEST_CARDS",
    "TestCard",
    "attach_payment_method",
    "create_customer",
    "detach_payment_method",
    "new_bank_debit",
    "new_card",
    "new_customer",
    "update_customer",
]

CUSTOMER_PARAMS = (
    "address",
    "description",
    "email",
    "invoice_settings",
    "metadata",
    "name",
    "phone",
    "preferred_locales",
    "shipping",
    "tax",
    "tax_exempt",
    "tax_id_data",
)
_TAX_EXEMPT = ("exempt", "none", "reverse")
#: Payment method types whose payments settle later ("delayed notification" in Stripe's words).
ASYNC_METHOD_TYPES = frozenset(
    [
        "acss_debit",
        "au_becs_debit",
        "bacs_debit",
        "boleto",
        "customer_balance",
        "konbini",
        "oxxo",
        "sepa_debit",
        "sofort",
        "us_bank_account",
    ]
)


@dataclass(frozen=True, slots=True)
class TestCard:
    """One of Stripe's test cards: how it behaves when charged later, off session."""

    last4: str
    label: str
    #: The outcome of off-session confirmations with a card saved from it.
    later: str
    brand: str = "visa"


#: Cards offered on the hosted checkout page; every one pays at checkout. Keys: the form value.
TEST_CARDS = {
    "4242": TestCard("4242", "Visa •••• 4242 — later payments succeed", "succeeded"),
    "3184": TestCard(
        "3184", "Visa •••• 3184 — later payments need authentication", "authentication_required"
    ),
    "0341": TestCard("0341", "Visa •••• 0341 — later payments are declined", "card_declined"),
}
#: Stripe's test PaymentMethod ids, usable wherever a `payment_method` is taken.
MAGIC_METHODS = {
    "pm_card_visa": TestCard("4242", "Visa", "succeeded"),
    "pm_card_authenticationRequired": TestCard("3184", "Visa", "authentication_required"),
    "pm_card_chargeDeclined": TestCard("0002", "Visa", "card_declined"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard("9995", "Visa", "insufficient_funds"),
}


def _address() -> dict[str, Any]:
    keys = ("city", "country", "line1", "line2", "postal_code", "state")
    return dict.fromkeys(keys)


def new_customer(
    account: Account,
    origin: Origin,
    *,
    email: str | None = None,
    name: str | None = None,
    description: str | None = None,
    phone: str | None = None,
    metadata: dict[str, str] | None = None,
    preferred_locales: list[str] | None = None,
    tax_exempt: str = "none",
) -> StripeObject:
    customer: StripeObject = {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": account.clock.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": new_metadata(metadata),
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": preferred_locales or [],
        "shipping": None,
        "tax_exempt": tax_exempt,
        "test_clock": None,
    }
    account.add(customer)
    account.emit("customer.created", customer, origin)
    return customer


def create_customer(account: Account, params: Params, origin: Origin) -> StripeObject:
    params.only(CUSTOMER_PARAMS)
    method_id = params.child("invoice_settings").text("default_payment_method")
    if method_id is not None:  # a new customer has no attached method yet
        raise _not_attached(method_id)
    tax_exempt = params.text("tax_exempt", choices=_TAX_EXEMPT)
    return new_customer(
        account,
        origin,
        email=params.text("email"),
        name=params.text("name"),
        description=params.text("description"),
        phone=params.text("phone"),
        metadata=params.metadata(),
        preferred_locales=params.strings("preferred_locales"),
        tax_exempt=tax_exempt or "none",
    )


def _not_attached(method_id: str) -> StripeError:
    return invalid(
        f"The customer does not have a payment method with the ID {method_id[:80]}. The payment"
        " method must be attached to the customer.",
        param="invoice_settings[default_payment_method]",
        code="resource_missing",
    )


def update_customer(
    account: Account, customer: StripeObject, params: Params, origin: Origin
) -> StripeObject:
    params.only(CUSTOMER_PARAMS)
    with account.lock:
        before = {k: customer[k] for k in customer if not k.startswith("_")}
        for key in ("email", "name", "description", "phone"):
            if key in params:
                customer[key] = params.text(key)
        if "tax_exempt" in params:
            customer["tax_exempt"] = params.text("tax_exempt", choices=_TAX_EXEMPT) or "none"
        if "preferred_locales" in params:
            customer["preferred_locales"] = params.strings("preferred_locales")
        customer["metadata"] = merge_metadata(customer["metadata"], params.metadata())
        settings = params.child("invoice_settings").only(
            ("custom_fields", "default_payment_method", "footer", "rendering_options")
        )
        if "default_payment_method" in settings:
            method_id = settings.text("default_payment_method")
            if method_id is not None:
                method = account.get(
                    method_id, "payment_method", param="invoice_settings[default_payment_method]"
                )
                if method["customer"] != customer["id"]:
                    raise _not_attached(method_id)
            customer["invoice_settings"] = {
                **customer["invoice_settings"],
                "default_payment_method": method_id,
            }
        previous = {k: v for k, v in before.items() if customer.get(k) != v}
        if previous:
            account.emit("customer.updated", customer, origin, previous=previous)
    return customer


# -- payment methods --------------------------------------------------------------------------
def new_card(
    account: Account, card: TestCard, *, email: str | None = None, name: str | None = None
) -> StripeObject:
    year = 1970 + account.clock.now() // 31_557_600 + 3
    method = _method(account, "card", email=email, name=name)
    method["card"] = {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": "US",
        "display_brand": card.brand,
        "exp_month": 12,
        "exp_year": year,
        "fingerprint": secrets.token_hex(8),
        "funding": "credit",
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }
    method["_later"] = card.later
    return account.add(method)


def new_bank_debit(account: Account, kind: str, *, email: str | None = None) -> StripeObject:
    """A delayed-notification method (e.g. `sepa_debit`): its payments are `processing` first."""
    method = _method(account, kind, email=email, name=None)
    method[kind] = {"fingerprint": secrets.token_hex(8), "last4": "3000"}
    method["_later"] = "succeeded"
    return account.add(method)


def _method(account: Account, kind: str, *, email: str | None, name: str | None) -> StripeObject:
    return {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": _address(),
            "email": email,
            "name": name,
            "phone": None,
            "tax_id": None,
        },
        "created": account.clock.now(),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": kind,
    }


def resolve_method(account: Account, method_id: str, *, param: str) -> StripeObject:
    """A stored method, or a new one for Stripe's test ids (`pm_card_visa`, ...)."""
    magic = MAGIC_METHODS.get(method_id)
    if magic is not None:
        return new_card(account, magic)
    return account.get(method_id, "payment_method", param=param)


def attach_payment_method(
    account: Account, method: StripeObject, customer: StripeObject, origin: Origin
) -> StripeObject:
    with account.lock:
        if method["customer"] == customer["id"]:
            return method
        if method["customer"] is not None:
            raise invalid(
                "The payment method you provided has already been attached to a customer.",
                param="payment_method",
            )
        method["customer"] = customer["id"]
        account.emit("payment_method.attached", method, origin)
    return method


def detach_payment_method(account: Account, method: StripeObject, origin: Origin) -> StripeObject:
    with account.lock:
        if method["customer"] is None:
            raise invalid(
                f"The payment method {method['id']} is not attached to a customer so detachment"
                " is impossible.",
                param="payment_method",
            )
        previous = {"customer": method["customer"]}
        customer = account.get(method["customer"], "customer")
        if customer["invoice_settings"]["default_payment_method"] == method["id"]:
            customer["invoice_settings"] = {
                **customer["invoice_settings"],
                "default_payment_method": None,
            }
        method["customer"] = None
        method["_detached"] = True  # Stripe never lets it be used again
        account.emit("payment_method.detached", method, origin, previous=previous)
    return method
