"""The database, traced: a span for each unit of work a traced request waits on. A group commit
says how many requests' writes its transaction carried; no span holds SQL or a parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from ...db import Database
from ...group_commit import Tx
from .setup import Tracing

__all__ = ["TracedDatabase"]

T = TypeVar("T")


class TracedDatabase(Database):
    def __init__(self, url: str, *, timeout: float | None = None, tracing: Tracing) -> None:
        super().__init__(url, timeout=timeout)
        self._tracing = tracing

    def _attributes(self, kind: str) -> dict[str, str]:
        return {"db.system.name": self.dialect, "reapi.db.kind": kind}

    async def grouped(
        self,
        op: Callable[[Tx], Awaitable[T]],
        *,
        account: str | None,
        at_once: bool = False,
        siblings: int | None = None,
    ) -> T:
        with self._tracing.child("db transaction", self._attributes("grouped")) as span:
            if span is None:
                return await super().grouped(
                    op, account=account, at_once=at_once, siblings=siblings
                )
            with self._watched():
                result, batch = await self.group.run_sized(op, account, at_once, siblings)
            span.set_attribute("reapi.db.batch_size", batch)
            return result

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        with self._tracing.child("db read", self._attributes("read")):
            async with super().read() as session:
                yield session

    @asynccontextmanager
    async def write(self, *, enforce_foreign_keys: bool = True) -> AsyncIterator[AsyncSession]:
        with self._tracing.child("db transaction", self._attributes("write")):
            async with super().write(enforce_foreign_keys=enforce_foreign_keys) as session:
                yield session
