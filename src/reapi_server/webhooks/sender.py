"""The background sender, in every server process: takes due deliveries under a lease, signs
and POSTs each, and records the outcome.

- 2xx: delivered. 410 Gone: the receiver wants no more; this delivery and the key's other
  pending ones to that URL stop, and the key's default URL is disabled if it was that one.
- Anything else (another status, a redirect, a timeout, a refused address): failed; tried again
  on the schedule (`schedule`), until the retry window is over.
- A process that dies mid-attempt leaves its claim to lapse (two attempt timeouts): another
  process then sends the message again, with the same `webhook-id`.
- Each attempt resolves and vets the URL's host again (DNS may have changed since the request),
  connects only to the vetted address, follows no redirect, and reads little of the answer.
- The body is the video object stored with the delivery; the signature covers this attempt's id
  and timestamp (`signing`), with the key's current secret (and the previous one for a while
  after a rotation).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from reapi import InvalidRequestError
from reapi.core import PostAnswer
from reapi.providers import parse_retry_after

from ..background_rounds import RoundLog
from ..models import WebhookDelivery
from ..runtime import Runtime
from . import repository
from .schedule import next_attempt
from .signing import KeySalts, new_salt, signature_header

__all__ = ["WebhookSender", "hand_back_deliveries"]

log = logging.getLogger("reapi_server.webhooks")

#: A sender holds a claimed delivery for this many attempt timeouts (the attempt, and the
#: signing and recording around it); after that, another sender may take it.
_LEASE_TIMEOUTS = 2.0


def _answer_code(answer: PostAnswer) -> str:
    return f"http_{answer.status}"


class WebhookSender:
    def __init__(self, rt: Runtime, *, batch: int = 16) -> None:
        self.rt = rt
        self.batch = batch

    async def run_forever(self) -> None:
        rt = self.rt
        rounds = RoundLog(log, "webhook round")
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:  # a database hiccup must not end the loop
                rounds.failed(exc)
                handled = 0
            else:
                rounds.succeeded()
            if not handled:
                await rt.webhook_wakeup.wait(rt.settings.webhook_poll_interval)

    async def run_once(self) -> int:
        """Claim the deliveries due now and make one attempt at each; how many."""
        rt = self.rt
        now = rt.now()
        lease_until = now + rt.settings.webhook_timeout * _LEASE_TIMEOUTS
        async with rt.db.write() as session:
            due = await repository.claim_due(session, rt.instance_id, now, lease_until, self.batch)
        if due:
            async with anyio.create_task_group() as group:
                for delivery in due:
                    group.start_soon(self._guarded, delivery)
        return len(due)

    async def _guarded(self, delivery: WebhookDelivery) -> None:
        try:
            await self._attempt(delivery)
        except Exception as exc:  # its lease runs out and another round takes it
            log.error(
                "webhook attempt failed",
                extra={"job_id": delivery.video_id, "code": type(exc).__name__},
            )

    async def _salts(self, key_id: str) -> KeySalts | None:
        """The key's salts, a first one made if it has none yet (None: the key is gone)."""
        async with self.rt.db.read() as session:
            exists, salts = await repository.key_salts(session, key_id)
        if exists and salts is None:
            async with self.rt.db.write() as session:
                await repository.set_salt_if_missing(session, key_id, new_salt())
                _, salts = await repository.key_salts(session, key_id)
        return salts

    async def _attempt(self, delivery: WebhookDelivery) -> None:
        rt = self.rt
        salts = await self._salts(delivery.api_key_id) if delivery.api_key_id else None
        if salts is None:  # nothing to sign with: no receiver could trust it
            await self._record(delivery, "failed", status=None, error="no_signing_key")
            return
        body = delivery.video_object.encode()
        timestamp = int(rt.now())
        signing = salts.secrets(
            rt.fingerprint_secret, rt.now(), rt.settings.webhook_secret_overlap_seconds
        )
        headers = [
            ("Content-Type", "application/json"),
            ("webhook-id", delivery.id),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", signature_header(signing, delivery.id, timestamp, body)),
        ]
        try:
            answer = await rt.webhook_fetcher.post(
                delivery.url,
                body,
                headers=headers,
                param="webhook_url",
                timeout=rt.settings.webhook_timeout,
            )
        except InvalidRequestError as refusal:  # not sent, or no answer in time
            await self._failed(delivery, status=None, error=refusal.code, retry_after=None)
            return
        if 200 <= answer.status < 300:
            await self._record(delivery, "delivered", status=answer.status, error=None)
        elif answer.status == 410:
            await self._gone(delivery)
        else:
            retry_after = parse_retry_after(answer.retry_after)
            await self._failed(
                delivery, status=answer.status, error=_answer_code(answer), retry_after=retry_after
            )

    async def _failed(
        self,
        delivery: WebhookDelivery,
        *,
        status: int | None,
        error: str,
        retry_after: float | None,
    ) -> None:
        rt, settings = self.rt, self.rt.settings
        due = next_attempt(
            delivery.attempts,
            delivery.created_at,
            rt.now(),
            delays=settings.webhook_retry_delays,
            window=settings.webhook_retry_window,
            retry_after=retry_after,
        )
        if due is None:
            await self._record(delivery, "failed", status=status, error=error)
            return
        rt.metrics.webhook_attempts.labels("failed").inc()
        log.info("webhook attempt failed", extra={"job_id": delivery.video_id, "code": error})
        async with rt.db.write() as session:
            await repository.finish(
                session,
                delivery.id,
                rt.instance_id,
                next_attempt_at=due,
                last_status=status,
                last_error=error,
            )

    async def _record(
        self, delivery: WebhookDelivery, outcome: str, *, status: int | None, error: str | None
    ) -> None:
        """The delivery's end: delivered, or failed for good."""
        rt = self.rt
        values: dict[str, Any] = {
            "status": outcome,
            "finished_at": rt.now(),
            "last_status": status,
            "last_error": error,
        }
        async with rt.db.write() as session:
            recorded = await repository.finish(session, delivery.id, rt.instance_id, **values)
        if recorded:
            rt.metrics.webhook_attempts.labels(
                "delivered" if outcome == "delivered" else "failed"
            ).inc()
            rt.metrics.webhook_deliveries.labels(outcome).inc()
            message = "webhook delivered" if outcome == "delivered" else "webhook given up"
            log.info(message, extra={"job_id": delivery.video_id, "code": error})

    async def _gone(self, delivery: WebhookDelivery) -> None:
        """410 Gone: stop sending to this receiver (for this key), as the spec asks."""
        rt = self.rt
        now = rt.now()
        async with rt.db.write() as session:
            recorded = await repository.finish(
                session,
                delivery.id,
                rt.instance_id,
                status="gone",
                finished_at=now,
                last_status=410,
                last_error="http_410",
            )
            stopped = 0
            if recorded:
                stopped = await repository.stop_pending_to(
                    session, delivery.api_key_id, delivery.url, now
                )
                if delivery.api_key_id:
                    await repository.disable_default(
                        session, delivery.api_key_id, delivery.url, now
                    )
        if recorded:
            if delivery.api_key_id:  # the key's default changes at once (the fleet: on the bus)
                rt.auth.changed(key_id=delivery.api_key_id)
            rt.metrics.webhook_attempts.labels("gone").inc()
            rt.metrics.webhook_deliveries.labels("gone").inc(1 + stopped)
            log.warning("webhook receiver gone", extra={"job_id": delivery.video_id})


async def hand_back_deliveries(rt: Runtime) -> None:
    """This process stops: the deliveries it was sending are due now for the other instances
    instead of when their claims would run out (an attempt cut short may then arrive twice,
    with the same webhook-id)."""
    try:
        async with rt.db.write() as session:
            handed = await repository.hand_back(session, rt.instance_id, rt.now())
    except Exception as exc:  # the claims run out by themselves
        log.warning("deliveries not handed back", extra={"code": type(exc).__name__})
        return
    if handed:
        log.info("deliveries handed back", extra={"code": f"webhooks={handed}"})
