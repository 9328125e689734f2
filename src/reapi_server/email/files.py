"""The file backend: each message becomes an RFC 5322 `.eml` file under `<data_dir>/mail/`,
readable by the server's user only (the files hold one-time links). The demo's default, and how
tests read their mail: a file appears only once the outbox has delivered the message.

A file is the whole message (links, addresses, a receipt's amounts), kept on the server's own
disk: the files go as the outbox's rows do. The outbox's periodic purge removes those older than
its rows' keep (`forget_before`, about 30 days), and deleting an account removes the files of
every message to the person (`forget_messages`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import anyio

from reapi.core import translated_async

from .message import Message
from .sender import SendFailed

__all__ = ["FileSender", "forget_messages", "render_eml"]


def render_eml(message: Message, *, message_id: str, sender: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(idstring=message_id, domain="reapi.local")
    for name, value in message.headers.items():
        mail[name] = value
    # 8bit plain text: the links stay whole for a person reading the file as it is.
    mail.set_content(message.text, cte="8bit")
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html", cte="quoted-printable")
    return bytes(mail)


class FileSender:
    name = "file"

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, message: Message, *, message_id: str) -> None:
        data = render_eml(message, message_id=message_id, sender=self.sender)
        await translated_async(
            lambda: anyio.to_thread.run_sync(self._write, message_id, data),
            OSError,
            lambda error: SendFailed(type(error).__name__),
        )

    async def aclose(self) -> None:
        return None

    async def forget_before(self, cutoff: float) -> int:
        """Remove the messages (and a crashed write's partial file) last written before
        `cutoff`; how many went."""
        return await anyio.to_thread.run_sync(_remove_older, self.directory, cutoff)

    def _write(self, message_id: str, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Sorted by time in a listing; the id makes a retried send overwrite, not duplicate.
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"
        final = self.directory / f"{stamp}-{message_id}.eml"
        for existing in self.directory.glob(f"*-{message_id}.eml"):
            final = existing
        partial = final.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, final)  # whole files only: a reader never sees half a message


def _remove_older(directory: Path, cutoff: float) -> int:
    removed = 0
    for path in (*directory.glob("*.eml"), *directory.glob("*.part")):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process removed it first
            continue
    return removed


def forget_messages(directory: Path, message_ids: Iterable[str]) -> int:
    """Remove the files of these outbox messages (their person is being deleted); how many
    went. A message whose file is being written right now is left to `forget_before`."""
    removed = 0
    for message_id in message_ids:
        for path in directory.glob(f"*-{message_id}.eml"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
