"""Test catalogs for the generic second hosts (fal, Replicate), built from the proposed route
blocks in data/second_host_routes.toml, so the proposal itself is what the tests exercise."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from reapi.catalog import Catalog, default_catalog

ROUTES_FILE = Path(__file__).parent / "data" / "second_host_routes.toml"

#: Models other engineers are adding to the shipped catalog: small stand-ins with the
#: capabilities the proposed routes were written against.
STAND_INS: dict[str, dict[str, Any]] = {
    "grok-imagine-1.0": {
        "id": "grok-imagine-1.0",
        "kind": "image",
        "name": "Grok Imagine (stand-in)",
        "owned_by": "xai",
        "capabilities": {
            "n_max": 10,
            "edits": True,
            "max_input_images": 1,
            "aspect_ratios": ["1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2"],
            "sizes": {"1024x1024": {"aspect_ratio": "1:1"}},
        },
        "price": {"unit": "image", "credits": 20},
        "routes": [],
    },
    "happy-horse-1.0": {
        "id": "happy-horse-1.0",
        "kind": "video",
        "name": "Happy Horse (stand-in)",
        "owned_by": "alibaba",
        "capabilities": {
            "aspect_ratios": ["16:9", "9:16", "1:1", "4:3", "3:4"],
            "resolutions": ["720p", "1080p"],
            "seconds": [5, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            "input_reference": True,
            "sizes": {"1920x1080": {"aspect_ratio": "16:9", "resolution": "1080p"}},
        },
        "price": {"unit": "second", "credits": 140},
        "routes": [],
    },
    "enhance-video-1.0": {
        "id": "enhance-video-1.0",
        "kind": "video",
        "name": "Enhance Video (stand-in)",
        "owned_by": "topaz",
        "capabilities": {
            "resolutions": ["720p", "1080p", "4k"],
            "input_reference": True,
            "input_video": True,
            "prompt_required": False,
        },
        "price": {"unit": "second", "credits": 20},
        "routes": [],
    },
}


def proposed_routes(host: str) -> list[dict[str, Any]]:
    routes = tomllib.loads(ROUTES_FILE.read_text())["routes"]
    return [r for r in routes if r["provider"] == host]


def model_spec(model_id: str) -> dict[str, Any]:
    base = default_catalog()
    if model_id in STAND_INS:
        return dict(STAND_INS[model_id])
    return base.models[model_id].model_dump(mode="json")


def host_route(host: str, model_id: str, **options: Any) -> dict[str, Any]:
    """The proposed route of `model_id` on `host`, fast for tests (no waits between polls)."""
    for entry in proposed_routes(host):
        if entry["model"] == model_id:
            route = {k: v for k, v in entry.items() if k != "model"}
            route["options"] = {**entry.get("options", {}), "poll_interval": 0, **options}
            route["first_byte_timeout"] = None  # the test's own deadline
            return route
    raise KeyError(f"no proposed {host} route for {model_id}")


def host_catalog(
    host: str, *, backup: str | None = None, before: dict[str, Any] | None = None
) -> Catalog:
    """Every model with a proposed route on `host`, served by that route alone; with `backup`,
    the same route again on a provider of that name (a second simulator); with `before`, a
    provider spec put in front as each model's first route (its own route for gpt-image-2)."""
    base = default_catalog()
    providers = {host: base.providers[host].model_dump(mode="json")}
    if backup:
        providers[backup] = providers[host]
    models = {}
    for entry in proposed_routes(host):
        spec = model_spec(entry["model"])
        route = host_route(host, entry["model"])
        routes = [route] + ([{**route, "provider": backup}] if backup else [])
        spec["routes"] = routes
        models[spec["id"]] = spec
    if before is not None:
        providers["openai"] = before
        image = models["gpt-image-2"]
        image["routes"] = [
            {"provider": "openai", "upstream_model": "gpt-image-2"},
            *image["routes"],
        ]
    return Catalog.model_validate({"providers": providers, "models": models})
