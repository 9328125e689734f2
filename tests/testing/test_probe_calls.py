"""Each simulator answers the health probe its adapter sends, in the provider's shape: with the
key, the provider's read (a model, the model list, the account, a page of tasks); without it, the
provider's refusal. A probe meets the fault that is set (a hung upstream hangs it) but not the
latency that stands in for generation."""

from __future__ import annotations

import time

import httpx
import pytest

from reapi._secret import Secret
from reapi.catalog import default_catalog
from reapi.providers import ADAPTERS, Connection
from reapi.testing import Fault, SimServer
from reapi.testing._run import default_simulators

KEY = "sk-probe"
PROBED = ("openai", "gemini", "byteplus", "xai", "replicate")


def probe_of(provider: str, server: SimServer, path: str, key: str = KEY):
    catalog = default_catalog()
    route = next(r for m in catalog.models.values() for r in m.routes if r.provider == provider)
    connection = Connection(provider, server.base_url + path, Secret(key))
    adapter = ADAPTERS[catalog.providers[provider].adapter](connection)
    return adapter.probe(route)


@pytest.fixture(params=PROBED)
def served(request):
    spec = default_simulators(KEY)[request.param]
    with SimServer(spec.app) as server:
        yield request.param, server, spec.path


def send(request, timeout: float = 5.0) -> httpx.Response:
    return httpx.request(
        request.method, request.url, headers=dict(request.headers), timeout=timeout
    )


def test_the_probe_is_answered_in_the_providers_shape(served):
    provider, server, path = served
    answer = send(probe_of(provider, server, path))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    shapes = {
        "openai": lambda b: b["object"] == "model" and b["id"] == "gpt-image-2",
        "gemini": lambda b: (
            b["name"].startswith("models/") and "generateContent" in b["supportedGenerationMethods"]
        ),
        "byteplus": lambda b: isinstance(b["items"], list) and isinstance(b["total"], int),
        "xai": lambda b: b["object"] == "list" and {"id", "owned_by"} <= set(b["data"][0]),
        "replicate": lambda b: {"type", "username", "name"} <= set(b),
    }
    assert shapes[provider](body), body


def test_the_probe_without_the_key_is_refused(served):
    provider, server, path = served
    answer = send(probe_of(provider, server, path, key="sk-wrong"))
    assert answer.status_code in (400, 401, 403)


def test_the_probe_skips_the_generation_latency_but_not_a_hang(served):
    provider, server, path = served
    server.faults.set(latency=10.0)
    started = time.perf_counter()
    assert send(probe_of(provider, server, path)).status_code == 200
    assert time.perf_counter() - started < 2.0
    server.faults.set(Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        send(probe_of(provider, server, path), timeout=0.3)


def test_byteplus_lists_its_newest_task_first():
    spec = default_simulators(KEY)["byteplus"]
    with SimServer(spec.app) as server:
        base = server.base_url + spec.path
        headers = {"authorization": f"Bearer {KEY}"}
        for _ in range(2):
            body = {
                "model": "dreamina-seedance-2-0-260128",
                "content": [{"type": "text", "text": "a fox"}],
            }
            created = httpx.post(f"{base}/contents/generations/tasks", json=body, headers=headers)
            assert created.status_code == 200, created.text
        listed = httpx.get(
            f"{base}/contents/generations/tasks?page_num=1&page_size=1", headers=headers
        ).json()
        assert listed["total"] == 2 and len(listed["items"]) == 1
        assert listed["items"][0]["id"] == created.json()["id"]
        bad = httpx.get(f"{base}/contents/generations/tasks?page_size=0", headers=headers)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidParameter"
