"""Mirror generated files into storage, and describe them as rows once they are there."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from ..errors import StorageUnavailable
from .storage import ObjectStore

__all__ = ["MirroredFile", "discard", "file_url", "mirror"]

log = logging.getLogger("reapi_server.mirror")


@dataclass(frozen=True, slots=True)
class MirroredFile:
    file_id: str
    storage_key: str
    content_type: str
    size_bytes: int
    kind: str


def _new_file_id() -> str:
    return f"file_{secrets.token_hex(24)}"


async def mirror(store: ObjectStore, files: Sequence[tuple[str, bytes, str]]) -> list[MirroredFile]:
    """Put each (kind, bytes, content type). All or nothing: on a failure, what was already put is
    deleted again and `StorageUnavailable` is raised."""
    done: list[MirroredFile] = []
    try:
        for kind, data, content_type in files:
            file_id = _new_file_id()
            key = f"outputs/{file_id}"
            await store.put(key, data, content_type)
            done.append(MirroredFile(file_id, key, content_type, len(data), kind))
    except Exception as exc:
        log.warning("storage put failed: %s", type(exc).__name__)
        await discard(store, done)
        raise StorageUnavailable(
            "the generated output could not be stored; nothing was charged"
        ) from None
    return done


async def discard(store: ObjectStore, files: Sequence[MirroredFile]) -> None:
    """Delete objects whose rows were never written (shielded: runs during cancellation too)."""
    with anyio.CancelScope(shield=True):
        for file in files:
            try:
                await store.delete(file.storage_key)
            except Exception as exc:  # best effort; an orphan object is harmless, a lie is not
                log.warning("storage delete failed: %s", type(exc).__name__)


def file_url(base_url: str, file_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/files/{file_id}/content"
