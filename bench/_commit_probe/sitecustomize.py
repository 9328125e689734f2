"""Bench-only: the group committer's counters, written every 0.2 s as JSON to
$BENCH_COMMIT_PROBE_OUT.<pid> (`bench/commit_batching.py`).

Loaded as `sitecustomize` when this folder is on PYTHONPATH: it wraps three methods of
`GroupCommitter` as its module is imported (counting only) and changes nothing else. Counts:
opening ops (`holds`), closing ops (`settles`), transactions committed at once (`leads`), the
runner's transactions (`batches`) and their ops, and the event loop thread's CPU time and
context switches from /proc.
"""

from __future__ import annotations

import collections
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
import time

OUT = os.environ.get("BENCH_COMMIT_PROBE_OUT")
counts: collections.Counter[str] = collections.Counter()
LOOP_THREAD = threading.get_native_id()


def _patch(module) -> None:  # reapi_server.group_commit
    cls = module.GroupCommitter
    run_sized, lead, commit, init = cls.run_sized, cls._lead, cls._commit, cls.__init__

    async def counted_run_sized(self, op, account=None, at_once=False, *args):
        counts["holds" if at_once else "settles"] += 1
        return await run_sized(self, op, account, at_once, *args)

    async def counted_lead(self, *args):
        counts["leads"] += 1
        return await lead(self, *args)

    async def counted_commit(self, batch):
        counts["batches"] += 1
        counts["batched_ops"] += len(batch)
        return await commit(self, batch)

    def started(self, *args, **kwargs):
        init(self, *args, **kwargs)
        _start()

    cls.run_sized, cls._lead, cls._commit = counted_run_sized, counted_lead, counted_commit
    cls.__init__ = started


def _thread(tid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(f"/proc/self/task/{tid}/status") as f:
            for line in f:
                if "ctxt_switches" in line:
                    name, value = line.split(":")
                    found[name] = int(value)
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        found["utime"], found["stime"] = int(fields[11]), int(fields[12])
    except OSError:
        pass
    return found


_writer: list[threading.Thread] = []


def _start() -> None:
    if _writer:
        return
    path = f"{OUT}.{os.getpid()}"

    def write() -> None:
        while True:
            time.sleep(0.2)
            with open(path + ".tmp", "w") as f:
                json.dump({**counts, "loop": _thread(LOOP_THREAD)}, f)
            os.replace(path + ".tmp", path)

    _writer.append(threading.Thread(target=write, daemon=True))
    _writer[0].start()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "reapi_server.group_commit":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def patched(module, exec_module=exec_module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = patched
        return spec


if OUT:
    sys.meta_path.insert(0, _Finder())
