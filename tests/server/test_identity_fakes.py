"""The four fakes started together, in-process and as the demo starts them (a real process)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest
from authlib.integrations.starlette_client import OAuth
from tests.server.sim_browser import choose

from reapi_server.testing.identity_fakes import run_identity_fakes
from reapi_server.testing.turnstile_sim import TurnstileSimulator

CALLBACK = "http://127.0.0.1:9/auth/callback"


async def test_settings_reach_github_and_google():
    with run_identity_fakes() as fakes, httpx.Client(timeout=5) as http:
        settings = fakes.settings()
        oauth = OAuth()
        github = oauth.register(
            "github",
            client_id=settings["github_client_id"],
            client_secret=settings["github_client_secret"],
            authorize_url=settings["github_authorize_url"],
            access_token_url=settings["github_access_token_url"],
            api_base_url=settings["github_api_base_url"],
            client_kwargs={"scope": "user:email", "code_challenge_method": "S256"},
        )
        started = await github.create_authorization_url(CALLBACK)
        code = httpx.URL(choose(http, started["url"], "1001")).params["code"]
        token = await github.fetch_access_token(
            redirect_uri=CALLBACK, code=code, code_verifier=started["code_verifier"]
        )
        assert (await github.get("user", token=token)).json()["login"] == "ada"

        google = oauth.register(
            "google",
            client_id=settings["google_client_id"],
            client_secret=settings["google_client_secret"],
            server_metadata_url=settings["google_metadata_url"],
            client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
        )
        started = await google.create_authorization_url(CALLBACK, nonce="n")
        assert started["url"].startswith(fakes.urls["google"] + "/o/oauth2/v2/auth?")


def test_settings_reach_resend_and_turnstile_and_faults_go_by_name():
    with run_identity_fakes() as fakes, httpx.Client(timeout=5) as http:
        settings = fakes.settings()
        sent = http.post(
            settings["resend_base_url"] + "/emails",
            headers={"authorization": f"Bearer {settings['resend_api_key']}"},
            json={"from": "r@x.test", "to": "ada@example.com", "subject": "s", "text": "t"},
        )
        assert sent.status_code == 200 and fakes.resend.latest(to="ada@example.com")

        verified = http.post(
            settings["turnstile_siteverify_url"],
            data={"secret": settings["turnstile_secret"], "response": "pass"},
        )
        assert verified.json()["success"] is True

        # faults by name through the control server
        control = fakes.urls["control"]
        http.post(control + "/faults/resend", json={"fault": "error_500", "count": 1})
        assert http.post(settings["resend_base_url"] + "/emails").status_code == 500
        assert fakes.server("resend").faults.effective.fault.value == "none"


def test_given_apps_are_the_ones_served():
    strict = TurnstileSimulator(pass_prefix="")
    with run_identity_fakes(turnstile=strict) as fakes, httpx.Client() as http:
        assert fakes.turnstile is strict
        answer = http.post(
            fakes.settings()["turnstile_siteverify_url"],
            data={"secret": strict.secret, "response": "pass"},
        ).json()
        assert answer["error-codes"] == ["invalid-input-response"]
    with httpx.Client() as http:  # stopped on leaving
        try:
            http.get(fakes.urls["turnstile"] + "/__sim__/health", timeout=1)
            reachable = True
        except httpx.ConnectError:
            reachable = False
        assert not reachable


#: The module's entry, with Ctrl-C's own handler even where this test runs with SIGINT ignored
#: (a job started in the background): the child would inherit that and never see the signal.
INTERRUPTIBLE_FAKES = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from reapi_server.testing.identity_fakes import main; "
    "raise SystemExit(main(['--port', '0', '--json']))"
)


def test_the_command_line_entry_runs_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTIBLE_FAKES],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
        assert set(described["urls"]) == {"github", "google", "resend", "turnstile", "control"}
        with httpx.Client(timeout=5) as http:
            for name in ("github", "google", "resend", "turnstile"):
                health = http.get(described["urls"][name] + "/__sim__/health")
                assert health.json()["ok"] is True
            meta = http.get(described["settings"]["google_metadata_url"]).json()
            assert meta["issuer"] == described["urls"]["google"]
    finally:
        process.send_signal(signal.SIGINT)
        # communicate, not wait: it drains the pipes, which a chatty child could fill and then
        # block on forever; and on a hang it shows what the child said.
        try:
            _, said = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, said = process.communicate()
            pytest.fail(f"still running 60 s after SIGINT; stderr: {said[-3000:]}")
        assert process.returncode == 0, said[-3000:]
