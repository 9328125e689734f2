"""SDK fixtures shared by the failover tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reapi.testing import OpenAISimulator, SimServer


@pytest.fixture
def sims() -> Iterator[tuple[SimServer, SimServer]]:
    """Two OpenAI simulators: the catalog's `primary` and `backup` hosts (a module may define
    its own `sims`, which then wins)."""
    primary = SimServer(OpenAISimulator()).start()
    backup = SimServer(OpenAISimulator()).start()
    yield primary, backup
    primary.stop()
    backup.stop()
