"""Test catalogs for the generic second hosts (fal, Replicate), built from the fal and Replicate
routes of the shipped catalog, so the routes users get are what the tests exercise."""

from __future__ import annotations

from typing import Any

from reapi.catalog import Catalog, default_catalog

#: Test-only models, for mappers no shipped route uses yet.
STAND_INS: dict[str, dict[str, Any]] = {
    # Test-only: a factor-based upscale, the kind of model fal's Topaz endpoint can serve.
    "upscale-video-2x": {
        "id": "upscale-video-2x",
        "kind": "video",
        "name": "Upscale 2x (test only)",
        "owned_by": "topaz",
        "capabilities": {"input_reference": True, "input_video": True, "prompt_required": False},
        "price": {"unit": "request", "credits": 100},
        "routes": [],
    },
}

#: Routes the tests add to the shipped ones (for mappers no proposed route uses yet).
TEST_ROUTES: list[dict[str, Any]] = [
    {
        "model": "upscale-video-2x",
        "provider": "fal",
        "upstream_model": "fal-ai/topaz/upscale/video",
        "options": {"input_map": "topaz", "upscale_factor": 2, "upscale_model": "Proteus"},
    }
]


def proposed_routes(host: str) -> list[dict[str, Any]]:
    shipped = [
        {"model": spec.id, **route.model_dump(mode="json", exclude_unset=True)}
        for spec in default_catalog().models.values()
        for route in spec.routes
    ]
    return [r for r in shipped + TEST_ROUTES if r["provider"] == host]


def model_spec(model_id: str) -> dict[str, Any]:
    shipped = default_catalog().models.get(model_id)
    if shipped is not None:
        return shipped.model_dump(mode="json")
    return dict(STAND_INS[model_id])


def host_route(host: str, model_id: str, **options: Any) -> dict[str, Any]:
    """The shipped route of `model_id` on `host`, fast for tests (no waits between polls)."""
    for entry in proposed_routes(host):
        if entry["model"] == model_id:
            route = {k: v for k, v in entry.items() if k != "model"}
            route["options"] = {**entry.get("options", {}), "poll_interval": 0, **options}
            route["first_byte_timeout"] = None  # the test's own deadline
            return route
    raise KeyError(f"no {host} route for {model_id}")


def host_catalog(
    host: str, *, backup: str | None = None, before: dict[str, Any] | None = None
) -> Catalog:
    """Every model with a route on `host`, served by that route alone; with `backup`,
    the same route again on a provider of that name (a second simulator); with `before`, an
    OpenAI-wire provider put in front as gpt-image-2's first route."""
    base = default_catalog()
    providers = {host: base.providers[host].model_dump(mode="json")}
    if backup:
        providers[backup] = providers[host]
    models = {}
    for entry in proposed_routes(host):
        spec = model_spec(entry["model"])
        route = host_route(host, entry["model"])
        spec["routes"] = [route] + ([{**route, "provider": backup}] if backup else [])
        models[spec["id"]] = spec
    if before is not None:
        providers["openai"] = before
        image = models["gpt-image-2"]
        image["routes"] = [
            {"provider": "openai", "upstream_model": "gpt-image-2"},
            *image["routes"],
        ]
    return Catalog.model_validate({"providers": providers, "models": models})
