"""Ctrl-C in a blocking call leaves the client usable and closable.

A KeyboardInterrupt can land inside httpcore between taking its connection pool's lock and
the `with` that gives it back; that pool then waits forever on its next request or `close()`.
`reapi video ... -o` hung so after Ctrl-C (once in some hundred runs): it said the video keeps
running, then waited on the lock as it closed its client. Each test below leaves a pool in
exactly that state (its lock taken, a KeyboardInterrupt raised) and checks that nothing
waits on it afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpcore
import httpx
import pytest

from reapi import ReAPI
from reapi._engine import SyncEngine
from reapi.providers import UpstreamRequest
from reapi.testing import OpenAISimulator, SimServer, png_bytes

#: Far longer than anything below takes; a hang is a test failure, not a stuck suite.
WITHIN = 10.0


@pytest.fixture
def interrupt_once(monkeypatch) -> Iterator[list[int]]:
    """The next request through any httpcore pool takes the pool's lock and raises
    KeyboardInterrupt without giving it back (what the race leaves). Counts interrupts."""
    real = httpcore.ConnectionPool.handle_request
    armed = [1]
    fired: list[int] = []

    def handle_request(self: httpcore.ConnectionPool, request: httpcore.Request):
        if armed:
            armed.pop()
            self._optional_thread_lock.__enter__()  # never left: the race's outcome
            fired.append(1)
            raise KeyboardInterrupt
        return real(self, request)

    monkeypatch.setattr(httpcore.ConnectionPool, "handle_request", handle_request)
    yield fired


def _returns(call: Callable[[], object]) -> bool:
    """Whether `call()` returns (or raises) within `WITHIN` seconds."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(WITHIN)
    return not thread.is_alive()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=1)) as server:
        yield server


def _client(sim: SimServer, catalog, **kwargs) -> ReAPI:
    return ReAPI(
        catalog=catalog,
        provider_keys={"primary": "sk-sim"},
        provider_base_urls={"primary": sim.base_url + "/v1"},
        **kwargs,
    )


def test_after_ctrl_c_the_client_closes(sim, catalog, interrupt_once):
    client = _client(sim, catalog)
    with pytest.raises(KeyboardInterrupt):
        client.images.generate(model="gpt-image-2", prompt="a fox")
    assert interrupt_once == [1]
    assert _returns(client.close), "close() waited on the interrupted pool's lock"


def test_after_ctrl_c_the_next_request_goes_through(sim, catalog, interrupt_once):
    """A notebook's Ctrl-C, then the same call again: it answers, on a fresh pool."""
    client = _client(sim, catalog)
    with pytest.raises(KeyboardInterrupt):
        client.images.generate(model="gpt-image-2", prompt="a fox")
    answered: list[object] = []
    assert _returns(
        lambda: answered.append(client.images.generate(model="gpt-image-2", prompt="a fox"))
    )
    assert answered and answered[0].data  # type: ignore[attr-defined]
    assert _returns(client.close)


def test_ctrl_c_in_a_stream_leaves_the_client_closable(sim, catalog, interrupt_once):
    """The streamed path (a gateway video's event stream) holds its own pool connection."""
    engine = SyncEngine(_client(sim, catalog).router)
    request = UpstreamRequest("GET", sim.base_url + "/v1/models", idle_timeout=5.0)
    with pytest.raises(KeyboardInterrupt):
        with engine.stream_chunks(request, "primary", first_byte=5.0, idle=5.0):
            pass
    assert _returns(engine.close)


def test_a_callers_own_http_client_is_theirs(sim, catalog, interrupt_once):
    """reapi never replaces a client it was given (its other users hold it too)."""
    own = httpx.Client()
    client = _client(sim, catalog, http_client=own)
    with pytest.raises(KeyboardInterrupt):
        client.images.generate(model="gpt-image-2", prompt="a fox")
    assert client._engine._client is own


def test_ctrl_c_in_a_fetch_of_a_callers_url_does_not_wait_on_its_pool(media_host, interrupt_once):
    url = media_host.serve("/a.png", png_bytes(8, 8), headers={"Content-Type": "image/png"})
    fetcher = media_host.sync_fetcher()
    caught: list[BaseException] = []

    def fetch() -> None:
        try:
            fetcher.fetch(url, accept=frozenset({"image/png"}), param="image")
        except KeyboardInterrupt as interrupt:
            caught.append(interrupt)

    assert _returns(fetch), "the fetch closed its interrupted pool and waited on its lock"
    assert caught
