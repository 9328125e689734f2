"""/api/keys: list, create, read, change the limits and default webhook URL of, and revoke the
account's API keys, through the same service as the keys page (`api_keys.service.ApiKeys`);
/api/keys/{id}/webhook_secret reads (GET) or renews (POST .../rotate) the secret that signs the
key's webhooks. Called with a session (not a management key), making a key and reading or
renewing a secret need a recent authentication (403 `step_up_required`, see `web.sudo`).

A key is answered as `KeyView.as_json` (times in Unix seconds); a new key carries its secret
once, as `key`. Bodies: `{"name": ..., "limits": {...}, "webhook_url": ...}`, where a PATCH
changes only the fields it names and `null` clears a limit (or the webhook URL).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..api_keys.limits import MAX_MODELS, KeyLimits
from ..api_keys.paging import KeyCursor
from ..api_keys.service import MAX_NAME_LENGTH, WEBHOOK_URL, keys_service
from ..errors import GatewayError
from ..json_api.responses import json_response
from ..webhooks.service import MAX_URL_LENGTH
from .auth import Manager, runtime_of
from .bodies import parse_body

__all__ = ["router"]

router = APIRouter(prefix="/keys")

KeyId = Path(max_length=64)
#: Keys per page unless `limit` says otherwise, and the most it may say (as /api/usage).
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class LimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    spend_limit: int | None = None
    spend_period: Literal["daily", "weekly", "monthly", "never"] = "monthly"
    models: list[str] | None = Field(default=None, max_length=MAX_MODELS)
    #: Unix seconds.
    expires_at: int | None = None
    requests_per_minute: int | None = None
    max_concurrent_videos: int | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the body named, as `KeyLimits` values."""
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "models" and value is not None:
                value = tuple(value)
            elif name == "expires_at" and value is not None:
                value = float(value)
            changes[name] = value
        return changes


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(default="", max_length=MAX_NAME_LENGTH)
    limits: LimitsBody | None = None
    #: Where the key's video jobs announce their end unless a request names its own (null:
    #: nowhere); http(s) on public addresses only.
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)

    def changes(self) -> dict[str, Any]:
        changes = self.limits.changes() if self.limits is not None else {}
        if "name" in self.model_fields_set:
            changes["name"] = self.name
        if WEBHOOK_URL in self.model_fields_set:
            changes[WEBHOOK_URL] = self.webhook_url
        return changes


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise GatewayError(f"limit must be a whole number from 1 to {MAX_LIMIT}", param="limit")
    return int(raw)


def _after(request: Request) -> KeyCursor | None:
    raw = request.query_params.get("older")
    if raw is None:
        return None
    cursor = KeyCursor.decode(raw)
    if cursor is None:
        raise GatewayError("older must be the next_cursor of a page of keys", param="older")
    return cursor


@router.get("")
async def list_keys(request: Request, manager: Manager) -> Response:
    """A page of the account's keys: active and expired ones first, then the revoked ones,
    each newest first; `next_cursor` (as `older`) gives the next page."""
    limit, after = _limit(request), _after(request)
    page = await keys_service(runtime_of(request)).page(
        manager.account_id, limit=limit, after=after
    )
    cursor = page.next.encode() if page.next else None
    return json_response(
        {
            "object": "list",
            "data": [v.as_json() for v in page.keys],
            "has_more": cursor is not None,
            "next_cursor": cursor,
        }
    )


@router.post("")
async def create_key(request: Request, manager: Manager) -> Response:
    manager.require_verified()
    manager.require_recent_authentication(request)
    body = await parse_body(request, KeyBody)
    service = keys_service(runtime_of(request))
    limits = body.limits.changes() if body.limits is not None else {}
    created = await service.create(
        manager.account_id,
        name=body.name,
        limits=KeyLimits().changed(limits),
        webhook_url=body.webhook_url,
    )
    return json_response({**created.view.as_json(), "key": created.plaintext}, status=201)


@router.get("/{key_id}")
async def get_key(request: Request, manager: Manager, key_id: str = KeyId) -> Response:
    view = await keys_service(runtime_of(request)).get(manager.account_id, key_id)
    return json_response(view.as_json())


@router.patch("/{key_id}")
async def update_key(request: Request, manager: Manager, key_id: str = KeyId) -> Response:
    body = await parse_body(request, KeyBody)
    changes = body.changes()
    if changes.get(WEBHOOK_URL):  # where the key's job results go: as minting a credential
        manager.require_recent_authentication(request)
    service = keys_service(runtime_of(request))
    view = await service.update(manager.account_id, key_id, changes)
    return json_response(view.as_json())


@router.delete("/{key_id}")
async def revoke_key(request: Request, manager: Manager, key_id: str = KeyId) -> Response:
    view = await keys_service(runtime_of(request)).revoke(manager.account_id, key_id)
    return json_response(view.as_json())


def _secret(key_id: str, secret: str) -> Response:
    return json_response({"object": "webhook_secret", "key_id": key_id, "secret": secret})


@router.get("/{key_id}/webhook_secret")
async def webhook_secret(request: Request, manager: Manager, key_id: str = KeyId) -> Response:
    """The secret that signs the key's webhooks (made on first use; the same until rotated)."""
    manager.require_recent_authentication(request)
    service = keys_service(runtime_of(request))
    return _secret(key_id, await service.webhook_secret(manager.account_id, key_id))


@router.post("/{key_id}/webhook_secret/rotate")
async def rotate_webhook_secret(
    request: Request, manager: Manager, key_id: str = KeyId
) -> Response:
    """A new signing secret; the previous one signs beside it for a while (a day by default),
    so that receivers can switch without losing a message."""
    manager.require_recent_authentication(request)
    service = keys_service(runtime_of(request))
    secret = await service.webhook_secret(manager.account_id, key_id, rotate=True)
    return _secret(key_id, secret)
