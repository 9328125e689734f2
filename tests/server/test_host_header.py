"""No URL the gateway hands out comes from the client's Host header (or X-Forwarded-Host):
output URLs, idempotent replays and redirects use `public_base_url`, else the address the
gateway listens on. Only the scheme may come from a trusted proxy (`forwarded_allow_ips`,
loopback by default). A real server on loopback; raw sockets where httpx would fix the Host."""

from __future__ import annotations

import socket

import httpx
from tests.server.fakes import PNG
from tests.server.live import live_gateway

from reapi_server.config import Settings

EVIL = "evil.example"
FORGED = {"host": EVIL, "x-forwarded-host": EVIL, "forwarded": f"host={EVIL}"}


def _raw_get(base_url: str, path: str, host: str) -> bytes:
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _generate(gw, client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
        headers={"authorization": f"Bearer {gw.key}", **FORGED, **headers},
    )


def test_a_forged_host_changes_no_url(tmp_path, migrated_template):
    with live_gateway(tmp_path / "d", migrated_template) as gw:
        client = httpx.Client(base_url=gw.base_url, timeout=30)
        # output URLs
        url = _generate(gw, client).json()["data"][0]["url"]
        assert url.startswith(f"{gw.base_url}/v1/files/"), url
        # an idempotent replay builds its URLs again
        first = _generate(gw, client, **{"idempotency-key": "h1"}).json()["data"][0]["url"]
        replay = _generate(gw, client, **{"idempotency-key": "h1"}).json()["data"][0]["url"]
        assert first == replay and replay.startswith(f"{gw.base_url}/v1/files/"), replay
        # edits (multipart) answer URLs the same way
        edit = client.post(
            "/v1/images/edits",
            data={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
            files={"image": ("a.png", PNG, "image/png")},
            headers={"authorization": f"Bearer {gw.key}", **FORGED},
        )
        assert edit.json()["data"][0]["url"].startswith(f"{gw.base_url}/v1/files/"), edit.text
        # and the URL works
        content = client.get(url.removeprefix(gw.base_url))
        assert content.status_code == 200
        # redirects (a trailing slash) never point at the forged host
        answer = _raw_get(gw.base_url, "/v1/models/", EVIL)
        assert EVIL.encode() not in answer, answer[:400]


def test_public_base_url_wins_over_any_header(tmp_path, migrated_template):
    public = "https://images.example.com/gateway"
    with live_gateway(tmp_path / "d", migrated_template, public_base_url=public) as gw:
        client = httpx.Client(base_url=gw.base_url, timeout=30)
        url = _generate(gw, client, **{"x-forwarded-proto": "http"}).json()["data"][0]["url"]
        assert url.startswith(f"{public}/v1/files/"), url
        answer = _raw_get(gw.base_url, "/v1/models/", EVIL)
        assert EVIL.encode() not in answer, answer[:400]


def test_only_trusted_proxies_set_the_scheme(tmp_path, migrated_template):
    assert Settings().forwarded_allow_ips == ["127.0.0.1", "::1"]
    with live_gateway(tmp_path / "a", migrated_template) as gw:  # loopback: trusted
        client = httpx.Client(base_url=gw.base_url, timeout=30)
        url = _generate(gw, client, **{"x-forwarded-proto": "https"}).json()["data"][0]["url"]
        assert url.startswith("https://127.0.0.1:"), url
    with live_gateway(tmp_path / "b", migrated_template, forwarded_allow_ips=[]) as gw:
        client = httpx.Client(base_url=gw.base_url, timeout=30)
        url = _generate(gw, client, **{"x-forwarded-proto": "https"}).json()["data"][0]["url"]
        assert url.startswith(f"{gw.base_url}/v1/files/"), url
