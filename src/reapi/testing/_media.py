"""Real media bytes for simulators: PNGs drawn with zlib, and a tiny MP4 shipped as data."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from importlib import resources

__all__ = ["is_mp4", "is_png", "png_bytes", "sample_mp4"]


def png_bytes(
    width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (40, 90, 160)
) -> bytes:
    """A valid RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 6))
        + chunk(b"IEND", b"")
    )


@lru_cache(maxsize=1)
def sample_mp4() -> bytes:
    """A real one-second H.264 MP4 (made once with ffmpeg; see data/README)."""
    return resources.files(__package__).joinpath("data/sample.mp4").read_bytes()


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"
