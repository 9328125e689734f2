"""A gateway stand-in on a real socket that answers from a script, and records what it got."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs

from reapi.testing import SimServer, json_answer

PNG_B64 = "iVBORw0KGgo="


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def image_answer(**extra: object) -> tuple[int, dict, dict]:
    return 200, {"x-request-id": "req_1"}, {"created": 1, "data": [{"b64_json": PNG_B64}], **extra}


def error_answer(status: int, code: str, **headers: str) -> tuple[int, dict, dict]:
    body = {"error": {"message": "said by the gateway", "type": "x", "param": None, "code": code}}
    return status, headers, body


def video(video_id: str, status: str = "completed") -> dict:
    return {"id": video_id, "object": "video", "model": "m", "status": status, "created_at": 1}


class ScriptedGateway:
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: tuple[int, dict, dict]) -> None:
        self.answers = deque(answers)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def handle(self, method, path, query, headers, body, *, origin):
        with self._lock:
            self.seen.append(Seen(method, path, parse_qs(query), dict(headers), body))
            status, out_headers, payload = (
                self.answers.popleft() if len(self.answers) > 1 else self.answers[0]
            )
        return json_answer(status, payload, out_headers)


def serve(*answers: tuple[int, dict, dict]) -> tuple[SimServer, ScriptedGateway]:
    app = ScriptedGateway(*answers)
    return SimServer(app), app
