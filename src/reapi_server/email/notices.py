"""Notices: one text mailed to many users through the outbox, in batches.

- A **policy change** notice goes to every user (it is transactional: the newsletter choice
  does not matter), and only before the change takes effect: a date in the past is refused.
- A **newsletter** issue goes to users who opted in and verified their address, each copy
  with that user's own one-click unsubscribe link.

Each batch is one transaction: it picks users who have no delivery row for the notice yet,
queues their messages and writes their delivery rows together. A run that dies loses at most
its open batch (rolled back, so nobody in it was queued); running the same notice again (the
same kind, subject, text and date) continues with whoever is left. The delivery table's primary
key (notice, user) makes "at most once per user" hold even for two runs at once: the slower
batch fails on it, rolls back, and picks again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, exists, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from ..errors import GatewayError
from ..ids import new_id
from ..models import Notice, NoticeDelivery, User
from .compose import MailComposer
from .message import Message
from .outbox import enqueue
from .unsubscribe import unsubscribe_token

if TYPE_CHECKING:  # markdown-it loads with the first notice, not with every process
    from .markdown import MailBody

__all__ = ["NoticeDraft", "NoticeKind", "Notices", "Progress", "deliveries_of"]

log = logging.getLogger("reapi_server.email")

NoticeKind = Literal["policy_change", "newsletter"]
#: Batches in a row that may lose to a concurrent run before this one gives up.
_MAX_CONFLICTS = 20
_SUBJECT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    kind: NoticeKind
    subject: str
    #: The text, in Markdown (CommonMark, no raw HTML).
    markdown: str
    #: The day a policy change takes effect; None for a newsletter.
    effective_on: date | None = None

    def __repr__(self) -> str:
        return f"NoticeDraft(kind={self.kind!r}, effective_on={self.effective_on!r})"

    @property
    def digest(self) -> str:
        """What makes two runs the same notice."""
        effective = self.effective_on.isoformat() if self.effective_on else None
        text = self.markdown.replace("\r\n", "\n").strip()
        identity = json.dumps([self.kind, self.subject.strip(), text, effective])
        return hashlib.sha256(identity.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Progress:
    notice_id: str
    #: Users this notice has been queued for, by every run.
    queued: int
    #: Of those, by this run.
    added: int
    #: Users it is meant for (queued plus those left when this run started).
    total: int


def _check(draft: NoticeDraft, today: date, *, newsletter_offered: bool) -> None:
    subject = draft.subject.strip()
    if not subject:
        raise GatewayError("The notice needs a subject.", param="subject")
    if len(subject) > _SUBJECT_LIMIT or any(ord(c) < 32 for c in subject):
        raise GatewayError(
            f"The subject must be one line of at most {_SUBJECT_LIMIT} characters.",
            param="subject",
        )
    if not draft.markdown.strip():
        raise GatewayError("The notice is empty.", param="file")
    if draft.kind == "newsletter" and not newsletter_offered:
        raise GatewayError(
            "This installation sends no newsletter (newsletter_default = off).",
            code="newsletter_off",
        )
    if draft.kind == "policy_change":
        if draft.effective_on is None:
            raise GatewayError("A policy change notice needs its effective date.")
        if draft.effective_on < today:
            raise GatewayError(
                f"The effective date {draft.effective_on.isoformat()} is in the past: the "
                "notice must reach people before the change takes effect.",
                param="effective",
            )


class Notices:
    def __init__(
        self,
        db: Database,
        *,
        composer: MailComposer,
        unsubscribe_key: bytes,
        clock: Callable[[], float],
        newsletter_offered: bool,
        batch: int = 100,
    ) -> None:
        self.db = db
        self.composer = composer
        self.unsubscribe_key = unsubscribe_key
        self.clock = clock
        self.newsletter_offered = newsletter_offered
        self.batch = batch

    async def send(
        self, draft: NoticeDraft, *, on_batch: Callable[[Progress], None] | None = None
    ) -> Progress:
        """Queue `draft` for everyone it is meant for and not yet queued for; what was done."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        _check(draft, today, newsletter_offered=self.newsletter_offered)
        from .markdown import render_markdown

        body = render_markdown(draft.markdown)
        notice_id = await self._open(draft)
        queued, left = await self._counts(notice_id, draft.kind)
        total, added, conflicts = queued + left, 0, 0
        while True:
            try:
                count = await self._queue_batch(notice_id, draft, body)
            except IntegrityError:  # another run queued some of these users first
                conflicts += 1
                if conflicts > _MAX_CONFLICTS:
                    raise
                continue
            conflicts = 0
            if count == 0:
                break
            added += count
            queued += count
            if on_batch is not None:
                on_batch(Progress(notice_id, queued, added, max(total, queued)))
        log.info("notice queued", extra={"code": f"{draft.kind}:{added}"})
        return Progress(notice_id, queued, added, max(total, queued))

    async def _open(self, draft: NoticeDraft) -> str:
        """The notice's id: the existing one for the same draft (a run continued), or new."""
        digest = draft.digest
        for _ in range(2):
            async with self.db.read() as session:
                found = await session.scalar(select(Notice.id).where(Notice.digest == digest))
            if found is not None:
                return found
            try:
                async with self.db.write() as session:
                    notice = Notice(
                        id=new_id("ntc"),
                        kind=draft.kind,
                        digest=digest,
                        subject=draft.subject.strip(),
                        effective_on=draft.effective_on.isoformat() if draft.effective_on else None,
                        created_at=self.clock(),
                    )
                    session.add(notice)
                return notice.id
            except IntegrityError:  # the same notice opened by another run just now
                continue
        raise GatewayError("The notice could not be opened; try again.")

    @staticmethod
    def _meant_for(kind: str) -> ColumnElement[bool]:
        if kind == "newsletter":
            return (
                User.newsletter.is_(True)
                & User.email_verified_at.is_not(None)
                & User.disabled_at.is_(None)
            )
        return true()  # a policy change: every account holder

    @staticmethod
    def _not_yet(notice_id: str) -> ColumnElement[bool]:
        return ~exists().where(
            NoticeDelivery.notice_id == notice_id, NoticeDelivery.user_id == User.id
        )

    async def _counts(self, notice_id: str, kind: str) -> tuple[int, int]:
        async with self.db.read() as session:
            queued = await session.scalar(
                select(func.count()).where(NoticeDelivery.notice_id == notice_id)
            )
            left = await session.scalar(
                select(func.count())
                .select_from(User)
                .where(self._meant_for(kind), self._not_yet(notice_id))
            )
        return int(queued or 0), int(left or 0)

    def _message(self, draft: NoticeDraft, body: MailBody, user_id: str, email: str) -> Message:
        subject = draft.subject.strip()
        if draft.kind == "newsletter":
            token = unsubscribe_token(self.unsubscribe_key, user_id)
            return self.composer.newsletter(email, subject=subject, body=body, unsubscribe=token)
        assert draft.effective_on is not None  # checked
        return self.composer.policy_change(
            email, subject=subject, effective=draft.effective_on, body=body
        )

    async def _queue_batch(self, notice_id: str, draft: NoticeDraft, body: MailBody) -> int:
        """One transaction: the next users without a delivery, queued. How many."""
        now = self.clock()
        async with self.db.write() as session:
            picked = await session.execute(
                select(User.id, User.email)
                .where(self._meant_for(draft.kind), self._not_yet(notice_id))
                .order_by(User.id)
                .limit(self.batch)
            )
            rows = picked.all()
            if not rows:
                await _complete(session, notice_id, now)
                return 0
            for user_id, email in rows:
                message = self._message(draft, body, user_id, email)
                outbox_id = await enqueue(session, message, now, user_id=user_id)
                session.add(
                    NoticeDelivery(
                        notice_id=notice_id, user_id=user_id, outbox_id=outbox_id, created_at=now
                    )
                )
            await session.flush()
        return len(rows)


async def _complete(session: AsyncSession, notice_id: str, now: float) -> None:
    await session.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.completed_at.is_(None))
        .values(completed_at=now)
    )


async def deliveries_of(session: AsyncSession, user_id: str) -> list[tuple[NoticeDelivery, Notice]]:
    """The notices queued for a user, each with its delivery row, oldest first."""
    result = await session.execute(
        select(NoticeDelivery, Notice)
        .join(Notice, Notice.id == NoticeDelivery.notice_id)
        .where(NoticeDelivery.user_id == user_id)
        .order_by(NoticeDelivery.created_at, Notice.id)
    )
    return [(delivery, notice) for delivery, notice in result.all()]
