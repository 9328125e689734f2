"""The site's navigation, defined once: the links of the header (signed out, signed in, admin)
and of the footer. Pages do not repeat them; `render` gives every template `nav`, with the
item of the current page marked. A page whose path does not say which item it belongs to
passes `nav_current="<href>"`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..models import User

__all__ = [
    "ACCOUNT",
    "ADMIN",
    "DOCS_URL",
    "FOOTER",
    "LEGAL",
    "PUBLIC",
    "NavItem",
    "NavLink",
    "Navigation",
    "current_href",
    "navigation",
]

#: The project's documentation (`Settings.docs_url` replaces it).
DOCS_URL = "https://reapi.dev/docs"


@dataclass(frozen=True, slots=True)
class NavLink:
    label: str
    href: str


#: For everyone, in the header when signed out and in the footer always.
PUBLIC = (
    NavLink("Models", "/models"),
    NavLink("Status", "/status"),
    NavLink("Docs", DOCS_URL),
    NavLink("Changelog", "/changelog"),
)
#: A signed-in person's pages.
ACCOUNT = (
    NavLink("Dashboard", "/dashboard"),
    NavLink("Keys", "/dashboard/keys"),
    NavLink("Usage", "/dashboard/usage"),
    NavLink("Outputs", "/dashboard/outputs"),
    NavLink("Billing", "/dashboard/billing"),
    NavLink("Settings", "/settings"),
)
ADMIN = NavLink("Admin", "/admin")
LEGAL = (
    NavLink("Privacy", "/legal/privacy"),
    NavLink("Terms", "/legal/terms"),
    NavLink("Cookies", "/legal/cookies"),
)
FOOTER = (NavLink("Contact", "/contact"),)


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    href: str
    current: bool

    @property
    def external(self) -> bool:
        return self.href.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class Navigation:
    #: The header's links.
    main: tuple[NavItem, ...]
    #: The footer's: the public pages, contact, the policies.
    product: tuple[NavItem, ...]
    legal: tuple[NavItem, ...]
    signed_in: bool


def current_href(path: str, links: Sequence[NavLink]) -> str | None:
    """The link the page at `path` belongs to: the longest href that is the path or one of
    its parent folders (`/dashboard/keys/x` → Keys, not Dashboard)."""
    best: str | None = None
    for link in links:
        if (path == link.href or path.startswith(link.href.rstrip("/") + "/")) and (
            best is None or len(link.href) > len(best)
        ):
            best = link.href
    return best


def _items(links: Sequence[NavLink], current: str | None) -> tuple[NavItem, ...]:
    return tuple(NavItem(link.label, link.href, link.href == current) for link in links)


def navigation(
    user: User | None, path: str, *, docs_url: str = DOCS_URL, current: str | None = None
) -> Navigation:
    public = tuple(
        NavLink(link.label, docs_url) if link.href == DOCS_URL else link for link in PUBLIC
    )
    if user is None:
        main: tuple[NavLink, ...] = public
    else:
        main = ACCOUNT + ((ADMIN,) if user.role == "admin" else ())
    everything = (*main, *public, *FOOTER, *LEGAL)
    chosen = current if current is not None else current_href(path, everything)
    return Navigation(
        main=_items(main, chosen),
        product=_items((*public, *FOOTER), chosen),
        legal=_items(LEGAL, chosen),
        signed_in=user is not None,
    )
