"""The messages the gateway sends, made from the templates in `templates/` (Jinja2: a plain
text part always, an HTML part beside it). One method per message, so a caller cannot send a
template with the wrong variables."""

from __future__ import annotations

import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..links import Links
from .message import Message

__all__ = ["MailComposer"]


class MailComposer:
    def __init__(self, *, site_name: str, links: Links) -> None:
        self.site_name = site_name
        self.links = links
        self._env = Environment(
            loader=PackageLoader("reapi_server.email", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def _render(self, template: str, *, to: str, subject: str, **context: Any) -> Message:
        values = {"site_name": self.site_name, "subject": subject, **context}
        return Message(
            to=to,
            subject=subject,
            text=self._env.get_template(f"{template}.txt").render(values),
            html=self._env.get_template(f"{template}.html").render(values),
            template=template,
        )

    def verify_email(self, to: str, token: str) -> Message:
        return self._render(
            "verify_email",
            to=to,
            subject=f"Confirm your email address for {self.site_name}",
            link=self.links.verify_email(token),
        )

    def reset_password(self, to: str, token: str) -> Message:
        return self._render(
            "reset_password",
            to=to,
            subject=f"Reset your {self.site_name} password",
            link=self.links.reset_password(token),
        )

    def password_changed(self, to: str, when: float) -> Message:
        return self._render(
            "password_changed",
            to=to,
            subject=f"Your {self.site_name} password was changed",
            when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when)),
            reset_link=self.links.page("/reset"),
            settings_link=self.links.settings(),
        )

    def account_deleted(self, to: str, when: float) -> Message:
        """The confirmation of an account's deletion, to the address it had (the outbox forgets
        the message, address included, once it is sent)."""
        return self._render(
            "account_deleted",
            to=to,
            subject=f"Your {self.site_name} account is deleted",
            email=to,
            when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when)),
        )
