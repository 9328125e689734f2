"""The messages the gateway sends, made from the templates in `templates/` (Jinja2: a plain
text part always, an HTML part beside it, on one layout drawn with tables and inline styles,
which is what mail clients render alike). One method per message, so a caller cannot send a
template with the wrong variables.

Only `newsletter` makes newsletter mail: it alone carries List-Unsubscribe and
List-Unsubscribe-Post (RFC 8058); every other message is transactional and carries neither.
"""

from __future__ import annotations

import time
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..links import Links
from .message import Message, MessageKind

if TYPE_CHECKING:  # Jinja2 and markdown-it load with the first message, not at start-up
    from jinja2 import Environment

    from .markdown import MailBody

__all__ = ["MailComposer"]


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


class MailComposer:
    def __init__(
        self,
        *,
        site_name: str,
        links: Links,
        contact: str | None = None,
        unsubscribe_mailto: str | None = None,
    ) -> None:
        self.site_name = site_name
        self.links = links
        #: How to reach the operator (`operator_contact`), named where a person may need it.
        self.contact = contact
        #: A mailbox offered beside the one-click link in List-Unsubscribe.
        self.unsubscribe_mailto = unsubscribe_mailto

    @cached_property
    def _env(self) -> Environment:
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

        return Environment(
            loader=PackageLoader("reapi_server.email", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MailComposer:
        return cls(
            site_name=settings.site_name,
            links=Links.from_settings(settings),
            contact=settings.operator_contact,
            unsubscribe_mailto=settings.newsletter_unsubscribe_mailto,
        )

    def _render(
        self,
        template: str,
        *,
        to: str,
        subject: str,
        kind: MessageKind = "transactional",
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Message:
        values = {"site_name": self.site_name, "subject": subject, "to": to, **context}
        return Message(
            to=to,
            subject=subject,
            text=self._env.get_template(f"{template}.txt").render(values),
            html=self._env.get_template(f"{template}.html").render(values),
            template=template,
            kind=kind,
            headers=headers or {},
        )

    def welcome(self, to: str, token: str | None) -> Message:
        """At sign-up: a welcome, with the verification link when the address needs one."""
        return self._render(
            "welcome",
            to=to,
            subject=(
                f"Confirm your email address: welcome to {self.site_name}"
                if token
                else f"Welcome to {self.site_name}"
            ),
            link=self.links.verify_email(token) if token else None,
            settings_link=self.links.settings(),
            contact=self.contact,
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
            contact=self.contact,
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

    def account_deleted(self, to: str, when: float) -> Message:
        """The confirmation of a deletion, queued in the deletion's transaction (after the
        user's queued mail was dropped)."""
        return self._render(
            "account_deleted",
            to=to,
            subject=f"Your {self.site_name} account was deleted",
            when=_when(when),
            contact=self.contact,
        )

    def payment_receipt(
        self,
        to: str,
        *,
        when: float,
        product: str,
        credits: int,
        amount: str,
        automatic: bool,
        invoice_url: str | None,
        invoice_pdf: str | None,
        receipt_url: str | None,
    ) -> Message:
        """After each purchase and each automatic top-up: what was bought, and the invoice (a
        purchase through Checkout) or the charge's receipt (an automatic top-up)."""
        return self._render(
            "payment_receipt",
            to=to,
            subject=f"Your {self.site_name} receipt: {credits:,} credits",
            when=_when(when),
            product=product,
            credits=f"{credits:,}",
            amount=amount,
            automatic=automatic,
            invoice_link=invoice_url,
            invoice_pdf=invoice_pdf,
            receipt_link=receipt_url,
            billing_link=self.links.page("/dashboard/billing/history"),
        )

    def auto_top_up_paused(
        self,
        to: str,
        *,
        when: float,
        code: str,
        product: str | None = None,
        amount: str | None = None,
    ) -> Message:
        """Auto top-up is off until the person turns it on again: the bank refused an automatic
        top-up of `product` for `amount` (`code`: Stripe's), or money of the account went back
        (`code`: `refunded`, `disputed`; no product)."""
        reasons = {
            "authentication_required": "your bank asked you to confirm the payment, which an "
            "automatic charge cannot do",
            "insufficient_funds": "your bank declined it for insufficient funds",
            "expired_card": "the card has expired",
            "refunded": "a payment of yours was refunded",
            "disputed": "a payment of yours is disputed with your bank",
            "charge_refused": "the payment provider refused to charge the saved payment method "
            "(it may have been removed); save one again with your next purchase",
            "amount_mismatch": "the last automatic payment did not match its credit pack and "
            "is held for the operator to review",
        }
        return self._render(
            "auto_top_up_paused",
            to=to,
            subject=f"Automatic top-up of your {self.site_name} balance is paused",
            when=_when(when),
            product=product,
            amount=amount,
            money_back=product is None,
            reason=reasons.get(code, "your bank declined the card"),
            authentication=code == "authentication_required",
            billing_link=self.links.page("/dashboard/billing"),
        )

    def balance_low(
        self, to: str, *, threshold: int, balance: int, auto_top_up_below: int | None = None
    ) -> Message:
        """The balance fell below a threshold its owner set (`alerts`); `auto_top_up_below`:
        automatic top-up is on and buys credits below this balance."""
        return self._render(
            "balance_low",
            to=to,
            subject=f"Your {self.site_name} balance is below {threshold:,} credits",
            threshold=f"{threshold:,}",
            balance=f"{balance:,}",
            auto_top_up_below=f"{auto_top_up_below:,}" if auto_top_up_below is not None else "",
            billing_link=self.links.page("/dashboard/billing"),
            settings_link=self.links.settings() + "#notifications",
        )

    def key_spend_high(
        self,
        to: str,
        *,
        key_name: str,
        percent: int,
        spend: int,
        limit: int,
        period_words: str,
        resets: float | None,
    ) -> Message:
        """A key spent the share of its spend limit its owner set (`alerts`)."""
        return self._render(
            "key_spend_high",
            to=to,
            subject=f"Your {self.site_name} key {key_name} has spent {percent}% of its limit",
            key_name=key_name,
            percent=percent,
            spend=f"{spend:,}",
            limit=f"{limit:,}",
            period_words=period_words,
            resets=None
            if resets is None
            else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(resets)),
            keys_link=self.links.page("/dashboard/keys"),
            settings_link=self.links.settings() + "#notifications",
        )

    def policy_change(self, to: str, *, subject: str, effective: date, body: MailBody) -> Message:
        """A notice to every account holder before a policy change takes effect."""
        return self._render(
            "policy_change",
            to=to,
            subject=subject,
            effective=_day(effective),
            body_html=body.html,
            body_text=body.text,
            privacy_link=self.links.page("/legal/privacy"),
            terms_link=self.links.page("/legal/terms"),
            settings_link=self.links.settings(),
        )

    def newsletter(self, to: str, *, subject: str, body: MailBody, unsubscribe: str) -> Message:
        """One recipient's copy of a newsletter issue; `unsubscribe` is their token."""
        link = self.links.unsubscribe(unsubscribe)
        targets = [f"<{link}>"]
        if self.unsubscribe_mailto:
            targets.append(
                f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{unsubscribe}>"
            )
        return self._render(
            "newsletter",
            to=to,
            subject=subject,
            kind="newsletter",
            headers={
                "List-Unsubscribe": ", ".join(targets),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            body_html=body.html,
            body_text=body.text,
            unsubscribe_link=link,
            settings_link=self.links.settings() + "#notifications",
        )
