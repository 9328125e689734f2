"""The served process collects garbage less often than CPython's default (`serving`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reapi_server import serving


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's default, whatever the test process runs with
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_freezing_the_heap_raises_the_young_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # not this test process's
    serving.freeze_heap()
    assert frozen == [True]
    assert gc.get_threshold() == (serving.YOUNG_COLLECTION_THRESHOLD, 10, 10)
    assert serving.YOUNG_COLLECTION_THRESHOLD >= 10_000


@pytest.mark.usefixtures("thresholds")
def test_a_higher_threshold_is_kept() -> None:
    gc.set_threshold(50_000, 5, 20)
    serving.collect_less_often()
    assert gc.get_threshold() == (50_000, 5, 20)
