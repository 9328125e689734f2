"""A real full disk (a small tmpfs, filled up) under the outputs or under the database.

Outputs: an image answers 502 `storage_unavailable`, uncharged, and leaves no file or task
folder behind; a video that cannot be stored is refunded in the end with its own code
(`storage_unavailable`, not the upstream's `output_unavailable`)."""

from pathlib import Path

from sqlalchemy import select
from tests.server.disks import fill, free, small_filesystem
from tests.server.helpers import auth, ledger_matches
from tests.server.test_videos import create

from reapi_server.jobs.poller import MAX_OUTPUT_FAILURES, JobPoller
from reapi_server.models import VideoJob


async def _poll_now(gateway, video_id: str) -> None:
    async with gateway.rt.db.write() as session:
        (await session.get(VideoJob, video_id)).next_poll_at = 0
    await JobPoller(gateway.rt).run_once()


def _left(disk: Path) -> list[Path]:
    """Files, and folders other than the store's 256 shards (`outputs/<xx>`)."""
    return [
        p
        for p in (disk / "outputs").rglob("*")
        if p.is_file() or p.parent != disk / "outputs" or len(p.name) != 2
    ]


async def test_full_outputs_disk(make_gateway, tmp_path):
    with small_filesystem(tmp_path / "outputs-disk") as disk:
        gateway = await make_gateway()
        gateway.rt.store.root = disk  # the local store's directory, on the small disk
        account, key = await gateway.account(credits=1_000)
        video = (await create(gateway, key)).json()
        fill(disk)

        image = await gateway.client.post(
            "/v1/images/generations", json={"prompt": "p", "n": 2}, headers=auth(key)
        )
        assert image.status_code == 502
        assert image.json()["error"]["code"] == "storage_unavailable"
        assert _left(disk) == []  # no file, no folder of the task

        for _ in range(MAX_OUTPUT_FAILURES + 1):
            await _poll_now(gateway, video["id"])
        failed = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "storage_unavailable"
        assert "could not store" in failed["error"]["message"]
        assert await ledger_matches(gateway.rt, account) == (1_000, 0)
        async with gateway.rt.db.read() as session:
            job = (await session.execute(select(VideoJob))).scalar_one()
        assert job.error_code == "storage_unavailable"
        free(disk)
        assert _left(disk) == []  # nothing of either task left
