"""The storage interface (put/get/delete/url) and its local-disk implementation.

A later backend (R2/S3) implements the same four methods. Writes are atomic: an object is either
fully present under its key or absent, so a row written after `put` never points at half a file.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

__all__ = ["LocalDiskStore", "ObjectStore", "StoredObject"]

#: Objects up to this size are read and written on the event loop itself.
_INLINE_LIMIT = 1024 * 1024
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")


@dataclass(frozen=True, slots=True)
class StoredObject:
    data: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"StoredObject(<{len(self.data)} bytes, {self.content_type}>)"


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> StoredObject | None: ...

    async def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str | None:
        """A direct URL for the object, or None when the gateway serves it itself."""


def _check_key(key: str) -> str:
    if not _SAFE_KEY.match(key) or ".." in key:
        raise ValueError("storage keys are generated ids, never user input")
    return key


class LocalDiskStore:
    """Objects as files under one directory. Each file starts with its content type and a
    newline, so that one write (then one rename) stores an object whole."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made_dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if len(data) <= _INLINE_LIMIT:
            # A small file is written in microseconds (no fsync): a thread hop would cost more.
            self._put(key, data, content_type)
        else:
            await anyio.to_thread.run_sync(self._put, key, data, content_type)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.parent not in self._made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)
        # Write beside the target, then rename: readers see all of it or nothing.
        tmp = path.parent / f".put-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content_type.encode("ascii", "replace") + b"\n")
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            small = path.stat().st_size <= _INLINE_LIMIT
        except FileNotFoundError:
            return None
        if small:
            return self._get(path)
        return await anyio.to_thread.run_sync(self._get, path)

    @staticmethod
    def _get(path: Path) -> StoredObject | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        content_type, _, data = raw.partition(b"\n")
        return StoredObject(data, content_type.decode("ascii", "replace"))

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str | None:
        return None
