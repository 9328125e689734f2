"""The storage interface every backend implements (local disk, S3-compatible).

Writes are atomic: an object is either fully present under its key or absent, so a row written
after `put` never points at half a file. Bodies may be streams, so that a large video passes
through in bounded pieces and is never held whole in memory.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "CACHE_CONTROL",
    "Body",
    "ObjectStore",
    "OpenedObject",
    "StoredObject",
    "check_key",
    "read_object",
    "rechunk",
]

#: What `put` takes: the whole object, or its bytes as they arrive.
Body = bytes | AsyncIterable[bytes]

#: How long clients may keep an output without asking again: not at all. An output may be
#: deleted any day (by its owner, or by retention); a cache that revalidates learns it at once.
CACHE_CONTROL = "private, no-cache"

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")


def check_key(key: str) -> str:
    """Keys and prefixes are built from generated ids only; anything else is a bug."""
    if not _SAFE_KEY.match(key) or ".." in key or "//" in key:
        raise ValueError("storage keys are generated ids, never user input")
    return key


@dataclass(frozen=True, slots=True)
class StoredObject:
    data: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"StoredObject(<{len(self.data)} bytes, {self.content_type}>)"


@dataclass(slots=True)
class OpenedObject:
    """An object being read: its type and size at once, its bytes as `chunks`. Whoever opens it
    closes it (`aclose`), also when the bytes are not read to the end."""

    content_type: str
    size: int
    chunks: AsyncIterator[bytes]
    _close: Callable[[], Awaitable[None]] = field(repr=False)

    async def aclose(self) -> None:
        await self._close()

    async def read(self) -> bytes:
        try:
            return b"".join([chunk async for chunk in self.chunks])
        finally:
            await self.aclose()


class ObjectStore(Protocol):
    async def put(self, key: str, body: Body, content_type: str) -> int:
        """Store `body` under `key` whole or not at all; returns its size in bytes."""

    async def open(self, key: str) -> OpenedObject | None:
        """The object for reading, or None when there is none."""

    async def delete(self, key: str) -> None:
        """Delete one object; deleting a missing one is not an error."""

    async def delete_prefix(self, prefix: str) -> None:
        """Delete every object whose key starts with `prefix` (which ends with '/')."""

    def url(self, key: str) -> str | None:
        """A direct URL for the object, or None when the gateway serves it itself."""

    async def sweep_abandoned(self, before: float) -> int:
        """Remove the partial writes of processes that died mid-`put` (temp files, unfinished
        multipart uploads) last touched before `before` (Unix seconds); how many went."""


async def read_object(store: ObjectStore, key: str) -> StoredObject | None:
    """A whole (small) object in memory: for images, never for videos."""
    opened = await store.open(key)
    if opened is None:
        return None
    return StoredObject(await opened.read(), opened.content_type)


async def rechunk(body: Body, size: int) -> AsyncIterator[bytes]:
    """`body` as pieces of exactly `size` bytes (the last may be shorter): S3 parts must be at
    least 5 MiB, and writing a file in large pieces saves thread hops."""
    if isinstance(body, bytes):
        for start in range(0, len(body), size):
            yield body[start : start + size]
        return
    pending = bytearray()
    async for chunk in body:
        pending += chunk
        while len(pending) >= size:
            with memoryview(pending) as view:
                piece = bytes(view[:size])  # one copy; the buffer is then reused
            del pending[:size]
            yield piece
    if pending:
        yield bytes(pending)
