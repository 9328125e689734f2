"""A real full disk for the tests: a small tmpfs mounted over a directory, then filled up.

Mounting needs root (CI runs the suite as root); elsewhere the tests that need it are skipped.
Writes then fail the way they do on a full disk in production (ENOSPC, SQLITE_FULL), which no
mock, read-only flag or chmod reproduces (root ignores file modes anyway)."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["fill", "small_filesystem"]

_FILLER = ".filler"


@contextmanager
def small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (created if missing) for the block's duration."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Take every free block of the filesystem holding `path`."""
    with (path / _FILLER).open("ab", buffering=0) as handle:
        block = b"\0" * 4096
        while True:
            try:
                if handle.write(block) == 0:
                    return
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                return


def free(path: Path) -> None:
    """Give the blocks back."""
    (path / _FILLER).unlink(missing_ok=True)
