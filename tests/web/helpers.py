"""Helpers for the web half's tests: a browser-like client (its own cookie jar, CSRF tokens
read from the page's forms), the mail the outbox wrote, and a clock tests can move."""

from __future__ import annotations

import email
import email.policy
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from reapi_server.email.factory import build_sender
from reapi_server.email.outbox import OutboxPolicy, deliver_due
from reapi_server.runtime import Runtime
from reapi_server.web.context import WebContext

CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
PASSWORD = "correct horse battery staple 42"


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def new_email() -> str:
    return f"person-{secrets.token_hex(4)}@example.com"


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Browser:
    """One browser: its own cookies, forms posted with the token of the page they are on."""

    def __init__(
        self, app: object, base_url: str = "http://gateway.test", address: str = "127.0.0.1"
    ) -> None:
        # `address`: the client address the gateway sees (the transport's default otherwise).
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 123)),  # type: ignore[arg-type]
            base_url=base_url,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        return await self.client.get(path, **kwargs)  # type: ignore[arg-type]

    async def token(self, page: str) -> str:
        response = await self.get(page)
        assert response.status_code == 200, (page, response.status_code)
        return csrf_of(response.text)

    async def submit(
        self, page: str, action: str, data: dict[str, str], **kwargs: object
    ) -> httpx.Response:
        """Open `page`, then post its form to `action` with `data` and the page's token."""
        token = await self.token(page)
        return await self.client.post(
            action,
            data={**data, "csrf_token": token},
            **kwargs,  # type: ignore[arg-type]
        )

    async def sign_up(self, email_address: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.submit(
            "/signup",
            "/signup",
            {
                "email": email_address,
                "password": password,
                "age_16_plus": "yes",
                "accept_terms": "yes",
            },
        )
        assert response.status_code == 303, response.text
        return response

    async def sign_in(self, email_address: str, password: str = PASSWORD) -> httpx.Response:
        return await self.submit("/login", "/login", {"email": email_address, "password": password})

    def cookie(self, name: str) -> str | None:
        return self.client.cookies.get(name)


@dataclass
class Mail:
    to: str
    subject: str
    text: str
    html: str
    path: Path
    headers: dict[str, str] = field(default_factory=dict)

    def link(self, path: str) -> str:
        """The link to `path` (with its query) in the message."""
        match = re.search(r"https?://[^\s/]+(" + re.escape(path) + r"[^\s]*)", self.text)
        assert match, f"no {path} link in {self.subject!r}"
        return match.group(1)

    def token(self, path: str) -> str:
        return parse_qs(urlsplit(self.link(path)).query)["token"][0]


def web_context(gateway: object) -> WebContext:
    """The web half's context of a gateway (the sub-application mounted last)."""
    app = gateway.app  # type: ignore[attr-defined]
    mounted = app.routes[-1].app
    context: WebContext = mounted.state.web
    return context


def deletion_services(gateway: object) -> dict[str, object]:
    """What `accounts.deletion.delete_user` takes besides the session and the user, as the
    server's Settings → Data uses it."""
    context = web_context(gateway)
    return {
        "db": context.db,
        "mail": context.identity.mail,
        "throttle": context.identity.throttle,
    }


async def deliver(rt: Runtime) -> int:
    """What the outbox loop does in a server: send every due message."""
    return await deliver_due(rt.db, build_sender(rt.settings), rt.now, OutboxPolicy())


def read_mail(directory: Path) -> list[Mail]:
    found = []
    for path in sorted(directory.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        found.append(
            Mail(
                to=str(parsed["To"]),
                subject=str(parsed["Subject"]),
                text=text.get_content() if text is not None else "",  # type: ignore[union-attr]
                html=html.get_content() if html is not None else "",  # type: ignore[union-attr]
                path=path,
                headers={k: str(v) for k, v in parsed.items()},
            )
        )
    return found


async def mail_to(rt: Runtime, address: str) -> list[Mail]:
    await deliver(rt)
    return [m for m in read_mail(rt.settings.mail_dir) if m.to == address]
