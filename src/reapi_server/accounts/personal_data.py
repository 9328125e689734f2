"""A person's data rights in one place: take it away (export) and leave (deletion). Settings →
Data and `reapi-server users export|delete` both call this, so the operator's path is the
person's own."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio

from ..audit import Actor
from ..email.compose import MailComposer
from ..email.files import forget_messages
from ..identity import repository as users
from ..identity.emails import normalise_email
from ..identity.throttle import Throttle
from ..links import Links
from ..runtime import Runtime
from . import export
from .closing import AccountPurged, purge_account
from .deletion import UserDeleted, delete_user

__all__ = ["Deletion", "PersonalData"]

log = logging.getLogger("reapi_server.accounts")

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Deletion:
    user: UserDeleted
    #: What went of each account right after; `removed` False while a request was in flight
    #: (the sweeper finishes it).
    accounts: tuple[AccountPurged, ...]


class PersonalData:
    def __init__(self, rt: Runtime, *, mail: MailComposer, throttle: Throttle, links: Links):
        self.rt = rt
        self.mail = mail
        self.throttle = throttle
        self.links = links

    @classmethod
    def for_runtime(cls, rt: Runtime) -> PersonalData:
        links = Links.from_settings(rt.settings)
        return cls(
            rt,
            mail=MailComposer.from_settings(rt.settings),
            throttle=Throttle.from_root(rt.fingerprint_secret),
            links=links,
        )

    async def user_id_for(self, email: str) -> str | None:
        async with self.rt.db.read() as session:
            user = await users.find_user_by_email(session, normalise_email(email))
        return user.id if user is not None else None

    async def _collect(
        self, user_id: str, sections: tuple[export.Section, ...]
    ) -> tuple[export.Subject, dict[str, list[export.Row]]] | None:
        async with self.rt.db.read() as session:  # one snapshot for every section
            subject = await export.subject_of(
                session,
                user_id,
                base_url=self.links.base_url,
                output_retention_seconds=self.rt.settings.retention_days * DAY,
                throttle=self.throttle,
            )
            if subject is None:
                return None
            return subject, await export.collect(session, subject, sections)

    async def export(self, user_id: str) -> dict[str, Any] | None:
        """The person's data as one document (every section); None: no such user."""
        collected = await self._collect(user_id, export.SECTIONS)
        if collected is None:
            return None
        subject, rows = collected
        return export.document(subject, rows, site=self.rt.settings.site_name, now=self.rt.now())

    async def section_csv(self, user_id: str, name: str) -> bytes | None:
        """One section of `export.SPREADSHEETS` as a spreadsheet-safe CSV file."""
        columns, cells = export.SPREADSHEETS[name]
        sections = tuple(s for s in export.SECTIONS if s.name == name)
        assert sections, f"no export section {name!r}"
        collected = await self._collect(user_id, sections)
        if collected is None:
            return None
        rows = collected[1][name]
        return export.to_csv([cells(row) for row in rows] if cells else rows, columns)

    async def delete(self, user_id: str, *, actor: Actor | None = None) -> Deletion | None:
        """Delete the person (`deletion.delete_user`), then what their accounts held
        (`closing.purge_account`). `actor`: the operator who asked (audited); None when the
        person deletes their own account. None: no such user."""
        rt = self.rt
        async with rt.db.write() as session:
            deleted = await delete_user(
                session,
                user_id,
                db=rt.db,
                now=rt.now(),
                mail=self.mail,
                throttle=self.throttle,
                actor=actor,
            )
        if deleted is None:
            return None
        for account_id in deleted.account_ids:  # refused at once here, and on the fleet's bus
            rt.auth.changed(account_id=account_id)
        if rt.settings.email_backend == "file":  # the messages' copies on this disk
            await anyio.to_thread.run_sync(forget_messages, rt.settings.mail_dir, deleted.mail_ids)
        purged = []
        for account_id in deleted.account_ids:
            try:
                purged.append(await purge_account(rt, account_id))
            except Exception as exc:  # the person is gone already; the sweeper finishes
                log.error("account not purged yet", extra={"code": type(exc).__name__})
        rt.db.personal_data_deleted()  # the WAL's copies of it too (`wal_erasure`)
        return Deletion(deleted, tuple(purged))
