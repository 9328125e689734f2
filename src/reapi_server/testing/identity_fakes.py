"""The four simulated outside services of sign-in and mail, started together: GitHub, Google,
Resend and Turnstile, each on its own loopback port, plus a control server that sets faults by
name (`POST /faults/{github|google|resend|turnstile}`).

    with run_identity_fakes() as fakes:
        fakes.settings()          # client ids and secrets, endpoint URLs, API key, secret
        fakes.resend.latest(to="ada@example.com").links

From a shell (the demo starts them beside the gateway):

    python -m reapi_server.testing.identity_fakes --port 9300          # 9300..9304
    python -m reapi_server.testing.identity_fakes --port 9300 --json   # one JSON line
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from reapi.testing import RunningSimulators, SimServer, SimulatorApp, main_loop, run_simulators

from .oauth_sim import GitHubSimulator, GoogleSimulator
from .resend_sim import ResendSimulator
from .turnstile_sim import SITEVERIFY_PATH, TurnstileSimulator

__all__ = ["IdentityFakes", "main", "run_identity_fakes"]


@dataclass(frozen=True, slots=True)
class IdentityFakes:
    """The running fakes: each app (its Python API), its server and the control server."""

    github: GitHubSimulator
    google: GoogleSimulator
    resend: ResendSimulator
    turnstile: TurnstileSimulator
    running: RunningSimulators

    @property
    def urls(self) -> dict[str, str]:
        """Each fake's base URL by name, and the control server's as "control"."""
        return {**self.running.urls, "control": self.running.control_url}

    def server(self, name: str) -> SimServer:
        """The SimServer of "github", "google", "resend" or "turnstile" (its `faults`)."""
        return self.running.servers[name]

    def settings(self) -> dict[str, str]:
        """What a gateway needs to use these fakes instead of the real services."""
        urls = self.running.urls
        github = GitHubSimulator.endpoints(urls["github"])
        return {
            "github_client_id": self.github.client.client_id,
            "github_client_secret": self.github.client.client_secret,
            "github_authorize_url": github["authorize_url"],
            "github_access_token_url": github["access_token_url"],
            "github_api_base_url": github["api_base_url"],
            "google_client_id": self.google.client.client_id,
            "google_client_secret": self.google.client.client_secret,
            "google_metadata_url": GoogleSimulator.metadata_url(urls["google"]),
            "resend_api_key": self.resend.api_key,
            "resend_base_url": urls["resend"],
            "turnstile_secret": self.turnstile.secret,
            "turnstile_siteverify_url": urls["turnstile"] + SITEVERIFY_PATH,
        }

    def stop(self) -> None:
        self.running.stop()


def _apps(
    github: GitHubSimulator | None,
    google: GoogleSimulator | None,
    resend: ResendSimulator | None,
    turnstile: TurnstileSimulator | None,
) -> tuple[GitHubSimulator, GoogleSimulator, ResendSimulator, TurnstileSimulator]:
    return (
        github or GitHubSimulator(),
        google or GoogleSimulator(),
        resend or ResendSimulator(),
        turnstile or TurnstileSimulator(),
    )


def _specs(
    apps: tuple[GitHubSimulator, GoogleSimulator, ResendSimulator, TurnstileSimulator],
) -> dict[str, SimulatorApp]:
    return dict(zip(("github", "google", "resend", "turnstile"), apps, strict=True))


@contextmanager
def run_identity_fakes(
    host: str = "127.0.0.1",
    base_port: int = 0,
    *,
    github: GitHubSimulator | None = None,
    google: GoogleSimulator | None = None,
    resend: ResendSimulator | None = None,
    turnstile: TurnstileSimulator | None = None,
) -> Iterator[IdentityFakes]:
    """Starts the four fakes (default ones unless given) on ports `base_port`..+3 (0: any free
    ports) and the control server on the next; stops them all on leaving."""
    apps = _apps(github, google, resend, turnstile)
    running = run_simulators(_specs(apps), host=host, base_port=base_port)
    try:
        yield IdentityFakes(*apps, running)
    finally:
        running.stop()


def describe(fakes: IdentityFakes) -> str:
    """A few lines for a person: where each fake listens and what to configure."""
    lines = [f"{name:<10} {url}" for name, url in fakes.urls.items()]
    lines += ["", "settings:"] + [f"  {k} = {v}" for k, v in fakes.settings().items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reapi_server.testing.identity_fakes",
        description="Simulated GitHub, Google, Resend and Turnstile on loopback (test doubles).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="first port (the next four follow); 0: any free ports"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line of settings")
    args = parser.parse_args(argv)
    apps = _apps(None, None, None, None)

    def ready(running: RunningSimulators) -> None:
        fakes = IdentityFakes(*apps, running)
        if args.json:
            print(json.dumps({"urls": fakes.urls, "settings": fakes.settings()}), flush=True)
        else:
            print(describe(fakes), flush=True)
            print("\nCtrl-C stops them.", file=sys.stderr, flush=True)

    main_loop(_specs(apps), host=args.host, base_port=args.port, on_ready=ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
