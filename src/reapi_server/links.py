"""Absolute addresses of the web pages that mail and redirects point to. Built from the
configured public address (`public_base_url`, else `http://host:port`), never from a request's
Host header, which the client chooses."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .config import Settings

__all__ = ["Links"]


@dataclass(frozen=True, slots=True)
class Links:
    base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Links:
        if settings.public_base_url:
            return cls(settings.public_base_url.rstrip("/"))
        host = settings.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104  (naming the wildcard, not binding it)
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return cls(f"http://{host}:{settings.port}")

    @property
    def origin(self) -> str:
        """scheme://host[:port], as browsers send it in `Origin`."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    def page(self, path: str, **query: str) -> str:
        url = self.base_url + path
        return f"{url}?{urlencode(query)}" if query else url

    def verify_email(self, token: str) -> str:
        return self.page("/verify", token=token)

    def reset_password(self, token: str) -> str:
        return self.page("/reset/confirm", token=token)

    def change_email(self, token: str) -> str:
        return self.page("/settings/email/confirm", token=token)

    def settings(self) -> str:
        return self.page("/settings")

    def sign_in(self) -> str:
        return self.page("/login")

    def unsubscribe(self, token: str) -> str:
        """A newsletter's one-click unsubscribe address (RFC 8058)."""
        return self.page(f"/unsubscribe/{token}")
