"""The configured mail backend."""

from __future__ import annotations

from ..config import Settings
from .files import FileSender
from .sender import Sender

__all__ = ["build_sender"]


def build_sender(settings: Settings) -> Sender:
    # `email_backend` is "file" only for now; a new backend adds its name to the setting's
    # Literal and a branch here.
    return FileSender(settings.mail_dir, sender=settings.email_from)
