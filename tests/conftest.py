"""Shared fixtures: test catalogs with two OpenAI-format hosts, so failover can be exercised
with the OpenAI simulator (and pytest-httpx) alone; an offline resolver and a loopback media
host for caller URLs."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from tests.media_host import MediaHost

from reapi import _fetch
from reapi.catalog import Catalog, default_catalog


def two_host_catalog() -> Catalog:
    """gpt-image-2 and a video model, each served by `primary` then `backup` (both OpenAI wire)."""
    base = default_catalog()
    image = base.models["gpt-image-2"].model_dump(mode="json")
    image["routes"] = [
        {"provider": "primary", "upstream_model": "gpt-image-2"},
        {"provider": "backup", "upstream_model": "gpt-image-2"},
    ]
    video = {
        "id": "sim-video",
        "kind": "video",
        "name": "Simulated video",
        "owned_by": "reapi",
        "capabilities": {
            "sizes": {
                "1280x720": {"aspect_ratio": "16:9", "resolution": "720p"},
                "720x1280": {"aspect_ratio": "9:16", "resolution": "720p"},
            },
            "seconds": [4, 8, 12],
            "input_reference": True,
        },
        "price": {"unit": "second", "credits": 10},
        "routes": [
            {"provider": "primary", "upstream_model": "sora-2"},
            {"provider": "backup", "upstream_model": "sora-2"},
        ],
    }
    provider = {
        "adapter": "openai",
        "base_url": "http://unused.invalid/v1",
        "url_lifetime_seconds": 3600,
    }
    return Catalog.model_validate(
        {
            "providers": {"primary": provider, "backup": provider},
            "models": {"gpt-image-2": image, "sim-video": video},
        }
    )


def tiered_video_catalog() -> Catalog:
    """sim-video with two tiers: 480p at 5 credits a second, 720p (unpriced: the default) at
    10; its first preset is a 480p one, as Seedance's and Grok Imagine's are."""
    data = two_host_catalog().model_dump(mode="json")
    video = data["models"]["sim-video"]
    video["capabilities"]["sizes"] = {
        "864x480": {"aspect_ratio": "16:9", "resolution": "480p"},
        "480x864": {"aspect_ratio": "9:16", "resolution": "480p"},
        "1280x720": {"aspect_ratio": "16:9", "resolution": "720p"},
        "720x1280": {"aspect_ratio": "9:16", "resolution": "720p"},
    }
    video["capabilities"]["aspect_ratios"] = ["16:9", "9:16"]
    video["capabilities"]["resolutions"] = ["480p", "720p"]
    video["price"] = {"unit": "second", "credits": 10, "by_resolution": {"480p": 5}}
    return Catalog.model_validate(data)


@pytest.fixture
def catalog() -> Catalog:
    return two_host_catalog()


def _offline(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "tests resolve no names")


async def _offline_async(host: str, port: int) -> list[str]:
    return _offline(host, port)


@pytest.fixture(autouse=True)
def offline_caller_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caller URLs never reach DNS (nor so the internet) in tests: names do not resolve, unless
    a test hands its fetcher a resolver (see `media_host`)."""
    monkeypatch.setattr(_fetch, "_system_resolve", _offline)
    monkeypatch.setattr(_fetch, "system_resolve_async", _offline_async)


@pytest.fixture
def media_host() -> Iterator[MediaHost]:
    host = MediaHost().start()
    yield host
    host.stop()


#: How a leg that needs a server or program the machine lacks says it was skipped.
_LEG_SKIPPED = re.compile(r"(\w+) leg skipped: (.*)")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say plainly, at the end, which legs did not run (PostgreSQL, Redis, Chromium, ...) and
    how to enable each: a green run without them has tested less than it seems."""
    legs: dict[str, tuple[str, int]] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        match = _LEG_SKIPPED.search(reason)
        if match:
            how, count = legs.get(match.group(1), (match.group(2), 0))
            legs[match.group(1)] = (how, count + 1)
    if legs:
        terminalreporter.section("legs skipped")
        for name, (how, count) in sorted(legs.items()):
            tests = "test" if count == 1 else "tests"
            terminalreporter.write_line(f"{name} leg skipped ({count} {tests}): {how}")
