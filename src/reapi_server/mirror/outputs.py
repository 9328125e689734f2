"""Mirror generated files into storage, and describe them as rows once they are there."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from reapi import ReapiError
from reapi.core import quick_init, translated_async

from ..errors import StorageUnavailable
from ..ids import TIME_DIGITS, ordered_id
from .keys import OutputNames
from .media import sniffed
from .storage import Body, ObjectStore

__all__ = ["MirroredFile", "Output", "file_url", "mirror"]

log = logging.getLogger("reapi_server.mirror")


@quick_init
@dataclass(frozen=True, slots=True)
class Output:
    """One generated file to store: its bytes, or a stream of them still arriving. No content
    type: whatever the upstream claimed, the stored one is sniffed from the bytes (`media`)."""

    #: image | video | thumbnail
    kind: str
    body: Body


@quick_init
@dataclass(frozen=True, slots=True)
class MirroredFile:
    file_id: str
    task_id: str
    storage_key: str
    content_type: str
    size_bytes: int
    kind: str


def _new_file_id() -> str:
    """48 hex digits, as always: the time (11, for the index) and 148 random bits (the id is the
    capability its URL gives)."""
    return ordered_id("file", 48 - TIME_DIGITS)


async def mirror(
    store: ObjectStore, names: OutputNames, task_id: str, outputs: Sequence[Output]
) -> list[MirroredFile]:
    """Put each output under `outputs/<task id>/<n>-<name>.<ext>` (`names`), in order. A failure
    raises `StorageUnavailable` — or the upstream's own error, when the stream of a file failed —
    and may leave earlier outputs of the task stored: the caller deletes the task's objects (or,
    for a video job, lets its retry write the same keys again)."""
    done: list[MirroredFile] = []

    async def put_all() -> None:
        for index, output in enumerate(outputs):
            body: Body = output.body
            try:
                content_type, body = await sniffed(output.body)
                key = names.key(task_id, index, content_type)
                size = await store.put(key, body, content_type)
            finally:
                for stream in (body, output.body):  # the sniffed stream, then the upstream's
                    if isinstance(stream, AsyncGenerator):
                        await stream.aclose()  # close the upstream response, read or not
            done.append(MirroredFile(_new_file_id(), task_id, key, content_type, size, output.kind))

    await translated_async(put_all, Exception, _storage_failure)
    return done


def _storage_failure(exc: BaseException) -> Exception:
    if isinstance(exc, ReapiError):
        return exc  # the upstream's own error (its stream failed), as it was
    log.warning("storage put failed", extra={"code": type(exc).__name__})
    return StorageUnavailable("the generated output could not be stored; nothing was charged")


def file_url(base_url: str, file_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/files/{file_id}/content"
