"""The changelog page: CHANGELOG.md as shipped inside the package (the wheel carries a copy;
a checkout links to the repository's file), rendered once per process."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from markdown_it import MarkdownIt

__all__ = ["changelog_html", "changelog_source"]

#: "## [1.2.0] - 2027-01-31": the brackets are a link reference the file may not define.
_RELEASE = re.compile(r"^## \[([^\]]+)\]", re.M)


def changelog_source() -> str:
    return resources.files("reapi_server.site").joinpath("CHANGELOG.md").read_text("utf-8")


@cache
def changelog_html() -> str:
    """Safe HTML (raw HTML in the file is shown as text), without the file's own title and
    introduction: the page has its own."""
    source = changelog_source()
    first_release = source.find("\n## ")
    body = source[first_release + 1 :] if first_release >= 0 else source
    body = _RELEASE.sub(r"## \1", body)
    markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})
    html: str = markdown.render(body)
    return html
