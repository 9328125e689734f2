"""Objects as files under one directory (the default backend, served by the gateway itself).

Each file starts with its content type and a newline, so that one file (then one rename) stores an
object whole. A body is written to a temp file beside its target and renamed over it: readers see
all of it or nothing, and a failed or cancelled write leaves no file behind. A process killed
mid-write leaves its temp file; the retention job sweeps it (`sweep_abandoned`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import anyio

from ..private import PRIVATE_FILE, make_private_dirs
from .storage import Body, OpenedObject, check_key, rechunk

__all__ = ["LocalDiskStore"]

#: Objects up to this size are read and written on the event loop itself: a small file takes
#: microseconds (no fsync), less than a thread hop.
_INLINE_LIMIT = 1024 * 1024
#: Streams are written and read in pieces of this size, each on a worker thread.
_PIECE = 1024 * 1024
#: Temp files beside their targets: `.put-<random>`. Never a key (keys start with a letter).
TEMP_PREFIX = ".put-"


class LocalDiskStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, body: Body, content_type: str) -> int:
        path = self._path(key)
        if isinstance(body, bytes) and len(body) <= _INLINE_LIMIT:
            handle, tmp = _create_temp(path, content_type)
            with _removed_on_failure(tmp):
                with handle:
                    handle.write(body)
                os.replace(tmp, path)
            return len(body)
        handle, tmp = await anyio.to_thread.run_sync(_create_temp, path, content_type)
        size = 0
        # Worker threads are not abandoned on cancellation, so no write outlives the handle.
        with _removed_on_failure(tmp):
            try:
                async for piece in rechunk(body, _PIECE):
                    await anyio.to_thread.run_sync(handle.write, piece)
                    size += len(piece)
            finally:
                handle.close()
            os.replace(tmp, path)
        return size

    async def open(self, key: str) -> OpenedObject | None:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None
        header = handle.readline(256)
        size = os.fstat(handle.fileno()).st_size - len(header)
        inline = size <= _INLINE_LIMIT

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                piece = (
                    handle.read(_PIECE)
                    if inline
                    else await anyio.to_thread.run_sync(handle.read, _PIECE)
                )
                if not piece:
                    return
                yield piece

        async def close() -> None:
            handle.close()

        content_type = header.rstrip(b"\n").decode("ascii", "replace")
        return OpenedObject(content_type, size, chunks(), close)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        if path.parent != self.root:
            with suppress(OSError):  # the task's directory, once its last file is gone
                path.parent.rmdir()

    async def delete_prefix(self, prefix: str) -> None:
        directory = self._path(prefix.rstrip("/"))
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))

    def url(self, key: str) -> str | None:
        return None

    async def sweep_abandoned(self, before: float) -> int:
        return await anyio.to_thread.run_sync(self._sweep_abandoned, before)

    def _sweep_abandoned(self, before: float) -> int:
        """A write in progress touches its temp file at least every piece (and a stalled
        download is cut off long before `before`): an older one was left by a dead process."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for tmp in list(self.root.rglob(f"{TEMP_PREFIX}*")):  # listed before any rmdir
            try:
                if tmp.stat().st_mtime >= before:
                    continue
                tmp.unlink()
            except FileNotFoundError:  # finished or removed meanwhile
                continue
            removed += 1
            with suppress(OSError):  # the task's directory, when the dead write made it
                tmp.parent.rmdir()
        return removed


def _create_temp(path: Path, content_type: str) -> tuple[BinaryIO, Path]:
    tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    handle = os.fdopen(_open_new(tmp), "wb")
    handle.write(content_type.encode("ascii", "replace") + b"\n")
    return handle, tmp


def _open_new(tmp: Path) -> int:
    """Create the temp file; first its task's directory when this is the task's first object
    (or when a failed writer has just removed the empty directory)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for _ in range(2):
        try:
            return os.open(tmp, flags, PRIVATE_FILE)
        except FileNotFoundError:
            make_private_dirs(tmp.parent)
    return os.open(tmp, flags, PRIVATE_FILE)


@contextmanager
def _removed_on_failure(tmp: Path) -> Iterator[None]:
    """Delete the temp file when the block fails or is cancelled, and the task's directory
    when nothing else is in it: a failed task leaves nothing behind."""
    try:
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        with suppress(OSError):  # not empty: an earlier output of the task, or another writer
            tmp.parent.rmdir()
        raise
