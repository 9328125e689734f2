"""Typed catalog: public models, their capabilities, prices and ordered upstream routes."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Capabilities",
    "Catalog",
    "ModelSpec",
    "Price",
    "ProviderSpec",
    "Route",
    "ShapeSpec",
    "SizeRule",
]

Kind = Literal["image", "video"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderSpec(_Frozen):
    """An upstream API: which adapter speaks it, where it lives, where its key comes from."""

    adapter: str
    base_url: str
    api_key_env: tuple[str, ...] = ()
    #: How long the upstream keeps result URLs alive, when it says (seconds).
    url_lifetime_seconds: int | None = None
    #: Seconds between status polls of this provider's video tasks. Unset: the adapter's own
    #: hint for the real API (5-15 s); a simulator or a fast proxy can ask for less.
    poll_interval: float | None = Field(default=None, gt=0)
    docs: str | None = None


class ShapeSpec(_Frozen):
    """What one OpenAI `size` means to upstreams that speak aspect ratio and resolution."""

    aspect_ratio: str | None = None
    resolution: str | None = None


class SizeRule(_Frozen):
    """Free-form WxH sizes (GPT Image 2): edge multiples, bounds and aspect-ratio limits."""

    multiple_of: int = 16
    max_long_edge: int = 3840
    max_short_edge: int = 2160
    min_pixels: int = 0
    max_ratio: float = 3.0


class Capabilities(_Frozen):
    """What a model (or one route, as `limits`) accepts. Empty means "not constrained here"."""

    sizes: dict[str, ShapeSpec] = Field(default_factory=dict)
    size_rule: SizeRule | None = None
    aspect_ratios: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    seconds: tuple[int, ...] = ()
    qualities: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    backgrounds: tuple[str, ...] = ()
    n_max: int = 1
    edits: bool = False
    max_input_images: int = 0
    #: The largest input image (MB, 10^6 bytes) the model's maker documents; a larger upload is
    #: refused before any upstream call, rather than sent to be refused there.
    max_input_image_mb: float | None = Field(default=None, gt=0)
    mask: bool = False
    #: The largest mask (MB) the maker documents, refused as `max_input_image_mb` is.
    max_mask_mb: float | None = Field(default=None, gt=0)
    input_reference: bool = False
    #: The reference input is a video (enhancement/upscaling), not an image.
    input_video: bool = False
    #: The longest source video (seconds) a request's price covers; checked on every route
    #: from the bytes reapi fetched, before any upstream call (`providers._source_video`).
    max_source_seconds: float | None = Field(default=None, gt=0)
    #: False for models driven by their input alone (e.g. video enhancement).
    prompt_required: bool = True
    #: Resolutions that allow only some durations (Veo: 1080p and 4k need 8 s).
    seconds_by_resolution: dict[str, tuple[int, ...]] = Field(default_factory=dict)


class Price(_Frozen):
    """Credits charged per delivered unit; a failed generation costs nothing."""

    unit: Literal["image", "second", "request"]
    credits: int = Field(ge=0)
    #: Per-resolution override of `credits` (e.g. 1080p video costs more per second).
    by_resolution: dict[str, int] = Field(default_factory=dict)
    #: Credits per input image of an edit, for makers that bill inputs as well as outputs.
    per_input_image: int = Field(default=0, ge=0)

    def cost(self, *, units: int, resolution: str | None = None, input_images: int = 0) -> int:
        per_unit = self.by_resolution.get(resolution or "", self.credits)
        return per_unit * max(units, 0) + self.per_input_image * max(input_images, 0)


class Route(_Frozen):
    """One way to serve a model: a provider plus that provider's own model id."""

    provider: str
    upstream_model: str
    #: Adapter-specific knobs (e.g. a second endpoint for edits). Never user data.
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: Narrower limits than the model's, when this host cannot honour everything.
    limits: Capabilities | None = None
    #: Seconds to wait for the first byte of an answer; None = the router's default.
    first_byte_timeout: float | None = None
    #: Set: the route's adapter asks for a streamed answer (server-sent events) where its API
    #: has one, and the engine allows at most this many seconds of silence, before the first
    #: event and between events, instead of `first_byte_timeout` before the whole answer.
    stream_idle_timeout: float | None = Field(default=None, gt=0)

    @cached_property
    def key(self) -> str:
        """`provider/upstream_model`: the route's breaker, statistics and attempt log name.
        Made once per route (a catalog's routes live as long as it; a request reads the key
        four times) and kept in the instance's `__dict__`, where `model_copy` would copy it
        along with the fields it came from: the copy below drops it."""
        return f"{self.provider}/{self.upstream_model}"

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("key", None)  # made again from the copy's own fields
        return copied


class ModelSpec(_Frozen):
    id: str
    kind: Kind
    name: str
    owned_by: str
    description: str = ""
    created: int = 0
    capabilities: Capabilities
    price: Price
    routes: tuple[Route, ...] = Field(min_length=1)


class Catalog(_Frozen):
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]

    @model_validator(mode="after")
    def _routes_name_known_providers(self) -> Catalog:
        for model in self.models.values():
            for route in model.routes:
                if route.provider not in self.providers:
                    raise ValueError(
                        f"model {model.id!r} routes to unknown provider {route.provider!r}"
                    )
        return self
