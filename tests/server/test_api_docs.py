"""/docs: Swagger UI served by the gateway itself (no CDN is told of any visitor), under a policy
that lets nothing else run, load or be fetched (FastAPI's page loaded whatever 5.x was newest
from jsDelivr, unchecked, on the dashboard's origin, with a favicon from a third party; a pinned
jsDelivr copy still sent every visitor's address there)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest


def _policy(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


async def test_the_docs_page_loads_nothing_from_a_third_party(gateway):
    response = await gateway.client.get("/docs")
    assert response.status_code == 200
    page = response.text
    assert "https://" not in page and "http://" not in page
    assert "fastapi.tiangolo.com" not in page
    assert '"validatorUrl": null' in page

    tags = re.findall(r"<(?:script|link)[^>]*(?:src|href)=\"([^\"]+)\"", page)
    assert len(tags) == 3, tags  # the bundle, its stylesheet and our favicon
    assert all(url.startswith("/") and not url.startswith("//") for url in tags), tags

    policy = _policy(response.headers["content-security-policy"])
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    scripts = policy["script-src"].split()
    assert all(s == "'self'" or s.startswith("'sha256-") for s in scripts), scripts
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    for body in inline:  # the page's own start-up script, allowed by its hash alone
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts


@pytest.mark.parametrize(
    ("name", "media_type", "marker"),
    [
        ("swagger-ui-bundle.js", "text/javascript", b"SwaggerUIBundle"),
        ("swagger-ui.css", "text/css", b".swagger-ui"),
    ],
)
async def test_the_gateway_serves_swagger_uis_files(gateway, name, media_type, marker):
    page = (await gateway.client.get("/docs")).text
    (url,) = re.findall(rf"\"(/docs/[^\"]*/{re.escape(name)})\"", page)
    response = await gateway.client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in response.headers["cache-control"]
    assert marker in response.content[:2_000_000]
    head = await gateway.client.head(url)
    assert head.status_code == 200
