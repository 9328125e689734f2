"""Sign-in with GitHub: an OAuth app's web flow with PKCE, then who the person is from the
REST API — their numeric id (`GET /user`) and their primary address with GitHub's word on
whether it is verified (`GET /user/emails`, which the `user:email` scope opens; `/user` shows
an address only when its owner made it public)."""

from __future__ import annotations

from typing import Any

from ..config import GitHubApp
from .providers import ProviderIdentity, oauth_client, provider_call, read_json

__all__ = ["GitHub"]

#: Only the addresses: the public profile needs no scope.
SCOPE = "user:email"
_API_HEADERS = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}


def _primary(emails: Any) -> tuple[str | None, bool]:
    """The primary address and whether GitHub verified it."""
    if isinstance(emails, list):
        for entry in emails:
            if isinstance(entry, dict) and entry.get("primary") is True:
                address = entry.get("email")
                if isinstance(address, str):
                    return address, entry.get("verified") is True
    return None, False


class GitHub:
    name = "github"
    label = "GitHub"
    uses_nonce = False

    def __init__(self, app: GitHubApp) -> None:
        assert app.client_id is not None and app.client_secret is not None
        self.app = app
        self.client_id = app.client_id
        self.client_secret = app.client_secret.get_secret_value()
        self.api_base_url = app.api_base_url.rstrip("/") + "/"

    def _client(self, redirect_uri: str) -> Any:
        return oauth_client(
            self.client_id, self.client_secret, scope=SCOPE, redirect_uri=redirect_uri
        )

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str | None
    ) -> str:
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.app.authorize_url, state=state, code_verifier=code_verifier
            )
        return str(url)

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str | None, now: float
    ) -> ProviderIdentity:
        async with self._client(redirect_uri) as client:

            async def ask() -> ProviderIdentity:
                await client.fetch_token(
                    self.app.token_url,
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=redirect_uri,
                )
                user = read_json(
                    await client.get(self.api_base_url + "user", headers=_API_HEADERS), self.label
                )
                emails = read_json(
                    await client.get(self.api_base_url + "user/emails", headers=_API_HEADERS),
                    self.label,
                )
                subject = user["id"]
                if isinstance(subject, bool) or not isinstance(subject, int | str) or not subject:
                    raise ValueError("no user id")
                email, verified = _primary(emails)
                return ProviderIdentity(str(subject), email, verified)

            return await provider_call(self.label, ask)
