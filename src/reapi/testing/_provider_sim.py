"""What the provider simulators have alike: one account's key, faults, request counts and result
files, and the way a request goes through them.

A request is matched against the simulator's routes (an unknown path gets the provider's 404),
counted by its path template, served at once when it needs no key (result files, like the
presigned storage URLs providers hand out), else authenticated and handed to the simulator.
Whatever the provider refuses is raised as a `Refusal` holding the provider's own answer. The
wording, error shapes and status words stay in each simulator: they follow PROVIDERS.md.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from ._faults import Fault, FaultSwitch
from ._messages import Answer, SimRequest

__all__ = ["Outcome", "ProviderSimulator", "Refusal", "flagged", "json_object", "task_outcome"]

#: How a simulated task ends: as asked, failed by the model, or filtered by a content check.
Outcome = Literal["ok", "failed", "filtered"]
#: Result files' media types, by the name's ending (each simulator's routes allow its own).
_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "mp4": "video/mp4"}


class Refusal(Exception):
    """Raised anywhere in a simulator; its `answer`, in the provider's words, is what the
    client gets."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer[0])
        self.answer = answer


def flagged(prompt: object) -> bool:
    """Whether a prompt trips every simulator's content check: it holds "forbidden"."""
    return isinstance(prompt, str) and "forbidden" in prompt.lower()


def task_outcome(fault: Fault, prompt: object = None) -> Outcome:
    """How a task created under `fault` (and for `prompt`) ends."""
    if fault is Fault.CONTENT_POLICY or flagged(prompt):
        return "filtered"
    return "failed" if fault is Fault.TASK_FAILS else "ok"


def json_object(
    body: bytes, not_json: Callable[[], Refusal], not_object: Callable[[], Refusal] | None = None
) -> dict[str, Any]:
    """The body as a JSON object, else the provider's refusal (`not_object` defaults to
    `not_json`)."""
    try:
        value = json.loads(body)
    except ValueError:
        raise not_json() from None
    if not isinstance(value, dict):
        raise (not_object or not_json)()
    return value


class ProviderSimulator(ABC):
    """One simulated provider account. Thread-safe; state lives in memory."""

    #: The provider's paths. A `file` group marks the result files served without a key.
    _routes: ClassVar[re.Pattern[str]]
    #: GET paths that do no generation (what health probes read): no latency, see SimServer.
    _at_once: ClassVar[re.Pattern[str] | None] = None

    def __init__(self, api_key: str, *, polls_before_done: int) -> None:
        self.api_key = api_key
        #: Polls a task answers as still running before it ends (each simulator says how).
        self.polls_before_done = polls_before_done
        #: App-level faults, answered the provider's way; SimServer applies the transport faults.
        self.faults = FaultSwitch()
        #: Requests served per "METHOD path-template", for assertions (never bodies).
        self.requests: dict[str, int] = {}
        #: Result files by name, as `<origin>/files/<name>` serves them.
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer:
        """Answer one request; `origin` (scheme://host:port) is where result URLs point."""
        request = SimRequest(method, path, query, headers, body, origin)
        try:
            route = self._routes.fullmatch(path)
            if route is None:
                raise self._unknown_path()
            key = f"{method} {self._template(route)}"
            with self._lock:
                self.requests[key] = self.requests.get(key, 0) + 1
            answer = self._serve_without_key(request, route)
            if answer is None:
                self._authenticate(request)
                answer = self._serve(request, route)
            return answer
        except Refusal as refusal:
            return refusal.answer

    def answers_at_once(self, method: str, path: str) -> bool:
        """SimServer's hook: whether this call answers without generation time."""
        return method == "GET" and self._at_once is not None and bool(self._at_once.fullmatch(path))

    # -- what each provider says its own way -------------------------------------------------
    @abstractmethod
    def _unknown_path(self) -> Refusal:
        """The provider's 404 for a path it does not have."""

    @abstractmethod
    def _template(self, route: re.Match[str]) -> str:
        """The path template `requests` counts a matched route under."""

    @abstractmethod
    def _authenticate(self, request: SimRequest) -> None:
        """Raise the provider's refusal unless the request carries this account's key."""

    @abstractmethod
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        """Answer an authenticated request."""

    def _no_such_file(self) -> Refusal:
        """The answer for a result file that is not there."""
        return self._unknown_path()

    # -- shared steps --------------------------------------------------------------------------
    def _serve_without_key(self, request: SimRequest, route: re.Match[str]) -> Answer | None:
        """Result files need no key; None for every other route."""
        name = route.groupdict().get("file")
        return self._download(name, request.method) if name else None

    def _download(self, name: str, method: str) -> Answer:
        with self._lock:
            content = self._files.get(name)
        if content is None or method != "GET":
            raise self._no_such_file()
        return 200, {"content-type": _MEDIA_TYPES[name.rsplit(".", 1)[-1]]}, content

    def _has_key(self, request: SimRequest, scheme: str) -> bool:
        """Whether `Authorization: <scheme> <this account's key>` came with the request."""
        given, _, key = request.headers.get("authorization", "").partition(" ")
        return given == scheme and key == self.api_key
