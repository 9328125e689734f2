"""Caller URLs are fetched last (issue 9 B2): the key, the limits, the model's capabilities and
counts, and a credit hold come first, so a request that would be refused costs the gateway no
download; and what one request fetches is bounded in total (`fetch_max_request_bytes`)."""

from __future__ import annotations

import pytest
from tests.conftest import two_host_catalog
from tests.server.helpers import auth, ledger_matches

from reapi.catalog import Catalog
from reapi.testing import png_bytes

IMAGE = png_bytes(16, 16)
KIB = 1024


def three_image_catalog() -> Catalog:
    """The test catalog plus `three-images`: gpt-image-2 taking at most 3 input images."""
    catalog = two_host_catalog().model_dump(mode="json")
    small = dict(catalog["models"]["gpt-image-2"], id="three-images")
    small["capabilities"] = dict(small["capabilities"], max_input_images=3)
    catalog["models"]["three-images"] = small
    return Catalog.model_validate(catalog)


@pytest.fixture
async def gateway(make_gateway, media_host):
    gateway = await make_gateway(catalog=three_image_catalog())
    gateway.rt.fetcher = gateway.rt.engine.fetcher = media_host.async_fetcher(
        gateway.rt.settings.url_policy
    )
    return gateway


def urls(media_host, count: int, body: bytes = IMAGE) -> list[dict[str, str]]:
    return [{"image_url": media_host.serve(f"/{i}.png", body)} for i in range(count)]


async def edit(gateway, key, images, model="gpt-image-2", mask=None):
    body = {"model": model, "prompt": "p", "images": images}
    if mask is not None:
        body["mask"] = mask
    return await gateway.client.post("/v1/images/edits", json=body, headers=auth(key))


async def video(gateway, key, reference, **fields):
    body = {"model": "sim-video", "prompt": "p", "size": "1280x720", **fields}
    body["input_reference"] = reference
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def test_an_account_without_credit_fetches_nothing(gateway, media_host):
    account, key = await gateway.account(credits=0)
    images = urls(media_host, 16)
    mask = {"image_url": media_host.serve("/mask.png", IMAGE)}
    response = await edit(gateway, key, images, mask=mask)
    assert response.status_code == 402, response.text
    refused = await video(gateway, key, {"image_url": media_host.serve("/first.png", IMAGE)})
    assert refused.status_code == 402, refused.text
    assert media_host.requests == [] and media_host.lookups == []
    assert await ledger_matches(gateway.rt, account) == (0, 0)


async def test_more_images_than_the_model_takes_fetches_nothing(gateway, media_host):
    account, key = await gateway.account()
    response = await edit(gateway, key, urls(media_host, 16), model="three-images")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "image"
    assert media_host.requests == []
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


@pytest.mark.parametrize(
    "fields",
    [{"size": "9999x9999"}, {"seconds": "5"}, {"model": "no-such-model"}],
    ids=["size", "seconds", "model"],
)
async def test_a_video_the_model_refuses_fetches_nothing(gateway, media_host, fields):
    _, key = await gateway.account()
    reference = {"image_url": media_host.serve("/first.png", IMAGE)}
    response = await video(gateway, key, reference, **fields)
    assert response.status_code in (400, 404), response.text
    assert media_host.requests == []


async def test_a_video_over_the_jobs_limit_fetches_nothing(make_gateway, media_host):
    gateway = await make_gateway(max_concurrent_videos=1)
    gateway.rt.fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    _, key = await gateway.account()
    assert (await video(gateway, key, None)).status_code == 200
    reference = {"image_url": media_host.serve("/first.png", IMAGE)}
    assert (await video(gateway, key, reference)).status_code == 429
    assert media_host.requests == []


async def test_a_malformed_idempotency_key_fetches_nothing(gateway, media_host):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/edits",
        json={"model": "gpt-image-2", "prompt": "p", "images": urls(media_host, 2)},
        headers={**auth(key), "idempotency-key": "k" * 300},
    )
    assert response.status_code == 400
    assert media_host.requests == []


async def test_the_bytes_one_request_fetches_are_bounded(make_gateway, media_host):
    gateway = await make_gateway(fetch_max_request_bytes=100 * KIB)
    gateway.rt.fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    account, key = await gateway.account()
    images = urls(media_host, 3, IMAGE + b"\0" * (40 * KIB))  # 120 KiB together
    response = await edit(gateway, key, images)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "inputs_too_large" and error["param"].startswith("images[")
    assert gateway.upstream.calls == []
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)  # the hold was released
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert [(u["status"], u["credit_cost"], u["error_code"]) for u in usage] == [
        ("failed", 0, "inputs_too_large")
    ]
    two = await edit(gateway, key, images[:2])  # 80 KiB: within the bound
    assert two.status_code == 200, two.text


async def test_a_body_announcing_more_than_the_bound_is_refused_before_it_is_read(
    make_gateway, media_host
):
    gateway = await make_gateway(fetch_max_request_bytes=64 * KIB)
    gateway.rt.fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    account, key = await gateway.account()
    endless = media_host.serve("/big.png", IMAGE + b"\0" * 65536, endless=True)
    response = await video(gateway, key, {"image_url": endless})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "inputs_too_large"
    assert media_host.hung_up.wait(5)
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    [job] = (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"]
    assert job["status"] == "failed" and job["error"]["code"] == "inputs_too_large"


async def test_a_stored_output_counts_against_the_bound(make_gateway):
    gateway = await make_gateway(fetch_max_request_bytes=10)
    _, key = await gateway.account()
    made = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
        headers=auth(key),
    )
    file_id = made.json()["data"][0]["url"].split("/files/")[1].split("/")[0]
    response = await edit(gateway, key, [{"file_id": file_id}])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "inputs_too_large"


async def test_a_request_within_every_bound_still_works(gateway, media_host):
    account, key = await gateway.account()
    mask = {"image_url": media_host.serve("/mask.png", IMAGE)}
    response = await edit(gateway, key, urls(media_host, 16), mask=mask)
    assert response.status_code == 200, response.text
    assert len(media_host.requests) == 17
    first = await video(gateway, key, {"image_url": media_host.serve("/first.png", IMAGE)})
    assert first.status_code == 200, first.text
    assert len(media_host.requests) == 18
    balance, held = await ledger_matches(gateway.rt, account)
    assert balance < 10_000 and held == 40  # the image charged, the video held


async def test_an_idempotent_replay_fetches_nothing_again(gateway, media_host):
    _, key = await gateway.account()
    body = {"model": "gpt-image-2", "prompt": "p", "images": urls(media_host, 2)}
    headers = {**auth(key), "idempotency-key": "edit-1"}
    first = await gateway.client.post("/v1/images/edits", json=body, headers=headers)
    again = await gateway.client.post("/v1/images/edits", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert len(media_host.requests) == 2  # fetched once, for the first
