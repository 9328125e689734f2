"""The web half is built by its first request, not at start-up (issue 15: idle RSS): the API
answers without it, two first page requests at once build it once and both get their page."""

import asyncio

from reapi_server.web.mount import LazyWebApp


def _web_half(gateway) -> LazyWebApp:
    mounted = gateway.app.routes[-1].app
    assert isinstance(mounted, LazyWebApp)
    return mounted


async def test_the_api_answers_without_building_the_web_half(make_gateway):
    gateway = await make_gateway()
    _, key = await gateway.account()
    response = await gateway.client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert _web_half(gateway)._app is None


async def test_two_first_page_requests_build_it_once(make_gateway, monkeypatch):
    gateway = await make_gateway(public_base_url="http://gateway.test")
    web = _web_half(gateway)
    builds = []
    build = web._build

    def counted():
        builds.append(1)
        return build()

    monkeypatch.setattr(web, "_build", counted)
    first, second = await asyncio.gather(
        gateway.client.get("/login"),
        gateway.client.get("/login"),
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert "<form" in first.text and "<form" in second.text
    assert builds == [1]
    again = await gateway.client.get("/")
    assert again.status_code == 200
    assert builds == [1]
