"""A person at a simulated provider's page, without a browser: read the page's form as a
browser would (action, hidden fields) and press one of its buttons."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "button":
            self.buttons.append((values.get("name", ""), values.get("value", "")))


def read_form(page: str) -> _Form:
    form = _Form()
    form.feed(page)
    return form


def press(client: httpx.Client, authorize_url: str, button: tuple[str, str]) -> httpx.Response:
    """Open the chooser page and press `button` (name, value): the provider's redirect."""
    page = client.get(authorize_url)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    form = read_form(page.text)
    assert button in form.buttons, form.buttons
    name, value = button
    return client.post(urljoin(authorize_url, form.action), data={**form.fields, name: value})


def choose(client: httpx.Client, authorize_url: str, identity_id: str) -> str:
    """The callback URL the provider sends the browser to once `identity_id` is chosen."""
    answer = press(client, authorize_url, ("identity", identity_id))
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]
