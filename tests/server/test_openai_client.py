"""The official openai-python client works unchanged against the gateway, errors included."""

import openai
import pytest
from tests.server.fakes import MP4, PNG
from tests.server.helpers import client_for

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


async def test_images(gateway):
    _, key = await gateway.account()
    client = client_for(gateway, key)
    result = await client.images.generate(model="gpt-image-2", prompt="a lighthouse", n=1)
    assert result.data[0].b64_json
    edited = await client.images.edit(
        model="gpt-image-2",
        image=[("a.png", PNG, "image/png"), ("b.png", PNG, "image/png")],
        mask=("m.png", PNG, "image/png"),
        prompt="add a moon",
    )
    assert edited.data[0].b64_json
    as_url = await client.images.generate(model="gpt-image-2", prompt="x", response_format="url")
    assert as_url.data[0].url.startswith("http://gateway.test/v1/files/")


async def test_videos(gateway):
    from reapi_server.jobs.poller import JobPoller

    _, key = await gateway.account()
    client = client_for(gateway, key)
    video = await client.videos.create(
        model="sim-video", prompt="waves", seconds="4", size="1280x720"
    )
    assert video.status == "queued"
    for _ in range(3):
        await JobPoller(gateway.rt).run_once()
    done = await client.videos.retrieve(video.id)
    assert done.status == "completed"
    content = await client.videos.download_content(video.id)
    assert content.read() == MP4
    page = await client.videos.list()
    assert [v.id for v in page.data] == [video.id]
    deleted = await client.videos.delete(video.id)
    assert deleted.deleted
    models = await client.models.list()
    assert {m.id for m in models.data} == {"gpt-image-2", "sim-video"}
    assert (await client.models.retrieve("sim-video")).id == "sim-video"


async def test_error_classes(gateway):
    _, key = await gateway.account(credits=39)
    client = client_for(gateway, key)
    with pytest.raises(openai.AuthenticationError):
        await client_for(gateway, "rk_live_nope").models.list()
    with pytest.raises(openai.APIStatusError) as no_credit:
        await client.images.generate(model="gpt-image-2", prompt="x")
    assert no_credit.value.status_code == 402
    with pytest.raises(openai.NotFoundError) as missing:
        await client.images.generate(model="nope", prompt="x")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.images.generate(model="gpt-image-2", prompt="x", size="3x3")
    assert bad.value.param == "size"
    with pytest.raises(openai.BadRequestError) as empty:  # 400, as OpenAI answers it
        await client.images.generate(model="gpt-image-2", prompt="")
    assert empty.value.param == "prompt" and empty.value.code == "empty_string"
    gateway.upstream.faults = {"primary.test": "500", "backup.test": "500"}
    async with gateway.rt.db.write() as session:
        from reapi_server.credits import repository

        await repository.grant(session, (await _account_of(gateway, key)), 1000, gateway.rt.now())
    with pytest.raises(openai.InternalServerError) as down:
        await client.images.generate(model="gpt-image-2", prompt="x")
    assert down.value.status_code == 502
    gateway.upstream.faults = {"primary.test": "429", "backup.test": "429"}
    with pytest.raises(openai.RateLimitError) as limited:
        await client.images.generate(model="gpt-image-2", prompt="x")
    assert limited.value.response.headers["retry-after"] == "7"


async def _account_of(gateway, key: str) -> str:
    return (await gateway.rt.auth.authenticate(f"Bearer {key}")).account_id
