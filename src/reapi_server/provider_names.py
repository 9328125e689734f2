"""Provider keys and base URLs given for a provider the catalog does not have: a typo
(`REAPI_PROVIDER_KEYS__OPENAII`) passed `check-config` and then stopped `serve` with a traceback
from inside its worker, where the providers are resolved. Said beforehand, one line each, with
the nearest provider name. Names only: a key's value is never read here.

And a provider base URL without `http://` or `https://` (`REAPI_OPENAI_BASE_URL=host:9100`):
it passed every check, and every request to that provider then failed as `upstream_unreachable`.
"""

from __future__ import annotations

import difflib
import os
from urllib.parse import urlsplit

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
    for name in known:
        variable = f"REAPI_{''.join(c if c.isalnum() else '_' for c in name.upper())}_BASE_URL"
        for where, url in (
            (f"provider_base_urls.{name}", settings.provider_base_urls.get(name)),
            (variable, os.environ.get(variable)),
        ):
            parts = urlsplit(url.strip()) if url else None
            if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
                lines.append(f"{where} is an http:// or https:// URL (http://127.0.0.1:9100/v1)")
    return lines
