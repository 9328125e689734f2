"""The OpenAPI page, `/docs`: Swagger UI served by the gateway itself, under a strict policy.

FastAPI's own page loads `swagger-ui-dist@5` (whatever 5.x is newest) from jsDelivr, with no
integrity check, on the gateway's origin: the origin of the dashboard, where a signed-in
person's session cookie goes with every same-origin request. Loading it from any CDN, checked or
not, also hands every visitor's address to a third party the privacy policy does not name. So
the two files Swagger UI needs (its bundle and its stylesheet) come from the `fastapi-swagger`
package, which ships swagger-ui-dist's files as published, and the gateway serves them under
`/docs/`: the page makes no request to anyone else (favicon ours, no validator badge), and its
policy lets nothing else run, load or be fetched.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import metadata, resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

__all__ = ["add_docs_page"]

#: The package that ships swagger-ui-dist's files (`swagger-ui-bundle.js`, `swagger-ui.css`).
_PACKAGE = "fastapi-swagger"
_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def _asset_prefix() -> str:
    """Where the files are served: the package's version in the path, so that a browser's
    cached copy is never taken for another version's."""
    return f"/docs/swagger-ui/{metadata.version(_PACKAGE)}/"


def _page(openapi_url: str, title: str, prefix: str) -> tuple[str, str]:
    """The page and its Content-Security-Policy."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=prefix + "swagger-ui-bundle.js",
        swagger_css_url=prefix + "swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        oauth2_redirect_url=None,
        # No badge from validator.swagger.io (it would be sent the document's address).
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    )
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {hashes}",
            # Swagger UI sets style attributes as it renders.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
    return html, policy


def add_docs_page(app: FastAPI, *, openapi_url: str) -> None:
    prefix = _asset_prefix()
    html, policy = _page(openapi_url, f"{app.title} - Swagger UI", prefix)
    page_headers = {"content-security-policy": policy, **_HEADERS}

    async def docs(_: Request) -> HTMLResponse:
        return HTMLResponse(html, headers=page_headers)

    app.add_route("/docs", docs, include_in_schema=False)
    directory = resources.files(_PACKAGE.replace("-", "_")).joinpath("resources")
    # A day: the path changes with the version, so a cached copy is never a wrong one.
    headers = {"cache-control": "public, max-age=86400", **_HEADERS}
    for name, media_type in _FILES.items():
        path = str(directory.joinpath(name))

        async def asset(_: Request, path: str = path, media_type: str = media_type) -> FileResponse:
            return FileResponse(path, media_type=media_type, headers=headers)

        app.add_route(prefix + name, asset, methods=["GET", "HEAD"], include_in_schema=False)
