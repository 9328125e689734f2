"""How much of a caller's value a message may repeat: a short excerpt, never the value.

An error message that names what was sent (an unknown model id, a field name) helps the caller,
but the value may be megabytes, or carry data: messages go into answers, exceptions and the
caller's own logs. So every message built from input goes through `excerpt`.
"""

from __future__ import annotations

__all__ = ["EXCERPT_CHARS", "excerpt"]

EXCERPT_CHARS = 64


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of `value` (then an ellipsis); unprintable ones replaced."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else "\ufffd" for c in cut)
    return shown + "…" if len(text) > limit else shown
