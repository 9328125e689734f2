"""The output store, traced: a span for each put, open and delete made while a traced request
runs, saying the backend, the kind of key (never the key) and the bytes moved."""

from __future__ import annotations

from ...mirror.storage import Body, ObjectStore, OpenedObject
from .attributes import key_kind
from .setup import Tracing

__all__ = ["TracedStore"]


class TracedStore:
    """An `ObjectStore` that makes a span around each call to `inner`'s."""

    def __init__(self, inner: ObjectStore, tracing: Tracing, backend: str) -> None:
        self.inner = inner
        self._tracing = tracing
        self._backend = backend

    def _attributes(self, key: str) -> dict[str, str]:
        return {"reapi.storage.backend": self._backend, "reapi.storage.key_kind": key_kind(key)}

    async def put(self, key: str, body: Body, content_type: str) -> int:
        with self._tracing.child("storage put", self._attributes(key)) as span:
            size = await self.inner.put(key, body, content_type)
            if span is not None:
                span.set_attribute("reapi.storage.bytes", size)
            return size

    async def open(self, key: str) -> OpenedObject | None:
        with self._tracing.child("storage open", self._attributes(key)) as span:
            opened = await self.inner.open(key)
            if span is not None:
                span.set_attribute("reapi.storage.found", opened is not None)
                if opened is not None:
                    span.set_attribute("reapi.storage.bytes", opened.size)
            return opened

    async def delete(self, key: str) -> None:
        with self._tracing.child("storage delete", self._attributes(key)):
            await self.inner.delete(key)

    async def delete_prefix(self, prefix: str) -> None:
        with self._tracing.child("storage delete", self._attributes(prefix)):
            await self.inner.delete_prefix(prefix)

    def url(self, key: str) -> str | None:
        return self.inner.url(key)

    async def sweep_abandoned(self, before: float) -> int:
        return await self.inner.sweep_abandoned(before)
