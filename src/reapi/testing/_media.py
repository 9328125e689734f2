"""Real media bytes for simulators, made without an imaging library: one-colour PNG (zlib) and
lossless WebP images, and a tiny MP4 shipped as package data."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from importlib import resources

__all__ = ["is_mp4", "is_png", "is_webp", "png_bytes", "sample_mp4", "webp_bytes"]

RGB = tuple[int, int, int]


def _check(width: int, height: int, limit: int) -> None:
    if not (1 <= width <= limit and 1 <= height <= limit):
        raise ValueError(f"image sides must be between 1 and {limit}, got {width}x{height}")


@lru_cache(maxsize=64)
def png_bytes(width: int = 64, height: int = 64, rgb: RGB = (40, 90, 160)) -> bytes:
    """A valid 8-bit RGB PNG of one colour."""
    _check(width, height, 1 << 16)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 6))
        + chunk(b"IEND", b"")
    )


@lru_cache(maxsize=64)
def webp_bytes(width: int = 64, height: int = 64, rgb: RGB = (40, 90, 160)) -> bytes:
    """A valid lossless (VP8L) WebP of one colour.

    Each of the five prefix codes is a "simple" code with one symbol, which costs zero bits per
    pixel, so the whole image is a 12-byte bitstream whatever its size.
    """
    _check(width, height, 1 << 14)
    red, green, blue = rgb
    fields = [  # (value, bit count), written least significant bit first
        (0x2F, 8),  # VP8L signature
        (width - 1, 14),
        (height - 1, 14),
        (0, 1),  # alpha unused
        (0, 3),  # version
        (0, 1),  # no transform
        (0, 1),  # no colour cache
        (0, 1),  # no meta prefix codes
    ]
    for symbol in (green, red, blue, 255):  # green, red, blue, alpha: one 8-bit symbol each
        fields += [(1, 1), (0, 1), (1, 1), (symbol, 8)]
    fields += [(1, 1), (0, 1), (0, 1), (0, 1)]  # distance: one 1-bit symbol, 0
    bits, used = 0, 0
    for value, count in fields:
        bits |= value << used
        used += count
    stream = bits.to_bytes((used + 7) // 8, "little")
    chunk = b"VP8L" + struct.pack("<I", len(stream)) + stream + b"\0" * (len(stream) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


@lru_cache(maxsize=1)
def sample_mp4() -> bytes:
    """A real one-second 160x90 H.264 MP4 (made once with ffmpeg; see data/README.md)."""
    return resources.files(__package__).joinpath("data/sample.mp4").read_bytes()


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"
