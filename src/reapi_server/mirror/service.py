"""Cleaning up after a failed write without ever leaving a row that points at nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from ..runtime import Runtime
from .outputs import MirroredFile, discard
from .repository import recorded_ids

__all__ = ["discard_unrecorded"]

log = logging.getLogger("reapi_server.mirror")


async def discard_unrecorded(rt: Runtime, files: Sequence[MirroredFile]) -> None:
    """Delete the objects whose rows were not written.

    Called when the transaction that records them failed or was interrupted; it may still have
    committed (a cancellation can land after COMMIT), so the database decides. When it cannot be
    asked, everything is kept: an orphan object is harmless, a row without its object is not."""
    with anyio.CancelScope(shield=True):
        try:
            async with rt.db.read() as session:
                recorded = await recorded_ids(session, [f.file_id for f in files])
        except Exception as exc:
            log.warning("could not check stored outputs", extra={"code": type(exc).__name__})
            return
        await discard(rt.store, [f for f in files if f.file_id not in recorded])
