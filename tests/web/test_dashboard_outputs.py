"""The outputs page: stored images and videos with their deletion dates, pages of them, delete
one or all through the mirror's deletion service (the URL answers 404 at once, the objects
go), on local disk and S3; never another person's outputs; CSRF on each form."""

from __future__ import annotations

import asyncio
import re

import pytest
from tests.server.helpers import auth
from tests.server.s3 import moto_server  # noqa: F401  (fixture)
from tests.web.dashboard import key_for, person

from reapi_server.jobs.poller import JobPoller
from reapi_server.models import StoredOutput


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def make_image(gateway, key: str, n: int = 1) -> list[str]:
    answer = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a fox", "n": n, "response_format": "url"},
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text
    return [item["url"].rsplit("/", 2)[-2] for item in answer.json()["data"]]


async def make_video(gateway, key: str) -> str:
    created = await gateway.client.post(
        "/v1/videos",
        json={"model": "sim-video", "prompt": "a wave", "size": "1280x720"},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    poller = JobPoller(gateway.rt)
    for _ in range(4):
        await poller.run_once()
        await asyncio.sleep(0.02)
    return created.json()["id"]


async def status_of(gateway, file_id: str) -> int:
    return (await gateway.client.get(f"/v1/files/{file_id}/content")).status_code


def listed(html: str) -> list[str]:
    return re.findall(r'id="url-(file_[0-9a-f]+)"', html)


async def test_signed_out_it_asks_to_sign_in(web, browsers):
    answer = await browsers(web).get("/dashboard/outputs")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/dashboard/outputs"


async def test_images_and_videos_listed_with_their_deletion_dates(web, browsers):
    someone = await person(web, browsers, credits=10_000)
    _, key = await key_for(web, someone.account_id)
    images = await make_image(web, key, n=2)
    video_id = await make_video(web, key)
    async with web.rt.db.read() as session:
        video = await session.get(StoredOutput, (await _video_file(web, video_id)))
    html = (await someone.browser.get("/dashboard/outputs")).text
    assert set(listed(html)) == {*images, video.id}  # the thumbnail shows with its video
    assert f"http://gateway.test/v1/files/{images[0]}/content" in html
    # Made on 15 Jan 2027 (the test clock), kept 30 days.
    assert (
        html.count('Deleted on <time datetime="2027-02-14">14 Feb 2027</time> (30 days left)') == 3
    )
    assert "sim-video · 4 s · 1280x720" in html
    assert "3 stored" in html
    # A size keeps its number and unit on one line (a no-break space).
    assert re.search(r"\d(\.\d)?\u00a0(bytes|KB|MB)<", html) and not re.search(
        r"\d (bytes|KB)", html
    )
    for file_id in [*images, video.id]:
        assert await status_of(web, file_id) == 200


async def _video_file(gateway, video_id: str) -> str:
    from reapi_server.models import VideoJob

    async with gateway.rt.db.read() as session:
        job = await session.get(VideoJob, video_id)
    assert job is not None and job.video_file_id is not None
    return job.video_file_id


async def test_deleting_one_image_asks_first_then_its_url_404s_at_once(web, browsers):
    someone = await person(web, browsers, credits=10_000)
    _, key = await key_for(web, someone.account_id)
    first, second = await make_image(web, key, n=2)
    objects = len(web.stored())
    # The list's Delete is a link to a page that asks (as Delete all and Revoke do), not a form
    # that deletes at once.
    page = (await someone.browser.get("/dashboard/outputs")).text
    assert f'href="/dashboard/outputs/{first}/delete"' in page
    assert f'action="/dashboard/outputs/{first}/delete"' not in page
    confirm = await someone.browser.get(f"/dashboard/outputs/{first}/delete")
    assert confirm.status_code == 200 and "Delete this output?" in confirm.text
    assert "It cannot be undone." in confirm.text and ">Delete this image</button>" in confirm.text
    assert 'href="/dashboard/outputs">Cancel</a>' in confirm.text
    assert await status_of(web, first) == 200  # asking deletes nothing
    answer = await someone.browser.submit(
        f"/dashboard/outputs/{first}/delete", f"/dashboard/outputs/{first}/delete", {}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/outputs?done=output_deleted"
    assert await status_of(web, first) == 404
    assert await status_of(web, second) == 200
    assert len(web.stored()) == objects - 1
    html = (await someone.browser.get(answer.headers["location"])).text
    assert "The output is deleted." in html and listed(html) == [second]


async def test_deleting_a_video_deletes_its_thumbnail_and_its_content(web, browsers):
    someone = await person(web, browsers, credits=10_000)
    _, key = await key_for(web, someone.account_id)
    video_id = await make_video(web, key)
    file_id = await _video_file(web, video_id)
    confirm = (await someone.browser.get(f"/dashboard/outputs/{file_id}/delete")).text
    assert "its content can no longer be downloaded" in confirm and "Delete this video" in confirm
    answer = await someone.browser.submit(
        f"/dashboard/outputs/{file_id}/delete", f"/dashboard/outputs/{file_id}/delete", {}
    )
    assert answer.status_code == 303
    assert await status_of(web, file_id) == 404
    assert web.stored() == {}
    content = await web.client.get(f"/v1/videos/{video_id}/content", headers=auth(key))
    assert content.status_code == 410 and content.json()["error"]["code"] == "outputs_deleted"


async def test_delete_all_asks_first_then_every_url_404s(web, browsers):
    someone = await person(web, browsers, credits=10_000)
    other = await person(web, browsers, credits=10_000)
    _, key = await key_for(web, someone.account_id)
    _, others_key = await key_for(web, other.account_id)
    mine = await make_image(web, key, n=3)
    video_file = await _video_file(web, await make_video(web, key))
    theirs = await make_image(web, others_key)
    confirm = await someone.browser.get("/dashboard/outputs/delete-all")
    assert "This deletes all 4 stored images and videos now." in confirm.text
    answer = await someone.browser.submit(
        "/dashboard/outputs/delete-all", "/dashboard/outputs/delete-all", {}
    )
    assert answer.status_code == 303
    for file_id in [*mine, video_file]:
        assert await status_of(web, file_id) == 404
    assert await status_of(web, theirs[0]) == 200
    assert len(web.stored()) == 1  # the other person's image only
    html = (await someone.browser.get("/dashboard/outputs")).text
    assert listed(html) == [] and "No stored outputs." in html


async def test_another_persons_outputs_are_neither_listed_nor_deletable(web, browsers):
    alice = await person(web, browsers, credits=10_000)
    bob = await person(web, browsers, credits=10_000)
    _, key = await key_for(web, alice.account_id)
    (image,) = await make_image(web, key)
    assert listed((await bob.browser.get("/dashboard/outputs")).text) == []
    assert (await bob.browser.get(f"/dashboard/outputs/{image}/delete")).status_code == 404
    answer = await bob.browser.submit(
        "/dashboard/outputs", f"/dashboard/outputs/{image}/delete", {}
    )
    assert answer.status_code == 404
    await bob.browser.submit("/dashboard/outputs/delete-all", "/dashboard/outputs/delete-all", {})
    assert await status_of(web, image) == 200
    assert listed((await alice.browser.get("/dashboard/outputs")).text) == [image]


async def test_each_form_needs_its_csrf_token(web, browsers):
    someone = await person(web, browsers, credits=10_000)
    _, key = await key_for(web, someone.account_id)
    (image,) = await make_image(web, key)
    for path in (f"/dashboard/outputs/{image}/delete", "/dashboard/outputs/delete-all"):
        assert (await someone.browser.client.post(path, data={})).status_code == 403
        forged = await someone.browser.client.post(path, data={"csrf_token": "0" * 64})
        assert forged.status_code == 403
    assert await status_of(web, image) == 200


@pytest.mark.parametrize("storage_backend", ["local"])
async def test_pages_of_24_newest_first_there_and_back(web, browsers, storage_backend):
    someone = await person(web, browsers)
    rows = [
        StoredOutput(
            id=f"file_{i:048x}",
            account_id=someone.account_id,
            storage_key=f"outputs/req_{i}/0.png",
            content_type="image/png",
            size_bytes=1000,
            kind="image",
            task_id=None,
            created_at=web.rt.now() - 3600 + (i // 5),  # ties on the time
        )
        for i in range(30)
    ]
    async with web.rt.db.write() as session:
        session.add_all(rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]
    first = (await someone.browser.get("/dashboard/outputs")).text
    assert listed(first) == expected[:24]
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = (await someone.browser.get(older)).text
    assert listed(second) == expected[24:] and 'rel="next"' not in second
    newer = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    assert listed((await someone.browser.get(newer)).text) == expected[:24]
