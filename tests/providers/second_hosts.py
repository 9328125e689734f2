"""Test catalogs for the generic second hosts (fal, Replicate), built from the proposed route
blocks in data/second_host_routes.toml, so the proposal itself is what the tests exercise."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from reapi.catalog import Catalog, default_catalog

ROUTES_FILE = Path(__file__).parent / "data" / "second_host_routes.toml"

#: Used when the shipped catalog lacks a model (other engineers add these): copies of the specs
#: the proposed routes were written against. The shipped spec wins when it exists.
STAND_INS: dict[str, dict[str, Any]] = {
    "grok-imagine-1.0": {
        "id": "grok-imagine-1.0",
        "kind": "image",
        "name": "Grok Imagine Image (stand-in)",
        "owned_by": "xai",
        "capabilities": {
            "n_max": 10,
            "edits": True,
            "max_input_images": 3,
            "aspect_ratios": [
                "1:1",
                "3:4",
                "4:3",
                "9:16",
                "16:9",
                "2:3",
                "3:2",
                "9:19.5",
                "19.5:9",
                "9:20",
                "20:9",
                "1:2",
                "2:1",
            ],
            "resolutions": ["1k", "2k"],
            "sizes": {
                "1024x1024": {"aspect_ratio": "1:1", "resolution": "1k"},
                "1536x1024": {"aspect_ratio": "3:2", "resolution": "1k"},
                "2048x2048": {"aspect_ratio": "1:1", "resolution": "2k"},
            },
        },
        "price": {"unit": "image", "credits": 20},
        "routes": [],
    },
    "happy-horse-1.0": {
        "id": "happy-horse-1.0",
        "kind": "video",
        "name": "Happy Horse 1.0 (stand-in)",
        "owned_by": "alibaba",
        "capabilities": {
            "aspect_ratios": ["16:9", "9:16", "1:1", "4:3", "3:4"],
            "resolutions": ["720p", "1080p"],
            "seconds": [5, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            "input_reference": True,
            "sizes": {
                "1280x720": {"aspect_ratio": "16:9", "resolution": "720p"},
                "720x1280": {"aspect_ratio": "9:16", "resolution": "720p"},
                "1920x1080": {"aspect_ratio": "16:9", "resolution": "1080p"},
                "1080x1920": {"aspect_ratio": "9:16", "resolution": "1080p"},
            },
        },
        "price": {"unit": "second", "credits": 240},
        "routes": [],
    },
    "enhance-video-1.0": {
        "id": "enhance-video-1.0",
        "kind": "video",
        "name": "Enhance Video 1.0 (stand-in)",
        "owned_by": "topaz",
        "capabilities": {
            "resolutions": ["1080p", "4k"],
            "input_reference": True,
            "input_video": True,
            "prompt_required": False,
        },
        "price": {"unit": "request", "credits": 320},
        "routes": [],
    },
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

#: Routes the tests add to the proposal (for mappers no proposed route uses yet).
TEST_ROUTES: list[dict[str, Any]] = [
    {
        "model": "upscale-video-2x",
        "provider": "fal",
        "upstream_model": "fal-ai/topaz/upscale/video",
        "options": {"input_map": "topaz", "upscale_factor": 2, "upscale_model": "Proteus"},
    }
]


def proposed_routes(host: str) -> list[dict[str, Any]]:
    routes = tomllib.loads(ROUTES_FILE.read_text())["routes"] + TEST_ROUTES
    return [r for r in routes if r["provider"] == host]


def model_spec(model_id: str) -> dict[str, Any]:
    shipped = default_catalog().models.get(model_id)
    if shipped is not None:
        return shipped.model_dump(mode="json")
    return dict(STAND_INS[model_id])


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
