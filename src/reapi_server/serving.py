"""Running the gateway under uvicorn (uvloop event loop, httptools parser)."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from .config import Settings
from .fleet_secret import resolve_for
from .observability.logging import configure_logging
from .observability.multiprocess import use_multiprocess_dir
from .process_name import name_this_process
from .uvicorn_core import import_uvicorn_core

if TYPE_CHECKING:  # uvicorn is imported when serving: administration commands do not need it
    from .head_limits import GatewayConfig

__all__ = [
    "YOUNG_COLLECTION_THRESHOLD",
    "app_for_serving",
    "collect_less_often",
    "freeze_heap",
    "gateway_config",
    "refuse_pydantic_v1",
    "run_server",
    "serve_from_environment",
]

log = logging.getLogger("reapi_server")


#: Net new container objects between two young collections (CPython's default is 700). The
#: requests in flight hold a few thousand young objects that they free by reference counting
#: (a request leaves next to no cycle behind): at 700 their coming and going alone set off a
#: young collection every ~17 requests at 32 connections (~0.2 ms each: it walks every young
#: object in flight), a middle one every ~180 and a full one every ~2,000 (~4 ms): 14-19 us of
#: CPU per request (gc.callbacks, in process), ~1.5-2% of it. At 10,000, one young collection
#: in ~4,000 requests. A garbage cycle waits at most this many allocations for its collection.
YOUNG_COLLECTION_THRESHOLD = 10_000


def freeze_heap() -> None:
    """Put what start-up built (modules, the app, the catalog) out of the garbage collector's
    sight: it lives as long as the process. Without this, each full collection walked all of it
    and stopped the event loop for 45-85 ms under load, the gateway's p99 at 32 connections.
    Then collect less often (`collect_less_often`)."""
    gc.collect()
    gc.freeze()
    collect_less_often()


def collect_less_often() -> None:
    """The young generation's threshold raised to `YOUNG_COLLECTION_THRESHOLD`, the older
    generations' left as they are (each counts the collections of the one before it)."""
    young, middle, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_COLLECTION_THRESHOLD, young), middle, oldest)


def refuse_pydantic_v1() -> None:
    """Make `import pydantic.v1` fail in this process (unless something has loaded it already).
    FastAPI imports pydantic's v1 copy (~2 MiB resident) only to ask whether a route's model, or
    a value it encodes, is a v1 model, and takes "cannot import it" for "no", which holds: the
    gateway has no v1 model and nothing else it runs imports v1 (`test_startup_imports`)."""
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]


def gateway_config(app: Any, settings: Settings, **overrides: Any) -> GatewayConfig:
    """How uvicorn serves the gateway, wherever it is started (the CLI, the demo, tests)."""
    from .head_limits import GatewayConfig, HeadLimitedProtocol, HeadLimits

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": HeadLimitedProtocol,
        # The gateway has no WebSocket route; a WebSocket stack would answer (and log) upgrade
        # requests itself. Without one, an upgrade is the plain HTTP request it also is.
        "ws": "none",
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        # Passed even when default: uvicorn would otherwise read FORWARDED_ALLOW_IPS.
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        # SIGTERM: stop accepting, give requests in flight this long, then the lifespan ends.
        "timeout_graceful_shutdown": settings.drain_seconds,
    }
    limits = HeadLimits(
        settings.max_header_line_bytes,
        settings.max_header_bytes,
        settings.header_timeout,
        settings.body_timeout,
        settings.body_min_bytes_per_second,
    )
    return GatewayConfig(app, head_limits=limits, **{**options, **overrides})


def _bind(address: tuple[str, int]) -> socket.socket:
    """A listening socket that worker processes inherit, as uvicorn's own."""
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def _serve(config: GatewayConfig, metrics_address: tuple[str, int] | None) -> None:
    """What `uvicorn.run` does, with our config and a second socket for the metrics listener:
    one process, or a supervisor of workers that all serve both sockets."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    server = uvicorn.Server(config)
    try:
        try:
            sockets = [config.bind_socket()]
        except SystemExit:
            # uvicorn logged the error by its errno name only: say which address and setting.
            log.error(
                "cannot listen on %s:%d: set host and port (REAPI_HOST, REAPI_PORT) to a free"
                " address",
                config.host,
                config.port,
            )
            raise
        if metrics_address is not None:
            try:
                sockets.append(_bind(metrics_address))
            except OSError as error:
                # Two instances on one host both default to 127.0.0.1:9464.
                log.error(
                    "metrics listener failed: cannot listen on %s:%d: give each instance on a"
                    " host its own metrics_listen (REAPI_METRICS_LISTEN), or off",
                    *metrics_address,
                    extra={"code": errno.errorcode.get(error.errno or 0, "OSError")},
                )
                sys.exit(STARTUP_FAILURE)
            log.info("metrics listener on %s:%d", *metrics_address)
        if config.workers > 1:
            from .supervisor import Supervisor  # uvicorn's supervisors: for N workers only

            Supervisor(config, sockets=sockets).run()
        else:
            server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    if config.workers <= 1 and not server.started:
        sys.exit(STARTUP_FAILURE)


def _hand_settings_on(settings: Settings) -> None:
    """What the command line resolved, for a fresh interpreter that reads the same settings from
    the environment (with the same config file and secret files) with these on top."""
    os.environ["REAPI_DATA_DIR"] = str(settings.data_dir)
    os.environ["REAPI_DATABASE_URL"] = settings.resolved_database_url
    os.environ["REAPI_HOST"] = settings.host
    os.environ["REAPI_PORT"] = str(settings.port)
    os.environ["REAPI_METRICS_LISTEN"] = settings.metrics_listen or "off"


def _interpreter_options() -> list[str]:
    """This interpreter's own options (`-X dev`, `-W ...`), kept across the exec."""
    options: list[str] = []
    arguments = iter(sys.orig_argv[1:])
    for argument in arguments:
        if argument in ("-c", "-m") or not argument.startswith("-"):
            break
        options.append(argument)
        if argument in ("-X", "-W"):
            options.append(next(arguments, ""))
    return options


def run_server(settings: Settings, app_instance: FastAPI | None = None) -> None:
    configure_logging(settings.log_level, json_lines=settings.log_json)
    # Migrated, and the fleet's secret written or checked, once here before any worker starts.
    asyncio.run(resolve_for(settings, migrate=True))
    if app_instance is not None:
        freeze_heap()
        _serve(gateway_config(app_instance, settings), settings.metrics_address)
        return
    _hand_settings_on(settings)
    if settings.workers <= 1:
        # One worker: this process becomes a fresh interpreter that imports only the gateway,
        # as each of N workers is. The command line (typer), the configuration checks and the
        # migration machinery stay behind: ~3 MiB less resident for as long as it serves.
        sys.stdout.flush()
        sys.stderr.flush()
        code = "from reapi_server.serving import serve_from_environment; serve_from_environment()"
        argv = [sys.executable, *_interpreter_options(), "-c", code]
        os.execv(sys.executable, argv)  # noqa: S606 (this interpreter, fixed arguments)
    # Workers import the app themselves and read the same settings from the environment.
    use_multiprocess_dir(settings.data_dir)  # so that a scrape adds every worker's counts up
    factory = "reapi_server.serving:app_for_serving"
    config = gateway_config(factory, settings, factory=True, workers=settings.workers)
    _serve(config, settings.metrics_address)


def app_for_serving() -> FastAPI:
    """The gateway a serving process runs, from REAPI_* settings: the one worker's after the
    exec, or each of `--workers N`'s (uvicorn's factory). pydantic.v1 is refused before the
    first route is declared (declaring one is what makes FastAPI import it), and uvicorn is
    imported without its command line."""
    name_this_process()
    refuse_pydantic_v1()
    import_uvicorn_core()  # a worker of N has it whole already (its Config came pickled)
    from .app import app_from_environment

    return app_from_environment()


def serve_from_environment() -> None:
    """`reapi-server serve` with one worker, once the command line has checked the settings and
    migrated: the gateway built and served in this fresh interpreter (settings from REAPI_*)."""
    app = app_for_serving()
    from .app import runtime_of  # after: importing the app declares its routes

    settings = runtime_of(app).settings
    _serve(gateway_config(app, settings), settings.metrics_address)
