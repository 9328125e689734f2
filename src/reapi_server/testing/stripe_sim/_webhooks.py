"""Webhook delivery as Stripe does it: signed, from the background, retried until a 2xx.

The signature is Stripe's scheme: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" keyed by the endpoint secret>`, one `v1` per secret while a rolled secret is still
honoured. Each (event, endpoint) pair is a chain of attempts: a non-2xx answer, a timeout or a
refused connection schedules the next one after `retry_delays[n]` seconds (Stripe's schedule of
hours, compressed), until the delays run out. Deliveries run concurrently and in no promised
order, like Stripe's.

For tests: resend an event (one more delivery), deliver it several times at once, hold events
and release a chosen set in a chosen order (each waits for the previous answer), and tampered
deliveries (a body changed by one byte after signing, a stale timestamp, a wrong secret, no
signature). One-off deliveries are never retried and never settle the event's chain.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from ._account import Account, StripeObject, public_copy
from ._clock import new_id

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "Delivery",
    "Dispatcher",
    "Tamper",
    "WebhookEndpoint",
    "signature_header",
]

#: Stripe retries for three days with an exponential back-off; these are seconds instead.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
RESPONSE_EXCERPT = 200


class Tamper(StrEnum):
    BODY = "body"  # one byte of the body changed after signing
    STALE_TIMESTAMP = "stale_timestamp"  # signed `stale_age` seconds in the past
    WRONG_SECRET = "wrong_secret"  # signed with a secret the endpoint does not have
    NO_SIGNATURE = "no_signature"  # no Stripe-Signature header at all


def _new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


@dataclass
class WebhookEndpoint:
    url: str
    secret: str = field(default_factory=_new_secret)
    #: Event types to send ("*": all).
    enabled_events: tuple[str, ...] = ("*",)
    id: str = field(default_factory=lambda: new_id("we_"))
    #: Secrets still signed with after a roll (Stripe keeps the old one for a while).
    old_secrets: list[str] = field(default_factory=list)

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "secret": self.secret,
            "old_secrets": list(self.old_secrets),
            "enabled_events": list(self.enabled_events),
        }


def signature_header(payload: bytes, secrets_: Sequence[str], timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    signatures = [
        hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets_
    ]
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in signatures)])


@dataclass(eq=False)
class Delivery:
    """One HTTP attempt to deliver an event to an endpoint."""

    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    #: automatic, retry, released, resend, concurrent, or tampered:<how>.
    kind: str
    #: The attempt's number in its chain (retries count up); 1 for one-off deliveries.
    attempt: int = 1
    id: str = field(default_factory=lambda: new_id("whd_", 16))
    #: When it is due (time.time()); None once it ran.
    scheduled_for: float | None = None
    status: int | None = None
    error: str | None = None
    response: str = ""
    timestamp: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float = 10.0) -> Delivery:
        if not self._finished.wait(timeout):
            raise TimeoutError(f"delivery {self.id} of {self.event_id} not done in {timeout} s")
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event_id,
            "event_type": self.event_type,
            "endpoint": self.endpoint_id,
            "url": self.url,
            "kind": self.kind,
            "attempt": self.attempt,
            "done": self.done,
            "scheduled_for": self.scheduled_for,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "response": self.response,
            "timestamp": self.timestamp,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(eq=False)
class _Job:
    delivery: Delivery
    chain: bool  # part of the event's automatic delivery (retried; settles pending_webhooks)
    tamper: Tamper | None = None
    barrier: threading.Barrier | None = None


class Dispatcher:
    """Delivers the account's events to its endpoints on background threads."""

    def __init__(
        self,
        account: Account,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 10.0,
        stale_age: int = 600,
    ) -> None:
        self.account = account
        self.endpoints: dict[str, WebhookEndpoint] = {}
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        #: How old `Tamper.STALE_TIMESTAMP` signatures are (Stripe's SDKs accept 300 s).
        self.stale_age = stale_age
        self._deliveries: list[Delivery] = []
        self._settled: set[tuple[str, str]] = set()  # chains that got their 2xx
        self._holding = False
        self._held: list[str] = []
        self._heap: list[tuple[float, int, _Job]] = []
        self._sequence = 0
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        account.on_event(self._on_event)

    # -- endpoints ---------------------------------------------------------------------------
    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        with self._cond:
            self.endpoints[endpoint.id] = endpoint
        return endpoint

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        try:
            return self.endpoints[endpoint_id]
        except KeyError:
            raise KeyError(f"no webhook endpoint {endpoint_id!r}") from None

    def remove_endpoint(self, endpoint_id: str) -> None:
        with self._cond:
            self.endpoints.pop(self.endpoint(endpoint_id).id)

    def roll_secret(
        self, endpoint_id: str, secret: str | None = None, *, keep_old: bool = True
    ) -> WebhookEndpoint:
        endpoint = self.endpoint(endpoint_id)
        with self._cond:
            endpoint.old_secrets = [endpoint.secret, *endpoint.old_secrets] if keep_old else []
            endpoint.secret = secret or _new_secret()
        return endpoint

    # -- events in -----------------------------------------------------------------------------
    def _on_event(self, event: StripeObject) -> None:
        """Runs under the account lock as the event is recorded."""
        with self._cond:
            targets = [e for e in self.endpoints.values() if e.wants(event["type"])]
            event["pending_webhooks"] = len(targets)
            if self._holding:
                self._held.append(event["id"])
                return
            for endpoint in targets:
                self._schedule(self._job(event, endpoint, "automatic", chain=True), 0.0)

    def _job(
        self,
        event: StripeObject,
        endpoint: WebhookEndpoint,
        kind: str,
        *,
        chain: bool,
        attempt: int = 1,
        tamper: Tamper | None = None,
        barrier: threading.Barrier | None = None,
    ) -> _Job:
        delivery = Delivery(event["id"], event["type"], endpoint.id, endpoint.url, kind, attempt)
        self._deliveries.append(delivery)
        return _Job(delivery, chain, tamper, barrier)

    def _schedule(self, job: _Job, delay: float) -> None:
        """Caller holds `_cond`."""
        job.delivery.scheduled_for = time.time() + delay
        self._sequence += 1
        heapq.heappush(self._heap, (time.monotonic() + delay, self._sequence, job))
        self._busy += 1
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(
                target=self._schedule_loop, name="stripe-sim-webhooks", daemon=True
            )
            self._thread.start()
        self._cond.notify_all()

    # -- test controls -----------------------------------------------------------------------
    def _event(self, event_id: str) -> StripeObject:
        return self.account.get(event_id, "event")

    def _targets(self, event: StripeObject, endpoint_id: str | None) -> list[WebhookEndpoint]:
        if endpoint_id is not None:
            return [self.endpoint(endpoint_id)]
        return [e for e in self.endpoints.values() if e.wants(event["type"])]

    def resend(self, event_id: str, endpoint_id: str | None = None) -> list[Delivery]:
        event = self._event(event_id)
        with self._cond:
            jobs = [
                self._job(event, e, "resend", chain=False)
                for e in self._targets(event, endpoint_id)
            ]
            for job in jobs:
                self._schedule(job, 0.0)
        return [job.delivery for job in jobs]

    def deliver_concurrently(
        self, event_id: str, copies: int = 2, endpoint_id: str | None = None
    ) -> list[Delivery]:
        """`copies` deliveries per endpoint, their requests released at the same moment."""
        if copies < 2:
            raise ValueError("concurrent delivery needs at least 2 copies")
        event = self._event(event_id)
        with self._cond:
            jobs = []
            for endpoint in self._targets(event, endpoint_id):
                barrier = threading.Barrier(copies)
                jobs += [
                    self._job(event, endpoint, "concurrent", chain=False, barrier=barrier)
                    for _ in range(copies)
                ]
            for job in jobs:
                self._schedule(job, 0.0)
        return [job.delivery for job in jobs]

    def send_tampered(
        self, event_id: str, tamper: Tamper | str, endpoint_id: str | None = None
    ) -> list[Delivery]:
        how = Tamper(tamper)
        event = self._event(event_id)
        with self._cond:
            jobs = [
                self._job(event, e, f"tampered:{how.value}", chain=False, tamper=how)
                for e in self._targets(event, endpoint_id)
            ]
            for job in jobs:
                self._schedule(job, 0.0)
        return [job.delivery for job in jobs]

    def hold(self, holding: bool = True) -> None:
        """While holding, new events are recorded but not sent until released."""
        with self._cond:
            self._holding = holding

    @property
    def holding(self) -> bool:
        return self._holding

    def held(self) -> list[str]:
        with self._cond:
            return list(self._held)

    def release(self, event_ids: Iterable[str] | None = None) -> list[Delivery]:
        """Send held events in the given order (all, oldest first, when None), one at a time:
        each waits for the previous answer. Their retries then follow the usual schedule."""
        with self.account.lock, self._cond:
            chosen = list(self._held) if event_ids is None else list(event_ids)
            unknown = [e for e in chosen if e not in self._held]
            if unknown:
                raise KeyError(f"not held: {', '.join(unknown)}")
            jobs = []
            for event_id in chosen:
                self._held.remove(event_id)
                event = self._event(event_id)
                jobs += [
                    self._job(event, e, "released", chain=True)
                    for e in self.endpoints.values()
                    if e.wants(event["type"])
                ]
            self._busy += len(jobs)
        threading.Thread(
            target=self._run_in_order, args=(jobs,), name="stripe-sim-release", daemon=True
        ).start()
        return [job.delivery for job in jobs]

    def deliveries(self, event_id: str | None = None) -> list[Delivery]:
        with self._cond:
            return [d for d in self._deliveries if event_id is None or d.event_id == event_id]

    def pending(self) -> int:
        """Deliveries scheduled or running (retries included)."""
        with self._cond:
            return self._busy

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no delivery is scheduled or running (TimeoutError otherwise)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._busy == 0, timeout):
                raise TimeoutError(f"{self._busy} webhook deliveries still pending")

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    # -- the workers ---------------------------------------------------------------------------
    def _schedule_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
            threading.Thread(
                target=self._run, args=(job,), name="stripe-sim-delivery", daemon=True
            ).start()

    def _run(self, job: _Job) -> None:
        try:
            self._attempt(job)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def _run_in_order(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._run(job)

    def _attempt(self, job: _Job) -> None:
        delivery = job.delivery
        delivery.scheduled_for = None
        try:
            request = self._request(job)
            if job.barrier is not None:
                job.barrier.wait(self.timeout)
            delivery.started_at = time.time()
            if request is None:
                delivery.error = "the endpoint was removed"
            else:
                self._post(delivery, *request)
        except threading.BrokenBarrierError:
            delivery.error = "the concurrent deliveries did not all start"
        finally:
            delivery.finished_at = time.time()
            delivery._finished.set()
        if job.chain:
            self._settle(job)

    def _request(self, job: _Job) -> tuple[str, bytes, dict[str, str]] | None:
        delivery = job.delivery
        with self.account.lock, self._cond:
            endpoint = self.endpoints.get(delivery.endpoint_id)
            if endpoint is None:
                return None
            payload = json.dumps(public_copy(self._event(delivery.event_id)), indent=2).encode()
            keys = [endpoint.secret, *endpoint.old_secrets]
        timestamp = self.account.clock.now()
        if job.tamper is Tamper.STALE_TIMESTAMP:
            timestamp -= self.stale_age
        if job.tamper is Tamper.WRONG_SECRET:
            keys = [_new_secret()]
        delivery.timestamp = timestamp
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": USER_AGENT,
            "stripe-signature": signature_header(payload, keys, timestamp),
        }
        if job.tamper is Tamper.NO_SIGNATURE:
            del headers["stripe-signature"]
        if job.tamper is Tamper.BODY:
            payload = _one_byte_changed(payload)
        return endpoint.url, payload, headers

    def _post(self, delivery: Delivery, url: str, payload: bytes, headers: dict[str, str]) -> None:
        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as client:
                answer = client.post(url, content=payload, headers=headers)
            delivery.status = answer.status_code
            delivery.response = answer.text[:RESPONSE_EXCERPT]
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {str(exc)[:RESPONSE_EXCERPT]}"

    def _settle(self, job: _Job) -> None:
        delivery = job.delivery
        key = (delivery.event_id, delivery.endpoint_id)
        with self.account.lock, self._cond:
            if delivery.ok:
                if key not in self._settled:
                    self._settled.add(key)
                    event = self._event(delivery.event_id)
                    event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                return
            if key in self._settled or delivery.attempt > len(self.retry_delays):
                return  # another attempt got its 2xx, or Stripe gives up
            endpoint = self.endpoints.get(delivery.endpoint_id)
            if endpoint is None:
                return
            retry = self._job(
                self._event(delivery.event_id),
                endpoint,
                "retry",
                chain=True,
                attempt=delivery.attempt + 1,
            )
            self._schedule(retry, self.retry_delays[delivery.attempt - 1])


def _one_byte_changed(payload: bytes) -> bytes:
    """The event id's first character after `evt_` replaced: still JSON, no longer signed."""
    at = payload.index(b'"evt_') + 5
    replacement = b"A" if payload[at : at + 1] != b"A" else b"B"
    return payload[:at] + replacement + payload[at + 1 :]
