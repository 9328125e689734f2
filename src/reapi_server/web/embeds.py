"""Third-party code an operator may let into the pages, and nothing unless they do: Cloudflare
Turnstile on the sign-up and password reset forms, and a chat-support widget on every page;
and the sign-in providers' pages the sign-in forms lead to.

From the configuration come, together so they cannot disagree: the Content-Security-Policy
(the strict one, plus exactly the sources each enabled embed needs), the cookie policy's lines
for the cookies those services set, and what the templates load (external scripts only; the
CSP still forbids inline script)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from .cookies import CookieInfo
from .security import content_security_policy

__all__ = ["TURNSTILE_ORIGIN", "TURNSTILE_SCRIPT", "Embeds"]

TURNSTILE_ORIGIN = "https://challenges.cloudflare.com"
TURNSTILE_SCRIPT = TURNSTILE_ORIGIN + "/turnstile/v0/api.js"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _sign_in_origins(settings: Settings) -> list[str]:
    """Where the configured providers' authorization pages are (Google's is on its discovery
    document's origin, as accounts.google.com's is)."""
    apps = settings.oauth
    found = []
    if apps.github.configured:
        found.append(_origin(apps.github.authorize_url))
    if apps.google.configured:
        found.append(_origin(apps.google.discovery_url))
    return found


@dataclass(frozen=True, slots=True)
class Embeds:
    #: Turnstile's public site key (None: off).
    turnstile_site_key: str | None = None
    #: The chat widget's script (None: off), the sources it needs, who runs it, its cookies.
    chat_script_url: str | None = None
    chat_sources: tuple[str, ...] = ()
    chat_name: str = ""
    chat_cookies: tuple[str, ...] = ()
    #: The sign-in providers' authorization pages: "Continue with GitHub" is a form whose
    #: answer redirects there, which `form-action` must allow (browsers check redirects too).
    sign_in_origins: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Embeds:
        return cls(
            turnstile_site_key=settings.turnstile_site_key,
            chat_script_url=settings.chat_widget_script_url,
            chat_sources=tuple(settings.chat_widget_csp_sources),
            chat_name=settings.chat_widget_name,
            chat_cookies=tuple(settings.chat_widget_cookies),
            sign_in_origins=tuple(_sign_in_origins(settings)),
        )

    @property
    def turnstile_script(self) -> str | None:
        return TURNSTILE_SCRIPT if self.turnstile_site_key else None

    def csp(self) -> str:
        script: list[str] = []
        frame: list[str] = []
        connect: list[str] = []
        media: list[str] = []
        if self.turnstile_site_key:
            script.append(TURNSTILE_ORIGIN)
            frame.append(TURNSTILE_ORIGIN)
        if self.chat_script_url:
            https = [s for s in self.chat_sources if s.startswith("https://")]
            script += [_origin(self.chat_script_url), *https]
            frame += https
            media += https
            connect += self.chat_sources  # its wss:// sources too
        return content_security_policy(
            script=script, frame=frame, connect=connect, media=media, form=self.sign_in_origins
        )

    def cookies(self) -> list[CookieInfo]:
        """The cookie policy's lines for the services enabled here (their cookies, not ours)."""
        found = []
        if self.turnstile_site_key:
            found.append(
                CookieInfo(
                    "Cloudflare Turnstile",
                    "Checks that a person, not a program, sends the sign-up and password reset "
                    "forms. The check runs in a frame from challenges.cloudflare.com, which may "
                    "set its own cookies there; this site never reads them. Cloudflare's "
                    "Turnstile privacy addendum describes them.",
                    "Set by Cloudflare; short-lived",
                    "When you open the sign-up or password reset page",
                    set_by="Cloudflare (challenges.cloudflare.com)",
                )
            )
        if self.chat_script_url:
            host = urlsplit(self.chat_script_url).hostname or self.chat_script_url
            named = ", ".join(self.chat_cookies) if self.chat_cookies else "as its policy describes"
            found.append(
                CookieInfo(
                    "Chat support",
                    f"Lets you write to our support team. The chat widget comes from {host} and "
                    f"sets its own cookies: {named}. This site never reads them.",
                    f"Set by {self.chat_name}",
                    "When you open any page of this site",
                    set_by=f"{self.chat_name} ({host})",
                )
            )
        return found
