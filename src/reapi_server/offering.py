"""What this gateway offers: the catalog's models that have at least one route to a provider
configured here, and those routes in failover order. /v1/models, the models page and the
status page all read it from here."""

from __future__ import annotations

from collections.abc import Container

from reapi.catalog import Catalog, ModelSpec, Route

__all__ = ["servable", "served_routes"]


def served_routes(spec: ModelSpec, providers: Container[str]) -> tuple[Route, ...]:
    """The model's routes whose provider is configured here, in the order they are tried."""
    return tuple(route for route in spec.routes if route.provider in providers)


def servable(catalog: Catalog, providers: Container[str]) -> dict[str, ModelSpec]:
    """Models with at least one route whose provider has a key here, in catalog order."""
    return {
        model_id: spec
        for model_id, spec in catalog.models.items()
        if served_routes(spec, providers)
    }
