"""Topaz adapter against pytest-httpx: the Video API's create → accept → PUT parts →
complete-upload flow and the status poll as documented (PROVIDERS.md §10), source metadata read
from the MP4 itself, output tiers at the source's aspect ratio, and errors mapped by status."""

from __future__ import annotations

import base64
import json

import pytest
from mp4_boxes import mp4

from reapi import InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import sample_mp4

PRIMARY = "http://topaz.test"
BACKUP = "http://topaz-backup.test"
REQUEST = "c1f96dc2-c448-00e6-82ed-14ecb6403c62"
UPLOAD = "https://videocloud.s3.amazonaws.com/uploads/{}?X-Amz-Signature=abc"
DOWNLOAD = "https://videocloud.s3.amazonaws.com/out/enhanced.mp4?X-Amz-Signature=def"
MARKER = "MARKER-topaz-4f0c"


def two_host_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models["enhance-video-1.0"].model_dump(mode="json")
    first = spec["routes"][0]
    spec["routes"] = [first, {**first, "provider": "backup"}]
    topaz = base.providers["topaz"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"topaz": topaz, "backup": topaz}, "models": {"enhance-video-1.0": spec}}
    )


def client() -> ReAPI:
    return ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"topaz": "tz-primary", "backup": "tz-backup"},
        provider_base_urls={"topaz": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def mock_submit(httpx_mock, base: str = PRIMARY, parts: int = 1) -> None:
    """The documented answers of the four submit steps."""
    httpx_mock.add_response(
        url=f"{base}/video/",
        json={"requestId": REQUEST, "estimates": {"cost": [2, 3], "time": [20, 40]}},
    )
    urls = [UPLOAD.format(i) for i in range(parts)]
    httpx_mock.add_response(
        url=f"{base}/video/{REQUEST}/accept", method="PATCH", json={"uploadId": "u-1", "urls": urls}
    )
    for i, url in enumerate(urls):
        httpx_mock.add_response(url=url, method="PUT", headers={"ETag": f'"etag-{i}"'})
    httpx_mock.add_response(
        url=f"{base}/video/{REQUEST}/complete-upload/",
        method="PATCH",
        json={"message": "Processing has been queued"},
    )


def status(word: str, **extra: object) -> dict[str, object]:
    """The documented status answer."""
    return {"status": word, "progress": 0, "estimates": {"cost": [2, 3], "time": [20, 40]}, **extra}


def done() -> dict[str, object]:
    return status(
        "complete",
        progress=100,
        outputSize="12 MB",
        download={"url": DOWNLOAD, "expiresIn": 86400000, "expiresAt": 1893456000000},
    )


def body_of(httpx_mock, url: str) -> dict[str, object]:
    return json.loads(httpx_mock.get_requests(url=url)[0].content)


# -- submit ------------------------------------------------------------------------------------
def test_submit_runs_the_documented_four_steps(httpx_mock):
    mock_submit(httpx_mock)
    video = client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    requests = httpx_mock.get_requests()
    assert [(r.method, r.url.path) for r in requests] == [
        ("POST", "/video/"),
        ("PATCH", f"/video/{REQUEST}/accept"),
        ("PUT", "/uploads/0"),
        ("PATCH", f"/video/{REQUEST}/complete-upload/"),
    ]
    api = [r for r in requests if r.method != "PUT"]
    assert all(r.headers["x-api-key"] == "tz-primary" for r in api)
    assert "x-api-key" not in requests[2].headers and "authorization" not in requests[2].headers
    assert requests[2].content == sample_mp4()
    assert body_of(httpx_mock, f"{PRIMARY}/video/") == {
        "source": {
            "container": "mp4",
            "size": len(sample_mp4()),
            "duration": 1.0,
            "frameRate": 12.0,
            "frameCount": 12,
            "resolution": {"width": 160, "height": 90},
        },
        "filters": [{"model": "prob-4"}],
        "output": {
            "resolution": {"width": 1920, "height": 1080},
            "frameRate": 12.0,
            "audioCodec": "AAC",
            "audioTransfer": "Copy",
            "container": "mp4",
        },
    }
    assert body_of(httpx_mock, f"{PRIMARY}/video/{REQUEST}/complete-upload/") == {
        "uploadResults": [{"partNum": 1, "eTag": "etag-0"}]
    }
    assert video.status == "queued" and video.reapi.provider == "topaz"


def test_4k_keeps_the_source_aspect_ratio_and_portrait_works(httpx_mock):
    mock_submit(httpx_mock)
    source = mp4(width=720, height=1280, frames=48, fps=24)
    client().videos.create(model="enhance-video-1.0", input_reference=source, resolution="4k")
    body = body_of(httpx_mock, f"{PRIMARY}/video/")
    assert body["output"]["resolution"] == {"width": 2160, "height": 3840}
    assert body["source"]["resolution"] == {"width": 720, "height": 1280}


def test_a_quicktime_source_is_declared_as_mov(httpx_mock):
    mock_submit(httpx_mock)
    client().videos.create(model="enhance-video-1.0", input_reference=mp4(brand=b"qt  "))
    body = body_of(httpx_mock, f"{PRIMARY}/video/")
    assert body["source"]["container"] == "mov" and body["output"]["container"] == "mp4"
    put = next(r for r in httpx_mock.get_requests() if r.method == "PUT")
    assert put.headers["content-type"] == "video/quicktime"


def test_several_upload_urls_get_even_parts_in_order(httpx_mock):
    mock_submit(httpx_mock, parts=3)
    source = mp4(frames=48)
    client().videos.create(model="enhance-video-1.0", input_reference=source)
    puts = [r for r in httpx_mock.get_requests() if r.method == "PUT"]
    assert b"".join(p.content for p in sorted(puts, key=lambda r: r.url.path)) == source
    assert body_of(httpx_mock, f"{PRIMARY}/video/{REQUEST}/complete-upload/") == {
        "uploadResults": [{"partNum": n + 1, "eTag": f"etag-{n}"} for n in range(3)]
    }


def fetching_client(media_host) -> ReAPI:
    """The client, with its fetcher seeing the media host as a public host."""
    topaz = client()
    topaz._engine.fetcher = media_host.sync_fetcher()
    return topaz


def test_a_source_url_is_fetched_first_without_any_key(httpx_mock, media_host):
    source = media_host.serve("/clip.mp4", sample_mp4())
    mock_submit(httpx_mock)
    fetching_client(media_host).videos.create(model="enhance-video-1.0", input_reference=source)
    [(path, headers)] = media_host.requests
    assert path == "/clip.mp4"
    assert not {"x-api-key", "authorization"} & {name.lower() for name in headers}
    assert body_of(httpx_mock, f"{PRIMARY}/video/")["source"]["size"] == len(sample_mp4())


def test_a_source_url_is_held_to_the_ssrf_rules(httpx_mock):
    with pytest.raises(InvalidRequestError) as info:
        client().videos.create(
            model="enhance-video-1.0", input_reference="http://169.254.169.254/latest/meta-data"
        )
    assert (info.value.param, info.value.code) == ("input_reference", "url_not_allowed")
    assert httpx_mock.get_requests() == []


def test_a_data_url_source_is_decoded(httpx_mock):
    mock_submit(httpx_mock)
    data_url = "data:video/mp4;base64," + base64.b64encode(sample_mp4()).decode()
    client().videos.create(model="enhance-video-1.0", input_reference=data_url)
    puts = [r for r in httpx_mock.get_requests() if r.method == "PUT"]
    assert puts[0].content == sample_mp4()


@pytest.mark.parametrize(
    "bad", ["data:video/mp4;base64,%%%", "data:video/mp4,raw", "data:image/png;base64,AA=="]
)
def test_a_source_that_is_no_video_url_is_refused(httpx_mock, bad):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="enhance-video-1.0", input_reference=bad)
    assert httpx_mock.get_requests() == []


def test_a_source_url_that_fails_is_the_callers_problem(httpx_mock, media_host):
    with pytest.raises(InvalidRequestError) as info:
        fetching_client(media_host).videos.create(
            model="enhance-video-1.0", input_reference=media_host.url("/missing.mp4")
        )
    assert (info.value.param, info.value.code) == ("input_reference", "url_fetch_failed")
    assert len(media_host.requests) == 1
    assert httpx_mock.get_requests() == []


def test_a_source_url_that_is_no_video_is_refused_at_its_first_bytes(httpx_mock, media_host):
    page = media_host.serve("/clip.mp4", b"<html>" * 10_000)
    with pytest.raises(InvalidRequestError) as info:
        fetching_client(media_host).videos.create(model="enhance-video-1.0", input_reference=page)
    assert (info.value.param, info.value.code) == ("input_reference", "invalid_video")
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({}, "input_reference"),
        ({"input_reference": b"\x89PNG\r\n\x1a\n" + bytes(40)}, "input_reference"),
        ({"input_reference": mp4(frames=24 * 17)}, "input_reference"),  # 17 s > 16 s
        # 17 s of samples whose movie (and track) header claims 10 s
        ({"input_reference": mp4(frames=24 * 17, movie_seconds=10)}, "input_reference"),
        (
            {"input_reference": mp4(frames=24 * 17, movie_seconds=10, track_seconds=10)},
            "input_reference",
        ),
        ({"input_reference": mp4(width=3840, height=2160), "resolution": "1080p"}, "resolution"),
        ({"input_reference": sample_mp4(), "resolution": "8k"}, "resolution"),
        ({"input_reference": sample_mp4(), "size": "1920x1080"}, "size"),
        ({"input_reference": sample_mp4(), "prompt": "sharper"}, "prompt"),
        ({"input_reference": sample_mp4(), "seconds": 4}, "seconds"),
        ({"input_reference": sample_mp4(), "seed": 1}, "seed"),
    ],
)
def test_what_enhancement_cannot_do_is_refused_before_any_call(httpx_mock, kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        client().videos.create(model="enhance-video-1.0", **kwargs)
    assert info.value.param == param
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("status_code", "attempt_code"),
    [
        (402, "upstream_quota_exhausted"),
        (401, "upstream_authentication_failed"),
        (429, "rate_limit_exceeded"),
        (500, "upstream_server_error"),
    ],
)
def test_account_rate_and_server_errors_fail_over(httpx_mock, status_code, attempt_code):
    httpx_mock.add_response(
        url=f"{PRIMARY}/video/", status_code=status_code, json={"detail": MARKER}
    )
    mock_submit(httpx_mock, BACKUP)
    video = client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert video.reapi.provider == "backup"
    assert video.reapi.attempt_log[0].code == attempt_code


def test_a_refused_upload_fails_over(httpx_mock):
    httpx_mock.add_response(url=f"{PRIMARY}/video/", json={"requestId": REQUEST})
    httpx_mock.add_response(
        url=f"{PRIMARY}/video/{REQUEST}/accept", method="PATCH", json={"urls": [UPLOAD.format(9)]}
    )
    httpx_mock.add_response(url=UPLOAD.format(9), method="PUT", status_code=503)
    mock_submit(httpx_mock, BACKUP)
    video = client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert [a.code for a in video.reapi.attempt_log] == ["upstream_server_error", "ok"]


def test_a_validation_error_is_not_failed_over_and_keeps_no_message(httpx_mock):
    detail = [{"loc": ["body", "source"], "msg": MARKER, "type": "value_error"}]
    httpx_mock.add_response(url=f"{PRIMARY}/video/", status_code=422, json={"detail": detail})
    with pytest.raises(Exception) as info:
        client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert getattr(info.value, "status", None) == 422
    assert MARKER not in str(info.value) + repr(info.value)
    assert httpx_mock.get_requests(url=f"{BACKUP}/video/") == []


# -- poll --------------------------------------------------------------------------------------
def status_url(base: str = PRIMARY) -> str:
    return f"{base}/video/{REQUEST}/status"


def test_poll_maps_status_words_then_downloads_without_the_key(httpx_mock):
    mock_submit(httpx_mock)
    for word, progress in (("requested", 0), ("preprocessing", 5), ("processing", 40)):
        httpx_mock.add_response(url=status_url(), json=status(word, progress=progress))
    httpx_mock.add_response(url=status_url(), json=done(), is_reusable=True)
    httpx_mock.add_response(url=DOWNLOAD, content=b"\0\0\0\x18ftypmp42enhanced")
    topaz = client()
    video = topaz.videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert topaz.videos.retrieve(video.id).status == "queued"
    assert topaz.videos.retrieve(video.id).status == "in_progress"
    assert topaz.videos.retrieve(video.id).progress == 40
    finished = topaz.videos.wait(video.id, poll_interval=0)
    assert finished.status == "completed" and finished.expires_at == 1893456000
    assert topaz.videos.download_content(video.id).content.endswith(b"enhanced")
    assert "x-api-key" not in httpx_mock.get_requests(url=DOWNLOAD)[0].headers
    polls = httpx_mock.get_requests(url=status_url())
    assert all(p.method == "GET" and p.headers["x-api-key"] == "tz-primary" for p in polls)


@pytest.mark.parametrize("answer", [status("rendering-v2", progress=30), status("complete")])
def test_an_unknown_word_or_a_complete_without_link_keeps_polling(httpx_mock, answer):
    mock_submit(httpx_mock)
    httpx_mock.add_response(url=status_url(), json=answer)
    topaz = client()
    video = topaz.videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert topaz.videos.retrieve(video.id).status == "in_progress"


@pytest.mark.parametrize("word", ["failed", "canceled"])
def test_a_failed_request_is_resubmitted_once_to_the_next_route(httpx_mock, word):
    mock_submit(httpx_mock)
    httpx_mock.add_response(url=status_url(), json=status(word, message=MARKER))
    mock_submit(httpx_mock, BACKUP)
    httpx_mock.add_response(url=status_url(BACKUP), json=done())
    topaz = client()
    video = topaz.videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    finished = topaz.videos.wait(video.id, poll_interval=0)
    assert finished.status == "completed" and finished.reapi.provider == "backup"
