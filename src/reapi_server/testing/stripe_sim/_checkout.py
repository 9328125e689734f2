"""Checkout Sessions in `mode=payment`: created by the API, paid on the hosted page.

Paying (the page's "Pay", or `complete_session`) makes the PaymentIntent and its charge, a
customer when one is needed (`customer_creation=always`, a card saved with
`payment_intent_data[setup_future_usage]`, or an invoice), saves the card on that customer
when asked, issues the invoice when `invoice_creation[enabled]`, and sends
`checkout.session.completed`. A delayed payment method completes the session `unpaid`; it then
succeeds or fails (`checkout.session.async_payment_succeeded` / `_failed`). A declined card
leaves the session open with a failed PaymentIntent the next attempt reuses, as Stripe does.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from ._account import AUTOMATIC, Account, Origin, StripeObject
from ._clock import new_id
from ._customers import (
    ASYNC_METHOD_TYPES,
    TEST_CARDS,
    TestCard,
    new_bank_debit,
    new_card,
    new_customer,
)
from ._errors import StripeError, invalid, missing
from ._forms import Params, new_metadata
from ._invoices import announce_invoice, issue_session_invoice
from ._payments import decline_checkout_payment, new_intent, pay_checkout, settle_pending

__all__ = [
    "complete_session",
    "create_session",
    "decline_session",
    "expire_due_sessions",
    "expire_session",
    "redirect_url",
    "settle_session",
]

SESSION_PARAMS = (
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "branding_settings",
    "cancel_url",
    "client_reference_id",
    "consent_collection",
    "currency",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_creation",
    "customer_email",
    "customer_update",
    "discounts",
    "excluded_payment_method_types",
    "expires_at",
    "invoice_creation",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "payment_intent_data",
    "payment_method_collection",
    "payment_method_configuration",
    "payment_method_options",
    "payment_method_types",
    "phone_number_collection",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "shipping_address_collection",
    "shipping_options",
    "submit_type",
    "success_url",
    "tax_id_collection",
    "ui_mode",
    "wallet_options",
)
_INTENT_DATA = (
    "application_fee_amount",
    "capture_method",
    "description",
    "metadata",
    "on_behalf_of",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_data",
    "transfer_group",
)
_INVOICE_DATA = (
    "account_tax_ids",
    "custom_fields",
    "description",
    "footer",
    "issuer",
    "metadata",
    "rendering_options",
)
MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60
TEMPLATE = "{CHECKOUT_SESSION_ID}"


def _url(params: Params, key: str) -> str | None:
    value = params.text(key)
    if value is not None:
        parts = urlsplit(value.replace(TEMPLATE, "x"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid("Not a valid URL", param=key, code="url_invalid")
    return value


def _exclusive(params: Params, *names: str) -> None:
    if sum(name in params for name in names) > 1:
        raise StripeError(
            400,
            f"You may only specify one of these parameters: {', '.join(names)}.",
            code="parameters_exclusive",
            param=names[-1],
        )


def _line_items(account: Account, params: Params) -> list[StripeObject]:
    entries = params.children("line_items")
    if not entries:
        raise missing("line_items")
    items = []
    for entry in entries:
        entry.only(("adjustable_quantity", "dynamic_tax_rates", "price", "price_data", "quantity"))
        if "price" in entry:  # no Prices API here: products come inline
            raise StripeError(
                400,
                f"No such price: '{entry.required_text('price')[:80]}' (the simulator has no"
                " Prices API: give price_data)",
                code="resource_missing",
                param=entry.name("price"),
            )
        if "price_data" not in entry:
            raise missing(entry.name("price_data"))
        quantity = entry.required_integer("quantity", minimum=1)
        price_data = entry.child("price_data").only(
            (
                "currency",
                "product",
                "product_data",
                "tax_behavior",
                "unit_amount",
                "unit_amount_decimal",
            )
        )
        currency = price_data.required_text("currency").lower()
        unit_amount = price_data.integer("unit_amount", minimum=0)
        if unit_amount is None:
            unit_amount = _decimal_amount(price_data)
        product = _product(account, price_data)
        price = {
            "id": new_id("price_"),
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": account.clock.now(),
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": product["id"],
            "recurring": None,
            "tax_behavior": price_data.text(
                "tax_behavior", choices=("exclusive", "inclusive", "unspecified")
            )
            or "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        total = unit_amount * quantity
        items.append(
            {
                "id": new_id("li_"),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": total,
                "amount_tax": 0,
                "amount_total": total,
                "currency": currency,
                "description": product["name"],
                "price": price,
                "quantity": quantity,
            }
        )
    if len({item["currency"] for item in items}) > 1:
        raise invalid("Line items must all have the same currency.", param="line_items")
    return items


def _decimal_amount(price_data: Params) -> int:
    raw = price_data.text("unit_amount_decimal")
    if raw is None:
        raise missing(price_data.name("unit_amount"))
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise invalid(
            f"Invalid decimal: {raw[:40]}", param=price_data.name("unit_amount_decimal")
        ) from None
    if value != value.to_integral_value() or value < 0:
        raise invalid(
            "The simulator charges whole units of the currency's smallest unit.",
            param=price_data.name("unit_amount_decimal"),
        )
    return int(value)


def _product(account: Account, price_data: Params) -> StripeObject:
    product_id = price_data.text("product")
    if product_id is not None:
        return account.get(product_id, "product", param=price_data.name("product"))
    data = price_data.child("product_data").only(
        ("description", "images", "metadata", "name", "tax_code", "unit_label")
    )
    now = account.clock.now()
    product: StripeObject = {
        "id": new_id("prod_", 14),
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": data.text("description"),
        "images": data.strings("images"),
        "livemode": False,
        "marketing_features": [],
        "metadata": new_metadata(data.metadata()),
        "name": data.required_text("name"),
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": data.text("tax_code"),
        "type": "service",
        "unit_label": data.text("unit_label"),
        "updated": now,
        "url": None,
    }
    return account.add(product)


def _enabled(params: Params, key: str, extra: tuple[str, ...]) -> Params:
    """A `{enabled: bool, ...}` hash whose `enabled` is required once the hash is given."""
    child = params.child(key).only(("enabled", *extra))
    if key in params and child.boolean("enabled") is None:
        raise missing(child.name("enabled"))
    return child


def create_session(account: Account, params: Params, origin: Origin) -> StripeObject:
    params.only(SESSION_PARAMS)
    mode = params.required_text("mode", choices=("payment", "setup", "subscription"))
    if mode != "payment":
        raise invalid("The simulator supports mode=payment only.", param="mode")
    if params.text("ui_mode", choices=("custom", "embedded", "hosted")) not in (None, "hosted"):
        raise invalid(
            "The simulator serves the hosted page only (ui_mode=hosted).", param="ui_mode"
        )
    _exclusive(params, "customer", "customer_email")
    _exclusive(params, "customer", "customer_creation")
    customer_id = params.text("customer")
    if customer_id is not None:
        account.get(customer_id, "customer", param="customer")
    reference = params.text("client_reference_id")
    if reference is not None and len(reference) > 200:
        raise invalid("client_reference_id is at most 200 characters.", param="client_reference_id")
    intent_data = params.child("payment_intent_data").only(_INTENT_DATA)
    intent_data.text("capture_method", choices=("automatic", "automatic_async"))
    invoice = _enabled(params, "invoice_creation", ("invoice_data",))
    invoice_data = invoice.child("invoice_data").only(_INVOICE_DATA)
    tax = _enabled(params, "automatic_tax", ("liability",))
    tax_ids = _enabled(params, "tax_id_collection", ("required",))
    items = _line_items(account, params)
    now = account.clock.now()
    expires_at = params.integer("expires_at") or now + MAX_LIFETIME
    if not now + MIN_LIFETIME <= expires_at <= now + MAX_LIFETIME:
        raise invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout"
            " Session creation.",
            param="expires_at",
        )
    subtotal = sum(item["amount_subtotal"] for item in items)
    session_id = new_id("cs_test_a1", 56)
    tax_enabled = bool(tax.boolean("enabled"))
    session: StripeObject = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": params.boolean("allow_promotion_codes"),
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": {
            "enabled": tax_enabled,
            "liability": {"type": "self"} if tax_enabled else None,
            "provider": "stripe" if tax_enabled else None,
            "status": "requires_location_inputs" if tax_enabled else None,
        },
        "billing_address_collection": params.text(
            "billing_address_collection", choices=("auto", "required")
        ),
        "cancel_url": _url(params, "cancel_url"),
        "client_reference_id": reference,
        "client_secret": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": items[0]["currency"],
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_creation": None
        if customer_id
        else params.text(
            "customer_creation", choices=("always", "if_required"), default="if_required"
        ),
        "customer_details": None,
        "customer_email": params.text("customer_email"),
        "discounts": [],
        "expires_at": expires_at,
        "invoice": None,
        "invoice_creation": {
            "enabled": bool(invoice.boolean("enabled")),
            "invoice_data": {
                "account_tax_ids": invoice_data.strings("account_tax_ids") or None,
                "custom_fields": _custom_fields(invoice_data),
                "description": invoice_data.text("description"),
                "footer": invoice_data.text("footer"),
                "issuer": None,
                "metadata": new_metadata(invoice_data.metadata()),
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": params.text("locale"),
        "metadata": new_metadata(params.metadata()),
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": params.strings("payment_method_types") or ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.text(
            "submit_type", choices=("auto", "book", "donate", "pay", "subscribe")
        ),
        "subscription": None,
        "success_url": _url(params, "success_url"),
        "tax_id_collection": {
            "enabled": bool(tax_ids.boolean("enabled")),
            "required": tax_ids.text("required", choices=("if_supported", "never")) or "never",
        },
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"{account.public_url}/c/pay/{session_id}",
        "_line_items": items,
        "_intent_data": {
            "description": intent_data.text("description"),
            "metadata": new_metadata(intent_data.metadata()),
            "receipt_email": intent_data.text("receipt_email"),
            "setup_future_usage": intent_data.text(
                "setup_future_usage", choices=("off_session", "on_session")
            ),
        },
    }
    return account.add(session)


def _custom_fields(invoice_data: Params) -> list[dict[str, Any]] | None:
    fields = [
        {"name": f.required_text("name"), "value": f.required_text("value")}
        for f in invoice_data.children("custom_fields")
    ]
    return fields or None


def redirect_url(template: str | None, session_id: str) -> str | None:
    """`success_url` / `cancel_url` with `{CHECKOUT_SESSION_ID}` filled in."""
    return template.replace(TEMPLATE, session_id) if template else None


def _require_open(account: Account, session: StripeObject) -> None:
    _expire_if_due(account, session)
    if session["status"] != "open":
        raise invalid(
            f"This Checkout Session is {session['status']}: only open sessions can be paid."
        )


def _needs_customer(session: StripeObject) -> bool:
    return session["customer_creation"] == "always" or bool(
        session["_intent_data"]["setup_future_usage"] or session["invoice_creation"]["enabled"]
    )


def _intent_for(account: Account, session: StripeObject, origin: Origin) -> StripeObject:
    """The session's PaymentIntent: the one a declined attempt left, else a new one."""
    if session["payment_intent"] is not None:
        intent = account.get(session["payment_intent"], "payment_intent")
        intent["customer"] = session["customer"]
        intent["amount"] = session["amount_total"]  # tax may be known only now
        return intent
    data = session["_intent_data"]
    intent = new_intent(
        account,
        origin,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=session["customer"],
        metadata=data["metadata"],
        description=data["description"],
        setup_future_usage=data["setup_future_usage"],
        receipt_email=data["receipt_email"],
        payment_method_types=session["payment_method_types"],
    )
    session["payment_intent"] = intent["id"]
    return intent


def _email(account: Account, session: StripeObject, email: str | None) -> str:
    if email:
        return email
    if session["customer_email"]:
        return str(session["customer_email"])
    if session["customer"]:
        return str(account.get(session["customer"], "customer")["email"] or "customer@example.com")
    return "customer@example.com"


def complete_session(
    account: Account,
    session: StripeObject,
    *,
    email: str | None = None,
    card: str = "4242",
    tax_id: str | None = None,
    pay_later: bool = False,
    origin: Origin = AUTOMATIC,
) -> StripeObject:
    """The customer pays. `pay_later`: a bank debit that settles later (`settle_session`)."""
    test_card: TestCard | None = TEST_CARDS.get(card)
    if test_card is None:
        raise invalid(f"Unknown test card; one of {', '.join(TEST_CARDS)}.")
    with account.lock:
        _require_open(account, session)
        email = _email(account, session, email)
        if session["customer"] is None and _needs_customer(session):
            session["customer"] = new_customer(account, origin, email=email)["id"]
        session["customer_details"] = {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": email,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [{"type": "eu_vat", "value": tax_id}] if tax_id else [],
        }
        if session["automatic_tax"]["enabled"]:
            _add_tax(account, session)  # the buyer's address is known now, as at Stripe
        if pay_later:
            kinds = [t for t in session["payment_method_types"] if t in ASYNC_METHOD_TYPES]
            method = new_bank_debit(account, kinds[0] if kinds else "sepa_debit", email=email)
        else:
            method = new_card(account, test_card, email=email)
        intent = _intent_for(account, session, origin)
        pay_checkout(account, intent, method, origin, pending=pay_later)
        session["status"] = "complete"
        session["payment_status"] = "unpaid" if pay_later else "paid"
        invoice = None if pay_later else _invoice(account, session, intent)
        account.emit("checkout.session.completed", session, origin)
        if invoice is not None:
            announce_invoice(account, invoice, origin)
    return session


def _add_tax(account: Account, session: StripeObject) -> None:
    """Stripe Tax on top of the price (`tax_behavior` exclusive or unspecified), at the
    simulator's one fixed rate (`Account.tax_percent`, 0 unless set), rounded half up per line."""
    rate = Decimal(str(account.tax_percent)) / 100
    tax_total = 0
    for item in session["_line_items"]:
        inclusive = item["price"]["tax_behavior"] == "inclusive"
        tax = (
            0
            if inclusive
            else int((item["amount_subtotal"] * rate).to_integral_value(ROUND_HALF_UP))
        )
        item.update(amount_tax=tax, amount_total=item["amount_subtotal"] + tax)
        tax_total += tax
    session["amount_total"] = session["amount_subtotal"] + tax_total
    session["total_details"]["amount_tax"] = tax_total
    session["automatic_tax"]["status"] = "complete"


def _invoice(account: Account, session: StripeObject, intent: StripeObject) -> StripeObject | None:
    if not session["invoice_creation"]["enabled"]:
        return None
    invoice = issue_session_invoice(account, session, intent)
    session["invoice"] = invoice["id"]
    return invoice


def decline_session(
    account: Account, session: StripeObject, *, email: str | None = None, origin: Origin = AUTOMATIC
) -> StripeObject:
    """The card is declined: a failed attempt on the session's PaymentIntent; it stays open."""
    with account.lock:
        _require_open(account, session)
        method = new_card(account, TestCard("0002", "Visa", "card_declined"), email=email)
        intent = _intent_for(account, session, origin)
        decline_checkout_payment(account, intent, method, origin)
    return session


def settle_session(
    account: Account, session: StripeObject, *, succeeded: bool, origin: Origin = AUTOMATIC
) -> StripeObject:
    """A delayed payment (completed `unpaid`) succeeds or fails."""
    with account.lock:
        intent = (
            account.get(session["payment_intent"], "payment_intent")
            if session["payment_intent"]
            else None
        )
        if session["status"] != "complete" or intent is None or intent["status"] != "processing":
            raise invalid("This Checkout Session has no payment waiting to settle.")
        settle_pending(account, intent, origin, succeeded=succeeded)
        if not succeeded:
            account.emit("checkout.session.async_payment_failed", session, origin)
            return session
        session["payment_status"] = "paid"
        invoice = _invoice(account, session, intent)
        account.emit("checkout.session.async_payment_succeeded", session, origin)
        if invoice is not None:
            announce_invoice(account, invoice, origin)
    return session


def expire_session(account: Account, session: StripeObject, origin: Origin) -> StripeObject:
    with account.lock:
        if session["status"] != "open":
            raise invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                param="session",
            )
        session["status"] = "expired"
        intent_id = session["payment_intent"]
        if intent_id is not None:
            intent = account.get(intent_id, "payment_intent")
            if intent["status"] == "requires_payment_method":
                intent.update(
                    status="canceled",
                    canceled_at=account.clock.now(),
                    cancellation_reason="abandoned",
                )
                account.emit("payment_intent.canceled", intent, origin)
        account.emit("checkout.session.expired", session, origin)
    return session


def _expire_if_due(account: Account, session: StripeObject) -> None:
    if session["status"] == "open" and session["expires_at"] <= account.clock.now():
        expire_session(account, session, AUTOMATIC)


def expire_due_sessions(account: Account) -> None:
    """Stripe expires open sessions at `expires_at`; the simulator does when asked (the clock)."""
    with account.lock:
        for session in account.all("checkout.session", status="open"):
            _expire_if_due(account, session)
