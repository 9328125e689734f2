"""The receivers docs/webhooks.md shows (FastAPI, Flask) run as written: a webhook signed with
the key's secret is taken, a tampered or unsigned one refused with 400. The checks "by hand"
(Python's standard library, OpenSSL in a shell) agree with the SDK's signatures."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reapi import webhooks

ROOT = Path(__file__).parents[2]
PAGE = (ROOT / "docs" / "webhooks.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", PAGE, re.S)
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


def test_the_python_check_by_hand_agrees_with_the_sdk():
    [snippet] = [s for s in SNIPPETS if "def verify_by_hand" in s]
    namespace: dict = {}
    exec(compile(snippet, "webhooks.md (by hand)", "exec"), namespace)
    verify_by_hand = namespace["verify_by_hand"]
    body = json.dumps(VIDEO).encode()
    headers = signed(body)
    assert verify_by_hand(body, headers, SECRET)
    # During a rotation: another secret's signature first, then this one's.
    other = "whsec_" + base64.b64encode(b"another secret, also 32 bytes!!!").decode()
    rotated = webhooks.sign(
        body, msg_id="msg_1", timestamp=int(headers["webhook-timestamp"]), secret=other
    )
    both = {**headers, "webhook-signature": f"{rotated} {headers['webhook-signature']}"}
    assert verify_by_hand(body, both, SECRET) and verify_by_hand(body, both, other)
    assert not verify_by_hand(body + b" ", headers, SECRET)
    assert not verify_by_hand(body, {**headers, "webhook-id": "msg_2"}, SECRET)
    stale = int(time.time()) - 600
    old = {
        **headers,
        "webhook-timestamp": str(stale),
        "webhook-signature": webhooks.sign(body, msg_id="msg_1", timestamp=stale, secret=SECRET),
    }
    assert not verify_by_hand(body, old, SECRET)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_the_shell_check_by_hand_computes_the_signature(tmp_path):
    [script] = re.findall(r"```bash\n(key=.*?)```", PAGE, re.S)
    body = json.dumps(VIDEO).encode() + b"\n"  # a trailing line break is part of the body
    (tmp_path / "body.json").write_bytes(body)
    headers = signed(body)
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET": SECRET,
        "WEBHOOK_ID": headers["webhook-id"],
        "WEBHOOK_TIMESTAMP": headers["webhook-timestamp"],
    }
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"v1,{out}" == headers["webhook-signature"]
