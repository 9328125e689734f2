"""`DirectRequest`: the request a direct route's endpoint gets, whose header lookups are one
loop.

Starlette's `Headers.get` is `Mapping.get`, which calls `__getitem__` and catches its `KeyError`
for a header the request does not have: 0.86 us for a header found, 1.74 for one missing (an
image request looks up four: authorization, content-length, idempotency-key, host). The same
loop without the detour takes 0.60 and 0.71. Everything else is Starlette's `Request`.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request

__all__ = ["DirectHeaders", "DirectRequest"]


class DirectHeaders(Headers):
    def get(self, key: str, default: Any = None) -> Any:
        name = key.lower().encode("latin-1")
        for header, value in self._list:
            if header == name:
                return value.decode("latin-1")
        return default


class DirectRequest(Request):
    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = DirectHeaders(scope=self.scope)
        return self._headers
