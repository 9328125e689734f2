"""What the simulated sign-in providers share: the people they know, the OAuth client they
serve, single-use authorization codes with PKCE, access tokens, and the chooser page flow.

Each provider's wire format (parameters, error words, token and user shapes) is its own module's
business; this one holds only the mechanics both follow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from reapi.testing import Answer, json_answer

from ._pages import Choice, chooser_page, error_page, html_answer, redirect_answer, with_query

__all__ = [
    "CODE_TTL",
    "AuthorizationCodes",
    "FakeEmail",
    "FakeIdentity",
    "Grant",
    "OAuthClient",
    "OAuthSimulator",
    "client_credentials",
    "form_fields",
    "pkce_matches",
]

#: Authorization codes live this long (GitHub documents ten minutes).
CODE_TTL = 600.0


@dataclass(frozen=True, slots=True)
class FakeEmail:
    """One of a GitHub user's addresses, as `GET /user/emails` lists it."""

    email: str
    verified: bool = True
    primary: bool = False
    #: "public", "private" or None, as GitHub reports it.
    visibility: str | None = None


@dataclass(frozen=True, slots=True)
class FakeIdentity:
    """A person a simulated provider knows.

    `id` is GitHub's numeric user id (digits) or Google's `sub`. `email` is the primary address
    and `email_verified` what the provider says of it. GitHub only: `login`; `email_public`
    (False: `GET /user` answers `"email": null`, as for a user who keeps it private); and
    `other_emails`, listed after the primary one by `GET /user/emails`.
    """

    id: str
    name: str | None
    email: str | None
    email_verified: bool = True
    login: str = ""
    email_public: bool = True
    other_emails: tuple[FakeEmail, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> FakeIdentity:
        """From the control endpoint's JSON; ValueError (or TypeError) when it does not fit."""
        if not isinstance(data, dict):
            raise ValueError("an identity is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown identity fields: {sorted(unknown)}")
        values = dict(data)
        if not isinstance(values.get("id"), str | int) or not str(values["id"]):
            raise ValueError("an identity needs an id")
        values["id"] = str(values["id"])
        others = values.get("other_emails") or ()
        if not isinstance(others, list | tuple):
            raise ValueError("other_emails is a list")
        values["other_emails"] = tuple(
            FakeEmail(**item) if isinstance(item, dict) else FakeEmail(str(item)) for item in others
        )
        identity = cls(**values)
        for name in ("name", "email"):
            value = getattr(identity, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} is a string or null")
        return identity


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The one OAuth app a simulated provider serves."""

    client_id: str
    client_secret: str
    #: Registered callback URLs; empty accepts any http(s) URL (tests bind random ports).
    redirect_uris: tuple[str, ...] = ()
    #: Shown on the chooser page: "Sign in to <app_name> with ...".
    app_name: str = "reapi"

    def allows(self, redirect_uri: str) -> bool:
        if self.redirect_uris:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one authorization code stands for."""

    identity_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: float


def pkce_matches(method: str | None, challenge: str, verifier: str) -> bool:
    """RFC 7636 §4.6: S256 compares BASE64URL(SHA256(verifier)) without padding."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        derived = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:  # "plain", or absent (RFC 7636 §4.3)
        derived = verifier
    return hmac.compare_digest(derived, challenge)


class AuthorizationCodes:
    """Codes are single-use and expire; access tokens never expire (tests are short)."""

    def __init__(self, clock: Callable[[], float], prefix: str, code_ttl: float = CODE_TTL):
        self._clock = clock
        self._prefix = prefix
        self.code_ttl = code_ttl
        self._codes: dict[str, Grant] = {}
        self._tokens: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def issue(self, grant_for: Callable[[float], Grant]) -> str:
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = grant_for(self._clock() + self.code_ttl)
        return code

    def redeem(self, code: str) -> Grant | None:
        """The grant once, while it has not expired; None for a used, unknown or stale code."""
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None or self._clock() > grant.expires_at:
            return None
        return grant

    def access_token(self, identity_id: str, scope: str) -> str:
        token = self._prefix + secrets.token_urlsafe(27)
        with self._lock:
            self._tokens[token] = (identity_id, scope)
        return token

    def bearer(
        self, authorization: str, schemes: Iterable[str] = ("bearer",)
    ) -> tuple[str, str] | None:
        """(identity id, scope) for an `Authorization: <scheme> <token>` header, else None."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() not in schemes:
            return None
        with self._lock:
            return self._tokens.get(token.strip())


def client_credentials(headers: Mapping[str, str], form: Mapping[str, str]) -> tuple[str, str]:
    """(client_id, client_secret) from HTTP Basic (RFC 6749 §2.3.1) or the form body."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


def form_fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class _Counters:
    authorize: int = 0
    token_exchanges: int = 0
    token_errors: int = 0
    api_calls: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


class OAuthSimulator:
    """The flow both providers share; subclasses speak the provider's own words.

    Thread-safe: the server calls `handle` on its loop's thread while tests read and change
    identities from theirs.
    """

    #: Shown on the pages ("GitHub", "Google").
    provider = ""
    #: The authorization endpoint's path; the chooser form posts back to it.
    authorize_path = ""
    #: Access tokens start with this (GitHub: "gho_", Google: "ya29.").
    token_prefix = ""
    #: Where `control` answers (`/__sim__/oauth/...`).
    control_prefix = "/__sim__/oauth"

    def __init__(
        self,
        client: OAuthClient,
        identities: Iterable[FakeIdentity],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.clock = clock
        self.codes = AuthorizationCodes(clock, self.token_prefix)
        #: When set (an identity id), authorization redirects at once as that person, as the
        #: provider does for a signed-in user who already authorized the app. No page.
        self.signed_in: str | None = None
        self._identities = {identity.id: identity for identity in identities}
        self._last_authorize: dict[str, str] | None = None
        self._counters = _Counters()
        self._lock = threading.Lock()

    # -- the Python API --------------------------------------------------------------------
    @property
    def identities(self) -> list[FakeIdentity]:
        with self._lock:
            return list(self._identities.values())

    def set_identities(self, identities: Iterable[FakeIdentity]) -> None:
        with self._lock:
            self._identities = {identity.id: identity for identity in identities}

    def add_identity(self, identity: FakeIdentity) -> None:
        """Adds a person, or replaces the one with the same id."""
        with self._lock:
            self._identities[identity.id] = identity

    def identity(self, identity_id: str) -> FakeIdentity | None:
        with self._lock:
            return self._identities.get(identity_id)

    @property
    def last_authorize(self) -> dict[str, str] | None:
        """The query of the last authorization request that reached the page (or redirect)."""
        with self._lock:
            return None if self._last_authorize is None else dict(self._last_authorize)

    @property
    def token_exchanges(self) -> int:
        """Codes exchanged for tokens successfully."""
        return self._counters.token_exchanges

    @property
    def token_errors(self) -> dict[str, int]:
        """Refused token requests by error code, e.g. {"bad_verification_code": 1}."""
        with self._lock:
            return dict(self._counters.by_error)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counters = replace(self._counters, by_error=dict(self._counters.by_error))
            last = None if self._last_authorize is None else dict(self._last_authorize)
        return {
            "authorize_requests": counters.authorize,
            "token_exchanges": counters.token_exchanges,
            "token_errors": counters.by_error,
            "api_calls": counters.api_calls,
            "last_authorize": last,
            "signed_in": self.signed_in,
        }

    # -- control endpoints -----------------------------------------------------------------
    def control(self, method: str, path: str, query: str, body: bytes) -> Answer | None:
        """`GET|PUT|POST {prefix}/identities` (PUT replaces the list, POST adds or replaces one),
        `GET {prefix}/state` (counters, last authorize request), `PUT {prefix}/signed-in`
        with `{"id": "..."}` or `{"id": null}`."""
        route = path.removeprefix(self.control_prefix)
        if route == path:
            return None
        try:
            if route == "/identities" and method == "GET":
                return json_answer(200, [i.to_json() for i in self.identities])
            if route == "/identities" and method == "PUT":
                listed = json.loads(body or b"[]")
                if not isinstance(listed, list):
                    raise ValueError("PUT takes a JSON list of identities")
                self.set_identities(FakeIdentity.from_json(item) for item in listed)
                return json_answer(200, [i.to_json() for i in self.identities])
            if route == "/identities" and method == "POST":
                identity = FakeIdentity.from_json(json.loads(body or b"null"))
                self.add_identity(identity)
                return json_answer(200, identity.to_json())
            if route == "/state" and method == "GET":
                return json_answer(200, self.stats())
            if route == "/signed-in" and method == "PUT":
                chosen = json.loads(body or b"{}")
                if not isinstance(chosen, dict):
                    raise ValueError('PUT takes {"id": "..."} or {"id": null}')
                self.signed_in = None if chosen.get("id") is None else str(chosen["id"])
                return json_answer(200, {"signed_in": self.signed_in})
        except (ValueError, TypeError) as exc:
            return json_answer(400, {"error": str(exc)})
        return json_answer(404, {"error": "unknown control path"})

    # -- the authorization endpoint ----------------------------------------------------------
    def _authorize(self, method: str, params: dict[str, str]) -> Answer:
        """GET shows the chooser (or redirects as `signed_in`); POST is the chooser's answer."""
        checked = self._check_authorize(params)
        if not isinstance(checked, dict):
            return checked  # the provider's refusal: an error page or an error redirect
        params = checked
        if method == "GET":
            with self._lock:
                self._last_authorize = dict(params)
                self._counters.authorize += 1
            if self.signed_in is None:
                return self._chooser(params)
            chosen = self.signed_in
        elif params.get("cancel"):
            return self._denied(params)
        else:
            chosen = params.get("identity", "")
        identity = self.identity(chosen)
        if identity is None:
            return self._page_error(400, "Unknown account", "No simulated account has that id.")
        return redirect_answer(with_query(params["redirect_uri"], self._approved(params, identity)))

    def _chooser(self, params: Mapping[str, str]) -> Answer:
        page = chooser_page(
            provider=self.provider,
            app_name=self.client.app_name,
            action=self.authorize_path,
            fields={k: v for k, v in params.items() if k not in ("identity", "cancel")},
            choices=[self._choice(identity) for identity in self.identities],
        )
        return html_answer(200, page)

    def _issue_code(self, params: Mapping[str, str], identity: FakeIdentity) -> str:
        return self.codes.issue(
            lambda expires_at: Grant(
                identity_id=identity.id,
                redirect_uri=params["redirect_uri"],
                scope=params.get("scope", ""),
                code_challenge=params.get("code_challenge") or None,
                code_challenge_method=params.get("code_challenge_method") or None,
                nonce=params.get("nonce") or None,
                expires_at=expires_at,
            )
        )

    def _count_token(self, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._counters.token_exchanges += 1
            else:
                self._counters.by_error[error] = self._counters.by_error.get(error, 0) + 1

    def _count_api_call(self) -> None:
        with self._lock:
            self._counters.api_calls += 1

    def _page_error(self, status: int, heading: str, message: str) -> Answer:
        return html_answer(status, error_page(self.provider, heading, message))

    # -- what each provider says its own way -------------------------------------------------
    def _check_authorize(self, params: Mapping[str, str]) -> Answer | dict[str, str]:
        """The request with its defaults filled in (`redirect_uri` always), or the refusal."""
        raise NotImplementedError

    def _choice(self, identity: FakeIdentity) -> Choice:
        raise NotImplementedError

    def _denied(self, params: Mapping[str, str]) -> Answer:
        raise NotImplementedError

    def _approved(self, params: Mapping[str, str], identity: FakeIdentity) -> dict[str, str]:
        """The callback's query parameters for an approved request (a code is issued here)."""
        raise NotImplementedError
