"""Health, readiness, Prometheus metrics and the metadata-only access log."""

import json
import logging

from tests.server.helpers import auth, scrape_metrics

from reapi_server.observability.logging import JsonFormatter


async def test_health_and_readiness(gateway):
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    assert (await gateway.client.get("/readyz")).json() == {
        "status": "ready",
        "database": "ok",
        "redis": "off",
    }


async def test_metrics_use_route_templates_only(gateway):
    _, key = await gateway.account()
    video = await gateway.client.post(
        "/v1/videos", json={"model": "sim-video", "prompt": "p"}, headers=auth(key)
    )
    await gateway.client.get(f"/v1/videos/{video.json()['id']}", headers=auth(key))
    await gateway.client.request("BREW", "/v1/coffee")
    text = await scrape_metrics(gateway)
    assert 'route="/v1/videos/{video_id}"' in text
    assert video.json()["id"] not in text
    assert 'method="OTHER",route="unmatched"' in text
    assert "reapi_breaker_state" in text and 'route="primary/sora-2"' in text
    assert 'reapi_credits_total{movement="reserved"} 40.0' in text
    assert 'reapi_upstream_attempts_total{code="ok",provider="primary"}' in text
    assert "reapi_http_request_duration_seconds_bucket" in text


async def test_breaker_state_shows_open_routes(gateway):
    _, key = await gateway.account()
    gateway.upstream.faults = {"primary.test": "reset"}
    await gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key))
    text = await scrape_metrics(gateway)
    assert 'reapi_breaker_state{route="primary/gpt-image-2"} 2.0' in text


async def test_access_log_is_metadata(gateway, caplog):
    caplog.set_level(logging.INFO, logger="reapi_server")
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    record = next(r for r in caplog.records if r.name == "reapi_server.access")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["route"] == "/v1/images/generations" and entry["status"] == 200
    assert entry["method"] == "POST" and entry["provider"] == "primary"
    assert entry["attempts"] == 1 and entry["request_id"] == response.headers["x-request-id"]
    assert set(entry) <= {
        "ts",
        "level",
        "logger",
        "msg",
        "method",
        "route",
        "status",
        "provider",
        "attempts",
        "request_id",
        "duration_ms",
    }


async def test_unexpected_errors_are_500_in_openai_shape_and_logged_by_type(
    gateway, monkeypatch, caplog
):
    from reapi_server.images import service

    async def explode(*args, **kwargs):
        raise ValueError("MARKER-internal-detail")

    monkeypatch.setattr(service, "generate", explode)
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "MARKER" not in response.text
    rendered = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "ValueError" in rendered and "MARKER" not in rendered


def test_http_client_loggers_never_print_upstream_urls_at_info():
    """Signed upload and download URLs carry credentials; httpx logs whole URLs at INFO."""
    from reapi_server.observability.logging import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # The loggers it sets, as they were: left at DEBUG, ours made every later test's records
    # differ from a run of that test alone.
    touched = [logging.getLogger(n) for n in ("reapi", "reapi_server", "uvicorn.error")]
    touched += [logging.getLogger(n) for n in ("httpx", "httpcore", "uvicorn.access")]
    states = [(logger, logger.level, logger.propagate, logger.disabled) for logger in touched]
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    try:
        configure_logging("DEBUG")
        for name in ("httpx", "httpcore"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    finally:  # configure_logging is for a server process: give pytest's logging back
        root.handlers[:], level = saved
        root.setLevel(level)
        for logger, was, propagate, disabled in states:
            logger.setLevel(was)
            logger.propagate, logger.disabled = propagate, disabled
        logging.captureWarnings(False)
