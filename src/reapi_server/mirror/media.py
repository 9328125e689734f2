"""An output's media type is read from its first bytes, never taken from an upstream.

Outputs are served from the gateway's own origin (or its bucket). A type an upstream claimed
(`text/html` for a "video", say) would let it serve a page there; the gateway stores and serves
only types it recognised itself, and anything else as opaque bytes (with `nosniff`, so that
browsers do not guess either).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from reapi.core import SNIFFED_TYPES, sniff_media_type

from .storage import Body

__all__ = ["OPAQUE", "served_type", "sniffed"]

OPAQUE = "application/octet-stream"
#: What `sniff_media_type` needs to see.
_HEAD_BYTES = 16


def served_type(stored: str) -> str:
    """The type to serve an object as: its stored one when the gateway could have sniffed it
    (objects stored by earlier versions carry their upstream's), else opaque bytes."""
    bare = stored.split(";", 1)[0].strip().lower()
    return bare if bare in SNIFFED_TYPES else OPAQUE


async def sniffed(body: Body) -> tuple[str, Body]:
    """The body's media type, and the body to store: a stream's first pieces are read to sniff
    it, then handed on ahead of the rest."""
    if isinstance(body, bytes):
        return sniff_media_type(body[:_HEAD_BYTES]) or OPAQUE, body
    stream = aiter(body)
    head = b""
    while len(head) < _HEAD_BYTES:
        piece = await anext(stream, None)
        if piece is None:
            break
        head += piece
    return sniff_media_type(head) or OPAQUE, _prepended(head, stream)


async def _prepended(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for piece in rest:
        yield piece
