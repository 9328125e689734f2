"""/docs: Swagger UI from a CDN, at one exact version, each file held to its SHA-384, under a
policy that lets nothing else run, load or be fetched (FastAPI's page loaded whatever 5.x was
newest, unchecked, on the dashboard's origin, with a favicon from a third party)."""

from __future__ import annotations

import base64
import hashlib
import re

PINNED = re.compile(r"https://cdn\.jsdelivr\.net/npm/swagger-ui-dist@\d+\.\d+\.\d+/")


async def test_the_docs_page_loads_only_checked_files(gateway):
    response = await gateway.client.get("/docs")
    assert response.status_code == 200
    page = response.text
    tags = re.findall(r"<(?:script|link)[^>]*(?:src|href)=\"https://[^>]*>", page)
    assert len(tags) == 2, tags  # the bundle and its stylesheet, nothing else from outside
    for tag in tags:
        assert PINNED.search(tag), tag
        assert re.search(r'integrity="sha384-[A-Za-z0-9+/]{64}"', tag), tag
        assert 'crossorigin="anonymous"' in tag
    assert "fastapi.tiangolo.com" not in page
    assert '"validatorUrl": null' in page

    header = response.headers["content-security-policy"]
    policy = dict(part.strip().split(" ", 1) for part in header.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    scripts = policy["script-src"].split()
    assert all(PINNED.match(s) or s.startswith("'sha256-") for s in scripts), scripts
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    for body in inline:  # the page's own start-up script, allowed by its hash alone
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
