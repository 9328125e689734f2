"""Where the local store puts outputs (issue 15: one folder per request, all in one folder, and a
folder made on every request): 256 folders by the task id's first hex digits, made at start-up,
one file per output; outputs an earlier version stored one folder per task are still served and
deleted."""

import os
import shutil

from tests.server.fakes import PNG
from tests.server.helpers import auth

from reapi_server.mirror import LocalDiskStore


def _folders(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


async def test_outputs_fan_out_without_a_folder_per_request(tmp_path):
    store = LocalDiskStore(tmp_path / "outputs")
    store.prepare()
    folders = _folders(store.root)
    assert len(folders) == 257  # outputs/ and its 256 shards
    keys = [f"outputs/req_{'0' * 22}{n:02x}/{i}.png" for n in (0x00, 0x3F, 0xFF) for i in (0, 1)]
    keys.append("outputs/video_ab0000000000000000000003f/0.mp4")
    for key in keys:
        await store.put(key, PNG, "image/png")
    assert _folders(store.root) == folders  # not one made by a request
    assert store.path_of(keys[2]) == (
        store.root / "outputs" / "3f" / "req_00000000000000000000003f-0.png"
    )
    files = sorted(p for p in store.root.rglob("*") if p.is_file())
    assert {p.parent.name for p in files} == {"00", "3f", "ff"}
    assert sorted(store.key_of(p) for p in files) == sorted(keys)
    for key in keys:
        assert (await store.open(key)).content_type == "image/png"

    # A task's prefix takes its outputs, and only its own, from the shared folder.
    await store.delete_prefix("outputs/req_00000000000000000000003f/")
    assert await store.open(keys[2]) is None and await store.open(keys[3]) is None
    assert await store.open("outputs/video_ab0000000000000000000003f/0.mp4") is not None
    await store.delete(keys[0])
    assert await store.open(keys[0]) is None and await store.open(keys[1]) is not None
    assert _folders(store.root) == folders  # deletions leave the shards in place


async def test_outputs_stored_one_folder_per_task_are_still_found(tmp_path):
    """What an earlier version wrote: the key itself as the path."""
    store = LocalDiskStore(tmp_path / "outputs")
    keys = ["outputs/req_aaaaaaaaaaaaaaaa/0.png", "outputs/req_aaaaaaaaaaaaaaaa/1.png"]
    for key in keys:
        path = store.legacy_path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"image/png\n" + PNG)
    opened = await store.open(keys[0])
    assert opened.content_type == "image/png" and await opened.read() == PNG
    assert store.key_of(store.legacy_path_of(keys[1])) == keys[1]
    await store.delete(keys[0])
    assert await store.open(keys[0]) is None and await store.open(keys[1]) is not None
    await store.delete(keys[1])  # the last of its task: the task's folder goes with it
    assert not (store.root / "outputs" / "req_aaaaaaaaaaaaaaaa").exists()

    for key in keys:
        path = store.legacy_path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"image/png\n" + PNG)
    await store.delete_prefix("outputs/req_aaaaaaaaaaaaaaaa/")
    assert not (store.root / "outputs" / "req_aaaaaaaaaaaaaaaa").exists()


async def test_a_gateway_writes_the_fan_out_and_serves_both_layouts(gateway):
    _, key = await gateway.account()
    root = gateway.data_dir / "outputs"
    folders = _folders(root)
    assert len(folders) == 257  # made at start-up
    created = await gateway.client.post(
        "/v1/images/generations",
        json={"prompt": "p", "n": 2, "response_format": "url"},
        headers=auth(key),
    )
    request_id = created.headers["x-request-id"]
    assert _folders(root) == folders
    shard = root / "outputs" / request_id[-2:]  # its random end (it starts with the time)
    keys = [gateway.rt.output_names.key(request_id, index, "image/png") for index in (0, 1)]
    names = [key.rpartition("/")[2] for key in keys]  # `<n>-<name>.png`
    assert sorted(p.name for p in shard.iterdir()) == [f"{request_id}-{name}" for name in names]
    urls = [d["url"] for d in created.json()["data"]]

    # Move them where the earlier version kept them: still served, still deleted with the task.
    store = gateway.rt.store
    for stored in keys:
        legacy = store.legacy_path_of(stored)
        legacy.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(store.path_of(stored), legacy)
    assert not [p for p in shard.iterdir() if p.name.startswith(request_id)]
    for url in urls:
        served = await gateway.client.get(url)
        assert served.status_code == 200 and served.content == PNG
    deleted = await gateway.client.delete(f"/v1/outputs/{request_id}", headers=auth(key))
    assert deleted.is_success
    assert not (root / "outputs" / request_id).exists()
    assert [p for p in root.rglob("*") if p.is_file()] == []
    for url in urls:
        assert (await gateway.client.get(url)).status_code == 404
    assert os.listdir(shard) == []
