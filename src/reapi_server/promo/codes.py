"""What a promotion code looks like: 4 to 40 letters, digits, hyphens or underscores, matched
without regard to case (stored upper case). Generated codes avoid the characters people
misread (0/O, 1/I/L) and come in groups of four."""

from __future__ import annotations

import re
import secrets

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "generate", "normalise", "well_formed"]

MIN_LENGTH = 4
MAX_LENGTH = 40
_SHAPE = re.compile(r"[A-Z0-9_-]+")
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def normalise(text: str) -> str:
    """As typed → as stored: surrounding space dropped, upper case."""
    return text.strip().upper()


def well_formed(code: str) -> bool:
    """A normalised code of the allowed length and characters."""
    return MIN_LENGTH <= len(code) <= MAX_LENGTH and _SHAPE.fullmatch(code) is not None


def generate(groups: int = 3) -> str:
    """A new random code, like `K7QX-M4RT-ZP9H` (about 59 bits: too many to guess)."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(groups))
