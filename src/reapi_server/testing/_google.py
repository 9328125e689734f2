"""A simulated Google: OpenID Connect sign-in with a discovery document, RS256 id_tokens
signed by a key made at start, its JWKS, and the userinfo endpoint.

Google's hosts (accounts.google.com, oauth2.googleapis.com, openidconnect.googleapis.com,
www.googleapis.com) are one server here, on their paths; the discovery document names them
with the server's own origin, and that origin is the issuer (`iss`) unless one is given.
Wire facts, from Google's OpenID Connect guide and reference:
- `GET /o/oauth2/v2/auth`: client_id, redirect_uri (must be registered), response_type=code,
  scope (space separated; openid, email, profile), state, nonce, code_challenge with
  `code_challenge_method` S256 or plain. An unknown client or redirect_uri gets an error page
  (no redirect); a person who cancels comes back with `error=access_denied`.
- `POST /token`: client secret in the form or HTTP Basic; JSON answers. Refusals: 401
  `invalid_client`, 400 `invalid_grant` (used, unknown or expired code, wrong or missing
  code_verifier), 400 `redirect_uri_mismatch`, 400 `unsupported_grant_type`. Success:
  access_token, expires_in, scope (email and profile spelled as their userinfo URLs),
  token_type "Bearer", id_token when openid was asked for.
- id_token claims: iss, azp, aud (the client id), sub, email and email_verified (email scope),
  name, given_name, family_name (profile scope), at_hash, nonce, iat, exp (an hour later).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from reapi.testing import Answer, Fault, FaultState, json_answer

from ._oauth import (
    FakeIdentity,
    OAuthClient,
    OAuthSimulator,
    client_credentials,
    form_fields,
    pkce_matches,
)
from ._pages import Choice, redirect_answer, with_query

__all__ = [
    "DEFAULT_GOOGLE_IDENTITIES",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "GoogleSimulator",
]

GOOGLE_CLIENT_ID = "reapi-sim.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-reapi-sim-secret"

DEFAULT_GOOGLE_IDENTITIES = (
    FakeIdentity(id="100000000000000000001", name="Ada Lovelace", email="ada@example.com"),
    FakeIdentity(id="100000000000000000002", name="Grace Hopper", email="grace@example.net"),
    FakeIdentity(
        id="100000000000000000003",
        name="Mallory Unverified",
        email="mallory@example.com",
        email_verified=False,
    ),
)

#: How Google spells the short scopes in token answers.
_SCOPE_URLS = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
_ID_TOKEN_LIFETIME = 3600
_ACCESS_TOKEN_LIFETIME = 3599


def _has(scope: str, short: str) -> bool:
    scopes = scope.split()
    return short in scopes or _SCOPE_URLS.get(short) in scopes


class GoogleSimulator(OAuthSimulator):
    """One Google OAuth client, its signing key and the people who may sign in."""

    provider = "Google"
    authorize_path = "/o/oauth2/v2/auth"
    token_prefix = "ya29."

    def __init__(
        self,
        identities: Iterable[FakeIdentity] = DEFAULT_GOOGLE_IDENTITIES,
        *,
        client_id: str = GOOGLE_CLIENT_ID,
        client_secret: str = GOOGLE_CLIENT_SECRET,
        redirect_uris: Iterable[str] = (),
        app_name: str = "reapi",
        issuer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        client = OAuthClient(client_id, client_secret, tuple(redirect_uris), app_name)
        super().__init__(client, identities, clock=clock)
        #: None: the server's own origin (what the discovery document says).
        self.issuer = issuer
        #: The id_token signing key, made at start; `jwks()` publishes its public half.
        self.signing_key = RSAKey.generate_key(
            2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True
        )

    @staticmethod
    def metadata_url(base_url: str) -> str:
        """authlib's `server_metadata_url` for a server at `base_url`."""
        return base_url + "/.well-known/openid-configuration"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.as_dict(private=False)]}

    def discovery(self, origin: str) -> dict[str, Any]:
        return {
            "issuer": self.issuer or origin,
            "authorization_endpoint": origin + self.authorize_path,
            "token_endpoint": origin + "/token",
            "userinfo_endpoint": origin + "/v1/userinfo",
            "jwks_uri": origin + "/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": [
                "aud",
                "email",
                "email_verified",
                "exp",
                "family_name",
                "given_name",
                "iat",
                "iss",
                "name",
                "sub",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code"],
        }

    # -- entry point -------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer:
        if path == "/.well-known/openid-configuration" and method == "GET":
            return json_answer(200, self.discovery(origin))
        if path == self.authorize_path and method in ("GET", "POST"):
            params = form_fields(query.encode()) if method == "GET" else form_fields(body)
            return self._authorize(method, params)
        if path == "/token" and method == "POST":
            return self._token(headers, form_fields(body), origin)
        if path == "/oauth2/v3/certs" and method == "GET":
            return json_answer(200, self.jwks())
        if path in ("/v1/userinfo", "/oauth2/v3/userinfo") and method in ("GET", "POST"):
            return self._userinfo(headers)
        return _google_error(404, "not_found", "Not Found")

    def status_fault_answer(self, state: FaultState) -> Answer | None:
        if state.fault is Fault.RATE_LIMIT:
            headers = {"retry-after": str(state.retry_after)}
            return _google_error(429, "rate_limit_exceeded", "Rate Limit Exceeded", headers)
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if state.fault is Fault.ERROR_500 else 503
            return _google_error(status, "internal_failure", "Backend Error")
        return None

    # -- authorize ---------------------------------------------------------------------------
    def _check_authorize(self, params: Mapping[str, str]) -> Answer | dict[str, str]:
        if params.get("client_id") != self.client.client_id:
            return self._page_error(
                401, "Error 401: invalid_client", "The OAuth client was not found."
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not self.client.allows(redirect_uri):
            return self._page_error(
                400,
                "Error 400: redirect_uri_mismatch",
                "The redirect_uri is not registered for this OAuth client.",
            )
        if params.get("response_type") != "code":
            return self._error_redirect(params, "unsupported_response_type")
        if not params.get("scope", "").split():
            return self._page_error(
                400, "Error 400: invalid_request", "Missing required parameter: scope"
            )
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if (challenge or method) and (
            not challenge or (method or "plain") not in ("plain", "S256")
        ):
            return self._error_redirect(params, "invalid_request")
        return dict(params)

    def _error_redirect(self, params: Mapping[str, str], error: str) -> Answer:
        query = {"error": error}
        if params.get("state"):
            query["state"] = params["state"]
        return redirect_answer(with_query(params["redirect_uri"], query))

    def _denied(self, params: Mapping[str, str]) -> Answer:
        return self._error_redirect(params, "access_denied")

    def _approved(self, params: Mapping[str, str], identity: FakeIdentity) -> dict[str, str]:
        answer = {}
        if params.get("state"):
            answer["state"] = params["state"]
        answer["code"] = self._issue_code(params, identity)
        answer["scope"] = _granted_scope(params.get("scope", ""))
        answer["authuser"] = "0"
        answer["prompt"] = "consent"
        return answer

    def _choice(self, identity: FakeIdentity) -> Choice:
        return Choice(
            value=identity.id,
            name=identity.name or identity.email or identity.id,
            detail=identity.email or "no email address",
            warning="" if identity.email_verified else "Email address not verified",
        )

    # -- token -------------------------------------------------------------------------------
    def _token(self, headers: Mapping[str, str], form: Mapping[str, str], origin: str) -> Answer:
        grant_type = form.get("grant_type", "")
        if grant_type != "authorization_code":
            return self._refuse(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client_id, secret = client_credentials(headers, form)
        if client_id != self.client.client_id:
            return self._refuse(401, "invalid_client", "The OAuth client was not found.")
        if secret != self.client.client_secret:
            return self._refuse(401, "invalid_client", "Unauthorized")
        grant = self.codes.redeem(form.get("code", ""))
        if grant is None:
            return self._refuse(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse(400, "redirect_uri_mismatch", "Bad Request")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return self._refuse(400, "invalid_grant", "Missing code verifier.")
            if not pkce_matches(grant.code_challenge_method, grant.code_challenge, verifier):
                return self._refuse(400, "invalid_grant", "Invalid code verifier.")
        identity = self.identity(grant.identity_id)
        if identity is None:  # removed since the code was issued
            return self._refuse(400, "invalid_grant", "Bad Request")
        access_token = self.codes.access_token(identity.id, grant.scope)
        answer: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": _ACCESS_TOKEN_LIFETIME,
            "scope": _granted_scope(grant.scope),
            "token_type": "Bearer",
        }
        if "openid" in grant.scope.split():
            answer["id_token"] = self.id_token(
                identity,
                scope=grant.scope,
                nonce=grant.nonce,
                access_token=access_token,
                issuer=self.issuer or origin,
            )
        self._count_token(None)
        return json_answer(200, answer, {"cache-control": "no-cache, no-store, max-age=0"})

    def id_token(
        self,
        identity: FakeIdentity,
        *,
        scope: str = "openid email profile",
        nonce: str | None = None,
        access_token: str | None = None,
        issuer: str,
        audience: str | None = None,
        issued_at: float | None = None,
    ) -> str:
        """A signed id_token as the token endpoint gives it; tests can forge variants
        (another audience, an old `issued_at`) with the same key."""
        iat = int(self.clock() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": issuer,
            "azp": self.client.client_id,
            "aud": audience or self.client.client_id,
            "sub": identity.id,
            "iat": iat,
            "exp": iat + _ID_TOKEN_LIFETIME,
        }
        if _has(scope, "email") and identity.email:
            claims["email"] = identity.email
            claims["email_verified"] = identity.email_verified
        if access_token is not None:
            claims["at_hash"] = _at_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        if _has(scope, "profile"):
            claims.update(_profile(identity))
        header = {"alg": "RS256", "kid": self.signing_key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.signing_key)

    def _refuse(self, status: int, error: str, description: str) -> Answer:
        self._count_token(error)
        return json_answer(status, {"error": error, "error_description": description})

    # -- userinfo ----------------------------------------------------------------------------
    def _userinfo(self, headers: Mapping[str, str]) -> Answer:
        self._count_api_call()
        found = self.codes.bearer(headers.get("authorization", ""))
        identity = self.identity(found[0]) if found else None
        if found is None or identity is None:
            challenge = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
            return json_answer(
                401,
                {"error": "invalid_request", "error_description": "Invalid Credentials"},
                {"www-authenticate": challenge},
            )
        info: dict[str, Any] = {"sub": identity.id}
        if _has(found[1], "profile"):
            info.update(_profile(identity))
        if _has(found[1], "email") and identity.email:
            info["email"] = identity.email
            info["email_verified"] = identity.email_verified
        return json_answer(200, info)


def _granted_scope(asked: str) -> str:
    return " ".join(_SCOPE_URLS.get(s, s) for s in asked.split())


def _profile(identity: FakeIdentity) -> dict[str, str]:
    if not identity.name:
        return {}
    given, _, family = identity.name.partition(" ")
    profile = {"name": identity.name, "given_name": given}
    if family:
        profile["family_name"] = family
    return profile


def _at_hash(access_token: str) -> str:
    """OpenID Connect Core §3.1.3.6: the left half of SHA-256, base64url without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def _google_error(
    status: int, reason: str, message: str, headers: Mapping[str, str] | None = None
) -> Answer:
    body = {"error": {"code": status, "message": message, "errors": [{"reason": reason}]}}
    return json_answer(status, body, headers)
