"""`-o` files and `BinaryContent.write_to_file` are written whole or not at all: Ctrl-C in the
middle of the write leaves the older file of that name as it was, and nothing half-written."""

import io
import os
import stat

import pytest

from reapi.types import BinaryContent


class _CutHalfway:
    """A file whose first write stops halfway with Ctrl-C."""

    def __init__(self, real: io.BufferedWriter) -> None:
        self._real = real

    def __enter__(self) -> "_CutHalfway":
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def write(self, data: bytes) -> int:
        self._real.write(bytes(data)[: len(data) // 2])
        self._real.flush()
        raise KeyboardInterrupt


@pytest.fixture
def ctrl_c_mid_write(monkeypatch, tmp_path):
    """Once called: every file opened for writing in `tmp_path` (by path or descriptor) is
    cut halfway."""
    real_open = io.open

    def ours(file: object) -> bool:
        if isinstance(file, int):
            file = os.readlink(f"/proc/self/fd/{file}")
        return str(file).startswith(str(tmp_path))

    def opened(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return _CutHalfway(handle) if "w" in mode and ours(file) else handle

    return lambda: monkeypatch.setattr(io, "open", opened)


def test_ctrl_c_mid_write_leaves_the_old_file_whole(tmp_path, ctrl_c_mid_write):
    target = tmp_path / "video.mp4"
    target.write_bytes(b"the older video")
    ctrl_c_mid_write()
    with pytest.raises(KeyboardInterrupt):
        BinaryContent(b"x" * 4096, "video/mp4").write_to_file(target)
    assert target.read_bytes() == b"the older video"
    assert os.listdir(tmp_path) == ["video.mp4"]  # no part file left behind


def test_ctrl_c_mid_write_leaves_no_file_when_there_was_none(tmp_path, ctrl_c_mid_write):
    ctrl_c_mid_write()
    with pytest.raises(KeyboardInterrupt):
        BinaryContent(b"x" * 4096, "video/mp4").write_to_file(tmp_path / "video.mp4")
    assert os.listdir(tmp_path) == []


def test_a_whole_write_replaces_the_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    BinaryContent(b"new image", "image/png").write_to_file(target)
    assert target.read_bytes() == b"new image" and os.listdir(tmp_path) == ["out.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_a_link_is_followed_and_a_pipe_written_directly(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    (tmp_path / "link.png").symlink_to(real)
    BinaryContent(b"new", "image/png").write_to_file(tmp_path / "link.png")
    assert (tmp_path / "link.png").is_symlink() and real.read_bytes() == b"new"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        BinaryContent(b"to the pipe", "image/png").write_to_file(fifo)
        assert os.read(reader, 100) == b"to the pipe"
    finally:
        os.close(reader)
    assert sorted(os.listdir(tmp_path)) == ["link.png", "pipe", "real.png"]
