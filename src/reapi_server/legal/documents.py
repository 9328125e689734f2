"""Policies as Markdown. Each file starts with a few `key: value` lines (`version:` required,
`title:` optional), then a line `---`, then the text. The text may name facts of this
installation in double braces (`{{retention_days}}`, `{{subprocessors}}`, ...), filled in from
its configuration so the policy says what the software really does here.

Rendering is CommonMark without raw HTML (markdown-it-py's safe defaults): an operator's file
cannot put a script on the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # markdown-it is imported by the first policy page, not at start-up
    from markdown_it import MarkdownIt

__all__ = ["POLICIES", "LegalFacts", "PolicyDocument", "load_policy", "policy_versions"]

#: The policies a person accepts at sign-up (their versions are recorded with the consent).
POLICIES = ("terms", "privacy")

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_HEADER_LINE = re.compile(r"([a-z_]+):\s*(.*)")


@dataclass(frozen=True, slots=True)
class LegalFacts:
    """What the policies may quote about this installation."""

    site_name: str
    operator_name: str
    operator_contact: str
    retention_days: str
    session_idle_days: str
    session_max_days: str
    #: A Markdown list.
    subprocessors: str
    #: How long webhook deliveries are kept (never past `retention_days`).
    webhook_retention_days: str
    #: How long an idempotency record answers a retry.
    idempotency_hours: str
    audit_retention_days: str

    def values(self) -> Mapping[str, str]:
        return {
            "site_name": self.site_name,
            "operator_name": self.operator_name,
            "operator_contact": self.operator_contact,
            "retention_days": self.retention_days,
            "session_idle_days": self.session_idle_days,
            "session_max_days": self.session_max_days,
            "subprocessors": self.subprocessors,
            "webhook_retention_days": self.webhook_retention_days,
            "idempotency_hours": self.idempotency_hours,
            "audit_retention_days": self.audit_retention_days,
        }


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    name: str
    title: str
    version: str
    #: Safe HTML (no raw HTML from the source passes through).
    html: str


class PolicyFileError(ValueError):
    pass


@cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt  # with the first page that shows a policy

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def _source(name: str, legal_dir: Path | None) -> str:
    if legal_dir is not None:
        path = legal_dir / f"{name}.md"
        if path.is_file():
            return path.read_text("utf-8")
    return resources.files(__package__).joinpath(f"{name}.md").read_text("utf-8")


def _split(name: str, source: str) -> tuple[dict[str, str], str]:
    header: dict[str, str] = {}
    lines = source.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "---":
            return header, "\n".join(lines[index + 1 :])
        match = _HEADER_LINE.fullmatch(line.strip())
        if match is None:
            break
        header[match.group(1)] = match.group(2).strip()
    raise PolicyFileError(f"{name}.md: start with 'version: ...' lines, then a '---' line")


def _read(name: str, legal_dir: Path | None) -> tuple[dict[str, str], str]:
    header, body = _split(name, _source(name, legal_dir))
    if not header.get("version"):
        raise PolicyFileError(f"{name}.md: the header has no version")
    return header, body


def policy_versions(legal_dir: Path | None) -> dict[str, str]:
    """{"terms": version, "privacy": version}: what a sign-up accepts."""
    return {name: _read(name, legal_dir)[0]["version"] for name in POLICIES}


def load_policy(name: str, legal_dir: Path | None, facts: LegalFacts) -> PolicyDocument:
    header, body = _read(name, legal_dir)
    values = facts.values()
    filled = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)
    return PolicyDocument(
        name=name,
        title=header.get("title", name.capitalize()),
        version=header["version"],
        html=_markdown().render(filled),
    )
