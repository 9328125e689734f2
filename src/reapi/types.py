"""OpenAI-shaped response objects. Extra information rides in one `reapi` field, which OpenAI
clients ignore, so these stay drop-in compatible with openai-python's own types."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._files import write_whole
from ._hidden import HiddenValues

__all__ = [
    "Attempt",
    "BinaryContent",
    "Image",
    "ImageStreamEvent",
    "ImagesResponse",
    "Model",
    "ModelList",
    "ReapiInfo",
    "Video",
    "VideoDeleted",
    "VideoError",
    "VideoList",
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class Attempt(_Shape):
    provider: str
    route: str
    code: str
    status: int | None = None
    elapsed_ms: float = 0.0


class ReapiInfo(_Shape):
    """Which upstream served the request and how many attempts it took."""

    provider: str | None = None
    route: str | None = None
    attempts: int = 0
    attempt_log: list[Attempt] = Field(default_factory=list)
    #: Unix seconds when an upstream URL in this answer stops working (None: no such URL).
    url_expires_at: int | None = None
    resubmitted_from: str | None = None
    #: A gateway video whose stored output was deleted (its content answers 410).
    outputs_deleted: bool | None = None
    #: What a gateway charged for a streamed image request (in its completed events; a JSON
    #: answer says it in its `x-reapi-credits-charged` header: `RawResponse.credits_charged`).
    credits_charged: int | None = None


class Image(HiddenValues, _Shape):
    """One generated image. Its repr says how large each field is: the bytes are large, and the
    revised prompt is the upstream's rewording of the caller's."""

    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None

    def content(self) -> bytes:
        """The image bytes, when the answer carried them inline."""
        if self.b64_json is None:
            raise ValueError("this image was returned as a URL; fetch `url` instead")
        return base64.b64decode(self.b64_json)


class ImagesResponse(_Shape):
    created: int
    data: list[Image] = Field(default_factory=list)
    background: str | None = None
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None
    usage: dict[str, Any] | None = None
    reapi: ReapiInfo | None = None


class ImageStreamEvent(_Shape):
    """One event of a streamed image request (`stream=True`), as OpenAI's Images API sends
    them: `type` is `image_generation.partial_image` or `image_edit.partial_image` (a draft,
    with `partial_image_index`) or `image_generation.completed` / `image_edit.completed` (an
    image, with `usage` when the provider reports it)."""

    type: str
    b64_json: str
    created_at: int | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    partial_image_index: int | None = None
    usage: dict[str, Any] | None = None
    reapi: ReapiInfo | None = None

    @property
    def image_bytes(self) -> bytes:
        return base64.b64decode(self.b64_json)


class VideoError(_Shape):
    code: str
    message: str


VideoStatus = Literal["queued", "in_progress", "completed", "failed"]


class Video(_Shape):
    id: str
    object: Literal["video"] = "video"
    model: str
    status: VideoStatus
    progress: int = 0
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    #: Never echoed: reapi keeps no prompt, so this is always None.
    prompt: str | None = None
    seconds: str | None = None
    size: str | None = None
    remixed_from_video_id: str | None = None
    error: VideoError | None = None
    reapi: ReapiInfo | None = None


class VideoDeleted(_Shape):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class VideoList(_Shape):
    object: Literal["list"] = "list"
    data: list[Video] = Field(default_factory=list)
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class Model(_Shape):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(_Shape):
    object: Literal["list"] = "list"
    data: list[Model] = Field(default_factory=list)


class BinaryContent:
    """Downloaded bytes (a video, a thumbnail), like openai-python's binary responses."""

    def __init__(self, content: bytes, content_type: str) -> None:
        self.content = content
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"BinaryContent(<{len(self.content)} bytes, {self.content_type}>)"

    def read(self) -> bytes:
        return self.content

    def write_to_file(self, path: str | Path) -> None:
        """Writes the bytes whole or not at all (`reapi._files`): Ctrl-C mid-write leaves no
        truncated file under `path`."""
        write_whole(path, self.content)
