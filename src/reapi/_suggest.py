""" "Did you mean ...?" for mistyped names. What an error may repeat of the name itself is
`reapi._excerpt.excerpt`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]

# difflib is quadratic in the name's length; a longer name is no likely typo of a known one.
_COMPARED = 200


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or '' when nothing is close enough to be a likely typo. The
    suggestion is one of `choices` (known names), never the caller's input."""
    close = difflib.get_close_matches(name[:_COMPARED], list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
