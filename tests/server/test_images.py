"""The image endpoints: answers, mirrored outputs, error mapping, idempotency, limits."""

import asyncio
import base64
import os
import tempfile

import pytest
from sqlalchemy.exc import OperationalError
from tests.server.fakes import PNG
from tests.server.helpers import auth, ledger_matches, scrape_metrics

from reapi.router import InMemoryBreakerStore
from reapi_server.idempotency import repository as idempotency_rows
from reapi_server.jobs.sweeper import sweep_once


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs on local disk and on a real S3 server (moto)."""
    return request.param


async def generate(gateway, key, headers=None, **fields):
    body = {"model": "gpt-image-2", "prompt": "a lighthouse", **fields}
    return await gateway.client.post(
        "/v1/images/generations", json=body, headers={**auth(key), **(headers or {})}
    )


async def test_b64_by_default_and_a_usage_row(gateway):
    account, key = await gateway.account(credits=1000)
    response = await generate(gateway, key, n=2)
    assert response.status_code == 200
    body = response.json()
    assert [base64.b64decode(d["b64_json"]) for d in body["data"]] == [PNG, PNG]
    assert body["reapi"]["provider"] == "primary" and body["reapi"]["attempts"] == 1
    assert response.headers["x-request-id"].startswith("req_")
    assert await ledger_matches(gateway.rt, account) == (920, 0)
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]
    assert usage["id"] == response.headers["x-request-id"]
    assert usage["credit_cost"] == 80 and usage["status"] == "succeeded"
    assert usage["attempts"] == 1 and usage["endpoint"] == "images.generations"
    credits = (await gateway.client.get("/v1/credits", headers=auth(key))).json()
    assert credits == {"object": "credits", "balance": 920, "reserved": 0}


@pytest.mark.parametrize("as_url", [False, True])
async def test_an_answer_with_more_images_than_asked_gives_only_those_asked(gateway, as_url):
    """The request is priced and held for `n` images: more from the upstream (a model that
    makes a set, a broken or hostile answer) are neither handed out nor fetched nor stored,
    rather than given away with only `n` charged."""
    account, key = await gateway.account(credits=1000)
    gateway.upstream.extra_images = 3
    if as_url:
        gateway.upstream.image_url = "http://93.184.215.14/generated/x.png"  # public: no DNS
    response = await generate(gateway, key, n=2, response_format="url")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2
    assert response.headers["x-reapi-credits-charged"] == "80"
    assert await ledger_matches(gateway.rt, account) == (920, 0)
    assert len(gateway.stored()) == 2
    if as_url:  # the upstream's URLs past the second are never requested
        assert gateway.upstream.count("/generated/x.png", method="GET") == 2


async def test_url_format_serves_our_stable_copy(gateway):
    _, key = await gateway.account()
    body = (await generate(gateway, key, response_format="url")).json()
    url = body["data"][0]["url"]
    assert url.startswith("http://gateway.test/v1/files/file_")
    fetched = await gateway.client.get(url)  # no key needed: the URL is the capability
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    assert (await gateway.client.get("/v1/files/file_nope/content")).status_code == 404
    assert (await gateway.client.get(url, headers=auth(key))).content == PNG  # the owner's key
    _, other = await gateway.account()
    assert (await gateway.client.get(url, headers=auth(other))).status_code == 404


async def test_public_base_url_is_used_for_output_urls(make_gateway):
    gateway = await make_gateway(public_base_url="https://api.example.com")
    _, key = await gateway.account()
    body = (await generate(gateway, key, response_format="url")).json()
    assert body["data"][0]["url"].startswith("https://api.example.com/v1/files/")


async def test_edit_with_images_and_mask(gateway):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "add a moon", "size": "1024x1024"},
        files=[
            ("image[]", ("a.png", PNG, "image/png")),
            ("image[]", ("b.png", PNG, "image/png")),
            ("mask", ("m.png", PNG, "image/png")),
        ],
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    assert gateway.upstream.count("/images/edits") == 1


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_large_upload_leaves_no_temp_file_or_descriptor(gateway, monkeypatch, tmp_path):
    _, key = await gateway.account()
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    big = PNG + b"\0" * (3 * 1024 * 1024)
    before = 0
    for round_ in range(4):
        if round_ == 1:  # after a warm-up: pools and threads have opened what they keep
            before = _open_descriptors()
        response = await gateway.client.post(
            "/v1/images/edits",
            data={"model": "gpt-image-2", "prompt": "p"},
            files={"image": ("big.png", big, "image/png")},
            headers=auth(key),
        )
        assert response.status_code == 200
    assert list(spool.iterdir()) == []
    assert _open_descriptors() <= before


async def test_body_size_limit(make_gateway):
    gateway = await make_gateway(max_body_bytes=1024)
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"prompt": "p"},
        files={"image": ("big.png", PNG * 100, "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 413


async def test_an_image_over_the_model_s_limit_is_refused_before_the_hold(gateway):
    """OpenAI takes input images under 50 MB each; the body limit (64 MiB) lets a 60 MB one
    through. It is refused at once, naming the limit and the size, without holding credit or
    calling the provider (which would refuse it after the hold)."""
    account, key = await gateway.account(credits=100)
    big = PNG + b"\0" * (60_000_000 - len(PNG))
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files=[("image[]", ("a.png", PNG, "image/png")), ("image[]", ("b.png", big, "image/png"))],
        headers=auth(key),
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "image" and error["type"] == "invalid_request_error"
    assert "image 2 is 60.0 MB" in error["message"] and "at most 50 MB" in error["message"]
    assert gateway.upstream.count("/images/edits") == 0
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    # At the limit, it goes on.
    limit = PNG + b"\0" * (50_000_000 - len(PNG))
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files={"image": ("a.png", limit, "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        ({"model": "no-such-model"}, 404, "model_not_found", "model"),
        ({"size": "13x7"}, 400, "invalid_value", "size"),
        ({"quality": "ultra"}, 400, "invalid_value", "quality"),
        ({"n": 0}, 400, "integer_below_min_value", "n"),
        ({"prompt": ""}, 400, "empty_string", "prompt"),
        ({"stream": "yes"}, 400, "invalid_type", "stream"),
    ],
)
async def test_invalid_requests(gateway, fields, status, code, param):
    account, key = await gateway.account(credits=100)
    response = await generate(gateway, key, **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert gateway.upstream.calls == []
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_a_validation_error_never_echoes_input(gateway):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"prompt": {"secret": "ECHO-ME-7"}, "n": "ECHO-ME-8"},
        headers=auth(key),
    )
    assert response.status_code == 400
    assert "ECHO-ME" not in response.text and "input" not in response.json()["error"]


async def test_no_credit_is_402(gateway):
    _, key = await gateway.account(credits=39)
    response = await generate(gateway, key)
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert gateway.upstream.calls == []


async def test_failover_to_the_backup(gateway):
    account, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": "500"}
    response = await generate(gateway, key)
    assert response.status_code == 200
    assert response.json()["reapi"]["provider"] == "backup"
    assert response.json()["reapi"]["attempts"] == 2
    assert await ledger_matches(gateway.rt, account) == (60, 0)
    metrics = await scrape_metrics(gateway)
    assert 'reapi_failovers_total{model="gpt-image-2"} 1.0' in metrics


@pytest.mark.parametrize(
    ("fault", "status"), [("500", 502), ("reset", 502), ("hang", 504), ("truncated", 502)]
)
async def test_all_upstreams_down(gateway, fault, status):
    _, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": fault, "backup.test": fault}
    response = await generate(gateway, key)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "server_error"


async def test_upstream_rate_limits_become_429_with_retry_after(gateway):
    _, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": "429", "backup.test": "429"}
    response = await generate(gateway, key)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


async def test_upstream_429_moves_on_then_answers_429_with_an_http_date(gateway):
    account, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": "429_date"}
    assert (await generate(gateway, key)).json()["reapi"]["provider"] == "backup"
    gateway.rt.router.breakers = InMemoryBreakerStore()
    gateway.upstream.faults = {"primary.test": "429_date", "backup.test": "429_date"}
    limited = await generate(gateway, key)
    assert limited.status_code == 429 and 25 <= int(limited.headers["retry-after"]) <= 31
    assert await ledger_matches(gateway.rt, account) == (60, 0)


async def test_per_key_requests_per_minute(make_gateway):
    gateway = await make_gateway(requests_per_minute=3)
    _, key = await gateway.account()
    statuses = [
        (await gateway.client.get("/v1/models", headers=auth(key))).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = await gateway.client.get("/v1/models", headers=auth(key))
    assert int(limited.headers["retry-after"]) >= 1
    _, other = await gateway.account()
    assert (await gateway.client.get("/v1/models", headers=auth(other))).status_code == 200


async def test_base_url_fields_in_the_body_are_ignored(gateway):
    _, key = await gateway.account()
    response = await generate(
        gateway, key, base_url="http://evil.test/v1", api_base="http://evil.test", api_key="x"
    )
    assert response.status_code == 200
    assert {host for host, _, _ in gateway.upstream.calls} == {"primary.test"}


async def test_idempotent_retry_is_one_call_one_charge_same_answer(gateway):
    account, key = await gateway.account(credits=1000)
    first = await generate(gateway, key, headers={"idempotency-key": "k1"})
    second = await generate(gateway, key, headers={"idempotency-key": "k1"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert gateway.upstream.count("/images/generations") == 1
    assert await ledger_matches(gateway.rt, account) == (960, 0)
    conflict = await generate(gateway, key, prompt="another", headers={"idempotency-key": "k1"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"


async def test_the_answer_is_recorded_with_the_charge(gateway, monkeypatch):
    """Recording the answer is part of the settlement's transaction (CHECKS 8): when it fails,
    nothing is charged and the key stays free; once it is recorded, the sweeper never drops
    the key as abandoned, and a retry with it is one charge, same answer."""
    account, key = await gateway.account(credits=1000)
    rt = gateway.rt
    real_complete = idempotency_rows.complete
    failures = [OperationalError("UPDATE", {}, Exception("connection lost"))]

    async def flaky_complete(*args, **kwargs):
        if failures:
            raise failures.pop()
        await real_complete(*args, **kwargs)

    monkeypatch.setattr(idempotency_rows, "complete", flaky_complete)
    failed = await generate(gateway, key, headers={"idempotency-key": "k1"})
    assert failed.status_code >= 500
    assert await ledger_matches(rt, account) == (1000, 0)
    first = await generate(gateway, key, headers={"idempotency-key": "k1"})
    assert first.status_code == 200
    later = rt.now() + rt.settings.image_hold_seconds + 60
    monkeypatch.setattr(rt, "clock", lambda: later)
    await sweep_once(rt)
    second = await generate(gateway, key, headers={"idempotency-key": "k1"})
    assert second.status_code == 200 and second.json() == first.json()
    assert gateway.upstream.count("/images/generations") == 2  # the failed one, the first
    assert await ledger_matches(rt, account) == (960, 0)


async def test_concurrent_idempotent_requests_make_one_call(gateway):
    account, key = await gateway.account(credits=1000)
    responses = await asyncio.gather(
        *(generate(gateway, key, headers={"idempotency-key": "same"}) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert gateway.upstream.count("/images/generations") == 1
    assert await ledger_matches(gateway.rt, account) == (960, 0)


async def test_idempotency_keys_are_per_account(gateway):
    _, key_a = await gateway.account()
    _, key_b = await gateway.account()
    await generate(gateway, key_a, headers={"idempotency-key": "shared"})
    other = await generate(gateway, key_b, prompt="x", headers={"idempotency-key": "shared"})
    assert other.status_code == 200
    assert gateway.upstream.count("/images/generations") == 2


async def test_a_failed_request_can_be_retried_with_its_key(gateway):
    account, key = await gateway.account(credits=1000)
    gateway.upstream.faults = {"primary.test": "500", "backup.test": "500"}
    assert (await generate(gateway, key, headers={"idempotency-key": "r"})).status_code == 502
    gateway.upstream.faults = {}
    assert (await generate(gateway, key, headers={"idempotency-key": "r"})).status_code == 200
    assert await ledger_matches(gateway.rt, account) == (960, 0)


async def test_storage_failure_is_502_uncharged_with_no_row(gateway, monkeypatch):
    account, key = await gateway.account(credits=100)

    async def broken_put(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gateway.rt.store, "put", broken_put)
    response = await generate(gateway, key)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_models(gateway):
    _, key = await gateway.account()
    listed = (await gateway.client.get("/v1/models", headers=auth(key))).json()
    assert {m["id"] for m in listed["data"]} == {"gpt-image-2", "sim-video"}
    one = await gateway.client.get("/v1/models/sim-video", headers=auth(key))
    assert one.json()["object"] == "model"
    missing = await gateway.client.get("/v1/models/nope", headers=auth(key))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


async def test_unknown_routes_use_the_error_shape(gateway):
    response = await gateway.client.get("/v1/nothing")
    assert response.status_code == 404 and set(response.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }


async def test_a_request_cancelled_while_storing_leaves_no_object_behind(gateway, monkeypatch):
    """Cancelled between two stored images: the hold is released and the first image, which no
    row will ever point at, is queued for deletion (else retention never finds it)."""
    from reapi_server.mirror.service import purge_deletions

    account, key = await gateway.account(credits=100)
    store = gateway.rt.store
    original = store.put
    first_stored = asyncio.Event()

    async def put_then_hang(key: str, body, content_type: str) -> int:
        if first_stored.is_set():
            await asyncio.Event().wait()  # the second image never finishes
        size = await original(key, body, content_type)
        first_stored.set()
        return size

    monkeypatch.setattr(store, "put", put_then_hang)
    task = asyncio.ensure_future(generate(gateway, key, n=2))
    await asyncio.wait_for(first_stored.wait(), 5)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    await purge_deletions(gateway.rt)
    assert gateway.stored() == {}
