"""Disputes (chargebacks): opened by the control API, closed won or lost.

Opening one marks the charge `disputed` and sends `charge.dispute.created` and
`charge.dispute.funds_withdrawn`; closing sends `charge.dispute.closed` (and, when won,
`charge.dispute.funds_reinstated`). `POST /v1/disputes/{id}/close` is Stripe's "accept the
dispute": it is lost.
"""

from __future__ import annotations

from ._account import AUTOMATIC, Account, Origin, StripeObject
from ._clock import new_id
from ._errors import invalid
from ._forms import Params, merge_metadata

__all__ = ["DISPUTE_REASONS", "close_dispute", "open_dispute", "update_dispute"]

DISPUTE_REASONS = (
    "bank_cannot_process",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
_OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")
_EVIDENCE_DAYS = 7


def open_dispute(
    account: Account,
    charge: StripeObject,
    *,
    amount: int | None = None,
    reason: str = "fraudulent",
    inquiry: bool = False,
) -> StripeObject:
    """A chargeback, or with `inquiry` a retrieval request (`warning_needs_response`): no funds
    move and the charge can still be refunded; it closes `warning_closed`."""
    with account.lock:
        if charge["status"] != "succeeded":
            raise invalid(f"Charge {charge['id']} has not succeeded: nothing to dispute.")
        if account.all("dispute", charge=charge["id"]):
            raise invalid(f"Charge {charge['id']} already has a dispute.")
        amount = charge["amount"] if amount is None else amount
        if not 0 < amount <= charge["amount"]:
            raise invalid(f"A dispute amount is between 1 and the charge's {charge['amount']}.")
        if reason not in DISPUTE_REASONS:
            raise invalid(f"Unknown dispute reason; one of {', '.join(DISPUTE_REASONS)}.")
        now = account.clock.now()
        details = charge["payment_method_details"]
        dispute: StripeObject = {
            "id": new_id("dp_"),
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [],
            "charge": charge["id"],
            "created": now,
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "evidence": {
                "customer_email_address": None,
                "customer_name": None,
                "product_description": None,
                "receipt": None,
                "uncategorized_text": None,
            },
            "evidence_details": {
                "due_by": now + _EVIDENCE_DAYS * 86_400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "card": {
                    "brand": details.get("card", {}).get("brand", "visa"),
                    "case_type": "inquiry" if inquiry else "chargeback",
                    "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
                },
                "type": "card",
            },
            "reason": reason,
            "status": "warning_needs_response" if inquiry else "needs_response",
        }
        account.add(dispute)
        account.emit("charge.dispute.created", dispute)
        if not inquiry:
            charge["disputed"] = True
            account.emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def close_dispute(
    account: Account, dispute: StripeObject, outcome: str, origin: Origin = AUTOMATIC
) -> StripeObject:
    with account.lock:
        if dispute["status"] not in _OPEN:
            raise invalid(f"This dispute is already closed (status {dispute['status']}).")
        inquiry = dispute["status"].startswith("warning_")
        if outcome not in (("warning_closed",) if inquiry else ("won", "lost")):
            raise invalid("An inquiry closes as warning_closed; a dispute as won or lost.")
        previous = {"status": dispute["status"]}
        dispute["status"] = outcome
        account.emit("charge.dispute.closed", dispute, origin, previous=previous)
        if outcome == "won":
            account.emit("charge.dispute.funds_reinstated", dispute, origin)
    return dispute


def update_dispute(
    account: Account, dispute: StripeObject, params: Params, origin: Origin
) -> StripeObject:
    """Metadata and evidence; `submit=true` sends it for review."""
    params.only(("evidence", "metadata", "submit"))
    with account.lock:
        if dispute["status"] not in _OPEN:
            raise invalid("This dispute is closed and can no longer be updated.")
        previous = {"metadata": dispute["metadata"], "status": dispute["status"]}
        dispute["metadata"] = merge_metadata(dispute["metadata"], params.metadata())
        evidence = params.child("evidence")
        for key, value in evidence.data.items():
            if isinstance(value, str):
                dispute["evidence"][key] = value
                dispute["evidence_details"]["has_evidence"] = True
        if params.boolean("submit"):
            dispute["status"] = "under_review"
            dispute["evidence_details"]["submission_count"] += 1
        account.emit("charge.dispute.updated", dispute, origin, previous=previous)
    return dispute
