"""Storage keys: `outputs/<task id>/<n>.<ext>`. They name only the task (an image request or a
video job, both random ids) and the output's place in it: no user data, ever."""

from __future__ import annotations

import re

from reapi.core import extension_for

from .storage import check_key

__all__ = ["OUTPUTS_PREFIX", "is_task_id", "output_key", "task_of_prefix", "task_prefix"]

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


def output_key(task_id: str, index: int, content_type: str) -> str:
    # One check: the key passing it, its prefix (`task_prefix`) would pass it too.
    return check_key(f"{OUTPUTS_PREFIX}{task_id}/{index}.{extension_for(content_type)}")
