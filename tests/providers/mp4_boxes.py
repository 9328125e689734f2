"""Hand-built MP4 box trees for tests: just the boxes `reapi.providers._mp4` reads, laid out as
ISO/IEC 14496-12 says, in version 0 (32-bit times) or version 1 (64-bit times)."""

from __future__ import annotations

import struct


def box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:  # size 1, then a 64-bit size after the type
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, fields: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + fields)


def _times(version: int, timescale: int, duration: int) -> bytes:
    if version == 1:
        return struct.pack(">QQIQ", 0, 0, timescale, duration)
    return struct.pack(">IIII", 0, 0, timescale, duration)


def tkhd(version: int, width: int, height: int) -> bytes:
    head = (
        struct.pack(">QQI4xQ", 0, 0, 1, 0) if version == 1 else struct.pack(">III4xI", 0, 0, 1, 0)
    )
    return full_box(
        b"tkhd", version, head + bytes(52) + struct.pack(">II", width << 16, height << 16)
    )


def track(
    handler: bytes,
    *,
    width: int,
    height: int,
    frames: int,
    fps: int,
    version: int = 0,
    track_seconds: float | None = None,
) -> bytes:
    """A track of `frames` samples at `fps` (timescale fps * 100), stts split in two runs; its
    header states `track_seconds` if given (a file may say what its samples do not)."""
    scale = fps * 100
    first = frames // 2
    stts = full_box(b"stts", 0, struct.pack(">IIIII", 2, first, 100, frames - first, 100))
    hdlr = full_box(b"hdlr", 0, struct.pack(">I4s12x", 0, handler) + b"\0")
    stated = frames * 100 if track_seconds is None else round(track_seconds * scale)
    mdia = box(
        b"mdia",
        full_box(b"mdhd", version, _times(version, scale, stated) + bytes(4))
        + hdlr
        + box(b"minf", box(b"stbl", stts)),
    )
    return box(b"trak", tkhd(version, width, height) + mdia)


def mp4(
    *,
    width: int = 1280,
    height: int = 720,
    frames: int = 48,
    fps: int = 24,
    version: int = 0,
    moov_last: bool = False,
    large_mdat: bool = False,
    audio_first: bool = True,
    brand: bytes = b"isom",
    movie_seconds: float | None = None,
    track_seconds: float | None = None,
) -> bytes:
    """A file whose video track has these properties (an audio track before it by default);
    its movie and track headers state `movie_seconds` and `track_seconds` if given."""
    seconds = frames / fps if movie_seconds is None else movie_seconds
    mvhd = full_box(b"mvhd", version, _times(version, 1000, round(seconds * 1000)) + bytes(80))
    tracks = track(
        b"vide",
        width=width,
        height=height,
        frames=frames,
        fps=fps,
        version=version,
        track_seconds=track_seconds,
    )
    if audio_first:
        tracks = track(b"soun", width=0, height=0, frames=10, fps=10) + tracks
    moov = box(b"moov", mvhd + tracks)
    mdat = box(b"mdat", bytes(64), large=large_mdat)
    ftyp = box(b"ftyp", brand + b"\0\0\x02\0isomiso2mp41")
    return ftyp + (mdat + moov if moov_last else moov + mdat)
