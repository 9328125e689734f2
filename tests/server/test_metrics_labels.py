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
