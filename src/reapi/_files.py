"""Files written whole or not at all.

`reapi image ... -o out.png` (and `BinaryContent.write_to_file`) write the bytes to a hidden
file beside the target, then rename it over the target: a Ctrl-C (or a crash, or a full disk)
mid-write never leaves a truncated image or video under the asked name, and an older file of
that name stays whole until the new one replaces it. The rename is atomic on one file system;
the hidden file is beside the target so that it is on the same one. A target that is a link is
followed (the file it names is replaced, the link stays); one that is no regular file (a pipe,
`/dev/stdout`) is written directly, as there is nothing to replace."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        with target.open("wb") as stream:
            stream.write(data)
        return
    part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    # Made as `open(target, "wb")` would make the target: mode 0o666 less the umask.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(part, target)
    except BaseException:  # Ctrl-C too: the part file goes, the target is untouched
        with contextlib.suppress(OSError):
            part.unlink()
        raise
