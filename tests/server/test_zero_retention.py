"""CHECKS.md §1-4: unique markers in the prompt, reference image bytes (uploaded, sent as data URLs,
and fetched by the gateway from a URL whose path and query carry a marker too), mask bytes and
`user`, sent through success, a validation error (400), malformed JSON and multipart bodies, an
unknown model, a bad idempotency key, a refusal for want of credit before any fetch, an upstream
400 that echoes the prompt, 5xx, timeout, failover and a request cancelled mid-flight. Afterwards
no marker may be found in logs (every level, every formatter, tracebacks included), the database
files, the data dir, temp files, metrics or any answer; and no error the gateway answered may
chain another or hold a marker. Keys (ours and the providers') must not show up either.

Storage is scanned too, on local disk and on a real S3 server: every object must be a generated
output (under `outputs/<task id>/<n>.<ext>`, holding what the upstream generated), nothing else.
Uploads over 1 MiB (spooled to temp files while parsed) leave no temp file behind (§3)."""

import asyncio
import base64
import logging
import re
import tempfile
import traceback
from pathlib import Path

import pytest
from tests.server.errors_seen import hook_error_handlers
from tests.server.fakes import KEYS, MP4, PNG
from tests.server.helpers import auth, scrape_metrics

from reapi.router import InMemoryBreakerStore
from reapi_server.jobs.poller import JobPoller
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.observability.logging import JsonFormatter, PlainFormatter

PROMPT = "MARKER-prompt-7c1d9e"
IMAGE = b"MARKER-image-2b8f41"
MASK = b"MARKER-mask-93aa0c"
USER = "MARKER-user-5e6f12"
#: In the path and query of a reference image URL the gateway fetches (the image holds IMAGE).
URL = "MARKER-url-0c4b7a"
MARKERS = [PROMPT.encode(), IMAGE, MASK, USER.encode(), URL.encode()]
OUTPUT_KEY = re.compile(
    r"^outputs/(req_[0-9a-f]{35}|video_[0-9a-f]{24})/\d+-[0-9a-f]{32}\.(png|mp4)$"
)


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _image(marker: bytes) -> bytes:
    return PNG + marker + b"\0" * 64


async def _exercise(gateway, key: str, media_host) -> list[bytes]:
    """Every path a request can take; returns every answer body seen."""
    client, up = gateway.client, gateway.upstream
    answers: list[bytes] = []
    fetched = media_host.serve(f"/{URL}.png", _image(IMAGE)) + f"?sig={URL}"
    refused = media_host.redirect("/go", f"http://169.254.169.254/{URL}") + f"?sig={URL}"

    def faults(**by_host: str) -> None:
        """Switch upstream faults, with fresh breakers so each phase hits its routes."""
        up.faults = {f"{host}.test": fault for host, fault in by_host.items()}
        gateway.rt.router.breakers = InMemoryBreakerStore()

    async def generate(**extra):
        body = {"model": "gpt-image-2", "prompt": PROMPT, "user": USER, **extra}
        response = await client.post(
            "/v1/images/generations", json=body, headers={**auth(key), "idempotency-key": PROMPT}
        )
        answers.append(response.content)
        return response

    async def edit():
        response = await client.post(
            "/v1/images/edits",
            data={"model": "gpt-image-2", "prompt": PROMPT, "user": USER},
            files=[
                ("image[]", ("a.png", _image(IMAGE), "image/png")),
                ("image[]", ("b.png", _image(IMAGE), "image/png")),
                ("mask", ("m.png", _image(MASK), "image/png")),
            ],
            headers=auth(key),
        )
        answers.append(response.content)
        return response

    async def streamed(path: str, **options):
        """`stream: true`: answered as server-sent events (or a JSON error before the first)."""
        fields = {"model": "gpt-image-2", "prompt": PROMPT, "user": USER, "stream": "true"}
        if path.endswith("edits"):
            files = [("image", ("a.png", _image(IMAGE), "image/png"))]
            options = {"data": fields, "files": files, **options}
        else:
            options = {"json": {**fields, "stream": True}, **options}
        headers = {**auth(key), **options.pop("headers", {})}
        response = await client.post(path, headers=headers, **options)
        answers.append(response.content)
        return response

    async def edit_by_url(url: str):
        response = await client.post(
            "/v1/images/edits",
            json={
                "model": "gpt-image-2",
                "prompt": PROMPT,
                "user": USER,
                "images": [{"image_url": url}],
            },
            headers=auth(key),
        )
        answers.append(response.content)
        return response

    async def video(**extra):
        response = await client.post(
            "/v1/videos",
            data={"model": "sim-video", "prompt": PROMPT, "size": "1280x720", **extra},
            files={"input_reference": ("ref.png", _image(IMAGE), "image/png")},
            headers=auth(key),
        )
        answers.append(response.content)
        return response

    assert (await generate()).status_code == 200  # success
    assert (await edit()).status_code == 200
    big = await client.post(  # over 1 MiB: parsed through a spooled temp file
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": PROMPT, "user": USER},
        files={"image": ("big.png", _image(IMAGE) + IMAGE * (2 * 1024 * 1024 // len(IMAGE)))},
        headers=auth(key),
    )
    answers.append(big.content)
    assert big.status_code == 200
    assert (await edit_by_url(fetched)).status_code == 200  # a reference image fetched by URL
    for path in ("/v1/images/generations", "/v1/images/edits"):  # streamed answers
        assert b".completed" in (await streamed(path)).content
    # A streamed request with an Idempotency-Key (the prompt here): refused, without it.
    keyed = await streamed("/v1/images/generations", headers={"idempotency-key": PROMPT})
    assert keyed.status_code == 400
    assert (await edit_by_url(refused)).status_code == 400  # one refused (SSRF, on redirect)
    assert (await generate(n=PROMPT)).status_code == 400  # validation error
    bad = await client.post(
        "/v1/images/generations", json={"prompt": {"x": PROMPT}, "user": [USER]}, headers=auth(key)
    )
    answers.append(bad.content)
    assert bad.status_code == 400
    await _refusals(gateway, key, fetched, refused, answers)
    faults(primary="400_echo")  # the upstream echoes prompt and user
    assert (await edit()).status_code == 400
    assert (await edit_by_url(fetched)).status_code == 400
    response = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": PROMPT, "user": USER},
        headers=auth(key),
    )
    answers.append(response.content)
    assert response.status_code == 400
    assert (await streamed("/v1/images/edits")).status_code == 400  # streamed: a JSON error
    faults(primary="500", backup="500")  # 5xx everywhere
    assert (await edit()).status_code == 502
    assert (await streamed("/v1/images/generations")).status_code == 502
    faults(primary="hang", backup="hang")  # timeouts
    up.hang_seconds = 1.0
    assert (await edit()).status_code == 504
    faults(primary="500")  # failover
    assert (await edit()).status_code == 200
    faults(primary="reset", backup="truncated")
    assert (await edit()).status_code == 502
    faults(primary="hang")  # cancelled mid-flight (a client going away)
    up.hang_seconds = 5.0
    task = asyncio.create_task(edit())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    faults()
    created = await video()  # videos: success, upstream failure + resubmission, and a refund
    assert created.status_code == 200
    up.video_outcome = "failed"
    assert (await video()).status_code == 200
    faults(primary="400_echo", backup="400_echo")
    assert (await video()).status_code == 400
    faults()
    for _ in range(4):
        await JobPoller(gateway.rt).run_once()
    await sweep_once(gateway.rt)
    for path in ("/v1/videos", "/v1/usage", "/v1/credits"):
        answers.append((await client.get(path, headers=auth(key))).content)
    answers.append((await scrape_metrics(gateway)).encode())
    video_id = created.json()["id"]
    answers.append((await client.get(f"/v1/videos/{video_id}", headers=auth(key))).content)
    return answers


async def _refusals(gateway, key: str, fetched: str, refused: str, answers: list[bytes]) -> None:
    """Bad input of every kind (issue 9): refused with the markers in it, and inputs by URL,
    data URL and reference in JSON video requests."""
    client = gateway.client

    async def post(path: str, status: int, headers: dict[str, str] | None = None, **kw) -> None:
        response = await client.post(path, headers={**auth(key), **(headers or {})}, **kw)
        answers.append(response.content)
        assert response.status_code == status, (path, response.text)

    as_json = {"content-type": "application/json"}
    await post("/v1/images/generations", 400, as_json, content=f'{{"prompt": "{PROMPT}'.encode())
    broken = f"--b\r\n{PROMPT}\r\n\r\n{USER}\r\n--b--\r\n".encode()
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    await post("/v1/images/edits", 400, multipart, content=broken)
    await post("/v1/videos", 400, multipart, content=broken)
    # A model id is named by a 64-character excerpt: the marker sits beyond it.
    await post("/v1/images/generations", 404, json={"model": "m" * 64 + PROMPT, "prompt": PROMPT})
    await post(
        "/v1/images/generations", 400, {"idempotency-key": PROMPT * 20}, json={"prompt": PROMPT}
    )
    data_url = f"data:image/png;base64,{base64.b64encode(_image(IMAGE)).decode()}"
    edit = {"model": "gpt-image-2", "prompt": PROMPT, "user": USER}
    await post("/v1/images/edits", 200, json={**edit, "images": [{"image_url": data_url}]})
    await post("/v1/images/edits", 400, json={**edit, "images": [{"image_url": data_url[:-9]}]})
    _, poor = await gateway.account(credits=0)  # refused before its URLs are fetched
    response = await client.post(
        "/v1/images/edits", json={**edit, "images": [{"image_url": fetched}]}, headers=auth(poor)
    )
    answers.append(response.content)
    assert response.status_code == 402
    video = {"model": "sim-video", "prompt": PROMPT, "size": "1280x720"}
    for reference, status in ((fetched, 200), (data_url, 200), (refused, 400)):
        await post(
            "/v1/videos", status, json={**video, "input_reference": {"image_url": reference}}
        )


def _render(record: logging.LogRecord) -> str:
    text = [JsonFormatter().format(record), PlainFormatter().format(record)]
    text.append(logging.Formatter("%(message)s %(args)s").format(record))
    if record.exc_info and record.exc_info[1] is not None:
        text.append("".join(traceback.format_exception(record.exc_info[1])))
        text.append(repr(record.exc_info[1]))
    return "\n".join(text)


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_no_marker_survives_anywhere(
    make_gateway, media_host, caplog, capfd, tmp_path, monkeypatch
):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    caplog.set_level(logging.DEBUG)
    gateway = await make_gateway()
    gateway.rt.fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    _, key = await gateway.account(credits=100_000)
    errors = hook_error_handlers(gateway.app, [m.decode() for m in MARKERS])

    answers = await _exercise(gateway, key, media_host)
    await gateway.rt.db.dispose()  # flush the WAL so the database files hold everything

    secrets = [*MARKERS, key.encode(), *(k.encode() for k in KEYS.values())]
    for answer in answers:
        for secret in secrets:
            assert secret not in answer, (secret, answer[:200])
    logs = "\n".join(_render(record) for record in caplog.records)
    captured = capfd.readouterr()
    assert caplog.records, "the gateway logged nothing: the test would prove nothing"
    for secret in secrets:
        text = secret.decode()
        assert text not in logs and text not in captured.out and text not in captured.err
    for path in _files_under(gateway.data_dir) + _files_under(temp):
        content = path.read_bytes()
        for secret in secrets:
            assert secret not in content, (secret, path)
    assert _files_under(temp) == []  # no spooled upload left behind
    stored = gateway.stored()  # every object, read back from disk or through the S3 API
    assert len(stored) >= 4
    for key, content in stored.items():
        assert OUTPUT_KEY.match(key), key  # generated outputs only, named by their task
        assert content in (PNG, MP4), key  # exactly what the upstream generated
    assert len(gateway.upstream.calls) > 20  # the markers really went upstream
    assert len(errors) >= 15
    for seen in errors:
        assert seen.chained == [] and not seen.marked and seen.frames_marked == [], seen


async def other_process_finishes_the_video_case(gateway) -> None:
    """Two gateway processes on one database: the one that took the request keeps its body for
    a resubmission, the other's poller finishes the job. Afterwards neither process holds any
    of the request (the taker's periodic sweep dropped the body of the job it no longer runs)."""
    from tests.object_graph import markers_reachable
    from tests.server.other_process import OtherProcess
    from tests.server.test_video_memory import create, drive, markers, status_of

    prompt, image = markers()
    _, key = await gateway.account(credits=1000)
    video = await create(gateway, key, prompt, image)
    roots = [gateway.app, gateway.rt]
    assert markers_reachable(roots, [prompt.encode(), image])  # kept for a resubmission
    async with OtherProcess(gateway) as other:
        await other.call(drive, other.rt)
        assert (await status_of(gateway, key, video["id"]))["status"] == "completed"
        await sweep_once(gateway.rt)
        assert gateway.rt.memory.get(video["id"]) is None
        roots += [other.app, other.rt]
        assert markers_reachable(roots, [prompt.encode(), image]) == []


async def test_no_marker_in_memory_once_another_process_finished_the_video(gateway):
    await other_process_finishes_the_video_case(gateway)
