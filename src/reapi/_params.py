"""The non-secret parameters of a request: what the catalog checks and the router sees.

Everything a user writes as content (prompt, images, mask, `user`) goes into a `Payload` instead;
these dataclasses hold only choices such as size and duration, so they may be logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._frozen import quick_init

__all__ = ["ImageParams", "Shape", "VideoParams"]

ResponseFormat = Literal["url", "b64_json"]


@quick_init
@dataclass(frozen=True, slots=True)
class ImageParams:
    model: str
    n: int = 1
    size: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    moderation: str | None = None
    response_format: ResponseFormat | None = None
    input_fidelity: str | None = None
    seed: int | None = None
    #: Set only for a streamed request (`stream: true`): how many partial images the caller
    #: asked for (0-3). An upstream that streams is asked for them; others send none.
    partial_images: int | None = None


@dataclass(frozen=True, slots=True)
class VideoParams:
    model: str
    seconds: int | None = None
    size: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Shape:
    """The output geometry after the catalog resolved `size` against the model's capabilities.

    Adapters use whichever fields their upstream speaks: OpenAI takes `size`, Gemini and Veo take
    `aspect_ratio` and `resolution`. `seconds` is set for video.
    """

    size: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seconds: int | None = None
