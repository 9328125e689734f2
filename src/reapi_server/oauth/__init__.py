"""Sign-in with GitHub and Google (OAuth 2.0 authorization code with PKCE; OpenID Connect for
Google): the providers (`github`, `google`), the rules (`service`), their SQL (`repository`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Settings

if TYPE_CHECKING:  # httpx2 comes with the providers: loaded by the sign-in pages
    from .providers import Provider

__all__ = ["configured_providers"]


def configured_providers(settings: Settings) -> dict[str, Provider]:
    """The providers this installation has an OAuth app for, by name, in button order."""
    # Each imported only when configured: they bring authlib, joserfc and cryptography.
    found: dict[str, Provider] = {}
    if settings.oauth.github.configured:
        from .github import GitHub

        found["github"] = GitHub(settings.oauth.github)
    if settings.oauth.google.configured:
        from .google import Google

        found["google"] = Google(settings.oauth.google)
    return found
