"""Who else handles personal data for this installation, from its configuration: the
upstream providers that have a key, object storage when it is S3 or R2, the PostgreSQL database
and Redis when they run on another host (a hosted database holds everything the policy says is
kept), GitHub and Google when people sign in with them, Resend when it sends the mail,
Turnstile and a chat widget when enabled. An integration that sends data to a third party
(payments) adds its line here, shown only when configured."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings

__all__ = ["Subprocessor", "as_markdown", "subprocessors"]


@dataclass(frozen=True, slots=True)
class Subprocessor:
    name: str
    purpose: str


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def subprocessors(settings: Settings, providers: Mapping[str, str]) -> list[Subprocessor]:
    """`providers`: name → base URL of each upstream provider this gateway can call."""
    found = [
        Subprocessor(
            f"{name} ({_host(url)})",
            "generates the images and videos you request; receives your request while it runs",
        )
        for name, url in sorted(providers.items())
    ]
    if settings.storage_backend == "s3":
        endpoint = settings.s3_endpoint_url or ""
        where = (
            "Cloudflare R2"
            if _host(endpoint).endswith("r2.cloudflarestorage.com")
            else f"S3-compatible object storage ({_host(endpoint) if endpoint else 'AWS S3'})"
        )
        found.append(Subprocessor(where, "stores your generated outputs"))
    found += _servers_elsewhere(settings)
    if settings.email_backend == "resend":
        found.append(
            Subprocessor(
                f"Resend ({_host(settings.resend_base_url)})",
                "delivers the email we send you: your address and the message",
            )
        )
    if settings.billing.enabled:
        found.append(
            Subprocessor(
                "Stripe",
                "takes your payments for credit: your email address, your card or bank details "
                "(which we never see) and, when you give them, your billing address and tax ID",
            )
        )
    found += _sign_in_and_embeds(settings)
    return found


#: Hosts that are this machine: a database or Redis there is the operator's own.
_THIS_MACHINE = frozenset({"", "localhost", "::1"})


def _remote_host(url: str) -> str | None:
    """The host a server URL names, unless it is this machine (loopback, a Unix socket)."""
    host = urlsplit(url).hostname or ""
    return None if host in _THIS_MACHINE or host.startswith("127.") else host


def _servers_elsewhere(settings: Settings) -> list[Subprocessor]:
    """The database and Redis on another host: often a hosting company's (as object storage
    is), which then holds what they hold. Like S3-compatible storage, listed by host: only
    the operator knows whose machine it is, and can say so in their own policy."""
    found = []
    database = settings.database_url or ""
    host = _remote_host(database) if database.startswith("postgresql") else None
    if host is not None:
        found.append(
            Subprocessor(
                f"PostgreSQL database ({host})",
                "holds everything this policy says we keep, for as long as it says",
            )
        )
    redis = settings.redis_url.get_secret_value() if settings.redis_url is not None else ""
    host = _remote_host(redis) if redis else None
    if host is not None:
        found.append(
            Subprocessor(
                f"Redis ({host})",
                "shares request counts between our servers, by API key and account (never "
                "your requests), for a minute at most",
            )
        )
    return found


def _sign_in_and_embeds(settings: Settings) -> list[Subprocessor]:
    found = []
    for label, app in (("GitHub", settings.oauth.github), ("Google", settings.oauth.google)):
        if app.configured:
            found.append(
                Subprocessor(
                    label,
                    f"signs you in when you choose {label}; we receive your {label} user id "
                    "and email address, nothing more",
                )
            )
    if settings.turnstile_site_key:
        found.append(
            Subprocessor(
                "Cloudflare (Turnstile)",
                "checks that a person sends the sign-up and password reset forms; receives "
                "your IP address and browser signals while you fill them in",
            )
        )
    if settings.chat_widget_script_url:
        found.append(
            Subprocessor(
                f"{settings.chat_widget_name} ({_host(settings.chat_widget_script_url)})",
                "the chat-support widget on every page; receives what you write in it and "
                "your browser's requests for it",
            )
        )
    return found


def as_markdown(found: list[Subprocessor]) -> str:
    if not found:
        return "- none"
    return "\n".join(f"- **{s.name}**: {s.purpose}" for s in found)
