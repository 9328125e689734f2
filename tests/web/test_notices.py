"""Notices to many users through the outbox, in batches: policy change notices (every user,
transactional) and newsletter issues (opted-in, verified users, with List-Unsubscribe). At most
once per user per notice, and an interrupted run continues where it stopped."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from tests.web.helpers import deletion_services, web_context

from reapi_server.email.compose import MailComposer
from reapi_server.email.notices import NoticeDraft, Notices, Progress
from reapi_server.errors import GatewayError
from reapi_server.identity import repository as users
from reapi_server.models import Notice, NoticeDelivery, OutboxMessage, User

NOTICE = """We are changing how long we keep **usage records**.

- From 30 to 60 days.
- Outputs are unchanged.
"""


def _today(gateway) -> date:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(gateway.rt.now(), UTC).date()


def _policy(gateway, *, days: int = 30, text: str = NOTICE) -> NoticeDraft:
    return NoticeDraft(
        kind="policy_change",
        subject="Changes to our privacy policy",
        markdown=text,
        effective_on=_today(gateway) + timedelta(days=days),
    )


def _issue(text: str = "# News\n\nA new model is here.") -> NoticeDraft:
    return NoticeDraft(kind="newsletter", subject="reapi news, December", markdown=text)


def _notices(gateway, composer: MailComposer | None = None, **kwargs) -> Notices:
    web = web_context(gateway)
    return Notices(
        gateway.rt.db,
        composer=composer or web.identity.mail,
        unsubscribe_key=web.subscriptions.key,
        clock=gateway.rt.now,
        newsletter_offered=web.subscriptions.offered,
        **kwargs,
    )


async def _people(gateway, count: int, **fields) -> list[str]:
    """`count` users (verified unless told otherwise), their emails."""
    values = {"email_verified_at": 1.0, **fields}
    emails = [f"p-{secrets.token_hex(5)}@example.com" for _ in range(count)]
    async with gateway.rt.db.write() as session:
        for email in emails:
            user = await users.insert_user(session, email=email, password_hash=None, now=1.0)
            await session.execute(update(User).where(User.id == user.id).values(**values))
    return emails


async def _queued(gateway, template: str) -> list[OutboxMessage]:
    async with gateway.rt.db.read() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == template)
        return list((await session.execute(query)).scalars())


async def _deliveries(gateway) -> list[NoticeDelivery]:
    async with gateway.rt.db.read() as session:
        return list((await session.execute(select(NoticeDelivery))).scalars())


async def test_a_policy_notice_goes_to_every_user_once(db_web):
    everyone = await _people(db_web, 4)
    everyone += await _people(db_web, 2, email_verified_at=None)
    everyone += await _people(db_web, 2, newsletter=True)
    draft = _policy(db_web)
    seen: list[Progress] = []
    progress = await _notices(db_web, batch=3).send(draft, on_batch=seen.append)
    assert (progress.queued, progress.added, progress.total) == (8, 8, 8)
    assert [p.queued for p in seen] == [3, 6, 8]
    rows = await _queued(db_web, "policy_change")
    assert sorted(r.to_address for r in rows) == sorted(everyone)
    for row in rows:
        assert row.kind == "transactional" and row.headers is None
        assert row.subject == "Changes to our privacy policy"
        assert draft.effective_on is not None
        assert f"{draft.effective_on.day} {draft.effective_on:%B %Y}" in row.text_body
        assert "<strong>usage records</strong>" in row.html_body
        assert "**usage records**" in row.text_body
    again = await _notices(db_web, batch=3).send(draft)
    assert (again.queued, again.added, again.notice_id) == (8, 0, progress.notice_id)
    assert len(await _queued(db_web, "policy_change")) == 8
    async with db_web.rt.db.read() as session:
        notice = await session.get(Notice, progress.notice_id)
    assert notice.completed_at is not None and notice.effective_on == draft.effective_on.isoformat()


async def test_a_newsletter_goes_to_verified_subscribers_only_with_their_own_link(db_web):
    subscribers = await _people(db_web, 3, newsletter=True)
    await _people(db_web, 2)  # not subscribed
    await _people(db_web, 1, newsletter=True, email_verified_at=None)
    await _people(db_web, 1, newsletter=True, disabled_at=5.0)
    progress = await _notices(db_web, batch=2).send(_issue())
    assert progress.queued == progress.total == 3
    rows = await _queued(db_web, "newsletter")
    assert sorted(r.to_address for r in rows) == sorted(subscribers)
    links = set()
    async with db_web.rt.db.read() as session:
        for row in rows:
            user = await users.find_user_by_email(session, row.to_address)
            headers = json.loads(row.headers)
            token = web_context(db_web).subscriptions.token(user.id)
            assert headers["List-Unsubscribe"] == f"<http://gateway.test/unsubscribe/{token}>"
            assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert row.kind == "newsletter" and token in row.text_body and token in row.html_body
            links.add(token)
    assert len(links) == 3


@pytest.mark.parametrize("kind", ["policy_change", "newsletter"])
async def test_an_interrupted_run_continues_and_nobody_gets_it_twice(db_web, kind):
    await _people(db_web, 10, newsletter=True)

    class Breaks(MailComposer):
        """The process dies while composing the 5th message (in the second batch)."""

        calls = 0

        def _render(self, *args, **kwargs):
            Breaks.calls += 1
            if Breaks.calls == 5:
                raise KeyboardInterrupt
            return super()._render(*args, **kwargs)

    web = web_context(db_web)
    breaks = Breaks(site_name="reapi", links=web.links)
    draft = _policy(db_web) if kind == "policy_change" else _issue()
    with pytest.raises(KeyboardInterrupt):
        await _notices(db_web, composer=breaks, batch=3).send(draft)
    assert len(await _deliveries(db_web)) == 3  # the first batch; the second rolled back
    assert len(await _queued(db_web, kind)) == 3
    progress = await _notices(db_web, batch=3).send(draft)
    assert (progress.queued, progress.added) == (10, 7)
    rows = await _queued(db_web, kind)
    assert len(rows) == len({r.to_address for r in rows}) == 10
    async with db_web.rt.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Notice)) == 1


async def test_two_runs_at_once_still_send_once(db_web):
    await _people(db_web, 12)
    draft = _policy(db_web)
    first, second = await asyncio.gather(
        _notices(db_web, batch=2).send(draft), _notices(db_web, batch=2).send(draft)
    )
    assert first.notice_id == second.notice_id
    assert first.added + second.added == 12
    rows = await _queued(db_web, "policy_change")
    assert len(rows) == len({r.to_address for r in rows}) == 12


async def test_another_text_is_another_notice(web):
    await _people(web, 2)
    one = await _notices(web).send(_policy(web))
    two = await _notices(web).send(_policy(web, text=NOTICE + "\nOne more thing.\n"))
    assert one.notice_id != two.notice_id and two.added == 2


async def test_an_effective_date_in_the_past_is_refused(web):
    await _people(web, 2)
    with pytest.raises(GatewayError, match="in the past"):
        await _notices(web).send(_policy(web, days=-1))
    assert await _deliveries(web) == [] and await _queued(web, "policy_change") == []
    async with web.rt.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Notice)) == 0
    today = await _notices(web).send(_policy(web, days=0))  # today is not the past
    assert today.added == 2


async def test_a_policy_notice_needs_a_date_and_text(web):
    with pytest.raises(GatewayError, match="effective"):
        await _notices(web).send(
            NoticeDraft(kind="policy_change", subject="S", markdown="x", effective_on=None)
        )
    with pytest.raises(GatewayError, match="empty"):
        await _notices(web).send(_policy(web, text="  \n"))
    with pytest.raises(GatewayError, match="subject"):
        await _notices(web).send(NoticeDraft(kind="newsletter", subject=" ", markdown="x"))
    with pytest.raises(GatewayError, match="one line"):  # no header injection
        await _notices(web).send(
            NoticeDraft(kind="newsletter", subject="News\nBcc: x@evil.test", markdown="x")
        )


async def test_no_newsletter_when_the_operator_turned_it_off(make_gateway):
    gateway = await make_gateway(public_base_url="http://gateway.test", newsletter_default="off")
    await _people(gateway, 2, newsletter=True)
    with pytest.raises(GatewayError, match="newsletter_default"):
        await _notices(gateway).send(_issue())
    assert await _queued(gateway, "newsletter") == []


async def test_a_deleted_user_takes_their_deliveries_along(web):
    [email] = await _people(web, 1)
    await _notices(web).send(_policy(web))
    from reapi_server.accounts.deletion import delete_user

    async with web.rt.db.write() as session:
        user = await users.find_user_by_email(session, email)
        await delete_user(session, user.id, now=web.rt.now(), **deletion_services(web))
    assert await _deliveries(web) == []
