"""The simulated Resend on real sockets, through plain httpx (the wire) and through Resend's
own Python SDK (that our shapes are the ones a Resend client expects)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import resend
from resend.exceptions import ResendError

from reapi.testing import Fault, SimServer
from reapi_server.testing.resend_sim import (
    IDEMPOTENCY_WINDOW,
    RESEND_API_KEY,
    ResendSimulator,
)

AUTH = {"authorization": f"Bearer {RESEND_API_KEY}"}
MESSAGE = {
    "from": "reapi <no-reply@reapi.test>",
    "to": "ada@example.com",
    "subject": "Verify your email",
    "text": "Open http://127.0.0.1:8000/verify?token=abc to verify.",
    "html": '<p><a href="http://127.0.0.1:8000/verify?token=abc&amp;x=1">Verify</a></p>',
    "headers": {"X-Entity-Ref-ID": "verify-1"},
    "reply_to": ["help@reapi.test"],
    "tags": [{"name": "kind", "value": "verification"}],
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def resend_server(clock: Clock) -> Iterator[SimServer]:
    with SimServer(ResendSimulator(clock=clock)) as server:
        yield server


@pytest.fixture
def http(resend_server: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=resend_server.base_url, timeout=5) as client:
        yield client


def sim_of(server: SimServer) -> ResendSimulator:
    app = server.app
    assert isinstance(app, ResendSimulator)
    return app


def test_a_sent_message_is_kept_readable_and_retrievable(resend_server, http):
    answer = http.post("/emails", json=MESSAGE, headers=AUTH)
    assert answer.status_code == 200
    email_id = answer.json()["id"]
    assert set(answer.json()) == {"id"}
    assert answer.headers["ratelimit-limit"] == "2" and "ratelimit-remaining" in answer.headers

    sim = sim_of(resend_server)
    sent = sim.latest(to="ADA@example.com")
    assert sent is not None and sent.id == email_id
    assert sent.to == ("ada@example.com",) and sent.reply_to == ("help@reapi.test",)
    assert sent.headers == {"X-Entity-Ref-ID": "verify-1"}
    assert sent.tags == (("kind", "verification"),)
    assert sent.links == [
        "http://127.0.0.1:8000/verify?token=abc",
        "http://127.0.0.1:8000/verify?token=abc&x=1",
    ]
    assert sim.messages_to("grace@example.com") == []

    shown = http.get(f"/emails/{email_id}", headers=AUTH).json()
    assert shown["object"] == "email" and shown["id"] == email_id
    assert shown["to"] == ["ada@example.com"] and shown["from"] == MESSAGE["from"]
    assert shown["subject"] == MESSAGE["subject"] and shown["last_event"] == "delivered"
    assert "headers" not in shown  # ours, not Resend's
    missing = http.get("/emails/4ef9a417-02e9-4d39-ad75-9611e0fcc33c", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["name"] == "not_found"

    listed = http.get("/__sim__/resend/emails", params={"to": "ada@example.com"}).json()
    assert [m["id"] for m in listed["data"]] == [email_id]
    assert listed["data"][0]["links"][0] == "http://127.0.0.1:8000/verify?token=abc"
    assert http.delete("/__sim__/resend/emails").json() == {"deleted": 1}
    assert sim.messages == []


def test_to_may_be_a_list_and_cc_bcc_count_as_recipients(resend_server, http):
    message = {**MESSAGE, "to": ["a@x.test", "B <b@x.test>"], "bcc": "c@x.test"}
    assert http.post("/emails", json=message, headers=AUTH).status_code == 200
    sim = sim_of(resend_server)
    assert [len(sim.messages_to(a)) for a in ("a@x.test", "b@x.test", "c@x.test")] == [1, 1, 1]


def test_idempotency_key_replays_the_first_id_and_refuses_another_body(resend_server, http, clock):
    keyed = {**AUTH, "idempotency-key": "verify/user-1"}
    first = http.post("/emails", json=MESSAGE, headers=keyed).json()["id"]
    reordered = dict(reversed(list(MESSAGE.items())))  # the same body, keys in another order
    again = http.post("/emails", json=reordered, headers=keyed)
    assert again.status_code == 200 and again.json()["id"] == first
    assert len(sim_of(resend_server).messages) == 1  # no second message

    other = http.post("/emails", json={**MESSAGE, "subject": "changed"}, headers=keyed)
    assert other.status_code == 409
    assert other.json() == {
        "statusCode": 409,
        "message": "Same idempotency key used with a different request payload.",
        "name": "invalid_idempotent_request",
    }

    clock.now += IDEMPOTENCY_WINDOW + 1  # after 24 hours the key is new again
    later = http.post("/emails", json={**MESSAGE, "subject": "changed"}, headers=keyed)
    assert later.status_code == 200 and later.json()["id"] != first
    assert len(sim_of(resend_server).messages) == 2

    too_long = http.post("/emails", json=MESSAGE, headers={**AUTH, "idempotency-key": "k" * 257})
    assert too_long.status_code == 400 and too_long.json()["name"] == "invalid_idempotency_key"


def test_a_refused_request_does_not_use_up_its_idempotency_key(resend_server, http):
    keyed = {**AUTH, "idempotency-key": "k1"}
    refused = http.post("/emails", json={**MESSAGE, "to": "not an address"}, headers=keyed)
    assert refused.status_code == 422
    assert http.post("/emails", json=MESSAGE, headers=keyed).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "name"),
    [
        ({"to": None}, 422, "missing_required_field"),
        ({"subject": ""}, 422, "missing_required_field"),
        ({"from": "nobody"}, 422, "validation_error"),
        ({"to": ["ok@x.test", "bad"]}, 422, "validation_error"),
        ({"to": [f"u{i}@x.test" for i in range(51)]}, 422, "validation_error"),
        ({"html": None, "text": None}, 422, "validation_error"),
        ({"headers": {"X-A": 1}}, 422, "validation_error"),
        ({"tags": [{"name": "has space", "value": "v"}]}, 422, "validation_error"),
    ],
)
def test_validation_errors_in_resends_shape(http, change, status, name):
    message = {k: v for k, v in {**MESSAGE, **change}.items() if v is not None}
    answer = http.post("/emails", json=message, headers=AUTH)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"statusCode", "message", "name"}
    assert (body["statusCode"], body["name"]) == (status, name)


def test_keys_paths_and_methods(http):
    assert http.post("/emails", json=MESSAGE).json()["name"] == "missing_api_key"
    wrong = http.post("/emails", json=MESSAGE, headers={"authorization": "Bearer re_wrong"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "API key is invalid"
    assert http.post("/emails", content=b"[1]", headers=AUTH).status_code == 422
    assert http.get("/emails", headers=AUTH).status_code == 405
    assert http.get("/domains", headers=AUTH).json()["name"] == "not_found"


def test_faults_in_resends_words(resend_server, http):
    resend_server.faults.set(Fault.RATE_LIMIT, retry_after=3, count=1)
    limited = http.post("/emails", json=MESSAGE, headers=AUTH)
    assert limited.status_code == 429 and limited.json()["name"] == "rate_limit_exceeded"
    assert limited.headers["retry-after"] == "3" and limited.headers["ratelimit-remaining"] == "0"

    resend_server.faults.set(Fault.ERROR_500, count=1)
    failed = http.post("/emails", json=MESSAGE, headers=AUTH)
    assert failed.status_code == 500 and failed.json()["name"] == "internal_server_error"

    sim_of(resend_server).faults.set(Fault.QUOTA_EXHAUSTED, count=1)
    quota = http.post("/emails", json=MESSAGE, headers=AUTH)
    assert quota.status_code == 429 and quota.json()["name"] == "daily_quota_exceeded"

    # the control endpoint sets the same faults, e.g. a hang the sender must time out on
    http.post("/__sim__/fault", content=json.dumps({"fault": "hang", "count": 1}))
    with pytest.raises(httpx.ReadTimeout):
        http.post("/emails", json=MESSAGE, headers=AUTH, timeout=0.3)
    assert http.post("/emails", json=MESSAGE, headers=AUTH).status_code == 200
    assert len(sim_of(resend_server).messages) == 1  # only the last one was accepted


def test_a_refused_connection_loses_no_message_that_was_accepted(resend_server, http):
    assert http.post("/emails", json=MESSAGE, headers=AUTH).status_code == 200
    resend_server.faults.set(Fault.REFUSE)
    with httpx.Client(timeout=1) as fresh, pytest.raises(httpx.ConnectError):
        fresh.post(resend_server.base_url + "/emails", json=MESSAGE, headers=AUTH)
    resend_server.faults.clear()
    assert len(sim_of(resend_server).messages) == 1


# -- Resend's own SDK --------------------------------------------------------------------------
@pytest.fixture
def sdk(resend_server, monkeypatch) -> ResendSimulator:
    monkeypatch.setattr(resend, "api_key", RESEND_API_KEY)
    monkeypatch.setattr(resend, "api_url", resend_server.base_url)
    return sim_of(resend_server)


def test_the_resend_sdk_sends_retrieves_and_replays(sdk):
    params: resend.Emails.SendParams = {
        "from": MESSAGE["from"],
        "to": ["ada@example.com"],
        "subject": "Hello",
        "html": "<p>Hi</p>",
        "tags": [{"name": "kind", "value": "test"}],
    }
    sent = resend.Emails.send(params, options={"idempotency_key": "sdk-1"})
    replayed = resend.Emails.send(params, options={"idempotency_key": "sdk-1"})
    assert sent["id"] == replayed["id"] and len(sdk.messages) == 1
    assert sdk.messages[0].idempotency_key == "sdk-1"
    fetched = resend.Emails.get(sent["id"])
    assert fetched["subject"] == "Hello" and fetched["to"] == ["ada@example.com"]


def test_the_resend_sdk_raises_its_own_errors_for_ours(sdk, resend_server, monkeypatch):
    with pytest.raises(ResendError) as invalid:
        resend.Emails.send({"from": "x", "to": "ada@example.com", "subject": "s", "text": "t"})
    assert (str(invalid.value.code), invalid.value.error_type) == ("422", "validation_error")

    resend_server.faults.set(Fault.RATE_LIMIT, count=1)
    with pytest.raises(ResendError) as limited:
        resend.Emails.send({"from": MESSAGE["from"], "to": "a@x.test", "subject": "s", "text": "t"})
    assert limited.value.error_type == "rate_limit_exceeded"
    assert limited.value.headers.get("retry-after") == "2"

    monkeypatch.setattr(resend, "api_key", "re_wrong")
    with pytest.raises(ResendError) as wrong_key:
        resend.Emails.send({"from": MESSAGE["from"], "to": "a@x.test", "subject": "s", "text": "t"})
    assert str(wrong_key.value.code) == "401"
