"""One simulated Stripe account: its objects, its events, and how they are rendered.

Objects are kept as the JSON Stripe would answer, with related objects referenced by id; keys
starting with `_` are the simulator's own bookkeeping and never leave it. `render` applies
Stripe's `expand[]` (dotted paths, `data.` inside lists) and its includable fields.
One re-entrant lock guards everything: the HTTP thread, the tests' thread and the webhook
workers all take it, never while waiting on the network.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._clock import SimClock, new_id
from ._errors import invalid, no_such
from ._forms import Params

__all__ = ["AUTOMATIC", "Account", "Origin", "StripeObject", "list_object", "public_copy"]

StripeObject = dict[str, Any]
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
#: A human-readable name per object type, for "No such ..." messages.
_LABELS = {
    "checkout.session": "checkout.session",
    "payment_intent": "payment_intent",
    "payment_method": "PaymentMethod",
    "invoice_payment": "invoice payment",
}


@dataclass(frozen=True, slots=True)
class Origin:
    """The API request behind a change (an event's `request`); both None for automatic ones."""

    request_id: str | None = None
    idempotency_key: str | None = None


#: Changes made by the hosted pages, the clock or the control API, not by an API request.
AUTOMATIC = Origin()


def public_copy(value: Any) -> Any:
    """A deep copy without the simulator's `_` keys."""
    if isinstance(value, dict):
        return {k: public_copy(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [public_copy(v) for v in value]
    return value


def list_object(items: Sequence[StripeObject], url: str, *, has_more: bool = False) -> StripeObject:
    return {"object": "list", "data": list(items), "has_more": has_more, "url": url}


class Account:
    def __init__(self, *, name: str, api_version: str, clock: SimClock) -> None:
        self.name = name
        self.api_version = api_version
        self.clock = clock
        self.lock = threading.RLock()
        self._objects: dict[str, StripeObject] = {}
        self._listeners: list[Callable[[StripeObject], None]] = []
        #: Where the hosted pages are served (checkout, invoices, receipts), set by the simulator.
        self.public_url = "http://127.0.0.1"
        #: Outcomes for the next off-session confirmations, first in first out (else the card's).
        self.next_outcomes: deque[str] = deque()
        #: Stripe Tax, simulated: this percentage on top of every price when a session has
        #: `automatic_tax[enabled]` (0: no tax, as before).
        self.tax_percent = 0.0

    # -- storage -----------------------------------------------------------------------------
    def add(self, obj: StripeObject) -> StripeObject:
        with self.lock:
            self._objects[obj["id"]] = obj
        return obj

    def find(self, object_id: str) -> StripeObject | None:
        with self.lock:
            return self._objects.get(object_id)

    def get(self, object_id: str, kind: str, *, param: str = "id") -> StripeObject:
        """The stored object of that type, or Stripe's 404."""
        with self.lock:
            obj = self._objects.get(object_id)
        if obj is None or obj.get("object") != kind or obj.get("deleted"):
            raise no_such(_LABELS.get(kind, kind), object_id, param=param)
        return obj

    def all(self, kind: str, **equal: Any) -> list[StripeObject]:
        """Objects of a type, newest first, whose fields equal the given non-None values."""
        wanted = {k: v for k, v in equal.items() if v is not None}
        with self.lock:
            found = [
                obj
                for obj in self._objects.values()
                if obj.get("object") == kind
                and not obj.get("deleted")
                and all(obj.get(k) == v for k, v in wanted.items())
            ]
        found.reverse()
        return found

    def forget(self, object_id: str) -> None:
        with self.lock:
            self._objects.pop(object_id, None)

    # -- events ------------------------------------------------------------------------------
    def on_event(self, listener: Callable[[StripeObject], None]) -> None:
        """`listener(event)` runs under the lock for every new event (it must not block)."""
        self._listeners.append(listener)

    def emit(
        self,
        event_type: str,
        obj: StripeObject,
        origin: Origin = AUTOMATIC,
        *,
        previous: dict[str, Any] | None = None,
    ) -> StripeObject:
        """Record an event with a snapshot of `obj` as it is now, and hand it to the listeners."""
        with self.lock:
            data: StripeObject = {"object": public_copy(obj)}
            if previous:
                data["previous_attributes"] = public_copy(previous)
            event: StripeObject = {
                "id": new_id("evt_"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.clock.now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": origin.request_id, "idempotency_key": origin.idempotency_key},
                "type": event_type,
            }
            self.add(event)
            for listener in self._listeners:
                listener(event)
        return event

    # -- rendering ---------------------------------------------------------------------------
    def render(self, obj: StripeObject, expand: Sequence[str] = ()) -> StripeObject:
        """The object as the API answers it, with `expand` applied (400 for a bad path)."""
        with self.lock:
            if obj.get("object") == "list":
                inner = [p.removeprefix("data.") for p in expand if p.startswith("data.")]
                rendered: StripeObject = public_copy({**obj, "data": []})
                rendered["data"] = [self.render(item, inner) for item in obj["data"]]
                return rendered
            out: StripeObject = public_copy(obj)
            for path in expand:
                self._expand(out, obj, path.split("."), path)
            return out

    def _expand(
        self, target: StripeObject, stored: StripeObject | None, parts: list[str], path: str
    ) -> None:
        head, rest = parts[0], parts[1:]
        if head not in target and stored is not None:
            included = self._include(stored, head)
            if included is not None:
                target[head] = included
        value = target.get(head)
        if value is None and head in target:
            return  # a null reference stays null
        source: StripeObject | None = None
        if isinstance(value, str) and value in self._objects:
            source = self._objects[value]
            value = target[head] = public_copy(source)
        if not isinstance(value, dict):
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        if not rest:
            return
        if value.get("object") == "list" and rest[0] == "data":
            for item in value["data"]:
                self._expand(item, self._objects.get(item.get("id", "")), rest[1:], path)
        else:
            self._expand(value, source, rest, path)

    def _include(self, stored: StripeObject, field: str) -> StripeObject | None:
        """Fields Stripe leaves out unless expanded (its "includable" properties)."""
        kind, object_id = stored.get("object"), stored.get("id", "")
        if kind == "checkout.session" and field == "line_items":
            url = f"/v1/checkout/sessions/{object_id}/line_items"
            return list_object(public_copy(stored["_line_items"]), url)
        if kind == "charge" and field == "refunds":
            refunds = public_copy(self.all("refund", charge=object_id))
            return list_object(refunds, f"/v1/charges/{object_id}/refunds")
        if kind == "invoice" and field == "payments":
            payments = public_copy(self.all("invoice_payment", invoice=object_id))
            return list_object(payments, f"/v1/invoices/{object_id}/payments")
        return None

    def page(self, items: list[StripeObject], params: Params, url: str) -> StripeObject:
        """A list page: `limit` (1-100), `starting_after` / `ending_before` ids, newest first."""
        limit = params.integer("limit", minimum=1) or DEFAULT_LIMIT
        if limit > MAX_LIMIT:
            raise invalid(f"This value must be less than or equal to {MAX_LIMIT}.", param="limit")
        ids = [item["id"] for item in items]
        after, before = params.text("starting_after"), params.text("ending_before")
        if after is not None:
            if after not in ids:
                raise no_such("object", after, param="starting_after")
            start = ids.index(after) + 1
            return list_object(
                items[start : start + limit], url, has_more=start + limit < len(items)
            )
        if before is not None:
            if before not in ids:
                raise no_such("object", before, param="ending_before")
            end = ids.index(before)
            return list_object(items[max(0, end - limit) : end], url, has_more=end - limit > 0)
        return list_object(items[:limit], url, has_more=len(items) > limit)


def created_filter(params: Params) -> Callable[[StripeObject], bool]:
    """`created=T` or `created[gt|gte|lt|lte]=T`, as Stripe's list endpoints take it."""
    if "created" not in params:
        return lambda obj: True
    if isinstance(params.data["created"], str):
        exact = params.required_integer("created")
        return lambda obj: bool(obj["created"] == exact)
    bounds = params.child("created").only(("gt", "gte", "lt", "lte"))
    gt, gte = bounds.integer("gt"), bounds.integer("gte")
    lt, lte = bounds.integer("lt"), bounds.integer("lte")

    def keep(obj: StripeObject) -> bool:
        created = int(obj["created"])
        return (
            (gt is None or created > gt)
            and (gte is None or created >= gte)
            and (lt is None or created < lt)
            and (lte is None or created <= lte)
        )

    return keep
