"""The stores themselves and the deletion endpoints, on local disk and on a real S3 server
(moto's server mode on loopback): round trips, streams in parts, failures that leave nothing
behind, no metadata, direct URLs, and deletion at once."""

import asyncio
import os
import re
import secrets
import stat
import time

import httpx
import pytest
from sqlalchemy import func, select
from tests.server.fakes import PNG
from tests.server.helpers import auth, unnamed
from tests.server.test_videos import create, drive

from reapi_server.errors import GatewayError
from reapi_server.mirror import LocalDiskStore, ObjectStore, read_object
from reapi_server.mirror.s3 import S3Store
from reapi_server.mirror.service import delete_task_outputs
from reapi_server.models import PendingDeletion, StoredOutput, VideoJob

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(request: pytest.FixtureRequest, storage_backend: str, tmp_path) -> ObjectStore:
    if storage_backend == "local":
        return LocalDiskStore(tmp_path / "outputs")
    server = request.getfixturevalue("moto_server")
    return S3Store(server.client(), server.new_bucket(), part_bytes=5 * MIB)


async def pieces(data: bytes, size: int = 64 * 1024, fail_after: int | None = None):
    for start in range(0, len(data), size):
        if fail_after is not None and start >= fail_after:
            raise RuntimeError("the upstream went away")
        yield data[start : start + size]


def leftovers(store: ObjectStore) -> list[str]:
    """Temp files beside the targets (disk) or unfinished multipart uploads (S3)."""
    if isinstance(store, LocalDiskStore):
        return [p.name for p in store.root.rglob(".put-*")] if store.root.exists() else []
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket)
    return [u["Key"] for u in uploads.get("Uploads", ())]


async def test_small_and_streamed_objects_round_trip(store):
    assert await store.put("outputs/req_1111111111111111/0.png", PNG, "image/png") == len(PNG)
    video = os.urandom(12 * MIB + 123)  # three parts of 5 MiB on S3
    key = "outputs/video_2222222222222222/0.mp4"
    assert await store.put(key, pieces(video), "video/mp4") == len(video)
    opened = await store.open(key)
    assert opened.content_type == "video/mp4" and opened.size == len(video)
    assert await opened.read() == video
    assert (await read_object(store, "outputs/req_1111111111111111/0.png")).data == PNG
    await store.delete(key)
    await store.delete(key)  # deleting what is gone is fine
    assert await store.open(key) is None
    assert leftovers(store) == []


@pytest.mark.parametrize("size", [100, 12 * MIB])
async def test_a_failed_stream_leaves_nothing(store, size):
    key = "outputs/video_3333333333333333/0.mp4"
    with pytest.raises(RuntimeError):
        await store.put(
            key,
            pieces(os.urandom(size), min(size // 4, 64 * 1024), fail_after=size // 2),
            "video/mp4",
        )
    assert await store.open(key) is None
    assert leftovers(store) == []
    if isinstance(store, LocalDiskStore):  # nor any file, nor a folder for the task
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
        assert not (store.root / "outputs" / "video_3333333333333333").exists()


async def test_deleting_a_task_prefix(store):
    for index in range(3):
        await store.put(f"outputs/req_4444444444444444/{index}.png", PNG, "image/png")
    await store.put("outputs/req_5555555555555555/0.png", PNG, "image/png")
    await store.delete_prefix("outputs/req_4444444444444444/")
    await store.delete_prefix("outputs/req_6666666666666666/")  # nothing there: fine
    assert await store.open("outputs/req_4444444444444444/1.png") is None
    assert await store.open("outputs/req_5555555555555555/0.png") is not None


async def test_s3_objects_carry_only_their_content_type(moto_server):
    bucket = moto_server.new_bucket()
    store = S3Store(moto_server.client(), bucket, part_bytes=5 * MIB)
    await store.put("outputs/req_7777777777777777/0.png", PNG, "image/png")
    await store.put(
        "outputs/video_7777777777777777/0.mp4", pieces(os.urandom(6 * MIB)), "video/mp4"
    )
    client = moto_server.client()
    for key in ("outputs/req_7777777777777777/0.png", "outputs/video_7777777777777777/0.mp4"):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"] == {}


async def test_s3_direct_urls(moto_server):
    bucket = moto_server.new_bucket()
    key = "outputs/req_8888888888888888/0.png"
    public = S3Store(moto_server.client(), bucket, public_base_url="https://cdn.example.com/")
    assert public.url(key) == f"https://cdn.example.com/{key}"
    presigned = S3Store(moto_server.client(), bucket, presign_seconds=60)
    await presigned.put(key, PNG, "image/png")
    async with httpx.AsyncClient() as client:  # moto on loopback
        fetched = await client.get(presigned.url(key))
    assert fetched.status_code == 200 and fetched.content == PNG
    assert S3Store(moto_server.client(), bucket).url(key) is None  # the gateway serves it


# -- deletion through the API ----------------------------------------------------------------------


async def _count(gateway, model) -> int:
    async with gateway.rt.db.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar()


async def test_delete_file_removes_its_object_at_once(gateway):
    _, key = await gateway.account()
    body = (
        await gateway.client.post(
            "/v1/images/generations",
            json={"prompt": "p", "n": 2, "response_format": "url"},
            headers=auth(key),
        )
    ).json()
    first, second = (d["url"].split("/")[-2] for d in body["data"])
    _, other = await gateway.account()
    assert (
        await gateway.client.delete(f"/v1/files/{first}", headers=auth(other))
    ).status_code == 404
    deleted = await gateway.client.delete(f"/v1/files/{first}", headers=auth(key))
    assert deleted.json() == {"id": first, "object": "file", "deleted": True}
    assert (await gateway.client.get(f"/v1/files/{first}/content")).status_code == 404
    assert (await gateway.client.get(f"/v1/files/{second}/content")).content == PNG
    assert len(gateway.stored()) == 1 and await _count(gateway, PendingDeletion) == 0
    again = await gateway.client.delete(f"/v1/files/{first}", headers=auth(key))
    assert again.status_code == 404


async def test_delete_outputs_of_an_image_request(gateway):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p", "n": 2}, headers=auth(key)
    )
    request_id = response.headers["x-request-id"]
    assert unnamed(gateway.stored()) == [
        f"outputs/{request_id}/0.png",
        f"outputs/{request_id}/1.png",
    ]
    _, other = await gateway.account()
    refused = await gateway.client.delete(f"/v1/outputs/{request_id}", headers=auth(other))
    assert refused.status_code == 404 and len(gateway.stored()) == 2
    deleted = await gateway.client.delete(f"/v1/outputs/{request_id}", headers=auth(key))
    assert deleted.json() == {"id": request_id, "object": "outputs.deleted", "deleted": True}
    assert gateway.stored() == {} and await _count(gateway, StoredOutput) == 0
    bad = await gateway.client.delete("/v1/outputs/..%2F..%2Fetc", headers=auth(key))
    assert bad.status_code == 404


async def test_operator_delete_of_an_image_request_in_flight(gateway, monkeypatch):
    """`outputs delete --task` while the request stores its images (no rows yet): refused, so
    no row written afterwards can point at a deleted object; once it has finished, it deletes."""
    _, key = await gateway.account()
    rt = gateway.rt
    real_put = rt.store.put
    stored, finish = asyncio.Event(), asyncio.Event()

    async def slow_put(*args, **kwargs):
        size = await real_put(*args, **kwargs)
        stored.set()
        await finish.wait()
        return size

    monkeypatch.setattr(rt.store, "put", slow_put)
    request = asyncio.create_task(
        gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key))
    )
    await asyncio.wait_for(stored.wait(), 5)
    (request_id,) = {k.split("/")[1] for k in gateway.stored()}
    with pytest.raises(GatewayError, match="still running"):
        await delete_task_outputs(rt, request_id, None)  # what `outputs delete` runs
    finish.set()
    assert (await request).status_code == 200
    async with rt.db.read() as session:
        keys = set((await session.execute(select(StoredOutput.storage_key))).scalars())
    assert keys and keys <= set(gateway.stored())  # no row points at a missing object
    assert await delete_task_outputs(rt, request_id, None) == (1, True)
    assert gateway.stored() == {}


async def test_delete_outputs_of_a_video_keeps_the_job(gateway):
    _, key = await gateway.account()
    video = (await create(gateway, key)).json()
    await drive(gateway)
    assert len(gateway.stored()) == 2
    assert (
        await gateway.client.delete(f"/v1/outputs/{video['id']}", headers=auth(key))
    ).status_code == 200
    assert gateway.stored() == {}
    job = await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))
    assert job.json()["status"] == "completed" and job.json()["reapi"]["outputs_deleted"]
    for variant in ("video", "thumbnail"):
        gone = await gateway.client.get(
            f"/v1/videos/{video['id']}/content?variant={variant}", headers=auth(key)
        )
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "outputs_deleted"


async def test_deleting_a_videos_file_is_deleting_that_output(gateway):
    """The job stays completed (it was, and it was paid for); its downloads say the output was
    deleted, as after DELETE /v1/outputs/{id}, and retrieve and list say so too. Its thumbnail
    (a frame of it, which the dashboard lists only beside its video) goes with it."""
    _, key = await gateway.account()
    video = (await create(gateway, key)).json()
    await drive(gateway)
    async with gateway.rt.db.read() as session:
        job = (await session.execute(select(VideoJob))).scalar_one()
    base = f"/v1/videos/{video['id']}"
    shown = (await gateway.client.get(base, headers=auth(key))).json()
    assert shown["reapi"]["outputs_deleted"] is False
    deleted = await gateway.client.delete(f"/v1/files/{job.video_file_id}", headers=auth(key))
    assert deleted.status_code == 200
    gone = await gateway.client.get(f"{base}/content", headers=auth(key))
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "outputs_deleted"
    assert "deleted" in gone.json()["error"]["message"]
    thumbnail = await gateway.client.get(f"{base}/content?variant=thumbnail", headers=auth(key))
    assert thumbnail.status_code == 410
    assert thumbnail.json()["error"]["code"] == "outputs_deleted"
    still = await gateway.client.get(f"/v1/files/{job.thumbnail_file_id}/content")
    assert still.status_code == 404
    retrieved = (await gateway.client.get(base, headers=auth(key))).json()
    assert retrieved["status"] == "completed" and retrieved["reapi"]["outputs_deleted"] is True
    listed = (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"]
    assert listed[0]["id"] == video["id"] and listed[0]["reapi"]["outputs_deleted"] is True
    assert gateway.stored() == {} and await _count(gateway, StoredOutput) == 0


async def test_deleting_a_videos_thumbnail_keeps_the_video(gateway):
    _, key = await gateway.account()
    video = (await create(gateway, key)).json()
    await drive(gateway)
    async with gateway.rt.db.read() as session:
        job = (await session.execute(select(VideoJob))).scalar_one()
    deleted = await gateway.client.delete(f"/v1/files/{job.thumbnail_file_id}", headers=auth(key))
    assert deleted.status_code == 200
    base = f"/v1/videos/{video['id']}"
    thumbnail = await gateway.client.get(f"{base}/content?variant=thumbnail", headers=auth(key))
    assert thumbnail.status_code == 410
    content = await gateway.client.get(f"{base}/content", headers=auth(key))
    assert content.status_code == 200 and content.content == gateway.upstream.video_body
    assert unnamed(gateway.stored()) == [f"outputs/{video['id']}/0.mp4"]


async def test_a_large_video_is_streamed_through_in_parts(gateway):
    """12 MiB: three multipart parts on S3, three 1 MiB-or-more writes on disk; served back
    as a stream."""
    _, key = await gateway.account()
    gateway.upstream.video_body = b"\x00\x00\x00\x18ftypmp42" + os.urandom(12 * MIB)
    video = (await create(gateway, key)).json()
    await drive(gateway)
    stored = gateway.stored()
    assert stored[gateway.rt.output_names.key(video["id"], 0, "video/mp4")] == (
        gateway.upstream.video_body
    )
    content = await gateway.client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.content == gateway.upstream.video_body
    assert content.headers["content-length"] == str(len(gateway.upstream.video_body))
    assert not [k for k in stored if "/.put-" in k]


async def test_output_urls_redirect_to_presigned_urls(make_gateway, storage_backend):
    if storage_backend == "local":
        pytest.skip("direct URLs are an S3 feature")
    gateway = await make_gateway(s3_presign_seconds=120)
    _, key = await gateway.account()
    body = (
        await gateway.client.post(
            "/v1/images/generations",
            json={"prompt": "p", "response_format": "url"},
            headers=auth(key),
        )
    ).json()
    answer = await gateway.client.get(body["data"][0]["url"])
    assert answer.status_code == 307 and "X-Amz-Signature" in answer.headers["location"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(answer.headers["location"])).content == PNG
    # The API's own download streams through the gateway (SDKs do not follow redirects).
    video = (await create(gateway, key)).json()
    await drive(gateway)
    content = await gateway.client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.status_code == 200 and content.content.startswith(b"\x00\x00\x00\x18ftyp")


def test_keys_name_only_the_task_and_a_name_only_the_secret_gives():
    from reapi_server.mirror.keys import OutputNames, is_task_id, task_of_prefix

    task = f"req_{secrets.token_hex(12)}"
    names = OutputNames(b"the fleet's secret")
    for index, content_type, extension in [
        (0, "image/png", "png"),
        (1, "video/mp4; codecs=avc1", "mp4"),
        (2, "application/x-unknown", "bin"),
    ]:
        key = names.key(task, index, content_type)
        prefix, _, name = key.rpartition("/")
        assert prefix == f"outputs/{task}" and task_of_prefix(prefix + "/") == task
        assert re.fullmatch(rf"{index}-[0-9a-f]{{32}}\.{extension}", name), name
        assert key == names.key(task, index, content_type)  # a retry writes the same key
    assert names.key(task, 0, "image/png") != names.key(task, 1, "image/png")
    assert names.key(task, 0, "image/png") != OutputNames(b"another secret").key(
        task, 0, "image/png"
    )
    assert is_task_id(task) and not is_task_id("../etc") and not is_task_id("req_XYZ")
    assert task_of_prefix(f"outputs/{task}/") == task
    assert task_of_prefix(names.key(task, 0, "image/png")) is None


def test_output_names_are_the_keyed_digest_they_always_were():
    """`OutputNames` copies one keyed HMAC state per name (`derived_keys.KeyedDigest`) instead
    of keying HMAC anew: the same names, so outputs stored before keep their keys, and no name
    carries state from the one before."""
    from reapi_server.derived_keys import KeyedDigest, derive_key, keyed_digest
    from reapi_server.mirror.keys import OutputNames

    names = OutputNames(b"the fleet's secret")
    key = derive_key(b"the fleet's secret", "output-names")
    for task, index in [("req_" + "0" * 24, 0), (f"video_{secrets.token_hex(12)}", 3)] * 2:
        digest = keyed_digest(key, f"{task}/{index}")
        assert names.key(task, index, "image/png") == f"outputs/{task}/{index}-{digest[:32]}.png"
    keyed = KeyedDigest(key)
    assert [keyed.hex(v) for v in ("a", "", "a", "é" * 100)] == [
        keyed_digest(key, v) for v in ("a", "", "a", "é" * 100)
    ]


async def test_a_public_bucket_serves_no_output_to_whoever_knows_its_request_id(
    make_gateway, storage_backend, moto_server
):
    """Request and video ids are no secrets (the `x-request-id` header, every log line and
    trace span, every answer about a video): the bucket's public domain, which serves any key it
    is asked for, must not give their outputs to whoever saw one. The file's URL (its 148-bit
    id) redirects to the real key."""
    if storage_backend == "local":
        pytest.skip("a public bucket domain is an S3 feature")
    bucket = moto_server.new_bucket()
    public = f"https://outputs.example/{bucket}"
    gateway = await make_gateway(**moto_server.settings(bucket), s3_public_base_url=public)
    _, key = await gateway.account()
    answer = await gateway.client.post(
        "/v1/images/generations",
        json={"prompt": "p", "response_format": "url"},
        headers=auth(key),
    )
    request_id = answer.headers["x-request-id"]
    video = (await create(gateway, key)).json()
    await drive(gateway)
    stored = moto_server.objects(bucket)  # what the public domain would serve
    assert len(stored) == 3
    for guessed in (
        f"outputs/{request_id}/0.png",
        f"outputs/{video['id']}/0.mp4",
        f"outputs/{video['id']}/1.png",
    ):
        assert guessed not in stored
    redirect = await gateway.client.get(answer.json()["data"][0]["url"])
    assert redirect.status_code == 307
    location = redirect.headers["location"]
    assert location.startswith(f"{public}/outputs/{request_id}/0-")
    assert stored[location.removeprefix(f"{public}/")] == PNG


async def test_operator_deletes_a_task_from_the_command_line(gateway, monkeypatch):
    from typer.testing import CliRunner

    from reapi_server.cli import app

    _, key = await gateway.account()
    ids = []
    for _ in range(2):
        answer = await gateway.client.post(
            "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
        )
        ids.append(answer.headers["x-request-id"])
    if gateway.s3 is not None:
        server, bucket = gateway.s3
        for name, value in server.settings(bucket).items():
            monkeypatch.setenv(f"REAPI_{name.upper()}", str(value))
    secret = gateway.rt.settings.secret_key
    if secret is not None:  # the CLI speaks to the same database: the same fleet secret
        monkeypatch.setenv("REAPI_SECRET_KEY", secret.get_secret_value())
    data = ["--data-dir", str(gateway.data_dir)]
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, list(args))

    done = await asyncio.to_thread(cli, "outputs", "delete", "--task", ids[0], *data)
    assert done.exit_code == 0 and f"deleted 1 outputs of {ids[0]}" in done.output, done.output
    assert unnamed(gateway.stored()) == [f"outputs/{ids[1]}/0.png"]
    refused = await asyncio.to_thread(cli, "outputs", "delete", "--task", "../../etc", *data)
    assert refused.exit_code == 1 and "not a task id" in refused.output
    purged = await asyncio.to_thread(cli, "outputs", "purge", *data)
    assert purged.exit_code == 0 and "deleted 0 outputs" in purged.output


# -- what a process that died mid-write leaves behind ------------------------------------------


def _abandon_a_write(store: ObjectStore, key: str, age: float) -> None:
    """What a process killed in the middle of `put` leaves: a temp file beside the target, or
    a multipart upload with a part and no end. (Killing real processes: test_killed.py.)"""
    if isinstance(store, LocalDiskStore):
        directory = store.path_of(key).parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".put-{secrets.token_hex(8)}"
        tmp.write_bytes(b"video/mp4\n" + os.urandom(1024))
        os.utime(tmp, (time.time() - age, time.time() - age))
        return
    started = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    store.client.upload_part(
        Bucket=store.bucket,
        Key=key,
        UploadId=started["UploadId"],
        PartNumber=1,
        Body=os.urandom(5 * MIB),
    )


async def test_abandoned_partial_writes_are_swept(store):
    await store.put("outputs/video_9999999999999999/1.png", PNG, "image/png")
    _abandon_a_write(store, "outputs/video_9999999999999999/0.mp4", age=7200)
    _abandon_a_write(store, "outputs/video_aaaaaaaaaaaaaaaa/0.mp4", age=7200)
    assert len(leftovers(store)) == 2
    assert await store.sweep_abandoned(time.time() - 3600) == 2
    assert leftovers(store) == []
    assert await store.open("outputs/video_9999999999999999/1.png") is not None  # kept
    if isinstance(store, LocalDiskStore):  # and the folder a dead write of the earlier layout
        legacy = store.legacy_path_of("outputs/video_cccccccccccccccc/0.mp4").parent  # made
        legacy.mkdir(parents=True)
        (legacy / ".put-0123456789abcdef").write_bytes(b"video/mp4\n")
        os.utime(legacy / ".put-0123456789abcdef", (time.time() - 7200, time.time() - 7200))
        assert await store.sweep_abandoned(time.time() - 3600) == 1
        assert not legacy.exists()
        assert (store.root / "outputs" / "aa").is_dir()  # a shard stays


async def test_a_write_in_progress_is_not_swept(tmp_path):
    """(Local disk: a temp file's age is its last write. S3 lists when an upload began, which
    moto does not keep: there only the retention job's grace period protects it.)"""
    store = LocalDiskStore(tmp_path / "outputs")
    _abandon_a_write(store, "outputs/video_bbbbbbbbbbbbbbbb/0.mp4", age=60)
    assert await store.sweep_abandoned(time.time() - 3600) == 0
    assert len(leftovers(store)) == 1


async def test_a_small_object_is_written_whole_private_and_can_be_written_again(tmp_path):
    """Local disk: a task's small output is written straight under its name the first time;
    written again under the same key (that way, and a link, never replace), it goes to a file
    without a name then linked, or to a temp file then renamed, and the second write wins.
    Either way it appears whole, 0600, with no temp file left."""
    store = LocalDiskStore(tmp_path / "outputs")
    store.prepare()
    key = "outputs/req_3333333333333333/0.png"
    await store.put(key, PNG, "image/png")
    path = store.path_of(key)
    assert path.read_bytes() == b"image/png\n" + PNG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await store.put(key, b"second", "image/png")
    assert (await read_object(store, key)).data == b"second"
    assert leftovers(store) == [] and sorted(os.listdir(path.parent)) == [path.name]


async def test_a_small_object_in_a_missing_folder_is_still_written(tmp_path):
    store = LocalDiskStore(tmp_path / "outputs")  # not prepared: no shard folders
    key = "outputs/req_4444444444444444/0.png"
    await store.put(key, PNG, "image/png")
    assert (await read_object(store, key)).data == PNG
    assert leftovers(store) == []


_FAILING_WRITE = """
import asyncio, os, resource, signal, sys
from reapi_server.mirror import LocalDiskStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
store = LocalDiskStore(__import__("pathlib").Path(sys.argv[1]))
store.prepare()
try:
    asyncio.run(store.put(sys.argv[2], os.urandom(4096), "image/png"))
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.mark.parametrize("key", ["outputs/req_5555555555555555/0.png", "uploads/file_55/0.png"])
def test_a_small_write_the_disk_refuses_leaves_nothing(tmp_path, key):
    """Local disk, a real failure (the file size limit, in a child process): neither a task's
    output, written straight under its name, nor any other key leaves a file or a temp file."""
    import subprocess
    import sys

    root = tmp_path / "outputs"
    run = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(root), key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == "OSError", run.stderr[-2000:]
    store = LocalDiskStore(root)
    assert [p for p in root.rglob("*") if p.is_file()] == []
    assert not store.path_of(key).exists()
