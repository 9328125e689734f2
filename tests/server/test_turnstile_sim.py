"""The simulated Turnstile siteverify on real sockets, as a server-side verifier calls it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from reapi.testing import Fault, SimServer
from reapi_server.testing.turnstile_sim import (
    ALREADY_SPENT_SECRET,
    ALWAYS_FAILS_SECRET,
    ALWAYS_PASSES_SECRET,
    DUMMY_TOKEN,
    SITEVERIFY_PATH,
    TOKEN_LIFETIME,
    TURNSTILE_SECRET,
    TurnstileSimulator,
)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def turnstile(clock: Clock) -> Iterator[SimServer]:
    with SimServer(TurnstileSimulator(clock=clock, hostname="reapi.test")) as server:
        yield server


@pytest.fixture
def http(turnstile: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=turnstile.base_url, timeout=5) as client:
        yield client


def sim_of(server: SimServer) -> TurnstileSimulator:
    app = server.app
    assert isinstance(app, TurnstileSimulator)
    return app


def verify(http: httpx.Client, **fields: str) -> dict:
    answer = http.post(SITEVERIFY_PATH, data={"secret": TURNSTILE_SECRET, **fields})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


def test_a_pass_token_passes_once_then_is_a_duplicate(http, turnstile):
    first = verify(http, response="pass", remoteip="203.0.113.7")
    assert first["success"] is True and first["error-codes"] == []
    assert first["hostname"] == "reapi.test" and first["challenge_ts"].endswith("Z")
    assert {"action", "cdata"} <= set(first)
    assert verify(http, response="pass") == {
        "success": False,
        "error-codes": ["timeout-or-duplicate"],
        "messages": [],
    }
    assert verify(http, response="pass-2")["success"] is True  # another token, another pass

    sim = sim_of(turnstile)
    assert sim.outcomes == {"success": 2, "timeout-or-duplicate": 1}
    last = sim.last_request
    assert last == {"response": "pass-2"}  # the secret is never kept


def test_other_tokens_and_wrong_or_missing_secrets_fail_with_their_codes(http):
    assert verify(http, response="forged")["error-codes"] == ["invalid-input-response"]
    assert verify(http, response="pass" + "x" * 2048)["error-codes"] == ["invalid-input-response"]
    wrong = http.post(SITEVERIFY_PATH, data={"secret": "0xwrong", "response": "pass-9"}).json()
    assert wrong["error-codes"] == ["invalid-input-secret"]
    neither = http.post(SITEVERIFY_PATH, data={}).json()
    assert neither["error-codes"] == ["missing-input-secret", "missing-input-response"]
    assert verify(http)["error-codes"] == ["missing-input-response"]
    # the refused secret did not spend the token
    assert verify(http, response="pass-9")["success"] is True


def test_issued_tokens_carry_action_and_cdata_and_expire_after_300_s(http, turnstile, clock):
    sim = sim_of(turnstile)
    token = sim.issue_token(action="signup", cdata="form-1")
    passed = verify(http, response=token)
    assert (passed["action"], passed["cdata"]) == ("signup", "form-1")

    late = sim.issue_token()
    clock.now += TOKEN_LIFETIME + 1
    assert verify(http, response=late)["error-codes"] == ["timeout-or-duplicate"]

    issued = http.post("/__sim__/turnstile/tokens", json={"action": "reset"}).json()["token"]
    assert verify(http, response=issued)["action"] == "reset"


def test_json_and_multipart_bodies_and_a_bad_request(http):
    as_json = http.post(SITEVERIFY_PATH, json={"secret": TURNSTILE_SECRET, "response": "pass-j"})
    assert as_json.json()["success"] is True
    multipart = http.post(
        SITEVERIFY_PATH,
        files={"secret": (None, TURNSTILE_SECRET), "response": (None, "pass-m")},
    )
    assert multipart.json()["success"] is True
    bad = http.post(SITEVERIFY_PATH, content=b"[", headers={"content-type": "application/json"})
    assert bad.json()["error-codes"] == ["bad-request"]


def test_an_idempotency_key_replays_the_first_outcome(http):
    key = str(uuid.uuid4())
    first = verify(http, response="pass-i", idempotency_key=key)
    assert verify(http, response="pass-i", idempotency_key=key) == first
    assert verify(http, response="pass-i")["error-codes"] == ["timeout-or-duplicate"]


def test_cloudflares_testing_secrets(http):
    def with_secret(secret: str) -> dict:
        return http.post(SITEVERIFY_PATH, data={"secret": secret, "response": DUMMY_TOKEN}).json()

    assert with_secret(ALWAYS_PASSES_SECRET)["success"] is True
    assert with_secret(ALWAYS_PASSES_SECRET)["success"] is True  # any number of times
    assert with_secret(ALWAYS_FAILS_SECRET)["error-codes"] == ["invalid-input-response"]
    assert with_secret(ALREADY_SPENT_SECRET)["error-codes"] == ["timeout-or-duplicate"]


def test_faults_and_state(http, turnstile):
    turnstile.faults.set(Fault.ERROR_503, count=1)
    down = http.post(SITEVERIFY_PATH, data={"secret": TURNSTILE_SECRET, "response": "pass-f"})
    assert down.status_code == 503 and down.json()["error-codes"] == ["internal-error"]
    assert verify(http, response="pass-f")["success"] is True  # the failed call spent nothing
    turnstile.faults.set(Fault.HANG, count=1)
    with pytest.raises(httpx.ReadTimeout):
        http.post(SITEVERIFY_PATH, data={"response": "x"}, timeout=0.3)
    state = http.get("/__sim__/turnstile/state").json()
    assert state["verifications"] == 1 and state["outcomes"] == {"success": 1}
    assert http.get(SITEVERIFY_PATH).status_code == 405
