"""Metrics find an existing labelled child by a dict lookup (`metrics._KnownLabels`): the same
child prometheus-client made, so every way of naming it counts in the same series."""

from reapi_server.observability.metrics import Metrics


def test_known_labels_count_in_the_series_prometheus_client_made():
    metrics = Metrics()
    first = metrics.requests.labels("POST", "/v1/images/generations", "200")
    assert metrics.requests.labels("POST", "/v1/images/generations", "200") is first
    first.inc()
    metrics.requests.labels("POST", "/v1/images/generations", 200).inc()  # str()-ed, as before
    metrics.requests.labels(method="POST", route="/v1/images/generations", status="200").inc()
    metrics.latency.labels("POST", "/v1/images/generations").observe(0.01)
    metrics.latency.labels("POST", "/v1/images/generations").observe(0.02)
    text = metrics.exposition().decode()
    assert (
        'reapi_http_requests_total{method="POST",route="/v1/images/generations",status="200"} 3.0'
        in text
    )
    assert (
        'reapi_http_request_duration_seconds_count{method="POST",route="/v1/images/generations"}'
        " 2.0" in text
    )


def test_counts_and_observations_read_as_prometheus_clients_own():
    """The children's `inc` and `observe` that skip prometheus-client's checks (and find the
    bucket by bisection) leave the same exposition as prometheus-client's own methods, on
    every bucket bound and between them; the cases they do not take still refuse as before."""
    import math

    import prometheus_client
    import pytest
    from prometheus_client import CollectorRegistry, generate_latest

    from reapi_server.observability import metrics as ours

    def exposed(counter_class: type, histogram_class: type) -> str:
        registry = CollectorRegistry()
        counter = counter_class("c", "c", ["k"], registry=registry)
        histogram = histogram_class("h", "h", ["k"], registry=registry, buckets=(0.001, 0.01, 1))
        for amount in (0, 1, 2.5):
            counter.labels("a").inc(amount)
        for amount in (-1, 0, 0.0005, 0.001, 0.002, 0.01, 0.5, 1, 2, math.inf, math.nan):
            histogram.labels("a").observe(amount)
        lines = generate_latest(registry).decode().splitlines()
        return "\n".join(line for line in lines if "_created" not in line)  # a time each

    theirs = exposed(prometheus_client.Counter, prometheus_client.Histogram)
    assert exposed(ours.Counter, ours.Histogram) == theirs
    registry = CollectorRegistry()
    counter = ours.Counter("c", "c", ["k"], registry=registry)
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("a").inc(-1)
    with pytest.raises(ValueError, match="missing label values"):
        counter.inc()


def test_cached_children_count_in_prometheus_clients_series_and_appear_when_first_counted():
    """`Metrics.http`, `credits_moved` and `attempts_by` hand out the children `labels` makes:
    counts through either land in one series, and a series is not exposed before its first
    count (a scrape's series appear when they did without the cache)."""
    metrics = Metrics()
    assert 'movement="charged"' not in metrics.exposition().decode()
    assert metrics.credits_moved["charged"] is metrics.credits.labels("charged")
    metrics.credits_moved["charged"].inc(3)
    metrics.credits.labels("charged").inc(2)
    requests, latency = metrics.http["POST", "/v1/images/generations", 200]
    assert requests is metrics.requests.labels("POST", "/v1/images/generations", "200")
    assert latency is metrics.latency.labels("POST", "/v1/images/generations")
    assert metrics.http["POST", "/v1/images/generations", 200] == (requests, latency)
    requests.inc()
    metrics.record_attempts("m", [("primary", "ok"), ("primary", "ok")])
    assert metrics.attempts_by["primary", "ok"] is metrics.upstream_attempts.labels("primary", "ok")
    text = metrics.exposition().decode()
    assert 'reapi_credits_total{movement="charged"} 5.0' in text
    assert 'movement="released"' not in text and 'movement="reserved"' not in text
    assert 'status="200"} 1.0' in text
    assert 'reapi_upstream_attempts_total{code="ok",provider="primary"} 2.0' in text
