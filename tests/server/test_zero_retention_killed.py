"""CHECKS.md §1-4 for processes that die: a gateway process killed (SIGKILL: no handler, no
`finally` runs) in the middle of a large upload, in the middle of writing a video, and after
storing images but before writing their rows. What the crash leaves — a temp file, an unfinished
multipart upload, images without rows — must be found and removed by the processes that remain
(the sweeper and the retention job, run by a "restarted" gateway on the same data), and no
marker from the requests may be left in the data dir, the child's temp dir, its logs or storage.
On local disk and on a real S3 server (moto)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from tests.conftest import two_host_catalog
from tests.server.conftest import settings_for
from tests.server.fakes import PNG
from tests.server.helpers import auth, unnamed
from tests.server.killable import KillableGateway, killable_gateway
from tests.server.live import _make_account
from tests.server.s3 import MotoServer

from reapi_server.credits import repository as credit_rows
from reapi_server.jobs.sweeper import SweepReport, sweep_once
from reapi_server.mirror import LocalDiskStore
from reapi_server.models import PendingDeletion
from reapi_server.retention import RetentionReport, purge_once
from reapi_server.runtime import build_runtime

PROMPT = "MARKER-killed-prompt-3f9a"
IMAGE = b"MARKER-killed-image-c27e"
USER = "MARKER-killed-user-81d0"
MARKERS = [b"MARKER-killed"]
MIB = 1024 * 1024
DB_FILES = {"reapi.db", "reapi.db-wal", "reapi.db-shm", "reapi.db-writer"}

T = TypeVar("T")


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


class Setup:
    """A data dir with a migrated database and an account; the storage the child uses."""

    def __init__(self, tmp_path: Path, template: Path, storage: dict[str, Any], s3: Any) -> None:
        self.work = tmp_path
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir()
        shutil.copy(template, self.data_dir / "reapi.db")
        self.storage = storage
        self.s3: tuple[MotoServer, str] | None = s3
        url = settings_for(self.data_dir).resolved_database_url
        self.account_id, self.key = asyncio.run(_make_account(url, 1_000_000))

    def child(self, *, upstream: dict[str, Any], **settings: Any) -> Any:
        return killable_gateway(
            self.work, self.data_dir, settings={**self.storage, **settings}, upstream=upstream
        )

    def objects(self) -> dict[str, bytes]:
        """Every object in storage: files under the outputs dir (temp files included), or
        every S3 object."""
        if self.s3 is not None:
            server, bucket = self.s3
            return server.objects(bucket)
        store = LocalDiskStore(self.data_dir / "outputs")
        return {
            store.key_of(p) or str(p.relative_to(store.root)): p.read_bytes()
            for p in store.root.rglob("*")
            if p.is_file()
        }

    def uploads(self) -> list[dict[str, Any]]:
        """Unfinished multipart uploads (S3), each with its parts."""
        if self.s3 is None:
            return []
        server, bucket = self.s3
        client = server.client()
        found = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for upload in found:
            upload["Parts"] = client.list_parts(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            ).get("Parts", [])
        return found

    def recover(self, offset: float) -> tuple[SweepReport, RetentionReport, tuple[int, int]]:
        """A gateway process on the same data, `offset` seconds later: its sweeper and its
        retention job run once. Returns their reports and the account's (balance, reserved)."""

        async def run() -> tuple[SweepReport, RetentionReport, tuple[int, int]]:
            start = time.time()
            settings = settings_for(self.data_dir, **self.storage)
            rt = build_runtime(settings, catalog=two_host_catalog(), clock=lambda: start + offset)
            try:
                swept = await sweep_once(rt)
                purged = await purge_once(rt)
                async with rt.db.read() as session:
                    balance = await credit_rows.balance_of(session, self.account_id)
                    queued = (await session.execute(PendingDeletion.__table__.select())).all()
                assert queued == []  # every queued deletion went through
            finally:
                await rt.aclose()
            return swept, purged, balance

        return asyncio.run(run())

    def assert_no_marker(self, child: KillableGateway) -> None:
        places = [*self.data_dir.rglob("*"), *child.temp.rglob("*"), child.log]
        files = [p for p in places if p.is_file()]
        assert child.log in files and child.log.stat().st_size > 0  # the child did log
        for path in files:
            content = path.read_bytes()
            for secret in [*MARKERS, self.key.encode()]:
                assert secret not in content, (secret, path)
        for key, content in self.objects().items():
            assert not any(m in content for m in MARKERS), key


def _wait_for(what: Callable[[], T], seconds: float = 30) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


@pytest.fixture
def setup(tmp_path, migrated_template, gateway_storage) -> Setup:
    storage, s3 = gateway_storage()
    return Setup(tmp_path, migrated_template, storage, s3)


def test_killed_in_the_middle_of_a_large_upload(tmp_path, migrated_template):
    """A 16 MiB multipart video request (prompt and reference carry markers), cut off halfway
    by the process's death: the body was held in memory only, so nothing of it is anywhere."""
    setup = Setup(tmp_path, migrated_template, {}, None)
    boundary = "killedboundary0123"
    reference = PNG + IMAGE * (16 * MIB // len(IMAGE))
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n{PROMPT}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nsim-video\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="input_reference"; '
            'filename="r.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + reference
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with setup.child(upstream={}) as child:
        port = int(child.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            head = (
                f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {setup.key}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body[: len(body) // 2])
            time.sleep(0.5)  # the child reads and parses what it was sent
            child.kill()
    leftovers = {p.name for p in setup.data_dir.rglob("*") if p.is_file()}
    assert leftovers <= DB_FILES, leftovers  # no outputs, no spooled upload
    shards = setup.data_dir / "outputs" / "outputs"  # the store's empty folders, made at start
    folders = {p for p in setup.data_dir.rglob("*") if p.is_dir()}
    assert folders <= {shards.parent, shards, *shards.iterdir()}, folders
    assert list(child.temp.rglob("*")) == []
    setup.assert_no_marker(child)


def test_killed_while_writing_a_video(setup: Setup):
    """The download trickles, then stalls 7 MiB in: a temp file (local) or a multipart upload
    with one part (S3) is being written when the process dies. The retention job removes it
    once it is `abandoned_write_seconds` old."""
    upstream = {
        "polls_before_done": 0,
        "video_bytes": 12 * MIB,
        "video_stall_after": 7 * MIB,
        "hang_seconds": 120,
    }
    with setup.child(upstream=upstream, run_background_tasks=True, poll_interval=0.05) as child:
        created = httpx.post(
            f"{child.base_url}/v1/videos",
            data={"model": "sim-video", "prompt": PROMPT, "size": "1280x720"},
            files={"input_reference": ("r.png", PNG + IMAGE, "image/png")},
            headers=auth(setup.key),
            timeout=30,
        )
        assert created.status_code == 200, created.text

        def writing() -> bool:
            if setup.s3 is not None:
                return any(upload["Parts"] for upload in setup.uploads())
            temps = (setup.data_dir / "outputs").rglob(".put-*")
            return any(p.stat().st_size > 2 * MIB for p in temps)

        _wait_for(writing)
        child.kill()
    left = [k for k in setup.objects() if "/.put-" in k] or setup.uploads()
    assert len(left) == 1  # what the crash left: the test would prove nothing otherwise
    settings = settings_for(setup.data_dir)
    _, purged, _ = setup.recover(offset=settings.abandoned_write_seconds + 1)
    assert purged.abandoned_writes == 1
    assert setup.objects() == {} and setup.uploads() == []
    if setup.s3 is None:  # nor the task's directory
        assert list((setup.data_dir / "outputs").rglob("video_*")) == []
    setup.assert_no_marker(child)


def test_killed_after_storing_images_before_their_rows(setup: Setup):
    """The images are stored, then the transaction that records them waits for the write lock
    (held by the test, as another process would) — and the process dies there. The sweeper
    releases the hold of the dead request and queues its objects; the queue deletes them."""
    database = setup.data_dir / "reapi.db"
    upstream = {"faults": {"primary.test": "hang"}, "hang_seconds": 1.0}  # a slow upstream
    answers: list[Any] = []
    with setup.child(upstream=upstream) as child:

        def generate() -> None:
            try:
                answers.append(
                    httpx.post(
                        f"{child.base_url}/v1/images/generations",
                        json={"prompt": PROMPT, "user": USER, "n": 2},
                        headers=auth(setup.key),
                        timeout=60,
                    )
                )
            except httpx.HTTPError as error:  # the process died under it
                answers.append(error)

        thread = threading.Thread(target=generate)
        thread.start()

        def pending() -> str | None:
            with sqlite3.connect(database) as connection:
                row = connection.execute(
                    "SELECT id FROM usage_records WHERE status = 'pending'"
                ).fetchone()
            return row[0] if row else None

        request_id = _wait_for(pending)  # the hold is taken; the upstream call is under way
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            _wait_for(lambda: len(setup.objects()) == 2)  # stored; the rows wait for the lock
            child.kill()
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        thread.join(timeout=30)
    assert isinstance(answers[0], httpx.HTTPError)  # no answer ever came
    assert unnamed(setup.objects()) == [
        f"outputs/{request_id}/0.png",
        f"outputs/{request_id}/1.png",
    ]
    settings = settings_for(setup.data_dir)
    swept, purged, balance = setup.recover(offset=settings.image_hold_seconds + 1)
    assert swept.holds_released == 1 and purged.objects == 1  # the request's prefix
    assert setup.objects() == {}
    assert balance == (1_000_000, 0)  # nothing charged, nothing held
    setup.assert_no_marker(child)
