"""Helpers of the sign-in-with-a-provider tests: the simulated GitHub and Google on loopback
(on the test's clock), the settings that point a gateway at them, and a person going through
a provider's chooser page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from tests.server.sim_browser import choose, press
from tests.web.helpers import Browser

from reapi.testing import SimServer
from reapi_server.testing.oauth_sim import (
    GITHUB_CLIENT_ID,
    GITHUB_CLIENT_SECRET,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    GitHubSimulator,
    GoogleSimulator,
)

ADA_GITHUB, GRACE_GITHUB, MALLORY_GITHUB = "1001", "1002", "1003"
ADA_GOOGLE = "100000000000000000001"
GRACE_GOOGLE = "100000000000000000002"
MALLORY_GOOGLE = "100000000000000000003"


@dataclass
class Providers:
    github: GitHubSimulator
    github_server: SimServer
    google: GoogleSimulator
    google_server: SimServer

    def settings(self, **google: Any) -> dict[str, Any]:
        """The gateway's `oauth` setting for these two."""
        endpoints = GitHubSimulator.endpoints(self.github_server.base_url)
        return {
            "github": {
                "client_id": GITHUB_CLIENT_ID,
                "client_secret": GITHUB_CLIENT_SECRET,
                "authorize_url": endpoints["authorize_url"],
                "token_url": endpoints["access_token_url"],
                "api_base_url": endpoints["api_base_url"],
            },
            "google": {
                "client_id": GOOGLE_CLIENT_ID,
                "client_secret": GOOGLE_CLIENT_SECRET,
                "discovery_url": GoogleSimulator.metadata_url(self.google_server.base_url),
                **google,
            },
        }


@contextmanager
def running_providers(
    clock: Any, github: GitHubSimulator | None = None, google: GoogleSimulator | None = None
) -> Iterator[Providers]:
    github = github or GitHubSimulator(clock=clock)
    google = google or GoogleSimulator(clock=clock)
    with SimServer(github) as github_server, SimServer(google) as google_server:
        yield Providers(github, github_server, google, google_server)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def local(url: str) -> str:
    """The path and query of one of the gateway's URLs."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def start(browser: Browser, provider: str, page: str = "/login", **form: str) -> str:
    """Press "Continue with <provider>" on `page`: the provider's authorization URL."""
    return await _to_provider(browser, page, f"/auth/{provider}", form)


async def start_link(browser: Browser, provider: str) -> str:
    """Press "Link <provider>" in Settings: the provider's authorization URL."""
    return await _to_provider(browser, "/settings", f"/settings/identities/{provider}/link", {})


async def start_again(browser: Browser, provider: str, page: str) -> str:
    """Press "Sign in again with <provider>" on a step-up `page`: the authorization URL."""
    return await _to_provider(browser, page, f"/auth/{provider}/reauth", {"next": page})


async def _to_provider(browser: Browser, page: str, action: str, form: dict[str, str]) -> str:
    response = await browser.submit(page, action, form)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert not location.startswith("/"), location
    return location


def at_provider(authorization_url: str, person: str) -> str:
    """A person chooses themselves on the provider's page: the callback URL it sends them to."""
    with httpx.Client(timeout=10) as client:
        return choose(client, authorization_url, person)


def cancel_at_provider(authorization_url: str) -> str:
    with httpx.Client(timeout=10) as client:
        answer = press(client, authorization_url, ("cancel", "1"))
    assert answer.status_code == 302
    return answer.headers["location"]


async def sign_in_with(
    browser: Browser, provider: str, person: str, page: str = "/login"
) -> httpx.Response:
    """The whole round trip: the gateway's answer to the provider's redirect back."""
    callback = at_provider(await start(browser, provider, page), person)
    return await browser.get(local(callback))


async def accept_consent(browser: Browser) -> httpx.Response:
    return await browser.submit(
        "/auth/consent", "/auth/consent", {"age_16_plus": "yes", "accept_terms": "yes"}
    )
