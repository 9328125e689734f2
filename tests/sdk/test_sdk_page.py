"""The Python of docs/sdk.md and the README's quick start runs as written, in both modes: against
`reapi-server demo` (gateway mode, from `REAPI_BASE_URL` and `REAPI_API_KEY`) and in-process
against the built-in simulators (provider keys and `REAPI_<PROVIDER>_BASE_URL` from the
environment). A snippet names `client` where the page made one above it; the files it opens
(`a.png`, `first_frame.png`, ...) are real images in the working directory."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.test_cli import running_demo

from reapi import ReAPI
from reapi._settings import base_url_env
from reapi.catalog import default_catalog
from reapi.testing import (
    SIMULATOR_KEY,
    RunningSimulators,
    default_simulators,
    png_bytes,
    run_simulators,
)

ROOT = Path(__file__).parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PAGE = BLOCK.findall((ROOT / "docs" / "sdk.md").read_text())
README = BLOCK.findall((ROOT / "README.md").read_text())
#: The receiver's own inputs (its request's raw body, headers and its secret) are placeholders
#: here; docs/webhooks.md's receivers run in test_webhook_docs.py.
WEBHOOK = next(s for s in PAGE if "webhooks.verify" in s)
#: What only a gateway has: openai-python's per-call extras and raw responses.
GATEWAY_ONLY = ("extra_headers", "with_raw_response", "extra_body")
SNIPPETS = [s for s in (*PAGE, *README) if s is not WEBHOOK]
IN_PROCESS = [s for s in SNIPPETS if not any(word in s for word in GATEWAY_ONLY)]


def _name(snippet: str) -> str:
    lines = [line.strip() for line in snippet.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith(("from ", "import "))]
    return (code or lines)[0][:40]


def run(snippet: str, workdir: Path) -> dict[str, Any]:
    """The snippet in a namespace holding what the page defined before it; a snippet with a
    top-level `await` (the page's async example) runs in an event loop."""
    drafts: list[int] = []
    saved: list[bytes] = []
    namespace: dict[str, Any] = {
        "__name__": "sdk_page",
        "show_draft": lambda data, index: drafts.append(index),
        "save": lambda data, usage: saved.append(data),
        "drafts": drafts,
        "saved": saved,
    }
    exec(PAGE[0], namespace)  # the page's imports, at its top
    with ReAPI() as client:
        namespace["client"] = client
        code = compile(snippet, "sdk.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        pending = eval(code, namespace)  # a coroutine when the snippet awaits, else None
        if pending is not None:
            asyncio.run(pending)
    return namespace


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("a.png", "b.png", "mask.png", "first_frame.png"):
        (tmp_path / name).write_bytes(png_bytes(64, 64))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_demo(tmp_path_factory.mktemp("demo")) as (base, key, _):
        yield f"{base}/v1", key


@pytest.fixture(scope="module")
def sims() -> Iterator[RunningSimulators]:
    running = run_simulators(default_simulators())
    yield running
    running.stop()


def _clear_reapi_env(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = default_catalog()
    for provider, spec in catalog.providers.items():
        monkeypatch.delenv(base_url_env(provider), raising=False)
        for env in spec.api_key_env:
            monkeypatch.delenv(env, raising=False)
    for env in ("REAPI_BASE_URL", "REAPI_API_KEY", "REAPI_CATALOG"):
        monkeypatch.delenv(env, raising=False)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=_name)
def test_against_a_gateway(snippet, demo, workdir, monkeypatch):
    _clear_reapi_env(monkeypatch)
    base_url, key = demo
    monkeypatch.setenv("REAPI_BASE_URL", base_url)
    monkeypatch.setenv("REAPI_API_KEY", key)
    namespace = run(snippet, workdir)
    _check(snippet, namespace, workdir, drafts=2)


@pytest.mark.parametrize("snippet", IN_PROCESS, ids=_name)
def test_in_process(snippet, sims, workdir, monkeypatch):
    _clear_reapi_env(monkeypatch)
    for provider, url in sims.provider_urls.items():
        monkeypatch.setenv(base_url_env(provider), url)
        for env in default_catalog().providers[provider].api_key_env[:1]:
            monkeypatch.setenv(env, SIMULATOR_KEY)
    namespace = run(snippet, workdir)
    # In-process the provider's drafts are not passed on (the page says so).
    _check(snippet, namespace, workdir, drafts=0)


def _check(snippet: str, namespace: dict[str, Any], workdir: Path, *, drafts: int) -> None:
    """What the page says the snippet gives, beyond running without an error."""
    if "stream=True" in snippet:
        assert len(namespace["drafts"]) == drafts
        assert len(namespace["saved"]) == 1
    if 'write_to_file("out.mp4")' in snippet:
        assert (workdir / "out.mp4").read_bytes()[4:8] == b"ftyp"
    if "waves.mp4" in snippet:
        assert (workdir / "waves.mp4").read_bytes()[4:8] == b"ftyp"
    if "result.reapi.provider" in snippet and "edited" in snippet:
        assert namespace["edited"].data[0].content()
    if "raw.parse()" in snippet:
        assert namespace["image"].data[0].content()


def test_every_block_of_the_page_is_run_or_said_why_not():
    assert PAGE[0].strip() == "from reapi import ReAPI, AsyncReAPI"
    assert len(PAGE) >= 8
    assert [s for s in PAGE if s not in SNIPPETS] == [WEBHOOK]
    assert len(IN_PROCESS) < len(SNIPPETS)
