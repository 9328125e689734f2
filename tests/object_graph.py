"""What an object keeps alive: every str and bytes reachable from some roots, searched for markers.

The walk follows instance data (attributes, slots, containers, closures, frames of live tasks) but
not into classes, modules or functions' globals: those reach the whole interpreter, including the
test module that defines the markers. So a hit means the roots themselves hold the marker.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterable
from typing import Any

__all__ = ["markers_reachable"]

_OPAQUE = (type, types.ModuleType, types.CodeType, types.BuiltinFunctionType)


def _referents(obj: Any) -> Iterable[Any]:
    if isinstance(obj, _OPAQUE):
        return ()
    if isinstance(obj, types.FunctionType):  # its closure and defaults; not its globals
        cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
        return [*cells, *(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values()]
    if isinstance(obj, dict) and "__builtins__" in obj:  # a module's globals
        return ()
    return gc.get_referents(obj)


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def markers_reachable(roots: Iterable[Any], markers: Iterable[bytes]) -> list[str]:
    """Short descriptions of reachable strings or bytes that contain a marker (empty: none)."""
    gc.collect()
    wanted = list(markers)
    found: list[str] = []
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            data = obj.encode("utf-8", "surrogatepass")
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            data = bytes(obj)
        else:
            stack.extend(_referents(obj))
            continue
        for marker in wanted:
            if marker in data:
                found.append(f"{type(obj).__name__} of {len(data)} bytes holding {marker!r}")
    return found
