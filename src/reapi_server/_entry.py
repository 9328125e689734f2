"""The `reapi-server` command's entry point: say which extra to install before importing
anything that needs it (a bare `pip install reapi` has the SDK, not the gateway)."""

from __future__ import annotations

import sys

from .extras import SERVER_PACKAGES, MissingExtraError, missing

__all__ = ["main"]


def main() -> None:
    absent = missing(*SERVER_PACKAGES)
    if absent:
        print(f"error: {MissingExtraError('reapi-server', 'server', absent)}", file=sys.stderr)
        sys.exit(1)
    from .cli import main as run

    run()
