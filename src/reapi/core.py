"""The core interface: what a host of reapi's pipeline builds on, beyond the client.

The gateway (`reapi_server`) imports reapi only through public names: the package's top level,
its public subpackages (`catalog`, `router`, `providers`, `types`, `testing`) and this module.
Everything here is supported API for embedding the pipeline; a name's module behind it is not.
An import-linter contract (`make test`) keeps the gateway off the private modules.
"""

from __future__ import annotations

from ._detached import detached, first_of_group, translated, translated_async
from ._engine import (
    HEDGE_LOST,
    AsyncEngine,
    AsyncTransport,
    HttpxTransport,
    Tap,
    answer_too_large,
    connection_error,
)
from ._excerpt import excerpt
from ._fetch import AsyncFetcher, PostAnswer, connect_in_turn, system_resolve_async
from ._frozen import quick_init
from ._hidden import HiddenValues
from ._local import GATEWAY_HINTS, LocalCore, PreparedVideo
from ._media import IMAGE_TYPES, MEDIA_TYPES, SNIFFED_TYPES, extension_for, sniff_media_type
from ._numbers import ascii_whole_number
from ._observe import Attempt, AttemptEnd, AttemptObserver
from ._params import ImageParams, Shape, VideoParams
from ._payload import File, Payload, input_sizes
from ._probes import HealthProber, ProbeConfig, ProbeReport
from ._random_hex import random_hex
from ._settings import SDK_ENV, resolve_connections
from ._sse import ServerSentEvent
from ._urls import ByteBudget, UrlPolicy, decode_data_url, first_hop, vet_addresses
from .resources._inputs import image_request, video_request
from .resources._jobs_memory import Bodies, RememberedJob

__all__ = [
    "GATEWAY_HINTS",
    "HEDGE_LOST",
    "IMAGE_TYPES",
    "MEDIA_TYPES",
    "SDK_ENV",
    "SNIFFED_TYPES",
    "AsyncEngine",
    "AsyncFetcher",
    "AsyncTransport",
    "Attempt",
    "AttemptEnd",
    "AttemptObserver",
    "Bodies",
    "ByteBudget",
    "File",
    "HealthProber",
    "HiddenValues",
    "HttpxTransport",
    "ImageParams",
    "LocalCore",
    "Payload",
    "PostAnswer",
    "PreparedVideo",
    "ProbeConfig",
    "ProbeReport",
    "RememberedJob",
    "ServerSentEvent",
    "Shape",
    "Tap",
    "UrlPolicy",
    "VideoParams",
    "answer_too_large",
    "ascii_whole_number",
    "connect_in_turn",
    "connection_error",
    "decode_data_url",
    "detached",
    "excerpt",
    "extension_for",
    "first_hop",
    "first_of_group",
    "image_request",
    "input_sizes",
    "quick_init",
    "random_hex",
    "resolve_connections",
    "sniff_media_type",
    "system_resolve_async",
    "translated",
    "translated_async",
    "vet_addresses",
    "video_request",
]
