"""Where a video job's webhook goes: the request's `webhook_url` (refused at once unless it
resolves to public addresses only), else its key's default (set by `reapi-server keys
set-webhook`); and the key's signing secret (`keys webhook-secret`)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from tests.media_host import MediaHost
from tests.server.fakes import PNG
from tests.server.helpers import auth, ledger_matches
from typer.testing import CliRunner

from reapi import Webhook
from reapi_server.cli import app
from reapi_server.models import ApiKey, VideoJob

runner = CliRunner()
KEY_LINE = re.compile(r"REAPI_API_KEY=(rk_live_\S+)")


@pytest.fixture
async def gateway(make_gateway, media_host: MediaHost):
    """Webhook URLs on `media.example.com` resolve to a public-looking address."""
    gateway = await make_gateway()
    gateway.rt.webhook_fetcher = media_host.async_fetcher(gateway.rt.settings.webhook_url_policy)
    return gateway


async def create(gateway, key, **fields):
    body = {"model": "sim-video", "prompt": "a wave", "size": "1280x720", **fields}
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def job_of(gateway, video_id: str) -> VideoJob:
    async with gateway.rt.db.read() as session:
        job = await session.get(VideoJob, video_id)
    assert job is not None
    return job


async def key_id_of(gateway, account_id: str) -> str:
    async with gateway.rt.db.read() as session:
        return (
            await session.execute(select(ApiKey.id).where(ApiKey.account_id == account_id))
        ).scalar_one()


async def test_a_public_webhook_url_is_kept_on_the_job(gateway, media_host):
    _, key = await gateway.account(credits=100)
    url = media_host.url("/hook?token=t1")
    created = await create(gateway, key, webhook_url=url)
    assert created.status_code == 200, created.text
    assert (await job_of(gateway, created.json()["id"])).webhook_url == url
    assert media_host.dials == [] and media_host.posts == []  # checked, not called


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:9/hook", "url_not_allowed"),
        ("http://[::1]/hook", "url_not_allowed"),
        ("http://169.254.169.254/latest/meta-data/", "url_not_allowed"),
        ("http://10.1.2.3/hook", "url_not_allowed"),
        ("http://2130706433/hook", "url_not_allowed"),
        ("ftp://media.example.com/hook", "invalid_url"),
        ("http://user:pw@media.example.com/hook", "invalid_url"),
        ("not a url", "invalid_url"),
    ],
)
async def test_a_webhook_url_that_is_not_public_is_refused_before_anything_happens(
    gateway, url, code
):
    account, key = await gateway.account(credits=100)
    refused = await create(gateway, key, webhook_url=url)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == (code, "webhook_url")
    assert "127.0.0.1" not in error["message"] and "user:pw" not in error["message"]
    assert gateway.upstream.count("/videos") == 0
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    assert (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"] == []


async def test_a_name_that_resolves_to_a_private_address_is_refused(gateway, media_host):
    gateway.rt.webhook_fetcher = media_host.async_fetcher(
        gateway.rt.settings.webhook_url_policy, resolver=lambda host, port: ["10.0.0.8"]
    )
    _, key = await gateway.account(credits=100)
    refused = await create(gateway, key, webhook_url=media_host.url("/hook"))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "url_not_allowed"


async def test_a_webhook_url_in_a_multipart_request(gateway, media_host):
    _, key = await gateway.account(credits=100)
    form = {"model": "sim-video", "prompt": "p", "webhook_url": media_host.url("/hook")}
    files = {"input_reference": ("ref.png", PNG, "image/png")}
    created = await gateway.client.post("/v1/videos", data=form, files=files, headers=auth(key))
    assert created.status_code == 200, created.text
    assert (await job_of(gateway, created.json()["id"])).webhook_url == media_host.url("/hook")
    refused = await gateway.client.post(
        "/v1/videos",
        data={**form, "webhook_url": "http://192.168.1.1/"},
        files=files,
        headers=auth(key),
    )
    assert refused.status_code == 400


async def test_an_overlong_webhook_url_is_refused(gateway, media_host):
    _, key = await gateway.account(credits=100)
    refused = await create(gateway, key, webhook_url=media_host.url("/" + "a" * 2100))
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "webhook_url"


async def test_the_keys_default_applies_unless_the_request_names_one(gateway, media_host):
    from reapi_server.webhooks import service

    account, key = await gateway.account(credits=1000)
    key_id = await key_id_of(gateway, account)
    checked = await service.check_url(gateway.rt.webhook_fetcher, media_host.url("/default"))
    async with gateway.rt.db.write() as session:
        assert await service.set_default_url(session, key_id, checked)
    gateway.rt.auth.forget_all()
    by_default = (await create(gateway, key)).json()
    assert (await job_of(gateway, by_default["id"])).webhook_url == media_host.url("/default")
    named = (await create(gateway, key, webhook_url=media_host.url("/mine"))).json()
    assert (await job_of(gateway, named["id"])).webhook_url == media_host.url("/mine")
    async with gateway.rt.db.write() as session:
        await service.set_default_url(session, key_id, None)
    gateway.rt.auth.forget_all()
    none = (await create(gateway, key)).json()
    assert (await job_of(gateway, none["id"])).webhook_url is None


async def test_a_default_that_is_not_public_is_refused(gateway):
    from reapi import InvalidRequestError
    from reapi_server.webhooks import service

    with pytest.raises(InvalidRequestError) as info:
        await service.check_url(gateway.rt.webhook_fetcher, "http://127.0.0.1/")
    assert info.value.param == "webhook_url"
    with pytest.raises(InvalidRequestError):
        await service.check_url(gateway.rt.webhook_fetcher, "https://x.example/" + "a" * 2048)


async def test_the_same_idempotency_key_with_another_webhook_url_conflicts(gateway, media_host):
    _, key = await gateway.account(credits=1000)
    headers = {**auth(key), "idempotency-key": "hooked-1"}
    body = {"model": "sim-video", "prompt": "p", "webhook_url": media_host.url("/a")}
    first = await gateway.client.post("/v1/videos", json=body, headers=headers)
    again = await gateway.client.post("/v1/videos", json=body, headers=headers)
    assert first.json()["id"] == again.json()["id"]
    other = await gateway.client.post(
        "/v1/videos", json={**body, "webhook_url": media_host.url("/b")}, headers=headers
    )
    assert other.status_code == 409


async def test_the_signing_secret_is_derived_stable_and_rotated(gateway):
    from reapi_server.webhooks import service

    account, _ = await gateway.account()
    key_id = await key_id_of(gateway, account)
    secret = gateway.rt.fingerprint_secret

    async def current(rotate: bool = False) -> str:
        async with gateway.rt.db.write() as session:
            value = await service.signing_secret(session, secret, key_id, rotate=rotate, now=5.0)
        assert value is not None
        return value

    first = await current()
    assert first.startswith("whsec_") and Webhook(first)  # a valid Standard Webhooks secret
    assert await current() == first
    rotated = await current(rotate=True)
    assert rotated != first and await current() == rotated
    async with gateway.rt.db.read() as session:
        row = await session.get(ApiKey, key_id)
        assert (
            row.webhook_salt
            and first not in repr(row.__dict__)
            and rotated not in str(row.__dict__)
        )
    async with gateway.rt.db.write() as session:
        assert await service.signing_secret(session, secret, "key_nope", now=1.0) is None


# -- the CLI -------------------------------------------------------------------------------------
def _cli(*args: str):
    return runner.invoke(app, list(args))


def test_keys_set_webhook_and_webhook_secret(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    assert _cli("accounts", "create", "--email", "h@example.com", *data).exit_code == 0
    issued = _cli("keys", "create", "--email", "h@example.com", *data).output
    key_id = re.search(r"key id: (key_\w+)", issued).group(1)

    url = "https://93.184.215.14/hooks/reapi"  # a public literal: no DNS needed
    set_ = _cli("keys", "set-webhook", key_id, "--url", url, *data)
    assert set_.exit_code == 0, set_.output
    assert url in set_.output
    listed = _cli("keys", "list", "--email", "h@example.com", *data).output
    assert f"webhook={url}" in listed

    refused = _cli("keys", "set-webhook", key_id, "--url", "http://10.0.0.1/", *data)
    assert refused.exit_code == 1 and "public address" in refused.output
    assert "10.0.0.1" not in refused.output

    shown = _cli("keys", "webhook-secret", key_id, *data)
    assert shown.exit_code == 0, shown.output
    secret = re.search(r"whsec_\S+", shown.output).group(0)
    assert (
        re.search(r"whsec_\S+", _cli("keys", "webhook-secret", key_id, *data).output).group(0)
        == secret
    )
    rotated = _cli("keys", "webhook-secret", key_id, "--rotate", *data).output
    assert re.search(r"whsec_\S+", rotated).group(0) != secret

    cleared = _cli("keys", "set-webhook", key_id, "--clear", *data)
    assert (
        cleared.exit_code == 0
        and "webhook=" not in _cli("keys", "list", "--email", "h@example.com", *data).output
    )
    unknown = _cli("keys", "webhook-secret", "key_unknown", *data)
    assert unknown.exit_code == 1 and "no such key" in unknown.output
