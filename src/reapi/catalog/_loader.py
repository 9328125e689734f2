"""Load the catalog shipped with reapi, optionally overlaid with an operator's own file."""

from __future__ import annotations

import json
import os
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._detached import translated
from .._exceptions import ConfigurationError
from ._models import Catalog

__all__ = ["CATALOG_ENV", "default_catalog", "load_catalog"]

#: Environment variable naming an operator's catalog file (TOML or JSON) to overlay.
CATALOG_ENV = "REAPI_CATALOG"


def _read(path: Path) -> dict[str, Any]:
    text = path.read_bytes()

    def parsed() -> dict[str, Any]:
        if path.suffix == ".json":
            data: dict[str, Any] = json.loads(text)
            return data
        return tomllib.loads(text.decode())

    return translated(
        parsed,
        (ValueError, UnicodeDecodeError),
        lambda exc: ConfigurationError(f"catalog file {path} is not valid: {exc}"),
    )


def _packaged() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("catalog.toml").read_text()
    return tomllib.loads(text)


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Providers merge field by field; models replace by id, keep order, new ones append."""
    providers = {k: dict(v) for k, v in base.get("providers", {}).items()}
    for name, fields in overlay.get("providers", {}).items():
        providers[name] = {**providers.get(name, {}), **fields}
    models = {m["id"]: m for m in base.get("models", [])}
    for model in overlay.get("models", []):
        models[model["id"]] = model
    for model_id in overlay.get("remove_models", []):
        models.pop(model_id, None)
    return {"providers": providers, "models": list(models.values())}


def _build(data: dict[str, Any], source: str) -> Catalog:
    return translated(
        lambda: Catalog.model_validate(
            {
                "providers": data.get("providers", {}),
                "models": {m["id"]: m for m in data.get("models", [])},
            }
        ),
        (ValidationError, KeyError, TypeError),
        lambda exc: ConfigurationError(f"catalog from {source} is not valid: {exc}"),
    )


def load_catalog(path: str | os.PathLike[str] | None = None, *, replace: bool = False) -> Catalog:
    """The packaged catalog overlaid with `path` (or `$REAPI_CATALOG`); `replace` skips the base."""
    chosen = path if path is not None else os.environ.get(CATALOG_ENV)
    if chosen is None:
        return default_catalog()
    overlay = _read(Path(chosen))
    data = overlay if replace else _merge(_packaged(), overlay)
    return _build(data, str(chosen))


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return _build(_packaged(), "the packaged catalog")
