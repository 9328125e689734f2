"""Bench-only: a per-request timeline of the gateway, from perf_counter_ns stamps kept in memory
and appended as JSON lines to $BENCH_TIMELINE_OUT.<pid>, 256 requests at a time.

Loaded as `sitecustomize` when this folder is on PYTHONPATH (`bench/gateway.py --timeline`):
it wraps a few functions of the gateway as their modules are imported, and changes nothing else.
"""

from __future__ import annotations

import atexit
import contextvars
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time

OUT = os.environ.get("BENCH_TIMELINE_OUT")
now = time.perf_counter_ns
current: contextvars.ContextVar[dict | None] = contextvars.ContextVar("bench_tl", default=None)
records: list[dict] = []


def _patch_protocol(module) -> None:  # reapi_server.head_limits
    cls = module.HeadLimitedProtocol
    received = cls.data_received
    headers_complete = cls.on_headers_complete

    def data_received(self, data):
        self._tl_recv = now()
        return received(self, data)

    def on_headers_complete(self):
        headers_complete(self)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["_tl_recv"] = getattr(self, "_tl_recv", 0)

    cls.data_received = data_received
    cls.on_headers_complete = on_headers_complete


def _patch_entry(module) -> None:  # reapi_server.observability.entry
    cls = module.EnteredAtAccess
    call = cls.__call__

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/images"):
            return await call(self, scope, receive, send)
        record = {"p": scope.get("_tl_recv", 0), "e": now()}
        current.set(record)

        async def timed_send(message):
            if message["type"] == "http.response.start":
                record["x0"] = now()
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record["x"] = now()

        try:
            await call(self, scope, receive, timed_send)
        finally:
            records.append(record)
            if len(records) >= 256:
                _dump()

    cls.__call__ = __call__


def _patch_group(module) -> None:  # reapi_server.group_commit
    cls = module.GroupCommitter
    run_sized = cls.run_sized
    lead = cls._lead

    async def timed(self, op, account=None, at_once=False):
        record = current.get()
        if record is None:
            return await run_sized(self, op, account, at_once)
        tag = "h" if at_once else ("s" if "h1" in record else "q")
        record[tag + "0"] = now()
        result = await run_sized(self, op, account, at_once)
        record[tag + "1"] = now()
        record[tag + "n"] = result[1]
        return result

    async def timed_lead(self, *args):
        record = current.get()
        if record is not None:  # which of its ops went at once: the hold, the settlement
            record["led"] = record.get("led", "") + ("s" if "h1" in record else "h")
        return await lead(self, *args)

    cls.run_sized = timed
    cls._lead = timed_lead


def _patch_h1(module) -> None:  # reapi_server.upstream_h1
    conn = module._Connection
    begin, received, complete = conn.begin, conn.data_received, conn._complete
    transport = module.H1Transport
    exchange = transport.exchange

    def timed_begin(self, *args, **kwargs):
        record = current.get()
        self._tl = record
        answer = begin(self, *args, **kwargs)
        if record is not None:
            record["w"] = now()
        return answer

    def timed_received(self, data):
        record = getattr(self, "_tl", None)
        if record is not None and "b" not in record:
            record["b"] = now()
            sent = data.find(b"X-Bench-Sent-Ns: ")  # the upstream's stamp (`_upstream.py`)
            if sent >= 0:
                start = sent + len(b"X-Bench-Sent-Ns: ")
                record["us"] = int(data[start : data.index(b"\r", start)])
        return received(self, data)

    def timed_complete(self):
        record = getattr(self, "_tl", None)
        if record is not None:
            record["a"] = now()
        return complete(self)

    async def timed_exchange(self, *args, **kwargs):
        record = current.get()
        if record is not None:
            record["u0"] = now()
        result = await exchange(self, *args, **kwargs)
        if record is not None:
            record["r"] = now()
        return result

    conn.begin, conn.data_received, conn._complete = timed_begin, timed_received, timed_complete
    transport.exchange = timed_exchange


def _patch_service(module) -> None:  # reapi_server.images.service
    mirror = module.mirror

    async def timed_mirror(*args, **kwargs):
        record = current.get()
        if record is not None:
            record["o0"] = now()
        result = await mirror(*args, **kwargs)
        if record is not None:
            record["o1"] = now()
        return result

    module.mirror = timed_mirror


PATCHES = {
    "reapi_server.head_limits": _patch_protocol,
    "reapi_server.observability.entry": _patch_entry,
    "reapi_server.group_commit": _patch_group,
    "reapi_server.upstream_h1": _patch_h1,
    "reapi_server.images.service": _patch_service,
}


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def patched(module, exec_module=exec_module):
            exec_module(module)
            PATCHES[name](module)

        loader.exec_module = patched
        return spec


def _dump() -> None:
    """Appended in batches as the requests end (the gateway ends by SIGTERM, without atexit).
    The folder is made here: a request that found it missing failed with a 500, which the
    bench's table counted as a bad answer and nothing else."""
    if not records:
        return
    os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
    with open(f"{OUT}.{os.getpid()}", "a") as f:
        f.write("".join(json.dumps(record) + "\n" for record in records))
    records.clear()


if OUT:
    sys.meta_path.insert(0, _Finder())
    atexit.register(_dump)
