"""CHECKS.md §22: the safe fetcher for caller URLs (reference images, source videos).

Each refused form is its own case, for a URL given directly and for a redirect to it from a
public-looking host. The "public" host is `tests.media_host`: a loopback server that names
resolve to through a test resolver, so nothing here reaches DNS or the internet. Every case runs
on both twins (sync and async)."""

from __future__ import annotations

import base64
import logging
import time

import anyio
import pytest
from tests.media_host import PUBLIC, MediaHost

from reapi import InvalidRequestError, UrlPolicy
from reapi._fetch import AsyncFetcher, SyncFetcher
from reapi._media import IMAGE_TYPES, MEDIA_TYPES, VIDEO_TYPES
from reapi._urls import decode_data_url, is_public
from reapi.testing import png_bytes, sample_mp4

PNG = png_bytes(8, 8)
SECRET = "sig=MARKER-signature-51c0"

#: (case id, URL): every form CHECKS.md §22 names, and their relatives.
REFUSED_ADDRESSES = [
    ("loopback", "http://127.0.0.1/a.png"),
    ("loopback-other", "http://127.8.9.10/a.png"),
    ("ipv6-loopback", "http://[::1]/a.png"),
    ("unspecified", "http://0.0.0.0/a.png"),
    ("ipv6-unspecified", "http://[::]/a.png"),
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("link-local", "http://169.254.10.20/a.png"),
    ("ten", "http://10.0.0.5/a.png"),
    ("172-16", "http://172.16.3.4/a.png"),
    ("192-168", "http://192.168.1.1/a.png"),
    ("cgnat", "http://100.64.0.1/a.png"),
    ("cgnat-top", "http://100.127.255.254/a.png"),
    ("mapped-loopback", "http://[::ffff:127.0.0.1]/a.png"),
    ("mapped-metadata", "http://[::ffff:a9fe:a9fe]/a.png"),
    ("6to4-loopback", "http://[2002:7f00:1::]/a.png"),
    ("nat64-metadata", "http://[64:ff9b::a9fe:a9fe]/a.png"),
    ("ipv6-unique-local", "http://[fd00::1]/a.png"),
    ("ipv6-link-local", "http://[fe80::1]/a.png"),
    ("ipv6-zone", "http://[fe80::1%25eth0]/a.png"),
    ("decimal", "http://2130706433/a.png"),
    ("decimal-metadata", "http://2852039166/latest/meta-data/"),
    ("octal-short", "http://0177.1/a.png"),
    ("hex", "http://0x7f.0.0.1/a.png"),
    ("hex-whole", "http://0x7f000001/a.png"),
    ("short", "http://127.1/a.png"),
    ("zero", "http://0/a.png"),
    ("multicast", "http://224.0.0.1/a.png"),
    ("reserved", "http://240.0.0.1/a.png"),
    ("broadcast", "http://255.255.255.255/a.png"),
    ("benchmarking", "http://198.18.0.1/a.png"),
]
REFUSED_URLS = [
    ("octal-dotted", "http://0177.0.0.1/a.png"),
    ("octal-ten", "http://012.0.0.1/a.png"),
    ("bad-numeric", "http://08.0.0.1/a.png"),
    ("file", "file:///etc/passwd"),
    ("ftp", "ftp://media.example.com/a.png"),
    ("gopher", "gopher://127.0.0.1:6379/_INFO"),
    ("dict", "dict://127.0.0.1:11211/stat"),
    ("javascript", "javascript:alert(1)"),
    ("no-scheme", "//media.example.com/a.png"),
    ("no-host", "http:///a.png"),
    ("credentials", "http://user:pass@media.example.com/a.png"),
    ("not-a-url", "http://[::1/a.png"),
    ("not-a-url-with-a-query", "http://[::1MARKER/a.png?MARKER"),
]


@pytest.fixture(params=["sync", "async"])
def twin(request):
    return request.param


def fetch(host: MediaHost, twin: str, url: str, accept=IMAGE_TYPES, policy=None, **kw):
    if twin == "sync":
        return host.sync_fetcher(policy, **kw).fetch(url, accept=accept, param="image")
    fetcher = host.async_fetcher(policy, **kw)
    return anyio.run(lambda: fetcher.fetch(url, accept=accept, param="image"))


def refused(host: MediaHost, twin: str, url: str, **kw) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        fetch(host, twin, url, **kw)
    error = info.value
    assert error.param == "image" and error.http_status == 400
    chain: list[BaseException] = [error]
    while (link := chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(link)  # error trackers report chained exceptions too
    for text in [error.message] + [t for e in chain for t in (str(e), repr(e))]:
        # never the URL, nor its query
        assert "MARKER" not in text and "example" not in text and "169.254" not in text
    return error


# -- the happy path -----------------------------------------------------------------------------
def test_a_public_image_is_fetched_with_its_name_in_the_host_header(media_host, twin):
    url = media_host.serve("/a.png", PNG)
    file = fetch(media_host, twin, f"{url}?{SECRET}")
    assert (file.content, file.content_type, file.filename) == (PNG, "image/png", "image.png")
    assert file.source_url == f"{url}?{SECRET}"
    [(path, headers)] = media_host.requests
    assert path == f"/a.png?{SECRET}"
    assert headers["Host"] == f"media.example.com:{media_host.port}"
    assert headers["Accept-Encoding"] == "identity"
    assert media_host.dials == [(PUBLIC, media_host.port)]


def test_a_relative_redirect_on_a_public_host_is_followed(media_host, twin):
    media_host.serve("/a.png", PNG)
    url = media_host.redirect("/go", "/a.png", status=301)
    assert fetch(media_host, twin, url).content == PNG
    assert [path for path, _ in media_host.requests] == ["/go", "/a.png"]


def test_a_video_is_fetched_as_a_video(media_host, twin):
    url = media_host.serve("/clip.mp4", sample_mp4())
    file = fetch(media_host, twin, url, accept=MEDIA_TYPES)
    assert (file.content_type, file.filename) == ("video/mp4", "image.mp4")


# -- refused addresses: direct and behind a redirect ----------------------------------------
@pytest.mark.parametrize(("case", "url"), REFUSED_ADDRESSES, ids=[c for c, _ in REFUSED_ADDRESSES])
def test_a_non_public_address_is_refused(media_host, twin, case, url):
    assert refused(media_host, twin, url).code == "url_not_allowed"
    assert media_host.dials == [] and media_host.lookups == []  # no DNS, no connection


@pytest.mark.parametrize(("case", "url"), REFUSED_ADDRESSES, ids=[c for c, _ in REFUSED_ADDRESSES])
def test_a_redirect_to_a_non_public_address_is_refused(media_host, twin, case, url):
    start = media_host.redirect("/go", url)
    assert refused(media_host, twin, start).code == "url_not_allowed"
    assert [path for path, _ in media_host.requests] == ["/go"]
    assert media_host.dials == [(PUBLIC, media_host.port)]  # the public hop only


@pytest.mark.parametrize(("case", "url"), REFUSED_URLS, ids=[c for c, _ in REFUSED_URLS])
def test_a_url_that_is_not_plain_http_is_refused(media_host, twin, case, url):
    assert refused(media_host, twin, url).code == "invalid_url"
    assert media_host.dials == []


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://x.example/a.png"]
)
def test_a_redirect_to_another_scheme_is_refused(media_host, twin, location):
    assert refused(media_host, twin, media_host.redirect("/go", location)).code == "invalid_url"


def test_a_redirect_to_the_loopback_server_that_would_answer_is_refused(media_host, twin):
    media_host.serve("/a.png", PNG)
    start = media_host.redirect("/go", f"{media_host.loopback_url}/a.png", status=307)
    assert refused(media_host, twin, start).code == "url_not_allowed"
    assert [path for path, _ in media_host.requests] == ["/go"]


@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["::1"], ["10.1.2.3"], ["169.254.169.254"], [PUBLIC, "127.0.0.1"], []],
    ids=["loopback", "ipv6-loopback", "private", "metadata", "mixed", "none"],
)
def test_a_name_that_resolves_to_a_non_public_address_is_refused(media_host, twin, answer):
    url = media_host.serve("/a.png", PNG)
    error = refused(media_host, twin, url, resolver=lambda host, port: answer)
    assert error.code == "url_not_allowed"
    assert media_host.dials == []


def test_an_unresolvable_name_says_the_same_as_a_private_one(media_host, twin):
    # The system resolver is offline in tests (tests/conftest.py): every name fails.
    url = media_host.serve("/a.png", PNG)
    error = refused(media_host, twin, url, resolver=None)
    assert error.code == "url_not_allowed"


def test_dns_rebinding_cannot_swap_the_vetted_address(media_host, twin):
    """The name is resolved once per hop; the connection goes to that address, whatever DNS
    would answer next."""
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    url = media_host.serve("/a.png", PNG)
    assert fetch(media_host, twin, url, resolver=lambda host, port: next(answers)).content == PNG
    assert media_host.dials == [(PUBLIC, media_host.port)]


def test_the_next_vetted_address_is_tried_when_one_does_not_answer(media_host, twin):
    dead = "93.184.215.99"  # public, but the test network does not reach it
    url = media_host.serve("/a.png", PNG)
    file = fetch(media_host, twin, url, resolver=lambda host, port: [dead, PUBLIC])
    assert file.content == PNG
    assert [address for address, _ in media_host.dials] == [dead, PUBLIC]


def test_too_many_redirects_are_refused(media_host, twin):
    url = media_host.redirect("/loop", "/loop")
    error = refused(media_host, twin, url)
    assert error.code == "url_fetch_failed"
    assert len(media_host.requests) == UrlPolicy().max_redirects + 1


def test_an_error_status_is_refused_with_its_number_only(media_host, twin):
    url = media_host.serve("/gone.png", b"secret page body", status=404)
    error = refused(media_host, twin, url)
    assert error.code == "url_fetch_failed" and "404" in error.message
    assert "secret" not in error.message


# -- bodies: size and kind -------------------------------------------------------------------
def test_a_declared_length_over_the_limit_is_refused_before_the_body(media_host, twin):
    url = media_host.serve("/big.png", PNG + b"\0" * 4096)
    error = refused(media_host, twin, url, policy=UrlPolicy(max_image_bytes=1024))
    assert error.code == "file_too_large"


def test_an_endless_body_is_cut_off_at_the_limit(media_host, twin):
    url = media_host.serve("/endless.png", PNG + b"\0" * 65536, endless=True)
    error = refused(media_host, twin, url, policy=UrlPolicy(max_image_bytes=256 * 1024))
    assert error.code == "file_too_large"
    assert media_host.hung_up.wait(5)  # the fetcher hung up rather than reading on


def test_a_body_without_a_length_is_held_to_the_limit_too(media_host, twin):
    url = media_host.serve("/big.png", PNG + b"\0" * 4096, length=False)
    assert fetch(media_host, twin, url).content.startswith(PNG)
    error = refused(media_host, twin, url, policy=UrlPolicy(max_image_bytes=1024))
    assert error.code == "file_too_large"


def test_each_kind_has_its_own_limit(media_host, twin):
    policy = UrlPolicy(max_image_bytes=64, max_video_bytes=len(sample_mp4()))
    video = media_host.serve("/clip.mp4", sample_mp4())
    assert fetch(media_host, twin, video, accept=MEDIA_TYPES, policy=policy).content_type
    image = media_host.serve("/a.png", PNG + b"\0" * 128)
    error = refused(media_host, twin, image, accept=MEDIA_TYPES, policy=policy)
    assert error.code == "file_too_large"


@pytest.mark.parametrize(
    ("body", "accept", "code"),
    [
        (b"<!doctype html><html>" + b"x" * 64, IMAGE_TYPES, "invalid_image"),
        (b"GIF89a" + b"\0" * 64, IMAGE_TYPES, "invalid_image"),
        (b"%PDF-1.7" + b"\0" * 64, IMAGE_TYPES, "invalid_image"),
        (sample_mp4(), IMAGE_TYPES, "invalid_image"),
        (PNG, VIDEO_TYPES, "invalid_video"),
        (b'{"not": "a video"}' + b" " * 64, VIDEO_TYPES, "invalid_video"),
        (b"short", IMAGE_TYPES, "invalid_image"),
        (b"MZ\x90\x00" + b"\0" * 64, MEDIA_TYPES, "invalid_file"),
    ],
    ids=["html", "gif", "pdf", "mp4-as-image", "png-as-video", "json", "short", "exe"],
)
def test_wrong_magic_bytes_are_refused(media_host, twin, body, accept, code):
    url = media_host.serve("/file", body, headers={"Content-Type": "image/png"})
    assert refused(media_host, twin, url, accept=accept).code == code


def test_a_slow_body_runs_into_the_deadline(media_host, twin):
    url = media_host.serve("/slow.png", PNG + b"\0" * 400, drip=0.05)
    started = time.monotonic()
    error = refused(media_host, twin, url, policy=UrlPolicy(timeout=0.5))
    assert error.code == "url_timeout"
    assert time.monotonic() - started < 3


# -- the operator's escape hatch ---------------------------------------------------------------
def test_allowed_networks_let_a_private_address_through_and_nothing_else(media_host, twin):
    url = f"{media_host.loopback_url}/a.png"
    media_host.serve("/a.png", PNG)
    policy = UrlPolicy(allow_networks=("127.0.0.1/32",))
    assert fetch(media_host, twin, url, policy=policy).content == PNG
    assert refused(media_host, twin, "http://10.0.0.5/a.png", policy=policy).code == (
        "url_not_allowed"
    )
    assert refused(media_host, twin, "http://127.0.0.2/a.png", policy=policy).code == (
        "url_not_allowed"
    )


def test_a_policy_with_a_bad_network_is_refused_at_once():
    with pytest.raises(ValueError, match="allow_networks"):
        UrlPolicy(allow_networks=("not-a-network",))


def test_the_public_rule_itself():
    import ipaddress

    assert is_public(ipaddress.ip_address(PUBLIC))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    allowed = [ipaddress.ip_network("127.0.0.0/8")]
    assert is_public(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)


# -- data URLs (the gateway decodes them under the same kinds and limits) --------------------
def _data(content: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(content).decode()}"


def test_a_data_url_becomes_a_file():
    file = decode_data_url(_data(PNG), IMAGE_TYPES, "image", UrlPolicy())
    assert (file.content, file.content_type, file.source_url) == (PNG, "image/png", None)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        (_data(b"<html>" * 10), "invalid_image"),
        (_data(sample_mp4()[:64], "image/png"), "invalid_image"),
        ("data:image/png,rawbytes", "invalid_url"),
        ("data:image/png;base64,%%%", "invalid_url"),
        (_data(PNG + b"\0" * 2048), "file_too_large"),
    ],
    ids=["html", "mp4", "not-base64", "bad-base64", "too-large"],
)
def test_a_bad_data_url_is_refused(url, code):
    with pytest.raises(InvalidRequestError) as info:
        decode_data_url(url, IMAGE_TYPES, "image", UrlPolicy(max_image_bytes=1024))
    assert (info.value.code, info.value.param) == (code, "image")


def test_default_fetchers_are_secure():
    assert SyncFetcher().policy == AsyncFetcher().policy == UrlPolicy()
    assert UrlPolicy().allow_networks == ()


def test_nothing_of_a_fetch_is_logged(media_host, twin, caplog):
    """httpcore traces hosts and response headers at DEBUG; a redirect's Location is the
    caller's URL. None of it may reach a log."""
    caplog.set_level(logging.DEBUG)
    media_host.serve("/MARKER-path.png", PNG)
    start = media_host.redirect("/go", f"/MARKER-path.png?{SECRET}")
    fetch(media_host, twin, f"{start}?{SECRET}")
    refused(media_host, twin, media_host.redirect("/bad", f"http://10.0.0.1/?{SECRET}"))
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "MARKER" not in logs and "media.example.com" not in logs
