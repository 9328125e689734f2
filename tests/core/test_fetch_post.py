"""`AsyncFetcher.post` and `check`: what the gateway sends webhooks through. The same address
rules as fetches (CHECKS.md §22), resolved anew for every post, redirects never followed, the
answer's body read only so far, one deadline."""

from __future__ import annotations

import anyio
import pytest
from tests.core.test_fetch import REFUSED_ADDRESSES, REFUSED_URLS
from tests.media_host import PUBLIC, Answer, MediaHost

from reapi import InvalidRequestError, UrlPolicy
from reapi._fetch import MAX_ANSWER_BYTES, AsyncFetcher

BODY = b'{"id":"video_1","object":"video"}'
HEADERS = [("content-type", "application/json"), ("webhook-id", "msg_1")]


async def post(fetcher: AsyncFetcher, url: str, **kw):
    return await fetcher.post(url, BODY, headers=HEADERS, param="webhook_url", **kw)


async def refused(fetcher: AsyncFetcher, url: str, **kw) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        await post(fetcher, url, **kw)
    assert info.value.param == "webhook_url"
    return info.value


async def test_a_post_reaches_the_named_host_with_body_and_headers(media_host: MediaHost):
    url = media_host.serve("/hook", b"ok")
    answer = await post(media_host.async_fetcher(), url + "?token=abc")
    assert answer.status == 200
    (path, headers, body) = media_host.posts[0]
    assert path == "/hook?token=abc" and body == BODY
    assert headers["Host"] == f"media.example.com:{media_host.port}"
    assert headers["content-type"] == "application/json" and headers["webhook-id"] == "msg_1"
    assert headers["Content-Length"] == str(len(BODY))
    assert media_host.dials == [(PUBLIC, media_host.port)]


async def test_an_error_status_is_an_answer_not_an_exception(media_host: MediaHost):
    url = media_host.serve("/hook", status=503, headers={"Retry-After": "7"})
    answer = await post(media_host.async_fetcher(), url)
    assert (answer.status, answer.retry_after) == (503, "7")


async def test_a_redirect_is_never_followed(media_host: MediaHost):
    """A 3xx is the receiver's answer (a failed delivery), never a hop to somewhere else."""
    target = media_host.serve("/elsewhere", b"ok")
    url = media_host.redirect("/hook", target, status=307)
    answer = await post(media_host.async_fetcher(), url)
    assert answer.status == 307
    assert [p for p, _, _ in media_host.posts] == ["/hook"] and media_host.requests == []


@pytest.mark.parametrize(("case", "url"), REFUSED_ADDRESSES, ids=[c for c, _ in REFUSED_ADDRESSES])
async def test_a_non_public_address_is_refused(media_host: MediaHost, case: str, url: str):
    error = await refused(media_host.async_fetcher(), url)
    assert error.code in ("url_not_allowed", "invalid_url")
    assert media_host.dials == [] and media_host.posts == []


@pytest.mark.parametrize(("case", "url"), REFUSED_URLS, ids=[c for c, _ in REFUSED_URLS])
async def test_a_url_that_is_not_plain_http_is_refused(media_host: MediaHost, case: str, url: str):
    error = await refused(media_host.async_fetcher(), url)
    assert "MARKER" not in error.message
    assert media_host.dials == []


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1", "169.254.169.254"])
async def test_a_name_that_resolves_to_a_non_public_address_is_refused(media_host, address):
    fetcher = media_host.async_fetcher(resolver=lambda host, port: [address])
    error = await refused(fetcher, media_host.url("/hook"))
    assert error.code == "url_not_allowed"
    assert media_host.dials == []


async def test_every_post_resolves_the_name_anew(media_host: MediaHost):
    """DNS may change between two attempts: the second is held to the rules again."""
    answers = iter([[PUBLIC], ["10.0.0.7"]])
    fetcher = media_host.async_fetcher(resolver=lambda host, port: next(answers))
    url = media_host.serve("/hook", b"ok")
    assert (await post(fetcher, url)).status == 200
    assert (await refused(fetcher, url)).code == "url_not_allowed"
    assert len(media_host.posts) == 1


async def test_check_resolves_without_connecting(media_host: MediaHost):
    fetcher = media_host.async_fetcher()
    await fetcher.check(media_host.url("/hook"), param="webhook_url")
    assert media_host.lookups == ["media.example.com"] and media_host.dials == []
    private = media_host.async_fetcher(resolver=lambda host, port: ["192.168.0.2"])
    with pytest.raises(InvalidRequestError) as info:
        await private.check(media_host.url("/hook"), param="webhook_url")
    assert info.value.code == "url_not_allowed" and info.value.param == "webhook_url"
    with pytest.raises(InvalidRequestError):
        await fetcher.check("http://127.0.0.1/hook", param="webhook_url")


async def test_an_endless_answer_is_read_only_so_far(media_host: MediaHost):
    media_host.routes["/hook"] = Answer(200, body=b"x" * 65536, endless=True)
    with anyio.fail_after(5):
        answer = await post(media_host.async_fetcher(), media_host.url("/hook"))
    assert answer.status == 200 and MAX_ANSWER_BYTES <= 1024 * 1024


async def test_a_slow_receiver_runs_into_the_deadline(media_host: MediaHost):
    media_host.routes["/hook"] = Answer(200, body=b"x" * 400, drip=0.05)
    error = await refused(media_host.async_fetcher(), media_host.url("/hook"), timeout=0.5)
    # the whole post has one deadline, however the receiver dribbles
    assert error.code == "url_timeout"


async def test_allowed_networks_let_a_loopback_receiver_through(media_host: MediaHost):
    fetcher = AsyncFetcher(UrlPolicy(allow_networks=("127.0.0.1/32",)))
    url = f"{media_host.loopback_url}/hook"
    media_host.serve("/hook", b"ok")
    assert (await fetcher.post(url, BODY, headers=HEADERS, param="webhook_url")).status == 200
    assert (await refused(AsyncFetcher(), url)).code == "url_not_allowed"
