"""An in-process client keeps a video's body (prompt, reference bytes) only while the job may
still be resubmitted: once it is final, or resubmitted, nothing reachable from the client holds
it. What stays is id forwarding (old id → new id), and that is bounded too."""

import dataclasses
import secrets

import pytest
from tests.object_graph import markers_reachable
from tests.sdk.test_failover_simulated import make

from reapi import AsyncReAPI, File
from reapi._local import PreparedVideo
from reapi._params import VideoParams
from reapi._payload import Payload
from reapi.catalog import Route
from reapi.providers._mp4 import VideoInfo
from reapi.providers._source_video import SourceVideo
from reapi.resources._jobs_memory import Bodies, JobMemory, RememberedJob
from reapi.testing import Fault, OpenAISimulator, SimServer, png_bytes


@pytest.fixture
def sims():
    primary = SimServer(OpenAISimulator(polls_to_complete=1)).start()
    backup = SimServer(OpenAISimulator(polls_to_complete=1)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def _markers() -> tuple[str, bytes]:
    token = secrets.token_hex(8)
    return f"MARKER-prompt-{token}", f"MARKER-image-{token}".encode()


OUTCOMES = {
    "completed": (Fault.NONE, Fault.NONE, "completed"),
    "resubmitted": (Fault.TASK_FAILS, Fault.NONE, "completed"),
    "failed": (Fault.TASK_FAILS, Fault.TASK_FAILS, "failed"),
}


def _faults(sims, outcome: str) -> str:
    first, second, final = OUTCOMES[outcome]
    for server, fault in zip(sims, (first, second), strict=True):
        if fault is not Fault.NONE:
            server.app.faults.set(fault)
    return final


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_a_finished_job_leaves_no_body_in_the_sync_client(catalog, sims, outcome):
    final = _faults(sims, outcome)
    prompt, image = _markers()
    client = make(catalog, sims)
    reference = File(png_bytes() + image, "ref.png", "image/png")
    video = client.videos.create(
        model="sim-video", prompt=prompt, seconds=4, input_reference=reference
    )
    del reference
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == final
    assert client.videos.retrieve(video.id).id == done.id  # id forwarding still works
    assert markers_reachable([client], [prompt.encode(), image]) == []


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
async def test_a_finished_job_leaves_no_body_in_the_async_client(catalog, sims, outcome):
    final = _faults(sims, outcome)
    prompt, image = _markers()
    async with make(catalog, sims, AsyncReAPI) as client:
        reference = File(png_bytes() + image, "ref.png", "image/png")
        video = await client.videos.create(
            model="sim-video", prompt=prompt, seconds=4, input_reference=reference
        )
        del reference
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert done.status == final
        assert (await client.videos.retrieve(video.id)).id == done.id
        assert markers_reachable([client], [prompt.encode(), image]) == []


def test_a_running_job_keeps_its_body_for_the_resubmission(catalog, sims):
    """The control: the scan does find a body the client still needs."""
    prompt, _ = _markers()
    client = make(catalog, sims)
    client.videos.create(model="sim-video", prompt=prompt, seconds=4)
    assert markers_reachable([client], [prompt.encode()]) != []


# -- the bounds ----------------------------------------------------------------------------------


def _job(body_bytes: int, routes: int = 2) -> RememberedJob:
    """A remembered job whose payload holds `body_bytes` bytes, with `routes` routes to try."""
    payload = Payload(prompt="p", input_reference=File(b"\0" * body_bytes))
    prepared = PreparedVideo(
        spec=None,  # type: ignore[arg-type]
        params=VideoParams(model="m"),
        shape=None,  # type: ignore[arg-type]
        payload=payload,
        routes=tuple(Route(provider=f"p{i}", upstream_model="m") for i in range(routes)),
        idempotency_key="k",
    )
    job = RememberedJob(prepared)
    job.tried.add(prepared.routes[0].key)
    return job


def test_bodies_are_bounded_in_bytes_oldest_first():
    memory = JobMemory(max_bytes=3_000, max_jobs=100)
    for name in ("a", "b", "c"):
        memory.remember(name, _job(1_000))
    assert [n for n in "abc" if memory.get(n) is not None] == ["b", "c"]
    memory.remember("huge", _job(10_000))  # more than the whole bound: not kept at all
    assert memory.get("huge") is None and memory.get("c") is not None


def test_bodies_are_bounded_in_count():
    memory = JobMemory(max_bytes=10**9, max_jobs=2)
    for name in ("a", "b", "c"):
        memory.remember(name, _job(10))
    assert [n for n in "abc" if memory.get(n) is not None] == ["b", "c"]


def test_no_body_is_kept_without_another_route():
    memory = JobMemory()
    memory.remember("only", _job(10, routes=1))
    assert memory.get("only") is None
    assert memory.created == ["only"]  # listing still knows it


def test_forwarding_is_bounded_in_count():
    memory = JobMemory(max_ids=3)
    for index in range(5):
        memory.remember(f"v{index}", _job(10))
    for index in range(4):
        memory.forward(f"v{index}", f"w{index}")
    assert len(memory.created) <= 3
    assert memory.resolve("v3") == "w3" and memory.resolve("v0") == "v0"


def test_a_source_fetched_from_a_url_counts_against_the_bound():
    """An enhancement's source fetched from the caller's URL is held beside the body (which
    holds only the URL): it counts; an upload's bytes are counted once, as the body's."""
    fetched = dataclasses.replace(
        _job(0).prepared,
        payload=Payload(input_reference="https://media.example.com/clip.mp4"),
        source=SourceVideo(b"\0" * 600, VideoInfo(16, 16, 1.0, 12, 12.0)),
    )
    job = RememberedJob(fetched)
    job.tried.add(fetched.routes[0].key)
    memory = Bodies(max_bytes=500)
    assert memory.remember("video_a", job) is False and memory.bytes == 0
    uploaded = _job(400)
    source = SourceVideo(b"\0" * 400, VideoInfo(16, 16, 1.0, 12, 12.0))
    uploaded.prepared = dataclasses.replace(uploaded.prepared, source=source)
    memory.remember("video_b", uploaded)
    assert memory.bytes == 401  # the upload and the prompt, the source not again
