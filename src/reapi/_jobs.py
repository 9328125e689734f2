"""Video job handles: an opaque public id that carries what is needed to resume polling.

In-process mode keeps no database, so the id itself says which route and upstream task a video
is: any process with the same keys can resume it by id. It names no user data.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass

from ._detached import translated
from ._exceptions import InvalidRequestError

__all__ = ["VideoHandle"]

_PREFIX = "video_"


@dataclass(frozen=True, slots=True)
class VideoHandle:
    model: str
    provider: str
    upstream_model: str
    task_id: str
    created_at: int
    seconds: int | None = None
    size: str | None = None

    def encode(self) -> str:
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, video_id: str) -> VideoHandle:
        if not video_id.startswith(_PREFIX):
            raise _unknown()
        token = video_id[len(_PREFIX) :]

        def decoded() -> VideoHandle:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return cls(**json.loads(raw))

        return translated(decoded, (binascii.Error, ValueError, TypeError), lambda _: _unknown())


def _unknown() -> InvalidRequestError:
    return InvalidRequestError(
        "no such video: this id was not issued by reapi", param="video_id", code="not_found"
    )
