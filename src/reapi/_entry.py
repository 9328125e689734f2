"""The `reapi` command's entry point: Ctrl-C at any stage ends it with one line, `interrupted`,
and exit code 130 (128 + SIGINT, as a shell reports it).

Importing the command line takes most of a second (httpx, pydantic, rich, typer): Ctrl-C then
printed a traceback. Once it is imported, `reapi.cli.main` says the line for a command typer
ended silently."""

from __future__ import annotations

import signal
import sys
import threading
from typing import NoReturn

__all__ = ["interrupted", "main"]

#: What a shell reports for a program that SIGINT ended.
INTERRUPTED = 130


def interrupted(said: bool = False) -> NoReturn:
    """Leave after Ctrl-C: a second one no longer interrupts the way out (its cleanup, its
    line); `said`: a command already said what was interrupted."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not said:
        print("interrupted", file=sys.stderr, flush=True)
    sys.exit(INTERRUPTED)


def main() -> None:
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        interrupted()
