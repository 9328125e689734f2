"""The error of a configuration the gateway cannot run with."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """The message says what to change, in one line, and never holds a secret's value."""
