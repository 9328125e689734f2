"""Storage keys: `outputs/<task id>/<n>-<name>.<ext>`. They name only the task (an image request
or a video job, both random ids) and the output's place in it: no user data, ever.

`<name>` is a keyed hash of the task id and the place, under a key derived from the fleet's
secret. Task ids are not secrets (a request id is the `x-request-id` header, in every log line
and trace span; a video id is in every answer about it), and a bucket served on a public domain
(`s3_public_base_url`) serves any key it is asked for: without the name, whoever saw an id could
fetch its outputs from the bucket, key or not. The name is the same for every attempt at the
same output, so a video job's retry still writes the keys a failed attempt left.
"""

from __future__ import annotations

import re

from reapi.core import extension_for

from ..derived_keys import KeyedDigest, derive_key
from .storage import check_key

__all__ = [
    "OUTPUTS_PREFIX",
    "OutputNames",
    "is_task_id",
    "task_of_prefix",
    "task_prefix",
]

#: Every key the gateway writes starts with this.
OUTPUTS_PREFIX = "outputs/"

#: `req_<hex>` (an image request) or `video_<hex>`: what the gateway generates, nothing else.
_TASK_ID = re.compile(r"^[a-z]{1,8}_[0-9a-f]{16,40}$")


def is_task_id(value: str) -> bool:
    return bool(_TASK_ID.match(value))


def task_prefix(task_id: str) -> str:
    return check_key(f"{OUTPUTS_PREFIX}{task_id}/")


def task_of_prefix(target: str) -> str | None:
    """The task whose prefix this is (`outputs/<task id>/`), or None for an object's key."""
    task_id = target.removeprefix(OUTPUTS_PREFIX).removesuffix("/")
    return task_id if target.endswith("/") and is_task_id(task_id) else None


#: Hex digits of an output's name: 128 bits, as hard to guess as the file id behind its URL.
_NAME_DIGITS = 32


class OutputNames:
    """The keys outputs are stored under, named with the fleet's secret (see the module)."""

    __slots__ = ("_names",)

    def __init__(self, secret: bytes) -> None:
        self._names = KeyedDigest(derive_key(secret, "output-names"))

    def key(self, task_id: str, index: int, content_type: str) -> str:
        name = self._names.hex(f"{task_id}/{index}")[:_NAME_DIGITS]
        # One check: the key passing it, its prefix (`task_prefix`) would pass it too.
        extension = extension_for(content_type)
        return check_key(f"{OUTPUTS_PREFIX}{task_id}/{index}-{name}.{extension}")
