"""What every /v1 handler needs: the runtime, the caller (bearer key only) and its rate limit."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..api_keys.auth import Principal, client_address
from ..errors import RateLimited
from ..observability.middleware import RequestContext, context_of
from ..runtime import Runtime

__all__ = ["Caller", "Context", "Rt", "authorized", "base_url_of", "runtime_of"]

# Declares the bearer scheme in the OpenAPI document; the check itself is ours (auto_error=False
# so that a missing key gets OpenAI's error shape, not FastAPI's).
_bearer = HTTPBearer(auto_error=False, description="An API key: rk_live_...")


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


# Dependencies are coroutines on purpose: FastAPI runs plain functions in a thread pool.
async def runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def caller(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authorized(request, runtime_of(request))


async def authorized(request: Request, rt: Runtime) -> Principal:
    """The caller, authenticated and counted against its rate limits (`caller`, given the
    runtime: a direct route reads it once for all its dependencies)."""
    principal = await rt.auth.authenticate(
        request.headers.get("authorization"), client_address(request)
    )
    now = rt.now()
    principal.require_model_key(now)
    rt.auth.usage.saw(principal.key_id, now)
    per_minute = principal.requests_per_minute or rt.settings.requests_per_minute
    refusal = await rt.limiter.acquire(
        principal, per_minute, rt.settings.account_requests_per_minute
    )
    if refusal is not None:
        raise RateLimited(
            f"this {refusal.scope} is limited to {refusal.per_minute} requests per minute",
            retry_after=refusal.retry_after,
        )
    return principal


async def request_context(request: Request) -> RequestContext:
    return context_of(request.scope)


def base_url_of(request: Request, rt: Runtime) -> str:
    configured = rt.settings.public_base_url
    if configured:
        return configured
    scope = request.scope
    return _base_url(
        scope["scheme"],
        scope.get("server"),
        request.headers.get("host"),
        scope.get("root_path", ""),
        scope.get("app_root_path"),
    )


@functools.lru_cache(maxsize=64)  # a few listening addresses (`OwnHost` pins the Host header)
def _base_url(
    scheme: str,
    server: tuple[str, int] | None,
    host: str | None,
    root_path: str,
    app_root_path: str | None,
) -> str:
    """Starlette's `request.base_url` of a request with these parts: all it is made of."""
    headers = [(b"host", host.encode("latin-1"))] if host is not None else []
    scope: dict[str, object] = {"type": "http", "scheme": scheme, "server": server}
    scope.update(path="/", query_string=b"", headers=headers, root_path=root_path)
    if app_root_path is not None:
        scope["app_root_path"] = app_root_path
    return str(Request(scope).base_url)


Rt = Annotated[Runtime, Depends(runtime)]
Caller = Annotated[Principal, Depends(caller)]
Context = Annotated[RequestContext, Depends(request_context)]
