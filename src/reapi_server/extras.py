"""Optional dependencies: which pip extra brings which package, and a clear error when one is
missing. Imports only the standard library, so that `reapi-server` can say what to install
before anything that needs the `server` extra is imported."""

from __future__ import annotations

import importlib.util

__all__ = ["OTEL_PACKAGES", "SERVER_PACKAGES", "MissingExtraError", "missing", "require"]

#: Import names the gateway cannot start without (the `server` extra).
SERVER_PACKAGES = (
    "fastapi",
    "uvicorn",
    "aiohttp",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "pydantic_settings",
    "python_multipart",
    "orjson",
    "prometheus_client",
)

#: Import names tracing needs (the `otel` extra): the SDK and its OTLP/HTTP exporter.
OTEL_PACKAGES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


class MissingExtraError(RuntimeError):
    """A feature was asked for whose packages are not installed."""

    def __init__(self, feature: str, extra: str, packages: tuple[str, ...]) -> None:
        self.extra = extra
        self.packages = packages
        super().__init__(
            f"{feature} needs the '{extra}' extra ({', '.join(packages)} not installed): "
            f"pip install 'reapi[{extra}]'"
        )


def missing(*packages: str) -> tuple[str, ...]:
    """The packages of `packages` (import names, dotted ones too) that cannot be imported."""
    return tuple(p for p in packages if not _installed(p))


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False


def require(feature: str, extra: str, *packages: str) -> None:
    absent = missing(*packages)
    if absent:
        raise MissingExtraError(feature, extra, absent)
