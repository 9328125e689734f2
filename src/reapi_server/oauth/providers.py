"""What every sign-in provider does, whichever it is: send the browser to its authorization
page (authorization code flow with PKCE S256), then turn the code it sends back into who the
person is there (`ProviderIdentity`). Each provider's wire format is its own module's business
(`github`, `google`); authlib's OAuth 2.0 client does the protocol for both.

A provider's refusals become `ProviderRefused` (the code is used or expired, a secret is
wrong, an id_token does not check out) or `ProviderUnavailable` (no answer, a 5xx); neither
repeats what the provider said. Nothing here logs a token, a code or an address.

authlib and joserfc (with cryptography: about 12 MiB resident) are imported on a provider's
first call, not with this module: every gateway process imports the sign-in pages, and most
serve no sign-in with a provider at all (issue 15).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx2

from reapi.core import translated_async

from .errors import OAuthError, ProviderRefused, ProviderUnavailable

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

__all__ = [
    "Provider",
    "ProviderIdentity",
    "oauth_client",
    "provider_call",
    "read_json",
]

log = logging.getLogger("reapi_server.oauth")

T = TypeVar("T")

#: Seconds for one call to a provider.
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    """Who the person is at the provider: all the gateway keeps of what it says."""

    #: The provider's user id (GitHub's numeric id, Google's `sub`), as text.
    subject: str
    #: Their address there, as the provider gave it (None: it gave none).
    email: str | None
    #: The provider says the address is theirs.
    email_verified: bool


class Provider(Protocol):
    #: "github" | "google": the path segment and the stored provider name.
    name: str
    #: "GitHub" | "Google": what a person reads.
    label: str
    #: OpenID Connect: the authorization request carries a nonce the id_token must repeat.
    uses_nonce: bool

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str | None
    ) -> str: ...

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str | None, now: float
    ) -> ProviderIdentity: ...


def oauth_client(
    client_id: str, client_secret: str, *, scope: str, redirect_uri: str
) -> AsyncOAuth2Client:
    """authlib's client for one sign-in: PKCE S256, the secret in the token request's form."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",  # noqa: S106  (a method's name)
        timeout=TIMEOUT,
        follow_redirects=False,
    )


@cache
def _authlib_refusal() -> type[Exception]:
    from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError

    refusal: type[Exception] = AuthlibOAuthError
    return refusal


@cache
def _failures() -> tuple[type[Exception], ...]:
    """What a call to a provider may raise: authlib's OAuth errors (the provider refused), and
    no answer or an unreadable one (a JWKS without keys included)."""
    from joserfc.errors import JoseError

    return (_authlib_refusal(), httpx2.HTTPError, JoseError, ValueError, KeyError, TypeError)


def _failure(label: str, original: BaseException) -> OAuthError:
    """The refusal a provider's failure becomes; only its kind is logged."""
    if isinstance(original, _authlib_refusal()):
        # The provider's error code only.
        word = re.sub(r"[^a-z_]", "", str(getattr(original, "error", "")))[:40]
        log.warning("provider refused a sign-in", extra={"code": f"{label}:{word}"})
        return ProviderRefused(label)
    log.warning("provider call failed", extra={"code": f"{label}:{type(original).__name__}"})
    return ProviderUnavailable(label)


async def provider_call(label: str, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, which talks to a provider: its OAuth errors become `ProviderRefused`, no answer
    or an unreadable one `ProviderUnavailable`, carrying nothing of the original (whose request
    holds the client secret or the code)."""
    return await translated_async(call, _failures(), lambda original: _failure(label, original))


def read_json(response: httpx2.Response, label: str) -> Any:
    """The JSON body of a provider's answer: a 5xx or 429 is `ProviderUnavailable`, another
    error status `ProviderRefused`."""
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(label)
    if response.status_code >= 400:
        raise ProviderRefused(label)
    return response.json()
