"""The /v1 routers: every OpenAI-compatible endpoint the gateway serves.

Each module's router carries the /v1 prefix itself, so that a matched route's `path` is the full
template (/v1/videos/{video_id}) that logs and metrics label requests with.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import account, files, images, models, videos

__all__ = ["V1_ROUTERS"]

V1_ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router for module in (images, videos, models, account, files)
)
