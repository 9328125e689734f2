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


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


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

    def _security_notice(
        self, template: str, *, to: str, subject: str, when: float, **context: Any
    ) -> Message:
        """A notice of a change to the account, with what to do if it was not the owner."""
        return self._render(
            template,
            to=to,
            subject=subject,
            when=_when(when),
            reset_link=self.links.page("/reset"),
            settings_link=self.links.settings(),
            **context,
        )

    def password_changed(self, to: str, when: float) -> Message:
        return self._security_notice(
            "password_changed",
            to=to,
            subject=f"Your {self.site_name} password was changed",
            when=when,
        )

    def change_email(self, to: str, token: str, *, old: str) -> Message:
        """To the NEW address: the link that makes the change."""
        return self._render(
            "change_email",
            to=to,
            subject=f"Confirm your new email address for {self.site_name}",
            link=self.links.change_email(token),
            old=old,
        )

    def email_change_requested(self, to: str, when: float, *, new: str) -> Message:
        """To the current address, when a change to `new` is asked for."""
        return self._security_notice(
            "email_change_requested",
            to=to,
            subject=f"Your {self.site_name} email address is being changed",
            when=when,
            new=new,
        )

    def email_changed(self, to: str, when: float, *, new: str) -> Message:
        """To the OLD address, once the change is made."""
        return self._security_notice(
            "email_changed",
            to=to,
            subject=f"Your {self.site_name} email address was changed",
            when=when,
            new=new,
        )

    def new_device_sign_in(self, to: str, when: float, *, device: str, address: str) -> Message:
        return self._security_notice(
            "new_device",
            to=to,
            subject=f"New sign-in to your {self.site_name} account",
            when=when,
            device=device,
            address=address,
        )

    def two_factor_changed(self, to: str, when: float, *, on: bool) -> Message:
        state = "on" if on else "off"
        return self._security_notice(
            "two_factor_changed",
            to=to,
            subject=f"Two-factor authentication is {state} for your {self.site_name} account",
            when=when,
            on=on,
        )
