"""A simulated GitHub: the OAuth web application flow and the two user endpoints sign-in reads.

github.com (`/login/oauth/...`) and api.github.com (`/user`, `/user/emails`) are one server
here. Wire facts, from GitHub's "Authorizing OAuth apps" and troubleshooting pages:
- `GET /login/oauth/authorize`: client_id, redirect_uri (optional: the registered callback),
  scope (space separated), state, and PKCE with `code_challenge_method=S256` only. A
  redirect_uri that does not match goes back to the registered callback with
  `error=redirect_uri_mismatch`; a person who cancels comes back with `error=access_denied`.
- `POST /login/oauth/access_token`: answers JSON when `Accept: application/json`, else a
  form-encoded body; refusals are 200 with `error`, `error_description`, `error_uri`
  (`incorrect_client_credentials`, `bad_verification_code`, `redirect_uri_mismatch`). Codes are
  single-use and live ten minutes. GitHub does not document the word for a PKCE verifier that
  does not match: this simulator answers `bad_verification_code`.
- `GET /user` (`email` is null unless public) and `GET /user/emails` (needs the `user:email`
  or `user` scope; without it GitHub answers 404) take `Authorization: Bearer` or `token`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from reapi.testing import Answer, FaultState, json_answer

from ._oauth import (
    FakeEmail,
    FakeIdentity,
    OAuthClient,
    OAuthSimulator,
    client_credentials,
    form_fields,
    pkce_matches,
)
from ._pages import Choice, redirect_answer, with_query

__all__ = [
    "DEFAULT_GITHUB_IDENTITIES",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    "GitHubSimulator",
]

GITHUB_CLIENT_ID = "reapi-sim-github"
GITHUB_CLIENT_SECRET = "reapi-sim-github-secret"

DEFAULT_GITHUB_IDENTITIES = (
    FakeIdentity(id="1001", login="ada", name="Ada Lovelace", email="ada@example.com"),
    FakeIdentity(
        id="1002",
        login="grace",
        name="Grace Hopper",
        email="grace@example.com",
        email_public=False,
        other_emails=(FakeEmail("grace@old.example.org", verified=False, visibility="private"),),
    ),
    FakeIdentity(
        id="1003",
        login="mallory",
        name="Mallory Unverified",
        email="mallory@example.com",
        email_verified=False,
    ),
)

_DOCS = "https://docs.github.com/rest"
_TOKEN_ERRORS = "/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
_AUTHORIZE_ERRORS = "/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
_TOKEN_ERROR_TEXT = {
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "redirect_uri_mismatch": (
        "The redirect_uri MUST match the registered callback URL for this application."
    ),
    "unsupported_grant_type": "The grant type is not supported.",
}


class GitHubSimulator(OAuthSimulator):
    """One GitHub OAuth app and the people who may sign in to it."""

    provider = "GitHub"
    authorize_path = "/login/oauth/authorize"
    token_prefix = "gho_"

    def __init__(
        self,
        identities: Iterable[FakeIdentity] = DEFAULT_GITHUB_IDENTITIES,
        *,
        client_id: str = GITHUB_CLIENT_ID,
        client_secret: str = GITHUB_CLIENT_SECRET,
        redirect_uris: Iterable[str] = (),
        app_name: str = "reapi",
        clock: Callable[[], float] = time.time,
    ) -> None:
        client = OAuthClient(client_id, client_secret, tuple(redirect_uris), app_name)
        super().__init__(client, identities, clock=clock)

    @staticmethod
    def endpoints(base_url: str) -> dict[str, str]:
        """authlib's settings for a server at `base_url`."""
        return {
            "authorize_url": base_url + "/login/oauth/authorize",
            "access_token_url": base_url + "/login/oauth/access_token",
            "api_base_url": base_url + "/",
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
        if path == self.authorize_path and method in ("GET", "POST"):
            params = form_fields(query.encode()) if method == "GET" else form_fields(body)
            return self._authorize(method, params)
        if path == "/login/oauth/access_token" and method == "POST":
            return self._access_token(query, headers, body)
        if path in ("/user", "/user/emails") and method == "GET":
            return self._user_api(path, headers)
        return _api_error(404, "Not Found")

    def status_fault_answer(self, state: FaultState) -> Answer | None:
        return _status_fault(state)

    # -- authorize ---------------------------------------------------------------------------
    def _check_authorize(self, params: Mapping[str, str]) -> Answer | dict[str, str]:
        client = self.client
        if params.get("client_id") != client.client_id:
            return self._page_error(404, "Not Found", "No OAuth app has that client_id.")
        checked = dict(params)
        registered = client.redirect_uris[0] if client.redirect_uris else None
        asked = params.get("redirect_uri")
        if not asked:
            if registered is None:
                return self._page_error(400, "No callback URL", "Pass redirect_uri.")
            checked["redirect_uri"] = registered
        elif not client.allows(asked):
            if registered is None:
                return self._page_error(400, "Bad redirect_uri", "Not an http(s) URL.")
            return self._error_redirect(registered, "redirect_uri_mismatch", params)
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if (challenge or method) and (not challenge or method != "S256"):
            return self._error_redirect(checked["redirect_uri"], "invalid_request", params)
        return checked

    def _error_redirect(self, callback: str, error: str, params: Mapping[str, str]) -> Answer:
        descriptions = {
            "redirect_uri_mismatch": _TOKEN_ERROR_TEXT["redirect_uri_mismatch"],
            "access_denied": "The user has denied your application access.",
            "invalid_request": "Only the S256 code_challenge_method is accepted.",
        }
        query = {
            "error": error,
            "error_description": descriptions[error],
            "error_uri": _AUTHORIZE_ERRORS + "#" + error.replace("_", "-"),
        }
        if params.get("state"):
            query["state"] = params["state"]
        return redirect_answer(with_query(callback, query))

    def _denied(self, params: Mapping[str, str]) -> Answer:
        return self._error_redirect(params["redirect_uri"], "access_denied", params)

    def _approved(self, params: Mapping[str, str], identity: FakeIdentity) -> dict[str, str]:
        answer = {"code": self._issue_code(params, identity)}
        if params.get("state"):
            answer["state"] = params["state"]
        return answer

    def _choice(self, identity: FakeIdentity) -> Choice:
        shown = identity.email if identity.email else "no email address"
        if identity.email and not identity.email_public:
            shown += " (private)"
        return Choice(
            value=identity.id,
            name=f"{identity.name or identity.login} (@{identity.login})",
            detail=shown,
            warning="" if identity.email_verified else "Email address not verified",
        )

    # -- access token ------------------------------------------------------------------------
    def _access_token(self, query: str, headers: Mapping[str, str], body: bytes) -> Answer:
        wants_json = "application/json" in headers.get("accept", "")
        params = form_fields(query.encode())
        if headers.get("content-type", "").startswith("application/json"):
            try:
                sent = json.loads(body or b"{}")
            except ValueError:
                sent = None
            if not isinstance(sent, dict):
                return self._token_error("bad_verification_code", wants_json)
            params.update({str(k): str(v) for k, v in sent.items()})
        else:
            params.update(form_fields(body))
        client_id, secret = client_credentials(headers, params)
        if client_id != self.client.client_id or secret != self.client.client_secret:
            return self._token_error("incorrect_client_credentials", wants_json)
        if params.get("grant_type", "authorization_code") != "authorization_code":
            return self._token_error("unsupported_grant_type", wants_json)
        grant = self.codes.redeem(params.get("code", ""))
        if grant is None:
            return self._token_error("bad_verification_code", wants_json)
        if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
            return self._token_error("redirect_uri_mismatch", wants_json)
        if grant.code_challenge is not None and not pkce_matches(
            grant.code_challenge_method, grant.code_challenge, params.get("code_verifier", "")
        ):
            return self._token_error("bad_verification_code", wants_json)
        scopes = [s for s in grant.scope.replace(",", " ").split() if s]
        token = self.codes.access_token(grant.identity_id, " ".join(scopes))
        self._count_token(None)
        answer = {"access_token": token, "token_type": "bearer", "scope": ",".join(scopes)}
        return _token_answer(answer, wants_json)

    def _token_error(self, error: str, wants_json: bool) -> Answer:
        self._count_token(error)
        answer = {
            "error": error,
            "error_description": _TOKEN_ERROR_TEXT[error],
            "error_uri": _TOKEN_ERRORS + "#" + error.replace("_", "-"),
        }
        return _token_answer(answer, wants_json)

    # -- the REST API ------------------------------------------------------------------------
    def _user_api(self, path: str, headers: Mapping[str, str]) -> Answer:
        self._count_api_call()
        found = self.codes.bearer(headers.get("authorization", ""), ("bearer", "token"))
        identity = self.identity(found[0]) if found else None
        if found is None or identity is None:
            return _api_error(401, "Bad credentials")
        scopes = set(found[1].split())
        if path == "/user":
            return json_answer(200, _user(identity), _API_HEADERS)
        if not scopes & {"user", "user:email"}:
            return _api_error(404, "Not Found")
        return json_answer(200, _emails(identity), _API_HEADERS)


_API_HEADERS = {"x-github-media-type": "github.v3; format=json"}


def _user(identity: FakeIdentity) -> dict[str, Any]:
    login = identity.login or f"user{identity.id}"
    return {
        "login": login,
        "id": int(identity.id) if identity.id.isdigit() else identity.id,
        "node_id": f"U_sim{identity.id}",
        "avatar_url": "",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
        "name": identity.name,
        "company": None,
        "blog": "",
        "location": None,
        "email": identity.email if identity.email_public else None,
        "bio": None,
        "public_repos": 0,
        "followers": 0,
        "following": 0,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
    }


def _emails(identity: FakeIdentity) -> list[dict[str, Any]]:
    listed = []
    if identity.email:
        visibility = "public" if identity.email_public else "private"
        listed.append(FakeEmail(identity.email, identity.email_verified, True, visibility))
    listed += [e for e in identity.other_emails if e.email != identity.email]
    return [
        {"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility}
        for e in listed
    ]


def _token_answer(answer: Mapping[str, str], wants_json: bool) -> Answer:
    if wants_json:
        return json_answer(200, answer)
    content_type = "application/x-www-form-urlencoded; charset=utf-8"
    return 200, {"content-type": content_type}, urlencode(dict(answer)).encode()


def _api_error(status: int, message: str) -> Answer:
    body = {"message": message, "documentation_url": _DOCS, "status": str(status)}
    return json_answer(status, body, _API_HEADERS)


def _status_fault(state: FaultState) -> Answer | None:
    from reapi.testing import Fault

    if state.fault is Fault.RATE_LIMIT:
        headers = {**_API_HEADERS, "retry-after": str(state.retry_after)}
        return json_answer(429, {"message": "API rate limit exceeded", "status": "429"}, headers)
    if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
        status = 500 if state.fault is Fault.ERROR_500 else 503
        return json_answer(status, {"message": "Server Error", "status": str(status)}, _API_HEADERS)
    return None
