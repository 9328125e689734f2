"""docs/server.md's table of metrics lists every metric the gateway exposes, with its labels:
it is the page an operator writes alerts and dashboards from (four were only on
docs/failover.md)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import two_host_catalog

from reapi.router import BreakerState
from reapi_server.observability.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def _documented() -> dict[str, set[str]]:
    """The table's rows: metric name -> the label names its row gives in backticks (what is in
    parentheses explains a value and is left out)."""
    text = DOCS.read_text()
    table = text[text.index("The metrics exposed:") :].split("\n\n")[1]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        name, labels = line.strip("|").split("|")[:2]
        found = re.fullmatch(r"\s*`(reapi_\w+)`\s*", name)
        assert found, line
        rows[found.group(1)] = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", labels)))
    return rows


def _exposed() -> dict[str, set[str]]:
    """Every metric a gateway's registry exposes, by the name a scrape shows, with its label
    names (the breakers' gauge is registered once there is a router to read)."""
    metrics = Metrics()
    catalog = two_host_catalog()
    router = SimpleNamespace(state=lambda route: BreakerState.CLOSED)
    metrics.watch_breakers(router, catalog, catalog.providers)  # type: ignore[arg-type]
    exposed: dict[str, set[str]] = {}
    for collector in list(metrics.registry._collector_to_names):
        for family in collector.collect():
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = getattr(collector, "_labelnames", None)
            if labels is None:  # a custom collector: the labels of its samples
                labels = {k for sample in family.samples for k in sample.labels}
            exposed[name] = set(labels)
    return exposed


def test_every_metric_is_in_the_table_with_its_labels():
    assert _documented() == _exposed()
