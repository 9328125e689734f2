"""Read what an upscaler needs to know about an MP4/MOV file from its boxes, in pure Python.

Topaz asks for the source's size, duration, frame rate and frame count before it takes the
upload. They are all in the `moov` box of an ISO base media file:

- `moov/mvhd`: the movie's timescale and duration;
- `moov/trak/tkhd`: each track's presentation width and height (16.16 fixed point);
- `moov/trak/mdia/hdlr`: the track's kind (`vide` for video);
- `moov/trak/mdia/mdhd`: the track's own timescale and duration;
- `moov/trak/mdia/minf/stbl/stts`: (sample count, sample delta) runs; their counts add up to the
  number of frames, and count times delta to the time the samples play.

The duration given is the longest of the movie's, the track's and the samples': each is the
file's own claim, and a file that states a short movie over long samples is as long as they.

Only the box headers are walked: sample data (`mdat`) is skipped over wherever it sits.
Fragmented files (`moof`), whose samples are not listed in `stts`, are refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Mp4Error", "VideoInfo", "read_video_info"]


class Mp4Error(ValueError):
    """The bytes are not an MP4/MOV file this reader understands."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    #: Seconds: the longest of the movie's, the video track's and its samples' durations.
    duration: float
    frame_count: int
    #: Frames per second, as the track's timing gives it (e.g. 23.976).
    frame_rate: float
    #: `mov` for a QuickTime file (major brand `qt  `), else `mp4`.
    container: str = "mp4"


@dataclass(frozen=True, slots=True)
class _Box:
    kind: bytes
    start: int  # first byte of the payload
    end: int  # one past the last byte of the payload


def _boxes(data: bytes, start: int, end: int) -> Iterator[_Box]:
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if offset + 16 > end:
                raise Mp4Error("truncated box header")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:  # the box runs to the end of its parent
            size = end - offset
        if size < header or offset + size > end:
            raise Mp4Error("a box is larger than the data around it")
        yield _Box(kind, offset + header, offset + size)
        offset += size


def _child(data: bytes, box: _Box, kind: bytes) -> _Box | None:
    return next((b for b in _boxes(data, box.start, box.end) if b.kind == kind), None)


def _path(data: bytes, box: _Box, *kinds: bytes) -> _Box | None:
    found: _Box | None = box
    for kind in kinds:
        if found is None:
            return None
        found = _child(data, found, kind)
    return found


def _full_box(data: bytes, box: _Box, v0: str, v1: str) -> tuple[int, ...]:
    """A "full box" payload: version, 3 flag bytes, then fields laid out by version."""
    if box.end - box.start < 4:
        raise Mp4Error("truncated box")
    layout = ">" + (v1 if data[box.start] == 1 else v0)
    if box.start + 4 + struct.calcsize(layout) > box.end:
        raise Mp4Error("truncated box")
    return struct.unpack_from(layout, data, box.start + 4)


def _timing(data: bytes, box: _Box) -> tuple[int, int]:
    """(timescale, duration) of an `mvhd` or `mdhd` box."""
    _, _, timescale, duration = _full_box(data, box, "IIII", "QQIQ")
    return timescale, duration


def _size(data: bytes, tkhd: _Box) -> tuple[int, int]:
    # After the times, id and duration: 8 reserved, layer, group, volume, 2 reserved, a 3x3
    # matrix (36 bytes), then width and height as 16.16 fixed point.
    fields = _full_box(data, tkhd, "III4xI52xII", "QQI4xQ52xII")
    return fields[-2] >> 16, fields[-1] >> 16


def _samples(data: bytes, stts: _Box) -> tuple[int, int]:
    """(frames, their total duration in the track's timescale), from the sample table."""
    (entries,) = _full_box(data, stts, "I", "I")
    first = stts.start + 8
    if first + 8 * entries > stts.end:
        raise Mp4Error("truncated sample table")
    runs = [struct.unpack_from(">II", data, first + 8 * i) for i in range(entries)]
    return sum(count for count, _ in runs), sum(count * delta for count, delta in runs)


def _video_track(data: bytes, moov: _Box) -> _Box:
    for trak in _boxes(data, moov.start, moov.end):
        hdlr = _path(data, trak, b"mdia", b"hdlr") if trak.kind == b"trak" else None
        if hdlr is not None and data[hdlr.start + 8 : hdlr.start + 12] == b"vide":
            return trak
    raise Mp4Error("the file has no video track")


def read_video_info(data: bytes) -> VideoInfo:
    """The video track's geometry and timing; `Mp4Error` if the file cannot be read."""
    if data[4:8] != b"ftyp":
        raise Mp4Error("not an MP4/MOV file")
    # Walking every top-level box also catches a file cut short inside its sample data.
    top = list(_boxes(data, 0, len(data)))
    moov = next((b for b in top if b.kind == b"moov"), None)
    mvhd = _child(data, moov, b"mvhd") if moov else None
    if moov is None or mvhd is None:
        raise Mp4Error("the file has no movie header")
    trak = _video_track(data, moov)
    tkhd = _child(data, trak, b"tkhd")
    mdhd = _path(data, trak, b"mdia", b"mdhd")
    stts = _path(data, trak, b"mdia", b"minf", b"stbl", b"stts")
    if tkhd is None or mdhd is None or stts is None:
        raise Mp4Error("the video track has no header or sample table")
    width, height = _size(data, tkhd)
    frames, sample_time = _samples(data, stts)
    movie_scale, movie_duration = _timing(data, mvhd)
    track_scale, track_duration = _timing(data, mdhd)
    if not (width and height and frames and movie_scale and track_scale and track_duration):
        raise Mp4Error("the video track has no frames (a fragmented MP4 is not supported)")
    track_seconds = track_duration / track_scale
    # The longest of what the file states: a movie header can say 10 s over samples that play
    # for an hour, and a length limit (what an enhancement is priced for) must see the hour.
    seconds = max(movie_duration / movie_scale, track_seconds, sample_time / track_scale)
    return VideoInfo(
        width=width,
        height=height,
        duration=round(seconds, 3),
        frame_count=frames,
        frame_rate=round(frames / track_seconds, 3),
        container="mov" if data[8:12] == b"qt  " else "mp4",
    )
