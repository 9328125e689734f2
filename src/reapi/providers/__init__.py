"""Provider adapters, one per upstream API. Adding a provider: a module here, a line in
`ADAPTERS`, catalog entries and its tests."""

from __future__ import annotations

from ._base import Adapter, Connection, ImageCall, VideoCall, parse_retry_after
from ._protocol import (
    Batch,
    FetchReference,
    GeneratedFile,
    ImageResult,
    Protocol,
    Sleep,
    Step,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._source_video import SourceVideo, source_limit, source_video
from .ark import ArkAdapter
from .dashscope import DashScopeAdapter
from .fal import FalAdapter
from .gemini import GeminiAdapter
from .openai import OpenAIAdapter
from .replicate import ReplicateAdapter
from .topaz import TopazAdapter
from .veo import VeoAdapter
from .vidu import ViduAdapter
from .xai import XAIAdapter

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Batch",
    "Connection",
    "FetchReference",
    "GeneratedFile",
    "ImageCall",
    "ImageResult",
    "Protocol",
    "Sleep",
    "SourceVideo",
    "Step",
    "TaskState",
    "TaskStatus",
    "UpstreamRequest",
    "UpstreamResponse",
    "VideoCall",
    "parse_retry_after",
    "source_limit",
    "source_video",
]

#: Adapter name (as written in the catalog) → adapter class.
ADAPTERS: dict[str, type[Adapter]] = {
    OpenAIAdapter.name: OpenAIAdapter,
    GeminiAdapter.name: GeminiAdapter,
    VeoAdapter.name: VeoAdapter,
    ArkAdapter.name: ArkAdapter,
    ViduAdapter.name: ViduAdapter,
    FalAdapter.name: FalAdapter,
    ReplicateAdapter.name: ReplicateAdapter,
    XAIAdapter.name: XAIAdapter,
    DashScopeAdapter.name: DashScopeAdapter,
    TopazAdapter.name: TopazAdapter,
}
