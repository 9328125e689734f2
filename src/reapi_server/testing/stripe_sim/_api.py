"""The `/v1` API: authentication, routes, idempotency and `expand[]` around the domain modules."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reapi.testing import SimResponse, json_answer

from ._account import Account, Origin, StripeObject, created_filter
from ._checkout import create_session, expire_due_sessions, expire_session
from ._clock import new_id
from ._customers import (
    attach_payment_method,
    create_customer,
    detach_payment_method,
    update_customer,
)
from ._disputes import close_dispute, update_dispute
from ._errors import StripeError
from ._forms import Params, decode_form
from ._idempotency import IdempotencyKeys
from ._payments import cancel_intent, confirm_from, create_intent, update_intent
from ._refunds import create_refund, update_refund

__all__ = ["StripeApi"]


@dataclass(frozen=True, slots=True)
class Call:
    params: Params
    ids: dict[str, str]
    origin: Origin


Handler = Callable[[Account, Call], StripeObject]
_PAGING = ("limit", "starting_after", "ending_before", "created")


def _listing(kind: str, url: str, filters: Mapping[str, str] | None = None) -> Handler:
    """A list endpoint: `filters` maps query parameters to the fields they must equal."""
    filters = filters or {}

    def handler(account: Account, call: Call) -> StripeObject:
        params = call.params.only((*_PAGING, *filters))
        equal = {field: params.text(param) for param, field in filters.items()}
        keep = created_filter(params)
        items = [obj for obj in account.all(kind, **equal) if keep(obj)]
        return account.page(items, params, url)

    return handler


def _retrieve(kind: str) -> Handler:
    def handler(account: Account, call: Call) -> StripeObject:
        call.params.only(())
        return account.get(call.ids["id"], kind)

    return handler


def _update(
    kind: str, change: Callable[[Account, StripeObject, Params, Origin], StripeObject]
) -> Handler:
    def handler(account: Account, call: Call) -> StripeObject:
        return change(account, account.get(call.ids["id"], kind), call.params, call.origin)

    return handler


def _create(make: Callable[[Account, Params, Origin], StripeObject]) -> Handler:
    return lambda account, call: make(account, call.params, call.origin)


# -- handlers that do not fit the patterns above ---------------------------------------------------
def _delete_customer(account: Account, call: Call) -> StripeObject:
    call.params.only(())
    customer = account.get(call.ids["id"], "customer")
    with account.lock:
        account.emit("customer.deleted", customer, call.origin)
        customer["deleted"] = True
    return {"id": customer["id"], "object": "customer", "deleted": True}


def _customer_methods(account: Account, call: Call) -> StripeObject:
    params = call.params.only(("limit", "starting_after", "ending_before", "type"))
    customer = account.get(call.ids["id"], "customer")
    methods = account.all("payment_method", customer=customer["id"], type=params.text("type"))
    return account.page(methods, params, f"/v1/customers/{customer['id']}/payment_methods")


def _attach(account: Account, call: Call) -> StripeObject:
    params = call.params.only(("customer",))
    method = account.get(call.ids["id"], "payment_method")
    customer = account.get(params.required_text("customer"), "customer", param="customer")
    return attach_payment_method(account, method, customer, call.origin)


def _detach(account: Account, call: Call) -> StripeObject:
    call.params.only(())
    return detach_payment_method(
        account, account.get(call.ids["id"], "payment_method"), call.origin
    )


def _line_items(account: Account, call: Call) -> StripeObject:
    params = call.params.only(("limit", "starting_after", "ending_before"))
    session = account.get(call.ids["id"], "checkout.session")
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    return account.page(session["_line_items"], params, url)


def _expire(account: Account, call: Call) -> StripeObject:
    call.params.only(())
    session = account.get(call.ids["id"], "checkout.session", param="session")
    return expire_session(account, session, call.origin)


def _charge_refunds(account: Account, call: Call) -> StripeObject:
    params = call.params.only(("limit", "starting_after", "ending_before"))
    charge = account.get(call.ids["id"], "charge")
    refunds = account.all("refund", charge=charge["id"])
    return account.page(refunds, params, f"/v1/charges/{charge['id']}/refunds")


def _invoice_lines(account: Account, call: Call) -> StripeObject:
    params = call.params.only(("limit", "starting_after", "ending_before"))
    invoice = account.get(call.ids["id"], "invoice")
    return account.page(invoice["lines"]["data"], params, f"/v1/invoices/{invoice['id']}/lines")


def _invoice_payments(account: Account, call: Call) -> StripeObject:
    params = call.params.only(("limit", "starting_after", "ending_before", "invoice", "payment"))
    payment = params.child("payment").only(("payment_intent", "type"))
    intent_id = payment.text("payment_intent")
    items = [
        p
        for p in account.all("invoice_payment", invoice=params.text("invoice"))
        if intent_id is None or p["payment"]["payment_intent"] == intent_id
    ]
    return account.page(items, params, "/v1/invoice_payments")


def _close_dispute(account: Account, call: Call) -> StripeObject:
    call.params.only(())
    return close_dispute(account, account.get(call.ids["id"], "dispute"), "lost", call.origin)


def _list_events(account: Account, call: Call) -> StripeObject:
    params = call.params.only((*_PAGING, "type", "types", "delivery_success"))
    wanted = params.strings("types") or ([params.text("type") or "*"])
    keep = created_filter(params)

    def matches(event_type: str) -> bool:
        return any(
            w == "*" or w == event_type or (w.endswith(".*") and event_type.startswith(w[:-1]))
            for w in wanted
        )

    items = [e for e in account.all("event") if matches(e["type"]) and keep(e)]
    return account.page(items, params, "/v1/events")


_ID = r"(?P<id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("POST", "/v1/customers", _create(create_customer)),
        ("GET", "/v1/customers", _listing("customer", "/v1/customers", {"email": "email"})),
        ("GET", f"/v1/customers/{_ID}", _retrieve("customer")),
        ("POST", f"/v1/customers/{_ID}", _update("customer", update_customer)),
        ("DELETE", f"/v1/customers/{_ID}", _delete_customer),
        ("GET", f"/v1/customers/{_ID}/payment_methods", _customer_methods),
        (
            "GET",
            "/v1/payment_methods",
            _listing(
                "payment_method", "/v1/payment_methods", {"customer": "customer", "type": "type"}
            ),
        ),
        ("GET", f"/v1/payment_methods/{_ID}", _retrieve("payment_method")),
        ("POST", f"/v1/payment_methods/{_ID}/attach", _attach),
        ("POST", f"/v1/payment_methods/{_ID}/detach", _detach),
        ("POST", "/v1/checkout/sessions", _create(create_session)),
        (
            "GET",
            "/v1/checkout/sessions",
            _listing(
                "checkout.session",
                "/v1/checkout/sessions",
                {"customer": "customer", "payment_intent": "payment_intent", "status": "status"},
            ),
        ),
        ("GET", f"/v1/checkout/sessions/{_ID}", _retrieve("checkout.session")),
        ("GET", f"/v1/checkout/sessions/{_ID}/line_items", _line_items),
        ("POST", f"/v1/checkout/sessions/{_ID}/expire", _expire),
        ("POST", "/v1/payment_intents", _create(create_intent)),
        (
            "GET",
            "/v1/payment_intents",
            _listing("payment_intent", "/v1/payment_intents", {"customer": "customer"}),
        ),
        ("GET", f"/v1/payment_intents/{_ID}", _retrieve("payment_intent")),
        ("POST", f"/v1/payment_intents/{_ID}", _update("payment_intent", update_intent)),
        ("POST", f"/v1/payment_intents/{_ID}/confirm", _update("payment_intent", confirm_from)),
        ("POST", f"/v1/payment_intents/{_ID}/cancel", _update("payment_intent", cancel_intent)),
        (
            "GET",
            "/v1/charges",
            _listing(
                "charge",
                "/v1/charges",
                {"customer": "customer", "payment_intent": "payment_intent"},
            ),
        ),
        ("GET", f"/v1/charges/{_ID}", _retrieve("charge")),
        ("GET", f"/v1/charges/{_ID}/refunds", _charge_refunds),
        ("POST", "/v1/refunds", _create(create_refund)),
        (
            "GET",
            "/v1/refunds",
            _listing(
                "refund", "/v1/refunds", {"charge": "charge", "payment_intent": "payment_intent"}
            ),
        ),
        ("GET", f"/v1/refunds/{_ID}", _retrieve("refund")),
        ("POST", f"/v1/refunds/{_ID}", _update("refund", update_refund)),
        (
            "GET",
            "/v1/invoices",
            _listing("invoice", "/v1/invoices", {"customer": "customer", "status": "status"}),
        ),
        ("GET", f"/v1/invoices/{_ID}", _retrieve("invoice")),
        ("GET", f"/v1/invoices/{_ID}/lines", _invoice_lines),
        ("GET", "/v1/invoice_payments", _invoice_payments),
        (
            "GET",
            "/v1/disputes",
            _listing(
                "dispute", "/v1/disputes", {"charge": "charge", "payment_intent": "payment_intent"}
            ),
        ),
        ("GET", f"/v1/disputes/{_ID}", _retrieve("dispute")),
        ("POST", f"/v1/disputes/{_ID}", _update("dispute", update_dispute)),
        ("POST", f"/v1/disputes/{_ID}/close", _close_dispute),
        ("GET", "/v1/events", _list_events),
        ("GET", f"/v1/events/{_ID}", _retrieve("event")),
        ("GET", f"/v1/products/{_ID}", _retrieve("product")),
    ]
]


def _masked(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 4) + key[-4:] if len(key) > 12 else "*" * len(key)


class StripeApi:
    """Answers `/v1/...` for one account and one secret key."""

    def __init__(self, account: Account, secret_key: str) -> None:
        self.account = account
        self.secret_key = secret_key
        self.keys = IdempotencyKeys(account.clock)

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":  # `curl -u sk_test_...:` sends the key as the user name
            try:
                key = base64.b64decode(key).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the"
                " Authorization header, using Bearer auth (e.g. 'Authorization: Bearer"
                " YOUR_SECRET_KEY').",
            )
        if key != self.secret_key:
            raise StripeError(
                401, f"Invalid API Key provided: {_masked(key)}", code="api_key_invalid"
            )

    def serve(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> SimResponse:
        request_id = new_id("req_", 14)
        out_headers = {
            "request-id": request_id,
            "stripe-version": headers.get("stripe-version") or self.account.api_version,
        }
        key = headers.get("idempotency-key") if method == "POST" else None
        endpoint = f"{method} {path}"
        params: dict[str, Any] = {}
        try:
            self._authenticate(headers)
            handler, ids = self._route(method, path)
            raw = body.decode("utf-8", errors="replace") if method == "POST" else query
            params = decode_form(raw)
            if key is not None:
                replayed = self.keys.replay(key, endpoint, params)
                if replayed is not None:
                    return replayed
            answer = self._run(handler, Call(Params(params), ids, Origin(request_id, key)))
        except StripeError as error:
            answer = json_answer(error.status, error.body())
        answer = SimResponse(answer.status, {**answer.headers, **out_headers}, answer.body)
        if key is not None:
            self.keys.save(key, endpoint, params, answer, request_id)
        return answer

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for route_method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler, match.groupdict()
        raise StripeError(
            404,
            f"Unrecognized request URL ({method}: {path[:200]}). Please see"
            " https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def _run(self, handler: Handler, call: Call) -> SimResponse:
        expand = call.params.strings("expand")
        with self.account.lock:
            expire_due_sessions(self.account)
            result = handler(self.account, call)
            return json_answer(200, self.account.render(result, expand))
