"""Real JPEG bytes for simulators whose providers answer in JPEG by default (Seedream)."""

from __future__ import annotations

import struct
from functools import lru_cache

__all__ = ["is_jpeg", "jpeg_bytes"]


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


@lru_cache(maxsize=32)
def jpeg_bytes(width: int = 64, height: int = 64) -> bytes:
    """A valid baseline greyscale JPEG of the given size, mid-grey everywhere.

    A flat image has only zero coefficients, so every 8x8 block is "DC difference 0, end of
    block". With one-symbol Huffman tables (code `0` for each) a block is two zero bits, and a
    4K image is a few hundred kilobytes, made in microseconds without an imaging library.
    """
    blocks = -(-width // 8) * -(-height // 8)
    spare = blocks % 4  # blocks in a last, partial byte: pad it with 1 bits
    scan = bytes(blocks // 4) + (bytes([(1 << (8 - 2 * spare)) - 1]) if spare else b"")
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"),
            _segment(0xDB, b"\0" + b"\x01" * 64),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\0"),
            # DC table 0 and AC table 0: one code of length 1, for symbol 0 (DC category 0 / EOB).
            _segment(0xC4, b"\x00\x01" + b"\0" * 15 + b"\x00"),
            _segment(0xC4, b"\x10\x01" + b"\0" * 15 + b"\x00"),
            _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        )
    )


def is_jpeg(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8\xff")
