"""`StripeSimulator`: the account, its API, its pages, its webhooks and a Python API for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reapi.testing import Answer, Fault, FaultState, SimServer, json_answer

from ._account import Account, Origin, StripeObject, public_copy
from ._api import StripeApi
from ._checkout import (
    complete_session,
    decline_session,
    expire_due_sessions,
    expire_session,
    settle_session,
)
from ._clock import SimClock
from ._control import serve_control
from ._disputes import close_dispute, open_dispute
from ._forms import Params
from ._pages import serve_page
from ._payments import PAYMENT_OUTCOMES, settle_pending
from ._refunds import create_refund
from ._webhooks import DEFAULT_RETRY_DELAYS, Delivery, Dispatcher, Tamper, WebhookEndpoint

__all__ = ["DEFAULT_SECRET_KEY", "StripeSimulator"]

#: The secret key the simulator accepts unless told otherwise.
DEFAULT_SECRET_KEY = "sk_test_reapi_simulator"
CONTROL_PREFIX = "/__sim__/stripe"


def _sdk_api_version() -> str:
    """The API version the installed `stripe` package pins: the one its types describe."""
    import stripe

    return str(stripe.api_version)


class StripeSimulator:
    """A simulated Stripe account on loopback, for tests and the demo.

        with StripeSimulator(webhooks=[WebhookEndpoint(url, "whsec_...")]) as sim:
            client = stripe.StripeClient(sim.secret_key, base_addresses={"api": sim.base_url})
            session = client.v1.checkout.sessions.create(params={...})
            sim.complete_session(session.id)        # or a person presses "Pay" at session.url
            sim.wait_idle()                         # every webhook delivered (or given up)

    Thread-safe: the HTTP thread, the caller's thread and the webhook workers share one lock,
    never held while waiting on the network. Methods return copies of Stripe's JSON objects.
    """

    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhooks: Iterable[WebhookEndpoint] = (),
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        delivery_timeout: float = 10.0,
        stale_age: int = 600,
        account_name: str = "reapi demo",
        api_version: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        tax_percent: float = 0.0,
    ) -> None:
        self.secret_key = secret_key
        self.clock = SimClock()
        self.account = Account(
            name=account_name, api_version=api_version or _sdk_api_version(), clock=self.clock
        )
        self.account.tax_percent = tax_percent
        self.api = StripeApi(self.account, secret_key)
        self.webhooks = Dispatcher(
            self.account, retry_delays=retry_delays, timeout=delivery_timeout, stale_age=stale_age
        )
        for endpoint in webhooks:
            self.webhooks.add_endpoint(endpoint)
        self.server = SimServer(self, host, port)
        self._public_url = public_url.rstrip("/") if public_url else None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The API base (`stripe.StripeClient(..., base_addresses={"api": sim.base_url})`)."""
        return self.server.base_url

    def start(self) -> StripeSimulator:
        self.server.start()
        self.account.public_url = self._public_url or self.server.base_url
        return self

    def stop(self) -> None:
        self.webhooks.stop()
        self.server.stop()

    def __enter__(self) -> StripeSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- SimServer's app protocol --------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer:
        if self._public_url is None:
            self.account.public_url = origin
        if path.startswith("/v1/"):
            return self.api.serve(method, path, query, headers, body)
        with self.account.lock:
            page = serve_page(self.account, "GET" if method == "HEAD" else method, path, body)
        if page is not None:
            return page
        error = {
            "message": f"Unrecognized request URL ({method}: {path[:200]}).",
            "type": "invalid_request_error",
        }
        return json_answer(404, {"error": error})

    def control(self, method: str, path: str, query: str, body: bytes) -> Answer | None:
        """`/__sim__/stripe/...` (see `_control`); None for other control paths."""
        if path != CONTROL_PREFIX and not path.startswith(CONTROL_PREFIX + "/"):
            return None
        return serve_control(self, method, path.removeprefix(CONTROL_PREFIX), body)

    def status_fault_answer(self, state: FaultState) -> Answer | None:
        """5xx and 429 faults in Stripe's words."""
        if state.fault is Fault.RATE_LIMIT:
            message = (
                "Too many requests hit the API too quickly. We recommend an exponential backoff"
                " of your requests."
            )
            error = {"message": message, "type": "invalid_request_error", "code": "rate_limit"}
            return json_answer(429, {"error": error})
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if state.fault is Fault.ERROR_500 else 503
            error = {"message": "An unknown error occurred", "type": "api_error"}
            return json_answer(status, {"error": error})
        return None

    # -- objects -----------------------------------------------------------------------------
    def get(self, object_id: str, *, expand: Sequence[str] = ()) -> StripeObject:
        """Any object by id, as the API renders it (KeyError if unknown)."""
        with self.account.lock:
            obj = self.account.find(object_id)
            if obj is None:
                raise KeyError(object_id)
            return self.account.render(obj, expand)

    def objects(self, kind: str, **equal: Any) -> list[StripeObject]:
        """Objects of a type (`"charge"`, `"checkout.session"`...), oldest first."""
        with self.account.lock:
            return [public_copy(o) for o in reversed(self.account.all(kind, **equal))]

    def events(self, event_type: str | None = None) -> list[StripeObject]:
        """Every event so far, oldest first (optionally of one type)."""
        return self.objects("event", type=event_type)

    def last_event(self, event_type: str) -> StripeObject:
        events = self.events(event_type)
        if not events:
            raise KeyError(f"no {event_type} event yet")
        return events[-1]

    # -- what a customer or the bank does ------------------------------------------------------
    def complete_session(
        self,
        session_id: str,
        *,
        email: str | None = None,
        card: str = "4242",
        tax_id: str | None = None,
        pay_later: bool = False,
    ) -> StripeObject:
        """Pay like the hosted page's "Pay" (`card`: "4242", "3184" or "0341", see
        `TEST_CARDS`); `pay_later`: a bank debit, completed unpaid until `settle_session`."""
        session = self.account.get(session_id, "checkout.session")
        complete_session(
            self.account, session, email=email, card=card, tax_id=tax_id, pay_later=pay_later
        )
        return self.get(session_id)

    def decline_session(self, session_id: str, *, email: str | None = None) -> StripeObject:
        """Like the page's "Decline": a declined card; the session stays open."""
        decline_session(self.account, self.account.get(session_id, "checkout.session"), email=email)
        return self.get(session_id)

    def settle_session(self, session_id: str, *, succeeded: bool) -> StripeObject:
        """The delayed payment of a session completed with `pay_later` succeeds or fails."""
        session = self.account.get(session_id, "checkout.session")
        settle_session(self.account, session, succeeded=succeeded)
        return self.get(session_id)

    def settle_payment_intent(self, intent_id: str, *, succeeded: bool) -> StripeObject:
        """A `processing` PaymentIntent (a bank debit charged off-session) succeeds or fails,
        with the events Stripe sends (`payment_intent.succeeded` / `.payment_failed`)."""
        with self.account.lock:
            intent = self.account.get(intent_id, "payment_intent")
            settle_pending(self.account, intent, Origin(), succeeded=succeeded)
        return self.get(intent_id)

    def set_tax_percent(self, percent: float) -> None:
        """Stripe Tax's rate for sessions with `automatic_tax` completed from now on."""
        if not 0 <= percent < 100:
            raise ValueError("the tax rate is a percentage from 0 to under 100")
        self.account.tax_percent = percent

    def expire_session(self, session_id: str) -> StripeObject:
        session = self.account.get(session_id, "checkout.session")
        expire_session(self.account, session, Origin())
        return self.get(session_id)

    def queue_off_session_outcome(self, outcome: str, count: int = 1) -> None:
        """The next `count` off-session confirmations end so: "authentication_required",
        "card_declined", "insufficient_funds" or "succeeded" (then the card decides again)."""
        if outcome not in PAYMENT_OUTCOMES:
            raise ValueError(f"outcome is one of {', '.join(PAYMENT_OUTCOMES)}")
        with self.account.lock:
            self.account.next_outcomes.extend([outcome] * count)

    def clear_off_session_outcomes(self) -> None:
        with self.account.lock:
            self.account.next_outcomes.clear()

    def refund(
        self, charge_id: str, *, amount: int | None = None, reason: str | None = None
    ) -> StripeObject:
        """A refund made outside the integration (e.g. in the dashboard)."""
        params: dict[str, Any] = {"charge": charge_id}
        if amount is not None:
            params["amount"] = str(amount)
        if reason is not None:
            params["reason"] = reason
        refund = create_refund(self.account, Params(params), Origin())
        return public_copy(refund)  # type: ignore[no-any-return]

    def open_dispute(
        self,
        charge_id: str,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        inquiry: bool = False,
    ) -> StripeObject:
        """The cardholder disputes the charge (all of it unless `amount`); `inquiry`: the bank
        only asks for information first (`warning_needs_response`)."""
        charge = self.account.get(charge_id, "charge", param="charge")
        dispute = open_dispute(self.account, charge, amount=amount, reason=reason, inquiry=inquiry)
        return self.get(dispute["id"])

    def close_dispute(self, dispute_id: str, outcome: str) -> StripeObject:
        """The bank decides: "won" (funds reinstated) or "lost"; an inquiry: "warning_closed"."""
        close_dispute(self.account, self.account.get(dispute_id, "dispute"), outcome)
        return self.get(dispute_id)

    # -- webhooks ----------------------------------------------------------------------------
    def add_webhook_endpoint(
        self, url: str, secret: str | None = None, enabled_events: Sequence[str] = ("*",)
    ) -> WebhookEndpoint:
        endpoint = WebhookEndpoint(url, enabled_events=tuple(enabled_events))
        if secret:
            endpoint.secret = secret
        return self.webhooks.add_endpoint(endpoint)

    def remove_webhook_endpoint(self, endpoint_id: str) -> None:
        self.webhooks.remove_endpoint(endpoint_id)

    def roll_webhook_secret(
        self, endpoint_id: str, secret: str | None = None, *, keep_old: bool = True
    ) -> WebhookEndpoint:
        """A new signing secret; with `keep_old`, deliveries carry a `v1` for both."""
        return self.webhooks.roll_secret(endpoint_id, secret, keep_old=keep_old)

    @property
    def webhook_endpoints(self) -> list[WebhookEndpoint]:
        return list(self.webhooks.endpoints.values())

    def deliveries(self, event_id: str | None = None) -> list[Delivery]:
        return self.webhooks.deliveries(event_id)

    def resend(self, event_id: str, endpoint_id: str | None = None) -> list[Delivery]:
        """Deliver the event once more (a duplicate), now; returns at once (`Delivery.wait`)."""
        return self.webhooks.resend(event_id, endpoint_id)

    def deliver_concurrently(self, event_id: str, copies: int = 2) -> list[Delivery]:
        return self.webhooks.deliver_concurrently(event_id, copies)

    def send_tampered(self, event_id: str, tamper: Tamper | str) -> list[Delivery]:
        return self.webhooks.send_tampered(event_id, tamper)

    def hold_events(self, hold: bool = True) -> None:
        """While held, new events are recorded (and retrievable) but not delivered."""
        self.webhooks.hold(hold)

    def held_events(self) -> list[str]:
        return self.webhooks.held()

    def release_events(self, event_ids: Iterable[str] | None = None) -> list[Delivery]:
        """Deliver held events in this order, each after the previous one's answer."""
        return self.webhooks.release(event_ids)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no delivery is scheduled or running (call it from a thread that is not
        the receiver's event loop, e.g. `await asyncio.to_thread(sim.wait_idle)`)."""
        self.webhooks.wait_idle(timeout)

    # -- time --------------------------------------------------------------------------------
    def now(self) -> int:
        return self.clock.now()

    def advance_clock(self, seconds: float) -> int:
        """Move simulated time (negative: back); open sessions past `expires_at` expire."""
        now = self.clock.advance(seconds)
        expire_due_sessions(self.account)
        return now
