"""Sign-in with Google: OpenID Connect's authorization code flow with PKCE and a nonce.

Endpoints and signing keys come from the discovery document (kept for an hour; the keys are
fetched again when an id_token names one we do not have). The id_token from the token endpoint
is the answer: its RS256 signature is checked against the published JWKS, then its claims —
`iss` is the issuer, `aud` (and `azp`) this client, `exp` not passed, `nonce` the one this
sign-in sent, `at_hash` the access token's. Its `sub`, `email` and `email_verified` are all
the gateway keeps.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from ..config import GoogleApp
from .errors import ProviderRefused, ProviderUnavailable
from .providers import ProviderIdentity, oauth_client, provider_call, read_json

__all__ = ["DISCOVERY_SUFFIX", "Google"]

SCOPE = "openid email"
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
#: Google's documented issuers: the URL, and the bare host older tokens carry.
_GOOGLE_ISSUER = "https://accounts.google.com"
#: Seconds the discovery document and keys are kept.
_CACHE_SECONDS = 3600.0
#: Clock difference tolerated on `exp` and `iat`.
_LEEWAY = 120

log = logging.getLogger("reapi_server.oauth")


def _origin(url: object) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}"


class Google:
    name = "google"
    label = "Google"
    uses_nonce = True

    def __init__(self, app: GoogleApp) -> None:
        assert app.client_id is not None and app.client_secret is not None
        self.app = app
        self.client_id = app.client_id
        self.client_secret = app.client_secret.get_secret_value()
        self.issuer = app.issuer or app.discovery_url.removesuffix(DISCOVERY_SUFFIX)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    def _client(self, redirect_uri: str) -> Any:
        return oauth_client(
            self.client_id, self.client_secret, scope=SCOPE, redirect_uri=redirect_uri
        )

    def _issuers(self) -> list[str]:
        if self.issuer == _GOOGLE_ISSUER:
            return [_GOOGLE_ISSUER, "accounts.google.com"]
        return [self.issuer]

    async def _discover(self, client: Any, *, refresh: bool = False) -> dict[str, Any]:
        fresh = time.monotonic() - self._fetched_at < _CACHE_SECONDS
        if self._metadata is None or self._keys is None or refresh or not fresh:

            async def fetch() -> tuple[dict[str, Any], KeySet]:
                metadata = read_json(
                    await client.request("GET", self.app.discovery_url, withhold_token=True),
                    self.label,
                )
                if not isinstance(metadata, dict) or metadata.get("issuer") not in self._issuers():
                    # The document is for another issuer: a misconfiguration, not a person's.
                    raise ProviderUnavailable(self.label)
                jwks = read_json(
                    await client.request("GET", metadata["jwks_uri"], withhold_token=True),
                    self.label,
                )
                return metadata, KeySet.import_key_set(jwks)

            self._metadata, self._keys = await provider_call(self.label, fetch)
            self._fetched_at = time.monotonic()
        assert self._metadata is not None
        return self._metadata

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str | None
    ) -> str:
        async with self._client(redirect_uri) as client:
            metadata = await self._discover(client)
            if _origin(metadata["authorization_endpoint"]) != _origin(self.app.discovery_url):
                # The pages' CSP (form-action) lets sign-in forms lead to the discovery
                # document's origin only: a browser would stop the redirect silently.
                log.error("google authorization endpoint on another origin", extra={"code": "csp"})
                raise ProviderUnavailable(self.label)
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
            )
        return str(url)

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str | None, now: float
    ) -> ProviderIdentity:
        async with self._client(redirect_uri) as client:
            metadata = await self._discover(client)
            token = await provider_call(
                self.label,
                lambda: client.fetch_token(
                    metadata["token_endpoint"],
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=redirect_uri,
                ),
            )
            id_token = token.get("id_token")
            if not isinstance(id_token, str) or not nonce:
                raise ProviderRefused(self.label)
            claims = await self._verified_claims(client, id_token, token, nonce, now)
        email = claims.get("email")
        return ProviderIdentity(
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            email_verified=claims.get("email_verified") is True,
        )

    async def _verified_claims(
        self, client: Any, id_token: str, token: dict[str, Any], nonce: str, now: float
    ) -> CodeIDToken:
        try:
            return self._check(id_token, token, nonce, now, last_try=False)
        except InvalidKeyIdError:
            pass  # Google rotated its keys since we fetched them: fetch them again, once
        await self._discover(client, refresh=True)
        return self._check(id_token, token, nonce, now, last_try=True)

    def _check(
        self, id_token: str, token: dict[str, Any], nonce: str, now: float, *, last_try: bool
    ) -> CodeIDToken:
        """The id_token's claims, signature and claims checked; `ProviderRefused` (raised
        after the `except` block: nothing of the token rides along) when they do not check
        out. A key we do not have is `InvalidKeyIdError` until the `last_try`."""
        assert self._keys is not None
        try:
            decoded = jwt.decode(id_token, self._keys, registry=JWSRegistry(algorithms=["RS256"]))
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "values": self._issuers()},
                    "aud": {"essential": True, "value": self.client_id},
                    "sub": {"essential": True},
                    "exp": {"essential": True},
                },
                {
                    "nonce": nonce,
                    "client_id": self.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            claims.validate(now=int(now), leeway=_LEEWAY)
            return claims
        except InvalidKeyIdError:
            if not last_try:
                raise
        except (JoseError, ValueError, TypeError):
            pass
        raise ProviderRefused(self.label)
