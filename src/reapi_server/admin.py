"""Administrative operations behind the CLI, each one transaction on the server's database."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from reapi.catalog import load_catalog
from reapi.core import AsyncFetcher

from .accounts import repository as accounts
from .accounts.personal_data import Deletion, PersonalData
from .accounts.service import create_account, require_account
from .api_keys import repository as keys
from .api_keys.limits import KeyLimits
from .api_keys.service import KeyView, issue_key, revoke_key, set_limits, view_of
from .audit import Actor, record
from .backoffice import actions
from .backoffice import promo as promo_actions
from .config import Settings
from .credits import repository as credits
from .credits.service import grant
from .db import Database
from .email.compose import MailComposer
from .email.notices import NoticeDraft, Notices, Progress
from .email.outbox import enqueue
from .email.subscriptions import set_newsletter
from .email.unsubscribe import unsubscribe_key
from .errors import GatewayError
from .fleet_secret import resolve_for, secret_of
from .identity import repository as users
from .identity.emails import normalise_email
from .migrate import stamped_revisions, upgrade
from .mirror.keys import is_task_id
from .mirror.service import delete_task_outputs
from .models import PromoCode
from .promo.service import CodeTerms, codes
from .retention import RetentionReport, purge_once
from .runtime import Runtime, build_runtime
from .webhooks import service as webhooks

__all__ = [
    "AccountView",
    "Deletion",
    "NewKey",
    "OutputsDeleted",
    "UserView",
    "add_account",
    "adjust_credits",
    "create_promo",
    "delete_outputs",
    "disable_promo",
    "export_user",
    "grant_credits",
    "list_keys",
    "list_promos",
    "list_users",
    "migrate",
    "new_key",
    "promote",
    "purge_expired",
    "remove_user",
    "revoke",
    "send_notice",
    "set_disabled",
    "set_key_limits",
    "set_webhook",
    "show_account",
    "show_user",
    "unsubscribe",
    "webhook_secret",
]

#: Who acts when an operator runs `reapi-server`: the audit log says "cli".
CLI = Actor.cli()

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AccountView:
    id: str
    email: str
    balance: int
    reserved: int


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    email: str
    #: user | admin
    role: str
    verified: bool
    has_password: bool
    created_at: float
    #: The accounts the user owns.
    account_ids: tuple[str, ...]
    #: Those of them an operator disabled.
    disabled_account_ids: tuple[str, ...]
    sessions: int
    #: (kind, policy version, accepted at) of each consent given.
    consents: tuple[tuple[str, str, float], ...]
    two_factor: bool = False


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    #: Shown once, never stored.
    plaintext: str
    kind: str = "model"

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True)
class OutputsDeleted:
    rows: int
    #: False when the store did not confirm every deletion (the rest is queued).
    complete: bool


async def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """For operations that touch storage as well as the database."""
    rt = build_runtime(settings)
    try:
        await upgrade(rt.db)
        # Keyed as the servers key (sign-in throttle rows, unsubscribe links, export).
        rt.secret = await secret_of(rt.db, settings)
        return await work(rt)
    finally:
        await rt.aclose()


async def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    settings.ensure_database_dir()
    db = Database(settings.resolved_database_url)
    try:
        await upgrade(db)
        async with db.write() as session:
            return await work(session)
    finally:
        await db.dispose()


@dataclass(frozen=True, slots=True)
class Migrated:
    """What `migrate` found and left: revisions before (none: a new database) and after, and
    those of a newer version it left alone."""

    before: frozenset[str]
    after: frozenset[str]
    newer: frozenset[str]


async def migrate(settings: Settings) -> Migrated:
    """Migrate, saying from which revision to which (an operator upgrading wants to know)."""
    settings.ensure_database_dir()
    db = Database(settings.resolved_database_url)
    try:
        before = await stamped_revisions(db)
        newer = await upgrade(db)
        return Migrated(before, await stamped_revisions(db), newer)
    finally:
        await db.dispose()


async def _view(session: AsyncSession, account_id: str) -> AccountView:
    account = await accounts.get(session, account_id)
    assert account is not None
    # Read through the ledger's columns: credit changes are Core UPDATEs the ORM did not see.
    balance, reserved = await credits.balance_of(session, account_id)
    email = await accounts.owner_email(session, account_id) or "(no owner)"
    return AccountView(account.id, email, balance, reserved)


async def add_account(settings: Settings, email: str, credits_granted: int) -> AccountView:
    async def work(session: AsyncSession) -> AccountView:
        account = await create_account(
            session, email, credits_granted=credits_granted, now=time.time()
        )
        return await _view(session, account.id)

    return await _in_transaction(settings, work)


async def show_account(settings: Settings, email: str) -> AccountView:
    async def work(session: AsyncSession) -> AccountView:
        return await _view(session, (await require_account(session, email)).id)

    return await _in_transaction(settings, work)


async def grant_credits(settings: Settings, email: str, amount: int) -> AccountView:
    async def work(session: AsyncSession) -> AccountView:
        account = await require_account(session, email)
        now = time.time()
        await grant(session, account.id, amount, now)
        await record(
            session, CLI, "credits.grant", now=now, account_id=account.id, detail={"amount": amount}
        )
        return await _view(session, account.id)

    return await _in_transaction(settings, work)


async def adjust_credits(settings: Settings, email: str, amount: int, reason: str) -> AccountView:
    """An operator's correction, up or down, with the reason why (ledger kind `adjustment`)."""

    async def work(session: AsyncSession) -> AccountView:
        account = await require_account(session, email)
        await actions.adjust_credits(session, CLI, account.id, amount, reason, now=time.time())
        return await _view(session, account.id)

    return await _in_transaction(settings, work)


async def set_disabled(settings: Settings, email: str, *, disabled: bool) -> tuple[str, bool]:
    """(account id, whether it changed): disable or enable the account `email` owns. Running
    servers refuse its keys on their next lookup of each key (within 2 seconds)."""

    async def work(session: AsyncSession) -> tuple[str, bool]:
        account = await require_account(session, email)
        action = actions.disable_account if disabled else actions.enable_account
        return account.id, await action(session, CLI, account.id, now=time.time())

    return await _in_transaction(settings, work)


async def promote(settings: Settings, email: str) -> bool:
    """Make the person an admin (False: they already were); their sessions end."""

    async def work(session: AsyncSession) -> bool:
        user_id = await _require_user(session, email)
        return await actions.promote_user(session, CLI, user_id, now=time.time())

    return await _in_transaction(settings, work)


def _known_models(settings: Settings) -> frozenset[str]:
    """The models a key's allowlist may name: this gateway's catalog."""
    return frozenset(load_catalog(settings.catalog_path).models)


async def new_key(
    settings: Settings,
    email: str,
    name: str = "",
    *,
    limits: KeyLimits | None = None,
    kind: str = "model",
) -> NewKey:
    known = _known_models(settings) if limits is not None else frozenset[str]()

    async def work(session: AsyncSession) -> NewKey:
        account = await require_account(session, email)
        row, issued = await issue_key(
            session,
            account.id,
            name=name,
            now=time.time(),
            kind=kind,
            limits=limits,
            known_models=known,
        )
        return NewKey(row.id, issued.plaintext, kind)

    return await _in_transaction(settings, work)


async def set_key_limits(settings: Settings, key_id: str, changes: dict[str, Any]) -> KeyView:
    """Change a key's limits (any account's: the operator's command)."""
    known = _known_models(settings)

    async def work(session: AsyncSession) -> KeyView:
        row = await keys.get(session, key_id)
        if row is None:
            raise GatewayError("no such key", param="key_id", code="not_found")
        now = time.time()
        await set_limits(session, row, changes, known_models=known, now=now)
        await session.refresh(row)
        return view_of(row, now)

    return await _in_transaction(settings, work)


async def revoke(settings: Settings, key_id_or_key: str) -> bool:
    async def work(session: AsyncSession) -> bool:
        return await revoke_key(session, key_id_or_key, now=time.time())

    return await _in_transaction(settings, work)


async def set_webhook(settings: Settings, key_id: str, url: str | None) -> bool:
    """Set (or, with None, clear) a key's default webhook URL; False: no such key. The URL is
    refused unless it resolves to public addresses (or `webhook_allow_networks`)."""
    fetcher = AsyncFetcher(settings.webhook_url_policy)
    checked = await webhooks.check_url(fetcher, url) if url is not None else None

    async def work(session: AsyncSession) -> bool:
        return await webhooks.set_default_url(session, key_id, checked)

    return await _in_transaction(settings, work)


async def webhook_secret(settings: Settings, key_id: str, *, rotate: bool) -> str | None:
    """A key's webhook signing secret (made on first use, or new with `rotate`); None: no
    such key."""
    fleet_secret = await resolve_for(settings, migrate=True)

    async def work(session: AsyncSession) -> str | None:
        return await webhooks.signing_secret(
            session, fleet_secret, key_id, now=time.time(), rotate=rotate
        )

    return await _in_transaction(settings, work)


async def list_keys(settings: Settings, email: str) -> list[KeyView]:
    """Each key of the account: metadata, limits and spend in the current period."""

    async def work(session: AsyncSession) -> list[KeyView]:
        account = await require_account(session, email)
        now = time.time()
        return [view_of(row, now) for row in await keys.list_for_account(session, account.id)]

    return await _in_transaction(settings, work)


async def ensure_account(settings: Settings, email: str, minimum_credits: int) -> AccountView:
    """The demo's account: created once, topped up to `minimum_credits` on each start."""

    async def work(session: AsyncSession) -> AccountView:
        account = await accounts.find_owned_by_email(session, email)
        if account is None:
            account = await create_account(session, email, credits_granted=0, now=time.time())
        view = await _view(session, account.id)
        if view.balance < minimum_credits:
            await grant(session, account.id, minimum_credits - view.balance, time.time())
        return await _view(session, account.id)

    return await _in_transaction(settings, work)


async def _user_view(session: AsyncSession, user_id: str) -> UserView:
    user = await users.get_user(session, user_id)
    assert user is not None
    consents = await users.list_consents(session, user_id)
    account_ids = tuple(await accounts.owned_account_ids(session, user_id))
    disabled = []
    for account_id in account_ids:
        account = await accounts.get(session, account_id)
        if account is not None and account.disabled_at is not None:
            disabled.append(account_id)
    return UserView(
        id=user.id,
        email=user.email,
        role=user.role,
        verified=user.email_verified_at is not None,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
        account_ids=account_ids,
        disabled_account_ids=tuple(disabled),
        sessions=len(await users.list_sessions(session, user_id)),
        consents=tuple((c.kind, c.policy_version, c.accepted_at) for c in consents),
        two_factor=user.totp_enabled_at is not None,
    )


async def _require_user(session: AsyncSession, email: str) -> str:
    user = await users.find_user_by_email(session, normalise_email(email))
    if user is None:
        raise GatewayError("no user with this email", param="email", code="not_found")
    return user.id


async def list_users(settings: Settings, *, limit: int = 1000) -> list[UserView]:
    async def work(session: AsyncSession) -> list[UserView]:
        return [
            await _user_view(session, user.id)
            for user in await users.list_users(session, limit=limit)
        ]

    return await _in_transaction(settings, work)


async def show_user(settings: Settings, email: str) -> UserView:
    async def work(session: AsyncSession) -> UserView:
        return await _user_view(session, await _require_user(session, email))

    return await _in_transaction(settings, work)


async def _required_user_id(data: PersonalData, email: str) -> str:
    user_id = await data.user_id_for(email)
    if user_id is None:
        raise GatewayError("no user with this email", param="email", code="not_found")
    return user_id


async def remove_user(settings: Settings, email: str) -> Deletion:
    """The person's own account deletion, run by an operator (an account reported as a
    child's, a request by mail) and audited: keys, sessions, jobs, outputs, usage; payments
    kept."""

    async def work(rt: Runtime) -> Deletion:
        data = PersonalData.for_runtime(rt)
        deleted = await data.delete(await _required_user_id(data, email), actor=CLI)
        if deleted is None:
            raise GatewayError("no user with this email", param="email", code="not_found")
        return deleted

    return await _with_runtime(settings, work)


async def export_user(settings: Settings, email: str) -> dict[str, Any]:
    """The person's data export, as Settings → Data gives it."""

    async def work(rt: Runtime) -> dict[str, Any]:
        data = PersonalData.for_runtime(rt)
        document = await data.export(await _required_user_id(data, email))
        if document is None:
            raise GatewayError("no user with this email", param="email", code="not_found")
        return document

    return await _with_runtime(settings, work)


async def reset_two_factor(settings: Settings, email: str) -> None:
    """Turn a user's two-factor authentication off (secret and backup codes deleted), end
    their sessions and mail them: for someone who lost their app and their backup codes, once
    the operator has confirmed who they are."""
    mail = MailComposer.from_settings(settings)

    async def work(session: AsyncSession) -> None:
        user_id = await _require_user(session, email)
        user = await users.get_user(session, user_id)
        assert user is not None
        now = time.time()
        await users.set_totp_secret(session, user_id, None)
        await users.delete_backup_codes(session, user_id)
        ended = await users.delete_sessions(session, user_id=user_id)
        await enqueue(session, mail.two_factor_changed(user.email, now, on=False), now)
        await record(
            session,
            CLI,
            "user.reset_2fa",
            now=now,
            target_user_id=user_id,
            detail={"sessions_ended": ended},
        )

    await _in_transaction(settings, work)


async def delete_outputs(settings: Settings, task_id: str) -> OutputsDeleted:
    """Delete every stored output of a task (an image request id or a video id), rows and
    objects, whichever account it belongs to: for an operator handling a deletion request."""
    if not is_task_id(task_id):
        raise GatewayError("not a task id (req_... or video_...)", param="task")

    async def work(rt: Runtime) -> OutputsDeleted:
        result = await delete_task_outputs(rt, task_id, None)
        assert result is not None  # without an account there is always a result
        return OutputsDeleted(*result)

    return await _with_runtime(settings, work)


async def purge_expired(settings: Settings) -> RetentionReport:
    """One run of the retention job (what every server process does periodically)."""
    return await _with_runtime(settings, purge_once)


async def send_notice(
    settings: Settings,
    draft: NoticeDraft,
    *,
    batch: int = 100,
    on_batch: Callable[[Progress], None] | None = None,
) -> Progress:
    """Queue a policy change notice or a newsletter issue for everyone it is meant for and
    not yet queued for (a second run of the same notice continues the first)."""
    settings.ensure_database_dir()
    db = Database(settings.resolved_database_url)
    try:
        await upgrade(db)
        notices = Notices(
            db,
            composer=MailComposer.from_settings(settings),
            unsubscribe_key=unsubscribe_key(await secret_of(db, settings)),
            clock=time.time,
            newsletter_offered=settings.newsletter_default != "off",
            batch=batch,
        )
        return await notices.send(draft, on_batch=on_batch)
    finally:
        await db.dispose()


async def unsubscribe(settings: Settings, email: str) -> bool:
    """Stop the newsletter for `email` (e.g. asked by mail); whether it was subscribed."""

    async def work(session: AsyncSession) -> bool:
        user_id = await _require_user(session, email)
        user = await users.get_user(session, user_id)
        was = bool(user is not None and user.newsletter)
        await set_newsletter(session, user_id, False)
        return was

    return await _in_transaction(settings, work)


async def create_promo(settings: Settings, terms: CodeTerms) -> PromoCode:
    """A new promotion code (audited, actor: cli)."""

    async def work(session: AsyncSession) -> PromoCode:
        return await promo_actions.create_code(session, CLI, terms, now=time.time())

    return await _in_transaction(settings, work)


async def list_promos(settings: Settings, *, limit: int = 1000) -> list[PromoCode]:
    """Promotion codes, the newest first."""

    async def work(session: AsyncSession) -> list[PromoCode]:
        return await codes(session, limit=limit)

    return await _in_transaction(settings, work)


async def disable_promo(settings: Settings, code: str) -> bool:
    """Withdraw a promotion code (by its text or id); False when it was already."""

    async def work(session: AsyncSession) -> bool:
        return await promo_actions.disable_code(session, CLI, code, now=time.time())

    return await _in_transaction(settings, work)
