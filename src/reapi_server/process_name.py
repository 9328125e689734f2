"""The serving processes' name, as `ps`, `top` and `pgrep reapi-server` show it.

`serve` with one worker replaces itself with a fresh interpreter (`python -c ...`), and each of
`--workers N` is a spawned interpreter: the kernel would name them all after Python. Linux keeps
a process's short name (15 bytes) apart from its command line; `prctl(PR_SET_NAME)` sets it for
the calling thread, and the threads started after it inherit it.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["SERVING_NAME", "name_this_process"]

SERVING_NAME = "reapi-server"
_PR_SET_NAME = 15


def name_this_process(name: str = SERVING_NAME) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):  # no libc to ask: keep the interpreter's name
        return
