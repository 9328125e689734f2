"""`Billing`: what the web pages, the webhook endpoint, the admin, the CLI and the background
loops share — the settings, the Stripe client, the database, the mail composer and the clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import anyio
import orjson

from ..config import Settings
from ..db import Database
from ..email.compose import MailComposer
from ..links import Links
from . import event_store, repository
from .applying import Applying
from .events import Applied, apply_event
from .settings import BillingSettings
from .signatures import BadSignature, verify
from .stripe_api import StripeApi

__all__ = ["BadEvent", "Billing"]

log = logging.getLogger("reapi_server.billing")

#: Outcomes other events may wait for: a payment credited (its refunds, its disputes), or
#: recorded and refunded after its account's deletion (`after_deletion`).
_DEPENDED_ON = frozenset({"credited", "account_deleted"})
#: Stripe's events are far below this; anything larger is not one.
MAX_EVENT_BYTES = 1024 * 1024


class BadEvent(Exception):
    """A signed body that is not a Stripe event we can store (a few fixed words)."""


def _event_fields(body: bytes) -> tuple[str, str, str | None, float]:
    """(id, type, data.object.id, created) of a verified event body."""
    try:
        event: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        raise BadEvent("not a JSON object")
    event_id, type_ = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise BadEvent("no event id")
    if not isinstance(type_, str) or not type_ or len(type_) > 100:
        raise BadEvent("no event type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(object_id, str) or len(object_id) > 255:
        object_id = None
    created = event.get("created")
    return event_id, type_, object_id, float(created) if isinstance(created, int) else 0.0


class Billing:
    def __init__(
        self,
        settings: BillingSettings,
        *,
        db: Database,
        mail: MailComposer,
        links: Links,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.db = db
        self.mail = mail
        self.links = links
        self.clock = clock
        self.api = StripeApi(settings) if settings.stripe_secret_key is not None else None
        #: Set when an event was applied that waiting ones may depend on: the retry loop runs.
        self._applied = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, clock: Callable[[], float]) -> Billing:
        return cls(
            settings.billing,
            db=db,
            mail=MailComposer.from_settings(settings),
            links=Links.from_settings(settings),
            clock=clock,
        )

    @property
    def enabled(self) -> bool:
        """People can buy credit: Stripe keys, a webhook secret and packs are configured."""
        return self.settings.enabled and self.api is not None

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.settings.stripe_webhook_secrets)

    def stripe(self) -> StripeApi:
        if self.api is None:
            raise RuntimeError("billing is not configured (billing.stripe_secret_key)")
        return self.api

    def context(self) -> Applying:
        return Applying(now=self.clock(), mail=self.mail)

    async def aclose(self) -> None:
        if self.api is not None:
            await self.api.aclose()

    # -- events -----------------------------------------------------------------------------------

    def verify(self, body: bytes, signature: str | None) -> None:
        """Raise `BadSignature` unless Stripe signed `body` recently with one of our secrets."""
        secrets = [secret.get_secret_value() for secret in self.settings.stripe_webhook_secrets]
        if not secrets:
            raise BadSignature("no webhook secret configured")
        verify(
            body,
            signature,
            secrets,
            now=self.clock(),
            tolerance=self.settings.webhook_tolerance,
        )

    async def receive(self, body: bytes, signature: str | None) -> Applied:
        """A webhook delivery: verified, stored (once), then applied. Raises `BadSignature` or
        `BadEvent` for what must be refused; an error applying it is raised once the event is
        stored (it is retried)."""
        self.verify(body, signature)
        event_id, type_, object_id, created = _event_fields(body)
        async with self.db.write() as session:
            await event_store.store(
                session,
                event_id=event_id,
                type_=type_,
                object_id=object_id,
                created=created,
                now=self.clock(),
            )
        return await self.apply(event_id)

    async def apply(self, event_id: str) -> Applied:
        """Apply a stored event now (the webhook, the retry loop, an operator's re-apply). A
        purchase credited makes the events waiting for it (its refunds, its disputes) due at
        once, and only those."""
        applied = await apply_event(
            self.db,
            self.stripe(),
            event_id,
            make_context=self.context,
            give_up_after=self.settings.event_give_up_after,
        )
        if applied.state == "applied" and applied.outcome in _DEPENDED_ON:
            async with self.db.read() as session:
                event = await event_store.get(session, event_id)
            if event is not None and event.object_id:
                await self.wake_dependents(event.object_id)
        return applied

    async def wake_dependents(self, stripe_object_id: str) -> None:
        """Make the events waiting for the payment of this Checkout Session or PaymentIntent
        (its refunds, its disputes) due at once, and only those: called once it is credited,
        by whichever path credited it (its event, or the automatic top-up's own check)."""
        async with self.db.write() as session:
            keys = await repository.payment_keys(session, stripe_object_id)
            woken = await event_store.wake_waiting(session, keys, self.clock())
        if woken:
            self._applied.set()  # after the commit: the retry loop must see them due

    async def retry_due(self) -> int:
        """One round of the retry loop: apply the stored events still unhandled whose time has
        come. How many were applied."""
        async with self.db.read() as session:
            due = await event_store.due(session, self.clock())
        applied = 0
        for event in due:
            try:
                result = await self.apply(event.id)
            except Exception as error:  # noted on the event; the next round tries again
                log.warning("stripe event not applied", extra={"code": type(error).__name__})
                continue
            applied += result.state == "applied"
        return applied

    async def run_retries(self) -> None:
        while True:
            self._applied.clear()
            try:
                await self.retry_due()
            except Exception as error:  # a database hiccup must not end the loop
                log.warning("stripe event retry failed", extra={"code": type(error).__name__})
            with anyio.move_on_after(self.settings.event_retry_interval):
                await self._applied.wait()
