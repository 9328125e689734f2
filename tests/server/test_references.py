"""Caller URLs at the gateway (CHECKS.md §22, §23): every URL a request carries is fetched by the
gateway under the SSRF rules before anything reaches an adapter — and only once the request has
passed its checks and its credit is held; `POST /v1/images/edits` takes JSON
(`images: [{image_url | file_id}]`, `mask`); body fields like `base_url` are ignored.

The "public" host is `tests.media_host` (a loopback server that test names resolve to), so the
gateway keeps its default, secure policy and nothing reaches the internet."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import httpx
import pytest
from tests.server.fakes import PNG, FakeUpstream
from tests.server.helpers import auth, ledger_matches

from reapi.testing import png_bytes, sample_mp4
from reapi_server.config import Settings

IMAGE = png_bytes(16, 16)
MASK = png_bytes(16, 16) + b"mask"


@dataclass
class RecordingUpstream(FakeUpstream):
    """The fake upstream, keeping each request's body: did the fetched bytes arrive?"""

    bodies: list[bytes] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        return await super().handle(request)


@pytest.fixture
def upstream() -> RecordingUpstream:
    return RecordingUpstream()


@pytest.fixture
async def gateway(make_gateway, media_host):
    """A gateway with the default URL policy, whose fetcher sees the media host as public."""
    gateway = await make_gateway()
    fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    gateway.rt.fetcher = gateway.rt.engine.fetcher = fetcher
    return gateway


def data_url(content: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(content).decode()}"


async def edit(gateway, key, images, mask=None, **fields):
    body = {"model": "gpt-image-2", "prompt": "add a moon", "images": images, **fields}
    if mask is not None:
        body["mask"] = mask
    return await gateway.client.post("/v1/images/edits", json=body, headers=auth(key))


async def video(gateway, key, reference, model="sim-video"):
    body = {"model": model, "prompt": "waves", "size": "1280x720", "input_reference": reference}
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def video_form(gateway, key, reference_url):
    """A multipart video request whose input_reference is a text field holding a URL."""
    fields = {"model": "sim-video", "prompt": "p", "size": "1280x720"}
    parts = [(name, (None, value)) for name, value in fields.items()]
    parts.append(("input_reference", (None, reference_url)))
    return await gateway.client.post("/v1/videos", files=parts, headers=auth(key))


# -- JSON edits ---------------------------------------------------------------------------------
async def test_a_json_edit_fetches_its_images_and_mask(gateway, media_host):
    _, key = await gateway.account()
    first = media_host.serve("/a.png", IMAGE)
    second = media_host.serve("/b.png", IMAGE + b"second")
    response = await edit(
        gateway,
        key,
        [{"image_url": first + "?X-Amz-Signature=abc"}, {"image_url": second}],
        mask={"image_url": data_url(MASK)},
        size="1024x1024",
        quality="high",
    )
    assert response.status_code == 200, response.text
    assert gateway.upstream.count("/images/edits") == 1
    [sent] = gateway.upstream.bodies
    assert IMAGE in sent and IMAGE + b"second" in sent  # the fetched bytes went upstream
    assert b"media.example.com" not in sent  # as files, not as URLs
    assert sorted(path for path, _ in media_host.requests) == [
        "/a.png?X-Amz-Signature=abc",
        "/b.png",
    ]


async def test_a_json_edit_takes_data_urls(gateway):
    _, key = await gateway.account()
    response = await edit(gateway, key, [{"image_url": data_url(IMAGE)}])
    assert response.status_code == 200, response.text


async def test_a_json_edit_takes_the_callers_own_stored_output_by_file_id(gateway):
    _, key = await gateway.account()
    made = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
        headers=auth(key),
    )
    file_id = made.json()["data"][0]["url"].split("/files/")[1].split("/")[0]
    response = await edit(gateway, key, [{"file_id": file_id}])
    assert response.status_code == 200, response.text
    assert PNG in gateway.upstream.bodies[-1]
    _, other_key = await gateway.account()
    refused = await edit(gateway, other_key, [{"file_id": file_id}])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "file_not_found"
    assert refused.json()["error"]["param"] == "images[0].file_id"
    unknown = await edit(gateway, key, [{"file_id": "file-abc123"}])
    assert unknown.json()["error"]["code"] == "file_not_found"


@pytest.mark.parametrize(
    ("images", "param"),
    [
        ([], "images"),
        ([{}], "images.0"),
        ([{"image_url": "https://x.example/a.png", "file_id": "file-1"}], "images.0"),
        ([{"image_url": "https://x.example/a.png", "detail": "high"}], "images.0.detail"),
    ],
    ids=["none", "empty-ref", "both", "unknown-key"],
)
async def test_a_malformed_reference_is_a_400_without_the_value(gateway, images, param):
    _, key = await gateway.account()
    response = await edit(gateway, key, images)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert "x.example" not in response.text


async def test_a_json_edit_with_a_bad_stream_flag_is_refused_before_any_fetch(gateway, media_host):
    _, key = await gateway.account()
    response = await edit(gateway, key, [{"image_url": media_host.url("/a.png")}], stream="yes")
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"
    assert media_host.requests == []


async def test_multipart_edits_still_work_and_other_types_are_refused(gateway):
    _, key = await gateway.account()
    multipart = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files={"image": ("a.png", IMAGE, "image/png")},
        headers=auth(key),
    )
    assert multipart.status_code == 200
    text = await gateway.client.post(
        "/v1/images/edits", content=b"prompt=p", headers={**auth(key), "content-type": "text/plain"}
    )
    assert text.status_code == 400


# -- CHECKS.md §22 at the gateway: refused, free of charge, nothing kept ---------------------
REFUSED = [
    ("loopback", "http://127.0.0.1/a.png", "url_not_allowed"),
    ("ipv6-loopback", "http://[::1]/a.png", "url_not_allowed"),
    ("unspecified", "http://0.0.0.0/a.png", "url_not_allowed"),
    ("metadata", "http://169.254.169.254/latest/meta-data/iam", "url_not_allowed"),
    ("ten", "http://10.0.0.5/a.png", "url_not_allowed"),
    ("cgnat", "http://100.64.0.1/a.png", "url_not_allowed"),
    ("mapped", "http://[::ffff:127.0.0.1]/a.png", "url_not_allowed"),
    ("decimal", "http://2130706433/a.png", "url_not_allowed"),
    ("octal", "http://0177.1/a.png", "url_not_allowed"),
    ("octal-dotted", "http://0177.0.0.1/a.png", "invalid_url"),
    ("hex", "http://0x7f.1/a.png", "url_not_allowed"),
    ("file", "file:///etc/passwd", "invalid_url"),
    ("gopher", "gopher://127.0.0.1:6379/_INFO", "invalid_url"),
    ("ftp", "ftp://media.example.com/a.png", "invalid_url"),
]


def _redirecting(media_host, target: str) -> str:
    return media_host.redirect("/go", target) + "?sig=MARKER-query-9d2e"


async def _assert_nothing_charged_or_kept(gateway, account: str, key: str, marker: str) -> None:
    """The hold was released, the usage rows say `failed` at no cost, nothing went upstream."""
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    usage = await gateway.client.get("/v1/usage", headers=auth(key))
    rows = usage.json()["data"]
    assert rows and all(r["status"] == "failed" and r["credit_cost"] == 0 for r in rows)
    assert marker not in usage.text
    videos = await gateway.client.get("/v1/videos", headers=auth(key))
    assert all(v["status"] == "failed" for v in videos.json()["data"])
    assert marker not in videos.text
    assert gateway.upstream.calls == []
    await gateway.rt.db.dispose()  # flush the WAL: the database files hold everything
    for path in gateway.data_dir.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(("case", "url", "code"), REFUSED, ids=[c for c, _, _ in REFUSED])
@pytest.mark.parametrize("how", ["direct", "redirect"])
async def test_a_refused_edit_url_costs_nothing_and_leaves_nothing(
    gateway, media_host, case, url, code, how
):
    account, key = await gateway.account(credits=10_000)
    marked = url.replace("/a.png", "/MARKER-path-a1.png")
    if how == "redirect":
        marked = _redirecting(media_host, marked)
    response = await edit(gateway, key, [{"image_url": marked}])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, "images[0].image_url")
    assert "MARKER" not in response.text and "example" not in response.text
    await _assert_nothing_charged_or_kept(gateway, account, key, "MARKER")


@pytest.mark.parametrize(("case", "url", "code"), REFUSED, ids=[c for c, _, _ in REFUSED])
async def test_a_refused_video_reference_costs_nothing(gateway, case, url, code):
    account, key = await gateway.account(credits=10_000)
    response = await video(gateway, key, {"image_url": url})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, "input_reference.image_url")
    await _assert_nothing_charged_or_kept(gateway, account, key, "169.254")


async def test_a_redirect_from_a_public_host_to_loopback_is_refused_everywhere(gateway, media_host):
    account, key = await gateway.account(credits=10_000)
    media_host.serve("/a.png", IMAGE)  # what 127.0.0.1 would answer, were it asked
    start = media_host.redirect("/go", f"{media_host.loopback_url}/a.png")
    assert (await edit(gateway, key, [{"image_url": start}])).status_code == 400
    masked = await edit(gateway, key, [{"image_url": data_url(IMAGE)}], mask={"image_url": start})
    assert masked.json()["error"]["param"] == "mask.image_url"
    assert (await video(gateway, key, {"image_url": start})).status_code == 400
    form = await video_form(gateway, key, start)
    assert form.status_code == 400 and form.json()["error"]["code"] == "url_not_allowed"
    assert [path for path, _ in media_host.requests] == ["/go"] * 4
    await _assert_nothing_charged_or_kept(gateway, account, key, "MARKER")


async def test_a_mask_over_the_model_s_limit_is_refused_before_the_upstream(gateway, media_host):
    """OpenAI takes a mask under 4 MB; the fetch limit (20 MiB) let a 5 MB one by URL through,
    to be refused by OpenAI after the hold. Refused once fetched (400, `param` mask, the hold
    given back, no upstream call); one by data: URL with the request, before any fetch."""
    account, key = await gateway.account()
    large = MASK + b"\0" * (5_000_000 - len(MASK))
    by_url = media_host.serve("/mask.png", large)
    response = await edit(
        gateway, key, [{"image_url": data_url(IMAGE)}], mask={"image_url": by_url}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("mask", "file_too_large")
    assert "the mask is 5.0 MB" in error["message"] and "at most 4 MB" in error["message"]
    image = media_host.serve("/a.png", IMAGE)
    response = await edit(gateway, key, [{"image_url": image}], mask={"image_url": data_url(large)})
    assert response.status_code == 400 and response.json()["error"]["param"] == "mask"
    assert [path for path, _ in media_host.requests] == ["/mask.png"]
    assert gateway.upstream.count("/images/edits") == 0
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


async def test_a_body_over_the_limit_is_cut_off(make_gateway, media_host):
    gateway = await make_gateway(fetch_max_image_bytes=64 * 1024)
    gateway.rt.fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    account, key = await gateway.account()
    endless = media_host.serve("/big.png", IMAGE + b"\0" * 65536, endless=True)
    response = await edit(gateway, key, [{"image_url": endless}])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert media_host.hung_up.wait(5)
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"<html><body>not an image</body></html>", "invalid_image"), (sample_mp4(), "invalid_image")],
    ids=["html", "video"],
)
async def test_wrong_magic_bytes_are_a_400(gateway, media_host, body, code):
    account, key = await gateway.account()
    url = media_host.serve("/a.png", body, headers={"Content-Type": "image/png"})
    response = await edit(gateway, key, [{"image_url": url}])
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


# -- videos: the reference is fetched and goes upstream as a file -------------------------------
async def test_a_video_reference_url_is_fetched_and_uploaded(gateway, media_host):
    _, key = await gateway.account()
    response = await video(gateway, key, {"image_url": media_host.serve("/first.png", IMAGE)})
    assert response.status_code == 200, response.text
    assert IMAGE in gateway.upstream.bodies[-1]
    assert b"media.example.com" not in gateway.upstream.bodies[-1]


async def test_a_video_reference_in_a_form_field_is_fetched_too(gateway, media_host):
    _, key = await gateway.account()
    response = await video_form(gateway, key, media_host.serve("/first.png", IMAGE))
    assert response.status_code == 200, response.text
    assert IMAGE in gateway.upstream.bodies[-1]


# -- CHECKS.md §23: fields that would redirect a request are ignored ----------------------------
SMUGGLED = {
    "base_url": "http://evil.test/v1",
    "api_base": "http://evil.test/v1",
    "baseURL": "http://evil.test/v1",
    "azure_endpoint": "http://evil.test",
    "endpoint": "http://evil.test",
    "provider_base_url": "http://evil.test",
    "extra_body": {"base_url": "http://evil.test"},
}


async def test_base_url_like_fields_in_a_body_are_ignored(gateway):
    _, key = await gateway.account()
    generated = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", **SMUGGLED},
        headers=auth(key),
    )
    edited = await edit(gateway, key, [{"image_url": data_url(IMAGE)}], **SMUGGLED)
    made = await gateway.client.post(
        "/v1/videos",
        json={"model": "sim-video", "prompt": "p", "size": "1280x720", **SMUGGLED},
        headers=auth(key),
    )
    assert [generated.status_code, edited.status_code, made.status_code] == [200, 200, 200]
    assert {host for host, _, _ in gateway.upstream.calls} == {"primary.test"}


# -- settings -----------------------------------------------------------------------------------
def test_the_gateway_policy_is_secure_by_default_and_configurable(monkeypatch):
    assert Settings().url_policy.allow_networks == ()
    monkeypatch.setenv("REAPI_FETCH_ALLOW_NETWORKS", '["10.20.0.0/16"]')
    monkeypatch.setenv("REAPI_FETCH_MAX_IMAGE_BYTES", "1024")
    policy = Settings().url_policy
    assert policy.allow_networks == ("10.20.0.0/16",) and policy.max_image_bytes == 1024
    with pytest.raises(ValueError, match="allow_networks"):
        Settings(fetch_allow_networks=["not-a-network"])
