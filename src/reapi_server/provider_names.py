"""Provider keys and base URLs given for a provider the catalog does not have: a typo
(`REAPI_PROVIDER_KEYS__OPENAII`) passed `check-config` and then stopped `serve` with a traceback
from inside its worker, where the providers are resolved. Said beforehand, one line each, with
the nearest provider name. Names only: a key's value is never read here."""

from __future__ import annotations

import difflib

from reapi import ReapiError
from reapi.catalog import load_catalog
from reapi.core import excerpt

from .config import Settings

__all__ = ["provider_name_problems"]


def provider_name_problems(settings: Settings) -> list[str]:
    try:
        catalog = load_catalog(settings.catalog_path)
    except ReapiError as error:
        return [f"catalog: {error.message}"]
    except OSError as error:  # a catalog_path (or REAPI_CATALOG) that cannot be read
        reason = error.strerror or type(error).__name__
        return [f"catalog: cannot read {error.filename} ({reason})"]
    known = sorted(catalog.providers)
    lines = []
    given = (
        ("provider_keys", settings.provider_keys),
        ("provider_base_urls", settings.provider_base_urls),
    )
    for setting, names in given:
        for name in sorted(set(names) - set(known)):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
            lines.append(f"{setting}: no provider {excerpt(name)!r} in the catalog ({hint})")
    return lines
