"""How stored outputs are served: only media types the gateway sniffed itself (never a type an
upstream claimed), with `nosniff`, and a cache lifetime that respects deletion (revalidated with
an ETag on every use, so a deleted output stops resolving at once). On local disk and S3."""

import pytest
from sqlalchemy import select
from tests.server.fakes import MP4, PNG
from tests.server.helpers import auth
from tests.server.test_videos import create, drive

from reapi_server.models import VideoJob

#: What a hostile or broken upstream could hand over as "an image" or "a video".
HTML = b"<html><script>document.title='owned'</script></html>"


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def _image_url(gateway, key: str) -> str:
    body = (
        await gateway.client.post(
            "/v1/images/generations",
            json={"prompt": "p", "response_format": "url"},
            headers=auth(key),
        )
    ).json()
    return body["data"][0]["url"]


def _stored_type(gateway, key: str) -> str:
    """The content type the store itself holds for an object (what S3 would serve)."""
    if gateway.s3 is not None:
        server, bucket = gateway.s3
        return server.client().head_object(Bucket=bucket, Key=key)["ContentType"]
    return gateway.rt.store.path_of(key).read_bytes().partition(b"\n")[0].decode()


async def test_outputs_are_revalidated_and_never_sniffed(gateway):
    _, key = await gateway.account()
    url = await _image_url(gateway, key)
    first = await gateway.client.get(url)
    assert first.status_code == 200 and first.content == PNG
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-content-type-options"] == "nosniff"
    cache = first.headers["cache-control"]
    assert "no-cache" in cache and "immutable" not in cache and "max-age=31536000" not in cache
    etag = first.headers["etag"]
    again = await gateway.client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and "no-cache" in again.headers["cache-control"]
    file_id = url.rsplit("/", 2)[-2]
    assert (await gateway.client.delete(f"/v1/files/{file_id}", headers=auth(key))).is_success
    # A cache that revalidates (as `no-cache` demands) learns at once that it is gone.
    assert (await gateway.client.get(url, headers={"if-none-match": etag})).status_code == 404


async def test_the_type_is_sniffed_not_taken_from_the_upstream(gateway):
    _, key = await gateway.account()
    gateway.upstream.image_format = "jpeg"  # claimed; the bytes are a PNG
    url = await _image_url(gateway, key)
    served = await gateway.client.get(url)
    assert served.headers["content-type"] == "image/png"
    [stored] = [k for k in gateway.stored() if k.startswith("outputs/req_")]
    assert stored.endswith(".png") and _stored_type(gateway, stored) == "image/png"


async def test_bytes_of_no_known_type_are_served_as_opaque(gateway):
    _, key = await gateway.account()
    gateway.upstream.image_body = HTML  # claimed to be a PNG
    url = await _image_url(gateway, key)
    served = await gateway.client.get(url)
    assert served.content == HTML
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["x-content-type-options"] == "nosniff"
    [stored] = [k for k in gateway.stored() if k.startswith("outputs/req_")]
    assert stored.endswith(".bin") and _stored_type(gateway, stored) == "application/octet-stream"


async def test_a_video_is_typed_by_its_bytes_too(gateway):
    _, key = await gateway.account()
    gateway.upstream.video_body = HTML  # the adapter says video/mp4
    video = (await create(gateway, key)).json()
    await drive(gateway)
    content = await gateway.client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.content == HTML
    assert content.headers["content-type"] == "application/octet-stream"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert (
        _stored_type(
            gateway, gateway.rt.output_names.key(video["id"], 0, "application/octet-stream")
        )
        == "application/octet-stream"
    )
    assert (
        _stored_type(gateway, gateway.rt.output_names.key(video["id"], 1, "image/png"))
        == "image/png"
    )


async def test_a_normal_video_keeps_its_type(gateway):
    _, key = await gateway.account()
    video = (await create(gateway, key)).json()
    await drive(gateway)
    content = await gateway.client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.content == MP4 and content.headers["content-type"] == "video/mp4"
    assert "no-cache" in content.headers["cache-control"]
    async with gateway.rt.db.read() as session:
        job = (await session.execute(select(VideoJob))).scalar_one()
    # A video's file id is never handed out (it would be a key-less URL to the video).
    assert job.video_file_id not in content.headers["etag"]
    assert job.video_file_id[5:] not in content.headers["etag"]
    assert (
        _stored_type(gateway, gateway.rt.output_names.key(video["id"], 0, "video/mp4"))
        == "video/mp4"
    )


async def test_objects_served_by_the_bucket_must_be_revalidated_too(make_gateway, storage_backend):
    if storage_backend == "local":
        pytest.skip("direct URLs are an S3 feature")
    gateway = await make_gateway(s3_presign_seconds=120)
    _, key = await gateway.account()
    url = await _image_url(gateway, key)
    redirect = await gateway.client.get(url)
    assert redirect.status_code == 307 and "no-cache" in redirect.headers["cache-control"]
    server, bucket = gateway.s3
    [stored] = [k for k in gateway.stored() if k.startswith("outputs/req_")]
    head = server.client().head_object(Bucket=bucket, Key=stored)
    assert head["CacheControl"] == "private, no-cache" and head["ContentType"] == "image/png"
