"""`client.models`: the catalog (in-process) or the gateway's `/v1/models`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._engine import AsyncEngine, SyncEngine
from ..types import Model, ModelList

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


class Models:
    def __init__(self, setup: _Setup, engine: SyncEngine) -> None:
        self._setup = setup
        self._engine = engine

    def list(self) -> ModelList:
        if self._setup.gateway is None:
            return _from_catalog(self._setup)
        return self._engine.drive(
            self._setup.gateway.list_models(),
            "reapi-gateway",
            self._setup.router.config.first_byte_timeout,
        )


class AsyncModels:
    def __init__(self, setup: _Setup, engine: AsyncEngine) -> None:
        self._setup = setup
        self._engine = engine

    async def list(self) -> ModelList:
        if self._setup.gateway is None:
            return _from_catalog(self._setup)
        return await self._engine.drive(
            self._setup.gateway.list_models(),
            "reapi-gateway",
            self._setup.router.config.first_byte_timeout,
        )
