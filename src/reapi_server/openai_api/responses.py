"""The response models that document /v1's answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from reapi.types import ImagesResponse, Model, ModelList, Video, VideoDeleted, VideoList

from ..json_api.responses import (
    CREDITS_CHARGED_HEADERS,
    ErrorBody,
    error_responses,
    json_response,
)

__all__ = [
    "CREDITS_CHARGED_HEADERS",
    "CreditsBody",
    "ErrorBody",
    "ImagesResponse",
    "Model",
    "ModelList",
    "UsageList",
    "Video",
    "VideoDeleted",
    "VideoList",
    "error_responses",
    "json_response",
]


class UsageRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    object: str
    created_at: int
    model: str
    endpoint: str
    credit_cost: int
    status: str
    error_code: str | None
    provider: str | None
    attempts: int
    duration_ms: int


class UsageList(BaseModel):
    object: str
    data: list[UsageRow]
    has_more: bool


class CreditsBody(BaseModel):
    object: str
    balance: int
    reserved: int
