"""/docs in a real browser (Debian's Chromium): Swagger UI renders the gateway's OpenAPI document
at desktop and phone widths, with every request the page makes going to the gateway itself and
nothing refused by its Content-Security-Policy. Screenshots go to test-artifacts/docs/."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from tests.web.browser import (
    ARTIFACTS,
    chromium,  # noqa: F401  (fixture)
)
from tests.web.live import live_web_server

pytestmark = pytest.mark.browser

SHOTS = ARTIFACTS / "docs"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_swagger_ui_renders_from_the_gateway_alone(chromium, tmp_path, migrated_template):  # noqa: F811
    with live_web_server(tmp_path / "data", migrated_template) as live:
        origin = urlsplit(live.base_url).netloc
        for label, viewport in WIDTHS.items():
            context = chromium.new_context(viewport=viewport)
            page = context.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            refused: list[str] = []
            page.on(
                "console",
                lambda message: (
                    refused.append(message.text)
                    if "Content Security Policy" in message.text or message.type == "error"
                    else None
                ),
            )
            page.goto(live.base_url + "/docs")
            title = page.locator(".swagger-ui .info .title")
            title.wait_for(timeout=15_000)
            assert "reapi gateway" in title.inner_text()
            page.locator(".opblock-tag-section").first.wait_for()
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"docs-{label}.png"), full_page=False)
            assert requested, "the page made no request"
            elsewhere = [url for url in requested if urlsplit(url).netloc != origin]
            assert elsewhere == [], elsewhere
            assert refused == [], refused
            context.close()
