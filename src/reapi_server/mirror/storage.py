"""The storage interface (put/get/delete/url) and its local-disk implementation.

A later backend (R2/S3) implements the same four methods. Writes are atomic: an object is either
fully present under its key or absent, so a row written after `put` never points at half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

__all__ = ["LocalDiskStore", "ObjectStore", "StoredObject"]

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
    """Objects as files under one directory; the content type sits beside each in `.type`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(self._put, key, data, content_type)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, content in ((path.with_suffix(".type"), content_type.encode()), (path, data)):
            # Write beside the target, then rename: readers see all of it or nothing.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(content)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    async def get(self, key: str) -> StoredObject | None:
        return await anyio.to_thread.run_sync(self._get, key)

    def _get(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            content_type = path.with_suffix(".type").read_text() or "application/octet-stream"
        except FileNotFoundError:
            content_type = "application/octet-stream"
        return StoredObject(data, content_type)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_suffix(".type").unlink(missing_ok=True)

    def url(self, key: str) -> str | None:
        return None
