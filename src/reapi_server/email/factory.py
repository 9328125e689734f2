"""The configured mail backend."""

from __future__ import annotations

from ..config import Settings
from .files import FileSender
from .resend import ResendSender
from .sender import Sender

__all__ = ["build_sender"]


def build_sender(settings: Settings) -> Sender:
    if settings.email_backend == "resend":
        assert settings.resend_api_key is not None  # checked by Settings
        return ResendSender(
            api_key=settings.resend_api_key.get_secret_value(),
            base_url=settings.resend_base_url,
            sender=settings.email_from,
            timeout=settings.resend_timeout,
            requests_per_second=settings.resend_requests_per_second,
        )
    return FileSender(settings.mail_dir, sender=settings.email_from)
