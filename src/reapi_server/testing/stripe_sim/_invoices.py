"""Invoices Checkout issues after a payment (`invoice_creation[enabled]=true`), and their PDF.

The invoice is paid when it is created (the session's payment paid it); its events are
`invoice.created`, `invoice.finalized`, `invoice.paid` and `invoice.payment_succeeded`.
`hosted_invoice_url` and `invoice_pdf` point at pages this simulator serves.
"""

from __future__ import annotations

import time

from ._account import Account, Origin, StripeObject, list_object
from ._clock import new_id
from ._money import format_amount
from ._pdf import A4, PdfText, one_page_pdf

__all__ = ["announce_invoice", "invoice_pdf", "issue_session_invoice"]

INVOICE_EVENTS = (
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
)


def issue_session_invoice(
    account: Account, session: StripeObject, intent: StripeObject
) -> StripeObject:
    """A paid invoice for a completed session (no events yet: see `announce_invoice`)."""
    customer = account.get(session["customer"], "customer")
    data = session["invoice_creation"]["invoice_data"]
    invoice_id = new_id("in_")
    now = account.clock.now()
    number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    lines = [
        {
            "id": new_id("il_"),
            "object": "line_item",
            "amount": item["amount_total"],
            "currency": item["currency"],
            "description": item["description"],
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": invoice_id,
            "livemode": False,
            "metadata": {},
            "parent": None,
            "period": {"end": now, "start": now},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {
                    "price": item["price"]["id"],
                    "product": item["price"]["product"],
                },
                "type": "price_details",
                "unit_amount_decimal": item["price"]["unit_amount_decimal"],
            },
            "quantity": item["quantity"],
            "subscription": None,
            "taxes": [],
        }
        for item in session["_line_items"]
    ]
    details = session["customer_details"] or {}
    total, tax = session["amount_total"], session["total_details"]["amount_tax"]
    invoice: StripeObject = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": account.name,
        "account_tax_ids": data["account_tax_ids"],
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": total,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": True,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": session["automatic_tax"]["enabled"],
            "liability": session["automatic_tax"]["liability"],
            "provider": session["automatic_tax"]["provider"],
            "status": session["automatic_tax"]["status"],
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": "charge_automatically",
        "created": now,
        "currency": session["currency"],
        "custom_fields": data["custom_fields"],
        "customer": customer["id"],
        "customer_address": details.get("address"),
        "customer_email": details.get("email") or customer["email"],
        "customer_name": details.get("name") or customer["name"],
        "customer_phone": details.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": details.get("tax_exempt", "none"),
        "customer_tax_ids": details.get("tax_ids") or [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": data["description"],
        "discounts": [],
        "due_date": None,
        "effective_at": now,
        "ending_balance": 0,
        "footer": data["footer"],
        "from_invoice": None,
        "hosted_invoice_url": f"{account.public_url}/invoice/{invoice_id}",
        "invoice_pdf": f"{account.public_url}/invoice/{invoice_id}/pdf",
        "issuer": data["issuer"] or {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False,
        "metadata": dict(data["metadata"]),
        "next_payment_attempt": None,
        "number": number,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "paid",
        "status_transitions": {
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": now,
            "voided_at": None,
        },
        "subtotal": session["amount_subtotal"],
        "subtotal_excluding_tax": session["amount_subtotal"],
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total - tax,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": now,
    }
    account.add(invoice)
    account.add(
        {
            "id": new_id("inpay_"),
            "object": "invoice_payment",
            "amount_paid": total,
            "amount_requested": total,
            "created": now,
            "currency": session["currency"],
            "invoice": invoice_id,
            "is_default": True,
            "livemode": False,
            "payment": {"payment_intent": intent["id"], "type": "payment_intent"},
            "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": now},
        }
    )
    return invoice


def announce_invoice(account: Account, invoice: StripeObject, origin: Origin) -> None:
    for event_type in INVOICE_EVENTS:
        account.emit(event_type, invoice, origin)


def _date(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def invoice_pdf(account: Account, invoice: StripeObject) -> bytes:
    width, height = A4
    left, right = 56, width - 56
    currency = invoice["currency"]

    def money(amount: int) -> str:
        return format_amount(amount, currency)

    y = height - 72
    lines = [
        PdfText("Invoice", left, y, 22, "bold"),
        PdfText(invoice["account_name"] or "", left, y - 22, 12, "bold"),
    ]
    y -= 56
    facts = [
        ("Invoice number", invoice["number"] or invoice["id"]),
        ("Date of issue", _date(invoice["created"])),
        ("Date paid", _date(invoice["status_transitions"]["paid_at"] or invoice["created"])),
        ("Bill to", invoice["customer_email"] or invoice["customer_name"] or invoice["customer"]),
    ]
    facts += [("Tax ID", f"{t['type']} {t['value']}") for t in invoice["customer_tax_ids"]]
    for label, value in facts:
        lines += [PdfText(label, left, y, 10, "bold"), PdfText(str(value), left + 110, y, 10)]
        y -= 16
    y -= 20
    lines += [
        PdfText("Description", left, y, 10, "bold"),
        PdfText("Qty", right - 210, y, 10, "bold"),
        PdfText("Amount", right, y, 10, "mono", right=True),
    ]
    y -= 18
    for line in invoice["lines"]["data"]:
        lines += [
            PdfText(str(line["description"])[:60], left, y, 10),
            PdfText(str(line["quantity"]), right - 210, y, 10),
            PdfText(money(line["amount"]), right, y, 10, "mono", right=True),
        ]
        y -= 16
    y -= 12
    for label, amount in (
        ("Subtotal", invoice["subtotal"]),
        ("Tax", invoice["total"] - invoice["total_excluding_tax"]),
        ("Total", invoice["total"]),
        ("Amount paid", invoice["amount_paid"]),
    ):
        lines += [
            PdfText(label, right - 210, y, 10, "bold"),
            PdfText(money(amount), right, y, 10, "mono", right=True),
        ]
        y -= 16
    y -= 24
    lines.append(PdfText(f"Paid {money(invoice['amount_paid'])}", left, y, 14, "bold"))
    if invoice["footer"]:
        lines.append(PdfText(str(invoice["footer"])[:100], left, 96, 9))
    lines.append(
        PdfText(
            "Issued by a simulated Stripe account (test mode): not a real invoice.", left, 72, 8
        )
    )
    return one_page_pdf(lines, title=f"Invoice {invoice['number']}")
