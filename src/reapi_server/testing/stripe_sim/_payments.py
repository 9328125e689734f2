"""PaymentIntents and their charges: confirmation outcomes, as Stripe reports them.

An off-session confirmation that fails answers 402 `card_error` (code `authentication_required`
or `card_declined`) with the PaymentIntent in the error; the intent is left in
`requires_payment_method` with `last_payment_error`, and `payment_intent.payment_failed` is sent.
The outcome comes from `Account.next_outcomes` when one is queued, else from the card.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ._account import Account, Origin, StripeObject, public_copy
from ._clock import new_id
from ._customers import ASYNC_METHOD_TYPES, attach_payment_method, resolve_method
from ._errors import StripeError, invalid
from ._forms import Params, merge_metadata, new_metadata

__all__ = [
    "PAYMENT_OUTCOMES",
    "cancel_intent",
    "confirm_intent",
    "create_intent",
    "decline_checkout_payment",
    "new_intent",
    "pay_checkout",
    "settle_pending",
    "update_intent",
]

PAYMENT_OUTCOMES = (
    "succeeded",
    "authentication_required",
    "card_declined",
    "insufficient_funds",
    "processing",
)
#: outcome -> (error code, decline code, message), Stripe's wording.
_DECLINES = {
    "authentication_required": (
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
    "card_declined": ("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "bank_declined": (
        "payment_method_provider_decline",
        None,
        "The payment was declined by the customer's bank.",
    ),
}
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CANCELABLE = (*_CONFIRMABLE, "requires_capture", "processing")
_SETUP_FUTURE_USAGE = ("off_session", "on_session")
INTENT_PARAMS = (
    "amount",
    "automatic_payment_methods",
    "capture_method",
    "confirm",
    "confirmation_method",
    "currency",
    "customer",
    "description",
    "error_on_requires_action",
    "mandate_data",
    "metadata",
    "off_session",
    "payment_method",
    "payment_method_options",
    "payment_method_types",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
    "use_stripe_sdk",
)
CONFIRM_PARAMS = (
    "capture_method",
    "error_on_requires_action",
    "mandate_data",
    "off_session",
    "payment_method",
    "payment_method_options",
    "payment_method_types",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "use_stripe_sdk",
)
UPDATE_PARAMS = (
    "amount",
    "currency",
    "customer",
    "description",
    "metadata",
    "payment_method",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
)


def new_intent(
    account: Account,
    origin: Origin,
    *,
    amount: int,
    currency: str,
    customer: str | None = None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    setup_future_usage: str | None = None,
    receipt_email: str | None = None,
    payment_method_types: list[str] | None = None,
) -> StripeObject:
    intent_id = new_id("pi_")
    intent: StripeObject = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
        "confirmation_method": "automatic",
        "created": account.clock.now(),
        "currency": currency,
        "customer": customer,
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": new_metadata(metadata),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": payment_method_types or ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    account.add(intent)
    account.emit("payment_intent.created", intent, origin)
    return intent


def _off_session(params: Params) -> bool:
    raw = params.text("off_session")
    if raw is None:
        return False
    if raw in ("one_off", "recurring"):
        return True
    return bool(params.boolean("off_session"))


def create_intent(account: Account, params: Params, origin: Origin) -> StripeObject:
    params.only(INTENT_PARAMS)
    amount = params.required_integer("amount", minimum=1)
    currency = params.required_text("currency").lower()
    params.text("capture_method", choices=("automatic", "automatic_async"))
    customer_id = params.text("customer")
    if customer_id is not None:
        account.get(customer_id, "customer", param="customer")
    confirm = bool(params.boolean("confirm"))
    if "off_session" in params and not confirm:
        raise invalid(
            "You can only pass in off_session when confirm is set to true.", param="off_session"
        )
    method = None
    method_id = params.text("payment_method")
    if method_id is not None:
        method = resolve_method(account, method_id, param="payment_method")
    intent = new_intent(
        account,
        origin,
        amount=amount,
        currency=currency,
        customer=customer_id,
        metadata=params.metadata(),
        description=params.text("description"),
        setup_future_usage=params.text("setup_future_usage", choices=_SETUP_FUTURE_USAGE),
        receipt_email=params.text("receipt_email"),
        payment_method_types=params.strings("payment_method_types") or None,
    )
    if method is not None:
        intent["payment_method"] = method["id"]
        intent["status"] = "requires_confirmation"
    if not confirm:
        return intent
    return confirm_intent(
        account,
        intent,
        origin,
        method=method,
        off_session=_off_session(params),
        error_on_requires_action=bool(params.boolean("error_on_requires_action")),
    )


def update_intent(
    account: Account, intent: StripeObject, params: Params, origin: Origin
) -> StripeObject:
    params.only(UPDATE_PARAMS)
    with account.lock:
        money_fields = ("amount", "currency", "customer", "payment_method", "setup_future_usage")
        if intent["status"] not in _CONFIRMABLE and any(k in params for k in money_fields):
            raise _unexpected_state(intent, "update")
        if "amount" in params:
            intent["amount"] = params.required_integer("amount", minimum=1)
        if "currency" in params:
            intent["currency"] = params.required_text("currency").lower()
        if "customer" in params:
            customer_id = params.required_text("customer")
            intent["customer"] = account.get(customer_id, "customer", param="customer")["id"]
        if "payment_method" in params:
            method = resolve_method(
                account, params.required_text("payment_method"), param="payment_method"
            )
            intent["payment_method"] = method["id"]
            intent["status"] = "requires_confirmation"
        for key in ("description", "receipt_email"):
            if key in params:
                intent[key] = params.text(key)
        if "setup_future_usage" in params:
            intent["setup_future_usage"] = params.text(
                "setup_future_usage", choices=_SETUP_FUTURE_USAGE
            )
        intent["metadata"] = merge_metadata(intent["metadata"], params.metadata())
    return intent


def confirm_from(
    account: Account, intent: StripeObject, params: Params, origin: Origin
) -> StripeObject:
    """`POST /v1/payment_intents/{id}/confirm`."""
    params.only(CONFIRM_PARAMS)
    method_id = params.text("payment_method")
    method = resolve_method(account, method_id, param="payment_method") if method_id else None
    if "setup_future_usage" in params:
        intent["setup_future_usage"] = params.text(
            "setup_future_usage", choices=_SETUP_FUTURE_USAGE
        )
    return confirm_intent(
        account,
        intent,
        origin,
        method=method,
        off_session=_off_session(params),
        error_on_requires_action=bool(params.boolean("error_on_requires_action")),
    )


def confirm_intent(
    account: Account,
    intent: StripeObject,
    origin: Origin,
    *,
    method: StripeObject | None,
    off_session: bool,
    error_on_requires_action: bool = False,
) -> StripeObject:
    """Charge the method now; 402 `card_error` (the intent updated) when the bank says no."""
    with account.lock:
        if intent["status"] not in _CONFIRMABLE:
            raise _unexpected_state(intent, "confirm")
        if method is None and intent["payment_method"] is not None:
            method = account.get(intent["payment_method"], "payment_method")
        if method is None:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method."
                " To confirm the PaymentIntent with "
                f"{intent['customer'] or 'this customer'}, specify a payment method attached to"
                " this customer along with the customer ID.",
                code="payment_intent_unexpected_state",
            )
        _check_owner(intent, method)
        intent["payment_method"] = method["id"]
        if off_session and account.next_outcomes:
            outcome = account.next_outcomes.popleft()
        else:
            outcome = str(method.get("_later", "succeeded"))
        if (
            outcome == "authentication_required"
            and not off_session
            and not error_on_requires_action
        ):
            return _requires_action(account, intent, origin)
        if outcome == "processing" or method["type"] in ASYNC_METHOD_TYPES:
            return _processing(account, intent, method, origin)
        if outcome != "succeeded":
            _fail(account, intent, method, outcome, origin)  # raises the 402
        return _succeed(account, intent, method, origin)


def _check_owner(intent: StripeObject, method: StripeObject) -> None:
    if method.get("_detached"):
        raise invalid(
            "The provided PaymentMethod was previously used with a PaymentIntent without"
            " Customer attachment, shared with a connected account without Customer attachment,"
            " or was detached from a Customer. It may not be used again. To use a PaymentMethod"
            " multiple times, you must attach it to a Customer first.",
            param="payment_method",
        )
    owner = method.get("customer")
    if owner is not None and owner != intent["customer"]:
        raise invalid(
            f"The provided PaymentMethod {method['id']} belongs to a Customer; pass that Customer"
            " (customer) with it.",
            param="payment_method",
        )


def _unexpected_state(intent: StripeObject, action: str) -> StripeError:
    allowed = _CANCELABLE if action == "cancel" else _CONFIRMABLE
    return StripeError(
        400,
        f"You cannot {action} this PaymentIntent because it has a status of {intent['status']}."
        f" Only a PaymentIntent with one of the following statuses may be {action}ed:"
        f" {', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
        payment_intent=public_copy(intent),
    )


def _succeed(
    account: Account, intent: StripeObject, method: StripeObject, origin: Origin
) -> StripeObject:
    _save_for_later(account, intent, method, origin)
    charge = new_charge(account, intent, method, status="succeeded")
    intent.update(
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=charge["id"],
        last_payment_error=None,
        next_action=None,
    )
    account.emit("charge.succeeded", charge, origin)
    account.emit("payment_intent.succeeded", intent, origin)
    return intent


def _save_for_later(
    account: Account, intent: StripeObject, method: StripeObject, origin: Origin
) -> None:
    if intent["setup_future_usage"] and intent["customer"]:
        customer = account.get(intent["customer"], "customer")
        attach_payment_method(account, method, customer, origin)


def _requires_action(account: Account, intent: StripeObject, origin: Origin) -> StripeObject:
    intent.update(
        status="requires_action",
        next_action={
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": intent["id"]},
        },
    )
    account.emit("payment_intent.requires_action", intent, origin)
    return intent


def _fail(
    account: Account, intent: StripeObject, method: StripeObject, outcome: str, origin: Origin
) -> None:
    code, decline_code, message = _DECLINES[outcome]
    charge = None
    if outcome != "authentication_required":  # the bank saw and refused a charge
        charge = new_charge(
            account, intent, method, status="failed", failure=(code, decline_code, message)
        )
        intent["latest_charge"] = charge["id"]
        account.emit("charge.failed", charge, origin)
    error: StripeObject = {
        "code": code,
        "doc_url": "https://stripe.com/docs/error-codes/" + code.replace("_", "-"),
        "message": message,
        "payment_method": public_copy(method),
        "type": "card_error",
    }
    if decline_code is not None:
        error["decline_code"] = decline_code
    if charge is not None:
        error["charge"] = charge["id"]
    intent.update(
        status="requires_payment_method",
        last_payment_error=error,
        payment_method=None,
        next_action=None,
    )
    account.emit("payment_intent.payment_failed", intent, origin)
    extra: dict[str, Any] = {"payment_intent": public_copy(intent)}
    extra.update({k: error[k] for k in ("decline_code", "charge", "payment_method") if k in error})
    raise StripeError(402, message, kind="card_error", code=code, **extra)


def cancel_intent(
    account: Account, intent: StripeObject, params: Params, origin: Origin
) -> StripeObject:
    params.only(("cancellation_reason",))
    with account.lock:
        if intent["status"] not in _CANCELABLE:
            raise _unexpected_state(intent, "cancel")
        intent.update(
            status="canceled",
            canceled_at=account.clock.now(),
            cancellation_reason=params.text(
                "cancellation_reason",
                choices=("abandoned", "duplicate", "fraudulent", "requested_by_customer"),
            ),
            next_action=None,
        )
        account.emit("payment_intent.canceled", intent, origin)
    return intent


# -- charges -----------------------------------------------------------------------------------
def new_charge(
    account: Account,
    intent: StripeObject,
    method: StripeObject,
    *,
    status: str,
    failure: tuple[str, str | None, str] | None = None,
) -> StripeObject:
    charge_id = new_id("ch_")
    kind = method["type"]
    details = dict(method[kind])
    if kind == "card":
        details = {
            **{k: details[k] for k in ("brand", "checks", "country", "exp_month", "exp_year")},
            **{k: details[k] for k in ("fingerprint", "funding", "last4", "wallet")},
            "amount_authorized": intent["amount"] if status == "succeeded" else None,
            "network": details["brand"],
            "three_d_secure": None,
        }
    paid = status == "succeeded"
    outcome: StripeObject = {
        "network_status": "approved_by_network" if paid else "declined_by_network",
        "reason": None,
        "risk_level": "normal",
        "seller_message": "Payment complete.",
        "type": "authorized",
    }
    if failure is not None:
        outcome.update(
            reason=failure[1],
            seller_message="The bank did not return any further details with this decline.",
            type="issuer_declined",
        )
    charge: StripeObject = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": method["billing_details"],
        "calculated_statement_descriptor": account.name.upper()[:22],
        "captured": paid,
        "created": account.clock.now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure[0] if failure else None,
        "failure_message": failure[2] if failure else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": paid,
        "payment_intent": intent["id"],
        "payment_method": method["id"],
        "payment_method_details": {kind: details, "type": kind},
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{account.public_url}/receipts/{charge_id}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }
    return account.add(charge)


def _processing(
    account: Account, intent: StripeObject, method: StripeObject, origin: Origin
) -> StripeObject:
    """A delayed-notification payment (a bank debit): `processing` with a pending charge
    until `settle_pending` says how it ended, days later at Stripe."""
    _save_for_later(account, intent, method, origin)
    charge = new_charge(account, intent, method, status="pending")
    intent.update(
        status="processing",
        latest_charge=charge["id"],
        last_payment_error=None,
        next_action=None,
    )
    account.emit("charge.pending", charge, origin)
    account.emit("payment_intent.processing", intent, origin)
    return intent


# -- payments made on the hosted checkout page -------------------------------------------------
def pay_checkout(
    account: Account, intent: StripeObject, method: StripeObject, origin: Origin, *, pending: bool
) -> StripeObject:
    """The customer paid on the page: a card succeeds now, a bank debit is `processing`."""
    intent["payment_method"] = method["id"]
    if not pending:
        return _succeed(account, intent, method, origin)
    return _processing(account, intent, method, origin)


def settle_pending(
    account: Account, intent: StripeObject, origin: Origin, *, succeeded: bool
) -> StripeObject:
    """A `processing` payment (a bank debit) succeeds or fails."""
    if intent["status"] != "processing":
        raise invalid("This PaymentIntent has no payment waiting to settle.")
    charge = account.get(intent["latest_charge"], "charge")
    method = account.get(charge["payment_method"], "payment_method")
    if succeeded:
        charge.update(
            status="succeeded", paid=True, captured=True, amount_captured=charge["amount"]
        )
        intent.update(status="succeeded", amount_received=intent["amount"])
        account.emit("charge.succeeded", charge, origin)
        account.emit("payment_intent.succeeded", intent, origin)
        return intent
    code, _, message = _DECLINES["bank_declined"]
    charge.update(status="failed", failure_code=code, failure_message=message)
    account.emit("charge.failed", charge, origin)
    intent.update(
        status="requires_payment_method",
        payment_method=None,
        last_payment_error={
            "code": code,
            "message": message,
            "payment_method": public_copy(method),
            "type": "card_error",
        },
    )
    account.emit("payment_intent.payment_failed", intent, origin)
    return intent


def decline_checkout_payment(
    account: Account, intent: StripeObject, method: StripeObject, origin: Origin
) -> StripeObject:
    """The card was declined on the page: a failed charge, the intent waits for another method."""
    with contextlib.suppress(StripeError):  # the page shows no error body: state is what counts
        _fail(account, intent, method, "card_declined", origin)
    return intent
