"""The pure-Python MP4 box reader Topaz's adapter uses: real files (the simulators' sample, and
what ffmpeg lays out) and hand-built box trees for the layouts that matter."""

from __future__ import annotations

import pytest
from mp4_boxes import box, mp4

from reapi.providers._mp4 import Mp4Error, VideoInfo, read_video_info
from reapi.testing import sample_mp4


def test_the_sample_video():
    assert read_video_info(sample_mp4()) == VideoInfo(160, 90, 1.0, 12, 12.0)


@pytest.mark.parametrize(
    "layout",
    [
        {},
        {"version": 1},
        {"moov_last": True},
        {"large_mdat": True, "moov_last": True},
        {"audio_first": False},
    ],
)
def test_box_layouts(layout):
    info = read_video_info(mp4(width=1920, height=1080, frames=72, fps=24, **layout))
    assert info == VideoInfo(1920, 1080, 3.0, 72, 24.0)


@pytest.mark.parametrize(
    "stated",
    [
        {"movie_seconds": 1.0},  # the movie header says 1 s
        {"movie_seconds": 1.0, "track_seconds": 1.0},  # so does the track's
    ],
)
def test_the_duration_is_the_longest_the_file_states(stated):
    """What a length limit is held to: 60 s of samples under headers that say 1 s are 60 s."""
    assert read_video_info(mp4(frames=24 * 60, fps=24, **stated)).duration == 60.0


def test_a_quicktime_file_says_so():
    assert read_video_info(mp4(brand=b"qt  ")).container == "mov"
    assert read_video_info(mp4()).container == "mp4"


def test_a_fractional_rate_and_a_portrait_frame():
    info = read_video_info(mp4(width=720, height=1280, frames=50, fps=25))
    assert (info.width, info.height, info.frame_rate, info.duration) == (720, 1280, 25.0, 2.0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(40),
        box(b"ftyp", b"isom") + box(b"mdat", bytes(8)),  # no moov
        mp4()[:-40],  # cut inside a box
        box(b"ftyp", b"isom") + box(b"moov", box(b"mvhd", bytes(4))),  # truncated header
        box(b"ftyp", b"isom") + bytes([0, 0, 0, 200]) + b"moov" + bytes(8),  # size past the end
        mp4(frames=0),  # no samples listed (a fragmented file looks like this)
    ],
)
def test_what_cannot_be_read_is_an_mp4_error(data):
    with pytest.raises(Mp4Error):
        read_video_info(data)


def test_a_file_without_a_video_track_is_refused():
    data = mp4()
    with pytest.raises(Mp4Error):
        read_video_info(data.replace(b"vide", b"text"))
