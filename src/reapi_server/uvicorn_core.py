"""uvicorn without its command line, for a process that serves the gateway itself.

`import uvicorn` runs the package's `__init__`, which imports `uvicorn.main` (for `uvicorn.run`
and the `uvicorn` command): click, the reload and multiprocess supervisors, watchfiles and
multiprocessing, ~1 MiB resident that a gateway worker never uses: it builds a `Config` and runs a
`Server`. Here the package is registered without running its `__init__`; the first use of any
other name it exports (`uvicorn.run`, `uvicorn.main`, `uvicorn.__version__`) runs it then.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["import_uvicorn_core"]


def import_uvicorn_core() -> ModuleType:
    """`uvicorn` with `Config` and `Server` (and its submodules importable as usual); a no-op
    once uvicorn is imported."""
    if "uvicorn" in sys.modules:
        return sys.modules["uvicorn"]
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_the_rest(name: str) -> Any:
        # The package's own `__init__`, into this module: `uvicorn.main` and what it exports.
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, name)

    sys.modules["uvicorn"] = package
    try:
        from uvicorn.config import Config
        from uvicorn.server import Server
    except BaseException:
        del sys.modules["uvicorn"]
        raise
    package.Config = Config  # type: ignore[attr-defined]
    package.Server = Server  # type: ignore[attr-defined]
    package.__getattr__ = load_the_rest  # type: ignore[method-assign]
    return package
