"""Auto-paginating video lists, as openai-python's cursor pages.

A page is the `VideoList` the API answered, plus how to fetch the page after it. Iterating a
page yields every video from it onwards, fetching further pages as needed; `iter_pages()` yields
the pages themselves. The async `list()` returns an `AsyncVideoPaginator`: awaited, the first
page; iterated with `async for`, every video.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any

from pydantic import PrivateAttr

from ..types import Video, VideoList

__all__ = ["AsyncVideoPage", "AsyncVideoPaginator", "SyncVideoPage"]


class SyncVideoPage(VideoList):
    _next: Callable[[str], SyncVideoPage] | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, page: VideoList, fetch_after: Callable[[str], SyncVideoPage]) -> SyncVideoPage:
        made = cls.model_construct(**dict(page))
        made._next = fetch_after
        return made

    def has_next_page(self) -> bool:
        return self.has_more and bool(self.data) and self._next is not None

    def get_next_page(self) -> SyncVideoPage:
        if not self.has_next_page() or self._next is None:
            raise RuntimeError("this is the last page; check has_next_page() first")
        return self._next(self.data[-1].id)

    def iter_pages(self) -> Iterator[SyncVideoPage]:
        page = self
        yield page
        while page.has_next_page():
            page = page.get_next_page()
            yield page

    def __iter__(self) -> Iterator[Video]:  # type: ignore[override]
        for page in self.iter_pages():
            yield from page.data


class AsyncVideoPage(VideoList):
    _next: Callable[[str], Awaitable[AsyncVideoPage]] | None = PrivateAttr(default=None)

    @classmethod
    def of(
        cls, page: VideoList, fetch_after: Callable[[str], Awaitable[AsyncVideoPage]]
    ) -> AsyncVideoPage:
        made = cls.model_construct(**dict(page))
        made._next = fetch_after
        return made

    def has_next_page(self) -> bool:
        return self.has_more and bool(self.data) and self._next is not None

    async def get_next_page(self) -> AsyncVideoPage:
        if not self.has_next_page() or self._next is None:
            raise RuntimeError("this is the last page; check has_next_page() first")
        return await self._next(self.data[-1].id)

    async def iter_pages(self) -> AsyncIterator[AsyncVideoPage]:
        page = self
        yield page
        while page.has_next_page():
            page = await page.get_next_page()
            yield page

    async def _videos(self) -> AsyncIterator[Video]:
        async for page in self.iter_pages():
            for video in page.data:
                yield video

    def __aiter__(self) -> AsyncIterator[Video]:
        return self._videos()


class AsyncVideoPaginator:
    """What the async `videos.list()` returns: `await` it for the first page, or `async for`
    over it for every video."""

    def __init__(self, first_page: Callable[[], Awaitable[AsyncVideoPage]]) -> None:
        self._first_page = first_page

    def __await__(self) -> Generator[Any, None, AsyncVideoPage]:
        return self._first_page().__await__()

    async def _videos(self) -> AsyncIterator[Video]:
        page = await self._first_page()
        async for video in page:
            yield video

    def __aiter__(self) -> AsyncIterator[Video]:
        return self._videos()
