"""The simulated providers' own pages: plain HTML with a small inline stylesheet, no script and
no external assets, readable at phone width. And the HTTP answers that carry them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode, urlsplit, urlunsplit

from reapi.testing import Answer

__all__ = ["Choice", "chooser_page", "error_page", "html_answer", "redirect_answer", "with_query"]

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:#f3f4f6;color:#111827}
main{max-width:30rem;margin:3rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #d1d5db;border-radius:12px;padding:1.5rem}
.badge{display:inline-block;font-size:.75rem;font-weight:600;letter-spacing:.04em;
text-transform:uppercase;color:#92400e;background:#fef3c7;border-radius:999px;padding:.1rem .6rem}
h1{font-size:1.35rem;line-height:1.3;margin:.75rem 0 .25rem}
p{margin:.25rem 0 1rem;color:#4b5563}
ul{list-style:none;margin:0 0 1rem;padding:0}
li+li{margin-top:.5rem}
button{display:block;width:100%;min-height:3rem;text-align:left;font:inherit;cursor:pointer;
border:1px solid #d1d5db;border-radius:8px;background:#fff;color:inherit;padding:.6rem .9rem}
button:hover{background:#f9fafb;border-color:#9ca3af}
button:focus-visible{outline:3px solid #2563eb;outline-offset:2px}
.name{display:block;font-weight:600}
.detail{display:block;font-size:.9rem;color:#4b5563;overflow-wrap:anywhere}
.warn{color:#b45309}
.cancel{text-align:center;background:#f9fafb;color:#374151}
.foot{font-size:.85rem;color:#6b7280;margin:1rem 0 0}
code{font-size:.85rem;overflow-wrap:anywhere}
@media (max-width:480px){main{margin:1rem auto}.card{padding:1.25rem}}
"""


@dataclass(frozen=True, slots=True)
class Choice:
    """One button of a chooser page: `value` is what the form posts as `identity`."""

    value: str
    name: str
    detail: str
    warning: str = ""


def html_answer(status: int, page: str) -> Answer:
    headers = {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"}
    return status, headers, page.encode()


def redirect_answer(location: str) -> Answer:
    return 302, {"location": location, "cache-control": "no-store"}, b""


def with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` added to its query (what it already has is kept)."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    added = urlencode(dict(params))
    return urlunsplit((scheme, netloc, path, f"{query}&{added}" if query else added, fragment))


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="card">{body}</div></main></body></html>'
    )


def chooser_page(
    *,
    provider: str,
    app_name: str,
    action: str,
    fields: Mapping[str, str],
    choices: Iterable[Choice],
) -> str:
    """'Sign in to <app> with <provider> (simulated)': one button per identity, and Cancel.

    The form posts `fields` back (the authorization request) with `identity` or `cancel`.
    """
    returns_to = urlsplit(fields.get("redirect_uri", "")).netloc
    title = f"Sign in to {app_name} with {provider} (simulated)"
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    buttons = []
    for choice in choices:
        warning = (
            f'<span class="detail warn">{escape(choice.warning)}</span>' if choice.warning else ""
        )
        buttons.append(
            f'<li><button type="submit" name="identity" value="{escape(choice.value)}">'
            f'<span class="name">{escape(choice.name)}</span>'
            f'<span class="detail">{escape(choice.detail)}</span>{warning}</button></li>'
        )
    listing = (
        f'<ul aria-label="Simulated {escape(provider)} accounts">{"".join(buttons)}</ul>'
        if buttons
        else f"<p>No simulated {escape(provider)} accounts are configured.</p>"
    )
    body = (
        f'<span class="badge">Simulated {escape(provider)}</span>'
        f"<h1>{escape(title)}</h1>"
        f"<p>Choose the account to continue as. Nothing here reaches {escape(provider)}.</p>"
        f'<form method="post" action="{escape(action)}">{hidden}{listing}'
        '<button type="submit" name="cancel" value="1" class="cancel">Cancel</button></form>'
        '<p class="foot">A loopback test double of the provider\'s sign-in page.'
        + (f" You return to <code>{escape(returns_to)}</code>." if returns_to else "")
        + "</p>"
    )
    return _document(title, body)


def error_page(provider: str, heading: str, message: str) -> str:
    title = f"{heading} ({provider}, simulated)"
    body = (
        f'<span class="badge">Simulated {escape(provider)}</span>'
        f"<h1>{escape(heading)}</h1><p>{escape(message)}</p>"
    )
    return _document(title, body)
