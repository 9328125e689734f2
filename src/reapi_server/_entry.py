"""The `reapi-server` command's entry point: say which extra to install before importing
anything that needs it (a bare `pip install reapi` has the SDK, not the gateway), and end on
Ctrl-C with one line and exit code 130, whatever stage it comes at."""

from __future__ import annotations

import signal
import sys
import threading
from typing import NoReturn

from .extras import SERVER_PACKAGES, MissingExtraError, missing

__all__ = ["main"]


#: What a shell reports for a program that SIGINT ended.
INTERRUPTED = 130


def interrupted() -> NoReturn:
    """Leave after Ctrl-C with one line and exit code 130; a second Ctrl-C no longer
    interrupts the way out."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("interrupted", file=sys.stderr, flush=True)
    sys.exit(INTERRUPTED)


def main() -> None:
    """Ctrl-C during the imports (over a second: FastAPI, SQLAlchemy, ...) printed a
    traceback, and typer ends a command it interrupts with exit code 130 but no word: both end
    with `interrupted` now. `serve` stops on Ctrl-C as it always did (a graceful drain)."""
    absent = missing(*SERVER_PACKAGES)
    if absent:
        print(f"error: {MissingExtraError('reapi-server', 'server', absent)}", file=sys.stderr)
        sys.exit(1)
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        interrupted()
    except SystemExit as leaving:
        if leaving.code == INTERRUPTED:
            interrupted()
        raise
