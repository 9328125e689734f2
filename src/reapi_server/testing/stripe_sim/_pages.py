"""The pages a person sees: hosted checkout (Pay / Decline), hosted invoice, its PDF, receipts.

Plain HTML forms with a small inline stylesheet: no script, no external asset, readable from
phone width up. "Pay" completes the session and redirects to `success_url`; "Decline" records a
declined card and redirects to `cancel_url`; a delayed method ("bank debit") completes it unpaid.
"""

from __future__ import annotations

import re
import time
from html import escape
from urllib.parse import parse_qsl

from reapi.testing import SimResponse

from ._account import AUTOMATIC, Account, StripeObject
from ._checkout import (
    complete_session,
    decline_session,
    expire_due_sessions,
    redirect_url,
)
from ._customers import ASYNC_METHOD_TYPES, TEST_CARDS
from ._errors import StripeError
from ._invoices import invoice_pdf
from ._money import format_amount

__all__ = ["serve_page"]

_CHECKOUT = re.compile(r"/c/pay/(?P<id>cs_[A-Za-z0-9_]+)")
_INVOICE = re.compile(r"/invoice/(?P<id>in_[A-Za-z0-9]+)(?P<pdf>/pdf)?")
_RECEIPT = re.compile(r"/receipts/(?P<id>ch_[A-Za-z0-9]+)")

_STYLE = """
:root{--ink:#1a1f36;--muted:#5b6478;--line:#e3e8ee;--brand:#5146e8;--bad:#b3093a}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:#f6f8fb}
.test{background:#ffe3a3;color:#5c3b00;font-size:.8rem;font-weight:600;text-align:center;
padding:.4rem 1rem}
.layout{max-width:980px;margin:0 auto;padding:1.5rem 1rem 3rem;display:grid;gap:1.5rem}
.narrow{max-width:560px}
@media (min-width:800px){.layout{grid-template-columns:1fr 1fr;gap:4rem;padding:3rem 2rem}
.narrow{grid-template-columns:1fr}}
.merchant{font-weight:700;margin:0 0 1.25rem}
.muted{color:var(--muted);margin:0}
.total{font-size:2.4rem;font-weight:700;margin:0 0 1.25rem;letter-spacing:-.02em}
.rows{list-style:none;padding:0;margin:.75rem 0 0;border-top:1px solid var(--line)}
.rows li{display:flex;justify-content:space-between;gap:1rem;padding:.7rem 0;
border-bottom:1px solid var(--line)}
.rows .sum{font-weight:700}
.qty{color:var(--muted);font-size:.9rem;white-space:nowrap}
.card{background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(26,31,54,.12);padding:1.5rem}
h1{font-size:1.5rem;margin:0 0 .5rem}
h2{font-size:1.1rem;margin:0 0 1rem}
label,legend{display:block;font-size:.9rem;font-weight:600;margin:0 0 .35rem;padding:0}
input[type=email],input[type=text]{width:100%;font:inherit;padding:.7rem .8rem;
border:1px solid #c3cbd5;border-radius:8px;margin:0 0 1rem}
fieldset{border:0;padding:0;margin:0 0 .5rem}
.choice{display:flex;gap:.6rem;align-items:center;padding:.65rem .8rem;border:1px solid #c3cbd5;
border-radius:8px;margin:0 0 .5rem;font-weight:400}
.choice input{margin:0;width:1.1rem;height:1.1rem;flex:none;accent-color:var(--brand)}
button,.button{display:block;width:100%;font:inherit;font-weight:600;padding:.8rem 1rem;
border-radius:8px;margin-top:.75rem;cursor:pointer;min-height:48px;text-align:center;
text-decoration:none}
.primary{background:var(--brand);color:#fff;border:1px solid var(--brand)}
.secondary{background:#fff;color:var(--brand);border:1px solid var(--brand)}
.decline{background:#fff;color:var(--bad);border:1px solid #e9a6b8}
.note{font-size:.875rem;color:var(--muted);margin:.75rem 0 0}
.ok{color:#0a7a3d;font-weight:700}
"""


def _page(title: str, body: str, *, status: int = 200) -> SimResponse:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<div class="test">Test mode · simulated Stripe, no real money</div>'
        f"{body}</body></html>"
    )
    headers = {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"}
    return SimResponse(status, headers, html.encode())


def _message(title: str, text: str, link: str | None = None, label: str = "Continue") -> str:
    button = f'<a class="button primary" href="{escape(link)}">{escape(label)}</a>' if link else ""
    return (
        f'<main class="layout narrow"><section class="card"><h1>{escape(title)}</h1>'
        f'<p class="muted">{escape(text)}</p>{button}</section></main>'
    )


def _redirect(location: str) -> SimResponse:
    return SimResponse(303, {"location": location, "cache-control": "no-store"}, b"")


def serve_page(account: Account, method: str, path: str, body: bytes) -> SimResponse | None:
    """The answer for a page path, None when `path` is not one."""
    if match := _CHECKOUT.fullmatch(path):
        session = account.find(match["id"])
        if session is None or session.get("object") != "checkout.session":
            return _page(
                "Not found", _message("Not found", "No such checkout session."), status=404
            )
        if method == "POST":
            return _checkout_action(account, session, body)
        return _checkout_page(account, session)
    if match := _INVOICE.fullmatch(path):
        invoice = account.find(match["id"])
        if invoice is None or invoice.get("object") != "invoice":
            return _page("Not found", _message("Not found", "No such invoice."), status=404)
        if match["pdf"]:
            filename = f"Invoice-{invoice['number']}.pdf"
            headers = {
                "content-type": "application/pdf",
                "content-disposition": f'inline; filename="{filename}"',
            }
            return SimResponse(200, headers, invoice_pdf(account, invoice))
        return _invoice_page(account, invoice)
    if match := _RECEIPT.fullmatch(path):
        charge = account.find(match["id"])
        if charge is None or charge.get("object") != "charge":
            return _page("Not found", _message("Not found", "No such receipt."), status=404)
        return _receipt_page(account, charge)
    return None


# -- checkout ----------------------------------------------------------------------------------
def _checkout_page(account: Account, session: StripeObject) -> SimResponse:
    expire_due_sessions(account)
    currency = session["currency"]
    total = format_amount(session["amount_total"], currency)
    if session["status"] != "open":
        return _closed(session)
    items = "".join(
        f"<li><span>{escape(str(item['description']))}"
        f' <span class="qty">&times; {item["quantity"]}</span></span>'
        f"<span>{format_amount(item['amount_total'], currency)}</span></li>"
        for item in session["_line_items"]
    )
    tax_row = ""
    if session["automatic_tax"]["enabled"]:
        tax = format_amount(session["total_details"]["amount_tax"], currency)
        tax_row = f"<li><span>Tax</span><span>{tax}</span></li>"
    email = session["customer_email"]
    if email is None and session["customer"]:
        email = account.get(session["customer"], "customer")["email"]
    cards = "".join(
        f'<label class="choice"><input type="radio" name="card" value="{key}"'
        f"{' checked' if key == '4242' else ''}>{escape(card.label)}</label>"
        for key, card in TEST_CARDS.items()
    )
    tax_id = ""
    if session["tax_id_collection"]["enabled"]:
        tax_id = (
            '<label for="tax_id">Tax ID (optional, e.g. an EU VAT number)</label>'
            '<input id="tax_id" name="tax_id" type="text" autocomplete="off">'
        )
    saved = ""
    if session["_intent_data"]["setup_future_usage"]:
        saved = (
            f'<p class="note">Your card will be saved so that {escape(account.name)} can charge'
            " it later (for example an automatic top-up).</p>"
        )
    later = ""
    if any(t in ASYNC_METHOD_TYPES for t in session["payment_method_types"]):
        later = (
            '<button class="secondary" type="submit" name="action" value="pay_later">'
            "Pay by bank debit (settles later)</button>"
        )
    body = f"""<main class="layout">
<section><p class="merchant">{escape(account.name)}</p>
<p class="muted">Pay {escape(account.name)}</p><p class="total">{total}</p>
<ul class="rows">{items}{tax_row}
<li class="sum"><span>Total due</span><span>{total}</span></li></ul>
</section>
<section class="card"><h2>Pay with card</h2>
<form method="post" action="/c/pay/{session["id"]}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" required
 value="{escape(email or "")}" placeholder="you@example.com">
<fieldset><legend>Test card</legend>{cards}</fieldset>
{tax_id}{saved}
<button class="primary" type="submit" name="action" value="pay">Pay {total}</button>
{later}
<button class="decline" type="submit" name="action" value="decline" formnovalidate>Decline</button>
<p class="note">“Decline” acts as a declined card and returns you to the shop.</p>
</form></section></main>"""
    return _page(f"Pay {account.name} · {total}", body)


def _closed(session: StripeObject) -> SimResponse:
    if session["status"] == "complete":
        link = redirect_url(session["success_url"], session["id"])
        text = "This checkout session is already complete."
        return _page("Payment complete", _message("Payment complete", text, link))
    link = redirect_url(session["cancel_url"], session["id"])
    text = "This checkout session has expired. Start again from the shop."
    return _page("Session expired", _message("Session expired", text, link, "Back"), status=410)


def _checkout_action(account: Account, session: StripeObject, body: bytes) -> SimResponse:
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    action = form.get("action", "")
    email = form.get("email", "").strip()[:200] or None
    try:
        if action == "decline":
            decline_session(account, session, email=email, origin=AUTOMATIC)
            target = redirect_url(session["cancel_url"], session["id"])
            if target is None:
                return _page("Declined", _message("Payment declined", "Your card was declined."))
            return _redirect(target)
        if action not in ("pay", "pay_later"):
            return _checkout_page(account, session)
        complete_session(
            account,
            session,
            email=email,
            card=form.get("card") or "4242",
            tax_id=form.get("tax_id", "").strip()[:40] or None,
            pay_later=action == "pay_later",
        )
    except StripeError as error:
        if session["status"] != "open":
            return _closed(session)
        return _page("Error", _message("Payment failed", error.message), status=400)
    target = redirect_url(session["success_url"], session["id"])
    if target is None:
        return _page("Paid", _message("Payment complete", "Thank you for your payment."))
    return _redirect(target)


# -- invoices and receipts ---------------------------------------------------------------------
def _date(timestamp: int | None) -> str:
    return time.strftime("%d %B %Y", time.gmtime(timestamp or 0))


def _invoice_page(account: Account, invoice: StripeObject) -> SimResponse:
    currency = invoice["currency"]
    lines = "".join(
        f"<li><span>{escape(str(line['description']))}"
        f' <span class="qty">&times; {line["quantity"]}</span></span>'
        f"<span>{format_amount(line['amount'], currency)}</span></li>"
        for line in invoice["lines"]["data"]
    )
    paid = format_amount(invoice["amount_paid"], currency)
    tax_ids = "".join(f"<br>Tax ID {escape(str(t['value']))}" for t in invoice["customer_tax_ids"])
    receipt = ""
    for payment in account.all("invoice_payment", invoice=invoice["id"]):
        intent = account.find(payment["payment"]["payment_intent"]) or {}
        if intent.get("latest_charge"):
            receipt = (
                f'<a class="button secondary" href="/receipts/{intent["latest_charge"]}">'
                "View receipt</a>"
            )
    body = f"""<main class="layout narrow"><section class="card">
<p class="merchant">{escape(account.name)}</p>
<h1>Invoice {escape(str(invoice["number"]))}</h1>
<p class="ok">Paid {paid} on {_date(invoice["status_transitions"]["paid_at"])}</p>
<p class="muted">Billed to {escape(str(invoice["customer_email"] or ""))}{tax_ids}</p>
<ul class="rows">{lines}<li class="sum"><span>Amount paid</span><span>{paid}</span></li></ul>
<a class="button primary" href="/invoice/{invoice["id"]}/pdf">Download invoice (PDF)</a>
{receipt}</section></main>"""
    return _page(f"Invoice {invoice['number']}", body)


def _receipt_page(account: Account, charge: StripeObject) -> SimResponse:
    currency = charge["currency"]
    details = charge["payment_method_details"]
    method = details.get(details["type"], {})
    rows = [
        ("Amount paid", format_amount(charge["amount"], currency)),
        ("Date paid", _date(charge["created"])),
        (
            "Payment method",
            f"{method.get('brand', details['type']).capitalize()} •••• {method.get('last4', '')}",
        ),
    ]
    if charge["amount_refunded"]:
        rows.append(("Refunded", format_amount(charge["amount_refunded"], currency)))
    items = "".join(f"<li><span>{k}</span><span>{escape(str(v))}</span></li>" for k, v in rows)
    status = {"succeeded": "Paid", "pending": "Pending", "failed": "Failed"}[charge["status"]]
    if charge["refunded"]:
        status = "Refunded"
    body = f"""<main class="layout narrow"><section class="card">
<p class="merchant">{escape(account.name)}</p><h1>Receipt</h1>
<p class="muted">{escape(status)}</p><ul class="rows">{items}</ul></section></main>"""
    return _page(f"Receipt from {account.name}", body)
