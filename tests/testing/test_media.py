"""Simulator media are real files: decoded back with the standard library (and box walks)."""

import struct
import zlib

import pytest

from reapi.testing import (
    is_jpeg,
    is_mp4,
    is_png,
    is_webp,
    jpeg_bytes,
    png_bytes,
    sample_mp4,
    webp_bytes,
)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert is_png(data)
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def test_png_decodes_to_the_requested_pixels():
    chunks = png_chunks(png_bytes(5, 3, (1, 2, 3)))
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, interlace) == (5, 3, 8, 2, 0)
    rows = zlib.decompress(chunks[1][1])
    assert rows == (b"\x00" + b"\x01\x02\x03" * 5) * 3  # filter 0, then RGB pixels


def test_png_rejects_empty_sizes():
    with pytest.raises(ValueError):
        png_bytes(0, 10)


def test_webp_is_a_lossless_riff_of_the_requested_size():
    data = webp_bytes(37, 21, (200, 10, 30))
    assert is_webp(data) and data[12:16] == b"VP8L"
    (riff_size,) = struct.unpack("<I", data[4:8])
    assert riff_size == len(data) - 8
    stream = data[20:]
    assert stream[0] == 0x2F
    bits = int.from_bytes(stream[1:5], "little")
    assert (bits & 0x3FFF) + 1 == 37 and ((bits >> 14) & 0x3FFF) + 1 == 21


def test_jpeg_has_markers_and_size():
    data = jpeg_bytes(40, 24)
    assert is_jpeg(data) and data.endswith(b"\xff\xd9")
    sof = data.index(b"\xff\xc0")
    height, width = struct.unpack(">HH", data[sof + 5 : sof + 9])
    assert (width, height) == (40, 24)


def mp4_boxes(data: bytes) -> list[bytes]:
    kinds, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert size >= 8
        kinds.append(kind)
        at += size
    assert at == len(data)
    return kinds


def test_sample_mp4_is_a_small_faststart_h264_file():
    data = sample_mp4()
    assert is_mp4(data) and len(data) < 20_000
    boxes = mp4_boxes(data)
    assert boxes[0] == b"ftyp" and boxes.index(b"moov") < boxes.index(b"mdat")  # faststart
    assert b"avc1" in data  # H.264


def test_magic_helpers_say_no_to_other_bytes():
    assert not is_png(b"GIF89a") and not is_mp4(b"\x00" * 12) and not is_webp(b"RIFF")
