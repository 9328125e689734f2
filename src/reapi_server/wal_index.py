"""What the SQLite WAL holds, read from its WAL-index (the `-shm` file) without SQLite.

The WAL file's size says little once a checkpoint has restarted the WAL: the file keeps its size
(`journal_size_limit`) and SQLite overwrites it from its beginning. The WAL-index header, shared
by every connection of every process, says what the WAL holds: `mxFrame`, the frames committed
since the WAL last started over, and `nBackfill`, how many of them a checkpoint has already
copied into the database (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Both
are 32-bit integers in the machine's byte order: `mxFrame` at byte 16 of the header (of which
the file holds two copies, bytes 0-47 and 48-95, equal unless a writer is updating them),
`nBackfill` at byte 96, in the checkpoint information that follows; the page size at byte 14.

One `pread` of 136 bytes, on a descriptor kept open: closing any descriptor of a file drops
every POSIX lock the process holds on it, and SQLite's connections in this process lock the
`-shm` file (https://www.sqlite.org/howtocorrupt.html, section 2.2). So a descriptor is opened
once per file and process, and closed only once SQLite has deleted that file (its inode is no
longer the path's), when no connection can be using it.
"""

from __future__ import annotations

import os
import struct

__all__ = ["WalIndex"]

_HEADER = 136
_FRAMES = struct.Struct("=I")
#: The page size (1 stands for 65536), at byte 14; each frame is a page and a 24-byte header.
_PAGE = struct.Struct("=H")
_FRAME_HEADER = 24
#: Open descriptors, by `-shm` path, for the life of the process (see above).
_OPEN: dict[str, int] = {}


class WalIndex:
    """The WAL-index of the database at `database` (its `-shm` file)."""

    def __init__(self, database: str) -> None:
        self.path = database + "-shm"

    def opened(self) -> bool:
        return self.path in _OPEN

    def frames(self) -> tuple[int, int, int] | None:
        """(frames the WAL holds, how many of them are copied into the database, bytes per
        frame), or None when there is no WAL-index to read or a writer was updating it."""
        fd = _OPEN.get(self.path)
        if fd is None:
            try:
                fd = _OPEN[self.path] = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
        header = os.pread(fd, _HEADER, 0)
        if len(header) < _HEADER or header[:48] != header[48:96]:
            return None
        held, copied = _FRAMES.unpack_from(header, 16)[0], _FRAMES.unpack_from(header, 96)[0]
        page = _PAGE.unpack_from(header, 14)[0]
        return held, copied, (page if page != 1 else 65536) + _FRAME_HEADER

    def reopen(self) -> None:
        """After a checkpoint (not per commit: a `stat` and an `fstat`): if SQLite deleted the
        file and made another (every connection to the database had closed), read the new one."""
        fd = _OPEN.get(self.path)
        if fd is None:
            return
        try:
            current: int | None = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            del _OPEN[self.path]
            os.close(fd)  # its file is gone: no connection locks it any more
