"""`client.models`: the catalog (in-process) or the gateway's `/v1/models`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._options import Headers, Query, TimeoutOption
from .._raw_clients import AsyncModelsWithRawResponse, ModelsWithRawResponse
from ..types import Model, ModelList
from ._base import AsyncResource, SyncResource

if TYPE_CHECKING:
    from .._client import _Setup

__all__ = ["AsyncModels", "Models"]


def _from_catalog(setup: _Setup) -> ModelList:
    assert setup.core is not None
    return ModelList(
        data=[
            Model(id=m.id, created=m.created, owned_by=m.owned_by)
            for m in setup.core.catalog.models.values()
        ]
    )


class Models(SyncResource):
    @property
    def with_raw_response(self) -> ModelsWithRawResponse:
        """These methods, each returning a `RawResponse` (openai-python's
        `client.models.with_raw_response`). Gateway mode only."""
        self._setup.raw_responses()
        return ModelsWithRawResponse(self)

    def list(
        self,
        *,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> ModelList:
        call = self._call(timeout, extra_headers, extra_query)
        if self._setup.gateway is None:
            return _from_catalog(self._setup)
        return self._through_gateway(lambda gateway: gateway.list_models(call), call)


class AsyncModels(AsyncResource):
    @property
    def with_raw_response(self) -> AsyncModelsWithRawResponse:
        """These methods, each returning a `RawResponse` (openai-python's
        `client.models.with_raw_response`). Gateway mode only."""
        self._setup.raw_responses()
        return AsyncModelsWithRawResponse(self)

    async def list(
        self,
        *,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> ModelList:
        call = self._call(timeout, extra_headers, extra_query)
        if self._setup.gateway is None:
            return _from_catalog(self._setup)
        return await self._through_gateway(lambda gateway: gateway.list_models(call), call)
