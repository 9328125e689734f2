"""Email addresses as identity keeps them: trimmed, lower case, plausibly deliverable."""

from __future__ import annotations

import re

from .errors import InvalidEmail

__all__ = ["normalise_email"]

# One @, something on each side, a dot in the domain, no spaces: what a form can check. The
# verification mail proves the rest.
_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
#: The longest address SMTP can carry (RFC 5321 path limit).
_MAX = 254


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if not email:
        raise InvalidEmail("Enter your email address.")
    if len(email) > _MAX or _SHAPE.fullmatch(email) is None:
        raise InvalidEmail()
    return email
