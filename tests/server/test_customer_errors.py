"""What a customer calling /v1 is told when a request cannot be served, found by walking the
demo as a new customer: each answer in OpenAI's error shape, saying what to do next."""

import base64
import json

import pytest
from pydantic import SecretStr
from sqlalchemy import update
from tests.server.fakes import PNG
from tests.server.helpers import auth

from reapi_server.billing.settings import BillingSettings, CreditPack
from reapi_server.jobs.poller import JobPoller
from reapi_server.models import VideoJob

PACK = CreditPack(id="starter", name="1,000 credits", credits=1000, unit_amount=1000)
#: Billing on (checkout would go to a Stripe nobody calls here): the gateway sells credits.
SELLING = BillingSettings(
    stripe_secret_key=SecretStr("sk_test_walk"),
    stripe_webhook_secrets=[SecretStr("whsec_walk")],
    stripe_api_base="http://127.0.0.1:9",
    packs=[PACK],
)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def generate(gateway, key, **headers):
    return await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a lighthouse"},
        headers={**auth(key), **headers},
    )


async def test_out_of_credit_says_the_price_the_balance_and_where_to_buy(make_gateway):
    gateway = await make_gateway(billing=SELLING, port=8811)
    _, key = await gateway.account(credits=39)
    response = await generate(gateway, key)
    assert response.status_code == 402
    error = error_of(response)
    assert error["code"] == "insufficient_credits" and error["type"] == "insufficient_quota"
    assert "costs 40 credits" in error["message"] and "has 39 available" in error["message"]
    assert "buy credits at http://127.0.0.1:8811/dashboard/billing" in error["message"]


async def test_out_of_credit_where_the_gateway_sells_none_points_to_the_operator(gateway):
    _, key = await gateway.account(credits=0)
    error = error_of(await generate(gateway, key))
    assert error["code"] == "insufficient_credits"
    assert "has 0 available" in error["message"]
    assert "ask the operator of this gateway for credits" in error["message"]


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/plain", "application/x-www-form-urlencoded"]
)
@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1/videos"])
async def test_a_json_body_declared_as_another_type_is_refused(gateway, path, content_type):
    _, key = await gateway.account(credits=1000)
    model = "gpt-image-2" if "images" in path else "sim-video"
    response = await gateway.client.post(
        path,
        content=f'{{"model": "{model}", "prompt": "p"}}'.encode(),
        headers={**auth(key), "content-type": content_type},
    )
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "unsupported_content_type"
    assert error["type"] == "invalid_request_error"
    assert "Content-Type: application/json" in error["message"]
    # The form type is what `curl -d` sends unless told otherwise: the message says so.
    assert ("curl's `-d`" in error["message"]) == (content_type.endswith("urlencoded"))
    # /v1/videos takes uploads too, and says so.
    assert ("multipart/form-data (an upload)" in error["message"]) == (path == "/v1/videos")
    assert gateway.upstream.calls == []  # refused before any upstream call


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/json ; charset=UTF-8",
        # JSON types other clients send, read before the refusal came: still read.
        "text/json",
        "application/vnd.api+json",
        None,
    ],
)
async def test_json_with_or_without_a_charset_or_a_type_is_served(gateway, content_type):
    _, key = await gateway.account(credits=1000)
    headers = auth(key) if content_type is None else {**auth(key), "content-type": content_type}
    response = await gateway.client.post(
        "/v1/images/generations",
        content=b'{"model": "gpt-image-2", "prompt": "p"}',
        headers=headers,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("variant", ["thumbnail", "spritesheet"])
async def test_a_variant_the_host_does_not_make_is_refused_as_the_sdk_refuses_it(gateway, variant):
    _, key = await gateway.account(credits=1000)
    created = await gateway.client.post(
        "/v1/videos",
        json={"model": "sim-video", "prompt": "p", "size": "1280x720"},
        headers=auth(key),
    )
    video_id = created.json()["id"]
    for _ in range(3):
        await JobPoller(gateway.rt).run_once()
    async with gateway.rt.db.write() as session:  # a host that makes no thumbnail (Veo)
        await session.execute(
            update(VideoJob).where(VideoJob.id == video_id).values(thumbnail_file_id=None)
        )
    response = await gateway.client.get(
        f"/v1/videos/{video_id}/content?variant={variant}", headers=auth(key)
    )
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "variant_unavailable" and error["param"] == "variant"
    assert error["message"] == f"this video has no {variant}: primary does not make one"
    video = await gateway.client.get(f"/v1/videos/{video_id}/content", headers=auth(key))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"


async def test_an_upload_over_the_limit_says_the_limit_in_words(make_gateway):
    gateway = await make_gateway(max_body_bytes=2 << 20)
    _, key = await gateway.account(credits=1000)
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files={"image": ("big.png", b"\x89PNG" + b"\0" * (3 << 20), "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert error["message"] == "the request body is larger than this gateway's limit of 2 MiB"


async def test_a_providers_key_sent_by_mistake_is_told_what_a_key_here_looks_like(gateway):
    """The openai client sends OPENAI_API_KEY when no api_key= is given."""
    secret = "sk-proj-Walk11NotOurs0123456789"
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p"},
        headers={"authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_api_key"
    assert "start with `rk_live_`" in error["message"] and "Keys page" in error["message"]
    assert secret not in response.text


async def test_one_of_our_keys_cut_short_is_told_so(gateway):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p"},
        headers={"authorization": f"Bearer {key[:-6]}"},
    )
    assert response.status_code == 401
    message = error_of(response)["message"]
    assert "incomplete or mistyped" in message and "rk_live_`" not in message


@pytest.mark.parametrize("content_type", ["Application/JSON; charset=UTF-8", "text/json"])
async def test_an_edit_reads_its_content_type_whatever_its_case(gateway, content_type):
    _, key = await gateway.account(credits=1000)
    image = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    body = {"model": "gpt-image-2", "prompt": "p", "images": [{"image_url": image}]}
    response = await gateway.client.post(
        "/v1/images/edits",
        content=json.dumps(body).encode(),
        headers={**auth(key), "content-type": content_type},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/embeddings", "/v1/image/generations"]
)
async def test_an_endpoint_it_does_not_serve_says_what_it_serves(gateway, path):
    _, key = await gateway.account()
    response = await gateway.client.post(path, json={}, headers=auth(key))
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "http_404"
    assert "POST /v1/images/generations" in error["message"] and "chat" in error["message"]


async def test_openai_endpoints_it_does_not_serve_are_named_as_such(gateway):
    """What an openai client user may try: images.create_variation, videos.remix."""
    _, key = await gateway.account()
    for path in ("/v1/images/variations", "/v1/videos/video_x/remix"):
        response = await gateway.client.post(path, json={}, headers=auth(key))
        assert response.status_code == 404, path
        message = error_of(response)["message"]
        assert "image variations, video remix) are not served" in message
