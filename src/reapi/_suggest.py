""" "Did you mean ...?" for mistyped names, and the short excerpt of input an error may repeat."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "excerpt"]

_EXCERPT = 40


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """At most `limit` characters of what a caller sent, quoted, for an error message."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or '' when nothing is close enough to be a likely typo."""
    close = difflib.get_close_matches(name[:200], list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
