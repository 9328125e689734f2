"""The OpenAPI page, `/docs`: Swagger UI, whose files come from a CDN, held to what was checked.

FastAPI's own page loads `swagger-ui-dist@5` (whatever 5.x is newest) with no integrity check,
on the gateway's origin: the origin of the dashboard, where a signed-in person's session cookie
goes with every same-origin request. A bad release or a compromised CDN would have run there
with it. Here the files are one exact version, each with its SHA-384 (`integrity`: a browser
refuses a file with another hash), and the page's policy lets nothing else run, load or be
fetched: no favicon or validator badge from a third party either.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["add_docs_page"]

_DIST = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.36.0/"
_JS = _DIST + "swagger-ui-bundle.js"
_CSS = _DIST + "swagger-ui.css"
#: SHA-384 of each file as published on npm (`npm pack swagger-ui-dist@5.36.0`).
_INTEGRITY = {
    _JS: "sha384-fUpRgC19yPykTqzdrUbdAg8NTiu16NEKf9U12J+IJWCg8/1mEI8f2+PEIz60Wyd+",
    _CSS: "sha384-z/AtSaOHGn5MJ5auAHXUypohywlIWLBZo1jeGmhdpVIbCnFhxAH92cwdV41oyINc",
}


def _page(openapi_url: str, title: str) -> tuple[str, str]:
    """The page and its Content-Security-Policy."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=_JS,
        swagger_css_url=_CSS,
        swagger_favicon_url="/static/favicon.svg",
        oauth2_redirect_url=None,
        # No badge from validator.swagger.io (it would be sent the document's address).
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    for url, digest in _INTEGRITY.items():
        html = html.replace(f'"{url}"', f'"{url}" integrity="{digest}" crossorigin="anonymous"')
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    )
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_JS} {hashes}",
            # Swagger UI sets style attributes as it renders.
            f"style-src {_CSS} 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
    return html, policy


def add_docs_page(app: FastAPI, *, openapi_url: str) -> None:
    html, policy = _page(openapi_url, f"{app.title} - Swagger UI")
    headers = {
        "content-security-policy": policy,
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }

    async def docs(_: Request) -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    app.add_route("/docs", docs, include_in_schema=False)
