"""The /v1 router: every OpenAI-compatible endpoint the gateway serves."""

from __future__ import annotations

from fastapi import APIRouter

from . import account, files, images, models, videos

__all__ = ["v1"]

v1 = APIRouter(prefix="/v1")
for module in (images, videos, models, account, files):
    v1.include_router(module.router)
