"""Objects as files under one directory (the default backend, served by the gateway itself).

Each file starts with its content type and a newline, so that one file (then one rename) stores an
object whole. A body is written to a temp file beside its target and renamed over it (a small one,
on Linux, to a file without a name, then linked under its own): readers see all of it or nothing,
and a failed or cancelled write leaves no file behind. A process killed
mid-write leaves its temp file; the retention job sweeps it (`sweep_abandoned`).

A small task output written for the first time goes straight to its name instead (create, write,
close: no temp name, no link). Nobody reads it before its row exists, and the row is written after
it; a failed write removes it, and what a killed process leaves is under the task's prefix, which
its cleanup deletes (the hold sweeper queues it, `jobs.sweeper`). A video job's retry that writes
the key again finds the file there and takes the atomic way.

Where a key's file lives (`path_of`): a task's output `outputs/<task id>/<name>` is the file
`outputs/<xx>/<task id>-<name>`, `xx` the last two hex digits of the task id (random: a
request's id starts with the time, `ids.ordered_id`): 256 folders made once (`prepare`), files
spread evenly over them, no folder per request and no folder made while a request waits.
Outputs stored before this layout (one folder per task, the key itself as the path) are still
found there, served and deleted (`legacy_path_of`).

Nothing here changes the disk on the event loop: a small object's write, a stream's final rename
and a delete are calls on the store's `FileWriter` thread (`file_writer`), in batches, and a
stream's pieces go to worker threads. On a busy disk those calls can block for seconds; the
caller waits for its own, the loop serves everyone else meanwhile.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import anyio

from ..private import PRIVATE_FILE, make_private_dirs
from .file_writer import FileWriter
from .keys import OUTPUTS_PREFIX, is_task_id
from .storage import Body, OpenedObject, check_key, rechunk

__all__ = ["LocalDiskStore"]

#: Objects up to this size are written whole in one call on the writer's thread, and read on
#: the event loop itself (from the page cache, microseconds: less than a thread hop).
_INLINE_LIMIT = 1024 * 1024
#: Streams are written and read in pieces of this size, each on a worker thread.
_PIECE = 1024 * 1024
#: Temp files beside their targets: `.put-<random>`. Never a key (keys start with a letter).
TEMP_PREFIX = ".put-"
#: Between a task id and its output's name in a file name (task ids have no dash).
_JOIN = "-"
_SHARDS = tuple(f"{n:02x}" for n in range(256))
#: Linux's flag for a file made without a name (0 where the platform has none).
_UNNAMED: int = getattr(os, "O_TMPFILE", 0)


def _task_and_name(key: str) -> tuple[str, str] | None:
    """(task id, name) for a task's output `outputs/<task id>/<name>`, else None."""
    if not key.startswith(OUTPUTS_PREFIX):
        return None
    task_id, slash, name = key[len(OUTPUTS_PREFIX) :].partition("/")
    if not slash or not name or "/" in name or not is_task_id(task_id):
        return None
    return task_id, name


def _shard(task_id: str) -> str:
    return task_id[-2:]


class LocalDiskStore:
    def __init__(self, root: Path, *, writer: FileWriter | None = None) -> None:
        self.root = root
        #: Where the store's changes to the disk are made, off the event loop.
        self.writer = writer or FileWriter()

    @property
    def root(self) -> Path:
        return self._root

    @root.setter
    def root(self, root: Path) -> None:
        self._root = root
        #: Where outputs go, as text: each write builds its path as a string (three `Path`
        #: joins cost more than the rest of the path's making).
        self._outputs = os.path.join(os.fspath(root), OUTPUTS_PREFIX)

    def prepare(self) -> None:
        """Make the 256 folders outputs go to, so that no request makes one (start-up)."""
        for shard in _SHARDS:
            make_private_dirs(self.root / OUTPUTS_PREFIX / shard)

    def path_of(self, key: str) -> Path:
        """Where the object under `key` is written (see the module's docstring)."""
        return Path(self._file_of(key))

    def _file_of(self, key: str) -> str:
        return self._target(key)[0]

    def _target(self, key: str) -> tuple[str, bool]:
        """(the file of `key`, whether it is a task's output)."""
        check_key(key)
        parts = _task_and_name(key)
        if parts is None:
            return os.fspath(self.root / key), False
        task_id, name = parts
        return f"{self._outputs}{_shard(task_id)}/{task_id}{_JOIN}{name}", True

    def legacy_path_of(self, key: str) -> Path:
        """Where earlier versions wrote it: the key itself, one folder per task."""
        return self.root / check_key(key)

    def key_of(self, path: Path) -> str | None:
        """The key of a file `path_of` or `legacy_path_of` gave (None for a temp file)."""
        relative = path.relative_to(self.root).as_posix()
        if path.name.startswith(TEMP_PREFIX):
            return None
        folder, _, file_name = relative.rpartition("/")
        task_id, join, name = file_name.partition(_JOIN)
        if folder == f"{OUTPUTS_PREFIX}{_shard(task_id)}" and join and is_task_id(task_id):
            return f"{OUTPUTS_PREFIX}{task_id}/{name}"
        return relative

    async def put(self, key: str, body: Body, content_type: str) -> int:
        target, output = self._target(key)
        if isinstance(body, bytes) and len(body) <= _INLINE_LIMIT:
            await self.writer.run(_write_whole, target, _header(content_type) + body, output)
            return len(body)
        path = Path(target)
        handle, tmp = await anyio.to_thread.run_sync(_create_temp, path, content_type)
        size = 0
        # Worker threads are not abandoned on cancellation, so no write outlives the handle.
        with _removed_on_failure(tmp):
            try:
                async for piece in rechunk(body, _PIECE):
                    await anyio.to_thread.run_sync(handle.write, piece)
                    size += len(piece)
            finally:
                handle.close()
            await self.writer.run(os.replace, tmp, path)
        return size

    async def open(self, key: str) -> OpenedObject | None:
        try:
            handle = self.path_of(key).open("rb")
        except FileNotFoundError:
            try:
                handle = self.legacy_path_of(key).open("rb")
            except FileNotFoundError:
                return None
        header = handle.readline(256)
        size = os.fstat(handle.fileno()).st_size - len(header)
        inline = size <= _INLINE_LIMIT

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                piece = (
                    handle.read(_PIECE)
                    if inline
                    else await anyio.to_thread.run_sync(handle.read, _PIECE)
                )
                if not piece:
                    return
                yield piece

        async def close() -> None:
            handle.close()

        content_type = header.rstrip(b"\n").decode("ascii", "replace")
        return OpenedObject(content_type, size, chunks(), close)

    async def delete(self, key: str) -> None:
        await self.writer.run(self._delete, key)

    def _delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)
        legacy = self.legacy_path_of(key)
        legacy.unlink(missing_ok=True)
        _remove_task_folder(legacy.parent)  # once its last file is gone

    async def delete_prefix(self, prefix: str) -> None:
        await anyio.to_thread.run_sync(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> None:
        directory = self.legacy_path_of(prefix.rstrip("/"))
        task_id = prefix.removeprefix(OUTPUTS_PREFIX).removesuffix("/")
        if prefix == f"{OUTPUTS_PREFIX}{task_id}/" and is_task_id(task_id):
            start = f"{task_id}{_JOIN}"
            shard = self.root / OUTPUTS_PREFIX / _shard(task_id)
            with suppress(FileNotFoundError), os.scandir(shard) as entries:
                for entry in entries:
                    if entry.name.startswith(start):
                        Path(entry.path).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)

    def url(self, key: str) -> str | None:
        return None

    async def sweep_abandoned(self, before: float) -> int:
        return await anyio.to_thread.run_sync(self._sweep_abandoned, before)

    def _sweep_abandoned(self, before: float) -> int:
        """A write in progress touches its temp file at least every piece (and a stalled
        download is cut off long before `before`): an older one was left by a dead process."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for tmp in list(self.root.rglob(f"{TEMP_PREFIX}*")):  # listed before any rmdir
            try:
                if tmp.stat().st_mtime >= before:
                    continue
                tmp.unlink()
            except FileNotFoundError:  # finished or removed meanwhile
                continue
            removed += 1
            _remove_task_folder(tmp.parent)  # when the dead write made it (earlier layout)
        return removed


def _remove_task_folder(directory: Path) -> None:
    """An earlier layout's folder of one task, when nothing is left in it (never a shard)."""
    if is_task_id(directory.name):
        with suppress(OSError):  # not empty, or gone
            directory.rmdir()


def _header(content_type: str) -> bytes:
    return content_type.encode("ascii", "replace") + b"\n"


def _write_whole(target: str, data: bytes, output: bool) -> None:
    """A small object (on the writer's thread): a task's output new under its name, else the
    atomic way."""
    if not (output and _write_new(target, data)):
        _write_small(target, data)


def _write_small(target: str, data: bytes) -> None:
    """A small object: written whole to a file without a name, then named (Linux);
    else to a temp file beside it, then renamed."""
    if _UNNAMED and _write_unnamed(target, data):
        return
    tmp = Path(f"{os.path.dirname(target)}/{TEMP_PREFIX}{secrets.token_hex(8)}")
    with _removed_on_failure(tmp):
        descriptor = _open_new(tmp)
        try:
            _write_all(descriptor, data)
        finally:
            os.close(descriptor)
        os.replace(tmp, target)


def _write_new(target: str, data: bytes) -> bool:
    """A task's output, straight under its name (see the module's docstring): three calls where
    `_write_unnamed` makes four, one of them a path through /proc. False, with nothing written,
    when the file is already there (written again) or its folder is missing."""
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except (FileExistsError, FileNotFoundError):
        return False
    try:
        try:
            _write_all(descriptor, data)
        finally:
            os.close(descriptor)
    except BaseException:
        os.unlink(target)  # ours (O_EXCL made it): a failed write leaves nothing
        raise
    return True


def _write_unnamed(target: str, data: bytes) -> bool:
    """`O_TMPFILE`: a file with no name in the target's folder until it is whole, then linked
    under the target's name. No temp name to make and rename away (about a fifth of the CPU of
    the two), and a process killed mid-write leaves nothing behind: the kernel frees the file.
    False, with nothing written, where this cannot be done (a file system without O_TMPFILE,
    no /proc, a missing folder, or a key written again: `link` never replaces a file)."""
    try:
        descriptor = os.open(os.path.dirname(target), os.O_WRONLY | _UNNAMED, PRIVATE_FILE)
    except OSError:
        return False
    try:
        _write_all(descriptor, data)
        try:
            # linkat(AT_SYMLINK_FOLLOW) of the descriptor's /proc entry: os.link calls linkat,
            # with that flag, only when given a folder descriptor (ignored: the path is absolute).
            os.link(f"/proc/self/fd/{descriptor}", target, src_dir_fd=descriptor)
        except OSError:
            return False
        return True
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    with memoryview(data) as view:
        written = 0
        while written < len(view):
            written += os.write(descriptor, view[written:])


def _create_temp(path: Path, content_type: str) -> tuple[BinaryIO, Path]:
    tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    handle = os.fdopen(_open_new(tmp), "wb")
    handle.write(_header(content_type))
    return handle, tmp


def _open_new(tmp: Path) -> int:
    """Create the temp file; first its folder if it is missing (a store not `prepare`d, or
    one whose folders were removed under it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for _ in range(2):
        try:
            return os.open(tmp, flags, PRIVATE_FILE)
        except FileNotFoundError:
            make_private_dirs(tmp.parent)
    return os.open(tmp, flags, PRIVATE_FILE)


@contextmanager
def _removed_on_failure(tmp: Path) -> Iterator[None]:
    """Delete the temp file when the block fails or is cancelled: a failed task leaves
    nothing behind."""
    try:
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
