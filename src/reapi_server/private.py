"""Everything the gateway keeps on disk is for its own user only: directories 0700, files 0600.

The database and its WAL hold file ids, which are bearer capabilities for outputs, and the
outputs are the users' images and videos. Modes are set when a file or directory is made,
whatever the process's umask, and tightened when an earlier version left them open.
"""

from __future__ import annotations

import logging
import os
import stat
from contextlib import suppress
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "make_private_dirs", "private_file", "tighten"]

log = logging.getLogger("reapi_server")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def tighten(path: Path, mode: int) -> None:
    """Take away every permission bit `mode` lacks (group and others); a missing path is fine."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)
    except FileNotFoundError:
        return
    except PermissionError:  # not ours to change: say so, once per start
        log.warning("cannot make a data file private", extra={"code": "PermissionError"})


def make_private_dirs(path: Path) -> None:
    """`path` and whichever of its parents are missing, each made 0700."""
    if path.is_dir():
        return
    make_private_dirs(path.parent)
    with suppress(FileExistsError):
        os.mkdir(path, PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)  # exactly, whatever the umask took away


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists; tighten it if it does."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        tighten(path, PRIVATE_FILE)
