"""Simulated GitHub and Google sign-in on loopback, for tests and the demo.

    with SimServer(GitHubSimulator()) as github, SimServer(GoogleSimulator()) as google:
        oauth.register("github", client_id=GITHUB_CLIENT_ID, client_secret=GITHUB_CLIENT_SECRET,
                       **GitHubSimulator.endpoints(github.base_url))
        oauth.register("google", client_id=GOOGLE_CLIENT_ID, client_secret=GOOGLE_CLIENT_SECRET,
                       server_metadata_url=GoogleSimulator.metadata_url(google.base_url))

The authorization endpoints show a page listing the configured people as buttons (and Cancel);
a click redirects to the callback with a code, as the real providers do. `sim.signed_in = id`
skips the page (a returning user who already authorized the app). Identities are set at
construction, with `set_identities` / `add_identity`, or through `/__sim__/oauth/identities`.
"""

from ._github import (
    DEFAULT_GITHUB_IDENTITIES,
    GITHUB_CLIENT_ID,
    GITHUB_CLIENT_SECRET,
    GitHubSimulator,
)
from ._google import (
    DEFAULT_GOOGLE_IDENTITIES,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    GoogleSimulator,
)
from ._oauth import CODE_TTL, FakeEmail, FakeIdentity, OAuthClient, OAuthSimulator

__all__ = [
    "CODE_TTL",
    "DEFAULT_GITHUB_IDENTITIES",
    "DEFAULT_GOOGLE_IDENTITIES",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "FakeEmail",
    "FakeIdentity",
    "GitHubSimulator",
    "GoogleSimulator",
    "OAuthClient",
    "OAuthSimulator",
]
