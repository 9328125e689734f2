"""Auto-paginating video lists; provider base URLs from the environment; errors that say which
routes were tried and why, and which variant a video lacks."""

from urllib.parse import parse_qs

import pytest
from tests.sdk.scripted_gateway import video

from reapi import AsyncReAPI, InvalidRequestError, ModelNotFoundError, NoRouteAvailableError, ReAPI
from reapi._excerpt import EXCERPT_CHARS
from reapi.testing import Fault, OpenAISimulator, SimServer, json_answer
from reapi.testing.gemini_sim import GeminiSimulator


class FiveVideos:
    """GET /v1/videos over five videos, `limit` at a time after the `after` cursor."""

    ids = ["v1", "v2", "v3", "v4", "v5"]

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []

    def handle(self, method, path, query, headers, body, *, origin):
        asked = parse_qs(query)
        self.queries.append(asked)
        after = asked.get("after", [None])[0]
        start = self.ids.index(after) + 1 if after else 0
        limit = int(asked["limit"][0])
        chunk = self.ids[start : start + limit]
        more = start + limit < len(self.ids)
        return json_answer(
            200, {"object": "list", "data": [video(i) for i in chunk], "has_more": more}
        )


def three_pages():
    app = FiveVideos()
    return SimServer(app), app


def test_iterating_a_list_fetches_every_page():
    server, app = three_pages()
    with server, ReAPI(base_url=server.base_url + "/v1", api_key="rk") as client:
        first = client.videos.list(limit=2)
        assert [v.id for v in first.data] == ["v1", "v2"] and first.has_next_page()
        assert [v.id for v in first] == ["v1", "v2", "v3", "v4", "v5"]
    assert [q.get("after") for q in app.queries] == [None, ["v2"], ["v4"]]
    assert all(q["limit"] == ["2"] for q in app.queries)


def test_iter_pages_and_the_last_page():
    server, _ = three_pages()
    with server, ReAPI(base_url=server.base_url + "/v1", api_key="rk") as client:
        pages = list(client.videos.list(limit=2).iter_pages())
    assert [len(p.data) for p in pages] == [2, 2, 1]
    assert not pages[-1].has_next_page()
    with pytest.raises(RuntimeError, match="last page"):
        pages[-1].get_next_page()


async def test_async_list_is_awaitable_and_async_iterable():
    server, _ = three_pages()
    with server:
        async with AsyncReAPI(base_url=server.base_url + "/v1", api_key="rk") as client:
            ids = [v.id async for v in client.videos.list(limit=2)]
            assert ids == ["v1", "v2", "v3", "v4", "v5"]
            first = await client.videos.list(limit=2)
            assert [v.id for v in first.data] == ["v1", "v2"]
            pages = [p async for p in first.iter_pages()]
            assert [len(p.data) for p in pages] == [2, 2, 1]
            raw = await client.with_raw_response.videos.list(limit=2)
            assert raw.status_code == 200 and len(raw.parse().data) == 2


def test_in_process_list_pages_through_this_clients_videos(catalog):
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=1)) as sim:
        urls = {"primary": sim.base_url + "/v1"}
        with ReAPI(
            catalog=catalog, provider_keys={"primary": "sk-sim"}, provider_base_urls=urls
        ) as c:
            made = [c.videos.create(model="sim-video", prompt="p", seconds=4).id for _ in range(3)]
            listed = [v.id for v in c.videos.list(limit=2)]
    assert listed == list(reversed(made))


def test_provider_base_urls_come_from_the_environment(monkeypatch, catalog):
    with SimServer(OpenAISimulator("sk-sim")) as sim:
        monkeypatch.setenv("REAPI_PRIMARY_BASE_URL", sim.base_url + "/v1")
        with ReAPI(catalog=catalog, provider_keys={"primary": "sk-sim"}) as client:
            result = client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "primary"


def test_no_route_available_names_each_route_its_host_and_error(catalog):
    with (
        SimServer(OpenAISimulator("sk-sim")) as primary,
        SimServer(OpenAISimulator("sk-sim")) as backup,
    ):
        primary.faults.set(Fault.ERROR_500)
        backup.faults.set(Fault.RESET)
        urls = {
            "primary": primary.base_url + "/v1?key=sk-query-secret",
            "backup": f"http://user:pw@127.0.0.1:{backup.port}/v1",
        }
        keys = {"primary": "sk-sim", "backup": "sk-sim"}
        with ReAPI(catalog=catalog, provider_keys=keys, provider_base_urls=urls) as client:
            with pytest.raises(NoRouteAvailableError) as info:
                client.images.generate(model="gpt-image-2", prompt="p")
    message = str(info.value)
    assert (
        f"primary/gpt-image-2 at 127.0.0.1:{primary.port}: upstream_server_error (HTTP 500)"
        in message
    )
    assert f"backup/gpt-image-2 at 127.0.0.1:{backup.port}: upstream_unreachable" in message
    assert "sk-query-secret" not in message and "pw" not in message and "key=" not in message
    assert info.value.attempts[0].host == f"127.0.0.1:{primary.port}"


def test_a_mistyped_model_suggests_the_nearest(catalog):
    client = ReAPI(catalog=catalog, provider_keys={"primary": "k"})
    with pytest.raises(ModelNotFoundError) as info:
        client.images.generate(model="gpt-image-3", prompt="p")
    assert "did you mean 'gpt-image-2'?" in info.value.message
    assert "`reapi models` lists them" in info.value.message
    with pytest.raises(ModelNotFoundError) as info:
        client.images.generate(model="x" * 500, prompt="p")
    assert len(info.value.message) < 150  # a short excerpt of the id, not all of it
    # the excerpt every message of the SDK and the gateway uses (`reapi._excerpt`)
    assert "x" * EXCERPT_CHARS + "…" in info.value.message
    assert "x" * (EXCERPT_CHARS + 1) not in info.value.message


def test_a_thumbnail_a_provider_does_not_make_is_said_so():
    with SimServer(GeminiSimulator("sk-sim", polls_before_done=0)) as sim:
        urls = {"gemini": sim.base_url + "/v1beta"}
        with ReAPI(provider_keys={"gemini": "sk-sim"}, provider_base_urls=urls) as client:
            video = client.videos.create(model="veo-3.1", prompt="p", seconds=8)
            video = client.videos.wait(video.id, poll_interval=0.05)
            assert video.status == "completed"
            with pytest.raises(InvalidRequestError) as info:
                client.videos.download_content(video.id, variant="thumbnail")
    assert info.value.code == "variant_unavailable" and info.value.param == "variant"
    assert info.value.message == "this video has no thumbnail: gemini does not make one"
