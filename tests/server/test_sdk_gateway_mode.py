"""The reapi SDK in gateway mode against this server: the two faces agree."""

import httpx
import pytest
from tests.server.fakes import MP4, PNG

from reapi import AsyncReAPI, InsufficientCreditsError, ModelNotFoundError
from reapi_server.jobs.poller import JobPoller


def sdk(gateway, key: str) -> AsyncReAPI:
    return AsyncReAPI(
        base_url="http://gateway.test/v1",
        api_key=key,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app)),
    )


async def test_images_videos_models(gateway):
    _, key = await gateway.account()
    client = sdk(gateway, key)
    image = await client.images.generate(model="gpt-image-2", prompt="p", idempotency_key="i1")
    assert image.data[0].content() == PNG and image.reapi.provider == "primary"
    edited = await client.images.edit(model="gpt-image-2", prompt="p", image=PNG, mask=PNG)
    assert edited.data[0].content() == PNG
    video = await client.videos.create(model="sim-video", prompt="p", seconds=4, size="1280x720")
    for _ in range(3):
        await JobPoller(gateway.rt).run_once()
    assert (await client.videos.retrieve(video.id)).status == "completed"
    assert (await client.videos.download_content(video.id)).content == MP4
    assert [v.id for v in (await client.videos.list()).data] == [video.id]
    assert {m.id for m in (await client.models.list()).data} == {"gpt-image-2", "sim-video"}
    await client.aclose()


async def test_errors_map_to_sdk_exceptions(gateway):
    _, key = await gateway.account(credits=1)
    client = sdk(gateway, key)
    with pytest.raises(InsufficientCreditsError):
        await client.images.generate(model="gpt-image-2", prompt="p")
    with pytest.raises(ModelNotFoundError):
        await client.images.generate(model="nope", prompt="p")
    await client.aclose()
