"""Refunds: partial ones add up on the charge (`amount_refunded`), `refunded` once it is all."""

from __future__ import annotations

from ._account import Account, Origin, StripeObject
from ._clock import new_id
from ._errors import StripeError, invalid, missing
from ._forms import Params, merge_metadata, new_metadata
from ._money import format_amount

__all__ = ["create_refund", "refund_charge", "update_refund"]

REFUND_PARAMS = (
    "amount",
    "charge",
    "instructions_email",
    "metadata",
    "payment_intent",
    "reason",
    "refund_application_fee",
    "reverse_transfer",
)
_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def create_refund(account: Account, params: Params, origin: Origin) -> StripeObject:
    params.only(REFUND_PARAMS)
    charge_id, intent_id = params.text("charge"), params.text("payment_intent")
    if charge_id is None and intent_id is None:
        raise missing("charge")
    if intent_id is not None:
        intent = account.get(intent_id, "payment_intent", param="payment_intent")
        if intent["latest_charge"] is None or intent["status"] != "succeeded":
            raise invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        if charge_id is not None and charge_id != intent["latest_charge"]:
            raise invalid(
                "The charge and the payment intent do not match.",
                param="charge",
            )
        charge_id = intent["latest_charge"]
    assert charge_id is not None
    charge = account.get(charge_id, "charge", param="charge")
    return refund_charge(
        account,
        charge,
        origin,
        amount=params.integer("amount", minimum=1),
        reason=params.text("reason", choices=_REASONS),
        metadata=params.metadata(),
    )


def refund_charge(
    account: Account,
    charge: StripeObject,
    origin: Origin,
    *,
    amount: int | None = None,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
) -> StripeObject:
    with account.lock:
        if charge["status"] != "succeeded":
            raise invalid(
                f"Charge {charge['id']} has not succeeded, so it cannot be refunded.",
                param="charge",
                code="charge_not_refundable",
            )
        if charge["disputed"]:
            raise invalid(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                param="charge",
                code="charge_disputed",
            )
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                param="charge",
                code="charge_already_refunded",
            )
        amount = left if amount is None else amount
        if amount > left:
            currency = charge["currency"]
            raise StripeError(
                400,
                f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded"
                f" amount on charge ({format_amount(left, currency)})",
                code="amount_too_large",
                param="amount",
            )
        refund: StripeObject = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": account.clock.now(),
            "currency": charge["currency"],
            "destination_details": {
                charge["payment_method_details"]["type"]: {"type": "refund"},
                "type": charge["payment_method_details"]["type"],
            },
            "metadata": new_metadata(metadata),
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        account.add(refund)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        account.emit("refund.created", refund, origin)
        account.emit("charge.refunded", charge, origin, previous=previous)
    return refund


def update_refund(
    account: Account, refund: StripeObject, params: Params, origin: Origin
) -> StripeObject:
    params.only(("metadata",))
    with account.lock:
        previous = {"metadata": refund["metadata"]}
        refund["metadata"] = merge_metadata(refund["metadata"], params.metadata())
        if refund["metadata"] != previous["metadata"]:
            account.emit("refund.updated", refund, origin, previous=previous)
    return refund
