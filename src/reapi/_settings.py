"""Turn constructor arguments and the environment into provider connections (keys, URLs).

This is the only module that reads provider keys from the environment; adapters never do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._secret import Secret
from .catalog import Catalog
from .providers import Connection

__all__ = ["GATEWAY_ENV", "SDK_ENV", "base_url_env", "resolve_connections"]

#: Environment variables for gateway mode.
GATEWAY_ENV = ("REAPI_BASE_URL", "REAPI_API_KEY")
#: Every `REAPI_*` variable the SDK reads, besides `REAPI_<PROVIDER>_BASE_URL`.
SDK_ENV = (*GATEWAY_ENV, "REAPI_CATALOG")


def base_url_env(provider: str) -> str:
    """`REAPI_<PROVIDER>_BASE_URL`: where a provider's API lives (a proxy, a simulator)."""
    name = "".join(c if c.isalnum() else "_" for c in provider.upper())
    return f"REAPI_{name}_BASE_URL"


def resolve_connections(
    catalog: Catalog,
    provider_keys: Mapping[str, str] | None = None,
    provider_base_urls: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Connection]:
    """One connection per catalog provider that has a key (explicit first, then environment).

    A provider's base URL: `provider_base_urls`, else `$REAPI_<PROVIDER>_BASE_URL`, else the
    catalog's."""
    env = os.environ if environ is None else environ
    keys = dict(provider_keys or {})
    urls = dict(provider_base_urls or {})
    unknown = (set(keys) | set(urls)) - set(catalog.providers)
    if unknown:
        from ._exceptions import ConfigurationError

        raise ConfigurationError(
            f"unknown provider(s) {', '.join(sorted(unknown))}; known: "
            f"{', '.join(sorted(catalog.providers))}"
        )
    connections = {}
    for name, spec in catalog.providers.items():
        key = keys.get(name) or next((env[v] for v in spec.api_key_env if env.get(v)), None)
        if not key:
            continue
        connections[name] = Connection(
            name=name,
            base_url=urls.get(name) or env.get(base_url_env(name)) or spec.base_url,
            api_key=Secret(key),
            url_lifetime_seconds=spec.url_lifetime_seconds,
            poll_interval=spec.poll_interval,
        )
    return connections
