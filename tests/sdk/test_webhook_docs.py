"""The receivers docs/webhooks.md shows (FastAPI, Flask) run as written: a webhook signed with
the key's secret is taken, a tampered or unsigned one refused with 400."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

from reapi import webhooks

ROOT = Path(__file__).parents[2]
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "webhooks.md").read_text(), re.S)
RECEIVERS = {s.split("app = ")[1].split("(")[0]: s for s in SNIPPETS if "\napp = " in s}
SECRET = "whsec_" + base64.b64encode(b"a receiver's secret of 32 bytes!").decode()
VIDEO = {"id": "video_1", "object": "video", "model": "m", "status": "completed", "created_at": 1}


def signed(body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    now = int(time.time())
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": webhooks.sign(body, msg_id=msg_id, timestamp=now, secret=SECRET),
    }


def test_the_page_shows_both_receivers():
    assert set(RECEIVERS) == {"FastAPI", "Flask"}


@pytest.mark.parametrize("framework", ["FastAPI", "Flask"])
def test_a_documented_receiver_takes_signed_webhooks_only(framework, monkeypatch, capsys):
    monkeypatch.setenv("REAPI_WEBHOOK_SECRET", SECRET)
    namespace: dict = {"__name__": "receiver"}
    exec(compile(RECEIVERS[framework], f"webhooks.md ({framework})", "exec"), namespace)
    app = namespace["app"]
    if framework == "FastAPI":
        from fastapi.testclient import TestClient

        client, raw = TestClient(app), "content"
    else:
        client, raw = app.test_client(), "data"

    def post(body: bytes, headers: dict[str, str]) -> int:
        return client.post("/reapi", headers=headers, **{raw: body}).status_code

    body = json.dumps(VIDEO).encode()
    assert post(body, signed(body)) == 200
    assert "video_1 completed" in capsys.readouterr().out
    assert post(body.replace(b"completed", b"failed"), signed(body)) == 400
    assert post(body, {"Content-Type": "application/json"}) == 400
